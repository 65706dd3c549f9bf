"""Lecture 02, context prediction: the checks of the neighbour offsets and of the green-magenta projection."""
from __future__ import annotations

import torch

from ..context import NEIGHBOUR_CELLS, NEIGHBOUR_NAMES, project_out_green_magenta
from .common import ExerciseError, call_exercise


def check_neighbour_offsets(neighbour_offsets) -> None:
    """Check ``neighbour_offsets(labels) -> (B, 2)``: (row, column) steps from the centre cell."""
    labels = torch.tensor([7, 0, 3, 4, 1, 6, 2, 5])
    offsets = call_exercise("neighbour_offsets", neighbour_offsets, labels)
    cells = torch.tensor(NEIGHBOUR_CELLS)[labels]
    expected = torch.stack([cells // 3 - 1, cells % 3 - 1], dim=1)  # (8, 2)
    if not torch.is_tensor(offsets) or tuple(offsets.shape) != (8, 2):
        shape = tuple(offsets.shape) if torch.is_tensor(offsets) else type(offsets).__name__
        raise ExerciseError(f"the result has shape {shape}; for 8 labels it should be (8, 2): a (row, column) "
                            "offset per label. torch.stack([rows, columns], dim=1) builds it.")
    offsets = offsets.long()
    for got, want, label in zip(offsets.tolist(), expected.tolist(), labels.tolist()):
        if got == want:
            continue
        if got == want[::-1]:
            raise ExerciseError(f"label {label} ({NEIGHBOUR_NAMES[label]}) gave {tuple(got)}: rows and columns are "
                                "swapped. The first number is the row offset (-1 is up), the second the column (-1 is left).")
        raise ExerciseError(f"label {label} ({NEIGHBOUR_NAMES[label]}) gave {tuple(got)}, expected {tuple(want)}. Labels "
                            "number the 8 neighbours in raster order with the centre skipped, so labels 4-7 are cells 5-8: "
                            "cell = label + (label >= 4), then row, column = cell // 3, cell % 3, minus 1 each.")
    print("neighbour_offsets: correct. Every label points the right way from the centre.")


def check_project_out_green_magenta(remove_green_magenta) -> None:
    """Check ``remove_green_magenta(images) -> images``: x - (x . v) v with v = (-1, 2, -1) / sqrt(6)."""
    images = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    out = call_exercise("remove_green_magenta", remove_green_magenta, images)
    expected = project_out_green_magenta(images)
    if not torch.is_tensor(out) or tuple(out.shape) != tuple(images.shape):
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ExerciseError(f"the result has shape {shape}; it should keep the images' shape (2, 3, 4, 5). The colour "
                            "axis is dimension 1: the dot product with v sums over it, keep it with keepdim=True.")
    if torch.allclose(out, images):
        raise ExerciseError("the images came back unchanged: subtract each pixel's component along v.")
    grey = images[:, :1].expand(-1, 3, -1, -1)
    v = torch.tensor([-1.0, 2.0, -1.0]) / 6 ** 0.5
    if not torch.allclose(call_exercise("remove_green_magenta", remove_green_magenta, grey), grey, atol=1e-5):
        raise ExerciseError("grey pixels (r = g = b) changed. They have no green-magenta component: is v = (-1, 2, -1) "
                            "(normalised), and do you subtract (x . v) v rather than, say, the green channel?")
    if not torch.allclose(out, expected, atol=1e-5):
        along = torch.einsum("bchw,c->bhw", out, v).abs().max()
        hint = ("some green-magenta component is left (largest |x . v| = %.3f): divide v by its length sqrt(6) "
                "before using it twice, in the dot product and in the subtraction." % along)
        raise ExerciseError(f"not the projection. {hint}")
    print("remove_green_magenta: correct. Greys are untouched, and no pixel keeps a green-magenta component.")
