"""Checks of a convolution and a cross-correlation written by hand.

The oracle is ``F.conv2d``, which computes cross-correlation; a true convolution is
``F.conv2d`` with the kernel flipped in both axes. The cases are the assignment's image
and kernel, then seeded random ones (or, given a generator, fresh ones from wider
ranges): square kernels first, then rectangular images, then rectangular kernels, with
zero padding from 0 to 3 (mostly not "same"), so that a function that fails only on the
later cases can be told what it assumed. A size hint names a mistake only when the
answer is exactly what that mistake gives; and the student's function must not call a
library convolution (:mod:`~course_utils.checks.by_hand` watches it run).
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
    case_generator,
    fail,
    number_array,
    passed,
)
from course_utils.checks.by_hand import watch_library_convolutions

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


def _slide(image: np.ndarray, kernel: np.ndarray, padding: Any, flip: bool) -> np.ndarray:
    """``F.conv2d`` of one 2-D image with one kernel (flipped for a true convolution)."""
    x = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float64)[None, None]
    w = torch.as_tensor(np.ascontiguousarray(kernel), dtype=torch.float64)[None, None]
    if flip:
        w = torch.flip(w, dims=(2, 3))
    return F.conv2d(x, w, padding=padding)[0, 0].numpy()


def _oracle(case: _Case, flip: bool) -> np.ndarray:
    return _slide(case.image, case.kernel, case.padding, flip)


@dataclass(frozen=True)
class _Sizes:
    """The ranges cases are drawn from."""

    side: int  # images up to side - 1 pixels high and wide
    padding: int  # padding up to padding - 1
    value: int  # pixels in [-value, value]
    square_kernels: tuple[int, ...]
    rectangular_kernels: tuple[int, ...]


_VISIBLE = _Sizes(
    side=8, padding=4, value=5, square_kernels=(1, 2, 3, 5), rectangular_kernels=(1, 2, 3, 4)
)
_FRESH = _Sizes(
    side=12,
    padding=5,
    value=9,
    square_kernels=(1, 2, 3, 4, 5, 6),
    rectangular_kernels=(1, 2, 3, 4, 5),
)


def _random_case(
    generator: np.random.Generator, kh: int, kw: int, square_image: bool, sizes: _Sizes
) -> _Case:
    padding = int(generator.integers(0, sizes.padding))
    low_h, low_w = max(1, kh - 2 * padding), max(1, kw - 2 * padding)
    h = int(generator.integers(max(low_h, 2), sizes.side))
    w = h if square_image and low_h == low_w else int(generator.integers(max(low_w, 2), sizes.side))
    if not square_image and w == h:
        w = h + 1
    image = generator.integers(-sizes.value, sizes.value + 1, size=(h, w))
    kernel = generator.integers(-3, 4, size=(kh, kw))
    return _Case(image, kernel, padding, "")


def _cases(rng: np.random.Generator | None = None) -> list[_Case]:
    """The assignment's case and seeded random ones, or, with ``rng``, fresh random cases
    from wider ranges: square kernels on square images first, then rectangular images,
    then rectangular kernels."""
    generator = case_generator(rng)
    sizes = _VISIBLE if rng is None else _FRESH
    cases = (
        [_Case(ASSIGNMENT_IMAGE, ASSIGNMENT_KERNEL, 1, "the assignment's case")]
        if rng is None
        else []
    )
    third = N_RANDOM_CASES // 3
    for k in generator.choice(sizes.square_kernels, size=third):
        cases.append(_random_case(generator, int(k), int(k), True, sizes))
    for k in generator.choice(sizes.square_kernels[1:], size=third):
        cases.append(_random_case(generator, int(k), int(k), False, sizes))
    while len(cases) <= N_RANDOM_CASES:
        kh, kw = (
            int(v) for v in generator.choice(sizes.rectangular_kernels, size=2, replace=False)
        )
        cases.append(_random_case(generator, kh, kw, False, sizes))
    return cases


def _assumed_square(case: _Case, passed_cases: list[_Case]) -> str:
    """Why a function that handled every earlier case may fail on this one: every case it
    passed had a square kernel (or image), and there was at least one."""
    (h, w), (kh, kw) = case.image.shape, case.kernel.shape
    if not passed_cases:
        return ""
    if kh != kw and all(c.kernel.shape[0] == c.kernel.shape[1] for c in passed_cases):
        return (
            " Square kernel assumed? Every square kernel worked: take the kernel's height "
            "and width from kernel.shape separately."
        )
    if h != w and all(c.image.shape[0] == c.image.shape[1] for c in passed_cases):
        return (
            " Square image assumed? Every square image worked: take the image's height "
            "and width from image.shape separately."
        )
    return ""


SQUARE_KERNEL = (
    "Square kernel assumed: this kernel is not square. Take its height and width "
    "from kernel.shape separately."
)
SQUARE_IMAGE = (
    "Square image assumed: this image is not square. Take its height and width "
    "from image.shape separately."
)


def _mistakes(case: _Case, flip: bool) -> list[tuple[str, np.ndarray]]:
    """What a function with each typical size mistake returns for ``case``, with the hint
    that names it: a hint is only given when the answer is exactly that mistake's."""
    (h, w), (kh, kw), p = case.image.shape, case.kernel.shape, case.padding
    image, kernel = case.image, case.kernel
    results = []
    # The image's own size first: with a 1x1 kernel it is also the size without padding,
    # and its hint holds for both.
    if kh % 2 and kw % 2 and p != (kh - 1) // 2:
        results.append(
            (
                "That is the image's own size, but this case asks for another padding: use "
                "the padding argument as given.",
                _slide(image, kernel, ((kh - 1) // 2, (kw - 1) // 2), flip),
            )
        )
    if p:
        results.append(
            (
                "That is the size without padding: did you forget the zero padding?",
                _slide(image, kernel, 0, flip),
            )
        )
        for sides in (((p, 0), (p, 0)), ((0, p), (0, p))):
            results.append(
                (
                    "Padding counted once: pad every side of the image, top and bottom, "
                    "left and right.",
                    _slide(np.pad(image, sides), kernel, 0, flip),
                )
            )
    if kh != kw:
        side = min(kh, kw)
        cropped = kernel[::-1, ::-1][:side, :side][::-1, ::-1] if flip else kernel[:side, :side]
        results.append((SQUARE_KERNEL, _slide(image, cropped, p, flip)))
    if h != w:
        padded = np.pad(image, p)
        side = min(padded.shape)
        results.append((SQUARE_IMAGE, _slide(padded[:side, :side], kernel, 0, flip)))
    return results


def _shape_hint(got: np.ndarray, expected: tuple[int, ...], case: _Case, flip: bool) -> str:
    for hint, mistake in _mistakes(case, flip):
        if got.shape == mistake.shape and np.allclose(got, mistake):
            return hint
    if got.ndim == 2 and all(abs(g - e) <= 1 for g, e in zip(got.shape, expected, strict=True)):
        sides = [
            side
            for side, g, e in zip(("rows", "columns"), got.shape, expected, strict=True)
            if g != e
        ]
        many = "many" if max(g - e for g, e in zip(got.shape, expected, strict=True)) > 0 else "few"
        return (
            f"Off by one: one too {many} {' and '.join(sides)}. Count the kernel positions "
            "again: the last one ends on the last pixel of the padded image."
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


def _diagnose(got: np.ndarray, case: _Case, flip: bool, passed_cases: list[_Case]) -> str:
    expected = _oracle(case, flip)
    if got.shape != expected.shape:
        hint = _shape_hint(got, expected.shape, case, flip)
        square = (
            ""
            if hint in (SQUARE_KERNEL, SQUARE_IMAGE) or got.ndim != 2
            else _assumed_square(case, passed_cases)
        )
        return (
            f"for {case.describe()} your output has shape {got.shape}, which is not what "
            f"F.conv2d gives. {hint}{square}"
        )
    wrong = np.argwhere(~np.isclose(got, expected))
    i, j = (int(v) for v in wrong[0])
    return (
        f"for {case.describe()}, {len(wrong)} of {expected.size} positions disagree with "
        f"F.conv2d; the first is position ({i}, {j}), where yours is {got[i, j]:g}."
        f"{_value_hint(got, case, flip) or _assumed_square(case, passed_cases)}"
    )


BY_HAND = (
    "this task is to compute it by hand, with loops (or slicing) over the padded image; "
    "a library convolution does not count, even with the right result."
)


def _check_sliding(
    name: str, student_fn: Callable[..., Any], flip: bool, rng: np.random.Generator | None
) -> None:
    cases = _cases(rng)
    passed_cases: list[_Case] = []  # random cases only: the assignment's is not square
    what = f"{getattr(student_fn, '__name__', 'your function')}(image, kernel, padding)"
    for case in cases:
        with watch_library_convolutions() as library:
            try:
                result = call(
                    name, student_fn, (case.image.copy(), case.kernel.copy(), case.padding), what
                )
            except CheckFailed as failure:
                if not library:
                    raise CheckFailed(
                        f"{failure} (for {case.describe()}).{_assumed_square(case, passed_cases)}"
                    ) from failure.__cause__
        if library:
            fail(name, f"{what} calls {', '.join(library)}: {BY_HAND}")
        got = number_array(name, result, f"the result of {what}")
        expected = _oracle(case, flip)
        if got.shape != expected.shape or not np.allclose(got, expected):
            fail(name, _diagnose(got, case, flip, passed_cases))
        if not case.label:
            passed_cases.append(case)
    if rng is None:
        detail = f"the assignment's case and {len(cases) - 1} random cases"
    else:
        detail = f"{len(cases)} fresh random cases"
    sizes = _VISIBLE if rng is None else _FRESH
    passed(
        name,
        f"{detail} (rectangular images and kernels, padding 0 to {sizes.padding - 1}) agree "
        "with F.conv2d",
    )


def check_convolution(
    convolve: Callable[[np.ndarray, np.ndarray, int], Any], rng: np.random.Generator | None = None
) -> None:
    """Check a true 2-D convolution (the kernel flipped), stride 1, zero padding, computed
    by hand.

    ``convolve(image, kernel, padding)`` takes 2-D arrays (any height and width) and
    returns the result as an array, a tensor or nested lists. The oracle is ``F.conv2d``
    with the flipped kernel. With ``rng``, the cases are fresh ones drawn from it (larger
    images, kernels and paddings) instead of the fixed ones. A function that calls a
    library convolution (``F.conv2d``, ``nn.Conv2d``, ``np.convolve``, SciPy's) fails,
    whatever it returns. A mistake gets a hint that names it:

    >>> def correlate(image, kernel, padding):  # forgets to flip
    ...     padded, (kh, kw) = np.pad(image, padding), kernel.shape
    ...     rows, columns = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    ...     return [[(padded[i:i + kh, j:j + kw] * kernel).sum() for j in range(columns)]
    ...             for i in range(rows)]
    >>> check_convolution(correlate)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_convolution: for the assignment's case ... \
did you flip the kernel?
    >>> check_convolution(lambda image, kernel, padding: F.conv2d(  # doctest: +ELLIPSIS
    ...     torch.tensor(image)[None, None], torch.tensor(kernel).flip(0, 1)[None, None],
    ...     padding=padding)[0, 0])
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_convolution: <lambda>(image, kernel, padding) \
calls torch.conv2d: this task is to compute it by hand, ...
    """
    _check_sliding("check_convolution", convolve, flip=True, rng=rng)


def check_cross_correlation(
    correlate: Callable[[np.ndarray, np.ndarray, int], Any], rng: np.random.Generator | None = None
) -> None:
    """Check a 2-D cross-correlation (the kernel not flipped), which is what ``nn.Conv2d``
    computes, by hand; the same cases, ``rng`` and hints as :func:`check_convolution`.

    >>> check_cross_correlation(lambda image, kernel, padding: None)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_cross_correlation: the result of \
<lambda>(image, kernel, padding) is None: did you forget to return it?
    """
    _check_sliding("check_cross_correlation", correlate, flip=False, rng=rng)
