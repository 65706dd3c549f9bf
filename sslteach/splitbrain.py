"""Cross-channel prediction: the split-brain autoencoder (Zhang, Isola & Efros, CVPR 2017).

Colorization (lecture 01) predicts ab from L, and its encoder never sees colour. The split-brain
autoencoder splits the network in two along its channels: one half sees only L and predicts ab
(colorization), the other sees only ab and predicts L. No weight connects the halves, so
neither can copy its target from its input; together they see every channel of the image, and
the representation is the concatenation of both halves' features. Both predictions are posed
as classification over quantised values, which the paper found better than regression (its
"(cl,cl)" model): ab over the in-gamut bins of lecture 01 with soft targets, L over equal-width
bins.

The network here is :class:`sslteach.encoders.SplitEncoder` (``split-small`` for the class
profile): two half-width copies of the course encoder, whose stage outputs are concatenated,
so the standard readout (pooled features of the last stage, or every stage for the course
table) reads both halves. Each half ends in a per-pixel head on its last stage (1/8 of the
image), upsampled twice to the 1/4 grid on which lecture 01 predicts colour, so every stage,
the pooled one included, is trained.

Budget: the same steps and the same ``batch_size`` images through the encoder per step as every
method; each convolution of a half-width half costs a quarter of the full one, so the pair costs
about half the encoder compute of the other methods (43 against 87 MFLOP per 32 x 32 image for
the class encoder), plus two prediction heads.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import random_crop_flip, to_float
from .checkpoint import encoder_from_checkpoint
from .colorization import ab_gamut_bins, annealed_mean, lab_to_rgb, rgb_to_lab, soft_encode
from .colorizer import DOWNSAMPLE, pixel_head
from .encoders import SplitEncoder
from .loop import fit
from .profiles import Profile


@dataclasses.dataclass(frozen=True)
class SplitBrainSettings:
    lightness_bins: int = 50
    """Classes of the L-from-ab half: equal-width bins of L over [0, 100]. Paper: L is classified
    over bins as well (its "cl" loss); class: 50 bins, 2 Lab units wide."""
    ab_grid: float = 10.0
    """Side of the ab bins of the ab-from-L half, in Lab units. Paper: 10 (313 bins, those of Zhang
    et al. 2016); class: 10, the in-gamut bins of ``sslteach.colorization.ab_gamut_bins``."""


def lightness_bin_centres(bins: int) -> torch.Tensor:
    """Centres of ``bins`` equal-width bins of L over [0, 100]: (bins,) float tensor."""
    return (torch.arange(bins) + 0.5) * (100.0 / bins)


def quantise_lightness(L: torch.Tensor, bins: int) -> torch.Tensor:
    """The bin of each pixel's lightness: L (B, 1, H, W) in [0, 100] -> (B, H, W) int64 in [0, bins)."""
    return (L[:, 0] * (bins / 100.0)).floor().long().clamp(0, bins - 1)


def cross_channel_losses(ab_logits: torch.Tensor, ab_targets: torch.Tensor,
                         L_logits: torch.Tensor, L_targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves' classification losses (Zhang et al. 2017, Sec. 3: the split-brain loss is their sum).

    ab from L: cross-entropy against the soft-encoded colour Z (Zhang et al. 2016, Eq. 2, without
    the class rebalancing, which serves vivid pictures rather than features). L from ab:
    cross-entropy against the lightness bin. Both are means over images and grid cells.

    Parameters
    ----------
    ab_logits : (B, Q, h, w) tensor
    ab_targets : (B, Q, h, w) tensor
        From :func:`sslteach.colorization.soft_encode`; sums to 1 over Q.
    L_logits : (B, K, h, w) tensor
    L_targets : (B, h, w) int64 tensor
        From :func:`quantise_lightness`.

    Returns
    -------
    loss_ab, loss_L : scalar tensors
    """
    loss_ab = -(ab_targets * F.log_softmax(ab_logits, dim=1)).sum(dim=1).mean()
    loss_L = F.cross_entropy(L_logits, L_targets)
    return loss_ab, loss_L


class SplitBrainNet(nn.Module):
    """A split encoder with a head on each half: (B, 3, H, W) -> ab logits (B, Q, H/4, W/4) from
    the lightness half, L logits (B, K, H/4, W/4) from the colour half.

    Parameters
    ----------
    encoder : SplitEncoder
    ab_bins : (Q, 2) tensor
        Centres of the ab bins (kept for decoding, not trained).
    lightness_bins : int
        K.
    """

    def __init__(self, encoder: SplitEncoder, ab_bins: torch.Tensor, lightness_bins: int):
        super().__init__()
        self.encoder = encoder
        width = encoder.half_dims[-1]
        self.head = nn.ModuleDict({
            "ab": pixel_head(width, len(ab_bins), upsample=True),  # on the lightness half
            "lightness": pixel_head(width, lightness_bins, upsample=True),  # on the colour half
        })
        self.register_buffer("ab_bins", ab_bins.clone(), persistent=False)
        self.register_buffer("lightness_centres", lightness_bin_centres(lightness_bins), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x : (B, 3, H, W) in [0, 1] -> ab logits (B, Q, H/4, W/4), L logits (B, K, H/4, W/4)."""
        h_light, h_colour = self.encoder.forward_halves(x)[-1]  # each (B, D/2, H/8, W/8)
        return self.head["ab"](h_light), self.head["lightness"](h_colour)


def pooled_lab(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets on the prediction grid: x (B, 3, H, W) in [0, 1] -> L (B, 1, H/4, W/4), ab (B, 2, H/4, W/4).

    Lab is computed with autocast off, as in lecture 01's colorizer.
    """
    with torch.autocast(x.device.type, enabled=False):
        lab = F.avg_pool2d(rgb_to_lab(x.float()), DOWNSAMPLE)  # (B, 3, h, w)
    return lab[:, :1], lab[:, 1:]


def split_brain_loss(model: SplitBrainNet, images: torch.Tensor, generator=None) -> tuple[torch.Tensor, dict]:
    """Both cross-channel predictions on a batch, and their summed loss.

    Parameters
    ----------
    model : SplitBrainNet
    images : (B, 3, H, W) uint8 tensor
        Cropped and flipped at random first, as for every method of the course.

    Returns
    -------
    loss : scalar tensor
        loss_ab + loss_L.
    metrics : dict
        ``loss_ab``, ``loss_L``; ``ab_error``: mean ab distance of the annealed-mean colours to the
        true ones, and ``L_error``: mean absolute error of the expected lightness, both in Lab units.
    """
    x = to_float(random_crop_flip(images, generator=generator))  # (B, 3, H, W)
    L, ab = pooled_lab(x)  # (B, 1, h, w), (B, 2, h, w)
    ab_logits, L_logits = model(x.contiguous(memory_format=torch.channels_last))
    ab_logits, L_logits = ab_logits.float(), L_logits.float()
    loss_ab, loss_L = cross_channel_losses(ab_logits, soft_encode(ab, model.ab_bins), L_logits,
                                           quantise_lightness(L, L_logits.shape[1]))
    with torch.no_grad():
        ab_error = (annealed_mean(ab_logits, model.ab_bins) - ab).norm(dim=1).mean().item()
        L_error = (expected_lightness(L_logits, model.lightness_centres) - L).abs().mean().item()
    metrics = {"loss_ab": loss_ab.item(), "loss_L": loss_L.item(), "ab_error": ab_error, "L_error": L_error}
    return loss_ab + loss_L, metrics


def expected_lightness(L_logits: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """The mean of the predicted lightness distribution: (B, K, h, w), (K,) -> (B, 1, h, w), Lab units."""
    return torch.einsum("bkhw,k->bhw", F.softmax(L_logits, dim=1), centres.to(L_logits)).unsqueeze(1)


@torch.no_grad()
def predict_cross_channel(model: SplitBrainNet, images: torch.Tensor,
                          temperature: float = 0.38) -> dict[str, torch.Tensor]:
    """Each half's prediction, shown as pictures: (B, 3, H, W) uint8 or [0, 1] -> dict of (B, 3, H, W) in [0, 1].

    ``"L (input)"``: the lightness the first half sees, as grey. ``"ab from L"``: the true L with
    the predicted colour (annealed mean at ``temperature``, lecture 01). ``"ab (input)"``: the
    colour the second half sees, drawn at a constant L = 60. ``"L from ab"``: the predicted
    lightness (the mean of its distribution) with the true colour. ``"truth"``: the images.
    Predictions are upsampled bilinearly from the H/4 grid. ``model`` should be in eval mode.
    """
    x = to_float(images).float()
    lab = rgb_to_lab(x)  # (B, 3, H, W)
    L, ab = lab[:, :1], lab[:, 1:]
    ab_logits, L_logits = (out.float() for out in model(x.contiguous(memory_format=torch.channels_last)))
    size = x.shape[-2:]
    ab_pred = F.interpolate(annealed_mean(ab_logits, model.ab_bins, temperature), size=size, mode="bilinear", align_corners=False)
    L_pred = F.interpolate(expected_lightness(L_logits, model.lightness_centres), size=size, mode="bilinear", align_corners=False)
    return {
        "L (input)": (L / 100).expand(-1, 3, -1, -1),
        "ab from L": lab_to_rgb(torch.cat([L, ab_pred], dim=1)),
        "ab (input)": lab_to_rgb(torch.cat([torch.full_like(L, 60.0), ab], dim=1)),
        "L from ab": lab_to_rgb(torch.cat([L_pred, ab], dim=1)),
        "truth": x,
    }


def pretrain_split_brain(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                         settings: SplitBrainSettings = SplitBrainSettings()):
    """The split-brain autoencoder on the profile's budget: ``batch_size`` images a step, each
    through both halves once. ``encoder`` must be a :class:`SplitEncoder` (``sslteach.methods``
    builds one for this method). Labels are not used.
    Returns (head weights, history, {"bins": (Q, 2), "lightness_bins": K})."""
    if not isinstance(encoder, SplitEncoder):
        raise TypeError(f"split-brain trains a SplitEncoder, not {type(encoder).__name__}")
    bins = ab_gamut_bins(settings.ab_grid).to(images.device)
    model = SplitBrainNet(encoder, bins, settings.lightness_bins).to(images.device)
    loss_fn = lambda m, x, y, g: split_brain_loss(m, x, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(),
                  seed=seed, desc="split-brain")
    return model.head.state_dict(), history, {"bins": bins.cpu(), "lightness_bins": settings.lightness_bins}


def split_brain_model_from_checkpoint(checkpoint: dict, device=None) -> SplitBrainNet:
    """The trained split-brain network (split encoder and both heads) of a ``split-brain`` checkpoint, in eval mode."""
    model = SplitBrainNet(encoder_from_checkpoint(checkpoint), checkpoint["bins"], checkpoint["lightness_bins"])
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()
