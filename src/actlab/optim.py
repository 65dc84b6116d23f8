"""Optimisers over a flat parameter buffer with one learning rate per ensemble member.

Each follows the update rule of its ``torch.optim`` namesake (defaults included):

* ``sgd``:      ``p -= lr * g``
* ``momentum``: ``buf = mu * buf + g`` (``buf = g`` at the first step, as ``buf`` is 0 then),
  ``p -= lr * buf``
* ``adam``:     ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
  ``p += lr * (-(1/(1-b1^t)) m / (sqrt(v) / sqrt(1-b2^t) + eps))``
* ``rmsprop``:  ``v = alpha v + (1-alpha) g^2``, ``p -= lr * g / (sqrt(v) + eps)``

``weight_decay`` adds ``wd * p`` to the gradient (coupled L2, as ``torch.optim``).

A member's update is bit-identical whatever the other members hold and wherever its entries sit
in the buffer. Element-wise kernels may round differently in their vectorised body and their
scalar tail (a fused multiply-add in one only), and where a tail falls depends on the buffer's
length and the thread split, i.e. on the other members. So SGD, momentum and RMSprop use only
plain, correctly rounded operations (``*``, ``+``, ``/``, ``sqrt``; no ``lerp``, ``addcmul`` or
``alpha=`` forms) with a learning rate per element or per member; Adam's moments and direction
come from PyTorch's fused Adam kernel (one pass instead of ~12) given only lengths that are a
multiple of :data:`ALIGN`, so that no element ever reaches its tail, and the learning rate is
applied per member afterwards. A frozen (diverged) member gets learning rate 0 and a zero
gradient from then on.

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

ALIGN = 16
"""Elements: a multiple of every vector width PyTorch's CPU kernels use for float32 and float64
(16 floats with AVX-512). Adam's fused kernel is only given lengths that are multiples of it."""

_FUSED_ADAM = hasattr(torch, "_fused_adam_")


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
            n = self.param.numel()
            padded = -(-n // ALIGN) * ALIGN  # Adam's fused kernel never meets a tail (step())
            self._padded = {
                k: self.param.new_zeros(padded) for k in names.get(self.config.name, ())
            }
            self.state = {k: buf[:n] for k, buf in self._padded.items()}
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
            step = self._adam_direction(grad) if _FUSED_ADAM else self._adam_direction_eager(grad)
            p.add_(self._per_member(step, self._lr, "mul_"))
        else:  # rmsprop
            v = self.state["v"]
            v.mul_(cfg.alpha).add_(torch.mul(grad, grad, out=t).mul_(1 - cfg.alpha))
            denom = self._sqrt(v, out=u).add_(cfg.eps)
            p.sub_(self._per_member(torch.div(grad, denom, out=t), self._lr, "mul_"))

    def _adam_direction(self, grad: Tensor) -> Tensor:
        """Update Adam's moments and return ``-m_hat / (sqrt(v_hat) + eps)`` ``(N,)`` (the
        step for a learning rate of 1), from PyTorch's fused Adam kernel
        (``torch._fused_adam_``, one pass over the buffers instead of ~12).

        The kernel is run with parameters ``u = 0`` and ``lr = 1``, so that it returns the
        direction and the rate is applied per member afterwards. Its vectorised body and its
        scalar tail round differently (a fused multiply-add in one, not the other: measured);
        every tensor it is given has a length that is a multiple of :data:`ALIGN` (the moments
        are padded, the last partial group of the gradient is copied into a padded scratch), so
        no element ever reaches a tail: an element's numbers cannot depend on where it sits,
        i.e. on the other members. Members at different step counts (after a partial
        :meth:`reset`) are run once per count on copies of the moments, each member keeping
        the results of its own count.
        """
        cfg, E = self.config, self.active.numel()
        b1, b2 = cfg.betas
        m, v = self._padded["m"], self._padded["v"]
        n, padded = grad.numel(), m.numel()
        body = n - n % ALIGN
        grads = [grad[:body]]
        if padded > body:
            if getattr(self, "_grad_tail", None) is None:
                self._grad_tail = grad.new_zeros(ALIGN)
            self._grad_tail[: n - body].copy_(grad[body:])
            grads.append(self._grad_tail)

        def run(t: int, u: Tensor, m: Tensor, v: Tensor) -> None:
            cuts = [(0, body), (body, padded)][: len(grads)]
            step = torch.tensor(float(t), device=grad.device)
            torch._fused_adam_(
                [u[a:b] for a, b in cuts],
                grads,
                [m[a:b] for a, b in cuts],
                [v[a:b] for a, b in cuts],
                [],
                [step] * len(cuts),
                lr=1.0,
                beta1=b1,
                beta2=b2,
                weight_decay=0.0,
                eps=cfg.eps,
                amsgrad=False,
                maximize=False,
            )

        u = self._update_buffer(padded)
        counts = self.steps.unique().tolist()
        if len(counts) == 1:
            run(counts[0], u.zero_(), m, v)
            return u[:n]
        if getattr(self, "_scratch", None) is None:  # kept: counts never line up again
            self._scratch = (torch.empty_like(m), torch.empty_like(v), torch.empty_like(u))
        m_new, v_new, u_new = self._scratch
        for t in counts:
            run(t, u_new.zero_(), m_new.copy_(m), v_new.copy_(v))
            mine = (self.steps == t).to(grad.device)
            for offset, size in self.blocks:
                if not size:
                    continue
                part = slice(offset, offset + E * size)
                for old, new in ((m, m_new), (v, v_new), (u, u_new)):
                    old[part].view(E, size)[mine] = new[part].view(E, size)[mine]
        return u[:n]

    def _update_buffer(self, size: int) -> Tensor:
        if getattr(self, "_update", None) is None or self._update.numel() != size:
            self._update = self.param.new_empty(size)
        return self._update

    def _adam_direction_eager(self, grad: Tensor) -> Tensor:
        """:meth:`_adam_direction` with plain element-wise operations, for a PyTorch without
        ``torch._fused_adam_`` (equal to float rounding)."""
        b1, b2 = self.config.betas
        m, v, t, u = self.state["m"], self.state["v"], self._tmp, self._tmp2
        m.mul_(b1).add_(torch.mul(grad, 1 - b1, out=t))
        v.mul_(b2).add_(torch.mul(grad, grad, out=t).mul_(1 - b2))
        c1, c2 = self._bias_corrections(b1, b2)
        denom = self._per_member(self._sqrt(v, out=u), c2, "div_").add_(self.config.eps)
        return self._per_member(torch.div(m, denom, out=t), -1.0 / c1, "mul_")

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
