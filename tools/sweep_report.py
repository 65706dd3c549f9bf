"""Read the recipe sweeps (``benchmarks/sweeps/*.jsonl``) with the course's effect rule.

    python tools/sweep_report.py                      # every method, as a Markdown table
    python tools/sweep_report.py --only swav jigsaw
    python tools/sweep_report.py --write benchmarks/sweeps/README.md   # refresh its results section

Runs of one method with the same settings are grouped over their seeds. A run's settings are read
from the recipe its line records, against the method's recipe of today
(``sslteach.methods.method_recipe``), so that after a recipe changes (SwAV's temperature, chosen
by this sweep) the runs of the new value are the recipe's and those of the old one a change from
it; profile changes are the line's ``profile_changes``. Each group's validation linear probe (mean
+- sd over seeds) is compared with the method's recipe (the group with no changes) and with random
init on the same split, by
``sslteach.headline.compare``: a difference is an effect when it is larger than twice the
combined spread of the two sides; with fewer than two seeds on a side there is no verdict.

The chosen setting of a method is the recipe unless some change is above it by that rule; then
it is the smallest of those changes (fewest settings changed) that is level within noise with the
best of them: a second setting changed has to earn its place by the same rule. A setting that the
grid marks as more compute (a ``compute`` note: a larger input, for one) is shown but never
chosen: the sweep tunes recipes at the same compute (issue 16). Wall times in the lines are not
compared here: runs shared the cores, were paused, or ran on other machines. Nothing here reads
the test split: the lines hold validation accuracies only (``tools/sweep.py``).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sslteach.headline import compare, summarize  # noqa: E402
from sslteach.methods import stored_recipe  # noqa: E402

import sweep  # noqa: E402  (tools/sweep.py: the names --set takes)

FLOOR = "random-init"
BASELINES = (FLOOR, "supervised")
"""Measured beside the methods, never tuned."""
BEGIN, END = "<!-- sweep_report begin -->", "<!-- sweep_report end -->"
"""The markers around the generated section of a Markdown file (``--write``)."""


def read_lines(folder: Path) -> list[dict]:
    """Every run recorded in ``folder/*.jsonl``, file by file, in the order written."""
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def setting_name(changes: dict, profile_changes: dict) -> str:
    """``temperature=0.2, lr=0.05 (profile)``; ``recipe`` when nothing is changed."""
    words = [f"{k}={v}" for k, v in sorted(changes.items())]
    words += [f"{k}={v} (profile)" for k, v in sorted(profile_changes.items())]
    return ", ".join(words) or "recipe"


def flat_settings(recipe: dict) -> dict:
    """A recipe's settings by the names ``tools/sweep.py --set`` takes: the fields of a settings
    dataclass (stored as a dict), or a parameter of the pretrain function."""
    flat = {}
    for name, value in recipe.items():
        flat.update(value if isinstance(value, dict) else {name: value})
    return flat


def changes_from_recipe(method: str, recipe: dict) -> dict:
    """The settings of ``recipe`` (as a sweep line records it) that differ from ``method``'s recipe
    of today."""
    today = flat_settings(stored_recipe(method))
    return {k: v for k, v in flat_settings(recipe).items() if today.get(k) != v}


def line_changes(line: dict) -> dict:
    """A line's changes from today's recipe: from its recorded recipe, or, for a line that records
    none, its ``changes``."""
    return changes_from_recipe(line["method"], line["recipe"]) if "recipe" in line else line["changes"]


def entry_changes(entry: dict) -> dict:
    """A grid entry's changes (``set``) from today's recipe."""
    options = sweep.method_options(entry["method"], entry.get("set", {}))
    return changes_from_recipe(entry["method"], stored_recipe(entry["method"], options))


def group_runs(lines: list[dict]) -> dict:
    """{method: {setting name: {"seeds", "probe", "knn", "changes", "profile_changes"}}} with
    per-seed lists in seed order; a seed recorded twice for the same setting keeps its last line."""
    runs, changed = collections.defaultdict(dict), {}
    for line in lines:
        changes = line_changes(line)
        key = (line["method"], setting_name(changes, line["profile_changes"]))
        runs[key][line["seed"]] = line["validation"]
        changed[key] = {"changes": changes, "profile_changes": line["profile_changes"]}
    groups = collections.defaultdict(dict)
    for (method, setting), by_seed in runs.items():
        seeds = sorted(by_seed)
        groups[method][setting] = {"seeds": seeds, "probe": [by_seed[s]["linear_probe"] for s in seeds],
                                   "knn": [by_seed[s]["knn"] for s in seeds], **changed[method, setting]}
    return groups


def compute_notes(grid: list[dict]) -> dict:
    """{(method, setting name): note} for the grid's entries marked as more compute than the recipe."""
    return {(e["method"], setting_name(entry_changes(e), e.get("profile_set", {}))): e["compute"]
            for e in grid if "compute" in e}


def planned_runs(grid: list[dict]) -> dict:
    """{method: {(setting name, seed), ...}}: the runs the grid plans."""
    planned = collections.defaultdict(set)
    for e in grid:
        planned[e["method"]] |= {(setting_name(entry_changes(e), e.get("profile_set", {})), seed)
                                 for seed in e.get("seeds", [0])}
    return planned


def judge(groups: dict, grid: list[dict] = ()) -> dict:
    """{method: {"rows": [...], "choice": setting name, "planned", "recorded"}}: each setting
    against the recipe and random init. ``grid`` (``grid.json``) marks the settings that cost more
    compute and says how many of the planned runs of each method are recorded."""
    notes, planned = compute_notes(grid), planned_runs(grid)
    floor = groups.get(FLOOR, {}).get("recipe", {}).get("probe", [])
    report = {}
    for method, settings in groups.items():
        recipe = settings.get("recipe", {}).get("probe", [])
        rows = []
        for setting, g in settings.items():
            row = {"setting": setting, **g, "probe_summary": summarize(g["probe"]), "knn_summary": summarize(g["knn"])}
            if (method, setting) in notes:
                row["more_compute"] = notes[method, setting]
            if setting != "recipe" and recipe:
                row["vs_recipe"] = compare(g["probe"], recipe)
            if method != FLOOR and floor:
                row["vs_random_init"] = compare(g["probe"], floor)
            rows.append(row)
        rows.sort(key=lambda r: (r["setting"] != "recipe", -r["probe_summary"]["mean"]))
        recorded = {(setting, seed) for setting, g in settings.items() for seed in g["seeds"]}
        report[method] = {"rows": rows, "choice": choose(rows), "planned": len(planned[method]),
                          "recorded": len(planned[method] & recorded)}
    return report


def choose(rows: list[dict]) -> str:
    """The recipe, or the smallest change above it that the best change does not beat beyond noise."""
    winners = [r for r in rows if r.get("vs_recipe", {}).get("verdict") == "above" and "more_compute" not in r]
    if not winners:
        return "recipe"
    best = max(winners, key=lambda r: r["probe_summary"]["mean"])
    close = [r for r in winners if r is best or compare(best["probe"], r["probe"])["verdict"] != "above"]
    return min(close, key=lambda r: (len(r["changes"]) + len(r["profile_changes"]), -r["probe_summary"]["mean"]))["setting"]


def markdown(report: dict) -> str:
    """The report as one Markdown table (accuracies in %), then each method's chosen setting."""
    def pct(values):
        return ", ".join(f"{100 * v:.1f}" for v in values)

    def mean_sd(s):
        return f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}" if s["n"] > 1 else f"{100 * s['mean']:.1f}"

    def verdict(c):
        if c is None:
            return ""
        if c["verdict"] == "not enough seeds":
            return f"{100 * c['difference']:+.1f} (one seed)"
        return f"{100 * c['difference']:+.1f} vs {200 * c['spread']:.1f}: {c['verdict']}"

    out = ["| method | setting | seeds | linear probe | per seed | kNN | against the recipe | against random init |",
           "| --- | --- | ---: | ---: | --- | ---: | --- | --- |"]
    for method, r in report.items():
        for row in r["rows"]:
            setting = row["setting"] + (" (more compute)" if "more_compute" in row else "")
            out.append(f"| {method} | {setting} | {len(row['seeds'])} | {mean_sd(row['probe_summary'])} | "
                       f"{pct(row['probe'])} | {mean_sd(row['knn_summary'])} | {verdict(row.get('vs_recipe'))} | "
                       f"{verdict(row.get('vs_random_init'))} |")
    out.append("")
    out += [f"* {method}: {r['choice']}" + (f" ({r['recorded']} of the grid's {r['planned']} runs recorded)"
                                           if r["planned"] else "")
            for method, r in report.items() if method not in BASELINES]
    notes = [f"* more compute, {method} {row['setting']}: {row['more_compute']}"
             for method, r in report.items() for row in r["rows"] if "more_compute" in row]
    return "\n".join(out + ([""] + notes if notes else []))


def write_section(path: Path, text: str) -> None:
    """Replace what stands between ``BEGIN`` and ``END`` in ``path`` with ``text``."""
    document = path.read_text()
    if BEGIN not in document or END not in document:
        raise SystemExit(f"error: {path} has no {BEGIN} ... {END} section to replace")
    head, rest = document.split(BEGIN, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "sweeps")
    parser.add_argument("--grid", type=Path, default=ROOT / "benchmarks" / "sweeps" / "grid.json",
                        help="the grid whose compute notes mark settings that are not at the same compute")
    parser.add_argument("--only", nargs="+", default=None, help="only these methods (random init is always read)")
    parser.add_argument("--write", type=Path, default=None, metavar="MARKDOWN",
                        help=f"write the table into this file, between {BEGIN} and {END}")
    args = parser.parse_args(argv)
    groups = group_runs(read_lines(args.dir))
    if not groups:
        print(f"error: no sweep lines in {args.dir}", file=sys.stderr)
        return 1
    report = judge(groups, json.loads(args.grid.read_text()) if args.grid.exists() else [])
    if args.only:
        report = {m: r for m, r in report.items() if m in args.only}
    text = markdown(report)
    if args.write:
        runs = sum(len(row["seeds"]) for r in report.values() for row in r["rows"])
        write_section(args.write, f"Generated by `python tools/sweep_report.py` from {runs} run{'s' * (runs != 1)}."
                                  f"\n\n{text}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
