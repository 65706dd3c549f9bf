"""The pretext-task lectures quote lecture 08's headline table in their prose (issue 16, item 5:
no sentence may disagree with the table it cites). Their code cells do not compute those numbers,
so nothing else notices when a retrained checkpoint changes them: here every "mean ± sd" and
every "difference against a bar of ..." in the markdown of lectures 00-07 must be today's value,
in the shipped table, of a method the same paragraph names (of two, or of one against random
init, for a difference), or one of
the few quotes from another source, listed with that source."""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from sslteach import headline

ROOT = Path(__file__).resolve().parent.parent
LECTURES = sorted((ROOT / "lectures").glob("0[0-7]_*.ipynb"))
METRICS = ("linear_probe", "knn", "0.01", "0.1", "1.0")

OTHER_SOURCES = {
    # lecture 06 reads SwAV's temperature sweep (benchmarks/sweeps, the validation split) and the
    # headline probe of its earlier recipe (temperature 0.1), which the headline table no longer holds
    ("06_contrastive", "45.6 ± 0.3"): "benchmarks/sweeps: SwAV, temperature 0.2, validation split",
    ("06_contrastive", "42.7 ± 1.0"): "benchmarks/sweeps: SwAV, temperature 0.1, validation split",
    ("06_contrastive", "43.6 ± 0.6"): "headline probe of SwAV's earlier recipe (temperature 0.1)",
}

MEAN_SD = re.compile(r"\d+\.\d ± \d+\.\d")
COMPARISON = re.compile(r"[+-]\d+\.\d against a bar of \d+\.\d")


def prose_name(method: str) -> str:
    """How the prose names a method of the table: random-init is "random init", a variant
    (jigsaw-1000, supervised-1pct) goes by its method's name."""
    return {"random-init": "random", "split-brain": "split-brain"}.get(method, method.split("-")[0])


@pytest.fixture(scope="module")
def table_quotes() -> tuple[dict, dict]:
    """Once for all the lectures: ({method: every "mean ± sd" of it}, {(method, other): every "difference against a bar of"})
    as a lecture would print them from the shipped headline table (in %), over the metrics."""
    rows = json.loads((ROOT / "checkpoints" / "class" / headline.TABLE_FILE).read_text())["rows"]
    methods = sorted({row["method"] for row in rows.values()})
    values = {(m, metric): headline.seed_values(rows, m, metric) for m in methods for metric in METRICS}
    summaries = {m: set() for m in methods}
    for (m, _), per_seed in values.items():
        s = headline.summarize(per_seed)
        summaries[m].add(f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}")
    comparisons = {pair: set() for pair in itertools.permutations(methods, 2)}
    for (a, b), metric in itertools.product(comparisons, METRICS):
        c = headline.compare(values[a, metric], values[b, metric])
        comparisons[a, b].add(f"{100 * c['difference']:+.1f} against a bar of {100 * headline.EFFECT_SPREADS * c['spread']:.1f}")
    return summaries, comparisons


def stale_quotes(text: str, stem: str, summaries: dict, comparisons: dict) -> list[str]:
    """The quotes of ``text`` that no method named in their paragraph (a line: a bullet or a
    paragraph of a cell) has in the table; a difference is of two named methods, or of one
    against random init, the baseline every verdict of the course is read against by default."""
    stale = []
    for paragraph in text.splitlines():
        named = [m for m in summaries if prose_name(m) in paragraph.lower()]
        theirs = set().union(*(summaries[m] for m in named))
        against = {*itertools.permutations(named, 2), *((m, "random-init") for m in named if m != "random-init")}
        pairs = set().union(*(comparisons[pair] for pair in against))
        stale += [q for q in MEAN_SD.findall(paragraph) if q not in theirs and (stem, q) not in OTHER_SOURCES]
        stale += [q for q in COMPARISON.findall(paragraph) if q not in pairs]
    return stale


def markdown(lecture: Path) -> str:
    cells = json.loads(lecture.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").replace("−", "-")


def test_a_quote_counts_only_for_the_methods_its_paragraph_names():
    summaries = {"npid": {"54.2 ± 0.7"}, "random-init": {"45.2 ± 1.2"}, "pirl": {"54.1 ± 1.1"}}
    comparisons = {("npid", "random-init"): {"+9.0 against a bar of 2.8"}, ("random-init", "npid"): set(),
                   ("pirl", "random-init"): {"+8.9 against a bar of 3.3"}, ("random-init", "pirl"): set(),
                   ("npid", "pirl"): set(), ("pirl", "npid"): set()}
    good = "NPID is 54.2 ± 0.7%: above random init (+9.0 against a bar of 2.8)."
    assert stale_quotes(good, "x", summaries, comparisons) == []
    # PIRL's values quoted for NPID, in a paragraph that does not name PIRL: stale
    wrong = "NPID is 54.1 ± 1.1%: above random init (+8.9 against a bar of 3.3)."
    assert stale_quotes(wrong, "x", summaries, comparisons) == ["54.1 ± 1.1", "+8.9 against a bar of 3.3"]


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_every_quote_of_the_headline_table_is_todays(lecture, table_quotes):
    stale = stale_quotes(markdown(lecture), lecture.stem, *table_quotes)
    assert not stale, (f"{lecture.name} quotes values the headline table (checkpoints/class/"
                       f"{headline.TABLE_FILE}) does not give today for the methods their paragraphs "
                       f"name: {stale}; rewrite them from `python -m sslteach.headline` (lecture 08, section 3)")


def test_the_other_sources_are_still_quoted():
    """An entry of OTHER_SOURCES whose quote has gone from its lecture is dead weight: remove it."""
    for (stem, quote), source in OTHER_SOURCES.items():
        assert quote in markdown(ROOT / "lectures" / f"{stem}.ipynb"), (stem, quote, source)
