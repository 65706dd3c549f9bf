"""environment.yml and environment-cpu.yml (conda) and pyproject.toml (pip) must install the same
pinned packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PIP = {"pytorch": "torch"}
# Packages conda needs itself, with no counterpart in [project].dependencies.
CONDA_ONLY = {"python", "pip"}
# Each conda file, its environment's name, and the build string asked of pytorch (None: any).
ENVIRONMENT_FILES = {
    "environment.yml": ("sslteach", None),
    "environment-cpu.yml": ("sslteach-cpu", "cpu_*"),  # conda-forge's CPU build: no CUDA libraries
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str, separator: str) -> tuple[str, str]:
    name, found, version = text.partition(separator)
    assert found and version, f"{text!r} is not pinned with {separator!r}"
    return normalise(name.strip()), version.strip()


@pytest.fixture(scope="module")
def pyproject():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def parse_simple_yaml(text: str) -> dict:
    """Enough YAML for environment.yml: top-level keys, ``- item`` lists, one nested ``- pip:`` list."""
    data, key, pip = {}, None, None
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if not stripped:
            continue
        if not line.startswith(" "):
            key, _, value = stripped.partition(":")
            data[key] = value.strip() or []
        elif stripped.strip() == "- pip:":
            pip = []
            data[key].append({"pip": pip})
        elif stripped.strip().startswith("- "):
            item = stripped.strip()[2:].strip()
            nested = pip is not None and len(line) - len(line.lstrip()) > 4
            (pip if nested else data[key]).append(item)
    return data


def load_environment(filename: str) -> dict:
    text = (ROOT / filename).read_text()
    try:
        import yaml  # PyYAML comes with the Jupyter packages
    except ImportError:
        return parse_simple_yaml(text)
    parsed = yaml.safe_load(text)
    assert parse_simple_yaml(text) == parsed  # keeps the fallback honest
    return parsed


@pytest.fixture(scope="module", params=sorted(ENVIRONMENT_FILES))
def environment_file(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def environment(environment_file):
    return load_environment(environment_file)


def conda_specs(environment) -> dict[str, tuple[str, str | None]]:
    """name -> (version, build string or None), from ``name==version`` or ``name==version=build``."""
    specs = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):  # the pip: section
            continue
        name, _, version = re.match(r"^([A-Za-z0-9_.-]+)\s*(==?)?\s*(\S*)$", entry).groups()
        version, _, build = version.partition("=")
        specs[normalise(name)] = (version, build or None)
    return specs


def conda_packages(environment) -> dict[str, str]:
    return {name: version for name, (version, _) in conda_specs(environment).items()}


def test_same_packages_and_versions(pyproject, environment):
    pip_pins = dict(parse_requirement(r, "==") for r in pyproject["project"]["dependencies"])
    conda = conda_packages(environment)
    conda_as_pip = {CONDA_TO_PIP.get(n, n): v for n, v in conda.items() if n not in CONDA_ONLY}
    assert conda_as_pip == pip_pins


def test_conda_pins_are_exact(environment):
    for entry in environment["dependencies"]:
        if isinstance(entry, str) and entry.split("=")[0] not in CONDA_ONLY:
            assert "==" in entry, f"{entry!r}: use == for an exact pin (conda's = also matches x.y.z.*)"


def test_python_version_is_supported(pyproject, environment):
    python = conda_packages(environment)["python"]
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    as_tuple = lambda v: tuple(int(p) for p in v.split("."))  # noqa: E731
    assert as_tuple(python) >= as_tuple(minimum)


def test_the_package_comes_from_the_checkout_without_test_tools(pyproject, environment):
    # Like `make lab`: the runtime dependencies only; `make test VENV=$CONDA_PREFIX` adds the extra.
    assert "test" in pyproject["project"]["optional-dependencies"]
    assert "pip" in conda_packages(environment)
    pip_sections = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert pip_sections == [["-e ."]]


def test_pytorch_build(environment_file, environment):
    _, build = ENVIRONMENT_FILES[environment_file]
    assert conda_specs(environment)["pytorch"][1] == build
    assert all(b is None for n, (_, b) in conda_specs(environment).items() if n != "pytorch")


def test_cpu_file_is_the_main_file_but_for_name_and_pytorch_build():
    main, cpu = load_environment("environment.yml"), load_environment("environment-cpu.yml")
    as_main = [e.removesuffix("=cpu_*") if isinstance(e, str) else e for e in cpu["dependencies"]]
    assert as_main == main["dependencies"]
    assert {k: v for k, v in cpu.items() if k not in ("name", "dependencies")} == {
        k: v for k, v in main.items() if k not in ("name", "dependencies")
    }


def test_only_conda_forge(environment_file, environment):
    assert environment["name"] == ENVIRONMENT_FILES[environment_file][0]
    channels = environment["channels"]
    assert channels[0] == "conda-forge"
    assert set(channels) <= {"conda-forge", "nodefaults"}  # nodefaults: never fall back to defaults
    for entry in environment["dependencies"]:
        if isinstance(entry, str):
            assert "::" not in entry, f"{entry!r} names a channel of its own"
