"""SwAV, swapping assignments between views (Caron, Misra, Mairal, Goyal, Bojanowski & Joulin,
NeurIPS 2020).

Clustering without a k-means pass over the data: K trainable prototypes c_k (unit vectors) and,
for every batch, soft cluster assignments ("codes") q computed online. Each view's code is
predicted from the *other* view (the swapped prediction, eq. 1):

    L = l(z_2, q_1) + l(z_1, q_2),  l(z, q) = -sum_k q_k log softmax(z . C / temperature)_k.

Left alone, the codes would collapse: every image to one prototype. SwAV forbids that by asking
the codes of a batch to use all prototypes equally (equipartition), which is an optimal transport
problem solved approximately by a few Sinkhorn-Knopp iterations (eq. 3), with no gradient through
the codes. A training loss stuck at log K is the sign of collapse: predictions carry no
information about which prototype a view belongs to.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import encoder_from_checkpoint
from .loop import fit
from .profiles import Profile
from .simclr import VIEWS, projection_head, two_views


@dataclasses.dataclass(frozen=True)
class SwAVSettings:
    prototypes: int = 100
    """K. The paper uses 3,000 on ImageNet and solo-learn 3,000 on CIFAR-10 over hundreds of
    epochs; with 128 images per step a batch can only spread over so many prototypes, and 100
    (10 per CIFAR class) kept the codes informative at this budget."""
    temperature: float = 0.2
    """Of the softmax over prototype scores. The paper's 0.1 left SwAV level with random weights
    here; the class sweep (benchmarks/sweeps/, validation split carved from the training images,
    linear probe, seeds 0-2) measured 0.1: 42.7 +- 1.0 and 0.2: 45.6 +- 0.3 (+2.9, above the noise
    bar of 2.1); adding epsilon 0.03 or 300 prototypes to 0.2 gave 45.7 +- 0.3 each, level with
    0.2 alone. Reproduce: `python tools/sweep.py swav --set temperature=0.2 --seed S`."""
    epsilon: float = 0.05
    """Entropic regularisation of Sinkhorn-Knopp (the paper's 0.05): smaller, harder codes."""
    sinkhorn_iterations: int = 3
    """The paper's 3."""
    projection_dim: int = 128
    """Size of z, and of each prototype."""


class SwAVModel(nn.Module):
    """Encoder, projection head and prototypes: (B, 3, H, W) -> (B, K) scores z . c_k."""

    def __init__(self, encoder: nn.Module, projection_dim: int = 128, prototypes: int = 100):
        super().__init__()
        self.encoder = encoder
        self.head = projection_head(encoder.feature_dim, projection_dim)
        self.prototypes = nn.Linear(projection_dim, prototypes, bias=False)  # rows are c_k
        normalize_prototypes(self.prototypes)

    def forward(self, x):
        z = F.normalize(self.head(self.encoder(x)), dim=1)  # (B, D) on the unit sphere
        return self.prototypes(z)  # (B, K) cosine similarities, once prototypes are normalised


@torch.no_grad()
def normalize_prototypes(prototypes: nn.Linear) -> None:
    """Project every prototype back onto the unit sphere; SwAV does it before every step."""
    prototypes.weight.copy_(F.normalize(prototypes.weight, dim=1))


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Equipartitioned soft codes from prototype scores (Caron et al. 2020, eq. 3 and appendix).

    Starts from Q = exp(scores / epsilon) and alternately rescales so that each prototype holds
    1/K of the batch's mass and each sample holds 1/B, ``iterations`` times; the sample step comes
    last, so every code sums exactly to 1 and the prototypes are equal only approximately (exactly
    in the limit of many iterations). No gradient flows through the codes.

    Parameters
    ----------
    scores : (B, K) tensor
        z . c_k for B samples and K prototypes.

    Returns
    -------
    codes : (B, K) float32 tensor
        Rows sum to 1; columns sum to about B / K.
    """
    B, K = scores.shape
    # Subtracting the maximum changes nothing after normalisation and keeps exp finite.
    Q = torch.exp((scores.float() - scores.max().float()) / epsilon).T  # (K, B)
    Q /= Q.sum()
    for _ in range(iterations):
        Q /= Q.sum(dim=1, keepdim=True) * K  # each prototype: total mass 1/K
        Q /= Q.sum(dim=0, keepdim=True) * B  # each sample: total mass 1/B
    return (Q * B).T  # (B, K), each row a distribution over prototypes


def swapped_prediction_loss(scores_1, scores_2, codes_1, codes_2, temperature: float = 0.1) -> torch.Tensor:
    """SwAV's loss (eq. 1): predict view 1's code from view 2's scores and the other way round.

    scores_v (B, K), codes_v (B, K) -> scalar, averaged over samples and over the two directions.
    """
    log_p1 = F.log_softmax(scores_1 / temperature, dim=1)  # (B, K)
    log_p2 = F.log_softmax(scores_2 / temperature, dim=1)
    return -0.5 * ((codes_1 * log_p2).sum(dim=1).mean() + (codes_2 * log_p1).sum(dim=1).mean())


def swav_loss(model: SwAVModel, images, settings: SwAVSettings = SwAVSettings(), generator=None):
    """Swapped prediction for two augmented views of images (B, 3, H, W) -> (loss, metrics).

    ``metrics["prototypes_used"]``: fraction of the K prototypes that are some view's most likely
    one (near 1 / K when collapsed); ``metrics["loss_over_log_k"]``: loss / log K (near 1: collapse).
    """
    B, K = len(images), settings.prototypes
    views = two_views(images, generator=generator).contiguous(memory_format=torch.channels_last)
    scores = model(views)  # (2B, K)
    codes_1 = sinkhorn_knopp(scores[:B], settings.epsilon, settings.sinkhorn_iterations)
    codes_2 = sinkhorn_knopp(scores[B:], settings.epsilon, settings.sinkhorn_iterations)
    loss = swapped_prediction_loss(scores[:B], scores[B:], codes_1, codes_2, settings.temperature)
    used = scores.argmax(dim=1).unique().numel() / K
    return loss, {"prototypes_used": used, "loss_over_log_k": loss.item() / math.log(K)}


def pretrain_swav(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                  settings: SwAVSettings = SwAVSettings()):
    """SwAV on the class budget: B / 2 images per step, two views each (no multi-crop).

    The prototypes are normalised before the first step and after every optimiser step (that is,
    before the next one), an explicit ``after_step``. Multi-crop (extra small views) and the queue
    SwAV adds for small batches are left out: both matter over hundreds of epochs, not two.
    Labels are not used.
    """
    model = SwAVModel(encoder, settings.projection_dim, settings.prototypes).to(images.device)
    loss_fn = lambda m, x, y, g: swav_loss(m, x, settings, g)  # noqa: E731 - labels unused
    history = fit(model, loss_fn, images, labels, profile, images_per_step=profile.images_per_step(VIEWS),
                  seed=seed, desc="swav", after_step=lambda: normalize_prototypes(model.prototypes))
    head_and_prototypes = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    return head_and_prototypes, history, {}


@torch.no_grad()
def prototype_usage(scores: torch.Tensor) -> torch.Tensor:
    """Fraction of the samples whose highest-scoring prototype is each prototype: (N, K) -> (K,).

    A healthy SwAV spreads the samples over many prototypes; a collapsed one sends (nearly) all
    of them to one. ``usage_entropy`` turns this into a single number.
    """
    K = scores.shape[1]
    return torch.bincount(scores.argmax(dim=1), minlength=K).float() / len(scores)


def usage_entropy(usage: torch.Tensor) -> float:
    """Entropy in nats of a prototype-usage distribution (K,): log K if all are used equally, 0 if one is."""
    p = usage[usage > 0]
    return float((p * (1 / p).log()).sum())  # written so that a single prototype gives +0.0, not -0.0


def swav_model_from_checkpoint(checkpoint: dict, device=None) -> SwAVModel:
    """The trained SwAV network (encoder, projection head, prototypes) of a ``swav`` checkpoint, in eval mode."""
    K, D = checkpoint["head"]["prototypes.weight"].shape
    model = SwAVModel(encoder_from_checkpoint(checkpoint), D, K)
    model.load_state_dict({**{f"encoder.{k}": v for k, v in checkpoint["encoder"].items()}, **checkpoint["head"]})
    return model.to(device or "cpu").eval()


def short_run(encoder, images, make_codes, steps: int = 8, batch_size: int = 32,
              settings: SwAVSettings = SwAVSettings(), seed: int = 0) -> dict:
    """A few SwAV steps from ``encoder`` with codes from ``make_codes``, to watch collapse happen or not.

    ``make_codes(scores (B, K)) -> codes (B, K)``: ``sinkhorn_knopp`` as in the paper, or e.g. a
    plain softmax per sample, which has no equipartition constraint. Batch ``step`` is images
    [step * batch_size, (step + 1) * batch_size) (B, 3, H, W), two views each; plain SGD, lr 0.1.
    Returns per-step lists: ``loss``, ``prototypes_used`` (fraction of the K prototypes that are
    some view's best) and ``usage_entropy`` (``usage_entropy(prototype_usage(scores))``, nats).
    """
    model = SwAVModel(encoder, settings.projection_dim, settings.prototypes).to(images.device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator(images.device).manual_seed(seed)
    history = {"loss": [], "prototypes_used": [], "usage_entropy": []}
    for step in range(steps):
        batch = images[step * batch_size:(step + 1) * batch_size]
        B = len(batch)
        scores = model(two_views(batch, generator=generator).contiguous(memory_format=torch.channels_last))  # (2B, K)
        with torch.no_grad():
            codes_1, codes_2 = make_codes(scores[:B]), make_codes(scores[B:])
        loss = swapped_prediction_loss(scores[:B], scores[B:], codes_1, codes_2, settings.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        normalize_prototypes(model.prototypes)
        usage = prototype_usage(scores.detach())
        history["loss"].append(loss.item())
        history["prototypes_used"].append(float((usage > 0).float().mean()))
        history["usage_entropy"].append(usage_entropy(usage))
    return history
