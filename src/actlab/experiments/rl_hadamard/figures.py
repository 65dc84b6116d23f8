"""Figures of the rl-hadamard experiment, from its summary alone: return curves (interquartile
mean over seeds with a 95% bootstrap band) per environment and agent, and the representation
layer's diagnostics at the end of training per cell."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

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


def _panels(cells: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (environment, agent) pairs that ran, in run order: one panel each."""
    return list(dict.fromkeys((c["env"], c["agent"]) for c in cells))


def plot_returns(results: Results) -> Figure:
    """One panel per (environment, agent) that ran (no empty panels), two columns up to four
    panels, so that each stays legible at the page's width; the IQM over seeds with its
    95% bootstrap band, whose edges carry the network's line style (tanh and tanh-Hadamard
    share a colour)."""
    cells = results.summary["cells"]
    panels = _panels(cells)
    ncols = 2 if len(panels) <= 4 else 3
    nrows = math.ceil(len(panels) / ncols)
    reps = min(int(results.summary["config"]["bootstrap_reps"]), 500)
    with style():
        fig = new_figure(figsize=(4.1 * ncols, 2.9 * nrows + 0.6))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        for ax, (env, agent) in zip(axes.flat, panels, strict=False):
            for c in (c for c in cells if c["env"] == env and c["agent"] == agent):
                grid = np.asarray(c["grid"])
                mid, lo, hi = _band(c["curves"], reps)
                st = network_style(c["network"])
                ax.plot(grid, mid, label=c["network"], lw=1.8, **st)
                ax.fill_between(grid, lo, hi, color=st["color"], alpha=0.12, lw=0)
                for edge in (lo, hi):
                    ax.plot(grid, edge, lw=0.6, alpha=0.6, **st)
            ax.set_title(f"{AGENT_NAMES[agent]} on {env}", fontsize=10)
            ax.set_xlabel("environment steps per agent")
            ax.set_ylabel("episode return")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        handles, labels = [], []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        seeds = sorted({c["seeds"] for c in cells})
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncol=len(labels),
            frameon=False,
            title=f"IQM over {' or '.join(map(str, seeds))} seeds, 95% stratified-bootstrap band",
            title_fontsize=9,
        )
    return fig


METRICS = (
    ("dead", "dead ReLU units\n(share of units)", False),
    ("saturated_share", "saturated tanh\n(share of (state, unit) pairs)", False),
    ("dormant_0.1", "τ-dormant units, τ = 0.1\n(share of units)", False),
    ("effective_rank", "effective rank\n(log scale)", True),
)


def _point(stat: dict[str, Any]) -> tuple[float, float, float]:
    mean = math.nan if stat.get("mean") is None else float(stat["mean"])
    lo = mean if stat.get("lo") is None else float(stat["lo"])
    hi = mean if stat.get("hi") is None else float(stat["hi"])
    return mean, lo, hi


def plot_diagnostics(results: Results) -> Figure:
    """The representation layer per cell: one row per cell, one panel per metric (a dead unit
    count and a saturated share of pairs are different quantities: separate panels); at the
    end of training the mean over seeds with its 95% t-interval (filled), at initialisation
    the mean (open), so that a difference that came with the architecture shows."""
    cells = results.summary["cells"]
    labels = [
        f"{AGENT_NAMES[c['agent']]} · {c['env'].split('/')[-1]} · {c['network']}" for c in cells
    ]
    with style():
        metrics = [m for m in METRICS if any(m[0] in c["diagnostics"] for c in cells)]
        fig = new_figure(figsize=(9.5, 0.3 * len(cells) + 1.6))
        axes = fig.subplots(1, max(len(metrics), 1), sharey=True, squeeze=False)[0]
        for ax, (key, title, log) in zip(axes, metrics, strict=False):
            for y, c in enumerate(cells):
                d = c["diagnostics"].get(key)
                if d is None:
                    continue
                st = network_style(c["network"])
                mean, lo, hi = _point(d["end"])
                if log:  # an effective rank is at least 1; a t-interval can reach below
                    lo = max(lo, 1.0)
                ax.plot([lo, hi], [y, y], color=st["color"], lw=2)
                ax.plot([mean], [y], "o", color=st["color"], ms=4.5)
                start, _, _ = _point(d["start"])
                ax.plot([start], [y], "o", mfc="none", color=st["color"], ms=6, mew=1)
            ax.set_title(title, fontsize=9)
            ax.grid(axis="x", alpha=0.3)
            if log:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
        axes[0].set_yticks(range(len(cells)), labels, fontsize=8)
        axes[0].set_ylim(len(cells) - 0.5, -0.5)
        handles = [
            axes[0].plot([], [], "o", color="0.3", ms=4.5)[0],
            axes[0].plot([], [], "o", mfc="none", color="0.3", ms=6)[0],
        ]
        fig.legend(
            handles,
            ["end of training: mean, 95% interval over seeds", "initialisation: mean"],
            loc="outside lower center",
            ncol=2,
            frameon=False,
            fontsize=8,
        )
    return fig


def figures(results: Results) -> dict[str, Figure]:
    return {"returns": plot_returns(results), "diagnostics": plot_diagnostics(results)}
