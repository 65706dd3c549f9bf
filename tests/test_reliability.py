"""Reliability under bad inputs, interrupts and concurrency (issue 19).

Each section is one failure that was seen: lost SHA256SUMS entries, training before finding out
that ``--out`` cannot be written, mixed train/test preparations, an unsafe checkpoint's message,
tracebacks where one line was promised, wrong input accepted, ``.part`` litter, and an open
classroom server.
"""
from __future__ import annotations

import dataclasses
import io
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image

from sslteach import evaluate as evaluate_module
from sslteach import train as train_module
from sslteach import transfer as transfer_module
from sslteach.checkpoint import (
    CHECKSUMS,
    FORMAT_VERSION,
    UnsafeCheckpointError,
    load_checkpoint,
    read_checksums,
    record_checksum,
    save_checkpoint,
)
from sslteach.data import (
    CLASSES,
    ImageSet,
    MixedPreparationError,
    is_prepared,
    load_cifar10,
    load_images,
    prepare_cifar10,
    save_image_set,
)
from sslteach.data import store
from sslteach.encoders import small_convnet
from sslteach.evaluate import checkpoint_profile
from sslteach.profiles import CLASS, FULL

REPO = Path(__file__).resolve().parents[1]


def cli_env(data: Path) -> dict:
    env = {**os.environ, "SSLTEACH_DATA": str(data), "SSLTEACH_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    env.pop("SSLTEACH_PROFILE", None)
    return env


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    """stderr is exactly one line ``error: ...`` holding every fragment, and no traceback."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def cli_data(tmp_path, monkeypatch):
    """An empty data folder for the command lines, CPU only, the default profile."""
    data = tmp_path / "data"
    monkeypatch.setenv("SSLTEACH_DATA", str(data))
    monkeypatch.setenv("SSLTEACH_DEVICE", "cpu")
    monkeypatch.delenv("SSLTEACH_PROFILE", raising=False)
    return data


def tiny_image_set(N: int, seed: int, provenance: dict | None = None) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8, generator=g)
    return ImageSet(images, torch.arange(N) % 10, list(CLASSES), provenance or {})


def small_checkpoint(**changes) -> dict:
    torch.manual_seed(0)
    return {
        "method": "random-init", "profile": "class", "profile_settings": dataclasses.asdict(CLASS),
        "encoder_name": "small", "encoder": small_convnet().state_dict(), "head": None, "seed": 0,
        "history": {"seconds": 0.5, "images_seen": 64}, **changes,
    }


# ----------------------------------------------------------------------------- 1. SHA256SUMS


def _record_many(folder: str, prefix: str, count: int) -> None:
    for i in range(count):
        path = Path(folder) / f"{prefix}{i:03d}.pt"
        path.write_bytes(f"{prefix} {i}".encode())
        record_checksum(path)


def test_two_processes_recording_checksums_keep_every_entry(tmp_path):
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    workers = [context.Process(target=_record_many, args=(str(tmp_path), prefix, 100)) for prefix in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    sums = read_checksums(tmp_path)
    assert len(sums) == 200
    # The format is sha256sum's, sorted by name, and nothing else is left in the folder.
    lines = (tmp_path / CHECKSUMS).read_text().splitlines()
    assert all(re.fullmatch(r"[0-9a-f]{64}  [ab]\d{3}\.pt", line) for line in lines)
    assert [line.split()[1] for line in lines] == sorted(sums)
    assert sorted(os.listdir(tmp_path)) == sorted([*sums, CHECKSUMS])
    check = subprocess.run(["sha256sum", "-c", "--quiet", CHECKSUMS], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# ----------------------------------------------------------------------------- 2. --out


def _unwritable_out(tmp_path: Path, case: str) -> Path:
    if case == "folder":
        (tmp_path / "folder").mkdir()
        return tmp_path / "folder"
    if case == "parent is a file":
        (tmp_path / "file").write_text("not a folder")
        return tmp_path / "file" / "sub" / "c.pt"
    (tmp_path / "ro").mkdir(mode=0o555)
    return tmp_path / "ro" / "c.pt"


@pytest.mark.parametrize("case", ["folder", "parent is a file", "read-only folder"])
def test_train_refuses_an_unwritable_out_before_any_training(case, tmp_path, cli_data, monkeypatch, capsys):
    out = _unwritable_out(tmp_path, case)
    if case == "read-only folder" and os.geteuid() == 0:  # root may write anywhere: pretend not
        monkeypatch.setattr(train_module.os, "access", lambda path, mode: False)

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(train_module, "pretrain", no_training)
    monkeypatch.setattr(train_module, "pick_device", no_training)  # not even the device or the data
    assert train_module.main(["rotation", "--steps", "1", "--out", str(out)]) == 1
    assert_one_line_error(capsys.readouterr().err, str(out))


def test_train_all_refuses_a_file_as_its_folder(tmp_path, cli_data, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(train_module, "pretrain", lambda *a, **k: pytest.fail("trained"))
    assert train_module.main(["all", "--out", str(tmp_path / "file")]) == 1
    assert_one_line_error(capsys.readouterr().err, "is a file, not a folder")


# ----------------------------------------------------------------------------- 3. preparations


def tiny_source(root: Path, seed: int) -> Path:
    """A folder source: 2 train and 1 test PNG per class."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", 2), ("test", 1)):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                buffer = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
                (folder / f"{i}.png").write_bytes(buffer.getvalue())
    return root


@pytest.fixture
def two_preparations(tmp_path):
    """Two complete preparations of two different sources: (data folder a, data folder b)."""
    folders = tmp_path / "a", tmp_path / "b"
    for seed, folder in enumerate(folders):
        prepare_cifar10(tiny_source(tmp_path / f"source{seed}", seed), folder, progress=False)
    return folders


def test_a_preparation_gives_both_splits_one_id(two_preparations):
    a, b = two_preparations
    ids = [load_cifar10(split, a).provenance["preparation_id"] for split in ("train", "test")]
    assert ids[0] == ids[1] and len(ids[0]) == 32
    assert load_cifar10("train", b).provenance["preparation_id"] != ids[0]


def test_splits_of_two_preparations_are_refused_naming_both_files(two_preparations):
    a, b = two_preparations
    shutil.copy(b / "cifar10" / "test.pt", a / "cifar10" / "test.pt")  # e.g. a --force interrupted
    for split in ("train", "test"):
        with pytest.raises(MixedPreparationError) as caught:
            load_cifar10(split, a)
        message = str(caught.value)
        assert "\n" not in message and "different preparations" in message
        assert str(a / "cifar10" / "train.pt") in message and str(a / "cifar10" / "test.pt") in message
        assert "make data" in message and "get_cifar10.py --force" in message
    with pytest.raises(MixedPreparationError):
        load_images("train", a)  # no silent offline fallback either
    assert not is_prepared(a)


@pytest.mark.parametrize("missing", ["test", "train"])
def test_a_half_written_preparation_is_named_not_a_key_error(two_preparations, missing):
    a, _ = two_preparations
    (a / "cifar10" / f"{missing}.pt").unlink()
    kept = {"train": "test", "test": "train"}[missing]
    for split in ("train", "test"):
        with pytest.raises(MixedPreparationError, match="half-written preparation.*make data"):
            load_cifar10(split, a)
        with pytest.raises(MixedPreparationError, match=f"{kept}.pt"):
            load_images(split, a)  # lecture 00 got CIFAR train with offline test, then KeyError


def test_data_without_a_preparation_id_still_loads(tmp_path):
    # As prepared by the previous version (and as the tests write it by hand): no id in either file.
    save_image_set(tiny_image_set(8, 1, {"prepared_at": "then"}), tmp_path / "cifar10" / "train.pt")
    assert len(load_cifar10("train", tmp_path)) == 8  # a lone train file without an id is accepted
    save_image_set(tiny_image_set(4, 2, {"prepared_at": "then"}), tmp_path / "cifar10" / "test.pt")
    assert len(load_cifar10("train", tmp_path)) == 8 and len(load_cifar10("test", tmp_path)) == 4
    # One file with an id and one without come from two different versions: refused.
    save_image_set(tiny_image_set(4, 2, {"preparation_id": "x"}), tmp_path / "cifar10" / "test.pt")
    with pytest.raises(MixedPreparationError, match="different preparations"):
        load_cifar10("train", tmp_path)


# ----------------------------------------------------------------------------- 4. unsafe checkpoint


def test_an_unsafe_checkpoint_is_refused_without_suggesting_weights_only_false(tmp_path):
    path = tmp_path / "object.pt"
    torch.save({"format": FORMAT_VERSION, "path": PurePosixPath("x")}, path)
    with pytest.raises(UnsafeCheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "holds code" in message and "refused" in message and str(path) in message
    assert "git checkout checkpoints/" in message and "python -m sslteach.train" in message
    assert "weights_only" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # torch's text not chained


# ----------------------------------------------------------------------------- 5. one-line errors


def run_module(args: list[str], data: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=cli_env(data), capture_output=True, text=True, timeout=120)


def test_command_lines_print_one_line_errors(tmp_path):
    data = tmp_path / "data"
    result = run_module(["-m", "sslteach.train", "rotation", "--steps", "1"], data, tmp_path)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "CIFAR-10 is not prepared", "make data")

    result = run_module(["-m", "sslteach.evaluate", "nothere.pt"], data, tmp_path)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "nothere.pt")

    (tmp_path / "file").write_text("")  # the data folder under a file: an OSError while saving
    source = tiny_source(tmp_path / "source", 0)
    script = str(REPO / "data_scripts" / "get_cifar10.py")
    result = run_module([script, "--source", str(source), "--data-dir", str(tmp_path / "file" / "data"), "--quiet"], data, tmp_path)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "file")


def test_evaluate_names_a_bad_checkpoint_in_one_line(tmp_path, cli_data, capsys):
    path = tmp_path / "object.pt"
    torch.save({"format": FORMAT_VERSION, "path": PurePosixPath("x")}, path)
    assert evaluate_module.main([str(path)]) == 1
    assert_one_line_error(capsys.readouterr().err, "holds code")
    damaged = save_checkpoint(tmp_path / "c.pt", small_checkpoint())
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    assert evaluate_module.main([str(damaged)]) == 1
    assert_one_line_error(capsys.readouterr().err, "is damaged")


@pytest.mark.parametrize("main, args", [
    (train_module.main, ["rotation", "--profile", "gpu"]),
    (transfer_module.main, ["rotation", "--profile", "gpu"]),
])
def test_an_unknown_profile_is_one_line(main, args, cli_data, capsys):
    assert main(args) == 1
    assert_one_line_error(capsys.readouterr().err, "unknown profile 'gpu'")


@pytest.mark.parametrize("main, args", [
    (train_module.main, ["rotation"]),
    (evaluate_module.main, ["c.pt"]),
    (transfer_module.main, ["rotation"]),
])
def test_cuda_without_cuda_is_one_line_that_does_not_blame_the_environment(main, args, cli_data, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SSLTEACH_DEVICE")
    assert main([*args, "--device", "cuda"]) == 1
    line = assert_one_line_error(capsys.readouterr().err, "CUDA is not available")
    assert "SSLTEACH_DEVICE" not in line


def test_missing_data_is_one_line_for_transfer(cli_data, capsys):
    assert transfer_module.main(["raw pixels"]) == 1
    assert_one_line_error(capsys.readouterr().err, "CIFAR-10 is not prepared")


# ----------------------------------------------------------------------------- 6. wrong input


@pytest.mark.parametrize("steps", ["0", "-3", "two"])
def test_train_refuses_steps_below_one(steps, cli_data, capsys):
    with pytest.raises(SystemExit) as caught:
        train_module.main(["rotation", "--steps", steps])
    assert caught.value.code == 2
    assert "--steps" in capsys.readouterr().err


def test_transfer_refuses_an_unknown_method_and_lists_the_known_ones(cli_data, capsys):
    with pytest.raises(SystemExit) as caught:
        transfer_module.main(["rotaton"])
    assert caught.value.code != 0
    err = capsys.readouterr().err
    assert "'rotaton'" in err and "'rotation'" in err and "'raw pixels'" in err


def test_checkpoint_profile_checks_the_label_against_the_stored_settings():
    assert checkpoint_profile(small_checkpoint()) == (CLASS, {})
    # Labelled "class" but trained with the full settings: the settings count, and differ.
    profile, differences = checkpoint_profile(small_checkpoint(profile_settings=dataclasses.asdict(FULL)))
    assert profile == FULL and differences["encoder"] == ["resnet18", "small"] and "name" in differences
    stepped = dataclasses.asdict(dataclasses.replace(CLASS, steps=2))
    assert checkpoint_profile(small_checkpoint(profile_settings=stepped)) == (dataclasses.replace(CLASS, steps=2), {"steps": [2, 350]})
    profile, differences = checkpoint_profile(small_checkpoint(profile="gpu"))
    assert profile == CLASS and differences == {"name": ["class", "gpu"]}


def test_evaluate_reports_settings_that_differ_from_the_label(tmp_path, cli_data, capsys):
    save_image_set(tiny_image_set(64, 1), cli_data / "cifar10" / "train.pt")
    save_image_set(tiny_image_set(20, 2), cli_data / "cifar10" / "test.pt")
    probe = dataclasses.replace(CLASS, knn_k=7, steps=2)
    path = save_checkpoint(tmp_path / "c.pt", small_checkpoint(profile_settings=dataclasses.asdict(probe)))
    assert evaluate_module.main([str(path)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["settings_differ_from_profile"] == ["knn_k", "steps"]
    assert report["knn_k"] == 7  # the stored settings were used, not the label's
    assert report["probe_train_images"] == 64  # the headline readout: every labelled training image
    assert "knn_k=7 (profile: 200)" in captured.err


# ----------------------------------------------------------------------------- 7. .part litter


def test_a_stale_part_file_is_removed_and_a_fresh_one_kept(tmp_path):
    target = tmp_path / "c.pt"
    stale = tmp_path / ".c.pt.4242.abcd1234.part"  # a writer killed an hour ago
    fresh = tmp_path / ".c.pt.4343.efgh5678.part"  # a writer still at work
    legacy = tmp_path / ".c.pt.x1y2z3.tmp"  # the name the earlier checkpoint code used
    for part in (stale, fresh, legacy):
        part.write_bytes(b"half")
    hour_ago = time.time() - 3600
    for part in (stale, legacy):
        os.utime(part, (hour_ago, hour_ago))
    save_checkpoint(target, small_checkpoint())
    assert sorted(os.listdir(tmp_path)) == sorted([fresh.name, "SHA256SUMS", "c.pt"])

    save_image_set(tiny_image_set(4, 0), tmp_path / "d.pt")  # other targets' files are not touched
    assert fresh.exists()
    os.utime(fresh, (hour_ago, hour_ago))
    save_image_set(tiny_image_set(4, 0), target)
    assert not fresh.exists()


def test_each_writer_has_its_own_part_file_named_by_its_process(tmp_path):
    with store.atomic_write(tmp_path / "x.pt") as first, store.atomic_write(tmp_path / "x.pt") as second:
        first.write(b"1")
        second.write(b"2")
        parts = sorted(p.name for p in tmp_path.iterdir())
        assert len(parts) == 2
        assert all(p.startswith(f".x.pt.{os.getpid()}.") and p.endswith(".part") for p in parts)
    assert os.listdir(tmp_path) == ["x.pt"]


def test_there_is_one_atomic_write_helper():
    from sslteach import checkpoint, transfer
    from sslteach.data import cifar10

    assert checkpoint.atomic_write is transfer.atomic_write is store.atomic_write
    assert cifar10.store is store
    assert "mkstemp" not in Path(checkpoint.__file__).read_text()


# ----------------------------------------------------------------------------- 8. make lab


def make_lab(*variables: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(["make", "-n", "lab", "VENV=/nonexistent-venv", *variables],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_lab_beyond_localhost_turns_terminals_off_and_warns():
    commands = make_lab("LAB_IP=0.0.0.0")
    jupyter = next(line for line in commands.splitlines() if "jupyter lab" in line)
    assert "--ServerApp.ip=0.0.0.0" in jupyter and "--ServerApp.terminals_enabled=False" in jupyter
    assert "plain HTTP" in commands and "SSH tunnel" in commands


@pytest.mark.parametrize("variables", [(), ("LAB_IP=localhost",)])
def test_make_lab_on_localhost_keeps_terminals(variables):
    commands = make_lab(*variables)
    assert "terminals_enabled" not in commands and "plain HTTP" not in commands
