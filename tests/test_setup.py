"""The set-up paths of the Makefile, the Python it needs, and the licence and citation files.

Installing is slow and needs the network, so the Makefile's choices are tested by what it would
run: `make -n` prints the commands of a target without running them, and each test parses them.
Only the Python check and `clean-venv` run for real, against stand-ins in a temporary folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Variables a caller's environment could set that would change what make prints.
MAKE_VARIABLES = ("TORCH", "VENV", "PYTHON_BOOTSTRAP", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")

pytestmark = pytest.mark.skipif(MAKE is None, reason="needs GNU make")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def pinned(pyproject, name: str) -> str:
    """The requirement string pinning ``name`` in [project].dependencies, e.g. 'torch==2.14.1'."""
    (pin,) = [r for r in pyproject["project"]["dependencies"] if r.split("==")[0] == name]
    return pin


def make(*args: str | Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=60,
    )


def dry_run(*targets: str, **variables) -> list[list[str]]:
    """The commands that `make -n TARGETS VAR=value ...` prints, each split as the shell would."""
    result = make("-n", *targets, *(f"{k}={v}" for k, v in variables.items()))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.replace("\\\n", " ").splitlines()  # join continued lines
    return [shlex.split(line) for line in lines if line.strip()]


def pip_installs(commands: list[list[str]], venv: Path) -> list[list[str]]:
    """The arguments of each `VENV/bin/python -m pip install`, in order, without --quiet."""
    python = str(venv / "bin" / "python")
    return [
        [a for a in c[4:] if a != "--quiet"]
        for c in commands
        if c[:4] == [python, "-m", "pip", "install"]
    ]


def creates_a_venv(commands: list[list[str]]) -> bool:
    return any(c[1:3] == ["-m", "venv"] for c in commands)


def index_of(commands: list[list[str]], predicate) -> int:
    return next(i for i, c in enumerate(commands) if predicate(c))


def fake_environment(path: Path, python: str | Path = sys.executable, conda: bool = False) -> Path:
    """A folder that looks like an existing environment: bin/python (and conda-meta/ for conda)."""
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(python)
    if conda:
        (path / "conda-meta").mkdir()
    else:
        (path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return path


# --- make lab installs what the lectures need; the test targets add the test extra ----------------


@pytest.mark.parametrize("target", ["setup", "lab"])
def test_lab_installs_the_runtime_dependencies_only(tmp_path, target):
    venv = tmp_path / "venv"
    commands = dry_run(target, VENV=venv)
    assert creates_a_venv(commands)
    assert pip_installs(commands, venv) == [["--upgrade", "pip"], ["-e", "."]]
    assert not any(".[test]" in arg for c in commands for arg in c)
    assert ["touch", str(venv / ".installed")] in commands


@pytest.mark.parametrize("target", ["test", "unit", "notebooks", "browser-test"])
def test_test_targets_add_the_test_extra_before_any_test(tmp_path, target):
    venv = tmp_path / "venv"
    commands = dry_run(target, VENV=venv)
    assert pip_installs(commands, venv) == [["--upgrade", "pip"], ["-e", "."], ["-e", ".[test]"]]
    extra = index_of(commands, lambda c: ".[test]" in c)
    first_test = index_of(commands, lambda c: "pytest" in c)
    assert extra < first_test
    assert ["touch", str(venv / ".installed-test")] in commands


def test_ci_order_setup_then_test_installs_the_extra_once(tmp_path):
    # .ci/run: `make setup data`, then `make test`.
    venv = tmp_path / "venv"
    setup = dry_run("setup", "data", VENV=venv)
    assert pip_installs(setup, venv) == [["--upgrade", "pip"], ["-e", "."]]
    # The state `make setup` leaves: an environment and its stamp, newer than pyproject.toml.
    fake_environment(venv)
    (venv / ".installed").touch()
    test = dry_run("test", VENV=venv)
    assert not creates_a_venv(test)
    assert pip_installs(test, venv) == [["-e", ".[test]"]]


def test_stamps_are_remade_when_pyproject_changes(tmp_path):
    venv = fake_environment(tmp_path / "venv")
    stamp, stamp_test = venv / ".installed", venv / ".installed-test"
    changed = (ROOT / "pyproject.toml").stat().st_mtime
    stamp.touch()
    stamp_test.touch()
    os.utime(stamp, (changed + 10, changed + 10))
    os.utime(stamp_test, (changed + 20, changed + 20))
    assert pip_installs(dry_run("test", VENV=venv), venv) == []

    os.utime(stamp_test, (changed - 10, changed - 10))  # made before pyproject.toml changed
    assert pip_installs(dry_run("test", VENV=venv), venv) == [["-e", ".[test]"]]

    os.utime(stamp, (changed - 10, changed - 10))
    assert pip_installs(dry_run("test", VENV=venv), venv) == [["-e", "."], ["-e", ".[test]"]]
    assert pip_installs(dry_run("lab", VENV=venv), venv) == [["-e", "."]]


# --- TORCH=cpu: torch and torchvision from PyTorch's CPU wheel index ------------------------------


@pytest.mark.parametrize("target", ["setup", "lab", "test"])
def test_cpu_choice_installs_torch_from_the_cpu_index_first(tmp_path, pyproject, target):
    venv = tmp_path / "venv"
    installs = pip_installs(dry_run(target, TORCH="cpu", VENV=venv), venv)
    torch_pins = [pinned(pyproject, "torch"), pinned(pyproject, "torchvision")]
    assert installs[:3] == [["--upgrade", "pip"], ["--index-url", CPU_INDEX, *torch_pins], ["-e", "."]]
    # Only torch and torchvision come from PyTorch's index; the rest from the default one.
    assert sum(CPU_INDEX in args for args in installs) == 1


def test_default_choice_does_not_touch_the_cpu_index(tmp_path):
    commands = dry_run("test", VENV=tmp_path / "venv")
    assert not any("download.pytorch.org" in arg for c in commands for arg in c)


def test_an_unknown_torch_choice_stops(tmp_path):
    result = make("-n", "setup", "TORCH=cuda", f"VENV={tmp_path / 'venv'}")
    assert result.returncode != 0
    assert "TORCH=cpu" in result.stderr


# --- VENV=$CONDA_PREFIX: an active (conda) environment is used as it is ---------------------------


@pytest.mark.parametrize("target", ["lab", "test"])
def test_an_existing_conda_environment_is_used_as_it_is(tmp_path, target):
    prefix = fake_environment(tmp_path / "conda-env", conda=True)
    commands = dry_run(target, VENV=prefix)
    assert not creates_a_venv(commands)
    expected = [["-e", "."]] + ([["-e", ".[test]"]] if target == "test" else [])
    assert pip_installs(commands, prefix) == expected  # no pip upgrade in someone else's environment
    python = str(prefix / "bin" / "python")
    assert commands[0][0] == python  # the Python check looks at the environment's own Python
    assert all(c[0] == python for c in commands if "pip" in c)


def test_cpu_choice_is_refused_for_a_conda_environment(tmp_path):
    prefix = fake_environment(tmp_path / "conda-env", conda=True)
    result = make("-n", "setup", "TORCH=cpu", f"VENV={prefix}")
    assert result.returncode != 0
    assert "environment-cpu.yml" in result.stderr


def test_clean_venv_removes_a_venv_but_never_a_conda_environment(tmp_path):
    prefix = fake_environment(tmp_path / "conda-env", conda=True)
    result = make("clean-venv", f"VENV={prefix}")
    assert result.returncode != 0 and "conda env remove" in result.stdout
    assert (prefix / "conda-meta").is_dir()

    venv = fake_environment(tmp_path / "venv")
    assert make("clean-venv", f"VENV={venv}").returncode == 0
    assert not venv.exists()


# --- The right Python ----------------------------------------------------------------------------

FAKE_PYTHON = '''#!{python}
"""A stand-in for Python {version}: runs `-c CODE` under that version number, refuses anything else."""
import sys
sys.version_info = {version_info!r}
if sys.argv[1:2] == ["-c"]:
    code, sys.argv = sys.argv[2], ["-c", *sys.argv[3:]]
    exec(code)
else:
    with open({refused!r}, "a") as f:
        f.write(" ".join(sys.argv[1:]) + "\\n")
    sys.exit(1)
'''


def fake_python(folder: Path, version: tuple[int, int, int]) -> Path:
    path = folder / f"python{version[0]}.{version[1]}"
    text = FAKE_PYTHON.format(
        python=sys.executable, version=".".join(map(str, version)),
        version_info=(*version, "final", 0), refused=str(folder / "refused.txt"),
    )
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_an_old_bootstrap_python_stops_make_before_anything_is_installed(tmp_path):
    old = fake_python(tmp_path, (3, 10, 12))
    venv = tmp_path / "venv"
    result = make("setup", f"PYTHON_BOOTSTRAP={old}", f"VENV={venv}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Python 3.10.12" in output and "needs Python 3.11 or newer" in output
    assert "make lab PYTHON_BOOTSTRAP=python3.11" in output  # how to point it at another one
    assert not venv.exists()
    assert not (tmp_path / "refused.txt").exists()  # the old Python was asked nothing but its version


def test_a_new_enough_bootstrap_python_passes(tmp_path):
    for version in [(3, 11, 0), (3, 13, 1)]:
        new = fake_python(tmp_path, version)
        assert make("python-version", f"PYTHON_BOOTSTRAP={new}", f"VENV={tmp_path / 'venv'}").returncode == 0
    assert make("python-version", f"PYTHON_BOOTSTRAP={sys.executable}", f"VENV={tmp_path / 'venv'}").returncode == 0


def test_an_existing_environment_with_an_old_python_is_named(tmp_path):
    venv = fake_environment(tmp_path / "venv", python=fake_python(tmp_path, (3, 10, 12)))
    result = make("python-version", f"PYTHON_BOOTSTRAP={sys.executable}", f"VENV={venv}")
    assert result.returncode != 0
    assert "make clean-venv" in result.stdout


def test_a_missing_bootstrap_python_stops_make(tmp_path):
    missing = tmp_path / "no-such-python"
    result = make("python-version", f"PYTHON_BOOTSTRAP={missing}", f"VENV={tmp_path / 'venv'}")
    assert result.returncode != 0
    assert "needs Python 3.11 or newer" in result.stdout


def test_requires_python_is_the_one_the_pins_and_the_makefile_need(pyproject):
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert "(3, 11)" in (ROOT / "Makefile").read_text()


# --- Licence and citation ------------------------------------------------------------------------


def test_license_is_mit_and_declared_as_an_spdx_expression(pyproject):
    project = pyproject["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))  # PEP 639
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} the sslteach authors$", text, re.MULTILINE)
    # license = "MIT" with license-files needs setuptools 77 or newer to build.
    (setuptools,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    assert int(re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools).group(1)) >= 77


def test_citation_file_agrees_with_pyproject(pyproject):
    yaml = pytest.importorskip("yaml")  # PyYAML comes with the Jupyter packages
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert {"cff-version", "message", "title", "authors"} <= set(citation)  # required by CFF 1.2.0
    assert citation["type"] == "software"
    assert citation["authors"] == [{"name": "The sslteach authors"}]
    assert citation["version"] == pyproject["project"]["version"]
    assert citation["license"] == pyproject["project"]["license"]
    assert str(citation["date-released"]) == "2026-11-30"


# --- The README and the conda files document these choices ----------------------------------------


def test_readme_documents_the_set_up_choices():
    readme = (ROOT / "README.md").read_text()
    assert "3.10+" not in readme and "Python 3.11" in readme
    for text in [
        "make lab TORCH=cpu", "environment-cpu.yml", "2.7 GB", "6.2 GB",  # a CPU-only install
        "VENV=$CONDA_PREFIX",  # conda users
        "PYTHON_BOOTSTRAP=python3.11", "python3-venv", "WSL2",  # the right Python
        "## Credits", "Krizhevsky", "CITATION.cff", "LICENSE",
    ]:
        assert text in readme, text


@pytest.mark.parametrize("filename", ["environment.yml", "environment-cpu.yml"])
def test_conda_files_say_how_to_use_make_in_the_environment(filename):
    text = (ROOT / filename).read_text()
    assert "make lab VENV=$CONDA_PREFIX" in text and "make test VENV=$CONDA_PREFIX" in text
