"""Plots for the course: one colour-blind-safe style, learning curves, and what a
trained classifier learned and got wrong.

Importing this module applies the course style (:func:`use_course_style`), so every
plot in a notebook uses the same colours: :data:`PALETTE` for lines and bars,
:data:`SEQUENTIAL_CMAP` for heat maps. Helpers return the figure and never call
``plt.show()``; the notebook cell ends with ``plt.show()`` itself::

    from course_utils import viz
    viz.plot_learning_curves(history, test=test_metrics)
    plt.show()

The figures of a trained classifier:

- :func:`plot_confusion_matrix`: which classes are mistaken for which;
- :func:`plot_weight_histograms`: the distribution of each layer's weights and biases;
- :func:`plot_feature_maps`: every channel a layer outputs for one image;
- :func:`plot_example_grid`: correctly or wrongly classified images with their labels.

Runs repeated over seeds: :func:`plot_seed_bands` draws the mean curve of each
configuration with a min/max or ±std band, optionally on a log-scaled epoch axis.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, NullLocator, ScalarFormatter
from torch import nn

from course_utils.metrics import Labels, as_binary_mask, f1_score

if TYPE_CHECKING:  # for the type hints only: plots never import the trainer at run time
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

# For values on a scale (counts, activations): perceptually uniform, and readable with
# any common colour blindness and in greyscale print.
SEQUENTIAL_CMAP = "viridis"


def use_course_style() -> None:
    """Make matplotlib (and so seaborn) draw with :data:`PALETTE` and a light grid.

    seaborn takes its default colours from matplotlib's colour cycle, so setting
    the cycle here is enough for both libraries.

    >>> use_course_style()
    >>> plt.rcParams["axes.prop_cycle"].by_key()["color"][0] == PALETTE[0]
    True
    """
    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=list(PALETTE)),
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )


use_course_style()


def figure_of(ax: Axes) -> Figure:
    """The top-level figure that ``ax`` is drawn in (through any sub-figures).

    >>> fig, ax = plt.subplots()
    >>> figure_of(ax) is fig
    True
    >>> plt.close(fig)
    """
    fig = ax.get_figure(root=True)
    if fig is None:
        raise ValueError("these axes belong to no figure; create them with plt.subplots().")
    return fig


def _subfigure_list(made: np.ndarray | SubFigure) -> list[SubFigure]:
    """``Figure.subfigures`` returns one sub-figure alone, or an array of them: always a list."""
    return [made] if isinstance(made, SubFigure) else list(np.ravel(made))


def _as_frames(
    history: History | pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame | None, int | None]:
    """Per-epoch frame, per-step frame (if known) and best epoch of ``history``."""
    if isinstance(history, pd.DataFrame):
        epochs = history
        has_val = "val_loss" in epochs and epochs["val_loss"].notna().any()
        best = int(epochs.loc[epochs["val_loss"].idxmin(), "epoch"]) if has_val else None
        return epochs, None, best
    return history.to_frame(), history.steps_frame(), history.best_epoch


def _plot_metric(ax: Axes, epochs: pd.DataFrame, metric: str, scale: float) -> None:
    """Draw the train and (when recorded) validation curves of one metric."""
    ax.plot(
        epochs["epoch"], epochs[f"train_{metric}"] * scale, "o-", color=TRAIN_COLOR, label="train"
    )
    val = epochs.get(f"val_{metric}")
    if val is not None and val.notna().any():
        ax.plot(epochs["epoch"], val * scale, "s-", color=VAL_COLOR, label="validation")


def plot_learning_curves(
    history: History | pd.DataFrame,
    test: Mapping[str, float] | None = None,
    title: str | None = None,
    axes: Sequence[Axes] | None = None,
) -> Figure:
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
        loss_ax.plot(
            steps["epoch"],
            steps["loss"],
            color=TRAIN_COLOR,
            alpha=0.3,
            linewidth=0.8,
            label="train (per step)",
        )
    _plot_metric(loss_ax, epochs, "loss", scale=1)
    # Accuracies are stored as fractions; percent is easier to read on an axis.
    _plot_metric(acc_ax, epochs, "acc", scale=100)

    for ax, metric, scale, label in (
        (loss_ax, "loss", 1, "loss (cross-entropy)"),
        (acc_ax, "acc", 100, "accuracy (%)"),
    ):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
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
    fig = figure_of(loss_ax)
    if title:
        fig.suptitle(title)
    return fig


def plot_filter_positions(
    W: int, F: int, S: int, P: int, output_size: int | None = None, ax: plt.Axes | None = None
) -> plt.Figure:
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
        ax.add_patch(
            plt.Rectangle(
                (x - P, 0),
                1,
                1,
                edgecolor="black",
                facecolor="lightgrey" if padding else "white",
                hatch="//" if padding else None,
            )
        )
    for row, start in enumerate(starts, start=1):
        colour = PALETTE[row % len(PALETTE)]
        ax.add_patch(plt.Rectangle((start - P, -row * 0.7), F, 0.5, facecolor=colour, alpha=0.8))
        ax.text(
            start - P + F / 2,
            -row * 0.7 + 0.25,
            f"out {row - 1}",
            ha="center",
            va="center",
            fontsize=8,
        )
    title = f"W={W}, F={F}, S={S}, P={P}: {len(starts)} filter positions"
    if output_size is not None:
        title += f" (your formula: {output_size})"
    ax.set_title(title)
    ax.set_xlim(-P - 0.5, W + P + 0.5)
    ax.set_ylim(-len(starts) * 0.7 - 0.3, 1.3)
    ax.set_xlabel("input position (pixels; hatched cells are zero padding)")
    ax.set_yticks([])
    return figure_of(ax)


# --- curves over seeds ---------------------------------------------------------------------

BANDS = ("minmax", "std")
# Where a log-scaled epoch axis gets its labelled ticks: round numbers a reader can find.
_LOG_TICKS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000)


def _log_epoch_axis(ax: Axes, first: float, last: float) -> None:
    """A log-scaled x axis labelled with whole epochs (1, 2, 5, 10... and the first and
    last), not with powers of 10."""
    ax.set_xscale("log")
    # The last epoch too, so that the end of training can be read off the axis.
    ticks = sorted({tick for tick in _LOG_TICKS if first <= tick <= last} | {first, last})
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("epoch (log scale)")


def plot_seed_bands(
    curves: pd.DataFrame,
    metric: str,
    by: str | Sequence[str],
    *,
    band: str = "minmax",
    log_epochs: bool = False,
    scale: float = 1.0,
    labels: Mapping[object, str] | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw each configuration's mean ``metric`` per epoch over seeds, with a band.

    ``curves`` is :func:`course_utils.metrics.aggregate_curves`'s table (``epoch``,
    ``<metric>``, ``<metric>_std``/``_min``/``_max``, ``n_seeds``); ``by`` names its
    configuration columns. ``band="minmax"`` shades from the lowest to the highest run,
    ``"std"`` one standard deviation either side of the mean. Where fewer runs reached
    an epoch than started (early stopping), the mean line turns dashed: it then rests on
    fewer seeds. ``log_epochs`` spreads the first epochs out, ``scale`` multiplies the
    values (100 for percent), and ``labels`` maps a configuration (a value, or a tuple
    for several ``by`` columns) to its legend entry, for example with its test score;
    by default the entry is the value (or ``column=value, ...`` for several columns).

    >>> curves = pd.DataFrame({"opt": ["sgd"] * 3, "epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.5],
    ...                        "loss_std": [0.1] * 3, "loss_min": [0.9, 0.5, 0.45],
    ...                        "loss_max": [1.1, 0.7, 0.55], "n_seeds": [3, 3, 3]})
    >>> fig = plot_seed_bands(curves, "loss", "opt", log_epochs=True,
    ...                       labels={"sgd": "SGD (test 0.52)"})
    >>> ax = fig.axes[0]
    >>> ax.get_xscale(), ax.get_xlabel(), ax.get_legend().get_texts()[0].get_text()
    ('log', 'epoch (log scale)', 'SGD (test 0.52)')
    >>> plt.close(fig)
    """
    if band not in BANDS:
        raise ValueError(f"band must be one of {BANDS}; got {band!r}.")
    by = [by] if isinstance(by, str) else list(by)
    needed = [*by, "epoch", metric, f"{metric}_std", f"{metric}_min", f"{metric}_max", "n_seeds"]
    missing = [column for column in needed if column not in curves.columns]
    if missing:
        raise KeyError(
            f"curves lacks the columns {missing}: pass the table of "
            "metrics.aggregate_curves(..., columns=[metric])."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    labels = labels or {}
    fewer_seeds = False
    groups = curves.groupby(by if len(by) > 1 else by[0], sort=False, dropna=False)
    for index, (key, group) in enumerate(groups):
        colour = PALETTE[index % len(PALETTE)]
        epochs = group["epoch"].to_numpy()
        mean = group[metric].to_numpy() * scale
        if band == "minmax":
            low, high = group[f"{metric}_min"] * scale, group[f"{metric}_max"] * scale
        else:
            spread = group[f"{metric}_std"].to_numpy() * scale
            low, high = mean - spread, mean + spread
        ax.fill_between(epochs, low, high, color=colour, alpha=0.2, linewidth=0)
        # One configuration column: its value says it all; several: name each.
        default = (
            str(key)
            if len(by) == 1
            else ", ".join(f"{column}={value}" for column, value in zip(by, key, strict=True))
        )
        # The mean is solid while every run is still going, dashed once some have stopped.
        complete = (group["n_seeds"] == group["n_seeds"].max()).to_numpy()
        last_complete = int(np.flatnonzero(complete)[-1])
        ax.plot(
            epochs[: last_complete + 1],
            mean[: last_complete + 1],
            "-",
            color=colour,
            marker="o" if len(epochs) <= 20 else None,
            markersize=3,
            label=labels.get(key, default),
        )
        if last_complete + 1 < len(epochs):
            fewer_seeds = True
            ax.plot(epochs[last_complete:], mean[last_complete:], "--", color=colour)
    handles, texts = ax.get_legend_handles_labels()
    spread_note = "min to max" if band == "minmax" else "mean ± 1 std"
    handles.append(plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.2))
    texts.append(f"band: {spread_note} over seeds")
    if fewer_seeds:
        handles.append(Line2D([], [], color="grey", linestyle="--"))
        texts.append("dashed: some runs stopped early")
    ax.legend(handles, texts, fontsize="small")
    if log_epochs:
        _log_epoch_axis(ax, float(curves["epoch"].min()), float(curves["epoch"].max()))
    else:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel or metric)
    return figure_of(ax)


# --- images ------------------------------------------------------------------------------

ImageLike = torch.Tensor | np.ndarray


def displayable(
    image: ImageLike, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """``image`` as ``imshow`` wants it: ``(H, W)`` or ``(H, W, 3)`` with values in [0, 1].

    The input is ``(C, H, W)`` or ``(H, W)``; ``mean``/``std`` as in :func:`show_image`.

    >>> displayable(torch.full((3, 2, 2), 255, dtype=torch.uint8)).shape
    (2, 2, 3)
    """
    image = torch.as_tensor(image).detach().cpu()
    if image.dim() == 2:
        image = image[None]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(
            f"An image must be (H, W), (1, H, W) or (3, H, W); got shape {tuple(image.shape)}."
        )
    if (mean is None) != (std is None):
        raise ValueError("Give both mean and std (to undo the normalisation), or neither.")
    if image.dtype == torch.uint8:
        image = image.float() / 255
    elif mean is not None and std is not None:
        if not len(mean) == len(std) == image.shape[0]:
            raise ValueError(
                f"mean and std need one value per channel ({image.shape[0]}); "
                f"got {len(mean)} and {len(std)}."
            )
        # Undo normalize_images: x = (pixel - mean) / std, so pixel = x * std + mean.
        image = image.float() * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    # Rounding can push a pixel just outside [0, 1], which imshow would warn about.
    image = image.float().clamp(0, 1)
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()


def show_image(
    image: ImageLike,
    ax: Axes | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    title: str | None = None,
) -> Axes:
    """Draw one grayscale or RGB image, ``(C, H, W)`` or ``(H, W)``, without axis ticks.

    uint8 images are shown as they are. Float images are taken to be in [0, 1], or,
    with ``mean`` and ``std`` (one value per channel, as given to
    :func:`course_utils.data.normalize_images`), normalised images that are first
    turned back into pixels. Returns the Axes.

    >>> ax = show_image(torch.zeros(1, 28, 28), mean=[0.13], std=[0.31], title="digit")
    >>> ax.get_title(), ax.images[0].get_array().shape
    ('digit', (28, 28))
    >>> plt.close(ax.figure)
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(2.5, 2.5))
    pixels = displayable(image, mean, std)
    # Fixed limits: a faint image should look faint, not be stretched to full contrast.
    ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title is not None:
        ax.set_title(title, fontsize=9)
    return ax


def _note(ax: Axes, text: str) -> None:
    """Turn ``ax`` into a blank panel that says ``text``, for a panel with nothing to draw."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_axis_off()


# --- classifier results ------------------------------------------------------------------


def _above(title: str | None, caption: str) -> str:
    """``caption`` under an optional ``title``, on its own line.

    >>> _above(None, "counts"), _above("LeNet", "counts")
    ('counts', 'LeNet\\ncounts')
    """
    return caption if title is None else f"{title}\n{caption}"


def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: Sequence[str],
    normalize: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Draw a confusion matrix as a heat map: rows are true classes, columns predicted.

    ``matrix`` is what :func:`course_utils.metrics.confusion_matrix` returns. With
    ``normalize=True`` each row is divided by its total, so a cell is the fraction of
    a true class predicted as each class and the diagonal is the recall per class; a
    class with no examples gets a row of zeros. Cells are annotated for up to 15
    classes. The title gives the overall accuracy, below ``title`` where one is given
    (say there what the matrix comes from: the network, the data).

    >>> matrix = np.array([[5, 1], [0, 4]])
    >>> fig = plot_confusion_matrix(matrix, ["cat", "dog"], normalize=True)
    >>> ax = fig.axes[0]
    >>> ax.get_xlabel(), ax.get_ylabel(), ax.get_title()
    ('predicted class', 'true class', 'confusion matrix, rows sum to 1 (accuracy 90.0 %)')
    >>> plt.close(fig)
    """
    matrix = np.asarray(matrix)
    k = len(class_names)
    if matrix.shape != (k, k):
        raise ValueError(
            f"Expected a {k}x{k} matrix for {k} class names; got shape {matrix.shape}."
        )
    if ax is None:
        size = max(4.0, 0.55 * k + 2)
        _, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        # A class with no examples would divide by zero; its row stays 0 instead of NaN.
        values = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
        fmt, scale, vmax, kind = ".2f", "fraction of the true class", 1, "rows sum to 1"
    else:
        values, scale, vmax, kind = matrix, "count (examples)", None, "counts"
        fmt = "d" if np.issubdtype(matrix.dtype, np.integer) else ".3g"
    import seaborn as sns  # here, not at import time: it pulls in scipy (~0.7 s)

    sns.heatmap(
        values,
        ax=ax,
        annot=k <= 15,
        fmt=fmt,
        cmap=SEQUENTIAL_CMAP,
        square=True,
        vmin=0,
        vmax=vmax,
        xticklabels=class_names,
        yticklabels=class_names,
        cbar_kws={"label": scale},
    )
    ax.grid(False)  # the course style's grid would cut through the cells
    caption = f"confusion matrix, {kind}"
    if matrix.sum() > 0:
        caption += f" (accuracy {100 * np.trace(matrix) / matrix.sum():.1f} %)"
    ax.set(xlabel="predicted class", ylabel="true class", title=_above(title, caption))
    return figure_of(ax)


def _weights_and_biases(model: nn.Module) -> dict[str, dict[str, np.ndarray]]:
    """Layer name -> its own ``weight`` and ``bias`` (those it has), as NumPy arrays."""
    layers = {}
    for name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        found = {
            kind: own[kind].detach().cpu().numpy() for kind in ("weight", "bias") if kind in own
        }
        if found:
            layers[name or type(model).__name__] = found
    return layers


def plot_weight_histograms(
    models: nn.Module | Mapping[str, nn.Module],
    bins: int = 30,
    layers: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Histograms of each layer's weights (left) and biases (right), one row per layer.

    A row is drawn for every layer with a ``weight`` or ``bias`` of its own (conv,
    linear, batch norm...), or only for the names in ``layers``. A layer without a
    bias gets a panel that says so. Titles give the layer, the parameter and its shape.

    Pass several models as ``{"label": model}`` to overlay them on shared bins, for
    example ``{"plain": model, "L2 1e-3": model_l2}`` to see weight decay shrink the
    weights; layers are matched by name. Overlaid bars are translucent and each model's
    histogram also gets a solid outline, so that one model's bars never hide another's.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.Flatten(),
    ...                     nn.Linear(4 * 24 * 24, 10, bias=False))
    >>> fig = plot_weight_histograms(net)
    >>> [ax.get_title() for ax in fig.axes]
    ['0.weight (4, 1, 5, 5)', '0.bias (4,)', '3.weight (10, 2304)', '']
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel(), fig.axes[3].texts[0].get_text()
    ('value', 'count', '3: no bias')
    >>> plt.close(fig)
    """
    named = {"": models} if isinstance(models, nn.Module) else dict(models)
    params = {label: _weights_and_biases(model) for label, model in named.items()}
    found = next(iter(params.values()))
    names = list(found) if layers is None else list(layers)
    missing = [name for name in names if name not in found]
    if not names or missing:
        raise ValueError(
            f"No weights or biases to plot for layers {missing or names}; "
            f"the layers with parameters are {list(found)}."
        )

    fig, axes = plt.subplots(
        len(names), 2, figsize=(10, 2.3 * len(names)), squeeze=False, layout="constrained"
    )
    for row, layer in zip(axes, names, strict=True):
        for ax, kind in zip(row, ("weight", "bias"), strict=True):
            values = {
                label: p[layer][kind] for label, p in params.items() if kind in p.get(layer, {})
            }
            if not values:
                _note(ax, f"{layer}: no {kind}")
                continue
            # Shared bin edges, so that overlaid models are compared bar for bar.
            edges = np.histogram_bin_edges(
                np.concatenate([v.ravel() for v in values.values()]), bins=bins
            )
            for colour, (label, value) in zip(PALETTE, values.items(), strict=False):
                counts, _, _ = ax.hist(
                    value.ravel(),
                    bins=edges,
                    color=colour,
                    label=label or None,
                    alpha=0.35 if len(named) > 1 else 1.0,
                )
                if len(named) > 1:  # an outline per model, so that no model's bars hide another's
                    outline = np.append(counts, counts[-1])
                    ax.plot(edges, outline, drawstyle="steps-post", color=colour, linewidth=1.6)
            shape = tuple(next(iter(values.values())).shape)
            ax.set(title=f"{layer}.{kind} {shape}", xlabel="value", ylabel="count")
            ax.xaxis.set_major_locator(MaxNLocator(5))  # long tick labels would overlap
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts are whole
    if len(named) > 1:
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside upper right")
    if title:
        fig.suptitle(title)
    return fig


def _feature_maps(
    activations: torch.Tensor | Mapping[str, torch.Tensor], index: int
) -> dict[str, torch.Tensor]:
    """Layer name -> the ``(C, H, W)`` maps of image ``index`` (a batch is indexed)."""
    named = activations if isinstance(activations, Mapping) else {"feature maps": activations}
    maps = {}
    for name, value in named.items():
        value = value.detach().cpu().float()
        if value.dim() == 4:
            value = value[index]
        if value.dim() != 3:
            raise ValueError(
                f"{name!r}: feature maps are (C, H, W) or (N, C, H, W); got shape "
                f"{tuple(value.shape)}. Is it a convolution layer?"
            )
        maps[name] = value
    return maps


def _draw_channels(
    block: Figure | SubFigure,
    name: str,
    maps: torch.Tensor,
    channels: Sequence[int],
    columns: int,
    shared_scale: bool,
    cmap: str,
) -> None:
    """One layer's channels in a grid of ``columns``, with a shared colour bar."""
    count, height, width = maps.shape
    rows = math.ceil(len(channels) / columns)
    axes = block.subplots(rows, columns, squeeze=False)
    shown = maps[list(channels)]
    # One scale for the whole layer makes channels comparable: a dead channel looks dark.
    limits = (float(shown.min()), float(shown.max())) if shared_scale else (None, None)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(channels):
            drawn = ax.imshow(maps[channels[i]].numpy(), cmap=cmap, vmin=limits[0], vmax=limits[1])
            ax.set_title(f"{name} ch {channels[i]}", fontsize=8)
    if shared_scale:
        block.colorbar(drawn, ax=axes, label="activation", shrink=0.9)
    which = f"{len(channels)} of {count}" if len(channels) < count else f"{count}"
    block.suptitle(f"{name}: {which} channels, {height}×{width} px")


def plot_feature_maps(
    activations: torch.Tensor | Mapping[str, torch.Tensor],
    index: int = 0,
    channels: Sequence[int] | None = None,
    columns: int = 8,
    image: ImageLike | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    shared_scale: bool = True,
    panel_size: float = 1.6,
    cmap: str = SEQUENTIAL_CMAP,
    title: str | None = None,
) -> Figure:
    """Show every channel of one or more layers' feature maps for one image.

    ``activations`` is what :func:`course_utils.inspect.capture_activations` returns
    (``{layer: (N, C, H, W)}``; image ``index`` of the batch is shown), or one
    ``(C, H, W)`` tensor. Each layer gets a block of panels titled by layer and
    channel, ``columns`` to a row; ``channels`` picks some channels instead of all.
    With ``shared_scale`` a layer's panels share one colour scale and a colour bar, so
    channels can be compared; otherwise each panel is scaled on its own. ``image``
    (with ``mean``/``std`` as for :func:`show_image`) is drawn on the left as the input.
    ``title`` goes above everything (say there which network and data the maps come from).

    >>> maps = {"conv1": torch.rand(2, 4, 6, 6), "conv2": torch.rand(2, 8, 3, 3)}
    >>> fig = plot_feature_maps(maps, index=1, image=torch.rand(1, 12, 12), title="untrained")
    >>> [ax.get_title() for ax in fig.axes[:3]], fig.get_suptitle()
    (['input', 'conv1 ch 0', 'conv1 ch 1'], 'untrained')
    >>> plt.close(fig)
    """
    maps = _feature_maps(activations, index)
    chosen = {
        name: list(range(len(value))) if channels is None else list(channels)
        for name, value in maps.items()
    }
    for name, value in maps.items():
        if not chosen[name] or not all(0 <= c < len(value) for c in chosen[name]):
            raise IndexError(
                f"{name!r} has {len(value)} channels (0 to {len(value) - 1}); "
                f"asked for channels {chosen[name]}."
            )
    columns = min(columns, max(len(picked) for picked in chosen.values()))
    rows = [math.ceil(len(picked) / columns) for picked in chosen.values()]
    input_width = 1.3 if image is not None else 0
    fig = plt.figure(
        figsize=(
            panel_size * (columns + input_width) + 1.2,
            panel_size * sum(rows) + 0.5 * len(maps),
        ),
        layout="constrained",
    )
    grids: Figure | SubFigure = fig
    if image is not None:
        left, grids = _subfigure_list(fig.subfigures(1, 2, width_ratios=[input_width, columns]))
        show_image(image, left.subplots(), mean, std, title="input")
    blocks = _subfigure_list(grids.subfigures(len(maps), 1, height_ratios=rows))
    for block, (name, value) in zip(blocks, maps.items(), strict=True):
        _draw_channels(block, name, value, chosen[name], columns, shared_scale, cmap)
    if title is not None:
        fig.suptitle(title)
    return fig


def plot_example_grid(
    images: ImageLike,
    labels: Labels,
    predictions: Labels,
    class_names: Sequence[str],
    correct: bool,
    n: int = 5,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    true_class: int | None = None,
    title: str | None = None,
) -> Figure:
    """Show the first ``n`` correctly (``correct=True``) or wrongly classified images.

    ``images`` are ``(N, C, H, W)`` (grayscale or RGB) in the order of ``labels`` and
    ``predictions``, for example an unshuffled test set and
    :func:`course_utils.train.predict`'s results; ``mean``/``std`` undo the
    normalisation (see :func:`show_image`). Each panel is titled
    ``true: x / pred: y``; ``true_class`` keeps only examples of one class. When fewer
    than ``n`` examples match, the ones found are shown; with none, the figure says
    so instead of failing. ``title`` goes above the count of examples (say there what
    the predictions come from).

    >>> labels, predictions = torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0])
    >>> fig = plot_example_grid(torch.rand(4, 1, 8, 8), labels, predictions, ["0", "1"],
    ...                         correct=False)
    >>> fig.axes[0].get_title(), fig.get_suptitle()
    ('true: 1 / pred: 0', 'misclassified examples: 1 of 1')
    >>> plt.close(fig)
    """
    labels = torch.as_tensor(labels).cpu()
    predictions = torch.as_tensor(predictions).cpu()
    if not len(images) == len(labels) == len(predictions):
        raise ValueError(
            f"Need one label and prediction per image: got {len(images)} images, "
            f"{len(labels)} labels and {len(predictions)} predictions."
        )
    matching = (labels == predictions) == correct
    if true_class is not None:
        matching &= labels == true_class
    found = matching.nonzero().flatten()
    kind = "correctly classified" if correct else "misclassified"
    if true_class is not None:
        kind += f" {class_names[true_class]!r}"

    if len(found) == 0:
        fig, ax = plt.subplots(figsize=(2 * n, 2.4), layout="constrained")
        _note(ax, f"no {kind} examples")
        if title is not None:
            fig.suptitle(title)
        return fig
    fig, axes = plt.subplots(1, n, figsize=(2 * n, 2.6), squeeze=False, layout="constrained")
    for ax, i in zip(axes[0], found[:n].tolist(), strict=False):
        true, predicted = int(labels[i]), int(predictions[i])
        show_image(
            images[i],
            ax,
            mean,
            std,
            title=f"true: {class_names[true]} / pred: {class_names[predicted]}",
        )
    for ax in axes[0][len(found) :]:
        ax.set_axis_off()  # fewer examples than panels: leave the rest blank
    fig.suptitle(_above(title, f"{kind} examples: {min(n, len(found))} of {len(found)}"))
    return fig


# ------------------------------------------------------------------ mask overlays


# Overlay colours (Okabe-Ito): hits, false alarms and misses stay distinct for the common
# kinds of colour blindness.
HIT_COLOR, FALSE_ALARM_COLOR, MISS_COLOR = PALETTE[2], PALETTE[3], PALETTE[5]
MASK_COLOR = PALETTE[1]


def _paint(pixels: np.ndarray, where: np.ndarray, colour: str, alpha: float) -> np.ndarray:
    """Blend ``colour`` into an ``(H, W, 3)`` image at the pixels where ``where`` is True."""
    painted = pixels.copy()
    painted[where] = (1 - alpha) * painted[where] + alpha * np.array(to_rgb(colour))
    return painted


def _show(pixels: np.ndarray, ax: plt.Axes, title: str) -> None:
    """Draw an ``(H, W, 3)`` image in [0, 1] with :func:`course_utils.show_image`."""
    show_image(torch.from_numpy(pixels).permute(2, 0, 1), ax, title=title)


def plot_mask_overlay(
    images: torch.Tensor | np.ndarray,
    masks: Labels,
    predictions: Labels | None = None,
    n: int = 6,
    alpha: float = 0.55,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """Show the first ``n`` images with their masks painted over them.

    ``images`` are ``(N, C, H, W)`` (``mean``/``std`` undo a normalisation, see
    :func:`course_utils.show_image`); ``masks`` and ``predictions`` are binary,
    ``(N, H, W)`` or ``(N, 1, H, W)``. The top row shows each image with its true mask;
    with ``predictions``, the second row shows the prediction: hits, false alarms
    and misses in three colours, titled with that image's F1. The images are drawn in
    grey under the paint, so that no colour of an image can hide or mimic a mask's.

    >>> images, masks = torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8)
    >>> masks[:, :, 2:6, 2:6] = 1
    >>> fig = plot_mask_overlay(images, masks, predictions=masks, n=2)
    >>> fig.axes[2].get_title()
    'prediction, F1 1.00'
    >>> plt.close(fig)
    """
    n = min(n, len(images))
    size = tuple(images.shape[-2:])
    true_masks = torch.as_tensor(masks)[:n].reshape(n, *size)
    predicted_masks = (
        None if predictions is None else torch.as_tensor(predictions)[:n].reshape(n, *size)
    )
    rows = 1 if predictions is None else 2
    fig, axes = plt.subplots(
        rows, n, figsize=(1.9 * n, 2.1 * rows + 0.5), squeeze=False, layout="constrained"
    )
    for column in range(n):
        pixels = displayable(images[column], mean, std)
        if pixels.ndim == 3:  # colour: its luminance (ITU-R BT.601), so only the paint has hue
            pixels = pixels @ np.array([0.299, 0.587, 0.114])
        pixels = np.repeat(pixels[..., None], 3, axis=2)  # grey, with room for coloured paint
        true = as_binary_mask(true_masks[column], "masks").reshape(size)
        _show(_paint(pixels, true, MASK_COLOR, alpha), axes[0, column], "true mask")
        if predicted_masks is None:
            continue
        predicted = as_binary_mask(predicted_masks[column], "predictions").reshape(size)
        painted = pixels
        for where, colour in (
            (predicted & true, HIT_COLOR),
            (predicted & ~true, FALSE_ALARM_COLOR),
            (~predicted & true, MISS_COLOR),
        ):
            painted = _paint(painted, where, colour, alpha)
        _show(painted, axes[1, column], f"prediction, F1 {f1_score(predicted, true):.2f}")
    handles = [Patch(color=MASK_COLOR, label="true mask")]
    if predictions is not None:
        handles += [
            Patch(color=HIT_COLOR, label="hit (true positive)"),
            Patch(color=FALSE_ALARM_COLOR, label="false alarm (false positive)"),
            Patch(color=MISS_COLOR, label="miss (false negative)"),
        ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------- live learning curves


def _in_jupyter_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (JupyterLab, Colab, nbval), not a script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


class LiveLearningCurves:
    """A :func:`course_utils.train.fit` callback: learning curves redrawn after each epoch.

    In Jupyter the figure is updated in place after every epoch; in a script, or with
    ``COURSE_LIVE_PLOT=0`` (set by the notebook tests and ``course run``, so that an
    executed notebook holds one final figure), it is drawn once when training ends.
    ``title`` is the figure's title, passed on to :func:`plot_learning_curves`: say there
    what the curves come from (the data, a stand-in).

    >>> from course_utils import train
    >>> curves = LiveLearningCurves(title="LeNet on the generated stand-in")
    >>> isinstance(curves, train.EpochCallback), curves.title
    (True, 'LeNet on the generated stand-in')
    """

    def __init__(self, title: str | None = None) -> None:
        self.live = _in_jupyter_kernel() and os.environ.get("COURSE_LIVE_PLOT", "1") != "0"
        self.title = title
        self.handle = None

    def on_epoch_end(self, history: History) -> None:
        """Redraw the curves in place (in a live Jupyter kernel only)."""
        if not self.live:
            return
        # Imported here because it is only needed inside a kernel, where it is loaded.
        from IPython.display import display

        fig = plot_learning_curves(history, title=self.title)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        # Closed, or the inline backend would show it once more when the cell ends.
        plt.close(fig)

    def on_train_end(self, history: History) -> None:
        """Draw the final curves once, where they were not drawn live."""
        if not self.live:
            plot_learning_curves(history, title=self.title)
            plt.show()
