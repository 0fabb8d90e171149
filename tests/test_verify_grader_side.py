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
import io
import json
from typing import Any

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from torch import nn

from course_utils import checks
from course_utils.checks import training
from course_utils.instructor.verify import remote
from course_utils.instructor.verify.grader import Grader
from course_utils.instructor.verify.proxy import Channel, Remote

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
