"""The manual scores as a CSV, out and back in, for graders who work in a spreadsheet.

One row per submission and question: ``submission, student, question, items, points,
comment``. ``items`` are the rubric items given (their keys, separated by spaces);
``points`` is what the answer earns. On import the items are set as listed, and a
``points`` that differs from the items' sum is kept as an adjustment, so a grader may
also type points with no items at all. Exporting again gives the same file.

An import checks every row before it changes anything: an unknown submission, question
or item key stops it with every such row named.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from course_utils.instructor.grade.store import Store
from course_utils.instructor.verify.report import FORMULA_START, csv_cell

COLUMNS = ("submission", "student", "question", "items", "points", "comment")


def export_scores(store: Store) -> str:
    """The manual scores of every answer as CSV text."""
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for question in store.questions():
        keys = {item["id"]: item["key"] for item in store.items(question["id"])}
        # By submission, not by pseudonym: pseudonyms differ between databases.
        for answer in sorted(store.answers(question["id"]), key=lambda a: a["name"]):
            writer.writerow(
                {
                    "submission": answer["name"],
                    "student": csv_cell(answer["student"]),
                    "question": question["id"],
                    "items": " ".join(keys[item] for item in answer["marks"]),
                    "points": f"{store.manual_points(answer['name'], question['id']):g}",
                    "comment": csv_cell(answer["comment"]),
                }
            )
    return handle.getvalue()


def import_scores(store: Store, rows: Iterable[dict[str, str]], grader: str = "") -> int:
    """Set items, adjustments and comments from CSV rows; returns the rows applied.

    Raises :class:`ValueError` naming every row it cannot apply, before applying any.
    """
    submissions = {r["name"] for r in store.db.execute("SELECT name FROM submissions")}
    items = {
        (r["question"], r["key"]): (r["id"], r["points"])
        for r in store.db.execute("SELECT * FROM items")
    }
    questions = {r["id"] for r in store.db.execute("SELECT id FROM questions")}
    plan, problems = [], []
    for line, row in enumerate(rows, start=2):
        submission, question = row.get("submission", ""), row.get("question", "")
        keys = (row.get("items") or "").split()
        unknown = [key for key in keys if (question, key) not in items]
        if submission not in submissions:
            problems.append(f"line {line}: no submission {submission!r}")
        elif question not in questions:
            problems.append(f"line {line}: no question {question!r}")
        elif unknown:
            problems.append(f"line {line}: question {question} has no item {', '.join(unknown)}")
        else:
            try:
                points = float(row["points"]) if (row.get("points") or "").strip() else None
            except ValueError:
                problems.append(f"line {line}: points {row['points']!r} is not a number")
                continue
            given = [items[question, key] for key in keys]
            adjust = 0.0 if points is None else round(points - sum(p for _, p in given), 9)
            comment = uncell(row.get("comment") or "")
            plan.append((submission, question, [i for i, _ in given], adjust, comment))
    if problems:
        raise ValueError("nothing imported:\n" + "\n".join(problems))
    for submission, question, given_ids, adjust, comment in plan:
        for item in store.items(question):
            store.set_mark(submission, item["id"], item["id"] in given_ids, grader)
        store.set_note(submission, question, comment, adjust, grader)
    return len(plan)


def uncell(value: str) -> str:
    """Undo :func:`~course_utils.instructor.verify.report.csv_cell`'s formula guard.

    >>> uncell(csv_cell("- too short")), uncell("'quoted'")
    ('- too short', "'quoted'")
    """
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def read_scores(text: str) -> list[dict[str, str]]:
    """The rows of a scores CSV (a spreadsheet's own BOM removed).

    >>> read_scores("\\ufeffsubmission,question\\na.ipynb,q1\\n")
    [{'submission': 'a.ipynb', 'question': 'q1'}]
    """
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
