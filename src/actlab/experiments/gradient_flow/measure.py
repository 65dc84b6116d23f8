"""What the gradient-flow chapter measures and predicts, layer by layer, at initialisation.

The loss is a fixed random readout: ``L = sum_b r . f(x_b)`` for one random vector ``r`` of
unit mean square (the same for every example ``b``), so the backward signal at the (linear)
output layer is ``r`` for every example and ``delta_l = dL_b/dz_l`` is each example's own
backward signal. Three quantities per layer ``l`` (hidden layers ``1..D``; weight layers
``1..D+1``, ``D+1`` the output layer), each per member of the ensemble:

1. the per-example backward signal: ``s_l = sqrt(mean_b mean_i delta_l[b, i]^2)`` (RMS over
   units, then over examples);
2. the per-example weight-gradient norm: ``sqrt(mean_b ||delta_l[b]||^2 ||h_{l-1}[b]||^2)``
   (the gradient of one example's loss with respect to ``W_l`` is ``delta_l[b] h_{l-1}[b]^T``,
   whose Frobenius norm is the product of the two norms);
3. the full-batch weight-gradient norm: ``||(1/n) sum_b delta_l[b] h_{l-1}[b]^T||_F``, computed
   from the examples' Gram matrices: its square is
   ``(1/n^2) sum_{a,b} (delta_a . delta_b)(h_a . h_b)``.

All are stored as natural logs. The backward pass renormalises ``delta`` to unit RMS at every
layer and carries the log of the scale, so that a signal of ``1e-60`` is measured in float32
without underflow (the backward pass is linear in ``delta``).

Predictions (mean field, :mod:`actlab.theory`): ``q^l`` from the length map starting at the
first layer's ``q^1 = sigma_w^2 (layer 1) * mean(x^2) + sigma_b^2 (layer 1)``; the mean square
of ``delta`` gains ``chi_1(q^l) = sigma_w^2 E[phi'(sqrt(q^l) u)^2]`` per layer towards the input
(``sigma_w^2`` of the layer above); the per-example weight gradient is ``||delta_l|| ||h_{l-1}||``
with ``||h_{l-1}||^2 = N E[phi(sqrt(q^{l-1}) u)^2]``. The full batch has no prediction here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from actlab import theory
from actlab.models import EnsembleMLP
from actlab.stats import mean_ci

__all__ = [
    "QUANTITIES",
    "nan_for_none",
    "VERDICTS",
    "backward_profile",
    "activation_derivative",
    "slopes",
    "backward_slopes",
    "slope_stat",
    "theory_verdict",
    "layer_variances",
    "predicted_profile",
    "phase_verdict",
    "agreement",
    "tolerance",
    "finite_width_bound",
    "within_range",
    "length_map_slope",
]

QUANTITIES = ("delta", "weight_per_example", "weight_full_batch")
"""The three measured quantities, in the order the figures and tables show them."""
VERDICTS = ("vanishing", "stable", "exploding", "undecided")


def activation_derivative(model: EnsembleMLP, z: Tensor, layer: int) -> Tensor:
    """``phi_m'(z)`` for every member m of ``model`` at hidden layer ``layer`` (0-based);
    ``z`` ``(E, n, N)``."""
    params = model.act_params(layer)
    pieces = []
    for run in model.runs:
        theta = [
            params[run.start : run.stop, k, None, None] for k in range(len(run.activation.params))
        ]
        pieces.append(run.activation.deriv(z[run.start : run.stop], *theta))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


@torch.no_grad()
def backward_profile(model: EnsembleMLP, x: Tensor, readout: Tensor) -> dict[str, np.ndarray]:
    """Per-layer logs of the three quantities and the forward ``q^l``, for every member.

    Args:
        model: The ensemble at the parameters to measure.
        x: Inputs ``(n, in)`` shared by every member.
        readout: The output's backward signal ``(E, out)`` (the same for every example).

    Returns:
        ``{"delta": (E, D), "weight_per_example": (E, D+1), "weight_full_batch": (E, D+1),
        "q": (E, D)}``, float64; logs are natural; ``-inf`` where a signal is exactly 0 (every
        unit of a layer off for every example). ``q`` is the mean over examples and units of
        ``z_l^2`` (not a log).
    """
    E, D = model.E, model.n_hidden
    n = x.shape[0]
    h = model._input(x)
    hs, zs = [h], []
    for layer in range(model.n_layers):
        z = torch.baddbmm(model.bias(layer).unsqueeze(1), h, model.weight(layer).transpose(1, 2))
        zs.append(z)
        if layer < D:
            h = model.activate(z, layer)
            hs.append(h)
    q = torch.stack([z.double().square().mean(dim=(1, 2)) for z in zs[:D]], dim=1)

    f64 = {"dtype": torch.float64, "device": model.flat.device}
    delta, per_ex, full = (
        torch.empty(E, D, **f64),
        torch.empty(E, D + 1, **f64),
        torch.empty(E, D + 1, **f64),
    )
    d = readout.to(x).unsqueeze(1).expand(E, n, readout.shape[1])  # (E, n, out)
    log_scale = torch.zeros(E, **f64)
    for layer in reversed(range(model.n_layers)):  # weight layer `layer` is layer + 1 in 1..D+1
        h_prev = hs[layer]
        dd, hh = d.double(), h_prev.double()
        d_sq, h_sq = dd.square().sum(-1), hh.square().sum(-1)  # (E, n)
        per_ex[:, layer] = 0.5 * torch.log((d_sq * h_sq).mean(1)) + log_scale
        gram = (dd @ dd.transpose(1, 2)) * (hh @ hh.transpose(1, 2))  # (E, n, n)
        full[:, layer] = 0.5 * torch.log(gram.sum(dim=(1, 2)).clamp_min(0)) - math.log(n)
        full[:, layer] += log_scale
        if layer == 0:
            break
        d = torch.bmm(d, model.weight(layer)) * activation_derivative(
            model, zs[layer - 1], layer - 1
        )
        rms = d.double().square().mean(dim=(1, 2)).sqrt()  # (E,)
        delta[:, layer - 1] = torch.log(rms) + log_scale
        ok = rms > 0
        log_scale = log_scale + torch.where(ok, torch.log(rms), torch.zeros_like(rms))
        d = d / torch.where(ok, rms, torch.ones_like(rms)).to(d.dtype)[:, None, None]
    return {
        "delta": delta.cpu().numpy(),
        "weight_per_example": per_ex.cpu().numpy(),
        "weight_full_batch": full.cpu().numpy(),
        "q": q.cpu().numpy(),
    }


def nan_for_none(value: Any) -> Any:
    """The summary as the run made it: a run folder stores NaN and infinities as JSON null."""
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: nan_for_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_for_none(v) for v in value]
    return value


def slopes(logs: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``logs`` ``(..., L)`` against ``layers`` ``(L,)``, per row: the
    change of the log per layer (``np.polyfit(layers, row, 1)[0]``); NaN where a row has a
    non-finite value."""
    x = np.asarray(layers, np.float64)
    xc = x - x.mean()
    y = np.asarray(logs, np.float64)
    with np.errstate(invalid="ignore"):
        out = ((y - y.mean(axis=-1, keepdims=True)) * xc).sum(-1) / (xc**2).sum()
    return np.where(np.isfinite(y).all(axis=-1), out, np.nan)


def layer_variances(init: str, sizes: tuple[int, ...]) -> list[tuple[float, float]]:
    """``(sigma_w^2, sigma_b^2)`` of every affine layer of an MLP with layer widths ``sizes``
    (``theory.init_variances`` with each layer's own fan-in and fan-out)."""
    return [theory.init_variances(init, a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]


def predicted_profile(
    activation: str, variances: list[tuple[float, float]], sizes: tuple[int, ...], x_ms: float
) -> dict[str, np.ndarray]:
    """The mean-field prediction of :func:`backward_profile`'s logs (natural) and ``q^l``.

    Args:
        activation: Registry name.
        variances: ``(sigma_w^2, sigma_b^2)`` per affine layer (``D + 1`` of them).
        sizes: Layer widths ``(in, N, ..., N, out)``.
        x_ms: Mean square of the inputs' entries (``mean(x^2)``).

    Returns:
        ``{"delta": (D,), "weight_per_example": (D+1,), "q": (D,)}``: ``delta`` anchored at the
        readout (unit mean square over the outputs): the last hidden layer's mean square is
        ``sigma_w^2(out) * out/N * E[phi'^2(q^D)]``, and each layer below multiplies it by
        ``chi_1(q^l)`` of its own ``q^l``.
    """
    D = len(sizes) - 2
    sw1, sb1 = variances[0]
    q1 = sw1 * x_ms + sb1
    qs = np.empty(D)
    qs[0] = q1
    for layer in range(1, D):
        sw, sb = variances[layer]
        qs[layer] = float(theory.length_map(activation, qs[layer - 1], sw, sb))
    dphi2 = np.array([float(theory.chi1(activation, 1.0, 0.0, q=q)) for q in qs])  # E[phi'^2]
    phi2 = np.array([float(theory.length_map(activation, q, 1.0, 0.0)) for q in qs])  # E[phi^2]
    ms = np.empty(D)
    sw_out = variances[D][0]
    ms[D - 1] = sw_out * sizes[-1] / sizes[-2] * dphi2[D - 1]
    for layer in range(D - 2, -1, -1):  # hidden layer layer+1 gets W_{layer+2}
        ms[layer] = ms[layer + 1] * variances[layer + 1][0] * dphi2[layer]
    log_delta = 0.5 * np.log(ms)
    # per-example weight gradient of weight layer l (1..D+1): ||delta_l|| ||h_{l-1}||
    log_d_norm = np.concatenate(
        [log_delta + 0.5 * np.log(sizes[1:-1]), [0.5 * math.log(sizes[-1])]]
    )
    log_h_norm = np.concatenate(
        [[0.5 * math.log(sizes[0] * x_ms)], 0.5 * np.log(phi2 * sizes[1:-1])]
    )
    return {"delta": log_delta, "weight_per_example": log_d_norm + log_h_norm, "q": qs}


def tolerance(depth: int, factor: float = 10.0) -> float:
    """The per-layer slope that changes the gradient by ``factor`` over ``depth - 1`` layers: a
    slope within ``+-tolerance`` is 'stable' for a network that deep."""
    return math.log(factor) / max(depth - 1, 1)


def phase_verdict(stat: dict[str, float], tol: float) -> str:
    """The verdict of a fitted backward slope (the change of ``log delta`` per layer towards the
    input, :func:`backward_slopes`) with its 95% interval: ``vanishing`` (whole interval below
    ``-tol``), ``exploding`` (whole interval above ``+tol``), ``stable`` (whole interval within
    ``+-tol``), ``undecided`` otherwise."""
    lo, hi = stat["lo"], stat["hi"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    if hi < -tol:
        return "vanishing"
    if lo > tol:
        return "exploding"
    if -tol <= lo and hi <= tol:
        return "stable"
    return "undecided"


def theory_verdict(slope: float, tol: float) -> str:
    """The verdict of a predicted slope (same convention and tolerance as
    :func:`phase_verdict`)."""
    return phase_verdict({"lo": slope, "hi": slope}, tol)


def agreement(
    stat: dict[str, float], predicted: float, tol: float = 0.1, floor: float = 0.01
) -> dict[str, float | str]:
    """How a measured slope (mean with 95% interval) compares with a predicted one.

    The band of agreement is ``predicted +- (tol |predicted| + floor)``: relative (``tol``) for
    large slopes, at least ``floor`` per layer near 0, where a ratio means nothing. ``verdict``
    is ``agrees`` when the whole interval lies in the band, ``differs`` when it lies wholly
    outside, ``unresolved`` otherwise. ``ratio`` (with ``ratio_lo``, ``ratio_hi``) = measured
    / predicted (NaN for a prediction within ``floor`` of 0); ``off`` = measured mean minus
    predicted."""
    band = tol * abs(predicted) + floor
    lo, hi = stat["lo"], stat["hi"]
    if not (np.isfinite(predicted) and np.isfinite(lo) and np.isfinite(hi)):
        verdict = "unresolved"
    elif predicted - band <= lo and hi <= predicted + band:
        verdict = "agrees"
    elif hi < predicted - band or lo > predicted + band:
        verdict = "differs"
    else:
        verdict = "unresolved"
    if np.isfinite(predicted) and abs(predicted) > floor:
        a, b = lo / predicted, hi / predicted
        ratio, r_lo, r_hi = stat["mean"] / predicted, min(a, b), max(a, b)
    else:
        ratio = r_lo = r_hi = math.nan
    return {
        "ratio": ratio,
        "ratio_lo": r_lo,
        "ratio_hi": r_hi,
        "off": stat["mean"] - predicted,
        "verdict": verdict,
    }


def backward_slopes(logs: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """The change of ``logs`` per layer *towards the input* (the direction the backward signal
    travels): :func:`slopes` against ``-layers``. Mean field predicts ``1/2 log chi_1`` for the
    backward signal."""
    return slopes(logs, -np.asarray(layers, np.float64))


def slope_stat(logs: np.ndarray, layers: np.ndarray) -> dict[str, float]:
    """:func:`backward_slopes` of every member's row, as a mean with its 95% interval over
    members."""
    return mean_ci(backward_slopes(logs, layers))


def finite_width_bound(width: int, variance_times_width: float = 5.0) -> float:
    """The finite-width drift of one example's log backward-signal norm per layer towards the
    input at the edge of chaos, ``-variance_times_width / (4 N)``.

    Each layer multiplies the squared norm by a random factor with mean 1 and variance
    ``v / N`` (``v = 5`` for ReLU under He initialisation); ``E[log factor] = -v/(2N) + O(N^-2)``
    (second-order Taylor expansion of the log at 1), and the norm is the square root. Averaging
    the squared signal over several examples before the log can only shrink the variance (the
    variance of a weighted mean is at most the largest variance), so the chapter's signal drifts
    by a slope between this bound and 0."""
    return -variance_times_width / (4.0 * width)


def within_range(stat: dict[str, float], low: float, high: float) -> str:
    """Where a measured interval lies against the range ``[low, high]``: ``inside`` (the whole
    interval), ``overlaps`` (part of it), ``outside`` (none of it); ``unresolved`` for a
    non-finite interval."""
    lo, hi = stat["lo"], stat["hi"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "unresolved"
    if low <= lo and hi <= high:
        return "inside"
    if hi < low or lo > high:
        return "outside"
    return "overlaps"


def length_map_slope(activation: str, q: float, sigma_w2: float, sigma_b2: float) -> float:
    """``dq^{l+1}/dq^l`` of the length map at ``q`` (central difference, relative step 1e-4):
    below 1 the map pulls a perturbed ``q`` back towards its path; near 1 it does not."""
    if not (math.isfinite(q) and q > 0):
        return math.nan
    e = 1e-4 * q
    up = float(theory.length_map(activation, q + e, sigma_w2, sigma_b2))
    down = float(theory.length_map(activation, q - e, sigma_w2, sigma_b2))
    return (up - down) / (2.0 * e)
