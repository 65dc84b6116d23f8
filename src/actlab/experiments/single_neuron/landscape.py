"""Closed forms and one-parameter computations of the single-neuron experiment.

* :func:`least_squares_line`: the optimum of the identity unit, ``v (w x + b) + c = a x + d``,
  which is the least-squares line (normal equations, solved per row).
* :func:`relu_landscape`: the MSE of ``v relu(w x + b) + c`` over a grid of ``(w, b)`` with
  ``(v, c)`` solved by least squares at each point (a profile of the loss).
* :func:`sigmoid_descent`: gradient descent on the single parameter of ``y = sigma(w x)``,
  with the loss-vs-w curve on which its path lies.

Everything here is NumPy in float64 and deterministic; nothing reads a global RNG.
:func:`relu_section` and :func:`sigmoid_section` package them for the experiment's results
(arrays, axes, coords and a summary entry each).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from actlab.activations import get_activation

__all__ = [
    "relu_section",
    "sigmoid_section",
    "least_squares_line",
    "relu_landscape",
    "dead_everywhere",
    "linear_everywhere",
    "sigmoid_loss",
    "sigmoid_descent",
]


def least_squares_line(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The least-squares line ``y ~ a x + d`` of each row.

    Args:
        x: Inputs ``(..., n)``.
        y: Targets ``(..., n)`` (broadcast against ``x``).

    Returns:
        ``slope`` and ``intercept`` ``(...)`` from the normal equations
        ``a = cov(x, y) / var(x)``, ``d = mean(y) - a mean(x)``, and the ``mse`` of the line.
    """
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    xm, ym = x.mean(-1, keepdims=True), y.mean(-1, keepdims=True)
    slope = ((x - xm) * (y - ym)).sum(-1) / ((x - xm) ** 2).sum(-1)
    intercept = ym[..., 0] - slope * xm[..., 0]
    mse = ((slope[..., None] * x + intercept[..., None] - y) ** 2).mean(-1)
    return {"slope": slope, "intercept": intercept, "mse": mse}


def dead_everywhere(w: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether ``relu(w x + b) = 0`` on every input of ``x`` ``(n,)``: ``w x_i + b <= 0`` for all
    i, i.e. at both ends of the data, ``w min(x) + b <= 0`` and ``w max(x) + b <= 0``."""
    lo, hi = float(np.min(x)), float(np.max(x))
    return (w * lo + b <= 0) & (w * hi + b <= 0)


def linear_everywhere(w: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether ``w x + b > 0`` on every input: the ReLU unit is then the line ``v (w x + b) + c``
    on the data, and the best it can do is the least-squares line."""
    lo, hi = float(np.min(x)), float(np.max(x))
    return (w * lo + b > 0) & (w * hi + b > 0)


def relu_landscape(
    x: np.ndarray, y: np.ndarray, w_grid: np.ndarray, b_grid: np.ndarray
) -> dict[str, np.ndarray]:
    """The profile loss ``min_{v, c} mean((v relu(w x + b) + c - y)^2)`` on a grid of ``(w, b)``.

    At each point ``h_i = relu(w x_i + b)`` and the optimal ``(v, c)`` solve a one-variable
    regression: ``v = cov(h, y) / var(h)``, ``c = mean(y) - v mean(h)``, with loss
    ``var(y) - cov(h, y)^2 / var(h)`` (population moments). Where ``h`` is constant on the data
    (dead on every input, or ``w = 0``) ``v`` is undetermined: ``v = 0`` is returned,
    ``c = mean(y)``, and the loss is ``var(y)``.

    Args:
        x: Training inputs ``(n,)``.
        y: Training targets ``(n,)``.
        w_grid: Values of ``w`` ``(G_w,)``.
        b_grid: Values of ``b`` ``(G_b,)``.

    Returns:
        ``mse`` ``(G_w, G_b)``, ``v`` and ``c`` ``(G_w, G_b)``, ``dead`` and ``linear`` (bool
        ``(G_w, G_b)``: the unit is off on every input / on on every input).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.asarray(w_grid, np.float64)[:, None, None]
    b = np.asarray(b_grid, np.float64)[None, :, None]
    h = np.maximum(w * x + b, 0.0)  # (G_w, G_b, n)
    hm = h.mean(-1)
    hc = h - hm[..., None]
    var_h = (hc**2).mean(-1)
    yc = y - y.mean()
    cov = (hc * yc).mean(-1)
    var_y = float((yc**2).mean())
    # A relative threshold: var(h) is exactly 0 where the unit is dead, tiny only for w ~ 0.
    flat = var_h <= 1e-14 * max(float((h**2).mean()), 1e-300)
    safe = np.where(flat, 1.0, var_h)
    v = np.where(flat, 0.0, cov / safe)
    c = y.mean() - v * hm
    mse = np.where(flat, var_y, np.maximum(var_y - cov**2 / safe, 0.0))
    wg, bg = np.meshgrid(w_grid, b_grid, indexing="ij")
    return {
        "mse": mse,
        "v": v,
        "c": c,
        "dead": dead_everywhere(wg, bg, x),
        "linear": linear_everywhere(wg, bg, x),
    }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow


def sigmoid_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``L(w) = mean((sigma(w x) - y)^2)`` and ``L'(w) = mean(2 (sigma - y) sigma (1 - sigma) x)``
    for every ``w`` of ``w`` ``(K,)`` on data ``x, y`` ``(n,)``; each ``(K,)``."""
    w = np.asarray(w, np.float64)[..., None]
    s = _sigmoid(w * x)
    r = s - y
    return (r**2).mean(-1), (2.0 * r * s * (1.0 - s) * x).mean(-1)


def sigmoid_descent(
    x: np.ndarray, y: np.ndarray, w0: float, lr: float, steps: int
) -> dict[str, np.ndarray]:
    """Plain gradient descent ``w <- w - lr L'(w)`` on ``y = sigma(w x)`` from ``w0``.

    Returns ``w`` ``(steps + 1,)`` (after 0..steps updates), its ``loss`` and ``grad``.
    """
    ws = np.empty(steps + 1)
    ws[0] = w0
    for k in range(steps):
        _, g = sigmoid_loss(ws[k : k + 1], x, y)
        ws[k + 1] = ws[k] - lr * g[0]
    loss, grad = sigmoid_loss(ws, x, y)
    return {"w": ws, "loss": loss, "grad": grad}


def _part() -> dict[str, Any]:
    return {"arrays": {}, "axes": {}, "coords": {}, "summary": {}}


def relu_section(cfg: Any, data: dict, arrays: dict) -> dict[str, Any]:
    """ReLU and its derivative, the landscape over (w, b) on seed 0's data of ``relu_target``
    and what the restarts of seed 0 did on it (needs the run's ``arrays``)."""
    out = _part()
    a, t = cfg.activations.index("relu"), cfg.targets.index(cfg.relu_target)
    relu = get_activation("relu")
    z = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)
    out["arrays"]["relu_curve"] = torch.stack([relu.fn(z), relu.deriv(z)]).numpy()
    out["axes"]["relu_curve"] = ("quantity", "z")
    out["coords"].update({"relu_curve/quantity": ["phi", "dphi"], "relu_curve/z": z.tolist()})
    x0, y0 = data["x_train"][0], data["y_train"][t, 0]
    best = int(arrays["best_restart"][t, a, 0])
    snaps = arrays["snapshots"][t, a]  # (restart, frame, 4) of seed 0
    extent = max(cfg.landscape_extent, 1.15 * float(np.abs(snaps[best, -1, :2]).max()))
    grid = np.linspace(-extent, extent, cfg.landscape_points)
    land = relu_landscape(x0, y0, grid, grid)
    for key in ("mse", "v", "c", "dead", "linear"):
        name = f"relu_landscape_{key}"
        out["arrays"][name] = land[key].astype(np.int8 if key in ("dead", "linear") else float)
        out["axes"][name] = ("w", "b")
        out["coords"].update({f"{name}/w": grid.tolist(), f"{name}/b": grid.tolist()})
    i, j = np.unravel_index(np.argmin(land["mse"]), land["mse"].shape)
    summary = {
        "target": cfg.relu_target,
        "best_restart": best,
        "extent": extent,
        "landscape_min": float(land["mse"][i, j]),
        "landscape_argmin": [float(grid[i]), float(grid[j])],
        "best_train_mse": float(arrays["train_mse"][t, a, 0, best]),
        "var_y": float(np.var(y0)),
        "line_mse": float(least_squares_line(x0, y0)["mse"]),
        "dead_share_of_grid": float(land["dead"].mean()),
        "dead_at_start": int(dead_everywhere(snaps[:, 0, 0], snaps[:, 0, 1], x0).sum()),
        "dead_at_end": int(dead_everywhere(snaps[:, -1, 0], snaps[:, -1, 1], x0).sum()),
        "restarts": cfg.restarts,
    }
    # Every ReLU member (all targets, seeds, restarts): dead on its own draw's inputs at the
    # start (initial weights) and at the end.
    lo, hi = data["x_train"].min(-1)[:, None], data["x_train"].max(-1)[:, None]  # (S, 1)

    def dead(p: np.ndarray) -> np.ndarray:  # p: (T, S, R, 4) -> (T, S, R) bool
        w, b = p[..., 0], p[..., 1]
        return (w * lo + b <= 0) & (w * hi + b <= 0)

    summary["all_dead_at_start"] = int(dead(arrays["params_init"][:, a]).sum())
    summary["all_dead_at_end"] = int(dead(arrays["params"][:, a]).sum())
    summary["all_members"] = int(arrays["params"][:, a, ..., 0].size)
    # The initial points: a member's initial weights depend on (draw, restart) only, and the
    # targets share a draw's inputs, so every target starts from the same S x R points, and
    # the same ones are dead: count them once (independent draws of the initial weights).
    start = dead(arrays["params_init"][:, a])  # (T, S, R), equal along T
    summary["dead_start_points"] = int(start[0].sum())
    summary["start_points"] = int(start[0].size)
    summary["dead_start_same_for_all_targets"] = bool((start == start[:1]).all())
    # Ended dead, per draw over targets and restarts (the draws are the independent repeats).
    summary["dead_end_per_draw"] = dead(arrays["params"][:, a]).sum(axis=(0, 2)).tolist()
    summary["members_per_draw"] = int(start.shape[0] * start.shape[2])
    # The profile is constant along rays: relu(a z) = a relu(z) for a > 0, and v absorbs a.
    # Measured on the (odd, symmetric) grid: (w, b) against (2w, 2b) where both are on it.
    mid, k = len(grid) // 2, len(grid) // 4
    if len(grid) % 2 == 1 and k >= 1:
        double = land["mse"][mid - 2 * k : mid + 2 * k + 1 : 2, mid - 2 * k : mid + 2 * k + 1 : 2]
        single = land["mse"][mid - k : mid + k + 1, mid - k : mid + k + 1]
        summary["ray_invariance_max_diff"] = float(np.abs(double - single).max())
    out["summary"]["relu"] = summary
    return out


def sigmoid_section(
    cfg: Any, data: dict, target: Callable[[np.ndarray], np.ndarray]
) -> dict[str, Any]:
    """y = sigma(w x) on seed 0's train inputs and noise, the ``target`` rescaled so that its
    noiseless values span [0.1, 0.9] on the x-range, fitted by gradient descent on w; the
    loss-vs-w curve and the path."""
    out = _part()
    x0, grid = data["x_train"][0], data["x_grid"]
    lo, hi = float(target(grid).min()), float(target(grid).max())
    y0 = 0.1 + 0.8 * (target(x0) - lo) / (hi - lo) + data["noise_train"][0]
    descent = sigmoid_descent(x0, y0, cfg.sigmoid_w0, cfg.sigmoid_lr, cfg.sigmoid_steps)
    span = max(6.0, 1.2 * abs(cfg.sigmoid_w0), 1.2 * float(np.abs(descent["w"]).max()))
    w_grid = np.linspace(-span, span, 1201)
    loss_grid, _ = sigmoid_loss(w_grid, x0, y0)
    k = int(np.argmin(loss_grid))
    w = descent["w"]
    moved = np.abs(w - w[0])
    out["arrays"] = {
        "sigmoid_y": y0,
        "sigmoid_path": np.stack([w, descent["loss"], descent["grad"]], axis=1),
        "sigmoid_loss_curve": loss_grid,
    }
    out["axes"] = {
        "sigmoid_y": ("point",),
        "sigmoid_path": ("step", "quantity"),
        "sigmoid_loss_curve": ("w",),
    }
    out["coords"] = {
        "sigmoid_path/quantity": ["w", "loss", "grad"],
        "sigmoid_loss_curve/w": w_grid.tolist(),
    }
    out["summary"]["sigmoid"] = {
        "target": cfg.sigmoid_target,
        "w0": cfg.sigmoid_w0,
        "lr": cfg.sigmoid_lr,
        "steps": cfg.sigmoid_steps,
        "w_end": float(w[-1]),
        "loss_end": float(descent["loss"][-1]),
        "grad_end": float(descent["grad"][-1]),
        "loss_start": float(descent["loss"][0]),
        "w_grid_min": float(w_grid[k]),
        "loss_grid_min": float(loss_grid[k]),
        "grid_spacing": float(w_grid[1] - w_grid[0]),
        "steps_to_half": int(np.argmax(moved >= moved[-1] / 2)),
        # |w_{k+1} - w_k|: the first step and the largest one (and after how many steps).
        "first_step": float(abs(w[1] - w[0])) if len(w) > 1 else 0.0,
        "max_step": float(np.abs(np.diff(w)).max()) if len(w) > 1 else 0.0,
        "max_step_at": int(np.argmax(np.abs(np.diff(w)))) + 1 if len(w) > 1 else 0,
        "scale": [lo, hi],
        # The share of training inputs on which sigma(w0 x) is saturated (outside [0.01, 0.99]).
        "saturated_start": float(
            np.mean(np.abs(1 / (1 + np.exp(-cfg.sigmoid_w0 * x0)) - 0.5) > 0.49)
        ),
    }
    return out
