"""Storage against the local disk and a real S3-compatible server (moto) on 127.0.0.1."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from components import storage
from components.config import IndexConfig
from components.corpus import load_collection
from components.index import FaissIndex
from tests.conftest import write_beir


def test_local_writes_are_atomic_and_create_parents(tmp_path):
    target = tmp_path / "a" / "b" / "x.json"
    storage.write_json(str(target), {"k": 1})
    storage.write_json(str(target), {"k": 2})
    assert storage.read_json(str(target)) == {"k": 2}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "t.parquet"
    storage.write_parquet(str(target), pa.table({"x": [1]}))
    with pytest.raises(TypeError):  # the write itself fails half-way: not bytes
        storage.write_bytes(str(target), object())  # type: ignore[arg-type]
    assert storage.read_parquet(str(target)).column("x").to_pylist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_collection_and_index_round_trip_through_s3(tmp_path, s3_server):
    local = write_beir(
        tmp_path,
        [{"_id": "a", "title": "", "text": "alpha"}, {"_id": "b", "title": "", "text": "beta"}],
        [{"_id": "q", "text": "alpha?"}],
        {"test": [("q", "a", 1)]},
    )
    base = storage.join(s3_server, "data", "tiny")
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        storage.write_bytes(storage.join(base, rel), (local / rel).read_bytes())
    col = load_collection(base)
    assert col.corpus.ids == ["a", "b"]
    assert col.split("test").qrels == {"q": {"a": 1}}

    vecs = np.eye(2, dtype=np.float32)
    enc = {"model": "m", "fingerprint": "f", "dim": 2, "max_seq_length": 8, "normalize": True}
    uri = storage.join(s3_server, "run", "index", "base")
    FaissIndex.build(vecs, ["a", "b"], IndexConfig(), enc, col.corpus.content_hash()).save(uri)
    loaded = FaissIndex.load(uri, corpus_hash=col.corpus.content_hash())
    assert loaded.search(vecs[1:], 1)[0] == [["b"]]
    assert storage.exists(storage.join(uri, "manifest.json"))


def test_a_model_directory_round_trips_through_s3(tmp_path, s3_server):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text('{"a": 1}')
    (src / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    uri = storage.join(s3_server, "run", "ranker", "model")
    storage.put_dir(str(src), uri)
    local = Path(storage.local_dir(uri, str(tmp_path / "scratch")))
    assert (local / "config.json").read_text() == '{"a": 1}' and local.name == "model"
    assert (local / "sub" / "weights.bin").read_bytes() == b"\x00\x01" * 1000
    # another directory of the same name gets its own copy (the first may be memory-mapped)
    assert storage.local_dir(uri, str(tmp_path / "scratch")) != str(local)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        storage.local_dir(storage.join(s3_server, "nothing"), str(tmp_path / "scratch"))
