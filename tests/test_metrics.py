"""metrics agrees with scikit-learn (labels and binary masks), and averages seeds the way
the sweep tables need."""

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics
import torch

from course_utils import metrics


@pytest.fixture
def labels_and_predictions() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=500)
    # Mostly right, with mistakes spread over all classes.
    predictions = np.where(rng.random(500) < 0.7, labels, rng.integers(0, 10, size=500))
    return labels, predictions


def test_accuracy_matches_sklearn(labels_and_predictions):
    labels, predictions = labels_and_predictions
    expected = sklearn.metrics.accuracy_score(labels, predictions)
    assert metrics.accuracy(predictions, labels) == pytest.approx(expected)
    assert metrics.accuracy(
        torch.from_numpy(predictions), torch.from_numpy(labels)
    ) == pytest.approx(expected)


def test_confusion_matrix_matches_sklearn(labels_and_predictions):
    labels, predictions = labels_and_predictions
    expected = sklearn.metrics.confusion_matrix(labels, predictions, labels=range(10))
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, predictions, 10), expected)


def test_confusion_matrix_rows_are_true_classes():
    matrix = metrics.confusion_matrix(torch.tensor([2, 2, 2]), torch.tensor([0, 0, 2]), 3)
    assert matrix[2].tolist() == [2, 0, 1]  # row 2: all examples whose true class is 2
    assert matrix.sum(axis=1).tolist() == [0, 0, 3]


def test_absent_classes_still_get_rows_and_columns():
    matrix = metrics.confusion_matrix([1, 1], [1, 1], num_classes=4)
    assert matrix.shape == (4, 4) and matrix[1, 1] == 2 and matrix.sum() == 2


def test_per_pixel_labels_count_each_pixel():
    masks = torch.tensor([[[0, 1], [1, 1]]])
    predicted = torch.tensor([[[0, 1], [0, 1]]])
    assert metrics.accuracy(predicted, masks) == 0.75
    assert metrics.confusion_matrix(masks, predicted, 2).tolist() == [[1, 0], [1, 2]]


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="differ in length: 3 labels, 2 predictions"):
        metrics.accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="class indices 0 to 2; found values from 0 to 3"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="empty"):
        metrics.accuracy([], [])


def test_aggregate_over_seeds_means_spread_and_counts():
    runs = pd.DataFrame(
        {
            "lr": [0.1, 0.1, 0.1, 0.01],
            "opt": ["sgd"] * 4,
            "seed": [0, 1, 2, 0],
            "val_acc": [0.8, 0.9, 1.0, 0.5],
            "epochs": [3, 4, 5, 9],
            "cached": [True, False, True, False],
        }
    )

    table = metrics.aggregate_over_seeds(
        runs, ["lr", "opt"], spread=["val_acc"], stats=["std", "min", "max"]
    )

    assert list(table.columns) == [
        "lr",
        "opt",
        "val_acc",
        "val_acc_std",
        "val_acc_min",
        "val_acc_max",
        "epochs",
        "n_seeds",
    ]
    first = table.iloc[0]
    assert (first["lr"], first["n_seeds"]) == (0.1, 3)
    assert first["val_acc"] == pytest.approx(0.9)
    assert first["val_acc_std"] == pytest.approx(np.std([0.8, 0.9, 1.0], ddof=1))
    assert (first["val_acc_min"], first["val_acc_max"], first["epochs"]) == (0.8, 1.0, 4)
    assert np.isnan(table.iloc[1]["val_acc_std"])  # one seed: no spread to speak of


def test_aggregate_keeps_none_as_a_group_of_its_own():
    runs = pd.DataFrame(
        {"dropout": [None, None, 0.5], "seed": [0, 1, 0], "val_acc": [0.6, 0.8, 0.9]}
    )
    table = metrics.aggregate_over_seeds(runs, ["dropout"])
    assert len(table) == 2 and table["n_seeds"].tolist() == [2, 1]
    assert table["val_acc"].tolist() == pytest.approx([0.7, 0.9])


def test_aggregate_rejects_a_non_numeric_spread_column():
    runs = pd.DataFrame({"lr": [0.1], "seed": [0], "note": ["x"]})
    with pytest.raises(ValueError, match="not numeric result columns"):
        metrics.aggregate_over_seeds(runs, ["lr"], spread=["note"])


def test_curves_of_runs_stopped_early_average_what_is_there():
    # Seed 0 stopped early after 2 epochs; seed 1 ran all 4; "adam" has one 3-epoch run.
    rows = [
        ("sgd", 1, 1, 0.60),
        ("sgd", 1, 2, 0.70),
        ("sgd", 1, 3, 0.75),
        ("sgd", 1, 4, 0.80),
        ("sgd", 0, 1, 0.40),
        ("sgd", 0, 2, 0.50),
        ("adam", 0, 3, 0.90),
        ("adam", 0, 1, 0.70),
        ("adam", 0, 2, 0.80),
    ]
    curves = pd.DataFrame(rows, columns=["optimizer", "seed", "epoch", "val_acc"])
    table = metrics.aggregate_curves(curves, ["optimizer"], ["val_acc"])

    assert table["optimizer"].tolist() == ["sgd"] * 4 + ["adam"] * 3  # first appearance
    assert table["epoch"].tolist() == [1, 2, 3, 4, 1, 2, 3]  # ascending within
    sgd = table[table["optimizer"] == "sgd"].set_index("epoch")
    assert sgd["n_seeds"].tolist() == [2, 2, 1, 1]
    assert sgd.loc[1, "val_acc"] == pytest.approx(0.5)
    assert sgd.loc[2, "val_acc_std"] == pytest.approx(np.std([0.7, 0.5], ddof=1))
    assert (sgd.loc[1, "val_acc_min"], sgd.loc[1, "val_acc_max"]) == (0.4, 0.6)
    # Past the early stop only seed 1 is left: its own value, and no spread.
    assert sgd.loc[4, "val_acc"] == sgd.loc[4, "val_acc_min"] == sgd.loc[4, "val_acc_max"] == 0.8
    assert np.isnan(sgd.loc[4, "val_acc_std"])
    assert list(table.columns) == [
        "optimizer",
        "epoch",
        "val_acc",
        "val_acc_std",
        "val_acc_min",
        "val_acc_max",
        "n_seeds",
    ]


# ------------------------------------------------------------ binary masks


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("foreground", [0.05, 0.3, 0.7])
def test_f1_and_iou_agree_with_sklearn_on_random_masks(seed, foreground):
    rng = np.random.default_rng(seed)
    masks = rng.random((4, 1, 17, 23)) < foreground
    # Predictions that agree with the masks at most pixels, as a real model's would.
    predictions = np.where(rng.random(masks.shape) < 0.8, masks, rng.random(masks.shape) < 0.5)
    flat_true, flat_pred = masks.ravel(), predictions.ravel()
    assert metrics.f1_score(predictions, masks) == pytest.approx(
        sklearn.metrics.f1_score(flat_true, flat_pred)
    )
    assert metrics.iou_score(predictions, masks) == pytest.approx(
        sklearn.metrics.jaccard_score(flat_true, flat_pred)
    )
    # Tensors of 0.0/1.0 (as BCE targets are) give the same scores as bool arrays.
    as_floats = torch.from_numpy(predictions).float(), torch.from_numpy(masks).float()
    assert metrics.f1_score(*as_floats) == metrics.f1_score(predictions, masks)


def test_iou_follows_from_f1():
    rng = np.random.default_rng(1)
    masks, predictions = rng.random((2, 50, 50)) < 0.4
    f1 = metrics.f1_score(predictions, masks)
    assert metrics.iou_score(predictions, masks) == pytest.approx(f1 / (2 - f1))


def test_empty_masks_follow_the_zero_division_convention():
    empty = np.zeros((3, 8, 8), dtype=bool)
    assert metrics.f1_score(empty, empty) == 1.0
    assert metrics.iou_score(empty, empty, zero_division=0.0) == 0.0
    assert metrics.f1_score(empty, empty, zero_division=0.0) == pytest.approx(
        sklearn.metrics.f1_score(empty.ravel(), empty.ravel(), zero_division=0.0)
    )
    # A missed foreground is a score of 0, not a division by zero.
    full = ~empty
    assert metrics.f1_score(empty, full) == 0.0


def test_bad_masks_are_explained():
    with pytest.raises(ValueError, match="Logits or probabilities.*logits > 0"):
        metrics.f1_score(torch.tensor([-1.5, 2.0]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="differ in size: 4 and 6 pixels"):
        metrics.iou_score(np.ones((2, 2)), np.ones((2, 3)))


# --- overlay figure ------------------------------------------------------------------------
