"""``course verify``: re-execute submitted notebooks in a sandbox and write a gradebook.

Usage::

    course verify SUBMISSION... [--out build/gradebook.csv] [-j N] [--cell-timeout 120]
                  [--timeout 900] [--memory-mb 4096] [--profile smoke] [--sanitize FILE]

A submission is an executed notebook (a folder stands for the notebooks in it), and its
code is untrusted. Each one is re-executed on the CPU in its own process tree, in a fresh
temporary folder that is also its ``HOME`` and ``TMPDIR``, with a clean environment,
a time limit per cell (``--cell-timeout``) and per notebook (``--timeout``), a memory
limit (``--memory-mb``, on the data segment, so the address space that PyTorch reserves
does not count) and, where Linux user namespaces allow it, without network access. The
folder is deleted afterwards.

For each submission the report says whether it was executed top to bottom in order,
which error outputs it holds (stored and re-executed), whether the output of every cell
tagged ``nbval-check-output`` reproduces (after the nbval sanitizer ``tests/sanitize.cfg``;
with a short diff when not), the key results that cells tagged ``result`` print as
``name: value`` lines, and the wall time. One row per submission goes to the gradebook
CSV and one section to the Markdown report next to it (``gradebook.md``). The status is
one of ``verified``, ``MISMATCH``, ``ERROR``, ``TIMEOUT``, ``MEMORY`` and ``INVALID`` (not
a readable notebook). A bad submission never stops the batch.

The sandbox stops accidents and careless code (endless loops, runaway memory, files
written anywhere, downloads); it runs as the same user, so it is no security boundary
against a deliberate attack.

``python -m course_utils.instructor.verify`` is the worker that runs inside the sandbox.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import datetime as dt
import difflib
import functools
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.reader import NotJSONError

from course_utils.instructor.notebook_io import (MISSING, RESULT_TAG, find_notebooks,
                                                 format_duration, format_table, is_checked,
                                                 key_results, output_text)
from course_utils.notebooks import describe_error, execute_notebook, short_error

VERIFIED, MISMATCH, ERROR, TIMEOUT, MEMORY, INVALID = (
    "verified", "MISMATCH", "ERROR", "TIMEOUT", "MEMORY", "INVALID")
SANITIZE_CFG = Path(__file__).resolve().parents[3] / "tests" / "sanitize.cfg"
# Run a command in new user, network and PID namespaces: no network but a loopback
# interface, and killing `unshare` kills every process the submission started.
ISOLATION = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork",
             "--kill-child")
MAX_DIFF_LINES = 6
ERROR_WIDTH = 100  # characters of an error message in a note (PyTorch's run long)
# Seconds a worker gets after SIGTERM to shut its kernel down before everything is killed.
STOP_GRACE_S = 15
# How a memory limit shows up: Python's MemoryError, or PyTorch's and NumPy's messages.
OUT_OF_MEMORY = re.compile(r"^MemoryError|can't allocate memory|out of memory|"
                           r"Unable to allocate", re.IGNORECASE)
# Files the worker leaves in its result folder.
EXECUTED, OUTCOME, PROGRESS = "executed.ipynb", "outcome.json", "cell"


@dataclass(frozen=True)
class Limits:
    """What a submission may use, and the profile it is re-executed in."""

    cell_timeout: int = 120  # seconds per cell
    notebook_timeout: int = 900  # seconds for the whole notebook, kernel start included
    memory_mb: int = 4096  # data segment of each process (RLIMIT_DATA)
    profile: str = "smoke"  # the profile the stored checked outputs come from

    def describe(self) -> str:
        """One line for the report.

        >>> Limits().describe()
        'profile smoke, 120 s per cell, 900 s per notebook, 4096 MB memory'
        """
        return (f"profile {self.profile}, {self.cell_timeout} s per cell, "
                f"{self.notebook_timeout} s per notebook, {self.memory_mb} MB memory")


@dataclass
class CellCheck:
    """The comparison of one checked cell's stored and re-executed output."""

    index: int
    title: str  # the first line of the cell's source
    ran: bool  # whether the re-execution reached the cell
    diff: str = ""  # short unified diff, empty when the output reproduces

    @property
    def reproduces(self) -> bool:
        """Whether the cell ran again and printed what the submission stored."""
        return self.ran and not self.diff

    def label(self) -> str:
        """``cell 6 (first line of its source)``, as nbval numbers cells."""
        return f"cell {self.index} ({self.title})"


@dataclass
class Verdict:
    """Everything the gradebook and the report say about one submission."""

    submission: str
    status: str
    note: str
    in_order: str = MISSING
    stored_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks: list[CellCheck] = field(default_factory=list)
    stored_results: dict[str, str] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)
    wall_s: float | None = None
    network_isolated: bool | None = None

    @property
    def mismatched(self) -> list[CellCheck]:
        """Checked cells that ran again and printed something else."""
        return [c for c in self.checks if c.ran and c.diff]

    def row(self, result_names: Sequence[str]) -> dict[str, str]:
        """The gradebook row: fixed columns, then one ``result:<name>`` per result."""
        readable = self.status != INVALID
        row = {
            "submission": self.submission,
            "status": self.status,
            "note": self.note,
            "in_order": self.in_order if readable else "",
            "errors": str(len(self.errors)) if readable else "",
            "stored_errors": str(len(self.stored_errors)) if readable else "",
            "checked_cells": str(len(self.checks)) if readable else "",
            "mismatched_cells": " ".join(str(c.index) for c in self.mismatched),
            "wall_s": "" if self.wall_s is None else f"{self.wall_s:.1f}",
            "network_isolated": {True: "yes", False: "no", None: ""}[self.network_isolated],
        }
        row.update({f"result:{name}": self.results.get(name, "") for name in result_names})
        return row


# ------------------------------------------------------------ reading the submission


class InvalidSubmission(ValueError):
    """The file is not a notebook that can be verified."""


def read_submission(path: Path) -> NotebookNode:
    """Read and validate a submitted notebook, or raise :class:`InvalidSubmission`.

    >>> read_submission(Path("no-such-file.ipynb"))
    Traceback (most recent call last):
    ...
    course_utils.instructor.verify.InvalidSubmission: cannot read the file (No such file or directory)
    """
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except NotJSONError:
        raise InvalidSubmission("not a notebook: the file is not JSON "
                                "(truncated, or another format)") from None
    except UnicodeDecodeError:
        raise InvalidSubmission("not a notebook: the file is not text") from None
    except OSError as exc:
        raise InvalidSubmission(f"cannot read the file ({exc.strerror})") from None
    except Exception as exc:  # nbformat raises many kinds for JSON that is no notebook
        raise InvalidSubmission(f"not a valid notebook: {describe_error(exc)}") from None
    return nb


def expand_submissions(paths: Sequence[Path]) -> list[Path]:
    """Replace each folder by the notebooks in it; keep files (and missing paths) as given.

    >>> expand_submissions([Path("a.ipynb"), Path("no-such-folder")])
    [PosixPath('a.ipynb'), PosixPath('no-such-folder')]
    """
    return [nb for path in paths
            for nb in (find_notebooks(path) if path.is_dir() else [path])]


def execution_order(nb: NotebookNode) -> str:
    """Say whether the code cells were executed once each, top to bottom.

    Execution counts must run 1, 2, 3, ... in document order; empty cells are ignored.

    >>> cell = nbformat.v4.new_code_cell
    >>> execution_order(nbformat.v4.new_notebook(cells=[cell("a", execution_count=1),
    ...     cell("", execution_count=None), cell("b", execution_count=2)]))
    'yes'
    >>> execution_order(nbformat.v4.new_notebook(cells=[cell("a", execution_count=1),
    ...     cell("b", execution_count=3), cell("c", execution_count=2)]))
    'no: cell 1 ran as [3], expected [2]'
    >>> execution_order(nbformat.v4.new_notebook(cells=[cell("a")]))
    'not executed'
    """
    counts = [(index, cell.execution_count) for index, cell in enumerate(nb.cells)
              if cell.cell_type == "code" and cell.source.strip()]
    if all(count is None for _, count in counts):
        return "not executed"
    for expected, (index, count) in enumerate(counts, start=1):
        if count != expected:
            ran = "did not run" if count is None else f"ran as [{count}]"
            return f"no: cell {index} {ran}, expected [{expected}]"
    return "yes"


def error_outputs(nb: NotebookNode) -> list[str]:
    """Return ``cell N: Name: message`` for every error output, in order.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
    ...     nbformat.v4.new_output("error", ename="NameError", evalue="name 'x' is not defined",
    ...                            traceback=[])])])
    >>> error_outputs(nb)
    ["cell 0: NameError: name 'x' is not defined"]
    """
    return [f"cell {index}: {short_error(output.ename, output.evalue)}"
            for index, cell in enumerate(nb.cells)
            for output in cell.get("outputs", []) if output.output_type == "error"]


# --------------------------------------------------------------- checked-cell comparison


def read_sanitizers(path: Path = SANITIZE_CFG) -> list[tuple[str, str]]:
    """Return the ``(regex, replacement)`` pairs of an nbval sanitizer file, in order.

    Parsed by nbval itself, so that ``verify`` and ``make nbval`` agree on what counts
    as the same output.

    >>> read_sanitizers()[0]
    ('RUN RECORD \\\\|[^\\\\n]*', 'RUN RECORD')
    """
    from nbval.plugin import get_sanitize_patterns  # dev extra, like the rest of grading

    return get_sanitize_patterns(Path(path).read_text(encoding="utf-8"))


def comparable_text(outputs: Sequence[NotebookNode], patterns: Sequence[tuple[str, str]]) -> str:
    """Return a cell's outputs as one sanitized text, as nbval compares them.

    Stream chunks are merged (how ``print`` splits them varies), errors become
    ``Name: message``, rich outputs their ``text/plain``; images are not compared.

    >>> comparable_text([nbformat.v4.new_output("stream", text="took 3.2 s\\n"),
    ...                  nbformat.v4.new_output("stream", text="PASS\\n")],
    ...                 [(r"\\d+\\.\\d+ s", "TIME")])
    'took TIME\\nPASS\\n'
    """
    from nbval.plugin import coalesce_streams  # also applies \r and \b, as nbval does

    parts = []
    for output in coalesce_streams(copy.deepcopy(list(outputs))):
        if output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}\n")
        else:
            parts.append(output_text(output))
    text = "".join(parts)
    for regex, replacement in patterns:
        text = re.sub(regex, replacement, text)
    return text


def short_diff(stored: str, fresh: str, limit: int = MAX_DIFF_LINES) -> str:
    """Return the changed lines (``-stored``, ``+re-executed``), at most ``limit``.

    >>> print(short_diff("a\\nb\\nc\\n", "a\\nB\\nc\\n"))
    -b
    +B
    >>> short_diff("same\\n", "same")
    ''
    """
    lines = [line for line in difflib.unified_diff(stored.splitlines(), fresh.splitlines(),
                                                   n=0, lineterm="")
             if not line.startswith(("---", "+++", "@@"))]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more changed lines"]
    return "\n".join(lines)


def clip(text: str, width: int) -> str:
    """Shorten ``text`` to at most ``width`` characters.

    >>> clip("result = convolve2d(image, kernel, padding=1)", 20)
    'result = convolve...'
    """
    return text if len(text) <= width else text[:width - 3] + "..."


def first_line(source: str, width: int = 60) -> str:
    """Return the first non-blank line of a cell's source, shortened to ``width``.

    >>> first_line("\\n# shapes\\nprint(x.shape)")
    '# shapes'
    """
    return clip(next((line.strip() for line in source.splitlines() if line.strip()), ""), width)


def check_cells(stored: NotebookNode, fresh: NotebookNode | None,
                patterns: Sequence[tuple[str, str]]) -> list[CellCheck]:
    """Compare every checked cell's stored output with its re-executed output.

    ``fresh`` is ``None`` when the re-execution was killed: no cell counts as run.
    """
    checks = []
    for index, old in enumerate(stored.cells):
        if old.cell_type != "code" or not is_checked(old):
            continue
        new = fresh.cells[index] if fresh is not None else None
        ran = new is not None and new.execution_count is not None
        diff = short_diff(comparable_text(old.outputs, patterns),
                          comparable_text(new.outputs, patterns)) if ran else ""
        checks.append(CellCheck(index, first_line(old.source), ran, diff))
    return checks


# ----------------------------------------------------------------------- the sandbox


@functools.cache
def isolation_prefix() -> tuple[str, ...]:
    """Return the command prefix that cuts a process off the network, or ``()``.

    Needs Linux with unprivileged user namespaces (most distributions; some containers
    and hardened kernels forbid them).
    """
    if not sys.platform.startswith("linux") or shutil.which(ISOLATION[0]) is None:
        return ()
    try:
        probe = subprocess.run([*ISOLATION, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return ISOLATION if probe.returncode == 0 else ()


def sandbox_env(root: Path, profile: str) -> dict[str, str]:
    """Return the whole environment of a sandboxed run: nothing of ours leaks in.

    ``HOME`` and ``TMPDIR`` lie in the sandbox, so the caches and settings of Jupyter,
    IPython, matplotlib and PyTorch, which default to paths under ``HOME``, do too.
    No GPU is visible: verification runs on the CPU.

    >>> sandbox_env(Path("/tmp/sb"), "smoke")["HOME"]
    '/tmp/sb/home'
    """
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
        "COURSE_DATA_DIR": str(root / "home" / "data"),
        "COURSE_PROFILE": profile,
        "COURSE_LIVE_PLOT": "0",
        # On the CPU: checked outputs are device-independent, parallel runs do not
        # contend for one GPU, and the memory limit cannot account for GPU memory.
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in the installed package
    }


@dataclass
class Execution:
    """What came back from one sandboxed re-execution."""

    notebook: NotebookNode | None  # None when the worker was killed or crashed
    error: str | None  # the error that stopped the run (timeout, dead kernel)
    cell: int | None  # the cell that was running last
    killed: bool  # stopped by the notebook time limit
    wall_s: float
    log: str  # the worker's own stdout and stderr, for a crash


def stop(worker: subprocess.Popen) -> None:
    """Stop a sandboxed worker and every process it started.

    In namespaces, SIGTERM ends ``unshare`` and with it the whole PID namespace at once.
    Without them the kernel lives in a session of its own, out of reach of the worker's
    process group; nbclient's SIGTERM handler in the worker shuts it down, and whatever
    is left after the grace period is killed.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def run_sandboxed(path: Path, limits: Limits) -> Execution:
    """Re-execute the notebook at ``path`` in a fresh sandbox; delete it afterwards.

    >>> run_sandboxed(Path("alice.ipynb"), Limits())  # doctest: +SKIP
    Execution(notebook={...}, error=None, cell=29, killed=False, wall_s=14.2, log='')
    """
    root = Path(tempfile.mkdtemp(prefix="course-verify-"))
    try:
        work, results = root / "work", root / "results"
        for folder in (work, results, root / "home", root / "tmp"):
            folder.mkdir()
        notebook = work / "submission.ipynb"
        shutil.copyfile(path, notebook)
        isolation = isolation_prefix()
        command = [*isolation, sys.executable, "-m", "course_utils.instructor.verify",
                   str(notebook), str(results), "--cell-timeout", str(limits.cell_timeout),
                   "--memory-mb", str(limits.memory_mb)]
        if isolation:
            command.append("--loopback")
        log_path = root / "worker.log"
        start = time.perf_counter()
        with open(log_path, "wb") as log:
            # A new session, so that the whole group can be killed; output to a file,
            # not a pipe, which a leftover process could hold open.
            worker = subprocess.Popen(command, cwd=work, env=sandbox_env(root, limits.profile),
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      start_new_session=True)
            try:
                worker.wait(timeout=limits.notebook_timeout)
                killed = False
            except subprocess.TimeoutExpired:
                stop(worker)
                killed = True
        wall_s = time.perf_counter() - start
        outcome = (json.loads((results / OUTCOME).read_text())
                   if (results / OUTCOME).is_file() else {})
        progress = (results / PROGRESS).read_text() if (results / PROGRESS).is_file() else ""
        executed = (nbformat.read(results / EXECUTED, as_version=4)
                    if (results / EXECUTED).is_file() else None)
        return Execution(executed, outcome.get("error"),
                         int(progress) if progress.isdigit() else None, killed, wall_s,
                         log_path.read_text(errors="replace"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -------------------------------------------------------------------------- verdicts


def is_out_of_memory(error: str) -> bool:
    """Whether an error message says that memory ran out.

    >>> is_out_of_memory("cell 3: MemoryError"), is_out_of_memory("cell 3: KeyError: 'x'")
    (True, False)
    """
    return bool(OUT_OF_MEMORY.search(error.split(": ", 1)[-1]))


def judge(run: Execution, verdict: Verdict, limits: Limits) -> tuple[str, str]:
    """Return the status and a one-line note for a re-execution's outcome."""
    where = f"cell {run.cell}" if run.cell is not None else "kernel start"
    if run.killed:
        return TIMEOUT, (f"stopped by the notebook time limit ({limits.notebook_timeout} s) "
                         f"in {where}")
    if run.error and run.error.startswith("CellTimeoutError"):
        return TIMEOUT, f"{where} exceeded the cell time limit ({limits.cell_timeout} s)"
    memory = [error for error in verdict.errors if is_out_of_memory(error)]
    if memory:
        cell, _, message = memory[0].partition(": ")
        return MEMORY, (f"{cell} ran out of memory (limit {limits.memory_mb} MB): "
                        f"{message.partition(':')[0]}")
    if run.error:
        return ERROR, f"{where}: {run.error}"
    if run.notebook is None:
        lines = run.log.strip().splitlines()
        return ERROR, f"the verifier failed: {lines[-1] if lines else 'no output'}"
    if verdict.errors:
        return ERROR, (f"{len(verdict.errors)} errors, the first in "
                       f"{clip(verdict.errors[0], ERROR_WIDTH)}")
    if verdict.mismatched:
        return MISMATCH, "does not reproduce: " + "; ".join(
            check.label() for check in verdict.mismatched)
    if not verdict.checks:
        return VERIFIED, "ran without errors; no checked cells"
    return VERIFIED, f"all {len(verdict.checks)} checked cells reproduce"


def verify_submission(path: Path, limits: Limits,
                      patterns: Sequence[tuple[str, str]]) -> Verdict:
    """Verify one submission; never raises, so one bad file cannot stop a batch.

    >>> verify_submission(Path("alice.ipynb"), Limits(), read_sanitizers())  # doctest: +SKIP
    Verdict(submission='alice.ipynb', status='verified', ...)
    """
    try:
        stored = read_submission(path)
    except InvalidSubmission as exc:
        return Verdict(str(path), INVALID, str(exc))
    verdict = Verdict(str(path), ERROR, "", in_order=execution_order(stored),
                      stored_errors=error_outputs(stored), stored_results=key_results(stored),
                      network_isolated=bool(isolation_prefix()))
    try:
        run = run_sandboxed(path, limits)
    except Exception as exc:  # a failure of the sandbox itself: report it, go on
        verdict.note = f"the verifier failed: {describe_error(exc)}"
        return verdict
    verdict.wall_s = run.wall_s
    verdict.checks = check_cells(stored, run.notebook, patterns)
    if run.notebook is not None:
        verdict.errors = error_outputs(run.notebook)
        verdict.results = key_results(run.notebook)
    verdict.status, verdict.note = judge(run, verdict, limits)
    return verdict


def verify_all(paths: Sequence[Path], limits: Limits, jobs: int = 1,
               patterns: Sequence[tuple[str, str]] | None = None) -> list[Verdict]:
    """Verify submissions, ``jobs`` at a time; return the verdicts in the given order.

    >>> verify_all([Path("alice.ipynb"), Path("bob.ipynb")], Limits(), jobs=2)  # doctest: +SKIP
    [Verdict(submission='alice.ipynb', ...), Verdict(submission='bob.ipynb', ...)]
    """
    patterns = read_sanitizers() if patterns is None else patterns
    total = len(paths)

    def one(numbered: tuple[int, Path]) -> Verdict:
        number, path = numbered
        verdict = verify_submission(path, limits, patterns)
        took = "" if verdict.wall_s is None else f" in {format_duration(verdict.wall_s)}"
        print(f"[{number}/{total}] {path}: {verdict.status}{took}: {verdict.note}", flush=True)
        return verdict

    # Threads suffice: each one waits on its own sandboxed process.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, enumerate(paths, start=1)))


# -------------------------------------------------------------------------- reports


def result_names(verdicts: Sequence[Verdict]) -> list[str]:
    """Every result name, in order of first appearance.

    >>> result_names([Verdict("a", VERIFIED, "", results={"acc": "1", "loss": "0"}),
    ...               Verdict("b", VERIFIED, "", results={"f1": "1", "acc": "0"})])
    ['acc', 'loss', 'f1']
    """
    return list(dict.fromkeys(name for v in verdicts for name in v.results))


def write_gradebook(verdicts: Sequence[Verdict], path: Path) -> None:
    """Write one CSV row per submission."""
    names = result_names(verdicts)
    rows = [verdict.row(names) for verdict in verdicts]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _md(text: str) -> str:
    """Escape text for a Markdown table cell.

    >>> _md("a | b")
    'a \\\\| b'
    """
    return text.replace("|", "\\|").replace("\n", " ")


def _results_text(verdict: Verdict) -> str:
    """``name = value`` per result, with the stored value where it differs."""
    items = []
    for name, value in verdict.results.items():
        stored = verdict.stored_results.get(name)
        items.append(f"{name} = {value}" if stored in (None, value)
                     else f"{name} = {value} (stored: {stored})")
    return ", ".join(items) or "none"


def _errors_text(errors: Sequence[str]) -> str:
    """Errors for the report, each shortened.

    >>> _errors_text([]), _errors_text(["cell 2: NameError: name 'x' is not defined"])
    ('none', "cell 2: NameError: name 'x' is not defined")
    """
    return "; ".join(clip(error, ERROR_WIDTH) for error in errors) or "none"


def _section(verdict: Verdict) -> list[str]:
    """The report's section on one submission."""
    lines = [f"## {verdict.submission}: {verdict.status}", "", verdict.note, ""]
    if verdict.status == INVALID:
        return lines
    wall = MISSING if verdict.wall_s is None else format_duration(verdict.wall_s)
    lines += [
        f"- Executed top to bottom in order: {verdict.in_order}",
        f"- Error outputs stored: {_errors_text(verdict.stored_errors)}",
        f"- Error outputs on re-execution: {_errors_text(verdict.errors)}",
        f"- Key results: {_results_text(verdict)}",
        f"- Wall time: {wall}",
        f"- Checked cells: {len(verdict.checks)}, "
        f"{sum(c.reproduces for c in verdict.checks)} reproduce",
    ]
    for check in verdict.checks:
        state = "reproduces" if check.reproduces else "differs" if check.ran else "did not run"
        lines.append(f"  - {check.label()}: {state}")
        if check.diff:
            lines += ["", "    ```diff", *(f"    {d}" for d in check.diff.splitlines()),
                      "    ```", ""]
    return [*lines, ""]


def markdown_report(verdicts: Sequence[Verdict], limits: Limits) -> str:
    """Return the readable report: settings, a summary table, a section per submission."""
    isolated = bool(isolation_prefix())
    network = ("network isolated (user and network namespace)" if isolated
               else "network: not isolated (user namespaces unavailable here)")
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    counts = ", ".join(f"{sum(v.status == s for v in verdicts)} {s}"
                       for s in (VERIFIED, MISMATCH, ERROR, TIMEOUT, MEMORY, INVALID)
                       if any(v.status == s for v in verdicts))
    lines = ["# Verification report", "",
             f"{len(verdicts)} submissions re-executed {stamp}: {counts}.", "",
             f"Limits: {limits.describe()}; {network}.", "",
             "| submission | status | in order | errors | checked cells | mismatched | "
             "wall time | results |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in verdicts:
        row = v.row([])
        lines.append("| " + " | ".join(_md(cell) for cell in (
            v.submission, v.status, row["in_order"], row["errors"], row["checked_cells"],
            row["mismatched_cells"], row["wall_s"] and f"{row['wall_s']} s",
            _results_text(v) if v.results else "")) + " |")
    lines.append("")
    for verdict in verdicts:
        lines += _section(verdict)
    return "\n".join(lines)


# ------------------------------------------------------------------------------- CLI


def cmd_verify(args: argparse.Namespace) -> int:
    """``course verify``: verify the submissions, write the gradebook and the report."""
    limits = Limits(args.cell_timeout, args.timeout, args.memory_mb, args.profile)
    paths = expand_submissions(args.submissions)
    if not paths:
        print("course verify: no submissions (*.ipynb) found", file=sys.stderr)
        return 2
    isolation = "network isolated" if isolation_prefix() else "network: NOT isolated"
    print(f"Verifying {len(paths)} submissions, {args.jobs} at a time "
          f"({limits.describe()}; {isolation})", flush=True)
    verdicts = verify_all(paths, limits, args.jobs, read_sanitizers(args.sanitize))

    report = args.out.with_suffix(".md")
    write_gradebook(verdicts, args.out)
    report.write_text(markdown_report(verdicts, limits), encoding="utf-8")
    print()
    print(format_table(["submission", "status", "note"],
                       [[v.submission, v.status, v.note] for v in verdicts]))
    passed = sum(v.status == VERIFIED for v in verdicts)
    print(f"\n{passed} verified, {len(verdicts) - passed} not. "
          f"Gradebook: {args.out}, report: {report}")
    return 0 if passed == len(verdicts) else 1


def add_parser(commands: Any) -> None:
    """Add the ``verify`` subcommand to the ``course`` parser's subcommands."""
    defaults = Limits()
    verify = commands.add_parser(
        "verify", help="re-execute submitted notebooks in a sandbox, write a gradebook")
    verify.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                        help="executed notebooks, or folders of them")
    verify.add_argument("--out", type=Path, default=Path("build/gradebook.csv"),
                        help="gradebook CSV; the Markdown report goes next to it "
                             "(default: build/gradebook.csv)")
    verify.add_argument("-j", "--jobs", type=int, default=1,
                        help="submissions verified in parallel (default: 1)")
    verify.add_argument("--cell-timeout", type=int, default=defaults.cell_timeout,
                        help=f"seconds per cell (default: {defaults.cell_timeout})")
    verify.add_argument("--timeout", type=int, default=defaults.notebook_timeout,
                        help=f"seconds per notebook (default: {defaults.notebook_timeout})")
    verify.add_argument("--memory-mb", type=int, default=defaults.memory_mb,
                        help=f"memory per process in MB (default: {defaults.memory_mb})")
    verify.add_argument("--profile", choices=("smoke", "quick", "full", "auto"),
                        default=defaults.profile,
                        help="COURSE_PROFILE of the re-execution; checked cells print the "
                             f"same in every profile (default: {defaults.profile})")
    verify.add_argument("--sanitize", type=Path, default=SANITIZE_CFG,
                        help="nbval sanitizer file (default: tests/sanitize.cfg)")
    verify.set_defaults(func=cmd_verify)


# --------------------------------------------------------- the worker in the sandbox


def limit_memory(megabytes: int) -> None:
    """Cap this process's data segment; the kernel it starts inherits the cap.

    RLIMIT_DATA, not RLIMIT_AS: importing PyTorch reserves gigabytes of address space
    it never uses (about 5 GB for a smoke run whose data segment stays near 1.3 GB).
    """
    import resource  # POSIX only: imported here so that `course` starts on Windows

    limit = megabytes * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def bring_up_loopback() -> None:
    """Switch on ``lo`` in a new network namespace, where it starts down.

    The worker talks to its kernel over 127.0.0.1; nothing else is reachable.
    """
    import fcntl  # POSIX only, like `resource`

    get_flags, set_flags, up = 0x8913, 0x8914, 0x1  # SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP
    layout = "16sH22x"  # struct ifreq: interface name, flags, padding to 40 bytes
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        _, flags = struct.unpack(layout, fcntl.ioctl(sock, get_flags,
                                                     struct.pack(layout, b"lo", 0)))
        fcntl.ioctl(sock, set_flags, struct.pack(layout, b"lo", flags | up))


def worker(argv: Sequence[str] | None = None) -> int:
    """Re-execute one notebook inside the sandbox; write what happened to a folder.

    Run by :func:`run_sandboxed` as ``python -m course_utils.instructor.verify NOTEBOOK RESULTS``
    in the sandbox's working folder and environment.
    """
    parser = argparse.ArgumentParser(prog="python -m course_utils.instructor.verify")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--loopback", action="store_true")
    args = parser.parse_args(argv)

    limit_memory(args.memory_mb)
    if args.loopback:
        bring_up_loopback()
    nb = nbformat.read(args.notebook, as_version=4)
    for cell in nb.cells:  # cells the run does not reach must not keep stored outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    def on_cell(index: int, total: int) -> None:
        # Written before each cell, so a run killed from outside still names its cell.
        (args.results / PROGRESS).write_text(str(index))

    error = execute_notebook(nb, args.notebook.parent, args.cell_timeout, dict(os.environ),
                             on_cell=on_cell, allow_errors=True)
    nbformat.write(nb, args.results / EXECUTED)
    (args.results / OUTCOME).write_text(json.dumps({"error": error}))
    return 0


if __name__ == "__main__":
    sys.exit(worker())
