"""``course verify``'s command line (issue 18, classes 9 and 10).

Class 9: a handed-in file named like an option, expanded by a shell glob, must not steer
the grader (the unsafe mode is an environment variable now, and a file name starting
with ``-`` is refused). Class 10: a misnamed file re-executes only the template it
answers, not every template.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.instructor import cli
from course_utils.instructor.notebook_io import CHECK_TAG
from course_utils.instructor.verify import INVALID, VERIFIED, Verdict, command
from course_utils.instructor.verify.template import Template, load_templates

COURSE = Path(sys.executable).with_name("course")
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)"
)


def assignment(prefix: str) -> nbformat.NotebookNode:
    """A small template: an import, a solution and a checked cell, ids from ``prefix``."""
    nb = new_notebook(
        cells=[
            new_code_cell(f"import math  # {prefix}"),
            new_code_cell(f"### BEGIN SOLUTION\n{prefix}_answer = 42\n### END SOLUTION"),
            new_code_cell(f"print({prefix}_answer)", metadata={"tags": [CHECK_TAG]}),
        ]
    )
    for index, cell in enumerate(nb.cells):
        cell.id = f"{prefix}{index:04d}"
    return nb


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """Two templates, ``first.ipynb`` and ``second.ipynb``."""
    folder = tmp_path / "templates"
    folder.mkdir()
    for name in ("first", "second"):
        nbformat.write(assignment(name), folder / f"{name}.ipynb")
    return folder


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Record the templates re-executed and the batch, instead of running either.

    The sandbox is taken to be there: these tests are about the command, not bubblewrap.
    """
    calls: dict[str, list] = {"templates": [], "unsafe": []}

    def reference(template: Template, limits: Any, unsafe: bool) -> tuple[Template, str]:
        calls["templates"].append(template.path.name)
        return template, ""

    def verify_all(paths: Sequence[Path], *args: Any, on_verdict: Any = None) -> list[Verdict]:
        calls["unsafe"].append(args[-1])
        verdicts = [Verdict(str(path), VERIFIED, "not run: a test") for path in paths]
        for verdict in verdicts:
            on_verdict(verdict)
        return verdicts

    monkeypatch.setattr(command, "with_reference", reference)
    monkeypatch.setattr(command, "verify_all", verify_all)
    monkeypatch.setattr(command, "sandbox_problem", lambda: None)  # bwrap or not
    monkeypatch.delenv(command.UNSAFE_ENV, raising=False)
    return calls


def glob_verify(folder: Path, templates: Path, *before_glob: str) -> subprocess.CompletedProcess:
    """``cd folder && course verify --template T --out O [before_glob] *`` in a real shell."""
    env = {key: value for key, value in os.environ.items() if key != command.UNSAFE_ENV}
    out = folder.parent / "grades" / "gradebook.csv"
    line = f"{COURSE} verify --template {templates} --out {out} {' '.join(before_glob)} *"
    return subprocess.run(
        line, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )


def hand_in(folder: Path, names: Sequence[str], nb: nbformat.NotebookNode) -> None:
    """Files of the given names in ``folder``, each holding ``nb``."""
    folder.mkdir(exist_ok=True)
    for name in names:
        nbformat.write(nb, folder / name)


# ------------------------------------------------------------------- class 9: file names


@needs_bwrap
def test_a_file_named_like_the_old_flag_cannot_switch_the_sandbox_off(
    tmp_path: Path, templates: Path
) -> None:
    folder = tmp_path / "submissions"
    hand_in(folder, ["--unsafe-no-sandbox", "first.ipynb"], assignment("first"))
    done = glob_verify(folder, templates)
    assert done.returncode == 2, done.stdout
    assert "--unsafe-no-sandbox is gone" in done.stderr and "rename it" in done.stderr
    assert not (tmp_path / "grades").exists(), "nothing was graded"


@needs_bwrap
def test_a_file_named_like_an_option_stops_the_command(tmp_path: Path, templates: Path) -> None:
    # The student's own notebook as the template: every check would agree with itself.
    folder = tmp_path / "submissions"
    hand_in(folder, ["--template=evil.ipynb", "evil.ipynb", "first.ipynb"], assignment("first"))
    done = glob_verify(folder, templates)
    assert done.returncode == 2, done.stdout
    assert "refusing to start: '--template=evil.ipynb'" in done.stderr
    assert "starts with '-'" in done.stderr
    assert not (tmp_path / "grades").exists(), "nothing was graded"


@needs_bwrap
def test_after_a_double_dash_such_a_file_is_refused_and_the_rest_graded(
    tmp_path: Path, templates: Path
) -> None:
    folder = tmp_path / "submissions"
    hand_in(folder, ["--unsafe-no-sandbox"], assignment("first"))
    (folder / "broken.ipynb").write_text("not a notebook")
    done = glob_verify(folder, templates, "--")
    assert done.returncode == 1, done.stderr
    with open(tmp_path / "grades" / "gradebook.csv", newline="") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    refused = rows["'--unsafe-no-sandbox"]  # a leading - gets the CSV's formula guard
    assert refused["status"] == INVALID and "file name starts with '-'" in refused["note"]
    assert rows["broken.ipynb"]["status"] == INVALID
    assert "Re-executing" not in done.stdout, "no template is needed by these two"
    assert "sandbox: bubblewrap" in (tmp_path / "grades" / "gradebook.md").read_text()


def test_the_unsafe_mode_is_an_environment_variable_with_a_warning(
    tmp_path: Path,
    templates: Path,
    no_runs: dict[str, list],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    hand_in(tmp_path / "subs", ["first.ipynb"], assignment("first"))
    out = tmp_path / "grades" / "gradebook.csv"
    argv = ["verify", str(tmp_path / "subs"), "--template", str(templates), "--out", str(out)]
    monkeypatch.setenv(command.UNSAFE_ENV, "1")
    assert cli.main(argv) == 0
    assert no_runs["unsafe"] == [True]
    assert "NO SANDBOX" in capsys.readouterr().err
    assert "sandbox: NONE (COURSE_VERIFY_UNSAFE=1)" in out.with_suffix(".md").read_text()
    monkeypatch.setenv(command.UNSAFE_ENV, "yes")
    assert cli.main(argv) == 2
    assert "set it to 1 (no sandbox) or unset it" in capsys.readouterr().err
    assert no_runs["unsafe"] == [True], "no second batch"


def test_stray_options_are_the_unnamed_dash_files(tmp_path: Path) -> None:
    for name in ("--out=x.csv", "-j9", "a.ipynb", "--given.ipynb"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "-folder").mkdir()
    (tmp_path / "-folder" / "b.ipynb").write_text("{}")
    named = [tmp_path / "--given.ipynb", tmp_path / "-folder" / "b.ipynb"]
    assert command.stray_options(tmp_path, named) == ["--out=x.csv", "-j9"]


# ------------------------------------------------------- class 10: one misnamed file


def test_a_misnamed_file_re_executes_only_its_template(
    tmp_path: Path, templates: Path, no_runs: dict[str, list]
) -> None:
    hand_in(tmp_path / "subs", ["Copy of second (2).ipynb"], assignment("second"))
    out = tmp_path / "grades" / "gradebook.csv"
    argv = ["verify", str(tmp_path / "subs"), "--template", str(templates), "--out", str(out)]
    assert cli.main(argv) == 0
    assert no_runs["templates"] == ["second.ipynb"]


def test_templates_needed_by_name_and_by_content(tmp_path: Path, templates: Path) -> None:
    known = load_templates(templates)
    hand_in(tmp_path, ["first.ipynb", "renamed.ipynb"], assignment("first"))
    (tmp_path / "junk.ipynb").write_text("[")
    paths = [tmp_path / name for name in ("first.ipynb", "renamed.ipynb", "junk.ipynb")]
    assert command.templates_needed(paths, known) == {"first.ipynb"}
    assert command.templates_needed(paths[2:], known) == set()
