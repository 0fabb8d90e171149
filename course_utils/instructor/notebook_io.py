"""Notebook I/O shared by the instructor tools: finding, reading and cleaning notebooks.

The base of :mod:`course_utils.instructor`; ``run``, ``refresh``, ``release`` and
``verify`` build on it, and it imports nothing of theirs.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat  # noqa: F401 (the doctests use it)
from nbformat import NotebookNode

CHECK_TAG = "nbval-check-output"
RECORD_PREFIX = "RUN RECORD"
MISSING = "-"
# Cells tagged "result" print a notebook's key results as `name: value` lines; the
# gallery and the gradebook show them.
RESULT_TAG = "result"
RESULT_LINE = re.compile(r"^([A-Za-z_][\w.-]*):[ \t]*(\S.*?)\s*$", re.MULTILINE)


def find_notebooks(folder: Path) -> list[Path]:
    """Return the notebooks in ``folder``, sorted by name.

    >>> find_notebooks(Path("no-such-folder"))
    []
    """
    return sorted(p for p in Path(folder).glob("*.ipynb") if p.is_file())


def template_notebooks(source: Path, kind: str = "template") -> list[Path]:
    """The notebooks of a folder, or the one notebook ``source`` names; never none.

    >>> template_notebooks(Path("no-such-folder"), "solution")
    Traceback (most recent call last):
    ...
    ValueError: no solution notebooks in no-such-folder: pass --template NOTEBOOK_DIR
    """
    paths = find_notebooks(source) if source.is_dir() else [source] if source.is_file() else []
    if not paths:
        raise ValueError(f"no {kind} notebooks in {source}: pass --template NOTEBOOK_DIR")
    return paths


def format_duration(seconds: float) -> str:
    """Format a wall time for people.

    >>> format_duration(3.14159), format_duration(125)
    ('3.1 s', '2 min 05 s')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def parse_record_line(line: str) -> dict[str, str]:
    """Parse a run record line into its ``key=value`` fields.

    >>> parse_record_line("RUN RECORD | profile=quick | data=embedded (OFFLINE) | device=cpu")
    {'profile': 'quick', 'data': 'embedded (OFFLINE)', 'device': 'cpu'}
    """
    fields: dict[str, str] = {}
    for part in re.split(r"\s*\|\s*", line.strip())[1:]:
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def output_text(output: NotebookNode) -> str:
    """Return the text of a stream output or the ``text/plain`` of a rich output.

    >>> output_text(nbformat.v4.new_output("execute_result", data={"text/plain": "42"}))
    '42'
    """
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def find_run_record(nb: NotebookNode) -> dict[str, str]:
    """Return the fields of the first run record line an executed notebook printed.

    Returns an empty dict when the notebook printed none (for example because it
    failed before its first cell finished).

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
    ...     nbformat.v4.new_output("stream", text="RUN RECORD | profile=smoke | device=cpu\\n")])])
    >>> find_run_record(nb)["profile"]
    'smoke'
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in output_text(output).splitlines():
                if line.startswith(RECORD_PREFIX):
                    return parse_record_line(line)
    return {}


def is_checked(cell: NotebookNode) -> bool:
    """Whether a cell is tagged ``nbval-check-output`` (nbval compares its output).

    >>> is_checked(nbformat.v4.new_code_cell(metadata={"tags": ["nbval-check-output"]}))
    True
    """
    return CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def text_outputs(outputs: Sequence[NotebookNode]) -> list[NotebookNode]:
    """Keep stream outputs and the ``text/plain`` part of rich outputs; drop the rest.

    Images, HTML and widget views go; an output with no text at all (or an error)
    goes entirely. The ``text/plain`` of a figure or widget stays because nbval
    compares it.

    >>> out = nbformat.v4.new_output("display_data", data={"text/plain": "x", "image/png": "i"})
    >>> text_outputs([out])[0]["data"]
    {'text/plain': 'x'}
    """
    kept = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            kept.append(output)
        elif kind in ("execute_result", "display_data") and "text/plain" in output.get("data", {}):
            output["data"] = {"text/plain": output["data"]["text/plain"]}
            output["metadata"] = {}
            kept.append(output)
    return kept


def drop_run_metadata(nb: NotebookNode) -> NotebookNode:
    """Remove what an execution leaves in metadata: widget state and cell timings.

    >>> nb = nbformat.v4.new_notebook(metadata={"widgets": {}})
    >>> "widgets" in drop_run_metadata(nb).metadata
    False
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Format rows as a plain-text table with aligned columns.

    >>> print(format_table(["a", "bb"], [["1", "2"]]))
    a  bb
    -  --
    1  2
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def progress_printer(prefix: str) -> Callable[[int, int], None] | None:
    """Announce a notebook; return a per-cell progress callback on a terminal.

    On a terminal the line ``[2/9] 02_cnn.ipynb: cell 5/40`` updates in place; in a log
    (CI, a pipe) one ``running`` line is printed instead.
    """
    if not sys.stdout.isatty():
        print(f"{prefix} running", flush=True)
        return None

    def show(index: int, total: int) -> None:
        print(f"\r\033[K{prefix} cell {index + 1}/{total}", end="", flush=True)

    return show


def end_progress() -> None:
    """Clear the in-place progress line on a terminal."""
    if sys.stdout.isatty():
        print("\r\033[K", end="", flush=True)


def key_results(nb: NotebookNode) -> dict[str, str]:
    """Return the ``name: value`` lines that cells tagged ``result`` printed.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     metadata={"tags": ["result"]}, outputs=[nbformat.v4.new_output(
    ...         "stream", text="test_accuracy: 0.91\\nnot a result line\\nepochs: 5\\n")])])
    >>> key_results(nb)
    {'test_accuracy': '0.91', 'epochs': '5'}
    """
    results: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or RESULT_TAG not in cell.metadata.get("tags", []):
            continue
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stdout":
                results.update(RESULT_LINE.findall(output_text(output)))
    return results


def notebook_title(nb: NotebookNode, default: str = "Notebook") -> str:
    """Return the text of the notebook's first H1 heading (``# Title``), plain.

    Markdown emphasis (``*``) and code marks are dropped; ``default`` when there is no H1.

    >>> notebook_title(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
    ...     "Intro\\n# Assignment 1: *Convolution* `arithmetic`\\n## Goals")]))
    'Assignment 1: Convolution arithmetic'
    >>> notebook_title(nbformat.v4.new_notebook(), default="a1_t1")
    'a1_t1'
    """
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        match = re.search(r"^#[ \t]+(.+?)[ \t#]*$", cell.source, re.MULTILINE)
        if match:
            return re.sub(r"[*`]", "", match[1]).strip()
    return default


def add_notebook_dir_argument(parser: argparse.ArgumentParser, what: str = "notebooks") -> None:
    """The optional ``NOTEBOOK_DIR`` argument that ``run``, ``refresh`` and ``release`` share.

    >>> parser = argparse.ArgumentParser()
    >>> add_notebook_dir_argument(parser)
    >>> parser.parse_args([]).notebook_dir
    PosixPath('notebooks')
    """
    parser.add_argument(
        "notebook_dir",
        nargs="?",
        type=Path,
        default=Path("notebooks"),
        help=f"folder with the {what} (default: notebooks)",
    )
