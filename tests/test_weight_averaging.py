"""Weight averaging with the base encoder and the dev split that chooses it (pure functions)."""

import pytest
import torch

from components.weight_averaging import dev_split, interpolate, pick_alpha


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 3), value), "position_ids": torch.arange(4)}


def test_interpolate_mixes_floats_and_keeps_integer_buffers():
    base, tuned = _state(1.0), _state(3.0)
    tuned["position_ids"] = torch.arange(4) + 10
    mixed = interpolate(base, tuned, 0.25)
    assert torch.allclose(mixed["w"], torch.full((2, 3), 1.5))  # 0.75 * 1 + 0.25 * 3
    assert torch.equal(mixed["position_ids"], tuned["position_ids"])
    assert torch.equal(interpolate(base, tuned, 0.0)["w"], base["w"])
    assert torch.equal(interpolate(base, tuned, 1.0)["w"], tuned["w"])


def test_interpolate_refuses_other_architectures_and_bad_alpha():
    with pytest.raises(ValueError, match="not the same architecture"):
        interpolate({"a": torch.zeros(1)}, {"b": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match="alpha must be in"):
        interpolate(_state(0), _state(1), 1.5)


def test_pick_alpha_takes_the_best_and_breaks_ties_towards_the_base():
    assert pick_alpha([0.0, 0.5, 1.0], [0.30, 0.35, 0.33]) == 0.5
    assert pick_alpha([0.0, 0.5, 1.0], [0.40, 0.35, 0.40]) == 0.0
    assert pick_alpha([1.0, 0.5], [0.2, 0.2]) == 0.5
    with pytest.raises(ValueError):
        pick_alpha([0.0, 1.0], [0.1])


def test_dev_split_is_a_stable_fraction_independent_of_order():
    ids = [f"q{i}" for i in range(200)]
    dev = dev_split(ids, 0.1, seed=0)
    assert len(dev) == 20 and dev <= set(ids)
    assert dev_split(list(reversed(ids)), 0.1, seed=0) == dev
    assert dev_split(ids, 0.1, seed=1) != dev
    assert dev_split(ids, 0.0, seed=0) == set()
    assert len(dev_split(["a", "b"], 0.01, seed=0)) == 1  # at least one, never all
    assert dev_split(["a"], 0.5, seed=0) == set()


def test_dev_split_holds_out_whole_groups():
    ids = [f"q{i}" for i in range(200)]
    group_of = {q: f"article{i % 20}" for i, q in enumerate(ids)}  # 20 articles, 10 questions each
    dev = dev_split(ids, 0.1, seed=0, group_of=group_of)
    held = {group_of[q] for q in dev}
    # every question of a held-out article is in dev, and none of the others
    assert dev == {q for q in ids if group_of[q] in held}
    assert len(dev) == 20 and len(held) == 2
    assert dev_split(list(reversed(ids)), 0.1, seed=0, group_of=group_of) == dev
    # one big group is never all of the questions
    assert dev_split(ids, 0.5, seed=0, group_of={q: "same" for q in ids}) == set()
    # questions without a group are groups of their own
    assert len(dev_split(ids, 0.1, seed=0, group_of={})) == 20
