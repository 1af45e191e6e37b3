"""Ray Train on CPU workers: data-parallel equivalence, fault tolerance, and the whole pipeline
with the simulated teacher. Marked ``slow`` (each fit pays Ray Train's start-up)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from components.run import Run
from components import encoders
from components.config import EncoderConfig, load_config
from components.corpus import load_collection
from components.index import FaissIndex
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator
from components.run_layout import stage_model, trained_model
from components.training import LOSSES_FILE, RetrieverStage, fit
from components.weight_averaging import interpolate, pick_alpha
from components.stages.export import RunTestEvaluator
from components.stages.pipeline import run_pipeline
from components.stages.retriever import scaled_scores

pytestmark = pytest.mark.slow
DEMO = load_collection("demo")


@pytest.fixture(scope="module")
def stage2_rows(minilm):
    """Real Stage 2 rows: demo training questions, the base encoder's top-8 candidates and their
    vectors, and oracle ranker scores (1 for the gold passage)."""
    split = DEMO.split("train")
    cfg = EncoderConfig()
    vecs = encoders.encode(minilm, DEMO.corpus.passages(), cfg)
    index = FaissIndex.build(vecs, DEMO.corpus.ids, load_config().index, encoders.identity(minilm, cfg), "h")
    qvecs = encoders.encode(minilm, split.questions.texts, cfg)
    ids, _ = index.search(qvecs, 8)
    rows = []
    for qid, question, cands in zip(split.questions.ids, split.questions.texts, ids):
        gold = split.qrels[qid]
        rows.append({"question": question, "passage_emb": index.vectors(cands),
                     "ranker_scores": np.array([5.0 if d in gold else 0.0 for d in cands], np.float32),
                     "mask": np.ones(len(cands), bool)})
    return rows[:64]


def _stage(**kw) -> RetrieverStage:
    cfg = load_config(None, ["encoder.model=sentence-transformers/all-MiniLM-L6-v2"])
    settings = cfg.train.retriever.model_copy(update={"lr": 2e-5, "epochs": 2, "batch_questions": 8, "max_seq_length": 32, "warmup_ratio": 0.0, **kw})
    return RetrieverStage.from_config(cfg.model_copy(update={"train": cfg.train.model_copy(update={"retriever": settings})}))


def _losses(checkpoint) -> list[dict]:
    with checkpoint.as_directory() as d:
        return [json.loads(line) for line in Path(d, LOSSES_FILE).read_text().splitlines()]


def test_two_workers_follow_the_same_loss_curve_as_one(ray_cluster, stage2_rows, tmp_path):
    one = _losses(fit(_stage(), stage2_rows, 1, False, 1, 0, str(tmp_path), "one"))
    # Same global batch: two workers with half the questions each per step.
    two = _losses(fit(_stage(batch_questions=4), stage2_rows, 2, False, 1, 0, str(tmp_path), "two"))
    assert len(one) == len(two) == 2 * 64 // 8
    by_epoch = lambda ls, e: np.mean([x["loss"] for x in ls if x["epoch"] == e])  # noqa: E731
    for curve in (one, two):
        assert by_epoch(curve, 1) < by_epoch(curve, 0)  # both learn
    # Gradients are averaged across workers, so the curves agree up to batch noise.
    assert by_epoch(two, 1) == pytest.approx(by_epoch(one, 1), rel=0.25)


def _train_worker_pids() -> set[int]:
    """PIDs of this cluster's live Ray Train workers: processes titled ``ray::RayTrainWorker``
    whose parent is this session's raylet."""
    import ray

    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or not (proc / "cmdline").read_bytes().startswith(b"ray::RayTrainWorker"):
                continue
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == raylet:
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def test_killed_worker_resumes_from_the_last_checkpoint(ray_cluster, stage2_rows, tmp_path):
    already = _train_worker_pids()
    result = {}
    runner = threading.Thread(target=lambda: result.update(
        ckpt=fit(_stage(epochs=8, batch_questions=2), stage2_rows, 1, False, 1, 2, str(tmp_path), "killed")
    ))
    runner.start()
    deadline = time.monotonic() + 300
    # Two checkpoints on disk: the first is certainly registered with the controller by then.
    while time.monotonic() < deadline and len(list((tmp_path / "killed").glob("checkpoint_*"))) < 2:
        time.sleep(0.05)
    workers = _train_worker_pids() - already
    assert runner.is_alive() and len(workers) == 1, "this run's Ray Train worker should still be training"
    os.kill(workers.pop(), signal.SIGKILL)
    runner.join(timeout=600)
    losses = _losses(result["ckpt"])
    assert [x["step"] for x in losses] == list(range(1, 8 * 32 + 1))  # every step once: nothing redone twice
    pids = [x["pid"] for x in losses]
    assert len(set(pids)) == 2, f"one worker should have taken over from the killed one: {sorted(set(pids))}"
    switch = next(i for i, p in enumerate(pids) if p != pids[0])
    assert len(set(pids[switch:])) == 1
    assert switch % 32 == 0 and switch > 0  # it took over at an epoch boundary: resumed from a checkpoint


def test_a_killed_driver_resumes_stage2_mid_epoch_from_its_step_checkpoint(tmp_path):
    """``ray job submit`` on a preempted head: the whole job dies (driver, Ray, workers) in the
    middle of Stage 2, and the same command run again continues from the last step checkpoint."""
    root = Path(__file__).resolve().parents[1]
    with _sim() as sim:
        overrides = [*SMALL, f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", "train.retriever.epochs=6",
                     "train.retriever.extra_questions=0", "train.retriever.batch_questions=2", "train.checkpoint_every_steps=4", "ray.num_cpus=2"]
        cmd = [sys.executable, "-m", "jobs.train_retriever", "--run-dir", str(tmp_path), *[a for o in overrides for a in ("--set", o)]]
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and first.poll() is None and not _registered_checkpoint(tmp_path / "retriever" / "checkpoints"):
                time.sleep(0.05)
            assert first.poll() is None, "Stage 2 finished before it could be killed:\n" + (tmp_path / "first.log").read_text()[-3000:]
            os.killpg(first.pid, signal.SIGKILL)  # the driver and every Ray process it started
            first.wait()
        again = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    losses = [json.loads(line) for line in (tmp_path / "retriever" / "losses.jsonl").read_text().splitlines()]
    assert [x["step"] for x in losses] == list(range(1, len(losses) + 1))  # every step once, none lost
    pids = [x["pid"] for x in losses]
    switch = next(i for i, p in enumerate(pids) if p != pids[0])
    assert len(set(pids[switch:])) == 1
    at_epoch_end = losses[switch]["epoch"] != losses[switch - 1]["epoch"]
    assert switch % 4 == 0 or at_epoch_end  # continued from the last checkpoint (every 4 steps), not from scratch


def _registered_checkpoint(root: Path) -> bool:
    """Whether Ray Train has recorded a checkpoint in its snapshot: a ``checkpoint_*`` folder alone
    may still be uploading, and a job killed then rightly starts over (CI saw exactly that)."""
    for snapshot in root.glob("*/checkpoint_manager_snapshot.json"):
        try:
            if json.loads(snapshot.read_text()).get("latest_checkpoint_result"):
                return True
        except ValueError:  # being written
            pass
    return False


def chosen_dev_check(run_dir: Path) -> dict:
    return json.loads((run_dir / "retriever" / "manifest.json").read_text())["teacher_on_dev"]


def _sim(**settings):
    return SimulatorServer(TeacherSimulator(Oracle(DEMO, DEMO.split("train").qrels), SimSettings(**settings)))


SMALL = ["labels.max_questions=24", "labels.num_candidates=5", "train.ranker.max_seq_length=64",
         "train.ranker.epochs=1", "train.ranker.batch_questions=4", "train.retriever.batch_questions=8"]


def test_pipeline_with_the_simulated_teacher_reports_every_retriever_and_resumes(ray_cluster, tmp_path):
    with _sim() as sim:
        cfg = load_config(None, [f"run_dir={tmp_path}", f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", *SMALL,
                                 "train.ablations=[direct, supervised]"])
        report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
        assert set(report["retrievers"]) == {"bm25", "base-minilm", "ranker-rerank@5", "distilled",
                                             "direct (no ranker)", "supervised (gold qrels)"}
        direct = json.loads((tmp_path / "retriever-direct" / "manifest.json").read_text())
        supervised = json.loads((tmp_path / "retriever-supervised" / "manifest.json").read_text())
        dev = direct["dev"]["questions"]
        # the dev questions (10%, whole documents at a time) are held out of training
        assert 2 <= dev < 12 and direct["questions"] == 24 - dev and 1 <= direct["dev"]["documents"] <= dev
        assert 0 < supervised["questions"] <= 24 - supervised["dev"]["questions"]  # only questions with a positive
        assert supervised["dev"]["target"] == "the judged-relevant passages"
        assert report["teacher"]["teacher"] == "teacher-sim[noise=0]"
        # Stage 1 leaves Stage 2's dev questions out, and Stage 2 checks the ranker on them
        assert report["teacher"]["labels_used"] == 24 - dev and report["teacher"]["labels_held_out"] == dev
        assert chosen_dev_check(tmp_path)["questions"] == dev
        stages = json.loads((tmp_path / "manifest.json").read_text())["stages"]
        assert all(s["status"] == "done" for s in stages.values())
        ranker_model, retriever_model = stage_model(str(tmp_path / "ranker")), stage_model(str(tmp_path / "retriever"))
        assert Path(ranker_model, "config.json").exists() and Path(ranker_model).name.startswith("model-")
        from sentence_transformers import CrossEncoder, SentenceTransformer

        assert CrossEncoder(ranker_model).predict([("q", "p")]).shape == (1,)
        kept = SentenceTransformer(retriever_model)
        assert kept.encode(["q"]).shape == (1, 384)
        # The kept query encoder is the dev-chosen weight average of the base and the trained one.
        chosen = json.loads((tmp_path / "retriever" / "manifest.json").read_text())["dev"]
        assert chosen["alpha"] == pick_alpha(chosen["alphas"], chosen["ndcg@10"])
        assert report["query_encoders"]["distilled"]["dev"] == chosen
        assert f"α={chosen['alpha']:g}, chosen by nDCG@10" in (tmp_path / "report" / "report.md").read_text()
        # The dev targets are the teacher's ranking of the pooled top passages of every α: one more
        # labelling pass, over the dev questions only, whose replies are stored like the labels'.
        assert "pooled top 10 of every α" in chosen["target"] and chosen["judging"]["judged"] == chosen["questions"] == dev
        assert chosen["judging"]["calls_sent"] >= dev and chosen["judging"]["calls_cached"] == 0
        assert list((tmp_path / "retriever" / "dev" / "judge").iterdir())
        trained = SentenceTransformer(trained_model(str(tmp_path / "retriever")))
        # The published models are all that is left of the training: its checkpoints are gone.
        assert not list(tmp_path.glob("*/checkpoints"))
        expected = interpolate(encoders.load_encoder(cfg.encoder).state_dict(), trained.state_dict(), chosen["alpha"])
        assert all(torch.allclose(v, expected[k], atol=1e-6) for k, v in kept.state_dict().items())
        # The research diagnostic reads the finished run: each α by gold, on the same dev questions.
        curve = subprocess.run([sys.executable, "scripts/alpha_curve.py", str(tmp_path)], cwd=Path(__file__).resolve().parents[1],
                               capture_output=True, text=True, check=True).stdout
        assert f"{dev} dev and" in curve and all(f"\n| {a:g} | " in curve for a in chosen["alphas"])
        itself = subprocess.run([sys.executable, "scripts/alpha_curve.py", str(tmp_path), "--against", str(tmp_path)],
                                cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True).stdout
        kept = f"| kept ({chosen['alpha']:g} vs {chosen['alpha']:g}) | +0.000 [+0.000, +0.000] | +0.000 [+0.000, +0.000] |"
        assert kept in itself  # a recipe against itself differs on no question
        # against the encoder that built the run's own base index (the base), the kept α reads what its row reads
        versus_base = subprocess.run([sys.executable, "scripts/alpha_curve.py", str(tmp_path), "--reference", str(tmp_path / "index" / "base")],
                                     cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True).stdout
        row = next(line for line in curve.splitlines() if line.startswith(f"| {chosen['alpha']:g} | ")).split(" | ")
        same = [cell or "+0.000 [+0.000, +0.000]" for cell in (row[2], row[4].rstrip(" |"))]
        assert versus_base.rstrip().endswith(f"| {same[0]} | {same[1]} |")

        paid = sim.sim.stats["answered"]
        model_time = (tmp_path / "retriever" / "manifest.json").stat().st_mtime_ns
        run_pipeline(Run(cfg))  # a rerun trains nothing and calls nobody
        assert sim.sim.stats["answered"] == paid
        assert (tmp_path / "retriever" / "manifest.json").stat().st_mtime_ns == model_time
    _exported_models_load_with_the_plain_libraries(tmp_path)
    _tracked_in_one_mlflow_run(cfg)
    # Rerun with a teacher whose labels are all unusable: the old models stay on disk but are not
    # evaluated or served as this run's, and the report says why.
    with _sim(malformed_rate=1.0, model="teacher-sim-broken") as broken:
        cfg = load_config(None, [f"run_dir={tmp_path}", f"labels.endpoints=[{{base_url: '{broken.base_url}'}}]", *SMALL,
                                 "train.ablations=[direct, supervised]"])
        report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
    assert set(report["retrievers"]) == {"bm25", "base-minilm", "supervised (gold qrels)"}  # gold needs no teacher
    assert report["skipped"]["ranker"].startswith("out of date: the labels it was trained on are gone (no usable teacher labels")
    assert report["skipped"]["distilled"].startswith("out of date: its ranker is not current")
    assert report["skipped"]["direct (no ranker)"].startswith("out of date: trained on other lists")
    assert "ranker-rerank" not in (tmp_path / "report" / "report.md").read_text()
    from serve.deployments import Retriever

    served = Retriever.func_or_class(cfg.model_dump(mode="json"))
    assert served.name == "base-minilm"  # serve.retriever: auto falls back to the base, saying why


def _tracked_in_one_mlflow_run(cfg) -> None:
    import mlflow

    from components.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(cfg))
    [run] = mlflow.search_runs(experiment_names=["idistill"], output_format="list")  # the rerun logged into it too
    client = mlflow.MlflowClient()
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "ranker/loss")]
    assert steps == list(range(1, len(steps) + 1)) and steps
    assert client.get_metric_history(run.info.run_id, "retriever/loss")
    assert {"distilled/ndcg_at_10", "ranker-rerank_at_5/ndcg_at_10"} <= set(run.data.metrics)
    assert run.data.params["train.ranker.epochs"] == "1"


def _exported_models_load_with_the_plain_libraries(run_dir: Path) -> None:
    import datasets
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from jobs.export import main as export_main

    out = run_dir / "exported"
    assert export_main(["--run-dir", str(run_dir), "--out", str(out)]) == 0  # the run's recorded config
    assert SentenceTransformer(str(out / "retriever")).encode(["q"]).shape == (1, 384)
    card = (out / "retriever" / "README.md").read_text()
    assert "teacher-sim[noise=0]" in card and "Δ ndcg@10 vs base" in card and "Intermediate Distillation" in card
    assert CrossEncoder(str(out / "ranker")).predict([("q", "p")]).shape == (1,)
    assert "teacher-sim[noise=0]" in (out / "ranker" / "README.md").read_text()
    labels = datasets.load_dataset(str(out / "labels"), split="train")
    assert len(labels) == 24 and {"question", "candidate_texts", "ranked_ids", "status"} <= set(labels.column_names)
    assert "prompt template sha256" in (out / "labels" / "README.md").read_text()


def test_pipeline_without_usable_labels_skips_training_and_says_why(ray_cluster, tmp_path):
    with _sim(malformed_rate=1.0) as sim:
        cfg = load_config(None, [f"run_dir={tmp_path}", f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", *SMALL])
        report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
    assert set(report["retrievers"]) == {"bm25", "base-minilm"}
    assert set(report["skipped"]) == {"ranker", "distilled"}
    assert report["skipped"]["ranker"].startswith("no trained ranker in this run: no usable teacher labels among 24")
    assert report["skipped"]["distilled"].startswith("no distilled retriever in this run: no usable teacher labels")
    stages = json.loads((tmp_path / "manifest.json").read_text())["stages"]
    assert stages["ranker"]["status"] == stages["retriever"]["status"] == "skipped"
    assert "no usable teacher labels" in stages["ranker"]["reason"]


def test_trained_passage_side_refreshes_the_index_between_rounds_and_gets_its_own(ray_cluster, tmp_path):
    with _sim() as sim:
        cfg = load_config(None, [f"run_dir={tmp_path}", f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", *SMALL,
                                 "train.retriever.passages=trained", "train.retriever.loss=kl", "train.retriever.epochs=2", "train.retriever.refresh_every=1",
                                 "train.retriever.interpolation=[0.5, 1.0]", "eval.retrievers=[base, distilled]"])
        report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
        stage = tmp_path / "retriever"
        manifest = json.loads((stage / "manifest.json").read_text())
        assert manifest["rounds"] == 2 and manifest["index"] == str(stage / "index")
        base = FaissIndex.load(str(tmp_path / "index" / "base"))
        refreshed = FaissIndex.load(str(stage / "rounds" / "1" / "index"))  # round 0's model, before round 1
        final = FaissIndex.load(manifest["index"])
        fingerprints = {i.manifest["encoder"]["fingerprint"] for i in (base, refreshed, final)}
        assert len(fingerprints) == 3  # the corpus was re-embedded by each new passage encoder
        assert (stage / "rounds" / "1" / "ranker_scores.parquet").exists()  # refreshed candidates, rescored
        kept = encoders.load_encoder(cfg.encoder.model_copy(update={"model": stage_model(str(stage))}))
        assert final.manifest["encoder"]["fingerprint"] == encoders.fingerprint(kept)
        assert {json.loads(line)["round"] for line in (stage / "losses.jsonl").read_text().splitlines()} == {0, 1}
        assert 0 < report["retrievers"]["distilled"]["ndcg@10"] <= 1

        written = (stage / "manifest.json").stat().st_mtime_ns
        run_pipeline(Run(cfg))  # a rerun trains nothing
        assert (stage / "manifest.json").stat().st_mtime_ns == written


def test_amplified_stage2_with_corpus_negatives_pays_only_for_labelled_questions(ray_cluster, tmp_path):
    with _sim() as sim:
        cfg = load_config(None, [f"run_dir={tmp_path}", f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", *SMALL,
                                 "train.retriever.extra_questions=24", "train.retriever.loss=kl_negatives",
                                 "train.retriever.negatives=100", "eval.retrievers=[base, distilled]"])
        report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
        labels = json.loads((tmp_path / "labels" / "summary.json").read_text())
    assert labels["questions"] == 24  # the LLM labelled 24 questions; Stage 2 used 48, the ranker scored them all
    manifest = json.loads((tmp_path / "retriever" / "manifest.json").read_text())
    dev = manifest["dev"]["questions"]
    assert manifest["llm_labelled"] == 24 - dev
    assert 24 - dev < manifest["questions"] <= 48 - dev  # extra questions about dev documents stay out
    scored = pq.read_table(tmp_path / "retriever" / "ranker_scores.parquet")
    assert scored.num_rows == 48
    distilled = report["retrievers"]["distilled"]
    assert set(distilled["vs_base"]) >= {"ndcg@10", "top-1"}
    assert distilled["vs_base"]["ndcg@10"]["ci_low"] <= distilled["vs_base"]["ndcg@10"]["delta"] <= distilled["vs_base"]["ndcg@10"]["ci_high"]
    assert "of them labelled by the LLM" in (tmp_path / "report" / "report.md").read_text()
    # Fused with a heavy first-stage weight, Stage 2's target orders every list as the first stage did
    # (all lists are in the cache: nothing is scored again).
    lists = pq.read_table(tmp_path / "candidates" / "stage2" / "candidates.parquet").to_pydict()
    passages = dict(zip(DEMO.corpus.ids, DEMO.corpus.passages()))
    heavy = cfg.model_copy(update={"train": cfg.train.model_copy(update={
        "retriever": cfg.train.retriever.model_copy(update={"first_stage_weight": 1e6})})})
    targets = scaled_scores(heavy, stage_model(str(tmp_path / "ranker")), passages, lists["question"], lists["candidate_ids"], lists["scores"])
    assert [list(np.argsort(-t, kind="stable")) for t in targets] == [list(np.argsort(-np.asarray(c), kind="stable")) for c in lists["scores"]]
    # ... and the diagnostic that chose the weight reads the same cache, by gold, on the lists Stage 1 never saw
    lists_report = subprocess.run([sys.executable, "scripts/ranker_lists.py", str(tmp_path), "--weights", "0", "1e6"],
                                  cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True).stdout
    assert "never labelled (Stage 1 never saw them)" in lists_report and "| ranker | " in lists_report
    heavy_rows = [line for line in lists_report.splitlines() if line.startswith("| ranker + 1e+06 × first stage | ")]
    assert len(heavy_rows) == 2 and all(line.endswith("| +0.000 [+0.000, +0.000] |") for line in heavy_rows)
    # paired with itself, a ranker differs by nothing, on every list it scored
    itself = subprocess.run([sys.executable, "scripts/ranker_lists.py", str(tmp_path), "--weights", "0", "--against", str(tmp_path)],
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True).stdout
    paired = [line for line in itself.splitlines() if line.startswith(f"| ranker − {tmp_path}'s ranker (")]
    assert len(paired) == 2 and all(line.endswith("| +0.000 [+0.000, +0.000] |") for line in paired)

    # Stage 2 grows by questions the teacher writes from the corpus: the LLM labels none of them,
    # and only their lists are scored (a stored list's scores, marked here, are reused as stored)
    cache = tmp_path / "retriever" / "ranker_scores.parquet"
    stored = pq.read_table(cache)
    marked = {k: [7.0] * len(s) for k, s in zip(stored.column("key").to_pylist(), stored.column("scores").to_pylist())}
    pq.write_table(pa.table({"key": list(marked), "scores": list(marked.values())}).replace_schema_metadata(stored.schema.metadata), cache)
    with _sim() as sim:
        grown = load_config(None, [f"run_dir={tmp_path}", f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", *SMALL,
                                   "train.retriever.extra_questions=24", "train.retriever.loss=kl_negatives",
                                   "train.retriever.negatives=100", "eval.retrievers=[base, distilled]",
                                   "train.retriever.corpus_questions=true", "generate.count=12", "generate.consistency_k=5"])
        run_pipeline(Run(grown))
        assert sim.sim.stats["answered"] > 0  # the questions were written ...
    written = pq.read_table(tmp_path / "questions" / "generated.parquet").num_rows
    assert json.loads((tmp_path / "labels" / "summary.json").read_text())["questions"] == 24  # ... none was labelled
    rescored = pq.read_table(cache)
    scores = dict(zip(rescored.column("key").to_pylist(), rescored.column("scores").to_pylist()))
    assert 0 < written <= 12 and len(scores) == 48 + written
    assert all(scores[k] == v for k, v in marked.items())
    after = json.loads((tmp_path / "retriever" / "manifest.json").read_text())
    assert after["questions"] == manifest["questions"] + written and after["llm_labelled"] == manifest["llm_labelled"]
    assert "Stage 2's extra questions written by" in (tmp_path / "report" / "report.md").read_text()


def test_hybrid_student_trains_its_static_branch_on_ray_train_and_is_evaluated(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("IDISTILL_CACHE", str(tmp_path / "cache"))
    spec = "hybrid:sentence-transformers/all-MiniLM-L6-v2"
    with _sim() as sim:
        cfg = load_config(None, [f"run_dir={tmp_path / 'run'}", f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", *SMALL,
                                 f"encoder.model={spec}", "train.retriever.lr=1e-2", "train.retriever.interpolation=[1.0]",
                                 "eval.retrievers=[base, distilled]"])
        report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
    assert set(report["retrievers"]) == {"base-hybrid-minilm", "distilled"}
    base = encoders.load_encoder(cfg.encoder).state_dict()
    trained = encoders.load_encoder(cfg.encoder.model_copy(update={"model": stage_model(str(tmp_path / "run" / "retriever"))})).state_dict()
    changed = {k for k in base if not torch.equal(base[k], trained[k])}
    assert changed == {"3.embedding.weight"}  # MiniLM frozen beneath the branch, which learnt


def test_passages_branch_trains_the_static_passage_side_and_evaluates_over_its_own_index(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("IDISTILL_CACHE", str(tmp_path / "cache"))
    with _sim() as sim:
        cfg = load_config(None, [f"run_dir={tmp_path / 'run'}", f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]", *SMALL,
                                 "encoder.model=hybrid:sentence-transformers/all-MiniLM-L6-v2", "train.retriever.lr=1e-2",
                                 "train.retriever.passages=branch", "train.retriever.interpolation=[0.5, 1.0]",
                                 "eval.retrievers=[base, distilled]"])
        report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
    assert set(report["retrievers"]) == {"base-hybrid-minilm", "distilled"}
    manifest = json.loads((tmp_path / "run" / "retriever" / "manifest.json").read_text())
    alpha = manifest["dev"]["alpha"] if manifest.get("dev") else 1.0
    assert manifest["index"] == str(tmp_path / "run" / "retriever" / "dev" / f"alpha-{alpha:g}" / "index")
    own, base = FaissIndex.load(manifest["index"]), FaissIndex.load(str(tmp_path / "run" / "index" / "base"))
    assert manifest["document_encoder"] == own.manifest["encoder"] != base.manifest["encoder"]
    corpus = load_collection(cfg.data.path).corpus
    ids = corpus.ids[:8]
    # the transformer's half of every passage vector is the base index's; the static half moved, and
    # it is what the kept model itself encodes
    assert np.allclose(own.vectors(ids)[:, :384], base.vectors(ids)[:, :384], atol=1e-5)
    assert not np.allclose(own.vectors(ids)[:, 384:], base.vectors(ids)[:, 384:], atol=1e-4)
    kept = encoders.load_encoder(cfg.encoder.model_copy(update={"model": stage_model(str(tmp_path / "run" / "retriever"))}))
    assert np.allclose(own.vectors(ids), encoders.encode(kept, corpus.passages()[:8], cfg.encoder), atol=1e-4)
    # the exported model card's metrics are computed over that index too, as the report's are
    evaluator = RunTestEvaluator(Run(cfg), manifest["document_encoder"]["fingerprint"], manifest["index"])
    assert evaluator(kept)[f"{evaluator.name}_ndcg@10"] == pytest.approx(report["retrievers"]["distilled"]["ndcg@10"])
    # and the card's usage snippet loads it as it must be loaded: the branch is this package's code
    from sentence_transformers import SentenceTransformer

    from jobs.export import main as export_main

    out = tmp_path / "exported"
    assert export_main(["--run-dir", str(tmp_path / "run"), "--out", str(out)]) == 0
    assert 'trust_remote_code=True)  # needs `pip install idistill`' in (out / "retriever" / "README.md").read_text()
    assert SentenceTransformer(str(out / "retriever"), trust_remote_code=True).encode(["q"]).shape == (1, 768)
