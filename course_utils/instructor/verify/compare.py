"""Comparison of a re-execution with the submission and with the template.

Each checked cell is compared twice, after the nbval sanitizer: the submission's stored
output against the re-executed one (are the outputs genuine?), and the re-executed one
against the template's stored output (did the student's code pass?). Key results are
read only from the template's result cells as re-executed, and only under the names the
template prints.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from nbformat import NotebookNode

from course_utils.instructor.notebook_io import RESULT_LINE, output_text
from course_utils.instructor.verify.template import (
    RESULT,
    Template,
    cell_points,
    cell_role,
    first_line,
    result_names_in,
)
from course_utils.instructor.verify.verdict import CellCheck

SANITIZE_CFG = Path(__file__).with_name("sanitize.cfg")
MAX_DIFF_LINES = 6


def read_sanitizers(path: Path = SANITIZE_CFG) -> list[tuple[str, str]]:
    """Return the ``(regex, replacement)`` pairs of an nbval sanitizer file, in order.

    Parsed by nbval itself, so that ``verify`` and ``make nbval`` agree on what counts
    as the same output.

    >>> read_sanitizers()[0]
    ('RUN RECORD \\\\|[^\\\\n]*', 'RUN RECORD')
    """
    from nbval.plugin import get_sanitize_patterns  # grading needs the dev/instructor extra

    return get_sanitize_patterns(Path(path).read_text(encoding="utf-8"))


def comparable_text(outputs: Sequence[NotebookNode], patterns: Sequence[tuple[str, str]]) -> str:
    """Return a cell's outputs as one sanitized text, as nbval compares them.

    Stream chunks are merged (how ``print`` splits them varies), errors become
    ``Name: message``, rich outputs their ``text/plain``; images are not compared.

    >>> import nbformat
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
    lines = [
        line
        for line in difflib.unified_diff(stored.splitlines(), fresh.splitlines(), n=0, lineterm="")
        if not line.startswith(("---", "+++", "@@"))
    ]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more changed lines"]
    return "\n".join(lines)


def has_error(cell: NotebookNode) -> bool:
    """Whether a cell's outputs hold an error."""
    return any(output.output_type == "error" for output in cell.get("outputs", []))


def printed_results(cell: NotebookNode, names: Sequence[str]) -> dict[str, str]:
    """The first value printed for each of ``names`` in a cell's stdout.

    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
    ...     "stream", text="acc: 0.9\\nforged: 1\\nacc: 1.0\\n")])
    >>> printed_results(cell, ["acc"])
    {'acc': '0.9'}
    """
    found: dict[str, str] = {}
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stdout":
            for name, value in RESULT_LINE.findall(output_text(output)):
                if name in names:
                    found.setdefault(name, value)
    return found


def grade_cells(
    template: Template,
    nb: NotebookNode,
    fresh: NotebookNode | None,
    patterns: Sequence[tuple[str, str]],
) -> list[CellCheck]:
    """Compare every checked and result cell of the template as the re-execution ran it.

    ``nb`` is the submission (its stored outputs), ``fresh`` the re-executed notebook
    (the template with the submission's solution cells), ``None`` when the run was killed.
    """
    stored_by_id = {cell.get("id"): cell for cell in nb.cells}
    checks = []
    for index, cell in template.graded:
        new = fresh.cells[index] if fresh is not None else None
        ran = new is not None and new.execution_count is not None and not has_error(new)
        check = CellCheck(index, first_line(cell.source), ran, points=cell_points(cell))
        if cell_role(cell) == RESULT:
            check.kind = RESULT
            names = result_names_in(cell)
            check.passed = (
                new is not None and ran and set(printed_results(new, names)) == set(names)
            )
        elif new is not None and ran:
            fresh_text = comparable_text(new.outputs, patterns)
            stored = stored_by_id.get(cell.get("id"))
            check.diff = short_diff(
                comparable_text(stored.outputs if stored else [], patterns), fresh_text
            )
            # A release has no outputs to expect: there, running without an error passes.
            outputs = template.expected_outputs(index)
            expected = comparable_text(outputs, patterns) if outputs else fresh_text
            check.passed = fresh_text == expected
        checks.append(check)
    return checks


def key_results(template: Template, fresh: NotebookNode | None) -> dict[str, str]:
    """The key results the template's result cells printed when re-executed.

    A name the template does not print is never a result, whatever a submission prints.
    """
    if fresh is None:
        return {}
    results: dict[str, str] = {}
    for index, cell in template.graded:
        if cell_role(cell) == RESULT:
            for name, value in printed_results(fresh.cells[index], result_names_in(cell)).items():
                results.setdefault(name, value)
    return results
