"""Pretraining: the methods the course trains, one function each, and a command line.

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
import functools
import time
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .colorization import ab_gamut_bins
from .colorizer import ColorizationNet, colorization_loss, fit_prior, regression_loss
from .device import pick_device, seed_everything
from .encoders import Encoder, build_encoder
from .loop import BATCHNORM_IMAGES, Classifier, fit, recompute_batchnorm, supervised_loss, warmup_cosine  # noqa: F401
from .profiles import Profile, get_profile
from .rotation import rotation_loss
from .clustering import pretrain_deepcluster
from .moco import pretrain_moco
from .npid import pretrain_npid
from .pirl import pretrain_pirl
from .simclr import pretrain_simclr, pretrain_simclr_no_color
from .swav import pretrain_swav
from .context import CONTEXT_ABERRATION, CONTEXT_ABERRATION_DROPPING, CONTEXT_NO_GAP, pretrain_context
from .jigsaw import pretrain_jigsaw


def pretrain_rotation(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """Rotation prediction: 4 rotations of 1/4 batch of images, a 4-way linear head."""
    model = Classifier(encoder, 4).to(images.device)
    loss_fn = lambda m, x, y, g: rotation_loss(m, x, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, profile.batch_size // 4, seed, "rotation")
    return model.head.state_dict(), history, {}


def pretrain_supervised(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """The supervised baseline on the same budget: cross-entropy on the true labels."""
    model = Classifier(encoder, num_classes).to(images.device)
    history = fit(model, supervised_loss, images, labels, profile, profile.batch_size, seed, "supervised")
    return model.head.state_dict(), history, {}


def pretrain_random_init(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """The floor: no training, BatchNorm statistics recomputed on the training images."""
    start = time.perf_counter()
    recompute_batchnorm(encoder, images)
    history = {"seconds": time.perf_counter() - start, "images_seen": min(len(images), BATCHNORM_IMAGES)}
    return None, history, {}


def pretrain_colorization(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """Colorization as classification over the ab bins, rebalanced by the prior of the training images."""
    bins = ab_gamut_bins().to(images.device)
    prior, weights = fit_prior(images, bins)  # before training, from the training images
    model = ColorizationNet(encoder, len(bins)).to(images.device)
    loss_fn = lambda m, x, y, g: colorization_loss(m, x, bins, weights, g)  # noqa: E731
    history = fit(model, loss_fn, images, labels, profile, profile.batch_size, seed, "colorization")
    return model.head.state_dict(), history, {"bins": bins.cpu(), "prior": prior.cpu()}


def pretrain_colorization_regression(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """The L2 regression baseline of colorization, on the same budget."""
    model = ColorizationNet(encoder, 2).to(images.device)
    loss_fn = lambda m, x, y, g: regression_loss(m, x, g)  # noqa: E731
    history = fit(model, loss_fn, images, labels, profile, profile.batch_size, seed, "colorization-regression")
    return model.head.state_dict(), history, {}


# Every method the course trains. Each function takes a fresh encoder on the device and returns
# (head weights or None, history, extra checkpoint entries); it trains the encoder in place.
PRETRAINERS = {
    "rotation": pretrain_rotation,
    "supervised": pretrain_supervised,
    "random-init": pretrain_random_init,
    "colorization": pretrain_colorization,
    "colorization-regression": pretrain_colorization_regression,
    "simclr": pretrain_simclr,
    "simclr-no-color": pretrain_simclr_no_color,
    "swav": pretrain_swav,
    "deepcluster": pretrain_deepcluster,
    "npid": pretrain_npid,
    "moco": pretrain_moco,
    "pirl": pretrain_pirl,
    "context": pretrain_context,
    "context-nogap": functools.partial(pretrain_context, task=CONTEXT_NO_GAP),
    "context-aberration": functools.partial(pretrain_context, task=CONTEXT_ABERRATION),
    "context-aberration-dropping": functools.partial(pretrain_context, task=CONTEXT_ABERRATION_DROPPING),
    "jigsaw": pretrain_jigsaw,
    "jigsaw-10": functools.partial(pretrain_jigsaw, count=10),
    "jigsaw-1000": functools.partial(pretrain_jigsaw, count=1000),
}
METHODS = tuple(PRETRAINERS)


def pretrain(method: str, images, labels, profile: Profile, num_classes: int = 10, seed: int = 0):
    """Run one method on ``images`` (on the device) and return a checkpoint dict."""
    if method not in PRETRAINERS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    seed_everything(seed)
    encoder = build_encoder(profile.encoder).to(images.device, memory_format=torch.channels_last)
    head_state, history, extras = PRETRAINERS[method](encoder, images, labels, profile, num_classes, seed)
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
