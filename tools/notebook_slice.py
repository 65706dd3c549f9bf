"""Which cells of a notebook a few of its cells need: a backward slice by names.

The tests execute every lecture top to bottom once (nbval). The other checks of a lecture (the
student copy's exercises, the widgets in a browser) need only a few cells, and the cells those
read from: running just those keeps the suite to one full execution per lecture.

    python tools/notebook_slice.py lectures/04_rotation.ipynb 23    # what cell 23 needs

The slice is found from the source alone, conservatively:

* a cell *defines* the names it binds at its top level (assignments, imports, ``def``,
  ``class``, loop and ``with`` targets), and it *changes* a name when it assigns to an attribute
  or item of it (``results["rotation"] = ...``) or calls a method of it as a statement
  (``net.load_state_dict(...)``; modules excepted: ``torch.manual_seed(0)`` changes no name);
* a cell *uses* every name it reads, inside its functions too, except the variables of a
  comprehension (its own scope) and a ``for`` loop's variables read in that loop's body;
* walking back from the wanted cells, a cell is kept when it defines or changes a name that a kept
  cell after it uses; its own names are then needed too. A plain top-level assignment satisfies
  the need (earlier definitions are not kept for it); a change does not.

What cannot be seen from names (a cell that changes an object through a function call, state
kept in files or in a module) is not followed. A slice that misses a cell fails loudly when it
runs (a ``NameError``); it never makes a failing cell pass.
"""
from __future__ import annotations

import argparse
import ast
import json
from dataclasses import dataclass, field

# Controls a student moves; a widget whose model tree holds one of these is "interactive".
CONTROL_MODELS = {
    "ToggleButtonsModel", "ToggleButtonModel", "IntSliderModel", "FloatSliderModel",
    "FloatLogSliderModel", "SelectionSliderModel", "IntRangeSliderModel", "FloatRangeSliderModel",
    "DropdownModel", "ButtonModel", "CheckboxModel", "RadioButtonsModel", "SelectModel",
    "TextModel", "IntTextModel", "FloatTextModel", "PlayModel",
}


COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class CellNames:
    defines: set[str] = field(default_factory=set)   # bound at the top level, unconditionally
    changes: set[str] = field(default_factory=set)   # bound conditionally, or changed in place
    uses: set[str] = field(default_factory=set)


def python_source(source: str) -> str:
    """The cell's source without IPython's magics and shell escapes (``%...``, ``!...``)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.split("\n"))


def _root_name(node: ast.AST) -> str | None:
    """``a`` for ``a``, ``a.b``, ``a[0].c``, ``a.b(x).c``; None for anything else."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _bound_names(node: ast.AST) -> set[str]:
    """Names a statement binds in its own scope (not inside the functions or classes it defines)."""
    names = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in current.names}
        elif isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(current.name)
            continue  # its body is another scope
        elif isinstance(current, ast.Lambda):
            continue
        elif isinstance(current, COMPREHENSIONS):
            # Its loop variables are its own (Python 3); only := inside it binds out here.
            names |= {n.target.id for n in ast.walk(current) if isinstance(n, ast.NamedExpr)}
            continue
        elif isinstance(current, ast.Name) and isinstance(current.ctx, (ast.Store, ast.Del)):
            names.add(current.id)
        stack.extend(ast.iter_child_nodes(current))
    return names


def _free_names(node: ast.AST) -> set[str]:
    """Names read in ``node`` that are not local to a function or lambda inside it."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = node.args
        parameters = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
        parameters |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
        body = node.body if isinstance(node.body, list) else [node.body]
        local = parameters | set().union(*(_bound_names(statement) for statement in body))
        free = set().union(*(_free_names(statement) for statement in body)) - local
        # Defaults and decorators are read where the function is defined.
        outer = arguments.defaults + [d for d in arguments.kw_defaults if d is not None]
        outer += getattr(node, "decorator_list", [])
        return free | set().union(*(_free_names(expression) for expression in outer))
    if isinstance(node, COMPREHENSIONS):
        # The first iterable is read outside; every later part sees the loop variables.
        first, *rest = node.generators
        local = set().union(*(_bound_names(g.target) for g in node.generators))
        inner = [first.target, *first.ifs, *rest]
        inner += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        return _free_names(first.iter) | set().union(*(_free_names(part) for part in inner)) - local
    if isinstance(node, (ast.For, ast.AsyncFor)):
        # The body runs only with the loop variables bound; ``else`` may run with none bound.
        body = set().union(*(_free_names(statement) for statement in node.body))
        return _free_names(node.iter) | _free_names(node.target) | (body - _bound_names(node.target)) \
            | set().union(*(_free_names(statement) for statement in node.orelse))
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    return set().union(*(_free_names(child) for child in ast.iter_child_nodes(node)))


def _changed_names(statement: ast.stmt) -> set[str]:
    """Names whose objects a statement changes in place: ``a.b = ...``, ``a[i] += ...``,
    ``del a[i]``, and ``a.method(...)`` as a statement; also inside its loops and branches, not
    inside the functions it defines."""
    changed = set()
    stack = [statement]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        else:
            targets = []
        for target in targets:
            for element in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if isinstance(element, (ast.Attribute, ast.Subscript)):
                    changed.add(_root_name(element))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, ast.Attribute):
            changed.add(_root_name(node.value.func.value))
        stack.extend(ast.iter_child_nodes(node))
    return changed - {None}


def cell_names(source: str, modules: set[str] = frozenset()) -> CellNames:
    """What one cell defines, changes and uses; ``modules`` are names bound by imports anywhere.

    A name the cell binds before reading it (``scale = 3`` then ``f = lambda x: x * scale``) is
    not a use: the cell does not need an earlier cell for it.
    """
    tree = ast.parse(python_source(source))
    names = CellNames()
    for statement in tree.body:
        names.uses |= _free_names(statement) - names.defines
        bound = _bound_names(statement)
        unconditional = isinstance(statement, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom,
                                               ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        (names.defines if unconditional else names.changes).update(bound)
        names.changes |= _changed_names(statement) - modules
    names.changes -= names.defines
    return names


def code_sources(nb: dict) -> dict[int, str]:
    """{cell index: source} of the code cells of a notebook (as nbformat or plain JSON)."""
    sources = {}
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            source = cell["source"]
            sources[index] = source if isinstance(source, str) else "".join(source)
    return sources


def cells_needed(nb: dict, wanted: list[int]) -> list[int]:
    """The indices of the cells to run, in order, so that the ``wanted`` code cells can run."""
    sources = code_sources(nb)
    unknown = set(wanted) - set(sources)
    if unknown:
        raise ValueError(f"not code cells: {sorted(unknown)}")
    modules = set()
    for source in sources.values():
        tree = ast.parse(python_source(source))
        for statement in tree.body:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                modules |= _bound_names(statement)
    names = {index: cell_names(source, modules) for index, source in sources.items()}
    kept, needed = set(), set()
    for index in sorted(sources, reverse=True):
        cell = names[index]
        if index in wanted or (cell.defines | cell.changes) & needed:
            kept.add(index)
            needed -= cell.defines
            needed |= cell.uses
    return sorted(kept)


def widget_cells(nb: dict) -> list[int]:
    """Code cells whose stored outputs show a widget with a control (a slider, a button, ...).

    Read from the widget state the notebook stores (metadata.widgets), which JupyterLab and
    nbclient write with the outputs.
    """
    state = nb.get("metadata", {}).get("widgets", {}) \
              .get("application/vnd.jupyter.widget-state+json", {}).get("state", {})

    def has_control(model_id: str, seen: set[str]) -> bool:
        if model_id in seen or model_id not in state:
            return False
        seen.add(model_id)
        model = state[model_id]
        if model.get("model_name") in CONTROL_MODELS:
            return True
        text = json.dumps(model.get("state", {}))
        children = [part.split('"')[0] for part in text.split("IPY_MODEL_")[1:]]
        return any(has_control(child, seen) for child in children)

    cells = []
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view and has_control(view["model_id"], set()):
                cells.append(index)
                break
    return cells


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("cells", nargs="*", type=int,
                        help="cell indices (default: the cells that show a widget with a control)")
    args = parser.parse_args(argv)
    with open(args.notebook) as f:
        nb = json.load(f)
    wanted = args.cells or widget_cells(nb)
    print(f"wanted {wanted}: run {cells_needed(nb, wanted)}")


if __name__ == "__main__":
    main()
