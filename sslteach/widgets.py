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
from .colorization import rgb_to_lab
from .colorizer import decode_colours, predict_colours
from .rotation import ROTATION_NAMES


def png_bytes(image: torch.Tensor, scale: int = 4) -> bytes:
    """(3, H, W) uint8 or float image -> PNG bytes, enlarged ``scale`` times without smoothing."""
    array = (to_float(image.detach().cpu()).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
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
        self.L, self.logits = predict_colours(model.eval(), images)  # (B, 1, H, W), (B, Q, h, w)
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
        self.colourised = decode_colours(self.L, self.logits, self.bins, self.temperature.value).cpu()
        self.chroma = rgb_to_lab(self.colourised)[:, 1:].norm(dim=1).mean().item()
        rows = torch.cat([self.colourised, self.originals])  # (2B, 3, H, W)
        self.picture.value = png_bytes(make_grid(rows, nrow=len(self.originals), padding=2, pad_value=1.0), self.scale)
        self.caption.value = (f"T = {self.temperature.value:.2f}: mean chroma {self.chroma:.1f} "
                              f"(originals, bottom row: {self.true_chroma:.1f})")
