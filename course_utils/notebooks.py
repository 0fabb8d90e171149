"""Executing and reading notebooks: the one notebook runner of the pack, and what the
student's self-check and the grader both read in a notebook.

:func:`course_utils.results.require_result` uses the runner to produce a result another
notebook needs, :mod:`course_utils.handin` to re-run a notebook before it is handed in,
and the instructor tools (``course run``, ``refresh``, ``verify``) build on it. The tags,
the sanitizer and the comparison of outputs live here because the student side (the
self-check) and the grader need the same ones, and the student side never imports the
instructor tools.

    >>> from course_utils.notebooks import execute_notebook  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

__all__ = [
    "CHECK_TAG",
    "KERNEL_NAME",
    "RESULT_TAG",
    "SANITIZE_CFG",
    "SELF_CHECK_ENV",
    "comparable_text",
    "describe_error",
    "execute_notebook",
    "kernel_env",
    "output_text",
    "read_sanitizers",
    "short_error",
]

KERNEL_NAME = "python3"
# Keep the kernels' own log quiet (ipykernel warns that its sockets on localhost are not
# encrypted); notebook output, warnings and tracebacks are unaffected.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
CHECK_TAG = "nbval-check-output"  # a checked cell: its output is compared on a re-run
RESULT_TAG = "result"  # a cell that prints a notebook's key results as `name: value`
# Every kernel this runner starts has it set to "0": a notebook's self-check cell then
# only says how to run the self-check, so `course run`, a grader or the self-check's own
# re-run never starts one more run of the notebook.
SELF_CHECK_ENV = "COURSE_SELF_CHECK"
# The kernel of a notebook open in Jupyter has it (jupyter_server sets it); a kernel this
# runner starts does not inherit it, or it would pass for a notebook open in Jupyter.
SESSION_ENV = "JPY_SESSION_NAME"
# nbval's sanitizer file (`make nbval` passes it with --nbval-sanitize-with): the
# differences between two runs of a checked cell that do not count.
SANITIZE_CFG = Path(__file__).with_name("sanitize.cfg")
SANITIZER_PAIR = re.compile(r"^regex: (.*)$\n^replace: (.*)$", re.MULTILINE)  # as nbval reads it
CARRIAGE_RETURN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)  # a line a progress bar rewrote


def kernel_env(overrides: dict[str, str]) -> dict[str, str]:
    """Return this process's environment with ``overrides`` applied (for a kernel).

    >>> env = kernel_env({"COURSE_LIVE_PLOT": "0"})
    >>> env["COURSE_LIVE_PLOT"], env[SELF_CHECK_ENV], SESSION_ENV in env
    ('0', '0', False)
    """
    inherited = {name: value for name, value in os.environ.items() if name != SESSION_ENV}
    return {**inherited, SELF_CHECK_ENV: "0", **overrides}


def output_text(output: NotebookNode) -> str:
    """Return the text of a stream output or the ``text/plain`` of a rich output.

    >>> import nbformat
    >>> output_text(nbformat.v4.new_output("execute_result", data={"text/plain": "42"}))
    '42'
    """
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def read_sanitizers(path: Path = SANITIZE_CFG) -> list[tuple[str, str]]:
    """Return the ``(regex, replacement)`` pairs of an nbval sanitizer file, in order.

    Read as nbval reads it, so that ``make nbval``, the self-check and ``course verify``
    agree on what counts as the same output.

    >>> read_sanitizers()[0]
    ('RUN RECORD \\\\|[^\\\\n]*', 'RUN RECORD')
    """
    return SANITIZER_PAIR.findall(Path(path).read_text(encoding="utf-8"))


def comparable_text(outputs: Sequence[NotebookNode], patterns: Sequence[tuple[str, str]]) -> str:
    """Return a cell's outputs as one sanitized text, as nbval compares them.

    Stream chunks are merged per stream (how ``print`` splits them varies) and a line a
    progress bar rewrote (``\\r``) keeps its last state; errors become ``Name: message``,
    rich outputs their ``text/plain``; images are not compared.

    >>> import nbformat
    >>> comparable_text([nbformat.v4.new_output("stream", text="took 3.2 s\\n"),
    ...                  nbformat.v4.new_output("stream", text="PASS\\n")],
    ...                 [(r"\\d+\\.\\d+ s", "TIME")])
    'took TIME\\nPASS\\n'
    """
    merged: list[NotebookNode] = []
    streams: dict[str, NotebookNode] = {}
    for output in copy.deepcopy(list(outputs)):
        if output.output_type != "stream":
            merged.append(output)
        elif output.name in streams:
            streams[output.name].text = output_text(streams[output.name]) + output_text(output)
        else:
            streams[output.name] = output
            merged.append(output)
    for output in streams.values():
        output.text = CARRIAGE_RETURN.sub("", output_text(output))
    parts = [
        f"{output.ename}: {output.evalue}\n"
        if output.output_type == "error"
        else output_text(output)
        for output in merged
    ]
    text = "".join(parts)
    for regex, replacement in patterns:
        text = re.sub(regex, replacement, text)
    return text


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
