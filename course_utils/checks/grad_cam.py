"""Check of a Grad-CAM map computed from a layer's activations and gradients.

The oracle is the class activation map (CAM, Zhou et al., 2016), a different
computation that needs no gradients: when a layer's output ``A`` (``C x h x w``) feeds
global average pooling and then a linear layer with weights ``W``, as ResNet18's
``layer4`` feeds ``avgpool`` and ``fc``, Grad-CAM for class ``c`` equals
``ReLU(sum_k W[c, k] A[k]) / (h * w)`` (Selvaraju et al., 2017, section 3.1). The check
feeds the student's function activations and gradients captured by
:func:`course_utils.saliency.layer_gradients` and compares its map with the CAM.

On such a network each channel's gradient is the same at every position. A second
case therefore adds to the gradients a pattern that varies over the map but averages
to zero in every channel: Grad-CAM does not change, while a method that weighs each
position by its own gradient does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.checks._core import call, fail, number_array, passed

__all__ = ["check_grad_cam"]


def _toy_network(
    rng: np.random.Generator | None = None,
) -> tuple[nn.Module, nn.Linear, torch.Tensor]:
    """A small CNN whose layer ``"3"`` feeds global average pooling and a linear layer
    (returned too), and a rectangular image for it (its map is 7 x 11); with ``rng``, fresh
    weights and a fresh image size drawn from it."""
    seed, image_seed, (height, width) = 0, 1, (14, 22)
    if rng is not None:
        seed, image_seed = (int(v) for v in rng.integers(2**31, size=2))
        height, width = (int(v) for v in rng.integers(6, 40, size=2))
    with torch.random.fork_rng(devices=[]):  # the same weights every time; the
        torch.manual_seed(seed)  # notebook's own random state is left alone
        head = nn.Linear(6, 5)
        net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 6, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            head,
        )
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(image_seed))
    return net.eval(), head, image


def _cam(activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The class activation map for the weights ``(C,)`` of one class, scaled as Grad-CAM."""
    h, w = activations.shape[1:]
    return torch.relu(torch.einsum("k,khw->hw", weights, activations)) / (h * w)


def _hint(
    got: torch.Tensor, expected: torch.Tensor, activations: torch.Tensor, weights: torch.Tensor
) -> str:
    h, w = expected.shape
    signed = torch.einsum("k,khw->hw", weights, activations) / (h * w)

    def close(other: torch.Tensor) -> bool:
        return torch.allclose(got, other, rtol=1e-4, atol=1e-7)

    if close(signed):
        return "it keeps negative values: Grad-CAM keeps only the positive evidence (a ReLU)."
    if close(expected * h * w):
        return (
            "it is h * w times too large: average each channel's gradient over the map's "
            "positions, do not sum it."
        )
    if expected.max() > 0 and got.max() > 0 and close(expected * got.max() / expected.max()):
        return (
            "it has the right shape but another scale: return the map unscaled (the "
            "overlay scales it for display)."
        )
    return (
        "check which axes you average over and which you sum over: every channel gets "
        "one weight, and the map has one value per position."
    )


def _compare(
    name: str,
    grad_cam_map: Callable[..., Any],
    activations: torch.Tensor,
    gradients: torch.Tensor,
    expected: torch.Tensor,
    weights: torch.Tensor,
    case: str,
) -> None:
    what = "grad_cam_map(activations, gradients)"
    result = call(name, grad_cam_map, (activations.clone(), gradients.clone()), what)
    got = torch.as_tensor(number_array(name, result, f"the map of {what}"), dtype=torch.float64)
    if got.shape != expected.shape:
        hint = (
            " Sum over the channels: the map has one value per position."
            if got.dim() == 3
            else " Return the map at the layer's resolution; the overlay stretches it."
            if got.dim() == 2 and got.shape[0] > expected.shape[0]
            else ""
        )
        fail(
            name,
            f"for {case} the activations are {tuple(activations.shape)} and your map has "
            f"shape {tuple(got.shape)}, not {tuple(expected.shape)} (h, w).{hint}",
        )
    expected, weights = expected.double(), weights.double()
    if not torch.allclose(got, expected, rtol=1e-4, atol=1e-7):
        i, j = divmod(int((got - expected).abs().argmax()), expected.shape[1])
        fail(
            name,
            f"for {case} your map disagrees with the class activation map, most at "
            f"position ({i}, {j}): {_hint(got, expected, activations.double(), weights)}",
        )


def _cases(
    model: nn.Module, layer: str, image: torch.Tensor, head: nn.Linear, targets: list[int | None]
) -> list[tuple[Any, torch.Tensor, str]]:
    from course_utils.saliency import layer_gradients  # saliency draws; checks need not

    cases = []
    for target in targets:
        captured = layer_gradients(model, layer, image, target=target)
        weights = head.weight[captured.class_index].detach().cpu()
        cases.append((captured, weights, f"class {captured.class_index}"))
    return cases


def check_grad_cam(
    grad_cam_map: Callable[[torch.Tensor, torch.Tensor], Any],
    model: nn.Module | None = None,
    image: torch.Tensor | None = None,
    layer: str = "layer4",
    rng: np.random.Generator | None = None,
) -> None:
    """Check ``grad_cam_map(activations, gradients)``: the Grad-CAM map ``(h, w)`` from a
    layer's activations and the class score's gradients, both ``(C, h, w)``.

    The cases are every class of a small network on a rectangular image, one of them with
    gradients that vary over the map, and, with ``model`` and ``image`` (a torchvision
    ResNet and one preprocessed image), its predicted and second-ranked class at
    ``layer``. The oracle is the class activation map (see the module docstring). With
    ``rng``, the small network's weights, the image size and the varying gradients are
    fresh ones drawn from it.

    >>> check_grad_cam(lambda activations, gradients: activations.sum(dim=0))
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_grad_cam: for class 0 of the course's small \
network your map disagrees with the class activation map, most at position (4, 1): check \
which axes you average over and which you sum over: every channel gets one weight, and the \
map has one value per position.
    """
    name = "check_grad_cam"
    net, head, toy_image = _toy_network(rng)
    toy = _cases(net, "3", toy_image, head, list(range(5)))
    checked = 0
    for captured, weights, case in toy:
        activations = captured.activations
        _compare(
            name,
            grad_cam_map,
            activations,
            captured.gradients,
            _cam(activations, weights),
            weights,
            f"{case} of the course's small network",
        )
        checked += 1
    captured, weights, case = toy[0]
    pattern_seed = 2 if rng is None else int(rng.integers(2**31))
    pattern = torch.randn(
        captured.gradients.shape, generator=torch.Generator().manual_seed(pattern_seed)
    )
    pattern -= pattern.mean(dim=(1, 2), keepdim=True)  # averages to zero in every channel
    varied = captured.gradients + pattern * captured.gradients.abs().max()
    _compare(
        name,
        grad_cam_map,
        captured.activations,
        varied,
        _cam(captured.activations, weights),
        weights,
        f"{case} of the course's small network, with gradients that vary over the map "
        "(Grad-CAM uses each channel's gradient averaged over the map)",
    )
    checked += 1
    if model is not None:
        if image is None:
            fail(name, "with a model, pass the image too (one preprocessed image (3, H, W)).")
        fc, pool = getattr(model, "fc", None), getattr(model, "avgpool", None)
        if not isinstance(fc, nn.Linear) or not isinstance(pool, nn.AdaptiveAvgPool2d):
            fail(
                name,
                f"{type(model).__name__} has no avgpool and fc layers after {layer!r}: "
                "the oracle needs a torchvision ResNet.",
            )
        with torch.no_grad():
            logits = model(image[None].to(next(model.parameters()).device))[0]
        top2 = logits.topk(2).indices.tolist()
        for captured, weights, case in _cases(model, layer, image, fc, top2):
            _compare(
                name,
                grad_cam_map,
                captured.activations,
                captured.gradients,
                _cam(captured.activations, weights),
                weights,
                f"{case} of {type(model).__name__} at {layer!r}",
            )
            checked += 1
    passed(
        name, f"{checked} maps agree with the class activation map (CAM), which needs no gradients"
    )
