"""`course verify`: re-execution of untrusted submissions in a sandbox, and the gradebook.

Most submissions are built from a tiny notebook that needs no PyTorch, so that each
verification takes seconds; one test uses a real course notebook.
"""

from __future__ import annotations

import copy
import csv
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.instructor import cli, verify
from course_utils.instructor.notebook_io import CHECK_TAG, is_checked
from course_utils.instructor.refresh import REFRESH_ENV
from course_utils.notebooks import execute_notebook, kernel_env
from course_utils.instructor.verify import (ERROR, INVALID, MEMORY, MISMATCH, RESULT_TAG, TIMEOUT,
                                 VERIFIED, Limits, Verdict, verify_all)

ROOT = Path(__file__).resolve().parent.parent
FAST = Limits(cell_timeout=30, notebook_timeout=120, memory_mb=1024)
ISOLATED = bool(verify.isolation_prefix())


def tiny_notebook() -> nbformat.NotebookNode:
    """Cell 2 is checked, cell 3 declares two key results."""
    return new_notebook(cells=[
        new_markdown_cell("# A tiny submission"),
        new_code_cell("value = 6 * 7"),
        new_code_cell("print('the answer is', value)", metadata={"tags": [CHECK_TAG]}),
        new_code_cell("print(f'answer: {value}')\nprint('accuracy: 0.93')",
                      metadata={"tags": [RESULT_TAG]}),
    ])


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The tiny notebook, executed top to bottom: a genuine submission."""
    nb = tiny_notebook()
    folder = tmp_path_factory.mktemp("executed")
    assert execute_notebook(nb, folder, 60, kernel_env({})) is None
    return nb


def submission(folder: Path, name: str, nb: nbformat.NotebookNode, *extra_cells: str) -> Path:
    """Write a copy of ``nb`` with ``extra_cells`` appended; return its path."""
    nb = copy.deepcopy(nb)
    nb.cells.extend(new_code_cell(source) for source in extra_cells)
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the sandboxes of this test land in a folder that the test can inspect."""
    folder = tmp_path / "sandboxes"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        if text in line:
            found.append(line)
    return found


def test_genuine_edited_and_reordered_submissions(executed: nbformat.NotebookNode,
                                                  tmp_path: Path) -> None:
    genuine = submission(tmp_path, "genuine.ipynb", executed)
    edited_nb = copy.deepcopy(executed)
    edited_nb.cells[2].outputs[0].text = "the answer is 43\n"
    edited = submission(tmp_path, "edited.ipynb", edited_nb)
    reordered_nb = copy.deepcopy(executed)
    reordered_nb.cells[1].execution_count, reordered_nb.cells[2].execution_count = 2, 1
    reordered = submission(tmp_path, "reordered.ipynb", reordered_nb)

    good, bad, shuffled = verify_all([genuine, edited, reordered], FAST, jobs=2)

    assert (good.status, good.in_order, good.errors) == (VERIFIED, "yes", [])
    assert good.results == {"answer": "42", "accuracy": "0.93"}
    assert good.row(["answer", "accuracy"])["result:accuracy"] == "0.93"
    assert good.network_isolated is ISOLATED
    assert good.wall_s is not None and good.wall_s > 0

    assert bad.status == MISMATCH
    assert "cell 2 (print('the answer is', value))" in bad.note
    assert bad.mismatched[0].diff == "-the answer is 43\n+the answer is 42"
    assert bad.row([])["mismatched_cells"] == "2"

    assert shuffled.status == VERIFIED
    assert shuffled.in_order == "no: cell 1 ran as [2], expected [1]"


def test_real_notebook_genuine_passes_and_hand_edit_fails(tmp_path: Path) -> None:
    source = sorted((ROOT / "notebooks").glob("*.ipynb"))[0]
    nb = nbformat.read(source, as_version=4)
    assert execute_notebook(nb, source.parent, 600, kernel_env(REFRESH_ENV)) is None
    genuine = submission(tmp_path, "genuine.ipynb", nb)
    index = next(i for i, cell in enumerate(nb.cells)
                 if is_checked(cell) and cell.outputs
                 and cell.outputs[0].output_type == "stream")
    first, *rest = nb.cells[index].outputs[0].text.split("\n", 1)
    nb.cells[index].outputs[0].text = "\n".join([first + " (edited)", *rest])
    edited = submission(tmp_path, "edited.ipynb", nb)

    good, bad = verify_all([genuine, edited], Limits(), jobs=2)

    assert good.status == VERIFIED, good.note
    assert good.checks and all(check.reproduces for check in good.checks)
    assert bad.status == MISMATCH
    assert [check.index for check in bad.mismatched] == [index]
    assert f"cell {index} (" in bad.note
    assert bad.mismatched[0].diff.startswith(f"-{first} (edited)\n+{first}")


def test_endless_loop_stopped_by_cell_time_limit(executed: nbformat.NotebookNode,
                                                 tmp_path: Path) -> None:
    looping = submission(tmp_path, "loop.ipynb", executed, "while True:\n    pass")
    [verdict] = verify_all([looping], Limits(cell_timeout=3, notebook_timeout=120))
    assert verdict.status == TIMEOUT
    assert verdict.note == "cell 4 exceeded the cell time limit (3 s)"
    assert verdict.results == {"answer": "42", "accuracy": "0.93"}, "cells before it ran"


@pytest.mark.parametrize("isolated", [True, False], ids=["namespaces", "no-namespaces"])
def test_endless_loop_stopped_by_notebook_time_limit(isolated: bool,
                                                     executed: nbformat.NotebookNode,
                                                     tmp_path: Path, sandboxes: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if isolated and not ISOLATED:
        pytest.skip("user namespaces are not available here")
    if not isolated:
        monkeypatch.setattr(verify, "isolation_prefix", lambda: ())
    looping = submission(tmp_path, "loop.ipynb", executed, "while True:\n    pass")
    [verdict] = verify_all([looping], Limits(cell_timeout=60, notebook_timeout=8))
    assert verdict.status == TIMEOUT
    assert verdict.note == "stopped by the notebook time limit (8 s) in cell 4"
    assert verdict.network_isolated is isolated
    assert 8 <= verdict.wall_s < 20
    # The kernel ran in a sandbox under `sandboxes`; nothing of it may survive.
    assert not processes_mentioning(str(sandboxes))
    assert not list(sandboxes.iterdir())


def test_unbounded_allocation_stopped_by_memory_limit(executed: nbformat.NotebookNode,
                                                      tmp_path: Path) -> None:
    hungry = submission(tmp_path, "hungry.ipynb", executed,
                        "blocks = []\nwhile True:\n    blocks.append(bytearray(10**8))")
    [verdict] = verify_all([hungry], Limits(cell_timeout=60, memory_mb=1024))
    assert verdict.status == MEMORY
    assert verdict.note == "cell 4 ran out of memory (limit 1024 MB): MemoryError"


def test_files_environment_and_network_stay_in_the_sandbox(
        executed: nbformat.NotebookNode, tmp_path: Path, sandboxes: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"verify-probe-{uuid.uuid4().hex}"
    monkeypatch.setenv("COURSE_TEST_SECRET", "do not leak")
    probe = submission(tmp_path, "probe.ipynb", executed, f"""\
import errno, os, socket
open({name!r}, "w").write("relative")
open(os.path.expanduser("~/{name}"), "w").write("home")
print("relative_file:", os.path.abspath({name!r}))
print("home_file:", os.path.expanduser("~/{name}"))
print("secret:", os.environ.get("COURSE_TEST_SECRET", "absent"))
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2).close()
    print("network: reachable")
except OSError as exc:
    print("network:", "unreachable" if exc.errno == errno.ENETUNREACH else "other error")
""")
    nb = nbformat.read(probe, as_version=4)
    nb.cells[-1].metadata["tags"] = [RESULT_TAG]
    nbformat.write(nb, probe)

    [verdict] = verify_all([probe], FAST)

    assert verdict.status == VERIFIED, verdict.note
    for key in ("relative_file", "home_file"):
        assert verdict.results[key].startswith(str(sandboxes) + "/"), verdict.results[key]
    assert verdict.results["secret"] == "absent"
    if ISOLATED:
        assert verdict.results["network"] == "unreachable"
    for folder in (Path.cwd(), ROOT, Path.home(), tmp_path):
        assert not (folder / name).exists(), folder
    assert not list(sandboxes.iterdir()), "the sandbox is deleted afterwards"


def test_cli_grades_good_submissions_next_to_broken_files(executed: nbformat.NotebookNode,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "submissions"
    folder.mkdir()
    good = submission(folder, "good.ipynb", executed)
    failing = submission(tmp_path, "failing.ipynb", executed, "1 / 0")
    truncated = tmp_path / "truncated.ipynb"
    truncated.write_text(good.read_text()[:200])
    text = tmp_path / "notes.txt"
    text.write_text("my answers are in the PDF")
    missing = tmp_path / "missing.ipynb"
    out = tmp_path / "grades" / "gradebook.csv"

    code = cli.main(["verify", str(truncated), str(folder), str(text), str(failing),
                        str(missing), "--out", str(out), "-j", "2", "--memory-mb", "1024"])

    assert code == 1
    with open(out, newline="") as handle:
        rows = {Path(row["submission"]).name: row for row in csv.DictReader(handle)}
    assert list(rows) == ["truncated.ipynb", "good.ipynb", "notes.txt", "failing.ipynb",
                          "missing.ipynb"]
    assert rows["good.ipynb"]["status"] == VERIFIED
    assert rows["good.ipynb"]["result:answer"] == "42"
    assert rows["failing.ipynb"]["status"] == ERROR
    assert "cell 4: ZeroDivisionError: division by zero" in rows["failing.ipynb"]["note"]
    for name in ("truncated.ipynb", "notes.txt"):
        assert rows[name]["status"] == INVALID
        assert rows[name]["note"] == ("not a notebook: the file is not JSON "
                                      "(truncated, or another format)")
    assert rows["missing.ipynb"]["status"] == INVALID
    assert "No such file" in rows["missing.ipynb"]["note"]

    report = out.with_suffix(".md").read_text()
    assert f"## {good}: verified" in report
    assert f"| {truncated} | INVALID |" in report


def test_report_shows_stored_and_fresh_results() -> None:
    verdict = Verdict("a.ipynb", VERIFIED, "all 1 checked cells reproduce", in_order="yes",
                      stored_results={"accuracy": "0.91"}, results={"accuracy": "0.93"},
                      wall_s=1.0, network_isolated=True)
    report = verify.markdown_report([verdict], Limits())
    assert "accuracy = 0.93 (stored: 0.91)" in report
    assert "profile smoke, 120 s per cell, 900 s per notebook, 4096 MB memory" in report
