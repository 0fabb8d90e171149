"""What every check shares: the failure type, the PASS line, and safe handling of answers.

A student's answer can be anything (``None``, the string ``"5"``, a list where a number
is wanted), and a student's function can raise. These helpers turn each of those into
a :class:`CheckFailed` with a message that says what was expected, and never crash
while writing that message. ``NotImplementedError`` passes through unchanged: it is
the stub of the student release, not a mistake to diagnose.
"""

from __future__ import annotations

import math
import sys
import textwrap
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

N_RANDOM_CASES = 20


HINT_WIDTH = 100


class CheckFailed(AssertionError):
    """A student's answer disagrees with the oracle; the message says how.

    In IPython and Jupyter the failure shows as its hint, then one line naming the
    check, instead of a traceback through the course's own code (IPython calls
    ``_render_traceback_`` on an exception that has one):

    >>> print("\\n".join(CheckFailed("check_x: your 4 is one too few.")._render_traceback_()))
    your 4 is one too few.
    (CheckFailed in checks.check_x: the hint above is about your code, not the course's.)
    """

    def _render_traceback_(self) -> list[str]:
        check, _, hint = str(self).partition(": ")
        if not hint or not check.startswith("check_"):
            check, hint = "", str(self)
        lines = [
            wrapped
            for paragraph in hint.splitlines()
            for wrapped in (textwrap.wrap(paragraph, HINT_WIDTH) or [""])
        ]
        where = f" in checks.{check}" if check else ""
        return [
            *lines,
            *_students_line(self.__cause__),
            f"(CheckFailed{where}: the hint above is about your code, not the course's.)",
        ]


PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def _students_line(cause: BaseException | None) -> list[str]:
    """Where in the student's own code ``cause`` was raised (the last frame outside this
    package and the standard library), as one line; none when there is no such frame."""
    frames = traceback.extract_tb(cause.__traceback__) if cause is not None else []
    own = [
        frame
        for frame in frames
        if not frame.filename.startswith((PACKAGE_DIR, sys.prefix, sys.base_prefix))
    ]
    if not own:
        return []
    frame = own[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return [f"(raised in your {frame.name}, line {frame.lineno}{code})"]


def fail(check: str, message: str, cause: BaseException | None = None) -> NoReturn:
    """Raise :class:`CheckFailed` for ``check``, chained to ``cause`` when given."""
    raise CheckFailed(f"{check}: {message}") from cause


def passed(check: str, detail: str) -> None:
    """Print the one line a correct answer gets."""
    print(f"PASS {check}: {detail}")


VISIBLE_SEED = 2024


def case_generator(rng: np.random.Generator | None) -> np.random.Generator:
    """The generator a check draws its cases from: ``rng`` when given (fresh cases, as
    a grader's hidden tests want), else a fixed seed, so that a student's PASS lines are
    the same run to run.

    >>> a, b = case_generator(None), case_generator(None)
    >>> int(a.integers(1000)) == int(b.integers(1000))
    True
    """
    return np.random.default_rng(VISIBLE_SEED) if rng is None else rng


def describe(value: Any) -> str:
    """A short description of any value, safe to put in a message.

    >>> describe("5"), describe(None), describe([1, 2])
    ("str '5'", 'None', 'list [1, 2]')
    """
    if value is None:
        return "None"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real message
        text = "<unprintable>"
    text = " ".join(text.split())
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def call(check: str, function: Callable[..., Any], args: tuple, what: str) -> Any:
    """Call the student's ``function(*args)``; an error becomes a failure naming ``what``."""
    try:
        return function(*args)
    except NotImplementedError:
        raise
    except CheckFailed:
        raise
    except Exception as error:
        fail(check, f"{what} raised {type(error).__name__}: {error}", error)


def whole_number(check: str, value: Any, what: str, rounding_hint: str = "") -> int:
    """``value`` as an int: ints, NumPy integers, whole floats and 0-d tensors or arrays.

    >>> whole_number("c", np.int64(4), "f(1)"), whole_number("c", 4.0, "f(1)")
    (4, 4)
    >>> whole_number("c", "5", "f(1)")
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: c: f(1) returned str '5'; return a whole number (an int).
    """
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        fail(check, f"{what} returned {describe(value)}; return a whole number (an int).")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or not float(value).is_integer():
            fail(
                check,
                f"{what} returned {float(value):g}, which is not a whole number.{rounding_hint}",
            )
    return int(value)


def number_array(check: str, value: Any, what: str) -> np.ndarray:
    """``value`` (list, tuple, NumPy array or tensor, on any device) as a float64 array.

    >>> number_array("c", torch.tensor([1, 2]), "f()").tolist()
    [1.0, 2.0]
    >>> number_array("c", None, "f()")
    Traceback (most recent call last):
    ...
    course_utils.checks._core.CheckFailed: c: f() is None: did you forget to return it?
    """
    if value is None:
        fail(check, f"{what} is None: did you forget to return it?")
    if isinstance(value, (str, bytes, dict)):
        fail(
            check, f"{what} is {describe(value)}; expected numbers (a list, an array or a tensor)."
        )
    try:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
        elif isinstance(value, (list, tuple)):
            value = [v.detach().cpu() if isinstance(v, torch.Tensor) else v for v in value]
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        fail(
            check,
            f"{what} is {describe(value)}, which is not an array of numbers ({error}).",
            error,
        )
    return array
