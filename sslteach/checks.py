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
