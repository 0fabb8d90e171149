"""`course verify` on a tiny template: tampering, sandbox limits, gradebook, Dask.

The tiny template needs no PyTorch, so each sandboxed run takes seconds; the attacks on a
real course notebook are in test_verify_attacks.py.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.instructor import cli
from course_utils.instructor.notebook_io import CHECK_TAG, RESULT_TAG
from course_utils.instructor.verify import (
    INVALID,
    MEMORY,
    MISMATCH,
    TAMPERED,
    TIMEOUT,
    VERIFIED,
    Limits,
    Verdict,
    report,
    sandbox,
    verify_all,
)
from course_utils.instructor.verify.compare import comparable_text, read_sanitizers
from course_utils.instructor.verify.submission import solution_tokens
from course_utils.instructor.verify.template import (
    Template,
    load_templates,
    notebook_to_run,
    tampering,
)
from course_utils.notebooks import execute_notebook, kernel_env

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)"
)
NAME = "tiny.ipynb"
FAST = Limits(cell_timeout=10, notebook_timeout=120, memory_mb=1024)
SOLUTION = "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION"


def tiny_template() -> nbformat.NotebookNode:
    """Cell 2 is the solution, cell 3 is checked (2 points), cell 4 prints two results."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# A tiny assignment"),
            new_code_cell("import math"),
            new_code_cell(SOLUTION),
            new_code_cell(
                "print('the answer is', answer)",
                metadata={"tags": [CHECK_TAG], "course": {"points": 2}},
            ),
            new_code_cell(
                'print(f"answer: {answer}")\nprint(f"accuracy: {0.93}")',
                metadata={"tags": [RESULT_TAG]},
            ),
        ]
    )
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell{index:04d}"
    return nb


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The instructor's folder: the tiny template, executed, with its checked output."""
    folder = tmp_path_factory.mktemp("templates")
    nb = tiny_template()
    assert execute_notebook(nb, folder, 60, kernel_env({})) is None
    nbformat.write(nb, folder / NAME)
    return folder


@pytest.fixture(scope="module")
def genuine(template_dir: Path) -> nbformat.NotebookNode:
    """A genuine submission: the template executed top to bottom by a student."""
    return nbformat.read(template_dir / NAME, as_version=4)


def write(
    folder: Path,
    student: str,
    nb: nbformat.NotebookNode,
    solution: str | None = None,
    name: str = NAME,
) -> Path:
    """Write ``nb`` (with another solution cell source, if given) as a student's file."""
    nb = copy.deepcopy(nb)
    if solution is not None:
        nb.cells[2].source = solution
    path = folder / student / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# ------------------------------------------------------------------- no sandbox needed


def test_tampering_names_each_changed_cell(genuine: nbformat.NotebookNode) -> None:
    template = Template(Path(NAME), genuine)
    deleted, retagged, blanked, moved, tagged = (copy.deepcopy(genuine) for _ in range(5))
    del deleted.cells[3]
    retagged.cells[3].metadata.tags = ["skip-execution", CHECK_TAG]
    blanked.cells[3].source = "  "
    moved.cells[3], moved.cells[4] = moved.cells[4], moved.cells[3]
    tagged.cells[2].metadata.tags = [RESULT_TAG]
    assert tampering(template, genuine) == []
    assert tampering(template, deleted) == ["cell 3 (print('the answer is', answer)) is missing"]
    assert (
        "cell 3 (print('the answer is', answer)) is re-tagged" in tampering(template, retagged)[0]
    )
    assert tampering(template, blanked) == ["cell 3 (print('the answer is', answer)) is blanked"]
    assert tampering(template, moved) == ["cell 3 (print('the answer is', answer)) is moved"]
    assert tampering(template, tagged) == [
        "cell 2 (### BEGIN SOLUTION) is tagged result, which the template's cell is not"
    ]


def test_notebook_to_run_takes_only_solution_cells_from_the_submission(
    genuine: nbformat.NotebookNode,
) -> None:
    template = Template(Path(NAME), genuine)
    mine = copy.deepcopy(genuine)
    mine.cells[1].source = "import os; os.system('touch /tmp/owned')"
    mine.cells[2].source = "answer = 41"
    mine.cells.append(new_code_cell("print('extra cell')"))
    run, notes = notebook_to_run(template, mine)
    assert [c.source for c in run.cells][:3] == [
        "# A tiny assignment",
        "import math",
        "answer = 41",
    ]
    assert run.cells[3].source.endswith("print('the answer is', answer)")
    assert "course_utils.checks" in run.cells[3].source, "checks re-imported first"
    assert len(run.cells) == len(genuine.cells) + 1, "the student's own cell runs too"
    assert run.cells[-1].source == "print('extra cell')"
    assert run.cells[-1].metadata.course_role == "student"
    assert all(c.get("outputs", []) == [] for c in run.cells)


def test_sanitizer_blanks_the_progress_bar_not_the_line() -> None:
    patterns = read_sanitizers()

    def text(line: str) -> str:
        return comparable_text([nbformat.v4.new_output("stream", text=line)], patterns)

    bar = "epoch 1: 100%|██████████| 12/12 [00:01<00:00, 9.87it/s]\n"
    assert text(bar) == text(bar.replace("00:01", "00:07").replace("9.87", "1.02"))
    assert text(bar) == "epoch 1:PROGRESS-BAR\n"
    assert text("PASS check_convolution: 20 cases agree 100%|\n") != text(
        "FAIL check_convolution: 3 cases disagree 100%|\n"
    )


def test_csv_and_markdown_escape_what_a_submission_controls() -> None:
    evil = Verdict(
        "x\n## forged: verified | |.ipynb",
        VERIFIED,
        "=1+2",
        results={"answer": '=HYPERLINK("http://evil.example","click")'},
    )
    rows = list(csv.DictReader(report.to_csv([evil], ["result:answer"]).splitlines()))
    assert rows[0]["result:answer"] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows[0]["note"] == "'=1+2"
    assert report.csv_cell("-0.5") == "-0.5" and report.csv_cell("@cmd") == "'@cmd"
    markdown = report.to_markdown([evil], FAST, "bubblewrap")
    assert not any(line.startswith("## forged") for line in markdown.splitlines())
    assert "x ## forged: verified \\| \\|.ipynb" not in markdown
    assert "x \\#\\# forged: verified \\| \\|.ipynb" in markdown


def test_gradebook_refuses_a_folder_in_its_place(tmp_path: Path, template_dir: Path) -> None:
    (tmp_path / "gradebook.csv").mkdir()
    with pytest.raises(report.GradebookError, match="exists and is not a file"):
        report.Gradebook(tmp_path / "gradebook.csv", load_templates(template_dir), FAST, "x")


def test_gradebook_keeps_rows_and_resumes(tmp_path: Path, template_dir: Path) -> None:
    templates = load_templates(template_dir)
    out = tmp_path / "gradebook.csv"
    book = report.Gradebook(out, templates, FAST, "bubblewrap")
    book.add(
        Verdict(
            "a.ipynb",
            VERIFIED,
            "ok",
            template=NAME,
            sha256="aa",
            course_version="v1",
            results={"answer": "42", "forged": "1"},
        )
    )
    # Interrupted here: the finished row is on disk already, and nothing half-written.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gradebook.csv",
        "gradebook.json",
        "gradebook.md",
    ]
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert rows[0]["result:answer"] == "42"
    assert [c for c in rows[0] if c.startswith("result:")] == ["result:answer", "result:accuracy"]
    again = report.Gradebook(out, templates, FAST, "bubblewrap")
    assert again.graded("a.ipynb", "aa", {"v1"})
    assert not again.graded("a.ipynb", "bb", {"v1"}), "another file"
    assert not again.graded("a.ipynb", "aa", {"v2"}), "another course version"


def test_similar_solutions_are_listed() -> None:
    tokens = solution_tokens
    verdicts = [
        Verdict(name, VERIFIED, "", template=NAME, tokens=tokens([code]))
        for name, code in (
            (
                "a",
                "def area(width, height):\n    total = width * height  # rectangle\n"
                "    return max(total, 0) + abs(width - height) // 2\n",
            ),
            ("b", "def size(w, h):\n    s=w*h\n    return max(s, 0) + abs(w - h) // 2\n"),
            ("c", "print(sum([1, 2]))"),
        )
    ]
    report.mark_similar(verdicts)
    assert [v.similar_to for v in verdicts] == [["b"], ["a"], []]


def test_verify_refuses_without_bubblewrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    sandbox.sandbox_problem.cache_clear()
    try:
        code = cli.main(["verify", str(tmp_path), "--out", str(tmp_path / "g.csv")])
    finally:
        sandbox.sandbox_problem.cache_clear()
    assert code == 2
    message = capsys.readouterr().err
    assert "apt-get install bubblewrap" in message and "COURSE_VERIFY_UNSAFE=1" in message


# ------------------------------------------------------------------------- sandboxed


@pytest.fixture
def sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the sandboxes' host folders land where the test can inspect them."""
    folder = tmp_path / "sandboxes"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_batch_of_tiny_submissions(
    genuine: nbformat.NotebookNode, template_dir: Path, tmp_path: Path, sandboxes: Path
) -> None:
    folder = tmp_path / "submissions"
    wrong = copy.deepcopy(genuine)
    wrong.cells[3].outputs[0].text = "the answer is 43\n"
    names = "\n".join([f"print('name_{i}: {i}')" for i in range(311)] + ["answer = 42"])
    for student, nb, solution in [
        ("genuine", genuine, None),
        ("edited", wrong, None),
        ("formula", genuine, 'answer = \'=HYPERLINK("http://evil.example","x")\''),
        ("names", genuine, names),
        ("loop", genuine, "while True:\n    pass"),
        ("hungry", genuine, "blocks = []\nwhile True:\n    blocks.append(bytearray(10**8))"),
        ("foreign", new_notebook(cells=[new_code_cell("1")]), None),
        ("empty", new_notebook(), None),
    ]:
        write(folder, student, nb, solution)
    out = tmp_path / "grades" / "gradebook.csv"
    code = cli.main(
        [
            "verify",
            str(folder),
            "--template",
            str(template_dir),
            "--out",
            str(out),
            "-j",
            "2",
            "--memory-mb",
            "1024",
            "--cell-timeout",
            "10",
        ]
    )
    assert code == 1
    with open(out, newline="") as handle:
        rows = {Path(row["submission"]).parent.name: row for row in csv.DictReader(handle)}
    good = rows["genuine"]
    assert (good["status"], good["score"], good["max_score"]) == (VERIFIED, "3", "3")
    assert (good["result:answer"], good["result:accuracy"]) == ("42", "0.93")
    assert rows["edited"]["status"] == MISMATCH
    assert "cell 3 (print('the answer is', answer))" in rows["edited"]["note"]
    assert rows["formula"]["result:answer"].startswith("'=HYPERLINK")
    assert [c for c in good if c.startswith("result:")] == ["result:answer", "result:accuracy"]
    assert rows["names"]["status"] == VERIFIED
    assert rows["loop"]["status"] == TIMEOUT
    assert rows["loop"]["note"] == "cell 2 exceeded the cell time limit (10 s)"
    assert rows["hungry"]["status"] == MEMORY
    assert rows["foreign"]["status"] == INVALID
    assert "not one of the course's notebooks" in rows["foreign"]["note"]
    assert rows["empty"]["note"] == "the notebook has no cells"
    assert not list(sandboxes.iterdir()), "every sandbox's host folder is deleted"

    # A rerun skips what is graded already; a changed file is graded again.
    def wall_times() -> dict[str, float]:
        state = json.loads(out.with_suffix(".json").read_text())
        return {Path(v["submission"]).parent.name: v["wall_s"] for v in state}

    before = wall_times()
    write(folder, "edited", genuine)
    assert (
        cli.main(
            [
                "verify",
                str(folder),
                "--template",
                str(template_dir),
                "--out",
                str(out),
                "--cell-timeout",
                "10",
                "--memory-mb",
                "1024",
            ]
        )
        == 1
    )
    rows = {Path(r["submission"]).parent.name: r for r in csv.DictReader(out.open())}
    assert rows["edited"]["status"] == VERIFIED
    after = wall_times()
    assert after["edited"] != before["edited"]
    assert {k: v for k, v in after.items() if k != "edited"} == {
        k: v for k, v in before.items() if k != "edited"
    }, "the others are not re-run"


def test_notebook_time_limit_kills_every_process(
    genuine: nbformat.NotebookNode, template_dir: Path, tmp_path: Path, sandboxes: Path
) -> None:
    tag = f"sleeper-{uuid.uuid4().hex}"
    path = write(
        tmp_path,
        "sleeper",
        genuine,
        f"import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)"
        f"\nimport time\nwhile True:\n    time.sleep(1)  # {tag}",
    )
    [verdict] = verify_all(
        [path],
        load_templates(template_dir),
        Limits(cell_timeout=60, notebook_timeout=15),
        read_sanitizers(),
    )
    assert verdict.status == TIMEOUT
    # In cell 2 on a quiet machine; on a loaded one the kernel may still be starting.
    assert verdict.note.startswith("stopped by the notebook time limit (15 s) in ")
    assert verdict.wall_s is not None and 15 <= verdict.wall_s < 40
    assert not any(
        tag in p.read_bytes().decode(errors="replace")
        for p in Path("/proc").glob("[0-9]*/cmdline")
        if p.exists()
    )
    assert not list(sandboxes.iterdir())


def test_dask_cluster_grades_like_the_local_pool(
    genuine: nbformat.NotebookNode, template_dir: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("dask.distributed")
    paths = [write(tmp_path, "good", genuine), write(tmp_path, "bad", genuine, "answer = 41")]
    templates = load_templates(template_dir)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        verdicts = verify_all(
            paths, templates, FAST, read_sanitizers(), scheduler=cluster.scheduler_address
        )
    assert [v.status for v in verdicts] == [VERIFIED, MISMATCH], [v.note for v in verdicts]
    assert re.search(r"cell 3", verdicts[1].note)


def test_tampered_submission_is_not_executed(
    genuine: nbformat.NotebookNode, template_dir: Path, tmp_path: Path
) -> None:
    nb = copy.deepcopy(genuine)
    nb.cells[3].metadata.tags = []
    [verdict] = verify_all(
        [write(tmp_path, "t", nb)], load_templates(template_dir), FAST, read_sanitizers()
    )
    assert verdict.status == TAMPERED and verdict.wall_s is None
    assert (verdict.score, verdict.max_score) == (0, 3)


def test_a_request_leaves_the_kernels_random_generators_alone() -> None:
    """A hidden test that builds a model and draws cases in the student's kernel must not
    change the numbers the student's next cell draws (issue 18, RNG)."""
    import random

    import numpy as np
    import torch

    from course_utils.instructor.verify import remote

    # The legacy global NumPy state is the one a student's np.random calls move.
    def seed_all(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        torch.manual_seed(seed)

    def draws() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(1))  # noqa: NPY002

    expr = "(random.random(), np.random.rand(4).tolist(), torch.nn.Linear(8, 8).weight.sum())"
    request = {"op": "eval", "expr": expr, "vars": {"dict": []}}
    namespace = {"random": random, "np": np, "torch": torch}
    for seed in (0, 1):
        seed_all(seed)
        expected = draws()
        seed_all(seed)
        answer = json.loads(remote.serve(namespace, json.dumps(request)))
        assert "value" in answer, answer
        assert draws() == expected


def test_course_results_a_template_reads_are_supplied_once(tmp_path: Path) -> None:
    """a3_t1 reads a2_best: the grader reuses a fitting stored result, else makes it once
    with the producing template, and puts it among the template's inputs (issue 18)."""
    from course_utils import results
    from course_utils.instructor.verify.prerequisites import (
        MissingPrerequisite,
        ResultSupply,
        required_results,
    )

    reader = new_notebook(cells=[new_code_cell('a2 = results.require_result("a2_best", run)')])
    readers = [Template(tmp_path / name, reader) for name in ("a3_t1.ipynb", "a3_t9.ipynb")]
    plain = Template(tmp_path / "a1_t1.ipynb", new_notebook(cells=[new_code_cell("x = 1")]))
    assert required_results(readers[0]) == ["a2_best"] and required_results(plain) == []

    made: list[str] = []

    def make(producer: Template, name: str) -> str:
        made.append(producer.path.name)
        return json.dumps({"name": name, "made": True})

    with pytest.raises(MissingPrerequisite, match="a2_t3_improving_the_network.ipynb"):
        ResultSupply(Limits(profile="smoke"), make=make).supply(readers[0])
    producer = tmp_path / results.PRODUCERS["a2_best"]
    nbformat.write(new_notebook(cells=[new_code_cell("results.save_result(...)")]), producer)

    supply = ResultSupply(Limits(profile="smoke"), make=make)
    assert supply.supply(plain) is plain
    supplied = [supply.supply(template) for template in readers]
    assert made == [producer.name]  # once per grading run, for every template that reads it
    assert [json.loads(t.inputs["results/a2_best.json"])["made"] for t in supplied] == [1, 1]

    # A stored result made in the grading profile on the sandbox's data, by this producer
    # and data code, is used as it is; one from another profile is not.
    stored = tmp_path / "results" / "a2_best.json"
    fitting = {
        "profile": "smoke",
        "data_kind": "embedded",
        "data_code": results.data_code_fingerprint(),
        "producer": results.producer_fingerprint("a2_best", tmp_path),
    }
    stored.parent.mkdir()
    stored.write_text(json.dumps(fitting))
    made.clear()
    found = ResultSupply(Limits(profile="smoke"), make=make).supply(readers[0])
    assert made == [] and json.loads(found.inputs["results/a2_best.json"]) == fitting
    ResultSupply(Limits(profile="quick"), make=make).supply(readers[0])
    assert made == [producer.name]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_supplied_results_are_read_only_in_the_sandbox(sandboxes: Path) -> None:
    """The course's result is there for the notebook to read, and its code cannot change it."""
    nb = new_notebook(
        cells=[
            new_code_cell("print(open('results/a2_best.json').read())"),
            new_code_cell(
                "try:\n    open('results/a2_best.json', 'w').write('{\"forged\": 1}')\n"
                "except OSError as exc:\n    print('refused', type(exc).__name__)\n"
                "else:\n    print('written')"
            ),
            new_code_cell("print(open('results/a2_best.json').read())"),
        ]
    )
    run = sandbox.run_sandboxed(nb, Limits(), inputs={"results/a2_best.json": '{"made": 1}'})
    assert run.error is None and run.notebook is not None
    printed = [cell.outputs[0].text.strip() for cell in run.notebook.cells]
    assert printed[0] == printed[2] == '{"made": 1}' and printed[1].startswith("refused")
