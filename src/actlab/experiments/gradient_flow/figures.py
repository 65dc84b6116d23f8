"""Figures of the gradient-flow experiment, drawn from its :class:`Results` alone.

Layers run 1 (nearest the input) to D (last hidden) or D+1 (the output layer), left to right.
Gradients span many decades: every curve is the mean of ``log10`` over initialisations (a
geometric mean) with its 95% band; the mean-field prediction is drawn over it in black.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from actlab.experiments.base import Results
from actlab.experiments.gradient_flow.measure import nan_for_none as _nan_for_none
from actlab.plotting.style import color_of, new_figure, style
from actlab.stats import ci_band

__all__ = [
    "plot_profile",
    "plot_profiles",
    "plot_slopes",
    "plot_depth",
    "plot_phase",
    "plot_forward_q",
    "plot_training",
    "figures",
]

LN10 = math.log(10.0)
INIT_COLORS = {"torch": "#e7298a", "xavier": "#1b9e77", "he": "#7570b3"}
"""Colours of the schemes in the profiles: none of them black, the colour of the predictions
drawn over them, nor an activation's colour."""
INIT_LABELS = {"torch": "PyTorch default", "xavier": "Xavier", "he": "He"}
INIT_SHORT = {"torch": "default", "xavier": "Xavier", "he": "He"}
INIT_MARKERS = {"torch": "o", "xavier": "s", "he": "^"}
VERDICT_COLORS = {
    "vanishing": "#4575b4",
    "stable": "#91cf60",
    "exploding": "#d73027",
    "undecided": "#bdbdbd",
}
QUANTITY_TITLES = {
    "delta": r"per-example backward signal $\delta_l$ (RMS)",
    "weight_per_example": "per-example weight gradient (norm)",
    "weight_full_batch": "full-batch weight gradient (norm)",
}


def _s(results: Results) -> dict[str, Any]:
    """The summary with NaN where the run folder stored JSON null."""
    return _nan_for_none(results.summary)


def _tag(results: Results) -> tuple[str, int, int]:
    h = _s(results)["headline"]
    return f"D{h['depth']}_N{h['width']}", h["depth"], h["width"]


def _band(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% band over axis 0 of natural logs, in log10."""
    return ci_band(np.asarray(logs) / LN10, axis=0)


def plot_profile(results: Results, activation: str, quantity: str, ax: Axes | None = None) -> Axes:
    """One activation's ``quantity`` per layer at the headline shape, one line per scheme,
    the prediction dashed black over it."""
    if ax is None:
        ax = new_figure(figsize=(4, 3)).subplots()
    tag, depth, _ = _tag(results)
    inits = results.coords[f"delta_{tag}/init"]
    a = results.coords[f"delta_{tag}/activation"].index(activation)
    logs = results.arrays[f"{quantity}_{tag}"]
    n_layers = depth if quantity == "delta" else depth + 1
    layers = np.arange(1, n_layers + 1)
    pred_key = "weight_per_example" if quantity != "delta" else "delta"
    for i, init in enumerate(inits):
        mean, lo, hi = _band(logs[i, a][:, :n_layers])
        ax.fill_between(layers, lo, hi, color=INIT_COLORS[init], alpha=0.25, lw=0)
        ax.plot(layers, mean, color=INIT_COLORS[init], lw=2.2, alpha=0.8)
        pred = results.arrays[f"pred_{pred_key}_{tag}"][i, a][:n_layers] / LN10
        style_ = (0, (4, 2)) if quantity != "weight_full_batch" else (0, (1, 2))
        ax.plot(layers, pred, color="black", lw=1.0, ls=style_)
    if quantity != "delta":
        ax.axvspan(depth + 0.5, depth + 1.5, color="#eeeeee", zorder=0)
        ax.text(depth + 1, ax.get_ylim()[0], "out", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0.5, n_layers + 0.5)
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel(r"$\log_{10}$")
    ax.set_title(f"{activation}: {QUANTITY_TITLES[quantity]}", fontsize=9)
    return ax


def plot_profiles(results: Results) -> Figure:
    """Rows: the headline activations; columns: the three quantities."""
    acts = _s(results)["headline"]["activations"]
    tag, depth, width = _tag(results)
    inits = results.coords[f"delta_{tag}/init"]
    fig = new_figure(figsize=(11, 3.1 * len(acts) + 0.6))
    axes = fig.subplots(len(acts), 3, squeeze=False)
    for r, act in enumerate(acts):
        for c, q in enumerate(("delta", "weight_per_example", "weight_full_batch")):
            plot_profile(results, act, q, axes[r, c])
    handles = [
        Line2D([], [], color=INIT_COLORS[i], lw=2.2, label=f"measured, {INIT_LABELS[i]} init")
        for i in inits
    ]
    handles += [
        Line2D([], [], color="black", lw=1, ls=(0, (4, 2)), label="mean-field prediction"),
        Line2D(
            [],
            [],
            color="black",
            lw=1,
            ls=(0, (1, 2)),
            label="per-example prediction (no full-batch theory)",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(
        f"Gradients at initialisation, D = {depth}, N = {width} "
        f"(geometric mean over {_s(results)['seeds']} initialisations, 95% band)",
        fontsize=10,
    )
    return fig


SLOPE_PANELS = (
    ("delta", "pred_slope_delta"),
    ("weight_per_example", "pred_slope_weight_per_example"),
    ("weight_full_batch", "pred_slope_weight_per_example"),
)
"""The slopes figure's panels: measured quantity, and the prediction it is set against."""


def slope_residuals(results: Results) -> dict[str, list[dict[str, Any]]]:
    """Per panel of the slopes figure (quantity): one point per (scheme, activation) at the
    headline shape, schemes in the run's order and activations within each: ``x`` its position
    (a gap of one between schemes), ``y``/``lo``/``hi`` measured minus predicted slope with the
    95% interval, ``band`` the half-width of the band of agreement."""
    s = _s(results)
    _, depth, width = _tag(results)
    rows = [r for r in s["table"] if r["depth"] == depth and r["width"] == width]
    inits = list(dict.fromkeys(r["init"] for r in rows))
    acts = list(dict.fromkeys(r["activation"] for r in rows))
    tol, floor = s["agree_tol"], s["agree_floor"]
    out: dict[str, list[dict[str, Any]]] = {}
    for q, pred_key in SLOPE_PANELS:
        pts = []
        for i, init in enumerate(inits):
            for a, act in enumerate(acts):
                r = next(r for r in rows if r["init"] == init and r["activation"] == act)
                stat, pred = r[f"slope_{q}"], r[pred_key]
                pts.append(
                    {
                        "init": init,
                        "activation": act,
                        "x": i * (len(acts) + 1) + a,
                        "y": stat["mean"] - pred,
                        "lo": stat["lo"] - pred,
                        "hi": stat["hi"] - pred,
                        "band": tol * abs(pred) + floor,
                    }
                )
        out[q] = pts
    return out


def plot_slopes(results: Results) -> Figure:
    """Measured minus predicted slope per layer (towards the input) with its 95% interval, every
    (scheme, activation) at the headline shape, the band of agreement behind each point; one
    panel per quantity, one y-scale for all."""
    _, depth, width = _tag(results)
    s = _s(results)
    res = slope_residuals(results)
    fig = new_figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 3, sharey=True)
    reach = 0.0
    for ax, (q, _) in zip(axes, SLOPE_PANELS, strict=True):
        pts = res[q]
        for p in pts:
            ax.bar(
                p["x"], 2 * p["band"], bottom=-p["band"], width=0.8, color="#e6e6e6", lw=0, zorder=0
            )
            ax.errorbar(
                p["x"],
                p["y"],
                yerr=[[p["y"] - p["lo"]], [p["hi"] - p["y"]]],
                fmt="o",
                color=color_of(p["activation"]),
                ms=5,
                capsize=2,
            )
            if np.isfinite(p["lo"]) and np.isfinite(p["hi"]):
                reach = max(reach, abs(p["lo"]), abs(p["hi"]))
        ax.axhline(0, color="black", lw=0.8, ls=(0, (4, 2)), zorder=1.5)
        inits = list(dict.fromkeys(p["init"] for p in pts))
        centres = [np.mean([p["x"] for p in pts if p["init"] == i]) for i in inits]
        ax.set_xticks(centres, [INIT_SHORT[i] for i in inits], fontsize=8)
        ax.grid(False, axis="x")
        ax.set_title(QUANTITY_TITLES[q], fontsize=9)
    lim = 1.15 * max(reach, s["agree_floor"])
    axes[0].set_ylim(-lim, lim)
    axes[0].set_ylabel("measured − predicted slope per layer")
    for ax in axes:
        ax.set_xlabel("initialisation")
    axes[2].set_title(
        QUANTITY_TITLES["weight_full_batch"] + "\nminus the per-example prediction", fontsize=9
    )
    acts = list(dict.fromkeys(p["activation"] for p in res["delta"]))
    handles = [Patch(color=color_of(a), label=a) for a in acts]
    handles.append(
        Patch(
            color="#e6e6e6",
            label=f"agreement band (±{100 * s['agree_tol']:.0f}% + {s['agree_floor']:g}/layer)",
        )
    )
    handles.append(Line2D([], [], color="black", lw=0.8, ls=(0, (4, 2)), label="= prediction"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle(
        f"Slope of the log-gradient per layer towards the input, measured minus predicted, "
        f"D = {depth}, N = {width} (95% interval over initialisations)",
        fontsize=10,
    )
    return fig


def plot_depth(results: Results, ax: Axes | None = None) -> Axes:
    """log10 of (backward signal at layer 1) / (at layer D) against depth, per activation,
    under the headline scheme at the widest width; the prediction as a line."""
    if ax is None:
        ax = new_figure(figsize=(6.5, 4.2)).subplots()
    h = _s(results)["headline"]
    rows = [r for r in _s(results)["table"] if r["width"] == h["width"] and r["init"] == h["init"]]
    drawn: dict[str, np.ndarray] = {}
    for act in _s(results)["activations"]:
        mine = sorted((r for r in rows if r["activation"] == act), key=lambda r: r["depth"])
        d = np.array([r["depth"] for r in mine])
        m = np.array([r["log10_ratio_delta"]["mean"] for r in mine])
        lo = np.array([r["log10_ratio_delta"]["lo"] for r in mine])
        hi = np.array([r["log10_ratio_delta"]["hi"] for r in mine])
        pred = np.array([r["pred_log10_ratio_delta"] for r in mine])
        ax.plot(d, pred, color="black", lw=0.8, ls=(0, (4, 2)), zorder=3)
        ax.errorbar(d, m, yerr=[m - lo, hi - m], fmt="o", color=color_of(act), ms=5, capsize=2)
        # a curve within 0.25 decade of one drawn before is hidden under it: say so
        under = [k for k, v in drawn.items() if v.shape == m.shape and np.nanmax(abs(v - m)) < 0.25]
        label = f"{act} (under {under[0]})" if under else act
        drawn[act] = m
        ax.plot(d, m, color=color_of(act), lw=1.2, alpha=0.6, label=label)
    ax.axhline(-6, color="#999999", lw=0.8, ls=":")
    ax.text(ax.get_xlim()[0], -6, r" $10^{-6}$", va="bottom", fontsize=7, color="#555555")
    ax.set_xlabel("depth D (hidden layers)")
    ax.set_ylabel(r"$\log_{10}$ of $\delta$ at layer 1 / at layer D")
    ax.set_title(
        f"Backward signal across the whole depth, N = {h['width']}, "
        f"{INIT_LABELS.get(h['init'], h['init'])} init",
        fontsize=9,
    )
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", lw=0.8, ls=(0, (4, 2)), label="mean field"))
    ax.legend(handles=handles, fontsize=7, ncol=2, loc="lower left")
    return ax


def grid_position(values: np.ndarray, grid: list[float]) -> np.ndarray:
    """Positions of ``values`` on an axis that spaces the sorted ``grid`` evenly (grid value k
    at position k, linear in between); NaN outside the grid."""
    values = np.asarray(values, np.float64)
    pos = np.interp(values, grid, np.arange(len(grid), dtype=np.float64))
    inside = (values >= grid[0]) & (values <= grid[-1]) & np.isfinite(values)
    return np.where(inside, pos, np.nan)


def plot_phase(results: Results, ax: Axes | None = None) -> Axes:
    """tanh's (sigma_b^2, sigma_w^2) grid, its values evenly spaced (a fine grid near 0 stays
    readable): each cell coloured by the measured verdict, the measured slope written in it,
    the edge of chaos (chi_1 = 1) drawn over it, placed linearly between grid values."""
    if ax is None:
        ax = new_figure(figsize=(6.5, 4.6)).subplots()
    ph = _s(results)["phase"]
    bs = sorted({c["sigma_b2"] for c in ph["cells"]})
    ws = sorted({c["sigma_w2"] for c in ph["cells"]})
    size = 9 if max(len(bs), len(ws)) <= 6 else 7.5 if max(len(bs), len(ws)) <= 8 else 6.5
    for c in ph["cells"]:
        x, y = bs.index(c["sigma_b2"]), ws.index(c["sigma_w2"])
        ax.add_patch(
            Rectangle(
                (x - 0.47, y - 0.47),
                0.94,
                0.94,
                color=VERDICT_COLORS[c["verdict"]],
                lw=0,
                zorder=2,
            )
        )
        ax.text(
            x,
            y,
            f"{c['slope']['mean']:+.2f}",
            ha="center",
            va="center",
            fontsize=size,
            zorder=5,
        )
    sb = grid_position(results.arrays["edge_sigma_b2"], bs)
    sw = grid_position(results.arrays["edge_sigma_w2"], ws)
    ax.plot(sb, sw, color="black", lw=1.8, zorder=4)
    ax.set_xticks(range(len(bs)), [f"{v:g}" for v in bs])
    ax.set_yticks(range(len(ws)), [f"{v:g}" for v in ws])
    ax.set_xlim(-0.5, len(bs) - 0.5)
    ax.set_ylim(-0.5, len(ws) - 0.5)
    ax.grid(False)
    ax.set_xlabel(r"$\sigma_b^2$ (grid values, evenly spaced)")
    ax.set_ylabel(r"$\sigma_w^2$ (grid values, evenly spaced)")
    handles = [Patch(color=VERDICT_COLORS[v], label=f"measured: {v}") for v in VERDICT_COLORS]
    handles.append(Line2D([], [], color="black", lw=1.8, label=r"edge of chaos, $\chi_1 = 1$"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    ax.set_title(
        f"tanh, D = {ph['depth']}, N = {ph['width']}: measured slope of log δ per layer "
        f"towards the input ({ph['seeds']} initialisations)",
        fontsize=9,
    )
    return ax


def plot_forward_q(results: Results) -> Figure:
    """Measured ``q^l`` (geometric mean, 95% band) per activation against the length map's
    prediction, one panel per scheme, at the headline shape."""
    tag, depth, width = _tag(results)
    inits = results.coords[f"q_{tag}/init"]
    acts = results.coords[f"q_{tag}/activation"]
    fig = new_figure(figsize=(4.0 * len(inits) + 1.6, 3.8))
    axes = fig.subplots(1, len(inits), squeeze=False)[0]
    layers = np.arange(1, depth + 1)
    for ax, (i, init) in zip(axes, enumerate(inits), strict=True):
        for a, act in enumerate(acts):
            q = results.arrays[f"q_{tag}"][i, a]
            with np.errstate(divide="ignore"):
                mean, lo, hi = ci_band(np.log10(q), axis=0)
            ax.fill_between(layers, lo, hi, color=color_of(act), alpha=0.25, lw=0)
            ax.plot(layers, mean, color=color_of(act), lw=2.0, alpha=0.8, label=act)
            pred = results.arrays[f"pred_q_{tag}"][i, a]
            with np.errstate(divide="ignore"):
                ax.plot(layers, np.log10(pred), color="black", lw=0.9, ls=(0, (4, 2)))
        ax.set_xlabel("hidden layer (input → output)")
        ax.set_title(f"{INIT_LABELS[init]} init", fontsize=9)
    axes[0].set_ylabel(r"$\log_{10} q^l$ (mean square of $z$)")
    handles, _ = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", lw=0.9, ls=(0, (4, 2)), label="length map"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle(
        f"Forward signal $q^l$ measured (coloured, 95% band) and predicted (dashed), "
        f"D = {depth}, N = {width}",
        fontsize=10,
    )
    return fig


def plot_training(results: Results) -> Figure:
    """Layer x step heatmaps of log10 of the full-batch weight-gradient norm of the training
    loss (geometric mean over initialisations), one panel per activation, one colour scale."""
    tr = _s(results)["training"]
    acts = results.coords["train_grad/activation"]
    grad = results.arrays["train_grad"] / LN10  # activation, seed, step, layer
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(np.isfinite(grad), grad, np.nan), axis=1)
    finite = mean[np.isfinite(mean)]
    vmin, vmax = (np.percentile(finite, 1), np.percentile(finite, 99)) if finite.size else (0, 1)
    cols = min(4, len(acts))
    rows_ = math.ceil(len(acts) / cols)
    fig = new_figure(figsize=(2.8 * cols + 1.0, 2.6 * rows_ + 0.6))
    axes = fig.subplots(rows_, cols, squeeze=False)
    steps, n_layers = mean.shape[1], mean.shape[2]
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(acts):
            ax.set_visible(False)
            continue
        image = ax.imshow(
            mean[k],
            aspect="auto",
            origin="lower",
            cmap="viridis",
            vmin=vmin,
            vmax=vmax,
            extent=(0.5, n_layers + 0.5, -0.5, steps - 0.5),
            interpolation="nearest",
        )
        ax.grid(False)
        ax.set_title(acts[k], fontsize=9, color=color_of(acts[k]))
        if k % cols == 0:
            ax.set_ylabel("Adam step")
        if k // cols == rows_ - 1:
            ax.set_xlabel("layer (input → output)")
    if image is not None:
        fig.colorbar(
            image, ax=axes, shrink=0.8, label=r"$\log_{10}$ full-batch weight-gradient norm"
        )
    fig.suptitle(
        f"During training: D = {tr['depth']}, N = {tr['width']}, full-batch Adam, "
        f"η = {tr['lr']:g} (geometric mean over {tr['seeds']} initialisations; "
        f"layer {n_layers} is the output layer)",
        fontsize=9,
    )
    return fig


def figures(results: Results) -> dict[str, Any]:
    """Every figure of the experiment, by file name."""
    with style():
        fig_depth = new_figure(figsize=(6.5, 4.2))
        plot_depth(results, fig_depth.subplots())
        fig_phase = new_figure(figsize=(7.5, 4.6))
        plot_phase(results, fig_phase.subplots())
        return {
            "profiles": plot_profiles(results),
            "slopes": plot_slopes(results),
            "depth": fig_depth,
            "phase": fig_phase,
            "forward_q": plot_forward_q(results),
            "training": plot_training(results),
        }
