"""Rotation prediction (Gidaris, Singh & Komodakis, ICLR 2018).

The pretext task: rotate an image by 0, 90, 180 or 270 degrees and ask the network which.
To answer, it has to know which way is up for the objects in the picture: where the sky is,
that heads sit above bodies, that cars stand on their wheels. The paper's trick, kept here: all
four rotations of every image go into the same mini-batch, so no rotation is ever seen without
its siblings and the gradient cannot favour one orientation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .augment import random_crop_flip, to_float
from .checkpoint import encoder_from_checkpoint
from .loop import Classifier, fit
from .profiles import Profile

ROTATION_NAMES = ("0°", "90°", "180°", "270°")
VIEWS = len(ROTATION_NAMES)  # each image of a step goes through the encoder once per rotation


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of each image, with their labels.

    Parameters
    ----------
    images : (B, C, H, W) tensor, H == W
        Any dtype.

    Returns
    -------
    rotated : (4B, C, H, W) tensor
        ``rotated[k * B + i]`` is image i turned k quarter turns anticlockwise.
    labels : (4B,) int64 tensor
        k for each row, i.e. B zeros, then B ones, then B twos, then B threes.
    """
    B = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])  # (4B, C, H, W)
    labels = torch.arange(4, device=images.device).repeat_interleave(B)  # (4B,)
    return rotated, labels


def rotation_loss(model, images: torch.Tensor, generator=None) -> tuple[torch.Tensor, dict]:
    """Cross-entropy of predicting the rotation of each of the 4B rotated images.

    Parameters
    ----------
    model : nn.Module
        Maps float images (4B, 3, H, W) to rotation logits (4B, 4).
    images : (B, 3, H, W) uint8 tensor
        A batch of training images; each is cropped and flipped at random first (the paper's
        CIFAR recipe), then rotated four ways.

    Returns
    -------
    loss : scalar tensor
    metrics : dict
        ``accuracy``: fraction of rotations predicted correctly in this batch.
    """
    x = to_float(random_crop_flip(images, generator=generator))
    rotated, labels = rotate_batch(x)
    logits = model(rotated.contiguous(memory_format=torch.channels_last))  # (4B, 4)
    loss = F.cross_entropy(logits, labels)
    accuracy = (logits.argmax(dim=1) == labels).float().mean()
    return loss, {"accuracy": accuracy.item()}


@torch.no_grad()
def rotation_probabilities(model, images: torch.Tensor) -> torch.Tensor:
    """Predicted probabilities of each rotation, for every rotation of every image.

    images : (B, 3, H, W) uint8 or float -> (4, B, 4) tensor: [applied rotation, image, predicted
    rotation]. ``model`` should be in eval mode.
    """
    rotated, _ = rotate_batch(to_float(images))
    logits = model(rotated.contiguous(memory_format=torch.channels_last))  # (4B, 4)
    return logits.softmax(dim=1).view(4, images.shape[0], 4)


def pretrain_rotation(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """Rotation prediction on the profile's budget: the 4 rotations of ``batch_size / 4`` images
    per step, a 4-way linear head on the pooled features. Labels are not used.
    The class sweep (benchmarks/sweeps/, validation split carved from the training images, linear
    probe, seeds 0-2) kept the profile's learning rate, 0.1: 47.1 +- 2.1; 0.05 gave 50.0 +- 1.4
    (+2.9 against a noise bar of 5.0: level), 0.2 gave 42.8 +- 1.3 (level). Reproduce:
    `python tools/sweep.py rotation --profile-set lr=0.05 --seed S`.
    Returns (head weights, history, {})."""
    model = Classifier(encoder, len(ROTATION_NAMES)).to(images.device)
    loss_fn = lambda m, x, y, g: rotation_loss(m, x, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(VIEWS),
                  seed=seed, desc="rotation")
    return model.head.state_dict(), history, {}


def rotation_model_from_checkpoint(checkpoint: dict, device=None) -> Classifier:
    """The trained rotation network (encoder and 4-way head) of a ``rotation`` checkpoint, in eval mode."""
    model = Classifier(encoder_from_checkpoint(checkpoint), len(ROTATION_NAMES))
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()
