"""Points that are the course's: every graded cell says what it is worth, the README the totals."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils.instructor.notebook_io import find_notebooks
from course_utils.instructor.verify.template import (
    CHECKED,
    HIDDEN,
    RESULT,
    cell_role,
    points_by_kind,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = find_notebooks(ROOT / "notebooks")


def points_table() -> str:
    """The README's table of each notebook's points, from the notebooks."""
    lines = [
        "| notebook | visible checks | hidden tests | result cells | total |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for path in NOTEBOOKS:
        points = points_by_kind(nbformat.read(path, as_version=4))
        numbers = [points["visible"], points["hidden"], points["result"], sum(points.values())]
        lines.append(f"| `{path.name}` | " + " | ".join(f"{n:g}" for n in numbers) + " |")
    return "\n".join(lines)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_graded_cell_has_its_points(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    graded = [
        (index, cell)
        for index, cell in enumerate(nb.cells)
        if cell_role(cell) in (CHECKED, RESULT, HIDDEN)
    ]
    assert graded, "a course notebook has graded cells"
    without = [
        index
        for index, cell in graded
        if not isinstance(cell.metadata.get("course", {}).get("points"), (int, float))
        or isinstance(cell.metadata.course.points, bool)
        or cell.metadata.course.points < 0
    ]
    assert without == [], f"cells {without} need metadata.course.points (a number, 0 or more)"


def test_readme_shows_each_notebooks_points() -> None:
    table = points_table()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme, f"paste this table into the README's grading section:\n{table}"
