"""Representation and gradient metrics as pure functions of tensors (the functional core).

Shapes, ensemble axis first. Activations ``h`` and pre-activations ``z`` of one layer are
``(E, B, D)``: E members, B probe inputs, D units; every metric returns one value per member,
``(E,)``. A single model's ``(B, D)`` is accepted too and treated as E = 1 (the result is still
``(1,)``). Rank metrics take features ``(E, N, H)`` or ``(N, H)`` the same way. Gradient
statistics reduce over every axis but the first, which is always the ensemble axis: pass
``g[None]`` for a single model's gradient.

Every result is float64: fractions are exact counts divided by exact totals, sums are taken in
float64, so that the stateful accumulators of :mod:`actlab.probes.stats` (which keep counts and
float64 sums) reproduce these values to rounding. NaN inputs are neither zero, negative nor
outside a band, so a unit that outputs NaN is never counted dead, inactive or saturated.

Definitions follow ``docs/REFERENCES.md`` ("Representation metrics"); each function's docstring
states its formula. The ``_from_*`` helpers compute a metric from sufficient statistics and are
shared with the accumulators, which hold those statistics instead of tensors.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from actlab.activations import Activation

__all__ = [
    "dead_fraction",
    "inactive_fraction",
    "saturated_fraction",
    "dormant_fraction",
    "sparsity",
    "srank",
    "effective_rank",
    "preactivation_stats",
    "grad_norm",
    "mean_abs",
    "saturation_band",
    "dead_kind",
    "srank_from_singular_values",
    "effective_rank_from_singular_values",
    "singular_values_from_gram",
]

DORMANT_EPS = 1e-9
"""Added to the denominator of the ReDo score, as in the official code (google/dopamine)."""

SATURATION_MARGIN = 0.01
"""Generic saturation band: the outer 1% of a bounded activation's range on each side."""


# --------------------------------------------------------------------------------------------
# Shapes


def as_members(x: Tensor, what: str = "activations") -> Tensor:
    """``(E, B, D)`` unchanged, ``(B, D)`` as ``(1, B, D)``; anything else raises ValueError."""
    if x.dim() == 3:
        return x
    if x.dim() == 2:
        return x.unsqueeze(0)
    raise ValueError(f"{what} must be (E, B, D) or (B, D), got shape {tuple(x.shape)}")


def unit_fraction(mask: Tensor) -> Tensor:
    """Fraction of units where ``mask`` ``(E, D)`` holds, ``(E,)`` float64."""
    return mask.to(torch.float64).mean(dim=-1)


# --------------------------------------------------------------------------------------------
# Unit-level fractions


def dead_fraction(h: Tensor) -> Tensor:
    """Fraction of units whose output is exactly 0 on every probe input.

    ``dead_m = (1/D) sum_i 1[h_{m,b,i} = 0 for all b]``.

    Args:
        h: Post-activations ``(E, B, D)`` or ``(B, D)``.

    Returns:
        ``(E,)`` float64 in [0, 1].
    """
    h = as_members(h)
    return unit_fraction((h == 0).all(dim=1))


def inactive_fraction(z: Tensor) -> Tensor:
    """Fraction of units whose pre-activation is negative on every probe input.

    ``inactive_m = (1/D) sum_i 1[z_{m,b,i} < 0 for all b]``: the notion of a dead unit for
    activations that are not exactly zero on the negative side (LeakyReLU, PReLU, ELU, ...).

    Args:
        z: Pre-activations ``(E, B, D)`` or ``(B, D)``.

    Returns:
        ``(E,)`` float64 in [0, 1].
    """
    z = as_members(z, "pre-activations")
    return unit_fraction((z < 0).all(dim=1))


def saturated_fraction(h: Tensor, low: float, high: float) -> Tensor:
    """Fraction of units whose output lies outside ``[low, high]`` on every probe input.

    ``sat_m = (1/D) sum_i 1[h_{m,b,i} < low or h_{m,b,i} > high for all b]``. For tanh use
    ``(-0.99, 0.99)`` (``|tanh| > 0.99``), for sigmoid ``(0.01, 0.99)``; see
    :func:`saturation_band`. A unit saturated on some inputs but not on others is not saturated.

    Args:
        h: Post-activations ``(E, B, D)`` or ``(B, D)``.
        low: Lower edge of the non-saturated band (``-inf`` for none).
        high: Upper edge of the non-saturated band (``inf`` for none).

    Returns:
        ``(E,)`` float64 in [0, 1].
    """
    return unit_fraction(_outside_band(h, low, high).all(dim=1))


def _outside_band(h: Tensor, low: float, high: float) -> Tensor:
    """``(E, B, D)`` bool: outputs outside ``[low, high]`` (the band checked)."""
    if not low <= high:
        raise ValueError(f"saturation band needs low <= high, got ({low}, {high})")
    h = as_members(h)
    return (h < low) | (h > high)


def saturated_pair_fraction(h: Tensor, low: float, high: float) -> Tensor:
    """Fraction of (input, unit) pairs whose output lies outside ``[low, high]``.

    ``sat_pairs_m = (1/(B D)) sum_{b,i} 1[h_{m,b,i} < low or h_{m,b,i} > high]``: how much of the
    layer sits in the flat tails, input by input. It shows partial saturation that
    :func:`saturated_fraction` (saturated on *every* input) leaves at 0.

    Args:
        h: Post-activations ``(E, B, D)`` or ``(B, D)``.
        low: Lower edge of the non-saturated band (``-inf`` for none).
        high: Upper edge of the non-saturated band (``inf`` for none).

    Returns:
        ``(E,)`` float64 in [0, 1].
    """
    return _outside_band(h, low, high).to(torch.float64).mean(dim=(1, 2))


def dormant_from_mean_abs(mean_abs: Tensor, tau: float) -> Tensor:
    """:func:`dormant_fraction` from the per-unit means ``E_x |h_i(x)|``, ``(E, D)``."""
    score = mean_abs / (mean_abs.mean(dim=-1, keepdim=True) + DORMANT_EPS)
    return unit_fraction(score <= tau)


def dormant_fraction(h: Tensor, tau: float = 0.025) -> Tensor:
    """Fraction of tau-dormant units (ReDo; Sokar et al. 2023).

    ``s_i = E_x|h_i(x)| / ((1/D) sum_k E_x|h_k(x)| + 1e-9)``; unit i is dormant if
    ``s_i <= tau``. With ``tau = 0`` exactly the dead units count; a layer whose units are all
    dead has every ``s_i = 0`` and is fully dormant.

    Args:
        h: Post-activations ``(E, B, D)`` or ``(B, D)``.
        tau: Threshold (>= 0); 0, 0.025 and 0.1 are the common settings.

    Returns:
        ``(E,)`` float64 in [0, 1].
    """
    if not tau >= 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    h = as_members(h)
    return dormant_from_mean_abs(h.abs().mean(dim=1, dtype=torch.float64), tau)


def sparsity(h: Tensor, eps: float = 0.0) -> Tensor:
    """Fraction of (input, unit) pairs with ``|h| <= eps`` (exactly 0 when ``eps = 0``).

    ``sparsity_m = (1/(B D)) sum_{b,i} 1[|h_{m,b,i}| <= eps]``.

    Args:
        h: Post-activations ``(E, B, D)`` or ``(B, D)``.
        eps: Tolerance (>= 0).

    Returns:
        ``(E,)`` float64 in [0, 1].
    """
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    h = as_members(h)
    return (h.abs() <= eps).to(torch.float64).mean(dim=(1, 2))


# --------------------------------------------------------------------------------------------
# Pre-activation moments


def preactivation_stats(z: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of the pre-activations over inputs and units, per member.

    ``mean_m = (1/(B D)) sum_{b,i} z_{m,b,i}``,
    ``std_m = sqrt((1/(B D)) sum_{b,i} (z_{m,b,i} - mean_m)^2)`` (population std, ddof = 0).

    Args:
        z: Pre-activations ``(E, B, D)`` or ``(B, D)``.

    Returns:
        ``(mean, std)``, each ``(E,)`` float64.
    """
    z = as_members(z, "pre-activations").to(torch.float64)
    mean = z.mean(dim=(1, 2))
    std = (z - mean[:, None, None]).square().mean(dim=(1, 2)).sqrt()
    return mean, std


def moments(z: Tensor) -> tuple[int, Tensor, Tensor]:
    """Count, mean ``(E,)`` and sum of squared deviations ``(E,)`` of ``z`` ``(E, B, D)``,
    the sufficient statistics merged by :func:`merge_moments`."""
    z = z.to(torch.float64)
    mean = z.mean(dim=(1, 2))
    return z.shape[1] * z.shape[2], mean, (z - mean[:, None, None]).square().sum(dim=(1, 2))


def merge_moments(
    a: tuple[int, Tensor, Tensor], b: tuple[int, Tensor, Tensor]
) -> tuple[int, Tensor, Tensor]:
    """Merge two ``(count, mean, M2)`` triples (Chan et al. 1979), without the cancellation of
    ``E[z^2] - E[z]^2`` when the mean is large compared with the spread."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * (n_b / n), m2_a + m2_b + delta.square() * (n_a * n_b / n)


# --------------------------------------------------------------------------------------------
# Ranks


def srank_from_singular_values(sigma: Tensor, delta: float = 0.01) -> Tensor:
    """``srank_delta`` from singular values ``(E, K)`` sorted in descending order.

    ``srank = min{k : sum_{i<=k} sigma_i / sum_j sigma_j >= 1 - delta}``; 0 when every
    ``sigma`` is 0 (a zero feature matrix has rank 0). Returned as float64 ``(E,)``.
    """
    if not 0 <= delta < 1:
        raise ValueError(f"delta must be in [0, 1), got {delta}")
    sigma = sigma.to(torch.float64)
    total = sigma.sum(dim=-1, keepdim=True)
    ratio = sigma.cumsum(dim=-1) / torch.where(total > 0, total, 1.0)
    # k = 1 + (number of prefixes that fall short); capped at K because with delta = 0 the
    # running sum may stop one rounding error short of the total.
    k = ((ratio < 1.0 - delta).sum(dim=-1) + 1).clamp(max=sigma.shape[-1])
    return torch.where(total.squeeze(-1) > 0, k.to(torch.float64), 0.0)


def effective_rank_from_singular_values(sigma: Tensor) -> Tensor:
    """Effective rank (Roy & Vetterli 2007) from singular values ``(E, K)``.

    ``p_k = sigma_k / sum_j sigma_j``, ``erank = exp(-sum_k p_k log p_k)`` with ``0 log 0 = 0``,
    so ``1 <= erank <= rank``. A zero feature matrix gives 0 (its rank), not NaN: a layer whose
    units all died is the case these metrics exist to show, and NaN would drop it from means and
    plots. Returned as float64 ``(E,)``.
    """
    sigma = sigma.to(torch.float64)
    total = sigma.sum(dim=-1, keepdim=True)
    p = sigma / torch.where(total > 0, total, 1.0)
    entropy = -torch.special.xlogy(p, p).sum(dim=-1)
    return torch.where(total.squeeze(-1) > 0, entropy.exp(), 0.0)


def _singular_values(features: Tensor) -> Tensor:
    features = as_members(features, "features")
    return torch.linalg.svdvals(features.to(torch.float64))  # (E, min(N, H)), descending


def srank(features: Tensor, delta: float = 0.01) -> Tensor:
    """``srank_delta`` of the feature matrix (Kumar et al. 2021), per member.

    ``srank = min{k : sum_{i<=k} sigma_i / sum_j sigma_j >= 1 - delta}``, sigma the singular
    values of the ``(N, H)`` feature matrix in descending order, computed in float64. An all-zero
    feature matrix gives 0.

    Args:
        features: ``(E, N, H)`` or ``(N, H)``: N inputs, H units.
        delta: Fraction of the singular-value mass that may be left out, in [0, 1).

    Returns:
        ``(E,)`` float64 holding integers in [0, min(N, H)].
    """
    return srank_from_singular_values(_singular_values(features), delta)


def effective_rank(features: Tensor) -> Tensor:
    """Effective rank of the feature matrix (Roy & Vetterli 2007), per member.

    ``p_k = sigma_k / sum_j sigma_j``, ``erank = exp(-sum_k p_k log p_k)``, ``0 log 0 = 0``;
    sigma the singular values of the ``(N, H)`` feature matrix, computed in float64. An
    all-zero feature matrix gives 0 (see :func:`effective_rank_from_singular_values`).

    Args:
        features: ``(E, N, H)`` or ``(N, H)``.

    Returns:
        ``(E,)`` float64 in {0} or [1, min(N, H)].
    """
    return effective_rank_from_singular_values(_singular_values(features))


def singular_values_from_gram(gram: Tensor, n_rows: int | None = None) -> Tensor:
    """Singular values of F, descending, from its Gram matrix ``F^T F`` ``(E, H, H)``.

    ``sigma_k = sqrt(lambda_k(F^T F))``. Forming ``F^T F`` costs precision: eigenvalues below
    ``lambda_max * max(N, H) * eps_float64`` are rounding noise (the tolerance NumPy's
    ``matrix_rank`` uses) and are set to 0, so singular values below about
    ``sqrt(max(N, H) * 2.2e-16) * sigma_max`` are dropped.

    Args:
        gram: ``(E, H, H)`` symmetric positive semi-definite.
        n_rows: Rows N of F (for the tolerance); defaults to H.
    """
    lam = torch.linalg.eigvalsh(gram.to(torch.float64)).flip(-1)  # descending
    size = max(n_rows or 0, gram.shape[-1])
    tol = lam[..., :1].clamp(min=0) * (size * torch.finfo(torch.float64).eps)
    return torch.where(lam > tol, lam, 0.0).sqrt()


# --------------------------------------------------------------------------------------------
# Gradients


def grad_norm(g: Tensor) -> Tensor:
    """L2 norm of a gradient over every axis but the ensemble axis.

    ``||g_m|| = sqrt(sum_j g_{m,j}^2)``, for weight gradients ``(E, out, in)``, activation
    gradients ``(E, B, D)`` or anything ``(E, ...)``. A single model's gradient needs a leading
    axis: ``grad_norm(w.grad[None])``.

    Returns:
        ``(E,)`` float64.
    """
    if g.dim() < 1:
        raise ValueError("gradient needs a leading ensemble axis, got a 0-d tensor")
    return torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1, dtype=torch.float64)


def mean_abs(g: Tensor) -> Tensor:
    """Mean absolute value over every axis but the ensemble axis, ``(1/n) sum_j |g_{m,j}|``.

    Args:
        g: ``(E, ...)``, e.g. ``(E, out, in)`` or ``(E, B, D)``.

    Returns:
        ``(E,)`` float64.
    """
    if g.dim() < 1:
        raise ValueError("gradient needs a leading ensemble axis, got a 0-d tensor")
    return g.reshape(g.shape[0], -1).abs().mean(dim=1, dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# Which notion applies to which activation


def saturation_band(activation: Activation) -> tuple[float, float] | None:
    """The non-saturated band ``(low, high)`` of an activation, or None if it cannot saturate.

    tanh: ``(-0.99, 0.99)``; sigmoid: ``(0.01, 0.99)`` (REFERENCES.md). Any other activation
    that is ``bounded`` and ``monotonic`` with finite, distinct limits ``at_inf = (lo, hi)``:
    ``(lo + 0.01 (hi - lo), hi - 0.01 (hi - lo))`` (hardtanh, relu6, hardsigmoid,
    penalized tanh, ...). Non-monotonic bounded functions (sine, gaussian) have no asymptote to
    saturate towards and get None, as do activations whose ``at_inf`` is NaN (softsign, whose
    formula gives inf/inf there): pass an explicit band for those.
    """
    if activation.name == "tanh":
        return (-0.99, 0.99)
    if activation.name == "sigmoid":
        return (0.01, 0.99)
    lo, hi = activation.at_inf
    if not (activation.bounded and activation.monotonic):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        return None
    margin = SATURATION_MARGIN * (hi - lo)
    return (lo + margin, hi - margin)


# Points where dead_kind evaluates phi: a grid over [-6, 6] plus points near 0 (so that a narrow
# dead zone such as hardshrink(0.1)'s is seen), never 0 itself.
_GRID = torch.cat(
    [
        torch.linspace(-6.0, 6.0, 49, dtype=torch.float64),
        torch.tensor([-0.1, -0.01, -0.001, 0.001, 0.01, 0.1], dtype=torch.float64),
    ]
)
_GRID = _GRID[_GRID != 0]


@lru_cache(maxsize=256)
def dead_kind(activation: Activation) -> str | None:
    """Which notion of a "dead" unit is meaningful for an activation.

    * ``"dead"`` (use :func:`dead_fraction`, output exactly 0): phi is exactly 0 somewhere other
      than at 0, i.e. it has a flat zero region a unit can get stuck in. Checked on a float64 grid
      over [-6, 6]: relu, relu6, hardsigmoid, hardswish, binary_step, the shrinkage functions.
    * ``"inactive"`` (use :func:`inactive_fraction`, pre-activation < 0): otherwise, phi is
      unbounded above and its average slope on [-6, -2] is less than a third of that on [2, 6],
      i.e. the negative side is the "off" regime of a ReLU-like unit: leaky_relu (slope < 1/3),
      prelu, elu, selu, celu, gelu, silu, mish, softplus.
    * ``None``: neither (tanh, sigmoid, sine, identity, gaussian, softsign, ...); saturation
      (:func:`saturation_band`) is the relevant failure for the bounded ones.

    Learnable parameters are taken at their initial values. The check is of the formula, not of
    a dtype's rounding: in float32 GELU's output is exactly 0 for z below about -5.5 (SiLU's
    below about -100), so :func:`dead_fraction` can count such units in a float32 network
    although GELU's kind is ``"inactive"`` (the unit-states chapter reports both).
    """
    phi = activation(_GRID)
    if bool((phi == 0).any()):
        return "dead"
    if activation.at_inf[1] != math.inf:
        return None
    at = activation(torch.tensor([-6.0, -2.0, 2.0, 6.0], dtype=torch.float64)).tolist()
    slope_neg, slope_pos = abs(at[1] - at[0]) / 4.0, abs(at[3] - at[2]) / 4.0
    return "inactive" if slope_neg < slope_pos / 3.0 else None
