"""The two run profiles: ``class`` (a CPU laptop, minutes per lecture) and ``full`` (a GPU).

A profile is a frozen dataclass; the notebooks and the command line read every budget from it,
so there is no ``if on_gpu:`` scattered through the code. Choose one with the environment
variable ``SSLTEACH_PROFILE`` (default ``class``) or ``--profile`` on the command line.
"""
from __future__ import annotations

import dataclasses
import os

PROFILE_ENV = "SSLTEACH_PROFILE"


class ProfileError(ValueError):
    """A profile name that is not one of ``PROFILES``."""


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    """``class`` or ``full``."""
    encoder: str
    """``small`` (sslteach.encoders.SmallConvNet) or ``resnet18`` (CIFAR-style ResNet-18)."""
    batch_size: int
    """Images per step that go through the encoder (for rotation: 4 rotations of batch/4 images)."""
    steps: int
    """Optimiser steps of pretraining; every method and the supervised baseline get the same."""
    lr: float
    """Peak learning rate of SGD with Nesterov momentum, decayed by a cosine schedule."""
    weight_decay: float
    """L2 penalty on all weights, as in the RotNet CIFAR recipe (5e-4)."""
    warmup_steps: int
    """Linear warm-up, so that large first steps do not blow up freshly initialised BatchNorm."""
    train_images: int
    """How many training images pretraining draws from (0 = all of them)."""
    probe_train_images: int
    """Labelled images used to fit the kNN bank and the linear probe (0 = all)."""
    test_images: int
    """Held-out images the evaluation reports on (0 = the whole test split)."""
    mixed_precision: bool
    """bfloat16 autocast on CUDA; ignored on other devices."""
    knn_k: int = 200
    """Neighbours in the weighted kNN monitor (Wu et al. 2018)."""
    knn_temperature: float = 0.1
    """Temperature of the kNN vote weights exp(s / t)."""


CLASS = Profile(
    name="class",
    encoder="small",
    batch_size=256,
    steps=350,
    lr=0.1,
    weight_decay=5e-4,
    warmup_steps=20,
    train_images=0,
    probe_train_images=5_000,
    test_images=0,
    mixed_precision=False,
)

FULL = Profile(
    name="full",
    encoder="resnet18",
    batch_size=512,
    steps=39_000,  # about 100 epochs of 50,000 images at 128 images (512 rotated) per step
    lr=0.1,
    weight_decay=5e-4,
    warmup_steps=500,
    train_images=0,
    probe_train_images=0,
    test_images=0,
    mixed_precision=True,
)

PROFILES = {p.name: p for p in (CLASS, FULL)}


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$SSLTEACH_PROFILE``, else ``class``."""
    name = name or os.environ.get(PROFILE_ENV, "class")
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
