"""Tests of sslteach.hypersphere: the sanity values of Wang & Isola (2020), closed forms, ranges,
reference loops, and the error for unnormalised input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslteach.hypersphere import alignment, check_normalised, uniformity

pytestmark = pytest.mark.usefixtures("one_thread")


def on_sphere(N, D, seed=0):
    """N points uniform on the unit sphere in D dimensions (normalised Gaussians)."""
    return F.normalize(torch.randn(N, D, generator=torch.Generator().manual_seed(seed)), dim=1)


def uniform_sphere_value(D, t=2.0):
    """log E exp(-t |x - y|^2) for x, y independent and uniform on the sphere, by quadrature.

    |x - y|^2 = 2 - 2u with u = x . y, whose density is proportional to (1 - u^2)^((D - 3) / 2);
    substituting u = cos(theta) removes the endpoint singularity of D = 2.
    """
    theta = torch.linspace(0, math.pi, 400_001, dtype=torch.float64)
    density = torch.sin(theta) ** (D - 2)
    values = torch.exp(-2 * t * (1 - torch.cos(theta)))
    return math.log(torch.trapezoid(values * density, theta).item() / torch.trapezoid(density, theta).item())


def test_closed_forms_of_the_uniform_value():
    # D = 2: exp(-2t) I0(2t); D = 3: (1 - exp(-4t)) / (4t).
    i0 = sum((2.0 ** 2) ** m / math.factorial(m) ** 2 for m in range(40))  # I0(4) = sum (4/2)^(2m) / m!^2
    assert uniform_sphere_value(2) == pytest.approx(-4 + math.log(i0), abs=1e-6)
    assert uniform_sphere_value(3) == pytest.approx(math.log((1 - math.exp(-8)) / 8), abs=1e-6)


@pytest.mark.parametrize("D, quoted", [(2, -1.58), (16, -3.51), (128, -3.94)])
def test_uniform_points_give_the_quoted_values(D, quoted):
    expected = uniform_sphere_value(D)
    assert expected == pytest.approx(quoted, abs=0.01)  # METHODS.md's sanity values
    assert uniformity(on_sphere(3000, D)).item() == pytest.approx(expected, abs=0.02)


def test_collapse_gives_uniformity_zero_and_alignment_zero():
    x = F.normalize(torch.ones(50, 8), dim=1)
    assert uniformity(x).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_alignment_range_and_extremes():
    x = on_sphere(200, 5)
    assert alignment(x, -x).item() == pytest.approx(4.0, abs=1e-5)  # antipodal pairs
    value = alignment(x, on_sphere(200, 5, seed=1)).item()
    assert 0 <= value <= 4
    assert value == pytest.approx(2.0, abs=0.2)  # independent points: E |x - y|^2 = 2 - 2 E[x.y] = 2


def test_alignment_and_uniformity_match_reference_loops():
    x, y = on_sphere(12, 3), on_sphere(12, 3, seed=1)
    align = sum((x[i] - y[i]).norm().item() ** 3 for i in range(12)) / 12
    assert alignment(x, y, alpha=3).item() == pytest.approx(align, rel=1e-5)
    pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)]
    mean = sum(math.exp(-1.5 * (x[i] - x[j]).norm().item() ** 2) for i, j in pairs) / len(pairs)
    assert uniformity(x, t=1.5).item() == pytest.approx(math.log(mean), rel=1e-5)


def test_uniformity_is_invariant_to_rotation_and_order():
    x = on_sphere(100, 6)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(3)))
    torch.testing.assert_close(uniformity(x @ rotation), uniformity(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(uniformity(x.flip(0)), uniformity(x))


def test_spread_beats_clumped():
    spread, clumped = on_sphere(500, 3), F.normalize(on_sphere(500, 3) + torch.tensor([3.0, 0, 0]), dim=1)
    assert uniformity(spread) < uniformity(clumped) < 0


@pytest.mark.parametrize("function", [lambda x: uniformity(x), lambda x: alignment(x, x)])
def test_unnormalised_input_is_refused_with_advice(function):
    raw = torch.randn(10, 4) * 7
    with pytest.raises(ValueError, match=r"not L2-normalised.*F\.normalize"):
        function(raw)


def test_check_normalised_shape_and_small_sets():
    with pytest.raises(ValueError, match="matrix"):
        check_normalised(torch.ones(3))
    check_normalised(on_sphere(4, 3))  # passes quietly
    with pytest.raises(ValueError, match="at least two"):
        uniformity(on_sphere(1, 3))
    with pytest.raises(ValueError, match="paired"):
        alignment(on_sphere(3, 3), on_sphere(4, 3))
