"""Numbers as they appear in reports: one formatting for every experiment's prose and tables."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["num", "pct", "pct_ci", "ci", "ratio", "ratio_ci"]


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


def pct_ci(stat: dict[str, Any]) -> str:
    """``mean [lo, hi]`` of a share as percentages; the mean alone when the interval is undefined
    or has zero width (every seed gave the same value)."""
    mean, lo, hi = (
        math.nan if stat.get(k) is None else float(stat[k]) for k in ("mean", "lo", "hi")
    )
    if math.isnan(lo) or lo == hi:
        return pct(mean)
    return f"{pct(mean)} [{pct(lo)}, {pct(hi)}]"


def _scientific(x: float) -> bool:
    """Whether :func:`num` writes ``x`` as ``a x 10^b``."""
    return x != 0 and math.isfinite(x) and not (1e-3 <= abs(x) < 1e5)


def ci(stat: dict[str, Any], digits: int = 3) -> str:
    """``mean [lo, hi]`` from a :func:`actlab.stats.mean_ci` dict (the mean alone when the
    interval is undefined). Where one of the three would be written ``a x 10^b``, all three
    share one power of ten, ``(1.4 [0.2, 2.61]) x 10^{-3}``, so that they read side by side."""
    mean, lo, hi = stat.get("mean"), stat.get("lo"), stat.get("hi")
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return num(mean, digits)
    values = [float(mean), float(lo), float(hi)]
    if not any(_scientific(v) for v in values) or not all(math.isfinite(v) for v in values):
        return f"{num(mean, digits)} [{num(lo, digits)}, {num(hi, digits)}]"
    exponent = math.floor(math.log10(max(abs(v) for v in values)))
    m, a, b = (f"{v / 10.0**exponent + 0.0:.{digits}g}" for v in values)
    return rf"$({m}\;[{a},\, {b}]) \times 10^{{{exponent}}}$"


def ratio_ci(stat: dict[str, Any], digits: int = 2) -> str:
    """``mean [lo, hi]`` of a log10 factor (a :func:`actlab.stats.mean_ci` dict over
    ``log10`` values) with one style for all three: all as ``1/x`` when one of them is below
    1/2, else all as decimals (:func:`ratio` alone would mix ``0.5 [1/2.1, 0.53]``)."""
    mean, lo, hi = stat.get("mean"), stat.get("lo"), stat.get("hi")
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return ratio(mean, digits)
    logs = [float(mean), float(lo), float(hi)]
    # more digits where the interval would read "1 [1, 1]" (a factor 1.003 [1.001, 1.005])
    for more in range(digits, digits + 4):
        text = _ratio_triple(logs, more)
        parts = re.findall(r"[^\s\[\],]+", text)
        if len(set(parts)) == len({round(v, 12) for v in logs}):
            break
    return text


def _ratio_triple(logs: list[float], digits: int) -> str:
    """``mean [lo, hi]`` of three log10 factors in one style (see :func:`ratio_ci`)."""
    mean, lo, hi = logs
    if any(abs(v) >= 4 for v in logs) or min(logs) > math.log10(0.5):
        return f"{ratio(mean, digits)} [{ratio(lo, digits)}, {ratio(hi, digits)}]"

    def one(log10: float) -> str:
        if log10 >= 0:
            return num(10.0**log10, digits)
        inverse = 10.0**-log10
        text = num(inverse, digits)
        for more in range(digits + 1, 8):  # enough digits that no factor below 1 reads "1/1"
            if text != "1":
                break
            text = num(inverse, more)
        return f"1/{text}"

    return f"{one(mean)} [{one(lo)}, {one(hi)}]"


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
