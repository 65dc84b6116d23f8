"""Worked solutions of the capacity exercises (tested in tests/experiments/test_capacity.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def pieces_by_sampling(f: Callable, lo: float, hi: float, n: int = 100_001) -> int:
    """Pieces of a continuous piecewise-linear ``f`` on ``[lo, hi]`` from ``n`` samples."""
    x = np.linspace(lo, hi, n)
    slope = np.diff(f(x)) / np.diff(x)
    change = np.abs(np.diff(slope)) > 1e-6 * max(np.abs(slope).max(), 1e-300)
    # a breakpoint strictly between two samples changes the slope twice in a row: count runs
    starts = change & ~np.concatenate([[False], change[:-1]])
    return int(starts.sum()) + 1


def matched_width(depth: int, width: int, in_dim: int = 1) -> int:
    """Width ``M`` of ``in_dim -> M -> 1`` with the parameter count closest to the deep net's."""
    sizes = [in_dim] + [width] * depth + [1]
    target = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    per_unit = in_dim + 2  # in_dim weights and a bias in, one weight out
    low = max((target - 1) // per_unit, 1)  # the output bias is the 1
    return min((low, low + 1), key=lambda m: (abs(per_unit * m + 1 - target), m))
