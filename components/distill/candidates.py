"""Candidate mining: which passages each Stage 2 list holds, and which stand against them.

Today's rule is the retriever's own top-n (``labels.num_candidates``): the base retriever's at
the start (the same lists the LLM labelled), the current encoder's after each refresh when the
passage side is trained, so the lists follow what the student now retrieves. Any other rule
(deeper lists, hard negatives) belongs here. ``negative_bank`` picks the corpus passages that
``kl_negatives`` puts in the student's softmax beside every list.
"""

from __future__ import annotations

import random
from typing import Sequence

from components.config import Config
from components.retrieval import Hits, Retriever, search_all


def mine_candidates(cfg: Config, retriever: Retriever, questions: list[str]) -> Hits:
    """Each question's candidates and their scores: ``retriever``'s top ``labels.num_candidates``."""
    return search_all(retriever, questions, cfg.labels.num_candidates, cfg.eval.batch_size)


def negative_bank(doc_ids: Sequence[str], size: int, seed: int) -> list[str]:
    """A seeded sample of ``size`` passage ids (all of them, in corpus order, when the corpus is
    no larger): the same for the same corpus and seed, whatever else changes."""
    if size >= len(doc_ids):
        return list(doc_ids)
    return sorted(random.Random(seed).sample(sorted(doc_ids), size))
