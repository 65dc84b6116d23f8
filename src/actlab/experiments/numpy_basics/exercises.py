"""Exercises of the NumPy-from-scratch lesson: fill in the functions below.

Each raises ``NotImplementedError`` until you write it, except :func:`softmax_rows`, the debug
exercise, which runs but is wrong. Worked solutions:
:mod:`actlab.experiments.numpy_basics.solutions` (try first!). Check yours with the same tests
the solutions pass, e.g.::

    from actlab.experiments.numpy_basics import exercises as mine
    y, dy = mine.leaky_relu_and_grad(np.array([-2.0, 3.0]))
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "leaky_relu_and_grad",
    "log_softmax",
    "compose_affine",
    "dead_units",
    "softmax_rows",
    "temperature_for_entropy",
]


def leaky_relu_and_grad(x: np.ndarray, slope: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """LeakyReLU and its derivative, element-wise.

    ``y = x`` for ``x > 0``, ``slope * x`` otherwise; ``dy/dx = 1`` for ``x > 0``, ``slope``
    otherwise (PyTorch's choice at ``x = 0``).

    Args:
        x: Inputs, any shape.
        slope: The negative-side slope.

    Returns:
        ``(y, dy)``, each of the shape of ``x``.
    """
    raise NotImplementedError("exercise: write leaky_relu_and_grad")


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log softmax(x)`` along ``axis``, finite for any finite logits.

    It must give ``[-2.4076, -1.4076, -0.4076]`` for ``[1000, 1001, 1002]`` and
    ``[0, -1000]`` for ``[0, -1000]``, without a warning.
    """
    raise NotImplementedError("exercise: write log_softmax")


def compose_affine(
    weights: list[np.ndarray], biases: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The single affine map ``x -> W x + b`` equal to the stack of linear layers
    ``h_l = W_l h_{l-1} + b_l`` (no activation), ``W_l`` of shape ``(d_l, d_{l-1})``, input
    side first.

    Returns:
        ``W`` ``(d_L, d_0)`` and ``b`` ``(d_L,)``.
    """
    raise NotImplementedError("exercise: write compose_affine")


def dead_units(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Which units of a ReLU layer ``relu(x W^T + b)`` are dead on the batch ``x``.

    A unit is dead when its pre-activation is ``<= 0`` for every example, so that its output
    and its gradient are 0 on the whole batch.

    Args:
        x: Inputs ``(n, d_in)``.
        weight: ``(d_out, d_in)``.
        bias: ``(d_out,)``.

    Returns:
        A boolean array ``(d_out,)``, True for a dead unit.
    """
    raise NotImplementedError("exercise: write dead_units")


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Softmax of every row of ``x`` ``(n, k)``, stable against overflow.

    (Debug exercise: this runs, but it is wrong. Find the bugs and fix them.)
    """
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def temperature_for_entropy(logits: np.ndarray, target: float) -> float:
    """The temperature ``T`` at which ``softmax(logits / T)`` has entropy ``target`` (nats).

    The logits have a unique maximum and ``0 < target < log(len(logits))``; the entropy grows
    monotonically with ``T``, from 0 (``T -> 0``) to ``log K`` (``T -> inf``). Return ``T`` to a
    relative precision of ``1e-9``.
    """
    raise NotImplementedError("exercise: write temperature_for_entropy")
