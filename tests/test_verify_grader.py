"""Grading in the grader's process: data between grader and kernel, grader-side cells,
hidden tests, written answers and figures.

The first tests need no sandbox (the codec, the proxy against a kernel-side server in this
process); the others grade a tiny template with hidden tests in the real sandbox. The
attacks on a real course notebook are in test_verify_attacks.py.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.instructor.notebook_io import CHECK_TAG, RESULT_TAG
from course_utils.instructor.verify import ERROR, VERIFIED, Limits, codec, remote, verify_all
from course_utils.instructor.verify.batch import figures, is_png, with_reference
from course_utils.instructor.verify.compare import read_sanitizers
from course_utils.instructor.verify.grader import Grader, captured
from course_utils.instructor.verify.proxy import Channel, Remote, Student, StudentError
from course_utils.instructor.verify.template import load_templates
from course_utils.notebooks import execute_notebook, kernel_env

NAME = "hidden.ipynb"
FAST = Limits(cell_timeout=20, notebook_timeout=180, memory_mb=1024)
HIDDEN_TAG = "hidden-test"
GRADER_MARK = "COURSE_TEST_GRADER_SIDE"


# --------------------------------------------------------- data only, no sandbox needed


def test_codec_round_trips_data_and_refuses_everything_else() -> None:
    value = {
        "a": [1, 2.5, None, True, "x", float("inf")],
        (1, 2): np.arange(6, dtype=np.int16).reshape(2, 3),
        "t": torch.ones(2, 2),
    }
    back = codec.loads(codec.dumps(value))
    assert back["a"][:5] == [1, 2.5, None, True, "x"] and back["a"][5] == float("inf")
    assert back[(1, 2)].dtype == np.int16 and back[(1, 2)].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert isinstance(back["t"], torch.Tensor) and back["t"].sum() == 4
    for hostile in (
        '{"ndarray": {"dtype": "|O", "shape": [1], "data": ""}}',  # objects: never
        '{"ndarray": {"dtype": "<f8", "shape": [1000000], "data": ""}}',  # bytes != shape
        '{"pickle": "gASVBQAAAAAAAACMAXiULg=="}',
        '{"handle": [1, "f"]}',  # a handle where none is expected
        "[1, 2]",  # a raw list: only tagged containers are data
        "{" * 100_000,
    ):
        with pytest.raises(codec.NotData):
            codec.loads(hostile)
    with pytest.raises(codec.NotData, match="function is not data"):
        codec.dumps(lambda: 1)


def local_student(namespace: dict) -> Student:
    """A proxy whose 'kernel' is :func:`remote.serve` on ``namespace`` in this process."""
    return Student(Channel(lambda payload: remote.serve(namespace, json.dumps(payload))))


def test_proxy_fetches_calls_and_evaluates_as_data() -> None:
    namespace: dict = {}
    exec(
        "import numpy as np\nimport torch\nwidths = [24, 20]\n"
        "def scale(a, by=2):\n    return a * by\n"
        "net = torch.nn.Linear(3, 2)\n",
        namespace,
    )
    student = local_student(namespace)
    assert student.widths == [24, 20]
    assert isinstance(student.scale, Remote)
    assert student.scale(np.arange(3), by=3).tolist() == [0, 3, 6]
    assert student.eval("sum(p.numel() for p in net.parameters())") == 8
    assert student.eval("w[0] + x", w=student.widths, x=1) == 25
    assert [tuple(p.shape) for p in student.net.parameters()] == [(2, 3), (2,)]
    with pytest.raises(StudentError, match="NameError"):
        _ = student.missing
    with pytest.raises(StudentError, match="ZeroDivisionError"):
        student.eval("1 / 0")
    with pytest.raises(codec.NotData, match="cannot be sent"):
        student.scale(print)  # nothing of the grader's goes into the kernel


@pytest.mark.parametrize(
    "answer",
    [
        "[" * 100_000,  # too deep for the JSON parser
        '{"value": ' + '{"list": [' * 50 + "]}" * 50 + "}",  # too deep for the codec
        '{"error": "not a pair"}',
        '{"value": 1, "and": "more"}',
        '{"value": {"handle": [1]}}',
    ],
)
def test_a_hostile_kernel_answer_is_refused(answer: str) -> None:
    with pytest.raises(codec.NotData):
        _ = Student(Channel(lambda payload: answer)).anything


def test_graded_cell_uses_the_graders_names_not_the_students() -> None:
    """The student's ``checks`` and ``np`` are not the grader's: its own imports are."""
    namespace: dict = {}
    exec(
        "import types\nimport numpy as np\n"
        "def convolve2d(image, kernel, padding):\n    return np.zeros((1, 1))\n"
        "checks = types.SimpleNamespace(check_convolution=lambda f: print('PASS forged'))\n",
        namespace,
    )
    template = new_notebook(cells=[new_code_cell("from course_utils import checks")])
    grader = Grader(template, Channel(lambda p: remote.serve(namespace, json.dumps(p))), "")
    outcome = grader.run_graded("checks.check_convolution(convolve2d)")
    assert outcome.error is not None and outcome.error.startswith("CheckFailed"), outcome
    assert "PASS" not in outcome.text
    assert grader.run_graded("print(sum(range(4)))").text == "6\n"


def test_printing_is_captured_per_thread() -> None:
    with captured() as out:
        print("graded")
    assert out.getvalue() == "graded\n"


def test_figures_keep_only_png_data_and_say_where() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 10).decode()
    run = new_notebook(
        cells=[
            new_code_cell("a", metadata={"course_template_id": "t1"}),
            new_code_cell(
                "b",
                outputs=[
                    nbformat.v4.new_output("display_data", data={"image/png": png}),
                    nbformat.v4.new_output("display_data", data={"image/png": "PHN2Zz4="}),
                ],
            ),
        ]
    )
    run.cells[1].id = "mine"
    assert figures(run) == [{"cell": "mine", "after": "t1", "png": png}]
    assert not is_png("x" * (2**20 + 1))


# ------------------------------------------------------------------------- sandboxed

pytestmark_sandbox = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)"
)


def hidden_template() -> nbformat.NotebookNode:
    """A solution, a checked cell, a result cell, two hidden tests and a written answer."""
    nb = new_notebook(
        cells=[
            new_code_cell("import numpy as np\nfrom course_utils import checks"),
            new_code_cell("### BEGIN SOLUTION\ndef double(x):\n    return 2 * x\n### END SOLUTION"),
            new_code_cell(
                "print('double(21) =', double(21))",
                metadata={"tags": [CHECK_TAG], "course": {"points": 2}},
            ),
            new_code_cell(
                "import os\n"
                f"assert os.environ.get({GRADER_MARK!r}) == 'grader'  # runs in the grader\n"
                "x = rng.integers(-1000, 1000, size=5)\n"
                "assert np.array_equal(student.double(x), 2 * x), 'SECRET-EXPECTED'\n"
                "assert 'np.multiply' not in submission_code\n",
                metadata={
                    "tags": [HIDDEN_TAG, "skip-execution"],
                    "course": {"points": 3, "name": "double on fresh cases"},
                },
            ),
            new_code_cell(
                'print(f"doubled: {double(50)}")',
                metadata={"tags": [RESULT_TAG]},
            ),
            new_markdown_cell(
                "**Question.** Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
            ),
            new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"),
        ]
    )
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell{index:04d}"
    return nb


@pytest.fixture(scope="module")
def hidden_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("templates")
    nb = hidden_template()
    assert execute_notebook(nb, folder, 60, kernel_env({})) is None
    nbformat.write(nb, folder / NAME)
    return folder


def handed_out(folder: Path) -> nbformat.NotebookNode:
    """The template executed, without its hidden test, as a student's notebook has it."""
    nb = nbformat.read(folder / NAME, as_version=4)
    nb.cells = [cell for cell in nb.cells if HIDDEN_TAG not in cell.metadata.get("tags", [])]
    return nb


def cell_by_id(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(cell for cell in nb.cells if cell.get("id") == cell_id)


def submit(folder: Path, student: str, nb: nbformat.NotebookNode) -> Path:
    path = folder / student / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytestmark_sandbox
def test_hidden_tests_run_grader_side_on_fresh_cases(
    hidden_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GRADER_MARK, "grader")  # the grader's environment, not the kernel's
    genuine = handed_out(hidden_dir)
    memorised = copy.deepcopy(genuine)  # right on the visible case and the result only
    cell_by_id(
        memorised, "cell0001"
    ).source = "def double(x):\n    return {21: 42, 50: 100}.get(x, 0)"
    library = copy.deepcopy(genuine)
    cell_by_id(library, "cell0001").source = "def double(x):\n    return np.multiply(x, 2)"
    answered = copy.deepcopy(genuine)
    cell_by_id(answered, "cell0005").source = "**Question.** Why?\n\nMy own reasons."
    paths = [
        submit(tmp_path, name, nb)
        for name, nb in (("honest", answered), ("memorised", memorised), ("library", library))
    ]
    [template] = load_templates(hidden_dir)
    reference, warning = with_reference(template, FAST)
    assert warning == "" and reference.reference is not None
    honest, memorised_verdict, library_verdict = verify_all(
        paths, [reference], FAST, read_sanitizers()
    )
    assert honest.status == VERIFIED, honest.note
    assert (honest.score, honest.max_score) == (6, 6), honest.checks
    [hidden] = [c for c in honest.checks if c.kind == "hidden"]
    assert (hidden.title, hidden.points, hidden.passed) == ("double on fresh cases", 3, True)
    assert honest.results == {"doubled": "100"}
    assert honest.answers == {"cell0005": "My own reasons."}
    assert [(f["cell"], f["after"]) for f in honest.figures] == [("cell0006", "cell0005")]
    for verdict in (memorised_verdict, library_verdict):
        assert verdict.status == VERIFIED, verdict.note  # outputs reproduce ...
        assert verdict.score == 3, "... but the hidden test fails (3 of 6 points)"
        assert "hidden test (double on fresh cases)" in verdict.note
        assert "SECRET-EXPECTED" not in json.dumps([c.__dict__ for c in verdict.checks])
        assert "SECRET-EXPECTED" not in verdict.note


@pytestmark_sandbox
def test_shadowed_print_and_custom_exception_handler_gain_nothing(
    hidden_dir: Path, tmp_path: Path
) -> None:
    """Class 3 in miniature: the student's kernel rewrites what the template's cells print."""
    forger = handed_out(hidden_dir)
    cell_by_id(forger, "cell0001").source = (
        "import builtins\n_print = builtins.print\n"
        "def double(x):\n    return 0\n"
        "def print(*args, **kwargs):\n"
        "    text = ' '.join(map(str, args))\n"
        "    if text.startswith('double(21)'):\n        args = ('double(21) =', 42)\n"
        "    if text.startswith('doubled:'):\n        args = ('doubled: 999999',)\n"
        "    _print(*args, **kwargs)\n"
        "builtins.print = print\n"
        "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)\n"
    )
    [template] = load_templates(hidden_dir)
    [verdict] = verify_all(
        [submit(tmp_path, "forger", forger)], [template], FAST, read_sanitizers()
    )
    assert verdict.status == VERIFIED, verdict.note  # the kernel printed what was stored
    # Only the result cell earns its point: it reports the true value, not the forged one.
    assert verdict.score == 1, [(c.title, c.passed) for c in verdict.checks]
    assert verdict.results == {"doubled": "0"}
    assert os.environ.get(GRADER_MARK) is None


@pytestmark_sandbox
def test_a_kernel_that_dies_fails_the_grader_side_cells_without_a_hang(
    hidden_dir: Path, tmp_path: Path
) -> None:
    dying = handed_out(hidden_dir)
    cell_by_id(
        dying, "cell0001"
    ).source = (
        "def double(x):\n    return 2 * x\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    path = submit(tmp_path, "dying", dying)
    [verdict] = verify_all([path], load_templates(hidden_dir), FAST, read_sanitizers())
    assert verdict.status == ERROR and "cell 1" in verdict.note, verdict.note
    assert verdict.score == 0 and verdict.wall_s is not None
    assert verdict.wall_s < FAST.cell_timeout + 30, "the hidden test did not wait on a dead kernel"


def test_a_failed_visible_check_keeps_its_hint_for_the_feedback_page() -> None:
    from course_utils.instructor.verify.compare import grade_cells
    from course_utils.instructor.verify.grader import Outcome
    from course_utils.instructor.verify.template import Template

    nb = new_notebook(
        cells=[
            new_code_cell("checks.check_convolution(convolve2d)", metadata={"tags": [CHECK_TAG]}),
        ]
    )
    nb.cells[0].id = "conv"
    template = Template(Path("t.ipynb"), nb)
    hint = "CheckFailed: position (1, 2) differs: did you flip the kernel?"
    [check] = grade_cells(template, {}, None, [], graded={"conv": Outcome("", hint)})
    assert (check.passed, check.hint) == (False, hint)
    [check] = grade_cells(template, {}, None, [], graded={"conv": Outcome("PASS\n", None)})
    assert check.hint == ""
