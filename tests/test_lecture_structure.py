"""What every lecture owes the people in the room, checked for each lectures/*.ipynb."""
import re
from pathlib import Path

import nbformat
import pytest

from helpers import load_tool

LECTURES = sorted((Path(__file__).resolve().parents[1] / "lectures").glob("*.ipynb"))
make_guide = load_tool("make_guide")


@pytest.fixture(params=LECTURES, ids=[p.stem for p in LECTURES])
def lecture(request):
    return nbformat.read(request.param, as_version=4)


def markdown(nb):
    """The lecture's markdown as students see it: without the instructor's model answers."""
    return [c.source for c in nb.cells if c.cell_type == "markdown" and not make_guide.is_instructor(c)]


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


def test_at_least_two_predict_then_run_prompts_each_before_a_code_cell(lecture):
    """A prompt asks for a prediction that the next code cell's output answers (instructor cells,
    which the students never see, do not count as "next")."""
    cells = [c for c in lecture.cells if not make_guide.is_instructor(c)]
    prompts = [i for i, c in enumerate(cells) if make_guide.is_prompt(c)]
    assert len(prompts) >= 2, f"at least two cells starting with {make_guide.PROMPT_LEAD!r}, found {len(prompts)}"
    for i in prompts:
        assert i + 1 < len(cells) and cells[i + 1].cell_type == "code", \
            f"the prompt {cells[i].get('id')} should be followed by the code cell that answers it"


def test_every_question_has_a_model_answer(lecture):
    """Every numbered discussion question and every prompt has an instructor cell that answers it,
    and every instructor cell points at a question the lecture asks (make_guide.question_text
    raises otherwise)."""
    answered = {(q["cell"], q.get("item")) for q, _, _ in make_guide.answers(lecture)}
    asked = {(c.id, None) for c in lecture.cells if make_guide.is_prompt(c)}
    for cell in make_guide.discussion_cells(lecture):
        asked |= {(cell.id, item) for item in make_guide.discussion_items(cell.source)}
    assert asked, "no questions found"
    assert not asked - answered, f"questions without a model answer (cell id, item): {sorted(asked - answered, key=str)}"


def test_model_answers_are_tagged_and_anchored_once(lecture):
    anchors = [q["anchor"] for q, _, _ in make_guide.answers(lecture)]
    assert len(anchors) == len(set(anchors)), "each question anchor names one answer"
    for cell in lecture.cells:
        if cell.source.lstrip().startswith(make_guide.ANSWER_LEAD):
            assert make_guide.is_instructor(cell), f"cell {cell.get('id')} is a model answer without the instructor tag"
