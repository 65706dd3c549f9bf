"""Tests of sslteach.splitbrain and the split encoder: the halves are disjoint, the split costs
half, the quantisation and losses on known values, learning a toy task, the checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from sslteach.checkpoint import encoder_from_checkpoint, load_checkpoint, save_checkpoint
from sslteach.colorization import ab_gamut_bins
from sslteach.encoders import SplitEncoder, build_encoder
from sslteach.loop import fit
from sslteach.methods import encoder_name, pretrain
from sslteach.profiles import CLASS, FULL
from sslteach.splitbrain import (
    SplitBrainNet,
    cross_channel_losses,
    lightness_bin_centres,
    predict_cross_channel,
    pretrain_split_brain,
    quantise_lightness,
    split_brain_loss,
    split_brain_model_from_checkpoint,
)
from helpers import random_float_images, random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["small", "resnet18"])
def test_the_split_encoder_has_the_layout_of_the_full_one(name):
    torch.manual_seed(0)
    full, split = build_encoder(name).eval(), build_encoder(f"split-{name}").eval()
    assert isinstance(split, SplitEncoder)
    x = random_float_images(B=2)
    with torch.no_grad():
        assert [h.shape for h in split.forward_blocks(x)] == [h.shape for h in full.forward_blocks(x)]
        torch.testing.assert_close(split(x), split.forward_blocks(x)[-1].mean(dim=(2, 3)))
    assert split.block_dims == full.block_dims and split.feature_dim == full.feature_dim
    parameters = sum(p.numel() for p in split.parameters()) / sum(p.numel() for p in full.parameters())
    assert 0.45 < parameters < 0.55


def test_the_split_encoder_costs_half_the_compute():
    torch.manual_seed(0)
    x = random_float_images(B=1)
    flops = {}
    for name in ("small", "split-small"):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            build_encoder(name).eval()(x)
        flops[name] = counter.get_total_flops()
    assert 0.49 < flops["split-small"] / flops["small"] < 0.51


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_the_halves_are_disjoint(train):
    """The L half's outputs do not depend on ab and the ab half's do not depend on L, at every
    stage, in training mode too (BatchNorm's batch statistics are per channel)."""
    torch.manual_seed(0)
    encoder = build_encoder("split-small").train(train)
    L_input, ab_input = SplitEncoder.split_input(random_float_images(B=3))
    L_input.requires_grad_(True)
    ab_input.requires_grad_(True)
    for stage, (light, colour) in enumerate(encoder.forward_split(L_input, ab_input)):
        light_on_L, light_on_ab = torch.autograd.grad(light.square().sum(), (L_input, ab_input), retain_graph=True, allow_unused=True)
        colour_on_L, colour_on_ab = torch.autograd.grad(colour.square().sum(), (L_input, ab_input), retain_graph=True, allow_unused=True)
        assert light_on_ab is None and colour_on_L is None, f"stage {stage + 1} mixes the halves"
        assert light_on_L.abs().max() > 0 and colour_on_ab.abs().max() > 0
    # and in the concatenation the readout sees, the first half's channels are the L half's
    blocks = encoder.forward_blocks(torch.rand(2, 3, 32, 32))
    assert blocks[-1].shape[1] == 2 * encoder.half_dims[-1]


def test_split_input_is_lab_scaled():
    grey = torch.full((1, 3, 4, 4), 0.5)
    L_input, ab_input = SplitEncoder.split_input(grey)
    assert L_input.shape == (1, 1, 4, 4) and ab_input.shape == (1, 2, 4, 4)
    assert abs(L_input.mean().item() - (53.39 - 50) / 100) < 1e-3  # sRGB 0.5 grey has L = 53.39
    assert ab_input.abs().max() < 1e-3  # grey has no colour


def test_quantise_lightness():
    L = torch.tensor([0.0, 1.99, 2.0, 50.0, 99.9, 100.0]).view(1, 1, 1, 6)
    assert quantise_lightness(L, 50).flatten().tolist() == [0, 0, 1, 25, 49, 49]
    centres = lightness_bin_centres(50)
    assert centres[0] == 1 and centres[-1] == 99
    assert torch.equal(quantise_lightness(centres.view(1, 1, 1, -1), 50).flatten(), torch.arange(50))


def test_cross_channel_losses_known_values():
    Q, K = 7, 5
    g = torch.Generator().manual_seed(0)
    ab_targets = F.softmax(torch.randn(2, Q, 3, 3, generator=g), dim=1)
    L_targets = torch.randint(0, K, (2, 3, 3), generator=g)
    # Uniform predictions: the cross-entropy of any target distribution is log of the number of classes.
    loss_ab, loss_L = cross_channel_losses(torch.zeros(2, Q, 3, 3), ab_targets, torch.zeros(2, K, 3, 3), L_targets)
    assert math.isclose(loss_ab.item(), math.log(Q), rel_tol=1e-6) and math.isclose(loss_L.item(), math.log(K), rel_tol=1e-6)
    # Confident correct predictions of one-hot targets: 0.
    one_hot = F.one_hot(L_targets, K).permute(0, 3, 1, 2).float()
    loss_ab, loss_L = cross_channel_losses(100 * one_hot, one_hot, 100 * one_hot, L_targets)
    assert loss_ab.item() < 1e-6 and loss_L.item() < 1e-6


def test_the_network_predicts_on_the_quarter_grid():
    torch.manual_seed(0)
    bins = ab_gamut_bins()
    model = SplitBrainNet(build_encoder("split-small"), bins, 50).eval()
    with torch.no_grad():
        ab_logits, L_logits = model(random_float_images(B=2))
    assert ab_logits.shape == (2, len(bins), 8, 8) and L_logits.shape == (2, 50, 8, 8)


def cue_images(N=32, S=16, seed=0):
    """Blocks that are bright orange or dark blue: L gives ab away, and ab gives L away."""
    g = torch.Generator().manual_seed(seed)
    pattern = F.interpolate((torch.rand(N, 1, S // 4, S // 4, generator=g) < 0.5).float(), size=(S, S))
    bright, dark = torch.tensor([0.95, 0.6, 0.2]), torch.tensor([0.1, 0.15, 0.5])
    rgb = pattern * bright.view(1, 3, 1, 1) + (1 - pattern) * dark.view(1, 3, 1, 1)
    return (255 * rgb).round().to(torch.uint8)


def test_a_few_steps_learn_both_predictions():
    torch.manual_seed(0)
    model = SplitBrainNet(build_encoder("split-small"), ab_gamut_bins(), 50)
    images = cue_images()
    history = fit(model, lambda m, x, y, g: split_brain_loss(m, x, g), images, torch.zeros(32, dtype=torch.long),
                  tiny_profile(steps=40, batch_size=16), images_per_step=16)
    for name in ("loss_ab", "loss_L"):
        first, last = sum(history[name][:3]) / 3, sum(history[name][-3:]) / 3
        assert last < 0.8 * first, (name, first, last)  # the soft targets keep loss_ab above their entropy


def test_the_method_trains_the_split_encoder():
    assert encoder_name("split-brain", CLASS) == "split-small" and encoder_name("split-brain", FULL) == "split-resnet18"
    assert encoder_name("rotation", CLASS) == "small"
    with pytest.raises(TypeError, match="SplitEncoder"):
        pretrain_split_brain(build_encoder("small"), random_images(N=8), torch.zeros(8), tiny_profile(), 10, 0)


def test_pretrain_checkpoint_round_trip(tmp_path):
    images = random_images(N=16)
    checkpoint = pretrain("split-brain", images, torch.arange(16) % 10, tiny_profile(steps=2, batch_size=8), seed=0)
    assert checkpoint["encoder_name"] == "split-small" and checkpoint["lightness_bins"] == 50
    assert checkpoint["history"]["images_seen"] == 16 and len(checkpoint["history"]["ab_error"]) == 2
    loaded = load_checkpoint(save_checkpoint(tmp_path / "split-brain.pt", checkpoint))
    assert torch.equal(loaded["bins"], ab_gamut_bins())
    encoder = encoder_from_checkpoint(loaded)  # what every readout does
    assert isinstance(encoder, SplitEncoder) and not encoder.training
    model = split_brain_model_from_checkpoint(loaded)
    with torch.no_grad():
        torch.testing.assert_close(model.encoder(random_float_images(B=2)), encoder(random_float_images(B=2)))
    pictures = predict_cross_channel(model, images[:3])
    assert list(pictures) == ["L (input)", "ab from L", "ab (input)", "L from ab", "truth"]
    for name, rgb in pictures.items():
        assert rgb.shape == (3, 3, 32, 32) and rgb.min() >= 0 and rgb.max() <= 1, name
