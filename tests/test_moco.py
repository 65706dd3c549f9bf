"""Tests of sslteach.moco: the momentum update, the FIFO queue, split BatchNorm against a loop of
plain BatchNorms, the key shuffle, and a smoke run of the training path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sslteach.encoders import small_convnet
from sslteach.moco import (
    KeyQueue,
    MoCoSettings,
    SplitBatchNorm2d,
    momentum_copy,
    momentum_update,
    moco_logits,
    moco_loss,
    pretrain_moco,
    shuffled_keys,
    split_batchnorm,
)
from sslteach.simclr import Embedder, projection_head
from sslteach.checkpoint import encoder_from_checkpoint
from sslteach.methods import pretrain
from helpers import random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = tiny_profile(steps=3, batch_size=16)


def test_momentum_update_is_an_exponential_moving_average():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    key_model = momentum_copy(model)
    assert all(not p.requires_grad for p in key_model.parameters())
    old = [p.clone() for p in key_model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    momentum_update(model, key_model, 0.9)
    for k, k_old, q in zip(key_model.parameters(), old, model.parameters()):
        torch.testing.assert_close(k, 0.9 * k_old + 0.1 * q)
    momentum_update(model, key_model, 0.0)  # m = 0: a plain copy
    for k, q in zip(key_model.parameters(), model.parameters()):
        torch.testing.assert_close(k, q)


def test_momentum_update_leaves_key_encoder_unchanged_at_momentum_one_and_sends_no_gradient():
    model = nn.Linear(3, 2)
    key_model = momentum_copy(model)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = key_model.weight.clone()
    momentum_update(model, key_model, 1.0)
    assert torch.equal(key_model.weight, before)
    assert key_model.weight.grad is None and not key_model.weight.requires_grad


def test_queue_is_first_in_first_out_with_wraparound():
    queue = KeyQueue(size=5, dim=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(queue.keys.norm(dim=1), torch.ones(5))  # random unit keys at first
    batches = [F.normalize(torch.randn(2, 2), dim=1) for _ in range(4)]
    expected = list(queue.keys.clone())  # a reference FIFO as a Python list, oldest first
    for batch in batches:
        queue.push(batch)
        expected = expected[len(batch):] + list(batch)
        # Rows in storage order starting at the pointer are oldest-first.
        stored = torch.cat([queue.keys[queue.pointer:], queue.keys[: queue.pointer]])
        torch.testing.assert_close(stored, torch.stack(expected))
    assert len(queue) == 5 and queue.pointer == 8 % 5


def test_queue_normalises_and_rejects_oversized_pushes():
    queue = KeyQueue(size=4, dim=3)
    queue.push(torch.full((2, 3), 5.0))
    torch.testing.assert_close(queue.keys[:2], torch.full((2, 3), 1 / math.sqrt(3)))
    with pytest.raises(ValueError, match="cannot push 5"):
        queue.push(torch.ones(5, 3))


def test_split_batchnorm_equals_separate_batchnorms():
    torch.manual_seed(0)
    S, B, C = 4, 12, 3
    x = torch.randn(B, C, 5, 5).contiguous(memory_format=torch.channels_last)
    split = SplitBatchNorm2d(C, splits=S)
    with torch.no_grad():
        split.weight.uniform_(0.5, 2)
        split.bias.uniform_(-1, 1)
    out = split(x)
    running_means, running_vars = [], []
    for s in range(S):  # reference: an independent BatchNorm on images s, s + S, s + 2S, ...
        bn = nn.BatchNorm2d(C)
        bn.load_state_dict({k: v for k, v in split.state_dict().items()}, strict=False)
        bn.running_mean.zero_()
        bn.running_var.fill_(1)
        torch.testing.assert_close(out[s::S], bn(x[s::S]), atol=1e-5, rtol=1e-5)
        running_means.append(bn.running_mean)
        running_vars.append(bn.running_var)
    torch.testing.assert_close(split.running_mean, torch.stack(running_means).mean(0))
    torch.testing.assert_close(split.running_var, torch.stack(running_vars).mean(0))
    split.eval()  # evaluation: the same as a plain BatchNorm with those statistics
    plain = nn.BatchNorm2d(C)
    plain.load_state_dict(split.state_dict())
    torch.testing.assert_close(split(x), plain.eval()(x))


def test_split_batchnorm_with_one_split_is_plain_batchnorm_and_rejects_uneven_batches():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3, 3)
    torch.testing.assert_close(SplitBatchNorm2d(2, splits=1)(x), nn.BatchNorm2d(2)(x))
    with pytest.raises(ValueError, match="cannot be split"):
        SplitBatchNorm2d(2, splits=4)(x)


def test_split_batchnorm_conversion_keeps_state_dict_and_outputs_in_eval():
    torch.manual_seed(0)
    encoder = small_convnet((4, 8)).eval()
    x = torch.rand(8, 3, 16, 16)
    before = encoder(x)
    keys = set(encoder.state_dict())
    split_batchnorm(encoder, splits=2)
    assert sum(isinstance(m, SplitBatchNorm2d) for m in encoder.modules()) == 3
    assert set(encoder.state_dict()) == keys  # checkpoints load into a plain encoder
    torch.testing.assert_close(encoder(x), before)


def test_shuffled_keys_come_back_in_order():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))  # no BatchNorm: order cannot matter
    views = torch.randn(6, 3, 2, 2)
    torch.testing.assert_close(shuffled_keys(model, views, torch.Generator().manual_seed(1)), model(views))


def test_shuffled_keys_with_split_batchnorm_differ_from_unshuffled():
    """The point of the shuffle: each key is normalised with other images than its query."""
    torch.manual_seed(0)
    model = split_batchnorm(small_convnet((4, 8)), splits=4).train()
    views = torch.rand(8, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(shuffled_keys(model, views, torch.Generator().manual_seed(1)), model(views))


def test_moco_loss_starts_near_log_1_plus_K_and_returns_keys():
    torch.manual_seed(0)
    model = Embedder(split_batchnorm(small_convnet((4, 8)), 2), projection_head(8, 16, batch_norm=False))
    key_model = momentum_copy(model)
    queue = KeyQueue(64, 16, generator=torch.Generator().manual_seed(0))
    loss, metrics, keys = moco_loss(model, key_model, queue, random_images(8), MoCoSettings(temperature=1.0))
    assert keys.shape == (8, 16) and not keys.requires_grad
    assert abs(loss.item() - math.log(65)) < 1.0  # near uniform over 1 + K at the start
    assert 0 <= metrics["accuracy"] <= 1
    loss.backward()
    assert all(p.grad is None for p in key_model.parameters())


def test_moco_logits_put_the_positive_key_in_column_0():
    torch.manual_seed(0)
    model = Embedder(split_batchnorm(small_convnet((4, 8)), 2), projection_head(8, 16, batch_norm=False))
    key_model = momentum_copy(model)
    queue = KeyQueue(64, 16, generator=torch.Generator().manual_seed(0))
    images = random_images(8)
    logits, labels, keys = moco_logits(model, key_model, queue, images, MoCoSettings(), torch.Generator().manual_seed(1))
    assert logits.shape == (8, 1 + 64) and torch.equal(labels, torch.zeros(8, dtype=torch.long))
    loss, metrics, same_keys = moco_loss(model, key_model, queue, images, MoCoSettings(), torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels))  # the loss is cross-entropy on these logits
    torch.testing.assert_close(same_keys, keys)


def test_pretrain_moco_enqueues_each_steps_keys_then_moves_the_key_encoder(monkeypatch):
    """The loop of the module's docstring: after each optimiser step, queue.push(keys of this step),
    then momentum_update; the keys pushed are those the loss computed (B, D), without gradient."""
    import sslteach.moco as moco

    calls = []
    push, update, loss = moco.KeyQueue.push, moco.momentum_update, moco.moco_loss

    def spy_loss(*args, **kwargs):
        value, metrics, keys = loss(*args, **kwargs)
        calls.append(("loss", keys))
        return value, metrics, keys

    def spy_push(self, keys):
        calls.append(("push", keys))
        push(self, keys)

    def spy_update(model, key_model, momentum):
        calls.append(("momentum_update", momentum))
        update(model, key_model, momentum)

    monkeypatch.setattr(moco, "moco_loss", spy_loss)
    monkeypatch.setattr(moco.KeyQueue, "push", spy_push)
    monkeypatch.setattr(moco, "momentum_update", spy_update)
    torch.manual_seed(0)
    settings = MoCoSettings(queue_size=32, splits=2, momentum=0.5)
    pretrain_moco(small_convnet((4, 8)), random_images(32), torch.zeros(32, dtype=torch.long), TINY, 10, 0, settings)
    assert [name for name, _ in calls] == ["loss", "push", "momentum_update"] * TINY.steps
    for step in range(TINY.steps):
        (_, computed), (_, pushed), (_, momentum) = calls[3 * step: 3 * step + 3]
        assert pushed is computed and pushed.shape == (TINY.images_per_step(), 128) and not pushed.requires_grad
        assert momentum == 0.5


def test_pretrain_moco_updates_queue_and_key_encoder():
    torch.manual_seed(0)
    encoder = small_convnet((4, 8))
    settings = MoCoSettings(queue_size=32, splits=2, momentum=0.5)
    head, history, extras = pretrain_moco(encoder, random_images(32), torch.zeros(32, dtype=torch.long), TINY, 10, 0, settings)
    assert len(history["loss"]) == 3 and all(math.isfinite(v) for v in history["loss"])
    assert history["images_seen"] == 3 * 16
    assert extras["temperature"] == settings.temperature and "0.weight" in head


def test_smoke_through_train_pretrain():
    checkpoint = pretrain("moco", random_images(32), torch.arange(32) % 10, TINY)
    assert checkpoint["method"] == "moco" and len(checkpoint["history"]["loss"]) == 3
    assert all(math.isfinite(v) for v in checkpoint["history"]["loss"])
    encoder = encoder_from_checkpoint(checkpoint)  # a plain encoder: split BatchNorm's state loads into it
    assert not any(isinstance(m, SplitBatchNorm2d) for m in encoder.modules())
    with torch.no_grad():
        assert torch.isfinite(encoder(torch.rand(2, 3, 32, 32))).all()
