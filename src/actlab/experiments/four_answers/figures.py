"""The side-by-side figure: one panel per column of the table, one row per activation, each
cell's mean with its 95% interval, coloured by its mark (best, within noise, worse)."""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure

from actlab.experiments.base import Results
from actlab.plotting.style import new_figure, style
from actlab.stats import as_float

__all__ = ["figures", "plot_answers", "COLOURS", "panel_title"]

COLOURS = {
    "best": "#1a9641",
    "within noise": "#fdae61",
    "worse": "#7f7f7f",
    "not ranked": "#3b6fb6",
}
"""Mark -> colour; a cell without a mark (an unranked column, or a network that barely
trained) is drawn as ``"not ranked"``."""
NAMES = {"gd": "GD", "momentum": "heavy-ball", "adam": "Adam"}


def panel_title(key: str, setting: dict[str, Any]) -> tuple[str, str]:
    """(title, x-axis label) of one column's panel."""
    if key == "gradient":
        return (
            f"backward signal, layer 1 / layer {setting['depth']}\n"
            f"(at init, width {setting['width']})",
            "log10 ratio (0 = kept)",
        )
    if key == "off":
        return (
            f"dead or saturated after {setting['steps']} steps\n(depth {setting['depth']})",
            "fraction of units",
        )
    if key == "dormant":
        return (
            f"τ-dormant (τ = {setting['tau']:g}) after {setting['steps']} steps",
            "fraction of units",
        )
    if key.startswith("rate/"):
        return (
            f"largest {NAMES[setting['optimizer']]} rate, stable and learning\n"
            f"(depth {setting['depth']})",
            "learning rate (log scale)",
        )
    return (
        f"held-out error on {setting['label']}\n(depth {setting['depth']} × width "
        f"{setting['width']})",
        "log10 (test MSE / Var f)"
        + ("; marks: the chapter's paired test" if setting.get("rule") == "paired" else ""),
    )


def plot_answers(results: Results) -> Figure:
    """One panel per column; rows are the activations in the table's order (top to bottom)."""
    s = results.summary
    acts = s["activations"]
    keys = list(s["columns"])
    cols = 3
    rows = math.ceil(len(keys) / cols)
    with style():
        fig = new_figure(figsize=(4.2 * cols, 0.38 * len(acts) * rows + 1.6 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, key in zip(axes.flat, keys, strict=False):
            column = s["columns"][key]
            title, xlabel = panel_title(key, column["setting"])
            rate = key.startswith("rate/")
            for y, act in enumerate(acts):
                cell = column["cells"].get(act)
                if cell is None:
                    units = s["columns"].get("dormant", {}).get("cells", {})
                    ax.text(
                        0.02,
                        y,
                        "can neither die nor saturate"
                        if key == "off" and act in units
                        else "not in this run",
                        va="center",
                        fontsize=7,
                        color="0.5",
                        transform=ax.get_yaxis_transform(),
                    )
                    continue
                mean, lo, hi = as_float(cell["mean"]), as_float(cell["lo"]), as_float(cell["hi"])
                colour = COLOURS[cell.get("mark") or "not ranked"]
                if math.isnan(mean) and math.isfinite(hi):  # learned at no rate: below the grid
                    ax.plot([hi], [y], marker="<", color=colour, ms=9)
                    ax.annotate(
                        "none learned",
                        (hi, y),
                        xytext=(8, -3),
                        textcoords="offset points",
                        fontsize=7,
                    )
                    continue
                if rate and lo <= 0:  # some seed learned at no rate: no lower end on a log axis
                    lo = mean
                if math.isnan(lo):
                    lo = hi = mean
                upper = hi if math.isfinite(hi) else mean
                ax.plot([lo, upper], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
                ax.plot([mean], [y], "o", color=colour, ms=6)
                if rate and cell.get("censored") == "above":  # a lower bound: stable at the top
                    ax.plot([mean], [y], marker=">", color=colour, ms=9)
                    ax.annotate(
                        "≥ (top of grid)",
                        (mean, y),
                        xytext=(-8, 5),
                        ha="right",
                        textcoords="offset points",
                        fontsize=7,
                    )
                if cell.get("unranked"):
                    ax.plot([mean], [y], "o", mfc="white", mec=colour, ms=6)
                if key == "off" or cell.get("unranked"):
                    label = cell["kind"] if key == "off" else ""
                    if cell.get("unranked"):
                        label = f"{label} ({cell['unranked']})".strip()
                    ax.annotate(
                        label,
                        (mean, y),
                        xytext=(6, 4),
                        textcoords="offset points",
                        fontsize=7,
                    )
            if key == "gradient":
                ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
            if key == "capacity":
                floor = math.log10(column["setting"]["affine_floor"])
                ax.axvline(floor, color="0.3", lw=0.8, ls="--")
                ax.annotate(
                    "best straight line",
                    (floor, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(-3, -3),
                    textcoords="offset points",
                    ha="right",
                    va="top",
                    fontsize=7,
                    color="0.3",
                )
            if rate:
                ax.set_xscale("log", base=2)
            ax.set_ylim(len(acts) - 0.5, -0.5)  # first activation on top
            ax.set_yticks(range(len(acts)), acts)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.grid(axis="x", alpha=0.3)
        for ax in list(axes.flat)[len(keys) :]:
            ax.set_visible(False)
        handles = [
            axes.flat[0].plot([], [], "o-", color=c, lw=2.5, label=m)[0]
            for m, c in COLOURS.items()
            if m
        ]
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=4,
            frameon=False,
            title="mark against the column's best (95% intervals over seeds; open dot: "
            "barely trained, not ranked)",
            title_fontsize=8,
            fontsize=8,
        )
    return fig


def figures(results: Results) -> dict[str, Figure]:
    return {"answers": plot_answers(results)}
