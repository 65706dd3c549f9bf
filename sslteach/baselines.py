"""The two baselines every self-supervised result is shown against, trained like a method.

* ``supervised``: the same encoder trained on the true labels with the same budget (the same
  steps, the same images through the encoder per step): how far labels take this network.
* ``random-init``: no training at all, only the BatchNorm statistics recomputed on the training
  images: the honest floor, since a random convolutional network already gives features that a
  kNN or a linear probe can use.
"""
from __future__ import annotations

import time

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
