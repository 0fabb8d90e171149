"""Look inside a model by running it: a layer table, and the activations of chosen layers.

Tracing (rather than reading ``__init__``) gives the shapes the data really has, and
turns PyTorch's terse shape errors into a message that names the layer::

    ShapeMismatchError: layer 'fc1' (Linear) expects 784 input features, got 512
    (input shape (1, 512)).

:func:`capture_activations` records what chosen layers output for a batch, for
:func:`course_utils.viz.plot_feature_maps`::

    maps = capture_activations(model, conv_layer_names(model), images[:1])
    viz.plot_feature_maps(maps, image=images[0])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn


class ShapeMismatchError(RuntimeError):
    """A traced forward pass failed on a shape; the message names the layer."""


@dataclass
class _Trace:
    rows: list[dict]
    running: list[tuple[str, nn.Module, tuple | str]]
    last_done: tuple[str, tuple | str] | None = None


def _shape(value: object) -> tuple | str:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return tuple(value[0].shape)
    return "-"


def _expected_input(module: nn.Module, shape: tuple | str) -> str:
    """What ``module`` expects of its input, compared with the ``shape`` it got."""
    if isinstance(shape, str):  # not a tensor: nothing to compare
        return "could not process its input"
    if isinstance(module, nn.Linear):
        return f"expects {module.in_features} input features, got {shape[-1]}"
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
        got = shape[1] if len(shape) > 1 else "?"
        return f"expects {module.in_channels} input channels, got {got}"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        got = shape[1] if len(shape) > 1 else "?"
        return f"expects {module.num_features} channels, got {got}"
    return "could not process its input"


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside the block; every layer's own mode restored after.

    Each layer gets its own mode back, not the model's: a fine-tuned network may
    keep frozen batch-norm layers in eval mode while the rest trains.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes.items():
            module.training = training


def layer_table(
    model: nn.Module,
    input_size: Sequence[int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """Trace one forward pass and tabulate each layer's output shape and parameters.

    ``input_size`` is the shape of one batch, e.g. ``(1, 3, 32, 32)``. Layers are the
    leaf modules in the order they run; a layer used twice appears twice.
    ``table.attrs["total_params"]`` holds the model's total parameter count.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
    ...                     nn.Linear(8 * 4 * 4, 10))
    >>> table = layer_table(net, (1, 3, 4, 4))
    >>> table[["layer", "output shape", "params"]].values.tolist()[0]
    ['0', '(1, 8, 4, 4)', 224]
    >>> table.attrs["total_params"]
    1514
    """
    trace = _Trace(rows=[], running=[])
    names = {module: name for name, module in model.named_modules()}

    def before(module: nn.Module, inputs: tuple) -> None:
        trace.running.append((names[module], module, _shape(inputs)))

    def after(module: nn.Module, inputs: tuple, output: object) -> None:
        name, _, _ = trace.running.pop()
        trace.last_done = (name, _shape(output))
        if _is_leaf(module):
            trace.rows.append(
                {
                    "layer": name,
                    "type": type(module).__name__,
                    "output shape": str(_shape(output)),
                    "params": sum(p.numel() for p in module.parameters()),
                    "trainable": sum(p.numel() for p in module.parameters() if p.requires_grad),
                }
            )

    handles = []
    for module in names:
        if module is not model:
            handles.append(module.register_forward_pre_hook(before))
            handles.append(module.register_forward_hook(after))
    try:
        with eval_mode(model):
            model(torch.zeros(*input_size, device=device, dtype=dtype))
    except RuntimeError as error:
        raise ShapeMismatchError(_describe_failure(trace, model, error)) from error
    finally:
        for handle in handles:
            handle.remove()

    table = pd.DataFrame(
        trace.rows, columns=["layer", "type", "output shape", "params", "trainable"]
    )
    table.attrs["total_params"] = sum(p.numel() for p in model.parameters())
    return table


def _describe_failure(trace: _Trace, model: nn.Module, error: RuntimeError) -> str:
    first_line = str(error).splitlines()[0]
    if trace.running:
        name, module, shape = trace.running[-1]
        return (
            f"layer {name!r} ({type(module).__name__}) {_expected_input(module, shape)} "
            f"(input shape {shape}). PyTorch said: {first_line}"
        )
    if trace.last_done:
        name, shape = trace.last_done
        return (
            f"shape error in {type(model).__name__}.forward after layer {name!r} "
            f"(its output shape is {shape}). PyTorch said: {first_line}"
        )
    return f"shape error before the first layer of {type(model).__name__}: {first_line}"


def format_layer_table(table: pd.DataFrame) -> str:
    """Render a :func:`layer_table` as plain text with a total line (stable for nbval).

    >>> net = nn.Sequential(nn.Linear(4, 2))
    >>> print(format_layer_table(layer_table(net, (1, 4))))
    layer   type output shape  params  trainable
        0 Linear       (1, 2)      10         10
    total parameters: 10
    """
    return f"{table.to_string(index=False)}\ntotal parameters: {table.attrs['total_params']:,}"


def conv_layer_names(model: nn.Module) -> list[str]:
    """The names of ``model``'s 2-D convolution layers (``Conv2d``, ``ConvTranspose2d``).

    They are the layers whose outputs are feature maps, in the order they are defined.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.Conv2d(4, 8, 5))
    >>> conv_layer_names(net)
    ['0', '2']
    """
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))
    ]


def find_layers(model: nn.Module, layer_names: Sequence[str]) -> dict[str, nn.Module]:
    """The modules called ``layer_names``; a KeyError lists the names that exist."""
    modules = dict(model.named_modules())
    unknown = [name for name in layer_names if name not in modules]
    if unknown:
        available = ", ".join(repr(name) for name in modules if name)
        raise KeyError(
            f"{type(model).__name__} has no layer named "
            f"{', '.join(map(repr, unknown))}; its layers are: {available}"
        )
    return {name: modules[name] for name in layer_names}


def capture_activations(
    model: nn.Module, layer_names: str | Sequence[str], inputs: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Run ``inputs`` through ``model`` and return what each named layer output.

    The result maps each name in ``layer_names`` (as in ``model.named_modules()``, for
    example ``"conv1"`` or ``"features.0"``) to its output for the whole batch, a
    detached CPU tensor such as ``(N, C, H, W)`` for a conv layer. The model runs in
    eval mode without gradients, on its own device; its mode is restored afterwards.
    The forward hooks that do the recording are removed whatever happens, even when
    the forward pass raises. If a layer runs twice, its last output is kept.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    >>> maps = capture_activations(net, ["0", "2"], torch.zeros(5, 1, 8, 8))
    >>> {name: tuple(output.shape) for name, output in maps.items()}
    {'0': (5, 4, 8, 8), '2': (5, 4, 4, 4)}
    """
    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    captured: dict[str, torch.Tensor] = {}

    def recorder(name: str) -> Callable[[nn.Module, tuple, object], None]:
        def record(module: nn.Module, args: tuple, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"layer {name!r} ({type(module).__name__}) returned "
                    f"{type(output).__name__}, not a tensor; pick another layer."
                )
            captured[name] = output.detach().cpu()

        return record

    handles = [
        module.register_forward_hook(recorder(name))
        for name, module in find_layers(model, names).items()
    ]
    device = next(model.parameters(), torch.empty(0)).device
    try:
        with eval_mode(model):
            model(inputs.to(device))
    finally:
        # A hook left behind would keep recording (and holding memory) on every later call.
        for handle in handles:
            handle.remove()
    silent = [name for name in names if name not in captured]
    if silent:
        raise RuntimeError(
            f"layers {silent} did not run in {type(model).__name__}.forward, "
            "so there is nothing to capture."
        )
    return {name: captured[name] for name in names}
