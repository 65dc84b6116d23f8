"""Figures of the stability experiment, drawn from its :class:`Results` alone.

Rates span decades, so averages over seeds are geometric means with a 95% interval computed on
``log2`` of the values. Diverged members are drawn as "diverged" (grey cells with the step at
which they diverged), never as a loss.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from actlab.experiments.base import Results
from actlab.plotting.style import color_of, new_figure, style
from actlab.sharpness import adam_threshold, gd_threshold, momentum_threshold

__all__ = [
    "plot_divergence_map",
    "plot_stable_rate_vs_depth",
    "plot_sharpness",
    "plot_settle",
    "figures",
]

_DIVERGED = "#6d6d6d"
_THEORY = "#111111"
NAMES = {"gd": "GD", "momentum": "heavy-ball momentum", "adam": "Adam"}


def _cfg(results: Results) -> dict[str, Any]:
    return results.summary["config"]


def _gm(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric mean and 95% t interval along ``axis`` (finite positive values only)."""
    from actlab.stats import ci_band

    v = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    mean, lo, hi = ci_band(np.log2(v), axis=axis)
    return 2.0**mean, 2.0**lo, 2.0**hi


# ------------------------------------------------------------------------ divergence map
def plot_divergence_map(results: Results, optimizer: str) -> Figure:
    """One panel per depth: activation (rows) x learning rate (columns). Colour: the held-out
    MSE (median over the seeds that did not diverge); grey with a number: every seed diverged,
    at the median step shown; a cell with ``k/n``: k of n seeds diverged."""
    c = _cfg(results)
    acts, depths, rates = c["activations"], c["depths"], c["rates"][optimizer]
    test = results.arrays[f"test_{optimizer}"]  # (depth, act, rate, seed)
    div = results.arrays[f"diverged_{optimizer}"]
    S = test.shape[-1]
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(test), test, np.nan)
        some = np.isfinite(finite).any(axis=-1)
        med = np.full(test.shape[:-1], np.nan)
        med[some] = np.nanmedian(finite[some], axis=-1)
    logm = np.log10(med)
    lo = float(np.nanmin(logm)) if np.isfinite(logm).any() else -2.0
    hi = float(np.nanmax(logm)) if np.isfinite(logm).any() else 0.0
    hi = max(hi, lo + 0.1)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=_DIVERGED)
    ncols = len(depths)
    fig = new_figure(figsize=(min(3.3 * ncols + 1.2, 13), 0.36 * len(acts) + 1.9))
    axs = fig.subplots(1, ncols, squeeze=False, sharey=True)[0]
    image = None
    for di, (ax, depth) in enumerate(zip(axs, depths, strict=True)):
        image = ax.imshow(
            logm[di], cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest"
        )
        for ai in range(len(acts)):
            for ri in range(len(rates)):
                steps = div[di, ai, ri]
                k = int(np.sum(steps >= 0))
                if k == S:
                    ax.text(
                        ri, ai, f"{int(np.median(steps))}", ha="center", va="center",
                        fontsize=6.5, color="white",
                    )  # fmt: skip
                elif k:
                    bright = (logm[di, ai, ri] - lo) / (hi - lo) > 0.6
                    ax.text(
                        ri, ai, f"{k}/{S}", ha="center", va="center", fontsize=6.5,
                        color="black" if bright else "white", fontweight="bold",
                    )  # fmt: skip
        ax.set_xticks(range(len(rates)))
        ax.set_xticklabels([_rate_label(r) for r in rates], rotation=90, fontsize=7)
        ax.set_yticks(range(len(acts)))
        ax.set_yticklabels(acts)
        ax.set_xlabel("learning rate $\\eta$")
        ax.set_title(f"depth D = {depth}")
        ax.grid(False)
    cbar = fig.colorbar(image, ax=list(axs), shrink=0.9, pad=0.01)
    cbar.set_label("log10 held-out MSE\n(median of seeds that\ndid not diverge)", fontsize=7)
    fig.suptitle(
        f"{NAMES[optimizer]}: where training diverges. Grey with a number: every seed "
        f"diverged, at that median step; k/{S}: k seeds diverged",
        fontsize=9,
    )
    return fig


def _rate_label(r: float) -> str:
    """``1``, ``2^{-3}`` (mathtext) for powers of two, else 2 significant digits."""
    exp = math.log2(r)
    if abs(exp - round(exp)) < 1e-9 and r < 1:
        return f"$2^{{{int(round(exp))}}}$"
    return f"{r:.2g}"


# ------------------------------------------------------------------------ depth
def plot_stable_rate_vs_depth(results: Results, optimizer: str) -> Figure:
    """One panel per activation: the largest stable rate (geometric mean over seeds, 95%
    interval) against depth; for GD and momentum the quadratic model's bound from the sharpness
    at initialisation (2/lambda_max or (2+2 mu)/lambda_max, geometric mean, dashed)."""
    c = _cfg(results)
    acts, depths, rates = c["activations"], c["depths"], c["rates"][optimizer]
    stable = results.summary["stable"][optimizer]
    lam = results.arrays["lam_init"]  # (depth, act, seed)
    ncols = min(4, len(acts))
    nrows = math.ceil(len(acts) / ncols)
    fig = new_figure(figsize=(2.9 * ncols, 2.3 * nrows + 0.9))
    axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ai, act in enumerate(acts):
        ax = axs[ai]
        for r in rates:
            ax.axhline(r, color="#dddddd", lw=0.6, zorder=0)
        gm = np.array([stable[f"{d}/{act}"]["mean"] for d in depths], dtype=float)
        lo = np.array([stable[f"{d}/{act}"]["lo"] for d in depths], dtype=float)
        hi = np.array([stable[f"{d}/{act}"]["hi"] for d in depths], dtype=float)
        lo = np.where(np.isfinite(lo), lo, gm)
        hi = np.where(np.isfinite(hi), hi, gm)
        color = color_of(act)
        ax.errorbar(
            depths, gm, yerr=[gm - lo, hi - gm], color=color, marker="o", ms=4, capsize=2,
            label="measured: largest stable $\\eta$",
        )  # fmt: skip
        top = [d for d in depths if stable[f"{d}/{act}"]["at_top"] == stable[f"{d}/{act}"]["n"] > 0]
        if top:  # every seed stable at the top of the grid: the rate is a lower bound
            ax.plot(top, [rates[-1]] * len(top), ls="", marker="^", ms=9, color=color, mfc="none")
        if optimizer in ("gd", "momentum"):
            thr = (
                gd_threshold(lam[:, ai])
                if optimizer == "gd"
                else momentum_threshold(lam[:, ai], c["momentum"])
            )
            t_mean, t_lo, t_hi = _gm(thr, axis=1)
            ax.plot(depths, t_mean, ls="--", color=_THEORY, lw=1.4, zorder=5, label="predicted")
            ax.fill_between(depths, t_lo, t_hi, color=_THEORY, alpha=0.12, lw=0, zorder=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(depths)
        ax.set_xticklabels([str(d) for d in depths])
        ax.set_title(act, color=color)
        if ai % ncols == 0:
            ax.set_ylabel("learning rate $\\eta$")
        if ai + ncols >= len(acts):
            ax.set_xlabel("depth D")
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axs[len(acts) :]:
        ax.set_visible(False)
    handles = [
        Line2D([], [], color="#444444", marker="o", label="measured: largest stable $\\eta$ (grid)")
    ]
    if optimizer == "gd":
        bound = r"predicted: $2/\lambda_{\max}$ at init"
        handles.append(Line2D([], [], color=_THEORY, ls="--", label=bound))
    elif optimizer == "momentum":
        bound = (
            r"predicted: $(2 + 2\mu)/\lambda_{\max}$, "
            f"$\\mu = {c['momentum']:g}$, at init"
        )
        handles.append(Line2D([], [], color=_THEORY, ls="--", label=bound))
    handles.append(
        Line2D([], [], ls="", marker="^", mfc="none", color="#444444", label="≥: top of the grid")
    )
    handles.append(Line2D([], [], color="#dddddd", label="rates on the grid"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(
        f"{NAMES[optimizer]}: largest stable learning rate against depth "
        f"(geometric mean over seeds, 95% interval)",
        fontsize=10,
    )
    return fig


# ------------------------------------------------------------------------ sharpness
def plot_sharpness(results: Results, optimizer: str) -> Figure:
    """One panel per activation: the sharpness (GD: lambda_max of the Hessian; Adam: of the
    preconditioned Hessian) over training, median over seeds still training, for up to four
    of the largest rates at which some seed ran to the end; the threshold (2/eta or 38/eta)
    of each rate dashed in the same colour. A rate at which some seed ended as a flat fit
    (final MSE >= FLAT_FIT of the targets' variance) is drawn dotted and thin: its sharpness
    is that of a near-constant network (the output bias's curvature, 2), not an edge of
    stability, even where it lies on 2/eta."""
    from actlab.experiments.stability.experiment import FLAT_FIT

    c = _cfg(results)
    acts, rates = c["activations"], c["rates"][optimizer]
    values = results.arrays[f"sharp_{optimizer}"]  # (record, act, rate, seed)
    steps = results.arrays[f"sharp_steps_{optimizer}"]
    di = c["depths"].index(c["sharp_depth"])
    div = results.arrays[f"diverged_{optimizer}"][di]  # (act, rate, seed)
    final = results.arrays[f"train_{optimizer}"][di]  # (act, rate, seed)
    var = float(results.arrays["target_var"][0])
    thr = (
        gd_threshold(np.asarray(rates)) if optimizer == "gd" else adam_threshold(np.asarray(rates))
    )
    any_flat = False
    highest = -math.inf
    cmap = matplotlib.colormaps["plasma"]
    ncols = min(4, len(acts))
    nrows = math.ceil(len(acts) / ncols)
    fig = new_figure(figsize=(2.9 * ncols, 2.3 * nrows + 1.1))
    axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    shown_rates: set[int] = set()
    for ai, act in enumerate(acts):
        ax = axs[ai]
        alive = [ri for ri in range(len(rates)) if np.any(div[ai, ri] < 0)]
        for ri in alive[-4:]:
            v = values[:, ai, ri]
            with np.errstate(all="ignore"):
                ok = np.isfinite(v).any(axis=1)
                med = np.full(len(steps), np.nan)
                med[ok] = np.nanmedian(v[ok], axis=1)
            color = cmap(ri / max(len(rates) - 1, 1) * 0.85)
            flat = bool(np.any((div[ai, ri] < 0) & (final[ai, ri] >= FLAT_FIT * var)))
            any_flat |= flat
            ax.plot(steps, med, color=color, lw=1.0 if flat else 1.5, ls=":" if flat else "-")
            if np.isfinite(med).any():
                highest = max(highest, float(np.nanmax(med)))
            ax.axhline(thr[ri], color=color, ls="--", lw=1.1)
            shown_rates.add(ri)
        ax.set_yscale("log")
        ax.set_title(act, color=color_of(act))
        if ai % ncols == 0:
            sharp_name = r"sharpness $\lambda_{\max}$"
            ax.set_ylabel("preconditioned sharpness" if optimizer == "adam" else sharp_name)
        if ai + ncols >= len(acts):
            ax.set_xlabel("step")
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axs[len(acts) :]:
        ax.set_visible(False)
    name = r"$38/\eta$" if optimizer == "adam" else r"$2/\eta$"
    handles = [
        Line2D(
            [],
            [],
            color=cmap(ri / max(len(rates) - 1, 1) * 0.85),
            label=rf"$\eta$ = {_rate_label(rates[ri])}",
        )  # fmt: skip
        for ri in sorted(shown_rates)
    ]
    handles += [
        Line2D([], [], color="#444444", lw=1.5, label="measured (median over seeds)"),
        Line2D([], [], color="#444444", ls="--", label=f"predicted threshold {name}"),
    ]
    if any_flat:
        handles.append(
            Line2D([], [], color="#444444", ls=":", lw=1.0, label="some seed flat (no fit)")
        )
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8)
    what = (
        r"$\lambda_{\max}$ of $P_t^{-1/2}\,\nabla^2 L\,P_t^{-1/2}$ (Adam's preconditioner $P_t$)"
        if optimizer == "adam"
        else r"$\lambda_{\max}$ of the Hessian $\nabla^2 L$"
    )
    clipped = ""
    if optimizer == "adam" and shown_rates:
        # Adam's step-1 values (P still tiny) reach 10^10 and squash the thresholds: the axis
        # stops two decades above the highest threshold drawn, and the title says so.
        top = 100.0 * max(thr[ri] for ri in shown_rates)
        bottom = min(thr[ri] for ri in shown_rates) / 1e4
        axs[0].set_ylim(bottom, top)  # shared by every panel
        if highest > top:
            clipped = f" (early values up to $10^{{{math.log10(highest):.0f}}}$ run off the top)"
    fig.suptitle(
        f"{NAMES[optimizer]} at depth D = {c['sharp_depth']}:\n{what} over training against "
        f"{name}{clipped}",
        fontsize=10,
    )
    return fig


def plot_settle(results: Results) -> Figure:
    """Where the sharpness settles: the median of sharpness / threshold over the last part of
    training per activation, at its largest rate stable and learned for every seed (geometric
    mean over seeds, 95% interval; 1 = on the threshold)."""
    c = _cfg(results)
    sharp = results.summary["sharp"]
    opts = [o for o in ("gd", "adam") if o in sharp]
    fig = new_figure(figsize=(4.2 * max(len(opts), 1), 3.2))
    axs = fig.subplots(1, max(len(opts), 1), squeeze=False)[0]
    acts = c["activations"]
    for ax, opt in zip(axs, opts, strict=False):
        per = sharp[opt]["per_act"]
        for ai, act in enumerate(acts):
            e = per[act]
            if e.get("rate") is None:
                ax.text(
                    ai, 0.5, "no rate\nstable and\nlearned", ha="center", va="center", fontsize=7
                )
                continue
            r = e["ratio"]
            lo = r["lo"] if math.isfinite(r["lo"]) else r["mean"]
            hi = r["hi"] if math.isfinite(r["hi"]) else r["mean"]
            ax.errorbar(
                [ai], [r["mean"]], yerr=[[r["mean"] - lo], [hi - r["mean"]]], color=color_of(act),
                marker="o", capsize=3,
            )  # fmt: skip
            seeds = [v for v in e["per_seed"] if math.isfinite(v)]
            ax.scatter([ai] * len(seeds), seeds, color=color_of(act), s=8, alpha=0.5)
        ax.axhline(1.0, color=_THEORY, ls="--", lw=1.2)
        ax.set_xticks(range(len(acts)))
        ax.set_xticklabels(
            [
                f"{a}\n$\\eta$ = {_rate_label(per[a]['rate'])}" if per[a].get("rate") else a
                for a in acts
            ],
            rotation=30,
            ha="right",
            fontsize=7.5,
        )
        name = r"$38/\eta$" if opt == "adam" else r"$2/\eta$"
        ax.set_ylabel(f"sharpness / ({name})")
        ax.set_title(f"{NAMES[opt]}: late sharpness over {name}")
        ax.set_ylim(bottom=0, top=max(1.3, ax.get_ylim()[1]))
    handles = [
        Line2D(
            [],
            [],
            color="#444444",
            marker="o",
            ls="",
            label="measured (geometric mean over seeds, 95%)",
        ),
        Line2D([], [], color=_THEORY, ls="--", label="threshold (edge of stability)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8)
    return fig


def figures(results: Results) -> dict[str, Any]:
    """Every figure of the experiment, by file name."""
    c = _cfg(results)
    out: dict[str, Any] = {}
    with style():
        for opt in c["optimizers"]:
            out[f"divergence_{opt}"] = plot_divergence_map(results, opt)
        for opt in c["optimizers"]:
            out[f"depth_{opt}"] = plot_stable_rate_vs_depth(results, opt)
        for opt in ("gd", "adam"):
            if f"sharp_{opt}" in results.arrays:
                out[f"sharpness_{opt}"] = plot_sharpness(results, opt)
        if results.summary["sharp"]:
            out["settle"] = plot_settle(results)
    return out
