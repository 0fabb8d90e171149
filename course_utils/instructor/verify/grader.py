"""The grader's own cells: what decides points runs here, in the grader's process.

Two kinds of template cells run here, never in the student's kernel:

- **graded cells** (checked and result cells without a solution region): the template's
  source runs in a namespace where the names the template's own code cells import
  (``checks``, ``np``, ``torch``, ``F``, ...) are the grader's, names an earlier graded
  cell assigned keep the grader's values, and every other name the cell reads is fetched
  from the student's kernel as data (:mod:`.proxy`). So ``checks.check_convolution(
  convolve2d)`` calls the student's function with the check's cases and compares the
  answers with the grader's ``F.conv2d``; what the cell prints is captured here, and a
  result cell's values are read from that text.
- **hidden tests** (code cells tagged ``hidden-test``): their source runs in a fresh
  namespace holding ``checks``, ``np``, ``torch``, ``rng`` (seeded from ``os.urandom``
  for each grading run), ``student`` (the proxy) and ``submission_code`` (every code
  cell of the file as handed in). A hidden test passes when it raises nothing.

Each runs right after the notebook cell it follows has run in the kernel, so it sees the
student's values as the notebook had them there.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from nbformat import NotebookNode

from course_utils import pysource
from course_utils.instructor.release import SOLUTION_BEGIN
from course_utils.instructor.verify.proxy import Channel, Student, StudentError
from course_utils.instructor.verify.routed import routed
from course_utils.instructor.verify.split_checks import SplitChecks
from course_utils.instructor.verify.template import CODE_STUB, HIDDEN, TEMPLATE_ID_KEY, cell_role
from course_utils.notebooks import describe_error

# Set to 1 to see on the grader's stderr why each hidden test failed (never in a report).
DEBUG_ENV = "COURSE_VERIFY_DEBUG"
MAX_PRINTED_CHARS = 2**20  # what one grader-side cell may print


@dataclass
class Outcome:
    """What one graded cell printed when the grader ran it, and the error that stopped it."""

    text: str
    error: str | None = None


class _ThreadStdout(io.TextIOBase):
    """``sys.stdout`` that writes to the running thread's capture, else to the real one.

    Grading runs several submissions at once, in threads; each captures what its own
    grader-side cells print.
    """

    def __init__(self, real: TextIO):
        self.real, self.local = real, threading.local()

    def write(self, text: str) -> int:
        buffer = getattr(self.local, "buffer", None)
        if buffer is None:
            return self.real.write(text)
        if buffer.tell() < MAX_PRINTED_CHARS:
            buffer.write(text[: MAX_PRINTED_CHARS - buffer.tell()])
        return len(text)

    def flush(self) -> None:
        if getattr(self.local, "buffer", None) is None:
            self.real.flush()


_install_lock = threading.Lock()


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """Capture what this thread prints (``sys.stdout``) into a string buffer.

    >>> with captured() as out:
    ...     print("PASS")
    >>> out.getvalue()
    'PASS\\n'
    """
    with _install_lock:
        if not isinstance(sys.stdout, _ThreadStdout):
            sys.stdout = _ThreadStdout(sys.stdout)
    stdout = sys.stdout
    assert isinstance(stdout, _ThreadStdout)
    buffer = io.StringIO()
    before = getattr(stdout.local, "buffer", None)
    stdout.local.buffer = buffer
    try:
        yield buffer
    finally:
        stdout.local.buffer = before


def grader_side(cell: NotebookNode) -> bool:
    """Whether a template's checked or result cell can run in the grader: plain Python,
    holding none of the student's code (a cell with a solution region runs only in the
    kernel, and its output there is what counts).

    >>> import nbformat
    >>> grader_side(nbformat.v4.new_code_cell("checks.check_convolution(convolve2d)"))
    True
    >>> grader_side(nbformat.v4.new_code_cell("%time x = 1"))
    False
    """
    if SOLUTION_BEGIN in cell.source or CODE_STUB.search(cell.source):
        return False
    try:
        pysource.parse(cell.source)
    except SyntaxError:
        return False
    return True


def read_names(source: str) -> list[str]:
    """The names a cell's source reads, in order of first use, builtins left out.

    >>> read_names("result = convolve2d(image, kernel)\\nprint(result.tolist(), len(x))")
    ['convolve2d', 'image', 'kernel', 'result', 'x']
    """
    loads = sorted(
        (node.lineno, node.col_offset, node.id)
        for node in ast.walk(pysource.parse(source))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    )
    names = [name for _, _, name in loads]
    ordered = sorted(set(names), key=names.index)
    return [name for name in ordered if not hasattr(builtins, name)]


def assigned_names(source: str) -> set[str]:
    """The names a cell's source binds (assignments, loops, definitions, imports).

    >>> sorted(assigned_names("import numpy as np\\nfor i, x in enumerate(y):\\n    z = x"))
    ['i', 'np', 'x', 'z']
    """
    found = set()
    for node in ast.walk(pysource.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name).split(".")[0] for a in node.names)
    return found


def template_imports(template_nb: NotebookNode) -> dict[str, Any]:
    """The names the template's own code cells import, imported here (the grader's own).

    Only import statements of cells without a solution region run, never other code. A
    name that a solution region binds too (the student's own ``UNet`` over the course's)
    is left out: the student's is the one graded.

    >>> import nbformat
    >>> sorted(template_imports(nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("import math\\nfrom os import path, sep"),
    ...     nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nsep = 1\\n### END SOLUTION")])))
    ['math', 'path']
    """
    namespace: dict[str, Any] = {}
    students: set[str] = set()
    for cell in template_nb.cells:
        if cell.cell_type == "code" and SOLUTION_BEGIN in cell.source:
            with contextlib.suppress(SyntaxError):
                students |= assigned_names(cell.source)
    for cell in template_nb.cells:
        if cell.cell_type != "code" or SOLUTION_BEGIN in cell.source:
            continue
        try:
            tree = pysource.parse(cell.source)
        except SyntaxError:  # an IPython magic: such a cell imports nothing here
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                with contextlib.suppress(ImportError):
                    exec(compile(ast.Module([node], []), "<template import>", "exec"), namespace)
    namespace.pop("__builtins__", None)
    return {name: value for name, value in namespace.items() if name not in students}


def new_rng() -> np.random.Generator:
    """A generator seeded from ``os.urandom``: fresh cases for every grading run."""
    return np.random.default_rng(int.from_bytes(os.urandom(16), "little"))


class Grader:
    """Runs one submission's graded cells and hidden tests, in the grader's process."""

    def __init__(self, template_nb: NotebookNode, channel: Channel, submission_code: str):
        from course_utils import checks

        self.student = Student(channel)
        self.checks = checks
        self.submission_code = submission_code
        self.rng = new_rng()
        # A course helper handed the student's model runs in the kernel (see routed).
        self.namespace = {
            name: routed(value, self.student)
            for name, value in template_imports(template_nb).items()
        }
        # A check that hands the student's function a model or a loader runs that part in
        # the kernel, on objects built from a setting the grader drew (see split_checks).
        split = SplitChecks(checks, self.student)
        self.namespace.update({"checks": split, "np": np, "torch": _torch()})

    def run_graded(self, source: str) -> Outcome:
        """Run a checked or result cell's template source here; capture what it prints."""
        scope = dict(self.namespace)
        with captured() as out:
            try:
                for name in read_names(source):
                    if name not in scope:
                        with contextlib.suppress(StudentError):  # not defined there: NameError
                            scope[name] = getattr(self.student, name)
                exec(compile(source, "<graded cell>", "exec"), scope)
                error = None
            except Exception as exc:  # the student's answer failed the check, or no answer
                error = describe_error(exc)
        self.namespace.update({k: scope[k] for k in assigned_names(source) if k in scope})
        return Outcome(out.getvalue(), error)

    def run_hidden(self, source: str) -> bool:
        """Run a hidden test; it passes when it raises nothing. Its output is discarded."""
        scope = {
            "checks": self.checks,
            "np": np,
            "torch": _torch(),
            "rng": self.rng,
            "student": self.student,
            "submission_code": self.submission_code,
        }
        with captured():
            try:
                exec(compile(source, "<hidden test>", "exec"), scope)
            except Exception as exc:  # CheckFailed, AssertionError, anything: the test fails
                if os.environ.get(DEBUG_ENV) == "1":
                    # The instructor's terminal only: never the gradebook, which students may see.
                    print(f"hidden test failed: {describe_error(exc)}", file=sys.__stderr__)
                return False
        return True


def _torch() -> Any:
    import torch

    return torch


class GradingSession:
    """One submission's grader-side cells, each run right after its place in the notebook.

    A graded cell runs after the kernel ran it; a hidden test after the notebook cell that
    stands for the template cell before it (at the end, where that cell never ran).
    ``graded`` and ``hidden`` map template cell ids to what came of them.
    """

    def __init__(
        self,
        template_nb: NotebookNode,
        run_nb: NotebookNode,
        here: set[str],
        submission_code: str,
        channel: Channel,
    ):
        self.grader = Grader(template_nb, channel, submission_code)
        self.run_ids = [cell.get("metadata", {}).get(TEMPLATE_ID_KEY) for cell in run_nb.cells]
        self.sources = {cell.get("id"): cell.source for cell in template_nb.cells}
        self.here = here
        self.hidden_after = hidden_anchors(template_nb, set(filter(None, self.run_ids)))
        self.graded: dict[str, Outcome] = {}
        self.hidden: dict[str, bool] = {}

    def after_cell(self, index: int) -> None:
        """Run the graded cell and the hidden tests that belong after run cell ``index``."""
        template_id = self.run_ids[index]
        if template_id is None:
            return
        if template_id in self.here and template_id not in self.graded:
            self.graded[template_id] = self.grader.run_graded(self.sources[template_id])
        for hidden_id in self.hidden_after.get(template_id, []):
            self.run_hidden(hidden_id)

    def run_hidden(self, hidden_id: str) -> None:
        if hidden_id not in self.hidden:
            self.hidden[hidden_id] = self.grader.run_hidden(self.sources[hidden_id])

    def finish(self) -> None:
        """Run the hidden tests whose place never ran."""
        for hidden_ids in self.hidden_after.values():
            for hidden_id in hidden_ids:
                self.run_hidden(hidden_id)


def hidden_anchors(template_nb: NotebookNode, present: set[str]) -> dict[str | None, list[str]]:
    """Hidden test ids by the id of the template cell they follow (present in the run).

    ``None`` collects the hidden tests with no such cell before them.

    >>> import nbformat
    >>> cells = [nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell(
    ...     "assert 1", metadata={"tags": ["hidden-test"]})]
    >>> cells[0].id, cells[1].id = "a", "h"
    >>> hidden_anchors(nbformat.v4.new_notebook(cells=cells), {"a"})
    {'a': ['h']}
    """
    anchors: dict[str | None, list[str]] = {}
    last: str | None = None
    for cell in template_nb.cells:
        if cell_role(cell) == HIDDEN:
            anchors.setdefault(last, []).append(cell.get("id"))
        elif cell.get("id") in present:
            last = cell.get("id")
    return anchors
