"""Segmentation: F1/IoU against scikit-learn, the mask overlay figure, and the
segmentation datasets (generated set; Oxford-IIIT Pet from a fake local folder)."""

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: tests never open windows

import matplotlib.pyplot as plt
import numpy as np
import pytest
import sklearn.metrics
import torch
from matplotlib.colors import to_rgb

from course_utils import segmentation


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- scores --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("foreground", [0.05, 0.3, 0.7])
def test_f1_and_iou_agree_with_sklearn_on_random_masks(seed, foreground):
    rng = np.random.default_rng(seed)
    masks = rng.random((4, 1, 17, 23)) < foreground
    # Predictions that agree with the masks at most pixels, as a real model's would.
    predictions = np.where(rng.random(masks.shape) < 0.8, masks, rng.random(masks.shape) < 0.5)
    flat_true, flat_pred = masks.ravel(), predictions.ravel()
    assert segmentation.f1_score(predictions, masks) == pytest.approx(
        sklearn.metrics.f1_score(flat_true, flat_pred))
    assert segmentation.iou_score(predictions, masks) == pytest.approx(
        sklearn.metrics.jaccard_score(flat_true, flat_pred))
    # Tensors of 0.0/1.0 (as BCE targets are) give the same scores as bool arrays.
    as_floats = torch.from_numpy(predictions).float(), torch.from_numpy(masks).float()
    assert segmentation.f1_score(*as_floats) == segmentation.f1_score(predictions, masks)


def test_iou_follows_from_f1():
    rng = np.random.default_rng(1)
    masks, predictions = rng.random((2, 50, 50)) < 0.4
    f1 = segmentation.f1_score(predictions, masks)
    assert segmentation.iou_score(predictions, masks) == pytest.approx(f1 / (2 - f1))


def test_empty_masks_follow_the_zero_division_convention():
    empty = np.zeros((3, 8, 8), dtype=bool)
    assert segmentation.f1_score(empty, empty) == 1.0
    assert segmentation.iou_score(empty, empty, zero_division=0.0) == 0.0
    assert segmentation.f1_score(empty, empty, zero_division=0.0) == pytest.approx(
        sklearn.metrics.f1_score(empty.ravel(), empty.ravel(), zero_division=0.0))
    # A missed foreground is a score of 0, not a division by zero.
    full = ~empty
    assert segmentation.f1_score(empty, full) == 0.0


def test_bad_masks_are_explained():
    with pytest.raises(ValueError, match="Logits or probabilities.*logits > 0"):
        segmentation.f1_score(torch.tensor([-1.5, 2.0]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="differ in size: 4 and 6 pixels"):
        segmentation.iou_score(np.ones((2, 2)), np.ones((2, 3)))


# --- overlay figure ------------------------------------------------------------------------

def test_overlay_paints_hits_false_alarms_and_misses():
    images = torch.zeros(3, 3, 6, 6)  # black images: the paint alone sets each pixel
    masks = torch.zeros(3, 1, 6, 6)
    masks[:, :, :3] = 1                      # top half is foreground
    predictions = torch.zeros(3, 6, 6)
    predictions[:, :, :3] = 1                # left half predicted
    fig = segmentation.plot_mask_overlay(images, masks, predictions, n=2, alpha=1.0)

    assert len(fig.axes) == 4  # two images, two rows
    top, bottom = fig.axes[0], fig.axes[2]
    assert top.get_title() == "true mask"
    painted = bottom.images[0].get_array()
    assert np.allclose(painted[0, 0], to_rgb(segmentation.HIT_COLOR))          # top left
    assert np.allclose(painted[5, 0], to_rgb(segmentation.FALSE_ALARM_COLOR))  # bottom left
    assert np.allclose(painted[0, 5], to_rgb(segmentation.MISS_COLOR))         # top right
    assert np.allclose(painted[5, 5], 0)                                      # true negative
    assert bottom.get_title() == "prediction, F1 0.50"
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels[0] == "true mask" and any("false alarm" in label for label in labels)


def test_overlay_without_predictions_shows_one_row_of_grayscale_images():
    images = torch.rand(2, 1, 5, 5)
    fig = segmentation.plot_mask_overlay(images, torch.ones(2, 5, 5), n=4, title="data")
    assert len(fig.axes) == 2 and fig.get_suptitle() == "data"
    assert fig.axes[0].images[0].get_array().shape == (5, 5, 3)
