"""Worked solutions of the side-by-side exercises (tested in
tests/experiments/test_four_answers.py)."""

from __future__ import annotations

import math

from scipy import stats


def overlap_limits(n: int, level: float = 0.95) -> tuple[float, float]:
    """(largest gap with overlapping t-intervals, smallest gap Welch's test rejects), in sd."""
    q = (1 + level) / 2
    overlap_gap = 2 * stats.t.ppf(q, n - 1) / math.sqrt(n)
    test_gap = stats.t.ppf(q, 2 * n - 2) * math.sqrt(2 / n)
    return float(overlap_gap), float(test_gap)
