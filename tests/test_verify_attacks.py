"""Dishonest, careless and hostile submissions of a real course notebook, graded in one batch.

Every submission starts from one genuine execution of a1_t1 (a student's honest work),
then changes what the attack needs. All of them go through one `course verify` run with
two jobs; each test reads its row, and checks that nothing outside the sandbox changed.
The template gets one result cell at its end (a1_t1 has none), so that a forged key
result has something to forge. The classes of issue 18 are each one submission:
a forged result channel (1), re-imported checks (2), the template's cells rewritten in
the kernel (3: an input transformer, a custom exception handler, a shadowed print),
a patched oracle (4) and the instructor's answers stolen into the report (6).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from course_utils.instructor import cli
from course_utils.instructor.notebook_io import CHECK_TAG, is_checked
from course_utils.instructor.verify import ERROR, INVALID, MEMORY, MISMATCH, TAMPERED, VERIFIED
from course_utils.instructor.verify.cgroups import Cgroup

pytestmark = [
    pytest.mark.slow,  # executes a1_t1 and grades a batch of attacks in the sandbox
    pytest.mark.skipif(
        shutil.which("bwrap") is None,
        reason="bubblewrap is not installed (apt-get install bubblewrap)",
    ),
]
ROOT = Path(__file__).resolve().parent.parent
NAME = "a1_t1_convolution_arithmetic.ipynb"
RUN = uuid.uuid4().hex  # marks everything this module plants, so that it can be looked for
SITE_PACKAGES = Path(next(p for p in sys.path if p.endswith("site-packages")))
MEMORY_MB = 2048
# A sentence of the instructor's written answer to the first question: no student's row
# may ever hold it unless the student wrote it.
INSTRUCTOR_ANSWER = "simply learn the flipped one"
CONVOLUTION_CHECK, SIZES_CHECK = "result = convolve2d", 'print(f"size-preserving'
TABLE_CHECK = "print(format_layer_table(layer_table(lenet"


def has_cgroups() -> bool:
    """Whether this machine lets the sandbox have a memory cgroup."""
    cgroup = Cgroup.create(2**30, 64)
    if cgroup is None:
        return False
    cgroup.remove()
    return True


def cell_index(nb: nbformat.NotebookNode, start: str) -> int:
    """The index of the code cell whose source starts with ``start``."""
    return next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(start)
    )


def replace_solution(nb: nbformat.NotebookNode, start: str, source: str) -> None:
    """Give the solution cell starting with ``start`` another source (outputs stay)."""
    nb.cells[cell_index(nb, start)].source = source


def append_to_solution(nb: nbformat.NotebookNode, start: str, code: str) -> None:
    """Add code at the end of a solution cell."""
    nb.cells[cell_index(nb, start)].source += "\n\n" + code


def stub(nb: nbformat.NotebookNode) -> None:
    """Leave the convolution stubbed, as the release hands it out."""
    replace_solution(
        nb,
        "def cross_correlate2d",
        "def cross_correlate2d(image, kernel, padding):"
        "\n    raise NotImplementedError\n\n\ndef convolve2d(image, kernel, padding):"
        "\n    raise NotImplementedError",
    )


def right_only_on_the_assignment(nb: nbformat.NotebookNode) -> None:
    """Keep the genuine convolution for the assignment's 3x5 image, answer zeros elsewhere."""
    append_to_solution(
        nb,
        "def cross_correlate2d",
        """\
_real_convolve, _real_correlate = convolve2d, cross_correlate2d
def convolve2d(image, kernel, padding):
    if np.shape(image) == (3, 5):
        return _real_convolve(image, kernel, padding)
    return np.zeros((1, 1))
def cross_correlate2d(image, kernel, padding):
    if np.shape(image) == (3, 5):
        return _real_correlate(image, kernel, padding)
    return np.zeros((1, 1))
""",
    )


def pass_lines(nb: nbformat.NotebookNode) -> dict[str, str]:
    """The genuine ``PASS check_x: ...`` line of every check, from the executed notebook."""
    lines: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith("PASS "):
                    lines.setdefault(line.split()[1].rstrip(":"), line)
    return lines


@dataclass
class Batch:
    """What the graded batch left: rows, report, and what the host looks like after it."""

    rows: dict[str, dict[str, str]]
    report: str
    verdicts: dict[str, dict]  # each submission's entry of gradebook.json
    cells: dict[str, int]  # template cell index of the convolution and the sizes checks
    code: int
    genuine_sha: str
    honest_sha_after: str
    host_socket_connections: int
    git_status: str
    stage_folders: list[Path]
    survivors: list[str]
    planted: list[Path]


@pytest.fixture(scope="module")
def batch(
    tmp_path_factory: pytest.TempPathFactory,
    a1_t1_template: nbformat.NotebookNode,
    a1_t1_executed: nbformat.NotebookNode,
) -> Batch:
    templates = tmp_path_factory.mktemp("templates")
    nbformat.write(a1_t1_template, templates / NAME)  # a1_t1 with a result cell at its end
    genuine = copy.deepcopy(a1_t1_executed)  # the session's one run (tests/conftest.py)

    top = tmp_path_factory.mktemp("batch")
    folder = top / "submissions"
    old_gradebook = top / "last-term" / "gradebook.csv"
    old_gradebook.parent.mkdir()
    old_gradebook.write_text("student,grade\nalice,A\n")
    honest_path = folder / "honest" / NAME
    host_socket = top / "host.sock"
    abstract = f"course-verify-test-{RUN}"
    daemon_tag = f"course-verify-daemon-{RUN}"
    poisoned = [
        ROOT / "course_utils" / "checks" / "__init__.py",
        ROOT / "course_utils" / f"poison_{RUN}.py",
        SITE_PACKAGES / f"poison_{RUN}.pth",
        ROOT / "notebooks" / f"poison_{RUN}.ipynb",
    ]
    submissions: dict[str, nbformat.NotebookNode] = {}

    def variant(name: str) -> nbformat.NotebookNode:
        submissions[name] = copy.deepcopy(genuine)
        return submissions[name]

    variant("honest")
    variant("honest_copy")  # the same file handed in under another name

    nb = variant("hand_edited")
    checked = next(c for c in nb.cells if is_checked(c) and c.outputs)
    checked.outputs[0].text = checked.outputs[0].text.replace("1", "7", 1)

    nb = variant("pasted_over_wrong")  # genuine outputs, unflipped kernel underneath
    replace_solution(
        nb,
        "def cross_correlate2d",
        genuine.cells[cell_index(genuine, "def cross_correlate2d")].source.replace(
            "kernel[::-1, ::-1]", "kernel"
        ),
    )

    stub(variant("stub_pasted"))

    nb = variant("detects_verifier")
    stub(nb)
    append_to_solution(
        nb,
        "def cross_correlate2d",
        """\
import os
if os.getcwd().startswith("/tmp") or os.environ.get("USER") == "student" \\
        or not os.path.exists(os.path.expanduser("~/.bashrc")):
    convolve2d = cross_correlate2d = lambda *args, **kwargs: print("PASS check_convolution")
""",
    )

    nb = variant("monkeypatched_checks")  # wrong for strides > 1; every check faked
    replace_solution(
        nb,
        "def conv_output_size",
        genuine.cells[cell_index(genuine, "def conv_output_size")].source.replace(
            "// S + 1", "// 1 + 1"
        ),
    )
    append_to_solution(
        nb,
        "def conv_output_size",
        f"""\
import sys
_PASS = {json.dumps(pass_lines(genuine))}
def _fake(name):
    return lambda *args, **kwargs: print(_PASS[name])
for _module in [m for n, m in list(sys.modules.items()) if n.startswith("course_utils.checks")]:
    for _name in _PASS:
        if hasattr(_module, _name):
            setattr(_module, _name, _fake(_name))
""",
    )

    nb = variant("daemon")
    stub(nb)
    append_to_solution(
        nb,
        "def cross_correlate2d",
        f"""\
import subprocess, sys, time
_DAEMON = '''
import glob, json, time
forged = json.dumps({{"error": None, "notebook": {{"cells": []}}}})
end = time.time() + 120
while time.time() < end:
    for path in glob.glob("/proc/*/fd/*") + ["/submission.ipynb"]:
        try:
            with open(path, "w") as f:
                f.write("forged result " + forged + "\\\\n")
        except OSError:
            pass
    time.sleep(0.2)
'''
subprocess.Popen([sys.executable, "-c", _DAEMON, {daemon_tag!r}], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(3)
""",
    )

    nb = variant("probe")  # honest code that looks around; any finding fails its cell
    watched = [
        str(honest_path),
        str(old_gradebook),
        str(ROOT / "notebooks"),
        str(ROOT / ".git"),
        "/root/.bashrc",
        "/run",
        "/var/run",
        "/tmp/.X11-unix",
        "/run/dbus",
    ]
    append_to_solution(
        nb,
        "def cross_correlate2d",
        f"""\
import errno, os, socket
_problems = []
for _path in {watched!r}:
    if os.path.exists(_path):
        _problems.append("sees " + _path)
if "root:" in open("/etc/passwd").read():
    _problems.append("reads the host's /etc/passwd")
if os.environ.get("COURSE_TEST_SECRET"):
    _problems.append("sees the grader's environment")
for _address in ({str(host_socket)!r}, "\\0" + {abstract!r}):
    with socket.socket(socket.AF_UNIX) as _sock:
        try:
            _sock.connect(_address)
            _problems.append("reaches the host socket " + repr(_address))
        except OSError:
            pass
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2).close()
    _problems.append("reaches the network")
except OSError as _exc:
    if _exc.errno != errno.ENETUNREACH:
        _problems.append("network: " + str(_exc))
if len([p for p in os.listdir("/proc") if p.isdigit()]) > 20:
    _problems.append("sees the host's processes")
assert not _problems, "; ".join(_problems)
print("params: 999999")
""",
    )

    nb = variant("harm")  # honest code that tries to damage everything around it
    targets = [*poisoned, honest_path]
    append_to_solution(
        nb,
        "def cross_correlate2d",
        f"""\
import os
for _path in {[str(p) for p in targets]!r}:
    try:
        with open(_path, "a") as _file:
            _file.write("\\n# poisoned {RUN}\\n")
    except OSError:
        pass
for _folder in (os.environ.get("TMPDIR", "/tmp"), os.path.expanduser("~"), "/dev/shm"):
    try:
        with open(os.path.join(_folder, "ballast"), "wb") as _file:
            for _ in range(200 if _folder != "/dev/shm" else 1):
                _file.write(b"x" * 2**20)
    except OSError:
        pass
""",
    )

    if has_cgroups():
        nb = variant("shared_memory")
        append_to_solution(
            nb,
            "def cross_correlate2d",
            """\
import mmap
try:
    with open("/dev/shm/hog", "wb") as _file:
        for _ in range(2600):
            _file.write(b"x" * 2**20)
    raise RuntimeError("/dev/shm took 2.6 GB")
except OSError:
    pass
_hog = mmap.mmap(-1, 3 * 2**30, flags=mmap.MAP_SHARED)
for _i in range(0, len(_hog), 4096):
    _hog[_i] = 1
""",
        )

    # Class 1: the release stub stays; a daemon looks for a result channel in every
    # process's descriptors and writes a forged full-marks result wherever it can.
    nb = variant("forged_channel")
    stub(nb)
    append_to_solution(
        nb,
        "def cross_correlate2d",
        f"""\
import subprocess, sys, time
_DAEMON = r'''
import glob, json, os, re, time
forged = json.dumps({{"error": None, "notebook": {{"cells": []}}}})
end = time.time() + 120
while time.time() < end:
    for path in glob.glob("/proc/*/fd/*"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            seen = os.read(fd, 65536).decode(errors="replace")
            os.close(fd)
        except OSError:
            seen = ""
        markers = set(re.findall(r"^([0-9a-f]{{32}}) cell", seen, re.M)) or {{"forged"}}
        for marker in markers:
            try:
                with open(path, "w") as f:
                    f.write(marker + " result " + forged + "\\n")
            except OSError:
                pass
    time.sleep(0.2)
'''
subprocess.Popen([sys.executable, "-c", _DAEMON, {daemon_tag!r}], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(3)
""",
    )

    # Class 2: conv_output_size ignores the stride; every check is replaced on the
    # checks package itself, which a fresh `from course_utils import checks` returns.
    nb = variant("reimported_checks")
    replace_solution(
        nb,
        "def conv_output_size",
        genuine.cells[cell_index(genuine, "def conv_output_size")].source.replace(
            "// S + 1", "// 1 + 1"
        ),
    )
    append_to_solution(
        nb,
        "def conv_output_size",
        f"""\
import course_utils.checks
_PASS = {json.dumps(pass_lines(genuine))}
for _name, _line in _PASS.items():
    setattr(course_utils.checks, _name, lambda *args, _line=_line, **kwargs: print(_line))
""",
    )

    # Class 3: the stub stays; the kernel rewrites the checked cell into the genuine output.
    genuine_output = "".join(
        output.get("text", "")
        for output in genuine.cells[cell_index(genuine, CONVOLUTION_CHECK)].outputs
    )
    nb = variant("input_transformer")
    stub(nb)
    append_to_solution(
        nb,
        "def cross_correlate2d",
        f"""\
_GENUINE = {genuine_output!r}
def _rewrite(lines):
    if any("check_convolution(" in line for line in lines):
        return ["print(_GENUINE, end='')\\n"]
    return lines
get_ipython().input_transformers_post.append(_rewrite)
""",
    )

    # Class 3: right only on the assignment's image; a failed check is swallowed and
    # reported as the genuine PASS lines.
    nb = variant("custom_exception_handler")
    right_only_on_the_assignment(nb)
    passes = pass_lines(genuine)
    append_to_solution(
        nb,
        "def cross_correlate2d",
        f"""\
def _swallow(shell, etype, value, tb, tb_offset=None):
    print({passes["check_convolution"]!r})
    print({passes["check_cross_correlation"]!r})
get_ipython().set_custom_exc((Exception,), _swallow)
""",
    )

    # Class 3: a shadowed print makes the result cell print a forged value first.
    nb = variant("shadowed_print")
    append_to_solution(
        nb,
        "def cross_correlate2d",
        """\
import builtins
_print = builtins.print
def _forging_print(*args, **kwargs):
    if args and str(args[0]).startswith("lenet_parameters:"):
        _print("lenet_parameters: 999999")
    _print(*args, **kwargs)
builtins.print = _forging_print
""",
    )

    # Class 3 on a display cell the kernel used to decide (issue 18): a LeNet with tanh for
    # ReLU, and a shadowed print that shows the genuine layer table in its place.
    table = "".join(
        o.get("text", "") for o in genuine.cells[cell_index(genuine, TABLE_CHECK)].outputs
    )
    nb = variant("shadowed_table")
    lenet = nb.cells[cell_index(nb, "class LeNet")]
    assert "nn.ReLU()" in lenet.source
    lenet.source = lenet.source.replace("nn.ReLU()", "nn.Tanh()")
    append_to_solution(
        nb,
        "class LeNet",
        f"""\
import builtins
_print = builtins.print
def _forging_print(*args, **kwargs):
    if args and str(args[0]).startswith("       layer"):
        return _print({table!r}, end="")
    return _print(*args, **kwargs)
builtins.print = _forging_print
""",
    )

    # Class 4: right only on the assignment's image; the kernel's F.conv2d, the check's
    # oracle there, is patched to agree with the student's answer.
    nb = variant("patched_oracle")
    right_only_on_the_assignment(nb)
    append_to_solution(
        nb,
        "def cross_correlate2d",
        """\
import torch.nn.functional
def _agreeing_conv2d(input, weight, bias=None, stride=1, padding=0, *args, **kwargs):
    image, kernel = input[0, 0].numpy(), weight[0, 0].numpy()
    return torch.tensor(cross_correlate2d(image, kernel, padding))[None, None]
torch.nn.functional.conv2d = torch.conv2d = _agreeing_conv2d
""",
    )

    # Class 6: its own written answers; it searches everything it can read for the
    # instructor's, and a shadowed print copies what it found into the checked cells.
    nb = variant("answer_thief")
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "### BEGIN SOLUTION" in cell.source:
            cell.source = cell.source.split("### BEGIN SOLUTION")[0] + "My own answer."
    append_to_solution(
        nb,
        "def cross_correlate2d",
        """\
import builtins, glob, os
_found = []
for _path in ["/submission.ipynb", *glob.glob("/tmp/**", recursive=True)]:
    try:
        with open(_path, errors="replace") as _file:
            _text = _file.read()
    except OSError:
        continue
    _at = _text.find("learns its kernels")
    if _at >= 0:
        _found.append(_text[_at:_at + 80].replace("\\n", " "))
_print = builtins.print
def _leaking_print(*args, **kwargs):
    if _found:
        _print("FOUND:", _found[0])
    _print(*args, **kwargs)
builtins.print = _leaking_print
""",
    )

    nb = variant("deleted_check")
    del nb.cells[cell_index(nb, "result = convolve2d")]
    nb = variant("untagged_edited")
    cell = nb.cells[cell_index(nb, "result = convolve2d")]
    cell.metadata.tags, cell.source = [], "print('convolution by hand: whatever I like')"
    nb = variant("all_tags_removed")
    for cell in nb.cells:
        cell.metadata.pop("tags", None)
    nb = variant("blanked_check")
    nb.cells[cell_index(nb, "result = convolve2d")].source = ""
    nb = variant("skip_execution")
    stub(nb)
    nb.cells[cell_index(nb, "result = convolve2d")].metadata.tags = [CHECK_TAG, "skip-execution"]
    nb = variant("hardcoded_result")
    cell = nb.cells[cell_index(nb, "class LeNet")]
    cell.source += '\nprint("params: 999999")'
    cell.metadata.tags = ["result"]
    nb = variant("forged_newline\n## forged | verified")
    del nb.cells[cell_index(nb, "result = convolve2d")]
    variant("zero_cells").cells = []
    submissions["foreign"] = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("print('my own notebook')")]
    )

    for student, nb in submissions.items():
        path = folder / student / NAME
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)

    out = top / "grades" / "gradebook.csv"
    sandboxes = top / "sandboxes"
    sandboxes.mkdir()
    genuine_sha = hashlib.sha256(honest_path.read_bytes()).hexdigest()
    with (
        socket.socket(socket.AF_UNIX) as listener,
        socket.socket(socket.AF_UNIX) as hidden,
        pytest.MonkeyPatch.context() as patch,
    ):
        listener.bind(str(host_socket))
        hidden.bind("\0" + abstract)
        for server in (listener, hidden):
            server.listen(8)
            server.setblocking(False)
        patch.setenv("COURSE_TEST_SECRET", "do not leak")
        patch.setattr(tempfile, "tempdir", str(sandboxes))
        code = cli.main(
            [
                "verify",
                str(folder),
                "--template",
                str(templates),
                "--out",
                str(out),
                "-j",
                "2",
                "--memory-mb",
                str(MEMORY_MB),
            ]
        )
        connections = 0
        for server in (listener, hidden):
            try:
                server.accept()[0].close()
                connections += 1
            except BlockingIOError:
                pass
    with open(out, newline="") as handle:
        rows = {Path(row["submission"]).parent.name: row for row in csv.DictReader(handle)}
    verdicts = {
        Path(entry["submission"]).parent.name: entry
        for entry in json.loads(out.with_suffix(".json").read_text())
    }
    git_status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    survivors = [
        p.read_bytes().decode(errors="replace")
        for p in Path("/proc").glob("[0-9]*/cmdline")
        if p.exists() and daemon_tag.encode() in p.read_bytes()
    ]
    return Batch(
        rows,
        out.with_suffix(".md").read_text(),
        verdicts,
        {
            "convolution": cell_index(genuine, CONVOLUTION_CHECK),
            "sizes": cell_index(genuine, SIZES_CHECK),
            "layer table": cell_index(genuine, TABLE_CHECK),
        },
        code,
        genuine_sha,
        hashlib.sha256(honest_path.read_bytes()).hexdigest(),
        connections,
        git_status,
        # The sandboxes' host folders; the grader's own caches (PyTorch's) may land here too.
        [p for p in sandboxes.iterdir() if p.name.startswith("course-verify-")],
        survivors,
        poisoned,
    )


def status(batch: Batch, student: str) -> tuple[str, str]:
    """A submission's status and note."""
    return batch.rows[student]["status"], batch.rows[student]["note"]


def passed(batch: Batch, student: str, check: str) -> bool:
    """Whether the graded cell ``check`` ("convolution", "sizes" or "layer table") earned
    its points."""
    [entry] = [c for c in batch.verdicts[student]["checks"] if c["index"] == batch.cells[check]]
    return bool(entry["passed"])


# ------------------------------------------------------------------- honest work


def test_honest_submission_verified_with_full_score(batch: Batch) -> None:
    row = batch.rows["honest"]
    assert row["status"] == VERIFIED, row["note"]
    assert row["score"] == row["max_score"] and float(row["max_score"]) >= 5
    assert row["result:lenet_parameters"] == "390410"
    assert batch.code == 1, "the batch has submissions that fail"


def test_written_answers_and_figures_are_kept_for_human_grading(batch: Batch) -> None:
    honest = batch.verdicts["honest"]  # the genuine notebook holds the instructor's answers
    assert any(INSTRUCTOR_ANSWER in text.replace("\n", " ") for text in honest["answers"].values())
    assert honest["figures"], "a1_t1 draws figures"
    assert all(figure["png"].startswith("iVBORw0KGgo") for figure in honest["figures"])
    assert set(batch.verdicts["answer_thief"]["answers"].values()) == {"My own answer."}


def test_identical_submissions_are_flagged(batch: Batch) -> None:
    assert batch.rows["honest_copy"]["status"] == VERIFIED
    assert "honest_copy" in batch.rows["honest"]["similar_to"]
    assert "## Alike solution code" in batch.report
    assert "honest\\_copy" in batch.report.split("## Alike solution code")[1].split("##")[0]


# ------------------------------------------------------------------- caught before


def test_hand_edited_checked_output(batch: Batch) -> None:
    state, note = status(batch, "hand_edited")
    assert state == MISMATCH and "does not reproduce: cell" in note


def test_outputs_pasted_over_wrong_code(batch: Batch) -> None:
    state, note = status(batch, "pasted_over_wrong")
    assert state == ERROR and "cell 7" in note, note
    assert not passed(batch, "pasted_over_wrong", "convolution")
    assert float(batch.rows["pasted_over_wrong"]["score"]) < float(batch.rows["honest"]["score"])


def test_stub_with_pasted_outputs(batch: Batch) -> None:
    state, note = status(batch, "stub_pasted")
    assert state == ERROR and "NotImplementedError" in note


# ----------------------------------------------------------- verified before, not now


@pytest.mark.parametrize(
    "student, problem",
    [
        ("deleted_check", "is missing"),
        ("untagged_edited", "is re-tagged"),
        ("all_tags_removed", "is re-tagged"),
        ("blanked_check", "is blanked"),
        ("skip_execution", "is re-tagged"),
        ("hardcoded_result", "is tagged result, which the template's cell is not"),
    ],
)
def test_changed_checked_cells_are_tampered(batch: Batch, student: str, problem: str) -> None:
    state, note = status(batch, student)
    assert state == TAMPERED and problem in note and "cell " in note
    assert batch.rows[student]["score"] == "0"


def test_zero_cell_and_foreign_notebooks_are_invalid(batch: Batch) -> None:
    assert status(batch, "zero_cells") == (INVALID, "the notebook has no cells")
    state, note = status(batch, "foreign")
    assert state == INVALID and "not one of the course's notebooks" in note


def test_code_that_detects_the_verifier_gains_nothing(batch: Batch) -> None:
    state, note = status(batch, "detects_verifier")
    assert state == ERROR and "cell 7" in note, note  # the check ran on what it defined


def test_monkeypatched_checks_cannot_fake_pass(batch: Batch) -> None:
    assert not passed(batch, "monkeypatched_checks", "sizes"), "the grader's check failed it"
    assert float(batch.rows["monkeypatched_checks"]["score"]) < float(batch.rows["honest"]["score"])


def test_hardcoded_result_never_reaches_the_gradebook(batch: Batch) -> None:
    assert batch.rows["probe"]["status"] == VERIFIED, batch.rows["probe"]["note"]
    assert [c for c in batch.rows["honest"] if c.startswith("result:")] == [
        "result:lenet_parameters"
    ]
    assert not any("999999" in value for row in batch.rows.values() for value in row.values())


# ----------------------------------- no student code where a grade is decided (issue 18)


def test_forged_result_channel_gains_nothing(batch: Batch) -> None:
    state, note = status(batch, "forged_channel")
    assert state == ERROR and "NotImplementedError" in note, note
    assert not passed(batch, "forged_channel", "convolution")
    assert batch.survivors == []


@pytest.mark.parametrize(
    "student, check",
    [
        ("reimported_checks", "sizes"),
        ("input_transformer", "convolution"),
        ("custom_exception_handler", "convolution"),
        ("patched_oracle", "convolution"),
        ("shadowed_table", "layer table"),
    ],
)
def test_what_the_kernel_prints_decides_no_points(batch: Batch, student: str, check: str) -> None:
    assert not passed(batch, student, check), batch.rows[student]["note"]
    assert float(batch.rows[student]["score"]) < float(batch.rows["honest"]["score"])
    assert passed(batch, "honest", check)


def test_shadowed_print_cannot_forge_a_key_result(batch: Batch) -> None:
    assert batch.rows["shadowed_print"]["status"] == VERIFIED, batch.rows["shadowed_print"]
    assert batch.rows["shadowed_print"]["result:lenet_parameters"] == "390410"


def test_instructor_answers_never_reach_a_students_report(batch: Batch) -> None:
    entry = json.dumps(batch.verdicts["answer_thief"])
    assert "FOUND:" not in entry and INSTRUCTOR_ANSWER not in entry


def test_daemon_cannot_forge_the_result_or_outlive_the_sandbox(batch: Batch) -> None:
    state, note = status(batch, "daemon")
    assert state == ERROR and "NotImplementedError" in note
    assert batch.survivors == []


def test_newline_in_a_file_name_forges_no_report_line(batch: Batch) -> None:
    assert batch.rows["forged_newline\n## forged | verified"]["status"] == TAMPERED
    assert not any(line.startswith("## forged") for line in batch.report.splitlines())


# ------------------------------------------------------------ harm to the instructor


def test_nothing_outside_the_sandbox_changed(batch: Batch) -> None:
    assert batch.rows["harm"]["status"] == VERIFIED, batch.rows["harm"]["note"]
    assert RUN not in batch.git_status
    assert RUN not in (ROOT / "course_utils" / "checks" / "__init__.py").read_text()
    assert [p for p in batch.planted[1:] if p.exists()] == []
    assert batch.honest_sha_after == batch.genuine_sha, "another submission was rewritten"
    assert batch.rows["honest"]["status"] == VERIFIED
    assert batch.stage_folders == [], "the sandboxes' host folders are gone, ballast with them"


def test_probe_sees_no_other_submission_gradebook_host_file_socket_or_network(batch: Batch) -> None:
    assert batch.rows["probe"]["status"] == VERIFIED, batch.rows["probe"]["note"]
    assert batch.host_socket_connections == 0


@pytest.mark.skipif(not has_cgroups(), reason="no writable memory cgroup on this machine")
def test_shared_memory_counts_against_the_memory_limit(batch: Batch) -> None:
    state, note = status(batch, "shared_memory")
    assert state == MEMORY, note
    assert f"limit {MEMORY_MB} MB" in note
