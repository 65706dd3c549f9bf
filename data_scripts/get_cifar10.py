"""Prepare CIFAR-10 for the course: download it, or import a local copy.

Usage::

    python data_scripts/get_cifar10.py [--source PATH] [--data-dir DIR] [--force]

Without ``--source`` (and without ``$SSLTEACH_CIFAR10_SOURCE``) the official archive is
downloaded and its MD5 checked. Errors print one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Let the script run from a checkout where the package is not pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslteach.cli import EXPECTED_ERRORS  # noqa: E402
from sslteach.data import CLASSES, SOURCE_ENV, prepare_cifar10  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        help="official cifar-10-python.tar.gz, or a folder / tar archive of "
        f"train/<class>/<image> (default: ${SOURCE_ENV}, else download)",
    )
    parser.add_argument("--data-dir", help="data folder (default: $SSLTEACH_DATA or <repo>/data)")
    parser.add_argument("--force", action="store_true", help="prepare again if already prepared")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def report(meta: dict, elapsed: float) -> None:
    """Print where the data went, where it came from and what each split holds."""
    train = meta["splits"]["train"]
    state = "already prepared (use --force to redo)" if meta["already_prepared"] else "prepared"
    print(f"CIFAR-10 {state} in {meta['folder']}")
    print(f"  source:     {train['source']} ({train['source_kind']})")
    if "source_md5" in train:
        print(f"  source md5: {train['source_md5']}")
    if "md5_check" in train:
        print(f"  md5 check:  NOT DONE: {train['md5_check']}")
    for split, prov in meta["splits"].items():
        counts = ", ".join(f"{c} {n}" for c, n in zip(CLASSES, prov["class_counts"]))
        print(f"  {split + ':':<11} {prov['count']} images ({counts})")
    print(f"  test split: {train['test_split']}")
    print(f"  prepared:   {train['prepared_at']}; took {elapsed:.1f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        meta = prepare_cifar10(
            args.source, args.data_dir, force=args.force, progress=not args.quiet
        )
    except EXPECTED_ERRORS as err:  # bad source, failed download, permissions, a full disk
        # These messages already say what is wrong and what to do; a traceback adds noise.
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    report(meta, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
