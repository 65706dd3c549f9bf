"""Tests of sslteach.colorizer: shapes at any size, learning a colour cue, decoding, the prior, pretraining."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from sslteach.augment import to_float
from sslteach.checkpoint import load_checkpoint, save_checkpoint
from sslteach.colorization import ab_gamut_bins, ab_prior, lab_to_rgb, rgb_to_lab
from sslteach.colorizer import ColorizationNet, colorization_loss, colorize, fit_prior, regression_loss
from sslteach.encoders import build_encoder, small_convnet
from sslteach.profiles import CLASS
from sslteach.loop import fit
from sslteach.methods import pretrain

TINY_CLASS = dataclasses.replace(CLASS, steps=2, batch_size=16, warmup_steps=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def colour_cue_images(N=64, S=32, seed=0):
    """Blocky random patterns where bright pixels are orange and dark ones blue: L gives ab away."""
    g = torch.Generator().manual_seed(seed)
    pattern = (torch.rand(N, 1, S // 8, S // 8, generator=g) < 0.5).float()
    pattern = F.interpolate(pattern, size=(S, S), mode="nearest")  # (N, 1, S, S)
    bright, dark = torch.tensor([0.95, 0.6, 0.2]), torch.tensor([0.1, 0.15, 0.5])
    rgb = pattern * bright.view(1, 3, 1, 1) + (1 - pattern) * dark.view(1, 3, 1, 1)  # (N, 3, S, S)
    return (255 * rgb).round().to(torch.uint8)


def tiny_net(num_outputs):
    torch.manual_seed(0)
    return ColorizationNet(small_convnet((8, 16, 32)), num_outputs)


@pytest.fixture(scope="module")
def bins():
    return ab_gamut_bins()


@pytest.mark.parametrize("H, W", [(32, 32), (64, 96)])
@pytest.mark.parametrize("encoder", ["small", "resnet18"])
def test_shapes_at_any_size(H, W, encoder):
    torch.manual_seed(0)
    model = ColorizationNet(build_encoder(encoder), 7).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, H, W))
    assert out.shape == (2, 7, H // 4, W // 4) and torch.isfinite(out).all()


@pytest.mark.parametrize("encoder", ["small", "resnet18"])
def test_a_head_on_stage_four_predicts_on_the_same_grid_and_trains_every_stage(encoder):
    torch.manual_seed(0)
    model = ColorizationNet(build_encoder(encoder), 7, stages=4)
    out = model(torch.rand(2, 3, 64, 96))
    assert out.shape == (2, 7, 16, 24)
    out.square().mean().backward()
    for i, block in enumerate(model.encoder.blocks):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters()), f"stage {i + 1} gets no gradient"
    with pytest.raises(ValueError, match="stage 3 or 4"):
        ColorizationNet(build_encoder("small"), 7, stages=2)


def test_the_default_head_leaves_stage_four_untrained():
    model = ColorizationNet(build_encoder("small"), 7)
    model(torch.rand(2, 3, 32, 32)).square().mean().backward()
    assert all(p.grad is None for p in model.encoder.blocks[3].parameters())


def test_stage_three_matches_forward_blocks():
    model = tiny_net(5).eval()
    x = torch.rand(2, 3, 32, 32)
    L = rgb_to_lab(x)[:, :1]
    with torch.no_grad():
        features = model.encoder.forward_blocks((L / 100).expand(-1, 3, -1, -1))[2]
        torch.testing.assert_close(model(x), model.head(features))


def test_only_lightness_matters():
    """Two images with the same L and different colours get the same prediction."""
    model = tiny_net(5).eval()
    x = colour_cue_images(N=2)
    lab = rgb_to_lab(to_float(x))
    grey = torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(to_float(x)), model(lab_to_rgb(grey)), atol=2e-3, rtol=1e-3)


def train(num_outputs, loss_fn, steps=20):
    images = colour_cue_images()
    model = tiny_net(num_outputs)
    profile = dataclasses.replace(CLASS, steps=steps, batch_size=32, warmup_steps=3, lr=0.05)
    history = fit(model, loss_fn, images, torch.zeros(len(images), dtype=torch.long), profile, images_per_step=32)
    return model.eval(), history


def test_classification_learns_a_colour_cue(bins):
    prior, weights = fit_prior(colour_cue_images(), bins)
    model, history = train(len(bins), lambda m, x, y, g: colorization_loss(m, x, bins, weights, g))
    loss, error = history["loss"], history["ab_error"]
    assert all(math.isfinite(v) for v in loss)
    assert sum(loss[-3:]) / 3 < 0.7 * loss[0]
    assert sum(error[-3:]) / 3 < 0.7 * error[0]
    rgb = colorize(model, colour_cue_images(N=4, seed=1), bins)
    assert rgb.shape == (4, 3, 32, 32)


def test_regression_learns_a_colour_cue():
    model, history = train(2, lambda m, x, y, g: regression_loss(m, x, g))
    loss, error = history["loss"], history["ab_error"]
    assert all(math.isfinite(v) for v in loss)
    assert sum(loss[-3:]) / 3 < 0.5 * loss[0]
    assert sum(error[-3:]) / 3 < 0.7 * error[0]


@pytest.mark.parametrize("classifier", [True, False], ids=["classifier", "regressor"])
def test_colorize_keeps_the_lightness(bins, classifier):
    model = tiny_net(len(bins) if classifier else 2).eval()
    images = colour_cue_images(N=3, S=64)
    rgb = colorize(model, images, bins if classifier else None)
    assert rgb.shape == images.shape and rgb.dtype == torch.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    # Clipping out-of-gamut colours to [0, 1] moves L a little; on average it stays within 1.
    L_in, L_out = rgb_to_lab(to_float(images))[:, 0], rgb_to_lab(rgb)[:, 0]
    assert (L_out - L_in).abs().mean() < 1.0


def test_colorize_of_a_perfect_regressor_gives_back_the_image():
    """A fake regressor whose tanh is the true pooled ab / 110: colorize gives back the image, blurred in ab."""
    images = colour_cue_images(N=2)
    ab = F.avg_pool2d(rgb_to_lab(to_float(images))[:, 1:], 4)

    class Oracle(torch.nn.Module):
        def forward_lightness(self, L):
            return torch.atanh(ab / 110)

    rgb = colorize(Oracle(), images)
    # Pixels whose 4x4 cell and neighbours share a colour come back exactly (the 8x8 blocks' centres).
    torch.testing.assert_close(rgb[..., 2::8, 2::8] * 255, to_float(images)[..., 2::8, 2::8] * 255, atol=1.5, rtol=0)


def test_fit_prior_matches_ab_prior_on_all_pixels(bins):
    g = torch.Generator().manual_seed(0)
    images = (255 * torch.rand(40, 3, 16, 16, generator=g) ** 2).to(torch.uint8)
    prior, weights = fit_prior(images, bins, max_images=30, chunk=7)
    ab = F.avg_pool2d(rgb_to_lab(to_float(images[:30]))[:, 1:], 4)
    torch.testing.assert_close(prior, ab_prior(ab, bins), atol=1e-4, rtol=0)
    assert torch.isclose((prior * weights).sum(), torch.tensor(1.0))


@pytest.mark.parametrize("method", ["colorization", "colorization-regression"])
def test_pretrain_smoke(method, tmp_path, bins):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    checkpoint = pretrain(method, images, torch.arange(16) % 10, TINY_CLASS, seed=0)
    history = checkpoint["history"]
    assert len(history["loss"]) == 2 and all(math.isfinite(v) for v in history["loss"])
    assert history["images_seen"] == 2 * TINY_CLASS.batch_size
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", checkpoint))
    num_outputs = len(bins) if method == "colorization" else 2
    if method == "colorization":
        assert torch.equal(loaded["bins"], bins)
        assert loaded["prior"].shape == (len(bins),) and torch.isclose(loaded["prior"].sum(), torch.tensor(1.0))
    # A lecture rebuilds the colourizer from the checkpoint alone.
    encoder = build_encoder(loaded["encoder_name"])
    encoder.load_state_dict(loaded["encoder"])
    model = ColorizationNet(encoder, num_outputs)
    model.head.load_state_dict(loaded["head"])
    rgb = colorize(model.eval(), images[:2], loaded.get("bins"))
    assert rgb.shape == (2, 3, 32, 32) and torch.isfinite(rgb).all()


def test_lightness_images_are_what_the_colorizer_sees():
    from sslteach.colorizer import lightness_images

    images = torch.randint(0, 256, (7, 3, 8, 8), dtype=torch.uint8)
    grey = lightness_images(images, chunk=3)  # chunks of 3, 3 and 1 images
    assert grey.dtype == torch.uint8 and grey.shape == images.shape
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 0], grey[:, 2])
    L = rgb_to_lab(to_float(images).float())[:, 0]  # (7, 8, 8)
    assert (grey[:, 0].float() / 2.55 - L).abs().max() <= 0.5 / 2.55 + 1e-4  # L / 100, to the nearest 1/255
