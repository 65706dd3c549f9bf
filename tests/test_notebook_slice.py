"""tools/notebook_slice.py: which cells a few cells of a notebook need, found from their names.

The student-copy test and the browser test run only such slices of the lectures (nbval runs each
lecture whole), so a slice that drops a cell it needs, or keeps the whole notebook, would show
here first.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers import load_tool

ROOT = Path(__file__).resolve().parents[1]
notebook_slice = load_tool("notebook_slice")


def notebook(*sources: str):
    """A notebook of code cells, with a markdown cell first (so cell indices are not code indices)."""
    return new_notebook(cells=[new_markdown_cell("# title")] + [new_code_cell(s) for s in sources])


def test_names_defined_changed_and_used():
    names = notebook_slice.cell_names(
        "%matplotlib inline\n"
        "import torch\n"
        "from sslteach.data import load as load_data\n"
        "net = Net(width)\n"
        "net.load_state_dict(state)\n"
        "results['a'] = score(net)\n"
        "torch.manual_seed(0)\n"
        "for epoch in range(3):\n"
        "    history.append(epoch)\n"
        "def f(x, scale=factor):\n"
        "    y = x * scale\n"
        "    return y + offset\n",
        modules={"torch"},
    )
    assert names.defines == {"torch", "load_data", "net", "f"}
    assert names.changes == {"results", "epoch", "history"}  # not torch (a module), not net (defined here)
    # net and torch are bound here before they are read; inside f, x, y and scale are its own,
    # factor and offset come from the notebook; epoch is bound only if the loop runs (a change),
    # and read only inside the loop, which binds it (not a use).
    assert names.uses == {"Net", "width", "state", "results", "score", "range", "history",
                          "factor", "offset"}


def test_a_slice_follows_names_back_and_leaves_the_rest():
    nb = notebook(
        "import torch\ndata = torch.arange(10)",      # 1: needed (data)
        "expensive = train_for_an_hour(data)",         # 2: not needed by the widget
        "scale = 2",                                   # 3: overwritten before use: not needed
        "scale = 3\nmodel = lambda x: x * scale",      # 4: needed
        "model.calibrated = True",                     # 5: changes model: needed
        "print(expensive)",                            # 6: not needed
        "show(model, data)",                           # 7: the wanted cell
        "after = model(data)",                         # 8: after the wanted cell
    )
    assert notebook_slice.cells_needed(nb, [7]) == [1, 4, 5, 7]
    assert notebook_slice.cells_needed(nb, [6, 7]) == [1, 2, 4, 5, 6, 7]


def test_a_definition_under_a_condition_keeps_the_earlier_one():
    nb = notebook("x = 1", "if flag:\n    x = 2", "flag = True", "print(x)")
    # Cell 2 may not bind x, so cell 1 is kept; cell 2 reads flag, but flag is bound only after it.
    assert notebook_slice.cells_needed(nb, [4]) == [1, 2, 4]


def test_comprehension_and_loop_variables_are_not_needed_from_other_cells():
    names = notebook_slice.cell_names(
        "best = {name: max(v) for name, v in results.items() if v}\n"
        "ok = all(c > n for c, n in zip(a, b))\n"
        "for key, value in pairs:\n"
        "    table[key] = f(value, scale)\n"
        "else:\n"
        "    print(key)\n"
        "total = sum((y := x) for x in xs)\n")
    # A comprehension's variables are its own (Python 3): not bound here, not read from elsewhere;
    # := inside one binds out here. A loop's body reads its variables from the loop itself; the
    # else branch may run without them (an empty loop), so it reads key from elsewhere.
    assert names.defines == {"best", "ok", "total", "y"}
    assert names.changes == {"key", "value", "table"}
    assert names.uses == {"results", "max", "all", "zip", "a", "b", "pairs", "table", "f", "scale",
                          "print", "key", "sum", "xs"}
    # So a cell that loops over `name` does not need the cell whose comprehension used `name`.
    nb = notebook("results = train_for_an_hour()",
                  "best = {name: max(v) for name, v in results.items()}",
                  "for name in ('a', 'b'):\n    show(name)")
    assert notebook_slice.cells_needed(nb, [3]) == [3]


def test_a_wanted_cell_must_be_code():
    with pytest.raises(ValueError, match=r"not code cells: \[0\]"):
        notebook_slice.cells_needed(notebook("x = 1"), [0])


def widget_output(model_id):
    return new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": model_id, "version_major": 2, "version_minor": 0},
        "text/plain": "VBox()"})


def test_widget_cells_are_those_whose_widget_holds_a_control():
    nb = notebook("progress()", "explorer()", "plain()")
    nb.cells[1].outputs = [widget_output("bar")]        # a progress bar: nothing to move
    nb.cells[2].outputs = [widget_output("box")]        # a box holding a slider, two levels down
    state = {
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_fill"]}},
        "fill": {"model_name": "FloatProgressModel", "state": {}},
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_row"]}},
        "row": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_image", "IPY_MODEL_slider"]}},
        "image": {"model_name": "ImageModel", "state": {}},
        "slider": {"model_name": "IntSliderModel", "state": {}},
    }
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    assert notebook_slice.widget_cells(nb) == [2]


@pytest.mark.parametrize("lecture", sorted((ROOT / "lectures").glob("*.ipynb")), ids=lambda p: p.stem)
def test_lecture_slices_are_small(lecture):
    """The widgets and exercise checks of a lecture need a part of it, not the whole lecture
    (which nbval runs already); the slices of every lecture are below two thirds of its code."""
    nb = nbformat.read(lecture, as_version=4)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    for wanted in [notebook_slice.widget_cells(nb),
                   [i + 1 for i in code if "### BEGIN SOLUTION" in nb.cells[i].source]]:
        wanted = [next(j for j in code if j >= i) for i in wanted]
        if wanted:
            assert len(notebook_slice.cells_needed(nb, wanted)) <= 2 * len(code) / 3


def test_command_line(capsys):
    path = ROOT / "lectures" / "04_rotation.ipynb"
    nb = json.loads(path.read_text())
    notebook_slice.main([str(path)])
    wanted = notebook_slice.widget_cells(nb)
    assert capsys.readouterr().out == f"wanted {wanted}: run {notebook_slice.cells_needed(nb, wanted)}\n"
