"""Answer quality: exact match and token F1 after SQuAD's normalization, max over gold answers.

Normalization (the official SQuAD v1.1 script): lowercase, drop punctuation, drop the articles
"a", "an", "the", collapse whitespace. EM is 1 when the normalized strings are equal. F1 is the
harmonic mean of token precision and recall, counting shared tokens with multiplicity:
F1 = 2·P·R / (P + R), P = |common| / |prediction tokens|, R = |common| / |gold tokens|.
A question scores its best value over its gold answers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_gold(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of ``prediction``: the best over ``golds`` (0, 0 when there is none)."""
    if not golds:
        return 0.0, 0.0
    return max(exact_match(prediction, g) for g in golds), max(token_f1(prediction, g) for g in golds)
