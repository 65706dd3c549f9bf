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
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import simclr_augment, to_float
from .evaluate import knn_predict
from .loop import fit, recompute_batchnorm
from .profiles import Profile


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


def memory_knn_accuracy(memory: MemoryBank, bank_labels, test_features, test_labels, num_classes: int, k: int = 200, temperature: float = 0.1) -> float:
    """The kNN monitor of Wu et al.: the bank itself as the labelled neighbours, no extra pass.

    memory (N, D) with bank_labels (N,); test_features (M, D) from the current model -> accuracy.
    """
    predictions = knn_predict(memory.features, bank_labels, test_features, num_classes, k, temperature)
    return (predictions == test_labels).float().mean().item()


def fit_with_memory_bank(model: nn.Module, encoder: nn.Module, loss, images, profile: Profile, batch_size: int,
                         seed: int, name: str, settings, labels=None, num_classes: int = 10,
                         monitor_every: int = 25, monitor_images: int = 1_000) -> tuple[dict, MemoryBank]:
    """The training loop of the memory-bank methods (NPID here, PIRL in ``sslteach.pirl``).

    ``loss(model, memory, x, indices, generator) -> (loss, metrics, f)``; f (B, D) are the batch's
    normalised features, written into the bank after the step by ``after_step`` (no gradient).
    ``fit`` hands each batch the dataset indices of its images in place of labels: the loss needs
    them to find v_i, and the true labels are never used for training. ``settings`` gives
    ``memory_init`` and ``memory_momentum``. -> (history, memory).

    With ``labels``, the weighted-kNN monitor of Wu et al. runs every ``monitor_every`` steps
    (and before the first and after the last): ``monitor_images`` fixed training images are
    embedded by the current network (eval mode, no augmentation) and classified by their 200
    nearest bank entries, their own entries left out. It costs one forward pass of those images,
    needs no pass over the data, and does not change the training (no randomness is drawn).
    ``history["knn_monitor"]`` holds {"step": [...], "accuracy": [...]}.
    """
    device = images.device
    start = time.perf_counter()
    if settings.memory_init == "encoder":
        recompute_batchnorm(encoder, images)
        memory = MemoryBank(embed_all(model, images))
    else:
        memory = MemoryBank.random(len(images), settings.feature_dim, device, torch.Generator(device).manual_seed(seed + 1))
    memory_seconds = time.perf_counter() - start
    pending = []  # this step's (indices, features), written to the bank once the step is done

    monitor = {"step": [], "accuracy": []}
    if labels is not None and monitor_every:
        queries = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + 2))[:monitor_images].to(device)
        neighbours = torch.ones(len(images), dtype=torch.bool, device=device)
        neighbours[queries] = False  # a query's own entry would be its nearest neighbour

    def record(step):
        if labels is None or not monitor_every:
            return
        features = embed_all(model, images[queries])  # sets eval mode
        model.train()
        predictions = knn_predict(memory.features[neighbours], labels[neighbours], features, num_classes)
        monitor["step"].append(step)
        monitor["accuracy"].append((predictions == labels[queries]).float().mean().item())

    def loss_fn(m, x, index, g):
        value, metrics, f = loss(m, memory, x, index, g)
        pending.append((index, f))
        return value, metrics

    steps_done = 0

    def after_step():
        nonlocal steps_done
        memory.update(*pending.pop(), settings.memory_momentum)
        steps_done += 1
        if steps_done % monitor_every == 0 or steps_done == profile.steps:
            record(steps_done)

    record(0)
    model.train()
    indices = torch.arange(len(images), device=device)
    history = fit(model, loss_fn, images, indices, profile, batch_size, seed, name, after_step)
    history["memory_init_seconds"] = memory_seconds  # outside fit, but part of the method's cost
    history["seconds"] += memory_seconds
    if monitor["step"]:
        history["knn_monitor"] = monitor
    return history, memory


def pretrain_npid(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                  settings: NPIDSettings = NPIDSettings()):
    """NPID on the class budget: B augmented images per step against a bank of all N images.

    Each bank entry is refreshed only when its image is drawn, about twice in the class profile's
    350 steps of 256 out of 40,000 images. With the paper's random start, an entry is a random
    vector until the first refresh, so most of the first epoch trains against noise; starting
    from the untrained encoder's features (one extra forward pass over the data, after
    recomputing BatchNorm statistics) makes every step count.
    """
    model = nn.Sequential(encoder, nn.Linear(encoder.feature_dim, settings.feature_dim)).to(images.device)

    def loss(m, memory, x, index, g):
        return npid_loss(m, memory, x, index, settings, g)

    history, _ = fit_with_memory_bank(model, encoder, loss, images, profile, profile.batch_size, seed, "npid", settings,
                                      labels=labels, num_classes=num_classes)
    return model[1].state_dict(), history, {"temperature": settings.temperature}
