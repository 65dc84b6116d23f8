"""Worked solutions of the exercises of "Swapping activations mid-training" (tested against the
experiment's engine and ``torch.optim.Adam`` in ``tests/test_activation_swap.py``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["swap_activations", "reset_adam", "train_with_swap"]


def swap_activations(
    model: nn.Sequential,
    new: Callable[[], nn.Module],
    old: type[nn.Module] | tuple[type[nn.Module], ...] = nn.Tanh,
) -> nn.Sequential:
    """Replace every ``old`` module of ``model`` by ``new()``, in place; the linear layers (and
    their parameters) stay the same objects."""
    for i, module in enumerate(model):
        if isinstance(module, old):
            model[i] = new()
    return model


def reset_adam(optimizer: torch.optim.Adam) -> None:
    """Forget Adam's whole per-parameter state: moments *and* step count. The next ``step()``
    re-creates it as a fresh Adam would (``t = 1`` at that step, so the bias corrections
    ``1 - beta^t`` are small again)."""
    optimizer.state.clear()


def train_with_swap(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    swap_epoch: int,
    new: Callable[[], nn.Module],
    reset: bool,
    lr: float = 1e-3,
) -> list[float]:
    """Full-batch Adam on the MSE, tanh swapped for ``new()`` before update ``swap_epoch``,
    Adam's state reset there if ``reset``; the loss before each update."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        if epoch == swap_epoch:
            swap_activations(model, new)
            if reset:
                reset_adam(optimizer)
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
