"""Tests of sslteach.colorization: Lab against skimage, the ab bins, targets, prior, loss, decoding."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import color, data, transform

from sslteach.colorization import (
    hue_conditioned_logits,
    ab_gamut_bins,
    ab_prior,
    ab_regression_loss,
    annealed_mean,
    lab_to_rgb,
    rebalanced_loss,
    rebalancing_weights,
    rgb_to_lab,
    soft_encode,
    split_lab,
)


def random_rgb(B=2, H=6, W=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 3, H, W, generator=g, dtype=torch.float64).to(dtype)


def to_numpy(x):  # (B, 3, H, W) tensor -> (B, H, W, 3) float64 array, skimage's layout
    return x.detach().double().permute(0, 2, 3, 1).numpy()


def astronaut(size=64):
    image = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)  # float64 [0, 1]
    return torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, 3, size, size)


# --- colour conversion -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 6, 5), (3, 16, 16)])
def test_rgb_to_lab_matches_skimage_on_random_images(dtype, shape):
    rgb = random_rgb(*shape, dtype=dtype)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape and lab.dtype == dtype
    error = np.abs(to_numpy(lab) - color.rgb2lab(to_numpy(rgb))).max()
    assert error < 1e-3  # float32 reaches about 5e-5 Lab units, float64 about 1e-13


def test_rgb_to_lab_matches_skimage_on_a_real_image():
    rgb = astronaut()
    error = np.abs(to_numpy(rgb_to_lab(rgb)) - color.rgb2lab(to_numpy(rgb))).max()
    assert error < 1e-3


def test_rgb_to_lab_corners_of_the_cube():
    corners = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    rgb = corners.double().T.reshape(1, 3, 1, 6)
    np.testing.assert_allclose(to_numpy(rgb_to_lab(rgb)), color.rgb2lab(to_numpy(rgb)), atol=1e-6)
    # White is (100, 0, 0) only to about 5e-3: skimage's matrix rows do not sum exactly to its
    # D65 white point, and we copy both.
    white = rgb_to_lab(torch.ones(1, 3, 1, 1, dtype=torch.float64)).flatten()
    torch.testing.assert_close(white, torch.tensor([100.0, 0, 0], dtype=torch.float64),
                               atol=1e-2, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lab_to_rgb_matches_skimage_on_in_gamut_lab(dtype):
    lab = rgb_to_lab(random_rgb(3, 8, 8))  # Lab of real sRGB colours, so in gamut
    rgb = lab_to_rgb(lab.to(dtype))
    error = np.abs(to_numpy(rgb) - color.lab2rgb(to_numpy(lab))).max()
    assert error < 1e-3


def test_lab_to_rgb_clips_like_skimage_out_of_gamut():
    lab = torch.tensor([[50.0, 100, -100], [20, -80, 90], [90, 100, 100]]).double()
    lab = lab.T.reshape(1, 3, 1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about clipped negative Z
        expected = color.lab2rgb(to_numpy(lab))
    np.testing.assert_allclose(to_numpy(lab_to_rgb(lab)), expected, atol=1e-6)
    unclipped = lab_to_rgb(lab, clip=False)
    assert ((unclipped < 0) | (unclipped > 1)).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_rgb_lab_rgb(seed):
    rgb = random_rgb(2, 9, 7, seed=seed)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4, rtol=0)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(astronaut(32))), astronaut(32),
                               atol=1e-4, rtol=0)


def test_gradients_flow_through_both_conversions():
    # Keep away from the kinks (rgb = 0.04045, t = 0.008856): values in [0.2, 0.8] avoid both.
    rgb = (0.2 + 0.6 * random_rgb(1, 2, 2)).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))
    lab = rgb_to_lab(rgb.detach()).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: lab_to_rgb(x, clip=False), (lab,))
    # The masked branch must not leak nan gradients, even at exact zeros.
    black = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    rgb_to_lab(black).sum().backward()
    assert torch.isfinite(black.grad).all()


def test_split_lab_normalisation():
    rgb = random_rgb(2, 4, 4)
    L_input, ab = split_lab(rgb)
    lab = rgb_to_lab(rgb)
    assert L_input.shape == (2, 1, 4, 4) and ab.shape == (2, 2, 4, 4)
    torch.testing.assert_close(L_input, (lab[:, :1] - 50) / 100)
    torch.testing.assert_close(ab, lab[:, 1:])
    assert L_input.min() >= -0.5 and L_input.max() <= 0.5


# --- the quantised ab plane ------------------------------------------------------------------

def test_gamut_bins_count_grid_and_speed():
    start = time.perf_counter()
    bins = ab_gamut_bins(grid=10, subsamples=4)  # arguments not used elsewhere: not cached yet
    assert time.perf_counter() - start < 5
    assert bins.shape[1] == 2
    # The paper keeps 313; the sRGB gamut covers about 260 cells (see the docstring's Notes).
    assert 240 <= len(bins) <= 270
    assert len(bins) < 313
    assert torch.equal(bins, torch.round(bins / 10) * 10)  # on the grid of 10
    assert bins.abs().max() <= 110
    assert (bins == 0).all(dim=1).any()  # grey is in gamut
    assert len(torch.unique(bins, dim=0)) == len(bins)


def test_gamut_bins_are_cached_and_returned_as_clones():
    first = ab_gamut_bins()
    first[0] = 12345.0
    assert not (ab_gamut_bins() == 12345.0).any()


def test_every_real_colour_is_near_a_bin():
    bins = ab_gamut_bins()
    ab = rgb_to_lab(random_rgb(4, 32, 32, seed=3))[:, 1:].permute(0, 2, 3, 1).reshape(-1, 2)
    distance = torch.cdist(ab.float(), bins).min(dim=1).values
    assert distance.max() <= 5 * 2**0.5 + 1e-4  # inside its cell: at most half a diagonal


# --- soft encoding, prior, weights ------------------------------------------------------------

@pytest.mark.parametrize("neighbours", [1, 5, 10])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 4, 3)])
def test_soft_encode(neighbours, shape):
    bins = ab_gamut_bins()
    ab = split_lab(random_rgb(*shape))[1].float()
    Z = soft_encode(ab, bins, neighbours=neighbours)
    B, H, W = shape
    assert Z.shape == (B, len(bins), H, W)
    torch.testing.assert_close(Z.sum(dim=1), torch.ones(B, H, W))
    assert (Z >= 0).all() and ((Z > 0).sum(dim=1) <= neighbours).all()
    nearest = torch.cdist(ab.permute(0, 2, 3, 1), bins).argmin(dim=-1)  # (B, H, W)
    assert torch.equal(Z.argmax(dim=1), nearest)


def test_soft_encode_at_a_bin_centre_weights_neighbours_by_the_gaussian():
    bins = ab_gamut_bins()
    ab = torch.zeros(1, 2, 1, 1)  # exactly the grey bin: 4 neighbours at 10, 4 at 14.1, ...
    Z = soft_encode(ab, bins, neighbours=5, sigma=5.0).flatten()
    weights = torch.tensor([1.0] + [np.exp(-100 / 50)] * 4, dtype=torch.float32)
    torch.testing.assert_close(Z[Z > 0].sort(descending=True).values, weights / weights.sum())


def test_prior_is_a_distribution_and_favours_frequent_colours():
    bins = ab_gamut_bins()
    ab = split_lab(astronaut(48))[1].float()
    prior = ab_prior(ab, bins)
    assert prior.shape == (len(bins),)
    assert (prior >= 0).all()
    torch.testing.assert_close(prior.sum(), torch.tensor(1.0))
    grey = torch.zeros(1, 2, 4, 4)
    grey_prior = ab_prior(grey, bins)
    assert grey_prior.argmax() == (bins == 0).all(dim=1).nonzero().item()


@pytest.mark.parametrize("lam", [0.1, 0.25, 0.5, 0.9])
def test_weights_have_expectation_one_under_the_prior(lam):
    prior = ab_prior(split_lab(astronaut(48))[1].float(), ab_gamut_bins())
    w = rebalancing_weights(prior, lam=lam)
    torch.testing.assert_close((prior * w).sum(), torch.tensor(1.0))
    assert (w[prior.argmax()] <= w).all()  # the commonest colour gets the smallest weight


def test_lam_one_gives_uniform_weights():
    prior = torch.softmax(torch.randn(50, generator=torch.Generator().manual_seed(0)), dim=0)
    torch.testing.assert_close(rebalancing_weights(prior, lam=1.0), torch.ones(50))


# --- loss and decoding ------------------------------------------------------------------------

def reference_loss(logits, targets, weights):  # straight from Eq. 2-3, one pixel at a time
    B, Q, H, W = logits.shape
    total = 0.0
    for b in range(B):
        for h in range(H):
            for w in range(W):
                log_p = torch.log_softmax(logits[b, :, h, w], dim=0)
                v = weights[targets[b, :, h, w].argmax()]
                total += -v * sum(targets[b, q, h, w] * log_p[q] for q in range(Q))
    return total / (B * H * W)


@pytest.mark.parametrize("shape", [(1, 6, 1, 1), (2, 7, 3, 2)])
def test_rebalanced_loss_matches_loop(shape):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    targets = torch.softmax(3 * torch.randn(*shape, generator=g, dtype=torch.float64), dim=1)
    weights = torch.rand(shape[1], generator=g, dtype=torch.float64) + 0.5
    torch.testing.assert_close(rebalanced_loss(logits, targets, weights),
                               reference_loss(logits, targets, weights))


def test_rebalanced_loss_with_unit_weights_is_soft_cross_entropy():
    bins = ab_gamut_bins()
    targets = soft_encode(split_lab(random_rgb(2, 4, 4))[1].float(), bins)
    logits = torch.randn(2, len(bins), 4, 4, generator=torch.Generator().manual_seed(2))
    expected = F.cross_entropy(logits, targets)  # soft labels: mean over pixels
    torch.testing.assert_close(rebalanced_loss(logits, targets, torch.ones(len(bins))), expected)


def test_annealed_mean_at_temperature_one_is_the_mean():
    g = torch.Generator().manual_seed(4)
    bins = ab_gamut_bins()
    logits = torch.randn(2, len(bins), 3, 3, generator=g)
    p = logits.softmax(dim=1)
    expected = (p[:, :, None] * bins[None, :, :, None, None]).sum(dim=1)  # (B, 2, H, W)
    torch.testing.assert_close(annealed_mean(logits, bins, temperature=1.0), expected)


def test_annealed_mean_at_low_temperature_is_the_mode():
    g = torch.Generator().manual_seed(5)
    bins = ab_gamut_bins()
    logits = torch.randn(2, len(bins), 3, 3, generator=g)
    logits = logits.scatter_add(1, logits.argmax(dim=1, keepdim=True), torch.ones(2, 1, 3, 3))
    mode = bins[logits.argmax(dim=1)].permute(0, 3, 1, 2)  # (B, 2, H, W)
    torch.testing.assert_close(annealed_mean(logits, bins, temperature=0.01), mode,
                               atol=1e-3, rtol=0)


def test_annealed_mean_desaturates_as_temperature_rises():
    # Bimodal: a red and a blue-green mode of nearly equal probability; their mean is near grey.
    bins = ab_gamut_bins()
    red = torch.cdist(torch.tensor([[60.0, 40.0]]), bins).argmin()
    cyan = torch.cdist(torch.tensor([[-40.0, -30.0]]), bins).argmin()
    probabilities = torch.full((len(bins),), 1e-4)
    probabilities[red], probabilities[cyan] = 0.5, 0.45
    logits = probabilities.log().view(1, -1, 1, 1)
    saturation = [annealed_mean(logits, bins, t).norm(dim=1).item()
                  for t in (0.1, 0.2, 0.38, 0.6, 1.0)]
    assert all(a > b for a, b in zip(saturation, saturation[1:]))
    assert saturation[-1] < 0.5 * saturation[0]  # the mean of the two modes is greyish


def test_regression_loss_is_half_squared_distance_per_pixel():
    ab = torch.zeros(2, 2, 3, 3)
    pred = torch.zeros(2, 2, 3, 3)
    pred[:, 0] = 3.0
    pred[:, 1] = 4.0
    torch.testing.assert_close(ab_regression_loss(pred, ab), torch.tensor(12.5))  # 0.5 * 5^2
    # The L2 minimiser of two equally likely colours is their (greyish) mean.
    red, cyan = torch.tensor([60.0, 40.0]), torch.tensor([-40.0, -30.0])
    mean = ((red + cyan) / 2).view(1, 2, 1, 1)
    loss = lambda p: ab_regression_loss(p, red.view(1, 2, 1, 1)) + ab_regression_loss(
        p, cyan.view(1, 2, 1, 1))
    assert loss(mean) < loss(red.view(1, 2, 1, 1))


def test_one_cell_margin_around_the_srgb_bins_gives_about_the_papers_313():
    """The Notes' explanation of 250 versus 313, measured: dilate the computed set by one grid step."""
    bins = ab_gamut_bins()
    axis = torch.arange(-11, 12, dtype=torch.float32) * 10
    grid = torch.cartesian_prod(axis, axis)  # every centre in [-110, 110]^2
    within_one_step = torch.cdist(grid, bins).min(dim=1).values <= 10 + 1e-4  # 4-neighbours of a kept cell
    assert 305 <= int(within_one_step.sum()) <= 325


def test_hue_conditioning_picks_one_mode_of_a_two_coloured_pixel_and_leaves_sure_pixels_alone():
    bins = ab_gamut_bins()
    red = torch.cdist(torch.tensor([[50.0, 30.0]]), bins).argmin()  # a red bin (hue about 31 degrees)
    blue = torch.cdist(torch.tensor([[10.0, -50.0]]), bins).argmin()  # a blue bin (hue about -79 degrees)
    logits = torch.full((1, len(bins), 1, 2), -20.0)
    logits[0, [red, blue], 0, 0] = 5.0  # pixel 0: red or blue, equally
    logits[0, blue, 0, 1] = 5.0  # pixel 1: surely blue
    for hue, expected in [(30.0, red), (-80.0, blue)]:
        conditioned = hue_conditioned_logits(logits, bins, hue, width_degrees=60)
        ab = annealed_mean(conditioned, bins, temperature=1.0)  # (1, 2, 1, 2)
        assert torch.allclose(ab[0, :, 0, 0], bins[expected], atol=1e-3)
        assert torch.allclose(ab[0, :, 0, 1], bins[blue], atol=1e-3)  # no red mass: not recoloured
    mean = annealed_mean(logits, bins, temperature=1.0)[0, :, 0, 0]
    assert mean.norm() < bins[red].norm() and mean.norm() < bins[blue].norm()  # the hedge is greyer
