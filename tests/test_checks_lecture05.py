"""The exercise checks of lecture 05: a right answer passes, each usual mistake gets its advice."""
import pytest
import torch
import torch.nn.functional as F

from sslteach.checks import ExerciseError, check_nmi, check_update_memory
from sslteach.checks.lecture05_clustering_and_instances import _nmi_variant
from sslteach.clustering import normalized_mutual_info


def test_check_nmi_accepts_the_package_and_names_the_normalisation_slips(capsys):
    check_nmi(normalized_mutual_info)
    assert "correct" in capsys.readouterr().out
    for variant, advice in [("max", "max"), ("none", "not normalised"), ("geometric", "sqrt")]:
        with pytest.raises(ExerciseError, match=advice):
            check_nmi(lambda a, b, v=variant: _nmi_variant(a, b, v))
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        check_nmi(lambda a, b: (_ for _ in ()).throw(NotImplementedError))
    with pytest.raises(ExerciseError, match="expected 1.0000"):  # names matter: not invariant to renaming
        check_nmi(lambda a, b: (a == b).double().mean().item())


def test_the_nmi_variants_agree_with_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randint(7, (500,), generator=generator), torch.randint(4, (500,), generator=generator)
    b = torch.where(torch.rand(500, generator=generator) < 0.5, a % 4, b)
    for ours, theirs in [("arithmetic", "arithmetic"), ("max", "max"), ("min", "min"), ("geometric", "geometric")]:
        expected = sklearn.normalized_mutual_info_score(a.numpy(), b.numpy(), average_method=theirs)
        assert _nmi_variant(a, b, ours) == pytest.approx(expected, abs=1e-9)
    assert normalized_mutual_info(a, b) == pytest.approx(sklearn.normalized_mutual_info_score(a.numpy(), b.numpy()), abs=1e-9)


def right(memory, indices, features, momentum):
    memory = memory.clone()
    memory[indices] = F.normalize(momentum * memory[indices] + (1 - momentum) * features.detach(), dim=1)
    return memory


def test_check_update_memory_accepts_the_update_and_names_each_mistake(capsys):
    check_update_memory(right)
    assert "correct" in capsys.readouterr().out

    def no_normalise(memory, indices, features, momentum):
        memory = memory.clone()
        memory[indices] = momentum * memory[indices] + (1 - momentum) * features.detach()
        return memory

    def swapped(memory, indices, features, momentum):
        return right(memory, indices, features, 1 - momentum) if momentum != 0.5 else right(memory, indices, features, momentum)

    def with_gradient(memory, indices, features, momentum):
        memory = memory.clone()
        memory[indices] = F.normalize(momentum * memory[indices] + (1 - momentum) * features, dim=1)
        return memory

    def every_row(memory, indices, features, momentum):
        return F.normalize(momentum * memory + (1 - momentum) * features.detach().mean(0), dim=1)

    for wrong, advice in [(no_normalise, "unit vectors"), (swapped, "other way round"),
                          (with_gradient, "gradient"), (every_row, "not in the batch")]:
        with pytest.raises(ExerciseError, match=advice):
            check_update_memory(wrong)
