"""Figures that read (issue 18, item 5): image strips large enough to see, training curves that
mark their epoch boundaries, and a kNN axis that shows a few points as a few points."""
from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sslteach.loop import steps_per_epoch  # noqa: E402
from sslteach.plots import mark_epochs, plot_history, show_images, show_rows  # noqa: E402
from sslteach.sphere_figures import plot_sweeps  # noqa: E402


def run_record(train_images=40_000, steps=350, images_per_step=256, cap=0, data=True):
    """What a checkpoint records that ``steps_per_epoch`` reads."""
    return {"data": {"train_images": train_images} if data else None,
            "profile_settings": {"train_images": cap},
            "history": {"loss": [0.0] * steps, "images_seen": steps * images_per_step}}


# --- epochs -----------------------------------------------------------------------------------

def test_steps_per_epoch_of_the_class_runs():
    assert steps_per_epoch(run_record()) == pytest.approx(156.25)  # NPID: 256 images a step
    assert steps_per_epoch(run_record(images_per_step=128)) == pytest.approx(312.5)  # PIRL: half as many


def test_steps_per_epoch_follows_the_profile_cap_and_needs_the_data():
    assert steps_per_epoch(run_record(cap=5_120)) == pytest.approx(20.0)
    assert steps_per_epoch(run_record(data=False)) is None


def test_epoch_boundaries_are_marked_where_an_epoch_ends(shown):
    history = {"loss": torch.linspace(10, 8, 350).tolist()}
    plot_history(history, steps_per_epoch=156.25)
    ax = shown[0].axes[0]
    boundaries = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"]
    assert boundaries == pytest.approx([156.25, 312.5])
    assert [t.get_text().strip() for t in ax.texts] == ["epoch 2", "epoch 3"]


def test_no_marks_without_an_epoch_length():
    fig, ax = plt.subplots()
    mark_epochs(ax, None, 350)
    assert not ax.lines and not ax.texts
    plt.close(fig)


# --- image strips -----------------------------------------------------------------------------

def test_show_images_keeps_the_shape_of_wide_pictures(shown):
    pairs = torch.rand(8, 3, 8, 18)  # lecture 02: centre | gap | neighbour
    show_images(pairs, [f"pair {i}" for i in range(8)], ncols=4, size=2.2)
    width, height = shown[0].get_size_inches()
    assert width == pytest.approx(8.8)
    assert height == pytest.approx(2 * (2.2 * 8 / 18 + 0.25))  # two rows as tall as the pictures, plus titles


def test_show_rows_in_groups_puts_each_example_above_its_other_views(shown):
    images, tiles = torch.rand(8, 3, 32, 32), torch.rand(8, 3, 32, 32)
    show_rows({"the image": images, "its tiles": tiles}, size=1.8, titles=[f"class {i}" for i in range(8)], ncols=4)
    axes = shown[0].axes
    assert len(axes) == 2 * 2 * 4  # two groups of four examples, two rows each
    assert shown[0].get_size_inches()[0] <= 8.5  # four pictures across: each about a quarter of a notebook's width
    titles = [ax.get_title() for ax in axes]
    assert titles[:4] == ["class 0", "class 1", "class 2", "class 3"] and titles[4:8] == [""] * 4
    assert titles[8:12] == ["class 4", "class 5", "class 6", "class 7"]
    assert [axes[i].get_ylabel() for i in (0, 4, 8, 12)] == ["the image", "its tiles"] * 2
    # example 5 is in the second group: its image, and right below it its tiles
    assert torch.allclose(torch.as_tensor(axes[9].images[0].get_array()), images[5].permute(1, 2, 0))
    assert torch.allclose(torch.as_tensor(axes[13].images[0].get_array()), tiles[5].permute(1, 2, 0))


def test_show_rows_without_groups_is_one_row_per_entry(shown):
    show_rows({"input": torch.rand(6, 3, 32, 32), "truth": torch.rand(6, 3, 32, 32)}, size=1.2)
    assert len(shown[0].axes) == 2 * 6
    assert tuple(shown[0].get_size_inches()) == pytest.approx((6 * 1.2 + 1.2, 2 * 1.2))


# --- the sweeps' kNN axis ---------------------------------------------------------------------

def sweeps():
    return {"contrastive, temperature τ": {t: {"alignment": 0.1 * i, "uniformity": -0.3 * i, "knn": 0.165 + 0.01 * (i % 3)}
                                          for i, t in enumerate((0.05, 0.1, 0.2, 0.5, 1.0, 2.0))}}


def test_the_knn_axis_starts_at_zero_and_shows_chance(shown):
    plot_sweeps(sweeps(), test_images=1000)
    knn = shown[0].axes[1]  # the twin axis
    low, high = knn.get_ylim()
    assert low == 0 and high >= 50, "a few points of kNN accuracy must not fill the panel"
    assert any(line.get_ydata()[0] == pytest.approx(10) for line in knn.lines), "chance (10 classes) is marked"


def test_the_knn_points_carry_their_sampling_error(shown):
    plot_sweeps(sweeps(), test_images=1000)
    knn = shown[0].axes[1]
    (bars,) = [c for c in knn.collections if c.get_segments()]
    half_lengths = [abs(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]
    p = 0.165
    assert half_lengths[0] == pytest.approx(100 * (p * (1 - p) / 1000) ** 0.5, rel=1e-6)


def test_the_legend_is_below_the_axes_not_over_the_points(shown):
    plot_sweeps(sweeps(), test_images=1000)
    fig = shown[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0


# --- our numbers beside the papers' -------------------------------------------------------------

def test_against_papers_draws_our_seed_spread_and_keeps_close_labels_apart(shown):
    from sslteach.plots import plot_against_papers

    ours = {"supervised": 71.8, "colorization": 49.1, "context": 48.8, "jigsaw": 33.6}
    papers = {"supervised": 79.9, "colorization": 65.6, "context": 65.3, "jigsaw": 67.6}
    plot_against_papers(ours, papers, "ours", "theirs", ours_sd={"colorization": 0.6, "context": 0.5})
    ax = shown[0].axes[0]
    labels = {t.get_text(): t for t in ax.texts}
    assert set(labels) == set(ours)
    below, above = labels["context"], labels["colorization"]  # 0.3 points apart on both axes
    assert below.xyann[1] < 0 < above.xyann[1]
    assert labels["jigsaw"].xyann[1] > 0  # alone: above its point
    bars = [c for c in ax.collections if len(c.get_segments()) == 4][0].get_segments()
    widths = sorted(round(s[1][0] - s[0][0], 3) for s in bars)
    assert widths == [0.0, 0.0, 1.0, 1.2]  # +- sd: context and colorization only
