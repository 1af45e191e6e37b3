"""The dev split and the weight average it chooses.

Dev questions are held out of Stage 2 training whole documents at a time (test questions concern
documents no training question touched); each weight average of the base and trained encoders is
scored on them, and the best is kept (``weight_averaging``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from components import console, encoders, storage
from components.config import Config
from components.corpus import Corpus
from components.distill.lists import Lists
from components.distill.pooled_judge import pools
from components.index import FaissIndex
from components.metrics import paired_bootstrap, per_question_ndcg, rank_metrics
from components.retrieval import Hits
from components.run_layout import MODEL_DIR
from components.stages.index import index_corpus
from components.weight_averaging import dev_split, interpolate, pick_alpha


def document_groups(corpus: Corpus, targets: dict[str, set[str]]) -> dict[str, str]:
    """Each question's group for the dev split: the title of its target document (the first in
    title order when it has several), or the document id where the corpus has no titles, so that
    dev questions are about documents the training questions are not, as test questions are."""
    title = {d: t or d for d, t in zip(corpus.ids, corpus.titles)}
    return {q: min(title.get(d, d) for d in docs) for q, docs in targets.items() if docs}


@dataclass(frozen=True)
class HeldOut:
    """Stage 2's dev questions, which Stage 1 and Stage 2 both leave out of training, and the
    document group every question is about."""

    questions: frozenset[str]
    groups: dict[str, str]
    dev_groups: frozenset[str]

    def excludes(self, question_id: str) -> bool:
        """A dev question, or any other question about a dev question's document."""
        return question_id in self.questions or self.groups.get(question_id) in self.dev_groups


def hold_out(corpus: Corpus, about: dict[str, set[str]], question_ids: Sequence[str], fraction: float, seed: int) -> HeldOut:
    """Hold out ``fraction`` of ``question_ids`` whole documents at a time (``weight_averaging.dev_split``),
    grouped by the document each question is about (``about``: its judged-relevant passages, or
    the source passage an LLM wrote it from). Chosen before any label exists, so a question whose
    label failed is held out exactly as it would be had it succeeded."""
    groups = document_groups(corpus, about)
    dev = dev_split(question_ids, fraction, seed, groups)
    return HeldOut(frozenset(dev), groups, frozenset(groups[q] for q in dev if q in groups))


def rerank_on_dev(lists: Lists, dev: set[str]) -> Optional[dict[str, Any]]:
    """nDCG@10 of the dev questions' targets in each candidate list as the first stage ordered it
    and as the ranker orders it, with the paired bootstrap interval of their difference: whether
    the ranker reproduces the teacher beyond its first stage on lists it was not trained on (None
    without dev questions). It measures agreement with the teacher, not quality: where the
    teacher's order below its relevant passages follows the first stage's own signal (the
    simulator's lexical tie-break, a bag-of-words base), a better ranker can agree less."""
    keep = [i for i, q in enumerate(lists.question_ids) if q in dev and lists.dev_targets.get(q)]
    if not keep:
        return None
    ids = [lists.question_ids[i] for i in keep]
    qrels = {q: dict(lists.dev_targets[q]) for q in ids}
    first = Hits([lists.candidates[i] for i in keep], [[-float(r) for r in range(len(lists.candidates[i]))] for i in keep])
    ordered = [np.argsort(-lists.teacher[i], kind="stable") for i in keep]
    teacher = Hits([[lists.candidates[i][j] for j in o] for i, o in zip(keep, ordered)],
                   [[float(lists.teacher[i][j]) for j in o] for i, o in zip(keep, ordered)])
    per_first, per_teacher = per_question_ndcg(first, ids, qrels), per_question_ndcg(teacher, ids, qrels)
    return {"questions": len(ids), "target": lists.dev_target, "first_stage": float(np.mean([per_first[q] for q in ids])),
            "teacher": float(np.mean([per_teacher[q] for q in ids])),
            "difference": paired_bootstrap([per_teacher[q] - per_first[q] for q in ids])}


# The teacher ranks each dev question's pool of every weight average's top passages:
# (question ids, questions, pools) → (targets, what they are, what judging cost).
Judge = Callable[[list[str], list[str], list[list[str]]], tuple[dict[str, dict[str, int]], str, dict[str, Any]]]


def average_index(cfg: Config, corpus: Corpus, stage_name: str, alpha: float, model_dir: str,
                  frozen_base: Optional[FaissIndex] = None) -> str:
    """The corpus indexed by the weight average α saved at ``model_dir``, under
    ``RUN/<stage>/dev/alpha-<α>/`` with a copy of the model every worker can read; an index of
    the same weights already there is reused (``index_corpus``, which ``frozen_base`` lets pool
    a hybrid's static half alone). Return the index's URI."""
    where = storage.join(cfg.run_dir, stage_name, "dev", f"alpha-{alpha:g}")
    storage.put_dir(model_dir, storage.join(where, MODEL_DIR))
    encoder = cfg.encoder.model_copy(update={"model": storage.join(where, MODEL_DIR)})
    return index_corpus(cfg, corpus, encoder, storage.join(where, "index"), name=f"{stage_name}: dev α={alpha:g} index",
                        frozen_base=frozen_base)


def choose_average(
    cfg: Config, corpus: Corpus, stage_name: str, dev_ids: list[str], dev_questions: list[str],
    targets: dict[str, dict[str, int]], target: str, documents: int, judge: Optional[Judge], index: Optional[FaissIndex],
    trained_dir: str, scratch: str, frozen_base: Optional[FaissIndex] = None,
) -> tuple[str, dict[str, Any]]:
    """Score each weight average of the base and trained encoders on the dev questions (nDCG@10 of
    their targets over the whole corpus); save the best one to ``scratch``. With a ``judge`` the
    targets are the teacher's ranking of what the averages retrieve (``pooled_judge``), else the
    given ``targets``. ``index`` holds the frozen passage vectors; without one (passage side
    trained) each average re-embeds the corpus, under ``RUN/<stage>/dev/`` (``average_index``;
    ``frozen_base`` for a hybrid's ``passages: branch``). ``documents`` (how many
    documents the dev questions are about) goes to the manifest."""
    alphas = sorted(set(cfg.train.retriever.interpolation))
    if not dev_ids:
        console.say(f"{stage_name}: no dev questions, keeping the trained model as it is")
        return trained_dir, {"dev": None}
    base = encoders.load_encoder(cfg.encoder).state_dict()
    model = encoders.load_encoder(cfg.encoder.model_copy(update={"model": trained_dir}))
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    depth = max(10, cfg.train.retriever.dev_pool_depth)
    hits = []
    for alpha in alphas:
        model.load_state_dict(interpolate(base, trained, alpha))
        searched = index
        if searched is None:
            model.save(f"{scratch}/alpha-{alpha:g}")
            searched = FaissIndex.load(average_index(cfg, corpus, stage_name, alpha, f"{scratch}/alpha-{alpha:g}", frozen_base))
        hits.append(Hits(*searched.search(encoders.encode(model, dev_questions, cfg.encoder), depth)))
    judging: dict[str, Any] = {}  # what judging cost, in the manifest when there was a judge
    if judge is not None:
        console.say(f"{stage_name}: the teacher ranks the pooled top {cfg.train.retriever.dev_pool_depth} of every α "
                    f"for {len(dev_ids)} dev questions")
        targets, target, cost = judge(dev_ids, dev_questions, pools([h.ids for h in hits], cfg.train.retriever.dev_pool_depth))
        judging = {"judging": cost}
    judged = [q for q in dev_ids if targets.get(q)]
    if not judged:
        console.say(f"{stage_name}: no dev question has a usable target, keeping the trained model as it is")
        return trained_dir, {"dev": {"questions": 0, "target": target, **judging}}
    qrels = {q: dict(targets[q]) for q in judged}
    scores = [rank_metrics(h, dev_ids, qrels, [10])["ndcg@10"] for h in hits]
    chosen = pick_alpha(alphas, scores)
    kept = trained_dir  # α 1: the trained model as it is, not a second copy of it
    if chosen != 1:
        kept = f"{scratch}/chosen"
        model.load_state_dict(interpolate(base, trained, chosen))
        model.save(kept)
    curve = ", ".join(f"α={a:g}: {s:.4f}" for a, s in zip(alphas, scores))
    console.say(f"{stage_name}: dev nDCG@10 of {target} on {len(judged)} held-out questions: {curve} → keeping α={chosen:g}")
    return kept, {"dev": {"questions": len(judged), "documents": documents, "target": target, "alphas": alphas,
                                         "ndcg@10": scores, "alpha": chosen, **judging}}
