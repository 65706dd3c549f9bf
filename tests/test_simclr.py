"""Tests of sslteach.simclr: the two-view batch, the projection head, the loss at the start of
training, and a smoke run of both training paths (with and without colour distortion)."""

from __future__ import annotations

import math

import pytest
import torch

from sslteach.augment import grayscale
from sslteach.contrastive import collapse_value
from sslteach.encoders import small_convnet
from sslteach.simclr import Embedder, SimCLRSettings, projection_head, simclr_loss, two_views
from sslteach.methods import pretrain
from helpers import random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = tiny_profile(steps=2, batch_size=16)


def test_two_views_layout_and_independence():
    images = random_images(4)
    views = two_views(images, generator=torch.Generator().manual_seed(0))
    assert views.shape == (8, 3, 32, 32) and views.dtype == torch.float32
    assert 0 <= views.min() and views.max() <= 1
    assert not torch.allclose(views[:4], views[4:])  # the two views differ
    again = two_views(images, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(views, again)  # repeatable with a generator


def test_views_of_one_image_come_from_that_image():
    """Images of constant, distinct colours: without colour jitter, both views keep the colour."""
    colours = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    images = colours.view(3, 3, 1, 1).expand(3, 3, 32, 32).contiguous()
    views = two_views(images, color=False, generator=torch.Generator().manual_seed(0))
    for i in range(3):
        torch.testing.assert_close(views[i], views[3 + i])
        torch.testing.assert_close(views[i].mean(dim=(1, 2)), colours[i].float() / 255)


def test_colour_distortion_breaks_the_colour_histogram_shortcut():
    """With colour jitter and greyscale, two views of one image differ in mean colour; without, not."""
    images = random_images(64)
    g = torch.Generator().manual_seed(0)
    with_colour = two_views(images, color=True, generator=g)
    without = two_views(images, color=False, generator=g)

    def colour_gap(views):
        means = views.mean(dim=(2, 3))  # (2B, 3) mean colour of each view
        return (means[:64] - means[64:]).abs().mean().item()

    assert colour_gap(with_colour) > 3 * colour_gap(without)
    grey = (with_colour - grayscale(with_colour)).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert 0 < grey.float().mean() < 0.5  # some views are greyscale (p = 0.2)


def test_projection_head_shapes():
    head = projection_head(16, 8)
    assert head(torch.randn(5, 16)).shape == (5, 8)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in projection_head(16, 8, batch_norm=False))


def test_simclr_loss_at_start_is_near_collapse_value():
    torch.manual_seed(0)
    model = Embedder(small_convnet((4, 8)), projection_head(8, 16))
    B = 8
    loss, metrics = simclr_loss(model, random_images(B), SimCLRSettings(temperature=1.0), torch.Generator().manual_seed(0))
    # With tau = 1 every logit is in [-1, 1], so the loss is within 2 of the uniform value.
    assert abs(loss.item() - collapse_value(B)) < 2
    assert 0 <= metrics["accuracy"] <= 1
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("method", ["simclr", "simclr-no-color"])
def test_smoke_through_train_pretrain(method):
    checkpoint = pretrain(method, random_images(32), torch.arange(32) % 10, TINY)
    history = checkpoint["history"]
    assert len(history["loss"]) == 2 and all(math.isfinite(v) for v in history["loss"])
    assert history["images_seen"] == 2 * 8  # B / 2 images per step, two views each
    assert checkpoint["head"]["3.weight"].shape == (128, 8 * 32)  # the head's last layer
