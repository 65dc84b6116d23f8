"""The single-neuron playground: one hidden unit ``y = v phi(w x + b) + c`` against polynomials.

A small public playground fits this model to a few polynomials and ranks the activations; its
ranking is decided by one global generator, one seed, under-training and no held-out data.
Here it is done honestly:

* **Data.** Targets on ``x in [x_min, x_max]`` (see :data:`TARGETS`): ``n_train`` train points
  (stratified: one uniform point per equal cell) and ``n_test`` separate held-out points
  (uniform), both with label noise ``N(0, noise^2)``, drawn per data seed from that seed's own
  generator. All targets share a seed's inputs and noise.
* **Members.** Every (activation, target, seed, restart) is one member of ONE
  :class:`~actlab.models.EnsembleMLP` ``(1 -> 1 -> 1)``, trained full batch with Adam. A member's
  initial weights depend only on ``(seed, restart)`` (``derive_seed``): every activation and
  target starts from the same ``n_seeds x restarts`` draws, and no result depends on the order in
  which cases are listed.
* **Convergence.** Every ``check_every`` steps a member stops when its gradient norm is below
  ``grad_tol`` or its loss changed by less than ``plateau_tol`` (relative) since the last check;
  ``epochs`` is the cap. How many stopped, and why, is reported.
* **The fit of a case** (target, activation) for a seed is its best restart *on the train set*;
  its held-out MSE is the score. Means and 95% CIs are over seeds; the spread over restarts is
  reported beside. Identity's best fit is compared with the least-squares line (its closed form).

Metrics (tidy table): ``fit/train_mse``, ``fit/test_mse`` and ``fit/stop_step`` of every member at
its stop step, and ``train/mse`` of seed 0's members at the snapshot steps. Arrays are indexed
``(target, activation, seed, restart, ...)``.

ReLU in depth (the MSE landscape over ``(w, b)`` with ``(v, c)`` solved by least squares) and the
sigmoid without bias ``y = sigma(w x)`` are computed in
:mod:`actlab.experiments.single_neuron.landscape`; the report in
:mod:`actlab.experiments.single_neuron.report`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress
from actlab.activations import get_activation
from actlab.experiments.base import (
    ChunkRunner,
    Results,
    run_inline,
)
from actlab.experiments.single_neuron import landscape as nl
from actlab.experiments.single_neuron.config import (
    PARAMS,
    STOP_REASONS,
    TARGETS,
    Config,
    snapshot_steps,
)
from actlab.experiments.single_neuron.summary import summarise
from actlab.models import EnsembleMLP
from actlab.seeding import derive_seed
from actlab.train import Callback, StepState, TrainConfig, train

__all__ = ["make_data", "members", "run", "unit_curves"]

# --------------------------------------------------------------------------------------------
# Data and members


def make_data(cfg: Config) -> dict[str, np.ndarray]:
    """Inputs and targets, float64.

    Returns ``x_train`` ``(seed, n_train)`` (sorted), ``x_test`` ``(seed, n_test)``, ``y_train``
    ``(target, seed, n_train)``, ``y_test`` ``(target, seed, n_test)``, the grid ``x_grid``
    ``(n_grid,)``, the noiseless ``truth`` ``(target, n_grid)`` and the train noise
    ``noise_train`` ``(seed, n_train)``. Seed s draws from
    ``derive_seed(cfg.seed, "single-neuron", "data", s)``; targets share its inputs and noise.
    """
    xs, xt, es, et = [], [], [], []
    for s in range(cfg.seeds):
        rng = np.random.default_rng(derive_seed(cfg.seed, "single-neuron", "data", s))
        # Stratified: one uniform point in each of n_train equal cells, so that every draw
        # covers the range (pure uniform draws leave gaps at the ends that dominate the
        # held-out error of every activation alike).
        edges = np.linspace(cfg.x_min, cfg.x_max, cfg.n_train + 1)
        xs.append(edges[:-1] + (edges[1] - edges[0]) * rng.uniform(size=cfg.n_train))
        xt.append(rng.uniform(cfg.x_min, cfg.x_max, cfg.n_test))
        es.append(cfg.noise * rng.standard_normal(cfg.n_train))
        et.append(cfg.noise * rng.standard_normal(cfg.n_test))
    x_train, x_test = np.stack(xs), np.stack(xt)
    fns = [TARGETS[t].fn for t in cfg.targets]
    grid = np.linspace(cfg.x_min, cfg.x_max, cfg.n_grid)
    return {
        "x_train": x_train,
        "x_test": x_test,
        "y_train": np.stack([f(x_train) + np.stack(es) for f in fns]),
        "y_test": np.stack([f(x_test) + np.stack(et) for f in fns]),
        "noise_train": np.stack(es),
        "x_grid": grid,
        "truth": np.stack([f(grid) for f in fns]),
    }


def members(cfg: Config) -> pd.DataFrame:
    """One row per member: ``member, activation, target, seed, restart, init_seed``.

    Activation outermost (members sharing one are one slice in the engine), then target, seed,
    restart. ``init_seed`` depends on (seed, restart) only.
    """
    rows = [
        (a, t, s, r, derive_seed(cfg.seed, "single-neuron", "init", s, r))
        for a in cfg.activations
        for t in cfg.targets
        for s in range(cfg.seeds)
        for r in range(cfg.restarts)
    ]
    table = pd.DataFrame(rows, columns=["activation", "target", "seed", "restart", "init_seed"])
    table.insert(0, "member", np.arange(len(table)))
    return table


def _params(model: EnsembleMLP) -> torch.Tensor:
    """``(E, 4)``: w, b, v, c of every member."""
    return torch.stack(
        [
            model.weight(0)[:, 0, 0],
            model.bias(0)[:, 0],
            model.weight(1)[:, 0, 0],
            model.bias(1)[:, 0],
        ],
        dim=1,
    ).detach()


def unit_curves(activation: str, params: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``v phi(w x + b) + c`` for ``params`` ``(..., 4)`` at ``x`` ``(n,)``: ``(..., n)``."""
    p = torch.as_tensor(np.asarray(params, np.float64))
    w, b, v, c = (p[..., k, None] for k in range(4))
    z = w * torch.as_tensor(np.asarray(x, np.float64)) + b
    return (v * get_activation(activation).fn(z) + c).numpy()


# --------------------------------------------------------------------------------------------
# Training: every member in one ensemble


def _train_chunk(cfg: Config, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Train every member of :func:`members`; arrays with the member axis first."""
    table = members(cfg)
    t_idx = table.target.map({t: i for i, t in enumerate(cfg.targets)}).to_numpy()
    s_idx = table.seed.to_numpy()
    dev = torch.device(cfg.device)
    x = torch.as_tensor(data["x_train"][s_idx], device=dev)[..., None]  # (E, n, 1)
    y = torch.as_tensor(data["y_train"][t_idx, s_idx], device=dev)[..., None]  # (E, n, 1)
    model = EnsembleMLP(
        1,
        [1],
        1,
        list(table.activation),
        list(table.init_seed),
        init=cfg.init,
        dtype=torch.float64,
        device=dev,
    )
    E = model.E
    initial = _params(model).clone()
    reason = torch.zeros(E, dtype=torch.long, device=dev)  # STOP_REASONS codes
    last = {"loss": None}
    steps = snapshot_steps(cfg)

    def check(state: StepState) -> None:
        g = state.grad
        blocks = [model.weight(0, g), model.bias(0, g), model.weight(1, g), model.bias(1, g)]
        norm = torch.sqrt(sum(b.reshape(E, -1).square().sum(1) for b in blocks))
        small = norm < cfg.grad_tol
        prev = last["loss"]
        flat = torch.zeros_like(small)
        if prev is not None:
            flat = (state.loss - prev).abs() <= cfg.plateau_tol * prev
        stop = state.active & (small | flat)
        reason[stop & small] = STOP_REASONS.index("gradient")
        reason[stop & ~small] = STOP_REASONS.index("plateau")
        last["loss"] = state.loss.clone()
        if stop.any():
            state.stop(stop)

    def snapshot(state: StepState) -> dict[str, torch.Tensor]:
        return {"params": _params(model), "loss": state.loss}

    result = train(
        model,
        x,
        y,
        TrainConfig(epochs=cfg.epochs, lr=cfg.lr),
        callbacks=[
            Callback(check, every=cfg.check_every),
            Callback(snapshot, at=[s for s in steps if s < cfg.epochs]),
        ],
    )
    diverged = result.diverged_step >= 0
    reason[diverged] = STOP_REASONS.index("diverged")
    final = _params(model).cpu()
    with torch.no_grad():
        xt = torch.as_tensor(data["x_test"][s_idx], device=dev)[..., None]
        yt = torch.as_tensor(data["y_test"][t_idx, s_idx], device=dev)[..., None]
        train_mse = (model(x) - y).square().mean(dim=(1, 2)).cpu()
        test_mse = (model(xt) - yt).square().mean(dim=(1, 2)).cpu()
        _, [(_, h)] = model(x, return_hidden=True)
    train_mse[diverged] = torch.nan
    test_mse[diverged] = torch.nan
    snap_params = torch.cat([result.records["params"][1], final[None]])  # (frame, E, 4)
    snap_loss = torch.cat([result.records["loss"][1], train_mse[None]])  # (frame, E)
    stop_step = torch.where(result.stopped_step >= 0, result.stopped_step, result.diverged_step)
    stop_step = torch.where(stop_step >= 0, stop_step, torch.tensor(cfg.epochs))
    return {
        "params": final.numpy(),
        "params_init": initial.cpu().numpy(),
        "train_mse": train_mse.numpy(),
        "test_mse": test_mse.numpy(),
        "stop_step": stop_step.numpy(),
        "stop_reason": reason.cpu().numpy(),
        "dead": (h == 0).all(dim=1)[:, 0].cpu().numpy(),
        "snap_params": snap_params.transpose(0, 1).numpy(),  # (E, frame, 4)
        "snap_loss": snap_loss.T.numpy(),  # (E, frame)
    }


def _case_view(cfg: Config, flat: np.ndarray) -> np.ndarray:
    """A per-member array ``(E, ...)`` as ``(target, activation, seed, restart, ...)``."""
    A, T, S, R = len(cfg.activations), len(cfg.targets), cfg.seeds, cfg.restarts
    return np.swapaxes(flat.reshape(A, T, S, R, *flat.shape[1:]), 0, 1)


# --------------------------------------------------------------------------------------------
# The experiment


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Train every (activation, target, seed, restart) in one ensemble, then the ReLU landscape
    and the sigmoid without bias; no file I/O."""
    data = make_data(cfg)
    progress.expect(cfg.epochs)  # one unit per full-batch step of the one ensemble
    out = dict(chunks("train", lambda: _train_chunk(cfg, data), work=cfg.epochs))
    table = members(cfg)
    case = {k: _case_view(cfg, v) for k, v in out.items()}  # (T, A, S, R, ...)
    train_mse = np.where(np.isfinite(case["train_mse"]), case["train_mse"], np.inf)
    best = train_mse.argmin(axis=3)  # (T, A, S): best restart on the train set
    pick = lambda arr: np.take_along_axis(  # noqa: E731
        arr, best.reshape(*best.shape, 1, *([1] * (arr.ndim - 4))), axis=3
    )[:, :, :, 0]
    best_params = pick(case["params"])  # (T, A, S, 4)
    curves = np.stack(
        [unit_curves(a, best_params[:, i], data["x_grid"]) for i, a in enumerate(cfg.activations)],
        axis=1,
    )  # (T, A, S, input)
    snap0 = case["snap_params"][:, :, 0]  # (T, A, R, frame, 4), seed 0
    best0 = np.take_along_axis(snap0, best[:, :, 0, None, None, None], axis=2)[:, :, 0]
    frame_curves = np.stack(
        [unit_curves(a, best0[:, i], data["x_grid"]) for i, a in enumerate(cfg.activations)],
        axis=1,
    )  # (T, A, frame, input)

    steps = snapshot_steps(cfg)
    T, A, S, R = len(cfg.targets), len(cfg.activations), cfg.seeds, cfg.restarts
    arrays: dict[str, np.ndarray] = {
        "x_train": data["x_train"],
        "x_test": data["x_test"],
        "y_train": data["y_train"],
        "y_test": data["y_test"],
        "x_grid": data["x_grid"],
        "truth": data["truth"],
        "params": case["params"],
        "params_init": case["params_init"],
        "train_mse": case["train_mse"],
        "test_mse": case["test_mse"],
        "stop_step": case["stop_step"],
        "stop_reason": case["stop_reason"],
        "dead": case["dead"].astype(np.int8),
        "best_restart": best,
        "best_params": best_params,
        "best_curves": curves,
        "snapshots": snap0,
        "snapshot_loss": case["snap_loss"][:, :, 0],
        "frame_curves": frame_curves,
    }
    case_axes = ("target", "activation", "seed", "restart")
    axes = {
        "x_train": ("seed", "point"),
        "x_test": ("seed", "point"),
        "y_train": ("target", "seed", "point"),
        "y_test": ("target", "seed", "point"),
        "x_grid": ("input",),
        "truth": ("target", "input"),
        "params": (*case_axes, "param"),
        "params_init": (*case_axes, "param"),
        "train_mse": case_axes,
        "test_mse": case_axes,
        "stop_step": case_axes,
        "stop_reason": case_axes,
        "dead": case_axes,
        "best_restart": ("target", "activation", "seed"),
        "best_params": ("target", "activation", "seed", "param"),
        "best_curves": ("target", "activation", "seed", "input"),
        "snapshots": ("target", "activation", "restart", "frame", "param"),
        "snapshot_loss": ("target", "activation", "restart", "frame"),
        "frame_curves": ("target", "activation", "frame", "input"),
    }
    values = {"target": list(cfg.targets), "activation": list(cfg.activations)}
    values.update({"param": list(PARAMS), "frame": steps})
    coords = {f"{n}/{ax}": values[ax] for n, names in axes.items() for ax in names if ax in values}
    coords["stop_reason/code"] = list(STOP_REASONS)

    extra: dict[str, Any] = {}
    parts = [nl.sigmoid_section(cfg, data, TARGETS[cfg.sigmoid_target].fn)]
    if "relu" in cfg.activations:
        parts.append(nl.relu_section(cfg, data, arrays))
    for part in parts:
        arrays.update(part["arrays"])
        axes.update(part["axes"])
        coords.update(part["coords"])
        extra.update(part["summary"])
    summary = summarise(cfg, data, arrays, extra)
    metrics = _metrics(cfg, table, out, steps)
    assert T * A * S * R == len(table)
    return Results(metrics, arrays, axes, coords, summary)


def _metrics(cfg: Config, table: pd.DataFrame, out: dict, steps: list[int]) -> pd.DataFrame:
    """Tidy rows: every member's final ``fit/train_mse``, ``fit/test_mse``, ``fit/stop_step``
    (at step = its stop step) and, for seed 0, ``train/mse`` at the snapshot steps."""
    E = len(table)
    stop = out["stop_step"].astype(np.int64)
    frames = [
        pd.DataFrame(
            {"member": np.arange(E), "step": stop, "metric": key, "value": out[col]}
        ).astype({"value": "float64"})
        for key, col in (
            ("fit/train_mse", "train_mse"),
            ("fit/test_mse", "test_mse"),
            ("fit/stop_step", "stop_step"),
        )
    ]
    seed0 = table.member[table.seed == 0].to_numpy()
    loss = out["snap_loss"][seed0]  # (members, frame)
    frames.append(
        pd.DataFrame(
            {
                "member": np.repeat(seed0, len(steps)),
                "step": np.tile(np.asarray(steps, np.int64), len(seed0)),
                "metric": "train/mse",
                "value": loss.reshape(-1).astype(np.float64),
            }
        )
    )
    metrics = pd.concat(frames, ignore_index=True)
    return metrics.merge(table.drop(columns="init_seed"), on="member")
