"""The two baselines every self-supervised result is shown against, trained like a method.

* ``supervised``: the same encoder trained on the true labels with the same budget (the same
  steps, the same images through the encoder per step): how far labels take this network.
* ``random-init``: no training at all, only the BatchNorm statistics recomputed on the training
  images: the honest floor, since a random convolutional network already gives features that a
  kNN or a linear probe can use.
* ``supervised-1pct`` and ``supervised-10pct``: the same encoder trained from scratch on only 1%
  or 10% of the labelled images: what those few labels give *without* pretraining, the
  reference that a probe with 1% or 10% of the labels on pretrained features must beat.
"""
from __future__ import annotations

import time

import torch

from .checkpoint import encoder_from_checkpoint
from .loop import BATCHNORM_IMAGES, Classifier, fit, recompute_batchnorm, supervised_loss
from .profiles import Profile


def pretrain_supervised(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """The supervised baseline: cross-entropy on the true labels, ``batch_size`` images a step.
    Returns (head weights, history, {})."""
    model = Classifier(encoder, num_classes).to(images.device)
    history = fit(model, supervised_loss, images, labels, profile, images_per_step=profile.images_per_step(),
                  seed=seed, desc="supervised")
    return model.head.state_dict(), history, {}


def pretrain_supervised_few_labels(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                                   fraction: float):
    """The label-efficiency reference: the supervised baseline trained from scratch on a
    class-balanced ``fraction`` of the labelled images only (drawn with ``seed``, so each seed
    has its own draw), with the same steps and images per step as every method (a small set is
    seen many times over). Returns (head weights, history, {"labelled_images": count})."""
    from .evaluate import balanced_subset

    per_class = max(1, round(fraction * len(labels) / num_classes))
    chosen = balanced_subset(labels, per_class, num_classes, torch.Generator().manual_seed(seed))
    repeats = -(-profile.images_per_step() // len(chosen))  # a set smaller than a step is repeated
    chosen = chosen.repeat(repeats)
    model = Classifier(encoder, num_classes).to(images.device)
    history = fit(model, supervised_loss, images[chosen], labels[chosen], profile,
                  images_per_step=profile.images_per_step(), seed=seed, desc=f"supervised on {fraction:.0%}")
    return model.head.state_dict(), history, {"labelled_images": len(chosen) // repeats}


def pretrain_random_init(encoder, images, labels, profile: Profile, num_classes: int, seed: int):
    """The floor: no training, BatchNorm statistics recomputed on the training images.
    Returns (None, history, {})."""
    start = time.perf_counter()
    recompute_batchnorm(encoder, images)
    history = {"seconds": time.perf_counter() - start, "images_seen": min(len(images), BATCHNORM_IMAGES)}
    return None, history, {}


def supervised_model_from_checkpoint(checkpoint: dict, device=None) -> Classifier:
    """The supervised baseline's classifier (encoder and linear head) from its checkpoint, in eval mode."""
    num_classes = checkpoint["head"]["weight"].shape[0]
    model = Classifier(encoder_from_checkpoint(checkpoint), num_classes)
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()
