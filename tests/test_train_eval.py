"""Tests of sslteach.methods, sslteach.train, sslteach.evaluate and sslteach.checkpoint.

Tiny synthetic data throughout: a few-step smoke run of every method under both profiles
(the full profile's ResNet-18 and mixed-precision path included, on the CPU), reference loops
for kNN, scikit-learn for the linear probe, and the two command lines end to end.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import torch
import torch.nn.functional as F

from sslteach import checkpoint as checkpoint_module
from sslteach import methods as methods_module
from sslteach import train as train_module
from sslteach.augment import to_float
from sslteach.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint
from sslteach.data import CLASSES, ImageSet, save_image_set
from sslteach.encoders import small_convnet
from sslteach.evaluate import (
    WEIGHT_DECAYS,
    choose_weight_decay,
    evaluate_encoder,
    extract_block_features,
    extract_features,
    fit_linear_probe,
    knn_predict,
)
from sslteach.profiles import CLASS, FULL
from sslteach.rotation import VIEWS as ROTATION_VIEWS
from sslteach.checkpoint import encoder_from_checkpoint
from sslteach.loop import Classifier, fit, recompute_batchnorm, supervised_loss, warmup_cosine
from sslteach.methods import METHODS, encoder_name, load_or_pretrain, pretrain
from helpers import random_images, tiny_profile

# Few-step versions of the two profiles. The full one keeps resnet18 and mixed_precision=True:
# on the CPU autocast is switched off by design, so this is the full profile's code path.
TINY_CLASS = tiny_profile(steps=2, batch_size=16)
TINY_FULL = tiny_profile(steps=2, batch_size=8, base=FULL)


pytestmark = pytest.mark.usefixtures("one_thread")


def colour_task(N=64, S=16):
    """Two classes told apart by colour alone: reddish (label 0) and bluish (label 1) noise."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(N) % 2
    x = 0.5 * torch.rand(N, 3, S, S, generator=g)
    x[labels == 0, 0] += 0.5
    x[labels == 1, 2] += 0.5
    return (255 * x).to(torch.uint8), labels


# ----------------------------------------------------------------------------- schedule


def test_warmup_cosine_values():
    warmup, total = 10, 110
    assert warmup_cosine(0, warmup, total) == pytest.approx(0.1)
    assert warmup_cosine(4, warmup, total) == pytest.approx(0.5)
    assert warmup_cosine(warmup - 1, warmup, total) == pytest.approx(1.0)  # end of warm-up
    assert warmup_cosine(warmup, warmup, total) == pytest.approx(1.0)  # cosine starts at 1
    assert warmup_cosine(60, warmup, total) == pytest.approx(0.5)  # halfway through the cosine
    assert warmup_cosine(total, warmup, total) == pytest.approx(0.0, abs=1e-12)
    values = [warmup_cosine(s, warmup, total) for s in range(warmup, total + 1)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # decays monotonically


def test_warmup_cosine_without_warmup():
    assert warmup_cosine(0, 0, 100) == pytest.approx(1.0)
    assert warmup_cosine(100, 0, 100) == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- fit


def train_colour_classifier(seed=0, steps=10):
    images, labels = colour_task()
    torch.manual_seed(0)
    model = Classifier(small_convnet((8, 16)), 2)
    profile = dataclasses.replace(CLASS, steps=steps, batch_size=32, warmup_steps=2)
    history = fit(model, supervised_loss, images, labels, profile, images_per_step=32, seed=seed)
    return model, history


def test_fit_learns_an_easy_task():
    model, history = train_colour_classifier()
    assert len(history["loss"]) == 10 and len(history["accuracy"]) == 10
    assert history["images_seen"] == 10 * 32 and history["seconds"] > 0
    assert sum(history["loss"][-3:]) / 3 < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.9


def test_fit_is_deterministic_for_a_seed():
    first, h1 = train_colour_classifier(seed=0, steps=3)
    second, h2 = train_colour_classifier(seed=0, steps=3)
    other, _ = train_colour_classifier(seed=1, steps=3)
    assert h1["loss"] == h2["loss"]
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, b) for a, b in zip(first.state_dict().values(), other.state_dict().values()))


def test_fit_hands_the_loss_state_to_after_step_after_the_optimiser_step():
    """A loss returning (loss, metrics, state) has ``after_step(state)`` called once per step,
    after the weights moved; a loss returning (loss, metrics) gets ``after_step()``."""
    images, labels = colour_task()
    profile = dataclasses.replace(CLASS, steps=3, batch_size=8, warmup_steps=1)
    torch.manual_seed(0)
    model = Classifier(small_convnet((8, 16)), 2)
    seen = []

    def loss_with_state(model, batch, batch_labels, generator):
        loss, metrics = supervised_loss(model, batch, batch_labels, generator)
        return loss, metrics, (batch_labels, model.head.weight.detach().clone())

    def after_step(state):
        batch_labels, weight_in_loss = state
        seen.append(batch_labels)
        assert not torch.equal(model.head.weight, weight_in_loss)  # called after the optimiser step

    history = fit(model, loss_with_state, images, labels, profile, images_per_step=8, after_step=after_step)
    assert len(seen) == 3 and all(s.shape == (8,) for s in seen) and len(history["loss"]) == 3
    calls = []
    fit(model, supervised_loss, images, labels, profile, images_per_step=8, after_step=lambda: calls.append(1))
    assert calls == [1, 1, 1]


# ----------------------------------------------------------------------------- pretrain smoke


# Images per example of each method that does not use one image per batch entry: rotation and
# jigsaw put 4 examples of each image in a batch, the two-view methods 2 (PIRL: a view and 9 tiles).
IMAGES_PER_EXAMPLE = {"rotation": 4, "jigsaw": 4, "jigsaw-10": 4, "jigsaw-1000": 4,
                      "simclr": 2, "simclr-no-color": 2, "swav": 2, "pirl": 2}


@pytest.mark.parametrize("profile", [TINY_CLASS, TINY_FULL], ids=["class", "full"])
@pytest.mark.parametrize("method", METHODS)
def test_pretrain_smoke(method, profile, monkeypatch, tmp_path):
    autocast_flags = []
    real_autocast = torch.autocast

    def spy_autocast(device_type, *args, **kwargs):
        autocast_flags.append((device_type, kwargs.get("enabled", True)))
        return real_autocast(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy_autocast)
    images, labels = random_images(N=16), torch.arange(16) % 10
    checkpoint = pretrain(method, images, labels, profile, num_classes=10, seed=0)

    assert checkpoint["method"] == method and checkpoint["profile"] == profile.name
    # the profile's encoder, or for split-brain its split version
    assert checkpoint["encoder_name"] == encoder_name(method, profile) == (f"split-{profile.encoder}" if method == "split-brain" else profile.encoder)
    history = checkpoint["history"]
    if method == "random-init":
        assert checkpoint["head"] is None
        assert history["images_seen"] == 16
    else:
        per_step = profile.batch_size // IMAGES_PER_EXAMPLE.get(method, 1)
        assert history["images_seen"] == profile.steps * per_step
        assert len(history["loss"]) == profile.steps
        assert all(math.isfinite(v) for v in history["loss"])
        if method in ("rotation", "supervised"):  # colorization's head is convolutional (test_colorizer.py)
            assert checkpoint["head"]["weight"].shape[0] == (4 if method == "rotation" else 10)
        # Mixed precision is asked for by the full profile, but autocast stays off on the CPU
        # (colorization also switches it off explicitly around its Lab conversion).
        assert set(autocast_flags) == {("cpu", False)}

    # The checkpoint survives a save and a weights-only load, and rebuilds the same encoder.
    path = save_checkpoint(tmp_path / "c.pt", checkpoint)
    loaded = load_checkpoint(path)
    x = to_float(images[:2])
    encoder = encoder_from_checkpoint(checkpoint)
    rebuilt = encoder_from_checkpoint(loaded)
    assert not rebuilt.training
    with torch.no_grad():
        features = rebuilt(x)
        assert features.shape == (2, rebuilt.feature_dim) and torch.isfinite(features).all()
        torch.testing.assert_close(features, encoder(x))


def test_pretrain_is_deterministic():
    images, labels = random_images(N=12), torch.arange(12) % 10
    a = pretrain("rotation", images, labels, TINY_CLASS, seed=3)
    b = pretrain("rotation", images, labels, TINY_CLASS, seed=3)
    assert a["history"]["loss"] == b["history"]["loss"]
    assert all(torch.equal(a["encoder"][k], b["encoder"][k]) for k in a["encoder"])


def test_pretrain_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        pretrain("exemplar-cnn", random_images(N=4), torch.zeros(4, dtype=torch.long), TINY_CLASS)


# ----------------------------------------------------------------------------- BatchNorm statistics


@pytest.mark.parametrize("N, batch_size", [(24, 512), (48, 16)], ids=["one batch", "equal batches"])
def test_recompute_batchnorm_matches_direct_statistics(N, batch_size):
    torch.manual_seed(0)
    encoder = small_convnet((8, 16))
    images = random_images(N=N, S=16)
    recompute_batchnorm(encoder, images, batch_size=batch_size)
    conv, bn = encoder.blocks[0][0], encoder.blocks[0][1]
    with torch.no_grad():
        h = conv(encoder.normalize(to_float(images)))  # the first BatchNorm's input, (N, 8, 16, 16)
    torch.testing.assert_close(bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-5)
    if N <= batch_size:  # one batch: BatchNorm stores the unbiased variance of that batch
        torch.testing.assert_close(bn.running_var, h.var(dim=(0, 2, 3)), atol=1e-5, rtol=1e-4)
    assert not encoder.training and bn.momentum == 0.1


def test_recompute_batchnorm_uses_at_most_max_images():
    torch.manual_seed(0)
    images = random_images(N=20, S=16)
    a = recompute_batchnorm(small_convnet((8, 16)), images, max_images=10)
    torch.manual_seed(0)
    b = recompute_batchnorm(small_convnet((8, 16)), images[:10])
    torch.testing.assert_close(a.blocks[0][1].running_mean, b.blocks[0][1].running_mean)


# ----------------------------------------------------------------------------- checkpoints


def small_checkpoint():
    torch.manual_seed(0)
    return {
        "method": "rotation",
        "profile": "class",
        "encoder_name": "small",
        "encoder": small_convnet((4, 8)).state_dict(),
        "head": None,
        "seed": 0,
        "history": {"loss": [1.5, 1.25], "seconds": 0.5, "images_seen": 8},
    }


def test_checkpoint_round_trip(tmp_path):
    checkpoint = small_checkpoint()
    path = save_checkpoint(tmp_path / "new" / "folder" / "c.pt", checkpoint)
    assert path.is_file()
    assert sorted(os.listdir(path.parent)) == ["SHA256SUMS", "c.pt"]  # no temporary file left
    loaded = load_checkpoint(path)
    assert loaded["format"] == FORMAT_VERSION
    assert loaded["history"] == checkpoint["history"] and loaded["head"] is None
    assert loaded["encoder"].keys() == checkpoint["encoder"].keys()
    assert all(torch.equal(loaded["encoder"][k], v) for k, v in checkpoint["encoder"].items())
    # Plain data only: it opens with weights_only=True without our helper too.
    assert torch.load(path, weights_only=True)["method"] == "rotation"


def test_failed_save_leaves_nothing(tmp_path):
    path = tmp_path / "c.pt"
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, {"not data": lambda: None})  # torch cannot pickle a lambda
    assert os.listdir(tmp_path) == []


def test_failed_rename_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", small_checkpoint())
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {**small_checkpoint(), "method": "supervised"})
    assert sorted(os.listdir(tmp_path)) == ["SHA256SUMS", "c.pt"]
    assert path.read_bytes() == before


def test_load_checkpoint_refuses_code_and_wrong_format(tmp_path):
    torch.save({"format": FORMAT_VERSION, "path": PurePosixPath("x")}, tmp_path / "object.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(tmp_path / "object.pt")
    torch.save({"format": 99}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="format 99"):
        load_checkpoint(tmp_path / "old.pt")


def test_save_records_a_checksum_that_sha256sum_accepts_and_load_verifies(tmp_path):
    first = save_checkpoint(tmp_path / "a.pt", small_checkpoint())
    save_checkpoint(tmp_path / "b.pt", {**small_checkpoint(), "method": "supervised"})
    save_checkpoint(first, {**small_checkpoint(), "seed": 3})  # replaces a's entry, keeps b's
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["a.pt", "b.pt"]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert load_checkpoint(first)["seed"] == 3

    damaged = bytearray(first.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    first.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match=r"a\.pt is damaged"):
        load_checkpoint(first)
    torch.save({"format": FORMAT_VERSION}, tmp_path / "unlisted.pt")
    assert load_checkpoint(tmp_path / "unlisted.pt") == {"format": FORMAT_VERSION}
    with pytest.raises(CheckpointError, match="not listed"):
        load_checkpoint(tmp_path / "unlisted.pt", checksum_required=True)


def test_load_checkpoint_names_a_truncated_file(tmp_path):
    path = tmp_path / "c.pt"
    torch.save(small_checkpoint(), path)  # unlisted, so only the reading can fail
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"c\.pt is not a readable checkpoint"):
        load_checkpoint(path)


def test_load_or_pretrain_uses_the_shipped_checkpoint_and_checks_it(tmp_path, monkeypatch):
    images, labels = random_images(N=8), torch.arange(8) % 10
    shipped = tmp_path / "shipped"
    made = load_or_pretrain("rotation", images, labels, TINY_CLASS, path=shipped / "class" / "rotation.pt")
    assert made["source"] == "trained"
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(shipped))
    calls = []
    real_pretrain = methods_module.pretrain
    monkeypatch.setattr(methods_module, "pretrain", lambda *a, **k: calls.append(a[0]) or real_pretrain(*a, **k))

    data_path = tmp_path / "data" / "checkpoints" / "class" / "rotation.pt"
    loaded = load_or_pretrain("rotation", images, labels, TINY_CLASS, path=data_path)
    assert calls == [] and loaded["source"] == str(shipped / "class" / "rotation.pt")
    assert all(torch.equal(loaded["encoder"][k], v) for k, v in made["encoder"].items())
    assert not data_path.exists()  # nothing is copied; the shipped file is read in place

    # A shipped file must be listed in its SHA256SUMS and match it.
    sums = shipped / "class" / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("rotation.pt", "other.pt"))
    with pytest.raises(CheckpointError, match="not listed"):
        load_or_pretrain("rotation", images, labels, TINY_CLASS, path=data_path)
    sums.write_text("0" * 64 + "  rotation.pt\n")
    with pytest.raises(CheckpointError, match="damaged"):
        load_or_pretrain("rotation", images, labels, TINY_CLASS, path=data_path)

    # SSLTEACH_RETRAIN=1 ignores the shipped files: the lecture trains its own and saves it.
    monkeypatch.setenv("SSLTEACH_RETRAIN", "1")
    assert load_or_pretrain("rotation", images, labels, TINY_CLASS, path=data_path)["source"] == "trained"
    assert calls == ["rotation"] and data_path.is_file()
    # Its own checkpoint now comes first, retrain or not.
    monkeypatch.delenv("SSLTEACH_RETRAIN")
    assert load_or_pretrain("rotation", images, labels, TINY_CLASS, path=data_path)["source"] == str(data_path)


def test_train_all_trains_each_method_once_with_checksums(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    save_image_set(tiny_image_set(64, seed=1, provenance={"dataset": "cifar10"}), data / "cifar10" / "train.pt")
    save_image_set(tiny_image_set(20, seed=2, provenance={"test_split": "tiny test split"}), data / "cifar10" / "test.pt")
    monkeypatch.setenv("SSLTEACH_DATA", str(data))
    monkeypatch.setenv("SSLTEACH_DEVICE", "cpu")
    monkeypatch.delenv("SSLTEACH_PROFILE", raising=False)
    monkeypatch.setattr(train_module, "METHODS", ("random-init", "rotation"))
    train_module.main(["all", "--steps", "1"])
    folder = data / "checkpoints" / "class"
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "random-init.pt", "rotation.pt"]
    recorded = load_checkpoint(folder / "rotation.pt")["data"]  # the fingerprint of what it trained on
    assert recorded["dataset"] == "cifar10" and recorded["test_split"] == "tiny test split"
    assert (recorded["train_images"], recorded["test_images"]) == (64, 20)
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder).returncode == 0
    capsys.readouterr()

    train_module.main(["all", "--steps", "1"])  # a second run finds both up to date
    assert capsys.readouterr().out.count("up to date") == 2
    train_module.main(["all", "--steps", "2"])  # another budget is another run: both retrained
    assert "up to date" not in capsys.readouterr().out
    assert load_checkpoint(folder / "rotation.pt")["profile_settings"]["steps"] == 2


def test_load_or_pretrain_trains_once_then_loads(tmp_path, monkeypatch):
    images, labels = random_images(N=8), torch.arange(8) % 10
    path = tmp_path / "rotation.pt"
    first = load_or_pretrain("rotation", images, labels, TINY_CLASS, path=path)
    assert path.is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("pretrain called although the checkpoint exists")

    monkeypatch.setattr(methods_module, "pretrain", no_training)
    second = load_or_pretrain("rotation", images, labels, TINY_CLASS, path=path)
    assert second["history"] == first["history"]
    assert all(torch.equal(second["encoder"][k], v) for k, v in first["encoder"].items())
    # A checkpoint of another method (or profile) at the path is not reused.
    with pytest.raises(AssertionError, match="pretrain called"):
        load_or_pretrain("supervised", images, labels, TINY_CLASS, path=path)


# ----------------------------------------------------------------------------- kNN


def knn_reference(train_features, train_labels, test_features, num_classes, k, temperature):
    """Wu et al. (2018)'s weighted vote, one query at a time with Python lists."""
    predictions = []
    for query in test_features:
        sims = [F.cosine_similarity(query, f, dim=0).item() for f in train_features]
        nearest = sorted(range(len(sims)), key=lambda j: -sims[j])[:k]
        votes = [0.0] * num_classes
        for j in nearest:
            votes[train_labels[j].item()] += math.exp(sims[j] / temperature)
        predictions.append(max(range(num_classes), key=lambda c: votes[c]))
    return torch.tensor(predictions)


@pytest.mark.parametrize("k, temperature", [(1, 0.1), (5, 0.1), (7, 0.5), (1000, 0.2)])
def test_knn_predict_matches_reference_loop(k, temperature):
    g = torch.Generator().manual_seed(k)
    train_f, test_f = torch.randn(40, 6, generator=g), torch.randn(15, 6, generator=g)
    train_y = torch.randint(0, 3, (40,), generator=g)
    got = knn_predict(train_f, train_y, test_f, num_classes=3, k=k, temperature=temperature, chunk=4)
    assert torch.equal(got, knn_reference(train_f, train_y, test_f, 3, k, temperature))


def test_knn_with_k1_returns_the_label_of_the_same_point():
    g = torch.Generator().manual_seed(0)
    features, labels = torch.randn(30, 5, generator=g), torch.randint(0, 4, (30,), generator=g)
    assert torch.equal(knn_predict(features, labels, 3 * features, num_classes=4, k=1, temperature=0.1), labels)


# ----------------------------------------------------------------------------- linear probe


def blobs(n, seed):
    """Three overlapping Gaussian classes in 10 dimensions (about 90% separable)."""
    centres = torch.randn(3, 10, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    return centres[labels] + 1.5 * torch.randn(n, 10, generator=g), labels


@pytest.mark.parametrize("weight_decay", [1e-2, 1.0])
def test_linear_probe_agrees_with_sklearn(weight_decay):
    from sklearn.linear_model import LogisticRegression

    train_x, train_y = blobs(300, seed=1)
    test_x, test_y = blobs(300, seed=2)
    probe = fit_linear_probe(train_x, train_y, num_classes=3, weight_decay=weight_decay)
    ours = probe(test_x)

    # The same objective: mean cross-entropy + wd / 2 ||W||^2 is sklearn's with C = 1 / (N wd),
    # on features standardised the same way (lbfgs is multinomial for several classes).
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    sk = LogisticRegression(C=1 / (len(train_x) * weight_decay), solver="lbfgs", max_iter=1000, tol=1e-8)
    sk.fit(((train_x - mean) / std).numpy(), train_y.numpy())
    sk_test = ((test_x - mean) / std).numpy()
    theirs = torch.from_numpy(sk.predict(sk_test))

    ours_acc = (ours.argmax(1) == test_y).float().mean().item()
    theirs_acc = (theirs == test_y).float().mean().item()
    assert 0.7 < theirs_acc < 1.0  # a problem where the probe matters
    assert abs(ours_acc - theirs_acc) <= 0.02
    assert (ours.argmax(1) == theirs).float().mean() > 0.95
    probabilities = torch.from_numpy(sk.predict_proba(sk_test)).float()
    torch.testing.assert_close(ours.softmax(1), probabilities, atol=5e-3, rtol=0)


def test_choose_weight_decay_returns_a_candidate():
    x, y = blobs(100, seed=3)
    assert choose_weight_decay(x, y, num_classes=3) in WEIGHT_DECAYS
    probe = fit_linear_probe(x, y, num_classes=3)  # weight decay chosen inside
    assert probe(x).shape == (100, 3)


# ----------------------------------------------------------------------------- evaluate_encoder


def tiny_image_set(N, seed, provenance=None):
    return ImageSet(random_images(N, seed=seed), torch.arange(N) % 10, list(CLASSES), provenance or {})


def test_evaluate_encoder_keys_and_ranges():
    torch.manual_seed(0)
    encoder = small_convnet((8, 16)).eval()
    train_set, test_set = tiny_image_set(40, seed=1), tiny_image_set(20, seed=2)
    profile = dataclasses.replace(CLASS, probe_train_images=30, test_images=0)
    scores = evaluate_encoder(encoder, train_set, test_set, profile)
    assert set(scores) == {"knn", "linear_probe", "train_images", "test_images"}
    assert scores["train_images"] == 30 and scores["test_images"] == 20
    assert 0 <= scores["knn"] <= 1 and 0 <= scores["linear_probe"] <= 1


def test_block_features_agree_with_single_block_extraction():
    torch.manual_seed(0)
    encoder = small_convnet((8, 16)).eval()
    images = random_images(6)
    blocks = extract_block_features(encoder, images, batch_size=4)
    assert [tuple(f.shape) for f in blocks] == [(6, 8 * 4), (6, 16 * 4)]
    for i, features in enumerate(blocks):
        torch.testing.assert_close(extract_features(encoder, images, block=i), features)
    assert extract_features(encoder, images).shape == (6, 16)


# ----------------------------------------------------------------------------- command lines


def run_cli(args, cwd, data):
    env = {**os.environ, "SSLTEACH_DATA": str(data), "SSLTEACH_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    env.pop("SSLTEACH_PROFILE", None)
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_train_and_evaluate_command_lines(tmp_path):
    data = tmp_path / "data"
    save_image_set(tiny_image_set(64, seed=1), data / "cifar10" / "train.pt")
    save_image_set(tiny_image_set(20, seed=2, provenance={"test_split": "tiny test split"}), data / "cifar10" / "test.pt")

    out = run_cli(["sslteach.train", "random-init", "--profile", "class", "--out", "tmp/x.pt"], tmp_path, data)
    assert "random-init" in out and (tmp_path / "tmp" / "x.pt").is_file()
    run_cli(["sslteach.train", "rotation", "--profile", "class", "--steps", "2", "--out", "tmp/r.pt"], tmp_path, data)
    assert load_checkpoint(tmp_path / "tmp" / "r.pt")["history"]["images_seen"] == 2 * CLASS.images_per_step(ROTATION_VIEWS)

    line = run_cli(["sslteach.evaluate", "tmp/x.pt"], tmp_path, data).strip().splitlines()[-1]
    report = json.loads(line)
    expected = {"method", "profile", "images_seen", "seconds", "knn_accuracy", "linear_probe_accuracy", "test_split"}
    assert expected <= set(report)
    assert report["method"] == "random-init" and report["profile"] == "class"
    assert report["images_seen"] == 64 and report["test_split"] == "tiny test split"
    assert 0 <= report["knn_accuracy"] <= 1 and 0 <= report["linear_probe_accuracy"] <= 1


def test_fit_refuses_a_dataset_smaller_than_one_batch():
    model = Classifier(small_convnet(), 10)
    profile = dataclasses.replace(CLASS, steps=1, batch_size=8, warmup_steps=1)
    with pytest.raises(ValueError, match="cannot fill a batch"):
        fit(model, supervised_loss, random_images(N=4), torch.zeros(4, dtype=torch.long), profile, images_per_step=8)


def test_load_or_pretrain_retrains_when_the_profile_changed(tmp_path, monkeypatch):
    calls = []

    def fake_pretrain(method, images, labels, profile, num_classes=10, seed=0, data=None):
        calls.append(profile.steps)
        return {"method": method, "profile": profile.name, "profile_settings": dataclasses.asdict(profile),
                "seed": seed, "encoder": {}, "history": {}}

    monkeypatch.setattr(methods_module, "pretrain", fake_pretrain)
    path = tmp_path / "c.pt"
    images, labels = random_images(N=4), torch.zeros(4, dtype=torch.long)
    for steps in (3, 3, 5):
        methods_module.load_or_pretrain("rotation", images, labels, dataclasses.replace(CLASS, steps=steps), path=path)
    assert calls == [3, 5]  # the second call loaded; the edited profile retrained


def test_knn_check_accepts_the_package_and_names_each_usual_mistake(capsys):
    from sslteach.checks import ExerciseError, check_knn
    from sslteach.checks.lecture00_introduction import _knn_variant

    check_knn(knn_predict)
    assert "correct" in capsys.readouterr().out
    for variant, advice in [({"normalise": False}, "normalised"), ({"weighted": False}, "one vote"),
                            ({"nearest": False}, "least")]:
        with pytest.raises(ExerciseError, match=advice):
            check_knn(lambda a, b, c, d, k, t, v=variant: _knn_variant(a, b, c, d, k, t, **v))
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        check_knn(lambda *args: (_ for _ in ()).throw(NotImplementedError))
