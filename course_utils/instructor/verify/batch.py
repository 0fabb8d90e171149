"""Grading a batch: one submission end to end, then many on a local pool or a Dask cluster.

One submission: align it with its template, run the notebook to run in the sandboxed
kernel while the grader runs the graded cells and hidden tests in its own process
(:mod:`.grader`), then compare (:mod:`.compare`) and keep what people grade by hand: the
written answers and the figures the sandboxed run drew.

:func:`verify_bytes` is the unit of work: a submission's name and bytes in, a
:class:`.Verdict` out; it never raises, so one bad file cannot stop a batch. It needs no
file of the submission's on the machine that runs it, so a Dask worker can run it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

import course_utils
from course_utils.instructor.notebook_io import format_duration
from course_utils.instructor.release import TEXT_STUB
from course_utils.instructor.verify.compare import (
    REFERENCE_KEY,
    grade_cells,
    graded_here,
    key_results,
)
from course_utils.instructor.verify.grader import GradingSession
from course_utils.instructor.verify.proxy import Channel
from course_utils.instructor.verify.sandbox import Execution, run_sandboxed
from course_utils.instructor.verify.submission import (
    InvalidSubmission,
    error_outputs,
    execution_order,
    parse_submission,
    read_submission,
    solution_tokens,
)
from course_utils.instructor.verify.template import (
    ANSWER,
    RESULT,
    TEMPLATE_ID_KEY,
    Alignment,
    Template,
    align,
    cell_role,
    match_template,
)
from course_utils.instructor.verify.verdict import (
    ERROR,
    INVALID,
    MEMORY,
    MISMATCH,
    TAMPERED,
    TIMEOUT,
    VERIFIED,
    Limits,
    Verdict,
)
from course_utils.notebooks import describe_error

ERROR_WIDTH = 100  # characters of an error message in a note (PyTorch's run long)
MAX_ANSWER_CHARS = 20_000  # of one written answer
MAX_FIGURES = 30  # PNG figures kept of one submission
MAX_FIGURE_CHARS = 2**20  # base64 characters of one figure
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# How a memory limit shows up: Python's MemoryError, PyTorch's and NumPy's messages.
OUT_OF_MEMORY = re.compile(
    r"^MemoryError|can't allocate memory|out of memory|"
    r"Unable to allocate",
    re.IGNORECASE,
)


@functools.cache
def package_digest() -> str:
    """SHA-256 over the course package's Python files: part of the course version."""
    digest = hashlib.sha256()
    root = Path(course_utils.__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def course_version(template: Template) -> str:
    """What a grade depends on besides the submission: the template and the package.

    >>> len(course_version(Template(Path("t.ipynb"), nbformat.v4.new_notebook())))
    16
    """
    text = nbformat.writes(template.nb)
    return hashlib.sha256((text + package_digest()).encode()).hexdigest()[:16]


def clip(text: str, width: int = ERROR_WIDTH) -> str:
    """Shorten ``text`` to at most ``width`` characters.

    >>> clip("result = convolve2d(image, kernel, padding=1)", 20)
    'result = convolve...'
    """
    return text if len(text) <= width else text[: width - 3] + "..."


def is_out_of_memory(error: str) -> bool:
    """Whether an error message says that memory ran out.

    >>> is_out_of_memory("cell 3: MemoryError"), is_out_of_memory("cell 3: KeyError: 'x'")
    (True, False)
    """
    return bool(OUT_OF_MEMORY.search(error.split(": ", 1)[-1]))


def judge(run: Execution, verdict: Verdict, limits: Limits) -> tuple[str, str]:
    """Return the status and a one-line note for a re-execution's outcome."""
    where = f"cell {run.cell}" if run.cell is not None else "kernel start"
    if run.killed:
        return TIMEOUT, (
            f"stopped by the notebook time limit ({limits.notebook_timeout} s) in {where}"
        )
    if run.error and run.error.startswith("CellTimeoutError"):
        return TIMEOUT, f"{where} exceeded the cell time limit ({limits.cell_timeout} s)"
    memory = [error for error in verdict.errors if is_out_of_memory(error)]
    if memory or run.out_of_memory:
        cell, _, message = (memory[0] if memory else f"{where}: killed").partition(": ")
        return MEMORY, (
            f"{cell} ran out of memory (limit {limits.memory_mb} MB): {message.partition(':')[0]}"
        )
    if run.notebook is None:
        lines = (run.error or run.log).strip().splitlines()
        return ERROR, f"the verifier failed: {lines[-1] if lines else 'no output'}"
    if run.error:
        return ERROR, f"{where}: {run.error}"
    if verdict.errors:
        return ERROR, f"{len(verdict.errors)} errors, the first in {clip(verdict.errors[0])}"
    if verdict.mismatched:
        return MISMATCH, "does not reproduce: " + "; ".join(
            check.label() for check in verdict.mismatched
        )
    failed = [check.label() for check in verdict.checks if not check.passed]
    passed = f"{len(verdict.checks) - len(failed)} of {len(verdict.checks)} graded cells pass"
    return VERIFIED, (
        f"outputs reproduce; {passed}" + (f" (not: {'; '.join(failed)})" if failed else "")
    )


def verify_bytes(
    name: str,
    data: bytes,
    templates: Sequence[Template],
    limits: Limits,
    patterns: Sequence[tuple[str, str]],
    unsafe: bool = False,
) -> Verdict:
    """Verify one submission given as bytes; never raises.

    >>> verdict = verify_bytes("a.ipynb", b"not json", [], Limits(), [])
    >>> verdict.status, verdict.note[:30]
    ('INVALID', 'not a notebook: the file is no')
    """
    verdict = Verdict(
        name,
        INVALID,
        "",
        sha256=hashlib.sha256(data).hexdigest(),
        sandbox="none (unsafe)" if unsafe else "bwrap",
    )
    try:
        nb = parse_submission(data)
        template = match_template(Path(name).name, nb, templates)
    except InvalidSubmission as exc:
        verdict.note = str(exc)
        return verdict
    verdict.template, verdict.course_version = template.path.name, course_version(template)
    verdict.in_order, verdict.stored_errors = execution_order(nb), error_outputs(nb)
    alignment = align(template, nb)
    verdict.tokens = solution_tokens(alignment.student_code)
    verdict.answers = written_answers(alignment)
    stored = alignment.by_template_id  # alignment.nb is the submission itself
    verdict.checks = grade_cells(template, stored, None, patterns)
    if alignment.problems:
        verdict.status, verdict.note = TAMPERED, "; ".join(alignment.problems)
        return verdict
    try:
        run, session = run_graded(template, alignment.run, submission_code(nb), limits, unsafe)
    except Exception as exc:  # a failure of the sandbox itself: report it, go on
        verdict.status, verdict.note = ERROR, f"the verifier failed: {describe_error(exc)}"
        return verdict
    verdict.wall_s = run.wall_s
    graded = session.graded if session is not None else {}
    hidden = session.hidden if session is not None else {}
    verdict.checks = grade_cells(template, stored, run.notebook, patterns, graded, hidden)
    numbers = cell_numbers(alignment.run, template, nb)
    if run.cell is not None:
        run = dataclasses.replace(run, cell=numbers[run.cell])
    if run.notebook is not None:
        verdict.errors = [
            re.sub(r"^cell (\d+):", lambda m: f"cell {numbers[int(m[1])]}:", error)
            for error in error_outputs(run.notebook)
        ]
        verdict.results = key_results(template, run.notebook, graded)
        verdict.figures = figures(run.notebook)
    verdict.status, verdict.note = judge(run, verdict, limits)
    verdict.note = "; ".join([verdict.note, *alignment.notes])
    return verdict


def cell_numbers(
    run: nbformat.NotebookNode, template: Template, nb: nbformat.NotebookNode
) -> list[int]:
    """The number the report gives each cell of the notebook to run: the index of the
    template cell it stands for, else of the submission's cell, else its own.

    >>> cell = nbformat.v4.new_code_cell("x", metadata={TEMPLATE_ID_KEY: "t"})
    >>> template = Template(Path("t.ipynb"), nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("x")]))
    >>> template.nb.cells[1].id = "t"
    >>> cell_numbers(nbformat.v4.new_notebook(cells=[cell]), template, nbformat.v4.new_notebook())
    [1]
    """
    in_template = {cell.get("id"): index for index, cell in enumerate(template.nb.cells)}
    in_submission = {cell.get("id"): index for index, cell in enumerate(nb.cells)}
    return [
        in_template.get(
            cell.get("metadata", {}).get(TEMPLATE_ID_KEY), in_submission.get(cell.get("id"), index)
        )
        for index, cell in enumerate(run.cells)
    ]


def submission_code(nb: nbformat.NotebookNode) -> str:
    """Every code cell of a submission as handed in, for the hidden tests' static checks.

    >>> submission_code(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
    ...     nbformat.v4.new_markdown_cell("text"), nbformat.v4.new_code_cell("y = 2")]))
    'x = 1\\n\\ny = 2'
    """
    return "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")


def run_graded(
    template: Template, to_run: nbformat.NotebookNode, code: str, limits: Limits, unsafe: bool
) -> tuple[Execution, GradingSession | None]:
    """Run the notebook in the sandboxed kernel and the grader's cells here, beside it."""
    sessions: list[GradingSession] = []

    def grading(channel: Channel) -> GradingSession:
        sessions.append(GradingSession(template.nb, to_run, graded_here(template), code, channel))
        return sessions[-1]

    run = run_sandboxed(to_run, limits, unsafe=unsafe, grading=grading, inputs=template.inputs)
    return run, sessions[0] if sessions else None


def written_answers(alignment: Alignment) -> dict[str, str]:
    """What the student wrote in each of the template's written-answer cells, by its id.

    The cell is the one aligned with the template's (by id, else by content); the text
    is what stands where the release has its stub, the question around it left out.
    """
    template = alignment.template
    answers = {}
    for index, t in alignment.matched.items():
        cell = template.nb.cells[t]
        if cell_role(cell) != ANSWER:
            continue
        text = alignment.nb.cells[index].source
        before, _, after = template.releases[t].partition(TEXT_STUB)
        if before.strip() and text.startswith(before):
            text = text[len(before) :]
        if after.strip() and text.endswith(after):
            text = text[: len(text) - len(after)]
        answers[cell.get("id")] = text.strip()[:MAX_ANSWER_CHARS]
    return answers


def figures(run: nbformat.NotebookNode) -> list[dict[str, str]]:
    """The PNG figures the sandboxed run drew: the cell, the template cell before it, the PNG.

    Only valid PNG data is kept, at most :data:`MAX_FIGURES`, each at most
    :data:`MAX_FIGURE_CHARS` characters of base64.
    """
    found: list[dict[str, str]] = []
    after = ""
    for cell in run.cells:
        template_id = cell.get("metadata", {}).get(TEMPLATE_ID_KEY)
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if len(found) < MAX_FIGURES and is_png(png):
                found.append(
                    {"cell": template_id or cell.get("id", ""), "after": after, "png": png}
                )
        if template_id:
            after = template_id
    return found


def is_png(data: object) -> bool:
    """Whether ``data`` is base64 of a PNG image, within :data:`MAX_FIGURE_CHARS`.

    >>> is_png(base64.b64encode(PNG_SIGNATURE + b"...").decode()), is_png("<svg/>")
    (True, False)
    """
    if not isinstance(data, str) or len(data) > MAX_FIGURE_CHARS:
        return False
    try:
        return base64.b64decode(data.replace("\n", ""), validate=True).startswith(PNG_SIGNATURE)
    except (binascii.Error, ValueError):
        return False


def with_reference(
    template: Template, limits: Limits, unsafe: bool = False
) -> tuple[Template, str]:
    """Re-execute the template itself; return it with that run as the expected outputs.

    Returns the template unchanged, and why, where its own run fails (a release, whose
    solutions are stubs, or a broken notebook): its stored outputs are expected then.
    Also says when the stored outputs are stale, so the instructor can refresh them.
    """
    to_run = align(template, template.nb).run
    run, session = run_graded(template, to_run, submission_code(template.nb), limits, unsafe)
    failed = run.error or (run.notebook is not None and error_outputs(run.notebook))
    if run.notebook is None or session is None or failed:
        return template, (
            f"{template.path.name}: its own re-execution failed "
            f"({clip(str(failed or run.log or 'no output'))}); comparing with "
            "its stored outputs"
        )
    run.notebook.metadata[REFERENCE_KEY] = {
        key: {"text": outcome.text, "error": outcome.error}
        for key, outcome in session.graded.items()
    }
    reference = dataclasses.replace(template, reference=run.notebook)
    stale = [
        index
        for index, cell in template.graded
        if cell_role(cell) != RESULT
        and cell.outputs
        and [o.get("text") for o in cell.outputs]
        != [o.get("text") for o in reference.expected_outputs(index)]
    ]
    return reference, (
        f"{template.path.name}: stored outputs of cells {stale} differ from "
        "a fresh run (course refresh updates them); comparing with the fresh "
        "run"
        if stale
        else ""
    )


def verify_submission(
    path: Path,
    templates: Sequence[Template],
    limits: Limits,
    patterns: Sequence[tuple[str, str]],
    unsafe: bool = False,
) -> Verdict:
    """Verify the submission at ``path``; never raises.

    >>> verify_submission(Path("no-such.ipynb"), [], Limits(), []).note
    'cannot read the file (No such file or directory)'
    """
    try:
        data = read_submission(path)
    except InvalidSubmission as exc:
        return Verdict(str(path), INVALID, str(exc))
    return verify_bytes(str(path), data, templates, limits, patterns, unsafe)


def printable(text: str) -> str:
    r"""``text`` for a terminal: control characters (a newline in a file name) escaped.

    >>> print(printable("alice\n[1/1] forged.ipynb"))
    alice\n[1/1] forged.ipynb
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Progress:
    """``[12/300] name: status in 9.1 s; 4.2 per minute, about 11 min 05 s left``."""

    def __init__(self, total: int, out: Callable[[str], None] = print):
        self.total, self.done, self.out = total, 0, out
        self.start = time.perf_counter()

    def __call__(self, verdict: Verdict) -> None:
        """Report one finished submission with the rate so far and the time left."""
        self.done += 1
        elapsed = time.perf_counter() - self.start
        rate = self.done / max(elapsed, 1e-9)
        left = (self.total - self.done) / rate
        took = "" if verdict.wall_s is None else f" in {format_duration(verdict.wall_s)}"
        self.out(
            f"[{self.done}/{self.total}] {printable(verdict.submission)}: "
            f"{verdict.status}{took}; "
            f"{60 * rate:.1f} per minute, about {format_duration(left)} left"
        )


def verify_all(
    paths: Sequence[Path],
    templates: Sequence[Template],
    limits: Limits,
    patterns: Sequence[tuple[str, str]],
    jobs: int = 1,
    scheduler: str | None = None,
    unsafe: bool = False,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """Verify submissions ``jobs`` at a time, or on the Dask cluster at ``scheduler``.

    ``on_verdict`` is called in this process as each one finishes (the gradebook writes
    its row there). Returns the verdicts in the order of ``paths``.

    >>> verify_all([Path("a.ipynb")], templates, Limits(), patterns, jobs=2)  # doctest: +SKIP
    [Verdict(submission='a.ipynb', ...)]
    """
    done: dict[int, Verdict] = {}

    def finish(index: int, verdict: Verdict) -> None:
        done[index] = verdict
        if on_verdict is not None:
            on_verdict(verdict)

    if scheduler is None:
        # Threads suffice: each one waits on its own sandbox process.
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {
                pool.submit(verify_submission, path, templates, limits, patterns, unsafe): index
                for index, path in enumerate(paths)
            }
            for future in as_completed(futures):
                finish(futures[future], future.result())
    else:
        run_on_cluster(paths, templates, limits, patterns, scheduler, unsafe, finish)
    return [done[index] for index in range(len(paths))]


def run_on_cluster(
    paths: Sequence[Path],
    templates: Sequence[Template],
    limits: Limits,
    patterns: Sequence[tuple[str, str]],
    scheduler: str,
    unsafe: bool,
    finish: Callable[[int, Verdict], None],
) -> None:
    """Run :func:`verify_bytes` on a Dask cluster, one task per submission.

    The submissions travel as bytes, so the workers need the course installed (and
    bubblewrap), not the submissions folder.
    """
    from dask.distributed import Client  # instructor extra
    from dask.distributed import as_completed as completed

    with Client(scheduler) as client:
        shared = client.scatter([list(templates), limits, list(patterns)], broadcast=True)
        futures = {}
        for index, path in enumerate(paths):
            try:
                data = read_submission(path)
            except InvalidSubmission as exc:
                finish(index, Verdict(str(path), INVALID, str(exc)))
                continue
            future = client.submit(
                verify_bytes,
                str(path),
                data,
                *shared,
                unsafe,
                pure=False,
                key=f"verify-{index}-{path.name}",
            )
            futures[future] = index
        for future in completed(futures):
            finish(futures[future], future.result())
