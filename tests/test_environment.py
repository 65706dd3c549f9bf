"""environment.yml (conda) and pyproject.toml (pip) must install the same pinned packages."""

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


@pytest.fixture(scope="module")
def environment():
    text = (ROOT / "environment.yml").read_text()
    try:
        import yaml  # PyYAML comes with the Jupyter packages
    except ImportError:
        return parse_simple_yaml(text)
    parsed = yaml.safe_load(text)
    assert parse_simple_yaml(text) == parsed  # keeps the fallback honest
    return parsed


def conda_packages(environment) -> dict[str, str]:
    pins = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):  # the pip: section
            continue
        name, _, version = re.match(r"^([A-Za-z0-9_.-]+)\s*(==?)?\s*(\S*)$", entry).groups()
        pins[normalise(name)] = version
    return pins


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


def test_test_extras_come_from_the_checkout(pyproject, environment):
    assert "test" in pyproject["project"]["optional-dependencies"]
    assert "pip" in conda_packages(environment)
    pip_sections = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert len(pip_sections) == 1
    assert "-e .[test]" in pip_sections[0]


def test_only_conda_forge(environment):
    assert environment["name"] == "sslteach"
    channels = environment["channels"]
    assert channels[0] == "conda-forge"
    assert set(channels) <= {"conda-forge", "nodefaults"}  # nodefaults: never fall back to defaults
    for entry in environment["dependencies"]:
        if isinstance(entry, str):
            assert "::" not in entry, f"{entry!r} names a channel of its own"
