"""``course verify``: the command line over the batch and the gradebook.

Two things here keep a handed-in file from steering the grader. The unsafe mode (no
sandbox) is no option a file name could become: it is the environment variable
``COURSE_VERIFY_UNSAFE=1``, announced loudly. And a file whose name starts with ``-``
is never graded: in the folder the command runs in, where a shell glob (``course verify
*``) would have handed it over as an option, it stops the command before anything runs;
among the submissions (after ``--``, or found in a folder) it is refused with a note.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from course_utils.instructor.notebook_io import format_table
from course_utils.instructor.verify.batch import (
    Progress,
    course_version,
    printable,
    verify_all,
    with_reference,
)
from course_utils.instructor.verify.compare import SANITIZE_CFG, read_sanitizers
from course_utils.instructor.verify.prerequisites import MissingPrerequisite, ResultSupply
from course_utils.instructor.verify.report import Gradebook
from course_utils.instructor.verify.sandbox import sandbox_problem
from course_utils.instructor.verify.submission import (
    InvalidSubmission,
    expand_submissions,
    file_sha256,
    parse_submission,
    read_submission,
)
from course_utils.instructor.verify.template import Template, load_templates, match_template
from course_utils.instructor.verify.verdict import INVALID, VERIFIED, Limits, Verdict

UNSAFE_ENV = "COURSE_VERIFY_UNSAFE"
UNSAFE_WARNING = f"""\
!!! WARNING: {UNSAFE_ENV}=1: NO SANDBOX !!!
Every submission's code runs as you, with your files, your network and your processes:
a hostile notebook can read, change or delete anything you can. Only for notebooks you
trust. Unset {UNSAFE_ENV} to grade students' work.
"""
OPTION_LIKE = (
    "starts with '-', so a shell glob (course verify *) hands it over as an option, not as a file"
)


def fail(message: str) -> int:
    """Print ``course verify: message`` to stderr; return the usage-error status."""
    print(f"course verify: {message}", file=sys.stderr)
    return 2


def unsafe_mode(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``COURSE_VERIFY_UNSAFE=1`` asks for runs without the sandbox.

    Unset, empty or ``0`` is the sandbox; any other value is an error, not a guess.

    >>> unsafe_mode({}), unsafe_mode({"COURSE_VERIFY_UNSAFE": "1"})
    (False, True)
    >>> unsafe_mode({"COURSE_VERIFY_UNSAFE": "yes"})
    Traceback (most recent call last):
    ...
    ValueError: COURSE_VERIFY_UNSAFE is 'yes': set it to 1 (no sandbox) or unset it
    """
    value = environ.get(UNSAFE_ENV, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"{UNSAFE_ENV} is {value!r}: set it to 1 (no sandbox) or unset it")
    return value == "1"


def option_like(path: Path) -> bool:
    """Whether a file's name starts with ``-``, as an option's does.

    >>> option_like(Path("subs/--unsafe-no-sandbox")), option_like(Path("-/a.ipynb"))
    (True, False)
    """
    return path.name.startswith("-")


def stray_options(folder: Path, named: Iterable[Path]) -> list[str]:
    """Entries of ``folder`` named like options that are not among the ``named`` paths.

    A glob in ``folder`` turns each such entry into an argument; one that is no
    submission was read as an option (or is a file a glob would read so next time).

    >>> stray_options(Path("no-such-folder"), [])
    []
    """
    covered = set()
    for path in named:
        absolute = Path(os.path.abspath(path))
        covered |= {absolute, *absolute.parents}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [
        entry.name
        for entry in entries
        if option_like(entry) and Path(os.path.abspath(entry)) not in covered
    ]


def templates_needed(paths: Sequence[Path], templates: Sequence[Template]) -> set[str]:
    """The names of the templates that ``paths`` answer, a misnamed file by its content.

    A file named as a template answers it; any other is read and matched by what it
    holds (:func:`.template.match_template`); one that matches nothing needs none.

    >>> templates_needed([Path("no-such.ipynb")], [])
    set()
    """
    known = {template.path.name for template in templates}
    needed = set()
    for path in paths:
        if path.name in known:
            needed.add(path.name)
            continue
        try:
            nb = parse_submission(read_submission(path))
            needed.add(match_template(path.name, nb, templates).path.name)
        except InvalidSubmission:  # graded INVALID later, with the reason
            continue
    return needed


def expected_outputs(
    templates: list[Template], needed: set[str], limits: Limits, unsafe: bool
) -> list[Template]:
    """Re-execute the ``needed`` templates for their expected outputs; the rest as they are.

    Each needed template first gets the course results its run reads (made or found
    once for all, :mod:`.prerequisites`); raises
    :class:`~.prerequisites.MissingPrerequisite` when one cannot be supplied.
    """
    supply = ResultSupply(limits, unsafe)
    updated = []
    for template in templates:
        if template.path.name in needed:
            template = supply.supply(template)
            print(
                f"Re-executing the template {template.path.name} for expected outputs", flush=True
            )
            template, warning = with_reference(template, limits, unsafe)
            if warning:
                print(f"  warning: {warning}", flush=True)
        updated.append(template)
    return updated


def cmd_verify(args: argparse.Namespace) -> int:
    """``course verify``: verify the submissions, write the gradebook and the report."""
    limits = Limits(
        args.cell_timeout,
        args.timeout,
        args.memory_mb,
        args.processes,
        args.tmpfs_mb,
        args.shm_mb,
        args.profile,
    )
    try:
        unsafe = unsafe_mode()
    except ValueError as exc:
        return fail(str(exc))
    found = expand_submissions(args.submissions)
    stray = stray_options(Path.cwd(), [*args.submissions, *found])
    if stray:
        return fail(
            f"refusing to start: {stray[0]!r} in this folder {OPTION_LIKE}. Rename it "
            f"(mv -- {stray[0]!r} new-name) or move it out of this folder, then run again"
        )
    if unsafe:
        print(UNSAFE_WARNING, file=sys.stderr, flush=True)
    problem = None if unsafe else sandbox_problem()
    if problem:
        return fail(problem)
    if not found:
        return fail("no submissions (*.ipynb) found")
    try:
        templates = load_templates(args.template)
        sandbox = f"NONE ({UNSAFE_ENV}=1)" if unsafe else "bubblewrap"
        gradebook = Gradebook(args.out, templates, limits, sandbox)
    except (ValueError, OSError) as exc:
        return fail(str(exc))
    refused = [path for path in found if option_like(path)]
    for path in refused:
        print(
            f"course verify: refused {printable(str(path))}: its name {OPTION_LIKE}",
            file=sys.stderr,
        )
        gradebook.add(
            Verdict(str(path), INVALID, f"refused: the file name {OPTION_LIKE}; rename it")
        )
    paths = [path for path in found if not option_like(path)]
    versions = {course_version(template) for template in templates}
    todo = [p for p in paths if not gradebook.graded(str(p), file_sha256(p), versions)]
    try:
        templates = expected_outputs(templates, templates_needed(todo, templates), limits, unsafe)
    except MissingPrerequisite as exc:
        return fail(str(exc))
    where = f"on {args.scheduler}" if args.scheduler else f"{args.jobs} at a time"
    print(
        f"Verifying {len(todo)} submissions ({len(paths) - len(todo)} graded already), "
        f"{where}; {limits.describe()}; sandbox: {sandbox}",
        flush=True,
    )
    progress = Progress(len(todo), lambda line: print(line, flush=True))

    def finished(verdict: Any) -> None:
        gradebook.add(verdict)
        progress(verdict)

    verify_all(
        todo,
        templates,
        limits,
        read_sanitizers(args.sanitize),
        args.jobs,
        args.scheduler,
        unsafe,
        on_verdict=finished,
    )
    gradebook.write()
    verdicts = [gradebook.verdicts[str(path)] for path in found]
    print()
    print(
        format_table(
            ["submission", "status", "score", "note"],
            [
                [
                    printable(v.submission),
                    v.status,
                    f"{v.score:g}/{v.max_score:g}",
                    printable(v.note[:80]),
                ]
                for v in verdicts
            ],
        )
    )
    passed = sum(v.status == VERIFIED for v in verdicts)
    print(
        f"\n{passed} verified, {len(verdicts) - passed} not. Gradebook: {gradebook.csv}, "
        f"report: {gradebook.markdown}"
    )
    return 0 if passed == len(verdicts) else 1


def add_parser(commands: Any) -> None:
    """Add the ``verify`` subcommand to the ``course`` parser's subcommands."""
    defaults = Limits()
    verify = commands.add_parser(
        "verify",
        help="re-execute submitted notebooks in a sandbox, write a gradebook",
        # No abbreviations: a file named --temp=x must not pass for --template.
        allow_abbrev=False,
        epilog=f"Runs without the sandbox only with {UNSAFE_ENV}=1 in the environment "
        "(trusted notebooks only). A file whose name starts with '-' is never graded: "
        "pass such names after --, and they are refused with a note.",
    )
    verify.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        metavar="SUBMISSION",
        help="executed notebooks, or folders of them (after --, names starting with '-')",
    )
    verify.add_argument(
        "--template",
        type=Path,
        default=Path("notebooks"),
        metavar="NOTEBOOK_DIR",
        help="the instructor's notebooks (or a release) that submissions are "
        "compared with, matched by file name (default: notebooks)",
    )
    verify.add_argument(
        "--out",
        type=Path,
        default=Path("build/gradebook.csv"),
        help="gradebook CSV; gradebook.md and gradebook.json go next to it "
        "(default: build/gradebook.csv)",
    )
    verify.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="submissions verified in parallel here (default: 1)",
    )
    verify.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the batch on the Dask cluster at ADDRESS "
        "(e.g. tcp://10.0.0.5:8786) instead of a local pool",
    )
    # The sandbox's limits: option, Limits field, what the number is.
    for option, field, meaning in (
        ("--cell-timeout", "cell_timeout", "seconds per cell"),
        ("--timeout", "notebook_timeout", "seconds per notebook"),
        ("--memory-mb", "memory_mb", "memory per sandbox in MB"),
        ("--processes", "processes", "processes and threads per sandbox"),
        ("--tmpfs-mb", "tmpfs_mb", "size of the sandbox's /tmp"),
        ("--shm-mb", "shm_mb", "size of the sandbox's /dev/shm"),
    ):
        default = getattr(defaults, field)
        verify.add_argument(
            option, type=int, default=default, help=f"{meaning} (default: {default})"
        )
    verify.add_argument(
        "--profile",
        choices=("smoke", "quick", "full", "auto"),
        default=defaults.profile,
        help="COURSE_PROFILE of the re-execution; checked cells print the "
        f"same in every profile (default: {defaults.profile})",
    )
    verify.add_argument(
        "--sanitize",
        type=Path,
        default=SANITIZE_CFG,
        help="nbval sanitizer file (default: the one make nbval uses)",
    )
    verify.add_argument("--unsafe-no-sandbox", action=RemovedUnsafeFlag, help=argparse.SUPPRESS)
    verify.set_defaults(func=cmd_verify)


class RemovedUnsafeFlag(argparse.Action):
    """The old ``--unsafe-no-sandbox``: a clear error, never the unsafe mode.

    A handed-in file of that name, expanded by a glob, switched the sandbox off.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        parser.error(
            f"--unsafe-no-sandbox is gone: set {UNSAFE_ENV}=1 to run trusted notebooks "
            "without the sandbox. If no one typed it, a file of that name was expanded by "
            f"a shell glob (its name {OPTION_LIKE}): rename it"
        )
