"""``course release``: build the student pack from the solution notebooks.

Usage::

    course release [NOTEBOOK_DIR] [--out build/student] [--package-url URL]
                   [--timings build/results.json]

The student pack is a folder that a student can zip, clone or open on Colab, and that
installs with a plain ``pip install .``:

- ``notebooks/``: every notebook with each solution region cleared by nbgrader's
  ``ClearSolutions``. In a code cell the lines from ``### BEGIN SOLUTION`` to
  ``### END SOLUTION`` become a stub that raises ``NotImplementedError`` (at the
  marker's indentation); in a markdown cell (a written answer, a takeaway) they become
  ``YOUR ANSWER HERE``. Cells tagged ``hidden-test`` (the grader's own tests, with their
  points and names in ``metadata.course``) are left out, and so are the rubrics of written
  answers (``metadata.course.rubric``). Every output is cleared; cell
  tags stay. With ``--package-url``
  the ``COURSE_PACKAGE = ...`` line of each notebook's ``install`` cell names where the
  first cell installs the helpers from (Colab).
- ``course_utils/`` without the instructor tools (``course_utils/instructor``);
- ``pyproject.toml``: the course's, less what only instructors need: no ``course``
  command, only the ``lab`` extra, and the instructor sub-package left out;
- ``constraints.txt``: the course's exact pins of what a student installs;
- ``jupyter-config/``: JupyterLab settings that ``pip install`` puts next to JupyterLab
  (widget state saved with the notebook, see :mod:`course_utils.widgets`);
- ``README.md``: the student README (install on a laptop, on Colab, in JupyterLab;
  the time of each notebook on a CPU, read from the ``results.json`` that ``course run``
  writes; how to hand in); the license files, ``data/README.md`` and a ``.gitignore``.

Everything is read from the course folder: the nearest folder above ``NOTEBOOK_DIR``
(or the checkout holding this package) with ``pyproject.toml`` and ``constraints.txt``.
A stub that does not compile (markers around part of an expression, such as the items
of a dict) stops the release with the cell's name: put the markers around whole
statements.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbformat import NotebookNode
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from course_utils.instructor.notebook_io import (
    add_notebook_dir_argument,
    drop_run_metadata,
    find_notebooks,
    notebook_title,
)

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError"
TEXT_STUB = "YOUR ANSWER HERE"  # nbgrader's stub for written answers
PACKAGE = "course_utils"
INSTRUCTOR_PACKAGE = f"{PACKAGE}.instructor"
# The checkout holding this package, when it runs from one (an editable install).
ROOT = Path(__file__).resolve().parents[2]
# Extras a student may install; the others (instructor, dev) stay with the course.
STUDENT_EXTRAS = ("lab",)
INSTALL_TAG = "install"
# The grader's hidden tests: their code and expected values reach no student.
HIDDEN_TEST_TAG = "hidden-test"
# Cell metadata for graders only: a written answer's rubric says what earns its points.
GRADER_METADATA = ("rubric",)
PACKAGE_LINE = re.compile(r"^COURSE_PACKAGE = .*$", re.MULTILINE)
README_TEMPLATE = Path(__file__).with_name("student_readme.md.j2")
DEFAULT_TIMINGS = Path("build/results.json")
GITIGNORE = """\
.venv/
__pycache__/
.ipynb_checkpoints/
*.egg-info/
build/
notebooks/results/
notebooks/.course_cache/
data/*
!data/README.md
"""
# A release folder holds this file; only such a folder (or an empty one) is replaced,
# so that `--out` pointing at the wrong place cannot delete anything else.
STAMP = ".course-release"


class ReleaseError(RuntimeError):
    """The release cannot be built (a broken stub, a missing file, a folder in the way)."""


def solution_clearer() -> Any:
    """Return nbgrader's ``ClearSolutions`` with this course's markers and stubs.

    nbgrader is imported here because only the release needs it (``instructor`` extra).

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "def f():\\n    ### BEGIN SOLUTION\\n    return 42\\n    ### END SOLUTION")])
    >>> print(solution_clearer().preprocess(nb, {})[0].cells[0].source)
    def f():
        # YOUR CODE HERE
        raise NotImplementedError
    """
    from nbgrader.preprocessors import ClearSolutions

    return ClearSolutions(
        begin_solution_delimeter=SOLUTION_BEGIN,  # sic: nbgrader's spelling
        end_solution_delimeter=SOLUTION_END,
        code_stub={"python": CODE_STUB},
        text_stub=TEXT_STUB,
        # No nbgrader cell metadata here: the markers alone say where answers are.
        enforce_metadata=False,
    )


def count_solutions(nb: NotebookNode) -> int:
    """Return the number of solution regions in ``nb``, code and markdown cells alike.

    >>> count_solutions(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "### BEGIN SOLUTION\\nx = 1\\n### END SOLUTION"), nbformat.v4.new_markdown_cell(
    ...     "### BEGIN SOLUTION\\nBecause.\\n### END SOLUTION")]))
    2
    """
    return sum(cell.source.count(SOLUTION_BEGIN) for cell in nb.cells)


def check_compiles(source: str, where: str) -> None:
    """Raise :class:`ReleaseError` naming ``where`` if a cell's code does not compile.

    IPython syntax (``%magic``, ``!shell``) is translated first, as the kernel does.

    >>> check_compiles("x = {\\n    raise NotImplementedError\\n}", "cell 3")
    Traceback (most recent call last):
    ...
    course_utils.instructor.release.ReleaseError: cell 3: the stub does not compile \
(invalid syntax, line 2); put the solution markers around whole statements
    """
    try:
        compile(TransformerManager().transform_cell(source), where, "exec")
    except SyntaxError as exc:
        raise ReleaseError(
            f"{where}: the stub does not compile ({exc.msg}, line "
            f"{exc.lineno}); put the solution markers around whole "
            "statements"
        ) from None


def check_package_url(url: str) -> str:
    """Return ``url`` if it can stand in the install cell, else raise :class:`ReleaseError`.

    >>> check_package_url("git+https://github.com/course/cnn-student")
    'git+https://github.com/course/cnn-student'
    >>> check_package_url("https://x.org/a b.zip")
    Traceback (most recent call last):
    ...
    course_utils.instructor.release.ReleaseError: --package-url must be one pip requirement \
or URL without spaces or quotes, got 'https://x.org/a b.zip'
    """
    if not url or re.search(r"[\s'\"\\]", url):
        raise ReleaseError(
            "--package-url must be one pip requirement or URL without spaces "
            f"or quotes, got {url!r}"
        )
    return url


def set_package_url(nb: NotebookNode, url: str, name: str = "notebook") -> None:
    """Write ``url`` into the ``COURSE_PACKAGE = ...`` line of the ``install`` cell.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     'COURSE_PACKAGE = "course_utils"  # the URL goes here',
    ...     metadata={"tags": ["install"]})])
    >>> set_package_url(nb, "git+https://github.com/course/cnn-student")
    >>> print(nb.cells[0].source)
    COURSE_PACKAGE = "git+https://github.com/course/cnn-student"  # the course's helpers
    """
    for cell in nb.cells:
        if INSTALL_TAG in cell.metadata.get("tags", []) and PACKAGE_LINE.search(cell.source):
            line = f"COURSE_PACKAGE = {json.dumps(url)}  # the course's helpers"
            cell.source = PACKAGE_LINE.sub(line.replace("\\", "\\\\"), cell.source, count=1)
            return
    raise ReleaseError(
        f"{name}: no cell tagged {INSTALL_TAG!r} with a `COURSE_PACKAGE = ...` "
        "line for --package-url to fill in"
    )


def is_hidden_test(cell: NotebookNode) -> bool:
    """Whether ``cell`` is one of the grader's hidden tests (tagged ``hidden-test``).

    >>> is_hidden_test(nbformat.v4.new_code_cell("assert 1", metadata={"tags": ["hidden-test"]}))
    True
    """
    return HIDDEN_TEST_TAG in cell.metadata.get("tags", [])


def student_notebook(
    nb: NotebookNode, name: str = "notebook", package_url: str | None = None
) -> NotebookNode:
    """Return the student version of a solution notebook; ``nb`` is left unchanged.

    Solution regions become the stubs, hidden-test cells go, every output and execution
    count goes, widget state, timing metadata and rubrics (``metadata.course.rubric``)
    go; tags and points stay.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "### BEGIN SOLUTION\\nanswer = 42\\n### END SOLUTION\\nprint(answer)",
    ...     execution_count=1, metadata={"tags": ["nbval-check-output"]},
    ...     outputs=[nbformat.v4.new_output("stream", text="42\\n")]),
    ...     nbformat.v4.new_markdown_cell("**Why?**\\n### BEGIN SOLUTION\\nBecause.\\n"
    ...                                   "### END SOLUTION")])
    >>> nb.cells.append(nbformat.v4.new_code_cell("assert answer == 42", metadata={
    ...     "tags": ["hidden-test"], "course": {"points": 1, "name": "the answer"}}))
    >>> nb.cells[1].metadata["course"] = {"points": 2, "rubric": [{"description": "Because"}]}
    >>> code, text = student_notebook(nb).cells
    >>> print(code.source)
    # YOUR CODE HERE
    raise NotImplementedError
    print(answer)
    >>> code.outputs, code.execution_count, code.metadata.tags
    ([], None, ['nbval-check-output'])
    >>> print(text.source)
    **Why?**
    YOUR ANSWER HERE
    >>> text.metadata.course
    {'points': 2}
    """
    kept = [cell for cell in nb.cells if not is_hidden_test(cell)]
    student = copy.deepcopy(nb)
    student.cells = [cell for cell in student.cells if not is_hidden_test(cell)]
    clearer = solution_clearer()
    for index, cell in enumerate(student.cells):
        try:
            clearer.preprocess_cell(cell, {"language": "python"}, index)
        except RuntimeError as exc:  # nbgrader's word for unbalanced markers
            raise ReleaseError(
                f"{name} cell {index}: {exc}; every {SOLUTION_BEGIN} needs its own {SOLUTION_END}"
            ) from None
    ClearOutputPreprocessor().preprocess(student, {})
    drop_run_metadata(student)
    for cell in student.cells:
        course = cell.metadata.get("course", {})
        for key in GRADER_METADATA:
            course.pop(key, None)
    for index, (before, after) in enumerate(zip(kept, student.cells, strict=True)):
        if after.cell_type == "code" and after.source != before.source:
            check_compiles(after.source, f"{name} cell {index}")
    if package_url is not None:
        set_package_url(student, package_url, name)
    nbformat.validate(student)
    return student


def course_root(notebook_dir: Path) -> Path:
    """Return the course folder: the nearest one above ``notebook_dir``, or the checkout
    holding this package, with ``pyproject.toml`` and ``constraints.txt``.

    >>> course_root(Path("notebooks")) == ROOT  # doctest: +SKIP
    True
    """
    start = Path(notebook_dir).resolve()
    for folder in (start, *start.parents, ROOT):
        if all((folder / name).is_file() for name in ("pyproject.toml", "constraints.txt")):
            return folder
    raise ReleaseError(
        f"no course folder (pyproject.toml and constraints.txt) above "
        f"{notebook_dir} or at {ROOT}: run `course release` from a checkout "
        "of the course repository"
    )


def student_pyproject(pyproject: dict[str, Any]) -> dict[str, Any]:
    """Return the course's ``pyproject.toml`` (parsed) as the student pack needs it.

    The ``course`` command, the instructor and dev extras and every tool's settings
    but setuptools' go; the instructor sub-package is left out of the packages.

    >>> course = {"project": {"name": "c", "scripts": {"course": "x:main"},
    ...           "optional-dependencies": {"lab": ["jupyterlab"], "dev": ["pytest"]}},
    ...           "tool": {"setuptools": {"packages": {"find": {"include": ["c*"]}}},
    ...                    "pytest": {}}}
    >>> student = student_pyproject(course)
    >>> student["project"]
    {'name': 'c', 'optional-dependencies': {'lab': ['jupyterlab']}, 'readme': 'README.md'}
    >>> student["tool"]["setuptools"]["packages"]["find"]
    {'include': ['c*'], 'exclude': ['course_utils.instructor*']}
    """
    kept = ("build-system", "project", "tool")
    student: dict[str, Any] = copy.deepcopy(
        {key: pyproject[key] for key in kept if key in pyproject}
    )
    project = student["project"]
    project.pop("scripts", None)
    extras = project.pop("optional-dependencies", {})
    project["optional-dependencies"] = {
        name: extras[name] for name in STUDENT_EXTRAS if name in extras
    }
    project["readme"] = "README.md"
    setuptools = student.get("tool", {}).get("setuptools", {})
    find = setuptools.setdefault("packages", {}).setdefault("find", {})
    find["exclude"] = [*find.get("exclude", []), f"{INSTRUCTOR_PACKAGE}*"]
    student["tool"] = {"setuptools": setuptools}
    return student


def student_requirements(pyproject: dict[str, Any]) -> set[str]:
    """Canonical names of what a student's install brings in directly.

    >>> sorted(student_requirements({"project": {"dependencies": ["torch>=2.4"],
    ...     "optional-dependencies": {"lab": ["jupyterlab>=4"], "dev": ["pytest"]}}}))
    ['jupyterlab', 'torch']
    """
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    texts = [
        *project.get("dependencies", []),
        *(text for name in STUDENT_EXTRAS for text in extras.get(name, [])),
    ]
    return {canonicalize_name(Requirement(text).name) for text in texts}


def student_constraints(constraints: str, names: set[str]) -> str:
    """Keep the pins of ``names`` from a constraints file, under a student's header.

    >>> print(student_constraints("# course\\ntorch==2.14.1\\npytest==9.2.0\\n", {"torch"}))
    # The exact versions this course was tested with. `pip install .` accepts any version
    # in pyproject.toml's ranges; `pip install -c constraints.txt ".[lab]"` installs these.
    torch==2.14.1
    <BLANKLINE>
    """
    pins = [
        line
        for line in constraints.splitlines()
        if "==" in line
        and not line.lstrip().startswith("#")
        and canonicalize_name(line.split("==")[0].strip()) in names
    ]
    header = [
        "# The exact versions this course was tested with. `pip install .` accepts any version",
        '# in pyproject.toml\'s ranges; `pip install -c constraints.txt ".[lab]"` installs these.',
    ]
    return "\n".join([*header, *pins, ""])


def cpu_times(results_file: Path) -> tuple[dict[str, float], str]:
    """Wall times of the notebooks that ``course run`` ran on a CPU in the quick profile.

    Returns ``({notebook file: seconds}, where they were measured)``; empty when the file
    is missing or holds no such run.

    >>> cpu_times(Path("no-such-results.json"))
    ({}, '')
    """
    if not results_file.is_file():
        return {}, ""
    summary = json.loads(results_file.read_text(encoding="utf-8"))
    times = {
        entry["name"]: float(entry["wall_s"])
        for entry in summary.get("notebooks", [])
        if entry.get("status") == "ok"
        and entry.get("profile") == "quick"
        and entry.get("device") == "cpu"
    }
    return times, summary.get("machine", "CPU") if times else ""


def readme_time(seconds: float | None) -> str:
    """A notebook's CPU time for the student README.

    >>> readme_time(16.2), readme_time(306), readme_time(None)
    ('under a minute', 'about 5 min', 'not measured')
    """
    if seconds is None:
        return "not measured"
    if seconds < 60:
        return "under a minute"
    return f"about {round(seconds / 60)} min"


def student_readme(
    notebooks: Sequence[tuple[str, NotebookNode]],
    folder: str,
    package_url: str | None,
    results_file: Path,
) -> str:
    """Render the student README from its template (``student_readme.md.j2``)."""
    import jinja2  # comes with nbconvert (instructor extra)

    times, measured = cpu_times(results_file)
    rows = [
        {
            "file": name,
            "title": notebook_title(nb, Path(name).stem),
            "cpu_time": readme_time(times.get(name)),
        }
        for name, nb in notebooks
    ]
    template = jinja2.Template(
        README_TEMPLATE.read_text(encoding="utf-8"), keep_trailing_newline=True
    )
    return template.render(
        title="CNN course: student pack",
        notebooks=rows,
        folder=folder,
        package_url=package_url,
        measured=measured,
    )


def prepare_out_dir(out_dir: Path) -> None:
    """Create an empty ``out_dir``, replacing an earlier release there.

    >>> prepare_out_dir(Path("README.md"))  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    ReleaseError: README.md exists and is not a release folder; choose another --out
    """
    if out_dir.exists():
        if not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / STAMP).exists()):
            raise ReleaseError(
                f"{out_dir} exists and is not a release folder; choose another --out"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / STAMP).write_text("Built by `course release`; rebuilt on every release.\n")


def write_packaging(root: Path, out_dir: Path) -> None:
    """Write the student ``pyproject.toml`` and ``constraints.txt``; copy the license
    files, ``data/README.md`` and pyproject's data-files (JupyterLab's settings)."""
    import tomli_w  # instructor extra

    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    (out_dir / "pyproject.toml").write_text(
        tomli_w.dumps(student_pyproject(pyproject)), encoding="utf-8"
    )
    constraints = (root / "constraints.txt").read_text(encoding="utf-8")
    (out_dir / "constraints.txt").write_text(
        student_constraints(constraints, student_requirements(pyproject)), encoding="utf-8"
    )
    (out_dir / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    data_files = pyproject.get("tool", {}).get("setuptools", {}).get("data-files", {})
    shipped = [*pyproject["project"].get("license-files", []), "data/README.md"]
    for relative in [*shipped, *(path for paths in data_files.values() for path in paths)]:
        if not (root / relative).is_file():
            raise ReleaseError(f"{root / relative} is missing; the student pack needs it")
        (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, out_dir / relative)


def build_release(
    notebook_dir: Path,
    out_dir: Path,
    package_url: str | None = None,
    results_file: Path = DEFAULT_TIMINGS,
) -> list[tuple[str, int]]:
    """Write the student pack of ``notebook_dir`` to ``out_dir``.

    Returns ``(notebook name, solution regions cleared)`` per notebook. All notebooks
    are converted before anything is written, so a broken one leaves ``out_dir`` as it
    was. ``results_file`` is the summary of a ``course run`` whose CPU times the README
    gives.

    >>> build_release(Path("notebooks"), Path("build/student"))  # doctest: +SKIP
    [('a1_t1_convolution_arithmetic.ipynb', 14), ...]
    """
    if package_url is not None:
        check_package_url(package_url)
    root = course_root(notebook_dir)
    sources = find_notebooks(notebook_dir)
    if not sources:
        raise ReleaseError(f"no notebooks (*.ipynb) in {notebook_dir}")
    students = []
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        students.append(
            (path.name, count_solutions(nb), student_notebook(nb, path.name, package_url))
        )
    readme = student_readme(
        [(name, nb) for name, _, nb in students], out_dir.name, package_url, results_file
    )

    prepare_out_dir(out_dir)
    (out_dir / "notebooks").mkdir()
    for name, _, nb in students:
        nbformat.write(nb, out_dir / "notebooks" / name)
    shutil.copytree(
        root / PACKAGE,
        out_dir / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "instructor"),
    )
    (out_dir / "README.md").write_text(readme, encoding="utf-8")
    write_packaging(root, out_dir)
    return [(name, regions) for name, regions, _ in students]


def cmd_release(args: argparse.Namespace) -> int:
    """``course release``: write the student pack and list what went into it."""
    try:
        built = build_release(args.notebook_dir, args.out, args.package_url, args.timings)
    except ReleaseError as exc:
        print(f"course release: {exc}", file=sys.stderr)
        return 1
    for name, regions in built:
        print(f"{name}: {regions} solution regions cleared, outputs cleared")
    times, _ = cpu_times(args.timings)
    if not times:
        print(
            f"NOTICE: {args.timings} has no quick-profile CPU run, so the student README "
            "says 'not measured'; run `course run --profile quick` on a CPU first."
        )
    where = args.package_url or "the pack's folder, when a notebook sits inside it"
    print(
        f"Student pack: {args.out}/ ({len(built)} notebooks, {PACKAGE}/ without "
        f"instructor/, README, pyproject.toml, constraints.txt); install cells use {where}"
    )
    return 0


def add_parser(commands: Any) -> None:
    """Add the ``release`` subcommand to the ``course`` parser's subcommands."""
    release = commands.add_parser(
        "release", help="write the student pack: solutions stubbed, outputs cleared"
    )
    add_notebook_dir_argument(release, "solution notebooks")
    release.add_argument(
        "--out",
        type=Path,
        default=Path("build/student"),
        help="release folder, replaced if it holds an earlier release (default: build/student)",
    )
    release.add_argument(
        "--package-url",
        default=None,
        help="where the notebooks' first cell installs the course helpers "
        "from on Colab, e.g. git+https://github.com/ORG/REPO "
        "(default: the pack's folder)",
    )
    release.add_argument(
        "--timings",
        type=Path,
        default=DEFAULT_TIMINGS,
        help="results.json of a `course run` whose CPU times the student "
        f"README gives (default: {DEFAULT_TIMINGS})",
    )
    release.set_defaults(func=cmd_release)
