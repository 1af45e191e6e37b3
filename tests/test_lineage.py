"""A trained model is used only while it is the run's current one: its recorded inputs (labels,
settings, the ranker it learnt from) equal what the run would train it from now. Manifests are
written as the stages write them; no model is trained here."""

import pyarrow as pa

from components import storage
from components.config import load_config
from components.corpus import load_collection
from components.run import Run
from components.distill.lists import direct_lists
from components.run_layout import ablation_uri, labels_uri, ranker_uri, retriever_uri
from components.stages import lineage
from components.stages.pipeline import write_manifest
from components.stages.ranker import ranker_inputs

DEMO = load_collection("demo")


def label_rows(status: str = "complete") -> list[dict]:
    split = DEMO.split("train")
    ids = DEMO.corpus.ids
    return [{"question_id": q, "question": t, "ranked_ids": [ids[i % len(ids)], ids[(i + 1) % len(ids)]], "status": status}
            for i, (q, t) in enumerate(zip(split.questions.ids, split.questions.texts))]


def _run(tmp_path, *overrides: str) -> Run:
    return Run(load_config(None, [f"run_dir={tmp_path}", *overrides]), DEMO)


def write_labels(run: Run, rows: list[dict]) -> None:
    storage.write_parquet(storage.join(labels_uri(run.cfg), "labels.parquet"), pa.Table.from_pylist(rows))


def record_ranker(run: Run) -> None:
    """What the ranker stage records when it finishes."""
    labels = storage.read_parquet(storage.join(labels_uri(run.cfg), "labels.parquet")).to_pylist()
    storage.mark_stage_done(ranker_uri(run.cfg), ranker_inputs(run, labels)[0])


def record_retriever(run: Run, ablation: str = "") -> None:
    """What Stage 2 records when it finishes (the parts the lineage checks), over the run's base
    index (a stand-in manifest where the run has none): the distilled retriever, or with
    ``ablation`` "direct" the one taught by the LLM's permutations alone."""
    cfg = run.cfg
    index = storage.join(cfg.run_dir, "index", "base", "manifest.json")
    if not storage.exists(index):
        storage.write_json(index, {"files": {"faiss.index": "abc"}, "encoder": {"fingerprint": "f"}})
    manifest = storage.read_json(index)
    if ablation:
        labels = storage.read_parquet(storage.join(labels_uri(cfg), "labels.parquet")).to_pylist()
        uri, teacher = ablation_uri(cfg, ablation), direct_lists(labels, cfg.train.retriever.dev_top_k).teacher_inputs
    else:
        uri, teacher = retriever_uri(cfg), {"scores": "s", "ranker_stage": storage.stage_digest(ranker_uri(cfg))}
    storage.mark_stage_done(uri, {
        "ranker": teacher, "index": manifest["files"], "dev": "d", "encoder": cfg.encoder.model,
        "train": cfg.train.retriever.inputs(ranker=not ablation), "workers": cfg.train.num_workers, "seed": cfg.seed},
        document_encoder=manifest["encoder"])


def test_a_ranker_is_current_only_for_the_labels_and_settings_it_was_trained_on(tmp_path):
    run = _run(tmp_path)
    assert lineage.ranker_problem(run) == "no trained ranker in this run"
    write_labels(run, label_rows())
    record_ranker(run)
    assert lineage.ranker_problem(run) is None
    assert lineage.ranker_problem(_run(tmp_path, "seed=1")) == (
        "out of date: trained on other labels than the run's current ones; rerun the ranker stage")  # other dev questions
    other_lr = lineage.ranker_problem(_run(tmp_path, "train.ranker.lr=0.5"))
    assert other_lr.startswith("out of date: trained with other settings (train.ranker.lr ") and "→ 0.5" in other_lr
    relabelled = label_rows()
    relabelled[0]["ranked_ids"] = relabelled[0]["ranked_ids"][::-1]
    write_labels(run, relabelled)
    assert "other labels" in lineage.ranker_problem(run)
    write_labels(run, label_rows("unusable"))
    assert lineage.ranker_problem(run).startswith("out of date: the labels it was trained on are gone (no usable teacher labels")


def test_a_skipped_stage_says_why_it_has_no_model(tmp_path):
    run = _run(tmp_path)
    write_manifest(run.cfg, {"ranker": {"status": "skipped", "reason": "no usable teacher labels among 3"}})
    assert lineage.ranker_problem(run) == "no trained ranker in this run: no usable teacher labels among 3"


def test_the_distilled_retriever_follows_its_ranker(tmp_path):
    run = _run(tmp_path)
    assert lineage.query_encoder_problem(run, "retriever") == "no distilled retriever in this run"
    write_labels(run, label_rows())
    record_ranker(run)
    record_retriever(run)
    assert lineage.query_encoder_problem(run, "retriever") is None
    assert "train.retriever.lr" in lineage.query_encoder_problem(_run(tmp_path, "train.retriever.lr=0.5"), "retriever")
    assert "its ranker is not current (out of date: trained with other settings" in lineage.query_encoder_problem(
        _run(tmp_path, "train.ranker.epochs=9"), "retriever")
    retrained = _run(tmp_path, "train.ranker.epochs=9")
    record_ranker(retrained)  # the ranker is retrained, Stage 2 is not
    assert lineage.query_encoder_problem(retrained, "retriever") == (
        "out of date: trained from another ranker than the run's current one; rerun the retriever stage")


def test_how_the_ranker_teaches_does_not_touch_the_direct_ablation(tmp_path):
    run = _run(tmp_path)
    write_labels(run, label_rows())
    record_retriever(run, ablation="direct")
    assert lineage.query_encoder_problem(run, "retriever-direct") is None
    for ranker_only in ("train.retriever.extra_questions=5", "train.retriever.corpus_questions=true",
                        "train.retriever.first_stage_weight=1", "train.retriever.labelled_targets=teacher"):
        assert lineage.query_encoder_problem(_run(tmp_path, ranker_only), "retriever-direct") is None, ranker_only
    assert "train.retriever.lr" in lineage.query_encoder_problem(_run(tmp_path, "train.retriever.lr=0.5"), "retriever-direct")
    record_ranker(run)
    record_retriever(run)  # the distilled retriever reads them all
    assert "train.retriever.extra_questions" in lineage.query_encoder_problem(
        _run(tmp_path, "train.retriever.extra_questions=5"), "retriever")


def test_stage1_leaves_out_every_dev_question_whatever_its_label_became(tmp_path):
    from components.stages.dev import held_out

    run = _run(tmp_path, "labels.max_questions=null")
    labels = label_rows()
    dev = held_out(run).questions
    for row in labels[::2]:
        row["status"] = "failed"  # a dev question's failed label does not move it into training
    _, usable, held = ranker_inputs(run, labels)
    assert held == set(dev) and dev and any(r["status"] == "failed" for r in labels if r["question_id"] in dev)
    assert not {r["question_id"] for r in usable} & dev
    assert held_out(_run(tmp_path, "labels.max_questions=null")) == held_out(run)  # chosen from the questions, not the labels
