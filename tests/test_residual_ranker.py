"""The residual ranker starts exactly where its first stage is."""

import numpy as np

from components.config import DEFAULT_MODEL
from components.ranker import RerankRetriever, load_ranker, score_pairs, with_prior, zero_head
from components.retrieval import Hits

PASSAGES = {"a": "Cholesterol feeds breast cancer cells.", "b": "Asthma and eczema respond to diet.", "c": "Arsenic in rice."}


class _Fixed:
    """A first stage that returns fixed hits."""

    def __init__(self, hits: Hits) -> None:
        self.hits = hits

    def search(self, questions, k):
        return self.hits


def test_a_zeroed_head_scores_every_pair_zero_and_the_prior_keeps_the_first_stage_order():
    model, tokenizer = load_ranker(DEFAULT_MODEL, device="cpu")
    zero_head(model)
    logits = score_pairs(model, tokenizer, ["diet and asthma"] * 3, list(PASSAGES.values()), 64, 8)
    assert np.allclose(logits, 0.0)
    first = Hits([["c", "a", "b"]], [[0.61, 0.40, 0.39]])
    plain = RerankRetriever("r", _Fixed(first), PASSAGES.__getitem__, model, tokenizer, 3, 64, 8)
    residual = RerankRetriever("r", _Fixed(first), PASSAGES.__getitem__, model, tokenizer, 3, 64, 8, prior_temperature=0.05)
    assert residual.search(["diet and asthma"], 3).ids == first.ids  # the prior alone: the first stage's order
    assert residual.search(["diet and asthma"], 3).scores[0] == list(with_prior(np.zeros(3), first.scores[0], 0.05))
    assert plain.search(["diet and asthma"], 3).scores[0] == [0.0, 0.0, 0.0]


def test_with_prior_adds_the_scaled_cosine_only_with_a_temperature():
    assert np.allclose(with_prior(np.array([1.0, -1.0]), [0.5, 0.2], 0.1), [6.0, 1.0])
    assert np.allclose(with_prior(np.array([1.0, -1.0]), [0.5, 0.2], None), [1.0, -1.0])
