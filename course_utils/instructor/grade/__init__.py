"""``course grade``: the human half of grading, from the gradebook to the LMS.

Usage::

    course grade load [--gradebook build/gradebook.json] [--template notebooks]
    course grade serve [--port 8765] [--grader NAME]
    course grade scores-export scores.csv | course grade scores-import scores.csv
    course grade feedback [--out feedback] [--template notebooks]
    course grade lms canvas|moodle --roster roster.csv --assignment NAME [--out FILE]

Every action works on one grading database (``--db``, default ``grading.sqlite`` in the
course folder), which several graders share. ``load`` brings in the questions and rubrics
of the solution notebooks and every verdict of ``course verify`` (autograded points,
written answers, figures) and can be run again after a re-verify: marks and comments stay.
``serve`` opens the grading page (question by question); ``feedback`` writes one HTML page
per submission; ``lms`` writes Canvas's or Moodle's import file.

Modules: :mod:`.questions` (answer regions, rubrics), :mod:`.store` (SQLite),
:mod:`.load`, :mod:`.server` with ``page.html.j2``, :mod:`.scores_csv`, :mod:`.feedback`,
:mod:`.lms`.
"""

from __future__ import annotations

import argparse
import sys
import webbrowser
from pathlib import Path
from typing import Any

from course_utils.instructor.grade.feedback import write_feedback
from course_utils.instructor.grade.lms import MOODLE_IDENTIFIERS, export_lms, read_roster
from course_utils.instructor.grade.load import load_class
from course_utils.instructor.grade.scores_csv import export_scores, import_scores, read_scores
from course_utils.instructor.grade.server import GradingServer
from course_utils.instructor.grade.store import Store
from course_utils.instructor.verify.report import atomic_write

# In the course folder itself, not in build/: `make clean` removes build/, and with it
# would go every grader's marks.
DEFAULT_DB = Path("grading.sqlite")
DEFAULT_GRADEBOOK = Path("build/gradebook.json")


def cmd_load(args: argparse.Namespace) -> int:
    """``course grade load``."""
    store = Store(args.db)
    try:
        report = load_class(store, args.gradebook, args.template)
    except (FileNotFoundError, ValueError) as exc:
        print(f"course grade load: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"{report.submissions} submissions, {report.questions} questions into {args.db}")
    for problem in report.problems:
        print(f"  not loaded: {problem}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``course grade serve``: until Ctrl-C."""
    server = GradingServer(args.db, args.port, args.grader)
    print(f"grading {args.db} at {server.url} (Ctrl-C to stop)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped; every mark is saved")
    finally:
        server.server_close()
    return 0


def cmd_scores_export(args: argparse.Namespace) -> int:
    """``course grade scores-export``."""
    store = Store(args.db)
    try:
        atomic_write(args.file, export_scores(store))
    finally:
        store.close()
    print(f"wrote {args.file}")
    return 0


def cmd_scores_import(args: argparse.Namespace) -> int:
    """``course grade scores-import``."""
    store = Store(args.db)
    try:
        count = import_scores(
            store, read_scores(args.file.read_text(encoding="utf-8")), args.grader
        )
    except ValueError as exc:
        print(f"course grade scores-import: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"imported {count} rows from {args.file}")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """``course grade feedback``."""
    store = Store(args.db)
    try:
        written = write_feedback(store, args.template, args.out)
    finally:
        store.close()
    print(f"wrote {len(written)} feedback pages under {args.out}")
    return 0


def cmd_lms(args: argparse.Namespace) -> int:
    """``course grade lms``: the import file, and everyone unmatched on the console."""
    store = Store(args.db)
    try:
        roster = read_roster(args.roster.read_text(encoding="utf-8"))
        result = export_lms(store.totals(), roster, args.lms, args.assignment, args.moodle_id)
    except (OSError, ValueError) as exc:
        print(f"course grade lms: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    out = args.out or Path(f"{args.lms}-import.csv")
    atomic_write(out, result.text)
    print(f"wrote {out}: {len(roster)} roster students")
    for folder in result.students_without_submission:
        print(f"  no submission (grade left empty): {folder}")
    for submission in result.submissions_without_student:
        print(f"  not in the roster (not in the file): {submission}")
    return 1 if result.submissions_without_student else 0


def add_parser(commands: Any) -> None:
    """Add the ``grade`` subcommand and its actions to the ``course`` parser."""
    grade = commands.add_parser("grade", help="grade written answers by question; feedback; LMS")
    actions = grade.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"grading database (default: {DEFAULT_DB})"
    )
    template = argparse.ArgumentParser(add_help=False)
    template.add_argument(
        "--template",
        type=Path,
        default=Path("notebooks"),
        help="the solution notebooks (default: notebooks)",
    )
    grader = argparse.ArgumentParser(add_help=False)
    grader.add_argument("--grader", default="", help="your name, recorded with each change")

    load = actions.add_parser(
        "load", parents=[common, template], help="bring in verify's gradebook and the rubrics"
    )
    load.add_argument(
        "--gradebook",
        type=Path,
        default=DEFAULT_GRADEBOOK,
        help=f"course verify's gradebook (default: {DEFAULT_GRADEBOOK}, verify's own default)",
    )
    load.set_defaults(func=cmd_load)

    serve = actions.add_parser(
        "serve", parents=[common, grader], help="the grading page, one question at a time"
    )
    serve.add_argument("--port", type=int, default=8765, help="local port (default: 8765)")
    serve.add_argument("--open", action="store_true", help="open it in the default browser")
    serve.set_defaults(func=cmd_serve)

    export = actions.add_parser("scores-export", parents=[common], help="manual scores to CSV")
    export.add_argument("file", type=Path)
    export.set_defaults(func=cmd_scores_export)
    imported = actions.add_parser(
        "scores-import", parents=[common, grader], help="manual scores from CSV"
    )
    imported.add_argument("file", type=Path)
    imported.set_defaults(func=cmd_scores_import)

    feedback = actions.add_parser(
        "feedback", parents=[common, template], help="one HTML feedback page per submission"
    )
    feedback.add_argument("--out", type=Path, default=Path("feedback"))
    feedback.set_defaults(func=cmd_feedback)

    lms = actions.add_parser("lms", parents=[common], help="Canvas or Moodle grade import CSV")
    lms.add_argument("lms", choices=["canvas", "moodle"])
    lms.add_argument("--roster", type=Path, required=True, help="CSV: folder, then LMS ids")
    lms.add_argument(
        "--assignment",
        required=True,
        help='the LMS column: Canvas "Name (id)" of an assignment, Moodle grade item name',
    )
    lms.add_argument("--moodle-id", choices=MOODLE_IDENTIFIERS, default="email")
    lms.add_argument("--out", type=Path, default=None, help="default: <lms>-import.csv")
    lms.set_defaults(func=cmd_lms)
