"""The grading database: one SQLite file in the course folder, shared by every grader.

SQLite in WAL mode lets several graders (several ``course grade serve`` processes, or
several browsers on one) read while one writes; each change is one short transaction,
and a writer waits up to ``BUSY_TIMEOUT_MS`` for another's to finish.

Rubric items apply **by reference**: a mark says "this answer has item 7", never a number
of points, so editing item 7's points later changes every answer that has it. An answer's
manual points are its items' points plus an ``adjust`` (what a spreadsheet grader typed
beyond the items, see :mod:`course_utils.instructor.grade.scores_csv`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_utils.instructor.grade.questions import Question

BUSY_TIMEOUT_MS = 10_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    name TEXT PRIMARY KEY,          -- the submission's path, as in gradebook.json
    student TEXT NOT NULL,          -- the folder it was handed in as (the roster's key)
    pseudonym TEXT NOT NULL,
    template TEXT NOT NULL,         -- the solution notebook's file name
    status TEXT NOT NULL DEFAULT '',
    auto_points REAL NOT NULL DEFAULT 0,
    auto_max REAL NOT NULL DEFAULT 0,
    checks TEXT NOT NULL DEFAULT '[]'  -- verify's checks (JSON), for the feedback page
);
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY, template TEXT NOT NULL, position INTEGER NOT NULL,
    prompt TEXT NOT NULL, reference TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, question TEXT NOT NULL REFERENCES questions(id),
    key TEXT NOT NULL, points REAL NOT NULL, description TEXT NOT NULL,
    UNIQUE (question, key)
);
CREATE TABLE IF NOT EXISTS answers (
    submission TEXT NOT NULL, question TEXT NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (submission, question)
);
CREATE TABLE IF NOT EXISTS figures (
    submission TEXT NOT NULL, question TEXT NOT NULL, cell TEXT NOT NULL, png TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    submission TEXT NOT NULL, item INTEGER NOT NULL REFERENCES items(id),
    grader TEXT NOT NULL DEFAULT '', PRIMARY KEY (submission, item)
);
CREATE TABLE IF NOT EXISTS notes (
    submission TEXT NOT NULL, question TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '',
    adjust REAL NOT NULL DEFAULT 0, grader TEXT NOT NULL DEFAULT '', updated REAL NOT NULL,
    PRIMARY KEY (submission, question)
);
"""


@dataclass(frozen=True)
class Total:
    """One submission's points: autograded, manual (rubric items and adjustments), total."""

    submission: str
    student: str
    pseudonym: str
    template: str
    auto_points: float
    manual_points: float
    max_points: float

    @property
    def total(self) -> float:
        """Autograded plus manual points."""
        return self.auto_points + self.manual_points


def student_of(submission: str, flat: bool) -> str:
    """The student a submission belongs to: its folder, or its file's stem in a flat folder.

    >>> student_of("subs/alice/a1_t1.ipynb", flat=False), student_of("subs/bob.ipynb", flat=True)
    ('alice', 'bob')
    """
    path = Path(submission)
    return path.stem if flat else path.parent.name


def figure_question(
    cell: str, after: str, template_order: dict[str, int], questions: Sequence[Question]
) -> str:
    """The question a figure goes with: the template's first answer region below it.

    ``cell`` is the cell that drew it, ``after`` the template cell above that one (for a
    cell of the student's own). A figure below the last question goes with that one, so
    no figure is lost while the notebook has a question; ``""`` when it has none.

    >>> q1, q2 = Question("q1", "t.ipynb", 5, "Why?", "."), Question("q2", "t.ipynb", 9, "?", ".")
    >>> order = {"text": 3, "plot": 4, "q1": 5, "end": 10}
    >>> figure_question("plot", "text", order, [q1, q2]), figure_question("x", "q1", order, [q2])
    ('q1', 'q2')
    >>> figure_question("x", "end", order, [q1, q2]), figure_question("x", "", order, [])
    ('q2', '')
    """
    if not questions:
        return ""
    position = template_order.get(cell, template_order.get(after, -1))
    later = [q for q in questions if q.position > position]
    if later:
        return min(later, key=lambda q: q.position).id
    return max(questions, key=lambda q: q.position).id


class Store:
    """The grading database at ``path``; created on first use."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)  # its own transaction (executescript commits first)
        with self.transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('salt', ?)", (os.urandom(16).hex(),)
            )

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at its start (no upgrade deadlock between graders)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def pseudonym(self, student: str) -> str:
        """A stable pseudonym for ``student``: the same in this database every time."""
        salt = self.db.execute("SELECT value FROM meta WHERE key='salt'").fetchone()[0]
        return "Student " + hashlib.sha256(f"{salt}:{student}".encode()).hexdigest()[:8]

    # Loading -----------------------------------------------------------------------------

    def add_questions(self, questions: Sequence[Question]) -> None:
        """Add or refresh questions; a rubric item is added once and then edited here only."""
        with self.transaction() as db:
            for q in questions:
                db.execute(
                    "INSERT INTO questions VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "template=excluded.template, position=excluded.position, "
                    "prompt=excluded.prompt, reference=excluded.reference",
                    (q.id, q.template, q.position, q.prompt, q.reference),
                )
                for item in q.rubric:
                    db.execute(
                        "INSERT OR IGNORE INTO items (question, key, points, description) "
                        "VALUES (?, ?, ?, ?)",
                        (q.id, item.key, item.points, item.description),
                    )

    def add_submission(
        self,
        verdict: dict[str, Any],
        student: str,
        answers: dict[str, str],
        figures: Sequence[tuple[str, str, str]],
    ) -> None:
        """Add or refresh one submission from its gradebook verdict.

        ``figures`` are ``(question id, cell id, base64 PNG)``. Marks and comments stay.
        """
        checks = verdict.get("checks", [])
        auto = sum(float(c.get("points", 1)) for c in checks if c.get("passed"))
        auto_max = sum(float(c.get("points", 1)) for c in checks)
        name = verdict["submission"]
        with self.transaction() as db:
            db.execute(
                "INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO "
                "UPDATE SET student=excluded.student, template=excluded.template, "
                "status=excluded.status, auto_points=excluded.auto_points, "
                "auto_max=excluded.auto_max, checks=excluded.checks",
                (
                    name,
                    student,
                    self.pseudonym(student),
                    verdict.get("template", ""),
                    verdict.get("status", ""),
                    auto,
                    auto_max,
                    json.dumps(checks),
                ),
            )
            db.execute("DELETE FROM answers WHERE submission=?", (name,))
            db.executemany(
                "INSERT INTO answers VALUES (?, ?, ?)",
                [(name, question, text) for question, text in answers.items()],
            )
            db.execute("DELETE FROM figures WHERE submission=?", (name,))
            db.executemany(
                "INSERT INTO figures VALUES (?, ?, ?, ?)",
                [(name, question, cell, png) for question, cell, png in figures],
            )

    # Grading -----------------------------------------------------------------------------

    def save_item(self, question: str, key: str, points: float, description: str) -> int:
        """Add a rubric item to a question, or edit the one with that key; returns its id."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO items (question, key, points, description) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(question, key) DO UPDATE SET points=excluded.points, "
                "description=excluded.description",
                (question, key, points, description),
            )
            found = db.execute(
                "SELECT id FROM items WHERE question=? AND key=?", (question, key)
            ).fetchone()
        return int(found[0])

    def set_mark(self, submission: str, item: int, on: bool, grader: str = "") -> None:
        """Give (``on``) or take away a rubric item for one submission's answer."""
        with self.transaction() as db:
            if on:
                db.execute(
                    "INSERT OR REPLACE INTO marks VALUES (?, ?, ?)", (submission, item, grader)
                )
            else:
                db.execute("DELETE FROM marks WHERE submission=? AND item=?", (submission, item))

    def set_note(
        self,
        submission: str,
        question: str,
        comment: str | None = None,
        adjust: float | None = None,
        grader: str = "",
    ) -> None:
        """Set the comment and/or the adjustment of one answer; ``None`` keeps the old one."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO notes VALUES (?, ?, '', 0, ?, ?)",
                (submission, question, grader, time.time()),
            )
            db.execute(
                "UPDATE notes SET comment=coalesce(?, comment), adjust=coalesce(?, adjust), "
                "grader=?, updated=? WHERE submission=? AND question=?",
                (comment, adjust, grader, time.time(), submission, question),
            )

    # Reading -----------------------------------------------------------------------------

    def questions(self) -> list[sqlite3.Row]:
        """Every question with a submission to grade, in notebook order, with progress.

        ``marked`` counts the answers graded: given an item, or a comment or adjustment
        (also an empty one: "nothing applies").
        """
        return self.db.execute(
            "SELECT q.*, (SELECT count(*) FROM submissions s WHERE s.template=q.template) AS "
            "answers, (SELECT count(*) FROM (SELECT m.submission FROM marks m JOIN items i "
            "ON i.id=m.item WHERE i.question=q.id UNION SELECT n.submission FROM notes n "
            "WHERE n.question=q.id)) AS marked "
            "FROM questions q WHERE q.template IN (SELECT template FROM submissions) "
            "ORDER BY q.template, q.position"
        ).fetchall()

    def items(self, question: str) -> list[sqlite3.Row]:
        """The rubric items of a question, in the order they were added."""
        return self.db.execute(
            "SELECT * FROM items WHERE question=? ORDER BY id", (question,)
        ).fetchall()

    def answers(self, question: str) -> list[dict[str, Any]]:
        """Every submission's answer to a question, by pseudonym: text, figures, marks, note."""
        found = self.db.execute("SELECT template FROM questions WHERE id=?", (question,)).fetchone()
        if found is None:
            raise KeyError(question)
        rows = self.db.execute(
            "SELECT s.name, s.student, s.pseudonym, coalesce(a.text, '') AS text, "
            "coalesce(n.comment, '') AS comment, coalesce(n.adjust, 0) AS adjust, "
            "n.submission IS NOT NULL AS noted "
            "FROM submissions s LEFT JOIN answers a ON a.submission=s.name AND a.question=? "
            "LEFT JOIN notes n ON n.submission=s.name AND n.question=? "
            "WHERE s.template=? ORDER BY s.pseudonym",
            (question, question, found[0]),
        ).fetchall()
        out = []
        for r in rows:
            marks = [
                m[0]
                for m in self.db.execute(
                    "SELECT m.item FROM marks m JOIN items i ON i.id=m.item "
                    "WHERE m.submission=? AND i.question=? ORDER BY m.item",
                    (r["name"], question),
                )
            ]
            figures = [
                f[0]
                for f in self.db.execute(
                    "SELECT png FROM figures WHERE submission=? AND question=? ORDER BY rowid",
                    (r["name"], question),
                )
            ]
            graded = bool(marks) or bool(r["noted"])
            out.append({**dict(r), "marks": marks, "figures": figures, "graded": graded})
        return out

    def manual_points(self, submission: str, question: str | None = None) -> float:
        """Points of the items given plus adjustments: one answer's, or a submission's."""
        where, args = ("AND i.question=?", (question,)) if question else ("", ())
        items = self.db.execute(
            "SELECT coalesce(sum(i.points), 0) FROM marks m JOIN items i ON i.id=m.item "
            f"WHERE m.submission=? {where}",
            (submission, *args),
        ).fetchone()[0]
        where = "AND question=?" if question else ""
        adjust = self.db.execute(
            f"SELECT coalesce(sum(adjust), 0) FROM notes WHERE submission=? {where}",
            (submission, *args),
        ).fetchone()[0]
        return float(items) + float(adjust)

    def manual_max(self, template: str) -> float:
        """The manual points a submission of ``template`` can reach: its positive items."""
        return float(
            self.db.execute(
                "SELECT coalesce(sum(max(i.points, 0)), 0) FROM items i JOIN questions q "
                "ON q.id=i.question WHERE q.template=?",
                (template,),
            ).fetchone()[0]
        )

    def totals(self) -> list[Total]:
        """Every submission's points, by student then notebook."""
        rows = self.db.execute("SELECT * FROM submissions ORDER BY student, template").fetchall()
        return [
            Total(
                r["name"],
                r["student"],
                r["pseudonym"],
                r["template"],
                r["auto_points"],
                self.manual_points(r["name"]),
                r["auto_max"] + self.manual_max(r["template"]),
            )
            for r in rows
        ]

    def submission(self, name: str) -> sqlite3.Row:
        """One submission's row."""
        found = self.db.execute("SELECT * FROM submissions WHERE name=?", (name,)).fetchone()
        if found is None:
            raise KeyError(name)
        return found
