"""Scoring and showing binary segmentation masks: F1 (Dice), IoU, and mask overlays.

A mask marks each pixel as foreground (1) or background (0). A model with one logit
per pixel predicts foreground where the logit is positive::

    from course_utils import segmentation, train
    preds = train.predict(unet, test_loader, loss_fn=nn.BCEWithLogitsLoss())
    segmentation.f1_score(preds.predictions, preds.labels)

Both scores count pixels over everything they are given (all images pooled), like
``sklearn.metrics.f1_score`` and ``jaccard_score`` on the flattened masks:

- F1 = Dice = 2 TP / (2 TP + FP + FN): the harmonic mean of precision and recall;
- IoU = Jaccard = TP / (TP + FP + FN): overlap over union. IoU = F1 / (2 - F1), so the
  two always rank models the same way; IoU is the stricter-looking number.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from course_utils import viz
from course_utils.metrics import Labels

# Overlay colours (Okabe-Ito): hits, false alarms and misses stay distinct for the common
# kinds of colour blindness.
HIT_COLOR, FALSE_ALARM_COLOR, MISS_COLOR = viz.PALETTE[2], viz.PALETTE[3], viz.PALETTE[5]
MASK_COLOR = viz.PALETTE[1]


def _binary(values: Labels, name: str) -> np.ndarray:
    """``values`` as a flat boolean array, after checking that it holds only 0 and 1."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype != bool:
        if array.size and not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be a binary mask of 0s and 1s; found values from "
                             f"{array.min():g} to {array.max():g}. Logits or probabilities? "
                             "Threshold them first: logits > 0 or probabilities > 0.5.")
        array = array.astype(bool)
    return array.reshape(-1)


def confusion_counts(predictions: Labels, masks: Labels) -> tuple[int, int, int]:
    """Count true positives, false positives and false negatives, pixel by pixel.

    >>> confusion_counts([[1, 1], [0, 0]], [[1, 0], [1, 0]])
    (1, 1, 1)
    """
    predicted, true = _binary(predictions, "predictions"), _binary(masks, "masks")
    if predicted.shape != true.shape:
        raise ValueError(f"predictions and masks differ in size: {predicted.size} and "
                         f"{true.size} pixels.")
    return (int(np.sum(predicted & true)), int(np.sum(predicted & ~true)),
            int(np.sum(~predicted & true)))


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


def _paint(pixels: np.ndarray, where: np.ndarray, colour: str, alpha: float) -> np.ndarray:
    """Blend ``colour`` into an ``(H, W, 3)`` image at the pixels where ``where`` is True."""
    painted = pixels.copy()
    painted[where] = (1 - alpha) * painted[where] + alpha * np.array(to_rgb(colour))
    return painted


def _show(pixels: np.ndarray, ax: plt.Axes, title: str) -> None:
    """Draw an ``(H, W, 3)`` image in [0, 1] with :func:`course_utils.viz.show_image`."""
    viz.show_image(torch.from_numpy(pixels).permute(2, 0, 1), ax, title=title)


def plot_mask_overlay(images: torch.Tensor | np.ndarray, masks: Labels,
                      predictions: Labels | None = None, n: int = 6, alpha: float = 0.55,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      title: str | None = None) -> Figure:
    """Show the first ``n`` images with their masks painted over them.

    ``images`` are ``(N, C, H, W)`` (``mean``/``std`` undo a normalisation, see
    :func:`course_utils.viz.show_image`); ``masks`` and ``predictions`` are binary,
    ``(N, H, W)`` or ``(N, 1, H, W)``. The top row shows each image with its true mask;
    with ``predictions``, the second row shows the prediction: hits, false alarms
    and misses in three colours, titled with that image's F1.

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
    predicted_masks = (None if predictions is None
                       else torch.as_tensor(predictions)[:n].reshape(n, *size))
    rows = 1 if predictions is None else 2
    fig, axes = plt.subplots(rows, n, figsize=(1.9 * n, 2.1 * rows + 0.5), squeeze=False,
                             layout="constrained")
    for column in range(n):
        pixels = viz.displayable(images[column], mean, std)
        if pixels.ndim == 2:  # grayscale: make room for coloured paint
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        true = _binary(true_masks[column], "masks").reshape(size)
        _show(_paint(pixels, true, MASK_COLOR, alpha), axes[0, column], "true mask")
        if predicted_masks is None:
            continue
        predicted = _binary(predicted_masks[column], "predictions").reshape(size)
        painted = pixels
        for where, colour in ((predicted & true, HIT_COLOR),
                              (predicted & ~true, FALSE_ALARM_COLOR),
                              (~predicted & true, MISS_COLOR)):
            painted = _paint(painted, where, colour, alpha)
        _show(painted, axes[1, column], f"prediction, F1 {f1_score(predicted, true):.2f}")
    handles = [Patch(color=MASK_COLOR, label="true mask")]
    if predictions is not None:
        handles += [Patch(color=HIT_COLOR, label="hit (true positive)"),
                    Patch(color=FALSE_ALARM_COLOR, label="false alarm (false positive)"),
                    Patch(color=MISS_COLOR, label="miss (false negative)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
