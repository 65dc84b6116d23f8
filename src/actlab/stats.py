"""Summary statistics over seeds: means with confidence intervals, and whether two groups differ.

Every experiment reports numbers through these, so that "A beats B" is only said when the
intervals say so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

__all__ = ["mean_ci", "welch_differs"]


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
