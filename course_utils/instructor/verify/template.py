"""The instructor's notebook as the source of truth: matching, alignment, the notebook to run.

A submission is matched to a template notebook (the instructor's solution notebook, or a
release) by file name, else by content. Its cells are then *aligned* with the template's:
by cell id where the ids are the template's, else by content, the sources of the cells
the template owns being the anchors. The template owns its checked, result, hidden-test
and fixed cells; everything else is the student's.

The notebook to run is the submission's own sequence of cells, so that every line a
student wrote runs where they wrote it (added imports, helpers, scratch, split or merged
solution cells), with the template's release text in every cell the template owns:

- a checked or result cell must be the template's (same tags, same text outside its
  solution regions, same order); otherwise the submission is ``TAMPERED``;
- a fixed code cell runs the template's text; where the student only added lines to it
  (an import), their version runs and the note says what they added; a fixed cell the
  student deleted or moved runs where the template has it;
- hidden-test cells are never in it.

Each cell of the notebook to run carries ``metadata.course_role`` (``student``,
``checked``, ``result`` or ``fixed``) and, where it is aligned with a template cell,
``metadata.course_template_id``.
"""

from __future__ import annotations

import ast
import copy
import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_utils import pysource
from course_utils.instructor.notebook_io import CHECK_TAG, RESULT_TAG, template_notebooks
from course_utils.instructor.release import SOLUTION_BEGIN, TEXT_STUB, solution_clearer
from course_utils.instructor.verify.submission import InvalidSubmission

CHECKED, RESULT, SOLUTION, FIXED = "checked", "result", "solution", "fixed"
HIDDEN, ANSWER, STUDENT = "hidden", "answer", "student"
HIDDEN_TAG = "hidden-test"
GRADED_TAGS = (CHECK_TAG, RESULT_TAG, HIDDEN_TAG)
ROLE_KEY, TEMPLATE_ID_KEY = "course_role", "course_template_id"
# A submission holding less of a template's own code cells than this is another notebook.
MIN_SHARED_CELLS = 0.5
# How alike (difflib ratio) an unanchored cell must be to a template cell to be taken for
# it: a solution cell the student filled in, a checked cell they edited.
MIN_LIKENESS = 0.3
# Lines of a fixed cell's additions quoted in a note.
MAX_NOTED_LINES = 3
# Names a result cell prints, as `print(f"name: ...")` in its source: the gradebook's columns.
RESULT_NAME_IN_SOURCE = re.compile(r"""\bprint\(\s*[rRfF]{0,2}["']([A-Za-z_][\w.-]*):""")
# The release's code stub (at any indentation): where a student's code goes.
CODE_STUB = re.compile(r"^[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError[ \t]*$", re.M)
# The release's stub of a written answer, on a line of its own (a cell may mention it).
TEXT_STUB_LINE = re.compile(rf"^{TEXT_STUB}$", re.M)
# A line in the pattern of a cell's text that stands for the student's code.
STUB_SLOT = "\0stub\0"


def cell_role(cell: NotebookNode) -> str:
    """What a template cell is: ``checked``, ``result``, ``hidden``, ``solution``,
    ``answer`` (a markdown cell for a written answer) or ``fixed``.

    Solutions are recognised in a solution notebook (``### BEGIN SOLUTION``) and in a
    release (its stubs).

    >>> cell_role(nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["nbval-check-output"]}))
    'checked'
    >>> cell_role(nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nx = 1\\n### END SOLUTION"))
    'solution'
    >>> cell_role(nbformat.v4.new_code_cell("# YOUR CODE HERE\\nraise NotImplementedError"))
    'solution'
    >>> cell_role(nbformat.v4.new_markdown_cell("**Answer.**\\nYOUR ANSWER HERE"))
    'answer'
    >>> cell_role(nbformat.v4.new_markdown_cell("# Title"))
    'fixed'
    """
    tags = cell.get("metadata", {}).get("tags", [])
    if cell.cell_type == "markdown":
        return (
            ANSWER if SOLUTION_BEGIN in cell.source or TEXT_STUB_LINE.search(cell.source) else FIXED
        )
    if cell.cell_type != "code":
        return FIXED
    if HIDDEN_TAG in tags:
        return HIDDEN
    if CHECK_TAG in tags:
        return CHECKED
    if RESULT_TAG in tags:
        return RESULT
    if (
        SOLUTION_BEGIN in cell.source
        or CODE_STUB.search(cell.source)
        or cell.metadata.get("nbgrader", {}).get("solution")
    ):
        return SOLUTION
    return FIXED


def split_from(cell: NotebookNode) -> str | None:
    """The id of the cell a checked cell was split out of (``metadata.course.split_from``).

    Submissions made before the split hold the checked cell's code at the end of that
    cell; aligned with the template, such a cell stands for the solution cell, and the
    split-out checked cell runs after it, its stored output compared with that cell's.

    >>> split_from(nbformat.v4.new_code_cell(metadata={"course": {"split_from": "abc"}}))
    'abc'
    """
    found = cell.get("metadata", {}).get("course", {}).get("split_from")
    return str(found) if found else None


def cell_points(cell: NotebookNode) -> float:
    """Points of a checked, result or hidden-test cell: ``metadata.course.points``, 1 when
    unset (every cell of the course's notebooks sets it).

    >>> cell_points(nbformat.v4.new_code_cell(metadata={"course": {"points": 2.5}}))
    2.5
    >>> cell_points(nbformat.v4.new_code_cell())
    1.0
    """
    points = cell.get("metadata", {}).get("course", {}).get("points", 1)
    return float(points) if isinstance(points, (int, float)) else 1.0


def points_by_kind(nb: NotebookNode) -> dict[str, float]:
    """A notebook's points: its visible checks, hidden tests and result cells.

    >>> points_by_kind(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     metadata={"tags": ["nbval-check-output"], "course": {"points": 2}}),
    ...     nbformat.v4.new_code_cell(metadata={"tags": ["hidden-test"]})]))
    {'visible': 2.0, 'hidden': 1.0, 'result': 0.0}
    """
    kinds = {CHECKED: "visible", HIDDEN: "hidden", RESULT: "result"}
    totals = dict.fromkeys(kinds.values(), 0.0)
    for cell in nb.cells:
        kind = kinds.get(cell_role(cell))
        if kind is not None:
            totals[kind] += cell_points(cell)
    return totals


def result_names_in(cell: NotebookNode) -> list[str]:
    """The result names a template's result cell prints.

    >>> result_names_in(nbformat.v4.new_code_cell('print(f"test_loss: {loss:.4f}")'))
    ['test_loss']
    """
    return list(dict.fromkeys(RESULT_NAME_IN_SOURCE.findall(cell.source)))


def normalized(source: str) -> str:
    """A cell's source without trailing spaces or blank lines at either end.

    Editors and notebook tools differ in exactly these, and they change no code.

    >>> normalized("\\nx = 1   \\ny = 2\\n\\n")
    'x = 1\\ny = 2'
    """
    return "\n".join(line.rstrip() for line in source.splitlines()).strip("\n")


def release_texts(nb: NotebookNode) -> list[str]:
    """The text of each cell as the release hands it out: solutions as stubs.

    >>> print(release_texts(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "def f():\\n    ### BEGIN SOLUTION\\n    return 42\\n    ### END SOLUTION")]))[0])
    def f():
        # YOUR CODE HERE
        raise NotImplementedError
    """
    clearer = solution_clearer()
    texts = []
    for index, cell in enumerate(nb.cells):
        released = copy.deepcopy(cell)
        clearer.preprocess_cell(released, {"language": "python"}, index)
        texts.append(str(released.source))
    return texts


def text_pattern(release: str) -> re.Pattern[str]:
    """A pattern of the texts a student may hand in for a template cell: its release
    text, with any code in place of each stub (compared after :func:`normalized`).

    >>> pattern = text_pattern("def f():\\n    # YOUR CODE HERE\\n    raise NotImplementedError")
    >>> holds_template_text(pattern, "def f():\\n    x = 1\\n    return x")
    True
    >>> holds_template_text(pattern, "def g():\\n    return 1")
    False
    """
    lines = CODE_STUB.sub(STUB_SLOT, normalized(release)).splitlines()
    parts = [r"(?:[^\n]*\n)*?" if line == STUB_SLOT else re.escape(line) + r"\n" for line in lines]
    return re.compile("".join(parts))


def holds_template_text(pattern: re.Pattern[str], source: str) -> bool:
    """Whether ``source`` is a template cell's text (any code in its stubs)."""
    return bool(pattern.fullmatch(normalized(source) + "\n"))


def added_lines(template_text: str, source: str) -> list[str] | None:
    """The lines ``source`` adds to ``template_text``, or ``None`` if it changes or drops any.

    >>> added_lines("import numpy as np\\nrun = start()", "import numpy as np\\nfrom math "
    ...             "import floor\\nrun = start()")
    ['from math import floor']
    >>> added_lines("run = start()", "run = start(seed=1)") is None
    True
    """
    mine = normalized(source).splitlines()
    wanted = iter(normalized(template_text).splitlines())
    expected = next(wanted, None)
    added = []
    for line in mine:
        if line == expected:
            expected = next(wanted, None)
        else:
            added.append(line)
    return added if expected is None else None


def likeness(a: str, b: str) -> float:
    """How alike two sources are, 0 to 1 (difflib's ratio over lines).

    >>> likeness("a\\nb\\nc", "a\\nb\\nd")
    0.6666666666666666
    """
    return difflib.SequenceMatcher(None, a.splitlines(), b.splitlines()).ratio()


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
    # Files its run reads, placed read-only in the sandbox's working folder: path -> text
    # (the course's results of other notebooks, see .prerequisites).
    inputs: dict[str, str] = field(default_factory=dict)

    def expected_outputs(self, index: int) -> list[NotebookNode]:
        """The expected outputs of template cell ``index``: re-executed, else stored."""
        if self.reference is None:
            return self.nb.cells[index].get("outputs", [])
        ran = template_cells(self.reference).get(self.nb.cells[index].get("id"))
        return ran.get("outputs", []) if ran is not None else []

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

    @functools.cached_property
    def releases(self) -> list[str]:
        """The release text of every cell, in order."""
        return release_texts(self.nb)

    @functools.cached_property
    def patterns(self) -> list[re.Pattern[str]]:
        """The :func:`text_pattern` of every cell, in order."""
        return [text_pattern(text) for text in self.releases]

    @property
    def owned_code(self) -> list[int]:
        """Indices of the code cells the template owns and runs: checked, result, fixed."""
        return [
            i
            for i, c in enumerate(self.nb.cells)
            if c.cell_type == "code" and cell_role(c) in (CHECKED, RESULT, FIXED)
        ]


def template_cells(run: NotebookNode) -> dict[str, NotebookNode]:
    """The cells of a notebook to run (or its execution) by their template cell's id.

    >>> cell = nbformat.v4.new_code_cell("x", metadata={"course_template_id": "abc"})
    >>> list(template_cells(nbformat.v4.new_notebook(cells=[cell])))
    ['abc']
    """
    return {
        cell.metadata[TEMPLATE_ID_KEY]: cell
        for cell in run.cells
        if TEMPLATE_ID_KEY in cell.get("metadata", {})
    }


def load_templates(source: Path) -> list[Template]:
    """Read the template notebooks: a folder of them, or one notebook.

    >>> load_templates(Path("no-such-folder"))
    Traceback (most recent call last):
    ...
    ValueError: no template notebooks in no-such-folder: pass --template NOTEBOOK_DIR
    """
    return [
        Template(path, nbformat.read(path, as_version=4)) for path in template_notebooks(source)
    ]


def shared_cells(template: Template, nb: NotebookNode) -> float:
    """The share of the template's own code cells found in ``nb``, by id or by text.

    >>> cell = nbformat.v4.new_code_cell("import math")
    >>> template = Template(Path("t.ipynb"), nbformat.v4.new_notebook(cells=[cell]))
    >>> shared_cells(template, nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "import math\\n")]))
    1.0
    """
    owned = template.owned_code
    ids = {cell.get("id") for cell in nb.cells if cell.get("id")}
    texts = [normalized(cell.source) for cell in nb.cells if cell.cell_type == "code"]
    found = sum(
        template.nb.cells[i].get("id") in ids
        or any(holds_template_text(template.patterns[i], text) for text in texts)
        for i in owned
    )
    return found / max(1, len(owned))


def match_template(name: str, nb: NotebookNode, templates: Sequence[Template]) -> Template:
    """The ONE template a submission answers: same file name, else the most shared cells.

    Cells count as shared by id or by text, so a renamed file ("Copy of ...", "a1 (2)")
    or one without cell ids is matched by what it holds. Raises
    :class:`InvalidSubmission` for a notebook that shares too little with every template
    (another course's notebook, or one written from scratch).
    """
    by_name = [t for t in templates if t.path.name == name]
    if by_name and shared_cells(by_name[0], nb) >= MIN_SHARED_CELLS:
        return by_name[0]
    if not templates:
        raise InvalidSubmission("not one of the course's notebooks: there are no templates")
    shares = [(shared_cells(t, nb), t) for t in templates]
    share, best = max(shares, key=lambda pair: pair[0])
    if share < MIN_SHARED_CELLS:
        raise InvalidSubmission(
            f"not one of the course's notebooks: it holds {share:.0%} of the cells "
            f"of {best.path.name}, the closest"
        )
    return best


def first_line(source: str, width: int = 60) -> str:
    """Return the first non-blank line of a cell's source, shortened to ``width``.

    >>> first_line("\\n# shapes\\nprint(x.shape)")
    '# shapes'
    """
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def longest_increasing(values: Sequence[int]) -> set[int]:
    """Positions of a longest strictly increasing subsequence of ``values``; of several,
    the one that keeps the earliest positions (of two swapped cells, the second moved).

    >>> sorted(longest_increasing([1, 5, 2, 3, 0, 4])), sorted(longest_increasing([1, 4, 3]))
    ([0, 2, 3, 5], [0, 1])
    """
    # Patience sorting from the end, for a longest decreasing run read backwards: its
    # ties keep the latest-starting tails, which are the earliest positions forwards.
    backwards = [-value for value in reversed(values)]
    tails: list[int] = []  # position of the smallest tail of each length
    before: list[int | None] = []
    for position, value in enumerate(backwards):
        low, high = 0, len(tails)
        while low < high:
            middle = (low + high) // 2
            low, high = (middle + 1, high) if backwards[tails[middle]] < value else (low, middle)
        before.append(tails[low - 1] if low else None)
        tails[low : low + 1] = [position]
    kept, at = set(), tails[-1] if tails else None
    while at is not None:
        kept.add(len(values) - 1 - at)
        at = before[at]
    return kept


@dataclass
class Alignment:
    """A submission's cells set against its template's, and what follows from that.

    ``matched`` maps a submission cell's index to the template cell's it stands for;
    ``problems`` say how the submission changed the template's checked and result cells
    (it is ``TAMPERED`` if there are any); ``notes`` say what else differs from the
    template (what a student added to a course cell, a course cell restored); ``run`` is
    the notebook to run.
    """

    template: Template
    nb: NotebookNode
    matched: dict[int, int] = field(default_factory=dict)
    anchors: set[int] = field(default_factory=set)  # submission cells that fix the order
    moved: dict[int, int] = field(default_factory=dict)  # fixed cells out of order: left out
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run: NotebookNode = field(default_factory=nbformat.v4.new_notebook)

    def template_role(self, index: int) -> str | None:
        """The role of the template cell that submission cell ``index`` stands for."""
        matched = self.matched.get(index)
        return None if matched is None else cell_role(self.template.nb.cells[matched])

    @property
    def by_template_id(self) -> dict[str, NotebookNode]:
        """The submission's cells by the id of the template cell each stands for
        (its stored outputs, its written answers)."""
        cells = self.template.nb.cells
        mine = {cells[t].get("id"): self.nb.cells[index] for index, t in self.matched.items()}
        for t, cell in self.template.graded:
            held = split_source(self, t)
            if held is not None:  # handed in before the split: that cell's outputs
                mine[cell.get("id")] = self.nb.cells[held]
        return mine

    @property
    def student_code(self) -> list[str]:
        """The sources of the code cells the student owns (for similarity), in order."""
        return [
            cell.source
            for cell in self.run.cells
            if cell.cell_type == "code" and cell.metadata[ROLE_KEY] == STUDENT
        ]


def match_by_id(alignment: Alignment) -> None:
    """Match submission cells to the template cells with the same id and type."""
    template = alignment.template.nb.cells
    by_id = {cell.get("id"): i for i, cell in enumerate(template) if cell_role(cell) != HIDDEN}
    taken = set()
    for index, cell in enumerate(alignment.nb.cells):
        found = by_id.get(cell.get("id"))
        if found is not None and found not in taken and template[found].cell_type == cell.cell_type:
            alignment.matched[index] = found
            taken.add(found)


def match_by_text(alignment: Alignment) -> None:
    """Match the template's unmatched own cells to unmatched cells holding their text."""
    template = alignment.template
    taken = set(alignment.matched.values())
    free = [i for i in range(len(alignment.nb.cells)) if i not in alignment.matched]
    for t, cell in enumerate(template.nb.cells):
        if t in taken or cell_role(cell) in (SOLUTION, ANSWER, HIDDEN):
            continue
        for index in free:
            mine = alignment.nb.cells[index]
            if mine.cell_type == cell.cell_type and holds_template_text(
                template.patterns[t], mine.source
            ):
                alignment.matched[index] = t
                free.remove(index)
                break


def choose_anchors(alignment: Alignment) -> None:
    """Keep as anchors the largest set of matched template-owned cells in template order.

    A matched fixed cell out of that order is unmatched: it runs where the template has it.
    """
    owned = sorted(
        index
        for index, role in ((i, alignment.template_role(i)) for i in alignment.matched)
        if role in (CHECKED, RESULT, FIXED)
    )
    kept = longest_increasing([alignment.matched[index] for index in owned])
    alignment.anchors = {owned[position] for position in kept}
    for index in owned:
        if index not in alignment.anchors and alignment.template_role(index) == FIXED:
            t = alignment.matched.pop(index)
            alignment.moved[index] = t
            alignment.notes.append(
                f"cell {t} ({first_line(alignment.template.nb.cells[t].source)}) was moved: "
                "it ran where the course has it"
            )


def gap(alignment: Alignment, t: int) -> range:
    """The submission cells between the anchors around template cell ``t``."""
    low, high = -1, len(alignment.nb.cells)
    for index in alignment.anchors:
        if alignment.matched[index] < t:
            low = max(low, index)
        else:
            high = min(high, index)
    return range(low + 1, high)


def match_in_gaps(alignment: Alignment) -> None:
    """Match the rest of the template's cells with the free cells between their anchors.

    A fixed code cell is matched by a cell that only adds lines to it; a solution,
    written answer or edited checked cell by the most alike cell.
    """
    template = alignment.template
    taken = set(alignment.matched.values())
    for t, cell in enumerate(template.nb.cells):
        role = cell_role(cell)
        if t in taken or role == HIDDEN or (role == FIXED and cell.cell_type != "code"):
            continue
        free = [
            i
            for i in gap(alignment, t)
            if i not in alignment.matched and alignment.nb.cells[i].cell_type == cell.cell_type
        ]
        if role == FIXED:
            found = next(
                (
                    i
                    for i in free
                    if added_lines(template.releases[t], alignment.nb.cells[i].source) is not None
                ),
                None,
            )
        else:
            scored = [
                (likeness(template.releases[t], alignment.nb.cells[i].source), i) for i in free
            ]
            best = max(scored, default=(0.0, None), key=lambda pair: pair[0])
            found = best[1] if best[0] >= MIN_LIKENESS else None
        if found is not None:
            alignment.matched[found] = t


def find_problems(alignment: Alignment) -> None:
    """Say how the submission changed the template's checked and result cells."""
    template, nb = alignment.template, alignment.nb
    mine_of = {t: index for index, t in alignment.matched.items()}
    for t, cell in template.graded:
        label = f"cell {t} ({first_line(cell.source)})"
        mine = nb.cells[mine_of[t]] if t in mine_of else None
        tags = sorted(mine.get("metadata", {}).get("tags", [])) if mine is not None else []
        if mine is None and split_source(alignment, t) is not None:
            continue  # handed in before the split: the course's cell runs after it
        if mine is None:
            alignment.problems.append(f"{label} is missing")
        elif tags != sorted(cell.metadata.get("tags", [])):
            alignment.problems.append(
                f"{label} is re-tagged: {cell_role(cell)} in the template, {tags} here"
            )
        elif not mine.source.strip():
            alignment.problems.append(f"{label} is blanked")
        elif not holds_template_text(template.patterns[t], mine.source):
            alignment.problems.append(f"{label} is edited")
    if not alignment.problems:
        graded = [t for t, _ in template.graded if t in mine_of]
        order = [alignment.matched[i] for i in sorted(mine_of[t] for t in graded)]
        out_of_place = [t for t in graded if mine_of[t] not in alignment.anchors] or [
            b for a, b in zip(order, graded, strict=True) if a != b
        ]
        if out_of_place:
            t = out_of_place[0]
            alignment.problems.append(
                f"cell {t} ({first_line(template.nb.cells[t].source)}) is moved"
            )
    held = {split_source(alignment, t) for t, _ in template.graded}  # tagged before a split
    for index, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if index in held:
            continue
        if role in (CHECKED, RESULT, HIDDEN) and alignment.template_role(index) != role:
            copies = [
                t
                for t, other in enumerate(template.nb.cells)
                if cell_role(other) == role
                and holds_template_text(template.patterns[t], cell.source)
            ]
            if not copies:  # a second copy of a checked cell, run again, claims nothing
                alignment.problems.append(
                    f"cell {index} ({first_line(cell.source)}) is tagged {role}, "
                    "which the template's cell is not"
                )


def split_source(alignment: Alignment, t: int) -> int | None:
    """The submission cell that held template cell ``t`` before ``t`` was split out of
    another (see :func:`split_from`): the one aligned with that other cell; ``None`` if
    there is none, or if ``t`` has a cell of its own."""
    old_id = split_from(alignment.template.nb.cells[t])
    if old_id is None or t in alignment.matched.values():
        return None
    ids = [cell.get("id") for cell in alignment.template.nb.cells]
    return next(
        (index for index, u in alignment.matched.items() if ids[u] == old_id),
        None,
    )


def run_cell(alignment: Alignment, index: int) -> NotebookNode | None:
    """The cell to run for submission cell ``index``, or ``None`` to leave it out."""
    template = alignment.template
    mine = alignment.nb.cells[index]
    t = alignment.matched.get(index)
    if index in alignment.moved:
        return None
    if t is None or cell_role(template.nb.cells[t]) in (SOLUTION, ANSWER):
        tags = [tag for tag in mine.get("metadata", {}).get("tags", []) if tag not in GRADED_TAGS]
        role_metadata: dict[str, object] = {ROLE_KEY: STUDENT, "tags": tags}
        if t is not None:
            role_metadata[TEMPLATE_ID_KEY] = template.nb.cells[t].get("id")
        return new_cell(mine.cell_type, mine.source, role_metadata, mine.get("id"))
    cell = template.nb.cells[t]
    role = cell_role(cell)
    source = template.releases[t]
    if role in (CHECKED, RESULT) and holds_template_text(template.patterns[t], mine.source):
        source = mine.source  # the template's text, with the student's code in its stubs
    elif role == FIXED and cell.cell_type == "code":
        added = added_lines(source, mine.source)
        if added:
            source = mine.source
            shown = "; ".join(line.strip() for line in added[:MAX_NOTED_LINES])
            more = len(added) - MAX_NOTED_LINES
            more_text = f" and {more} more" if more > 0 else ""
            alignment.notes.append(
                f"cell {t} ({first_line(cell.source)}): the student added {shown}{more_text}"
            )
        elif normalized(mine.source) != normalized(source):
            alignment.notes.append(
                f"cell {t} ({first_line(cell.source)}): the student's changes to this "
                "course cell did not run (the course's text did)"
            )
    return template_cell(alignment, t, source)


def new_cell(
    cell_type: str, source: str, metadata: dict[str, object], cell_id: str | None
) -> NotebookNode:
    """A fresh cell of ``cell_type`` (raw cells stay raw), with ``cell_id`` if it has one."""
    maker = {
        "code": nbformat.v4.new_code_cell,
        "markdown": nbformat.v4.new_markdown_cell,
    }.get(cell_type, nbformat.v4.new_raw_cell)
    cell = maker(source, metadata=metadata)
    if cell_id:
        cell.id = cell_id
    return cell


def template_cell(alignment: Alignment, t: int, source: str) -> NotebookNode:
    """Template cell ``t`` with ``source``, its tags and points, and its role marked."""
    cell = alignment.template.nb.cells[t]
    role = cell_role(cell)
    metadata: dict[str, object] = {
        "tags": list(cell.metadata.get("tags", [])),
        ROLE_KEY: role if role in (CHECKED, RESULT) else FIXED,
        TEMPLATE_ID_KEY: cell.get("id"),
    }
    if "course" in cell.metadata:
        metadata["course"] = copy.deepcopy(cell.metadata.course)
    return new_cell(cell.cell_type, source, metadata, cell.get("id"))


def build_run(alignment: Alignment) -> None:
    """The notebook to run: the submission's cells in its order, the template's text in the
    cells the template owns, its deleted or moved code cells back where it has them."""
    template = alignment.template
    placed: list[tuple[int | None, NotebookNode]] = []
    for index in range(len(alignment.nb.cells)):
        cell = run_cell(alignment, index)
        if cell is not None:
            placed.append((alignment.matched.get(index), cell))
    present = set(alignment.matched.values())
    for t in template.owned_code:
        if t in present:
            continue
        after = max(
            (position for position, (u, _) in enumerate(placed) if u is not None and u < t),
            default=-1,
        )
        placed.insert(after + 1, (t, template_cell(alignment, t, template.releases[t])))
        if cell_role(template.nb.cells[t]) == FIXED and t not in alignment.moved.values():
            alignment.notes.append(
                f"cell {t} ({first_line(template.nb.cells[t].source)}) was deleted: "
                "the course's text ran"
            )
    ids: set[str] = set()
    for _, cell in placed:
        if cell.get("id") in ids or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cell.get("id", "")):
            cell.id = nbformat.v4.new_code_cell().id
        ids.add(cell.id)
    reimport = checks_reimport(template)
    for _, cell in placed:
        if cell.metadata[ROLE_KEY] == CHECKED:
            cell.source = f"{reimport}\n{cell.source}"
    alignment.run = nbformat.v4.new_notebook(
        cells=[cell for _, cell in placed], metadata=copy.deepcopy(template.nb.metadata)
    )


def align(template: Template, nb: NotebookNode) -> Alignment:
    """Align a submission with its template: matches, problems, notes, the notebook to run.

    >>> template = Template(Path("t.ipynb"), nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("import math"),
    ...     nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nx = 1\\n### END SOLUTION"),
    ...     nbformat.v4.new_code_cell("print(x)", metadata={"tags": ["nbval-check-output"]})]))
    >>> mine = nbformat.v4.new_notebook(cells=[  # no ids; a helper in a new cell
    ...     nbformat.v4.new_code_cell("import math"), nbformat.v4.new_code_cell("y = 2"),
    ...     nbformat.v4.new_code_cell("x = y - 1"), nbformat.v4.new_code_cell("print(x)",
    ...     metadata={"tags": ["nbval-check-output"]})])
    >>> alignment = align(template, mine)
    >>> alignment.problems, [c.metadata.course_role for c in alignment.run.cells]
    ([], ['fixed', 'student', 'student', 'checked'])
    """
    alignment = Alignment(template, nb)
    match_by_id(alignment)
    match_by_text(alignment)
    choose_anchors(alignment)
    match_in_gaps(alignment)
    find_problems(alignment)
    build_run(alignment)
    return alignment


def tampering(template: Template, nb: NotebookNode) -> list[str]:
    """Say how a submission changed the template's checked and result cells; ``[]`` if not.

    >>> cell = nbformat.v4.new_code_cell("print(1)", metadata={"tags": ["nbval-check-output"]})
    >>> template = Template(Path("t.ipynb"), nbformat.v4.new_notebook(cells=[cell]))
    >>> edited = copy.deepcopy(template.nb)
    >>> edited.cells[0].metadata.tags = []
    >>> tampering(template, edited)
    ['cell 0 (print(1)) is re-tagged: checked in the template, [] here']
    """
    return align(template, nb).problems


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
            tree = pysource.parse(cell.source)
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
    """The notebook to run for a submission (see :func:`align`), and the notes on it.

    Outputs are empty; each cell carries ``metadata.course_role`` and, where it stands
    for a template cell, ``metadata.course_template_id``.
    """
    alignment = align(template, nb)
    return alignment.run, alignment.notes
