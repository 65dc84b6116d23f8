"""RL results the way the field reports them (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"; the ``rliable`` package): the interquartile mean over runs and tasks,
stratified bootstrap confidence intervals, and the area under the return curve.

Scores are arrays ``(runs, tasks)``: one row per seed, one column per task (environment). A
single task is ``(runs, 1)`` or ``(runs,)``.

* IQM: the mean of the middle 50% of all ``runs x tasks`` scores,
  ``scipy.stats.trim_mean(scores, 0.25, axis=None)`` (rliable's ``aggregate_iqm``).
* Stratified bootstrap: each replicate resamples the runs of every task with replacement,
  independently per task (the strata), and recomputes the statistic; the interval is the
  percentile interval of the replicates (rliable's default ``method="percentile"``).
* Return curves: at each point ``t`` of a grid of environment steps, the mean return of the
  episodes a seed finished in the window ``(t - window, t]`` (NaN where it finished none, then
  carried forward); the AUC is the mean of that curve over the grid (the area divided by the
  span, so that it reads as an average return).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats as _st

__all__ = ["iqm", "stratified_bootstrap", "return_curves", "auc", "interval_estimate"]


def _as_runs_tasks(scores: np.ndarray) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"scores must be (runs, tasks) or (runs,), got shape {np.shape(scores)}")
    return x


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all scores ``(runs, tasks)``: the 25% trimmed mean."""
    return float(_st.trim_mean(_as_runs_tasks(scores), 0.25, axis=None))


def stratified_bootstrap(
    scores: np.ndarray,
    statistic: Callable[[np.ndarray], float] = iqm,
    reps: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """``reps`` bootstrap replicates of ``statistic`` over ``scores`` ``(runs, tasks)``, each
    resampling the runs of every task with replacement, independently per task.

    Returns:
        ``(reps,)`` replicate values.
    """
    x = _as_runs_tasks(scores)
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    runs, tasks = x.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))  # (rep, run, task)
    resampled = np.take_along_axis(x[None], idx, axis=1)
    return np.array([statistic(r) for r in resampled])


def interval_estimate(
    scores: np.ndarray,
    statistic: Callable[[np.ndarray], float] = iqm,
    level: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """``{"mean": point estimate, "lo", "hi", "n"}``: the statistic on the scores and its
    stratified-bootstrap percentile interval (``n``: runs). With one run the interval is the
    point (a bootstrap of one value has no spread; read ``n``)."""
    x = _as_runs_tasks(scores)
    point = float(statistic(x))
    reps_values = stratified_bootstrap(x, statistic, reps, seed)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(reps_values, [tail, 100 - tail])
    return {"mean": point, "lo": float(lo), "hi": float(hi), "n": int(x.shape[0])}


def return_curves(
    episodes: pd.DataFrame, grid: np.ndarray, window: float, by: str = "seed"
) -> pd.DataFrame:
    """Per ``by`` (a seed), the mean return of the episodes finished in ``(t - window, t]`` for
    each ``t`` of ``grid``; where none finished, the last value before (NaN before the first).

    Args:
        episodes: Columns ``by``, ``env_step``, ``episode_return``.
        grid: Increasing environment steps.
        window: Width of the window in environment steps (> 0).

    Returns:
        One row per ``by`` value, one column per grid point (the index is ``by``).
    """
    if window <= 0:
        raise ValueError(f"window must be > 0, got {window}")
    grid = np.asarray(grid, dtype=np.float64)
    rows = {}
    for key, group in episodes.groupby(by, sort=True):
        steps = group["env_step"].to_numpy(dtype=np.float64)
        values = group["episode_return"].to_numpy(dtype=np.float64)
        curve = np.full(len(grid), np.nan)
        for i, t in enumerate(grid):
            inside = (steps > t - window) & (steps <= t)
            if inside.any():
                curve[i] = values[inside].mean()
            elif i > 0:
                curve[i] = curve[i - 1]
        rows[key] = curve
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(grid))


def auc(curve: np.ndarray) -> float:
    """The mean of a return curve over an evenly spaced grid (trapezoid area / span), NaNs at
    the start (no episode finished yet) counted as the first defined value."""
    c = np.asarray(curve, dtype=np.float64)
    if c.size == 0 or np.isnan(c).all():
        return float("nan")
    first = np.flatnonzero(~np.isnan(c))[0]
    c = c.copy()
    c[:first] = c[first]
    if c.size == 1:
        return float(c[0])
    return float(np.trapezoid(c) / (c.size - 1))
