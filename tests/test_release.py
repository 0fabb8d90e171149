"""`course release`: solutions pass, the student build fails only with NotImplementedError,
and no line of an answer reaches the release."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.instructor import cli
from course_utils.instructor.refresh import REFRESH_ENV
from course_utils.notebooks import execute_notebook, kernel_env
from course_utils.instructor.release import (PACKAGE, SOLUTION_BEGIN, SOLUTION_END, ReleaseError,
                                  build_release, student_notebook)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SMOKE_ENV = kernel_env(REFRESH_ENV)  # the smoke profile, as in `make nbval`
CELL_TIMEOUT = 600
notebook_param = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student release of the course's notebooks."""
    out = tmp_path_factory.mktemp("release") / "student"
    build_release(NOTEBOOK_DIR, out)  # a ReleaseError names the notebook and cell
    return out


def secret_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Lines inside solution regions that appear nowhere outside them.

    Lines without a letter or digit (``)``, ``}``) carry no answer and are left out.
    """
    inside: set[str] = set()
    outside: set[str] = set()
    for cell in nb.cells:
        in_solution = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith(SOLUTION_BEGIN):
                in_solution = True
            elif stripped.startswith(SOLUTION_END):
                in_solution = False
            else:
                (inside if in_solution else outside).add(stripped)
    return {line for line in inside - outside if any(c.isalnum() for c in line)}


def strings(value: object) -> list[str]:
    """Every string anywhere in parsed JSON (sources, outputs, metadata)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def release_lines(folder: Path) -> set[str]:
    """Every stripped line of every text file in the release, notebooks parsed."""
    lines: set[str] = set()
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files hold no source lines
        texts = strings(json.loads(text)) if path.suffix == ".ipynb" else [text]
        lines.update(line.strip() for t in texts for line in t.splitlines())
    return lines


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


# That every solution notebook passes is proved by `make nbval`, which executes each one
# in the smoke profile; running them here again would double the test time.


@notebook_param
def test_student_notebook_fails_only_with_not_implemented(path: Path, release: Path) -> None:
    student = release / "notebooks" / path.name
    nb = nbformat.read(student, as_version=4)
    error = execute_notebook(nb, student.parent, CELL_TIMEOUT, SMOKE_ENV)
    assert error is not None and error.startswith("NotImplementedError"), error


@notebook_param
def test_student_notebook_is_cleared_and_keeps_tags(path: Path, release: Path) -> None:
    solution = nbformat.read(path, as_version=4)
    student = nbformat.read(release / "notebooks" / path.name, as_version=4)
    assert len(student.cells) == len(solution.cells)
    for index, (old, new) in enumerate(zip(solution.cells, student.cells)):
        assert new.metadata.get("tags") == old.metadata.get("tags"), f"cell {index}"
        if new.cell_type == "code":
            assert new.outputs == [] and new.execution_count is None, f"cell {index}"
            if SOLUTION_BEGIN in old.source:
                assert "raise NotImplementedError" in new.source, f"cell {index}"
        else:
            assert new.source == old.source, f"cell {index}"


@notebook_param
def test_no_solution_line_in_the_release(path: Path, release: Path) -> None:
    secrets = secret_lines(nbformat.read(path, as_version=4))
    assert secrets, f"{path.name} has no solution regions"
    # The helper package ships unchanged and students can read it anyway: a line it
    # shares with a solution (`with torch.no_grad():`) is not leaked by the release.
    package = release_lines(ROOT / PACKAGE)
    leaked = (secrets - package) & release_lines(release)
    assert not leaked, f"solution lines in the release: {sorted(leaked)}"


def test_release_ships_the_package_unchanged(release: Path) -> None:
    sources = {p.relative_to(ROOT / PACKAGE): p.read_bytes()
               for p in (ROOT / PACKAGE).rglob("*.py")}
    shipped = {p.relative_to(release / PACKAGE): p.read_bytes()
               for p in (release / PACKAGE).rglob("*.py")}
    assert shipped == sources
    assert not list((release / PACKAGE).rglob("__pycache__"))
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        assert (release / name).read_bytes() == (ROOT / name).read_bytes()
    assert sorted(p.name for p in (release / "notebooks").iterdir()) == \
        [p.name for p in NOTEBOOKS]


def test_stub_keeps_indentation_and_markdown_mentions() -> None:
    nb = new_notebook(cells=[
        new_markdown_cell(f"Fill in the code between `{SOLUTION_BEGIN}` and `{SOLUTION_END}`."),
        new_code_cell("class Net:\n    def forward(self, x):\n        " + SOLUTION_BEGIN +
                      "\n        return x * 2\n        " + SOLUTION_END + "\n\n\nnet = Net()"),
    ])
    student = student_notebook(nb)
    assert student.cells[0].source == nb.cells[0].source
    assert student.cells[1].source == (
        "class Net:\n    def forward(self, x):\n        # YOUR CODE HERE\n"
        "        raise NotImplementedError\n\n\nnet = Net()")
    assert "return x * 2" in nb.cells[1].source, "the solution notebook is left unchanged"


def test_stub_that_breaks_the_syntax_stops_the_release(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell(
        f"sizes = {{\n    {SOLUTION_BEGIN}\n    'a': 1,\n    {SOLUTION_END}\n}}")]),
        source / "broken.ipynb")
    with pytest.raises(ReleaseError, match="broken.ipynb cell 0: the stub does not compile"):
        build_release(source, tmp_path / "student")
    assert not (tmp_path / "student").exists(), "nothing is written for a broken notebook"


def test_release_replaces_only_an_earlier_release(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell(f"{SOLUTION_BEGIN}\nx = 1\n{SOLUTION_END}")]),
                   source / "one.ipynb")
    out = tmp_path / "student"
    assert cli.main(["release", str(source), "--out", str(out)]) == 0
    (out / "stale.txt").write_text("from an earlier release")
    assert build_release(source, out) == [("one.ipynb", 1)]
    assert not (out / "stale.txt").exists()

    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not a release")
    assert cli.main(["release", str(source), "--out", str(elsewhere)]) == 1
    assert (elsewhere / "keep.txt").exists()
