"""Figures of the rl-hadamard experiment, from its summary alone: return curves (interquartile
mean over seeds with a 95% bootstrap band) per environment and agent, and the representation
layer's diagnostics at the end of training per cell."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from actlab.experiments.base import Results
from actlab.plotting.style import color_of, new_figure, style
from actlab.rl.stats import interval_estimate

__all__ = ["figures", "plot_returns", "plot_diagnostics", "network_style"]

AGENT_NAMES = {"dqn": "DQN", "ppo": "PPO", "pqn": "PQN"}
STYLES = {"": "-", "hadamard": "--", "wide": ":"}


def network_style(name: str) -> dict[str, Any]:
    """Colour of the activation, line style of the kind (plain solid, Hadamard dashed, widened
    dotted)."""
    act, _, kind = name.partition("-")
    return {"color": color_of(act), "linestyle": STYLES.get(kind, "-")}


def _band(curves: list[list[float | None]], reps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over seeds at each grid point and its bootstrap interval (seeds with no value yet
    left out)."""
    x = np.array([[math.nan if v is None else v for v in row] for row in curves], dtype=float)
    mid, lo, hi = (np.full(x.shape[1], math.nan) for _ in range(3))
    for j in range(x.shape[1]):
        col = x[:, j][np.isfinite(x[:, j])]
        if col.size:
            est = interval_estimate(col, reps=reps, seed=j)
            mid[j], lo[j], hi[j] = est["mean"], est["lo"], est["hi"]
    return mid, lo, hi


def plot_returns(results: Results) -> Figure:
    cells = results.summary["cells"]
    envs = list(dict.fromkeys(c["env"] for c in cells))
    agents = list(dict.fromkeys(c["agent"] for c in cells))
    reps = min(int(results.summary["config"]["bootstrap_reps"]), 500)
    with style():
        fig = new_figure(figsize=(4.0 * len(agents), 2.9 * len(envs) + 0.6))
        axes = fig.subplots(len(envs), len(agents), squeeze=False)
        for i, env in enumerate(envs):
            for j, agent in enumerate(agents):
                ax = axes[i, j]
                mine = [c for c in cells if c["env"] == env and c["agent"] == agent]
                if not mine:
                    ax.set_visible(False)
                    continue
                for c in mine:
                    grid = np.asarray(c["grid"])
                    mid, lo, hi = _band(c["curves"], reps)
                    st = network_style(c["network"])
                    ax.plot(grid, mid, label=c["network"], lw=1.8, **st)
                    ax.fill_between(grid, lo, hi, color=st["color"], alpha=0.15, lw=0)
                ax.set_title(f"{AGENT_NAMES[agent]} on {env}", fontsize=9)
                ax.set_xlabel("environment steps per agent")
                ax.set_ylabel("episode return")
                ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        handles, labels = [], []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncol=len(labels),
            frameon=False,
            title="IQM over seeds, 95% stratified-bootstrap band",
            title_fontsize=8,
        )
    return fig


METRICS = (
    ("off", "dead units (ReLU) or saturated share (tanh), end"),
    ("dormant_0.1", "τ-dormant units, τ = 0.1 (end)"),
    ("effective_rank", "effective rank (end)"),
)


def _off(diags: dict[str, Any]) -> dict[str, Any] | None:
    return diags.get("saturated_share") or diags.get("dead")


def plot_diagnostics(results: Results) -> Figure:
    """The representation layer at the end of training: one row per cell, one panel per
    metric, each point the mean over seeds with its 95% t-interval."""
    cells = results.summary["cells"]
    labels = [
        f"{AGENT_NAMES[c['agent']]} · {c['env'].split('/')[-1]} · {c['network']}" for c in cells
    ]
    with style():
        fig = new_figure(figsize=(12, 0.28 * len(cells) + 1.4))
        axes = fig.subplots(1, len(METRICS), sharey=True, squeeze=False)[0]
        for ax, (key, title) in zip(axes, METRICS, strict=True):
            for y, c in enumerate(cells):
                d = _off(c["diagnostics"]) if key == "off" else c["diagnostics"].get(key)
                if d is None:
                    continue
                end = d["end"]
                mean = end["mean"] if end["mean"] is not None else math.nan
                lo = end["lo"] if end["lo"] is not None else mean
                hi = end["hi"] if end["hi"] is not None else mean
                st = network_style(c["network"])
                ax.plot([lo, hi], [y, y], color=st["color"], lw=2)
                ax.plot([mean], [y], "o", color=st["color"], ms=4)
            ax.set_title(title, fontsize=9)
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(range(len(cells)), labels, fontsize=7)
        axes[0].set_ylim(len(cells) - 0.5, -0.5)
    return fig


def figures(results: Results) -> dict[str, Figure]:
    return {"returns": plot_returns(results), "diagnostics": plot_diagnostics(results)}
