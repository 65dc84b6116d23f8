"""Figures of the activation gallery, drawn from its :class:`Results` alone.

``plot_*`` functions return an Axes (one panel) or a Figure (small multiples); they never save
or show. The data they read: the array ``curves`` (activation, quantity, z) with its coordinates,
the array ``p_flat`` (activation, sigma), and ``summary["properties"]`` (flat intervals,
threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from actlab.experiments.base import Results
from actlab.experiments.gallery.experiment import identical_on_window
from actlab.plotting.style import color_of, new_figure, style

__all__ = [
    "YLIM",
    "CLASSIC",
    "plot_activation_panel",
    "plot_activation_grid",
    "plot_curves",
    "plot_classic",
    "plot_flat_probability",
    "figures",
]

YLIM = (-2.5, 3.5)
"""Default shared y-range of the panels: unbounded functions are clipped to it (and marked) so
that the bounded ones, which live in [-1, 1], stay readable."""

CLASSIC = ("sigmoid", "tanh", "relu", "leaky_relu")
"""The four activations of the classic lesson, overlaid in the ``classic`` figure."""

_LABEL = {"phi": r"$\varphi(z)$", "dphi": r"$\varphi'(z)$"}
_DASH = {"phi": "-", "dphi": (0, (4, 2))}
_FLAT = "#8a8a8a"
_FLAT_BAR = "#303030"
"""Flat regions: a grey band over the panel, and a dark bar along its bottom edge at least
:data:`_MIN_BAR` of the window wide, so that a flat band too narrow to see (sine's, mish's)
still shows."""
_MIN_BAR = 0.025


def _names(results: Results) -> list[str]:
    return list(results.coords["curves/activation"])


def _curve(results: Results, name: str, quantity: str) -> tuple[np.ndarray, np.ndarray]:
    names = _names(results)
    if name not in names:
        raise ValueError(f"no activation {name!r} in these results; have {', '.join(names)}")
    q = list(results.coords["curves/quantity"]).index(quantity)
    z = np.asarray(results.coords["curves/z"], dtype=float)
    return z, np.asarray(results.arrays["curves"][names.index(name), q], dtype=float)


def _properties(results: Results, name: str) -> dict[str, Any]:
    for p in results.summary.get("properties", []):
        if p["name"] == name:
            return p
    return {}


def _shared_ylim(
    results: Results, names: Sequence[str], quantities: Sequence[str], clip: tuple[float, float]
) -> tuple[float, float]:
    """The data's range over the panels, clipped to ``clip``, with a small margin."""
    values = np.concatenate([_curve(results, n, q)[1] for n in names for q in quantities])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return clip
    lo, hi = float(values.min()), float(values.max())
    pad = 0.08 * max(hi - lo, 1e-6)
    # A margin on a side the data stays within; exactly the clip limit on a side it leaves.
    return (
        lo - pad if lo - pad >= clip[0] else clip[0],
        hi + pad if hi + pad <= clip[1] else clip[1],
    )


def _leaves(
    results: Results, name: str, quantities: Sequence[str], ylim: tuple[float, float]
) -> bool:
    for quantity in quantities:
        y = _curve(results, name, quantity)[1]
        if np.isfinite(y).any() and (np.nanmax(y) > ylim[1] or np.nanmin(y) < ylim[0]):
            return True
    return False


def _break_jumps(
    z: np.ndarray, y: np.ndarray, kinks: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN into each grid cell, next to a kink, across which ``y`` jumps, so that a
    discontinuity is drawn as a gap and not as a vertical line."""
    cuts = []
    dy = np.abs(np.diff(y))
    for k in kinks:
        i = int(np.searchsorted(z, k, side="right")) - 1  # z[i] <= k < z[i + 1]
        for j in (i - 1, i):
            if 0 <= j < dy.size:
                around = max(dy[j - 1] if j >= 1 else 0.0, dy[j + 1] if j + 1 < dy.size else 0.0)
                if dy[j] > 10.0 * around + 1e-9:
                    cuts.append(j + 1)
    if not cuts:
        return z, y
    cuts = sorted(set(cuts))
    return np.insert(z, cuts, np.nan), np.insert(y, cuts, np.nan)


def plot_activation_panel(
    results: Results,
    name: str,
    ax: Axes | None = None,
    *,
    quantities: Sequence[str] = ("phi", "dphi"),
    ylim: tuple[float, float] | None = YLIM,
    shade_flat: bool = False,
) -> Axes:
    """One activation: ``phi`` (solid) and ``phi'`` (dashed) over the run's z-grid, in the
    activation's colour; with ``shade_flat`` the region where ``|phi'| < threshold`` is grey.
    A curve that leaves ``ylim`` is clipped and the panel says "clipped"."""
    if ax is None:
        ax = new_figure(figsize=(3.2, 2.4)).add_subplot()
    color = color_of(name)
    kinks = _properties(results, name).get("kinks", [])
    for quantity in quantities:
        z, y = _break_jumps(*_curve(results, name, quantity), kinks)
        ax.plot(
            z,
            y,
            color=color,
            linestyle=_DASH[quantity],
            label=_LABEL[quantity],
            linewidth=1.8 if quantity == "phi" else 1.4,
        )
    clipped = ylim is not None and _leaves(results, name, quantities, ylim)
    if shade_flat:
        z_all = np.asarray(results.coords["curves/z"], dtype=float)
        half = 0.5 * _MIN_BAR * float(z_all[-1] - z_all[0])
        for lo, hi in _properties(results, name).get("flat_intervals", []):
            ax.axvspan(lo, hi, color=_FLAT, alpha=0.4, linewidth=0)
            mid, width = 0.5 * (lo + hi), max(0.5 * (hi - lo), half)
            ax.axvspan(mid - width, mid + width, ymin=0.0, ymax=0.07, color=_FLAT_BAR, lw=0)
        fraction = _properties(results, name).get("flat_fraction")
        if fraction is not None:
            ax.text(0.97, 0.95, f"flat: {100 * fraction:.3g}%", transform=ax.transAxes,
                    ha="right", va="top", fontsize=8.5, color="#222222",
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})  # fmt: skip
    ax.axhline(0.0, color="#999999", linewidth=0.6, zorder=0)
    ax.axvline(0.0, color="#999999", linewidth=0.6, zorder=0)
    z = np.asarray(results.coords["curves/z"], dtype=float)
    ax.set_xlim(float(z[0]), float(z[-1]))
    if ylim is not None:
        ax.set_ylim(*ylim)
    if clipped:
        ax.text(
            0.03,
            0.96,
            "clipped",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=8.5,
            color="#555555",
        )
    ax.set_title(name, fontsize=10)
    return ax


def plot_activation_grid(
    results: Results,
    names: Sequence[str] | None = None,
    *,
    quantities: Sequence[str] = ("phi", "dphi"),
    ncols: int = 4,
    clip: tuple[float, float] = YLIM,
    shade_flat: bool = False,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Small multiples, one panel per activation, on shared x and y scales.

    The shared y-range is the data's range clipped to ``clip``; panels whose curves leave it say
    "clipped" (the table of the report gives each function's true range).
    """
    names = list(names) if names is not None else _names(results)
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig = fig or new_figure(figsize=(2.15 * ncols, 1.8 * nrows + 0.9))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    ylim = _shared_ylim(results, names, quantities, clip)
    clipped = False
    # Panels that look exactly like an earlier one say so, so that a reader does not take the
    # twin for a plotting error (celu with alpha = 1 is elu; relu6 is relu below its cap at 6).
    idx = [_names(results).index(n) for n in names]
    twins = {
        later: earlier
        for earlier, later in identical_on_window(np.asarray(results.arrays["curves"])[idx], names)
    }
    z_grid = np.asarray(results.coords["curves/z"], dtype=float)
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            # The panel above an empty slot is the last of its column: it shows the x ticks.
            axes.flat[i - ncols].xaxis.set_tick_params(labelbottom=True)
            continue
        plot_activation_panel(
            results, names[i], ax, quantities=quantities, ylim=ylim, shade_flat=shade_flat
        )
        if names[i] in twins:
            ax.text(
                0.97,
                0.1,
                f"= {twins[names[i]]} on\n[{z_grid[0]:g}, {z_grid[-1]:g}]",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8.5,
                color="#b00020",
            )
        clipped = clipped or _leaves(results, names[i], quantities, ylim)
    for column in range(ncols):
        last = max(range(column, len(names), ncols))  # the lowest panel of the column
        axes.flat[last].set_xlabel("z")
    handles = [
        Line2D([], [], color="#333333", linestyle=_DASH[q], label=_LABEL[q]) for q in quantities
    ]
    if shade_flat:
        threshold = results.summary.get("flat_threshold", 0.01)
        handles.append(
            Patch(color=_FLAT, alpha=0.5, label=rf"flat: $|\varphi'(z)| < {threshold:g}$")
        )
        handles.append(Patch(color=_FLAT_BAR, label="flat (marked even where narrow)"))
    # One legend box above the panels holds the title and the note on clipping (a suptitle
    # and an "outside" legend would overlap under constrained layout).
    handles.append(
        Line2D(
            [],
            [],
            linestyle="none",
            label=f"y shared, limited to [{ylim[0]:.3g}, {ylim[1]:.3g}]"
            + ("; 'clipped' marks curves that leave it" if clipped else ""),
        )
    )
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncols=len(handles) if ncols >= 5 else 2,
        title=title,
        title_fontproperties={"size": 12},
        handlelength=2.6,
    )
    return fig


def plot_curves(
    results: Results,
    quantity: str = "phi",
    names: Sequence[str] | None = None,
    ax: Axes | None = None,
    *,
    ylim: tuple[float, float] | None = None,
) -> Axes:
    """Several activations' ``phi`` (or ``phi'``) overlaid on one axes, each in its colour."""
    if ax is None:
        ax = new_figure(figsize=(4.5, 3.2)).add_subplot()
    names = list(names) if names is not None else _names(results)
    # A curve that runs on top of an earlier one (within 0.4% of the axis' height) over a
    # quarter of the grid or more would hide it: it is drawn dashed, on top.
    raw = [_curve(results, n, quantity)[1] for n in names]
    finite = np.concatenate([y[np.isfinite(y)] for y in raw] or [np.zeros(1)])
    if ylim is not None:
        finite = np.clip(finite, *ylim)
    tol = 0.004 * max(float(finite.max() - finite.min()) if finite.size else 1.0, 1e-6)
    for i, name in enumerate(names):
        kinks = _properties(results, name).get("kinks", [])
        z, y = _break_jumps(*_curve(results, name, quantity), kinks)
        # Earlier curves are wider, so that one hidden under a later one still shows.
        width = min(3.0, 1.5 + 0.45 * (len(names) - 1 - i))
        with np.errstate(invalid="ignore"):
            under = [k for k in range(i) if np.mean(np.abs(raw[i] - raw[k]) <= tol) >= 0.25]
        overlaps = bool(under)
        ax.plot(
            z,
            y,
            color=color_of(name),
            label=name + (f" (dashed: on top of {names[under[0]]})" if overlaps else ""),
            linewidth=width,
            linestyle=(0, (3, 2)) if overlaps else "-",
            zorder=3 if overlaps else 2,
        )
    ax.axhline(0.0, color="#999999", linewidth=0.6, zorder=0)
    ax.axvline(0.0, color="#999999", linewidth=0.6, zorder=0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("z")
    ax.set_ylabel(_LABEL[quantity])
    ax.legend(loc="upper left")
    return ax


def plot_classic(
    results: Results, names: Sequence[str] | None = None, fig: Figure | None = None
) -> Figure:
    """The classic lesson's figure: ``phi`` and ``phi'`` of a few activations, overlaid.

    Defaults to :data:`CLASSIC` (those present), else the first four activations of the run.
    """
    have = _names(results)
    names = list(names) if names is not None else [n for n in CLASSIC if n in have] or have[:4]
    fig = fig or new_figure(figsize=(9.0, 3.4))
    ax_phi, ax_dphi = fig.subplots(1, 2)
    plot_curves(results, "phi", names, ax_phi, ylim=_shared_ylim(results, names, ["phi"], YLIM))
    plot_curves(results, "dphi", names, ax_dphi, ylim=_shared_ylim(results, names, ["dphi"], YLIM))
    ax_phi.set_title("activation")
    ax_dphi.set_title("derivative")
    return fig


def plot_flat_probability(results: Results, ax: Axes | None = None) -> Axes:
    """Heat map of ``P(|phi'(z)| < threshold)`` for ``z ~ N(0, s_z^2)``: one row per
    activation, one column per sd ``s_z`` (the ``sigma`` coordinate), each cell annotated with
    its value ("0": below 1e-15, the mass beyond 8 sd). Sized to be read at about 800 pixels
    wide: names in black beside a swatch of the activation's colour, numbers at 10 points in
    black or white, whichever stands out from the cell."""
    names = list(results.coords["p_flat/activation"])
    sigmas = list(results.coords["p_flat/sigma"])
    p = np.asarray(results.arrays["p_flat"], dtype=float)  # (activation, sigma)
    if ax is None:
        ax = new_figure(figsize=(1.0 * len(sigmas) + 3.0, 0.34 * len(names) + 1.5)).add_subplot()
    image = ax.imshow(p, vmin=0.0, vmax=1.0, cmap="Greys", aspect="auto", interpolation="nearest")
    for i in range(len(names)):
        for j in range(len(sigmas)):
            value = p[i, j]
            text = "nan" if not np.isfinite(value) else _short(value)
            # black on a light cell, white on a dark one, by the cell's luminance
            light = not np.isfinite(value) or _luminance(image.cmap(image.norm(value))) > 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=CELL_FONT,
                    color="black" if light else "white")  # fmt: skip
        # a swatch of the activation's colour left of its (black) name
        ax.plot(-0.56, i, "s", ms=9, color=color_of(names[i]), clip_on=False)
    ax.set_xticks(range(len(sigmas)), [f"{s:g}" for s in sigmas], fontsize=CELL_FONT + 0.5)
    ax.set_yticks(range(len(names)), names, fontsize=CELL_FONT + 0.5, color="black")
    ax.set_xlim(-0.5, len(sigmas) - 0.5)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False, length=0)
    ax.tick_params(axis="y", pad=20)
    ax.set_xlabel(
        r"sd $s_z$ of the pre-activation, $z \sim \mathcal{N}(0, s_z^2)$", fontsize=CELL_FONT + 1
    )
    ax.xaxis.set_label_position("top")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    # thin white lines between the cells, so that neighbouring rows of equal grey stay apart
    for i in range(1, len(names)):
        ax.axhline(i - 0.5, color="white", lw=0.8)
    threshold = results.summary.get("flat_threshold", 0.01)
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.5)
    bar.set_label(rf"$P(|\varphi'(z)| < {threshold:g})$", fontsize=CELL_FONT + 1)
    bar.ax.tick_params(labelsize=CELL_FONT)
    return ax


CELL_FONT = 10.0
"""Font size of the heat map's numbers (points); the saved figure is shown at about its own
width in pixels, so 10 points stays readable."""


def _luminance(rgba: Sequence[float]) -> float:
    """Relative luminance of a colour (sRGB weights, gamma ignored): 0 black, 1 white."""
    return 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]


def _short(value: float) -> str:
    if value == 0.0:
        return "0"
    if value == 1.0:
        return "1"
    if value < 0.001:
        return f"{value:.0e}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value < 0.9995 else "1.000"


def figures(results: Results) -> dict[str, Figure]:
    """Every figure of the gallery, by file name: ``activations``, ``derivatives``,
    ``classic`` and ``saturation``."""
    with style():
        activations = plot_activation_grid(
            results, title=r"Activation functions $\varphi$ and their derivatives $\varphi'$"
        )
        derivatives = plot_activation_grid(
            results,
            quantities=("dphi",),
            shade_flat=True,
            title=r"Derivatives $\varphi'$ and their flat regions",
        )
        classic = plot_classic(results)
        saturation = plot_flat_probability(results).figure
    return {
        "activations": activations,
        "derivatives": derivatives,
        "classic": classic,
        "saturation": saturation,
    }
