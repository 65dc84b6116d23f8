"""Worked solutions of the unit-states exercises (tested in
tests/experiments/test_unit_states.py)."""

from __future__ import annotations

import math


def born_dead(width: int, depth: int) -> float:
    """``1 - (1 - 2^-N)^D``: each of the D layers is all off with probability ``2^-N``, and an
    all-zero layer stays zero (no biases)."""
    return 1.0 - (1.0 - 2.0**-width) ** depth


def tanh_saturated_share(q: float) -> float:
    """``P(|z| > artanh(0.99))`` for ``z ~ N(0, q)``: ``2 (1 - Phi(a / sqrt(q)))``, with
    ``1 - Phi(t) = erfc(t / sqrt(2)) / 2``."""
    a = math.atanh(0.99)
    return math.erfc(a / math.sqrt(q) / math.sqrt(2.0))
