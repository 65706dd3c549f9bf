"""Tests of sslteach.contrastive: the slow loop against the vectorised losses, analytic values,
invariances, and agreement with an independent implementation (pytorch-metric-learning)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslteach.contrastive import collapse_value, info_nce, info_nce_loop, info_nce_rows, nt_xent, positive_accuracy

pytestmark = pytest.mark.usefixtures("one_thread")


def pair(B, D, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g, dtype=dtype), torch.randn(B, D, generator=g, dtype=dtype)


@pytest.mark.parametrize("B, D", [(1, 3), (4, 8), (13, 5)])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_nt_xent_matches_slow_loop(B, D, temperature):
    z1, z2 = pair(B, D, seed=B, dtype=torch.float64)
    torch.testing.assert_close(nt_xent(z1, z2, temperature), info_nce_loop(z1, z2, temperature))


def test_nt_xent_gradient_matches_slow_loop():
    z1, z2 = pair(6, 4, dtype=torch.float64)
    grads = []
    for loss_fn in (nt_xent, info_nce_loop):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        loss_fn(a, b, 0.3).backward()
        grads.append((a.grad, b.grad))
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("B", [1, 2, 16, 128])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_collapse_gives_log_2B_minus_1(B, temperature):
    z = torch.ones(B, 7)
    expected = math.log(2 * B - 1)
    assert collapse_value(B) == pytest.approx(expected)
    assert nt_xent(z, 3 * z, temperature).item() == pytest.approx(expected, rel=1e-5)
    if B <= 16:
        assert info_nce_loop(z, z, temperature).item() == pytest.approx(expected, rel=1e-5)


def test_random_embeddings_in_high_dimension_give_about_log_2B_minus_1():
    # Random directions in 512-d are nearly orthogonal: every similarity near 0, so about uniform.
    z1, z2 = pair(64, 512)
    assert nt_xent(z1, z2, 0.5).item() == pytest.approx(collapse_value(64), abs=0.05)


def test_symmetric_between_views_and_invariant_to_scale_and_batch_order():
    z1, z2 = pair(10, 6)
    loss = nt_xent(z1, z2, 0.5)
    torch.testing.assert_close(nt_xent(z2, z1, 0.5), loss)
    torch.testing.assert_close(nt_xent(5 * z1, 0.1 * z2, 0.5), loss)  # normalised inside
    order = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(nt_xent(z1[order], z2[order], 0.5), loss)


def test_perfect_pairs_far_apart_give_a_small_loss():
    # Views identical, images orthogonal: at low temperature the loss tends to 0.
    z = torch.eye(5)
    assert nt_xent(z, z, 0.05).item() < 1e-6
    assert positive_accuracy(z, z) == 1.0


def test_self_similarity_is_masked():
    """Unmasked, the anchor's own exp(1 / tau) dominates the denominator and the loss stays high
    even for perfect pairs: the bug of lightning-bolts #695."""
    z = torch.eye(5)
    zz = torch.cat([z, z])
    unmasked = F.cross_entropy(zz @ zz.T / 0.05, torch.arange(10).roll(5))
    assert unmasked.item() == pytest.approx(math.log(2), rel=1e-4)  # self and partner tie
    assert nt_xent(z, z, 0.05).item() < 1e-6


@pytest.mark.parametrize("B", [2, 8, 33])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_agrees_with_pytorch_metric_learning(B, temperature):
    """pytorch-metric-learning's NTXentLoss with SelfSupervisedLoss(symmetric=True) is the paper's
    average over all 2B anchors, written independently (pair-based, cosine distance)."""
    from pytorch_metric_learning.losses import NTXentLoss, SelfSupervisedLoss

    z1, z2 = pair(B, 16, seed=B)
    theirs = SelfSupervisedLoss(NTXentLoss(temperature=temperature), symmetric=True)(z1, z2)
    torch.testing.assert_close(nt_xent(z1, z2, temperature), theirs, rtol=1e-5, atol=1e-5)


def test_info_nce_logits_and_labels():
    B, K, D, temperature = 4, 6, 5, 0.2
    g = torch.Generator().manual_seed(0)
    q, k, queue = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g), torch.randn(K, D, generator=g)
    logits, labels = info_nce(q, k, queue, temperature)
    assert logits.shape == (B, 1 + K) and labels.tolist() == [0] * B and labels.dtype == torch.int64
    qn, kn, nn_ = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    for i in range(B):  # reference loop: column 0 the positive, then the queue in order
        assert logits[i, 0].item() == pytest.approx(torch.dot(qn[i], kn[i]).item() / temperature, abs=1e-5)
        for j in range(K):
            assert logits[i, 1 + j].item() == pytest.approx(torch.dot(qn[i], nn_[j]).item() / temperature, abs=1e-5)


def test_info_nce_sends_no_gradient_into_keys_or_queue():
    q = torch.randn(3, 4, requires_grad=True)
    k = torch.randn(3, 4, requires_grad=True)
    queue = torch.randn(8, 4, requires_grad=True)
    logits, labels = info_nce(q, k, queue)
    F.cross_entropy(logits, labels).backward()
    assert q.grad is not None and k.grad is None and queue.grad is None


def test_info_nce_with_all_keys_equal_is_log_1_plus_K():
    q = torch.ones(5, 3)
    logits, labels = info_nce(q, q, torch.ones(9, 3), temperature=0.1)
    assert F.cross_entropy(logits, labels).item() == pytest.approx(math.log(10), rel=1e-5)


def test_nt_xent_is_info_nce_with_the_other_views_as_negatives():
    """For anchor i of view 1: its key is z2[i]; its negatives are the other 2B - 2 views."""
    z1, z2 = pair(5, 4, dtype=torch.float64)
    B, temperature = 5, 0.5
    z = torch.cat([z1, z2])
    losses = []
    for i in range(2 * B):
        partner = (i + B) % (2 * B)
        others = [j for j in range(2 * B) if j not in (i, partner)]
        logits, labels = info_nce(z[i : i + 1], z[partner : partner + 1], z[others], temperature)
        losses.append(F.cross_entropy(logits, labels))
    torch.testing.assert_close(torch.stack(losses).mean(), nt_xent(z1, z2, temperature))


def test_positive_accuracy_of_random_embeddings_is_low():
    z1, z2 = pair(100, 64)
    assert positive_accuracy(z1, z2) < 0.1
    assert positive_accuracy(z1, z1 + 0.01 * z2) == 1.0


def test_the_anchor_loop_agrees_with_the_pair_loop_and_the_matrix():
    g = torch.Generator().manual_seed(3)
    z1 = torch.randn(6, 5, generator=g, requires_grad=True)
    z2 = torch.randn(6, 5, generator=g, requires_grad=True)
    rows = info_nce_rows(z1, z2, 0.3)
    torch.testing.assert_close(rows, info_nce_loop(z1, z2, 0.3))
    torch.testing.assert_close(rows, nt_xent(z1, z2, 0.3))
    grad_rows = torch.autograd.grad(rows, (z1, z2))
    grad_matrix = torch.autograd.grad(nt_xent(z1, z2, 0.3), (z1, z2))
    for a, b in zip(grad_rows, grad_matrix):
        torch.testing.assert_close(a, b)
    z = torch.ones(4, 3)
    assert info_nce_rows(z, z, 0.5).item() == pytest.approx(collapse_value(4), rel=1e-5)
