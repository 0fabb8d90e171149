"""Where in a photo a network looks: a deep layer's maps, stretched to the photo's size
and laid over it, and the class-score gradients that Grad-CAM is built from.

A deep layer's maps are small (7×7 for ResNet18's ``layer4`` at 224 px), but each cell
sees a patch of the photo, so a map stretched back to the photo's size shows where
that layer responds::

    captured = saliency.layer_gradients(model, "layer4", batch[0])   # the predicted class
    fig = saliency.plot_overlays(photo, {"channel 0": captured.activations[0]})

:func:`layer_gradients` records a layer's activations for one image and the gradient of
one class score with respect to them; turning those into a Grad-CAM map is the
assignment's task (a3_t2), checked by :func:`course_utils.checks.check_grad_cam`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

# Eval mode with every layer's own mode restored afterwards; shared with inspect's hooks.
from course_utils.inspect import eval_mode, find_layers
from course_utils.viz import SEQUENTIAL_CMAP, displayable

DEFAULT_ALPHA = 0.6


def upsample_map(heat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Stretch a map ``(h, w)`` to ``size`` ``(H, W)`` with bilinear interpolation.

    Each map cell is taken to cover an equal share of the photo (``align_corners=False``),
    as a network's downsampling makes it.

    >>> upsample_map(torch.tensor([[0.0, 1.0]]), (2, 4)).tolist()
    [[0.0, 0.25, 0.75, 1.0], [0.0, 0.25, 0.75, 1.0]]
    """
    heat = torch.as_tensor(heat).detach().cpu().float()
    if heat.dim() != 2:
        raise ValueError(
            f"A map is (h, w); got shape {tuple(heat.shape)}. "
            "Pick one channel, or one image of a batch."
        )
    return F.interpolate(heat[None, None], size=tuple(size), mode="bilinear", align_corners=False)[
        0, 0
    ]


def scale_map(heat: torch.Tensor) -> torch.Tensor:
    """Min-max scale a map to [0, 1] (all zeros when it is constant).

    >>> scale_map(torch.tensor([2.0, 4.0, 3.0])).tolist()
    [0.0, 1.0, 0.5]
    """
    low, span = heat.min(), heat.max() - heat.min()
    return (heat - low) / span if span > 0 else torch.zeros_like(heat)


def _photo_pixels(photo: torch.Tensor) -> np.ndarray:
    """A uint8 ``(3, H, W)`` or float ``(3, H, W)`` in [0, 1] photo as ``(H, W, 3)`` in [0, 1]."""
    photo = torch.as_tensor(photo)
    if photo.dim() != 3 or photo.shape[0] != 3:
        raise ValueError(
            f"The photo must be an RGB image (3, H, W), as load_photo returns "
            f"it; got shape {tuple(photo.shape)}."
        )
    return displayable(photo)


def overlay(
    photo: torch.Tensor,
    heat: torch.Tensor,
    alpha: float = DEFAULT_ALPHA,
    cmap: str = SEQUENTIAL_CMAP,
) -> np.ndarray:
    """Lay ``heat`` ``(h, w)`` over ``photo`` ``(3, H, W)``; return ``(H, W, 3)`` in [0, 1].

    The map is stretched to the photo's size (:func:`upsample_map`), scaled to [0, 1]
    (:func:`scale_map`) and coloured with ``cmap``. Its opacity grows with its value, up
    to ``alpha``: where the layer is silent, the photo shows through unchanged.

    >>> photo = torch.zeros(3, 30, 45, dtype=torch.uint8)
    >>> overlay(photo, torch.rand(7, 7)).shape
    (30, 45, 3)
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha is an opacity between 0 and 1; got {alpha}.")
    pixels = _photo_pixels(photo)
    scaled = scale_map(upsample_map(heat, pixels.shape[:2])).numpy()
    colours = mpl.colormaps[cmap](scaled)[..., :3]
    opacity = alpha * scaled[..., None]
    return (1 - opacity) * pixels + opacity * colours


@dataclass(frozen=True)
class LayerGradients:
    """What :func:`layer_gradients` recorded for one image.

    ``activations`` ``(C, h, w)`` is the layer's output; ``gradients`` (the same shape)
    is the derivative of the class's score (its logit, before softmax) with respect to
    it; ``score`` is that logit and ``probability`` its softmax.
    """

    activations: torch.Tensor
    gradients: torch.Tensor
    class_index: int
    score: float
    probability: float


def layer_gradients(
    model: nn.Module, layer: str, image: torch.Tensor, target: int | None = None
) -> LayerGradients:
    """Activations of ``model`` at ``layer`` (a name in ``model.named_modules()``, such as
    ``"layer4"``) for one preprocessed ``image`` ``(C, H, W)``, and the gradient of a class
    score with respect to them.

    ``target`` picks the class; ``None`` takes the class the model predicts. The model
    runs in eval mode on its own device; its modes and its parameters' gradients are
    left as they were (the gradient is taken with ``torch.autograd.grad``, which
    touches no ``.grad``), and frozen parameters are fine.

    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> captured = layer_gradients(net, "1", torch.rand(3, 8, 8), target=1)
    >>> tuple(captured.activations.shape), tuple(captured.gradients.shape), captured.class_index
    ((4, 8, 8), (4, 8, 8), 1)
    """
    if image.dim() == 4 and len(image) == 1:
        image = image[0]
    if image.dim() != 3:
        raise ValueError(
            f"layer_gradients takes one image (C, H, W); got shape {tuple(image.shape)}."
        )
    module = find_layers(model, [layer])[layer]
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda mod, args, output: captured.append(output))
    device = next(model.parameters(), torch.empty(0)).device
    try:
        with eval_mode(model), torch.enable_grad():
            # An input that needs a gradient keeps the graph alive even when every
            # parameter is frozen.
            inputs = image[None].to(device).detach().requires_grad_(True)
            logits = model(inputs)
            index = int(logits.argmax(dim=1)) if target is None else target
            if not 0 <= index < logits.shape[1]:
                raise IndexError(
                    f"target {index} is not a class: the model scores "
                    f"{logits.shape[1]} classes (0 to {logits.shape[1] - 1})."
                )
            if not captured or not isinstance(captured[-1], torch.Tensor):
                raise RuntimeError(
                    f"layer {layer!r} gave no tensor output in "
                    f"{type(model).__name__}.forward; pick another layer."
                )
            activations = captured[-1]
            (gradients,) = torch.autograd.grad(logits[0, index], activations)
    finally:
        handle.remove()
    logits = logits[0].detach()
    return LayerGradients(
        activations[0].detach().cpu(),
        gradients[0].detach().cpu(),
        index,
        float(logits[index]),
        float(torch.softmax(logits, dim=0)[index]),
    )


def plot_overlays(
    photo: torch.Tensor,
    heatmaps: Mapping[str, torch.Tensor],
    alpha: float = DEFAULT_ALPHA,
    columns: int = 4,
    panel_size: float = 3.0,
    cmap: str = SEQUENTIAL_CMAP,
) -> Figure:
    """Draw the photo, then each named map laid over it (:func:`overlay`), one panel each.

    Every map is scaled to [0, 1] on its own, so the colours show *where* a map is
    strong, not how strong it is compared with another map. Axes are in pixels of
    the photo.

    >>> photo = torch.zeros(3, 30, 45, dtype=torch.uint8)
    >>> fig = plot_overlays(photo, {"channel 3": torch.rand(7, 7)})
    >>> [ax.get_title() for ax in fig.axes[:2]], fig.axes[0].get_xlabel()
    (['photo', 'channel 3'], 'x (pixels)')
    >>> plt.close(fig)
    """
    if not heatmaps:
        raise ValueError("No maps to overlay: pass {name: (h, w) map}.")
    pixels = _photo_pixels(photo)
    panels = [("photo", pixels)] + [
        (name, overlay(photo, heat, alpha, cmap)) for name, heat in heatmaps.items()
    ]
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    height, width = pixels.shape[:2]
    fig, axes = plt.subplots(
        rows,
        columns,
        squeeze=False,
        layout="constrained",
        figsize=(panel_size * columns + 1, panel_size * rows * height / width + 0.6),
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    for ax, (title, image) in zip(axes.flat, panels, strict=False):
        ax.imshow(image)
        ax.grid(False)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    colours = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap=cmap)
    fig.colorbar(colours, ax=axes, label="map value (each map scaled to [0, 1])", shrink=0.8)
    return fig
