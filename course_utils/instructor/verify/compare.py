"""Comparison of a re-execution with the submission, and the points of each graded cell.

Each checked cell is compared after the nbval sanitizer: the submission's stored output
against the one the sandboxed kernel printed (are the outputs genuine?). Its points come
from the grader's own run of the template's source (:mod:`.grader`): what that printed
against the template's expected output. Key results are read from the grader's run of
the template's result cells, and only under the names the template prints. A checked or
result cell that holds a solution region (the student's code) cannot run in the
grader; neither can one that failed there in the template's own run (it needs an object
that is not data, a model's hooks). For those, and only those, the kernel's output is
compared, as the report says. Hidden tests pass or fail in the grader alone.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from nbformat import NotebookNode

from course_utils.instructor.notebook_io import RESULT_LINE, output_text
from course_utils.instructor.verify.grader import Outcome, grader_side
from course_utils.instructor.verify.template import (
    CHECKED,
    HIDDEN,
    RESULT,
    Template,
    cell_points,
    cell_role,
    first_line,
    result_names_in,
    template_cells,
)
from course_utils.instructor.verify.verdict import CellCheck
from course_utils.notebooks import SANITIZE_CFG

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


def results_in(text: str, names: Sequence[str]) -> dict[str, str]:
    """The first value printed for each of ``names`` in a text.

    >>> results_in("acc: 0.9\\nforged: 1\\nacc: 1.0\\n", ["acc"])
    {'acc': '0.9'}
    """
    found: dict[str, str] = {}
    for name, value in RESULT_LINE.findall(text):
        if name in names:
            found.setdefault(name, value)
    return found


def stdout_text(cell: NotebookNode) -> str:
    """What a cell printed to stdout."""
    return "".join(
        output_text(output)
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == "stdout"
    )


REFERENCE_KEY = "course_verify_grader"  # the template's own grader-side outcomes


def reference_outcomes(template: Template) -> dict[str, Outcome]:
    """The grader-side outcomes of the template's own run, by template cell id."""
    if template.reference is None:
        return {}
    stored = template.reference.metadata.get(REFERENCE_KEY, {})
    return {key: Outcome(value["text"], value["error"]) for key, value in stored.items()}


def graded_here(template: Template) -> set[str]:
    """Ids of the checked and result cells whose points the grader's own run decides.

    Those without a solution region, less those that failed in the grader when the
    template itself ran (with the instructor's solutions, a failure there means the cell
    needs what cannot travel as data).
    """
    reference = reference_outcomes(template)
    failed = {key for key, outcome in reference.items() if outcome.error}
    return {
        str(cell.get("id"))
        for _, cell in template.graded
        if grader_side(cell) and cell.get("id") not in failed
    }


def expected_text(template: Template, index: int, patterns: Sequence[tuple[str, str]]) -> str:
    """What a graded cell must print: the template's own grader-side run, else its outputs."""
    cell_id = template.nb.cells[index].get("id")
    reference = reference_outcomes(template).get(cell_id)
    if reference is not None:
        return sanitized(reference.text, patterns)
    return comparable_text(template.expected_outputs(index), patterns)


def sanitized(text: str, patterns: Sequence[tuple[str, str]]) -> str:
    """``text`` as :func:`comparable_text` would compare it, as one stdout stream."""
    return comparable_text([NotebookNode(output_type="stream", name="stdout", text=text)], patterns)


def grade_cells(
    template: Template,
    stored: dict[str, NotebookNode],
    fresh: NotebookNode | None,
    patterns: Sequence[tuple[str, str]],
    graded: dict[str, Outcome] | None = None,
    hidden: dict[str, bool] | None = None,
) -> list[CellCheck]:
    """Every checked, result and hidden-test cell of the template, with its points.

    ``stored`` maps template cell ids to the submission's cells, ``fresh`` is the
    notebook the kernel ran (``None`` before or without a run), ``graded`` and ``hidden``
    the grader's outcomes by template cell id.
    """
    ran_cells = template_cells(fresh) if fresh is not None else {}
    here = graded_here(template)
    graded, hidden = graded or {}, hidden or {}
    checks = []
    for index, cell in enumerate(template.nb.cells):
        role, cell_id = cell_role(cell), cell.get("id")
        if role == HIDDEN:
            name = cell.metadata.get("course", {}).get("name") or "hidden test"
            check = CellCheck(index, first_line(str(name)), cell_id in hidden, kind=HIDDEN)
            check.points, check.passed = cell_points(cell), hidden.get(cell_id, False)
            checks.append(check)
            continue
        if role not in (CHECKED, RESULT):
            continue
        new = ran_cells.get(cell_id)
        ran = new is not None and new.get("execution_count") is not None and not has_error(new)
        check = CellCheck(index, first_line(cell.source), ran, points=cell_points(cell))
        check.kind = role
        check.where = "grader" if cell_id in here else "kernel"
        if new is not None and ran and role == CHECKED:
            fresh_text = comparable_text(new.outputs, patterns)
            mine = stored.get(cell_id)
            check.diff = short_diff(
                comparable_text(mine.outputs if mine is not None else [], patterns), fresh_text
            )
        outcome = graded.get(cell_id)
        if cell_id in here:
            text, ok = (outcome.text, outcome.error is None) if outcome else ("", False)
            if role == CHECKED and outcome is not None and outcome.error:
                check.hint = outcome.error
        else:
            text, ok = (stdout_text(new), ran) if new is not None else ("", False)
        if role == RESULT:
            names = result_names_in(cell)
            check.passed = ok and set(results_in(text, names)) == set(names)
        elif cell_id in here:
            expected = expected_text(template, index, patterns)
            check.passed = ok and (not expected or sanitized(text, patterns) == expected)
        else:
            # A release has no outputs to expect: there, running without an error passes.
            got = comparable_text(new.outputs, patterns) if new is not None else ""
            expected = comparable_text(template.expected_outputs(index), patterns)
            check.passed = ok and got == (expected or got)
        checks.append(check)
    return checks


def key_results(
    template: Template, fresh: NotebookNode | None, graded: dict[str, Outcome]
) -> dict[str, str]:
    """The key results of the template's result cells, from the grader's run of them.

    A name the template does not print is never a result, whatever a submission prints;
    a result cell that only the kernel can run is read from the kernel's output.
    """
    here = graded_here(template)
    ran_cells = template_cells(fresh) if fresh is not None else {}
    results: dict[str, str] = {}
    for _, cell in template.graded:
        if cell_role(cell) != RESULT:
            continue
        cell_id = cell.get("id")
        if cell_id in here:
            outcome = graded.get(cell_id)
            text = outcome.text if outcome is not None and outcome.error is None else ""
        else:
            text = stdout_text(ran_cells[cell_id]) if cell_id in ran_cells else ""
        for name, value in results_in(text, result_names_in(cell)).items():
            results.setdefault(name, value)
    return results
