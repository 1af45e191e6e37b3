import numpy as np
import pytest

from components.distill.spread import mean_spread, to_spread


def test_scores_are_scaled_by_one_factor_to_the_target_spread_keeping_each_lists_order_and_relative_confidence():
    flat, sharp = np.array([0.1, 0.0, -0.1]), np.array([2.0, 0.0, -2.0, 1.0])
    scaled = to_spread([flat, sharp], 0.65)
    assert mean_spread(scaled) == pytest.approx(0.65, rel=1e-5)
    factor = scaled[0][0] / flat[0]
    assert scaled[1] == pytest.approx(sharp * factor, rel=1e-5)  # one factor: the sharper list stays sharper
    assert [list(np.argsort(s)) for s in scaled] == [list(np.argsort(flat)), list(np.argsort(sharp))]


def test_lists_of_one_candidate_do_not_count_towards_the_spread():
    assert mean_spread([np.array([5.0]), np.array([1.0, -1.0])]) == pytest.approx(1.0)
    assert mean_spread([np.array([5.0])]) == 0.0


@pytest.mark.parametrize("scores, spread", [([np.array([1.0, 2.0])], None), ([np.array([3.0, 3.0]), np.array([1.0])], 0.65)])
def test_scores_are_left_as_they_are_without_a_target_or_without_any_spread(scores, spread):
    out = to_spread(scores, spread)
    assert all(o.dtype == np.float32 and np.array_equal(o, s) for o, s in zip(out, scores))
