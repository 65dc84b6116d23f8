"""Linear regions of piecewise-linear networks along a segment: exact counts and what theory says.

A network whose activations are piecewise linear (ReLU, LeakyReLU, PReLU, ReLU6, hardtanh, ...)
computes a piecewise-linear function. Restricted to the segment ``x(t) = x0 + t (x1 - x0)``,
``t in [0, 1]``, it is piecewise linear in the one variable ``t``, and its pieces can be counted
exactly (up to a stated tolerance on coincident breakpoints).

Two counts, kept apart on purpose:

* **Activation regions crossed** (``Pieces.regions``): the number of maximal sub-intervals of
  ``[0, 1]`` on which the activation pattern -- which linear piece of ``phi`` every hidden unit
  is on -- stays the same. A pattern fixes every pre-activation as an affine function of the
  input, so the set of inputs with one pattern is a convex polytope and the segment meets it in
  one interval: this is the number of activation regions the segment crosses, the count of
  Hanin & Rolnick (2019). It is ``1 +`` the number of points where some unit crosses one of its
  activation's kinks.
* **Linear pieces** (``Pieces.pieces``): the number of maximal sub-intervals on which the
  *output* is one affine function of ``t``. Adjacent regions whose outputs have the same slope
  and the same value at the shared point are one piece (a unit that crosses its kink where every
  unit it feeds is off changes the pattern but not the function). ``pieces <= regions``.

The exact algorithm (:func:`count_pieces`), for every member of an :class:`EnsembleMLP` at once:
keep a partition ``0 = t_0 < t_1 < ... < t_n = 1`` on each interval of which the input of the
current layer is affine in ``t``, ``h(t) = A + B t``. Then the layer's pre-activations are affine
too, ``z(t) = (W A + b) + (W B) t``, and unit ``j`` meets kink ``k`` of ``phi`` at
``t = (k - z_a[j]) / z_b[j]``, solved exactly. The roots inside an interval split it; on each new
interval every unit stays on one linear piece of ``phi``, whose slope ``s = phi'(z(t_mid))`` and
value at the midpoint give the next layer's affine input
``h(t) = phi(z(t_mid)) + s z_b (t - t_mid)``. After the last hidden layer the partition is the
activation-region partition, and the output layer gives each interval's affine output.

Everything is computed in float64 whatever the model's dtype. Intervals are padded to the longest
member's count, so memory is ``O(E * P * width * K)`` floats for ``P`` intervals and ``K`` kinks
(8 members, 1000 intervals, width 64: 4 MB).

Theory beside it:

* :func:`sawtooth_network`: Telgarsky's (2016) hand-built ReLU network of width 2 whose output on
  ``[0, 1]`` is the tent map composed ``depth`` times: ``2^depth`` linear pieces from ``2 depth``
  hidden units -- what depth *can* buy.
* :func:`expected_first_layer_breakpoints`: at a Gaussian initialisation, the expected number of
  kink crossings of the first hidden layer along the segment, exactly (a 1-D quadrature).
* :func:`bias_averaged_breakpoints`: per member, the expected number of breakpoints over a fresh
  draw of each unit's own Gaussian bias, every other parameter held; its mean over members is an
  unbiased, lower-variance estimate of the expected count at a ``mean_field`` initialisation.

What could be checked of Hanin & Rolnick (2019), "Complexity of linear regions in deep networks"
(ICML; arXiv 1901.09021): only its abstract could be read here. It states that at
initialisation the average number of regions along a one-dimensional subspace grows linearly in
the total number of neurons, not exponentially in depth, and that the average distance to the
nearest region boundary scales like the inverse of the number of neurons. The theorem's exact
statement and constants (a bound of the form "per unit length, a constant depending on the
gradient norms and the bias density, times the number of neurons") could not be read, so no
constant of theirs is computed here. What this module derives itself and tests by Monte Carlo:
the first layer's exact expectation, and the bias-averaging identity (a Kac-Rice / co-area
argument, which we believe is the idea behind their proof but have not verified against it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate
from torch import Tensor

from actlab.activations import Activation, get_activation, list_activations
from actlab.models import EnsembleMLP

__all__ = [
    "Pieces",
    "count_pieces",
    "piecewise_linear_activations",
    "sawtooth_network",
    "ensemble_from_layers",
    "expected_first_layer_breakpoints",
    "bias_averaged_breakpoints",
]

TOL = 1e-12
"""Breakpoints closer than this (in ``t``) are one breakpoint; roots this close to an end of the
interval they fall in are that end."""

RTOL = 1e-9
"""Relative tolerance (to the member's largest output coefficient) below which two adjacent
regions' affine outputs count as the same linear piece."""


@dataclass(frozen=True)
class Pieces:
    """What :func:`count_pieces` finds along the segment, for each of the E members.

    Attributes:
        breakpoints: Per member, the sorted ``t`` in ``(0, 1)`` where the activation pattern
            changes, float64 ``(regions[m] - 1,)``.
        regions: Activation regions crossed, int64 ``(E,)``: ``len(breakpoints[m]) + 1``.
        piece_breakpoints: Per member, the breakpoints where the output's affine map changes
            (its slope, or its value: a jump), a subset of ``breakpoints``.
        pieces: Linear pieces of the output, int64 ``(E,)``: ``len(piece_breakpoints[m]) + 1``.
        regions_by_layer: int64 ``(E, n_hidden)``: column ``l`` counts the regions of the
            activation pattern of hidden layers ``0..l`` only (the last column is ``regions``).
    """

    breakpoints: tuple[Tensor, ...]
    regions: Tensor
    piece_breakpoints: tuple[Tensor, ...]
    pieces: Tensor
    regions_by_layer: Tensor


def piecewise_linear_activations() -> list[str]:
    """Names of the registered activations that :func:`count_pieces` accepts."""
    return [n for n in list_activations() if get_activation(n).piecewise_linear]


# ---------------------------------------------------------------------------------- exact count
def _segment(model: EnsembleMLP, point: Tensor | Sequence[float], name: str) -> Tensor:
    """An end of the segment as float64 ``(E, in)``."""
    x = torch.as_tensor(point, dtype=torch.float64).detach()
    n_in = model.sizes[0]
    if x.shape == (n_in,):
        return x.expand(model.E, n_in)
    if x.shape == (model.E, n_in):
        return x
    raise ValueError(
        f"{name} must have shape ({n_in},) or ({model.E}, {n_in}), got {tuple(x.shape)}"
    )


def _check_piecewise_linear(model: EnsembleMLP) -> None:
    smooth = sorted({a.name for a in model.activations if not a.piecewise_linear})
    if smooth:
        raise ValueError(
            f"count_pieces needs piecewise-linear activations (linear between their kinks); "
            f"not piecewise linear: {', '.join(smooth)}. "
            f"Piecewise-linear ones: {', '.join(piecewise_linear_activations())}"
        )


def _kinks(model: EnsembleMLP) -> Tensor:
    """Every member's kinks, float64 ``(E, K)``, padded with NaN (K = most kinks of any)."""
    K = max(len(a.kinks) for a in model.activations)
    kinks = torch.full((model.E, K), math.nan, dtype=torch.float64)
    for m, act in enumerate(model.activations):
        kinks[m, : len(act.kinks)] = torch.tensor(act.kinks, dtype=torch.float64)
    return kinks


def _phi_and_slope(model: EnsembleMLP, z: Tensor, layer: int) -> tuple[Tensor, Tensor]:
    """``phi_m(z)`` and ``phi_m'(z)`` for ``z`` ``(E, P, D)`` of hidden layer ``layer``, with each
    member's activation and learnable parameters (PReLU's slope), in float64."""
    params = model.act_params(layer).detach().to(torch.float64)
    values, slopes = [], []
    for run in model.runs:
        act: Activation = run.activation
        theta = [params[run.start : run.stop, k, None, None] for k in range(len(act.params))]
        zr = z[run.start : run.stop]
        values.append(act.fn(zr, *theta))
        slopes.append(act.deriv(zr, *theta))
    return torch.cat(values), torch.cat(slopes)


def _refine(bp: Tensor, roots: Tensor, tol: float) -> Tensor:
    """Merge the new roots (``(E, R)``, each more than ``tol`` from every old breakpoint; values
    above 1 are placeholders) into the breakpoint rows ``bp`` (``(E, P + 1)``, sorted, padded
    with 1.0): sorted rows, padded with 1.0, where a point closer than ``tol`` to the one before
    it in the sorted row is dropped."""
    v, _ = torch.sort(torch.cat([bp, roots], dim=1), dim=1)
    keep = v <= 1.0
    keep[:, 1:] &= v[:, 1:] - v[:, :-1] > tol
    v = torch.where(keep, v, torch.full_like(v, 3.0))
    v, _ = torch.sort(v, dim=1)
    v = v[:, : int(keep.sum(dim=1).max())]
    return torch.where(v > 1.0, torch.ones_like(v), v)


def _compact(values: Tensor, keep: Tensor) -> Tensor:
    """The kept entries of each row of ``values`` ``(E, N)``, left-aligned and padded with 2.0:
    ``(E, most kept in a row)``. (Sorting only these is what makes the count fast: most roots
    fall outside their interval.)"""
    n = int(keep.sum(dim=1).max())
    pos = torch.where(keep, keep.cumsum(dim=1) - 1, n)  # the dropped all go to column n
    out = values.new_full((values.shape[0], n + 1), 2.0)
    return out.scatter_(1, pos, values)[:, :n]


def _propagate(model: EnsembleMLP, x0: Tensor, x1: Tensor, tol: float):
    """Yield ``(layer, bp, n, za, zb)`` for every affine layer: the breakpoints ``bp``
    ``(E, P + 1)`` (padded with 1.0), the number of intervals ``n`` ``(E,)``, and the layer's
    pre-activation on interval ``i``, ``z(t) = za[:, i] + zb[:, i] t``, ``(E, P, out)``, before
    the layer's own kinks split the intervals."""
    E = model.E
    bp = torch.tensor([0.0, 1.0], dtype=torch.float64).expand(E, 2)
    a, b = x0[:, None, :], (x1 - x0)[:, None, :]  # (E, P, in): h(t) = a + b t
    kinks = _kinks(model)  # (E, K)
    for layer in range(model.n_layers):
        w = model.weight(layer).detach().to(torch.float64)
        bias = model.bias(layer).detach().to(torch.float64)
        za = torch.bmm(a, w.transpose(1, 2)) + bias[:, None, :]
        zb = torch.bmm(b, w.transpose(1, 2))
        n = (bp[:, 1:] > bp[:, :-1]).sum(dim=1)
        yield layer, bp, n, za, zb
        if layer == model.n_hidden:
            return
        lo, hi = bp[:, :-1, None, None], bp[:, 1:, None, None]
        roots = (kinks[:, None, None, :] - za[..., None]) / zb[..., None]  # (E, P, out, K)
        inside = (roots > lo + tol) & (roots < hi - tol)  # NaN and +-inf are never inside
        new = _refine(bp, _compact(roots.reshape(E, -1), inside.reshape(E, -1)), tol)
        mid = (new[:, :-1] + new[:, 1:]) / 2  # (E, P')
        parent = torch.searchsorted(bp.contiguous(), mid.contiguous(), right=True) - 1
        parent = parent.clamp_(0, bp.shape[1] - 2)[..., None].expand(-1, -1, za.shape[2])
        za_m, zb_m = za.gather(1, parent), zb.gather(1, parent)
        value, slope = _phi_and_slope(model, za_m + zb_m * mid[..., None], layer)
        b = slope * zb_m
        a = value - b * mid[..., None]
        bp = new


def count_pieces(
    model: EnsembleMLP,
    x0: Tensor | Sequence[float],
    x1: Tensor | Sequence[float],
    *,
    tol: float = TOL,
    rtol: float = RTOL,
) -> Pieces:
    """Exact activation regions and linear pieces of every member along ``x0 -> x1``.

    The segment is ``x(t) = x0 + t (x1 - x0)``, ``t in [0, 1]``; see the module docstring for the
    algorithm and the two counts. Exact up to two tolerances: breakpoints closer than ``tol`` in
    ``t`` are merged (two units crossing their kinks within ``tol`` of each other count once),
    and adjacent regions whose outputs differ by less than ``rtol`` times the member's largest
    output coefficient count as one piece.

    Args:
        model: Any :class:`EnsembleMLP` whose activations are all piecewise linear (mixed
            activations across members are fine; learnable parameters such as PReLU's slope are
            read from the model).
        x0: Start of the segment, ``(in,)`` shared or ``(E, in)`` one per member.
        x1: End of the segment, same shapes.
        tol: Merging distance for breakpoints, in ``t``.
        rtol: Relative tolerance for "same affine output" (see above).

    Returns:
        A :class:`Pieces`.

    Raises:
        ValueError: A member's activation is not piecewise linear (``tanh``, ``gelu``, ...), or
            ``x0``/``x1`` have the wrong shape.
    """
    _check_piecewise_linear(model)
    x0, x1 = _segment(model, x0, "x0"), _segment(model, x1, "x1")
    E = model.E
    by_layer = []
    for layer, *last in _propagate(model, x0, x1, tol):
        if layer > 0:
            by_layer.append(last[1])
    bp, n, za, zb = last  # the output layer's, on the final partition
    breakpoints = tuple(bp[m, 1 : int(n[m])] for m in range(E))
    # Adjacent intervals i, i + 1 meet at t = bp[:, i + 1]: compare the outputs' slopes and their
    # values there from both sides.
    t = bp[:, 1:-1, None]
    jump = ((za[:, 1:] + zb[:, 1:] * t) - (za[:, :-1] + zb[:, :-1] * t)).abs()
    bend = (zb[:, 1:] - zb[:, :-1]).abs()
    valid = torch.arange(za.shape[1], device=za.device)[None, :] < n[:, None]  # (E, P)
    scale = torch.where(valid[..., None], za.abs() + zb.abs(), torch.zeros_like(za))
    scale = scale.flatten(1).amax(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    differ = (torch.maximum(jump, bend) > rtol * scale[:, None, None]).any(dim=2)
    differ &= valid[:, 1:]
    piece_breakpoints = tuple(bp[m, 1:-1][differ[m]] for m in range(E))
    regions = torch.tensor([len(p) + 1 for p in breakpoints], dtype=torch.int64)
    return Pieces(
        breakpoints=breakpoints,
        regions=regions,
        piece_breakpoints=piece_breakpoints,
        pieces=torch.tensor([len(p) + 1 for p in piece_breakpoints], dtype=torch.int64),
        regions_by_layer=torch.stack(by_layer, dim=1),
    )


# ---------------------------------------------------------------------------------- constructions
def sawtooth_network(depth: int) -> list[tuple[Tensor, Tensor]]:
    """Telgarsky's sawtooth: a ReLU network of ``depth`` hidden layers of width 2 computing the
    tent map composed ``depth`` times on ``[0, 1]``.

    The tent map ``T(x) = 2x`` for ``x <= 1/2`` and ``2 - 2x`` above equals
    ``2 relu(x) - 4 relu(x - 1/2)`` on ``[0, 1]``, and maps ``[0, 1]`` onto itself. Each hidden
    layer computes ``(relu(y), relu(y - 1/2))`` of the previous ``y = T^(l)(x)``, the next layer's
    weights ``[[2, -4], [2, -4]]`` and biases ``[0, -1/2]`` form ``T`` and shift it. ``T^depth``
    has ``2^depth`` linear pieces on ``[0, 1]``, with breakpoints at ``k / 2^depth`` (Telgarsky
    2016, "Benefits of depth in neural networks"), from ``2 depth`` hidden units, while a one-hidden
    layer ReLU network on a line has at most (units + 1) pieces.

    Returns:
        ``[(W_0, b_0), ..., (W_depth, b_depth)]`` in float64, ``W_l`` ``(out, in)``: sizes
        ``1 -> 2 -> ... -> 2 -> 1``. Load them with :func:`ensemble_from_layers`.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    f64 = torch.float64
    shift = torch.tensor([0.0, -0.5], dtype=f64)
    tent = torch.tensor([[2.0, -4.0]], dtype=f64)
    layers = [(torch.tensor([[1.0], [1.0]], dtype=f64), shift.clone())]
    layers += [(tent.expand(2, 2).clone(), shift.clone()) for _ in range(depth - 1)]
    layers.append((tent.clone(), torch.zeros(1, dtype=f64)))
    return layers


def ensemble_from_layers(
    members: Sequence[Sequence[tuple[Tensor, Tensor]]],
    activations: str | Activation | Sequence[str | Activation],
    *,
    dtype: torch.dtype = torch.float64,
) -> EnsembleMLP:
    """An :class:`EnsembleMLP` whose member ``m`` has the layers ``members[m]``.

    Args:
        members: One list of ``(W, b)`` per member, ``W`` ``(out, in)``, ``b`` ``(out,)``, input
            side first; every member with the same sizes.
        activations: One activation for all, or one per member.
        dtype: The model's dtype.
    """
    sizes = [members[0][0][0].shape[1], *(w.shape[0] for w, _ in members[0])]
    for m, layers in enumerate(members):
        got = [layers[0][0].shape[1], *(w.shape[0] for w, _ in layers)]
        if got != sizes:
            raise ValueError(f"member {m} has sizes {got}, member 0 has {sizes}")
    E = len(members)
    acts = [activations] * E if isinstance(activations, (str, Activation)) else activations
    model = EnsembleMLP(sizes[0], sizes[1:-1], sizes[-1], acts, range(E), dtype=dtype)
    with torch.no_grad():
        for m, layers in enumerate(members):
            for layer, (w, b) in enumerate(layers):
                model.weight(layer)[m].copy_(torch.as_tensor(w))
                model.bias(layer)[m].copy_(torch.as_tensor(b))
    return model


# ---------------------------------------------------------------------------------- theory
def _crossing_probability(v0: float, v1: float, c: float, kink: float) -> float:
    """``P(kink strictly between z0 and z1)`` for ``(z0, z1)`` centred Gaussian with variances
    ``v0, v1`` and covariance ``c`` (possibly singular).

    Writing ``z = M g`` with ``g`` standard normal in the plane and ``M M^T`` the covariance, in
    polar coordinates ``g = r (cos a, sin a)``: along each direction the condition holds on an
    interval of ``r`` whose Gaussian radial mass is ``exp(-r_lo^2 / 2) - exp(-r_hi^2 / 2)``;
    that is integrated over ``a`` in ``[0, 2 pi)`` by adaptive quadrature, split where
    ``z0`` or ``z1`` changes sign along the direction (where the integrand jumps).
    """
    cov = np.array([[v0, c], [c, v1]], dtype=float)
    lam, vec = np.linalg.eigh(cov)
    M = vec * np.sqrt(np.clip(lam, 0.0, None))  # z = M g
    m0, m1 = M[0], M[1]

    def mass(angle: float) -> float:
        u = np.array([math.cos(angle), math.sin(angle)])
        p, q = float(m0 @ u), float(m1 @ u)
        lo_c, hi_c = min(p, q), max(p, q)  # z0, z1 = r p, r q along this direction
        if kink == 0.0:
            return 1.0 if lo_c < 0.0 < hi_c else 0.0
        if kink > 0.0:
            if hi_c <= 0.0:
                return 0.0
            r_lo, r_hi = kink / hi_c, (kink / lo_c if lo_c > 0.0 else math.inf)
        else:
            if lo_c >= 0.0:
                return 0.0
            r_lo, r_hi = kink / lo_c, (kink / hi_c if hi_c < 0.0 else math.inf)
        return math.exp(-0.5 * r_lo * r_lo) - (
            0.0 if math.isinf(r_hi) else math.exp(-0.5 * r_hi**2)
        )

    cuts = {0.0, 2 * math.pi}
    for row in (m0, m1):
        if np.any(row != 0.0):
            base = math.atan2(row[1], row[0]) + math.pi / 2  # row @ u = 0 here and half a turn on
            cuts |= {base % (2 * math.pi), (base + math.pi) % (2 * math.pi)}
    cuts = sorted(cuts)
    total = sum(
        integrate.quad(mass, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)
        if hi > lo
    )
    return total / (2 * math.pi)


def expected_first_layer_breakpoints(
    x0: Sequence[float] | Tensor,
    x1: Sequence[float] | Tensor,
    width: int,
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
) -> float:
    """Expected kink crossings of the first hidden layer along ``x(t) = x0 + t (x1 - x0)``.

    At a Gaussian initialisation (``EnsembleMLP(init="mean_field")``: ``W ~ N(0, sigma_w2 / n)``
    with ``n = len(x0)``, ``b ~ N(0, sigma_b2)``; ``init="he"`` is ``sigma_w2 = 2, sigma_b2 = 0``)
    unit ``j``'s pre-activation ``z_j(t) = w_j . x(t) + b_j`` is affine in ``t``, so it crosses
    kink ``k`` at most once, exactly when ``k`` lies strictly between ``z_j(0)`` and ``z_j(1)``.
    ``(z_j(0), z_j(1))`` is a centred Gaussian pair with

    ``v0 = sigma_w2 |x0|^2 / n + sigma_b2``, ``v1 = sigma_w2 |x1|^2 / n + sigma_b2``,
    ``c = sigma_w2 (x0 . x1) / n + sigma_b2``,

    and units are independent, so

    ``E[#breakpoints of layer 1] = width * sum_k P(k strictly between z(0) and z(1))``

    (crossings of different units, or of one unit's different kinks, coincide with probability 0,
    so this is also ``E[regions of layer 1] - 1``). For a kink at 0 the probability is the
    classical ``arccos(rho) / pi``, ``rho = c / sqrt(v0 v1)``; other kinks need a bivariate
    normal probability, computed here by a 1-D quadrature (see ``_crossing_probability``).

    This is exact for the first layer only. Deeper layers' pre-activations are piecewise linear
    in ``t`` and depend on the layers below; for them see :func:`bias_averaged_breakpoints`.
    Uniform initialisations (``"torch"``, ``"xavier"``) are not Gaussian and are not covered.
    """
    x0 = np.asarray(x0, dtype=float)
    x1 = np.asarray(x1, dtype=float)
    n = x0.shape[-1]
    v0 = sigma_w2 * float(x0 @ x0) / n + sigma_b2
    v1 = sigma_w2 * float(x1 @ x1) / n + sigma_b2
    c = sigma_w2 * float(x0 @ x1) / n + sigma_b2
    kinks = get_activation(activation).kinks
    return width * sum(_crossing_probability(v0, v1, c, float(k)) for k in kinks)


def bias_averaged_breakpoints(
    model: EnsembleMLP,
    x0: Tensor | Sequence[float],
    x1: Tensor | Sequence[float],
    sigma_b2: float,
    *,
    tol: float = TOL,
) -> Tensor:
    """Per member, the expected number of breakpoints over a fresh ``N(0, sigma_b2)`` draw of each
    hidden unit's own bias, all other parameters held: float64 ``(E, n_hidden)``, per layer.

    For hidden unit ``j`` let ``u_j(t) = z_j(t) - b_j``, which does not depend on ``b_j``
    (only on the layers below and ``j``'s weights). Unit ``j`` crosses kink ``k`` wherever
    ``u_j(t) = k - b_j``; by the co-area formula (Kac-Rice in one dimension), averaging the number
    of such ``t`` over ``b_j`` with density ``rho`` gives

    ``E_b[#crossings of k] = int_0^1 rho(k - u_j(t)) |u_j'(t)| dt``,

    and on an interval where ``u_j(t) = alpha + beta t`` that integral is
    ``|F(k - u_j(t_lo)) - F(k - u_j(t_hi))|`` with ``F`` the ``N(0, sigma_b2)`` CDF. Summed over
    units and kinks (crossings coincide with probability 0 when the biases have a density).

    At ``init="mean_field"`` with ``sigma_b2 > 0``, every bias is independent of everything
    else, so the mean over members of this value equals the expected number of breakpoints
    (``E[regions] - 1``, layer by layer), with a smaller variance than the exact count. We
    derived this identity ourselves: Hanin & Rolnick's density-of-bias argument is, we believe,
    of this kind, but their statement could not be read. For a trained network it is only a
    local average and means nothing more.

    Returns:
        ``(E, n_hidden)``: column ``l`` is the expected number of kink crossings of hidden layer
        ``l``'s units; ``sum(dim=1)`` estimates ``E[regions] - 1``.
    """
    if not sigma_b2 > 0:
        raise ValueError(f"sigma_b2 must be > 0 (a bias density is needed), got {sigma_b2!r}")
    _check_piecewise_linear(model)
    x0, x1 = _segment(model, x0, "x0"), _segment(model, x1, "x1")
    kinks = _kinks(model)  # (E, K)
    sd = math.sqrt(sigma_b2)
    out = torch.zeros(model.E, model.n_hidden, dtype=torch.float64)
    for layer, bp, n, za, zb in _propagate(model, x0, x1, tol):
        if layer == model.n_hidden:
            break
        bias = model.bias(layer).detach().to(torch.float64)
        ua = za - bias[:, None, :]
        u_lo = ua + zb * bp[:, :-1, None]  # (E, P, out)
        u_hi = ua + zb * bp[:, 1:, None]
        k = kinks[:, None, None, :]
        ndtr = torch.special.ndtr
        mass = (ndtr((k - u_lo[..., None]) / sd) - ndtr((k - u_hi[..., None]) / sd)).abs()
        valid = torch.arange(za.shape[1])[None, :] < n[:, None]
        mass = torch.where(valid[..., None, None], mass, torch.zeros_like(mass))
        out[:, layer] = mass.nan_to_num(0.0).sum(dim=(1, 2, 3))
    return out
