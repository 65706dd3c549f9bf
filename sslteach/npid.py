"""Instance discrimination with a memory bank, NPID (Wu, Xiong, Yu & Lin, CVPR 2018).

Treat every training image as its own class, but without a classifier weight per class: the
"weight" of class i is v_i, a stored L2-normalised feature of image i. For the feature f of an
augmented image, the non-parametric softmax (eq. 2) is

    P(i | f) = exp(v_i . f / tau) / sum_j exp(v_j . f / tau),

and the loss is -log P(own index | f). The bank is not trained by backprop: after each step the
rows of the batch move towards the new features, v_i <- normalise(0.5 v_i + 0.5 f_i) (section
3.3), an explicit ``memory.update(...)`` in the loop.

Here the sum runs over the whole bank (a batch of 256 against 40,000 x 128 entries is 2.6 GFLOP
forward, small next to the encoder's 66 GFLOP per training step), so the paper's NCE
approximation of the denominator is not needed.
"""
from __future__ import annotations

import dataclasses
import itertools
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import simclr_augment, to_float
from .evaluate import knn_predict
from .loop import fit, recompute_batchnorm
from .profiles import Profile

MONITOR_EVERY = 25
"""Steps between two readings of the kNN monitor (it also reads before the first and after the last)."""
MONITOR_IMAGES = 1_000
"""Training images the kNN monitor classifies, left out of its neighbours."""


@dataclasses.dataclass(frozen=True)
class NPIDSettings:
    temperature: float = 0.1
    """tau of the non-parametric softmax: 0.07 in the paper, 0.1 in the authors' CIFAR code."""
    memory_momentum: float = 0.5
    """Weight of the old entry in the memory update (the paper's 0.5)."""
    feature_dim: int = 128
    """Size of the stored features (the paper's 128): a linear layer after the encoder."""
    memory_init: str = "encoder"
    """"random": random unit vectors, as in the paper. "encoder": the untrained encoder's own
    features of each image (see ``pretrain_npid`` for why, at this budget)."""


class MemoryBank:
    """One L2-normalised feature per training image: ``features`` (N, D), never trained by backprop."""

    def __init__(self, features: torch.Tensor):
        self.features = F.normalize(features.detach(), dim=1)  # (N, D)

    @classmethod
    def random(cls, size: int, dim: int, device=None, generator=None) -> "MemoryBank":
        """N random unit vectors: the paper's starting point."""
        return cls(torch.randn(size, dim, device=device, generator=generator))

    def __len__(self):
        return len(self.features)

    @torch.no_grad()
    def update(self, indices: torch.Tensor, features: torch.Tensor, momentum: float = 0.5) -> None:
        """v_i <- normalise(momentum * v_i + (1 - momentum) * f_i) for the rows ``indices`` (B,).

        features (B, D); no gradient flows into the bank. Indices in one batch are distinct.
        """
        mixed = momentum * self.features[indices] + (1 - momentum) * features.detach().to(self.features.dtype)
        self.features[indices] = F.normalize(mixed, dim=1)


def non_parametric_logits(features: torch.Tensor, memory: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits of the non-parametric softmax (Wu et al. 2018, eq. 2): v_j . f / tau.

    features (B, D), memory (N, D), both L2-normalised -> (B, N); row b's softmax is P(j | f_b).
    """
    return features @ memory.detach().T / temperature  # (B, N)


def npid_loss(model: nn.Module, memory: MemoryBank, images, indices, settings: NPIDSettings = NPIDSettings(), generator=None):
    """-log P(i | f_i) for a batch of images (B, 3, H, W) with their dataset indices (B,).

    Returns (loss, metrics, features (B, D) normalised, for the memory update after the step).
    ``metrics["accuracy"]``: how often the image's own bank entry is the most similar of all N.
    """
    x = simclr_augment(images, generator=generator).contiguous(memory_format=torch.channels_last)
    f = F.normalize(model(x), dim=1)  # (B, D)
    logits = non_parametric_logits(f, memory.features, settings.temperature)  # (B, N)
    accuracy = (logits.argmax(dim=1) == indices).float().mean().item()
    return F.cross_entropy(logits, indices), {"accuracy": accuracy}, f.detach()


@torch.no_grad()
def embed_all(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Normalised embeddings of un-augmented images (N, 3, H, W) -> (N, D), in eval mode."""
    model.eval()
    out = [F.normalize(model(to_float(b).contiguous(memory_format=torch.channels_last)), dim=1) for b in images.split(batch_size)]
    return torch.cat(out)


def initial_memory(model: nn.Module, encoder: nn.Module, images, settings, seed: int) -> MemoryBank:
    """The bank before the first step, as ``settings.memory_init`` says (NPID's or PIRL's settings).

    "encoder": the untrained network's features of every image (N, 3, H, W), after recomputing
    ``encoder``'s BatchNorm statistics on them; "random": N random unit vectors, as in the paper.
    """
    if settings.memory_init == "encoder":
        recompute_batchnorm(encoder, images)
        return MemoryBank(embed_all(model, images))
    generator = torch.Generator(images.device).manual_seed(seed + 1)
    return MemoryBank.random(len(images), settings.feature_dim, images.device, generator)


def memory_knn_accuracy(bank_features, bank_labels, test_features, test_labels, num_classes: int,
                        k: int, temperature: float) -> float:
    """Weighted-kNN accuracy with memory-bank entries as the labelled neighbours (Wu et al. 2018).

    bank_features (N, D) with bank_labels (N,); test_features (M, D) with test_labels (M,) -> accuracy.
    """
    predictions = knn_predict(bank_features, bank_labels, test_features, num_classes, k, temperature)
    return (predictions == test_labels).float().mean().item()


def monitor_queries(num_images: int, seed: int, count: int = MONITOR_IMAGES) -> torch.Tensor:
    """The fixed training images the kNN monitor classifies: (count,) indices out of ``num_images``.

    Drawn on the CPU with their own generator, so that training's random draws are unchanged.
    """
    return torch.randperm(num_images, generator=torch.Generator().manual_seed(seed + 2))[:count]


@torch.no_grad()
def knn_monitor(model: nn.Module, memory: MemoryBank, images, labels, queries, num_classes: int, profile: Profile) -> float:
    """The kNN monitor of Wu et al.: the bank itself as the labelled neighbours, no pass over the data.

    The training images ``queries`` (M,) are embedded by the current network (eval mode, no
    augmentation) and classified by a vote of their ``profile.knn_k`` nearest bank entries at
    ``profile.knn_temperature``, their own entries left out (each would be its query's nearest
    neighbour). images (N, 3, H, W), labels (N,). It draws no random numbers and hands the model
    back in train mode, so it does not change the training.
    """
    features = embed_all(model, images[queries])  # (M, D); sets eval mode
    model.train()
    others = torch.ones(len(memory), dtype=torch.bool, device=memory.features.device)
    others[queries] = False
    return memory_knn_accuracy(memory.features[others], labels[others], features, labels[queries], num_classes,
                               profile.knn_k, profile.knn_temperature)


def pretrain_npid(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                  settings: NPIDSettings = NPIDSettings(), monitor_every: int = MONITOR_EVERY):
    """NPID on the class budget: B augmented images per step against a bank of all N images.

    Each step: features of the batch -> softmax over the bank, the target being each image's own
    index -> optimiser step -> ``after_step``: the batch's bank rows move towards its features.
    The true labels are never used for training: ``fit`` hands each batch the dataset indices of
    its images in their place, and the labels only score the kNN monitor (``knn_monitor``), read
    before the first step, every ``monitor_every`` steps and after the last, into
    ``history["knn_monitor"]`` = {"step": [...], "accuracy": [...]}.

    Each bank entry is refreshed only when its image is drawn, about twice in the class profile's
    350 steps of 256 out of 40,000 images. With the paper's random start, an entry is a random
    vector until the first refresh, so most of the first epoch trains against noise; starting
    from the untrained encoder's features (one extra forward pass over the data, after
    recomputing BatchNorm statistics) makes every step count.
    """
    device = images.device
    model = nn.Sequential(encoder, nn.Linear(encoder.feature_dim, settings.feature_dim)).to(device)
    start = time.perf_counter()
    memory = initial_memory(model, encoder, images, settings, seed)
    memory_seconds = time.perf_counter() - start
    queries = monitor_queries(len(images), seed).to(device)
    monitor = {"step": [0], "accuracy": [knn_monitor(model, memory, images, labels, queries, num_classes, profile)]}
    steps_done = itertools.count(1)  # after_step's calls: 1, 2, ..., profile.steps

    def loss_fn(model, batch, indices, generator):  # -> (loss, metrics, (indices, features))
        loss, metrics, f = npid_loss(model, memory, batch, indices, settings, generator)
        return loss, metrics, (indices, f)

    def after_step(state):
        indices, f = state
        memory.update(indices, f, settings.memory_momentum)  # v_i <- normalise(m v_i + (1 - m) f_i)
        step = next(steps_done)
        if step % monitor_every == 0 or step == profile.steps:
            monitor["step"].append(step)
            monitor["accuracy"].append(knn_monitor(model, memory, images, labels, queries, num_classes, profile))

    instances = torch.arange(len(images), device=device)  # each image its own class, in place of labels
    history = fit(model, loss_fn, images, instances, profile,
                  images_per_step=profile.images_per_step(), seed=seed, desc="npid", after_step=after_step)
    history["memory_init_seconds"] = memory_seconds  # outside fit, but part of the method's cost
    history["seconds"] += memory_seconds
    history["knn_monitor"] = monitor
    return model[1].state_dict(), history, {"temperature": settings.temperature}
