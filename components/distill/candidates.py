"""Candidate mining: which passages each Stage 2 list holds.

Today's rule is the retriever's own top-n (``labels.num_candidates``): the base retriever's at
the start (the same lists the LLM labelled), the current encoder's after each refresh when the
passage side is trained, so the lists follow what the student now retrieves. Any other rule
(deeper lists, hard negatives) belongs here.
"""

from __future__ import annotations

from components.config import Config
from components.retrieval import Retriever, search_all


def mine_candidates(cfg: Config, retriever: Retriever, questions: list[str]) -> list[list[str]]:
    """Each question's candidate ids: ``retriever``'s top ``labels.num_candidates``."""
    return search_all(retriever, questions, cfg.labels.num_candidates, cfg.eval.batch_size).ids
