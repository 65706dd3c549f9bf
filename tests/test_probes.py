"""Stored probes (sslteach.probes): measured once per set of weights and images, then read back."""
import dataclasses
import json

import pytest
import torch

from sslteach import probes
from sslteach.checkpoint import SHIPPED_CHECKPOINTS, encoder_from_checkpoint, load_checkpoint
from sslteach.colorizer import lightness_images
from sslteach.data.store import ImageSet
from sslteach.encoders import build_encoder
from sslteach.evaluate import evaluate_blocks
from sslteach.profiles import CLASS
from sslteach.sphere_demo import (
    MEASURES_FILE, encoder_features, measure, measure_encoder, measure_protocol, measure_settings, measurement_images,
)
from sslteach.transfer import SHIPPED_DATA, measured_with, weights_fingerprint

from helpers import random_images

pytestmark = pytest.mark.usefixtures("one_thread")

PROFILE = dataclasses.replace(CLASS, probe_train_images=0, knn_k=10)


def tiny_sets():
    labels = torch.arange(4).repeat(30)
    train = ImageSet(random_images(120, seed=1), labels, ["a", "b", "c", "d"])
    test = ImageSet(random_images(60, seed=2), labels[:60].clone(), ["a", "b", "c", "d"])
    return train, test


@pytest.fixture
def nothing_stored(tmp_path, monkeypatch):
    """(train, test, an untrained encoder), with an empty data folder and nothing shipped."""
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(tmp_path / "nothing shipped"))
    torch.manual_seed(0)
    return (*tiny_sets(), build_encoder("small").eval())


def test_a_probe_is_stored_and_read_back_only_for_the_same_weights_and_images(nothing_stored, tmp_path):
    train, test, encoder = nothing_stored
    first = probes.probe_stages(encoder, train, test, PROFILE)
    assert {stage["source"] for stage in first} == {probes.MEASURED_NOW}
    expected = evaluate_blocks(encoder, train, test, PROFILE)
    assert [{k: s[k] for k in ("knn", "linear_probe")} for s in first] == expected
    stored_path = tmp_path / "checkpoints" / "class" / probes.PROBES_FILE
    second = probes.probe_stages(encoder, train, test, PROFILE)
    assert [s["source"] for s in second] == [str(stored_path)] * len(expected)
    assert [s["linear_probe"] for s in second] == [s["linear_probe"] for s in first]
    assert probes.source_note(second) == f"stored in {stored_path}"
    assert probes.probe_stages(encoder, train, test, PROFILE, stages=2) == second[:2]  # the same stored result
    # another readout, other images (grey copies: same dataset, other pixels), other weights: measured
    assert probes.probe_pooled(encoder, train, test, PROFILE)["source"] == probes.MEASURED_NOW
    assert probes.probe_pooled(encoder, train, test, PROFILE)["source"] == str(stored_path)
    grey = dataclasses.replace(train, images=lightness_images(train.images))
    assert probes.probe_stages(encoder, grey, test, PROFILE)[0]["source"] == probes.MEASURED_NOW
    with torch.no_grad():
        next(encoder.parameters()).mul_(2)
    changed = probes.probe_stages(encoder, train, test, PROFILE, save=False)
    assert changed[0]["source"] == probes.MEASURED_NOW
    assert probes.probe_stages(encoder, train, test, PROFILE)[0]["source"] == probes.MEASURED_NOW  # save=False kept nothing
    assert probes.source_note(first, second) == f"measured now; stored in {stored_path}"


SHIPPED_STORES = {  # file: its protocol for the class profile
    probes.PROBES_FILE: probes.PROTOCOL,  # lectures 00-06
    MEASURES_FILE: measure_protocol(measure_settings(CLASS)),  # lecture 07
}


@pytest.mark.parametrize("file", SHIPPED_STORES)
def test_the_shipped_probes_are_read_with_todays_settings(file):
    """If the protocol or the class profile's settings change, a shipped table no longer matches
    and the lectures measure live again (minutes more in CI): measure the table again by
    executing the lectures, and ship data/checkpoints/class/<file> (checkpoints/README.md)."""
    table = json.loads((SHIPPED_CHECKPOINTS / "class" / file).read_text())
    assert {k: table[k] for k in ("profile", "profile_settings", "protocol")} == measured_with(CLASS, SHIPPED_STORES[file])
    rows = table["rows"].values()
    assert rows and all(row["fingerprint"] and row["images"] for row in rows)
    assert all(row["data"]["source_md5"] == SHIPPED_DATA["source_md5"] for row in rows)


@pytest.mark.parametrize("file", SHIPPED_STORES)
def test_every_stored_probe_measured_a_shipped_checkpoint(file):
    """A row whose weights no longer ship is stale: the checkpoint was retrained and its lecture
    now measures live (the docstring above says how to measure the table again)."""
    folder = SHIPPED_CHECKPOINTS / "class"
    shipped = {weights_fingerprint(encoder_from_checkpoint(load_checkpoint(path, checksum_required=True), "cpu").state_dict())
               for path in folder.glob("*.pt")}
    table = json.loads((folder / file).read_text())
    stale = [name for name, row in table["rows"].items() if row["fingerprint"] not in shipped]
    assert not stale, stale


def test_lecture_07s_measurements_are_stored_per_weights_and_images(nothing_stored, tmp_path):
    train, test, encoder = nothing_stored
    tiny = dataclasses.replace(PROFILE, measure_bank_images=100, measure_test_images=50, measure_pair_images=20)
    first = measure_encoder(encoder, train, test, tiny)
    assert first["source"] == probes.MEASURED_NOW
    live = measure(encoder_features(encoder, measurement_images(train, test, measure_settings(tiny))))
    assert {k: first[k] for k in live} == live
    stored = measure_encoder(encoder, train, test, tiny)
    assert stored == {**first, "source": str(tmp_path / "checkpoints" / "class" / MEASURES_FILE)}
    assert not (tmp_path / "checkpoints" / "class" / probes.PROBES_FILE).exists()  # a table of its own
    fewer_pairs = dataclasses.replace(tiny, measure_pair_images=10)  # other settings: another protocol
    assert measure_encoder(encoder, train, test, fewer_pairs)["source"] == probes.MEASURED_NOW
    other_test = dataclasses.replace(test, images=test.images.flip(-1))
    assert measure_encoder(encoder, train, other_test, tiny, save=False)["source"] == probes.MEASURED_NOW


def test_probes_of_grey_copies_and_subsets_share_the_table(nothing_stored, tmp_path):
    """A probe of other images (a subset, grey copies) adds its row; it does not replace the table."""
    train, test, encoder = nothing_stored
    probes.probe_pooled(encoder, train, test, PROFILE)
    fewer = dataclasses.replace(train, images=train.images[:80], labels=train.labels[:80])
    probes.probe_pooled(encoder, fewer, test, PROFILE)
    table = json.loads((tmp_path / "checkpoints" / "class" / probes.PROBES_FILE).read_text())
    assert sorted(row["data"]["train_images"] for row in table["rows"].values()) == [80, 120]
    assert probes.probe_pooled(encoder, train, test, PROFILE)["source"] != probes.MEASURED_NOW
