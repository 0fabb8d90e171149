"""`course release`: the student pack clears every solution region (code and markdown), ships
the helpers without the instructor tools, a student README and packaging of its own, and no
line of an answer. tests/test_student_pack.py installs it and runs its notebooks."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.instructor import cli
from course_utils.instructor import release as release_module
from course_utils.instructor.release import (
    INSTRUCTOR_PACKAGE,
    PACKAGE,
    SOLUTION_BEGIN,
    SOLUTION_END,
    TEXT_STUB,
    ReleaseError,
    build_release,
    is_hidden_test,
    student_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PACKAGE_URL = "git+https://github.com/example/cnn-course-student"
notebook_param = pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
# Tools only instructors have: a student notebook never tells its reader to use them.
INSTRUCTOR_COMMANDS = re.compile(
    r"(?<!of )\bcourse (run|release|verify|refresh|grade|readme)\b"
    r"|\bmake (run|test|release|verify|notebooks|setup|nbval)\b|\bpapermill\b"
)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student release of the course's notebooks."""
    out = tmp_path_factory.mktemp("release") / "student"
    timings = out.parent / "results.json"  # as `course run` writes it
    timings.write_text(
        json.dumps(
            {
                "machine": "2-core x86_64 machine (Linux)",
                "notebooks": [
                    {
                        "name": NOTEBOOKS[0].name,
                        "status": "ok",
                        "profile": "quick",
                        "device": "cpu",
                        "wall_s": 16.0,
                    },
                    {
                        "name": NOTEBOOKS[1].name,
                        "status": "ok",
                        "profile": "quick",
                        "device": "cpu",
                        "wall_s": 306.0,
                    },
                    {
                        "name": NOTEBOOKS[2].name,
                        "status": "ok",
                        "profile": "full",
                        "device": "cuda",
                        "wall_s": 5.0,
                    },
                ],
            }
        )
    )
    # A ReleaseError names the notebook and cell.
    build_release(NOTEBOOK_DIR, out, package_url=PACKAGE_URL, results_file=timings)
    return out


def split_lines(nb: nbformat.NotebookNode) -> tuple[set[str], set[str]]:
    """The stripped lines inside solution regions, and those outside them."""
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
    return inside, outside


def secret_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Lines inside solution regions that no notebook of the course hands out.

    A line given outside the regions in any notebook (``best = history.best``) is no
    answer; lines without a letter or digit (``)``, ``}``) carry none either.
    """
    given = set().union(*(split_lines(nbformat.read(p, as_version=4))[1] for p in NOTEBOOKS))
    inside, _ = split_lines(nb)
    return {line for line in inside - given if any(c.isalnum() for c in line)}


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


# Executing the student notebooks (each must fail only with NotImplementedError) is done
# once, on the installed pack, by tests/test_student_pack.py.


@notebook_param
def test_student_notebook_is_cleared_and_keeps_tags(path: Path, release: Path) -> None:
    solution = nbformat.read(path, as_version=4)
    student = nbformat.read(release / "notebooks" / path.name, as_version=4)
    given = [cell for cell in solution.cells if not is_hidden_test(cell)]
    assert len(student.cells) == len(given)
    for index, (old, new) in enumerate(zip(given, student.cells, strict=True)):
        assert new.metadata.get("tags") == old.metadata.get("tags"), f"cell {index}"
        if new.cell_type == "code":
            assert new.outputs == [] and new.execution_count is None, f"cell {index}"
            if SOLUTION_BEGIN in old.source:
                assert "raise NotImplementedError" in new.source, f"cell {index}"
        elif SOLUTION_BEGIN in old.source:  # a written answer or takeaway
            assert TEXT_STUB in new.source, f"cell {index}"
            assert old.source.split(SOLUTION_BEGIN)[0] in new.source, f"cell {index}"
        else:
            assert new.source == old.source, f"cell {index}"
    assert SOLUTION_BEGIN not in json.dumps(student.dict()), "no marker is left"


def test_hidden_tests_are_left_out() -> None:
    hidden = new_code_cell(
        "assert checks.check_convolution(student.convolve2d, rng=rng) is None",
        metadata={"tags": ["hidden-test"], "course": {"points": 2, "name": "fresh images"}},
    )
    nb = new_notebook(cells=[new_code_cell("x = 1"), hidden, new_markdown_cell("Done.")])
    student = student_notebook(nb)
    assert [cell.source for cell in student.cells] == ["x = 1", "Done."]
    assert "fresh images" not in json.dumps(student.dict())
    assert len(nb.cells) == 3  # the solution notebook is left as it was


@notebook_param
def test_release_holds_no_hidden_test_and_no_rubric(path: Path, release: Path) -> None:
    student = nbformat.read(release / "notebooks" / path.name, as_version=4)
    assert not [cell for cell in student.cells if is_hidden_test(cell)]
    assert not [cell for cell in student.cells if "rubric" in cell.metadata.get("course", {})]


@notebook_param
def test_install_cell_names_the_package_url(path: Path, release: Path) -> None:
    student = nbformat.read(release / "notebooks" / path.name, as_version=4)
    (install,) = [c for c in student.cells if "install" in c.metadata.get("tags", [])]
    assert f'COURSE_PACKAGE = "{PACKAGE_URL}"' in install.source
    compile(install.source, path.name, "exec")


@notebook_param
def test_student_notebook_names_no_instructor_command(path: Path, release: Path) -> None:
    student = nbformat.read(release / "notebooks" / path.name, as_version=4)
    named = [
        (index, match.group())
        for index, cell in enumerate(student.cells)
        for match in INSTRUCTOR_COMMANDS.finditer(cell.source)
    ]
    assert not named, f"instructor commands in {path.name} (cell, command): {named}"


def test_instructor_commands_are_recognised() -> None:
    text = "# Run settings; `make run` and papermill may override them. `course verify` reads"
    found = [match.group() for match in INSTRUCTOR_COMMANDS.finditer(text)]
    assert found == ["make run", "papermill", "course verify"]
    assert not INSTRUCTOR_COMMANDS.search("of course run it again; make sure the run record")


@notebook_param
def test_kernelspec_is_as_ipykernel_writes_it(path: Path, release: Path) -> None:
    # Any other kernelspec JupyterLab rewrites on opening, so that an untouched notebook
    # asks to be saved (tests/test_browser_reopen.py opens one in a browser).
    from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

    written = get_kernel_dict()
    expected = {
        "display_name": written["display_name"],
        "language": written["language"],
        "name": KERNEL_NAME,
    }
    for folder in (NOTEBOOK_DIR, release / "notebooks"):
        assert nbformat.read(folder / path.name, as_version=4).metadata.kernelspec == expected


@notebook_param
def test_no_solution_line_in_the_release(path: Path, release: Path) -> None:
    secrets = secret_lines(nbformat.read(path, as_version=4))
    assert secrets, f"{path.name} has no solution regions"
    # Students can read the helper package anyway: a line it shares with a solution
    # (`with torch.no_grad():`) is not leaked by the release. tests/test_leaks.py checks
    # that the package itself holds no answer.
    package = release_lines(release / PACKAGE)
    leaked = (secrets - package) & release_lines(release)
    assert not leaked, f"solution lines in the release: {sorted(leaked)}"


def test_release_ships_the_helpers_without_the_instructor_tools(release: Path) -> None:
    source = ROOT / PACKAGE
    expected = {
        p.relative_to(source): p.read_bytes()
        for p in source.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.relative_to(source).parts[0] != "instructor"
    }
    shipped = {
        p.relative_to(release / PACKAGE): p.read_bytes()
        for p in (release / PACKAGE).rglob("*")
        if p.is_file()
    }
    assert shipped == expected
    assert not (release / PACKAGE / "instructor").exists()
    assert sorted(p.name for p in (release / "notebooks").iterdir()) == [p.name for p in NOTEBOOKS]
    for name in (
        "LICENSE",
        "data/README.md",
        ".gitignore",
        "constraints.txt",
        "jupyter-config/course_utils.json",
    ):
        assert (release / name).is_file(), name


def test_cpu_only_pytorch_is_advice_not_configuration(release: Path) -> None:
    # PyTorch's CPU index is a choice for laptops: no packaging file forces it on a GPU.
    for folder in (ROOT, release):
        for name in ("pyproject.toml", "constraints.txt", "environment.yml", "Makefile"):
            if (folder / name).is_file():
                assert "download.pytorch.org" not in (folder / name).read_text(), name


def test_student_pyproject_installs_no_instructor_tools(release: Path) -> None:
    student = tomllib.loads((release / "pyproject.toml").read_text())
    course = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = student["project"]
    assert "scripts" not in project, "no `course` command for students"
    assert set(project["optional-dependencies"]) == {"lab"}
    assert project["dependencies"] == course["project"]["dependencies"]
    assert project["readme"] == "README.md"
    find = student["tool"]["setuptools"]["packages"]["find"]
    assert f"{INSTRUCTOR_PACKAGE}*" in find["exclude"]
    assert set(student["tool"]) == {"setuptools"}, "no pytest, lint or type-check settings"
    instructor_only = {"nbgrader", "nbval", "nbconvert", "pytest"}
    pins = {
        line.split("==")[0]
        for line in (release / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    assert {"torch", "torchvision", "jupyterlab"} <= pins and not pins & instructor_only


def readme_times(readme: str) -> dict[str, str]:
    """The time column of the student README's notebook table, by notebook file."""
    rows = re.findall(r"^\| .* \| `notebooks/(.+?)` \| (.+?) \|$", readme, re.MULTILINE)
    return dict(rows)


def test_readme_gives_the_times_that_course_run_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # results.json as `course run` writes it after a quick run on a CPU, in build/ of the
    # folder `make run` and `make release` both run in.
    from course_utils.instructor.run import NotebookResult, write_results

    monkeypatch.chdir(tmp_path)
    (tmp_path / "build").mkdir()
    record = {"profile": "quick", "data": "embedded", "device": "cpu"}
    runs = [
        NotebookResult(p.name, "", 60.0 * (i + 1), record=record) for i, p in enumerate(NOTEBOOKS)
    ]
    write_results(runs, tmp_path / "build")
    assert cli.main(["release", str(NOTEBOOK_DIR), "--out", "build/student"]) == 0
    times = readme_times((tmp_path / "build/student/README.md").read_text())
    assert times == {p.name: f"about {i + 1} min" for i, p in enumerate(NOTEBOOKS)}


@pytest.mark.slow
def test_release_after_a_quick_cpu_run_gives_its_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real sequence, `course run --profile quick` then `course release`, on a small
    # notebook: the README must give its measured time, not "not measured".
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = new_notebook(
        cells=[
            new_markdown_cell("# A short notebook"),
            new_code_cell("from course_utils import config\nrun = config.start_run()"),
        ],
        metadata={"kernelspec": nbformat.read(NOTEBOOKS[0], as_version=4).metadata.kernelspec},
    )
    nbformat.write(nb, folder / "t1_short.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cli.main(["run", str(folder), "--profile", "quick", "--timeout", "300"]) == 0
    assert cli.main(["release", str(folder), "--out", "build/student"]) == 0
    readme = (tmp_path / "build/student/README.md").read_text()
    assert readme_times(readme) == {"t1_short.ipynb": "under a minute"}
    assert "The times were not measured" not in readme


def test_student_readme(release: Path) -> None:
    readme = (release / "README.md").read_text()
    assert readme != (ROOT / "README.md").read_text()
    for needed in (
        'pip install ".[lab]"',
        "Colab",
        "JupyterLab",
        PACKAGE_URL,
        "Handing in",
        "COURSE_DATA_DIR",
        "NotImplementedError",
        # The CPU-only PyTorch for a laptop without an NVIDIA GPU, with the sizes.
        "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu",
        "2.9 GB",
        "200 MB",
    ):
        assert needed in readme, needed
    for row in readme.splitlines():
        if NOTEBOOKS[0].name in row:
            assert row.endswith("| under a minute |"), row
        if NOTEBOOKS[1].name in row:
            assert row.endswith("| about 5 min |"), row
        if NOTEBOOKS[2].name in row:  # measured on a GPU, not a CPU
            assert row.endswith("| not measured |"), row
    assert "2-core x86_64 machine (Linux)" in readme
    # Nothing an instructor's README says: make targets, markers, results, grading tools.
    for forbidden in (
        "make run",
        "make test",
        "SOLUTION",
        "nbgrader",
        "course verify",
        "course release",
        "%|",
        "test accuracy",
    ):
        assert forbidden not in readme, forbidden


def test_markdown_solution_regions_are_cleared() -> None:
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                f"**Why does momentum help?**\n{SOLUTION_BEGIN}\nIt averages gradients.\n"
                f"{SOLUTION_END}\n\nNext, the sweep."
            )
        ]
    )
    assert student_notebook(nb).cells[0].source == (
        f"**Why does momentum help?**\n{TEXT_STUB}\n\nNext, the sweep."
    )


def test_unbalanced_markers_stop_the_release() -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1"),
            new_markdown_cell(f"Write between `{SOLUTION_BEGIN}` and `{SOLUTION_END}`."),
        ]
    )
    with pytest.raises(ReleaseError, match=f"a.ipynb cell 1: .*needs its own {SOLUTION_END}"):
        student_notebook(nb, "a.ipynb")


def test_package_url_needs_an_install_cell_and_a_plain_url(tmp_path: Path) -> None:
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    with pytest.raises(ReleaseError, match="a.ipynb: no cell tagged 'install'"):
        student_notebook(nb, "a.ipynb", package_url=PACKAGE_URL)
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(nb, source / "a.ipynb")
    assert (
        cli.main(
            ["release", str(source), "--out", str(tmp_path / "s"), "--package-url", "x'; import os"]
        )
        == 1
    )
    assert not (tmp_path / "s").exists()


def test_release_needs_the_course_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), source / "a.ipynb")
    monkeypatch.setattr(release_module, "ROOT", tmp_path / "site-packages")
    with pytest.raises(
        ReleaseError, match="no course folder .*run `course release` from a checkout"
    ):
        build_release(source, tmp_path / "student")


def test_stub_keeps_indentation() -> None:
    nb = new_notebook(
        cells=[
            new_markdown_cell("Replace `raise NotImplementedError` with your code."),
            new_code_cell(
                "class Net:\n    def forward(self, x):\n        "
                + SOLUTION_BEGIN
                + "\n        return x * 2\n        "
                + SOLUTION_END
                + "\n\n\nnet = Net()"
            ),
        ]
    )
    student = student_notebook(nb)
    assert student.cells[0].source == nb.cells[0].source
    assert student.cells[1].source == (
        "class Net:\n    def forward(self, x):\n        # YOUR CODE HERE\n"
        "        raise NotImplementedError\n\n\nnet = Net()"
    )
    assert "return x * 2" in nb.cells[1].source, "the solution notebook is left unchanged"


def test_stub_that_breaks_the_syntax_stops_the_release(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(
        new_notebook(
            cells=[
                new_code_cell(
                    f"sizes = {{\n    {SOLUTION_BEGIN}\n    'a': 1,\n    {SOLUTION_END}\n}}"
                )
            ]
        ),
        source / "broken.ipynb",
    )
    with pytest.raises(ReleaseError, match="broken.ipynb cell 0: the stub does not compile"):
        build_release(source, tmp_path / "student")
    assert not (tmp_path / "student").exists(), "nothing is written for a broken notebook"


def test_release_replaces_only_an_earlier_release(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(
        new_notebook(cells=[new_code_cell(f"{SOLUTION_BEGIN}\nx = 1\n{SOLUTION_END}")]),
        source / "one.ipynb",
    )
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
