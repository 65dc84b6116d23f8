"""The deep-MLP experiment: 10 hidden layers on a noisy sine, one model per activation, done
honestly (seeds with confidence intervals, held-out data and the noise floor, identical initial
weights across activations, learning rate tuned per activation on a validation draw).

Data (drawn from the run's own generator):

* train: ``x = linspace(-pi, pi, n_train)``, ``y = sin(x) + N(0, noise^2)``;
* validation and test: two independent noisy draws on the interleaved grid (midpoints of the
  training grid); the test MSE cannot go below the noise variance (the *noise floor*);
* truth: a dense noiseless grid, for the error to the true function.

Members: every (learning rate, activation, seed); members with the same seed start from the same
weights whatever their activation. One chunk per learning rate trains ``n_acts * n_seeds``
members in one ensemble pass. Layers are numbered 1 (nearest the input) to ``depth + 1`` (the
output layer) in every array, table and figure.
"""

from __future__ import annotations

import functools
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
from actlab.probes import ensemble_activation_metrics
from actlab.probes.functional import dead_kind
from actlab.seeding import derive_seed
from actlab.stats import mean_ci
from actlab.train import Callback, StepState, TrainConfig, train
from actlab.tuning import GridDecision, grid_step, status_text

__all__ = ["Config", "run", "SNAPSHOT_METRICS", "TAIL_FRACTION", "FLAT", "ANIMATION_FRAMES"]

# Per hidden layer at the snapshot epochs (NaN where a notion does not apply to an activation):
# act/off_fraction is the dead fraction (output exactly 0 on every input) for activations with
# an exact zero region (ReLU) and the inactive fraction (pre-activation < 0 on every input) for
# the other ReLU-like ones (leaky ReLU, GELU): the summary's ``off_kind`` says which; for
# bounded ones the units saturated on every input and the share of (unit, input) pairs in the
# saturated band (partial saturation); ReDo 0.025-dormant for all.
SNAPSHOT_METRICS = (
    "act/off_fraction",
    "act/saturated_fraction",
    "act/saturated_pair_fraction",
    "act/dormant_fraction",
)
LR_FACTOR = 3.0
"""Step of a grid extension in log space: one rate ``LR_FACTOR`` times beyond the edge."""
UNITS_SHOWN = 16
"""Units of the last hidden layer kept at every frame (seed 0) for the training animation."""
ANIMATION_FRAMES = 30
"""Frames of the training animation at most (evenly spread over the recorded epochs)."""
TAIL_FRACTION = 0.1
"""The convergence check compares the MSE at the last epoch with the MSE this fraction of the
epochs earlier (at least one epoch)."""
FLAT = 0.05
"""A relative change of the MSE over that tail within +-FLAT (whole 95% interval) is
'converged'; the same 5% as the activation-swap chapter's convergence check."""


@dataclass(frozen=True)
class Config:
    """Settings of the deep-MLP experiment."""

    activations: tuple[str, ...] = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu")
    """Activations compared (any registry name)."""
    seeds: int = 5
    """Seeds per activation; seed s gives every activation the same initial weights."""
    depth: int = 10
    """Number of hidden layers."""
    width: int = 64
    """Units per hidden layer."""
    epochs: int = 500
    """Full-batch Adam steps."""
    lr: float = 1e-3
    """The fixed learning rate shared by every activation."""
    lr_grid: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    """Learning rates tried per activation; the best on the validation draw is reported too."""
    lr_min: float = 1e-5
    """Smallest rate the grid may be extended to (a pick there is reported as at a bound)."""
    lr_max: float = 1e-1
    """Largest rate the grid may be extended to (a pick there is reported as at a bound)."""
    lr_extend: int = 2
    """Extension rounds: while an activation's pick is at an edge of its grid, one more rate
    a factor LR_FACTOR beyond that edge is tried, at most this many times (0: never)."""
    n_train: int = 200
    """Training points on [-pi, pi]."""
    noise: float = 0.1
    """Standard deviation of the label noise (the noise floor is its square)."""
    n_grid: int = 200
    """Inputs on [-pi, pi] at which hidden activations and fits are recorded."""
    hidden_layers: tuple[int, ...] = (1, 5, 10)
    """Hidden layers (1 = nearest the input) whose activations are stored."""
    snapshot_epochs: tuple[int, ...] = (0, 1, 10, 50, 100, 200, 500)
    """Epochs at which hidden activations and unit statistics are recorded."""
    grad_epochs: tuple[int, ...] = (0, 100, 200)
    """Epochs at which the per-layer gradient magnitudes are reported."""
    frame_every: int = 10
    """Record the fits every this many epochs (frames of the training animation)."""
    init: str = "torch"
    """Weight initialisation scheme (torch, xavier, he)."""
    data_seed: int = 0
    """Seed of the data (noise draws)."""
    device: str = "cpu"
    """Where the training ensembles and their data live (cpu, cuda, cuda:N); the results are
    the same to float rounding. The small analyses at initialisation run on the CPU."""

    def __post_init__(self) -> None:
        check_config(self)
        object.__setattr__(self, "activations", tuple(self.activations))
        check_activations(self, "activations")
        check_choice(self, "init", PLAIN_INITS)
        check_ints(self, {"data_seed": 0, "lr_extend": 0})
        positive = ("seeds", "depth", "width", "epochs", "n_train", "n_grid", "frame_every")
        check_ints(self, dict.fromkeys(positive, 1))
        if self.n_train < 4:
            raise ValueError(f"n_train must be >= 4, got {self.n_train}")
        if not self.activations:
            raise ValueError("activations must name at least one activation")
        if not (self.lr > 0 and all(v > 0 and math.isfinite(v) for v in self.lr_grid)):
            raise ValueError(f"lr and lr_grid must be > 0, got {self.lr}, {self.lr_grid}")
        if not (isinstance(self.lr_min, float | int) and 0 < self.lr_min < math.inf):
            raise ValueError(f"lr_min must be a finite number > 0, got {self.lr_min!r}")
        if not (isinstance(self.lr_max, float | int) and self.lr_min <= self.lr_max < math.inf):
            raise ValueError(f"lr_max must be finite and >= lr_min, got {self.lr_max!r}")
        if not all(self.lr_min <= v <= self.lr_max for v in (self.lr, *self.lr_grid)):
            raise ValueError(
                f"lr and lr_grid must lie in [lr_min, lr_max] = [{self.lr_min}, {self.lr_max}]"
            )
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        for key, bound in (
            ("hidden_layers", self.depth),
            ("snapshot_epochs", self.epochs),
            ("grad_epochs", self.epochs - 1),
        ):
            values = getattr(self, key)
            lo = 1 if key == "hidden_layers" else 0
            if not values or any(not lo <= v <= bound for v in values):
                raise ValueError(f"{key} must lie in [{lo}, {bound}], got {values}")

    @property
    def learning_rates(self) -> tuple[float, ...]:
        """The fixed rate and the grid, sorted, without repeats."""
        return tuple(sorted({self.lr, *self.lr_grid}))


def make_data(cfg: Config) -> dict[str, torch.Tensor]:
    """Train, validation, test and truth sets, each ``x`` ``(n, 1)`` and ``y`` ``(n, 1)``."""
    gen = torch.Generator().manual_seed(derive_seed(cfg.data_seed, "deep-mlp", "noise"))
    x = torch.linspace(-math.pi, math.pi, cfg.n_train, dtype=torch.float64)[:, None]
    mid = (x[1:] + x[:-1]) / 2

    def noisy(grid):
        return torch.sin(grid) + cfg.noise * torch.randn(
            grid.shape, generator=gen, dtype=grid.dtype
        )

    dense = torch.linspace(-math.pi, math.pi, cfg.n_grid, dtype=torch.float64)[:, None]
    data = {
        "x_train": x,
        "y_train": noisy(x),
        "x_val": mid,
        "y_val": noisy(mid),
        "x_test": mid,
        "y_test": noisy(mid),
        "x_grid": dense,
        "y_grid": torch.sin(dense),
    }
    return {k: v.float() for k, v in data.items()}


def _mse(model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (model(x) - y).square().mean(dim=(1, 2))


def _train_chunk(
    cfg: Config, data: dict[str, torch.Tensor], table: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Train the members of ``table`` (default: every (learning rate, activation, seed) of
    :func:`members`) in one ensemble; arrays keyed by name, members in the table's order."""
    table = members(cfg) if table is None else table.reset_index(drop=True)
    dev = torch.device(cfg.device)
    data = {k: v.to(dev) for k, v in data.items()}
    empty = functools.partial(torch.empty, device=dev)  # records stay on the device until the end
    model = EnsembleMLP(
        1,
        [cfg.width] * cfg.depth,
        1,
        list(table.activation),
        list(table.seed),
        init=cfg.init,
        device=dev,
    )
    E, epochs = model.E, cfg.epochs
    val, test = empty(epochs + 1, E), empty(epochs + 1, E)
    grad_trace = empty(epochs, model.n_layers, E)
    frames = [e for e in range(0, epochs + 1, cfg.frame_every)]
    if frames[-1] != epochs:
        frames.append(epochs)
    fits = empty(len(frames), cfg.n_grid, E)
    # Hidden activations only of the fixed-learning-rate members (the tuned ones differ in rate
    # only, and storing all would multiply the largest array of the run).
    keep = torch.tensor(table.index[table.lr == cfg.lr].to_numpy())
    hidden = empty(
        len(cfg.snapshot_epochs), len(cfg.hidden_layers), len(keep), cfg.n_grid, cfg.width
    )
    units = {k: empty(len(cfg.snapshot_epochs), cfg.depth, E) for k in SNAPSHOT_METRICS}
    # The last hidden layer of seed 0 at every frame (a few units), for the animation.
    first_seed = torch.tensor(table.index[(table.lr == cfg.lr) & (table.seed == 0)].to_numpy())
    n_show = min(cfg.width, UNITS_SHOWN)
    last_frames = empty(len(frames), len(first_seed), cfg.n_grid, n_show)

    def observe(epoch: int) -> None:
        """Everything measured on the parameters after ``epoch`` updates."""
        with torch.no_grad():
            out = model(data["x_val"])  # validation and test share the interleaved grid
        val[epoch] = (out - data["y_val"]).square().mean(dim=(1, 2))
        test[epoch] = (out - data["y_test"]).square().mean(dim=(1, 2))
        if epoch in frames:
            f = frames.index(epoch)
            with torch.no_grad():
                out, layers = model(data["x_grid"], return_hidden=True)
            fits[f] = out[..., 0].T
            last_frames[f] = layers[-1][1][first_seed, :, :n_show]
        if epoch in cfg.snapshot_epochs:
            i = cfg.snapshot_epochs.index(epoch)
            with torch.no_grad():
                _, layers = model(data["x_grid"], return_hidden=True)
            for j, layer in enumerate(cfg.hidden_layers):
                hidden[i, j] = layers[layer - 1][1][keep]
            stats = ensemble_activation_metrics(model, data["x_grid"], ranks=False)
            for key in SNAPSHOT_METRICS:
                units[key][i] = stats[key].T  # (layer, E)

    def callback(state: StepState) -> None:
        observe(state.step)
        g = state.grad
        grad_trace[state.step] = torch.stack(
            [model.weight(layer, g).abs().mean(dim=(1, 2)) for layer in range(model.n_layers)]
        )

    result = train(
        model,
        data["x_train"],
        data["y_train"],
        TrainConfig(epochs=epochs),
        lr=list(table.lr),
        callbacks=[Callback(callback, every=1)],
    )
    observe(epochs)
    train_loss = torch.cat([result.loss, _mse(model, data["x_train"], data["y_train"]).cpu()[None]])
    truth = (fits[-1] - data["y_grid"]).square().mean(dim=0)
    return {
        "train": train_loss.numpy(),
        "val": val.cpu().numpy(),
        "test": test.cpu().numpy(),
        "truth_error": truth.cpu().numpy(),
        "grad_trace": grad_trace.cpu().numpy(),
        "fits": fits.cpu().numpy(),
        "frames": np.asarray(frames),
        "hidden": hidden.cpu().numpy(),
        "last_frames": last_frames.cpu().numpy(),
        "units": {k: v.cpu().numpy() for k, v in units.items()},
        "diverged_step": result.diverged_step.numpy(),
    }


def members(cfg: Config) -> pd.DataFrame:
    """One row per member: ``member, lr, activation, seed``; activation outermost (members
    sharing one are adjacent, one slice each in the engine), then learning rate, then seed."""
    rows = [
        (lr, act, seed)
        for act in cfg.activations
        for lr in cfg.learning_rates
        for seed in range(cfg.seeds)
    ]
    table = pd.DataFrame(rows, columns=["lr", "activation", "seed"])
    table.insert(0, "member", np.arange(len(table)))
    return table


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Train every (learning rate, activation, seed) in one ensemble pass, then extend each
    activation's grid where its pick is at an edge (:func:`actlab.tuning.grid_step`), one chunk
    per extra rate with only the activations that need it; no file I/O."""
    data = make_data(cfg)
    progress.expect(cfg.epochs)  # one unit per full-batch step of the one ensemble
    everything = dict(chunks("train", lambda: _train_chunk(cfg, data), work=cfg.epochs))
    hidden = everything.pop("hidden")
    last_frames = everything.pop("last_frames")
    table = members(cfg)
    # Per learning rate, its members ordered (activation, seed): part index = a * seeds + seed.
    index = {lr: table.member[table.lr == lr].to_numpy() for lr in cfg.learning_rates}
    parts = {lr: _take(everything, idx) for lr, idx in index.items()}
    parts[cfg.lr]["hidden"] = hidden
    finals = {act: {} for act in cfg.activations}
    for lr, part in parts.items():
        for a, act in enumerate(cfg.activations):
            finals[act][lr] = _finals(part, slice(a * cfg.seeds, (a + 1) * cfg.seeds))

    # Tidy metrics: loss curves per member and epoch, gradient trace per layer.
    frames = _metric_frames(everything, cfg.epochs, table)
    decisions, extra = _extend_grid(cfg, data, chunks, finals, start=len(table))
    for chunk, sub in extra:
        frames += _metric_frames(chunk, cfg.epochs, sub)
        table = pd.concat([table, sub], ignore_index=True)
    metrics = pd.concat(frames, ignore_index=True)

    fixed = parts[cfg.lr]
    best_lr = {a: d.pick if d.pick is not None else cfg.lr for a, d in decisions.items()}
    arrays, axes, coords = _arrays(cfg, fixed, finals, best_lr)
    arrays["last_hidden_frames"] = last_frames.transpose(1, 0, 2, 3)
    axes["last_hidden_frames"] = ("activation", "frame", "input", "unit")
    coords["last_hidden_frames/activation"] = list(cfg.activations)
    coords["last_hidden_frames/frame"] = coords["fits/frame"]
    arrays["x_train"] = data["x_train"][:, 0].double().numpy()
    arrays["y_train"] = data["y_train"][:, 0].double().numpy()
    axes["x_train"] = axes["y_train"] = ("point",)
    summary = _summary(cfg, parts, finals, best_lr)
    summary.update(_floors(data))
    summary["best_line_truth"] = best_line_error(arrays["x_grid"])
    sizes = [1] + [cfg.width] * cfg.depth + [1]
    summary["n_params"] = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:], strict=True))
    delta = backward_signal_at_init(cfg, data["x_train"])  # (layer, member)
    arrays["backward_signal_init"] = delta.T  # member, layer
    axes["backward_signal_init"] = ("member", "layer")
    coords["backward_signal_init/layer"] = list(range(1, cfg.depth + 1))
    for row in summary["table"]:
        act = row["activation"]
        for tag, rate in (("fixed", cfg.lr), ("tuned", best_lr[act])):
            excess = finals[act][rate]["test"].astype(np.float64) - summary["test_floor"]
            row[f"{tag}_excess"] = mean_ci(excess)
        d = decisions[act]
        row["lr_status"] = d.status
        row["lr_status_text"] = status_text(d)
        row["lr_tried"] = sorted(finals[act])
    inputs = input_size_at_init(cfg, data["x_train"])  # (layer, member)
    arrays["input_size_init"] = inputs.T  # member, layer
    axes["input_size_init"] = ("member", "layer")
    coords["input_size_init/layer"] = list(range(1, cfg.depth + 1))
    for a, row in enumerate(summary["table"]):
        sl = slice(a * cfg.seeds, (a + 1) * cfg.seeds)
        row["log10_delta_ratio"] = mean_ci(np.log10(delta[0, sl]) - np.log10(delta[-1, sl]))
        row["log10_input_ratio"] = mean_ci(np.log10(inputs[0, sl]) - np.log10(inputs[-1, sl]))
    summary.update(convergence(cfg, metrics, best_lr, summary["table"]))
    summary.update(init_spread_factor(cfg))
    summary.update(
        lr_min=cfg.lr_min, lr_max=cfg.lr_max, lr_factor=LR_FACTOR, lr_extend=cfg.lr_extend
    )
    return Results(metrics, arrays, axes, coords, summary)


def _finals(part: dict[str, Any], sl: slice | np.ndarray) -> dict[str, np.ndarray]:
    """The final values of the members ``sl`` of a chunk's arrays (one per seed)."""
    return {
        "train": part["train"][-1, sl],
        "val": part["val"][-1, sl],
        "test": part["test"][-1, sl],
        "truth": part["truth_error"][sl],
        "diverged": part["diverged_step"][sl],
        "fit": part["fits"][-1][:, sl].T,  # seed, input
    }


def _metric_frames(chunk: dict[str, Any], epochs: int, table: pd.DataFrame) -> list:
    """The tidy rows of one chunk, its members numbered as in ``table`` (same order)."""
    ids = table.member.to_numpy()
    frames = [_long(chunk[split], f"{split}/mse", ids) for split in ("train", "val", "test")]
    # The error to the true function, at the last epoch only.
    truth = _long(chunk["truth_error"][None], "truth/mse", ids)
    truth["step"] = epochs
    frames.append(truth)
    trace = chunk["grad_trace"]  # (epochs, layers, E)
    for layer in range(trace.shape[1]):
        frames.append(_long(trace[:, layer], "grad/weight_mean_abs", ids, layer=layer + 1))
    return [f.merge(table, on="member") for f in frames]


def _scores(finals: dict[str, dict[float, dict]]) -> dict[str, dict[float, float]]:
    """Per activation and rate, the mean final validation MSE over seeds; NaN where any seed
    diverged or ended non-finite (such a rate is never picked)."""
    out = {}
    for act, by_rate in finals.items():
        out[act] = {}
        for lr, f in by_rate.items():
            ok = np.all(f["diverged"] < 0) and np.isfinite(f["val"]).all()
            out[act][lr] = float(f["val"].mean()) if ok else math.nan
    return out


def _decide(cfg: Config, finals: dict) -> dict[str, GridDecision]:
    return grid_step(_scores(finals), factor=LR_FACTOR, lr_min=cfg.lr_min, lr_max=cfg.lr_max)


def _extend_grid(cfg, data, chunks, finals, start: int):
    """Up to ``cfg.lr_extend`` rounds: each activation whose pick is at an edge of its grid gets
    the one rate :func:`grid_step` asks for; activations asking for the same rate share one
    chunk (key ``extend{round}-lr{rate}``). ``finals`` gains the new rates; returns the final
    decisions and, per extra chunk, its arrays and member table (ids from ``start``)."""
    extra = []
    decisions = _decide(cfg, finals)
    for round_ in range(1, cfg.lr_extend + 1):
        wanted: dict[float, list[str]] = {}
        for act in cfg.activations:
            rate = decisions[act].next_rate
            if rate is not None:
                wanted.setdefault(rate, []).append(act)
        if not wanted:
            break
        for rate, acts in sorted(wanted.items()):
            rows = [(rate, act, seed) for act in acts for seed in range(cfg.seeds)]
            sub = pd.DataFrame(rows, columns=["lr", "activation", "seed"])
            sub.insert(0, "member", np.arange(start, start + len(sub)))
            start += len(sub)
            progress.expect(cfg.epochs)  # more work, announced before it starts
            chunk = chunks(
                f"extend{round_}-lr{rate:.6g}",
                lambda sub=sub: _train_chunk(cfg, data, sub),
                work=cfg.epochs,
            )
            chunk = {k: v for k, v in chunk.items() if k not in ("hidden", "last_frames")}
            for i, act in enumerate(acts):
                finals[act][rate] = _finals(chunk, slice(i * cfg.seeds, (i + 1) * cfg.seeds))
            extra.append((chunk, sub))
        decisions = _decide(cfg, finals)
    return decisions, extra


def backward_signal_at_init(cfg: Config, x: torch.Tensor) -> np.ndarray:
    """The per-example backward signal at initialisation, per hidden layer and member of the
    shared-rate ensemble (member ``m = activation * seeds + seed``), ``(depth, members)``.

    For every input ``x_i`` the signal is ``d y_hat_i / d z_l`` (the output's gradient at layer
    ``l``'s pre-activations for that input alone: the loss's own factor, the residual, left
    out), its root mean square over the layer's units, then the root mean square over the
    inputs. This is the quantity mean-field theory predicts (the gradient-flow chapter); the
    weight gradient multiplies it by the layer's input, and the full-batch gradient averages
    those over the inputs. Float64, from the same initial weights as the trained members.
    """
    acts = [a for a in cfg.activations for _ in range(cfg.seeds)]
    seeds = [s for _ in cfg.activations for s in range(cfg.seeds)]
    model = EnsembleMLP(
        1, [cfg.width] * cfg.depth, 1, acts, seeds, init=cfg.init, dtype=torch.float64
    )
    out, layers = model(x.double(), return_hidden=True)
    grads = torch.autograd.grad(out.sum(), [z for z, _ in layers])  # each (E, B, width)
    rms = [g.square().mean(dim=(1, 2)).sqrt() for g in grads]  # per member
    return torch.stack(rms).detach().numpy()


def input_size_at_init(cfg: Config, x: torch.Tensor) -> np.ndarray:
    """The size of each hidden layer's input at initialisation, ``(depth, members)`` (member
    ``m = activation * seeds + seed``): for layer 1 the inputs ``x``, for layer ``l > 1`` the
    outputs ``h`` of layer ``l - 1``, as the root mean square over units and inputs. A weight
    gradient is the backward signal times this input, so its ratio between two layers enters
    kappa as a factor. Float64, from the same initial weights as the trained members.
    """
    acts = [a for a in cfg.activations for _ in range(cfg.seeds)]
    seeds = [s for _ in cfg.activations for s in range(cfg.seeds)]
    model = EnsembleMLP(
        1, [cfg.width] * cfg.depth, 1, acts, seeds, init=cfg.init, dtype=torch.float64
    )
    with torch.no_grad():
        _, layers = model(x.double(), return_hidden=True)
    first = x.double().square().mean().sqrt().expand(len(acts))
    rest = [h.square().mean(dim=(1, 2)).sqrt() for _, h in layers[:-1]]
    return torch.stack([first, *rest]).numpy()


def best_line_error(x: np.ndarray) -> float:
    """The error to the truth of the best straight line: the least-squares line through
    ``sin`` on the dense grid ``x``, its MSE there. A network of identity units is one linear
    map, so no training can bring its error to the truth below this."""
    x = np.asarray(x, dtype=np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.sin(x), rcond=None)
    return float(np.mean((design @ coef - np.sin(x)) ** 2))


def tail_epochs(cfg: Config) -> int:
    """Epochs the convergence check looks back over: :data:`TAIL_FRACTION` of the run, at least
    one."""
    return max(1, min(cfg.epochs, round(TAIL_FRACTION * cfg.epochs)))


def convergence(
    cfg: Config, metrics: pd.DataFrame, best_lr: dict[str, float], table: list[dict]
) -> dict[str, Any]:
    """Per activation (each row of ``table`` gains ``converge_fixed`` and ``converge_tuned``,
    at the shared and at the tuned rate): per seed the relative change
    ``MSE(epochs) / MSE(epochs - w) - 1`` of the held-out (``test``) and training (``train``)
    MSE over the last ``w`` = :func:`tail_epochs` epochs, as a mean and 95% interval over seeds
    (negative: still falling). Returns the window for the summary."""
    w = tail_epochs(cfg)
    start = cfg.epochs - w
    ends = metrics[metrics.step.isin([start, cfg.epochs])]
    for row in table:
        act = row["activation"]
        for tag, rate in (("fixed", cfg.lr), ("tuned", best_lr[act])):
            mine = ends[(ends.activation == act) & np.isclose(ends.lr, rate)]
            out = {}
            for split in ("test", "train"):
                at = mine[mine.metric == f"{split}/mse"].pivot(
                    index="seed", columns="step", values="value"
                )
                with np.errstate(invalid="ignore", divide="ignore"):
                    change = at[cfg.epochs].to_numpy() / at[start].to_numpy() - 1.0
                out[split] = mean_ci(change)
            if tag == "fixed":
                out["last_drop"] = last_drop(cfg, metrics, act, rate)
            row[f"converge_{tag}"] = out
    return {"tail_epochs": w, "converge_from": start, "flat": FLAT}


def last_drop(cfg: Config, metrics: pd.DataFrame, activation: str, rate: float) -> int | None:
    """The latest epoch, over the seeds, at which the held-out MSE of ``activation`` at
    ``rate`` had fallen by more than :data:`FLAT` over the :func:`tail_epochs` epochs before it
    (``MSE(e) / MSE(e - w) - 1 < -FLAT``); None if it never did. A late drop after a long flat
    stretch is the mark of a plateau that training left."""
    w = tail_epochs(cfg)
    rows = metrics[
        (metrics.metric == "test/mse")
        & (metrics.activation == activation)
        & np.isclose(metrics.lr, rate)
    ]
    series = rows.pivot(index="step", columns="seed", values="value").sort_index().to_numpy()
    if series.shape[0] <= w:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        fell = series[w:] / series[:-w] - 1.0 < -FLAT  # (epoch - w, seed)
    epochs = np.nonzero(fell.any(axis=1))[0]
    return int(epochs.max() + w) if epochs.size else None


def _floors(data: dict[str, torch.Tensor]) -> dict[str, float]:
    """The floors of this run's own draws: the MSE of the true function ``sin`` on the training
    and on the test labels (each a noisy estimate of ``noise**2``)."""
    out = {}
    for split in ("train", "test"):
        x, y = data[f"x_{split}"].double(), data[f"y_{split}"].double()
        out[f"{split}_floor"] = float((y - torch.sin(x)).square().mean())
    return out


def init_spread_factor(cfg: Config) -> dict[str, float]:
    """What the initialisation alone predicts for the spread of a linear (identity) network.

    A hidden-to-hidden layer maps a signal whose units vary over the inputs with some standard
    deviation to one that varies ``rho = sqrt(width * Var(w))`` times as much (the bias is
    constant over the inputs and adds nothing to the spread). ``Var(w)`` is measured on seed 0's
    initial hidden-to-hidden weights (layers 2 to ``depth``) of ``cfg.init``: ``1/(3 width)`` for
    torch's default ``U(+-1/sqrt(fan_in))``, hence a factor of ``sqrt(1/3) = 0.577`` per layer.
    NaN with a single hidden layer.
    """
    model = EnsembleMLP(1, [cfg.width] * cfg.depth, 1, ["identity"], [0], init=cfg.init)
    if cfg.depth < 2:
        return {"init_weight_var": math.nan, "init_spread_factor": math.nan}
    with torch.no_grad():
        w = torch.cat([model.weight(layer).reshape(-1) for layer in range(1, cfg.depth)])
    var = float(w.double().var())
    return {"init_weight_var": var, "init_spread_factor": math.sqrt(cfg.width * var)}


def _take(part: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    """The members ``idx`` of a chunk's arrays (the member axis is the last one)."""
    out = {}
    for key, value in part.items():
        if key == "frames":
            out[key] = value
        elif key == "units":
            out[key] = {k: v[..., idx] for k, v in value.items()}
        else:
            out[key] = value[..., idx]
    return out


def _long(
    values: np.ndarray, metric: str, ids: np.ndarray, layer: int | None = None
) -> pd.DataFrame:
    """``values`` ``(epochs, E)`` as tidy rows (member, step, metric, value, layer); column m of
    ``values`` is member ``ids[m]``."""
    steps, E = values.shape
    frame = pd.DataFrame(
        {
            "member": np.tile(np.asarray(ids), steps),
            "step": np.repeat(np.arange(steps), E),
            "metric": metric,
            "value": values.reshape(-1).astype(np.float64),
        }
    )
    frame["layer"] = np.nan if layer is None else float(layer)
    return frame


def _arrays(cfg, fixed, finals, best_lr):
    """Named arrays of the fixed-learning-rate members (m = activation * seeds + seed)."""
    n_layers = cfg.depth + 1
    grad_idx = list(cfg.grad_epochs)
    arrays = {
        "hidden": fixed["hidden"].transpose(2, 0, 1, 3, 4),  # member, epoch, layer, input, unit
        "fits": fixed["fits"].transpose(2, 0, 1),  # member, frame, input
        "grad_snapshots": fixed["grad_trace"][grad_idx].transpose(2, 0, 1),  # member, epoch, layer
        "grad_trace": fixed["grad_trace"].transpose(2, 0, 1),  # member, epoch, layer
        "units": np.stack([fixed["units"][k] for k in SNAPSHOT_METRICS]).transpose(3, 1, 2, 0),
        "x_grid": np.linspace(-math.pi, math.pi, cfg.n_grid),
    }
    best = np.stack(
        [finals[act][best_lr[act]]["fit"] for act in cfg.activations]
    )  # activation, seed, input
    arrays["fits_best_lr"] = best
    axes = {
        "hidden": ("member", "epoch", "layer", "input", "unit"),
        "fits": ("member", "frame", "input"),
        "grad_snapshots": ("member", "epoch", "layer"),
        "grad_trace": ("member", "epoch", "layer"),
        "units": ("member", "epoch", "layer", "metric"),
        "x_grid": ("input",),
        "fits_best_lr": ("activation", "seed", "input"),
    }
    coords = {
        "hidden/epoch": list(cfg.snapshot_epochs),
        "hidden/layer": list(cfg.hidden_layers),
        "fits/frame": [int(v) for v in fixed["frames"]],
        "grad_snapshots/epoch": list(cfg.grad_epochs),
        "grad_snapshots/layer": list(range(1, n_layers + 1)),
        "grad_trace/layer": list(range(1, n_layers + 1)),
        "units/epoch": list(cfg.snapshot_epochs),
        "units/layer": list(range(1, cfg.depth + 1)),
        "units/metric": list(SNAPSHOT_METRICS),
        "fits_best_lr/activation": list(cfg.activations),
    }
    return arrays, axes, coords


def _summary(
    cfg: Config, parts: dict[float, dict], finals: dict, best_lr: dict[str, float]
) -> dict[str, Any]:
    """Per activation: final MSEs with 95% CIs over seeds, gradient ratios, the tuned rate."""
    S = cfg.seeds
    table = []
    for a, act in enumerate(cfg.activations):
        sl = slice(a * S, (a + 1) * S)
        kind = dead_kind(get_activation(act))  # which notion act/off_fraction counts
        row: dict[str, Any] = {"activation": act, "best_lr": best_lr[act], "off_kind": kind}
        # Learnable parameters of the activation itself, per hidden layer (PReLU's slope, ...).
        row["act_params"] = len(get_activation(act).params) * cfg.depth
        for tag, lr in (("fixed", cfg.lr), ("tuned", best_lr[act])):
            f = finals[act][lr]
            for split in ("train", "test", "truth"):
                row[f"{tag}_{split}"] = mean_ci(f[split])
            row[f"{tag}_diverged"] = int((f["diverged"] >= 0).sum())
        fixed = parts[cfg.lr]
        trace = fixed["grad_trace"].astype(np.float64)  # (epochs, layers, E); float64 logs
        for epoch in cfg.grad_epochs:
            ratio = np.log10(trace[epoch, 0, sl]) - np.log10(trace[epoch, cfg.depth - 1, sl])
            row[f"log10_grad_ratio_{epoch}"] = mean_ci(ratio)
        # How much a unit's output varies over the inputs (std over x, mean over units): near
        # 0 when the signal has collapsed and every input looks the same to the layer.
        with np.errstate(invalid="ignore"):
            spread = np.nanmean(np.nanstd(fixed["hidden"], axis=3), axis=-1)  # snap, layer, m
        for tag, e in (("start", 0), ("end", -1)):
            row[f"spread_{tag}"] = {
                str(layer): mean_ci(spread[e, j, sl]) for j, layer in enumerate(cfg.hidden_layers)
            }
            for key in SNAPSHOT_METRICS:
                per_layer = fixed["units"][key][e][:, sl]  # layer, seed
                name = key.split("/")[1]
                row[f"{name}_{tag}"] = mean_ci(per_layer.mean(axis=0))
                row[f"{name}_{tag}_worst_layer"] = _worst_layer(per_layer)
        table.append(row)
    return {
        "table": table,
        "activations": list(cfg.activations),
        "noise_floor": cfg.noise**2,
        "n_train": cfg.n_train,
        "n_grid": cfg.n_grid,
        "width": cfg.width,
        "noise": cfg.noise,
        "init": cfg.init,
        "snapshot_epochs": list(cfg.snapshot_epochs),
        "grad_epochs": list(cfg.grad_epochs),
        "frame_every": cfg.frame_every,
        "hidden_layers": list(cfg.hidden_layers),
        "lr": cfg.lr,
        "learning_rates": list(cfg.learning_rates),
        "seeds": S,
        "epochs": cfg.epochs,
        "depth": cfg.depth,
        "ratio_layers": [1, cfg.depth],
    }


def _worst_layer(per_layer: np.ndarray) -> dict[str, float] | None:
    """The layer (1-based) with the highest seed-mean fraction ``per_layer`` ``(layer, seed)``
    and that fraction; None where the fraction does not apply (NaN)."""
    means = per_layer.mean(axis=1)
    if np.isnan(means).all():
        return None
    j = int(np.nanargmax(means))
    return {"layer": j + 1, "fraction": float(means[j])}


SMOKE = Config(
    activations=("identity", "tanh", "relu"),
    seeds=2,
    depth=3,
    width=8,
    epochs=20,
    lr_grid=(3e-3,),
    n_train=32,
    n_grid=24,
    hidden_layers=(1, 3),
    snapshot_epochs=(0, 1, 10, 20),
    grad_epochs=(0, 10),
    frame_every=5,
)
DEFAULT = Config()
FULL = Config(seeds=10, lr_grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2))

presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
