"""Issue 18, item 5 ("Figures that read"): the lecture cells that draw those figures.

    python tools/issue18/apply_figures.py            # edits lectures/*.ipynb in place

The figures drawn by the package (lecture 07's plane and sweeps, lecture 08's label efficiency)
are fixed in ``sslteach``; this script changes the cells that draw the others, or that must
pass the package a new argument:

* 01 saturation by class: the legend moves outside the axes (inside, it hid the bars of the
  greyest classes, which the prose discusses).
* 02 patch pairs, 03 puzzles and 03 confidently wrong puzzles: four examples per row instead of
  eight, and in lecture 03 each image with its tiles right below it (``show_rows``); the
  one sentence that pointed at "the bottom row" says where the puzzles are now.
* 05 NPID curves, 06 PIRL curves: the epoch boundaries are marked, with one paragraph each on why
  the curves step there (each image's bank entry is rewritten once per epoch).
* 07 sweeps: the kNN axis gets the number of test images, for its error bars.

Each edit is (cell id, old text, new text): the old text must occur exactly once in that cell,
or the new text already (then the edit was applied before and is skipped); anything else stops
the script before a notebook is written. New cells have readable ids and are put after a cell
found by id; a second run replaces them instead of adding more. Outputs are not read or changed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]

EDITS = {
    "01_colorization": [
        ("e4d2287d", 'fig, ax = plt.subplots(figsize=(6.5, 3.2))', 'fig, ax = plt.subplots(figsize=(8, 3.2))'),
        ("e4d2287d", 'ax.legend(loc="lower right", fontsize=8)',
         'ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # outside: inside, it hid the greyest classes'),
    ],
    "02_context_prediction": [
        ("db62d4d1", "show_images(side_by_side, [NEIGHBOUR_NAMES[k] for k in labels], ncols=8, size=1.4)",
         "show_images(side_by_side, [NEIGHBOUR_NAMES[k] for k in labels], ncols=4, size=2.2)  # 8-px patches need the room"),
    ],
    "03_jigsaw": [
        ("b7c1a6d2", "from sslteach.plots import show_images\n", "from sslteach.plots import show_rows\n"),
        ("b7c1a6d2",
         'show_images(examples, [test_set.classes[i] for i in test_set.labels[:8]], ncols=8, size=1.5, suptitle="the images")\n'
         'show_images(assemble(raster), ncols=8, size=1.5, suptitle="their tiles, in place")\n'
         'show_images(assemble(network_view).clamp(0, 1), ncols=8, size=1.5, suptitle="normalised and shuffled: the puzzle")',
         'show_rows({"the image": examples, "its tiles,\\nin place": assemble(raster),\n'
         '           "normalised\\nand shuffled:\\nthe puzzle": assemble(network_view).clamp(0, 1)},\n'
         '          size=1.8, titles=[test_set.classes[i] for i in test_set.labels[:8]], ncols=4)'),
        ("f8bc8c59", "Try to solve a few of the bottom row in your head.",
         "Try to solve a few of the puzzles (the third row of each group) in your head."),
        ("ac29636a",
         'show_images(test_set.images[worst], titles, ncols=8, size=1.5, suptitle="most confidently wrong: the images")\n'
         'show_images(assemble(as_placed), ncols=8, size=1.5, suptitle="the network\'s arrangement")',
         'show_rows({"most\\nconfidently\\nwrong": test_set.images[worst], "the network\'s\\narrangement": assemble(as_placed)},\n'
         '          size=1.8, titles=titles, ncols=4)'),
    ],
    "05_clustering_and_instances": [
        ("3d181aee", "import math\n",
         "import math\n\nfrom sslteach.loop import steps_per_epoch\nfrom sslteach.plots import mark_epochs\n"),
        ("3d181aee",
         'right.set(xlabel="step", ylabel="kNN accuracy (%)", title="the weighted kNN monitor (bank entries as neighbours)")\n',
         'right.set(xlabel="step", ylabel="kNN accuracy (%)", title="the weighted kNN monitor (bank entries as neighbours)")\n'
         'epoch = steps_per_epoch(pretrained["npid"])  # each image is drawn once per epoch, in a new shuffled order\n'
         'for ax in (left, right):\n'
         '    mark_epochs(ax, epoch, len(npid["loss"]))\n'),
        ("3d181aee",
         'f"-> {100 * monitor[\'accuracy\'][-1]:.1f}% at step {monitor[\'step\'][-1]}")',
         'f"-> {100 * monitor[\'accuracy\'][-1]:.1f}% at step {monitor[\'step\'][-1]}")\n'
         'for boundary in [int(e * epoch) for e in range(1, math.ceil(len(npid["loss"]) / epoch))] if epoch else []:\n'
         '    before, after = npid["loss"][boundary - 20:boundary], npid["loss"][boundary + 1:boundary + 21]  # step `boundary` mixes both\n'
         '    print(f"epoch boundary at step {boundary}: mean loss {sum(before) / len(before):.2f} over the 20 steps before, "\n'
         '          f"{sum(after) / len(after):.2f} over the 20 after")'),
    ],
    "06_contrastive": [
        ("1d4a96cc", 'history = pirl_ckpt["history"]\n',
         'from sslteach.loop import steps_per_epoch\n\nhistory = pirl_ckpt["history"]\n'),
        ("1d4a96cc", 'title="PIRL")',
         'title="PIRL",\n             steps_per_epoch=steps_per_epoch(pirl_ckpt))'),
    ],
    "07_alignment_uniformity": [
        ("c7b50a59", "plot_sweeps(swept)", "plot_sweeps(swept, test_images=len(random_features.test_labels))"),
    ],
}

NPID_STEPS = (
    "**Why the loss falls in steps.** The dotted lines mark the epoch boundaries, and the cell above prints the "
    "loss on either side of each. The training loop draws every image once per epoch, in a new shuffled order, "
    "so an image drawn in the first epoch still has the untrained encoder's feature of it as its bank entry, and "
    "an image drawn in the second has an entry rewritten exactly once by the network in training. At a boundary, the "
    "positive $v_i$ of every image in the batch becomes an entry closer to what the network now says about that "
    "image, all at once, and $-\\log P(i \\mid f_i)$ drops. The steps are the memory bank at work, not an artefact "
    "of the plot: drawn at random with replacement instead, the images in a batch would have entries of every age, "
    "and the curve would fall without steps."
)

PIRL_STEPS = (
    "The dotted line is where PIRL's second epoch starts (it draws half as many images per step as NPID, so an "
    "epoch lasts twice as many steps). The curves jump there rather than drift, for the reason given with NPID's "
    "loss in lecture 05: an image drawn in the first epoch still has the untrained encoder's feature as its bank "
    "entry, and at the boundary every positive in the batch becomes an entry rewritten by the network in "
    "training, all at once. The image branch then finds its own entry some of the time, but the loss steps up: "
    "the tile branch, which has not learned to find its image, had spent the whole first epoch pulled towards "
    "entries of the untrained encoder, and it is further from the new ones."
)

# new cell id, markdown, id of the cell it follows
NEW_CELLS = {
    "05_clustering_and_instances": [("npid-epoch-steps", NPID_STEPS, "0e289d31")],
    "06_contrastive": [("pirl-epoch-steps", PIRL_STEPS, "1d4a96cc")],
}


def cell_by_id(nb, lecture: str, cell_id: str):
    cells = [c for c in nb.cells if c.get("id") == cell_id]
    if len(cells) != 1:
        raise SystemExit(f"apply_figures: {lecture}: expected one cell with id {cell_id!r}, found {len(cells)}")
    return cells[0]


def edit_source(cell, lecture: str, old: str, new: str) -> None:
    if new in cell.source:
        return  # applied before
    if cell.source.count(old) != 1:
        raise SystemExit(f"apply_figures: {lecture}, cell {cell.get('id')}: expected the text {old[:60]!r}... once, "
                         f"found it {cell.source.count(old)} times")
    cell.source = cell.source.replace(old, new)


def apply(lectures: Path = ROOT / "lectures") -> dict[str, nbformat.NotebookNode]:
    """Return every edited notebook by name, without writing; raise on a missing anchor."""
    edited = {}
    for lecture in sorted(set(EDITS) | set(NEW_CELLS)):
        nb = nbformat.read(lectures / f"{lecture}.ipynb", as_version=4)
        for cell_id, old, new in EDITS.get(lecture, []):
            edit_source(cell_by_id(nb, lecture, cell_id), lecture, old, new)
        for new_id, markdown, after in NEW_CELLS.get(lecture, []):
            nb.cells = [c for c in nb.cells if c.get("id") != new_id]  # idempotent: drop a previous run's cell
            anchor = nb.cells.index(cell_by_id(nb, lecture, after))
            cell = nbformat.v4.new_markdown_cell(markdown)
            cell.id = new_id
            nb.cells.insert(anchor + 1, cell)
        edited[lecture] = nb
    return edited


def main() -> None:
    edited = apply()
    for lecture, nb in edited.items():
        nbformat.validate(nb)
        path = ROOT / "lectures" / f"{lecture}.ipynb"
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"figures in {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
