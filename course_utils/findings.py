"""State a finding about a notebook's own results, and check that the numbers bear it out.

A takeaway that a table contradicts teaches the wrong lesson. So where a notebook
claims something about what it just measured ("dropout closes the train-validation
gap"), it says so through :func:`finding`, with the numbers that decide it::

    from course_utils import findings
    findings.finding(run, "dropout closes the train-validation gap",
                     holds=gap_dropout < gap_plain,
                     evidence=f"gap {gap_dropout:.1f} points with dropout, {gap_plain:.1f} without")

In the ``quick`` and ``full`` profiles a finding that does not hold stops the notebook
with an :class:`AssertionError` (``course run`` then reports it as failed). In the
``smoke`` profile (CI, one epoch on a few hundred images) no lesson can be expected to
hold, so the finding is printed as not checked.
"""

from __future__ import annotations

from course_utils.config import Run

__all__ = ["UNCHECKED_PROFILES", "finding"]

# Profiles too small for any lesson to hold: findings are printed, not asserted.
UNCHECKED_PROFILES = ("smoke",)


def finding(run: Run, claim: str, holds: bool, evidence: str) -> bool:
    """Print ``claim`` with its ``evidence``; fail when it does not hold in a real run.

    Returns whether it holds, so a notebook can word what follows accordingly.

    >>> from course_utils import config
    >>> quick = config.start_run(profile="quick", quiet=True)
    >>> finding(quick, "flips help", holds=True, evidence="+4.0 points")
    FINDING (holds): flips help. Evidence: +4.0 points.
    True
    >>> finding(quick, "Adam wins", holds=False, evidence="SGD 70.1 %, Adam 65.2 %")
    Traceback (most recent call last):
    ...
    AssertionError: the notebook claims that Adam wins, but this run says otherwise: ...
    >>> smoke = config.start_run(profile="smoke", quiet=True)
    >>> finding(smoke, "Adam wins", holds=False, evidence="SGD 70.1 %, Adam 65.2 %")
    FINDING (not checked in the smoke profile): Adam wins. Evidence: SGD 70.1 %, Adam 65.2 %.
    False
    """
    holds = bool(holds)
    if run.profile.name in UNCHECKED_PROFILES:
        print(
            f"FINDING (not checked in the {run.profile.name} profile): {claim}. "
            f"Evidence: {evidence}."
        )
        return holds
    if not holds:
        raise AssertionError(
            f"the notebook claims that {claim}, but this run says otherwise: "
            f"{evidence}. Reword the claim or fix the experiment."
        )
    print(f"FINDING (holds): {claim}. Evidence: {evidence}.")
    return holds
