"""The figures of the headline table and the compute ladder (lecture 08): accuracy over
pretraining seeds coloured by the course's effect rule, and accuracy against pretraining compute."""
from __future__ import annotations

import statistics

import matplotlib.pyplot as plt

from .labels import label_line_ends


def _mean_sd(accuracies) -> tuple[float, float]:
    """Mean and sample standard deviation in % (sd 0 for a single value)."""
    v = [100 * a for a in accuracies]
    return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0


VERDICT_COLOURS = {"above": "C2", "below": "C3", "level within noise": "0.6", "not enough seeds": "0.85"}


def plot_seed_spread(values: dict, verdicts: dict, baselines=("random-init", "supervised"), xlabel: str = "linear probe (%)"):
    """Each method's accuracy over pretraining seeds: a bar at the mean, a line of +- one standard
    deviation, a dot per seed; bars coloured by the course's effect rule against the first
    baseline (``verdicts``: {method: {"verdict": ...}}, from ``sslteach.headline.verdicts``).

    values : {method: [accuracy per seed]} in the order to draw. The baselines are drawn as bands
    across the plot (mean +- one standard deviation) instead of bars.
    """
    fig, ax = plt.subplots(figsize=(7, 0.38 * len([m for m in values if m not in baselines]) + 1.4))
    draw_seed_spread(ax, values, verdicts, baselines, xlabel)
    fig.tight_layout()
    plt.show()


def draw_seed_spread(ax, values: dict, verdicts: dict, baselines=("random-init", "supervised"), xlabel: str = "linear probe (%)"):
    """What :func:`plot_seed_spread` draws, on the axes ``ax`` (a widget draws without pyplot)."""
    methods = [m for m in values if m not in baselines]
    for i, name in enumerate(b for b in baselines if b in values):
        mean, sd = _mean_sd(values[name])
        ax.axvspan(mean - sd, mean + sd, color=f"C{i}", alpha=0.25, label=f"{name} (mean +- sd)")
        ax.axvline(mean, color=f"C{i}", linewidth=1)
    for row, method in enumerate(methods):
        mean, sd = _mean_sd(values[method])
        ax.barh(row, mean, color=VERDICT_COLOURS[verdicts[method]["verdict"]], height=0.6)
        ax.errorbar(mean, row, xerr=sd, color="black", capsize=3, linewidth=1)
        ax.plot([100 * a for a in values[method]], [row] * len(values[method]), "k.", markersize=4)
    for verdict, colour in VERDICT_COLOURS.items():
        if any(verdicts[m]["verdict"] == verdict for m in methods):
            ax.barh([0], [0], color=colour, label=f"{verdict} ({baselines[0]})" if verdict != "not enough seeds" else verdict)
    ax.set_yticks(range(len(methods)), methods)
    ax.invert_yaxis()
    ax.set_xlim(0, None)  # bars from zero: a cut axis makes a point of noise look like an effect
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(axis="x", alpha=0.3)


def plot_label_efficiency_seeds(values: dict, labelled: int, references: dict | None = None,
                                highlight=("random-init", "supervised")):
    """Linear probe against the number of labelled images (log x), mean +- one standard deviation
    over pretraining seeds, one line per method, each named at its right end.

    values : {method: {share: [accuracy per seed]}}, shares as in the headline rows ("0.01",
    "0.1", "1.0"); ``labelled`` is the number of labelled images at share 1. The names in
    ``highlight`` are drawn black and dashed. references : {name: {share: [accuracy per seed]}},
    networks trained from scratch on that share of the labels, drawn as black squares.
    """
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ends_x, ends_y, names, colours = [], [], [], []
    for i, (method, shares) in enumerate(values.items()):
        order = sorted(shares, key=float)
        x = [float(share) * labelled for share in order]
        means, sds = zip(*(_mean_sd(shares[share]) for share in order))
        style = dict(color="black", linestyle="--") if method in highlight else dict(color=plt.cm.tab20(i % 20))
        ax.errorbar(x, means, yerr=sds, marker="o", markersize=3, capsize=2, linewidth=1.2, **style)
        ends_x.append(x[-1]), ends_y.append(means[-1]), names.append(method), colours.append(style["color"])
    legend = "trained from scratch on only these labels"
    for name, shares in (references or {}).items():
        for share, accuracies in shares.items():
            mean, sd = _mean_sd(accuracies)
            ax.errorbar(float(share) * labelled, mean, yerr=sd, marker="s", markersize=6, color="black", capsize=3,
                        linestyle="none", label=legend)
            legend = None  # one legend entry for all the squares
            ax.annotate(name, (float(share) * labelled, mean), xytext=(7, -3), textcoords="offset points", fontsize=7,
                        va="top")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images (log scale)")
    ax.set_ylabel("accuracy on held-out images (%)")
    ax.grid(alpha=0.3)
    ax.set_xlim(right=ax.get_xlim()[1] * 4)
    if references:
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()  # before the labels: they are placed in display units
    label_line_ends(ax, ends_x, ends_y, names, colours, fontsize=6.5, offset=14)
    plt.show()


def plot_ladder(rungs: dict, seeds: dict, floor: list[float], floor_name: str = "random-init",
                title: str | None = None):
    """Headline linear probe against pretraining compute, one line per method, log x axis.

    rungs : {method: [(images through the encoder, accuracy), ...]}, every rung including 1x;
    seeds : {method: [accuracy per seed]} at 1x, drawn as a +- one standard deviation bar there;
    floor : the accuracies (per seed) of ``floor_name``, which gets no compute, drawn as a band;
    title : what the lines have in common, when a lecture draws the ladder in parts.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    mean, sd = _mean_sd(floor)
    ax.axhspan(mean - sd, mean + sd, color="0.8", label=f"{floor_name} (mean +- sd)")
    ends_x, ends_y, names, colours = [], [], [], []
    for i, (method, points) in enumerate(rungs.items()):
        points = sorted(points)
        x, y = [p[0] for p in points], [100 * p[1] for p in points]
        line, = ax.plot(x, y, "o-", color=f"C{i}", markersize=4)
        if len(seeds.get(method, [])) > 1:
            seed_mean, seed_sd = _mean_sd(seeds[method])
            ax.errorbar(x[0], seed_mean, yerr=seed_sd, color=line.get_color(), capsize=3)
        ends_x.append(x[-1]), ends_y.append(y[-1]), names.append(method), colours.append(line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("pretraining compute (images through the encoder, log scale)")
    ax.set_ylabel("linear probe on final features (%)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")  # the lines end on the right, the floor is low
    fig.tight_layout()
    label_line_ends(ax, ends_x, ends_y, names, colours)
    plt.show()
