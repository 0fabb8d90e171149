"""The gradebook: a CSV row and a report section per submission, never lost.

Three files sit side by side: ``gradebook.csv`` (one row per submission),
``gradebook.md`` (a readable report) and ``gradebook.json`` (every verdict in full,
what a rerun resumes from). After each finished submission all three are rewritten
through a temporary file and :func:`os.replace`, so an interrupted batch keeps every
finished row and no reader ever sees half a file. A rerun skips a submission whose file
hash and course version match its row.

Everything a submission controls is bounded and escaped. :func:`bounded` caps each text
(notes, error messages, diffs, result values, written answers, figures) before a verdict
is kept, and says where it cut (``… [cut at N characters]``), so the three files stay
small whatever a submission prints; file names are bounded by the file system. CSV
cells that a spreadsheet would read as a formula get a leading ``'``; Markdown gets no
line breaks, pipes or markup from it. The result columns are the templates' result
names, never a name a submission prints.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from course_utils.instructor.notebook_io import format_duration
from course_utils.instructor.verify.similarity import SimilarPair, release_tokens, similar_pairs
from course_utils.instructor.verify.template import Template
from course_utils.instructor.verify.verdict import INVALID, STATUSES, CellCheck, Limits, Verdict

# Caps on what a submission controls, in characters unless said otherwise.
TEXT_CAP = 500  # a note, an error message, a result value, a cell title
DIFF_CAP = 4_000  # one checked cell's diff (six changed lines of normal width fit)
ENTRIES_CAP = 20  # error messages kept per list; the rest are counted
ANSWER_CAP = 20_000  # one written answer, as verify collects them
FIGURES_CAP = 3 * 2**20  # base64 of a submission's figures together (about 2.3 MB of PNG)
CUT_ENTRIES = re.compile(r"^… (\d+) more \[cut at \d+ entries\]$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~!])")
FIXED_COLUMNS = (
    "submission",
    "template",
    "status",
    "score",
    "max_score",
    "note",
    "in_order",
    "errors",
    "stored_errors",
    "checked_cells",
    "passed_cells",
    "mismatched_cells",
    "similar_to",
    "wall_s",
    "sandbox",
    "sha256",
    "course_version",
)


class GradebookError(ValueError):
    """The gradebook cannot be written where it was asked for."""


def csv_cell(value: str) -> str:
    """Escape a value against formula injection (OWASP): a leading ``'`` where needed.

    >>> csv_cell('=HYPERLINK("http://x")'), csv_cell("-0.25"), csv_cell("ok")
    ('\\'=HYPERLINK("http://x")', '-0.25', 'ok')
    """
    if value.startswith(FORMULA_START) and not PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def md(text: str) -> str:
    """Escape text for one line of Markdown: no line breaks, no markup, no table pipes.

    >>> md("a|b\\n## c *d*")
    'a\\\\|b \\\\#\\\\# c \\\\*d\\\\*'
    """
    return MARKDOWN_SPECIAL.sub(r"\\\1", re.sub(r"[\r\n\u2028\u2029]+", " ", text))


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``.

    >>> fence("a ``` b")
    '````'
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def cut(text: str, limit: int = TEXT_CAP) -> str:
    """``text``, or its first ``limit`` characters and where it was cut.

    >>> cut("x" * 12, 5)
    'xxxxx… [cut at 5 characters]'
    >>> cut("short", 5)
    'short'
    """
    return text if len(text) <= limit else f"{text[:limit]}… [cut at {limit} characters]"


def cut_entries(entries: Sequence[str]) -> list[str]:
    """At most :data:`ENTRIES_CAP` entries, each cut, then one saying how many more.

    >>> cut_entries(["cell 1: ValueError"] * 25)[-1]
    '… 5 more [cut at 20 entries]'
    """
    kept = [cut(entry) for entry in entries[:ENTRIES_CAP]]
    more = len(entries) - ENTRIES_CAP
    return [*kept, f"… {more} more [cut at {ENTRIES_CAP} entries]"] if more > 0 else kept


def entry_count(entries: Sequence[str]) -> int:
    """How many entries a list held before :func:`cut_entries`.

    >>> entry_count(cut_entries(["e"] * 25)), entry_count(["e"])
    (25, 1)
    """
    found = CUT_ENTRIES.match(entries[-1]) if entries else None
    return len(entries) - 1 + int(found.group(1)) if found else len(entries)


def cut_figures(figures: Sequence[dict]) -> tuple[list[dict], int]:
    """The figures that fit in :data:`FIGURES_CAP`, in order, and how many did not.

    >>> kept, dropped = cut_figures([{"png": "a" * FIGURES_CAP}, {"png": "b"}, {"png": "c"}])
    >>> [len(figure["png"]) for figure in kept], dropped
    ([3145728], 2)
    """
    kept, used = [], 0
    for figure in figures:
        size = len(str(figure.get("png", "")))
        if used + size <= FIGURES_CAP:
            kept.append(figure)
            used += size
    return kept, len(figures) - len(kept)


def bounded(verdict: Verdict) -> Verdict:
    """A copy of ``verdict`` with every text the submission controls cut to its cap.

    >>> long = bounded(Verdict("a.ipynb", "ERROR", "x" * 10**6, errors=["cell 1: " + "y" * 10**6]))
    >>> len(long.note), long.errors[0][-25:]
    (525, '… [cut at 500 characters]')
    """
    figures, dropped = cut_figures(verdict.figures)
    note = cut(verdict.note)
    if dropped:
        note += f"; {dropped} figures left out of the gradebook (cut at {FIGURES_CAP} characters)"
    return dataclasses.replace(
        verdict,
        note=note,
        stored_errors=cut_entries(verdict.stored_errors),
        errors=cut_entries(verdict.errors),
        checks=[
            dataclasses.replace(
                check, title=cut(check.title), diff=cut(check.diff, DIFF_CAP), hint=cut(check.hint)
            )
            for check in verdict.checks
        ],
        results={cut(name): cut(value) for name, value in verdict.results.items()},
        answers={key: cut(text, ANSWER_CAP) for key, text in verdict.answers.items()},
        figures=figures,
    )


def result_columns(templates: Iterable[Template]) -> list[str]:
    """``result:<name>`` for every result name of the templates, in order.

    >>> result_columns([])
    []
    """
    return [
        f"result:{name}"
        for name in dict.fromkeys(name for template in templates for name in template.result_names)
    ]


def row(verdict: Verdict, columns: Sequence[str]) -> dict[str, str]:
    """The gradebook row of one verdict, escaped.

    >>> row(Verdict("a.ipynb", "verified", "ok", results={"acc": "=1+1"}), ["result:acc"])
    {'submission': 'a.ipynb', 'template': '', 'status': 'verified', 'score': '0', ...}
    """
    readable = verdict.status != INVALID
    values = {
        "submission": verdict.submission,
        "template": verdict.template,
        "status": verdict.status,
        "score": f"{verdict.score:g}",
        "max_score": f"{verdict.max_score:g}",
        "note": verdict.note,
        "in_order": verdict.in_order,
        "errors": str(entry_count(verdict.errors)) if readable else "",
        "stored_errors": str(entry_count(verdict.stored_errors)) if readable else "",
        "checked_cells": str(sum(c.kind == "checked" for c in verdict.checks)),
        "passed_cells": str(sum(c.passed for c in verdict.checks)),
        "mismatched_cells": " ".join(str(c.index) for c in verdict.mismatched),
        "similar_to": " ".join(verdict.similar_to),
        "wall_s": "" if verdict.wall_s is None else f"{verdict.wall_s:.1f}",
        "sandbox": verdict.sandbox,
        "sha256": verdict.sha256,
        "course_version": verdict.course_version,
    }
    values.update(
        {column: verdict.results.get(column.removeprefix("result:"), "") for column in columns}
    )
    return {key: csv_cell(value) for key, value in values.items()}


def to_csv(verdicts: Sequence[Verdict], columns: Sequence[str]) -> str:
    """The gradebook CSV."""
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=[*FIXED_COLUMNS, *columns])
    writer.writeheader()
    writer.writerows(row(verdict, columns) for verdict in verdicts)
    return handle.getvalue()


def section(verdict: Verdict) -> list[str]:
    """The report's section on one submission."""
    lines = [f"## {md(verdict.submission)}: {verdict.status}", "", md(verdict.note), ""]
    if verdict.status == INVALID:
        return lines
    wall = "-" if verdict.wall_s is None else format_duration(verdict.wall_s)
    results = ", ".join(f"{md(k)} = {md(v)}" for k, v in verdict.results.items()) or "none"
    lines += [
        f"- Template: {md(verdict.template)}; score {verdict.score:g} of {verdict.max_score:g}",
        f"- Executed top to bottom in order: {md(verdict.in_order)}",
        f"- Error outputs stored: {md('; '.join(verdict.stored_errors) or 'none')}",
        f"- Error outputs on re-execution: {md('; '.join(verdict.errors) or 'none')}",
        f"- Key results: {results}",
        f"- Wall time: {wall}; sandbox: {md(verdict.sandbox)}",
    ]
    if verdict.similar_to:
        lines.append(f"- Solution code alike: {md(', '.join(verdict.similar_to))}")
    if verdict.answers or verdict.figures:
        lines.append(
            f"- For grading by hand, in gradebook.json: {len(verdict.answers)} written "
            f"answers, {len(verdict.figures)} figures"
        )
    for check in verdict.checks:
        state = "passes" if check.passed else "fails" if check.ran else "did not run"
        if check.diff:
            state += ", stored output differs"
        points = f"{check.points:g} point{'' if check.points == 1 else 's'}"
        lines.append(f"  - {check.kind} {md(check.label())}, {points}: {state}")
        if check.diff:
            mark = fence(check.diff)
            lines += [
                "",
                f"    {mark}diff",
                *(f"    {d}" for d in check.diff.splitlines()),
                f"    {mark}",
                "",
            ]
    return [*lines, ""]


def to_markdown(
    verdicts: Sequence[Verdict],
    limits: Limits,
    sandbox: str,
    pairs: Sequence[SimilarPair] | None = None,
) -> str:
    """The readable report: settings, a summary table, alike pairs, one section each.

    ``pairs`` is ``None`` while the batch runs: alike code is compared at its end.
    """
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    counts = ", ".join(
        f"{sum(v.status == s for v in verdicts)} {s}"
        for s in STATUSES
        if any(v.status == s for v in verdicts)
    )
    lines = [
        "# Verification report",
        "",
        f"{len(verdicts)} submissions, {stamp}: {counts}.",
        "",
        f"Limits: {limits.describe()}; sandbox: {sandbox}.",
        "",
        "| submission | status | score | in order | errors | mismatched | wall time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        cells = row(v, [])
        lines.append(
            "| "
            + " | ".join(
                md(cell)
                for cell in (
                    v.submission,
                    v.status,
                    f"{cells['score']} / {cells['max_score']}",
                    cells["in_order"],
                    cells["errors"],
                    cells["mismatched_cells"],
                    cells["wall_s"] and f"{cells['wall_s']} s",
                )
            )
            + " |"
        )
    if pairs is None:
        alike = ["Compared when the batch ends."]
    else:
        alike = [f"- {md(pair.describe())}" for pair in pairs] or [
            "No two submissions have alike solution code."
        ]
    lines += ["", "## Alike solution code", "", *alike, ""]
    for verdict in verdicts:
        lines += section(verdict)
    return "\n".join(lines)


def mark_similar(
    verdicts: Sequence[Verdict], templates: Sequence[Template] = ()
) -> list[SimilarPair]:
    """Fill in ``similar_to`` for every verdict, comparing submissions of one template.

    The code the release of each of ``templates`` hands out does not count as alike.
    Returns the alike pairs.
    """
    for verdict in verdicts:
        verdict.similar_to = []
    by_template: dict[str, dict[str, Verdict]] = {}
    for verdict in verdicts:
        if verdict.template and verdict.tokens:
            by_template.setdefault(verdict.template, {})[verdict.submission] = verdict
    given = {template.path.name: template for template in templates}
    pairs = []
    for name, group in by_template.items():
        base = release_tokens(given[name]) if name in given else []
        for pair in similar_pairs({name: v.tokens for name, v in group.items()}, base=base):
            group[pair.first].similar_to.append(pair.second)
            group[pair.second].similar_to.append(pair.first)
            pairs.append(pair)
    return pairs


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then move it into place."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def verdict_from_dict(data: dict) -> Verdict:
    """Rebuild a verdict from its JSON form.

    >>> verdict_from_dict(dataclasses.asdict(Verdict("a", "verified", ""))).submission
    'a'
    """
    fields = {f.name for f in dataclasses.fields(Verdict)}
    values = {key: value for key, value in data.items() if key in fields}
    values["checks"] = [CellCheck(**check) for check in values.get("checks", [])]
    return Verdict(**values)


class Gradebook:
    """The three files of a gradebook, rewritten after each finished submission."""

    def __init__(self, csv_path: Path, templates: Sequence[Template], limits: Limits, sandbox: str):
        self.csv, self.templates, self.limits, self.sandbox = csv_path, templates, limits, sandbox
        self.markdown, self.state = csv_path.with_suffix(".md"), csv_path.with_suffix(".json")
        self.check_writable()
        self.verdicts: dict[str, Verdict] = {}
        self.pairs: list[SimilarPair] | None = None  # alike code, once the batch has ended
        if self.state.is_file():
            rows = json.loads(self.state.read_text(encoding="utf-8"))
            # Bounded again: a gradebook written before the caps may hold anything.
            verdicts = (bounded(verdict_from_dict(row)) for row in rows)
            self.verdicts = {verdict.submission: verdict for verdict in verdicts}

    def check_writable(self) -> None:
        """Fail before the batch starts where the gradebook cannot be written."""
        for path in (self.csv, self.markdown, self.state):
            if path.exists() and not path.is_file():
                raise GradebookError(
                    f"{path} exists and is not a file: remove it or pass another --out"
                )
        try:
            self.csv.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.csv.parent):
                pass
        except OSError as exc:
            raise GradebookError(
                f"cannot write the gradebook in {self.csv.parent} "
                f"({exc.strerror}): pass another --out"
            ) from None

    def graded(self, submission: str, sha256: str, versions: set[str]) -> bool:
        """Whether the gradebook has this file, same hash, graded with the current course."""
        done = self.verdicts.get(submission)
        return (
            done is not None
            and done.sha256 == sha256
            and bool(sha256)
            and done.course_version in versions
            and done.status != INVALID
        )

    def add(self, verdict: Verdict) -> None:
        """Record one finished submission and rewrite the three files."""
        self.verdicts[verdict.submission] = bounded(verdict)
        self.write(final=False)

    def write(self, final: bool = True) -> None:
        """Rewrite the CSV, the report and the state, each atomically.

        Alike code is compared only in the ``final`` write: every pair of a class, once.
        """
        verdicts = list(self.verdicts.values())
        if final:
            self.pairs = mark_similar(verdicts, self.templates)
        atomic_write(self.state, json.dumps([dataclasses.asdict(v) for v in verdicts]))
        used = {verdict.template for verdict in verdicts}
        columns = result_columns(t for t in self.templates if t.path.name in used)
        atomic_write(self.csv, to_csv(verdicts, columns))
        atomic_write(self.markdown, to_markdown(verdicts, self.limits, self.sandbox, self.pairs))
