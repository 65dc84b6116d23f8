"""Worked solutions of the deep-MLP exercises (tested in tests/experiments/test_deep_mlp.py)."""

from __future__ import annotations

from torch import Tensor, nn


def spread_factor(net: nn.Sequential, x: Tensor) -> float:
    """Geometric-mean factor per layer by which the hidden spread changes, first to last."""
    spreads, h = [], x
    for module in net[:-1]:  # the last module is the output layer
        h = module(h)
        if not isinstance(module, nn.Linear):  # an activation: a hidden layer's output
            spreads.append(h.std(dim=0, unbiased=False).mean())
    first, last = spreads[0], spreads[-1]
    return (last / first).pow(1.0 / (len(spreads) - 1)).item()


def adam_first_step(grad: Tensor, lr: float, eps: float = 1e-8) -> Tensor:
    """Adam's first update ``-lr * m_hat_1 / (sqrt(v_hat_1) + eps)`` with ``m_hat_1 = g`` and
    ``v_hat_1 = g^2`` after bias correction: ``-lr * g / (|g| + eps)``."""
    return -lr * grad / (grad.abs() + eps)
