"""Tiny classifiers: the classic PyTorch lesson (a 2 -> 8 -> 2 network per activation, Adam,
cross-entropy), done honestly.

* Tasks (:mod:`actlab.data`): the lesson's linearly separable ``x_1 + x_2 > 0`` (100 points) and
  three on which activations can differ: XOR-like quadrants, two moons, concentric circles. Each
  seed draws its own training, validation and held-out sets (unless ``resample_data=False``).
* Members: every (depth, task, activation, learning rate, seed); members with the same seed and
  depth start from the same weights whatever their activation and task. One chunk per depth trains
  all its members in one ensemble pass, each on its own task's data (``x`` of shape ``(E, n, 2)``).
  Depth 1 is the lesson's network; it is also trained at every rate of ``lr_grid`` so that each
  activation's rate can be tuned on the validation draw. Where a (task, activation)'s pick is at
  an edge of its grid, the grid is widened (:func:`actlab.tuning.grid_step`, up to ``lr_extend``
  rounds, one chunk ``extend{round}-lr{rate}`` per new rate holding only the members that need
  it); the summary says which picks still sit at a bound. Deeper nets (hidden layers of the same
  width) use the shared rate and test the lesson's "vanishing gradients in deep nets" claim where
  it applies.
* Measured: training loss every epoch; held-out loss and accuracy every ``eval_every`` epochs;
  the mean ``|dL/dW|`` of the first layer at every step (full batch: one step per epoch), of the
  last hidden layer and the output layer too, and of every layer at the probe epochs (at the last
  epoch: the gradient at the final weights, which no update follows); at initialisation, per
  hidden layer, the spread of the pre-activations over the training inputs and the mean
  ``|dL/dz|`` (the backward signal); dead / inactive / saturated / dormant hidden units and the
  per-input saturated share on the held-out inputs at the probe epochs; the class-1 probability
  on a grid (decision boundaries) for the lesson's network at the shared rate.

Metric keys (tidy table; member columns ``depth, task, activation, lr, seed``, plus ``layer``):
``train/loss`` (step = epoch, 0..epochs: loss after that many updates), ``test/loss``,
``test/accuracy`` (at the evaluation epochs), ``val/accuracy``, ``val/loss``, ``train/accuracy``
(final epoch), ``grad/weight_mean_abs`` (layer 1, per step), and the probe keys of
:data:`UNIT_METRICS` per hidden layer at the probe epochs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress
from actlab.activations import get_activation
from actlab.data import BOUNDS, TASKS, make_split
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
from actlab.probes import ensemble_activation_metrics
from actlab.seeding import derive_seed
from actlab.stats import mean_ci, paired_by_seed, paired_differs
from actlab.train import Callback, StepState, TrainConfig, train
from actlab.tuning import GridDecision, grid_step, rates_to_try, status_text

__all__ = [
    "Config",
    "run",
    "members",
    "task_data",
    "UNIT_METRICS",
    "LR_FACTOR",
    "init_weight_var",
    "predicted_spread_factor",
    "n_parameters",
    "tail_epochs",
    "paired_by_seed",
]

UNIT_METRICS = (
    "act/off_fraction",
    "act/saturated_fraction",
    "act/dormant_fraction",
    "act/saturated_pair_fraction",
)
"""Hidden-unit probes (see :mod:`actlab.probes`): ``off_fraction`` is the dead fraction (output
exactly 0 on every held-out input) for ReLU-like units and the inactive fraction (pre-activation
< 0 on every input) for LeakyReLU-like ones; saturated for bounded ones (tanh: |h| > 0.99,
sigmoid: outside [0.01, 0.99] on every input), and the per-input share: the share of (unit,
input) pairs in that band; ReDo 0.025-dormant for all. NaN where a notion does not apply."""

LR_FACTOR = 3.0
"""Step of a grid extension: one more rate this factor beyond the edge of the grid."""
TAIL_FRACTION = 0.1
"""The end-of-training check compares the training loss at the last epoch with the loss this
fraction of the epochs earlier."""
FLAT_THRESHOLD = 0.05
"""A training loss is *still falling* at the end when it fell by more than this fraction over
the last :func:`tail_epochs` epochs (mean over seeds, the whole interval below 0), *flat* when the
whole interval of the change lies within this fraction of 0 (the report's ``end_state``)."""


@dataclass(frozen=True)
class Config:
    """Settings of the tiny-classifier lesson."""

    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu", "leaky_relu")
    """Activations compared (any registry name)."""
    tasks: tuple[str, ...] = TASKS
    """Tasks (see actlab.data): linear, xor, moons, circles."""
    seeds: int = 10
    """Seeds; seed s gives every activation and task the same initial weights (per depth)."""
    width: int = 8
    """Units per hidden layer (the lesson: 8)."""
    depths: tuple[int, ...] = (1, 4, 8)
    """Numbers of hidden layers; 1 (the lesson's 2 -> 8 -> 2 network) must be one of them."""
    epochs: int = 300
    """Full-batch Adam steps."""
    lr: float = 0.01
    """The learning rate shared by every activation (and used at every depth)."""
    lr_grid: tuple[float, ...] = (0.003, 0.03)
    """Other rates tried at depth 1, to tune each activation's rate on the validation draw."""
    lr_min: float = 1e-4
    """Smallest rate the grid may be extended to (a pick there is reported as at a bound)."""
    lr_max: float = 0.3
    """Largest rate the grid may be extended to (a pick there is reported as at a bound)."""
    lr_extend: int = 2
    """Extension rounds: while a (task, activation)'s pick is at an edge of its grid, one more
    rate a factor LR_FACTOR beyond that edge is tried, at most this many times (0: never)."""
    n_train: int = 100
    """Training points per task and seed (the lesson: 100)."""
    n_val: int = 500
    """Validation points (used only to pick the tuned learning rate)."""
    n_test: int = 500
    """Held-out points on which accuracy and the unit probes are measured."""
    resample_data: bool = True
    """Draw fresh data for every seed (the intervals then cover the data too); False shares one
    draw per task across seeds."""
    eval_every: int = 10
    """Held-out loss and accuracy every this many epochs (and at the last)."""
    probe_epochs: tuple[int, ...] = (0, 30, 300)
    """Epochs at which hidden units and the per-layer gradients are probed."""
    grid: int = 81
    """Points per side of the grid on which decision boundaries are drawn."""
    init: str = "torch"
    """Weight initialisation (torch, xavier, he)."""
    data_seed: int = 0
    """Seed from which every data draw is derived."""
    device: str = "cpu"
    """Where the ensembles and their data live (cpu, cuda, cuda:N); the results are the same
    to float rounding."""

    def __post_init__(self) -> None:
        check_config(self)
        for key in ("activations", "tasks", "depths", "lr_grid", "probe_epochs"):
            value = getattr(self, key)
            object.__setattr__(
                self, key, (value,) if isinstance(value, (str, int)) else tuple(value)
            )
        check_activations(self, "activations")
        if not self.activations or len(set(self.activations)) != len(self.activations):
            raise ValueError(f"activations must be distinct and non-empty, got {self.activations}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct names among {TASKS}, got {self.tasks}")
        check_ints(self, dict.fromkeys(("seeds", "width", "epochs", "n_train", "n_test"), 1))
        check_ints(self, {"eval_every": 1, "data_seed": 0, "n_val": 0, "grid": 5, "lr_extend": 0})
        if self.lr_grid and self.n_val < 1:
            raise ValueError("n_val must be >= 1 to tune the learning rate over lr_grid")
        if 1 not in self.depths or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.depths
        ):
            raise ValueError(f"depths must be integers >= 1 and include 1, got {self.depths}")
        if len(set(self.depths)) != len(self.depths):
            raise ValueError(f"depths must not repeat, got {self.depths}")
        object.__setattr__(self, "depths", tuple(sorted(self.depths)))
        if not all(
            isinstance(v, float | int) and v > 0 and math.isfinite(v)
            for v in (self.lr, *self.lr_grid)
        ):
            raise ValueError(
                f"lr and lr_grid must be finite and > 0, got {self.lr}, {self.lr_grid}"
            )
        if not (isinstance(self.lr_min, float | int) and 0 < self.lr_min < math.inf):
            raise ValueError(f"lr_min must be a finite number > 0, got {self.lr_min!r}")
        if not (isinstance(self.lr_max, float | int) and self.lr_min <= self.lr_max < math.inf):
            raise ValueError(f"lr_max must be finite and >= lr_min, got {self.lr_max!r}")
        if not all(self.lr_min <= v <= self.lr_max for v in (self.lr, *self.lr_grid)):
            raise ValueError(
                f"lr and lr_grid must lie in [lr_min, lr_max] = [{self.lr_min}, {self.lr_max}]"
            )
        if not self.probe_epochs or any(not 0 <= e <= self.epochs for e in self.probe_epochs):
            raise ValueError(
                f"probe_epochs must lie in [0, {self.epochs}], got {self.probe_epochs}"
            )
        object.__setattr__(self, "probe_epochs", tuple(sorted(set(self.probe_epochs))))
        check_choice(self, "init", PLAIN_INITS)

    @property
    def learning_rates(self) -> tuple[float, ...]:
        """The shared rate and the grid, sorted, without repeats (all tried at depth 1)."""
        return tuple(sorted({self.lr, *self.lr_grid}))

    @property
    def eval_epochs(self) -> tuple[int, ...]:
        """Epochs at which held-out loss and accuracy are measured (0 and the last included)."""
        return tuple(sorted({*range(0, self.epochs + 1, self.eval_every), self.epochs}))


def members(cfg: Config) -> pd.DataFrame:
    """One row per member: ``member, depth, activation, task, lr, seed``. Depths in order; within
    a depth activation outermost (one engine slice each), then task, rate, seed. Depth 1 has
    every rate of :attr:`Config.learning_rates`, deeper nets only ``cfg.lr``."""
    rows = [
        (depth, act, task, lr, seed)
        for depth in cfg.depths
        for act in cfg.activations
        for task in cfg.tasks
        for lr in (cfg.learning_rates if depth == 1 else (cfg.lr,))
        for seed in range(cfg.seeds)
    ]
    table = pd.DataFrame(rows, columns=["depth", "activation", "task", "lr", "seed"])
    table.insert(0, "member", np.arange(len(table)))
    return table


def task_data(cfg: Config, task: str, seed: int):
    """The :class:`actlab.data.Split` that members of ``task`` with ``seed`` train on."""
    draw = seed if cfg.resample_data else 0
    return make_split(
        task,
        derive_seed(cfg.data_seed, "tiny-classifier", draw),
        cfg.n_train,
        cfg.n_test,
        cfg.n_val,
    )


def _grid(cfg: Config, task: str) -> tuple[np.ndarray, np.ndarray]:
    x1lo, x1hi, x2lo, x2hi = BOUNDS[task]
    return np.linspace(x1lo, x1hi, cfg.grid), np.linspace(x2lo, x2hi, cfg.grid)


def _stack(table: pd.DataFrame, splits: dict, part: str, device: str = "cpu") -> torch.Tensor:
    return torch.stack(
        [getattr(splits[t, s], part) for t, s in zip(table.task, table.seed, strict=True)]
    ).to(device)


def _accuracy_and_loss(model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor):
    """Per-member accuracy and mean cross-entropy ``(E,)`` on ``x`` ``(E, n, 2)``."""
    with torch.no_grad():
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.transpose(1, 2), y, reduction="none")
        return (out.argmax(-1) == y).double().mean(1).cpu(), loss.double().mean(1).cpu()


def _init_signals(
    model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Per member and hidden layer ``(E, depth)``: the spread of the pre-activations over the
    inputs ``x`` (standard deviation over inputs, mean over units) and the mean ``|dL/dz|`` (the
    backward signal, ``L`` the member's mean cross-entropy on ``x``), by autograd."""
    flat = model.flat.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out, hidden = model(x, return_hidden=True, flat=flat)
        loss = torch.nn.functional.cross_entropy(out.transpose(1, 2), y, reduction="none")
        zs = [z for z, _ in hidden]
        deltas = torch.autograd.grad(loss.mean(1).sum(), zs)
    spread = torch.stack([z.detach().double().std(1).mean(-1) for z in zs], 1)
    delta = torch.stack([d.double().abs().mean((1, 2)) for d in deltas], 1)
    return spread.cpu().numpy(), delta.cpu().numpy()


def _train(cfg: Config, table: pd.DataFrame, boundary: bool) -> dict[str, np.ndarray]:
    """Train the members ``table`` (rows of :func:`members`, one depth) in one ensemble; arrays
    with the member axis first. ``boundary``: also the class-1 probability on the grid of the
    members at the shared rate (the lesson's network)."""
    table = table.reset_index(drop=True)
    (depth,) = set(table.depth)
    splits = {(t, s): task_data(cfg, t, s) for t in set(table.task) for s in set(table.seed)}
    dev = cfg.device
    x, y = _stack(table, splits, "x_train", dev), _stack(table, splits, "y_train", dev)
    x_test, y_test = _stack(table, splits, "x_test", dev), _stack(table, splits, "y_test", dev)
    model = EnsembleMLP(
        2,
        [cfg.width] * depth,
        2,
        list(table.activation),
        list(table.seed),
        init=cfg.init,
        device=dev,
    )
    E, L, evals, probes = model.E, model.n_layers, cfg.eval_epochs, cfg.probe_epochs
    test_acc, test_loss = np.empty((E, len(evals))), np.empty((E, len(evals)))
    grad_first, grad_output = np.empty((E, cfg.epochs)), np.empty((E, cfg.epochs))
    grad_last_hidden = np.empty((E, cfg.epochs))
    # mean |dL/dW| per layer at each probe epoch (at epoch == epochs: the gradient at the final
    # weights, computed after training since no update follows it)
    grad_layers = np.full((E, len(probes), L), np.nan)
    units = np.empty((E, len(probes), depth, len(UNIT_METRICS)))
    spread_init, delta_init = _init_signals(model, x, y)

    def observe(epoch: int, grad: torch.Tensor) -> None:
        if epoch in evals:
            acc, loss = _accuracy_and_loss(model, x_test, y_test)
            test_acc[:, evals.index(epoch)] = acc.numpy()
            test_loss[:, evals.index(epoch)] = loss.numpy()
        if epoch in probes:
            p = probes.index(epoch)
            stats = ensemble_activation_metrics(model, x_test, ranks=False)
            for k, key in enumerate(UNIT_METRICS):
                units[:, p, :, k] = stats[key].cpu().numpy()
            for layer in range(L):
                grad_layers[:, p, layer] = model.weight(layer, grad).abs().mean((1, 2)).cpu()

    def callback(state: StepState) -> None:
        g = state.grad
        grad_first[:, state.step] = model.weight(0, g).abs().mean((1, 2)).cpu().numpy()
        grad_last_hidden[:, state.step] = model.weight(L - 2, g).abs().mean((1, 2)).cpu().numpy()
        grad_output[:, state.step] = model.weight(L - 1, g).abs().mean((1, 2)).cpu().numpy()
        observe(state.step, g)

    result = train(
        model,
        x,
        y,
        TrainConfig(epochs=cfg.epochs, loss="cross_entropy"),
        lr=list(table.lr),
        callbacks=[Callback(callback, every=1)],
    )
    final_grad = torch.empty_like(model.flat.detach())
    model.loss_and_grad(x, y, "cross_entropy", final_grad)
    observe(cfg.epochs, final_grad)
    train_acc, final_loss = _accuracy_and_loss(model, x, y)
    out = {
        "train_loss": np.concatenate(
            [result.loss.double().numpy().T, final_loss.numpy()[:, None]], 1
        ),
        "train_acc": train_acc.numpy(),
        "test_acc": test_acc,
        "test_loss": test_loss,
        "grad_first": grad_first,
        "grad_last_hidden": grad_last_hidden,
        "grad_output": grad_output,
        "grad_layers": grad_layers,
        "units": units,
        "spread_init": spread_init,
        "delta_init": delta_init,
        "diverged_step": result.diverged_step.numpy(),
    }
    if cfg.n_val:
        val_acc, val_loss = _accuracy_and_loss(
            model, _stack(table, splits, "x_val", dev), _stack(table, splits, "y_val", dev)
        )
        out["val_acc"], out["val_loss"] = val_acc.numpy(), val_loss.numpy()
    if boundary:  # decision boundaries of the lesson's network at the shared rate
        keep = np.flatnonzero(table.lr.to_numpy() == cfg.lr)
        grids = {}
        for task in cfg.tasks:
            g1, g2 = _grid(cfg, task)
            mesh = np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2)  # (x2, x1) row-major
            grids[task] = torch.tensor(mesh, dtype=torch.float32)
        points = torch.stack([grids[t] for t in table.task]).to(dev)
        with torch.no_grad():
            prob = torch.softmax(model(points), -1)[..., 1].cpu()
        out["boundary"] = prob[keep].reshape(len(keep), cfg.grid, cfg.grid).numpy()
    return out


def _pad_cat(parts: list[dict], key: str, axis_len: int) -> np.ndarray:
    """``key`` of every part along the member axis, its axis 2 (layers) padded with NaN."""
    blocks = []
    for p in parts:
        v = p[key]
        fill = np.full((*v.shape[:2], axis_len - v.shape[2], *v.shape[3:]), np.nan)
        blocks.append(np.concatenate([v, fill], axis=2))
    return np.concatenate(blocks)


def _pad_layers(parts: list[dict], key: str, axis_len: int) -> np.ndarray:
    """``key`` ``(E, layers)`` of every part, the layer axis padded with NaN."""
    return np.concatenate(
        [
            np.pad(p[key], ((0, 0), (0, axis_len - p[key].shape[1])), constant_values=np.nan)
            for p in parts
        ]
    )


def _lr_scores(cfg: Config, table: pd.DataFrame, parts: list[dict]) -> dict:
    """Per (task, activation) at depth 1 and per rate tried, a score for
    :func:`actlab.tuning.grid_step` (lower is better): the rank of the rate when ordered by mean
    validation accuracy (highest first), ties by mean validation loss (lowest first). NaN where
    a seed diverged or ended non-finite: such a rate is never picked."""
    val_acc = np.concatenate([p["val_acc"] for p in parts])
    val_loss = np.concatenate([p["val_loss"] for p in parts])
    diverged = np.concatenate([p["diverged_step"] for p in parts])
    out = {}
    for task in cfg.tasks:
        for act in cfg.activations:
            sel = (table.depth == 1) & (table.task == task) & (table.activation == act)
            keyed = {}
            for lr in sorted(set(table.lr[sel])):
                idx = table.member[sel & (table.lr == lr)].to_numpy()
                ok = np.all(diverged[idx] < 0) and np.isfinite(val_loss[idx]).all()
                keyed[float(lr)] = (-val_acc[idx].mean(), val_loss[idx].mean()) if ok else None
            order = sorted((r for r in keyed if keyed[r] is not None), key=lambda r: keyed[r])
            out[task, act] = {
                r: float(order.index(r)) if keyed[r] is not None else math.nan for r in keyed
            }
    return out


def _decide(cfg: Config, table: pd.DataFrame, parts: list[dict]) -> dict:
    return grid_step(
        _lr_scores(cfg, table, parts), factor=LR_FACTOR, lr_min=cfg.lr_min, lr_max=cfg.lr_max
    )


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Train every depth's members in one ensemble pass each (one chunk per depth), then widen
    each (task, activation)'s grid at depth 1 where its pick is at an edge (one chunk per extra
    rate, ``extend{round}-lr{rate}``, with only the members that need it); no file I/O."""
    progress.expect(len(cfg.depths) * cfg.epochs)  # one unit per full-batch step
    base = members(cfg)
    parts = [
        chunks(
            f"depth-{d}",
            lambda d=d: _train(cfg, base[base.depth == d], boundary=d == 1),
            work=cfg.epochs,
        )
        for d in cfg.depths
    ]
    table = base
    decisions: dict[tuple[str, str], GridDecision] = {}
    if cfg.lr_grid:
        decisions = _decide(cfg, table, parts)
        for round_ in range(1, cfg.lr_extend + 1):
            wanted = rates_to_try(decisions)
            if not wanted:
                break
            for rate, arms in sorted(wanted.items()):
                rows = [
                    (1, act, task, rate, seed)
                    for act in cfg.activations  # activation outermost: one engine slice each
                    for task in cfg.tasks
                    if (task, act) in arms
                    for seed in range(cfg.seeds)
                ]
                sub = pd.DataFrame(rows, columns=["depth", "activation", "task", "lr", "seed"])
                sub.insert(0, "member", np.arange(len(table), len(table) + len(sub)))
                progress.expect(cfg.epochs)  # more work, announced before it starts
                parts.append(
                    chunks(
                        f"extend{round_}-lr{rate:.6g}",
                        lambda sub=sub: _train(cfg, sub, boundary=False),
                        work=cfg.epochs,
                    )
                )
                table = pd.concat([table, sub], ignore_index=True)
            decisions = _decide(cfg, table, parts)
    E, max_layers = len(table), max(cfg.depths) + 1

    def cat(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    arrays = {
        "train_loss": cat("train_loss"),
        "test_loss": cat("test_loss"),
        "test_acc": cat("test_acc"),
        "train_acc": cat("train_acc"),
        "grad_first": cat("grad_first"),
        "grad_last_hidden": cat("grad_last_hidden"),
        "grad_output": cat("grad_output"),
        "grad_layers": _pad_cat(parts, "grad_layers", max_layers),
        "units": _pad_cat(parts, "units", max(cfg.depths)),
        "spread_init": _pad_layers(parts, "spread_init", max(cfg.depths)),
        "delta_init": _pad_layers(parts, "delta_init", max(cfg.depths)),
        "diverged_step": cat("diverged_step").astype(np.int64),
    }
    if cfg.n_val:
        arrays["val_acc"], arrays["val_loss"] = cat("val_acc"), cat("val_loss")
    axes: dict[str, tuple[str, ...]] = {
        k: ("member",) for k in ("train_acc", "diverged_step", "val_acc", "val_loss")
    }
    axes |= {
        k: ("member", "epoch")
        for k in ("train_loss", "grad_first", "grad_last_hidden", "grad_output")
    }
    axes |= {"test_loss": ("member", "eval"), "test_acc": ("member", "eval")}
    axes |= {"grad_layers": ("member", "probe", "layer")}
    axes |= {"units": ("member", "probe", "layer", "metric")}
    axes |= {"spread_init": ("member", "layer"), "delta_init": ("member", "layer")}
    axes = {k: v for k, v in axes.items() if k in arrays}
    coords: dict[str, list] = {
        "test_loss/eval": list(cfg.eval_epochs),
        "test_acc/eval": list(cfg.eval_epochs),
        "grad_layers/probe": list(cfg.probe_epochs),
        "grad_layers/layer": list(range(1, max_layers + 1)),
        "units/probe": list(cfg.probe_epochs),
        "units/layer": list(range(1, max(cfg.depths) + 1)),
        "units/metric": list(UNIT_METRICS),
        "spread_init/layer": list(range(1, max(cfg.depths) + 1)),
        "delta_init/layer": list(range(1, max(cfg.depths) + 1)),
    }
    # Boundaries (task, activation, seed, x2, x1) and seed 0's training points, per task.
    A, T, S = len(cfg.activations), len(cfg.tasks), cfg.seeds
    arrays["boundary"] = parts[0]["boundary"].reshape(A, T, S, cfg.grid, cfg.grid).swapaxes(0, 1)
    axes["boundary"] = ("task", "activation", "seed", "x2", "x1")
    coords["boundary/task"], coords["boundary/activation"] = list(cfg.tasks), list(cfg.activations)
    arrays["grid_x1"] = np.stack([_grid(cfg, t)[0] for t in cfg.tasks])
    arrays["grid_x2"] = np.stack([_grid(cfg, t)[1] for t in cfg.tasks])
    axes["grid_x1"], axes["grid_x2"] = ("task", "x1"), ("task", "x2")
    first = [task_data(cfg, t, 0) for t in cfg.tasks]
    arrays["train_points"] = np.stack([s.x_train.double().numpy() for s in first])
    arrays["train_labels"] = np.stack([s.y_train.numpy() for s in first])
    axes["train_points"], axes["train_labels"] = ("task", "point", "coord"), ("task", "point")
    assert arrays["train_loss"].shape[0] == E

    metrics = _metrics(cfg, table, arrays)
    return Results(metrics, arrays, axes, coords, _summary(cfg, table, arrays, decisions))


def _rows(values: np.ndarray, steps, metric: str, layer: float = np.nan) -> pd.DataFrame:
    """``values`` ``(E, len(steps))`` as tidy rows."""
    E, n = values.shape
    return pd.DataFrame(
        {
            "member": np.repeat(np.arange(E), n),
            "step": np.tile(np.asarray(steps, dtype=np.int64), E),
            "metric": metric,
            "value": values.reshape(-1).astype(np.float64),
            "layer": layer,
        }
    )


def _metrics(cfg: Config, table: pd.DataFrame, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """The tidy table. Training loss and first-layer gradient at the evaluation epochs only (the
    arrays ``train_loss`` and ``grad_first`` hold every epoch): a table of every epoch of every
    member would be ~20 times larger for nothing the report uses."""
    last, evals = [cfg.epochs], list(cfg.eval_epochs)
    steps = [e for e in evals if e < cfg.epochs]
    frames = [
        _rows(arrays["train_loss"][:, evals], evals, "train/loss"),
        _rows(arrays["test_loss"], evals, "test/loss"),
        _rows(arrays["test_acc"], evals, "test/accuracy"),
        _rows(arrays["train_acc"][:, None], last, "train/accuracy"),
        _rows(arrays["grad_first"][:, steps], steps, "grad/weight_mean_abs", 1.0),
    ]
    if cfg.n_val:
        frames += [
            _rows(arrays["val_acc"][:, None], last, "val/accuracy"),
            _rows(arrays["val_loss"][:, None], last, "val/loss"),
        ]
    n_probe = len(cfg.probe_epochs)
    for layer in range(max(cfg.depths)):
        exists = np.repeat(table.depth.to_numpy() > layer, n_probe)  # layer 1..depth only
        for k, key in enumerate(UNIT_METRICS):
            frame = _rows(arrays["units"][:, :, layer, k], cfg.probe_epochs, key, layer + 1.0)
            frames.append(frame[exists])
    return pd.concat(frames, ignore_index=True).merge(table, on="member")


# ---------------------------------------------------------------------------------- summary


def _group(table: pd.DataFrame, depth: int, task: str, act: str, lr: float) -> np.ndarray:
    """Members of one (depth, task, activation, rate), in seed order (sorted, whatever the
    table's row order)."""
    sel = (table.depth == depth) & (table.task == task) & (table.activation == act)
    return table[sel & (table.lr == lr)].sort_values("seed").member.to_numpy()


def _by_seed(table: pd.DataFrame, idx: np.ndarray, values: np.ndarray) -> pd.Series:
    """``values`` of the members ``idx`` as a series indexed by their seeds."""
    seeds = table.set_index("member").seed.loc[idx].to_numpy()
    return pd.Series(np.asarray(values, dtype=np.float64), index=pd.Index(seeds, name="seed"))


def _differs(a: pd.Series, b: pd.Series) -> bool:
    """Paired t-test at 5% of two samples indexed by seed. Every comparison of this chapter is
    between members of the same seeds: same data draw (with ``resample_data``), and the same
    initial weights (across activations and rates; across depths the first layer's), so what
    a seed gives both sides cancels in the per-seed difference."""
    return paired_differs(*paired_by_seed(a, b))


def _log10(values: np.ndarray) -> np.ndarray:
    """log10 of positive values, NaN elsewhere (a gradient that is exactly 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.where(values > 0, values, np.nan))


def _verdict(samples: dict[str, pd.Series], higher: bool) -> dict[str, Any]:
    """Rank the groups (series indexed by seed) by their mean (best first: highest if
    ``higher``) and split the others into those within noise of the best and those that differ
    from it (paired t-test by seed, 5%: the groups share each seed's data and weights)."""
    sign = -1.0 if higher else 1.0
    order = sorted(samples, key=lambda a: sign * np.nanmean(samples[a]))
    best = order[0]
    worse = [a for a in order[1:] if _differs(samples[best], samples[a])]
    return {
        "ranking": order,
        "best": best,
        "tied_with_best": [a for a in order[1:] if a not in worse],
        "differs_from_best": worse,
        "means": {a: float(np.nanmean(samples[a])) for a in order},
    }


def _layer_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis (hidden layers), NaN where a probe does not apply."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: the probe does not apply
        return np.nanmean(values, axis=-1)


def _max_abs_deriv(name: str) -> float:
    """``max |phi'(z)|`` over a fine grid of ``z`` in [-10, 10] (float64)."""
    z = torch.linspace(-10.0, 10.0, 20001, dtype=torch.float64)
    return float(get_activation(name).derivative(z).abs().max())


def init_weight_var(init: str, fan_in: int, fan_out: int) -> float:
    """The variance of one initial weight of a layer under ``init`` (see
    :meth:`actlab.models.EnsembleMLP.init_from`): torch's default ``U(-B, B)`` with
    ``B = 1/sqrt(fan_in)`` has ``1/(3 fan_in)``; Xavier ``2/(fan_in + fan_out)``; He
    ``2/fan_in``."""
    if init == "torch":
        return 1.0 / (3.0 * fan_in)
    if init == "xavier":
        return 2.0 / (fan_in + fan_out)
    if init == "he":
        return 2.0 / fan_in
    raise ValueError(f"init must be one of {PLAIN_INITS}, got {init!r}")


def _mean_sq_deriv_at_0(name: str) -> float:
    """``E[phi'(z)^2]`` for ``z`` spread symmetrically and narrowly about 0 (1/2 for ReLU,
    ``phi'(0)^2`` for a smooth activation)."""
    z = 1e-3 * (torch.arange(2000, dtype=torch.float64) - 999.5) / 999.5
    return float(get_activation(name).derivative(z).square().mean())


def predicted_spread_factor(init: str, width: int, activation: str) -> float:
    """The factor by which one hidden-to-hidden layer (fan-in = fan-out = ``width``) multiplies
    the spread of the pre-activations over the inputs, and the backward signal ``dL/dz``, when
    both are small and the biases are ignored: ``sqrt(width Var(w) E[phi'(z)^2])`` with ``z``
    near 0. For torch's default initialisation and ReLU: ``sqrt(1/3 * 1/2) = 0.41``."""
    var = init_weight_var(init, width, width)
    return math.sqrt(width * var * _mean_sq_deriv_at_0(activation))


def _per_layer(first: np.ndarray, last: np.ndarray, gap: int) -> np.ndarray:
    """log10 of the geometric factor per layer from ``first`` to ``last`` over ``gap`` layers."""
    return (_log10(last) - _log10(first)) / gap


def _seed_means(by_task: list[pd.Series]) -> pd.Series:
    """Per seed, the mean over tasks of ``by_task`` (one series indexed by seed per task,
    aligned by seed; NaN left out), in seed order. A seed gives every task the same initial
    weights, so a seed's tasks are not independent draws: intervals and the paired test over
    "tasks and seeds" take these ``seeds`` values, not ``tasks * seeds``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed with no finite value: NaN
        return pd.concat(by_task, axis=1).mean(axis=1).sort_index()


def n_parameters(width: int, depth: int, n_in: int = 2, n_out: int = 2) -> int:
    """Trainable parameters of an MLP ``n_in -> width x depth -> n_out`` (weights and biases):
    42 for the lesson's 2 -> 8 -> 2 network, 546 with 8 hidden layers of 8."""
    sizes = [n_in] + [width] * depth + [n_out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def tail_epochs(epochs: int) -> int:
    """Epochs over which the end-of-training check looks back: :data:`TAIL_FRACTION` of the run,
    at least 1."""
    return max(1, round(TAIL_FRACTION * epochs))


def _relative_change(loss: np.ndarray, back: int) -> np.ndarray:
    """Per member, ``L(end) / L(end - back) - 1`` of a loss curve ``(members, epochs + 1)``
    (negative: still falling); NaN where the earlier loss is not positive."""
    then, end = loss[:, -1 - back], loss[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(then > 0, end / np.where(then > 0, then, 1.0) - 1.0, np.nan)


def _summary(
    cfg: Config, table: pd.DataFrame, arrays: dict, decisions: dict[tuple[str, str], GridDecision]
) -> dict[str, Any]:
    """Accuracy, loss, gradient and unit statistics with 95% CIs over seeds, and the verdicts
    (paired t-test by seed): per task and depth which activations differ in held-out accuracy
    (at depth 1 also with tuned rates) and in first-layer gradient; per activation how the
    gradient ratio ``kappa`` (first layer over last hidden layer, at initialisation) and the
    accuracy change with depth; what the initialisation predicts for the spread per layer,
    beside the measured factor."""
    tuned = {arm: d.pick if d.pick is not None else cfg.lr for arm, d in decisions.items()}
    probe0 = cfg.probe_epochs.index(0) if 0 in cfg.probe_epochs else None
    rows = []
    for depth in cfg.depths:
        for task in cfg.tasks:
            for act in cfg.activations:
                kinds = [("shared", cfg.lr)] + (
                    [("tuned", tuned[task, act])] if depth == 1 and decisions else []
                )
                for kind, lr in kinds:
                    idx = _group(table, depth, task, act, lr)
                    units = arrays["units"][idx][:, :, :depth]  # (seed, probe, layer, metric)
                    row = {
                        "depth": depth,
                        "task": task,
                        "activation": act,
                        "protocol": kind,
                        "lr": lr,
                        # a proportion's interval kept in [0, 1], a loss's above 0
                        "test_acc": mean_ci(arrays["test_acc"][idx, -1], bounds=(0.0, 1.0)),
                        "test_loss": mean_ci(arrays["test_loss"][idx, -1], bounds=(0.0, math.inf)),
                        "train_loss": mean_ci(
                            arrays["train_loss"][idx, -1], bounds=(0.0, math.inf)
                        ),
                        "train_acc": mean_ci(arrays["train_acc"][idx], bounds=(0.0, 1.0)),
                        # the training loss's relative change over the last epochs (per seed)
                        "train_loss_change": mean_ci(
                            _relative_change(arrays["train_loss"][idx], tail_epochs(cfg.epochs))
                        ),
                        "diverged": int((arrays["diverged_step"][idx] >= 0).sum()),
                        "grad_first_init": mean_ci(_log10(arrays["grad_first"][idx, 0])),
                        "grad_first_mean": mean_ci(
                            np.nanmean(_log10(arrays["grad_first"][idx]), axis=1)
                        ),
                        "log10_kappa_init": mean_ci(
                            _log10(arrays["grad_first"][idx, 0])
                            - _log10(arrays["grad_last_hidden"][idx, 0])
                        ),
                        "units": {
                            key: [
                                mean_ci(_layer_mean(units[:, p, :, k]))
                                for p in range(len(cfg.probe_epochs))
                            ]
                            for k, key in enumerate(UNIT_METRICS)
                        },
                    }
                    if kind == "tuned":
                        d = decisions[task, act]
                        sel = (table.depth == 1) & (table.task == task)
                        row["lr_status"] = d.status
                        row["lr_status_text"] = status_text(d)
                        row["lr_tried"] = sorted(set(table.lr[sel & (table.activation == act)]))
                    rows.append(row)

    def samples(depth: int, task: str, act: str, lr: float, what: str) -> pd.Series:
        idx = _group(table, depth, task, act, lr)
        if what == "acc":
            values = arrays["test_acc"][idx, -1]
        elif what == "grad":  # mean over training of log10 |dL/dW_1|, per seed
            values = _layer_mean(_log10(arrays["grad_first"][idx]))
        else:  # log10 kappa at initialisation: first layer over last hidden layer
            values = _log10(arrays["grad_first"][idx, 0]) - _log10(
                arrays["grad_last_hidden"][idx, 0]
            )
        return _by_seed(table, idx, values)

    verdicts, grad_verdicts = [], []
    for depth in cfg.depths:
        for protocol in ("shared", "tuned") if depth == 1 and decisions else ("shared",):
            for task in cfg.tasks:
                lrs = {
                    a: cfg.lr if protocol == "shared" else tuned[task, a] for a in cfg.activations
                }
                acc = {a: samples(depth, task, a, lrs[a], "acc") for a in cfg.activations}
                verdict = _verdict(acc, higher=True)
                verdicts.append({"depth": depth, "protocol": protocol, "task": task, **verdict})
        for task in cfg.tasks:
            grad = {a: samples(depth, task, a, cfg.lr, "grad") for a in cfg.activations}
            grad_verdicts.append({"depth": depth, "task": task, **_verdict(grad, higher=False)})
    # The lesson's claim across depth, per activation, pooling tasks: log10 kappa at
    # initialisation at every depth of at least 2 hidden layers (at 1 it is 1 by definition),
    # and held-out accuracy per task from the shallowest to the deepest network.
    deep_depths = [d for d in cfg.depths if d >= 2]
    depth_trace, depth_changes, init_trace = [], [], []
    shallow, deep = cfg.depths[0], cfg.depths[-1]
    for act in cfg.activations:
        # per seed, the mean over tasks: a seed's tasks share its initial weights
        kappa = {
            d: _seed_means([samples(d, t, act, cfg.lr, "kappa") for t in cfg.tasks])
            for d in deep_depths
        }
        depth_trace.append(
            {
                "activation": act,
                "depths": deep_depths,
                "kappa_init": [mean_ci(kappa[d]) for d in deep_depths],
                "kappa_per_layer": [mean_ci(kappa[d] / (d - 1)) for d in deep_depths],
                # paired by seed: the two depths share the seed's data draw and first layer
                "differs": _differs(kappa[deep_depths[0]], kappa[deep_depths[-1]])
                if len(deep_depths) > 1
                else None,
            }
        )
        for task in cfg.tasks:
            a1, a2 = (
                samples(shallow, task, act, cfg.lr, "acc"),
                samples(deep, task, act, cfg.lr, "acc"),
            )
            deep_idx = _group(table, deep, task, act, cfg.lr)
            depth_changes.append(
                {
                    "activation": act,
                    "task": task,
                    "shallow": mean_ci(a1),
                    "deep": mean_ci(a2),
                    "differs": _differs(a1, a2),  # by seed: same data, same first layer
                    # did the deep network fit its own training data within the budget?
                    "deep_train_acc": mean_ci(arrays["train_acc"][deep_idx], bounds=(0.0, 1.0)),
                }
            )
        if deep >= 2:
            groups = [_group(table, deep, t, act, cfg.lr) for t in cfg.tasks]  # seed order
            spread = [arrays["spread_init"][i] for i in groups]
            delta = [arrays["delta_init"][i] for i in groups]

            def by_seed(values: list[np.ndarray], groups=groups) -> list[pd.Series]:
                return [_by_seed(table, i, v) for i, v in zip(groups, values, strict=True)]

            entry = {
                "activation": act,
                "predicted": predicted_spread_factor(cfg.init, cfg.width, act),
                "predicted_he": predicted_spread_factor("he", cfg.width, act),
                "spread_per_layer": mean_ci(
                    _seed_means(
                        by_seed([_per_layer(v[:, 0], v[:, deep - 1], deep - 1) for v in spread])
                    )
                ),
                "delta_per_layer": mean_ci(
                    _seed_means(
                        by_seed([_per_layer(v[:, deep - 1], v[:, 0], deep - 1) for v in delta])
                    )
                ),
                "off_deepest_init": None,
            }
            if probe0 is not None:
                k = UNIT_METRICS.index("act/off_fraction")
                off = [arrays["units"][i, probe0, deep - 1, k] for i in groups]
                if np.isfinite(np.stack(off)).any():
                    entry["off_deepest_init"] = mean_ci(
                        _seed_means(by_seed(off)), bounds=(0.0, 1.0)
                    )
            init_trace.append(entry)
    return {
        "table": rows,
        "verdicts": verdicts,
        "grad_verdicts": grad_verdicts,
        "depth_trace": depth_trace,
        "depth_changes": depth_changes,
        "init_trace": init_trace,
        "init_weight_var": init_weight_var(cfg.init, cfg.width, cfg.width),
        "tuned_lr": [
            {"task": t, "activation": a, "lr": v, "status": decisions[t, a].status}
            for (t, a), v in tuned.items()
        ],
        "seeds": cfg.seeds,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "learning_rates": list(cfg.learning_rates),
        "lr_min": cfg.lr_min,
        "lr_max": cfg.lr_max,
        "lr_factor": LR_FACTOR,
        "lr_extend": cfg.lr_extend,
        "depths": list(cfg.depths),
        "n_params": [n_parameters(cfg.width, d) for d in cfg.depths],
        "tail_epochs": tail_epochs(cfg.epochs),
        "flat_threshold": FLAT_THRESHOLD,
        "width": cfg.width,
        "n_train": cfg.n_train,
        "n_val": cfg.n_val,
        "n_test": cfg.n_test,
        "activations": list(cfg.activations),
        "tasks": list(cfg.tasks),
        "probe_epochs": list(cfg.probe_epochs),
        "resample_data": cfg.resample_data,
        "init": cfg.init,
        "max_abs_deriv": {a: _max_abs_deriv(a) for a in cfg.activations},
        "members": {c: table[c].tolist() for c in table.columns if c != "member"},
    }


SMOKE = Config(
    seeds=3,
    depths=(1, 3),
    epochs=40,
    lr=0.02,
    lr_grid=(0.005,),
    n_train=60,
    n_val=60,
    n_test=200,
    eval_every=10,
    probe_epochs=(0, 40),
    grid=21,
    lr_extend=1,
)
DEFAULT = Config()
FULL = Config(seeds=30, epochs=1000, lr_grid=(0.001, 0.003, 0.03), probe_epochs=(0, 100, 1000))

presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
