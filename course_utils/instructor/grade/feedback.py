"""One HTML feedback page per submission, self-contained, for the student to keep.

The page is the student's notebook as handed in (markdown, code, text outputs and PNG
figures inline, no script and nothing fetched: it renders offline) with a box at every
graded cell: a check's points and, when it failed, its hint; the hidden tests of that
task by **name and points only**; a written answer's rubric items given, points and
comment. The total is at the top.

What a hidden test runs, prints or expects never reaches this page (nbgrader issue 1363:
returned feedback leaked hidden tests). Only three fields of a hidden check are read:
``title`` (verify keeps the test's public name there, ``metadata.course.name``),
``points`` and ``passed``; its source, message and expected values are not even looked
at. Everything the student wrote is escaped; their HTML outputs are shown
as their plain-text form. A cell of the submission that is a hidden test (by the
template's id or by its tag) is left out.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from course_utils.instructor.grade.markup import markdown_html
from course_utils.instructor.grade.store import Store
from course_utils.instructor.verify.template import HIDDEN_TAG

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_OUTPUT_CHARS = 20_000  # of one text output: a notebook that printed without end
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; color: #222; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
pre.output { background: #fff; border-left: 3px solid #ddd; }
pre.error { background: #fff0f0; }
img { max-width: 100%; }
.grade { border: 2px solid #3b7ddd; border-radius: 6px; padding: .3rem .8rem; margin: .5rem 0;
         background: #f3f7ff; }
.grade.failed { border-color: #c33; background: #fff5f5; }
.total { font-size: 1.3rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2rem .5rem; }
"""


def points(value: float) -> str:
    """``1 point`` or ``2.5 points``.

    >>> points(1), points(2.5)
    ('1 point', '2.5 points')
    """
    return f"{value:g} point{'' if value == 1 else 's'}"


def check_box(check: dict[str, Any]) -> str:
    """The box of one autograded check; a hidden test shows its name and points only.

    >>> box = check_box({"kind": "hidden", "name": "fresh images", "points": 2,
    ...                  "passed": False, "message": "expected 42", "title": "assert f(1) == 42"})
    >>> "fresh images" in box, "42" in box
    (True, False)
    """
    passed, worth = bool(check.get("passed")), float(check.get("points", 1))
    state = "passed" if passed else "failed"
    earned = f"{points(worth if passed else 0)} of {worth:g}"
    if check.get("kind") == "hidden":
        # verify's CellCheck keeps a hidden test's public name as its title.
        name = str(check.get("name") or check.get("title") or "hidden test")
        text = f"Hidden test <em>{html.escape(name)}</em>: {state}, {earned}"
    else:
        text = f"Check ({html.escape(str(check.get('kind', 'checked')))}): {state}, {earned}"
        hint = str(check.get("hint") or "")
        if not passed and hint:
            text += f"<br>Hint: {html.escape(hint)}"
    return f'<div class="grade{"" if passed else " failed"}">{text}</div>'


def answer_box(store: Store, submission: str, question: str) -> str:
    """The box of one written answer: items given, points, the grader's comment."""
    given = store.db.execute(
        "SELECT i.points, i.description FROM marks m JOIN items i ON i.id=m.item "
        "WHERE m.submission=? AND i.question=? ORDER BY i.id",
        (submission, question),
    ).fetchall()
    note = store.db.execute(
        "SELECT comment FROM notes WHERE submission=? AND question=?", (submission, question)
    ).fetchone()
    worth = sum(max(float(i["points"]), 0) for i in store.items(question))
    lines = [f"Written answer: {points(store.manual_points(submission, question))} of {worth:g}"]
    lines += [f"&#10003; {html.escape(g['description'])} ({g['points']:+g})" for g in given]
    if note and note["comment"]:
        lines.append(f"Comment: {html.escape(note['comment'])}")
    return '<div class="grade">' + "<br>".join(lines) + "</div>"


def output_html(output: NotebookNode) -> str:
    """One output: text escaped, a PNG inline (only if it is valid base64), else nothing."""
    kind = output.get("output_type")
    if kind == "stream":
        text = str(output.get("text", ""))[:MAX_OUTPUT_CHARS]
        return f'<pre class="output">{html.escape(text)}</pre>'
    if kind == "error":
        trace = ANSI.sub("", "\n".join(output.get("traceback", [])))[:MAX_OUTPUT_CHARS]
        return f'<pre class="output error">{html.escape(trace)}</pre>'
    data = output.get("data", {})
    png = data.get("image/png")
    if isinstance(png, str):
        try:
            base64.b64decode(png, validate=True)
        except (binascii.Error, ValueError):
            return ""
        return f'<img alt="figure" src="data:image/png;base64,{png.strip()}">'
    text = data.get("text/plain")
    if text:
        text = "".join(text) if isinstance(text, list) else str(text)
        return f'<pre class="output">{html.escape(text[:MAX_OUTPUT_CHARS])}</pre>'
    return ""


def boxes_by_cell(
    checks: Sequence[dict[str, Any]], template: NotebookNode, submitted_ids: set[str]
) -> dict[str, list[str]]:
    """``{submission cell id: [boxes]}``: each check at its template cell, or the nearest one
    above it that the submission has (a hidden test sits below its task's checked cell).

    >>> tpl = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(id="c1"),
    ...                                       nbformat.v4.new_code_cell(id="h1")])
    >>> list(boxes_by_cell([{"index": 1, "kind": "hidden", "name": "n", "passed": True}],
    ...                    tpl, {"c1"}))
    ['c1']
    """
    ids = [cell.get("id") for cell in template.cells]
    boxes: dict[str, list[str]] = {}
    for check in checks:
        index = int(check.get("index", 0))
        anchor = next(
            (ids[i] for i in range(min(index, len(ids) - 1), -1, -1) if ids[i] in submitted_ids),
            "",
        )
        boxes.setdefault(anchor, []).append(check_box(check))
    return boxes


def feedback_html(store: Store, submission: str, template: NotebookNode) -> str:
    """The feedback page of one submission."""
    row = store.submission(submission)
    nb = nbformat.read(Path(submission), as_version=4)
    total = next(t for t in store.totals() if t.submission == submission)
    questions = {q["id"] for q in store.questions() if q["template"] == row["template"]}
    checks = json.loads(row["checks"])
    boxes = boxes_by_cell(checks, template, {cell.get("id") for cell in nb.cells})
    # A hidden test's cell never shows, even where a submission holds one (a release
    # that shipped it, a copy passed around): by the template's ids and by its tag.
    hidden = {c.get("id") for c in template.cells if HIDDEN_TAG in c.metadata.get("tags", [])}
    title = f"{row['student']}: {row['template']}"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="total">Total: <strong>{total.total:g}</strong> of {total.max_points:g} '
        f"(autograded {total.auto_points:g}, written answers {total.manual_points:g})</p>",
        *boxes.pop("", []),
    ]
    for cell in nb.cells:
        if cell.get("id") in hidden or HIDDEN_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "markdown":
            parts.append(markdown_html(cell.source))
        elif cell.cell_type == "code":
            parts.append(f"<pre>{html.escape(cell.source)}</pre>")
            parts += [output_html(output) for output in cell.get("outputs", [])]
        parts += boxes.get(cell.get("id"), [])
        if cell.get("id") in questions:
            parts.append(answer_box(store, submission, cell.get("id")))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write_feedback(store: Store, template_dir: Path, out: Path) -> list[Path]:
    """Write ``OUT/<student>/<notebook>.html`` for every submission; returns the paths."""
    templates = {
        path.name: nbformat.read(path, as_version=4)
        for path in ([template_dir] if template_dir.is_file() else template_dir.glob("*.ipynb"))
    }
    written = []
    for total in store.totals():
        path = out / safe_name(total.student) / f"{Path(total.template).stem}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        template = templates.get(total.template, nbformat.v4.new_notebook())
        path.write_text(feedback_html(store, total.submission, template), encoding="utf-8")
        written.append(path)
    return written


def safe_name(name: str) -> str:
    """A folder name from a student's name: no path separators, no leading dot.

    >>> safe_name("../alice"), safe_name("bob smith")
    ('alice', 'bob smith')
    """
    return re.sub(r"[/\\\x00]", "_", name).lstrip("._") or "student"
