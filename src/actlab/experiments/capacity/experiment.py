"""Capacity: how well can each activation represent functions at reasonable depth and width?

* Targets (:data:`TARGETS`, noise-free, inputs uniform on ``[-1, 1]`` or ``[-1, 1]^2``):
  ``sin(k pi x)`` for rising ``k``, ``|x|``, a step, a sawtooth (the tent map composed three
  times: 8 linear pieces) and a 2-D checkerboard (4 x 4 cells). Each seed draws its own training,
  validation and test inputs; every target of one input dimension shares them.
* Members: every (shape, activation, target, learning rate, seed). Members of one shape and seed
  start from identical weights whatever their activation, target and rate (the engine draws a
  member's weights from its seed alone). One chunk per shape trains all its members with full-batch
  Adam in one ensemble pass per input dimension.
* The fair protocol: each (activation, target) gets its own rate, the one of ``lr_grid`` with the
  lowest mean over seeds of ``log10`` validation MSE; the error reported is on the separate test
  draw. Rates are tuned at one shape (``tune_depth`` x ``tune_width``) and used at every shape,
  or at every shape with ``tune_all_shapes``. A pick at the edge of the grid is flagged
  (:func:`actlab.tuning.grid_step`), never hidden.
* Measured per member: training, validation and test MSE at the end; the step at which a member
  diverged; the prediction on a dense grid (seed 0, 1-D targets); for ReLU members of 1-D
  targets the exact number of activation regions and linear pieces along ``[-1, 1]``
  (:func:`actlab.regions.count_pieces`) at initialisation and after training.
* Linear regions at initialisation, beside the trained nets: ``region_nets`` ReLU networks per
  (depth, width) of ``region_depths x region_widths`` at a Gaussian initialisation
  (``sigma_w^2 = 2``, ``sigma_b^2 = region_sigma_b2``), counted exactly along ``[-1, 1]``; the
  first layer's exact expectation (:func:`actlab.regions.expected_first_layer_breakpoints`)
  and Telgarsky's sawtooth (:func:`actlab.regions.sawtooth_network`) beside them.

Errors are reported relative to the target's variance (``MSE / Var f``: 1 is what the best
constant achieves), as geometric means over seeds with 95% intervals (on ``log10``).

Metric keys (tidy table; member columns ``depth, width, activation, target, lr, seed``):
``train/mse``, ``val/mse``, ``test/mse``, ``test/rel_error`` (step = ``steps``), and for ReLU
members of 1-D targets ``regions/count`` and ``regions/pieces`` at steps 0 and ``steps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress
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
from actlab.optim import OptimizerConfig
from actlab.regions import (
    count_pieces,
    ensemble_from_layers,
    expected_first_layer_breakpoints,
    sawtooth_network,
)
from actlab.seeding import derive_seed
from actlab.stats import mean_ci, paired_differs, proportion_ci, welch_differs
from actlab.train import TrainConfig, train
from actlab.tuning import GridDecision, grid_step, rates_to_try, status_text

__all__ = [
    "Config",
    "TARGETS",
    "Target",
    "run",
    "presets",
    "members",
    "target_values",
    "draw_inputs",
    "n_params",
    "affine_floor",
    "matched_pairs",
    "pick_rates",
    "verdict",
    "pair_outcome",
    "LR_MIN",
    "LR_MAX",
    "LR_FACTOR",
    "MATCH_TOL",
    "REGION_SIGMA_W2",
]


@dataclass(frozen=True)
class Target:
    """A function to fit: input dimension, label, closed-form variance over the uniform input,
    and its number of linear pieces on the domain (``None``: not piecewise linear)."""

    dim: int
    label: str
    variance: float
    pieces: int | None


TARGETS: dict[str, Target] = {
    "sin1": Target(1, "sin(πx)", 0.5, None),
    "sin2": Target(1, "sin(2πx)", 0.5, None),
    "sin4": Target(1, "sin(4πx)", 0.5, None),
    "sin8": Target(1, "sin(8πx)", 0.5, None),
    "abs": Target(1, "|x|", 1.0 / 12.0, 2),
    "step": Target(1, "step 1[x > 0]", 0.25, None),
    "sawtooth": Target(1, "sawtooth (tent³)", 1.0 / 12.0, 8),
    "checkerboard": Target(2, "checkerboard 4×4", 0.25, None),
}
"""The targets. Variances over ``x ~ U[-1, 1]`` (``U[-1, 1]^2``): ``sin(k pi x)``: 1/2;
``|x|``: ``1/3 - 1/4 = 1/12``; the 0/1 step and the 0/1 checkerboard (equal areas): 1/4; the
sawtooth ``T^3((x + 1)/2)``: the tent map ``T`` carries the uniform law to itself, so 1/12."""

LR_MIN, LR_MAX = 1e-5, 1.0
"""The allowed range of rates: a pick at a bound of ``lr_grid`` is at the *edge* of the tried
grid (flagged in the report) unless the grid reaches these bounds."""

LR_FACTOR = 3.0
"""Step of a grid extension: one more rate this factor beyond the edge of the grid."""

MATCH_TOL = 1.5
"""Two shapes have a matched parameter count when their ``|theta|`` differ by at most this
factor."""

REGION_SIGMA_W2 = 2.0
"""``sigma_w^2`` of the ReLU networks whose regions are counted at initialisation (He's
scaling: the signal's spread stays constant through ReLU layers)."""


def target_values(name: str, x: torch.Tensor) -> torch.Tensor:
    """The target ``name`` at inputs ``x`` ``(n, dim)`` (float64), as ``(n, 1)``."""
    if name.startswith("sin"):
        return torch.sin(int(name[3:]) * math.pi * x[:, :1])
    if name == "abs":
        return x[:, :1].abs()
    if name == "step":
        return (x[:, :1] > 0).to(x.dtype)
    if name == "sawtooth":
        t = (x[:, :1] + 1) / 2
        for _ in range(3):
            t = 2 * torch.minimum(t, 1 - t)
        return t
    if name == "checkerboard":
        cells = torch.floor(2 * (x + 1)).clamp(0, 3)  # 4 cells per side
        return ((cells[:, 0] + cells[:, 1]) % 2 == 0).to(x.dtype)[:, None]
    raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")


def affine_floor(name: str) -> float:
    """The error (relative to ``Var f``) of the best affine fit ``a + w . x`` to target
    ``name`` under the uniform input law: what any network with the identity activation can
    reach at best, whatever its depth and width. Least squares on a midpoint grid (20001 points;
    201 x 201 in 2-D), in float64."""
    t = TARGETS[name]
    n = 20001 if t.dim == 1 else 201
    g = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 - 1
    x = g[:, None] if t.dim == 1 else torch.cartesian_prod(g, g)
    y = target_values(name, x)
    design = torch.cat([torch.ones(len(x), 1, dtype=torch.float64), x], 1)
    coef = torch.linalg.lstsq(design, y).solution
    resid = (y - design @ coef).square().mean().item()
    return resid / y.var(correction=0).item()


@dataclass(frozen=True)
class Config:
    """Settings of the capacity experiment."""

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
    targets: tuple[str, ...] = ("sin1", "sin4", "abs", "step", "sawtooth", "checkerboard")
    """Targets (sin1, sin2, sin4, sin8, abs, step, sawtooth, checkerboard)."""
    depths: tuple[int, ...] = (1, 2, 4)
    """Numbers of hidden layers D."""
    widths: tuple[int, ...] = (8, 16, 32)
    """Widths N (units per hidden layer)."""
    seeds: int = 5
    """Seeds; seed s gives every activation, target and rate of one shape the same weights."""
    steps: int = 300
    """Full-batch Adam steps."""
    lr_grid: tuple[float, ...] = (0.003, 0.01, 0.03)
    """Learning rates tried; each (activation, target) keeps the best on validation."""
    tune_depth: int = 2
    """Depth of the shape at which rates are tuned (one of depths)."""
    tune_width: int = 16
    """Width of the shape at which rates are tuned (one of widths)."""
    tune_all_shapes: bool = False
    """Tune the rate at every shape (costs len(lr_grid) times more) instead of at one."""
    lr_extend: int = 2
    """Extension rounds: while an (activation, target)'s pick is at an edge of its grid, one
    more rate a factor LR_FACTOR beyond that edge is tried, at most this many times (0: never)."""
    n_train: int = 64
    """Training points of a 1-D target, per seed."""
    n_train_2d: int = 256
    """Training points of a 2-D target, per seed."""
    n_val: int = 256
    """Validation points (used only to pick the rate)."""
    n_test: int = 256
    """Test points on which the reported errors are measured."""
    curve_points: int = 201
    """Points of the dense grid on which seed 0's fits are drawn."""
    region_depths: tuple[int, ...] = (1, 2, 4, 8)
    """Depths of the ReLU networks whose regions are counted at initialisation."""
    region_widths: tuple[int, ...] = (8, 16, 32, 64)
    """Widths of those networks."""
    region_nets: int = 20
    """Networks per (depth, width) of that count."""
    region_sigma_b2: float = 1.0
    """sigma_b^2 of those networks (with sigma_b^2 = 0 every first-layer kink sits at x = 0)."""
    init: str = "torch"
    """Initialisation of the trained networks (torch, xavier, he)."""
    data_seed: int = 0
    """Seed from which every data draw is derived."""
    device: str = "cpu"
    """Where the trained ensembles and their data live (cpu, cuda, cuda:N); the results are the
    same to float rounding. Regions are counted on the CPU."""

    def __post_init__(self) -> None:
        check_config(self)
        for key in (
            "activations",
            "targets",
            "depths",
            "widths",
            "lr_grid",
            "region_depths",
            "region_widths",
        ):
            value = getattr(self, key)
            object.__setattr__(
                self, key, (value,) if isinstance(value, (str, int, float)) else tuple(value)
            )
        check_activations(self, "activations")
        if not self.activations or len(set(self.activations)) != len(self.activations):
            raise ValueError(f"activations must be distinct and non-empty, got {self.activations}")
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError(
                f"targets must be distinct names among {', '.join(TARGETS)}, got {self.targets}"
            )
        for key in ("depths", "widths", "region_depths", "region_widths"):
            value = getattr(self, key)
            if (
                not value
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
                or len(set(value)) != len(value)
            ):
                raise ValueError(f"{key} must be distinct integers >= 1, got {value}")
            object.__setattr__(self, key, tuple(sorted(value)))
        check_ints(self, {"seeds": 2, "steps": 1, "n_train": 1, "n_train_2d": 1})
        check_ints(self, {"n_val": 1, "n_test": 1, "curve_points": 2, "region_nets": 1})
        check_ints(self, {"data_seed": 0, "tune_depth": 1, "tune_width": 1, "lr_extend": 0})
        if not self.lr_grid or not all(
            isinstance(v, float | int) and not isinstance(v, bool) and LR_MIN <= v <= LR_MAX
            for v in self.lr_grid
        ):
            raise ValueError(f"lr_grid must be rates in [{LR_MIN}, {LR_MAX}], got {self.lr_grid}")
        object.__setattr__(self, "lr_grid", tuple(sorted({float(v) for v in self.lr_grid})))
        if self.tune_depth not in self.depths:
            raise ValueError(f"tune_depth must be one of depths {self.depths}")
        if self.tune_width not in self.widths:
            raise ValueError(f"tune_width must be one of widths {self.widths}")
        if not isinstance(self.tune_all_shapes, bool):
            raise ValueError(f"tune_all_shapes must be true or false, got {self.tune_all_shapes}")
        if not (isinstance(self.region_sigma_b2, float | int) and self.region_sigma_b2 > 0):
            raise ValueError(f"region_sigma_b2 must be > 0, got {self.region_sigma_b2!r}")
        check_choice(self, "init", PLAIN_INITS)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Every (depth, width), depth outermost."""
        return [(d, w) for d in self.depths for w in self.widths]

    @property
    def tune_shape(self) -> tuple[int, int]:
        return (self.tune_depth, self.tune_width)


def n_params(in_dim: int, depth: int, width: int, out: int = 1) -> int:
    """``|theta|`` of an MLP ``in_dim -> width x depth -> out`` (weights and biases)."""
    sizes = [in_dim] + [width] * depth + [out]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def matched_pairs(
    shapes: list[tuple[int, int]], in_dim: int, tol: float = MATCH_TOL
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Pairs ``(shallower, deeper)`` of shapes with different depths whose ``|theta|`` differ by
    at most the factor ``tol``; each shape in at most one pair, the closest pairs (in
    ``|log |theta|_a - log |theta|_b|``) taken first, ties by the shallower shape's order."""
    cand = []
    for i, a in enumerate(shapes):
        for b in shapes[i + 1 :]:
            if a[0] == b[0]:
                continue
            lo, hi = sorted((a, b))
            pa, pb = n_params(in_dim, *lo), n_params(in_dim, *hi)
            gap = abs(math.log(pa / pb))
            if gap <= math.log(tol) + 1e-12:
                cand.append((gap, lo, hi))
    used: set[tuple[int, int]] = set()
    out = []
    for _, lo, hi in sorted(cand):
        if lo not in used and hi not in used:
            used |= {lo, hi}
            out.append((lo, hi))
    return sorted(out)


def draw_inputs(cfg: Config, dim: int, seed: int, part: str) -> torch.Tensor:
    """Inputs ``(n, dim)`` float64, uniform on ``[-1, 1]^dim``, of ``part`` (train, val, test)
    for ``seed``: one independent stream per (dimension, seed, part)."""
    n = {"train": cfg.n_train if dim == 1 else cfg.n_train_2d, "val": cfg.n_val}.get(
        part, cfg.n_test
    )
    gen = torch.Generator().manual_seed(derive_seed(cfg.data_seed, "capacity", dim, seed, part))
    return torch.rand(n, dim, generator=gen, dtype=torch.float64) * 2 - 1


def members(
    cfg: Config,
    shape: tuple[int, int],
    rates: dict[tuple[str, str], tuple[float, ...]] | None,
) -> pd.DataFrame:
    """Rows ``depth, width, activation, target, lr, seed`` of one shape: every rate of
    ``lr_grid`` for every (activation, target) when ``rates`` is None, else the rates
    ``rates[activation, target]`` of the arms it lists. Targets of dimension 1 first, then 2;
    within a dimension activation outermost (one engine slice each)."""
    rows = [
        (*shape, act, tgt, lr, seed)
        for dim in (1, 2)
        for act in cfg.activations
        for tgt in cfg.targets
        if TARGETS[tgt].dim == dim and (rates is None or (act, tgt) in rates)
        for lr in (cfg.lr_grid if rates is None else rates[act, tgt])
        for seed in range(cfg.seeds)
    ]
    return pd.DataFrame(rows, columns=["depth", "width", "activation", "target", "lr", "seed"])


def _relu_pieces(model: EnsembleMLP, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact regions and linear pieces along ``[-1, 1]`` of members ``idx`` (all ReLU)."""
    if len(idx) == 0:
        return np.empty(0), np.empty(0)
    layers = [
        [
            (model.weight(k)[m].detach().double().cpu(), model.bias(k)[m].detach().double().cpu())
            for k in range(model.n_layers)
        ]
        for m in idx
    ]
    found = count_pieces(ensemble_from_layers(layers, "relu"), [-1.0], [1.0])
    return found.regions.numpy().astype(float), found.pieces.numpy().astype(float)


def _train_shape(cfg: Config, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Train the members ``table`` (one shape; 1-D targets first) in one ensemble per input
    dimension; per-member arrays in the order of ``table``."""
    table = table.reset_index(drop=True)
    (depth,), (width,) = set(table.depth), set(table.width)
    E = len(table)
    out = {k: np.full(E, np.nan) for k in ("train_mse", "val_mse", "test_mse", "regions_init")} | {
        k: np.full(E, np.nan) for k in ("pieces_init", "regions_end", "pieces_end")
    }
    out["diverged_step"] = np.full(E, -1, dtype=np.int64)
    out["curve"] = np.full((E, cfg.curve_points), np.nan)
    dims = table.target.map(lambda t: TARGETS[t].dim).to_numpy()
    grid = torch.linspace(-1, 1, cfg.curve_points, dtype=torch.float64)[:, None]
    for dim in (1, 2):
        rows = np.flatnonzero(dims == dim)
        if len(rows) == 0:
            continue
        sub = table.iloc[rows]
        seeds = sorted(set(sub.seed))
        x = {p: {s: draw_inputs(cfg, dim, s, p) for s in seeds} for p in ("train", "val", "test")}

        def stack(part: str, sub=sub, x=x):
            xs = torch.stack([x[part][s] for s in sub.seed])
            ys = torch.stack(
                [target_values(t, x[part][s]) for t, s in zip(sub.target, sub.seed, strict=True)]
            )
            return xs.float().to(cfg.device), ys.float().to(cfg.device)

        model = EnsembleMLP(
            dim,
            [width] * depth,
            1,
            list(sub.activation),
            list(sub.seed),
            init=cfg.init,
            device=cfg.device,
        )
        relu = np.flatnonzero((sub.activation == "relu").to_numpy()) if dim == 1 else []
        out["regions_init"][rows[relu]], out["pieces_init"][rows[relu]] = _relu_pieces(model, relu)
        xt, yt = stack("train")
        result = train(
            model,
            xt,
            yt,
            TrainConfig(epochs=cfg.steps, loss="mse", optimizer=OptimizerConfig(name="adam")),
            lr=list(sub.lr),
        )
        diverged = result.diverged_step.numpy()
        out["diverged_step"][rows] = diverged
        with torch.no_grad():
            for part in ("train", "val", "test"):
                xs, ys = stack(part)
                mse = (model(xs) - ys).double().square().mean((1, 2)).cpu().numpy()
                out[f"{part}_mse"][rows] = np.where(diverged >= 0, np.nan, mse)
            if dim == 1:
                curve = model(grid.float().to(cfg.device)).double()[..., 0].cpu().numpy()
                first = (sub.seed == 0).to_numpy()
                out["curve"][rows[first]] = curve[first]
        out["regions_end"][rows[relu]], out["pieces_end"][rows[relu]] = _relu_pieces(model, relu)
    return out


def pick_rates(
    table: pd.DataFrame, val_mse: np.ndarray, keys: tuple[str, ...] = ("activation", "target")
) -> dict[tuple, GridDecision]:
    """Per group of ``keys``, the rate with the lowest mean over seeds of ``log10`` validation
    MSE (:func:`actlab.tuning.grid_step`); a rate at which some seed diverged (NaN) or ended
    non-finite is never picked. ``val_mse`` is per row of ``table``."""
    scores: dict[tuple, dict[float, float]] = {}
    logv = np.log10(np.where(val_mse > 0, val_mse, np.nan))
    for key, grp in table.groupby(list(keys), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        arm = scores.setdefault(key, {})
        for lr, rows in grp.groupby("lr"):
            v = logv[rows.index.to_numpy()]
            arm[float(lr)] = float(v.mean()) if np.isfinite(v).all() else math.nan
    return grid_step(scores, factor=LR_FACTOR, lr_min=LR_MIN, lr_max=LR_MAX)


def _region_sweep(cfg: Config) -> dict[str, np.ndarray]:
    """Exact regions along ``[-1, 1]`` of ``region_nets`` ReLU networks per (depth, width) at a
    Gaussian initialisation, the first layer's exact expectation, the sawtooth's counts."""
    D, W, S = len(cfg.region_depths), len(cfg.region_widths), cfg.region_nets
    regions, pieces = np.empty((D, W, S)), np.empty((D, W, S))
    for i, depth in enumerate(cfg.region_depths):
        for j, width in enumerate(cfg.region_widths):
            seeds = [
                derive_seed(cfg.data_seed, "capacity-regions", depth, width, s) for s in range(S)
            ]
            model = EnsembleMLP(
                1,
                [width] * depth,
                1,
                "relu",
                seeds,
                init="mean_field",
                sigma_w2=REGION_SIGMA_W2,
                sigma_b2=float(cfg.region_sigma_b2),
                dtype=torch.float64,
            )
            found = count_pieces(model, [-1.0], [1.0])
            regions[i, j], pieces[i, j] = found.regions.numpy(), found.pieces.numpy()
    first = np.array(
        [
            expected_first_layer_breakpoints(
                [-1.0], [1.0], w, "relu", REGION_SIGMA_W2, float(cfg.region_sigma_b2)
            )
            for w in cfg.region_widths
        ]
    )
    saw_depths = np.arange(1, max(cfg.region_depths) + 1)
    saw = []
    for d in saw_depths:
        net = ensemble_from_layers([sawtooth_network(int(d))], "relu")
        saw.append(int(count_pieces(net, [0.0], [1.0]).pieces[0]))
    return {
        "region_counts": regions,
        "region_pieces": pieces,
        "first_layer_breakpoints": first,
        "sawtooth_depth": saw_depths.astype(float),
        "sawtooth_pieces": np.array(saw, dtype=float),
    }


def _work(cfg: Config, table: pd.DataFrame) -> int:
    """Trainer steps of one chunk: ``steps`` per input dimension present."""
    return cfg.steps * len({TARGETS[t].dim for t in table.target})


def _cat(parts: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _tune(cfg: Config, shape: tuple[int, int], chunks: ChunkRunner):
    """Train every rate of the grid at ``shape``, then widen each (activation, target)'s grid
    where its pick is at an edge (:func:`actlab.tuning.grid_step`, up to ``lr_extend`` rounds,
    one chunk per new rate with only the arms that need it). Returns the members, their arrays
    and the decisions."""
    key = f"shape-d{shape[0]}-w{shape[1]}"
    table = members(cfg, shape, None)
    parts = [chunks(key, lambda: _train_shape(cfg, table), work=_work(cfg, table))]
    decisions = pick_rates(table, parts[0]["val_mse"])
    for round_ in range(1, cfg.lr_extend + 1):
        wanted = rates_to_try(decisions)
        if not wanted:
            break
        for rate, arms in sorted(wanted.items()):
            sub = members(cfg, shape, {arm: (rate,) for arm in arms})
            progress.expect(_work(cfg, sub))  # more work, announced before it starts
            parts.append(
                chunks(
                    f"{key}-extend{round_}-lr{rate:.6g}",
                    lambda sub=sub: _train_shape(cfg, sub),
                    work=_work(cfg, sub),
                )
            )
            table = pd.concat([table, sub], ignore_index=True)
        decisions = pick_rates(table, _cat(parts)["val_mse"])
    return table, _cat(parts), decisions


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Train every shape's members (one chunk per shape, plus one per extra rate where a grid is
    widened; the tuning shape first when rates are tuned at one shape), pick each (activation,
    target)'s rate on validation, count ReLU regions; no file I/O."""
    dims = {TARGETS[t].dim for t in cfg.targets}
    progress.expect(cfg.steps * len(dims) * len(cfg.shapes) + 1)
    order = cfg.shapes
    if not cfg.tune_all_shapes:
        order = [cfg.tune_shape] + [s for s in cfg.shapes if s != cfg.tune_shape]
    tables, parts, picked = {}, {}, {}
    for shape in order:
        if cfg.tune_all_shapes or shape == cfg.tune_shape:
            tables[shape], parts[shape], picked[shape] = _tune(cfg, shape, chunks)
            continue
        shared = picked[cfg.tune_shape]
        rates = {
            k: (d.pick if d.pick is not None else min(cfg.lr_grid),) for k, d in shared.items()
        }
        table = members(cfg, shape, rates)
        tables[shape], picked[shape] = table, shared
        parts[shape] = chunks(
            f"shape-d{shape[0]}-w{shape[1]}",
            lambda table=table: _train_shape(cfg, table),
            work=_work(cfg, table),
        )
    sweep = chunks("regions-init", lambda: _region_sweep(cfg), work=1)

    table = pd.concat([tables[s] for s in order], ignore_index=True)
    table.insert(0, "member", np.arange(len(table)))
    keys = ("train_mse", "val_mse", "test_mse", "diverged_step", "curve")
    keys += ("regions_init", "pieces_init", "regions_end", "pieces_end")
    arrays = {k: np.concatenate([parts[s][k] for s in order]) for k in keys}
    var = table.target.map(lambda t: TARGETS[t].variance).to_numpy()
    arrays["rel_error"] = arrays["test_mse"] / var
    arrays |= sweep
    decisions = {(*shape, a, t): d for shape in cfg.shapes for (a, t), d in picked[shape].items()}
    axes = {k: ("member",) for k in keys if k != "curve"} | {"rel_error": ("member",)}
    axes |= {"curve": ("member", "point")}
    axes |= {k: ("depth", "width", "net") for k in ("region_counts", "region_pieces")}
    axes |= {"first_layer_breakpoints": ("width",), "sawtooth_depth": ("depth",)}
    axes |= {"sawtooth_pieces": ("depth",)}
    coords = {
        "curve/point": np.linspace(-1, 1, cfg.curve_points).tolist(),
        "region_counts/depth": list(cfg.region_depths),
        "region_counts/width": list(cfg.region_widths),
        "region_pieces/depth": list(cfg.region_depths),
        "region_pieces/width": list(cfg.region_widths),
        "first_layer_breakpoints/width": list(cfg.region_widths),
    }
    metrics = _metrics(cfg, table, arrays)
    return Results(metrics, arrays, axes, coords, _summary(cfg, table, arrays, decisions))


def _metrics(cfg: Config, table: pd.DataFrame, arrays: dict) -> pd.DataFrame:
    frames = []
    for key, metric, step in (
        ("train_mse", "train/mse", cfg.steps),
        ("val_mse", "val/mse", cfg.steps),
        ("test_mse", "test/mse", cfg.steps),
        ("rel_error", "test/rel_error", cfg.steps),
        ("regions_init", "regions/count", 0),
        ("pieces_init", "regions/pieces", 0),
        ("regions_end", "regions/count", cfg.steps),
        ("pieces_end", "regions/pieces", cfg.steps),
    ):
        v = arrays[key]
        keep = np.isfinite(v) if key.startswith(("regions", "pieces")) else np.ones(len(v), bool)
        frames.append(
            pd.DataFrame(
                {"member": table.member[keep], "step": step, "metric": metric, "value": v[keep]}
            )
        )
    return pd.concat(frames, ignore_index=True).merge(table, on="member")


# ---------------------------------------------------------------------------------- summary


def verdict(samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """Rank groups by the mean of their (``log10`` error) samples, lowest first; split the others
    into those within noise of the best and those that differ from it (paired t-test, 5%: the
    samples are aligned by seed, and within a seed every activation saw the same data and
    started from the same weights). Groups with no finite sample rank last and are neither."""
    means = {
        a: float(np.nanmean(v)) if np.isfinite(v).any() else math.inf for a, v in samples.items()
    }
    order = sorted(samples, key=lambda a: means[a])
    best = order[0]
    tied = [
        a
        for a in order[1:]
        if means[a] < math.inf and not paired_differs(samples[best], samples[a])
    ]
    return {
        "ranking": order,
        "best": best,
        "tied_with_best": tied,
        "differs_from_best": [a for a in order[1:] if a not in tied],
        "means": {a: means[a] for a in order},
    }


def pair_outcome(shallow: np.ndarray, deep: np.ndarray) -> str:
    """``"deeper"`` or ``"shallower"``: which of a matched pair has the lower mean ``log10``
    error over the seeds where both are finite, where the paired t-test separates them at 5%
    (the samples are aligned by seed: both shapes saw that seed's data draw); else
    ``"within noise"``."""
    if not paired_differs(shallow, deep):
        return "within noise"
    keep = np.isfinite(shallow) & np.isfinite(deep)
    return "deeper" if np.mean(deep[keep] - shallow[keep]) < 0 else "shallower"


def _log_err(arrays: dict, idx: np.ndarray) -> np.ndarray:
    v = arrays["rel_error"][idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.where(v > 0, v, np.nan))


def _summary(cfg: Config, table: pd.DataFrame, arrays: dict, decisions: dict) -> dict[str, Any]:
    def group(shape, act, tgt) -> np.ndarray:
        lr = decisions[(*shape, act, tgt)].pick
        lr = cfg.lr_grid[0] if lr is None else lr
        sel = (table.depth == shape[0]) & (table.width == shape[1])
        sel &= (table.activation == act) & (table.target == tgt) & np.isclose(table.lr, lr)
        # ordered by seed, so that paired tests compare the same seed's networks
        return table[sel].sort_values("seed", kind="stable").member.to_numpy()

    cells = []
    for tgt in cfg.targets:
        dim = TARGETS[tgt].dim
        for act in cfg.activations:
            for shape in cfg.shapes:
                idx = group(shape, act, tgt)
                d = decisions[(*shape, act, tgt)]
                cells.append(
                    {
                        "target": tgt,
                        "activation": act,
                        "depth": shape[0],
                        "width": shape[1],
                        "params": n_params(dim, *shape),
                        "lr": d.pick,
                        "lr_status": d.status,
                        "lr_status_text": status_text(d),
                        "log10_error": mean_ci(_log_err(arrays, idx)),
                        "diverged": int((arrays["diverged_step"][idx] >= 0).sum()),
                        "n": len(idx),
                    }
                )
    verdicts = []
    for tgt in cfg.targets:
        for shape in cfg.shapes:
            samples = {a: _log_err(arrays, group(shape, a, tgt)) for a in cfg.activations}
            verdicts.append(
                {"target": tgt, "depth": shape[0], "width": shape[1], **verdict(samples)}
            )
    pairs, pair_verdicts = {}, []
    for dim in sorted({TARGETS[t].dim for t in cfg.targets}):
        pairs[dim] = matched_pairs(cfg.shapes, dim)
    for tgt in cfg.targets:
        dim = TARGETS[tgt].dim
        for lo, hi in pairs[dim]:
            for act in cfg.activations:
                a, b = _log_err(arrays, group(lo, act, tgt)), _log_err(arrays, group(hi, act, tgt))
                pair_verdicts.append(
                    {
                        "target": tgt,
                        "activation": act,
                        "shallow": list(lo),
                        "deep": list(hi),
                        "params": [n_params(dim, *lo), n_params(dim, *hi)],
                        "shallow_error": mean_ci(a),
                        "deep_error": mean_ci(b),
                        "outcome": pair_outcome(a, b),
                        # deeper over shallower, per seed where both are finite (paired)
                        "log10_factor": mean_ci((b - a)[np.isfinite(a) & np.isfinite(b)]),
                    }
                )
    regions = _regions_summary(cfg, table, arrays, group)
    # A rate tuned at one shape, used at the largest: where is the error there significantly
    # higher than at the tuning shape, although the larger network could represent more?
    big = (max(cfg.depths), max(cfg.widths))
    worse_at_big = []
    if not cfg.tune_all_shapes and big != cfg.tune_shape:
        for tgt in cfg.targets:
            for act in cfg.activations:
                at_tune = _log_err(arrays, group(cfg.tune_shape, act, tgt))
                at_big = _log_err(arrays, group(big, act, tgt))
                if pair_outcome(at_tune, at_big) == "shallower":
                    worse_at_big.append([act, tgt])
    tuned_shapes = cfg.shapes if cfg.tune_all_shapes else [cfg.tune_shape]
    lr_decisions = []
    for shape in tuned_shapes:
        for act in cfg.activations:
            for tgt in cfg.targets:
                d = decisions[(*shape, act, tgt)]
                sel = (table.depth == shape[0]) & (table.width == shape[1])
                sel &= (table.activation == act) & (table.target == tgt)
                lr_decisions.append(
                    {
                        "activation": act,
                        "target": tgt,
                        "depth": shape[0],
                        "width": shape[1],
                        "pick": d.pick,
                        "status": d.status,
                        "status_text": status_text(d),
                        "tried": sorted(float(v) for v in set(table.lr[sel])),
                    }
                )
    tuned = {
        f"{a}|{t}": decisions[(*cfg.tune_shape, a, t)].pick
        for a in cfg.activations
        for t in cfg.targets
    }
    return {
        "cells": cells,
        "verdicts": verdicts,
        "pairs": {str(k): [[list(a), list(b)] for a, b in v] for k, v in pairs.items()},
        "pair_verdicts": pair_verdicts,
        "regions": regions,
        "tuned_lr": tuned,
        "lr_decisions": lr_decisions,
        "worse_at_largest": worse_at_big,
        "lr_edges": sum(d["status"] != "interior" for d in lr_decisions),
        "lr_cells": len(lr_decisions),
        "lr_tried": sorted({float(v) for v in table.lr}),
        "lr_extend": cfg.lr_extend,
        "lr_factor": LR_FACTOR,
        "activations": list(cfg.activations),
        "targets": list(cfg.targets),
        "target_labels": {t: TARGETS[t].label for t in cfg.targets},
        "target_pieces": {t: TARGETS[t].pieces for t in cfg.targets},
        "target_dims": {t: TARGETS[t].dim for t in cfg.targets},
        "affine_floor": {t: affine_floor(t) for t in cfg.targets},
        "depths": list(cfg.depths),
        "widths": list(cfg.widths),
        "seeds": cfg.seeds,
        "steps": cfg.steps,
        "lr_grid": list(cfg.lr_grid),
        "tune_shape": list(cfg.tune_shape),
        "tune_all_shapes": cfg.tune_all_shapes,
        "n_train": cfg.n_train,
        "n_train_2d": cfg.n_train_2d,
        "n_val": cfg.n_val,
        "n_test": cfg.n_test,
        "init": cfg.init,
        "diverged": int((arrays["diverged_step"] >= 0).sum()),
        "members": len(table),
        "region_depths": list(cfg.region_depths),
        "region_widths": list(cfg.region_widths),
        "region_nets": cfg.region_nets,
        "region_sigma_w2": REGION_SIGMA_W2,
        "region_sigma_b2": float(cfg.region_sigma_b2),
    }


def _regions_summary(cfg: Config, table: pd.DataFrame, arrays: dict, group) -> dict[str, Any]:
    """Regions at initialisation against depth and width (Gaussian sweep, with the first layer's
    exact expectation and the count per neuron), the sawtooth, and the trained ReLU nets."""
    counts = arrays["region_counts"]  # (depth, width, net)
    rows = []
    for i, depth in enumerate(cfg.region_depths):
        for j, width in enumerate(cfg.region_widths):
            c = counts[i, j]
            rows.append(
                {
                    "depth": depth,
                    "width": width,
                    "neurons": depth * width,
                    "regions": mean_ci(c, bounds=(1.0, math.inf)),
                    "per_neuron": mean_ci((c - 1) / (depth * width), bounds=(0.0, math.inf)),
                }
            )
    first = {
        w: 1.0 + float(arrays["first_layer_breakpoints"][j])
        for j, w in enumerate(cfg.region_widths)
    }
    depth1 = []
    if 1 in cfg.region_depths:
        i = cfg.region_depths.index(1)
        for j, w in enumerate(cfg.region_widths):
            m = mean_ci(counts[i, j], bounds=(1.0, math.inf))
            depth1.append({"width": w, "measured": m, "expected": first[w]})
    # Per-neuron rate at the shallowest and the deepest depth, pooled over widths.
    rate = {
        d: mean_ci(((counts[i] - 1) / (d * np.array(cfg.region_widths))[:, None]).reshape(-1))
        for i, d in enumerate(cfg.region_depths)
    }
    lo, hi = cfg.region_depths[0], cfg.region_depths[-1]
    rate_lo = ((counts[0] - 1) / (lo * np.array(cfg.region_widths))[:, None]).reshape(-1)
    rate_hi = ((counts[-1] - 1) / (hi * np.array(cfg.region_widths))[:, None]).reshape(-1)
    trained = []
    if "relu" in cfg.activations:
        for tgt in cfg.targets:
            if TARGETS[tgt].dim != 1:
                continue
            for shape in cfg.shapes:
                idx = group(shape, "relu", tgt)
                ok = arrays["diverged_step"][idx] < 0
                init, end = arrays["pieces_init"][idx][ok], arrays["pieces_end"][idx][ok]
                ratio = np.log10(end / init)
                trained.append(
                    {
                        "target": tgt,
                        "depth": shape[0],
                        "width": shape[1],
                        "neurons": shape[0] * shape[1],
                        "pieces_init": mean_ci(init),
                        "pieces_end": mean_ci(end),
                        "log10_ratio": mean_ci(ratio),
                        "more": int((end > init).sum()),
                        "n": int(ok.sum()),
                        "more_share": proportion_ci(int((end > init).sum()), int(ok.sum())),
                    }
                )
    # Telgarsky's construction for 3 layers, its input mapped from [-1, 1] to [0, 1]: the
    # sawtooth target exactly, from 6 ReLU units.
    layers = sawtooth_network(3)
    (w0, b0), rest = layers[0], layers[1:]
    net = ensemble_from_layers([[(w0 / 2, b0 + w0[:, 0] / 2), *rest]], "relu")
    x = torch.linspace(-1, 1, 4001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        gap = (net(x)[0] - target_values("sawtooth", x)).abs().max().item()
    construction = {
        "units": 6,
        "pieces": int(count_pieces(net, [-1.0], [1.0]).pieces[0]),
        "max_error": gap,
    }
    deep, narrow = cfg.region_depths[-1], cfg.region_widths[0]
    return {
        "construction": construction,
        "deep_narrow": {
            "depth": deep,
            "width": narrow,
            "regions": mean_ci(counts[-1, 0], bounds=(1.0, math.inf)),
        },
        "init": rows,
        "depth1": depth1,
        "rate": {str(d): v for d, v in rate.items()},
        "rate_differs": bool(welch_differs(rate_lo, rate_hi)) if lo != hi else False,
        "rate_depths": [lo, hi],
        "sawtooth": {
            "depth": [int(d) for d in arrays["sawtooth_depth"]],
            "pieces": [int(p) for p in arrays["sawtooth_pieces"]],
        },
        "trained": trained,
    }


SMOKE = Config(
    activations=("identity", "tanh", "relu"),
    targets=("sin1", "abs", "checkerboard"),
    depths=(1, 2),
    widths=(4, 8),
    seeds=2,
    steps=30,
    lr_grid=(0.01, 0.03),
    tune_depth=1,
    tune_width=8,
    n_train=32,
    n_train_2d=64,
    n_val=64,
    n_test=64,
    curve_points=41,
    region_depths=(1, 2),
    region_widths=(4, 8),
    region_nets=3,
)
DEFAULT = Config()
FULL = Config(
    targets=("sin1", "sin2", "sin4", "sin8", "abs", "step", "sawtooth", "checkerboard"),
    depths=(1, 2, 4, 8),
    widths=(8, 16, 32, 64, 128),
    seeds=10,
    steps=3000,
    lr_grid=(0.0003, 0.001, 0.003, 0.01, 0.03),
    tune_all_shapes=True,
    n_train=256,
    n_train_2d=1024,
    n_val=1024,
    n_test=1024,
    region_nets=100,
)

presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
