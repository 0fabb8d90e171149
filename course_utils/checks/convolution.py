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
    # Copies: a flipped view of one row keeps a negative stride that torch refuses.
    x = torch.tensor(np.array(image, dtype=np.float64))[None, None]
    w = torch.tensor(np.array(kernel, dtype=np.float64))[None, None]
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


def _simulated(
    image: np.ndarray, kernel: np.ndarray, padding: Any, flip: bool
) -> np.ndarray | None:
    """:func:`_slide`, or ``None`` where that kernel does not fit that image at all."""
    try:
        return _slide(image, kernel, padding, flip)
    except RuntimeError:
        return None


def _cropped_kernel(case: _Case, flip: bool) -> np.ndarray | None:
    """The kernel a loop that takes one side for both sees (the top-left square of the
    kernel it slides, which for a convolution is the flipped one)."""
    (kh, kw), kernel = case.kernel.shape, case.kernel
    if kh == kw:
        return None
    side = min(kh, kw)
    return kernel[::-1, ::-1][:side, :side][::-1, ::-1] if flip else kernel[:side, :side]


def _padded_once(case: _Case, flip: bool, sides: tuple) -> np.ndarray | None:
    if not case.padding:
        return None
    return _simulated(np.pad(case.image, sides), case.kernel, 0, flip)


def _square_image(case: _Case, flip: bool) -> np.ndarray | None:
    if case.image.shape[0] == case.image.shape[1]:
        return None
    padded = np.pad(case.image, case.padding)
    side = min(padded.shape)
    return _simulated(padded[:side, :side], case.kernel, 0, flip)


def _half_flipped(case: _Case, axis: int) -> np.ndarray:
    """Cross-correlation with the kernel flipped along ``axis`` only."""
    return _slide(case.image, np.flip(case.kernel, axis=axis), case.padding, flip=False)


# Typical mistakes: what a function that makes each one returns for a case (None: the
# mistake changes nothing there, or cannot be made), and the hint that names it. The
# first is told apart from the right operation by ``flip``.
_Mistake = Callable[[_Case, bool], "np.ndarray | None"]
_MISTAKES: list[tuple[str, _Mistake]] = [
    ("flip", lambda c, flip: _slide(c.image, c.kernel, c.padding, not flip)),
    ("upside down", lambda c, flip: _half_flipped(c, 0)),
    ("left to right", lambda c, flip: _half_flipped(c, 1)),
    (
        "That is the size without padding: did you forget the zero padding?",
        lambda c, flip: _simulated(c.image, c.kernel, 0, flip) if c.padding else None,
    ),
    (
        "Padding counted once: pad every side of the image, top and bottom, left and right.",
        lambda c, flip: _padded_once(c, flip, ((c.padding, 0), (c.padding, 0))),
    ),
    (
        "Padding counted once: pad every side of the image, top and bottom, left and right.",
        lambda c, flip: _padded_once(c, flip, ((0, c.padding), (0, c.padding))),
    ),
    (
        SQUARE_KERNEL,
        lambda c, flip: (
            None
            if (k := _cropped_kernel(c, flip)) is None
            else _simulated(c.image, k, c.padding, flip)
        ),
    ),
    (SQUARE_IMAGE, _square_image),
]


def _hint_text(key: str, flip: bool) -> str:
    if key == "flip":
        return (
            "Your result equals cross-correlation with the unflipped kernel: did you flip "
            "the kernel?"
            if flip
            else "Your result equals a true convolution: cross-correlation does not flip the "
            "kernel."
        )
    if key in ("upside down", "left to right"):
        return (
            f"Your kernel was flipped {key} only: a convolution flips it in both directions."
            if flip
            else f"Your kernel was flipped {key}: cross-correlation uses it as it is."
        )
    return key


def _same(got: Any, other: np.ndarray | None) -> bool:
    return other is not None and got.shape == other.shape and bool(np.allclose(got, other))


def _probes() -> list[_Case]:
    """Cases a suspected mistake is tried on again: rectangular images and kernels,
    asymmetric, padded, so that two mistakes that agree on one case disagree here."""
    generator = np.random.default_rng(7)
    return [
        _random_case(generator, kh, kw, False, _VISIBLE)
        for kh, kw in ((2, 3), (3, 1), (1, 2), (3, 4))
    ]


def _named_mistake(got: np.ndarray, case: _Case, flip: bool, student_fn: Callable[..., Any]) -> str:
    """The hint of the one mistake that explains ``got`` for ``case``; where several do,
    the one that also explains the student's answers on the probes; else ``""``."""
    suspects = {
        _hint_text(key, flip) for key, mistake in _MISTAKES if _same(got, mistake(case, flip))
    }
    if len(suspects) > 1:
        answers: list[np.ndarray | None] = []
        for probe in _probes():
            try:
                result = student_fn(probe.image.copy(), probe.kernel.copy(), probe.padding)
                answers.append(np.asarray(result, dtype=np.float64))
            except Exception:  # a probe it cannot answer is no evidence either way
                answers.append(None)
        suspects = {
            _hint_text(key, flip)
            for key, mistake in _MISTAKES
            if _hint_text(key, flip) in suspects
            and all(
                answer is None
                or (simulated := mistake(probe, flip)) is None
                or _same(answer, simulated)
                for probe, answer in zip(_probes(), answers, strict=True)
            )
        }
    return suspects.pop() if len(suspects) == 1 else ""


OWN_SIZE = (
    "That is the image's own size, which this case's kernel and padding change: count how "
    "many kernel positions fit in the padded image, down and across."
)


def _shape_hint(got: np.ndarray, expected: tuple[int, ...]) -> str:
    """What the shape says, without naming a mistake."""
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


def _border_hint(got: np.ndarray, case: _Case, flip: bool) -> str:
    wrong = ~np.isclose(got, _oracle(case, flip))
    border = np.ones_like(wrong)
    border[1:-1, 1:-1] = False
    if case.padding and not (wrong & ~border).any():
        return "Only border positions are wrong: check the zero padding (zeros, on every side)."
    return ""


def _diagnose(
    got: np.ndarray,
    case: _Case,
    flip: bool,
    passed_cases: list[_Case],
    student_fn: Callable[..., Any],
) -> str:
    expected = _oracle(case, flip)
    named = _named_mistake(got, case, flip, student_fn)
    square = "" if named in (SQUARE_KERNEL, SQUARE_IMAGE) else _assumed_square(case, passed_cases)
    if got.shape != expected.shape:
        own_size = got.shape == case.image.shape
        hint = named or (OWN_SIZE if own_size else _shape_hint(got, expected.shape))
        return (
            f"for {case.describe()} your output has shape {got.shape}, which is not what "
            f"F.conv2d gives. {hint}{square if got.ndim == 2 else ''}"
        )
    wrong = np.argwhere(~np.isclose(got, expected))
    i, j = (int(v) for v in wrong[0])
    hint = named or _border_hint(got, case, flip)
    return (
        f"for {case.describe()}, {len(wrong)} of {expected.size} positions disagree with "
        f"F.conv2d; the first is position ({i}, {j}), where yours is {got[i, j]:g}."
        f"{' ' + hint if hint else square}"
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
            fail(name, _diagnose(got, case, flip, passed_cases, student_fn))
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
