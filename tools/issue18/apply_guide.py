"""Issue 18, item 4: "Predict, then run" prompts and the instructor's model answers, written into
the lecture notebooks.

For every lecture this script inserts

* **prompts**: a markdown cell that starts with ``**Predict, then run.**``, placed right before
  the code cell whose output answers it (id ``predict-NN-k``);
* for lecture 09 and lecture 01's sections 12-13, which were written with prompts of their own,
  those prompts in the same format (``LecturePrompt``: the tail added, a prompt at the end of a
  paragraph moved into its own cell with a readable id, once);
* **model answers**: a markdown cell tagged ``instructor`` that starts with ``**Model answer**``
  and names the question it answers in its metadata (see ``tools/make_guide.py``), placed right
  after the code cell that reveals a prompt's answer, after the widget or exercise cell that
  answers a question asked in a paragraph, or after the discussion cell (ids
  ``answer-NN-predict-k``, ``answer-NN-question-k``, ``answer-NN-discussion-k``).

A discussion may get questions appended (``Discussion.added``: lecture 01's question on the
sections 12-13 that ``apply_data_prediction.py`` adds), once.

Every anchor is a cell id, checked against a piece of that cell's text, and every discussion
answer is checked against a phrase of the question it answers, so a lecture that changed under
the script makes it stop with the list of what is missing, before writing anything.

It is idempotent: the cells it inserted before (recognised by their ids) are removed first, so a
second run gives the same notebooks. It reads no outputs. After running it, regenerate the
guide: ``python tools/make_guide.py``.

Usage::

    python tools/issue18/apply_guide.py [--lectures lectures/]
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell

ROOT = Path(__file__).resolve().parents[2]
PROMPT_LEAD, ANSWER_LEAD, TAG = "**Predict, then run.**", "**Model answer**", "instructor"
PROMPT_TAIL = "Write your prediction down, then run the cell."
OURS = re.compile(r"^(predict-\d\d-\d+|answer-\d\d-(predict|question|discussion)-\d+)$")


def md(text: str) -> str:
    """Dedented, stripped markdown."""
    return textwrap.dedent(text).strip()


@dataclass(frozen=True)
class Prompt:
    """A prompt before the code cell ``before`` (which must contain ``expects``)."""
    before: str
    expects: str
    text: str
    answer: str


@dataclass(frozen=True)
class Question:
    """A question a lecture asks inside a paragraph of cell ``cell``, answered after cell ``after``
    (a code cell unless ``after_type`` says otherwise: a "read on" question is answered after the
    markdown cell that asks it)."""
    cell: str
    quote: str
    after: str
    expects: str
    answer: str
    after_type: str = "code"


@dataclass(frozen=True)
class LecturePrompt:
    """A "Predict, then run" prompt the lecture asks itself (lecture 09 and lecture 01's sections
    12-13 were written with their own).

    The prompt must be a markdown cell ``cell`` right before the code cell ``before`` (which must
    contain ``expects``), starting with ``text``; the script adds the prompt tail if it is missing.
    A prompt written as the last paragraph of the cell ``split_from`` is first moved out into its
    own cell with the id ``cell``, right before ``before`` (once: on later runs that cell exists and
    is kept).
    """
    cell: str
    before: str
    expects: str
    text: str
    answer: str
    split_from: str | None = None


@dataclass(frozen=True)
class Discussion:
    """The answers to a discussion cell's numbered questions, each checked by a phrase of its question.

    ``added`` are questions this script appends to the list (question text, answer), once: a later
    run finds them there."""
    cell: str
    answers: tuple[tuple[str, str], ...]
    added: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------------------------
# 00 introduction
# --------------------------------------------------------------------------------------------
L00 = dict(
    prompts=[
        Prompt("0e342dc3", "dataclasses.fields(CLASS)", md("""
            The next cell prints the two profiles side by side. The `full` one trains a ResNet-18
            for about a hundred epochs on a GPU. Before you run it: how many times more optimiser
            steps do you think the full profile takes than the class one: ten times, a hundred,
            a thousand? And about how many passes over the training images does the class profile
            make in its whole training?"""), md("""
            Read the `steps` and `batch_size` rows: the full profile takes over a hundred times the
            class profile's steps, with batches twice as large, so over two hundred times as many
            images. The class profile's 350 steps of 256 images come to about two passes over the
            training set (section 5 says so; the data cell gives your image count),
            where the papers train for hundreds of epochs. That is why every class-profile number
            sits far below the papers', and why the course never compares its numbers with the
            papers' but always with baselines trained on the same budget.""")),
        Prompt("f19258f9", "evaluate_features(", md("""
            The next cell probes three kinds of features with the same classifiers: the raw pixels,
            the ConvNet with random weights, and the same ConvNet trained with labels. Before you run
            it: put the three in order. Where will the random network land: near chance (10%), near
            the raw pixels, or close to the supervised network? And which of its four stages do you
            expect to be its best?"""), md("""
            Raw pixels lowest, random init clearly above them, supervised far above both: compare
            the `raw pixels` line with the best number of the `random-init` row, and that with the
            `supervised` row (the assert of the next cell checks the first gap and requires more than
            ten points for the second). Random filters followed by a ReLU and pooling act like a bank
            of local edge, colour and texture detectors, and that alone makes the classes more
            linearly separable than pixels (Jarrett et al., ICCV 2009, and Saxe et al., ICML 2011,
            made the same observation for random convolutional features). The random network's best
            stage is in the middle: later random stages mix random features of random features. The
            supervised network's best stage is its last, where its classifier sat. Every method in
            the course is read against these rows, not against chance.""")),
    ],
    questions=[],
    discussion=Discussion("80ef9f02", (
        ("k-means clustering of images", md("""
            By the syllabus's line, plain k-means is unsupervised but not self-supervised: it groups
            the data without ever making up a label and solving a supervised task with it. It becomes
            part of a self-supervised method when its clusters are used as targets, as DeepCluster
            does (lecture 05): the made-up label is the cluster index. An autoencoder is a borderline
            case: its "label" is the input itself, and reconstruction through a bottleneck is usually
            filed under unsupervised dimensionality reduction. Once the input is corrupted or partly
            hidden and the network must predict what is missing (a denoising autoencoder, a context
            encoder that inpaints a masked centre, masked autoencoders), the made-up label is the
            hidden part, and it is self-supervision in the course's sense.""")),
        ("can disagree about which of two encoders", md("""
            kNN poor, probe good: features in which a few dimensions carry the class and many
            high-variance dimensions carry nuisance (brightness, background colour). Cosine
            distances are dominated by the nuisance, so neighbours are of the wrong class, but a
            linear classifier (on standardised features) can put its weight on the few informative
            dimensions. kNN good, probe poor: classes that form many small, separate, pure clusters
            arranged so that no hyperplane separates them (a class made of several modes, such as
            one cluster per pose, interleaved with another class's modes, an XOR-like layout): each
            neighbourhood is pure, yet the classes are not linearly separable. The kNN tests the
            geometry of local neighbourhoods, the probe linear separability; that is why the course
            reports both.""")),
        ("BatchNorm statistics recomputed", md("""
            An untrained BatchNorm layer normalises with its initial running statistics, mean 0 and
            variance 1, which are wrong for real activations: the layers' outputs are then badly
            scaled and shifted, some channels saturate or die after the ReLU, and the errors compound
            from stage to stage. The random network's features would look much worse than what
            random filters can actually give, and every trained method (whose BatchNorm statistics
            were estimated during training) would seem to have learned more than it did. Recomputing
            the statistics on the training images, without touching any weight, isolates what
            training the weights added, which is the question the baseline is there to answer.""")),
        ("only 500 labelled images", md("""
            Then the supervised encoder trained on all the labels is not available: it is a ceiling
            that no real project with 500 labels could reach. The fair comparison trains the
            supervised baseline on the same 500 labelled images (same encoder, same number of steps,
            same augmentations; it will overfit, and that is part of the answer), and compares it with
            the self-supervised encoder pretrained on all the unlabelled images and then probed, or
            fine-tuned, with the same 500 labels, next to random init probed with those 500. Draw the
            500 class-balanced and repeat with several draws, since a small labelled set makes the
            result depend on which images were chosen (lecture 08, exercise 1).""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 01 colorization
# --------------------------------------------------------------------------------------------
L01 = dict(
    prompts=[
        Prompt("ee0c6a74", "for T in (0.01, 0.1, 0.38, 1.0)", md("""
            The next cell decodes the classifier's predicted distributions at four temperatures,
            from nearly the mode (T = 0.01) to the mean (T = 1), and prints the average chroma of
            each row and of the true photographs. Before you run it: how much colour will be lost
            between the mode and the mean: most of it, about half, or very little?"""), md("""
            Read the chroma line under the rows. How much the mean loses depends on how spread out
            each pixel's distribution is: a single narrow peak has its mode and mean in the same
            place, while peaks in different directions of the ab plane average to grey. This small
            network is sure of most of its pixels (a blue sky, a brown dog), so the average chroma
            falls only a little from T = 0.01 to T = 1, and T = 0.38 keeps nearly all of it; the rows
            differ more in patchiness than in colourfulness. Students who predicted "the mean is
            grey" reasoned like the paper's argument for the annealed mean, which holds where the
            distribution is multimodal: section 7 finds those pixels.""")),
        Prompt("7b62f0b3", "ab_error = ", md("""
            The next cell colours held-out images with the regressor (L2 loss) and with the
            classifier, and measures two things: the average error between predicted and true colour
            in the ab plane, and the average chroma. Before you run it: which colorizer will have the
            *lower* ab error? Which the higher chroma?"""), md("""
            The classifier is far more colourful (its chroma near, even above, the truth's; the
            regressor's well below it: the assert requires a factor of 1.3 between them), and yet the
            regressor has the lower average ab error (compare the two printed errors). The expected
            squared error is minimised by the conditional mean, which for an uncertain colour is near
            grey; a grey guess is never very far from the truth, while a confident wrong hue is far
            from it. The per-pixel metric prefers the dull answer that looks worse. This is why Zhang
            et al. judged colourings with a "colorization Turing test" (people choosing between a
            real and a colourised photograph) rather than by per-pixel error.""")),
        Prompt("e4d2287d", "predicted / true chroma", md("""
            The next figure compares, class by class, how colourful the classifier paints each class
            with how colourful its photographs really are. Before you run it: which class do you
            expect it to paint *greyer* than it is, and which more colourful? Think of which objects
            come in any colour and which in one palette."""), md("""
            Read the printed ratios: below 1 is greyer than the truth, above 1 more colourful.
            Objects whose colour is arbitrary are where the network hedges towards the average, so
            expect the automobile at the bottom: a car can be painted any colour. Animals with fur
            (deer, cats, dogs, horses) come out warmer and more saturated than they are: the network
            applies the brown-orange palette of fur in the training set to every furry texture, grey
            cats included, and class rebalancing pushes towards saturated colours. Ships gain colour
            from the reliably blue sea and sky around them. These are the biases of the training
            data, learned faithfully and applied where they do not hold.""")),
        Prompt("78f17db3", "lightness_images", md("""
            The next cell probes four encoders with a linear classifier on CIFAR-10's classes.
            Before you run it: will the *regressor's* encoder, whose pictures are one faint brown,
            give better features than a random network on the same grey input? And the classifier's?
            """), md("""
            Compare each colorizer's row with `random-init, grey`, stage by stage. The classifier's
            encoder beats the random one, most clearly at stage 3, where its colour head sat (the
            next cell's assert requires a point at its best stage). The regressor's encoder is no
            better than random, and worse at stage 3: an L2 loss is satisfied by a brownish average,
            so the encoder never had to tell a sky from a field, and what training changed moved it
            away from the generic random features. The loss, not only the task, decides what the
            features learn. Supervised training on colour images stays far above all of them.""")),
    ],
    # Sections 12 and 13 (tools/issue18/apply_data_prediction.py) end with prompts of their own,
    # moved here into their own cells; their pictures were not trained yet when the answers were
    # written, so the answers say what to look for and why, from the papers.
    lecture_prompts=[
        LecturePrompt("inpainting-predict", "inpainting-predictions", "inpaint(inpainter, shown)",
                      "**Predict, then run.** The next cell paints the hidden centre", md("""
            Blurred: smooth, low-contrast squares that continue the colours of the border inwards and
            fade towards a dull average in the middle, with no texture or sharp edge of their own.
            The squared error is minimised by the mean of the plausible fillings (the argument of
            section 6 for colours), and the mean of a dog's head and a patch of grass is a brownish
            smear. Look for three things in the `painted` row: where the context leaves one answer
            (a uniform sky, a straight horizon, a wall) the square is continued well; where it does
            not (the middle of an animal, the centre of an object) it is a blur; and the seam at the
            square's edge is hard to see, because the 1-pixel overlap counts ten times more. Pathak
            et al. (2016) show the same contrast at 128 pixels (their Fig. 1: the L2 context encoder's
            fill is blurry, the L2 + adversarial one sharp) and say in their abstract that the
            adversarial loss gives much sharper results because it better handles several modes of
            the output. A sharp picture is not the goal of the course, though: whether the encoder
            had to recognise the object is read from its row in lecture 08, not from the painting."""),
                      split_from="inpainting-intro"),
        LecturePrompt("split-brain-predict", "split-brain-predictions", "predict_cross_channel(split_net, shown)",
                      "**Predict, then run.** The next cell shows what each half", md("""
            Colour from lightness is the better-posed of the two. L carries most of a photograph's
            detail (edges, texture, shading), so the L → ab half sees the objects and only has to
            guess their hue, which is uncertain mostly for objects that come in any colour. The
            ab → L half sees flat colour regions with few edges and has to invent all the shading and
            texture. A colour says little about brightness: a grey or weakly coloured pixel can have
            any lightness, and only saturated colours narrow it down (a vivid yellow is light, a deep
            blue darker), while large uniform regions (sky or water, as the readout says) remain
            ambiguous. What to look for in the rows: the colorizing half's pictures keep every
            detail of the grey input and are muted where the hue is uncertain; the lightness half's
            pictures follow the colour regions' outlines but are smooth inside them, with shading
            and texture missing, and grey areas at a middle lightness. The raw losses of the two
            halves are not comparable (different numbers of bins), so judge by the pictures. Zhang
            et al. (2017) predict both directions so that the concatenated representation is
            trained on every channel of its input; that each half alone sees only part of the
            image is the point of the split, not a flaw."""),
                      split_from="split-brain-intro"),
    ],
    questions=[],
    discussion=Discussion("17d924e7", (
        ("regressor had an ab error", md("""
            When the answer is genuinely uncertain, a loss that measures the distance to one true
            answer rewards the average of the plausible answers, and the average may be no plausible
            answer at all (grey for a car that is red or blue). A low error then says the prediction
            hedges well, not that it is good. Choose a loss that can represent several answers (a
            distribution over bins as here, a mixture model, an adversarial or diffusion model) and a
            metric that judges what the output is for: realism to a viewer (the paper's Turing test),
            or the task that consumes the colours. The same problem: blurry frames in L2 video
            prediction and super-resolution, blurry autoencoder reconstructions, trajectory
            forecasts that average two possible turns into driving straight on.""")),
        ("Class rebalancing", md("""
            It is a deliberate bias, bought for vividness: the rebalanced loss trades fidelity on
            common, muted colours for a willingness to paint rare, saturated ones, which is what makes
            the classifier's pictures look alive, and it is also why it over-uses some colours. For
            a historian, fidelity matters more than vividness: less rebalancing, that is λ closer to
            1 (in $w \\propto ((1-\\lambda)p + \\lambda/Q)^{-1}$, λ = 1 makes the weights uniform and
            λ = 0 weights by 1/p alone), together with a decoding closer to the mean (a higher T) and
            an honest display of uncertainty. Choose λ on photographs whose colours are known (colour
            photographs of the same period, turned grey), by how close the predicted-to-true chroma
            ratios of section 9 come to 1 per class, not by how good the pictures look.""")),
        ("some photographs are themselves grey", md("""
            A grey photograph is a training example whose answer is "no colour": the network learns
            that scenes typical of black-and-white photographs (and grey objects on grey backgrounds)
            may be colourless, which pulls its predictions for such scenes towards grey. It cannot
            tell a black-and-white photograph from a colour one by the lightness alone, since the two
            have the same L channel, so from L alone no loss can stop "added colour" on a photograph
            that really was grey: the information is not in the input. What helps: remove grey
            images from the training set (the network then always colours, consistently), give the
            network the missing information as an input (a flag, a global colourfulness or a colour
            histogram, as later user-guided colorization work does), or accept it and judge
            colourings by plausibility rather than by the original's colours.""")),
        ("transferred worse than rotation", md("""
            Much of colour is predictable from local texture and brightness without recognising the
            object: grass is green, sky blue, fur brown (section 10: at full resolution the network
            colours by local texture). Where colour is not predictable, on man-made objects that come
            in any colour, the network can hedge towards the average (section 9: cars painted grey)
            and pay little. So colourising rewards knowing materials and scenes more than shapes of
            objects, while deciding which way is up requires the global layout of objects (heads
            above bodies, wheels below doors). The colorizer's encoder also never sees colour, a cue
            it has to do without at transfer time.""")),
        ("8×8 grid and upsampled", md("""
            Colour bleeding: one predicted colour covers a 4×4 block of pixels, so thin structures
            (a bird's legs, a mast, a thin edge) take the colour of the background around them, and
            colours run over object boundaries. The paper also predicts colour at a quarter of the
            input resolution and upsamples it: human vision is much less sensitive to fine detail in
            colour than in lightness, the full-resolution lightness that is put back carries the
            detail, and predicting a distribution over hundreds of bins at every pixel of the full
            image would cost a lot of memory and computation for little visible gain.""")),
    ), added=(
        ("Inpainting (section 12) and the split-brain autoencoder (section 13) also hide part of the image. "
         "For them and for colorization, say what the encoder never sees and which low-level shortcut could "
         "solve the task without recognising objects. Which would you expect to rank highest in lecture 08's "
         "table, and what would you check there?", md("""
            Colorization: the encoder never sees colour; the shortcut is texture to colour (grass
            green, sky blue, fur brown) and a grey hedge where the colour is arbitrary. Inpainting:
            the encoder sees colour but never the central square; the shortcut is to continue the
            border's colours and edges inwards and blur the rest (the L2 loss accepts that), and with
            a square always in the same place, features tuned to the square's border, which Pathak
            et al. (2016) give as the reason their random-region masks transfer better. Split-brain:
            the L → ab half has colorization's shortcut; the ab → L half never sees lightness, and
            can use the outlines of colour regions and the fact that saturated colours only exist
            at some lightnesses. Since no half sees its own target, neither can copy it, and the
            concatenated features cover every channel. A reasonable expectation is split-brain above
            colorization, because its features include colour, one of CIFAR-10's strongest cues,
            even though it spends half the encoder compute; inpainting depends on how much of a
            16-pixel square the context settles by continuation alone. What to check: the three rows
            side by side at every stage and label budget, against random init (grey and colour), and
            whether the differences exceed the spread between seeds before ranking them.""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 02 context prediction
# --------------------------------------------------------------------------------------------
L02 = dict(
    prompts=[
        Prompt("6294a981", "CONTEXT_NO_GAP", md("""
            The next cell compares the main network with the same network trained on *touching*
            patches (no gap, no jitter). Before you run it: will touching patches make the pretext
            task easier or harder? Will they make the features, measured by the linear probe, better
            or worse than the main network's? Than the random encoder's (section 6)?"""), md("""
            Easier: the no-gap network places neighbours far more often (the `pretext accuracy`
            row; the next assert requires ten points more), because a line or a shading gradient
            that crosses the border gives the answer without any knowledge of objects. Its features
            are worse at every stage (the assert requires two points at each), and, against the
            random-init row of section 6, no better than the random encoder's at any stage. This is
            the shortcut pattern of the whole course: a higher pretext accuracy with worse features.
            Doersch et al. put the gap and the jitter into the task for exactly this reason.""")),
        Prompt("2d079288", "lens_nets", md("""
            Two networks were trained on images seen through the simulated lens: one with no
            defence, one with colour dropping. The next cell tests both on held-out pairs, with the
            lens and without it. Before you run it: how well will the no-defence network do through
            the lens, compared with the main network on clean images? Without the lens, will it stay
            near that, or fall towards chance? Will the colour-dropping network care whether the
            lens is on?"""), md("""
            Through the lens, the no-defence network places neighbours far better than any network
            did on clean images: the fringes say where each patch sits in the frame, and on our grid
            the position in the frame fixes the answer. Without the lens it falls close to chance
            (12.5%; the assert requires it below 25%): it had learned the lens and hardly anything
            else. The colour-dropping network is modest and about the same either way (the assert
            allows three points between them): it never saw two colour channels of a patch together
            in training, so it could not learn the misalignment and had to use content; it learned
            less of it than the main network, since it also saw one channel of 8×8 patches.""")),
    ],
    questions=[
        Question("d00ef453", "does the network trained without defence still know where its patches were cut?",
                 "e1d557ed", "remove_green_magenta(lens_images)", md("""
            Hardly: compare the two numbers the cell prints with the random encoder's line in the
            location probe above. After the projection, the no-defence encoder places single patches
            about as well as a random encoder (the assert requires it within five points of it), down
            from far above every other encoder. The cue it had learned was the green-magenta colour
            of the fringes; with that component removed from every pixel, nothing in a patch says
            where in the frame it was cut. This measures the cue only; a network that cannot learn
            the cue needs the projection (or colour dropping) applied to its training images.""")),
    ],
    discussion=Discussion("d5c38285", (
        ("higher pretext accuracy came with features", md("""
            Examples: rotation prediction can read the zero padding of a padded crop, JPEG block
            boundaries or lighting direction; jigsaw can continue edges across tiles or read
            chromatic aberration; two-view contrastive methods can match colour histograms
            (lecture 06); colorization of grey photographs can exploit watermarks or borders. To
            detect a shortcut without labels: remove the suspected cue at test time (no lens, a gap,
            colour distortion) and see whether the pretext accuracy collapses, as in section 5; probe
            the features for the nuisance itself (section 5's linear probe for the position in the
            frame needs no class labels, only the known cell); and distrust a pretext accuracy that
            is high on a task that should be hard.""")),
        ("Colour dropping removes", md("""
            The encoder loses colour itself, one of the strongest cues for CIFAR-10's classes
            (lecture 01: giving up colour costs a lot), and every relation between channels; it also
            sees each patch as one faint channel, a shift away from the colour images it is probed
            on. The projection removes only the green-magenta axis: brightness and the blue-yellow
            axis stay, so it is the better fix when colour matters downstream and the aberration
            lies along green-magenta, as lateral chromatic aberration commonly does. Its risk is an
            aberration along another axis (blue-yellow fringes), which it leaves in place; check it
            with the location probe of section 5 before trusting it.""")),
        ("grid fills the whole", md("""
            In the paper a pair of patches can come from anywhere in a large photograph, so a
            patch's position in the frame does not determine its position relative to the centre
            patch: the network must estimate both patches' absolute positions from their fringes and
            compare them. The two patches are close together relative to the image, and the
            estimate from faint fringes is noisy, so the difference of two noisy positions is only a
            rough hint, not the answer. It is still useful: fringes are strongest and point
            outwards near the borders, which makes some relative positions more likely than others,
            and any cue that lowers the loss is one the network will learn.""")),
        ("Jitter of one pixel", md("""
            Scale both with the patch, not in pixels: the gap must be wide enough that lines, edges
            and shading cannot simply be continued across it (the paper: half a patch), and the
            jitter large enough that straight lines no longer line up exactly between patches
            (the paper: up to about 7% of a patch), within the constraint that the grid fits in the
            image (3 patches + 2 gaps + 2 jitters at most the image size, as in section 2). Then
            check the choice empirically, as section 4 did: if reducing the gap raises the pretext
            accuracy but lowers the probe, the smaller gap lets a shortcut through.""")),
        ("vignetting, JPEG blocks", md("""
            Vignetting darkens the corners, so a patch's brightness falloff says where in the frame
            it was cut: usable by context prediction and jigsaw; rotation cannot use it (it is
            symmetric under rotation) and colorization does not predict positions. JPEG blocks
            are aligned to an 8-pixel grid, so the phase of block edges within a patch reveals its
            offset modulo 8, usable by context and jigsaw (hence the jitter); random resizing of
            crops, as in the contrastive methods, destroys the alignment. A sensor's fixed noise
            pattern identifies the camera and even the region of the sensor: context prediction
            could locate patches with it, and two crops of one photograph share it, a shortcut for
            instance discrimination that blur or noise augmentation closes; rotation and
            colorization are largely immune to it.""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 03 jigsaw
# --------------------------------------------------------------------------------------------
L03 = dict(
    prompts=[
        Prompt("d725c9d8", "random_set", md("""
            The next cell compares our greedy permutation sets with the paper's, and then draws
            1,000 permutations *at random*. Before you run it: will the random set's average Hamming
            distance be clearly lower than the greedy set's of the same size? And its minimum?"""), md("""
            The averages are the same. Two random orderings of nine tiles agree in a given position
            with probability 1/9, so on average in one position out of nine: an expected distance of
            8, which is also what the greedy set of 1,000 has. The difference is at the bottom: the
            random set's minimum is 0 (it contains duplicates, two classes that cannot be told
            apart), while the greedy set's closest members still differ in two positions. For small
            sets the greedy choice keeps every pair far apart (compare the minimum column for 10
            permutations with the paper's Table 2).""")),
        Prompt("d8e6fc29", "quarters = contrast.argsort()", md("""
            The paragraph above guessed that puzzles whose tiles look alike are the hardest. Before
            you run the next cell: which contrast quarter will the network solve most often, the
            lowest-contrast images (calm skies, plain backgrounds) or the highest (fur, foliage,
            clutter)?"""), md("""
            Against the guess, the lowest-contrast quarter is solved most often and the highest
            least (read the four percentages). The lecture's hypothesis: low contrast in CIFAR-10
            means calm scenes whose brightness varies smoothly over the frame; normalising each tile
            on its own stretches that smooth variation into a strong gradient, and the gradients of
            adjacent tiles continue one another, which gives the arrangement away. Busy scenes are full of edges that fit no
            layout the network has learned. The contrast measure is crude (the mean of the tiles'
            standard deviations), so test the hypothesis on single puzzles in the widget.""")),
        Prompt("f0154081", "evaluate_blocks(encoder", md("""
            The jigsaw encoder was trained on 8×8 tiles only; the next cell probes it on whole
            32×32 images at each of its four stages. Before you run it: at which stages will it beat
            the random encoder? Will its last stage be better or worse than the random one's?"""), md("""
            Compare the `jigsaw probe` and `random-init probe` columns stage by stage. Jigsaw is
            ahead at the first stage at most (the assert checks stage 1) and behind from the second
            on, further the deeper the stage: the deeper stages were trained on 4×4, 2×2 and 1×1
            maps of tiles and specialised in telling tiles apart, and never saw a whole image. The
            first stage's small filters are what carries over. At 350 steps a couple of points
            between two runs is within noise (the lecture measured it), so read only large gaps.""")),
    ],
    questions=[
        Question("84cfb456", "Are the puzzles you find hard the ones it finds hard?", "bfdef333", "JigsawPuzzle(", md("""
            Partly. People and the network both fail on single textures (fur, grass) and plain
            skies, where several arrangements are equally good: that ambiguity is in the puzzle, not
            in the solver. They differ elsewhere: people use knowledge of objects (a head goes on a
            body) and see little in smooth gradients; the network, which sees each tile normalised,
            uses slow gradients and edges that line up, so it solves calm scenes that look
            featureless to us and can be confidently wrong on cluttered ones a person solves from
            the object. Ask for one puzzle of each kind, and compare the probability the network
            gives its own answer with the one it gives the truth: high confidence on an ambiguous
            puzzle shows that a softmax probability is not a measure of ambiguity.""")),
    ],
    discussion=Discussion("72010773", (
        ("same average Hamming distance as 1000 random", md("""
            It buys the bottom of the distribution, not the average: no duplicates and no very close
            pairs (a random set of 1,000 contains identical permutations, minimum 0, which are
            classes no network can separate; the greedy set's minimum is 2). For small sets it
            matters most: with 10 or 100 permutations the greedy choice keeps every pair far apart
            (compare the minimum column of section 3's table for 10), so each puzzle must be told apart from the others by many
            tiles at once, and no class is a near-copy of another. For 1,000 it can only avoid the
            worst pairs, since there are not enough mutually distant permutations (at most nine
            can differ from each other everywhere).""")),
        ("Per-tile normalisation removes a shortcut", md("""
            A cue is a shortcut when it solves the pretext task without the knowledge we want to
            transfer and says nothing about the downstream task: lens fringes, edge continuity,
            matching brightness and colour cast between adjacent tiles of one exposure. A cue is
            legitimate when the downstream task relies on it too: the sky is blue and on top,
            ground is below. The line depends on the downstream task, so test it: remove the cue
            (normalise, drop colour) and measure the probe, not the pretext accuracy. If the probe
            improves, the cue was a shortcut; if it drops, the cue carried useful information, and a
            gentler remedy (normalising brightness but not hue, say) may keep it.""")),
        ("many more puzzles with 10 permutations", md("""
            The pretext task is a means: what transfers are the features it forces the network to
            learn. With 10 permutations the puzzle can be solved from a few easy cues, so it forces
            little; with 1,000 at our budget it cannot be learned at all, so it forces nothing; in
            between (100 here) the features were about as good as with 10, within the noise. Without
            labels, a few signals help: a pretext accuracy clearly above chance but not saturated on
            held-out data; unsupervised properties of the features (lecture 07's uniformity, the
            spread of the features); and, in practice, a small labelled validation set, since almost
            every real project has a few labels, used only to choose the difficulty.""")),
        ("trained on 8×8 tiles and probed", md("""
            The first stage: its filters work on a few pixels, the same at any image size, while the
            deeper stages were trained on the tiny maps of 8×8 tiles (4×4 down to 1×1) and
            specialised in telling tiles apart; the probe table confirms it. To make the deeper
            stages useful: larger tiles relative to the objects (images larger than 32 pixels, such
            as STL-10's 96), so that a tile holds a part of an object as in the paper's 64-pixel
            tiles; training on whole images as well (PIRL's image branch does this); or a
            multi-scale task. Upsampling the tiles, tried in `sslteach.jigsaw`'s docstrings, did not
            help here.""")),
        ("PIRL (lecture 06) uses the same tiles", md("""
            Predicting the permutation makes the representation covariant with the shuffle: it must
            encode where each tile sits, information no downstream task wants, and the top layers
            specialise in it. PIRL asks for the opposite, a representation of the shuffled tiles that
            matches the whole image's, so what it keeps is the content that survives the shuffle,
            the semantics. It is also contrastive (a memory bank of negatives), so features of
            different images are pushed apart and the representation spreads out. Misra & van der
            Maaten report that PIRL transfers better than the jigsaw task with the same tiles
            (their detection table: PIRL 54.0 AP against jigsaw's 48.9 on VOC07+12).""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 04 rotation
# --------------------------------------------------------------------------------------------
L04 = dict(
    prompts=[
        Prompt("c5f9df7a", "per_rotation", md("""
            The next cell shows the network all four rotations of held-out images and counts how
            often it recognises each. Before you run it: which rotation will it recognise most often?
            Will upright images (0°) be easier than upside-down ones (180°)?"""), md("""
            About equally often for all four (the four percentages are within a few points). Every
            training batch holds all four rotations of each image, so the network has no reason to
            prefer one, and recognising 0° and recognising 180° are the same skill: telling up from
            down. The differences are between kinds of picture, not between rotations, which is what
            the next cell splits out.""")),
        Prompt("45bc3308", "per_class", md("""
            Before you run the next cell: which two classes do you expect the network to turn
            upright most reliably, and which two least? Think of how CIFAR-10's photographs of each
            class are taken."""), md("""
            Read the bars: vehicles are easiest. Ships sit on a water line, cars and trucks on a
            road, with sky above, photographed from the side: the layout gives "up" away. Animals
            photographed close up, from every side, curled up or perched (cats, birds, frogs) are
            hardest: fur and feathers look much the same any way up and there is often no horizon.
            The ranking says as much about how photographers frame each class as about the
            objects.""")),
        Prompt("26889e79", "evaluate_blocks(encoder", md("""
            Before you run the next cell: at which of its four stages will the rotation encoder
            give the best linear probe? Will it be the last stage, the one that fed the rotation
            classifier?"""), md("""
            Read the rotation probe column: its best stage is in the middle, not the last, while the
            supervised encoder's best is its last stage. Gidaris et al. found the same on CIFAR-10
            (their second block best, deeper blocks worse): the last layers specialise in telling
            rotations apart and drop what other tasks need. At its best stage rotation beats random
            init clearly (the next cell's assert requires two points).""")),
    ],
    questions=[
        Question("54e90194", "Try to find images it gets right in every orientation and ones it gets wrong; can you say why?",
                 "39f2879e", "RotationExplorer(", md("""
            Right in every orientation: images with a strong up-down layout, such as a horizon,
            sky above ground or water, a vehicle on a road seen from the side, an animal standing on
            the ground. Wrong in some orientation: images with no "up" (a view from above, a
            close-up texture, a curled-up cat); nearly symmetric outlines (an airplane alone in the
            sky, often confused between 0° and 180°, or 90° and 270°, the pairs that share an axis);
            and images where its cues mislead (a bright region that is not sky, such as snow or a
            white floor, or a dark sky). A good answer names the cue the network probably used and a
            picture where that cue fails.""")),
    ],
    discussion=Discussion("3a8f128a", (
        ("satellite images or microscope slides", md("""
            They have no canonical orientation: a field, a cell or a harbour seen from above is
            equally plausible at any rotation, so the four labels cannot be told apart from content,
            and a network can only learn artefacts (sensor stripes, illumination direction) or
            nothing. Better: tasks that do not assume an "up", or that make the representation
            invariant to rotation, such as contrastive learning with rotations among the
            augmentations; context or neighbourhood tasks (nearby tiles of a satellite image are
            similar, as in Tile2Vec); for satellites, images of the same place at different times as
            positive pairs; inpainting or colorization-style prediction of one part or channel from
            another.""")),
        ("low-level artefacts (JPEG blocks", md("""
            Putting all four rotations of every image in a batch balances the labels, but an
            artefact rotates with the image: a black border from padding on one side, a directional
            blur, the orientation of the sensor's colour pattern or of JPEG's block grid relative to
            the content are all still there, turned by the same angle, so they still give the
            rotation away. What removes them: crops without zero padding (or with reflection
            padding), random crops and resizing applied after the rotation so that borders and block
            alignment no longer carry the angle, blur and noise augmentation, and images whose
            artefacts are themselves rotation-symmetric.""")),
        ("intermediate stage", md("""
            That a pretext-trained network's last layers are specialised in the pretext task and
            the best general features lie earlier, so the layer to transfer from must be chosen, not
            assumed: probe every stage and choose on a validation split of the training data, never
            on the test set (lecture 08's protocol, after Goyal et al., 2019), or fine-tune the whole
            network so the top layers can re-specialise. The further the downstream task is from the
            pretext task, the earlier the best layer tends to be.""")),
        ("only 1,000 labels", md("""
            Give the supervised baseline only the 1,000 labelled images (same encoder, steps and
            augmentations; it will overfit, which is the point), and give the self-supervised method
            all the unlabelled images for pretraining and the same 1,000 labels for the probe or the
            fine-tuning; keep random init with a probe on the same 1,000 as the floor. Draw the 1,000
            class-balanced, repeat with several draws and report the spread, and choose any
            hyperparameter on a split of those 1,000, never on the test set. The encoder trained on
            all 40,000 labels stays in the table as a ceiling, not as a competitor.""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 05 clustering and instances
# --------------------------------------------------------------------------------------------
L05 = dict(
    prompts=[
        Prompt("8a5cfe7d", "nmi_labels", md("""
            The next cell plots how well DeepCluster's clusters agree with the true classes (NMI
            against the labels) at each of its five clusterings, and how much each clustering agrees
            with the previous one. Before you run it: will the NMI against the labels rise steadily
            round after round, or mostly in one place? How high do you expect it to get, knowing
            that with 100 clusters for 10 classes even a split of every class into 10 pure clusters
            gives 2/3?"""), md("""
            Read the printed NMI line: it rises mostly at the first round and hardly after, and stays
            low, far below the 2/3 of perfect over-clustering (the paper reached about 0.45 against
            ImageNet's labels, after hundreds of epochs). The round-to-round NMI rises more steadily:
            the clusters stabilise faster than they become semantic. The first round moves the
            encoder from random features to features that group by colour and layout; the later
            rounds refine that grouping rather than discover objects. Only the second curve can be
            watched without labels.""")),
        Prompt("b6c4d2a2", "cluster_features(encoder", md("""
            The next cell clusters the test images with the same k-means, once on the random
            encoder's features and once on the trained DeepCluster encoder's. Before you run it: how
            much better will the trained features agree with the true classes: several times better,
            twice as well, or only a little?"""), md("""
            Only a little: compare the two NMI values. The random encoder's clusters already carry
            class information, because random ConvNet features describe colour and layout, which
            correlate with CIFAR-10's classes (lecture 00's random-init baseline), and 350 steps of
            DeepCluster improve on them by a modest fraction. The cluster grids that follow show
            why: the trained encoder still groups by scene (blue with something in the middle) more
            than by object.""")),
        Prompt("3858a534", "neighbour_agreement", md("""
            NPID was trained only to tell every image apart from every other. Before you run the
            next cell: will a test image's nearest training images, by NPID's features, share its
            class more often than by random features? When they do not share the class, what do you
            expect them to share?"""), md("""
            More often than with random features (the two percentages under the grids; chance is
            10%), but far from always. What the neighbours reliably share is what survives NPID's
            augmentations: the global layout and the dominant colours (a white horse beside airplanes
            on a white sky, a blue ship beside blue cars). Instance discrimination brings
            similar-looking images together although no pair was ever called similar, the
            observation Wu et al. started from; at this budget "similar-looking" is mostly colour
            and layout rather than the object.""")),
    ],
    questions=[
        Question("ecfd131b", "Before you switch from k = 100 to k = 10, predict: will the clusters be purer or less pure, "
                 "and will the purest still be grouped by scene?", "1ef6190b", "ClusterBrowser(", md("""
            Less pure: with 10 clusters each holds about a tenth of the images, so it merges several
            of the small, fairly pure groups that k = 100 finds (boats on water, cars on streets)
            with others, and the purity of the purest and the mean purity both drop (compare the
            purities the browser shows at k = 100 and k = 10 for the same features). The grouping
            principle does not change with k: k-means on these features follows their strongest
            structure, colour and layout, so the purest clusters stay scene-like (blue backgrounds
            with ships and airplanes together). This is why DeepCluster over-clusters, with many more
            clusters than classes: fine clusters can be pure even when coarse ones cannot.""")),
    ],
    discussion=Discussion("143e9334", (
        ("uniform sampling over clusters prevents", md("""
            With collapsed features k-means puts almost every image in one giant cluster. Against
            the labels the NMI falls towards 0: one cluster has (almost) no entropy and says nothing
            about the class. Round to round the NMI can look deceptively healthy, because the giant
            cluster persists from round to round; with literally one cluster both entropies are 0
            and the NMI is undefined (0/0), which implementations report as 0 or 1. So a stable
            round-to-round NMI alone is not a sign of health; watch the cluster sizes (lecture 05's
            size curve) and the number of empty clusters re-seeded as well.""")),
        ("100 clusters for 10 classes", md("""
            With 10 clusters, k-means still finds the strongest structure in the features (colour and
            layout), so each cluster mixes classes and its purity drops; the pseudo-label task
            becomes easy and tells the network little. With 1,000 (about 10 images each), clusters
            approach instance discrimination: small and pure, but noisy and unstable from round to
            round. NMI against the labels is biased by k (more clusters raise the mutual
            information and the clusters' entropy together), so compare values only at equal k, and
            in a real setting there are no labels: watch the round-to-round NMI (stability) and
            judge k by a downstream probe on a small labelled set. Caron et al. found heavy
            over-clustering best on ImageNet (10,000 clusters for 1,000 classes).""")),
        ("same breed of dog as two different classes", md("""
            The network cannot give every image an arbitrary feature: it is a smooth function of
            the pixels, trained on augmented views, so images that look alike produce similar
            features, and pushing two similar images apart costs more than it gains while the loss
            is dominated by the many easy negatives. The softmax over the whole bank makes the
            loss care most about the nearest entries, but with limited capacity and training it
            cannot separate everything, and what it can separate first are images that differ. It
            hurts when near-duplicates or many same-class images are pushed apart hard: datasets with
            few classes or many near-copies, low temperatures that concentrate on the nearest
            negatives (lecture 06), and fine-grained tasks where the differences the loss ignores are
            the ones that matter.""")),
        ("refreshed only when that image is in a batch", md("""
            Each image is drawn once per pass over the data (the loop shuffles per epoch), so an
            entry is rewritten once every N/B = 40,000/256 ≈ 156 steps, and at any moment it is on
            average about half of that, some 80 steps, old, written by a network that has since
            changed; in the first steps, when the network changes fastest, old entries and new
            queries disagree most (the kNN monitor's dip in section 6). MoCo keeps negatives only a
            few steps old (a queue of the most recent batches' keys) and computes them with a
            momentum encoder that changes slowly, so that keys computed at different steps stay
            comparable.""")),
        ("leaves out each query's own bank entry", md("""
            Each query's most similar bank entry would usually be its own, a feature of the same
            image from a recent step, and with weight exp(s/0.1) that one vote would dominate the
            200: the monitor would report how well the network recognises images it has stored,
            that is instance recognition with the answer in the bank, near 100%, rather than whether
            its features put different images of the same class together.""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 06 contrastive
# --------------------------------------------------------------------------------------------
L06 = dict(
    prompts=[
        Prompt("8783e348", "collapsed = nt_xent_vectorised", md("""
            The next cell evaluates your loss on a collapsed batch (every embedding the same) and
            on random embeddings, for B = 256. Before you run it: which of the two gives the lower
            loss, and by how much? Where do both sit relative to log(2B − 1)?"""), md("""
            Almost the same. A collapsed batch gives exactly log(2B − 1): all similarities are
            equal, so each anchor's softmax is uniform over its 2B − 1 candidates. Random
            128-dimensional embeddings are nearly orthogonal, all similarities close to 0, so the
            softmax is again almost uniform and the loss a hair above log(2B − 1) (the assert: within
            0.1). In practice: a freshly initialised network starts near log(2B − 1); a first loss
            far from it points at a bug (the anchor left in its own denominator, for instance), and a
            loss that stays there means nothing is being learned, collapsed or not.""")),
        Prompt("e7dfcd17", "queue.push(k)", md("""
            The next cell runs six steps of MoCo on a fresh network, with a queue of 128 keys that
            starts as random vectors. Before you run it: will the loss go down over these six steps,
            stay level, or go up? How often will the positive key be ranked first?"""), md("""
            Up, and the accuracy down (the assert checks both). At the first step the queue holds
            random unit vectors that look nothing like embeddings of photographs, so the positive key
            wins easily. As keys of real images replace them (the `real keys in queue` column), the
            positive becomes one of 129 similar-looking candidates, since an untrained network maps
            all photographs to nearby points, and the loss climbs towards log 129 ≈ 4.86, a uniform
            guess. Learning has not started yet: in the 350-step run the loss peaks once the queue is
            full of real keys and only then falls (the curve after the BatchNorm section). A rising
            loss at the start of MoCo is not a bug.""")),
        Prompt("38e57e3a", "color_histograms", md("""
            The next cell uses no network at all: each view is described by its colour histogram,
            and a view's partner is guessed as the view with the most similar histogram, among more
            than a thousand. Before you run it: how often will that find the partner with crops and
            flips only? And with SimCLR's colour distortion?"""), md("""
            With crops and flips only, most of the time (the assert requires more than half; chance
            is 0.1%): two crops of one photograph show different parts of it but share its colours.
            With colour distortion, rarely (the assert: under a fifth). So without colour distortion
            most of SimCLR's pretext task can be solved by comparing colour histograms, with no
            knowledge of objects: the argument of the SimCLR paper's Figure 6, and the reason random
            cropping combined with colour distortion stood out in its study of augmentations.""")),
        Prompt("a8aec99f", "short_run(", md("""
            The next cell trains SwAV from a fresh network for six steps, twice: with Sinkhorn-Knopp
            codes, and with the plain softmax of the scores as the code. Before you run it: in which
            run will the loss fall faster? Is that good news?"""), md("""
            The plain-softmax run's loss falls fastest, towards zero within a few steps, and that is
            the bad news: its `prototypes used` column shows every view going to one prototype (the
            assert: under 5% of them in use). A code that always names the same prototype is
            trivially predicted from the other view, so collapse solves the swapped prediction
            perfectly. With Sinkhorn-Knopp each prototype must take an equal share of the batch, the
            collapsed solution does not exist, the loss stays near log K and the prototypes stay in
            use. A loss that drops to zero in a few steps is a symptom, not a success.""")),
    ],
    questions=[
        Question("161b1d93", "Are the hardest negatives the same kind of object as the anchor? Then what happens to them at a low temperature?",
                 "a6dac319", "ContrastTemperatureExplorer(", md("""
            Often, yes: an anchor's most similar negatives tend to be images of its own class, or
            of a look-alike class (cat and dog, car and truck), usually with similar colours and
            layout. At a low temperature nearly all of the push on the negatives goes to these few
            (the widget's right panel gets steeper), so training pushes apart exactly the images a
            downstream classifier wants together. Wang & Liu (CVPR 2021) call this the
            uniformity-tolerance dilemma: a low temperature buys uniformity at the cost of tolerance
            to semantically similar negatives. A higher temperature spreads the push over all
            negatives and tolerates these false negatives better, with a weaker focus on the
            informative hard ones.""")),
    ],
    discussion=Discussion("61b255fc", (
        ("loss of a collapsed encoder", md("""
            At initialisation the embeddings are nearly collapsed or nearly random, and both give
            about log(2B − 1) (section 2), so the first loss value is predictable from B alone: if it
            is far off, the implementation is wrong (an anchor left in its own denominator, views
            paired with the wrong partner, features not normalised). The final value depends on B,
            which sets the number of candidates and so the scale (log(2B − 1)), and on the
            temperature, which sets the scale of the logits (section 3's table: the same embeddings
            give very different losses at different τ). Two runs with different B or τ are
            optimising different losses; compare them by a probe of their features, or at least
            relative to their own log(2B − 1).""")),
        ("lower temperature focuses the gradient", md("""
            With ten classes, about a tenth of an anchor's negatives are of its own class, and they
            are among its most similar ones, the hard negatives. A very low temperature concentrates
            nearly the whole push on them, so the loss spends its effort separating images of the
            same class: the class neighbourhoods break up. A kNN probe, which reads exactly those
            neighbourhoods, should suffer first (fewer same-class neighbours); a linear probe less,
            since classes can remain linearly separable while neighbours are scattered. This is the
            uniformity-tolerance trade-off of Wang & Liu (CVPR 2021).""")),
        ("momentum encoder and queue let it use thousands", md("""
            With m = 0 the keys come from the current query encoder, which changes at every step,
            so the queued keys were computed by many different networks and are not comparable with
            each other or with the new query: the network can tell old keys from new ones by that
            inconsistency. He et al. (2020, Sec. 4.1, with K = 4,096) report that with m = 0 the
            training loss oscillates and fails to converge, and that accuracy rises with the momentum
            and then levels off: 55.2% at m = 0.9, 57.8% at 0.99, 59.0% at 0.999, 58.9% at 0.9999.
            Their CIFAR-10 demo says the same of m = 0 there. With m = 0.99999 the key encoder
            averages the query encoder over roughly 1/(1 − m) = 100,000 steps, longer than almost
            any run: it stays near its initial random weights, so queries are trained against keys
            of a random network, and learning is very slow or stalls.""")),
        ("Without colour distortion SimCLR solved", md("""
            Two random crops of one image often overlap, and in the overlap they share exact
            pixels; crops at similar scales share the same resizing blur; both share the
            photograph's noise, compression and sharpness, its overall brightness and contrast, and
            its background texture. Matching these solves the task without recognising anything.
            Augmentations that close them: crops that overlap less or come at different scales,
            Gaussian blur and noise (SimCLR uses blur on ImageNet), brightness and contrast jitter
            (part of its colour distortion), and, for the overlap, taking the two views from
            disjoint regions.""")),
        ("PIRL makes a representation invariant to shuffling tiles", md("""
            Colour jitter and greyscale (SimCLR) teach the features to ignore colour, so a task that
            needs colour, ripe against unripe fruit, red against green traffic lights, flowers of
            different species, is hurt. Invariance to tile shuffling (PIRL) discards the spatial
            arrangement of parts, so a task that needs orientation or layout, reading text (a 6 and
            a 9, a b and a d), pose, or which way something faces, is hurt, as it is by invariance to
            flips. Crop invariance also weakens localisation and counting. Choose augmentations so
            that what they change is what the downstream task should ignore.""")),
        ("SwAV never compares two images directly", md("""
            In the equipartition constraint: the codes of a batch must spread equally over the
            prototypes, so two different images cannot both be assigned to the same prototype
            beyond its share, and the batch's other images compete for the prototypes, which is what
            negatives do in InfoNCE (they keep the solution from collapsing). The softmax over the
            prototypes in the prediction also contrasts the right prototype with all the others.
            The prediction's softmax has a temperature of 0.1 (the formula above), and the
            Sinkhorn-Knopp ε (0.05 here) plays the temperature's role for the codes: it sets how
            sharp, close to a hard assignment, each code is.""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 07 alignment and uniformity
# --------------------------------------------------------------------------------------------
L07 = dict(
    prompts=[
        Prompt("c5bac1e0", "uniform_points(2000, dim)", md("""
            The next cell computes both metrics for reference configurations. Before you run it:
            what alignment do two *unrelated* random points on the sphere have (0 for identical,
            4 for opposite)? And will points spread evenly over the sphere have a lower uniformity in
            2 dimensions or in 256?"""), md("""
            Unrelated pairs have alignment 2: for independent uniform unit vectors the inner product
            averages 0, so the mean squared distance is 2 − 2·0 = 2, in any dimension. Uniformity is
            lower in high dimensions: evenly spread points in 256 dimensions are nearly orthogonal,
            at squared distance close to 2, so the kernel $e^{-t \\cdot 2}$ gives a floor near
            −2t = −4, while on a circle many pairs are close and the floor is only about −1.6.
            Collapse gives 0 in every dimension. So read a uniformity against the floor of its own
            dimension: −1.5 is nearly perfect on a circle and poor in 128 dimensions.""")),
        Prompt("53cb9fa4", "plot_snapshots", md("""
            The next cell trains four 2-D heads with four losses and draws the test images on the
            circle as training goes. Before you run it: sketch what the circle will look like after
            training with *alignment alone*, and with *uniformity alone*."""), md("""
            Alignment alone: every image on one point of the circle, a single spike in the density
            ring, pairs at distance 0; the cheapest way to make every pair agree is to map
            everything to the same place. Uniformity alone: points spread nearly evenly around the
            circle, classes mixed, and the pair-distance histogram of the last column far from 0,
            since the two views of an image land anywhere. The contrastive loss and alignment +
            uniformity sit in between: spread out, with pairs much closer than uniformity alone
            keeps them. The next cell prints the numbers and asserts each of these.""")),
        Prompt("f47e48b8", "floor_sphere", md("""
            The next cell places every encoder of the course on the alignment-uniformity plane,
            sorted by kNN accuracy. Before you run it: which encoder do you expect to have the best
            (lowest) alignment? Will the supervised encoder, the best by kNN, also be the most
            uniform?"""), md("""
            The best-aligned encoders are not good ones: find the lowest values of the alignment
            column and look at their uniformity, near 0 (close to collapse), and their kNN accuracy,
            below the random network's. They are pretext encoders whose pooled features barely vary
            (the jigsaw family in the course's run): when features hardly change, pairs are close
            for free. Supervised is best by kNN but not the most uniform: labels pull each class
            together, good for a kNN vote, costly for uniformity, which knows nothing of classes.
            The most uniform encoders are contrastive or clustering ones, whose losses push images
            apart. The next cell's asserts check these statements on your run.""")),
    ],
    questions=[
        Question("2f3cf7dd", "Before running the cell: which way do you expect alignment and uniformity to move as $\\tau$ grows?",
                 "c7b50a59", "temperatures = (", md("""
            On this circle, as τ grows up to about 1, alignment rises (looser pairs) and uniformity
            falls (more spread); beyond τ = 1 little changes (the asserts under the sweep check all
            three statements). Many expect the opposite, having read that a low temperature pushes
            towards uniformity. A low τ concentrates each anchor's push on its nearest negatives,
            which on a circle crowded with hundreds of negatives are always close by, so the push
            stays local and bunches survive, which the Gaussian kernel of uniformity (t = 2) scores
            as poor spread; and in Theorem 1 the alignment term is weighted by 1/τ, so a low τ
            favours tight pairs. Discussion question 5 asks whether this carries over to 128
            dimensions.""")),
    ],
    discussion=Discussion("fd4411b4", (
        ("its projection head", md("""
            After the head. The loss acts on the head's output z, so the head is trained to make the
            two views' z agree, and the cheapest way is to discard what differs between them
            (colour, position, crop). The representation h before the head is not asked for that
            directly and keeps more of it, which is why SimCLR evaluates h: its authors show that
            h retains more information about the applied transformations than g(h) does (their
            section 4.2). So alignment measured on h is higher (pairs further apart) than on z, and
            uniformity on h reflects a space the loss did not shape directly.""")),
        ("non-negative (ReLU, then pooling)", md("""
            Not entirely: after a ReLU and pooling, two features can be at most 90° apart, so the
            floor of uniformity computed for the whole sphere is out of reach for every encoder, and
            an encoder is rewarded for spreading by using different coordinates rather than opposite
            directions. The comparison between encoders is still informative, since all of them
            share the constraint, but the absolute values are not comparable with the paper's.
            A simple change: subtract the mean feature (computed on training images) before
            normalising, so that features can point anywhere. It can break things: a nearly
            collapsed encoder's tiny variations are blown up by centring and look uniform, and the
            mean depends on the data it was computed on.""")),
        ("BYOL and SimSiam", md("""
            An asymmetry between the two branches. Both put a predictor network on one branch and
            stop the gradient on the other, whose output is the target; BYOL's target branch is in
            addition a slowly moving average of the online network (like MoCo's key encoder). The
            collapsed solution exists but is not reached by the training dynamics: the target is
            held fixed at each step, and the predictor tracks it. BatchNorm in the heads was at
            first suspected of acting as an implicit contrast, but BYOL trains without batch
            statistics too (with group normalisation and weight standardisation, as its authors
            showed later), and SimSiam's authors found that the stop-gradient is what matters.""")),
        ("histopathology the stain colour", md("""
            Keep cropping (at scales that keep the relevant structures), flips and rotations
            (tissue has no canonical orientation), blur and noise; drop or strongly reduce hue and
            saturation jitter and greyscale, which would teach the encoder to ignore the colour that
            carries diagnosis. Stain colour also varies between labs and scanners for reasons
            unrelated to the diagnosis, so a mild, realistic stain augmentation (small shifts in the
            stain space) can be kept. InfoMin says the views should share as little as possible
            *while sharing what the task needs*: colour differences that are diagnostic must be
            shared by both views, so they cannot be augmented away, while lab-specific colour
            casts should be, because the task should ignore them.""")),
        ("best temperature for 2-D features", md("""
            No. On a circle the points are crowded: each anchor's nearest negatives are always
            close, so a low temperature's local push leaves bunches (section 4). In 128 dimensions
            there is room: random points are nearly orthogonal, the nearest negatives of an anchor
            are few and genuinely similar, and a low temperature can push them apart and still reach
            an even spread; the useful temperatures of the papers are low (MoCo 0.07, SimCLR 0.1 to
            0.5). Expect the best temperature to fall as the dimension grows, and check it with the
            same sweep on the 128-dimensional head.""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 08 transfer and the Gelato Bet
# --------------------------------------------------------------------------------------------
L08 = dict(
    prompts=[
        Prompt("601b5d57", "print_course_table", md("""
            The next cell prints the table of every method of the course under one protocol. Before
            you run it: of the self-supervised encoders, how many do you expect to beat random
            weights by more than a point at their best stage: most of them, about half, or only a
            few? Which family do you expect to lead?"""), md("""
            Count the rows above `random-init` in the all-labels column (the cell after the plot
            counts those more than a point ahead for you). Students usually expect most; at the class
            budget few do, because 350 steps on small images change mostly the deeper stages, while a
            random ConvNet's middle-stage features, pooled, are already a good generic description of
            a 32×32 image (lecture 00). Which family leads depends on where the encoder is read:
            at the best stage, pretext tasks that shape the middle of the network do well; at the
            last stage (the left columns) the instance-discrimination methods lead. Every ablation
            should sit below the method it ablates, and supervised far above all.""")),
        Prompt("dd86228c", "spearman", md("""
            The next cell sets our linear probe beside the papers' VOC classification mAP for the
            six methods both tables have, and computes the rank correlation of the two orders.
            Before you run it: will the two rankings agree? Which methods do you expect to move
            most?"""), md("""
            Loosely at best: read the Spearman correlation (1 is the same order, 0 no relation).
            With only six methods a rank correlation must be very high before it is distinguishable
            from chance (about 0.83 for a one-sided test at 5%). Supervised should top both. The methods that move most are
            those whose strength came from scale: DeepCluster (10,000 clusters over ImageNet for
            hundreds of epochs) and the patch methods, jigsaw and context, whose 8- and 16-pixel
            pieces of 32-pixel images are a different task from 64- and 96-pixel pieces of large
            photographs. The VOC numbers are also after fine-tuning, ours on frozen features.""")),
        Prompt("98206f70", "transfer_episodes", md("""
            The next cell probes the encoders on two tasks they never trained for, faces against
            background crops and handwritten digits, with five labelled images per class. Before you
            run it: will the supervised encoder, far ahead on CIFAR-10, also be the best on these
            tasks? What kind of encoder do you expect to transfer best to faces?"""), md("""
            Often not: compare the `supervised` row with the others, minding the ± standard errors
            (a difference of less than about two standard errors is not one to trust). Supervised
            features are specialised to CIFAR-10's ten classes; telling a face from a background
            crop, or one digit from another, depends on texture, edges and strokes, which random and
            self-supervised encoders keep. Even a shortcut encoder (context without a gap) can do
            well on faces, because it learned exactly the low-level cues that the CIFAR-10 probe
            punishes. The printed correlations say how loosely CIFAR-10 accuracy predicts transfer.
            """)),
    ],
    questions=[],
    discussion=Discussion("81a51898", (
        ("reads every encoder at its best stage", md("""
            Compare the table's last-stage probe column with its best-stage column. Pretext-task
            encoders would lose most: rotation, context, colorization and above all jigsaw, whose
            last stages specialised in their pretext task (jigsaw's last stage falls far below
            random weights). Instance-discrimination methods (NPID, PIRL, MoCo, SimCLR) would lose
            little or nothing, since their loss acts on the last stage and their best stage is often
            close to it; the ranking would move towards them. Papers that report only the last
            layer therefore favour methods whose loss shapes the last layer, which is why Goyal et al.
            (2019) probe every layer.""")),
        ("supervised baseline had 40,000 labels", md("""
            No: its features were trained with all 40,000 labels, and only its probe got 1%, so it
            shows what full supervision buys, a ceiling rather than a competitor. A fair reference
            uses the same labels the self-supervised method gets: train the same encoder, same steps
            and augmentations, on only that 1% (class-balanced, several draws), then probe or
            fine-tune with the same images, next to random init probed with them. A stronger fair
            reference is semi-supervised training on the same 1% plus the unlabelled rest.""")),
        ("Several ablations", md("""
            The shortcut encoders: context without a gap can look like a strong method on the faces
            transfer, where it may even be the best; context trained through the lens sits among
            the methods in the CIFAR-10 column; SimCLR without colour jitter looks like a weak
            method rather than a lesson. A single number per method hides what a method learned, on
            which task, at which stage, and with what noise; report several tasks and stages, the
            baselines, the spread over seeds or draws, and label ablations as ablations (the family
            column), so that a reader does not adopt a shortcut as a method.""")),
        ("ranking and the VOC ranking disagree", md("""
            Differences: (1) fine-tuning against a frozen probe; (2) scale of the pieces and images
            (8- and 16-pixel patches of 32-pixel images against 64- and 96-pixel ones of ImageNet
            photographs); (3) training budget, 350 steps against hundreds of epochs; (4) network
            (a small ConvNet against AlexNet); (5) data and task (ten CIFAR classes against 1,000
            ImageNet classes, and VOC's multi-label classification and detection). Experiments that
            tell them apart: fine-tune our encoders instead of probing (1); rerun on larger images
            such as STL-10 with the same code (2); the full profile on a GPU, same everything else
            (3 and 4); and for each, recompute the rank correlation and see which change moves our
            ranking towards the papers'.""")),
        ("Gelato Bet was about detection after fine-tuning", md("""
            Choose a downstream task with its own labels (digits, faces, or a held-out set of
            CIFAR-10 classes as a stand-in for VOC), and compare two initialisations of the same
            encoder, both fine-tuned on that task with the same steps: (a) pretrained with extra
            human labels (the course's supervised encoder, playing ImageNet's role), and (b)
            pretrained on the same images without labels (the best self-supervised method). Repeat
            over several seeds or label draws. The bet is won at our scale if (b) matches or beats
            (a) by more than the spread between seeds; the frozen 5-shot faces column of this
            lecture is already a probe-only version of that experiment.""")),
    )),
)

# --------------------------------------------------------------------------------------------
# 09 beyond still images (written with its own prompts: the script puts them in the prompt format)
# --------------------------------------------------------------------------------------------
L09 = dict(
    prompts=[],
    lecture_prompts=[
        LecturePrompt("neigh-md", "neighbours", "nearest_neighbours(table",
                      "**Predict, then run.** The vectors were never told what a number", md("""
            Trained: words of the same kind, found from their contexts alone: other numbers next to
            *three*, other times of day and words like *morrow* next to *day*, family words (and the
            possessive *father's*) next to *father*, other parts of the face and words of weeping
            next to *eyes*; mixed with some noise from a corpus of 170,000 words. Random: unrelated
            words, with cosine similarities around 0.4 for every word. That level is what chance
            gives: two random directions in D = 64 dimensions have a cosine with standard deviation
            about 1/√64 = 0.125, and the largest of some 3,000 such cosines lies about three and a
            half standard deviations out. So a trained neighbour at a similar value is not evidence
            of anything by itself; the trained rows are read by which words they list, and the next
            cell compares similarities against a measured baseline.""")),
        LecturePrompt("blank-predict", "blank", "fill_in_the_blank(model",
                      "**Predict, then run.** In *i will tell you in three ___*", md("""
            No: read the printed ranks. The top guesses are frequent function words and the context
            words themselves, and the right words are far down the list (*days* and *eyes* are
            beyond the first ninety guesses in the stored run). The score adds each context word's
            evidence independently and ignores where it stands, so *three* votes for number and time
            words wherever the blank is; that is why *days* comes first when the blank is *you*, two
            places before *three*. The near hits are a frequent word (*my* in *good morrow to you ___
            lord*) and a repeated one (*romeo* in *o ___ romeo*), the self-repetition of discussion
            question 5."""),
                      split_from="blank-md"),
    ],
    questions=[
        Question("sound", "Which visual distinction would sound clusters *not* teach a network, however much video it sees?",
                 "sound", "**Predict, then read on.**", md("""
            Any distinction that makes no difference to the sound: a beach and a swimming pool, both
            water, voices and splashing, fall in the same sound cluster, so nothing pushes their
            features apart, and their visual differences (sand and waves against tiles and lane
            ropes) are learned only if some other sound correlates with them. The same holds for
            everything silent (furniture, paintings, a parked car), whose appearance the labels never
            constrain, and sound from outside the frame adds label noise. The paper's analysis fits:
            units selective to objects that make characteristic sounds (its abstract), which is
            what this label can teach."""), after_type="markdown"),
        Question("ex1-md", "What is the loss for K = 5?", "train", "(1 + settings.negatives) * 0.6931", md("""
            Each of the K + 1 terms is −log σ(0) = log 2, so the loss is (K + 1) log 2 = 6 × 0.693 ≈
            4.16 for K = 5: the value the next training cell prints as what all-zero vectors would
            give. Every trained epoch must come in below it, and it does (the cell asserts it).""")),
        Question("widget-md", "Look for the words whose neighbours are grammar rather than meaning", "widget",
                 "WordNeighbours(", md("""
            *thou* has as neighbours the verb forms that go with it (*wilt*, *dost*, *canst*, *art*,
            *say'st*) and *thy*, *thee*: words that fill the same grammatical slot, not words of
            related meaning. *hath* sits next to *has* and *been*, the same auxiliary in another
            form. Words about one play or one group of plays: *york* and *king* list the names and
            titles of the history plays (*lancaster*, *hereford*, *henry*, *plantagenet*), *romeo*
            lists *tybalt* and *juliet*. These lists are those of the stored run (seeded, on one
            thread); the random table shows only unrelated words, as in the cell above.""")),
    ],
    discussion=Discussion("discussion", (
        ("cluster the sound statistics and classify", md("""
            Lecture 01: Zhang et al. (2016) classify colour into quantised ab bins instead of
            regressing it. The reason there: for an uncertain target a regression loss is minimised
            by the average of the possible answers (a greyish colour), while a distribution over bins
            can keep several answers and be decoded to a vivid one. Owens et al. give a related
            reason: regressing the many texture statistics directly is hard, and the clusters turn
            them into a few classes whose cross-entropy copes with a target that is only partly
            predictable from the frame. The split-brain autoencoder of lecture 01's section 13 makes
            the same choice for both of its halves.""")),
        ("*equivariant* to the camera's motion", md("""
            Equivariance is the better choice where the transformation is what the task needs:
            estimating how the camera or an object moved, visual odometry and navigation, or the
            paper's next-best-view prediction; invariant features would have thrown away exactly
            that motion (or pose) information. Invariance is the better choice for recognising
            categories that the transformations do not change, such as CIFAR-10's classes under
            crops and colour jitter: an equivariant code keeps the pose and colour in the features,
            and a classifier with few labels must then learn to ignore them. The cost of invariance
            is specific to each augmentation: SimCLR's colour jitter removes colour, which hurts any
            task where colour is the label (a ripe fruit, a bird species); the cost of equivariance
            is features that do not group views of one object as tightly.""")),
        ("Negative sampling and InfoNCE", md("""
            With scores s⁺ for the positive and s₁ … s_K for the negatives: InfoNCE is
            −log [exp(s⁺/τ) / (exp(s⁺/τ) + Σₖ exp(sₖ/τ))], one softmax classification of the positive
            among K + 1 candidates, with s the cosine similarity of normalised embeddings; negative
            sampling is −log σ(s⁺) − Σₖ log σ(−sₖ), K + 1 independent binary classifications, with s
            the dot product of unnormalised vectors. In InfoNCE the candidates compete: the gradient
            on each negative is weighted by its share of the softmax, so the hardest negatives count
            most. In negative sampling each negative is pushed below zero on its own, regardless of the
            others. Skip-gram has no temperature: the vectors' lengths play its role, since a dot
            product of unnormalised vectors scales with their norms, and the training sets those
            lengths itself (a fixed τ on normalised vectors would be the InfoNCE way of fixing them).
            The negatives also differ: the unigram distribution to the power 3/4 in skip-gram, the
            other images of the batch or queue in InfoNCE.""")),
        ("nearest neighbours of *king*", md("""
            Neither, or both: the method does what it promises, a vector summarises the contexts a
            word has in this corpus, and in 40,000 lines of Shakespeare a king is talked about in the
            history plays next to Henry, England and earls, while queens appear in other scenes with
            other company. To bring *queen* closest, *king* and *queen* must share contexts (*the
            ___ of*, *long live the ___*, *my lord the ___*) much more often than they share names,
            which takes far more and more varied text; that costs data, training time and the
            corpus's character (the neighbours would no longer tell you about the plays). A narrower
            window is a natural guess but did not help here: rerunning the training cell with
            `dataclasses.replace(settings, window=1)` (a few seconds) leaves *queen* no nearer to
            *king* in our run. Adding knowledge from outside the text (a lexicon of related words)
            would also do it, at the price of no longer being self-supervised.""")),
        ("repeat the context words", md("""
            The training pairs are symmetric: each pair (w, c) within the window comes with (c, w),
            so a word's input vector v_w and its output vector v'_w are trained against the same set
            of partners and end up pointing the same way. Words also do repeat near themselves in
            dialogue (*romeo romeo*, *speak speak speak*). The fill-in score Σⱼ v'_{cⱼ}·v_w then
            rewards a candidate w equal to one of the context words through v'_{cⱼ}·v_{cⱼ}. In our run
            of the lecture's settings, v'_w·v_w is positive for 98% of the vocabulary, and for the
            median word w is itself its highest-scoring context (check with
            `(model.input.weight * model.output.weight).sum(1)` against `model.input.weight @
            model.output.weight.T`). Changes to the pretext task: make it the question asked, predict
            the word at one position from its ordered context (a separate output table per offset,
            or a masked-word model that reads the sentence in order, as BERT does), so that a context
            word is only a good answer where the text really repeats it; dropping the (w, w) pairs
            alone would remove the repetitions but not the alignment of the two tables.""")),
    )),
)

LECTURES = {"00": L00, "01": L01, "02": L02, "03": L03, "04": L04, "05": L05, "06": L06, "07": L07, "08": L08,
            "09": L09}


def answer_cell(lecture: str, kind: str, number: int, question: dict, text: str):
    anchor = f"{lecture}-{kind}-{number}"
    source = (f"{ANSWER_LEAD} · `{anchor}` · for instructors: `make student` leaves this cell out of the "
              f"student copies.\n\n{text}")
    return new_markdown_cell(source, id=f"answer-{anchor}",
                             metadata={"tags": [TAG], "question": {"anchor": anchor, **question}})


def apply(nb, lecture: str, spec: dict, errors: list[str]) -> None:
    """Insert the prompts and answers of ``spec`` into ``nb`` (after removing this script's old cells)."""
    nb.cells = [c for c in nb.cells if not OURS.match(c.get("id", ""))]
    by_id = {c.get("id"): c for c in nb.cells}

    def anchor(cell_id: str, expects: str, cell_type: str):
        cell = by_id.get(cell_id)
        if cell is None:
            errors.append(f"{lecture}: no cell with id {cell_id!r}")
        elif cell.cell_type != cell_type or expects not in cell.source:
            errors.append(f"{lecture}: cell {cell_id} is not the {cell_type} cell with {expects!r}")
        else:
            return cell
        return None

    def own_prompt(prompt: LecturePrompt) -> bool:
        """Make the lecture's own prompt a prompt cell right before its code cell; False if it cannot."""
        if prompt.cell not in by_id and prompt.split_from is not None:
            source = by_id[prompt.split_from].source if prompt.split_from in by_id else ""
            head, _, tail = source.rstrip().rpartition("\n\n")
            if not tail.startswith(prompt.text):
                errors.append(f"{lecture}: cell {prompt.split_from} does not end with the prompt {prompt.text[:40]!r}...")
                return False
            by_id[prompt.split_from].source = head.rstrip()
            index = next(i for i, c in enumerate(nb.cells) if c.get("id") == prompt.before)
            by_id[prompt.cell] = new_markdown_cell(tail, id=prompt.cell)
            nb.cells.insert(index, by_id[prompt.cell])
        cell = anchor(prompt.cell, prompt.text, "markdown")
        if cell is None:
            return False
        if not cell.source.startswith(prompt.text):
            errors.append(f"{lecture}: cell {prompt.cell} does not start with its prompt {prompt.text[:40]!r}...")
            return False
        index = next(i for i, c in enumerate(nb.cells) if c.get("id") == prompt.cell)
        if index + 1 >= len(nb.cells) or nb.cells[index + 1].get("id") != prompt.before:
            errors.append(f"{lecture}: the prompt {prompt.cell} is not right before the code cell {prompt.before}")
            return False
        if not cell.source.rstrip().endswith(PROMPT_TAIL):
            cell.source = f"{cell.source.rstrip()} {PROMPT_TAIL}"
        return True

    def position_after(cell_id: str) -> int:
        """Just after the cell, and after any answer cells already put there."""
        i = next(i for i, c in enumerate(nb.cells) if c.get("id") == cell_id) + 1
        while i < len(nb.cells) and OURS.match(nb.cells[i].get("id", "")) and nb.cells[i].get("id", "").startswith("answer-"):
            i += 1
        return i

    for number, prompt in enumerate(spec["prompts"], start=1):
        if anchor(prompt.before, prompt.expects, "code") is None:
            continue
        prompt_id = f"predict-{lecture}-{number}"
        index = next(i for i, c in enumerate(nb.cells) if c.get("id") == prompt.before)
        nb.cells.insert(index, new_markdown_cell(f"{PROMPT_LEAD} {prompt.text} {PROMPT_TAIL}", id=prompt_id))
        nb.cells.insert(position_after(prompt.before),
                        answer_cell(lecture, "predict", number, {"cell": prompt_id}, prompt.answer))
    for number, prompt in enumerate(spec.get("lecture_prompts", []), start=len(spec["prompts"]) + 1):
        if anchor(prompt.before, prompt.expects, "code") is None or not own_prompt(prompt):
            continue
        nb.cells.insert(position_after(prompt.before),
                        answer_cell(lecture, "predict", number, {"cell": prompt.cell}, prompt.answer))
    for number, question in enumerate(spec["questions"], start=1):
        asking = anchor(question.cell, question.quote, "markdown")
        if asking is None or anchor(question.after, question.expects, question.after_type) is None:
            continue
        nb.cells.insert(position_after(question.after),
                        answer_cell(lecture, "question", number, {"cell": question.cell, "quote": question.quote},
                                    question.answer))
    discussion = spec["discussion"]
    cell = by_id.get(discussion.cell)
    if cell is None:
        errors.append(f"{lecture}: no discussion cell with id {discussion.cell!r}")
        return
    items = discussion_items(cell.source)
    for question, _ in discussion.added:  # appended once; the list must be the end of the cell
        if not any(text == question for text in items.values()):
            cell.source = f"{cell.source.rstrip()}\n{max(items, default=0) + 1}. {question}"
            items = discussion_items(cell.source)
    answers = discussion.answers + tuple((question[:60], text) for question, text in discussion.added)
    if sorted(items) != list(range(1, len(answers) + 1)):
        errors.append(f"{lecture}: the discussion has questions {sorted(items)}, the script answers "
                      f"{len(answers)}")
        return
    for number, (phrase, text) in enumerate(answers, start=1):
        if phrase not in items[number]:
            errors.append(f"{lecture}: discussion question {number} no longer says {phrase!r}")
            continue
        nb.cells.insert(position_after(discussion.cell),
                        answer_cell(lecture, "discussion", number, {"cell": discussion.cell, "item": number}, text))


def discussion_items(source: str) -> dict[int, str]:
    """The numbered items after the cell's ``Discussion`` heading, read by tools/make_guide.py's own
    function, so that the questions this script answers are the ones the guide will list."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_guide", Path(__file__).resolve().parents[1] / "make_guide.py")
    make_guide = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_guide)
    return make_guide.discussion_items(source)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Insert the predict-then-run prompts and the model answers of issue 18.")
    parser.add_argument("--lectures", type=Path, default=ROOT / "lectures", help="folder of the lecture notebooks")
    args = parser.parse_args(argv)
    notebooks, errors = {}, []
    for lecture, spec in LECTURES.items():
        paths = sorted(args.lectures.glob(f"{lecture}_*.ipynb"))
        if len(paths) != 1:
            errors.append(f"{lecture}: expected one lecture {lecture}_*.ipynb in {args.lectures}, found {len(paths)}")
            continue
        nb = nbformat.read(paths[0], as_version=4)
        apply(nb, lecture, spec, errors)
        notebooks[paths[0]] = nb
    if errors:  # nothing is written unless every anchor was found
        sys.exit("apply_guide: the lectures do not have what the script expects:\n  " + "\n  ".join(errors))
    for path, nb in notebooks.items():
        nbformat.validate(nb)
        nbformat.write(nb, path)
        prompts = sum(c.cell_type == "markdown" and c.source.startswith(PROMPT_LEAD) for c in nb.cells)
        answers = sum(c.get("id", "").startswith("answer-") for c in nb.cells)
        print(f"{path.name}: {prompts} prompts, {answers} model answers")


if __name__ == "__main__":
    main()
