"""Context prediction (Doersch, Gupta & Efros, "Unsupervised Visual Representation Learning by
Context Prediction", ICCV 2015).

The pretext task: cut a patch from the centre of a 3x3 grid and one of its 8 neighbours, and ask
the network where the neighbour sat (8 classes, raster order, the centre skipped). To answer, it
has to recognise parts of objects: an ear goes above a face, a wheel below a car door.

It is also the lecture about shortcuts. Patches that touch let the network continue edges and
lines across the border, so the paper leaves a gap between them and jitters each patch. And a
camera lens shifts colour channels a little, more towards the edges of the frame (chromatic
aberration), which tells a patch where in the frame it was cut; the paper removes that cue by
dropping colour channels. ``ContextTask`` holds these choices; CIFAR-10's 32x32 images set the
sizes (see its fields).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import to_float
from .checkpoint import encoder_from_checkpoint
from .encoders import CIFAR10_MEAN, Encoder
from .loop import fit

# The 8 neighbours in raster order, skipping the centre: Doersch et al.'s labels (Figure 2).
NEIGHBOUR_NAMES = ("top-left", "top", "top-right", "left", "right", "bottom-left", "bottom", "bottom-right")
NEIGHBOUR_CELLS = (0, 1, 2, 3, 5, 6, 7, 8)  # label k -> cell in the raster-ordered 3x3 grid
CENTRE_CELL = 4


@dataclasses.dataclass(frozen=True)
class ContextTask:
    """How patches are cut. The paper (on images of ~400 px): patch 96, gap 48, jitter up to 7.

    On 32x32 images a 3x3 grid of patches must fit in 32 pixels: 3 * patch + 2 * gap + 2 * jitter
    <= 32. We keep the paper's proportions as far as they go: patch 8, gap 3 (3/8 of a patch),
    jitter 1.
    """

    patch_size: int = 8
    """Side of each square patch, in pixels."""
    gap: int = 3
    """Pixels between neighbouring patches before jitter (the paper: half a patch)."""
    jitter: int = 1
    """Each patch moves independently by up to this many pixels in x and y. The class sweep
    (benchmarks/sweeps/, validation split carved from the training images, linear probe, seeds
    0-2) kept gap 3, jitter 1: 49.0 +- 0.6; gap 2 with jitter 2 (the same room, edges harder to
    continue) gave 47.2 +- 0.2 (-1.7 against a noise bar of 1.3: below), and the profile's
    learning rate doubled to 0.2 gave 45.0 +- 1.5 (below). Reproduce:
    `python tools/sweep.py context --set gap=2 --set jitter=2 --seed S`."""
    aberration: float = 0.0
    """Strength of simulated chromatic aberration applied to every image first (0: none)."""
    color_dropping: bool = False
    """The paper's fix: keep one random colour channel per patch, replace the others by noise."""
    input_size: int = 0
    """Resize patches to this size (bilinear) before the encoder; 0: the encoder sees them as cut."""


# The lecture's setting. Patches are upsampled to 16x16: at 8x8 the encoder's four stages work
# on 8, 4, 2 and 1 pixel maps, and its deeper stages, trained on maps with almost no extent,
# transfer poorly to whole images. Measured on the class profile (stages 1-4, linear probe):
# random init 46.1 / 51.1 / 48.4 / 44.5; patches as cut 49.7 / 51.6 / 49.1 / 44.2; upsampled to
# 16 48.5 / 54.5 / 54.4 / 47.5, for about 1.3 times the training time on a 2-core CPU. Upsampling
# adds no information; it changes the scale at which the encoder's stages see a patch.
CONTEXT = ContextTask(input_size=16)
CONTEXT_NO_GAP = dataclasses.replace(CONTEXT, gap=0, jitter=0)  # the shortcut: patches touch, edges continue
# The lens experiments ask whether a network learns where a patch sits in the frame, a cue of a
# pixel or less; they use the patches as cut, at about 3/4 of the training time.
# A lens that shrinks green by 6% towards the centre: up to 1 pixel of fringe in the corners.
ABERRATION = 0.06
CONTEXT_ABERRATION = ContextTask(aberration=ABERRATION)
CONTEXT_ABERRATION_DROPPING = ContextTask(aberration=ABERRATION, color_dropping=True)


def crop_patches(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Square crops at per-image positions, in one indexing operation.

    images : (B, C, H, W); top, left : (B, K) int64 corner of each crop -> (B, K, C, size, size).
    """
    B, K = top.shape
    offsets = torch.arange(size, device=images.device)
    rows = (top.unsqueeze(-1) + offsets).view(B, K, size, 1)  # (B, K, size, 1)
    cols = (left.unsqueeze(-1) + offsets).view(B, K, 1, size)  # (B, K, 1, size)
    batch = torch.arange(B, device=images.device).view(B, 1, 1, 1)
    patches = images.permute(0, 2, 3, 1)[batch, rows, cols]  # (B, K, size, size, C)
    return patches.permute(0, 1, 4, 2, 3)  # (B, K, C, size, size)


def grid_corners(B: int, image_size: int, patch_size: int, gap: int, jitter: int, generator=None, device=None) -> torch.Tensor:
    """Top-left corners of a jittered 3x3 grid of patches, centred in the image.

    Returns (B, 9, 2) int64 (row, column); cell ``3 * i + j`` is grid row i, column j. Every
    patch gets its own jitter, uniform in [-jitter, jitter] along each axis.
    """
    span = 3 * patch_size + 2 * gap
    if span + 2 * jitter > image_size:
        raise ValueError(f"3 patches of {patch_size} with gap {gap} and jitter {jitter} need "
                         f"{span + 2 * jitter} pixels; the image has {image_size}")
    origin = (image_size - span) // 2
    steps = origin + (patch_size + gap) * torch.arange(3, device=device)
    cells = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).view(9, 2)  # (9, 2)
    shift = torch.randint(-jitter, jitter + 1, (B, 9, 2), device=device, generator=generator)
    return cells + shift  # (B, 9, 2)


def patch_pairs(images: torch.Tensor, task: ContextTask = CONTEXT, generator=None):
    """The pretext batch: a centre patch, one random neighbour, and the neighbour's position.

    Parameters
    ----------
    images : (B, C, H, W) float tensor, H == W
    task : ContextTask

    Returns
    -------
    pairs : (B, 2, C, P, P) tensor
        ``pairs[b, 0]`` the centre patch of image b, ``pairs[b, 1]`` the neighbour.
    labels : (B,) int64 tensor
        k in 0..7: the neighbour was cut from ``NEIGHBOUR_CELLS[k]``, named ``NEIGHBOUR_NAMES[k]``.
    corners : (B, 2, 2) int64 tensor
        (row, column) of the two patches' top-left corners in the image, for pictures and tests.
    """
    B, _, H, _ = images.shape
    labels = torch.randint(0, 8, (B,), device=images.device, generator=generator)
    corners = grid_corners(B, H, task.patch_size, task.gap, task.jitter, generator, images.device)  # (B, 9, 2)
    cells = torch.stack([torch.full_like(labels, CENTRE_CELL), torch.tensor(NEIGHBOUR_CELLS, device=images.device)[labels]], 1)
    corners = corners.gather(1, cells.unsqueeze(-1).expand(B, 2, 2))  # (B, 2, 2)
    return crop_patches(images, corners[..., 0], corners[..., 1], task.patch_size), labels, corners


def chromatic_aberration(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Simulated lateral chromatic aberration: the green channel shrunk towards the image centre.

    Doersch et al. (Section 3.1) found that in many photographs one colour channel (commonly
    green) is shrunk towards the image centre relative to the others, so the colour fringes at
    an edge point away from the centre and tell where in the frame a patch was cut.
    images : (B, 3, H, W) floats in [0, 1] -> the same, green resampled (bilinear) at
    (1 + strength) times its distance from the centre.
    """
    B, C, H, W = images.shape
    theta = torch.tensor([[1 + strength, 0.0, 0.0], [0.0, 1 + strength, 0.0]], device=images.device)
    grid = F.affine_grid(theta.expand(B, 2, 3), [B, 1, H, W], align_corners=False)
    green = F.grid_sample(images[:, 1:2], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return torch.cat([images[:, :1], green, images[:, 2:]], dim=1)


def drop_color(patches: torch.Tensor, generator=None) -> torch.Tensor:
    """Colour dropping (Doersch et al., Section 3.1): keep one random channel of each patch and
    replace the other two by Gaussian noise with 1/100 the standard deviation of the kept one.

    The paper's images were mean-subtracted, so its noise sits at the mean colour; here the
    noise is centred on the CIFAR-10 channel mean, which the encoder's normalisation maps to 0.
    patches : (..., 3, P, P) floats -> the same shape.
    """
    flat = patches.reshape(-1, 3, *patches.shape[-2:])  # (N, 3, P, P)
    N = flat.shape[0]
    keep = torch.randint(0, 3, (N,), device=flat.device, generator=generator)
    kept = flat[torch.arange(N, device=flat.device), keep]  # (N, P, P)
    scale = kept.flatten(1).std(dim=1).view(N, 1, 1, 1) / 100
    noise = torch.randn(flat.shape, device=flat.device, generator=generator) * scale
    mean = torch.tensor(CIFAR10_MEAN, device=flat.device, dtype=flat.dtype).view(1, 3, 1, 1)
    is_kept = F.one_hot(keep, 3).bool().view(N, 3, 1, 1)
    return torch.where(is_kept, flat, mean + noise).view(patches.shape)


def project_out_green_magenta(images: torch.Tensor) -> torch.Tensor:
    """The paper's other fix: remove each pixel's component along the green-magenta colour axis
    v = (-1, 2, -1) / sqrt(6), x <- x - (x . v) v. Greys (r = g = b) are unchanged.

    images : (..., 3, H, W) -> the same shape.
    """
    v = torch.tensor([-1.0, 2.0, -1.0], device=images.device, dtype=images.dtype) / 6 ** 0.5
    along = torch.einsum("...chw,c->...hw", images, v).unsqueeze(-3)  # (..., 1, H, W)
    return images - along * v.view(3, 1, 1)


class FusionHead(nn.Module):
    """Late fusion (Doersch et al. Fig. 3; Noroozi & Favaro's context-free network): a shared
    layer per patch, the results concatenated, then two layers to the classes.

    (B, K, D) patch features -> (B, num_classes) logits.
    """

    def __init__(self, num_patches: int, feature_dim: int, num_classes: int, hidden: int = 256, joint: int = 512):
        super().__init__()
        self.per_patch = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True))
        self.joint = nn.Sequential(nn.Linear(num_patches * hidden, joint), nn.ReLU(inplace=True), nn.Linear(joint, num_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.per_patch(features)  # (B, K, hidden)
        return self.joint(h.flatten(1))  # (B, num_classes)


class PatchNet(nn.Module):
    """One encoder applied to every patch (shared weights), then a ``FusionHead``.

    (B, K, C, P, P) float patches -> (B, num_classes). With ``input_size`` the patches are first
    resized (bilinear) to input_size x input_size; otherwise the encoder sees them as cut (its
    pooled features work for any P).
    """

    def __init__(self, encoder: Encoder, num_patches: int, num_classes: int, input_size: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.head = FusionHead(num_patches, encoder.feature_dim, num_classes)
        self.input_size = input_size

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        B, K = patches.shape[:2]
        x = patches.flatten(0, 1)  # (B * K, C, P, P)
        if self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.encoder(x).view(B, K, -1))  # (B, num_classes)


def context_loss(model, images: torch.Tensor, task: ContextTask = CONTEXT, generator=None):
    """Cross-entropy of the neighbour's position (Doersch et al., Section 3).

    model : maps (B, 2, 3, P, P) pairs to (B, 8) logits. images : (B, 3, H, W) uint8.
    Returns (loss, {"accuracy": fraction of positions right}). No flips: a mirrored image
    would swap left and right, and no padded crops: a zero border would say where a patch was.
    """
    x = to_float(images)
    if task.aberration:
        x = chromatic_aberration(x, task.aberration)
    pairs, labels, _ = patch_pairs(x, task, generator)
    if task.color_dropping:
        pairs = drop_color(pairs, generator)
    logits = model(pairs)  # (B, 8)
    loss = F.cross_entropy(logits, labels)
    return loss, {"accuracy": (logits.argmax(1) == labels).float().mean().item()}


def pretrain_context(encoder, images, labels, profile, num_classes: int, seed: int, task: ContextTask = CONTEXT):
    """Context prediction on the profile's budget: ``profile.batch_size`` images per step, one
    pair (two patches) from each; returns (head weights, history, {"task": settings})."""
    model = PatchNet(encoder, 2, 8, task.input_size or None).to(images.device)
    loss_fn = lambda m, x, y, g: context_loss(m, x, task, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(),
                  seed=seed, desc="context")
    return model.head.state_dict(), history, {"task": dataclasses.asdict(task)}


def context_model_from_checkpoint(checkpoint: dict, device=None) -> PatchNet:
    """The trained context network (encoder and 8-way pair head) of a ``context*`` checkpoint, in eval mode."""
    model = PatchNet(encoder_from_checkpoint(checkpoint), 2, 8, checkpoint["task"]["input_size"] or None)
    model.head.load_state_dict(checkpoint["head"])
    return model.to(device or "cpu").eval()


@torch.no_grad()
def context_probabilities(model, pairs: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """(B, 2, 3, P, P) pairs -> (B, 8) predicted probabilities of each neighbour position.
    ``model`` should be in eval mode."""
    return torch.cat([model(chunk).softmax(dim=1) for chunk in pairs.split(batch_size)])


@torch.no_grad()
def grid_patch_features(encoder, images: torch.Tensor, task: ContextTask = CONTEXT, generator=None, batch_size: int = 256):
    """Features of every patch of the 3x3 grid, one patch at a time, and the cell it came from:
    what a probe needs to ask "can this encoder tell where in the frame a patch was cut?".

    images : (B, 3, H, W) uint8 or float, aberrated first if ``task.aberration``; patches are
    resized to ``task.input_size`` when it is set, as ``PatchNet`` does.
    Returns features (9B, D) and cells (9B,) int64 in 0..8 (raster order), on the encoder's device.
    """
    encoder.eval()
    device = next(encoder.parameters()).device
    features = []
    for batch in images.split(batch_size):
        x = to_float(batch.to(device))
        if task.aberration:
            x = chromatic_aberration(x, task.aberration)
        corners = grid_corners(len(x), x.shape[-1], task.patch_size, task.gap, task.jitter, generator, device)
        patches = crop_patches(x, corners[..., 0], corners[..., 1], task.patch_size).flatten(0, 1)  # (9b, 3, P, P)
        if task.input_size:  # as the encoder saw patches in training
            patches = F.interpolate(patches, size=task.input_size, mode="bilinear", align_corners=False)
        features.append(encoder(patches.contiguous(memory_format=torch.channels_last)).float())
    cells = torch.arange(9, device=device).repeat(len(images))  # patch-major within each image
    return torch.cat(features), cells
