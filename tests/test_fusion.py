import numpy as np
import pytest

from components.distill.fusion import fuse_first_stage
from components.distill.spread import mean_spread


def test_without_a_weight_the_target_is_the_rankers_scores_alone():
    scores = [np.array([3.0, 1.0, 2.0])]
    out = fuse_first_stage(scores, [[0.1, 0.9, 0.5]], 0.0)
    assert out[0].dtype == np.float32 and np.array_equal(out[0], scores[0])


def test_each_signal_counts_over_its_own_spread_so_the_weight_does_not_depend_on_the_rankers_scale():
    # The ranker prefers candidate 0, the first stage candidate 1, by the same margin on each one's scale:
    # at weight 1 they tie, whatever raw scale either signal came in.
    cosines = [[0.50, 0.52, 0.40], [0.30, 0.31, 0.20]]
    for scale in (0.1, 10.0):
        scores = [scale * np.array([0.52, 0.50, 0.40]), scale * np.array([0.31, 0.30, 0.20])]
        fused = fuse_first_stage(scores, cosines, 1.0)
        assert [f[0] for f in fused] == pytest.approx([f[1] for f in fused], abs=1e-5)
        assert [int(np.argmax(f)) for f in fuse_first_stage(scores, cosines, 2.0)] == [1, 1]  # more weight: the first stage's order
        assert [int(np.argmax(f)) for f in fuse_first_stage(scores, cosines, 0.5)] == [0, 0]


def test_the_fused_target_is_the_two_signals_summed_over_their_mean_spreads():
    scores, cosines = [np.array([2.0, 0.0]), np.array([1.0, -1.0, 0.0])], [[0.6, 0.4], [0.3, 0.5, 0.4]]
    fused = fuse_first_stage(scores, cosines, 0.5)
    s, c = mean_spread(scores), mean_spread([np.array(x) for x in cosines])
    for f, sc, co in zip(fused, scores, cosines):
        assert f == pytest.approx(sc / s + 0.5 * np.array(co) / c, rel=1e-5)


def test_a_flat_first_stage_adds_a_constant_and_changes_no_order():
    fused = fuse_first_stage([np.array([1.0, 3.0, 2.0])], [[0.5, 0.5, 0.5]], 1.0)
    assert list(np.argsort(fused[0])) == [0, 2, 1]


def test_lists_and_cosines_of_other_lengths_are_refused():
    with pytest.raises(ValueError, match="one first-stage cosine per ranker score"):
        fuse_first_stage([np.array([1.0, 2.0])], [[0.5]], 1.0)
