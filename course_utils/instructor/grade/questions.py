"""The written-answer questions of the solution notebooks, and a student's answers to them.

A question is a markdown cell of a solution notebook that holds a ``### BEGIN SOLUTION``
region: its text before the region (and the nearest markdown cell above it, where the cell
itself only says "*Answer.*" or "**Takeaway.**") is what is asked; the region is the
reference answer; ``metadata.course.rubric`` is its rubric, a list of items
``{"id": "...", "points": 1, "description": "..."}``.

A student's answer is the text of the cell with the template's id in their notebook, less
the question text the release left around ``YOUR ANSWER HERE``. ``course verify`` keeps
these texts in the gradebook (``answers``); :func:`answers_in` reads them straight from a
submission for gradebooks written before it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_utils.instructor.notebook_io import template_notebooks
from course_utils.instructor.release import SOLUTION_BEGIN, SOLUTION_END

RELEASE_PLACEHOLDER = "YOUR ANSWER HERE"
MAX_ANSWER_CHARS = 20_000  # as verify caps Verdict.answers
# An answer cell whose own text before the region is shorter ("*Answer.*", "**Takeaway.**")
# asks nothing itself: the nearest markdown cell above it says what is asked.
MIN_PROMPT_CHARS = 40


@dataclass(frozen=True)
class RubricItem:
    """One rubric item: a key unique within its question, its points and what earns them."""

    key: str
    points: float
    description: str


@dataclass(frozen=True)
class Question:
    """One written-answer region of a solution notebook."""

    id: str  # the answer cell's id, the same in the release and every submission
    template: str  # the solution notebook's file name
    position: int  # the answer cell's index in the solution notebook
    prompt: str  # markdown: what is asked
    reference: str  # markdown: the reference answer (the solution region)
    rubric: list[RubricItem] = field(default_factory=list)

    @property
    def title(self) -> str:
        """``a1_t1_convolution_arithmetic, cell 8``: where the question is."""
        return f"{Path(self.template).stem}, cell {self.position}"


def is_answer_cell(cell: NotebookNode) -> bool:
    """Whether ``cell`` is a written-answer region: a markdown cell with a solution region.

    >>> is_answer_cell(nbformat.v4.new_markdown_cell("Why?\\n### BEGIN SOLUTION\\nBecause.\\n"
    ...                                              "### END SOLUTION"))
    True
    >>> is_answer_cell(nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nx = 1\\n### END SOLUTION"))
    False
    """
    return cell.cell_type == "markdown" and SOLUTION_BEGIN in cell.source


def split_answer_cell(source: str) -> tuple[str, str, str]:
    """``(before, region, after)`` of an answer cell's source, markers removed.

    >>> split_answer_cell("**Q.** Why?\\n### BEGIN SOLUTION\\nBecause.\\n### END SOLUTION\\nEnd")
    ('**Q.** Why?\\n', 'Because.', '\\nEnd')
    """
    before, _, rest = source.partition(SOLUTION_BEGIN)
    region, _, after = rest.partition(SOLUTION_END)
    return before, region.strip("\n"), after


def rubric_of(cell: NotebookNode) -> list[RubricItem]:
    """The rubric items in a cell's ``metadata.course.rubric``; ``[]`` when it has none.

    >>> cell = nbformat.v4.new_markdown_cell(metadata={"course": {"rubric": [
    ...     {"id": "flip", "points": 1, "description": "names the kernel flip"}]}})
    >>> rubric_of(cell)
    [RubricItem(key='flip', points=1.0, description='names the kernel flip')]
    """
    items = cell.get("metadata", {}).get("course", {}).get("rubric", [])
    return [
        RubricItem(str(item["id"]), float(item["points"]), str(item.get("description", "")))
        for item in items
    ]


def questions_in(nb: NotebookNode, template: str) -> list[Question]:
    """Every written-answer question of one solution notebook, in order.

    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_markdown_cell("**1. What does dropout do?**"),
    ...     nbformat.v4.new_markdown_cell("*Answer.*\\n### BEGIN SOLUTION\\nIt zeroes units.\\n"
    ...                                   "### END SOLUTION", id="ans1")])
    >>> [(q.id, q.prompt, q.reference) for q in questions_in(nb, "t.ipynb")]
    [('ans1', '**1. What does dropout do?**\\n\\n*Answer.*', 'It zeroes units.')]
    """
    questions = []
    for index, cell in enumerate(nb.cells):
        if not is_answer_cell(cell):
            continue
        before, region, _ = split_answer_cell(cell.source)
        prompt = before.strip()
        if len(prompt) < MIN_PROMPT_CHARS:
            # "*Answer.*" or "**Takeaway.**" alone: what is asked is the text above it.
            context = next(
                (c.source.strip() for c in reversed(nb.cells[:index]) if c.cell_type == "markdown"),
                "",
            )
            prompt = f"{context}\n\n{prompt}".strip()
        questions.append(Question(cell.id, template, index, prompt, region, rubric_of(cell)))
    return questions


def load_questions(source: Path) -> list[Question]:
    """Every question of the solution notebooks in a folder (or of one notebook).

    >>> load_questions(Path("no-such-folder"))
    Traceback (most recent call last):
    ...
    ValueError: no solution notebooks in no-such-folder: pass --template NOTEBOOK_DIR
    """
    paths = template_notebooks(source, "solution")
    return [
        question
        for path in paths
        for question in questions_in(nbformat.read(path, as_version=4), path.name)
    ]


def student_answer(template_source: str, submitted: str) -> str:
    """What a student wrote in an answer cell: the release's text around it removed.

    >>> template = "**Q.** Why?\\n### BEGIN SOLUTION\\nBecause.\\n### END SOLUTION"
    >>> student_answer(template, "**Q.** Why?\\nIt is faster.")
    'It is faster.'
    >>> student_answer(template, "**Q.** Why?\\nYOUR ANSWER HERE")
    ''
    """
    before, _, after = split_answer_cell(template_source)
    text = submitted
    if before.strip() and text.lstrip().startswith(before.strip()):
        text = text.lstrip()[len(before.strip()) :]
    if after.strip() and text.rstrip().endswith(after.strip()):
        text = text.rstrip()[: -len(after.strip())]
    text = text.replace(RELEASE_PLACEHOLDER, "").strip()
    return text[:MAX_ANSWER_CHARS]


def answers_in(nb: NotebookNode, questions: Sequence[Question], template: NotebookNode) -> dict:
    """``{question id: answer text}`` of a submission, matched by cell id.

    >>> tpl = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
    ...     "Why?\\n### BEGIN SOLUTION\\nBecause.\\n### END SOLUTION", id="q1")])
    >>> mine = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
    ...     "Why?\\nI think so.", id="q1")])
    >>> answers_in(mine, questions_in(tpl, "t.ipynb"), tpl)
    {'q1': 'I think so.'}
    """
    by_id = {cell.get("id"): cell for cell in nb.cells}
    sources = {cell.get("id"): cell.source for cell in template.cells}
    answers = {}
    for question in questions:
        mine = by_id.get(question.id)
        if mine is not None and mine.cell_type == "markdown":
            answers[question.id] = student_answer(sources[question.id], mine.source)
    return answers
