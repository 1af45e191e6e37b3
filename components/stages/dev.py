"""Stage 2's dev split of a run: which training questions both stages hold out, chosen from what
each question is about, before and whatever the teacher answers."""

from __future__ import annotations

from components import storage
from components.distill.dev import HeldOut, hold_out
from components.run import Run, stage
from components.stages.candidates import training_questions
from components.stages.questions import generate_questions


def gold_positives(run: Run) -> dict[str, set[str]]:
    """Relevant passages per training question: the train qrels, or each generated question's source."""
    cfg = run.cfg
    if cfg.data.questions == "generated":
        table = storage.read_parquet(generate_questions(run)).to_pydict()
        return {q: {s} for q, s in zip(table["question_id"], table["source_id"])}
    qrels = run.collection.split(cfg.data.train_split, cfg.data.on_invalid).qrels
    return {q: {d for d, r in docs.items() if r > 0} for q, docs in qrels.items()}


@stage
def held_out(run: Run) -> HeldOut:
    """``train.retriever.dev_fraction`` of the LLM-labelled questions, whole documents at a time
    (grouped by each question's judged document); Stage 2's extra questions about those documents
    are held out too (``HeldOut.excludes``)."""
    cfg = run.cfg
    return hold_out(run.collection.corpus, gold_positives(run), training_questions(run).ids,
                    cfg.train.retriever.dev_fraction, cfg.seed)
