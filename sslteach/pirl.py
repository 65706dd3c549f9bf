"""PIRL, pretext-invariant representation learning (Misra & van der Maaten, CVPR 2020).

The jigsaw task asks the network to *predict* the permutation, so its features must change when
the tiles move: they become covariant with the transform. PIRL asks for the opposite: the image
and its shuffled tiles should have the *same* representation. With a memory bank m of image
features (as in NPID, ``sslteach.npid``), the loss (eq. 5) is

    L = lambda * NCE(m_I, g(v_{I^t})) + (1 - lambda) * NCE(m_I, f(v_I)),

where f embeds the whole image and g embeds the 9 shuffled tiles (each through the same encoder,
projected, concatenated in puzzle order, projected again). Both terms pull towards the bank
entry of the image and away from the other images' entries; the second term keeps the bank
entries close to the image features they are made of.

The tiling and the permutation set are the jigsaw lecture's (``sslteach.jigsaw``): tiles are
random crops inside their grid cells, each normalised on its own, shuffled by a permutation
from a maximal-Hamming set.
"""
from __future__ import annotations

import dataclasses
import itertools
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import simclr_augment
from .checkpoint import encoder_from_checkpoint
from .jigsaw import hamming_permutations, shuffled_tiles
from .loop import fit, recompute_batchnorm
from .npid import MONITOR_EVERY, MemoryBank, initial_memory, knn_monitor, monitor_queries, non_parametric_logits
from .profiles import Profile

VIEWS = 2  # each image of a step is seen twice: once whole, once as 9 shuffled tiles


@dataclasses.dataclass(frozen=True)
class PIRLSettings:
    temperature: float = 0.07
    """tau of both terms (the paper's 0.07)."""
    weight: float = 0.5
    """lambda, the weight of the tile term (the paper's 0.5)."""
    memory_momentum: float = 0.5
    """Weight of the old entry in the bank update (the paper's 0.5)."""
    feature_dim: int = 128
    """Size of f, g and the bank entries (the paper's 128)."""
    permutations: int = 100
    """Size of the maximal-Hamming permutation set the tiles are shuffled with."""
    memory_init: str = "encoder"
    """As ``NPIDSettings.memory_init``: "random" (the paper) or the untrained encoder's features."""


class PIRLModel(nn.Module):
    """The two branches on one encoder.

    ``embed_image``: (B, 3, H, W) -> f (B, feature_dim). ``embed_tiles``: (B, 9, 3, T, T) -> g
    (B, feature_dim). Both L2-normalised. ``forward`` is ``embed_image``, so the model also fits
    ``npid.embed_all``.
    """

    def __init__(self, encoder: nn.Module, feature_dim: int = 128):
        super().__init__()
        self.encoder = encoder
        D = encoder.feature_dim
        self.image_head = nn.Linear(D, feature_dim)
        self.tile_head = nn.Linear(D, feature_dim)  # applied to each tile
        self.puzzle_head = nn.Linear(9 * feature_dim, feature_dim)  # on the 9 concatenated tiles

    def embed_image(self, x):
        return F.normalize(self.image_head(self.encoder(x)), dim=1)

    def embed_tiles(self, tiles):
        B = len(tiles)
        x = tiles.flatten(0, 1).contiguous(memory_format=torch.channels_last)  # (9B, 3, T, T)
        per_tile = self.tile_head(self.encoder(x)).view(B, 9 * self.tile_head.out_features)  # (B, 9 feature_dim)
        return F.normalize(self.puzzle_head(per_tile), dim=1)

    def forward(self, x):
        return self.embed_image(x)


def pirl_loss(model: PIRLModel, memory: MemoryBank, images, indices, permutation_set, settings: PIRLSettings = PIRLSettings(), generator=None):
    """PIRL's loss (Misra & van der Maaten 2020, eq. 5) for images (B, 3, H, W) with dataset indices (B,).

    Each NCE term is written as the softmax over the whole bank (the InfoNCE form, as in
    ``npid_loss``); the paper samples 32,000 negatives instead, which a bank of 40,000 makes
    unnecessary. Returns (loss, metrics, f (B, feature_dim) for the bank update after the step).
    """
    image_view = simclr_augment(images, generator=generator).contiguous(memory_format=torch.channels_last)
    tile_view = simclr_augment(images, generator=generator)  # tiles come from another augmentation
    chosen = torch.randint(len(permutation_set), (len(images),), device=images.device, generator=generator)
    tiles = shuffled_tiles(tile_view, permutation_set[chosen], generator)  # (B, 9, 3, T, T)
    f = model.embed_image(image_view)  # (B, D)
    g = model.embed_tiles(tiles)  # (B, D)
    tile_logits = non_parametric_logits(g, memory.features, settings.temperature)  # (B, N)
    image_logits = non_parametric_logits(f, memory.features, settings.temperature)  # (B, N)
    loss = settings.weight * F.cross_entropy(tile_logits, indices) + (1 - settings.weight) * F.cross_entropy(image_logits, indices)
    metrics = {
        "tile_accuracy": (tile_logits.argmax(1) == indices).float().mean().item(),
        "image_accuracy": (image_logits.argmax(1) == indices).float().mean().item(),
    }
    return loss, metrics, f.detach()


def pretrain_pirl(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                  settings: PIRLSettings = PIRLSettings(), monitor_every: int = MONITOR_EVERY):
    """PIRL on the class budget: B / 2 images per step, each as one whole view and 9 tiles.

    Nine 8x8 tiles cost about half a 32x32 image in the encoder, so B / 2 images put about 0.8 B
    image-equivalents through it, a little less than the two-view methods. The loop and the bank
    are NPID's (``sslteach.npid.pretrain_npid``): the loss returns the batch's indices and image
    features f, ``after_step`` writes f into the bank, and the kNN monitor reads every
    ``monitor_every`` steps. The bank starts from the untrained encoder's features, for the reason
    given in ``pretrain_npid``.
    """
    device = images.device
    model = PIRLModel(encoder, settings.feature_dim).to(device)
    permutation_set = hamming_permutations(settings.permutations, seed).to(device)
    start = time.perf_counter()
    memory = initial_memory(model, encoder, images, settings, seed)
    memory_seconds = time.perf_counter() - start
    queries = monitor_queries(len(images), seed).to(device)
    monitor = {"step": [0], "accuracy": [knn_monitor(model, memory, images, labels, queries, num_classes, profile)]}
    steps_done = itertools.count(1)  # after_step's calls: 1, 2, ..., profile.steps

    def loss_fn(model, batch, indices, generator):  # -> (loss, metrics, (indices, f))
        loss, metrics, f = pirl_loss(model, memory, batch, indices, permutation_set, settings, generator)
        return loss, metrics, (indices, f)

    def after_step(state):
        indices, f = state
        memory.update(indices, f, settings.memory_momentum)  # bank entries follow the whole-image features
        step = next(steps_done)
        if step % monitor_every == 0 or step == profile.steps:
            monitor["step"].append(step)
            monitor["accuracy"].append(knn_monitor(model, memory, images, labels, queries, num_classes, profile))

    instances = torch.arange(len(images), device=device)  # each image its own class, in place of labels
    history = fit(model, loss_fn, images, instances, profile,
                  images_per_step=profile.images_per_step(VIEWS), seed=seed, desc="pirl", after_step=after_step)
    history["memory_init_seconds"] = memory_seconds  # outside fit, but part of the method's cost
    history["seconds"] += memory_seconds
    history["knn_monitor"] = monitor
    # BatchNorm's running statistics averaged tile batches with image batches; evaluation sees
    # whole images only, so their statistics are recomputed on whole images.
    start = time.perf_counter()
    recompute_batchnorm(encoder, images)
    history["seconds"] += time.perf_counter() - start
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    return heads, history, {"permutations": permutation_set.cpu()}


def pirl_model_from_checkpoint(checkpoint: dict, device=None) -> PIRLModel:
    """The trained PIRL network (encoder and both branches' heads) of a ``pirl`` checkpoint, in eval mode."""
    feature_dim = checkpoint["head"]["image_head.weight"].shape[0]
    model = PIRLModel(encoder_from_checkpoint(checkpoint), feature_dim)
    model.load_state_dict({**{f"encoder.{k}": v for k, v in checkpoint["encoder"].items()}, **checkpoint["head"]})
    return model.to(device or "cpu").eval()
