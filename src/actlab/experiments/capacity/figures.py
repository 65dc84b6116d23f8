"""Figures of the capacity experiment, drawn from its :class:`Results` alone.

Errors are relative to the target's variance (``MSE / Var f``), averaged over seeds on a log10
scale (geometric means) with 95% intervals; each (activation, target) at its own tuned rate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullFormatter
from scipy import stats as st

from actlab.experiments.base import Results
from actlab.experiments.capacity.experiment import target_values
from actlab.plotting.style import color_of, new_figure, style

__all__ = ["plot_heatmap", "plot_params", "plot_fits", "plot_regions_init", "figures"]

MARKERS = ("o", "s", "^", "D", "v", "P")
"""One marker per depth (in the order of the run's depths)."""


def _cells(results: Results, target: str) -> list[dict]:
    return [c for c in results.summary["cells"] if c["target"] == target]


def _verdict(results: Results, target: str, shape: tuple[int, int]) -> dict:
    for v in results.summary["verdicts"]:
        if v["target"] == target and (v["depth"], v["width"]) == shape:
            return v
    raise KeyError((target, shape))


def _short(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.0e}"


def plot_heatmap(results: Results, target: str, ax: Axes | None = None) -> Axes:
    """Geometric-mean test error (relative to ``Var f``) per activation (rows) and shape
    (columns, depth outermost), with its 95% interval written in each cell; the best activation
    of each shape framed in black, those within noise of it in grey."""
    s = results.summary
    acts, shapes = s["activations"], [(d, w) for d in s["depths"] for w in s["widths"]]
    ax = ax or new_figure(figsize=(9, 4)).subplots()
    grid = np.full((len(acts), len(shapes)), np.nan)
    text = {}
    for c in _cells(results, target):
        i, j = acts.index(c["activation"]), shapes.index((c["depth"], c["width"]))
        e = c["log10_error"]
        grid[i, j] = e["mean"]
        lo, hi = e["lo"], e["hi"]
        band = (
            f"\n[{_short(10**lo)}, {_short(10**hi)}]"
            if lo is not None and math.isfinite(lo)
            else ""
        )
        text[i, j] = f"{_short(10 ** e['mean']) if math.isfinite(e['mean']) else 'n/a'}{band}"
    finite = grid[np.isfinite(grid)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (-1, 0)
    norm = LogNorm(10.0**vmin, 10.0 ** max(vmax, vmin + 1e-3))
    img = ax.imshow(10.0**grid, cmap="viridis", norm=norm, aspect="auto")
    ax.grid(False)
    for (i, j), t in text.items():
        dark = np.isfinite(grid[i, j]) and grid[i, j] < vmin + 0.55 * (vmax - vmin)
        ax.text(j, i, t, ha="center", va="center", fontsize=7.5, color="white" if dark else "k")
    for j, shape in enumerate(shapes):
        v = _verdict(results, target, shape)
        for a in v["tied_with_best"]:
            ax.add_patch(
                Rectangle(
                    (j - 0.47, acts.index(a) - 0.47), 0.94, 0.94, fill=False, ec="0.6", lw=1.2
                )
            )
        ax.add_patch(
            Rectangle(
                (j - 0.47, acts.index(v["best"]) - 0.47), 0.94, 0.94, fill=False, ec="k", lw=2.2
            )
        )
    tuned = None if s["tune_all_shapes"] else tuple(s["tune_shape"])
    ax.set_xticks(
        range(len(shapes)),
        [f"D={d}\nN={w}" + ("\n(tuned here)" if (d, w) == tuned else "") for d, w in shapes],
    )
    ax.set_yticks(range(len(acts)), acts)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    bar = ax.figure.colorbar(img, ax=ax, fraction=0.03, pad=0.01)
    bar.set_label("test MSE / Var f (log scale)")
    return ax


def plot_params(results: Results, target: str, ax: Axes | None = None) -> Axes:
    """Test error against the parameter count ``|theta|``: one colour per activation, one marker
    per depth, widths joined by a line; 95% intervals as bars."""
    s = results.summary
    ax = ax or new_figure().subplots()
    cells = _cells(results, target)
    for act in s["activations"]:
        for k, depth in enumerate(s["depths"]):
            row = sorted(
                (c for c in cells if c["activation"] == act and c["depth"] == depth),
                key=lambda c: c["params"],
            )
            x = np.array([c["params"] for c in row], dtype=float)
            m = np.array([c["log10_error"]["mean"] for c in row], dtype=float)
            lo = np.array([c["log10_error"]["lo"] for c in row], dtype=float)
            hi = np.array([c["log10_error"]["hi"] for c in row], dtype=float)
            y = 10.0**m
            err = np.vstack(
                [
                    y - 10.0 ** np.where(np.isfinite(lo), lo, m),
                    10.0 ** np.where(np.isfinite(hi), hi, m) - y,
                ]
            )
            ax.errorbar(
                x,
                y,
                yerr=err,
                color=color_of(act),
                marker=MARKERS[k % len(MARKERS)],
                ms=4,
                lw=1.0,
                capsize=1.5,
                alpha=0.85,
            )
    floor = s["affine_floor"][target]
    ax.axhline(floor, color="k", ls="--", lw=1.2, zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("parameters |θ|")
    ax.set_ylabel("test MSE / Var f")
    ax.set_title(s["target_labels"][target])
    return ax


def _members(results: Results) -> pd.DataFrame:
    m = results.metrics
    cols = ["member", "depth", "width", "activation", "target", "lr", "seed"]
    return m[m.metric == "train/mse"][cols].drop_duplicates("member").set_index("member")


def plot_fits(results: Results, target: str, shape: tuple[int, int], ax: Axes | None = None):
    """Seed 0's fitted function on ``[-1, 1]`` per activation at ``shape`` and its tuned rate,
    over the target (black, dashed)."""
    s = results.summary
    ax = ax or new_figure().subplots()
    table = _members(results)
    x = np.asarray(results.coords["curve/point"])
    for c in _cells(results, target):
        if (c["depth"], c["width"]) != shape or c["lr"] is None:
            continue
        sel = table[
            (table.target == target)
            & (table.activation == c["activation"])
            & (table.depth == shape[0])
            & (table.width == shape[1])
            & np.isclose(table.lr, c["lr"])
            & (table.seed == 0)
        ]
        for m in sel.index:
            ax.plot(x, results.arrays["curve"][m], color=color_of(c["activation"]), lw=1.3)
    truth = target_values(target, torch.as_tensor(x, dtype=torch.float64)[:, None])[:, 0]
    ax.plot(x, truth.numpy(), color="k", ls="--", lw=1.4)
    ax.set_title(s["target_labels"][target])
    ax.set_xlabel("x")
    return ax


def plot_regions_init(results: Results, ax: Axes | None = None) -> Axes:
    """Activation regions along ``[-1, 1]`` of ReLU networks at a Gaussian initialisation
    against the number of hidden units ``D N`` (mean and 95% interval per shape, one marker per
    depth), under three predictions: the first layer's exact expectation (depth 1), the line
    'every unit adds as many breakpoints as a first-layer unit' (linear in ``D N``), and the
    sawtooth's ``2^D`` pieces from ``2 D`` units."""
    s, a = results.summary, results.arrays
    ax = ax or new_figure().subplots()
    counts = a["region_counts"]
    widths = np.array(s["region_widths"], dtype=float)
    for i, depth in enumerate(s["region_depths"]):
        mean = counts[i].mean(-1)
        sd = counts[i].std(-1, ddof=1) if counts.shape[-1] > 1 else np.zeros_like(mean)
        n = counts.shape[-1]
        half = st.t.ppf(0.975, max(n - 1, 1)) * sd / math.sqrt(n) if n > 1 else 0 * sd
        ax.errorbar(
            depth * widths,
            mean,
            yerr=half,
            color="0.35",
            marker=MARKERS[i % len(MARKERS)],
            ls="none",
            ms=5,
            capsize=2,
            label=f"measured, D={depth} (mean, 95% interval)",
        )
    per_unit = a["first_layer_breakpoints"] / widths  # expected breakpoints per first-layer unit
    neurons = np.geomspace(widths.min(), max(s["region_depths"]) * widths.max(), 50)
    ax.plot(
        neurons,
        1 + per_unit.mean() * neurons,
        color="tab:blue",
        lw=1.6,
        label="first-layer rate extended to all D·N units (extrapolation)",
        zorder=3,
    )
    ax.plot(
        widths,
        1 + a["first_layer_breakpoints"],
        color="tab:blue",
        marker="x",
        ls="none",
        ms=8,
        mew=2,
        label="exact expectation, D=1",
        zorder=4,
    )
    d = a["sawtooth_depth"]
    ax.plot(
        2 * d,
        a["sawtooth_pieces"],
        color="tab:red",
        marker=".",
        lw=1.6,
        label="sawtooth: 2^D pieces from 2D units",
        zorder=3,
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("hidden units D·N")
    ax.set_ylabel("regions along [-1, 1]")
    ax.set_title(
        f"ReLU at initialisation (σ_w² = {s['region_sigma_w2']:g}, σ_b² = {s['region_sigma_b2']:g})"
    )
    ax.legend(loc="upper left", fontsize=7)
    return ax


def plot_regions_trained(results: Results, ax: Axes | None = None) -> Axes:
    """Linear pieces of the trained ReLU networks (1-D targets, tuned rate, every seed) against
    their count at initialisation, one colour shade per target; the diagonal is 'unchanged'."""
    s = results.summary
    ax = ax or new_figure().subplots()
    trained = s["regions"]["trained"]
    targets = list(dict.fromkeys(r["target"] for r in trained))
    cmap = [
        "tab:blue",
        "tab:orange",
        "tab:green",
        "tab:purple",
        "tab:brown",
        "tab:pink",
        "tab:olive",
        "tab:cyan",
    ]
    lim = [1.0, 2.0]
    for k, tgt in enumerate(targets):
        rows = [r for r in trained if r["target"] == tgt]
        x = [r["pieces_init"]["mean"] for r in rows]
        y = [r["pieces_end"]["mean"] for r in rows]
        ax.plot(
            x,
            y,
            ls="none",
            marker=MARKERS[k % len(MARKERS)],
            color=cmap[k % len(cmap)],
            ms=5,
            label=s["target_labels"][tgt],
        )
        lim = [min(lim[0], *x, *y), max(lim[1], *x, *y)]
        p = s["target_pieces"].get(tgt)
        if p:
            ax.axhline(p, color=cmap[k % len(cmap)], lw=0.8, ls=":")
    ax.plot(lim, lim, color="0.5", lw=1, ls="--", label="unchanged by training")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("linear pieces at initialisation (mean over seeds)")
    ax.set_ylabel("linear pieces after training")
    ax.set_title("Trained ReLU nets, each shape and target (dotted: the target's pieces)")
    ax.legend(loc="upper left", fontsize=7)
    return ax


def figures(results: Results) -> dict[str, Figure]:
    """``errors_TARGET`` (a heatmap per target), ``params``, ``fits``, ``regions``."""
    s = results.summary
    figs: dict[str, Figure] = {}
    with style():
        for tgt in s["targets"]:
            fig = new_figure(figsize=(10, 0.7 * len(s["activations"]) + 1.4))
            plot_heatmap(results, tgt, ax=fig.subplots())
            fig.suptitle(
                f"{s['target_labels'][tgt]}: test MSE / Var f, geometric mean over {s['seeds']} "
                "seeds [95% interval]; black frame: best, grey: within noise of it"
            )
            figs[f"errors_{tgt}"] = fig

        n = len(s["targets"])
        cols = min(3, n)
        rows = math.ceil(n / cols)
        fig = new_figure(figsize=(10, 3.0 * rows + 0.6))
        axs = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
        for ax, tgt in zip(axs, s["targets"], strict=False):
            plot_params(results, tgt, ax=ax)
        for ax in axs[n:]:
            ax.set_visible(False)
        handles = [Line2D([], [], color=color_of(a), lw=2, label=a) for a in s["activations"]]
        handles += [
            Line2D([], [], color="0.3", marker=MARKERS[k % len(MARKERS)], ls="none", label=f"D={d}")
            for k, d in enumerate(s["depths"])
        ]
        handles.append(Line2D([], [], color="k", ls="--", label="best affine fit (theory)"))
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 11))
        fig.suptitle(
            "Test error against the number of parameters (each activation at its tuned rate)"
        )
        figs["params"] = fig

        ones = [t for t in s["targets"] if t in _one_d(results)]
        if ones:
            shape = (max(s["depths"]), max(s["widths"]))
            cols = min(3, len(ones))
            rows = math.ceil(len(ones) / cols)
            fig = new_figure(figsize=(10, 2.7 * rows + 0.6))
            axs = fig.subplots(rows, cols, squeeze=False).reshape(-1)
            for ax, tgt in zip(axs, ones, strict=False):
                plot_fits(results, tgt, shape, ax=ax)
            for ax in axs[len(ones) :]:
                ax.set_visible(False)
            handles = [Line2D([], [], color=color_of(a), lw=2, label=a) for a in s["activations"]]
            handles.append(Line2D([], [], color="k", ls="--", label="target"))
            fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
            fig.suptitle(f"Fits of seed 0 at D={shape[0]}, N={shape[1]}, each at its tuned rate")
            figs["fits"] = fig

        fig = new_figure(figsize=(10, 4.2))
        a1, a2 = fig.subplots(1, 2)
        plot_regions_init(results, ax=a1)
        if s["regions"]["trained"]:
            plot_regions_trained(results, ax=a2)
        else:
            a2.set_visible(False)
        figs["regions"] = fig
    return figs


def _one_d(results: Results) -> set[str]:
    return {t for t, d in results.summary["target_dims"].items() if d == 1}
