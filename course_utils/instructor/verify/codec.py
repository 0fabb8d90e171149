"""Data, the only thing that crosses between the grader and a student's kernel.

A value travels as JSON: ``None``, booleans, integers, finite floats and strings as
themselves; everything else as a one-key object: ``{"float": "nan"}``, ``{"list": [...]}``,
``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}``, ``{"ndarray": {...}}`` (numeric
dtypes only, the bytes in base64), ``{"tensor": {...}}`` (a torch tensor, as an array),
and ``{"handle": [number, type name]}`` for an object that is not data (a function, a
model), which stays in the kernel and is used there by number. One more kind goes from
the grader to the kernel only: ``{"build": [module, name, args, kwargs]}``, a recipe made
of data for an object the grader built with a course helper (a ResNet18 for 10 classes),
which the kernel builds for itself with its own copy of that helper. Never pickle: decoding
builds only these types, whatever the text says, and refuses what is too deep or too big.

The kernel side (:mod:`.remote`) encodes with the same module; what it sends is
untrusted, so :func:`decode` checks every part of it.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

# Numeric kinds only: bool, signed and unsigned integers, floats. Never objects.
ARRAY_KINDS = "biuf"
MAX_DEPTH = 32
MAX_ITEMS = 100_000  # items of one list, tuple or dict
MAX_ARRAY_BYTES = 64 * 2**20


class NotData(TypeError):
    """A value that cannot travel between the grader and a kernel."""


def encode(value: Any, handle: Callable[[Any], list | dict] | None = None, depth: int = 0) -> Any:
    """``value`` as JSON-ready data; ``handle(obj)`` names what is not data (else refused).

    >>> encode((1, [2.5, "x"], {"k": None}))
    {'tuple': [1, {'list': [2.5, 'x']}, {'dict': [['k', None]]}]}
    >>> encode(print)
    Traceback (most recent call last):
    ...
    course_utils.instructor.verify.codec.NotData: a builtin_function_or_method is not data
    """
    if depth > MAX_DEPTH:
        raise NotData(f"nested deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else {"float": repr(float(value))}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        items = [encode(item, handle, depth + 1) for item in value]
        return {type(value).__name__: items}
    if type(value) is dict:
        return {
            "dict": [
                [encode(k, handle, depth + 1), encode(v, handle, depth + 1)]
                for k, v in value.items()
            ]
        }
    if isinstance(value, np.ndarray) and value.dtype.kind in ARRAY_KINDS:
        return {"ndarray": encode_array(value)}
    tensor = _as_array(value)
    if tensor is not None:
        return {"tensor": encode_array(tensor)}
    if handle is not None:
        named = handle(value)  # a handle's [number, type name], or a tagged recipe
        return named if isinstance(named, dict) else {"handle": named}
    raise NotData(f"a {type(value).__name__} is not data")


def _as_array(value: Any) -> np.ndarray | None:
    """A torch tensor's values as a NumPy array (on the CPU, detached), else ``None``."""
    module = type(value).__module__
    if not module.startswith("torch") or not hasattr(value, "detach"):
        return None
    array = value.detach().cpu().numpy()
    return array if array.dtype.kind in ARRAY_KINDS else None


def encode_array(array: np.ndarray) -> dict:
    """An array's dtype, shape and bytes (C order, base64)."""
    if array.nbytes > MAX_ARRAY_BYTES:
        raise NotData(f"an array of {array.nbytes:,} bytes is larger than {MAX_ARRAY_BYTES:,}")
    contiguous = np.ascontiguousarray(array)
    return {
        "dtype": contiguous.dtype.str,
        "shape": list(contiguous.shape),
        "data": base64.b64encode(contiguous.tobytes()).decode("ascii"),
    }


def decode(
    data: Any,
    handle: Callable[[list], Any] | None = None,
    depth: int = 0,
    build: Callable[[list], Any] | None = None,
) -> Any:
    """Build the value that :func:`encode` described; refuse anything else.

    ``handle([number, type_name])`` makes the grader's stand-in for an object left in the
    kernel; without it a handle is refused. ``build([module, name, args, kwargs])`` makes
    the object a recipe describes (the kernel's side only); without it a recipe is refused.

    >>> decode(encode({"w": np.arange(3)}))
    {'w': array([0, 1, 2])}
    >>> decode({"ndarray": {"dtype": "|O", "shape": [1], "data": ""}})
    Traceback (most recent call last):
    ...
    course_utils.instructor.verify.codec.NotData: arrays of dtype object are not data
    """
    if depth > MAX_DEPTH:
        raise NotData(f"nested deeper than {MAX_DEPTH}")
    if data is None or isinstance(data, (bool, int, str)):
        return data
    if isinstance(data, float):
        return data
    if not isinstance(data, dict) or len(data) != 1:
        raise NotData(f"unexpected {type(data).__name__} in the data")
    [(kind, body)] = data.items()
    if kind == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if kind in ("list", "tuple", "dict") and isinstance(body, list):
        if len(body) > MAX_ITEMS:
            raise NotData(f"more than {MAX_ITEMS:,} items")
        if kind == "dict":
            if not all(isinstance(pair, list) and len(pair) == 2 for pair in body):
                raise NotData("a dict's items are not pairs")
            return {
                decode(k, handle, depth + 1, build): decode(v, handle, depth + 1, build)
                for k, v in body
            }
        items = [decode(item, handle, depth + 1, build) for item in body]
        return items if kind == "list" else tuple(items)
    if kind == "ndarray":
        return decode_array(body)
    if kind == "tensor":
        import torch

        return torch.from_numpy(decode_array(body))
    if kind == "handle" and handle is not None and _is_handle(body):
        return handle(body)
    if kind == "build" and build is not None and _is_recipe(body):
        return build(body)
    raise NotData(f"unexpected {kind!r} in the data")


def _is_handle(body: Any) -> bool:
    return (
        isinstance(body, list)
        and len(body) == 2
        and isinstance(body[0], int)
        and isinstance(body[1], str)
    )


def _is_recipe(body: Any) -> bool:
    return (
        isinstance(body, list)
        and len(body) == 4
        and isinstance(body[0], str)
        and isinstance(body[1], str)
    )


def decode_array(body: Any) -> np.ndarray:
    """An array from its dtype, shape and base64 bytes, checked against each other."""
    if not isinstance(body, dict) or set(body) != {"dtype", "shape", "data"}:
        raise NotData("an array needs exactly dtype, shape and data")
    try:
        dtype = np.dtype(str(body["dtype"]))
    except TypeError:
        raise NotData(f"unknown dtype {str(body['dtype'])[:20]!r}") from None
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise NotData(f"arrays of dtype {dtype} are not data")
    shape = body["shape"]
    if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise NotData("an array's shape must be a list of sizes")
    if len(shape) > MAX_DEPTH or not isinstance(body["data"], str):
        raise NotData("an array's shape or data is malformed")
    if len(body["data"]) > MAX_ARRAY_BYTES * 4 // 3 + 4:
        raise NotData("an array is too large")
    raw = base64.b64decode(body["data"], validate=True)
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise NotData("an array's bytes do not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def dumps(value: Any, handle: Callable[[Any], list] | None = None) -> str:
    """:func:`encode` as a JSON string (NaN refused: it is encoded, never raw)."""
    return json.dumps(encode(value, handle), allow_nan=False)


def loads(text: str, handle: Callable[[list], Any] | None = None) -> Any:
    """:func:`decode` of a JSON string; a malformed string is :class:`NotData` too.

    >>> loads(dumps([1, float("nan")]))
    [1, nan]
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NotData(f"not JSON: {exc}") from None
    return decode(data, handle)
