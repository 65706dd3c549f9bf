"""Lecture 06, contrastive learning: the checks of NT-Xent (loop and vectorised) and of SwAV's Sinkhorn-Knopp."""
from __future__ import annotations

import time

import torch

from ..contrastive import nt_xent
from ..swav import sinkhorn_knopp
from .common import ExerciseError, call_exercise


def _nt_xent_variant(z1, z2, temperature, normalise=True, mask="-inf", denominator="all", anchors="all"):
    """NT-Xent with one of the usual mistakes switched on, to recognise it in a student's answer."""
    F = torch.nn.functional
    B = len(z1)
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)] if normalise else [z1, z2])  # (2B, D)
    logits = z @ z.T / temperature  # (2B, 2B)
    if mask == "-inf":
        logits = logits.fill_diagonal_(float("-inf"))
    elif mask == "zero":
        logits = logits.fill_diagonal_(0.0)
    partner = torch.arange(2 * B).roll(B)  # row i's positive
    if denominator == "negatives only":  # the positive left out of the denominator
        keep = torch.ones_like(logits, dtype=torch.bool).fill_diagonal_(False)
        keep[torch.arange(2 * B), partner] = False
        losses = logits.masked_fill(~keep, float("-inf")).logsumexp(dim=1) - logits[torch.arange(2 * B), partner]
    else:
        losses = F.cross_entropy(logits, partner, reduction="none")  # (2B,)
    return {"all": losses.mean(), "first view": losses[:B].mean(), "sum": losses.sum()}[anchors]


_NT_XENT_MISTAKES = [
    (dict(mask="none"), "the anchor is among its own candidates: exclude k = i from the denominator (a view is "
                        "trivially most similar to itself; the bug of lightning-bolts #695)."),
    (dict(mask="zero"), "you set each self-similarity to 0, but exp(0 / tau) = 1 still counts in the denominator: "
                        "fill the diagonal with -inf (or leave k = i out of the sum) instead."),
    (dict(normalise=False), "the embeddings were not L2-normalised: s is the cosine similarity, the dot product of "
                            "F.normalize(z, dim=1) rows."),
    (dict(denominator="negatives only"), "the denominator leaves the positive out; it runs over every candidate k != i, "
                                       "the positive included."),
    (dict(anchors="first view"), "you averaged over the B anchors of the first view only; every one of the 2B views "
                                 "is an anchor (its partner is the positive), and the loss is the mean over all 2B."),
    (dict(anchors="sum"), "you summed the 2B anchors' losses; the paper's loss is their mean."),
]


def _check_nt_xent_value(name, function, z1, z2, temperature):
    """Compare ``function(z1, z2, temperature)`` with NT-Xent; explain a recognised mistake."""
    got = call_exercise(name, function, z1, z2, temperature)
    if not torch.is_tensor(got) or got.numel() != 1:
        shape = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
        raise ExerciseError(f"{name} returned {shape}; it should return the loss as a scalar tensor (the mean over "
                            "all 2B anchors).")
    got = got.reshape(()).double()
    expected = nt_xent(z1, z2, temperature).double()
    if torch.isclose(got, expected, rtol=1e-5, atol=1e-6):
        return got
    if not torch.isfinite(got):
        raise ExerciseError(f"{name} returned {got.item()}: some anchor's target is its own masked self-similarity "
                            "(targets torch.arange(2B), or all zeros as in MoCo's layout, where info_nce puts the positive "
                            "in column 0), or a log of 0. In the (2B, 2B) matrix row i's positive is column (i + B) mod 2B.")
    if torch.isclose(got, nt_xent(z1, z2, 1 / temperature).double(), rtol=1e-5):
        raise ExerciseError("you multiplied the similarities by tau; divide them: exp(s / tau).")
    for variant, advice in _NT_XENT_MISTAKES:
        if torch.isclose(got, _nt_xent_variant(z1, z2, temperature, **variant).double(), rtol=1e-5, atol=1e-6):
            raise ExerciseError(advice)
    raise ExerciseError(f"{name} gives {got.item():.5f} where NT-Xent is {expected.item():.5f} (B = {len(z1)}, tau = "
                        f"{temperature}). For each of the 2B views i: -log exp(s(i, partner) / tau) / sum over k != i "
                        "of exp(s(i, k) / tau), with s the cosine similarity; then the mean over i.")


def check_nt_xent_loop(nt_xent_loop) -> None:
    """Check ``nt_xent_loop(z1, z2, temperature) -> loss``: NT-Xent from the formula, against ``nt_xent``."""
    generator = torch.Generator().manual_seed(0)
    z1, z2 = 2 * torch.randn(4, 5, generator=generator, dtype=torch.float64), torch.randn(4, 5, generator=generator, dtype=torch.float64)
    z1[3] = 3 * z2[3] + 0.1 * z1[3]  # one pair nearly aligned, so positives are not arbitrary
    for temperature in (0.5, 0.1):
        _check_nt_xent_value("nt_xent_loop", nt_xent_loop, z1, z2, temperature)
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = call_exercise("nt_xent_loop", nt_xent_loop, a, b, 0.5)
    if not loss.requires_grad:
        raise ExerciseError("the loss has no gradient: compute it with torch operations on the tensors (no .item(), "
                            "float() or NumPy in between), so that backpropagation can reach the encoder.")
    one = torch.ones(1, 5, dtype=torch.float64)
    collapsed = call_exercise("nt_xent_loop", nt_xent_loop, one.expand(3, 5), 2 * one.expand(3, 5), 0.5)
    print(f"nt_xent_loop: correct. It matches NT-Xent, has a gradient, and a collapsed batch of B = 3 gives "
          f"{float(collapsed):.4f} = log(2B - 1).")


def check_nt_xent(nt_xent_vectorised) -> None:
    """Check the vectorised ``nt_xent_vectorised(z1, z2, temperature)``: values, gradient and speed."""
    from ..contrastive import nt_xent

    generator = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 8, generator=generator, dtype=torch.float64), torch.randn(6, 8, generator=generator, dtype=torch.float64)
    for temperature in (0.5, 0.07):
        _check_nt_xent_value("nt_xent_vectorised", nt_xent_vectorised, z1, z2, temperature)
    grads = []
    for loss_fn in (nt_xent_vectorised, nt_xent):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        try:
            loss_fn(a, b, 0.5).backward()
        except RuntimeError as error:
            raise ExerciseError(f"backward() failed: {error}\nAn in-place change (fill_diagonal_, masked_fill_) must not "
                                "touch a tensor that autograd still needs; masked_fill (no underscore) makes a copy.") from None
        grads.append((a.grad, b.grad))
    if grads[0][0] is None or not all(torch.allclose(g, h, atol=1e-8) for g, h in zip(*grads)):
        raise ExerciseError("the value is right but the gradient is not: is part of the computation detached or done "
                            "outside torch?")
    # B = 256: a loop makes 4 B^2 = 262,144 Python-level steps (seconds on any laptop); one matrix
    # product takes a few milliseconds. The margin on both sides is large, so the verdict does not
    # depend on how fast or how busy the machine is.
    big1, big2 = torch.randn(256, 128, generator=generator), torch.randn(256, 128, generator=generator)
    start = time.perf_counter()
    with torch.no_grad():
        call_exercise("nt_xent_vectorised", nt_xent_vectorised, big1, big2, 0.2)
    seconds = time.perf_counter() - start
    if seconds > 0.5:
        raise ExerciseError(f"correct, but {seconds:.1f} s for B = 256: replace the Python loops by one (2B, 2B) "
                            "similarity matrix, z @ z.T, and F.cross_entropy with the partners as targets.")
    print("nt_xent_vectorised: correct. The same value and gradient as the loop, and fast.")


def check_sinkhorn(sinkhorn) -> None:
    """Check ``sinkhorn(scores, epsilon, iterations) -> codes (B, K)`` against ``swav.sinkhorn_knopp``."""
    generator = torch.Generator().manual_seed(0)
    F = torch.nn.functional
    z = F.normalize(torch.randn(24, 6, generator=generator), dim=1)
    z[:12] = F.normalize(z[:12] + 2 * z[0], dim=1)  # half the batch crowds around one direction
    prototypes = F.normalize(torch.randn(8, 6, generator=generator), dim=1)
    scores = z @ prototypes.T  # (B, K) = (24, 8), cosine similarities
    B, K = scores.shape
    for epsilon, iterations in [(0.05, 3), (0.5, 1), (0.1, 20)]:
        codes = call_exercise("sinkhorn", sinkhorn, scores, epsilon, iterations)
        expected = sinkhorn_knopp(scores, epsilon, iterations)
        if not torch.is_tensor(codes) or tuple(codes.shape) != (B, K):
            shape = tuple(codes.shape) if torch.is_tensor(codes) else type(codes).__name__
            hint = " (transpose Q at the end)" if torch.is_tensor(codes) and tuple(codes.shape) == (K, B) else ""
            raise ExerciseError(f"codes have shape {shape}; for scores (B, K) = ({B}, {K}) they should be ({B}, {K}): "
                                f"one distribution over the prototypes per sample{hint}.")
        codes = codes.float()
        if torch.allclose(codes, expected, atol=1e-4):
            continue
        rows = codes.sum(dim=1)
        if torch.allclose(rows, torch.full_like(rows, 1 / B), atol=1e-5):
            raise ExerciseError("every code sums to 1 / B: Q holds the batch's joint distribution; multiply by B at the "
                                "end so that each sample's code is a distribution over the prototypes.")
        if torch.allclose(codes, sinkhorn_knopp(scores * epsilon, 1.0, iterations), atol=1e-4):
            raise ExerciseError("the scores were not divided by epsilon: start from Q = exp(scores / epsilon).")
        if torch.allclose(codes, F.softmax(scores / epsilon, dim=1), atol=1e-4):
            raise ExerciseError("these are softmax(scores / epsilon) per sample: the prototype step is missing, so "
                                "nothing stops most samples from choosing the same prototype. Alternate the two "
                                "normalisations `iterations` times.")
        if not torch.allclose(rows, torch.ones_like(rows), atol=1e-4):
            raise ExerciseError(f"codes sum to {rows.min():.3f} .. {rows.max():.3f} per sample; end each iteration "
                                "with the sample step (each column of Q (K, B) to total 1/B), so every code sums to 1.")
        raise ExerciseError(f"wrong codes at epsilon = {epsilon}, {iterations} iteration(s). Q = exp(scores / epsilon).T, "
                            "divided by its total; then `iterations` times: rows (prototypes) to total 1/K each, columns "
                            "(samples) to total 1/B each; return (Q * B).T.")
    codes = call_exercise("sinkhorn", sinkhorn, scores, 0.05, 50)
    spread = codes.sum(dim=0)
    print(f"sinkhorn: correct. With 50 iterations every prototype holds {spread.min():.2f} .. {spread.max():.2f} of the "
          f"{B} samples (B / K = {B / K:.0f}), though half of them crowd around one direction.")
