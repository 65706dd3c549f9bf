"""Issue 18, item 2 (first half): inpainting and cross-channel prediction in lecture 01.

    python tools/issue18/apply_data_prediction.py     # edits lectures/01_colorization.ipynb in place

Adds two sections at the end of lecture 01, before its discussion (the markdown cell with id
``17d924e7``, which starts with ``## Discussion``): 12. inpainting with a context encoder and
13. cross-channel prediction with a split-brain autoencoder, each a markdown cell (what the
method predicts, the paper's result, a prompt that ``apply_guide.py`` moves into its own cell)
and a code cell that loads the class checkpoint through ``sslteach.methods.load_or_pretrain`` and
shows its predictions on eight test images, then a markdown cell that points to the course table
of lecture 08 for its readout. It also adds the two sections to the time table of the first cell
and one learning objective.

Every new cell has a stable id (``inpainting-*``, ``split-brain-*``); running the script again
replaces them instead of adding copies, and the first cell's lines are added once. A missing
anchor (the discussion cell, the time-table row of section 11, the fifth objective) stops the
script before the notebook is written. Outputs are neither read nor written: the new code cells
are stored unexecuted, and the lecture is re-executed after all parts of the issue are applied.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
LECTURE = ROOT / "lectures" / "01_colorization.ipynb"
FIRST_CELL = "19c2b6e0"  # title, objectives and time table
DISCUSSION_CELL = "17d924e7"  # "## Discussion": the new sections go right before it

INPAINTING_INTRO = r"""## 12. Inpainting: a context encoder

*Pathak, Krähenbühl, Donahue, Darrell & Efros, "Context Encoders: Feature Learning by Inpainting", CVPR 2016.*

Colorization hides a channel; **inpainting** hides a region. The network sees the photograph with its central square (a quarter of the image: 16×16 of our 32×32 pixels) filled with the average colour of the training images, and has to paint the square back from the surroundings, the *context*. To fill the middle of a horse with a horse's flank rather than with a smudge, it has to recognise the horse.

The network is the course's encoder on the masked image, followed by the paper's **channel-wise fully connected** layer (each feature map connected to itself at every position, so that information crosses the whole image at a fraction of the cost of a full layer) and two up-convolutions that output the central square. The loss is the paper's reconstruction loss (Eq. 1), the squared error on the missing pixels:

$$\mathcal{L}_{rec}(x) = \big\lVert \hat M \odot \big(x - F((1 - \hat M) \odot x)\big)\big\rVert_2^2 ,$$

where $\hat M$ is 1 on the missing square. As in the authors' code, the predicted square overlaps the context by a border (1 pixel here, 4 of 128 there), and that border counts ten times more, so the painting joins its surroundings without a seam. The paper adds an adversarial loss (weight $\lambda_{adv} = 0.001$ against $\lambda_{rec} = 0.999$) for sharper pictures; it needs a second network and a second optimiser, and is left out here.

The paper's result: an AlexNet pretrained by inpainting and fine-tuned on PASCAL VOC reaches 56.5% mAP in classification, 44.5% mAP in detection and 29.7% mean IoU in segmentation (Pathak et al. 2016, Table 2), with its own fine-tuning protocol. Those features were learned with the paper's *random-region* masks (shapes of objects from segmentations, covering a quarter of the image), which the paper reports transfer better than the central square: its explanation is that with a fixed square the network learns low-level features that latch onto the square's border, which random shapes do not have. We train the central square, whose predictions can be shown next to the truth.

**Predict, then run.** The next cell paints the hidden centre of eight test images. The loss is a squared error, like the colour regressor's of section 6: what do you expect the painted squares to look like where the context leaves several fillings possible? Write your prediction down, then run the cell."""

INPAINTING_CODE = """from sslteach.inpainting import inpaint, inpainting_model_from_checkpoint
from sslteach.plots import show_rows

inpainting = load_or_pretrain("inpainting", train_images, train_labels, profile, data=data)
print(f"inpainting: {inpainting['history']['images_seen']:,} images in {inpainting['history']['seconds']:.0f} s")
inpainter = inpainting_model_from_checkpoint(inpainting, device)

shown = test_set.images[:8].to(device)
context, painted = inpaint(inpainter, shown)  # (8, 3, 32, 32) each: the input with its hole, the prediction pasted in
show_rows({"what it sees": context, "painted": painted, "truth": shown})"""

INPAINTING_READOUT = """Compare the painted squares with the truth: where does the prediction continue the edges and colours of the context, and where does it settle for the average of the possible fillings? That is what the squared error rewards (section 6), and what the paper's adversarial loss was added to fight.

The question of the course, whether painting taught the encoder features that help recognise objects, is answered for inpainting as for every method: its encoder is a row of the course table in lecture 08 (kNN, linear probes with 1%, 10% and all the labels, transfer), measured under the same protocol and on the same budget as colorization."""

SPLIT_BRAIN_INTRO = r"""## 13. Cross-channel prediction: a split-brain autoencoder

*Zhang, Isola & Efros, "Split-Brain Autoencoders: Unsupervised Learning by Cross-Channel Prediction", CVPR 2017.*

A colorizer's encoder never sees colour (section 11), and colour is one of the strongest cues for CIFAR-10's classes. The **split-brain autoencoder** keeps colorization and adds its mirror image. The network is split in two along its channels: one half sees only L and predicts ab (this lecture's task), the other sees only ab and predicts L. No weight connects the halves, so neither can copy its target from its input, and together they see every channel of the image. The representation is the concatenation of both halves' features:

$$\mathcal{L} = \ell\big(\mathcal{F}_1(X_L),\, X_{ab}\big) + \ell\big(\mathcal{F}_2(X_{ab}),\, X_L\big), \qquad \mathcal{F}(X) = \big[\mathcal{F}_1(X_L),\ \mathcal{F}_2(X_{ab})\big].$$

Both losses $\ell$ are classifications, the choice of the paper's proposed model ("cl, cl"): ab over the bins of section 3, with the soft targets of exercise 1 (no rebalancing: vivid pictures are not the goal here), and L over 50 bins of 2 units each. Each half is the course's encoder at half its width, so that the two side by side have exactly the layout of the encoder every other method trains (`split-small`: the same four stages and feature sizes) and the standard readout works on them unchanged. A half-width convolution has half the inputs and half the outputs, a quarter of the cost; two of them cost half of the full encoder. With the course's budget rule (the same steps, the same 256 images through the encoder per step), split-brain pretraining therefore spends about half the encoder compute of the other methods, plus its two prediction heads.

The paper's result: with linear classifiers on frozen features, its split-brain AlexNet reaches 35.4% top-1 on ImageNet (Zhang et al. 2017, Sec. 4.1), where its features come from the colour channels as well as from the lightness.

**Predict, then run.** The next cell shows what each half of the split-brain network sees and predicts, on the same eight test images. Which prediction do you expect to be easier for the network, colour from lightness or lightness from colour? What does a colour tell you about how bright a pixel is? Write your prediction down, then run the cell."""

SPLIT_BRAIN_CODE = """from sslteach.splitbrain import predict_cross_channel, split_brain_model_from_checkpoint

split_brain = load_or_pretrain("split-brain", train_images, train_labels, profile, data=data)
print(f"split-brain: {split_brain['history']['images_seen']:,} images in {split_brain['history']['seconds']:.0f} s")
split_net = split_brain_model_from_checkpoint(split_brain, device)

pictures = predict_cross_channel(split_net, shown)  # what each half sees and predicts, as pictures
show_rows(pictures)"""

SPLIT_BRAIN_READOUT = """Read the rows in pairs. The first half sees the grey picture and paints its colours (drawn with the true lightness), as the colorizer of section 4 does. The second half sees only the colours (drawn here at one constant lightness) and has to guess how bright each part is (drawn with the true colours): a blue patch is a bright sky or dark water, a grey one anything at all.

The readout of the split encoder, both halves concatenated, is the `split-brain` row of the course table in lecture 08, measured like every other method; set it beside the colorizer's row, whose encoder saw only L."""

NEW_CELLS = [
    ("inpainting-intro", "markdown", INPAINTING_INTRO),
    ("inpainting-predictions", "code", INPAINTING_CODE),
    ("inpainting-readout", "markdown", INPAINTING_READOUT),
    ("split-brain-intro", "markdown", SPLIT_BRAIN_INTRO),
    ("split-brain-predictions", "code", SPLIT_BRAIN_CODE),
    ("split-brain-readout", "markdown", SPLIT_BRAIN_READOUT),
]

OBJECTIVE_ANCHOR = "5. measure colorization as a pretext task"
OBJECTIVE = ("6. describe two other data-prediction tasks, inpainting with a context encoder and cross-channel prediction "
             "with a split-brain autoencoder: what each network sees, what it predicts, and what it costs.")
TIME_ROW_11 = "| 11. Colorization as a pretext task"
TIME_ROWS = ["| 12. Inpainting: a context encoder | 5 min |",
             "| 13. Cross-channel prediction: a split-brain autoencoder | 5 min |"]


def fail(message: str) -> None:
    raise SystemExit(f"apply_data_prediction: {message}")


def edit_first_cell(source: str) -> str:
    """Add the objective after the fifth and the two sections' rows after section 11's, once."""
    lines = source.split("\n")
    if OBJECTIVE not in lines:
        at = [i for i, line in enumerate(lines) if line.startswith(OBJECTIVE_ANCHOR)]
        if len(at) != 1:
            fail(f"expected one line starting {OBJECTIVE_ANCHOR!r} in the first cell, found {len(at)}")
        lines.insert(at[0] + 1, OBJECTIVE)
    if TIME_ROWS[0] not in lines:
        at = [i for i, line in enumerate(lines) if line.startswith(TIME_ROW_11)]
        if len(at) != 1:
            fail(f"expected one time-table row starting {TIME_ROW_11!r} in the first cell, found {len(at)}")
        row = lines[at[0]]
        if row == "| 11. Colorization as a pretext task, and discussion | 15 min |":  # the discussion now comes after 13
            lines[at[0]:at[0] + 1] = ["| 11. Colorization as a pretext task | 10 min |", *TIME_ROWS, "| Discussion | 5 min |"]
        else:
            lines[at[0] + 1:at[0] + 1] = TIME_ROWS
    return "\n".join(lines)


def apply(path: Path = LECTURE) -> nbformat.NotebookNode:
    """Return the edited notebook, without writing it; raise SystemExit on a missing anchor."""
    nb = nbformat.read(path, as_version=4)
    new_ids = {cell_id for cell_id, _, _ in NEW_CELLS}
    nb.cells = [c for c in nb.cells if c.get("id") not in new_ids]  # idempotent: drop a previous run's cells
    first = [c for c in nb.cells if c.get("id") == FIRST_CELL]
    discussion = [i for i, c in enumerate(nb.cells) if c.get("id") == DISCUSSION_CELL]
    if len(first) != 1:
        fail(f"no first cell with id {FIRST_CELL}")
    if len(discussion) != 1 or not nb.cells[discussion[0]].source.lstrip().startswith("## Discussion"):
        fail(f"no '## Discussion' cell with id {DISCUSSION_CELL}")
    first[0].source = edit_first_cell(first[0].source)
    cells = []
    for cell_id, kind, source in NEW_CELLS:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        cell.id = cell_id
        cells.append(cell)
    nb.cells[discussion[0]:discussion[0]] = cells
    return nb


def main() -> int:
    nb = apply()
    nbformat.validate(nb)
    LECTURE.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    print(f"sections 12 (inpainting) and 13 (split-brain) in {LECTURE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
