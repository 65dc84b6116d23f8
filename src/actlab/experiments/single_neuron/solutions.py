"""Worked solutions of the single-neuron exercises (tested in
tests/experiments/test_single_neuron.py)."""

from __future__ import annotations

import numpy as np


def relu_fit_at(x: np.ndarray, y: np.ndarray, w: float, b: float) -> tuple[float, float, float]:
    """Least squares of ``y`` on ``h = relu(w x + b)``; ``v = 0`` where ``h`` is constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    h = np.maximum(w * x + b, 0.0)
    var_h = h.var()
    if var_h <= 1e-14 * max(float((h**2).mean()), 1e-300):  # dead, or w = 0: h is constant
        v = 0.0
    else:
        v = float(((h - h.mean()) * (y - y.mean())).mean() / var_h)
    c = float(y.mean() - v * h.mean())
    return v, c, float(((v * h + c - y) ** 2).mean())
