"""Diagrams of the course's methods: matplotlib boxes and arrows, one function per method.

Each function returns a ``Figure`` (made without pyplot, so nothing is shown twice). The lectures
show them as SVG files in ``lectures/figures/``, written by

    python -m sslteach.diagrams            # every diagram
    python -m sslteach.diagrams simclr moco

The files are deterministic (``svg.hashsalt`` fixed, no date), so a rerun with the same
matplotlib gives the same bytes, and a test checks that the committed files are up to date.
Colours: blue boxes are networks that learn, grey boxes are data or fixed operations, orange boxes
are the pretext target or the loss.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

FIGURES = Path(__file__).resolve().parents[1] / "lectures" / "figures"
NETWORK, DATA, TARGET, TEXT = "#cfe2f3", "#eeeeee", "#fce5cd", "#222222"
STYLE = {"svg.hashsalt": "sslteach", "svg.fonttype": "none", "font.size": 9, "font.family": "DejaVu Sans"}


class Canvas:
    """A figure whose axes run from 0 to ``width`` and 0 to ``height`` in inches: place boxes by hand."""

    def __init__(self, width: float, height: float, title: str):
        with matplotlib.rc_context(STYLE):
            self.figure = Figure(figsize=(width, height))
            self.ax = self.figure.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")
        self.ax.text(0.1, height - 0.12, title, ha="left", va="top", fontsize=10, fontweight="bold", color=TEXT)

    def box(self, x: float, y: float, text: str, colour: str = DATA, w: float = 1.2, h: float = 0.45):
        """A rounded box centred on (x, y); returns its (x, y, w, h) for arrows."""
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                         facecolor=colour, edgecolor="#555555", linewidth=0.8))
        self.ax.text(x, y, text, ha="center", va="center", fontsize=8.5, color=TEXT)
        return (x, y, w, h)

    def arrow(self, start, end, label: str = "", dashed: bool = False, bend: float = 0.0, side: str = "above"):
        """An arrow from the edge of box ``start`` to the edge of box ``end``, optionally labelled."""
        (x0, y0), (x1, y1) = _edge(start, end), _edge(end, start)
        self.ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=9, linewidth=0.9,
                                          color="#444444", linestyle="--" if dashed else "-",
                                          connectionstyle=f"arc3,rad={bend}"))
        if label:
            dy = 0.12 if side == "above" else -0.12
            self.ax.text((x0 + x1) / 2, (y0 + y1) / 2 + dy, label, ha="center", va="center", fontsize=7.5,
                         color="#333333", style="italic")

    def flow(self, *boxes, labels=(), side: str = "above"):
        """Arrows along a run of boxes, ``boxes[0] -> boxes[1] -> ...``; ``labels[i]`` labels the i-th arrow."""
        for i, (start, end) in enumerate(zip(boxes, boxes[1:])):
            self.arrow(start, end, labels[i] if i < len(labels) else "", side=side)

    def branches(self, top, bottom, top_labels=(), bottom_labels=(), bottom_side: str = "below"):
        """Two runs of boxes one above the other (the two views of an image), drawn stage by stage;
        the bottom run's labels go below its arrows, away from the top run's."""
        for i in range(max(len(top), len(bottom)) - 1):
            for run, labels, side in ((top, top_labels, "above"), (bottom, bottom_labels, bottom_side)):
                self.flow(*run[i:i + 2], labels=labels[i:i + 1], side=side)

    def note(self, x: float, y: float, text: str, size: float = 7.5):
        self.ax.text(x, y, text, ha="left", va="center", fontsize=size, color="#333333")


def _edge(box, towards):
    """The point where the line from ``box``'s centre to ``towards``'s centre leaves ``box``."""
    x, y, w, h = box
    tx, ty = towards[:2]
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    scale = min((w / 2 + 0.03) / abs(dx) if dx else float("inf"), (h / 2 + 0.03) / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale


def simclr() -> Figure:
    c = Canvas(7.2, 2.6, "SimCLR: two views, one encoder, a projection head, NT-Xent")
    image = c.box(0.8, 1.2, "image x")
    v1, v2 = c.box(2.2, 1.8, "view 1: t(x)"), c.box(2.2, 0.6, "view 2: t'(x)")
    f1, f2 = c.box(3.6, 1.8, "encoder f", NETWORK), c.box(3.6, 0.6, "encoder f", NETWORK)
    g1, g2 = c.box(5.0, 1.8, "head g (MLP)", NETWORK), c.box(5.0, 0.6, "head g (MLP)", NETWORK)
    loss = c.box(6.4, 1.2, "NT-Xent:\nz1 vs z2, not\nthe other 2N-2", TARGET, w=1.3, h=0.75)
    c.branches([image, v1, f1, g1, loss], [image, v2, f2, g2, loss], ("augment", "", "h1", "z1"), ("augment", "", "h2", "z2"))
    c.note(3.05, 1.2, "same weights")
    return c.figure


def moco() -> Figure:
    c = Canvas(7.2, 2.8, "MoCo: a query encoder, a momentum key encoder, a queue of negatives")
    image = c.box(0.8, 1.3, "image x")
    q_view, k_view = c.box(2.1, 2.0, "view 1"), c.box(2.1, 0.6, "view 2")
    query = c.box(3.6, 2.0, "query encoder\n(gradient)", NETWORK, w=1.4, h=0.55)
    key = c.box(3.6, 0.6, "key encoder\n(momentum)", NETWORK, w=1.4, h=0.55)
    queue = c.box(5.2, 0.6, "queue of K\nold keys", DATA, w=1.1, h=0.55)
    loss = c.box(6.4, 2.0, "InfoNCE:\nq.k+ vs q.queue", TARGET, w=1.3, h=0.6)
    c.branches([image, q_view, query], [image, k_view, key])
    c.arrow(query, loss, "q")
    c.arrow(key, loss, "k+")
    c.arrow(key, queue, "push k+", side="below")
    c.arrow(queue, loss, "negatives", side="below")
    c.arrow(query, key, "theta_k <- m theta_k + (1-m) theta_q", dashed=True, bend=0.0)
    return c.figure


def swav() -> Figure:
    c = Canvas(7.2, 2.8, "SwAV: codes from one view, predicted from the other, via prototypes")
    image = c.box(0.7, 1.3, "image x")
    v1, v2 = c.box(1.8, 2.0, "view 1", w=0.9), c.box(1.8, 0.6, "view 2", w=0.9)
    f1, f2 = c.box(3.1, 2.0, "encoder\n+ head", NETWORK, h=0.55), c.box(3.1, 0.6, "encoder\n+ head", NETWORK, h=0.55)
    protos = c.box(4.5, 1.3, "prototypes C\n(K vectors)", NETWORK, w=1.2, h=0.55)
    codes1, codes2 = c.box(5.9, 2.0, "Sinkhorn ->\ncode q1", DATA, h=0.55), c.box(5.9, 0.6, "Sinkhorn ->\ncode q2", DATA, h=0.55)
    c.branches([image, v1, f1, protos, codes1], [image, v2, f2, protos, codes2], ("", "", "z1", "scores z1.C"),
               ("", "", "z2", "scores z2.C"))
    c.note(5.3, 1.3, "swap: predict q2 from z1,\nq1 from z2 (cross-entropy)")
    return c.figure


def jigsaw() -> Figure:
    c = Canvas(7.2, 2.8, "Jigsaw: nine shuffled tiles, one shared tile network, which permutation?")
    image = c.box(0.8, 1.3, "image x\n3x3 tiles", h=0.55)
    shuffled = c.box(2.1, 1.3, "shuffle by\npermutation p", DATA, h=0.55)
    tiles = [c.box(3.5, 2.2 - 0.45 * i, f"tile {n}", DATA, w=0.7, h=0.3) for i, n in enumerate((1, 2, "...", 9))]
    nets = [c.box(4.6, 2.2 - 0.45 * i, "tile net", NETWORK, w=0.9, h=0.3) for i in range(4)]
    concat = c.box(5.6, 1.3, "concat\n+ MLP", NETWORK, w=0.8, h=0.55)
    target = c.box(6.6, 1.3, "which p of\nthe set?", TARGET, w=0.9, h=0.55)
    c.arrow(image, shuffled)
    for tile, net in zip(tiles, nets):
        c.flow(shuffled, tile, net, concat)
    c.arrow(concat, target)
    c.note(4.2, 0.25, "the nine tile nets share their weights")
    return c.figure


def context() -> Figure:
    c = Canvas(7.2, 2.6, "Context prediction: a pair of patches, a shared network, where is the second?")
    image = c.box(0.8, 1.2, "image x")
    centre, neighbour = c.box(2.2, 1.8, "centre patch"), c.box(2.2, 0.6, "one of its 8\nneighbours", h=0.55)
    f1, f2 = c.box(3.7, 1.8, "patch net", NETWORK), c.box(3.7, 0.6, "patch net", NETWORK)
    join = c.box(5.0, 1.2, "concat\n+ MLP", NETWORK, w=0.9, h=0.55)
    target = c.box(6.3, 1.2, "which of the\n8 positions?", TARGET, w=1.1, h=0.55)
    c.branches([image, centre, f1, join], [image, neighbour, f2, join], ("crop, gap",), ("crop, jitter",))
    c.arrow(join, target)
    c.note(3.2, 1.2, "same weights")
    return c.figure


def rotation() -> Figure:
    c = Canvas(7.2, 2.8, "Rotation: four copies of each image, one network, a 4-way head")
    image = c.box(0.8, 1.3, "image x")
    copies = [c.box(2.4, 2.25 - 0.63 * k, f"rotate {90 * k}°", DATA, w=1.0, h=0.36) for k in range(4)]
    net = c.box(4.1, 1.3, "encoder f", NETWORK, h=0.55)
    head = c.box(5.3, 1.3, "linear head\n4 logits", NETWORK, w=1.0, h=0.55)
    target = c.box(6.5, 1.3, "label: k\n(0, 1, 2, 3)", TARGET, w=0.9, h=0.55)
    for copy in copies:
        c.flow(image, copy, net)
    c.flow(net, head, target)
    c.note(4.8, 0.5, "loss: cross-entropy with the applied k")
    return c.figure


def colorization() -> Figure:
    c = Canvas(7.2, 2.4, "Colorization: from lightness L, a distribution over quantised ab bins")
    image = c.box(0.8, 1.2, "image x\n(RGB)", h=0.55)
    lab = c.box(2.0, 1.2, "to Lab", DATA, w=0.8)
    grey = c.box(3.2, 1.7, "L (input)", DATA, w=1.0)
    colour = c.box(3.2, 0.55, "ab (target)", DATA, w=1.0)
    net = c.box(4.6, 1.7, "network", NETWORK, w=1.0)
    bins = c.box(4.6, 0.55, "soft-encode to\nQ ab bins", DATA, w=1.2, h=0.55)
    loss = c.box(6.3, 1.1, "rebalanced\ncross-entropy\nper pixel", TARGET, w=1.2, h=0.75)
    c.arrow(image, lab)
    c.branches([lab, grey, net, loss], [lab, colour, bins, loss], ("", "", "Q logits"), ("", "", "soft labels"))
    return c.figure


def inpainting() -> Figure:
    c = Canvas(7.2, 2.4, "Inpainting (context encoder): paint the hidden centre back from its surroundings")
    image = c.box(0.7, 1.15, "image x", w=1.0)
    context = c.box(2.0, 1.7, "centre masked:\nthe context", DATA, h=0.55)
    centre = c.box(2.0, 0.55, "the true centre", DATA)
    encoder = c.box(3.35, 1.7, "encoder f", NETWORK, w=1.0)
    decoder = c.box(4.75, 1.7, "channel-wise FC\n+ decoder", NETWORK, w=1.3, h=0.55)
    predicted = c.box(6.4, 1.7, "predicted\ncentre", DATA, w=1.0, h=0.55)
    loss = c.box(6.4, 0.55, "L2 loss on\nthe centre", TARGET, w=1.0, h=0.55)
    c.branches([image, context, encoder, decoder, predicted, loss], [image, centre, loss], ("hide",), ("keep", "target"))
    c.note(2.9, 1.12, "the readout uses f's features")
    return c.figure


def split_brain() -> Figure:
    c = Canvas(7.2, 2.8, "Split-brain autoencoder: each half predicts the channels the other one sees")
    image = c.box(0.8, 1.3, "image x\n(Lab)", h=0.55)
    lightness, colour = c.box(2.1, 2.0, "L", DATA, w=0.9), c.box(2.1, 0.6, "ab", DATA, w=0.9)
    net1 = c.box(3.4, 2.0, "net F1\n(half width)", NETWORK, w=1.1, h=0.55)
    net2 = c.box(3.4, 0.6, "net F2\n(half width)", NETWORK, w=1.1, h=0.55)
    features = c.box(4.8, 1.3, "features\n[F1(L), F2(ab)]", DATA, w=1.2, h=0.55)
    ab_hat = c.box(6.3, 2.0, "predict ab:\nclasses over bins", TARGET, w=1.4, h=0.55)
    l_hat = c.box(6.3, 0.6, "predict L:\nclasses over bins", TARGET, w=1.4, h=0.55)
    c.branches([image, lightness, net1, ab_hat], [image, colour, net2, l_hat])
    c.arrow(net1, features, dashed=True)
    c.arrow(net2, features, dashed=True)
    c.note(2.9, 1.3, "no weights\nshared")
    return c.figure


def deepcluster() -> Figure:
    c = Canvas(7.2, 2.6, "DeepCluster: cluster the features, learn to predict the clusters, repeat")
    images = c.box(0.9, 1.3, "all images")
    net = c.box(2.5, 1.3, "encoder f", NETWORK)
    feats = c.box(4.1, 2.0, "features\n(PCA, L2)", DATA, h=0.55)
    kmeans = c.box(5.8, 2.0, "k-means:\npseudo-labels", TARGET, w=1.3, h=0.55)
    train = c.box(5.8, 0.6, "train f + new head\non pseudo-labels", NETWORK, w=1.6, h=0.55)
    c.flow(images, net, feats, kmeans, train, labels=("", "1. embed", "2. cluster", "3. labels"))
    c.arrow(train, net, "4. update f, next epoch", dashed=True, side="below")
    return c.figure


def npid() -> Figure:
    c = Canvas(7.2, 2.6, "NPID: every image its own class, negatives from a memory bank")
    image = c.box(0.8, 1.7, "image x_i\n(augmented)", h=0.55)
    net = c.box(2.3, 1.7, "encoder f\n+ L2", NETWORK, h=0.55)
    bank = c.box(4.0, 0.6, "memory bank:\none vector per image", DATA, w=1.7, h=0.55)
    loss = c.box(5.9, 1.7, "NCE: v_i vs its own\nbank entry, not\nsampled others", TARGET, w=1.6, h=0.75)
    c.flow(image, net, loss, labels=("", "v_i"))
    c.arrow(bank, loss, "entries", side="below")
    c.arrow(net, bank, "update entry i\n(momentum)", dashed=True, side="below")
    return c.figure


def pirl() -> Figure:
    c = Canvas(7.2, 2.8, "PIRL: an image and its jigsaw tiles should have the same representation")
    image = c.box(0.8, 1.3, "image x")
    whole = c.box(2.2, 2.0, "image view", DATA)
    tiles = c.box(2.2, 0.6, "9 shuffled\ntiles", DATA, h=0.55)
    f = c.box(3.7, 2.0, "encoder f\n+ head", NETWORK, h=0.55)
    g = c.box(3.7, 0.6, "f per tile,\nconcat + head", NETWORK, w=1.3, h=0.55)
    bank = c.box(5.2, 0.6, "memory bank\n(negatives)", DATA, w=1.2, h=0.55)
    loss = c.box(6.4, 1.9, "NCE: tiles' vector\nmatches the image's", TARGET, w=1.5, h=0.55)
    c.branches([image, whole, f, loss], [image, tiles, g, loss], ("", "", "v_I"), ("jigsaw", "", "v_It"), bottom_side="above")
    c.arrow(bank, loss, "negatives", side="below")
    return c.figure


def ambient_sound() -> Figure:
    c = Canvas(7.2, 2.4, "Ambient sound (Owens et al. 2016): predict the sound's cluster from a frame")
    video = c.box(0.8, 1.2, "video")
    frame = c.box(2.2, 1.7, "one frame", DATA)
    sound = c.box(2.2, 0.6, "its sound\n(seconds)", DATA, h=0.55)
    net = c.box(3.8, 1.7, "image CNN", NETWORK)
    stats = c.box(3.8, 0.6, "sound texture\nstatistics", DATA, w=1.3, h=0.55)
    target = c.box(5.5, 0.6, "k-means cluster\n= label", TARGET, w=1.3, h=0.55)
    loss = c.box(5.5, 1.7, "cross-entropy", TARGET, w=1.3)
    c.branches([video, frame, net], [video, sound, stats, target])
    c.arrow(net, loss, "class scores")
    c.arrow(target, loss)
    return c.figure


def ego_motion() -> Figure:
    c = Canvas(7.2, 2.4, "Ego-motion (Jayaraman and Grauman 2015): features that move with the camera")
    pair = c.box(0.9, 1.2, "frames x_i, x_j\n+ sensed motion", h=0.55, w=1.4)
    fi, fj = c.box(2.7, 1.7, "encoder f", NETWORK), c.box(2.7, 0.6, "encoder f", NETWORK)
    map_ = c.box(4.3, 1.7, "map M_g for\nmotion class g", NETWORK, w=1.3, h=0.55)
    loss = c.box(6.1, 1.2, "M_g f(x_i) close\nto f(x_j); apart\nfor other pairs", TARGET, w=1.5, h=0.75)
    c.branches([pair, fi], [pair, fj])
    c.flow(fi, map_, loss)
    c.arrow(fj, loss)
    return c.figure


def future_prediction() -> Figure:
    c = Canvas(7.2, 2.4, "Future prediction (Walker et al. 2016): a frame -> possible motions, a VAE")
    frame = c.box(0.8, 1.7, "frame")
    future = c.box(0.8, 0.6, "observed\ntrajectories", DATA, h=0.55)
    net = c.box(2.4, 1.7, "image tower", NETWORK)
    enc = c.box(2.4, 0.6, "encoder\n(training only)", NETWORK, h=0.55)
    z = c.box(3.9, 0.6, "latent z", DATA, w=0.9)
    dec = c.box(4.5, 1.7, "decoder", NETWORK, w=1.0)
    out = c.box(6.2, 1.7, "predicted dense\ntrajectories", TARGET, w=1.4, h=0.55)
    c.arrow(frame, net)
    c.arrow(future, enc)
    c.arrow(net, enc, dashed=True)
    c.arrow(enc, z)
    c.arrow(net, dec)
    c.flow(z, dec, out)
    c.note(5.2, 0.7, "at test time, sample z:\none future per sample")
    return c.figure


def skipgram() -> Figure:
    c = Canvas(7.2, 2.4, "Skip-gram with negative sampling (word2vec): predict the neighbours of a word")
    text = c.box(0.9, 1.2, "text:\n'... good morrow\nto you ...'", h=0.75, w=1.4)
    centre = c.box(2.6, 1.7, "centre word w", DATA, w=1.3)
    context_ = c.box(2.6, 0.6, "neighbour c, and\nK noise words", DATA, w=1.4, h=0.55)
    v = c.box(4.2, 1.7, "input table v", NETWORK, w=1.2)
    vp = c.box(4.2, 0.6, "output table v'", NETWORK, w=1.2)
    loss = c.box(6.1, 1.2, "sigma(v'_c . v_w) -> 1\nsigma(v'_k . v_w) -> 0", TARGET, w=1.7, h=0.6)
    c.branches([text, centre, v, loss], [text, context_, vp, loss], ("", "", "v_w"), ("", "", "v'_c, v'_k"))
    return c.figure


DIAGRAMS = {f.__name__: f for f in (simclr, moco, swav, jigsaw, context, rotation, colorization, inpainting, split_brain,
                                    deepcluster, npid, pirl, ambient_sound, ego_motion, future_prediction, skipgram)}


def svg_bytes(figure: Figure) -> bytes:
    """The figure as SVG with no date and fixed element ids: the same bytes on every run."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def write_all(names=None, folder: Path = FIGURES) -> list[Path]:
    """Write ``<folder>/<name>.svg`` for each diagram (all by default); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or DIAGRAMS:
        path = folder / f"{name}.svg"
        path.write_bytes(svg_bytes(DIAGRAMS[name]()))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all(sys.argv[1:]):
        print(f"wrote {written}")
