"""Stage 2: train the retriever to match the ranker's distribution (KL by default, Ray Train).

For every training question (the LLM-labelled ones, plus ``train.retriever.extra_questions``
and, with ``train.retriever.corpus_questions``, questions the teacher wrote from the corpus, which
only the ranker scores), the ranker scores the base retriever's candidates (a Ray Data actor
pool), its scores are put on one scale (``train.retriever.ranker_spread``, ``distill.spread``), and
the retriever learns KL(softmax(ranker / tau_ranker) ‖ softmax(cos / tau_retriever)).
By default only the query encoder learns, against the frozen passage vectors of the base index, so
the index needs no rebuild: the distilled retriever is the new query encoder over
``RUN/index/base``. With ``train.retriever.passages: trained`` both sides learn, the corpus is
re-embedded and the candidates refreshed between rounds, and the result gets its own index
(``RUN/retriever/index``). Either way the kept model is the dev-chosen weight average with the
base encoder. Writes ``RUN/retriever/model-<digest>`` (sentence-transformers format; the manifest names it), ``losses.jsonl`` and
a manifest naming the passage encoder, the index and the dev choice. The logic lives in
``components.distill``; this module wires it to the stages it needs.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import numpy as np

from components import console, storage
from components.config import Config
from components.distill.lists import (Lists, Rescore, direct_lists, supervised_lists, teacher_target, teacher_top,
                                      teacher_where_labelled)
from components.distill.fusion import fuse_first_stage
from components.distill.rescore import ranker_scores
from components.distill.spread import mean_spread, to_spread
from components.distill.train import train_query_encoder
from components.errors import ConfigError, DataError
from components.labelling import NoUsableLabels
from components.run import Run, stage
from components.run_layout import ranker_uri
from components.stages.candidates import build_candidates
from components.stages.labels import label
from components.stages.dev import gold_positives, held_out
from components.stages.ranker import train_ranker


@stage
def train_retriever(run: Run) -> str:
    """Train the ranker if needed, then the retriever; return the URI of the saved model."""
    cfg, collection = run.cfg, run.collection
    ranker_model = train_ranker(run)
    tc = cfg.train.retriever
    pool = "stage2" if tc.extra_questions != 0 or tc.corpus_questions else "labelled"
    cands = storage.read_parquet(build_candidates(run, pool)).to_pydict()
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    rescore: Rescore = functools.partial(scaled_scores, cfg, ranker_model, passages)
    scores = rescore(cands["question"], cands["candidate_ids"], cands["scores"], None)
    labels = storage.read_parquet(label(run)).to_pylist()
    dev = held_out(run)
    if tc.labelled_targets == "teacher":
        scores, replaced = teacher_where_labelled(cands["question_id"], cands["candidate_ids"], scores, labels,
                                                  tc.ranker_spread, keep_ranker=dev.questions)
        console.say(f"retriever: {replaced} training lists learn the LLM's own permutation, the rest the ranker's "
                    "scores (the dev questions' lists are left out of training; the report counts what trained)")
    return train_query_encoder(cfg, collection, "retriever", Lists(
        cands["question_id"], cands["question"], cands["candidate_ids"], scores,
        {"scores": storage.content_hash([s.tolist() for s in scores]), "ranker_stage": storage.stage_digest(ranker_uri(run.cfg))},
        teacher_top(labels, cfg.train.retriever.dev_top_k), teacher_target(cfg.train.retriever.dev_top_k), rescore,
    ), dev)


def scaled_scores(cfg: Config, ranker_model: str, passages: dict[str, str], questions: list[str], candidates: list[list[str]],
                  priors: Sequence[Sequence[float]], cache: Optional[str] = None) -> list[np.ndarray]:
    """The ranker's scores of the lists (``ranker_scores``, cached as the ranker gives them), with
    ``train.retriever.first_stage_weight`` times the first stage's cosines (``priors``), at
    ``train.retriever.ranker_spread``: the first scoring and every refresh round's."""
    tc = cfg.train.retriever
    scores = fuse_first_stage(ranker_scores(cfg, ranker_model, passages, questions, candidates, priors, cache), priors,
                              tc.first_stage_weight)
    spread, raw = tc.ranker_spread, mean_spread(scores)
    if spread is not None and raw > 0:
        console.say(f"retriever: ranker scores ×{spread / raw:.2f}, from a mean within-list spread of {raw:.3f} to {spread:g}")
    return to_spread(scores, spread)


@stage
def train_ablation(run: Run, ablation: str) -> str:
    """A query encoder trained without the ranker, to show what the ranker buys: ``direct`` (the
    teacher LLM's permutation is the target) or ``supervised`` (gold judgements are)."""
    if ablation == "direct":
        lists = direct_lists(storage.read_parquet(label(run)).to_pylist(), run.cfg.train.retriever.dev_top_k)
        if lists is None:
            raise NoUsableLabels("no usable teacher labels: the direct ablation has nothing to learn from")
    elif ablation == "supervised":
        lists = supervised_lists(storage.read_parquet(build_candidates(run)).to_pydict(), gold_positives(run))
        if lists is None:
            raise DataError("no training question has a judged-relevant passage among its candidates")
    else:
        raise ConfigError(f"unknown ablation {ablation!r}; choose direct or supervised")
    return train_query_encoder(run.cfg, run.collection, f"retriever-{ablation}", lists, held_out(run))
