"""Execute a notebook with a fresh kernel: the one notebook runner of the pack.

:func:`course_utils.results.require_result` uses it to produce a result another
notebook needs, and the instructor tools (``course run``, ``refresh``, ``verify``)
build on it.

    >>> from course_utils.notebooks import execute_notebook  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

__all__ = ["KERNEL_NAME", "describe_error", "execute_notebook", "kernel_env", "short_error"]

KERNEL_NAME = "python3"
# Keep the kernels' own log quiet (ipykernel warns that its sockets on localhost are not
# encrypted); notebook output, warnings and tracebacks are unaffected.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def kernel_env(overrides: dict[str, str]) -> dict[str, str]:
    """Return this process's environment with ``overrides`` applied (for a kernel).

    >>> kernel_env({"COURSE_LIVE_PLOT": "0"})["COURSE_LIVE_PLOT"]
    '0'
    """
    return {**os.environ, **overrides}


def describe_error(exc: BaseException) -> str:
    """Return an error's short name and the first line of its message.

    >>> describe_error(ValueError("bad shape\\nmore detail"))
    'ValueError: bad shape'
    """
    if isinstance(exc, CellExecutionError):
        return short_error(exc.ename, exc.evalue)
    return short_error(type(exc).__name__, str(exc))


def short_error(name: str, message: str | None) -> str:
    """Return ``name: first line of message``, or ``name`` alone for no message.

    >>> short_error("MemoryError", ""), short_error("KeyError", "'x'\\nmore")
    ('MemoryError', "KeyError: 'x'")
    """
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return f"{name}: {lines[0].strip()}" if lines else name


def execute_notebook(
    nb: NotebookNode,
    folder: Path,
    timeout: int,
    env: dict[str, str],
    on_cell: Callable[[int, int], None] | None = None,
    allow_errors: bool = False,
) -> str | None:
    """Execute ``nb`` in place with a fresh kernel whose working directory is ``folder``.

    Returns ``None`` on success, or the error's short description; ``nb`` then holds
    the outputs up to and including the failing cell. ``on_cell(index, total)`` is
    called before each cell runs. With ``allow_errors`` an exception in a cell is only
    recorded in its outputs and the next cell runs; a timeout or a dead kernel still
    stops the run.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    >>> execute_notebook(nb, Path("."), timeout=60, env=kernel_env({}))  # doctest: +SKIP
    'ZeroDivisionError: division by zero'
    """
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        extra_arguments=KERNEL_ARGS,
        resources={"metadata": {"path": str(Path(folder).resolve())}},
        record_timing=False,
        allow_errors=allow_errors,
    )
    if on_cell is not None:
        total = len(nb.cells)
        client.on_cell_start = lambda cell, cell_index: on_cell(cell_index, total)
    try:
        client.execute(env=env)
    except Exception as exc:  # one broken notebook must not stop the others
        return describe_error(exc)
    return None
