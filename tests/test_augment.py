"""Tests of sslteach.augment: per-image reference loops, exact identities, analytic crops,
and agreement with torchvision's colour functions for fixed factors."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from sslteach import augment
from sslteach.augment import (
    color_jitter,
    grayscale,
    random_crop_flip,
    random_grayscale,
    random_resized_crop,
    simclr_augment,
    to_float,
)


def uint8_images(B=8, H=12, W=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, 3, H, W), dtype=torch.uint8, generator=g)


def float_images(B=8, H=12, W=12, low=0.0, high=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(B, 3, H, W, generator=g)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- to_float


def test_to_float_scales_uint8_and_keeps_floats():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    assert to_float(x).dtype == torch.float32
    torch.testing.assert_close(to_float(x).flatten(), torch.tensor([0.0, 0.2, 1.0]))
    f = torch.rand(2, 3, 4, 4)
    assert to_float(f) is f


def test_grayscale_matches_torchvision():
    x = float_images()
    torch.testing.assert_close(grayscale(x), TF.rgb_to_grayscale(x), atol=1e-3, rtol=0)


# ----------------------------------------------------------------------------- random_crop_flip


def crop_flip_reference(x, padding):
    """Every candidate output for one image: all (2p+1)^2 crops of the zero-padded image, each
    plain and mirrored, written as a plain loop. Returns {(dy, dx, flipped): (C, H, W)}."""
    C, H, W = x.shape
    padded = torch.zeros(C, H + 2 * padding, W + 2 * padding, dtype=x.dtype)
    padded[:, padding : padding + H, padding : padding + W] = x
    candidates = {}
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy : dy + H, dx : dx + W]
            candidates[(dy, dx, False)] = crop
            candidates[(dy, dx, True)] = crop.flip(-1)
    return candidates


def test_random_crop_flip_matches_per_image_reference_loop():
    x = uint8_images(B=64, H=8, W=8)
    padding = 2
    out = random_crop_flip(x, padding=padding, flip_p=0.5, generator=gen(1))
    assert out.shape == x.shape and out.dtype == torch.uint8
    chosen = []
    for i in range(len(x)):
        matches = [key for key, cand in crop_flip_reference(x[i], padding).items() if torch.equal(out[i], cand)]
        # Random pixels make every candidate distinct, so exactly one crop/flip must match.
        assert len(matches) == 1, f"image {i}: output is not a crop/flip of the padded input"
        chosen.append(matches[0])
    # Parameters are drawn per image, not once for the batch.
    assert len({(dy, dx) for dy, dx, _ in chosen}) > 10
    assert {flipped for _, _, flipped in chosen} == {False, True}
    # Offsets cover the whole range 0..2p.
    assert {dy for dy, _, _ in chosen} == set(range(2 * padding + 1))
    assert {dx for _, dx, _ in chosen} == set(range(2 * padding + 1))


def test_random_crop_flip_exact_identities():
    x = uint8_images()
    assert torch.equal(random_crop_flip(x, padding=0, flip_p=0.0, generator=gen()), x)
    assert torch.equal(random_crop_flip(x, padding=0, flip_p=1.0, generator=gen()), x.flip(-1))


def test_random_crop_flip_float_and_uint8_agree():
    x = uint8_images()
    a = random_crop_flip(x, generator=gen(3))
    b = random_crop_flip(to_float(x), generator=gen(3))
    assert a.dtype == torch.uint8 and b.dtype == torch.float32
    torch.testing.assert_close(to_float(a), b)


def test_random_crop_flip_pads_with_zeros():
    x = torch.full((32, 3, 6, 6), 255, dtype=torch.uint8)
    out = random_crop_flip(x, padding=3, generator=gen())
    # A shifted crop exposes border zeros; pixel values are only ever 0 or 255.
    assert set(out.unique().tolist()) <= {0, 255}
    assert (out == 0).any()


# ----------------------------------------------------------------------------- random_resized_crop


def test_random_resized_crop_full_square_is_identity_or_mirror():
    x = uint8_images(H=16, W=16)
    same = random_resized_crop(x, scale=(1, 1), ratio=(1, 1), flip_p=0.0, generator=gen())
    torch.testing.assert_close(same, to_float(x), atol=1e-5, rtol=0)
    mirrored = random_resized_crop(x, scale=(1, 1), ratio=(1, 1), flip_p=1.0, generator=gen())
    torch.testing.assert_close(mirrored, to_float(x).flip(-1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [None, 8, 24])
def test_random_resized_crop_shape_dtype_range(size):
    x = uint8_images(B=5, H=16, W=16)
    out = random_resized_crop(x, size=size, generator=gen())
    assert out.shape == (5, 3, size or 16, size or 16)
    assert out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def ramps(B, H, W):
    """Images whose red channel rises along columns (0 -> 1) and green along rows."""
    x = torch.zeros(B, 3, H, W)
    x[:, 0] = torch.linspace(0, 1, W).view(1, 1, W)
    x[:, 1] = torch.linspace(0, 1, H).view(1, H, 1)
    return x


@pytest.mark.parametrize("area, aspect", [(0.25, 1.0), (0.25, 2.0), (0.36, 0.5)])
def test_random_resized_crop_area_and_aspect_ratio(area, aspect):
    """Bilinear resampling keeps a linear ramp linear, so the slope of the output ramp measures
    the crop side: width w = sqrt(area * ratio), height h = sqrt(area / ratio) (ratio = w / h,
    torchvision's convention), as fractions of the image side."""
    B, S = 16, 32
    out = random_resized_crop(ramps(B, S, S), scale=(area, area), ratio=(aspect, aspect), flip_p=0.0, generator=gen())
    # One output pixel step covers w * S / size input pixels, i.e. w * S / (S - 1) / size in value.
    col_step = out[:, 0].diff(dim=2).median().item()
    row_step = out[:, 1].diff(dim=1).median().item()
    w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
    assert col_step == pytest.approx(w / (S - 1), rel=1e-3)
    assert row_step == pytest.approx(h / (S - 1), rel=1e-3)


def test_random_resized_crop_draws_per_image():
    B, S = 64, 16
    out = random_resized_crop(ramps(B, S, S), flip_p=0.5, generator=gen())
    slopes = out[:, 0, S // 2].diff(dim=1).mean(dim=1)  # (B,) mean column step of each image
    assert (slopes > 0).any() and (slopes < 0).any()  # some mirrored, some not
    assert slopes.abs().std() > 1e-3  # different crop widths


# ----------------------------------------------------------------------------- color_jitter


def test_color_jitter_with_p0_is_identity():
    x = float_images()
    out = color_jitter(x, 0.8, 0.8, 0.8, 0.2, p=0.0, generator=gen())
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_color_jitter_zero_strengths_is_identity():
    x = float_images()
    out = color_jitter(x, 0.0, 0.0, 0.0, 0.0, p=1.0, generator=gen())
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


@pytest.fixture
def fixed_draws(monkeypatch):
    """Make every uniform draw return one end of its range: factor = 1 -/+ strength exactly.

    color_jitter draws each factor from [1 - s, 1 + s], so with draws pinned to an end we can set
    brightness, contrast and saturation factors one at a time and compare with torchvision.
    """

    def pin(end):
        def fake_uniform(low, high, n, like, generator):
            return torch.full((n,), float(low if end == "low" else high), device=like.device)

        monkeypatch.setattr(augment, "_uniform", fake_uniform)

    return pin


@pytest.mark.parametrize("end", ["low", "high"])
@pytest.mark.parametrize("strength", [0.3, 0.8])
@pytest.mark.parametrize("which", ["brightness", "contrast", "saturation"])
def test_color_jitter_matches_torchvision(fixed_draws, which, strength, end):
    fixed_draws(end)
    factor = 1 - strength if end == "low" else 1 + strength
    x = float_images(B=4)
    strengths = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, which: strength}
    ours = color_jitter(x, **strengths, hue=0.0, p=1.0, generator=gen())
    reference = {
        "brightness": TF.adjust_brightness,
        "contrast": TF.adjust_contrast,  # blends with the mean of the greyscale image
        "saturation": TF.adjust_saturation,
    }[which]
    # torchvision's luma weight for red is 0.2989 against our 0.299: 1e-4 at most.
    torch.testing.assert_close(ours, reference(x, factor), atol=5e-4, rtol=0)


def test_color_jitter_contrast_uses_greyscale_mean_not_channel_means(fixed_draws):
    fixed_draws("low")
    x = float_images(B=4, low=0.2, high=0.7)
    x[:, 0] += 0.2  # channels with different means
    out = color_jitter(x, 0.0, 1.0, 0.0, 0.0, p=1.0, generator=gen())  # contrast factor 0
    mean_grey = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, mean_grey.expand_as(x), atol=1e-5, rtol=0)


def test_color_jitter_saturation_zero_gives_greyscale(fixed_draws):
    fixed_draws("low")
    x = float_images()
    out = color_jitter(x, 0.0, 0.0, 1.0, 0.0, p=1.0, generator=gen())  # saturation factor 0
    torch.testing.assert_close(out, grayscale(x).expand_as(x), atol=1e-5, rtol=0)


def test_hue_rotation_analytic_properties():
    angles = torch.tensor([0.0, 0.7, -2.0, math.pi, 2 * math.pi])
    R = augment._yiq_hue_rotation(angles)  # (5, 3, 3)
    eye = torch.eye(3).expand(2, 3, 3)
    torch.testing.assert_close(R[[0, 4]], eye, atol=1e-5, rtol=0)  # 0 and a full turn
    # Grey (1, 1, 1) is the rotation axis, and the luma row is unchanged.
    torch.testing.assert_close(R @ torch.ones(3), torch.ones(5, 3), atol=1e-5, rtol=0)
    luma = torch.tensor(augment.LUMA)
    torch.testing.assert_close(luma @ R, luma.expand(5, 3), atol=1e-5, rtol=0)
    # Rotations compose: R(a) R(b) = R(a + b).
    a, b = torch.tensor([0.7]), torch.tensor([-2.0])
    torch.testing.assert_close(
        augment._yiq_hue_rotation(a) @ augment._yiq_hue_rotation(b), augment._yiq_hue_rotation(a + b), atol=1e-5, rtol=0
    )


def test_hue_jitter_keeps_grey_pixels_grey():
    grey = float_images(B=16)[:, :1].expand(16, 3, 12, 12).contiguous()
    out = color_jitter(grey, 0.0, 0.0, 0.0, 0.5, p=1.0, generator=gen())
    torch.testing.assert_close(out, grey, atol=1e-5, rtol=0)


def test_hue_jitter_changes_colours_but_not_luma():
    x = float_images(B=16, low=0.35, high=0.65)  # well inside [0, 1]: no clamping
    out = color_jitter(x, 0.0, 0.0, 0.0, 0.5, p=1.0, generator=gen())
    assert (out - x).abs().amax(dim=(1, 2, 3)).min() > 1e-3
    torch.testing.assert_close(grayscale(out), grayscale(x), atol=1e-5, rtol=0)


def test_color_jitter_draws_per_image_factors_in_range():
    x = float_images(B=64, low=0.2, high=0.6)  # x * factor stays below 1: no clamping
    s = 0.5
    out = color_jitter(x, s, 0.0, 0.0, 0.0, p=1.0, generator=gen())
    factors = (out * x).sum(dim=(1, 2, 3)) / (x * x).sum(dim=(1, 2, 3))  # least squares, (B,)
    torch.testing.assert_close(out, x * factors.view(-1, 1, 1, 1), atol=1e-5, rtol=0)
    assert factors.min() >= 1 - s - 1e-5 and factors.max() <= 1 + s + 1e-5
    assert factors.std() > 0.1  # one draw per image, not one per batch


def test_color_jitter_p_selects_images():
    x = float_images(B=64)
    out = color_jitter(x, 0.8, 0.8, 0.8, 0.2, p=0.5, generator=gen())
    changed = (out - x).abs().amax(dim=(1, 2, 3)) > 1e-4
    assert 10 < changed.sum() < 54


def test_color_jitter_output_range():
    out = color_jitter(float_images(B=32), 0.9, 0.9, 0.9, 0.5, p=1.0, generator=gen())
    assert out.min() >= 0 and out.max() <= 1


# ----------------------------------------------------------------------------- random_grayscale


def test_random_grayscale_p1_gives_equal_channels_p0_identity():
    x = float_images()
    grey = random_grayscale(x, p=1.0, generator=gen())
    assert grey.shape == x.shape
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    torch.testing.assert_close(grey, TF.rgb_to_grayscale(x, num_output_channels=3), atol=1e-3, rtol=0)
    assert torch.equal(random_grayscale(x, p=0.0, generator=gen()), x)


def test_random_grayscale_chooses_per_image():
    x = float_images(B=64)
    out = random_grayscale(x, p=0.5, generator=gen())
    is_grey = (out[:, 0] == out[:, 1]).all(dim=(1, 2)) & (out[:, 1] == out[:, 2]).all(dim=(1, 2))
    untouched = (out == x).all(dim=(1, 2, 3))
    assert torch.equal(is_grey, ~untouched)
    assert 10 < is_grey.sum() < 54


# ----------------------------------------------------------------------------- simclr_augment


def test_simclr_augment_uint8_batch():
    x = uint8_images(B=16, H=32, W=32)
    out = simclr_augment(x, generator=gen())
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.isfinite(out).all()


def test_simclr_augment_seeds():
    x = uint8_images(B=8, H=32, W=32)
    a = simclr_augment(x, generator=gen(5))
    b = simclr_augment(x, generator=gen(5))
    c = simclr_augment(x, generator=gen(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, g: random_crop_flip(x, generator=g),
        lambda x, g: random_resized_crop(x, generator=g),
        lambda x, g: color_jitter(to_float(x), generator=g),
        lambda x, g: random_grayscale(to_float(x), p=0.5, generator=g),
    ],
    ids=["crop_flip", "resized_crop", "color_jitter", "grayscale"],
)
def test_same_seed_same_output_different_seed_different(fn):
    x = uint8_images(B=16)
    assert torch.equal(fn(x, gen(0)), fn(x, gen(0)))
    assert not torch.equal(fn(x, gen(0)), fn(x, gen(1)))


def test_two_views_of_one_image_differ():
    """The same image twice in a batch gets two different views (per-image draws)."""
    x = uint8_images(B=1, H=32, W=32).expand(2, 3, 32, 32)
    views = simclr_augment(x, generator=gen())
    assert not torch.allclose(views[0], views[1])
