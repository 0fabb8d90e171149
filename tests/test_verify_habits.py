"""Honest notebook habits cost nothing: a1_t1 handed in as students really save it.

Every submission starts from one genuine execution of a1_t1, then does what an honest
student does: a new import cell, a helper in its own cell, a split solution cell, a file
saved without cell ids (nbformat 4.4, Colab's 4.0), scratch cells, ``%time``, a deleted
instruction cell, cells re-run out of order, ids rewritten, an import added to the
course's imports cell. The fast tests check the alignment of each with the template;
the slow one grades them all in one ``course verify -j 2`` batch: full marks each.
"""

from __future__ import annotations

import copy
import csv
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from course_utils.instructor import cli
from course_utils.instructor.verify import VERIFIED
from course_utils.instructor.verify.submission import InvalidSubmission
from course_utils.instructor.verify.template import (
    CHECKED,
    FIXED,
    ROLE_KEY,
    STUDENT,
    TEMPLATE_ID_KEY,
    Template,
    align,
    match_template,
)

ROOT = Path(__file__).resolve().parent.parent
NAME = "a1_t1_convolution_arithmetic.ipynb"
COLAB_NAME = f"Copy of {NAME}"


def index_of(nb: NotebookNode, start: str) -> int:
    """The index of the cell whose source starts with ``start``."""
    return next(i for i, c in enumerate(nb.cells) if c.source.startswith(start))


def code(source: str, count: int | None = None, text: str = "") -> NotebookNode:
    """A new code cell as Jupyter saves it after a run (printed ``text``, if any)."""
    outputs = [nbformat.v4.new_output("stream", text=text)] if text else []
    return nbformat.v4.new_code_cell(source, execution_count=count, outputs=outputs)


def without_ids(nb: NotebookNode, minor: int = 4) -> NotebookNode:
    """``nb`` as a tool that writes nbformat 4.``minor`` saves it: no cell ids."""
    nb.nbformat_minor = minor
    for cell in nb.cells:
        cell.pop("id", None)
    return nb


def new_import_cell(nb: NotebookNode) -> NotebookNode:
    imports = index_of(nb, "import matplotlib")
    nb.cells.insert(imports + 1, code("from math import floor", 4))
    sizes = nb.cells[index_of(nb, "def conv_output_size")]
    sizes.source = sizes.source.replace(
        "(W - F + 2 * P) // S + 1", "floor((W - F + 2 * P) / S) + 1"
    )
    return nb


def import_added_to_imports_cell(nb: NotebookNode) -> NotebookNode:
    imports = nb.cells[index_of(nb, "import matplotlib")]
    imports.source = imports.source.replace(
        "import torch\n", "import torch\nfrom math import floor\n"
    )
    sizes = nb.cells[index_of(nb, "def conv_output_size")]
    sizes.source = sizes.source.replace(
        "(W - F + 2 * P) // S + 1", "floor((W - F + 2 * P) / S) + 1"
    )
    return nb


def helper_in_a_new_cell(nb: NotebookNode) -> NotebookNode:
    solution = index_of(nb, "def cross_correlate2d")
    nb.cells.insert(
        solution,
        code(
            'def pad_zeros(image, padding):\n    """Zeros around the image."""\n'
            "    return np.pad(image, padding)"
        ),
    )
    cell = nb.cells[solution + 1]
    cell.source = cell.source.replace("np.pad(image, padding)", "pad_zeros(image, padding)")
    return nb


def split_solution_cell(nb: NotebookNode) -> NotebookNode:
    solution = index_of(nb, "def cross_correlate2d")
    first, second = nb.cells[solution].source.split("\n\n\ndef convolve2d")
    nb.cells[solution].source = first
    nb.cells.insert(solution + 1, code("def convolve2d" + second))
    return nb


def merged_solution_cells(nb: NotebookNode) -> NotebookNode:
    """The size functions moved up into the convolution's cell (Shift-M across tasks)."""
    sizes = nb.cells.pop(index_of(nb, "def conv_output_size"))
    nb.cells[index_of(nb, "def cross_correlate2d")].source += "\n\n\n" + sizes.source
    return nb


def scratch_cells(nb: NotebookNode) -> NotebookNode:
    check = index_of(nb, "result = convolve2d")
    nb.cells[check + 1 : check + 1] = [
        nbformat.v4.new_markdown_cell("My notes: the flip turns the Sobel kernel around."),
        code("print(convolve2d(np.eye(3), np.ones((2, 2)), 0))", 9, "[[1. 1.]\n [1. 1.]]\n"),
        code("image.shape", 10),
        code("", None),
    ]
    return nb


def time_magics(nb: NotebookNode) -> NotebookNode:
    solution = nb.cells[index_of(nb, "def cross_correlate2d")]
    solution.source = "%%time\n" + solution.source
    check = index_of(nb, "result = convolve2d")
    nb.cells.insert(
        check + 1, code("%time _ = convolve2d(image, kernel, padding=1)", 8, "Wall time: 61 µs\n")
    )
    return nb


def deleted_instruction_cell(nb: NotebookNode) -> NotebookNode:
    del nb.cells[index_of(nb, "## Task 1")]
    return nb


def runs_out_of_order(nb: NotebookNode) -> NotebookNode:
    """Cells re-run out of order: the solution last, the check before it, a cell twice."""
    counts = [c for c in nb.cells if c.cell_type == "code" and c.execution_count is not None]
    for count, cell in enumerate(reversed(counts), start=3):
        cell.execution_count = count
    return nb


def ids_rewritten(nb: NotebookNode) -> NotebookNode:
    for cell in nb.cells:
        cell.id = uuid.uuid4().hex[:8]
    return nb


def nbformat_44(nb: NotebookNode) -> NotebookNode:
    return without_ids(nb)


def colab_copy(nb: NotebookNode) -> NotebookNode:
    """Colab's 4.0 file: no ids, its own notebook and cell metadata."""
    nb = without_ids(nb, minor=0)
    nb.metadata = {
        "colab": {"provenance": [], "name": COLAB_NAME},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
    }
    for cell in nb.cells:
        cell.metadata["id"] = uuid.uuid4().hex[:12]
        if cell.cell_type == "code":
            cell.metadata["colab"] = {"base_uri": "https://localhost:8080/"}
    return nb


HABITS: dict[str, Callable[[NotebookNode], NotebookNode]] = {
    "new_import_cell": new_import_cell,
    "import_added_to_imports_cell": import_added_to_imports_cell,
    "helper_in_a_new_cell": helper_in_a_new_cell,
    "split_solution_cell": split_solution_cell,
    "merged_solution_cells": merged_solution_cells,
    "nbformat_44": nbformat_44,
    "scratch_cells": scratch_cells,
    "time_magics": time_magics,
    "deleted_instruction_cell": deleted_instruction_cell,
    "colab_copy": colab_copy,
    "runs_out_of_order": runs_out_of_order,
    "ids_rewritten": ids_rewritten,
}


def file_name(habit: str) -> str:
    """The name the student hands the notebook in under."""
    return COLAB_NAME if habit == "colab_copy" else NAME


@pytest.fixture(scope="module")
def template() -> Template:
    return Template(ROOT / "notebooks" / NAME, nbformat.read(ROOT / "notebooks" / NAME, 4))


# ------------------------------------------------------------ alignment, no execution


@pytest.mark.parametrize("habit", HABITS)
def test_habit_aligns_with_the_template(template: Template, habit: str) -> None:
    nb = HABITS[habit](copy.deepcopy(template.nb))
    assert match_template(file_name(habit), nb, [template]) is template
    alignment = align(template, nb)
    assert alignment.problems == []
    stored = alignment.by_template_id
    assert [stored[cell.id].source for _, cell in template.graded] == [
        cell.source for _, cell in template.graded
    ]
    run = alignment.run
    roles = [cell.metadata[ROLE_KEY] for cell in run.cells]
    by_template = {cell.metadata.get(TEMPLATE_ID_KEY): cell for cell in run.cells}
    assert roles.count(CHECKED) == len(template.graded)
    for index, cell in template.graded:  # every checked cell once, as the template has it
        assert by_template[cell.id].source.endswith(template.releases[index])
    # every line the student wrote is in the notebook to run, where they wrote it
    student = [c.source for c in run.cells if c.metadata[ROLE_KEY] == STUDENT]
    mine = [c.source for c in nb.cells if c.source not in template.releases]
    assert [s for s in mine if s not in student] == [] or habit == "import_added_to_imports_cell"
    nbformat.validate(run)


def test_an_import_added_to_a_course_cell_runs_and_is_reported(template: Template) -> None:
    alignment = align(template, import_added_to_imports_cell(copy.deepcopy(template.nb)))
    imports = next(c for c in alignment.run.cells if c.source.startswith("import matplotlib"))
    assert "from math import floor" in imports.source and imports.metadata[ROLE_KEY] == FIXED
    assert alignment.notes == [
        "cell 3 (import matplotlib.pyplot as plt): the student added from math import floor"
    ]


def test_a_changed_course_cell_runs_the_course_text(template: Template) -> None:
    nb = copy.deepcopy(template.nb)
    imports = nb.cells[index_of(nb, "import matplotlib")]
    imports.source = imports.source.replace("seed=SEED", "seed=1")
    alignment = align(template, nb)
    assert alignment.run.cells[3].source == template.nb.cells[3].source
    assert "did not run (the course's text did)" in alignment.notes[0]


def test_a_deleted_course_code_cell_runs_where_the_course_has_it(template: Template) -> None:
    nb = copy.deepcopy(template.nb)
    del nb.cells[index_of(nb, "import matplotlib")]
    alignment = align(template, without_ids(nb))
    assert alignment.run.cells[3].source == template.nb.cells[3].source
    assert alignment.notes == [
        "cell 3 (import matplotlib.pyplot as plt) was deleted: the course's text ran"
    ]


def test_a_moved_course_code_cell_runs_where_the_course_has_it(template: Template) -> None:
    nb = copy.deepcopy(template.nb)
    nb.cells.insert(20, nb.cells.pop(index_of(nb, "import matplotlib")))
    alignment = align(template, nb)
    sources = [cell.source for cell in alignment.run.cells]
    assert sources.index(template.nb.cells[3].source) == 3
    assert sources.count(template.nb.cells[3].source) == 1
    assert alignment.notes == [
        "cell 3 (import matplotlib.pyplot as plt) was moved: it ran where the course has it"
    ]


def test_without_ids_an_edited_checked_cell_is_still_caught(template: Template) -> None:
    nb = without_ids(copy.deepcopy(template.nb))
    nb.cells[index_of(nb, "result = convolve2d")].source += '\nprint("PASS")'
    assert align(template, nb).problems == [
        "cell 7 (result = convolve2d(image, kernel, padding=1)) is edited"
    ]


def test_a_check_moved_above_its_task_is_caught(template: Template) -> None:
    nb = without_ids(copy.deepcopy(template.nb))
    nb.cells.insert(2, nb.cells.pop(index_of(nb, "result = convolve2d")))
    assert align(template, nb).problems == [
        "cell 7 (result = convolve2d(image, kernel, padding=1)) is moved"
    ]


def test_solution_and_instructor_answers_never_reach_the_notebook_to_run(
    template: Template,
) -> None:
    run = align(template, copy.deepcopy(template.nb)).run
    owned = [c for c in run.cells if c.metadata[ROLE_KEY] != STUDENT]
    assert owned and not any("### BEGIN SOLUTION" in c.source for c in owned)
    assert [c.metadata[ROLE_KEY] for c in run.cells if "hidden-test" in c.metadata.tags] == []


def test_a_misnamed_file_is_matched_by_content_to_one_template(template: Template) -> None:
    other_path = ROOT / "notebooks" / "a1_t2_mnist_cnn.ipynb"
    other = Template(other_path, nbformat.read(other_path, 4))
    nb = colab_copy(copy.deepcopy(template.nb))
    assert match_template("notebook (3).ipynb", nb, [other, template]) is template
    with pytest.raises(InvalidSubmission, match="not one of the course's notebooks"):
        match_template(NAME, nbformat.v4.new_notebook(cells=[code("print(1)")]), [template])


# ------------------------------------------------------------ graded in the sandbox


@pytest.mark.slow  # executes a1_t1 and grades a batch of habits in the sandbox
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_every_habit_verified_with_full_marks(tmp_path: Path, a1_t1_solved: NotebookNode) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copyfile(ROOT / "notebooks" / NAME, templates / NAME)
    genuine = a1_t1_solved  # the session's one genuine run, as released (tests/conftest.py)
    folder = tmp_path / "submissions"
    for habit, change in {"honest": copy.deepcopy, **HABITS}.items():
        path = folder / habit / file_name(habit)
        path.parent.mkdir(parents=True)
        nbformat.write(change(copy.deepcopy(genuine)), path)
    out = tmp_path / "grades" / "gradebook.csv"
    code = cli.main(
        ["verify", str(folder), "--template", str(templates), "--out", str(out), "-j", "2"]
    )
    with open(out, newline="") as handle:
        rows = {Path(row["submission"]).parent.name: row for row in csv.DictReader(handle)}
    wrong = {
        habit: f"{row['status']} {row['score']}/{row['max_score']}: {row['note']}"
        for habit, row in rows.items()
        if row["status"] != VERIFIED or row["score"] != row["max_score"]
    }
    assert wrong == {}
    assert len(rows) == len(HABITS) + 1 and code == 0
    assert (
        "the student added from math import floor" in rows["import_added_to_imports_cell"]["note"]
    )
