"""``student``: the grader's view of a student's notebook globals, as data only.

``student.widths`` fetches a value; ``student.convolve2d(image, kernel, 1)`` calls the
student's function in their kernel with the arguments sent as data and returns the
result as data; ``student.eval("sum(p.numel() for p in LeNet().parameters())")``
evaluates an expression the grader chose in the student's namespace. An object that is
not data (a function, a model) comes back as a :class:`Remote`: a number the kernel
knows, on which the grader may call, read attributes, index, iterate and take ``len``;
what those return is again data or a :class:`Remote`. Nothing the grader holds ever
goes into the kernel except data and such numbers, and recipes made of data for objects
the grader built with a course helper (:func:`remember_recipe`), which the kernel builds
for itself: a grader function passed as an argument is refused (:class:`~.codec.NotData`).

The student's code decides every value this returns, and nothing else: the oracles and
comparisons that use them run in the grader.
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from course_utils.instructor.verify import codec


class StudentError(Exception):
    """The student's code raised (its name and message, as the kernel reported them)."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


class Channel:
    """Sends requests to the kernel and decodes their answers (see :mod:`.remote`)."""

    def __init__(self, request: Callable[[dict], str]):
        self.send = request

    def ask(self, payload: dict) -> Any:
        """The decoded value of one request, or :class:`StudentError`."""
        try:
            answer = json.loads(self.send(payload))
        except (ValueError, RecursionError):
            raise codec.NotData("the kernel's answer is not JSON") from None
        if not isinstance(answer, dict) or len(answer) != 1:
            raise codec.NotData("the kernel's answer is malformed")
        if "error" in answer:
            error = answer["error"]
            if not (isinstance(error, list) and len(error) == 2):
                raise codec.NotData("the kernel's error is malformed")
            raise StudentError(str(error[0])[:100], str(error[1])[:500])
        if "value" not in answer:
            raise codec.NotData("the kernel's answer is malformed")
        return codec.decode(answer["value"], lambda body: Remote(self, body[0], body[1]))

    def send_value(self, value: Any) -> Any:
        """A grader value as data for a request; a :class:`Remote` travels as its number."""

        def number(obj: Any) -> list | dict:
            if isinstance(obj, Remote) and obj._channel is self:
                return [obj._number, obj._type]
            recipe = recipe_of(obj)
            if recipe is not None:  # the kernel builds its own from the same data
                module, name, args, kwargs = recipe
                return {"build": [module, name, self.send_value(args), self.send_value(kwargs)]}
            raise codec.NotData(f"a {type(obj).__name__} cannot be sent to the student's kernel")

        return codec.encode(value, number)


# Objects the grader built with a course helper from data only, and how: (module, helper
# name, args, kwargs). Such an object travels to the kernel as that recipe.
_RECIPES: weakref.WeakKeyDictionary[Any, tuple[str, str, list, dict]] = weakref.WeakKeyDictionary()


def remember_recipe(obj: Any, module: str, name: str, args: list, kwargs: dict) -> None:
    """Note that ``obj`` is what ``module.name(*args, **kwargs)`` made (all of them data)."""
    with contextlib.suppress(TypeError):  # an object that cannot be weakly referenced
        _RECIPES[obj] = (module, name, args, kwargs)


def recipe_of(obj: Any) -> tuple[str, str, list, dict] | None:
    """The recipe :func:`remember_recipe` noted for ``obj``, else ``None``.

    >>> import torch
    >>> net = torch.nn.Linear(2, 3)
    >>> remember_recipe(net, "course_utils.models", "linear", [2, 3], {})
    >>> recipe_of(net), recipe_of(torch.nn.Linear(2, 3))
    (('course_utils.models', 'linear', [2, 3], {}), None)
    """
    try:
        return _RECIPES.get(obj)
    except TypeError:
        return None


class Remote:
    """An object that stays in the student's kernel (a function, a model), used by number."""

    def __init__(self, channel: Channel, number: int, type_name: str):
        self._channel, self._number, self._type = channel, number, type_name

    def _ask(self, op: str, **fields: Any) -> Any:
        return self._channel.ask({"op": op, "ref": self._number, **fields})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel = self._channel
        return self._ask(
            "call", args=channel.send_value(list(args)), kwargs=channel.send_value(dict(kwargs))
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy, pickle and numpy probe these: not remote
        try:
            return self._ask("getattr", name=name)
        except StudentError as exc:  # so that getattr(obj, name, default) and hasattr work
            if exc.name == "AttributeError":
                raise AttributeError(str(exc)) from None
            raise

    def __iter__(self) -> Iterator[Any]:
        return iter(self._ask("iter"))

    def __len__(self) -> int:
        length = self._ask("len")
        if not isinstance(length, int):
            raise TypeError("len() of the student's object is not an int")
        return length

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key=self._channel.send_value(key))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Remote) and (other._channel, other._number) == (
            self._channel,
            self._number,
        )

    def __hash__(self) -> int:
        return hash(self._number)

    def __repr__(self) -> str:
        return f"<student's {self._type}>"


class Student:
    """The student's notebook globals, as data: ``student.name``, ``student.eval(expr)``."""

    def __init__(self, channel: Channel):
        self._channel = channel

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._channel.ask({"op": "get", "name": name})

    def eval(self, expression: str, **values: Any) -> Any:
        """Evaluate ``expression`` in the student's namespace, with ``values`` sent as data.

        >>> student = Student(Channel(lambda payload: '{"value": 12345}'))
        >>> student.eval("sum(p.numel() for p in LeNet().parameters())")
        12345
        """
        return self._channel.ask(
            {"op": "eval", "expr": expression, "vars": self._channel.send_value(values)}
        )

    def __repr__(self) -> str:
        return "<the student's notebook>"
