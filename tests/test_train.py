"""Tests for course_utils.train: fit's stopping rules, restores, checkpoints, plots, and predict."""

import math

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: tests never open windows

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import train, viz

torch.set_num_threads(1)

N_TRAIN_BATCHES = 4


def blobs(n: int, seed: int) -> TensorDataset:
    """Two Gaussian blobs in 2-D, label = which side of x0 = 0 they are on."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    points = torch.randn(n, 2, generator=generator) * 0.5
    points[:, 0] += labels * 2.0 - 1.0
    return TensorDataset(points, labels)


@pytest.fixture
def loaders() -> tuple[DataLoader, DataLoader]:
    """Four training batches per epoch and one validation batch."""
    return (
        DataLoader(blobs(32, seed=0), batch_size=32 // N_TRAIN_BATCHES),
        DataLoader(blobs(16, seed=1), batch_size=16),
    )


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(2, 2)


class ScriptedValidation:
    """A loss function: cross-entropy in training, a scripted value per validation pass.

    A validation pass is recognised by gradients being off (``evaluate`` uses
    ``torch.no_grad``). Each one also snapshots the model's weights, so a test can
    compare the restored model with the weights it had after any epoch. The validation
    loader must yield a single batch, so that one call means one epoch.
    """

    def __init__(self, model: nn.Module, val_losses: list[float]) -> None:
        self.model = model
        self.val_losses = val_losses
        self.weights_after_epoch: list[dict[str, torch.Tensor]] = []

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return F.cross_entropy(outputs, targets)
        self.weights_after_epoch.append(
            {name: value.clone() for name, value in self.model.state_dict().items()}
        )
        return torch.tensor(self.val_losses[len(self.weights_after_epoch) - 1])

    def weights_of_epoch(self, epoch: int) -> dict[str, torch.Tensor]:
        return self.weights_after_epoch[epoch - 1]


def assert_weights_equal(model: nn.Module, expected: dict[str, torch.Tensor]) -> None:
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=name)


def fit(model, train_loader, val_loader, **kwargs) -> train.History:
    """``train.fit`` on the CPU, quietly, with a learning rate that visibly moves weights."""
    kwargs.setdefault("optimizer", torch.optim.SGD(model.parameters(), lr=0.5))
    return train.fit(model, train_loader, val_loader, device="cpu", progress=False, **kwargs)


def test_fit_learns_a_separable_problem(model, loaders):
    history = fit(model, *loaders, epochs=5)

    frame = history.to_frame()
    assert frame["train_loss"].iloc[-1] < frame["train_loss"].iloc[0]
    assert frame["val_acc"].iloc[-1] >= 0.9
    assert history.stop_reason == "completed"
    assert history.best_val_loss == frame["val_loss"].min()


def test_early_stopping_restores_best_weights(model, loaders):
    # Best at epoch 3; epochs 4-6 do not improve, so patience 3 stops after epoch 6.
    loss_fn = ScriptedValidation(model, [1.0, 0.8, 0.7, 0.75, 0.72, 0.9, 0.1, 0.1])

    history = fit(model, *loaders, loss_fn=loss_fn, epochs=8, patience=3)

    assert history.best_epoch == 3
    assert history.best_val_loss == pytest.approx(0.7)
    assert len(history.epochs) == history.best_epoch + 3
    assert history.stop_reason.startswith("early stopping")
    assert "3 epochs" in history.stop_reason
    # Training moved the weights after epoch 3, and fit put epoch 3's weights back.
    assert not torch.equal(
        loss_fn.weights_of_epoch(6)["weight"], loss_fn.weights_of_epoch(3)["weight"]
    )
    assert_weights_equal(model, loss_fn.weights_of_epoch(3))


@pytest.mark.parametrize(
    ("min_delta", "best_epoch", "epochs_run"),
    [
        (0.0, 4, 5),  # every small decrease counts; the run completes
        # Decreases of 0.05, 0.03, 0.01 are too small: epoch 1 stays the best, and since the
        # loss never clearly falls below epoch 1's, patience never starts counting.
        (0.1, 1, 5),
    ],
)
def test_min_delta_decides_what_counts_as_improvement(
    model, loaders, min_delta, best_epoch, epochs_run
):
    loss_fn = ScriptedValidation(model, [1.0, 0.95, 0.92, 0.91, 0.91])

    history = fit(model, *loaders, loss_fn=loss_fn, epochs=5, patience=2, min_delta=min_delta)

    assert history.best_epoch == best_epoch
    assert len(history.epochs) == epochs_run
    assert_weights_equal(model, loss_fn.weights_of_epoch(best_epoch))


def test_patience_counts_epochs_not_steps(model, loaders):
    # Many steps per epoch must not use up the patience: it takes two whole epochs.
    loss_fn = ScriptedValidation(model, [1.0, 0.5, 2.0, 3.0, 4.0])
    train_loader = DataLoader(blobs(32, seed=0), batch_size=2)  # 16 steps per epoch

    history = fit(model, train_loader, loaders[1], loss_fn=loss_fn, epochs=5, patience=2)

    assert len(history.epochs) == 4
    assert len(history.steps) == 4 * 16


def test_patience_waits_through_the_first_plateau(model, loaders):
    # At chance level for five epochs (the loss drifts up, which would use up a patience
    # of 3 by epoch 4), then the net learns: patience counts from epoch 6, the first
    # clear improvement on epoch 1, and runs out three epochs after the best, epoch 7.
    loss_fn = ScriptedValidation(
        model, [2.30, 2.30, 2.31, 2.32, 2.30, 1.5, 1.2, 1.3, 1.4, 1.5, 1.0]
    )

    history = fit(model, *loaders, loss_fn=loss_fn, epochs=11, patience=3)

    assert history.left_plateau_epoch == 6
    assert history.best_epoch == 7
    assert len(history.epochs) == 10
    assert history.stop_reason.startswith("early stopping")
    assert_weights_equal(model, loss_fn.weights_of_epoch(7))


def test_a_net_that_never_leaves_its_plateau_trains_all_epochs(model, loaders):
    loss_fn = ScriptedValidation(model, [2.303, 2.302, 2.304, 2.305, 2.306, 2.303])

    history = fit(model, *loaders, loss_fn=loss_fn, epochs=6, patience=2)

    assert history.left_plateau_epoch is None
    assert len(history.epochs) == 6 and history.stop_reason == "completed"
    assert history.best_epoch == 2


@pytest.mark.parametrize(
    ("min_epochs", "epochs_run", "best_epoch"),
    [
        (0, 4, 2),  # plain patience: two epochs without improvement after epoch 2
        (6, 6, 2),  # no stop before epoch 6; the weights of epoch 2 come back
        (7, 9, 7),  # epoch 7 is reached, a new best: patience runs out after epoch 9
    ],
)
def test_min_epochs_delays_early_stopping(model, loaders, min_epochs, epochs_run, best_epoch):
    loss_fn = ScriptedValidation(model, [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.3, 0.4, 0.5, 0.6])

    history = fit(model, *loaders, loss_fn=loss_fn, epochs=10, patience=2, min_epochs=min_epochs)

    assert len(history.epochs) == epochs_run
    assert history.best_epoch == best_epoch
    assert_weights_equal(model, loss_fn.weights_of_epoch(best_epoch))


def test_min_epochs_must_not_be_negative(model, loaders):
    with pytest.raises(ValueError, match="min_epochs counts epochs"):
        fit(model, *loaders, epochs=2, patience=1, min_epochs=-1)


def test_history_frames(model, loaders):
    history = fit(model, *loaders, epochs=3)

    frame = history.to_frame()
    assert list(frame.columns) == list(train.EPOCH_COLUMNS)
    assert frame["epoch"].tolist() == [1, 2, 3]
    assert (frame["seconds"] > 0).all()
    assert frame[["train_acc", "val_acc"]].stack().between(0, 1).all()

    steps = history.steps_frame()
    assert list(steps.columns) == list(train.STEP_COLUMNS)
    assert steps["step"].tolist() == list(range(1, 3 * N_TRAIN_BATCHES + 1))
    # Fractional epochs: step 1 of 4 is at 0.25, the last step of epoch 3 at 3.0.
    assert steps["epoch"].tolist()[:5] == [0.25, 0.5, 0.75, 1.0, 1.25]
    assert steps["epoch"].iloc[-1] == 3.0
    # The per-epoch training loss is the mean of that epoch's step losses (equal batches).
    first_epoch = steps.loc[steps["epoch"] <= 1, "loss"]
    assert frame["train_loss"].iloc[0] == pytest.approx(first_epoch.mean())


def test_without_validation_the_last_epoch_is_best(model, loaders):
    history = fit(model, loaders[0], None, epochs=3)

    assert history.best_epoch == 3
    assert history.best_val_loss is None
    assert history.stop_reason == "completed"
    assert history.to_frame()["val_loss"].isna().all()


def test_patience_without_validation_is_refused(model, loaders):
    with pytest.raises(ValueError, match="val_loader"):
        fit(model, loaders[0], None, patience=2)


class NaNFromStep:
    """Cross-entropy in training until ``step``, NaN from then on; scripted validation."""

    def __init__(self, validation: ScriptedValidation, step: int) -> None:
        self.validation = validation
        self.step = step
        self.calls = 0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.validation(outputs, targets)
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls >= self.step:
                return loss * math.nan
        return loss


def test_nan_loss_stops_and_keeps_best_weights(model, loaders, tmp_path):
    validation = ScriptedValidation(model, [0.5, 0.6, 0.7])
    loss_fn = NaNFromStep(validation, step=2 * N_TRAIN_BATCHES + 2)  # epoch 3, batch 2

    with pytest.warns(RuntimeWarning, match="NaN loss at epoch 3 step 10"):
        history = fit(model, *loaders, loss_fn=loss_fn, epochs=5, checkpoint_dir=tmp_path)

    assert history.stop_reason.startswith("NaN loss at epoch 3 step 10")
    assert len(history.epochs) == 2
    assert len(history.steps) == 9  # the NaN step is not recorded
    assert history.best_epoch == 1
    assert_weights_equal(model, validation.weights_of_epoch(1))
    # The checkpoints on disk are those of the last good epochs.
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 1
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 2


class InterruptAtStep:
    """Cross-entropy with scripted validation; raises KeyboardInterrupt at ``step``."""

    def __init__(self, validation: ScriptedValidation, step: int) -> None:
        self.validation = validation
        self.step = step
        self.calls = 0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls == self.step:
                raise KeyboardInterrupt
        return self.validation(outputs, targets)


def fit_catching_ctrl_c(*args, **kwargs) -> train.History:
    """``fit``, but a KeyboardInterrupt that escapes it fails the test, not the whole run."""
    try:
        return fit(*args, **kwargs)
    except KeyboardInterrupt:
        pytest.fail("fit let KeyboardInterrupt escape")


def test_ctrl_c_keeps_history_and_best_weights(model, loaders, capsys):
    validation = ScriptedValidation(model, [0.5, 0.4])
    loss_fn = InterruptAtStep(validation, step=N_TRAIN_BATCHES + 3)  # epoch 2, batch 3

    history = fit_catching_ctrl_c(model, *loaders, loss_fn=loss_fn, epochs=5)

    assert history.stop_reason == "interrupted (Ctrl-C)"
    assert [record["epoch"] for record in history.epochs] == [1]
    assert len(history.steps) == N_TRAIN_BATCHES + 2
    assert "interrupted (Ctrl-C)" in capsys.readouterr().out
    # Two steps of epoch 2 changed the weights; fit restored those of epoch 1.
    assert_weights_equal(model, validation.weights_of_epoch(1))


def test_ctrl_c_in_first_epoch_keeps_initial_weights(model, loaders):
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    loss_fn = InterruptAtStep(ScriptedValidation(model, []), step=3)

    history = fit_catching_ctrl_c(model, *loaders, loss_fn=loss_fn, epochs=2)

    assert history.epochs == [] and history.best_epoch is None
    assert_weights_equal(model, initial)


def test_checkpoints_load_with_weights_only(model, loaders, tmp_path):
    loss_fn = ScriptedValidation(model, [0.5, 0.3, 0.4])

    fit(model, *loaders, loss_fn=loss_fn, epochs=3, checkpoint_dir=tmp_path / "run")

    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert (best["epoch"], best["val_loss"]) == (2, pytest.approx(0.3))
    assert (last["epoch"], last["val_loss"]) == (3, pytest.approx(0.4))
    torch.testing.assert_close(last["state_dict"]["weight"], loss_fn.weights_of_epoch(3)["weight"])

    fresh = nn.Linear(2, 2)
    checkpoint = train.load_checkpoint(fresh, tmp_path / "run" / "best.pt")
    assert checkpoint["epoch"] == 2
    assert_weights_equal(fresh, loss_fn.weights_of_epoch(2))
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["best.pt", "last.pt"]


def test_evaluate_accuracy_and_loss_on_known_logits():
    # The "model" passes logits through; 3 of 5 predictions are right. Batches of 2
    # (the last one has 1 sample) check that the mean loss is weighted by batch size.
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0, 0])
    loader = DataLoader(TensorDataset(logits, labels), batch_size=2)

    result = train.evaluate(nn.Identity(), loader, nn.CrossEntropyLoss(), "cpu")

    assert result["acc"] == pytest.approx(3 / 5)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, labels).item())


def test_evaluate_switches_to_eval_mode_without_gradients():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    loader = DataLoader(blobs(8, seed=0), batch_size=4)

    first = train.evaluate(model, loader)
    second = train.evaluate(model, loader)

    assert not model.training
    assert first == second  # dropout is off, so two passes agree exactly
    assert all(parameter.grad is None for parameter in model.parameters())


def test_evaluate_binary_logits():
    # One logit per target (BCEWithLogitsLoss): positive logit means class 1.
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    targets = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    loader = DataLoader(TensorDataset(logits, targets), batch_size=4)

    result = train.evaluate(nn.Identity(), loader, nn.BCEWithLogitsLoss())

    assert result["acc"] == pytest.approx(3 / 4)


def linear_classifier() -> nn.Linear:
    """Three classes scored by hand: class 0 likes x0, class 1 likes x1, class 2 neither."""
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        model.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    return model


def test_predict_on_a_constructed_model():
    inputs = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 2, 1, 2])  # the last two will be wrong: predicted 0 and 1
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=2)  # 3 batches, last of 1
    model = linear_classifier()

    preds = train.predict(model, loader, device="cpu")

    assert preds.labels.tolist() == labels.tolist()
    assert preds.predictions.tolist() == [0, 1, 2, 0, 1]
    assert preds.correct.tolist() == [True, True, True, False, False]
    assert preds.accuracy == pytest.approx(3 / 5)
    with torch.no_grad():
        logits = model(inputs)
    torch.testing.assert_close(preds.probabilities, torch.softmax(logits, dim=1))
    torch.testing.assert_close(preds.probabilities.sum(dim=1), torch.ones(5))
    assert preds.loss == pytest.approx(F.cross_entropy(logits, labels).item())
    kept = (preds.labels, preds.predictions, preds.probabilities)
    assert {tensor.device.type for tensor in kept} == {"cpu"}


def test_predict_agrees_with_evaluate_and_counts_confusions():
    loader = DataLoader(blobs(20, seed=3), batch_size=6)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))

    preds = train.predict(model, loader)
    result = train.evaluate(model, loader)

    assert (preds.loss, preds.accuracy) == pytest.approx((result["loss"], result["acc"]))
    assert not model.training  # dropout off: predict and evaluate saw the same outputs
    matrix = preds.confusion_matrix()
    assert matrix.shape == (2, 2) and matrix.sum() == 20
    assert np.trace(matrix) == int(preds.correct.sum())


def test_predict_binary_logits_give_sigmoid_probabilities():
    logits = torch.tensor([[2.0], [-1.0], [0.5]])
    targets = torch.tensor([[1.0], [0.0], [0.0]])
    loader = DataLoader(TensorDataset(logits, targets), batch_size=2)

    preds = train.predict(nn.Identity(), loader, loss_fn=nn.BCEWithLogitsLoss())

    assert preds.predictions.flatten().tolist() == [1.0, 0.0, 1.0]
    torch.testing.assert_close(preds.probabilities, torch.sigmoid(logits))
    assert preds.accuracy == pytest.approx(2 / 3)
    assert preds.num_classes == 2
    assert preds.confusion_matrix().tolist() == [[1, 1], [0, 1]]


def test_progress_bar_shows_loss_and_can_be_hidden(model, loaders, capsys):
    train.fit(model, *loaders, epochs=1, device="cpu", log_every=1)
    shown = capsys.readouterr()
    assert "epoch 1/1" in shown.err and "val_loss=" in shown.err
    assert "fit: completed" in shown.out

    fit(model, *loaders, epochs=1)
    hidden = capsys.readouterr()
    assert hidden.err == "" and hidden.out == ""


def test_live_plot_is_static_outside_jupyter(model, loaders, monkeypatch):
    shown = []
    monkeypatch.setattr(viz.plt, "show", lambda: shown.append(viz.plt.gcf()))

    fit(model, *loaders, epochs=2, callbacks=[viz.LiveLearningCurves()])

    assert len(shown) == 1
    assert len(shown[0].axes) == 2
    viz.plt.close("all")


class FakeDisplayHandle:
    def __init__(self) -> None:
        self.updates = 0

    def update(self, figure) -> None:
        self.updates += 1


@pytest.mark.parametrize("env", ["1", "0"])
def test_live_plot_in_jupyter_updates_one_figure(model, loaders, monkeypatch, env):
    handle = FakeDisplayHandle()
    displayed, shown = [], []
    monkeypatch.setenv("COURSE_LIVE_PLOT", env)
    monkeypatch.setattr(viz, "_in_jupyter_kernel", lambda: True)
    monkeypatch.setattr(
        "IPython.display.display", lambda figure, display_id: displayed.append(figure) or handle
    )
    monkeypatch.setattr(viz.plt, "show", lambda: shown.append(True))
    open_before = viz.plt.get_fignums()

    fit(model, *loaders, epochs=3, callbacks=[viz.LiveLearningCurves()])

    if env == "1":  # one display, updated in place after epochs 2 and 3; no extra figure
        assert (len(displayed), handle.updates, len(shown)) == (1, 2, 0)
        # Each drawn figure was closed after display, or Jupyter would show it again.
        assert viz.plt.get_fignums() == open_before
    else:  # COURSE_LIVE_PLOT=0 (nbval, make run): one static figure at the end
        assert (len(displayed), len(shown)) == (0, 1)
    viz.plt.close("all")


def test_history_best_is_the_best_epoch_record():
    History = train.History
    history = History(
        epochs=[
            {"epoch": 1, "val_acc": 0.5},
            {"epoch": 2, "val_acc": 0.7},
            {"epoch": 3, "val_acc": 0.6},
        ],
        best_epoch=2,
    )
    assert history.best["val_acc"] == 0.7
    with pytest.raises(ValueError, match="no best epoch yet"):
        _ = History().best


def test_val_metrics_score_the_whole_validation_pass(model, loaders):
    seen = []

    def positives(outputs: torch.Tensor, targets: torch.Tensor) -> float:
        seen.append(len(targets))
        return float((outputs.argmax(dim=1) == 1).sum())

    # Two validation batches of 8: the metric must see all 16 outputs at once.
    val_loader = DataLoader(loaders[1].dataset, batch_size=8)
    history = fit(model, loaders[0], val_loader, epochs=2, val_metrics={"positives": positives})

    assert seen == [16, 16]
    frame = history.to_frame()
    assert list(frame.columns) == [*train.EPOCH_COLUMNS, "val_positives"]
    predictions = train.predict(model, val_loader).predictions
    # The model keeps the weights of the best epoch, whose record must match them.
    assert history.best["val_positives"] == float((predictions == 1).sum())


def test_val_metrics_need_validation_and_their_own_names(model, loaders):
    with pytest.raises(ValueError, match="val_metrics needs a val_loader"):
        fit(model, loaders[0], None, epochs=1, val_metrics={"f1": lambda o, t: 0.0})
    with pytest.raises(ValueError, match=r"\['acc'\] clash"):
        fit(model, *loaders, epochs=1, val_metrics={"acc": lambda o, t: 0.0})
