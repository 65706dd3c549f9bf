"""Tests of sslteach.rotation: the layout of the rotated batch, round trips, and the loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from sslteach.augment import to_float
from sslteach.encoders import small_convnet
from sslteach.rotation import ROTATION_NAMES, rotate_batch, rotation_loss, rotation_probabilities
from sslteach.loop import Classifier


def images(B=5, S=8, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, 3, S, S), generator=g).to(dtype)


def tiny_model():
    torch.manual_seed(0)
    return Classifier(small_convnet((4, 8)), 4)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_rotate_batch_shapes_and_label_layout(dtype):
    B = 5
    x = images(B, dtype=dtype)
    rotated, labels = rotate_batch(x)
    assert rotated.shape == (4 * B, 3, 8, 8) and rotated.dtype == dtype
    assert labels.dtype == torch.int64
    assert labels.tolist() == [0] * B + [1] * B + [2] * B + [3] * B
    for k in range(4):  # row k * B + i is image i turned k times: a reference loop
        for i in range(B):
            assert torch.equal(rotated[k * B + i], torch.rot90(x[i], k, dims=(1, 2)))
    assert len(ROTATION_NAMES) == 4


def test_rotate_back_recovers_originals():
    x = images()
    B = len(x)
    rotated, labels = rotate_batch(x)
    for row, k in enumerate(labels.tolist()):
        assert torch.equal(torch.rot90(rotated[row], -k, dims=(1, 2)), x[row % B])


def test_rotation_is_anticlockwise():
    x = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    x[0, :, 0, -1] = 255  # top-right corner
    rotated, _ = rotate_batch(x)
    corners = [(0, 0), (-1, 0), (-1, -1)]  # a quarter turn anticlockwise moves it top-left, ...
    for k, (r, c) in enumerate(corners, start=1):
        assert rotated[k, 0, r, c] == 255 and rotated[k].sum() == 3 * 255


def test_four_rotations_distinct_unless_symmetric():
    rotated, _ = rotate_batch(images(B=1))
    assert all(not torch.equal(rotated[a], rotated[b]) for a in range(4) for b in range(a + 1, 4))
    # A pattern symmetric under quarter turns gives four identical images.
    r = torch.arange(8) - 3.5
    disc = (r.view(-1, 1) ** 2 + r.view(1, -1) ** 2 < 9).to(torch.uint8).expand(1, 3, 8, 8) * 200
    rotated, _ = rotate_batch(disc)
    assert all(torch.equal(rotated[0], rotated[k]) for k in range(4))
    # Only half-turn symmetric: 0 = 180 and 90 = 270, but 0 != 90.
    left = images(B=1)[..., :4]  # (1, 3, 8, 4)
    half = torch.cat([left, torch.rot90(left, 2, dims=(2, 3))], dim=3)  # [A | rot180(A)]
    rotated, _ = rotate_batch(half)
    assert torch.equal(rotated[0], rotated[2]) and torch.equal(rotated[1], rotated[3])
    assert not torch.equal(rotated[0], rotated[1])


def test_rotation_loss_finite_with_accuracy_in_unit_interval():
    model = tiny_model()
    loss, metrics = rotation_loss(model, images(B=6), generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_rotation_loss_of_uninformed_model_is_log4():
    """Constant logits: cross-entropy log 4, and argmax (first of ties: 0) is right for 1 in 4."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    nn.init.zeros_(model[1].weight)
    nn.init.zeros_(model[1].bias)
    loss, metrics = rotation_loss(model, images(B=6))
    assert loss.item() == pytest.approx(math.log(4))
    assert metrics["accuracy"] == pytest.approx(0.25)


def test_rotation_probabilities_shape_rows_and_layout():
    model = tiny_model().eval()
    x = images(B=3)
    probs = rotation_probabilities(model, x)
    assert probs.shape == (4, 3, 4)
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(4, 3))
    assert (probs >= 0).all()
    # [applied rotation k, image i] is the softmax of the model on image i turned k times.
    with torch.no_grad():
        for k in range(4):
            for i in range(3):
                expected = model(torch.rot90(to_float(x[i : i + 1]), k, dims=(2, 3))).softmax(dim=1)[0]
                torch.testing.assert_close(probs[k, i], expected, atol=1e-5, rtol=1e-4)
