"""Tests of sslteach.npid: the memory update, the non-parametric softmax against a reference loop,
no gradient into the bank, the kNN monitor, and a smoke run of the training path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sslteach.encoders import small_convnet
from sslteach.npid import (
    fit_with_memory_bank,
    MemoryBank,
    NPIDSettings,
    embed_all,
    memory_knn_accuracy,
    non_parametric_logits,
    npid_loss,
    pretrain_npid,
)
from sslteach.train import pretrain
from helpers import random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = tiny_profile(steps=3, batch_size=8)


def test_memory_update_formula_and_untouched_rows():
    bank = MemoryBank.random(6, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(bank.features.norm(dim=1), torch.ones(6))
    before = bank.features.clone()
    f = torch.randn(2, 4, requires_grad=True)
    index = torch.tensor([4, 1])
    bank.update(index, f, momentum=0.5)
    for row, i in enumerate(index.tolist()):  # v_i <- normalise(0.5 v_i + 0.5 f_i)
        torch.testing.assert_close(bank.features[i], F.normalize(0.5 * before[i] + 0.5 * f[row].detach(), dim=0))
    others = [0, 2, 3, 5]
    assert torch.equal(bank.features[others], before[others])
    assert not bank.features.requires_grad


def test_memory_update_with_momentum_zero_stores_the_new_feature():
    bank = MemoryBank(torch.randn(3, 2))
    bank.update(torch.tensor([2]), torch.tensor([[3.0, 4.0]]), momentum=0.0)
    torch.testing.assert_close(bank.features[2], torch.tensor([0.6, 0.8]))


def test_non_parametric_softmax_matches_reference_loop():
    g = torch.Generator().manual_seed(0)
    f, memory = F.normalize(torch.randn(3, 5, generator=g), dim=1), F.normalize(torch.randn(7, 5, generator=g), dim=1)
    probabilities = non_parametric_logits(f, memory, 0.07).softmax(dim=1)
    for b in range(3):  # P(i | f) = exp(v_i . f / tau) / sum_j exp(v_j . f / tau), eq. 2
        numerators = [math.exp(torch.dot(memory[i], f[b]).item() / 0.07) for i in range(7)]
        for i in range(7):
            assert probabilities[b, i].item() == pytest.approx(numerators[i] / sum(numerators), rel=1e-4)


def test_npid_loss_gradient_reaches_the_model_not_the_bank():
    torch.manual_seed(0)
    model = nn.Sequential(small_convnet((4, 8)), nn.Linear(8, 6))
    bank = MemoryBank.random(10, 6)
    bank.features.requires_grad_(False)
    images, index = random_images(4), torch.tensor([0, 3, 5, 9])
    loss, metrics, f = npid_loss(model, bank, images, index, NPIDSettings(temperature=1.0))
    assert abs(loss.item() - math.log(10)) < 0.5  # near uniform over the 10 instances at tau = 1
    loss.backward()
    assert model[1].weight.grad is not None and bank.features.grad is None
    assert f.shape == (4, 6) and not f.requires_grad
    torch.testing.assert_close(f.norm(dim=1), torch.ones(4))


def test_memory_knn_accuracy_with_bank_equal_to_test_features():
    features = F.normalize(torch.randn(20, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    labels = torch.arange(20) % 3
    assert memory_knn_accuracy(MemoryBank(features), labels, features, labels, 3, k=1) == 1.0


def test_embed_all_normalises_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(small_convnet((4, 8)), nn.Linear(8, 5))
    out = embed_all(model, random_images(6), batch_size=4)
    assert out.shape == (6, 5) and not model.training
    torch.testing.assert_close(out.norm(dim=1), torch.ones(6))


@pytest.mark.parametrize("memory_init", ["random", "encoder"])
def test_pretrain_npid_runs_with_both_memory_starts(memory_init):
    torch.manual_seed(0)
    settings = NPIDSettings(memory_init=memory_init, feature_dim=16)
    head, history, _ = pretrain_npid(small_convnet((4, 8)), random_images(24), torch.zeros(24, dtype=torch.long), TINY, 10, 0, settings)
    assert len(history["loss"]) == 3 and all(math.isfinite(v) for v in history["loss"])
    assert head["weight"].shape == (16, 8)


def test_labels_are_not_used():
    """Instance indices replace labels inside pretrain_npid: any labels give the same run."""
    images = random_images(24)
    a = pretrain("npid", images, torch.zeros(24, dtype=torch.long), TINY, seed=1)
    b = pretrain("npid", images, torch.arange(24) % 10, TINY, seed=1)
    assert a["history"]["loss"] == b["history"]["loss"]


def test_knn_monitor_records_progress_without_changing_the_training():
    """Wu et al.'s monitor: queries embedded by the current network against the bank, own entries
    left out. It runs at step 0, every ``monitor_every`` steps and at the end, and the trained
    weights are the same as without it (it draws no random numbers and restores train mode)."""
    images, labels = random_images(24), torch.arange(24) % 3
    settings = NPIDSettings(feature_dim=16)

    def run(**monitor):
        torch.manual_seed(0)
        encoder = small_convnet((4, 8))
        model = nn.Sequential(encoder, nn.Linear(encoder.feature_dim, 16))
        loss = lambda m, memory, x, index, g: npid_loss(m, memory, x, index, settings, g)  # noqa: E731
        history, memory = fit_with_memory_bank(model, encoder, loss, images, TINY, 8, 0, "npid", settings, **monitor)
        return model, history, memory

    plain_model, plain, plain_memory = run()
    model, history, memory = run(labels=labels, num_classes=3, monitor_every=2, monitor_images=6)
    assert "knn_monitor" not in plain
    assert history["knn_monitor"]["step"] == [0, 2, 3]
    assert all(0 <= a <= 1 for a in history["knn_monitor"]["accuracy"])
    assert history["loss"] == plain["loss"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain_model.state_dict().values()))
    torch.testing.assert_close(memory.features, plain_memory.features)
    assert model.training  # handed back in train mode
