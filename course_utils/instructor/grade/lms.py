"""Grades out to an LMS: Canvas's and Moodle's gradebook-import CSV files.

A roster CSV maps each submission folder (the student key of the grading database) to
the LMS's identifiers. Its columns: ``folder`` (required), and any of ``name``, ``id``
(Canvas user id), ``sis_user_id``, ``sis_login_id``, ``section``, ``email``, ``idnumber``,
``username``. A student's grade is the sum of the totals of their submissions.

- **Canvas** (Grades > Import): ``Student, ID, SIS User ID, SIS Login ID, Section`` then
  one column per assignment, headed ``Assignment name (id)`` for an existing assignment,
  or by a new name alone (Canvas then creates the assignment). Canvas matches a row by its
  ID, SIS User ID or SIS Login ID, so a roster row needs one of them.
- **Moodle** (Grade administration > Import > CSV file): an identifier column (``email``,
  ``idnumber`` or ``username``, chosen under "Identify user by") then the grade item's
  column, mapped to the grade item on import.

Nobody is dropped: roster students without a submission, and submissions whose folder the
roster lacks, come back in :class:`LmsExport` (and ``course grade lms`` prints them).
A roster student without a submission gets an empty grade cell (an LMS leaves it as it
is), never an invented zero.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from course_utils.instructor.grade.store import Total
from course_utils.instructor.verify.report import csv_cell

CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_ROSTER = ("name", "id", "sis_user_id", "sis_login_id", "section")
CANVAS_MATCHED_BY = ("id", "sis_user_id", "sis_login_id")
MOODLE_IDENTIFIERS = ("email", "idnumber", "username")


@dataclass
class LmsExport:
    """The CSV text of an LMS import, and everyone it could not match."""

    text: str
    students_without_submission: list[str] = field(default_factory=list)
    submissions_without_student: list[str] = field(default_factory=list)


def read_roster(text: str) -> list[dict[str, str]]:
    """The rows of a roster CSV; it must have a ``folder`` column, unique per row.

    >>> read_roster("folder,email\\nalice,a@uni.edu\\n")
    [{'folder': 'alice', 'email': 'a@uni.edu'}]
    >>> read_roster("email\\na@uni.edu\\n")
    Traceback (most recent call last):
    ...
    ValueError: the roster needs a 'folder' column (the submission folder of each student)
    """
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    if not rows or "folder" not in rows[0]:
        raise ValueError(
            "the roster needs a 'folder' column (the submission folder of each student)"
        )
    folders = [row["folder"] for row in rows]
    repeated = sorted({f for f in folders if folders.count(f) > 1})
    if repeated:
        raise ValueError(f"the roster lists these folders more than once: {', '.join(repeated)}")
    return rows


def grades_by_student(totals: Sequence[Total]) -> dict[str, float]:
    """Each student's grade: the sum of their submissions' totals.

    >>> grades_by_student([Total("s/a/1.ipynb", "a", "S1", "1.ipynb", 2, 1.5, 5),
    ...                    Total("s/a/2.ipynb", "a", "S1", "2.ipynb", 1, 0, 5)])
    {'a': 4.5}
    """
    grades: dict[str, float] = {}
    for total in totals:
        grades[total.student] = grades.get(total.student, 0.0) + total.total
    return grades


def export_lms(
    totals: Sequence[Total],
    roster: Sequence[dict[str, str]],
    lms: str,
    assignment: str,
    moodle_id: str = "email",
) -> LmsExport:
    """The import CSV for ``lms`` ("canvas" or "moodle"), and who was left unmatched.

    >>> roster = [{"folder": "alice", "name": "Alice A", "id": "101", "section": "A"},
    ...           {"folder": "carol", "name": "Carol C", "id": "103"}]
    >>> totals = [Total("s/alice/t.ipynb", "alice", "S1", "t.ipynb", 3, 2, 8),
    ...           Total("s/bob/t.ipynb", "bob", "S2", "t.ipynb", 1, 0, 8)]
    >>> result = export_lms(totals, roster, "canvas", "Assignment 1 (42)")
    >>> print(result.text)
    Student,ID,SIS User ID,SIS Login ID,Section,Assignment 1 (42)
    Alice A,101,,,A,5
    Carol C,103,,,,
    <BLANKLINE>
    >>> result.students_without_submission, result.submissions_without_student
    (['carol'], ['s/bob/t.ipynb'])
    """
    grades = grades_by_student(totals)
    folders = {row["folder"] for row in roster}
    if lms == "canvas":
        header = [*CANVAS_IDENTITY, assignment]
        keys: tuple[str, ...] = CANVAS_ROSTER
        if not all(
            row.get("id") or row.get("sis_user_id") or row.get("sis_login_id") for row in roster
        ):
            raise ValueError(
                "Canvas matches rows by ID, SIS User ID or SIS Login ID: give every roster row "
                "an id, sis_user_id or sis_login_id"
            )
    elif lms == "moodle":
        if moodle_id not in MOODLE_IDENTIFIERS:
            raise ValueError(f"Moodle identifies users by one of {', '.join(MOODLE_IDENTIFIERS)}")
        if not all(row.get(moodle_id) for row in roster):
            raise ValueError(f"every roster row needs a {moodle_id!r} for Moodle")
        header, keys = [moodle_id, assignment], (moodle_id,)
    else:
        raise ValueError(f"unknown LMS {lms!r}: canvas or moodle")
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    for row in roster:
        grade = grades.get(row["folder"])
        writer.writerow(
            [csv_cell(row.get(key, "") or "") for key in keys]
            + ["" if grade is None else f"{grade:g}"]
        )
    return LmsExport(
        handle.getvalue(),
        students_without_submission=[
            row["folder"] for row in roster if row["folder"] not in grades
        ],
        submissions_without_student=[t.submission for t in totals if t.student not in folders],
    )
