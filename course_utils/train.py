"""Train a model: :func:`fit` with validation, early stopping, checkpoints and progress.

``fit`` is the loop students write by hand in Assignment 2, plus the bookkeeping around
it: a :class:`History`, early stopping with best-model restore, checkpoints, progress
bars, and callbacks (a live plot of the learning curves, for one)::

    from course_utils import train
    history = train.fit(model, train_loader, val_loader, epochs=10, patience=3)
    history.to_frame()                          # one row per epoch
    train.evaluate(model, test_loader)          # {'loss': ..., 'acc': ...}
    preds = train.predict(model, test_loader)   # every label, prediction, probability

Nothing is lost when training goes wrong: a NaN loss stops training with a warning and
Ctrl-C stops it with a message; either way the model gets its best weights back and
``fit`` returns the history recorded so far.

The trainer draws nothing itself: plots subscribe as callbacks
(``fit(..., callbacks=[viz.LiveLearningCurves()])``), so this module never imports
:mod:`course_utils.viz`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from course_utils import config, metrics
from course_utils.data.loaders import Loader
from course_utils.progress import progress_bar

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# A score of a whole validation pass: (outputs, targets), both on the CPU, to a number.
MetricFn = Callable[[torch.Tensor, torch.Tensor], float]

EPOCH_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
STEP_COLUMNS = ("epoch", "step", "loss")


@dataclass
class History:
    """What happened during :func:`fit`.

    ``steps`` holds one record per optimiser step: ``epoch`` (fractional, so that
    steps and epochs share one axis: step 5 of 20 in the second epoch is at 1.25),
    ``step`` (counted from 1 over the whole run) and ``loss``. ``epochs`` holds one
    record per finished epoch with the columns :data:`EPOCH_COLUMNS`, and a
    ``val_<name>`` column per extra validation metric (``fit(val_metrics=...)``);
    accuracies are fractions, and the validation columns are NaN when there is no
    validation set.
    ``best_val_loss`` is ``None`` without a validation set (the best epoch is then the
    last one). ``left_plateau_epoch`` is the first epoch whose validation loss fell
    clearly below the first epoch's (see :func:`fit`), ``None`` while it has not.
    ``stop_reason`` says why training ended, for example ``"completed"`` or
    ``"interrupted (Ctrl-C)"``.

    >>> history = History()
    >>> history.epochs.append({"epoch": 1, "train_loss": 0.9, "train_acc": 0.7,
    ...                        "val_loss": 0.8, "val_acc": 0.75, "seconds": 1.2})
    >>> history.to_frame()[["epoch", "val_acc"]].values.tolist()
    [[1.0, 0.75]]
    """

    steps: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    left_plateau_epoch: int | None = None
    stop_reason: str = "not started"

    @property
    def best(self) -> dict[str, float]:
        """The record of the best epoch (the one whose weights the model keeps).

        >>> history = History(epochs=[{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.6}],
        ...                   best_epoch=2)
        >>> history.best["val_acc"]
        0.6
        """
        if self.best_epoch is None:
            raise ValueError("no best epoch yet: train at least one epoch first.")
        return self.epochs[self.best_epoch - 1]

    def to_frame(self) -> pd.DataFrame:
        """Return one row per finished epoch: the columns :data:`EPOCH_COLUMNS`, then
        any extra validation metrics.

        >>> History(epochs=[{"epoch": 1, "val_f1": 0.8}]).to_frame().columns[-2:].tolist()
        ['seconds', 'val_f1']
        """
        extra = [
            name
            for name in dict.fromkeys(key for record in self.epochs for key in record)
            if name not in EPOCH_COLUMNS
        ]
        return pd.DataFrame(self.epochs, columns=[*EPOCH_COLUMNS, *extra])

    def steps_frame(self) -> pd.DataFrame:
        """Return one row per optimiser step, with the columns :data:`STEP_COLUMNS`."""
        return pd.DataFrame(self.steps, columns=list(STEP_COLUMNS))


@runtime_checkable
class EpochCallback(Protocol):
    """What :func:`fit` tells a callback: each finished epoch, then the end of training.

    >>> class Count:
    ...     def __init__(self): self.epochs = 0
    ...     def on_epoch_end(self, history): self.epochs += 1
    ...     def on_train_end(self, history): pass
    >>> isinstance(Count(), EpochCallback)
    True
    """

    def on_epoch_end(self, history: History) -> None: ...

    def on_train_end(self, history: History) -> None: ...


class _NonFiniteLoss(Exception):
    """The training loss became NaN or infinite; the message says where."""


def _predicted_classes(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The class each output stands for, in the dtype and shape of ``targets``."""
    if outputs.shape == targets.shape:  # one logit per target, as for BCEWithLogitsLoss
        return (outputs > 0).to(targets.dtype)
    # Class scores along dim 1, as for CrossEntropyLoss (also per pixel).
    return outputs.argmax(dim=1)


def _probabilities(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Turn logits into probabilities, matching :func:`_predicted_classes`."""
    if outputs.shape == targets.shape:
        return torch.sigmoid(outputs)  # the probability of class 1
    return torch.softmax(outputs, dim=1)


class _RunningMetrics:
    """Mean loss (weighted by batch size) and accuracy over the batches seen so far."""

    def __init__(self) -> None:
        self.loss_sum, self.samples = 0.0, 0
        self.correct, self.predictions = 0, 0

    def update(self, loss: float, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.loss_sum += loss * len(targets)
        self.samples += len(targets)
        self.correct += int((_predicted_classes(outputs, targets) == targets).sum())
        self.predictions += targets.numel()

    def result(self) -> dict[str, float]:
        if self.samples == 0:
            raise ValueError("The data loader yielded no batches: is the dataset empty?")
        return {"loss": self.loss_sum / self.samples, "acc": self.correct / self.predictions}


BatchCallback = Callable[[torch.Tensor, torch.Tensor], None]


@torch.no_grad()
def _evaluation_pass(
    model: nn.Module,
    loader: Loader,
    loss_fn: LossFn | None,
    device: torch.device | str | None,
    on_batch: BatchCallback | None = None,
) -> dict[str, float]:
    """The loop behind :func:`evaluate` and :func:`predict`.

    Returns the mean loss and accuracy, and hands each batch's outputs and targets to
    ``on_batch``, so that :func:`predict` keeps them without a second loop.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    # A model without parameters (nn.Identity) runs anywhere; use the CPU for it.
    device = device or next(model.parameters(), torch.empty(0)).device
    model.eval()
    running = _RunningMetrics()
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        running.update(loss_fn(outputs, targets).item(), outputs, targets)
        if on_batch is not None:
            on_batch(outputs, targets)
    return running.result()


def evaluate(
    model: nn.Module,
    loader: Loader,
    loss_fn: LossFn | None = None,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Return the mean loss and the accuracy (a fraction) of ``model`` on ``loader``.

    The model is put in eval mode (dropout off, batch norm uses its running
    statistics) and no gradients are kept. ``loss_fn`` defaults to cross-entropy and
    ``device`` to the device the model's parameters are on. To keep every prediction
    as well, use :func:`predict`.

    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 1, 0])
    >>> loader = DataLoader(TensorDataset(logits, labels), batch_size=2)
    >>> evaluate(nn.Identity(), loader)["acc"]
    0.75
    """
    return _evaluation_pass(model, loader, loss_fn, device)


@dataclass(frozen=True)
class Predictions:
    """What a model predicts for every example of a loader, on the CPU.

    ``labels`` and ``predictions`` are class indices in the loader's order (so use an
    unshuffled loader to line them up with the dataset); ``probabilities`` are the
    softmax of the outputs, one row per example (for one logit per target, as with
    ``BCEWithLogitsLoss``, the sigmoid: the probability of class 1). ``loss`` is the
    mean loss, exactly as :func:`evaluate` reports it.

    >>> preds = Predictions(labels=torch.tensor([0, 1, 1]), predictions=torch.tensor([0, 1, 0]),
    ...                     probabilities=torch.tensor([[.9, .1], [.2, .8], [.6, .4]]), loss=0.4)
    >>> preds.accuracy, preds.correct.tolist()
    (0.6666666666666666, [True, True, False])
    >>> preds.confusion_matrix().tolist()
    [[1, 0], [1, 1]]
    """

    labels: torch.Tensor
    predictions: torch.Tensor
    probabilities: torch.Tensor
    loss: float

    @property
    def correct(self) -> torch.Tensor:
        """A boolean mask: which predictions equal their label."""
        return self.predictions == self.labels

    @property
    def accuracy(self) -> float:
        """The fraction of correct predictions."""
        return metrics.accuracy(self.predictions, self.labels)

    @property
    def num_classes(self) -> int:
        """How many classes the model scores (2 for one logit per target)."""
        if self.probabilities.shape == self.labels.shape:
            return 2
        return self.probabilities.shape[1]

    def confusion_matrix(self) -> np.ndarray:
        """Counts of (true class, predicted class); see :func:`metrics.confusion_matrix`."""
        return metrics.confusion_matrix(self.labels, self.predictions, self.num_classes)


def _collect_outputs(
    model: nn.Module, loader: Loader, loss_fn: LossFn | None, device: torch.device | str | None
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """:func:`evaluate`'s loss and accuracy, and every output and target, on the CPU."""
    outputs, targets = [], []

    def keep(batch_outputs: torch.Tensor, batch_targets: torch.Tensor) -> None:
        # On the CPU at once, so a whole test set never piles up in GPU memory.
        outputs.append(batch_outputs.cpu())
        targets.append(batch_targets.cpu())

    result = _evaluation_pass(model, loader, loss_fn, device, on_batch=keep)
    return result, torch.cat(outputs), torch.cat(targets)


def _validate(
    model: nn.Module,
    loader: Loader,
    loss_fn: LossFn,
    device: torch.device,
    val_metrics: Mapping[str, MetricFn],
) -> dict[str, float]:
    """Validation loss and accuracy, and each of ``val_metrics`` over the whole pass."""
    if not val_metrics:
        return evaluate(model, loader, loss_fn, device)
    # Scores such as F1 are not averages over batches, so each metric sees every output
    # of the pass at once.
    result, outputs, targets = _collect_outputs(model, loader, loss_fn, device)
    return {
        **result,
        **{name: float(metric(outputs, targets)) for name, metric in val_metrics.items()},
    }


def predict(
    model: nn.Module,
    loader: Loader,
    loss_fn: LossFn | None = None,
    device: torch.device | str | None = None,
) -> Predictions:
    """Run ``model`` over ``loader`` and keep every label, prediction and probability.

    Works like :func:`evaluate` (eval mode, no gradients, same defaults) and returns
    :class:`Predictions`, from which the accuracy, a confusion matrix and examples of
    right and wrong answers follow.

    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    >>> loader = DataLoader(TensorDataset(logits, torch.tensor([0, 1, 1])), batch_size=2)
    >>> preds = predict(nn.Identity(), loader)
    >>> preds.predictions.tolist(), preds.accuracy, round(preds.loss, 4)
    ([0, 1, 0], 0.6666666666666666, 0.7936)
    >>> [round(p, 3) for p in preds.probabilities[0].tolist()]  # softmax of [2, 0]
    [0.881, 0.119]
    """
    result, outputs, labels = _collect_outputs(model, loader, loss_fn, device)
    return Predictions(
        labels=labels,
        predictions=_predicted_classes(outputs, labels),
        probabilities=_probabilities(outputs, labels),
        loss=result["loss"],
    )


def _train_one_epoch(
    model: nn.Module,
    loader: Loader,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    steps: list[dict[str, float]],
    bar: tqdm,
    log_every: int,
) -> dict[str, float]:
    """Train on each batch once; append a record per step to ``steps``.

    Returns the epoch's mean loss and accuracy, measured while the weights changed.
    """
    model.train()
    running = _RunningMetrics()
    n_batches = len(loader)
    for batch, (inputs, targets) in enumerate(loader, start=1):
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        loss = loss_fn(outputs, targets)
        value = loss.item()
        step = len(steps) + 1
        if not math.isfinite(value):
            # Checked before backward(): the weights are still those of the last good step.
            kind = "NaN" if math.isnan(value) else "infinite"
            raise _NonFiniteLoss(
                f"{kind} loss at epoch {epoch} step {step} (batch {batch} of {n_batches})"
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        steps.append({"epoch": epoch - 1 + batch / n_batches, "step": step, "loss": value})
        running.update(value, outputs, targets)
        bar.update()
        if batch % log_every == 0:
            # refresh=False: the bar redraws itself often enough, at most ~10 times a second.
            bar.set_postfix(loss=f"{running.result()['loss']:.4f}", refresh=False)
    return running.result()


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights on the CPU, untouched by later training steps."""
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}


def _save_checkpoint(
    path: Path, state: dict[str, torch.Tensor], epoch: int, val_loss: float | None
) -> None:
    """Save weights so that ``torch.load(path, weights_only=True)`` can read them."""
    # On the CPU, so that a checkpoint trained on a GPU also opens on a laptop.
    state = {name: value.cpu() for name, value in state.items()}
    # Write a temporary file, then rename it: Ctrl-C in the middle of a save leaves the
    # previous checkpoint intact rather than a truncated one.
    partial = path.with_suffix(".partial")
    torch.save({"state_dict": state, "epoch": epoch, "val_loss": val_loss}, partial)
    partial.replace(path)


def load_checkpoint(model: nn.Module, path: str | Path) -> dict:
    """Load weights saved by :func:`fit` into ``model`` and return the checkpoint.

    The checkpoint is a dict with ``state_dict``, ``epoch`` and ``val_loss``. It is
    read with ``weights_only=True``, which refuses to run code hidden in a file.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "best.pt"
    >>> _save_checkpoint(path, nn.Linear(2, 2).state_dict(), epoch=3, val_loss=0.5)
    >>> load_checkpoint(nn.Linear(2, 2), path)["epoch"]
    3
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])
    return checkpoint


def _improves(val_loss: float | None, best_val_loss: float | None, min_delta: float) -> bool:
    """Whether an epoch beats the best so far by more than ``min_delta``.

    Without a validation set (``val_loss`` is None) every epoch counts as the best.
    """
    return val_loss is None or best_val_loss is None or val_loss < best_val_loss - min_delta


# A network often starts on a plateau: at chance level for some epochs, its validation
# loss flat or drifting up, before it starts to learn. Early stopping there would end
# the run before it began, so patience only counts once the validation loss has fallen
# this fraction below the first epoch's (a net at chance moves it far less).
PLATEAU_DROP = 0.01


def _leaves_plateau(history: History, val_loss: float | None, min_delta: float) -> bool:
    """Whether ``val_loss`` is the first clear improvement on the first epoch's."""
    if history.left_plateau_epoch is not None or val_loss is None:
        return False
    return val_loss < history.epochs[0]["val_loss"] * (1 - PLATEAU_DROP) - min_delta


def _patience_ran_out(history: History, epoch: int, patience: int, min_epochs: int) -> bool:
    """Whether early stopping ends training after ``epoch``: ``patience`` epochs without
    improvement, counted from the first clear improvement, and not before ``min_epochs``.
    """
    if epoch < min_epochs or history.left_plateau_epoch is None or history.best_epoch is None:
        return False
    return epoch - max(history.best_epoch, history.left_plateau_epoch) >= patience


def _restore_note(history: History) -> str:
    if history.best_epoch is None:
        return "No epoch finished: the model keeps its initial weights."
    note = f"The model has the weights of epoch {history.best_epoch}"
    if history.best_val_loss is not None:
        note += f" (best val_loss {history.best_val_loss:.4f})"
    return note + "."


_NO_VALIDATION = {"loss": math.nan, "acc": math.nan}


def fit(
    model: nn.Module,
    train_loader: Loader,
    val_loader: Loader | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: LossFn | None = None,
    epochs: int = 10,
    patience: int | None = None,
    min_delta: float = 0.0,
    min_epochs: int = 0,
    device: torch.device | str | None = None,
    log_every: int = 50,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[EpochCallback] = (),
    progress: bool = True,
    val_metrics: Mapping[str, MetricFn] | None = None,
) -> History:
    """Train ``model`` for up to ``epochs`` epochs and return its :class:`History`.

    After each epoch the model is evaluated on ``val_loader``. An epoch *improves* when
    its validation loss is lower than the best so far by more than ``min_delta``; with
    ``patience=N``, training stops after N epochs in a row without improvement, with two
    guards against stopping a network that has not started to learn:

    - patience counts from the first *clear* improvement, an epoch whose validation
      loss is :data:`PLATEAU_DROP` (1 %) and ``min_delta`` below the first epoch's, so a
      network stuck on its first, chance-level plateau trains on (up to ``epochs``);
    - early stopping never ends training before epoch ``min_epochs``.

    However training ends (completed, early stopping, NaN loss, Ctrl-C), the model
    gets back the weights of its best epoch, kept as a copy in memory. Without
    ``val_loader`` there is no early stopping and the best epoch is the last one.

    - ``optimizer`` defaults to Adam with learning rate 1e-3, ``loss_fn`` to
      cross-entropy and ``device`` to :func:`course_utils.config.pick_device`;
      the model is moved there.
    - A progress bar per epoch shows the running loss, updated every ``log_every``
      steps (``progress=False`` hides it).
    - ``checkpoint_dir``: ``best.pt`` is saved when the validation loss improves and
      ``last.pt`` after every epoch; read them with :func:`load_checkpoint`.
    - ``callbacks``: objects with ``on_epoch_end(history)`` and ``on_train_end(history)``
      (see :class:`EpochCallback`), told after every epoch and once at the end; for
      example :class:`course_utils.viz.LiveLearningCurves`, which redraws the learning
      curves after every epoch in Jupyter.
    - ``val_metrics`` maps names to functions ``metric(outputs, targets) -> float``,
      called after each epoch with every output and target of the validation pass (on
      the CPU); ``{"f1": ...}`` adds a ``val_f1`` column to the history. Early stopping
      still watches the validation loss.
    - A NaN or infinite loss stops training at once with a ``RuntimeWarning``; Ctrl-C
      stops it with a message. Neither raises: the history so far is returned.

    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> x = torch.randn(64, 2)
    >>> loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    >>> history = fit(nn.Linear(2, 2), loader, loader, epochs=3, device="cpu",
    ...               progress=False)
    >>> history.to_frame().shape, len(history.steps), history.stop_reason
    ((3, 6), 12, 'completed')
    """
    if patience is not None and val_loader is None:
        raise ValueError("patience needs a val_loader: early stopping watches the validation loss.")
    if patience is not None and patience < 1:
        raise ValueError(f"patience counts epochs and must be at least 1, got {patience}.")
    if min_epochs < 0:
        raise ValueError(f"min_epochs counts epochs and must be at least 0, got {min_epochs}.")
    val_metrics = dict(val_metrics or {})
    if val_metrics and val_loader is None:
        raise ValueError("val_metrics needs a val_loader: they score the validation pass.")
    clashes = sorted(set(val_metrics) & {"loss", "acc"})
    if clashes:
        raise ValueError(
            f"val_metrics names {clashes} clash with the validation loss and "
            "accuracy that fit records anyway; pick other names."
        )
    device = torch.device(device) if device is not None else config.pick_device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)

    history = History(stop_reason="completed")
    best_state = _cpu_copy(model)  # until an epoch finishes, the best is where we started
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            # The bar is updated by hand, not wrapped around the loader, so that it stays
            # open after the last batch to show the validation results too.
            with progress_bar(
                total=len(train_loader), desc=f"epoch {epoch}/{epochs}", disable=not progress
            ) as bar:
                train = _train_one_epoch(
                    model,
                    train_loader,
                    loss_fn,
                    optimizer,
                    device,
                    epoch,
                    history.steps,
                    bar,
                    log_every,
                )
                val = (
                    _validate(model, val_loader, loss_fn, device, val_metrics)
                    if val_loader is not None
                    else _NO_VALIDATION
                )
                record = {
                    "epoch": epoch,
                    "train_loss": train["loss"],
                    "train_acc": train["acc"],
                    "val_loss": val["loss"],
                    "val_acc": val["acc"],
                    "seconds": time.perf_counter() - start,
                    **{f"val_{name}": val[name] for name in val_metrics},
                }
                bar.set_postfix(
                    {
                        name: f"{value:.4f}"
                        for name, value in record.items()
                        if name not in ("epoch", "seconds") and not math.isnan(value)
                    }
                )
            history.epochs.append(record)

            val_loss = val["loss"] if val_loader is not None else None
            if _improves(val_loss, history.best_val_loss, min_delta):
                history.best_epoch, history.best_val_loss = epoch, val_loss
                best_state = _cpu_copy(model)
                if folder is not None:
                    _save_checkpoint(folder / "best.pt", best_state, epoch, val_loss)
            if _leaves_plateau(history, val_loss, min_delta):
                history.left_plateau_epoch = epoch
            if folder is not None:
                _save_checkpoint(folder / "last.pt", model.state_dict(), epoch, val_loss)
            for callback in callbacks:
                callback.on_epoch_end(history)

            if patience is not None and _patience_ran_out(history, epoch, patience, min_epochs):
                history.stop_reason = (
                    f"early stopping: no val_loss improvement > {min_delta:g} for {patience} epochs"
                )
                break
    except _NonFiniteLoss as error:
        history.stop_reason = str(error)
        warnings.warn(
            f"Training stopped: {error}. {_restore_note(history)} "
            "Checkpoints on disk are from the last finished epoch.",
            RuntimeWarning,
            stacklevel=2,
        )
    except KeyboardInterrupt:
        history.stop_reason = "interrupted (Ctrl-C)"
        print(
            f"Training interrupted (Ctrl-C) in epoch {len(history.epochs) + 1}; the history "
            f"of the epochs before it is returned. {_restore_note(history)}"
        )
    else:
        if progress:
            print(f"fit: {history.stop_reason}. {_restore_note(history)}")

    model.load_state_dict(best_state)
    for callback in callbacks:
        callback.on_train_end(history)
    return history
