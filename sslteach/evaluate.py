"""Evaluation on frozen features: weighted kNN and a linear probe, plus a command line.

    python -m sslteach.evaluate checkpoints/rotation.pt

prints one JSON line: method, profile, images seen, seconds of pretraining, kNN accuracy,
linear-probe accuracy and which test split was used, read the course's headline way
(:func:`readout`: pooled final features, every labelled training image; ``sslteach.headline``). The encoder is never updated here; only
the probe's own weights are fitted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import torch
import torch.nn.functional as F

from .augment import to_float


@torch.no_grad()
def extract_features(encoder, images: torch.Tensor, block: int | None = None, grid: int = 2, batch_size: int = 1024):
    """Features of ``images`` from a frozen encoder.

    Parameters
    ----------
    encoder : sslteach.encoders.Encoder
        Used in eval mode (BatchNorm uses its running statistics).
    images : (N, 3, H, W) uint8 tensor
        On any device; batches are moved to the encoder's device.
    block : int, optional
        None: the encoder's pooled output (N, D). An index i: the output of stage i, average-pooled
        to a ``grid`` x ``grid`` map and flattened, (N, C_i * grid * grid), so early stages keep
        some layout and every stage gives a vector of manageable size.

    Returns
    -------
    (N, D) float32 tensor on the encoder's device.
    """
    if block is not None:
        return extract_block_features(encoder, images, grid, batch_size)[block]
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for batch in images.split(batch_size):
        x = to_float(batch.to(device)).contiguous(memory_format=torch.channels_last)
        out.append(encoder(x).float())
    return torch.cat(out)


@torch.no_grad()
def extract_block_features(encoder, images: torch.Tensor, grid: int = 2, batch_size: int = 1024) -> list[torch.Tensor]:
    """Features of every stage in one pass: a list of (N, C_i * grid * grid) tensors.

    Same pooling as ``extract_features(..., block=i)``, without running the encoder once per stage.
    """
    encoder.eval()
    device = next(encoder.parameters()).device
    per_batch = []  # per_batch[b][i]: stage i's features of batch b
    for batch in images.split(batch_size):
        x = to_float(batch.to(device)).contiguous(memory_format=torch.channels_last)
        per_batch.append([F.adaptive_avg_pool2d(h, grid).flatten(1).float() for h in encoder.forward_blocks(x)])
    return [torch.cat(stage) for stage in zip(*per_batch)]


@torch.no_grad()
def knn_predict(train_features, train_labels, test_features, num_classes: int, k: int, temperature: float, chunk: int = 1024):
    """Weighted kNN vote (Wu et al. 2018): each of the k nearest training features (cosine
    similarity s) votes for its class with weight exp(s / temperature).

    train_features (N, D), train_labels (N,), test_features (M, D) -> predicted labels (M,).
    """
    train = F.normalize(train_features, dim=1)
    k = min(k, len(train))
    predictions = []
    for query in F.normalize(test_features, dim=1).split(chunk):
        similarity = query @ train.T  # (m, N)
        top_sim, top_idx = similarity.topk(k, dim=1)  # (m, k)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(len(query), num_classes, device=query.device, dtype=weights.dtype)
        votes.scatter_add_(1, train_labels[top_idx], weights)  # (m, C)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def balanced_subset(labels: torch.Tensor, per_class: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``per_class`` images of every class, drawn at random without replacement.

    labels (N,) int64 -> (num_classes * per_class,) int64 indices into labels, sorted. A class
    with fewer than ``per_class`` images gives all it has.
    """
    order = torch.randperm(len(labels), generator=generator).to(labels.device)  # a random order of all images
    one_hot = F.one_hot(labels[order], num_classes)  # (N, C)
    rank = (one_hot.cumsum(dim=0) * one_hot).sum(dim=1) - 1  # (N,) rank of each image within its class
    return order[rank < per_class].sort().values


WEIGHT_DECAYS = (1e-3, 1e-2, 1e-1, 1.0)


def fit_linear_probe(features, labels, num_classes: int, weight_decay: float | None = None, max_iter: int = 50):
    """Multinomial logistic regression on standardised features, fitted by full-batch L-BFGS.

    Minimises mean cross-entropy + weight_decay / 2 * ||W||^2 (the same objective as
    scikit-learn's LogisticRegression with C = 1 / (N * weight_decay)). With ``weight_decay``
    None it is chosen from ``WEIGHT_DECAYS`` on a validation fifth of the training features:
    high-dimensional features from few images overfit without it, and a fixed value would
    favour some encoders over others.

    features (N, D), labels (N,) -> a function mapping (M, D) features to (M, C) logits.
    """
    if weight_decay is None:
        weight_decay = choose_weight_decay(features, labels, num_classes, max_iter)
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / std
    weight = torch.zeros(features.shape[1], num_classes, device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, labels) + weight_decay / 2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    weight, bias = weight.detach(), bias.detach()
    return lambda f: ((f - mean) / std) @ weight + bias


def choose_weight_decay(features, labels, num_classes: int, max_iter: int = 50) -> float:
    """The value of ``WEIGHT_DECAYS`` whose probe does best on every fifth training feature."""
    is_val = torch.arange(len(features), device=features.device) % 5 == 0
    scores = []
    for weight_decay in WEIGHT_DECAYS:
        probe = fit_linear_probe(features[~is_val], labels[~is_val], num_classes, weight_decay, max_iter)
        scores.append(accuracy(probe(features[is_val]).argmax(1), labels[is_val]))
    return WEIGHT_DECAYS[max(range(len(scores)), key=scores.__getitem__)]


def accuracy(predictions, labels) -> float:
    return (predictions == labels).float().mean().item()


def evaluate_features(train_features, train_labels, test_features, test_labels, num_classes: int, k: int, temperature: float):
    """kNN and linear-probe accuracy of one set of features: {"knn": float, "linear_probe": float}."""
    knn = knn_predict(train_features, train_labels, test_features, num_classes, k, temperature)
    probe = fit_linear_probe(train_features, train_labels, num_classes)
    return {
        "knn": accuracy(knn, test_labels),
        "linear_probe": accuracy(probe(test_features).argmax(1), test_labels),
    }


def probe_data(train_set, test_set, profile):
    """The labelled images the protocol uses: the first ``profile.probe_train_images`` of the
    training split and ``profile.test_images`` of the test split (0 = all). The prepared splits
    are stored shuffled, so these prefixes are fair samples of every class."""
    n_train = profile.probe_train_images or len(train_set.images)
    n_test = profile.test_images or len(test_set.images)
    return train_set.images[:n_train], train_set.labels[:n_train], test_set.images[:n_test], test_set.labels[:n_test]


VALIDATION_IMAGES = 5_000
"""Training images held out as the validation split that recipes are tuned on (the last ones
of the prepared training split, which is stored shuffled: a fair sample of every class)."""


def validation_split(train_set, count: int = VALIDATION_IMAGES):
    """(fit, validation): the training split less its last ``count`` images, and those images.

    Tuning a recipe pretrains and fits probes on ``fit`` and compares settings on
    ``validation``; the test split is never looked at while choosing.
    """
    if not 0 < count < len(train_set):
        raise ValueError(f"cannot hold out {count} of {len(train_set)} training images")
    n = len(train_set) - count
    return train_set.subset(torch.arange(n)), train_set.subset(torch.arange(n, len(train_set)))


def readout(encoder, train_set, test_set, profile) -> dict:
    """The course's headline readout of a frozen encoder (the one most SSL papers report).

    The encoder's pooled final features (``extract_features``, block None) of *every* image of
    ``train_set`` with its label, then on ``test_set``: weighted kNN with the profile's k and
    temperature (Wu et al. 2018: k = 200, t = 0.1) and a linear probe fitted on all the labelled
    features (weight decay chosen on a fifth of them). Returns {"knn", "linear_probe",
    "train_images", "test_images", "seconds"}.
    """
    start = time.perf_counter()
    device = next(encoder.parameters()).device
    scores = evaluate_features(
        extract_features(encoder, train_set.images), train_set.labels.to(device),
        extract_features(encoder, test_set.images), test_set.labels.to(device),
        len(train_set.classes), profile.knn_k, profile.knn_temperature,
    )
    return {**scores, "train_images": len(train_set), "test_images": len(test_set),
            "seconds": time.perf_counter() - start}


def evaluate_encoder(encoder, train_set, test_set, profile, block: int | None = None):
    """The course's protocol: frozen features, kNN and linear probe, on the held-out split.

    ``train_set`` and ``test_set`` are ``ImageSet``s; ``block`` as in ``extract_features``.
    Returns {"knn", "linear_probe", "train_images", "test_images"}.
    """
    device = next(encoder.parameters()).device
    train_x, train_y, test_x, test_y = probe_data(train_set, test_set, profile)
    scores = evaluate_features(
        extract_features(encoder, train_x, block), train_y.to(device),
        extract_features(encoder, test_x, block), test_y.to(device),
        len(train_set.classes), profile.knn_k, profile.knn_temperature,
    )
    return {**scores, "train_images": len(train_x), "test_images": len(test_x)}


def evaluate_blocks(encoder, train_set, test_set, profile, stages: int | None = None) -> list[dict]:
    """``evaluate_encoder`` for every stage of the encoder (2x2-pooled maps), one dict per stage,
    with a single pass of the encoder over the images. ``stages``: probe only the first few (a
    colorizer never trains the last stage)."""
    device = next(encoder.parameters()).device
    train_x, train_y, test_x, test_y = probe_data(train_set, test_set, profile)
    return [
        evaluate_features(train_f, train_y.to(device), test_f, test_y.to(device), len(train_set.classes), profile.knn_k, profile.knn_temperature)
        for train_f, test_f in zip(extract_block_features(encoder, train_x)[:stages], extract_block_features(encoder, test_x)[:stages])
    ]


def checkpoint_profile(checkpoint: dict):
    """The profile a checkpoint was trained with, and where it differs from the one its label names.

    The label (``checkpoint["profile"]``) is only a name; the stored ``profile_settings`` say
    what was run. Returns ``(profile, differences)``: the stored settings as a ``Profile``, and
    ``{setting: [stored, named profile's]}`` for each one that differs from the named profile
    (``--steps`` on the command line makes ``steps`` differ, for example); a label that names
    no profile gives ``{"name": [stored name, label]}``.
    """
    from .checkpoint import CheckpointError
    from .profiles import PROFILES, Profile

    label, stored = checkpoint.get("profile"), checkpoint.get("profile_settings")
    named = PROFILES.get(label)
    if stored is None:
        if named is None:
            raise CheckpointError(f"the checkpoint names profile {label!r}, which is unknown, and stores no settings")
        return named, {}  # an older checkpoint: only the label to go by
    try:
        profile = Profile(**stored)
    except TypeError as error:
        raise CheckpointError(f"the checkpoint's profile settings do not fit this version ({error})") from None
    if named is None:
        return profile, {"name": [stored.get("name"), label]}  # the label names no profile
    reference = dataclasses.asdict(named)
    return profile, {k: [v, reference.get(k)] for k, v in stored.items() if v != reference.get(k)}


def main(argv=None) -> int:
    """The command line; returns the exit status (1 after a one-line ``error: ...``)."""
    from .cli import run

    parser = argparse.ArgumentParser(prog="python -m sslteach.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    return run(lambda: evaluate_command(args))


def evaluate_command(args: argparse.Namespace) -> None:
    """What ``main`` does once the arguments are parsed; expected failures raise."""
    from .checkpoint import CheckpointError, encoder_from_checkpoint, load_checkpoint
    from .data import load_cifar10
    from .device import pick_device, seed_everything

    seed_everything(0)
    device = pick_device(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    missing = {"method", "encoder_name", "encoder", "history"} - set(checkpoint)
    if missing:
        raise CheckpointError(f"{args.checkpoint} is not a pretraining checkpoint: no {sorted(missing)}")
    profile, differences = checkpoint_profile(checkpoint)
    if differences:
        changed = ", ".join(f"{k}={v!r} (profile: {ref!r})" for k, (v, ref) in differences.items())
        print(f"note: {args.checkpoint} was trained with settings other than profile "
              f"{checkpoint.get('profile')!r}: {changed}; evaluating with its stored settings", file=sys.stderr)
    encoder = encoder_from_checkpoint(checkpoint, device)
    train_set, test_set = load_cifar10("train"), load_cifar10("test")
    scores = readout(encoder, train_set, test_set, profile)  # the course's headline readout
    history = checkpoint["history"]
    print(json.dumps({
        "method": checkpoint["method"],
        "profile": checkpoint.get("profile"),
        "settings_differ_from_profile": sorted(differences),
        "images_seen": history["images_seen"],
        "seconds": round(history["seconds"], 1),
        "knn_accuracy": round(scores["knn"], 4),
        "linear_probe_accuracy": round(scores["linear_probe"], 4),
        "readout": "pooled final features, every labelled training image",
        "probe_train_images": scores["train_images"],
        "knn_k": profile.knn_k,
        "knn_temperature": profile.knn_temperature,
        "test_images": scores["test_images"],
        "test_split": test_set.provenance.get("test_split", "unknown"),
    }))


if __name__ == "__main__":
    sys.exit(main())
