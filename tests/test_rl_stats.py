"""RL statistics against SciPy and hand counts: IQM, stratified bootstrap, return curves, AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from actlab.rl.stats import auc, interval_estimate, iqm, return_curves, stratified_bootstrap


def test_iqm_is_the_mean_of_the_middle_half():
    x = np.array([[1.0, 100.0], [2.0, 3.0], [4.0, -50.0], [5.0, 6.0]])  # 8 scores
    middle = np.sort(x.ravel())[2:6]  # drop the 2 lowest and the 2 highest
    assert iqm(x) == pytest.approx(middle.mean())
    rng = np.random.default_rng(1)
    y = rng.normal(size=(10, 3))
    assert iqm(y) == pytest.approx(stats.trim_mean(y.ravel(), 0.25))


def test_the_bootstrap_resamples_each_task_from_its_own_runs():
    # task 0 takes values 0..4, task 1 values 100..104: a replicate column mixes no strata
    x = np.stack([np.arange(5.0), 100 + np.arange(5.0)], axis=1)
    seen = []
    stratified_bootstrap(x, lambda r: seen.append(r.copy()) or 0.0, reps=50, seed=3)
    for r in seen:
        assert r.shape == (5, 2)
        assert set(r[:, 0]) <= set(x[:, 0]) and set(r[:, 1]) <= set(x[:, 1])
    # the two tasks are resampled independently: their index patterns differ somewhere
    assert any(not np.array_equal(r[:, 0], r[:, 1] - 100) for r in seen)


def test_the_interval_agrees_with_scipys_percentile_bootstrap():
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 2.0, size=30)
    ours = interval_estimate(x, lambda r: float(r.mean()), reps=4000, seed=1)
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=4000, method="percentile", random_state=2
    ).confidence_interval
    width = ref.high - ref.low
    assert ours["mean"] == pytest.approx(x.mean())
    assert ours["lo"] == pytest.approx(ref.low, abs=0.1 * width)  # Monte Carlo error
    assert ours["hi"] == pytest.approx(ref.high, abs=0.1 * width)
    one = interval_estimate(np.array([[3.0]]))
    assert one == {"mean": 3.0, "lo": 3.0, "hi": 3.0, "n": 1}


def test_return_curves_average_the_window_and_carry_forward():
    episodes = pd.DataFrame(
        {
            "seed": [0, 0, 0, 1],
            "env_step": [10, 15, 45, 30],
            "episode_return": [1.0, 3.0, 10.0, 5.0],
        }
    )
    curves = return_curves(episodes, np.array([10, 20, 30, 40, 50]), window=10)
    np.testing.assert_array_equal(curves.loc[0].to_numpy(), [1.0, 3.0, 3.0, 3.0, 10.0])
    np.testing.assert_array_equal(curves.loc[1].to_numpy(), [np.nan, np.nan, 5.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="window"):
        return_curves(episodes, np.array([10]), window=0)


def test_auc_is_the_mean_height_of_the_curve():
    assert auc(np.array([2.0, 2.0, 2.0])) == pytest.approx(2.0)
    assert auc(np.array([0.0, 1.0, 2.0, 3.0])) == pytest.approx(1.5)
    assert auc(np.array([np.nan, 4.0, 4.0])) == pytest.approx(4.0)
    assert np.isnan(auc(np.array([np.nan, np.nan])))
