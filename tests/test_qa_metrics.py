"""EM / F1 against hand-computed values (SQuAD v1.1 normalization)."""

import pytest

from components.qa_metrics import best_over_gold, exact_match, normalize_answer, token_f1


def test_normalization_lowercases_strips_punctuation_and_articles():
    assert normalize_answer("  The  Eiffel-Tower, in Paris! ") == "eiffeltower in paris"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("Theory") == "theory"  # "the" only as a whole word


def test_exact_match():
    assert exact_match("the Lake Orvel.", "Lake Orvel") == 1.0
    assert exact_match("Lake Orvel in the north", "Lake Orvel") == 0.0


def test_f1_by_hand():
    # prediction tokens: [lake, orvel, in, north]; gold: [lake, orvel]; common 2
    # P = 2/4, R = 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert token_f1("Lake Orvel in the north", "the Lake Orvel") == pytest.approx(2 / 3)
    # multiplicity counts: prediction [443, 443, km]; gold [443, square, kilometres]; common 1
    # P = 1/3, R = 1/3, F1 = 1/3
    assert token_f1("443 443 km", "443 square kilometres") == pytest.approx(1 / 3)
    assert token_f1("nothing shared", "443") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("the", "443") == 0.0


def test_best_over_gold_answers():
    em, f1 = best_over_gold("443 square km", ["443 square kilometres", "443 km²", "443 square km"])
    assert (em, f1) == (1.0, 1.0)
    em, f1 = best_over_gold("443 kilometres", ["443 square kilometres", "four hundred"])
    assert em == 0.0 and f1 == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))  # P = 2/2, R = 2/3
    assert best_over_gold("x", []) == (0.0, 0.0)
