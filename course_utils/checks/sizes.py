"""Checks of size arithmetic: output widths of convolutions and pooling, and the two
rearrangements (the padding that keeps a size, the filter that maps one size to another).

The oracle is the output shape of a real ``nn.Conv2d`` or ``nn.MaxPool2d``, on seeded
random widths, filters, strides (1 to 4, often not dividing evenly) and paddings (0 to
3). A wrong answer gets the case, the student's own number, and the kind of mistake;
never the expected number or the formula.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.checks._core import (
    N_RANDOM_CASES,
    CheckFailed,
    call,
    case_generator,
    fail,
    passed,
    whole_number,
)

__all__ = ["check_filter_size", "check_output_size", "check_pool_output_size", "check_same_padding"]

ROUNDING = " Sizes count whole filter positions: round down (// in Python)."


@functools.lru_cache(maxsize=65536)
def conv_width(width: int, filter_width: int, stride: int, padding: int) -> int:
    """The output width of a real ``nn.Conv2d`` on a ``1 x width`` input (the oracle)."""
    layer = nn.Conv2d(1, 1, (1, filter_width), stride=(1, stride), padding=(0, padding), bias=False)
    with torch.no_grad():
        return layer(torch.zeros(1, 1, 1, width)).shape[-1]


@functools.lru_cache(maxsize=65536)
def pool_width(width: int, window: int, stride: int, ceil_mode: bool = False) -> int:
    """The output width of a real ``nn.MaxPool2d`` on a ``1 x width`` input (the oracle)."""
    layer = nn.MaxPool2d((1, window), stride=(1, stride), ceil_mode=ceil_mode)
    return layer(torch.zeros(1, 1, 1, width)).shape[-1]


def _conv_cases(rng: np.random.Generator | None = None) -> list[tuple[int, int, int, int]]:
    """(W, F, S, P) with the filter fitting the padded input; about half with a stride that
    does not divide evenly. With ``rng``: fresh cases from wider ranges, no fixed ones."""
    generator = case_generator(rng)
    fresh = rng is not None
    cases = [] if fresh else [(5, 5, 1, 0), (7, 3, 3, 0), (10, 4, 3, 1), (9, 2, 2, 2)]
    max_stride, max_padding, max_width, max_filter = (7, 6, 300, 15) if fresh else (5, 4, 64, 11)
    while len(cases) < N_RANDOM_CASES + 4:
        s, p = int(generator.integers(1, max_stride)), int(generator.integers(0, max_padding))
        w = int(generator.integers(3, max_width))
        f = int(generator.integers(1, min(w + 2 * p, max_filter) + 1))
        cases.append((w, f, s, p))
    return cases


def _pool_cases(rng: np.random.Generator | None = None) -> list[tuple[int, int, int]]:
    """(W, F, S) with the window inside the input: overlapping, tiling and gapped windows.
    With ``rng``: fresh cases from wider ranges, no fixed ones."""
    generator = case_generator(rng)
    fresh = rng is not None
    cases = [] if fresh else [(8, 2, 2), (7, 2, 2), (9, 3, 2), (10, 2, 3)]
    max_width, max_window, max_stride = (300, 8, 7) if fresh else (64, 5, 5)
    while len(cases) < N_RANDOM_CASES + 4:
        w = int(generator.integers(2, max_width))
        window = int(generator.integers(1, min(w, max_window) + 1))
        cases.append((w, window, int(generator.integers(1, max_stride))))
    return cases


# Cases on which a suspected mistake is tried again before a hint names it: one case's
# number fits several mistakes, a function's answers on these fit only the one it made.
_PROBES = [
    (w, f, s, p) for w in (17, 30, 64) for f in (1, 3, 4) for s in (1, 2, 3) for p in (0, 1, 3)
]


def _consistent(
    student: Callable[..., Any],
    mistake: Callable[..., int],
    probes: Sequence[tuple[int, ...]],
    accepts: Callable[..., bool] | None = None,
) -> bool:
    """Whether ``student`` answers every probe as ``mistake`` does (or, with ``accepts``,
    as ``accepts(answer, *probe)`` allows)."""
    for probe in probes:
        try:
            answer = whole_number("", student(*probe), "")
            if not (accepts(answer, *probe) if accepts else answer == mistake(*probe)):
                return False
        except (CheckFailed, Exception):  # a probe it cannot answer is no evidence for it
            return False
    return True


def _ranges(rng: np.random.Generator | None) -> str:
    if rng is None:
        return "cases (strides 1 to 4, padding 0 to 3)"
    return "fresh cases (strides 1 to 6, padding 0 to 5)"


def _size_mistakes() -> list[tuple[str, Callable[[int, int, int, int], int]]]:
    """Typical mistakes as functions of (W, F, S, P), each with the hint naming it. Each is
    the oracle asked a slightly different question: padding on one side only is a wider
    input without padding; rounding up is an input wider by S - 1 pixels, which turns
    the floor into a ceiling."""
    return [
        (
            "it rounds up; the formula floors: a position that would stick out past the "
            "padded input does not count.",
            lambda w, f, s, p: conv_width(w + s - 1, f, s, p),
        ),
        (
            "padding counted once; it is added on both sides.",
            lambda w, f, s, p: conv_width(w + p, f, s, 0),
        ),
        ("it ignores the padding P.", lambda w, f, s, p: conv_width(w, f, s, 0)),
        ("did you divide by the stride?", lambda w, f, s, p: conv_width(w, f, 1, p)),
        (
            "one too few: the first filter position counts too.",
            lambda w, f, s, p: conv_width(w, f, s, p) - 1,
        ),
        ("one too many.", lambda w, f, s, p: conv_width(w, f, s, p) + 1),
    ]


def _size_hint(student: Callable[..., Any], case: tuple[int, int, int, int], got: int) -> str:
    expected = conv_width(*case)
    probes = [probe for probe in _PROBES if probe[0] + 2 * probe[3] >= probe[1]]
    for hint, mistake in _size_mistakes():
        if got == mistake(*case) and _consistent(student, mistake, probes):
            return hint
    return f"too {'large' if got > expected else 'small'}."


def check_output_size(
    output_size: Callable[[int, int, int, int], Any], rng: np.random.Generator | None = None
) -> None:
    """Check ``output_size(W, F, S, P)``, the width after a convolution, against the output
    shapes of ``nn.Conv2d``; with ``rng``, on fresh cases drawn from it. Whole floats,
    NumPy and 0-d tensor results are fine:

    >>> check_output_size(lambda W, F, S, P: W)  # ignores the filter
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_output_size: W=5, F=5, S=1, P=0: your \
answer 5 disagrees with nn.Conv2d: too large.
    """
    name = "check_output_size"
    cases = _conv_cases(rng)
    for w, f, s, p in cases:
        case = f"W={w}, F={f}, S={s}, P={p}"
        got = whole_number(
            name,
            call(name, output_size, (w, f, s, p), f"output_size({case})"),
            f"output_size({case})",
            ROUNDING,
        )
        expected = conv_width(w, f, s, p)
        if got != expected:
            fail(
                name,
                f"{case}: your answer {got} disagrees with nn.Conv2d: "
                f"{_size_hint(output_size, (w, f, s, p), got)}",
            )
    passed(name, f"{len(cases)} {_ranges(rng)} agree with nn.Conv2d")


def _pool_mistakes() -> list[tuple[str, Callable[[int, int, int], int]]]:
    """Typical pooling mistakes as functions of (W, F, S), each with the hint naming it."""
    return [
        (
            "it rounds up, as MaxPool2d(ceil_mode=True) does; the default, and the formula, "
            "round down.",
            lambda w, f, s: pool_width(w, f, s, ceil_mode=True),
        ),
        (
            "it rounds up, as MaxPool2d(ceil_mode=True) does; the default, and the formula, "
            "round down.",
            lambda w, f, s: pool_width(w + s - 1, f, s),
        ),
        ("did you divide by the stride?", lambda w, f, s: pool_width(w, f, 1)),
        ("W // 2 assumes a 2-pixel stride.", lambda w, f, s: w // 2),
        ("W // F assumes that the window equals the stride.", lambda w, f, s: w // f),
        ("W // S assumes that the window equals the stride.", lambda w, f, s: w // s),
        (
            "one too few: the first window position counts too.",
            lambda w, f, s: pool_width(w, f, s) - 1,
        ),
        ("one too many.", lambda w, f, s: pool_width(w, f, s) + 1),
    ]


def check_pool_output_size(
    pool_output_size: Callable[[int, int, int], Any], rng: np.random.Generator | None = None
) -> None:
    """Check ``pool_output_size(W, F, S)``, the width after max pooling without padding,
    against ``nn.MaxPool2d``'s default (``ceil_mode=False``), windows overlapping or not;
    with ``rng``, on fresh cases drawn from it.

    >>> check_pool_output_size(lambda W, F, S: W // 2)  # always halves
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_pool_output_size: W=10, F=2, S=3: your \
answer 5 disagrees with nn.MaxPool2d: W // 2 assumes a 2-pixel stride.
    """
    name = "check_pool_output_size"
    cases = _pool_cases(rng)
    probes = [(w, f, s) for w, f, s, _ in _PROBES if w >= f]
    for w, f, s in cases:
        case = f"W={w}, F={f}, S={s}"
        got = whole_number(
            name,
            call(name, pool_output_size, (w, f, s), f"pool_output_size({case})"),
            f"pool_output_size({case})",
            ROUNDING,
        )
        expected = pool_width(w, f, s)
        if got == expected:
            continue
        hint = next(
            (
                text
                for text, mistake in _pool_mistakes()
                if got == mistake(w, f, s) and _consistent(pool_output_size, mistake, probes)
            ),
            f"too {'large' if got > expected else 'small'}.",
        )
        fail(name, f"{case}: your answer {got} disagrees with nn.MaxPool2d: {hint}")
    what = "cases" if rng is None else "fresh cases"
    passed(name, f"{len(cases)} {what} (overlapping and uneven windows) agree with nn.MaxPool2d")


def check_same_padding(
    same_padding: Callable[[int], Any], rng: np.random.Generator | None = None
) -> None:
    """Check ``same_padding(F)``: the zero padding per side that keeps the width at stride
    1, for odd F from 1 to 11, on inputs of 13, 28 and 32 pixels in ``nn.Conv2d``; with
    ``rng``, for fresh odd F up to 31 on fresh input widths.

    >>> check_same_padding(lambda F: F - 1)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_same_padding: F=3 gives P=2, and a \
13-pixel input becomes 15: padding goes on both sides, so each side needs less.
    """
    name = "check_same_padding"
    sizes: tuple[int, ...] = (1, 3, 5, 7, 9, 11)
    widths: tuple[int, ...] = (13, 28, 32)
    if rng is not None:
        sizes = tuple(sorted(int(f) for f in rng.choice(np.arange(1, 32, 2), 6, replace=False)))
        widths = tuple(int(w) for w in rng.integers(33, 300, size=3))
    both_sides = [(f,) for f in (5, 7, 9, 13)]
    for f in sizes:
        got = whole_number(
            name, call(name, same_padding, (f,), f"same_padding({f})"), f"same_padding({f})"
        )
        for w in widths:
            out = conv_width(w, f, 1, got) if got >= 0 and w + 2 * got >= f else None
            if out == w:
                continue
            if out is None:
                hint = "the padding is negative or too small for the filter to fit."
            elif out > w:
                hint = (
                    "padding goes on both sides, so each side needs less."
                    if got == f - 1 and _consistent(same_padding, lambda f: f - 1, both_sides)
                    else "one pixel too much per side."
                    if out == w + 2
                    else "too much padding."
                )
            else:
                hint = "one pixel too little per side." if out == w - 2 else "too little padding."
            fail(name, f"F={f} gives P={got}, and a {w}-pixel input becomes {out}: {hint}")
    passed(
        name,
        f"F = {', '.join(map(str, sizes))} keep inputs of {', '.join(map(str, widths[:-1]))} "
        f"and {widths[-1]} pixels at their size in nn.Conv2d",
    )


def _solves(f: int, width: int, target: int, stride: int, padding: int) -> bool:
    """Whether filter width ``f`` makes ``nn.Conv2d`` turn ``width`` into ``target``."""
    return 1 <= f <= width + 2 * padding and conv_width(width, f, stride, padding) == target


# Typical mistakes of filter_size as the question each one answers instead:
# (W_in, W_out, S, P) -> (width, target, stride, padding).
_FILTER_MISTAKES: list[tuple[str, Callable[[int, int, int, int], tuple[int, int, int, int]]]] = [
    ("it ignores the padding P.", lambda w, t, s, p: (w, t, s, 0)),
    ("padding counted once; it is added on both sides.", lambda w, t, s, p: (w + p, t, s, 0)),
    ("it ignores the stride S.", lambda w, t, s, p: (w, t, 1, p)),
]


def _filter_mistake(
    student: Callable[..., Any],
    got: int,
    case: tuple[int, int, int, int],
    probes: list[tuple[int, int, int, int]],
) -> str | None:
    """The hint for the mistaken question that ``got`` answers for ``case`` and the
    student's answers to the probes answer too, wherever that question has an answer."""
    for hint, question in _FILTER_MISTAKES:
        if question(*case) == case or not _solves(got, *question(*case)):
            continue
        answerable = [
            probe
            for probe in probes
            if any(_solves(f, *question(*probe)) for f in range(1, probe[0] + 2 * probe[3] + 1))
        ]
        if _consistent(
            student, lambda *_: 0, answerable, accepts=lambda f, *c, q=question: _solves(f, *q(*c))
        ):
            return hint
    return None


def check_filter_size(
    filter_size: Callable[[int, int, int, int], Any], rng: np.random.Generator | None = None
) -> None:
    """Check ``filter_size(W_in, W_out, S, P)``: a filter width that makes ``nn.Conv2d``
    turn W_in into W_out; with ``rng``, on fresh cases drawn from it. With a stride above
    1 several widths can do that; any of them passes.

    >>> check_filter_size(lambda W_in, W_out, S, P: W_in - W_out)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_filter_size: W_in=5, W_out=1, S=1, P=0: \
your F=4 makes nn.Conv2d output 2, not 1: one too small.
    """
    name = "check_filter_size"
    cases = [(w, conv_width(w, f, s, p), s, p) for w, f, s, p in _conv_cases(rng)]
    probes = [(w, conv_width(w, f, s, p), s, p) for w, f, s, p in _PROBES[::3] if w + 2 * p >= f]
    for w_in, w_out, s, p in cases:
        case = f"W_in={w_in}, W_out={w_out}, S={s}, P={p}"
        got = whole_number(
            name,
            call(name, filter_size, (w_in, w_out, s, p), f"filter_size({case})"),
            f"filter_size({case})",
        )
        fits = 1 <= got <= w_in + 2 * p
        out = conv_width(w_in, got, s, p) if fits else None
        if out == w_out:
            continue

        mistake = _filter_mistake(filter_size, got, (w_in, w_out, s, p), probes)
        candidates = [
            (mistake is not None, mistake or ""),
            (_solves(got - 1, w_in, w_out, s, p), "one too large."),
            (_solves(got + 1, w_in, w_out, s, p), "one too small."),
        ]
        fallback = (
            "it must be at least 1 and fit the padded input."
            if out is None
            else f"too {'large' if out < w_out else 'small'}."
        )
        hint = next((text for matches, text in candidates if matches), fallback)
        result = (
            f"makes nn.Conv2d output {out}, not {w_out}"
            if fits
            else "cannot be a filter width here"
        )
        fail(name, f"{case}: your F={got} {result}: {hint}")
    passed(name, f"{len(cases)} {_ranges(rng)} give the requested output in nn.Conv2d")
