"""Lecture 09, beyond still images: the check of the skip-gram negative-sampling loss."""
from __future__ import annotations

import math

import torch

from ..text import negative_sampling_loss
from .common import ExerciseError, as_scalar, call_exercise


def check_negative_sampling_loss(loss_fn) -> None:
    """Check ``loss_fn(centre (B, D), context (B, D), noise (B, K, D)) -> scalar`` against Eq. 4 of
    Mikolov et al. (2013b), averaged over the batch."""
    zero = as_scalar("negative_sampling_loss", call_exercise("negative_sampling_loss", loss_fn,
                                                               torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4, 3)))
    if abs(zero - 2 * 5 * math.log(2)) < 1e-5:
        raise ExerciseError(f"with all vectors zero the loss of 2 pairs is {zero:.4f}, twice the expected "
                            f"{5 * math.log(2):.4f}: that is the sum over the batch; take the mean over the B pairs.")
    if abs(zero - 5 * math.log(2)) > 1e-5:
        hint = (" With all vectors zero every sigmoid is 1/2, so the loss is (1 + K) log 2 = 5 log 2 = 3.466 for K = 4:"
                " one term for the true pair and one for each of the K noise words (summed over K, not averaged).")
        raise ExerciseError(f"with all vectors zero the loss is {zero:.4f}, expected {5 * math.log(2):.4f}.{hint}")
    generator = torch.Generator().manual_seed(0)
    centre, context, noise = (torch.randn(shape, generator=generator) for shape in [(6, 5), (6, 5), (6, 3, 5)])
    want = negative_sampling_loss(centre, context, noise).item()
    got = as_scalar("negative_sampling_loss", call_exercise("negative_sampling_loss", loss_fn, centre, context, noise))
    if abs(got - want) > 1e-4:
        flipped = negative_sampling_loss(centre, context, -noise).item()
        summed = 6 * want
        if abs(got - flipped) < 1e-4:
            hint = " The noise words should score low: use log sigma(-v'_k . v_w), with the minus sign."
        elif abs(got - summed) < 1e-3:
            hint = " That is the sum over the batch: take the mean over the B pairs."
        elif abs(got + want) < 1e-4:
            hint = " The sign is flipped: the loss is minus the log-likelihood of Eq. 4."
        else:
            hint = " Score each pair with a dot product over D, each noise word against its own centre word."
        raise ExerciseError(f"on random vectors the loss is {got:.4f}, expected {want:.4f}.{hint}")
    centre.requires_grad_(True)
    loss = call_exercise("negative_sampling_loss", loss_fn, centre, context, noise)
    if not torch.is_tensor(loss) or not loss.requires_grad:
        raise ExerciseError("the loss carries no gradient: compute it with torch operations on the inputs "
                            "(no .item(), no numpy), so that training can follow it.")
    print("negative_sampling_loss: correct. One true pair pulled together, K noise words pushed away.")
