"""Write the instructor's guide, ``instructor/GUIDE.md``: every question the lectures ask, with its
model answer, one section per lecture.

The answers live in the lectures themselves, so that an instructor meets each one in place and
a change to a lecture and to its answers is one change. A model answer is a markdown cell
tagged ``instructor`` whose text starts with ``**Model answer**``; its metadata says which
question it answers::

    "metadata": {
      "tags": ["instructor"],
      "question": {"anchor": "05-discussion-3", "cell": "143e9334", "item": 3}
    }

``anchor`` is the question's stable name (lecture, kind, number), used as the link target in
the guide; ``cell`` is the id of the cell that asks. The question is

* ``item: n``: the n-th numbered item of that cell's discussion list;
* ``quote: "..."``: that sentence of the cell (a question inside a paragraph, such as a
  widget's "Try it");
* neither: the whole cell (a "Predict, then run" prompt, a cell that starts with
  ``**Predict, then run.**``).

An answer cell sits right after the cell that asks, or, for a prompt or a widget's question,
right after the code cell whose output answers it. ``tools/make_student.py`` leaves every
instructor cell out of the student copies.

The guide is generated, never edited: rerun this after changing a lecture's questions or
answers. The output depends only on the lectures (no dates, no paths of this machine), so the
same lectures always give the same file; ``--check`` exits non-zero when the file is stale.

Usage::

    python tools/make_guide.py [--out instructor/GUIDE.md] [--check] [lectures ...]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR_TAG, ANSWER_LEAD, PROMPT_LEAD = "instructor", "**Model answer**", "**Predict, then run.**"
KINDS = {"predict": "Predict, then run", "discussion": "Discussion question", "question": "Question in the lecture"}
ITEM = re.compile(r"^\s*(\d+)\.\s+(.*)$")


class GuideError(ValueError):
    """An answer cell that points at a question the lecture does not have."""


def is_instructor(cell) -> bool:
    return INSTRUCTOR_TAG in cell.get("metadata", {}).get("tags", [])


def is_prompt(cell) -> bool:
    """A "Predict, then run" prompt: a markdown cell that starts with the bold lead-in."""
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(PROMPT_LEAD)


def discussion_items(source: str) -> dict[int, str]:
    """The numbered items of a cell's discussion list: {number: text}.

    Only the list after a ``Discussion`` heading counts when the cell has one (a cell may open
    with other material, such as the papers' numbers). An item runs until the next item, a blank
    line or a heading.

    >>> discussion_items("## The numbers\\n\\n1. not a question\\n\\n## Discussion\\n\\n1. Why?\\n   Say how.\\n2. How?")
    {1: 'Why? Say how.', 2: 'How?'}
    """
    heading = re.search(r"^#+\s*Discussion.*$", source, re.M)
    lines = source[heading.end():].split("\n") if heading else source.split("\n")
    items, current = {}, None
    for line in lines:
        match = ITEM.match(line)
        if match:
            current = int(match.group(1))
            items[current] = match.group(2).strip()
        elif current is not None and line.strip() and not line.lstrip().startswith("#"):
            items[current] += " " + line.strip()
        else:
            current = None
    return items


def discussion_cells(nb) -> list:
    """The cells that hold a lecture's discussion questions (a ``Discussion`` heading and a list)."""
    return [c for c in nb.cells if c.cell_type == "markdown" and not is_instructor(c)
            and re.search(r"^#+\s*Discussion", c.source, re.M) and discussion_items(c.source)]


def question_text(nb, question: dict) -> str:
    """The text of the question an answer cell points at (its metadata ``question``).

    Raises
    ------
    GuideError
        If the cell, the item or the quoted sentence is not in the lecture.
    """
    cells = {c.get("id"): c for c in nb.cells}
    cell = cells.get(question.get("cell"))
    if cell is None:
        raise GuideError(f"{question.get('anchor')}: no cell with id {question.get('cell')!r}")
    if "item" in question:
        items = discussion_items(cell.source)
        if question["item"] not in items:
            raise GuideError(f"{question['anchor']}: cell {cell.id} has no discussion item {question['item']}")
        return items[question["item"]]
    if "quote" in question:
        if question["quote"] not in cell.source:
            raise GuideError(f"{question['anchor']}: cell {cell.id} no longer says {question['quote']!r}")
        return question["quote"]
    return cell.source.strip()


def answer_text(cell) -> str:
    """An answer cell's text without its first paragraph (the ``**Model answer**`` line)."""
    source = cell.source.strip()
    if not source.startswith(ANSWER_LEAD):
        raise GuideError(f"instructor cell {cell.get('id')} does not start with {ANSWER_LEAD!r}")
    _, _, rest = source.partition("\n\n")
    return rest.strip()


def answers(nb) -> list[tuple[dict, str, str]]:
    """(question metadata, question text, answer text) of every answer cell, in lecture order."""
    found = []
    for cell in nb.cells:
        if is_instructor(cell):
            question = cell.get("metadata", {}).get("question")
            if not question or "anchor" not in question:
                raise GuideError(f"instructor cell {cell.get('id')} says no question (metadata 'question')")
            found.append((question, question_text(nb, question), answer_text(cell)))
    return found


def title(nb) -> str:
    heading = re.search(r"^#\s+(.+)$", nb.cells[0].source, re.M)
    return heading.group(1).strip() if heading else "(untitled)"


def kind(anchor: str) -> str:
    """'05-discussion-3' -> 'Discussion question 3'; '05-predict-1' -> 'Predict, then run 1'."""
    parts = anchor.split("-")
    return f"{KINDS.get(parts[1], parts[1])} {parts[2]}" if len(parts) == 3 else anchor


def quoted(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.split("\n"))


def guide_markdown(lectures: list[Path]) -> str:
    """The whole guide for ``lectures`` (in the given order), as one markdown string."""
    sections, summary = [], []
    for path in lectures:
        nb = nbformat.read(path, as_version=4)
        found = answers(nb)
        link = f"../lectures/{path.name}"
        counts = {k: sum(q["anchor"].split("-")[1] == k for q, _, _ in found) for k in KINDS}
        summary.append(f"| [{path.stem}](#{path.stem.replace('_', '-')}) | {counts['predict']} | "
                       f"{counts['discussion']} | {counts['question']} |")
        lines = [f'<a id="{path.stem.replace("_", "-")}"></a>', f"## {path.stem[:2]} · {title(nb)}", "",
                 f"Lecture: [{path.name}]({link})", ""]
        for question, asked, answer in found:
            anchor = question["anchor"]
            lines += [f'<a id="{anchor}"></a>', f"### {anchor} · {kind(anchor)}", "", quoted(asked), "",
                      answer, ""]
        sections.append("\n".join(lines))
    head = [
        "# Instructor's guide: model answers",
        "",
        "Every question the lectures ask the students, with a model answer: the \"Predict, then run\"",
        "prompts, the questions that go with a widget or an exercise, and the closing discussion",
        "questions. Each answer is also in its lecture, in a cell tagged `instructor` right after the",
        "question (or after the cell whose output answers a prompt); `make student` leaves those cells",
        "out of the student copies. Answers that depend on a measured number say where to read it",
        "rather than quote it: the numbers are those of your run.",
        "",
        "Generated by `python tools/make_guide.py` (`make guide`) from `lectures/*.ipynb`: do not edit",
        "this file; edit the answer cells (or the script that wrote them) and regenerate it.",
        "",
        "| lecture | predict, then run | discussion | other questions |",
        "|---|---:|---:|---:|",
        *summary,
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(sections).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write instructor/GUIDE.md from the lectures' model-answer cells.")
    parser.add_argument("lectures", nargs="*", type=Path, help="notebooks (default: every lectures/*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "instructor" / "GUIDE.md", help="the guide to write")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the guide is not up to date")
    args = parser.parse_args(argv)
    lectures = sorted(args.lectures) or sorted((ROOT / "lectures").glob("*.ipynb"))
    try:
        text = guide_markdown(lectures)
    except GuideError as error:
        sys.exit(f"make_guide: {error}")
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            sys.exit(f"make_guide: {os.path.relpath(args.out)} is not up to date: run python tools/make_guide.py")
        print(f"{os.path.relpath(args.out)} is up to date")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
