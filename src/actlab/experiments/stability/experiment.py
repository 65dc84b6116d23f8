"""The stability experiment: how large a learning rate, and how deep a stack, each activation
survives, with full-batch gradient descent (GD), GD with heavy-ball momentum and Adam.

Data (from the run's own generator): the deep-MLP's noisy sine, ``x = linspace(-pi, pi,
n_train)``, ``y = sin(x) + N(0, noise^2)``; a held-out draw on the midpoints of that grid.
Training is full batch, so GD is exactly gradient descent and the quadratic thresholds apply.

Members: one ensemble pass per (optimiser, depth) trains every (activation, learning rate,
seed); members with the same seed and depth start from the same weights whatever their
activation and rate. Layers are numbered from the input.

Outcomes per member: final training and held-out MSE (NaN when it diverged) and the step at
which the engine froze it as diverged (-1: never). Sharpness (the top eigenvalue of the loss
Hessian, :func:`actlab.sharpness.top_eigenvalue`) is recorded every ``sharp_every`` steps at
depth ``sharp_depth`` for GD, and Adam's preconditioned sharpness
(:func:`actlab.sharpness.preconditioned_sharpness`) for Adam; the sharpness at initialisation
of every (depth, activation, seed) gives the quadratic model's bound ``2 / lambda_max``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress
from actlab.activations import get_activation
from actlab.experiments.base import (
    ChunkRunner,
    Results,
    check_activations,
    check_choice,
    check_config,
    check_ints,
    run_inline,
)
from actlab.models import PLAIN_INITS, EnsembleMLP
from actlab.optim import EnsembleOptimizer, OptimizerConfig
from actlab.seeding import derive_seed
from actlab.sharpness import (
    adam_threshold,
    gd_threshold,
    momentum_threshold,
    preconditioned_sharpness,
    top_eigenvalue,
)
from actlab.stats import mean_ci, paired_differs
from actlab.train import Callback, StepState, TrainConfig, train

__all__ = [
    "Config",
    "presets",
    "run",
    "OPTIMIZERS",
    "MAX_LOSS",
    "largest_stable",
    "settle_ratio",
    "summarise",
]

OPTIMIZERS = ("gd", "momentum", "adam")
"""Full-batch gradient descent, heavy-ball momentum (torch.optim.SGD's form), Adam."""
ENGINE = {"gd": "sgd", "momentum": "momentum", "adam": "adam"}
MAX_LOSS = 1e4
"""A member whose training MSE exceeds this (or is not finite) is frozen as diverged; the
targets' variance is about 0.5, so this is 20000 times the loss of predicting 0."""
FLAT_FIT = 0.9
"""A final training MSE at least this share of the targets' variance (the MSE of the best
constant) is a network that fits no better than a constant."""
SHARP_TOL = 1e-3
"""Relative tolerance of the power iteration on the sharpness during training."""


@dataclass(frozen=True)
class Config:
    """Settings of the stability experiment."""

    activations: tuple[str, ...] = (
        "identity",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "gelu",
        "selu",
    )
    """Activations compared (any registry name)."""
    optimizers: tuple[str, ...] = OPTIMIZERS
    """Optimisers: gd (full-batch gradient descent), momentum (heavy ball), adam."""
    depths: tuple[int, ...] = (2, 4, 8)
    """Numbers of hidden layers D."""
    width: int = 32
    """Units per hidden layer N."""
    seeds: int = 5
    """Seeds (initial weights) per activation, rate and depth."""
    steps: int = 200
    """Full-batch optimiser steps."""
    gd_rates: tuple[float, ...] = tuple(2.0**k for k in range(-7, 1))
    """Learning rates of gd (a geometric grid: the largest stable rate is known to its step)."""
    momentum_rates: tuple[float, ...] = tuple(2.0**k for k in range(-8, 1))
    """Learning rates of momentum."""
    adam_rates: tuple[float, ...] = tuple(2.0**k for k in range(-7, 1))
    """Learning rates of adam."""
    momentum: float = 0.9
    """Heavy-ball coefficient of momentum (in [0, 1))."""
    n_train: int = 64
    """Training points on [-pi, pi] (full batch)."""
    noise: float = 0.1
    """Standard deviation of the label noise."""
    sharp_depth: int = 4
    """Depth (one of depths) at which sharpness is tracked during training."""
    sharp_every: int = 25
    """Steps between two sharpness measurements."""
    sharp_iters: int = 25
    """Most power iterations per sharpness measurement during training."""
    tail: float = 0.3
    """Last fraction of training over which the sharpness / threshold ratio is summarised."""
    init: str = "xavier"
    """Weight initialisation scheme (torch, xavier, he)."""
    data_seed: int = 0
    """Seed of the data (noise draws)."""
    device: str = "cpu"
    """Where the ensembles and their data live (cpu, cuda, cuda:N); the results are the same
    to float rounding."""

    def __post_init__(self) -> None:
        check_config(self)
        for key in ("activations", "optimizers", "depths", "gd_rates", "momentum_rates"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(self, "adam_rates", tuple(self.adam_rates))
        check_activations(self, "activations")
        if not self.activations:
            raise ValueError("activations must name at least one activation")
        if not self.optimizers or len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers must name distinct optimisers, got {self.optimizers}")
        for name in self.optimizers:
            if name not in OPTIMIZERS:
                raise ValueError(f"optimizers must be among {', '.join(OPTIMIZERS)}, got {name!r}")
        check_choice(self, "init", PLAIN_INITS)
        check_ints(self, {"data_seed": 0})
        positive = ("width", "seeds", "steps", "sharp_every", "sharp_iters")
        check_ints(self, dict.fromkeys(positive, 1))
        check_ints(self, {"n_train": 4})
        if not self.depths or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.depths
        ):
            raise ValueError(f"depths must be integers >= 1, got {self.depths}")
        if list(self.depths) != sorted(set(self.depths)):
            raise ValueError(f"depths must be increasing without repeats, got {self.depths}")
        for key in ("gd_rates", "momentum_rates", "adam_rates"):
            rates = getattr(self, key)
            if not rates or any(
                not isinstance(r, float | int) or not (0 < r < math.inf) for r in rates
            ):
                raise ValueError(f"{key} must be finite rates > 0, got {rates}")
            if list(rates) != sorted(set(rates)):
                raise ValueError(f"{key} must be increasing without repeats, got {rates}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if isinstance(self.sharp_depth, bool) or self.sharp_depth not in self.depths:
            raise ValueError(
                f"sharp_depth must be one of depths {self.depths}, got {self.sharp_depth}"
            )
        if not 0 < self.tail <= 1:
            raise ValueError(f"tail must lie in (0, 1], got {self.tail}")

    def rates(self, optimizer: str) -> tuple[float, ...]:
        """The learning-rate grid of ``optimizer``."""
        return tuple(float(r) for r in getattr(self, f"{optimizer}_rates"))


presets = {
    "smoke": Config(
        activations=("tanh", "relu"),
        depths=(2, 4),
        width=8,
        seeds=2,
        steps=30,
        gd_rates=(0.25, 1.0, 4.0),
        momentum_rates=(0.0625, 0.25),
        adam_rates=(0.004, 0.064),
        n_train=16,
        sharp_depth=2,
        sharp_every=10,
        sharp_iters=10,
    ),
    "default": Config(),
    "full": Config(
        activations=(
            "identity",
            "sigmoid",
            "tanh",
            "relu",
            "leaky_relu",
            "elu",
            "gelu",
            "silu",
            "selu",
        ),
        depths=(1, 2, 4, 8, 16),
        width=64,
        seeds=10,
        steps=3000,
        gd_rates=tuple(2.0 ** (k / 2) for k in range(-12, 5)),
        momentum_rates=tuple(2.0 ** (k / 2) for k in range(-18, 0)),
        adam_rates=tuple(2.0 ** (k / 2) for k in range(-22, -4)),
        n_train=256,
        sharp_every=20,
        sharp_iters=100,
    ),
}


def make_data(cfg: Config) -> dict[str, torch.Tensor]:
    """Training and held-out sets, each ``x`` ``(n, 1)`` and ``y`` ``(n, 1)``, float32."""
    gen = torch.Generator().manual_seed(derive_seed(cfg.data_seed, "stability", "noise"))
    x = torch.linspace(-math.pi, math.pi, cfg.n_train, dtype=torch.float64)[:, None]
    mid = (x[1:] + x[:-1]) / 2

    def noisy(grid: torch.Tensor) -> torch.Tensor:
        return torch.sin(grid) + cfg.noise * torch.randn(
            grid.shape, generator=gen, dtype=grid.dtype
        )

    data = {"x_train": x, "y_train": noisy(x), "x_test": mid, "y_test": noisy(mid)}
    return {k: v.float() for k, v in data.items()}


def members(cfg: Config, optimizer: str) -> pd.DataFrame:
    """Every (activation, rate, seed) of one pass, in ensemble order."""
    rows = [
        {"activation": a, "lr": r, "seed": s}
        for a in cfg.activations
        for r in cfg.rates(optimizer)
        for s in range(cfg.seeds)
    ]
    return pd.DataFrame(rows)


def build_model(cfg: Config, depth: int, acts: list[str], seeds: list[int]) -> EnsembleMLP:
    """The ensemble of one pass: member seeds are derived from (seed, depth), not from the
    activation or the rate, so equal seeds give equal initial weights."""
    member_seeds = [derive_seed(s, "stability", "depth", depth) for s in seeds]
    return EnsembleMLP(
        1, [cfg.width] * depth, 1, acts, member_seeds, init=cfg.init, device=cfg.device
    )


def train_config(cfg: Config, optimizer: str) -> TrainConfig:
    """Full-batch training with ``optimizer``'s engine settings."""
    return TrainConfig(
        epochs=cfg.steps,
        loss="mse",
        max_loss=MAX_LOSS,
        optimizer=optimizer_config(cfg, optimizer),
    )


def optimizer_config(cfg: Config, optimizer: str) -> OptimizerConfig:
    return OptimizerConfig(name=ENGINE[optimizer], momentum=cfg.momentum)


def _mse(model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (model(x) - y).square().mean(dim=(1, 2)).double()


def sharpness_schedule(cfg: Config) -> list[int]:
    """Steps at which the sharpness is measured: 0, 1 (the first at which Adam's preconditioner
    exists), sharp_every, 2 sharp_every, ... below ``steps``, and the last step."""
    return sorted({*range(0, cfg.steps, cfg.sharp_every), min(1, cfg.steps - 1), cfg.steps - 1})


def _train_pass(cfg: Config, data: dict[str, torch.Tensor], optimizer: str, depth: int) -> dict:
    """Train one (optimiser, depth) pass; arrays in :func:`members` order."""
    table = members(cfg, optimizer)
    model = build_model(cfg, depth, list(table.activation), list(table.seed))
    data = {k: v.to(cfg.device) for k, v in data.items()}
    x, y = data["x_train"], data["y_train"]
    init_loss = _mse(model, x, y)
    tcfg = train_config(cfg, optimizer)
    opt = EnsembleOptimizer(
        model.flat, torch.tensor(table.lr.values), model.param_blocks(), tcfg.optimizer
    )
    callbacks = []
    track = depth == cfg.sharp_depth and optimizer in ("gd", "adam")
    if track:
        schedule = sharpness_schedule(cfg)

        def measure(state: StepState) -> dict[str, torch.Tensor]:
            if optimizer == "gd":
                eig = top_eigenvalue(
                    state.model,
                    state.x,
                    state.y,
                    "mse",
                    members=state.active,
                    max_iter=cfg.sharp_iters,
                    tol=SHARP_TOL,
                    seed=state.step,
                )
            else:
                eig = preconditioned_sharpness(
                    state.model,
                    state.x,
                    state.y,
                    opt,
                    "mse",
                    members=state.active,
                    max_iter=cfg.sharp_iters,
                    tol=SHARP_TOL,
                    seed=state.step,
                )
            return {"sharpness": eig.value, "converged": eig.converged.double()}

        callbacks.append(Callback(measure, at=schedule))
    result = train(
        model, x, y, train_config_with_optimizer(tcfg), optimizer=opt, callbacks=callbacks
    )
    diverged = result.diverged_step.clone()
    final_train = _mse(model, x, y)
    final_test = _mse(model, data["x_test"], data["y_test"])
    bad = diverged >= 0
    final_train[bad] = math.nan
    final_test[bad] = math.nan
    out = {
        "diverged_step": diverged.numpy(),
        "init_loss": init_loss.cpu().numpy(),
        "final_train": final_train.cpu().numpy(),
        "final_test": final_test.cpu().numpy(),
    }
    if track:
        steps, values = result.records["sharpness"]
        out["sharpness"] = values.double().numpy()  # (n_records, E)
        out["sharp_steps"] = np.asarray(steps)
        out["converged"] = result.records["converged"][1].numpy()
    return out


def train_config_with_optimizer(tcfg: TrainConfig) -> TrainConfig:
    """With ``optimizer=`` given, train() wants the rates and settings left at their
    defaults (they are the optimiser's own)."""
    return TrainConfig(epochs=tcfg.epochs, loss=tcfg.loss, max_loss=tcfg.max_loss)


def _init_sharpness(cfg: Config, data: dict[str, torch.Tensor], depth: int) -> np.ndarray:
    """``lambda_max`` of the Hessian at initialisation, ``(activation, seed)``."""
    acts = [a for a in cfg.activations for _ in range(cfg.seeds)]
    seeds = [s for _ in cfg.activations for s in range(cfg.seeds)]
    model = build_model(cfg, depth, acts, seeds)
    x, y = data["x_train"].to(cfg.device), data["y_train"].to(cfg.device)
    eig = top_eigenvalue(model, x, y, "mse", max_iter=300, tol=1e-5)
    return eig.value.numpy().reshape(len(cfg.activations), cfg.seeds)


# ---------------------------------------------------------------------------- summaries
def largest_stable(
    rates: np.ndarray, diverged_step: np.ndarray, final_train: np.ndarray, init_loss: np.ndarray
) -> np.ndarray:
    """The largest stable rate per seed: the largest rate of the grid (``rates`` increasing,
    last axis of the other arrays' rate axis ``(..., rate, seed)``) at which the member did not
    diverge and ended with a training MSE below its initial one; NaN when no rate was stable.

    ``diverged_step``, ``final_train``: ``(..., rate, seed)``; ``init_loss``: ``(..., seed)``
    or broadcastable. Returns ``(..., seed)``."""
    rates = np.asarray(rates, dtype=np.float64)
    stable = (np.asarray(diverged_step) < 0) & (
        np.asarray(final_train) < np.asarray(init_loss)[..., None, :]
    )
    grid = np.broadcast_to(rates[:, None], stable.shape)
    best = np.where(stable, grid, -np.inf).max(axis=-2)
    return np.where(np.isfinite(best), best, np.nan)


def settle_ratio(steps: np.ndarray, ratio: np.ndarray, total_steps: int, tail: float) -> np.ndarray:
    """Median of ``ratio`` ``(n_records, ...)`` over the records at steps in the last ``tail``
    of training (``step >= (1 - tail) * total_steps``); NaN where none is finite."""
    steps = np.asarray(steps)
    keep = steps >= (1 - tail) * total_steps
    if not keep.any():
        keep = steps == steps.max()
    part = np.asarray(ratio, dtype=np.float64)[keep]
    part = np.where(np.isfinite(part), part, np.nan)
    out = np.full(part.shape[1:], np.nan)
    some = np.isfinite(part).any(axis=0)
    out[some] = np.nanmedian(part[:, some], axis=0)
    return out


def _log2_ci(values: np.ndarray) -> dict[str, float]:
    """Geometric mean and 95% interval of positive values (t interval of log2)."""
    v = np.asarray(values, dtype=np.float64)
    stat = mean_ci(np.log2(v[np.isfinite(v) & (v > 0)]))
    return {k: (2.0 ** stat[k] if k in ("mean", "lo", "hi") else stat[k]) for k in stat}


def _geo_ci(values: np.ndarray) -> dict[str, float]:
    """Geometric mean and 95% interval of positive values (t interval of log10); NaN
    entries are dropped."""
    v = np.asarray(values, dtype=np.float64)
    stat = mean_ci(np.log10(v[np.isfinite(v) & (v > 0)]))
    return {k: (10.0 ** stat[k] if k in ("mean", "lo", "hi") else stat[k]) for k in stat}


def _group(acts: list[str]) -> dict[str, str]:
    """``linear`` (piecewise linear without a kink: identity, a linear network),
    ``piecewise-linear`` (with a kink), ``smooth`` (smooth and not piecewise linear) or
    ``other`` (e.g. SELU, whose derivative jumps at 0)."""
    out = {}
    for a in acts:
        act = get_activation(a)
        if act.piecewise_linear:
            out[a] = "piecewise-linear" if act.kinks else "linear"
        else:
            out[a] = "smooth" if act.smooth else "other"
    return out


def family_comparison(
    settled: np.ndarray, ok: dict[str, list[int]], groups: dict[str, str], rates: np.ndarray
) -> dict[str, Any] | None:
    """Smooth against piecewise-linear activations at one common rate.

    ``settled``: late sharpness / threshold ``(act, rate, seed)`` in the order of ``ok``'s keys;
    ``ok[act]``: the rate indices at which every seed of ``act`` was stable and learned. The
    rate is the largest in every compared activation's ``ok`` (so the threshold is the same for
    all); an activation of either family without such a rate is left out. Per seed, each
    family's mean over its activations; the families are compared by the paired test over
    seeds (a seed gives every activation the same initial weights and the same data). None
    when a family is empty or no common rate exists."""
    acts = list(ok)
    cand = [a for a in acts if groups[a] in ("smooth", "piecewise-linear") and ok[a]]
    smooth = [a for a in cand if groups[a] == "smooth"]
    pl = [a for a in cand if groups[a] == "piecewise-linear"]
    if not smooth or not pl:
        return None
    common = set.intersection(*(set(ok[a]) for a in cand))
    if not common:
        return None
    ri = max(common)
    with np.errstate(all="ignore"):
        s = np.nanmean(settled[[acts.index(a) for a in smooth], ri], axis=0)  # (seed,)
        p = np.nanmean(settled[[acts.index(a) for a in pl], ri], axis=0)
    if np.sum(np.isfinite(s) & np.isfinite(p)) < 2:
        return None
    return {
        "rate": float(rates[ri]),
        "smooth_acts": smooth,
        "pl_acts": pl,
        "left_out": [
            a for a in acts if groups[a] in ("smooth", "piecewise-linear") and a not in cand
        ],
        "smooth": mean_ci(s),
        "piecewise-linear": mean_ci(p),
        "difference": mean_ci(s - p),
        "differs": bool(paired_differs(s, p)),
    }


def summarise(cfg: Config, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every number the report states, from the arrays alone."""
    acts = list(cfg.activations)
    out: dict[str, Any] = {"groups": _group(acts), "stable": {}, "theory": {}, "sharp": {}}
    lam = arrays["lam_init"]  # (depth, act, seed)
    overall: dict[str, list[float]] = {}
    overall_learned: dict[str, list[float]] = {}
    for opt in cfg.optimizers:
        rates = np.asarray(cfg.rates(opt))
        best = largest_stable(
            rates, arrays[f"diverged_{opt}"], arrays[f"train_{opt}"], arrays[f"init_{opt}"][:, :, 0]
        )  # (depth, act, seed)
        out["stable"][opt] = {}
        for di, depth in enumerate(cfg.depths):
            for ai, act in enumerate(acts):
                b = best[di, ai]
                stat = _log2_ci(b)
                top = float(np.nanmax(b)) if np.isfinite(b).any() else math.nan
                entry = {
                    **stat,
                    "per_seed": [None if not math.isfinite(v) else float(v) for v in b],
                    "none_stable": int(np.sum(~np.isfinite(b))),
                    "at_top": int(np.sum(b == rates[-1])),
                    "max": top,
                }
                # Seeds whose member at their largest stable rate fits no better than a
                # constant (stable, but it has not learned).
                fin = arrays[f"train_{opt}"][di, ai]  # (rate, seed)
                var = float(arrays["target_var"][0])
                flat_seed = np.array(
                    [
                        math.isfinite(v)
                        and fin[int(np.argmin(np.abs(rates - v))), k] >= FLAT_FIT * var
                        for k, v in enumerate(b)
                    ],
                    dtype=bool,
                )
                entry["flat"] = int(flat_seed.sum())
                div = arrays[f"diverged_{opt}"][di, ai]  # (rate, seed)
                entry["diverged"] = [int(np.sum(div[r] >= 0)) for r in range(len(rates))]
                out["stable"][opt][f"{depth}/{act}"] = entry
                if opt in ("gd", "momentum"):
                    thr = (
                        gd_threshold(lam[di, ai])
                        if opt == "gd"
                        else momentum_threshold(lam[di, ai], cfg.momentum)
                    )
                    pred = _log2_ci(thr)
                    # Seeds whose prediction lies in [best, next grid rate): agreement at the
                    # grid's resolution; below best: the prediction is too cautious.
                    nxt = np.array(
                        [
                            rates[np.searchsorted(rates, v) + 1]
                            if math.isfinite(v) and v < rates[-1]
                            else math.inf
                            for v in b
                        ]
                    )
                    ok = np.isfinite(b)
                    inside = int(np.sum(ok & (thr >= b) & (thr < nxt)))
                    below = int(np.sum(ok & (thr < b)))
                    above = int(np.sum(ok & (thr >= nxt)))
                    ratio = mean_ci(np.log10(b[ok] / thr[ok])) if ok.any() else mean_ci([])
                    overall.setdefault(opt, []).extend(np.log10(b[ok] / thr[ok]).tolist())
                    learned = ok & ~flat_seed
                    overall_learned.setdefault(opt, []).extend(
                        np.log10(b[learned] / thr[learned]).tolist()
                    )
                    out["theory"][f"{opt}/{depth}/{act}"] = {
                        "pred": pred,
                        "inside": inside,
                        "below": below,
                        "above": above,
                        "n": int(ok.sum()),
                        "log10_ratio": ratio,
                    }
    out["theory_overall"] = {o: mean_ci(v) for o, v in overall.items()}
    # The same without the cases whose member at its largest stable rate is a flat fit.
    out["theory_overall_learned"] = {o: mean_ci(v) for o, v in overall_learned.items()}
    # Sharpness against its threshold at the tracked depth.
    for opt in ("gd", "adam"):
        key = f"sharp_{opt}"
        if key not in arrays:
            continue
        rates = np.asarray(cfg.rates(opt))
        steps = arrays[f"sharp_steps_{opt}"]
        values = arrays[key]  # (record, act, rate, seed)
        thr = gd_threshold(rates) if opt == "gd" else adam_threshold(rates)
        ratio = values / thr[None, None, :, None]
        settled = settle_ratio(steps, ratio, cfg.steps, cfg.tail)  # (act, rate, seed)
        di = cfg.depths.index(cfg.sharp_depth)
        div = arrays[f"diverged_{opt}"][di]  # (act, rate, seed)
        per_act: dict[str, Any] = {}
        ok_rates: dict[str, list[int]] = {}
        k0 = 0 if opt == "gd" else min(1, len(steps) - 1)  # the first record with a value
        with np.errstate(all="ignore"):
            growth = np.log10(settled / (values[k0] / thr[None, :, None]))  # (act, rate, seed)
        sharpening = {
            act: mean_ci(growth[ai, 0][np.all(div[ai, 0] < 0)] if np.all(div[ai, 0] < 0) else [])
            for ai, act in enumerate(acts)
        }
        for ai, act in enumerate(acts):
            # The rate shown: the largest at which every seed was stable (never diverged, ended
            # below its initial loss) and learned (ended below FLAT_FIT of the targets'
            # variance): a flat network's sharpness is only its output bias's curvature.
            var = float(arrays["target_var"][0])
            ok = [
                ri
                for ri in range(len(rates))
                if np.all(div[ai, ri] < 0)
                and np.all(arrays[f"train_{opt}"][di, ai, ri] < arrays[f"init_{opt}"][di, ai, 0])
                and np.all(arrays[f"train_{opt}"][di, ai, ri] < FLAT_FIT * var)
            ]
            ok_rates[act] = ok
            flat_rates = [
                float(rates[ri])
                for ri in range(len(rates))
                if np.all(div[ai, ri] < 0)
                and np.all(arrays[f"train_{opt}"][di, ai, ri] < arrays[f"init_{opt}"][di, ai, 0])
                and ri > max(ok, default=-1)
            ]
            if not ok:
                per_act[act] = {"rate": None, "skipped": flat_rates}
                continue
            ri = max(ok)
            vals = settled[ai, ri]
            first = values[0, ai, ri] if opt == "gd" else values[min(1, len(steps) - 1), ai, ri]
            per_act[act] = {
                "rate": float(rates[ri]),
                # Geometric mean over seeds with its interval: a positive ratio, and the
                # interval of its log never crosses 0 (an arithmetic one did, for Adam).
                "ratio": _geo_ci(vals),
                "per_seed": [float(v) for v in vals],
                "skipped": flat_rates,
                "seeds": int(len(vals)),
                "start_ratio": mean_ci(first / thr[ri]),
                "start_per_seed": [float(v) for v in first / thr[ri]],
                "all_ratios": [mean_ci(settled[ai, r]) for r in range(len(rates))],
            }
        comp = family_comparison(settled, ok_rates, out["groups"], rates)
        live = np.isfinite(values)
        conv = arrays[f"sharp_conv_{opt}"]
        out["sharp"][opt] = {
            "sharpening": sharpening,
            "smallest_rate": float(rates[0]),
            "per_act": per_act,
            "compare": comp,
            "converged": int(np.sum((conv > 0) & live)),
            "measured": int(np.sum(live)),
        }
    return out


# ---------------------------------------------------------------------------- run
def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Train every pass, measure sharpness, and summarise."""
    data = make_data(cfg)
    passes = [(o, d) for o in cfg.optimizers for d in cfg.depths]
    progress.expect(len(passes) * cfg.steps + len(cfg.depths))
    arrays: dict[str, np.ndarray] = {}
    axes: dict[str, tuple[str, ...]] = {}
    coords: dict[str, list] = {}
    A, S = len(cfg.activations), cfg.seeds
    lam = [
        chunks(f"init-sharpness-D{d}", lambda d=d: _init_sharpness(cfg, data, d), work=1)
        for d in cfg.depths
    ]
    y = data["y_train"].double()
    arrays["target_var"] = np.array([float((y - y.mean()).square().mean())])
    axes["target_var"] = ("value",)
    arrays["lam_init"] = np.stack(lam)
    axes["lam_init"] = ("depth", "activation", "seed")
    results = {
        (o, d): chunks(
            f"train-{o}-D{d}", lambda o=o, d=d: _train_pass(cfg, data, o, d), work=cfg.steps
        )
        for o, d in passes
    }
    rows = []
    for o in cfg.optimizers:
        R = len(cfg.rates(o))
        shape = (len(cfg.depths), A, R, S)
        for name, key in (
            ("diverged", "diverged_step"),
            ("train", "final_train"),
            ("test", "final_test"),
            ("init", "init_loss"),
        ):
            arrays[f"{name}_{o}"] = np.stack([results[(o, d)][key] for d in cfg.depths]).reshape(
                shape
            )
            axes[f"{name}_{o}"] = ("depth", "activation", "rate", "seed")
            coords[f"{name}_{o}/rate"] = list(cfg.rates(o))
        tracked = results[(o, cfg.sharp_depth)]
        if "sharpness" in tracked:
            n = tracked["sharpness"].shape[0]
            arrays[f"sharp_{o}"] = tracked["sharpness"].reshape(n, A, R, S)
            axes[f"sharp_{o}"] = ("record", "activation", "rate", "seed")
            arrays[f"sharp_conv_{o}"] = tracked["converged"].reshape(n, A, R, S)
            axes[f"sharp_conv_{o}"] = ("record", "activation", "rate", "seed")
            arrays[f"sharp_steps_{o}"] = tracked["sharp_steps"]
            axes[f"sharp_steps_{o}"] = ("record",)
        table = members(cfg, o)
        for d in cfg.depths:
            res = results[(o, d)]
            for m, row in table.iterrows():
                for metric, key in (
                    ("final/test_mse", "final_test"),
                    ("diverged_step", "diverged_step"),
                ):
                    rows.append(
                        {
                            "member": m,
                            "step": cfg.steps,
                            "metric": metric,
                            "value": float(res[key][m]),
                            "optimizer": o,
                            "depth": d,
                            "activation": row.activation,
                            "lr": row.lr,
                            "seed": int(row.seed),
                        }
                    )
    summary = summarise(cfg, arrays)
    summary["config"] = {
        "activations": list(cfg.activations),
        "optimizers": list(cfg.optimizers),
        "depths": list(cfg.depths),
        "rates": {o: list(cfg.rates(o)) for o in cfg.optimizers},
        "seeds": S,
        "steps": cfg.steps,
        "width": cfg.width,
        "n_train": cfg.n_train,
        "noise": cfg.noise,
        "momentum": cfg.momentum,
        "sharp_depth": cfg.sharp_depth,
        "sharp_every": cfg.sharp_every,
        "tail": cfg.tail,
        "init": cfg.init,
        "members": {o: A * len(cfg.rates(o)) * S for o in cfg.optimizers},
        "max_loss": MAX_LOSS,
    }
    return Results(
        metrics=pd.DataFrame(rows), arrays=arrays, axes=axes, coords=coords, summary=summary
    )
