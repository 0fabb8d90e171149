"""Is a difference between two sets of runs larger than their noise? A two-sample z-score.

Train each variant with a few seeds, then compare the final scores::

    from course_utils import stats
    test = stats.z_test(f1_of_variant_a, f1_of_variant_b)
    print(test.interpretation("transposed", "nearest"))

The z-score divides the difference of the two means by its standard error,
``sqrt(s_a**2 / n_a + s_b**2 / n_b)``, where ``s`` is the sample standard deviation
over a variant's runs. Dividing by the spread of single runs instead,
``sqrt(s_a**2 + s_b**2)``, answers another question: how far apart two *single* runs
typically are. With a handful of seeds the standard deviations are themselves rough, so
the normal approximation behind the p-value is optimistic; the interpretation says so.

When the two sets are *paired*, run ``i`` of ``a`` and run ``i`` of ``b`` sharing what
makes runs differ (the same seed: the same split, batches and starting weights, as a
short and a long training budget of one network), :func:`paired_z_test` divides the
mean of the differences by their own standard error, ``s_d / sqrt(n)``: what the pair
shares cancels out of each difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FEW_RUNS", "ZTest", "paired_z_test", "z_test"]

# Below this many runs per side, the sample standard deviation is too uncertain for the
# normal approximation; a t-test would give a larger p-value.
FEW_RUNS = 10


@dataclass(frozen=True)
class ZTest:
    """The result of :func:`z_test`: difference of means ``a - b`` in standard errors."""

    mean_a: float
    mean_b: float
    standard_error: float
    n_a: int
    n_b: int
    paired: bool = False

    @property
    def difference(self) -> float:
        """``mean_a - mean_b``, in the units of the scores."""
        return self.mean_a - self.mean_b

    @property
    def z(self) -> float:
        """The difference in standard errors: NaN when both are 0, infinite when only the
        standard error is."""
        if self.standard_error == 0:
            return math.nan if self.difference == 0 else math.copysign(math.inf, self.difference)
        return self.difference / self.standard_error

    @property
    def p_value(self) -> float:
        """Two-sided p-value under the normal approximation: the chance of a ``|z|`` at
        least this large if the two variants were equally good."""
        return math.erfc(abs(self.z) / math.sqrt(2))

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether ``p_value < alpha`` (False when ``z`` is undefined)."""
        return self.p_value < alpha

    def interpretation(self, name_a: str = "A", name_b: str = "B", alpha: float = 0.05) -> str:
        """A few sentences on what the z-score does and does not show.

        >>> print(z_test([1, 2, 3], [4, 5, 6]).interpretation("small", "large"))
        ... # doctest: +NORMALIZE_WHITESPACE
        small vs large: difference -3 = z -3.67 standard errors (p = 0.00024, two-sided,
        normal approximation). Significant at the 5 % level: a difference this large is
        unlikely if both were equally good. With only 3 and 3 runs the standard
        deviations are rough estimates, so this p-value is optimistic.
        """
        head = (
            f"{name_a} vs {name_b}{' (paired by seed)' if self.paired else ''}: "
            f"difference {self.difference:.3g} = z {self.z:.3g} standard errors"
        )
        if math.isnan(self.z):
            return (
                f"{head}: both sets of runs are identical, with no spread at all, so "
                "this tells nothing about the noise; run more seeds or train longer."
            )
        if math.isinf(self.z):
            return (
                f"{head}: the {'differences do' if self.paired else 'runs do'} not vary "
                "at all, so the standard error is 0 and z is infinite. That says every "
                "run agrees, not that the evidence is stronger than "
                f"{min(self.n_a, self.n_b)} runs can give."
            )
        head += f" (p = {self.p_value:.2g}, two-sided, normal approximation)."
        level = f"{100 * alpha:g} %"
        if self.significant(alpha):
            verdict = (
                f"Significant at the {level} level: a difference this large is "
                "unlikely if both were equally good."
            )
        else:
            verdict = (
                f"Not significant at the {level} level: the runs cannot tell them "
                "apart, which does not show that they are equal."
            )
        caveat = ""
        if min(self.n_a, self.n_b) < FEW_RUNS:
            caveat = (
                f" With only {self.n_a} and {self.n_b} runs the standard deviations "
                "are rough estimates, so this p-value is optimistic."
            )
        return f"{head} {verdict}{caveat}"

    def __str__(self) -> str:
        return f"z = {self.z:.2f} (p = {self.p_value:.2g}, n = {self.n_a} vs {self.n_b})"


def _sample(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if len(array) < 2:
        raise ValueError(
            f"{name} has {len(array)} run(s); a standard deviation needs at "
            "least 2, so train at least two seeds per variant."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite scores: {array.tolist()}.")
    return array


def z_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> ZTest:
    """Compare the mean scores of two sets of independent runs, ``a`` and ``b``.

    ``z = (mean(a) - mean(b)) / sqrt(var(a) / len(a) + var(b) / len(b))`` with the
    sample variances (``ddof=1``). Each side needs at least two runs.

    >>> test = z_test([1, 2, 3], [4, 5, 6])
    >>> round(test.standard_error, 4), round(test.z, 4), round(test.p_value, 5)
    (0.8165, -3.6742, 0.00024)
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    standard_error = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return ZTest(float(a.mean()), float(b.mean()), standard_error, len(a), len(b))


def paired_z_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> ZTest:
    """Compare two sets of runs that pair up: ``a[i]`` and ``b[i]`` come from one seed.

    ``z = mean(d) / (std(d) / sqrt(n))`` for the differences ``d = a - b`` (sample
    standard deviation, ``ddof=1``). Where the pairs share most of their noise, as a
    network scored after 3 and after 9 epochs of the same run does, this standard error
    is far smaller than :func:`z_test`'s, which treats the two sets as independent.

    >>> short, long = [0.10, 0.50, 0.30], [0.70, 0.95, 0.80]
    >>> round(paired_z_test(long, short).z, 2), round(z_test(long, short).z, 2)
    (11.72, 3.79)
    >>> paired_z_test([0.7, 0.8], [0.7])
    Traceback (most recent call last):
    ...
    ValueError: a paired test needs as many runs in b as in a (one pair per seed); got 2 and 1.
    """
    a, b = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
    if len(a) != len(b):
        raise ValueError(
            "a paired test needs as many runs in b as in a (one pair per seed); "
            f"got {len(a)} and {len(b)}."
        )
    differences = _sample(a, "a") - _sample(b, "b")
    standard_error = float(differences.std(ddof=1)) / math.sqrt(len(differences))
    return ZTest(float(a.mean()), float(b.mean()), standard_error, len(a), len(b), paired=True)
