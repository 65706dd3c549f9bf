"""Contrastive losses: InfoNCE (Oord et al. 2018) and SimCLR's NT-Xent (Chen et al., ICML 2020).

One formula behind all of them. An anchor x has one positive x+ (another view of the same
image) and many negatives x-; with s the cosine similarity and tau a temperature,

    l(x, x+) = -log exp(s(x, x+) / tau) / (exp(s(x, x+) / tau) + sum_j exp(s(x, x-_j) / tau)),

which is cross-entropy over "which of these candidates is my positive?". The functions here
are four ways to write it, the first three in the order of the lecture's exercise path:

- ``info_nce_loop``: NT-Xent as a double loop straight from the formula, slow and obviously right;
- ``info_nce_rows``: one anchor at a time, its similarities to all candidates as one vector (the
  step between the two; fast enough to time at the batch sizes SimCLR uses);
- ``nt_xent``: the same number from one (2B, 2B) similarity matrix, self-similarity masked;
- ``info_nce``: a query against its own key and a queue of negatives, returning ``logits, labels``
  as MoCo's builder does, so the loss is visibly ``cross_entropy(logits, labels)`` with label 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def info_nce_loop(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent written as loops over anchors and candidates (SimCLR, Chen et al. 2020, eq. 1).

    Reference implementation for tests and the exercise path: one Python iteration per pair,
    so use it on a few dozen embeddings only.

    Parameters
    ----------
    z1, z2 : (B, D) tensors
        Embeddings of two views; row i of ``z1`` and row i of ``z2`` come from the same image.
        They are L2-normalised here, so s is the cosine similarity.
    temperature : float
        tau in the formula.

    Returns
    -------
    loss : scalar tensor
        The mean of l(i, partner of i) over all 2B anchors; the anchor itself is never a candidate.
    """
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])  # (2B, D)
    B = len(z1)
    total = z.new_zeros(())
    for i in range(2 * B):
        positive = (i + B) % (2 * B)
        denominator = z.new_zeros(())
        for k in range(2 * B):
            if k != i:  # the anchor is not its own candidate
                denominator = denominator + torch.exp(torch.dot(z[i], z[k]) / temperature)
        numerator = torch.exp(torch.dot(z[i], z[positive]) / temperature)
        total = total - torch.log(numerator / denominator)
    return total / (2 * B)


def info_nce_rows(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent with a loop over the 2B anchors only: each anchor's similarities to every view are
    one matrix-vector product, its loss a log-softmax over the 2B - 1 others. Same value as
    ``info_nce_loop`` and ``nt_xent``; 2B Python steps instead of 4B^2, or of one.

    z1, z2 : (B, D) embeddings of the two views (normalised here) -> scalar loss.
    """
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])  # (2B, D)
    B = len(z1)
    total = z.new_zeros(())
    for i in range(2 * B):
        similarities = z @ z[i] / temperature  # (2B,) to every view, itself included
        others = torch.cat([similarities[:i], similarities[i + 1:]])  # (2B - 1,) the anchor is not a candidate
        positive = (i + B) % (2 * B)
        total = total - (similarities[positive] - torch.logsumexp(others, dim=0))
    return total / (2 * B)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020, eq. 1).

    Every one of the 2B views is an anchor; its positive is the other view of its image and the
    remaining 2B - 2 views are its negatives. Averaged over all 2B anchors, as in the paper
    (Google's TF code reports twice this value).

    Parameters
    ----------
    z1, z2 : (B, D) tensors
        Embeddings of the two views, paired by row; L2-normalised here.
    temperature : float
        tau; SimCLR uses 0.5 on CIFAR-10.

    Returns
    -------
    loss : scalar tensor
        log(2B - 1) when all embeddings are equal (the collapse value).
    """
    B = len(z1)
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])  # (2B, D)
    logits = z @ z.T / temperature  # (2B, 2B)
    # Mask the diagonal: a view is trivially most similar to itself (the bug of lightning-bolts #695).
    # In place: no (2B, 2B) mask to build, and autograd needs neither value it overwrites.
    logits.fill_diagonal_(float("-inf"))
    partners = torch.arange(2 * B, device=z.device).roll(B)  # row i's positive is column (i + B) mod 2B
    return F.cross_entropy(logits, partners)


def info_nce(query: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2):
    """InfoNCE of each query against its positive key and K queued negatives (He et al. 2020, eq. 1).

    Returns logits and labels rather than the loss, as MoCo's ``builder.py`` does, so the caller
    writes ``F.cross_entropy(logits, labels)`` and it is plain that the positive is class 0.

    Parameters
    ----------
    query : (B, D) tensor
        q, from the encoder being trained; L2-normalised here.
    keys : (B, D) tensor
        k+, the positive key of each query (another view, through the key encoder); normalised
        here and detached, since no gradient flows into the keys.
    queue : (K, D) tensor
        Negative keys, e.g. ``KeyQueue.keys`` from ``sslteach.moco``; normalised here.
    temperature : float
        tau: 0.07 in MoCo v1, 0.2 in MoCo v2.

    Returns
    -------
    logits : (B, 1 + K) tensor
        Column 0 is q . k+ / tau, columns 1..K are q . queue_j / tau.
    labels : (B,) int64 tensor of zeros
        The positive's column.
    """
    q = F.normalize(query, dim=1)
    k = F.normalize(keys.detach(), dim=1)
    negatives = F.normalize(queue.detach(), dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
    negative = q @ negatives.T  # (B, K)
    logits = torch.cat([positive, negative], dim=1) / temperature  # (B, 1 + K)
    labels = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return logits, labels


def collapse_value(batch_size: int) -> float:
    """NT-Xent of a collapsed encoder (all 2B embeddings equal): log(2B - 1), at any temperature."""
    return math.log(2 * batch_size - 1)


def positive_accuracy(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Fraction of the 2B views whose most similar other view is their partner: (B, D), (B, D) -> float.

    The contrastive task's own accuracy, logged during training: near 1 / (2B - 1) at the start.
    """
    B = len(z1)
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)]).detach()  # (2B, D)
    similarity = (z @ z.T).fill_diagonal_(float("-inf"))  # (2B, 2B)
    partners = torch.arange(2 * B, device=z.device).roll(B)
    return (similarity.argmax(dim=1) == partners).float().mean().item()


def candidate_gradients(similarities: torch.Tensor, temperature: float):
    """Softmax over one anchor's candidates and the gradient of InfoNCE with respect to each similarity.

    With the positive in column 0 (as ``info_nce`` orders its logits) and p = softmax(s / tau),
    the loss l = -log p_0 has

        dl/ds_0 = -(1 - p_0) / tau   (pulls the positive closer),
        dl/ds_j = p_j / tau          (pushes negative j away, j >= 1),

    so each negative is pushed in proportion to its own softmax probability: the temperature
    decides how much of the push goes to the hardest (most similar) negatives (Wang & Liu,
    CVPR 2021, "Understanding the behaviour of contrastive loss", section 3).

    Parameters
    ----------
    similarities : (..., N) tensor
        Cosine similarities of an anchor to its N candidates, the positive first.
    temperature : float

    Returns
    -------
    probabilities : (..., N) tensor
        softmax(s / tau) over the candidates.
    gradients : (..., N) tensor
        dl/ds for each candidate, as above (equal to what autograd gives).
    """
    probabilities = F.softmax(similarities / temperature, dim=-1)
    gradients = probabilities / temperature
    gradients[..., 0] = (probabilities[..., 0] - 1) / temperature
    return probabilities, gradients


def candidate_similarities(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Every view's cosine similarity to its 2B - 1 candidates, its positive first: (B, D), (B, D) -> (2B, 2B - 1).

    Row i is anchor i of the 2B views (``z1`` then ``z2``); column 0 is its partner, the others
    are the 2B - 2 negatives in their original order. In this layout NT-Xent is
    ``cross_entropy(candidate_similarities(z1, z2) / tau, zeros)``, MoCo's "positive in column 0".
    """
    B = len(z1)
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])  # (2B, D)
    similarity = z @ z.T  # (2B, 2B)
    partners = torch.arange(2 * B, device=z.device).roll(B)
    negatives = ~torch.eye(2 * B, dtype=torch.bool, device=z.device)
    negatives[torch.arange(2 * B), partners] = False  # (2B, 2B): True where k is neither i nor its partner
    positive = similarity.gather(1, partners.view(-1, 1))  # (2B, 1)
    return torch.cat([positive, similarity[negatives].view(2 * B, 2 * B - 2)], dim=1)
