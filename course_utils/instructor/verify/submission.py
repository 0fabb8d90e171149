"""Reading submissions: find them, read them as notebooks, fingerprint them.

A submission is an untrusted file. Here it is only parsed as JSON, never executed.
"""

from __future__ import annotations

import hashlib
import io
import keyword
import tokenize
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.reader import NotJSONError

from course_utils.notebooks import describe_error, short_error

# A submitted notebook larger than this is refused unread (a class's are well below 1 MB
# once images are counted; the limit keeps a hostile file from filling the grader's memory).
MAX_BYTES = 64 * 2**20
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
    """Code as tokens, without comments or layout, names numbered by first use.

    Renaming variables or reformatting does not change the tokens, so near-identical
    solutions stay near-identical.

    >>> solution_tokens(["total = a + b  # sum"]) == solution_tokens(["s=x+y"])
    True
    """
    names: dict[str, str] = {}
    tokens = []
    for source in sources:
        try:
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type in SKIPPED_TOKENS:
                    continue
                if token.type == tokenize.NAME and not keyword.iskeyword(token.string):
                    tokens.append(names.setdefault(token.string, f"v{len(names)}"))
                else:
                    tokens.append(token.string)
        except (tokenize.TokenError, SyntaxError):  # unfinished code: compare it as words
            tokens.extend(source.split())
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
