"""Stage 1: train the cross-encoder ranker on the teacher's permutations (ListMLE by default, Ray Train).

Uses labels whose status is ``complete`` or ``repaired``; ``unusable`` and ``failed`` ones are
excluded, and so are Stage 2's dev questions (the ranker is checked there). Writes
``RUN/ranker/model-<digest>`` (loadable by ``sentence_transformers.CrossEncoder``; the manifest names it), ``losses.jsonl`` and a
manifest; Ray Train checkpoints go to ``RUN/ranker/checkpoints`` each epoch,
so a killed worker resumes from the last one.
"""

from __future__ import annotations

from typing import Any

from components import console, storage
from components.labelling import USABLE, NoUsableLabels
from components.run import Run, stage
from components.run_layout import ranker_uri, stage_model
from components.stages.candidates import build_candidates
from components.stages.dev import held_out
from components.stages.labels import label
from components.training import RankerStage, train_stage


def ranker_inputs(run: Run, labels: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]], set[str]]:
    """What the ranker is trained from, as recorded in its manifest: the usable labels outside
    Stage 2's dev questions and ``train.ranker``; also those labels and the held-out questions.
    Cheap (no model, no LLM), so evaluation and serving can check a trained ranker is current."""
    cfg = run.cfg
    usable = [r for r in labels if r["status"] in USABLE]
    if not usable:
        counts = {s: sum(r["status"] == s for r in labels) for s in ("unusable", "failed")}
        raise NoUsableLabels(f"no usable teacher labels among {len(labels)} ({counts}); the ranker cannot be trained")
    dev = held_out(run).questions
    usable = [r for r in usable if r["question_id"] not in dev]  # Stage 2's dev questions
    inputs = {"labels": storage.content_hash([(r["question_id"], r["ranked_ids"]) for r in usable]),
              "train": cfg.train.ranker.model_dump(), "workers": cfg.train.num_workers, "seed": cfg.seed}
    return inputs, usable, set(dev)


@stage
def train_ranker(run: Run) -> str:
    """Label if needed, then train the ranker; return the URI of the saved model."""
    cfg, collection = run.cfg, run.collection
    labels = storage.read_parquet(label(run)).to_pylist()
    inputs, usable, dev = ranker_inputs(run, labels)
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    rows = [{"question": r["question"], "passages": [passages[d] for d in r["ranked_ids"]]} for r in usable]
    rc = cfg.train.ranker
    if rc.prior_temperature is not None:  # residual ranker: each pair's base cosine, from the candidates
        cands = storage.read_parquet(build_candidates(run)).to_pydict()
        cosine = {q: dict(zip(ids, s)) for q, ids, s in zip(cands["question_id"], cands["candidate_ids"], cands["scores"])}
        for row, r in zip(rows, usable):
            row["prior"] = [float(cosine[r["question_id"]][d]) for d in r["ranked_ids"]]
    out = ranker_uri(cfg)
    if storage.stage_is_current(out, inputs):
        console.say(f"ranker: up to date at {out}, skipping")
        return stage_model(out)
    model = train_stage(
        cfg, "ranker", RankerStage(rc), rows, inputs,
        labels_used=len(rows), labels_total=len(labels), labels_held_out=len(dev), teacher=usable[0]["model"],
    )
    console.say(f"ranker: trained on {len(rows)} of {len(labels)} labels ({len(dev)} held out as Stage 2's dev questions) → {model}")
    return model
