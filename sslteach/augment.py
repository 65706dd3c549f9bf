"""Batched data augmentation on the device.

Every function takes a whole batch (B, C, H, W) and draws its own random parameters *per image*
with tensor operations, so augmenting 512 images costs a few kernel launches instead of 512
trips through Python and PIL. Pass a ``torch.Generator`` living on the batch's device to make
the draws repeatable.

The recipes follow torchvision's transforms, with two documented simplifications: colour-jitter
operations are applied in a fixed order (torchvision shuffles them), and the hue shift is a
rotation of the chroma plane in YIQ space rather than a shift in HSV (same idea, cheaper).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ITU-R 601 luma weights, the ones torchvision's rgb_to_grayscale uses.
LUMA = (0.299, 0.587, 0.114)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32 in [0, 1]; float input is returned as is."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


def _uniform(low, high, n, like, generator):
    return low + (high - low) * torch.rand(n, device=like.device, generator=generator)


def _coin(p, n, like, generator):
    return torch.rand(n, device=like.device, generator=generator) < p


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    weights = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def random_crop_flip(x: torch.Tensor, padding: int = 4, flip_p: float = 0.5, generator=None) -> torch.Tensor:
    """Zero-pad by ``padding``, take a random HxW crop, and mirror with probability ``flip_p``.

    The CIFAR recipe of RotNet and of supervised baselines. Works on uint8 or float batches.
    Each image gets its own offset: the crop is two ``gather`` calls with per-image row and
    column indices, and a flip is just reversed column indices.
    """
    B, C, H, W = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (B, C, H + 2p, W + 2p)
    dy = torch.randint(0, 2 * padding + 1, (B, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (B, 1), device=x.device, generator=generator)
    rows = dy + torch.arange(H, device=x.device)  # (B, H)
    cols = torch.arange(W, device=x.device).expand(B, W)
    flip = _coin(flip_p, B, x, generator).unsqueeze(1)  # (B, 1)
    cols = dx + torch.where(flip, cols.flip(1), cols)  # (B, W)
    out = padded.gather(2, rows.view(B, 1, H, 1).expand(B, C, H, W + 2 * padding))  # (B, C, H, W+2p)
    return out.gather(3, cols.view(B, 1, 1, W).expand(B, C, H, W))  # (B, C, H, W)


def random_resized_crop(
    x: torch.Tensor,
    size: int | None = None,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
    generator=None,
) -> torch.Tensor:
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio``, resize, maybe flip.

    Every crop becomes one 2x3 affine matrix; ``grid_sample`` resamples the whole batch at once
    (bilinear). Where torchvision retries an oversized crop up to ten times, we clip its sides to
    the image. Returns floats (B, C, size, size).
    """
    x = to_float(x)
    B = x.shape[0]
    size = size or x.shape[-1]
    area = _uniform(scale[0], scale[1], B, x, generator)
    log_ratio = _uniform(math.log(ratio[0]), math.log(ratio[1]), B, x, generator)
    # Crop width and height as fractions of the image side: w * h = area, w / h = ratio.
    w = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0)
    h = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
    # Crop centre in grid_sample's [-1, 1] coordinates, anywhere the crop still fits.
    cx = (1 - w) * _uniform(-1.0, 1.0, B, x, generator)
    cy = (1 - h) * _uniform(-1.0, 1.0, B, x, generator)
    sign = torch.where(_coin(flip_p, B, x, generator), -1.0, 1.0).to(x.device)
    theta = torch.zeros(B, 2, 3, device=x.device)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [B, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _yiq_hue_rotation(angle: torch.Tensor) -> torch.Tensor:
    """(B,) angles in radians -> (B, 3, 3) RGB-to-RGB matrices rotating hue about the grey axis."""
    rgb_to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=angle.device
    )
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.zeros(angle.shape[0], 3, 3, device=angle.device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    return torch.linalg.inv(rgb_to_yiq) @ rotation @ rgb_to_yiq  # (B, 3, 3)


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
    generator=None,
) -> torch.Tensor:
    """Randomly change brightness, contrast, saturation and hue of each image, with probability p.

    Factors are drawn as in torchvision: brightness, contrast and saturation from
    [1 - s, 1 + s], hue from [-hue, hue] (a fraction of a full turn). Images not selected get
    the identity factors, so the batch stays one tensor. Input and output: floats (B, 3, H, W).
    """
    B = x.shape[0]
    apply = _coin(p, B, x, generator).float()  # (B,)

    def factor(strength):
        f = _uniform(1 - strength, 1 + strength, B, x, generator)
        return (apply * f + (1 - apply)).view(B, 1, 1, 1)

    x = (x * factor(brightness)).clamp(0, 1)
    mean_grey = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    x = ((x - mean_grey) * factor(contrast) + mean_grey).clamp(0, 1)
    grey = grayscale(x)
    x = ((x - grey) * factor(saturation) + grey).clamp(0, 1)
    angle = 2 * math.pi * apply * _uniform(-hue, hue, B, x, generator)
    matrices = _yiq_hue_rotation(angle)  # (B, 3, 3)
    x = torch.einsum("bij,bjhw->bihw", matrices, x)
    return x.clamp(0, 1)


def random_grayscale(x: torch.Tensor, p: float = 0.2, generator=None) -> torch.Tensor:
    """Replace each image by its greyscale version (kept 3-channel) with probability p."""
    chosen = _coin(p, x.shape[0], x, generator).view(-1, 1, 1, 1)
    return torch.where(chosen, grayscale(x).expand_as(x), x)


def simclr_augment(x: torch.Tensor, strength: float = 0.5, generator=None) -> torch.Tensor:
    """SimCLR's CIFAR recipe (Chen et al. 2020, appendix A): resized crop (area 0.08-1), flip,
    colour jitter (0.8s, 0.8s, 0.8s, 0.2s with p = 0.8), greyscale (p = 0.2); no blur on CIFAR.

    uint8 or float (B, 3, H, W) -> float (B, 3, H, W) in [0, 1].
    """
    x = random_resized_crop(x, generator=generator)
    s = strength
    x = color_jitter(x, 0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=0.8, generator=generator)
    return random_grayscale(x, p=0.2, generator=generator)
