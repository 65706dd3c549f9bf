"""Text labels on plots that do not overlap: the names at the ends of many lines, and the names
of the points of a scatter.

Both work in display units (points, 1/72 inch), measured with the figure's renderer, so the
result holds at the figure's own size and at any dpi it is saved with. Lay out the figure first
(``fig.tight_layout()``): moving or resizing the axes afterwards moves the data under the labels.
"""
from __future__ import annotations

import math

import torch

LABEL_PAD = 1.5
"""Points of empty space kept around every label box."""
LEADER_FROM = 8
"""A label placed further than this (points) from its point is joined to it by a leader line;
a nearer one must be nearer to its own point than to any other."""


def spread_1d(targets, gap: float) -> torch.Tensor:
    """Positions as close as possible to ``targets`` (least squares) with at least ``gap`` between
    consecutive ones, in the order of the targets: the labels of line ends, moved apart.

    targets : (M,) values in increasing order -> (M,) positions p with p[i + 1] - p[i] >= gap.
    With q[i] = p[i] - i * gap the constraint is "q non-decreasing", so q is the isotonic
    regression of targets[i] - i * gap, computed by pooling adjacent violators.
    """
    t = torch.as_tensor(targets, dtype=torch.float64)
    shifted = t - gap * torch.arange(len(t), dtype=torch.float64)
    blocks = []  # [mean, size] of the pooled runs, means non-decreasing
    for value in shifted.tolist():
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:  # a violator: pool the last two runs
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    q = torch.cat([torch.full((n,), m, dtype=torch.float64) for m, n in blocks]) if blocks else shifted
    return q + gap * torch.arange(len(t), dtype=torch.float64)


def _text_size(ax, text: str, fontsize: float) -> tuple[float, float]:
    """(width, height) in points of ``text`` as the figure's renderer draws it."""
    fig = ax.figure
    probe = ax.text(0, 0, text, fontsize=fontsize, transform=None)
    extent = probe.get_window_extent(fig.canvas.get_renderer())
    probe.remove()
    to_points = 72 / fig.dpi
    return extent.width * to_points, extent.height * to_points


def _display_points(ax, x, y) -> torch.Tensor:
    """Data coordinates (M,), (M,) -> (M, 2) positions in points from the figure's lower left."""
    xy = ax.transData.transform(list(zip(x, y)))
    return torch.as_tensor(xy, dtype=torch.float64) * 72 / ax.figure.dpi


def label_line_ends(ax, x, y, names, colors=None, fontsize: float = 6, offset: float = 10):
    """Name each line at its last point (x[i], y[i]), the names stacked without overlap to the right.

    x, y : (M,) the data coordinates of the lines' last points; names : M strings; colors : M
    colours of the lines (default black), the texts and their leader lines drawn a little darker.
    Each name is joined to the end of its line by a thin leader line; the names keep the order of
    the line ends, so no two leader lines cross.
    """
    colors = [_darker(c) for c in colors] if colors else ["black"] * len(names)
    heights = [_text_size(ax, name, fontsize)[1] for name in names]
    ends = _display_points(ax, x, y)  # (M, 2) points
    order = torch.argsort(ends[:, 1]).tolist()
    placed = spread_1d(ends[order, 1], max(heights) + LABEL_PAD)
    for i, y_label in zip(order, placed.tolist()):
        dy = y_label - ends[i, 1].item()
        ax.annotate(names[i], (x[i], y[i]), xytext=(offset, dy), textcoords="offset points", fontsize=fontsize,
                    va="center", ha="left", color=colors[i], annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", color=colors[i], linewidth=0.5, shrinkA=1, shrinkB=1, relpos=(0, 0.5)))


def _darker(color, amount: float = 0.35):
    """``color`` mixed with black, so that a text in a pale line colour stays readable."""
    from matplotlib.colors import to_rgb

    return tuple((1 - amount) * c for c in to_rgb(color))


def _candidates(radii=(5, 11, 18, 26, 36, 48), directions: int = 16):
    """Offsets (dx, dy) in points to try for a label, nearest first, up and to the right first."""
    out = []
    for r in radii:
        for k in range(directions):
            angle = math.pi / 4 - 2 * math.pi * k / directions  # start up-right, go clockwise
            out.append((r * math.cos(angle), r * math.sin(angle)))
    return out


def _box(anchor_x, anchor_y, dx, dy, width, height):
    """The label's box (x0, y0, x1, y1) in points when its text is placed at offset (dx, dy),
    aligned so that the box grows away from the point (right of it for dx > 0, left for dx < 0)."""
    x0 = anchor_x + dx if dx >= -1e-9 else anchor_x + dx - width
    if abs(dx) < 1e-9:
        x0 = anchor_x - width / 2
    y0 = anchor_y + dy if dy >= -1e-9 else anchor_y + dy - height
    if abs(dy) < 1e-9:
        y0 = anchor_y - height / 2
    return x0, y0, x0 + width, y0 + height


def _distance(box, x, y) -> float:
    """Distance in points from (x, y) to the nearest point of ``box`` (x0, y0, x1, y1)."""
    return math.hypot(max(box[0] - x, 0, x - box[2]), max(box[1] - y, 0, y - box[3]))


def _overlap(a, b) -> float:
    """Area shared by two boxes (x0, y0, x1, y1)."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def label_points(ax, x, y, names, fontsize: float = 7, marker_radius: float = 4.5):
    """Name each point (x[i], y[i]) of a scatter with a label that overlaps no other label, no
    marker and stays inside the axes; a label placed away from its point gets a leader line.

    Greedy: the most crowded points choose first, each the nearest free spot among offsets at
    growing distances (``_candidates``); if none is free, the spot with the least overlap. A
    label without a leader line is placed nearer to its own point than to any other point.
    x, y : (M,) data coordinates; names : M strings; marker_radius : the markers' radius in points.
    """
    points = _display_points(ax, x, y)  # (M, 2)
    bounds = ax.get_window_extent(ax.figure.canvas.get_renderer())
    frame = [v * 72 / ax.figure.dpi for v in (bounds.x0, bounds.y0, bounds.x1, bounds.y1)]
    r = marker_radius
    obstacles = [(px - r, py - r, px + r, py + r) for px, py in points.tolist()]
    crowding = torch.cdist(points, points).lt(40).sum(dim=1)  # neighbours within 40 points
    placed = []
    for i in torch.argsort(crowding, descending=True, stable=True).tolist():
        width, height = _text_size(ax, names[i], fontsize)
        px, py = points[i].tolist()
        best, best_cost = None, math.inf
        for dx, dy in _candidates():
            box = _box(px, py, dx, dy, width + 2 * LABEL_PAD, height + 2 * LABEL_PAD)
            outside = box[0] < frame[0] or box[1] < frame[1] or box[2] > frame[2] or box[3] > frame[3]
            cost = 1e6 * outside + sum(_overlap(box, other) for other in placed + obstacles)
            if math.hypot(dx, dy) <= LEADER_FROM:  # no leader line: the nearest point must be its own
                own = _distance(box, px, py)
                cost += 1e3 * sum(_distance(box, qx, qy) < own + r for j, (qx, qy) in enumerate(points.tolist()) if j != i)
            if cost < best_cost:
                best, best_cost = (dx, dy, box), cost
            if cost == 0:
                break
        dx, dy, box = best
        placed.append(box)
        far = math.hypot(dx, dy) > LEADER_FROM
        ax.annotate(names[i], (x[i], y[i]), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                    ha="left" if dx > 1e-9 else "right" if dx < -1e-9 else "center",
                    va="bottom" if dy > 1e-9 else "top" if dy < -1e-9 else "center",
                    arrowprops=dict(arrowstyle="-", color="0.4", linewidth=0.5, shrinkA=0, shrinkB=r) if far else None)
