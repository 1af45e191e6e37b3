import numpy as np
import pytest

from components.config import IndexConfig
from components.errors import ArtifactMismatchError, ConfigError, DataError
from components import index as index_module
from components.index import FaissIndex, exact_rerank, gpu_supports, index_shape

ENCODER = {"model": "m", "fingerprint": "f" * 64, "dim": 16, "max_seq_length": 32, "normalize": True}


def _vectors(n=400, dim=16, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_build_save_load_search_round_trip(tmp_path, kind):
    vecs = _vectors()
    ids = [f"doc{i}" for i in range(len(vecs))]
    index = FaissIndex.build(vecs, ids, IndexConfig(kind=kind, ivf_nprobe=64, pq_m=8, refine=0), ENCODER, "h" * 64)
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
    assert big == {"kind": "ivfpq", "nlist": 4000, "nprobe": 62, "pq_m": 64, "pq_bits": 8, "refine": 4}
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


def test_exact_rerank_orders_candidates_by_the_true_inner_product():
    vectors = np.array([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]], dtype=np.float16)
    queries = np.array([[0, 1], [1, 0]], dtype=np.float32)
    rows = np.array([[0, 1, 2, -1], [3, 3, 2, -1]])  # compressed order, a repeat and a pad
    scores, best = exact_rerank(vectors, queries, rows, k=3)
    assert best.tolist() == [[2, 1, 0], [2, 3, -1]]
    np.testing.assert_allclose(scores[0], [1.0, 0.8, 0.0], atol=1e-3)


def _clustered(n=3000, dim=32, seed=0):
    """Vectors in tight clusters, where 4-byte PQ codes confuse near neighbours."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dim))
    v = centres[rng.integers(0, 30, n)] + 0.15 * rng.standard_normal((n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_refined_ivfpq_keeps_exact_vectors_on_disk_and_recovers_recall(tmp_path):
    vecs, ids = _clustered(), [f"d{i}" for i in range(3000)]
    queries = vecs[:50] + 0.05 * np.random.default_rng(1).standard_normal((50, 32)).astype(np.float32)
    exact = [set(ids[j] for j in np.argsort(-(vecs @ q))[:20]) for q in queries]
    recall = {}
    for refine in (0, 8):
        cfg = IndexConfig(kind="ivfpq", ivf_nlist=20, ivf_nprobe=20, pq_m=4, refine=refine)
        FaissIndex.build(vecs, ids, cfg, ENCODER, "h").save(str(tmp_path / str(refine)))
        loaded = FaissIndex.load(str(tmp_path / str(refine)))
        found, scores = loaded.search(queries, 20)
        recall[refine] = np.mean([len(set(f) & e) / 20 for f, e in zip(found, exact)])
        assert all(s == sorted(s, reverse=True) for s in scores)
    assert isinstance(loaded.exact, np.memmap)  # mapped, not read into RAM
    assert sorted(p.name for p in (tmp_path / "8").iterdir()) == ["faiss.index", "ids.parquet", "manifest.json", "vectors.f16.npy"]
    assert recall[0] < 0.8 and recall[8] > 0.97, recall
    np.testing.assert_allclose(loaded.vectors(["d5", "d0"]), vecs[[5, 0]], atol=2e-3)


def test_refined_index_refuses_vectors_from_another_build(tmp_path):
    cfg = IndexConfig(kind="ivfpq", ivf_nlist=8, pq_m=4, refine=2)
    FaissIndex.build(_vectors(), [str(i) for i in range(400)], cfg, ENCODER, "h").save(str(tmp_path / "a"))
    FaissIndex.build(_vectors(seed=3), [str(i) for i in range(400)], cfg, ENCODER, "h").save(str(tmp_path / "b"))
    FaissIndex.load(str(tmp_path / "a"))  # verified once: the stamp must not vouch for what replaces the file
    (tmp_path / "a" / "vectors.f16.npy").write_bytes((tmp_path / "b" / "vectors.f16.npy").read_bytes())
    with pytest.raises(DataError, match="vectors.f16.npy does not match its manifest checksum"):
        FaissIndex.load(str(tmp_path / "a"))


def test_refined_index_hashes_its_vectors_once_per_file_version(tmp_path, monkeypatch):
    cfg = IndexConfig(kind="ivfpq", ivf_nlist=8, pq_m=4, refine=2)
    FaissIndex.build(_vectors(), [str(i) for i in range(400)], cfg, ENCODER, "h").save(str(tmp_path / "a"))
    hashed: list[str] = []
    real = index_module._file_sha256
    monkeypatch.setattr(index_module, "_file_sha256", lambda path: hashed.append(path) or real(path))
    vectors = tmp_path / "a" / "vectors.f16.npy"
    for _ in range(3):
        FaissIndex.load(str(tmp_path / "a"))
    assert hashed == [str(vectors)]
    copy = tmp_path / "copy.npy"
    copy.write_bytes(vectors.read_bytes())
    copy.replace(vectors)  # the same bytes in a new file: checked again
    FaissIndex.load(str(tmp_path / "a"))
    assert hashed == [str(vectors)] * 2


def test_refined_index_loads_from_s3(s3_server):
    vecs, ids = _vectors(), [str(i) for i in range(400)]
    cfg = IndexConfig(kind="ivfpq", ivf_nlist=8, pq_m=4, refine=4)
    FaissIndex.build(vecs, ids, cfg, ENCODER, "h").save(f"{s3_server}/idx")
    loaded = FaissIndex.load(f"{s3_server}/idx")
    found, _ = loaded.search(vecs[:10], 5)
    assert [row[0] for row in found] == ids[:10]


def test_gpu_is_used_only_for_shapes_faiss_gpu_supports():
    big = index_shape(IndexConfig(), 1_000_000, 384)
    assert gpu_supports(big) and gpu_supports({"kind": "flat"}) and gpu_supports({"kind": "ivf", "nlist": 8, "nprobe": 8})
    assert not gpu_supports(index_shape(IndexConfig(kind="ivfpq", pq_m=128), 1_000_000, 384))
    assert not gpu_supports({"kind": "hnsw", "m": 32, "ef_search": 128})
