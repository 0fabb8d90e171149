"""Reading submissions: find them, read them as notebooks, tokenise their solution code.

A submission is an untrusted file. Here it is only parsed as JSON, never executed.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import keyword
import tokenize
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.reader import NotJSONError

from course_utils import pysource
from course_utils.notebooks import describe_error, short_error

# A submitted notebook larger than this is refused unread (a class's are well below 1 MB
# once images are counted; the limit keeps a hostile file from filling the grader's memory).
MAX_BYTES = 64 * 2**20
# Opens each unit of :func:`solution_tokens`; no code token holds a space after a ``#``.
UNIT_MARK = "# "
# Tokens kept of one submission's solution code (ten times a whole assignment's), and
# characters of each (a name or number may be megabytes long): tokens are stored in the
# gradebook, so a hostile cell can neither fill it nor slow the comparison.
MAX_TOKENS = 10_000
MAX_TOKEN_CHARS = 40
# Characters of solution code read at all: Python's tokenizer takes seconds per megabyte.
MAX_SOURCE_CHARS = 200_000
# Names that keep their spelling: what they mean does not change with the student's naming.
KEPT_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
SKIPPED_TOKENS = (
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
)


class InvalidSubmission(ValueError):
    """The file is not a notebook that can be verified."""


def read_submission(path: Path) -> bytes:
    """Return a submission's bytes, or raise :class:`InvalidSubmission`.

    >>> try:
    ...     read_submission(Path("no-such-file.ipynb"))
    ... except InvalidSubmission as exc:
    ...     print(exc)
    cannot read the file (No such file or directory)
    """
    try:
        if Path(path).stat().st_size > MAX_BYTES:
            raise InvalidSubmission(f"the file is larger than {MAX_BYTES // 2**20} MB")
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidSubmission(f"cannot read the file ({exc.strerror})") from None


def parse_submission(data: bytes) -> NotebookNode:
    """Parse and validate a submitted notebook, or raise :class:`InvalidSubmission`.

    >>> try:
    ...     parse_submission(b'{"cells": [')
    ... except InvalidSubmission as exc:
    ...     print(exc)
    not a notebook: the file is not JSON (truncated, or another format)
    """
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except NotJSONError:
        raise InvalidSubmission(
            "not a notebook: the file is not JSON (truncated, or another format)"
        ) from None
    except UnicodeDecodeError:
        raise InvalidSubmission("not a notebook: the file is not text") from None
    except Exception as exc:  # nbformat raises many kinds for JSON that is no notebook
        raise InvalidSubmission(f"not a valid notebook: {describe_error(exc)}") from None
    if not nb.cells:
        raise InvalidSubmission("the notebook has no cells")
    return nb


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes, or ``""`` when it cannot be read.

    >>> file_sha256(Path("no-such-file"))
    ''
    """
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def solution_tokens(sources: Sequence[str]) -> list[str]:
    """Solution code as normalised tokens, one unit per function, class or cell rest.

    Each top-level function or class, and the rest of each cell, is a unit opened by a
    marker token (:data:`UNIT_MARK` and its label: the function's name, or
    ``student cell N``, counting the given sources from 1). Tokens drop comments and
    layout, and a name becomes its role, not itself: ``F`` when it is called or defined,
    ``N`` otherwise;
    names after a dot (``np.zeros``'s ``zeros``), builtins and keywords stay, strings
    become ``S``. So renaming, reformatting, an added import or reordered functions change
    no unit's tokens (:mod:`.similarity` compares them). At most :data:`MAX_TOKENS`
    tokens of at most :data:`MAX_TOKEN_CHARS` characters each, from the first
    :data:`MAX_SOURCE_CHARS` characters of code.

    >>> solution_tokens(["total = a + b  # sum"]) == solution_tokens(["s=x+y"])
    True
    >>> " ".join(solution_tokens(["import numpy\\ndef f(x):\\n    return len(x)"]))
    '# f def F ( N ) : return len ( N ) # student cell 1 import N'
    """
    tokens: list[str] = []
    left = MAX_SOURCE_CHARS
    for number, whole in enumerate(sources, start=1):
        source = whole[:left]
        left -= len(source)
        for label, code in code_units(source, f"student cell {number}"):
            unit = normalised_tokens(code)
            if unit:  # not only comments (the rest of a cell is often a marker comment)
                tokens += [UNIT_MARK + label, *unit]
    return [token[:MAX_TOKEN_CHARS] for token in tokens[:MAX_TOKENS]]


def code_units(source: str, rest: str) -> list[tuple[str, str]]:
    """``(label, code)`` of each top-level function and class, then the rest (``rest``).

    Code that does not parse (an unfinished cell, IPython magics) is one unit.

    >>> code_units("import os\\ndef f():\\n    pass\\nx = 1", "cell 1")
    [('f', 'def f():\\n    pass'), ('cell 1', 'import os\\nx = 1')]
    """
    try:
        tree = pysource.parse(source)
    except (SyntaxError, ValueError):
        return [(rest, source)]
    lines = source.splitlines()
    units: list[tuple[str, str]] = []
    taken: set[int] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            last = node.end_lineno or node.lineno
            units.append((node.name, "\n".join(lines[first:last])))
            taken.update(range(first, last))
    others = "\n".join(line for index, line in enumerate(lines) if index not in taken)
    return [*units, (rest, others)] if others.strip() else units


def normalised_tokens(code: str) -> list[str]:
    """The tokens of ``code`` with each name replaced by its role (see :func:`solution_tokens`).

    >>> normalised_tokens("out[i] = np.sum(patch * k)  # why")
    ['N', '[', 'N', ']', '=', 'N', '.', 'sum', '(', 'N', '*', 'N', ')']
    """
    try:
        raw = [
            token
            for token in tokenize.generate_tokens(io.StringIO(code).readline)
            if token.type not in SKIPPED_TOKENS
        ]
    except (tokenize.TokenError, SyntaxError):  # unfinished code: compare it as words
        return code.split()
    tokens = []
    for index, token in enumerate(raw):
        before = raw[index - 1].string if index else ""
        after = raw[index + 1].string if index + 1 < len(raw) else ""
        if token.type == tokenize.STRING:
            tokens.append("S")
        elif token.type != tokenize.NAME or before == "." or token.string in KEPT_NAMES:
            tokens.append(token.string)
        else:
            tokens.append("F" if after == "(" else "N")
    return tokens


def expand_submissions(paths: Sequence[Path]) -> list[Path]:
    """Replace each folder by the notebooks in it and its subfolders (one per student).

    Files, and paths that do not exist, stay as given; Jupyter's checkpoints are skipped.

    >>> expand_submissions([Path("a.ipynb"), Path("no-such-folder")])
    [PosixPath('a.ipynb'), PosixPath('no-such-folder')]
    """
    return [nb for path in paths for nb in (notebooks_under(path) if path.is_dir() else [path])]


def notebooks_under(folder: Path) -> list[Path]:
    """The notebooks in ``folder`` and below, sorted, without ``.ipynb_checkpoints``."""
    return sorted(
        p for p in folder.rglob("*.ipynb") if p.is_file() and ".ipynb_checkpoints" not in p.parts
    )


def execution_order(nb: NotebookNode) -> str:
    """Say whether the code cells were executed once each, top to bottom.

    Execution counts must run 1, 2, 3, ... in document order; empty cells are ignored.

    >>> cell = nbformat.v4.new_code_cell
    >>> execution_order(nbformat.v4.new_notebook(cells=[cell("a", execution_count=1),
    ...     cell("", execution_count=None), cell("b", execution_count=2)]))
    'yes'
    >>> execution_order(nbformat.v4.new_notebook(cells=[cell("a", execution_count=1),
    ...     cell("b", execution_count=3), cell("c", execution_count=2)]))
    'no: cell 1 ran as [3], expected [2]'
    >>> execution_order(nbformat.v4.new_notebook(cells=[cell("a")]))
    'not executed'
    """
    counts = [
        (index, cell.execution_count)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.source.strip()
    ]
    if all(count is None for _, count in counts):
        return "not executed"
    for expected, (index, count) in enumerate(counts, start=1):
        if count != expected:
            ran = "did not run" if count is None else f"ran as [{count}]"
            return f"no: cell {index} {ran}, expected [{expected}]"
    return "yes"


def error_outputs(nb: NotebookNode) -> list[str]:
    """Return ``cell N: Name: message`` for every error output, in order.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
    ...     nbformat.v4.new_output("error", ename="NameError", evalue="name 'x' is not defined",
    ...                            traceback=[])])])
    >>> error_outputs(nb)
    ["cell 0: NameError: name 'x' is not defined"]
    """
    return [
        f"cell {index}: {short_error(output.ename, output.evalue)}"
        for index, cell in enumerate(nb.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
