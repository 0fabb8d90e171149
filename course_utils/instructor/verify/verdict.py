"""What ``course verify`` decides about a submission: the limits, the statuses, the verdict.

The base of :mod:`course_utils.instructor.verify`: every other module of it builds on
these plain records, and this one imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERIFIED, MISMATCH, TAMPERED, ERROR, TIMEOUT, MEMORY, INVALID = (
    "verified",
    "MISMATCH",
    "TAMPERED",
    "ERROR",
    "TIMEOUT",
    "MEMORY",
    "INVALID",
)
STATUSES = (VERIFIED, MISMATCH, TAMPERED, ERROR, TIMEOUT, MEMORY, INVALID)


@dataclass(frozen=True)
class Limits:
    """What one submission may use, and the profile it is re-executed in."""

    cell_timeout: int = 120  # seconds per cell
    notebook_timeout: int = 900  # seconds for the whole notebook, kernel start included
    memory_mb: int = 4096  # memory of the whole sandbox (see sandbox.py for what counts)
    processes: int = 512  # processes and threads in the sandbox
    tmpfs_mb: int = 512  # the sandbox's only writable folder (/tmp, also HOME)
    shm_mb: int = 64  # /dev/shm
    profile: str = "smoke"  # the profile the stored checked outputs come from

    def describe(self) -> str:
        """One line for the report.

        >>> Limits().describe()
        'profile smoke, 120 s per cell, 900 s per notebook, 4096 MB memory, 512 processes'
        """
        return (
            f"profile {self.profile}, {self.cell_timeout} s per cell, "
            f"{self.notebook_timeout} s per notebook, {self.memory_mb} MB memory, "
            f"{self.processes} processes"
        )


@dataclass
class CellCheck:
    """One checked, result or hidden-test cell of the template, and what it earned.

    ``diff`` compares the submission's stored output with the one the sandboxed kernel
    printed (are the outputs genuine?); ``passed`` says whether the student's answers
    pass, which earns ``points``: decided by the grader's own run of the template's
    source (``where="grader"``), or, for a cell holding the student's own code, by the
    kernel's output (``where="kernel"``). A hidden test's title is its public name.
    """

    index: int  # the cell's position in the template
    title: str  # the first line of its source; a hidden test's public name
    ran: bool  # whether the re-execution reached it without an error
    kind: str = "checked"  # "checked", "result" or "hidden"
    diff: str = ""  # short unified diff, stored against re-executed; empty when equal
    passed: bool = False
    points: float = 1.0
    where: str = "grader"  # what decided ``passed``: "grader" or "kernel"
    # Why a visible check failed, as the student's own run shows it (the check's hint);
    # never set for a hidden test, whose message stays with the grader.
    hint: str = ""

    @property
    def reproduces(self) -> bool:
        """Whether the cell ran again and printed what the submission stored."""
        return self.ran and not self.diff

    def label(self) -> str:
        """``cell 6 (first line of its source)``, as nbval numbers cells.

        >>> CellCheck(6, "print(x)", ran=True).label()
        'cell 6 (print(x))'
        >>> CellCheck(7, "convolve2d on fresh images", ran=True, kind="hidden").label()
        'hidden test (convolve2d on fresh images)'
        """
        if self.kind == "hidden":
            return f"hidden test ({self.title})"
        return f"cell {self.index} ({self.title})"


@dataclass
class Verdict:
    """Everything the gradebook and the report say about one submission."""

    submission: str
    status: str
    note: str
    template: str = ""  # the instructor notebook it was compared with
    sha256: str = ""  # of the submitted file: a rerun skips what it graded already
    course_version: str = ""  # of the template and the checks it was graded with
    in_order: str = ""
    stored_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks: list[CellCheck] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)
    wall_s: float | None = None
    sandbox: str = ""  # what isolated the run, e.g. "bwrap" or "none (unsafe)"
    tokens: list[str] = field(default_factory=list)  # its solution code, for similarity
    similar_to: list[str] = field(default_factory=list)
    # Template answer-cell id -> what the student wrote there (capped), for human grading.
    answers: dict[str, str] = field(default_factory=dict)
    # {"cell", "after", "png"} of each figure the sandboxed run drew (capped in number, size).
    figures: list[dict[str, str]] = field(default_factory=list)

    @property
    def mismatched(self) -> list[CellCheck]:
        """Checked cells whose stored output the re-execution does not reproduce."""
        return [c for c in self.checks if c.kind == "checked" and c.ran and c.diff]

    @property
    def score(self) -> float:
        """Points of the checked and result cells that passed.

        >>> Verdict("a", VERIFIED, "", checks=[CellCheck(1, "", True, passed=True, points=2),
        ...                                    CellCheck(2, "", True, passed=False)]).score
        2.0
        """
        return float(sum(c.points for c in self.checks if c.passed))

    @property
    def max_score(self) -> float:
        """Points of every checked and result cell of the template."""
        return float(sum(c.points for c in self.checks))
