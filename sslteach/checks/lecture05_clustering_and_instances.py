"""Lecture 05, clustering and instances: the checks of NMI (DeepCluster) and of NPID's memory-bank update."""
from __future__ import annotations

import torch

from ..clustering import normalized_mutual_info
from .common import ExerciseError, call_exercise


def _nmi_variant(a, b, normalisation="arithmetic"):
    """NMI with another normalisation (a usual slip), to recognise it in a student's answer."""
    _, a = torch.unique(a, return_inverse=True)
    _, b = torch.unique(b, return_inverse=True)
    joint = torch.bincount(a * (int(b.max()) + 1) + b, minlength=(int(a.max()) + 1) * (int(b.max()) + 1))
    joint = joint.view(int(a.max()) + 1, -1).double() / len(a)
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mutual = (joint[nz] * (joint[nz] / (pa[:, None] * pb[None])[nz]).log()).sum()
    ha, hb = [-(p[p > 0] * p[p > 0].log()).sum() for p in (pa, pb)]
    scale = {"arithmetic": (ha + hb) / 2, "max": torch.maximum(ha, hb), "min": torch.minimum(ha, hb),
             "none": torch.ones(()), "geometric": (ha * hb).sqrt()}[normalisation]
    return float(mutual / scale)


def check_nmi(nmi) -> None:
    """Check ``nmi(a, b) -> float``: normalised mutual information of two labellings (N,), (N,)."""
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(10, (2000,), generator=generator)
    noisy = torch.where(torch.rand(2000, generator=generator) < 0.6, truth, torch.randint(10, (2000,), generator=generator))
    clusters = noisy * 7 % 23 + 5 * (torch.rand(2000, generator=generator) < 0.3)  # other names, 15 groups
    cases = [
        ("a labelling with itself", truth, truth, 1.0),
        ("a labelling with the same groups under other names", truth, (truth * 3 + 11) % 10 + 100, 1.0),
        ("two independent labellings", truth, torch.randint(10, (2000,), generator=generator), None),
        ("clusters that partly agree with the labels", clusters, truth, None),
    ]
    for description, a, b, exact in cases:
        expected = normalized_mutual_info(a, b) if exact is None else exact
        got = call_exercise("nmi", nmi, a, b)
        got = float(got)
        if abs(got - expected) < 1e-4:
            continue
        if abs(float(call_exercise("nmi", nmi, b, a)) - got) > 1e-6:
            raise ExerciseError(f"nmi(a, b) = {got:.4f} but nmi(b, a) differs: NMI is symmetric. Check that the "
                                "joint table and both marginals are built the same way.")
        for name in ("max", "min", "none", "geometric"):
            if abs(got - _nmi_variant(a, b, name)) < 1e-4:
                advice = {"max": "you divided by max(H(a), H(b))", "min": "you divided by min(H(a), H(b))",
                          "none": "that is the mutual information itself, not normalised",
                          "geometric": "you divided by sqrt(H(a) H(b))"}[name]
                raise ExerciseError(f"for {description} you return {got:.4f}, expected {expected:.4f}: {advice}. The course "
                                    "(and scikit-learn's default) divides I(a; b) by the mean (H(a) + H(b)) / 2.")
        raise ExerciseError(f"for {description} you return {got:.4f}, expected {expected:.4f}. Steps: the joint "
                            "distribution p(i, j) = count of points with a = i and b = j, over N; the marginals are its row "
                            "and column sums; I = sum over p(i, j) > 0 of p(i, j) log(p(i, j) / (p(i) p(j))); divide by the "
                            "mean of the two entropies.")
    print("nmi: correct. 1 for the same grouping under any names, near 0 for independent ones, symmetric.")


def check_update_memory(update_memory) -> None:
    """Check ``update_memory(memory, indices, features, momentum) -> new memory`` (NPID's update)."""
    generator = torch.Generator().manual_seed(0)
    memory = torch.nn.functional.normalize(torch.randn(10, 4, generator=generator), dim=1)
    indices = torch.tensor([7, 2, 5])
    features = torch.nn.functional.normalize(torch.randn(3, 4, generator=generator), dim=1).requires_grad_()
    before = memory.clone()
    result = call_exercise("update_memory", update_memory, memory.clone(), indices, features, 0.5)
    if not torch.is_tensor(result) or tuple(result.shape) != (10, 4):
        shape = tuple(result.shape) if torch.is_tensor(result) else type(result).__name__
        raise ExerciseError(f"update_memory returned {shape}; it should return the whole bank, (10, 4) here.")
    if result.requires_grad:
        raise ExerciseError("the bank now requires a gradient: the memory is not trained by backpropagation. Use "
                            "features.detach() (or torch.no_grad()) before writing them into the bank.")
    others = torch.ones(10, dtype=torch.bool)
    others[indices] = False
    if not torch.allclose(result[others], before[others]):
        raise ExerciseError("rows that were not in the batch changed: only memory[indices] is updated.")
    for momentum in (0.5, 0.8):
        result = call_exercise("update_memory", update_memory, before.clone(), indices, features, momentum)
        mixed = momentum * before[indices] + (1 - momentum) * features.detach()
        expected = torch.nn.functional.normalize(mixed, dim=1)
        if torch.allclose(result[indices], expected, atol=1e-5):
            continue
        if torch.allclose(result[indices], mixed, atol=1e-5):
            raise ExerciseError("the updated rows are not unit vectors: normalise them again after mixing "
                                "(F.normalize(..., dim=1)), or the dot products stop being cosine similarities.")
        swapped = torch.nn.functional.normalize((1 - momentum) * before[indices] + momentum * features.detach(), dim=1)
        if torch.allclose(result[indices], swapped, atol=1e-5):
            raise ExerciseError(f"with momentum {momentum} the OLD entry should keep weight {momentum} and the new feature "
                                f"{1 - momentum:.1f}; you have them the other way round.")
        raise ExerciseError(f"with momentum {momentum} the updated rows differ from normalise({momentum} v + "
                            f"{1 - momentum:.1f} f).")
    print("update_memory: correct. Only the batch's rows move, towards the new features, and stay unit vectors.")
