"""The training loop every method shares, and the pieces the baselines need.

``fit`` is one short loop of SGD with Nesterov momentum, a warm-up then cosine schedule, and
batches drawn as index lookups into the whole training set on the device (no DataLoader). Each
method brings a ``loss_fn(model, images, labels, generator) -> (loss, metrics)``. Methods with
state between steps (a memory bank, a queue, a momentum encoder) pass ``after_step``, called
after each optimiser step, so that the state change is an explicit call. A loss that returns
``(loss, metrics, state)`` hands ``state`` to it: MoCo's step is

    loss, metrics, keys = loss_fn(...)   # queries against keys and the queue
    loss.backward()
    optimizer.step()
    after_step(keys)                     # enqueue the keys, then move the momentum encoder

and NPID's and PIRL's state is the batch's (indices, features), written into the memory bank.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .augment import random_crop_flip, to_float
from .encoders import Encoder
from .profiles import Profile


class Classifier(nn.Module):
    """An encoder with a linear layer on its pooled features: (B, 3, H, W) -> (B, num_classes)."""

    def __init__(self, encoder: Encoder, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, num_classes)

    def forward(self, x):
        return self.head(self.encoder(x))


def supervised_loss(model, images, labels, generator=None):
    """Cross-entropy on the true labels, with the same crop-and-flip augmentation as rotation."""
    x = to_float(random_crop_flip(images, generator=generator)).contiguous(memory_format=torch.channels_last)
    logits = model(x)  # (B, num_classes)
    loss = F.cross_entropy(logits, labels)
    return loss, {"accuracy": (logits.argmax(1) == labels).float().mean().item()}


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: linear warm-up, then a cosine decay to zero."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def fit(model, loss_fn, images, labels, profile: Profile, *, images_per_step: int, seed: int = 0,
        desc: str = "training", after_step=None, parameters=None):
    """Train ``model`` for ``profile.steps`` steps of SGD with Nesterov momentum.

    Parameters
    ----------
    model : nn.Module
        Already on the device of ``images``.
    loss_fn : callable
        ``loss_fn(model, batch_images, batch_labels, generator) -> (loss, metrics dict)``, or
        ``(loss, metrics dict, state)`` for a method with state to update after the step.
    images : (N, 3, H, W) uint8 tensor
        The whole training set, on the device: batches are index lookups, no DataLoader.
    labels : (N,) int64 tensor
        Passed to ``loss_fn``; self-supervised losses ignore them.
    images_per_step : int
        Distinct images drawn per step (the batch before any multiplication into views).
    after_step : callable, optional
        Called after every optimiser step: where a method updates its state (a momentum
        encoder, a queue, a memory bank), as an explicit step of the loop. It receives the
        ``state`` returned by ``loss_fn`` (``after_step(state)``), or nothing if the loss
        returned only ``(loss, metrics)``.
    parameters : iterable of tensors, optional
        What the optimiser trains (default: all of ``model``'s parameters).

    Returns
    -------
    history : dict of lists
        ``loss`` and each metric per step, plus ``seconds`` and ``images_seen`` totals.
    """
    if len(images) < images_per_step:
        raise ValueError(f"{len(images)} training images cannot fill a batch of {images_per_step}")
    device = images.device
    generator = torch.Generator(device).manual_seed(seed)
    optimizer = torch.optim.SGD(
        model.parameters() if parameters is None else parameters, lr=profile.lr, momentum=0.9, nesterov=True, weight_decay=profile.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, profile.warmup_steps, profile.steps)
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=profile.mixed_precision and device.type == "cuda")
    history = {"loss": []}
    order = torch.empty(0, dtype=torch.long, device=device)
    model.train()
    start = time.perf_counter()
    for step in tqdm(range(profile.steps), desc=desc):
        if len(order) < images_per_step:  # a new epoch: reshuffle
            order = torch.cat([order, torch.randperm(len(images), device=device, generator=generator)])
        index, order = order[:images_per_step], order[images_per_step:]
        with autocast:
            loss, metrics, *state = loss_fn(model, images[index], labels[index], generator)  # state: [] or [state]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if after_step is not None:
            after_step(*state)  # this step's keys or features, computed before the step
        history["loss"].append(loss.item())
        for name, value in metrics.items():
            history.setdefault(name, []).append(value)
    history["seconds"] = time.perf_counter() - start
    history["images_seen"] = profile.steps * images_per_step
    return history


def steps_per_epoch(checkpoint: dict) -> float | None:
    """Optimiser steps of one pass over the training images in the run that made ``checkpoint``.

    ``fit`` draws the images in a fresh shuffled order each epoch, without replacement, so every
    image is drawn once per epoch: a method with one state per image (NPID's and PIRL's memory
    bank) changes that state for all images at the same pace, and its curves can step at the
    boundaries. Read from the checkpoint's record: the number of training images of its data
    (``checkpoint["data"]``, capped by the profile's ``train_images``) over the images per step
    (``images_seen`` / steps). None when the checkpoint does not say what it was trained on.
    """
    data, history = checkpoint.get("data"), checkpoint["history"]
    if not data:
        return None
    images = data["train_images"]
    cap = checkpoint.get("profile_settings", {}).get("train_images", 0)
    images = min(images, cap) if cap else images
    return images / (history["images_seen"] / len(history["loss"]))


# Images used to recompute BatchNorm statistics of the random-init baseline: 20 full batches of 512.
BATCHNORM_IMAGES = 10_240


@torch.no_grad()
def recompute_batchnorm(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512, max_images: int = BATCHNORM_IMAGES):
    """Replace every BatchNorm's running statistics by those of ``images`` (up to ``max_images``).

    An untrained encoder keeps mean 0 and variance 1 in its BatchNorm layers, which is wrong for
    real activations; comparing against it would flatter every trained method. With momentum
    None, BatchNorm averages the statistics of the batches it sees, each batch counting once, so
    only full batches are used.
    """
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    encoder.train()
    n = min(max_images, len(images))
    n = n // batch_size * batch_size or n  # whole batches only, unless there is less than one
    for batch in images[:n].split(batch_size):
        encoder(to_float(batch).contiguous(memory_format=torch.channels_last))
    for bn in norms:
        bn.momentum = 0.1
    encoder.eval()
    return encoder
