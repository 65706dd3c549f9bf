"""The text of the cells that tools/issue16/apply_headline.py puts into the lectures."""

HEADLINE_ROWS = '''from sslteach import headline
from sslteach.baselines import supervised_model_from_checkpoint

supervised_classifier = supervised_model_from_checkpoint(load_or_pretrain("supervised", train_images, train_labels, profile, data=data), device)
head = headline.course_rows({m: encoders[m] for m in METHODS}, train_set, test_set, profile,
                            classifiers={"supervised": supervised_classifier})
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
        print(f"{word} random init: " + ", ".join(f"{m} {100 * verdict[m]['difference']:+.1f}" for m in group))
five = [m for m in headline.SYLLABUS if verdict[m]["difference"] >= 0.05]
print(f"at least 5 points above random init (mean of the seeds): {len(five)} of {len(headline.SYLLABUS)}")
assert verdict["supervised"]["verdict"] == "above", "labels should beat random weights beyond the noise"
assert any(verdict[m]["verdict"] == "above" for m in headline.SYLLABUS), "some method should beat random weights beyond the noise"'''

HEADLINE_MD = '''### The headline: final features, three seeds

Most self-supervised papers report one readout: a linear probe (and often a kNN) on the encoder's **pooled final features**, the vector a downstream task would take, with all the labelled images. That is the course's headline too (`sslteach.headline`), for every method: weighted kNN (k = 200, t = 0.1) and a linear probe on the final features of all {labelled} labelled training images, and probes with 1% and 10% of them. It differs from the per-stage table further down in two ways that matter:

* **No choice of stage, no 2×2 map.** An early stage's pooled map scores well for *any* network, random weights included (lecture 00), so a best-stage readout hides what pretraining did to the features a user actually takes away.
* **Three pretraining seeds** for every method of the syllabus and both baselines, with the **effect rule** of lecture 00: a method is above or below random init only when the difference of the means is larger than twice the combined seed spread; otherwise it is **level within noise**.

Only seed 0's checkpoints ship with the course (5 MB each). The rows of seeds 1 and 2 ship in `checkpoints/class/headline_table.json` with the fingerprint of the weights they measured and the command that trains them (`python -m sslteach.train METHOD --seed 1`; training is deterministic on a CPU, so the same command gives the same weights). The next cell measures the seed-0 rows of the encoders just loaded unless a row for exactly those weights is stored (about two minutes each on a laptop CPU), and adds the stored rows of the other seeds.'''

NEW_CELLS = {
    "08_transfer_and_gelato_bet": [
        ("319894dc", [
            ("markdown", "headline-md", HEADLINE_MD.replace("{labelled}", "40,000")),
            ("code", "headline-rows", HEADLINE_ROWS),
            ("code", "headline-figure", HEADLINE_FIGURE),
            ("code", "headline-verdicts", HEADLINE_VERDICTS),
        ]),
    ],
}

EDITS = {}

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

NEW_CELLS["00_introduction"] = [
    ("e4e645c5", [
        ("markdown", "seeds-00-md", SEEDS_00_MD),
        ("code", "seeds-00-code", SEEDS_00_CODE),
        ("markdown", "seeds-00-reading", "SEEDS_00_READING"),
    ]),
]
EDITS["00_introduction"] = [
    ("a5c08626", "| 6. Discussion | 10 min |", "| 6. One run is one draw: the effect rule | 5 min |\n| Discussion | 10 min |"),
]
