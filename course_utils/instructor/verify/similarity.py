"""Identical or near-identical solution code across submissions of the same notebook.

Each submission's solution cells become tokens (:func:`.submission.solution_tokens`:
no comments or layout, names numbered by first use); pairs whose token sequences match
by at least ``threshold`` (difflib's ratio) are listed for the instructor to read. A
listed pair is a question, not a verdict: short solutions that every student writes
alike match too.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

THRESHOLD = 0.9


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions of one notebook whose solution code is alike."""

    first: str
    second: str
    ratio: float

    def describe(self) -> str:
        """One line for the report.

        >>> SimilarPair("a.ipynb", "b.ipynb", 1.0).describe()
        'a.ipynb and b.ipynb: identical solution code'
        """
        alike = (
            "identical solution code"
            if self.ratio == 1.0
            else f"{self.ratio:.0%} alike solution code"
        )
        return f"{self.first} and {self.second}: {alike}"


def similar_pairs(
    tokens: Mapping[str, Sequence[str]], threshold: float = THRESHOLD
) -> list[SimilarPair]:
    """Every pair of submissions whose solution tokens match by ``threshold`` or more.

    >>> similar_pairs({"a": ["x", "=", "1"], "b": ["x", "=", "1"], "c": ["def", "f"]})
    [SimilarPair(first='a', second='b', ratio=1.0)]
    """
    pairs = []
    for (first, mine), (second, theirs) in itertools.combinations(tokens.items(), 2):
        if not mine or not theirs:
            continue
        matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
        # The cheap upper bounds rule out most pairs before the quadratic ratio.
        if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
            continue
        ratio = matcher.ratio()
        if ratio >= threshold:
            pairs.append(SimilarPair(first, second, round(ratio, 3)))
    return pairs
