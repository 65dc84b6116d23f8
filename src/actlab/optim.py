"""Optimisers over a flat parameter buffer with one learning rate per ensemble member.

Each follows the update rule of its ``torch.optim`` namesake (defaults included):

* ``sgd``:      ``p -= lr * g``
* ``momentum``: ``buf = mu * buf + g`` (``buf = g`` at the first step), ``p -= lr * buf``
* ``adam``:     ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
  ``p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)`` (PyTorch's fused Adam kernel)
* ``rmsprop``:  ``v = alpha v + (1-alpha) g^2``, ``p -= lr * g / (sqrt(v) + eps)``

``weight_decay`` adds ``wd * p`` to the gradient (coupled L2, as ``torch.optim``).

The buffer is laid out in blocks (one per layer's weights, biases, ...), each holding the rows of
every member in turn, so the parameters of members ``a..b-1`` are one contiguous slice of each
block. Members are grouped into runs of consecutive members sharing a learning rate, and each run
is updated by a few multi-tensor (``torch._foreach_*`` or fused) kernels with a scalar learning
rate. A frozen (diverged) member belongs to no run: its parameters and state never change again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.optim.adam import adam as _adam

__all__ = ["OPTIMIZERS", "OptimizerConfig", "EnsembleOptimizer"]

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")


@dataclass(frozen=True)
class OptimizerConfig:
    """Hyper-parameters shared by every member (the learning rate is per member, elsewhere)."""

    name: str = "adam"
    """One of ``sgd``, ``momentum``, ``adam``, ``rmsprop``."""
    momentum: float = 0.9
    """Heavy-ball coefficient of ``momentum`` (``torch.optim.SGD(momentum=...)``)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's decay rates of the first and second moments."""
    alpha: float = 0.99
    """RMSprop's decay rate of the squared-gradient average."""
    eps: float = 1e-8
    """Added to the denominator of Adam and RMSprop."""
    weight_decay: float = 0.0
    """Coupled L2 penalty added to the gradient."""

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.name!r}")
        checks = {
            "momentum": 0 <= self.momentum < 1,
            "betas": len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            "alpha": 0 <= self.alpha < 1,
            "eps": math.isfinite(self.eps) and self.eps >= 0,
            "weight_decay": math.isfinite(self.weight_decay) and self.weight_decay >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"optimizer {key} out of range: {getattr(self, key)!r}")


class EnsembleOptimizer:
    """Updates a flat buffer ``param`` ``(N,)`` in place from a gradient of the same shape.

    Args:
        param: The flat parameter buffer (updated in place, without autograd).
        lr: Learning rate per member, ``(E,)``; each finite and > 0.
        blocks: ``(offset, size)`` of every block of the buffer: member m's part of a block is
            ``param[offset + m * size : offset + (m + 1) * size]``.
        config: Shared hyper-parameters.
    """

    def __init__(
        self,
        param: Tensor,
        lr: Sequence[float] | Tensor,
        blocks: Sequence[tuple[int, int]],
        config: OptimizerConfig,
    ):
        lr = [float(v) for v in torch.as_tensor(lr, dtype=torch.float64).reshape(-1)]
        if not all(math.isfinite(v) and v > 0 for v in lr):
            raise ValueError(f"lr must be finite and > 0 for every member, got {lr}")
        self.param = param
        self.config = config
        self.lr = lr
        self.blocks = [(o, s) for o, s in blocks if s > 0]
        self.active = torch.ones(len(lr), dtype=torch.bool)
        self.state: dict[str, Tensor] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the optimiser state (moments, momentum buffers, step count) of every member."""
        self.step_count = 0
        names = {"momentum": ("buf",), "adam": ("m", "v"), "rmsprop": ("v",)}
        self.state = {k: torch.zeros_like(self.param) for k in names.get(self.config.name, ())}
        self._runs = self._make_runs()

    def freeze(self, members: Tensor) -> None:
        """Stop updating ``members`` (a bool mask ``(E,)``) from now on."""
        self.active &= ~members.cpu()
        self._runs = self._make_runs()

    def _make_runs(self) -> list[tuple[float, int, int]]:
        """Maximal runs ``(lr, start, stop)`` of consecutive active members sharing a rate."""
        runs: list[tuple[float, int, int]] = []
        for m, (lr, on) in enumerate(zip(self.lr, self.active.tolist(), strict=True)):
            if not on:
                continue
            if runs and runs[-1][0] == lr and runs[-1][2] == m:
                runs[-1] = (lr, runs[-1][1], m + 1)
            else:
                runs.append((lr, m, m + 1))
        return runs

    def _views(self, buffer: Tensor, start: int, stop: int) -> list[Tensor]:
        return [buffer[o + start * s : o + stop * s] for o, s in self.blocks]

    @torch.no_grad()
    def step(self, grad: Tensor) -> None:
        """One update of every active member from ``grad`` ``(N,)`` (not modified)."""
        cfg = self.config
        p = self.param.detach()
        self.step_count += 1
        for lr, a, b in self._runs:
            params, grads = self._views(p, a, b), self._views(grad, a, b)
            if cfg.name == "adam":
                steps = [torch.tensor(float(self.step_count - 1)) for _ in params]
                b1, b2 = cfg.betas
                _adam(
                    params,
                    grads,
                    self._views(self.state["m"], a, b),
                    self._views(self.state["v"], a, b),
                    [],
                    steps,
                    fused=True,
                    amsgrad=False,
                    beta1=b1,
                    beta2=b2,
                    lr=lr,
                    weight_decay=cfg.weight_decay,
                    eps=cfg.eps,
                    maximize=False,
                )
                continue
            if cfg.weight_decay:
                grads = torch._foreach_add(grads, params, alpha=cfg.weight_decay)
            if cfg.name == "sgd":
                torch._foreach_add_(params, grads, alpha=-lr)
            elif cfg.name == "momentum":
                bufs = self._views(self.state["buf"], a, b)
                if self.step_count == 1:
                    torch._foreach_copy_(bufs, grads)
                else:
                    torch._foreach_mul_(bufs, cfg.momentum)
                    torch._foreach_add_(bufs, grads)
                torch._foreach_add_(params, bufs, alpha=-lr)
            else:  # rmsprop
                sq = self._views(self.state["v"], a, b)
                torch._foreach_mul_(sq, cfg.alpha)
                torch._foreach_addcmul_(sq, grads, grads, value=1 - cfg.alpha)
                denom = torch._foreach_sqrt(sq)
                torch._foreach_add_(denom, cfg.eps)
                torch._foreach_addcdiv_(params, grads, denom, value=-lr)
