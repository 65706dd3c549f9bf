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
    measure_bank_images: int = 5_000
    """Lecture 07's hypersphere measurements: labelled images of the kNN bank, ..."""
    measure_test_images: int = 1_000
    """... images whose kNN accuracy is measured, ..."""
    measure_pair_images: int = 500
    """... and images whose two views measure alignment (sslteach.sphere_demo)."""

    def images_per_step(self, views: int = 1) -> int:
        """Distinct images a step draws for a method that sends each through the encoder
        ``views`` times (rotation's 4 rotations, SimCLR's 2 views), so that every method puts
        ``batch_size`` images through the encoder per step."""
        return self.batch_size // views

    def settings(self, names) -> dict:
        """The values of the settings called ``names``, as a dict (what a checkpoint or a table
        records and compares)."""
        return {name: getattr(self, name) for name in names}


TRAINING_SETTINGS = ("encoder", "batch_size", "steps", "lr", "weight_decay", "warmup_steps", "train_images",
                     "mixed_precision")
"""The settings that change the weights pretraining ends with: a checkpoint made with other
values of these is another run (``sslteach.checkpoint.is_same_run``); the others do not count."""

EVALUATION_SETTINGS = ("probe_train_images", "test_images", "knn_k", "knn_temperature")
"""The settings that change a readout of fixed weights (a row of the course table)."""


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
    measure_bank_images=50_000,
    measure_test_images=10_000,
    measure_pair_images=2_000,
)

PROFILES = {p.name: p for p in (CLASS, FULL)}


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$SSLTEACH_PROFILE``, else ``class``."""
    name = name or os.environ.get(PROFILE_ENV, "class")
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
