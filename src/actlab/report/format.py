"""Numbers as they appear in reports: one formatting for every experiment's prose and tables."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["num", "pct", "ci", "ratio"]


def num(x: float | None, digits: int = 3) -> str:
    """A number for prose and tables: plain when moderate, ``a x 10^b`` (LaTeX) when tiny or
    huge; ``n/a`` for None or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = float(x) + 0.0  # no "-0"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if 1 <= abs(x) < 1e5:
        r = float(f"{x:.{digits}g}")  # rounded to `digits` significant digits
        return f"{r:.{digits}g}" if abs(r) < 10**digits else f"{r:.0f}"  # "1300", not "1.3e+03"
    if x == 0.0 or 1e-3 <= abs(x) < 1:
        return f"{x:.{digits}g}"
    mantissa, exponent = f"{x:.{max(digits - 2, 1)}e}".split("e")
    return rf"${mantissa} \times 10^{{{int(exponent)}}}$"


def pct(p: float) -> str:
    """A probability as a percentage (tiny ones in scientific notation)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    if p == 0.0:
        return "0%"
    if p >= 1e-4:
        return f"{100 * p:.3g}%"
    return f"{num(100 * p, 2)}%"


def ci(stat: dict[str, Any], digits: int = 3) -> str:
    """``mean [lo, hi]`` from a :func:`actlab.stats.mean_ci` dict (the mean alone when the
    interval is undefined)."""
    mean, lo, hi = stat.get("mean"), stat.get("lo"), stat.get("hi")
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return num(mean, digits)
    return f"{num(mean, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def ratio(log10: float, digits: int = 2) -> str:
    """``10**log10`` as a readable factor: ``1/250`` below 1/2, ``0.83`` between 1/2 and 1
    (``1/1.2`` would hide how close to 1 it is, and ``0.996`` would round to ``1/1``), ``40``
    above 1, ``$10^{-6.8}$`` beyond four decades."""
    if log10 is None or (isinstance(log10, float) and math.isnan(log10)):
        return "n/a"
    if abs(log10) >= 4:
        return rf"$10^{{{log10:.1f}}}$"
    value = 10.0**log10
    if value > 0.5:
        return num(value, digits)
    return f"1/{num(1 / value, digits)}"
