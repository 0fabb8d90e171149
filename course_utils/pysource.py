"""Parse Python source safely from several threads at once.

CPython 3.11's :func:`ast.parse` is not thread-safe: two threads parsing at the same
time can fail with ``SystemError: AST constructor recursion depth mismatch``
(python/cpython#106905, fixed in 3.12). ``course verify -j N`` grades submissions in
threads, its checks read the handed-in code with ``ast`` and the kernel's answers are
read with :func:`ast.literal_eval`; without the lock an honest
submission lost a hidden test now and then.
"""

from __future__ import annotations

import ast
import threading

__all__ = ["literal_eval", "parse"]

_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    """:func:`ast.parse`, one thread at a time.

    >>> [type(node).__name__ for node in parse("import os\\nx = 1").body]
    ['Import', 'Assign']
    """
    with _LOCK:
        return ast.parse(source)


def literal_eval(text: str) -> object:
    """:func:`ast.literal_eval` of a string (which parses it), one thread at a time.

    >>> literal_eval("{'value': [1, 2.5, None]}")
    {'value': [1, 2.5, None]}
    """
    with _LOCK:
        return ast.literal_eval(text)
