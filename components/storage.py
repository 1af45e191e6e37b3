"""One door to every path idistill reads or writes: local files or ``s3://`` URIs.

Writes are atomic: a local file is written under a temporary name in the same folder and renamed
into place, so a killed job never leaves half an index or a truncated label shard behind; an S3
object becomes visible only when its single PUT completes. Credentials come from the standard AWS
chain; ``AWS_ENDPOINT_URL`` points at an S3-compatible server (MinIO, moto) when set.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


def is_remote(uri: str) -> bool:
    return uri.startswith("s3://")


def join(base: str, *parts: str) -> str:
    """Join path segments for either kind of location (``/`` separators, no duplicate slashes)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


@lru_cache(maxsize=None)
def _s3() -> pafs.S3FileSystem:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {}
    if endpoint:
        kwargs["endpoint_override"] = endpoint
        kwargs["scheme"] = "https" if endpoint.startswith("https") else "http"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def forget_s3_settings() -> None:
    """Read the AWS environment again on the next ``s3://`` access (its endpoint or keys changed)."""
    _s3.cache_clear()


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path for ``uri`` (also what Ray Data accepts)."""
    if is_remote(uri):
        return _s3(), uri[len("s3://"):]
    return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_dir(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def list_files(uri: str, suffix: str = "") -> list[str]:
    """Files directly under ``uri`` whose names end with ``suffix``, sorted; [] if it does not exist."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    names = sorted(i.base_name for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(suffix))
    return [join(uri, n) for n in names if not n.startswith(".")]


def delete(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.delete_file(path)


def list_dirs(uri: str, prefix: str = "") -> list[str]:
    """Directories directly under ``uri`` whose names start with ``prefix``, sorted."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    return [join(uri, n) for n in sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory and i.base_name.startswith(prefix))]


def delete_dir(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.delete_dir(path)


def put_dir(local_dir: str, uri: str) -> None:
    """Copy a local directory tree to ``uri`` (local or S3). Callers write a manifest afterwards:
    a directory without its manifest is unfinished and is never used."""
    src_fs, src = filesystem(local_dir)
    dst_fs, dst = filesystem(uri)
    dst_fs.create_dir(dst, recursive=True)
    pafs.copy_files(src, dst, source_filesystem=src_fs, destination_filesystem=dst_fs)


def local_dir(uri: str, scratch: str) -> str:
    """A local path holding the directory ``uri``: itself when local, else a new copy under ``scratch``."""
    if not is_remote(uri):
        return str(Path(uri).expanduser().resolve())
    # a fresh folder per copy: two models both named "model" must not overwrite each other's
    # (memory-mapped) weights
    Path(scratch).mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(dir=scratch)) / Path(uri.rstrip("/")).name
    src_fs, src = filesystem(uri)
    infos = src_fs.get_file_info(pafs.FileSelector(src, recursive=True, allow_not_found=True))
    if not infos:
        raise FileNotFoundError(f"no such directory, or an empty one: {uri}")
    for info in infos:
        if info.type == pafs.FileType.File:
            dest = target / info.path[len(src.rstrip("/")) + 1 :]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with src_fs.open_input_stream(info.path) as f_in, open(dest, "wb") as f_out:
                f_out.write(f_in.read())
    return str(target)


def content_hash(obj: Any) -> str:
    """Stable hash of JSON-able inputs: what a stage's outputs were made from."""
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def stage_is_current(dir_uri: str, inputs: dict[str, Any]) -> bool:
    """True when ``dir_uri/manifest.json`` records exactly these inputs (the stage can be skipped)."""
    manifest = join(dir_uri, "manifest.json")
    return exists(manifest) and read_json(manifest).get("inputs") == json.loads(json.dumps(inputs, default=str))


def stage_is_done(dir_uri: str) -> bool:
    """A stage directory with its manifest: its outputs are whole (whatever inputs they came from)."""
    return exists(join(dir_uri, "manifest.json"))


def stage_digest(dir_uri: str) -> str | None:
    """A finished stage's identity: the hash of the inputs its manifest records (None if not
    finished). A later stage records it, so a retrained upstream makes it visibly out of date."""
    manifest = join(dir_uri, "manifest.json")
    return content_hash(read_json(manifest).get("inputs")) if exists(manifest) else None


def mark_stage_done(dir_uri: str, inputs: dict[str, Any], **details: Any) -> None:
    """Written last, after every output of the stage: its presence means the outputs are whole."""
    write_json(join(dir_uri, "manifest.json"), {"inputs": json.loads(json.dumps(inputs, default=str)), **details})


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {uri}") from None


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def read_json(uri: str) -> Any:
    return json.loads(read_text(uri))


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` atomically (temp file + rename locally, one PUT on S3)."""
    if is_remote(uri):
        fs, path = filesystem(uri)
        with fs.open_output_stream(path) as f:
            f.write(data)
        return
    target = Path(uri).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def write_json(uri: str, obj: Any) -> None:
    write_text(uri, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_parquet(uri: str, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    write_bytes(uri, buf.getvalue())


def read_parquet(uri: str) -> pa.Table:
    fs, path = filesystem(uri)
    return pq.read_table(path, filesystem=fs)
