"""Worked solutions of the tiny-classifier exercises (tested in tests/test_tiny_classifier.py)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def first_layer_grad(model: nn.Sequential, x: Tensor, y: Tensor) -> float:
    """Mean ``|dL/dW_1|`` of the first ``nn.Linear``, cross-entropy loss; ``.grad`` untouched."""
    first = next(m for m in model if isinstance(m, nn.Linear))
    loss = nn.functional.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, first.weight)  # does not write into .grad
    return grad.abs().mean().item()


def dead_fraction(h: Tensor) -> Tensor:
    """Fraction of units whose output is 0 on every input (``h``: ``(n_inputs, n_units)``)."""
    return (h == 0).all(dim=0).float().mean()


def radial_features(x: Tensor) -> Tensor:
    """``(x_1, x_2, x_1^2 + x_2^2)``: the squared radius separates the circles linearly."""
    return torch.cat([x, x.square().sum(dim=1, keepdim=True)], dim=1)
