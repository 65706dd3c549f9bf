"""The course's headline numbers: every method under the readout most papers report, for several
pretraining seeds, and the rule that decides when a difference between two methods is an effect.

    python -m sslteach.headline                          # seed 0 of every method with a checkpoint
    python -m sslteach.headline rotation simclr --seeds 0 1 2

The readout of one frozen encoder (as ``sslteach.evaluate.readout``):

1. the encoder's pooled final features (the vector a downstream task would use) of every
   labelled training image and of the held-out test split;
2. weighted kNN (k = 200, t = 0.1; Wu et al. 2018) and a linear probe fitted on all the labels;
3. linear probes on the same features with 1% and 10% of the labels (class-balanced draws,
   several, averaged): how far a few labels go.

Why not the best stage, as the course table of lecture 08 reads? A probe on an early stage's
2x2-pooled map scores well for *any* network, random weights included, so it hides what
pretraining did to the features a user actually takes away.

One pretraining run is one draw: another seed gives other weights and another accuracy. So a
method is trained with several seeds (``python -m sslteach.train rotation --seed 1``), each seed
is a row (``rotation``, ``rotation-seed1``, ...), and :func:`compare` calls a difference an effect
only when it is larger than twice the combined seed-to-seed spread of the two methods; otherwise
the course says "level within noise".

Rows are stored in ``headline_table.json`` beside the checkpoints, each with the fingerprint of
the weights it measured (``sslteach.transfer.weights_fingerprint``). Only seed 0's checkpoints
ship with the course (5 MB each); the rows of the other seeds ship without them, and the command
in :func:`train_command_for` trains each again.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch

from .augment import to_float
from .data import data_fingerprint
from .evaluate import accuracy, extract_features, knn_predict
from .transfer import (FAMILIES, LABEL_FRACTIONS, label_efficiency, pixel_stages, store_row, stored_row,
                       stored_tables, table_paths, table_settings, weights_fingerprint)

PROTOCOL = {
    "version": 3,
    "features": "pooled final",
    "label_fractions": list(LABEL_FRACTIONS),
    "draws": 3,  # class-balanced draws per fraction below 1
    "seed": 0,
}
"""Everything that decides a row's numbers besides the encoder, the profile and the data."""

TABLE_FILE = "headline_table.json"

BASELINES = ("random-init", "supervised")
REFERENCES = ("supervised-1pct", "supervised-10pct")
"""Label-efficiency references: the supervised baseline from scratch on 1% or 10% of the labels
(``sslteach.baselines.pretrain_supervised_few_labels``); their rows' "classifier" is the number."""
SYLLABUS = ("colorization", "inpainting", "split-brain", "context", "jigsaw", "rotation",
            "deepcluster", "npid", "moco", "pirl", "simclr", "swav")
"""The methods of the syllabus, in the order the lectures teach them (ablations not included)."""

EFFECT_SPREADS = 2
"""A difference is an effect when it is larger than this many combined seed spreads."""

COURSE_GOAL = 0.05
"""The bar the course set its class recipes (issue 16): 5 linear-probe points above random init,
on the mean of three seeds. Most methods do not clear it at the class budget; the lectures say so."""


NOT_CHOSEN = object()
"""``stored_rows`` before it has chosen whose test split to read (a table's data may be None)."""


def row_name(method: str, seed: int) -> str:
    """The row of ``method`` pretrained with ``seed``: named like its checkpoint file."""
    return method if seed == 0 else f"{method}-seed{seed}"


def measure(encoder, train_set, test_set, profile, protocol: dict = PROTOCOL, classifier=None) -> dict:
    """The headline readout of one frozen encoder (``encoder=None``: raw pixels).

    Returns {"knn", "linear_probe", "label_efficiency": {fraction: mean accuracy},
    "label_efficiency_draws": {fraction: [...]}, "train_images", "test_images", "seconds"}, and
    "classifier" when ``classifier`` (the supervised baseline's own network) is given: its test
    accuracy, which the probe on its features should come close to.
    """
    start = time.perf_counter()
    if encoder is None:
        device = train_set.images.device
        features = lambda images: pixel_stages(images, device)[0]  # noqa: E731
    else:
        device = next(encoder.parameters()).device
        features = lambda images: extract_features(encoder, images)  # noqa: E731
    train_f, test_f = features(train_set.images), features(test_set.images)
    train_y, test_y = train_set.labels.to(device), test_set.labels.to(device)
    classes = len(train_set.classes)
    knn = knn_predict(train_f, train_y, test_f, classes, profile.knn_k, profile.knn_temperature)
    efficiency = label_efficiency(train_f, train_y, test_f, test_y, classes,
                                  protocol["label_fractions"], protocol["draws"], protocol["seed"])
    row = {
        "knn": accuracy(knn, test_y),
        "linear_probe": efficiency[max(efficiency)][0],
        "label_efficiency": {str(f): statistics.fmean(v) for f, v in efficiency.items()},
        "label_efficiency_draws": {str(f): v for f, v in efficiency.items()},
        "train_images": len(train_f),
        "test_images": len(test_f),
    }
    if classifier is not None:
        with torch.no_grad():
            predicted = torch.cat([classifier(to_float(batch.to(device))).argmax(1) for batch in test_set.images.split(1024)])
        row["classifier"] = accuracy(predicted, test_y)
    return {**row, "seconds": time.perf_counter() - start}


def load_or_measure(name: str, encoder, train_set, test_set, profile, save: bool = True,
                    protocol: dict = PROTOCOL, classifier=None, extra: dict | None = None) -> dict:
    """A headline row: the stored one if these exact weights were measured with this protocol and
    profile on these data, else measured now and, with ``save``, added to the table in the user's
    data folder (``row["source"]`` is then "evaluated"). ``extra`` (method, seed, ...) is stored
    with a new row."""
    fingerprint = None if encoder is None else weights_fingerprint(encoder.state_dict())
    settings = table_settings(profile, train_set, test_set, protocol)
    row = stored_row(name, fingerprint, settings, file=TABLE_FILE)
    if row is not None:
        return row
    row = {**(extra or {}), **measure(encoder, train_set, test_set, profile, protocol, classifier),
           "fingerprint": fingerprint}
    if save:
        store_row(table_paths(profile.name, TABLE_FILE)[0], settings, name, row)
    return {**row, "data": settings["data"], "source": "evaluated"}


def run_recipe(method: str, checkpoint: dict | None = None) -> dict | None:
    """The recipe a row of ``method`` records, as its table stores it: the one ``checkpoint``
    records (else the recipe of checkpoints that record none), or, without a checkpoint, the
    method's recipe of today; None for what has no recipe (raw pixels)."""
    from .methods import PRETRAINERS, as_stored, stored_recipe, unrecorded_recipe

    if method not in PRETRAINERS:
        return None
    if checkpoint is None:
        return stored_recipe(method)
    return as_stored(checkpoint.get("recipe") or unrecorded_recipe(method))


def is_current(row: dict) -> bool:
    """Whether ``row`` measured its method's recipe of today. A row that records no recipe was
    made before rows recorded one, from a checkpoint that recorded none either: its recipe is
    ``sslteach.methods.unrecorded_recipe``'s (SwAV's rows of before its temperature change are
    not current)."""
    from .methods import as_stored, unrecorded_recipe

    today = run_recipe(row.get("method"))
    if today is None:
        return True
    return row.get("recipe", as_stored(unrecorded_recipe(row["method"]))) == today


def stored_rows(profile_name: str, protocol: dict = PROTOCOL, data: dict | None = None) -> dict:
    """Every stored row measured with ``protocol`` on its method's recipe of today
    (:func:`is_current`): the user's table first (data/checkpoints/), then the shipped one for rows
    the user's does not have. Rows of one test split are never pooled with another's: with
    ``data`` (``sslteach.data.data_fingerprint``) only rows measured on those images count, and
    without it the images of the first table that gives rows. {name: row}, ``row["source"]`` the
    file."""
    rows, chosen = {}, NOT_CHOSEN if data is None else data
    for path, table, measured_on in stored_tables(profile_name, TABLE_FILE, protocol):
        if chosen is not NOT_CHOSEN and measured_on != chosen:
            continue
        mine = {name: {**row, "source": str(path)} for name, row in table["rows"].items()
                if name not in rows and is_current(row)}
        if mine:
            chosen, rows = measured_on, rows | mine
    return rows


def course_rows(encoders: dict, train_set, test_set, profile, classifiers: dict | None = None,
                also=REFERENCES, protocol: dict = PROTOCOL) -> dict:
    """The lectures' headline table: a row for each of ``encoders`` ({method: seed-0 encoder, or
    None for raw pixels}) measured on exactly those weights (stored, or measured now and saved;
    about two minutes a row on a laptop CPU), the stored rows of the other seeds of the same
    methods, and the stored rows of every seed of the methods in ``also`` (the label-efficiency
    references, whose checkpoints do not ship). ``classifiers``: {method: its own classifier}.
    The encoders are taken to be each method's recipe of today (as ``load_or_pretrain`` gives
    them), and their rows record it."""
    rows = {}
    for method, encoder in encoders.items():
        extra = {"method": method, "seed": 0}
        if encoder is not None:
            extra |= {"command": train_command_for(method, 0, profile.name), "recipe": run_recipe(method)}
        rows[method] = load_or_measure(method, encoder, train_set, test_set, profile, protocol=protocol,
                                       classifier=(classifiers or {}).get(method), extra=extra)
    on_these_images = data_fingerprint(train_set, test_set)
    others = {name: row for name, row in stored_rows(profile.name, protocol, on_these_images).items()
              if (row.get("method") in encoders and row.get("seed", 0) != 0) or row.get("method") in also}
    return rows | others


def verdicts(rows: dict, against: str = "random-init", metric: str = "linear_probe") -> dict:
    """:func:`compare` of every method among ``rows`` with ``against``: {method: comparison}."""
    methods = dict.fromkeys(row.get("method", name) for name, row in rows.items())
    base = seed_values(rows, against, metric)
    return {m: compare(seed_values(rows, m, metric), base) for m in methods if m != against}


def metric_value(row: dict, metric: str) -> float:
    """``row``'s accuracy for ``metric``: "linear_probe", "knn", or a label share such as "0.01"."""
    shares = row.get("label_efficiency", {})
    return shares[metric] if metric in shares else row[metric]


def seed_values(rows: dict, method: str, metric: str = "linear_probe") -> list[float]:
    """The accuracies of every seed of ``method`` among ``rows`` ({name: row}), in seed order."""
    mine = [row for name, row in rows.items() if row.get("method", name) == method]
    return [metric_value(row, metric) for row in sorted(mine, key=lambda row: row.get("seed", 0))]


def seed_row(rows: dict, method: str, seed: int = 0) -> dict | None:
    """The row of ``method``'s run with ``seed`` among ``rows`` ({name: row}); None if there is none."""
    return next((row for name, row in rows.items() if row.get("method", name) == method and row.get("seed", 0) == seed),
                None)


def share_values(rows: dict, method: str) -> dict:
    """{label share: [accuracy per seed]} of ``method``'s linear probes, the shares of its rows
    ("0.01", "0.1", "1.0": 1%, 10% and all of the labelled images)."""
    shares = next(row["label_efficiency"] for row in rows.values() if row.get("method") == method)
    return {share: seed_values(rows, method, share) for share in sorted(shares, key=float)}


def summarize(values: list[float]) -> dict:
    """{"mean", "sd" (sample standard deviation; 0 for a single seed), "n"} of per-seed accuracies."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def compare(a: list[float], b: list[float]) -> dict:
    """The course's effect rule for per-seed accuracies ``a`` and ``b`` of two methods.

    The difference of the means is an effect when it is larger than ``EFFECT_SPREADS`` times the
    combined spread sqrt(sd_a^2 + sd_b^2). Returns {"difference", "spread", "effect" (bool),
    "verdict": "above", "below" or "level within noise"}. With fewer than two seeds on a side
    there is no spread to go by, and no verdict: "not enough seeds".
    """
    sa, sb = summarize(a), summarize(b)
    difference = sa["mean"] - sb["mean"]
    spread = math.hypot(sa["sd"], sb["sd"])
    if sa["n"] < 2 or sb["n"] < 2:
        return {"difference": difference, "spread": spread, "effect": False, "verdict": "not enough seeds"}
    effect = abs(difference) > EFFECT_SPREADS * spread
    verdict = ("above" if difference > 0 else "below") if effect else "level within noise"
    return {"difference": difference, "spread": spread, "effect": effect, "verdict": verdict}


def train_command_for(method: str, seed: int, profile_name: str = "class") -> str:
    """The command that trains the checkpoint a row of ``method`` and ``seed`` measured."""
    return f"python -m sslteach.train {method} --profile {profile_name} --seed {seed}"


def print_table(rows: dict, against: str = "random-init", metric: str = "linear_probe") -> None:
    """Mean +- sd over seeds per method (accuracies in %), and the effect rule against ``against``."""
    methods = list(dict.fromkeys(row.get("method", name) for name, row in rows.items()))
    print(f"{'method':<28}{'family':<24}{'seeds':>6}{'probe':>14}{'kNN':>14}{'1% labels':>14}{'10% labels':>14}"
          f"   vs {against} ({metric})")
    base = seed_values(rows, against, metric)
    for method in methods:
        cells = ""
        for m in ("linear_probe", "knn", "0.01", "0.1"):
            s = summarize([100 * v for v in seed_values(rows, method, m)])
            cells += f"{s['mean']:>8.1f} ± {s['sd']:<3.1f}"
        verdict = "" if method == against or not base else compare(seed_values(rows, method, metric), base)["verdict"]
        n = len(seed_values(rows, method))
        print(f"{method:<28}{FAMILIES.get(method, 'other'):<24}{n:>6}{cells}   {verdict}")


def main(argv=None) -> int:
    """The command line; returns the exit status (1 after a one-line ``error: ...``)."""
    from .cli import check_methods, method_parser, run
    from .methods import TRAINABLE

    parser = method_parser("python -m sslteach.headline", __doc__.split("\n\n")[0],
                           "methods to measure (default: every method with a checkpoint)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="pretraining seeds (default: 0)")
    args = parser.parse_args(argv)
    check_methods(parser, args.methods, ["raw pixels", *TRAINABLE])
    return run(lambda: headline_command(args))


def headline_command(args: argparse.Namespace) -> None:
    """What ``main`` does once the arguments are parsed; expected failures raise."""
    from .baselines import supervised_model_from_checkpoint
    from .checkpoint import encoder_from_checkpoint
    from .data import load_cifar10
    from .device import pick_device, seed_everything
    from .methods import TRAINABLE, find_run
    from .profiles import get_profile

    profile = get_profile(args.profile)
    device = pick_device(args.device)
    train_set, test_set = load_cifar10("train"), load_cifar10("test")
    names = args.methods or ["raw pixels", *TRAINABLE]
    rows = {}
    print(f"profile {profile.name}, on {device}; table: {table_paths(profile.name, TABLE_FILE)[0]}", flush=True)
    for method in names:
        for seed in ([0] if method == "raw pixels" else args.seeds):
            seed_everything(0)
            encoder = classifier = None
            if method != "raw pixels":
                checkpoint = find_run(method, profile, seed)
                if checkpoint is None:
                    print(f"{row_name(method, seed)}: no checkpoint; train it first "
                          f"({train_command_for(method, seed, profile.name)}), skipped", flush=True)
                    continue
                encoder = encoder_from_checkpoint(checkpoint, device)
                if method.startswith("supervised"):  # its own classifier's accuracy goes in the row
                    classifier = supervised_model_from_checkpoint(checkpoint, device)
            extra = {"method": method, "seed": seed}
            if method != "raw pixels":
                extra |= {"command": train_command_for(method, seed, profile.name),
                          "recipe": run_recipe(method, checkpoint)}
            name = row_name(method, seed)
            row = load_or_measure(name, encoder, train_set, test_set, profile, classifier=classifier, extra=extra)
            rows[name] = row
            how = "stored" if row["source"] != "evaluated" else f"measured in {row['seconds']:.0f} s"
            print(f"{name}: probe {100 * row['linear_probe']:.1f}, kNN {100 * row['knn']:.1f} ({how})", flush=True)
    if rows:  # with the stored rows of the baseline the verdicts are read against
        print_table({**{n: r for n, r in stored_rows(profile.name).items() if r.get("method") == "random-init"}, **rows})


if __name__ == "__main__":
    sys.exit(main())
