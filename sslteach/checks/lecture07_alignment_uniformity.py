"""Lecture 07, alignment and uniformity: the checks of Wang & Isola's two losses and of their training objective."""
from __future__ import annotations

import torch

from ..hypersphere import align_uniform_loss, alignment, uniformity
from .common import ExerciseError, as_scalar, call_exercise


def _unit_rows(*shape, seed: int = 0) -> torch.Tensor:
    """Random L2-normalised rows (B, D)."""
    return torch.nn.functional.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=1)


def _log_gauss(x: torch.Tensor, t: float = 2) -> torch.Tensor:
    """log E exp(-t ||x_i - x_j||^2) over pairs i < j, without the unit-norm check (to recognise mistakes)."""
    return torch.pdist(x).pow(2).mul(-t).exp().mean().log()


def check_alignment_uniformity(align_loss, uniform_loss) -> None:
    """Check ``align_loss(x, y, alpha=2)`` and ``uniform_loss(x, t=2)`` against Wang & Isola's eqs. 4 and 5."""
    x, y = _unit_rows(40, 6, seed=0), _unit_rows(40, 6, seed=1)
    y = torch.nn.functional.normalize(x + 0.8 * y, dim=1)  # positive pairs: close, not identical
    for alpha in (2, 1):
        got, want = as_scalar("align_loss", call_exercise("align_loss", align_loss, x, y, alpha)), alignment(x, y, alpha).item()
        if abs(got - want) <= 1e-4 * max(1, abs(want)):
            continue
        distance = (x - y).norm(dim=1)
        if abs(got - distance.pow(2 * alpha).mean().item()) < 1e-4:
            raise ExerciseError("you raised the *squared* distance to the power alpha. Alignment is "
                                "E ||f(x) - f(y)||_2^alpha: the Euclidean norm (not its square) to the power alpha.")
        if abs(got - distance.pow(alpha).sum().item()) < 1e-3:
            raise ExerciseError("you summed over the pairs; alignment is the mean (an expectation), so it does not grow "
                                "with the batch.")
        if abs(got - (x * y).sum(dim=1).mean().item()) < 1e-4:
            raise ExerciseError("that is the mean cosine similarity; alignment is a distance: ||x_i - y_i|| to the "
                                "power alpha, averaged over the pairs.")
        raise ExerciseError(f"align_loss(x, y, alpha={alpha}) = {got:.4f}, expected {want:.4f}. Compute the distance of "
                            "each pair, (x - y).norm(dim=1), raise it to the power alpha and average.")
    for t in (2, 0.5):
        got, want = as_scalar("uniform_loss", call_exercise("uniform_loss", uniform_loss, x, t)), uniformity(x, t).item()
        if abs(got - want) <= 1e-4 * max(1, abs(want)):
            continue
        squared = torch.cdist(x, x).pow(2)  # (N, N), zero diagonal
        gauss = squared.mul(-t).exp()
        if abs(got - gauss.mean().log().item()) < 1e-4:
            raise ExerciseError("you included the pairs of a point with itself (the diagonal, distance 0, weight 1): "
                                "they pull the value towards 0. Average over pairs i < j only: torch.pdist gives "
                                "exactly those distances.")
        off_diagonal = gauss[~torch.eye(len(x), dtype=torch.bool)]
        if abs(got - off_diagonal.mean().item()) < 1e-4 or abs(got - torch.pdist(x).pow(2).mul(-t).exp().mean().item()) < 1e-4:
            raise ExerciseError("the logarithm is missing: uniformity is log E exp(-t ||x_i - x_j||^2).")
        if abs(got - torch.pdist(x).mul(-t).exp().mean().log().item()) < 1e-4:
            raise ExerciseError("you used the distance; the Gaussian kernel uses the *squared* distance: "
                                "exp(-t ||x_i - x_j||^2).")
        if abs(got - torch.pdist(x).pow(2).mul(-t).exp().sum().log().item()) < 1e-3:
            raise ExerciseError("log of the sum: take the log of the *mean* over the pairs, so that the value does not "
                                "depend on how many points there are.")
        raise ExerciseError(f"uniform_loss(x, t={t}) = {got:.4f}, expected {want:.4f}. Squared distances of all pairs "
                            "i < j, times -t, exp, mean, log.")
    collapsed = torch.nn.functional.normalize(torch.ones(10, 6), dim=1)
    value = as_scalar("uniform_loss", call_exercise("uniform_loss", uniform_loss, collapsed, 2))
    if abs(value) > 1e-4:
        raise ExerciseError(f"for ten identical points uniform_loss gives {value:.4f}; it should give 0 (every "
                            "distance is 0, exp(0) = 1, log 1 = 0).")
    print("align_loss and uniform_loss: correct. Both match the paper at several alpha and t, and collapse gives uniformity 0.")


def check_align_uniform_objective(align_uniform) -> None:
    """Check ``align_uniform(z1, z2, uniform_weight)``: the paper's training loss on raw embeddings."""
    generator = torch.Generator().manual_seed(2)
    z1 = 3 * torch.randn(32, 4, generator=generator)  # raw network outputs: not normalised
    z2 = z1 + 2 * torch.randn(32, 4, generator=generator)
    for weight in (1.0, 0.3):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        result = call_exercise("align_uniform", align_uniform, a, b, weight)
        got, want = as_scalar("align_uniform", result), align_uniform_loss(z1, z2, weight).item()
        if abs(got - want) <= 1e-4 * max(1, abs(want)):
            if not (torch.is_tensor(result) and result.requires_grad):
                raise ExerciseError("the value is right, but it carries no gradient: return the tensor itself (no "
                                    ".item(), no torch.no_grad()), so that loss.backward() can train the network.")
            continue
        n1, n2 = torch.nn.functional.normalize(z1, dim=1), torch.nn.functional.normalize(z2, dim=1)

        def term(x, y, w, which="both"):
            align = (x - y).norm(dim=1).pow(2).mean()
            uniform = {"both": (_log_gauss(x) + _log_gauss(y)) / 2, "first": _log_gauss(x), "sum": _log_gauss(x) + _log_gauss(y)}[which]
            return (align + w * uniform).item()

        if abs(got - term(z1, z2, weight)) < 1e-3 * max(1, abs(got)):
            raise ExerciseError("the embeddings were not L2-normalised: both terms are defined on the unit sphere. "
                                "Start with F.normalize(z1, dim=1) and F.normalize(z2, dim=1).")
        if abs(got - term(n1, n2, weight, "first")) < 1e-4:
            raise ExerciseError("uniformity of the first view only: average the uniformity of both views, "
                                "(uniformity(x) + uniformity(y)) / 2, as the paper's code does.")
        if abs(got - term(n1, n2, weight, "sum")) < 1e-4:
            raise ExerciseError("you added the two views' uniformities; average them (divide by 2), so that the weight "
                                "means the same as in the paper.")
        if weight != 1 and abs(got - ((n1 - n2).norm(dim=1).pow(2).mean() * weight + (_log_gauss(n1) + _log_gauss(n2)) / 2).item()) < 1e-4:
            raise ExerciseError("the weight multiplies the alignment term; it belongs to uniformity: "
                                "alignment + uniform_weight * uniformity.")
        if weight != 1 and abs(got - term(n1, n2, 1.0)) < 1e-4:
            raise ExerciseError(f"right for uniform_weight = 1, but at {weight} the weight is ignored: multiply the "
                                "uniformity term by uniform_weight.")
        raise ExerciseError(f"align_uniform(z1, z2, {weight}) = {got:.4f}, expected {want:.4f}. Normalise both, then "
                            "alignment(x, y) + uniform_weight * (uniformity(x) + uniformity(y)) / 2.")
    print("align_uniform: correct. Normalised first, both views' uniformity averaged, the weight on uniformity.")
