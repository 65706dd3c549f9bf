"""Try a method's settings on the validation split: pretrain, read out, append one JSON line.

    python tools/sweep.py swav --set prototypes=30 --set temperature=0.2
    python tools/sweep.py jigsaw --set input_size=32 --profile-set lr=0.05 --seed 1
    python tools/sweep.py rotation --profile-set steps=1050      # 3x the class budget

Recipes are chosen here, never on the test split (issue 16): the prepared training split is cut
into a fit part (all but its last ``--validation`` images) and a validation part
(``sslteach.evaluate.validation_split``). The method pretrains on the fit images with the class
profile (changed only where ``--profile-set`` says) and the method's recipe (changed only where
``--set`` says: a field of its settings dataclass, such as SwAV's ``prototypes`` or the context
task's ``input_size``, or a keyword argument of its pretrain function, such as jigsaw's
``count``); then ``sslteach.evaluate.readout`` (pooled final features, kNN and a linear probe
on all fit labels) measures it on the validation images.

Each run appends to ``--out`` (default ``benchmarks/sweeps/<method>.jsonl``) a line with the
settings, the validation accuracies, the wall times, the thread count, the commit and the
command that reproduces it; nothing is written if the run fails.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import inspect
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sslteach.data.store import atomic_write  # noqa: E402
from sslteach.methods import STANDARD_PARAMETERS, method_recipe  # noqa: E402


def parse_value(text: str):
    """A Python literal if it is one (``0.2``, ``True``, ``(0.2, 1.0)``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignments(pairs: list[str]) -> dict:
    """["a=1", "b=x"] -> {"a": 1, "b": "x"}; a pair without "=" is an error."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: expected NAME=VALUE, got {pair!r}")
        result[key.strip()] = parse_value(value.strip())
    return result


def method_options(method: str, changes: dict) -> dict:
    """Keyword arguments for ``sslteach.methods.pretrain`` that change ``method``'s recipe.

    Each name in ``changes`` is a field of a dataclass the pretrain function takes (its
    ``settings``, or the context ``task``), or one of its own keyword arguments. An unknown
    name is an error that lists the known ones.
    """
    from sslteach.methods import PRETRAINERS

    parameters = {name: p.default for name, p in inspect.signature(PRETRAINERS[method]).parameters.items()
                  if name not in STANDARD_PARAMETERS}
    options, known = {}, []
    for name, default in parameters.items():
        if dataclasses.is_dataclass(default):
            fields = {f.name for f in dataclasses.fields(default)}
            known += sorted(fields)
            mine = {k: v for k, v in changes.items() if k in fields}
            if mine:
                options[name] = dataclasses.replace(default, **mine)
        else:
            known.append(name)
            if name in changes:
                options[name] = changes[name]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise SystemExit(f"error: {method} has no setting {', '.join(unknown)}; its settings: {', '.join(known) or 'none'}")
    return options


def git_commit() -> str:
    """The commit of the code, with "+changes" if the working tree differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", "sslteach") else "")


def final_loss(history: dict) -> float | None:
    """Mean training loss of the last 20 steps (None for a method that takes no step)."""
    losses = history.get("loss") or []
    return sum(losses[-20:]) / len(losses[-20:]) if losses else None


def run(method: str, changes: dict, profile_changes: dict, seed: int, validation: int, device: str | None = None,
        train_set=None) -> dict:
    """Pretrain ``method`` on the fit images and read it out on the validation images: the record."""
    from sslteach.checkpoint import encoder_from_checkpoint
    from sslteach.data import load_cifar10
    from sslteach.device import pick_device
    from sslteach.evaluate import readout, validation_split
    from sslteach.methods import pretrain
    from sslteach.profiles import CLASS

    profile = dataclasses.replace(CLASS, **profile_changes)
    options = method_options(method, changes)
    device = pick_device(device)
    fit_set, val_set = validation_split(train_set if train_set is not None else load_cifar10("train"), validation)
    images, labels = fit_set.images.to(device), fit_set.labels.to(device)
    checkpoint = pretrain(method, images, labels, profile, len(fit_set.classes), seed, **options)
    scores = readout(encoder_from_checkpoint(checkpoint, device), fit_set, val_set, profile)
    return {
        "method": method,
        "changes": changes,
        "profile_changes": profile_changes,
        "seed": seed,
        "validation": {"knn": scores["knn"], "linear_probe": scores["linear_probe"],
                       "fit_images": scores["train_images"], "validation_images": scores["test_images"]},
        "recipe": method_recipe(method, options),
        "profile": dataclasses.asdict(profile),
        "pretrain_seconds": round(checkpoint["history"]["seconds"], 1),
        "readout_seconds": round(scores["seconds"], 1),
        "images_seen": checkpoint["history"]["images_seen"],
        "final_loss": final_loss(checkpoint["history"]),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "commit": git_commit(),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def append_line(path: Path, record: dict) -> None:
    """Append ``record`` as one JSON line: the file is rewritten whole, so a killed run leaves
    the previous lines intact and no half line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_bytes() if path.exists() else b""
    with atomic_write(path) as f:
        f.write(before + (json.dumps(record) + "\n").encode())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting of the method's recipe")
    parser.add_argument("--profile-set", action="append", default=[], metavar="NAME=VALUE", help="a setting of the class profile (lr, steps, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation", type=int, default=None, help="validation images (default: sslteach.evaluate.VALIDATION_IMAGES)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from sslteach.evaluate import VALIDATION_IMAGES
    from sslteach.methods import PRETRAINERS

    if args.method not in PRETRAINERS:
        raise SystemExit(f"error: unknown method {args.method!r}; choose one of {', '.join(PRETRAINERS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    changes, profile_changes = parse_assignments(args.set), parse_assignments(args.profile_set)
    method_options(args.method, changes)  # unknown settings fail before any training
    out = args.out or ROOT / "benchmarks" / "sweeps" / f"{args.method}.jsonl"
    start = time.perf_counter()
    record = run(args.method, changes, profile_changes, args.seed, args.validation or VALIDATION_IMAGES, args.device)
    record["command"] = "python tools/sweep.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    append_line(out, record)
    v = record["validation"]
    print(f"{args.method} {changes} {profile_changes} seed {args.seed}: validation kNN {100 * v['knn']:.1f}%, "
          f"linear probe {100 * v['linear_probe']:.1f}% ({record['pretrain_seconds']:.0f} s pretraining) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
