"""What a result was made from (issue 17): the fingerprint of prepared data, the data that
checkpoints and course tables record, and what happens when the user's data differ from them."""
from __future__ import annotations

import dataclasses
import doctest
import json

import pytest
import torch

from sslteach import methods as methods_module
from sslteach import transfer
from sslteach.checkpoint import checkpoint_path, is_same_run, save_checkpoint
from sslteach.data import (
    CIFAR10_MD5,
    CLASSES,
    SHIPPED_DATA,
    ImageSet,
    data_dir,
    data_fingerprint,
    describe_data,
    is_prepared,
    load_cifar10,
    never_saw_test_images,
    offline_patches,
    prepare_cifar10,
    trained_on_note,
)
from sslteach.data import fingerprint as fingerprint_module
from sslteach.data import store
from sslteach.encoders import build_encoder
from sslteach.methods import find_run, load_or_pretrain, method_recipe, pretrain
from sslteach.profiles import CLASS

from helpers import random_images, tiny_profile
from test_data import class_tree, official_archive, write_folder, write_tar

OFFICIAL = {"dataset": "cifar10", "source_kind": "official archive", "source_md5": CIFAR10_MD5,
            "test_split": "official test set", "train_images": 50_000, "test_images": 10_000}
"""The fingerprint of the official archive, as a machine with internet prepares it."""

TINY = tiny_profile(steps=1, batch_size=8)


def test_the_docstring_examples_hold():
    result = doctest.testmod(fingerprint_module)
    assert result.attempted > 0 and result.failed == 0


def test_fingerprint_follows_the_source_and_the_split_not_the_preparation(tmp_path):
    archive = write_tar(tmp_path / "train.tar.gz", class_tree(per_class=5))
    for folder in "ab":  # the same source prepared twice: other dates and ids, the same data
        prepare_cifar10(archive, tmp_path / folder, progress=False, test_per_class=2)
    fingerprints = [data_fingerprint(load_cifar10("train", tmp_path / f), load_cifar10("test", tmp_path / f)) for f in "ab"]
    assert fingerprints[0] == fingerprints[1]
    assert tuple(fingerprints[0]) == fingerprint_module.FINGERPRINT_FIELDS
    assert fingerprints[0] == {"dataset": "cifar10", "source_kind": "image archive", "source_md5": store.file_md5(archive),
                               "test_split": "carved: 2 per class from train, seed 0", "train_images": 30, "test_images": 20}

    official, md5 = official_archive(tmp_path / "cifar-10-python.tar.gz")
    prepare_cifar10(official, tmp_path / "o", progress=False, md5=md5)
    from_official = data_fingerprint(load_cifar10("train", tmp_path / "o"), load_cifar10("test", tmp_path / "o"))
    assert from_official["source_kind"] == "official archive" and from_official["test_split"] == "official test set"
    assert from_official["source_md5"] == md5 and from_official != fingerprints[0]

    folder = write_folder(tmp_path / "src", class_tree(per_class=3, test_per_class=1))
    prepare_cifar10(folder, tmp_path / "f", progress=False)
    from_folder = data_fingerprint(load_cifar10("train", tmp_path / "f"), load_cifar10("test", tmp_path / "f"))
    assert from_folder["source_md5"] is None and from_folder["test_split"] == "test/ folders of the source"


def test_the_offline_tier_has_a_fingerprint_that_says_it_is_not_cifar10():
    data = data_fingerprint(offline_patches(60), offline_patches(12, seed=1))
    assert data["dataset"] == "offline-photos" and data["test_split"] is None
    assert (data["train_images"], data["test_images"]) == (60, 12)
    assert "not CIFAR-10" in describe_data(data)
    assert not never_saw_test_images(SHIPPED_DATA, data)


def test_shipped_data_is_what_preparing_ci_s_archive_gives():
    """SHIPPED_DATA is the fingerprint of the data the shipped checkpoints were trained on: the
    carved split of the JPEG archive that CI prepares. Checked against the prepared data when they
    come from that archive."""
    if not is_prepared(data_dir()):
        pytest.skip("CIFAR-10 is not prepared (make data)")
    train, test = load_cifar10("train"), load_cifar10("test")
    if train.provenance.get("source_md5") != SHIPPED_DATA["source_md5"] or "carved" not in train.provenance["test_split"]:
        pytest.skip("the prepared data do not come from CI's JPEG archive with a carved test split")
    assert data_fingerprint(train, test) == SHIPPED_DATA


@pytest.mark.parametrize("trained_on, data, safe", [
    (SHIPPED_DATA, SHIPPED_DATA, True),  # the same split: its test images were held out
    (SHIPPED_DATA, OFFICIAL, True),  # the official test images are in no training split
    (OFFICIAL, SHIPPED_DATA, False),  # all 50,000 training images include the carved test split
    ({**SHIPPED_DATA, "source_md5": "0" * 32}, SHIPPED_DATA, False),  # another source's carve
    ({**SHIPPED_DATA, "test_split": "carved: 500 per class from train, seed 0"}, SHIPPED_DATA, False),
    (None, OFFICIAL, False),  # unknown: never promised
])
def test_never_saw_test_images(trained_on, data, safe):
    assert never_saw_test_images(trained_on, data) is safe
    assert trained_on_note(trained_on, data).startswith("WARNING") is not safe


def test_pretrain_records_the_data_and_other_data_do_not_make_another_run(tmp_path, monkeypatch):
    images, labels = random_images(N=16), torch.arange(16) % 10
    path = tmp_path / "random-init.pt"
    made = load_or_pretrain("random-init", images, labels, TINY, path=path, data=SHIPPED_DATA)
    assert made["source"] == "trained" and made["data"] == SHIPPED_DATA
    assert pretrain("random-init", images, labels, TINY)["data"] is None  # not said: recorded as unknown

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although only the data differ")

    monkeypatch.setattr(methods_module, "pretrain", no_training)
    loaded = load_or_pretrain("random-init", images, labels, TINY, path=path, data=OFFICIAL)
    assert loaded["source"] == str(path) and loaded["data"] == SHIPPED_DATA  # what it was trained on
    assert is_same_run(loaded, "random-init", TINY, 0, method_recipe("random-init"))


def test_checkpoints_from_before_fingerprints(tmp_path, monkeypatch):
    """A shipped checkpoint without "data" was trained on SHIPPED_DATA (checkpoints/README.md);
    one of the user's own is of unknown data."""
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(tmp_path / "shipped"))
    checkpoint = pretrain("random-init", random_images(N=16), torch.arange(16) % 10, TINY)
    del checkpoint["data"]
    save_checkpoint(tmp_path / "shipped" / TINY.name / "random-init.pt", checkpoint)
    assert find_run("random-init", TINY)["data"] == SHIPPED_DATA
    save_checkpoint(checkpoint_path("random-init", TINY), checkpoint)
    found = find_run("random-init", TINY)
    assert found["source"] == str(checkpoint_path("random-init", TINY)) and found["data"] is None


# --------------------------------------------------------------------------- the course table


def tiny_data(source_md5: str, test_split: str):
    """Tiny train and test sets with the provenance of a preparation, and their transfer set."""
    provenance = {"dataset": "cifar10", "source_kind": "image archive", "source_md5": source_md5, "test_split": test_split}
    labels = torch.arange(4).repeat(20)
    train = ImageSet(random_images(80, seed=1), labels, CLASSES[:4], provenance)
    test = ImageSet(random_images(40, seed=2), labels[:40].clone(), CLASSES[:4], provenance)
    return train, test, {"tiny": ImageSet(random_images(20, seed=3), torch.arange(2).repeat(10), ["x", "y"])}


@pytest.fixture
def measured(monkeypatch) -> list:
    """``transfer.evaluate_method`` replaced by a quick stand-in (the protocol itself is tested in
    test_transfer.py): the list collects the test-set size of every measurement."""
    calls = []

    def evaluate(encoder, train_set, test_set, profile, transfer_sets=None, protocol=transfer.PROTOCOL):
        calls.append(len(test_set))
        return {"stage": 1, "knn": 0.5, "linear_probe": 0.5, "seconds": 2.0}

    monkeypatch.setattr(transfer, "evaluate_method", evaluate)
    return calls


@pytest.fixture
def table_setup(tmp_path, monkeypatch, measured):
    """A table of two rows measured on one data set and moved into the shipped folder, written in
    the format of the shipped table (before fingerprints: "data" holds only the dataset and counts)."""
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(tmp_path / "shipped"))
    profile = dataclasses.replace(CLASS, probe_train_images=0, knn_k=10)
    protocol = {**transfer.PROTOCOL, "draws": 1, "episodes": 2, "shots": 2, "label_fractions": [0.25, 1.0]}
    torch.manual_seed(0)
    encoders = {"raw pixels": None, "tiny": build_encoder("small").eval()}
    train, test, sets = tiny_data("a" * 32, "carved: 5 per class from train, seed 0")
    for name, encoder in encoders.items():
        transfer.load_or_evaluate(name, encoder, train, test, profile, sets, protocol=protocol)
    table = transfer.read_table(transfer.table_paths("class")[0])
    table["data"] = {"dataset": "cifar10", "train_images": len(train), "test_images": len(test)}
    shipped = tmp_path / "shipped" / "class" / transfer.TABLE_FILE
    shipped.parent.mkdir(parents=True)
    transfer.write_table(shipped, table)
    transfer.table_paths("class")[0].unlink()
    measured.clear()
    return encoders, profile, protocol, shipped


def test_table_settings_record_the_data_fingerprint():
    train, test, _ = tiny_data("b" * 32, "official test set")
    assert transfer.table_settings(CLASS, train, test)["data"] == data_fingerprint(train, test)


def test_the_stored_table_is_shown_labelled_and_measured_again_only_when_asked(table_setup, measured, capsys):
    encoders, profile, protocol, shipped = table_setup
    train, test, sets = tiny_data("c" * 32, "official test set")  # the user's data: other images
    data = data_fingerprint(train, test)

    rows = transfer.course_table(encoders, train, test, profile, sets, protocol=protocol, progress=False)
    assert measured == [] and list(rows) == ["raw pixels", "tiny"]
    assert all(row["data"] == SHIPPED_DATA and row["source"] == str(shipped) for row in rows.values())
    label = transfer.describe_table_data(rows, data)
    assert label.startswith("every row: measured on CIFAR-10") and "shipped checkpoints" in label
    assert f"your data: {describe_data(data)}" in label
    # The exact lookup (the command line's) does not take a row measured on other data.
    assert transfer.load_or_evaluate("tiny", encoders["tiny"], train, test, profile, sets, protocol=protocol)["source"] == "evaluated"
    measured.clear()

    rows = transfer.course_table(encoders, train, test, profile, sets, remeasure=True, protocol=protocol, progress=False)
    assert len(measured) == 1  # "tiny" was just measured on these data and stored; raw pixels now
    assert "measuring 1 of 2 rows on your data: about 2 seconds" in capsys.readouterr().out  # the stored rows took 2 s
    assert all(row["data"] == data for row in rows.values())
    assert transfer.describe_table_data(rows, data).startswith("every row: measured on your data")
    assert transfer.read_table(transfer.table_paths("class")[0])["data"] == data
    measured.clear()
    transfer.course_table(encoders, train, test, profile, sets, remeasure=True, protocol=protocol, progress=False)
    assert measured == [], "rows measured on these data are read, not measured again"


def test_a_table_of_the_user_s_own_from_before_fingerprints_has_unknown_data(table_setup):
    encoders, profile, protocol, shipped = table_setup
    user = transfer.table_paths("class")[0]
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(shipped.read_text())
    table = transfer.read_table(user)
    assert transfer.table_data(table, user) is None and transfer.table_data(table, shipped) == SHIPPED_DATA
    train, test, _ = tiny_data("c" * 32, "official test set")
    row = transfer.stored_row("tiny", transfer.weights_fingerprint(encoders["tiny"].state_dict()),
                              transfer.table_settings(profile, train, test, protocol), other_data=True)
    assert row["data"] is None and row["source"] == str(user)  # the first table looked in


def test_mixed_tables_say_which_row_was_measured_on_what():
    rows = {"a": {"data": SHIPPED_DATA}, "b": {"data": OFFICIAL}}
    lines = transfer.describe_table_data(rows, OFFICIAL).splitlines()
    assert lines[0].startswith("a: measured on CIFAR-10") and lines[1].startswith("b: measured on your data")
    assert "not exactly comparable" in lines[-1]


def test_estimate_seconds_reads_the_stored_rows_times(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(tmp_path / "shipped"))
    assert transfer.estimate_seconds(["a"], "class") is None
    transfer.write_table(tmp_path / "shipped" / "class" / transfer.TABLE_FILE,
                         {"rows": {"a": {"seconds": 10.0}, "b": {"seconds": 30.0}, "c": {"seconds": 20.0}}})
    assert transfer.estimate_seconds(["a", "b"], "class") == 40
    assert transfer.estimate_seconds(["a", "new"], "class") == 30  # a row never measured: the median
    transfer.write_table(tmp_path / "data" / "checkpoints" / "class" / transfer.TABLE_FILE, {"rows": {"a": {"seconds": 1.0}}})
    assert transfer.estimate_seconds(["a"], "class") == 1  # this machine's own time comes first


def test_the_shipped_table_is_read_as_measured_on_shipped_data(monkeypatch):
    monkeypatch.delenv("SSLTEACH_CHECKPOINTS")
    path = transfer.table_paths("class")[-1]
    table = json.loads(path.read_text())
    assert table["data"] == {"dataset": "cifar10", "train_images": 40_000, "test_images": 10_000}
    assert transfer.table_data(table, path) == SHIPPED_DATA
