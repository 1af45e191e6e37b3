import pytest

from components.metrics import hit_matrix, rank_metrics, top_k_accuracy
from components.retrieval import Hits


def test_top_k_accuracy_by_hand():
    matrix = [[False, True, False], [False, False, False], [True, False, False]]
    assert top_k_accuracy(matrix, [1, 2, 3]) == {"1": 1 / 3, "2": 2 / 3, "3": 2 / 3}
    with pytest.raises(ValueError):
        top_k_accuracy([], [1])


def test_hit_matrix_answers_vs_qrels():
    hits = Hits([["d1", "d2"], ["d2", "d1"]], [[2.0, 1.0], [2.0, 1.0]])
    passages = {"d1": "Paris is the capital of France.", "d2": "Berlin is in Germany."}.__getitem__
    qrels = {"q1": {"d2": 1}, "q2": {"d1": 0}}
    assert hit_matrix(hits, ["q1", "q2"], [["Paris"], ["Germany"]], qrels, passages) == [[True, False], [True, False]]
    # Without answers: success is a judged-relevant (score > 0) document; q2's only judgement is 0.
    assert hit_matrix(hits, ["q1", "q2"], None, qrels, passages) == [[False, True], [False, False]]


def test_rank_metrics_match_hand_computation():
    # q1: relevant doc at rank 2 → RR 1/2; q2: relevant at rank 1 → RR 1.
    hits = Hits([["a", "b", "c"], ["x", "y", "z"]], [[0.0, 0.0, 0.0], [3.0, 2.0, 1.0]])
    qrels = {"q1": {"b": 1}, "q2": {"x": 1, "q": 1}}
    m = rank_metrics(hits, ["q1", "q2"], qrels, [1, 3])
    assert m["mrr@10"] == pytest.approx(0.75)
    # nDCG@10: q1 = (1/log2(3)) / 1; q2 = 1 / (1 + 1/log2(3)) (two relevant, one retrieved at rank 1).
    import math

    q1, q2 = 1 / math.log2(3), 1 / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((q1 + q2) / 2)
    assert m["recall@1"] == pytest.approx((0 + 0.5) / 2)
    assert m["recall@3"] == pytest.approx((1 + 0.5) / 2)


def test_paired_bootstrap_brackets_the_mean_difference_and_excludes_zero_only_for_a_clear_one():
    from components.metrics import paired_bootstrap

    clear = paired_bootstrap([0.1, 0.2, 0.15, 0.12, 0.18] * 20)
    assert clear["ci_low"] <= clear["delta"] <= clear["ci_high"] and clear["ci_low"] > 0
    assert clear["delta"] == pytest.approx(0.15)
    noisy = paired_bootstrap([1.0, -1.0] * 50)
    assert noisy["ci_low"] < 0 < noisy["ci_high"]
    assert paired_bootstrap([0.3, -0.1, 0.2], seed=1) == paired_bootstrap([0.3, -0.1, 0.2], seed=1)  # seeded


def test_per_question_ndcg_matches_the_aggregate_and_scores_unretrieved_judged_questions_zero():
    from components.metrics import per_question_ndcg, rank_metrics
    from components.retrieval import Hits

    hits = Hits([["d1", "d2"], ["d3", "d1"], ["d9"]], [[2.0, 1.0], [2.0, 1.0], [1.0]])
    qrels = {"q1": {"d2": 1}, "q2": {"d3": 2, "d1": 1}, "q3": {"d4": 1}}
    per = per_question_ndcg(hits, ["q1", "q2", "q3"], qrels)
    assert per["q3"] == 0.0 and per["q2"] == pytest.approx(1.0)
    assert sum(per.values()) / 3 == pytest.approx(rank_metrics(hits, ["q1", "q2", "q3"], qrels, [1])["ndcg@10"])
