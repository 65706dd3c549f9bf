"""Tests of sslteach.jigsaw: the permutation set against a slow reference and the paper's
statistics, the tiles against reference loops, invariances of the normalisation, the loss, and a
smoke run of the training path."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time

import pytest
import torch
import torch.nn as nn

from sslteach.encoders import CIFAR10_MEAN, CIFAR10_STD, Normalize, small_convnet
from sslteach.jigsaw import (
    all_permutations,
    assemble,
    cut_tiles,
    hamming_distances,
    hamming_permutations,
    jigsaw_loss,
    jigsaw_probabilities,
    VIEWS,
    normalize_tiles,
    permutation_statistics,
    shuffled_tiles,
    tile_layout,
)
from sslteach.context import PatchNet
from sslteach.profiles import CLASS
from sslteach.checkpoint import encoder_from_checkpoint
from sslteach.methods import pretrain
from helpers import random_float_images

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- permutations


def reference_selection(count, seed=0):
    """Noroozi & Favaro's greedy selection written as plainly as possible: for every candidate,
    its mean Hamming distance to the chosen ones (then, on ties, its minimum distance)."""
    candidates = all_permutations().long()
    n = len(candidates)
    index = int(torch.randint(n, (1,), generator=torch.Generator().manual_seed(seed)))
    chosen = [index]
    distances = []  # distances[i]: (9!,) distances of every candidate to chosen permutation i
    for _ in range(count - 1):
        distances.append((candidates != candidates[chosen[-1]]).sum(dim=1))
        stacked = torch.stack(distances)  # (chosen, 9!)
        # Largest total (= mean) distance first; the minimum distance (<= 9 < 16) breaks ties.
        key = stacked.sum(0) * 16 + stacked.min(0).values
        key[chosen] = -1
        chosen.append(int(key.argmax()))
    return candidates[chosen]


def test_selection_matches_the_reference_loop():
    for count, seed in [(12, 0), (15, 3)]:
        assert torch.equal(hamming_permutations(count, seed), reference_selection(count, seed))


def test_thousand_permutations_match_the_papers_statistics_in_seconds():
    all_permutations()  # the 9! table is built once per process
    start = time.perf_counter()
    permutations = hamming_permutations(1000)
    seconds = time.perf_counter() - start
    stats = permutation_statistics(permutations)
    assert permutations.shape == (1000, 9) and permutations.dtype == torch.int64
    assert stats["average"] == pytest.approx(8.0, abs=0.05)  # paper: 8.00
    assert stats["minimum"] == 2  # paper: 2
    assert seconds < 30, f"selecting 1000 permutations took {seconds:.1f} s"


def test_permutation_sets_are_valid_distinct_and_repeatable():
    permutations = hamming_permutations(100, seed=1)
    assert torch.equal(permutations.sort(dim=1).values, torch.arange(9).expand(100, 9))
    assert len({tuple(p) for p in permutations.tolist()}) == 100
    assert torch.equal(permutations, hamming_permutations(100, seed=1))
    assert not torch.equal(permutations[0], hamming_permutations(100, seed=2)[0])


@pytest.mark.parametrize("count, average, minimum", [(10, 8.48, 7), (100, 8.08, 2)])
def test_small_sets_are_at_least_as_spread_as_the_papers(count, average, minimum):
    stats = permutation_statistics(hamming_permutations(count))
    assert stats["average"] >= average - 0.05
    assert stats["minimum"] >= minimum


def test_hamming_distances_analytic():
    identity = torch.arange(9)
    swap = identity.clone()
    swap[[0, 1]] = swap[[1, 0]]
    shifted = identity.roll(1)
    d = hamming_distances(torch.stack([identity, swap, shifted]))
    assert d.tolist() == [[0, 2, 9], [2, 0, 8], [9, 8, 0]]  # swap and shifted both put 0 at position 1
    stats = permutation_statistics(torch.stack([identity, swap, shifted]))
    assert stats == {"count": 3, "average": pytest.approx(19 / 3), "minimum": 2}


def test_all_permutations_is_the_full_lexicographic_list():
    table = all_permutations()
    assert table.shape == (math.factorial(9), 9) and table.dtype == torch.uint8
    assert table[:3].tolist() == [list(p) for p in itertools.islice(itertools.permutations(range(9)), 3)]


# ----------------------------------------------------------------------------- tiles


def test_tile_layout():
    assert tile_layout(32) == (8, 2, 1)  # CIFAR-10: cells of 10
    assert tile_layout(225) == (60, 15, 7)  # the paper's 225-pixel crop: cells of 75


def coordinates(S=32):
    """A (1, 3, S, S) image whose channels hold each pixel's row, column and a constant."""
    rows = torch.arange(S, dtype=torch.float32).view(S, 1).expand(S, S)
    return torch.stack([rows, rows.T, torch.ones(S, S)]).unsqueeze(0)


def test_each_tile_is_a_crop_inside_its_cell():
    tiles = cut_tiles(coordinates().expand(200, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    assert tiles.shape == (200, 9, 3, 8, 8)
    top, left = tiles[:, :, 0, 0, 0], tiles[:, :, 1, 0, 0]  # (200, 9) corner of every tile
    # The tile is a contiguous 8x8 crop: rows and columns count up from its corner.
    torch.testing.assert_close(tiles[:, :, 0], top.view(200, 9, 1, 1) + torch.arange(8.0).view(8, 1).expand(8, 8))
    torch.testing.assert_close(tiles[:, :, 1], left.view(200, 9, 1, 1) + torch.arange(8.0).expand(8, 8))
    for cell in range(9):
        i, j = divmod(cell, 3)
        # Cells start at 1 + 10 i (the 30-pixel grid centred in 32); an 8-pixel tile may start
        # 0, 1 or 2 pixels into its cell, and all three happen.
        assert set(top[:, cell].long().tolist()) == {1 + 10 * i + d for d in range(3)}
        assert set(left[:, cell].long().tolist()) == {1 + 10 * j + d for d in range(3)}


def test_tiles_do_not_overlap_and_gaps_vary():
    tiles = cut_tiles(coordinates().expand(200, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    left = tiles[:, :, 1, 0, 0].long()  # (200, 9)
    gaps = left[:, 1] - (left[:, 0] + 8)  # pixels between the first two tiles of the top row
    assert gaps.min() >= 0 and gaps.max() == 4 and set(gaps.tolist()) == {0, 1, 2, 3, 4}


def test_shuffled_tiles_layout_matches_a_reference_loop():
    x = random_float_images(B=5)
    permutations = hamming_permutations(5, seed=3)
    tiles = shuffled_tiles(x, permutations, generator=torch.Generator().manual_seed(7))
    raster = normalize_tiles(cut_tiles(x, generator=torch.Generator().manual_seed(7)))  # same crops
    assert tiles.shape == (5, 9, 3, 8, 8)
    for b in range(5):
        for j in range(9):  # position j of the puzzle holds the tile of cell permutations[b, j]
            assert torch.equal(tiles[b, j], raster[b, permutations[b, j]])
        assert torch.equal(tiles[b, permutations[b].argsort()], raster[b])  # the solved puzzle


def test_per_tile_normalisation():
    x = random_float_images(B=3)
    tiles = normalize_tiles(cut_tiles(x, generator=torch.Generator().manual_seed(0)))
    seen = Normalize()(tiles.flatten(0, 1))  # what the encoder's first layer sees: (27, 3, 8, 8)
    torch.testing.assert_close(seen.mean(dim=(2, 3)), torch.zeros(27, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(seen.std(dim=(2, 3)), torch.ones(27, 3), atol=2e-3, rtol=0)


def test_puzzles_ignore_brightness_contrast_and_colour_cast():
    """Per channel, an affine change of the whole image (a*x + b) leaves every tile unchanged."""
    x = random_float_images(B=3)
    permutations = hamming_permutations(3)
    scale = torch.tensor([0.5, 1.5, 0.8]).view(1, 3, 1, 1)
    shift = torch.tensor([0.2, -0.1, 0.05]).view(1, 3, 1, 1)
    a = shuffled_tiles(x, permutations, generator=torch.Generator().manual_seed(0))
    b = shuffled_tiles(scale * x + shift, permutations, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-4)


def test_flat_tiles_stay_finite():
    tiles = normalize_tiles(torch.full((2, 9, 3, 8, 8), 0.5))
    assert torch.isfinite(tiles).all()
    torch.testing.assert_close(tiles, torch.tensor(CIFAR10_MEAN).view(3, 1, 1).expand_as(tiles))
    assert len(CIFAR10_STD) == 3


def test_assemble_puts_tiles_back_in_raster_order():
    tiles = torch.arange(9, dtype=torch.uint8).view(1, 9, 1, 1, 1).expand(1, 9, 3, 2, 2)
    picture = assemble(tiles, gap=1)  # (1, 3, 8, 8)
    assert picture.shape == (1, 3, 8, 8)
    assert picture[0, 0, ::3, ::3].tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert picture[0, 0, 2, 0] == 255 and picture[0, 0, 0, 2] == 255  # white gaps


# ----------------------------------------------------------------------------- loss and model


def tiny_model(count):
    torch.manual_seed(0)
    return PatchNet(small_convnet((4, 8)), 9, count)


def test_jigsaw_loss_trains_every_parameter():
    permutations = hamming_permutations(10)
    model = tiny_model(10)
    x = (255 * random_float_images(B=6)).to(torch.uint8)
    loss, metrics = jigsaw_loss(model, x, permutations, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and 0 <= metrics["accuracy"] <= 1
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_jigsaw_loss_of_an_uninformed_model_is_log_n():
    class Constant(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.n, self.w = n, nn.Parameter(torch.zeros(()))

        def forward(self, puzzles):  # (B, 9, 3, T, T) -> equal logits
            return self.w * puzzles.sum(dim=(1, 2, 3, 4)).view(-1, 1).expand(-1, self.n)

    for n in (10, 100):
        loss, _ = jigsaw_loss(Constant(n), (255 * random_float_images(B=8)).to(torch.uint8), hamming_permutations(n))
        assert loss.item() == pytest.approx(math.log(n), rel=1e-6)


def test_jigsaw_probabilities_rows_sum_to_one():
    model = tiny_model(10).eval()
    puzzles = shuffled_tiles(random_float_images(B=5), hamming_permutations(5))
    probabilities = jigsaw_probabilities(model, puzzles, batch_size=2)
    assert probabilities.shape == (5, 10)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(5))
    with torch.no_grad():
        torch.testing.assert_close(probabilities, model(puzzles).softmax(1))


@pytest.mark.parametrize("method", ["jigsaw", "jigsaw-10", "jigsaw-1000"])
def test_pretrain_jigsaw_smoke(method):
    tiny = dataclasses.replace(CLASS, steps=2, batch_size=16, warmup_steps=1)
    x = (255 * random_float_images(B=16)).to(torch.uint8)
    checkpoint = pretrain(method, x, torch.arange(16) % 10, tiny)
    count = {"jigsaw": 100, "jigsaw-10": 10, "jigsaw-1000": 1000}[method]
    assert checkpoint["permutations"].shape == (count, 9)
    assert torch.equal(checkpoint["permutations"], hamming_permutations(count))
    assert len(checkpoint["history"]["loss"]) == 2 and all(map(math.isfinite, checkpoint["history"]["loss"]))
    assert checkpoint["history"]["images_seen"] == 2 * tiny.images_per_step(VIEWS)  # as many images per step as rotation
    model = PatchNet(encoder_from_checkpoint(checkpoint), 9, count)
    model.head.load_state_dict(checkpoint["head"])  # the head is stored whole


# ----------------------------------------------------------------------------- widget and exercise


@pytest.fixture
def puzzle_widget():
    pytest.importorskip("ipywidgets")
    from sslteach.widgets import JigsawPuzzle

    model = tiny_model(10).eval()
    x = (255 * random_float_images(B=3)).to(torch.uint8)
    return JigsawPuzzle(model, x, hamming_permutations(10), ["a", "b"], torch.tensor([0, 1, 0])), model, x


def test_puzzle_shows_the_networks_probabilities(puzzle_widget):
    w, model, x = puzzle_widget
    for index in range(3):
        w.puzzle.value = index
        g = torch.Generator().manual_seed(index)  # the widget deals puzzle i from seed + i
        label = int(torch.randint(10, (1,), generator=g))
        assert w.label == label and torch.equal(w.permutation, hamming_permutations(10)[label])
        puzzle = shuffled_tiles(x[index:index + 1].float() / 255, w.permutation.view(1, 9), generator=g)
        torch.testing.assert_close(w.probabilities, jigsaw_probabilities(model, puzzle)[0], atol=1e-5, rtol=1e-4)


def test_puzzle_arrangement_and_verdict(puzzle_widget):
    w, _, _ = puzzle_widget
    w.puzzle.value = 1
    assert [c.value for c in w.choices] == list(range(1, 10))  # dealt as shown
    before = w.yours.value
    solution = w.permutation.argsort()  # cell c holds the tile shown at position solution[c]
    for cell, choice in enumerate(w.choices):
        choice.value = int(solution[cell]) + 1
    assert w.yours.value != before or torch.equal(solution, torch.arange(9))
    assert w.verdict.value.startswith("9 of 9 tiles")
    w.check.click()
    assert "b: you solved it" in w.verdict.value and f"({w.label})" in w.verdict.value
    assert f"{w.probabilities.max():.2f}" in w.verdict.value
    w.choices[0].value, w.choices[1].value = w.choices[1].value, w.choices[0].value
    assert "did not solve it" in w.verdict.value  # once revealed, the verdict follows the choices
    w.puzzle.value = 2
    assert w.verdict.value.endswith("compare with the network.")  # a new puzzle hides the answer


def test_pairwise_hamming_check_explains_mistakes(capsys):
    from sslteach.checks import ExerciseError, check_pairwise_hamming

    check_pairwise_hamming(hamming_distances)
    assert "correct" in capsys.readouterr().out

    def scaffold(permutations):
        raise NotImplementedError

    def matches(permutations):
        return (permutations[:, None] == permutations[None]).sum(-1)

    def per_row(permutations):
        return (permutations != permutations[0]).sum(-1)

    def fraction(permutations):  # what scipy's cdist(..., "hamming") returns
        return (permutations[:, None] != permutations[None]).float().mean(-1)

    def off_by_one(permutations):
        return (permutations[:, None] != permutations[None]).sum(-1) + 1

    for fn, hint in [(scaffold, "NotImplementedError"), (matches, "agree"), (per_row, "shape"),
                     (fraction, "fraction"), (off_by_one, "wrong distances")]:
        with pytest.raises(ExerciseError, match=hint):
            check_pairwise_hamming(fn)
