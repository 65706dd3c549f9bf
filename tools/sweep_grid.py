"""Run a whole grid of recipe sweeps (``tools/sweep.py`` runs) in one process, resumably.

    python tools/sweep_grid.py benchmarks/sweeps/grid.json --threads 1
    python tools/sweep_grid.py benchmarks/sweeps/grid.json --device cuda --out-dir benchmarks/sweeps/cuda
    python tools/sweep_grid.py benchmarks/sweeps/grid.json --only swav --shard 0/2   # half of SwAV's runs

The grid file is a JSON list of entries {"method", "set": {NAME: VALUE}, "profile_set": {...},
"seeds": [0, 1, 2]}; every seed of an entry is one run of ``tools/sweep.py`` (pretrain on the
fit images, read out on the validation images, never the test split). The data are loaded
once; each finished run is appended at once to ``<out-dir>/<method>.jsonl`` (default
benchmarks/sweeps/), and a run whose method, changes, profile changes and seed are already
in that file is skipped, so a grid stopped halfway (a session's end, a machine handed back)
goes on where it stopped. ``--shard K/N`` takes every N-th run starting at K, so N processes
(one per core) can share a grid without running anything twice. A run on another device
(a GPU) gives other numbers for the same settings: give it its own ``--out-dir``
(benchmarks/sweeps/cuda/), so that settings are only ever compared on one device.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import sweep  # noqa: E402  (tools/sweep.py: one run, its record and its line)


def grid_runs(grid: list[dict], only: list[str] | None = None) -> list[dict]:
    """Every run of ``grid``, in order: {"method", "changes", "profile_changes", "seed"}."""
    runs = []
    for entry in grid:
        unknown = set(entry) - {"method", "set", "profile_set", "seeds", "why", "compute"}
        if unknown:
            raise SystemExit(f"error: grid entry {entry} has unknown keys {sorted(unknown)}")
        if only and entry["method"] not in only:
            continue
        for seed in entry.get("seeds", [0]):
            runs.append({"method": entry["method"], "changes": entry.get("set", {}),
                         "profile_changes": entry.get("profile_set", {}), "seed": seed})
    return runs


def run_key(record: dict) -> str:
    """What makes two runs the same run (JSON, so 0.2 and 0.2 match however they were written)."""
    return json.dumps([record["method"], record["changes"], record["profile_changes"], record["seed"]], sort_keys=True)


def done_keys(out_dir: Path, methods) -> set[str]:
    keys = set()
    for method in set(methods):
        path = out_dir / f"{method}.jsonl"
        if path.exists():
            keys |= {run_key(json.loads(line)) for line in path.read_text().splitlines() if line.strip()}
    return keys


def shard(runs: list, spec: str | None) -> list:
    if not spec:
        return runs
    k, n = (int(x) for x in spec.split("/"))
    if not 0 <= k < n:
        raise SystemExit(f"error: --shard K/N needs 0 <= K < N, got {spec}")
    return runs[k::n]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path)
    parser.add_argument("--only", nargs="+", default=None, help="only these methods")
    parser.add_argument("--shard", default=None, metavar="K/N")
    parser.add_argument("--validation", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "sweeps")
    parser.add_argument("--dry-run", action="store_true", help="list the runs still to do, run nothing")
    args = parser.parse_args(argv)

    from sslteach.data import load_cifar10
    from sslteach.evaluate import VALIDATION_IMAGES

    runs = shard(grid_runs(json.loads(args.grid.read_text()), args.only), args.shard)
    for r in runs:
        sweep.method_options(r["method"], r["changes"])  # a misspelt setting fails before any training
    done = done_keys(args.out_dir, [r["method"] for r in runs])
    todo = [r for r in runs if run_key(r) not in done]
    print(f"{len(runs)} runs in the grid{' shard ' + args.shard if args.shard else ''}: "
          f"{len(runs) - len(todo)} already recorded, {len(todo)} to run", flush=True)
    if args.dry_run:
        for r in todo:
            print(f"  {r['method']} {r['changes']} {r['profile_changes']} seed {r['seed']}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    train_set = load_cifar10("train")
    for i, r in enumerate(todo, 1):
        start = time.perf_counter()
        record = sweep.run(r["method"], r["changes"], r["profile_changes"], r["seed"],
                           args.validation or VALIDATION_IMAGES, args.device, train_set=train_set)
        words = [r["method"]] + [w for k, v in r["changes"].items() for w in ("--set", f"{k}={v}")]
        words += [w for k, v in r["profile_changes"].items() for w in ("--profile-set", f"{k}={v}")]
        record["command"] = "python tools/sweep.py " + shlex.join([*words, "--seed", str(r["seed"])])
        record["wall_seconds"] = round(time.perf_counter() - start, 1)
        sweep.append_line(args.out_dir / f"{r['method']}.jsonl", record)
        v = record["validation"]
        print(f"[{i}/{len(todo)}] {r['method']} {r['changes']} {r['profile_changes']} seed {r['seed']}: "
              f"probe {100 * v['linear_probe']:.1f}, kNN {100 * v['knn']:.1f} ({record['wall_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
