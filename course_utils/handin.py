"""Am I ready to hand in? ``python -m course_utils.handin NOTEBOOK``.

The self-check re-runs the saved notebook top to bottom in a fresh kernel, as the grader
will (in the ``smoke`` profile, as the grader does by default; no sandbox), and prints:

- each task with its checked and result cells, passed or failed;
- written answers still empty (``YOUR ANSWER HERE``) and code still to write
  (``# YOUR CODE HERE``);
- the errors of the re-run;
- the profile the saved outputs come from, and the one of the re-run;
- whether the saved outputs of the checked cells will reproduce (the grader compares
  them with its own re-run).

It says "ready to hand in" and exits with status 0 only when all is well, else 1. It
knows only the notebook itself: it never runs the grader's hidden tests and never shows
an expected output, only what the notebook's own cells print.

The last cell of every course notebook calls :func:`check_this_notebook`: run in Jupyter,
it runs the self-check on the saved file; run by ``course run``, nbval, the grader or the
self-check itself, it only says how to run the self-check, so that no run of a notebook
starts another.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets
import nbformat
from nbformat import NotebookNode

from course_utils.notebooks import (
    CHECK_TAG,
    RESULT_TAG,
    SELF_CHECK_ENV,
    SESSION_ENV,
    comparable_text,
    execute_notebook,
    kernel_env,
    read_sanitizers,
    short_error,
)

PROFILE = "smoke"  # the grader's default profile; checked cells print the same in every one
CELL_TIMEOUT = 600
ANSWER_STUB = re.compile(r"^YOUR ANSWER HERE\s*$", re.MULTILINE)
CODE_STUB = re.compile(r"^\s*# YOUR CODE HERE\s*\n\s*raise NotImplementedError\b", re.MULTILINE)
RECORD_PROFILE = re.compile(r"RUN RECORD \|.*?\bprofile=([\w-]+)")
MAX_ERRORS = 5  # errors listed; a missing function makes every later cell fail


@dataclass
class Graded:
    """One checked or result cell of the re-run."""

    index: int
    kind: str  # "check" or "result"
    title: str
    error: str | None  # the first error it printed, if any
    reproduces: bool | None  # saved output equals the re-run's (None: result cell)


@dataclass
class SelfCheck:
    """What the self-check found in one notebook."""

    name: str
    profile: str  # of the re-run
    saved_profile: str | None  # from the run record of the saved outputs
    seconds: float
    stopped: str | None = None  # why the re-run stopped early (a timeout, a dead kernel)
    tasks: list[tuple[str, list[Graded]]] = field(default_factory=list)
    empty_answers: list[tuple[int, str]] = field(default_factory=list)
    code_to_write: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    never_run: bool = False  # the saved file holds no output of any checked cell

    @property
    def graded(self) -> list[Graded]:
        """Every checked and result cell, in order."""
        return [cell for _, cells in self.tasks for cell in cells]

    @property
    def not_reproduced(self) -> list[Graded]:
        """Checked cells whose saved output the re-run does not print (none saved: none)."""
        return [] if self.never_run else [c for c in self.graded if c.reproduces is False]

    @property
    def problems(self) -> list[str]:
        """What stands between this notebook and handing it in; empty when ready.

        >>> SelfCheck("a.ipynb", "smoke", "quick", 1.0).problems
        []
        >>> SelfCheck("a.ipynb", "smoke", None, 1.0, code_to_write=[3]).problems
        ['1 cell with code still to write']
        """
        failed = [cell for cell in self.graded if cell.error is not None]
        counts = [
            (1 if self.stopped else 0, "re-run that stopped early", ""),
            (len(failed), "failed check or result cell", "failed check or result cells"),
            (len(self.errors), "error in the re-run", "errors in the re-run"),
            (len(self.empty_answers), "written answer still empty", "written answers still empty"),
            (
                len(self.code_to_write),
                "cell with code still to write",
                "cells with code still to write",
            ),
            (1 if self.never_run else 0, "notebook saved without its outputs", ""),
            (
                len(self.not_reproduced),
                "checked cell whose saved output will not reproduce",
                "checked cells whose saved outputs will not reproduce",
            ),
        ]
        return [f"{n} {one if n == 1 else many}" for n, one, many in counts if n]

    @property
    def ready(self) -> bool:
        """Whether the notebook is ready to hand in."""
        return not self.problems


def first_line(source: str, width: int = 70) -> str:
    """The first non-blank line of a cell, shortened to ``width``.

    >>> first_line("\\n**Question.** Why does a CNN not need the flip?", 30)
    '**Question.** Why does a CN...'
    """
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def first_error(cell: NotebookNode) -> str | None:
    """The first error a cell's outputs hold, as ``Name: first line``."""
    return next(
        (
            short_error(output.ename, output.evalue)
            for output in cell.get("outputs", [])
            if output.output_type == "error"
        ),
        None,
    )


def saved_profile(nb: NotebookNode) -> str | None:
    """The profile named by the run record in a notebook's saved outputs.

    >>> saved_profile(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
    ...     nbformat.v4.new_output("stream", text="RUN RECORD | profile=quick | seed=0\\n")])]))
    'quick'
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            found = RECORD_PROFILE.search(str(output.get("text", "")))
            if found:
                return found.group(1)
    return None


def tags(cell: NotebookNode) -> list[str]:
    """A cell's tags."""
    return list(cell.get("metadata", {}).get("tags", []))


def review(
    saved: NotebookNode,
    fresh: NotebookNode,
    patterns: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, list[Graded]]], list[tuple[int, str]], list[int], list[str]]:
    """Compare the saved notebook with its re-run, cell by cell (the same cells, in order).

    Returns the tasks (each ``## `` heading with its checked and result cells), the
    empty written answers, the cells with code still to write, and the re-run's errors.
    """
    tasks: list[tuple[str, list[Graded]]] = [("Before the first task", [])]
    empty, to_write, errors = [], [], []
    for index, (mine, ran) in enumerate(zip(saved.cells, fresh.cells, strict=True)):
        if mine.cell_type == "markdown":
            if mine.source.lstrip().startswith("## "):
                tasks.append((first_line(mine.source.lstrip()[3:]), []))
            if ANSWER_STUB.search(mine.source):
                empty.append((index, first_line(mine.source)))
            continue
        if mine.cell_type != "code":
            continue
        if CODE_STUB.search(mine.source):
            to_write.append(index)
        error = first_error(ran)
        if error is not None:
            errors.append(f"cell {index}: {error}")
        if CHECK_TAG in tags(mine) or RESULT_TAG in tags(mine):
            checked = CHECK_TAG in tags(mine)
            reproduces = (
                comparable_text(mine.get("outputs", []), patterns)
                == comparable_text(ran.get("outputs", []), patterns)
                if checked
                else None
            )
            title = first_line(mine.source)
            kind = "check" if checked else "result"
            tasks[-1][1].append(Graded(index, kind, title, error, reproduces))
    return [task for task in tasks if task[1]], empty, to_write, errors


def self_check(
    path: Path,
    profile: str = PROFILE,
    cell_timeout: int = CELL_TIMEOUT,
    on_cell: Callable[[int, int], None] | None = None,
) -> SelfCheck:
    """Re-run the notebook at ``path`` in a fresh kernel and say what stands in the way.

    The re-run works in the notebook's folder, as Jupyter does, and leaves the file as
    it is.

    >>> report = self_check(Path("a1_t1_convolution_arithmetic.ipynb"))  # doctest: +SKIP
    >>> report.ready, report.problems  # doctest: +SKIP
    (True, [])
    """
    saved = nbformat.read(path, as_version=4)
    fresh = copy.deepcopy(saved)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    env = kernel_env({"COURSE_PROFILE": profile, "COURSE_LIVE_PLOT": "0"})
    stopped = execute_notebook(
        fresh, Path(path).parent, cell_timeout, env, on_cell=on_cell, allow_errors=True
    )
    tasks, empty, to_write, errors = review(saved, fresh, read_sanitizers())
    report = SelfCheck(
        Path(path).name,
        profile,
        saved_profile(saved),
        time.perf_counter() - start,
        stopped,
        tasks,
        empty,
        to_write,
        errors,
    )
    checked = [cell for cell in saved.cells if CHECK_TAG in tags(cell)]
    report.never_run = bool(checked) and not any(cell.get("outputs") for cell in checked)
    return report


def describe(report: SelfCheck) -> str:
    """The self-check's report, as printed.

    >>> print(describe(SelfCheck("a.ipynb", "smoke", "quick", 12.0, tasks=[("Task 1: Sizes",
    ...     [Graded(5, "check", "print(size(3))", None, True)])])))
    Self-check of a.ipynb: re-ran top to bottom in a fresh kernel in 12 s (profile smoke).
    <BLANKLINE>
    Task 1: Sizes: passed
      passed  cell 5 (check): print(size(3))
    <BLANKLINE>
    Profile: the saved outputs come from a run in the quick profile; the grader re-runs
    in smoke. Checked cells print the same in every profile, so either is fine.
    Saved outputs: all 1 checked cells will reproduce.
    <BLANKLINE>
    READY to hand in a.ipynb.
    """
    lines = [
        f"Self-check of {report.name}: re-ran top to bottom in a fresh kernel in "
        f"{report.seconds:.0f} s (profile {report.profile}).",
    ]
    if report.stopped:
        lines.append(f"The re-run stopped early: {report.stopped}")
    for title, cells in report.tasks:
        passed = all(cell.error is None for cell in cells)
        lines += ["", f"{title}: {'passed' if passed else 'NOT passed'}"]
        for cell in cells:
            status = "passed" if cell.error is None else "FAILED"
            reason = "" if cell.error is None else f"  -> {cell.error}"
            lines.append(f"  {status:6}  cell {cell.index} ({cell.kind}): {cell.title}{reason}")
    if report.empty_answers:
        lines += ["", "Written answers still empty (YOUR ANSWER HERE):"]
        lines += [f"  cell {index}: {question}" for index, question in report.empty_answers]
    if report.code_to_write:
        where = ", ".join(str(index) for index in report.code_to_write)
        lines += ["", f"Code still to write (# YOUR CODE HERE): cells {where}"]
    if report.errors:
        lines += ["", "Errors in the re-run (fix the first; later ones often follow from it):"]
        lines += [f"  {error}" for error in report.errors[:MAX_ERRORS]]
        if len(report.errors) > MAX_ERRORS:
            lines.append(f"  ... and {len(report.errors) - MAX_ERRORS} more")
    saved = report.saved_profile or "unknown (no run record saved)"
    lines += [
        "",
        f"Profile: the saved outputs come from a run in the {saved} profile; the grader "
        f"re-runs\nin {report.profile}. Checked cells print the same in every profile, so "
        "either is fine.",
    ]
    checked = [cell for cell in report.graded if cell.reproduces is not None]
    if report.never_run:
        lines.append(
            "Saved outputs: none. Run all cells (Kernel > Restart Kernel and Run All Cells), "
            "save, and hand in that file."
        )
    elif report.not_reproduced:
        where = ", ".join(str(cell.index) for cell in report.not_reproduced)
        lines.append(
            f"Saved outputs: cells {where} saved an output the re-run does not print. Run all "
            "cells again\n(Kernel > Restart Kernel and Run All Cells) and save before you "
            "hand in."
        )
    else:
        lines.append(f"Saved outputs: all {len(checked)} checked cells will reproduce.")
    lines.append("")
    if report.ready:
        lines.append(f"READY to hand in {report.name}.")
    else:
        lines.append(f"NOT READY to hand in {report.name}: {'; '.join(report.problems)}.")
    return "\n".join(lines)


def check_this_notebook(name: str) -> ipywidgets.VBox | None:
    """The self-check in a notebook's last cell: a button that checks the saved file.

    In Jupyter it returns the button (the cell shows it; a click runs the self-check on
    the saved notebook, the one open, else ``name`` in the working folder), so that "Run
    All" costs nothing. Run by a tool (``course run``, nbval, the grader, the
    self-check's own re-run, a notebook on Colab) it only prints how to run the
    self-check and returns ``None``.

    >>> check_this_notebook("a1_t1_convolution_arithmetic.ipynb")
    Self-check before you hand in: save this notebook, then click the button this cell
    shows in Jupyter, or in a terminal:
    python -m course_utils.handin a1_t1_convolution_arithmetic.ipynb
    """
    session = os.environ.get(SESSION_ENV, "")
    if os.environ.get(SELF_CHECK_ENV) == "0" or not session:
        print(
            "Self-check before you hand in: save this notebook, then click the button this cell\n"
            f"shows in Jupyter, or in a terminal:\npython -m course_utils.handin {name}"
        )
        return None
    path = Path(session) if session.endswith(".ipynb") and Path(session).is_file() else Path(name)
    button = ipywidgets.Button(
        description="Check before hand-in",
        tooltip=f"re-runs the saved {path.name} top to bottom in a fresh kernel",
    )
    output = ipywidgets.Output()

    def run(_: ipywidgets.Button) -> None:
        output.clear_output()
        with output:
            print(f"Checking the saved {path.name} (save first!) ...", flush=True)
            print(describe(self_check(path)))

    button.on_click(run)
    note = ipywidgets.HTML(
        f"Save the notebook, then click: the saved <code>{path.name}</code> is re-run top to "
        "bottom in a fresh kernel, as the grader will, and you see whether it is ready."
    )
    return ipywidgets.VBox([note, button, output])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_utils.handin NOTEBOOK``: 0 when ready to hand in, else 1."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.handin",
        description="Re-run a notebook top to bottom in a fresh kernel, as the grader "
        "will, and say whether it is ready to hand in.",
    )
    parser.add_argument("notebook", type=Path, help="the saved notebook (.ipynb)")
    parser.add_argument(
        "--profile",
        default=PROFILE,
        choices=("smoke", "quick", "full"),
        help=f"profile of the re-run (default: {PROFILE}, as the grader)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=int,
        default=CELL_TIMEOUT,
        help=f"seconds per cell (default: {CELL_TIMEOUT})",
    )
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"{args.notebook} is not a file")
    try:
        report = self_check(args.notebook, args.profile, args.cell_timeout)
    except (ValueError, OSError) as exc:  # not a notebook: nbformat's own message says why
        print(f"{args.notebook} cannot be checked: {short_error(type(exc).__name__, str(exc))}")
        return 1
    print(describe(report))
    return 0 if report.ready else 1


if __name__ == "__main__":
    sys.exit(main())
