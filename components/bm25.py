"""BM25 lexical baseline on bm25s, behind the same ``search`` interface as the dense retrievers."""

from __future__ import annotations

from typing import Sequence

import bm25s
import numpy as np

from components.config import BM25Config
from components.retrieval import Hits


class BM25Retriever:
    name = "bm25"

    def __init__(self, doc_ids: list[str], passages: list[str], cfg: BM25Config) -> None:
        self.doc_ids = doc_ids
        self.cfg = cfg
        self._stemmer = None
        if cfg.stemmer:
            import Stemmer

            self._stemmer = Stemmer.Stemmer(cfg.stemmer)
        self._bm25 = bm25s.BM25(k1=cfg.k1, b=cfg.b)
        self._bm25.index(self._tokenize(passages), show_progress=False)

    def _tokenize(self, texts: Sequence[str]) -> "bm25s.tokenization.Tokenized":
        return bm25s.tokenize(list(texts), stopwords=self.cfg.stopwords, stemmer=self._stemmer, show_progress=False)

    def search(self, questions: Sequence[str], k: int) -> Hits:
        k = min(k, len(self.doc_ids))
        rows, scores = self._bm25.retrieve(self._tokenize(questions), k=k, show_progress=False, n_threads=1)
        ids, out_scores = [], []
        for r_row, s_row in zip(np.asarray(rows), np.asarray(scores)):
            # bm25s fills the tail with zero-score documents when fewer than k match; keep them
            # (ties at zero) so every retriever returns k results and top-k metrics compare fairly.
            ids.append([self.doc_ids[int(r)] for r in r_row])
            out_scores.append([float(s) for s in s_row])
        return Hits(ids, out_scores)
