"""Worked solutions of the gradient-flow exercises (tested in
tests/experiments/test_gradient_flow.py)."""

from __future__ import annotations

import math

from scipy import optimize

from actlab import theory


def layers_to_fall(chi1: float, factor: float = 1e-6) -> int:
    """Smallest integer ``k`` with ``chi1 ** (k / 2) < factor``: ``k > 2 ln(factor) / ln(chi1)``;
    a ``ValueError`` for ``chi1`` or ``factor`` outside ``(0, 1)`` (the signal never falls)."""
    if not (0.0 < chi1 < 1.0 and 0.0 < factor < 1.0):
        raise ValueError(f"need 0 < chi1 < 1 and 0 < factor < 1, got {chi1!r}, {factor!r}")
    bound = 2.0 * math.log(factor) / math.log(chi1)
    k = math.floor(bound) + 1  # strictly beyond the bound
    return max(k, 0)


def tanh_edge_of_chaos(sigma_b2: float) -> float:
    """Brent's method on ``log chi_1(sigma_w^2)`` over ``[1, 10]`` (``chi_1 < 1`` at the left
    end, ``> 1`` at the right for the biases of the chapter's grid); at ``sigma_b^2 = 0``,
    ``q* = 0`` for ``sigma_w^2 <= 1`` and ``chi_1 = sigma_w^2`` there, so the edge is 1."""
    if sigma_b2 == 0:
        return 1.0

    def gap(sigma_w2: float) -> float:
        return math.log(float(theory.chi1("tanh", sigma_w2, sigma_b2)))

    return optimize.brentq(gap, 1.0 + 1e-6, 10.0, xtol=1e-10)
