"""Every written-answer region of the solution notebooks carries a rubric for `course grade`.

The rubric is ``metadata.course.rubric`` of the answer cell: two to four items, each with
an id unique within the cell, positive points and a description of what earns them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils.instructor.grade.questions import is_answer_cell
from course_utils.instructor.notebook_io import find_notebooks

NOTEBOOKS = find_notebooks(Path(__file__).resolve().parents[1] / "notebooks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_answer_region_has_a_rubric(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    answers = [(index, cell) for index, cell in enumerate(nb.cells) if is_answer_cell(cell)]
    assert answers, f"{path.name} has no written-answer region"
    for index, cell in answers:
        rubric = cell.metadata.get("course", {}).get("rubric")
        where = f"{path.name} cell {index} ({cell.id})"
        assert isinstance(rubric, list) and 2 <= len(rubric) <= 4, f"{where}: 2 to 4 items"
        keys = [item.get("id") for item in rubric]
        assert len(set(keys)) == len(keys) and all(keys), f"{where}: ids unique and set"
        for item in rubric:
            assert isinstance(item.get("points"), (int, float)), f"{where}: points a number"
            assert item["points"] > 0, f"{where}: {item['id']} earns points"
            assert len(item.get("description", "")) >= 10, f"{where}: {item['id']} described"
