"""Re-execute lectures top to bottom and store their outputs, as they are committed.

    python tools/execute_lectures.py                      # every lectures/*.ipynb
    python tools/execute_lectures.py lectures/04_rotation.ipynb

Runs each notebook in a fresh kernel (the class profile unless SSLTEACH_PROFILE says otherwise),
drops the per-cell execution timestamps that would make every rerun a diff, and writes the
notebook in place only when every cell succeeded. Delete data/checkpoints/<profile>/ first to
store a run that trains from scratch, as a student's first run does.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sslteach.data.store import atomic_write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int = 1800) -> float:
    """Execute the notebook at ``path`` in place; return the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    with atomic_write(path) as f:
        f.write((nbformat.writes(nb) + "\n").encode("utf-8"))
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lectures", nargs="*", type=Path)
    args = parser.parse_args(argv)
    for path in args.lectures or sorted((ROOT / "lectures").glob("*.ipynb")):
        print(f"{path.name}: {execute(path):.0f} s", flush=True)


if __name__ == "__main__":
    main()
