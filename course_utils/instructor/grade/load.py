"""Fill the grading database from ``course verify``'s ``gradebook.json`` and the templates.

Each verdict brings its autograded points (its checks), the student's written answers
(``answers``) and the figures its sandboxed re-execution drew (``figures``). A gradebook
written before verify kept answers has none: they are then read from the submission
notebook itself, matched to the template's answer cells by id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_utils.instructor.grade.questions import Question, answers_in, load_questions
from course_utils.instructor.grade.store import Store, figure_question, student_of


@dataclass
class LoadReport:
    """What a load added, and what it could not use (never silently dropped)."""

    submissions: int = 0
    questions: int = 0
    problems: list[str] = field(default_factory=list)  # "path: why", never silent


def read_gradebook(path: Path) -> list[dict]:
    """The verdicts of a ``gradebook.json`` (or of the one next to a ``gradebook.csv``).

    >>> read_gradebook(Path("no-such-gradebook.json"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: no-such-gradebook.json: run `course verify` first (it writes gradebook.json)
    """
    path = path.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run `course verify` first (it writes gradebook.json)")
    verdicts = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(verdicts, list):
        raise ValueError(f"{path} is not a gradebook: expected a list of verdicts")
    return verdicts


def load_class(store: Store, gradebook: Path, template_dir: Path) -> LoadReport:
    """Add the templates' questions and every verdict of the gradebook to ``store``."""
    questions = load_questions(template_dir)
    store.add_questions(questions)
    paths = [template_dir] if template_dir.is_file() else sorted(template_dir.glob("*.ipynb"))
    templates = {path.name: nbformat.read(path, as_version=4) for path in paths}
    verdicts = read_gradebook(gradebook)
    flat = len({Path(v["submission"]).parent for v in verdicts}) <= 1 < len(verdicts)
    report = LoadReport(questions=len(questions))
    for verdict in verdicts:
        name, template = verdict["submission"], verdict.get("template", "")
        if template not in templates:
            report.problems.append(f"{name}: {verdict.get('status', '?')}, no template matched")
            continue
        mine = [q for q in questions if q.template == template]
        answers = verdict.get("answers")
        if not answers:  # an older gradebook, or verify matched no answer cell
            answers = answers_from_file(Path(name), mine, templates[template], report)
        order = {cell.get("id"): i for i, cell in enumerate(templates[template].cells)}
        figures = [
            (
                figure_question(f.get("cell", ""), f.get("after", ""), order, mine),
                f.get("cell", ""),
                f["png"],
            )
            for f in verdict.get("figures", [])
        ]
        store.add_submission(verdict, student_of(name, flat), answers, figures)
        report.submissions += 1
    return report


def answers_from_file(
    path: Path, questions: list[Question], template: nbformat.NotebookNode, report: LoadReport
) -> dict[str, str]:
    """A submission's answers read from its notebook; ``{}`` (and a note) when unreadable."""
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as exc:
        report.problems.append(f"{path}: answers unreadable ({exc})")
        return {}
    return answers_in(nb, questions, template)
