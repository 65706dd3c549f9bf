"""Lecture 03, jigsaw puzzles: the check of the pairwise Hamming distances between permutations."""
from __future__ import annotations

import time

import torch

from ..jigsaw import hamming_distances
from .common import ExerciseError, call_exercise


def check_pairwise_hamming(pairwise_hamming) -> None:
    """Check ``pairwise_hamming(permutations) -> (N, N)``: positions at which each pair differs."""
    generator = torch.Generator().manual_seed(1)
    small = torch.rand(6, 9, generator=generator).argsort(dim=1)  # (6, 9) random permutations
    small[5] = small[0].roll(1)  # a pair that differs everywhere and ...
    small[4, [0, 1]] = small[4, [1, 0]]  # ... rows with swapped tiles
    D = call_exercise("pairwise_hamming", pairwise_hamming, small)
    expected = hamming_distances(small)
    if not torch.is_tensor(D) or tuple(D.shape) != (6, 6):
        shape = tuple(D.shape) if torch.is_tensor(D) else type(D).__name__
        raise ExerciseError(f"the result has shape {shape}; for 6 permutations it should be (6, 6): one distance per pair. "
                            "Compare permutations[:, None, :] with permutations[None, :, :] (broadcasting to (N, N, 9)).")
    if torch.equal(D.long(), 9 - expected):
        raise ExerciseError("you counted the positions where two permutations agree; the Hamming distance counts "
                            "where they differ (use != instead of ==).")
    if D.is_floating_point() and torch.allclose(D * 9, expected.float()):
        raise ExerciseError("you computed the fraction of positions that differ (as scipy's cdist 'hamming' does); "
                            "the paper's distances count them: sum instead of mean.")
    if not torch.equal(D.long(), expected):
        raise ExerciseError(f"wrong distances: got\n{D.long()}\nexpected\n{expected}\nThe diagonal should be 0 and "
                            "each entry between 0 and 9: the number of positions j where the two permutations differ.")
    start = time.perf_counter()
    call_exercise("pairwise_hamming", pairwise_hamming, torch.rand(1000, 9, generator=generator).argsort(dim=1))
    if time.perf_counter() - start > 5:
        raise ExerciseError("correct, but slow on 1000 permutations: avoid Python loops; one broadcast comparison "
                            "and a sum over the last dimension compute all pairs at once.")
    print("pairwise_hamming: correct. All pairs at once, in a fraction of a second.")
