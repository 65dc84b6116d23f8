"""The gradient-flow experiment: do gradients vanish or explode, layer by layer, at
initialisation and during training, and does mean-field theory predict by how much?

Three parts, each a set of chunks:

* **shapes**: for every (depth D, width N, initialisation) an ensemble of every (activation,
  seed); members with the same seed start from the same weights whatever their activation. At
  initialisation, :func:`measure.backward_profile` measures per layer the per-example backward
  signal, the per-example and the full-batch weight-gradient norm and ``q^l``, under a fixed random
  readout (the loss ``L = sum_b r . f(x_b)``, the same unit-mean-square ``r`` for every example
  of a seed); :func:`measure.predicted_profile` gives the mean-field prediction of each.
* **phase**: tanh on a (sigma_w^2, sigma_b^2) grid through its edge of chaos, one ensemble
  (``init="mean_field"`` with unit variances, each member's weights and biases rescaled to its
  cell: members with the same seed share their underlying normal draws);
* **training**: depth ``train_depth``, every activation from the same initial weights, full-batch
  Adam on a single-index teacher ``y = sin(2 a . x)`` (``a`` a random unit vector); the full-batch
  weight-gradient norm of every layer at every step.

Layers are numbered 1 (nearest the input) to D (hidden) and D+1 (the output layer) everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from actlab import progress, theory
from actlab.experiments.base import (
    ChunkRunner,
    Results,
    check_activations,
    check_config,
    check_ints,
    run_inline,
)
from actlab.experiments.gradient_flow import measure as M
from actlab.models import PLAIN_INITS, EnsembleMLP
from actlab.seeding import derive_seed
from actlab.stats import mean_ci, paired_differs, proportion_ci, welch_differs
from actlab.train import Callback, TrainConfig, train

__all__ = ["Config", "presets", "run", "HEADLINE_ACTIVATIONS", "HEADLINE_INIT", "MAX_FLOATS"]

HEADLINE_ACTIVATIONS = ("tanh", "relu")
"""The activations of the headline number (if the run has them)."""
HEADLINE_INIT = "torch"
"""The headline's initialisation (PyTorch's default: chi_1 = 1/6 for ReLU, about 1/3 for tanh)."""
MAX_FLOATS = 2**27
"""Parameters (float32) one ensemble may hold; larger shapes are split by activation."""
AGREE = 0.1
"""'Agrees' means the whole 95% interval of the measured slope lies within AGREE (relative) of
the predicted one, plus :data:`FLOOR`."""
FLOOR = 0.01
"""Absolute slack of 'agrees' per layer (a factor of 1.6 over 50 layers): a ratio to a
predicted slope near 0 means nothing."""
CONSTANT = 0.01
"""A trained member whose final loss is within this fraction of the variance of the targets (the
loss of the best constant prediction) has learned nothing but the mean."""
STABLE_FACTOR = 10.0
"""A slope is 'stable' if it changes the gradient by less than this factor over the network's
depth (:func:`measure.tolerance`)."""
RELU_FACTOR_VARIANCE = 5.0
"""Width times the variance of the factor by which one example's squared backward signal changes
per layer in a ReLU network under He initialisation: each of the N units passes with probability
1/2 and carries a squared Gaussian times 2/N, so the factor's variance is
``(4/N) (E[g^4]/2 - 1/4) = (4/N)(3/2 - 1/4) = 5/N``. Its log then loses about ``5/(2N)`` per
layer, and the log of the norm ``5/(4N)`` (:func:`measure.finite_width_bound`)."""


@dataclass(frozen=True)
class Config:
    """Settings of the gradient-flow experiment."""

    activations: tuple[str, ...] = (
        "identity",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "gelu",
        "selu",
        "silu",
    )
    """Activations compared (any registry name)."""
    inits: tuple[str, ...] = ("torch", "xavier", "he")
    """Initialisations measured at every shape (torch, xavier, he)."""
    depths: tuple[int, ...] = (5, 10, 20, 50)
    """Numbers of hidden layers D measured at initialisation (each >= 3)."""
    widths: tuple[int, ...] = (64, 256)
    """Widths N measured at initialisation."""
    seeds: int = 10
    """Initialisations (seeds) per activation, shape and scheme (>= 2 for an interval)."""
    n_examples: int = 32
    """Random inputs x ~ N(0, I) the gradients are measured on (>= 2)."""
    n_in: int = 32
    """Input dimension (the first layer's fan-in)."""
    n_out: int = 10
    """Output dimension (the readout's length)."""
    phase_sigma_w2: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    """sigma_w^2 values of tanh's phase diagram (each > 0)."""
    phase_sigma_b2: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.4)
    """sigma_b^2 values of tanh's phase diagram (each >= 0)."""
    phase_depth: int = 20
    """Hidden layers of the phase-diagram networks (>= 3)."""
    phase_width: int = 128
    """Width of the phase-diagram networks."""
    phase_seeds: int = 6
    """Initialisations per phase-diagram cell (>= 2)."""
    train_depth: int = 20
    """Hidden layers of the trained networks (>= 3)."""
    train_width: int = 64
    """Width of the trained networks."""
    train_steps: int = 200
    """Full-batch Adam steps."""
    train_seeds: int = 3
    """Initialisations per activation in training (>= 2)."""
    train_lr: float = 1e-3
    """Adam's learning rate (> 0)."""
    n_train: int = 128
    """Training points of the teacher task (>= 2)."""
    seed: int = 0
    """Base seed of the inputs, readouts, teacher and initial weights."""
    device: str = "cpu"
    """Where the ensembles and their inputs live (cpu, cuda, cuda:N); the results are the same
    to float rounding."""

    def __post_init__(self) -> None:
        check_config(self)
        for key in ("activations", "inits", "depths", "widths", "phase_sigma_w2", "phase_sigma_b2"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        check_activations(self, "activations")
        if not self.activations:
            raise ValueError("activations must name at least one activation")
        if not self.inits:
            raise ValueError("inits must name at least one initialisation")
        for init in self.inits:
            if init not in PLAIN_INITS:
                raise ValueError(f"inits must be among {', '.join(PLAIN_INITS)}, got {init!r}")
        check_ints(
            self,
            {
                "seeds": 2,
                "n_examples": 2,
                "n_in": 1,
                "n_out": 1,
                "phase_depth": 3,
                "phase_width": 1,
                "phase_seeds": 2,
                "train_depth": 3,
                "train_width": 1,
                "train_steps": 1,
                "train_seeds": 2,
                "n_train": 2,
                "seed": 0,
            },
        )
        for key, low in (("depths", 3), ("widths", 1)):
            values = getattr(self, key)
            if not values or any(
                isinstance(v, bool) or not isinstance(v, int) or v < low for v in values
            ):
                raise ValueError(f"{key} must list integers >= {low}, got {values!r}")
        for key, positive in (("phase_sigma_w2", True), ("phase_sigma_b2", False)):
            values = getattr(self, key)
            bad = [v for v in values if not (math.isfinite(v) and (v > 0 if positive else v >= 0))]
            if not values or bad:
                sign = "> 0" if positive else ">= 0"
                raise ValueError(f"{key} must list finite values {sign}, got {values!r}")
        if not (math.isfinite(self.train_lr) and self.train_lr > 0):
            raise ValueError(f"train_lr must be finite and > 0, got {self.train_lr!r}")


def make_inputs(cfg: Config) -> dict[str, torch.Tensor]:
    """Probe inputs ``(n_examples, n_in)``, one readout per seed ``(seeds, n_out)`` (unit mean
    square), the teacher's training set."""
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "gradient-flow", "inputs"))
    x = torch.randn(cfg.n_examples, cfg.n_in, generator=gen)
    n_read = max(cfg.seeds, cfg.phase_seeds)
    r = torch.randn(n_read, cfg.n_out, generator=gen)
    r = r / r.square().mean(dim=1, keepdim=True).sqrt()
    x_train = torch.randn(cfg.n_train, cfg.n_in, generator=gen)
    a = torch.randn(cfg.n_in, generator=gen)
    a = a / a.norm()
    y_train = torch.sin(2.0 * x_train @ a)[:, None]
    return {"x": x, "readout": r, "x_train": x_train, "y_train": y_train}


def init_seed(cfg: Config, s: int) -> int:
    """The weight seed of initialisation ``s`` (shared by every activation and cell)."""
    return derive_seed(cfg.seed, "gradient-flow", "weights", s)


def shapes(cfg: Config) -> list[tuple[int, int]]:
    """Every (depth, width) measured at initialisation."""
    return [(d, w) for d in cfg.depths for w in cfg.widths]


def _per_member(cfg: Config, depth: int, width: int) -> int:
    """Parameters of one member of depth ``depth`` and width ``width``."""
    return cfg.n_in * width + (depth - 1) * width * width + width * cfg.n_out + depth * width


def activation_groups(cfg: Config, depth: int, width: int) -> list[tuple[str, ...]]:
    """The activations split into consecutive groups whose ensembles hold at most
    :data:`MAX_FLOATS` parameters each."""
    k = max(1, MAX_FLOATS // (_per_member(cfg, depth, width) * cfg.seeds))
    acts = list(cfg.activations)
    return [tuple(acts[i : i + k]) for i in range(0, len(acts), k)]


def phase_cells(cfg: Config) -> list[tuple[float, float]]:
    """Every (sigma_w^2, sigma_b^2) of the phase diagram, sigma_w^2 outermost."""
    return [(sw, sb) for sw in cfg.phase_sigma_w2 for sb in cfg.phase_sigma_b2]


def phase_groups(cfg: Config) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive cells whose ensembles hold at most :data:`MAX_FLOATS`
    parameters each."""
    per = _per_member(cfg, cfg.phase_depth, cfg.phase_width) * cfg.phase_seeds
    k = max(1, MAX_FLOATS // per)
    n = len(phase_cells(cfg))
    return [(i, min(i + k, n)) for i in range(0, n, k)]


def _shape_chunk(cfg, data, depth, width, init, acts) -> dict[str, np.ndarray]:
    """Every (activation in ``acts``, seed) at one shape and scheme, in one ensemble."""
    seeds = [init_seed(cfg, s) for s in range(cfg.seeds)]
    model = EnsembleMLP(
        cfg.n_in,
        [width] * depth,
        cfg.n_out,
        [a for a in acts for _ in seeds],
        [s for _ in acts for s in seeds],
        init=init,
        device=cfg.device,
    )
    readout = data["readout"][: cfg.seeds].repeat(len(acts), 1).to(cfg.device)
    prof = M.backward_profile(model, data["x"].to(cfg.device), readout)
    return {k: v.reshape(len(acts), cfg.seeds, -1) for k, v in prof.items()}


def _phase_chunk(
    cfg: Config, data: dict[str, torch.Tensor], start: int, stop: int
) -> dict[str, np.ndarray]:
    """tanh at the cells ``start:stop`` of :func:`phase_cells`, every seed: unit-variance
    normal draws rescaled to each cell's variances; arrays ``(cell, seed, layer)``."""
    cells = phase_cells(cfg)[start:stop]
    seeds = [init_seed(cfg, s) for s in range(cfg.phase_seeds)]
    model = EnsembleMLP(
        cfg.n_in,
        [cfg.phase_width] * cfg.phase_depth,
        cfg.n_out,
        "tanh",
        [s for _ in cells for s in seeds],
        init="mean_field",
        sigma_w2=1.0,
        sigma_b2=1.0,
        device=cfg.device,
    )
    scale_w = torch.tensor([math.sqrt(sw) for sw, _ in cells for _ in seeds], device=cfg.device)
    scale_b = torch.tensor([math.sqrt(sb) for _, sb in cells for _ in seeds], device=cfg.device)
    with torch.no_grad():
        for layer in range(model.n_layers):
            model.weight(layer).mul_(scale_w[:, None, None])
            model.bias(layer).mul_(scale_b[:, None])
    readout = data["readout"][: cfg.phase_seeds].repeat(len(cells), 1).to(cfg.device)
    prof = M.backward_profile(model, data["x"].to(cfg.device), readout)
    return {k: v.reshape(len(cells), cfg.phase_seeds, -1) for k, v in prof.items()}


def _train_chunk(cfg: Config, data: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Every (activation, seed) trained from the same initial weights; per step and layer the
    log full-batch weight-gradient norm of the training loss (natural log)."""
    acts = list(cfg.activations)
    seeds = [init_seed(cfg, s) for s in range(cfg.train_seeds)]
    model = EnsembleMLP(
        cfg.n_in,
        [cfg.train_width] * cfg.train_depth,
        1,
        [a for a in acts for _ in seeds],
        [s for _ in acts for s in seeds],
        init=HEADLINE_INIT,
        device=cfg.device,
    )
    f64 = {"dtype": torch.float64, "device": cfg.device}
    grads = torch.empty(cfg.train_steps, model.n_layers, model.E, **f64)

    def record(state) -> None:
        g = state.grad
        for layer in range(model.n_layers):
            norm = model.weight(layer, g).double().square().sum(dim=(1, 2)).sqrt()
            grads[state.step, layer] = torch.log(norm)

    result = train(
        model,
        data["x_train"].to(cfg.device),
        data["y_train"].to(cfg.device),
        TrainConfig(epochs=cfg.train_steps, lr=cfg.train_lr),
        callbacks=[Callback(record, every=1)],
    )
    shape = (len(acts), cfg.train_seeds)
    return {
        "grad": grads.permute(2, 0, 1).reshape(*shape, cfg.train_steps, -1).cpu().numpy(),
        "loss": result.loss.T.reshape(*shape, -1).double().numpy(),
        "diverged": result.diverged_step.reshape(shape).numpy(),
        "y": data["y_train"][:, 0].double().numpy(),
    }


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Measure every shape and scheme, the phase diagram and the training run; no file I/O."""
    data = make_inputs(cfg)
    jobs = [
        (d, w, init, group)
        for d, w in shapes(cfg)
        for init in cfg.inits
        for group in activation_groups(cfg, d, w)
    ]
    groups = phase_groups(cfg)
    progress.expect(len(jobs) + len(groups) + cfg.train_steps)
    parts: dict[tuple[int, int, str], list[dict[str, np.ndarray]]] = {}
    for d, w, init, group in jobs:
        key = f"init-D{d}-N{w}-{init}-{'+'.join(group)}"
        part = chunks(key, lambda d=d, w=w, i=init, g=group: _shape_chunk(cfg, data, d, w, i, g), 1)
        parts.setdefault((d, w, init), []).append(part)
    pieces = [
        chunks(f"phase-{a}-{b}", lambda a=a, b=b: _phase_chunk(cfg, data, a, b), 1)
        for a, b in groups
    ]
    shape = (len(cfg.phase_sigma_w2), len(cfg.phase_sigma_b2), cfg.phase_seeds, -1)
    phase = {k: np.concatenate([p[k] for p in pieces]).reshape(shape) for k in pieces[0]}
    trained = chunks("train", lambda: _train_chunk(cfg, data), cfg.train_steps)

    arrays: dict[str, np.ndarray] = {}
    axes: dict[str, tuple[str, ...]] = {}
    coords: dict[str, list] = {}
    x_ms = float(data["x"].double().square().mean())
    rows = []
    for d, w in shapes(cfg):
        tag = f"D{d}_N{w}"
        sizes = (cfg.n_in, *[w] * d, cfg.n_out)
        for q in (*M.QUANTITIES, "q"):
            stacked = np.stack(
                [np.concatenate([p[q] for p in parts[(d, w, i)]]) for i in cfg.inits]
            )  # init, activation, seed, layer
            arrays[f"{q}_{tag}"] = stacked
            axes[f"{q}_{tag}"] = ("init", "activation", "seed", "layer")
        for q in ("delta", "weight_per_example", "q"):
            pred = np.stack(
                [
                    np.stack(
                        [
                            M.predicted_profile(a, M.layer_variances(i, sizes), sizes, x_ms)[q]
                            for a in cfg.activations
                        ]
                    )
                    for i in cfg.inits
                ]
            )
            arrays[f"pred_{q}_{tag}"] = pred
            axes[f"pred_{q}_{tag}"] = ("init", "activation", "layer")
        rows += _shape_rows(cfg, arrays, d, w, sizes)
    for name in list(arrays):
        coords[f"{name}/init"] = list(cfg.inits)
        coords[f"{name}/activation"] = list(cfg.activations)

    phase_summary = _phase(cfg, phase, arrays, axes, coords)
    train_summary = _training(cfg, trained, arrays, axes, coords)
    summary: dict[str, Any] = {
        "table": rows,
        "headline": _headline(cfg, rows),
        "finite_width": _finite_width(cfg, arrays, rows),
        "phase": phase_summary,
        "training": train_summary,
        "activations": list(cfg.activations),
        "inits": list(cfg.inits),
        "depths": list(cfg.depths),
        "widths": list(cfg.widths),
        "seeds": cfg.seeds,
        "n_examples": cfg.n_examples,
        "n_in": cfg.n_in,
        "n_out": cfg.n_out,
        "x_mean_square": x_ms,
        "agree_tol": AGREE,
        "agree_floor": FLOOR,
        "stable_factor": STABLE_FACTOR,
        "stable_tol": M.tolerance(max(cfg.depths), STABLE_FACTOR),
    }
    return Results(arrays=arrays, axes=axes, coords=coords, summary=summary)


def _shape_rows(cfg, arrays, d, w, sizes) -> list[dict[str, Any]]:
    """One row per (init, activation) at depth ``d``, width ``w``: measured slopes of the three
    quantities (hidden layers 1..D; the output layer is left out), predicted slopes and their
    agreement."""
    tag = f"D{d}_N{w}"
    layers = np.arange(1, d + 1)
    out = []
    for i, init in enumerate(cfg.inits):
        sw, sb = M.layer_variances(init, sizes)[1]
        for a, act in enumerate(cfg.activations):
            chi = float(theory.chi1(act, sw, sb))
            half = 0.5 * math.log(chi) if chi > 0 else -math.inf
            row: dict[str, Any] = {
                "depth": d,
                "width": w,
                "init": init,
                "activation": act,
                "sigma_w2": sw,
                "sigma_b2": sb,
                "chi1": chi,
                "half_log_chi1": half,
            }
            for q in M.QUANTITIES:
                logs = arrays[f"{q}_{tag}"][i, a][:, :d]
                row[f"slope_{q}"] = M.slope_stat(logs, layers)
            for q in ("delta", "weight_per_example"):
                pred = arrays[f"pred_{q}_{tag}"][i, a][:d]
                row[f"pred_slope_{q}"] = float(M.backward_slopes(pred, layers))
                row[f"agree_{q}"] = M.agreement(
                    row[f"slope_{q}"], row[f"pred_slope_{q}"], AGREE, FLOOR
                )
            row["agree_delta_chi1"] = M.agreement(row["slope_delta"], half, AGREE, FLOOR)
            # the full batch against the per-example prediction (which it does not follow)
            row["agree_full_batch"] = M.agreement(
                row["slope_weight_full_batch"], row["pred_slope_weight_per_example"], AGREE, FLOOR
            )
            # the full batch minus the per-example weight gradient, paired per member
            fb = M.backward_slopes(arrays[f"weight_full_batch_{tag}"][i, a][:, :d], layers)
            pe = M.backward_slopes(arrays[f"weight_per_example_{tag}"][i, a][:, :d], layers)
            row["full_minus_per_example"] = mean_ci(fb - pe)
            # the forward signal: largest relative gap of the geometric-mean q^l to the length map
            q_meas = np.exp(np.log(arrays[f"q_{tag}"][i, a]).mean(axis=0))
            q_pred = arrays[f"pred_q_{tag}"][i, a]
            with np.errstate(divide="ignore", invalid="ignore"):
                gap = np.abs(q_meas / q_pred - 1.0)
            row["q_max_rel_gap"] = float(np.nanmax(gap)) if np.isfinite(gap).any() else math.nan
            row["q_gap_layer"] = int(np.nanargmax(gap)) + 1 if np.isfinite(gap).any() else 0
            # the length map's slope at the first layer's q: near 1, a random kick of finite
            # width is not pulled back, and the initialisations drift apart
            row["q_map_slope_first"] = M.length_map_slope(
                act, float(q_pred[0]), *M.layer_variances(init, sizes)[1]
            )
            at = arrays[f"q_{tag}"][i, a][:, max(row["q_gap_layer"] - 1, 0)]
            row["q_seed_spread"] = (
                float(np.log10(at.max() / at.min())) if at.min() > 0 else math.nan
            )
            # output-to-input gradient ratio of the per-example backward signal (log10)
            logs = arrays[f"delta_{tag}"][i, a]
            row["log10_ratio_delta"] = mean_ci((logs[:, 0] - logs[:, d - 1]) / math.log(10))
            row["pred_log10_ratio_delta"] = float(
                (arrays[f"pred_delta_{tag}"][i, a][0] - arrays[f"pred_delta_{tag}"][i, a][d - 1])
                / math.log(10)
            )
            out.append(row)
    return out


def _headline(cfg: Config, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline rows: tanh and relu at the widest width and deepest depth under PyTorch's
    default initialisation (or the first scheme of the run)."""
    init = HEADLINE_INIT if HEADLINE_INIT in cfg.inits else cfg.inits[0]
    d, w = max(cfg.depths), max(cfg.widths)
    acts = [a for a in HEADLINE_ACTIVATIONS if a in cfg.activations] or [cfg.activations[0]]
    picked = [
        r
        for r in rows
        if r["depth"] == d and r["width"] == w and r["init"] == init and r["activation"] in acts
    ]
    return {"init": init, "depth": d, "width": w, "activations": acts, "rows": picked}


def _finite_width(cfg: Config, arrays, rows) -> dict[str, Any]:
    """ReLU under He initialisation at the deepest depth, per width: the measured slope of the
    backward signal, that slope times N (over initialisations), the finite-width bound
    ``-5/(4N)`` (:func:`measure.finite_width_bound`) and where the interval lies against
    ``[-5/(4N), 0]``; Welch's test of slope times N between the narrowest and widest width."""
    if "relu" not in cfg.activations or "he" not in cfg.inits:
        return {"widths": []}
    d = max(cfg.depths)
    i, a = cfg.inits.index("he"), cfg.activations.index("relu")
    layers = np.arange(1, d + 1)
    items, scaled = [], {}
    for w in sorted(cfg.widths):
        per_seed = M.backward_slopes(arrays[f"delta_D{d}_N{w}"][i, a][:, :d], layers)
        scaled[w] = per_seed * w
        row = next(
            r
            for r in rows
            if r["depth"] == d
            and r["width"] == w
            and r["init"] == "he"
            and r["activation"] == "relu"
        )
        bound = M.finite_width_bound(w, RELU_FACTOR_VARIANCE)
        items.append(
            {
                "width": w,
                "slope": row["slope_delta"],
                "times_width": mean_ci(scaled[w]),
                "bound": bound,
                "where": M.within_range(row["slope_delta"], bound, 0.0),
            }
        )
    ws = sorted(cfg.widths)
    differs = bool(welch_differs(scaled[ws[0]], scaled[ws[-1]])) if len(ws) > 1 else False
    return {"depth": d, "widths": items, "welch_differs": differs}


def _phase(cfg, phase, arrays, axes, coords) -> dict[str, Any]:
    """Per cell: fitted slope of the per-example backward signal with its interval, the
    measured and the predicted verdict."""
    D = cfg.phase_depth
    layers = np.arange(1, D + 1)
    tol = M.tolerance(D, STABLE_FACTOR)
    slope = M.backward_slopes(phase["delta"][..., :D], layers)  # sw, sb, seed
    arrays["phase_slope"] = slope
    axes["phase_slope"] = ("sigma_w2", "sigma_b2", "seed")
    arrays["phase_delta"] = phase["delta"]
    axes["phase_delta"] = ("sigma_w2", "sigma_b2", "seed", "layer")
    chi = np.array(
        [
            [float(theory.chi1("tanh", sw, sb)) for sb in cfg.phase_sigma_b2]
            for sw in cfg.phase_sigma_w2
        ]
    )
    arrays["phase_chi1"] = chi
    axes["phase_chi1"] = ("sigma_w2", "sigma_b2")
    for name in ("phase_slope", "phase_delta", "phase_chi1"):
        coords[f"{name}/sigma_w2"] = list(cfg.phase_sigma_w2)
        coords[f"{name}/sigma_b2"] = list(cfg.phase_sigma_b2)
    hi_b = max(max(cfg.phase_sigma_b2), 0.05)
    # sampled geometrically near 0 (the curve is steep there) and at every grid value, so that
    # the figure's curve reaches the grid's last column
    sb_line = np.unique(
        np.concatenate([[0.0], np.geomspace(1e-5, hi_b * 1.05, 40), cfg.phase_sigma_b2])
    )
    sw_hi = max(cfg.phase_sigma_w2) * 1.5 + 1.0
    arrays["edge_sigma_b2"] = sb_line
    arrays["edge_sigma_w2"] = _edge(sb_line, sw_hi)
    axes["edge_sigma_b2"] = axes["edge_sigma_w2"] = ("point",)
    cells = []
    for i, sw in enumerate(cfg.phase_sigma_w2):
        for j, sb in enumerate(cfg.phase_sigma_b2):
            stat = mean_ci(slope[i, j])
            pred = 0.5 * math.log(chi[i, j])
            cells.append(
                {
                    "sigma_w2": sw,
                    "sigma_b2": sb,
                    "slope": stat,
                    "pred_slope": pred,
                    "chi1": float(chi[i, j]),
                    "verdict": M.phase_verdict(stat, tol),
                    "pred_verdict": M.theory_verdict(pred, tol),
                }
            )
    decided = [c for c in cells if c["verdict"] != "undecided"]
    same = sum(c["verdict"] == c["pred_verdict"] for c in decided)
    return {
        "depth": D,
        "width": cfg.phase_width,
        "seeds": cfg.phase_seeds,
        "tolerance": tol,
        "cells": cells,
        "n_decided": len(decided),
        "n_same": same,
        "counts": {v: sum(c["verdict"] == v for c in cells) for v in M.VERDICTS},
    }


def _edge(sigma_b2: np.ndarray, sw_hi: float) -> np.ndarray:
    """tanh's edge of chaos (``theory.edge_of_chaos``) at each ``sigma_b^2``; NaN where it
    fails (no sign change of chi_1 - 1 in the searched range)."""
    out = []
    for sb in sigma_b2:
        try:
            out.append(float(theory.edge_of_chaos("tanh", float(sb), sw_range=(0.05, sw_hi))))
        except RuntimeError:
            out.append(math.nan)
    return np.asarray(out)


def _training(cfg, trained, arrays, axes, coords) -> dict[str, Any]:
    """Per activation: the backward slope of the full-batch weight-gradient norm (hidden layers)
    at the first and the last step, whether they differ (Welch), the final training loss."""
    D = cfg.train_depth
    layers = np.arange(1, D + 1)
    grad = trained["grad"]  # activation, seed, step, layer
    arrays["train_grad"] = grad
    axes["train_grad"] = ("activation", "seed", "step", "layer")
    arrays["train_loss"] = trained["loss"]
    axes["train_loss"] = ("activation", "seed", "step")
    for name in ("train_grad", "train_loss"):
        coords[f"{name}/activation"] = list(cfg.activations)
    const = float(np.var(trained["y"]))  # the loss of the best constant prediction
    rows = []
    for a, act in enumerate(cfg.activations):
        final = trained["loss"][a, :, -1]
        start = M.backward_slopes(grad[a, :, 0, :D], layers)
        end = M.backward_slopes(grad[a, :, -1, :D], layers)
        rows.append(
            {
                "activation": act,
                "slope_start": mean_ci(start),
                "slope_end": mean_ci(end),
                "differs": paired_differs(start, end),  # the same initialisations
                "loss_start": mean_ci(trained["loss"][a, :, 0], bounds=(0.0, math.inf)),
                "loss_end": mean_ci(trained["loss"][a, :, -1], bounds=(0.0, math.inf)),
                "diverged": int((trained["diverged"][a] >= 0).sum()),
                "at_constant": int((np.abs(final / const - 1.0) <= CONSTANT).sum()),
                "at_constant_ci": proportion_ci(
                    int((np.abs(final / const - 1.0) <= CONSTANT).sum()), cfg.train_seeds
                ),
            }
        )
    return {
        "depth": D,
        "width": cfg.train_width,
        "steps": cfg.train_steps,
        "seeds": cfg.train_seeds,
        "lr": cfg.train_lr,
        "n_train": cfg.n_train,
        "init": HEADLINE_INIT,
        "constant_loss": const,
        "constant_tol": CONSTANT,
        "rows": rows,
    }


SMOKE = Config(
    activations=("tanh", "relu"),
    inits=("torch", "he"),
    depths=(4, 8),
    widths=(16,),
    seeds=3,
    n_examples=8,
    n_in=8,
    n_out=4,
    phase_sigma_w2=(0.5, 1.0, 4.0),
    phase_sigma_b2=(0.0, 0.1),
    phase_depth=6,
    phase_width=16,
    phase_seeds=3,
    train_depth=4,
    train_width=8,
    train_steps=10,
    train_seeds=2,
    n_train=16,
)
DEFAULT = Config()
FULL = Config(
    depths=(5, 10, 20, 30, 50),
    seeds=20,
    n_examples=64,
    phase_sigma_w2=(0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0),
    phase_sigma_b2=(0.0, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4),
    phase_width=256,
    phase_seeds=20,
    train_steps=500,
    train_seeds=10,
)

presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
