"""Tests of what the contrastive lecture (06) adds to the package: the temperature gradients, the
colour-histogram shortcut feature, prototype usage, checkpoint loaders, the temperature widget and
the plots."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from sslteach.contrastive import candidate_gradients, info_nce
from sslteach.encoders import small_convnet
from sslteach.simclr import color_histograms
from sslteach.swav import prototype_usage, sinkhorn_knopp, usage_entropy
from helpers import random_images, tiny_profile

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")


# --- candidate_gradients ------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.05, 0.2, 1.0])
def test_candidate_gradients_match_autograd(temperature):
    s = torch.rand(3, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    s.requires_grad_()
    F.cross_entropy(s / temperature, torch.zeros(3, dtype=torch.long), reduction="sum").backward()
    probabilities, gradients = candidate_gradients(s.detach(), temperature)
    torch.testing.assert_close(gradients, s.grad)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(3, dtype=torch.float64))
    assert (gradients[:, 0] < 0).all() and (gradients[:, 1:] > 0).all()


def test_candidate_gradients_agree_with_info_nce_logits():
    g = torch.Generator().manual_seed(1)
    q, k, queue = torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g), torch.randn(5, 4, generator=g)
    logits, _ = info_nce(q, k, queue, temperature=0.2)
    probabilities, _ = candidate_gradients(logits * 0.2, 0.2)
    torch.testing.assert_close(probabilities, logits.softmax(dim=1))


def test_a_lower_temperature_puts_the_push_on_the_hardest_negative():
    s = torch.tensor([0.9, 0.8, 0.5, 0.1, -0.3])  # the positive, then negatives from hard to easy
    shares = [candidate_gradients(s, t)[1][1:] for t in (0.05, 0.2, 1.0)]
    hardest = [float(g[0] / g.sum()) for g in shares]
    assert hardest[0] > hardest[1] > hardest[2] > 0.25
    assert hardest[0] > 0.99  # at tau = 0.05 the hardest negative takes almost all of it


# --- color_histograms ---------------------------------------------------------------------------

def test_color_histograms_sum_to_one_and_ignore_layout():
    images = random_images(4, 8)
    h = color_histograms(images, bins=4)
    assert h.shape == (4, 64)
    torch.testing.assert_close(h.sum(1), torch.ones(4))
    shuffled = images.flatten(2)[:, :, torch.randperm(64)].view_as(images)  # same pixels, elsewhere
    torch.testing.assert_close(color_histograms(shuffled), h)
    torch.testing.assert_close(color_histograms(images.flip(3)), h)


def test_color_histograms_count_the_right_cells():
    image = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    image[0, 0, 0, 0] = 255  # one red pixel, three black
    h = color_histograms(image, bins=2)
    assert h[0, 0] == 0.75 and h[0, 4] == 0.25  # cell (r, g, b) = (1, 0, 0) is (1 * 2 + 0) * 2 + 0
    assert torch.equal(color_histograms(image.float() / 255, bins=2), h)


# --- prototype usage ----------------------------------------------------------------------------

def test_prototype_usage_and_entropy():
    scores = torch.eye(4).repeat(3, 1)  # 12 samples, each prototype the best for 3
    usage = prototype_usage(scores)
    torch.testing.assert_close(usage, torch.full((4,), 0.25))
    assert usage_entropy(usage) == pytest.approx(math.log(4))
    collapsed = prototype_usage(torch.tensor([[0.0, 1.0, 0.0]]).repeat(5, 1))
    assert collapsed.tolist() == [0.0, 1.0, 0.0] and usage_entropy(collapsed) == 0.0


def test_sinkhorn_equalises_what_softmax_leaves_skewed():
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(64, 8, generator=g) + 2 * torch.randn(1, 8, generator=g), dim=1)  # crowded
    scores = z @ F.normalize(torch.randn(16, 8, generator=g), dim=1).T
    softmax_mass = F.softmax(scores / 0.05, dim=1).sum(0)
    sinkhorn_mass = sinkhorn_knopp(scores, 0.05, 20).sum(0)
    assert softmax_mass.max() / softmax_mass.min() > 100
    torch.testing.assert_close(sinkhorn_mass, torch.full((16,), 4.0), atol=0.2, rtol=0)


# --- checkpoint loaders ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["swav", "pirl"])
def test_models_from_checkpoints_reproduce_the_trained_network(method):
    from sslteach.pirl import pirl_model_from_checkpoint
    from sslteach.swav import swav_model_from_checkpoint
    from sslteach.methods import pretrain

    images = random_images(32)
    checkpoint = pretrain(method, images, torch.zeros(32, dtype=torch.long), tiny_profile(steps=1, batch_size=16))
    build = {"swav": swav_model_from_checkpoint, "pirl": pirl_model_from_checkpoint}[method]
    model = build(checkpoint)
    assert not model.training
    x = images[:4].float() / 255
    again = build(checkpoint)
    torch.testing.assert_close(model(x), again(x))
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    for name, value in checkpoint["head"].items():
        torch.testing.assert_close(heads[name], value)


# --- the temperature widget ---------------------------------------------------------------------

def test_temperature_explorer_follows_its_controls():
    pytest.importorskip("ipywidgets")
    from sslteach.widgets import ContrastTemperatureExplorer

    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 5, generator=g)  # 2B = 8 views of B = 4 images
    w = ContrastTemperatureExplorer(z, torch.rand(8, 3, 8, 8, generator=g), temperature=0.2)
    assert w.probabilities.shape == (7,) and w.probabilities.sum().item() == pytest.approx(1.0, abs=1e-6)
    zn = F.normalize(z, dim=1)
    assert w.similarities[0].item() == pytest.approx(float(zn[0] @ zn[4]))  # the positive first
    w.anchor.value = 2
    assert w.similarities[0].item() == pytest.approx(float(zn[2] @ zn[6]))
    assert sorted(w.candidates(2).tolist()) == [0, 1, 3, 4, 5, 6, 7]
    shares = []
    for tau in (0.05, 0.3, 2.0):
        w.temperature.value = tau
        assert f"tau = {tau:.2f}" in w.caption.value
        shares.append(w.hard_share)
    assert shares[0] >= shares[1] >= shares[2]
    assert w.plot.value[:4] == b"\x89PNG" and w.thumbnails.value[:4] == b"\x89PNG"


# --- plots --------------------------------------------------------------------------------------

def test_plots_draw_without_error(monkeypatch):
    import matplotlib.pyplot as plt

    from sslteach import plots

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    history = {"loss": [3.0 - 0.01 * i for i in range(50)], "accuracy": [0.01 * i for i in range(50)]}
    plots.plot_histories({"a": history, "b": history}, ["loss", "accuracy"], reference={"loss": (3.0, "chance")})
    scores = {"random-init": {"knn": 0.3, "linear_probe": 0.4}, "simclr": {"knn": 0.4, "linear_probe": 0.5},
              "supervised": {"knn": 0.6, "linear_probe": 0.7}}
    plots.plot_method_comparison(scores)
    plots.plot_code_marginals({"softmax": torch.rand(6, 3), "sinkhorn": torch.ones(6, 3) / 3})
    assert len(shown) == 3
    comparison = shown[1].axes[0]
    assert [t.get_text() for t in comparison.get_yticklabels()] == ["simclr"]
    assert len(comparison.lines) == 4  # two baselines, kNN and probe each
    plt.close("all")


# --- candidate_similarities ---------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_candidate_similarities_give_nt_xent_with_the_positive_first(temperature):
    from sslteach.contrastive import candidate_similarities, nt_xent

    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(5, 6, generator=g, dtype=torch.float64)
    s = candidate_similarities(z1, z2)
    assert s.shape == (10, 9)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    assert s[0, 0].item() == pytest.approx(float(z[0] @ z[5])) and s[7, 0].item() == pytest.approx(float(z[7] @ z[2]))
    assert s[0, 1:].tolist() == pytest.approx([float(z[0] @ z[k]) for k in (1, 2, 3, 4, 6, 7, 8, 9)])
    loss = F.cross_entropy(s / temperature, torch.zeros(10, dtype=torch.long))
    torch.testing.assert_close(loss, nt_xent(z1, z2, temperature))


def test_short_run_collapses_without_equipartition_and_not_with_it():
    from sslteach.swav import short_run

    images = random_images(64)
    runs = {}
    for name, make_codes in [("sinkhorn", lambda s: sinkhorn_knopp(s, 0.05, 3)), ("softmax", lambda s: F.softmax(s / 0.05, dim=1))]:
        torch.manual_seed(0)
        runs[name] = short_run(small_convnet(), images, make_codes, steps=4, batch_size=16)
    assert all(len(v) == 4 for run in runs.values() for v in run.values())
    assert runs["softmax"]["prototypes_used"][-1] <= 0.02  # one prototype (maybe two) left
    # the trivial solution: each code agrees with the other view's. The loss falls far below log K,
    # though not to 0: with SwAV's temperature of 0.2 a prediction cannot put all its mass on one
    # of 100 prototypes whose cosines lie within [-1, 1] (it reached 1.76 after four steps here)
    assert runs["softmax"]["loss"][-1] < 0.5 * math.log(100)
    assert runs["sinkhorn"]["prototypes_used"][-1] > 0.05
    assert runs["sinkhorn"]["loss"][-1] > 0.8 * math.log(100)
