"""Committed notebooks are clean: one title, outputs only where nbval checks them.

`make notebooks` (``course refresh``) produces notebooks that pass these tests. Whether
the stored outputs are stale is checked by nbval itself, which re-runs the notebooks.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHECK_TAG = "nbval-check-output"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

notebook_param = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def code_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def h1_lines(markdown: str) -> list[str]:
    """The ``# Title`` lines of a markdown cell, ignoring fenced code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if re.match(r"\s*(```|~~~)", line):
            fenced = not fenced
        elif not fenced and re.match(r"#(?!#)\s+\S", line):
            found.append(line)
    return found


@pytest.fixture
def nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_notebooks_exist() -> None:
    assert NOTEBOOKS, f"no notebooks in {ROOT / 'notebooks'}: nothing to check"


@notebook_param
def test_valid_nbformat(path: Path, nb: nbformat.NotebookNode) -> None:
    nbformat.validate(nb)


@notebook_param
def test_exactly_one_h1_title(path: Path, nb: nbformat.NotebookNode) -> None:
    titles = [line for c in nb.cells if c.cell_type == "markdown" for line in h1_lines(c.source)]
    assert len(titles) == 1, f"expected one '# Title' in the markdown, found {titles}"


@notebook_param
def test_outputs_only_on_checked_cells(path: Path, nb: nbformat.NotebookNode) -> None:
    stray = [i for i, c in code_cells(nb) if c.outputs and CHECK_TAG not in tags(c)]
    assert not stray, (
        f"cells {stray} store outputs but are not tagged {CHECK_TAG}: run make notebooks"
    )
    counted = [
        i for i, c in code_cells(nb) if c.execution_count is not None and CHECK_TAG not in tags(c)
    ]
    assert not counted, f"unchecked cells {counted} keep an execution count: run make notebooks"


@notebook_param
def test_checked_cells_have_outputs(path: Path, nb: nbformat.NotebookNode) -> None:
    # A checked cell without output (or without an execution count, which makes nbval
    # treat it as unrun) would compare nothing.
    empty = [i for i, c in code_cells(nb) if CHECK_TAG in tags(c) and not c.outputs]
    assert not empty, f"checked cells {empty} store no output: run make notebooks"
    unrun = [i for i, c in code_cells(nb) if CHECK_TAG in tags(c) and c.execution_count is None]
    assert not unrun, f"checked cells {unrun} have no execution count, so nbval skips them"


def outputs(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, o) for i, c in code_cells(nb) for o in c.outputs]


@notebook_param
def test_no_image_outputs(path: Path, nb: nbformat.NotebookNode) -> None:
    images = [(i, m) for i, o in outputs(nb) for m in o.get("data", {}) if m.startswith("image/")]
    assert not images, f"image outputs stored (cell, type): {images}: run make notebooks"


@notebook_param
def test_no_widget_state(path: Path, nb: nbformat.NotebookNode) -> None:
    assert "widgets" not in nb.metadata, "widget state is stored: run make notebooks"
    views = [i for i, o in outputs(nb) if WIDGET_MIME in o.get("data", {})]
    assert not views, f"cells {views} store widget views: run make notebooks"


@notebook_param
def test_no_error_outputs(path: Path, nb: nbformat.NotebookNode) -> None:
    errors = [(i, o.get("ename")) for i, o in outputs(nb) if o.get("output_type") == "error"]
    assert not errors, f"error outputs stored (cell, error): {errors}"


@notebook_param
def test_first_code_cells_install_then_parameters(path: Path, nb: nbformat.NotebookNode) -> None:
    """The first code cell installs course_utils where it is missing (Colab); the second
    holds the run settings, tagged for papermill."""
    cells = code_cells(nb)
    assert len(cells) >= 2, "the notebook has fewer than two code cells"
    (first_index, first), (second_index, second) = cells[:2]
    assert "install" in tags(first), f"first code cell ({first_index}) is not tagged 'install'"
    assert 'importlib.util.find_spec("course_utils") is None' in first.source
    assert "pip" in first.source and "--upgrade" not in first.source.replace("No --upgrade", "")
    assert "parameters" in tags(second), (
        f"second code cell ({second_index}) is not tagged 'parameters'"
    )


@notebook_param
def test_solution_markers_pair_up(path: Path, nb: nbformat.NotebookNode) -> None:
    for i, cell in enumerate(nb.cells):
        markers = [m for line in cell.source.splitlines() for m in (BEGIN, END) if m in line]
        open_ = False
        for marker in markers:
            assert (marker == BEGIN) != open_, f"cell {i}: {marker!r} out of order ({markers})"
            open_ = marker == BEGIN
        assert not open_, f"cell {i}: {BEGIN!r} without a matching {END!r}"


# A written takeaway: a markdown paragraph that starts with one of these bold or italic
# labels. Its text may be a solution region (the student writes it in the release).
TAKEAWAY = re.compile(r"^\s*\*{1,2}(Takeaway|Takeaways|Interpretation|Answer)\b", re.MULTILINE)
TASK_HEADING = re.compile(r"^##\s+Task\s+\d+", re.MULTILINE)


def task_sections(nb: nbformat.NotebookNode) -> dict[str, list[nbformat.NotebookNode]]:
    """The cells of each ``## Task N`` section, up to the next level-2 heading."""
    sections: dict[str, list[nbformat.NotebookNode]] = {}
    current: str | None = None
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.match(r"^##\s", cell.source):
            heading = cell.source.splitlines()[0]
            current = heading if TASK_HEADING.match(heading) else None
            if current:
                sections[current] = []
        if current:
            sections[current].append(cell)
    return sections


@notebook_param
def test_learning_goals_come_first(path: Path, nb: nbformat.NotebookNode) -> None:
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    assert h1_lines(first.source), "the first markdown cell does not hold the H1 title"
    assert re.search(r"\*\*Learning goals", first.source), (
        "the title cell does not state the learning goals (a '**Learning goals.**' paragraph)"
    )


@notebook_param
def test_every_task_ends_with_a_written_takeaway(path: Path, nb: nbformat.NotebookNode) -> None:
    sections = task_sections(nb)
    assert sections, "no '## Task N: ...' sections"
    missing = [
        heading
        for heading, cells in sections.items()
        if not any(c.cell_type == "markdown" and TAKEAWAY.search(c.source) for c in cells)
    ]
    assert not missing, (
        f"tasks without a written takeaway (a markdown paragraph starting **Takeaway.**, "
        f"**Interpretation.** or *Answer.*): {missing}"
    )


def test_takeaway_rule_finds_a_missing_takeaway() -> None:
    """The rule above can fail: a task with code but no takeaway is reported."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("## Task 1: Something"),
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_markdown_cell("## Task 2: More"),
            nbformat.v4.new_markdown_cell("**Takeaway.** It works."),
        ]
    )
    sections = task_sections(nb)
    assert list(sections) == ["## Task 1: Something", "## Task 2: More"]
    assert not any(
        TAKEAWAY.search(c.source)
        for c in sections["## Task 1: Something"]
        if c.cell_type == "markdown"
    )
    assert any(TAKEAWAY.search(c.source) for c in sections["## Task 2: More"])
