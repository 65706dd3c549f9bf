"""Tests of tools/make_student.py, which turns lectures into student copies.

For every lecture: no solution line survives in the student copy, the copy is a valid notebook
whose code compiles, and every exercise's scaffold makes its check fail with the check's message.
Then the transformation on small made-up notebooks: hints kept, indentation kept, bad markers
refused.

The lectures themselves, solutions and checks included, run top to bottom once per test run, in
nbval (`make test`). Here only the cells the student copy's checks need are run
(tools/notebook_slice.py): the exercises and their imports, not the lectures' training and
evaluation again.
"""

from __future__ import annotations

import copy
import doctest
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers import load_tool


@pytest.fixture(autouse=True)
def shipped_checkpoints_as_in_class(monkeypatch):
    """The cells run here load the course's shipped checkpoints, if they load any, as a student's
    run does; tests/conftest.py hides them from the unit tests."""
    monkeypatch.delenv("SSLTEACH_CHECKPOINTS", raising=False)


ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
# The tests find solution blocks with their own pattern rather than the tool's parser.
SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION", re.M | re.S)


make_student = load_tool("make_student")
notebook_slice = load_tool("notebook_slice")


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """Run the tool as ``make student`` does, into a temporary folder: {lecture name: student copy}."""
    out = tmp_path_factory.mktemp("students")
    command = [sys.executable, str(ROOT / "tools" / "make_student.py"), "--out", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return {path.name: nbformat.read(out / path.name, as_version=4) for path in LECTURES}


def code_cells(nb):
    return [(index, cell) for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]


def stripped_lines(text):
    return {line.strip() for line in text.split("\n") if line.strip()}


def exercises(nb):
    """(solution cell, check cell) of every exercise: a cell with a solution block and the next code cell."""
    pairs = []
    for solution in (i for i, cell in code_cells(nb) if SOLUTION.search(cell.source)):
        check = next((i for i, _ in code_cells(nb) if i > solution), None)
        assert check is not None, f"no check cell after the exercise in cell {solution}"
        pairs.append((solution, check))
    return pairs


def run_cells(nb, indices):
    """Run ``nb.cells[i] for i in indices``, in order, in a fresh kernel of this environment.
    -> {cell index: [its error outputs]}"""
    part = copy.deepcopy(nb)
    part.cells = [part.cells[i] for i in indices]
    # "python3" is the native kernel: jupyter_client starts it with sys.executable, this venv.
    client = NotebookClient(part, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(ROOT / "lectures")}})
    client.execute()
    return {i: [out for out in cell.outputs if out.output_type == "error"]
            for i, cell in zip(indices, part.cells)}


# --- every lecture ------------------------------------------------------------------------------

def test_lectures_are_found():
    assert LECTURES, "no lectures/*.ipynb"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda path: path.name)
def test_no_solution_leaks(lecture, students):
    original, student = nbformat.read(lecture, as_version=4), students[lecture.name]
    solution = set()
    for _, cell in code_cells(original):
        for block in SOLUTION.findall(cell.source):
            solution |= {line for line in stripped_lines(block) if not line.startswith("# HINT:")}
    # A line that the lecture also has outside every solution block is not a leak.
    elsewhere = set().union(*(stripped_lines(SOLUTION.sub("", c.source)) for c in original.cells))
    student_lines = set().union(*(stripped_lines(c.source) for c in student.cells))
    leaked = (solution - elsewhere) & student_lines
    assert not leaked, f"solution lines in the student copy: {sorted(leaked)}"
    assert not any("BEGIN SOLUTION" in c.source or "END SOLUTION" in c.source for c in student.cells)


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda path: path.name)
def test_student_copy_is_a_clean_valid_notebook(lecture, students):
    original, student = nbformat.read(lecture, as_version=4), students[lecture.name]
    nbformat.validate(student)
    assert student.metadata == {k: v for k, v in original.metadata.items() if k != "widgets"}
    assert [c.get("id") for c in student.cells] == \
        [c.get("id") for c in original.cells if not make_student.is_instructor_cell(c)]
    for index, cell in code_cells(student):
        assert cell.outputs == [] and cell.execution_count is None
        python = "\n".join(line for line in cell.source.split("\n") if not line.lstrip().startswith(("%", "!")))
        compile(python, f"{lecture.name}, cell {index}", "exec")


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda path: path.name)
def test_no_model_answer_reaches_the_student_copy(lecture, students):
    """No instructor cell, and no line of a model answer, is in the student copy; the prompts are."""
    original, student = nbformat.read(lecture, as_version=4), students[lecture.name]
    instructor = [c for c in original.cells if make_student.INSTRUCTOR_TAG in c.metadata.get("tags", [])]
    assert not [c for c in student.cells if make_student.INSTRUCTOR_TAG in c.metadata.get("tags", [])]
    assert not [c.get("id") for c in student.cells if make_student.ANSWER_LEAD in c.source]
    # Text that the lecture also has outside every instructor cell is not a leak.
    answers = set().union(*(stripped_lines(c.source) for c in instructor))
    elsewhere = "\n".join(c.source for c in original.cells if c not in instructor)
    student_text = "\n".join(c.source for c in student.cells)
    leaked = [line for line in answers if len(line) > 20 and line in student_text and line not in elsewhere]
    assert not leaked, f"model-answer text in the student copy: {leaked[:3]}"
    prompts = [c.get("id") for c in original.cells if c.source.startswith("**Predict, then run.**")]
    assert prompts and all(any(c.get("id") == i for c in student.cells) for i in prompts), "the prompts are for students"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda path: path.name)
def test_every_exercise_of_the_student_copy_stops_at_its_check(lecture, students):
    """Each scaffold fails its check with a message for the student; nothing else fails. The
    lecture's own solutions pass the same checks in the nbval run of lectures/."""
    original = nbformat.read(lecture, as_version=4)
    pairs = exercises(original)
    if not pairs:
        pytest.skip("this lecture has no exercise")
    student = students[lecture.name]
    # The student copy has no instructor cells, so a cell's index there is found by its id.
    position = {cell.get("id"): index for index, cell in enumerate(student.cells)}
    checks = [position[original.cells[check].get("id")] for _, check in pairs]
    needed = notebook_slice.cells_needed(student, checks)
    errors = run_cells(student, needed)
    unexpected = {i: f"{out[0].ename}: {out[0].evalue}" for i, out in errors.items() if out and i not in checks}
    assert not unexpected, f"cells other than the checks failed: {unexpected} (ran cells {needed})"
    for check in checks:
        assert errors[check], f"the check in cell {check} passed on the scaffold"
        error = errors[check][0]
        assert error.ename == "ExerciseError", f"cell {check}: {error.ename}: {error.evalue}"
        assert "NotImplementedError" in error.evalue or "scaffold" in error.evalue
        # A message for the student, not a chain of tracebacks.
        assert "During handling of the above exception" not in "\n".join(error.traceback)


# --- the transformation on small notebooks -------------------------------------------------------

EXERCISE = '''class Model:
    def forward(self, x):
        y = x + 1
        ### BEGIN SOLUTION
        # HINT: square it.
        z = y ** 2
            # HINT: a hint anywhere in the block is kept, at the block's indentation.

        return z
        ### END SOLUTION'''


def test_scaffold_keeps_hints_and_indentation_and_drops_the_code():
    lines = make_student.scaffold_source(EXERCISE).split("\n")
    assert lines == [
        "class Model:",
        "    def forward(self, x):",
        "        y = x + 1",
        "        " + make_student.SCAFFOLD_COMMENT,
        "        # HINT: square it.",
        "        # HINT: a hint anywhere in the block is kept, at the block's indentation.",
        "        " + make_student.SCAFFOLD_RAISE,
    ]


def test_a_block_that_is_the_whole_body_still_compiles_and_raises():
    source = make_student.scaffold_source("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n")
    namespace = {}
    exec(compile(source, "cell", "exec"), namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_several_blocks_in_one_cell():
    source = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\n### BEGIN SOLUTION\nd = 4\n### END SOLUTION"
    result = make_student.scaffold_source(source)
    assert result.count("raise NotImplementedError") == 2
    assert "a = 1" in result and "c = 3" in result and "b = 2" not in result and "d = 4" not in result


@pytest.mark.parametrize("source", ["", "x = 1\n", "%matplotlib inline\nprint('### not a marker')\n\n"])
def test_cells_without_markers_are_unchanged(source):
    assert make_student.scaffold_source(source) == source


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "line 1: ### BEGIN SOLUTION is never closed"),
    ("x = 1\n### END SOLUTION", "line 2: ### END SOLUTION without a ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "line 2: .* cannot nest"),
    ("def f():\n    ### BEGIN SOLUTION\n    pass\n### END SOLUTION", "line 4: .* indented differently"),
    ("## BEGIN SOLUTION\nx = 1\n### END SOLUTION", "line 1: malformed marker"),
])
def test_bad_markers_are_refused_with_the_line(source, message):
    with pytest.raises(make_student.MarkerError, match=message):
        make_student.scaffold_source(source)


def small_lecture(exercise=EXERCISE):
    cell = new_code_cell(exercise, execution_count=3, outputs=[new_output("stream", text="ran\n")],
                         metadata={"tags": ["exercise"], "execution": {"shell.execute_reply": "2026-01-01"}})
    return new_notebook(cells=[new_markdown_cell("### BEGIN SOLUTION in prose"), cell],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def test_student_notebook_is_clean_and_leaves_the_lecture_alone():
    lecture = small_lecture()
    before = copy.deepcopy(lecture)
    student = make_student.student_notebook(lecture, "small.ipynb")
    assert lecture == before
    assert student.metadata == lecture.metadata
    assert student.cells[0] == lecture.cells[0]  # markdown is not touched
    cell = student.cells[1]
    assert cell.outputs == [] and cell.execution_count is None and cell.metadata == {"tags": ["exercise"]}
    assert "z = y ** 2" not in cell.source


def with_answer(lecture, tags=("instructor",)):
    answer = new_markdown_cell("**Model answer** · `99-discussion-1`\n\nThe secret answer is 42.",
                               metadata={"tags": list(tags), "question": {"anchor": "99-discussion-1", "cell": "x", "item": 1}})
    lecture.cells.insert(1, answer)
    return lecture


def test_instructor_cells_are_left_out():
    lecture = with_answer(small_lecture())
    student = make_student.student_notebook(lecture, "small.ipynb")
    assert len(student.cells) == len(lecture.cells) - 1
    assert not any("secret answer" in c.source for c in student.cells)


def test_an_untagged_model_answer_is_refused():
    lecture = with_answer(small_lecture(), tags=())
    with pytest.raises(make_student.MarkerError, match=r"small\.ipynb, cell 1 .* not tagged 'instructor'"):
        make_student.student_notebook(lecture, "small.ipynb")


def test_a_bad_cell_is_named_with_its_notebook(tmp_path):
    lecture = tmp_path / "bad.ipynb"
    nbformat.write(small_lecture("### BEGIN SOLUTION\nx = 1"), lecture)
    out = tmp_path / "students"
    with pytest.raises(SystemExit) as exit_info:
        make_student.main([str(lecture), "--out", str(out)])
    assert exit_info.value.code != 0
    assert re.search(r"bad\.ipynb, cell 1 \(id [\w-]+\), line 1: ### BEGIN SOLUTION is never closed", str(exit_info.value))
    assert not out.exists()  # nothing is written when any lecture is refused


def test_main_writes_a_student_copy(tmp_path):
    lecture = tmp_path / "small.ipynb"
    nbformat.write(small_lecture(), lecture)
    make_student.main([str(lecture), "--out", str(tmp_path / "students")])
    student = nbformat.read(tmp_path / "students" / "small.ipynb", as_version=4)
    assert student == make_student.student_notebook(nbformat.read(lecture, as_version=4), "small.ipynb")


def test_docstring_examples():
    assert doctest.testmod(make_student).failed == 0


def test_main_copies_the_figures_the_markdown_links_to(tmp_path):
    lectures = tmp_path / "lectures"
    (lectures / "figures").mkdir(parents=True)
    (lectures / "figures" / "method.svg").write_text("<svg/>")
    nb = small_lecture()
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("![a diagram](figures/method.svg)"))
    nbformat.write(nb, lectures / "small.ipynb")
    make_student.main([str(lectures / "small.ipynb"), "--out", str(tmp_path / "students")])
    assert (tmp_path / "students" / "figures" / "method.svg").read_text() == "<svg/>"
