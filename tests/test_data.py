"""Tests of sslteach.data on tiny fixtures built in tmp_path (plus the real data if present)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
import tarfile
import time

import numpy as np
import pytest
import torch
from PIL import Image

from sslteach.data import (
    CLASSES,
    SOURCE_ENV,
    DataError,
    DatasetMissingError,
    ImageSet,
    data_dir,
    download_cifar10,
    is_prepared,
    load_cifar10,
    load_image_set,
    load_images,
    offline_patches,
    prepare_cifar10,
    save_image_set,
)
from sslteach.data import cifar10 as cifar10_module
from sslteach.data import store

# ----------------------------------------------------------------------------- fixtures


def png_bytes(rng: np.random.Generator, size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def class_tree(per_class: int = 3, test_per_class: int = 0, top: str = "cifar10") -> dict:
    """Relative path -> PNG bytes for a ``<top>/<split>/<class>/<i>.png`` tree."""
    rng = np.random.default_rng(0)
    files = {}
    for split, count in (("train", per_class), ("test", test_per_class)):
        for cls in CLASSES:
            for i in range(count):
                files[f"{top}/{split}/{cls}/{i:04d}.png".lstrip("/")] = png_bytes(rng)
    return files


def write_folder(root, files: dict[str, bytes]):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_tar(path, files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()):
    with tarfile.open(path, "w:gz") as tar:
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


META = pickle.dumps({b"label_names": [c.encode() for c in CLASSES]})


def official_archive(path, rows: int = 2):
    """A tiny archive shaped like cifar-10-python.tar.gz (bytes keys, as Python 2 wrote them)."""
    rng = np.random.default_rng(1)

    def batch(n):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        return pickle.dumps({b"data": data, b"labels": [i % 10 for i in range(n)]})

    files = {f"cifar-10-batches-py/data_batch_{i}": batch(rows) for i in range(1, 6)}
    files["cifar-10-batches-py/test_batch"] = batch(3)
    files["cifar-10-batches-py/batches.meta"] = META
    write_tar(path, files)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# ----------------------------------------------------------------------------- imports


def test_folder_import_with_test_split(tmp_path):
    src = write_folder(tmp_path / "src", class_tree(per_class=3, test_per_class=2))
    meta = prepare_cifar10(src, tmp_path / "data", progress=False)
    train, test = load_cifar10("train", tmp_path / "data"), load_cifar10("test", tmp_path / "data")
    assert train.images.shape == (30, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and train.class_counts() == [3] * 10
    assert test.class_counts() == [2] * 10 and train.classes == CLASSES
    assert meta["splits"]["test"]["test_split"] == "test/ folders of the source"
    assert meta["splits"]["train"]["dataset"] == "cifar10"
    # Pixels survive the round trip: airplane/0000.png is stored (somewhere: splits are shuffled).
    first = torch.from_numpy(np.array(Image.open(src / "cifar10/train/airplane/0000.png"))).permute(2, 0, 1)
    assert any(torch.equal(image, first) for image in train.images)
    # Stored in a fixed shuffled order, not sorted by class, so a prefix samples every class.
    assert train.labels.tolist() != sorted(train.labels.tolist())
    assert "shuffled" in meta["splits"]["train"]["order"]
    assert is_prepared(tmp_path / "data")
    assert prepare_cifar10(src, tmp_path / "data", progress=False)["already_prepared"]


def test_tar_import_without_top_folder(tmp_path):
    archive = write_tar(tmp_path / "imgs.tgz", class_tree(per_class=2, test_per_class=1, top=""))
    meta = prepare_cifar10(archive, tmp_path / "data", progress=False)
    assert meta["splits"]["train"]["count"] == 20 and meta["splits"]["test"]["count"] == 10
    assert meta["splits"]["train"]["source_md5"] == store.file_md5(archive)


def test_official_archive_import(tmp_path):
    archive, md5 = official_archive(tmp_path / "cifar-10-python.tar.gz")
    meta = prepare_cifar10(archive, tmp_path / "data", progress=False, md5=md5)
    train, test = load_cifar10("train", tmp_path / "data"), load_cifar10("test", tmp_path / "data")
    assert train.images.shape == (10, 3, 32, 32) and len(test) == 3
    assert meta["splits"]["test"]["test_split"] == "official test set"
    # Row layout is R plane, G plane, B plane: pixel (0, 0) of image 0 is data[0, [0, 1024, 2048]].
    with tarfile.open(archive) as tar:
        row = pickle.loads(tar.extractfile("cifar-10-batches-py/data_batch_1").read())[b"data"][0]
    assert row[[0, 1024, 2048]].tolist() in train.images[:, :, 0, 0].tolist()


def test_stratified_carve(tmp_path):
    archive = write_tar(tmp_path / "train.tar.gz", class_tree(per_class=5))
    runs = [prepare_cifar10(archive, tmp_path / d, progress=False, test_per_class=2) for d in "ab"]
    train, test = load_cifar10("train", tmp_path / "a"), load_cifar10("test", tmp_path / "a")
    assert test.class_counts() == [2] * 10 and train.class_counts() == [3] * 10
    again = load_cifar10("test", tmp_path / "b")
    assert torch.equal(test.images, again.images) and torch.equal(test.labels, again.labels)
    train_keys = {bytes(img.numpy()) for img in train.images}
    assert not train_keys & {bytes(img.numpy()) for img in test.images}  # disjoint
    for split in ("train", "test"):
        assert runs[0]["splits"][split]["test_split"] == "carved: 2 per class from train, seed 0"


def test_carve_needs_enough_images(tmp_path):
    archive = write_tar(tmp_path / "train.tar.gz", class_tree(per_class=2))
    with pytest.raises(DataError, match="carve"):
        prepare_cifar10(archive, tmp_path / "data", progress=False)  # default 1000 per class


# ----------------------------------------------------------------------------- bad input


def test_md5_mismatch_writes_nothing(tmp_path):
    archive, _ = official_archive(tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DataError, match="MD5") as err:
        prepare_cifar10(archive, tmp_path / "data", progress=False, md5="0" * 32)
    assert str(archive) in str(err.value)
    assert listing(tmp_path / "data") == []


def test_md5_test_switch_skips_only_with_its_value_and_says_so(tmp_path, monkeypatch):
    """SSLTEACH_CIFAR10_MD5=skip-for-tests lets an official-format archive with another MD5 through
    (the tests build one), with a warning and a note in the provenance; any other value stops."""
    archive, _ = official_archive(tmp_path / "cifar-10-python.tar.gz")  # not the official MD5
    monkeypatch.delenv(cifar10_module.MD5_ENV, raising=False)
    with pytest.raises(DataError, match="MD5"):
        prepare_cifar10(archive, tmp_path / "data", progress=False)
    monkeypatch.setenv(cifar10_module.MD5_ENV, "1")
    with pytest.raises(DataError, match="only value is 'skip-for-tests'"):
        prepare_cifar10(archive, tmp_path / "data", progress=False)
    assert listing(tmp_path / "data") == []
    monkeypatch.setenv(cifar10_module.MD5_ENV, "skip-for-tests")
    with pytest.warns(UserWarning, match="NOT checked"):
        meta = prepare_cifar10(archive, tmp_path / "data", progress=False)
    assert "test switch" in meta["splits"]["train"]["md5_check"]
    assert meta["splits"]["test"]["test_split"] == "official test set"
    # A download is always checked, switch or not; a wrong value stops it before it starts.
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    with pytest.raises(DataError, match="MD5"):
        prepare_cifar10(None, tmp_path / "other", progress=False, url=archive.as_uri())
    monkeypatch.setenv(cifar10_module.MD5_ENV, "skip")
    with pytest.raises(DataError, match="only value"):
        prepare_cifar10(None, tmp_path / "other", progress=False, url="http://unreachable.invalid/x.tar.gz")


def test_truncated_archive(tmp_path):
    whole = write_tar(tmp_path / "whole.tar.gz", class_tree(per_class=2))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated") as err:
        prepare_cifar10(cut, tmp_path / "data", progress=False)
    assert str(cut) in str(err.value)
    assert listing(tmp_path / "data") == []


def test_unreadable_image_names_member(tmp_path):
    files = class_tree(per_class=1, test_per_class=1)
    files["cifar10/train/cat/0007.png"] = b"not an image"
    archive = write_tar(tmp_path / "bad.tar.gz", files)
    with pytest.raises(DataError, match="cifar10/train/cat/0007.png") as err:
        prepare_cifar10(archive, tmp_path / "data", progress=False)
    assert str(archive) in str(err.value)


def test_wrong_size_and_wrong_classes(tmp_path):
    files = class_tree(per_class=1, test_per_class=1)
    files["cifar10/train/dog/big.png"] = png_bytes(np.random.default_rng(2), size=40)
    with pytest.raises(DataError, match="big.png.*40x40"):
        prepare_cifar10(write_folder(tmp_path / "a", files), tmp_path / "data", progress=False)
    files = class_tree(per_class=1, test_per_class=1)
    files = {name.replace("/truck/", "/lorry/"): data for name, data in files.items()}
    with pytest.raises(DataError, match="lorry"):
        prepare_cifar10(write_folder(tmp_path / "b", files), tmp_path / "data", progress=False)


@pytest.mark.parametrize("name", ["cifar10/../../evil.png", "/tmp/evil.png"])
def test_escaping_member_rejected(tmp_path, name):
    info = tarfile.TarInfo(name)
    info.size = 4
    archive = write_tar(tmp_path / "evil.tar.gz", class_tree(per_class=1), extra=[info])
    with pytest.raises(DataError) as err:
        prepare_cifar10(archive, tmp_path / "data", progress=False)
    assert name in str(err.value) and str(archive) in str(err.value)
    assert listing(tmp_path / "data") == [] and not (tmp_path / "evil.png").exists()


def test_symlink_member_rejected(tmp_path):
    info = tarfile.TarInfo("cifar10/train/cat/link.png")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = write_tar(tmp_path / "link.tar.gz", class_tree(per_class=1), extra=[info])
    with pytest.raises(DataError, match="link.png"):
        prepare_cifar10(archive, tmp_path / "data", progress=False)


def test_malicious_pickle_refused_even_with_matching_md5(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    files = {f"cifar-10-batches-py/data_batch_{i}": pickle.dumps(Exploit()) for i in range(1, 6)}
    files["cifar-10-batches-py/batches.meta"] = META
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", files)
    md5 = store.file_md5(archive)
    with pytest.raises(DataError, match="data_batch_1"):
        prepare_cifar10(archive, tmp_path / "data", progress=False, md5=md5)


def test_missing_dataset_message(tmp_path):
    with pytest.raises(DatasetMissingError) as err:
        load_cifar10("train", tmp_path)
    assert "make data" in str(err.value) and "data_scripts/get_cifar10.py" in str(err.value)
    assert str(tmp_path) in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(DatasetMissingError):
        load_images("test", tmp_path, allow_offline=False)


# ----------------------------------------------------------------------------- download


def test_download_file_url(tmp_path):
    payload = os.urandom(3_000_000)
    src = tmp_path / "remote.tar.gz"
    src.write_bytes(payload)
    dest = tmp_path / "dl" / "cifar.tar.gz"
    md5 = hashlib.md5(payload).hexdigest()
    assert download_cifar10(src.as_uri(), md5, dest, progress=False) == dest
    assert dest.read_bytes() == payload and listing(dest.parent) == ["cifar.tar.gz"]
    dest.unlink()
    with pytest.raises(DataError, match="MD5"):
        download_cifar10(src.as_uri(), "0" * 32, dest, progress=False)
    assert listing(dest.parent) == []


class DyingResponse:
    """A urlopen() response that delivers one chunk and then fails."""

    headers = {"Content-Length": "2000000"}

    def __init__(self, error):
        self.error, self.calls = error, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n):
        self.calls += 1
        if self.calls > 1:
            raise self.error
        return b"x" * 1000


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch, error):
    monkeypatch.setattr(cifar10_module, "urlopen", lambda url, timeout: DyingResponse(error))
    dest = tmp_path / "dl" / "cifar.tar.gz"
    expected = DatasetMissingError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        download_cifar10("https://example.invalid/c.tar.gz", "0" * 32, dest, progress=False)
    assert listing(dest.parent) == []


def test_unreachable_download_says_how_to_get_data(tmp_path, monkeypatch):
    monkeypatch.delenv(SOURCE_ENV, raising=False)  # else the local source wins over the URL
    with pytest.raises(DatasetMissingError, match="--source"):
        prepare_cifar10(None, tmp_path, progress=False, url=(tmp_path / "nowhere").as_uri())


# ----------------------------------------------------------------------------- store


def test_atomic_write_leaves_no_temp_files(tmp_path, monkeypatch):
    zeros = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    images = ImageSet(zeros, torch.arange(4), list("abcd"), {"k": 1})
    path = save_image_set(images, tmp_path / "s" / "train.pt")
    assert listing(tmp_path / "s") == ["train.pt"]
    loaded = load_image_set(path)
    assert torch.equal(loaded.images, images.images) and loaded.provenance == {"k": 1}

    def half_save(obj, f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.torch, "save", half_save)
    with pytest.raises(RuntimeError):
        save_image_set(images.subset([0, 1]), path)
    assert listing(tmp_path / "s") == ["train.pt"] and len(load_image_set(path)) == 4


def test_provenance_must_be_plain(tmp_path):
    zeros = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    images = ImageSet(zeros, torch.zeros(1, dtype=torch.int64), ["a"], {"source": tmp_path})
    with pytest.raises(ValueError, match="provenance"):
        save_image_set(images, tmp_path / "x.pt")
    assert listing(tmp_path) == []


def test_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("SSLTEACH_DATA")
    assert data_dir() == store.repo_root() / "data"


# ----------------------------------------------------------------------------- command line


def load_script():
    path = store.repo_root() / "data_scripts" / "get_cifar10.py"
    spec = importlib.util.spec_from_file_location("get_cifar10", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reports_and_fails_cleanly(tmp_path, capsys):
    script = load_script()
    archive = write_tar(tmp_path / "train.tar.gz", class_tree(per_class=3))
    args = ["--source", str(archive), "--data-dir", str(tmp_path / "data"), "--quiet"]
    assert script.main(args) == 1  # 3 per class cannot give 1000 per class to the test split
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "carve" in err and "Traceback" not in err
    assert err.count("\n") == 1
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:100])
    assert script.main(["--source", str(cut), "--data-dir", str(tmp_path / "data")]) == 1
    assert str(cut) in capsys.readouterr().err
    src = write_folder(tmp_path / "src", class_tree(per_class=2, test_per_class=1))
    assert script.main(["--source", str(src), "--data-dir", str(tmp_path / "data"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "train:" in out and "20 images" in out and "test/ folders of the source" in out


# ----------------------------------------------------------------------------- offline tier


def test_offline_patches():
    a, b = offline_patches(n=500, seed=3), offline_patches(n=500, seed=3)
    assert a.images.shape == (500, 3, 32, 32) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, offline_patches(n=500, seed=4).images)
    assert a.provenance["dataset"] == "offline-photos" and "NOT CIFAR-10" in a.provenance["note"]
    assert len(a.provenance["credits"]) == len(a.classes)
    assert max(a.class_counts()) - min(a.class_counts()) <= 1
    start = time.perf_counter()
    offline_patches(n=10_000)
    assert time.perf_counter() - start < 1.0


def test_load_images_falls_back_offline(tmp_path):
    images = load_images("train", tmp_path)
    assert images.provenance["dataset"] == "offline-photos"
    assert images.provenance["split"] == "train" and len(images) == 10_000


# ----------------------------------------------------------------------------- real data


def test_real_cifar10():
    root = data_dir()
    if not is_prepared(root):
        if not os.environ.get(SOURCE_ENV):
            pytest.skip(f"CIFAR-10 not prepared in {root} and ${SOURCE_ENV} unset (`make data`)")
        prepare_cifar10(progress=False)
    start = time.perf_counter()
    train = load_cifar10("train")
    elapsed = time.perf_counter() - start
    test = load_cifar10("test")
    assert elapsed < 2.0, f"loading train took {elapsed:.2f} s"
    for split in (train, test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 32, 32)
        assert split.classes == CLASSES and split.provenance["dataset"] == "cifar10"
    assert len(set(test.class_counts())) == 1, "test split is not balanced"
    assert len(train) + len(test) in (50_000, 60_000)
