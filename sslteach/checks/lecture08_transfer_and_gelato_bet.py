"""Lecture 08, transfer and the gelato bet: the checks of the balanced label subset and of the share of the gap closed."""
from __future__ import annotations

import torch

from .common import ExerciseError, as_scalar, call_exercise


def check_balanced_subset(balanced_subset) -> None:
    """Check ``balanced_subset(labels, per_class, num_classes, generator) -> indices``: per_class
    images of every class (all of a smaller class), at random, without repeats."""
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 3)[torch.randperm(83, generator=torch.Generator().manual_seed(0))]
    chosen = call_exercise("balanced_subset", balanced_subset, labels, 5, 3, torch.Generator().manual_seed(0))
    if not torch.is_tensor(chosen) or chosen.ndim != 1 or chosen.dtype not in (torch.int64, torch.int32):
        what = f"{chosen.dtype} {tuple(chosen.shape)}" if torch.is_tensor(chosen) else type(chosen).__name__
        raise ExerciseError(f"the result is {what}; it should be a 1-D tensor of integer indices into labels.")
    if chosen.numel() and (chosen.min() < 0 or chosen.max() >= len(labels)):
        raise ExerciseError("some indices are outside range(len(labels)); return positions of images, not labels.")
    if len(chosen) > 3 and chosen.max() < 3:
        raise ExerciseError("every value is 0, 1 or 2: those look like class labels. Return the positions of the "
                            "chosen images in labels (indices), so that labels[result] gives their classes.")
    if len(chosen.unique()) != len(chosen):
        raise ExerciseError("an image was chosen twice: draw without replacement (a random permutation of a class's "
                            "positions, then its first per_class), not with torch.randint.")
    counts = torch.bincount(labels[chosen.long()], minlength=3).tolist()
    if counts != [5, 5, 3]:
        hint = (" Class 2 has only 3 images: give all of them instead of failing or repeating."
                if counts[:2] == [5, 5] else "")
        raise ExerciseError(f"images per class: {counts}, expected [5, 5, 3] for per_class = 5 and classes of 50, 30 "
                            f"and 3 images.{hint}")
    hits = torch.zeros(len(labels))
    for seed in range(200):
        hits[call_exercise("balanced_subset", balanced_subset, labels, 1, 3, torch.Generator().manual_seed(seed)).long()] += 1
    class0 = hits[labels == 0]
    if (class0 == 0).sum() > 25:
        raise ExerciseError(f"over 200 seeds only {(class0 > 0).sum():.0f} of class 0's 50 images were ever chosen: the "
                            "draw is not random (or ignores the generator). Use torch.randperm(n, generator=generator).")
    again = call_exercise("balanced_subset", balanced_subset, labels, 5, 3, torch.Generator().manual_seed(0))
    if not torch.equal(torch.as_tensor(again).sort().values, chosen.sort().values):
        raise ExerciseError("the same generator seed gave two different subsets: draw every random number from "
                            "`generator`, so a rerun of the lecture draws the same images.")
    print("balanced_subset: correct. Every class gets its share, at random, without repeats.")


def check_gap_closed(gap_closed) -> None:
    """Check ``gap_closed(method, random_init, supervised)``: 0 at random init, 1 at supervised."""
    cases = [((0.55, 0.5, 0.7), 0.25), ((0.5, 0.5, 0.7), 0.0), ((0.7, 0.5, 0.7), 1.0), ((0.4, 0.5, 0.7), -0.5)]
    for args, want in cases:
        got = as_scalar("gap_closed", call_exercise("gap_closed", gap_closed, *args))
        if abs(got - want) > 1e-6:
            if abs(got - args[0] / args[2]) < 1e-6:
                hint = " That is method / supervised: measure from the random-init encoder, not from zero."
            elif abs(got - (1 - want)) < 1e-6:
                hint = " That is the gap still open: 1 minus the share closed."
            else:
                hint = " Divide how far the method is above random init by how far supervised is."
            raise ExerciseError(f"gap_closed{args} gave {got:.3f}, expected {want:.3f}.{hint}")
    print("gap_closed: correct. 0 means no better than random weights, 1 means as good as labels.")
