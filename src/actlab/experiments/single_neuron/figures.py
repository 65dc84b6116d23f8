"""Figures of the single-neuron playground, drawn from its :class:`Results` alone.

Every fit panel has the model's formula in its header and, in a column of its own beside the
panel (so that it can never cover the data), an annotation box: the x-range on top, the
parameters w, b, v, c in that order, and the range of the prediction y-hat over the x-range at
the bottom. Fits shown are seed 0's best restart (on the train set) of each case.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FormatStrFormatter
from matplotlib.transforms import TransformedBbox

from actlab.experiments.base import Results
from actlab.plotting.animation import Animation, render_frame
from actlab.plotting.style import color_of, new_figure, style

__all__ = [
    "formula",
    "plot_fit",
    "fit_figure",
    "convergence_animation",
    "plot_heldout",
    "plot_relu_function",
    "relu_trajectories_figure",
    "plot_relu_landscape",
    "plot_sigmoid_fit",
    "sigmoid_animation",
    "figures",
]

_DATA = "#8a8a8a"
_TRUTH = "#222222"
_OTHER = "#c4c4c4"
_DEAD = "#b2182b"
_BEST = "#e7298a"  # the best ReLU restart, in the trajectories and the landscape alike
_BOX = {"boxstyle": "round,pad=0.45", "facecolor": "#fbfbf7", "edgecolor": "#9a9a9a"}
_SYMBOL = {
    "tanh": r"\tanh",
    "sigmoid": r"\sigma",
    "relu": r"\mathrm{ReLU}",
    "leaky_relu": r"\mathrm{LReLU}",
    "sine": r"\sin",
    "gelu": r"\mathrm{GELU}",
    "silu": r"\mathrm{SiLU}",
    "softplus": r"\mathrm{softplus}",
}
NCOLS = 2
"""Fit panels per row (two: with three the boxes of w, b, v, c were unreadable at ~800 px)."""


def formula(activation: str) -> str:
    """The model as mathtext: ``$\\hat y = v\\,\\tanh(wx + b) + c$``."""
    if activation == "identity":
        return r"$\hat y = v\,(wx + b) + c$"
    symbol = _SYMBOL.get(activation, r"\mathrm{" + activation.replace("_", r"\_") + "}")
    return rf"$\hat y = v\,{symbol}(wx + b) + c$"


def _s(results: Results) -> dict[str, Any]:
    return results.summary


def _case(results: Results, target: str, activation: str) -> dict[str, Any]:
    for c in _s(results)["cases"]:
        if c["target"] == target and c["activation"] == activation:
            return c
    raise ValueError(f"no case ({target!r}, {activation!r}) in these results")


def _index(results: Results, target: str, activation: str) -> tuple[int, int]:
    return (
        list(results.coords["best_curves/target"]).index(target),
        list(results.coords["best_curves/activation"]).index(activation),
    )


def _box_text(x_range: tuple[float, float], params: dict[str, float], yhat: tuple) -> str:
    """x-range on top, then w, b, v, c, then the y-hat range (fixed widths: no jitter in GIFs)."""
    lines = [f"x ∈ [{x_range[0]:+.2f}, {x_range[1]:+.2f}]"]
    # round first, then + 0.0: a tiny negative value prints as +0.000, not -0.000
    lines += [f"{k} = {round(params[k], 3) + 0.0:+9.3f}" for k in "wbvc" if k in params]
    lines.append(f"ŷ ∈ [{yhat[0]:+.2f}, {yhat[1]:+.2f}]")
    return "\n".join(lines)


def _box_kwargs() -> dict[str, Any]:
    return {"ha": "left", "va": "top", "family": "monospace", "fontsize": 7, "bbox": _BOX}


def _draw_box(ax: Axes, text: str) -> None:
    """The annotation box in its own (axis-less) column beside the panel."""
    ax.set_axis_off()
    ax.text(0.0, 0.97, text, transform=ax.transAxes, **_box_kwargs())


def _ylim(results: Results, t: int) -> tuple[float, float]:
    y = np.concatenate([results.arrays["y_train"][t, 0], results.arrays["truth"][t]])
    lo, hi = float(y.min()), float(y.max())
    pad = 0.15 * max(hi - lo, 0.5)
    return lo - pad, hi + pad


def _fit_state(
    results: Results, target: str, activation: str, frame: int | None
) -> tuple[np.ndarray, str]:
    """The fit curve on the grid and the text of its box, at ``frame`` (None: the end)."""
    t, a = _index(results, target, activation)
    x = np.asarray(results.arrays["x_grid"])
    if frame is None:
        curve = results.arrays["best_curves"][t, a, 0]
        p = results.arrays["best_params"][t, a, 0]
    else:
        curve = results.arrays["frame_curves"][t, a, frame]
        r = _case(results, target, activation)["best_seed0"]["restart"]
        p = results.arrays["snapshots"][t, a, r, frame]
    params = dict(zip("wbvc", (float(v) for v in p), strict=True))
    text = _box_text((float(x[0]), float(x[-1])), params, (curve.min(), curve.max()))
    return curve, text


def plot_fit(
    results: Results,
    target: str,
    activation: str,
    ax: Axes | None = None,
    *,
    box_ax: Axes | None = None,
    frame: int | None = None,
    fit: bool = True,
) -> Axes:
    """Seed 0's train data, the noiseless target and the best restart's fit (at snapshot
    ``frame`` of training, default: the end); the annotation box goes to ``box_ax``. With
    ``fit=False`` only the static parts are drawn (the backdrop of an animation)."""
    if ax is None:
        fig = new_figure(figsize=(4.2, 2.6))
        ax, box_ax = fig.subplots(1, 2, width_ratios=[3, 1.3])
    t, _ = _index(results, target, activation)
    x = np.asarray(results.arrays["x_grid"])
    ax.scatter(
        results.arrays["x_train"][0], results.arrays["y_train"][t, 0], s=9, color=_DATA,
        zorder=2, linewidths=0, label="train (draw 0)",
    )  # fmt: skip
    ax.plot(x, results.arrays["truth"][t], color=_TRUTH, lw=1.0, ls="--", label="target")
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_ylim(*_ylim(results, t))
    ax.set_title(formula(activation), fontsize=9, color=color_of(activation))
    ax.set_xlabel("x", labelpad=1)
    if box_ax is not None:
        box_ax.set_axis_off()
    if fit:
        curve, text = _fit_state(results, target, activation, frame)
        ax.plot(x, curve, color=color_of(activation), lw=2.0, label="fit")
        if box_ax is not None:
            _draw_box(box_ax, text)
    return ax


def _fit_grid(
    results: Results, target: str, title: str, *, fit: bool = True
) -> tuple[Figure, list[tuple[Axes, Axes]]]:
    """Small multiples: per activation a panel and, beside it, the column of its box."""
    acts = list(results.coords["best_curves/activation"])
    nrows = -(-len(acts) // NCOLS)
    ncols = min(NCOLS, len(acts))
    height = 2.3 * nrows + 0.45
    fig = new_figure(figsize=(4.2 * ncols, height), layout=None)
    outer = fig.add_gridspec(
        nrows, ncols, left=0.045, right=0.995, bottom=0.4 / height, top=1 - 0.5 / height,
        wspace=0.16, hspace=0.55,
    )  # fmt: skip
    panels = []
    for i, act in enumerate(acts):
        row, col = divmod(i, NCOLS)
        inner = outer[row, col].subgridspec(1, 2, width_ratios=[2.4, 1.3], wspace=0.04)
        ax, box_ax = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
        plot_fit(results, target, act, ax, box_ax=box_ax, fit=fit)
        panels.append((ax, box_ax))
    fig.suptitle(title, fontsize=10)
    return fig, panels


def fit_figure(results: Results, target: str) -> Figure:
    """One panel per activation: the best restart of seed 0 against the target."""
    s = _s(results)
    info = s["target_info"][target]
    title = (
        f"{info['label']} target $y = {info['latex']}$ + noise: best of {s['restarts']} "
        "restarts (draw 0) per activation"
    )
    with style():
        return _fit_grid(results, target, title)[0]


class _Backdrop:
    """The static part of an animation, rendered once; a frame is a new Figure holding that
    image and, on one transparent full-figure Axes, only what moves (curves, boxes, a title).

    Rebuilding a grid of Axes for every frame costs most of a frame's time; this does not.
    """

    def __init__(self, fig: Figure, panels: list[Axes], dpi: float):
        self.image = render_frame(fig, dpi)
        self.size = tuple(fig.get_size_inches())
        self.dpi = dpi
        self.panels = [(ax.get_position(), ax.get_xlim(), ax.get_ylim()) for ax in panels]
        fig.clear()

    def frame(self) -> tuple[Figure, Axes]:
        fig = new_figure(figsize=self.size, dpi=self.dpi, layout=None)
        fig.figimage(self.image, origin="upper")
        over = fig.add_axes((0.0, 0.0, 1.0, 1.0), zorder=2)  # above the image
        over.set_axis_off()
        over.set_xlim(0.0, 1.0)
        over.set_ylim(0.0, 1.0)
        return fig, over

    def plot(self, over: Axes, k: int, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> None:
        """Plot data ``(x, y)`` of panel ``k`` in figure coordinates, clipped to the panel."""
        pos, (x0, x1), (y0, y1) = self.panels[k]
        fx = pos.x0 + (np.asarray(x) - x0) / (x1 - x0) * pos.width
        fy = pos.y0 + (np.asarray(y) - y0) / (y1 - y0) * pos.height
        for artist in over.plot(fx, fy, **kwargs):
            artist.set_clip_box(TransformedBbox(pos, over.figure.transFigure))


def convergence_animation(
    results: Results, target: str, fps: float = 4.0, max_frames: int | None = None
) -> Animation:
    """The fits of :func:`fit_figure` over training (log-spaced snapshots), the annotation
    boxes updating; the animation ends once the last of the shown restarts has stopped."""
    steps = list(results.coords["frame_curves/frame"])
    shown = [c["best_seed0"]["stop_step"] for c in _s(results)["cases"] if c["target"] == target]
    frames = sorted({i for i, st in enumerate(steps) if st <= max(shown)} | {len(steps) - 1})
    max_frames = max_frames or int(_s(results).get("gif_frames", 16))
    if len(frames) > max_frames:  # evenly thinned, first and last kept: short and light
        keep = np.unique(np.round(np.linspace(0, len(frames) - 1, max_frames)).astype(int))
        frames = [frames[j] for j in keep]
    info = _s(results)["target_info"][target]
    acts = list(results.coords["best_curves/activation"])
    x = np.asarray(results.arrays["x_grid"])
    dpi = 72.0
    cache: dict[str, _Backdrop] = {}

    def draw(i: int) -> Figure:
        with style():
            if "bg" not in cache:
                fig, panels = _fit_grid(results, target, "", fit=False)
                cache["bg"] = _Backdrop(fig, [p for pair in panels for p in pair], dpi)
            bg = cache["bg"]
            fig, over = bg.frame()
            k = frames[i]
            for j, act in enumerate(acts):
                curve, text = _fit_state(results, target, act, k)
                bg.plot(over, 2 * j, x, curve, color=color_of(act), lw=2.0)
                pos = bg.panels[2 * j + 1][0]
                over.text(pos.x0, pos.y0 + 0.97 * pos.height, text, **_box_kwargs())
            fig.suptitle(
                f"{info['label']} target, draw 0, best restart: after {steps[k]} Adam steps",
                fontsize=10,
            )
            return fig

    return Animation(draw=draw, n_frames=len(frames), fps=fps, dpi=dpi)


def plot_heldout(results: Results, target: str, ax: Axes | None = None) -> Axes:
    """Held-out MSE of the best restart per seed (dots), its mean and 95% CI (bar), the spread
    of all restarts (10th-90th percentile, thin), the noise floor of these draws (the held-out
    MSE of the noiseless target, as in the report) and the least-squares line."""
    if ax is None:
        ax = new_figure(figsize=(3.2, 2.6)).add_subplot()
    s = _s(results)
    acts = list(s["activations"])
    floor = s["truth_heldout"]["mean"]
    rank = s["ranking"][target]
    for i, act in enumerate(acts):
        c = _case(results, target, act)
        color = color_of(act)
        sp = c["spread"]
        ax.plot([i + 0.22, i + 0.22], [sp["p10"], sp["p90"]], color=color, lw=1.0, alpha=0.5)
        vals = np.asarray(c["heldout_values"], float)
        jitter = np.linspace(-0.12, 0.12, vals.size) if vals.size > 1 else np.zeros(1)
        ax.scatter(i + jitter, vals, s=8, color=color, alpha=0.55, linewidths=0, zorder=2)
        # A saved run stores NaN as null; a CI reaching below 0 is cut at the mean (log axis).
        h = {k: math.nan if v is None else float(v) for k, v in c["heldout"].items()}
        lo = h["lo"] if np.isfinite(h["lo"]) and h["lo"] > 0 else h["mean"]
        hi = h["hi"] if np.isfinite(h["hi"]) else h["mean"]
        ax.errorbar(
            i, h["mean"], yerr=[[h["mean"] - lo], [hi - h["mean"]]], fmt="o", ms=4.5,
            color=color, mec="black" if act == rank["best"] else color, capsize=3, zorder=3,
        )  # fmt: skip
    ax.axhline(floor, color="#555555", ls="--", lw=0.9)
    ax.axhline(rank["line"]["mean"], color="#555555", ls=":", lw=0.9)
    ax.set_yscale("log")
    ax.set_xticks(range(len(acts)), acts, rotation=40, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(acts) - 0.4)
    info = s["target_info"][target]
    ax.set_title(f"{info['label']}: ${info['latex']}$", fontsize=9)
    return ax


def heldout_figure(results: Results) -> Figure:
    """:func:`plot_heldout` for every target, side by side."""
    targets = list(_s(results)["targets"])
    # At most 3 panels a row: five in one row are unreadable at the page's ~800 px.
    ncols = min(3, len(targets))
    nrows = -(-len(targets) // ncols)
    with style():
        fig = new_figure(figsize=(2.75 * ncols + 0.5, 2.55 * nrows + 0.5))
        grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
        axes = list(grid.reshape(-1))
        for ax, target in zip(axes, targets, strict=False):
            plot_heldout(results, target, ax)
        for row in grid:
            row[0].set_ylabel("held-out MSE (log)")
        handles = [
            Line2D([], [], color="#555555", ls="--", lw=0.9, label="noise floor (these draws)"),
            Line2D([], [], color="#555555", ls=":", lw=0.9, label="least-squares line"),
            Line2D([], [], color="#777777", marker="o", ls="", label="mean ± 95% CI over draws"),
            Line2D([], [], color="#777777", lw=1.0, alpha=0.5, label="10–90% of all restarts"),
        ]
        spare = axes[len(targets) :]
        if spare:  # the legend in the first empty panel, the others switched off
            for ax in spare:
                ax.set_axis_off()
            spare[0].legend(handles=handles, loc="center", frameon=False, fontsize=8)
        else:
            fig.legend(handles=handles, loc="outside lower center", ncols=2)
        return fig


# --------------------------------------------------------------------------------------------
# ReLU in depth


def plot_relu_function(results: Results, axes: tuple[Axes, Axes] | None = None) -> Axes:
    """ReLU (left) and its derivative (right), the side where both are 0 shaded."""
    if axes is None:
        axes = new_figure(figsize=(6.4, 2.5)).subplots(1, 2, sharex=True)
    z = np.asarray(results.coords["relu_curve/z"], float)
    phi, dphi = results.arrays["relu_curve"]
    color = color_of("relu")
    for ax in axes:
        ax.axvspan(float(z[0]), 0.0, color=_DEAD, alpha=0.08, lw=0)
        ax.set_xlim(float(z[0]), float(z[-1]))
        ax.set_xlabel("z = wx + b")
    left, right = axes
    left.plot(z, phi, color=color)
    left.set_title(r"$\mathrm{ReLU}(z) = \max(0, z)$", fontsize=10)
    neg, pos = z < 0, z > 0
    right.plot(z[neg], dphi[neg], color=color)
    right.plot(z[pos], dphi[pos], color=color)
    at0 = float(dphi[np.argmin(np.abs(z))])  # the registry's value at the kink
    right.plot([0, 0], [0, 1], color=color, lw=0.8, ls=":")
    right.plot(0, at0, "o", color=color, ms=5)
    right.plot(0, 1 - at0, "o", mfc="white", color=color, ms=5)
    right.set_ylim(-0.15, 1.25)
    right.set_title(r"$\mathrm{ReLU}'(z)$: 0 for $z < 0$, 1 for $z > 0$", fontsize=10)
    left.text(-1.5, 1.6, "z < 0: output 0,\ngradient 0", ha="center", fontsize=8, color=_DEAD)
    return left


def relu_trajectories_figure(results: Results) -> Figure:
    """w, b, v, c over training for every restart of seed 0 on the ReLU target: the best one
    in colour, restarts that end dead on every input in red, the others grey."""
    s = _s(results)["relu"]
    t, a = _index(results, s["target"], "relu")
    snaps = results.arrays["snapshots"][t, a]  # (restart, frame, 4)
    steps = np.asarray(results.coords["snapshots/frame"], float)
    dead = results.arrays["dead"][t, a, 0].astype(bool)
    with style():
        fig = new_figure(figsize=(9.0, 2.6))
        axes = fig.subplots(1, 4, sharex=True)
        for k, (ax, name) in enumerate(zip(axes, "wbvc", strict=True)):
            for r in range(snaps.shape[0]):
                if r == s["best_restart"]:
                    continue
                color, ls = (_DEAD, ":") if dead[r] else (_OTHER, "-")
                ax.plot(steps + 1, snaps[r, :, k], color=color, ls=ls, lw=0.9)
            ax.plot(steps + 1, snaps[s["best_restart"], :, k], color=_BEST, lw=2.2)
            ax.set_xscale("log")
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("Adam step + 1")
        handles = [
            Line2D([], [], color=_BEST, lw=2.2, label="best restart"),
            Line2D([], [], color=_DEAD, ls=":", lw=0.9, label="ends dead on every input"),
            Line2D([], [], color=_OTHER, lw=0.9, label="other restarts"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
        info = _s(results)["target_info"][s["target"]]
        fig.suptitle(f"ReLU unit on the {info['label']} target (draw 0): parameters over training")
        return fig


def plot_relu_landscape(results: Results, ax: Axes | None = None) -> Axes:
    """log10 of the profile MSE over (w, b) (v, c solved by least squares), the dead-everywhere
    region hatched, the all-active (linear) region outlined, and seed 0's training paths."""
    if ax is None:
        ax = new_figure(figsize=(5.6, 4.6)).add_subplot()
    s = _s(results)["relu"]
    w = np.asarray(results.coords["relu_landscape_mse/w"], float)
    b = np.asarray(results.coords["relu_landscape_mse/b"], float)
    mse = results.arrays["relu_landscape_mse"]
    mesh = ax.pcolormesh(
        w, b, mse.T, shading="nearest", cmap=matplotlib.colormaps["viridis"], rasterized=True,
        norm=LogNorm(),
    )  # fmt: skip
    bar = ax.figure.colorbar(mesh, ax=ax, label=r"MSE with the best $(v, c)$ (log scale)",
                             shrink=0.9)  # fmt: skip
    for axis_formatter in (bar.ax.yaxis.set_major_formatter, bar.ax.yaxis.set_minor_formatter):
        axis_formatter(FormatStrFormatter("%.3g"))
    # The regions are wedges bounded by the lines w x + b = 0 at the ends of the data: drawn
    # exactly, not as contours of the (pixelated) grid.
    x0 = results.arrays["x_train"][0]
    lo, hi = float(np.min(x0)), float(np.max(x0))
    ww = np.linspace(float(w[0]), float(w[-1]), 801)
    edge_dead, edge_linear = np.minimum(-ww * lo, -ww * hi), np.maximum(-ww * lo, -ww * hi)
    ax.fill_between(ww, float(b[0]), edge_dead, facecolor="none", edgecolor="white",
                    hatch="////", linewidth=0.0)  # fmt: skip
    ax.plot(ww, edge_dead, color="white", lw=1.0)
    ax.plot(ww, edge_linear, color="white", lw=0.9, ls="--")
    ax.grid(False)
    t, a = _index(results, s["target"], "relu")
    snaps = results.arrays["snapshots"][t, a]
    dead_end = results.arrays["dead"][t, a, 0].astype(bool)
    for r in range(snaps.shape[0]):
        if r != s["best_restart"]:
            ax.plot(snaps[r, :, 0], snaps[r, :, 1], color="white", lw=0.6, alpha=0.55)
            ax.plot(*snaps[r, -1, :2], marker="x" if dead_end[r] else ".", color="white", ms=4)
    best = snaps[s["best_restart"]]
    ax.plot(best[:, 0], best[:, 1], color=_BEST, lw=2.0)
    ax.plot(*best[0, :2], marker="o", color=_BEST, ms=5)
    ax.plot(*best[-1, :2], marker="*", color=_BEST, ms=11, mec="black", mew=0.6)
    ax.set_xlim(float(w[0]), float(w[-1]))
    ax.set_ylim(float(b[0]), float(b[-1]))
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    ax.set_aspect("equal")
    handles = [
        Line2D([], [], color=_BEST, lw=2.0, marker="*", label="best restart (o start)"),
        Line2D([], [], color="#777777", lw=0.6, marker="x", label="other restarts (x: dead)"),
        Patch(
            facecolor="white", edgecolor="#333", hatch="////", label="dead on every input"
        ),  # fmt: skip
        Line2D([], [], color="#333", ls="--", lw=0.9, label="active on every input"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.13), ncols=2,
              fontsize=7)  # fmt: skip
    info = _s(results)["target_info"][s["target"]]
    ax.set_title(f"ReLU loss landscape, {info['label']} target (draw 0)", fontsize=9)
    return ax


# --------------------------------------------------------------------------------------------
# Sigmoid without bias


def _sigmoid_curve(w: float, x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * w * x))


def _sigmoid_state(results: Results, step: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Grid, fit and box text of y = sigma(w x) after ``step`` gradient steps."""
    x = np.asarray(results.arrays["x_grid"], float)
    w = float(results.arrays["sigmoid_path"][step, 0])
    curve = _sigmoid_curve(w, x)
    text = _box_text((float(x[0]), float(x[-1])), {"w": w}, (curve.min(), curve.max()))
    return x, curve, text


def plot_sigmoid_fit(
    results: Results,
    ax: Axes | None = None,
    *,
    box_ax: Axes | None = None,
    step: int = -1,
    fit: bool = True,
) -> Axes:
    """y = sigma(w x) after ``step`` gradient steps (default: the end), with its box."""
    if ax is None:
        fig = new_figure(figsize=(4.4, 2.8))
        ax, box_ax = fig.subplots(1, 2, width_ratios=[3, 1.2])
    x, curve, text = _sigmoid_state(results, step)
    ax.scatter(results.arrays["x_train"][0], results.arrays["sigmoid_y"], s=9, color=_DATA,
               linewidths=0, label="train (draw 0)")  # fmt: skip
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(r"$\hat y = \sigma(wx)$  (no bias, no $v$, $c$)", fontsize=9)
    ax.set_xlabel("x", labelpad=1)
    if box_ax is not None:
        box_ax.set_axis_off()
        handles = [
            Line2D([], [], color=_DATA, marker="o", ms=3, ls="", label="train (draw 0)"),
            Line2D([], [], color=color_of("sigmoid"), lw=2.0, label=r"fit $\sigma(wx)$"),
        ]
        box_ax.legend(handles=handles, loc="lower left", fontsize=7, borderaxespad=0.0)
    if fit:
        ax.plot(x, curve, color=color_of("sigmoid"), lw=2.0)
        if box_ax is not None:
            _draw_box(box_ax, text)
    return ax


def plot_sigmoid_loss(
    results: Results, ax: Axes | None = None, *, step: int = -1, path: bool = True
) -> Axes:
    """The loss as a function of w, the path of gradient descent up to ``step`` and a marker
    at the current w."""
    if ax is None:
        ax = new_figure(figsize=(3.6, 2.8)).add_subplot()
    w = np.asarray(results.coords["sigmoid_loss_curve/w"], float)
    ax.plot(w, results.arrays["sigmoid_loss_curve"], color="#444444", lw=1.4)
    ax.set_xlabel("w")
    ax.set_ylabel(r"train MSE of $\sigma(wx)$")
    ax.set_xlim(float(w[0]), float(w[-1]))
    top = float(np.max(results.arrays["sigmoid_loss_curve"]))
    ax.set_ylim(-0.04 * top, 1.08 * top)
    if path:
        p = results.arrays["sigmoid_path"]
        k = step % p.shape[0]
        ax.plot(p[: k + 1, 0], p[: k + 1, 1], ".", color=color_of("sigmoid"), ms=3, alpha=0.6)
        ax.plot(p[k, 0], p[k, 1], "o", color=color_of("sigmoid"), ms=8, mec="black")
        ax.set_title(f"gradient descent on w: step {k}", fontsize=9)
    return ax


def _sigmoid_layout(results: Results, *, dynamic: bool) -> tuple[Figure, list[Axes]]:
    fig = new_figure(figsize=(8.6, 3.0), layout=None)
    grid = fig.add_gridspec(1, 3, width_ratios=[3, 1.15, 3.2], left=0.06, right=0.985,
                            bottom=0.16, top=0.9, wspace=0.3)  # fmt: skip
    ax, box, right = (fig.add_subplot(grid[0, j]) for j in range(3))
    plot_sigmoid_fit(results, ax, box_ax=box, fit=dynamic)
    plot_sigmoid_loss(results, right, path=dynamic)
    return fig, [ax, box, right]


def sigmoid_figure(results: Results) -> Figure:
    """The fit of y = sigma(w x) at the end, and w's path on the loss-vs-w curve."""
    with style():
        return _sigmoid_layout(results, dynamic=True)[0]


def sigmoid_animation(results: Results, n_frames: int | None = None, fps: float = 8.0) -> Animation:
    """Two panels: the fit (left, with its box) and w's position on the loss-vs-w curve
    (right, a moving marker), at evenly spaced gradient-descent steps."""
    path = results.arrays["sigmoid_path"]
    n_frames = n_frames or round(2.5 * int(_s(results).get("gif_frames", 16)))
    frames = sorted(
        {int(round(v)) for v in np.linspace(0, len(path) - 1, min(n_frames, len(path)))}
    )
    dpi = 84.0
    cache: dict[str, _Backdrop] = {}

    def draw(i: int) -> Figure:
        with style():
            if "bg" not in cache:
                fig, panels = _sigmoid_layout(results, dynamic=False)
                cache["bg"] = _Backdrop(fig, panels, dpi)
            bg = cache["bg"]
            fig, over = bg.frame()
            k = frames[i]
            x, curve, text = _sigmoid_state(results, k)
            bg.plot(over, 0, x, curve, color=color_of("sigmoid"), lw=2.0)
            pos = bg.panels[1][0]
            over.text(pos.x0, pos.y0 + 0.97 * pos.height, text, **_box_kwargs())
            color = color_of("sigmoid")
            bg.plot(over, 2, path[: k + 1, 0], path[: k + 1, 1], ls="", marker=".", ms=3,
                    color=color, alpha=0.6)  # fmt: skip
            bg.plot(over, 2, path[k : k + 1, 0], path[k : k + 1, 1], ls="", marker="o", ms=8,
                    color=color, mec="black")  # fmt: skip
            right = bg.panels[2][0]
            over.text((right.x0 + right.x1) / 2, right.y1 + 0.015, f"gradient descent on w: "
                      f"step {k}", ha="center", va="bottom", fontsize=9)  # fmt: skip
            return fig

    return Animation(draw=draw, n_frames=len(frames), fps=fps, dpi=dpi)


def figures(results: Results) -> dict[str, Any]:
    """Every figure of the experiment, keyed by the name the report cites."""
    out: dict[str, Any] = {"heldout": heldout_figure(results)}
    for target in _s(results)["targets"]:
        out[f"fit_{target}"] = fit_figure(results, target)
        out[f"convergence_{target}"] = convergence_animation(results, target)
    if "relu" in _s(results):
        with style():
            fig = new_figure(figsize=(6.6, 2.5))
            plot_relu_function(results, fig.subplots(1, 2, sharex=True))
            out["relu_function"] = fig
            out["relu_trajectories"] = relu_trajectories_figure(results)
            fig = new_figure(figsize=(6.0, 5.6))
            plot_relu_landscape(results, fig.add_subplot())
            out["relu_landscape"] = fig
    out["sigmoid_fit"] = sigmoid_figure(results)
    out["sigmoid_descent"] = sigmoid_animation(results)
    return out
