"""Checks of a convolution and a cross-correlation written by hand.

The oracle is ``F.conv2d``, which computes cross-correlation; a true convolution is
``F.conv2d`` with the kernel flipped in both axes. The cases are the assignment's image
and kernel, then seeded random ones: square kernels first, then rectangular images,
then rectangular kernels, with zero padding from 0 to 3 (mostly not "same"), so that a
function that fails only on the later cases can be told what it assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.checks._core import (
    N_RANDOM_CASES,
    CheckFailed,
    call,
    fail,
    number_array,
    passed,
    rng,
)

__all__ = ["ASSIGNMENT_IMAGE", "ASSIGNMENT_KERNEL", "check_convolution", "check_cross_correlation"]

# The assignment's image and kernel (seed 000, task 1a), as given: the kernel before
# flipping. It is a Sobel kernel: it responds to changes from left to right.
ASSIGNMENT_IMAGE = np.array([[1, 0, 2, 3, 1], [3, 2, 0, 7, 0], [0, 6, 1, 1, 4]])
ASSIGNMENT_KERNEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


@dataclass(frozen=True)
class _Case:
    image: np.ndarray
    kernel: np.ndarray
    padding: int
    label: str

    def describe(self) -> str:
        (h, w), (kh, kw) = self.image.shape, self.kernel.shape
        if self.label:
            return f"{self.label} ({h}x{w} image, {kh}x{kw} kernel, padding {self.padding})"
        return (
            f"image={self.image.tolist()}, kernel={self.kernel.tolist()}, "
            f"padding={self.padding} ({h}x{w} image, {kh}x{kw} kernel)"
        )


def _oracle(case: _Case, flip: bool) -> np.ndarray:
    x = torch.as_tensor(np.ascontiguousarray(case.image), dtype=torch.float64)[None, None]
    w = torch.as_tensor(np.ascontiguousarray(case.kernel), dtype=torch.float64)[None, None]
    if flip:
        w = torch.flip(w, dims=(2, 3))
    return F.conv2d(x, w, padding=case.padding)[0, 0].numpy()


def _random_case(generator: np.random.Generator, kh: int, kw: int, square_image: bool) -> _Case:
    padding = int(generator.integers(0, 4))
    low_h, low_w = max(1, kh - 2 * padding), max(1, kw - 2 * padding)
    h = int(generator.integers(max(low_h, 2), 8))
    w = h if square_image and low_h == low_w else int(generator.integers(max(low_w, 2), 8))
    if not square_image and w == h:
        w = h + 1
    image = generator.integers(-5, 6, size=(h, w))
    return _Case(image, generator.integers(-3, 4, size=(kh, kw)), padding, "")


def _cases() -> list[_Case]:
    generator = rng()
    cases = [_Case(ASSIGNMENT_IMAGE, ASSIGNMENT_KERNEL, 1, "the assignment's case")]
    third = N_RANDOM_CASES // 3
    for k in generator.choice([1, 2, 3, 5], size=third):
        cases.append(_random_case(generator, int(k), int(k), square_image=True))
    for k in generator.choice([2, 3, 4], size=third):
        cases.append(_random_case(generator, int(k), int(k), square_image=False))
    while len(cases) <= N_RANDOM_CASES:
        kh, kw = (int(v) for v in generator.choice([1, 2, 3, 4], size=2, replace=False))
        cases.append(_random_case(generator, kh, kw, square_image=False))
    return cases


def _assumed_square(case: _Case, earlier: list[_Case]) -> str:
    """Why a function that handled every earlier case may fail on this one."""
    (h, w), (kh, kw) = case.image.shape, case.kernel.shape
    if kh != kw and all(c.kernel.shape[0] == c.kernel.shape[1] for c in earlier):
        return (
            " Square kernel assumed? Every square kernel worked: take the kernel's height "
            "and width from kernel.shape separately."
        )
    if h != w and all(c.image.shape[0] == c.image.shape[1] for c in earlier):
        return (
            " Square image assumed? Every square image worked: take the image's height "
            "and width from image.shape separately."
        )
    return ""


def _shape_hint(got: tuple[int, ...], expected: tuple[int, ...], case: _Case) -> str:
    (h, w), (kh, kw), p = case.image.shape, case.kernel.shape, case.padding
    if got == (h, w):
        return (
            "That is the image's own size, but this case's padding changes it: use "
            "the padding argument as given."
        )
    if p and got == (h - kh + 1, w - kw + 1):
        return "That is the size without padding: did you forget the zero padding?"
    if p and got == (h + p - kh + 1, w + p - kw + 1):
        return "Padding counted once: pad every side of the image, top and bottom, left and right."
    if kh != kw and got in {(h + 2 * p - k + 1, w + 2 * p - k + 1) for k in (kh, kw)}:
        return (
            "Square kernel assumed: this kernel is not square. Take its height and width "
            "from kernel.shape separately."
        )
    if h != w and got in {(n + 2 * p - kh + 1, n + 2 * p - kw + 1) for n in (h, w)}:
        return (
            "Square image assumed: this image is not square. Take its height and width "
            "from image.shape separately."
        )
    if len(got) == 2 and all(abs(g - e) <= 1 for g, e in zip(got, expected, strict=True)):
        side = "rows" if got[0] != expected[0] else "columns"
        many = "many" if max(g - e for g, e in zip(got, expected, strict=True)) > 0 else "few"
        return (
            f"Off by one: one too {many} {side}. Count the kernel positions again: the "
            "last one ends on the last pixel of the padded image."
        )
    return "Count how many kernel positions fit in the padded image, down and across."


def _value_hint(got: np.ndarray, case: _Case, flip: bool) -> str:
    if np.allclose(got, _oracle(case, not flip)):
        return (
            " Your result equals cross-correlation with the unflipped kernel: did you flip "
            "the kernel?"
            if flip
            else " Your result equals a true convolution: cross-correlation does not flip the "
            "kernel."
        )
    for axis, name in ((0, "upside down"), (1, "left to right")):
        # Cross-correlation with the kernel flipped along `axis` only.
        half = _Case(case.image, np.flip(case.kernel, axis=axis), case.padding, case.label)
        if np.allclose(got, _oracle(half, flip=False)):
            return (
                f" Your kernel was flipped {name} only: a convolution flips it in both directions."
                if flip
                else f" Your kernel was flipped {name}: cross-correlation uses it as it is."
            )
    wrong = ~np.isclose(got, _oracle(case, flip))
    border = np.ones_like(wrong)
    border[1:-1, 1:-1] = False
    if case.padding and not (wrong & ~border).any():
        return " Only border positions are wrong: check the zero padding (zeros, on every side)."
    return ""


def _diagnose(got: np.ndarray, case: _Case, flip: bool, earlier: list[_Case]) -> str:
    expected = _oracle(case, flip)
    if got.shape != expected.shape:
        return (
            f"for {case.describe()} your output has shape {got.shape}, which is not what "
            f"F.conv2d gives. {_shape_hint(got.shape, expected.shape, case)}"
            f"{_assumed_square(case, earlier) if got.ndim == 2 else ''}"
        )
    wrong = np.argwhere(~np.isclose(got, expected))
    i, j = (int(v) for v in wrong[0])
    return (
        f"for {case.describe()}, {len(wrong)} of {expected.size} positions disagree with "
        f"F.conv2d; the first is position ({i}, {j}), where yours is {got[i, j]:g}."
        f"{_value_hint(got, case, flip) or _assumed_square(case, earlier)}"
    )


def _check_sliding(name: str, student_fn: Callable[..., Any], flip: bool) -> None:
    cases = _cases()
    for index, case in enumerate(cases):
        earlier = cases[1:index]
        what = f"{getattr(student_fn, '__name__', 'your function')}(image, kernel, padding)"
        try:
            result = call(
                name, student_fn, (case.image.copy(), case.kernel.copy(), case.padding), what
            )
        except CheckFailed as failure:
            raise CheckFailed(
                f"{failure} (for {case.describe()}).{_assumed_square(case, earlier)}"
            ) from failure.__cause__
        got = number_array(name, result, f"the result of {what}")
        expected = _oracle(case, flip)
        if got.shape != expected.shape or not np.allclose(got, expected):
            fail(name, _diagnose(got, case, flip, earlier))
    passed(
        name,
        f"the assignment's case and {len(cases) - 1} random cases (rectangular "
        "images and kernels, padding 0 to 3) agree with F.conv2d",
    )


def check_convolution(convolve: Callable[[np.ndarray, np.ndarray, int], Any]) -> None:
    """Check a true 2-D convolution (the kernel flipped), stride 1, zero padding.

    ``convolve(image, kernel, padding)`` takes 2-D arrays (any height and width) and
    returns the result as an array, a tensor or nested lists. The oracle is ``F.conv2d``
    with the flipped kernel. A mistake gets a hint that names it:

    >>> def correlate(image, kernel, padding):  # forgets to flip
    ...     x = torch.tensor(image, dtype=torch.float64)[None, None]
    ...     w = torch.tensor(kernel, dtype=torch.float64)[None, None]
    ...     return F.conv2d(x, w, padding=padding)[0, 0]
    >>> check_convolution(correlate)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_convolution: for the assignment's case ... \
did you flip the kernel?
    """
    _check_sliding("check_convolution", convolve, flip=True)


def check_cross_correlation(correlate: Callable[[np.ndarray, np.ndarray, int], Any]) -> None:
    """Check a 2-D cross-correlation (the kernel not flipped), which is what ``nn.Conv2d``
    computes; the same cases and hints as :func:`check_convolution`.

    >>> check_cross_correlation(lambda image, kernel, padding: None)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_cross_correlation: the result of \
<lambda>(image, kernel, padding) is None: did you forget to return it?
    """
    _check_sliding("check_cross_correlation", correlate, flip=False)
