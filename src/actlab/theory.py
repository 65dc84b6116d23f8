"""What theory predicts for a deep network at initialisation, for any registry activation.

Mean field (Poole et al. 2016; Schoenholz et al. 2017). A fully connected network of width
``N``: weights ``W ~ N(0, sigma_w^2 / N_in)``, biases ``b ~ N(0, sigma_b^2)``; in the wide
limit each pre-activation ``z`` of layer ``l`` is Gaussian, ``z ~ N(0, q^l)``. With ``E`` the
expectation over a standard normal ``u``:

* length map: ``q^{l+1} = sigma_w^2 E[phi(sqrt(q^l) u)^2] + sigma_b^2``; its fixed point ``q*``.
* ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) u)^2]``: the factor by which the mean *squared* backward
  signal ``E[delta^2]`` changes per layer (``delta = dL/dz``), so the backward signal's *norm*
  changes by ``sqrt(chi_1)``: on a log scale a line of slope ``1/2 log chi_1`` per layer.
  ``chi_1 < 1``: ordered, gradients vanish with depth; ``> 1``: chaotic, they explode; the
  edge of chaos is ``chi_1 = 1``.
* correlation map of two inputs, ``c^{l+1} = (sigma_w^2 E[phi(z_1) phi(z_2)] + sigma_b^2) /
  sqrt(q_1 q_2)`` with ``(z_1, z_2)`` jointly Gaussian of variances ``q_1, q_2`` and correlation
  ``c``; its slope at ``c = 1`` (for ``q_1 = q_2 = q*``) is ``chi_1``.
* depth scales: ``1/xi_q = -log dQ/dq (q*)`` (how fast ``q^l`` reaches ``q*``) and
  ``1/xi_c = -log chi_1`` (how fast two inputs' correlation reaches its fixed point near 1).

Integrals are Gauss-Legendre quadrature on ``[-Z, Z]`` (``Z = 12``; the normal mass beyond is
``4e-33``) *split at the activation's kinks* (and at 0): a node on a kink gets ReLU wrong --
NumPy's Gauss-Hermite with 101 nodes gives ``E[relu'(u)^2] = 0.438`` instead of 0.5.

``phi`` is the registry's function, evaluated in float64 through torch; everything else is
NumPy/SciPy. Arrays broadcast: ``q``, ``sigma_w2``, ``sigma_b2`` may be grids.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import optimize
from scipy.special import ndtr

from actlab.activations import Activation, get_activation

__all__ = [
    "Phi",
    "gauss",
    "length_map",
    "fixed_point",
    "chi1",
    "length_slope",
    "correlation_map",
    "depth_scales",
    "edge_of_chaos",
    "forward_q",
    "backward_slope",
    "saturation_fraction",
    "born_dead_probability",
    "init_variances",
]

Z_MAX = 12.0
_TINY = 1e-150
Q_BIG = 1e12
NODES = 96  # Gauss-Legendre nodes per segment between kinks
_GL_X, _GL_W = np.polynomial.legendre.leggauss(NODES)


@dataclass(frozen=True)
class Phi:
    """An activation as NumPy functions: ``f`` (phi), ``df`` (phi') and ``kinks``."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    kinks: tuple[float, ...]

    @classmethod
    def of(cls, activation: str | Activation | Phi) -> Phi:
        if isinstance(activation, Phi):
            return activation
        act = get_activation(activation)
        params = [torch.tensor(float(v), dtype=torch.float64) for v in act.params.values()]

        def numpy(fn):
            def call(x):
                with torch.no_grad():
                    return fn(torch.from_numpy(np.asarray(x, dtype=np.float64)), *params).numpy()

            return call

        return cls(act.name, numpy(act.fn), numpy(act.deriv), tuple(act.kinks))


def gauss(
    g: Callable[[np.ndarray], np.ndarray],
    mean: np.ndarray | float = 0.0,
    sd: np.ndarray | float = 1.0,
    kinks: tuple[float, ...] = (),
) -> np.ndarray:
    """``E[g(mean + sd u)]`` for a standard normal ``u``, elementwise over broadcast
    ``mean``/``sd``; ``g`` may jump or bend at the points ``kinks`` (of its argument).

    The segments of ``[-Z, Z]`` between the kinks (in ``u``: ``(k - mean)/sd``) and 0 each get
    ``NODES`` Gauss-Legendre nodes, so no node sits on a kink. Exact to ~1e-12 for the
    activations of the registry (tests: closed forms and Monte Carlo).
    """
    mean, sd = np.broadcast_arrays(np.asarray(mean, np.float64), np.asarray(sd, np.float64))
    # sd = 0 is taken as the limit sd -> 0+ (ReLU's E[phi'(sqrt(q) u)^2] is 1/2 for every q > 0)
    sd = np.where(sd > 0, sd, _TINY)
    cuts = [(k - mean) / sd for k in kinks]
    cuts = [np.full(mean.shape, -Z_MAX), np.zeros(mean.shape), *cuts, np.full(mean.shape, Z_MAX)]
    edges = np.sort(np.clip(np.stack(cuts, axis=-1), -Z_MAX, Z_MAX), axis=-1)  # (..., S+1)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]  # (..., S, 1)
    u = lo + (hi - lo) * (_GL_X + 1) / 2  # (..., S, NODES)
    weight = (hi - lo) / 2 * _GL_W * np.exp(-(u**2) / 2) / math.sqrt(2 * math.pi)
    values = g(mean[..., None, None] + sd[..., None, None] * u)
    return (weight * values).sum(axis=(-1, -2))


def length_map(activation, q, sigma_w2, sigma_b2) -> np.ndarray:
    """``q^{l+1} = sigma_w^2 E[phi(sqrt(q) u)^2] + sigma_b^2``."""
    p = Phi.of(activation)
    second = gauss(lambda z: p.f(z) ** 2, 0.0, np.sqrt(q), p.kinks)
    return np.asarray(sigma_w2) * second + np.asarray(sigma_b2)


def length_slope(activation, q, sigma_w2) -> np.ndarray:
    """``dQ/dq = sigma_w^2 E[u phi(sqrt(q) u) phi'(sqrt(q) u)] / sqrt(q)`` (the length map's
    slope; by Gaussian integration by parts ``chi_1 + sigma_w^2 E[phi'' phi]``)."""
    p = Phi.of(activation)
    sd = np.sqrt(np.asarray(q, np.float64))
    # E[u g(sd u)] = E[(z/sd) g(z)] for z = sd u
    inner = gauss(lambda z: z * p.f(z) * p.df(z), 0.0, sd, p.kinks)
    return np.asarray(sigma_w2) * inner / sd**2


def fixed_point(
    activation, sigma_w2, sigma_b2, q0: float = 1.0, tol: float = 1e-13, max_iter: int = 300
) -> np.ndarray:
    """``q*``: the fixed point of the length map reached from ``q0``.

    The map is iterated up to ``max_iter`` times (stopping where the relative change is below
    ``tol``); where that is too slow (near the edge of chaos convergence is algebraic, not
    geometric), the root of ``Q(q) - q`` is bracketed from the last iterate in the direction the
    iteration moves and found by Brent's method. ``inf`` where ``q`` grows without bound (e.g.
    ReLU with ``sigma_w^2 > 2``); where the map is neutral (identity or ReLU at
    ``sigma_w^2 = 1`` or 2 with ``sigma_b^2 = 0``) every ``q`` is fixed and ``q0`` is returned.
    Elementwise over broadcast ``sigma_w2``/``sigma_b2``.
    """
    p = Phi.of(activation)
    sw, sb = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
    shape = sw.shape
    sw, sb = sw.reshape(-1), sb.reshape(-1)
    q = np.full(sw.shape, float(q0))
    active = np.ones(sw.shape, bool)
    for _ in range(max_iter):
        if not active.any():
            break
        new = length_map(p, q[active], sw[active], sb[active])
        done = np.abs(new - q[active]) <= tol * np.maximum(np.abs(new), 1e-300)
        blown = ~np.isfinite(new) | (new > Q_BIG)
        q[active] = np.where(blown, np.inf, new)
        idx = np.flatnonzero(active)
        active[idx[done | blown]] = False
    for i in np.flatnonzero(active):
        q[i] = _root_from(p, float(q[i]), float(sw[i]), float(sb[i]))
    return q.reshape(shape) if shape else float(q[0])


def _root_from(p: Phi, q: float, sw: float, sb: float) -> float:
    """The root of ``Q(x) - x`` next to ``q`` on the side the iteration moves to."""

    def gap(x: float) -> float:
        return float(length_map(p, x, sw, sb)) - x

    g = gap(q)
    if g == 0.0:
        return q
    if g < 0:  # moving down: Q(0) - 0 = Q(0) >= 0 brackets a root in [0, q]
        # absolute tolerance relative to q: with sigma_b^2 = 0 and phi(0) = 0 the root is 0 and
        # gap ~ -x^2 near it (tanh at sigma_w^2 = 1), which an absolute 1e-300 never reaches
        return optimize.brentq(gap, 0.0, q, xtol=1e-15 * q, rtol=4 * np.finfo(float).eps)
    hi = 2.0 * q
    while gap(hi) > 0:
        if hi > Q_BIG:
            return math.inf
        q, hi = hi, 2.0 * hi
    return optimize.brentq(gap, q, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps)


def chi1(activation, sigma_w2, sigma_b2, q: np.ndarray | float | None = None) -> np.ndarray:
    """``chi_1 = sigma_w^2 E[phi'(sqrt(q) u)^2]`` at ``q`` (default: the fixed point ``q*``;
    where ``q*`` is infinite, the value at ``q = Q_BIG = 1e12``, e.g. ``sigma_w^2/2`` for ReLU)."""
    p = Phi.of(activation)
    if q is None:
        q = fixed_point(p, sigma_w2, sigma_b2)
    q = np.minimum(q, Q_BIG)  # q* = inf (the signal blows up): the limit, taken at Q_BIG
    return np.asarray(sigma_w2) * gauss(lambda z: p.df(z) ** 2, 0.0, np.sqrt(q), p.kinks)


def correlation_map(activation, c, q1, q2, sigma_w2, sigma_b2) -> np.ndarray:
    """``c^{l+1}`` for inputs whose pre-activations have variances ``q1, q2`` and correlation
    ``c``: ``z_1 = sqrt(q1) u_1``, ``z_2 = sqrt(q2) (c u_1 + sqrt(1 - c^2) u_2)``.

    The outer expectation is over ``u_1`` (split at ``phi``'s kinks); given ``u_1``, ``z_2`` is
    normal with mean ``sqrt(q2) c u_1`` and sd ``sqrt(q2 (1 - c^2))``, integrated by :func:`gauss`
    (split at the kinks in its own variable), so no node sits on a kink in either variable.
    Returns the correlation of layer ``l+1``'s pre-activations (the bias adds ``sigma_b^2`` to
    the covariance; the variances come from :func:`length_map`).
    """
    p = Phi.of(activation)
    c = np.clip(np.asarray(c, np.float64), -1.0, 1.0)
    q1, q2 = np.asarray(q1, np.float64), np.asarray(q2, np.float64)
    s1, s2 = np.sqrt(q1), np.sqrt(q2)
    c, s1, s2 = np.broadcast_arrays(c, s1, s2)

    def outer(z1: np.ndarray) -> np.ndarray:
        u1 = z1 / s1[..., None, None]
        inner = gauss(
            p.f,
            s2[..., None, None] * c[..., None, None] * u1,
            s2[..., None, None] * np.sqrt(1.0 - c[..., None, None] ** 2),
            p.kinks,
        )
        return p.f(z1) * inner

    cross = gauss(outer, 0.0, s1, p.kinks)
    sw, sb = np.asarray(sigma_w2), np.asarray(sigma_b2)
    return (sw * cross + sb) / np.sqrt(length_map(p, q1, sw, sb) * length_map(p, q2, sw, sb))


def depth_scales(activation, sigma_w2, sigma_b2) -> tuple[np.ndarray, np.ndarray]:
    """``(xi_q, xi_c)``: ``1/xi_q = -log dQ/dq(q*)``, ``1/xi_c = -log chi_1``.

    ``inf`` at the edge of chaos (``chi_1 = 1``); ``xi_c`` is NaN in the chaotic phase
    (``chi_1 > 1``), where ``c = 1`` is not the stable fixed point and this formula does not apply.
    """
    qs = fixed_point(activation, sigma_w2, sigma_b2)
    slope = length_slope(activation, qs, sigma_w2)
    x1 = chi1(activation, sigma_w2, sigma_b2, qs)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi_q = np.where(slope < 1.0, -1.0 / np.log(slope), np.inf)
        edge = np.abs(x1 - 1.0) <= 1e-9
        xi_c = np.where(edge, np.inf, np.where(x1 < 1.0, -1.0 / np.log(x1), np.nan))
    return xi_q, xi_c


def edge_of_chaos(activation, sigma_b2, sw_range: tuple[float, float] = (0.05, 20.0)):
    """The ``sigma_w^2`` with ``chi_1 = 1`` at each ``sigma_b^2`` (Brent's method on
    ``log chi_1``); NaN where ``chi_1 - 1`` has no sign change in ``sw_range``."""
    out = []
    for sb in np.atleast_1d(np.asarray(sigma_b2, np.float64)):

        def gap(sw: float, sb=sb) -> float:
            return float(np.log(chi1(activation, sw, sb)))

        a, b = sw_range
        ga, gb = gap(a), gap(b)
        out.append(optimize.brentq(gap, a, b, xtol=1e-10) if ga * gb < 0 else math.nan)
    return np.asarray(out) if np.ndim(sigma_b2) else out[0]


def forward_q(activation, q0, depth: int, sigma_w2, sigma_b2) -> np.ndarray:
    """``[q^1, ..., q^depth]``: the length map applied ``depth`` times from the input's ``q^0``
    (``q^1 = sigma_w^2 q^0_x + sigma_b^2`` for the first layer, whose input is not activated:
    pass ``q0`` as the input's mean square times ``sigma_w^2`` plus ``sigma_b^2`` yourself if it
    is)."""
    qs, q = [], np.asarray(q0, np.float64)
    for _ in range(depth):
        qs.append(q)
        q = length_map(activation, q, sigma_w2, sigma_b2)
    return np.stack(qs)


def backward_slope(activation, sigma_w2, sigma_b2) -> np.ndarray:
    """``1/2 log chi_1``: the predicted change of ``log ||delta_l||`` per layer towards the input
    (natural log), at the fixed point."""
    return 0.5 * np.log(chi1(activation, sigma_w2, sigma_b2))


def saturation_fraction(activation, q, band: tuple[float, float]) -> np.ndarray:
    """``P(phi(z) outside band)`` for ``z ~ N(0, q)``, for a monotone non-decreasing ``phi``:
    with ``phi(z_lo) = band[0]`` and ``phi(z_hi) = band[1]`` (found by Brent's method),
    ``Phi(z_lo/sqrt q) + 1 - Phi(z_hi/sqrt q)`` (tanh: ``2 (1 - Phi(artanh(0.99)/sqrt q))``)."""
    p = Phi.of(activation)

    def solve(level: float) -> float:
        lo, hi = -1.0, 1.0
        while p.f(np.array(lo)) > level and lo > -1e6:
            lo *= 2
        while p.f(np.array(hi)) < level and hi < 1e6:
            hi *= 2
        return optimize.brentq(lambda z: float(p.f(np.array(z))) - level, lo, hi, xtol=1e-13)

    z_lo, z_hi = solve(band[0]), solve(band[1])
    sd = np.sqrt(np.asarray(q, np.float64))
    return ndtr(z_lo / sd) + ndtr(-z_hi / sd)


def born_dead_probability(width, depth) -> np.ndarray:
    """``P(some hidden layer is zero at one fixed input) = 1 - (1 - 2^{-N})^D`` for a ReLU
    network of ``D`` hidden layers of width ``N``, zero biases, weights from any symmetric
    continuous distribution.

    Derivation: given a non-zero input ``h`` to a layer, each unit's ``z = w . h`` is symmetric
    and continuous, so it is ``<= 0`` (the unit is off) with probability 1/2, independently
    across units (their weights are independent): the layer is all zero with probability
    ``2^{-N}``. A zero layer stays zero (no bias), so the network survives all ``D`` layers with
    probability ``(1 - 2^{-N})^D``. A network that is zero at some layer for *every* input is
    constant; zero at one input is necessary, not sufficient, so this is an upper bound on the
    probability of being constant over a domain (Lu, Shin, Su & Karniadakis 2019 study that
    event; their exact theorem is not quoted here).
    """
    n = np.asarray(width, np.float64)
    d = np.asarray(depth, np.float64)
    return -np.expm1(d * np.log1p(-(2.0**-n)))


def init_variances(init: str, fan_in: int, fan_out: int | None = None) -> tuple[float, float]:
    """``(sigma_w^2, sigma_b^2)`` of an initialisation in the mean-field convention
    ``Var(w) = sigma_w^2 / fan_in``, ``Var(b) = sigma_b^2``.

    ``torch`` (PyTorch's default ``U(-B, B)``, ``B = 1/sqrt(fan_in)`` for weights and biases):
    ``(1/3, 1/(3 fan_in))``; ``xavier`` (weights ``2/(fan_in + fan_out)``, zero bias): with equal
    fans ``(1, 0)``; ``he`` (``2/fan_in``, zero bias): ``(2, 0)``. The mean field assumes
    Gaussian weights; for uniform ones only the variance enters the wide limit.
    """
    fan_out = fan_in if fan_out is None else fan_out
    if init == "torch":
        return 1.0 / 3.0, 1.0 / (3.0 * fan_in)
    if init == "xavier":
        return 2.0 * fan_in / (fan_in + fan_out), 0.0
    if init == "he":
        return 2.0, 0.0
    raise ValueError(f"init must be one of 'torch', 'xavier', 'he', got {init!r}")
