"""Check of a first training loop, one optimizer step at a time.

The student's ``train_one_epoch(model, loader, optimizer, loss_fn)`` runs on the check's
own tiny model (with batch norm, which behaves differently in training mode) and loader,
with an optimizer and a loss function that record how they are used:

- the optimizer is ``torch.optim.SGD`` with momentum; at every ``step()`` it keeps the
  gradients it was given and the weights before and after;
- the loss is cross-entropy times :data:`LOSS_SCALE`, which no loss of the student's own
  reproduces.

For each step the oracle is ``torch.autograd.grad`` of that loss on that step's batch at
the weights the step started from. So a loop that ignores its ``optimizer`` or ``loss_fn``
argument, forgets ``zero_grad()``, clips gradients, skips ``model.train()``, or hands the
work to :func:`course_utils.train.fit` is caught at the first step where it differs,
and told which of these it did.

The check has two halves. :func:`record_epoch` runs the student's loop and returns what
happened as plain data (the returned losses, and every step's gradients and weights);
:func:`judge_epoch` compares that record with the oracle. In a notebook both run in the
student's process; a grader runs :func:`record_epoch` in the student's kernel and
:func:`judge_epoch` in its own process, with the same cases and hints. The judge trusts
nothing in the record: it starts from the weights it built itself and checks every step's
gradients against its own ``autograd`` and every update against SGD with momentum, so a
record that passes is the trajectory of a correct epoch.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.checks._core import CheckFailed, call, describe, fail, number_array, passed

__all__ = [
    "LOSS_SCALE",
    "check_training_loop",
    "epoch_setting",
    "judge_epoch",
    "record_epoch",
    "run_epoch",
]

LOSS_SCALE = 3.0
LEARNING_RATE = 0.1
MOMENTUM = 0.9
N_BATCHES = 3


@dataclass
class _Step:
    gradients: list[torch.Tensor | None]
    before: list[torch.Tensor]
    after: list[torch.Tensor]


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy, compared with the CPU oracle even if the loop moved the model to a GPU."""
    return tensor.detach().to("cpu", copy=True)


class _RecordingSGD(torch.optim.SGD):
    """SGD with momentum that keeps, for every step, the gradients and the weights."""

    def __init__(self, params: Any) -> None:
        super().__init__(params, lr=LEARNING_RATE, momentum=MOMENTUM)
        self.steps: list[_Step] = []
        self.settings = self._settings()

    def _settings(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in group.items() if k != "params"} for group in self.param_groups]

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def step(self, closure: Any = None) -> Any:
        params = self._params()
        gradients = [None if p.grad is None else _cpu(p.grad) for p in params]
        before = [_cpu(p) for p in params]
        result = super().step(closure)
        self.steps.append(_Step(gradients, before, [_cpu(p) for p in params]))
        return result


class _ScaledCrossEntropy(nn.Module):
    """Cross-entropy times :data:`LOSS_SCALE`; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return LOSS_SCALE * F.cross_entropy(outputs, targets)


@dataclass(frozen=True)
class _Setting:
    """What the check's model and loader are made of."""

    seed: int = 0
    batches: int = N_BATCHES
    batch_size: int = 16
    side: int = 8
    classes: int = 4

    @classmethod
    def draw(cls, rng: np.random.Generator | None) -> _Setting:
        """The visible setting, or, with ``rng``, a fresh one drawn from it."""
        if rng is None:
            return cls()
        return cls(
            seed=int(rng.integers(2**31)),
            batches=int(rng.integers(2, 6)),
            batch_size=int(rng.integers(4, 21)),
            side=int(rng.integers(5, 12)),
            classes=int(rng.integers(2, 7)),
        )


def _fixture(setting: _Setting) -> tuple[nn.Module, torch.utils.data.DataLoader]:
    generator = torch.Generator().manual_seed(setting.seed)
    n = setting.batch_size * setting.batches
    x = torch.randn(n, 3, setting.side, setting.side, generator=generator)
    y = torch.randint(0, setting.classes, (n,), generator=generator)
    # Its own generator: iterating the loader leaves torch's global random state alone.
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y),
        batch_size=setting.batch_size,
        generator=torch.Generator().manual_seed(setting.seed),
    )
    inside = setting.side - 2
    with torch.random.fork_rng(devices=[]):  # the notebook's random state is left alone
        torch.manual_seed(setting.seed)
        model = nn.Sequential(
            nn.Conv2d(3, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * inside * inside, setting.classes),
        )
    return model, loader


@contextmanager
def _watch_for_fit() -> Iterator[list[bool]]:
    """Note whether :func:`course_utils.train.fit` runs inside the block."""
    from course_utils import train  # checks stays importable without the training stack

    fit_code, called, previous = train.fit.__code__, [False], sys.getprofile()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is fit_code:
            called[0] = True

    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)


def _expected(
    template: nn.Module, weights: list[torch.Tensor], batch: tuple, train_mode: bool
) -> tuple[float, list[torch.Tensor]]:
    """The oracle: loss and gradients of one step at ``weights`` on ``batch``."""
    model = copy.deepcopy(template).train(train_mode)
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights, strict=True):
            p.copy_(w)
    inputs, targets = batch
    loss = LOSS_SCALE * F.cross_entropy(model(inputs), targets)
    return loss.item(), list(torch.autograd.grad(loss, list(model.parameters())))


def _close(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, rtol=1e-4, atol=1e-6) for x, y in zip(a, b, strict=True))


def _gradient_hint(
    got: list[torch.Tensor],
    expected: list[torch.Tensor],
    k: int,
    steps: list[_Step],
    eval_mode: list[torch.Tensor],
) -> str:
    previous = [g for g in steps[k - 1].gradients if g is not None] if k > 0 else []
    if len(previous) == len(expected) and _close(
        got, [e + g0 for e, g0 in zip(expected, previous, strict=True)]
    ):
        return (
            "they are this batch's gradients plus the last step's: did you forget "
            "optimizer.zero_grad(), so gradients add up?"
        )
    if _close(got, eval_mode):
        return (
            "they are those of the model in eval mode: call model.train() first (batch "
            "norm and dropout behave differently while training)."
        )
    if _close(got, [e / LOSS_SCALE for e in expected]):
        return (
            "they are those of plain cross-entropy, not of the loss_fn you were given: "
            "call backward() on loss_fn(outputs, targets)."
        )
    flat_got = torch.cat([g.flatten() for g in got])
    flat_expected = torch.cat([e.flatten() for e in expected])
    ratio = float(flat_got.norm() / flat_expected.norm())
    if torch.allclose(flat_got, ratio * flat_expected, rtol=1e-4, atol=1e-6):
        what = (
            "scaled down: gradient clipping (clip_grad_norm_) changes the update, and "
            "this loop must not clip."
            if ratio < 1
            else f"scaled by {ratio:.3g}."
        )
        return f"they point the right way but are {what}"
    limit = float(flat_got.abs().max())
    if torch.allclose(flat_got, flat_expected.clamp(-limit, limit), rtol=1e-4, atol=1e-6):
        return (
            f"they are cut off at ±{limit:.3g}: gradient clipping (clip_grad_value_) "
            "changes the update, and this loop must not clip."
        )
    return (
        "does your loop call backward() once per batch, on the loss of that batch, "
        "in the loader's order?"
    )


def _sgd_updates(steps: list[_Step]) -> list[list[torch.Tensor]]:
    """The weights SGD with momentum makes of each step's weights and gradients."""
    buffers: list[torch.Tensor] = []
    updated = []
    for k, step in enumerate(steps):
        gradients = [g for g in step.gradients if g is not None]
        buffers = (
            [g.clone() for g in gradients]
            if k == 0
            else [MOMENTUM * b + g for b, g in zip(buffers, gradients, strict=True)]
        )
        updated.append([w - LEARNING_RATE * b for w, b in zip(step.before, buffers, strict=True)])
    return updated


def _check_steps(
    name: str,
    template: nn.Module,
    batches: list,
    steps: list[_Step],
    settings_changed: bool,
    final: list[torch.Tensor],
) -> list[float]:
    """Check every recorded step against the oracle; return the expected losses."""
    names = [n for n, _ in template.named_parameters()]
    start = [_cpu(p) for p in template.parameters()]
    losses = []
    for k, (step, batch) in enumerate(zip(steps, batches, strict=True)):
        previous = steps[k - 1].after if k > 0 else start
        if not _close(step.before, previous):
            fail(
                name,
                f"the weights changed before optimizer step {k + 1}"
                + (f", after step {k}" if k > 0 else "")
                + ": only optimizer.step() may update them.",
            )
        missing = [n for n, g in zip(names, step.gradients, strict=True) if g is None]
        if missing:
            fail(
                name,
                f"at step {k + 1}, optimizer.step() found no gradient for "
                f"{', '.join(missing)}: call loss.backward() before optimizer.step(), and "
                "optimizer.zero_grad() before backward(), not between.",
            )
        gradients = [g for g in step.gradients if g is not None]  # none is missing
        loss, expected = _expected(template, step.before, batch, train_mode=True)
        losses.append(loss)
        if not _close(gradients, expected):
            _, eval_mode = _expected(template, step.before, batch, train_mode=False)
            hint = _gradient_hint(gradients, expected, k, steps, eval_mode)
            fail(
                name,
                f"at step {k + 1} the gradients that reached optimizer.step() are not "
                f"those of loss_fn on that batch: {hint}",
            )
    if settings_changed:
        fail(
            name,
            "the optimizer's settings changed during the epoch: use the optimizer as "
            "it was given (its learning rate and momentum included).",
        )
    for k, (step, updated) in enumerate(zip(steps, _sgd_updates(steps), strict=True)):
        if not _close(step.after, updated):
            fail(
                name,
                f"optimizer step {k + 1} did not update the weights as the optimizer you "
                f"were given does (SGD, learning rate {LEARNING_RATE}, momentum "
                f"{MOMENTUM}): use the optimizer as it was given.",
            )
    if not _close(final, steps[-1].after):
        fail(
            name,
            "the weights changed after the last optimizer step: only optimizer.step() "
            "may update them.",
        )
    return losses


def _returned_losses(name: str, result: Any, batches: int) -> np.ndarray:
    if result is None:
        fail(name, "your function returned None: return the loss of every step (a list).")
    if isinstance(result, (int, float)) or (
        isinstance(result, (torch.Tensor, np.ndarray)) and result.ndim == 0
    ):
        fail(
            name,
            f"your function returned one number ({describe(result)}): return the loss "
            "of every step, one value per batch.",
        )
    losses = number_array(name, result, "the returned losses")
    if losses.ndim != 1 or len(losses) != batches:
        fail(
            name,
            f"returned {losses.size} losses for {batches} batches: return one loss "
            "per step (the value of that step's loss).",
        )
    return losses


def check_training_loop(
    train_one_epoch: Callable[..., Any],
    rng: np.random.Generator | None = None,
    record: Callable[..., dict[str, Any]] | None = None,
) -> None:
    """Check ``train_one_epoch(model, loader, optimizer, loss_fn)``: one epoch of training
    that uses the optimizer and loss function it is given and returns every step's loss
    (a list, an array or a tensor of them). With ``rng``, the model's weights, the data,
    the number and size of the batches and of the classes are fresh ones drawn from it.

    Each step is checked against ``torch.autograd.grad`` of the given loss on that
    step's batch; see the module docstring for what the check records. ``record`` runs
    the student's loop and returns its record (:func:`record_epoch`, the default, runs
    it here; a grader passes one that runs it in the student's kernel).

    >>> check_training_loop(lambda model, loader, optimizer, loss_fn: [])
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_training_loop: returned 0 losses for 3 \
batches: return one loss per step (the value of that step's loss).
    """
    setting = _Setting.draw(rng)
    judge_epoch(setting, (record or record_epoch)(train_one_epoch, **asdict(setting)))


def record_epoch(train_one_epoch: Callable[..., Any], **setting: int) -> dict[str, Any]:
    """Run ``train_one_epoch`` on the check's model and loader made from ``setting``, with
    the recording optimizer and loss; return what happened as plain data (arrays, numbers,
    lists): what it returned, whether it called ``fit``, how often it called ``loss_fn``,
    every optimizer step's gradients and weights, and the weights at the end.

    An error in the student's loop is raised as :class:`CheckFailed` (unless the loop
    handed its work to ``fit``, which the judge reports instead).

    >>> record = record_epoch(lambda model, loader, optimizer, loss_fn: [], batches=2)
    >>> record["result"], record["steps"], len(record["final"])
    ([], [], 6)
    """
    name = "check_training_loop"
    template, loader = _fixture(_Setting(**setting))
    model = copy.deepcopy(template).eval()  # a correct loop switches to training mode itself
    optimizer, loss_fn = _RecordingSGD(model.parameters()), _ScaledCrossEntropy()
    result = None
    with _watch_for_fit() as used_fit:
        try:
            result = call(
                name,
                train_one_epoch,
                (model, loader, optimizer, loss_fn),
                "train_one_epoch(model, loader, optimizer, loss_fn)",
            )
        except CheckFailed:
            if not used_fit[0]:
                raise

    def arrays(tensors: Sequence[torch.Tensor | None]) -> list[np.ndarray | None]:
        return [None if t is None else _cpu(t).numpy() for t in tensors]

    return {
        "used_fit": used_fit[0],
        "result": _as_plain(result),
        "loss_calls": loss_fn.calls,
        "steps": [
            [arrays(s.gradients), arrays(s.before), arrays(s.after)] for s in optimizer.steps
        ],
        "settings_changed": optimizer._settings() != optimizer.settings,
        "final": arrays(list(model.parameters())),
    }


def _as_plain(value: Any) -> Any:
    """A returned value with its tensors detached and on the CPU (data a kernel can send)."""
    if isinstance(value, torch.Tensor):
        return _cpu(value)
    if isinstance(value, (list, tuple)):
        return [_cpu(v) if isinstance(v, torch.Tensor) else v for v in value]
    return value


def _weights(arrays: Any, shapes: list[tuple], missing_ok: bool = False) -> list[Any]:
    """One float tensor per parameter, of its shape (``None`` too, if ``missing_ok``)."""
    if not isinstance(arrays, (list, tuple)) or len(arrays) != len(shapes):
        raise ValueError(f"{len(shapes)} tensors expected")
    tensors: list[Any] = []
    for array, shape in zip(arrays, shapes, strict=True):
        if array is None and missing_ok:
            tensors.append(None)
            continue
        tensor = torch.as_tensor(array, dtype=torch.float32)
        if tuple(tensor.shape) != shape:
            raise ValueError(f"a tensor of shape {tuple(tensor.shape)} where {shape} belongs")
        tensors.append(tensor)
    return tensors


def judge_epoch(setting: _Setting, record: dict[str, Any]) -> None:
    """Compare a :func:`record_epoch` record with the oracle on the same ``setting``; print
    the PASS line, or raise :class:`CheckFailed` with a hint. Nothing in the record is
    taken on trust: a malformed one fails too."""
    name = "check_training_loop"
    template, loader = _fixture(setting)
    shapes = [tuple(p.shape) for p in template.parameters()]
    try:
        steps = [
            _Step(
                _weights(step[0], shapes, missing_ok=True),
                _weights(step[1], shapes),
                _weights(step[2], shapes),
            )
            for step in record["steps"]
        ]
        final = _weights(record["final"], shapes)
        used_fit, loss_calls = bool(record["used_fit"]), int(record["loss_calls"])
        settings_changed, result = bool(record["settings_changed"]), record["result"]
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
        fail(name, f"the record of your epoch is malformed ({error}).", error)
    if used_fit:
        fail(
            name,
            "your function calls course_utils.train.fit: this task is to write the "
            "loop that fit runs for you, with the optimizer and loss_fn you are given.",
        )
    losses = _returned_losses(name, result, setting.batches)
    if loss_calls == 0:
        fail(
            name,
            "the loss_fn you were given was never called: use the loss_fn argument, "
            "not a loss of your own.",
        )
    if not steps:
        if _close(final, [_cpu(p) for p in template.parameters()]):
            fail(name, "the weights did not change: did you call optimizer.step()?")
        fail(
            name,
            "the weights changed, but the optimizer you were given never stepped: did "
            "you create an optimizer of your own? Use the optimizer argument.",
        )
    if len(steps) != setting.batches:
        fail(
            name,
            f"optimizer.step() ran {len(steps)} times for {setting.batches} batches: "
            "once per batch.",
        )
    expected = _check_steps(name, template, list(loader), steps, settings_changed, final)
    for k, (got, want) in enumerate(zip(losses, expected, strict=True), start=1):
        if not np.isclose(got, want, rtol=1e-4, atol=1e-6):
            hint = (
                " They look like plain cross-entropy: return the values of loss_fn."
                if np.isclose(got * LOSS_SCALE, want, rtol=1e-4)
                else " Return each step's own loss (loss.item()), not a running mean or sum."
            )
            fail(
                name,
                f"the training steps are right, but the loss you returned for step {k} "
                f"({got:.5f}) is not that step's loss.{hint}",
            )
    passed(
        name,
        f"{setting.batches} steps use the given optimizer and loss_fn, each gradient agrees "
        "with torch.autograd, and the step losses are returned",
    )


def epoch_setting(rng: np.random.Generator) -> dict[str, int]:
    """A fresh setting for :func:`run_epoch` (plain data: it can travel to a kernel)."""
    return asdict(_Setting.draw(rng))


def run_epoch(train_one_epoch: Callable[..., Any], **setting: int) -> dict[str, Any]:
    """Run ``train_one_epoch`` for one epoch on the check's model and loader made from
    ``setting`` (see :func:`epoch_setting`), with SGD with momentum and the scaled
    cross-entropy; return the losses it returned and the weights after it, as arrays.

    A grader calls it in a student's kernel and again, with a loop of its own, in its
    own process, and compares the two results: only data crosses between them.

    >>> result = run_epoch(lambda model, loader, optimizer, loss_fn: [], batches=2)
    >>> result["losses"].shape, len(result["weights"])
    ((0,), 6)
    """
    template, loader = _fixture(_Setting(**setting))
    model = copy.deepcopy(template).eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    losses = train_one_epoch(model, loader, optimizer, _ScaledCrossEntropy())
    if isinstance(losses, torch.Tensor):
        losses = losses.detach().cpu()
    elif isinstance(losses, (list, tuple)):
        losses = [v.detach().cpu() if isinstance(v, torch.Tensor) else v for v in losses]
    return {
        "losses": np.asarray(losses, dtype=np.float64).reshape(-1),
        "weights": [p.detach().cpu().numpy() for p in model.parameters()],
    }
