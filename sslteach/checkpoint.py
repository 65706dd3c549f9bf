"""Checkpoints that are written atomically and read back safely.

A checkpoint is a plain dict of tensors, numbers and strings, so it loads with
``torch.load(..., weights_only=True)``: no pickled code runs when a student opens a file
someone sent them; a file that holds pickled code is refused, with no advice to load it anyway.
It is written to a temporary file first and renamed into place (``sslteach.data.store.atomic_write``),
so an interrupted save never leaves a half-written checkpoint where the lecture would pick it up.

Every save also records the file's SHA-256 in ``SHA256SUMS`` beside it (the format of
``sha256sum``, so ``sha256sum -c SHA256SUMS`` checks a folder by hand), and every load of a
listed file verifies it: a checkpoint damaged in a copy or a download is named, not loaded.
Processes that save into one folder at once take turns on ``SHA256SUMS``, so no entry is lost.

Where a run's checkpoint lives (:func:`checkpoint_path`) and which file a lecture loads
(:func:`find_checkpoint`): ``data/checkpoints/<profile>/`` (made by ``python -m sslteach.train``
or by an earlier lecture run), then the class-profile checkpoints that ship with the course in
``checkpoints/class/`` (see checkpoints/README.md). A file counts only if it is the same run:
the same method, profile settings and seed (:func:`is_same_run`). The data it was trained on
does not decide that: ``checkpoint["data"]`` says what it was (``sslteach.data.fingerprint``), so
that a lecture can say so and warn when the weights may have seen its test images.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import torch

from .data.fingerprint import SHIPPED_DATA
from .data.store import atomic_write, data_dir
from .encoders import Encoder, build_encoder
from .profiles import TRAINING_SETTINGS, Profile

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent saves into one folder are not safe there
    fcntl = None

FORMAT_VERSION = 1
CHECKSUMS = "SHA256SUMS"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted: damaged, or of an unknown format."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A file that holds pickled code (objects other than tensors and plain data): refused."""


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """File name -> SHA-256 from ``folder/SHA256SUMS`` (empty when there is none)."""
    path = Path(folder) / CHECKSUMS
    if not path.exists():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` itself: one process at a time edits its SHA256SUMS.

    Locking the folder, not a lock file, leaves nothing behind in a checkpoint folder, and
    unlike a lock on SHA256SUMS it survives that file being replaced under the lock.
    """
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed, even if the process dies
        yield
    finally:
        os.close(fd)


def record_checksum(path: str | os.PathLike) -> str:
    """Add or replace ``path``'s entry in the ``SHA256SUMS`` beside it (locked, written atomically).

    Read, edit and write happen under one lock, so two processes saving into one folder at
    once cannot overwrite each other's entries.
    """
    path = Path(path)
    digest = sha256_file(path)  # outside the lock: hashing 100 MB takes a while
    with _folder_lock(path.parent):
        sums = read_checksums(path.parent)
        sums[path.name] = digest
        text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
        with atomic_write(path.parent / CHECKSUMS) as f:
            f.write(text.encode())
    return digest


def verify_checksum(path: str | os.PathLike, required: bool = False) -> bool:
    """Check ``path`` against the ``SHA256SUMS`` beside it.

    Returns True when it is listed and matches, False when it is not listed (allowed unless
    ``required``); raises :class:`CheckpointError` when it is listed and does not match.
    """
    path = Path(path)
    expected = read_checksums(path.parent).get(path.name)
    if expected is None:
        if required:
            raise CheckpointError(f"{path} is not listed in {path.parent / CHECKSUMS}; it cannot be verified")
        return False
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(
            f"{path} is damaged: its SHA-256 is {actual[:12]}..., {CHECKSUMS} says {expected[:12]}.... "
            "Delete it (it will be trained again) or copy it again from its source."
        )
    return True


def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temporary file, fsync, rename) and record its checksum."""
    path = Path(path)
    with atomic_write(path) as f:
        torch.save({"format": FORMAT_VERSION, **checkpoint}, f)
    record_checksum(path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu", checksum_required: bool = False) -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (tensors and plain data only).

    A file listed in the ``SHA256SUMS`` beside it is verified first; with ``checksum_required``
    an unlisted file is refused too.
    """
    verify_checksum(path, required=checksum_required)
    try:
        checkpoint = torch.load(Path(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, which would run the code: not passed on.
        raise UnsafeCheckpointError(
            f"{path} holds code (pickled objects other than tensors and plain data) and was refused. "
            "Get a good copy: `git checkout checkpoints/` restores a shipped checkpoint, "
            "or train it again with `python -m sslteach.train <method>`."
        ) from None
    except (RuntimeError, OSError, EOFError, KeyError) as error:  # truncated or not a torch file: say which
        raise CheckpointError(f"{path} is not a readable checkpoint ({error.__class__.__name__}: {error})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT_VERSION:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path}: checkpoint format {found!r}, expected {FORMAT_VERSION}")
    return checkpoint


# --- which checkpoint a run uses -------------------------------------------------------------

# The class-profile checkpoints that ship with the course (a source checkout; see
# checkpoints/README.md). SSLTEACH_CHECKPOINTS points elsewhere; SSLTEACH_RETRAIN=1 ignores them.
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def shipped_checkpoints() -> Path:
    """The folder of checkpoints that came with the course (may not exist)."""
    return Path(os.environ.get("SSLTEACH_CHECKPOINTS", SHIPPED_CHECKPOINTS))


def checkpoint_folder(profile: Profile | str) -> Path:
    """``data/checkpoints/<profile>/``: the checkpoints of a profile (or of the profile of that
    name) and the course table made from them."""
    return data_dir() / "checkpoints" / (profile if isinstance(profile, str) else profile.name)


def checkpoint_path(method: str, profile: Profile, seed: int = 0) -> Path:
    """Where ``python -m sslteach.train`` and the lectures keep ``method``'s checkpoint:
    ``data/checkpoints/<profile>/<method>.pt`` (``<method>-seed<seed>.pt`` for seeds other than 0)."""
    name = method if seed == 0 else f"{method}-seed{seed}"
    return checkpoint_folder(profile) / f"{name}.pt"


def is_same_run(checkpoint: dict, method: str, profile: Profile, seed: int, recipe: dict,
                unrecorded: dict | None = None) -> bool:
    """Whether ``checkpoint`` is ``method`` trained with ``profile``'s training settings and
    ``seed`` (settings that only change a readout, such as kNN's k, do not count), with
    ``recipe``, the method's settings (``sslteach.methods.method_recipe``): a checkpoint of an
    earlier default or a sweep's change is another run. Checkpoints written before recipes were
    recorded carry none; they count as trained with ``unrecorded`` (default: ``recipe``), which
    ``sslteach.methods.unrecorded_recipe`` knows for the methods whose recipe changed since.

    The training data do not count either: the shipped checkpoints were trained on the course's
    carved split (``sslteach.data.SHIPPED_DATA``) and are meant to be used with any prepared
    CIFAR-10, the official archive's included, rather than trained again for every data set.
    Whether that is fair to a given test split is a separate question, which
    ``sslteach.data.never_saw_test_images`` answers from ``checkpoint["data"]``."""
    stored = checkpoint.get("profile_settings") or {}
    return (
        checkpoint.get("method") == method
        and {name: stored.get(name) for name in TRAINING_SETTINGS} == profile.settings(TRAINING_SETTINGS)
        and checkpoint.get("seed") == seed
        and checkpoint.get("recipe", recipe if unrecorded is None else unrecorded) == recipe
    )


def find_checkpoint(method: str, profile: Profile, seed: int = 0, path=None, *, recipe: dict,
                    unrecorded: dict | None = None) -> dict | None:
    """The checkpoint of this exact run, without training: None if there is none.

    Looks at ``path`` (default :func:`checkpoint_path`) first, then (unless
    ``SSLTEACH_RETRAIN=1``) at the checkpoint of the same name that ships with the course,
    ``checkpoints/<profile>/<name>``, which must match its SHA256SUMS. A checkpoint made with
    other settings (an edited profile, another seed, another ``recipe``; ``unrecorded`` as in
    :func:`is_same_run`) does not count; one trained on other data does. ``checkpoint["source"]`` says which file was used, and
    ``checkpoint["data"]`` the fingerprint of the data it was trained on:
    :data:`~sslteach.data.SHIPPED_DATA` for a shipped file that predates fingerprints, None
    ("unknown") for such a file of your own.
    """
    path = Path(path) if path is not None else checkpoint_path(method, profile, seed)
    candidates = [path]
    if os.environ.get("SSLTEACH_RETRAIN", "") in ("", "0"):
        candidates.append(shipped_checkpoints() / profile.name / path.name)
    for i, candidate in enumerate(candidates):
        if candidate.exists():
            checkpoint = load_checkpoint(candidate, checksum_required=i > 0)
            if is_same_run(checkpoint, method, profile, seed, recipe, unrecorded):
                checkpoint["source"] = str(candidate)
                if "data" not in checkpoint:  # written before checkpoints recorded their data
                    checkpoint["data"] = SHIPPED_DATA if i > 0 else None
                return checkpoint
    return None


def encoder_from_checkpoint(checkpoint: dict, device=None) -> Encoder:
    """Rebuild the encoder stored in a checkpoint, in eval mode."""
    encoder = build_encoder(checkpoint["encoder_name"])
    encoder.load_state_dict(checkpoint["encoder"])
    return encoder.to(device or "cpu", memory_format=torch.channels_last).eval()
