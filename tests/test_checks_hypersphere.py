"""The lecture 07 exercise checks: a correct solution passes, the usual mistakes fail with advice."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sslteach.checks import ExerciseError, check_align_uniform_objective, check_alignment_uniformity
from sslteach.hypersphere import align_uniform_loss, alignment, uniformity

pytestmark = pytest.mark.usefixtures("one_thread")


def align_ok(x, y, alpha=2):
    return (x - y).norm(dim=1).pow(alpha).mean()


def uniform_ok(x, t=2):
    return torch.pdist(x).pow(2).mul(-t).exp().mean().log()


def uniform_full_matrix_off_diagonal(x, t=2):
    """All ordered pairs i != j: the same mean as i < j, so also correct."""
    gauss = torch.cdist(x, x).pow(2).mul(-t).exp()
    return gauss[~torch.eye(len(x), dtype=torch.bool)].mean().log()


def scaffold(*args):
    raise NotImplementedError


def test_correct_metrics_pass(capsys):
    check_alignment_uniformity(align_ok, uniform_ok)
    check_alignment_uniformity(alignment, uniformity)  # the package itself
    check_alignment_uniformity(align_ok, uniform_full_matrix_off_diagonal)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("align, uniform, message", [
    (scaffold, uniform_ok, "NotImplementedError"),
    (align_ok, scaffold, "NotImplementedError"),
    (lambda x, y, alpha=2: (x - y).pow(2).sum(1).pow(alpha).mean(), uniform_ok, "squared"),
    (lambda x, y, alpha=2: (x - y).norm(dim=1).pow(alpha).sum(), uniform_ok, "mean"),
    (lambda x, y, alpha=2: (x * y).sum(1).mean(), uniform_ok, "cosine"),
    (lambda x, y, alpha=2: (x - y).norm(dim=1).pow(alpha), uniform_ok, "one number"),
    (align_ok, lambda x, t=2: torch.cdist(x, x).pow(2).mul(-t).exp().mean().log(), "diagonal"),
    (align_ok, lambda x, t=2: torch.pdist(x).pow(2).mul(-t).exp().mean(), "logarithm is missing"),
    (align_ok, lambda x, t=2: torch.pdist(x).mul(-t).exp().mean().log(), "squared"),
    (align_ok, lambda x, t=2: torch.pdist(x).pow(2).mul(-t).exp().sum().log(), "mean"),
    (align_ok, lambda x, t=2: torch.pdist(x).pow(2).mul(-2).exp().mean().log(), "t=0.5"),
])
def test_mistakes_in_the_metrics_are_named(align, uniform, message):
    with pytest.raises(ExerciseError, match=message):
        check_alignment_uniformity(align, uniform)


def objective_ok(z1, z2, uniform_weight):
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    return alignment(x, y) + uniform_weight * (uniformity(x) + uniformity(y)) / 2


def test_correct_objective_passes(capsys):
    check_align_uniform_objective(objective_ok)
    check_align_uniform_objective(align_uniform_loss)
    assert "correct" in capsys.readouterr().out


def raw(z1, z2, w):
    return (z1 - z2).norm(dim=1).pow(2).mean() + w * (uniform_ok(z1) + uniform_ok(z2)) / 2


@pytest.mark.parametrize("objective, message", [
    (scaffold, "NotImplementedError"),
    (raw, "not L2-normalised"),
    (lambda z1, z2, w: alignment(F.normalize(z1, dim=1), F.normalize(z2, dim=1)) + w * uniformity(F.normalize(z1, dim=1)), "first view only"),
    (lambda z1, z2, w: alignment(F.normalize(z1, dim=1), F.normalize(z2, dim=1))
        + w * (uniformity(F.normalize(z1, dim=1)) + uniformity(F.normalize(z2, dim=1))), "average them"),
    (lambda z1, z2, w: w * alignment(F.normalize(z1, dim=1), F.normalize(z2, dim=1))
        + (uniformity(F.normalize(z1, dim=1)) + uniformity(F.normalize(z2, dim=1))) / 2, "belongs to uniformity"),
    (lambda z1, z2, w: objective_ok(z1, z2, w).item(), "no gradient"),
    (lambda z1, z2, w: objective_ok(z1, z2, w).detach(), "no gradient"),
    (lambda z1, z2, w: objective_ok(z1, z2, 1.0), "ignored"),
    (lambda z1, z2, w: objective_ok(z1, z2, w) + 0.1, "expected"),
])
def test_mistakes_in_the_objective_are_named(objective, message):
    with pytest.raises(ExerciseError, match=message):
        check_align_uniform_objective(objective)


def test_a_crash_is_reported_with_the_inputs():
    def crashes(x, y, alpha=2):
        return x @ y  # (40, 6) @ (40, 6): shapes do not match

    with pytest.raises(ExerciseError, match=r"(?s)raised RuntimeError.*called with \(40, 6\)"):
        check_alignment_uniformity(crashes, uniform_ok)
