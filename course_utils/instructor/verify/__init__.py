"""``course verify``: re-execute submitted notebooks in a sandbox and write a gradebook.

Usage::

    course verify SUBMISSION... [--template notebooks] [--out build/gradebook.csv]
                  [-j N | --scheduler ADDRESS] [--cell-timeout 120] [--timeout 900]
                  [--memory-mb 4096] [--processes 512] [--tmpfs-mb 512] [--shm-mb 64]
                  [--profile smoke] [--sanitize FILE] [--] SUBMISSION...

Without bubblewrap it refuses to run; ``COURSE_VERIFY_UNSAFE=1`` in the environment (never
a command-line flag, which a file name could become) runs without the sandbox, with a warning.

The instructor's notebook is the source of truth for what is checked. Each submission
is matched and aligned to its template; a changed checked or result cell makes it
``TAMPERED``; then the student's notebook runs in a kernel inside a bubblewrap sandbox,
while the grader, in its own process, runs the template's checked and result cells and
its hidden tests against the student's values fetched as data; the kernel's outputs are
compared with the submission's stored ones. Statuses: ``verified``, ``MISMATCH``,
``TAMPERED``, ``ERROR``, ``TIMEOUT``, ``MEMORY`` and ``INVALID``; each row also has a
score out of the template's points. A bad submission never stops the batch.

Modules, from the base up: :mod:`.verdict` (limits, statuses, records),
:mod:`.submission` (reading submissions), :mod:`.template` (matching, tampering, the
notebook to run), :mod:`.compare` (outputs against the submission and the template),
:mod:`.cgroups` and :mod:`.sandbox` (bubblewrap), :mod:`.worker` (inside the sandbox:
it becomes the student's kernel), :mod:`.kernel` (the grader's connection to that kernel),
:mod:`.codec`, :mod:`.remote` and :mod:`.proxy` (data between them), :mod:`.grader` (the
grader-side cells and hidden tests),
:mod:`.similarity`, :mod:`.report` (the gradebook), :mod:`.batch` (pool and Dask) and
:mod:`.command` (the CLI).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from course_utils.instructor.verify.batch import verify_all, verify_bytes, verify_submission
    from course_utils.instructor.verify.command import add_parser, cmd_verify
    from course_utils.instructor.verify.verdict import (
        ERROR,
        INVALID,
        MEMORY,
        MISMATCH,
        STATUSES,
        TAMPERED,
        TIMEOUT,
        VERIFIED,
        CellCheck,
        Limits,
        Verdict,
    )

__all__ = [
    "ERROR",
    "INVALID",
    "MEMORY",
    "MISMATCH",
    "STATUSES",
    "TAMPERED",
    "TIMEOUT",
    "VERIFIED",
    "CellCheck",
    "Limits",
    "Verdict",
    "add_parser",
    "cmd_verify",
    "verify_all",
    "verify_bytes",
    "verify_submission",
]
# Where each public name lives, imported on first use: the student's kernel imports this
# package's `remote` module, and must not pay for nbformat, nbclient and the rest.
_HOME = {"verify_all": "batch", "verify_bytes": "batch", "verify_submission": "batch"}
_HOME |= {"add_parser": "command", "cmd_verify": "command"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME.get(name, 'verdict')}"), name)
