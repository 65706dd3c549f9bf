"""Pretraining: one short training loop, the methods it runs, and a command line.

    python -m sslteach.train rotation --profile class --out checkpoints/rotation.pt
    python -m sslteach.train supervised --profile class --out checkpoints/supervised.pt
    python -m sslteach.train random-init --profile class --out checkpoints/random-init.pt
    python -m sslteach.train colorization --profile class --out checkpoints/colorization.pt

Every method gets the same budget from the profile: the same number of optimiser steps with
the same number of images through the encoder per step. ``random-init`` is the honest floor: an
untrained encoder whose BatchNorm statistics are recomputed on the training images.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .augment import random_crop_flip, to_float
from .checkpoint import load_checkpoint, save_checkpoint
from .colorization import ab_gamut_bins
from .colorizer import ColorizationNet, colorization_loss, fit_prior, regression_loss
from .device import pick_device, seed_everything
from .encoders import Encoder, build_encoder
from .profiles import Profile, get_profile
from .rotation import rotation_loss


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


def fit(model, loss_fn, images, labels, profile: Profile, images_per_step: int, seed: int = 0, desc: str = "training"):
    """Train ``model`` for ``profile.steps`` steps of SGD with Nesterov momentum.

    Parameters
    ----------
    model : nn.Module
        Already on the device of ``images``.
    loss_fn : callable
        ``loss_fn(model, batch_images, batch_labels, generator) -> (loss, metrics dict)``.
    images : (N, 3, H, W) uint8 tensor
        The whole training set, on the device: batches are index lookups, no DataLoader.
    labels : (N,) int64 tensor
        Passed to ``loss_fn``; self-supervised losses ignore them.
    images_per_step : int
        Distinct images drawn per step (the batch before any multiplication into views).

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
        model.parameters(), lr=profile.lr, momentum=0.9, nesterov=True, weight_decay=profile.weight_decay
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
            loss, metrics = loss_fn(model, images[index], labels[index], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        history["loss"].append(loss.item())
        for name, value in metrics.items():
            history.setdefault(name, []).append(value)
    history["seconds"] = time.perf_counter() - start
    history["images_seen"] = profile.steps * images_per_step
    return history


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


def pretrain(method: str, images, labels, profile: Profile, num_classes: int = 10, seed: int = 0):
    """Run one method on ``images`` (on the device) and return a checkpoint dict."""
    seed_everything(seed)
    encoder = build_encoder(profile.encoder).to(images.device, memory_format=torch.channels_last)
    head_state, history, extras = None, {"seconds": 0.0, "images_seen": 0}, {}
    if method == "rotation":
        model = Classifier(encoder, 4).to(images.device)
        loss_fn = lambda m, x, y, g: rotation_loss(m, x, g)  # noqa: E731 - labels unused
        history = fit(model, loss_fn, images, labels, profile, profile.batch_size // 4, seed, "rotation")
        head_state = model.head.state_dict()
    elif method == "supervised":
        model = Classifier(encoder, num_classes).to(images.device)
        history = fit(model, supervised_loss, images, labels, profile, profile.batch_size, seed, "supervised")
        head_state = model.head.state_dict()
    elif method == "colorization":  # the colour prior comes from the training images, before training
        bins = ab_gamut_bins().to(images.device)
        prior, weights = fit_prior(images, bins)
        model = ColorizationNet(encoder, len(bins)).to(images.device)
        loss_fn = lambda m, x, y, g: colorization_loss(m, x, bins, weights, g)  # noqa: E731
        history = fit(model, loss_fn, images, labels, profile, profile.batch_size, seed, "colorization")
        head_state, extras = model.head.state_dict(), {"bins": bins.cpu(), "prior": prior.cpu()}
    elif method == "colorization-regression":
        model = ColorizationNet(encoder, 2).to(images.device)
        loss_fn = lambda m, x, y, g: regression_loss(m, x, g)  # noqa: E731
        history = fit(model, loss_fn, images, labels, profile, profile.batch_size, seed, "colorization-regression")
        head_state = model.head.state_dict()
    elif method == "random-init":
        start = time.perf_counter()
        recompute_batchnorm(encoder, images)
        history = {"seconds": time.perf_counter() - start, "images_seen": min(len(images), BATCHNORM_IMAGES)}
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    encoder.eval()
    return {
        "method": method,
        "profile": profile.name,
        "profile_settings": dataclasses.asdict(profile),
        "encoder_name": profile.encoder,
        "encoder": encoder.state_dict(),
        "head": head_state,
        "seed": seed,
        "history": history,
        **extras,
    }


METHODS = ("rotation", "supervised", "random-init", "colorization", "colorization-regression")


def encoder_from_checkpoint(checkpoint: dict, device=None) -> Encoder:
    """Rebuild the encoder stored in a checkpoint, in eval mode."""
    encoder = build_encoder(checkpoint["encoder_name"])
    encoder.load_state_dict(checkpoint["encoder"])
    return encoder.to(device or "cpu", memory_format=torch.channels_last).eval()


def load_or_pretrain(method: str, path, images, labels, profile: Profile, seed: int = 0) -> dict:
    """The lectures' pattern: load the checkpoint at ``path`` if it exists, else train and save it."""
    path = Path(path)
    if path.exists():
        checkpoint = load_checkpoint(path)
        # A checkpoint made with other settings (an edited profile, another seed) is retrained.
        same_run = checkpoint.get("profile_settings") == dataclasses.asdict(profile) and checkpoint["seed"] == seed
        if same_run and checkpoint["method"] == method:
            return checkpoint
    checkpoint = pretrain(method, images, labels, profile, seed=seed)
    save_checkpoint(path, checkpoint)
    return checkpoint


def main(argv=None):
    from .data import load_cifar10

    parser = argparse.ArgumentParser(prog="python -m sslteach.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("--profile", default=None, help="class (default, CPU) or full (GPU)")
    parser.add_argument("--out", required=True, help="where to write the checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="override the profile's step count")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    args = parser.parse_args(argv)

    profile = get_profile(args.profile)
    if args.steps is not None:
        profile = dataclasses.replace(profile, steps=args.steps, warmup_steps=min(profile.warmup_steps, args.steps))
    device = pick_device(args.device)
    train = load_cifar10("train")
    images, labels = train.images, train.labels
    if profile.train_images:
        images, labels = images[: profile.train_images], labels[: profile.train_images]
    checkpoint = pretrain(args.method, images.to(device), labels.to(device), profile, len(train.classes), args.seed)
    save_checkpoint(args.out, checkpoint)
    h = checkpoint["history"]
    print(f"{args.method}: {h['images_seen']} images in {h['seconds']:.1f} s on {device} -> {args.out}")


if __name__ == "__main__":
    main()
