"""What every lecture owes the people in the room, checked for each lectures/*.ipynb."""
import re
from pathlib import Path

import nbformat
import pytest

LECTURES = sorted((Path(__file__).resolve().parents[1] / "lectures").glob("*.ipynb"))


@pytest.fixture(params=LECTURES, ids=[p.stem for p in LECTURES])
def lecture(request):
    return nbformat.read(request.param, as_version=4)


def markdown(nb):
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def test_there_are_lectures():
    assert LECTURES, "no lectures/*.ipynb found"


def test_opens_with_objectives_and_time_per_section(lecture):
    first = markdown(lecture)[0]
    assert re.search(r"learning objectives", first, re.I), "the first cell should state the learning objectives"
    assert re.search(r"\|\s*section\s*\|\s*time\s*\|", first, re.I), "the first cell should give a time per section (a | section | time | table)"


def test_closes_with_discussion_questions(lecture):
    last = markdown(lecture)[-1]
    assert re.search(r"^#+\s*Discussion", last, re.M), "the last markdown cell should hold the discussion questions"
    assert len(re.findall(r"^\s*\d+\.\s", last, re.M)) >= 2, "at least two numbered discussion questions"


def test_has_a_marked_exercise_followed_by_a_check(lecture):
    cells = lecture.cells
    exercises = [i for i, c in enumerate(cells) if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    assert exercises, "each lecture has at least one exercise with a marked solution"
    for i in exercises:
        following = next(c for c in cells[i + 1:] if c.cell_type == "code")
        assert re.search(r"\bcheck_\w+\(", following.source), "the cell after a solution should run its automatic check"


def test_stored_run_is_complete_and_in_order(lecture):
    counts = [c.execution_count for c in lecture.cells if c.cell_type == "code" and c.source.strip()]
    assert counts == list(range(1, len(counts) + 1)), "store one top-to-bottom run (restart and run all)"
    for c in lecture.cells:
        for out in c.get("outputs", []):
            assert out.output_type != "error", "a stored output is an error"
