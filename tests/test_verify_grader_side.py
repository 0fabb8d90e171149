"""Every graded cell is decided in the grader (issue 18, item 1).

A check that hands the student's function objects that are not data (a model, a loader,
an optimiser) runs that part in the student's kernel and judges what comes back in the
grader (:mod:`course_utils.instructor.verify.split_checks`); a course helper handed the
student's model runs where the model is (:mod:`~course_utils.instructor.verify.routed`).
The first tests use a "kernel" that is :func:`remote.serve` in this process; the slow
ones grade submissions built from a genuine execution of a course notebook in the sandbox.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from torch import nn

from course_utils import checks
from course_utils.checks import training
from course_utils.instructor import cli
from course_utils.instructor.notebook_io import is_checked
from course_utils.instructor.refresh import REFRESH_ENV
from course_utils.instructor.verify import VERIFIED, Limits, codec, remote
from course_utils.instructor.verify.batch import with_reference
from course_utils.instructor.verify.compare import (
    grade_cells,
    graded_here,
    read_sanitizers,
    reference_outcomes,
)
from course_utils.instructor.verify.grader import Grader
from course_utils.instructor.verify.prerequisites import ResultSupply
from course_utils.instructor.verify.proxy import Channel, Remote, Student
from course_utils.instructor.verify.template import (
    Template,
    align,
    cell_points,
    first_line,
    load_templates,
    split_from,
)
from course_utils.notebooks import execute_notebook, kernel_env

TEMPLATE_IMPORTS = (
    "import torch\nfrom course_utils import checks\n"
    "from course_utils.inspect import format_layer_table, layer_table"
)
LOOP = """\
import torch

def train_one_epoch(model, loader, optimizer, loss_fn):
    model.train()
    losses = []
    for x, y in loader:
        {zero_grad}optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
"""


def kernel_grader(source: str, imports: str = TEMPLATE_IMPORTS) -> Grader:
    """A grader whose 'kernel' is a namespace of this process that ran ``source``."""
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    channel = Channel(lambda payload: remote.serve(namespace, json.dumps(payload)))
    return Grader(new_notebook(cells=[new_code_cell(imports)]), channel, "")


def printed_locally(source: str, cell: str) -> tuple[str, str | None]:
    """What ``cell`` prints, and the error it raises, run in the student's own process."""
    namespace: dict[str, Any] = {}
    exec(source + "\n" + TEMPLATE_IMPORTS, namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            exec(cell, namespace)
        except Exception as error:  # the check's failure, as the student sees it
            return out.getvalue(), str(error)
    return out.getvalue(), None


@pytest.mark.parametrize("zero_grad", ["", "# "], ids=["right", "no_zero_grad"])
def test_training_loop_check_runs_in_the_grader_with_the_students_cases_and_hints(
    zero_grad: str,
) -> None:
    source = LOOP.format(zero_grad=zero_grad)
    cell = "checks.check_training_loop(train_one_epoch)"
    outcome = kernel_grader(source).run_graded(cell)
    text, error = printed_locally(source, cell)
    assert outcome.text == text
    if error is None:
        assert outcome.error is None and text.startswith("PASS check_training_loop")
    else:
        assert outcome.error is not None and error in outcome.error
        assert "zero_grad" in error


class ForgedKernel:
    """A kernel whose recorder answers ``forge(record)`` for the record of a right loop."""

    def __init__(self, forge: Any):
        namespace: dict[str, Any] = {}
        exec(LOOP.format(zero_grad=""), namespace)
        self.namespace, self.forge = namespace, forge

    def __call__(self, payload: dict) -> str:
        if payload["op"] == "eval" and "record_epoch" in payload["expr"]:
            record = training.record_epoch(self.namespace["train_one_epoch"])
            return json.dumps({"value": remote.encode(self.forge(record), remote.handle)})
        return remote.serve(self.namespace, json.dumps(payload))


def shifted_weights(record: dict) -> dict:
    """The record of a right loop whose every weight is claimed one tenth larger."""
    for step in record["steps"]:
        step[1] = [w + 0.1 for w in step[1]]
        step[2] = [w + 0.1 for w in step[2]]
    record["final"] = [w + 0.1 for w in record["final"]]
    return record


def no_momentum(record: dict) -> dict:
    """A last update of plain SGD, as if the loop had made an optimiser of its own; every
    other part of the record (each step's start and gradients) is right."""
    last = record["steps"][-1]
    last[2] = [w - training.LEARNING_RATE * g for w, g in zip(last[1], last[0], strict=True)]
    record["final"] = last[2]
    return record


@pytest.mark.parametrize(
    ("forge", "hint"),
    [
        (lambda r: {**r, "steps": r["steps"][:1] * 3}, "weights changed before optimizer step 2"),
        (shifted_weights, "weights changed before optimizer step 1"),
        (no_momentum, "did not update the weights as the optimizer"),
        (lambda r: {**r, "final": []}, "malformed"),
        (lambda r: [1, 2], "malformed"),
    ],
    ids=["repeated_step", "other_start", "no_momentum", "no_final_weights", "not_a_record"],
)
def test_a_forged_record_of_the_epoch_fails_in_the_grader(forge: Any, hint: str) -> None:
    """Whatever the kernel claims happened, the judge starts from its own weights and
    checks every gradient and update against its own oracle."""
    kernel = ForgedKernel(forge)
    grader = Grader(new_notebook(cells=[new_code_cell(TEMPLATE_IMPORTS)]), Channel(kernel), "")
    outcome = grader.run_graded("checks.check_training_loop(train_one_epoch)")
    assert outcome.error is not None and "PASS" not in outcome.text
    assert hint in outcome.error
    honest = Grader(
        new_notebook(cells=[new_code_cell(TEMPLATE_IMPORTS)]),
        Channel(ForgedKernel(lambda r: r)),
        "",
    )
    assert honest.run_graded("checks.check_training_loop(train_one_epoch)").error is None


def test_the_judge_rebuilds_the_setting_it_drew_not_the_kernels() -> None:
    """A record of the visible setting does not pass a grader's fresh one."""
    setting = training._Setting.draw(np.random.default_rng(5))
    namespace: dict[str, Any] = {}
    exec(LOOP.format(zero_grad=""), namespace)
    visible = training.record_epoch(namespace["train_one_epoch"])
    with pytest.raises(checks.CheckFailed):
        training.judge_epoch(setting, visible)


STUDENT_NET = """\
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, width, 3), nn.Linear(width * 6 * 6, 2)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))
"""


def test_a_layer_table_of_the_students_model_is_made_where_the_model_is() -> None:
    cell = "print(format_layer_table(layer_table(Net(width=5), (1, 3, 8, 8))))"
    outcome = kernel_grader(STUDENT_NET).run_graded(cell)
    text, error = printed_locally(STUDENT_NET, cell)
    assert error is None and outcome.error is None
    assert outcome.text == text and "total parameters: 5" in text


def test_helpers_on_data_and_the_checks_stay_in_the_grader() -> None:
    grader = kernel_grader(STUDENT_NET)
    assert grader.namespace["checks"].check_convolution is checks.check_convolution
    table = grader.namespace["layer_table"](nn.Sequential(nn.Linear(2, 3)), (1, 2))  # here
    assert table["params"].tolist() == [9]


def test_grad_cam_check_uses_the_graders_copy_of_the_kernels_resnet() -> None:
    source = (
        "import torch, torchvision\n"
        "model = torchvision.models.resnet18(weights=None, num_classes=7).eval()\n"
        "def grad_cam_map(a, g):\n"
        "    return torch.relu((g.mean(dim=(1, 2))[:, None, None] * a).sum(0))\n"
        "image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))\n"
    )
    grader = kernel_grader(source)
    copy = grader.namespace["checks"].resnet18_copy(grader.student.model)
    assert isinstance(grader.student.model, Remote) and not isinstance(copy, Remote)
    outcome = grader.run_graded("checks.check_grad_cam(grad_cam_map, model, image)")
    assert outcome.error is None, outcome.error
    assert outcome.text.startswith("PASS check_grad_cam: 8 maps")


def test_nothing_of_the_graders_goes_into_the_kernel() -> None:
    """A routed helper sends data and handle numbers only; a grader object is refused."""
    grader = kernel_grader(STUDENT_NET + "net = Net()\n")
    assert grader.run_graded("print(layer_table(net, (1, 3, 8, 8)).shape)").text == "(2, 5)\n"
    outcome = grader.run_graded("layer_table(net, (1, 3, 8, 8), device=torch.device('cpu'))")
    assert outcome.error is not None and "NotData" in outcome.error


def test_a_model_the_grader_built_travels_as_its_recipe() -> None:
    """``count_trainable(transfer.resnet18(...))``: the kernel counts a network it built
    from the grader's recipe; the grader counts its own copy."""
    source = (
        "def count_trainable(model):\n"
        "    return sum(p.numel() for p in model.parameters() if p.requires_grad)\n"
    )
    imports = "from course_utils import checks\nfrom course_utils.models import transfer"
    cell = (
        "fresh = transfer.resnet18(num_classes=3, freeze_backbone=True)\n"
        "checks.check_parameter_count(count_trainable(fresh), fresh.fc)\n"
        "print(type(fresh).__name__, count_trainable(fresh))"
    )
    outcome = kernel_grader(source, imports).run_graded(cell)
    assert outcome.error is None, outcome.error
    assert outcome.text.endswith("TransferResNet18 1539\n")
    wrong = kernel_grader(source.replace(" if p.requires_grad", ""), imports).run_graded(cell)
    assert wrong.error is not None and "CheckFailed" in wrong.error


def test_a_recipe_from_the_kernel_is_refused() -> None:
    """Only the grader sends recipes; the kernel's answers are data and handles only."""
    forged = {
        "value": {"build": ["course_utils.models.transfer", "resnet18", {"list": []}, {"dict": []}]}
    }
    with pytest.raises(codec.NotData):
        _ = Student(Channel(lambda payload: json.dumps(forged))).anything
    with pytest.raises(ValueError, match="not a course helper"):
        remote.built(["os", "system", {"list": ["true"]}, {"dict": []}])


# ------------------------------------------------------------ sandboxed, slow

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "notebooks").glob("a*_t*.ipynb"))


def template_run(path: Path) -> tuple[Template, str]:
    """The template's own run in the sandbox, as ``course verify`` makes it."""
    [template] = load_templates(path)
    # a3_t1 reads Assignment 2's result: the grader supplies the course's (made by a2_t3)
    return with_reference(ResultSupply(Limits()).supply(template), Limits())


@pytest.fixture(scope="module")
def template_runs() -> dict[Path, tuple[Template, str]]:
    """Every template's own sandboxed run, two at a time (as ``course verify -j 2`` runs
    submissions): the sandbox runs one kernel on one core."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(TEMPLATES, pool.map(template_run, TEMPLATES), strict=True))


@pytest.mark.parametrize("path", TEMPLATES, ids=[path.name[:5] for path in TEMPLATES])
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_every_graded_cell_with_points_is_decided_in_the_grader(
    path: Path, template_runs: dict[Path, tuple[Template, str]]
) -> None:
    """No checked or result cell that carries points is left to the kernel's output."""
    reference, warning = template_runs[path]
    assert reference.reference is not None, warning
    here, outcomes = graded_here(reference), reference_outcomes(reference)
    left = [
        f"cell {index} ({first_line(cell.source)}): "
        + (str(outcomes[cell.id].error) if cell.get("id") in outcomes else "not run here")
        for index, cell in reference.graded
        if cell_points(cell) > 0 and cell.get("id") not in here
    ]
    assert not left
    checks_of = grade_cells(reference, {}, reference.reference, read_sanitizers())
    assert all(c.where == "grader" for c in checks_of if c.points > 0 and c.kind != "hidden")


def genuine_run(tmp: Path, name: str) -> tuple[Path, nbformat.NotebookNode]:
    """A templates folder holding ``name``, and a genuine execution of it (a student's
    honest work), as test_verify_attacks.py makes one."""
    templates = tmp / "templates"
    templates.mkdir()
    shutil.copy(ROOT / "notebooks" / name, templates / name)
    genuine = nbformat.read(templates / name, as_version=4)
    assert execute_notebook(genuine, templates, 900, kernel_env(REFRESH_ENV)) is None
    for leftover in templates.iterdir():  # what the run wrote next to the notebook
        if leftover.name != name:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return templates, genuine


def graded(tmp: Path, templates: Path, name: str, submissions: dict) -> dict[str, dict]:
    """Grade ``submissions`` (student -> notebook) in one batch; their gradebook entries."""
    folder = tmp / "submissions"
    for student, nb in submissions.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / name)
    out = tmp / "gradebook.csv"
    cli.main(["verify", str(folder), "--template", str(templates), "--out", str(out), "-j", "2"])
    return {
        Path(entry["submission"]).parent.name: entry
        for entry in json.loads(out.with_suffix(".json").read_text())
    }


def code_index(nb: nbformat.NotebookNode, start: str) -> int:
    """The index of the code cell whose source starts with ``start``."""
    return next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(start)
    )


def checked_index(nb: nbformat.NotebookNode, holding: str) -> int:
    """The index of the checked cell whose source holds ``holding`` (before or after the
    split of a checked cell from its solution cell)."""
    return next(i for i, c in enumerate(nb.cells) if is_checked(c) and holding in c.source)


def earned(verdict: dict, index: int) -> bool:
    """Whether the template's cell ``index`` earned its points."""
    [entry] = [c for c in verdict["checks"] if c["index"] == index and c["kind"] != "hidden"]
    return bool(entry["passed"])


def shadowing_print(text: str, start: str) -> str:
    """Code that makes ``print`` show ``text`` instead of anything starting with ``start``."""
    return f"""
import builtins
_print = builtins.print
def _forging_print(*args, **kwargs):
    if args and str(args[0]).startswith({start!r}):
        return _print({text!r}, end="")
    return _print(*args, **kwargs)
builtins.print = _forging_print
"""


def stored_text(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []))


A2T2 = "a2_t2_baseline_and_training_loop.ipynb"


@pytest.fixture(scope="module")
def a2_t2(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, dict]:
    """a2_t2 handed in honestly, and twice with a kernel that lies about a graded cell."""
    tmp = tmp_path_factory.mktemp("a2_t2")
    templates, genuine = genuine_run(tmp, A2T2)
    template = nbformat.read(templates / A2T2, as_version=4)
    loop_check = checked_index(genuine, "check_training_loop(")
    table_check = checked_index(genuine, "layer_table(LeNet()")
    submissions = {"honest": genuine}

    # Class 3 on a check the kernel decided: a loop without zero_grad, its failure
    # swallowed by a custom exception handler that prints the genuine PASS line.
    nb = submissions["swallowed_loop_check"] = copy.deepcopy(genuine)
    loop = nb.cells[code_index(nb, "def train_one_epoch")]
    assert "optimizer.zero_grad()" in loop.source
    loop.source = loop.source.replace("optimizer.zero_grad()", "pass")
    loop.source += f"""

def _swallow(shell, etype, value, tb, tb_offset=None):
    print({stored_text(genuine.cells[loop_check])!r}, end="")
get_ipython().set_custom_exc((Exception,), _swallow)
"""
    # Class 3 on a display cell the kernel decided: a LeNet with tanh for ReLU, and a
    # shadowed print, set up in an earlier cell, that shows the genuine layer table.
    nb = submissions["shadowed_table"] = copy.deepcopy(genuine)
    lenet = nb.cells[code_index(nb, "class LeNet")]
    assert "nn.ReLU()" in lenet.source
    lenet.source = lenet.source.replace("nn.ReLU()", "nn.Tanh()")
    earlier = nb.cells[code_index(nb, "def train_one_epoch")]
    earlier.source += shadowing_print(stored_text(genuine.cells[table_check]), "       layer")
    verdicts = graded(tmp, templates, A2T2, submissions)
    return template, verdicts


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a2_t2_honest_work_earns_every_point(a2_t2: tuple) -> None:
    _, verdicts = a2_t2
    honest = verdicts["honest"]
    assert honest["status"] == VERIFIED, honest["note"]
    assert [c["title"] for c in honest["checks"] if not c["passed"]] == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a2_t2_a_swallowed_training_loop_failure_earns_nothing(a2_t2: tuple) -> None:
    template, verdicts = a2_t2
    index = checked_index(template, "check_training_loop(")
    assert earned(verdicts["honest"], index)
    assert not earned(verdicts["swallowed_loop_check"], index)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a2_t2_a_forged_layer_table_earns_nothing(a2_t2: tuple) -> None:
    template, verdicts = a2_t2
    index = checked_index(template, "layer_table(LeNet()")
    assert earned(verdicts["honest"], index)
    assert not earned(verdicts["shadowed_table"], index)


def before_the_split(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` as handed out before its checked cells were split from their solution cells:
    the checked cell's code at the end of that cell, which carried its tag and output."""
    old = copy.deepcopy(nb)
    for cell in [c for c in old.cells if split_from(c)]:
        [host] = [c for c in old.cells if c.get("id") == split_from(cell)]
        host.source += "\n\n" + cell.source
        host.metadata["tags"], host.outputs = cell.metadata["tags"], cell.outputs
        old.cells.remove(cell)
    return old


@pytest.mark.parametrize(
    "name",
    [A2T2, "a3_t1_resnet18_transfer.ipynb", "a3_t2_what_a_cnn_sees.ipynb"],
    ids=["a2_t2", "a3_t1", "a3_t2"],
)
def test_a_submission_from_before_a_split_still_aligns(name: str) -> None:
    [template] = load_templates(ROOT / "notebooks" / name)
    split = [c for _, c in template.graded if split_from(c)]
    assert split, "the template has split checked cells"
    alignment = align(template, before_the_split(template.nb))
    assert alignment.problems == []
    ran = [c.metadata.get("course_template_id") for c in alignment.run.cells]
    for cell in split:  # the course's checked cell runs right after the old cell
        assert ran.index(cell.id) == ran.index(split_from(cell)) + 1
        held = alignment.by_template_id[cell.id]
        assert held.outputs == cell.outputs and split_from(cell) == held.id
