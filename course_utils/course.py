"""The ``course`` command: run, refresh, release and verify the notebooks.

Usage::

    course run [NOTEBOOK_DIR] [--out build] [--timeout 1800] [--profile PROFILE]
    course refresh [NOTEBOOK_DIR] [--timeout 600]
    course release [NOTEBOOK_DIR] [--out build/student]
    course verify SUBMISSION... [--out gradebook.csv] [-j N] [limits]

``course run`` executes every notebook (in its own folder, with a fresh kernel) into
``build/notebooks/``, renders each one to HTML and writes ``build/index.html``, a
gallery with one row per notebook: profile, data source and device (read from the
notebook's run record), wall time and status. A failing notebook does not stop the
others; the command exits non-zero if any failed.

``course refresh`` re-executes the notebooks in the ``smoke`` profile and writes them
back with outputs only on cells tagged ``nbval-check-output``: the outputs nbval
compares in CI.

``course release`` (:mod:`course_utils.release`) writes the student release, and
``course verify`` (:mod:`course_utils.verify`) re-executes submitted notebooks in a
sandbox and writes a gradebook.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbformat import NotebookNode

CHECK_TAG = "nbval-check-output"
RECORD_PREFIX = "RUN RECORD"
KERNEL_NAME = "python3"
# Environment for kernels started by `course run`: static figures, no live updates.
# The profile is deliberately not set: notebooks default to `auto`.
RUN_ENV = {"COURSE_LIVE_PLOT": "0"}
# Environment for `course refresh`: the stored outputs come from a smoke CPU run.
REFRESH_ENV = {"COURSE_PROFILE": "smoke", "COURSE_LIVE_PLOT": "0"}
MISSING = "-"
# Keep the kernels' own log quiet (ipykernel warns that its sockets on localhost are not
# encrypted); notebook output, warnings and tracebacks are unaffected.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


# --------------------------------------------------------------------------- helpers


def find_notebooks(folder: Path) -> list[Path]:
    """Return the notebooks in ``folder``, sorted by name.

    >>> find_notebooks(Path("no-such-folder"))
    []
    """
    return sorted(p for p in Path(folder).glob("*.ipynb") if p.is_file())


def kernel_env(overrides: dict[str, str]) -> dict[str, str]:
    """Return this process's environment with ``overrides`` applied (for a kernel).

    >>> kernel_env({"COURSE_LIVE_PLOT": "0"})["COURSE_LIVE_PLOT"]
    '0'
    """
    return {**os.environ, **overrides}


def format_duration(seconds: float) -> str:
    """Format a wall time for people.

    >>> format_duration(3.14159), format_duration(125)
    ('3.1 s', '2 min 05 s')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def describe_error(exc: BaseException) -> str:
    """Return an error's short name and the first line of its message.

    >>> describe_error(ValueError("bad shape\\nmore detail"))
    'ValueError: bad shape'
    """
    if isinstance(exc, CellExecutionError):
        return short_error(exc.ename, exc.evalue)
    return short_error(type(exc).__name__, str(exc))


def short_error(name: str, message: str | None) -> str:
    """Return ``name: first line of message``, or ``name`` alone for no message.

    >>> short_error("MemoryError", ""), short_error("KeyError", "'x'\\nmore")
    ('MemoryError', "KeyError: 'x'")
    """
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return f"{name}: {lines[0].strip()}" if lines else name


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


def execute_notebook(nb: NotebookNode, folder: Path, timeout: int, env: dict[str, str],
                     on_cell: Callable[[int, int], None] | None = None,
                     allow_errors: bool = False) -> str | None:
    """Execute ``nb`` in place with a fresh kernel whose working directory is ``folder``.

    Returns ``None`` on success, or the error's short description; ``nb`` then holds
    the outputs up to and including the failing cell. ``on_cell(index, total)`` is
    called before each cell runs. With ``allow_errors`` an exception in a cell is only
    recorded in its outputs and the next cell runs; a timeout or a dead kernel still
    stops the run.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    >>> execute_notebook(nb, Path("."), timeout=60, env=kernel_env({}))  # doctest: +SKIP
    'ZeroDivisionError: division by zero'
    """
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        extra_arguments=KERNEL_ARGS,
        resources={"metadata": {"path": str(Path(folder).resolve())}},
        record_timing=False,
        allow_errors=allow_errors,
    )
    if on_cell is not None:
        total = len(nb.cells)
        client.on_cell_start = lambda cell, cell_index: on_cell(cell_index, total)
    try:
        client.execute(env=env)
    except Exception as exc:  # one broken notebook must not stop the others
        return describe_error(exc)
    return None


def render_html(nb: NotebookNode) -> str:
    """Render a notebook to a standalone HTML page with nbconvert.

    >>> "<html" in render_html(nbformat.v4.new_notebook())
    True
    """
    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Format rows as a plain-text table with aligned columns.

    >>> print(format_table(["a", "bb"], [["1", "2"]]))
    a  bb
    -  --
    1  2
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


# --------------------------------------------------------------------------- course run


@dataclass
class NotebookResult:
    """The outcome of running one notebook."""

    name: str
    html_path: str  # relative to the output folder
    wall_s: float
    error: str | None = None
    record: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the notebook ran to the end without an error."""
        return self.error is None

    @property
    def status(self) -> str:
        """``ok`` or ``FAILED (<error>)``."""
        return "ok" if self.ok else f"FAILED ({self.error})"

    def value(self, key: str) -> str:
        """A run record field, or ``-`` when the notebook printed no record."""
        return self.record.get(key, MISSING)


SUMMARY_HEADERS = ("notebook", "profile", "data", "device", "wall time", "status")


def summary_rows(results: Sequence[NotebookResult]) -> list[list[str]]:
    """One row per notebook, in the order of :data:`SUMMARY_HEADERS`."""
    return [[r.name, r.value("profile"), r.value("data"), r.value("device"),
             format_duration(r.wall_s), r.status] for r in results]


def _progress(prefix: str) -> Callable[[int, int], None] | None:
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


def _end_progress() -> None:
    """Clear the in-place progress line on a terminal."""
    if sys.stdout.isatty():
        print("\r\033[K", end="", flush=True)


def run_one(path: Path, out_dir: Path, timeout: int, env: dict[str, str],
            label: str = "") -> NotebookResult:
    """Execute one notebook into ``out_dir/notebooks`` and render it to HTML.

    >>> run_one(Path("notebooks/01_intro.ipynb"), Path("build"), 1800,
    ...         kernel_env({}))  # doctest: +SKIP
    NotebookResult(name='01_intro.ipynb', ...)
    """
    nb = nbformat.read(path, as_version=4)
    prefix = f"{label} {path.name}:".strip()
    start = time.perf_counter()
    error = execute_notebook(nb, path.parent, timeout, env, on_cell=_progress(prefix))
    wall_s = time.perf_counter() - start
    _end_progress()

    target = out_dir / "notebooks" / path.name
    nbformat.write(nb, target)
    html_file = target.with_suffix(".html")
    try:
        html_file.write_text(render_html(nb), encoding="utf-8")
    except Exception as exc:  # a rendering bug should not hide the run's result
        error = error or f"HTML rendering failed: {describe_error(exc)}"
    result = NotebookResult(path.name, html_file.relative_to(out_dir).as_posix(), wall_s,
                            error, find_run_record(nb))
    print(f"{prefix} {result.status} in {format_duration(wall_s)}", flush=True)
    return result


INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid #ddd;
         vertical-align: top; }
th { background: #f4f4f4; }
td.ok { color: #17702c; font-weight: 600; }
td.failed { color: #b3261e; font-weight: 600; }
.meta { color: #666; }
"""


def index_html(results: Sequence[NotebookResult], title: str = "CNN course notebooks") -> str:
    """Return the gallery page: one table row per notebook, linking its HTML.

    >>> "01.html" in index_html([NotebookResult("01.ipynb", "notebooks/01.html", 1.0)])
    True
    """
    esc = html.escape
    failed = sum(not r.ok for r in results)
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = []
    for r in results:
        cls = "ok" if r.ok else "failed"
        rows.append(
            "<tr>"
            f'<td><a href="{esc(r.html_path)}">{esc(r.name)}</a></td>'
            f"<td>{esc(r.value('profile'))}</td><td>{esc(r.value('data'))}</td>"
            f"<td>{esc(r.value('device'))}</td><td>{esc(format_duration(r.wall_s))}</td>"
            f'<td class="{cls}">{esc(r.status)}</td>'
            "</tr>"
        )
    header = "".join(f"<th>{esc(h.capitalize())}</th>" for h in SUMMARY_HEADERS)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{INDEX_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{len(results)} notebooks, {failed} failed. Executed {stamp}.</p>',
        f"<table>\n<thead><tr>{header}</tr></thead>",
        "<tbody>", *rows, "</tbody>",
        "</table>",
        "</body>",
        "</html>",
        "",
    ])


def cmd_run(args: argparse.Namespace) -> int:
    """``course run``: execute every notebook, render HTML, write the gallery."""
    notebooks = find_notebooks(args.notebook_dir)
    if not notebooks:
        print(f"course run: no notebooks (*.ipynb) in {args.notebook_dir}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    overrides = dict(RUN_ENV)
    if args.profile:
        overrides["COURSE_PROFILE"] = args.profile
    env = kernel_env(overrides)

    print(f"Running {len(notebooks)} notebooks from {args.notebook_dir} into {out_dir}/",
          flush=True)
    results = [run_one(path, out_dir, args.timeout, env, label=f"[{i}/{len(notebooks)}]")
               for i, path in enumerate(notebooks, start=1)]

    index = out_dir / "index.html"
    index.write_text(index_html(results), encoding="utf-8")
    failed = [r for r in results if not r.ok]
    print()
    print(format_table(SUMMARY_HEADERS, summary_rows(results)))
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed. Gallery: {index}")
    return 1 if failed else 0


# ----------------------------------------------------------------------- course refresh


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


def strip_outputs(nb: NotebookNode) -> NotebookNode:
    """Strip a notebook for committing, in place, and return it.

    Checked cells (tagged ``nbval-check-output``) keep their text outputs and their
    execution count (nbval only compares cells that have one); every other code cell
    loses its outputs and execution count. Widget state and execution timing
    metadata are removed.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "print(1)", execution_count=1,
    ...     outputs=[nbformat.v4.new_output("stream", text="1\\n")])])
    >>> strip_outputs(nb).cells[0].outputs
    []
    """
    drop_run_metadata(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            cell.outputs = text_outputs(cell.outputs)
        else:
            cell.outputs = []
            cell.execution_count = None
    return nb


def refresh_one(path: Path, timeout: int, env: dict[str, str], label: str = "") -> str | None:
    """Re-execute one notebook and write it back stripped; return the error, if any.

    On failure the file is left untouched, so nothing stored is lost.

    >>> refresh_one(Path("notebooks/01_intro.ipynb"), 600,
    ...             kernel_env(REFRESH_ENV))  # doctest: +SKIP
    """
    nb = nbformat.read(path, as_version=4)
    prefix = f"{label} {path.name}:".strip()
    start = time.perf_counter()
    error = execute_notebook(nb, path.parent, timeout, env, on_cell=_progress(prefix))
    wall = format_duration(time.perf_counter() - start)
    _end_progress()
    if error:
        print(f"{prefix} FAILED ({error}) in {wall}; file left unchanged", flush=True)
        return error
    strip_outputs(nb)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    checked = sum(is_checked(c) for c in nb.cells)
    print(f"{prefix} refreshed in {wall} ({checked} checked cells)", flush=True)
    return None


def cmd_refresh(args: argparse.Namespace) -> int:
    """``course refresh``: re-execute in the smoke profile, keep checked outputs only."""
    notebooks = find_notebooks(args.notebook_dir)
    if not notebooks:
        print(f"course refresh: no notebooks (*.ipynb) in {args.notebook_dir}",
              file=sys.stderr)
        return 2
    env = kernel_env(REFRESH_ENV)
    errors = [refresh_one(path, args.timeout, env, label=f"[{i}/{len(notebooks)}]")
              for i, path in enumerate(notebooks, start=1)]
    failed = sum(e is not None for e in errors)
    print(f"\n{len(notebooks) - failed} refreshed, {failed} failed.")
    return 1 if failed else 0


# -------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """Return the ``course`` argument parser."""
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="execute every notebook, render HTML and a gallery")
    run.add_argument("notebook_dir", nargs="?", type=Path, default=Path("notebooks"),
                     help="folder with the notebooks (default: notebooks)")
    run.add_argument("--out", type=Path, default=Path("build"),
                     help="output folder (default: build)")
    run.add_argument("--timeout", type=int, default=1800,
                     help="per-cell timeout in seconds (default: 1800)")
    run.add_argument("--profile", choices=("smoke", "quick", "full", "auto"), default=None,
                     help="set COURSE_PROFILE for the kernels (default: leave it alone, "
                          "so the notebooks use $COURSE_PROFILE or auto)")
    run.set_defaults(func=cmd_run)

    refresh = commands.add_parser(
        "refresh", help="re-execute in the smoke profile and keep only checked outputs")
    refresh.add_argument("notebook_dir", nargs="?", type=Path, default=Path("notebooks"),
                         help="folder with the notebooks (default: notebooks)")
    refresh.add_argument("--timeout", type=int, default=600,
                         help="per-cell timeout in seconds (default: 600)")
    refresh.set_defaults(func=cmd_refresh)

    # Imported here, not at the top: both modules build on this one's helpers.
    from course_utils import release, verify

    release.add_parser(commands)
    verify.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``course`` console script; returns the exit status.

    >>> main(["run", "no-such-folder"])  # doctest: +SKIP
    2
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
