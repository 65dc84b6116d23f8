"""Sharpness of every member of an :class:`EnsembleMLP`: Hessian-vector products, the top
Hessian eigenvalue, Adam's preconditioned sharpness and the stability thresholds they are
compared with (Cohen et al. 2021, "Gradient descent on neural networks typically occurs at the
edge of stability"; Cohen et al. 2022, "Adaptive gradient methods at the edge of stability").

**Block-diagonal Hessian.** Member m's loss ``L_m`` depends only on its own parameters, so the
Hessian of ``sum_m L_m`` with respect to the flat buffer ``(N,)`` is block diagonal (after
gathering each member's entries together): one Hessian-vector product with a flat vector ``v``
``(N,)`` returns every member's own ``H_m v_m`` at once, in the layout of ``flat``.

**Member layout.** Member m's entries are scattered over the blocks of ``flat``
(``model.param_blocks()``). :class:`MemberLayout` gathers them into a matrix ``(E, P)`` (row m =
member m's parameters in the order of the blocks: ``W_0, b_0, W_1, b_1, ..., W_L, b_L``, then the
learnable activation parameters of each hidden layer) and scatters such a matrix back. Power
iteration works on ``(E, P)``: each row is normalised on its own, so members never mix.

**Losses** are the engine's (:func:`actlab.models.output_loss_and_grad`): ``"mse"``, the mean
over batch and outputs of each member; ``"cross_entropy"``, the mean over the batch.

**Diverged members.** A member with a non-finite parameter (or one left out by ``members=``)
gets NaN sharpness; every other member's numbers are unaffected. It is evaluated at zero
parameters instead, which is defensive: the engine's kernels already keep members apart (a
mutation test that drops the zeroing finds no leak), but a NaN then never enters a shared one.

**Accuracy.** Power iteration stops when the Rayleigh quotient changes by at most ``tol``
relative; on the tests' small nets the eigenvalue was then within about 1-15 ``tol`` of
``eigvalsh``'s (slow when the top two eigenvalues are close: check ``Eigen.converged``). In
float32 the HVP itself is accurate to ~1e-6 relative, so ``tol`` below ~1e-6 is not met.

**Which HVP.** ``benchmarks/bench_hvp.py`` (1 -> 4 x 32 -> 1, 200 points, float32, one thread):
forward-over-reverse / double backward = 1.6, 1.5, 1.2 for a one-off product at E = 1, 20, 100,
and 5.1, 2.5, 1.8 per product of the operator (double backward keeps the gradient's graph,
which costs ~0.5 products to build); ``torch.func.linearize`` costs 30, 6 and 2 times as much
for 20 products. Double backward is the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from actlab.models import EnsembleMLP, output_loss_and_grad
from actlab.optim import EnsembleOptimizer

__all__ = [
    "HVP_METHODS",
    "DEFAULT_HVP",
    "MemberLayout",
    "Eigen",
    "ensemble_loss",
    "hvp",
    "hessian_operator",
    "top_eigenvalue",
    "batched_top_eigenvalue",
    "top_eigenvalue_lanczos",
    "adam_preconditioner",
    "preconditioned_sharpness",
    "gd_threshold",
    "momentum_threshold",
    "adam_threshold",
]

HVP_METHODS = ("double_backward", "forward_over_reverse")
DEFAULT_HVP = "double_backward"
"""The faster of the two on CPU (``benchmarks/bench_hvp.py``): an operator built by double
backward keeps the gradient's graph and costs one backward pass per product."""

Operator = Callable[[Tensor], Tensor]


# ---------------------------------------------------------------------------- layout
class MemberLayout:
    """Gathers each member's entries of a flat vector ``(N,)`` into a row of ``(E, P)``.

    ``P`` is the number of parameters of one member (the same for all: activations with fewer
    learnable parameters than ``model.n_act_params`` have unused, loss-free entries).
    """

    def __init__(self, model: EnsembleMLP):
        E = model.E
        pieces = [
            torch.arange(offset, offset + E * size).view(E, size)
            for offset, size in model.param_blocks()
            if size
        ]
        self.index = torch.cat(pieces, dim=1).to(model.flat.device)
        """``(E, P)`` long: ``flat[index[m, i]]`` is member m's parameter i."""
        self.E, self.P = self.index.shape
        self.N = model.flat.numel()

    def gather(self, vec: Tensor) -> Tensor:
        """``(N,)`` -> ``(E, P)``."""
        return vec[self.index]

    def scatter(self, rows: Tensor) -> Tensor:
        """``(E, P)`` -> ``(N,)``, the inverse of :meth:`gather`."""
        out = rows.new_empty(self.N)
        out[self.index.reshape(-1)] = rows.reshape(-1)
        return out

    def expand(self, per_member: Tensor) -> Tensor:
        """One value per member ``(E,)`` -> every entry of that member ``(N,)``."""
        return self.scatter(per_member[:, None].expand(self.E, self.P))


# ---------------------------------------------------------------------------- HVPs
def ensemble_loss(
    model: EnsembleMLP, x: Tensor, y: Tensor, loss: str
) -> Callable[[Tensor], Tensor]:
    """``flat (N,) -> sum_m L_m(flat)`` (a scalar), the engine's loss evaluated at ``flat``.

    Args:
        model: The ensemble (only its structure and activations are used).
        x: Inputs ``(B, in)`` or ``(E, B, in)``.
        y: Targets ``(B, out)`` / ``(E, B, out)`` (mse) or class indices ``(B,)`` / ``(E, B)``.
        loss: ``"mse"`` or ``"cross_entropy"``.
    """
    if loss not in ("mse", "cross_entropy"):
        raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")

    def total(flat: Tensor) -> Tensor:
        return output_loss_and_grad(model(x, flat=flat), y, loss)[0].sum()

    return total


def _check_method(method: str | None) -> str:
    method = DEFAULT_HVP if method is None else method
    if method not in HVP_METHODS:
        raise ValueError(f"method must be one of {HVP_METHODS}, got {method!r}")
    return method


def hessian_operator(
    model: EnsembleMLP,
    x: Tensor,
    y: Tensor,
    loss: str = "mse",
    *,
    flat: Tensor | None = None,
    method: str | None = None,
    weight_decay: float = 0.0,
) -> Operator:
    """``v (N,) -> H v (N,)``: the block-diagonal Hessian of ``sum_m L_m`` at ``flat``.

    ``H v`` holds ``H_m v_m`` in member m's entries, ``H_m = d^2 L_m / d theta_m^2`` (plus
    ``weight_decay * v``: the Hessian of the coupled L2 term ``wd/2 |theta|^2`` that
    :class:`~actlab.optim.EnsembleOptimizer` adds to the gradient).

    Methods (the result is the same up to rounding):

    * ``"double_backward"``: the gradient ``g = dL/dflat`` is built once with its graph
      (``create_graph=True``); each product is one more backward pass,
      ``H v = d(g . v)/dflat = autograd.grad(g, flat, v)`` (H is symmetric).
    * ``"forward_over_reverse"``: each product is ``torch.func.jvp(torch.func.grad(L),
      (flat,), (v,))``, a forward-mode derivative of the reverse-mode gradient (one forward
      and one backward pass, each carrying tangents). ``torch.func.linearize`` would cache the
      linearisation but its tracing costs ~40-1000 products (``benchmarks/bench_hvp.py``).

    Args:
        model, x, y, loss: As :func:`ensemble_loss`.
        flat: Parameters ``(N,)`` at which to take the Hessian; default ``model.flat``.
        method: One of :data:`HVP_METHODS`; default :data:`DEFAULT_HVP`.
        weight_decay: Added times ``v`` (default 0: the Hessian of the loss alone).
    """
    method = _check_method(method)
    flat = (model.flat if flat is None else flat).detach()
    total = ensemble_loss(model, x, y, loss)
    if method == "double_backward":
        p = flat.clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(total(p), p, create_graph=True)

        def apply(v: Tensor) -> Tensor:
            (hv,) = torch.autograd.grad(g, p, v, retain_graph=True)
            return hv + weight_decay * v if weight_decay else hv

    else:
        grad_fn = torch.func.grad(total)

        def apply(v: Tensor) -> Tensor:
            hv = torch.func.jvp(grad_fn, (flat,), (v,))[1]
            return hv + weight_decay * v if weight_decay else hv

    return apply


def hvp(
    model: EnsembleMLP,
    x: Tensor,
    y: Tensor,
    v: Tensor,
    loss: str = "mse",
    *,
    flat: Tensor | None = None,
    method: str | None = None,
) -> Tensor:
    """One Hessian-vector product ``H v`` ``(N,)`` for a flat ``v`` ``(N,)``: every member's
    ``H_m v_m`` at once (see :func:`hessian_operator`). For many products at the same
    parameters build the operator once instead.

    ``"double_backward"``: ``autograd.grad(autograd.grad(L, flat, create_graph=True) . v)``;
    ``"forward_over_reverse"``: ``torch.func.jvp(torch.func.grad(L), (flat,), (v,))``.
    """
    method = _check_method(method)
    flat = (model.flat if flat is None else flat).detach()
    total = ensemble_loss(model, x, y, loss)
    if method == "double_backward":
        p = flat.clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(total(p), p, create_graph=True)
            (hv,) = torch.autograd.grad(torch.dot(g, v), p)
        return hv
    return torch.func.jvp(torch.func.grad(total), (flat,), (v,))[1]


# ---------------------------------------------------------------------------- eigenvalues
@dataclass
class Eigen:
    """The largest algebraic eigenvalue of each member's (possibly preconditioned) Hessian.

    Attributes:
        value: ``(E,)`` float64; NaN for a diverged member or one left out.
        vector: Unit eigenvector estimates ``(E, P)`` (rows in :class:`MemberLayout` order;
            NaN rows where ``value`` is NaN); for the preconditioned operator, the eigenvector
            of ``P^{-1/2} H P^{-1/2}``.
        iterations: Operator applications per member ``(E,)`` (both phases; Lanczos: matvecs).
        converged: ``(E,)`` bool: the tolerance was met within ``max_iter``.
        shift: ``(E,)`` the shift ``s`` of the second phase (0 where none was needed).
    """

    value: Tensor
    vector: Tensor
    iterations: Tensor
    converged: Tensor
    shift: Tensor


def _usable(model: EnsembleMLP, layout: MemberLayout, flat: Tensor, members: Tensor | None):
    """Members to compute ``(E,)`` bool, and ``flat`` with the others' entries zeroed."""
    ok = ~model.nonfinite_members(flat)
    if members is not None:
        members = torch.as_tensor(members, dtype=torch.bool).reshape(-1).to(ok.device)
        if members.numel() != model.E:
            raise ValueError(f"members needs a mask of E = {model.E}, got {members.numel()}")
        ok &= members
    safe = torch.where(layout.expand(ok.to(flat.dtype)).bool(), flat, torch.zeros_like(flat))
    return ok, safe


def _power(
    op: Callable[[Tensor], Tensor],
    start: Tensor,
    shift: Tensor,
    live: Tensor,
    max_iter: int,
    tol: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Power iteration on ``A_m + shift_m I`` for every row of ``start`` ``(E, P)`` at once.

    Row m is normalised on its own; it stops (its value and vector frozen) once the Rayleigh
    quotient ``mu = v . (A + sI) v`` changes by at most ``tol * |mu|`` from one iteration to
    the next. Rows not ``live`` are skipped (their ``op`` input is zero).

    Returns ``mu (E,)``, ``rho = |(A + sI) v| (E,)``, ``v (E, P)``, iterations ``(E,)``,
    converged ``(E,)``.
    """
    E = start.shape[0]
    v = start / start.norm(dim=1, keepdim=True)
    v = torch.where(live[:, None], v, torch.zeros_like(v))
    mu = torch.full((E,), math.nan, dtype=v.dtype, device=v.device)
    rho = mu.clone()
    iters = torch.zeros(E, dtype=torch.long)
    done = ~live
    conv = torch.zeros(E, dtype=torch.bool, device=v.device)
    for _ in range(max_iter):
        w = op(v) + shift[:, None] * v
        new_mu = (v * w).sum(dim=1)
        norm = w.norm(dim=1)
        step = ~done
        iters += step.cpu()
        new_conv = step & ((new_mu - mu).abs() <= tol * new_mu.abs())
        zero = step & (norm == 0)  # v in the null space: (A + sI) v = 0, eigenvalue 0
        bad = step & ~torch.isfinite(norm)
        mu = torch.where(step, new_mu, mu)
        rho = torch.where(step, norm, rho)
        mu = torch.where(bad, torch.full_like(mu, math.nan), mu)
        moving = step & ~zero & ~bad
        v = torch.where(moving[:, None], w / norm.clamp_min(1e-300)[:, None], v)
        conv |= new_conv | zero
        done |= new_conv | zero | bad
        if bool(done.all()):
            break
    return mu, rho, v, iters, conv


def batched_top_eigenvalue(
    op: Callable[[Tensor], Tensor],
    E: int,
    P: int,
    *,
    live: Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    max_iter: int = 200,
    tol: float = 1e-5,
    seed: int = 0,
) -> Eigen:
    """Largest algebraic eigenvalue of each block of a block-diagonal symmetric operator.

    ``op`` maps ``(E, P) -> (E, P)``, row m only through block ``A_m`` (``P x P``,
    symmetric). Power iteration on every row at once, each row normalised on its own and
    stopped on its own (see :func:`_power`).

    Phase 1: power iteration on A gives ``rho = |A v|`` (an estimate of the spectral radius,
    ``max |lambda|``) and the Rayleigh quotient ``r = v . A v``. If ``r >= (1 - tol) rho``, v is
    (to tolerance) an eigenvector of the positive eigenvalue of largest magnitude, which is the
    largest algebraic one: accepted (by Cauchy-Schwarz, ``|A v - r v|^2 = rho^2 - r^2``).
    Otherwise (the most negative eigenvalue dominates, or +-lambda of nearly equal magnitude
    kept v from settling) phase 2 runs power iteration on ``A + s I`` with
    ``s = 1.01 rho >= |lambda_min|`` (approximately): positive semi-definite, so its dominant
    eigenvalue is ``lambda_max + s``; it returns ``mu - s``. Phase 2's tolerance is relative
    to ``mu = lambda_max + s``, so a ``lambda_max`` much smaller than ``|lambda_min|`` has a
    larger relative error.

    Args:
        op: The operator on ``(E, P)``.
        E, P: Number of blocks and their size.
        live: Bool ``(E,)`` rows to compute (default all); the others are NaN.
        dtype, device: Of the start vectors (those of ``op``).
        max_iter: Most iterations per phase.
        tol: Relative tolerance on the change of the Rayleigh quotient.
        seed: Seed of the start vectors: rows ``N(0, I)`` from a private ``torch.Generator``
            (phase 2 draws fresh ones from the same generator).
    """
    live = (
        torch.ones(E, dtype=torch.bool, device=device)
        if live is None
        else torch.as_tensor(live, dtype=torch.bool).to(device)
    )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    start = torch.randn(E, P, generator=gen, dtype=torch.float64).to(dtype).to(device)
    zero = torch.zeros(E, dtype=dtype, device=device)
    r, rho, v, it1, conv1 = _power(op, start, zero, live, max_iter, tol)
    accept = live & torch.isfinite(r) & (r >= (1 - tol) * rho)
    second = live & torch.isfinite(r) & ~accept
    value, shift, iters, conv = r.clone(), zero.clone(), it1.clone(), conv1.clone()
    if bool(second.any()):
        shift = torch.where(second, 1.01 * rho, zero)
        start2 = torch.randn(E, P, generator=gen, dtype=torch.float64).to(dtype).to(device)
        mu, _, v2, it2, conv2 = _power(op, start2, shift, second, max_iter, tol)
        value = torch.where(second, mu - shift, value)
        v = torch.where(second[:, None], v2, v)
        iters += torch.where(second.cpu(), it2, torch.zeros_like(it2))
        conv = torch.where(second, conv2, conv)
    value = torch.where(live, value, torch.full_like(value, math.nan))
    v = torch.where(torch.isfinite(value)[:, None], v, torch.full_like(v, math.nan))
    return Eigen(value.double().cpu(), v, iters, conv.cpu() & live.cpu(), shift.double().cpu())


def _solve(
    op, layout: MemberLayout, live: Tensor, flat: Tensor, max_iter: int, tol: float, seed: int
):
    """:func:`batched_top_eigenvalue` of ``op`` on the members' ``(E, P)`` rows of ``layout``."""
    return batched_top_eigenvalue(
        op,
        layout.E,
        layout.P,
        live=live,
        dtype=flat.dtype,
        device=flat.device,
        max_iter=max_iter,
        tol=tol,
        seed=seed,
    )


def top_eigenvalue(
    model: EnsembleMLP,
    x: Tensor,
    y: Tensor,
    loss: str = "mse",
    *,
    flat: Tensor | None = None,
    members: Tensor | None = None,
    max_iter: int = 200,
    tol: float = 1e-5,
    seed: int = 0,
    method: str | None = None,
    weight_decay: float = 0.0,
) -> Eigen:
    """``lambda_max(H_m)`` for every member m by batched power iteration.

    The operator is the block-diagonal Hessian (:func:`hessian_operator`) seen as ``(E, P)``:
    each member's vector is normalised separately and converges separately (relative change
    of the Rayleigh quotient at most ``tol``, at most ``max_iter`` iterations per phase). The
    result is the largest *algebraic* eigenvalue, also when the most negative one is larger in
    magnitude (a shifted second phase, see :func:`batched_top_eigenvalue`).

    Args:
        model, x, y, loss: As :func:`ensemble_loss`.
        flat: Parameters ``(N,)``; default ``model.flat``.
        members: Bool mask ``(E,)`` of members to compute (e.g. ``StepState.active``); the
            others get NaN. Members with a non-finite parameter always get NaN.
        max_iter: Most iterations per phase.
        tol: Relative tolerance on the change of the Rayleigh quotient.
        seed: Seed of the start vectors (a private ``torch.Generator``; ``N(0, I)`` rows).
        method: HVP method (:data:`HVP_METHODS`).
        weight_decay: Adds ``weight_decay * I`` to every ``H_m``.

    Returns:
        :class:`Eigen` with ``value`` ``(E,)`` float64.
    """
    flat = (model.flat if flat is None else flat).detach()
    layout = MemberLayout(model)
    live, safe = _usable(model, layout, flat, members)
    H = hessian_operator(model, x, y, loss, flat=safe, method=method, weight_decay=weight_decay)
    op = lambda rows: layout.gather(H(layout.scatter(rows)))  # noqa: E731
    return _solve(op, layout, live, flat, max_iter, tol, seed)


def top_eigenvalue_lanczos(
    model: EnsembleMLP,
    x: Tensor,
    y: Tensor,
    loss: str = "mse",
    *,
    flat: Tensor | None = None,
    members: Tensor | None = None,
    preconditioner: Tensor | None = None,
    tol: float = 0.0,
    seed: int = 0,
    method: str | None = None,
    weight_decay: float = 0.0,
) -> Tensor:
    """``lambda_max`` of each member by Lanczos (``scipy.sparse.linalg.eigsh``, ``which='LA'``)
    on a ``LinearOperator`` ``(P, P)`` over that member's HVP, one member after another.

    A reference and a tool for small cases: each product costs a whole-ensemble HVP (the other
    members' entries of ``v`` are zero), so this costs about E times the batched power
    iteration per product. ``preconditioner`` ``(N,)`` (> 0) gives the eigenvalue of
    ``P^{-1/2} H P^{-1/2}`` instead (:func:`preconditioned_sharpness`).

    Returns:
        ``(E,)`` float64, NaN for diverged members and those not in ``members``.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    flat = (model.flat if flat is None else flat).detach()
    layout = MemberLayout(model)
    live, safe = _usable(model, layout, flat, members)
    H = hessian_operator(model, x, y, loss, flat=safe, method=method, weight_decay=weight_decay)
    scale = None
    if preconditioner is not None:
        scale = layout.gather(preconditioner.detach().to(flat.dtype)).rsqrt()  # P^{-1/2}
    out = torch.full((layout.E,), math.nan, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    for m in torch.nonzero(live.cpu()).flatten().tolist():
        d = None if scale is None else scale[m]
        if d is not None and not bool(torch.isfinite(d).all()):
            continue

        def matvec(u: np.ndarray, m: int = m, d: Tensor | None = d) -> np.ndarray:
            rows = torch.zeros(layout.E, layout.P, dtype=flat.dtype, device=flat.device)
            u_t = torch.as_tensor(np.asarray(u).reshape(-1), dtype=flat.dtype).to(flat.device)
            rows[m] = u_t if d is None else d * u_t
            hv = layout.gather(H(layout.scatter(rows)))[m]
            hv = hv if d is None else d * hv
            return hv.double().cpu().numpy()

        A = LinearOperator((layout.P, layout.P), matvec=matvec, dtype=np.float64)
        v0 = rng.standard_normal(layout.P)
        if layout.P == 1:
            out[m] = float(matvec(np.ones(1))[0])
            continue
        out[m] = float(eigsh(A, k=1, which="LA", v0=v0, tol=tol, return_eigenvectors=False)[0])
    return out


# ---------------------------------------------------------------------------- Adam
def adam_preconditioner(opt: EnsembleOptimizer) -> Tensor:
    """Adam's preconditioner ``P`` ``(N,)`` (diagonal) from an optimiser's state, per member:

        P = (1 - beta1^t) * (sqrt(v_t / (1 - beta2^t)) + eps)

    with ``v_t`` the second-moment EMA (``opt.state["v"]``), ``t`` the member's own step count
    (``opt.steps[m]``) and ``eps`` ``opt.config.eps``. It is exactly the divisor of Adam's step,
    ``theta -= lr * m_t / P`` with ``m_t`` the raw (not bias-corrected) first-moment EMA: the
    bias correction of both moments and eps are included, so that ``P`` is the matrix of the
    last update taken (step ``t``); the next update's ``P`` also holds that step's gradient, so
    between steps (e.g. in a training callback) this is the preconditioner one step behind.
    Entries of a member with ``t = 0`` (no step yet) are NaN. With
    ``eps = 0`` an entry whose gradient was always 0 has ``P = 0``: that member's
    preconditioned sharpness is then NaN (``P^{-1/2}`` infinite).
    """
    if opt.config.name != "adam":
        raise ValueError(f"the optimiser is {opt.config.name!r}, not 'adam'")
    b1, b2 = opt.config.betas
    steps = opt.steps.tolist()
    c1 = torch.tensor([1 - b1**t if t else math.nan for t in steps], dtype=torch.float64)
    c2 = torch.tensor([1 - b2**t if t else math.nan for t in steps], dtype=torch.float64)
    c1 = c1.to(opt.param.device)[opt.member_of]
    c2 = c2.to(opt.param.device)[opt.member_of]
    v = opt.state["v"].double()
    return (c1 * (torch.sqrt(v / c2) + opt.config.eps)).to(opt.param.dtype)


def preconditioned_sharpness(
    model: EnsembleMLP,
    x: Tensor,
    y: Tensor,
    opt: EnsembleOptimizer,
    loss: str = "mse",
    *,
    flat: Tensor | None = None,
    members: Tensor | None = None,
    max_iter: int = 200,
    tol: float = 1e-5,
    seed: int = 0,
    method: str | None = None,
) -> Eigen:
    """Adam's preconditioned sharpness ``lambda_max(P^{-1/2} H P^{-1/2})`` per member (Cohen
    et al. 2022), ``P`` from :func:`adam_preconditioner` (bias-corrected, eps included).

    ``P^{-1/2} H P^{-1/2}`` has the eigenvalues of ``P^{-1} H``. Why this ``P`` and what it is
    compared with: Adam's update is ``theta -= eta m_t / P`` with
    ``m_t = beta1 m_{t-1} + (1 - beta1) g_t``. Holding ``P`` fixed, on a quadratic with Hessian
    ``H`` change variables ``u = P^{1/2} theta``: the gradient in u is ``P^{-1/2} g`` and the
    Hessian ``A = P^{-1/2} H P^{-1/2}``, and with ``b = P^{-1/2} m / (1 - beta1)`` the update
    is ``b_t = beta1 b_{t-1} + grad_u``, ``u -= eta (1 - beta1) b_t``: heavy-ball momentum
    ``beta1`` with rate ``eta (1 - beta1)`` on A. By :func:`momentum_threshold` it is stable
    iff ``lambda_max(A) < (2 + 2 beta1) / ((1 - beta1) eta)``, i.e. ``38 / eta`` for
    ``beta1 = 0.9`` (:func:`adam_threshold`).

    The optimiser's coupled weight decay (``opt.config.weight_decay``) is part of the
    objective it descends, so ``wd * I`` is added to H. Members with ``t = 0`` get NaN.

    Args:
        model, x, y, loss: As :func:`ensemble_loss`.
        opt: An ``adam`` :class:`EnsembleOptimizer` on ``model.flat`` (e.g.
            ``TrainResult.optimizer``).
        flat, members, max_iter, tol, seed, method: As :func:`top_eigenvalue`.
    """
    flat = (model.flat if flat is None else flat).detach()
    layout = MemberLayout(model)
    P = adam_preconditioner(opt)
    started = torch.isfinite(layout.gather(P)).all(dim=1)
    members = started if members is None else started & torch.as_tensor(members).to(started)
    live, safe = _usable(model, layout, flat, members)
    scale = layout.gather(P).rsqrt()  # P^{-1/2} (E, P)
    scale = torch.where(live[:, None], scale, torch.zeros_like(scale))
    H = hessian_operator(
        model, x, y, loss, flat=safe, method=method, weight_decay=opt.config.weight_decay
    )
    op = lambda rows: scale * layout.gather(H(layout.scatter(scale * rows)))  # noqa: E731
    return _solve(op, layout, live, flat, max_iter, tol, seed)


# ---------------------------------------------------------------------------- thresholds
def gd_threshold(lr: float | Tensor) -> float | Tensor:
    """``2 / eta``: gradient descent on a quadratic with curvature ``lambda`` maps the error
    ``e -> (1 - eta lambda) e``, which shrinks iff ``|1 - eta lambda| < 1``, i.e.
    ``0 < lambda < 2 / eta``."""
    return 2.0 / lr


def momentum_threshold(lr: float | Tensor, beta: float) -> float | Tensor:
    """``(2 + 2 beta) / eta`` for heavy-ball momentum ``beta`` (torch.optim.SGD's form,
    ``b = beta b + g``, ``theta -= eta b``).

    Derivation: on curvature ``lambda``, ``eta b_t = theta_{t-1} - theta_t``, so
    ``theta_{t+1} = (1 + beta - eta lambda) theta_t - beta theta_{t-1}``, with characteristic
    polynomial ``r^2 - (1 + beta - eta lambda) r + beta``. Both roots lie inside the unit circle
    iff (Jury) ``|beta| < 1``, ``1 - (1 + beta - eta lambda) + beta > 0`` (``eta lambda > 0``)
    and ``1 + (1 + beta - eta lambda) + beta > 0``, i.e. ``lambda < (2 + 2 beta) / eta``.
    """
    return (2.0 + 2.0 * beta) / lr


def adam_threshold(lr: float | Tensor, beta1: float = 0.9) -> float | Tensor:
    """``(2 + 2 beta1) / ((1 - beta1) eta)`` (= 38 / eta for beta1 = 0.9), the threshold of the
    preconditioned sharpness (derived in :func:`preconditioned_sharpness`)."""
    return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)
