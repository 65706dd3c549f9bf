"""Interactive controls for the lectures (ipywidgets 8; nothing to install in JupyterLab 4).

Each builder returns a widget whose state can be driven from Python, which is how the tests
check the logic without a browser: set ``.value`` on a control and the outputs update.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid

from .augment import to_float
from .clustering import kmeans, normalized_mutual_info
from .colorization import rgb_to_lab
from .colorizer import decode_colors, predict_colors
from .context import (ABERRATION, CENTRE_CELL, CONTEXT, NEIGHBOUR_CELLS, NEIGHBOUR_NAMES, ContextTask,
                      chromatic_aberration, context_probabilities, crop_patches, grid_corners)
from .contrastive import candidate_gradients
from .jigsaw import assemble, cut_tiles, jigsaw_probabilities, normalize_tiles
from .rotation import ROTATION_NAMES
from .text import nearest_neighbours


def png_bytes(image: torch.Tensor, scale: int = 4) -> bytes:
    """(3, H, W) uint8 or float image -> PNG bytes, enlarged ``scale`` times without smoothing."""
    array = (to_float(image.detach().cpu()).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def figure_png_bytes(fig) -> bytes:
    """A matplotlib ``Figure`` (made without pyplot, so nothing is shown twice) -> PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


class RotationExplorer(widgets.VBox):
    """Pick an image and a rotation; see the image as the network sees it and its prediction.

    Attributes
    ----------
    image_index : IntSlider
    rotation : ToggleButtons
        Which rotation to apply, 0°, 90°, 180° or 270°.
    bars : list of FloatProgress
        The predicted probability of each rotation (values in [0, 1]).
    probabilities : (4,) tensor
        The same numbers, for code and tests.
    """

    def __init__(self, model, images: torch.Tensor, classes=None, labels=None):
        self.model, self.images, self.classes, self.labels = model.eval(), images, classes, labels
        self.image_index = widgets.IntSlider(0, min=0, max=len(images) - 1, description="image")
        choices = [(name, k) for k, name in enumerate(ROTATION_NAMES)]  # (label shown, value)
        self.rotation = widgets.ToggleButtons(options=choices, value=0, description="rotate by")
        self.picture = widgets.Image(format="png", width=128, height=128)
        self.caption = widgets.HTML()
        self.bars = [widgets.FloatProgress(0.0, min=0.0, max=1.0, description=name) for name in ROTATION_NAMES]
        self.numbers = [widgets.Label() for _ in ROTATION_NAMES]
        rows = [widgets.HBox([bar, number]) for bar, number in zip(self.bars, self.numbers)]
        prediction = widgets.VBox([widgets.HTML("<b>predicted rotation</b>"), *rows])
        super().__init__([self.image_index, self.rotation, widgets.HBox([widgets.VBox([self.picture, self.caption]), prediction])])
        self.image_index.observe(self.update, names="value")
        self.rotation.observe(self.update, names="value")
        self.update()

    @torch.no_grad()
    def update(self, change=None):
        k = self.rotation.value
        image = torch.rot90(to_float(self.images[self.image_index.value]), k, dims=(1, 2))  # (3, H, W)
        device = next(self.model.parameters()).device
        logits = self.model(image.unsqueeze(0).to(device).contiguous(memory_format=torch.channels_last))
        self.probabilities = F.softmax(logits.float(), dim=1)[0].cpu()  # (4,)
        self.picture.value = png_bytes(image)
        guess = int(self.probabilities.argmax())
        verdict = "right" if guess == k else "wrong"
        label = f"{self.classes[int(self.labels[self.image_index.value])]}, " if self.classes is not None else ""
        self.caption.value = f"{label}guess {ROTATION_NAMES[guess]} ({verdict})"
        for bar, number, p in zip(self.bars, self.numbers, self.probabilities.tolist()):
            bar.value = p
            bar.bar_style = "success" if bar is self.bars[k] else ""
            number.value = f"{100 * p:.1f}%"


class TemperatureExplorer(widgets.VBox):
    """The annealed mean's temperature T (Zhang et al. 2016, Eq. 5) as a slider, from mode to mean.

    The network runs once; moving the slider only re-decodes its stored distributions, so the
    pictures follow the slider at once. Top row: colourised at T; bottom row: the originals.

    Attributes
    ----------
    temperature : FloatLogSlider
        T from 0.01 (practically the mode) to 1 (the mean).
    preset : ToggleButtons
        Jump to the mode, the paper's T = 0.38, or the mean.
    colourised : (B, 3, H, W) float tensor
        The images as shown, for code and tests.
    chroma : float
        Mean chroma sqrt(a^2 + b^2) of the colourised images (the originals' is in the caption).
    """

    def __init__(self, model, images: torch.Tensor, bins: torch.Tensor, temperature: float = 0.38, scale: int = 3):
        self.L, self.logits = predict_colors(model.eval(), images)  # (B, 1, H, W), (B, Q, h, w)
        self.bins, self.scale = bins.to(self.logits.device), scale
        self.originals = to_float(images).float().cpu()
        self.true_chroma = rgb_to_lab(self.originals)[:, 1:].norm(dim=1).mean().item()
        self.temperature = widgets.FloatLogSlider(temperature, base=10, min=-2, max=0, step=0.02,
                                                  description="T", readout_format=".2f")
        presets = [("mode (T = 0.01)", 0.01), ("the paper (T = 0.38)", 0.38), ("mean (T = 1)", 1.0)]
        self.preset = widgets.ToggleButtons(options=presets, value=temperature if temperature in (0.01, 0.38, 1.0) else None)
        self.picture = widgets.Image(format="png")
        self.caption = widgets.HTML()
        super().__init__([self.preset, self.temperature, self.caption, self.picture])
        self.preset.observe(lambda change: change["new"] is None or setattr(self.temperature, "value", change["new"]), names="value")
        self.temperature.observe(self.update, names="value")
        self.update()

    @torch.no_grad()
    def update(self, change=None):
        self.colourised = decode_colors(self.L, self.logits, self.bins, self.temperature.value).cpu()
        self.chroma = rgb_to_lab(self.colourised)[:, 1:].norm(dim=1).mean().item()
        rows = torch.cat([self.colourised, self.originals])  # (2B, 3, H, W)
        self.picture.value = png_bytes(make_grid(rows, nrow=len(self.originals), padding=2, pad_value=1.0), self.scale)
        self.caption.value = (f"T = {self.temperature.value:.2f}: mean chroma {self.chroma:.1f} "
                              f"(originals, bottom row: {self.true_chroma:.1f})")


class JigsawPuzzle(widgets.VBox):
    """Solve a shuffled 3x3 puzzle yourself, then see the network's answer and its confidence.

    The puzzle is the network's own pretext task: the tiles of a held-out image, shuffled by a
    permutation from the network's set. Tiles are shown as cut; the network sees them normalised.

    Attributes
    ----------
    puzzle : IntSlider
        Which image; moving it deals a new puzzle.
    choices : list of 9 Dropdown
        For each grid cell in raster order, the number (1-9) of the shuffled tile placed there.
    check : Button
        Shows whether your arrangement is right, and the network's answer.
    permutation : (9,) int64 tensor
        The puzzle's shuffle: position j shows the tile of cell ``permutation[j]``.
    probabilities : (N,) tensor
        The network's probability for each permutation of the set.
    """

    def __init__(self, model, images: torch.Tensor, permutations: torch.Tensor, classes=None, labels=None, seed: int = 0):
        self.model, self.images, self.permutations = model.eval(), images, permutations.cpu()
        self.classes, self.labels, self.seed = classes, labels, seed
        self.puzzle = widgets.IntSlider(0, min=0, max=len(images) - 1, description="puzzle")
        self.tiles = [widgets.Image(format="png", width=48, height=48) for _ in range(9)]
        shown = widgets.HBox([widgets.VBox([t, widgets.Label(str(j + 1))]) for j, t in enumerate(self.tiles)])
        self.choices = [widgets.Dropdown(options=list(range(1, 10)), layout=widgets.Layout(width="60px")) for _ in range(9)]
        grid = widgets.GridBox(self.choices, layout=widgets.Layout(grid_template_columns="repeat(3, 64px)"))
        self.check = widgets.Button(description="check", button_style="primary")
        self.yours, self.theirs = widgets.Image(format="png", width=144), widgets.Image(format="png", width=144)
        self.verdict = widgets.HTML()
        answer = widgets.HBox([widgets.VBox([widgets.HTML("<b>your arrangement</b>"), self.yours]),
                               widgets.VBox([widgets.HTML("<b>the network's</b>"), self.theirs])])
        super().__init__([self.puzzle, widgets.HTML("<b>the shuffled tiles</b>"), shown,
                          widgets.HTML("which tile goes in each cell of the grid?"), widgets.HBox([grid, self.check]),
                          answer, self.verdict])
        self.puzzle.observe(self.deal, names="value")
        for choice in self.choices:
            choice.observe(self.show_yours, names="value")
        self.check.on_click(self.reveal)
        self.deal()

    @torch.no_grad()
    def deal(self, change=None):
        """A new puzzle: the tiles, shuffled by a permutation drawn for this image; the network's answer."""
        generator = torch.Generator().manual_seed(self.seed + self.puzzle.value)
        image = to_float(self.images[self.puzzle.value : self.puzzle.value + 1]).cpu()  # (1, 3, H, W)
        self.label = int(torch.randint(len(self.permutations), (1,), generator=generator))
        self.permutation = self.permutations[self.label]
        raster = cut_tiles(image, generator)  # (1, 9, 3, T, T), the tiles in their cells
        self.shown = raster[0, self.permutation]  # (9, 3, T, T): position j holds cell permutation[j]
        device = next(self.model.parameters()).device
        puzzle = normalize_tiles(raster)[:, self.permutation].to(device)
        self.probabilities = jigsaw_probabilities(self.model, puzzle)[0].float().cpu()  # (N,)
        for widget, tile in zip(self.tiles, self.shown):
            widget.value = png_bytes(tile, scale=6)
        self.revealed = False
        self.theirs.value = png_bytes(torch.ones(3, 1, 1))
        for cell, choice in enumerate(self.choices):  # start from the tiles as dealt
            choice.unobserve(self.show_yours, names="value")
            choice.value = cell + 1
            choice.observe(self.show_yours, names="value")
        self.show_yours()

    @property
    def guess(self) -> torch.Tensor:
        """(9,) int64: for each cell, the position (0-8) of the tile the student put there."""
        return torch.tensor([choice.value - 1 for choice in self.choices])

    def show_yours(self, change=None):
        self.yours.value = png_bytes(assemble(self.shown[self.guess].unsqueeze(0))[0], scale=4)
        placed = int((self.permutation[self.guess] == torch.arange(9)).sum())
        self.verdict.value = f"{placed} of 9 tiles in the right cell. Press <i>check</i> to compare with the network."
        if self.revealed:
            self.reveal()

    def reveal(self, button=None):
        self.revealed = True
        guessed = int(self.probabilities.argmax())
        order = self.permutations[guessed].argsort()  # cell c <- the position the network puts there
        self.theirs.value = png_bytes(assemble(self.shown[order].unsqueeze(0))[0], scale=4)
        solved = bool((self.guess == self.permutation.argsort()).all())
        what = f"{self.classes[int(self.labels[self.puzzle.value])]}: " if self.classes is not None else ""
        network = "solved it" if guessed == self.label else "got it wrong"
        self.verdict.value = (
            f"{what}you {'solved it' if solved else 'did not solve it'}. The network {network}: it picked "
            f"permutation {guessed} of {len(self.permutations)} with probability {self.probabilities[guessed]:.2f}, "
            f"and gave the true one ({self.label}) {self.probabilities[self.label]:.2f}."
        )


class ContrastTemperatureExplorer(widgets.VBox):
    """InfoNCE's temperature tau as a slider: the softmax over one anchor's candidates, and where
    the push on the negatives goes (``sslteach.contrastive.candidate_gradients``).

    Built from embeddings of two views of B images, as SimCLR sees them: the anchor is view 1 of
    image i, its positive is view 2 of image i, and the other 2B - 2 views are its negatives.
    The same temperature as the annealed mean's of lecture 01 (``TemperatureExplorer``), here on
    cosine similarities instead of colour logits.

    Attributes
    ----------
    anchor : IntSlider
        Which image's first view is the anchor.
    temperature : FloatLogSlider
        tau from 0.01 to 2.
    similarities, probabilities, gradients : (2B - 1,) tensors
        Cosine similarity, softmax probability and dl/ds of each candidate, the positive first.
    hard_share : float
        Fraction of the total push on the negatives that goes to the hardest ``hardest`` of them
        (the most similar 5% by default).
    """

    def __init__(self, z: torch.Tensor, views: torch.Tensor, temperature: float = 0.2, hardest: float = 0.05, scale: int = 2):
        B = len(z) // 2
        self.z, self.views, self.scale = F.normalize(z.detach().float().cpu(), dim=1), to_float(views.detach().cpu()), scale
        self.hardest = max(1, round(hardest * (2 * B - 2)))
        self.anchor = widgets.IntSlider(0, min=0, max=B - 1, description="anchor")
        self.temperature = widgets.FloatLogSlider(temperature, base=10, min=-2, max=0.3, step=0.02,
                                                  description="tau", readout_format=".2f")
        self.thumbnails, self.plot, self.caption = widgets.Image(format="png"), widgets.Image(format="png"), widgets.HTML()
        legend = widgets.HTML("anchor | its positive | the hardest negatives, most similar first")
        super().__init__([self.anchor, self.temperature, legend, self.thumbnails, self.caption, self.plot])
        self.anchor.observe(self.update, names="value")
        self.temperature.observe(self.update, names="value")
        self.update()

    def candidates(self, i: int) -> torch.Tensor:
        """Indices into the 2B views of anchor i's candidates: its positive first, then the negatives."""
        B = len(self.z) // 2
        others = [j for j in range(2 * B) if j not in (i, i + B)]
        return torch.tensor([i + B] + others)

    @torch.no_grad()
    def update(self, change=None):
        i, tau = self.anchor.value, self.temperature.value
        order = self.candidates(i)
        self.similarities = self.z[order] @ self.z[i]  # (2B - 1,), positive first
        self.probabilities, self.gradients = candidate_gradients(self.similarities, tau)
        push = self.gradients[1:]  # (2B - 2,) dl/ds_j of the negatives, all positive
        hardest = push.topk(self.hardest).indices  # push grows with similarity: the hardest negatives
        self.hard_share = float(push[hardest].sum() / push.sum())
        effective = float(push.sum() ** 2 / (push ** 2).sum())  # how many negatives share the push
        shown = torch.cat([torch.tensor([i, order[0]]), order[1:][hardest[:6]]])
        self.thumbnails.value = png_bytes(make_grid(self.views[shown], nrow=len(shown), padding=2, pad_value=1.0), self.scale)
        loss = -torch.log(self.probabilities[0])
        self.caption.value = (
            f"tau = {tau:.2f}: loss {loss:.2f}, p(positive) = {self.probabilities[0]:.2f} "
            f"(similarity {self.similarities[0]:.2f}). The hardest {self.hardest} of {len(push)} negatives "
            f"(similarities {', '.join(f'{s:.2f}' for s in self.similarities[1:][hardest[:6]])}, ...) "
            f"get {100 * self.hard_share:.0f}% of the push; about {effective:.0f} negatives share it."
        )
        self.plot.value = self.figure_png()

    def figure_png(self) -> bytes:
        """Left: softmax over the candidates by similarity. Right: each negative's share of the push."""
        from matplotlib.figure import Figure

        s, p = self.similarities.numpy(), self.probabilities.numpy()
        share = (self.gradients[1:] / self.gradients[1:].sum()).numpy()
        fig = Figure(figsize=(8, 2.8))
        left, right = fig.subplots(1, 2)
        left.scatter(s[1:], p[1:], s=8, color="C0", label="negatives")
        left.scatter(s[:1], p[:1], s=40, color="C3", label="positive")
        left.set(xlabel="cosine similarity to the anchor", ylabel="softmax probability", ylim=(0, 1.02),
                 title=f"softmax(s / {self.temperature.value:.2f}) over the candidates")
        left.legend(fontsize=8)
        right.scatter(s[1:], share, s=8, color="C0")
        right.set(xlabel="cosine similarity to the anchor", ylabel="share of the push", yscale="log",
                  ylim=(max(share.min(), 1e-12) / 2, 2), title="gradient on each negative, p_j / tau")
        fig.tight_layout()
        return figure_png_bytes(fig)


class ContextExplorer(widgets.VBox):
    """Lecture 02's lens shortcut, one pair at a time: pick a test image, a neighbour and the
    lens (simulated chromatic aberration), and see each network's 8-way answer.

    The patches are cut as in training (``task``: patch, gap, jitter), from the image seen through
    the lens when it is on. The jitter is drawn once per image (seeded), so switching the lens or
    the neighbour changes nothing else. Every network sees the same 8 pairs, one per neighbour.

    Attributes
    ----------
    image_index : IntSlider
    neighbour : ToggleButtons
        Which of the 8 neighbours is paired with the centre: k in 0..7, ``NEIGHBOUR_NAMES[k]``.
    lens : Checkbox
        Whether the image is seen through the simulated lens (``chromatic_aberration``).
    pairs : (8, 2, 3, P, P) float tensor
        The centre patch with each neighbour in turn, as the networks see them.
    probabilities : dict of name -> (8, 8) tensor
        Each network's predicted positions (columns) for the pair of each neighbour (rows).
    """

    def __init__(self, networks: dict, images: torch.Tensor, classes=None, labels=None,
                 task: ContextTask = CONTEXT, strength: float = ABERRATION, lens: bool = True, seed: int = 0):
        self.networks = {name: net.eval() for name, net in networks.items()}
        self.images, self.classes, self.labels = images, classes, labels
        self.task, self.strength, self.seed = task, strength, seed
        self.image_index = widgets.IntSlider(0, min=0, max=len(images) - 1, description="image")
        self.neighbour = widgets.ToggleButtons(options=[(name, k) for k, name in enumerate(NEIGHBOUR_NAMES)], value=0,
                                               description="neighbour", style={"button_width": "104px"})
        self.lens = widgets.Checkbox(lens, description=f"through the lens (chromatic aberration, s = {strength})", indent=False,
                                    layout=widgets.Layout(width="auto"))
        self.picture = widgets.Image(format="png", width=192, height=192)
        self.centre, self.other = widgets.Image(format="png", width=96), widgets.Image(format="png", width=96)
        self.plot, self.caption = widgets.Image(format="png"), widgets.HTML()
        top = widgets.Layout(align_items="flex-start")  # an HBox would stretch the pictures to the tallest
        patches = widgets.HBox([widgets.VBox([widgets.HTML("<b>centre</b>"), self.centre]),
                                widgets.VBox([widgets.HTML("<b>neighbour</b>"), self.other])])
        super().__init__([self.image_index, self.neighbour, self.lens,
                          widgets.HBox([self.picture, patches, self.plot], layout=top), self.caption])
        self.image_index.observe(self.cut, names="value")
        self.lens.observe(self.cut, names="value")
        self.neighbour.observe(self.show, names="value")
        self.cut()

    @torch.no_grad()
    def cut(self, change=None):
        """Cut the 3x3 grid of the chosen image (through the lens or not) and ask every network."""
        index, task = self.image_index.value, self.task
        self.image = to_float(self.images[index : index + 1]).float().cpu()  # (1, 3, H, W)
        if self.lens.value:
            self.image = chromatic_aberration(self.image, self.strength)
        generator = torch.Generator().manual_seed(self.seed + index)
        self.corners = grid_corners(1, self.image.shape[-1], task.patch_size, task.gap, task.jitter, generator)[0]  # (9, 2)
        patches = crop_patches(self.image, self.corners[None, :, 0], self.corners[None, :, 1], task.patch_size)[0]  # (9, 3, P, P)
        centres = patches[CENTRE_CELL].expand(8, -1, -1, -1)  # (8, 3, P, P)
        self.pairs = torch.stack([centres, patches[list(NEIGHBOUR_CELLS)]], dim=1)  # (8, 2, 3, P, P)
        self.probabilities = {name: context_probabilities(net, self.pairs.to(next(net.parameters()).device)).float().cpu()
                              for name, net in self.networks.items()}  # name -> (8, 8)
        self.show()

    def show(self, change=None):
        """Redraw for the chosen neighbour: the grid on the image, the two patches, the answers."""
        k, scale = self.neighbour.value, 6
        picture = F.interpolate(self.image, scale_factor=scale, mode="nearest")[0]  # (3, 6H, 6W)
        size = self.task.patch_size * scale
        for cell, colour in [(CENTRE_CELL, (1.0, 0.85, 0.0)), (NEIGHBOUR_CELLS[k], (0.0, 0.75, 1.0))]:
            top, left = (scale * self.corners[cell]).tolist()
            box = picture[:, top : top + size, left : left + size]  # a view: the outline is drawn in place
            colour = torch.tensor(colour).view(3, 1, 1)
            box[:, :2], box[:, -2:], box[:, :, :2], box[:, :, -2:] = colour, colour, colour, colour
        self.picture.value = png_bytes(picture, scale=1)
        self.centre.value = png_bytes(self.pairs[k, 0], scale=12)
        self.other.value = png_bytes(self.pairs[k, 1], scale=12)
        self.plot.value = self.figure_png()
        what = f"{self.classes[int(self.labels[self.image_index.value])]}, " if self.classes is not None else ""
        lens = "through the lens" if self.lens.value else "without the lens"
        answers = []
        for name, p in self.probabilities.items():
            right = int((p.argmax(dim=1) == torch.arange(8)).sum())
            answers.append(f"{name}: {NEIGHBOUR_NAMES[int(p[k].argmax())]}, p(true) = {p[k, k]:.2f}, "
                           f"{right} of this image's 8 neighbours placed right")
        self.caption.value = f"{what}{lens}, true position {NEIGHBOUR_NAMES[k]}.<br>" + "<br>".join(answers)

    def figure_png(self) -> bytes:
        """One 3x3 grid per network: its probability for each position, the true one outlined."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        k = self.neighbour.value
        fig = Figure(figsize=(2.7 * len(self.probabilities), 2.9), layout="constrained")
        for ax, (name, p) in zip(fig.subplots(1, len(self.probabilities), squeeze=False)[0], self.probabilities.items()):
            grid = torch.full((9,), float("nan"))
            grid[list(NEIGHBOUR_CELLS)] = p[k]
            ax.imshow(grid.view(3, 3).numpy(), cmap="Blues", vmin=0, vmax=1)
            for cell in range(9):
                text = "centre" if cell == CENTRE_CELL else f"{100 * grid[cell]:.0f}%"
                ax.text(cell % 3, cell // 3, text, ha="center", va="center", fontsize=9,
                        color="white" if grid[cell] > 0.6 else "black")
            true = NEIGHBOUR_CELLS[k]
            ax.add_patch(Rectangle((true % 3 - 0.5, true // 3 - 0.5), 1, 1, fill=False, edgecolor="tab:orange", linewidth=3))
            guess = int(p[k].argmax())
            ax.set_title(f"{name}\nguess: {NEIGHBOUR_NAMES[guess]} ({'right' if guess == k else 'wrong'})", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        return figure_png_bytes(fig)


class ClusterBrowser(widgets.VBox):
    """Lecture 05's clusters, browsed: pick an encoder's features, k and a cluster; see a sample of
    its members, its size and its class make-up (the majority class's share is its purity).

    Every clustering (each set of features, each k) is made once, when the widget is built, with
    ``sslteach.clustering.kmeans`` and a generator seeded with ``seed`` on the features' device,
    as the lecture clusters; moving a control only redraws.

    Parameters
    ----------
    features : dict of name -> (N, D) tensor
        What k-means clusters, e.g. ``cluster_features(encoder, images, pca_dim)``.
    images : (N, 3, H, W) tensor
    labels : (N,) int64 tensor
        The true classes, used only to describe the clusters.
    classes : list of C names

    Attributes
    ----------
    encoder, k : ToggleButtons
    order : Dropdown
        How the slider walks the clusters: purest first, largest first, or by k-means's numbering.
    cluster : IntSlider
        Position of the shown cluster in that order.
    assignments : dict of (name, k) -> (N,) int64 tensor
    shown : int
        The k-means number of the cluster shown.
    make_up : (C,) int64 tensor
        How many of its members are in each class.
    """

    ORDERS = (("purest first", "purity"), ("largest first", "size"), ("k-means numbering", "number"))

    def __init__(self, features: dict, images: torch.Tensor, labels: torch.Tensor, classes, ks=(10, 30, 100),
                 iterations: int = 20, seed: int = 0, members: int = 32):
        self.images, self.labels, self.classes, self.members = images.cpu(), labels.cpu(), classes, members
        self.assignments, self.counts, self.nmi = {}, {}, {}
        for name, x in features.items():
            for k in ks:
                assignments, _ = kmeans(x, k, iterations, torch.Generator(x.device).manual_seed(seed))
                self.assignments[name, k] = assignments.cpu()
                pairs = self.assignments[name, k] * len(classes) + self.labels  # (N,) one id per (cluster, class)
                self.counts[name, k] = torch.bincount(pairs, minlength=k * len(classes)).view(k, len(classes))  # (k, C)
                self.nmi[name, k] = normalized_mutual_info(self.assignments[name, k], self.labels)
        self.encoder = widgets.ToggleButtons(options=list(features), description="features of")
        self.k = widgets.ToggleButtons(options=list(ks), value=ks[-1], description="k")
        self.order = widgets.Dropdown(options=self.ORDERS, value="purity", description="clusters")
        self.cluster = widgets.IntSlider(0, min=0, max=ks[-1] - 1, description="cluster")
        self.picture, self.caption = widgets.Image(format="png"), widgets.HTML()
        self.bars = [widgets.FloatProgress(0.0, min=0.0, max=1.0, description=name) for name in classes]
        self.numbers = [widgets.Label() for _ in classes]
        top = widgets.Layout(align_items="flex-start")  # an HBox would stretch the picture to the tallest
        make_up = widgets.VBox([widgets.HTML("<b>class make-up</b>"),
                                *[widgets.HBox([bar, number]) for bar, number in zip(self.bars, self.numbers)]])
        super().__init__([self.encoder, self.k, self.order, self.cluster, self.caption,
                          widgets.HBox([self.picture, make_up], layout=top)])
        self.k.observe(self.new_k, names="value")
        for control in (self.encoder, self.order, self.cluster):
            control.observe(self.update, names="value")
        self.update()

    def new_k(self, change):
        self.cluster.unobserve(self.update, names="value")  # one redraw, not two
        self.cluster.max = change["new"] - 1  # moves the slider back to the new maximum if it was beyond
        self.cluster.observe(self.update, names="value")
        self.update()

    def ranking(self) -> torch.Tensor:
        """(k,) k-means numbers of the clusters in the chosen order. Equally pure clusters come
        largest first (a cluster of one image is 100% pure), equally large ones by number."""
        counts = self.counts[self.encoder.value, self.k.value]  # (k, C)
        sizes = counts.sum(dim=1)
        by_size = sizes.argsort(descending=True, stable=True)
        if self.order.value == "number":
            return torch.arange(len(counts))
        if self.order.value == "size":
            return by_size
        purity = counts.max(dim=1).values / sizes.clamp(min=1)
        return by_size[purity[by_size].argsort(descending=True, stable=True)]

    def update(self, change=None):
        name, k = self.encoder.value, self.k.value
        counts = self.counts[name, k]  # (k, C)
        self.shown = int(self.ranking()[min(self.cluster.value, k - 1)])
        self.make_up = counts[self.shown]  # (C,)
        size = int(self.make_up.sum())
        members = (self.assignments[name, k] == self.shown).nonzero().flatten()
        generator = torch.Generator().manual_seed(self.shown)
        pick = members[torch.randperm(size, generator=generator)[: self.members]]
        rank = (-self.make_up).argsort(stable=True).argsort()  # (C,) each class's place in the make-up
        pick = pick[rank[self.labels[pick]].argsort(stable=True)]  # the majority class first
        grid = make_grid(to_float(self.images[pick]), nrow=8, padding=2, pad_value=1.0) if size else torch.ones(3, 34, 34)
        self.picture.value = png_bytes(grid, scale=2)
        shares = (self.make_up / max(size, 1)).tolist()
        majority = int(self.make_up.argmax())
        for c, (bar, number, share) in enumerate(zip(self.bars, self.numbers, shares)):
            bar.value = share
            bar.bar_style = "success" if c == majority and size else ""
            number.value = f"{int(self.make_up[c])} ({100 * share:.0f}%)"
        order = dict((value, label) for label, value in self.ORDERS)[self.order.value]
        mean_purity = counts.max(dim=1).values.sum() / counts.sum()
        self.caption.value = (
            f"<b>{name}, k = {k}</b>: cluster {self.shown} ({self.cluster.value + 1} of {k}, {order}) holds "
            f"{size} of {len(self.labels):,} images, {100 * shares[majority]:.0f}% {self.classes[majority]}; "
            f"{min(size, self.members)} of them below, the majority class first.<br>All {k} clusters: "
            f"mean purity {100 * mean_purity:.0f}%, NMI with the classes {self.nmi[name, k]:.3f}."
        )


class WordNeighbours(widgets.VBox):
    """Lecture 09's word vectors, browsed: pick a word and a table of vectors; see its nearest
    neighbours by cosine similarity (``sslteach.text.nearest_neighbours``).

    Parameters
    ----------
    tables : dict of name -> (V, D) tensor
        Word vectors to compare, e.g. the skip-gram's before and after training.
    words : sequence of V str
        The vocabulary, in the tables' row order.
    choices : list of str
        The words offered in the dropdown.

    Attributes
    ----------
    word : Dropdown
    vectors : ToggleButtons
        Which table the neighbours come from.
    neighbours : list of k str
        The words shown, most similar first.
    similarities : (k,) tensor
        Their cosine similarities with the chosen word.
    """

    def __init__(self, tables: dict, words, choices, k: int = 8):
        self.tables = {name: vectors.detach().float().cpu() for name, vectors in tables.items()}
        self.words, self.k = list(words), k
        self.positions = {w: i for i, w in enumerate(self.words)}
        self.word = widgets.Dropdown(options=list(choices), value=choices[0], description="word")
        self.vectors = widgets.ToggleButtons(options=list(tables), description="vectors")
        self.caption = widgets.HTML()
        self.bars = [widgets.FloatProgress(0.0, min=0.0, max=1.0) for _ in range(k)]
        self.numbers = [widgets.Label() for _ in range(k)]
        rows = [widgets.HBox([bar, number]) for bar, number in zip(self.bars, self.numbers)]
        super().__init__([self.word, self.vectors, self.caption, *rows])
        self.word.observe(self.update, names="value")
        self.vectors.observe(self.update, names="value")
        self.update()

    def update(self, change=None):
        index = self.positions[self.word.value]
        found, self.similarities = nearest_neighbours(self.tables[self.vectors.value], index, self.k)
        self.neighbours = [self.words[i] for i in found.tolist()]
        for bar, number, word, similarity in zip(self.bars, self.numbers, self.neighbours, self.similarities.tolist()):
            bar.description, bar.value = word, max(similarity, 0.0)  # a bar cannot show a negative cosine
            number.value = f"{similarity:+.2f}"
        self.caption.value = (f"<b>{self.word.value}</b>, {self.vectors.value} vectors: the {self.k} nearest of "
                              f"{len(self.words):,} words by cosine similarity")


class HeadlineExplorer(widgets.VBox):
    """Lecture 08's headline table, explored: choose a readout (the probe with all, 10% or 1% of the
    labels, or kNN) and see every method over its pretraining seeds, coloured by the effect rule
    against random init; choose a method to see its seeds and both verdicts in words.

    Parameters
    ----------
    rows : dict of name -> row
        Headline rows of several seeds (``sslteach.headline.course_rows``).
    methods : list of str
        The methods to show, in order; "random-init" and "supervised" are drawn as bands.

    Attributes
    ----------
    readout : ToggleButtons
    method : Dropdown
    verdicts : dict of method -> comparison
        ``sslteach.headline.verdicts`` for the chosen readout.
    """

    READOUTS = (("probe, all labels", "linear_probe"), ("probe, 10%", "0.1"), ("probe, 1%", "0.01"), ("kNN", "knn"))

    def __init__(self, rows: dict, methods):
        from . import headline

        self.rows, self.methods, self.headline = rows, list(methods), headline
        self.readout = widgets.ToggleButtons(options=self.READOUTS, value="linear_probe", description="readout")
        self.method = widgets.Dropdown(options=[m for m in self.methods if m != "random-init"], description="method")
        self.picture, self.caption = widgets.Image(format="png"), widgets.HTML()
        super().__init__([self.readout, self.method, self.caption, self.picture])
        self.readout.observe(self.update, names="value")
        self.method.observe(self.describe, names="value")
        self.update()

    def values(self, method: str) -> list[float]:
        return self.headline.seed_values(self.rows, method, self.readout.value)

    def update(self, change=None):
        from matplotlib.figure import Figure

        from .table_figures import draw_seed_spread

        self.verdicts = self.headline.verdicts(self.rows, metric=self.readout.value)
        label = dict((value, name) for name, value in self.READOUTS)[self.readout.value]
        shown = [m for m in self.methods if m not in ("random-init", "supervised")]
        fig = Figure(figsize=(7, 0.32 * len(shown) + 1.3))
        draw_seed_spread(fig.subplots(), {m: self.values(m) for m in self.methods}, self.verdicts,
                         xlabel=f"{label}: accuracy on held-out images (%)")
        fig.tight_layout()
        self.picture.value = figure_png_bytes(fig)
        self.describe()

    def describe(self, change=None):
        method = self.method.value
        seeds = ", ".join(f"{100 * v:.1f}" for v in self.values(method))
        s = self.headline.summarize(self.values(method))
        lines = [f"<b>{method}</b>, {self.readout.label}: seeds {seeds} (mean {100 * s['mean']:.1f}, sd {100 * s['sd']:.1f})"]
        for other in ("random-init", "supervised"):
            if other != method:
                c = self.headline.compare(self.values(method), self.values(other))
                word = c["verdict"] if c["verdict"] in ("level within noise", "not enough seeds") else f"{c['verdict']} {other}"
                lines.append(f"against {other}: {100 * c['difference']:+.1f} points, twice the combined spread "
                             f"{200 * c['spread']:.1f}: <b>{word}</b>")
        self.caption.value = "<br>".join(lines)
