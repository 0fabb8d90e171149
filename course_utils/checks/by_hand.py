"""Whether a function meant to be written by hand calls a library convolution.

Two ways to tell, for two places:

- :func:`library_convolution_calls` reads the submitted source (static): the named
  functions, every function of the submission they use, and the names they reach
  through imports or module-level aliases. It finds attribute and name calls
  (``F.conv2d``, ``from scipy.signal import convolve2d``, ``nn.Conv2d``), the same names
  as strings (``getattr(F, "conv2d")``), and lookups that cannot be read statically
  (``getattr`` with a computed name, ``eval``, ``exec``, ``__import__``). A grader runs it
  on the handed-in code, where nothing the student's kernel did can change the answer.
- :func:`watch_library_convolutions` watches a call as it runs (dynamic), through the
  interpreter's profiler: calls of the library convolutions of PyTorch, NumPy and SciPy
  made anywhere below the watched call, however they were imported or renamed. The
  visible checks use it, so that a student hears about it at once.
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from course_utils import pysource

__all__ = ["LIBRARY_CONVOLUTIONS", "library_convolution_calls", "watch_library_convolutions"]

# Names of library convolutions and of the layers that run them, in the modules below.
LIBRARY_CONVOLUTIONS = frozenset(
    {
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "convolution",
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "LazyConv2d",
        "convolve",
        "convolve1d",
        "convolve2d",
        "correlate",
        "correlate1d",
        "correlate2d",
        "fftconvolve",
        "oaconvolve",
        "filter2D",
    }
)
_MODULES = ("torch", "torch.nn.functional", "numpy", "scipy.signal", "scipy.ndimage")
_DYNAMIC = frozenset({"eval", "exec", "__import__", "import_module", "compile"})


def _parse(source: str) -> list[ast.stmt]:
    """The statements of ``source``; IPython's ``%magic`` and ``!shell`` lines are dropped,
    and a part that does not parse (a cell with a syntax error) is skipped."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return pysource.parse("\n".join(lines)).body
    except SyntaxError:
        pass
    statements: list[ast.stmt] = []
    start = 0
    for end in range(1, len(lines) + 1):
        following = lines[end] if end < len(lines) else "x"
        if following[:1] in ("", " ", "\t", ")", "]", "}", "#"):
            continue  # not the start of a new top-level statement
        try:
            statements += pysource.parse("\n".join(lines[start:end])).body
        except SyntaxError:
            continue
        start = end
    return statements


def _library_name(node: ast.AST | None) -> str | None:
    """The library convolution a string constant names (``"conv2d"``), if it is one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value.strip() in LIBRARY_CONVOLUTIONS:
            return node.value.strip()
    return None


def _mentions(node: ast.AST) -> list[str]:
    """What in ``node`` reaches a library convolution directly: an attribute, a name as a
    string where it is looked up (``getattr(F, "conv2d")``, ``vars(F)["conv2d"]``), or a
    lookup that cannot be read (a computed ``getattr``, ``eval``)."""
    found = []
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr in LIBRARY_CONVOLUTIONS:
            found.append(f".{child.attr}")
        elif isinstance(child, ast.Subscript) and (name := _library_name(child.slice)):
            found.append(repr(name))
        elif isinstance(child, ast.Call):
            function = child.func
            called = (
                function.id
                if isinstance(function, ast.Name)
                else function.attr
                if isinstance(function, ast.Attribute)
                else ""
            )
            looked_up = child.args[1] if len(child.args) >= 2 else None
            if called in _DYNAMIC:
                found.append(f"{called}(...)")
            elif called == "getattr" and (name := _library_name(looked_up)):
                found.append(repr(name))
            elif called == "getattr" and not isinstance(looked_up, ast.Constant):
                found.append("getattr with a computed name")
    return found


def _global_names_used(node: ast.AST) -> set[str]:
    """The names ``node`` reads that are not its own parameters or local variables."""
    local: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        local = {a.arg for a in every}
        declared_global = {
            name
            for child in ast.walk(node)
            if isinstance(child, ast.Global)
            for name in child.names
        }
        local |= {
            child.id
            for child in ast.walk(node)
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store)
        } - declared_global
    return {
        child.id
        for child in ast.walk(node)
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load)
    } - local


def library_convolution_calls(source: str, functions: Iterable[str]) -> list[str]:
    """What the ``functions`` defined in ``source`` (and the functions of ``source`` they
    use) do to reach a library convolution; empty when they compute it themselves.

    >>> by_hand = '''
    ... def convolve2d(image, kernel, padding):
    ...     return slide(np.pad(image, padding), kernel[::-1, ::-1])
    ... def slide(image, kernel):
    ...     return sum(image[i:i + 3] for i in range(3))
    ... '''
    >>> library_convolution_calls(by_hand, ["convolve2d"])
    []
    >>> library_convolution_calls('''
    ... from scipy.signal import correlate2d as slide
    ... def convolve2d(image, kernel, padding):
    ...     return slide(np.pad(image, padding), kernel[::-1, ::-1], "valid")
    ... ''', ["convolve2d"])
    ['slide (imported correlate2d)']
    """
    statements = _parse(source)
    definitions: dict[str, list[ast.AST]] = {}
    aliases: dict[str, str] = {}  # a module-level name bound to a library convolution
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            definitions.setdefault(statement.name, []).append(statement)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            for alias in statement.names:
                leaf = alias.name.rsplit(".", 1)[-1]
                if leaf in LIBRARY_CONVOLUTIONS:
                    aliases[alias.asname or leaf] = f"imported {leaf}"
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            mentions = _mentions(statement.value)
            for name in names:
                if mentions:
                    aliases[name] = f"bound to {mentions[0]}"
                elif isinstance(statement.value, ast.Lambda | ast.Name | ast.Call):
                    definitions.setdefault(name, []).append(statement.value)
    found: list[str] = []
    seen: set[str] = set()
    todo = list(functions)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in aliases:
            found.append(f"{name} ({aliases[name]})")
        for node in definitions.get(name, []):
            found += _mentions(node)
            todo += sorted(_global_names_used(node) - seen)
    return list(dict.fromkeys(found))


def _library_functions() -> tuple[dict[int, str], dict[Any, str]]:
    """The library convolutions of the modules already imported: Python functions by
    their code object, built-in ones by identity."""
    codes: dict[int, str] = {}
    builtins: dict[Any, str] = {}
    for module_name in _MODULES:
        module = sys.modules.get(module_name)
        for name in LIBRARY_CONVOLUTIONS:
            function = getattr(module, name, None) if module is not None else None
            if function is None:
                continue
            label = f"{module_name}.{name}"
            if isinstance(function, type):  # a layer: its forward calls the functional form
                continue
            code = getattr(inspect.unwrap(function), "__code__", None)
            if code is not None:
                codes[id(code)] = label
            else:
                builtins.setdefault(function, label)
    return codes, builtins


@contextmanager
def watch_library_convolutions() -> Iterator[list[str]]:
    """Note the library convolutions called inside the block (each name once).

    >>> import numpy as np
    >>> with watch_library_convolutions() as called:
    ...     _ = np.convolve([1, 2, 3], [1, 1])
    >>> called
    ['numpy.convolve']
    """
    codes, builtins = _library_functions()
    called: list[str] = []
    previous = sys.getprofile()

    def profile(frame: Any, event: str, arg: Any) -> None:
        label = None
        if event == "call":
            label = codes.get(id(frame.f_code))
        elif event == "c_call":
            try:
                label = builtins.get(arg)
            except TypeError:  # an unhashable callable is none of the library's
                label = None
        if label is not None and label not in called:
            called.append(label)

    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)
