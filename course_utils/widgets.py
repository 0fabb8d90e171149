"""Interactive ipywidgets explorers.

Widgets need a live kernel, so every explorer has a static figure in ``viz`` that the
notebook draws right after it at fixed values, for exported and graded notebooks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from course_utils import inspect, viz


def conv_arithmetic_explorer(output_size: Callable[[int, int, int, int], int]) -> ipywidgets.Widget:
    """Sliders for W, F, S and P that redraw :func:`viz.plot_filter_positions`.

    ``output_size(W, F, S, P)`` is the student's formula; the figure shows where the
    filter lands, so a wrong formula is visible as a wrong count of positions.
    The static counterpart is ``viz.plot_filter_positions(W, F, S, P, output_size=...)``.

    In a notebook cell (a widget needs a running kernel to be useful), with the
    notebook's own formula::

        conv_arithmetic_explorer(conv_output_size)
    """

    def draw(W: int, F: int, S: int, P: int) -> None:
        if F > W + 2 * P:
            print(f"F = {F} is wider than the padded input ({W + 2 * P}): no position fits.")
            return
        viz.plot_filter_positions(W, F, S, P, output_size=output_size(W, F, S, P))
        plt.show()

    return ipywidgets.interactive(
        draw,
        W=ipywidgets.IntSlider(value=7, min=1, max=32, description="W"),
        F=ipywidgets.IntSlider(value=3, min=1, max=11, description="F"),
        S=ipywidgets.IntSlider(value=2, min=1, max=5, description="S"),
        P=ipywidgets.IntSlider(value=1, min=0, max=5, description="P"),
    )


def _image_options(
    count: int, labels: Sequence[int] | torch.Tensor | None, class_names: Sequence[str] | None
) -> list[tuple[str, int]]:
    """Dropdown entries ``("image 3 (cat)", 3)``: the index, and the class when known."""

    def describe(i: int) -> str:
        if labels is None:
            return f"image {i}"
        label = int(labels[i])
        return f"image {i} ({class_names[label] if class_names is not None else label})"

    return [(describe(i), i) for i in range(count)]


def feature_map_browser(
    model: nn.Module,
    images: torch.Tensor,
    layer_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    labels: Sequence[int] | torch.Tensor | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ipywidgets.Widget:
    """Browse feature maps: pick a layer, an input image and a channel.

    ``images`` is a small batch ``(N, C, H, W)`` as the model takes it (normalised);
    ``mean``/``std`` undo the normalisation for display. ``layer_names`` defaults to
    every convolution layer (:func:`course_utils.inspect.conv_layer_names`).
    ``labels`` and ``class_names`` name each image's class in the image menu. The
    activations of all images are captured once, up front, so browsing is instant.
    The channel slider's range follows the chosen layer's channel count. Each change
    draws the input next to the chosen channel, with
    :func:`course_utils.viz.plot_feature_maps`.

    The static counterpart, all channels of one layer for one image at fixed values::

        maps = inspect.capture_activations(model, ["conv1"], images[:1])
        viz.plot_feature_maps(maps, image=images[0], mean=mean, std=std)

    In a notebook cell (a widget needs a running kernel to be useful)::

        feature_map_browser(model, test_images[:8], class_names=data.classes,
                            labels=test_labels[:8], mean=loaders.mean, std=loaders.std)
    """
    layer_names = list(layer_names or inspect.conv_layer_names(model))
    if not layer_names:
        raise ValueError(
            f"{type(model).__name__} has no convolution layers; "
            "pass layer_names to choose layers to browse."
        )
    activations = inspect.capture_activations(model, layer_names, images)
    flat = {name: tuple(value.shape) for name, value in activations.items() if value.dim() != 4}
    if flat:
        raise ValueError(f"These layers do not output feature maps (N, C, H, W): {flat}.")

    def channel_count(layer: str) -> int:
        return activations[layer].shape[1]

    layer = ipywidgets.Dropdown(options=layer_names, description="layer")
    image = ipywidgets.Dropdown(
        options=_image_options(len(images), labels, class_names), description="image"
    )
    channel = ipywidgets.IntSlider(
        value=0, min=0, max=channel_count(layer_names[0]) - 1, description="channel"
    )

    def fit_channel_range(change: dict) -> None:
        # Lowering max also lowers a value above it, so the slider never points past the
        # last channel. Observed before `interactive` is built, so that this runs before
        # the redraw that the layer change triggers.
        channel.max = channel_count(change["new"]) - 1

    layer.observe(fit_channel_range, names="value")

    def draw(layer: str, index: int, channel: int) -> None:
        viz.plot_feature_maps(
            {layer: activations[layer]},
            index=index,
            channels=[channel],
            image=images[index],
            mean=mean,
            std=std,
            panel_size=3.5,
        )
        plt.show()

    return ipywidgets.interactive(draw, layer=layer, index=image, channel=channel)
