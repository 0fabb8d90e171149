"""Check of per-channel image statistics, with NumPy as the oracle.

The images may come as uint8 (0 to 255), as floats already scaled to [0, 1], as floats
from 0 to 255, channels first ``(N, C, H, W)`` or channels last ``(N, H, W, C)``; the
check works out which and says so. The statistics are in [0, 1] units, as
``transforms.Normalize`` wants them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_utils.checks._core import describe, fail, number_array, passed

__all__ = ["check_channel_stats"]

DECIMALS = 4
TOLERANCE = 5e-5
CHANNEL_COUNTS = (1, 3, 4)


def _layout(check: str, images: np.ndarray) -> tuple[int, str]:
    """The channel axis of ``images`` and a word on the layout."""
    if images.ndim != 4:
        fail(check, f"images have shape {images.shape}; expected a batch (N, C, H, W).")
    if images.shape[1] in CHANNEL_COUNTS:
        return 1, ""
    if images.shape[-1] in CHANNEL_COUNTS:
        return 3, " (channels last)"
    fail(
        check,
        f"images have shape {images.shape}: which axis holds the colour channels? "
        "Pass (N, C, H, W) or (N, H, W, C).",
    )


def _scale(images: np.ndarray) -> tuple[float, str]:
    """What to divide the pixels by to get [0, 1], and how they were given."""
    if np.issubdtype(images.dtype, np.floating) and float(images.max()) <= 1:
        return 1.0, "floats in [0, 1]"
    return 255.0, "pixels 0 to 255"


def _per_channel(images: np.ndarray, axis: int, statistic: str) -> np.ndarray:
    # One channel at a time: a float64 copy of all of CIFAR-10 at once would be 1.2 GB.
    return np.array(
        [
            getattr(np, statistic)(np.take(images, c, axis=axis), dtype=np.float64)
            for c in range(images.shape[axis])
        ]
    )


def _count_hint(count: int, images: np.ndarray, axis: int) -> str:
    if count == 1:
        return "one value for all channels: give one per channel."
    names = (
        {0: "image", 1: "row", 2: "column"} if axis == 3 else {0: "image", 2: "row", 3: "column"}
    )
    for other, word in names.items():
        if count == images.shape[other]:
            return (
                f"one value per {word}: you averaged over the wrong axes (the channels "
                f"are axis {axis} of these images)."
            )
    return "give one value per channel."


def _value_hint(
    label: str, got: np.ndarray, expected: np.ndarray, other: np.ndarray, per_image_std: Any
) -> str:
    def close(a: np.ndarray, rtol: float = 0.0) -> bool:
        return np.allclose(got, a, atol=TOLERANCE, rtol=rtol)

    if close(expected * 255, rtol=1e-3):
        return " Your values are in 0-255 units: scale the pixels to [0, 1] first."
    if close(expected / 255):
        return (
            " Your values are 255 times too small: were the pixels already in [0, 1] "
            "before you divided them by 255?"
        )
    if close(other):
        return " Did you swap mean and std?"
    if label == "std" and close(expected**2):
        return " That is the variance: take its square root."
    if label == "std" and close(per_image_std()):
        return (
            " That is the average of per-image stds; take the std over all pixels of a "
            "channel at once."
        )
    return ""


def check_channel_stats(mean: Any, std: Any, images: np.ndarray | torch.Tensor) -> None:
    """Check per-channel ``mean`` and ``std`` of ``images`` in [0, 1] units, to 4 decimals.

    ``mean`` and ``std`` may be lists, tuples, NumPy arrays or tensors; the population
    std (``ddof=0``) and the sample std (``ddof=1``) both pass. The oracle is NumPy's
    ``mean`` and ``std`` over every pixel of each channel.

    >>> images = np.array([0, 255], dtype=np.uint8).reshape(2, 1, 1, 1)
    >>> check_channel_stats([127.5], [127.5], images)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_channel_stats: mean of channel 0 is \
127.5, which NumPy does not confirm to 4 decimals. Your values are in 0-255 units: scale \
the pixels to [0, 1] first.
    """
    name = "check_channel_stats"
    try:
        images = np.asarray(torch.as_tensor(images).detach().cpu())
    except (TypeError, ValueError, RuntimeError) as error:
        fail(
            name, f"images are {describe(images)}; expected an array or tensor (N, C, H, W).", error
        )
    axis, layout = _layout(name, images)
    scale, units = _scale(images)
    expected_mean = _per_channel(images, axis, "mean") / scale
    expected_std = _per_channel(images, axis, "std") / scale
    pixels_per_channel = images.size // images.shape[axis]
    sample_std = expected_std * np.sqrt(pixels_per_channel / max(pixels_per_channel - 1, 1))

    def per_image_std() -> np.ndarray:
        flat = np.moveaxis(images, axis, 1).reshape(len(images), images.shape[axis], -1)
        return flat.std(axis=2, dtype=np.float64).mean(axis=0) / scale

    answers = {
        "mean": number_array(name, mean, "mean").reshape(-1),
        "std": number_array(name, std, "std").reshape(-1),
    }
    for label, options in (("mean", [expected_mean]), ("std", [expected_std, sample_std])):
        got = answers[label]
        if got.size != images.shape[axis]:
            fail(
                name,
                f"{label} has {got.size} values for {images.shape[axis]} channels: "
                f"{_count_hint(got.size, images, axis)}",
            )
        if not np.isfinite(got).all():
            fail(name, f"{label} holds NaN or infinite values: {np.round(got, DECIMALS)}.")
        if any(np.allclose(got, option, atol=TOLERANCE, rtol=0) for option in options):
            continue
        channel = int(np.argmax(np.abs(got - options[0]) > TOLERANCE))
        other = expected_std if label == "mean" else expected_mean
        fail(
            name,
            f"{label} of channel {channel} is {got[channel]:.{DECIMALS}f}".rstrip("0").rstrip(".")
            + f", which NumPy does not confirm to {DECIMALS} decimals."
            + _value_hint(label, got, options[0], other, per_image_std),
        )
    passed(
        name,
        f"mean and std of {images.shape[axis]} channels agree with NumPy to "
        f"{DECIMALS} decimals over {len(images):,} images ({units}{layout})",
    )
