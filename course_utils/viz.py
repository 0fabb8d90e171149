"""Plots for the course: one colour-blind-safe style, and learning curves.

Importing this module applies the course style (:func:`use_course_style`), so every
plot in a notebook uses the same colours. Helpers return the figure and never call
``plt.show()``; the notebook cell ends with ``plt.show()`` itself::

    from course_utils import viz
    viz.plot_learning_curves(history, test=test_metrics)
    plt.show()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:  # train imports viz, so importing train here at runtime would be circular
    from course_utils.train import History

# Okabe & Ito (2008), "Color Universal Design": eight colours that stay distinct for the
# common kinds of colour blindness. Ordered so that the first lines drawn get the colours
# with the most contrast on white; yellow comes late because thin yellow lines are hard
# to see.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

# Which colour means what in every learning-curve plot of the course.
TRAIN_COLOR, VAL_COLOR, TEST_COLOR = PALETTE[0], PALETTE[1], PALETTE[2]


def use_course_style() -> None:
    """Make matplotlib (and so seaborn) draw with :data:`PALETTE` and a light grid.

    seaborn takes its default colours from matplotlib's colour cycle, so setting
    the cycle here is enough for both libraries.

    >>> use_course_style()
    >>> plt.rcParams["axes.prop_cycle"].by_key()["color"][0] == PALETTE[0]
    True
    """
    mpl.rcParams.update({
        "axes.prop_cycle": cycler(color=list(PALETTE)),
        "axes.grid": True,
        "grid.alpha": 0.3,
    })


use_course_style()


def _as_frames(history: History | pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None,
                                                          int | None]:
    """Per-epoch frame, per-step frame (if known) and best epoch of ``history``."""
    if isinstance(history, pd.DataFrame):
        epochs = history
        has_val = "val_loss" in epochs and epochs["val_loss"].notna().any()
        best = int(epochs.loc[epochs["val_loss"].idxmin(), "epoch"]) if has_val else None
        return epochs, None, best
    return history.to_frame(), history.steps_frame(), history.best_epoch


def _plot_metric(ax: Axes, epochs: pd.DataFrame, metric: str, scale: float) -> None:
    """Draw the train and (when recorded) validation curves of one metric."""
    ax.plot(epochs["epoch"], epochs[f"train_{metric}"] * scale, "o-", color=TRAIN_COLOR,
            label="train")
    val = epochs.get(f"val_{metric}")
    if val is not None and val.notna().any():
        ax.plot(epochs["epoch"], val * scale, "s-", color=VAL_COLOR, label="validation")


def plot_learning_curves(history: History | pd.DataFrame,
                         test: Mapping[str, float] | None = None,
                         title: str | None = None,
                         axes: Sequence[Axes] | None = None) -> Figure:
    """Plot loss and accuracy against epochs: train, validation and optionally test.

    ``history`` is what :func:`course_utils.train.fit` returns, or its per-epoch
    frame (``history.to_frame()``), for example one loaded back from a CSV. With a
    ``History`` the per-step training loss is drawn too, as a faint line at
    fractional epochs (step 5 of 20 in epoch 2 is at epoch 1.25). ``test`` is a dict
    with ``loss`` and ``acc`` (a fraction, as :func:`course_utils.train.evaluate`
    returns it), drawn as dashed horizontal lines. The best epoch (lowest validation
    loss) is marked with a dotted vertical line.

    Pass ``axes`` (two Axes) to draw into an existing figure; otherwise a new one is
    made. The figure is returned, not shown: end the cell with ``plt.show()``.

    >>> frame = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4],
    ...                       "train_acc": [0.6, 0.8, 0.9], "val_loss": [0.9, 0.7, 0.8],
    ...                       "val_acc": [0.6, 0.75, 0.7]})
    >>> fig = plot_learning_curves(frame, test={"loss": 0.75, "acc": 0.72})
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['loss (cross-entropy)', 'accuracy (%)']
    >>> plt.close(fig)
    """
    epochs, steps, best_epoch = _as_frames(history)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    loss_ax, acc_ax = axes

    if steps is not None and not steps.empty:
        loss_ax.plot(steps["epoch"], steps["loss"], color=TRAIN_COLOR, alpha=0.3,
                     linewidth=0.8, label="train (per step)")
    _plot_metric(loss_ax, epochs, "loss", scale=1)
    # Accuracies are stored as fractions; percent is easier to read on an axis.
    _plot_metric(acc_ax, epochs, "acc", scale=100)

    for ax, metric, scale, label in ((loss_ax, "loss", 1, "loss (cross-entropy)"),
                                     (acc_ax, "acc", 100, "accuracy (%)")):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":",
                       label=f"best epoch ({best_epoch})")
        if test is not None:
            value = test[metric] * scale
            ax.axhline(value, color=TEST_COLOR, linestyle="--", label=f"test ({value:.3g})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        # Epochs are whole numbers: no tick at 1.5 for the per-epoch points.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    loss_ax.set_title("loss")
    acc_ax.set_title("accuracy")
    fig = loss_ax.figure
    if title:
        fig.suptitle(title)
    return fig


def plot_filter_positions(W: int, F: int, S: int, P: int, output_size: int | None = None,
                          ax: plt.Axes | None = None) -> plt.Figure:
    """Draw where a width-``F`` filter lands on a padded row of ``W`` pixels.

    One bar per filter position, stacked below the input row, so the number of bars is
    the output width. ``output_size`` (for example the student's formula) goes in the
    title next to the true count, so a wrong formula shows up at once.

    >>> fig = plot_filter_positions(W=7, F=3, S=2, P=1, output_size=4)
    >>> fig.axes[0].get_title()
    'W=7, F=3, S=2, P=1: 4 filter positions (your formula: 4)'
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, (W + 2 * P) * 0.45), 3))
    starts = list(range(0, W + 2 * P - F + 1, S))
    for x in range(W + 2 * P):
        padding = x < P or x >= W + P
        ax.add_patch(plt.Rectangle((x - P, 0), 1, 1, edgecolor="black",
                                   facecolor="lightgrey" if padding else "white",
                                   hatch="//" if padding else None))
    for row, start in enumerate(starts, start=1):
        colour = PALETTE[row % len(PALETTE)]
        ax.add_patch(plt.Rectangle((start - P, -row * 0.7), F, 0.5, facecolor=colour, alpha=0.8))
        ax.text(start - P + F / 2, -row * 0.7 + 0.25, f"out {row - 1}", ha="center", va="center",
                fontsize=8)
    title = f"W={W}, F={F}, S={S}, P={P}: {len(starts)} filter positions"
    if output_size is not None:
        title += f" (your formula: {output_size})"
    ax.set_title(title)
    ax.set_xlim(-P - 0.5, W + P + 0.5)
    ax.set_ylim(-len(starts) * 0.7 - 0.3, 1.3)
    ax.set_xlabel("input position (pixels; hatched cells are zero padding)")
    ax.set_yticks([])
    return ax.figure
