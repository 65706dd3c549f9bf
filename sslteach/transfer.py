"""The closing lecture's measurements: every method of the course under one protocol, how many
labels each one needs, and transfer to labelled tasks it never saw in pretraining.

The protocol, for one frozen encoder:

1. features of every stage, average-pooled to 2x2 and flattened (``extract_block_features``), for
   the profile's labelled training images and the held-out test split;
2. the stage to read is chosen by a linear probe on every fifth labelled *training* image
   (Goyal et al. 2019 probe every layer and report the best; we choose without the test split);
3. at that stage: weighted kNN and linear probe with all the labelled images, and linear probes
   with 1% and 10% of them (class-balanced draws, several of them, averaged); and, for
   comparison with lectures 05 and 06, kNN and linear probe at the last stage, where pretraining
   changes the network most;
4. transfer: the same stage's features of two small labelled datasets that ship with scikit-image
   and scikit-learn (faces against non-faces; handwritten digits), a linear probe fitted on a few
   labelled images per class and tested on the rest, averaged over many random draws.

Raw pixels go through the same steps with a single "stage": the flattened image.

Extracting features of 15,000 images for every method takes longer than a lecture may on a
laptop CPU, so the whole table is computed by a command, like the checkpoints,

    python -m sslteach.transfer --profile class

and stored as ``course_table.json`` beside them. Each row records a fingerprint of the encoder
weights it measured, and the table the profile, the protocol and the fingerprint of the data it was
measured on (``sslteach.data.data_fingerprint``); ``load_or_evaluate`` uses a stored row only for
exactly those weights and this protocol, and evaluates the encoder live otherwise.

Data are the exception that the lecture is allowed to make: the shipped table was measured on the
course's carved split (``sslteach.data.SHIPPED_DATA``), and on a student's data from the official
archive it is still shown, labelled with the data it was measured on (``row["data"]``), rather
than measured again for twenty minutes. ``course_table(..., remeasure=True)`` measures it on the
student's data, with a progress bar and an estimate of the time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .augment import to_float
from .data.fingerprint import SHIPPED_DATA, data_fingerprint, describe_data
from .data.store import DataError, ImageSet, atomic_write
from .evaluate import accuracy, balanced_subset, extract_block_features, fit_linear_probe, knn_predict, probe_data  # noqa: F401 (balanced_subset: lecture 08 uses it from here)

LABEL_FRACTIONS = (0.01, 0.1, 1.0)
"""Shares of the profile's labelled training images given to the probe (label efficiency)."""

PROTOCOL = {
    "version": 2,
    "label_fractions": list(LABEL_FRACTIONS),
    "draws": 3,  # class-balanced draws per fraction below 1
    "stage_weight_decay": 1e-2,  # the stage is chosen with this fixed weight decay (quick)
    "shots": 5,  # labelled images per class in transfer
    "episodes": 20,  # random draws of those
    "seed": 0,
}
"""Everything that decides a row's numbers besides the encoder and the profile."""

TABLE_FILE = "course_table.json"

FAMILIES = {
    "raw pixels": "baseline", "random-init": "baseline", "supervised": "baseline (labels)",
    "supervised-1pct": "baseline (1% of labels)", "supervised-10pct": "baseline (10% of labels)",
    "colorization": "data prediction", "colorization-regression": "data prediction",
    "inpainting": "data prediction", "split-brain": "data prediction",
    "context": "transformation", "context-nogap": "transformation", "context-aberration": "transformation",
    "context-aberration-dropping": "transformation", "jigsaw": "transformation", "jigsaw-10": "transformation",
    "jigsaw-1000": "transformation", "rotation": "transformation",
    "deepcluster": "clustering / instances", "npid": "clustering / instances",
    "simclr": "contrastive", "simclr-no-color": "contrastive", "moco": "contrastive", "pirl": "contrastive",
    "swav": "contrastive",
}
"""The syllabus part each method belongs to (a method the table does not know is "other")."""


def choose_stage(stages: list[torch.Tensor], labels: torch.Tensor, num_classes: int, weight_decay: float = 1e-2) -> int:
    """The stage whose linear probe does best on every fifth image of the training features.

    stages: one (N, D_i) tensor per stage, labels (N,). Ties go to the earlier stage.
    """
    is_val = torch.arange(len(labels), device=labels.device) % 5 == 0
    scores = []
    for features in stages:
        probe = fit_linear_probe(features[~is_val], labels[~is_val], num_classes, weight_decay)
        scores.append(accuracy(probe(features[is_val]).argmax(1), labels[is_val]))
    return max(range(len(scores)), key=scores.__getitem__)


def probe_accuracy(train_features, train_labels, test_features, test_labels, num_classes: int) -> float:
    """Test accuracy of a linear probe (weight decay chosen on its training features)."""
    probe = fit_linear_probe(train_features, train_labels, num_classes)
    return accuracy(probe(test_features).argmax(1), test_labels)


def label_efficiency(train_features, train_labels, test_features, test_labels, num_classes: int,
                     fractions=LABEL_FRACTIONS, draws: int = 3, seed: int = 0) -> dict[float, list[float]]:
    """Linear-probe accuracy with a share of the labelled images: {fraction: [accuracy per draw]}.

    Each draw is class-balanced (``balanced_subset``); a fraction of 1 uses every image once.
    """
    generator = torch.Generator().manual_seed(seed)
    per_class_all = len(train_labels) // num_classes
    results = {}
    for fraction in fractions:
        if fraction >= 1:
            results[fraction] = [probe_accuracy(train_features, train_labels, test_features, test_labels, num_classes)]
            continue
        per_class = max(1, round(fraction * per_class_all))
        results[fraction] = []
        for _ in range(draws):
            chosen = balanced_subset(train_labels, per_class, num_classes, generator)
            results[fraction].append(probe_accuracy(train_features[chosen], train_labels[chosen], test_features, test_labels, num_classes))
    return results


def few_shot_accuracy(features, labels, num_classes: int, shots: int = 5, episodes: int = 20, seed: int = 0) -> list[float]:
    """Linear probe fitted on ``shots`` labelled images per class, tested on all the others, for
    ``episodes`` random draws: one accuracy per episode."""
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(episodes):
        fit = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        fit[balanced_subset(labels, shots, num_classes, generator)] = True
        scores.append(probe_accuracy(features[fit], labels[fit], features[~fit], labels[~fit], num_classes))
    return scores


def _grey_to_rgb32(grey: torch.Tensor) -> torch.Tensor:
    """(N, h, w) float in [0, 1] -> (N, 3, 32, 32) uint8, bilinear: the size the encoders were trained at."""
    x = F.interpolate(grey.float().unsqueeze(1), size=32, mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def lfw_faces() -> ImageSet:
    """scikit-image's LFW subset: 100 faces and 100 non-faces (background crops of the same
    photographs), 25x25 grey, resized to 32x32 RGB. Ships with scikit-image; no download."""
    from skimage.data import lfw_subset

    grey = torch.from_numpy(lfw_subset()).float()
    grey = grey / 255 if grey.max() > 1 else grey  # uint8 in recent scikit-image, float in older ones
    labels = torch.cat([torch.ones(100), torch.zeros(100)]).long()  # the first 100 are faces
    return ImageSet(_grey_to_rgb32(grey), labels, ["non-face", "face"],
                    {"dataset": "lfw_subset", "source": "skimage.data.lfw_subset", "native_size": 25})


def digits() -> ImageSet:
    """scikit-learn's handwritten digits: 1,797 images of 8x8 pixels (ink 0-16), drawn dark on
    white and resized to 32x32 RGB. Ships with scikit-learn; no download."""
    from sklearn.datasets import load_digits

    data = load_digits()
    grey = 1 - torch.from_numpy(data.images).float() / 16  # dark ink on white paper
    return ImageSet(_grey_to_rgb32(grey), torch.from_numpy(data.target).long(), [str(d) for d in range(10)],
                    {"dataset": "digits", "source": "sklearn.datasets.load_digits", "native_size": 8})


def transfer_sets() -> dict[str, ImageSet]:
    """The offline transfer tasks of the closing lecture, by name."""
    return {"faces": lfw_faces(), "digits": digits()}


def pixel_stages(images: torch.Tensor, device=None) -> list[torch.Tensor]:
    """Raw pixels as a one-stage feature list, (N, 3 * H * W), for the same protocol."""
    return [to_float(images.to(device)).flatten(1)]


def evaluate_method(encoder, train_set: ImageSet, test_set: ImageSet, profile, transfer: dict | None = None,
                    protocol: dict = PROTOCOL) -> dict:
    """The closing lecture's protocol for one encoder (``encoder=None``: raw pixels).

    Returns {"stage": 1-based stage read, "knn", "linear_probe" (all labels), "last_stage":
    {"knn", "linear_probe"} (the same at the last stage),
    "label_efficiency": {fraction: mean accuracy}, "label_efficiency_draws": {fraction: [...]},
    "transfer": {name: mean accuracy}, "transfer_episodes": {name: [...]}, "train_images",
    "test_images", "seconds"}. Fractions are keys as strings ("0.01"), as JSON stores them.
    """
    start = time.perf_counter()
    device = next(encoder.parameters()).device if encoder is not None else train_set.images.device
    stages_of = (lambda x: pixel_stages(x, device)) if encoder is None else (lambda x: extract_block_features(encoder, x))
    train_x, train_y, test_x, test_y = probe_data(train_set, test_set, profile)
    train_y, test_y = train_y.to(device), test_y.to(device)
    num_classes = len(train_set.classes)
    train_stages, test_stages = stages_of(train_x), stages_of(test_x)
    stage = choose_stage(train_stages, train_y, num_classes, protocol["stage_weight_decay"])
    train_f, test_f = train_stages[stage], test_stages[stage]
    knn = accuracy(knn_predict(train_f, train_y, test_f, num_classes, profile.knn_k, profile.knn_temperature), test_y)
    efficiency = label_efficiency(train_f, train_y, test_f, test_y, num_classes,
                                  protocol["label_fractions"], protocol["draws"], protocol["seed"])
    if stage == len(train_stages) - 1:
        last = {"knn": knn, "linear_probe": efficiency[max(efficiency)][0]}
    else:
        last = {
            "knn": accuracy(knn_predict(train_stages[-1], train_y, test_stages[-1], num_classes, profile.knn_k, profile.knn_temperature), test_y),
            "linear_probe": probe_accuracy(train_stages[-1], train_y, test_stages[-1], test_y, num_classes),
        }
    episodes = {}
    for name, dataset in (transfer or {}).items():
        features = stages_of(dataset.images)[stage]
        episodes[name] = few_shot_accuracy(features, dataset.labels.to(device), len(dataset.classes),
                                           protocol["shots"], protocol["episodes"], protocol["seed"])
    return {
        "stage": stage + 1,
        "knn": knn,
        "linear_probe": efficiency[max(efficiency)][0],
        "last_stage": last,
        "label_efficiency": {str(f): statistics.fmean(v) for f, v in efficiency.items()},
        "label_efficiency_draws": {str(f): v for f, v in efficiency.items()},
        "transfer": {name: statistics.fmean(v) for name, v in episodes.items()},
        "transfer_episodes": episodes,
        "train_images": len(train_x),
        "test_images": len(test_x),
        "seconds": time.perf_counter() - start,
    }


def gap_closed(method: float, random_init: float, supervised: float) -> float:
    """Share of the gap between the random-init and the supervised encoder that a method closes:
    0 at random init, 1 at supervised, negative below random init."""
    return (method - random_init) / (supervised - random_init)


def weights_fingerprint(state_dict: dict) -> str:
    """SHA-256 of an encoder's tensors (names, shapes, dtypes and bytes, in name order): the same
    weights give the same fingerprint whichever file or device they came from."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_table(path) -> dict:
    """A stored course table ({"profile", "protocol", "rows": {name: row}}), or an empty one."""
    path = Path(path)
    if not path.exists():
        return {"rows": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not a readable course table ({error}); delete it and run "
                         f"`python -m sslteach.transfer` to compute it again") from error


def write_table(path, table: dict) -> None:
    """Store a course table atomically (a reader never sees half a file)."""
    with atomic_write(path) as f:
        f.write((json.dumps(table, indent=1, sort_keys=True) + "\n").encode())


def store_row(path, settings: dict, name: str, row: dict) -> None:
    """Add ``row`` as ``name`` to the table at ``path``, written atomically. A table measured under
    other ``settings`` (profile, protocol, data) is replaced by a new one: rows of different
    settings never share a table."""
    table = read_table(path)
    if any(table.get(k) != v for k, v in settings.items()):
        table = {"rows": {}}
    table.update(settings)
    table["rows"][name] = row
    write_table(path, table)


def table_paths(profile_name: str, file: str = TABLE_FILE) -> list[Path]:
    """Where stored tables are looked for, in order: the user's data folder, then the shipped one.
    ``file``: the course table, or another table kept the same way (``sslteach.headline``)."""
    from .checkpoint import checkpoint_folder, shipped_checkpoints

    paths = [checkpoint_folder(profile_name) / file]
    if os.environ.get("SSLTEACH_RETRAIN", "") in ("", "0"):
        paths.append(shipped_checkpoints() / profile_name / file)
    return paths


def table_settings(profile, train_set, test_set, protocol: dict = PROTOCOL) -> dict:
    """What a stored table must have been measured with, besides each row's weights; "data" is
    the fingerprint of ``train_set`` and ``test_set`` (``sslteach.data.data_fingerprint``)."""
    return {**measured_with(profile, protocol), "data": data_fingerprint(train_set, test_set)}


def measured_with(profile, protocol: dict) -> dict:
    """The settings of a stored table other than its data: the profile (its name and every
    training and evaluation setting) and the protocol."""
    from .profiles import EVALUATION_SETTINGS, TRAINING_SETTINGS

    return {
        "profile": profile.name,
        "profile_settings": profile.settings(("name", *TRAINING_SETTINGS, *EVALUATION_SETTINGS)),
        "protocol": protocol,
    }


def table_data(table: dict, path) -> dict | None:
    """The fingerprint of the data a stored table was measured on. The shipped table predates
    fingerprints (its "data" holds only the dataset and the counts): it was measured on
    ``SHIPPED_DATA``. Such a table of the user's own has unknown data (None)."""
    data = table.get("data")
    if isinstance(data, dict) and "test_split" in data:
        return data
    from .checkpoint import shipped_checkpoints

    return SHIPPED_DATA if Path(path).parent.parent == shipped_checkpoints() else None


def stored_tables(profile_name: str, file: str, protocol: dict, data: dict | None = None):
    """The stored tables of ``file`` measured with ``protocol``, in the order ``table_paths``
    looks (the user's first, then the shipped one); with ``data`` only those measured on it.
    Yields ``(path, table, the fingerprint of the data it was measured on)``."""
    for path in table_paths(profile_name, file):
        table = read_table(path)
        measured_on = table_data(table, path)
        if table.get("protocol") == protocol and (data is None or measured_on == data):
            yield path, table, measured_on


def stored_row(name: str, fingerprint: str | None, settings: dict, other_data: bool = False,
               file: str = TABLE_FILE) -> dict | None:
    """The stored row for ``name`` measured on exactly these weights and ``table_settings``.

    With ``other_data``, a row measured on these weights with these settings but on other data
    counts too (a row on the same data is still preferred). ``row["data"]`` is the fingerprint
    of the data it was measured on, ``row["source"]`` the table it came from.
    """
    found = None
    for path, table, measured_on in stored_tables(settings["profile_settings"]["name"], file, settings["protocol"]):
        row = table["rows"].get(name)
        if row is None or row.get("fingerprint") != fingerprint:
            continue
        if any(table.get(k) != v for k, v in settings.items() if k != "data"):
            continue
        row = {**row, "data": measured_on, "source": str(path)}
        if row["data"] == settings["data"]:
            return row
        if other_data and found is None:
            found = row
    return found


def load_or_evaluate(name: str, encoder, train_set, test_set, profile, transfer: dict, save: bool = True,
                     protocol: dict = PROTOCOL, other_data: bool = False) -> dict:
    """A row of the course table: stored if these exact weights were measured with this protocol
    and profile on these data (``stored_row``; with ``other_data``, on any data), else evaluated
    now (``row["source"] == "evaluated"``) and, with ``save``, added to the table in the user's
    data folder. ``row["data"]`` is the fingerprint of the data it was measured on.
    ``encoder=None``: raw pixels."""
    fingerprint = None if encoder is None else weights_fingerprint(encoder.state_dict())
    settings = table_settings(profile, train_set, test_set, protocol)
    row = stored_row(name, fingerprint, settings, other_data)
    if row is not None:
        return row
    row = {**evaluate_method(encoder, train_set, test_set, profile, transfer, protocol), "fingerprint": fingerprint}
    if save:
        store_row(table_paths(profile.name)[0], settings, name, row)
    return {**row, "data": settings["data"], "source": "evaluated"}


def estimate_seconds(names, profile_name: str) -> float | None:
    """About how long measuring the rows ``names`` takes: the time each took when its stored row
    was measured (the shipped ones on a 2-core CPU), the median of the stored rows for a name
    without one; None when no table is stored."""
    seconds = {}
    for path in reversed(table_paths(profile_name)):  # the user's own table last: its times win
        seconds |= {name: row["seconds"] for name, row in read_table(path)["rows"].items() if "seconds" in row}
    if not seconds:
        return None
    typical = statistics.median(seconds.values())
    return sum(seconds.get(name, typical) for name in names)


def course_table(encoders: dict, train_set, test_set, profile, transfer: dict, remeasure: bool = False,
                 save: bool = True, protocol: dict = PROTOCOL, progress: bool = True) -> dict:
    """The course table: {name: row} for each of ``encoders`` ({name: encoder, or None for raw
    pixels}), in their order.

    A row stored for the same weights and settings is used, on these data or, unless
    ``remeasure``, on other data (the shipped table was measured on the course's carved split;
    ``row["data"]`` says which). The others are measured now on ``train_set`` and ``test_set``,
    after a line that says how many and about how long (:func:`estimate_seconds`), under a
    progress bar.
    """
    rows, missing = {}, []
    for name, encoder in encoders.items():
        fingerprint = None if encoder is None else weights_fingerprint(encoder.state_dict())
        row = stored_row(name, fingerprint, table_settings(profile, train_set, test_set, protocol), not remeasure)
        if row is None:
            missing.append(name)
        else:
            rows[name] = row
    if missing:
        from tqdm.auto import tqdm

        estimate = estimate_seconds(missing, profile.name)
        if estimate is None:
            about = ""
        else:
            about = f"{estimate:.0f} seconds" if estimate < 90 else f"{estimate / 60:.0f} minutes"
            about = f": about {about}, going by the times of the stored rows"
        print(f"measuring {len(missing)} of {len(encoders)} rows on your data{about}", flush=True)
        for name in tqdm(missing, desc="rows measured", unit="row", disable=not progress):
            rows[name] = load_or_evaluate(name, encoders[name], train_set, test_set, profile, transfer, save, protocol)
    return {name: rows[name] for name in encoders}


def describe_table_data(rows: dict, data: dict) -> str:
    """Lines that label a table with the data its rows were measured on (``row["data"]``), and
    ``data``, the fingerprint of the images in use, when they are not the same."""
    groups = {}  # one entry per data set, in the order the rows first use it
    for name, row in rows.items():
        groups.setdefault(json.dumps(row.get("data"), sort_keys=True), []).append(name)
    lines = []
    for key, names in groups.items():
        measured = json.loads(key)
        who = "every row" if len(groups) == 1 else ", ".join(names)
        lines.append(f"{who}: measured on {'your data, ' if measured == data else ''}{describe_data(measured)}")
    if any(json.loads(key) != data for key in groups):
        lines.append(f"your data: {describe_data(data)}")
    if len(groups) > 1:
        lines.append("rows measured on different test images are not exactly comparable")
    return "\n".join(lines)


def print_course_table(rows: dict, fractions=LABEL_FRACTIONS, labelled: int | None = None) -> None:
    """The course table as text: one line per row of ``rows`` ({name: row}), accuracies in %."""
    names = list(fractions)
    heads = [f"{f:.0%} labels" if labelled is None else f"{round(f * labelled):,} labels" for f in names]
    transfers = sorted({t for row in rows.values() for t in row["transfer"]})
    print(f"{'':<52}{'last stage':>14}{'|':>3}{'best stage (chosen on training images)':^{8 + 7 + 13 * len(names)}}")
    print(f"{'method':<28}{'family':<24}{'kNN':>7}{'probe':>7}{'|':>3}{'stage':>6}{'kNN':>7}" + "".join(f"{h:>13}" for h in heads)
          + "".join(f"{t + ' 5-shot':>15}" for t in transfers))
    for name, row in rows.items():
        cells = "".join(f"{100 * row['label_efficiency'][str(f)]:>13.1f}" for f in names)
        cells += "".join(f"{100 * row['transfer'][t]:>15.1f}" for t in transfers)
        last = f"{100 * row['last_stage']['knn']:>7.1f}{100 * row['last_stage']['linear_probe']:>7.1f}{'|':>3}"
        print(f"{name:<28}{FAMILIES.get(name, 'other'):<24}{last}{row['stage']:>6}{100 * row['knn']:>7.1f}" + cells)


def main(argv=None) -> int:
    """The command line; returns the exit status (1 after a one-line ``error: ...``)."""
    from .cli import check_methods, method_parser, run
    from .methods import METHODS

    parser = method_parser("python -m sslteach.transfer", __doc__.split("\n\n")[0],
                           "methods to evaluate (default: raw pixels and every method with a checkpoint)")
    args = parser.parse_args(argv)
    check_methods(parser, args.methods, ["raw pixels", *METHODS])
    return run(lambda: transfer_command(args))


def transfer_command(args: argparse.Namespace) -> None:
    """What ``main`` does once the arguments are parsed; expected failures raise."""
    from .data import load_cifar10
    from .device import pick_device, seed_everything
    from .profiles import get_profile
    from .checkpoint import encoder_from_checkpoint
    from .methods import METHODS, find_run

    profile = get_profile(args.profile)
    device = pick_device(args.device)
    train_set, test_set = load_cifar10("train"), load_cifar10("test")  # batches go to the device as they are used
    sets = transfer_sets()
    names = args.methods or ["raw pixels", *METHODS]
    print(f"{len(names)} rows, profile {profile.name}, on {device}; table: {table_paths(profile.name)[0]}", flush=True)
    for name in names:
        seed_everything(0)
        if name == "raw pixels":
            encoder = None
        else:
            checkpoint = find_run(name, profile)
            if checkpoint is None:
                train = f"python -m sslteach.train {name} --profile {profile.name}"
                print(f"{name}: no checkpoint of this profile; train it first ({train}), skipped")
                continue
            encoder = encoder_from_checkpoint(checkpoint, device)
        row = load_or_evaluate(name, encoder, train_set, test_set, profile, sets)
        how = "stored" if row["source"] != "evaluated" else f"evaluated in {row['seconds']:.0f} s"
        print(f"{name}: stage {row['stage']}, kNN {100 * row['knn']:.1f}, probe {100 * row['linear_probe']:.1f} ({how})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
