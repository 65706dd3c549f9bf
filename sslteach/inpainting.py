"""Inpainting with a context encoder (Pathak, Krähenbühl, Donahue, Darrell & Efros, CVPR 2016).

The pretext task: blank out the centre of an image and ask the network to paint it back from
the surroundings, the *context*. To fill the hole of a photograph of a dog with fur rather than
with a grey smudge, the network has to recognise that there is a dog, and where its body runs.

The network is an encoder-decoder. The encoder is the course's encoder, fed the image with its
central square filled with the dataset's mean colour (which its input normalisation maps to 0).
Its last stage (B, D, H/8, W/8) goes through the paper's *channel-wise fully connected* layer
(every channel's map connected to itself at every position, so information crosses the whole
image without the D^2 (HW)^2 weights of a full layer; Sec. 3.1), then a 1x1 convolution that
mixes channels, then two up-convolutions (upsampling, then convolution) to the central square (B, 3, H/2, W/2). The loss is the
paper's reconstruction loss (Eq. 1): the squared error on the missing pixels, in [-1, 1] units.

Two choices follow the authors' code (github.com/pathak22/context-encoder, train.lua): the
network predicts the whole central square, but the hole in its input is that square shrunk by
``overlap`` pixels on each side, so the prediction overlaps the context; and the overlapping
band counts ``overlap_weight`` = 10 times more in the loss, which makes the painted square join
its surroundings without a visible seam.

Not done here: the paper's adversarial loss (Eq. 2-3, joint loss Eq. 4 with lambda_rec = 0.999
and lambda_adv = 0.001), which sharpens the pictures but needs a discriminator network and a
second optimiser; with the reconstruction loss alone the predictions are blurry (the mean of the
plausible fillings, as with colour regression in lecture 01). Nor the paper's random-region
masks, shapes taken from PASCAL VOC segmentations, which the paper reports transfer better than
the central square (its Sec. 3.3): we ship no segmentation masks, and the central square is the
variant whose predictions can be shown side by side with the truth.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict

import torch
import torch.nn as nn

from .augment import random_crop_flip, to_float
from .checkpoint import encoder_from_checkpoint
from .encoders import CIFAR10_MEAN, Encoder
from .loop import fit
from .profiles import Profile


@dataclasses.dataclass(frozen=True)
class InpaintingSettings:
    overlap: int = 1
    """Pixels by which the predicted square overlaps the context on each side. Paper's code: 4 at
    128 x 128 images (a 64-pixel square); class: 1 at 32 x 32, the same 1/32 of the side."""
    overlap_weight: float = 10.0
    """Loss weight of the overlapping band relative to the hole. Paper's code: 10; class: 10.
    The class sweep (benchmarks/sweeps/, validation split, linear probe, seeds 0-2) measured 10:
    42.6 +- 3.8 and 1: 45.2 +- 0.3 (+2.6 against a noise bar of 7.6: level), a learning rate of
    0.2: 39.1 +- 3.7 (level). Reproduce: `python tools/sweep.py inpainting --set overlap_weight=1.0
    --seed S`."""


def central_square(size: int) -> slice:
    """The rows (or columns) of the central square of half the side: ``size // 4`` to ``3 size // 4``.

    The square covers a quarter of the image's area, as in the paper (64 of 128 pixels a side).
    """
    return slice(size // 4, size // 4 + size // 2)


def hole_mask(size: int, overlap: int, device=None) -> torch.Tensor:
    """Where the encoder's input is blanked: the central square shrunk by ``overlap`` on each side.

    Returns a (1, 1, size, size) bool tensor, True in the hole.
    """
    square = central_square(size)
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool, device=device)
    mask[..., square.start + overlap:square.stop - overlap, square.start + overlap:square.stop - overlap] = True
    return mask


def mask_centre(x: torch.Tensor, overlap: int) -> torch.Tensor:
    """The encoder's input: (B, 3, H, W) floats in [0, 1] with the hole filled with the dataset mean.

    H == W. The mean colour becomes 0 after the encoder's normalisation, so the hole carries no
    signal, as the paper fills it with the mean pixel of its training images.
    """
    mean = torch.tensor(CIFAR10_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return torch.where(hole_mask(x.shape[-1], overlap, x.device), mean, x)


def reconstruction_weights(square_size: int, overlap: int, overlap_weight: float, device=None) -> torch.Tensor:
    """Loss weight of each pixel of the predicted square: 1 in the hole, ``overlap_weight`` on the
    band of width ``overlap`` along its border (pixels the encoder saw). (1, 1, S, S) float tensor."""
    weights = torch.full((1, 1, square_size, square_size), float(overlap_weight), device=device)
    weights[..., overlap:square_size - overlap, overlap:square_size - overlap] = 1.0
    return weights


def reconstruction_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The paper's reconstruction loss (Pathak et al. 2016, Eq. 1), weighted per pixel.

    L = mean over images and pixels of w_hw * (1/C) sum_c (x_chw - F(x)_chw)^2. The paper writes
    ||M * (x - F((1 - M) * x))||^2 with the binary mask M; here M is already applied, as
    ``prediction`` and ``target`` are the central square only, and ``weights`` holds the
    overlap weighting (all ones gives the plain mean squared error).

    Parameters
    ----------
    prediction, target : (B, C, S, S) tensors
        The predicted and the true central square, in the same units ([-1, 1] in training).
    weights : (1, 1, S, S) or (B, 1, S, S) tensor
        From :func:`reconstruction_weights`.

    Returns
    -------
    loss : scalar tensor
    """
    squared = (prediction - target).square().mean(dim=1, keepdim=True)  # (B, 1, S, S)
    return (weights * squared).mean()


class ChannelwiseFC(nn.Module):
    """The paper's channel-wise fully connected layer: each channel's H x W map is mapped to a new
    H x W map by its own dense (HW, HW) matrix; channels do not mix. (B, C, H, W) -> (B, C, H, W).

    C (HW)^2 weights instead of the C^2 (HW)^2 of a full layer; the size H x W is fixed.
    """

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        positions = height * width
        self.weight = nn.Parameter(torch.randn(channels, positions, positions) / positions ** 0.5)
        self.bias = nn.Parameter(torch.zeros(channels, positions))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, H, W = h.shape
        out = torch.einsum("bcp,cpq->bcq", h.reshape(B, C, H * W), self.weight) + self.bias  # (B, C, HW)
        return out.view(B, C, H, W)


class ContextEncoder(nn.Module):
    """Encoder, channel-wise FC bottleneck and decoder: (B, 3, S, S) -> (B, 3, S/2, S/2) in [-1, 1].

    Parameters
    ----------
    encoder : Encoder
        The course's encoder; its last stage must be at 1/8 resolution (both course encoders are).
    image_size : int
        S, the side of the (square) training images; the bottleneck is built for S/8 x S/8.
    overlap : int
        ``InpaintingSettings.overlap`` it is trained with, kept so that :func:`inpaint` masks
        the same hole.
    """

    def __init__(self, encoder: Encoder, image_size: int = 32, overlap: int = InpaintingSettings.overlap):
        super().__init__()
        self.encoder = encoder
        self.overlap = overlap
        D, grid = encoder.feature_dim, image_size // 8
        bottleneck = nn.Sequential(
            ChannelwiseFC(D, grid, grid), nn.BatchNorm2d(D), nn.ReLU(inplace=True),
            nn.Conv2d(D, D, 1, bias=False), nn.BatchNorm2d(D), nn.ReLU(inplace=True),  # mixes the channels
        )
        # Two up-convolutions, each an upsampling followed by a convolution (the paper's definition),
        # double the grid twice, to S/2: the central square. (Strided transposed convolutions
        # left a checkerboard in the class-budget pictures.)
        decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(D, D // 4, 3, padding=1, bias=False), nn.BatchNorm2d(D // 4), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(D // 4, 3, 3, padding=1), nn.Tanh(),
        )
        self.head = nn.Sequential(OrderedDict(bottleneck=bottleneck, decoder=decoder))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """context : (B, 3, S, S) floats in [0, 1] with the hole filled -> (B, 3, S/2, S/2), [-1, 1]."""
        h = self.encoder.forward_blocks(context)[-1]  # (B, D, S/8, S/8)
        return self.head(h)  # bottleneck, then decoder: (B, 3, S/2, S/2)


def inpainting_loss(model: ContextEncoder, images: torch.Tensor, settings: InpaintingSettings = InpaintingSettings(),
                    generator=None) -> tuple[torch.Tensor, dict]:
    """Mask the centre of a batch, predict it, and score the prediction (Eq. 1 with the overlap weighting).

    Parameters
    ----------
    model : ContextEncoder
    images : (B, 3, S, S) uint8 tensor
        Cropped and flipped at random first, as for every method of the course.

    Returns
    -------
    loss : scalar tensor
    metrics : dict
        ``hole_error``: root mean squared error on the hole alone, in [0, 1] pixel units.
    """
    x = to_float(random_crop_flip(images, generator=generator))  # (B, 3, S, S)
    square = central_square(x.shape[-1])
    target = 2 * x[..., square, square] - 1  # (B, 3, S/2, S/2): the paper's [-1, 1] scale
    prediction = model(mask_centre(x, settings.overlap).contiguous(memory_format=torch.channels_last)).float()
    S2 = target.shape[-1]
    loss = reconstruction_loss(prediction, target, reconstruction_weights(S2, settings.overlap, settings.overlap_weight, x.device))
    with torch.no_grad():
        hole = (slice(None), slice(None), slice(settings.overlap, S2 - settings.overlap), slice(settings.overlap, S2 - settings.overlap))
        error = ((prediction[hole] - target[hole]) / 2).square().mean().sqrt().item()
    return loss, {"hole_error": error}


@torch.no_grad()
def inpaint(model: ContextEncoder, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What the network saw and what it painted: (B, 3, S, S) uint8 or [0, 1] -> two (B, 3, S, S) in [0, 1].

    ``context``: the images with the hole filled with the mean colour. ``filled``: the images with
    their central square replaced by the prediction (the overlap band included). ``model`` should
    be in eval mode.
    """
    x = to_float(images).float()
    context = mask_centre(x, model.overlap)
    square = central_square(x.shape[-1])
    filled = x.clone()
    filled[..., square, square] = (model(context.contiguous(memory_format=torch.channels_last)).float() + 1) / 2
    return context, filled


def pretrain_inpainting(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                        settings: InpaintingSettings = InpaintingSettings()):
    """Context-encoder inpainting on the profile's budget: ``batch_size`` images a step, each
    through the encoder once (with its centre masked). Labels are not used.
    Returns (bottleneck and decoder weights, history, {"image_size": S, "overlap": pixels})."""
    model = ContextEncoder(encoder, images.shape[-1], settings.overlap).to(images.device)
    loss_fn = lambda m, x, y, g: inpainting_loss(m, x, settings, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(),
                  seed=seed, desc="inpainting")
    return model.head.state_dict(), history, {"image_size": images.shape[-1], "overlap": settings.overlap}


def inpainting_model_from_checkpoint(checkpoint: dict, device=None) -> ContextEncoder:
    """The trained context encoder (encoder, bottleneck and decoder) of an ``inpainting`` checkpoint, in eval mode."""
    model = ContextEncoder(encoder_from_checkpoint(checkpoint), checkpoint["image_size"], checkpoint["overlap"])
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()
