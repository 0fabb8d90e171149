"""Is a difference between two sets of runs larger than their noise?

Train each variant with a few seeds, then compare the final scores::

    from course_utils import stats
    test = stats.welch_t_test(accuracy_with_bn, accuracy_without_bn)
    print(test.describe("batch norm", "no batch norm"))

With a handful of seeds, use a test that knows how rough a standard deviation from
three runs is: Welch's t-test (:func:`welch_t_test`; :func:`paired_t_test` when run
``i`` of both sides shares its seed) or an exact permutation test
(:func:`permutation_test`, no assumption about the shape of the noise; with 3 runs a
side its smallest possible two-sided p-value is 0.1). When several comparisons are
reported together, :func:`holm` says which of them stay significant as a family.

The z-score (:func:`z_test`, :func:`paired_z_test`) is kept because seed 004 asks for
it. It divides the difference of the two means by its standard error,
``sqrt(s_a**2 / n_a + s_b**2 / n_b)``, where ``s`` is the sample standard deviation
over a variant's runs, and reads the p-value off a normal distribution, as if the
standard deviations were known. Dividing by the spread of single runs instead,
``sqrt(s_a**2 + s_b**2)``, answers another question: how far apart two *single* runs
typically are. With a handful of seeds the normal approximation is optimistic (its
p-values are too small); the interpretation says so.

When the two sets are *paired*, run ``i`` of ``a`` and run ``i`` of ``b`` sharing what
makes runs differ (the same seed: the same split, batches and starting weights, as a
short and a long training budget of one network), :func:`paired_z_test` divides the
mean of the differences by their own standard error, ``s_d / sqrt(n)``: what the pair
shares cancels out of each difference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "FEW_RUNS",
    "Comparison",
    "ZTest",
    "holm",
    "paired_t_test",
    "paired_z_test",
    "permutation_test",
    "welch_t_test",
    "z_test",
]

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
    x, y = _pairs(a, b)
    differences = x - y
    standard_error = float(differences.std(ddof=1)) / math.sqrt(len(differences))
    return ZTest(float(x.mean()), float(y.mean()), standard_error, len(x), len(y), paired=True)


@dataclass(frozen=True)
class Comparison:
    """The result of a two-sample test: ``mean_a - mean_b`` and how likely under no effect."""

    name: str
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    statistic: float
    p_value: float

    @property
    def difference(self) -> float:
        """``mean_a - mean_b``, in the units of the scores."""
        return self.mean_a - self.mean_b

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the two-sided ``p_value < alpha`` (False when it is undefined)."""
        return bool(self.p_value < alpha)

    def describe(self, name_a: str = "A", name_b: str = "B", unit: str = "") -> str:
        """One line: both means, n, the difference, the statistic and the p-value.

        >>> print(welch_t_test([52.0, 53.0, 51.0], [49.0, 48.0, 50.5]).describe("BN", "plain", " %"))
        BN 52.00 % vs plain 49.17 % (n = 3 and 3 runs): difference +2.83 %, Welch's t-test statistic 3.05, p = 0.04
        """  # noqa: E501
        return (
            f"{name_a} {self.mean_a:.2f}{unit} vs {name_b} {self.mean_b:.2f}{unit} "
            f"(n = {self.n_a} and {self.n_b} runs): difference {self.difference:+.2f}{unit}, "
            f"{self.name} statistic {self.statistic:.2f}, p = {self.p_value:.2g}"
        )


def _pairs(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise ValueError(
            "a paired test needs as many runs in b as in a (one pair per seed); "
            f"got {len(a)} and {len(b)}."
        )
    return _sample(a, "a"), _sample(b, "b")


def _p(value: float) -> float:
    # SciPy gives NaN when both sides have no spread at all; then nothing can be concluded.
    return 1.0 if math.isnan(value) else float(value)


def _t_test(name: str, test: Any, x: np.ndarray, y: np.ndarray, **options: Any) -> Comparison:
    # Runs with no spread (every seed scored the same) make SciPy warn about precision
    # before returning NaN, which _p turns into "no evidence"; the warning says nothing more.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = test(x, y, **options)
    return Comparison(
        name,
        float(x.mean()),
        float(y.mean()),
        len(x),
        len(y),
        float(result.statistic),
        _p(result.pvalue),
    )


def welch_t_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> Comparison:
    """Welch's t-test of two sets of independent runs (unequal variances, two-sided).

    Unlike :func:`z_test`, it reads the p-value off a t distribution whose degrees of
    freedom shrink with the number of runs, so three seeds a side give honest p-values.

    >>> round(welch_t_test([1, 2, 3], [4, 5, 6]).p_value, 4)
    0.0213
    >>> round(z_test([1, 2, 3], [4, 5, 6]).p_value, 5)  # the normal approximation: optimistic
    0.00024
    """
    x, y = _sample(a, "a"), _sample(b, "b")
    return _t_test("Welch's t-test", scipy_stats.ttest_ind, x, y, equal_var=False)


def paired_t_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> Comparison:
    """Paired t-test: ``a[i]`` and ``b[i]`` come from the same seed (two-sided).

    >>> short, long = [0.10, 0.50, 0.30], [0.70, 0.95, 0.80]
    >>> round(paired_t_test(long, short).p_value, 4)
    0.0072
    """
    x, y = _pairs(a, b)
    return _t_test("paired t-test", scipy_stats.ttest_rel, x, y)


def permutation_test(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, paired: bool = False
) -> Comparison:
    """Exact two-sided permutation test of the difference of means.

    Every way of relabelling the runs (or, ``paired``, of swapping within each pair) is
    tried, so no assumption about the noise's distribution is made. With few runs the
    smallest possible p-value is large: 0.1 for 3 runs a side, 0.25 for 3 pairs.

    >>> permutation_test([1, 2, 3], [4, 5, 6]).p_value
    0.1
    >>> permutation_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], paired=True).p_value
    0.25
    """
    x, y = _pairs(a, b) if paired else (_sample(a, "a"), _sample(b, "b"))

    def mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    result = scipy_stats.permutation_test(
        (x, y),
        mean_difference,
        permutation_type="samples" if paired else "independent",
        n_resamples=np.inf,
        alternative="two-sided",
        vectorized=True,
    )
    return Comparison(
        "paired permutation test" if paired else "permutation test",
        float(x.mean()),
        float(y.mean()),
        len(x),
        len(y),
        float(result.statistic),
        round(float(result.pvalue), 12),
    )


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Holm-Bonferroni: which of several comparisons reported together are significant.

    The smallest p-value is held to ``alpha / m``, the next to ``alpha / (m - 1)`` and so
    on, stopping at the first that fails: the chance of any false "significant" among
    the ``m`` stays below ``alpha``.

    >>> holm([0.01, 0.04, 0.03])
    [True, False, False]
    >>> holm([0.001, 0.02, 0.04])
    [True, True, True]
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    significant = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] >= alpha / (len(p_values) - rank):
            break
        significant[index] = True
    return significant
