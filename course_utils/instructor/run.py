"""``course run``: execute every notebook into a build folder and write an HTML gallery.

``course run`` executes every notebook (in its own folder, with a fresh kernel) into
``build/notebooks/``, renders each one to HTML and writes:

- ``build/index.html``, a gallery with one row per notebook: its title, profile, data
  source and device (read from the notebook's run record), wall time, status and key
  results (the ``name: value`` lines its cells tagged ``result`` print);
- ``build/results.json`` and ``build/results.md``: the same facts per notebook, for
  tables generated from a build (the README's) and for the student README's CPU times.

The HTML pages work offline: MathJax is copied from the ``jupyter-server-mathjax``
package into ``build/assets/mathjax/`` and the pages load it from there; widgets, which
need a live kernel, are shown as a short static note (every widget in the course is
followed by a static figure). Each page's title is the notebook's H1 heading. A failing
notebook does not stop the others; the command exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import html
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbformat import NotebookNode

from course_utils.instructor.notebook_io import (
    MISSING,
    add_notebook_dir_argument,
    end_progress,
    find_notebooks,
    find_run_record,
    format_duration,
    format_table,
    key_results,
    notebook_title,
    progress_printer,
)
from course_utils.notebooks import describe_error, execute_notebook, kernel_env

# Environment for kernels started by `course run`: static figures, no live updates, and
# every finding a notebook claims for this run checked (course_utils.findings).
# The profile is deliberately not set: notebooks default to `auto`.
RUN_ENV = {"COURSE_LIVE_PLOT": "0", "COURSE_CHECK_FINDINGS": "1"}


# HTML pages load MathJax from this folder of the build, copied from jupyter-server-mathjax.
MATHJAX_DIR = Path("assets") / "mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # the configurations that package ships
TEMPLATES = Path(__file__).with_name("templates")  # "offline": lab without CDN scripts
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    "[interactive widget: it works when the notebook runs in Jupyter; the "
    "static figure after it shows fixed values]"
)
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


def copy_mathjax(out_dir: Path) -> str | None:
    """Copy MathJax into ``out_dir/assets/mathjax``; return its path relative to ``out_dir``.

    Returns ``None`` (and the pages then load MathJax from a CDN) when the
    ``jupyter-server-mathjax`` package (instructor extra) is not installed.
    """
    spec = find_spec("jupyter_server_mathjax")
    if spec is None or spec.origin is None:
        print(
            "NOTICE: jupyter-server-mathjax is not installed (pip install -e '.[dev]'), so "
            "the HTML pages load MathJax from a CDN and show raw LaTeX offline."
        )
        return None
    target = out_dir / MATHJAX_DIR
    if not (target / "MathJax.js").is_file():
        shutil.copytree(Path(spec.origin).parent / "static", target, dirs_exist_ok=True)
    return (MATHJAX_DIR / "MathJax.js").as_posix()


def static_widgets(nb: NotebookNode) -> NotebookNode:
    """Return a copy of ``nb`` whose widget views are a static note, without widget state.

    A saved widget needs a kernel to do anything, and its renderer comes from a CDN.

    >>> view = nbformat.v4.new_output("display_data", data={
    ...     WIDGET_VIEW: {"model_id": "m"}, "text/plain": "IntSlider(value=3)"})
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[view])],
    ...                               metadata={"widgets": {}})
    >>> static = static_widgets(nb)
    >>> static.cells[0].outputs[0].data["text/plain"] == WIDGET_NOTE, "widgets" in static.metadata
    (True, False)
    """
    static = copy.deepcopy(nb)
    static.metadata.pop("widgets", None)
    for cell in static.cells:
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                output["data"] = {"text/plain": WIDGET_NOTE}
    return static


def render_html(nb: NotebookNode, mathjax_url: str | None = None) -> str:
    """Render a notebook to a standalone HTML page titled with its H1 heading.

    ``mathjax_url`` is where the page loads MathJax from (relative to the page); by
    default nbconvert's CDN. Widgets become a static note (:func:`static_widgets`).

    >>> page = render_html(nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_markdown_cell("# Convolution arithmetic")]), "../mathjax.js")
    >>> "<title>Convolution arithmetic</title>" in page, 'src="../mathjax.js?' in page
    (True, True)
    """
    options = {"mathjax_url": f"{mathjax_url}?config={MATHJAX_CONFIG}"} if mathjax_url else {}
    exporter = HTMLExporter(
        template_name="offline", extra_template_basedirs=[str(TEMPLATES)], **options
    )
    title = notebook_title(nb)
    body, _ = exporter.from_notebook_node(
        static_widgets(nb), resources={"metadata": {"name": title}}
    )
    return body


@dataclass
class NotebookResult:
    """The outcome of running one notebook."""

    name: str
    html_path: str  # relative to the output folder
    wall_s: float
    error: str | None = None
    record: dict[str, str] = field(default_factory=dict)
    title: str = ""
    results: dict[str, str] = field(default_factory=dict)  # the key results it printed

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
    return [
        [
            r.name,
            r.value("profile"),
            r.value("data"),
            r.value("device"),
            format_duration(r.wall_s),
            r.status,
        ]
        for r in results
    ]


def run_one(
    path: Path,
    out_dir: Path,
    timeout: int,
    env: dict[str, str],
    label: str = "",
    mathjax_url: str | None = None,
) -> NotebookResult:
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
    # The page sits in out_dir/notebooks/, the MathJax copy under out_dir.
    page_mathjax = f"../{mathjax_url}" if mathjax_url else None
    try:
        html_file.write_text(render_html(nb, page_mathjax), encoding="utf-8")
    except Exception as exc:  # a rendering bug should not hide the run's result
        error = error or f"HTML rendering failed: {describe_error(exc)}"
    result = NotebookResult(
        path.name,
        html_file.relative_to(out_dir).as_posix(),
        wall_s,
        error,
        find_run_record(nb),
        notebook_title(nb, path.stem),
        key_results(nb),
    )
    print(f"{prefix} {result.status} in {format_duration(wall_s)}", flush=True)
    return result


INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem;
       padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid #ddd;
         vertical-align: top; }
th { background: #f4f4f4; }
td.ok { color: #17702c; font-weight: 600; }
td.failed { color: #b3261e; font-weight: 600; }
ul.results { margin: 0; padding-left: 1rem; }
.meta, .file { color: #666; }
"""
GALLERY_HEADERS = ("Notebook", "Profile", "Data", "Device", "Wall time", "Status", "Key results")


def machine_description() -> str:
    """Where this build ran, for people: cores, architecture, operating system.

    >>> "core" in machine_description()
    True
    """
    return f"{os.cpu_count()}-core {platform.machine()} machine ({platform.system()})"


def index_html(results: Sequence[NotebookResult], title: str = "CNN course notebooks") -> str:
    """Return the gallery page: one table row per notebook, linking its HTML.

    >>> page = index_html([NotebookResult("01.ipynb", "notebooks/01.html", 1.0,
    ...                                   title="Intro", results={"test_acc": "0.91"})])
    >>> 'href="notebooks/01.html">Intro' in page, "<li>test_acc: 0.91</li>" in page
    (True, True)
    """
    esc = html.escape
    failed = sum(not r.ok for r in results)
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    rows = []
    for r in results:
        cls = "ok" if r.ok else "failed"
        found = "".join(f"<li>{esc(name)}: {esc(value)}</li>" for name, value in r.results.items())
        key = f'<ul class="results">{found}</ul>' if found else MISSING
        rows.append(
            "<tr>"
            f'<td><a href="{esc(r.html_path)}">{esc(r.title or r.name)}</a><br>'
            f'<span class="file">{esc(r.name)}</span></td>'
            f"<td>{esc(r.value('profile'))}</td><td>{esc(r.value('data'))}</td>"
            f"<td>{esc(r.value('device'))}</td><td>{esc(format_duration(r.wall_s))}</td>"
            f'<td class="{cls}">{esc(r.status)}</td><td>{key}</td>'
            "</tr>"
        )
    header = "".join(f"<th>{esc(h)}</th>" for h in GALLERY_HEADERS)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{esc(title)}</title>",
            f"<style>{INDEX_STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{esc(title)}</h1>",
            f'<p class="meta">{len(results)} notebooks, {failed} failed. Executed {stamp} on a '
            f'{esc(machine_description())}. Summary: <a href="{RESULTS_MD}">{RESULTS_MD}</a>, '
            f'<a href="{RESULTS_JSON}">{RESULTS_JSON}</a>.</p>',
            f"<table>\n<thead><tr>{header}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "</body>",
            "</html>",
            "",
        ]
    )


def results_summary(results: Sequence[NotebookResult]) -> dict:
    """The build's results as JSON-ready data: when, where, and one entry per notebook.

    >>> summary = results_summary([NotebookResult("01.ipynb", "notebooks/01.html", 2.5,
    ...     record={"profile": "quick", "device": "cpu"}, results={"test_acc": "0.91"})])
    >>> entry = summary["notebooks"][0]
    >>> entry["status"], entry["profile"], entry["wall_s"], entry["results"]
    ('ok', 'quick', 2.5, {'test_acc': '0.91'})
    """
    return {
        "executed": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_description(),
        "notebooks": [
            {
                "name": r.name,
                "title": r.title,
                "html": r.html_path,
                "status": "ok" if r.ok else "failed",
                "error": r.error,
                "wall_s": round(r.wall_s, 1),
                **{key: r.value(key) for key in ("profile", "data", "device")},
                "results": r.results,
            }
            for r in results
        ],
    }


def results_markdown(summary: dict) -> str:
    """Render :func:`results_summary` as Markdown: an overview, then each notebook's
    key results.

    >>> print(results_markdown(results_summary([NotebookResult("01.ipynb", "n/01.html", 2.0,
    ...     title="Intro", results={"test_acc": "0.91"})])).split("## ")[-1])
    Intro (`01.ipynb`)
    <BLANKLINE>
    | result | value |
    | --- | --- |
    | test_acc | 0.91 |
    <BLANKLINE>
    """

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [
        "# Results of `course run`",
        "",
        f"Executed {summary['executed']} on a {summary['machine']}.",
        "",
        row(["notebook", "profile", "data", "device", "wall time", "status"]),
        row(["---"] * 6),
    ]
    for nb in summary["notebooks"]:
        lines.append(
            row(
                [
                    f"`{nb['name']}`",
                    nb["profile"],
                    nb["data"],
                    nb["device"],
                    format_duration(nb["wall_s"]),
                    nb["status"],
                ]
            )
        )
    for nb in summary["notebooks"]:
        lines += ["", f"## {nb['title'] or nb['name']} (`{nb['name']}`)", ""]
        if nb["results"]:
            lines += [
                row(["result", "value"]),
                row(["---"] * 2),
                *(row([name, value]) for name, value in nb["results"].items()),
            ]
        else:
            lines.append("No key results (no `result`-tagged cell printed `name: value`).")
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[NotebookResult], out_dir: Path) -> dict:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; return the summary."""
    summary = results_summary(results)
    (out_dir / RESULTS_JSON).write_text(
        json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / RESULTS_MD).write_text(results_markdown(summary), encoding="utf-8")
    return summary


README_BEGIN = "<!-- results of course run: begin (course readme writes this part) -->"
README_END = "<!-- results of course run: end -->"


def splice_results(readme: str, results_md: str) -> str:
    """Replace the part of ``readme`` between the result markers with ``results_md``.

    The results' own headings move down two levels, so they sit under the README's
    section, and its H1 is dropped.

    >>> readme = f"# Pack\\n{README_BEGIN}\\nold\\n{README_END}\\nrest\\n"
    >>> print(splice_results(readme, "# Results\\n\\n## a1_t1\\n\\n| x | 1 |\\n"))
    # Pack
    <!-- results of course run: begin (course readme writes this part) -->
    #### a1_t1
    <BLANKLINE>
    | x | 1 |
    <!-- results of course run: end -->
    rest
    <BLANKLINE>
    >>> splice_results("no markers", "x")
    Traceback (most recent call last):
    ...
    ValueError: the README has no results part: put the two marker lines ...
    """
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(
            "the README has no results part: put the two marker lines "
            f"{README_BEGIN!r} and {README_END!r} where the results go."
        )
    body = [
        f"##{line}" if line.startswith("#") else line
        for line in results_md.strip().splitlines()
        if not line.startswith("# ")
    ]
    while body and not body[0].strip():
        body.pop(0)
    return readme[: begin + len(README_BEGIN)] + "\n" + "\n".join(body) + "\n" + readme[end:]


def cmd_readme(args: argparse.Namespace) -> int:
    """``course readme``: write a build's results into the README (never typed by hand)."""
    results = Path(args.results)
    if not results.is_file():
        print(f"course readme: {results} not found; run `course run` first.", file=sys.stderr)
        return 2
    summary = json.loads(results.read_text(encoding="utf-8"))
    readme = Path(args.readme)
    try:
        text = splice_results(readme.read_text(encoding="utf-8"), results_markdown(summary))
    except ValueError as error:
        print(f"course readme: {readme}: {error}", file=sys.stderr)
        return 1
    readme.write_text(text, encoding="utf-8")
    print(f"{readme}: results of the build of {summary['executed']} written")
    return 0


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

    print(
        f"Running {len(notebooks)} notebooks from {args.notebook_dir} into {out_dir}/", flush=True
    )
    mathjax_url = copy_mathjax(out_dir)
    results = [
        run_one(
            path,
            out_dir,
            args.timeout,
            env,
            label=f"[{i}/{len(notebooks)}]",
            mathjax_url=mathjax_url,
        )
        for i, path in enumerate(notebooks, start=1)
    ]

    index = out_dir / "index.html"
    index.write_text(index_html(results), encoding="utf-8")
    write_results(results, out_dir)
    failed = [r for r in results if not r.ok]
    print()
    print(format_table(SUMMARY_HEADERS, summary_rows(results)))
    print(
        f"\n{len(results) - len(failed)} passed, {len(failed)} failed. Gallery: {index}; "
        f"results: {out_dir / RESULTS_MD}"
    )
    return 1 if failed else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``course run`` to the ``course`` command's sub-commands."""
    run = commands.add_parser("run", help="execute every notebook, render HTML and a gallery")
    add_notebook_dir_argument(run)
    run.add_argument(
        "--out", type=Path, default=Path("build"), help="output folder (default: build)"
    )
    run.add_argument(
        "--timeout", type=int, default=1800, help="per-cell timeout in seconds (default: 1800)"
    )
    run.add_argument(
        "--profile",
        choices=("smoke", "quick", "full", "auto"),
        default=None,
        help="set COURSE_PROFILE for the kernels (default: leave it alone, "
        "so the notebooks use $COURSE_PROFILE or auto)",
    )
    run.set_defaults(func=cmd_run)

    readme = commands.add_parser(
        "readme", help="write a build's results.json into the README's results part"
    )
    readme.add_argument(
        "--results",
        type=Path,
        default=Path("build") / RESULTS_JSON,
        help=f"the build's results (default: build/{RESULTS_JSON})",
    )
    readme.add_argument(
        "--readme", type=Path, default=Path("README.md"), help="(default: README.md)"
    )
    readme.set_defaults(func=cmd_readme)
