"""tools/sweep.py and the validation readout it uses (issue 16): recipes are tuned on training
images held out from pretraining, and every run leaves one reproducible JSON line."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from sslteach.data.store import ImageSet
from sslteach.evaluate import readout, validation_split
from sslteach.methods import method_recipe, pretrain
from sslteach.checkpoint import encoder_from_checkpoint
from sslteach.profiles import CLASS
from sslteach.swav import SwAVSettings
from helpers import load_tool, random_images, tiny_profile

sweep = load_tool("sweep")
TINY = {"steps": 2, "batch_size": 16, "warmup_steps": 1, "knn_k": 5}


def image_set(N: int = 64) -> ImageSet:
    return ImageSet(random_images(N), torch.arange(N) % 10, [str(c) for c in range(10)], {"dataset": "random"})


def test_the_validation_split_is_the_tail_of_the_training_split():
    train = image_set(64)
    fit, val = validation_split(train, 16)
    assert len(fit) == 48 and len(val) == 16
    assert torch.equal(fit.images, train.images[:48]) and torch.equal(val.images, train.images[48:])
    assert torch.equal(val.labels, train.labels[48:])
    with pytest.raises(ValueError, match="cannot hold out"):
        validation_split(train, 64)


def test_readout_uses_every_labelled_image_and_the_profiles_knn():
    train, test = image_set(48), image_set(16)
    profile = tiny_profile()
    encoder = encoder_from_checkpoint(pretrain("random-init", train.images, train.labels, profile), "cpu")
    scores = readout(encoder, train, test, dataclasses.replace(profile, knn_k=5))
    assert scores["train_images"] == 48 and scores["test_images"] == 16
    assert 0 <= scores["knn"] <= 1 and 0 <= scores["linear_probe"] <= 1


def test_settings_are_found_in_the_methods_dataclasses_and_keywords():
    assert sweep.method_options("swav", {"prototypes": 30}) == {"settings": SwAVSettings(prototypes=30)}
    assert sweep.method_options("jigsaw", {"count": 10, "input_size": 16}) == {"count": 10, "input_size": 16}
    assert sweep.method_options("context", {"input_size": 16})["task"].input_size == 16
    assert sweep.method_options("rotation", {}) == {}
    assert sweep.method_options("colorization", {"stages": 4})["settings"].stages == 4
    with pytest.raises(SystemExit, match="swav has no setting protoypes; its settings: .*prototypes"):
        sweep.method_options("swav", {"protoypes": 30})
    assert sweep.parse_assignments(["lr=0.05", "color=False", "name=x"]) == {"lr": 0.05, "color": False, "name": "x"}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        sweep.parse_assignments(["lr"])


def test_a_run_pretrains_on_the_fit_images_and_reads_out_on_the_validation_images(tmp_path):
    record = sweep.run("swav", {"prototypes": 7}, TINY, seed=3, validation=16, device="cpu", train_set=image_set(64))
    assert record["validation"]["fit_images"] == 48 and record["validation"]["validation_images"] == 16
    assert 0 <= record["validation"]["linear_probe"] <= 1
    assert record["recipe"]["settings"]["prototypes"] == 7 and record["recipe"]["settings"]["temperature"] == 0.2
    assert record["profile"]["steps"] == 2 and record["profile"]["lr"] == CLASS.lr and record["seed"] == 3
    out = tmp_path / "sweeps" / "swav.jsonl"
    sweep.append_line(out, record)
    sweep.append_line(out, {**record, "seed": 4})
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["seed"] for line in lines] == [3, 4]


def test_the_same_run_gives_the_same_validation_numbers():
    first = sweep.run("rotation", {}, TINY, seed=0, validation=16, device="cpu", train_set=image_set(64))
    second = sweep.run("rotation", {}, TINY, seed=0, validation=16, device="cpu", train_set=image_set(64))
    assert first["validation"] == second["validation"]


def test_a_method_without_training_steps_is_read_out_too():
    record = sweep.run("random-init", {}, TINY, seed=0, validation=16, device="cpu", train_set=image_set(64))
    assert record["final_loss"] is None and 0 <= record["validation"]["knn"] <= 1


grid_tool = load_tool("sweep_grid")


def test_a_grid_runs_each_seed_once_and_resumes_where_it_stopped(tmp_path, monkeypatch):
    grid = [{"method": "rotation", "profile_set": TINY, "seeds": [0, 1]},
            {"method": "swav", "set": {"prototypes": 7}, "profile_set": TINY, "seeds": [0]}]
    runs = grid_tool.grid_runs(grid)
    assert [(r["method"], r["seed"]) for r in runs] == [("rotation", 0), ("rotation", 1), ("swav", 0)]
    assert grid_tool.shard(runs, "1/2") == [runs[1]] and grid_tool.shard(runs, "0/2") == [runs[0], runs[2]]
    with pytest.raises(SystemExit, match="unknown keys"):
        grid_tool.grid_runs([{"method": "swav", "sets": {}}])

    # the data are loaded once; the runs use a small random set in place of CIFAR-10
    import sslteach.data
    monkeypatch.setattr(sslteach.data, "load_cifar10", lambda split: image_set(64))
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid))
    out = tmp_path / "sweeps"
    assert grid_tool.main([str(path), "--out-dir", str(out), "--validation", "16", "--device", "cpu", "--shard", "0/2"]) == 0
    assert [json.loads(line)["seed"] for line in (out / "rotation.jsonl").read_text().splitlines()] == [0]
    assert grid_tool.main([str(path), "--out-dir", str(out), "--validation", "16", "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in (out / "rotation.jsonl").read_text().splitlines()]
    assert [line["seed"] for line in lines] == [0, 1]  # seed 0 was not run again
    swav = [json.loads(line) for line in (out / "swav.jsonl").read_text().splitlines()]
    assert len(swav) == 1 and swav[0]["command"].startswith("python tools/sweep.py swav --set prototypes=7 --profile-set steps=2")
    assert swav[0]["command"].endswith("--seed 0")


report_tool = load_tool("sweep_report")


def sweep_line(method: str, seed: int, probe: float, changes: dict | None = None, profile_changes: dict | None = None) -> str:
    return json.dumps({"method": method, "changes": changes or {}, "profile_changes": profile_changes or {},
                       "seed": seed, "validation": {"linear_probe": probe, "knn": probe - 0.05}})


def test_the_sweep_report_groups_seeds_and_picks_the_smallest_change_that_wins(tmp_path):
    lines = {"random-init": [("random-init", s, p, None, None) for s, p in enumerate((0.40, 0.41, 0.42))],
             "swav": [("swav", s, p, None, None) for s, p in enumerate((0.42, 0.43, 0.44))]
             + [("swav", s, p, {"temperature": 0.2}, None) for s, p in enumerate((0.47, 0.48, 0.47))]
             + [("swav", s, p, {"temperature": 0.2, "epsilon": 0.03}, None) for s, p in enumerate((0.48, 0.48, 0.48))]
             + [("swav", 0, 0.60, None, {"lr": 0.2})],  # one seed: no verdict, never chosen
             "context": [("context", s, p, None, None) for s, p in enumerate((0.40, 0.41, 0.42))]
             + [("context", s, p, {"gap": 2}, None) for s, p in enumerate((0.50, 0.51, 0.50))],  # more compute
             "jigsaw": [("jigsaw", 1, 0.30, None, None), ("jigsaw", 0, 0.31, None, None), ("jigsaw", 0, 0.32, None, None),
                        ("jigsaw", 0, 0.33, {"input_size": 16}, None), ("jigsaw", 1, 0.31, {"input_size": 16}, None)]}
    for method, rows in lines.items():
        (tmp_path / f"{method}.jsonl").write_text("\n".join(sweep_line(*row) for row in rows) + "\n")
    groups = report_tool.group_runs(report_tool.read_lines(tmp_path))
    assert groups["jigsaw"]["recipe"] == {"seeds": [0, 1], "probe": [0.32, 0.30], "knn": [0.32 - 0.05, 0.30 - 0.05],
                                        "changes": {}, "profile_changes": {}}
    assert set(groups["swav"]) == {"recipe", "temperature=0.2", "epsilon=0.03, temperature=0.2", "lr=0.2 (profile)"}

    grid = [{"method": "context", "set": {"gap": 2}, "seeds": [0, 1, 2], "compute": "larger tiles"}]
    report = report_tool.judge(groups, grid)
    swav = {row["setting"]: row for row in report["swav"]["rows"]}
    assert swav["temperature=0.2"]["vs_recipe"]["verdict"] == "above"
    assert swav["lr=0.2 (profile)"]["vs_recipe"]["verdict"] == "not enough seeds"
    # both changes win; the second setting does not win beyond noise over the first alone
    assert report["swav"]["choice"] == "temperature=0.2"
    assert report["jigsaw"]["choice"] == "recipe"  # +1.0 against a spread of 2.4: level within noise
    context = {row["setting"]: row for row in report["context"]["rows"]}
    assert context["gap=2"]["vs_recipe"]["verdict"] == "above" and report["context"]["choice"] == "recipe"
    assert "vs_random_init" not in swav["recipe"] or swav["recipe"]["vs_random_init"]["verdict"] == "level within noise"

    table = report_tool.markdown(report)
    assert "| swav | temperature=0.2 | 3 | 47.3 ± 0.6 | 47.0, 48.0, 47.0 |" in table
    assert "* swav: temperature=0.2\n" in table and "* random-init" not in table
    assert "* context: recipe (3 of the grid's 3 runs recorded)" in table  # the grid plans only gap=2 here
    assert "| context | gap=2 (more compute) |" in table and "* more compute, context gap=2: larger tiles" in table


def test_the_sweep_report_reads_settings_against_todays_recipe():
    """A line records the recipe it ran with; after a recipe changes (SwAV's temperature 0.1 ->
    0.2), the old recipe's runs are a change from today's and the runs of the new value are the
    recipe's, whatever ``--set`` said when they ran."""
    today = method_recipe("swav")
    old = {**today, "settings": {**today["settings"], "temperature": 0.1}}
    new_with_eps = {**today, "settings": {**today["settings"], "epsilon": 0.03}}
    lines = [{"method": "swav", "changes": {}, "profile_changes": {}, "seed": 0, "recipe": old,
              "validation": {"linear_probe": 0.42, "knn": 0.35}},
             {"method": "swav", "changes": {"temperature": 0.2}, "profile_changes": {}, "seed": 0, "recipe": today,
              "validation": {"linear_probe": 0.46, "knn": 0.38}},
             {"method": "swav", "changes": {"temperature": 0.2, "epsilon": 0.03}, "profile_changes": {"lr": 0.05},
              "seed": 0, "recipe": new_with_eps, "validation": {"linear_probe": 0.47, "knn": 0.38}}]
    groups = report_tool.group_runs(lines)["swav"]
    assert set(groups) == {"temperature=0.1", "recipe", "epsilon=0.03, lr=0.05 (profile)"}
    assert groups["epsilon=0.03, lr=0.05 (profile)"]["changes"] == {"epsilon": 0.03}
    assert groups["recipe"]["probe"] == [0.46]
    grid = [{"method": "swav", "set": {"temperature": 0.2}, "seeds": [0, 1]}, {"method": "swav", "seeds": [0]}]
    assert report_tool.planned_runs(grid)["swav"] == {("recipe", 0), ("recipe", 1)}


def test_the_sweep_report_rewrites_only_its_section_of_a_readme(tmp_path):
    (tmp_path / "rotation.jsonl").write_text(sweep_line("rotation", 0, 0.5) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Sweeps\nby hand\n{report_tool.BEGIN}\nold table\n{report_tool.END}\nafter\n")
    assert report_tool.main(["--dir", str(tmp_path), "--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Sweeps\nby hand\n") and text.endswith(f"{report_tool.END}\nafter\n")
    assert "old table" not in text and "from 1 run." in text and "| rotation | recipe | 1 | 50.0 |" in text
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="no <!-- sweep_report begin -->"):
        report_tool.main(["--dir", str(tmp_path), "--write", str(readme)])


def test_the_sweep_report_says_when_there_is_nothing_to_read(tmp_path, capsys):
    assert report_tool.main(["--dir", str(tmp_path)]) == 1
    assert "no sweep lines" in capsys.readouterr().err


def test_the_shipped_grid_names_only_known_methods_and_settings():
    grid = json.loads((report_tool.ROOT / "benchmarks" / "sweeps" / "grid.json").read_text())
    for run in grid_tool.grid_runs(grid):
        sweep.method_options(run["method"], run["changes"])  # raises on a misspelt setting
    assert all(isinstance(entry["compute"], str) for entry in grid if "compute" in entry)
