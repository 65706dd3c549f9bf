"""Issue 16, items 1 and 2: the headline table (pooled final features, three pretraining seeds)
and the course's effect rule, in lectures 00 and 08.

    python tools/issue16/apply_headline.py            # edits lectures/*.ipynb in place

New cells have readable ids and go after a cell found by id; a second run replaces their
sources instead of adding more, and replaces edited cells' sources only where the old text is
still there. Outputs are not read or changed: execute the two lectures afterwards.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from headline_cells import EDITS, NEW_CELLS  # noqa: E402  (the cells' text, kept apart from the mechanics)


def make_cell(kind: str, cell_id: str, source: str):
    cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
    cell["id"] = cell_id
    return cell


def apply(notebook: Path) -> bool:
    nb = nbformat.read(notebook, as_version=4)
    by_id = {cell["id"]: cell for cell in nb.cells}
    changed = False
    for cell_id, old, new in EDITS.get(notebook.stem, []):
        source = by_id[cell_id]["source"]
        if new in source:
            continue
        if source.count(old) != 1:
            raise SystemExit(f"{notebook.name} {cell_id}: expected the old text once, found {source.count(old)}: {old[:60]!r}")
        by_id[cell_id]["source"] = source.replace(old, new)
        changed = True
    for after, cells in NEW_CELLS.get(notebook.stem, []):
        for kind, cell_id, source in cells:
            if cell_id in by_id:
                if by_id[cell_id]["source"] != source:
                    by_id[cell_id]["source"] = source
                    changed = True
            else:
                position = [c["id"] for c in nb.cells].index(after) + 1
                nb.cells.insert(position, make_cell(kind, cell_id, source))
                by_id[cell_id] = nb.cells[position]
                changed = True
            after = cell_id
    if changed:
        nbformat.write(nb, notebook)
    return changed


def main() -> None:
    for stem in sorted(set(EDITS) | set(NEW_CELLS)):
        notebook = ROOT / "lectures" / f"{stem}.ipynb"
        print(f"{notebook.name}: {'changed' if apply(notebook) else 'unchanged'}")


if __name__ == "__main__":
    main()
