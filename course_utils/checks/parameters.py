"""Checks of parameter counts and feature sizes, with the PyTorch model as the oracle.

Counts come from ``p.numel()`` of the model's own parameters, feature sizes from a
forward pass of a dummy batch. A wrong count names the layer and the kind of mistake
(biases, input channels, the size of the flattened input), never the right number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.checks._core import (
    N_RANDOM_CASES,
    call,
    case_generator,
    describe,
    fail,
    passed,
    whole_number,
)

__all__ = ["check_flattened_features", "check_parameter_count", "check_parameter_formulas"]


def _own_counts(module: nn.Module) -> tuple[int, int]:
    """(weights, biases) held directly by ``module``."""
    weights = sum(p.numel() for n, p in module.named_parameters(recurse=False) if n != "bias")
    bias = getattr(module, "bias", None)
    return weights, (bias.numel() if isinstance(bias, torch.Tensor) else 0)


def _layer_hint(got: int, module: nn.Module) -> str:
    weights, biases = _own_counts(module)
    if biases and got == weights:
        return "Did you forget the biases (one per output)?"
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        c_in, c_out = module.in_channels // module.groups, module.out_channels
        if got == kh * kw * c_out + biases:
            return "Did you forget the input channels (each filter spans all of them)?"
        if kh * kw > 1 and got in (kh * c_in * c_out + biases, kw * c_in * c_out + biases):
            return "A filter is F x F: count both of its dimensions."
        if biases and got == weights + module.in_channels:
            return "One bias per filter (output channel), not per input channel."
        inputs, rest = divmod(got - biases, kh * kw * c_out)
        what = "input channels"
    elif isinstance(module, nn.Linear):
        if biases and got == weights + module.in_features:
            return "One bias per output, not per input."
        inputs, rest = divmod(got - biases, module.out_features)
        what = "inputs (the flattened size: channels x height x width after the last pool)"
    else:
        return ""
    if not rest and inputs > 0:
        return f"Your count implies {inputs:,} {what}, which is not what this layer gets."
    return ""


def _layers_with_parameters(model: nn.Module) -> dict[str, nn.Module]:
    return {name: module for name, module in model.named_modules() if sum(_own_counts(module))}


def check_parameter_count(answer: Any, model: nn.Module) -> None:
    """Check a parameter count, in total (an int) or per layer (a dict keyed by the layer
    names of ``model.named_modules()``, as str or int; layers without parameters may be
    left out or given as 0; or a list of the counts of the layers with parameters, in
    order). The oracle is ``p.numel()``.

    >>> net = nn.Sequential(nn.Conv2d(2, 4, 3))
    >>> check_parameter_count({"0": 72}, net)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_parameter_count: layer '0' (Conv2d, 2 -> 4 \
channels, 3x3): your count 72 is wrong. Did you forget the biases (one per output)?
    """
    name = "check_parameter_count"
    layers = _layers_with_parameters(model)
    total = sum(p.numel() for p in model.parameters())
    table: Mapping[Any, Any] | None = None
    if callable(getattr(answer, "to_dict", None)) and not isinstance(answer, Mapping):
        answer = answer.to_dict()  # a pandas Series indexed by layer name
    if isinstance(answer, (list, tuple)) and len(answer) == len(layers) > 1:
        table = dict(zip(layers, answer, strict=True))  # one count per layer, in order
    elif isinstance(answer, Mapping):
        table = answer
    if table is not None:
        every_layer = dict(model.named_modules())
        keys = {str(key): key for key in table}  # layer "0" may be given as the int 0
        unknown = [key for key in keys if key not in every_layer]
        if unknown:
            fail(
                name,
                f"no layer named {describe(keys[unknown[0]])}; the model's layers with "
                f"parameters are {', '.join(layers)}.",
            )
        for layer, key in keys.items():
            got = whole_number(name, table[key], f"your count for layer {layer!r}")
            module = every_layer[layer]
            if got != sum(_own_counts(module)):
                fail(
                    name,
                    f"layer {layer!r} ({_layer_name(module)}): your count {got:,} is "
                    f"wrong. {_layer_hint(got, module)}".rstrip(),
                )
        missing = [layer for layer in layers if layer not in keys]
        if missing:
            fail(name, f"layers with parameters missing from your table: {', '.join(missing)}.")
        passed(name, f"{len(layers)} layers agree with the model's parameters")
        return
    if isinstance(answer, (list, tuple, set)):
        fail(
            name,
            f"got {describe(answer)}: give the total as an int, or a per-layer table "
            f"as a dict {{layer name: count}} (or a list of the {len(layers)} layers' counts, "
            "in order).",
        )
    got = whole_number(name, answer, "your total")
    if got != total:
        biases = sum(_own_counts(m)[1] for m in layers.values())
        hint = (
            " Did you forget the biases (one per output)?"
            if got == total - biases
            else " Count layer by layer (a dict {layer name: count}) to find which layer."
        )
        fail(name, f"your total {got:,} disagrees with the model's parameters.{hint}")
    passed(name, "the total agrees with the model's parameters")


def _layer_name(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return f"Conv2d, {module.in_channels} -> {module.out_channels} channels, {kh}x{kw}"
    if isinstance(module, nn.Linear):
        return f"Linear, {module.in_features} -> {module.out_features}"
    return type(module).__name__


# Sizes a formula is asked again before a hint names its mistake: one count can fit
# several mistakes, a formula's counts on these fit only the one it makes.
_CONV_PROBES = [(3, 4, 5), (5, 2, 7), (2, 6, 3)]
_LINEAR_PROBES = [(17, 5), (3, 11), (40, 9)]


def _kind(hint: str) -> str:
    """A hint without its numbers: the same kind of mistake at other sizes."""
    return re.sub(r"[\d,]+", "#", hint)


def _formula_hint(
    student: Callable[..., Any],
    got: int,
    layer: nn.Module,
    make_layer: Callable[..., nn.Module],
    probes: Sequence[tuple[int, ...]],
) -> str:
    """The hint for ``got`` when the student's formula makes the same kind of mistake on
    every probe; else ``""``."""
    hint = _layer_hint(got, layer)
    for probe in probes if hint else []:
        probe_layer = make_layer(*probe)
        try:
            answer = whole_number("", student(*probe), "")
        except Exception:  # a probe it cannot answer is no evidence for the hint
            return ""
        right = sum(p.numel() for p in probe_layer.parameters())
        if answer == right or _kind(_layer_hint(answer, probe_layer)) != _kind(hint):
            return ""
    return hint


def check_parameter_formulas(
    conv_params: Callable[[int, int, int], Any],
    linear_params: Callable[[int, int], Any],
    rng: np.random.Generator | None = None,
) -> None:
    """Check ``conv_params(F, c_in, c_out)`` (an F x F convolution with bias) and
    ``linear_params(n_in, n_out)`` (a linear layer with bias) on random sizes against the
    parameters of real ``nn.Conv2d`` and ``nn.Linear`` layers; with ``rng``, on fresh
    sizes drawn from it (wider ranges).

    >>> check_parameter_formulas(lambda F, c_in, c_out: 0, lambda n_in, n_out: 0)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_parameter_formulas: conv_params(F=2, c_in=6, \
c_out=1) is 0, but nn.Conv2d has another count.
    """
    name = "check_parameter_formulas"
    generator = case_generator(rng)
    top_channels, top_features = (9, 300) if rng is None else (65, 3000)
    for _ in range(N_RANDOM_CASES):
        f = int(generator.integers(1, 9 if rng is None else 12))
        c_in, c_out = (int(v) for v in generator.integers(1, top_channels, size=2))
        what = f"conv_params(F={f}, c_in={c_in}, c_out={c_out})"
        got = whole_number(name, call(name, conv_params, (f, c_in, c_out), what), what)
        conv = nn.Conv2d(c_in, c_out, f)
        if got != sum(p.numel() for p in conv.parameters()):
            hint = _formula_hint(
                conv_params, got, conv, lambda f, i, o: nn.Conv2d(i, o, f), _CONV_PROBES
            )
            fail(name, f"{what} is {got:,}, but nn.Conv2d has another count. {hint}".rstrip())
        n_in, n_out = (int(v) for v in generator.integers(1, top_features, size=2))
        what = f"linear_params(n_in={n_in}, n_out={n_out})"
        got = whole_number(name, call(name, linear_params, (n_in, n_out), what), what)
        linear = nn.Linear(n_in, n_out)
        if got != sum(p.numel() for p in linear.parameters()):
            hint = _formula_hint(linear_params, got, linear, nn.Linear, _LINEAR_PROBES)
            fail(name, f"{what} is {got:,}, but nn.Linear has another count. {hint}".rstrip())
    passed(
        name,
        f"{N_RANDOM_CASES} random convolutions and linear layers agree with "
        "nn.Conv2d and nn.Linear",
    )


def check_flattened_features(
    features: Any, model: nn.Module, input_shape: Sequence[int], widths: Sequence[Any] | None = None
) -> None:
    """Check ``features``, the number of values ``model`` hands to its first linear layer
    for one input of ``input_shape`` ``(C, H, W)``, against a traced forward pass.

    ``widths`` (optional) are the widths after each ``Conv2d`` and ``MaxPool2d`` layer, in
    order; a wrong one is named by its layer, so you see where your arithmetic went off.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 5), nn.MaxPool2d(2), nn.Flatten())
    >>> check_flattened_features(8 * 14 * 14, net, (3, 32, 32), widths=[28, 14])
    PASS check_flattened_features: your feature count and 2 layer widths agree with a \
traced forward pass
    """
    name = "check_flattened_features"
    watched = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    traced: list[int] = []
    handles = [
        m.register_forward_hook(lambda mod, args, out: traced.append(out.shape[-1]))
        for _, m in watched
    ]
    try:
        with torch.no_grad():
            output = model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    if isinstance(widths, (np.ndarray, torch.Tensor)) and widths.ndim == 1:
        widths = widths.tolist()  # an array of widths is a list of widths
    if widths is not None:
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            fail(
                name,
                f"widths is {describe(widths)}; give a list with one width per "
                f"convolution and pooling layer ({len(watched)} of them).",
            )
        if len(widths) != len(watched):
            fail(
                name,
                f"you gave {len(widths)} widths for {len(watched)} convolution and "
                f"pooling layers ({', '.join(n for n, _ in watched)}).",
            )
        for (layer, module), value, width in zip(watched, widths, traced, strict=False):
            got = whole_number(name, value, f"your width after layer {layer!r}")
            if got != width:
                fail(
                    name,
                    f"your width after layer {layer!r} ({type(module).__name__}) is "
                    f"{got}, which the traced model does not give; the widths before "
                    "it agree, so look at this step.",
                )
    got = whole_number(name, features, "features")
    expected = output.flatten(1).shape[1]
    if got != expected:
        fail(
            name,
            f"your {got:,} features disagree with the traced model: multiply the "
            "channels of the last layer by its height and width.",
        )
    detail = f" and {len(watched)} layer widths" if widths is not None else ""
    passed(name, f"your feature count{detail} agree with a traced forward pass")
