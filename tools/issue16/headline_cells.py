"""The text of the cells that tools/issue16/apply_headline.py puts into the lectures."""

NEW_CELLS, EDITS = {}, {}

HEADLINE_ROWS = '''from sslteach import headline
from sslteach.baselines import supervised_model_from_checkpoint

supervised_classifier = supervised_model_from_checkpoint(load_or_pretrain("supervised", train_images, train_labels, profile, data=data), device)
head = headline.course_rows({m: encoders[m] for m in METHODS}, train_set, test_set, profile,
                            classifiers={"supervised": supervised_classifier})
labelled_all = head["random-init"]["train_images"]
now = [name for name, row in head.items() if row["source"] == "evaluated"]
print(f"{len(head)} rows: {len(head) - len(now)} stored, {len(now)} measured now" + (f" ({', '.join(now)})" if now else ""))
seeds = {m: len(headline.seed_values(head, m)) for m in METHODS}
print("pretraining seeds per method:", ", ".join(f"{m} {n}" for m, n in seeds.items()))
mean_probe = {m: headline.summarize(headline.seed_values(head, m))["mean"] for m in METHODS}
shown = [*headline.BASELINES, *sorted(headline.SYLLABUS, key=lambda m: -mean_probe[m])]
headline.print_table({name: row for m in shown for name, row in head.items() if row["method"] == m})'''

HEADLINE_FIGURE = '''from sslteach.table_figures import plot_seed_spread

verdict = headline.verdicts(head)  # the effect rule of lecture 00, against random init
plot_seed_spread({m: headline.seed_values(head, m) for m in shown}, verdict)'''

HEADLINE_VERDICTS = '''random = headline.summarize(headline.seed_values(head, "random-init"))
supervised = headline.summarize(headline.seed_values(head, "supervised"))
print(f"random init {100 * random['mean']:.1f} ± {100 * random['sd']:.1f}, supervised {100 * supervised['mean']:.1f} ± "
      f"{100 * supervised['sd']:.1f} (its own classifier: {100 * head['supervised']['classifier']:.1f})")
for word in ("above", "level within noise", "below", "not enough seeds"):
    group = [m for m in headline.SYLLABUS if verdict[m]["verdict"] == word]
    if group:
        print(f"{word}{' random init' if word in ('above', 'below') else ''}: "
              + ", ".join(f"{m} {100 * verdict[m]['difference']:+.1f}" for m in group))
five = [m for m in headline.SYLLABUS if verdict[m]["difference"] >= 0.05]
print(f"at least 5 points above random init (mean of the seeds): {len(five)} of {len(headline.SYLLABUS)}, "
      f"{sum(seeds[m] >= 3 for m in five)} of them with three seeds")
assert verdict["supervised"]["verdict"] == "above", "labels should beat random weights beyond the noise"
assert any(verdict[m]["verdict"] == "above" for m in headline.SYLLABUS), "some method should beat random weights beyond the noise"'''

HEADLINE_MD = '''### The headline: final features, three seeds

Most self-supervised papers report one readout: a linear probe (and often a kNN) on the encoder's **pooled final features**, the vector a downstream task would take, with all the labelled images. That is the course's headline too (`sslteach.headline`), for every method: weighted kNN (k = 200, t = 0.1) and a linear probe on the final features of all the labelled training images (40,000 on the course's split), and probes with 1% and 10% of them. It differs from the per-stage table further down in two ways that matter:

* **No choice of stage, no 2×2 map.** An early stage's pooled map scores well for *any* network, random weights included (lecture 00), so a best-stage readout hides what pretraining did to the features a user actually takes away.
* **Three pretraining seeds** for every method of the syllabus and both baselines, with the **effect rule** of lecture 00: a method is above or below random init only when the difference of the means is larger than twice the combined seed spread; otherwise it is **level within noise**.

Only seed 0's checkpoints ship with the course (5 MB each). The rows of seeds 1 and 2 ship in `checkpoints/class/headline_table.json` with the fingerprint of the weights they measured and the command that trains them (`python -m sslteach.train METHOD --seed 1`; training is deterministic on a CPU, so the same command gives the same weights). The next cell measures the seed-0 rows of the encoders just loaded unless a row for exactly those weights is stored (about two minutes each on a laptop CPU), and adds the stored rows of the other seeds.'''

HEADLINE_WIDGET_MD = '''Explore the headline table: choose a readout (the probe with all, 10% or 1% of the labels, or kNN) and the bars redraw, coloured by the effect rule against random init; choose a method to read its seeds and its verdicts against both baselines.'''

HEADLINE_WIDGET = '''from sslteach.widgets import HeadlineExplorer

HeadlineExplorer(head, shown)'''


SEEDS_00_MD = '''## 6. One run is one draw: when is a difference an effect?

Train the same method twice with two seeds (another random initialisation, other batches, other augmentations) and you get two networks and two accuracies. Neither is "the" accuracy of the method: each is one draw from the spread of results the method gives at this budget. A method that beats random weights by two points in one run may not beat them at all in the next.

So the course trains every method of the syllabus and both baselines with **three seeds** (0, 1 and 2), reads each with the same **headline readout** (weighted kNN and a linear probe on the encoder's pooled final features, with all the labelled training images; `sslteach.headline`), and reports the mean and the standard deviation (sd) over the seeds. Then one rule decides what the lectures may call an effect:

> **The effect rule.** A difference between two methods is an effect when it is larger than **twice their combined seed spread**, $2\\sqrt{\\mathrm{sd}_a^2 + \\mathrm{sd}_b^2}$. Otherwise the two are **level within noise**, and the course says so.

With three seeds the spread itself is rough, and twice the combined spread is a deliberately cautious bar: a real but small effect can fail it. What the rule forbids is the opposite mistake, reading a difference of one run as a finding. Measuring a row takes about two minutes of a laptop's CPU, so the rows are computed by a command and stored with the checkpoints (lecture 08 shows the whole table); the next cell reads the baselines' rows.'''

SEEDS_00_CODE = '''from sslteach import headline

stored = headline.stored_rows(profile.name)
spread = {method: headline.seed_values(stored, method) for method in headline.BASELINES}
for method, values in spread.items():
    s = headline.summarize(values)
    print(f"{method:>12}: linear probe on final features, seeds 0-{len(values) - 1}: "
          + ", ".join(f"{100 * v:.1f}" for v in values) + f"  (mean {100 * s['mean']:.1f}, sd {100 * s['sd']:.1f})")
if all(len(values) >= 2 for values in spread.values()):
    c = headline.compare(spread["supervised"], spread["random-init"])
    print(f"supervised - random init: {100 * c['difference']:+.1f} points; twice the combined spread: "
          f"{200 * c['spread']:.1f} points -> {c['verdict']}")
    ri = spread["random-init"]
    print(f"random init against itself: its seeds lie {100 * (max(ri) - min(ri)):.1f} points apart")
    assert c["verdict"] == "above", "labels should beat random weights beyond the noise"
else:
    print("no seed rows stored for this profile: python -m sslteach.train random-init --seed 1 (and 2, and for "
          "supervised), then python -m sslteach.headline random-init supervised --seeds 0 1 2")'''

SEEDS_00_READING = '''Labels are an effect by any rule: the supervised encoder is 26.6 points above random weights, ten times the bar of 2.5 points. The number to remember is the other one: **three random initialisations of the same untrained network lie 2.4 points apart** on the same readout (44.2, 44.9 and 46.6%). So when a lecture shows one run of a method two or three points above random weights, that run alone has shown nothing; it takes several seeds, and the effect rule, to say more. Lecture 08 reads every method over its seeds, and the verdicts of the lectures follow its table. (The per-stage probes of section 5 are another readout, with 5,000 labels, used to see *where* in the network features live: they are one seed each.)'''

NEW_CELLS["00_introduction"] = [
    ("e4e645c5", [
        ("markdown", "seeds-00-md", SEEDS_00_MD),
        ("code", "seeds-00-code", SEEDS_00_CODE),
        ("markdown", "seeds-00-reading", SEEDS_00_READING),
    ]),
]
EDITS["00_introduction"] = [
    ("a5c08626", "| 6. Discussion | 10 min |", "| 6. One run is one draw: the effect rule | 5 min |\n| Discussion | 10 min |"),
]

FEW_LABELS_MD = '''**Pretraining against training on the few labels alone.** The supervised curve above is the ceiling, not a competitor: its encoder saw all 40,000 labels. The fair reference for "we have only 1% of the labels" is the same network **trained from scratch on that 1%** (`supervised-1pct`: a class-balanced 400 images, the same 350 steps of 256 images as every method, so each image is seen over and over; `supervised-10pct` the same with 4,000), three seeds each, each seed its own draw of images. If a probe on self-supervised features with the same number of labels beats it, pretraining without labels paid for itself. The next cell reads their rows from the headline table (their checkpoints do not ship; the command in each row trains them).'''

FEW_LABELS_CODE = '''for share, reference in (("0.01", "supervised-1pct"), ("0.1", "supervised-10pct")):
    scratch = [head[name]["classifier"] for name in head if head[name]["method"] == reference]
    if len(scratch) < 2:
        print(f"{reference}: no rows stored ({headline.train_command_for(reference, 0, profile.name)}, then "
              f"python -m sslteach.headline {reference}); skipped")
        continue
    s = headline.summarize(scratch)
    print(f"{float(share):.0%} of the labels ({round(float(share) * labelled_all):,} images): trained from scratch on them "
          f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}; a linear probe on frozen features with the same share:")
    for method in sorted(headline.SYLLABUS + ("random-init",), key=lambda m: -headline.summarize(headline.seed_values(head, m, share))["mean"]):
        probe_share = headline.seed_values(head, method, share)
        c = headline.compare(probe_share, scratch)
        print(f"   {method:<14}{100 * headline.summarize(probe_share)['mean']:>6.1f}  {c['verdict']} ({100 * c['difference']:+.1f})")'''

EDITS["04_rotation"] = [
    ("77f7d3ba",
     "* **Rotation beats random init**, most clearly in the deeper stages that pretraining actually changed. The gain is what the pretext task taught.",
     "* **In this run, rotation is ahead of random init**, most clearly in the deeper stages that pretraining actually changed. Is that the method, or this run? Over three pretraining seeds (lecture 08's headline table: a linear probe on the pooled final features with all 40,000 labels), rotation gives 51.8, 47.1 and 49.0% (mean 49.3 ± 2.4) against random init's 45.2 ± 1.2: 4.0 points ahead, less than twice the combined spread (5.4 points), so by the course's effect rule (lecture 00) it is **level within noise** on final features at this budget. Rotation's seeds differ more than most methods': the shipped checkpoint, seed 0, is the best of the three."),
    ("answer-04-predict-3",
     "At its best stage rotation beats random\ninit clearly (the next cell's assert requires two points).",
     "At its best stage rotation is\nahead of random init in this run (the next cell's assert requires two points); over three\nseeds, on final features, lecture 08 finds it level within noise."),
]

STAGES_MD = '''### Every stage: where each method keeps its features (an analysis, one seed)

The rest of this lecture reads the encoders the way the pretext-task lectures did: every stage's features pooled to 2×2, probes with the profile's 5,000 labelled images at the stage a probe on training images likes best (section 2), and 5-shot transfer. It answers another question than the headline, *where* in the network each method keeps what it learned, and it has one pretraining seed per method, the shipped checkpoint. Read its differences with the headline's seed spread in mind: random init's probe moves by 2.4 points from one seed to another and rotation's by 4.7, so two rows a few points apart below are level within noise unless the headline says otherwise. The course's verdicts are the headline's.'''

EDITS["08_transfer_and_gelato_bet"] = [
    ("87d53414",
     "How to read the table (the two columns on the left are the last stage, the rest the stage each encoder reads best):",
     "How to read the table (the two columns on the left are the last stage, the rest the stage each encoder reads best; one seed per row, so a difference of a few points is level within noise unless the headline above says otherwise):"),
    ("f435d7e9", "Every number in this lecture comes from the same four steps, applied to every encoder",
     "Apart from the headline table of section 3 (final features only, several seeds; `sslteach.headline`), every number in this lecture comes from the same four steps, applied to every encoder"),
    ("d626d0be", "| 3. One table for the whole course | 10 min |", "| 3. One table for the whole course: the headline, then every stage | 15 min |"),
]

# ---- prose with the measured numbers (from the stored headline table)
EDITS["02_context_prediction"] = [
    ("eb6370a8",
     "It is a modest gain, and the kNN column is less kind:",
     "It is a modest gain, and one seed; over three pretraining seeds, on final features with all 40,000 labels (lecture 08's headline), context is 48.8 ± 0.5% against random init's 45.2 ± 1.2%: above, beyond the noise by the course's effect rule (lecture 00), but 3.5 points rather than the 5 the course hopes for. The kNN column is less kind:"),
]
EDITS["03_jigsaw"] = [
    ("1c41ffbb",
     "Treat differences of a couple of points between methods in this lecture as within that noise.",
     "Treat differences of a couple of points between methods in this lecture as within that noise. The gap at the last stage is not noise: over three pretraining seeds (lecture 08's headline: final features, all 40,000 labels) jigsaw gives 31.8, 33.0 and 35.9% against random init's 45.2 ± 1.2%, below it beyond any seed spread."),
]
EDITS["05_clustering_and_instances"] = [
    ("fffed1f1", "* **NPID beats the random encoder at every stage**", "* **In this run, NPID is ahead of the random encoder at every stage**"),
    ("fffed1f1",
     "a small gain is what to expect after 350 steps: the paper trained for 500 epochs on ImageNet.",
     "a small gain is what to expect after 350 steps: the paper trained for 500 epochs on ImageNet.\n"
     "* **One run is one draw** (lecture 00). Over three pretraining seeds, on final features with all 40,000 labels (lecture 08's headline), DeepCluster is 47.0 ± 1.0% against random init's 45.2 ± 1.2%: level within noise. NPID has one seed in that table so far (54.8%), so the course does not yet call its lead an effect, large as it is here."),
]
EDITS["06_contrastive"] = [
    ("61b255fc",
     "* **Every instance-discrimination method beats the random encoder** on both measures: SimCLR, MoCo, PIRL, NPID, and lecture 05's DeepCluster too. But for every method",
     "* **In this run, every instance-discrimination method is ahead of the random encoder** on both measures: SimCLR, MoCo, PIRL, NPID, and lecture 05's DeepCluster too. One run is one draw (lecture 00): over three pretraining seeds, on final features with all 40,000 labels (lecture 08's headline), SimCLR is 49.2 ± 1.5% against random init's 45.2 ± 1.2%, above by the effect rule but only just (3.94 points against a bar of 3.86); SwAV 43.6 ± 0.6%: level within noise; DeepCluster 47.0 ± 1.0%: level within noise. MoCo, PIRL and NPID have one seed in that table so far. For every method"),
    ("61b255fc",
     "* **SwAV is below the random encoder for kNN** and only a little above it for the linear probe,",
     "* **SwAV is below the random encoder for kNN** and only a little above it for the linear probe in this run,"),
    ("61b255fc",
     "Differences of a point or two between two methods are within the noise of a 350-step run (lecture 03 measured how a change in the number of CPU threads alone moved its numbers); the gaps to random init and to supervised are not.",
     "Differences of a point or two between two methods are within the noise of a 350-step run: the three seeds of SimCLR lie 2.9 points apart on the headline, and lecture 03 measured how a change in the number of CPU threads alone moved its numbers. The gap to supervised (71.8 ± 0.4%) is not noise."),
]
EDITS["01_colorization"] = [
    ("48682731",
     "colouring taught the encoder something about what is in the picture.",
     "colouring taught the encoder something about what is in the picture. That is one seed, read on grey images; on the course's headline readout (colour images, final features, all 40,000 labels, three pretraining seeds; lecture 08) colorization gives 49.1 ± 0.6% against random init's 45.2 ± 1.2%: above."),
]

HEADLINE_READING = '''How to read the headline (mean ± sd over the seeds; the bars' colours are the effect rule against random init):

* **Random init is a band, not a line:** 45.2 ± 1.2% over three seeds (44.9, 44.2 and 46.6%). The supervised encoder, on the same budget: 71.8 ± 0.4% (its own classifier 70.7 ± 0.2%: a linear probe on its final features does as well as the head it was trained with, or a little better).
* **Above random init, beyond the noise** (the difference, then the bar it must clear: twice the combined spread): split-brain 53.5 ± 0.3% (+8.27 against a bar of 2.53), SimCLR 49.2 ± 1.5% (+3.94 against a bar of 3.86), colorization 49.1 ± 0.6% (+3.82 against a bar of 2.71), context 48.8 ± 0.5% (+3.52 against a bar of 2.64). The split-brain autoencoder gains most, with the smallest spread.
* **Level within noise:** rotation 49.3 ± 2.4% (+4.04 against a bar of 5.36), DeepCluster 47.0 ± 1.0% (+1.77 against a bar of 3.12), SwAV 43.6 ± 0.6% (-1.63 against a bar of 2.71). Rotation is the lesson: its three seeds give 51.8, 47.1 and 49.0%, and seed 0, the shipped checkpoint that lecture 04 and the per-stage table below read, is the best of them.
* **Below random init:** jigsaw 33.6 ± 2.1% (-11.67 against a bar of 4.84). Jigsaw's last stages were trained on 8-pixel tiles (lecture 03), and on whole images they are worse than random filters. The 1,000-permutation jigsaw, which hardly solves its puzzles, sits at 44.0% (one seed), near random init: a task too hard to learn leaves the network nearly random, while a task learned at the wrong scale makes it worse than random.
* **One seed so far:** NPID 54.8% (+9.6), PIRL 54.8% (+9.6), MoCo 50.9% (+5.7), inpainting 46.7% (+1.4). The table says "not enough seeds" rather than guess; their seeds 1 and 2 are the next to train (`make seeds`).
* **The bar the course set itself**, 5 points above random init on the mean of three seeds: only one of the twelve methods of the syllabus clears it with three seeds, the split-brain autoencoder (split-brain +8.3); with one seed each, NPID, PIRL and MoCo are above it too (see above), not yet measured three times. The rest do not at 350 steps, and the lectures say so where they discuss them. Whether a longer schedule closes the gap is the compute ladder's question (`python -m sslteach.ladder` trains the same recipes 3 and 10 times longer); its results are not in this lecture yet.'''

FEW_LABELS_READING = '''Trained from scratch on its 400 labelled images, the network reaches 42.2 ± 1.9%, ten points above a probe with the same labels on random weights (31.5 ± 1.7%). **At this budget, pretraining without labels does not pay for itself.** With 400 labels the best frozen encoders are at most level with the network trained from scratch: the split-brain autoencoder (40.0 ± 0.7%) and SimCLR (38.4 ± 1.2%) level within noise, NPID and PIRL (one seed each, 41.3% and 40.4%) a point or two below it; every other method with three seeds is below it beyond the noise. With 4,000 labels the network trained from scratch reaches 67.4 ± 1.1% and every frozen encoder is 17 points or more below it. The semi-supervised papers win this comparison with long pretraining and with fine-tuning rather than a frozen probe (section 5); and it is why the supervised curve above, whose encoder had all 40,000 labels, is a ceiling and not a competitor.'''

EDITS["08_transfer_and_gelato_bet"] += [
    ("9a671d3f",
     "with 1% of the labels it is at 28.4% against 61.3%.",
     "with 1% of the labels it is at 28.4% against 61.3%. The headline agrees: on final features, over three seeds, the best method measured three times, the split-brain autoencoder, closes 31% of the gap between random init and supervised, and with 1% of the labels a network trained from scratch on them (42.2 ± 1.9%) beats every frozen self-supervised encoder (section 4)."),
]

NEW_CELLS |= {
    "08_transfer_and_gelato_bet": [
        ("319894dc", [
            ("markdown", "headline-md", HEADLINE_MD),
            ("code", "headline-rows", HEADLINE_ROWS),
            ("code", "headline-figure", HEADLINE_FIGURE),
            ("code", "headline-verdicts", HEADLINE_VERDICTS),
            ("markdown", "headline-reading", HEADLINE_READING),
            ("markdown", "headline-widget-md", HEADLINE_WIDGET_MD),
            ("code", "headline-widget", HEADLINE_WIDGET),
            ("markdown", "stages-md", STAGES_MD),
        ]),
        ("0287ffb9", [
            ("markdown", "few-labels-md", FEW_LABELS_MD),
            ("code", "few-labels-code", FEW_LABELS_CODE),
            ("markdown", "few-labels-reading", FEW_LABELS_READING),
        ]),
    ],
}
