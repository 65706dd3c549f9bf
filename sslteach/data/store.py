"""The prepared-data format (one ``torch.save`` file per split) and safe file handling.

A prepared split lives at ``<data_dir>/<dataset>/<split>.pt`` and holds a plain dict::

    {"images": uint8 tensor (N, 3, 32, 32), contiguous, RGB,
     "labels": int64 tensor (N,),
     "classes": list[str],
     "provenance": dict of str / int / float / bool / list}

Only tensors and plain Python values are stored, so the file loads with
``torch.load(..., weights_only=True)``: no pickled code can run at load time. Loading
also uses ``mmap=True``, so the 40,000-image train split opens in milliseconds and the
pixels are paged in from disk only when touched.

The module also holds the file handling every importer needs: atomic writes, MD5s, a
stratified hold-out split, and reading tar archives in memory without extracting them.
"""

from __future__ import annotations

import contextlib
import hashlib
import lzma
import os
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import torch

#: Bumped whenever the layout of the saved dict changes.
FORMAT_VERSION = 2  # 2: splits stored in a fixed shuffled order

#: Environment variable that moves the data folder (e.g. to a bigger disk).
DATA_ENV = "SSLTEACH_DATA"

# Everything a broken or truncated archive can raise while being read
# (gzip.BadGzipFile and bz2 errors are OSErrors).
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


class DataError(ValueError):
    """A source is unusable; the message names the offending file (and archive member)."""


# eq=False: comparing tensors with == is ambiguous, so equality is identity.
@dataclass(frozen=True, eq=False)
class ImageSet:
    """A labelled set of images, the unit every lecture works with.

    Parameters
    ----------
    images : torch.Tensor
        uint8 tensor of shape (N, 3, H, W), RGB.
    labels : torch.Tensor
        int64 tensor of shape (N,), values in ``range(len(classes))``.
    classes : list of str
        Class names; ``classes[labels[i]]`` names image ``i``.
    provenance : dict
        Where the images came from and how they were prepared (plain values only).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Fail at construction rather than deep inside a training loop.
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                "images must be uint8 (N, 3, H, W); "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must be int64 of shape ({self.images.shape[0]},); "
                f"got {self.labels.dtype} {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, indices: torch.Tensor | Sequence[int]) -> ImageSet:
        """Return the images at ``indices`` (copies, same classes and provenance).

        Parameters
        ----------
        indices : torch.Tensor or sequence of int
            Shape (M,), positions in ``range(len(self))``.

        Returns
        -------
        ImageSet
            M images of shape (M, 3, H, W).
        """
        idx = torch.as_tensor(indices, dtype=torch.int64)
        images = self.images[idx].contiguous()
        return ImageSet(images, self.labels[idx], list(self.classes), dict(self.provenance))

    def class_counts(self) -> list[int]:
        """Number of images per class, in the order of ``classes``."""
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()


def repo_root() -> Path:
    """The repository root: the folder that contains the ``sslteach`` package."""
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The data folder: ``$SSLTEACH_DATA`` if set, else ``<repo root>/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else repo_root() / "data"


def split_path(dataset: str, split: str, root: str | Path | None = None) -> Path:
    """Path of one prepared split, ``<root>/<dataset>/<split>.pt``."""
    return Path(root if root is not None else data_dir()) / dataset / f"{split}.pt"


#: A temporary file older than this beside a target is left by a killed writer and removed.
STALE_PART_SECONDS = 30 * 60


def remove_stale_parts(path: str | Path, max_age: float = STALE_PART_SECONDS) -> list[Path]:
    """Delete temporary files of ``path`` that a killed writer left, if older than ``max_age`` s.

    A ``kill -9`` gives :func:`atomic_write` no chance to clean up, and a checkpoint's
    temporary file is over 100 MB. A live writer keeps touching its file, so only old ones
    go. ``.tmp`` files are the names an earlier version of this code used.
    """
    path = Path(path)
    now, removed = time.time(), []
    for pattern in (f".{path.name}.*.part", f".{path.name}.*.tmp"):
        for part in path.parent.glob(pattern):
            with contextlib.suppress(FileNotFoundError):  # another writer may clean up too
                if now - part.stat().st_mtime > max_age:
                    part.unlink()
                    removed.append(part)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path``; it becomes ``path`` only on success.

    Readers therefore see either the old file or the complete new one, never a
    half-written file. If the ``with`` body raises (including ``KeyboardInterrupt``) the
    temporary file is deleted; one left by a killed writer is deleted by a later write of
    ``path`` (:func:`remove_stale_parts`). Every writer has its own temporary file,
    ``.<name>.<pid>.<random>.part``, so two processes writing one target never mix bytes.

    Parameters
    ----------
    path : str or Path
        Final destination. Its folder is created if needed.

    Yields
    ------
    BinaryIO
        The temporary file, opened for binary writing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    # Same folder as the target: os.replace is only atomic within one file system.
    prefix = f".{path.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            # Without fsync a crash right after the rename can leave an empty file.
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; data and checkpoints are meant to be read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _is_plain(value) -> bool:
    """True for the values ``torch.load(weights_only=True)`` can read back."""
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return value is None or isinstance(value, (str, int, float, bool))


def save_image_set(images: ImageSet, path: str | Path) -> Path:
    """Write ``images`` atomically in the prepared-data format.

    Parameters
    ----------
    images : ImageSet
        Images (N, 3, H, W) uint8 and labels (N,) int64.
    path : str or Path
        Destination ``.pt`` file.

    Returns
    -------
    Path
        The written file.
    """
    if not _is_plain(images.provenance):
        # Anything else (a Path, a numpy scalar) would make weights_only loading fail later.
        raise ValueError(f"provenance must hold only str/int/float/bool/list/dict values: "
                         f"{images.provenance!r}")
    payload = {
        "images": images.images.contiguous(),
        "labels": images.labels.contiguous(),
        "classes": list(images.classes),
        "provenance": dict(images.provenance),
    }
    with atomic_write(path) as f:
        torch.save(payload, f)
    return Path(path)


def load_image_set(path: str | Path) -> ImageSet:
    """Load a split written by :func:`save_image_set` (memory-mapped, no code runs).

    Parameters
    ----------
    path : str or Path
        A ``.pt`` file in the prepared-data format.

    Returns
    -------
    ImageSet
        Images (N, 3, H, W) uint8 backed by the file; labels (N,) int64.
    """
    payload = torch.load(path, weights_only=True, mmap=True)
    return ImageSet(payload["images"], payload["labels"], payload["classes"], payload["provenance"])


def load_provenance(path: str | Path) -> dict:
    """Only the provenance of a prepared split; cheap because the pixels stay on disk."""
    return torch.load(path, weights_only=True, mmap=True)["provenance"]


def file_md5(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks so large archives need little memory."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def stratified_split(
    labels: torch.Tensor, per_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hold out exactly ``per_class`` images of every class, chosen at random.

    The same labels, ``per_class`` and ``seed`` always give the same split, so a
    carved test set is identical on every machine and every rerun.

    Parameters
    ----------
    labels : torch.Tensor
        int64 tensor of shape (N,).
    per_class : int
        Images of each class to hold out.
    seed : int
        Seed of the permutation.

    Returns
    -------
    kept, held : torch.Tensor
        Sorted int64 index tensors of shapes (N - C * per_class,) and (C * per_class,),
        disjoint and together covering ``range(N)``.
    """
    generator = torch.Generator().manual_seed(seed)
    held = []
    # Classes in a fixed order so that the generator's draws line up on every run.
    for cls in torch.unique(labels).tolist():
        members = (labels == cls).nonzero().flatten()
        if len(members) <= per_class:
            raise ValueError(
                f"class {cls} has {len(members)} images; "
                f"need more than {per_class} to hold out {per_class}"
            )
        held.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    held_idx = torch.cat(held).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[held_idx] = False
    return keep.nonzero().flatten(), held_idx


# ------------------------------------------------------------------ reading sources safely


def where(source: Path, member: str, is_archive: bool) -> str:
    """How error messages name a file: the archive and its member, or the file's path."""
    return f"{source} (member {member!r})" if is_archive else str(source / member)


def _check_member(info: tarfile.TarInfo, archive: Path) -> None:
    """Reject members that could escape a target folder if anyone did extract them."""
    name, here = info.name, where(archive, info.name, True)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"{here}: absolute path in archive, refusing it")
    if ".." in re.split(r"[\\/]", name):
        raise DataError(f"{here}: '..' in path would escape the folder, refusing it")
    if info.issym() or info.islnk():
        raise DataError(f"{here}: links are not allowed in the archive")
    if not (info.isfile() or info.isdir()):
        raise DataError(f"{here}: not a regular file or folder")


def read_tar(path: Path) -> dict[str, bytes]:
    """All regular files of a tar archive (any compression), in memory: name -> bytes.

    Nothing is extracted to disk, and every member is checked before it is read, so
    absolute paths, ``..`` and links are refused with a :class:`DataError`. A truncated
    or corrupt archive also raises :class:`DataError`, naming the archive.
    """
    members = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for info in tar:
                _check_member(info, path)
                if info.isfile():
                    members[info.name] = tar.extractfile(info).read()
    except _ARCHIVE_ERRORS as err:
        raise DataError(f"{path}: truncated, corrupt or not a tar archive ({err})") from None
    return members


def read_folder(path: Path) -> dict[str, bytes]:
    """All files under a folder, keyed by their '/'-separated path relative to it."""
    files = (p for p in path.rglob("*") if p.is_file())
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in files}
