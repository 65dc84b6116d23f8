"""Figures of the activation-swap experiment, drawn from its :class:`Results` alone.

What they read: ``loss_band`` (arm, split, stat, point) with ``coords["loss/point"]`` (the
epoch of each point, the swap twice), ``loss`` (arm, seed, split, point), ``units_band`` (arm,
metric, stat, epoch, layer), ``off_units`` (arm, seed, when, layer, unit), ``fit`` (arm, seed,
when, input), ``hidden`` (arm, when, layer, input, unit) and ``summary``. The fresh control
(``fresh_after``) is NaN before the swap, so its lines start there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from actlab.experiments.base import Results
from actlab.plotting.style import color_of, new_figure, style
from actlab.report.format import num

__all__ = [
    "arm_color",
    "plot_loss",
    "plot_loss_zoom",
    "plot_off_fraction",
    "plot_final",
    "plot_recovery",
    "plot_loss_curves",
    "plot_dead_units",
    "plot_hidden_units",
    "figures",
]

_DASH = {
    "before": "-",
    "after": "-",
    "swap_kept": "-",
    "swap_reset": (0, (4, 2)),
    "fresh_after": (0, (5, 2.5, 1.5, 2.5)),  # gaps: a solid line beneath stays visible
}
# Markers for the dead-unit panels, each arm's placed at its own epochs (staggered), so that two
# arms whose lines coincide both stay visible.
_MARK = {
    "before": "v",
    "after": "o",
    "swap_kept": "s",
    "swap_reset": "D",
    "fresh_after": "^",
}
_SWAP = "#555555"
_OFF = "#b0b0b0"


def arm_color(results: Results, arm: str) -> str:
    """The pure arms take their activation's colour; the swap arms black and magenta; the
    fresh control (same activation as ``after``, other training) green, dash-dotted."""
    s = results.summary
    return {
        "before": color_of(s["before"]),
        "after": color_of(s["after"]),
        "swap_kept": "#222222",
        "swap_reset": "#e7298a",
        "fresh_after": "#1b9e77",
    }[arm]


def _label(results: Results, arm: str) -> str:
    return results.summary["labels"][arm]


def _arms(results: Results) -> list[str]:
    return list(results.summary["arms"])


def _mark_swap(ax: Axes, results: Results, text: bool = True) -> None:
    swap = results.summary["swap_epoch"]
    ax.axvline(swap, color=_SWAP, lw=0.9, ls=":", zorder=0)
    if text:
        ax.annotate(
            f"swap ({results.summary['before']}→{results.summary['after']})",
            (swap, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            va="top",
            fontsize=7,
            color=_SWAP,
        )


def _band(
    ax: Axes, x: np.ndarray, band: np.ndarray, color: str, label: str, ls: Any, lw: float = 1.5
) -> None:
    """Mean line and shaded 95% CI; ``band`` is ``(3, n)`` (mean, lo, hi). A wider line is
    drawn beneath the others (so that a line lying on it stays visible)."""
    ax.fill_between(x, band[1], band[2], color=color, alpha=0.18, lw=0)
    z = 1.9 if lw > 1.5 else 2.0
    ax.plot(x, band[0], color=color, ls=ls, lw=lw, label=label, zorder=z)


def plot_loss(results: Results, split: str = "test", ax: Axes | None = None) -> Axes:
    """Mean MSE over seeds with its 95% CI, per arm, against epochs (log scale); the swap is
    the vertical line, and the jump there is drawn as the vertical segment of each swap arm.
    The swap arms are drawn from the swap on: before it they are tanh throughout (the same
    weights), whose line they would hide."""
    if ax is None:
        ax = new_figure(figsize=(4.5, 3.2)).add_subplot()
    s = results.summary
    x = np.asarray(results.coords["loss/point"], dtype=float)
    j = list(results.coords["loss_band/split"]).index(split)
    pre = s["swap_points"][0]
    for a, arm in enumerate(_arms(results)):
        band = results.arrays["loss_band"][a, j]
        part = slice(pre, None) if arm.startswith("swap") else slice(None)
        _band(ax, x[part], band[:, part], arm_color(results, arm), _label(results, arm), _DASH[arm])
    if split == "test":
        ax.axhline(s["noise_floor"], color="#888888", lw=0.8, ls="--")
        ax.annotate(
            "noise floor",
            (0, s["noise_floor"]),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=7,
            color="#666666",
        )
    ax.set_yscale("log")
    ax.set_xlim(0, s["epochs"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("training MSE" if split == "train" else "held-out MSE")
    ax.set_title("Training loss" if split == "train" else "Held-out loss")
    _mark_swap(ax, results)
    return ax


def plot_loss_zoom(results: Results, ax: Axes | None = None, after: float = 3.0) -> Axes:
    """The held-out MSE of the two swap arms from half an epoch before the swap to ``after``
    epochs past it, every seed as a thin line and the mean in bold (log scale), with the means
    of ``before`` throughout and of the fresh control (which starts at the swap)."""
    if ax is None:
        ax = new_figure(figsize=(4.5, 3.2)).add_subplot()
    s = results.summary
    x = np.asarray(results.coords["loss/point"], dtype=float)
    swap = s["swap_epoch"]
    keep = (x >= swap - 0.5) & (x <= swap + after)
    j = list(results.coords["loss/split"]).index("test")
    arms = _arms(results)
    for arm in ("before", "fresh_after", "swap_reset", "swap_kept"):
        a = arms.index(arm)
        color = arm_color(results, arm)
        seeds = results.arrays["loss"][a, :, j][:, keep]
        if arm.startswith("swap"):
            ax.plot(x[keep], seeds.T, color=color, lw=0.4, alpha=0.35, ls=_DASH[arm])
        band = results.arrays["loss_band"][a, j][:, keep]
        ax.plot(x[keep], band[0], color=color, lw=1.8, ls=_DASH[arm], label=_label(results, arm))
    ax.set_yscale("log")
    ax.set_xlim(swap - 0.5, swap + after)
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out MSE")
    ax.set_title("Around the swap (thin: each seed of the swap arms)")
    _mark_swap(ax, results, text=False)
    return ax


def _marks(x: np.ndarray, k: int, n_arms: int, start: float = 0.0) -> list[int]:
    """Indices of about eight marker positions along ``x`` from ``start``, shifted by a
    ``k``-th of the spacing: arm ``k``'s markers fall between the other arms' (staggered)."""
    idx = np.flatnonzero(x >= start)
    if idx.size == 0:
        return []
    span = float(x[idx[-1]] - x[idx[0]]) or 1.0
    step = span / 8
    want = x[idx[0]] + step * (np.arange(8) + (k + 0.5) / n_arms)
    return sorted({int(idx[np.argmin(np.abs(x[idx] - w))]) for w in want})


def coinciding(results: Results, layer: int, tol: float = 1e-9) -> list[tuple[str, str, float]]:
    """Pairs of arms whose mean dead fraction in ``layer`` is the same (within ``tol``) at
    every epoch from some epoch on, while both exist: ``(arm, arm, first epoch)``. The panels
    say so, since one line then hides the other."""
    x = np.asarray(results.coords["units/epoch"], dtype=float)
    off = list(results.coords["units/metric"]).index("act/off_fraction")
    li = list(results.coords["units/layer"]).index(layer)
    arms = _arms(results)
    mean = results.arrays["units_band"][:, off, 0, :, li]  # (arm, epoch)
    out = []
    for p, q in (("swap_kept", "swap_reset"), ("after", "fresh_after")):
        if p not in arms or q not in arms:
            continue
        a, b = mean[arms.index(p)], mean[arms.index(q)]
        both = np.isfinite(a) & np.isfinite(b)
        same = both & (np.abs(a - b) <= tol)
        if not same[both].any() or not same[np.flatnonzero(both)[-1]]:
            continue
        # the first epoch from which they agree to the end
        last_diff = np.flatnonzero(both & ~same)
        first = np.flatnonzero(both)[0] if last_diff.size == 0 else last_diff[-1] + 1
        out.append((p, q, float(x[first])))
    return out


def plot_off_fraction(results: Results, layer: int, ax: Axes | None = None) -> Axes:
    """Fraction of units of hidden ``layer`` (1 = nearest the input) that are dead (output
    exactly 0 on every training input), per arm (mean, 95% CI), each arm with its own line
    style and markers at its own epochs; dotted: units of ``before`` that are inactive
    (pre-activation negative on every input: those a swap at that moment would make dead,
    exactly so in layer 1). Arms whose lines coincide are named in the panel."""
    if ax is None:
        ax = new_figure(figsize=(4.5, 3.2)).add_subplot()
    s = results.summary
    x = np.asarray(results.coords["units/epoch"], dtype=float)
    metrics = list(results.coords["units/metric"])
    off, neg = metrics.index("act/off_fraction"), metrics.index("act/inactive_fraction")
    li = list(results.coords["units/layer"]).index(layer)
    arms = _arms(results)
    bands = results.arrays["units_band"]  # (arm, metric, stat, epoch, layer)
    swap = s["swap_epoch"]
    # Of two arms that may coincide, the first is drawn wide and beneath the second.
    wide = {"swap_kept": 3.2, "fresh_after": 3.2}
    for k, arm in enumerate(arms):
        a, color = arms.index(arm), arm_color(results, arm)
        band = 100 * bands[a, off, :, :, li]
        ok = np.isfinite(band[0])
        if not ok.any():
            continue
        lw = wide.get(arm, 1.5)
        _band(ax, x[ok], band[:, ok], color, _label(results, arm), _DASH[arm], lw)
        line = ax.get_lines()[-1]
        start = swap if arm.startswith("swap") or arm == "fresh_after" else 0.0
        line.set_marker(_MARK[arm])
        line.set_markevery(_marks(x[ok], k, len(arms), start))
        line.set_markersize(5.5 if arm in wide else 4.0)
        line.set_markerfacecolor("white" if arm in wide else color)
        line.set_markeredgecolor(color)
    a = arms.index("before")
    band = 100 * bands[a, neg, :, :, li]
    ax.fill_between(x, band[1], band[2], color=arm_color(results, "before"), alpha=0.12, lw=0)
    ax.plot(
        x,
        band[0],
        color=arm_color(results, "before"),
        ls=":",
        lw=1.5,
        marker=_MARK["before"],
        ms=4.0,
        markevery=_marks(x, len(arms), len(arms) + 1),
        label=f"{s['before']} throughout: inactive (z < 0 on every input)",
    )
    same = coinciding(results, layer)
    if same:
        L = s["labels"]
        text = "\n".join(
            f"{L[p]} = {L[q]}" + (f" from epoch {num(e)}" if e > x[0] else "") for p, q, e in same
        )
        ax.text(
            0.98, 0.5, "lines on each other:\n" + text, transform=ax.transAxes, ha="right",
            va="center", fontsize=7.5, color="#333333",
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#bbbbbb", "alpha": 0.9},
        )  # fmt: skip
    ax.set_xlim(0, s["epochs"])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("% of units dead (or inactive)")
    ax.set_title(f"Hidden layer {layer}")
    ax.axvline(swap, color=_SWAP, lw=0.9, ls=":", zorder=0)
    return ax


def _strip(ax: Axes, results: Results, values: np.ndarray, arms: list[str]) -> None:
    """Per arm, each seed as a dot, seeds joined across arms (same seed = same initial
    weights), and the mean with its 95% CI as a bar."""
    from actlab.stats import mean_ci

    pos = np.arange(len(arms))
    jitter = np.linspace(-0.08, 0.08, values.shape[1])
    ax.plot(pos[:, None] + jitter, values, color="#cccccc", lw=0.6, zorder=1)
    for i, arm in enumerate(arms):
        color = arm_color(results, arm)
        ax.scatter(i + jitter, values[i], s=10, color=color, alpha=0.7, zorder=2, lw=0)
        ci = mean_ci(values[i])
        ax.errorbar(
            i + 0.22,
            ci["mean"],
            yerr=[[ci["mean"] - ci["lo"]], [ci["hi"] - ci["mean"]]],
            fmt="o",
            color=color,
            ms=5,
            capsize=3,
            lw=1.4,
            zorder=3,
        )
    ticks = [_label(results, a).replace(", ", ",\n").replace(" from ", "\nfrom ") for a in arms]
    ax.set_xticks(pos, ticks)
    ax.set_xlim(-0.5, len(arms) - 0.5)


def plot_final(results: Results, ax: Axes | None = None) -> Axes:
    """Final held-out MSE of every seed per arm, with the mean and its 95% CI."""
    if ax is None:
        ax = new_figure(figsize=(6.0, 3.4)).add_subplot()
    arms = _arms(results)
    j = list(results.coords["loss/split"]).index("test")
    values = results.arrays["loss"][:, :, j, -1]  # (arm, seed)
    _strip(ax, results, values, arms)
    floor = results.summary["noise_floor"]
    ax.axhline(floor, color="#888888", lw=0.8, ls="--")
    ax.annotate(
        "noise floor",
        (len(arms) - 0.5, floor),
        xytext=(-2, 2),
        textcoords="offset points",
        ha="right",
        fontsize=7,
        color="#666666",
    )
    ax.set_ylabel("held-out MSE at the end")
    ax.set_title(f"After {results.summary['epochs']} epochs (dots: seeds; bar: mean, 95% CI)")
    return ax


def plot_recovery(results: Results, ax: Axes | None = None) -> Axes:
    """Epochs after the swap until the held-out MSE is back at its pre-swap value, per seed,
    for the two swap arms (seeds that never got back are left out and counted in the title)."""
    if ax is None:
        ax = new_figure(figsize=(3.4, 3.4)).add_subplot()
    arms = ["swap_kept", "swap_reset"]
    rec = results.summary["recovery"]
    values = np.array([[np.nan if v is None else v for v in rec[a]["per_seed"]] for a in arms])
    _strip(ax, results, values, arms)
    missing = [results.summary["seeds"] - rec[a]["recovered"] for a in arms]
    note = "" if not any(missing) else f" ({missing[0]}, {missing[1]} never)"
    ax.set_ylabel("epochs to get back to the pre-swap loss")
    ax.set_ylim(bottom=0)
    ax.set_title("Recovery" + note)
    return ax


def plot_loss_curves(results: Results) -> Figure:
    """Training and held-out loss of every arm, and the held-out loss around the swap."""
    # Two panels side by side and the zoom below them, so that the figure stays readable at
    # the ~800 px the page shows it.
    fig = new_figure(figsize=(9.2, 6.8))
    grid = fig.add_gridspec(2, 2)
    first = fig.add_subplot(grid[0, 0])
    # training and held-out loss are read against each other: one y-scale
    axes = [first, fig.add_subplot(grid[0, 1], sharey=first), fig.add_subplot(grid[1, :])]
    plot_loss(results, "train", axes[0])
    plot_loss(results, "test", axes[1])
    plot_loss_zoom(results, axes[2])
    lo, hi = axes[0].get_ylim()
    floor = results.summary["noise_floor"]
    axes[0].set_ylim(min(lo, 0.8 * floor), hi)  # the held-out panel's noise floor stays in view
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    s = results.summary
    fig.suptitle(
        f"Loss over {s['seeds']} seeds (mean, 95% CI), {s['before']} swapped for {s['after']} "
        f"at epoch {s['swap_epoch']}\n(until then the swap arms are {s['labels']['before']})"
    )
    return fig


def plot_dead_units(results: Results) -> Figure:
    """The off fraction of each hidden layer over training (one panel per layer)."""
    layers = list(results.coords["units/layer"])
    fig = new_figure(figsize=(4.6 * len(layers), 4.0))
    # One y-scale for all layers: the panels are compared with each other.
    axes = np.atleast_1d(fig.subplots(1, len(layers), sharey=True))
    for ax, layer in zip(axes, layers, strict=True):
        plot_off_fraction(results, layer, ax)
    for ax in axes[1:]:
        ax.set_ylabel("")
    # The shared scale reaches the highest mean or CI bound of any layer (each panel's own
    # autoscale would cut the others).
    hi = 100 * np.nanmax(results.arrays["units_band"][:, :, 1:, :, :])
    axes[0].set_ylim(0, 1.05 * hi if np.isfinite(hi) and hi > 0 else 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    s = results.summary
    word = "dead" if s["off_kind"] == "dead" else "inactive"
    fig.suptitle(
        f"Units {word} on every training input ({s['after']} arms), mean and 95% CI over "
        f"{s['seeds']} seeds\n(vertical dotted line: the swap at epoch {s['swap_epoch']})"
    )
    return fig


def plot_hidden_units(results: Results, seed_label: int = 0) -> Figure:
    """Seed 0 through the swap: the fitted function (top) and every unit of each hidden layer
    (one row per layer) just before the swap, right after it (same weights), and at the end
    with Adam's state kept and reset, and the fresh control at the end. Grey dashed: units dead
    on every training input (before the swap: the ones the swap will turn off)."""
    s = results.summary
    when = list(results.coords["hidden/when"])
    arms = _arms(results)
    # Colours are the arms' everywhere: before the swap the network is tanh throughout's (the
    # same weights at that epoch); right after it, the swap arms' (black, as Adam kept).
    columns = [
        (
            "swap_kept",
            "before_swap",
            f"just before the swap ({s['before']})",
            arm_color(results, "before"),
        ),
        (
            "swap_kept",
            "after_swap",
            f"right after it ({s['after']}, same weights)",
            arm_color(results, "swap_kept"),
        ),
        ("swap_kept", "end", f"epoch {s['epochs']}, Adam kept", arm_color(results, "swap_kept")),
        ("swap_reset", "end", f"epoch {s['epochs']}, Adam reset", arm_color(results, "swap_reset")),
        (
            "fresh_after",
            "end",
            f"epoch {s['epochs']}, fresh {s['after']}",
            arm_color(results, "fresh_after"),
        ),
    ]
    layers = list(results.coords["units/layer"])
    # One row per moment, one column for the fit and one per layer: narrow enough for the
    # ~800 px the page shows it at (five moments side by side were 15 inches wide).
    fig = new_figure(figsize=(3.0 * (len(layers) + 1), 2.0 * len(columns) + 0.9))
    axes = fig.subplots(len(columns), len(layers) + 1, sharex=True, sharey="col").T
    x = results.arrays["x_grid"]
    off_when = list(results.coords["off_units/when"])
    pre, post = s["swap_points"]
    split = list(results.coords["loss/split"]).index("test")
    for c, (arm, moment, title, color) in enumerate(columns):
        a, w = arms.index(arm), when.index(moment)
        ax = axes[0, c]
        ax.scatter(results.arrays["x_train"], results.arrays["y_train"], s=3, color="#bbbbbb", lw=0)
        ax.plot(x, results.arrays["y_grid"], color="#777777", lw=1.0, ls="--")
        ax.plot(x, results.arrays["fit"][a, 0, w], color=color, lw=1.6)
        row_label = title.replace(" (", "\n(") if "(" in title else title.replace(", ", ",\n", 1)
        ax.set_ylabel(row_label, fontsize=8)
        ax.set_ylim(*_padded(results.arrays["y_train"]))
        point = {"before_swap": pre, "after_swap": post, "end": -1}[moment]
        mse = results.arrays["loss"][a, 0, split, point]
        ax.text(
            0.98,
            0.03,
            f"held-out MSE {num(mse)}",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color="#444444",
        )
        # Off units: after the swap and at the end from the run's own count; before the swap,
        # the units that the swap turns off.
        mask_when = "after_swap" if moment == "before_swap" else moment
        for r, layer in enumerate(layers, start=1):
            ax = axes[r, c]
            h = results.arrays["hidden"][a, w, layer - 1]  # (input, unit)
            off = results.arrays["off_units"][a, 0, off_when.index(mask_when), layer - 1] > 0.5
            ax.plot(x, h[:, ~off], color=color, lw=0.8, alpha=0.75)
            if off.any():
                ax.plot(x, h[:, off], color=_OFF, lw=1.0, ls=(0, (3, 2)))
            word = "dead" if s["off_kind"] == "dead" else "inactive"
            verb = f"will be {word}" if moment == "before_swap" else word
            ax.text(
                0.02,
                0.97,
                f"{int(off.sum())} of {off.size} units {verb}",
                transform=ax.transAxes,
                va="top",
                fontsize=7,
                color="#444444",
            )
            if c == 0:
                ax.set_title(f"layer {layer} units $h(x)$")
    axes[0, 0].set_title("fit $\\hat y(x)$")
    for ax in axes[:, -1]:
        ax.set_xlabel("$x$")
    fig.suptitle(
        f"Seed {seed_label} through the swap, top to bottom: the fit (grey: data and the true "
        "function)\nand every hidden unit (dashed grey: dead on every training input after the "
        "swap)"
    )
    return fig


def _padded(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = 0.15 * (hi - lo)
    return lo - pad, hi + pad


def figures(results: Results) -> dict[str, Figure]:
    """Every figure, by file name: ``loss_curves``, ``dead_units``, ``hidden_units`` and
    ``final`` (final held-out loss and recovery time per seed)."""
    with style():
        loss = plot_loss_curves(results)
        dead = plot_dead_units(results)
        hidden = plot_hidden_units(results)
        final = new_figure(figsize=(9.4, 3.9))
        left, right = final.subplots(1, 2, width_ratios=[2.5, 1.0])
        plot_final(results, left)
        plot_recovery(results, right)
    return {"loss_curves": loss, "dead_units": dead, "hidden_units": hidden, "final": final}
