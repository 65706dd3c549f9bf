"""SimCLR (Chen, Kornblith, Norouzi & Hinton, ICML 2020): two views, a projection head, NT-Xent.

Each image in the batch is augmented twice; the encoder and a small MLP head map all 2B views to
embeddings; NT-Xent (``sslteach.contrastive.nt_xent``) asks every view to find its partner among
the other 2B - 1. The representation used downstream is the encoder's output *before* the head:
the head absorbs what the loss throws away (colour, orientation), the paper's section 4.2.

The colour-histogram shortcut: two random crops of one photo share its colours, so without colour
distortion the task is solved by comparing colour histograms and the encoder learns little else.
``SimCLRSettings(color=False)`` (the ``simclr-no-color`` method) trains with crop and flip only,
so the lecture can measure the drop.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from .augment import random_resized_crop, simclr_augment, to_float
from .checkpoint import encoder_from_checkpoint
from .contrastive import nt_xent, positive_accuracy
from .loop import fit
from .profiles import Profile

VIEWS = 2  # two augmented views of each image of a step go through the encoder


@dataclasses.dataclass(frozen=True)
class SimCLRSettings:
    temperature: float = 0.2
    """tau of NT-Xent. The paper uses 0.5 for CIFAR-10 over hundreds of epochs; for the class
    profile's two epochs we use MoCo v2's 0.2 (see ``pretrain_simclr``). The class sweep
    (benchmarks/sweeps/, validation split carved from the training images, linear probe, seeds
    0-2) measured 0.2: 47.2 +- 0.2; 0.1: 47.7 +- 0.6 (+0.5 against a noise bar of 1.4: level);
    0.5: 45.1 +- 0.4 (-2.1 against 0.8: below). Reproduce:
    `python tools/sweep.py simclr --set temperature=0.1 --seed S`."""
    projection_dim: int = 128
    """Size of the embedding the loss sees (the paper's 128)."""
    strength: float = 0.5
    """Colour-jitter strength s (0.8s brightness, contrast, saturation, 0.2s hue); 0.5 on CIFAR.
    The class sweep measured the paper's ImageNet value, 1.0: 40.7 +- 0.9, 6.5 below 0.5 (bar 1.9)."""
    color: bool = True
    """False: crops and flips only, no colour jitter and no greyscale (the shortcut ablation)."""


class Embedder(nn.Module):
    """An encoder followed by a projection head: (B, 3, H, W) floats -> (B, projection_dim)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x):
        return self.head(self.encoder(x))


def projection_head(in_dim: int, out_dim: int = 128, hidden_dim: int | None = None, batch_norm: bool = True) -> nn.Sequential:
    """SimCLR's non-linear head g: Linear, BatchNorm, ReLU, Linear; (B, in_dim) -> (B, out_dim).

    ``batch_norm=False`` gives MoCo v2's head (Linear, ReLU, Linear): a BatchNorm over the whole
    batch there would undo the split BatchNorm that keeps MoCo's keys from leaking.
    """
    hidden_dim = hidden_dim or in_dim
    norm = [nn.BatchNorm1d(hidden_dim)] if batch_norm else []
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim, bias=not batch_norm), *norm, nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
    )


def two_views(images: torch.Tensor, color: bool = True, strength: float = 0.5, generator=None) -> torch.Tensor:
    """Two independent augmentations of every image, in one batched call.

    Parameters
    ----------
    images : (B, 3, H, W) uint8 or float tensor
    color : bool
        True: SimCLR's CIFAR recipe (``sslteach.augment.simclr_augment``). False: random resized
        crop and flip only.

    Returns
    -------
    views : (2B, 3, H, W) float tensor
        Rows i and B + i are the two views of image i. Each row draws its own random parameters,
        so augmenting the doubled batch once gives two independent views.
    """
    doubled = to_float(images).repeat(2, 1, 1, 1)  # (2B, 3, H, W)
    if color:
        return simclr_augment(doubled, strength=strength, generator=generator)
    return random_resized_crop(doubled, generator=generator)


def simclr_loss(model: nn.Module, images: torch.Tensor, settings: SimCLRSettings = SimCLRSettings(), generator=None):
    """NT-Xent of the two views of ``images`` (B, 3, H, W) through ``model`` (an ``Embedder``).

    Both views go through the encoder in one batch of 2B, as on a single device in the paper.
    Returns (loss, {"accuracy": fraction of views whose nearest other view is their partner}).
    """
    B = len(images)
    views = two_views(images, settings.color, settings.strength, generator)
    z = model(views.contiguous(memory_format=torch.channels_last))  # (2B, projection_dim)
    z1, z2 = z[:B], z[B:]
    return nt_xent(z1, z2, settings.temperature), {"accuracy": positive_accuracy(z1, z2)}


def pretrain_simclr(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                    settings: SimCLRSettings = SimCLRSettings()):
    """SimCLR on the class budget: B / 2 images per step, two views each, so B views through the encoder.

    Temperature, the one setting chosen here rather than copied: 0.5 is the paper's CIFAR value
    for 1000 epochs with batches of 512 and more; our budget is about two epochs at 128 images
    per step, and a lower temperature (a sharper softmax, more weight on the hardest negatives)
    gives larger gradients early on. 0.2 is MoCo v2's value for the same loss. Labels are not used.
    """
    model = Embedder(encoder, projection_head(encoder.feature_dim, settings.projection_dim)).to(images.device)
    loss_fn = lambda m, x, y, g: simclr_loss(m, x, settings, g)  # noqa: E731 - labels unused
    name = "simclr" if settings.color else "simclr-no-color"
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(VIEWS),
                  seed=seed, desc=name)
    return model.head.state_dict(), history, {"temperature": settings.temperature}


def pretrain_simclr_no_color(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """SimCLR with crops and flips only: the colour-histogram shortcut, for the ablation."""
    settings = SimCLRSettings(color=False)
    return pretrain_simclr(encoder, images, labels, profile, num_classes, seed, settings)


def simclr_model_from_checkpoint(checkpoint: dict, device=None) -> Embedder:
    """The trained SimCLR network (encoder and projection head g) of a ``simclr*`` checkpoint, in
    eval mode: BatchNorm uses its running statistics."""
    encoder = encoder_from_checkpoint(checkpoint)
    projection_dim = checkpoint["head"]["3.weight"].shape[0]  # the head's last linear layer
    model = Embedder(encoder, projection_head(encoder.feature_dim, projection_dim))
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()


def color_histograms(images: torch.Tensor, bins: int = 4) -> torch.Tensor:
    """Joint RGB histogram of each image, the shortcut feature of the paper's Figure 6.

    Each channel is cut into ``bins`` equal intervals, so a pixel falls into one of bins**3
    colour cells; the histogram counts pixels per cell and sums to 1. It ignores where pixels
    are, so two crops of one photograph have similar histograms whatever they show.

    images : (B, 3, H, W) uint8 or float in [0, 1] -> (B, bins**3) float tensor.
    """
    x = to_float(images)
    cell = (x * bins).long().clamp(max=bins - 1)  # (B, 3, H, W), each channel's interval
    index = (cell[:, 0] * bins + cell[:, 1]) * bins + cell[:, 2]  # (B, H, W), the colour cell
    counts = torch.zeros(len(x), bins ** 3, device=x.device).scatter_add_(1, index.flatten(1), torch.ones_like(index.flatten(1), dtype=torch.float))
    return counts / counts.sum(dim=1, keepdim=True)
