import pytest

from components.llm.aggregation import agreement, borda, kendall_tau


def test_borda_by_hand_and_ties_go_to_the_first_ranking():
    assert borda([["a", "b", "c"]]) == ["a", "b", "c"]
    # points: a 3+1+2=6, b 2+3+3=8, c 1+2+1=4
    assert borda([["a", "b", "c"], ["b", "c", "a"], ["b", "a", "c"]]) == ["b", "a", "c"]
    assert borda([["a", "b"], ["b", "a"]]) == ["a", "b"]  # a tie: the first ranking decides
    with pytest.raises(ValueError):
        borda([["a", "b"], ["a", "c"]])


def test_kendall_tau_and_agreement():
    assert kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert kendall_tau(["a", "b", "c"], ["b", "a", "c"]) == pytest.approx(1 / 3)
    assert agreement([["a", "b", "c"]]) == 1.0
    assert agreement([["a", "b", "c"], ["a", "b", "c"], ["c", "b", "a"]]) == pytest.approx((1 - 1 - 1) / 3)
