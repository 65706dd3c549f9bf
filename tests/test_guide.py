"""Tests of tools/make_guide.py, which collects the lectures' model answers into instructor/GUIDE.md.

The answers themselves are checked against the lectures in tests/test_lecture_structure.py
(every question has one) and tests/test_student.py (none reaches a student copy).
"""
from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import load_tool

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
make_guide = load_tool("make_guide")


def test_the_committed_guide_is_up_to_date():
    """instructor/GUIDE.md is what the lectures' answer cells give: regenerate it after changing them."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_guide.py"), "--check"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_guide_is_deterministic_and_names_every_anchor():
    first, second = make_guide.guide_markdown(LECTURES), make_guide.guide_markdown(LECTURES)
    assert first == second
    for path in LECTURES:
        import nbformat
        for question, _, _ in make_guide.answers(nbformat.read(path, as_version=4)):
            assert f'<a id="{question["anchor"]}"></a>' in first


def small_lecture(question):
    discussion = new_markdown_cell("## Discussion\n\n1. Why?\n2. How,\n   exactly?", id="disc")
    prompt = new_markdown_cell("**Predict, then run.** Up or down?", id="prompt")
    answer = new_markdown_cell("**Model answer** · `99-x`\n\nBecause.", id="answer-99",
                               metadata={"tags": ["instructor"], "question": question})
    return new_notebook(cells=[new_markdown_cell("# Small\n"), prompt, new_code_cell("1"), discussion, answer])


@pytest.mark.parametrize("question, text", [
    ({"anchor": "99-discussion-2", "cell": "disc", "item": 2}, "How, exactly?"),
    ({"anchor": "99-predict-1", "cell": "prompt"}, "**Predict, then run.** Up or down?"),
    ({"anchor": "99-question-1", "cell": "disc", "quote": "1. Why?"}, "1. Why?"),
])
def test_questions_are_found_by_item_whole_cell_or_quote(question, text):
    [(found, asked, answer)] = make_guide.answers(small_lecture(question))
    assert found == question and asked == text and answer == "Because."


@pytest.mark.parametrize("question, message", [
    ({"anchor": "99-discussion-3", "cell": "disc", "item": 3}, "no discussion item 3"),
    ({"anchor": "99-predict-1", "cell": "gone"}, "no cell with id 'gone'"),
    ({"anchor": "99-question-1", "cell": "disc", "quote": "Who?"}, "no longer says 'Who\\?'"),
])
def test_an_answer_to_a_missing_question_is_refused(question, message):
    with pytest.raises(make_guide.GuideError, match=message):
        make_guide.answers(small_lecture(question))


def test_main_writes_and_checks(tmp_path):
    import nbformat
    lecture = tmp_path / "99_small.ipynb"
    nbformat.write(small_lecture({"anchor": "99-discussion-1", "cell": "disc", "item": 1}), lecture)
    out = tmp_path / "GUIDE.md"
    make_guide.main([str(lecture), "--out", str(out)])
    assert "### 99-discussion-1 · Discussion question 1" in out.read_text() and "> Why?" in out.read_text()
    make_guide.main([str(lecture), "--out", str(out), "--check"])
    out.write_text("stale")
    with pytest.raises(SystemExit):
        make_guide.main([str(lecture), "--out", str(out), "--check"])


def test_docstring_examples():
    assert doctest.testmod(make_guide).failed == 0
