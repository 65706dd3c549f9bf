"""Figures the lectures share. Each function draws and calls ``plt.show()`` and returns None,
so a notebook cell stores only the picture (nbval compares text, and a figure's repr holds a
memory address that changes every run)."""
from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import torch

from .augment import to_float
from .labels import label_line_ends


def show_images(images: torch.Tensor, titles=None, ncols: int = 8, size: float = 1.2, suptitle: str | None = None):
    """A grid of images, ``size`` inches wide each (their height keeps the images' shape).

    images: (B, 3, H, W) uint8 or float in [0, 1]; titles: B strings.
    """
    images = to_float(images.detach().cpu())
    nrows = (len(images) + ncols - 1) // ncols
    height = size * images.shape[2] / images.shape[3] + 0.25 * bool(titles)  # one row, with its titles
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * height), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.show()


def show_rows(rows: dict, size: float = 1.2, suptitle: str | None = None, titles=None, ncols: int | None = None):
    """The figure of a prediction task: one row per entry, its label on the left.

    rows : {label: (B, 3, H, W) uint8 or float in [0, 1]}, the same B images in every row, for
    example what the network saw, what it predicted and the truth; titles : B strings above the
    first row. ``ncols``: at most that many images across; the rows are then repeated for each
    group of ``ncols`` images, so that with B = 8 and ncols = 4 each picture gets a quarter of the
    figure's width instead of an eighth.
    """
    labels, batches = list(rows), [to_float(b.detach().cpu()).float() for b in rows.values()]
    B = len(batches[0])
    ncols = ncols or B
    groups = (B + ncols - 1) // ncols
    heights = [size + 0.3 * (titles is not None and r == 0) for r in range(len(batches))] * groups  # room for titles
    fig, axes = plt.subplots(groups * len(batches), ncols, figsize=(ncols * size + 1.2, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for g, (r, (label, images)) in itertools.product(range(groups), enumerate(zip(labels, batches))):
        row = axes[g * len(batches) + r]
        for col, ax in enumerate(row):
            b = g * ncols + col
            if b >= B:
                ax.axis("off")
                continue
            ax.imshow(images[b].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if titles is not None and r == 0:
                ax.set_title(titles[b], fontsize=9)
        row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.show()


def mark_epochs(ax, steps_per_epoch: float | None, steps: int):
    """Dotted vertical lines at the epoch boundaries of a training curve over ``steps`` steps,
    each labelled with the epoch it starts (nothing if ``steps_per_epoch`` is None)."""
    if not steps_per_epoch:
        return
    epoch = 1
    while epoch * steps_per_epoch < steps:
        ax.axvline(epoch * steps_per_epoch, color="grey", linestyle=":", linewidth=0.9)
        ax.text(epoch * steps_per_epoch, 1, f" epoch {epoch + 1}", transform=ax.get_xaxis_transform(),
                fontsize=7, color="grey", va="top", ha="left")
        epoch += 1


def plot_history(history: dict, title: str = "", smooth: int = 20, steps_per_epoch: float | None = None):
    """Training curves: loss and any other per-step metric, with a running mean over ``smooth`` steps.

    ``steps_per_epoch`` (``sslteach.loop.steps_per_epoch``): mark the epoch boundaries.
    """
    names = [name for name, values in history.items() if isinstance(values, list)]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = torch.tensor(history[name])
        ax.plot(values, alpha=0.3, color="C0")
        if len(values) >= smooth:
            kernel = torch.ones(smooth) / smooth
            running = torch.nn.functional.conv1d(values.view(1, 1, -1), kernel.view(1, 1, -1)).flatten()
            ax.plot(range(smooth - 1, len(values)), running, color="C0")
        mark_epochs(ax, steps_per_epoch, len(values))
        ax.set_xlabel("step")
        ax.set_title(f"{title} {name}".strip())
    fig.tight_layout()
    plt.show()


def plot_block_accuracies(results: dict, metric: str = "linear_probe"):
    """Accuracy by encoder stage for several encoders.

    results : {encoder name: [{"knn": float, "linear_probe": float}, ...] one per stage}
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, per_block in results.items():
        values = [100 * r[metric] for r in per_block]
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set_xlabel("encoder stage")
    ax.set_xticks(range(1, 1 + max(len(v) for v in results.values())))
    ax.set_ylabel(f"{metric.replace('_', ' ')} accuracy (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.show()


def plot_ab_plane(ax, bins: torch.Tensor, values: torch.Tensor | None = None, lightness: float = 65.0,
                  title: str = "", log: bool = False):
    """The quantised ab plane on ``ax``: one square per bin, in its colour at ``lightness``.

    bins : (Q, 2); values : (Q,) non-negative or None. With values, each square's area follows the
    value (``log``: its logarithm, for a prior that spans decades), so a distribution over the bins
    reads as a picture of which colours it believes in.
    """
    from .colorization import lab_to_rgb

    bins = bins.detach().float().cpu()
    lab = torch.cat([torch.full((len(bins), 1), lightness), bins], dim=1).T.reshape(1, 3, 1, -1)  # (1, 3, 1, Q)
    colours = lab_to_rgb(lab)[0, :, 0].T.numpy()  # (Q, 3)
    if values is None:
        sizes = torch.full((len(bins),), 40.0)
    else:
        v = values.detach().float().cpu()
        v = torch.log10(v.clamp(min=1e-6)) - torch.log10(v.clamp(min=1e-6)).min() if log else v
        sizes = 60 * v / v.max().clamp(min=1e-12)
    ax.scatter(bins[:, 1], bins[:, 0], s=sizes.numpy(), c=colours, marker="s", linewidths=0)
    ax.set_xlabel("b (blue - yellow)")
    ax.set_ylabel("a (green - red)")
    ax.set_xlim(-115, 115)
    ax.set_ylim(-115, 115)
    ax.set_aspect("equal")
    ax.set_facecolor("0.85")
    ax.set_title(title, fontsize=9)


def _running_mean(values: torch.Tensor, smooth: int):
    """(steps, running mean) of a 1-D series over windows of ``smooth`` steps, for plotting."""
    kernel = torch.ones(smooth) / smooth
    return range(smooth - 1, len(values)), torch.nn.functional.conv1d(values.view(1, 1, -1), kernel.view(1, 1, -1)).flatten()


def plot_histories(histories: dict, metrics, smooth: int = 20, reference: dict | None = None):
    """Training curves of several runs on shared axes, one panel per metric (running means over ``smooth`` steps).

    histories : {run name: checkpoint history}; metrics : names of per-step lists in them;
    reference : optional {metric: (value, label)} drawn as a dotted horizontal line (chance, collapse).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for i, (name, history) in enumerate(histories.items()):
            values = torch.tensor(history[metric], dtype=torch.float)
            ax.plot(values, alpha=0.25, color=f"C{i}")
            if len(values) >= smooth:
                ax.plot(*_running_mean(values, smooth), color=f"C{i}", label=name)
        if reference and metric in reference:
            value, label = reference[metric]
            ax.axhline(value, color="grey", linestyle=":", label=label)
        ax.set_xlabel("step")
        ax.set_title(metric.replace("_", " "))
        ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()


def plot_method_comparison(scores: dict, baselines=("random-init", "supervised")):
    """kNN and linear-probe accuracy of each method as paired bars, the baselines as lines across.

    scores : {name: {"knn": float, "linear_probe": float}}, in the order to draw; the names in
    ``baselines`` are drawn as vertical lines (dotted: kNN, dashed: probe) instead of bars.
    """
    methods = [name for name in scores if name not in baselines]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(methods) + 1.2))
    rows = torch.arange(len(methods), dtype=torch.float)
    for offset, metric, label in [(-0.2, "knn", "kNN"), (0.2, "linear_probe", "linear probe")]:
        values = [100 * scores[m][metric] for m in methods]
        ax.barh(rows + offset, values, height=0.4, label=label)
    for i, name in enumerate(b for b in baselines if b in scores):
        for metric, style in [("knn", ":"), ("linear_probe", "--")]:
            ax.axvline(100 * scores[name][metric], color=f"C{i + 2}", linestyle=style,
                       label=f"{name} ({'kNN' if metric == 'knn' else 'probe'})")
    ax.set_yticks(rows.tolist(), methods)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy on held-out images (%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    plt.show()


def plot_code_marginals(codes: dict):
    """The two marginals of soft assignments: mass per prototype (sorted) and per sample.

    codes : {name: (B, K) non-negative tensor}. Equipartition (SwAV's constraint) is every
    prototype holding B / K and every sample 1: both drawn as dotted lines.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    for name, Q in codes.items():
        Q = Q.detach().float().cpu()
        B, K = Q.shape
        left.plot(Q.sum(dim=0).sort(descending=True).values, label=name)
        right.plot(Q.sum(dim=1).sort(descending=True).values, label=name)
    left.axhline(B / K, color="grey", linestyle=":", label="B / K")
    right.axhline(1.0, color="grey", linestyle=":", label="1")
    left.set(xlabel="prototype (sorted by mass)", ylabel="mass of the batch", title="per prototype (column sums)")
    right.set(xlabel="sample (sorted)", ylabel="mass", title="per sample (row sums)")
    left.set_yscale("log")
    for ax in (left, right):
        ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()


def plot_label_efficiency(rows: dict, labelled: int, highlight=("raw pixels", "random-init", "supervised")):
    """Linear-probe accuracy against the number of labelled images (log scale), one line per row.

    rows : {name: row of the course table (``sslteach.transfer``)}; ``labelled`` is the number of
    labelled images at fraction 1. The names in ``highlight`` are drawn black and dashed. Each
    line is named at its right end, the names moved apart where the lines end close together.
    """
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ends, colors = [], []
    for i, (name, row) in enumerate(rows.items()):
        fractions = sorted(row["label_efficiency"], key=float)
        x = [float(f) * labelled for f in fractions]
        y = [100 * row["label_efficiency"][f] for f in fractions]
        style = dict(color="black", linestyle="--", linewidth=1.5) if name in highlight else dict(color=plt.cm.tab20(i % 20))
        ax.plot(x, y, marker="o", markersize=3, label=name, **style)
        ends.append((x[-1], y[-1]))
        colors.append(style["color"])
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images given to the linear probe (log scale)")
    ax.set_ylabel("accuracy on held-out images (%)")
    ax.grid(alpha=0.3)
    ax.set_xlim(right=ax.get_xlim()[1] * 4)
    fig.tight_layout()  # before the labels: they are placed in display units
    label_line_ends(ax, [e[0] for e in ends], [e[1] for e in ends], list(rows), colors, fontsize=6.5, offset=14)
    plt.show()


def plot_against_papers(ours: dict, papers: dict, xlabel: str, ylabel: str, ours_sd: dict | None = None):
    """A scatter of our number (x) against a paper's (y) for the names both dicts have, labelled.

    ours_sd : {name: standard deviation of our number} (over pretraining seeds), drawn as a
    horizontal bar. Two labels that would overlap are put one above and one below their points.
    """
    names = sorted((n for n in ours if n in papers), key=lambda n: papers[n])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar([ours[n] for n in names], [papers[n] for n in names],
                xerr=None if ours_sd is None else [ours_sd.get(n, 0) for n in names], fmt="o", capsize=3)
    x_span = max(ours[n] for n in names) - min(ours[n] for n in names) or 1
    y_span = max(papers[n] for n in names) - min(papers[n] for n in names) or 1
    for i, n in enumerate(names):
        crowded = any(abs(ours[n] - ours[m]) < 0.08 * x_span and abs(papers[n] - papers[m]) < 0.05 * y_span
                      for m in names[i + 1:])  # a point just above it: this label goes below
        ax.annotate(n, (ours[n], papers[n]), xytext=(5, -11 if crowded else 4), textcoords="offset points", fontsize=8)
    ax.margins(0.1)  # room for a label put below the lowest point
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.show()
