"""Tests for course_utils.viz: the course palette and the learning-curve plot."""

import math

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: tests never open windows

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from course_utils import viz
from course_utils.train import History


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def history() -> History:
    """Three epochs of two steps each; validation loss is lowest at epoch 2."""
    history = History(best_epoch=2, best_val_loss=0.7, stop_reason="completed")
    for epoch, (train_loss, val_loss) in enumerate([(1.0, 0.9), (0.6, 0.7), (0.4, 0.8)], 1):
        history.epochs.append({"epoch": epoch, "train_loss": train_loss,
                               "train_acc": 0.5 + epoch / 10, "val_loss": val_loss,
                               "val_acc": 0.45 + epoch / 10, "seconds": 1.0})
        for half in (1, 2):
            step = 2 * (epoch - 1) + half
            history.steps.append({"epoch": epoch - 1 + half / 2, "step": step,
                                  "loss": train_loss + 0.1 * (half == 1)})
    return history


def lines_by_label(ax: Axes) -> dict[str, Line2D]:
    return {line.get_label(): line for line in ax.get_lines()}


def test_two_labelled_panels_against_epochs(history):
    fig = viz.plot_learning_curves(history, title="LeNet")

    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "epoch"]
    assert loss_ax.get_ylabel() == "loss (cross-entropy)"
    assert acc_ax.get_ylabel() == "accuracy (%)"
    assert fig.get_suptitle() == "LeNet"
    assert all(ax.get_legend() is not None for ax in fig.axes)


def test_lines_of_a_history(history):
    loss_ax, acc_ax = viz.plot_learning_curves(history).axes

    loss_lines = lines_by_label(loss_ax)
    assert list(loss_lines) == ["train (per step)", "train", "validation", "best epoch (2)"]
    assert [text.get_text() for text in loss_ax.get_legend().get_texts()] == list(loss_lines)
    assert list(loss_lines["train"].get_xdata()) == [1, 2, 3]
    assert list(loss_lines["validation"].get_ydata()) == [0.9, 0.7, 0.8]
    # Per-step losses sit at fractional epochs, fainter than the per-epoch lines.
    assert list(loss_lines["train (per step)"].get_xdata()) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert loss_lines["train (per step)"].get_alpha() < 1
    assert list(loss_lines["best epoch (2)"].get_xdata()) == [2, 2]

    acc_lines = lines_by_label(acc_ax)
    assert list(acc_lines) == ["train", "validation", "best epoch (2)"]
    # Accuracy is drawn in percent, as the axis label says.
    assert acc_lines["train"].get_ydata() == pytest.approx([60, 70, 80])


def test_train_and_validation_colours_differ_and_come_from_the_palette(history):
    loss_ax, _ = viz.plot_learning_curves(history).axes
    lines = lines_by_label(loss_ax)

    colours = {lines["train"].get_color(), lines["validation"].get_color()}
    assert colours == {viz.TRAIN_COLOR, viz.VAL_COLOR}
    assert len(colours) == 2 and colours <= set(viz.PALETTE)


def test_test_metrics_drawn_as_dashed_lines(history):
    loss_ax, acc_ax = viz.plot_learning_curves(history, test={"loss": 0.75, "acc": 0.72}).axes

    loss_test = lines_by_label(loss_ax)["test (0.75)"]
    acc_test = lines_by_label(acc_ax)["test (72)"]
    assert list(loss_test.get_ydata()) == [0.75, 0.75]
    assert list(acc_test.get_ydata()) == pytest.approx([72, 72])
    assert loss_test.get_linestyle() == acc_test.get_linestyle() == "--"


def test_accepts_a_per_epoch_frame(history):
    frame = history.to_frame()
    frame.loc[2, "val_loss"] = 0.5  # now epoch 3 is best: found from the frame itself

    loss_ax, _ = viz.plot_learning_curves(frame).axes

    labels = list(lines_by_label(loss_ax))
    assert labels == ["train", "validation", "best epoch (3)"]  # no steps in a frame


def test_frame_without_validation_has_only_train_lines(history):
    frame = history.to_frame().assign(val_loss=math.nan, val_acc=math.nan)

    fig = viz.plot_learning_curves(frame)

    assert [list(lines_by_label(ax)) for ax in fig.axes] == [["train"], ["train"]]


def test_empty_history_still_plots():
    # Ctrl-C in the first epoch leaves a history with steps but no finished epoch.
    history = History(steps=[{"epoch": 0.5, "step": 1, "loss": 2.0}])

    loss_ax, _ = viz.plot_learning_curves(history).axes

    assert "train (per step)" in lines_by_label(loss_ax)


def test_draws_into_given_axes(history):
    fig, axes = plt.subplots(2, 2)

    returned = viz.plot_learning_curves(history, axes=axes[1])

    assert returned is fig
    assert len(axes[1][0].get_lines()) == 4 and not axes[0][0].get_lines()


def test_palette_is_okabe_ito_and_the_default_colour_cycle():
    assert len(viz.PALETTE) == len(set(viz.PALETTE)) == 8
    assert {"#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7"} <= set(viz.PALETTE)

    plt.rcParams["axes.prop_cycle"] = matplotlib.rcParamsDefault["axes.prop_cycle"]
    viz.use_course_style()

    _, ax = plt.subplots()
    first, second = ax.plot([0, 1]), ax.plot([1, 0])
    assert [first[0].get_color(), second[0].get_color()] == list(viz.PALETTE[:2])


def test_helper_does_not_show(history, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: pytest.fail("plt.show called"))

    assert isinstance(viz.plot_learning_curves(history), Figure)


def test_filter_positions_draws_one_bar_per_output():
    from matplotlib.patches import Rectangle
    fig = viz.plot_filter_positions(W=7, F=3, S=2, P=1, output_size=5)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() == 0.5]
    assert len(bars) == 4  # (7 - 3 + 2) // 2 + 1
    assert ax.get_title() == "W=7, F=3, S=2, P=1: 4 filter positions (your formula: 5)"
    assert "pixels" in ax.get_xlabel()
