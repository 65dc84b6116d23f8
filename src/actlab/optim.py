"""Optimisers over a flat parameter buffer with one learning rate per ensemble member.

Each is the update rule of its ``torch.optim`` namesake (defaults included), applied to every
element of the buffer at once; the learning rate of element i is ``lr[member_index[i]]`` so that
a learning-rate sweep is one run. Frozen (diverged) members get learning rate 0 and a zero
gradient, so their parameters never change again and nothing non-finite reaches their state.

* ``sgd``:      ``p -= lr * g``
* ``momentum``: ``buf = mu * buf + g`` (``buf = g`` at the first step), ``p -= lr * buf``
* ``adam``:     ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
  ``p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)``
* ``rmsprop``:  ``v = alpha v + (1-alpha) g^2``, ``p -= lr * g / (sqrt(v) + eps)``

``weight_decay`` adds ``wd * p`` to the gradient (coupled L2, as ``torch.optim``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

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
            "betas": all(0 <= b < 1 for b in self.betas) and len(self.betas) == 2,
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
        member_index: Member of each element of ``param``, long ``(N,)``.
        config: Shared hyper-parameters.
    """

    def __init__(self, param: Tensor, lr: Tensor, member_index: Tensor, config: OptimizerConfig):
        lr = torch.as_tensor(lr, dtype=param.dtype, device=param.device).reshape(-1)
        if not torch.isfinite(lr).all() or (lr <= 0).any():
            raise ValueError(f"lr must be finite and > 0 for every member, got {lr.tolist()}")
        self.param = param
        self.config = config
        self.lr = lr
        self.member_index = member_index
        self.active = torch.ones(lr.numel(), dtype=torch.bool, device=param.device)
        self._lr_flat = lr[member_index]
        self._active_flat: Tensor | None = None
        self.step_count = 0
        self.state: dict[str, Tensor] = {}
        self._tmp = torch.empty_like(param)
        self.reset()

    def reset(self) -> None:
        """Forget the optimiser state (moments, momentum buffers, step count) of every member."""
        self.step_count = 0
        zeros = lambda: torch.zeros_like(self.param)  # noqa: E731
        name = self.config.name
        self.state = {
            "momentum": {"buf": zeros()},
            "adam": {"m": zeros(), "v": zeros()},
            "rmsprop": {"v": zeros()},
        }.get(name, {})

    def freeze(self, members: Tensor) -> None:
        """Stop updating ``members`` (a bool mask ``(E,)``): learning rate 0 from now on."""
        self.active &= ~members
        self._active_flat = self.active[self.member_index]
        self._lr_flat = torch.where(self._active_flat, self._lr_flat, 0.0)

    @torch.no_grad()
    def step(self, grad: Tensor) -> None:
        """One update of every active member from ``grad`` ``(N,)``; the entries of frozen
        members are zeroed in place (``grad`` is otherwise not modified)."""
        cfg = self.config
        p, tmp = self.param.detach(), self._tmp
        if self._active_flat is not None:
            grad.masked_fill_(~self._active_flat, 0.0)
        if cfg.weight_decay:
            grad = grad.add(p, alpha=cfg.weight_decay)
        self.step_count += 1
        if cfg.name == "sgd":
            p.sub_(torch.mul(grad, self._lr_flat, out=tmp))
        elif cfg.name == "momentum":
            buf = self.state["buf"]
            if self.step_count == 1:
                buf.copy_(grad)
            else:
                buf.mul_(cfg.momentum).add_(grad)
            p.sub_(torch.mul(buf, self._lr_flat, out=tmp))
        elif cfg.name == "adam":
            b1, b2 = cfg.betas
            m, v = self.state["m"], self.state["v"]
            m.lerp_(grad, 1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            bc1 = 1 - b1**self.step_count
            bc2_sqrt = math.sqrt(1 - b2**self.step_count)
            denom = self._sqrt(v).div_(bc2_sqrt).add_(cfg.eps)
            p.sub_(torch.div(m, denom, out=tmp).mul_(self._lr_flat), alpha=1.0 / bc1)
        else:  # rmsprop
            v = self.state["v"]
            v.mul_(cfg.alpha).addcmul_(grad, grad, value=1 - cfg.alpha)
            denom = self._sqrt(v).add_(cfg.eps)
            p.sub_(torch.div(grad, denom, out=tmp).mul_(self._lr_flat))

    def _sqrt(self, v: Tensor) -> Tensor:
        """``sqrt(v)`` into the scratch buffer, ~8x faster when ``v`` holds many zeros.

        PyTorch's CPU sqrt is ~10x slower on exact zeros (dead units have zero gradients and so
        zero second moments). Raising ``v`` to ``tiny = (eps * u * 1e-4)^2`` first (u = machine
        epsilon) is exact for ``v >= tiny`` and invisible below: ``sqrt(tiny) / sqrt(1 - beta2)
        <= 0.032 eps u < ulp(eps) / 2`` for ``beta2 <= 0.99999``, so ``sqrt(v) / bc + eps``
        rounds to the same number. Skipped when ``tiny`` would be subnormal (also slow).
        """
        info = torch.finfo(v.dtype)
        tiny = (self.config.eps * info.eps * 1e-4) ** 2
        if tiny < info.tiny:
            return torch.sqrt(v, out=self._tmp)
        return torch.clamp(v, min=tiny, out=self._tmp).sqrt_()
