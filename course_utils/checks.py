"""Checks that compare a student's answer with PyTorch as the oracle.

Each ``check_*`` function runs the student's answer on the assignment's own case and
on seeded random cases. A correct answer prints exactly one ``PASS`` line; a wrong one
raises :class:`CheckFailed` with a hint that names the numbers, for example::

    CheckFailed: check_convolution: position (0, 0) is 2, expected -2. Your result
    equals cross-correlation with the unflipped kernel: did you flip the kernel?

The helper holds no answers: the notebooks do.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The assignment's image and kernel (seed 000, task 1a). The kernel is the one the
# convolution uses before flipping.
ASSIGNMENT_IMAGE = np.array([[1, 0, 2, 3, 1],
                             [3, 2, 0, 7, 0],
                             [0, 6, 1, 1, 4]])
ASSIGNMENT_KERNEL = np.array([[-1, 0, 1],
                              [-2, 0, 2],
                              [-1, 0, 1]])

N_RANDOM_CASES = 20


class CheckFailed(AssertionError):
    """A student's answer disagrees with the oracle; the message says how."""


def _fail(check: str, message: str) -> None:
    raise CheckFailed(f"{check}: {message}")


def _passed(check: str, detail: str) -> None:
    print(f"PASS {check}: {detail}")


def _rng() -> np.random.Generator:
    # Fixed seed: the same random cases on every run keep PASS lines identical.
    return np.random.default_rng(2024)


# --- convolution by hand -------------------------------------------------------------

def _torch_sliding(image: np.ndarray, kernel: np.ndarray, padding: int, flip: bool) -> np.ndarray:
    """Oracle: ``F.conv2d`` is cross-correlation; a true convolution flips the kernel first."""
    x = torch.as_tensor(image, dtype=torch.float64)[None, None]
    w = torch.as_tensor(kernel, dtype=torch.float64)[None, None]
    if flip:
        w = torch.flip(w, dims=(2, 3))
    return F.conv2d(x, w, padding=padding)[0, 0].numpy()


def _sliding_cases() -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = _rng()
    cases = [(ASSIGNMENT_IMAGE, ASSIGNMENT_KERNEL, 1)]
    for _ in range(N_RANDOM_CASES):
        k = int(rng.choice([2, 3, 5]))
        h, w = rng.integers(k, k + 6, size=2)
        padding = int(rng.integers(0, 3))
        cases.append((rng.integers(-5, 6, size=(h, w)), rng.integers(-3, 4, size=(k, k)), padding))
    return cases


def _diagnose_sliding(got: np.ndarray, image: np.ndarray, kernel: np.ndarray, padding: int,
                      flip: bool) -> str:
    expected = _torch_sliding(image, kernel, padding, flip)
    case = f"for a {image.shape[0]}x{image.shape[1]} image, {kernel.shape[0]}x{kernel.shape[1]} " \
           f"kernel and padding {padding}"
    if got.shape != expected.shape:
        hint = ""
        unpadded = _torch_sliding(image, kernel, 0, flip).shape
        if padding and got.shape == unpadded:
            hint = " Did you forget the zero padding?"
        elif padding and got.shape == tuple(n + padding - kernel.shape[0] + 1 for n in image.shape):
            hint = " Padding counted once instead of on both sides."
        return f"output shape is {got.shape}, expected {expected.shape} {case}.{hint}"
    wrong = np.argwhere(~np.isclose(got, expected))
    i, j = (int(v) for v in wrong[0])
    message = f"position ({i}, {j}) is {got[i, j]:g}, expected {expected[i, j]:g} {case}."
    if np.allclose(got, _torch_sliding(image, kernel, padding, not flip)):
        message += (" Your result equals cross-correlation with the unflipped kernel:"
                    " did you flip the kernel?" if flip else
                    " Your result equals a true convolution: cross-correlation does not flip"
                    " the kernel.")
    return message


def _check_sliding(name: str, student_fn: Callable[..., Any], flip: bool) -> None:
    cases = _sliding_cases()
    for image, kernel, padding in cases:
        got = np.asarray(student_fn(image.copy(), kernel.copy(), padding), dtype=np.float64)
        expected = _torch_sliding(image, kernel, padding, flip)
        if got.shape != expected.shape or not np.allclose(got, expected):
            _fail(name, _diagnose_sliding(got, image, kernel, padding, flip))
    _passed(name, f"the assignment's case and {len(cases) - 1} random cases agree with F.conv2d")


def check_convolution(convolve: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> None:
    """Check a true 2-D convolution (kernel flipped) with zero padding.

    ``convolve(image, kernel, padding)`` takes 2-D arrays and returns the
    stride-1 result. The oracle is ``F.conv2d`` with the flipped kernel.

    >>> import torch.nn.functional as F, torch
    >>> def convolve(image, kernel, padding):
    ...     x = torch.tensor(image, dtype=torch.float64)[None, None]
    ...     w = torch.flip(torch.tensor(kernel, dtype=torch.float64), (0, 1))[None, None]
    ...     return F.conv2d(x, w, padding=padding)[0, 0].numpy()
    >>> check_convolution(convolve)
    PASS check_convolution: the assignment's case and 20 random cases agree with F.conv2d
    """
    _check_sliding("check_convolution", convolve, flip=True)


def check_cross_correlation(correlate: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> None:
    """Check a 2-D cross-correlation (kernel not flipped), which is what ``nn.Conv2d`` does.

    >>> import torch.nn.functional as F, torch
    >>> def correlate(image, kernel, padding):
    ...     x = torch.tensor(image, dtype=torch.float64)[None, None]
    ...     w = torch.tensor(kernel, dtype=torch.float64)[None, None]
    ...     return F.conv2d(x, w, padding=padding)[0, 0].numpy()
    >>> check_cross_correlation(correlate)
    PASS check_cross_correlation: the assignment's case and 20 random cases agree with F.conv2d
    """
    _check_sliding("check_cross_correlation", correlate, flip=False)


# --- size arithmetic -----------------------------------------------------------------

def _conv_out(w: int, f: int, s: int, p: int) -> int:
    return F.conv2d(torch.zeros(1, 1, w, w), torch.zeros(1, 1, f, f), stride=s, padding=p).shape[-1]


def _pool_out(w: int, f: int, s: int) -> int:
    return F.max_pool2d(torch.zeros(1, 1, w, w), kernel_size=f, stride=s).shape[-1]


def _as_int(name: str, value: Any, case: str) -> int:
    if isinstance(value, float) and not value.is_integer():
        _fail(name, f"{case} returned {value}, which is not a whole number of pixels: "
                    "use floor division (//) for strides that do not divide evenly.")
    try:
        return int(value)
    except (TypeError, ValueError):
        _fail(name, f"{case} returned {value!r}; expected an integer.")
    raise AssertionError("unreachable")  # for type checkers: _fail always raises


def _size_cases(with_padding: bool) -> list[tuple[int, int, int, int]]:
    rng = _rng()
    cases = []
    for _ in range(N_RANDOM_CASES):
        f = int(rng.integers(1, 8))
        s = int(rng.integers(1, 4))
        p = int(rng.integers(0, 4)) if with_padding else 0
        cases.append((int(rng.integers(f, 40)), f, s, p))
    return cases


def check_output_size(output_size: Callable[[int, int, int, int], int]) -> None:
    """Check ``output_size(W, F, S, P)``, the width after a convolution.

    Compared with the shape ``F.conv2d`` produces, on the assignment's sizes
    (512→504, 252→250, 32→32) and random ones.

    >>> check_output_size(lambda W, F, S, P: (W - F + 2 * P) // S + 1)
    PASS check_output_size: 23 cases agree with F.conv2d output shapes
    """
    name = "check_output_size"
    cases = [(512, 9, 1, 0), (252, 3, 1, 0), (32, 5, 1, 2)] + _size_cases(with_padding=True)
    for w, f, s, p in cases:
        case = f"W={w}, F={f}, S={s}, P={p}"
        got = _as_int(name, output_size(w, f, s, p), case)
        expected = _conv_out(w, f, s, p)
        if got == expected:
            continue
        hints = {
            (w - f + p) // s + 1: "padding counted once instead of on both sides (2P).",
            (w - f + 2 * p) // s: "off by one: the first filter position counts too (+1).",
            (w - f + 2 * p) // s + 2: "off by one: add 1, not 2.",
            w - f + 2 * p + 1: "did you divide by the stride?",
            (w + f + 2 * p) // s + 1: "the filter shrinks the output: subtract F.",
        }
        hint = hints.get(got, "the formula is (W - F + 2P) / S + 1.")
        _fail(name, f"{case} gives {got}, PyTorch gives {expected}: {hint}")
    _passed(name, f"{len(cases)} cases agree with F.conv2d output shapes")


def check_pool_output_size(pool_output_size: Callable[[int, int, int], int]) -> None:
    """Check ``pool_output_size(W, F, S)``, the width after max pooling (no padding).

    >>> check_pool_output_size(lambda W, F, S: (W - F) // S + 1)
    PASS check_pool_output_size: 21 cases agree with F.max_pool2d output shapes
    """
    name = "check_pool_output_size"
    cases = [(504, 2, 2)] + [(w, f, s) for w, f, s, _ in _size_cases(with_padding=False)]
    for w, f, s in cases:
        case = f"W={w}, F={f}, S={s}"
        got = _as_int(name, pool_output_size(w, f, s), case)
        expected = _pool_out(w, f, s)
        if got == expected:
            continue
        hints = {
            (w - f) // s: "off by one: the first window position counts too (+1).",
            w - f + 1: "did you divide by the stride?",
            w // f: "W / F only works when the stride equals the window and divides W.",
        }
        hint = hints.get(got, "the formula is (W - F) / S + 1.")
        _fail(name, f"{case} gives {got}, PyTorch gives {expected}: {hint}")
    _passed(name, f"{len(cases)} cases agree with F.max_pool2d output shapes")


def check_same_padding(same_padding: Callable[[int], int]) -> None:
    """Check ``same_padding(F)``: the zero padding that keeps the size at stride 1.

    >>> check_same_padding(lambda F: (F - 1) // 2)
    PASS check_same_padding: F = 1, 3, 5, 7, 9, 11 keep a 28-pixel input at 28 in F.conv2d
    """
    name = "check_same_padding"
    sizes = (1, 3, 5, 7, 9, 11)
    for f in sizes:
        got = _as_int(name, same_padding(f), f"F={f}")
        out = _conv_out(28, f, 1, got) if got >= 0 else None
        if out == 28:
            continue
        if got == f - 1:
            hint = "padding is added on both sides, so each side needs half of F - 1."
        elif got == f // 2 + 1 or got == (f + 1) // 2:
            hint = "one pixel too much: use (F - 1) / 2."
        else:
            hint = "solve (W - F + 2P) / 1 + 1 = W for P."
        _fail(name, f"F={f} gives P={got}, and a 28-pixel input becomes {out}, not 28: {hint}")
    _passed(name, f"F = {', '.join(map(str, sizes))} keep a 28-pixel input at 28 in F.conv2d")


def check_filter_size(filter_size: Callable[[int, int, int, int], int]) -> None:
    """Check ``filter_size(W_in, W_out, S, P)``: the filter width that maps W_in to W_out.

    >>> check_filter_size(lambda W_in, W_out, S, P: W_in + 2 * P - (W_out - 1) * S)
    PASS check_filter_size: 13 cases give the requested output in F.conv2d
    """
    name = "check_filter_size"
    # Only strides that divide evenly: otherwise several filter sizes give the same output.
    cases = [(512, 504, 1, 0)] + [(w, _conv_out(w, f, s, p), s, p)
                                  for w, f, s, p in _size_cases(with_padding=True)
                                  if (w - f + 2 * p) % s == 0]
    for w_in, w_out, s, p in cases:
        case = f"W_in={w_in}, W_out={w_out}, S={s}, P={p}"
        got = _as_int(name, filter_size(w_in, w_out, s, p), case)
        out = _conv_out(w_in, got, s, p) if 0 < got <= w_in + 2 * p else None
        if out == w_out:
            continue
        expected = w_in + 2 * p - (w_out - 1) * s
        if got == w_in + p - (w_out - 1) * s:
            hint = "padding counted once instead of on both sides (2P)."
        elif abs(got - expected) == 1:
            hint = "off by one: rearrange W_out = (W_in - F + 2P) / S + 1 carefully."
        else:
            hint = "rearrange W_out = (W_in - F + 2P) / S + 1 for F."
        _fail(name, f"{case} gives F={got}, but F.conv2d then outputs {out}, not {w_out}: {hint}")
    _passed(name, f"{len(cases)} cases give the requested output in F.conv2d")


# --- parameter counts ----------------------------------------------------------------

def _own_counts(module: nn.Module) -> tuple[int, int]:
    """(weights, biases) held directly by ``module``."""
    weights = sum(p.numel() for n, p in module.named_parameters(recurse=False) if n != "bias")
    bias = getattr(module, "bias", None)
    return weights, (bias.numel() if isinstance(bias, torch.Tensor) else 0)


def _count_hint(got: int, module: nn.Module) -> str:
    weights, biases = _own_counts(module)
    if biases and got == weights:
        return " Did you forget the biases (one per output)?"
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        if got == kh * kw * module.out_channels + biases:
            return " Did you forget the input channels (F x F x C_in per filter)?"
    return ""


def check_parameter_count(answer: int | Mapping[str, int], model: nn.Module) -> None:
    """Check a parameter count, in total (an int) or per layer (a dict keyed by layer name).

    Layer names are those of ``model.named_modules()``; the oracle is ``p.numel()``.

    >>> check_parameter_count({"0": 2432}, nn.Sequential(nn.Conv2d(3, 32, 5)))
    PASS check_parameter_count: 1 layers and the total 2,432 agree with the model
    """
    name = "check_parameter_count"
    modules = dict(model.named_modules())
    total = sum(p.numel() for p in model.parameters())
    if isinstance(answer, Mapping):
        unknown = sorted(set(answer) - set(modules))
        if unknown:
            _fail(name, f"no layer named {unknown[0]!r}; the model has "
                        f"{', '.join(n for n, m in modules.items() if _own_counts(m) != (0, 0))}.")
        for layer, got in answer.items():
            expected = sum(_own_counts(modules[layer]))
            if got != expected:
                _fail(name, f"layer {layer!r} ({type(modules[layer]).__name__}) has {expected:,} "
                            f"parameters, you counted {got:,}.{_count_hint(got, modules[layer])}")
        missing = [n for n, m in modules.items() if sum(_own_counts(m)) and n not in answer]
        if missing:
            _fail(name, f"layers with parameters missing from your table: {', '.join(missing)}.")
        _passed(name, f"{len(answer)} layers and the total {total:,} agree with the model")
        return
    if answer != total:
        biases = sum(_own_counts(m)[1] for m in modules.values())
        hint = " Did you forget the biases (one per output)?" if answer == total - biases else ""
        _fail(name, f"the model has {total:,} parameters, you counted {answer:,}.{hint}")
    _passed(name, f"the total {total:,} agrees with the model")


# --- data statistics -----------------------------------------------------------------

def check_channel_stats(mean: Any, std: Any, images: np.ndarray | torch.Tensor) -> None:
    """Check per-channel mean and std of uint8 images ``(N, C, H, W)`` in [0, 1] units.

    The oracle is NumPy on the whole array; answers must agree to 4 decimals.

    >>> images = np.array([0, 255], dtype=np.uint8).reshape(2, 1, 1, 1)
    >>> check_channel_stats([0.5], [0.5], images)
    PASS check_channel_stats: mean [0.5] and std [0.5] agree with NumPy over 2 images
    """
    name = "check_channel_stats"
    pixels = np.asarray(images, dtype=np.float64) / 255  # one float copy, reused below
    expected_mean = pixels.mean(axis=(0, 2, 3))
    expected_std = pixels.std(axis=(0, 2, 3))
    for label, got, expected in (("mean", mean, expected_mean), ("std", std, expected_std)):
        got = np.asarray(torch.as_tensor(got).detach().cpu(), dtype=np.float64).reshape(-1)
        if got.shape != expected.shape:
            _fail(name, f"{label} has {got.size} values, expected {expected.size}, one per "
                        "channel: average over images, height and width (axes 0, 2, 3).")
        if np.allclose(got, expected, atol=5e-5):
            continue
        hint = ""
        if np.allclose(got, expected * 255, rtol=1e-3):
            hint = " Your values are 255 times too big: divide the pixels by 255 first."
        elif label == "std":
            per_image = pixels.std(axis=(2, 3)).mean(axis=0)
            if np.allclose(got, per_image, atol=5e-5):
                hint = (" That is the average of per-image stds; take the std over all pixels "
                        "of a channel at once.")
        _fail(name, f"{label} is {np.round(got, 4).tolist()}, expected "
                    f"{np.round(expected, 4).tolist()}.{hint}")
    _passed(name, f"mean {np.round(expected_mean, 4).tolist()} and std "
                  f"{np.round(expected_std, 4).tolist()} agree with NumPy over {len(pixels):,} images")


# --- a first training loop -----------------------------------------------------------

def _loop_fixture() -> tuple[nn.Module, torch.utils.data.DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, 8, 8, generator=generator)
    y = torch.randint(0, 4, (48,), generator=generator)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
                          nn.Linear(4 * 6 * 6, 4))
    return model, loader


def check_training_loop(train_one_epoch: Callable[..., Any]) -> None:
    """Check ``train_one_epoch(model, loader, optimizer, loss_fn)`` against ``train.fit``.

    The function must train for one epoch and return the loss of every step. On a tiny
    model with dropout, from the same weights and seed, its step losses and final
    weights must equal one epoch of :func:`course_utils.train.fit`.

    >>> def train_one_epoch(model, loader, optimizer, loss_fn):
    ...     model.train()
    ...     losses = []
    ...     for x, y in loader:
    ...         optimizer.zero_grad()
    ...         loss = loss_fn(model(x), y)
    ...         loss.backward()
    ...         optimizer.step()
    ...         losses.append(loss.item())
    ...     return losses
    >>> check_training_loop(train_one_epoch)
    PASS check_training_loop: 3 step losses and the final weights equal train.fit's
    """
    from course_utils import train  # checks stays importable without the training stack

    name = "check_training_loop"
    reference, loader = _loop_fixture()
    student = copy.deepcopy(reference)
    start = copy.deepcopy(reference.state_dict())

    torch.manual_seed(1)
    history = train.fit(reference, loader, epochs=1, progress=False, device="cpu",
                        optimizer=torch.optim.SGD(reference.parameters(), lr=0.1),
                        loss_fn=nn.CrossEntropyLoss())
    expected = [step["loss"] for step in history.steps]

    student.eval()  # a correct loop switches to training mode itself
    torch.manual_seed(1)
    student_losses = train_one_epoch(student, loader,
                                           torch.optim.SGD(student.parameters(), lr=0.1),
                                           nn.CrossEntropyLoss())
    got = [float(v) for v in (student_losses or [])]
    if len(got) != len(expected):
        _fail(name, f"returned {len(got)} losses for {len(expected)} batches: return one "
                    "loss per step (loss.item()).")
    weights_same = all(torch.allclose(student.state_dict()[k], v) for k, v in start.items())
    if weights_same:
        _fail(name, "the weights did not change: did you call optimizer.step()?")
    if not np.isclose(got[0], expected[0], atol=1e-5):
        hint = (" Is the model in training mode (model.train()), so dropout is active?"
                if student.training is False else "")
        _fail(name, f"the first step's loss is {got[0]:.5f}, expected {expected[0]:.5f}.{hint}")
    for step, (g, e) in enumerate(zip(got, expected), start=1):
        if not np.isclose(g, e, atol=1e-5):
            _fail(name, f"step {step}'s loss is {g:.5f}, expected {e:.5f}, though step 1 "
                        "agreed: did you forget optimizer.zero_grad(), so gradients add up?")
    trained = student.state_dict()
    for key, value in reference.state_dict().items():
        if not torch.allclose(trained[key], value, atol=1e-6):
            _fail(name, f"the losses agree but the weights {key!r} differ after the epoch: "
                        "call optimizer.step() exactly once per batch, after backward().")
    _passed(name, f"{len(expected)} step losses and the final weights equal train.fit's")
