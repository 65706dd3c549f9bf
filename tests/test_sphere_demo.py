"""Tests of sslteach.sphere_demo and sslteach.sphere_figures (lecture 07): the view recipes, the
measurement protocol, the heads trained on the circle, the checkpoint look-up, and the widgets."""
from __future__ import annotations

import dataclasses
import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from helpers import random_images, tiny_profile
from sslteach.augment import simclr_augment
from sslteach.checkpoint import save_checkpoint
from sslteach.contrastive import nt_xent
from sslteach.data.store import ImageSet
from sslteach.encoders import small_convnet
from sslteach.hypersphere import align_uniform_loss, alignment, uniformity
from sslteach.profiles import CLASS
from sslteach.sphere_demo import (
    HeadSettings, Measured, MeasureSettings, ViewRecipe, encoder_features, measure, measure_settings,
    measurement_images, train_head, uniform_points, view_features,
)
from sslteach.methods import find_run

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")


def test_default_recipe_is_simclr_augment_draw_for_draw():
    images = random_images(6)
    torch.testing.assert_close(ViewRecipe()(images, torch.Generator().manual_seed(3)),
                               simclr_augment(images, generator=torch.Generator().manual_seed(3)))


def test_recipe_without_crop_or_colour_is_the_image():
    images = random_images(4)
    torch.testing.assert_close(ViewRecipe(None, 0)(images), images.float() / 255)


def test_weaker_recipes_keep_more_of_the_image():
    images = random_images(64)
    g = torch.Generator().manual_seed(0)

    def change(recipe):
        return (recipe(images, g) - images.float() / 255).abs().mean().item()

    assert change(ViewRecipe((0.9, 1.0), 0)) < change(ViewRecipe((0.9, 1.0), 1.0))
    assert change(ViewRecipe((0.9, 1.0), 0)) < change(ViewRecipe((0.02, 0.08), 0))


def image_sets(n_train=40, n_test=30):
    train = ImageSet(random_images(n_train, seed=1), torch.arange(n_train) % 10, [str(i) for i in range(10)], {})
    test = ImageSet(random_images(n_test, seed=2), torch.arange(n_test) % 10, [str(i) for i in range(10)], {})
    return train, test


def test_measurement_images_are_the_prefixes_and_seeded_views():
    train, test = image_sets()
    settings = MeasureSettings(bank_images=20, test_images=10, pair_images=6, knn_k=5, knn_temperature=0.1)
    a, b = measurement_images(train, test, settings), measurement_images(train, test, settings)
    assert a.bank.shape == (20, 3, 32, 32) and torch.equal(a.bank_labels, train.labels[:20])
    assert a.test.shape == (10, 3, 32, 32) and a.views.shape == (6, 2, 3, 32, 32)
    torch.testing.assert_close(a.views, b.views)  # every encoder sees the very same views
    assert not torch.allclose(a.views[:, 0], a.views[:, 1])  # two different views


def test_encoder_features_apply_the_encoder_to_every_part():
    train, test = image_sets()
    images = measurement_images(train, test, MeasureSettings(bank_images=20, test_images=10, pair_images=6, knn_k=5, knn_temperature=0.1))
    torch.manual_seed(0)
    encoder = small_convnet((4, 8)).eval()
    features = encoder_features(encoder, images)
    assert features.bank.shape == (20, 8) and features.test.shape == (10, 8) and features.views.shape == (6, 2, 8)
    with torch.no_grad():
        torch.testing.assert_close(features.views[:, 1], encoder(images.views[:, 1]))


def measured(bank, bank_labels, test, test_labels, views, k=5):
    """A protocol of given features, with a k-neighbour kNN (temperature 0.1, as the profiles')."""
    settings = MeasureSettings(len(bank), len(test), len(views), knn_k=k, knn_temperature=0.1)
    return Measured(bank, bank_labels, test, test_labels, views, settings)


def test_measure_settings_come_from_the_profile():
    settings = measure_settings(CLASS)
    assert (settings.bank_images, settings.test_images, settings.pair_images) == (5_000, 1_000, 500)
    assert (settings.knn_k, settings.knn_temperature) == (CLASS.knn_k, CLASS.knn_temperature)


def test_measure_collapse_and_scale_invariance():
    x = torch.ones(50, 4)
    labels = torch.arange(50) % 2
    collapsed = measure(measured(x, labels, x[:10], labels[:10], torch.stack([x, x], 1)), num_classes=2)
    assert collapsed["alignment"] == pytest.approx(0, abs=1e-6) and collapsed["uniformity"] == pytest.approx(0, abs=1e-6)
    z = uniform_points(200, 3)
    y = uniform_points(200, 3, seed=1)
    m = measure(measured(z, labels.repeat(4), z[:20], labels[:20], torch.stack([z, y], 1)), num_classes=2)
    scaled = measure(measured(7 * z, labels.repeat(4), 3 * z[:20], labels[:20], torch.stack([5 * z, 0.1 * y], 1)), num_classes=2)
    assert m == pytest.approx(scaled, abs=1e-5)  # features are normalised first
    assert m["alignment"] == pytest.approx(alignment(z, y).item(), abs=1e-6)
    assert m["uniformity"] == pytest.approx(((uniformity(z) + uniformity(y)) / 2).item(), abs=1e-6)


def test_measure_knn_separates_separable_classes():
    labels = torch.arange(100) % 2
    features = F.one_hot(labels, 4).float() + 0.01 * torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    m = measure(measured(features, labels, features, labels, torch.stack([features, features], 1), k=10), num_classes=2)
    assert m["knn"] == 1.0


def test_view_features_shape_and_distinct_views():
    torch.manual_seed(0)
    encoder = small_convnet((4, 8)).eval()
    bank = view_features(encoder, random_images(5), ViewRecipe(), views=3, generator=torch.Generator().manual_seed(0))
    assert bank.shape == (5, 3, 8)
    assert not torch.allclose(bank[:, 0], bank[:, 1])


def synthetic_bank(N=200, V=3, D=16, noise=0.3, seed=0):
    """N 'images' with V noisy views each, in D dimensions, and a probe built the same way."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(N, 1, D, generator=g)
    bank = centres + noise * torch.randn(N, V, D, generator=g)
    labels = torch.arange(N) % 4
    probe = measured(bank[:, 0], labels, bank[:50, 1], labels[:50], bank[:50, :2])
    return bank, probe


SMOKE = HeadSettings(steps=100, batch_size=64, hidden_dim=32, lr=1e-2)


def test_alignment_alone_collapses_and_uniformity_alone_spreads():
    bank, probe = synthetic_bank()
    _, aligned = train_head(bank, lambda a, b: align_uniform_loss(a, b, uniform_weight=0), SMOKE, [SMOKE.steps], probe)
    _, spread = train_head(bank, lambda a, b: align_uniform_loss(a, b, align_weight=0), SMOKE, [SMOKE.steps], probe)
    collapsed, uniform = measure(aligned["snapshots"][SMOKE.steps], 4), measure(spread["snapshots"][SMOKE.steps], 4)
    assert collapsed["uniformity"] > -0.1 and collapsed["alignment"] < 0.05
    assert uniform["uniformity"] < -1.4  # close to the circle's -1.58


def test_contrastive_head_pulls_pairs_together_and_spreads():
    bank, probe = synthetic_bank()
    _, history = train_head(bank, lambda a, b: nt_xent(a, b, 0.5), SMOKE, [0, SMOKE.steps], probe)
    before, after = measure(history["snapshots"][0], 4), measure(history["snapshots"][SMOKE.steps], 4)
    assert after["alignment"] < before["alignment"]
    assert after["uniformity"] < -1.0
    assert history["loss"][-1] < history["loss"][0]


def test_train_head_is_deterministic_and_reports_snapshots():
    bank, probe = synthetic_bank()
    seen = []
    loss = lambda a, b: align_uniform_loss(a, b)  # noqa: E731
    head, first = train_head(bank, loss, SMOKE, [0, 50, 100], probe, on_snapshot=lambda step, e: seen.append(step))
    _, second = train_head(bank, loss, SMOKE, [], probe)
    assert first["loss"] == second["loss"] and len(first["loss"]) == SMOKE.steps
    assert seen == [0, 50, 100] and sorted(first["snapshots"]) == [0, 50, 100] and second["snapshots"] == {}
    embedded = first["snapshots"][SMOKE.steps]
    assert embedded.test.shape == (50, 2) and embedded.views.shape == (50, 2, 2)
    torch.testing.assert_close(embedded.test.norm(dim=1), torch.ones(50))
    torch.testing.assert_close(head.embed(probe.test), embedded.test)


def test_align_uniform_loss_weights_and_normalisation():
    z1, z2 = 4 * torch.randn(20, 3), 4 * torch.randn(20, 3)
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    both = align_uniform_loss(z1, z2, uniform_weight=0.5)
    assert both.item() == pytest.approx((alignment(x, y) + 0.5 * (uniformity(x) + uniformity(y)) / 2).item(), rel=1e-5)
    assert align_uniform_loss(z1, z2, uniform_weight=0).item() == pytest.approx(alignment(x, y).item(), rel=1e-5)
    a = z1.clone().requires_grad_()
    align_uniform_loss(a, z2).backward()
    assert torch.isfinite(a.grad).all()


def test_uniform_points():
    torch.testing.assert_close(uniform_points(10, 5).norm(dim=1), torch.ones(10))
    torch.testing.assert_close(uniform_points(10, 5, seed=3), uniform_points(10, 5, seed=3))
    # The mean of unit vectors spread evenly is near the centre.
    assert uniform_points(4000, 3).mean(0).norm() < 0.05


def test_find_run_looks_where_the_lectures_look(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(tmp_path / "shipped"))
    profile = tiny_profile()
    checkpoint = {"method": "rotation", "profile_settings": dataclasses.asdict(profile), "seed": 0, "encoder_name": "small"}
    assert find_run("rotation", profile) is None
    save_checkpoint(tmp_path / "shipped" / profile.name / "rotation.pt", checkpoint)
    assert find_run("rotation", profile)["source"] == str(tmp_path / "shipped" / profile.name / "rotation.pt")
    save_checkpoint(tmp_path / "data" / "checkpoints" / profile.name / "rotation.pt", checkpoint)
    assert find_run("rotation", profile)["source"].startswith(str(tmp_path / "data"))
    assert find_run("rotation", CLASS) is None  # other settings: not this run
    assert find_run("jigsaw", profile) is None


# --- figures and widgets ---------------------------------------------------------------------------

from sslteach.sphere_figures import (  # noqa: E402
    SphereSweep, SphereTrainer, angle_density, embedding_png, plot_alignment_uniformity, plot_snapshots,
)


def test_angle_density_is_flat_when_uniform_and_spikes_when_collapsed():
    angles = torch.linspace(-math.pi, math.pi, 7201)[:-1]
    circle = torch.stack([angles.cos(), angles.sin()], 1)
    torch.testing.assert_close(angle_density(circle), torch.ones(72), atol=0.02, rtol=0)
    collapsed = angle_density(F.normalize(torch.ones(100, 2), dim=1))
    assert collapsed.max() > 20 and collapsed.sum().item() == pytest.approx(72, rel=1e-5)


def test_figures_draw(monkeypatch):
    monkeypatch.setattr("matplotlib.pyplot.show", lambda: None)
    bank, probe = synthetic_bank()
    _, history = train_head(bank, lambda a, b: align_uniform_loss(a, b), SMOKE, [0, SMOKE.steps], probe)
    plot_snapshots({"a": history, "b": history}, [0, SMOKE.steps], probe.test_labels)
    plot_alignment_uniformity({"p": {"x": {"alignment": 1.0, "uniformity": -2.0, "knn": 0.3}}})
    assert embedding_png(history["snapshots"][SMOKE.steps], probe.test_labels).startswith(b"\x89PNG")


def test_sweep_widget_follows_family_and_value():
    bank, probe = synthetic_bank()
    runs = {w: train_head(bank, lambda a, b, w=w: align_uniform_loss(a, b, uniform_weight=w), SMOKE, [SMOKE.steps], probe)[1]["snapshots"][SMOKE.steps]
            for w in (0.0, 1.0)}
    sweep = SphereSweep({"weight": runs, "same": {"only": runs[1.0]}}, probe.test_labels)
    sweep.value.value = 0.0
    assert sweep.metrics["uniformity"] > -0.1  # alignment alone: collapsed
    picture = sweep.picture.value
    sweep.value.value = 1.0
    assert sweep.metrics == measure(runs[1.0]) and sweep.picture.value != picture
    sweep.family.value = "same"
    assert sweep.value.value == "only" and "only" in sweep.caption.value


def test_trainer_widget_trains_on_click():
    bank, probe = synthetic_bank()
    trainer = SphereTrainer(bank, probe, {"align": lambda a, b: align_uniform_loss(a, b, uniform_weight=0)}, SMOKE, frame_every=50)
    assert trainer.caption.value.startswith("step 0") and "Press" in trainer.caption.value  # the starting point
    trainer.train.click()
    assert trainer.metrics["uniformity"] > -0.1 and trainer.caption.value.startswith("step 100")


def test_trainer_widget_shows_the_starting_point_of_the_chosen_loss():
    """Choosing a loss answers at once (the browser test changes the first control and waits)."""
    bank, probe = synthetic_bank()
    losses = {"align": lambda a, b: align_uniform_loss(a, b, uniform_weight=0),
              "align + uniform": lambda a, b: align_uniform_loss(a, b)}
    trainer = SphereTrainer(bank, probe, losses, SMOKE, frame_every=50)
    before = trainer.picture.value
    trainer.loss.value = "align + uniform"
    assert trainer.picture.value != before and trainer.caption.value.startswith("step 0")


def test_pair_alignment_and_rank_correlation():
    from sslteach.sphere_demo import pair_alignment, rank_correlation

    torch.manual_seed(0)
    encoder = small_convnet((4, 8)).eval()
    images = random_images(6).float() / 255
    assert pair_alignment(encoder, torch.stack([images, images], 1)) == pytest.approx(0, abs=1e-6)
    assert 0 < pair_alignment(encoder, torch.stack([images, images.flip(0)], 1)) <= 4
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert rank_correlation([1, 2, 3], [0.2, 0.1, 0.3]) == pytest.approx(0.5)
