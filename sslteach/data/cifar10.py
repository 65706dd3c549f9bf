"""CIFAR-10: fetch or import it once, then load the prepared splits in milliseconds.

The source is the ``source`` argument, else the ``SSLTEACH_CIFAR10_SOURCE`` environment
variable, else a download of the official archive. A local source is either

* the official ``cifar-10-python.tar.gz``, checked against its MD5 *before* anything in
  it is unpickled (unpickling untrusted bytes can run arbitrary code), or
* a folder or tar archive of images in ``train/<class>/<image>`` (and optionally
  ``test/<class>/<image>``), possibly under one top-level folder.

Archives are read member by member in memory, never extracted, so a hostile archive
cannot write anywhere. Without a test split a fixed, stratified one is carved out of
train, and the provenance of both splits says so.

The MD5 of a local official archive can be skipped only by a test switch, the environment
variable ``SSLTEACH_CIFAR10_MD5=skip-for-tests`` (:data:`MD5_ENV`): the course's tests build an
archive in the official format from other copies of the images, which cannot have the official
MD5. Any other value is refused, the skip warns, and the provenance records it (``md5_check``).
A download is always checked.

Both splits of one preparation carry the same ``preparation_id``; the loader refuses a
train and a test file from different preparations (an interrupted or concurrent
``--force``), which would otherwise mix splits silently and could leak test images.
"""

from __future__ import annotations

import codecs
import datetime
import hashlib
import http.client
import io
import os
import pickle
import uuid
import warnings
from pathlib import Path
from urllib.request import urlopen

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import store
from .store import DataError, ImageSet, read_folder, read_tar, where as _where

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
]
SOURCE_ENV = "SSLTEACH_CIFAR10_SOURCE"
#: The test switch that skips the MD5 check of a local official archive (data_scripts/README.md).
MD5_ENV = "SSLTEACH_CIFAR10_MD5"
MD5_SKIP = "skip-for-tests"
SPLITS = ("train", "test")
CARVE_SEED = 0
# Splits are stored in a fixed random order, so any prefix (train[:5000]) is a fair sample of
# every class; sorted-by-class storage would make such a slice hold two classes.
SHUFFLE_SEED = 1
ARCHIVE_NAME = "cifar-10-python.tar.gz"
_OFFICIAL = "cifar-10-batches-py"
_OFFICIAL_TRAIN = [f"{_OFFICIAL}/data_batch_{i}" for i in range(1, 6)]
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class DatasetMissingError(FileNotFoundError):
    """CIFAR-10 is not prepared (or could not be fetched); the message says how to get it."""


class MixedPreparationError(DataError):
    """The train and test files do not come from one complete preparation."""


def _missing_message(root: Path, reason: str) -> str:
    return (
        f"CIFAR-10 is not prepared: {reason}. Data folder searched: {root} "
        f"(set SSLTEACH_DATA to use another). Get the data with `make data` or "
        f"`python data_scripts/get_cifar10.py [--source PATH]`."
    )


# ----------------------------------------------------------------------------- reading


def _decode(data: bytes, where: str) -> np.ndarray:
    """One encoded 32x32 image -> uint8 array (32, 32, 3), RGB."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")  # convert() forces the full decode inside the try
    except _IMAGE_ERRORS as err:
        raise DataError(f"{where}: cannot read image ({err})") from None
    if rgb.size != (32, 32):
        raise DataError(f"{where}: image is {rgb.size[0]}x{rgb.size[1]}, CIFAR-10 needs 32x32")
    return np.asarray(rgb)


def _class_folder_splits(
    members: dict[str, bytes], source: Path, is_archive: bool, progress: bool
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Decode a ``<split>/<class>/<image>`` tree into {split: (images (N,3,32,32), labels)}."""
    # Sorted names make the image order, and so the carved split, the same on every machine.
    names = sorted(n for n in members if not n.rsplit("/", 1)[-1].startswith("."))  # .DS_Store
    tops = sorted({n.split("/", 1)[0] for n in names})
    prefix = f"{tops[0]}/" if len(tops) == 1 and tops[0] not in SPLITS else ""  # e.g. cifar10/
    tree: dict[str, dict[str, list[str]]] = {}
    for name in names:
        parts = name[len(prefix):].split("/")
        if parts[0] not in SPLITS:
            continue  # e.g. a README beside the split folders
        if len(parts) != 3:
            where = _where(source, name, is_archive)
            raise DataError(f"{where}: expected <split>/<class>/<image>")
        tree.setdefault(parts[0], {}).setdefault(parts[1], []).append(name)
    if "train" not in tree:
        raise DataError(f"{source}: no train/<class>/<image> files (top level: {tops})")
    splits = {}
    for split, by_class in tree.items():
        if sorted(by_class) != sorted(CLASSES):
            raise DataError(
                f"{source}: class folders in {prefix}{split}/ must be exactly {CLASSES}; "
                f"found {sorted(by_class)}"
            )
        files = [(label, n) for label, c in enumerate(CLASSES) for n in by_class[c]]
        images = np.empty((len(files), 32, 32, 3), dtype=np.uint8)
        bar = tqdm(files, desc=f"decoding {split}", disable=not progress, mininterval=0.5)
        for i, (_, name) in enumerate(bar):
            images[i] = _decode(members[name], _where(source, name, is_archive))
        labels = torch.tensor([label for label, _ in files], dtype=torch.int64)
        splits[split] = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels)
    return splits


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR batches contain: numpy arrays and builtin containers."""

    _ALLOWED = {
        # numpy 1 wrote "numpy.core", numpy 2 writes "numpy._core"; both mean this function.
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return self._ALLOWED[(module, name)]


def _unpickle(members: dict[str, bytes], name: str, archive: Path) -> dict:
    if name not in members:
        raise DataError(f"{archive}: official archive lacks member {name!r}")
    try:
        # encoding="bytes": the batches were pickled by Python 2, their keys are bytes.
        batch = _BatchUnpickler(io.BytesIO(members[name]), encoding="bytes").load()
        return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as err:
        raise DataError(f"{_where(archive, name, True)}: not a CIFAR-10 batch ({err})") from None


def _official_splits(members: dict[str, bytes], archive: Path):
    """Parse the official pickled batches into {split: (images (N,3,32,32), labels (N,))}."""
    meta_name = f"{_OFFICIAL}/batches.meta"
    meta = _unpickle(members, meta_name, archive)
    names = [n.decode() if isinstance(n, bytes) else n for n in meta.get("label_names", [])]
    if names != CLASSES:
        raise DataError(f"{_where(archive, meta_name, True)}: unexpected classes {names}")
    splits = {}
    for split, batch_names in (("train", _OFFICIAL_TRAIN), ("test", [f"{_OFFICIAL}/test_batch"])):
        images, labels = [], []
        for name in batch_names:
            batch = _unpickle(members, name, archive)
            data, lab = np.asarray(batch.get("data", [])), np.asarray(batch.get("labels", []))
            if data.dtype != np.uint8 or data.shape != (len(lab), 3 * 32 * 32) or len(lab) == 0:
                raise DataError(f"{_where(archive, name, True)}: malformed data or labels")
            if lab.dtype.kind not in "iu" or lab.min() < 0 or lab.max() >= len(CLASSES):
                raise DataError(f"{_where(archive, name, True)}: labels outside 0..9")
            # Each row holds the red, green then blue 32x32 planes: exactly (3, 32, 32).
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(lab.astype(np.int64))
        splits[split] = tuple(torch.from_numpy(np.concatenate(x)) for x in (images, labels))
    return splits


def _md5_switch() -> bool:
    """Whether the test switch ``SSLTEACH_CIFAR10_MD5=skip-for-tests`` is set; any other value of
    the variable raises :class:`DataError` (checked before any source is read or downloaded)."""
    switch = os.environ.get(MD5_ENV)
    if switch is not None and switch != MD5_SKIP:
        raise DataError(f"{MD5_ENV}={switch!r} is not allowed: its only value is {MD5_SKIP!r}, a switch "
                        f"for the course's tests (data_scripts/README.md); unset it to check the archive")
    return switch == MD5_SKIP


def _read_source(path: Path, md5: str | None, progress: bool):
    """Decode any accepted source. Returns ({split: (images, labels)}, provenance fields)."""
    if path.is_dir():
        splits = _class_folder_splits(read_folder(path), path, False, progress)
        return splits, {"source_kind": "image folder"}
    if not path.is_file():
        raise DataError(f"{path}: source does not exist")
    actual = store.file_md5(path)
    members = read_tar(path)
    if f"{_OFFICIAL}/data_batch_1" not in members:
        splits = _class_folder_splits(members, path, True, progress)
        return splits, {"source_kind": "image archive", "source_md5": actual}
    if md5 is not None and actual != md5:
        raise DataError(f"{path}: MD5 {actual} != expected {md5}; corrupt or not the official file")
    info = {"source_kind": "official archive", "source_md5": actual}
    if md5 is None:
        info["md5_check"] = "skipped"
        if os.environ.get(MD5_ENV) == MD5_SKIP:
            info["md5_check"] = f"skipped by the test switch {MD5_ENV}={MD5_SKIP}"
            warnings.warn(f"{MD5_ENV}={MD5_SKIP}: the MD5 of {path} is NOT checked against the official "
                          "archive's. This switch is for the course's tests only; unset it for real data.",
                          UserWarning, stacklevel=2)
    return _official_splits(members, path), info


def _carve(splits: dict, per_class: int, where: Path) -> dict:
    """Split a fixed, stratified test set off train (same result on every run)."""
    images, labels = splits["train"]
    try:
        train_idx, test_idx = store.stratified_split(labels, per_class, CARVE_SEED)
    except ValueError as err:
        raise DataError(f"{where}: cannot carve a test split ({err})") from None
    return {s: (images[i], labels[i]) for s, i in (("train", train_idx), ("test", test_idx))}


# ------------------------------------------------------------------ download, prepare, load


def download_cifar10(url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5,
                     dest: str | Path | None = None, progress: bool = True) -> Path:
    """Download the archive to ``dest`` (default ``<data_dir>/cifar10/``), checking its MD5.

    Bytes stream into a temporary file beside ``dest`` that is renamed only after the
    checksum passes, so an interrupted or corrupt download leaves nothing behind. An
    existing ``dest`` with the right MD5 is kept. Returns the path of the verified archive.
    """
    dest = Path(dest) if dest is not None else store.data_dir() / "cifar10" / ARCHIVE_NAME
    if dest.is_file() and (md5 is None or store.file_md5(dest) == md5):
        return dest
    digest = hashlib.md5()
    try:
        with urlopen(url, timeout=60) as response, store.atomic_write(dest) as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress)
            with bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if md5 is not None and digest.hexdigest() != md5:
                raise DataError(f"{url}: MD5 {digest.hexdigest()} != expected {md5}; discarded")
    except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets
        reason = f"download of {url} failed ({err})"
        raise DatasetMissingError(_missing_message(dest.parent.parent, reason)) from err
    return dest


def is_prepared(data_dir: str | Path | None = None) -> bool:
    """True if both splits exist and come from one preparation in the current format."""
    try:
        prov = [store.load_provenance(store.split_path("cifar10", s, data_dir)) for s in SPLITS]
    except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError):
        return False  # missing or torn files: prepare again
    same_run = prov[0].get("prepared_at") == prov[1].get("prepared_at")
    same_run = same_run and prov[0].get("preparation_id") == prov[1].get("preparation_id")
    return same_run and all(p.get("format_version") == store.FORMAT_VERSION for p in prov)


def prepare_cifar10(source: str | Path | None = None, data_dir: str | Path | None = None,
                    force: bool = False, progress: bool = True, *, md5: str | None = CIFAR10_MD5,
                    url: str = CIFAR10_URL, test_per_class: int = 1000) -> dict:
    """Import CIFAR-10 once into ``<data_dir>/cifar10/{train,test}.pt``.

    Parameters
    ----------
    source : str or Path, optional
        Official archive, image folder or image archive. Default ``$SSLTEACH_CIFAR10_SOURCE``,
        else download ``url``.
    data_dir : str or Path, optional
        Data folder; default ``$SSLTEACH_DATA`` or ``<repo>/data``.
    force : bool
        Prepare again even if prepared data exists.
    progress : bool
        Show tqdm progress bars.
    md5 : str or None
        Expected MD5 of the official archive (None skips the check). For a local ``source`` the
        test switch ``SSLTEACH_CIFAR10_MD5=skip-for-tests`` skips it too, with a warning; any
        other value of that variable raises :class:`DataError`. A download is always checked.
    url : str
        Where to download from when there is no local source.
    test_per_class : int
        Images per class carved out of train when the source has no test split.

    Returns
    -------
    dict
        ``{"folder": str, "already_prepared": bool, "splits": {split: provenance}}``.

    Raises
    ------
    DataError
        The source is unusable (wrong MD5, corrupt archive, bad image or layout).
    DatasetMissingError
        There is no local source and the download failed.
    """
    root = Path(data_dir) if data_dir is not None else store.data_dir()
    folder = root / "cifar10"
    if not force and is_prepared(root):
        return _summary(folder, already_prepared=True)
    source = source or os.environ.get(SOURCE_ENV) or None
    skip_md5 = _md5_switch()
    if source is None:  # a download is always checked
        path, origin = download_cifar10(url, md5, folder / ARCHIVE_NAME, progress), url
    else:
        path = Path(source).expanduser().resolve()
        origin = str(path)
        md5 = None if skip_md5 else md5
    splits, common = _read_source(path, md5, progress)
    if "test" in splits:
        official = common["source_kind"] == "official archive"
        note = "official test set" if official else "test/ folders of the source"
    else:
        splits = _carve(splits, test_per_class, path)
        note = f"carved: {test_per_class} per class from train, seed {CARVE_SEED}"
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    common |= {"dataset": "cifar10", "format_version": store.FORMAT_VERSION, "source": origin,
               "test_split": note, "prepared_at": now, "preparation_id": uuid.uuid4().hex}
    common["order"] = f"shuffled with seed {SHUFFLE_SEED}: any prefix is a random sample"
    for split in SPLITS:
        images, labels = splits[split]
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SHUFFLE_SEED))
        images, labels = images[order], labels[order]
        counts = torch.bincount(labels, minlength=len(CLASSES)).tolist()
        prov = common | {"split": split, "count": len(labels), "class_counts": counts}
        image_set = ImageSet(images.contiguous(), labels, list(CLASSES), prov)
        store.save_image_set(image_set, folder / f"{split}.pt")
    return _summary(folder, already_prepared=False)


def _summary(folder: Path, already_prepared: bool) -> dict:
    splits = {s: store.load_provenance(folder / f"{s}.pt") for s in SPLITS}
    return {"folder": str(folder), "already_prepared": already_prepared, "splits": splits}


def _check_same_preparation(root: Path, split: str) -> None:
    """Raise :class:`MixedPreparationError` unless ``split`` and the other split belong together.

    Files without a ``preparation_id`` (prepared by an earlier version, or written by hand
    with ``save_image_set``) are accepted as a pair; a lone file is accepted only without one.
    """
    path = store.split_path("cifar10", split, root)
    other = store.split_path("cifar10", SPLITS[1 - SPLITS.index(split)], root)
    redo = "re-run `make data` or `python data_scripts/get_cifar10.py --force`"
    ids = {}
    for p in (path, other):
        try:
            ids[p] = store.load_provenance(p).get("preparation_id") if p.is_file() else None
        except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as err:
            raise MixedPreparationError(f"{p} is unreadable ({err.__class__.__name__}); {redo}") from None
    if not other.is_file():
        if ids[path] is not None:  # prepare_cifar10 writes both: the other one was interrupted
            raise MixedPreparationError(f"{path} has no partner {other}: a half-written preparation; {redo}")
        return
    if ids[path] != ids[other]:
        found = ", ".join(f"{p.name}: {ids[p] or 'none'}" for p in (path, other))
        raise MixedPreparationError(
            f"{path} and {other} come from different preparations (preparation_id {found}); {redo}"
        )


def load_cifar10(split: str = "train", data_dir: str | Path | None = None) -> ImageSet:
    """Load a prepared split, memory-mapped: images (N, 3, 32, 32) uint8, labels (N,) int64.

    Raises :class:`DatasetMissingError`, naming the command to run, if it is not prepared, and
    :class:`MixedPreparationError` if only half of a preparation is there, or train and test
    come from different ones.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(data_dir) if data_dir is not None else store.data_dir()
    path = store.split_path("cifar10", split, root)
    other = store.split_path("cifar10", SPLITS[1 - SPLITS.index(split)], root)
    if not path.is_file():
        if other.is_file():  # e.g. interrupted between the two writes: not "prepare it", but "redo it"
            raise MixedPreparationError(
                f"{path} is missing but {other} is there: a half-written preparation; "
                "re-run `make data` or `python data_scripts/get_cifar10.py --force`"
            )
        raise DatasetMissingError(_missing_message(root, f"{path} not found"))
    _check_same_preparation(root, split)
    return store.load_image_set(path)
