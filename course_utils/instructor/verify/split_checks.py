"""The course's checks as the grader's cells see them: each check's student half in the kernel.

Most checks only call the student's function with data (arrays, numbers) and compare
what comes back; the grader runs those as they are, the function being a
:class:`~.proxy.Remote`. A check that must hand the student's function objects that are
not data (a model, a loader, an optimiser) is split in two: a recorder that runs the
student's code on objects the check builds from a setting made of data and returns what
happened as data, and a judge that compares that record with the oracle. Here the
recorder runs in the student's kernel, asked through :meth:`~.proxy.Student.eval`
with the setting the grader drew, and the judge in the grader's process, on objects it
built itself from the same setting; the cases and hints are those of the student's own
run of the check. A check that takes a course model the notebook built (Grad-CAM's
ResNet) gets the grader's own copy of it, built from the model's weights fetched as data;
the student's function is then called on what that copy computes.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from course_utils.instructor.verify.proxy import Remote, Student

# The recorder, imported in the kernel by its module's name: the grader sends no code.
RECORD_EPOCH = (
    "__import__('course_utils.checks.training', fromlist=['record_epoch'])"
    ".record_epoch(function, **setting)"
)


class SplitChecks:
    """``checks`` for the grader's cells: the course's checks module, with the checks
    that need objects that are not data running their student half in the kernel.

    >>> from course_utils import checks
    >>> grader_checks = SplitChecks(checks, Student(None))
    >>> grader_checks.check_output_size is checks.check_output_size
    True
    """

    def __init__(self, checks: ModuleType, student: Student):
        self._checks, self._student = checks, student

    def __getattr__(self, name: str) -> Any:
        return getattr(self._checks, name)

    def check_training_loop(
        self, train_one_epoch: Callable[..., Any], rng: np.random.Generator | None = None
    ) -> None:
        """:func:`course_utils.checks.check_training_loop`, the loop run in the kernel."""

        def record(function: Callable[..., Any], **setting: int) -> dict[str, Any]:
            return self._student.eval(RECORD_EPOCH, function=function, setting=setting)

        self._checks.check_training_loop(train_one_epoch, rng=rng, record=record)

    def check_grad_cam(
        self,
        grad_cam_map: Callable[..., Any],
        model: Any = None,
        image: Any = None,
        layer: str = "layer4",
        rng: np.random.Generator | None = None,
    ) -> None:
        """:func:`course_utils.checks.check_grad_cam`, on the grader's copy of the model."""
        if isinstance(model, Remote):
            model = self.resnet18_copy(model)
        self._checks.check_grad_cam(grad_cam_map, model, image, layer=layer, rng=rng)

    def resnet18_copy(self, model: Remote) -> Any:
        """A torchvision ResNet18 here, with the weights of the kernel's ``model`` (data)."""
        import torch
        import torchvision

        names = self._student.eval("list(model.state_dict())", model=model)
        weight = "model.state_dict()[name].detach().cpu()"
        state = {
            str(name): torch.as_tensor(self._student.eval(weight, model=model, name=name))
            for name in names
        }
        classes = state["fc.weight"].shape[0] if "fc.weight" in state else 0
        copy = torchvision.models.resnet18(weights=None, num_classes=classes)
        try:
            copy.load_state_dict(state)
        except RuntimeError as error:
            self._checks._core.fail(
                "check_grad_cam", "the model is not the course's ResNet18.", error
            )
        return copy.eval()
