"""Interactive ipywidgets explorers that leave a picture in the saved notebook.

Widgets need a live kernel. A saved notebook keeps only a reference to a widget's model,
so a frontend without that model (the notebook reopened after its kernel stopped, on
another machine, on GitHub, in an export) would show "Error displaying widget". Each
explorer is therefore an :class:`Explorer`: besides the widget view, its display carries
a PNG of the figure at the starting values and a line of text, which frontends show
when they cannot show the widget. JupyterLab with the course's settings (installed with
the package) also saves the widgets' last state in the notebook. Every explorer also has
a static figure in ``viz`` that the notebook draws right after it at fixed values.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from course_utils import inspect, viz

__all__ = ["Explorer", "conv_arithmetic_explorer", "feature_map_browser"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Explorer(ipywidgets.interactive):
    """``ipywidgets.interactive`` over a plotting function, with a static fallback.

    ``plot(**values)`` draws a figure for the controls' values and returns it (or
    ``None`` when there is nothing to draw); the explorer shows it under the controls
    and redraws it on every change. Displayed, the explorer gives the widget view plus
    ``image/png`` (``plot`` at the starting values) and ``text/plain``: a frontend
    without the widget's model shows the picture instead of an error.

    >>> def plot(n):
    ...     fig, ax = plt.subplots()
    ...     ax.plot(range(n))
    ...     return fig
    >>> import contextlib  # outside a kernel the output area prints terminal codes
    >>> with contextlib.redirect_stdout(io.StringIO()):
    ...     explorer = Explorer(plot, n=ipywidgets.IntSlider(value=3, min=1, max=9))
    >>> bundle = explorer._repr_mimebundle_()
    >>> sorted(bundle)
    ['application/vnd.jupyter.widget-view+json', 'image/png', 'text/plain']
    >>> print(bundle["text/plain"])
    Explorer (needs a running kernel); the picture shows n=3
    >>> plt.close("all")
    """

    # ipywidgets 7 displays widgets through _ipython_display_, which would bypass the
    # bundle below; without it IPython asks for _repr_mimebundle_, as ipywidgets 8 does.
    _ipython_display_ = None

    def __init__(self, plot: Callable[..., Figure | None], **controls: ipywidgets.ValueWidget):
        @functools.wraps(plot)  # interactive reads the control names from the signature
        def draw(**values: Any) -> None:
            if plot(**values) is not None:
                plt.show()

        self._plot = plot
        self._start = {name: control.value for name, control in controls.items()}
        self._fallback: dict[str, str] | None = None
        super().__init__(draw, **controls)
        # ipywidgets 8 has drawn the first figure now; 7 waits for _ipython_display_, which
        # this class gives up (above), so draw it here.
        if hasattr(self, "on_displayed"):
            self.update()

    def fallback_bundle(self) -> dict[str, str]:
        """The ``text/plain`` and ``image/png`` that stand in for the widget.

        Drawn once, at the controls' starting values, whatever they are now: the
        picture must not depend on when the notebook was saved.
        """
        if self._fallback is None:
            shown = ", ".join(f"{name}={value}" for name, value in self._start.items())
            self._fallback = {
                "text/plain": f"Explorer (needs a running kernel); the picture shows {shown}"
            }
            try:
                figure = self._plot(**self._start)
            except Exception:  # the student's code: the live view above shows the error
                figure = None
            if figure is not None:
                buffer = io.BytesIO()
                figure.savefig(buffer, format="png", bbox_inches="tight")
                plt.close(figure)
                self._fallback["image/png"] = base64.b64encode(buffer.getvalue()).decode()
        return self._fallback

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        view = {"version_major": 2, "version_minor": 0, "model_id": self.model_id}
        return {**self.fallback_bundle(), WIDGET_VIEW: view}


def conv_arithmetic_explorer(output_size: Callable[[int, int, int, int], int]) -> Explorer:
    """Sliders for W, F, S and P that redraw :func:`viz.plot_filter_positions`.

    ``output_size(W, F, S, P)`` is the student's formula; the figure shows where the
    filter lands, so a wrong formula is visible as a wrong count of positions.
    The static counterpart is ``viz.plot_filter_positions(W, F, S, P, output_size=...)``.

    In a notebook cell (a widget needs a running kernel to be useful), with the
    notebook's own formula::

        conv_arithmetic_explorer(conv_output_size)
    """

    def plot(W: int, F: int, S: int, P: int) -> Figure | None:
        if F > W + 2 * P:
            print(f"F = {F} is wider than the padded input ({W + 2 * P}): no position fits.")
            return None
        return viz.plot_filter_positions(W, F, S, P, output_size=output_size(W, F, S, P))

    return Explorer(
        plot,
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
) -> Explorer:
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

    def plot(layer: str, index: int, channel: int) -> Figure:
        return viz.plot_feature_maps(
            {layer: activations[layer]},
            index=index,
            channels=[channel],
            image=images[index],
            mean=mean,
            std=std,
            panel_size=3.5,
        )

    return Explorer(plot, layer=layer, index=image, channel=channel)
