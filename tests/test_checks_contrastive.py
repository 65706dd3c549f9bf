"""Tests of the contrastive lecture's exercise checks (lecture 06): the package's own functions
pass, the usual mistakes fail with a message that names them, and scaffolds are recognised."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sslteach.checks import ExerciseError, check_nt_xent, check_nt_xent_loop, check_sinkhorn
from sslteach.checks.lecture06_contrastive import _nt_xent_variant
from sslteach.contrastive import info_nce_loop, nt_xent
from sslteach.swav import sinkhorn_knopp

pytestmark = pytest.mark.usefixtures("one_thread")


def scaffold(*args):
    raise NotImplementedError


def student(**mistake):
    """An NT-Xent with one of the usual mistakes, written as a student would hand it in."""
    return lambda z1, z2, temperature: _nt_xent_variant(z1, z2, temperature, **mistake)


# --- NT-Xent, the loop and the vectorised version -------------------------------------------------

def test_the_package_passes_both_nt_xent_checks(capsys):
    check_nt_xent_loop(info_nce_loop)
    check_nt_xent_loop(nt_xent)  # the loop's check only asks for the right number
    check_nt_xent(nt_xent)
    out = capsys.readouterr().out
    assert out.count("correct") == 3 and "1.6094 = log(2B - 1)" in out


def test_a_plain_loop_written_from_the_formula_passes():
    def loop(z1, z2, temperature):
        z = torch.cat([z1 / z1.norm(dim=1, keepdim=True), z2 / z2.norm(dim=1, keepdim=True)])
        n = len(z)
        total = 0
        for i in range(n):
            positive = (i + n // 2) % n
            denominator = sum(torch.exp(z[i] @ z[k] / temperature) for k in range(n) if k != i)
            total = total - torch.log(torch.exp(z[i] @ z[positive] / temperature) / denominator)
        return total / n

    check_nt_xent_loop(loop)


@pytest.mark.parametrize("check", [check_nt_xent_loop, check_nt_xent])
@pytest.mark.parametrize("mistake, words", [
    (dict(mask="none"), "exclude k = i"),
    (dict(mask="zero"), "exp(0 / tau) = 1 still counts"),
    (dict(normalise=False), "not L2-normalised"),
    (dict(denominator="negatives only"), "leaves the positive out"),
    (dict(anchors="first view"), "all 2B"),
    (dict(anchors="sum"), "summed"),
])
def test_usual_mistakes_are_named(check, mistake, words):
    with pytest.raises(ExerciseError, match=words.replace("(", r"\(").replace(")", r"\)")):
        check(student(**mistake))


@pytest.mark.parametrize("check", [check_nt_xent_loop, check_nt_xent])
def test_targets_on_the_diagonal_are_explained(check):
    def targets_are_the_anchor(z1, z2, temperature):  # labels torch.arange(2B): the masked diagonal
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        logits = (z @ z.T / temperature).fill_diagonal_(float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(z)))

    with pytest.raises(ExerciseError, match=r"\(i \+ B\) mod 2B"):
        check(targets_are_the_anchor)


def test_temperature_multiplied_and_scaffold_and_crash():
    with pytest.raises(ExerciseError, match="divide them"):
        check_nt_xent(lambda z1, z2, t: nt_xent(z1, z2, 1 / t))
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        check_nt_xent_loop(scaffold)
    with pytest.raises(ExerciseError, match="raised IndexError"):
        check_nt_xent(lambda z1, z2, t: z1[100])
    with pytest.raises(ExerciseError, match="scalar"):
        check_nt_xent(lambda z1, z2, t: F.cross_entropy(z1 @ z2.T, torch.arange(len(z1)), reduction="none"))


def test_a_loss_without_gradient_is_refused():
    with pytest.raises(ExerciseError, match="no gradient"):
        check_nt_xent_loop(lambda z1, z2, t: torch.tensor(nt_xent(z1, z2, t).item(), dtype=z1.dtype))


def test_the_vectorised_check_refuses_a_slow_loop():
    with pytest.raises(ExerciseError, match="Python loops"):
        check_nt_xent(info_nce_loop)


def test_a_wrong_gradient_is_refused():
    def detached_positive(z1, z2, temperature):  # right value, but the positives carry no gradient
        value = nt_xent(z1, z2, temperature)
        return value.detach() + 0 * z1.sum()

    with pytest.raises(ExerciseError, match="gradient is not"):
        check_nt_xent(detached_positive)


# --- Sinkhorn-Knopp -----------------------------------------------------------------------------

def test_the_package_passes_the_sinkhorn_check(capsys):
    check_sinkhorn(sinkhorn_knopp)
    assert "sinkhorn: correct" in capsys.readouterr().out


def test_an_independent_sinkhorn_passes():
    def sinkhorn(scores, epsilon, iterations):
        Q = torch.exp(scores / epsilon).T
        Q = Q / Q.sum()
        K, B = Q.shape
        for _ in range(iterations):
            Q = Q / Q.sum(dim=1, keepdim=True) / K
            Q = Q / Q.sum(dim=0, keepdim=True) / B
        return (Q * B).T

    check_sinkhorn(sinkhorn)


@pytest.mark.parametrize("wrong, words", [
    (lambda s, e, n: sinkhorn_knopp(s, e, n).T, "transpose"),
    (lambda s, e, n: sinkhorn_knopp(s, e, n) / len(s), "multiply by B"),
    (lambda s, e, n: sinkhorn_knopp(s * e, 1.0, n), "divided by epsilon"),
    (lambda s, e, n: F.softmax(s / e, dim=1), "prototype step is missing"),
    (lambda s, e, n: scaffold(), "NotImplementedError"),
])
def test_sinkhorn_mistakes_are_named(wrong, words):
    with pytest.raises(ExerciseError, match=words):
        check_sinkhorn(wrong)


def test_sinkhorn_with_the_steps_in_the_wrong_order_is_refused():
    def samples_first(scores, epsilon, iterations):  # ends with the prototype step: codes do not sum to 1
        Q = torch.exp(scores / epsilon).T
        Q = Q / Q.sum()
        K, B = Q.shape
        for _ in range(iterations):
            Q = Q / Q.sum(dim=0, keepdim=True) / B
            Q = Q / Q.sum(dim=1, keepdim=True) / K
        return (Q * B).T

    with pytest.raises(ExerciseError, match="sample step"):
        check_sinkhorn(samples_first)
