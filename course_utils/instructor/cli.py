"""The ``course`` command: run, refresh, release, verify and grade the notebooks.

Usage::

    course run [NOTEBOOK_DIR] [--out build] [--timeout 1800] [--profile PROFILE]
    course refresh [NOTEBOOK_DIR] [--timeout 600]
    course release [NOTEBOOK_DIR] [--out build/student]
    course verify SUBMISSION... [--out gradebook.csv] [-j N] [limits]
    course grade load|serve|scores-export|scores-import|feedback|lms ...

Each sub-command lives in its own module of :mod:`course_utils.instructor`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from course_utils.instructor import grade, refresh, release, run, verify


def build_parser() -> argparse.ArgumentParser:
    """Return the ``course`` argument parser."""
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (run, refresh, release, verify, grade):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``course`` console script; returns the exit status.

    >>> main(["run", "no-such-folder"])  # doctest: +SKIP
    2
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
