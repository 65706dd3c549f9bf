"""Jigsaw puzzles (Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving
Jigsaw Puzzles", ECCV 2016).

The pretext task: cut an image into a 3x3 grid of tiles, shuffle them by one permutation from a
fixed set, and ask the network which permutation it was. To put a puzzle back together the
network has to know what parts of objects look like and how they fit: the head goes above the
body, the wheels below the car.

Shortcuts are closed as in the paper: each tile is a random crop inside its grid cell, so tiles
do not touch and edges cannot be continued across a border (the gap); each tile is normalised
by its own mean and standard deviation per channel, so brightness and colour cast do not say
which tiles belong together; and some images are turned grey. The permutation set is chosen for
large Hamming distances between its members, so that no two classes differ by a single swap.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import torch
import torch.nn.functional as F

from .augment import random_grayscale, to_float
from .checkpoint import encoder_from_checkpoint
from .context import PatchNet, crop_patches, grid_corners
from .encoders import CIFAR10_MEAN, CIFAR10_STD
from .loop import fit

GREYSCALE_P = 0.3  # the fraction of puzzles made from a greyscale image (our choice for "some")
# A step draws as many distinct images as rotation's (which sends each through the encoder 4
# times): profile.images_per_step(VIEWS) images, each cut into 9 tiles.
VIEWS = 4


@functools.lru_cache(maxsize=1)
def all_permutations() -> torch.Tensor:
    """All 9! = 362,880 orderings of 9 tiles, in lexicographic order: (9!, 9) uint8."""
    return torch.tensor(list(itertools.permutations(range(9))), dtype=torch.uint8)


def hamming_permutations(count: int, seed: int = 0) -> torch.Tensor:
    """A set of permutations chosen by greedy maximal Hamming distance (Noroozi & Favaro, Alg. 1).

    Start from a random permutation; then repeatedly add the permutation, among all 9! not yet
    chosen, whose mean Hamming distance to those already chosen is largest. The Hamming
    distance counts the positions where two permutations differ, so it is 9 minus their
    matches, and "largest mean distance" is "fewest matches in total". Ties are broken by the
    larger minimum distance to the chosen set, then by lexicographic order. (Without that
    tie-break, the released code's rule, 9 mutually all-different permutations leave all 9!
    candidates tied for the 10th place, and the lexicographically first sits at distance 2
    from one of them; it changes nothing for large sets: 1000 permutations have average 8.0
    and minimum 2 either way.)

    Each step adds the new permutation's matches to every candidate through a table of which
    permutations hold value v at position k. The loop runs in NumPy: its element-wise steps on
    9! entries are too small to gain from threads, and on a busy machine threads make them slower.

    Returns (count, 9) int64: row n is permutation n, the class the network predicts.
    """
    candidates = all_permutations().numpy()
    n = len(candidates)
    # by_value[k, v]: indices of the 8! permutations that put value v at position k.
    by_value = np.argsort(candidates.T, axis=1, kind="stable").reshape(9, 9, n // 9)  # (9, 9, 8!)
    total = np.zeros(n, np.int32)  # matches summed over the chosen permutations
    closest = np.zeros(n, np.int32)  # most matches with any one chosen (9 - minimum distance)
    new, score = np.zeros(n, np.int32), np.zeros(n, np.int32)
    index = int(torch.randint(n, (1,), generator=torch.Generator().manual_seed(seed)))
    picked = []
    for _ in range(count):
        picked.append(index)
        new[:] = 0
        for k, v in enumerate(candidates[index]):
            new[by_value[k, v]] += 1  # every permutation with value v at position k matches here
        total += new
        np.maximum(closest, new, out=closest)
        closest[index] = 1 << 20  # never pick a permutation twice
        np.multiply(total, 16, out=score)  # closest <= 9 < 16 only breaks ties of total
        score += closest
        index = int(score.argmin())  # the first of equal scores: lexicographic order
    return torch.from_numpy(candidates[picked]).long()


def hamming_distances(permutations: torch.Tensor) -> torch.Tensor:
    """(N, 9) permutations -> (N, N) int64: positions at which each pair differs."""
    return (permutations.unsqueeze(1) != permutations.unsqueeze(0)).sum(dim=-1)


def permutation_statistics(permutations: torch.Tensor) -> dict:
    """Average and minimum Hamming distance over all pairs of distinct members, as the paper's
    Table 2 reports them: {"count", "average", "minimum"}."""
    distances = hamming_distances(permutations)
    pairs = distances[~torch.eye(len(permutations), dtype=torch.bool, device=distances.device)]
    return {"count": len(permutations), "average": pairs.float().mean().item(), "minimum": int(pairs.min())}


def tile_layout(image_size: int) -> tuple[int, int, int]:
    """(tile_size, gap, jitter) for square images of ``image_size``.

    The grid's cells are ``image_size // 3`` pixels; a tile takes 4/5 of its cell (the paper:
    64 px tiles in 75 px cells) and may sit anywhere in it. CIFAR-10: cells of 10, tiles of 8,
    gap 2 +- 2 (jitter 1 per tile), so neighbouring tiles are 0 to 4 pixels apart.
    """
    cell = image_size // 3
    tile = (4 * cell) // 5
    return tile, cell - tile, (cell - tile) // 2


def cut_tiles(images: torch.Tensor, generator=None) -> torch.Tensor:
    """The 9 tiles of each image, in raster order, as they are (no normalisation, no shuffling).

    images : (B, C, H, W), H == W -> (B, 9, C, T, T); ``[:, 3 * i + j]`` is grid row i, column j.
    """
    B, _, H, _ = images.shape
    tile, gap, jitter = tile_layout(H)
    corners = grid_corners(B, H, tile, gap, jitter, generator, images.device)  # (B, 9, 2)
    return crop_patches(images, corners[..., 0], corners[..., 1], tile)


def normalize_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """Per-tile normalisation: each tile's channels get zero mean and unit standard deviation,
    then the CIFAR-10 statistics, so that the encoder's own normalisation maps each tile channel
    to exactly mean 0, std 1. (..., 3, T, T) floats -> the same shape.

    (The released PyTorch code normalises over all channels at once; per channel also hides a
    tile's colour cast. Measured on the class profile, linear probe at stages 1-4: per channel
    51.1 / 46.7 / 41.8 / 33.8%, over all channels 48.0 / 46.2 / 40.9 / 33.5%; per channel also
    made the puzzles harder, 57% solved at the end of training against 78%.)
    """
    mean = tiles.mean(dim=(-2, -1), keepdim=True)
    std = tiles.std(dim=(-2, -1), keepdim=True) + 1e-5  # a flat tile stays flat
    dataset_mean = torch.tensor(CIFAR10_MEAN, device=tiles.device).view(3, 1, 1)
    dataset_std = torch.tensor(CIFAR10_STD, device=tiles.device).view(3, 1, 1)
    return (tiles - mean) / std * dataset_std + dataset_mean


def shuffled_tiles(images: torch.Tensor, permutations: torch.Tensor, generator=None) -> torch.Tensor:
    """The jigsaw puzzles: cut, normalise and shuffle the tiles of each image.

    Parameters
    ----------
    images : (B, C, H, W) float tensor, H == W
    permutations : (B, 9) int64 tensor
        One permutation of 0..8 per image.

    Returns
    -------
    (B, 9, C, T, T) tensor
        ``tiles[b, j]`` is the tile cut from grid cell ``permutations[b, j]`` of image b (cells in
        raster order: cell 3 * i + j is row i, column j), a random T x T crop inside that cell,
        normalised by ``normalize_tiles``. So position j of the puzzle holds cell
        ``permutations[b, j]``, and ``tiles[b, permutations[b].argsort()]`` is the solved puzzle.
    """
    tiles = normalize_tiles(cut_tiles(images, generator))  # (B, 9, C, T, T)
    return tiles.gather(1, permutations.view(*permutations.shape, 1, 1, 1).expand_as(tiles))


def jigsaw_loss(model, images: torch.Tensor, permutation_set: torch.Tensor, generator=None):
    """Cross-entropy of which permutation of the set shuffled each puzzle (Noroozi & Favaro, Sec. 3).

    model : maps (B, 9, 3, T, T) puzzles to (B, N) logits. images : (B, 3, H, W) uint8.
    permutation_set : (N, 9) int64. Returns (loss, {"accuracy": fraction of puzzles solved}).
    """
    x = random_grayscale(to_float(images), GREYSCALE_P, generator=generator)
    labels = torch.randint(0, len(permutation_set), (len(x),), device=x.device, generator=generator)
    logits = model(shuffled_tiles(x, permutation_set[labels], generator))  # (B, N)
    loss = F.cross_entropy(logits, labels)
    return loss, {"accuracy": (logits.argmax(1) == labels).float().mean().item()}


def pretrain_jigsaw(encoder, images, labels, profile, num_classes: int, seed: int, count: int = 100, input_size: int | None = None):
    """Jigsaw on the profile's budget, with a set of ``count`` permutations.

    Each step makes puzzles of ``profile.batch_size / VIEWS`` images, as many distinct images as
    rotation's step (which sends each of them through the encoder four times, whole): here
    each image sends 9 tiles of 8x8, about a quarter of rotation's computation per step.
    The encoder sees the tiles as cut unless ``input_size`` is given. Measured on the class
    profile with 100 permutations (linear probe, stages 1-4): tiles as cut 51.1 / 46.7 / 41.8 /
    33.8%; upsampled to 16x16 44.9 / 45.2 / 42.3 / 37.8% at 2.3 times the cost; the random
    encoder 46.1 / 51.1 / 48.4 / 44.4%. On the headline readout (pooled final features, the
    class sweep in benchmarks/sweeps/, validation split, seeds 0-2): as cut 34.1 +- 1.4; at 16x16
    38.1 +- 0.5 (+3.9 against a noise bar of 2.9: above, but with 4x the pixels through the
    encoder it is more compute, so not the class recipe); at 32x32 (one seed) 30.3.
    Returns (head weights, history, {"permutations": (N, 9), "input_size": 0 or the tiles' size}).
    """
    permutation_set = hamming_permutations(count, seed).to(images.device)
    model = PatchNet(encoder, 9, count, input_size).to(images.device)
    loss_fn = lambda m, x, y, g: jigsaw_loss(m, x, permutation_set, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(VIEWS),
                  seed=seed, desc=f"jigsaw ({count})")
    return model.head.state_dict(), history, {"permutations": permutation_set.cpu(), "input_size": input_size or 0}


def jigsaw_model_from_checkpoint(checkpoint: dict, device=None) -> PatchNet:
    """The trained jigsaw network (encoder and head over the checkpoint's permutation set,
    ``checkpoint["permutations"]``) of a ``jigsaw*`` checkpoint, in eval mode."""
    permutations = checkpoint["permutations"]
    model = PatchNet(encoder_from_checkpoint(checkpoint), 9, len(permutations), checkpoint["input_size"] or None)
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()


@torch.no_grad()
def jigsaw_probabilities(model, puzzles: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(B, 9, 3, T, T) puzzles -> (B, N) probabilities of each permutation of the set.
    ``model`` should be in eval mode."""
    return torch.cat([model(chunk).softmax(dim=1) for chunk in puzzles.split(batch_size)])


def assemble(tiles: torch.Tensor, gap: int = 1) -> torch.Tensor:
    """Lay 9 tiles out as a 3x3 picture, raster order, with ``gap`` white pixels between them.

    tiles : (B, 9, C, T, T) -> (B, C, 3T + 2 gap, 3T + 2 gap).
    """
    B, _, C, T, _ = tiles.shape
    side = 3 * T + 2 * gap
    out = torch.ones(B, C, side, side, dtype=tiles.dtype, device=tiles.device)
    if tiles.dtype == torch.uint8:
        out *= 255
    for cell in range(9):
        i, j = divmod(cell, 3)
        out[:, :, i * (T + gap):i * (T + gap) + T, j * (T + gap):j * (T + gap) + T] = tiles[:, cell]
    return out
