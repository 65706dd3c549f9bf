"""Lecture 04, rotation: the check of ``rotate_all``, the four rotations of a batch and their labels."""
from __future__ import annotations

import torch

from ..rotation import rotate_batch
from .common import ExerciseError


def check_rotate_all(rotate_all) -> None:
    """Check an exercise implementation of ``rotate_all(images) -> (rotated, labels)``."""
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    try:
        result = rotate_all(images)
    except NotImplementedError:
        raise ExerciseError("rotate_all still raises NotImplementedError: replace the scaffold with your code.") from None
    except Exception as error:
        raise ExerciseError(
            f"rotate_all raised {type(error).__name__}: {error}\nIt was called on a (2, 3, 4, 4) uint8 batch. "
            "Rotate the spatial dimensions (H, W) = dims (2, 3); the channel dimension stays where it is."
        ) from None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ExerciseError("rotate_all should return two things: (rotated, labels).")
    rotated, labels = result
    expected, expected_labels = rotate_batch(images)
    if tuple(rotated.shape) != tuple(expected.shape):
        raise ExerciseError(
            f"rotated has shape {tuple(rotated.shape)}; for B = 2 images of 3x4x4 it should be {tuple(expected.shape)}: "
            "all four rotations of every image, stacked along the batch dimension (torch.cat)."
        )
    if labels.dtype != torch.int64 or labels.tolist() != expected_labels.tolist():
        raise ExerciseError(
            f"labels are {labels.tolist()}; expected {expected_labels.tolist()} (int64): the first B rows are the "
            "unrotated images (label 0), then the B images turned once (label 1), and so on."
        )
    for k in range(4):
        B = len(images)
        if not torch.equal(rotated[k * B:(k + 1) * B], expected[k * B:(k + 1) * B]):
            if k and torch.equal(rotated[k * B:(k + 1) * B], torch.rot90(images, -k, dims=(2, 3))):
                raise ExerciseError(f"rows with label {k} are turned clockwise; the course turns anticlockwise, as torch.rot90(x, k, dims=(2, 3)) does.")
            raise ExerciseError(
                f"rows with label {k} are not the images turned {90 * k} degrees. Rotate the spatial dimensions "
                "(H, W) = dims (2, 3), not the channel dimension."
            )
    print("rotate_all: correct. All four rotations, in the course's order, with the right labels.")
