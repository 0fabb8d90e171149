"""``course verify``: re-execute submitted notebooks in a sandbox and write a gradebook.

Usage::

    course verify SUBMISSION... [--template notebooks] [--out build/gradebook.csv]
                  [-j N | --scheduler ADDRESS] [--cell-timeout 120] [--timeout 900]
                  [--memory-mb 4096] [--processes 512] [--tmpfs-mb 512] [--shm-mb 64]
                  [--profile smoke] [--sanitize FILE] [--unsafe-no-sandbox]

The instructor's notebook is the source of truth for what is checked; a submission
supplies the student's own code and nothing else. Each submission is matched to its
template (by file name, else by cell ids); a changed checked or result cell makes it
``TAMPERED``; then the template is re-executed with the submission's solution cells in
it, in a bubblewrap sandbox, and compared with the submission's stored outputs and the
template's expected ones. Statuses: ``verified``, ``MISMATCH``, ``TAMPERED``, ``ERROR``,
``TIMEOUT``, ``MEMORY`` and ``INVALID``; each row also has a score out of the template's
points. A bad submission never stops the batch.

Modules, from the base up: :mod:`.verdict` (limits, statuses, records),
:mod:`.submission` (reading submissions), :mod:`.template` (matching, tampering, the
notebook to run), :mod:`.compare` (outputs against the submission and the template),
:mod:`.cgroups` and :mod:`.sandbox` (bubblewrap), :mod:`.worker` (inside the sandbox),
:mod:`.similarity`, :mod:`.report` (the gradebook), :mod:`.batch` (pool and Dask) and
:mod:`.command` (the CLI).
"""

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
