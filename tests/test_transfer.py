"""The closing lecture's protocol (sslteach.transfer): subsets, stage choice, label efficiency,
few-shot transfer, the offline transfer sets, and the stored course table."""
import dataclasses
import json

import pytest
import torch

from sslteach import transfer
from sslteach.data.store import ImageSet
from sslteach.encoders import build_encoder
from sslteach.checkpoint import SHIPPED_CHECKPOINTS, encoder_from_checkpoint
from sslteach.methods import METHODS
from sslteach.checkpoint import load_checkpoint
from sslteach.profiles import CLASS, EVALUATION_SETTINGS, TRAINING_SETTINGS

from helpers import random_images

pytestmark = pytest.mark.usefixtures("one_thread")


def separable(n_per_class=40, classes=4, dim=8, noise=0.3, seed=0):
    """Features whose first ``classes`` dimensions encode the class, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    features = noise * torch.randn(len(labels), dim, generator=g)
    features[torch.arange(len(labels)), labels] += 1.0
    return features, labels


def test_balanced_subset_draws_per_class_without_repeats():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 3)
    chosen = transfer.balanced_subset(labels, 5, 3, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[chosen], minlength=3).tolist() == [5, 5, 3]  # class 2 gives all it has
    assert len(chosen.unique()) == len(chosen) and chosen.tolist() == sorted(chosen.tolist())
    again = transfer.balanced_subset(labels, 5, 3, torch.Generator().manual_seed(0))
    other = transfer.balanced_subset(labels, 5, 3, torch.Generator().manual_seed(1))
    assert torch.equal(chosen, again) and not torch.equal(chosen, other)


def test_balanced_subset_is_uniform_within_a_class():
    labels = torch.zeros(10, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(10)
    for _ in range(2000):
        counts[transfer.balanced_subset(labels, 1, 1, g)] += 1
    assert counts.min() > 150 and counts.max() < 250  # each of 10 images about 200 times


def test_choose_stage_finds_the_informative_stage():
    features, labels = separable()
    noise = torch.randn(len(labels), 8, generator=torch.Generator().manual_seed(1))
    assert transfer.choose_stage([noise, features, noise], labels, 4) == 1


def test_label_efficiency_shapes_and_the_full_probe():
    features, labels = separable(n_per_class=50)
    result = transfer.label_efficiency(features[::2], labels[::2], features[1::2], labels[1::2], 4, (0.1, 1.0), draws=2)
    assert len(result[0.1]) == 2 and len(result[1.0]) == 1
    assert result[1.0][0] == transfer.probe_accuracy(features[::2], labels[::2], features[1::2], labels[1::2], 4)
    assert result[1.0][0] > 0.9


def test_few_shot_accuracy_tests_on_the_images_not_fitted():
    features, labels = separable(noise=0.2)
    scores = transfer.few_shot_accuracy(features, labels, 4, shots=3, episodes=4)
    assert len(scores) == 4 and min(scores) > 0.8
    noise = torch.randn(len(labels), 8, generator=torch.Generator().manual_seed(2))
    assert sum(transfer.few_shot_accuracy(noise, labels, 4, shots=3, episodes=10)) / 10 < 0.45  # chance is 0.25


def test_offline_transfer_sets():
    faces, digits = transfer.lfw_faces(), transfer.digits()
    assert faces.images.shape == (200, 3, 32, 32) and faces.images.dtype == torch.uint8
    assert faces.class_counts() == [100, 100] and faces.classes == ["non-face", "face"]
    assert digits.images.shape == (1797, 3, 32, 32) and digits.class_counts()[0] == 178
    assert faces.images.max() > 200 and faces.images.float().mean() > 50  # scaled to [0, 255], not left in [0, 1]
    assert digits.images[:, :, 0, 0].float().mean() > 200  # white paper, dark ink
    assert digits.images.float().mean() > 128


def test_gap_closed():
    assert transfer.gap_closed(0.5, 0.5, 0.7) == 0
    assert transfer.gap_closed(0.7, 0.5, 0.7) == 1
    assert transfer.gap_closed(0.55, 0.5, 0.7) == pytest.approx(0.25)
    assert transfer.gap_closed(0.45, 0.5, 0.7) < 0


def test_weights_fingerprint_follows_the_weights_not_the_object():
    torch.manual_seed(0)
    encoder = build_encoder("small")
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    assert transfer.weights_fingerprint(encoder.state_dict()) == transfer.weights_fingerprint(state)
    state[next(k for k in state if k.endswith("weight"))].view(-1)[0] += 1e-6
    assert transfer.weights_fingerprint(encoder.state_dict()) != transfer.weights_fingerprint(state)


def tiny_sets():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat(40)
    train = ImageSet(random_images(160, seed=1), labels, ["a", "b", "c", "d"])
    test = ImageSet(random_images(80, seed=2), labels[:80].clone(), ["a", "b", "c", "d"])
    return train, test, {"tiny": ImageSet(random_images(40, seed=3), torch.arange(2).repeat(20), ["x", "y"])}


def test_load_or_evaluate_stores_rows_and_only_reuses_them_for_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    profile = dataclasses.replace(CLASS, probe_train_images=0, knn_k=10)
    protocol = {**transfer.PROTOCOL, "draws": 1, "episodes": 2, "shots": 2, "label_fractions": [0.25, 1.0]}
    train, test, sets = tiny_sets()
    torch.manual_seed(0)
    encoder = build_encoder("small").eval()
    first = transfer.load_or_evaluate("tiny", encoder, train, test, profile, sets, protocol=protocol)
    assert first["source"] == "evaluated" and 1 <= first["stage"] <= 4
    assert set(first["label_efficiency"]) == {"0.25", "1.0"} and set(first["transfer"]) == {"tiny"}
    stored = json.loads((tmp_path / "checkpoints" / "class" / transfer.TABLE_FILE).read_text())
    assert stored["protocol"] == protocol and "tiny" in stored["rows"]
    second = transfer.load_or_evaluate("tiny", encoder, train, test, profile, sets, protocol=protocol)
    assert second["source"].endswith(transfer.TABLE_FILE) and second["knn"] == first["knn"]
    with torch.no_grad():
        next(encoder.parameters()).mul_(2)
    assert transfer.load_or_evaluate("tiny", encoder, train, test, profile, sets, protocol=protocol)["source"] == "evaluated"
    changed = {**protocol, "episodes": 3}
    assert transfer.load_or_evaluate("tiny", encoder, train, test, profile, sets, protocol=changed)["source"] == "evaluated"


def test_stored_tables_look_in_the_users_table_first_and_filter_protocol_and_data(tmp_path, monkeypatch):
    mine, shipped = tmp_path / "data", tmp_path / "shipped"
    monkeypatch.setenv("SSLTEACH_DATA", str(mine))
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(shipped))
    monkeypatch.delenv("SSLTEACH_RETRAIN", raising=False)
    here, there = {"test_split": "carved", "n": 1}, {"test_split": "official", "n": 2}
    for folder, data in ((mine / "checkpoints", here), (shipped, there)):
        (folder / "class").mkdir(parents=True)
        transfer.write_table(folder / "class" / "t.json", {"protocol": {"p": 1}, "data": data, "rows": {}})
    found = [(path.parent.parent, measured_on) for path, _, measured_on in transfer.stored_tables("class", "t.json", {"p": 1})]
    assert found == [(mine / "checkpoints", here), (shipped, there)]
    assert [m for *_, m in transfer.stored_tables("class", "t.json", {"p": 1}, data=there)] == [there]
    assert list(transfer.stored_tables("class", "t.json", {"p": 2})) == []
    monkeypatch.setenv("SSLTEACH_RETRAIN", "1")  # retraining: the shipped table is not looked at
    assert [m for *_, m in transfer.stored_tables("class", "t.json", {"p": 1})] == [here]


def test_a_damaged_table_is_named(tmp_path):
    path = tmp_path / transfer.TABLE_FILE
    path.write_text('{"rows": {"x": ')
    with pytest.raises(ValueError, match="course_table.json"):
        transfer.read_table(path)


def test_raw_pixels_go_through_the_same_protocol(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    profile = dataclasses.replace(CLASS, probe_train_images=0, knn_k=10)
    protocol = {**transfer.PROTOCOL, "draws": 1, "episodes": 2, "shots": 2}
    train, test, sets = tiny_sets()
    row = transfer.load_or_evaluate("raw pixels", None, train, test, profile, sets, protocol=protocol)
    assert row["stage"] == 1 and row["fingerprint"] is None


def test_the_shipped_table_measured_the_shipped_checkpoints():
    """checkpoints/class/course_table.json has a row for raw pixels and every method, each measured
    on the weights of the checkpoint that ships beside it (retraining a method without running
    `python -m sslteach.transfer` again fails here)."""
    folder = SHIPPED_CHECKPOINTS / "class"
    table = json.loads((folder / transfer.TABLE_FILE).read_text())
    assert table["protocol"] == transfer.PROTOCOL
    assert table["profile_settings"] == CLASS.settings(("name", *TRAINING_SETTINGS, *EVALUATION_SETTINGS))
    assert set(table["rows"]) == {"raw pixels", *METHODS}
    for method in METHODS:
        encoder = encoder_from_checkpoint(load_checkpoint(folder / f"{method}.pt", checksum_required=True), "cpu")
        assert table["rows"][method]["fingerprint"] == transfer.weights_fingerprint(encoder.state_dict()), method
