"""course_utils.stats: the two-sample z-score against a worked example and SciPy."""

import math

import numpy as np
import pytest
import scipy.stats

from course_utils import stats


def test_z_score_matches_a_worked_example():
    # Worked by hand: means 0.82 and 0.79; sample variances 0.0004 and 0.0001;
    # standard error sqrt(0.0004/3 + 0.0001/3) = 0.012910; z = 0.03 / 0.012910 = 2.3238.
    test = stats.z_test([0.80, 0.82, 0.84], [0.78, 0.79, 0.80])
    assert test.difference == pytest.approx(0.03)
    assert test.standard_error == pytest.approx(0.012910, abs=1e-6)
    assert test.z == pytest.approx(2.3238, abs=1e-4)
    assert test.p_value == pytest.approx(2 * scipy.stats.norm.sf(2.3238), abs=1e-5)
    assert test.significant(0.05) and not test.significant(0.01)


def test_z_is_antisymmetric_and_p_is_two_sided():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 5), rng.normal(0.5, 2, 7)
    ab, ba = stats.z_test(a, b), stats.z_test(b, a)
    assert ab.z == pytest.approx(-ba.z)
    assert ab.p_value == pytest.approx(ba.p_value)
    assert ab.p_value == pytest.approx(2 * scipy.stats.norm.sf(abs(ab.z)))


def test_interpretation_states_significance_and_the_few_runs_caveat():
    clear = stats.z_test([0.80, 0.82, 0.84], [0.70, 0.71, 0.72]).interpretation("new", "old")
    assert clear.startswith("new vs old:")
    assert "Significant at the 5 % level" in clear and "optimistic" in clear
    unclear = stats.z_test([0.80, 0.85, 0.75], [0.79, 0.74, 0.84]).interpretation()
    assert "Not significant" in unclear and "does not show that they are equal" in unclear
    many = stats.z_test(np.linspace(0, 1, 20), np.linspace(0.1, 1.1, 20)).interpretation()
    assert "optimistic" not in many


def test_runs_without_spread():
    same = stats.z_test([0.5, 0.5], [0.5, 0.5])
    assert math.isnan(same.z) and "no spread" in same.interpretation()
    apart = stats.z_test([0.6, 0.6], [0.5, 0.5])
    assert apart.z == math.inf and apart.p_value == 0.0


def test_bad_samples_are_explained():
    with pytest.raises(ValueError, match="a has 1 run.*at least two seeds"):
        stats.z_test([0.9], [0.8, 0.7])
    with pytest.raises(ValueError, match="b contains NaN"):
        stats.z_test([0.9, 0.8], [0.8, float("nan")])


def test_paired_z_is_scipys_paired_t_statistic():
    # The paired statistic is the paired t-test's: mean difference over its standard error.
    rng = np.random.default_rng(1)
    shared = rng.normal(0.7, 0.1, 6)  # what a seed gives both runs of a pair
    short, long = shared + rng.normal(0, 0.01, 6), shared + 0.05 + rng.normal(0, 0.01, 6)
    paired = stats.paired_z_test(long, short)
    assert paired.paired and paired.n_a == paired.n_b == 6
    assert paired.z == pytest.approx(scipy.stats.ttest_rel(long, short).statistic)
    assert paired.difference == pytest.approx(np.mean(long) - np.mean(short))
    # Treated as independent, the shared noise hides the same difference.
    assert abs(stats.z_test(long, short).z) < abs(paired.z) / 3
    assert "(paired by seed)" in paired.interpretation("9 epochs", "3 epochs")


def test_paired_runs_must_pair_up():
    with pytest.raises(ValueError, match="as many runs in b as in a.*got 3 and 2"):
        stats.paired_z_test([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least two seeds"):
        stats.paired_z_test([0.1], [0.2])


def test_an_infinite_z_is_not_read_as_strong_evidence():
    text = stats.z_test([0.6, 0.6, 0.6], [0.0, 0.0, 0.0]).interpretation("long", "short")
    assert "z is infinite" in text and "not that the evidence is stronger than 3 runs" in text
    assert "Significant" not in text


def test_welch_matches_a_hand_computation():
    a, b = [0.80, 0.82, 0.84], [0.78, 0.79, 0.80]
    # Same standard error as the z-score; Welch-Satterthwaite degrees of freedom
    # (0.0004/3 + 0.0001/3)**2 / ((0.0004/3)**2/2 + (0.0001/3)**2/2) = 2.941.
    t = 0.03 / 0.012910
    expected = 2 * scipy.stats.t.sf(t, 2.9412)
    test = stats.welch_t_test(a, b)
    assert test.statistic == pytest.approx(t, abs=1e-3)
    assert test.p_value == pytest.approx(expected, abs=1e-4)
    # The z-test on the same numbers calls it significant; three seeds do not support that.
    assert stats.z_test(a, b).significant() and not test.significant()


def test_paired_t_uses_the_differences():
    a, b = [1.0, 2.0, 3.0, 4.0], [0.9, 1.8, 2.95, 3.7]
    differences = np.subtract(a, b)
    t = differences.mean() / (differences.std(ddof=1) / 2)
    test = stats.paired_t_test(a, b)
    assert test.statistic == pytest.approx(t)
    assert test.p_value == pytest.approx(2 * scipy.stats.t.sf(t, 3))


def test_exact_permutation_p_values():
    # 20 ways to split six runs in two threes; the observed split and its mirror are the extremes.
    assert stats.permutation_test([1, 2, 3], [4, 5, 6]).p_value == pytest.approx(2 / 20)
    # Overlapping sets: not every relabelling is less extreme.
    assert stats.permutation_test([1, 2, 5], [3, 4, 6]).p_value > 0.1
    assert stats.permutation_test([1, 2, 3], [1.5, 2, 3], paired=True).n_a == 3


def test_identical_runs_are_never_significant():
    for test in (stats.welch_t_test, stats.paired_t_test, stats.permutation_test):
        assert not test([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]).significant()


def test_holm_is_stricter_than_separate_tests():
    p = [0.04, 0.03, 0.02]
    assert all(value < 0.05 for value in p)
    # The smallest is held to 0.05 / 3 = 0.0167 and fails, so none survives as a family.
    assert stats.holm(p) == [False, False, False]
    assert stats.holm([0.001, 0.02, 0.03]) == [True, True, True]
    assert stats.holm([0.001, 0.03, 0.026]) == [True, False, False]
