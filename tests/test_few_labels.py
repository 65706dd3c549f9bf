"""The label-efficiency references (issue 16, item 1): the supervised baseline trained from scratch
on 1% or 10% of the labels, with the same budget as every method."""
from __future__ import annotations

import pytest
import torch

from sslteach import baselines
from sslteach.methods import METHODS, REFERENCES, TRAINABLE, pretrain

from helpers import random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_references_train_on_a_balanced_share_only(monkeypatch):
    seen = {}
    real_fit = baselines.fit

    def spy(model, loss_fn, images, labels, profile, **kwargs):
        seen["images"], seen["labels"] = images, labels
        return real_fit(model, loss_fn, images, labels, profile, **kwargs)

    monkeypatch.setattr(baselines, "fit", spy)
    images, labels = random_images(400, seed=1), torch.arange(400) % 4
    profile = tiny_profile(steps=2, batch_size=16)
    checkpoint = pretrain("supervised-1pct", images, labels, profile, num_classes=4, seed=3)
    assert checkpoint["labelled_images"] == 4  # 1% of 400 images, one per class
    assert torch.bincount(seen["labels"], minlength=4).tolist() == [4, 4, 4, 4]  # 4 images repeated to fill a step
    distinct = {bytes(image.numpy()) for image in seen["images"]}
    assert len(distinct) == 4
    assert checkpoint["history"]["images_seen"] == 2 * 16 and checkpoint["head"]["weight"].shape[0] == 4


def test_each_seed_draws_its_own_share(monkeypatch):
    drawn = []
    real_fit = baselines.fit
    monkeypatch.setattr(baselines, "fit", lambda model, loss, images, labels, profile, **kw: (
        drawn.append(images), real_fit(model, loss, images, labels, profile, **kw))[1])
    images, labels = random_images(400, seed=1), torch.arange(400) % 4
    for seed in (0, 1):
        pretrain("supervised-10pct", images, labels, tiny_profile(steps=1, batch_size=16), num_classes=4, seed=seed)
    assert len(drawn[0]) == len(drawn[1]) == 40 and not torch.equal(drawn[0], drawn[1])


def test_the_references_are_trainable_but_not_lecture_methods():
    assert set(REFERENCES) == {"supervised-1pct", "supervised-10pct"}
    assert not set(REFERENCES) & set(METHODS) and set(TRAINABLE) == set(METHODS) | set(REFERENCES)
