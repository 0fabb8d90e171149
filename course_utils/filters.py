"""What a network's first layer looks for: its filters drawn as small RGB images, and
what each filter responds to in a photo, side by side.

A first-layer filter of an RGB network has one weight per colour channel and pixel, so
it can be drawn as a tiny colour image::

    fig = filters.plot_filters(model.conv1.weight)
    maps = inspect.capture_activations(model, "conv1", batch)["conv1"]
    fig = filters.plot_filter_responses(model.conv1.weight, maps[0], channels=range(8))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from course_utils.viz import SEQUENTIAL_CMAP


def filter_images(weight: torch.Tensor) -> np.ndarray:
    """First-layer filters ``(N, 3, kH, kW)`` (or ``(N, 1, kH, kW)``) as displayable images
    ``(N, kH, kW, 3)`` with values in [0, 1].

    Each filter is min-max scaled on its own, over all its channels together: filters
    differ a lot in size, and one shared scale would leave most of them flat grey,
    while scaling the channels separately would change their colour. A filter whose
    weights are all equal becomes mid-grey.

    >>> weight = torch.tensor([[[[-1.0, 1.0]], [[0.0, 0.0]], [[0.0, 3.0]]]])  # (1, 3, 1, 2)
    >>> filter_images(weight)[0].round(2).tolist()
    [[[0.0, 0.25, 0.25], [0.5, 0.25, 1.0]]]
    """
    weight = weight.detach().cpu().float()
    if weight.dim() != 4 or weight.shape[1] not in (1, 3):
        raise ValueError(
            f"First-layer filters are (N, 3, kH, kW) for RGB or (N, 1, kH, kW) "
            f"for greyscale input; got shape {tuple(weight.shape)}."
        )
    low = weight.amin(dim=(1, 2, 3), keepdim=True)
    span = weight.amax(dim=(1, 2, 3), keepdim=True) - low
    scaled = torch.where(span > 0, (weight - low) / span.clamp_min(1e-12), 0.5)
    return scaled.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()


def _channels(count: int, channels: Sequence[int] | None) -> list[int]:
    chosen = list(range(count)) if channels is None else list(channels)
    if not chosen or not all(0 <= c < count for c in chosen):
        raise IndexError(f"There are {count} filters (0 to {count - 1}); asked for {chosen}.")
    return chosen


def _image_panel(ax: plt.Axes, pixels: np.ndarray, title: str, **imshow: Any) -> AxesImage:
    drawn = ax.imshow(pixels, interpolation="nearest", **imshow)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.set_title(title, fontsize=8)
    return drawn


def plot_filters(
    weight: torch.Tensor,
    channels: Sequence[int] | None = None,
    columns: int = 8,
    panel_size: float = 1.0,
) -> Figure:
    """Draw first-layer filters as RGB images, each scaled on its own (:func:`filter_images`).

    >>> fig = plot_filters(torch.randn(16, 3, 7, 7), columns=8)
    >>> len(fig.axes), fig.axes[0].get_title()
    (16, 'filter 0')
    >>> plt.close(fig)
    """
    images = filter_images(weight)
    chosen = _channels(len(images), channels)
    columns = min(columns, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        squeeze=False,
        layout="constrained",
        figsize=(panel_size * columns, panel_size * rows + 0.6),
    )
    for ax in axes.flat[len(chosen) :]:
        ax.set_axis_off()
    for ax, channel in zip(axes.flat, chosen, strict=False):
        _image_panel(ax, images[channel], f"filter {channel}")
    height, width = images.shape[1:3]
    fig.suptitle(f"First-layer filters ({height}×{width} px, RGB, each scaled to its own min-max)")
    return fig


def plot_filter_responses(
    weight: torch.Tensor,
    activations: torch.Tensor,
    channels: Sequence[int] | None = None,
    columns: int = 4,
    panel_size: float = 1.7,
    cmap: str = SEQUENTIAL_CMAP,
) -> Figure:
    """Draw each chosen first-layer filter next to its activation map for one image.

    ``weight`` is the layer's ``(N, C, kH, kW)`` weight and ``activations`` its output
    for one image, ``(N, H, W)`` (a batch of one, ``(1, N, H, W)``, is accepted too).
    All activation maps share one colour scale, with a colour bar, so that a strong
    response can be told from a weak one.

    >>> fig = plot_filter_responses(torch.randn(8, 3, 7, 7), torch.rand(8, 16, 16),
    ...                             channels=[0, 5], columns=2)
    >>> [ax.get_title() for ax in fig.axes[:4]]
    ['filter 0', 'response 0', 'filter 5', 'response 5']
    >>> plt.close(fig)
    """
    images = filter_images(weight)
    maps = activations.detach().cpu().float()
    if maps.dim() == 4 and len(maps) == 1:
        maps = maps[0]
    if maps.dim() != 3 or len(maps) != len(images):
        raise ValueError(
            f"activations must be the layer's output for one image, "
            f"({len(images)}, H, W) for {len(images)} filters; got shape "
            f"{tuple(activations.shape)}."
        )
    chosen = _channels(len(images), channels)
    columns = min(columns, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(
        rows,
        2 * columns,
        squeeze=False,
        layout="constrained",
        figsize=(2 * panel_size * columns + 1, panel_size * rows + 0.6),
        width_ratios=[0.6, 1] * columns,
    )
    for ax in axes.flat:
        ax.set_axis_off()
    shown = maps[chosen]
    limits = {"vmin": float(shown.min()), "vmax": float(shown.max())}
    for i, channel in enumerate(chosen):
        row, column = divmod(i, columns)
        filter_ax, map_ax = axes[row, 2 * column], axes[row, 2 * column + 1]
        filter_ax.set_axis_on()
        map_ax.set_axis_on()
        _image_panel(filter_ax, images[channel], f"filter {channel}")
        drawn = _image_panel(
            map_ax, maps[channel].numpy(), f"response {channel}", cmap=cmap, **limits
        )
    fig.colorbar(drawn, ax=axes, label="activation (shared scale)", shrink=0.8)
    height, width = maps.shape[1:]
    fig.suptitle(f"Each filter next to its response to the photo ({height}×{width} px maps)")
    return fig
