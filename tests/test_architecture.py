"""The package's structure (issue 15): no import loops, one place for checkpoints, and one way
to rebuild each method's trained network, which the lectures use."""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from sslteach import baselines, colorizer, context, inpainting, jigsaw, methods, moco, pirl, rotation, simclr, splitbrain, swav
from sslteach.checkpoint import checkpoint_folder, checkpoint_path, is_same_run, save_checkpoint
from sslteach.data import data_dir
from sslteach.methods import METHODS, find_run, method_recipe, pretrain
from sslteach.profiles import CLASS, EVALUATION_SETTINGS, TRAINING_SETTINGS
from helpers import random_images, tiny_profile

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sslteach"
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """{module: the sslteach modules it imports, at any depth of its code (functions too)}."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def test_no_module_imports_the_command_line():
    importers = sorted(name for name, imported in package_imports().items() if "sslteach.train" in imported)
    assert importers == [], f"modules importing sslteach.train (the command line): {importers}"


def test_the_package_has_no_import_cycle():
    graph = package_imports()
    state = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for other in sorted(graph[name]):
            if other.startswith(name + "."):
                continue  # a package importing its own submodules in __init__ is not a loop
            if state.get(other) == 1:
                cycle = path[path.index(other):] + [other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, path + [other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_checkpoint_paths_are_made_in_one_place(monkeypatch, tmp_path):
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    assert checkpoint_folder(CLASS) == checkpoint_folder("class") == data_dir() / "checkpoints" / "class"
    assert checkpoint_path("rotation", CLASS) == checkpoint_folder(CLASS) / "rotation.pt"
    assert checkpoint_path("rotation", CLASS, seed=2) == checkpoint_folder(CLASS) / "rotation-seed2.pt"
    pattern = re.compile(r'"checkpoints"\s*/')
    rebuilt = [p.name for p in PACKAGE.rglob("*.py") if p.name != "checkpoint.py" and pattern.search(p.read_text())]
    assert rebuilt == [], f"checkpoint paths built outside sslteach.checkpoint: {rebuilt}"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_lectures_use_the_package_for_checkpoints(lecture):
    """No lecture builds a checkpoint path or knows a checkpoint's key names: it asks
    sslteach.methods.load_or_pretrain and the method modules' *_model_from_checkpoint."""
    cells = json.loads(lecture.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert not re.search(r'"checkpoints"\s*/', code), "builds a checkpoint path"
    assert not re.search(r'\["head"\]', code), "reads a checkpoint's head weights by key"
    assert not re.search(r"(from|import)\s+sslteach\.train\b", code), "imports the command line"


# Every method with a trained head, and the function that rebuilds its network.
REBUILDERS = {
    "rotation": rotation.rotation_model_from_checkpoint,
    "supervised": baselines.supervised_model_from_checkpoint,
    "colorization": colorizer.colorization_model_from_checkpoint,
    "colorization-regression": colorizer.colorization_model_from_checkpoint,
    "inpainting": inpainting.inpainting_model_from_checkpoint,
    "split-brain": splitbrain.split_brain_model_from_checkpoint,
    "context": context.context_model_from_checkpoint,
    "jigsaw": jigsaw.jigsaw_model_from_checkpoint,
    "simclr": simclr.simclr_model_from_checkpoint,
    "moco": moco.moco_model_from_checkpoint,
    "pirl": pirl.pirl_model_from_checkpoint,
    "swav": swav.swav_model_from_checkpoint,
}


@pytest.mark.parametrize("method, options", [(m, {}) for m in REBUILDERS] + [
    ("colorization", {"settings": colorizer.ColorizationSettings(stages=4)}),
    ("jigsaw", {"input_size": 16}),
], ids=lambda x: x if isinstance(x, str) else "-".join(map(str, x.values())) or "recipe")
def test_each_method_rebuilds_its_trained_network(method, options):
    torch.manual_seed(0)
    images, labels = random_images(N=32), torch.arange(32) % 10
    checkpoint = pretrain(method, images, labels, tiny_profile(steps=1, batch_size=16), **options)
    model = REBUILDERS[method](checkpoint, "cpu")
    assert not model.training
    state = model.state_dict()
    for key, value in checkpoint["encoder"].items():
        assert torch.equal(state[f"encoder.{key}"], value), key
    for key, value in checkpoint["head"].items():
        stored = state.get(key, state.get(f"head.{key}"))
        assert stored is not None and torch.equal(stored, value), key


def test_every_method_of_the_table_is_known():
    assert set(REBUILDERS) | {"random-init", "npid", "deepcluster", "simclr-no-color"} <= set(METHODS)


def test_a_checkpoint_is_the_same_run_whatever_the_readout_settings():
    """Only the settings that change the weights decide whether a checkpoint is this run: a
    profile with another kNN k or lecture 07 image count reuses it, one with another step count
    or seed does not."""
    checkpoint = {"method": "rotation", "seed": 0, "profile_settings": dataclasses.asdict(CLASS)}
    recipe = method_recipe("rotation")
    assert is_same_run(checkpoint, "rotation", CLASS, 0, recipe)
    assert is_same_run(checkpoint, "rotation", dataclasses.replace(CLASS, knn_k=20, measure_pair_images=7), 0, recipe)
    assert not is_same_run(checkpoint, "rotation", dataclasses.replace(CLASS, steps=349), 0, recipe)
    assert not is_same_run(checkpoint, "rotation", CLASS, 1, recipe)
    assert not is_same_run(checkpoint, "jigsaw", CLASS, 0, method_recipe("jigsaw"))
    assert set(TRAINING_SETTINGS) | set(EVALUATION_SETTINGS) < {f.name for f in dataclasses.fields(CLASS)}


def test_a_checkpoint_of_another_recipe_is_not_this_methods_run(tmp_path, monkeypatch):
    """A checkpoint records its method's recipe; one trained with other settings (a sweep's change,
    an earlier default) is not taken for the method's run, one without a record still is."""
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    profile = tiny_profile(steps=1, batch_size=8)
    images, labels = random_images(16), torch.zeros(16, dtype=torch.long)
    changed = pretrain("swav", images, labels, profile, settings=swav.SwAVSettings(prototypes=7))
    assert changed["recipe"]["settings"] == {**dataclasses.asdict(swav.SwAVSettings()), "prototypes": 7}
    assert not is_same_run(changed, "swav", profile, 0, method_recipe("swav"))
    assert is_same_run({k: v for k, v in changed.items() if k != "recipe"}, "swav", profile, 0, method_recipe("swav"))
    save_checkpoint(checkpoint_path("swav", profile), changed)
    assert find_run("swav", profile) is None  # so load_or_pretrain trains the recipe instead
    recipe = pretrain("jigsaw-1000", images, labels, profile)
    assert recipe["recipe"] == method_recipe("jigsaw-1000") and recipe["recipe"]["count"] == 1000
    save_checkpoint(checkpoint_path("jigsaw-1000", profile), recipe)
    assert find_run("jigsaw-1000", profile)["seed"] == 0


def test_a_recipe_read_back_from_a_table_equals_the_stored_recipe(tmp_path):
    """Tables are JSON: a recipe read back from one (a ladder row, a sweep line) is compared with
    ``stored_recipe``, which has tuples as lists, as the file does."""
    from sslteach.transfer import read_table, store_row

    for method in METHODS:
        store_row(tmp_path / "table.json", {}, method, {"recipe": method_recipe(method)})
        assert read_table(tmp_path / "table.json")["rows"][method]["recipe"] == methods.stored_recipe(method)
    with_tuple = methods.stored_recipe("jigsaw", {"input_size": (24, 24)})
    assert with_tuple["input_size"] == [24, 24] != method_recipe("jigsaw", {"input_size": (24, 24)})["input_size"]


def test_an_unrecorded_checkpoint_of_a_changed_recipe_is_the_old_recipes_run(tmp_path, monkeypatch):
    """SwAV's recipe changed after checkpoints began to record theirs: a file without a record is
    the old recipe's run (temperature 0.1), so it is trained again rather than read as the new one;
    for a method whose recipe did not change, such a file still counts."""
    monkeypatch.setenv("SSLTEACH_DATA", str(tmp_path))
    monkeypatch.setenv("SSLTEACH_RETRAIN", "1")  # look at our files only, not the shipped ones
    profile = tiny_profile(steps=1, batch_size=8)
    images, labels = random_images(16), torch.zeros(16, dtype=torch.long)
    assert methods.unrecorded_recipe("swav")["settings"]["temperature"] == 0.1 != swav.SwAVSettings().temperature
    assert methods.unrecorded_recipe("rotation") == method_recipe("rotation")
    for method, counts in (("swav", False), ("rotation", True)):
        current = pretrain(method, images, labels, profile)
        assert methods.is_method_run(current, method, profile, 0)
        unrecorded = {k: v for k, v in current.items() if k != "recipe"}
        assert methods.is_method_run(unrecorded, method, profile, 0) is counts
        save_checkpoint(checkpoint_path(method, profile), unrecorded)
        assert (find_run(method, profile) is not None) is counts
