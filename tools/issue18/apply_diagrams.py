"""Issue 18, item 3: open each method section of lectures 01-06 with its diagram.

    python tools/issue18/apply_diagrams.py            # edits lectures/*.ipynb in place

For each method, the section's heading line (a unique substring) is found in exactly one markdown
cell, and a markdown cell with id ``diagram-<method>`` is put right after that cell: the SVG of
``python -m sslteach.diagrams`` (lectures/figures/<method>.svg) and a one-line caption saying what
to read in it. Run it again and the cells are rewritten, not duplicated. A missing or ambiguous
heading stops the script before any notebook is written. Outputs are not read or changed.
Lecture 07 has no method of its own (it measures all of them), so it gets no diagram.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]

# lecture, heading substring, method (the diagram's name), caption
DIAGRAMS = [
    ("01_colorization", "## 3. Colour as classification", "colorization",
     "Read it left to right: only L goes into the network; the ab channels it never sees become soft labels over Q bins, and the loss is a cross-entropy at every pixel."),
    ("01_colorization", "## 12. Inpainting: a context encoder", "inpainting",
     "The network sees only the context; the centre it never sees is the target, and the squared error counts only there. The decoder serves the pretext task alone: what lecture 08 reads out is the encoder f."),
    ("01_colorization", "## 13. Cross-channel prediction: a split-brain autoencoder", "split_brain",
     "Each half sees one group of channels and predicts the other, so neither can copy its target; the representation read out is the two halves' features side by side (dashed arrows)."),
    ("02_context_prediction", "## 2. The pretext task on 32×32 images", "context",
     "Two patches of one image go through the same network; only the joined features see both, and they must name where the second patch sat (8 classes)."),
    ("03_jigsaw", "## 2. The puzzle", "jigsaw",
     "Each tile goes through its own copy of one tile network, so no tile sees another until the concatenation; the target is the index of the permutation in a fixed set."),
    ("04_rotation", "## 2. The pretext task", "rotation",
     "Every image enters four times, once per rotation; the label is the rotation applied, so the batch is four times the images and balanced by construction."),
    ("05_clustering_and_instances", "## 2. DeepCluster: the loop", "deepcluster",
     "Follow the numbers: embed every image, cluster, use the clusters as labels for an epoch, then embed again with the updated encoder (the dashed arrow closes the loop)."),
    ("05_clustering_and_instances", "## 5. Instance discrimination and the memory bank", "npid",
     "Each image is compared with the bank's entry for itself and with sampled entries of other images; the dashed arrow is the momentum update of its own entry, outside the gradient."),
    ("06_contrastive", "## 4. MoCo: a queue of keys and a momentum encoder", "moco",
     "Gradients flow only through the query encoder; the key encoder follows it by the momentum update (dashed), and each batch's keys are pushed onto the queue to be next batches' negatives."),
    ("06_contrastive", "## 5. SimCLR: two views, a projection head, and the colour shortcut", "simclr",
     "The two branches are one encoder and one head used twice; the negatives are the other 2N - 2 views in the batch, and the features kept for later are h, before the head."),
    ("06_contrastive", "## 6. PIRL: invariant to the jigsaw", "pirl",
     "The image branch and the tile branch share the encoder; the loss asks the tiles' vector to match the image's and not the bank's other images, so the jigsaw is undone, not predicted."),
    ("06_contrastive", "## 7. SwAV: prototypes instead of negatives", "swav",
     "Both views are scored against the same prototypes; Sinkhorn turns each view's scores into a balanced code, and each view must predict the other's code (the swap)."),
]


def cell_markdown(method: str, caption: str) -> str:
    title = method.replace("_", " ")
    return f"![Diagram of {title}](figures/{method}.svg)\n\n*{caption}*"


def apply(lectures: Path = ROOT / "lectures") -> dict[str, nbformat.NotebookNode]:
    """Return every edited notebook by name, without writing; raise on a missing anchor or figure."""
    edited: dict[str, nbformat.NotebookNode] = {}
    for lecture, heading, method, caption in DIAGRAMS:
        if not (lectures / "figures" / f"{method}.svg").exists():
            raise SystemExit(f"apply_diagrams: lectures/figures/{method}.svg is missing: run python -m sslteach.diagrams")
        nb = edited.get(lecture) or nbformat.read(lectures / f"{lecture}.ipynb", as_version=4)
        cell_id = f"diagram-{method}"
        nb.cells = [c for c in nb.cells if c.get("id") != cell_id]  # idempotent: drop a previous run's cell
        hits = [i for i, c in enumerate(nb.cells)
                if c.cell_type == "markdown" and any(line.strip().startswith(heading) for line in c.source.splitlines())]
        if len(hits) != 1:
            raise SystemExit(f"apply_diagrams: {lecture}: expected one markdown cell with the heading {heading!r}, found {len(hits)}")
        cell = nbformat.v4.new_markdown_cell(cell_markdown(method, caption))
        cell.id = cell_id
        nb.cells.insert(hits[0] + 1, cell)
        edited[lecture] = nb
    return edited


def main() -> None:
    edited = apply()
    for lecture, nb in edited.items():
        nbformat.validate(nb)
        path = ROOT / "lectures" / f"{lecture}.ipynb"
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"diagrams in {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
