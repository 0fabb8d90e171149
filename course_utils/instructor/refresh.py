"""``course refresh``: re-execute the notebooks in the smoke profile and store checked outputs.

The notebooks are written back with outputs only on cells tagged ``nbval-check-output``:
the outputs nbval compares in CI.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_utils.instructor.notebook_io import (
    add_notebook_dir_argument,
    drop_run_metadata,
    end_progress,
    find_notebooks,
    format_duration,
    is_checked,
    progress_printer,
    text_outputs,
)
from course_utils.notebooks import execute_notebook, kernel_env

# Environment for `course refresh`: the stored outputs come from a smoke CPU run.
REFRESH_ENV = {"COURSE_PROFILE": "smoke", "COURSE_LIVE_PLOT": "0"}


def strip_outputs(nb: NotebookNode) -> NotebookNode:
    """Strip a notebook for committing, in place, and return it.

    Checked cells (tagged ``nbval-check-output``) keep their text outputs and their
    execution count (nbval only compares cells that have one); every other code cell
    loses its outputs and execution count. Widget state and execution timing
    metadata are removed.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "print(1)", execution_count=1,
    ...     outputs=[nbformat.v4.new_output("stream", text="1\\n")])])
    >>> strip_outputs(nb).cells[0].outputs
    []
    """
    drop_run_metadata(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            cell.outputs = text_outputs(cell.outputs)
        else:
            cell.outputs = []
            cell.execution_count = None
    return nb


def refresh_one(path: Path, timeout: int, env: dict[str, str], label: str = "") -> str | None:
    """Re-execute one notebook and write it back stripped; return the error, if any.

    On failure the file is left untouched, so nothing stored is lost.

    >>> refresh_one(Path("notebooks/01_intro.ipynb"), 600,
    ...             kernel_env(REFRESH_ENV))  # doctest: +SKIP
    """
    nb = nbformat.read(path, as_version=4)
    prefix = f"{label} {path.name}:".strip()
    start = time.perf_counter()
    error = execute_notebook(nb, path.parent, timeout, env, on_cell=progress_printer(prefix))
    wall = format_duration(time.perf_counter() - start)
    end_progress()
    if error:
        print(f"{prefix} FAILED ({error}) in {wall}; file left unchanged", flush=True)
        return error
    strip_outputs(nb)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    checked = sum(is_checked(c) for c in nb.cells)
    print(f"{prefix} refreshed in {wall} ({checked} checked cells)", flush=True)
    return None


def cmd_refresh(args: argparse.Namespace) -> int:
    """``course refresh``: re-execute in the smoke profile, keep checked outputs only."""
    notebooks = find_notebooks(args.notebook_dir)
    if not notebooks:
        print(f"course refresh: no notebooks (*.ipynb) in {args.notebook_dir}", file=sys.stderr)
        return 2
    env = kernel_env(REFRESH_ENV)
    errors = [
        refresh_one(path, args.timeout, env, label=f"[{i}/{len(notebooks)}]")
        for i, path in enumerate(notebooks, start=1)
    ]
    failed = sum(e is not None for e in errors)
    print(f"\n{len(notebooks) - failed} refreshed, {failed} failed.")
    return 1 if failed else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``course refresh`` to the ``course`` command's sub-commands."""
    refresh = commands.add_parser(
        "refresh", help="re-execute in the smoke profile and keep only checked outputs"
    )
    add_notebook_dir_argument(refresh)
    refresh.add_argument(
        "--timeout", type=int, default=600, help="per-cell timeout in seconds (default: 600)"
    )
    refresh.set_defaults(func=cmd_refresh)
