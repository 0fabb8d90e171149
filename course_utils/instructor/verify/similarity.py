"""Alike solution code across submissions of the same notebook, per function or cell.

Each submission's solution code arrives as normalised tokens in units (one per function,
class or cell rest; :func:`.submission.solution_tokens`), so renamed variables,
reformatting, an added import and reordered functions change nothing. Each unit becomes
a set of fingerprints by winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003, the
method of MOSS): the hashes of its ``K``-token runs, of which each window of ``W``
consecutive hashes keeps its smallest, so any run of ``K + W - 1`` tokens that two units
share is found. Fingerprints of the release's own code (the stubs every student starts
from) and those in more than :func:`common_cut` submissions are left out: what everyone
writes alike says nothing about two of them.

A pair is listed when a unit of one (of at least :data:`MIN_UNIT` fingerprints) is
found in the other by ``threshold`` or more, or when the smaller one's whole code is.
A listed pair is a question for the instructor, not a verdict.

Cost, for ``n`` submissions of ``f`` fingerprints each: fingerprinting is linear in the
tokens; an inverted index counts the fingerprints each pair shares in
``O(n * f * c)``, where ``c`` is the common cut, not ``O(n^2)`` set comparisons; only
pairs that share :data:`MIN_SHARED` fingerprints or more are looked at unit by unit.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from course_utils.instructor.verify.submission import UNIT_MARK, solution_tokens
from course_utils.instructor.verify.template import SOLUTION, Template, cell_role

THRESHOLD = 0.8  # share of a unit's fingerprints found in the other submission
K = 5  # tokens per hashed run: shorter runs are too common to mean anything
W = 4  # hashes per winnowing window: a shared run of K + W - 1 = 8 tokens is always found
MIN_UNIT = 6  # fingerprints a unit needs to be listed on its own (about 15 tokens)
MIN_SHARED = 6  # fingerprints a pair must share to be looked at at all
COMMON_SHARE = 0.1  # a fingerprint in more than this share of a class is common code...
COMMON_MIN = 10  # ...and in more than this many submissions (MOSS's default cut)
UNITS_SHOWN = 10  # alike functions and cells named in a pair's line of the report


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions of one notebook whose solution code is alike.

    ``ratio`` is the share of the smaller one's fingerprints found in the other;
    ``units`` names the functions and cells found alike.
    """

    first: str
    second: str
    ratio: float
    units: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the report.

        >>> SimilarPair("a.ipynb", "b.ipynb", 1.0, ("convolve2d",)).describe()
        'a.ipynb and b.ipynb: 100% of the solution code alike (convolve2d)'
        >>> SimilarPair("a", "b", 0.5, tuple("fghijklmnopq")).describe()
        'a and b: 50% of the solution code alike (f, g, h, i, j, k, l, m, n, o and 2 more)'
        """
        # Labels are tokens, so each is short; a long list is cut.
        more = len(self.units) - UNITS_SHOWN
        units = ", ".join(self.units[:UNITS_SHOWN]) + (f" and {more} more" if more > 0 else "")
        return f"{self.first} and {self.second}: {self.ratio:.0%} of the solution code alike" + (
            f" ({units})" if units else ""
        )


def run_hash(tokens: Sequence[str]) -> int:
    """A hash of a run of tokens that is the same in every process.

    Python's own ``hash`` of strings changes with each process (``PYTHONHASHSEED``), and
    with it which fingerprint wins each window: the same class graded twice could list
    different pairs.

    >>> run_hash(["N", "=", "N"]) == run_hash(["N", "=", "N"]) != run_hash(["N", "=", "M"])
    True
    """
    digest = hashlib.blake2b("\x00".join(tokens).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def winnow(tokens: Sequence[str], k: int = K, w: int = W) -> set[int]:
    """The fingerprints of a token sequence: the smallest hash of each window of ``w``.

    A sequence shorter than ``k`` tokens is one run.

    >>> a = "N = N . sum ( N * N ) return N".split()
    >>> winnow(a) == winnow(a) and len(winnow(a)) < len(a)
    True
    >>> winnow([])
    set()
    """
    if not tokens:
        return set()
    hashes = [run_hash(tokens[i : i + k]) for i in range(max(1, len(tokens) - k + 1))]
    # The rightmost smallest of each window, as the paper does: runs of equal hashes keep one.
    return {min(reversed(hashes[i : i + w])) for i in range(max(1, len(hashes) - w + 1))}


def units_of(tokens: Sequence[str]) -> dict[str, set[int]]:
    """Each unit's label and fingerprints, from :func:`.submission.solution_tokens`.

    Units with the same label (a function defined twice) are merged.

    >>> from course_utils.instructor.verify.submission import solution_tokens
    >>> sorted(units_of(solution_tokens(["import os\\ndef f(x):\\n    return x + 1"])))
    ['f', 'student cell 1']
    """
    runs: list[tuple[str, list[str]]] = []
    for token in tokens:
        if token.startswith(UNIT_MARK):
            runs.append((token.removeprefix(UNIT_MARK), []))
        elif runs:
            runs[-1][1].append(token)
    units: dict[str, set[int]] = defaultdict(set)
    for label, run in runs:
        units[label] |= winnow(run)
    return dict(units)


def release_tokens(template: Template) -> list[str]:
    """The tokens of the code every student is given: the release's solution cells.

    >>> import nbformat
    >>> from pathlib import Path
    >>> cell = nbformat.v4.new_code_cell("def f(x):\\n    ### BEGIN SOLUTION\\n"
    ...                                  "    return x\\n    ### END SOLUTION")
    >>> release_tokens(Template(Path("t"), nbformat.v4.new_notebook(cells=[cell])))
    ['# f', 'def', 'F', '(', 'N', ')', ':', 'raise', 'NotImplementedError']
    """
    return solution_tokens(
        [
            text
            for text, cell in zip(template.releases, template.nb.cells, strict=True)
            if cell_role(cell) == SOLUTION
        ]
    )


def common_cut(count: int) -> int:
    """How many submissions may share a fingerprint before it is common code.

    >>> common_cut(3), common_cut(300)
    (10, 30)
    """
    return max(COMMON_MIN, int(COMMON_SHARE * count))


def similar_pairs(
    tokens: Mapping[str, Sequence[str]],
    threshold: float = THRESHOLD,
    base: Sequence[str] = (),
) -> list[SimilarPair]:
    """Every pair of submissions with a unit, or all their code, alike by ``threshold``.

    ``tokens`` maps each submission to its :func:`.submission.solution_tokens`; ``base``
    is the same for the code every student was given (the release's solution cells).

    >>> from course_utils.instructor.verify.submission import solution_tokens
    >>> code = "def f(image, k):\\n    out = image.copy()\\n    out[1:-1] = image[:-2] * k\\n"
    >>> renamed = "import numpy\\n" + code.replace("image", "img").replace("out", "res")
    >>> similar_pairs({"a": solution_tokens([code]), "b": solution_tokens([renamed]),
    ...                "c": solution_tokens(["print(sum([1, 2]))"])})
    [SimilarPair(first='a', second='b', ratio=1.0, units=('f',))]
    """
    given = set().union(*units_of(base).values()) if base else set()
    found = {name: units_of(mine) for name, mine in tokens.items()}
    holders: dict[int, list[str]] = defaultdict(list)
    for name, mine in found.items():
        for fingerprint in set().union(*mine.values()) - given:
            holders[fingerprint].append(name)
    cut = common_cut(len(tokens))
    kept = {fingerprint for fingerprint, names in holders.items() if len(names) <= cut}
    units = {
        name: {label: prints & kept for label, prints in mine.items()}
        for name, mine in found.items()
    }
    everything = {name: set().union(*mine.values()) for name, mine in units.items()}
    shared: Counter[tuple[str, str]] = Counter()
    for fingerprint in kept:
        shared.update(itertools.combinations(holders[fingerprint], 2))
    order = {name: index for index, name in enumerate(tokens)}
    pairs = []
    for (first, second), count in shared.items():
        if count < MIN_SHARED:
            continue
        if order[first] > order[second]:
            first, second = second, first
        alike = alike_units(units[first], everything[second], threshold) + alike_units(
            units[second], everything[first], threshold
        )
        ratio = count / max(1, min(len(everything[first]), len(everything[second])))
        if alike or ratio >= threshold:
            pairs.append(SimilarPair(first, second, round(ratio, 3), tuple(dict.fromkeys(alike))))
    # Code that is the same token for token is listed even when all of it is common (many
    # submissions built on one): the common cut must not hide an exact copy.
    listed = {(pair.first, pair.second) for pair in pairs}
    copies: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for name, mine in found.items():
        if len(set().union(*mine.values()) - given) >= MIN_SHARED:
            copies[tuple(tokens[name])].append(name)
    for names in copies.values():
        for first, second in itertools.combinations(sorted(names, key=order.__getitem__), 2):
            if (first, second) not in listed:
                pairs.append(SimilarPair(first, second, 1.0, ()))
    return sorted(pairs, key=lambda pair: (order[pair.first], order[pair.second]))


def alike_units(mine: Mapping[str, set[int]], theirs: set[int], threshold: float) -> list[str]:
    """Labels of ``mine``'s units found by ``threshold`` or more in the fingerprints ``theirs``.

    >>> alike_units({"f": set(range(10)), "g": {1}}, set(range(9)), 0.8)
    ['f']
    """
    return [
        label
        for label, prints in mine.items()
        if len(prints) >= MIN_UNIT and len(prints & theirs) >= threshold * len(prints)
    ]
