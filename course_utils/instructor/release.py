"""``course release``: build the student release from the solution notebooks.

Usage::

    course release [NOTEBOOK_DIR] [--out build/student]

Every notebook in ``NOTEBOOK_DIR`` (default ``notebooks``) is written to
``OUT/notebooks/`` with each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region
replaced by a stub that raises ``NotImplementedError`` (at the marker's indentation) and
every output cleared. Cell tags, ``nbval-check-output`` and ``parameters`` included,
stay. The helper package ``course_utils/`` is copied unchanged, with the files needed to
install it (``pyproject.toml``, ``README.md``, ``constraints.txt``, ``environment.yml``)
and ``data/README.md``.

The regions are cleared by nbgrader's ``ClearSolutions`` preprocessor, the outputs by
nbconvert's ``ClearOutputPreprocessor``. A stub that does not compile (markers around
part of an expression, such as the items of a dict) stops the release with the cell's
name: put the markers around whole statements.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbformat import NotebookNode

from course_utils.instructor.notebook_io import drop_run_metadata, find_notebooks

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError"
# The repository root: the helper package and the files that install it live here.
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "course_utils"
# Copied next to the package so that `pip install -e .` works in the release.
RELEASE_FILES = ("README.md", "pyproject.toml", "constraints.txt", "environment.yml",
                 "data/README.md")
# A release folder holds this file; only such a folder (or an empty one) is replaced,
# so that `--out` pointing at the wrong place cannot delete anything else.
STAMP = ".course-release"


class ReleaseError(RuntimeError):
    """The release cannot be built (a broken stub, an output folder in the way)."""


def solution_clearer() -> Any:
    """Return nbgrader's ``ClearSolutions``, applied to code cells only.

    nbgrader matches the delimiters anywhere in a line, so markdown that *mentions* the
    markers (the notebooks' instructions do) would be taken for a solution region; the
    solutions live in code cells, so markdown is left alone. nbgrader is imported here
    because only the release needs it (it is in the ``dev`` extra).

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "def f():\\n    ### BEGIN SOLUTION\\n    return 42\\n    ### END SOLUTION")])
    >>> print(solution_clearer().preprocess(nb, {})[0].cells[0].source)
    def f():
        # YOUR CODE HERE
        raise NotImplementedError
    """
    from nbgrader.preprocessors import ClearSolutions

    class ClearCodeSolutions(ClearSolutions):
        def preprocess_cell(self, cell: NotebookNode, resources: dict,
                            index: int) -> tuple[NotebookNode, dict]:
            if cell.cell_type != "code":
                return cell, resources
            return super().preprocess_cell(cell, resources, index)

    return ClearCodeSolutions(
        begin_solution_delimeter=SOLUTION_BEGIN,  # sic: nbgrader's spelling
        end_solution_delimeter=SOLUTION_END,
        code_stub={"python": CODE_STUB},
        # No nbgrader cell metadata here: the markers alone say where answers are.
        enforce_metadata=False,
    )


def count_solutions(nb: NotebookNode) -> int:
    """Return the number of solution regions in the code cells of ``nb``.

    >>> count_solutions(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "### BEGIN SOLUTION\\nx = 1\\n### END SOLUTION")]))
    1
    """
    return sum(cell.source.count(SOLUTION_BEGIN) for cell in nb.cells
               if cell.cell_type == "code")


def check_compiles(source: str, where: str) -> None:
    """Raise :class:`ReleaseError` naming ``where`` if a cell's code does not compile.

    IPython syntax (``%magic``, ``!shell``) is translated first, as the kernel does.

    >>> check_compiles("x = {\\n    raise NotImplementedError\\n}", "cell 3")
    Traceback (most recent call last):
    ...
    course_utils.instructor.release.ReleaseError: cell 3: the stub does not compile (invalid syntax, \
line 2); put the solution markers around whole statements
    """
    try:
        compile(TransformerManager().transform_cell(source), where, "exec")
    except SyntaxError as exc:
        raise ReleaseError(f"{where}: the stub does not compile ({exc.msg}, line "
                           f"{exc.lineno}); put the solution markers around whole "
                           "statements") from None


def student_notebook(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """Return the student version of a solution notebook; ``nb`` is left unchanged.

    Solution regions become the stub, every output and execution count goes, widget
    state and timing metadata go; tags stay.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "### BEGIN SOLUTION\\nanswer = 42\\n### END SOLUTION\\nprint(answer)",
    ...     execution_count=1, metadata={"tags": ["nbval-check-output"]},
    ...     outputs=[nbformat.v4.new_output("stream", text="42\\n")])])
    >>> cell = student_notebook(nb).cells[0]
    >>> print(cell.source)
    # YOUR CODE HERE
    raise NotImplementedError
    print(answer)
    >>> cell.outputs, cell.execution_count, cell.metadata.tags
    ([], None, ['nbval-check-output'])
    """
    student = copy.deepcopy(nb)
    solution_clearer().preprocess(student, {})
    ClearOutputPreprocessor().preprocess(student, {})
    drop_run_metadata(student)
    for index, (before, after) in enumerate(zip(nb.cells, student.cells)):
        if after.cell_type == "code" and after.source != before.source:
            check_compiles(after.source, f"{name} cell {index}")
    nbformat.validate(student)
    return student


def prepare_out_dir(out_dir: Path) -> None:
    """Create an empty ``out_dir``, replacing an earlier release there.

    >>> prepare_out_dir(Path("README.md"))  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    ReleaseError: README.md exists and is not a release folder; choose another --out
    """
    if out_dir.exists():
        if not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / STAMP).exists()):
            raise ReleaseError(f"{out_dir} exists and is not a release folder; "
                               "choose another --out")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / STAMP).write_text("Built by `course release`; rebuilt on every release.\n")


def build_release(notebook_dir: Path, out_dir: Path) -> list[tuple[str, int]]:
    """Write the student release of ``notebook_dir`` to ``out_dir``.

    Returns ``(notebook name, solution regions cleared)`` per notebook. All notebooks
    are converted before anything is written, so a broken one leaves ``out_dir`` as it
    was.

    >>> build_release(Path("notebooks"), Path("build/student"))  # doctest: +SKIP
    [('a1_t1_convolution_arithmetic.ipynb', 14)]
    """
    sources = find_notebooks(notebook_dir)
    if not sources:
        raise ReleaseError(f"no notebooks (*.ipynb) in {notebook_dir}")
    students = []
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        students.append((path.name, count_solutions(nb), student_notebook(nb, path.name)))

    prepare_out_dir(out_dir)
    (out_dir / "notebooks").mkdir()
    for name, _, nb in students:
        nbformat.write(nb, out_dir / "notebooks" / name)
    shutil.copytree(ROOT / PACKAGE, out_dir / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for relative in RELEASE_FILES:
        if (ROOT / relative).is_file():
            (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, out_dir / relative)
    return [(name, regions) for name, regions, _ in students]


def cmd_release(args: argparse.Namespace) -> int:
    """``course release``: write the student release and list what went into it."""
    try:
        built = build_release(args.notebook_dir, args.out)
    except ReleaseError as exc:
        print(f"course release: {exc}", file=sys.stderr)
        return 1
    for name, regions in built:
        print(f"{name}: {regions} solution regions replaced by the stub, outputs cleared")
    print(f"Student release: {args.out}/ ({len(built)} notebooks, {PACKAGE}/ unchanged)")
    return 0


def add_parser(commands: Any) -> None:
    """Add the ``release`` subcommand to the ``course`` parser's subcommands."""
    release = commands.add_parser(
        "release", help="write the student release: solutions stubbed, outputs cleared")
    release.add_argument("notebook_dir", nargs="?", type=Path, default=Path("notebooks"),
                         help="folder with the solution notebooks (default: notebooks)")
    release.add_argument("--out", type=Path, default=Path("build/student"),
                         help="release folder, replaced if it holds an earlier release "
                              "(default: build/student)")
    release.set_defaults(func=cmd_release)
