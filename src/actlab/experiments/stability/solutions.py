"""Worked solutions of the stability exercises (tested in tests/experiments/test_stability.py)."""

from __future__ import annotations

import math


def gd_on_quadratic(curvature: float, lr: float, x0: float, steps: int) -> list[float]:
    """Iterates of gradient descent on ``L(x) = curvature * x^2 / 2`` from ``x0``."""
    xs = [x0]
    for _ in range(steps):
        x = xs[-1]
        xs.append(x - lr * curvature * x)  # the gradient of L is curvature * x
    return xs


def heavy_ball_on_quadratic(
    curvature: float, lr: float, momentum: float, x0: float, steps: int
) -> list[float]:
    """Iterates of heavy-ball momentum (torch.optim.SGD's form) on ``curvature * x^2 / 2``."""
    xs, buf = [x0], 0.0
    for _ in range(steps):
        x = xs[-1]
        buf = momentum * buf + curvature * x  # b = mu b + g
        xs.append(x - lr * buf)  # x -= lr b
    return xs


def largest_stable_rate(
    rates: list[float], diverged: list[bool], final_loss: list[float], initial_loss: float
) -> float:
    """The largest rate that did not diverge and ended below ``initial_loss``; NaN if none."""
    stable = [
        r
        for r, div, end in zip(rates, diverged, final_loss, strict=True)
        if not div and math.isfinite(end) and end < initial_loss
    ]
    return max(stable) if stable else math.nan
