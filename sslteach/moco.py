"""MoCo, momentum contrast (He, Fan, Wu, Xie & Girshick, CVPR 2020; v2: Chen et al. 2020).

SimCLR's negatives are the other images of the batch, so more negatives need a bigger batch.
MoCo decouples the two: negatives are *keys* from earlier batches, kept in a FIFO queue of size
K. Keys must stay comparable across batches, so they come from a slowly moving copy of the
encoder, the momentum (key) encoder: theta_k <- m theta_k + (1 - m) theta_q (eq. 2).

One step, with every state change an explicit call (``pretrain_moco`` runs it in
``sslteach.loop.fit``; ``moco_loss`` is its first four lines, ``after_step`` its last two):

    q = model(view_1)                      # query encoder, trained by backprop
    k = shuffled_keys(key_model, view_2)   # momentum encoder, no gradient, split BatchNorm
    logits, labels = info_nce(q, k, queue.keys)
    loss = cross_entropy(logits, labels)   # then backward and the optimiser step
    queue.push(k)                          # enqueue after the logits are computed
    momentum_update(model, key_model, m)   # before the next step computes its keys

BatchNorm leak: in a batch, BatchNorm's statistics mix information across samples, so the query
and its key, normalised with statistics of the same images, can "recognise" each other through
them and the loss drops without learning a good representation. MoCo shuffles the keys across
GPUs so each is normalised with different images; on one device the CIFAR demo simulates that
with ``SplitBatchNorm2d``, normalising each of several sub-batches separately.
"""
from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import simclr_augment
from .checkpoint import encoder_from_checkpoint
from .contrastive import info_nce
from .loop import fit
from .profiles import Profile
from .simclr import Embedder, projection_head


@dataclasses.dataclass(frozen=True)
class MoCoSettings:
    temperature: float = 0.2
    """tau: 0.07 in v1, 0.2 in v2 (with the MLP head used here)."""
    queue_size: int = 4096
    """K negatives: 65,536 on ImageNet, 4,096 in the authors' CIFAR-10 demo."""
    momentum: float = 0.99
    """m of the key encoder: 0.999 on ImageNet, 0.99 in the CIFAR demo. With 350 steps, 0.999
    (a memory of about 1,000 steps) would leave the key encoder close to its random start."""
    splits: int = 8
    """Sub-batches of split BatchNorm, as in the CIFAR demo (removing it costs about 4 points)."""
    projection_dim: int = 128
    """Size of the keys and queries."""


@torch.no_grad()
def momentum_update(model: nn.Module, key_model: nn.Module, momentum: float) -> None:
    """theta_k <- momentum * theta_k + (1 - momentum) * theta_q for every parameter (He et al., eq. 2).

    Buffers (BatchNorm's running statistics) are not averaged: each encoder keeps its own, as in
    MoCo's builder.
    """
    for q_param, k_param in zip(model.parameters(), key_model.parameters()):
        k_param.lerp_(q_param.detach(), 1 - momentum)


def momentum_copy(model: nn.Module) -> nn.Module:
    """The key encoder at the start: an exact copy of ``model`` that the optimiser never sees."""
    key_model = copy.deepcopy(model)
    for p in key_model.parameters():
        p.requires_grad_(False)
    return key_model


class KeyQueue:
    """A first-in first-out queue of K keys, the negatives of MoCo (section 3.2).

    ``keys`` (K, D) starts as random unit vectors, as in MoCo's builder; ``push(k)`` overwrites
    the oldest B rows, wrapping around the end, so after K / B pushes every initial key is gone.
    """

    def __init__(self, size: int, dim: int, device=None, generator=None):
        self.keys = F.normalize(torch.randn(size, dim, device=device, generator=generator), dim=1)  # (K, D)
        self.pointer = 0  # the row of the oldest key

    def __len__(self):
        return len(self.keys)

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Enqueue ``keys`` (B, D), B <= K, dequeuing the B oldest; the keys are normalised here."""
        K, B = len(self.keys), len(keys)
        if B > K:
            raise ValueError(f"cannot push {B} keys into a queue of {K}")
        rows = (self.pointer + torch.arange(B, device=self.keys.device)) % K  # (B,) wraps around
        self.keys[rows] = F.normalize(keys.detach().to(self.keys.dtype), dim=1)
        self.pointer = (self.pointer + B) % K


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that normalises each of ``splits`` sub-batches with its own statistics in training.

    Images b with b % splits == s form sub-batch s, like ``splits`` GPUs each with their own
    BatchNorm. Evaluation uses the running statistics (averaged over sub-batches), exactly as a
    plain ``BatchNorm2d``; parameters and buffers are the same, so checkpoints are interchangeable.
    """

    def __init__(self, num_features: int, splits: int, **kwargs):
        super().__init__(num_features, **kwargs)
        self.splits = splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.splits == 1:
            return super().forward(x)
        B, C, H, W = x.shape
        S = self.splits
        if B % S:
            raise ValueError(f"a batch of {B} cannot be split into {S} equal sub-batches")
        # Channel-stack the sub-batches so one batch_norm call computes S sets of statistics.
        stacked = x.reshape(B // S, S * C, H, W)  # image b -> row b // S, channels of split b % S
        running_mean, running_var = self.running_mean.repeat(S), self.running_var.repeat(S)  # (S C,)
        out = F.batch_norm(stacked, running_mean, running_var, self.weight.repeat(S), self.bias.repeat(S),
                           True, self.momentum if self.momentum is not None else 0.1, self.eps)
        with torch.no_grad():  # the running statistics: the average over sub-batches
            self.running_mean.copy_(running_mean.view(S, C).mean(0))
            self.running_var.copy_(running_var.view(S, C).mean(0))
        return out.reshape(B, C, H, W)


def split_batchnorm(module: nn.Module, splits: int) -> nn.Module:
    """Replace every ``BatchNorm2d`` inside ``module`` by a ``SplitBatchNorm2d`` with the same state."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            split = SplitBatchNorm2d(child.num_features, splits, eps=child.eps, momentum=child.momentum)
            split.load_state_dict(child.state_dict())
            split.train(child.training)
            setattr(module, name, split.to(child.weight.device))
        else:
            split_batchnorm(child, splits)
    return module


@torch.no_grad()
def shuffled_keys(key_model: nn.Module, views: torch.Tensor, generator=None) -> torch.Tensor:
    """Keys of ``views`` (B, 3, H, W) computed in a random order, returned in the original order.

    With split BatchNorm, the shuffle puts each key in a different sub-batch than its query
    (queries are split by position): MoCo's shuffle BN on one device. Returns (B, D).
    """
    order = torch.randperm(len(views), device=views.device, generator=generator)
    keys = key_model(views[order])  # (B, D), shuffled
    return keys[torch.argsort(order)]  # unshuffle


def moco_logits(model, key_model, queue: KeyQueue, images, settings: MoCoSettings = MoCoSettings(), generator=None):
    """Queries, keys and InfoNCE logits of one MoCo step, as ``forward`` in MoCo's builder.

    images (B, 3, H, W) -> (logits (B, 1 + K), labels (B,) all 0, keys (B, D)): column 0 of the
    logits is each query's positive key, the other K the queue. The keys are returned so that
    the caller enqueues them after the step, explicitly.
    """
    B = len(images)
    views = simclr_augment(images.repeat(2, 1, 1, 1), generator=generator).contiguous(memory_format=torch.channels_last)  # (2B, 3, H, W)
    q = model(views[:B])  # (B, D) queries, with gradient
    k = shuffled_keys(key_model, views[B:], generator)  # (B, D) keys, no gradient
    logits, labels = info_nce(q, k, queue.keys, settings.temperature)  # (B, 1 + K), (B,)
    return logits, labels, k


def moco_loss(model, key_model, queue: KeyQueue, images, settings: MoCoSettings = MoCoSettings(), generator=None):
    """InfoNCE of queries from ``model`` against momentum keys and the queue (He et al., eq. 1).

    images (B, 3, H, W) -> (loss, metrics, keys (B, D)); the keys are this step's state, for
    ``fit`` to hand to ``after_step``. ``metrics["accuracy"]``: how often the positive key scores
    above all K queued negatives.
    """
    logits, labels, k = moco_logits(model, key_model, queue, images, settings, generator)
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    return F.cross_entropy(logits, labels), {"accuracy": accuracy}, k


def pretrain_moco(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                  settings: MoCoSettings = MoCoSettings()):
    """MoCo v2 on the class budget: B images per step, one query view and one key view each.

    The B query views go through the trained encoder with backprop, as in SimCLR's 2 x B/2; the
    momentum encoder adds a forward pass over the B key views. Each step is the loop of this
    module's docstring: ``moco_loss`` returns the step's keys, and ``after_step(keys)`` enqueues
    them, then moves the key encoder towards the query encoder. Labels are not used.
    """
    device = images.device
    model = Embedder(split_batchnorm(encoder, settings.splits), projection_head(encoder.feature_dim, settings.projection_dim, batch_norm=False)).to(device)
    key_model = momentum_copy(model).train()  # BatchNorm of the keys uses batch statistics, as in MoCo
    queue = KeyQueue(settings.queue_size, settings.projection_dim, device, torch.Generator(device).manual_seed(seed + 1))

    def loss_fn(model, batch, batch_labels, generator):  # -> (loss, metrics, keys); labels unused
        return moco_loss(model, key_model, queue, batch, settings, generator)

    def after_step(keys):
        queue.push(keys)  # enqueue this step's keys, dequeue the oldest B
        momentum_update(model, key_model, settings.momentum)  # theta_k <- m theta_k + (1 - m) theta_q

    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(),
                  seed=seed, desc="moco", after_step=after_step)
    return model.head.state_dict(), history, {"temperature": settings.temperature}


def moco_model_from_checkpoint(checkpoint: dict, device=None, settings: MoCoSettings = MoCoSettings()) -> Embedder:
    """The trained MoCo query network (encoder with split BatchNorm, projection head without
    BatchNorm) of a ``moco`` checkpoint, in eval mode; ``.train()`` gives split batch statistics."""
    encoder = split_batchnorm(encoder_from_checkpoint(checkpoint), settings.splits)
    model = Embedder(encoder, projection_head(encoder.feature_dim, settings.projection_dim, batch_norm=False))
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()
