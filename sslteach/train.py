"""The command line of pretraining: train a method of the course, or all of them, into checkpoints.

    python -m sslteach.train rotation                 # -> data/checkpoints/class/rotation.pt
    python -m sslteach.train simclr --profile full    # -> data/checkpoints/full/simclr.pt
    python -m sslteach.train all --profile full       # every method: how an instructor prepares a class
    python -m sslteach.train rotation --out /tmp/rotation.pt --steps 50

Every method gets the same budget from the profile: the same number of optimiser steps with
the same number of images through the encoder per step. ``random-init`` is the honest floor: an
untrained encoder whose BatchNorm statistics are recomputed on the training images. The table of
methods is ``sslteach.methods``; each method's training is in its own module.

The lectures find checkpoints with ``sslteach.methods.find_run``:
``data/checkpoints/<profile>/`` (made by this command or by an earlier lecture run), then the
class-profile checkpoints that ship with the course in ``checkpoints/class/`` (made by this
command, see checkpoints/README.md), and otherwise the lecture trains its own and saves it.
Each folder has a ``SHA256SUMS`` file that every load checks.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from .checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from .cli import UsageError, positive_int, run
from .device import pick_device
from .methods import METHODS, TRAINABLE, is_method_run, pretrain
from .profiles import get_profile


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
    parser.add_argument("method", choices=TRAINABLE + ("all",),
                        help="a method, or all of the lectures' methods in turn")
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
    from .data import data_fingerprint, describe_data, load_cifar10

    profile = get_profile(args.profile)
    if args.steps is not None:
        profile = dataclasses.replace(profile, steps=args.steps, warmup_steps=min(profile.warmup_steps, args.steps))
    methods = METHODS if args.method == "all" else (args.method,)
    if args.out is None:
        outs = {m: checkpoint_path(m, profile, args.seed) for m in methods}
    elif args.method == "all":
        outs = {m: Path(args.out) / checkpoint_path(m, profile, args.seed).name for m in methods}
    else:
        outs = {args.method: Path(args.out)}
    for out in outs.values():
        check_output(out)
    device = pick_device(args.device)
    train = load_cifar10("train")
    data = data_fingerprint(train, load_cifar10("test"))  # recorded in every checkpoint
    images, labels = train.images, train.labels
    if profile.train_images:
        images, labels = images[: profile.train_images], labels[: profile.train_images]
    images, labels = images.to(device), labels.to(device)
    print(f"{len(methods)} method(s), profile {profile.name}, {len(images)} images on {device}")
    for method, out in outs.items():
        if args.method == "all" and not args.force and out.exists():
            existing = load_checkpoint(out)
            # trained on other data: still this run
            if is_method_run(existing, method, profile, args.seed):
                other = existing.get("data") != data
                note = f"; trained on {describe_data(existing.get('data'))}, --force trains it on yours" if other else ""
                print(f"{method}: {out} is up to date (verified), skipped{note}")
                continue
        checkpoint = pretrain(method, images, labels, profile, len(train.classes), args.seed, data=data)
        save_checkpoint(out, checkpoint)
        h = checkpoint["history"]
        print(f"{method}: {h['images_seen']} images in {h['seconds']:.1f} s on {device} -> {out}", flush=True)
    if len(outs) > 1:
        print(f"checksums: {next(iter(outs.values())).parent / 'SHA256SUMS'} (check by hand with sha256sum -c SHA256SUMS)")


if __name__ == "__main__":
    sys.exit(main())
