"""pysource.parse: ast.parse that several grading threads can call at once."""

import ast
import threading
import time

import pytest

from course_utils import pysource


def test_parse_gives_what_ast_gives() -> None:
    source = "def f(x):\n    return [x + 1 for x in range(3)]\n"
    assert ast.dump(pysource.parse(source)) == ast.dump(ast.parse(source))


def test_no_two_threads_are_ever_inside_ast_parse_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython 3.11's ast.parse corrupts a shared recursion counter when two threads run it
    # at once (python/cpython#106905); a stand-in that notices overlap shows the lock holds.
    inside, most = 0, 0
    counter = threading.Lock()
    real = ast.parse

    def watched(source: str) -> ast.Module:
        nonlocal inside, most
        with counter:
            inside += 1
            most = max(most, inside)
        time.sleep(0.005)  # a long parse: another thread would get in now
        with counter:
            inside -= 1
        return real(source)

    monkeypatch.setattr(ast, "parse", watched)
    threads = [
        threading.Thread(target=lambda: [pysource.parse("x = 1") for _ in range(10)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1
