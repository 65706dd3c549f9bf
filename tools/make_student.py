"""Write the student copy of every lecture: each exercise solution replaced by a scaffold, and
the instructor's model answers left out.

In a lecture, a solution sits between two marker lines in a code cell, with its hints as
``# HINT:`` comments, by convention right after the opening marker::

    def rotate_all(images):
        ### BEGIN SOLUTION
        # HINT: torch.rot90 turns the spatial dimensions.
        B = images.shape[0]
        ...
        ### END SOLUTION

The student copy keeps the hints and replaces everything else from marker to marker, at the
markers' indentation, with a comment and a ``raise NotImplementedError``. The exercise check
in the next cell (``sslteach.checks``) turns that error into a message for the student. Keep
the ``def`` line outside the block: the ``raise`` then keeps the function body non-empty.

Model answers are for instructors only. Each one is a markdown cell tagged ``instructor`` (in
the cell's metadata ``tags``) that sits right after the question it answers, or right after
the code cell whose output a "Predict, then run" prompt asks about; its text starts with
``**Model answer**``. The student copy leaves every such cell out. A cell that starts with
``**Model answer**`` without the tag is refused (``MarkerError``), like a misspelt solution
marker: left alone, it would leak. ``tools/make_guide.py`` collects the same cells, with the
questions they answer, into ``instructor/GUIDE.md``.

The copy is a clean notebook: outputs, execution counts and run timings are cleared; the
notebook's metadata (kernel, language) is kept; the saved widget state of the cleared outputs is dropped.

Usage::

    python tools/make_student.py [--out students/] [lectures ...]

Without arguments, every ``lectures/*.ipynb`` is converted into ``students/``.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
from pathlib import Path

import nbformat

from sslteach.data.store import atomic_write

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END, HINT = "### BEGIN SOLUTION", "### END SOLUTION", "# HINT:"
INSTRUCTOR_TAG, ANSWER_LEAD = "instructor", "**Model answer**"
SCAFFOLD_COMMENT = "# YOUR CODE HERE: replace the raise below with your solution."
SCAFFOLD_RAISE = 'raise NotImplementedError("exercise not done yet: replace this line with your code")'


class MarkerError(ValueError):
    """A solution block whose markers are unbalanced, nested or misspelt."""


def indentation(line: str) -> str:
    """The whitespace a line starts with."""
    return line[: len(line) - len(line.lstrip())]


def marker(line: str) -> str | None:
    """Return ``BEGIN`` or ``END`` if ``line`` is a solution marker, else None.

    A line that mentions a marker without being exactly one (``## BEGIN SOLUTION``,
    ``### END SOLUTION here``) raises ``MarkerError``: left alone, it would leak the solution.
    """
    text = line.strip()
    if text in (BEGIN, END):
        return text
    if "BEGIN SOLUTION" in text.upper() or "END SOLUTION" in text.upper():
        raise MarkerError(f"malformed marker {text!r}: write {BEGIN!r} or {END!r} alone on its line")
    return None


def scaffold(block: list[str], indent: str) -> list[str]:
    """The lines that replace one solution block: a comment, the block's hints, a ``raise``.

    Parameters
    ----------
    block : list of str
        The lines between the markers (markers excluded).
    indent : str
        The markers' indentation; every scaffold line gets it, hints included.
    """
    hints = [indent + line.strip() for line in block if line.strip().startswith(HINT)]
    return [indent + SCAFFOLD_COMMENT, *hints, indent + SCAFFOLD_RAISE]


def scaffold_source(source: str) -> str:
    """Replace every solution block in a code cell's source by its scaffold.

    Parameters
    ----------
    source : str
        The cell's source. A cell without markers comes back unchanged.

    Returns
    -------
    str
        The source with each block, markers included, replaced by ``scaffold(...)``.

    Raises
    ------
    MarkerError
        On a marker without its partner, a block inside a block, an END indented
        differently from its BEGIN, or a misspelt marker; the message gives the line.

    Examples
    --------
    >>> print(scaffold_source('''def double(x):
    ...     ### BEGIN SOLUTION
    ...     # HINT: multiply.
    ...     return 2 * x
    ...     ### END SOLUTION'''))
    def double(x):
        # YOUR CODE HERE: replace the raise below with your solution.
        # HINT: multiply.
        raise NotImplementedError("exercise not done yet: replace this line with your code")
    """
    kept, block, begin, indent = [], None, 0, ""
    for number, line in enumerate(source.split("\n"), start=1):
        try:
            found = marker(line)
        except MarkerError as error:
            raise MarkerError(f"line {number}: {error}") from None
        if found == BEGIN:
            if block is not None:
                raise MarkerError(f"line {number}: {BEGIN} inside the block opened on line {begin}; blocks cannot nest")
            block, begin, indent = [], number, indentation(line)
        elif found == END:
            if block is None:
                raise MarkerError(f"line {number}: {END} without a {BEGIN} before it")
            if indentation(line) != indent:
                raise MarkerError(f"line {number}: {END} is indented differently from its {BEGIN} on line {begin}")
            kept += scaffold(block, indent)
            block = None
        elif block is not None:
            block.append(line)
        else:
            kept.append(line)
    if block is not None:
        raise MarkerError(f"line {begin}: {BEGIN} is never closed by {END}")
    return "\n".join(kept)


def is_instructor_cell(cell: nbformat.NotebookNode) -> bool:
    """True for a cell tagged ``instructor``: a model answer, left out of the student copy.

    Raises
    ------
    MarkerError
        For a cell that starts with ``**Model answer**`` but lacks the tag.
    """
    tagged = INSTRUCTOR_TAG in cell.get("metadata", {}).get("tags", [])
    if not tagged and cell.source.lstrip().startswith(ANSWER_LEAD):
        raise MarkerError(f"a cell starts with {ANSWER_LEAD!r} but is not tagged {INSTRUCTOR_TAG!r}: tag it, or it would reach the students")
    return tagged


def student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Return a clean student copy of a lecture, without its instructor cells; ``nb`` itself is
    not changed.

    Parameters
    ----------
    nb : NotebookNode
        The lecture, as read by ``nbformat.read``.
    name : str
        How to name the lecture in error messages (its path).

    Raises
    ------
    MarkerError
        If a code cell's markers are wrong, or a model answer is not tagged; the message names
        the notebook and the cell.
    """
    student = copy.deepcopy(nb)
    student.metadata.pop("widgets", None)  # saved state of the cleared outputs' widgets: dead weight
    kept = []
    for index, cell in enumerate(student.cells):  # index: the cell's place in the lecture, for messages
        try:
            if is_instructor_cell(cell):
                continue
            if cell.cell_type == "code":
                cell.source = scaffold_source(cell.source)
        except MarkerError as error:
            raise MarkerError(f"{name}, cell {index} (id {cell.get('id', '-')}), {error}") from None
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)  # timings of the run that made the outputs
        kept.append(cell)
    student.cells = kept
    return student


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    """Validate ``nb`` and write it to ``path`` atomically (never a half-written notebook)."""
    nbformat.validate(nb)
    with atomic_write(path) as f:
        f.write((nbformat.writes(nb) + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write student copies of the lectures: solutions replaced by scaffolds, model answers left out.")
    parser.add_argument("lectures", nargs="*", type=Path, help="notebooks to convert (default: every lectures/*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "students", help="output folder (default: students/)")
    args = parser.parse_args(argv)
    lectures = args.lectures or sorted((ROOT / "lectures").glob("*.ipynb"))
    if not lectures:
        parser.error(f"no notebooks in {ROOT / 'lectures'}")
    try:  # convert them all before writing any, so one bad cell leaves students/ as it was
        students = [student_notebook(nbformat.read(path, as_version=4), os.path.relpath(path)) for path in lectures]
    except MarkerError as error:
        sys.exit(f"make_student: {error}")
    for path, student in zip(lectures, students):
        write_notebook(student, args.out / path.name)
        print(f"wrote {os.path.relpath(args.out / path.name)}")
    copy_figures(sorted({path.parent for path in lectures}), args.out)


def copy_figures(folders: list[Path], out: Path) -> None:
    """Copy each lecture folder's ``figures/`` (the diagrams the markdown shows as ``figures/<name>.svg``)
    next to the student copies, so that the same relative links work there."""
    for folder in folders:
        if (folder / "figures").is_dir() and (folder / "figures").resolve() != (out / "figures").resolve():
            shutil.copytree(folder / "figures", out / "figures", dirs_exist_ok=True)
            print(f"copied {os.path.relpath(folder / 'figures')} to {os.path.relpath(out / 'figures')}")


if __name__ == "__main__":
    main()
