"""Tests of sslteach.context: the grid and the pairs against reference loops and hand-worked
positions, the simulated lens and both of the paper's fixes, the loss, and a smoke run of every
training variant."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn as nn

from sslteach.context import (
    CENTRE_CELL,
    CONTEXT,
    CONTEXT_NO_GAP,
    NEIGHBOUR_CELLS,
    NEIGHBOUR_NAMES,
    ContextTask,
    PatchNet,
    chromatic_aberration,
    context_loss,
    context_probabilities,
    crop_patches,
    drop_color,
    grid_corners,
    patch_pairs,
    grid_patch_features,
    project_out_green_magenta,
)
from sslteach.encoders import CIFAR10_MEAN, small_convnet
from sslteach.profiles import CLASS
from sslteach.checkpoint import encoder_from_checkpoint
from sslteach.methods import pretrain
from helpers import random_float_images

pytestmark = pytest.mark.usefixtures("one_thread")


def test_neighbour_labels_are_raster_order_without_the_centre():
    assert len(NEIGHBOUR_NAMES) == 8 == len(NEIGHBOUR_CELLS)
    assert CENTRE_CELL == 4 and CENTRE_CELL not in NEIGHBOUR_CELLS
    assert list(NEIGHBOUR_CELLS) == sorted(NEIGHBOUR_CELLS)
    for name, cell in zip(NEIGHBOUR_NAMES, NEIGHBOUR_CELLS):
        row, col = divmod(cell, 3)
        assert ("top" in name) == (row == 0) and ("bottom" in name) == (row == 2)
        assert ("left" in name) == (col == 0) and ("right" in name) == (col == 2)


def test_crop_patches_matches_a_reference_loop():
    x = random_float_images(B=3)
    g = torch.Generator().manual_seed(0)
    top, left = torch.randint(0, 27, (3, 4), generator=g), torch.randint(0, 27, (3, 4), generator=g)
    patches = crop_patches(x, top, left, 5)
    assert patches.shape == (3, 4, 3, 5, 5)
    for b in range(3):
        for k in range(4):
            t, l = int(top[b, k]), int(left[b, k])
            assert torch.equal(patches[b, k], x[b, :, t:t + 5, l:l + 5])
    assert crop_patches((255 * x).byte(), top, left, 5).dtype == torch.uint8


def test_grid_corners_without_jitter_are_the_centred_grid():
    corners = grid_corners(2, 32, patch_size=8, gap=3, jitter=0)
    assert corners.shape == (2, 9, 2)
    steps = [1, 12, 23]  # 3 patches of 8 with gaps of 3 span 30 pixels, centred in 32
    assert corners[0].tolist() == [[r, c] for r in steps for c in steps]


def test_grid_corners_jitter_range_and_bounds():
    g = torch.Generator().manual_seed(0)
    corners = grid_corners(500, 32, 8, 3, 1, generator=g)
    offset = corners - grid_corners(1, 32, 8, 3, 0)
    assert set(offset.flatten().tolist()) == {-1, 0, 1}
    assert corners.min() >= 0 and corners.max() + 8 <= 32
    with pytest.raises(ValueError, match="need 34 pixels"):
        grid_corners(1, 32, 8, 4, 1)


def test_pairs_are_the_centre_and_the_labelled_neighbour():
    x = random_float_images(B=64)
    pairs, labels, corners = patch_pairs(x, CONTEXT, generator=torch.Generator().manual_seed(0))
    assert pairs.shape == (64, 2, 3, 8, 8) and labels.shape == (64,) and labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(8))
    for b in range(64):
        for k in range(2):
            r, c = corners[b, k].tolist()
            assert torch.equal(pairs[b, k], x[b, :, r:r + 8, c:c + 8])
        centre, neighbour = corners[b, 0], corners[b, 1]
        assert ((centre - 12).abs() <= 1).all()  # the centre cell's corner is (12, 12), +- jitter
        row, col = divmod(NEIGHBOUR_CELLS[labels[b]], 3)
        expected = torch.tensor([1 + 11 * row, 1 + 11 * col])
        assert ((neighbour - expected).abs() <= 1).all()


def test_without_gap_the_patches_touch():
    """The shortcut the gap removes: the left neighbour's last column is next to the centre's first."""
    x = random_float_images(B=32)
    pairs, labels, corners = patch_pairs(x, CONTEXT_NO_GAP, generator=torch.Generator().manual_seed(0))
    for b in torch.nonzero(labels == NEIGHBOUR_NAMES.index("left")).flatten().tolist():
        assert (corners[b, 1] + torch.tensor([0, 8])).tolist() == corners[b, 0].tolist()
    with_gap = patch_pairs(x, CONTEXT, generator=torch.Generator().manual_seed(0))[2]
    distance = (with_gap[:, 0] - with_gap[:, 1]).abs().max(dim=1).values  # Chebyshev, in pixels
    assert distance.min() >= 8 + 3 - 2  # a patch, the gap, less the jitter of both


def test_aberration_shrinks_green_towards_the_centre():
    x = torch.zeros(1, 3, 32, 32)
    x[:, :, :, 28] = 1.0  # a vertical white line right of the centre
    out = chromatic_aberration(x, 0.1)
    assert torch.equal(out[:, 0], x[:, 0]) and torch.equal(out[:, 2], x[:, 2])
    columns = torch.arange(32.0)
    green_centre = (out[0, 1, 16] * columns).sum() / out[0, 1, 16].sum()
    # Pixel centres at 0.5 + column; the centre of the image is at 16: 28.5 -> 16 + 12.5 / 1.1,
    # 1.1 pixels inwards (up to 0.1 off: bilinear sampling of a line one pixel wide).
    assert green_centre.item() + 0.5 == pytest.approx(16 + 12.5 / 1.1, abs=0.1)
    torch.testing.assert_close(chromatic_aberration(random_float_images(), 0.0), random_float_images())


def test_color_dropping_keeps_one_channel_and_fills_the_others_with_faint_noise():
    patches = random_float_images(B=200, S=8).view(100, 2, 3, 8, 8)
    dropped = drop_color(patches, generator=torch.Generator().manual_seed(0))
    assert dropped.shape == patches.shape
    flat_in, flat_out = patches.reshape(200, 3, 8, 8), dropped.reshape(200, 3, 8, 8)
    kept = (flat_in == flat_out).flatten(2).all(dim=2)  # (200, 3)
    assert (kept.sum(dim=1) == 1).all()
    assert set(kept.float().argmax(dim=1).tolist()) == {0, 1, 2}
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1).expand_as(flat_out)
    noise = (flat_out - mean)[~kept]  # (400, 8, 8)
    kept_std = flat_in[kept].flatten(1).std(dim=1)  # (200,), one per patch
    assert noise.flatten(1).std(dim=1).mean() == pytest.approx(kept_std.mean().item() / 100, rel=0.1)


def test_green_magenta_projection():
    v = torch.tensor([-1.0, 2.0, -1.0]) / 6 ** 0.5
    x = random_float_images(B=3)
    out = project_out_green_magenta(x)
    torch.testing.assert_close(torch.einsum("bchw,c->bhw", out, v), torch.zeros(3, 32, 32), atol=1e-6, rtol=0)
    torch.testing.assert_close(project_out_green_magenta(out), out)  # a projection
    grey = x[:, :1].expand(3, 3, 32, 32)
    torch.testing.assert_close(project_out_green_magenta(grey), grey)  # greys unchanged
    green = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(project_out_green_magenta(green).flatten(), torch.full((3,), 1 / 3))
    red_blue = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)  # orthogonal to v: untouched
    torch.testing.assert_close(project_out_green_magenta(red_blue), red_blue)


def test_grid_patch_features_are_the_encoders_features_of_each_cell():
    torch.manual_seed(0)
    encoder = small_convnet((4, 8)).eval()
    x = random_float_images(B=3)
    task = ContextTask(jitter=0)
    features, cells = grid_patch_features(encoder, x, task, batch_size=2)
    assert features.shape == (27, 8) and cells.tolist() == list(range(9)) * 3
    corners = grid_corners(1, 32, 8, 3, 0)[0]  # (9, 2), the same for every image without jitter
    with torch.no_grad():
        for row in range(27):
            b, cell = divmod(row, 9)
            r, c = corners[cell].tolist()
            torch.testing.assert_close(features[row], encoder(x[b:b + 1, :, r:r + 8, c:c + 8])[0], atol=1e-5, rtol=1e-4)
    lens = ContextTask(jitter=0, aberration=0.06)
    expected, _ = grid_patch_features(encoder, chromatic_aberration(x, 0.06), task)
    torch.testing.assert_close(grid_patch_features(encoder, x, lens)[0], expected)


def tiny_model():
    torch.manual_seed(0)
    return PatchNet(small_convnet((4, 8)), 2, 8)


@pytest.mark.parametrize("task", [CONTEXT, CONTEXT_NO_GAP, ContextTask(aberration=0.06, color_dropping=True)])
def test_context_loss_trains_every_parameter(task):
    model = tiny_model()
    loss, metrics = context_loss(model, (255 * random_float_images(B=6)).byte(), task, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and 0 <= metrics["accuracy"] <= 1
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_context_loss_of_an_uninformed_model_is_log8():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 8 * 8, 8))
    nn.init.zeros_(model[1].weight)
    nn.init.zeros_(model[1].bias)
    loss, _ = context_loss(model, (255 * random_float_images(B=6)).byte())
    assert loss.item() == pytest.approx(math.log(8))


def test_context_probabilities():
    model = tiny_model().eval()
    pairs, _, _ = patch_pairs(random_float_images(B=5))
    probabilities = context_probabilities(model, pairs, batch_size=2)
    assert probabilities.shape == (5, 8)
    with torch.no_grad():
        torch.testing.assert_close(probabilities, model(pairs).softmax(dim=1))


METHODS = ["context", "context-nogap", "context-aberration", "context-aberration-dropping"]


@pytest.mark.parametrize("method", METHODS)
def test_pretrain_context_smoke(method):
    tiny = dataclasses.replace(CLASS, steps=2, batch_size=8, warmup_steps=1)
    x = (255 * random_float_images(B=16)).byte()
    checkpoint = pretrain(method, x, torch.arange(16) % 10, tiny)
    history = checkpoint["history"]
    assert len(history["loss"]) == 2 and all(map(math.isfinite, history["loss"]))
    assert history["images_seen"] == 2 * 8
    task = ContextTask(**checkpoint["task"])
    assert (task.gap == 0) == (method == "context-nogap")
    assert (task.aberration > 0) == ("aberration" in method) and task.color_dropping == method.endswith("dropping")
    model = PatchNet(encoder_from_checkpoint(checkpoint), 2, 8)
    model.head.load_state_dict(checkpoint["head"])


def test_projection_check_explains_mistakes(capsys):
    from sslteach.checks import ExerciseError, check_project_out_green_magenta

    check_project_out_green_magenta(project_out_green_magenta)
    assert "correct" in capsys.readouterr().out
    v = torch.tensor([-1.0, 2.0, -1.0])

    def unnormalised(x):
        return x - torch.einsum("bchw,c->bhw", x, v).unsqueeze(1) * v.view(3, 1, 1)

    def drop_green(x):
        return x * torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1)

    def scaffold(x):
        raise NotImplementedError

    for fn, hint in [(scaffold, "NotImplementedError"), (lambda x: x, "unchanged"), (drop_green, "grey"),
                     (unnormalised, "sqrt"), (lambda x: x.mean(1), "shape")]:
        with pytest.raises(ExerciseError, match=hint):
            check_project_out_green_magenta(fn)


def test_neighbour_offsets_check_explains_mistakes(capsys):
    from sslteach.checks import ExerciseError, check_neighbour_offsets

    def right(labels):
        cells = labels + (labels >= 4).long()
        return torch.stack([cells // 3 - 1, cells % 3 - 1], dim=1)

    check_neighbour_offsets(right)
    assert "correct" in capsys.readouterr().out

    def centre_not_skipped(labels):
        return torch.stack([labels // 3 - 1, labels % 3 - 1], dim=1)

    def swapped(labels):
        return right(labels).flip(1)

    def scaffold(labels):
        raise NotImplementedError

    for fn, hint in [(scaffold, "NotImplementedError"), (centre_not_skipped, "centre skipped"), (swapped, "swapped"),
                     (lambda labels: labels, "shape")]:
        with pytest.raises(ExerciseError, match=hint):
            check_neighbour_offsets(fn)
