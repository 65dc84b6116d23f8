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

from actlab.activations import Activation, get_activation, list_activations
from actlab.experiments.base import (
    ChunkRunner,
    ExperimentSpec,
    Results,
    check_config,
    register_experiment,
    run_inline,
)
from actlab.report.format import num, pct

__all__ = [
    "Config",
    "presets",
    "run",
    "figures",
    "report",
    "activation_properties",
    "METRICS",
    "SPEC",
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
        # Unknown names raise the registry's error (it lists the valid names, closest first).
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


# --------------------------------------------------------------------------------------------
# The experiment


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Draw and measure every activation of ``cfg``; one chunk per activation, no file I/O."""
    acts = cfg.resolved_activations()
    outputs = []
    for act in acts:
        key = f"act-{act.name}"
        outputs.append(chunks(key, lambda act=act: _activation_chunk(act, cfg)))

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


def figures(results: Results) -> dict[str, Any]:
    """The gallery's figures: ``activations`` (phi and phi', one panel each), ``derivatives``
    (phi' with its flat region shaded), ``classic`` (the four classic activations overlaid) and
    ``saturation`` (P(|phi'| < threshold) per activation and sigma)."""
    from actlab.plotting.gallery import gallery_figures

    return gallery_figures(results)


def report(results: Results) -> str:
    """The gallery's Markdown section (numbers from ``results`` only)."""
    return _report(results)


# --------------------------------------------------------------------------------------------
# Report: Markdown built from the results alone (every number below comes from `summary`)

_CLASSIC = ("sigmoid", "tanh", "relu", "leaky_relu")
_SPOTLIGHT = ("tanh", "sigmoid", "relu", "leaky_relu", "gelu", "silu", "elu")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _sigma_label(sigma: float) -> str:
    return rf"$z \sim \mathcal{{N}}(0, {sigma:g}^2)$"


def _report(results: Results) -> str:
    s = results.summary
    props = {p["name"]: p for p in s["properties"]}
    names = list(s["activations"])
    sigmas = [float(x) for x in s["sigmas"]]
    thr = float(s["flat_threshold"])
    lo, hi = num(s["z_min"]), num(s["z_max"])
    out: list[str] = ["# Activation gallery", ""]
    out += [
        "A neuron computes a weighted sum of its inputs, the *pre-activation* $z$, and passes it "
        r"through an element-wise function $\varphi$. Without $\varphi$ a stack of layers would "
        "collapse into one affine map; with it, the network can bend. During training the "
        r"gradient that reaches a unit is multiplied by $\varphi'(z)$, so the shape of "
        r"$\varphi'$ decides where learning signal flows and where it stops.",
        "",
        f"This section draws {len(names)} activation functions and their derivatives on "
        f"$[{lo}, {hi}]$ and measures their properties numerically: every number below was "
        f"computed by this run ({s['methods']['grid']}), not copied from a table.",
        "",
        "![Every activation (solid) and its derivative (dashed), one panel each]"
        "(figures/activations.png)",
        "",
        r"*Each panel shows $\varphi(z)$ (solid) and $\varphi'(z)$ (dashed) in the activation's "
        "colour, which is the same in every figure of this tutorial. The panels share their "
        "axes; curves that leave the y-range are clipped and marked, and the tables below give "
        "each function's true range.*",
        "",
    ]
    classic = [n for n in _CLASSIC if n in props]
    if classic:
        out += [
            "## The classic four",
            "",
            "![The classic activations and their derivatives overlaid](figures/classic.png)",
            "",
        ]
        bits = [f"{n}'s at most {num(props[n]['max_abs_deriv'])}" for n in classic]
        out += [
            r"The largest slope on the interval is the most a unit can multiply a gradient by "
            f"on its way back: {', '.join(bits)}.",
        ]
        if "sigmoid" in props:
            m = props["sigmoid"]["max_abs_deriv"]
            out += [
                f"A chain of ten sigmoid layers therefore shrinks a gradient by a factor of at "
                f"least {num(1 / m**10)} (before the weights are counted): the vanishing "
                "gradient in one line.",
            ]
        out += [""]

    out += ["## Formulas", ""]
    for n in names:
        p = props[n]
        out += [
            f"**{n}**: {p['reference']}",
            "",
            rf"$$\varphi(x) = {p['latex']}$$",
            "",
            rf"$$\varphi'(x) = {p['latex_deriv']}$$",
            "",
        ]

    out += ["## Properties, measured", ""]
    out += [
        f"Computed on $[{lo}, {hi}]$: the range of $\\varphi$; *bounded* when $|\\varphi|$ "
        "stops growing between $|z| \\le 10^4$ and $|z| \\le 10^8$; *monotonic* when "
        r"$\varphi$ never decreases on the grid; *zero-centred* when $\varphi$ is odd, "
        r"$\varphi(-z) = -\varphi(z)$ (its mean is then 0 for any symmetric input); *smooth* "
        r"when neither $\varphi$ nor $\varphi'$ jumps; the kinks are the points where one of "
        "them does, located by bisection.",
        "",
        "| activation | range | bounded | monotonic | zero-centred | smooth | kinks found |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in names:
        p = props[n]
        bounded = _yes(p["bounded"])
        if not p["bounded_agrees"]:
            bounded += f" (registry says {_yes(p['bounded_flag'])})"
        kinks = ", ".join(num(k) for k in p["kinks"]) or "none"
        out.append(
            f"| {n} | [{num(p['phi_min'])}, {num(p['phi_max'])}] | {bounded} | "
            f"{_yes(p['monotonic'])} | {_yes(p['zero_centred'])} | {_yes(p['smooth'])} | "
            f"{kinks} |"
        )
    out.append("")
    disagree = {n: props[n]["disagreements"] for n in names if props[n]["disagreements"]}
    if disagree:
        items = "; ".join(f"{n}: {', '.join(v)}" for n, v in disagree.items())
        out += [
            f"Where the measurement on $[{lo}, {hi}]$ and the registry's flags (which describe "
            f"the whole real line) disagree: {items}. A property such as a kink outside the "
            "interval cannot be seen on it.",
            "",
        ]
    else:
        out += ["Every measured property agrees with the flag the registry declares.", ""]
    out += [
        r"The slope: $\varphi(0)$, $\varphi'(0)$ (at a kink, the one-sided value that "
        r"autograd uses), the largest and smallest $|\varphi'|$ on the grid, and the *flat* "
        rf"fraction of the interval, where $|\varphi'| < {thr:g}$.",
        "",
        # \lvert, not "|", which a Markdown viewer would read as a column separator.
        r"| activation | $\varphi(0)$ | $\varphi'(0)$ | max $\lvert\varphi'\rvert$ | "
        r"min $\lvert\varphi'\rvert$ | flat fraction |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        p = props[n]
        out.append(
            f"| {n} | {num(p['phi_at_0'])} | {num(p['deriv_at_0'])} | "
            f"{num(p['max_abs_deriv'])} | {num(p['min_abs_deriv'])} | "
            f"{pct(p['flat_fraction'])} |"
        )
    out.append("")
    bad = [n for n in names if props[n]["non_finite"]]
    if bad:
        counts = ", ".join(f"{n} ({props[n]['non_finite']} points)" for n in bad)
        out += [
            f"Non-finite values on the grid (NaN or inf), left out of the numbers above: {counts}.",
            "",
        ]

    method = (
        rf"the Gaussian mass of $\{{z : |\varphi'(z)| < {thr:g}\}}$, whose end points are "
        rf"found on a grid of spacing {s['resolution']:g} over $[-8\sigma, 8\sigma]$ and refined "
        "by bisection, summed exactly with the normal CDF."
    )
    out += _saturation_section(names, props, sigmas, thr, method)
    return "\n".join(out).rstrip() + "\n"


def _saturation_section(
    names: list[str], props: dict[str, dict], sigmas: list[float], thr: float, method: str
) -> list[str]:
    out = ["## Saturation and dying units", ""]
    out += [
        r"Where $|\varphi'(z)|$ is tiny, a unit passes (almost) no gradient back: a *saturated* "
        "tanh or sigmoid unit sits on a plateau, a ReLU unit with a negative input is *off*. "
        r"Which inputs land there depends on the scale of the pre-activation. For "
        r"$z \sim \mathcal{N}(0, \sigma^2)$ the table gives "
        rf"$P(|\varphi'(z)| < {thr:g})$, the share of inputs on which a unit learns nothing. "
        f"Method: {method}",
        "",
        "![Derivatives with their flat regions shaded](figures/derivatives.png)",
        "",
        "![Probability that the derivative is flat, per activation and sigma]"
        "(figures/saturation.png)",
        "",
        "| activation | " + " | ".join(rf"$\sigma = {x:g}$" for x in sigmas) + " |",
        "|---|" + "---|" * len(sigmas),
    ]
    for n in names:
        out.append(f"| {n} | " + " | ".join(num(x) for x in props[n]["p_flat"]) + " |")
    out.append("")

    # The sigma closest to 3 (a wide pre-activation, as after a poor initialisation).
    j = min(range(len(sigmas)), key=lambda i: abs(math.log(sigmas[i] / 3.0)))
    spot = [n for n in _SPOTLIGHT if n in props] or names[:4]
    parts = [f"{n}'s on {pct(props[n]['p_flat'][j])}" for n in spot]
    out += [
        f"For {_sigma_label(sigmas[j])}, the derivative is below {thr:g} on this share of "
        f"inputs: {', '.join(parts)}.",
        "",
    ]

    if len(sigmas) > 1:
        first = {n: props[n]["p_flat"][0] for n in names}
        last = {n: props[n]["p_flat"][-1] for n in names}
        lo_s, hi_s = sigmas[0], sigmas[-1]
        never = [n for n in names if max(props[n]["p_flat"]) == 0.0]
        steady = [
            n
            for n in names
            if n not in never and max(props[n]["p_flat"]) - min(props[n]["p_flat"]) < 1e-9
        ]
        grows = [n for n in names if n not in never + steady and last[n] > first[n]]
        shrinks = [n for n in names if n not in never + steady and last[n] < first[n]]
        if steady:
            out += [
                "**The same at every scale** ("
                + ", ".join(f"{n}: {pct(first[n])}" for n in steady)
                + "). "
                "A flat set that is a half-line from 0 (or the whole line) holds the same share "
                "of a centred Gaussian whatever its width, so rescaling the inputs changes "
                "nothing."
                + (
                    " For ReLU it is the negative side: a unit is off on half of its inputs at "
                    "any scale, and a unit whose input is negative for *every* example is dead: "
                    "no gradient will ever move it again."
                    if "relu" in steady
                    else ""
                ),
                "",
            ]
        if grows:
            out += [
                f"**Saturation grows with the scale** (from $\\sigma = {lo_s:g}$ to "
                f"$\\sigma = {hi_s:g}$): "
                + ", ".join(f"{n} {pct(first[n])} → {pct(last[n])}" for n in grows)
                + ". "
                "Their flat sets lie in the tails, so the wider the pre-activation, the more "
                "inputs fall on a plateau: large weights or inputs saturate tanh and sigmoid, "
                "and dead (saturated) units are not only a ReLU problem.",
                "",
            ]
        if shrinks:
            out += [
                "**Flat near zero, so the share shrinks with the scale**: "
                + ", ".join(f"{n} {pct(first[n])} → {pct(last[n])}" for n in shrinks)
                + ".",
                "",
            ]
        if never:
            out += [f"**Never flat** at any of these scales: {', '.join(never)}."]
            close = [
                n
                for n in never
                if props[n]["min_abs_deriv"] is not None and props[n]["min_abs_deriv"] <= 2 * thr
            ]
            if close:
                out[-1] += (
                    " Of these, "
                    + ", ".join(
                        f"{n} (smallest $|\\varphi'|$ = {num(props[n]['min_abs_deriv'])})"
                        for n in close
                    )
                    + (" stays" if len(close) == 1 else " stay")
                    + f" just at or above the threshold {thr:g}: "
                    "a small but non-zero gradient, which is what keeps a leaky unit alive."
                )
            out.append("")
    return out


SPEC = register_experiment(
    ExperimentSpec(
        name="gallery",
        title="Activation gallery",
        Config=Config,
        presets=presets,
        run=run,
        figures=figures,
        report=report,
        order=10,
    )
)
