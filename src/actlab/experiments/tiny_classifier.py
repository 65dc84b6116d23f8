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

from actlab.activations import get_activation
from actlab.data import BOUNDS, TASKS, make_split
from actlab.experiments.base import (
    ChunkRunner,
    ExperimentSpec,
    Results,
    check_config,
    register_experiment,
    run_inline,
)
from actlab.models import EnsembleMLP
from actlab.probes import dead_kind, ensemble_activation_metrics
from actlab.report.format import num, ratio
from actlab.seeding import derive_seed
from actlab.stats import mean_ci, welch_differs
from actlab.train import Callback, StepState, TrainConfig, train

__all__ = ["Config", "run", "figures", "report", "members", "task_data", "UNIT_METRICS", "SPEC"]

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
        for name in self.activations:
            get_activation(name)
        if not self.activations or len(set(self.activations)) != len(self.activations):
            raise ValueError(f"activations must be distinct and non-empty, got {self.activations}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct names among {TASKS}, got {self.tasks}")
        for key in ("seeds", "width", "epochs", "n_train", "n_test", "eval_every", "data_seed"):
            value = getattr(self, key)
            low = 0 if key == "data_seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        if isinstance(self.n_val, bool) or not isinstance(self.n_val, int) or self.n_val < 0:
            raise ValueError(f"n_val must be an integer >= 0, got {self.n_val!r}")
        if self.lr_grid and self.n_val < 1:
            raise ValueError("n_val must be >= 1 to tune the learning rate over lr_grid")
        if isinstance(self.grid, bool) or not isinstance(self.grid, int) or self.grid < 5:
            raise ValueError(f"grid must be an integer >= 5, got {self.grid!r}")
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
        if self.init not in ("torch", "xavier", "he"):
            raise ValueError(f"init must be torch, xavier or he, got {self.init!r}")

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
                units[:, p, :, k] = stats[key].T.numpy()
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
    parts = [chunks(f"depth-{d}", lambda d=d: _train_depth(cfg, d)) for d in cfg.depths]
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


def figures(results: Results) -> dict[str, Any]:
    """Loss curves, held-out accuracy, decision boundaries, gradient traces (per depth) and
    hidden units (see :mod:`actlab.plotting.tiny_classifier`)."""
    from actlab.plotting.tiny_classifier import tiny_classifier_figures

    return tiny_classifier_figures(results)


def report(results: Results) -> str:
    """The lesson's Markdown section, every number and verdict from ``results``."""
    from actlab.exercises import exercises_markdown
    from actlab.exercises.tiny_classifier import EXERCISES

    s = results.summary
    out = _intro(s) + _accuracy_section(s) + _gradient_section(s) + _units_section(s)
    return "\n".join(out) + "\n" + exercises_markdown(EXERCISES)


# ---------------------------------------------------------------------------------- report

_TASK_TEXT = {
    "linear": "the lesson's task, $x \\sim \\mathcal{N}(0, I_2)$, class $[x_1 + x_2 > 0]$ "
    "(linearly separable)",
    "xor": "XOR-like quadrants, $x \\sim U[-1, 1]^2$, class $[x_1 x_2 > 0]$",
    "moons": "two interleaved half circles with Gaussian noise (sd 0.1)",
    "circles": "two concentric circles of radii 1 and 0.5 with Gaussian noise (sd 0.08)",
}


def _f(x: Any) -> float:
    """A stored number (None after a JSON round trip means NaN)."""
    return math.nan if x is None else float(x)


def _num(x: Any) -> str:
    return num(x, 2)


def _pct(ci: dict, bounds: bool = True) -> str:
    """A proportion's mean and 95% CI in percent, the interval clipped to [0, 100]."""
    mean, lo, hi = (100 * _f(ci[k]) for k in ("mean", "lo", "hi"))
    if math.isnan(mean):
        return "n/a"
    if not bounds or math.isnan(lo):
        return f"{mean:.1f}%"
    return f"{mean:.1f}% [{max(lo, 0.0):.1f}, {min(hi, 100.0):.1f}]"


def _pow(ci: dict) -> str:
    """A factor ``10^mean [10^lo, 10^hi]`` from a log10 mean and CI (``1/250``, ``$10^{-7}$``)."""
    mean, lo, hi = (_f(ci[k]) for k in ("mean", "lo", "hi"))
    if math.isnan(lo):
        return ratio(mean)
    return f"{ratio(mean)} [{ratio(lo)}, {ratio(hi)}]"


def _factor(x: float) -> str:
    """A ratio such as 0.004 as ``1/250``."""
    return ratio(math.log10(x)) if x > 0 else num(x)


def _and(items: list[str]) -> str:
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _layers(depth: int) -> str:
    return f"{depth} hidden layer{'s' * (depth != 1)}"


def _by_task(s: dict, depth: int = 1, protocol: str = "shared") -> dict[tuple[str, str], dict]:
    return {
        (r["task"], r["activation"]): r
        for r in s["table"]
        if r["depth"] == depth and r["protocol"] == protocol
    }


def _intro(s: dict) -> list[str]:
    rates = [r for r in s["learning_rates"] if r != s["lr"]]
    tuning = (
        f" At one hidden layer every member is also trained at learning rate "
        f"{_and([f'{r:g}' for r in rates])}; each activation's rate on a task is then picked by "
        f"its mean accuracy on {s['n_val']} validation points."
        if rates
        else ""
    )
    draw = "a fresh draw per seed" if s["resample_data"] else "one draw shared by every seed"
    hard = [t for t in s["tasks"] if t != "linear"]
    harder = f", on {_and(hard)} (which no straight line separates)" if hard else ""
    out = [
        "# Tiny classifiers: one small network per activation",
        "",
        "The classic lesson trains one 2 → 8 → 2 classifier per activation on 100 points "
        "labelled $x_1 + x_2 > 0$, once, and reads differences off the loss curves. Here every "
        f"comparison is repeated over {s['seeds']} seeds (within a seed every activation "
        f"starts from the same initial weights), measured on held-out points{harder}, and "
        f"with {_and([str(d) for d in s['depths']])} hidden layers of {s['width']} units.",
        "",
        "**Set-up.** The tasks:",
        "",
    ]
    out += [f"- **{t}**: {_TASK_TEXT.get(t, t)};" for t in s["tasks"]]
    out += [
        "",
        f"{s['n_train']} training and {s['n_test']} held-out points per task and seed ({draw}). "
        f"Cross-entropy, full-batch Adam at learning rate {s['lr']:g} for {s['epochs']} epochs, "
        f"initialisation `{s['init']}`.{tuning} Intervals are 95% Student-t intervals over "
        "seeds; two activations are said to *differ* only when Welch's t-test rejects equal "
        "means at the 5% level, and are otherwise *within noise*.",
        "",
        f"![Training and held-out loss per activation and task, {s['seeds']} seeds]"
        "(figures/loss_curves.png)",
        "",
    ]
    rows = _by_task(s)
    parts = []
    for t in s["tasks"]:
        final = {a: _f(rows[t, a]["train_loss"]["mean"]) for a in s["activations"]}
        lo, hi = min(final, key=final.get), max(final, key=final.get)
        parts.append(f"{t} from {_num(final[lo])} ({lo}) to {_num(final[hi])} ({hi})")
    out += [
        f"After {s['epochs']} epochs the mean training loss ranges on {'; '.join(parts)}. "
        "A lower training loss is not yet a better classifier: the held-out accuracy decides.",
        "",
    ]
    return out


def _verdict_sentence(v: dict, rows: dict) -> str:
    task, best = v["task"], v["best"]
    acc = {a: _pct(rows[task, a]["test_acc"]) for a in v["ranking"]}
    if not v["differs_from_best"]:
        lo, hi = min(v["means"].values()), max(v["means"].values())
        return (
            f"On **{task}** the activations tie: every difference is within noise (means from "
            f"{100 * lo:.1f}% to {100 * hi:.1f}%)."
        )
    text = f"On **{task}**, {best} is best ({acc[best]})"
    if v["tied_with_best"]:
        verb = "is" if len(v["tied_with_best"]) == 1 else "are"
        text += f"; {_and(v['tied_with_best'])} {verb} within noise of it"
    worse = [f"{a} ({acc[a]})" for a in v["differs_from_best"]]
    return text + f"; {_and(worse)} {'is' if len(worse) == 1 else 'are'} lower."


def _accuracy_section(s: dict) -> list[str]:
    rows, acts, tasks = _by_task(s), s["activations"], s["tasks"]
    out = [
        "## Held-out accuracy",
        "",
        "![Held-out accuracy per task and activation, mean and 95% CI](figures/accuracy.png)",
        "",
        f"Held-out accuracy after {s['epochs']} epochs, {_layers(1)}, learning rate "
        f"{s['lr']:g} (mean [95% CI] over {s['seeds']} seeds):",
        "",
        "| task | " + " | ".join(acts) + " |",
        "|---|" + "---|" * len(acts),
    ]
    for t in tasks:
        out.append(f"| {t} | " + " | ".join(_pct(rows[t, a]["test_acc"]) for a in acts) + " |")
    shared = [v for v in s["verdicts"] if v["depth"] == 1 and v["protocol"] == "shared"]
    out += ["", *[f"- {_verdict_sentence(v, rows)}" for v in shared], ""]
    differ = [v["task"] for v in shared if v["differs_from_best"]]
    tie = [v["task"] for v in shared if not v["differs_from_best"]]
    summary = [f"the activations differ on {_and(differ)}"] if differ else []
    summary += [f"they tie on {_and(tie)}"] if tie else []
    out += [f"In short, with one shared learning rate {' and '.join(summary)}.", ""]

    tuned = [v for v in s["verdicts"] if v["depth"] == 1 and v["protocol"] == "tuned"]
    if tuned:
        trows = _by_task(s, 1, "tuned")
        out += [
            "**Is it the learning rate?** A ranking at one shared rate may only say which "
            "activation suits that rate. The rate each activation gets when tuned on the "
            "validation draw, and the held-out accuracy it then reaches:",
            "",
            "| task | " + " | ".join(acts) + " |",
            "|---|" + "---|" * len(acts),
        ]
        for t in tasks:
            cells = [f"{trows[t, a]['lr']:g}: {_pct(trows[t, a]['test_acc'], False)}" for a in acts]
            out.append(f"| {t} | " + " | ".join(cells) + " |")
        by_task = {v["task"]: v for v in shared}
        same, changed = [], []
        for v in tuned:
            old = by_task[v["task"]]
            keep = set(old["differs_from_best"]) == set(v["differs_from_best"]) and (
                old["best"] == v["best"] or not v["differs_from_best"]
            )
            (same if keep else changed).append(v)
        out.append("")
        if same:
            out.append(
                f"With tuned rates the verdict is unchanged on {_and([v['task'] for v in same])}."
            )
        out += [f"- It changes: {_verdict_sentence(v, trows)}" for v in changed]
        out.append("")
    smooth = [a for a in acts if not get_activation(a).piecewise_linear]
    linear = [a for a in acts if get_activation(a).piecewise_linear]
    shapes = []
    if linear:
        shapes.append(
            f"with a piecewise-linear activation ({_and(linear)}) the boundary is made of "
            "straight pieces"
        )
    if smooth:
        shapes.append(f"with a smooth one ({_and(smooth)}) it is curved")
    out += [
        "![Decision boundaries: one row per activation, one column per task]"
        "(figures/boundaries.png)",
        "",
        "The decision boundaries show *how* each network splits the plane. The shading is "
        "seed 0's probability of class 1 with its boundary in black; the grey lines are the "
        f"boundaries of the other {s['seeds'] - 1} seeds (where they spread, the boundary "
        "depends on the initial weights and the draw); the dots are seed 0's training points. "
        + "; ".join(shapes).capitalize()
        + ".",
        "",
    ]
    return out


def _gradient_section(s: dict) -> list[str]:
    depths, acts = s["depths"], s["activations"]
    out = [
        "## The gradient trace, and what depth does to it",
        "",
        "The lesson plots the mean absolute gradient of the first layer's weights, "
        r"$\overline{|\partial L / \partial W_1|}$, at every epoch. Here is that trace per "
        "activation (geometric mean over seeds, 95% band), at each depth:",
        "",
        "![First-layer gradient per epoch, rows: depth, columns: task](figures/grad_trace.png)",
        "",
        "Averaged over training (the mean of $\\log_{10}$ per seed), the smallest and the "
        "largest first-layer gradient, and their ratio:",
        "",
    ]
    for depth in depths:
        parts = []
        for v in (g for g in s["grad_verdicts"] if g["depth"] == depth):
            low, high = v["best"], v["ranking"][-1]
            factor = 10 ** (v["means"][high] - v["means"][low])
            sig = "" if high in v["differs_from_best"] else " (within noise)"
            parts.append(f"on {v['task']} {low}'s, {_num(factor)}× below {high}'s{sig}")
        out.append(f"- {_layers(depth)}: " + "; ".join(parts) + ".")
    out += ["", "![Gradient per layer at initialisation](figures/grad_layers.png)", ""]
    out += [
        "A trace of one layer cannot tell a gradient that *vanishes on its way back* from one "
        "that is small everywhere. The ratio of the first layer's gradient to the output "
        "layer's at initialisation can (geometric mean over tasks and seeds, 95% CI):",
        "",
        "| activation | " + " | ".join(_layers(d) for d in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    trace = {r["activation"]: r for r in s["depth_trace"]}
    for a in acts:
        out.append(f"| {a} | " + " | ".join(_pow(c) for c in trace[a]["ratio_init"]) + " |")
    shallow = {a: 10 ** _f(trace[a]["ratio_init"][0]["mean"]) for a in acts}
    deep = {a: 10 ** _f(trace[a]["ratio_init"][-1]["mean"]) for a in acts}
    falls = [a for a in acts if trace[a]["differs"] and deep[a] < shallow[a]]
    text = (
        f"With {_layers(depths[0])} the first layer receives between "
        f"{_factor(min(shallow.values()))} and {_factor(max(shallow.values()))} of the output "
        "layer's gradient, depending on the activation."
    )
    if len(depths) > 1:
        worst = min(acts, key=deep.get)
        if falls:
            text += (
                f" From {depths[0]} to {_layers(depths[-1])} the ratio falls significantly for "
                + _and([f"{a} (by a factor {_num(shallow[a] / deep[a])})" for a in falls])
                + f"; at {_layers(depths[-1])} the smallest is {worst}'s, {_factor(deep[worst])}."
            )
        else:
            text += f" It does not fall significantly up to {_layers(depths[-1])}."
        out += ["", text, ""]
        changes = [c for c in s["depth_changes"] if c["differs"]]
        down = [c for c in changes if _f(c["deep"]["mean"]) < _f(c["shallow"]["mean"])]
        up = [c for c in changes if c not in down]

        def listing(cs: list[dict]) -> str:
            return _and(
                [
                    f"{c['activation']} on {c['task']} ({_pct(c['shallow'], False)} → "
                    f"{_pct(c['deep'], False)})"
                    for c in cs
                ]
            )

        text = f"From {depths[0]} to {_layers(depths[-1])}, held-out accuracy "
        if not changes:
            text += "changes beyond noise for no activation and task."
        else:
            bits = [f"falls significantly for {listing(down)}"] if down else []
            bits += [f"rises significantly for {listing(up)}"] if up else []
            text += "; it ".join(bits) + "; every other change is within noise."
        out += [text, ""]
        lost = sorted({c["activation"] for c in down} & set(falls))
        if falls:
            out += [
                f"So the lesson's claim, tested where it applies: at {_layers(depths[0])} the "
                "activations differ in the *scale* of the first layer's gradient, and the first "
                "layer still gets at least "
                f"{_factor(min(shallow.values()))} of the output layer's; "
                f"at {_layers(depths[-1])} {worst}'s first layer gets {_factor(deep[worst])} of it"
                + (
                    f", and this comes with a loss of held-out accuracy for {_and(lost)}."
                    if lost
                    else ", without a significant loss of held-out accuracy in this budget."
                ),
                "",
            ]
        saturated = [
            _f(_by_task(s, depths[-1])[t, worst]["units"]["act/saturated_fraction"][0]["mean"])
            for t in s["tasks"]
        ]
        if falls and worst in falls and all(v < 0.01 for v in saturated):
            out += [
                f"Is {worst}'s vanishing gradient a saturation effect? Not here: at "
                "initialisation "
                + (
                    f"at most {100 * max(saturated):.1f}% of its hidden units are"
                    if max(saturated) > 0
                    else "none of its hidden units is"
                )
                + " saturated on any task. Each layer multiplies the gradient by "
                f"$\\varphi'(z) \\le {_num(s['max_abs_deriv'][worst])}$ (times the weights), "
                "and the product of such factors shrinks geometrically with depth.",
                "",
            ]
    else:
        out += ["", text, ""]
    return out


def _units_section(s: dict) -> list[str]:
    depths, acts, tasks = s["depths"], s["activations"], s["tasks"]
    probes = s["probe_epochs"]
    out = [
        "## Dead and saturated units",
        "",
        "The lesson names dead ReLU units but never counts them. Measured on the held-out "
        "inputs: a ReLU unit is *dead* when its output is 0 on every input, a LeakyReLU unit "
        "*inactive* when its pre-activation is negative on every input, a tanh (sigmoid) unit "
        "*saturated* when $|h| > 0.99$ ($h$ outside $[0.01, 0.99]$) on every input. Fractions "
        f"are averaged over hidden layers, then over seeds: at epoch {probes[0]} → epoch "
        f"{probes[-1]}.",
        "",
        "![Dead, inactive and saturated hidden units](figures/units.png)",
        "",
    ]
    keys = ("act/off_fraction", "act/saturated_fraction")
    shown = sorted({depths[0], depths[-1]})
    never, sentences = [], []
    for d in shown:
        rows = _by_task(s, d)
        out += [
            f"| {_layers(d)} | units | " + " | ".join(tasks) + " |",
            "|---|---|" + "---|" * len(tasks),
        ]
        for a in acts:
            for key in keys:
                kind = dead_kind(get_activation(a))
                name = "saturated" if key != keys[0] else (kind or "dead")
                cells = [rows[t, a]["units"][key] for t in tasks]
                if all(math.isnan(_f(c[-1]["mean"])) for c in cells):
                    continue  # the probe does not apply to this activation
                out.append(
                    f"| {a} | {name} | "
                    + " | ".join(f"{_pct(c[0], False)} → {_pct(c[-1], False)}" for c in cells)
                    + " |"
                )
                final = {t: _f(c[-1]["mean"]) for t, c in zip(tasks, cells, strict=True)}
                top = max(tasks, key=final.get)
                if final[top] == 0:
                    never.append(f"{a} ({_layers(d)})")
                else:
                    sentences.append(
                        f"{a} with {_layers(d)}: up to {100 * final[top]:.1f}% {name} units "
                        f"after training (on {top})"
                    )
        out.append("")
    if sentences:
        out += ["After training: " + "; ".join(sentences) + ".", ""]
    if never:
        out += [f"No unit is dead, inactive or saturated after training for {_and(never)}.", ""]
    return out


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

SPEC = register_experiment(
    ExperimentSpec(
        name="tiny-classifier",
        title="Tiny classifiers: one 2-8-2 network per activation, on four toy tasks",
        Config=Config,
        presets={"smoke": SMOKE, "default": DEFAULT, "full": FULL},
        run=run,
        figures=figures,
        report=report,
        order=30,
    )
)
