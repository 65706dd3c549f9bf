"""Tests of sslteach.inpainting: the mask, the weighted loss against a slow loop, the channel-wise
FC layer, shapes, learning on a toy task, and the checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch

from sslteach.augment import to_float
from sslteach.checkpoint import load_checkpoint, save_checkpoint
from sslteach.encoders import CIFAR10_MEAN, build_encoder, small_convnet
from sslteach.inpainting import (
    ChannelwiseFC,
    ContextEncoder,
    InpaintingSettings,
    central_square,
    hole_mask,
    inpaint,
    inpainting_loss,
    inpainting_model_from_checkpoint,
    mask_centre,
    reconstruction_loss,
    reconstruction_weights,
)
from sslteach.loop import fit
from sslteach.methods import pretrain
from helpers import random_float_images, random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_central_square_is_a_quarter_of_the_image():
    assert central_square(32) == slice(8, 24)
    assert central_square(128) == slice(32, 96)  # the paper's 64 x 64 square of a 128 x 128 image
    assert hole_mask(32, overlap=0).sum() == 32 * 32 // 4


@pytest.mark.parametrize("overlap", [0, 1, 3])
def test_the_hole_is_the_square_shrunk_by_the_overlap(overlap):
    mask = hole_mask(32, overlap)[0, 0]
    side = 16 - 2 * overlap
    assert mask.shape == (32, 32) and mask.sum() == side * side
    rows, cols = mask.nonzero().T
    assert rows.min() == cols.min() == 8 + overlap and rows.max() == cols.max() == 23 - overlap


def test_mask_centre_fills_the_hole_with_the_mean_and_keeps_the_context():
    x = random_float_images(B=3)
    masked = mask_centre(x, overlap=1)
    hole = hole_mask(32, 1)[0, 0]
    assert torch.equal(masked[..., ~hole], x[..., ~hole])
    filled = masked[..., hole]  # (B, 3, pixels of the hole)
    assert torch.equal(filled, torch.tensor(CIFAR10_MEAN).view(1, 3, 1).expand_as(filled))
    # The encoder's normalisation maps the fill to exactly 0: the hole carries no signal.
    assert small_convnet().normalize(masked)[..., hole].abs().max() < 1e-6


def test_the_encoder_cannot_see_the_hole():
    """Two images that differ only in the hole give the same input, hence the same prediction."""
    torch.manual_seed(0)
    model = ContextEncoder(small_convnet((8, 16, 32, 64)), 32).eval()
    a = random_float_images(B=2, seed=1)
    b = a.clone()
    b[..., 9:23, 9:23] = torch.rand(2, 3, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(model(mask_centre(a, 1)), model(mask_centre(b, 1)), atol=0, rtol=0)


def test_reconstruction_weights():
    w = reconstruction_weights(16, overlap=1, overlap_weight=10.0)[0, 0]
    assert w.shape == (16, 16)
    assert (w[1:15, 1:15] == 1).all()
    band = torch.ones(16, 16, dtype=torch.bool)
    band[1:15, 1:15] = False
    assert (w[band] == 10).all() and band.sum() == 16 * 16 - 14 * 14
    assert (reconstruction_weights(16, 0, 10.0) == 1).all()  # no overlap: the plain squared error


def reference_loss(prediction, target, weights):
    """The weighted squared error written as loops over images, pixels and channels."""
    B, C, S, _ = prediction.shape
    total = 0.0
    for b in range(B):
        for i in range(S):
            for j in range(S):
                w = weights[0 if weights.shape[0] == 1 else b, 0, i, j].item()
                total += w * sum((prediction[b, c, i, j] - target[b, c, i, j]).item() ** 2 for c in range(C)) / C
    return total / (B * S * S)


@pytest.mark.parametrize("overlap, overlap_weight", [(0, 1.0), (1, 10.0), (2, 3.0)])
def test_reconstruction_loss_matches_a_loop(overlap, overlap_weight):
    g = torch.Generator().manual_seed(0)
    prediction, target = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    weights = reconstruction_weights(8, overlap, overlap_weight)
    expected = reference_loss(prediction, target, weights)
    assert math.isclose(reconstruction_loss(prediction, target, weights).item(), expected, rel_tol=1e-5)


def test_reconstruction_loss_known_values():
    target = torch.rand(2, 3, 8, 8)
    ones = torch.ones(1, 1, 8, 8)
    assert reconstruction_loss(target, target, reconstruction_weights(8, 1, 10.0)) == 0  # a perfect prediction
    assert math.isclose(reconstruction_loss(target + 0.5, target, ones).item(), 0.25, rel_tol=1e-6)
    # Where the weight is 0, the prediction does not count.
    weights = ones.clone()
    weights[..., :4, :] = 0
    wild = target.clone()
    wild[..., :4, :] += 100.0
    assert reconstruction_loss(wild, target, weights) == 0


def test_channelwise_fc_is_one_dense_layer_per_channel():
    torch.manual_seed(0)
    layer = ChannelwiseFC(channels=3, height=2, width=2)
    h = torch.randn(4, 3, 2, 2, requires_grad=True)
    out = layer(h)
    assert out.shape == (4, 3, 2, 2)
    for c in range(3):
        expected = h[:, c].reshape(4, 4) @ layer.weight[c] + layer.bias[c]  # (B, HW)
        torch.testing.assert_close(out[:, c].reshape(4, 4), expected)
    # Channels do not mix: channel 0's output does not depend on channel 1's input.
    (grad,) = torch.autograd.grad(out[:, 0].sum(), h)
    assert grad[:, 1:].abs().max() == 0 and grad[:, 0].abs().max() > 0


@pytest.mark.parametrize("encoder", ["small", "resnet18"])
def test_the_network_predicts_the_central_square(encoder):
    torch.manual_seed(0)
    model = ContextEncoder(build_encoder(encoder), 32).eval()
    with torch.no_grad():
        out = model(random_float_images(B=2))
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1


def test_a_few_steps_learn_to_fill_flat_images():
    """Images of one colour each: the hole has the context's colour, which the network can learn."""
    g = torch.Generator().manual_seed(0)
    colours = torch.randint(0, 256, (64, 3, 1, 1), dtype=torch.uint8, generator=g)
    images = colours.expand(-1, -1, 16, 16).contiguous()
    torch.manual_seed(0)
    model = ContextEncoder(small_convnet((8, 16, 32, 32)), 16)
    loss_fn = lambda m, x, y, gen: inpainting_loss(m, x, InpaintingSettings(), gen)  # noqa: E731
    profile = tiny_profile(steps=40, batch_size=32)
    history = fit(model, loss_fn, images, torch.zeros(64, dtype=torch.long), profile, images_per_step=32)
    first, last = sum(history["loss"][:5]) / 5, sum(history["loss"][-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_pretrain_checkpoint_round_trip(tmp_path):
    images = random_images(N=16)
    checkpoint = pretrain("inpainting", images, torch.arange(16) % 10, tiny_profile(steps=2, batch_size=8), seed=0)
    assert checkpoint["encoder_name"] == "small" and checkpoint["image_size"] == 32 and checkpoint["overlap"] == 1
    assert len(checkpoint["history"]["hole_error"]) == 2
    loaded = load_checkpoint(save_checkpoint(tmp_path / "inpainting.pt", checkpoint))
    a, b = inpainting_model_from_checkpoint(checkpoint), inpainting_model_from_checkpoint(loaded)
    assert not b.training
    context, filled = inpaint(b, images[:3])
    torch.testing.assert_close(filled, inpaint(a, images[:3])[1], atol=0, rtol=0)
    x = to_float(images[:3])
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[8:24, 8:24] = False
    assert torch.equal(filled[..., outside], x[..., outside])  # only the central square is painted
    assert torch.equal(context, mask_centre(x, 1))
    assert filled.min() >= 0 and filled.max() <= 1
