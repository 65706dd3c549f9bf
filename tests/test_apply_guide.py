"""tools/issue18/apply_guide.py on lecture 09, written with its own prompts: they end up in the prompt
format, a second run changes nothing, and a prompt the lecture no longer asks stops the script."""
from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LECTURE_09 = ROOT / "lectures" / "09_beyond_still_images.ipynb"


def load_script():
    if "apply_guide" not in sys.modules:  # dataclasses look their module up while the class is made
        spec = importlib.util.spec_from_file_location("apply_guide", ROOT / "tools" / "issue18" / "apply_guide.py")
        sys.modules["apply_guide"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["apply_guide"])
    return sys.modules["apply_guide"]


def test_lecture_09_prompts_are_in_the_format_and_a_second_run_changes_nothing():
    script = load_script()
    once, errors = nbformat.read(LECTURE_09, as_version=4), []
    script.apply(once, "09", script.L09, errors)
    twice = copy.deepcopy(once)
    script.apply(twice, "09", script.L09, errors)
    assert not errors and nbformat.writes(once) == nbformat.writes(twice)
    prompts = [c for c in once.cells if c.cell_type == "markdown" and c.source.startswith(script.PROMPT_LEAD)]
    assert len(prompts) == 2 and all(c.source.endswith(script.PROMPT_TAIL) for c in prompts)


def test_a_missing_prompt_is_reported():
    script = load_script()
    nb, errors = nbformat.read(LECTURE_09, as_version=4), []
    nb.cells = [c for c in nb.cells if c.get("id") not in ("blank-predict", "neigh-md")]
    for cell in nb.cells:
        if cell.get("id") == "blank-md":
            cell.source = cell.source.split("**Predict, then run.**")[0].rstrip()
    script.apply(nb, "09", script.L09, errors)
    assert any("blank-md" in e for e in errors) and any("neigh-md" in e for e in errors)
