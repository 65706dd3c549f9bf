"""Tests of sslteach.swav: Sinkhorn-Knopp marginals and its lack of gradient, the swapped
prediction against a reference loop, collapse at log K, and a smoke run of the training path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslteach.encoders import small_convnet
from sslteach.swav import (
    SwAVModel,
    SwAVSettings,
    normalize_prototypes,
    sinkhorn_knopp,
    swapped_prediction_loss,
    swav_loss,
)
from sslteach.methods import pretrain
from helpers import tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = tiny_profile(steps=2, batch_size=16)


def scores(B, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(B, 8, generator=g), dim=1)
    c = F.normalize(torch.randn(K, 8, generator=g), dim=1)
    return z @ c.T  # cosine similarities, as in SwAV


def sinkhorn_reference(s, epsilon, iterations):
    """SwAV's appendix algorithm, one row and one column at a time with Python loops."""
    B, K = s.shape
    Q = [[math.exp(s[b, k].item() / epsilon) for b in range(B)] for k in range(K)]  # K x B
    total = sum(map(sum, Q))
    Q = [[v / total for v in row] for row in Q]
    for _ in range(iterations):
        Q = [[v / (sum(row) * K) for v in row] for row in Q]
        column_sums = [sum(Q[k][b] for k in range(K)) for b in range(B)]
        Q = [[Q[k][b] / (column_sums[b] * B) for b in range(B)] for k in range(K)]
    return torch.tensor([[Q[k][b] * B for k in range(K)] for b in range(B)])


@pytest.mark.parametrize("B, K", [(6, 4), (5, 9)])
def test_sinkhorn_matches_reference_loop(B, K):
    s = scores(B, K)
    torch.testing.assert_close(sinkhorn_knopp(s, 0.05, 3), sinkhorn_reference(s, 0.05, 3).float(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("B, K", [(32, 8), (16, 40)])
def test_sinkhorn_marginals(B, K):
    codes = sinkhorn_knopp(scores(B, K), epsilon=0.05, iterations=3)
    assert codes.shape == (B, K) and (codes >= 0).all()
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(B))  # each sample: a distribution
    # After 3 iterations each prototype holds roughly B / K (when B >= K); after many, exactly.
    if B >= K:
        assert (codes.sum(dim=0) - B / K).abs().max() < 0.5 * B / K
    converged = sinkhorn_knopp(scores(B, K), epsilon=0.05, iterations=500)
    torch.testing.assert_close(converged.sum(dim=0), torch.full((K,), B / K), rtol=1e-3, atol=1e-4)


def test_sinkhorn_spreads_a_collapsed_batch():
    """Every sample prefers prototype 0: the codes still use all prototypes equally."""
    s = torch.zeros(12, 3)
    s[:, 0] = 1.0
    s += 0.01 * torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    codes = sinkhorn_knopp(s, epsilon=0.05, iterations=50)
    torch.testing.assert_close(codes.sum(dim=0), torch.full((3,), 4.0), rtol=1e-3, atol=1e-3)
    assert F.softmax(s / 0.05, dim=1)[:, 0].min() > 0.99  # whereas the plain softmax collapses


def test_sinkhorn_sends_no_gradient_and_is_stable():
    s = scores(8, 5).requires_grad_()
    codes = sinkhorn_knopp(s)
    assert not codes.requires_grad and codes.grad_fn is None
    # Adding a constant changes nothing (it cancels in the normalisations); without the shift by
    # the maximum, exp(51 / 0.05) would overflow to inf.
    torch.testing.assert_close(sinkhorn_knopp(s.detach() + 50), codes)


def test_swapped_prediction_matches_reference_and_only_scores_get_gradient():
    B, K, t = 4, 6, 0.1
    s1, s2 = scores(B, K, 1).requires_grad_(), scores(B, K, 2).requires_grad_()
    q1, q2 = sinkhorn_knopp(s1), sinkhorn_knopp(s2)
    loss = swapped_prediction_loss(s1, s2, q1, q2, t)
    reference = 0.0
    for b in range(B):
        p1, p2 = F.softmax(s1[b] / t, dim=0), F.softmax(s2[b] / t, dim=0)
        reference += -sum(q1[b, k] * p2[k].log() + q2[b, k] * p1[k].log() for k in range(K)) / 2
    torch.testing.assert_close(loss, reference / B)
    loss.backward()
    assert s1.grad is not None and s2.grad is not None


def test_constant_scores_give_log_K():
    """A collapsed model: equal scores for every prototype, so the loss is the entropy log K."""
    s = torch.zeros(10, 7)
    q = sinkhorn_knopp(s)
    assert swapped_prediction_loss(s, s, q, q).item() == pytest.approx(math.log(7), rel=1e-5)


def test_prototypes_are_normalised():
    torch.manual_seed(0)
    model = SwAVModel(small_convnet((4, 8)), projection_dim=6, prototypes=5)
    torch.testing.assert_close(model.prototypes.weight.norm(dim=1), torch.ones(5))
    with torch.no_grad():
        model.prototypes.weight.mul_(3)
    normalize_prototypes(model.prototypes)
    torch.testing.assert_close(model.prototypes.weight.norm(dim=1), torch.ones(5))
    assert model(torch.rand(4, 3, 16, 16)).abs().max() <= 1 + 1e-5  # cosine similarities


def test_swav_loss_metrics():
    torch.manual_seed(0)
    settings = SwAVSettings(prototypes=10, projection_dim=6)
    model = SwAVModel(small_convnet((4, 8)), settings.projection_dim, settings.prototypes)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    loss, metrics = swav_loss(model, images, settings, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and 0 < metrics["prototypes_used"] <= 1
    assert metrics["loss_over_log_k"] == pytest.approx(loss.item() / math.log(10))


def test_smoke_through_train_pretrain():
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    checkpoint = pretrain("swav", images, torch.arange(32) % 10, TINY)
    history = checkpoint["history"]
    assert len(history["loss"]) == 2 and all(math.isfinite(v) for v in history["loss"])
    assert history["images_seen"] == 2 * 8  # two views of B / 2 images per step
    prototypes = checkpoint["head"]["prototypes.weight"]
    torch.testing.assert_close(prototypes.norm(dim=1), torch.ones(len(prototypes)))  # after the last step too
