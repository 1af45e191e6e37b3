import itertools
import math

import pytest
import torch

from components.losses import distill_kl_loss, lambda_loss, listmle_loss, listnet_loss


def _plackett_luce_nll(scores: list[float]) -> float:
    """Brute force: -log P(order) with P = prod_i exp(s_i) / sum_{j>=i} exp(s_j)."""
    nll = 0.0
    for i in range(len(scores)):
        nll -= scores[i] - math.log(sum(math.exp(s) for s in scores[i:]))
    return nll


def test_listmle_by_hand():
    # Scores [2, 1, 0] in teacher order: -(2 - log(e^2+e^1+e^0)) - (1 - log(e^1+e^0)) - 0
    expected = -(2 - math.log(math.e**2 + math.e + 1)) - (1 - math.log(math.e + 1))
    assert listmle_loss(torch.tensor([[2.0, 1.0, 0.0]])).item() == pytest.approx(expected, rel=1e-6)


def test_listmle_matches_brute_force_and_is_a_distribution_over_permutations():
    s = torch.tensor([0.3, -1.2, 2.0, 0.7])
    total = 0.0
    for perm in itertools.permutations(range(4)):
        ordered = s[list(perm)]
        loss = listmle_loss(ordered[None, :]).item()
        assert loss == pytest.approx(_plackett_luce_nll(ordered.tolist()), rel=1e-5)
        total += math.exp(-loss)
    assert total == pytest.approx(1.0, rel=1e-5)  # Plackett-Luce probabilities sum to one


def test_listmle_prefers_scores_agreeing_with_the_order():
    assert listmle_loss(torch.tensor([[3.0, 2.0, 1.0]])) < listmle_loss(torch.tensor([[1.0, 2.0, 3.0]]))


def test_listmle_mask_equals_the_shorter_list():
    padded = torch.tensor([[1.5, 0.2, -0.3, 9.0, 9.0], [0.1, 0.4, 2.0, -1.0, 0.5]])
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    batch = listmle_loss(padded, mask).item()
    expected = (_plackett_luce_nll([1.5, 0.2, -0.3]) + _plackett_luce_nll([0.1, 0.4, 2.0, -1.0, 0.5])) / 2
    assert batch == pytest.approx(expected, rel=1e-5)


def test_top_k_listmle_keeps_the_first_terms_only():
    s = [0.3, -1.2, 2.0, 0.7]
    full = [-(s[i] - math.log(sum(math.exp(x) for x in s[i:]))) for i in range(4)]
    assert listmle_loss(torch.tensor([s]), top_k=2).item() == pytest.approx(full[0] + full[1], rel=1e-6)
    assert listmle_loss(torch.tensor([s]), top_k=10).item() == pytest.approx(sum(full), rel=1e-6)


def test_listmle_gradient_flows():
    s = torch.tensor([[0.0, 0.0, 0.0]], requires_grad=True)
    listmle_loss(s).backward()
    assert s.grad[0, 0] < 0 < s.grad[0, 2]  # raise the first, lower the last


def test_kl_by_hand():
    r, q = torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([[0.0, 0.0]])
    # P = [0.75, 0.25], Q = [0.5, 0.5]
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert distill_kl_loss(q, r).item() == pytest.approx(expected, rel=1e-6)


def test_kl_temperatures_and_zero_at_match():
    r = torch.tensor([[2.0, 1.0, 0.0]])
    assert distill_kl_loss(r * 0.5, r, tau_retriever=0.5, tau_ranker=1.0).item() == pytest.approx(0.0, abs=1e-6)
    # Sharper teacher (lower tau_ranker) → larger divergence from a flat student.
    flat = torch.zeros(1, 3)
    assert distill_kl_loss(flat, r, tau_ranker=0.1) > distill_kl_loss(flat, r, tau_ranker=1.0)


def test_kl_mask_and_ranker_is_not_trained():
    q = torch.tensor([[0.2, 0.1, 5.0]], requires_grad=True)
    r = torch.tensor([[1.0, 0.0, -7.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    loss = distill_kl_loss(q, r, mask=mask)
    p = torch.softmax(torch.tensor([1.0, 0.0]), 0)
    qq = torch.softmax(torch.tensor([0.2, 0.1]), 0)
    assert loss.item() == pytest.approx(float((p * (p.log() - qq.log())).sum()), rel=1e-5)
    loss.backward()
    assert r.grad is None and q.grad[0, 2] == 0


def _listnet_brute(scores: list[float]) -> float:
    y = [1 / (i + 1) for i in range(len(scores))]
    z = sum(math.exp(s) for s in scores)
    return -sum(yi / sum(y) * (s - math.log(z)) for yi, s in zip(y, scores))


def test_listnet_matches_its_formula_and_masks_padding():
    s = [0.3, -1.2, 2.0, 0.7]
    assert listnet_loss(torch.tensor([s])).item() == pytest.approx(_listnet_brute(s), rel=1e-6)
    padded = torch.tensor([[1.5, 0.2, -0.3, 9.0], s])
    mask = torch.tensor([[True, True, True, False], [True] * 4])
    expected = (_listnet_brute([1.5, 0.2, -0.3]) + _listnet_brute(s)) / 2
    assert listnet_loss(padded, mask).item() == pytest.approx(expected, rel=1e-6)
    assert listnet_loss(torch.tensor([[3.0, 2.0, 1.0]])) < listnet_loss(torch.tensor([[1.0, 2.0, 3.0]]))


def _lambda_brute(scores: list[float], sigma: float = 1.0) -> float:
    n = len(scores)
    y = [1 / (i + 1) for i in range(n)]
    gains = [2**v - 1 for v in y]
    max_dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    gains = [g / max_dcg for g in gains]
    rank = {i: r + 1 for r, i in enumerate(sorted(range(n), key=lambda i: -scores[i]))}
    total = 0.0
    for i in range(n):
        for j in range(n):
            if y[i] > y[j]:
                gap = abs(rank[i] - rank[j])
                delta = abs(1 / math.log2(1 + gap) - 1 / math.log2(2 + gap))
                total += delta * abs(gains[i] - gains[j]) * math.log2(1 + math.exp(-sigma * (scores[i] - scores[j])))
    return total


def test_lambda_loss_matches_a_pair_by_pair_computation():
    for s in ([0.3, -1.2, 2.0, 0.7], [2.0, 1.0, 0.0], [0.0, 0.5, 1.0, 1.5, -2.0]):
        assert lambda_loss(torch.tensor([s])).item() == pytest.approx(_lambda_brute(s), rel=1e-5)
    assert lambda_loss(torch.tensor([[1.0, 0.2]]), sigma=2.0).item() == pytest.approx(_lambda_brute([1.0, 0.2], 2.0), rel=1e-5)
    padded = torch.tensor([[1.5, 0.2, -0.3, 9.0]])
    mask = torch.tensor([[True, True, True, False]])
    assert lambda_loss(padded, mask).item() == pytest.approx(_lambda_brute([1.5, 0.2, -0.3]), rel=1e-5)


def test_listwise_alternatives_push_the_teacher_first_up():
    for loss in (listnet_loss, lambda_loss):
        s = torch.tensor([[0.0, 0.1, 0.2]], requires_grad=True)
        loss(s).backward()
        assert s.grad[0, 0] < 0 < s.grad[0, 2], loss.__name__


def test_loss_registries_build_each_loss_from_its_stage_settings_and_name_the_config_choices():
    from typing import get_args

    from components.config import RankerTrainConfig, RetrieverTrainConfig
    from components.losses import RANKER_LOSSES, RETRIEVER_LOSSES, distill_kl_loss, listmle_loss

    assert set(get_args(RankerTrainConfig.model_fields["loss"].annotation)) == set(RANKER_LOSSES)
    assert set(get_args(RetrieverTrainConfig.model_fields["loss"].annotation)) == set(RETRIEVER_LOSSES)
    scores = torch.tensor([[2.0, 0.5, -1.0, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    top2 = RANKER_LOSSES["listmle"].from_settings(RankerTrainConfig(listmle_top_k=2))
    assert torch.allclose(top2(scores, mask), listmle_loss(scores, mask, 2))
    for name, cls in RANKER_LOSSES.items():  # every ranker loss builds from default settings and gives a finite loss
        assert torch.isfinite(cls.from_settings(RankerTrainConfig(loss=name))(scores, mask))
    kl = RETRIEVER_LOSSES["kl"].from_settings(RetrieverTrainConfig(tau_retriever=0.05, tau_ranker=0.5))
    teacher = torch.tensor([[1.0, 0.0, 2.0, 0.0]])
    assert torch.allclose(kl(scores, teacher, mask), distill_kl_loss(scores, teacher, 0.05, 0.5, mask))


def test_kl_with_negatives_is_plain_kl_without_them_and_masked_negatives_do_not_count():
    from components.losses import distill_kl_negatives_loss

    torch.manual_seed(0)
    q, r = torch.randn(3, 5), torch.randn(3, 5)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[2, 3:] = False
    plain = distill_kl_loss(q, r, 0.05, 0.3, mask)
    assert torch.allclose(distill_kl_negatives_loss(q, r, torch.empty(3, 0), 0.05, 0.3, mask), plain)
    negatives = torch.randn(3, 7)
    assert torch.allclose(
        distill_kl_negatives_loss(q, r, negatives, 0.05, 0.3, mask, torch.zeros(3, 7, dtype=torch.bool)), plain)
    # By hand: KL of P over the candidates against Q normalised over candidates and negatives.
    with_neg = distill_kl_negatives_loss(q, r, negatives, 0.05, 0.3, mask)
    expected = 0.0
    for b in range(3):
        m = mask[b]
        p = torch.softmax(r[b][m] / 0.3, -1)
        log_q = torch.log_softmax(torch.cat([q[b][m], negatives[b]]) / 0.05, -1)[: int(m.sum())]
        expected += (p * (p.log() - log_q)).sum() / 3
    assert torch.allclose(with_neg, expected, atol=1e-5)
    assert with_neg > plain  # the negatives take probability the candidates should hold
