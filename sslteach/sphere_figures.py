"""Figures and widgets of lecture 07: embeddings on the circle, positive-pair distances, and the
alignment-uniformity plane (in the manner of Wang & Isola 2020, Figures 3 and 5).

The figure functions draw on ``matplotlib`` axes or call ``plt.show()`` and return None, like
``sslteach.plots``; the widgets render the same drawings to PNG (``figure_png``), so a slider
only swaps a picture. They live here rather than in ``plots`` and ``widgets`` because they share
the drawing code and belong to one lecture.
"""
from __future__ import annotations

import dataclasses

import io
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .labels import label_points
from .sphere_demo import HeadSettings, Measured, measure, train_head

# Angular bins of the density ring, and the ring's geometry (radii in units of the circle's).
ANGLE_BINS = 72
RING_START, RING_SCALE, RING_MAX = 1.08, 0.3, 2.3


def angle_density(points: torch.Tensor, bins: int = ANGLE_BINS) -> torch.Tensor:
    """(N, 2) points on the circle -> (bins,) density of their angles, 1 everywhere when uniform.

    A histogram smoothed circularly over three bins (a crude von Mises kernel density, the
    paper's estimate).
    """
    angles = torch.atan2(points[:, 1], points[:, 0])  # (N,) in [-pi, pi]
    counts = torch.histc(angles, bins=bins, min=-math.pi, max=math.pi)
    smoothed = (counts.roll(1) + 2 * counts + counts.roll(-1)) / 4
    return smoothed * bins / smoothed.sum()


def draw_circle(ax, points: torch.Tensor, labels: torch.Tensor | None = None, title: str = ""):
    """Draw (N, 2) unit vectors on ``ax``: dots on the circle (coloured by class if ``labels``),
    and outside it a ring whose height is the density of angles (a circle of radius
    ``RING_START + RING_SCALE`` when the points are uniform; a spike when they collapse)."""
    points = points.detach().float().cpu()
    theta = torch.linspace(-math.pi, math.pi, 361)
    ax.plot(theta.cos(), theta.sin(), color="0.7", linewidth=0.8)
    colours = plt.cm.tab10(labels.cpu().numpy() % 10) if labels is not None else "C0"
    ax.scatter(points[:, 0], points[:, 1], s=6, c=colours, alpha=0.6, linewidths=0)
    density = angle_density(points)
    centres = -math.pi + (torch.arange(ANGLE_BINS) + 0.5) * 2 * math.pi / ANGLE_BINS
    radius = (RING_START + RING_SCALE * density).clamp(max=RING_MAX)
    ring = torch.cat([centres, centres[:1] + 2 * math.pi])
    r = torch.cat([radius, radius[:1]])
    inner = ring.flip(0)  # the polygon runs out along the ring and back along the circle
    ax.fill(torch.cat([r * ring.cos(), RING_START * inner.cos()]), torch.cat([r * ring.sin(), RING_START * inner.sin()]),
            color="0.3", alpha=0.25, linewidth=0)
    ax.set_xlim(-RING_MAX, RING_MAX)
    ax.set_ylim(-RING_MAX, RING_MAX)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=8)


def pair_distances(embedded: Measured) -> torch.Tensor:
    """(N_p,) distances ||f(x) - f(y)|| between the two views of each pair image, in [0, 2]."""
    return (embedded.views[:, 0] - embedded.views[:, 1]).norm(dim=1)


def draw_pair_distances(ax, embedded: Measured, title: str = ""):
    """Histogram of positive-pair distances on [0, 2], its mean marked (alignment is the mean square)."""
    d = pair_distances(embedded).cpu()
    ax.hist(d.numpy(), bins=40, range=(0, 2), color="C0", alpha=0.8)
    ax.axvline(d.mean().item(), color="k", linestyle="--", linewidth=1)
    ax.set_xlim(0, 2)
    ax.set_yticks([])
    ax.set_xlabel("positive-pair distance", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=8)


def metrics_line(metrics: dict) -> str:
    return f"align {metrics['alignment']:.2f}  unif {metrics['uniformity']:.2f}"


def plot_snapshots(runs: dict, steps, labels: torch.Tensor):
    """One row per loss: the test embedding on the circle at each of ``steps``, then the final
    positive-pair distances. runs: {loss name: history from ``train_head``} with those snapshots."""
    steps = list(steps)
    fig, axes = plt.subplots(len(runs), len(steps) + 1, figsize=(1.9 * (len(steps) + 1), 2.05 * len(runs)), squeeze=False)
    for row, (name, history) in zip(axes, runs.items()):
        for ax, step in zip(row, steps):
            embedded = history["snapshots"][step]
            draw_circle(ax, embedded.test, labels, f"step {step}\n{metrics_line(measure(embedded))}")
        draw_pair_distances(row[-1], history["snapshots"][steps[-1]], "pairs, last step")
        row[0].text(-0.12, 0.5, name, transform=row[0].transAxes, rotation=90, va="center", ha="right", fontsize=9)
    fig.tight_layout()
    plt.show()


def plot_alignment_uniformity(panels: dict, cmap: str = "viridis"):
    """The paper's Figure 5 plane: uniformity (x) against alignment (y), lower left is better,
    each point coloured by its kNN accuracy and labelled.

    panels : {panel title: {name: {"alignment", "uniformity", "knn"}}}, one axes each.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, results) in zip(axes.flat, panels.items()):
        names = list(results)
        x = [results[n]["uniformity"] for n in names]
        y = [results[n]["alignment"] for n in names]
        c = [100 * results[n]["knn"] for n in names]
        points = ax.scatter(x, y, c=c, cmap=cmap, s=55, edgecolors="k", linewidths=0.5)
        ax.margins(0.12)  # room for the labels of the points at the edges
        fig.colorbar(points, ax=ax, label="kNN accuracy (%)")
        ax.set_xlabel("uniformity  (lower: more spread)")
        ax.set_ylabel("alignment  (lower: pairs closer)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()  # before the labels: they are placed in display units
    for ax, results in zip(axes.flat, panels.values()):
        names = list(results)
        label_points(ax, [results[n]["uniformity"] for n in names], [results[n]["alignment"] for n in names], names)
    plt.show()


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def embedding_png(embedded: Measured, labels: torch.Tensor, title: str = "") -> bytes:
    """Circle and pair-distance histogram side by side, as PNG bytes (for the widgets)."""
    fig = Figure(figsize=(5.6, 2.7), dpi=80)
    circle, pairs = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    draw_circle(circle, embedded.test, labels, title)
    draw_pair_distances(pairs, embedded, "positive pairs")
    fig.tight_layout()
    return figure_png(fig)


class SphereTrainer(widgets.VBox):
    """Train a 2-D head with the chosen loss and watch the embedding move, one frame every few steps.

    Attributes
    ----------
    loss : Dropdown
        Which of ``losses`` ({name: loss_fn(z1, z2)}) to train with.
    train : Button
        Trains a fresh head (same seed each time) and updates the picture during training.
    metrics : dict
        Alignment, uniformity and kNN accuracy at the last frame shown.
    """

    def __init__(self, bank: torch.Tensor, probe: Measured, losses: dict, settings: HeadSettings = HeadSettings(),
                 frame_every: int = 10):
        self.bank, self.probe, self.losses, self.settings, self.frame_every = bank, probe, losses, settings, frame_every
        self.loss = widgets.Dropdown(options=list(losses), description="loss")
        self.train = widgets.Button(description="train", button_style="primary")
        self.picture = widgets.Image(format="png")
        self.caption = widgets.HTML()
        super().__init__([widgets.HBox([self.loss, self.train]), self.picture, self.caption])
        self.train.on_click(self.run)
        self.loss.observe(self.start, names="value")
        self.start()

    def show(self, step: int, embedded: Measured, hint: str = ""):
        self.metrics = measure(embedded)
        self.picture.value = embedding_png(embedded, self.probe.test_labels, f"{self.loss.value}, step {step}")
        self.caption.value = f"step {step}: {metrics_line(self.metrics)}, kNN {100 * self.metrics['knn']:.1f}%{hint}"

    def start(self, change=None):
        """The fresh head the chosen loss will start from (step 0), until *train* is pressed."""
        hint = f". Press <i>train</i>: {self.settings.steps} steps, the picture follows every {self.frame_every}."
        train_head(self.bank, self.losses[self.loss.value], dataclasses.replace(self.settings, steps=0), (0,),
                   self.probe, on_snapshot=lambda step, embedded: self.show(step, embedded, hint))

    def run(self, button=None):
        steps = range(0, self.settings.steps + 1, self.frame_every)
        train_head(self.bank, self.losses[self.loss.value], self.settings, steps, self.probe, on_snapshot=self.show)


class SphereSweep(widgets.VBox):
    """Precomputed 2-D heads along one setting (a temperature, a weight): a slider picks one and
    shows its embedding and its alignment, uniformity and kNN accuracy.

    Parameters
    ----------
    sweeps : {family name: {setting value: Measured embedding}}
        E.g. {"contrastive, temperature": {0.05: ..., 0.1: ...}, "align + w * uniform, w": {...}}.

    Attributes
    ----------
    family : ToggleButtons
    value : SelectionSlider
        The setting; its options follow the family.
    metrics : dict
        Of the embedding shown.
    """

    def __init__(self, sweeps: dict, labels: torch.Tensor):
        self.sweeps, self.labels = sweeps, labels
        self.family = widgets.ToggleButtons(options=list(sweeps), description="sweep")
        self.value = widgets.SelectionSlider(options=list(sweeps[self.family.value]), description="value")
        self.picture = widgets.Image(format="png")
        self.caption = widgets.HTML()
        super().__init__([self.family, self.value, self.picture, self.caption])
        self.family.observe(self.switch, names="value")
        self.value.observe(self.update, names="value")
        self.update()

    def switch(self, change=None):
        options = list(self.sweeps[self.family.value])
        self.value.unobserve(self.update, names="value")
        self.value.options = options
        self.value.value = options[len(options) // 2]
        self.value.observe(self.update, names="value")
        self.update()

    def update(self, change=None):
        embedded = self.sweeps[self.family.value][self.value.value]
        self.metrics = measure(embedded)
        self.picture.value = embedding_png(embedded, self.labels, f"{self.family.value} = {self.value.value}")
        self.caption.value = (f"{self.family.value} = {self.value.value}: {metrics_line(self.metrics)}, "
                              f"kNN {100 * self.metrics['knn']:.1f}%")


def plot_sweeps(swept: dict, test_images: int | None = None, num_classes: int = 10):
    """Alignment, uniformity and kNN accuracy along each sweep of a setting, one panel per sweep.

    swept : {family name: {setting value: {"alignment", "uniformity", "knn"}}}; values on a log
    axis. The kNN axis starts at 0 with chance (1 / num_classes) marked, so that a few points of
    difference look as small as they are; with ``test_images`` (how many images the kNN accuracy
    was measured on), each kNN point carries +-1 standard error of that sampling, sqrt(p (1 - p) / n).
    """
    fig, axes = plt.subplots(1, len(swept), figsize=(5.5 * len(swept), 3.6), squeeze=False)
    for ax, (family, results) in zip(axes.flat, swept.items()):
        values = list(results)
        for key, style in [("alignment", "o-"), ("uniformity", "s-")]:
            ax.plot(values, [results[v][key] for v in values], style, label=key)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_xscale("log")
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.set_xlabel(family)
        knn = ax.twinx()
        p = torch.tensor([results[v]["knn"] for v in values], dtype=torch.float64)
        error = 100 * (p * (1 - p) / test_images).sqrt() if test_images else None
        label = "kNN (right axis)" + (f", ±1 s.e. of {test_images:,} images" if test_images else "")
        knn.errorbar(values, (100 * p).tolist(), yerr=None if error is None else error.tolist(), fmt="^:", color="C2",
                     capsize=2, label=label)
        knn.axhline(100 / num_classes, color="C2", linewidth=0.6, linestyle="--")
        knn.text(1, 100 / num_classes, "chance ", transform=knn.get_yaxis_transform(), fontsize=7, color="C2",
                 ha="right", va="bottom")
        knn.set_ylim(0, max(50.0, 100 * p.max().item() + 10))
        knn.set_ylabel("kNN accuracy (%)", color="C2")
        lines = ax.get_legend_handles_labels()[0] + knn.get_legend_handles_labels()[0]
        ax.legend(lines, [line.get_label() for line in lines], fontsize=7, ncol=3, frameon=False,
                  loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below: inside, it covered points
    fig.tight_layout()
    plt.show()


def plot_by_recipe(series: dict, ylabel: str, title: str = ""):
    """One line per series over the view recipes, in the order given (from views that share the
    most to views that share the least). series : {name: {recipe name: value}}."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, values in series.items():
        ax.plot(list(values), list(values.values()), "o-", label=name)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=15, ha="right")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()
