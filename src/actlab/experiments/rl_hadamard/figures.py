"""Figures of the rl-hadamard experiment, from its summary alone: return curves (interquartile
mean over seeds with a 95% bootstrap band) per environment and agent, and the representation
layer's diagnostics at the end of training per cell."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from actlab.experiments.base import Results
from actlab.experiments.rl_hadamard.claims import collapsed_seeds
from actlab.plotting.style import PALETTE, color_of, new_figure, style
from actlab.rl.stats import interval_estimate

__all__ = [
    "figures",
    "plot_returns",
    "plot_diagnostics",
    "network_style",
    "thin_log_ticks",
    "curve_starts",
]

AGENT_NAMES = {"dqn": "DQN", "ppo": "PPO", "pqn": "PQN"}
STYLES = {"": "-", "hadamard": "--", "wide": ":"}
LINESTYLES = {
    "relu": "-",
    "tanh": "-.",
    "tanh-hadamard": "--",
    "tanh-wide": ":",
    "relu-hadamard": (0, (3, 1, 1, 1, 1, 1)),
}
"""Each network its own line style, so that seeds drawn one by one can be told apart by the
line as well as the colour (where collapsed seeds of different networks lie on top of each
other)."""
MARKERS = {"": "o", "hadamard": "D", "wide": "s"}
NETWORK_COLORS = {
    "tanh-hadamard": "#7b3294",  # purple against tanh's orange
    "tanh-wide": "#8c510a",  # brown
    "relu-hadamard": "#1b9e77",  # teal against ReLU's blue
}


def network_style(name: str) -> dict[str, Any]:
    """Colour, line style and marker of a network: a plain network in its activation's colour,
    solid, circles; its Hadamard and widened forms in colours of their own (a Hadamard network
    must not be told from its plain one by the dash alone), dashed with diamonds and dotted
    with squares."""
    act, _, kind = name.partition("-")
    color = color_of(act)
    if kind:
        color = NETWORK_COLORS.get(name) or color_of(name)
        if color == color_of(act):  # a hash that lands on the plain colour: another one
            color = next(c for c in PALETTE if c != color)
    return {
        "color": color,
        "linestyle": LINESTYLES.get(name, STYLES.get(kind, "-")),
        "marker": MARKERS.get(kind, "o"),
    }


def _line(st: dict[str, Any]) -> dict[str, Any]:
    return {"color": st["color"], "linestyle": st["linestyle"]}


def split_panel(cells: list[dict[str, Any]]) -> bool:
    """Whether a panel's seeds must be drawn one by one: some seed of one of its cells ended
    below its own near-random start while others did not, which the IQM band would hide."""
    return any(any(collapsed_seeds(c)) for c in cells)


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


def curve_starts(cells: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Per (agent, environment), the first grid step at which some seed has a return point
    (its first episode has ended), where that is later than the first grid step."""
    out = {}
    for c in cells:
        key = (c["agent"], c["env"])
        firsts = [
            next((j for j, v in enumerate(row) if v is not None and math.isfinite(v)), None)
            for row in c["curves"]
        ]
        known = [j for j in firsts if j is not None]
        if known and min(known) > 0:
            out[key] = min(out.get(key, math.inf), float(c["grid"][min(known)]))
    return out


def plot_returns(results: Results) -> Figure:
    """One panel per (environment, agent) that ran (no empty panels), two columns up to four
    panels, so that each stays legible at the page's width; the IQM over seeds with its
    95% bootstrap band, whose edges carry the network's line style; a panel whose seeds split
    (:func:`split_panel`) draws each seed instead, since an IQM there stands for no seed."""
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
            mine = [c for c in cells if c["env"] == env and c["agent"] == agent]
            seedwise = split_panel(mine)
            for c in mine:
                grid = np.asarray(c["grid"])
                st = network_style(c["network"])
                mark = {"marker": st["marker"], "markevery": max(len(grid) // 6, 1), "ms": 4}
                if seedwise:  # each seed its own thin line, its final return a marker
                    for row in c["curves"]:
                        y = np.array([math.nan if v is None else v for v in row], dtype=float)
                        ax.plot(grid, y, lw=0.9, alpha=0.75, **_line(st))
                        ax.plot(grid[-1:], y[-1:], st["marker"], color=st["color"], ms=4)
                    ax.plot([], [], label=c["network"], lw=1.8, **_line(st), **mark)
                    continue
                mid, lo, hi = _band(c["curves"], reps)
                ax.plot(grid, mid, label=c["network"], lw=1.8, **_line(st), **mark)
                ax.fill_between(grid, lo, hi, color=st["color"], alpha=0.12, lw=0)
                for edge in (lo, hi):
                    ax.plot(grid, edge, lw=0.6, alpha=0.6, **_line(st))
            title = f"{AGENT_NAMES[agent]} on {env}"
            ax.set_title(title + ("\n(each seed; seeds split)" if seedwise else ""), fontsize=10)
            ax.set_xlabel("environment steps per agent (thousands)")
            ax.set_ylabel("episode return")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}"))
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
            title=f"IQM over {' or '.join(map(str, seeds))} seeds, 95% stratified-bootstrap band"
            + (
                "; a panel titled 'each seed': one thin line per seed"
                if any(split_panel([c]) for c in cells)
                else ""
            ),
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


def thin_log_ticks(ticks: list[float]) -> list[float]:
    """Log ticks whose labels do not touch: from 10 on (labels of two digits and more) the
    3-multiples are left out, keeping 1-2-5 per decade there."""
    return [t for t in ticks if t < 10 or f"{t:g}"[0] != "3"]


def log_ticks(values: list[float]) -> list[float]:
    """Ticks for a log axis over ``values``: 1-2-3-5 per decade from the decade below the
    smallest to the one above the largest, kept within a step of the data, so that low values
    (an effective rank of 2 or 3) can be read as well as high ones."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    if not finite:
        return []
    lo, hi = min(finite), max(finite)
    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(lo)), math.floor(math.log10(hi)) + 1)
        for m in (1, 2, 3, 5)
    ]
    below = [t for t in ticks if t <= lo]
    above = [t for t in ticks if t >= hi]
    first = below[-1] if below else ticks[0]
    last = above[0] if above else 10.0 ** (math.floor(math.log10(hi)) + 1)
    return [t for t in ticks if first <= t <= last] + ([last] if last not in ticks else [])


START_OFFSET = 0.22
"""How far below its row an initialisation marker sits, so that it never hides the end one."""


def plot_diagnostics(results: Results) -> Figure:
    """The representation layer per cell: one row per cell, one panel per metric (a dead unit
    count and a saturated share of pairs are different quantities: separate panels); at the
    last diagnostic record the mean over seeds with its 95% t-interval (filled marker, drawn on
    top), at initialisation the mean (open marker, a little below the row so that it never
    hides the end), so that a difference that came with the architecture shows. Each network
    has its own colour and marker, in the legend."""
    cells = results.summary["cells"]
    labels = [f"{AGENT_NAMES[c['agent']]} · {c['env']} · {c['network']}" for c in cells]
    with style():
        metrics = [m for m in METRICS if any(m[0] in c["diagnostics"] for c in cells)]
        fig = new_figure(figsize=(9.5, 0.34 * len(cells) + 1.9))
        axes = fig.subplots(1, max(len(metrics), 1), sharey=True, squeeze=False)[0]
        for ax, (key, title, log) in zip(axes, metrics, strict=False):
            shown: list[float] = []
            for y, c in enumerate(cells):
                d = c["diagnostics"].get(key)
                if d is None:
                    continue
                st = network_style(c["network"])
                mean, lo, hi = _point(d["end"])
                if log:  # an effective rank is at least 1; a t-interval can reach below
                    lo = max(lo, 1.0)
                start, _, _ = _point(d["start"])
                ax.plot(
                    [start],
                    [y + START_OFFSET],
                    st["marker"],
                    mfc="white",
                    color=st["color"],
                    ms=5,
                    mew=1,
                    zorder=2,
                )
                ax.plot([lo, hi], [y, y], color=st["color"], lw=2, zorder=3)
                ax.plot([mean], [y], st["marker"], color=st["color"], ms=5, zorder=4, mec="white")
                shown += [lo, hi, mean, start]
            ax.set_title(title, fontsize=9)
            ax.grid(axis="x", alpha=0.3)
            if log:
                ax.set_xscale("log")
                ticks = thin_log_ticks(log_ticks(shown))
                ax.xaxis.set_major_locator(FixedLocator(ticks))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
                if ticks:
                    ax.set_xlim(ticks[0] / 1.1, ticks[-1] * 1.1)
            else:  # a share: from a little left of 0 (a 0 tick) to a little past the largest
                top = max([v for v in shown if math.isfinite(v)] + [0.0])
                top = top if top > 0 else 0.01
                ax.set_xlim(-0.06 * top, 1.08 * top)
        axes[0].set_yticks(range(len(cells)), labels, fontsize=8)
        axes[0].set_ylim(len(cells) - 0.5, -0.5)
        handles = [
            axes[0].plot([], [], "o", color="0.3", ms=5)[0],
            axes[0].plot([], [], "o", mfc="white", color="0.3", ms=5)[0],
        ]
        names = [
            "last diagnostic record: mean, 95% t-interval over seeds",
            "initialisation: mean (no interval drawn)",
        ]
        for net in dict.fromkeys(c["network"] for c in cells):
            st = network_style(net)
            handles.append(axes[0].plot([], [], st["marker"], color=st["color"], ms=5)[0])
            names.append(net)
        fig.legend(
            handles,
            names,
            loc="outside lower center",
            ncol=min(len(names), 5),
            frameon=False,
            fontsize=8,
        )
    return fig


def figures(results: Results) -> dict[str, Figure]:
    return {"returns": plot_returns(results), "diagnostics": plot_diagnostics(results)}
