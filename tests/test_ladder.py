"""The compute ladder (issue 16, item 4): longer schedules of the same recipe, stored in half
precision, each rung read with the headline readout."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from sslteach import ladder
from sslteach.checkpoint import encoder_from_checkpoint, load_checkpoint
from sslteach.data import CLASSES, ImageSet, data_fingerprint
from sslteach.methods import method_recipe, stored_recipe
from sslteach.transfer import weights_fingerprint

from helpers import random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_rung_multiplies_only_the_steps():
    profile = tiny_profile(steps=3)
    rung = ladder.rung_profile(profile, 10)
    assert rung.steps == 30 and dataclasses.replace(rung, steps=3) == profile


def test_half_precision_keeps_integer_buffers():
    state = {"w": torch.randn(3), "bn.num_batches_tracked": torch.tensor(5)}
    half = ladder.half_precision({"encoder": state})["encoder"]
    assert half["w"].dtype == torch.float16 and half["bn.num_batches_tracked"].dtype == torch.int64


def test_a_rung_is_trained_stored_in_half_precision_measured_and_not_trained_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    profile = dataclasses.replace(tiny_profile(steps=1, batch_size=16), probe_train_images=0, knn_k=5)
    train = ImageSet(random_images(48, seed=1), torch.arange(48) % 4, CLASSES[:4], {})
    test = ImageSet(random_images(16, seed=2), torch.arange(16) % 4, CLASSES[:4], {})
    row = ladder.run_rung("rotation", 2, train.images, train.labels, train, test, profile)
    path = ladder.rung_path("rotation", profile, 2)
    checkpoint = load_checkpoint(path)
    assert checkpoint["encoder_dtype"] == "float16"
    assert next(iter(v for v in checkpoint["encoder"].values() if v.is_floating_point())).dtype == torch.float16
    assert checkpoint["profile_settings"]["steps"] == 2
    assert row["steps"] == 2 and row["images_through_encoder"] == 2 * 16 and row["multiple"] == 2
    assert row["fingerprint"] == weights_fingerprint(encoder_from_checkpoint(checkpoint).state_dict())
    assert row["command"] == "python -m sslteach.ladder rotation --multiples 2 --profile class"
    assert 0 <= row["linear_probe"] <= 1 and 0 <= row["knn"] <= 1
    assert set(row["pretext_at_end"]) == {"loss", "accuracy"}  # rotation's per-step metrics
    assert row["pretext_at_end"]["accuracy"] == pytest.approx(sum(checkpoint["history"]["accuracy"]) / 2)
    data = data_fingerprint(train, test)
    assert ladder.stored_rungs("class", data)["rotation-x2"]["fingerprint"] == row["fingerprint"]
    # a rung of other images is not drawn beside this data's headline rows
    assert ladder.stored_rungs("class", {**data, "test_split": "another"}) == {}
    assert row["recipe"] == checkpoint["recipe"] == method_recipe("rotation")
    modified = path.stat().st_mtime_ns
    again = ladder.run_rung("rotation", 2, train.images, train.labels, train, test, profile)
    assert path.stat().st_mtime_ns == modified and again["fingerprint"] == row["fingerprint"]
    # a rung of an earlier recipe is another run: not shown, trained again
    table_path = ladder.table_paths("class", ladder.LADDER_FILE)[0]
    table = json.loads(table_path.read_text())
    table["rows"]["rotation-x2"]["recipe"] = {"earlier": 1}
    table_path.write_text(json.dumps(table))
    assert "rotation-x2" not in ladder.stored_rungs("class", data)


def test_the_pretext_at_the_end_of_a_run_averages_the_last_steps_of_each_per_step_metric():
    history = {"loss": [4.0, 3.0, 2.0, 1.0], "accuracy": [0.1, 0.2, 0.3, 0.5], "nmi_labels": [0.2, 0.3],
               "seconds": 9.0, "images_seen": 64}
    assert ladder.pretext_at_end(history, 4, window=2) == {"loss": 1.5, "accuracy": pytest.approx(0.4)}
    assert ladder.pretext_at_end(history, 4) == {"loss": 2.5, "accuracy": pytest.approx(0.275)}  # fewer steps than the window


def test_the_pretext_task_is_read_at_every_rung_that_recorded_it(monkeypatch, capsys):
    profile = tiny_profile(steps=2)
    checkpoint = {"history": {"loss": [2.0, 1.0], "accuracy": [0.2, 0.4]}}
    rungs = {"context-x3": {"method": "context", "multiple": 3, "pretext_at_end": {"accuracy": 0.6}},
             "context-x10": {"method": "context", "multiple": 10},  # stored before rows recorded it
             "jigsaw-x3": {"method": "jigsaw", "multiple": 3, "pretext_at_end": {"accuracy": 0.9}}}
    monkeypatch.setattr(ladder, "stored_rungs", lambda name, data: rungs)
    assert ladder.print_pretext_by_rung("context", checkpoint, profile, {}) == {1: pytest.approx(0.3), 3: 0.6}
    assert "1x 30.0%; 3x 60.0%" in capsys.readouterr().out
    assert ladder.print_pretext_by_rung("context", checkpoint, profile, {}, metric="loss") == {1: 1.5}
    out = capsys.readouterr().out
    assert "training loss on its pretext task" in out and "1x 1.500" in out  # a loss is not a percentage


def test_the_command_line_refuses_unknown_methods(capsys):
    with pytest.raises(SystemExit):
        ladder.main(["no-such-method"])
    assert "unknown method" in capsys.readouterr().err


def test_the_ladder_curves_start_at_the_class_checkpoint_and_carry_its_seed_spread():
    profile = tiny_profile(steps=10, batch_size=8)
    head = {"rotation": {"method": "rotation", "seed": 0, "linear_probe": 0.50},
            "rotation-seed1": {"method": "rotation", "seed": 1, "linear_probe": 0.52},
            "supervised-seed1": {"method": "supervised", "seed": 1, "linear_probe": 0.71},
            "supervised": {"method": "supervised", "seed": 0, "linear_probe": 0.70}}
    rungs = {"rotation-x10": {"method": "rotation", "images_through_encoder": 800, "linear_probe": 0.58},
             "rotation-x3": {"method": "rotation", "images_through_encoder": 240, "linear_probe": 0.55},
             "supervised-x3": {"method": "supervised", "images_through_encoder": 240, "linear_probe": 0.74}}
    points, seeds = ladder.curves(rungs, head, ["supervised", "rotation", "npid"], profile)
    assert points == {"supervised": [(80, 0.70), (240, 0.74)], "rotation": [(80, 0.50), (240, 0.55), (800, 0.58)]}
    assert seeds == {"supervised": [0.70, 0.71], "rotation": [0.50, 0.52]}  # npid has no headline row: left out
    gaps = ladder.gaps_to(points)
    assert gaps == {"rotation": {80: pytest.approx(0.20), 240: pytest.approx(0.19)}}  # x10 has no supervised rung
    # the headline table's reading of 1x: the mean of the seeds, beside the same longer rungs
    points, _ = ladder.curves(rungs, head, ["rotation"], profile, at_1x="mean")
    assert points == {"rotation": [(80, pytest.approx(0.51)), (240, 0.55), (800, 0.58)]}
    with pytest.raises(ValueError, match="seed 0"):
        ladder.curves(rungs, head, ["rotation"], profile, at_1x="best")


def test_a_change_of_the_gap_counts_only_beyond_the_seed_noise_of_four_single_seed_values():
    points = {"supervised": [(80, 0.70), (240, 0.80), (800, 0.86)],
              "npid": [(80, 0.55), (240, 0.59), (800, 0.645)],
              "rotation": [(80, 0.52), (240, 0.56)]}
    spread = {"supervised": [0.70, 0.71, 0.72], "npid": [0.54, 0.55, 0.56], "rotation": [0.47, 0.52, 0.49]}
    changes = ladder.gap_changes(ladder.gaps_to(points), spread)
    bar = 2 * (2 * (0.01 ** 2 + 0.01 ** 2)) ** 0.5  # sd 0.01 on both sides: 0.04
    assert [(c["from"], c["to"], c["verdict"]) for c in changes["npid"]] == [(80, 240, "widens"), (240, 800, "level within noise")]
    assert changes["npid"][0]["change"] == pytest.approx(0.06) and changes["npid"][0]["bar"] == pytest.approx(bar)
    assert changes["npid"][1]["change"] == pytest.approx(0.005)
    # rotation's seeds spread by 0.025: the same widening of 0.06 is level within that noise
    assert [c["verdict"] for c in changes["rotation"]] == ["level within noise"]
    points["npid"][2] = (800, 0.75)
    assert ladder.gap_changes(ladder.gaps_to(points), spread)["npid"][1]["verdict"] == "narrows"
    spread["npid"] = [0.55]  # one seed: no spread to read a change against
    assert {c["verdict"] for c in ladder.gap_changes(ladder.gaps_to(points), spread)["npid"]} == {"not enough seeds"}


def test_a_lecture_shows_its_methods_over_seeds_and_how_far_a_longer_schedule_takes_them(monkeypatch, capsys):
    from sslteach import headline

    def row(method, seed, probe):
        return {"method": method, "seed": seed, "linear_probe": probe, "knn": 0.4,
                "label_efficiency": {"0.01": 0.3, "0.1": 0.4, "1.0": probe}}

    head = {"random-init": row("random-init", 0, 0.44), "random-init-seed1": row("random-init", 1, 0.46),
            "rotation": row("rotation", 0, 0.50), "rotation-seed1": row("rotation", 1, 0.47),
            "npid": row("npid", 0, 0.55), "supervised": row("supervised", 0, 0.70)}
    profile = tiny_profile()
    x3 = 3 * profile.steps * profile.batch_size
    rungs = {"rotation-x3": {"method": "rotation", "multiple": 3, "images_through_encoder": x3, "linear_probe": 0.56},
             "npid-x3": {"method": "npid", "multiple": 3, "images_through_encoder": x3, "linear_probe": 0.60},
             "supervised-x3": {"method": "supervised", "multiple": 3, "images_through_encoder": x3, "linear_probe": 0.80}}
    asked = []
    monkeypatch.setattr(headline, "stored_rows", lambda name, data=None: asked.append(data) or head)
    monkeypatch.setattr(ladder, "stored_rungs", lambda name, data: rungs)
    shown = ladder.print_longer_schedules(["rotation", "jigsaw"], profile, {"images": "these"})
    assert asked == [{"images": "these"}]  # only rows of these images
    # over random init's mean; jigsaw has no rows, npid was not asked for, supervised always is
    assert shown == {"rotation": {1: pytest.approx(0.035), 3: pytest.approx(0.11)},
                     "supervised": {1: pytest.approx(0.25), 3: pytest.approx(0.35)}}
    table, ladder_lines = capsys.readouterr().out.split("\n\n")
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["random-init", "rotation", "supervised"]
    assert "48.5 ± 2.1" in table and "level within noise" in table
    assert "45.0%" in ladder_lines and "1x 48.5% (+3.5, mean of 2 seeds); 3x 56.0% (+11.0, one seed)" in ladder_lines
    assert "supervised - rotation: 1x 21.5 points; 3x 24.0 points" in ladder_lines
    assert ladder.print_longer_schedules(["rotation"], profile, {"images": "these"}, table=False) == shown
    assert capsys.readouterr().out == ladder_lines  # the same ladder, without the table
    monkeypatch.setattr(headline, "stored_rows", lambda name, data=None: {})
    assert ladder.print_longer_schedules(["rotation"], tiny_profile(), {"images": "other"}) == {}
    assert "lecture 08 measures them" in capsys.readouterr().out


def test_the_shipped_ladder_rows_are_current_and_say_how_they_were_made():
    """Every rung that ships is of its method's current recipe (a recipe change must train it
    again, or lecture 08 would hide it), was read with the headline protocol, counts its compute
    as the class profile's steps times the multiple, and names the command that makes it."""
    from sslteach.headline import PROTOCOL
    from sslteach.profiles import CLASS

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "class"
    table = json.loads((shipped / ladder.LADDER_FILE).read_text())
    assert table["protocol"] == PROTOCOL and table["rows"]
    # measured on the images of the shipped headline table, whose rows give the 1x points
    assert table["data"] == json.loads((shipped / "headline_table.json").read_text())["data"]
    for name, row in table["rows"].items():
        method, multiple = row["method"], row["multiple"]
        assert name == ladder.rung_name(method, multiple) and multiple > 1
        assert row["recipe"] == stored_recipe(method), f"{name}: trained with an earlier recipe"
        assert row["steps"] == CLASS.steps * multiple
        assert row["images_through_encoder"] == row["steps"] * CLASS.batch_size
        assert row["command"] == ladder.ladder_command(method, multiple, "class")
        assert len(row["fingerprint"]) == 64 and 0 < row["linear_probe"] < 1
