"""The students' self-check: ready only when all is well, and it says what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils import handin
from course_utils.instructor.refresh import REFRESH_ENV
from course_utils.instructor.release import student_notebook
from course_utils.notebooks import (
    CHECK_TAG,
    RESULT_TAG,
    SELF_CHECK_ENV,
    SESSION_ENV,
    execute_notebook,
    kernel_env,
)

ROOT = Path(__file__).resolve().parent.parent
A1_T1 = "a1_t1_convolution_arithmetic.ipynb"
QUESTION = "**Question.** Why 42?"


def tiny(answer: str = "answer = 6 * 7", written: str = "Because.") -> NotebookNode:
    """A small assignment: a solution, a checked cell, a result cell, a written answer."""
    return new_notebook(
        cells=[
            new_markdown_cell("## Task 1: The answer"),
            new_code_cell(answer),
            new_code_cell(
                "# check the answer\nassert answer == 42, 'not the answer'\n"
                "print('PASS the answer')",
                metadata={"tags": [CHECK_TAG]},
            ),
            new_code_cell('print(f"answer: {answer}")', metadata={"tags": [RESULT_TAG]}),
            new_markdown_cell(f"{QUESTION}\n\n{written}"),
        ]
    )


def saved(folder: Path, nb: NotebookNode, name: str = "tiny.ipynb", run: bool = True) -> Path:
    """``nb`` executed (or not) and saved as a student would."""
    folder.mkdir(parents=True, exist_ok=True)
    if run:
        execute_notebook(nb, folder, 60, kernel_env({}), allow_errors=True)
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_a_finished_notebook_is_ready(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = saved(tmp_path, tiny())
    assert handin.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "Task 1: The answer: passed" in out
    assert "Saved outputs: all 1 checked cells will reproduce." in out
    assert out.rstrip().endswith("READY to hand in tiny.ipynb.")


def test_an_unfinished_notebook_is_not_ready_and_says_why(tmp_path: Path) -> None:
    nb = tiny("# YOUR CODE HERE\nraise NotImplementedError", "YOUR ANSWER HERE")
    report = handin.self_check(saved(tmp_path, nb))
    assert not report.ready
    assert report.problems == [
        "2 failed check or result cells",
        "3 errors in the re-run",
        "1 written answer still empty",
        "1 cell with code still to write",
    ]
    assert report.empty_answers == [(4, QUESTION)] and report.code_to_write == [1]
    assert report.errors[0] == "cell 1: NotImplementedError"
    text = handin.describe(report)
    assert "FAILED  cell 2 (check)" in text and "NOT READY to hand in tiny.ipynb" in text


def test_hand_edited_or_missing_outputs_are_not_ready(tmp_path: Path) -> None:
    edited = tiny()
    execute_notebook(edited, tmp_path, 60, kernel_env({}))
    edited.cells[2].outputs[0].text = "PASS the answer, twice\n"
    report = handin.self_check(saved(tmp_path, edited, "edited.ipynb", run=False))
    assert [cell.index for cell in report.not_reproduced] == [2]
    assert report.problems == ["1 checked cell whose saved output will not reproduce"]
    never = handin.self_check(saved(tmp_path, tiny(), "never.ipynb", run=False))
    assert never.problems == ["1 notebook saved without its outputs"]


def test_the_report_never_holds_what_the_notebook_did_not_print(tmp_path: Path) -> None:
    nb = tiny("answer = 41")
    text = handin.describe(handin.self_check(saved(tmp_path, nb)))
    assert "AssertionError: not the answer" in text  # the notebook's own message
    assert "42" not in text.replace("Why 42?", "")  # no expected value of anyone else's


def test_the_last_cell_only_says_how_when_a_tool_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = saved(tmp_path, tiny())
    monkeypatch.setenv(SESSION_ENV, str(path))
    monkeypatch.setenv(SELF_CHECK_ENV, "0")  # the kernels of course run, verify, the self-check
    assert handin.check_this_notebook("tiny.ipynb") is None
    assert "python -m course_utils.handin tiny.ipynb" in capsys.readouterr().out
    monkeypatch.delenv(SELF_CHECK_ENV)  # a notebook open in Jupyter: a button, run on a click
    box = handin.check_this_notebook("renamed.ipynb")
    assert box is not None and capsys.readouterr().out == ""
    box.children[1].click()
    assert "READY to hand in tiny.ipynb." in capsys.readouterr().out


def test_a_file_that_is_not_a_notebook_is_not_ready(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.ipynb"
    path.write_text("my notes")
    assert handin.main([str(path)]) == 1
    assert "cannot be checked" in capsys.readouterr().out


@pytest.mark.slow  # executes a1_t1 three times, and the session's genuine run once
def test_a1_t1_ready_after_a_genuine_run_not_as_released(
    tmp_path: Path, a1_t1_solved: NotebookNode
) -> None:
    solution = nbformat.read(ROOT / "notebooks" / A1_T1, as_version=4)
    solution.cells = [c for c in solution.cells if "hidden-test" not in c.metadata.get("tags", [])]
    done = a1_t1_solved  # the solution executed (tests/conftest.py)
    report = handin.self_check(saved(tmp_path, done, A1_T1, run=False))
    assert report.ready, handin.describe(report)
    assert [title for title, _ in report.tasks][:2] == [
        "Task 1: Convolution by hand",
        "Task 2: How big is the output?",
    ]
    released = student_notebook(solution)
    execute_notebook(released, tmp_path, 600, kernel_env(REFRESH_ENV), allow_errors=True)
    fresh_start = handin.self_check(saved(tmp_path / "student", released, A1_T1, run=False))
    assert not fresh_start.ready
    answer_regions = [
        cell
        for cell in solution.cells
        if cell.cell_type == "markdown" and "### BEGIN SOLUTION" in cell.source
    ]
    assert len(fresh_start.empty_answers) == len(answer_regions) > 0
    assert fresh_start.code_to_write
    shutil.rmtree(tmp_path / "student")
