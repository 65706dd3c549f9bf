"""Labels that do not overlap (sslteach.labels), checked with the renderer's own text extents,
on crowded made-up data and on the figures of lectures 07 and 08 that had colliding labels."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402

from sslteach.labels import label_line_ends, label_points, spread_1d  # noqa: E402

TABLE = Path(__file__).resolve().parents[1] / "checkpoints" / "class" / "course_table.json"


def label_boxes(fig):
    """{label text: the box of its text in pixels} of every annotation of ``fig``, as the renderer
    draws it (``Text.get_window_extent``: an annotation's own extent includes its leader line)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return {t.get_text(): Text.get_window_extent(t, renderer) for ax in fig.axes for t in ax.texts if isinstance(t, Annotation)}


def assert_no_overlap(boxes):
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        assert not box_a.overlaps(box_b), f"labels {a!r} and {b!r} overlap"


# --- spread_1d: least squares under a minimum gap --------------------------------------------

def test_spread_leaves_separated_targets_alone():
    targets = torch.tensor([0.0, 2.0, 5.0])
    assert torch.allclose(spread_1d(targets, gap=1.0), targets.double())


def test_spread_of_equal_targets_is_centred_on_them():
    assert torch.allclose(spread_1d([3.0, 3.0, 3.0], gap=1.0), torch.tensor([2.0, 3.0, 4.0], dtype=torch.float64))


def test_spread_pools_only_the_crowded_run():
    # the first two collide and move apart symmetrically; the third is far enough already
    assert torch.allclose(spread_1d([0.0, 0.2, 5.0], gap=1.0), torch.tensor([-0.4, 0.6, 5.0], dtype=torch.float64))


@pytest.mark.parametrize("seed", range(5))
def test_spread_keeps_the_gap_and_beats_every_nearby_feasible_solution(seed):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.rand(12, generator=generator).sort().values * 5
    placed = spread_1d(targets, gap=0.7)
    assert (placed.diff() >= 0.7 - 1e-9).all()
    cost = ((placed - targets) ** 2).sum()
    for _ in range(50):  # a feasible perturbation (shift a suffix up) never does better
        k = int(torch.randint(0, 12, (1,), generator=generator))
        other = placed.clone()
        other[k:] += 0.05 * torch.rand(1, generator=generator).item()
        assert ((other - targets) ** 2).sum() >= cost - 1e-12


# --- labels on figures ------------------------------------------------------------------------

def test_line_end_labels_do_not_overlap_and_keep_the_order_of_the_lines():
    fig, ax = plt.subplots(figsize=(5, 3))
    ends = torch.linspace(50, 52, 15)  # fifteen lines ending within 2 units of 100
    names = [f"method {i}" for i in range(15)]
    for i, y in enumerate(ends.tolist()):
        ax.plot([0, 1], [y - 20, y])
    ax.set_xlim(0, 2)
    fig.tight_layout()
    label_line_ends(ax, [1.0] * 15, ends.tolist(), names, fontsize=6)
    boxes = label_boxes(fig)
    assert_no_overlap(boxes)
    heights = [boxes[name].y0 for name in names]
    assert heights == sorted(heights), "the labels should be stacked in the order of the line ends"
    plt.close(fig)


def test_scatter_labels_do_not_overlap_and_stay_inside_the_axes():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, generator=generator).tolist(), torch.rand(20, generator=generator).tolist()
    x[:4], y[:4] = [0.5, 0.51, 0.52, 0.5], [0.5, 0.5, 0.51, 0.52]  # four points on top of each other
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(x, y, s=55)
    ax.margins(0.12)
    fig.tight_layout()
    label_points(ax, x, y, [f"encoder-{i}" for i in range(20)])
    boxes = label_boxes(fig)
    assert_no_overlap(boxes)
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for name, box in boxes.items():
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, name
    plt.close(fig)


def test_lecture_08_label_efficiency_names_every_line_without_overlap(shown):
    from sslteach.plots import plot_label_efficiency

    rows = json.loads(TABLE.read_text())["rows"]
    plot_label_efficiency(rows, labelled=rows["random-init"]["train_images"])
    boxes = label_boxes(shown[0])
    assert set(boxes) == set(rows)
    assert_no_overlap(boxes)


def test_lecture_07_plane_labels_every_point_without_overlap(shown):
    from sslteach.sphere_figures import plot_alignment_uniformity

    generator = torch.Generator().manual_seed(1)
    crowded = {f"encoder-{i}": {"alignment": 0.05 + 0.1 * torch.rand(1, generator=generator).item(),
                                "uniformity": -0.2 - 0.3 * torch.rand(1, generator=generator).item(),
                                "knn": 0.3} for i in range(8)}  # eight encoders in one corner
    spread = {f"head-{i}": {"alignment": 0.1 * i, "uniformity": -0.15 * i, "knn": 0.2} for i in range(10)}
    plot_alignment_uniformity({"crowded": crowded, "spread": spread})
    boxes = label_boxes(shown[0])
    assert set(boxes) == set(crowded) | set(spread)
    assert_no_overlap(boxes)
