"""Figures of the deep-MLP experiment, drawn from its :class:`Results` alone.

Members of the fixed-learning-rate arrays are ordered (activation, seed): member
``m = a * seeds + s``. Layers are numbered 1 (nearest the input) to ``depth + 1`` (the output
layer) on every axis. Losses and gradient magnitudes span decades, so their seed averages are
geometric means with a 95% confidence band computed on ``log10`` of the values (a band that an
arithmetic CI would push below zero on a log axis).
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from actlab.experiments.base import Results
from actlab.experiments.deep_mlp.experiment import ANIMATION_FRAMES
from actlab.plotting.animation import Animation, BlitRenderer
from actlab.plotting.style import color_of, new_figure, style
from actlab.stats import ci_band

__all__ = [
    "plot_learned_functions",
    "plot_loss_curves",
    "plot_gradient_flow",
    "plot_hidden_activations",
    "plot_unit_health",
    "training_animation",
    "figures",
]

_DATA = "#9e9e9e"
_TRUTH = "#222222"
_FLOOR = "#555555"
_HEAT = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#bdbdbd")  # NaN drawn grey


def _activations(results: Results) -> list[str]:
    return list(results.coords["fits_best_lr/activation"])


def _seed_rows(results: Results, a: int) -> slice:
    s = int(results.summary["seeds"])
    return slice(a * s, (a + 1) * s)


def _series(results: Results, metric: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Steps and, per activation, values ``(seeds, steps)`` of ``metric`` at the fixed rate."""
    m = results.metrics
    lr = results.summary["lr"]
    rows = m[(m.metric == metric) & np.isclose(m.lr, lr)]
    table = rows.pivot_table(index=["activation", "seed"], columns="step", values="value")
    steps = table.columns.to_numpy()
    return steps, {a: table.loc[a].to_numpy() for a in _activations(results)}


# ------------------------------------------------------------------------ learned functions
_SAME_FIT = 0.02
"""Two mean fits closer than this everywhere (0.6% of the y axis) are drawn on one another."""


def plot_learned_functions(results: Results) -> Figure:
    """One panel per activation: truth, noisy training data, the seed-mean fit with its 95%
    band at the fixed rate (solid) and the seed-mean fit at the tuned rate (dotted)."""
    names = _activations(results)
    s = results.summary
    x = results.arrays["x_grid"]
    truth = np.sin(x)
    fits = results.arrays["fits"][:, -1]  # member, input
    tuned = results.arrays["fits_best_lr"]  # activation, seed, input
    best = {row["activation"]: row["best_lr"] for row in s["table"]}
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = new_figure(figsize=(3.6 * ncols, 2.6 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for a, name in enumerate(names):
        ax = axes[a]
        ax.scatter(
            results.arrays["x_train"],
            results.arrays["y_train"],
            s=4,
            color=_DATA,
            lw=0,
        )
        ax.plot(x, truth, color=_TRUTH, ls=(0, (4, 2)), lw=1.2)
        mean, lo, hi = ci_band(fits[_seed_rows(results, a)])
        color = color_of(name)
        ax.fill_between(x, lo, hi, color=color, alpha=0.25, lw=0)
        ax.plot(x, mean, color=color, label=f"shared lr {s['lr']:g}")
        if not math.isclose(best[name], s["lr"]):
            other = np.nanmean(tuned[a], axis=0)
            label = f"tuned lr {best[name]:g}"
            with np.errstate(invalid="ignore"):
                if np.nanmax(np.abs(other - mean)) < _SAME_FIT:
                    label += "\n(under the solid line)"
            ax.plot(x, other, color=color, ls=":", lw=1.4, label=label)
        ax.set_title(name, color=color)
        ax.set_ylim(-1.7, 1.7)
        ax.legend(loc="lower right", fontsize=9, handlelength=1.8, frameon=True,
                  framealpha=0.85, facecolor="white", edgecolor="none")  # fmt: skip
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel("$x$")
    for ax in axes[::ncols]:
        ax.set_ylabel("$y$")
    fig.suptitle(
        f"What each activation learned after {s['epochs']} epochs "
        f"({s['seeds']} seeds, same initial weights)"
    )
    key = [
        Line2D([], [], color=_DATA, marker="o", ms=3, lw=0, label="training data"),
        Line2D([], [], color=_TRUTH, ls=(0, (4, 2)), lw=1.2, label=r"truth $\sin x$"),
        Line2D([], [], color="#555", label="fit, seed mean (band: 95%)"),
        Line2D([], [], color="#555", ls=":", lw=1.4, label="fit at the tuned rate"),
    ]
    fig.legend(handles=key, loc="outside lower center", ncols=4)
    return fig


# ------------------------------------------------------------------------ loss curves
def plot_loss_curves(results: Results) -> Figure:
    """Train and held-out MSE per epoch (geometric seed mean, 95% band), log scale, with the
    noise variance s^2 (dashed) and each draw's own floor, the MSE of sin x on its labels
    (dotted)."""
    names = _activations(results)
    floor = results.summary["noise_floor"]
    fig = new_figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2, sharey=True)
    draw_floor = {
        "train/mse": results.summary.get("train_floor", floor),
        "test/mse": results.summary.get("test_floor", floor),
    }
    for ax, metric, title in (
        (axes[0], "train/mse", "training MSE"),
        (axes[1], "test/mse", "held-out MSE (a second noisy draw)"),
    ):
        steps, series = _series(results, metric)
        for name in names:
            mean, lo, hi = ci_band(series[name], log=True)
            ax.fill_between(steps, lo, hi, color=color_of(name), alpha=0.2, lw=0)
            ax.plot(steps, mean, color=color_of(name), lw=1.4, label=name)
        ax.axhline(floor, color=_FLOOR, ls=(0, (5, 3)), lw=1)
        ax.axhline(draw_floor[metric], color=_FLOOR, ls=":", lw=1)
        ax.text(  # right, between the floors and the slow curves: the emptiest region
            0.98,
            0.2,
            f"dashed: noise variance $s^2$ = {floor:g}\n"
            f"dotted: this draw's floor (MSE of sin x) = {draw_floor[metric]:.3g}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color=_FLOOR,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1.5},
        )
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(title)
    axes[0].set_ylabel(f"MSE (lr {results.summary['lr']:g}; seed geometric mean, 95% band)")
    axes[1].legend(loc="upper right", ncols=2)
    fig.suptitle(
        "Loss curves against the noise variance $s^2$ and each draw's own floor "
        "(below $s^2$ on the training points is expected)"
    )
    return fig


# ------------------------------------------------------------------------ gradient flow
def _layer_ticks(ax: Axes, n_layers: int) -> None:
    ticks = list(range(1, n_layers + 1))
    labels = [str(t) for t in ticks]
    labels[0], labels[-1] = "1\ninput", f"{n_layers}\noutput"
    ax.set_xticks(ticks, labels)
    ax.set_xlim(0.6, n_layers + 0.4)


def plot_gradient_flow(results: Results) -> Figure:
    """Mean |dL/dW| of every layer, input (1) to output (depth + 1), one panel per recorded
    epoch, one line per activation (geometric seed mean with a 95% band), log scale."""
    names = _activations(results)
    grads = results.arrays["grad_snapshots"]  # member, epoch, layer
    epochs = results.coords["grad_snapshots/epoch"]
    layers = np.asarray(results.coords["grad_snapshots/layer"])
    fig = new_figure(figsize=(3.5 * len(epochs), 3.6))
    axes = fig.subplots(1, len(epochs), sharey=True, squeeze=False)[0]
    for e, (ax, epoch) in enumerate(zip(axes, epochs, strict=True)):
        drawn = {}
        for a, name in enumerate(names):
            mean, lo, hi = ci_band(grads[_seed_rows(results, a), e], log=True)
            ax.fill_between(layers, lo, hi, color=color_of(name), alpha=0.2, lw=0)
            ax.plot(layers, mean, color=color_of(name), marker="o", ms=2.5, lw=1.3, label=name)
            with np.errstate(divide="ignore", invalid="ignore"):
                drawn[(name, 0)] = np.log10(mean) / 10  # 1% of a 10-decade axis = 0.1 decade
        notes = [n for n in _hidden_lines(drawn, names, [epoch]) if not n.startswith("0 in")]
        if notes:
            ax.text(0.02, 0.98, "\n".join(n.split(" at ")[0] + " (lines overlap)" for n in notes),
                    transform=ax.transAxes, ha="left", va="top", fontsize=8, color="#333",
                    bbox={"facecolor": "white", "alpha": 0.85, "lw": 0, "pad": 1.5})  # fmt: skip
        ax.set_yscale("log")
        _layer_ticks(ax, len(layers))
        ax.set_xlabel("layer (1 = nearest the input)")
        ax.set_title("first step" if epoch == 0 else f"epoch {epoch}")
    axes[0].set_ylabel(r"mean $|\partial L / \partial W|$ of the layer (full batch)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center")
    fig.suptitle(
        "Full-batch weight gradient per layer, as Adam receives it "
        "(not the theory's per-example signal, nor the step size)"
    )
    return fig


# ------------------------------------------------------------------------ hidden activations
def plot_hidden_activations(results: Results, epoch: int | None = None, seed: int = 0) -> Figure:
    """Per activation (rows): the stored hidden layers as unit x input heatmaps (units sorted
    by their mean output) and the histogram of each layer's outputs; seed ``seed`` at
    ``epoch`` (default: the last). NaN entries are drawn grey and left out of histograms."""
    names = _activations(results)
    hidden = results.arrays["hidden"]  # member, epoch, layer, input, unit
    epochs = list(results.coords["hidden/epoch"])
    layers = list(results.coords["hidden/layer"])
    e = len(epochs) - 1 if epoch is None else epochs.index(epoch)
    x = results.arrays["x_grid"]
    seeds = int(results.summary["seeds"])
    n_cols = len(layers) + 1
    fig = new_figure(figsize=(2.7 * n_cols + 0.6, 1.75 * len(names) + 0.7))
    grid = fig.subplots(len(names), n_cols, squeeze=False, width_ratios=[1] * len(layers) + [1.1])
    styles = ["-", "--", ":", "-."]
    for a, name in enumerate(names):
        h = hidden[a * seeds + seed, e]  # layer, input, unit
        finite = h[np.isfinite(h)]
        vmax = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
        vmax = vmax if vmax > 0 else 1.0
        for j, layer in enumerate(layers):
            ax = grid[a, j]
            units = h[j].T  # unit, input
            order = np.argsort(
                np.nan_to_num(np.nanmean(units, axis=1), nan=np.inf) if units.size else []
            )
            image = ax.imshow(
                np.ma.masked_invalid(units[order]),
                aspect="auto",
                cmap=_HEAT,
                vmin=-vmax,
                vmax=vmax,
                extent=(x[0], x[-1], units.shape[0] - 0.5, -0.5),
                interpolation="nearest",
            )
            ax.grid(False)
            ax.set_yticks([])
            if a == 0:
                ax.set_title(f"layer {layer}" + (" (input side)" if j == 0 else ""))
            if a == len(names) - 1:
                ax.set_xlabel("input $x$")
            else:
                ax.set_xticklabels([])
            if j == 0:
                ax.set_ylabel(f"{name}\nunits", color=color_of(name))
        bar = fig.colorbar(image, ax=grid[a, len(layers) - 1], pad=0.02, fraction=0.08)
        bar.set_label(r"$\varphi(z)$", fontsize=8)
        ax = grid[a, -1]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 41)
        for j, layer in enumerate(layers):
            values = h[j][np.isfinite(h[j])]
            ax.hist(
                values,
                bins=bins,
                histtype="step",
                ls=styles[j % 4],
                color=color_of(name),
                lw=1.2,
                label=f"layer {layer}",
                density=True,
            )
        ax.set_yscale("log")
        ax.set_yticks([])
        ax.minorticks_off()
        n_bad = int(h.size - finite.size)
        if n_bad:
            ax.text(
                0.98,
                0.95,
                f"{n_bad} NaN/inf left out",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=6,
            )
        if a == 0:
            ax.set_title("output histogram (log density)")
            ax.legend(loc="upper left", fontsize=7.5)
        if a == len(names) - 1:
            ax.set_xlabel(r"unit output $\varphi(z)$")
    when = "at initialisation" if epochs[e] == 0 else f"after {epochs[e]} epochs"
    fig.suptitle(
        f"Hidden-layer outputs {when} (seed {seed}): each heatmap row is one unit, "
        "one colour scale per activation"
    )
    return fig


# ------------------------------------------------------------------------ unit health
_PANELS = (
    ("act/off_fraction", "dead or inactive on every input", None),
    (
        "act/saturated_pair_fraction",
        "saturated: share of (unit, input) pairs",
        "act/saturated_fraction",
    ),
    ("act/dormant_fraction", "τ-dormant (τ = 0.025, ReDo)", None),
)
"""Per panel: the metric drawn, its title, and a second metric named in a note (the units
saturated on every input, which the middle panel's per-input share contains)."""
_KIND_TEXT = {
    "dead": "dead (output exactly 0)",
    "inactive": "inactive (pre-activation $z < 0$)",
}
_NOTE = {"fontsize": 9, "color": "#333"}
_BOX = {"facecolor": "white", "alpha": 0.85, "lw": 0, "pad": 1.5}


def _off_kinds(results: Results, names: list[str]) -> dict[str, str]:
    """Which notion the dead-or-inactive panel counts, per activation that has one."""
    kinds = {row["activation"]: row.get("off_kind") for row in results.summary["table"]}
    return {n: kinds[n] for n in names if isinstance(kinds.get(n), str)}


def _every_input_note(units: np.ndarray, results: Results, names: list[str], k: int) -> str:
    """The units saturated on every input (metric ``k``), in words for the middle panel."""
    parts, zero = [], []
    for a, name in enumerate(names):
        block = units[_seed_rows(results, a), :, :, k]  # seed, epoch, layer
        if np.isnan(block).all():
            continue
        end = np.nanmean(block[:, -1], axis=0)
        if np.allclose(block[:, [0, -1]], 0):
            zero.append(name)
        else:
            parts.append(f"{name}: up to {100 * np.nanmax(end):.0f}% at the end")
    lines = ["units saturated on every input:"]
    if zero:
        lines.append(f"none for {', '.join(zero)}")
    return "\n".join(lines + parts) if len(lines) + len(parts) > 1 else ""


def plot_unit_health(results: Results) -> Figure:
    """Per hidden layer, seed means at initialisation (dotted) and at the end (solid): the
    fraction of dead or inactive units (each activation's own notion, named in the panel); the
    share of (unit, input) pairs in the saturated band, with a note on the units saturated on
    every input; the fraction of τ-dormant units. An activation to which a notion does not
    apply (NaN) has no line in that panel; a panel whose lines are all 0 says so, large."""
    names = _activations(results)
    units = results.arrays["units"]  # member, epoch, layer, metric
    metrics = list(results.coords["units/metric"])
    layers = np.asarray(results.coords["units/layer"])
    epochs = list(results.coords["units/epoch"])
    kinds = _off_kinds(results, names)
    panels = [p for p in _PANELS if p[0] in metrics]
    fig = new_figure(figsize=(3.8 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (metric, title, also) in zip(axes, panels, strict=True):
        k = metrics.index(metric)
        drawn: dict[tuple[str, int], np.ndarray] = {}
        for a, name in enumerate(names):
            block = units[_seed_rows(results, a), :, :, k]  # seed, epoch, layer
            for e, ls in ((0, ":"), (len(epochs) - 1, "-")):
                values = block[:, e]
                if np.isnan(values).all():
                    continue
                mean = np.nanmean(values, axis=0)
                drawn[(name, e)] = mean
                ax.plot(layers, mean, color=color_of(name), ls=ls, lw=1.3, marker="o", ms=2)
        ax.set_title(title)
        notes = _hidden_lines(drawn, names, epochs)
        key = []
        if metric == "act/off_fraction" and kinds:
            for kind in sorted(set(kinds.values())):
                acts = ", ".join(n for n in names if kinds.get(n) == kind)
                key.append(f"{_KIND_TEXT.get(kind, kind)}: {acts}")
        if also is not None and also in metrics and drawn:
            extra = _every_input_note(units, results, names, metrics.index(also))
            key += [extra] if extra else []
        if not drawn:
            ax.text(0.5, 0.5, "applies to none of\nthese activations", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9.5, color="#333")  # fmt: skip
        elif notes and notes[0].startswith("0 in every layer"):  # all-zero panel, said large
            ax.text(0.5, 0.5, "\n".join(notes + key), transform=ax.transAxes, ha="center",
                    va="center", fontsize=9.5, color="#333", bbox=_BOX)  # fmt: skip
        elif key or notes:
            ax.text(0.02, 0.98, "\n".join(key + notes), transform=ax.transAxes, ha="left",
                    va="top", bbox=_BOX, **_NOTE)  # fmt: skip
        ax.set_xticks(layers)
        ax.set_xlabel("hidden layer (1 = nearest the input)")
        ax.set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("fraction of the layer's units (middle: of pairs)")
    handles = [axes[0].plot([], [], color=color_of(n), label=n)[0] for n in names]
    handles += [
        axes[0].plot([], [], color="#555", ls=":", label="initialisation")[0],
        axes[0].plot([], [], color="#555", ls="-", label=f"epoch {epochs[-1]}")[0],
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    fig.suptitle("Unit health per layer (seed mean)")
    return fig


def _hidden_lines(drawn: dict, names: list[str], epochs: list[int]) -> list[str]:
    """Notes for a panel whose lines hide one another: every line at 0 (one sentence), or
    two activations whose lines coincide at the same epoch (the later drawn hides the other)."""
    if drawn and all(np.allclose(v, 0) for v in drawn.values()):
        acts = [n for n in names if (n, 0) in drawn or (n, len(epochs) - 1) in drawn]
        end = f"epoch {epochs[-1]}" if epochs else "the end"
        return [f"0 in every layer for {', '.join(acts)}", f"(at initialisation and at {end})"]
    notes = []
    for e in sorted({e for _, e in drawn}):
        left = [n for n in names if (n, e) in drawn]
        while left:
            first = left.pop(0)
            group = [first] + [
                n for n in left if np.allclose(drawn[(first, e)], drawn[(n, e)], atol=_SAME)
            ]
            left = [n for n in left if n not in group]
            if len(group) > 1:
                when = "initialisation" if e == 0 else f"epoch {epochs[e]}"
                notes.append(f"{' ≈ '.join(group)} at {when} (lines overlap)")
    return notes


_SAME = 0.01
"""Lines closer than this everywhere (1% of the fraction axis) overlap at the figure's size."""


# ------------------------------------------------------------------------ animation
def training_animation(
    results: Results, fps: float = 6.0, max_frames: int = ANIMATION_FRAMES
) -> Animation:
    """Seed 0 of every activation over training: the fit (top) and a few units of the last
    hidden layer as functions of x (bottom), one frame per recorded epoch (at most
    ``max_frames``, evenly spread, the first and the last included).

    One Figure is built on the first frame; afterwards only the moving lines and the title are
    redrawn on its static background (:class:`BlitRenderer`)."""
    names = _activations(results)
    x = results.arrays["x_grid"]
    frames = list(results.coords["fits/frame"])
    shown = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round())
    shown = shown.astype(int)
    fits = results.arrays["fits"]  # member, frame, input
    last = results.arrays["last_hidden_frames"]  # activation, frame, input, unit
    seeds = int(results.summary["seeds"])
    depth = int(results.summary["depth"])
    state: dict[str, Any] = {}

    def build() -> None:
        with style():
            fig = new_figure(figsize=(2.15 * len(names), 4.6), layout=None)
            fig.subplots_adjust(
                left=0.07, right=0.99, top=0.84, bottom=0.12, hspace=0.4, wspace=0.4
            )
            axes = fig.subplots(2, len(names), squeeze=False)
            fit_lines, unit_lines = [], []
            for a, name in enumerate(names):
                top, bottom = axes[0, a], axes[1, a]
                top.scatter(
                    results.arrays["x_train"], results.arrays["y_train"], s=2, color=_DATA, lw=0
                )
                top.plot(x, np.sin(x), color=_TRUTH, ls=(0, (4, 2)), lw=1)
                fit_lines.append(top.plot(x, fits[a * seeds, 0], color=color_of(name), lw=1.6)[0])
                top.set_ylim(-1.7, 1.7)
                top.set_title(name, color=color_of(name), fontsize=13)
                unit_lines.append(bottom.plot(x, last[a, 0], color=color_of(name), lw=0.7))
                finite = last[a][np.isfinite(last[a])]
                lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1, 1)
                pad = 0.05 * max(hi - lo, 1e-3)
                bottom.set_ylim(lo - pad, hi + pad)
                for ax in (top, bottom):
                    ax.tick_params(labelsize=10)
                    ax.set_xticks([-3, 0, 3])
                    ax.yaxis.set_major_locator(MaxNLocator(4))
                bottom.set_xlabel("$x$", fontsize=11)
            axes[0, 0].set_ylabel("fit", fontsize=12)
            axes[1, 0].set_ylabel(f"layer {depth} units", fontsize=12)
            title = fig.suptitle("", fontsize=14)
        moving = [title, *fit_lines, *(line for lines in unit_lines for line in lines)]
        state.update(
            fig=fig,
            fits=fit_lines,
            units=unit_lines,
            title=title,
            renderer=BlitRenderer(fig, moving, dpi=72),
        )

    def draw(k: int) -> np.ndarray:
        if not state:
            build()
        i = int(shown[k])
        for a in range(len(names)):
            state["fits"][a].set_ydata(fits[a * seeds, i])
            for u, line in enumerate(state["units"][a]):
                line.set_ydata(last[a, i, :, u])
        state["title"].set_text(f"Training, epoch {frames[i]} of {frames[-1]} (seed 0)")
        return state["renderer"].render()

    return Animation(draw, n_frames=len(shown), fps=fps, dpi=72)


def figures(results: Results) -> dict[str, Any]:
    """Every figure of the experiment, by file name."""
    with style():
        figures: dict[str, Any] = {
            "learned_functions": plot_learned_functions(results),
            "loss_curves": plot_loss_curves(results),
            "gradient_flow": plot_gradient_flow(results),
            "hidden_activations": plot_hidden_activations(results),
            "hidden_activations_start": plot_hidden_activations(
                results, epoch=results.coords["hidden/epoch"][0]
            ),
            "unit_health": plot_unit_health(results),
        }
    figures["training"] = training_animation(results)
    return figures
