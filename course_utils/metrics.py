"""Scores from predictions: accuracy, the confusion matrix, mask F1 and IoU, seed aggregates.

Everything takes plain labels, so it works the same on a NumPy array, a list or a
tensor, and on the output of :func:`course_utils.train.predict`::

    from course_utils import metrics, train
    preds = train.predict(model, test_loader)
    metrics.confusion_matrix(preds.labels, preds.predictions, num_classes=10)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

Labels = torch.Tensor | npt.ArrayLike


def _as_label_array(values: Labels, name: str) -> np.ndarray:
    """``values`` as a flat NumPy array; tensors are moved to the CPU first."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim == 0:
        raise ValueError(f"{name} must be a sequence of labels, got a single value {array}.")
    # Per-pixel labels (segmentation) count pixel by pixel, like a long list of labels.
    return array.reshape(-1)


def _paired(labels: Labels, predictions: Labels) -> tuple[np.ndarray, np.ndarray]:
    """Both as flat arrays, after checking that they have one prediction per label."""
    labels = _as_label_array(labels, "labels")
    predictions = _as_label_array(predictions, "predictions")
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions differ in length: {labels.size} labels, "
            f"{predictions.size} predictions."
        )
    if labels.size == 0:
        raise ValueError("No labels: a score of an empty set is undefined.")
    return labels, predictions


def accuracy(predictions: Labels, labels: Labels) -> float:
    """The fraction of ``predictions`` equal to ``labels`` (not a percentage).

    >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    0.75
    >>> accuracy(torch.tensor([3, 3]), torch.tensor([3, 3]))
    1.0
    """
    labels, predictions = _paired(labels, predictions)
    return float((labels == predictions).mean())


def confusion_matrix(labels: Labels, predictions: Labels, num_classes: int) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Entry ``[i, j]`` is the number of examples of true class ``i`` predicted as class
    ``j``: rows are true classes, columns predicted ones, as in
    ``sklearn.metrics.confusion_matrix``. A class that never occurs gets a row of zeros,
    so the matrix is always ``num_classes`` by ``num_classes``.

    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], num_classes=3)
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 1]])
    """
    labels, predictions = _paired(labels, predictions)
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(
                f"{name} must be class indices 0 to {num_classes - 1}; "
                f"found values from {values.min()} to {values.max()}."
            )
    # Each (true, predicted) pair is one cell of a flattened matrix; count the cells.
    cells = labels.astype(np.int64) * num_classes + predictions.astype(np.int64)
    return np.bincount(cells, minlength=num_classes**2).reshape(num_classes, num_classes)


def aggregate_over_seeds(
    runs: pd.DataFrame,
    by: Sequence[str],
    spread: Sequence[str] = (),
    stats: Sequence[str] = ("std",),
    seed_column: str = "seed",
) -> pd.DataFrame:
    """Average runs that differ only in their seed: one row per group of ``by``.

    Every numeric column (other than ``by`` and ``seed_column``) becomes its mean over
    the seeds, under the same name. Each column in ``spread`` also gets a column per
    statistic in ``stats`` (any pandas aggregation: ``"std"``, ``"min"``, ``"max"``...),
    named like ``val_acc_std`` and placed next to its mean. ``std`` is the sample
    standard deviation, so it is NaN for a single seed. ``n_seeds`` counts the distinct
    seeds of each group. Groups keep the order in which they first appear.

    The same call averages per-epoch curves when ``by`` includes the epoch:
    ``aggregate_over_seeds(curves, ["optimizer", "epoch"], ["val_loss"], ["min", "max"])``
    gives a mean line and a min/max band per optimiser.

    >>> runs = pd.DataFrame({"lr": [0.1, 0.1, 0.01], "seed": [0, 1, 0],
    ...                      "val_acc": [0.90, 0.80, 0.70]})
    >>> aggregate_over_seeds(runs, by=["lr"], spread=["val_acc"]).round(4)
         lr  val_acc  val_acc_std  n_seeds
    0  0.10     0.85       0.0707        2
    1  0.01     0.70          NaN        1
    """
    by = list(by)
    numeric = [
        column
        for column in runs.select_dtypes("number").columns
        if column not in by and column != seed_column
    ]
    unknown = [column for column in spread if column not in numeric]
    if unknown:
        raise ValueError(
            f"spread names {unknown}, which are not numeric result columns; those are {numeric}."
        )
    # dropna=False: a configuration value of None is a group of its own, not dropped.
    groups = runs.groupby(by, sort=False, dropna=False)
    columns = {}
    for column in numeric:
        columns[column] = groups[column].mean()
        if column in spread:  # its spread right next to its mean, where a reader looks
            for stat in stats:
                columns[f"{column}_{stat}"] = groups[column].agg(stat)
    columns["n_seeds"] = groups[seed_column].nunique()
    return pd.DataFrame(columns).reset_index()


def aggregate_curves(
    curves: pd.DataFrame,
    by: Sequence[str],
    columns: Sequence[str],
    epoch_column: str = "epoch",
    seed_column: str = "seed",
) -> pd.DataFrame:
    """Per-epoch curves averaged over seeds: mean, std, min and max of each of ``columns``.

    ``curves`` has one row per run and epoch, such as
    :func:`course_utils.sweep.history_frame` gives; ``by`` names the columns that tell
    the configurations apart. The result has one row per configuration and epoch,
    sorted by epoch within each configuration (configurations in order of first
    appearance), with ``<column>``, ``<column>_std``, ``_min`` and ``_max``, and
    ``n_seeds``: how many runs reached that epoch. Runs may differ in length (early
    stopping): an epoch only some runs reached is averaged over those, and its
    ``n_seeds`` says how many, so a plot can show where the mean rests on fewer runs.

    >>> curves = pd.DataFrame({"opt": ["sgd"] * 3, "seed": [0, 0, 1], "epoch": [1, 2, 1],
    ...                        "val_acc": [0.5, 0.7, 0.6]})
    >>> aggregate_curves(curves, ["opt"], ["val_acc"])[["epoch", "val_acc", "val_acc_max",
    ...                                                  "n_seeds"]]
       epoch  val_acc  val_acc_max  n_seeds
    0      1     0.55          0.6        2
    1      2     0.70          0.7        1
    """
    by = list(by)
    table = aggregate_over_seeds(
        curves[[*by, epoch_column, seed_column, *columns]],
        [*by, epoch_column],
        spread=columns,
        stats=("std", "min", "max"),
        seed_column=seed_column,
    )
    # Configurations stay in order of first appearance; epochs ascend within each.
    rank = table.groupby(by, sort=False, dropna=False).ngroup()
    return (
        table.assign(_rank=rank)
        .sort_values(["_rank", epoch_column], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


# ------------------------------------------------------- binary segmentation masks
# Both scores count pixels over everything they are given (all images pooled), like
# sklearn.metrics.f1_score and jaccard_score on the flattened masks. IoU = F1 / (2 - F1),
# so the two always rank models the same way.


def as_binary_mask(values: Labels, name: str) -> np.ndarray:
    """``values`` as a flat boolean array, after checking that it holds only 0 and 1.

    >>> as_binary_mask([[0, 1], [1, 1]], "masks").tolist()
    [False, True, True, True]
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype != bool:
        if array.size and not np.isin(array, (0, 1)).all():
            raise ValueError(
                f"{name} must be a binary mask of 0s and 1s; found values from "
                f"{array.min():g} to {array.max():g}. Logits or probabilities? "
                "Threshold them first: logits > 0 or probabilities > 0.5."
            )
        array = array.astype(bool)
    return array.reshape(-1)


def confusion_counts(predictions: Labels, masks: Labels) -> tuple[int, int, int]:
    """Count true positives, false positives and false negatives, pixel by pixel.

    >>> confusion_counts([[1, 1], [0, 0]], [[1, 0], [1, 0]])
    (1, 1, 1)
    """
    predicted, true = as_binary_mask(predictions, "predictions"), as_binary_mask(masks, "masks")
    if predicted.shape != true.shape:
        raise ValueError(
            f"predictions and masks differ in size: {predicted.size} and {true.size} pixels."
        )
    return (
        int(np.sum(predicted & true)),
        int(np.sum(predicted & ~true)),
        int(np.sum(~predicted & true)),
    )


def f1_score(predictions: Labels, masks: Labels, zero_division: float = 1.0) -> float:
    """F1 score (Dice coefficient) of binary ``predictions`` against true ``masks``.

    Any shapes with the same number of pixels; tensors, arrays or nested lists of 0/1
    or bools. When neither has a foreground pixel the score is ``zero_division``
    (1.0: nothing to find, nothing found).

    >>> f1_score([[1, 1], [0, 0]], [[1, 0], [1, 0]])
    0.5
    """
    tp, fp, fn = confusion_counts(predictions, masks)
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else float(zero_division)


def iou_score(predictions: Labels, masks: Labels, zero_division: float = 1.0) -> float:
    """Intersection over union (Jaccard index) of binary ``predictions`` and ``masks``.

    Same inputs and empty-mask convention as :func:`f1_score`.

    >>> round(iou_score([[1, 1], [0, 0]], [[1, 0], [1, 0]]), 4)
    0.3333
    """
    tp, fp, fn = confusion_counts(predictions, masks)
    denominator = tp + fp + fn
    return tp / denominator if denominator else float(zero_division)
