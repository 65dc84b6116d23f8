"""Activation gallery: every activation and its derivative, with properties computed numerically.

For each activation ``phi`` the experiment evaluates ``phi`` and ``phi'`` on a grid over
``[z_min, z_max]`` (for the figures) and measures, on a finer grid refined by bisection:

* the range of ``phi`` on the interval, and whether ``phi`` is bounded (probed out to
  ``|z| = 1e8`` and compared with the registry's flag), monotonic, zero-centred (odd) and smooth
  (no jump in ``phi`` or ``phi'``; the jumps found are listed as kinks);
* ``phi(0)``, ``phi'(0)`` (the registry's convention at a kink), ``max |phi'|`` and ``min |phi'|``;
* the *flat region*: the fraction of the interval on which ``|phi'| < flat_threshold``;
* the saturation / dying intuition: for a pre-activation ``z ~ N(0, sigma^2)``, the probability
  ``P(|phi'(z)| < flat_threshold)`` -- the share of inputs that pass (almost) no gradient back.
  It is the Gaussian mass of the flat set: the set is located on a fine grid over
  ``[-8 sigma, 8 sigma]``, each of its end points refined by bisection, and the mass summed
  exactly with the normal CDF (the grid's end states extend to infinity; the mass beyond
  ``8 sigma`` is below ``1.3e-15``).

Metric keys (one row per activation, ``step = 0``; ``gallery/p_flat`` has one row per sigma, in
the ``sigma`` column) are listed in :data:`METRICS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr

from actlab import progress
from actlab.activations import Activation, get_activation, list_activations
from actlab.experiments.base import (
    ChunkRunner,
    Results,
    check_activations,
    check_config,
    run_chunks,
    run_inline,
)

__all__ = [
    "Config",
    "presets",
    "run",
    "activation_properties",
    "identical_on_window",
    "METRICS",
]

METRICS: dict[str, str] = {
    "gallery/phi_min": "min of phi on the grid over [z_min, z_max]",
    "gallery/phi_max": "max of phi on the grid over [z_min, z_max]",
    "gallery/bounded": "1 if |phi| stops growing between |z| <= 1e4 and |z| <= 1e8 (numerical)",
    "gallery/bounded_flag": "1 if the registry declares phi bounded",
    "gallery/monotonic": "1 if phi is non-decreasing on the grid",
    "gallery/zero_centred": "1 if phi(-z) = -phi(z) on the grid (odd: zero mean for symmetric z)",
    "gallery/smooth": "1 if neither phi nor phi' jumps on the grid (C1)",
    "gallery/n_kinks": "number of jumps of phi or phi' found on the grid",
    "gallery/phi_at_0": "phi(0)",
    "gallery/deriv_at_0": "phi'(0), the registry's derivative (its convention at a kink)",
    "gallery/max_abs_deriv": "max |phi'| on the grid",
    "gallery/min_abs_deriv": "min |phi'| on the grid",
    "gallery/flat_fraction": "fraction of [z_min, z_max] where |phi'| < flat_threshold",
    "gallery/p_flat": "P(|phi'(z)| < flat_threshold) for z ~ N(0, sigma^2); sigma in its column",
}

_PROBE_NEAR = 1e4  # |z| up to which the "near" sup of |phi| is taken, for the bounded check
_PROBE_FAR = 1e8
_TAIL_SIGMAS = 8.0  # the quadrature grid covers [-8 sigma, 8 sigma]
_DTYPE = torch.float64


@dataclass(frozen=True)
class Config:
    """Configuration of the activation gallery."""

    activations: tuple[str, ...] = ()
    """Activation names (``"leaky_relu(0.2)"`` allowed); empty means every registered one."""
    z_min: float = -5.0
    """Left end of the interval on which phi and phi' are drawn and measured."""
    z_max: float = 5.0
    """Right end of that interval (> z_min)."""
    n_points: int = 401
    """Points of the plotting grid over [z_min, z_max] (>= 11)."""
    resolution: float = 0.002
    """Spacing of the fine grid on which kinks, flat regions and the probabilities are found
    (then refined by bisection); a flat region narrower than this may be missed (sine's are
    0.02 wide). In (0, (z_max - z_min) / 10]."""
    flat_threshold: float = 0.01
    """|phi'| below this counts as flat: an input that passes (almost) no gradient (> 0)."""
    sigmas: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0)
    """Standard deviations of the pre-activation z ~ N(0, sigma^2) for P(|phi'(z)| < threshold)
    (each > 0, at least one)."""

    def __post_init__(self) -> None:
        # Accept lists (from Python) and a single name, store tuples (hashable, JSON-stable).
        names = (self.activations,) if isinstance(self.activations, str) else self.activations
        object.__setattr__(self, "activations", tuple(str(n) for n in names))
        sigmas = (self.sigmas,) if isinstance(self.sigmas, (int, float)) else self.sigmas
        object.__setattr__(self, "sigmas", tuple(float(s) for s in sigmas))
        check_config(self)
        if not (
            isinstance(self.n_points, int)
            and not isinstance(self.n_points, bool)
            and 11 <= self.n_points <= 1_000_000
        ):
            raise ValueError(f"n_points must be an integer in [11, 1000000], got {self.n_points!r}")
        for key in ("z_min", "z_max", "resolution", "flat_threshold"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{key} must be finite, got {getattr(self, key)}")
        if not self.z_min < self.z_max:
            raise ValueError(f"z_min must be < z_max, got z_min={self.z_min}, z_max={self.z_max}")
        width = self.z_max - self.z_min
        if not 0 < self.resolution <= width / 10:
            raise ValueError(
                f"resolution must be in (0, (z_max - z_min) / 10] = (0, {width / 10:g}]"
                f", got {self.resolution}"
            )
        if width / self.resolution > 10_000_000:
            raise ValueError(
                f"resolution {self.resolution} is too fine for [{self.z_min}, "
                f"{self.z_max}] (more than 1e7 points)"
            )
        if not self.flat_threshold > 0:
            raise ValueError(f"flat_threshold must be > 0, got {self.flat_threshold}")
        if not self.sigmas:
            raise ValueError("sigmas must hold at least one standard deviation > 0")
        for s in self.sigmas:
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"sigmas must be finite and > 0, got {s}")
            if _TAIL_SIGMAS * 2 * s / self.resolution > 10_000_000:
                raise ValueError(
                    f"sigmas: {s} is too large for resolution {self.resolution} "
                    "(more than 1e7 quadrature points)"
                )
        if len(set(self.sigmas)) != len(self.sigmas):
            raise ValueError(f"sigmas must not repeat, got {self.sigmas}")
        check_activations(self, "activations")
        resolved = [get_activation(n).name for n in self.activations]
        if len(set(resolved)) != len(resolved):
            raise ValueError(f"activations must not repeat, got {self.activations}")

    def resolved_activations(self) -> list[Activation]:
        """The activations to draw, in order (every registered one when ``activations`` is
        empty, resolved now so that activations registered by the user are included)."""
        names = self.activations or tuple(list_activations())
        return [get_activation(n) for n in names]


presets: dict[str, Config] = {
    "smoke": Config(
        activations=("identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu"),
        n_points=101,
        resolution=0.01,
        sigmas=(1.0, 3.0),
    ),
    "default": Config(),
    "full": Config(n_points=2001, resolution=0.0005, sigmas=(0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)),
}


# --------------------------------------------------------------------------------------------
# Numerics (pure functions of an Activation; float64 throughout)


def _eval(fn: Any, z: np.ndarray | torch.Tensor) -> np.ndarray:
    x = torch.as_tensor(z, dtype=_DTYPE)
    with torch.no_grad():
        return fn(x).detach().to(_DTYPE).numpy().copy()


def _fine_grid(lo: float, hi: float, spacing: float, include_zero: bool = True) -> np.ndarray:
    n = int(math.ceil((hi - lo) / spacing)) + 1
    z = np.linspace(lo, hi, n)
    if include_zero and lo < 0.0 < hi:
        z = np.union1d(z, [0.0])  # so that phi'(0) and max |phi'| at 0 are seen exactly
    return z


def _bisect(pred: Any, a: np.ndarray, b: np.ndarray, pa: np.ndarray) -> np.ndarray:
    """Refine brackets [a, b] across which the boolean ``pred`` changes (``pa = pred(a)``),
    vectorised over all brackets, until a and b are adjacent floats (at most 100 halvings:
    a crossing at 0 is then found to within 1e-30, so ReLU's mass is exactly 1/2)."""
    if a.size == 0:
        return a
    a, b = a.copy(), b.copy()
    for _ in range(100):
        m = 0.5 * (a + b)
        if np.all((m == a) | (m == b)):
            break
        same = pred(m) == pa
        a = np.where(same, m, a)
        b = np.where(same, b, m)
    return 0.5 * (a + b)


def _flat_intervals(
    act: Activation, lo: float, hi: float, spacing: float, threshold: float, extend: bool
) -> list[tuple[float, float]]:
    """Maximal intervals of [lo, hi] on which |phi'| < threshold, end points refined by
    bisection. With ``extend``, an interval touching lo (hi) is taken to continue to -inf (+inf).
    """

    def flat(z: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.abs(_eval(act.derivative, z)) < threshold  # NaN counts as not flat

    z = _fine_grid(lo, hi, spacing)
    state = flat(z)
    idx = np.nonzero(state[1:] != state[:-1])[0]
    crossings = _bisect(flat, z[idx], z[idx + 1], state[idx])
    intervals: list[tuple[float, float]] = []
    start = (-math.inf if extend else lo) if state[0] else None
    for c, before in zip(crossings.tolist(), state[idx].tolist(), strict=True):
        if before:  # leaving the flat set
            intervals.append((start, c))  # type: ignore[arg-type]
            start = None
        else:
            start = c
    if start is not None:
        intervals.append((start, math.inf if extend else hi))
    return intervals


def _gaussian_mass(intervals: list[tuple[float, float]], sigma: float) -> float:
    """P(z in the union of intervals) for z ~ N(0, sigma^2), accurate in the tails."""
    total = 0.0
    for a, b in intervals:
        a, b = a / sigma, b / sigma
        # Right of 0, use the upper tail so that tiny probabilities keep their digits.
        total += float(ndtr(-a) - ndtr(-b)) if a > 0 else float(ndtr(b) - ndtr(a))
    return min(max(total, 0.0), 1.0)


def _jumps(fn: Any, z: np.ndarray, values: np.ndarray) -> list[float]:
    """Points of [z[0], z[-1]] where ``fn`` jumps: each grid cell is halved ~40 times, keeping
    the half with the larger change; a change that survives at width ~1e-10 is a jump."""
    a, b = z[:-1].copy(), z[1:].copy()
    fa, fb = values[:-1].copy(), values[1:].copy()
    scale = max(1.0, float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0)
    steps = int(math.ceil(math.log2(max(float(np.max(b - a)), 1e-300) / 1e-10)))
    for _ in range(max(steps, 1)):
        m = 0.5 * (a + b)
        fm = _eval(fn, m)
        with np.errstate(invalid="ignore"):
            left = np.abs(fm - fa) >= np.abs(fb - fm)
        a, b = np.where(left, a, m), np.where(left, m, b)
        fa, fb = np.where(left, fa, fm), np.where(left, fm, fb)
    with np.errstate(invalid="ignore"):
        found = 0.5 * (a + b)[np.abs(fb - fa) > 1e-6 * scale]
    merged: list[float] = []
    for x in np.sort(found).tolist():
        if not merged or x - merged[-1] > 1e-6:
            merged.append(x)
    return [round(x, 6) + 0.0 for x in merged]  # + 0.0 turns -0.0 into 0.0


def activation_properties(act: Activation, cfg: Config) -> dict[str, Any]:
    """Every property of one activation, computed numerically on ``cfg``'s grids.

    Returns:
        A dict of JSON-able values: ``name``, formulas and flags from the registry, then the
        computed properties (see the module docstring), ``flat_intervals`` (list of [a, b]),
        ``p_flat`` (one probability per ``cfg.sigmas``) and ``disagreements`` (properties whose
        computed value differs from the registry's flag).
    """
    z = _fine_grid(cfg.z_min, cfg.z_max, cfg.resolution)
    phi = _eval(act, z)
    dphi = _eval(act.derivative, z)
    finite = np.isfinite(phi) & np.isfinite(dphi)
    scale = max(1.0, float(np.max(np.abs(phi[finite])))) if finite.any() else 1.0

    # Bounded: does sup |phi| keep growing from |z| <= 1e4 out to |z| <= 1e8?
    probes = np.logspace(0, math.log10(_PROBE_FAR), 65)
    probes = np.concatenate([-probes, probes, z])
    with np.errstate(invalid="ignore"):
        absval = np.abs(_eval(act, probes))
    near = np.abs(probes) <= _PROBE_NEAR
    sup_near = float(np.nanmax(absval[near])) if np.isfinite(absval[near]).any() else math.nan
    sup_far = float(np.nanmax(absval)) if np.isfinite(absval).any() else math.nan
    bounded = bool(math.isfinite(sup_far) and sup_far <= 1.5 * sup_near + 1e-12)

    with np.errstate(invalid="ignore"):
        odd_gap = np.abs(_eval(act, -z) + phi)
        monotonic = bool(np.all(np.diff(phi) >= -1e-12 * scale))
    zero_centred = bool(np.nanmax(odd_gap) <= 1e-9 * scale) if finite.any() else False
    kinks = sorted(set(_jumps(act, z, phi)) | set(_jumps(act.derivative, z, dphi)))
    smooth = not kinks

    zero = torch.zeros((), dtype=_DTYPE)
    width = cfg.z_max - cfg.z_min
    interval_flat = _flat_intervals(
        act, cfg.z_min, cfg.z_max, cfg.resolution, cfg.flat_threshold, extend=False
    )
    p_flat = []
    for sigma in cfg.sigmas:
        spread = _TAIL_SIGMAS * sigma
        tails = _flat_intervals(
            act, -spread, spread, cfg.resolution, cfg.flat_threshold, extend=True
        )
        p_flat.append(_gaussian_mass(tails, sigma))

    flags = {
        k: bool(getattr(act, k))
        for k in (
            "bounded",
            "monotonic",
            "zero_centred",
            "smooth",
            "piecewise_linear",
            "self_gated",
        )
    }
    computed = {
        "bounded": bounded,
        "monotonic": monotonic,
        "zero_centred": zero_centred,
        "smooth": smooth,
    }
    abs_d = np.abs(dphi[np.isfinite(dphi)])
    return {
        "name": act.name,
        "latex": act.latex,
        "latex_deriv": act.latex_deriv,
        "reference": act.reference,
        "flags": flags,
        "kinks_registry": [float(k) for k in act.kinks],
        "phi_min": float(np.nanmin(phi)) if finite.any() else None,
        "phi_max": float(np.nanmax(phi)) if finite.any() else None,
        **computed,
        "bounded_flag": flags["bounded"],
        "bounded_agrees": bounded == flags["bounded"],
        "disagreements": [k for k, v in computed.items() if v != flags[k]],
        "kinks": kinks,
        "phi_at_0": float(act(zero)),
        "deriv_at_0": float(act.derivative(zero)),
        "max_abs_deriv": float(abs_d.max()) if abs_d.size else None,
        "min_abs_deriv": float(abs_d.min()) if abs_d.size else None,
        "flat_fraction": sum(b - a for a, b in interval_flat) / width,
        "flat_intervals": [[a, b] for a, b in interval_flat],
        "p_flat": p_flat,
        "non_finite": int((~finite).sum()),
    }


def _activation_chunk(act: Activation, cfg: Config) -> dict[str, Any]:
    z = np.linspace(cfg.z_min, cfg.z_max, cfg.n_points)
    curves = np.stack([_eval(act, z), _eval(act.derivative, z)])  # (quantity=2, z)
    return {"curves": curves, "properties": activation_properties(act, cfg)}


def identical_on_window(
    curves: np.ndarray, names: list[str], tol: float = 1e-9
) -> list[tuple[str, str]]:
    """Pairs ``(earlier, later)`` of activations whose ``phi`` and ``phi'`` agree to ``tol``
    (relative to ``max(1, |phi|)``) at every point of the plotting grid: their panels look the
    same, so a reader must be told (e.g. celu with alpha = 1 is elu; relu6 is relu below 6).

    Args:
        curves: ``(activation, quantity, z)``, as in the ``curves`` array.
        names: The activations' names, in the order of ``curves``.
    """
    pairs = []
    for j in range(len(names)):
        for i in range(j):
            a, b = curves[i], curves[j]
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                continue
            scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
            if np.all(np.abs(a - b) <= tol * scale):
                pairs.append((names[i], names[j]))
                break  # pair a later activation with its first twin only
    return pairs


# --------------------------------------------------------------------------------------------
# The experiment


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Draw and measure every activation of ``cfg``; one chunk per activation, no file I/O.
    The chunks are independent and handed over together (in parallel with ``--backend ray``)."""
    acts = cfg.resolved_activations()
    progress.expect(len(acts), unit="activation")
    items = [(f"act-{act.name}", lambda act=act: _activation_chunk(act, cfg), 1) for act in acts]
    outputs = run_chunks(chunks, items)

    names = [a.name for a in acts]
    props = [o["properties"] for o in outputs]
    rows: list[dict[str, Any]] = []
    for member, p in enumerate(props):
        scalars = {
            "phi_min": p["phi_min"],
            "phi_max": p["phi_max"],
            "bounded": p["bounded"],
            "bounded_flag": p["bounded_flag"],
            "monotonic": p["monotonic"],
            "zero_centred": p["zero_centred"],
            "smooth": p["smooth"],
            "n_kinks": len(p["kinks"]),
            "phi_at_0": p["phi_at_0"],
            "deriv_at_0": p["deriv_at_0"],
            "max_abs_deriv": p["max_abs_deriv"],
            "min_abs_deriv": p["min_abs_deriv"],
            "flat_fraction": p["flat_fraction"],
        }
        for key, value in scalars.items():
            rows.append(
                {
                    "member": member,
                    "step": 0,
                    "metric": f"gallery/{key}",
                    "value": math.nan if value is None else float(value),
                    "activation": p["name"],
                    "sigma": math.nan,
                }
            )
        for sigma, prob in zip(cfg.sigmas, p["p_flat"], strict=True):
            rows.append(
                {
                    "member": member,
                    "step": 0,
                    "metric": "gallery/p_flat",
                    "value": prob,
                    "activation": p["name"],
                    "sigma": sigma,
                }
            )
    metrics = pd.DataFrame(
        rows, columns=["member", "step", "metric", "value", "activation", "sigma"]
    )
    metrics = metrics.astype(
        {"member": "int64", "step": "int64", "value": "float64", "sigma": "float64"}
    )

    z = np.linspace(cfg.z_min, cfg.z_max, cfg.n_points)
    arrays = {
        "curves": np.stack([o["curves"] for o in outputs]),  # (activation, quantity, z)
        "p_flat": np.array([p["p_flat"] for p in props], dtype=np.float64),  # (activation, sigma)
    }
    axes = {"curves": ("activation", "quantity", "z"), "p_flat": ("activation", "sigma")}
    coords = {
        "curves/activation": names,
        "curves/quantity": ["phi", "dphi"],
        "curves/z": z.tolist(),
        "p_flat/activation": names,
        "p_flat/sigma": list(cfg.sigmas),
    }
    summary = {
        "activations": names,
        "z_min": cfg.z_min,
        "z_max": cfg.z_max,
        "resolution": cfg.resolution,
        "flat_threshold": cfg.flat_threshold,
        "sigmas": list(cfg.sigmas),
        "methods": {
            "p_flat": "Gaussian mass of {z : |phi'(z)| < threshold}: the set is located on a grid "
            f"of spacing {cfg.resolution:g} over [-8 sigma, 8 sigma], its end points "
            "refined by bisection to ~1e-12, and the mass summed exactly with the "
            "normal CDF (the grid's end states extend to infinity).",
            "bounded": "sup |phi| over |z| <= 1e8 is at most 1.5 times sup |phi| over |z| <= 1e4",
            "kinks": "jumps of phi or phi' that survive bisecting each grid cell to ~1e-10",
            "grid": f"properties on [{cfg.z_min:g}, {cfg.z_max:g}] with spacing "
            f"{cfg.resolution:g} and z = 0; figures on {cfg.n_points} points",
        },
        "properties": props,
    }
    return Results(metrics=metrics, arrays=arrays, axes=axes, coords=coords, summary=summary)
