"""Tiny classifiers: the classic PyTorch lesson (a 2 -> 8 -> 2 network per activation, Adam,
cross-entropy), done honestly.

* Tasks (:mod:`actlab.data`): the lesson's linearly separable ``x_1 + x_2 > 0`` (100 points) and
  three on which activations can differ: XOR-like quadrants, two moons, concentric circles. Each
  seed draws its own training, validation and held-out sets (unless ``resample_data=False``).
* Members: every (depth, task, activation, learning rate, seed); members with the same seed and
  depth start from the same weights whatever their activation and task. One chunk per depth trains
  all its members in one ensemble pass, each on its own task's data (``x`` of shape ``(E, n, 2)``).
  Depth 1 is the lesson's network; it is also trained at every rate of ``lr_grid`` so that each
  activation's rate can be tuned on the validation draw. Deeper nets (hidden layers of the same
  width) use the shared rate and test the lesson's "vanishing gradients in deep nets" claim where
  it applies.
* Measured: training loss every epoch; held-out loss and accuracy every ``eval_every`` epochs;
  the mean ``|dL/dW|`` of the first layer at every step (full batch: one step per epoch), of the
  output layer too, and of every layer at the probe epochs; dead / inactive / saturated / dormant
  hidden units on the held-out inputs at the probe epochs; the class-1 probability on a grid
  (decision boundaries) for the lesson's network at the shared rate.

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
from actlab.stats import mean_ci, welch_differs
from actlab.train import Callback, StepState, TrainConfig, train

__all__ = ["Config", "run", "members", "task_data", "UNIT_METRICS"]

UNIT_METRICS = ("act/off_fraction", "act/saturated_fraction", "act/dormant_fraction")
"""Hidden-unit probes (see :mod:`actlab.probes`): off = dead (output 0 on every held-out input)
for ReLU-like units, inactive (pre-activation < 0 everywhere) for LeakyReLU-like ones; saturated
for bounded ones (tanh: |h| > 0.99, sigmoid: outside [0.01, 0.99] on every input); ReDo
0.025-dormant for all. NaN where a notion does not apply to an activation."""


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
        check_ints(self, {"eval_every": 1, "data_seed": 0, "n_val": 0, "grid": 5})
        if self.lr_grid and self.n_val < 1:
            raise ValueError("n_val must be >= 1 to tune the learning rate over lr_grid")
        if 1 not in self.depths or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.depths
        ):
            raise ValueError(f"depths must be integers >= 1 and include 1, got {self.depths}")
        if len(set(self.depths)) != len(self.depths):
            raise ValueError(f"depths must not repeat, got {self.depths}")
        object.__setattr__(self, "depths", tuple(sorted(self.depths)))
        if not all(v > 0 and math.isfinite(v) for v in (self.lr, *self.lr_grid)):
            raise ValueError(
                f"lr and lr_grid must be finite and > 0, got {self.lr}, {self.lr_grid}"
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


def _stack(table: pd.DataFrame, splits: dict, part: str) -> torch.Tensor:
    return torch.stack(
        [getattr(splits[t, s], part) for t, s in zip(table.task, table.seed, strict=True)]
    )


def _accuracy_and_loss(model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor):
    """Per-member accuracy and mean cross-entropy ``(E,)`` on ``x`` ``(E, n, 2)``."""
    with torch.no_grad():
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.transpose(1, 2), y, reduction="none")
        return (out.argmax(-1) == y).double().mean(1), loss.double().mean(1)


def _train_depth(cfg: Config, depth: int) -> dict[str, np.ndarray]:
    """Train every member of one depth in one ensemble; arrays with the member axis first."""
    table = members(cfg)
    table = table[table.depth == depth].reset_index(drop=True)
    splits = {(t, s): task_data(cfg, t, s) for t in cfg.tasks for s in range(cfg.seeds)}
    x, y = _stack(table, splits, "x_train"), _stack(table, splits, "y_train")
    x_test, y_test = _stack(table, splits, "x_test"), _stack(table, splits, "y_test")
    model = EnsembleMLP(
        2, [cfg.width] * depth, 2, list(table.activation), list(table.seed), init=cfg.init
    )
    E, L, evals, probes = model.E, model.n_layers, cfg.eval_epochs, cfg.probe_epochs
    test_acc, test_loss = np.empty((E, len(evals))), np.empty((E, len(evals)))
    grad_first, grad_output = np.empty((E, cfg.epochs)), np.empty((E, cfg.epochs))
    # mean |dL/dW| per layer at each probe epoch; NaN at epoch == epochs (no update follows the
    # last one, so there is no gradient to record there)
    grad_layers = np.full((E, len(probes), L), np.nan)
    units = np.empty((E, len(probes), depth, len(UNIT_METRICS)))

    def observe(epoch: int, grad: torch.Tensor | None) -> None:
        if epoch in evals:
            acc, loss = _accuracy_and_loss(model, x_test, y_test)
            test_acc[:, evals.index(epoch)] = acc.numpy()
            test_loss[:, evals.index(epoch)] = loss.numpy()
        if epoch in probes:
            p = probes.index(epoch)
            stats = ensemble_activation_metrics(model, x_test, ranks=False)
            for k, key in enumerate(UNIT_METRICS):
                units[:, p, :, k] = stats[key].numpy()
            if grad is not None:
                for layer in range(L):
                    grad_layers[:, p, layer] = model.weight(layer, grad).abs().mean((1, 2))

    def callback(state: StepState) -> None:
        g = state.grad
        grad_first[:, state.step] = model.weight(0, g).abs().mean((1, 2)).numpy()
        grad_output[:, state.step] = model.weight(L - 1, g).abs().mean((1, 2)).numpy()
        observe(state.step, g)

    result = train(
        model,
        x,
        y,
        TrainConfig(epochs=cfg.epochs, loss="cross_entropy"),
        lr=list(table.lr),
        callbacks=[Callback(callback, every=1)],
    )
    observe(cfg.epochs, None)
    train_acc, final_loss = _accuracy_and_loss(model, x, y)
    out = {
        "train_loss": np.concatenate(
            [result.loss.double().numpy().T, final_loss.numpy()[:, None]], 1
        ),
        "train_acc": train_acc.numpy(),
        "test_acc": test_acc,
        "test_loss": test_loss,
        "grad_first": grad_first,
        "grad_output": grad_output,
        "grad_layers": grad_layers,
        "units": units,
        "diverged_step": result.diverged_step.numpy(),
    }
    if cfg.n_val:
        val_acc, val_loss = _accuracy_and_loss(
            model, _stack(table, splits, "x_val"), _stack(table, splits, "y_val")
        )
        out["val_acc"], out["val_loss"] = val_acc.numpy(), val_loss.numpy()
    if depth == 1:  # decision boundaries of the lesson's network at the shared rate
        keep = np.flatnonzero(table.lr.to_numpy() == cfg.lr)
        grids = {}
        for task in cfg.tasks:
            g1, g2 = _grid(cfg, task)
            mesh = np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2)  # (x2, x1) row-major
            grids[task] = torch.tensor(mesh, dtype=torch.float32)
        points = torch.stack([grids[t] for t in table.task])
        with torch.no_grad():
            prob = torch.softmax(model(points), -1)[..., 1]
        out["boundary"] = prob[keep].reshape(len(keep), cfg.grid, cfg.grid).numpy()
    return out


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Train every depth's members in one ensemble pass each (one chunk per depth); no file I/O."""
    progress.expect(len(cfg.depths) * cfg.epochs)  # one unit per full-batch step
    parts = [
        chunks(f"depth-{d}", lambda d=d: _train_depth(cfg, d), work=cfg.epochs) for d in cfg.depths
    ]
    table = members(cfg)
    E, max_layers = len(table), max(cfg.depths) + 1

    def cat(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    def pad(key: str, axis_len: int) -> np.ndarray:
        blocks = []
        for p in parts:
            v = p[key]
            fill = np.full((*v.shape[:2], axis_len - v.shape[2], *v.shape[3:]), np.nan)
            blocks.append(np.concatenate([v, fill], axis=2))
        return np.concatenate(blocks)

    arrays = {
        "train_loss": cat("train_loss"),
        "test_loss": cat("test_loss"),
        "test_acc": cat("test_acc"),
        "train_acc": cat("train_acc"),
        "grad_first": cat("grad_first"),
        "grad_output": cat("grad_output"),
        "grad_layers": pad("grad_layers", max_layers),
        "units": pad("units", max(cfg.depths)),
        "diverged_step": cat("diverged_step").astype(np.int64),
    }
    if cfg.n_val:
        arrays["val_acc"], arrays["val_loss"] = cat("val_acc"), cat("val_loss")
    axes: dict[str, tuple[str, ...]] = {
        k: ("member",) for k in ("train_acc", "diverged_step", "val_acc", "val_loss")
    }
    axes |= {k: ("member", "epoch") for k in ("train_loss", "grad_first", "grad_output")}
    axes |= {"test_loss": ("member", "eval"), "test_acc": ("member", "eval")}
    axes |= {"grad_layers": ("member", "probe", "layer")}
    axes |= {"units": ("member", "probe", "layer", "metric")}
    axes = {k: v for k, v in axes.items() if k in arrays}
    coords: dict[str, list] = {
        "test_loss/eval": list(cfg.eval_epochs),
        "test_acc/eval": list(cfg.eval_epochs),
        "grad_layers/probe": list(cfg.probe_epochs),
        "grad_layers/layer": list(range(1, max_layers + 1)),
        "units/probe": list(cfg.probe_epochs),
        "units/layer": list(range(1, max(cfg.depths) + 1)),
        "units/metric": list(UNIT_METRICS),
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
    return Results(metrics, arrays, axes, coords, _summary(cfg, table, arrays))


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
    """Members of one (depth, task, activation, rate), in seed order."""
    sel = (table.depth == depth) & (table.task == task) & (table.activation == act)
    return table.member[sel & (table.lr == lr)].to_numpy()


def _tuned_lr(cfg: Config, table: pd.DataFrame, arrays: dict) -> dict[tuple[str, str], float]:
    """Per (task, activation) at depth 1: the rate with the highest mean validation accuracy
    (ties: lower mean validation loss); a rate where a seed diverged is not eligible."""
    best = {}
    for task in cfg.tasks:
        for act in cfg.activations:
            scores = {}
            for lr in cfg.learning_rates:
                idx = _group(table, 1, task, act, lr)
                if cfg.n_val and np.all(arrays["diverged_step"][idx] < 0):
                    scores[lr] = (-arrays["val_acc"][idx].mean(), arrays["val_loss"][idx].mean())
            best[task, act] = min(scores, key=scores.get) if scores else cfg.lr
    return best


def _log10(values: np.ndarray) -> np.ndarray:
    """log10 of positive values, NaN elsewhere (a gradient that is exactly 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.where(values > 0, values, np.nan))


def _verdict(samples: dict[str, np.ndarray], higher: bool) -> dict[str, Any]:
    """Rank the groups by their mean (best first: highest if ``higher``) and split the others
    into those within noise of the best and those that differ from it (Welch, 5%)."""
    sign = -1.0 if higher else 1.0
    order = sorted(samples, key=lambda a: sign * np.nanmean(samples[a]))
    best = order[0]
    worse = [a for a in order[1:] if welch_differs(samples[best], samples[a])]
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


def _summary(cfg: Config, table: pd.DataFrame, arrays: dict) -> dict[str, Any]:
    """Accuracy, loss, gradient and unit statistics with 95% CIs over seeds, and the Welch
    verdicts: per task and depth which activations differ in held-out accuracy (at depth 1 also
    with tuned rates) and in first-layer gradient; per activation how the gradient ratio and the
    accuracy change from the shallowest to the deepest network."""
    tuned = _tuned_lr(cfg, table, arrays)
    rows = []
    for depth in cfg.depths:
        for task in cfg.tasks:
            for act in cfg.activations:
                kinds = [("shared", cfg.lr)] + (
                    [("tuned", tuned[task, act])] if depth == 1 and cfg.lr_grid else []
                )
                for kind, lr in kinds:
                    idx = _group(table, depth, task, act, lr)
                    units = arrays["units"][idx][:, :, :depth]  # (seed, probe, layer, metric)
                    rows.append(
                        {
                            "depth": depth,
                            "task": task,
                            "activation": act,
                            "protocol": kind,
                            "lr": lr,
                            "test_acc": mean_ci(arrays["test_acc"][idx, -1]),
                            "test_loss": mean_ci(arrays["test_loss"][idx, -1]),
                            "train_loss": mean_ci(arrays["train_loss"][idx, -1]),
                            "diverged": int((arrays["diverged_step"][idx] >= 0).sum()),
                            "grad_first_init": mean_ci(_log10(arrays["grad_first"][idx, 0])),
                            "grad_first_mean": mean_ci(
                                np.nanmean(_log10(arrays["grad_first"][idx]), axis=1)
                            ),
                            "grad_ratio_init": mean_ci(
                                _log10(arrays["grad_first"][idx, 0])
                                - _log10(arrays["grad_output"][idx, 0])
                            ),
                            "units": {
                                key: [
                                    mean_ci(_layer_mean(units[:, p, :, k]))
                                    for p in range(len(cfg.probe_epochs))
                                ]
                                for k, key in enumerate(UNIT_METRICS)
                            },
                        }
                    )

    def samples(depth: int, task: str, act: str, lr: float, what: str) -> np.ndarray:
        idx = _group(table, depth, task, act, lr)
        if what == "acc":
            return arrays["test_acc"][idx, -1]
        if what == "grad":  # mean over training of log10 |dL/dW_1|, per seed
            return _layer_mean(_log10(arrays["grad_first"][idx]))
        return _log10(arrays["grad_first"][idx, 0]) - _log10(arrays["grad_output"][idx, 0])

    verdicts, grad_verdicts = [], []
    for depth in cfg.depths:
        for protocol in ("shared", "tuned") if depth == 1 and cfg.lr_grid else ("shared",):
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
    # The lesson's claim across depth, per activation, pooling tasks: log10 of the first layer's
    # gradient over the output layer's at initialisation, and held-out accuracy per task.
    depth_trace, depth_changes = [], []
    shallow, deep = cfg.depths[0], cfg.depths[-1]
    for act in cfg.activations:
        ratio = {
            d: np.concatenate([samples(d, t, act, cfg.lr, "ratio") for t in cfg.tasks])
            for d in cfg.depths
        }
        depth_trace.append(
            {
                "activation": act,
                "ratio_init": [mean_ci(ratio[d]) for d in cfg.depths],
                "differs": welch_differs(ratio[shallow], ratio[deep]),
            }
        )
        for task in cfg.tasks:
            a1, a2 = (
                samples(shallow, task, act, cfg.lr, "acc"),
                samples(deep, task, act, cfg.lr, "acc"),
            )
            depth_changes.append(
                {
                    "activation": act,
                    "task": task,
                    "shallow": mean_ci(a1),
                    "deep": mean_ci(a2),
                    "differs": welch_differs(a1, a2),
                }
            )
    return {
        "table": rows,
        "verdicts": verdicts,
        "grad_verdicts": grad_verdicts,
        "depth_trace": depth_trace,
        "depth_changes": depth_changes,
        "tuned_lr": [{"task": t, "activation": a, "lr": v} for (t, a), v in tuned.items()],
        "seeds": cfg.seeds,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "learning_rates": list(cfg.learning_rates),
        "depths": list(cfg.depths),
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
)
DEFAULT = Config()
FULL = Config(seeds=30, epochs=1000, lr_grid=(0.001, 0.003, 0.03), probe_epochs=(0, 100, 1000))

presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
