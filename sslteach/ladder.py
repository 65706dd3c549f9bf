"""The compute ladder: does more pretraining narrow the gap between self-supervision and labels?

    python -m sslteach.ladder supervised rotation simclr --multiples 3 10
    python -m sslteach.ladder all --multiples 3 10 30 100 --device cuda     # on a GPU: minutes

A rung is one method pretrained with its own recipe for ``multiple`` times the profile's steps
(the same warm-up, then the cosine schedule stretched over the longer run), seed 0, then read
with the headline readout (``sslteach.headline.measure``: kNN and linear probe on the pooled
final features). Compute is counted as **images through the encoder**, steps x batch size, the
same for every method at the same rung; the 1x rung is the class checkpoint itself, and its
three seeds' rows in the headline table give the spread.

Each rung's checkpoint is stored in half precision, ``<checkpoints>/<profile>/ladder/<method>-x<k>.pt``
(half the size; the row is measured on the half-precision weights, so the file and the row
agree exactly), and its row goes to ``ladder.json`` beside the checkpoints: method, multiple,
steps, images through the encoder, training seconds and device, how well the pretext task was
solved at the end (``pretext_at_end``), the fingerprint of the weights and the command that made
it. Rows already stored for the same settings and recipe are not trained again.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

from .checkpoint import checkpoint_folder, encoder_from_checkpoint, save_checkpoint
from .headline import PROTOCOL, measure
from .profiles import Profile
from .transfer import store_row, stored_tables, table_paths, table_settings, weights_fingerprint

LADDER_FILE = "ladder.json"
LADDER_METHODS = ("supervised", "rotation", "simclr", "moco", "npid")
"""The methods the issue asks for first: the labelled baseline and four self-supervised methods."""


def rung_profile(profile: Profile, multiple: int) -> Profile:
    """The profile of a rung: ``multiple`` times the steps, everything else the same."""
    return dataclasses.replace(profile, steps=profile.steps * multiple)


def rung_name(method: str, multiple: int) -> str:
    return f"{method}-x{multiple}"


def rung_path(method: str, profile: Profile, multiple: int) -> Path:
    return checkpoint_folder(profile) / "ladder" / f"{rung_name(method, multiple)}.pt"


def half_precision(checkpoint: dict) -> dict:
    """The checkpoint with its encoder's floating-point tensors in float16 (loading casts back)."""
    encoder = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint["encoder"].items()}
    return {**checkpoint, "encoder": encoder, "encoder_dtype": "float16"}


PRETEXT_WINDOW = 20
"""Steps at the end of a run over which :func:`pretext_at_end` averages each training metric."""


def pretext_at_end(history: dict, steps: int, window: int = PRETEXT_WINDOW) -> dict:
    """How well a run solved its pretext task when it stopped: the mean over its last ``window``
    steps of every metric the training history records once per step (loss, accuracy on the
    pretext task, colour error, ...; a per-round metric such as DeepCluster's NMI is left out).
    A rung's row keeps it beside its probe: solving the task better is not learning better
    features, and the ladder can show both."""
    return {name: sum(values[-window:]) / len(values[-window:]) for name, values in history.items()
            if isinstance(values, list) and len(values) == steps and steps > 0}


def ladder_command(method: str, multiple: int, profile_name: str) -> str:
    return f"python -m sslteach.ladder {method} --multiples {multiple} --profile {profile_name}"


def stored_rungs(profile_name: str, data: dict) -> dict:
    """Every stored rung ({name: row}) of its method's current recipe, trained and measured on
    ``data`` (``sslteach.data.data_fingerprint``): the user's ``ladder.json`` first, then the
    shipped one. A rung trained with an earlier recipe is another run and is left out
    (``python -m sslteach.ladder`` trains it again); so is a rung of other images, which the 1x
    points and the seed spread it is drawn beside (the headline table on ``data``) did not see."""
    from .headline import is_current

    rows = {}
    for _, table, _ in stored_tables(profile_name, LADDER_FILE, PROTOCOL, data):
        rows |= {name: row for name, row in table["rows"].items() if name not in rows and is_current(row)}
    return rows


def curves(rungs: dict, head: dict, methods, profile: Profile, at_1x: str = "seed 0") -> tuple[dict, dict]:
    """The ladder as ``table_figures.plot_ladder`` draws it, from stored rows.

    rungs : {name: row} of the ladder (``stored_rungs``); head : the headline rows, whose seed-0
    row of each method is its 1x rung (the class checkpoint itself) and whose seeds give the
    spread there. at_1x : the probe drawn at 1x: "seed 0" (that checkpoint, trained like every
    longer rung: the plot's choice) or "mean" (of the seeds: the headline table's value). Returns
    ({method: [(images through the encoder, linear probe), ...]} in order of compute,
    {method: [linear probe per seed at 1x]}), for the ``methods`` with a headline row.
    """
    from .headline import seed_row, seed_values, summarize

    if at_1x not in ("seed 0", "mean"):
        raise ValueError(f'at_1x={at_1x!r}: the 1x point is "seed 0" or "mean"')
    points, seeds = {}, {}
    for method in methods:
        first = seed_row(head, method, 0)
        if first is None:
            continue
        seeds[method] = seed_values(head, method)
        at_budget = first["linear_probe"] if at_1x == "seed 0" else summarize(seeds[method])["mean"]
        longer = [(row["images_through_encoder"], row["linear_probe"]) for row in rungs.values() if row["method"] == method]
        points[method] = sorted([(profile.steps * profile.batch_size, at_budget), *longer])
    return points, seeds


def gaps_to(points: dict, reference: str = "supervised") -> dict:
    """{method: {images through the encoder: reference's probe - method's probe}} at the rungs both have."""
    theirs = dict(points.get(reference, []))
    return {method: {x: theirs[x] - y for x, y in line if x in theirs}
            for method, line in points.items() if method != reference}


def gap_changes(gaps: dict, spread: dict, reference: str = "supervised") -> dict:
    """How the gap to ``reference`` moves from each rung to the next, read with the course's
    effect rule (``headline.compare``).

    gaps : ``gaps_to(points, reference)``. A rung is one seed, so its noise is its method's seed
    spread at 1x (``spread``: per-seed probes). A change of the gap between two rungs adds up four
    single-seed values (each method at both rungs), so its spread is
    sqrt(2 (sd_method^2 + sd_reference^2)), and the change counts when it is larger than
    ``EFFECT_SPREADS`` times that. Returns {method: [{"from", "to" (images through the encoder),
    "change" (of reference - method), "bar", "verdict": "widens", "narrows" or "level within
    noise"}, ...]} for the methods with two rungs the reference has; with fewer than two seeds on
    a side there is no spread to go by: "not enough seeds".
    """
    from .headline import EFFECT_SPREADS, summarize

    changes = {}
    for method, gap in gaps.items():
        bar = EFFECT_SPREADS * math.sqrt(2 * (summarize(spread[method])["sd"] ** 2 + summarize(spread[reference])["sd"] ** 2))
        seeded = min(len(spread[method]), len(spread[reference])) >= 2
        steps = list(gap.items())
        changes[method] = [
            {"from": x0, "to": x1, "change": g1 - g0, "bar": bar,
             "verdict": "not enough seeds" if not seeded else
             ("widens" if g1 > g0 else "narrows") if abs(g1 - g0) > bar else "level within noise"}
            for (x0, g0), (x1, g1) in zip(steps, steps[1:])
        ]
    return {method: steps for method, steps in changes.items() if steps}


def print_longer_schedules(methods, profile: Profile, data: dict, table: bool = True) -> dict:
    """Lecture 08's verdict on ``methods`` for the lecture that teaches them: their rows of the
    headline table beside both baselines (``headline.print_table``: every seed's mean ± sd and
    the effect rule against random init; ``table=False`` leaves them out, for a lecture that has
    just shown them), then, for each method and the supervised baseline, the probe at each
    stored rung of the ladder against random init's mean and the course's goal
    (``headline.COURSE_GOAL``), and the distance to supervised at each rung both have: how far the
    same recipe gets with a longer schedule, and whether labels gain more. Only rows measured on
    these images (``data``) count. Returns {method: {multiple: probe - random init's mean}} (at
    1x the mean over the seeds) with "supervised" among the methods, or {} when these images have
    no headline rows yet (lecture 08 measures them)."""
    from .headline import BASELINES, COURSE_GOAL, print_table, seed_values, stored_rows, summarize

    head = stored_rows(profile.name, data=data)
    order = dict.fromkeys(("random-init", *methods, *BASELINES))  # the baselines once each
    shown = {name: row for m in order for name, row in head.items() if row["method"] == m}
    if not any(row["method"] == "random-init" for row in shown.values()):
        print("no headline rows measured on these images yet: lecture 08 measures them")
        return {}
    if table:
        print_table(shown)
        print()
    floor = summarize(seed_values(head, "random-init"))["mean"]
    points, seeds = curves(stored_rungs(profile.name, data), head, [m for m in order if m != "random-init"],
                           profile, at_1x="mean")
    budget = profile.steps * profile.batch_size
    probes = {method: {round(x / budget): p for x, p in line} for method, line in points.items()}
    print(f"linear probe by pretraining compute (the class budget = 1x), against random init's "
          f"{100 * floor:.1f}% and the course's goal of +{100 * COURSE_GOAL:.0f} points:")
    for method, probe in probes.items():
        print(f"  {method:<13}" + "; ".join(
            f"{k}x {100 * p:.1f}% ({100 * (p - floor):+.1f}, "
            + (f"mean of {len(seeds[method])} seeds)" if k == 1 else "one seed)")
            for k, p in probe.items())
            + ("" if len(probe) > 1 else "; no longer rung stored yet"))
    reference = probes.get("supervised", {})
    for method, probe in probes.items():
        gap = {k: reference[k] - p for k, p in probe.items() if k in reference}
        if method != "supervised" and len(gap) > 1:
            print(f"supervised - {method}: " + "; ".join(f"{k}x {100 * d:.1f} points" for k, d in gap.items()))
    return {method: {k: p - floor for k, p in probe.items()} for method, probe in probes.items()}


def _shown(metric: str, value: float) -> str:
    return f"{100 * value:.1f}%" if "accuracy" in metric else f"{value:.3f}"  # a fraction, or a loss or an error


def print_pretext_by_rung(method: str, checkpoint: dict, profile: Profile, data: dict, metric: str = "accuracy") -> dict:
    """How well ``method`` solved its pretext task at the end of each run: the class checkpoint
    (``checkpoint``, seed 0) at 1x, then every stored rung that recorded it (``pretext_at_end``).
    Prints one line; returns {multiple: value}. Read beside the probes of
    :func:`print_longer_schedules`: a task solved better is not always better features."""
    solved = {1: pretext_at_end(checkpoint["history"], profile.steps)[metric]}
    solved |= {row["multiple"]: row["pretext_at_end"][metric] for row in stored_rungs(profile.name, data).values()
               if row["method"] == method and metric in row.get("pretext_at_end", {})}
    solved = dict(sorted(solved.items()))
    print(f"{method}'s training {metric} on its pretext task (the mean of the last {PRETEXT_WINDOW} steps; "
          f"seed 0 at every rung): " + "; ".join(f"{k}x {_shown(metric, v)}" for k, v in solved.items()))
    return solved


def run_rung(method: str, multiple: int, images, labels, train_set, test_set, profile: Profile,
             data: dict | None = None) -> dict:
    """Train one rung (or load its checkpoint), store it in half precision, measure it, and add
    its row to the user's ``ladder.json``. Returns the row."""
    from .methods import find_run, pretrain

    rung = rung_profile(profile, multiple)
    path = rung_path(method, profile, multiple)
    checkpoint = find_run(method, rung, 0, path)  # this rung with the method's current recipe
    if checkpoint is None:
        checkpoint = half_precision(pretrain(method, images, labels, rung, len(train_set.classes), 0, data=data))
        save_checkpoint(path, checkpoint)
    encoder = encoder_from_checkpoint(checkpoint, images.device)
    history = checkpoint["history"]
    row = {
        "method": method,
        "multiple": multiple,
        "steps": rung.steps,
        "images_through_encoder": rung.steps * rung.batch_size,
        "images_drawn": history["images_seen"],
        "training_seconds": history["seconds"],
        "device": str(images.device),
        "fingerprint": weights_fingerprint(encoder.state_dict()),
        "command": ladder_command(method, multiple, profile.name),
        "recipe": checkpoint.get("recipe"),
        "pretext_at_end": pretext_at_end(history, rung.steps),
        **measure(encoder, train_set, test_set, profile),
    }
    settings = table_settings(profile, train_set, test_set, PROTOCOL)  # with the data fingerprint
    store_row(table_paths(profile.name, LADDER_FILE)[0], settings, rung_name(method, multiple), row)
    return row


def main(argv=None) -> int:
    """The command line; returns the exit status (1 after a one-line ``error: ...``)."""
    from .cli import check_methods, method_parser, positive_int, run
    from .methods import METHODS

    parser = method_parser("python -m sslteach.ladder", __doc__.split("\n\n")[0],
                           f"methods, or all (= {' '.join(LADDER_METHODS)})", nargs="+")
    parser.add_argument("--multiples", type=positive_int, nargs="+", default=[3, 10])
    args = parser.parse_args(argv)
    methods = list(LADDER_METHODS) if args.methods == ["all"] else args.methods
    check_methods(parser, methods, list(METHODS), also="all")
    return run(lambda: ladder_command_line(methods, args))


def ladder_command_line(methods, args) -> None:
    from .data import data_fingerprint, load_cifar10
    from .device import pick_device
    from .profiles import get_profile

    profile = get_profile(args.profile)
    device = pick_device(args.device)
    train_set, test_set = load_cifar10("train"), load_cifar10("test")
    data = data_fingerprint(train_set, test_set)
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    done = stored_rungs(profile.name, data)
    for multiple in sorted(args.multiples):
        for method in methods:
            name = rung_name(method, multiple)
            if name in done:
                row = done[name]
                print(f"{name}: stored (probe {100 * row['linear_probe']:.1f})", flush=True)
                continue
            row = run_rung(method, multiple, images, labels, train_set, test_set, profile, data)
            print(f"{name}: {row['images_through_encoder']:,} images through the encoder in "
                  f"{row['training_seconds']:.0f} s on {device}; probe {100 * row['linear_probe']:.1f}, "
                  f"kNN {100 * row['knn']:.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
