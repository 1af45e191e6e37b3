"""The retrieval interface every retriever (BM25, dense base, distilled) implements.

Evaluation, labelling candidates and serving only see ``Retriever.search``: a list of questions
in, ranked document ids with scores out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from components import console, encoders
from components.config import EncoderConfig
from components.index import FaissIndex


@dataclass
class Hits:
    """Per question: document ids best first, and their scores."""

    ids: list[list[str]]
    scores: list[list[float]]

    def extend(self, other: "Hits") -> None:
        self.ids.extend(other.ids)
        self.scores.extend(other.scores)


class Retriever(Protocol):
    name: str

    def search(self, questions: Sequence[str], k: int) -> Hits: ...


class DenseRetriever:
    """Query encoder + FAISS index; refuses an index whose passages another encoder embedded.

    ``document_fingerprint`` names the encoder of the passage side when it differs from the query
    encoder (a distilled query encoder over the base passage vectors); by default both are ``model``.
    """

    def __init__(
        self, name: str, model: Any, encoder_cfg: EncoderConfig, index: FaissIndex, document_fingerprint: str | None = None
    ) -> None:
        index.check_encoder(document_fingerprint or encoders.fingerprint(model))
        self.name, self.model, self.cfg, self.index = name, model, encoder_cfg, index

    def search(self, questions: Sequence[str], k: int) -> Hits:
        vectors = encoders.encode(self.model, list(questions), self.cfg)
        ids, scores = self.index.search(vectors, k)
        return Hits(ids, scores)


def search_all(retriever: Retriever, questions: Sequence[str], k: int, batch_size: int) -> Hits:
    """Search in batches so memory stays flat on large question sets."""
    hits = Hits([], [])
    with console.bar(len(questions), f"search {retriever.name}", "question") as progress:
        for start in range(0, len(questions), batch_size):
            batch = questions[start : start + batch_size]
            hits.extend(retriever.search(batch, k))
            progress.update(len(batch))
    return hits
