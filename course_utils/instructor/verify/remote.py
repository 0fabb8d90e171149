"""The kernel's side of the ``student`` proxy: answer one request about the notebook's globals.

Imported inside the student's sandboxed kernel, where the grader's request (JSON data)
arrives as a user expression: ``serve(get_ipython().user_ns, request)``. Everything here
runs under the student's control, so nothing here is trusted: the grader decodes the
answer as data (:mod:`.codec`) and compares it itself. Objects that are not data (a
function, a model) stay here, in :data:`HANDLES`, and are used by number; an object the
grader built with a course helper arrives as its recipe and is built here by the same
helper (:func:`built`).

Requests: ``{"op": "get", "name": N}``, ``{"op": "eval", "expr": E, "vars": {...}}``,
``{"op": "call", "ref": H, "args": [...], "kwargs": {...}}``, ``{"op": "getattr", "ref":
H, "name": N}``, ``{"op": "iter" | "len", "ref": H}``, ``{"op": "getitem", "ref": H,
"key": K}``. Answers: ``{"value": DATA}`` or ``{"error": [name, message]}``.

Each request leaves the kernel's random number generators as it found them (Python's
``random``, NumPy's and torch's global state, CUDA's where there is one): a hidden test
that builds a model or draws a case must not change what the student's later cells
compute, or their stored outputs would no longer reproduce (:func:`rng_preserved`).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import random
import sys
from collections.abc import Iterator
from typing import Any

from course_utils.instructor.verify.codec import decode, encode

HANDLES: dict[int, Any] = {}
MAX_ITERATION = 10_000  # items one iteration may yield


def handle(obj: Any) -> list:
    """A number for ``obj`` (the same each time), kept alive here, and its type's name."""
    HANDLES.setdefault(id(obj), obj)
    return [id(obj), type(obj).__name__]


def referenced(body: list) -> Any:
    """The object a handle in a request names."""
    return HANDLES[body[0]]


def built(body: list) -> Any:
    """The object a recipe in a request describes, made by the course helper it names.

    >>> built(["course_utils.models.transfer", "resnet18", {"list": []},
    ...        {"dict": [["num_classes", 3]]}]).fc.out_features
    3
    """
    module, name, args, kwargs = body
    if not module.startswith("course_utils.") or module.startswith("course_utils.instructor"):
        raise ValueError(f"{module} is not a course helper")
    helper = getattr(importlib.import_module(module), name)
    return helper(*_decoded(args), **_decoded(kwargs))


def _decoded(data: Any) -> Any:
    return decode(data, referenced, build=built)


def answer(namespace: dict, request: dict) -> Any:
    """Carry out one request in ``namespace`` (the notebook's globals)."""
    op = request["op"]
    if op == "get":
        if request["name"] not in namespace:
            raise NameError(f"name {request['name']!r} is not defined")
        return namespace[request["name"]]
    if op == "eval":
        scope = {**namespace, **_decoded(request["vars"])}
        return eval(request["expr"], scope)  # the grader's expression, in the student's world
    target = HANDLES[request["ref"]]
    if op == "call":
        args, kwargs = _decoded(request["args"]), _decoded(request["kwargs"])
        return target(*args, **kwargs)
    if op == "getattr":
        return getattr(target, request["name"])
    if op == "iter":
        items = list(itertools.islice(iter(target), MAX_ITERATION + 1))
        if len(items) > MAX_ITERATION:
            raise ValueError(f"more than {MAX_ITERATION} items")
        return items
    if op == "len":
        return len(target)
    if op == "getitem":
        return target[_decoded(request["key"])]
    raise ValueError(f"unknown request {op!r}")


@contextlib.contextmanager
def rng_preserved() -> Iterator[None]:
    """Restore the global RNG states of ``random``, NumPy and torch (and CUDA) on exit.

    NumPy and torch count only once imported: a request that imports torch for the
    first time leaves it as a fresh import does, at its initial seed. Nothing is
    imported here, so a kernel that uses neither pays for neither.

    >>> import numpy as np
    >>> before = np.random.get_state()[1].copy()
    >>> with rng_preserved():
    ...     _ = np.random.rand(3)
    >>> bool((np.random.get_state()[1] == before).all())
    True
    """
    python_state = random.getstate()
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    torch = sys.modules.get("torch")
    torch_states = _torch_states(torch) if torch is not None else None
    try:
        yield
    finally:
        random.setstate(python_state)
        if numpy is not None:
            numpy.random.set_state(numpy_state)
        torch = sys.modules.get("torch")
        if torch is not None and torch_states is not None:
            torch.set_rng_state(torch_states[0])
            if torch_states[1] is not None:
                torch.cuda.set_rng_state_all(torch_states[1])
        elif torch is not None:  # imported by this request: as a fresh import leaves it
            torch.manual_seed(torch.initial_seed())


def _torch_states(torch: Any) -> tuple[Any, Any]:
    """torch's CPU generator state, and every CUDA device's (``None`` without CUDA)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), cuda


def serve(namespace: dict, request: str) -> str:
    """Answer a JSON request with JSON: the value as data, or the error it raised.

    >>> serve({"x": [1, 2]}, '{"op": "get", "name": "x"}')
    '{"value": {"list": [1, 2]}}'
    >>> serve({}, '{"op": "get", "name": "y"}')
    '{"error": ["NameError", "name \\'y\\' is not defined"]}'
    """
    try:
        with rng_preserved():  # encoding may run the student's code too (a property)
            value = answer(namespace, json.loads(request))
            return json.dumps({"value": encode(value, handle)}, allow_nan=False)
    except Exception as exc:  # the student's code failed: the grader hears of it as data
        return json.dumps({"error": [type(exc).__name__, str(exc)[:2000]]})
