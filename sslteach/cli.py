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


def method_parser(prog: str, description: str, methods_help: str, nargs: str = "*") -> argparse.ArgumentParser:
    """The parser the table commands share (``transfer``, ``headline``, ``ladder``): method names,
    then ``--profile`` and ``--device``; check the names with :func:`check_methods`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("methods", nargs=nargs, help=methods_help)
    parser.add_argument("--profile", default=None, help="class (default, CPU) or full (GPU)")
    parser.add_argument("--device", default=None)
    return parser


def check_methods(parser: argparse.ArgumentParser, names, known, also: str = "") -> None:
    """Stop with a usage error naming every unknown method and the known ones (``also``: any
    other accepted word, such as "all")."""
    unknown = [name for name in names if name not in known]
    if unknown:
        choices = ", ".join(map(repr, known)) + (f" or {also!r}" if also else "")
        parser.error(f"unknown method(s) {', '.join(map(repr, unknown))}; choose from {choices}")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (``--steps 0`` would train nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
