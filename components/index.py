"""FAISS index artifacts: build, save atomically with a manifest, load, and search by document id.

An index directory holds ``faiss.index``, ``ids.parquet`` (row → document id) and
``manifest.json`` (encoder identity, corpus hash, index shape, file checksums); an IVF-PQ index
with ``refine`` also holds ``vectors.f16.npy``, the exact vectors its compressed top ``k·refine``
are re-ranked with, memory-mapped rather than loaded so that RAM holds only the codes. The manifest
is written last, so a directory without one is an unfinished build and is never loaded; the
checksums catch a directory whose files come from different builds.
"""

from __future__ import annotations

import hashlib
import io
import math
import mmap
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import faiss
import numpy as np
import pyarrow as pa

from components import storage
from components.config import IndexConfig
from components.errors import ArtifactMismatchError, ConfigError, DataError

INDEX_FILE, IDS_FILE, MANIFEST_FILE, VECTORS_FILE = "faiss.index", "ids.parquet", "manifest.json", "vectors.f16.npy"
_SAMPLE = 1 << 20  # bytes from each end of a verified file that its stamp records


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def map_vectors(path: str) -> np.ndarray:
    """A ``.npy`` file memory-mapped for random reads: the kernel's readahead is turned off, so an
    uncached row costs one small read, not the next hundred kilobytes too (README, "Performance
    and scale": 20 times faster cold)."""
    vectors = np.load(path, mmap_mode="r")
    mapped = getattr(vectors, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return vectors


def _mapped_vectors(uri: str, sha256: Optional[str]) -> np.ndarray:
    """The exact vectors of ``uri`` memory-mapped from a local file (an S3 copy is fetched once into
    the temp dir, named by its checksum), after checking the checksum the manifest recorded."""
    if storage.is_remote(uri):
        local = Path(tempfile.gettempdir()) / "idistill-index" / f"{sha256}.f16.npy"
        if not local.exists():
            storage.write_bytes(str(local), storage.read_bytes(uri))
        path = str(local)
    else:
        path = str(Path(uri).expanduser())
    if not _verified(path, sha256):
        raise DataError(f"{uri} does not match its manifest checksum; rebuild the index")
    return map_vectors(path)


def _verified(path: str, sha256: Optional[str]) -> bool:
    """Whether the file at ``path`` has checksum ``sha256``, hashing it once per version of the file.

    The vectors file is the largest in an index (768 MB at a million passages) and is memory-mapped
    so that RAM holds only the codes; hashing it on every load would read all of it each time a
    replica starts. A stamp named by the checksum and the path records the file's identity when it
    last matched: device, inode, size, modification time and a hash of its first and last MiB (a
    file copied in from another build differs there even when the clock is too coarse to tell)."""
    st = Path(path).stat()
    with open(path, "rb") as f:
        head = f.read(_SAMPLE)
        f.seek(max(0, st.st_size - _SAMPLE))
        tail = f.read(_SAMPLE)
    identity = f"{path}\n{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{_sha256(head + tail)}"
    stamp = Path(tempfile.gettempdir()) / "idistill-index" / "verified" / f"{sha256}-{_sha256(path.encode())[:16]}"
    if stamp.is_file() and stamp.read_text() == identity:
        return True
    if _file_sha256(path) != sha256:
        return False
    storage.write_text(str(stamp), identity)
    return True


def exact_rerank(vectors: np.ndarray, queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and rows of the ``k`` best of each query's candidate ``rows`` (−1: none) by the exact
    inner product with ``vectors`` (any array indexable by rows, e.g. a memory map), best first;
    −1 rows pad a query with fewer than ``k`` candidates. Rows are read in sorted order, so a
    memory-mapped file is touched front to back."""
    out_rows = np.full((len(queries), k), -1, dtype=np.int64)
    out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    for i, (q, cand) in enumerate(zip(queries, rows)):
        cand = np.unique(cand[cand >= 0])
        scores = np.asarray(vectors[cand], dtype=np.float32) @ q
        best = np.argsort(-scores, kind="stable")[:k]
        out_rows[i, : len(best)], out_scores[i, : len(best)] = cand[best], scores[best]
    return out_scores, out_rows


def index_shape(cfg: IndexConfig, n: int, dim: int) -> dict[str, Any]:
    """Every parameter of the index ``cfg`` builds over ``n`` vectors of ``dim``, resolved (``auto``
    kind, list counts): recorded in the manifest, and compared whole before an index is reused."""
    kind = cfg.kind if cfg.kind != "auto" else ("flat" if n <= cfg.auto_flat_max else "ivfpq")
    if kind == "flat":
        return {"kind": kind}
    if kind == "hnsw":
        return {"kind": kind, "m": cfg.hnsw_m, "ef_search": cfg.hnsw_ef_search}
    # FAISS wants ~39 training points per list; fewer lists beat a badly trained quantizer.
    nlist = max(1, min(cfg.ivf_nlist or round(4 * math.sqrt(n)), n // 39))
    shape = {"kind": kind, "nlist": nlist, "nprobe": min(cfg.ivf_nprobe or max(8, nlist // 64), nlist)}
    if kind == "ivfpq":
        if dim % cfg.pq_m:
            raise ConfigError(f"index.pq_m={cfg.pq_m} must divide the vectors' dimension {dim}")
        shape.update(pq_m=cfg.pq_m, pq_bits=cfg.pq_bits, refine=cfg.refine)
    return shape


def _make_index(vectors: np.ndarray, shape: dict[str, Any]) -> faiss.Index:
    dim = vectors.shape[1]
    if shape["kind"] == "flat":
        index = faiss.IndexFlatIP(dim)
    elif shape["kind"] == "hnsw":
        index = faiss.IndexHNSWFlat(dim, shape["m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = shape["ef_search"]
    else:
        quantizer = faiss.IndexFlatIP(dim)
        if shape["kind"] == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, shape["nlist"], faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(quantizer, dim, shape["nlist"], shape["pq_m"], shape["pq_bits"], faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = shape["nprobe"]
    index.add(vectors)
    return index


def gpu_supports(shape: dict[str, Any]) -> bool:
    """Whether FAISS's GPU version can search an index of ``shape``: HNSW has none, and GPU IVF-PQ
    takes at most 96 bytes a code (so the CPU keeps a 128-code index)."""
    return shape["kind"] != "hnsw" and shape.get("pq_m", 0) * shape.get("pq_bits", 8) <= 96 * 8


@dataclass
class FaissIndex:
    index: faiss.Index
    doc_ids: list[str]
    manifest: dict[str, Any]
    exact: Optional[np.ndarray] = None  # float16 vectors for ``refine`` (memory-mapped once loaded)

    @classmethod
    def build(
        cls, vectors: np.ndarray, doc_ids: list[str], cfg: IndexConfig, encoder: dict[str, Any], corpus_hash: str
    ) -> "FaissIndex":
        if vectors.ndim != 2 or vectors.shape[0] != len(doc_ids):
            raise ValueError(f"{vectors.shape} vectors for {len(doc_ids)} document ids")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        shape = index_shape(cfg, *vectors.shape)
        index = _make_index(vectors, shape)
        manifest = {
            "encoder": encoder,
            "corpus_hash": corpus_hash,
            "num_docs": len(doc_ids),
            "dim": int(vectors.shape[1]),
            "index": shape,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": {"faiss": faiss.__version__},
        }
        exact = vectors.astype(np.float16) if shape.get("refine") else None
        return cls(index, list(doc_ids), manifest, exact)

    def save(self, uri: str) -> None:
        """Write the three files; the manifest (with checksums) goes last and marks completion."""
        index_bytes = faiss.serialize_index(self.index).tobytes()
        ids_table = pa.table({"id": pa.array(self.doc_ids, pa.string())})
        storage.write_bytes(storage.join(uri, INDEX_FILE), index_bytes)
        storage.write_parquet(storage.join(uri, IDS_FILE), ids_table)
        ids_bytes = storage.read_bytes(storage.join(uri, IDS_FILE))
        files = {INDEX_FILE: _sha256(index_bytes), IDS_FILE: _sha256(ids_bytes)}
        if self.exact is not None:
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(self.exact, dtype=np.float16))
            vector_bytes = buffer.getvalue()  # one copy: each getvalue() copies the whole file
            storage.write_bytes(storage.join(uri, VECTORS_FILE), vector_bytes)
            files[VECTORS_FILE] = _sha256(vector_bytes)
        manifest = dict(self.manifest, files=files)
        storage.write_json(storage.join(uri, MANIFEST_FILE), manifest)
        self.manifest = manifest

    @classmethod
    def load(cls, uri: str, corpus_hash: Optional[str] = None, use_gpu: bool = False) -> "FaissIndex":
        """Load an index; with ``corpus_hash``, refuse one built from a different corpus. With
        ``use_gpu``, an index the GPU version of FAISS supports (``gpu_supports``) moves to every
        visible GPU when faiss has GPU support; a refined index re-ranks on the CPU."""
        manifest_uri = storage.join(uri, MANIFEST_FILE)
        if not storage.exists(manifest_uri):
            raise DataError(f"no finished index at {uri} (missing {MANIFEST_FILE})")
        manifest = storage.read_json(manifest_uri)
        if corpus_hash is not None and manifest.get("corpus_hash") != corpus_hash:
            raise ArtifactMismatchError(
                f"index at {uri} was built from a different corpus "
                f"(index corpus hash {str(manifest.get('corpus_hash'))[:12]}…, current {corpus_hash[:12]}…); rebuild it"
            )
        index_bytes = storage.read_bytes(storage.join(uri, INDEX_FILE))
        ids_bytes = storage.read_bytes(storage.join(uri, IDS_FILE))
        expected = manifest.get("files", {})
        for name, data in ((INDEX_FILE, index_bytes), (IDS_FILE, ids_bytes)):
            if expected.get(name) != _sha256(data):
                raise DataError(f"{storage.join(uri, name)} does not match its manifest checksum; rebuild the index")
        index = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
        doc_ids = storage.read_parquet(storage.join(uri, IDS_FILE)).column("id").to_pylist()
        exact = _mapped_vectors(storage.join(uri, VECTORS_FILE), expected.get(VECTORS_FILE)) if manifest["index"].get("refine") else None
        if use_gpu and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and gpu_supports(manifest["index"]):
            options = faiss.GpuMultipleClonerOptions()
            options.useFloat16 = manifest["index"]["kind"] == "ivfpq"  # fp16 lookup tables: 56+ codes need them
            index = faiss.index_cpu_to_all_gpus(index, co=options)
        return cls(index, doc_ids, manifest, exact)

    def check_encoder(self, encoder_fingerprint: str, where: str = "index") -> None:
        """Refuse query vectors from a model other than the one that built the index."""
        built = self.manifest["encoder"]
        if built["fingerprint"] != encoder_fingerprint:
            raise ArtifactMismatchError(
                f"{where} was built with encoder {built['model']!r} (weights {built['fingerprint'][:12]}…) "
                f"but queries come from a model with weights {encoder_fingerprint[:12]}…; rebuild the index or use that model"
            )

    def vectors(self, doc_ids: list[str]) -> np.ndarray:
        """The stored passage vectors of ``doc_ids`` (frozen passage side for Stage 2): the exact
        copy where the index keeps one, else what the index reconstructs."""
        if not hasattr(self, "_row_of"):
            self._row_of = {d: i for i, d in enumerate(self.doc_ids)}
            if isinstance(self.index, faiss.IndexIVF) and self.exact is None:
                self.index.make_direct_map()
        try:
            rows = [self._row_of[d] for d in doc_ids]
        except KeyError as e:
            raise DataError(f"document {e.args[0]!r} is not in this index") from None
        if self.exact is not None:
            return np.asarray(self.exact[rows], dtype=np.float32)
        return np.stack([self.index.reconstruct(r) for r in rows])

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[list[list[str]], list[list[float]]]:
        """Top-``k`` document ids and scores per query, best first (fewer when the index is smaller)."""
        if query_vectors.ndim != 2 or query_vectors.shape[1] != self.manifest["dim"]:
            raise ValueError(f"query vectors of shape {query_vectors.shape} for an index of dim {self.manifest['dim']}")
        k = min(k, len(self.doc_ids))
        queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
        refine = self.manifest["index"].get("refine", 0) if self.exact is not None else 0
        scores, rows = self.index.search(queries, min(len(self.doc_ids), k * refine) if refine else k)
        if refine:
            scores, rows = exact_rerank(self.exact, queries, rows, k)
        ids = [[self.doc_ids[r] for r in row if r >= 0] for row in rows]
        return ids, [[float(s) for s, r in zip(srow, row) if r >= 0] for srow, row in zip(scores, rows)]
