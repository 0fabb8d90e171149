"""The instructor's notebook as the source of truth: matching, tampering, the notebook to run.

A submission is matched to a template notebook (the instructor's solution notebook, or
a release: cell ids are the same) by file name, else by the cell ids they share. Every
cell the template tags ``nbval-check-output`` or ``result`` must be in the submission,
with the same id, tags and source, in the same order; otherwise the submission is
``TAMPERED``. What is re-executed is the template itself, with only its solution cells
(those holding ``### BEGIN SOLUTION`` or marked as nbgrader solutions) taken from the
submission: a submission supplies its own code and nothing else.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_utils.instructor.notebook_io import CHECK_TAG, RESULT_TAG, find_notebooks
from course_utils.instructor.release import SOLUTION_BEGIN
from course_utils.instructor.verify.submission import InvalidSubmission

CHECKED, RESULT, SOLUTION, FIXED = "checked", "result", "solution", "fixed"
# A submission that shares fewer of its cell ids with every template is another notebook.
MIN_SHARED_IDS = 0.5
# Names a result cell prints, as `print(f"name: ...")` in its source: the gradebook's columns.
RESULT_NAME_IN_SOURCE = re.compile(r"""\bprint\(\s*[rRfF]{0,2}["']([A-Za-z_][\w.-]*):""")


def cell_role(cell: NotebookNode) -> str:
    """What a template cell is: ``checked``, ``result``, ``solution`` or ``fixed``.

    >>> cell_role(nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["nbval-check-output"]}))
    'checked'
    >>> cell_role(nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nx = 1\\n### END SOLUTION"))
    'solution'
    >>> cell_role(nbformat.v4.new_markdown_cell("# Title"))
    'fixed'
    """
    tags = cell.get("metadata", {}).get("tags", [])
    if cell.cell_type != "code":
        return FIXED
    if CHECK_TAG in tags:
        return CHECKED
    if RESULT_TAG in tags:
        return RESULT
    if SOLUTION_BEGIN in cell.source or cell.metadata.get("nbgrader", {}).get("solution"):
        return SOLUTION
    return FIXED


def cell_points(cell: NotebookNode) -> float:
    """Points of a checked or result cell: ``metadata.course.points``, 1 when unset.

    >>> cell_points(nbformat.v4.new_code_cell(metadata={"course": {"points": 2.5}}))
    2.5
    >>> cell_points(nbformat.v4.new_code_cell())
    1.0
    """
    points = cell.get("metadata", {}).get("course", {}).get("points", 1)
    return float(points) if isinstance(points, (int, float)) else 1.0


def result_names_in(cell: NotebookNode) -> list[str]:
    """The result names a template's result cell prints.

    >>> result_names_in(nbformat.v4.new_code_cell('print(f"test_loss: {loss:.4f}")'))
    ['test_loss']
    """
    return list(dict.fromkeys(RESULT_NAME_IN_SOURCE.findall(cell.source)))


@dataclass(frozen=True)
class Template:
    """One instructor notebook that submissions are compared with.

    ``reference`` is the template's own re-execution in the sandbox, when there is one:
    the expected output of its checked cells, as the installed course prints it today
    (stored outputs go stale when a check's wording changes).
    """

    path: Path
    nb: NotebookNode
    reference: NotebookNode | None = None

    def expected_outputs(self, index: int) -> list[NotebookNode]:
        """The expected outputs of cell ``index``: re-executed, else stored."""
        source = self.reference if self.reference is not None else self.nb
        return source.cells[index].get("outputs", [])

    @property
    def graded(self) -> list[tuple[int, NotebookNode]]:
        """``(index, cell)`` of every checked and result cell, in order."""
        return [(i, c) for i, c in enumerate(self.nb.cells) if cell_role(c) in (CHECKED, RESULT)]

    @property
    def result_names(self) -> list[str]:
        """Every result name the template's result cells print, in order."""
        return list(
            dict.fromkeys(
                name
                for _, cell in self.graded
                if cell_role(cell) == RESULT
                for name in result_names_in(cell)
            )
        )

    def ids(self) -> set[str]:
        """The template's cell ids."""
        return {cell.get("id") for cell in self.nb.cells}


def load_templates(source: Path) -> list[Template]:
    """Read the template notebooks: a folder of them, or one notebook.

    >>> load_templates(Path("no-such-folder"))
    Traceback (most recent call last):
    ...
    ValueError: no template notebooks in no-such-folder: pass --template NOTEBOOK_DIR
    """
    paths = find_notebooks(source) if source.is_dir() else [source] if source.is_file() else []
    if not paths:
        raise ValueError(f"no template notebooks in {source}: pass --template NOTEBOOK_DIR")
    return [Template(path, nbformat.read(path, as_version=4)) for path in paths]


def match_template(name: str, nb: NotebookNode, templates: Sequence[Template]) -> Template:
    """The template a submission answers: same file name, else the most shared cell ids.

    Raises :class:`InvalidSubmission` for a notebook that shares too few cell ids with
    every template (another course's notebook, or one written from scratch).
    """
    ids = {cell.get("id") for cell in nb.cells}
    by_name = [t for t in templates if t.path.name == name]
    candidates = by_name or templates
    best = max(candidates, key=lambda t: len(ids & t.ids()))
    shared = len(ids & best.ids()) / max(1, len(best.ids()))
    if shared < MIN_SHARED_IDS:
        raise InvalidSubmission(
            f"not one of the course's notebooks: it shares "
            f"{shared:.0%} of its cell ids with {best.path.name}"
        )
    return best


def first_line(source: str, width: int = 60) -> str:
    """Return the first non-blank line of a cell's source, shortened to ``width``.

    >>> first_line("\\n# shapes\\nprint(x.shape)")
    '# shapes'
    """
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def tampering(template: Template, nb: NotebookNode) -> list[str]:
    """Say how a submission changed the template's checked and result cells; ``[]`` if not.

    >>> cell = nbformat.v4.new_code_cell("print(1)", metadata={"tags": ["nbval-check-output"]})
    >>> template = Template(Path("t.ipynb"), nbformat.v4.new_notebook(cells=[cell]))
    >>> edited = copy.deepcopy(template.nb)
    >>> edited.cells[0].metadata.tags = []
    >>> tampering(template, edited)
    ['cell 0 (print(1)) is re-tagged: checked in the template, [] here']
    """
    by_id = {cell.get("id"): cell for cell in nb.cells}
    problems = []
    for index, cell in template.graded:
        label = f"cell {index} ({first_line(cell.source)})"
        mine = by_id.get(cell.get("id"))
        if mine is None:
            problems.append(f"{label} is missing")
        elif sorted(mine.get("metadata", {}).get("tags", [])) != sorted(
            cell.metadata.get("tags", [])
        ):
            problems.append(
                f"{label} is re-tagged: {cell_role(cell)} in the template, "
                f"{sorted(mine.get('metadata', {}).get('tags', []))} here"
            )
        elif not mine.source.strip():
            problems.append(f"{label} is blanked")
        elif mine.source != cell.source:
            problems.append(f"{label} is edited")
    graded_ids = [cell.get("id") for _, cell in template.graded]
    order = [cell.get("id") for cell in nb.cells if cell.get("id") in graded_ids]
    if not problems and order != graded_ids:
        moved = next(i for i, (a, b) in enumerate(zip(order, graded_ids, strict=False)) if a != b)
        index, cell = template.graded[moved]
        problems.append(f"cell {index} ({first_line(cell.source)}) is moved")
    known = {cell.get("id"): cell_role(cell) for cell in template.nb.cells}
    for index, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if role in (CHECKED, RESULT) and known.get(cell.get("id")) not in (CHECKED, RESULT):
            problems.append(
                f"cell {index} ({first_line(cell.source)}) is tagged {role}, "
                "which the template's cell is not"
            )
    return problems


def checks_reimport(template: Template) -> str:
    """Source that re-imports ``course_utils.checks`` and rebinds the template's names for it.

    Runs before each checked cell, so a solution cell that patched the checks package
    or its modules (or rebound ``checks``) cannot make a check print PASS: they are read
    again from the instructor's read-only install.

    >>> cell = nbformat.v4.new_code_cell("from course_utils import checks, viz")
    >>> print(checks_reimport(Template(Path("t"), nbformat.v4.new_notebook(cells=[cell]))))
    # course verify: the checks as installed, not as this notebook may have patched them
    [__import__('sys').modules.pop(m) for m in list(__import__('sys').modules)
     if m == 'course_utils.checks' or m.startswith('course_utils.checks.')]
    from course_utils import checks
    """
    imports = []
    for cell in template.nb.cells:
        if cell_role(cell) != FIXED or cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics: such a cell imports nothing we rebind
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "course_utils":
                names = [alias for alias in node.names if alias.name == "checks"]
                if names:
                    imports.append(ast.unparse(ast.ImportFrom("course_utils", names, 0)))
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and "course_utils.checks" in (
                [getattr(node, "module", None)] + [a.name for a in node.names]
            ):
                imports.append(ast.unparse(node))
    return "\n".join(
        [
            "# course verify: the checks as installed, not as this notebook may have patched them",
            "[__import__('sys').modules.pop(m) for m in list(__import__('sys').modules)",
            " if m == 'course_utils.checks' or m.startswith('course_utils.checks.')]",
            *dict.fromkeys(imports),
        ]
    )


def notebook_to_run(template: Template, nb: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The template with the submission's solution cells in it, outputs cleared.

    Returns the notebook and notes on solution cells the submission lacks (they run empty).
    Cell positions are the template's, so cell numbers in the report are the template's.
    """
    by_id = {cell.get("id"): cell for cell in nb.cells}
    run = copy.deepcopy(template.nb)
    reimport = checks_reimport(template)
    notes = []
    for index, cell in enumerate(run.cells):
        if cell.cell_type != "code":
            continue
        role = cell_role(cell)
        if role == SOLUTION:
            mine = by_id.get(cell.get("id"))
            if mine is None or mine.cell_type != "code":
                notes.append(f"solution cell {index} ({first_line(cell.source)}) is missing")
            cell.source = mine.source if mine is not None and mine.cell_type == "code" else ""
        elif role == CHECKED:
            cell.source = f"{reimport}\n{cell.source}"
        cell.outputs, cell.execution_count = [], None
    return run, notes
