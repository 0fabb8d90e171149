"""``course run``: execute every notebook into a build folder and write an HTML gallery.

``course run`` executes every notebook (in its own folder, with a fresh kernel) into
``build/notebooks/``, renders each one to HTML and writes ``build/index.html``, a
gallery with one row per notebook: profile, data source and device (read from the
notebook's run record), wall time and status. A failing notebook does not stop the
others; the command exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbformat import NotebookNode

from course_utils.instructor.notebook_io import (MISSING, end_progress, find_notebooks,
                                                 find_run_record, format_duration,
                                                 format_table, progress_printer)
from course_utils.notebooks import describe_error, execute_notebook, kernel_env

# Environment for kernels started by `course run`: static figures, no live updates.
# The profile is deliberately not set: notebooks default to `auto`.
RUN_ENV = {"COURSE_LIVE_PLOT": "0"}


def render_html(nb: NotebookNode) -> str:
    """Render a notebook to a standalone HTML page with nbconvert.

    >>> "<html" in render_html(nbformat.v4.new_notebook())
    True
    """
    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


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
    error = execute_notebook(nb, path.parent, timeout, env, on_cell=progress_printer(prefix))
    wall_s = time.perf_counter() - start
    end_progress()

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


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``course run`` to the ``course`` command's sub-commands."""
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
