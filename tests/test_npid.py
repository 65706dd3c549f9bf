"""Tests of sslteach.npid: the memory update, the non-parametric softmax against a reference loop,
no gradient into the bank, the kNN monitor, and a smoke run of the training path."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sslteach.encoders import small_convnet
from sslteach.npid import (
    MemoryBank,
    NPIDSettings,
    embed_all,
    initial_memory,
    knn_monitor,
    memory_knn_accuracy,
    monitor_queries,
    non_parametric_logits,
    npid_loss,
    pretrain_npid,
)
from sslteach.methods import pretrain
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
    assert memory_knn_accuracy(features, labels, features, labels, 3, k=1, temperature=0.1) == 1.0


def test_npid_functions_declare_no_knn_settings_of_their_own():
    """k and the temperature of the kNN vote come from the profile (issue 15), not from defaults."""
    import inspect

    import sslteach.npid as npid

    for name, function in inspect.getmembers(npid, inspect.isfunction):
        if function.__module__ == npid.__name__:
            parameters = inspect.signature(function).parameters
            for setting in ("k", "temperature"):
                assert setting not in parameters or parameters[setting].default is inspect.Parameter.empty, (name, setting)


def test_knn_monitor_reads_k_and_temperature_from_the_profile():
    """Queries 0-1 of class 0 sit next to one bank entry of class 0 and far from four of class 1:
    one neighbour finds the right class, five outvote it (at a high temperature, equal weights)."""
    bank = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.1], [0.6, 0.8], [0.6, 0.8], [0.6, 0.8], [0.6, 0.8]]), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))  # images are the features themselves
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
    images = bank.view(7, 2, 1, 1)  # (N, C, H, W) float images: embed_all uses them as they are
    queries = torch.tensor([0, 1])
    nearest = dataclasses.replace(TINY, knn_k=1, knn_temperature=0.1)
    crowd = dataclasses.replace(TINY, knn_k=5, knn_temperature=100.0)
    assert knn_monitor(model, MemoryBank(bank), images, labels, queries, 2, nearest) == 1.0
    assert knn_monitor(model, MemoryBank(bank), images, labels, queries, 2, crowd) == 0.0
    assert model.training  # handed back in train mode


def test_knn_monitor_changes_neither_the_model_nor_the_random_state():
    torch.manual_seed(0)
    model = nn.Sequential(small_convnet((4, 8)), nn.Linear(8, 6)).train()
    images, labels = random_images(12), torch.arange(12) % 3
    memory = MemoryBank.random(12, 6, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    accuracy = knn_monitor(model, memory, images, labels, monitor_queries(12, seed=0, count=4), 3, TINY)
    assert 0 <= accuracy <= 1 and model.training
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_initial_memory_from_the_encoder_or_at_random():
    torch.manual_seed(0)
    encoder = small_convnet((4, 8))
    model = nn.Sequential(encoder, nn.Linear(8, 6))
    images = random_images(10)
    from_encoder = initial_memory(model, encoder, images, NPIDSettings(feature_dim=6), seed=0)
    torch.testing.assert_close(from_encoder.features, embed_all(model, images))
    at_random = initial_memory(model, encoder, images, NPIDSettings(feature_dim=6, memory_init="random"), seed=0)
    assert at_random.features.shape == (10, 6)
    torch.testing.assert_close(at_random.features.norm(dim=1), torch.ones(10))


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
    """Wu et al.'s monitor runs at step 0, every ``monitor_every`` steps and at the end, and the
    trained weights are the same as when it runs only before and after training."""
    images, labels = random_images(24), torch.arange(24) % 3
    settings = NPIDSettings(feature_dim=16)

    def run(monitor_every):
        torch.manual_seed(0)
        encoder = small_convnet((4, 8))
        head, history, _ = pretrain_npid(encoder, images, labels, TINY, 3, 0, settings, monitor_every=monitor_every)
        return encoder, head, history

    plain_encoder, plain_head, plain = run(monitor_every=100)
    encoder, head, history = run(monitor_every=2)
    assert plain["knn_monitor"]["step"] == [0, 3]
    assert history["knn_monitor"]["step"] == [0, 2, 3]
    assert all(0 <= a <= 1 for a in history["knn_monitor"]["accuracy"])
    assert history["loss"] == plain["loss"]
    for a, b in zip((*encoder.state_dict().values(), *head.values()), (*plain_encoder.state_dict().values(), *plain_head.values())):
        assert torch.equal(a, b)


def test_after_step_writes_the_batch_features_into_the_bank(monkeypatch):
    """The state the loss hands to ``after_step`` is the batch's (indices, features): after each
    step exactly the drawn rows of the bank change."""
    import sslteach.npid as npid

    updates = []
    original = npid.MemoryBank.update

    def spy(self, indices, features, momentum=0.5):
        before = self.features.clone()
        original(self, indices, features, momentum)
        changed = (self.features != before).any(dim=1).nonzero().flatten()
        updates.append((indices.clone(), changed, momentum))

    monkeypatch.setattr(npid.MemoryBank, "update", spy)
    torch.manual_seed(0)
    pretrain_npid(small_convnet((4, 8)), random_images(24), torch.zeros(24, dtype=torch.long), TINY, 10, 0,
                  NPIDSettings(feature_dim=16, memory_momentum=0.25))
    assert len(updates) == TINY.steps
    for indices, changed, momentum in updates:
        assert len(indices) == TINY.images_per_step() and momentum == 0.25
        assert set(changed.tolist()) <= set(indices.tolist())
