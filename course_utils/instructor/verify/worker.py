"""The worker inside the sandbox: re-execute one notebook, report on a channel of its own.

``python -m course_utils.instructor.verify NOTEBOOK --cell-timeout N ...`` reads a random
marker from stdin, then hides its stdout from everything it starts: it keeps a private
duplicate of stdout (not inherited), points fds 0-2 at ``/dev/null`` and makes itself
non-dumpable, so that neither the kernel nor a daemon the notebook starts can read its
memory or its file descriptors (``/proc/PID/fd``, ``/proc/PID/mem``). Only lines that
begin with the marker count: ``MARKER cell N`` before each cell, then ``MARKER result
JSON`` once at the end. The parent reads them after the sandbox has exited.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_utils.instructor.notebook_io import CHECK_TAG, RESULT_TAG
from course_utils.notebooks import describe_error, execute_notebook

PR_SET_DUMPABLE = 4
# Characters kept of one output: a notebook that prints without end cannot make the
# result, which the grader holds in memory, as large as the sandbox's memory.
MAX_OUTPUT_CHARS = 2**20


def slim(nb: NotebookNode) -> NotebookNode:
    """Keep what the grader compares: errors anywhere, text of checked and result cells.

    >>> cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("stream", text="x")])
    >>> slim(nbformat.v4.new_notebook(cells=[cell])).cells[0].outputs
    []
    """
    for cell in nb.cells:
        graded = bool({CHECK_TAG, RESULT_TAG} & set(cell.get("metadata", {}).get("tags", [])))
        kept = []
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback, output.evalue = [], output.evalue[:MAX_OUTPUT_CHARS]
                kept.append(output)
            elif graded and output.output_type == "stream":
                output.text = output.text[:MAX_OUTPUT_CHARS]
                kept.append(output)
            elif graded and "text/plain" in output.get("data", {}):
                output.data = {"text/plain": output.data["text/plain"][:MAX_OUTPUT_CHARS]}
                kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    return nb


def set_limits(memory_mb: int, processes: int, file_mb: int) -> None:
    """Cap this process and everything it starts; nothing inside may raise the caps again.

    RLIMIT_DATA, not RLIMIT_AS: importing PyTorch reserves gigabytes of address space it
    never uses. RLIMIT_NPROC counts processes and threads of the sandbox's user (it does
    not bind a sandbox whose outside user is root; a pids cgroup does). RLIMIT_FSIZE caps
    any single file, memfd files included.
    """
    import resource  # POSIX only, like the sandbox

    for limit, value in (
        (resource.RLIMIT_DATA, memory_mb * 2**20),
        (resource.RLIMIT_NPROC, processes),
        (resource.RLIMIT_FSIZE, file_mb * 2**20),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))


def hide_channel() -> int:
    """Keep a private, non-inheritable copy of stdout; point fds 0-2 at ``/dev/null``."""
    channel = os.dup(1)  # os.dup makes it non-inheritable
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    return channel


def worker(argv: Sequence[str] | None = None) -> int:
    """Re-execute the notebook; report progress and the result on the private channel."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.instructor.verify")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    args = parser.parse_args(argv)

    marker = sys.stdin.readline().strip()
    channel = os.fdopen(hide_channel(), "w", encoding="utf-8")

    def report(kind: str, payload: str) -> None:
        channel.write(f"{marker} {kind} {payload}\n")
        channel.flush()

    try:
        set_limits(args.memory_mb, args.processes, args.file_mb)
        nb = nbformat.read(args.notebook, as_version=4)
        error = execute_notebook(
            nb,
            Path.cwd(),
            args.cell_timeout,
            dict(os.environ),
            on_cell=lambda index, total: report("cell", str(index)),
            allow_errors=True,
        )
        report("result", json.dumps({"error": error, "notebook": slim(nb)}))
    except Exception as exc:  # stderr is /dev/null now: the parent hears of it here
        report("result", json.dumps({"error": f"the worker failed: {describe_error(exc)}"}))
        return 1
    return 0
