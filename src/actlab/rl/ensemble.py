"""Ensembles of E networks of one architecture, trained with one batched forward and backward.

PyTorch's model-ensembling recipe (``torch.func.stack_module_state`` + ``functional_call`` +
``vmap``): the E members' parameters are stacked into one tensor per parameter name, with the
ensemble axis first, and the forward of one member is vectorised over that axis.

::

    base, params = stack([make_net() for _ in range(E)])   # params: name -> (E, *shape) leaves
    opt = torch.optim.Adam(params.values(), lr=1e-3)
    out = ensemble_call(base, params, x)                    # x (E, B, ...) -> (E, B, n_outputs)
    loss = per_member_loss(out).sum()                       # (E,) summed: member m's gradient
    loss.backward()                                         #   is that of its own loss
    clip_grad_norm_per_member(params, max_norm=10.0)        # (E,) norms, each clipped alone
    opt.step()

Independence of members. Nothing couples members: the loss is a sum of per-member losses, Adam
and the other element-wise optimisers update each entry from its own gradient, and
:func:`clip_grad_norm_per_member` scales each member by its own norm. What can differ between a
member trained alone and inside an ensemble is only floating-point rounding, if the batched
kernels (a batched matmul over E) sum in another order for another E; the tests
measure it (``tests/test_rl_models.py``). A member that diverges (NaN) stays NaN alone.

A module may provide its own batched forward, ``base.forward_stacked(params, x, with_hidden)``
with the same contract (the agents' :class:`actlab.rl.models.Network` does: batched matrix
products instead of vmap's per-call overhead); :func:`ensemble_call` then calls it instead.

This module knows nothing of RL: it takes any ``nn.Module`` without buffers. Inputs are one batch
per member, ``(E, B, ...)``; for a batch shared by every member pass ``x.expand(E, *x.shape)``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

__all__ = ["stack", "ensemble_call", "clip_grad_norm_per_member", "member_params", "n_members"]

CLIP_EPS = 1e-6
"""Added to the norm in the clipping coefficient, as ``torch.nn.utils.clip_grad_norm_`` does."""


def stack(modules: Sequence[nn.Module]) -> tuple[nn.Module, dict[str, Tensor]]:
    """Stack E modules of one architecture for :func:`ensemble_call`.

    Args:
        modules: E >= 1 modules of the same class with the same parameter names and shapes
            (e.g. one factory called under E seeds) and no buffers.

    Returns:
        ``(base, params)``: ``base`` a copy of ``modules[0]`` on the ``meta`` device (structure
        only, no data); ``params`` maps each parameter name to a new leaf tensor
        ``(E, *shape)`` with ``requires_grad=True``, member m's entry a copy of
        ``modules[m]``'s parameter. The modules themselves are not changed or shared.
    """
    modules = list(modules)
    if not modules:
        raise ValueError("modules must hold at least one module, got none")
    first = modules[0]
    shapes = {name: p.shape for name, p in first.named_parameters()}
    for i, module in enumerate(modules):
        if type(module) is not type(first):
            raise ValueError(
                f"modules must share one class: modules[{i}] is {type(module).__name__}, "
                f"modules[0] is {type(first).__name__}"
            )
        other = {name: p.shape for name, p in module.named_parameters()}
        if other != shapes:
            raise ValueError(f"modules[{i}] has other parameter names or shapes than modules[0]")
        buffers = [name for name, _ in module.named_buffers()]
        if buffers:
            raise ValueError(
                f"modules with buffers are not supported (modules[{i}] has {buffers}); "
                "running statistics such as BatchNorm's would need per-member state"
            )
    params, _ = stack_module_state(modules)
    base = copy.deepcopy(first).to("meta")
    return base, params


def n_members(params: Mapping[str, Tensor]) -> int:
    """E, the common leading size of the stacked tensors (ValueError if empty or unequal)."""
    sizes = {t.shape[0] if t.dim() else None for t in params.values()}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            "params must be a non-empty dict of stacked tensors with one leading size E, "
            f"got leading sizes {sorted(s for s in sizes if s is not None)}"
        )
    return sizes.pop()


class _WithHidden(nn.Module):
    """Calls ``net.forward_with_hidden`` as its forward, so ``functional_call`` can reach it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor):
        return self.net.forward_with_hidden(x)


def ensemble_call(
    base: nn.Module, params: Mapping[str, Tensor], x: Tensor, *, with_hidden: bool = False
):
    """Every member's forward on its own batch, in one vectorised call.

    ``out[m] = f(x[m]; params[.][m])`` with ``f`` the forward of ``base``.

    Args:
        base: The structure, from :func:`stack`.
        params: Stacked parameters ``name -> (E, *shape)`` (from :func:`stack`, or updated).
        x: Inputs ``(E, B, ...)``, one batch per member.
        with_hidden: Call ``base.forward_with_hidden`` instead (e.g.
            :class:`actlab.rl.models.Network`) and return its hidden list too.

    Returns:
        ``out`` ``(E, B, n_outputs)``; with ``with_hidden=True``, ``(out, [h_1, ..., h_L])``
        with each ``h_l`` ``(E, B, units_l)``.
    """
    E = n_members(params)
    if x.dim() < 1 or x.shape[0] != E:
        raise ValueError(
            f"x must have the ensemble axis first, (E={E}, B, ...), got shape {tuple(x.shape)}"
        )
    stacked = getattr(base, "forward_stacked", None)
    if stacked is not None:
        return stacked(params, x, with_hidden=with_hidden)
    if with_hidden:
        if not hasattr(base, "forward_with_hidden"):
            raise ValueError(
                f"with_hidden=True needs a module with forward_with_hidden; "
                f"{type(base).__name__} has none"
            )
        module = _WithHidden(base)
        params = {f"net.{name}": p for name, p in params.items()}
    else:
        module = base

    def member(p: dict[str, Tensor], xm: Tensor):
        return functional_call(module, p, (xm,))

    return torch.vmap(member)(dict(params), x)


@torch.no_grad()
def clip_grad_norm_per_member(params: Mapping[str, Tensor], max_norm: float) -> Tensor:
    """Clip each member's gradient, over all its parameter tensors, to norm ``max_norm``.

    For member m with gradients ``g_{m,k}`` (k over the parameter tensors):
    ``n_m = sqrt(sum_k ||g_{m,k}||_2^2)``, and every ``g_{m,k}`` is multiplied by
    ``min(1, max_norm / (n_m + 1e-6))`` in place -- ``torch.nn.utils.clip_grad_norm_`` applied to
    each member on its own. Tensors without a gradient are skipped.

    Args:
        params: Stacked parameters ``name -> (E, *shape)`` whose ``.grad`` are set.
        max_norm: Largest allowed norm per member (> 0).

    Returns:
        The norms before clipping, ``(E,)`` (0 for a member without gradients; NaN or inf for a
        member whose gradient is not finite, which then stays not finite, like
        ``clip_grad_norm_``'s default).
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    E = n_members(params)
    grads = [p.grad for p in params.values() if p.grad is not None]
    if not grads:
        first = next(iter(params.values()))
        return torch.zeros(E, dtype=first.dtype, device=first.device)
    # Squared norms added one tensor at a time: an element-wise sum over (E,) vectors in a fixed
    # order, so member m's norm is the same float whatever the other members (a reduction of
    # the stacked (K, E) table along its strided axis rounds differently for E = 1 and E > 1).
    squares = torch.zeros(E, dtype=grads[0].dtype, device=grads[0].device)
    for g in grads:
        squares = squares + torch.linalg.vector_norm(g.reshape(E, -1), dim=1) ** 2
    norms = squares.sqrt()  # (E,)
    coef = (max_norm / (norms + CLIP_EPS)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(E, *([1] * (g.dim() - 1))))
    return norms


def member_params(params: Mapping[str, Tensor], i: int) -> dict[str, Tensor]:
    """Member ``i``'s parameters as a plain state dict (detached copies), for
    ``module.load_state_dict`` on a single module of the same architecture."""
    E = n_members(params)
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < E:
        raise ValueError(f"member index i must be an integer in [0, {E}), got {i!r}")
    return {name: p[i].detach().clone() for name, p in params.items()}
