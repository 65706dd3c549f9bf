"""Checkpoints that are written atomically and read back safely.

A checkpoint is a plain dict of tensors, numbers and strings, so it loads with
``torch.load(..., weights_only=True)``: no pickled code runs when a student opens a file
someone sent them. It is written to a temporary file first and renamed into place, so an
interrupted save never leaves a half-written checkpoint where the lecture would pick it up.

Every save also records the file's SHA-256 in ``SHA256SUMS`` beside it (the format of
``sha256sum``, so ``sha256sum -c SHA256SUMS`` checks a folder by hand), and every load of a
listed file verifies it: a checkpoint damaged in a copy or a download is named, not loaded.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

FORMAT_VERSION = 1
CHECKSUMS = "SHA256SUMS"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted: damaged, or of an unknown format."""


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


def record_checksum(path: str | os.PathLike) -> str:
    """Add or replace ``path``'s entry in the ``SHA256SUMS`` beside it (written atomically)."""
    path = Path(path)
    sums = read_checksums(path.parent)
    sums[path.name] = sha256_file(path)
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{CHECKSUMS}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path.parent / CHECKSUMS)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sums[path.name]


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT_VERSION, **checkpoint}, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    except (RuntimeError, OSError, EOFError, KeyError) as error:  # truncated or not a torch file: say which
        # (pickle.UnpicklingError, a file that would run code, passes through with torch's own advice.)
        raise CheckpointError(f"{path} is not a readable checkpoint ({error.__class__.__name__}: {error})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT_VERSION:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path}: checkpoint format {found!r}, expected {FORMAT_VERSION}")
    return checkpoint
