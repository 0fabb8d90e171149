"""Shared test set-up: a non-interactive plotting backend, no figure left open, and one
genuine execution of a1_t1 for every test that hands it in."""

import copy
from collections.abc import Iterator
from pathlib import Path

import matplotlib

# Before pyplot is imported anywhere: tests never open windows.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
import nbformat
import pytest
from nbformat import NotebookNode

from course_utils.instructor.refresh import REFRESH_ENV
from course_utils.instructor.verify.template import HIDDEN_TAG
from course_utils.notebooks import execute_notebook, kernel_env

A1_T1 = Path(__file__).resolve().parent.parent / "notebooks" / "a1_t1_convolution_arithmetic.ipynb"
# a1_t1 has no result cell; the verify tests append one, so that a forged key result has
# something to forge. Being the last cell, it changes no output above it.
RESULT_SOURCE = 'print(f"lenet_parameters: {sum(p.numel() for p in lenet.parameters())}")'
RESULT_ID = "result-lenet-parameters"


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """Close every figure a test opened, so figures do not pile up across tests."""
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def a1_t1_template() -> NotebookNode:
    """The a1_t1 solution notebook with one result cell appended at its end.

    Tests copy it before they change it.
    """
    template = nbformat.read(A1_T1, as_version=4)
    result_cell = nbformat.v4.new_code_cell(RESULT_SOURCE, metadata={"tags": ["result"]})
    result_cell.id = RESULT_ID
    template.cells.append(result_cell)
    return template


@pytest.fixture(scope="session")
def a1_t1_executed(
    a1_t1_template: NotebookNode, tmp_path_factory: pytest.TempPathFactory
) -> NotebookNode:
    """``a1_t1_template`` executed once, as `course refresh` runs it: a student's honest work.

    Its hidden-test cells are tagged ``skip-execution``, so they are in it without outputs.
    Several slow tests hand this one run in (one a1_t1 execution instead of one each);
    they copy it before they change it.
    """
    executed = copy.deepcopy(a1_t1_template)
    folder = tmp_path_factory.mktemp("a1_t1_run")
    assert execute_notebook(executed, folder, 600, kernel_env(REFRESH_ENV)) is None
    return executed


@pytest.fixture
def a1_t1_solved(a1_t1_executed: NotebookNode) -> NotebookNode:
    """A copy of the genuine run as the release hands a1_t1 out: no hidden-test cells,
    no appended result cell (the solution notebook executed, cell for cell)."""
    solved = copy.deepcopy(a1_t1_executed)
    solved.cells = [
        cell
        for cell in solved.cells[:-1]  # the appended result cell, the last one
        if HIDDEN_TAG not in cell.metadata.get("tags", [])
    ]
    return solved
