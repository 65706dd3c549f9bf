"""The official CIFAR-10 path, end to end (issue 17): an archive in the official python format,
prepared by the command ``make data`` runs, then lecture 00 under nbval on it.

The official ``cifar-10-python.tar.gz`` cannot be downloaded here, so the test builds an archive
in its format from the training images of ``$SSLTEACH_CIFAR10_SOURCE`` (the JPEG copy of CIFAR-10's
50,000 training images that CI prepares): the five data batches hold those 50,000 images, and the
test batch holds 1,000 of each class again. Only the format and the shape matter here (50,000
training and 10,000 test images, the official test split): the test images are training images,
so the numbers the lecture measures on them are not CIFAR-10 test numbers, and the asserts it
makes on learned numbers are checked on the real shapes, not on real test images.

Its MD5 is not the official one, so the preparation runs with the documented test switch
``SSLTEACH_CIFAR10_MD5=skip-for-tests`` (data_scripts/README.md). The archive is built once per
session, in a temporary folder.
"""
from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslteach.data import CLASSES, SOURCE_ENV, data_fingerprint, load_cifar10
from sslteach.data.cifar10 import MD5_ENV, MD5_SKIP

ROOT = Path(__file__).resolve().parents[1]
BATCH = 10_000  # images per batch of the official archive
TEST_PER_CLASS = 1_000


def training_images(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decode a tar archive of ``<top>/train/<class>/<image>`` files, independently of sslteach.

    Returns images (N, 32, 32, 3) uint8 and labels (N,) int64, class by class, names sorted.
    """
    with tarfile.open(source) as tar:
        members = sorted((m for m in tar if m.isfile() and "/train/" in f"/{m.name}"), key=lambda m: m.name)
        files = [(CLASSES.index(m.name.split("/")[-2]), tar.extractfile(m).read()) for m in members]
    files.sort(key=lambda f: f[0])  # stable: names stay sorted within a class
    images = np.stack([np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for _, data in files])
    return images, np.array([label for label, _ in files], dtype=np.int64)


def official_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072): each row the red, then the green, then the blue 32x32 plane."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3 * 32 * 32))


def write_official_archive(path: Path, images: np.ndarray, labels: np.ndarray, test: np.ndarray) -> Path:
    """``cifar-10-python.tar.gz`` in the official layout: ``cifar-10-batches-py/data_batch_1..5``
    (``images`` in five equal batches), ``test_batch`` (the images at indices ``test``) and
    ``batches.meta``; pickled dicts with bytes keys, as Python 2 wrote them."""

    def batch(label: str, index: np.ndarray) -> bytes:
        return pickle.dumps({b"batch_label": label.encode(), b"labels": labels[index].tolist(),
                             b"data": official_rows(images[index]),
                             b"filenames": [f"image_{i:05d}.png".encode() for i in index]}, protocol=2)

    order = np.random.default_rng(0).permutation(len(images))  # the official batches mix the classes
    batches = np.array_split(order, 5)
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": BATCH, b"num_vis": 3072}
    files = {f"data_batch_{i + 1}": batch(f"training batch {i + 1} of 5", b) for i, b in enumerate(batches)}
    files |= {"test_batch": batch("testing batch 1 of 1", test), "batches.meta": pickle.dumps(meta, protocol=2)}
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def official_archive(tmp_path_factory) -> Path:
    """The training images of $SSLTEACH_CIFAR10_SOURCE as an official-format archive (once a session)."""
    source = Path(os.environ.get(SOURCE_ENV, ""))
    if not source.is_file() or not tarfile.is_tarfile(source):
        pytest.skip(f"${SOURCE_ENV} is not an archive of CIFAR-10's training images (CI's JPEG copy); "
                    "where the data come from the official download, that is the official path itself")
    images, labels = training_images(source)
    if len(images) != 5 * BATCH:
        pytest.skip(f"{source} holds {len(images)} training images, not CIFAR-10's 50,000")
    test = np.concatenate([np.flatnonzero(labels == c)[:TEST_PER_CLASS] for c in range(len(CLASSES))])
    return write_official_archive(tmp_path_factory.mktemp("official") / "cifar-10-python.tar.gz", images, labels, test)


@pytest.fixture(scope="session")
def official_data(official_archive, tmp_path_factory) -> Path:
    """A data folder prepared from the official-format archive by data_scripts/get_cifar10.py."""
    data = tmp_path_factory.mktemp("official-data")
    command = [sys.executable, str(ROOT / "data_scripts" / "get_cifar10.py"), "--source", str(official_archive),
               "--data-dir", str(data), "--quiet"]
    done = subprocess.run(command, env=os.environ | {MD5_ENV: MD5_SKIP}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "(official archive)" in done.stdout and "NOT DONE" in done.stdout, done.stdout
    assert f"{MD5_ENV}={MD5_SKIP}" in done.stderr, "skipping the MD5 check must warn"
    return data


def test_the_official_archive_is_refused_without_the_switch(official_archive, tmp_path):
    """Its MD5 is not the official one: without the test switch the same command stops."""
    command = [sys.executable, str(ROOT / "data_scripts" / "get_cifar10.py"), "--source", str(official_archive),
               "--data-dir", str(tmp_path), "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != MD5_ENV}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "MD5" in done.stderr and "expected c58f30108f718f92721af3b95e74349a" in done.stderr
    assert not (tmp_path / "cifar10").exists()


def test_official_archive_prepares_to_the_official_shape(official_data):
    train, test = load_cifar10("train", official_data), load_cifar10("test", official_data)
    assert train.images.shape == (50_000, 3, 32, 32) and test.images.shape == (10_000, 3, 32, 32)
    assert train.class_counts() == [5_000] * 10 and test.class_counts() == [1_000] * 10
    data = data_fingerprint(train, test)
    assert data["source_kind"] == "official archive" and data["test_split"] == "official test set"
    assert (data["train_images"], data["test_images"]) == (50_000, 10_000)
    assert "test switch" in train.provenance["md5_check"]


def test_lecture_00_passes_nbval_on_the_official_shape(official_data):
    """Lecture 00 top to bottom, as `make test` runs it, on data with the official archive's shape:
    its checked cells print nothing that depends on the source, and its asserts hold."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSLTEACH_CHECKPOINTS", "SSLTEACH_RETRAIN")}
    env["SSLTEACH_DATA"] = str(official_data)  # shipped checkpoints, as in class; nothing is trained
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               str(ROOT / "lectures" / "00_introduction.ipynb")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
