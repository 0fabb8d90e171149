"""Checks of size arithmetic: output widths of convolutions and pooling, and the two
rearrangements (the padding that keeps a size, the filter that maps one size to another).

The oracle is the output shape of a real ``nn.Conv2d`` or ``nn.MaxPool2d``, on seeded
random widths, filters, strides (1 to 4, often not dividing evenly) and paddings (0 to
3). A wrong answer gets the case, the student's own number, and the kind of mistake;
never the expected number or the formula.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils.checks._core import N_RANDOM_CASES, call, fail, passed, rng, whole_number

__all__ = ["check_filter_size", "check_output_size", "check_pool_output_size", "check_same_padding"]

ROUNDING = " Sizes count whole filter positions: round down (// in Python)."


def conv_width(width: int, filter_width: int, stride: int, padding: int) -> int:
    """The output width of a real ``nn.Conv2d`` on a ``1 x width`` input (the oracle)."""
    layer = nn.Conv2d(1, 1, (1, filter_width), stride=(1, stride), padding=(0, padding), bias=False)
    with torch.no_grad():
        return layer(torch.zeros(1, 1, 1, width)).shape[-1]


def pool_width(width: int, window: int, stride: int, ceil_mode: bool = False) -> int:
    """The output width of a real ``nn.MaxPool2d`` on a ``1 x width`` input (the oracle)."""
    layer = nn.MaxPool2d((1, window), stride=(1, stride), ceil_mode=ceil_mode)
    return layer(torch.zeros(1, 1, 1, width)).shape[-1]


def _conv_cases() -> list[tuple[int, int, int, int]]:
    """(W, F, S, P) with the filter fitting the padded input; about half with a stride that
    does not divide evenly."""
    generator = rng()
    cases = [(5, 5, 1, 0), (7, 3, 3, 0), (10, 4, 3, 1), (9, 2, 2, 2)]
    while len(cases) < N_RANDOM_CASES + 4:
        s, p = int(generator.integers(1, 5)), int(generator.integers(0, 4))
        w = int(generator.integers(3, 64))
        f = int(generator.integers(1, min(w + 2 * p, 11) + 1))
        cases.append((w, f, s, p))
    return cases


def _pool_cases() -> list[tuple[int, int, int]]:
    """(W, F, S) with the window inside the input: overlapping, tiling and gapped windows."""
    generator = rng()
    cases = [(8, 2, 2), (7, 2, 2), (9, 3, 2), (10, 2, 3)]
    while len(cases) < N_RANDOM_CASES + 4:
        w = int(generator.integers(2, 64))
        cases.append((w, int(generator.integers(1, min(w, 5) + 1)), int(generator.integers(1, 5))))
    return cases


def _size_hint(got: int, expected: int, w: int, f: int, s: int, p: int) -> str:
    # Each typical mistake is the oracle asked a slightly different question: padding
    # on one side only is a wider input without padding; rounding up is an input wider by
    # S - 1 pixels, which turns the floor into a ceiling.
    candidates = [
        (
            got == conv_width(w + s - 1, f, s, p),
            "it rounds up; the formula floors: a position that would stick out past the "
            "padded input does not count.",
        ),
        (
            p > 0 and got == conv_width(w + p, f, s, 0),
            "padding counted once; it is added on both sides.",
        ),
        (p > 0 and got == conv_width(w, f, s, 0), "it ignores the padding P."),
        (s > 1 and got == conv_width(w, f, 1, p), "did you divide by the stride?"),
        (got == expected - 1, "one too few: the first filter position counts too."),
        (got == expected + 1, "one too many."),
    ]
    hint = next((text for matches, text in candidates if matches), None)
    return hint or f"too {'large' if got > expected else 'small'}."


def check_output_size(output_size: Callable[[int, int, int, int], Any]) -> None:
    """Check ``output_size(W, F, S, P)``, the width after a convolution, against the output
    shapes of ``nn.Conv2d``. Whole floats, NumPy and 0-d tensor results are fine:

    >>> check_output_size(lambda W, F, S, P: W)  # ignores the filter
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_output_size: W=5, F=5, S=1, P=0: your \
answer 5 disagrees with nn.Conv2d: too large.
    """
    name = "check_output_size"
    cases = _conv_cases()
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
                f"{_size_hint(got, expected, w, f, s, p)}",
            )
    passed(name, f"{len(cases)} cases (strides 1 to 4, padding 0 to 3) agree with nn.Conv2d")


def check_pool_output_size(pool_output_size: Callable[[int, int, int], Any]) -> None:
    """Check ``pool_output_size(W, F, S)``, the width after max pooling without padding,
    against ``nn.MaxPool2d``'s default (``ceil_mode=False``), windows overlapping or not.

    >>> check_pool_output_size(lambda W, F, S: W // 2)  # always halves
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_pool_output_size: W=10, F=2, S=3: your \
answer 5 disagrees with nn.MaxPool2d: W // 2 assumes a 2-pixel stride.
    """
    name = "check_pool_output_size"
    cases = _pool_cases()
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
        candidates = [
            (
                got in (pool_width(w, f, s, ceil_mode=True), pool_width(w + s - 1, f, s)),
                "it rounds up, as MaxPool2d(ceil_mode=True) does; the default, and the formula, "
                "round down.",
            ),
            (s > 1 and got == pool_width(w, f, 1), "did you divide by the stride?"),
            (s != 2 and got == w // 2, "W // 2 assumes a 2-pixel stride."),
            (
                f != s and got in (w // f, w // s),
                "W // F or W // S assumes that the window equals the stride.",
            ),
            (got == expected - 1, "one too few: the first window position counts too."),
            (got == expected + 1, "one too many."),
        ]
        hint = next(
            (text for matches, text in candidates if matches),
            f"too {'large' if got > expected else 'small'}.",
        )
        fail(name, f"{case}: your answer {got} disagrees with nn.MaxPool2d: {hint}")
    passed(name, f"{len(cases)} cases (overlapping and uneven windows) agree with nn.MaxPool2d")


def check_same_padding(same_padding: Callable[[int], Any]) -> None:
    """Check ``same_padding(F)``: the zero padding per side that keeps the width at stride
    1, for odd F from 1 to 11, on inputs of 13, 28 and 32 pixels in ``nn.Conv2d``.

    >>> check_same_padding(lambda F: F - 1)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_same_padding: F=3 gives P=2, and a \
13-pixel input becomes 15: padding goes on both sides, so each side needs less.
    """
    name = "check_same_padding"
    sizes = (1, 3, 5, 7, 9, 11)
    for f in sizes:
        got = whole_number(
            name, call(name, same_padding, (f,), f"same_padding({f})"), f"same_padding({f})"
        )
        for w in (13, 28, 32):
            out = conv_width(w, f, 1, got) if got >= 0 and w + 2 * got >= f else None
            if out == w:
                continue
            if out is None:
                hint = "the padding is negative or too small for the filter to fit."
            elif out > w:
                hint = (
                    "padding goes on both sides, so each side needs less."
                    if got == f - 1
                    else "one pixel too much per side."
                    if out == w + 2
                    else "too much padding."
                )
            else:
                hint = "one pixel too little per side." if out == w - 2 else "too little padding."
            fail(name, f"F={f} gives P={got}, and a {w}-pixel input becomes {out}: {hint}")
    passed(
        name,
        f"F = {', '.join(map(str, sizes))} keep inputs of 13, 28 and 32 pixels at "
        "their size in nn.Conv2d",
    )


def check_filter_size(filter_size: Callable[[int, int, int, int], Any]) -> None:
    """Check ``filter_size(W_in, W_out, S, P)``: a filter width that makes ``nn.Conv2d``
    turn W_in into W_out. With a stride above 1 several widths can do that; any of them
    passes.

    >>> check_filter_size(lambda W_in, W_out, S, P: W_in - W_out)
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: check_filter_size: W_in=5, W_out=1, S=1, P=0: \
your F=4 makes nn.Conv2d output 2, not 1: one too small.
    """
    name = "check_filter_size"
    cases = [(w, conv_width(w, f, s, p), s, p) for w, f, s, p in _conv_cases()]
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

        def gives(
            f: int, width: int = w_in, stride: int = s, padding: int = p, target: int = w_out
        ) -> bool:
            """Whether filter width ``f`` solves the question with these settings."""
            return 1 <= f <= width + 2 * padding and conv_width(width, f, stride, padding) == target

        candidates = [
            (p > 0 and gives(got, w_in, s, 0), "it ignores the padding P."),
            (
                p > 0 and gives(got, w_in + p, s, 0),
                "padding counted once; it is added on both sides.",
            ),
            (s > 1 and gives(got, w_in, 1, p), "it ignores the stride S."),
            (gives(got - 1), "one too large."),
            (gives(got + 1), "one too small."),
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
    passed(
        name,
        f"{len(cases)} cases (strides 1 to 4, padding 0 to 3) give the requested "
        "output in nn.Conv2d",
    )
