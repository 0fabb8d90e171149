"""Course helpers on a student's object run where the object lives: in the student's kernel.

A graded cell such as ``print(format_layer_table(layer_table(DigitCNN(), (1, 1, 28, 28))))``
hands a course helper the student's model, which stays in the kernel as a
:class:`~.proxy.Remote`; the helper needs hooks on it, which cannot cross. So each
course helper the template imports (a function of a ``course_utils`` module, or such a
module) is wrapped: called with a :class:`~.proxy.Remote` among its arguments, the
kernel runs the same helper, found by its module and name, on the student's object and
the grader's data, and returns what it made as data (or as a :class:`~.proxy.Remote`).
Called with data only, the grader's own helper runs, as before, and the object it makes
keeps its recipe: handed to the student's function, it travels as that recipe, and the
kernel builds its own from the same data (see :func:`~.proxy.remember_recipe`). So
``count_trainable(transfer.resnet18(num_classes=10))`` counts in the kernel a network
the grader also holds, and counts itself.

What the kernel returns this way describes the student's object and nothing else; the
checks, whose oracles decide points, are never routed (see :mod:`.split_checks`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from course_utils.instructor.verify.codec import NotData, encode
from course_utils.instructor.verify.proxy import Remote, Student, remember_recipe

COURSE_PACKAGE = "course_utils"
NEVER_ROUTED = ("course_utils.checks", "course_utils.instructor")


def is_course_helper(value: Any) -> bool:
    """Whether ``value`` is a function or module of the course's student side.

    >>> from course_utils import checks, inspect as course_inspect
    >>> is_course_helper(course_inspect.layer_table), is_course_helper(checks), is_course_helper(id)
    (True, False, False)
    """
    if isinstance(value, ModuleType):
        module = value.__name__
    elif inspect.isfunction(value):
        module = value.__module__
    else:
        return False
    course = module == COURSE_PACKAGE or module.startswith(COURSE_PACKAGE + ".")
    return course and not module.startswith(NEVER_ROUTED)


def holds_remote(values: Any) -> bool:
    """Whether a remote object is among ``values`` (one level into lists, tuples, dicts)."""
    for value in values:
        if isinstance(value, Remote):
            return True
        if isinstance(value, (list, tuple)) and any(isinstance(v, Remote) for v in value):
            return True
        if isinstance(value, dict) and any(isinstance(v, Remote) for v in value.values()):
            return True
    return False


def is_data(value: Any) -> bool:
    """Whether ``value`` can travel to the kernel as data.

    >>> is_data([1, "a", {"k": 2.5}]), is_data([print])
    (True, False)
    """
    try:
        encode(value)
    except NotData:
        return False
    return True


def routed_function(function: Callable[..., Any], student: Student) -> Callable[..., Any]:
    """``function``, run in the kernel (by its module and name) when an argument is remote."""
    expression = (
        f"__import__({function.__module__!r}, fromlist=['_'])"
        f".{function.__name__}(*arguments, **keywords)"
    )

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if holds_remote([*args, *kwargs.values()]):
            return student.eval(expression, arguments=list(args), keywords=dict(kwargs))
        made = function(*args, **kwargs)
        if is_data([list(args), dict(kwargs)]):  # so the kernel can build its own copy
            remember_recipe(made, function.__module__, function.__name__, list(args), kwargs)
        return made

    return wrapper


class RoutedModule:
    """A course module whose functions are :func:`routed_function`; the rest as it is."""

    def __init__(self, module: ModuleType, student: Student):
        self._module, self._student = module, student

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if is_course_helper(value):
            return routed(value, self._student)
        return value


def routed(value: Any, student: Student) -> Any:
    """A course helper wrapped so that it runs where a student's object is; else ``value``."""
    if not is_course_helper(value):
        return value
    if isinstance(value, ModuleType):
        return RoutedModule(value, student)
    return routed_function(value, student)
