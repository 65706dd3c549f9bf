"""The headline table (issue 16): one readout on pooled final features, rows per pretraining seed,
and the effect rule that decides what the lectures may call a difference."""
from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import pytest
import torch

from sslteach import headline
from sslteach.data import CLASSES, ImageSet
from sslteach.encoders import build_encoder
from sslteach.profiles import CLASS, EVALUATION_SETTINGS, TRAINING_SETTINGS
from sslteach.transfer import table_data

from helpers import random_images

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "class"
PROVENANCE = {"dataset": "cifar10", "source_kind": "image archive", "source_md5": "a" * 32,
              "test_split": "carved: 10 per class from train, seed 0"}


def coloured_sets(noise: int = 0):
    """Four classes, each a flat colour (plus uniform noise up to ``noise``): raw pixels separate
    them perfectly, so every readout of raw pixels must be exact."""
    colours = torch.tensor([[250, 5, 5], [5, 250, 5], [5, 5, 250], [250, 250, 5]], dtype=torch.int16)

    def make(n, seed):
        labels = torch.arange(4).repeat(n // 4)
        g = torch.Generator().manual_seed(seed)
        pixels = colours[labels][:, :, None, None] + torch.randint(0, noise + 1, (n, 3, 8, 8), generator=g, dtype=torch.int16)
        return ImageSet(pixels.clamp(0, 255).to(torch.uint8), labels, CLASSES[:4], PROVENANCE)

    return make(200, 1), make(40, 2)


PROFILE = dataclasses.replace(CLASS, probe_train_images=0, knn_k=10)
PROTOCOL = {**headline.PROTOCOL, "label_fractions": [0.05, 1.0], "draws": 2}


def test_raw_pixels_of_separable_classes_read_out_perfectly():
    train, test = coloured_sets(noise=20)
    row = headline.measure(None, train, test, PROFILE, PROTOCOL)
    assert row["knn"] == 1.0 and row["linear_probe"] == 1.0
    assert row["label_efficiency"]["0.05"] == 1.0 and len(row["label_efficiency_draws"]["0.05"]) == 2
    assert row["train_images"] == 200 and row["test_images"] == 40 and "classifier" not in row


def test_an_encoder_row_reads_the_pooled_final_features_and_a_classifier():
    train, test = coloured_sets(noise=20)
    train = ImageSet(random_images(40, seed=3), torch.arange(4).repeat(10), CLASSES[:4], PROVENANCE)
    torch.manual_seed(0)
    encoder = build_encoder("small").eval()
    seen = []
    classifier = lambda x: seen.append(x.shape) or torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 4).float()  # noqa: E731
    row = headline.measure(encoder, train, test, PROFILE, PROTOCOL, classifier=classifier)
    assert 0 <= row["knn"] <= 1 and 0 <= row["linear_probe"] <= 1
    assert row["classifier"] == 0.25  # always class 0, one test image in four
    assert seen == [(40, 3, 8, 8)]  # float images, one batch


def test_rows_are_stored_and_measured_again_only_for_other_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    train, test = coloured_sets(noise=60)
    train = ImageSet(random_images(40, seed=3), torch.arange(4).repeat(10), CLASSES[:4], PROVENANCE)
    torch.manual_seed(0)
    encoder = build_encoder("small").eval()
    row = headline.load_or_measure("tiny-seed1", encoder, train, test, PROFILE, protocol=PROTOCOL,
                                   extra={"method": "tiny", "seed": 1})
    assert row["source"] == "evaluated" and row["method"] == "tiny" and row["seed"] == 1
    again = headline.load_or_measure("tiny-seed1", encoder, train, test, PROFILE, protocol=PROTOCOL)
    assert again["source"].endswith(headline.TABLE_FILE) and again["linear_probe"] == row["linear_probe"]
    with torch.no_grad():
        next(encoder.parameters()).add_(1.0)
    assert headline.load_or_measure("tiny-seed1", encoder, train, test, PROFILE, protocol=PROTOCOL)["source"] == "evaluated"
    other = {**PROTOCOL, "draws": 1}
    assert headline.load_or_measure("tiny-seed1", encoder, train, test, PROFILE, protocol=other)["source"] == "evaluated"


def test_stored_rows_leave_out_rows_of_an_earlier_recipe(tmp_path, monkeypatch):
    """A row records the recipe of the run it measured; a row that records none is a run of the
    recipe of unrecorded checkpoints (SwAV's old temperature). Rows of another recipe than today's
    are other runs: left out, as ``python -m sslteach.ladder`` leaves out its earlier rungs."""
    from sslteach.methods import stored_recipe
    from sslteach.transfer import store_row

    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    monkeypatch.setenv("SSLTEACH_RETRAIN", "1")  # the user's table only
    old_swav = headline.run_recipe("swav", {})  # a checkpoint recording no recipe
    assert old_swav["settings"]["temperature"] == 0.1 != stored_recipe("swav")["settings"]["temperature"]
    rows = {
        "swav-seed1": {"method": "swav", "seed": 1},                              # no recipe: the old one
        "swav-seed2": {"method": "swav", "seed": 2, "recipe": stored_recipe("swav")},
        "rotation-seed1": {"method": "rotation", "seed": 1},                      # no recipe: unchanged
        "rotation-seed2": {"method": "rotation", "seed": 2, "recipe": {**stored_recipe("rotation"), "lr": 9.0}},
        "raw pixels": {"method": "raw pixels", "seed": 0},
    }
    settings = {"profile": "class", "protocol": headline.PROTOCOL}
    for name, row in rows.items():
        store_row(tmp_path / "checkpoints" / "class" / headline.TABLE_FILE, settings, name, row)
    assert sorted(headline.stored_rows("class")) == ["raw pixels", "rotation-seed1", "swav-seed2"]
    # rows of one test split are not pooled with another's: with ``data``, only that data's rows
    (tmp_path / "checkpoints" / "class" / headline.TABLE_FILE).write_text(json.dumps(
        {**json.loads((tmp_path / "checkpoints" / "class" / headline.TABLE_FILE).read_text()), "data": PROVENANCE}))
    assert sorted(headline.stored_rows("class", data=PROVENANCE)) == ["raw pixels", "rotation-seed1", "swav-seed2"]
    assert headline.stored_rows("class", data={**PROVENANCE, "test_split": "official"}) == {}
    # without ``data``: the first table's images; the shipped table's rows (another split) are not added
    monkeypatch.delenv("SSLTEACH_RETRAIN")
    monkeypatch.setenv("SSLTEACH_CHECKPOINTS", str(SHIPPED.parent))
    assert sorted(headline.stored_rows("class")) == ["raw pixels", "rotation-seed1", "swav-seed2"]
    shipped = headline.stored_rows("class", data=table_data(json.loads(
        (SHIPPED / headline.TABLE_FILE).read_text()), SHIPPED / headline.TABLE_FILE))
    assert "swav-seed1" in shipped and all(row["source"].startswith(str(SHIPPED)) for row in shipped.values())
    assert headline.run_recipe("raw pixels") is None
    assert headline.run_recipe("swav", {"recipe": stored_recipe("swav")}) == stored_recipe("swav")


def test_seed_values_follow_the_seeds_and_the_metric():
    rows = {
        "a-seed2": {"method": "a", "seed": 2, "linear_probe": 0.3, "knn": 0.1, "label_efficiency": {"0.01": 0.05}},
        "a": {"method": "a", "seed": 0, "linear_probe": 0.5, "knn": 0.2, "label_efficiency": {"0.01": 0.06}},
        "b": {"method": "b", "seed": 0, "linear_probe": 0.9, "knn": 0.9, "label_efficiency": {"0.01": 0.9}},
    }
    assert headline.seed_values(rows, "a") == [0.5, 0.3]
    assert headline.seed_values(rows, "a", "knn") == [0.2, 0.1]
    assert headline.seed_values(rows, "a", "0.01") == [0.06, 0.05]
    assert headline.row_name("a", 0) == "a" and headline.row_name("a", 2) == "a-seed2"
    assert headline.seed_row(rows, "a", 2) is rows["a-seed2"] and headline.seed_row(rows, "a") is rows["a"]
    assert headline.seed_row(rows, "a", 1) is None and headline.seed_row(rows, "c") is None


def test_the_effect_rule():
    s = headline.summarize([0.50, 0.52, 0.48])
    assert s["mean"] == pytest.approx(0.50) and s["sd"] == pytest.approx(statistics.stdev([0.50, 0.52, 0.48])) and s["n"] == 3
    assert headline.summarize([0.4])["sd"] == 0.0
    base = [0.44, 0.45, 0.46]  # sd 0.01
    clear = headline.compare([0.50, 0.51, 0.52], base)  # +0.06, spread 0.0141
    assert clear["effect"] and clear["verdict"] == "above" and clear["difference"] == pytest.approx(0.06)
    assert clear["spread"] == pytest.approx(0.01 * 2 ** 0.5)
    assert headline.compare(base, [0.50, 0.51, 0.52])["verdict"] == "below"
    close = headline.compare([0.46, 0.47, 0.48], base)  # +0.02 < 2 x 0.0141
    assert not close["effect"] and close["verdict"] == "level within noise"
    assert headline.compare([0.9], base)["verdict"] == "not enough seeds"


def test_the_printed_table_has_no_verdicts_without_the_baseline(capsys):
    rows = {"a": {"method": "a", "seed": 0, "linear_probe": 0.5, "knn": 0.4, "label_efficiency": {"0.01": 0.2, "0.1": 0.3}}}
    headline.print_table(rows)
    assert "a " in capsys.readouterr().out


def test_the_command_line_refuses_unknown_methods(capsys):
    with pytest.raises(SystemExit):
        headline.main(["no-such-method"])
    assert "unknown method" in capsys.readouterr().err


def test_the_seed_spread_plot_colours_bars_by_the_effect_rule(shown):
    from sslteach.table_figures import VERDICT_COLOURS, plot_seed_spread
    import matplotlib.colors as mcolors

    values = {"random-init": [0.44, 0.45, 0.46], "supervised": [0.70, 0.71, 0.72],
              "up": [0.52, 0.53, 0.54], "same": [0.45, 0.46, 0.47], "one": [0.5]}
    rows = {f"{m}-seed{i}": {"method": m, "seed": i, "linear_probe": v, "label_efficiency": {}}
            for m, vs in values.items() for i, v in enumerate(vs)}
    verdicts = headline.verdicts(rows)
    assert [verdicts[m]["verdict"] for m in ("supervised", "up", "same", "one")] == [
        "above", "above", "level within noise", "not enough seeds"]
    plot_seed_spread(values, verdicts)
    ax = shown[0].axes[0]
    bars = [p for p in ax.patches if p.get_width() > 0 and p.get_height() == pytest.approx(0.6)]
    assert [round(b.get_width(), 3) for b in bars] == [53.0, 46.0, 50.0]  # the means, baselines not as bars
    expected = [VERDICT_COLOURS[v] for v in ("above", "level within noise", "not enough seeds")]
    assert [mcolors.to_hex(b.get_facecolor()) for b in bars] == [mcolors.to_hex(c) for c in expected]
    assert ax.get_xlim()[0] == 0


def test_the_ladder_plot_puts_compute_on_a_log_axis_with_the_floor_as_a_band(shown):
    from sslteach.table_figures import plot_ladder

    rungs = {"supervised": [(89_600, 0.70), (268_800, 0.74)], "rotation": [(89_600, 0.51), (268_800, 0.55)]}
    plot_ladder(rungs, {"rotation": [0.50, 0.51, 0.52]}, [0.44, 0.45, 0.46])
    ax = shown[0].axes[0]
    assert ax.get_xscale() == "log"
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 2 and line.get_marker() == "o"]
    assert [list(line.get_ydata()) for line in lines] == [pytest.approx([70.0, 74.0]), pytest.approx([51.0, 55.0])]
    band = [p for p in ax.patches if p.get_label().startswith("random-init")][0]
    assert band.get_y() == pytest.approx(44.0) and band.get_height() == pytest.approx(2.0)
    assert {t.get_text() for t in ax.texts} == {"supervised", "rotation"}
    assert ax.get_title() == ""
    plot_ladder(rungs, {}, [0.44, 0.46], title="methods of lecture 04")
    assert shown[1].axes[0].get_title() == "methods of lecture 04"


def test_the_label_efficiency_plot_draws_seed_means_and_the_from_scratch_references(shown):
    from sslteach.table_figures import plot_label_efficiency_seeds

    values = {"random-init": {"0.01": [0.30, 0.32], "0.1": [0.40, 0.42], "1.0": [0.44, 0.46]},
              "npid": {"0.01": [0.40, 0.42], "0.1": [0.50, 0.52], "1.0": [0.54, 0.56]}}
    plot_label_efficiency_seeds(values, 40_000, {"supervised-1pct": {"0.01": [0.41, 0.43]}})
    ax = shown[0].axes[0]
    assert ax.get_xscale() == "log"
    lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [list(line.get_xdata()) for line in lines] == [[400, 4000, 40000]] * 2
    assert list(lines[1].get_ydata()) == pytest.approx([41.0, 51.0, 55.0])
    assert lines[0].get_linestyle() == "--"  # a baseline
    squares = [line for line in ax.get_lines() if line.get_marker() == "s"]
    assert [(list(q.get_xdata()), list(q.get_ydata())) for q in squares] == [([400], [pytest.approx(42.0)])]
    assert {"npid", "random-init", "supervised-1pct"} <= {t.get_text() for t in ax.texts}


def test_share_values_gathers_every_seed_per_label_share():
    rows = {"a": {"method": "a", "seed": 0, "linear_probe": 0.5, "label_efficiency": {"0.01": 0.3, "1.0": 0.5}},
            "a-seed1": {"method": "a", "seed": 1, "linear_probe": 0.6, "label_efficiency": {"0.01": 0.4, "1.0": 0.6}}}
    assert headline.share_values(rows, "a") == {"0.01": [0.3, 0.4], "1.0": [0.5, 0.6]}


def test_the_shipped_headline_table_measured_the_shipped_checkpoints():
    """checkpoints/class/headline_table.json: a seed-0 row for every method the lectures load,
    measured on the weights that ship beside it; rows of other seeds (whose checkpoints do not
    ship) on weights of their own (no two rows share a fingerprint), each seed of a method
    counted from 0 without gaps, each with the command that trains it and the recipe it
    measured, today's."""
    from sslteach.checkpoint import encoder_from_checkpoint, load_checkpoint
    from sslteach.methods import METHODS
    from sslteach.transfer import weights_fingerprint

    table = json.loads((SHIPPED / headline.TABLE_FILE).read_text())
    assert table["protocol"] == headline.PROTOCOL
    assert table["profile_settings"] == CLASS.settings(("name", *TRAINING_SETTINGS, *EVALUATION_SETTINGS))
    rows = table["rows"]
    assert set(METHODS) <= set(rows)
    fingerprints = [row["fingerprint"] for row in rows.values()]
    assert None not in fingerprints and len(set(fingerprints)) == len(fingerprints)
    for method in {row["method"] for row in rows.values()}:
        seeds = sorted(row["seed"] for row in rows.values() if row["method"] == method)
        assert seeds == list(range(len(seeds))), method
    for name, row in rows.items():
        assert name == headline.row_name(row["method"], row["seed"])
        assert row["command"] == headline.train_command_for(row["method"], row["seed"])
        assert "recipe" in row and headline.is_current(row), name  # of today's recipe
        if row["method"].startswith("supervised"):
            assert 0 < row["classifier"] <= 1, name
        if row["seed"] == 0 and row["method"] in METHODS:
            checkpoint = load_checkpoint(SHIPPED / f"{row['method']}.pt", checksum_required=True)
            assert row["fingerprint"] == weights_fingerprint(encoder_from_checkpoint(checkpoint, "cpu").state_dict()), name
            assert row["recipe"] == headline.run_recipe(row["method"], checkpoint), name
