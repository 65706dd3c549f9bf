"""What the command lines share: an expected failure ends in one line, not a traceback.

``python -m sslteach.train``, ``evaluate`` and ``transfer`` and ``data_scripts/get_cifar10.py``
each run their work through :func:`run`. A failure the user can fix (data not prepared, a bad
checkpoint, an unknown profile, no GPU, an output that cannot be written) prints
``error: <what and what to do>`` on stderr and exits with status 1. Anything else is a bug,
and its traceback is kept.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .checkpoint import CheckpointError
from .data.store import DataError
from .device import DeviceError
from .profiles import ProfileError


class UsageError(ValueError):
    """A request the command cannot carry out, such as an output path that cannot be written."""


#: Failures that are the user's to fix. OSError covers missing files, permissions, a full disk
#: and DatasetMissingError (a FileNotFoundError).
EXPECTED_ERRORS = (OSError, DataError, CheckpointError, DeviceError, ProfileError, UsageError)


def run(work: Callable[[], object]) -> int:
    """Call ``work()``; return 0, or 1 after printing an expected failure as one line."""
    try:
        work()
    except EXPECTED_ERRORS as error:
        message = " ".join(str(error).split())  # one line, even from a multi-line message
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (``--steps 0`` would train nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
