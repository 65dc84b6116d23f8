"""Swapping activations mid-training: tanh for 30 of 60 epochs, then ReLU, with Adam's state kept
or reset, against tanh and ReLU throughout.

Task (drawn from the run's own generator): 1-D regression ``y = sin(3x) + x/2 + N(0, noise^2)``
with ``x ~ U(-2, 2)``, ``n_train`` training points and ``n_test`` held-out points (the held-out
MSE cannot go below ``noise^2``, the *noise floor*).

Arms (:data:`ARMS`), each trained with the same seeds, so that seed s starts every arm from the
same weights and sees the same minibatches:

* ``before``: ``cfg.before`` (tanh) for all epochs;
* ``after``: ``cfg.after`` (ReLU) for all epochs;
* ``swap_kept``: ``before`` for ``swap_epoch`` epochs, then ``after``
  (:meth:`EnsembleMLP.set_activations`: weights untouched) with Adam's moments and step count
  carried on;
* ``swap_reset``: the same swap, then Adam's state forgotten (moments zero, step count 0: the
  next update is a fresh Adam's first);
* ``fresh_after``: the control of the swap arms' training time: a network with ``cfg.after``
  from the same initial weights as the others, trained only from ``swap_epoch`` on (a fresh
  Adam), on the minibatches those epochs draw. Like the swap arms it gets
  ``epochs - swap_epoch`` epochs of ``after``; what they have in addition is the warm start.

The first four arms are members of one ensemble (``"main"``), trained in two calls of
:func:`actlab.train.train` (epochs ``[0, swap)`` and ``[swap, epochs)``, the second with
``first_epoch=swap``: every arm sees the minibatches an uninterrupted run would). At the swap,
``optimizer.reset(mask)`` forgets the state of the reset arm's members only (each member has
its own step count). ``fresh_after`` is a second ensemble (``"fresh"``) trained in the second
call only; its arrays hold NaN before the swap (it does not exist yet) and, right after it, its
initial network.

Measured: the full training and held-out MSE every ``eval_every`` updates, at every epoch's
end and after every update of the ``dense_epochs`` after the swap (the swap itself twice: before
and after it, on the same weights); after every epoch, the fraction of units off on every
training input as ``act/off_fraction`` counts it (dead: output exactly 0, for ReLU; NaN for
tanh) and as ``act/inactive_fraction`` does (pre-activation negative everywhere), computed here
per unit and checked against the probes by the tests; each unit's state right after the swap
and at the end; the fit and seed 0's hidden units on a grid; Adam's state at the swap; just
before the swap, the tanh network's saturation (:func:`_saturation`: (unit, input) pairs with
``|tanh z| > 0.99`` and units with it on every input). The summary adds whether each arm was
still improving at the end (:func:`_convergence`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress, stats
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
from actlab.optim import EnsembleOptimizer
from actlab.probes.functional import dead_kind
from actlab.seeding import derive_seed
from actlab.stats import ci_band, mean_ci, paired_differs
from actlab.train import Callback, TrainConfig, train

__all__ = [
    "ARMS",
    "Config",
    "make_data",
    "train_arms",
    "run",
]

ARMS = ("before", "after", "swap_kept", "swap_reset", "fresh_after")
"""The arms, in the order of every array's ``arm`` axis."""
SPLITS = ("train", "test")
UNIT_METRICS = ("act/off_fraction", "act/inactive_fraction")
WHEN = ("before_swap", "after_swap", "end")
"""Moments at which fits, hidden units and unit states are kept (before/after: same weights)."""
X_RANGE = (-2.0, 2.0)
FLAT_THRESHOLD = 0.05
"""An arm is "still improving" at the end when its held-out MSE fell by more than this fraction
over the last :func:`tail_epochs` epochs (mean over seeds), "rising" when it grew by more, and
"flat at the end" otherwise."""
SATURATED = 0.99
"""A tanh unit is saturated on an input when ``|tanh z| > SATURATED`` (``|z| > 2.65``)."""
SATURATION_KINDS = ("pairs", "every_input")
"""Saturation just before the swap, per layer: the fraction of (unit, training input) pairs in
the saturated band, and the fraction of units saturated on every training input."""
TAIL_FRACTION = 0.1
"""The convergence check looks at the last this fraction of the epochs (at least one)."""


@dataclass(frozen=True)
class Config:
    """Settings of the activation-swap experiment."""

    before: str = "tanh"
    """Activation of the first phase (any registry name without learnable parameters, or with
    as many as ``after``)."""
    after: str = "relu"
    """Activation swapped in at ``swap_epoch``; it must have an "off" regime (ReLU-like), whose
    dead units the experiment counts."""
    epochs: int = 60
    """Epochs in all (minibatch Adam)."""
    swap_epoch: int = 30
    """Epochs with ``before`` before the swap, in [1, epochs - 1]."""
    seeds: int = 20
    """Seeds per arm (>= 2, for confidence intervals); seed s gives every arm the same initial
    weights and minibatch order."""
    width: int = 32
    """Units per hidden layer."""
    depth: int = 2
    """Hidden layers."""
    lr: float = 3e-3
    """Adam's learning rate (every arm)."""
    batch_size: int = 32
    """Minibatch size."""
    n_train: int = 512
    """Training points."""
    n_test: int = 512
    """Held-out points."""
    noise: float = 0.1
    """Standard deviation of the label noise (the held-out noise floor is its square)."""
    eval_every: int = 8
    """Measure both losses on the full sets after every this many updates (and at every
    epoch's end)."""
    dense_epochs: int = 1
    """For this many epochs after the swap, measure after every update (to see the spike)."""
    n_grid: int = 200
    """Inputs on [-2, 2] at which the fits and hidden units are drawn."""
    init: str = "torch"
    """Weight initialisation scheme (torch, xavier, he)."""
    data_seed: int = 0
    """Seed of the data."""
    device: str = "cpu"
    """Where the ensembles and their data live (cpu, cuda, cuda:N); the results are the same
    to float rounding."""

    def __post_init__(self) -> None:
        check_config(self)
        ints = ("epochs", "swap_epoch", "seeds", "width", "depth", "batch_size", "n_train")
        check_ints(self, dict.fromkeys((*ints, "n_test", "n_grid", "eval_every"), 1))
        check_ints(self, {"dense_epochs": 0, "data_seed": 0})
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 (confidence intervals), got {self.seeds}")
        if not 1 <= self.swap_epoch < self.epochs:
            raise ValueError(
                f"swap_epoch must lie in [1, epochs - 1] = [1, {self.epochs - 1}], "
                f"got {self.swap_epoch}"
            )
        if self.batch_size > self.n_train:
            raise ValueError(f"batch_size must be <= n_train, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        check_choice(self, "init", PLAIN_INITS)
        check_activations(self, "before", "after")
        before, after = get_activation(self.before), get_activation(self.after)
        if before.name == after.name:
            raise ValueError(f"before and after must differ, both are {before.name!r}")
        if len(before.params) != len(after.params):
            raise ValueError(
                f"before ({before.name}) and after ({after.name}) must have as many learnable "
                "parameters (the swap keeps the parameter buffer)"
            )
        if dead_kind(after) is None:
            raise ValueError(
                f"after must be an activation with an off regime whose dead units can be "
                f"counted (relu, leaky_relu, gelu, ...), got {after.name!r}"
            )


def _f(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(3 * x) + 0.5 * x


def make_data(cfg: Config) -> dict[str, torch.Tensor]:
    """Training, held-out and plotting sets: ``x`` ``(n, 1)``, ``y`` ``(n, 1)`` (float32)."""
    gen = torch.Generator().manual_seed(derive_seed(cfg.data_seed, "activation-swap", "data"))
    lo, hi = X_RANGE
    data = {}
    for split, n in (("train", cfg.n_train), ("test", cfg.n_test)):
        x = lo + (hi - lo) * torch.rand(n, 1, generator=gen, dtype=torch.float64)
        data[f"x_{split}"] = x
        data[f"y_{split}"] = _f(x) + cfg.noise * torch.randn(n, 1, generator=gen, dtype=x.dtype)
    data["x_grid"] = torch.linspace(lo, hi, cfg.n_grid, dtype=torch.float64)[:, None]
    data["y_grid"] = _f(data["x_grid"])
    return {k: v.float() for k, v in data.items()}


def layout(cfg: Config) -> dict[str, Any]:
    """Which members of which ensemble hold each arm: ``{arm: (ensemble, slice)}``, plus each
    ensemble's activations in phase 1 and phase 2 and its seeds."""
    S, b, a = cfg.seeds, cfg.before, cfg.after
    return {
        "arms": {
            "before": ("main", slice(0, S)),
            "after": ("main", slice(S, 2 * S)),
            "swap_kept": ("main", slice(2 * S, 3 * S)),
            "swap_reset": ("main", slice(3 * S, 4 * S)),
            "fresh_after": ("fresh", slice(0, S)),
        },
        "phase1": {"main": [b] * S + [a] * S + [b] * 2 * S, "fresh": [a] * S},
        "phase2": {"main": [b] * S + [a] * 3 * S, "fresh": [a] * S},
        "seeds": {"main": list(range(S)) * 4, "fresh": list(range(S))},
        # The epoch at which each ensemble starts training ("fresh": at the swap).
        "start": {"main": 0, "fresh": cfg.swap_epoch},
    }


# --------------------------------------------------------------------------------------------
# Training


def _off_units(model: EnsembleMLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per unit, whether it is off on every input of ``x``, ``(E, layer, unit)`` float (0/1):
    with each member's own notion, as ``act/off_fraction`` counts it (output exactly 0 for
    ReLU-like "dead" activations, pre-activation < 0 for "inactive" ones, NaN where neither
    applies, e.g. tanh); and pre-activation < 0 (``act/inactive_fraction``'s notion)."""
    with torch.no_grad():
        _, hidden = model(x, return_hidden=True)
    off, inactive = [], []
    for z, h in hidden:  # (E, B, width)
        neg = (z < 0).all(dim=1).double()
        layer_off = torch.full_like(neg, math.nan)
        for run in model.runs:
            kind = _dead_kind(run.activation.name)
            part = slice(run.start, run.stop)
            if kind == "dead":
                layer_off[part] = (h[part] == 0).all(dim=1).double()
            elif kind == "inactive":
                layer_off[part] = neg[part]
        off.append(layer_off)
        inactive.append(neg)
    return torch.stack(off, 1), torch.stack(inactive, 1)


def _saturation(model: EnsembleMLP, x: torch.Tensor) -> torch.Tensor:
    """``(layer, kind, E)`` float64, kinds :data:`SATURATION_KINDS`: for tanh members, the
    fraction of (unit, input) pairs with ``|tanh z| > SATURATED`` and of units with it on every
    input of ``x``; NaN for members computing with another activation."""
    with torch.no_grad():
        _, hidden = model(x, return_hidden=True)
    out = torch.full((len(hidden), len(SATURATION_KINDS), model.E), math.nan, dtype=torch.float64)
    for layer, (_, h) in enumerate(hidden):  # h: (E, B, width)
        band = h.abs() > SATURATED
        for run in model.runs:
            if run.activation.name != "tanh":
                continue
            part = slice(run.start, run.stop)
            out[layer, 0, part] = band[part].double().mean((1, 2))
            out[layer, 1, part] = band[part].all(dim=1).double().mean(-1)
    return out


@functools.cache
def _dead_kind(name: str) -> str | None:
    return dead_kind(get_activation(name))


def _adam_state(opt: EnsembleOptimizer, E: int) -> torch.Tensor:
    """``(3, E)``: the step count and the norms of member m's first and second moments."""
    out = torch.zeros(3, E, dtype=torch.float64)
    out[0] = opt.steps.double()
    for q, key in ((1, "m"), (2, "v")):
        sq = torch.zeros(E, dtype=torch.float64, device=opt.param.device).index_add_(
            0, opt.member_of, opt.state[key].double().square()
        )
        out[q] = sq.sqrt()
    return out


def eval_steps(cfg: Config) -> list[int]:
    """The updates after which both losses are measured (global step numbers): every
    ``eval_every``-th, every epoch end, and every step of the ``dense_epochs`` after the swap.
    The swap's step appears twice in the recorded points (before and after the swap)."""
    spe = steps_per_epoch(cfg)
    swap, total = cfg.swap_epoch * spe, cfg.epochs * spe
    dense = range(swap, min(total, swap + cfg.dense_epochs * spe))
    return [g for g in range(total + 1) if g % cfg.eval_every == 0 or g % spe == 0 or g in dense]


def steps_per_epoch(cfg: Config) -> int:
    """Updates per epoch (the last minibatch may be smaller)."""
    return math.ceil(cfg.n_train / cfg.batch_size)


def train_arms(
    cfg: Config,
    data: dict[str, torch.Tensor],
    on_swap: Callable[[dict[str, tuple[EnsembleMLP, EnsembleOptimizer]]], None] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Train both ensembles through the swap; ``{ensemble: {name: array, member axis last}}``.

    ``on_swap({ensemble: (model, optimizer)})`` is called right after the swap (and the reset),
    before the first update of phase 2 (the tests read the optimiser state there).

    Arrays (the swap is recorded twice: before it, then after it, on the same weights):

    * ``train``, ``test`` ``(points, E)``: full-set MSE after the updates of
      :func:`eval_steps`; ``step`` ``(points,)``: those global step numbers;
    * ``off``, ``inactive`` ``(epoch points, layer, E)``: the fractions of units off (as
      ``act/off_fraction``) and with a negative pre-activation on every training input (as
      ``act/inactive_fraction``) after every epoch;
    * ``units`` ``(2, layer, unit, E)``: each unit off right after the swap and at the end;
    * ``fit`` ``(3, grid, E)`` at :data:`WHEN`; ``hidden`` ``(3, layer, grid, unit, E0)`` for the
      members of seed 0 only;
    * ``adam`` ``(2, 3, E)``: before and after the reset, the step count, ``|m|`` and ``|v|``;
    * ``sat`` ``(1, layer, kind, E)``: just before the swap, :func:`_saturation` on the
      training inputs (NaN for members not computing with tanh then).
    """
    lay = layout(cfg)
    data = {k: v.to(cfg.device) for k, v in data.items()}
    x, y, grid = data["x_train"], data["y_train"], data["x_grid"]
    spe, swap = steps_per_epoch(cfg), cfg.swap_epoch * steps_per_epoch(cfg)
    evals = eval_steps(cfg)
    models = {
        name: EnsembleMLP(
            1,
            [cfg.width] * cfg.depth,
            1,
            acts,
            lay["seeds"][name],
            init=cfg.init,
            device=cfg.device,
        )
        for name, acts in lay["phase1"].items()
    }
    first = {
        name: [m for m, s in enumerate(seeds) if s == 0] for name, seeds in lay["seeds"].items()
    }
    keys = ("step", "train", "test", "off", "inactive", "fit", "hidden", "units", "adam", "sat")
    log: dict[str, dict[str, list]] = {name: {k: [] for k in keys} for name in models}
    # Both losses in one forward pass over the training and held-out inputs.
    x_eval = torch.cat([x, data["x_test"]])
    y_eval = torch.cat([y, data["y_test"]])
    n = x.shape[0]

    def observe(name: str, model: EnsembleMLP, step: int) -> None:
        """Losses after ``step`` updates; the unit fractions too at an epoch's end."""
        rec = log[name]
        with torch.no_grad():
            sq = (model(x_eval) - y_eval).square()[..., 0]  # (E, n + n_test)
        rec["step"].append(step)
        rec["train"].append(sq[:, :n].mean(1))
        rec["test"].append(sq[:, n:].mean(1))
        if step % spe == 0:
            off, inactive = _off_units(model, x)
            rec["off"].append(off.mean(-1).T)
            rec["inactive"].append(inactive.mean(-1).T)

    def snapshot(name: str, model: EnsembleMLP, units: bool) -> None:
        """The fit on the grid, seed 0's hidden units, and each unit's off state."""
        rec = log[name]
        with torch.no_grad():
            out, hidden = model(grid, return_hidden=True)
        rec["fit"].append(out[..., 0].T)  # (grid, E)
        rec["hidden"].append(torch.stack([h[first[name]] for _, h in hidden]).permute(0, 2, 3, 1))
        if units:
            rec["units"].append(_off_units(model, x)[0].permute(1, 2, 0))
        else:  # just before the swap
            rec["sat"].append(_saturation(model, x))

    def callback(name: str, offset: int, stop: int) -> Callback:
        # A callback sees the parameters before an update: local step 0 of phase 2 is the
        # state right after the swap.
        at = {g - offset for g in evals if offset <= g < stop}
        return Callback(lambda s: observe(name, s.model, offset + s.step), at=at)

    opts = {}
    phase1 = TrainConfig(epochs=cfg.swap_epoch, batch_size=cfg.batch_size, lr=cfg.lr)
    for name, model in models.items():
        if lay["start"][name] > 0:  # the fresh network: it starts at the swap, a fresh Adam
            lr = torch.full((model.E,), cfg.lr, dtype=torch.float64)
            opt = opts[name] = EnsembleOptimizer(
                model.flat, lr, model.param_blocks(), phase1.optimizer
            )
            log[name]["adam"] += [torch.full((3, model.E), math.nan, dtype=torch.float64)]
            log[name]["adam"].append(_adam_state(opt, model.E))
            snapshot(name, model, units=True)  # its initial network, at the swap
            for key in ("fit", "hidden"):  # nothing before the swap
                log[name][key].insert(0, torch.full_like(log[name][key][0], math.nan))
            log[name]["sat"].append(torch.full((cfg.depth, 2, model.E), math.nan).double())
            continue
        result = train(model, x, y, phase1, callbacks=[callback(name, 0, swap)])
        observe(name, model, swap)  # before the swap
        snapshot(name, model, units=False)
        opt = opts[name] = result.optimizer
        log[name]["adam"].append(_adam_state(opt, model.E))
        model.set_activations(lay["phase2"][name])
        reset = torch.zeros(model.E, dtype=torch.bool)
        ens, members = lay["arms"]["swap_reset"]
        if ens == name:
            reset[members] = True
        opt.reset(reset)  # the reset arm's members only
        log[name]["adam"].append(_adam_state(opt, model.E))
        snapshot(name, model, units=True)  # after the swap: same weights
    if on_swap is not None:
        on_swap({name: (models[name], opts[name]) for name in models})
    total = cfg.epochs * spe
    phase2 = TrainConfig(epochs=cfg.epochs - cfg.swap_epoch, batch_size=cfg.batch_size)
    for name, model in models.items():
        cb = callback(name, swap, total)
        train(model, x, y, phase2, callbacks=[cb], optimizer=opts[name], first_epoch=cfg.swap_epoch)
        observe(name, model, total)
        snapshot(name, model, units=True)
    out = {}
    for name, rec in log.items():
        out[name] = {k: torch.stack(v).cpu().numpy() for k, v in rec.items() if k != "step"}
        out[name]["step"] = np.asarray(rec["step"])
    # The fresh network's curves start at the swap: NaN before it (the points of phase 1 and
    # the one right before the swap), so that every ensemble's points are the same.
    steps = out["main"]["step"]
    for name, start in lay["start"].items():
        if start == 0:
            continue
        rec = out[name]
        for key, n_pad in (
            ("train", steps.size - rec["step"].size),
            ("test", steps.size - rec["step"].size),
            ("off", start + 1),
            ("inactive", start + 1),
        ):
            pad = np.full((n_pad, *rec[key].shape[1:]), np.nan, dtype=rec[key].dtype)
            rec[key] = np.concatenate([pad, rec[key]])
        rec["step"] = steps
    return out


# --------------------------------------------------------------------------------------------
# Results: arrays by (arm, seed), the tidy table, and the summary the report reads


def _by_arm(cfg: Config, out: dict[str, dict[str, np.ndarray]], key: str) -> np.ndarray:
    """``out[ens][key]`` (member axis last) as ``(arm, seed, ...)``: index s of axis 1 is seed s
    in every arm, which the paired comparisons of :func:`_summary` rely on."""
    parts = []
    for arm in ARMS:
        name, members = layout(cfg)["arms"][arm]
        if layout(cfg)["seeds"][name][members] != list(range(cfg.seeds)):
            raise AssertionError(f"{arm}'s members are not seeds 0..{cfg.seeds - 1} in order")
        parts.append(np.moveaxis(out[name][key][..., members], -1, 0))
    return np.stack(parts)


def point_epochs(cfg: Config, per_epoch: int) -> np.ndarray:
    """The epoch of each recorded point when ``per_epoch`` points are taken per epoch: from 0
    to ``epochs`` in steps of ``1 / per_epoch``, with ``swap_epoch`` twice (before, after)."""
    t = np.arange(cfg.epochs * per_epoch + 1) / per_epoch
    k = cfg.swap_epoch * per_epoch
    return np.concatenate([t[: k + 1], t[k:]])


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Train the five arms through the swap (one chunk); no file I/O."""
    data = make_data(cfg)
    starts = layout(cfg)["start"].values()
    work = sum(cfg.epochs - s for s in starts) * steps_per_epoch(cfg)  # optimiser steps
    progress.expect(work)
    out = chunks("train_arms", lambda: train_arms(cfg, data), work=work)
    spe, steps = steps_per_epoch(cfg), out["main"]["step"]
    loss = np.stack([_by_arm(cfg, out, s) for s in SPLITS], axis=2).astype(np.float64)
    units = np.stack([_by_arm(cfg, out, k) for k in ("off", "inactive")], 2)  # arm,seed,m,pt,layer
    arrays = {
        "loss": loss,  # (arm, seed, split, point)
        # (arm, split, stat, point) and (arm, metric, stat, point, layer); stat = mean, lo, hi
        "loss_band": np.stack(ci_band(loss, axis=1)).transpose(1, 2, 0, 3),
        "units": units,  # (arm, seed, metric, epoch point, layer)
        "units_band": np.stack(ci_band(units, axis=1)).transpose(1, 2, 0, 3, 4),
        "off_units": _by_arm(cfg, out, "units").astype(np.float64),  # arm, seed, when, layer, unit
        "fit": _by_arm(cfg, out, "fit"),  # (arm, seed, when, input)
        "hidden": np.stack(
            [out[layout(cfg)["arms"][arm][0]]["hidden"][..., arm_index(cfg, arm)] for arm in ARMS]
        ),  # (arm, when, layer, input, unit)
        "adam": _by_arm(cfg, out, "adam"),  # (arm, seed, when, quantity)
        "saturation": _by_arm(cfg, out, "sat")[:, :, 0],  # (arm, seed, layer, kind)
        "x_grid": data["x_grid"][:, 0].double().numpy(),
        "y_grid": data["y_grid"][:, 0].double().numpy(),
        "x_train": data["x_train"][:, 0].double().numpy(),
        "y_train": data["y_train"][:, 0].double().numpy(),
    }
    axes = {
        "loss": ("arm", "seed", "split", "point"),
        "loss_band": ("arm", "split", "stat", "point"),
        "units": ("arm", "seed", "metric", "epoch", "layer"),
        "units_band": ("arm", "metric", "stat", "epoch", "layer"),
        "off_units": ("arm", "seed", "when", "layer", "unit"),
        "fit": ("arm", "seed", "when", "input"),
        "hidden": ("arm", "when", "layer", "input", "unit"),
        "adam": ("arm", "seed", "when", "quantity"),
        "saturation": ("arm", "seed", "layer", "kind"),
        "x_grid": ("input",),
        "y_grid": ("input",),
        "x_train": ("point",),
        "y_train": ("point",),
    }
    epochs = point_epochs(cfg, 1).tolist()
    coords: dict[str, list] = {
        "loss/point": (steps / spe).tolist(),
        "units/epoch": epochs,
        "units/metric": list(UNIT_METRICS),
        "units/layer": list(range(1, cfg.depth + 1)),
        "off_units/when": ["after_swap", "end"],
        "fit/when": list(WHEN),
        "hidden/when": list(WHEN),
        "adam/when": ["end_of_phase_1", "start_of_phase_2"],
        "adam/quantity": ["step_count", "m_norm", "v_norm"],
        "saturation/layer": list(range(1, cfg.depth + 1)),
        "saturation/kind": list(SATURATION_KINDS),
    }
    named = ("loss", "loss_band", "units", "units_band", "off_units", "fit", "hidden", "adam")
    for name in (*named, "saturation"):
        coords[f"{name}/arm"] = list(ARMS)
    for name in ("loss", "loss_band"):
        coords[f"{name}/split"] = list(SPLITS)
    for name in ("loss_band", "units_band"):
        coords[f"{name}/stat"] = ["mean", "lo", "hi"]
    metrics = _metrics(cfg, loss, units, steps, spe)
    summary = _summary(cfg, arrays, coords, steps, spe)
    # The floor of this finite held-out draw: the true function's own held-out MSE.
    truth = _f(data["x_test"].double())
    summary["noise_floor_draw"] = float((data["y_test"].double() - truth).square().mean())
    return Results(metrics, arrays, axes, coords, summary)


def arm_index(cfg: Config, arm: str) -> int:
    """The index of ``arm``'s seed-0 member among its ensemble's seed-0 members."""
    name, members = layout(cfg)["arms"][arm]
    seeds = layout(cfg)["seeds"][name]
    return [m for m, s in enumerate(seeds) if s == 0].index(members.start)


def activation_at(cfg: Config, arm: str, epoch: int, phase: int) -> str:
    """The activation ``arm`` computes with at ``epoch`` (``phase`` 2 from the swap on)."""
    if arm == "before" or (arm.startswith("swap") and phase == 1):
        return cfg.before
    return cfg.after


def _metrics(
    cfg: Config, loss: np.ndarray, units: np.ndarray, steps: np.ndarray, spe: int
) -> pd.DataFrame:
    """Tidy rows at every epoch end: ``train/mse``, ``test/mse`` and, per layer, the probes;
    at the swap epoch two rows per member and metric (``phase`` 1 before, 2 after). The fresh
    arm has rows from the swap on only (phase 2; at the swap, its initial network)."""
    S, k = cfg.seeds, cfg.swap_epoch
    epochs = point_epochs(cfg, 1)
    phase = np.where(np.arange(epochs.size) <= k, 1, 2)
    at_epoch = np.nonzero(steps % spe == 0)[0]  # the loss points at the epoch ends
    rows = []
    for a, arm in enumerate(ARMS):
        for seed in range(S):
            member = a * S + seed
            for i, epoch in enumerate(epochs):
                if arm == "fresh_after" and phase[i] == 1:
                    continue  # it does not exist before the swap
                base = {
                    "member": member,
                    "step": int(round(epoch)) * spe,
                    "arm": arm,
                    "seed": seed,
                    "activation": activation_at(cfg, arm, int(round(epoch)), int(phase[i])),
                    "epoch": int(round(epoch)),
                    "phase": int(phase[i]),
                }
                for s, split in enumerate(SPLITS):
                    value = loss[a, seed, s, at_epoch[i]]
                    rows.append({**base, "metric": f"{split}/mse", "value": value, "layer": np.nan})
                for q, key in enumerate(UNIT_METRICS):
                    for layer in range(cfg.depth):
                        value = units[a, seed, q, i, layer]
                        rows.append({**base, "metric": key, "value": value, "layer": layer + 1.0})
    columns = [
        "member",
        "step",
        "metric",
        "value",
        "arm",
        "seed",
        "activation",
        "epoch",
        "phase",
        "layer",
    ]
    return pd.DataFrame(rows, columns=columns)


def arm_labels(before: str, after: str) -> dict[str, str]:
    """Readable names of the arms."""
    return {
        "before": f"{before} throughout",
        "after": f"{after} throughout",
        "swap_kept": f"{before}→{after}, Adam kept",
        "swap_reset": f"{before}→{after}, Adam reset",
        "fresh_after": f"fresh {after} from the swap on",
    }


PAIRS = (
    ("swap_kept", "before"),
    ("swap_kept", "after"),
    ("swap_reset", "before"),
    ("swap_reset", "after"),
    ("swap_kept", "swap_reset"),
    ("before", "after"),
    ("swap_kept", "fresh_after"),
    ("swap_reset", "fresh_after"),
    ("after", "fresh_after"),
)
"""The comparisons of final held-out MSE that the report makes."""


def by_seed(values: Any, seeds: Any = None) -> pd.Series:
    """Per-seed values as a Series indexed by seed (``seeds``; by default 0, 1, ... in the
    order of ``values``, which is how the arrays of :func:`run` hold them: axis 1 is the seed)."""
    if isinstance(values, pd.Series):
        return values.astype(np.float64)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    index = np.arange(v.size) if seeds is None else np.asarray(seeds)
    return pd.Series(v, index=pd.Index(index, name="seed"))


def paired_by_seed(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two arms' per-seed values (Series indexed by seed, or arrays in seed order) lined up
    by seed (:func:`actlab.stats.paired_by_seed`)."""
    return stats.paired_by_seed(by_seed(a), by_seed(b))


def _compare(a: Any, b: Any) -> dict[str, Any]:
    """Two arms' per-seed values compared by the paired t-test over the seeds both hold
    (every arm is trained from the same seeds: same initial weights, same data draw), and
    which is lower. ``diff`` is the mean per-seed difference a - b over those seeds."""
    x, y = paired_by_seed(a, b)
    differs = paired_differs(x, y)
    diff = float(np.mean(x - y)) if x.size else math.nan
    lower = (0 if diff < 0 else 1) if differs else None
    return {"differs": differs, "lower": lower, "diff": diff, "pairs": int(x.size)}


def swap_points(steps: np.ndarray, cfg: Config) -> tuple[int, int]:
    """Indices of the loss points right before and right after the swap (same step)."""
    pre, post = np.nonzero(steps == cfg.swap_epoch * steps_per_epoch(cfg))[0]
    return int(pre), int(post)


def _summary(
    cfg: Config, arrays: dict[str, np.ndarray], coords: dict, steps: np.ndarray, spe: int
) -> dict:
    """Every number the report states, with 95% CIs over seeds."""
    A = {arm: i for i, arm in enumerate(ARMS)}
    loss, t = arrays["loss"], np.asarray(coords["loss/point"])
    pre, post = swap_points(steps, cfg)
    train_i, test_i = SPLITS.index("train"), SPLITS.index("test")
    kept = A["swap_kept"]
    jump = {}
    for s, split in enumerate(SPLITS):
        a, b = loss[kept, :, s, pre], loss[kept, :, s, post]
        jump[split] = {
            "pre": mean_ci(a),
            "post": mean_ci(b),
            "log10_ratio": mean_ci(np.log10(b / a)),
            # the same networks (seeds) right before and right after the swap: paired
            "differs": _compare(a, b)["differs"],
        }
    recovery: dict[str, Any] = {}
    later = int(np.nonzero(steps == (cfg.swap_epoch + 1) * spe)[0][0])  # one epoch on
    for arm in ("swap_kept", "swap_reset"):
        curve = loss[A[arm], :, test_i]
        epochs = []
        for seed in range(cfg.seeds):
            back = np.nonzero(curve[seed, post:] <= curve[seed, pre])[0]
            epochs.append(t[post + back[0]] - cfg.swap_epoch if back.size else math.nan)
        recovery[arm] = {
            "epochs": mean_ci(epochs),
            "recovered": int(np.isfinite(epochs).sum()),
            "per_seed": [None if not math.isfinite(e) else float(e) for e in epochs],
            "one_epoch_later": mean_ci(curve[:, later]),
        }
    kept_r, reset_r = recovery["swap_kept"], recovery["swap_reset"]
    # Paired by seed over the seeds that got back in both arms.
    kr_epochs = _compare(
        np.asarray(kept_r["per_seed"], dtype=float), np.asarray(reset_r["per_seed"], dtype=float)
    )
    recovery["differs"], recovery["both_recovered"] = kr_epochs["differs"], kr_epochs["pairs"]
    recovery["one_epoch_later"] = _compare(
        loss[A["swap_kept"], :, test_i, later], loss[A["swap_reset"], :, test_i, later]
    )
    final = {
        arm: {
            "train": mean_ci(loss[A[arm], :, train_i, -1]),
            "test": mean_ci(loss[A[arm], :, test_i, -1]),
            "at_swap": mean_ci(loss[A[arm], :, test_i, pre]),
            "diverged": int((~np.isfinite(loss[A[arm], :, :, -1])).any(axis=1).sum()),
        }
        for arm in ARMS
    }
    comparisons = [
        {"a": a, "b": b, **_compare(loss[A[a], :, test_i, -1], loss[A[b], :, test_i, -1])}
        for a, b in PAIRS
    ]
    fresh = A["fresh_after"]
    # The control's own check: the fresh network after its n2 = epochs - swap_epoch epochs of
    # relu from the initial weights against relu throughout after as many epochs (the same
    # training from the same weights, other minibatches): they should agree within noise.
    # Paired by seed too: a seed gives both the same initial weights.
    n2 = cfg.epochs - cfg.swap_epoch
    same = int(np.nonzero(steps == n2 * spe)[0][0])  # relu throughout after n2 epochs
    control_check = {
        "epochs": n2,
        "fresh_end": mean_ci(loss[fresh, :, test_i, -1]),
        "after_same_epochs": mean_ci(loss[A["after"], :, test_i, same]),
        **_compare(loss[fresh, :, test_i, -1], loss[A["after"], :, test_i, same]),
    }
    # Error to the truth: the final fit on the grid against the true function (the held-out
    # MSE holds the noise on top of it).
    end = coords["fit/when"].index("end")
    truth = {
        arm: mean_ci(((arrays["fit"][A[arm], :, end] - arrays["y_grid"]) ** 2).mean(-1))
        for arm in ARMS
    }
    start = {  # right after the swap: the swapped network against an untrained one
        "swapped": mean_ci(loss[kept, :, test_i, post]),
        "fresh": mean_ci(loss[fresh, :, test_i, post]),
        **_compare(loss[kept, :, test_i, post], loss[fresh, :, test_i, post]),
    }
    return {
        "before": cfg.before,
        "after": cfg.after,
        "arms": list(ARMS),
        "labels": arm_labels(cfg.before, cfg.after),
        "seeds": cfg.seeds,
        "epochs": cfg.epochs,
        "swap_epoch": cfg.swap_epoch,
        "steps_per_epoch": spe,
        "depth": cfg.depth,
        "width": cfg.width,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        "noise_floor": cfg.noise**2,
        "swap_points": [pre, post],
        "eval_every": cfg.eval_every,
        "dense_epochs": cfg.dense_epochs,
        "off_kind": dead_kind(get_activation(cfg.after)),
        "jump": jump,
        "recovery": recovery,
        "final": final,
        "comparisons": comparisons,
        "control_check": control_check,
        # kept minus reset per seed (same weights and minibatches): the interval of the
        # differences the paired test reads
        "kept_minus_reset": mean_ci(
            loss[A["swap_kept"], :, test_i, -1] - loss[A["swap_reset"], :, test_i, -1]
        ),
        "truth": truth,
        "start": start,
        "convergence": _convergence(cfg, loss, steps, spe),
        "saturation": (
            None
            if cfg.before != "tanh"
            else [
                {
                    "layer": layer + 1,
                    "threshold": SATURATED,
                    **{
                        kind: mean_ci(arrays["saturation"][kept, :, layer, k], bounds=(0.0, 1.0))
                        for k, kind in enumerate(SATURATION_KINDS)
                    },
                }
                for layer in range(cfg.depth)
            ]
        ),
        "dead": _dead_summary(cfg, arrays),
        "adam": {
            arm: {
                when: {
                    q: mean_ci(arrays["adam"][A[arm], :, w, j])
                    for j, q in enumerate(coords["adam/quantity"])
                }
                for w, when in enumerate(coords["adam/when"])
            }
            for arm in ("swap_kept", "swap_reset")
        },
    }


def tail_epochs(cfg: Config) -> int:
    """Epochs the convergence check looks back over: :data:`TAIL_FRACTION` of the run, at
    least 1 and at most the fresh arm's ``epochs - swap_epoch``."""
    return max(1, min(round(TAIL_FRACTION * cfg.epochs), cfg.epochs - cfg.swap_epoch))


def _convergence(cfg: Config, loss: np.ndarray, steps: np.ndarray, spe: int) -> dict:
    """Per arm and split, the relative change ``L(end) / L(end - w) - 1`` of the MSE over the
    last ``w`` = :func:`tail_epochs` epochs (per seed; mean and CI over seeds). Negative: still
    falling. The report calls it "still improving" below ``-FLAT_THRESHOLD``."""
    w = tail_epochs(cfg)
    then = int(np.nonzero(steps == (cfg.epochs - w) * spe)[0][-1])  # after the swap if twice
    out: dict[str, Any] = {
        "tail_epochs": w,
        "threshold": FLAT_THRESHOLD,
        "from_epoch": cfg.epochs - w,
    }
    for a, arm in enumerate(ARMS):
        with np.errstate(invalid="ignore", divide="ignore"):
            change = loss[a, :, :, -1] / loss[a, :, :, then] - 1.0  # (seed, split)
        out[arm] = {split: mean_ci(change[:, s]) for s, split in enumerate(SPLITS)}
    return out


def _dead_summary(cfg: Config, arrays: dict[str, np.ndarray]) -> list[dict]:
    """Per hidden layer: off fractions before (predicted), right after the swap and at the end;
    units revived (off right after the swap, not at the end) and newly off."""
    A = {arm: i for i, arm in enumerate(ARMS)}
    units, masks = arrays["units"], arrays["off_units"]  # see run()
    off, inactive = (
        UNIT_METRICS.index("act/off_fraction"),
        UNIT_METRICS.index("act/inactive_fraction"),
    )
    pre, post = cfg.swap_epoch, cfg.swap_epoch + 1
    fraction_ci = functools.partial(mean_ci, bounds=(0.0, 1.0))  # stays in [0, 1]
    out = []
    for layer in range(cfg.depth):
        row: dict[str, Any] = {
            "layer": layer + 1,
            "predicted": fraction_ci(units[A["swap_kept"], :, inactive, pre, layer]),
            "after_swap": fraction_ci(units[A["swap_kept"], :, off, post, layer]),
            "after_at_swap_epoch": fraction_ci(units[A["after"], :, off, pre, layer]),
            # Whether the tanh network predicted every seed's count exactly.
            "predicted_exact": bool(
                np.array_equal(
                    units[A["swap_kept"], :, inactive, pre, layer],
                    units[A["swap_kept"], :, off, post, layer],
                )
            ),
        }
        for arm in ("swap_kept", "swap_reset", "after", "fresh_after"):
            dead_then, dead_end = masks[A[arm], :, 0, layer], masks[A[arm], :, 1, layer]
            n_then = dead_then.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                revived = ((dead_then == 1) & (dead_end == 0)).sum(axis=1) / n_then
            row[arm] = {
                "end": fraction_ci(units[A[arm], :, off, -1, layer]),
                "revived": fraction_ci(revived),
                "revived_units": int(((dead_then == 1) & (dead_end == 0)).sum()),
                "off_after_swap_units": int(n_then.sum()),
                "newly_off": fraction_ci(((dead_then == 0) & (dead_end == 1)).mean(axis=1)),
                # The same as a count over all seeds (units of one network are not independent
                # trials, so no interval is put on the pooled share).
                "newly_off_units": int(((dead_then == 0) & (dead_end == 1)).sum()),
                # the units that could become dead: those not dead right after the swap
                "alive_after_swap_units": int((dead_then == 0).sum()),
                "units": int(dead_then.size),
                "end_values": units[A[arm], :, off, -1, layer].tolist(),
            }
        # Paired by seed: end_values are in seed order in every arm.
        row["end_differs_kept_reset"] = _paired_ends(
            row["swap_kept"]["end_values"], row["swap_reset"]["end_values"]
        )
        row["end_differs_kept_fresh"] = _paired_ends(
            row["swap_kept"]["end_values"], row["fresh_after"]["end_values"]
        )
        row["end_differs_kept_after"] = _paired_ends(
            row["swap_kept"]["end_values"], row["after"]["end_values"]
        )
        out.append(row)
    return out


def _paired_ends(a: list, b: list) -> bool:
    """Whether two arms' final off fractions (lists in seed order) differ, paired by seed."""
    return _compare(np.asarray(a, dtype=float), np.asarray(b, dtype=float))["differs"]


SMOKE = Config(
    seeds=3,
    epochs=6,
    swap_epoch=3,
    width=8,
    n_train=64,
    n_test=64,
    batch_size=16,
    n_grid=24,
)
DEFAULT = Config()
FULL = Config(seeds=50, width=64, n_test=2048)

presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
