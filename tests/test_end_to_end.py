"""End-to-end on real parts: a local Ray cluster, the packaged MiniLM, FAISS, real datasets.

Marked ``slow``: Ray and the model start once per session (fixtures in conftest), and each test
reuses them.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.run import Run
from components import encoders
from components.config import EncoderConfig, IndexConfig, RayConfig, load_config
from components.corpus import load_collection, load_corpus
from components.embedding import embed_texts
from components.errors import ArtifactMismatchError
from components.index import FaissIndex
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator
from components.retrieval import DenseRetriever
from jobs import cli
from components.stages.index import build_index
from components.stages.evaluation import evaluate
from tests.conftest import dataset_subset

pytestmark = pytest.mark.slow


def test_ray_data_and_driver_embeddings_equal_plain_encode(ray_cluster, minilm):
    corpus = load_corpus("demo")
    texts = corpus.passages()[:60]
    cfg = EncoderConfig(batch_size=16)
    dim = minilm.get_embedding_dimension()
    via_ray = embed_texts(texts, cfg, RayConfig(embed_actors=2, embed_in_driver_max=0), dim)
    in_driver = embed_texts(texts, cfg, RayConfig(), dim)  # 60 passages, no GPU: the driver's path
    direct = encoders.encode(minilm, texts, cfg)
    # Row i of either result belongs to text i, whatever order the actors or length-sorted batches took.
    np.testing.assert_allclose(via_ray, direct, atol=1e-5)
    np.testing.assert_allclose(in_driver, direct, atol=1e-5)


def test_dense_retriever_refuses_index_of_another_model(minilm):
    corpus = load_corpus("demo")
    cfg = EncoderConfig()
    vecs = encoders.encode(minilm, corpus.passages()[:20], cfg)
    index = FaissIndex.build(vecs, corpus.ids[:20], IndexConfig(), encoders.identity(minilm, cfg), "h")
    assert DenseRetriever("base", minilm, cfg, index).search([corpus.texts[3]], 1).ids == [[corpus.ids[3]]]
    other = copy.deepcopy(minilm)
    next(other.parameters()).data.add_(1e-3)  # a fine-tuned model: same architecture, other weights
    with pytest.raises(ArtifactMismatchError, match="rebuild the index"):
        DenseRetriever("tuned", other, cfg, index)


def test_demo_run_via_cli_writes_the_report_contract(ray_cluster, tmp_path, capfd):
    """``capfd``: the quiet console writes its lines to the terminal's file descriptor (and the
    rest to RUN/logs/), so the terminal is what is checked."""
    oracle = Oracle(load_collection("demo"), load_collection("demo").split("train").qrels)
    with SimulatorServer(TeacherSimulator(oracle, SimSettings())) as sim:
        args = ["run", "--run-dir", str(tmp_path), "--llm-url", sim.base_url, "--set", "labels.max_questions=16",
                "--set", "labels.num_candidates=5", "--set", "train.ranker.max_seq_length=64", "--set", "train.ranker.epochs=1"]
        assert cli.main(args) == 0
        printed = capfd.readouterr().out
        assert f"report: {tmp_path}/report/report.json" in printed and "Δ nDCG@10 vs base" in printed
        assert "[1/6] index" in printed and (tmp_path / "logs" / "run_pipeline.log").stat().st_size > 0
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        assert set(report["retrievers"]) == {"bm25", "base-minilm", "ranker-rerank@5", "distilled"}
        for row in report["retrievers"].values():
            assert set(row["top_k_accuracy"]) >= {"1", "5", "20", "100"}
            accs = [row["top_k_accuracy"][k] for k in ("1", "5", "20", "100")]
            assert accs == sorted(accs) and 0 <= accs[0] <= accs[-1] <= 1 and accs[-1] > 0
            assert 0 < row["ndcg@10"] <= 1
        assert report["dataset"]["name"] == "demo" and report["dataset"]["split"] == "test"
        assert report["dataset"]["questions"] > 0 and report["versions"]["ray"].startswith("2.60")
        # once in the metrics table, once in the table of differences from the base
        assert (tmp_path / "report" / "report.md").read_text().count("| bm25 |") == 2
        assert (tmp_path / "report" / "topk.png").read_bytes()[:4] == b"\x89PNG"
        _looks_like_a_report_in_chromium(tmp_path / "report" / "report.html", tmp_path)
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert list(manifest["stages"]) == ["index", "candidates", "label", "ranker", "retriever", "evaluate"]
        assert {s["status"] for s in manifest["stages"].values()} == {"done"}

        # A rerun reuses the index: nothing is re-embedded.
        before = (tmp_path / "index" / "base" / "faiss.index").stat().st_mtime_ns
        assert cli.main(args) == 0
        assert "index: up to date" in capfd.readouterr().out
        assert (tmp_path / "index" / "base" / "faiss.index").stat().st_mtime_ns == before


def _looks_like_a_report_in_chromium(page: Path, tmp_path: Path) -> None:
    """Open the page in headless Chromium (Debian's; the CI script installs it): a screenshot
    that is not blank, and nothing on the console (the page has no scripts and fetches nothing)."""
    import shutil
    import subprocess

    from matplotlib.image import imread

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed: apt-get install chromium (.ci/run does)"
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--enable-logging=stderr", "--v=0", "--window-size=1000,1400",
         f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "CONSOLE" not in done.stderr, [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    pixels = imread(shot)
    assert pixels.std() > 0.05 and (pixels[..., :3] < 0.5).mean() > 0.01  # text and charts, not a blank page


def test_cranfield_subset_dense_vs_bm25(ray_cluster, tmp_path):
    """Index a real collection subset: MiniLM's top-20 success must beat BM25 or trail by < 0.05."""
    sub = dataset_subset("cranfield", tmp_path / "cranfield-500", 500)
    cfg = load_config(None, [f"run_dir={tmp_path / 'run'}", f"data.path={sub}", "eval.ks=[1, 10, 20]",
                             "eval.retrievers=[bm25, base]"])
    build_index(Run(cfg))
    report = json.loads(Path(evaluate(Run(cfg))).read_text())
    bm25, dense = report["retrievers"]["bm25"], report["retrievers"]["base-minilm"]
    assert dense["top_k_accuracy"]["20"] >= bm25["top_k_accuracy"]["20"] - 0.05
    assert dense["ndcg@10"] > 0.2 and bm25["ndcg@10"] > 0.2
    # Every paired metric is kept question by question, so other runs can be compared with this one later.
    per_question = report["per_question"]
    assert set(per_question) == {"ndcg@10", "top-1", "top-10", "top-20"}
    for name, result in (("bm25", bm25), ("base-minilm", dense)):
        hits = per_question["top-20"][name]
        assert len(hits) == report["dataset"]["questions"] and set(hits) <= {0.0, 1.0}
        assert sum(hits) / len(hits) == pytest.approx(result["top_k_accuracy"]["20"])
    # Judgements that point outside the 500-document subset were dropped and counted, not crashed on.
    assert report["validation"]["test judgements for unknown documents"] > 0
    assert report["accuracy_definition"].startswith("success@k")

    # Same corpus, changed index shape: the index is rebuilt rather than reused.
    cfg.index.kind = "hnsw"
    uri = build_index(Run(cfg))
    assert FaissIndex.load(uri).manifest["index"]["kind"] == "hnsw"


def test_whole_pipeline_with_the_real_local_llm_on_a_squad_subset(ray_cluster, tmp_path):
    """Every stage with SmolLM2 behind llama.cpp's OpenAI-compatible server as the teacher: real
    model, real HTTP, real data. A 135M model ranks badly; this proves the protocol, not quality."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is installed by `make test`")
    from components.stages.pipeline import run_pipeline

    data = dataset_subset("squad-v1.1-dev", tmp_path / "squad-120", 120)
    cfg = load_config(None, [
        f"run_dir={tmp_path / 'run'}", f"data.path={data}", "labels.max_questions=6", "labels.num_candidates=4",
        "labels.max_words_per_passage=40", "train.ranker.max_seq_length=64", "train.ranker.epochs=1",
        "train.retriever.batch_questions=2", "train.retriever.dev_fraction=0.2", "data.max_test_questions=40",
        "eval.retrievers=[base, ranker, distilled]",
    ])
    report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
    teacher = report["teacher"]
    assert teacher["teacher"].startswith("smollm2") and teacher["backend"] == "openai"
    usable = teacher["complete"] + teacher["repaired"]
    assert teacher["questions"] == 6 and usable >= 1
    # Stage 1 trains on every usable label outside Stage 2's dev questions, which are chosen from the
    # questions (by judged document), whatever their labels became.
    from components.stages.dev import held_out

    dev = held_out(Run(cfg)).questions
    labels = pq.read_table(tmp_path / "run" / "labels" / "labels.parquet").to_pylist()
    assert teacher["labels_held_out"] == len(dev)
    assert teacher["labels_used"] == sum(r["status"] in ("complete", "repaired") and r["question_id"] not in dev for r in labels)
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert [s["status"] for s in stages.values()] == ["done"] * len(stages)
    assert set(report["retrievers"]) == {"base-minilm", "ranker-rerank@4", "distilled"}
    assert report["dataset"]["questions"] == 40
