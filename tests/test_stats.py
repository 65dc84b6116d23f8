"""Means with confidence intervals and Welch's test, against SciPy."""

import math

import numpy as np
import pytest
from scipy import stats as st

from actlab.stats import ci_band, mean_ci, welch_differs


def test_mean_ci_is_the_student_t_interval_of_the_finite_values():
    values = np.array([0.2, 0.5, 0.1, np.nan, 0.4, np.inf])
    finite = values[np.isfinite(values)]
    lo, hi = st.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=st.sem(finite))
    got = mean_ci(values)
    assert got["n"] == 4 and got["mean"] == pytest.approx(finite.mean())
    assert (got["lo"], got["hi"]) == (pytest.approx(lo), pytest.approx(hi))


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


def test_welch_agrees_with_scipy_and_needs_two_values_a_side():
    a, b = [1.0, 1.1, 0.9, 1.05], [1.3, 1.4, 1.35, 1.45]
    assert welch_differs(a, b) == (st.ttest_ind(a, b, equal_var=False).pvalue < 0.05)
    assert welch_differs(a, b) and not welch_differs(a, [1.0, 1.08, 0.95])
    assert not welch_differs([1.0], b)


def test_ci_band_is_mean_ci_along_an_axis():
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=(6, 4, 3))
    values[0, 1, 2] = np.nan  # a diverged seed at one point
    values[1:, 3, 0] = np.nan  # one finite value left: no interval
    mean, lo, hi = ci_band(values, axis=0)
    gmean, glo, ghi = ci_band(values, axis=0, log=True)
    for i in range(4):
        for j in range(3):
            ref = mean_ci(values[:, i, j])
            assert mean[i, j] == pytest.approx(ref["mean"])
            assert lo[i, j] == pytest.approx(ref["lo"], nan_ok=True)
            assert hi[i, j] == pytest.approx(ref["hi"], nan_ok=True)
            logs = mean_ci(np.log10(values[:, i, j]))
            assert gmean[i, j] == pytest.approx(10 ** logs["mean"])
            assert glo[i, j] == pytest.approx(10 ** logs["lo"], nan_ok=True)
