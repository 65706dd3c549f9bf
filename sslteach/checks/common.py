"""What every lecture's checks share: the error they raise and the guards around the student's code.

``call_exercise`` runs the student's function, so that the scaffold's ``NotImplementedError`` or a
crash becomes a message for the student rather than a traceback; ``as_scalar`` reads a result that
should be one number.
"""
from __future__ import annotations

import torch


class ExerciseError(AssertionError):
    """Raised by a check; its message is meant for the student."""


def call_exercise(name: str, function, *args):
    """Run the student's function; turn the scaffold's NotImplementedError and crashes into advice."""
    try:
        return function(*args)
    except NotImplementedError:
        raise ExerciseError(f"{name} still raises NotImplementedError: replace the scaffold with your code.") from None
    except Exception as error:
        shapes = ", ".join(str(tuple(a.shape)) if torch.is_tensor(a) else repr(a) for a in args)
        raise ExerciseError(f"{name} raised {type(error).__name__}: {error}\nIt was called with {shapes}.") from None


def as_scalar(name: str, value) -> float:
    """The student's result as a float, or advice if it is not one number."""
    if torch.is_tensor(value) and value.numel() == 1:
        return value.item()
    if isinstance(value, (int, float)):
        return float(value)
    shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
    raise ExerciseError(f"{name} returned {shape}; it should return one number (a scalar tensor): the mean over "
                        "all pairs, not one value per pair.")
