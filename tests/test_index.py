import numpy as np
import pytest

from components.config import IndexConfig
from components.errors import ArtifactMismatchError, ConfigError, DataError
from components.index import FaissIndex, index_shape

ENCODER = {"model": "m", "fingerprint": "f" * 64, "dim": 16, "max_seq_length": 32, "normalize": True}


def _vectors(n=400, dim=16, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_build_save_load_search_round_trip(tmp_path, kind):
    vecs = _vectors()
    ids = [f"doc{i}" for i in range(len(vecs))]
    index = FaissIndex.build(vecs, ids, IndexConfig(kind=kind, ivf_nprobe=64, pq_m=8), ENCODER, "h" * 64)
    index.save(str(tmp_path / "idx"))
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["faiss.index", "ids.parquet", "manifest.json"]
    loaded = FaissIndex.load(str(tmp_path / "idx"), corpus_hash="h" * 64)
    found, scores = loaded.search(vecs[:20], k=5)
    # Each vector is its own nearest neighbour (exact for flat; near-certain for HNSW/IVF at this size).
    hits = sum(row[0] == f"doc{i}" for i, row in enumerate(found))
    assert hits == 20 if kind == "flat" else hits >= 18
    assert all(len(r) == 5 for r in found)
    assert all(s[0] >= s[-1] for s in scores)
    assert loaded.manifest["index"]["kind"] == kind
    assert loaded.manifest["corpus_hash"] == "h" * 64


def test_k_larger_than_index_returns_everything(tmp_path):
    index = FaissIndex.build(_vectors(3), ["a", "b", "c"], IndexConfig(), ENCODER, "h")
    ids, _ = index.search(_vectors(1, seed=1), k=10)
    assert sorted(ids[0]) == ["a", "b", "c"]


def test_refuses_other_corpus_and_other_encoder(tmp_path):
    FaissIndex.build(_vectors(), [str(i) for i in range(400)], IndexConfig(), ENCODER, "h" * 64).save(str(tmp_path))
    with pytest.raises(ArtifactMismatchError, match="different corpus"):
        FaissIndex.load(str(tmp_path), corpus_hash="x" * 64)
    loaded = FaissIndex.load(str(tmp_path))
    loaded.check_encoder("f" * 64)
    with pytest.raises(ArtifactMismatchError, match="built with encoder 'm'"):
        loaded.check_encoder("0" * 64)


def test_unfinished_or_tampered_index_is_refused(tmp_path):
    with pytest.raises(DataError, match="missing manifest.json"):
        FaissIndex.load(str(tmp_path))
    FaissIndex.build(_vectors(), [str(i) for i in range(400)], IndexConfig(), ENCODER, "h").save(str(tmp_path))
    other = tmp_path / "other"
    FaissIndex.build(_vectors(seed=3), [str(i) for i in range(400)], IndexConfig(), ENCODER, "h").save(str(other))
    (tmp_path / "faiss.index").write_bytes((other / "faiss.index").read_bytes())
    with pytest.raises(DataError, match="does not match its manifest checksum"):
        FaissIndex.load(str(tmp_path))


def test_query_dimension_mismatch_is_clear():
    index = FaissIndex.build(_vectors(), [str(i) for i in range(400)], IndexConfig(), ENCODER, "h")
    with pytest.raises(ValueError, match="dim 16"):
        index.search(np.zeros((1, 8), np.float32), 3)


def test_no_temporary_files_left_behind(tmp_path):
    FaissIndex.build(_vectors(), [str(i) for i in range(400)], IndexConfig(), ENCODER, "h").save(str(tmp_path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_auto_is_exact_for_small_corpora_and_compressed_beyond():
    assert index_shape(IndexConfig(), 200_000, 384) == {"kind": "flat"}
    big = index_shape(IndexConfig(), 1_000_000, 384)
    assert big == {"kind": "ivfpq", "nlist": 4000, "nprobe": 62, "pq_m": 128, "pq_bits": 8}
    assert index_shape(IndexConfig(kind="ivf"), 3_633, 384) == {"kind": "ivf", "nlist": 93, "nprobe": 8}
    assert index_shape(IndexConfig(kind="ivf", ivf_nlist=64, ivf_nprobe=200), 100_000, 384)["nprobe"] == 64
    with pytest.raises(ConfigError, match="index.pq_m=100 must divide the vectors' dimension 384"):
        index_shape(IndexConfig(kind="ivfpq", pq_m=100), 1_000_000, 384)


def test_an_index_is_reused_only_when_every_parameter_matches(tmp_path):
    from components.config import load_config
    from components.stages.index import _up_to_date

    cfg = load_config(None, ["index.kind=hnsw", "index.hnsw_m=16"])
    FaissIndex.build(_vectors(), [f"d{i}" for i in range(400)], cfg.index, ENCODER, "h").save(str(tmp_path))
    encoder = cfg.encoder.model_copy(update={"max_seq_length": 32})
    assert _up_to_date(str(tmp_path), "h", "f" * 64, cfg, encoder)
    for change in ("index.hnsw_m=32", "index.hnsw_ef_search=64", "index.kind=flat"):
        assert not _up_to_date(str(tmp_path), "h", "f" * 64, load_config(None, ["index.kind=hnsw", "index.hnsw_m=16", change]), encoder), change
