"""tools/issue18/apply_data_prediction.py: the two sections land before lecture 01's discussion,
once however often the script runs, and a missing anchor stops it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("apply_data_prediction", ROOT / "tools" / "issue18" / "apply_data_prediction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sections_go_before_the_discussion_once(tmp_path):
    script = load_script()
    once = script.apply()
    ids = [c.get("id") for c in once.cells]
    new = [cell_id for cell_id, _, _ in script.NEW_CELLS]
    start = ids.index(new[0])
    assert ids[start:start + len(new)] + [ids[start + len(new)]] == new + [script.DISCUSSION_CELL]
    assert all(c.execution_count is None and not c.outputs for c in once.cells if c.get("id") in new and c.cell_type == "code")
    nbformat.validate(once)
    path = tmp_path / "01.ipynb"
    path.write_text(nbformat.writes(once))
    twice = script.apply(path)
    assert nbformat.writes(twice) == nbformat.writes(once)
    assert once.cells[0].source.count("| 12. Inpainting") == 1 and once.cells[0].source.count("6. describe") == 1


def test_a_missing_anchor_stops_the_script(tmp_path):
    script = load_script()
    nb = nbformat.read(script.LECTURE, as_version=4)
    nb.cells = [c for c in nb.cells if c.get("id") != script.DISCUSSION_CELL]
    path = tmp_path / "01.ipynb"
    path.write_text(nbformat.writes(nb))
    with pytest.raises(SystemExit, match="Discussion"):
        script.apply(path)
