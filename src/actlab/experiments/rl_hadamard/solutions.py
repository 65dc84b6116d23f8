"""Worked solutions of the RL chapter's exercises (tested in
tests/experiments/test_rl_hadamard.py)."""

from __future__ import annotations

import math

import numpy as np


def lambda_returns(
    rewards: np.ndarray,
    terminated: np.ndarray,
    next_max_q: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Q(λ) targets, backwards from the last step (``G_T`` is the last bootstrap)."""
    T = len(rewards)
    out = np.zeros(T)
    later = next_max_q[-1]  # G_{t+1} for t = T - 1
    for t in reversed(range(T)):
        mix = lam * later + (1 - lam) * next_max_q[t]
        out[t] = rewards[t] + gamma * (1 - terminated[t]) * mix
        later = out[t]
    return out


def matched_plain_width(in_features: int, out_features: int, n_actions: int) -> int:
    """Smallest plain width with at least the Hadamard layer's parameters (+ head weights)."""
    hadamard = 2 * (in_features + 1) * out_features + n_actions * out_features
    return math.ceil(hadamard / (in_features + 1 + n_actions))
