"""Lecture 01, colorization: the checks of the soft-encoded targets and of the annealed mean (Eq. 5)."""
from __future__ import annotations

import torch

from ..colorization import ab_gamut_bins, annealed_mean, soft_encode
from .common import ExerciseError, call_exercise


def _colour_inputs(seed: int = 0):
    """Small test inputs: the real bins and ab values spread over the gamut, (2, 2, 3, 4)."""
    bins = ab_gamut_bins()
    generator = torch.Generator().manual_seed(seed)
    ab = bins[torch.randint(len(bins), (2 * 3 * 4,), generator=generator)]  # (24, 2): real colours
    ab = ab + 4 * torch.randn(ab.shape, generator=generator)  # off the bin centres
    return ab.T.reshape(2, 2, 3, 4).contiguous(), bins  # (B, 2, H, W), (Q, 2)


def check_soft_encode(soft_targets) -> None:
    """Check ``soft_targets(ab, bins) -> Z``: 10 nearest bins, Gaussian weights sigma 5, summing to 1."""
    ab, bins = _colour_inputs()
    Z = call_exercise("soft_targets", soft_targets, ab, bins)
    expected = soft_encode(ab, bins)  # (B, Q, H, W)
    if not torch.is_tensor(Z) or tuple(Z.shape) != tuple(expected.shape):
        shape = tuple(Z.shape) if torch.is_tensor(Z) else type(Z).__name__
        raise ExerciseError(f"Z has shape {shape}; for ab (2, 2, 3, 4) and Q = {len(bins)} bins it should be "
                            f"{tuple(expected.shape)}: one distribution over the Q bins per pixel, Q in dimension 1.")
    Z = Z.float()
    sums = Z.sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ExerciseError(f"each pixel's weights should sum to 1 (they sum to {sums.min():.3f} .. {sums.max():.3f}): "
                            "divide the Gaussian weights by their sum over the 10 neighbours.")
    nonzero = (Z > 0).sum(dim=1)
    if not (nonzero == 10).all():
        raise ExerciseError(f"pixels have {nonzero.min()} .. {nonzero.max()} non-zero weights; keep exactly the 10 "
                            "nearest bins (torch.topk with largest=False on the distances) and give the rest 0.")
    if not torch.equal(Z > 0, expected > 0):
        raise ExerciseError("the non-zero weights are not on the 10 bins nearest to each pixel's colour. Measure the "
                            "Euclidean distance in the ab plane between the pixel and every bin centre.")
    if not torch.allclose(Z, expected, atol=1e-4):
        raise ExerciseError("the right bins, but the weights differ: use exp(-d^2 / (2 sigma^2)) with sigma = 5 and "
                            "d the distance in ab units (so d^2 is the squared distance), then normalise.")
    print("soft_targets: correct. Ten nearest bins, Gaussian weights, one distribution per pixel.")


def check_annealed_mean(annealed) -> None:
    """Check ``annealed(logits, bins, temperature) -> ab`` against Eq. 5 at several temperatures."""
    _, bins = _colour_inputs()
    logits = 3 * torch.randn(2, len(bins), 3, 4, generator=torch.Generator().manual_seed(1))  # (B, Q, H, W)
    for temperature in (1.0, 0.38, 0.05):
        ab = call_exercise("annealed", annealed, logits, bins, temperature)
        expected = annealed_mean(logits, bins, temperature)  # (B, 2, H, W)
        if not torch.is_tensor(ab) or tuple(ab.shape) != tuple(expected.shape):
            shape = tuple(ab.shape) if torch.is_tensor(ab) else type(ab).__name__
            raise ExerciseError(f"the result has shape {shape}; it should be {tuple(expected.shape)}: one (a, b) "
                                "per pixel, in dimension 1.")
        if torch.allclose(ab.float(), expected, atol=1e-3):
            continue
        if temperature != 1.0 and torch.allclose(ab.float(), annealed_mean(logits, bins, 1 / temperature), atol=1e-3):
            raise ExerciseError("you multiplied the logits by T; divide them: f_T(z) = softmax(log z / T).")
        raise ExerciseError(f"wrong at T = {temperature}. Turn the logits into probabilities with softmax(logits / T) "
                            "over the Q bins (dimension 1), then take the expected bin centre: sum_q p_q * bins[q].")
    print("annealed: correct at T = 1 (the mean), 0.38 (the paper) and 0.05 (almost the mode).")
