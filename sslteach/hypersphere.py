"""Alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020).

Two numbers that say what a contrastive loss does to L2-normalised features:

- alignment: how close the two views of one image land, E ||f(x) - f(y)||^alpha over positive
  pairs (lower is better; with alpha = 2 it lies in [0, 4], since points on the unit sphere are at
  most 2 apart);
- uniformity: how evenly all features spread, log E exp(-t ||f(x) - f(y)||^2) over all pairs
  (lower is better; 0 when everything collapses to one point, about -1.58 for points spread evenly
  on a circle, -3.94 on the sphere in 128 dimensions).

Both assume features on the unit sphere. Raw encoder outputs give meaningless values (huge
alignment, uniformity of -inf), a trap users of the reference code fell into (align_uniform
issues #2 and #10), so both functions refuse unnormalised input with a message saying what to do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# How far a norm may be from 1 and still count as normalised (float32 and bfloat16 round-off).
NORM_TOLERANCE = 1e-2


def check_normalised(x: torch.Tensor, name: str = "features") -> None:
    """Raise ``ValueError`` unless every row of ``x`` (N, D) has L2 norm 1."""
    if x.ndim != 2:
        raise ValueError(f"{name} should be a (N, D) matrix of feature vectors; got shape {tuple(x.shape)}")
    norms = x.detach().float().norm(dim=1)
    if len(norms) and ((norms - 1).abs() > NORM_TOLERANCE).any():
        raise ValueError(
            f"{name} are not L2-normalised (row norms from {norms.min().item():.3g} to {norms.max().item():.3g}). "
            "Alignment and uniformity are defined on the unit sphere: pass F.normalize(features, dim=1)."
        )


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2) -> torch.Tensor:
    """Alignment loss E ||x_i - y_i||^alpha over positive pairs (Wang & Isola 2020, eq. 4).

    Parameters
    ----------
    x, y : (B, D) tensors
        L2-normalised features of two views; row i of each comes from the same image.
    alpha : float
        The paper's alpha = 2 (its default; the mean squared distance).

    Returns
    -------
    scalar tensor, in [0, 2^alpha]: 0 when every pair coincides, 4 (alpha = 2) when antipodal.
    """
    check_normalised(x, "x")
    check_normalised(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must be paired row by row; got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    return (x - y).norm(dim=1).pow(alpha).mean()


def uniformity(x: torch.Tensor, t: float = 2) -> torch.Tensor:
    """Uniformity loss log E exp(-t ||x_i - x_j||^2) over all pairs i < j (Wang & Isola 2020, eq. 5).

    Parameters
    ----------
    x : (N, D) tensor
        L2-normalised features, N >= 2. ``torch.pdist`` keeps all N(N - 1)/2 distances, so keep
        N to a few thousand (5,000 points: 12.5 M distances, 50 MB).
    t : float
        The paper's t = 2.

    Returns
    -------
    scalar tensor, <= 0: 0 for collapsed features; about -1.58 (D = 2), -3.51 (D = 16) and
    -3.94 (D = 128) for points uniform on the sphere.
    """
    check_normalised(x, "x")
    if len(x) < 2:
        raise ValueError("uniformity needs at least two feature vectors")
    squared_distances = torch.pdist(x, p=2).pow(2)  # (N (N - 1) / 2,)
    return squared_distances.mul(-t).exp().mean().log()


def align_uniform_loss(z1: torch.Tensor, z2: torch.Tensor, uniform_weight: float = 1.0, align_weight: float = 1.0,
                       alpha: float = 2, t: float = 2) -> torch.Tensor:
    """Wang & Isola's training objective: align_weight * alignment + uniform_weight * uniformity.

    Optimising the two properties directly instead of a contrastive loss (the paper's section 6;
    its code computes ``align_loss(x, y) * lam_align + (uniform_loss(x) + uniform_loss(y)) / 2 * lam_unif``).

    Parameters
    ----------
    z1, z2 : (B, D) tensors
        Raw embeddings of two views, paired by row; L2-normalised here, so the objective lives on
        the sphere whatever the network outputs.
    uniform_weight, align_weight : float
        The weights of the two terms; (1, 0) is uniformity alone, (0, 1) alignment alone.

    Returns
    -------
    scalar tensor; uniformity is the mean of the two views' values.
    """
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    return align_weight * alignment(x, y, alpha) + uniform_weight * (uniformity(x, t) + uniformity(y, t)) / 2
