"""Optimisers over a flat parameter buffer with one learning rate per ensemble member.

Each follows the update rule of its ``torch.optim`` namesake (defaults included):

* ``sgd``:      ``p -= lr * g``
* ``momentum``: ``buf = mu * buf + g`` (``buf = g`` at the first step, as ``buf`` is 0 then),
  ``p -= lr * buf``
* ``adam``:     ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
  ``p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)`` (``lr / (1-b1^t)`` rounded once,
  as ``torch.optim.Adam`` does)
* ``rmsprop``:  ``v = alpha v + (1-alpha) g^2``, ``p -= lr * g / (sqrt(v) + eps)``

``weight_decay`` adds ``wd * p`` to the gradient (coupled L2, as ``torch.optim``).

Every member is updated by the same element-wise kernels over the whole buffer, with a learning
rate per element (``lr`` of the element's member). Only plain, correctly rounded operations are
used (``*``, ``+``, ``/``, ``sqrt``; no ``lerp``, ``addcmul`` or ``alpha=`` forms, and no fused
optimiser kernel): those may use fused multiply-adds in their vectorised body but not in their
tail, so an element's last bit would depend on where it falls in the buffer, i.e. on the other
members. Here it cannot: a member's update is bit-identical whatever the others hold. A
frozen (diverged) member gets learning rate 0 and a zero gradient from then on.

Each member has its own step count ``t`` (``steps``): :meth:`EnsembleOptimizer.reset` can
forget the state of some members only, whose next update is then a fresh optimiser's first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    compiled: bool = False
    """Opt-in, ``adam`` only: the update as one ``torch.compile``'d kernel (one pass over the
    buffers instead of ~14; needs a C++ compiler; the first step compiles, ~15 s, cached on
    disk by PyTorch for later processes). Equal to the default path to float rounding, not bit
    for bit; a step at which members' step counts differ (after a partial :meth:`reset
    <EnsembleOptimizer.reset>`) runs the default path."""

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
        if self.compiled and self.name != "adam":
            raise ValueError(f"compiled=True is implemented for adam only, not {self.name!r}")


class EnsembleOptimizer:
    """Updates a flat buffer ``param`` ``(N,)`` in place from a gradient of the same shape.

    Args:
        param: The flat parameter buffer (updated in place, without autograd).
        lr: Learning rate per member, ``(E,)``; each finite and > 0.
        blocks: ``(offset, size)`` of every block of the buffer: member m's part of a block is
            ``param[offset + m * size : offset + (m + 1) * size]``; together they cover it.
        config: Shared hyper-parameters.
    """

    def __init__(
        self,
        param: Tensor,
        lr: Sequence[float] | Tensor,
        blocks: Sequence[tuple[int, int]],
        config: OptimizerConfig,
    ):
        lr = torch.as_tensor(lr, dtype=torch.float64).reshape(-1)
        if not (torch.isfinite(lr).all() and (lr > 0).all()):
            raise ValueError(f"lr must be finite and > 0 for every member, got {lr.tolist()}")
        self.param = param
        self.config = config
        E = lr.numel()
        self.member_of = torch.empty(param.numel(), dtype=torch.long)
        for offset, size in blocks:
            self.member_of[offset : offset + E * size] = torch.arange(E).repeat_interleave(size)
        self.member_of = self.member_of.to(param.device)
        self.blocks = [(offset, size) for offset, size in blocks]
        self.active = torch.ones(E, dtype=torch.bool, device=param.device)
        self.diverged = torch.zeros(E, dtype=torch.bool)
        """Members the trainer froze as diverged (kept across :func:`actlab.train.train` calls
        that go on with this optimiser)."""
        self._lr = lr.to(param.device)
        """Learning rate per member ``(E,)``, float64 (0 once frozen)."""
        self._lr_elements = self._lr.to(param.dtype)[self.member_of]
        self._frozen: Tensor | None = None
        self._tmp = torch.empty_like(param)
        self._tmp2 = torch.empty_like(param)
        self.reset()

    def reset(self, members: Tensor | None = None) -> None:
        """Forget the optimiser state (moments, momentum buffers, step count) of ``members``
        (a bool mask ``(E,)``; default every member): their next update is a fresh
        optimiser's first, the others go on unchanged."""
        E = self.active.numel()
        if members is None:
            self.steps = torch.zeros(E, dtype=torch.long)
            names = {"momentum": ("buf",), "adam": ("m", "v"), "rmsprop": ("v",)}
            self.state = {k: torch.zeros_like(self.param) for k in names.get(self.config.name, ())}
            return
        members = torch.as_tensor(members, dtype=torch.bool).reshape(-1)
        if members.numel() != E:
            raise ValueError(f"reset needs a mask of {E} members, got {members.numel()}")
        elements = members.to(self.member_of.device)[self.member_of]
        for buf in self.state.values():
            buf.masked_fill_(elements, 0.0)
        self.steps[members.cpu()] = 0

    @property
    def step_count(self) -> int:
        """The step count shared by every member (an error once a partial reset made them
        differ: read ``steps`` then)."""
        first = int(self.steps[0])
        if not bool((self.steps == first).all()):
            raise ValueError("the members' step counts differ; read .steps")
        return first

    def freeze(self, members: Tensor) -> None:
        """Stop updating ``members`` (a bool mask ``(E,)``) from now on."""
        self.active &= ~members.to(self.active.device)
        self._frozen = ~self.active[self.member_of]
        self._lr.masked_fill_(~self.active, 0.0)
        self._lr_elements.masked_fill_(self._frozen, 0.0)

    @torch.no_grad()
    def step(self, grad: Tensor) -> None:
        """One update of every active member from ``grad`` ``(N,)``; the entries of frozen
        members are zeroed in place (``grad`` is otherwise not modified)."""
        cfg = self.config
        p, t, u = self.param.detach(), self._tmp, self._tmp2
        if self._frozen is not None:
            grad.masked_fill_(self._frozen, 0.0)
        if cfg.weight_decay:
            grad = grad + torch.mul(p, cfg.weight_decay, out=u)
        self.steps += 1
        if cfg.name == "sgd":
            p.sub_(torch.mul(grad, self._lr_elements, out=t))
        elif cfg.name == "momentum":
            buf = self.state["buf"]
            buf.mul_(cfg.momentum).add_(grad)  # buf is 0 at a member's first step: buf = g
            p.sub_(torch.mul(buf, self._lr_elements, out=t))
        elif cfg.name == "adam":
            b1, b2 = cfg.betas
            m, v = self.state["m"], self.state["v"]
            c1, c2 = self._bias_corrections(b1, b2)
            if cfg.compiled and bool((self.steps == self.steps[0]).all()):
                scalars = torch.tensor([float(c1[0]), float(c2[0])], dtype=p.dtype)
                _compiled_adam()(p, grad, m, v, self._lr_elements, scalars.to(p.device), cfg)
                return
            m.mul_(b1).add_(torch.mul(grad, 1 - b1, out=t))
            v.mul_(b2).add_(torch.mul(grad, grad, out=t).mul_(1 - b2))
            denom = self._per_member(self._sqrt(v, out=u), c2, "div_").add_(cfg.eps)
            p.sub_(self._per_member(torch.div(m, denom, out=t), self._lr / c1, "mul_"))
        else:  # rmsprop
            v = self.state["v"]
            v.mul_(cfg.alpha).add_(torch.mul(grad, grad, out=t).mul_(1 - cfg.alpha))
            denom = self._sqrt(v, out=u).add_(cfg.eps)
            p.sub_(self._per_member(torch.div(grad, denom, out=t), self._lr, "mul_"))

    def _bias_corrections(self, b1: float, b2: float) -> tuple[Tensor, Tensor]:
        """Adam's ``1 - b1^t`` and ``sqrt(1 - b2^t)`` per member ``(E,)``, float64, each
        member at its own step ``t`` (computed in Python once per distinct ``t``, so that a
        member's numbers do not depend on the others' counts)."""
        counts, inverse = torch.unique(self.steps, return_inverse=True)
        c1 = [1 - b1 ** int(t) for t in counts.tolist()]
        c2 = [math.sqrt(1 - b2 ** int(t)) for t in counts.tolist()]
        device = self._lr.device
        table = torch.tensor([c1, c2], dtype=torch.float64)[:, inverse].to(device)
        return table[0], table[1]

    def _per_member(self, x: Tensor, values: Tensor, op: str) -> Tensor:
        """``x op= values[m]`` in place for every element of member m (``op``: ``"mul_"`` or
        ``"div_"``; ``values`` ``(E,)`` float64, rounded once to ``x``'s dtype): one pass with
        a Python number when every member has the same value, else block by block through
        ``(E, size)`` views (no per-element copy of ``values``)."""
        first = float(values[0])
        if bool((values == first).all()):  # PyTorch rounds the number to x's dtype once
            return getattr(x, op)(first)
        values = values.to(x.dtype)
        E = values.numel()
        for offset, size in self.blocks:
            getattr(x[offset : offset + E * size].view(E, size), op)(values[:, None])
        return x

    def _sqrt(self, v: Tensor, out: Tensor) -> Tensor:
        """``sqrt(v)`` into ``out``, ~8x faster when ``v`` holds many zeros.

        PyTorch's CPU sqrt is ~10x slower on exact zeros (dead units have zero gradients and so
        zero second moments). Raising ``v`` to ``tiny = (eps * u * 1e-4)^2`` first (u = machine
        epsilon) is exact for ``v >= tiny`` and invisible below: ``sqrt(tiny) / sqrt(1 - beta2)
        <= 0.032 eps u < ulp(eps) / 2`` for ``beta2 <= 0.99999``, so ``sqrt(v) / bc + eps``
        rounds to the same number. Skipped when ``tiny`` would be subnormal (also slow).
        """
        info = torch.finfo(v.dtype)
        tiny = (self.config.eps * info.eps * 1e-4) ** 2
        if tiny < info.tiny:
            return torch.sqrt(v, out=out)
        return torch.clamp(v, min=tiny, out=out).sqrt_()


def _adam_kernel(
    p: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: Tensor, c: Tensor, cfg: OptimizerConfig
) -> None:
    """Adam's update in place, written for ``torch.compile`` to fuse into one pass: ``lr`` per
    element, ``c = (1 - b1^t, sqrt(1 - b2^t))``; zeros of ``v`` raised as in ``_sqrt``."""
    b1, b2 = cfg.betas
    m.mul_(b1).add_(g * (1 - b1))
    v.mul_(b2).add_(g * g * (1 - b2))
    tiny = (cfg.eps * torch.finfo(p.dtype).eps * 1e-4) ** 2
    denom = torch.clamp(v, min=tiny).sqrt() / c[1] + cfg.eps
    p.sub_(m / denom * (lr / c[0]))


_COMPILED: dict[str, object] = {}


def _compiled_adam():
    """The compiled :func:`_adam_kernel` (compiled on first use, shared by every optimiser)."""
    if "adam" not in _COMPILED:
        _COMPILED["adam"] = torch.compile(_adam_kernel, fullgraph=True, dynamic=False)
    return _COMPILED["adam"]
