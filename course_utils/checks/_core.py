"""What every check shares: the failure type, the PASS line, and safe handling of answers.

A student's answer can be anything (``None``, the string ``"5"``, a list where a number
is wanted), and a student's function can raise. These helpers turn each of those into
a :class:`CheckFailed` with a message that says what was expected, and never crash
while writing that message. ``NotImplementedError`` passes through unchanged: it is
the stub of the student release, not a mistake to diagnose.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
import torch

N_RANDOM_CASES = 20


class CheckFailed(AssertionError):
    """A student's answer disagrees with the oracle; the message says how."""


def fail(check: str, message: str, cause: BaseException | None = None) -> NoReturn:
    """Raise :class:`CheckFailed` for ``check``, chained to ``cause`` when given."""
    raise CheckFailed(f"{check}: {message}") from cause


def passed(check: str, detail: str) -> None:
    """Print the one line a correct answer gets."""
    print(f"PASS {check}: {detail}")


def rng() -> np.random.Generator:
    """The random cases' generator: a fixed seed keeps PASS lines identical run to run."""
    return np.random.default_rng(2024)


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
