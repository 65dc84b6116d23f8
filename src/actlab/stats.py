"""Summary statistics over seeds: means with confidence intervals, and whether two groups differ.

Every experiment reports numbers through these, so that "A beats B" is only said when the
intervals say so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

__all__ = [
    "as_float",
    "mean_ci",
    "ci_band",
    "paired_by_seed",
    "paired_differs",
    "proportion_ci",
    "welch_differs",
]


def as_float(x: object) -> float:
    """A number read from a summary as a float: ``None`` (how JSON stores a NaN) is NaN."""
    return math.nan if x is None else float(x)


def mean_ci(
    values: Sequence[float] | np.ndarray,
    level: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Mean and the Student-t confidence interval of the mean over finite ``values``.

    ``mean +- t_{(1+level)/2, n-1} * sd / sqrt(n)``; ``lo``/``hi`` are NaN when fewer than two
    finite values remain. ``bounds`` clips the interval to the range the quantity can take
    (``(0, 1)`` for a fraction, whose interval would otherwise dip below 0 near 0). Returns
    ``{"mean", "lo", "hi", "sd", "n"}`` (``n`` counts the finite values used; non-finite ones,
    e.g. diverged members, are left out and ``n`` says so).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "sd": math.nan, "n": 0}
    mean = float(v.mean())
    if n < 2:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "sd": math.nan, "n": 1}
    sd = float(v.std(ddof=1))
    half = float(_st.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": mean, "lo": lo, "hi": hi, "sd": sd, "n": n}


def ci_band(
    values: np.ndarray, axis: int = 0, level: float = 0.95, log: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`mean_ci` along ``axis`` of an array, vectorised (for curves and bands).

    Returns ``(mean, lo, hi)``, each ``values``' shape without ``axis``; non-finite values are
    left out, and ``lo``/``hi`` are NaN where fewer than two finite values remain. With ``log``
    the statistics are taken on ``log10`` of the positive values and returned as powers of 10
    (a geometric mean with its band, which stays positive on a log axis).
    """
    v = np.asarray(values, dtype=np.float64)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log10(np.where(v > 0, v, np.nan))
    ok = np.isfinite(v)
    n = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(axis=axis) / n
        dev = np.where(ok, v - np.expand_dims(mean, axis), 0.0)
        sd = np.sqrt((dev**2).sum(axis=axis) / (n - 1))
        half = _st.t.ppf((1 + level) / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    lo, hi = mean - half, mean + half
    if log:
        return 10.0**mean, 10.0**lo, 10.0**hi
    return mean, lo, hi


def welch_differs(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> bool:
    """Whether the means of ``a`` and ``b`` differ by Welch's two-sided t-test at ``alpha``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return False
    with warnings.catch_warnings():  # near-identical samples: SciPy warns, the answer stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(_st.ttest_ind(a, b, equal_var=False).pvalue < alpha)


def paired_by_seed(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Two per-seed samples (Series indexed by seed, in any order) lined up for a paired test:
    the seeds where both are finite, in increasing order; entry ``i`` of both comes from the
    same seed. A seed missing or non-finite on one side is dropped from both.

    Raises:
        ValueError: if a seed appears twice on one side.
    """
    a, b = pd.Series(a, dtype=np.float64), pd.Series(b, dtype=np.float64)
    for side in (a, b):
        if not side.index.is_unique:
            raise ValueError(
                f"paired samples need one value per seed, got seeds {list(side.index)}"
            )
    a, b = a[np.isfinite(a.to_numpy())], b[np.isfinite(b.to_numpy())]
    seeds = a.index.intersection(b.index).sort_values()
    return a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy()


def paired_differs(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> bool:
    """Whether ``a`` and ``b``, paired entry by entry (e.g. two activations trained from the
    same seed's weights and data), differ by the paired two-sided t-test at ``alpha``: the
    one-sample t-test of ``d_i = a_i - b_i``, ``t = mean(d) / (sd(d)/sqrt(n))`` with ``n - 1``
    degrees of freedom, over the pairs where both are finite. What two seeds share (the data
    draw, the initial weights) cancels in ``d``, so it separates differences Welch's test calls
    noise; :func:`mean_ci` of ``d`` is its interval."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need one shape, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if d.size < 2:
        return False
    if np.all(d == d[0]):  # no spread: differ exactly when the constant difference is not 0
        return bool(d[0] != 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(_st.ttest_1samp(d, 0.0).pvalue < alpha)


def proportion_ci(k: int, n: int, level: float = 0.95) -> dict[str, float]:
    """A count ``k`` of ``n`` independent trials as a proportion with its Wilson score interval.

    ``p = k/n``; with ``z = Phi^{-1}((1+level)/2)`` the interval is
    ``(p + z^2/(2n) +- z*sqrt(p(1-p)/n + z^2/(4n^2))) / (1 + z^2/n)``. Unlike ``p +- z*sd`` it
    stays inside [0, 1] and is not empty at ``k = 0`` or ``k = n`` (0 of 25 gives [0, 0.133]).
    Returns ``{"mean", "lo", "hi", "k", "n"}``; NaNs when ``n == 0``.

    Raises:
        ValueError: unless ``0 <= k <= n`` are integers.
    """
    if int(k) != k or int(n) != n or not 0 <= k <= n:
        raise ValueError(f"proportion_ci needs integers 0 <= k <= n, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "k": 0, "n": 0}
    z = float(_st.norm.ppf((1 + level) / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return {"mean": p, "lo": lo, "hi": hi, "k": k, "n": n}
