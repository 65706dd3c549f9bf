"""Pretraining: the methods the course trains, one function each, and a command line.

    python -m sslteach.train rotation                 # -> data/checkpoints/class/rotation.pt
    python -m sslteach.train simclr --profile full    # -> data/checkpoints/full/simclr.pt
    python -m sslteach.train all --profile full       # every method: how an instructor prepares a class
    python -m sslteach.train rotation --out /tmp/rotation.pt --steps 50

Every method gets the same budget from the profile: the same number of optimiser steps with
the same number of images through the encoder per step. ``random-init`` is the honest floor: an
untrained encoder whose BatchNorm statistics are recomputed on the training images.

Checkpoints are found by the lectures in this order (:func:`load_or_pretrain`):
``data/checkpoints/<profile>/`` (made by this command or by an earlier lecture run), then the
class-profile checkpoints that ship with the course in ``checkpoints/class/`` (made by this
command, see checkpoints/README.md), and otherwise the lecture trains its own and saves it.
Each folder has a ``SHA256SUMS`` file that every load checks.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .cli import UsageError, positive_int, run
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


# The class-profile checkpoints that ship with the course (a source checkout; see
# checkpoints/README.md). SSLTEACH_CHECKPOINTS points elsewhere; SSLTEACH_RETRAIN=1 ignores them.
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def shipped_checkpoints() -> Path:
    """The folder of checkpoints that came with the course (may not exist)."""
    return Path(os.environ.get("SSLTEACH_CHECKPOINTS", SHIPPED_CHECKPOINTS))


def is_same_run(checkpoint: dict, method: str, profile: Profile, seed: int) -> bool:
    """Whether ``checkpoint`` is ``method`` trained with exactly ``profile`` and ``seed``."""
    return (
        checkpoint.get("method") == method
        and checkpoint.get("profile_settings") == dataclasses.asdict(profile)
        and checkpoint.get("seed") == seed
    )


def find_checkpoint(method: str, path, profile: Profile, seed: int = 0) -> dict | None:
    """The checkpoint of this exact run that a lecture would load, without training: None if none.

    Looks at ``path`` first, then (unless ``SSLTEACH_RETRAIN=1``) at the checkpoint of the same
    name that ships with the course, ``checkpoints/<profile>/<name>``, which must match its
    SHA256SUMS. A checkpoint made with other settings (an edited profile, another seed) does not
    count. ``checkpoint["source"]`` says which file was used.
    """
    path = Path(path)
    candidates = [path]
    if os.environ.get("SSLTEACH_RETRAIN", "") in ("", "0"):
        candidates.append(shipped_checkpoints() / profile.name / path.name)
    for i, candidate in enumerate(candidates):
        if candidate.exists():
            checkpoint = load_checkpoint(candidate, checksum_required=i > 0)
            if is_same_run(checkpoint, method, profile, seed):
                checkpoint["source"] = str(candidate)
                return checkpoint
    return None


def load_or_pretrain(method: str, path, images, labels, profile: Profile, seed: int = 0) -> dict:
    """The lectures' pattern: load a checkpoint of this exact run (``find_checkpoint``), else train
    and save it at ``path``; then ``checkpoint["source"]`` is "trained"."""
    checkpoint = find_checkpoint(method, path, profile, seed)
    if checkpoint is not None:
        return checkpoint
    checkpoint = pretrain(method, images, labels, profile, seed=seed)
    save_checkpoint(path, checkpoint)
    checkpoint["source"] = "trained"
    return checkpoint


def check_output(path: Path) -> None:
    """Raise :class:`UsageError` unless a checkpoint can be written at ``path``.

    Checked before training, so a typo in ``--out`` costs a second, not a whole run.
    """
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; give a file name such as {path / 'rotation.pt'}")
    folder = path.parent
    while not folder.exists():  # missing folders are created: the first existing one must allow it
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: no permission to write in {folder}")


def main(argv=None) -> int:
    """The command line; returns the exit status (1 after a one-line ``error: ...``)."""
    parser = argparse.ArgumentParser(prog="python -m sslteach.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=METHODS + ("all",), help="a method, or all of them in turn")
    parser.add_argument("--profile", default=None, help="class (default, CPU) or full (GPU)")
    parser.add_argument("--out", default=None,
                        help="checkpoint file (one method) or folder (all); default data/checkpoints/<profile>/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=positive_int, default=None, help="override the profile's step count (at least 1)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--force", action="store_true", help="with all: train again even where a matching checkpoint exists")
    args = parser.parse_args(argv)
    return run(lambda: train_command(args))


def train_command(args: argparse.Namespace) -> None:
    """What ``main`` does once the arguments are parsed; expected failures raise."""
    from .data import data_dir, load_cifar10

    profile = get_profile(args.profile)
    if args.steps is not None:
        profile = dataclasses.replace(profile, steps=args.steps, warmup_steps=min(profile.warmup_steps, args.steps))
    methods = METHODS if args.method == "all" else (args.method,)
    if args.method == "all" or args.out is None:
        folder = Path(args.out) if args.out else data_dir() / "checkpoints" / profile.name
        outs = {m: folder / f"{m}.pt" for m in methods}
    else:
        outs = {args.method: Path(args.out)}
    for out in outs.values():
        check_output(out)
    device = pick_device(args.device)
    train = load_cifar10("train")
    images, labels = train.images, train.labels
    if profile.train_images:
        images, labels = images[: profile.train_images], labels[: profile.train_images]
    images, labels = images.to(device), labels.to(device)
    print(f"{len(methods)} method(s), profile {profile.name}, {len(images)} images on {device}")
    for method, out in outs.items():
        if args.method == "all" and not args.force and out.exists():
            if is_same_run(load_checkpoint(out), method, profile, args.seed):
                print(f"{method}: {out} is up to date (verified), skipped")
                continue
        checkpoint = pretrain(method, images, labels, profile, len(train.classes), args.seed)
        save_checkpoint(out, checkpoint)
        h = checkpoint["history"]
        print(f"{method}: {h['images_seen']} images in {h['seconds']:.1f} s on {device} -> {out}", flush=True)
    if len(outs) > 1:
        print(f"checksums: {next(iter(outs.values())).parent / 'SHA256SUMS'} (check by hand with sha256sum -c SHA256SUMS)")


if __name__ == "__main__":
    sys.exit(main())
