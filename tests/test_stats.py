"""Means with confidence intervals and Welch's test, against SciPy."""

import math

import numpy as np
import pytest
from scipy import stats as st

from actlab.stats import (
    ci_band,
    mean_ci,
    paired_by_seed,
    paired_differs,
    proportion_ci,
    welch_differs,
)


def test_mean_ci_is_the_student_t_interval_of_the_finite_values():
    values = np.array([0.2, 0.5, 0.1, np.nan, 0.4, np.inf])
    finite = values[np.isfinite(values)]
    lo, hi = st.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=st.sem(finite))
    got = mean_ci(values)
    assert got["n"] == 4 and got["mean"] == pytest.approx(finite.mean())
    assert (got["lo"], got["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert got["sd"] == pytest.approx(np.std(finite, ddof=1))  # the sample sd
    # the 90% interval by hand: t_{0.95, 3} = 2.3534 (tables), half width t * sd / sqrt(n)
    got = mean_ci(finite, level=0.9)
    half = 2.353363 * np.std(finite, ddof=1) / 2.0
    assert got["hi"] - got["mean"] == pytest.approx(half, rel=1e-6)


def test_bounds_clip_the_interval_of_a_fraction():
    values = [0.0, 0.0, 0.0, 0.02]  # a dead fraction near 0: the t interval dips below 0
    assert mean_ci(values)["lo"] < 0
    got = mean_ci(values, bounds=(0.0, 1.0))
    assert got["lo"] == 0.0 and got["hi"] == mean_ci(values)["hi"]
    assert mean_ci([1.0, 1.0, 0.98], bounds=(0.0, 1.0))["hi"] == 1.0


def test_too_few_values_give_no_interval():
    one = mean_ci([3.0, math.nan])
    assert one["mean"] == 3.0 and one["n"] == 1 and math.isnan(one["lo"])
    assert mean_ci([])["n"] == 0


def _welch_p(a, b):
    """Two-sided p-value of Welch's test, from its formula: t = (mean_a - mean_b) / se with
    se^2 = s_a^2/n_a + s_b^2/n_b, and Welch-Satterthwaite degrees of freedom."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return 2 * st.t.sf(abs(t), df)


def test_welch_agrees_with_its_formula_and_needs_two_values_a_side():
    a, b = [1.0, 1.1, 0.9, 1.05], [1.3, 1.4, 1.35, 1.45]
    assert welch_differs(a, b) and not welch_differs(a, [1.0, 1.08, 0.95])
    assert not welch_differs([1.0], b)
    # unequal sizes and spreads: Student's pooled test says "differ" (p = 0.009), Welch's does
    # not (p = 0.20); the answer must be Welch's
    wide = [0.0, 2.0, -1.0, 3.0]
    narrow = [2.6, 2.4, 2.5, 2.7, 2.3, 2.6, 2.5, 2.4, 2.6, 2.5, 2.5, 2.4]
    assert st.ttest_ind(wide, narrow, equal_var=True).pvalue < 0.05 < _welch_p(wide, narrow)
    assert not welch_differs(wide, narrow)
    # two-sided: p = 0.062 is not below 0.05 (one-sided it would be 0.031)
    c, d = [0.0, 0.1, 0.2, 0.3, 0.15], [0.2, 0.3, 0.35, 0.2, 0.4]
    assert 0.05 < _welch_p(c, d) < 0.1
    assert not welch_differs(c, d) and welch_differs(c, d, alpha=0.1)


def _t_interval(column, level=0.95):
    """mean, lo, hi of the finite values of a 1-D array, by SciPy (NaN without two of them)."""
    v = column[np.isfinite(column)]
    if v.size < 2:
        return (v.mean() if v.size else np.nan), np.nan, np.nan
    lo, hi = st.t.interval(level, v.size - 1, loc=v.mean(), scale=st.sem(v))
    return v.mean(), lo, hi


def test_ci_band_is_the_t_interval_along_an_axis():
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=(4, 6, 3))
    values[1, 0, 2] = np.nan  # a diverged seed at one point
    values[3, :, 0] = [np.nan, np.nan, 2.0, np.inf, np.nan, -np.inf]  # one finite value
    values[0, 4, 1] = -1.0  # not positive: left out of the geometric band only
    mean, lo, hi = ci_band(values, axis=1, level=0.9)
    gmean, glo, ghi = ci_band(values, axis=1, level=0.9, log=True)
    assert mean.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            want = _t_interval(values[i, :, j], 0.9)
            assert (mean[i, j], lo[i, j], hi[i, j]) == pytest.approx(want, nan_ok=True)
            with np.errstate(invalid="ignore"):
                logs = _t_interval(np.log10(values[i, :, j]), 0.9)
            assert (gmean[i, j], glo[i, j], ghi[i, j]) == pytest.approx(
                tuple(10.0**v for v in logs), nan_ok=True
            )
    assert np.isnan(lo[3, 0]) and mean[3, 0] == 2.0  # the one finite value's mean, no band
    assert (glo > 0).sum() == np.isfinite(glo).sum()  # a geometric band stays positive


@pytest.mark.parametrize(("k", "n"), [(0, 25), (1, 25), (7, 25), (24, 25), (25, 25), (3, 5)])
def test_proportion_ci_is_scipys_wilson_interval(k, n):
    ci = proportion_ci(k, n)
    ref = st.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ci["mean"] == k / n and (ci["k"], ci["n"]) == (k, n)
    assert ci["lo"] == pytest.approx(ref.low, abs=1e-12)
    assert ci["hi"] == pytest.approx(ref.high, abs=1e-12)
    assert 0.0 <= ci["lo"] <= k / n <= ci["hi"] <= 1.0
    assert ci["hi"] > ci["lo"]  # never empty, even at k = 0 or k = n


def test_proportion_ci_refuses_impossible_counts_and_has_no_interval_for_no_trials():
    for k, n in [(-1, 5), (6, 5), (1.5, 5)]:
        with pytest.raises(ValueError, match="0 <= k <= n"):
            proportion_ci(k, n)
    assert math.isnan(proportion_ci(0, 0)["lo"])


def test_paired_test_is_the_t_test_of_the_differences_by_hand():
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 5, 6)  # what a seed gives both arms (data draw, initial weights)
    a = shared + rng.normal(0, 0.1, 6)
    b = shared + 0.3 + rng.normal(0, 0.1, 6)
    d = a - b
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    p = 2 * st.t.sf(abs(t), d.size - 1)  # by hand, from the t distribution
    assert p < 0.05 and paired_differs(a, b)
    assert not welch_differs(a, b)  # the shared part hides it from an unpaired test
    assert not paired_differs(a, a)  # identical: no difference
    assert paired_differs([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])  # a constant, non-zero difference
    assert not paired_differs([1.0, np.nan, 3.0], [0.0, 1.0, np.nan])  # one finite pair
    with pytest.raises(ValueError, match="one shape"):
        paired_differs([1.0, 2.0], [1.0, 2.0, 3.0])
    # the p-value threshold: a difference just above/below significance by construction
    d = np.array([1.0, -0.2, 0.9, 0.4, 0.7])
    p = 2 * st.t.sf(abs(d.mean() / (d.std(ddof=1) / math.sqrt(5))), 4)
    assert paired_differs(d, np.zeros(5), alpha=p * 1.01)
    assert not paired_differs(d, np.zeros(5), alpha=p * 0.99)


def test_paired_by_seed_lines_up_seeds_whatever_the_order():
    import pandas as pd

    a = pd.Series([1.0, 2.0, 3.0, np.nan], index=[3, 1, 2, 0])
    b = pd.Series([20.0, 10.0, 40.0, 30.0], index=[2, 1, 4, 0])
    x, y = paired_by_seed(a, b)
    # seeds in both and finite in both: 1 and 2 (0 is NaN in a, 3 and 4 are on one side only)
    np.testing.assert_array_equal(x, [2.0, 3.0])
    np.testing.assert_array_equal(y, [10.0, 20.0])
    with pytest.raises(ValueError, match="one value per seed"):
        paired_by_seed(pd.Series([1.0, 2.0], index=[0, 0]), b)


def test_as_float_reads_a_json_null_as_nan():
    import math

    from actlab.stats import as_float

    assert math.isnan(as_float(None)) and as_float(3) == 3.0 and as_float("inf") == math.inf
