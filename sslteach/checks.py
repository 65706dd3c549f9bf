"""Automatic checks for the lecture exercises.

Each check runs the student's function on small inputs, compares it with the package's own
implementation, and raises ``ExerciseError`` with a message that says what is wrong and how to
look for it, instead of a bare assertion. When all is well it prints one line.
"""
from __future__ import annotations

import torch

from .colorization import ab_gamut_bins, annealed_mean, soft_encode
from .evaluate import knn_predict
from .context import NEIGHBOUR_CELLS, NEIGHBOUR_NAMES, project_out_green_magenta
from .jigsaw import hamming_distances
from .rotation import rotate_batch


class ExerciseError(AssertionError):
    """Raised by a check; its message is meant for the student."""


def check_rotate_all(rotate_all) -> None:
    """Check an exercise implementation of ``rotate_all(images) -> (rotated, labels)``."""
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    try:
        result = rotate_all(images)
    except NotImplementedError:
        raise ExerciseError("rotate_all still raises NotImplementedError: replace the scaffold with your code.") from None
    except Exception as error:
        raise ExerciseError(
            f"rotate_all raised {type(error).__name__}: {error}\nIt was called on a (2, 3, 4, 4) uint8 batch. "
            "Rotate the spatial dimensions (H, W) = dims (2, 3); the channel dimension stays where it is."
        ) from None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ExerciseError("rotate_all should return two things: (rotated, labels).")
    rotated, labels = result
    expected, expected_labels = rotate_batch(images)
    if tuple(rotated.shape) != tuple(expected.shape):
        raise ExerciseError(
            f"rotated has shape {tuple(rotated.shape)}; for B = 2 images of 3x4x4 it should be {tuple(expected.shape)}: "
            "all four rotations of every image, stacked along the batch dimension (torch.cat)."
        )
    if labels.dtype != torch.int64 or labels.tolist() != expected_labels.tolist():
        raise ExerciseError(
            f"labels are {labels.tolist()}; expected {expected_labels.tolist()} (int64): the first B rows are the "
            "unrotated images (label 0), then the B images turned once (label 1), and so on."
        )
    for k in range(4):
        B = len(images)
        if not torch.equal(rotated[k * B:(k + 1) * B], expected[k * B:(k + 1) * B]):
            if k and torch.equal(rotated[k * B:(k + 1) * B], torch.rot90(images, -k, dims=(2, 3))):
                raise ExerciseError(f"rows with label {k} are turned clockwise; the course turns anticlockwise, as torch.rot90(x, k, dims=(2, 3)) does.")
            raise ExerciseError(
                f"rows with label {k} are not the images turned {90 * k} degrees. Rotate the spatial dimensions "
                "(H, W) = dims (2, 3), not the channel dimension."
            )
    print("rotate_all: correct. All four rotations, in the course's order, with the right labels.")


def _call(name: str, function, *args):
    """Run the student's function; turn the scaffold's NotImplementedError and crashes into advice."""
    try:
        return function(*args)
    except NotImplementedError:
        raise ExerciseError(f"{name} still raises NotImplementedError: replace the scaffold with your code.") from None
    except Exception as error:
        shapes = ", ".join(str(tuple(a.shape)) if torch.is_tensor(a) else repr(a) for a in args)
        raise ExerciseError(f"{name} raised {type(error).__name__}: {error}\nIt was called with {shapes}.") from None


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
    Z = _call("soft_targets", soft_targets, ab, bins)
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
        ab = _call("annealed", annealed, logits, bins, temperature)
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


def check_pairwise_hamming(pairwise_hamming) -> None:
    """Check ``pairwise_hamming(permutations) -> (N, N)``: positions at which each pair differs."""
    import time

    generator = torch.Generator().manual_seed(1)
    small = torch.rand(6, 9, generator=generator).argsort(dim=1)  # (6, 9) random permutations
    small[5] = small[0].roll(1)  # a pair that differs everywhere and ...
    small[4, [0, 1]] = small[4, [1, 0]]  # ... rows with swapped tiles
    D = _call("pairwise_hamming", pairwise_hamming, small)
    expected = hamming_distances(small)
    if not torch.is_tensor(D) or tuple(D.shape) != (6, 6):
        shape = tuple(D.shape) if torch.is_tensor(D) else type(D).__name__
        raise ExerciseError(f"the result has shape {shape}; for 6 permutations it should be (6, 6): one distance per pair. "
                            "Compare permutations[:, None, :] with permutations[None, :, :] (broadcasting to (N, N, 9)).")
    if torch.equal(D.long(), 9 - expected):
        raise ExerciseError("you counted the positions where two permutations agree; the Hamming distance counts "
                            "where they differ (use != instead of ==).")
    if D.is_floating_point() and torch.allclose(D * 9, expected.float()):
        raise ExerciseError("you computed the fraction of positions that differ (as scipy's cdist 'hamming' does); "
                            "the paper's distances count them: sum instead of mean.")
    if not torch.equal(D.long(), expected):
        raise ExerciseError(f"wrong distances: got\n{D.long()}\nexpected\n{expected}\nThe diagonal should be 0 and "
                            "each entry between 0 and 9: the number of positions j where the two permutations differ.")
    start = time.perf_counter()
    _call("pairwise_hamming", pairwise_hamming, torch.rand(1000, 9, generator=generator).argsort(dim=1))
    if time.perf_counter() - start > 5:
        raise ExerciseError("correct, but slow on 1000 permutations: avoid Python loops; one broadcast comparison "
                            "and a sum over the last dimension compute all pairs at once.")
    print("pairwise_hamming: correct. All pairs at once, in a fraction of a second.")


def check_project_out_green_magenta(remove_green_magenta) -> None:
    """Check ``remove_green_magenta(images) -> images``: x - (x . v) v with v = (-1, 2, -1) / sqrt(6)."""
    images = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    out = _call("remove_green_magenta", remove_green_magenta, images)
    expected = project_out_green_magenta(images)
    if not torch.is_tensor(out) or tuple(out.shape) != tuple(images.shape):
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ExerciseError(f"the result has shape {shape}; it should keep the images' shape (2, 3, 4, 5). The colour "
                            "axis is dimension 1: the dot product with v sums over it, keep it with keepdim=True.")
    if torch.allclose(out, images):
        raise ExerciseError("the images came back unchanged: subtract each pixel's component along v.")
    grey = images[:, :1].expand(-1, 3, -1, -1)
    v = torch.tensor([-1.0, 2.0, -1.0]) / 6 ** 0.5
    if not torch.allclose(_call("remove_green_magenta", remove_green_magenta, grey), grey, atol=1e-5):
        raise ExerciseError("grey pixels (r = g = b) changed. They have no green-magenta component: is v = (-1, 2, -1) "
                            "(normalised), and do you subtract (x . v) v rather than, say, the green channel?")
    if not torch.allclose(out, expected, atol=1e-5):
        along = torch.einsum("bchw,c->bhw", out, v).abs().max()
        hint = ("some green-magenta component is left (largest |x . v| = %.3f): divide v by its length sqrt(6) "
                "before using it twice, in the dot product and in the subtraction." % along)
        raise ExerciseError(f"not the projection. {hint}")
    print("remove_green_magenta: correct. Greys are untouched, and no pixel keeps a green-magenta component.")


def _knn_variant(train, train_labels, test, num_classes, k, temperature, normalise=True, weighted=True, nearest=True):
    """The kNN vote with one of the usual mistakes switched on, to recognise it in a student's answer."""
    if normalise:
        train, test = torch.nn.functional.normalize(train, dim=1), torch.nn.functional.normalize(test, dim=1)
    similarity = test @ train.T  # (M, N)
    top_sim, top_idx = similarity.topk(k, dim=1, largest=nearest)  # (M, k)
    weights = (top_sim / temperature).exp() if weighted else torch.ones_like(top_sim)
    votes = torch.zeros(len(test), num_classes).scatter_add_(1, train_labels[top_idx], weights)  # (M, C)
    return votes.argmax(dim=1)


def check_knn(knn_vote) -> None:
    """Check ``knn_vote(train_features, train_labels, test_features, num_classes, k, temperature)``."""
    generator = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(5, 16, generator=generator)  # 5 classes in 16 dimensions
    train_labels = torch.arange(200) % 5
    scale = 1 + 4 * torch.rand(200, 1, generator=generator)  # lengths vary: normalising matters
    train = scale * (centres[train_labels] + 6 * torch.randn(200, 16, generator=generator))  # overlapping classes
    test = centres[torch.arange(100) % 5] + 6 * torch.randn(100, 16, generator=generator)
    k, temperature = 20, 0.1
    predicted = _call("knn_vote", knn_vote, train, train_labels, test, 5, k, temperature)
    expected = knn_predict(train, train_labels, test, 5, k, temperature)
    if not torch.is_tensor(predicted) or tuple(predicted.shape) != (100,):
        shape = tuple(predicted.shape) if torch.is_tensor(predicted) else type(predicted).__name__
        raise ExerciseError(f"knn_vote returned {shape}; it should return one predicted class per test feature: (100,).")
    if torch.equal(predicted.long(), expected):
        print("knn_vote: correct. Cosine similarity, the k nearest, votes weighted by exp(s / T).")
        return
    mistakes = [
        (dict(normalise=False), "the features were not L2-normalised: cosine similarity is the dot product of "
                                "F.normalize(x, dim=1) vectors, so long feature vectors do not win every vote."),
        (dict(weighted=False), "every neighbour got one vote; weight each by exp(similarity / temperature)."),
        (dict(nearest=False), "you took the k *least* similar training features; topk(k) with the default "
                              "largest=True on the similarities gives the nearest."),
    ]
    for variant, advice in mistakes:
        if torch.equal(predicted.long(), _knn_variant(train, train_labels, test, 5, k, temperature, **variant)):
            raise ExerciseError(advice)
    raise ExerciseError(f"{int((predicted.long() != expected).sum())} of 100 predictions differ from the weighted "
                        "kNN. Steps: normalise both sets of features, similarity = test @ train.T, the k largest per "
                        "row, weights exp(s / T), add each weight to its neighbour's class, take the argmax.")


def check_neighbour_offsets(neighbour_offsets) -> None:
    """Check ``neighbour_offsets(labels) -> (B, 2)``: (row, column) steps from the centre cell."""
    labels = torch.tensor([7, 0, 3, 4, 1, 6, 2, 5])
    offsets = _call("neighbour_offsets", neighbour_offsets, labels)
    cells = torch.tensor(NEIGHBOUR_CELLS)[labels]
    expected = torch.stack([cells // 3 - 1, cells % 3 - 1], dim=1)  # (8, 2)
    if not torch.is_tensor(offsets) or tuple(offsets.shape) != (8, 2):
        shape = tuple(offsets.shape) if torch.is_tensor(offsets) else type(offsets).__name__
        raise ExerciseError(f"the result has shape {shape}; for 8 labels it should be (8, 2): a (row, column) "
                            "offset per label. torch.stack([rows, columns], dim=1) builds it.")
    offsets = offsets.long()
    for got, want, label in zip(offsets.tolist(), expected.tolist(), labels.tolist()):
        if got == want:
            continue
        if got == want[::-1]:
            raise ExerciseError(f"label {label} ({NEIGHBOUR_NAMES[label]}) gave {tuple(got)}: rows and columns are "
                                "swapped. The first number is the row offset (-1 is up), the second the column (-1 is left).")
        raise ExerciseError(f"label {label} ({NEIGHBOUR_NAMES[label]}) gave {tuple(got)}, expected {tuple(want)}. Labels "
                            "number the 8 neighbours in raster order with the centre skipped, so labels 4-7 are cells 5-8: "
                            "cell = label + (label >= 4), then row, column = cell // 3, cell % 3, minus 1 each.")
    print("neighbour_offsets: correct. Every label points the right way from the centre.")


# ----------------------------------------------------------------------------- lecture 05


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
    from .clustering import normalized_mutual_info

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
        got = _call("nmi", nmi, a, b)
        got = float(got)
        if abs(got - expected) < 1e-4:
            continue
        if abs(float(_call("nmi", nmi, b, a)) - got) > 1e-6:
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
    result = _call("update_memory", update_memory, memory.clone(), indices, features, 0.5)
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
        result = _call("update_memory", update_memory, before.clone(), indices, features, momentum)
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


# ----------------------------------------------------------------------------- lecture 06


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
    from .contrastive import nt_xent

    got = _call(name, function, z1, z2, temperature)
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
    loss = _call("nt_xent_loop", nt_xent_loop, a, b, 0.5)
    if not loss.requires_grad:
        raise ExerciseError("the loss has no gradient: compute it with torch operations on the tensors (no .item(), "
                            "float() or NumPy in between), so that backpropagation can reach the encoder.")
    one = torch.ones(1, 5, dtype=torch.float64)
    collapsed = _call("nt_xent_loop", nt_xent_loop, one.expand(3, 5), 2 * one.expand(3, 5), 0.5)
    print(f"nt_xent_loop: correct. It matches NT-Xent, has a gradient, and a collapsed batch of B = 3 gives "
          f"{float(collapsed):.4f} = log(2B - 1).")


def check_nt_xent(nt_xent_vectorised) -> None:
    """Check the vectorised ``nt_xent_vectorised(z1, z2, temperature)``: values, gradient and speed."""
    import time

    from .contrastive import nt_xent

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
        _call("nt_xent_vectorised", nt_xent_vectorised, big1, big2, 0.2)
    seconds = time.perf_counter() - start
    if seconds > 0.5:
        raise ExerciseError(f"correct, but {seconds:.1f} s for B = 256: replace the Python loops by one (2B, 2B) "
                            "similarity matrix, z @ z.T, and F.cross_entropy with the partners as targets.")
    print("nt_xent_vectorised: correct. The same value and gradient as the loop, and fast.")


def check_sinkhorn(sinkhorn) -> None:
    """Check ``sinkhorn(scores, epsilon, iterations) -> codes (B, K)`` against ``swav.sinkhorn_knopp``."""
    from .swav import sinkhorn_knopp

    generator = torch.Generator().manual_seed(0)
    F = torch.nn.functional
    z = F.normalize(torch.randn(24, 6, generator=generator), dim=1)
    z[:12] = F.normalize(z[:12] + 2 * z[0], dim=1)  # half the batch crowds around one direction
    prototypes = F.normalize(torch.randn(8, 6, generator=generator), dim=1)
    scores = z @ prototypes.T  # (B, K) = (24, 8), cosine similarities
    B, K = scores.shape
    for epsilon, iterations in [(0.05, 3), (0.5, 1), (0.1, 20)]:
        codes = _call("sinkhorn", sinkhorn, scores, epsilon, iterations)
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
    codes = _call("sinkhorn", sinkhorn, scores, 0.05, 50)
    spread = codes.sum(dim=0)
    print(f"sinkhorn: correct. With 50 iterations every prototype holds {spread.min():.2f} .. {spread.max():.2f} of the "
          f"{B} samples (B / K = {B / K:.0f}), though half of them crowd around one direction.")


# --- lecture 07: alignment and uniformity ---------------------------------------------------------

def _unit_rows(*shape, seed: int = 0) -> torch.Tensor:
    """Random L2-normalised rows (B, D)."""
    return torch.nn.functional.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=1)


def _scalar(name: str, value) -> float:
    """The student's result as a float, or advice if it is not one number."""
    if torch.is_tensor(value) and value.numel() == 1:
        return value.item()
    if isinstance(value, (int, float)):
        return float(value)
    shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
    raise ExerciseError(f"{name} returned {shape}; it should return one number (a scalar tensor): the mean over "
                        "all pairs, not one value per pair.")


def check_alignment_uniformity(align_loss, uniform_loss) -> None:
    """Check ``align_loss(x, y, alpha=2)`` and ``uniform_loss(x, t=2)`` against Wang & Isola's eqs. 4 and 5."""
    from .hypersphere import alignment, uniformity

    x, y = _unit_rows(40, 6, seed=0), _unit_rows(40, 6, seed=1)
    y = torch.nn.functional.normalize(x + 0.8 * y, dim=1)  # positive pairs: close, not identical
    for alpha in (2, 1):
        got, want = _scalar("align_loss", _call("align_loss", align_loss, x, y, alpha)), alignment(x, y, alpha).item()
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
        got, want = _scalar("uniform_loss", _call("uniform_loss", uniform_loss, x, t)), uniformity(x, t).item()
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
    value = _scalar("uniform_loss", _call("uniform_loss", uniform_loss, collapsed, 2))
    if abs(value) > 1e-4:
        raise ExerciseError(f"for ten identical points uniform_loss gives {value:.4f}; it should give 0 (every "
                            "distance is 0, exp(0) = 1, log 1 = 0).")
    print("align_loss and uniform_loss: correct. Both match the paper at several alpha and t, and collapse gives uniformity 0.")


def check_align_uniform_objective(align_uniform) -> None:
    """Check ``align_uniform(z1, z2, uniform_weight)``: the paper's training loss on raw embeddings."""
    from .hypersphere import align_uniform_loss

    generator = torch.Generator().manual_seed(2)
    z1 = 3 * torch.randn(32, 4, generator=generator)  # raw network outputs: not normalised
    z2 = z1 + 2 * torch.randn(32, 4, generator=generator)
    for weight in (1.0, 0.3):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        result = _call("align_uniform", align_uniform, a, b, weight)
        got, want = _scalar("align_uniform", result), align_uniform_loss(z1, z2, weight).item()
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


def _log_gauss(x: torch.Tensor, t: float = 2) -> torch.Tensor:
    """log E exp(-t ||x_i - x_j||^2) over pairs i < j, without the unit-norm check (to recognise mistakes)."""
    return torch.pdist(x).pow(2).mul(-t).exp().mean().log()


# ----------------------------------------------------------------------------- lecture 08


def check_balanced_subset(balanced_subset) -> None:
    """Check ``balanced_subset(labels, per_class, num_classes, generator) -> indices``: per_class
    images of every class (all of a smaller class), at random, without repeats."""
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 3)[torch.randperm(83, generator=torch.Generator().manual_seed(0))]
    chosen = _call("balanced_subset", balanced_subset, labels, 5, 3, torch.Generator().manual_seed(0))
    if not torch.is_tensor(chosen) or chosen.ndim != 1 or chosen.dtype not in (torch.int64, torch.int32):
        what = f"{chosen.dtype} {tuple(chosen.shape)}" if torch.is_tensor(chosen) else type(chosen).__name__
        raise ExerciseError(f"the result is {what}; it should be a 1-D tensor of integer indices into labels.")
    if chosen.numel() and (chosen.min() < 0 or chosen.max() >= len(labels)):
        raise ExerciseError("some indices are outside range(len(labels)); return positions of images, not labels.")
    if len(chosen) > 3 and chosen.max() < 3:
        raise ExerciseError("every value is 0, 1 or 2: those look like class labels. Return the positions of the "
                            "chosen images in labels (indices), so that labels[result] gives their classes.")
    if len(chosen.unique()) != len(chosen):
        raise ExerciseError("an image was chosen twice: draw without replacement (a random permutation of a class's "
                            "positions, then its first per_class), not with torch.randint.")
    counts = torch.bincount(labels[chosen.long()], minlength=3).tolist()
    if counts != [5, 5, 3]:
        hint = (" Class 2 has only 3 images: give all of them instead of failing or repeating."
                if counts[:2] == [5, 5] else "")
        raise ExerciseError(f"images per class: {counts}, expected [5, 5, 3] for per_class = 5 and classes of 50, 30 "
                            f"and 3 images.{hint}")
    hits = torch.zeros(len(labels))
    for seed in range(200):
        hits[_call("balanced_subset", balanced_subset, labels, 1, 3, torch.Generator().manual_seed(seed)).long()] += 1
    class0 = hits[labels == 0]
    if (class0 == 0).sum() > 25:
        raise ExerciseError(f"over 200 seeds only {(class0 > 0).sum():.0f} of class 0's 50 images were ever chosen: the "
                            "draw is not random (or ignores the generator). Use torch.randperm(n, generator=generator).")
    again = _call("balanced_subset", balanced_subset, labels, 5, 3, torch.Generator().manual_seed(0))
    if not torch.equal(torch.as_tensor(again).sort().values, chosen.sort().values):
        raise ExerciseError("the same generator seed gave two different subsets: draw every random number from "
                            "`generator`, so a rerun of the lecture draws the same images.")
    print("balanced_subset: correct. Every class gets its share, at random, without repeats.")


def check_gap_closed(gap_closed) -> None:
    """Check ``gap_closed(method, random_init, supervised)``: 0 at random init, 1 at supervised."""
    cases = [((0.55, 0.5, 0.7), 0.25), ((0.5, 0.5, 0.7), 0.0), ((0.7, 0.5, 0.7), 1.0), ((0.4, 0.5, 0.7), -0.5)]
    for args, want in cases:
        got = _scalar("gap_closed", _call("gap_closed", gap_closed, *args))
        if abs(got - want) > 1e-6:
            if abs(got - args[0] / args[2]) < 1e-6:
                hint = " That is method / supervised: measure from the random-init encoder, not from zero."
            elif abs(got - (1 - want)) < 1e-6:
                hint = " That is the gap still open: 1 minus the share closed."
            else:
                hint = " Divide how far the method is above random init by how far supervised is."
            raise ExerciseError(f"gap_closed{args} gave {got:.3f}, expected {want:.3f}.{hint}")
    print("gap_closed: correct. 0 means no better than random weights, 1 means as good as labels.")
