"""The colorization pretext task as a network to train (Zhang, Isola & Efros, ECCV 2016).

``sslteach.colorization`` has the maths (Lab, the ab bins, soft targets, the prior, the
rebalanced loss, the annealed mean); this module puts an encoder under it. The encoder sees the
lightness only, as a grey image (L / 100 copied to 3 channels), so that every pretext method
trains the same encoder architecture and the linear probe compares like with like. A small
fully-convolutional head on the encoder's third stage (H/4 x W/4) predicts, for every pixel of
that grid, either Q logits over the ab bins (the paper) or ab itself (the L2 baseline, Eq. 1).
The paper also predicts at 1/4 resolution and upsamples the colours, which the eye forgives
because it is far more sensitive to detail in lightness than in colour.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import random_crop_flip, to_float
from .colorization import (
    ab_prior,
    ab_regression_loss,
    annealed_mean,
    lab_to_rgb,
    rebalanced_loss,
    rebalancing_weights,
    rgb_to_lab,
    ab_gamut_bins,
    soft_encode,
)
from .checkpoint import encoder_from_checkpoint
from .encoders import Encoder
from .loop import fit
from .profiles import Profile

AB_SCALE = 110.0  # the regressor predicts ab / 110 = tanh(output), as in the PyTorch port
DOWNSAMPLE = 4  # the head predicts on the encoder's stage-3 grid, H/4 x W/4


@dataclasses.dataclass(frozen=True)
class ColorizationSettings:
    stages: int = 3
    """Encoder stages under the head. 3: the head reads the stage-3 grid (H/4) and stage 4 is
    never trained. 4: the head reads stage 4 (H/8) and upsamples its features 2x to the H/4
    grid of the targets, as the paper's network ends at 1/8 resolution with an upsampling
    conv8; every stage is then trained, the one the pooled features come from included."""


def pixel_head(width: int, num_outputs: int, upsample: bool = False) -> nn.Sequential:
    """A per-pixel prediction head: (B, width, h, w) -> (B, num_outputs, h, w), or (2h, 2w) with
    ``upsample``. A 3x3 conv-BN-ReLU, then (bilinear 2x upsampling and) a 1x1 convolution."""
    up = [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)] if upsample else []
    return nn.Sequential(
        nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        *up, nn.Conv2d(width, num_outputs, 1),
    )


class ColorizationNet(nn.Module):
    """Encoder stages on the lightness, then a per-pixel head: (B, 3, H, W) -> (B, K, H/4, W/4).

    Fully convolutional, so any H, W divisible by 8 works (a photograph at native size too);
    the global pooling is not used.

    Parameters
    ----------
    encoder : Encoder
        With at least ``stages`` stages, the third at 1/4 resolution and the fourth at 1/8 (both
        course encoders).
    num_outputs : int
        K: Q bin logits for colorization as classification, 2 for ab regression.
    stages : int
        3 or 4 (``ColorizationSettings.stages``): the stage the head reads.
    """

    def __init__(self, encoder: Encoder, num_outputs: int, stages: int = 3):
        super().__init__()
        if stages not in (3, 4):
            raise ValueError(f"the head reads stage 3 or 4, not {stages}")
        self.encoder = encoder
        self.num_outputs = num_outputs
        self.stages = stages
        self.head = pixel_head(encoder.block_dims[stages - 1], num_outputs, upsample=stages == 4)

    def forward_lightness(self, L: torch.Tensor) -> torch.Tensor:
        """L : (B, 1, H, W) in Lab units [0, 100] -> (B, K, H/4, W/4)."""
        grey = (L / 100).expand(-1, 3, -1, -1)  # (B, 3, H, W): the same encoder input as RGB
        h = self.encoder.normalize(grey.contiguous(memory_format=torch.channels_last))
        for block in self.encoder.blocks[:self.stages]:  # = forward_blocks(grey)[stages - 1]
            h = block(h)
        return self.head(h)  # (B, K, H/4, W/4)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb : (B, 3, H, W) floats in [0, 1] -> (B, K, H/4, W/4); only its lightness is used."""
        return self.forward_lightness(rgb_to_lab(rgb)[:, :1])


def lightness_and_pooled_ab(images: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented input and target: uint8 (B, 3, H, W) -> L (B, 1, H, W), ab (B, 2, H/4, W/4).

    Random crop and flip as for rotation. The target ab is average-pooled to the prediction's
    grid. Lab is computed with autocast off: in bfloat16 the colour matrices lose about one Lab
    unit, a tenth of a bin.
    """
    x = to_float(random_crop_flip(images, generator=generator))
    with torch.autocast(x.device.type, enabled=False):
        lab = rgb_to_lab(x.float())  # (B, 3, H, W)
    return lab[:, :1], F.avg_pool2d(lab[:, 1:], DOWNSAMPLE)


def _ab_error(pred_ab: torch.Tensor, ab: torch.Tensor) -> float:
    """Mean Euclidean distance in the ab plane, Lab units: (B, 2, h, w), (B, 2, h, w) -> float."""
    return (pred_ab.detach().float() - ab).norm(dim=1).mean().item()


def colorization_loss(model: ColorizationNet, images: torch.Tensor, bins: torch.Tensor,
                      weights: torch.Tensor, generator=None) -> tuple[torch.Tensor, dict]:
    """Class-rebalanced cross-entropy over the ab bins (Zhang et al. 2016, Eq. 2-4).

    Parameters
    ----------
    model : ColorizationNet
        With ``num_outputs == Q``.
    images : (B, 3, H, W) uint8 tensor
    bins : (Q, 2) tensor
        From :func:`sslteach.colorization.ab_gamut_bins`.
    weights : (Q,) tensor
        From :func:`fit_prior`.

    Returns
    -------
    loss : scalar tensor
    metrics : dict
        ``ab_error``: mean ab distance of the annealed-mean colours to the pooled true colours.
    """
    L, ab = lightness_and_pooled_ab(images, generator)  # (B, 1, H, W), (B, 2, h, w)
    logits = model.forward_lightness(L)  # (B, Q, h, w)
    targets = soft_encode(ab, bins)  # (B, Q, h, w)
    loss = rebalanced_loss(logits.float(), targets, weights)
    with torch.no_grad():
        error = _ab_error(annealed_mean(logits.float(), bins), ab)
    return loss, {"ab_error": error}


def regression_loss(model: ColorizationNet, images: torch.Tensor, generator=None) -> tuple[torch.Tensor, dict]:
    """The L2 baseline (Zhang et al. 2016, Eq. 1) on the pooled ab, both divided by 110.

    model : ColorizationNet with ``num_outputs == 2``; tanh of its output is read as ab / 110.
    images : (B, 3, H, W) uint8 -> (loss, {"ab_error": mean ab distance, Lab units}).

    Both choices follow the PyTorch port (colorizers/siggraph17.py ends its regression head with
    a Tanh) and both are needed at the learning rate shared with the other methods: in Lab units
    the loss is in the thousands, and an unbounded output makes SGD diverge (ResNet-18, lr 0.1).
    """
    L, ab = lightness_and_pooled_ab(images, generator)
    pred = torch.tanh(model.forward_lightness(L).float())  # (B, 2, h, w), ab / 110
    return ab_regression_loss(pred, ab / AB_SCALE), {"ab_error": _ab_error(AB_SCALE * pred, ab)}


@torch.no_grad()
def lightness_images(images: torch.Tensor, chunk: int = 5000) -> torch.Tensor:
    """What a colorizer's encoder sees, as images: uint8 (N, 3, H, W) -> uint8 (N, 3, H, W) grey.

    Each pixel becomes L / 100 (rounded to 1/255) in all three channels. A colorizer's encoder
    never saw colour, so its features are probed on these, as Zhang et al. probe theirs on L.
    """
    out = torch.empty_like(images)
    for start in range(0, len(images), chunk):
        L = rgb_to_lab(to_float(images[start:start + chunk]).float())[:, :1]  # (b, 1, H, W)
        out[start:start + chunk] = (L * 2.55).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)
    return out


@torch.no_grad()
def predict_colors(model: ColorizationNet, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the network once: (B, 3, H, W) uint8 or [0, 1] floats -> L (B, 1, H, W), output (B, K, H/4, W/4).

    The output is Q bin logits (classification) or the regressor's raw ab; pass both to
    :func:`decode_colors`, as often as you like (a temperature slider does not rerun the network).
    ``model`` should be in eval mode.
    """
    L = rgb_to_lab(to_float(images).float())[:, :1]  # (B, 1, H, W)
    return L, model.forward_lightness(L).float()


def decode_colors(L: torch.Tensor, output: torch.Tensor, bins: torch.Tensor | None = None,
                   temperature: float = 0.38) -> torch.Tensor:
    """Join the original lightness and predicted colours: L (B, 1, H, W), output (B, K, h, w) -> rgb (B, 3, H, W).

    The predicted ab (annealed mean, Eq. 5, when ``bins`` are given; 110 tanh of the regressor's
    output when ``bins`` is None) is upsampled bilinearly from h x w to H x W.
    """
    ab = AB_SCALE * torch.tanh(output) if bins is None else annealed_mean(output, bins, temperature)  # (B, 2, h, w)
    ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)  # (B, 2, H, W)
    return lab_to_rgb(torch.cat([L, ab], dim=1))


@torch.no_grad()
def colorize(model: ColorizationNet, images: torch.Tensor, bins: torch.Tensor | None = None,
             temperature: float = 0.38) -> torch.Tensor:
    """Colour images from their lightness: (B, 3, H, W) uint8 or [0, 1] floats -> rgb (B, 3, H, W).

    :func:`predict_colors` then :func:`decode_colors`; ``bins`` None means the regressor.
    """
    return decode_colors(*predict_colors(model, images), bins, temperature)


@torch.no_grad()
def fit_prior(images: torch.Tensor, bins: torch.Tensor, max_images: int = 5000,
              chunk: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour prior p~ and rebalancing weights w (Zhang et al. 2016, Eq. 4, lambda = 0.5).

    Computed on the first ``max_images`` images, on ab pooled to the H/4 x W/4 grid of the
    targets (the weights apply to the pooled targets). ``ab_prior`` builds a pixels x Q distance
    table, so the images go through in chunks; the chunks' priors are averaged, weighted by their
    number of pixels. This equals the prior of all pixels at once except for the Gaussian
    smoothing's renormalisation near the gamut border (difference below 1e-3 in the tests).

    images : (N, 3, H, W) uint8, bins : (Q, 2) -> prior (Q,), weights (Q,), on the images' device.
    """
    images = images[:max_images]
    prior = torch.zeros(len(bins), device=images.device)
    for batch in images.split(chunk):
        ab = F.avg_pool2d(rgb_to_lab(to_float(batch).float())[:, 1:], DOWNSAMPLE)  # (b, 2, h, w)
        prior += len(batch) * ab_prior(ab, bins)
    prior = prior / len(images)
    return prior, rebalancing_weights(prior, lam=0.5)


def pretrain_colorization(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                          settings: ColorizationSettings = ColorizationSettings()):
    """Colorization as classification over the ab bins, rebalanced by the prior of the training
    images (fitted before training), ``batch_size`` images a step. Labels are not used.
    The class sweep (benchmarks/sweeps/, validation split carved from the training images, linear
    probe, seeds 0-2) kept the profile's learning rate, 0.1: 48.5 +- 0.3; 0.2 gave 48.7 +- 0.3
    (+0.2 against a noise bar of 0.8: level; the head on stage 4 instead, one seed: 48.1).
    Reproduce: `python tools/sweep.py colorization --profile-set lr=0.2 --seed S`.
    Returns (head weights, history, {"bins": (Q, 2), "prior": (Q,), "stages": the head's stage})."""
    bins = ab_gamut_bins().to(images.device)
    prior, weights = fit_prior(images, bins)
    model = ColorizationNet(encoder, len(bins), settings.stages).to(images.device)
    loss_fn = lambda m, x, y, g: colorization_loss(m, x, bins, weights, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(),
                  seed=seed, desc="colorization")
    return model.head.state_dict(), history, {"bins": bins.cpu(), "prior": prior.cpu(), "stages": settings.stages}


def pretrain_colorization_regression(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                                     settings: ColorizationSettings = ColorizationSettings()):
    """The L2 regression baseline of colorization (the paper's Eq. 1), on the same budget.
    Returns (head weights, history, {"stages": the head's stage})."""
    model = ColorizationNet(encoder, 2, settings.stages).to(images.device)
    loss_fn = lambda m, x, y, g: regression_loss(m, x, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(),
                  seed=seed, desc="colorization-regression")
    return model.head.state_dict(), history, {"stages": settings.stages}


def colorization_model_from_checkpoint(checkpoint: dict, device=None) -> ColorizationNet:
    """The trained colorizer of a ``colorization`` checkpoint (Q bin logits; its bins are
    ``checkpoint["bins"]``) or of a ``colorization-regression`` one (ab), in eval mode."""
    outputs = len(checkpoint["bins"]) if "bins" in checkpoint else 2
    model = ColorizationNet(encoder_from_checkpoint(checkpoint), outputs, checkpoint.get("stages", 3))
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()
