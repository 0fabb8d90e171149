"""``course verify``: the command line over the batch and the gradebook."""

from __future__ import annotations

import argparse
import sys
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
from course_utils.instructor.verify.report import Gradebook
from course_utils.instructor.verify.sandbox import sandbox_problem
from course_utils.instructor.verify.submission import expand_submissions, file_sha256
from course_utils.instructor.verify.template import Template, load_templates
from course_utils.instructor.verify.verdict import VERIFIED, Limits


def fail(message: str) -> int:
    """Print ``course verify: message`` to stderr; return the usage-error status."""
    print(f"course verify: {message}", file=sys.stderr)
    return 2


def expected_outputs(
    templates: list[Template], names: set[str], limits: Limits, unsafe: bool
) -> list[Template]:
    """Re-execute the templates the submissions need (all, when a name matches none)."""
    known = {template.path.name for template in templates}
    needed = names & known if names <= known else known
    updated = []
    for template in templates:
        if template.path.name in needed:
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
    problem = None if args.unsafe_no_sandbox else sandbox_problem()
    if problem:
        return fail(problem)
    paths = expand_submissions(args.submissions)
    if not paths:
        return fail("no submissions (*.ipynb) found")
    try:
        templates = load_templates(args.template)
        sandbox = "NONE (--unsafe-no-sandbox)" if args.unsafe_no_sandbox else "bubblewrap"
        gradebook = Gradebook(args.out, templates, limits, sandbox)
    except (ValueError, OSError) as exc:
        return fail(str(exc))
    versions = {course_version(template) for template in templates}
    todo = [p for p in paths if not gradebook.graded(str(p), file_sha256(p), versions)]
    templates = expected_outputs(templates, {p.name for p in todo}, limits, args.unsafe_no_sandbox)
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
        args.unsafe_no_sandbox,
        on_verdict=finished,
    )
    gradebook.write()
    verdicts = [gradebook.verdicts[str(path)] for path in paths]
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
        "verify", help="re-execute submitted notebooks in a sandbox, write a gradebook"
    )
    verify.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        metavar="SUBMISSION",
        help="executed notebooks, or folders of them",
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
    verify.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run submissions without bubblewrap: their code runs as you, "
        "with your files and network. Only for trusted notebooks",
    )
    verify.set_defaults(func=cmd_verify)
