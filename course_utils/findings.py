"""State a finding about a notebook's own results, and check that the numbers bear it out.

A takeaway that a table contradicts teaches the wrong lesson. So where a notebook
claims something about what it just measured ("dropout closes the train-validation
gap"), it says so through :func:`finding`, with the numbers that decide it::

    from course_utils import findings
    findings.finding(run, "dropout closes the train-validation gap",
                     holds=gap_dropout < gap_plain,
                     evidence=f"gap {gap_dropout:.1f} points with dropout, {gap_plain:.1f} without",
                     data=("embedded",), profiles=("quick", "full"))

A finding is claimed for some data and some profiles: the ones its experiment was
designed and checked for (by default the stand-in data, ``embedded``, in the ``quick``
and ``full`` profiles). The ``smoke`` profile (CI: one epoch on a few hundred images)
is never claimed for: no lesson can be expected to show there.

When a claimed finding does not hold, what happens depends on who runs the notebook:

- ``course run``, ``make run`` and ``make test`` set ``COURSE_CHECK_FINDINGS=1``: the
  finding raises :class:`AssertionError`, so the build fails and the claim or the
  experiment gets fixed;
- a student's own run prints a NOTE saying what the text claims, what this run found
  and why runs can differ, and the notebook goes on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from course_utils.config import Run

__all__ = ["CHECK_ENV", "DATA_NAMES", "finding", "scope"]

# Set to 1 by the course's own builds (`course run`, `make run`, `make test`).
CHECK_ENV = "COURSE_CHECK_FINDINGS"
# How a claim's data kinds (``run.data.kind``) read in a sentence.
DATA_NAMES = {
    "embedded": "the stand-in data",
    "real": "the real dataset",
    "none": "the notebook's own examples",
}


def _checking() -> bool:
    return os.environ.get(CHECK_ENV, "").strip().lower() in {"1", "true", "yes"}


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def scope(data: Sequence[str], profiles: Sequence[str]) -> str:
    """How a claim's data and profiles read in a sentence.

    >>> scope(("embedded",), ("quick", "full"))
    'the stand-in data in the quick and full profiles'
    >>> scope(("embedded", "real"), ("full",))
    'the stand-in data and the real dataset in the full profile'
    """
    unknown = sorted(set(data) - set(DATA_NAMES))
    if unknown or not data or not profiles:
        raise ValueError(
            f"a finding is claimed for at least one data kind out of {sorted(DATA_NAMES)} and "
            f"at least one profile; got data={tuple(data)}, profiles={tuple(profiles)}."
        )
    plural = "s" if len(profiles) > 1 else ""
    return f"{_and([DATA_NAMES[d] for d in data])} in the {_and(list(profiles))} profile{plural}"


def finding(
    run: Run,
    claim: str,
    holds: bool,
    evidence: str,
    *,
    data: Sequence[str] = ("embedded",),
    profiles: Sequence[str] = ("quick", "full"),
) -> bool:
    """Print ``claim`` with its ``evidence``, and say when this run contradicts it.

    ``data`` (kinds of ``run.data``: ``embedded``, ``real``) and ``profiles`` say for
    which runs the claim is made. Returns whether it holds, so a notebook can word what
    follows accordingly (end the cell with ``;`` to keep the value from printing).

    >>> from course_utils import config
    >>> quick = config.start_run("cifar10", profile="quick", data="embedded", quiet=True)
    >>> finding(quick, "flips help", holds=True, evidence="+4.0 points")
    FINDING (holds; claimed for the stand-in data in the quick and full profiles): flips help. Evidence: +4.0 points.
    True
    >>> import os; before = os.environ.get("COURSE_CHECK_FINDINGS")
    >>> os.environ["COURSE_CHECK_FINDINGS"] = "1"  # as `course run` sets it
    >>> finding(quick, "Adam wins", holds=False, evidence="SGD 70.1 %, Adam 65.2 %")
    Traceback (most recent call last):
    ...
    AssertionError: the notebook claims that Adam wins (for the stand-in data in the quick and full profiles), but this run says otherwise: ...
    >>> smoke = config.start_run("cifar10", profile="smoke", quiet=True)
    >>> finding(smoke, "Adam wins", holds=False, evidence="SGD 70.1 %, Adam 65.2 %")
    FINDING (not claimed for this run, smoke profile on the stand-in data): Adam wins. Evidence: SGD 70.1 %, Adam 65.2 %.
    False
    >>> os.environ["COURSE_CHECK_FINDINGS"] = before or ""
    """  # noqa: E501
    holds = bool(holds)
    claimed_for = scope(data, profiles)
    kind = run.data.kind
    if run.profile.name not in profiles or kind not in data:
        this_run = f"{run.profile.name} profile on {DATA_NAMES.get(kind, kind)}"
        print(f"FINDING (not claimed for this run, {this_run}): {claim}. Evidence: {evidence}.")
        return holds
    if holds:
        print(f"FINDING (holds; claimed for {claimed_for}): {claim}. Evidence: {evidence}.")
        return holds
    if _checking():
        raise AssertionError(
            f"the notebook claims that {claim} (for {claimed_for}), but this run says "
            f"otherwise: {evidence}. Reword the claim or fix the experiment."
        )
    print(
        f"NOTE: the text claims that {claim} (for {claimed_for}), but this run found "
        f"otherwise: {evidence}.\n"
        "      Runs can differ: another dataset (real CIFAR-10 against the stand-in), "
        "another profile, seed or device (GPU arithmetic is not bit-identical to the "
        "CPU's) can change a close result. Read the numbers above, answer the questions "
        "from what your run shows, and carry on: nothing is broken."
    )
    return holds
