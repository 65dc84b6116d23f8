"""Figures of the unit-states experiment, drawn from its :class:`Results` alone.

Layers are numbered 1 (nearest the input) to ``depth`` on every axis, input left, output right.
A fraction that is zero by construction for an activation (``summary["applicable"]``) is not
drawn for it: a ReLU is never saturated, a leaky ReLU never exactly zero.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from actlab.experiments.base import Results
from actlab.plotting.style import color_of, new_figure, style
from actlab.stats import ci_band

__all__ = [
    "plot_fraction_by_layer",
    "plot_over_training",
    "plot_layer_by_step",
    "primary_fraction",
    "plot_saturation_at_init",
    "plot_born_dead",
    "plot_one_step_kill",
    "plot_kill_loss",
    "figures",
    "applies",
    "PANELS",
]

_THEORY = "#111111"
PANELS = (
    ("off", "dead (ReLU) or inactive (leaky ReLU, GELU, SiLU)"),
    ("saturated", "saturated on every input"),
    ("saturated_share", "saturated share of (input, unit) pairs"),
    ("sparsity", "sparsity (outputs exactly 0)"),
)
"""The fraction panels of the per-layer figure before the τ-dormant ones: key, title."""


def applies(
    summary: dict[str, Any], activation: str, key: str, values: np.ndarray | None = None
) -> bool:
    """Whether fraction ``key`` can be non-zero for ``activation`` (``"off"`` is dead for
    activations with an exact zero, inactive for the other ReLU-like ones; τ = 0 dormancy is
    exactly zero output, so it applies where dead does). Dead units, sparsity and τ = 0
    dormancy also apply where the float32 output rounds to 0 (``summary["underflow"]``) and
    the measured ``values`` are non-zero somewhere."""
    app = summary["applicable"][activation]
    rounds = summary.get("underflow", {}).get(activation) is not None
    if (
        key in ("dead", "sparsity", "dormant_0")
        and not app["dead"]
        and rounds
        and values is not None
        and np.nanmax(np.r_[np.ravel(values), 0.0]) > 0
    ):
        return True
    if key == "off":
        return app["inactive"]
    if key.startswith("dormant_"):
        return app["dead"] if float(key.split("_")[1]) == 0 else True
    return app[key]


def _off_key(summary: dict[str, Any], activation: str) -> str:
    return "dead" if summary["applicable"][activation]["dead"] else "inactive"


def _fraction(results: Results, task: str, key: str, activation: str) -> np.ndarray:
    """``(step, seed, layer)`` values of fraction ``key`` (``"off"`` resolved per activation)."""
    s = results.summary
    if key == "off":
        key = _off_key(s, activation)
    fr = results.arrays[f"fractions_{task}"]
    k = list(results.coords[f"fractions_{task}/fraction"]).index(key)
    a = list(s["activations"]).index(activation)
    return fr[k, :, a]


def _band(ax: Axes, x, values: np.ndarray, color: str, band: bool = True, **kw) -> np.ndarray:
    mean, lo, hi = ci_band(values, axis=0)
    ax.plot(x, mean, color=color, **kw)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if band and ok.any():
        ax.fill_between(
            np.asarray(x)[ok], np.clip(lo[ok], 0, 1), np.clip(hi[ok], 0, 1), color=color, alpha=0.18
        )
    return mean


def _fit_ylim(ax: Axes, top: float = 0.0) -> None:
    """Each panel is its own fraction: scaled to its largest value (lines and bands), at least
    to 5% so that a panel of near-zero values does not magnify noise, at most to 1."""
    values = [top, 0.05]
    values += [float(np.nanmax(line.get_ydata())) for line in ax.lines if len(line.get_ydata())]
    values += [float(np.nanmax(c.get_paths()[0].vertices[:, 1]))
               for c in ax.collections if c.get_paths()]  # fmt: skip
    hi = min(1.0, 1.1 * max(v for v in values if np.isfinite(v)))
    ax.set_ylim(-0.03 * hi, hi)


def plot_fraction_by_layer(
    results: Results, task: str, key: str, title: str, ax: Axes | None = None
) -> Axes:
    """Fraction ``key`` per layer at initialisation (dashed) and after training (solid, with its
    95% band over seeds), one colour per activation it applies to; for the saturated share, the
    mean-field prediction at initialisation (black, dotted, drawn on top)."""
    ax = ax or new_figure().add_subplot()
    s = results.summary
    layers = np.arange(1, s["depth"] + 1)
    drawn, top = [], 0.0
    for act in s["activations"]:
        v = _fraction(results, task, key, act)
        if not applies(s, act, key, v):
            continue
        color = color_of(act)
        m0 = _band(ax, layers, v[0], color, band=False, ls="--", lw=1.2)
        m1 = _band(ax, layers, v[-1], color, ls="-", label=act)
        top = max(top, float(np.nanmax(np.r_[m0, m1, 0.0])))
        drawn.append(act)
        if key == "saturated_share":
            a = list(s["activations"]).index(act)
            ax.plot(
                layers,
                results.arrays[f"theory_share_{task}"][a],
                color=_THEORY,
                ls=":",
                lw=1.6,
                marker="x",
                ms=4,
                zorder=5,
            )
    ax.set_title(title, fontsize=8.5)
    ax.set_xlabel("hidden layer (input → output)")
    ax.set_xticks(layers if len(layers) <= 12 else layers[:: max(1, len(layers) // 10)])
    _fit_ylim(ax, top)
    if drawn and top == 0.0:
        ax.text(0.5, 0.55, "every line at 0:\n" + ", ".join(drawn), ha="center", va="center",
                transform=ax.transAxes, fontsize=7.5, color="#555555")  # fmt: skip
    if not drawn:
        ax.text(0.5, 0.5, "zero by construction\nfor every activation here", ha="center",
                va="center", transform=ax.transAxes, fontsize=8, color="#555555")  # fmt: skip
    return ax


def _legend_panel(ax: Axes, results: Results, with_theory: bool = True) -> None:
    ax.axis("off")
    handles = [
        matplotlib.lines.Line2D([], [], color=color_of(a), lw=2, label=a)
        for a in results.summary["activations"]
    ]
    handles += [
        matplotlib.lines.Line2D([], [], color="#555555", ls="--", lw=1.2, label="at init"),
        matplotlib.lines.Line2D(
            [], [], color="#555555", ls="-", lw=1.8,
            label=f"after {results.summary['steps']} steps (band: 95% interval)",
        ),
    ]  # fmt: skip
    if with_theory:
        handles.append(
            matplotlib.lines.Line2D(
                [],
                [],
                color=_THEORY,
                ls=":",
                marker="x",
                label="theory at init (layer 1 exact,\ndeeper: mean field)",
            )
        )
    ax.legend(handles=handles, loc="center", frameon=False, fontsize=8)


def _unit_states_figure(results: Results, task: str) -> Figure:
    s = results.summary
    panels = list(PANELS) + [(f"dormant_{t:g}", f"τ-dormant, τ = {t:g}") for t in s["taus"]]
    n = len(panels) + 1
    cols = 4
    rows = int(np.ceil(n / cols))
    fig = new_figure(figsize=(10.5, 2.8 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax, (key, title) in zip(axes, panels, strict=False):
        plot_fraction_by_layer(results, task, key, title, ax=ax)
    for ax in axes[: len(panels)]:
        ax.set_ylabel("fraction of units" if "share" not in ax.get_title() else "share of pairs")
    _legend_panel(axes[len(panels)], results)
    for ax in axes[len(panels) + 1 :]:
        ax.axis("off")
    fig.suptitle(
        f"Unit states per layer, {task} task: {s['seeds']} seeds, same initial weights "
        "for every activation"
    )
    return fig


def plot_over_training(results: Results, task: str, key: str, ax: Axes | None = None) -> Axes:
    """Mean over layers of fraction ``key`` against the training step (95% band over seeds)."""
    ax = ax or new_figure().add_subplot()
    s = results.summary
    steps = np.asarray(s["snapshot_steps"], dtype=float)
    for act in s["activations"]:
        v = _fraction(results, task, key, act)
        if not applies(s, act, key, v):
            continue
        v = v.mean(axis=-1)  # step, seed
        _band(ax, steps, v.T, color_of(act), marker="o", ms=3, label=act)
    ax.set_xscale("symlog", linthresh=max(1.0, steps[1] if len(steps) > 1 else 1.0))
    ax.set_xticks(steps)
    ax.set_xticklabels([f"{int(v)}" for v in steps])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("training step (Adam)")
    _fit_ylim(ax)
    return ax


def _over_training_figure(results: Results) -> Figure:
    s = results.summary
    keys = [
        ("off", "dead or inactive"),
        ("saturated_share", "saturated share"),
        ("dormant_0.025" if 0.025 in s["taus"] else f"dormant_{s['taus'][-1]:g}", "τ-dormant"),
    ]
    fig = new_figure(figsize=(11, 5.6))
    axes = fig.subplots(2, 3, squeeze=False)
    for r, task in enumerate(("regression", "classification")):
        for c, (key, title) in enumerate(keys):
            ax = plot_over_training(results, task, key, ax=axes[r, c])
            ax.set_title(f"{task}: {title}" + (f", τ = {key.split('_')[1]}" if c == 2 else ""))
            if c == 0:
                ax.set_ylabel("mean over layers")
    handles = [
        matplotlib.lines.Line2D([], [], color=color_of(a), lw=2, marker="o", ms=3, label=a)
        for a in s["activations"]
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    fig.suptitle("Unit states over training (mean over the hidden layers, 95% band over seeds)")
    return fig


def primary_fraction(summary: dict[str, Any], activation: str) -> tuple[str, str]:
    """The fraction that shows how ``activation``'s units turn off: dead (exact zero region),
    inactive (other ReLU-like), saturated share (bounded), else the 0.025-dormant fraction;
    ``(key, label)``."""
    app = summary["applicable"][activation]
    if app["dead"]:
        return "dead", "dead"
    if app["inactive"]:
        return "inactive", "inactive"
    if app["saturated"]:
        return "saturated_share", "saturated share"
    taus = summary["taus"]
    t = 0.025 if 0.025 in taus else taus[-1]
    return f"dormant_{t:g}", f"τ-dormant ({t:g})"


def plot_layer_by_step(results: Results, task: str, activation: str, ax: Axes | None = None,
                       vmax: float = 1.0):  # fmt: skip
    """Mean over seeds of the activation's :func:`primary_fraction`, per hidden layer (x, input
    left) and measured step (y, initialisation at the top)."""
    ax = ax or new_figure().add_subplot()
    s = results.summary
    key, label = primary_fraction(s, activation)
    v = _fraction(results, task, key, activation).mean(axis=1)  # step, layer
    norm = matplotlib.colors.PowerNorm(0.5, vmin=0, vmax=vmax)
    image = ax.imshow(v, aspect="auto", cmap="Greys", norm=norm, interpolation="nearest")
    steps = s["snapshot_steps"]
    ax.set_yticks(range(len(steps)))
    ax.set_yticklabels([str(t) for t in steps])
    layers = np.arange(1, s["depth"] + 1)
    ax.set_xticks(range(0, len(layers), max(1, len(layers) // 5)))
    ax.set_xticklabels([str(layers[i]) for i in range(0, len(layers), max(1, len(layers) // 5))])
    ax.set_title(f"{activation}: {label}\n(largest cell {100 * float(np.nanmax(v)):.3g}%)",
                 fontsize=8)  # fmt: skip
    ax.grid(False)
    return image


def _layer_by_step_figure(results: Results) -> Figure:
    s = results.summary
    acts = list(s["activations"])
    tasks = ("regression", "classification")
    vmax = 0.0
    for task in tasks:
        for act in acts:
            key, _ = primary_fraction(s, act)
            vmax = max(vmax, float(np.nanmax(_fraction(results, task, key, act).mean(axis=1))))
    vmax = max(vmax, 0.01)
    fig = new_figure(figsize=(1.75 * len(acts) + 1.2, 5.2))
    axes = fig.subplots(len(tasks), len(acts), squeeze=False, sharey=True)
    image = None
    for r, task in enumerate(tasks):
        for c, act in enumerate(acts):
            image = plot_layer_by_step(results, task, act, ax=axes[r, c], vmax=vmax)
            if c == 0:
                axes[r, c].set_ylabel(f"{task}\ntraining step")
            if r == len(tasks) - 1:
                axes[r, c].set_xlabel("layer (in → out)")
    fig.colorbar(image, ax=axes, shrink=0.85, label="fraction (mean over seeds; square-root scale)")
    fig.suptitle("Where and when units go quiet: dead, inactive or saturated share, per layer "
                 "and step")  # fmt: skip
    return fig


def plot_saturation_at_init(results: Results, activation: str, ax: Axes | None = None) -> Axes:
    """Saturated share per layer at initialisation for each sigma_w^2 (zero biases): measured
    mean with its 95% interval over seeds (markers), mean-field prediction (line, on top)."""
    ax = ax or new_figure().add_subplot()
    s = results.summary
    a = list(results.coords["sat_measured/activation"]).index(activation)
    sws = list(results.coords["sat_measured/sigma_w2"])
    layers = np.arange(1, s["depth"] + 1)
    cmap = matplotlib.colormaps["viridis"]
    for j, sw in enumerate(sws):
        color = cmap(0.1 + 0.8 * j / max(1, len(sws) - 1))
        mean, lo, hi = ci_band(results.arrays["sat_measured"][a, j], axis=0)
        err = np.vstack([mean - np.nan_to_num(lo, nan=mean), np.nan_to_num(hi, nan=mean) - mean])
        ax.errorbar(layers, mean, yerr=np.clip(err, 0, None), fmt="o", ms=4, color=color,
                    capsize=2, label=f"$\\sigma_w^2 = {sw:g}$")  # fmt: skip
        ax.plot(layers, results.arrays["sat_theory"][a, j], color=color, lw=1.6, zorder=5)
        ax.plot(layers, results.arrays["sat_theory"][a, j], color=_THEORY, lw=0.6, ls=":", zorder=6)
    ax.set_title(f"{activation}: measured (dots, 95% interval) vs theory (lines)", fontsize=9)
    ax.set_xlabel("hidden layer (input → output)")
    ax.set_ylabel("saturated share of (input, unit) pairs")
    ax.set_xticks(layers if len(layers) <= 12 else layers[:: max(1, len(layers) // 10)])
    top = max(0.01, float(np.nanmax(np.r_[results.arrays["sat_theory"][a].ravel(), 0.0])))
    # symmetric-log: linear below 0.1%, logarithmic above, so small sigma_w^2 stay visible
    ax.set_yscale("symlog", linthresh=1e-3, linscale=0.5)
    ax.set_ylim(0, 1.3 * top)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{100 * v:g}%"))
    return ax


def _saturation_figure(results: Results) -> Figure | None:
    acts = list(results.coords["sat_measured/activation"])
    if not acts:
        return None
    fig = new_figure(figsize=(5.5 * len(acts), 4.2))
    axes = fig.subplots(1, len(acts), squeeze=False)[0]
    for ax, act in zip(axes, acts, strict=True):
        plot_saturation_at_init(results, act, ax=ax)
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(matplotlib.lines.Line2D([], [], color="#444444", lw=1.6))
    labels.append("mean-field theory (line, same colour)")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=8)
    fig.suptitle(
        "Saturation at initialisation: weights $\\mathcal{N}(0, \\sigma_w^2/\\text{fan-in})$, "
        f"zero biases, width {results.summary['width']}"
    )
    return fig


_VARIANT_TITLES = {"relu_rai": "relu, randomized asymmetric init (RAI)"}


def plot_born_dead(results: Results, variant: str, ax: Axes | None = None) -> Axes:
    """Born-dead probability against depth for each width: the fixed-input formula (line), the
    measured fixed-input frequency (circles) and the whole-domain frequency (squares), each
    with its Wilson interval."""
    ax = ax or new_figure().add_subplot()
    s = results.summary
    v = list(s["bd_variants"]).index(variant)
    widths, depths = s["bd_widths"], np.asarray(s["bd_depths"], dtype=float)
    cmap = matplotlib.colormaps["plasma"]
    n = s["bd_trials"]
    cells = {(c["variant"], c["width"], c["depth"]): c for c in s["born_dead"]}
    for i, w in enumerate(widths):
        color = cmap(0.05 + 0.72 * i / max(1, len(widths) - 1))
        ax.plot(depths, results.arrays["bd_formula"][i], color=color, lw=1.4, zorder=5)
        for what, marker, dx in (("fixed", "o", 0.97), ("constant", "s", 1.03)):
            stats = [cells[(variant, w, int(d))][what] for d in depths]
            k = results.arrays[f"bd_{what}"][v, i]
            mean = k / n
            lo = np.array([st["lo"] for st in stats])
            hi = np.array([st["hi"] for st in stats])
            ax.errorbar(depths * dx, mean, yerr=[mean - lo, hi - mean], fmt=marker, ms=3.5,
                        color=color, mfc="white" if what == "constant" else color,
                        capsize=1.5, lw=0.8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(depths)
    ax.set_xticklabels([f"{int(d)}" for d in depths])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("depth D (hidden layers)")
    ax.set_ylabel("probability")
    ax.set_title(_VARIANT_TITLES.get(variant, variant), fontsize=9)
    return ax


def _born_dead_figure(results: Results) -> Figure:
    s = results.summary
    variants = s["bd_variants"]
    cols = 2
    rows = int(np.ceil(len(variants) / cols))
    fig = new_figure(figsize=(10, 3.6 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax, var in zip(axes, variants, strict=False):
        plot_born_dead(results, var, ax=ax)
    for ax in axes[len(variants) :]:
        ax.axis("off")
    cmap = matplotlib.colormaps["plasma"]
    widths = s["bd_widths"]
    handles = [
        matplotlib.lines.Line2D(
            [], [], color=cmap(0.05 + 0.72 * i / max(1, len(widths) - 1)), lw=2, label=f"N = {w}"
        )
        for i, w in enumerate(widths)
    ]
    handles += [
        matplotlib.lines.Line2D([], [], color="#444444", lw=1.4,
                                label="formula $1-(1-2^{-N})^D$: fixed input;\n"
                                      "upper bound on constant (symmetric weights)"),
        matplotlib.lines.Line2D([], [], color="#444444", ls="", marker="o",
                                label="measured: some layer has z ≤ 0 on every unit at the "
                                      "fixed input"),
        matplotlib.lines.Line2D([], [], color="#444444", ls="", marker="s", mfc="white",
                                label="measured: constant on every probe input"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=7.5)
    fig.suptitle(
        f"Born dead: {s['bd_trials']} initialisations per cell, zero biases, Wilson 95% intervals"
    )
    return fig


def plot_one_step_kill(results: Results, ax: Axes | None = None) -> Axes:
    """Fraction of ReLU units killed by one SGD step against the learning rate (mean and 95%
    interval over seeds)."""
    ax = ax or new_figure().add_subplot()
    lrs = np.asarray(results.coords["kill/lr"], dtype=float)
    mean, lo, hi = ci_band(results.arrays["kill"], axis=1)
    color = color_of("relu")
    ax.plot(lrs, mean, "o-", color=color, label="killed: dead after, not before")
    ax.fill_between(lrs, np.clip(np.nan_to_num(lo, nan=0), 0, 1),
                    np.clip(np.nan_to_num(hi, nan=0), 0, 1), color=color, alpha=0.2)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("learning rate η of the one SGD step")
    ax.set_ylabel("fraction of hidden units")
    ax.set_ylim(bottom=-0.02)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("all hidden layers", fontsize=9)
    return ax


def plot_kill_by_layer(results: Results, ax: Axes | None = None) -> Axes:
    """Killed fraction per layer, one line per learning rate (mean over seeds)."""
    ax = ax or new_figure().add_subplot()
    lrs = list(results.coords["kill_layer/lr"])
    per = results.arrays["kill_layer"].mean(axis=1)  # lr, layer
    layers = np.arange(1, per.shape[1] + 1)
    cmap = matplotlib.colormaps["magma"]
    for i, lr in enumerate(lrs):
        ax.plot(layers, per[i], "o-", ms=3, color=cmap(0.1 + 0.75 * i / max(1, len(lrs) - 1)),
                label=f"η = {lr:g}")  # fmt: skip
    ax.set_xlabel("hidden layer (input → output)")
    ax.set_ylabel("fraction killed (mean over seeds)")
    ax.set_xticks(layers)
    ax.set_ylim(bottom=-0.02)
    ax.legend(fontsize=7, ncols=2)
    ax.set_title("per layer", fontsize=9)
    return ax


def plot_kill_loss(results: Results, ax: Axes | None = None) -> Axes:
    """Training MSE after the one SGD step against the learning rate (geometric mean and 95%
    interval over seeds), with the loss before the step."""
    ax = ax or new_figure().add_subplot()
    lrs = np.asarray(results.coords["kill_loss_after/lr"], dtype=float)
    logs = np.log10(results.arrays["kill_loss_after"])  # lr, seed
    mean, lo, hi = ci_band(logs, axis=1)
    color = color_of("relu")
    ax.plot(lrs, 10**mean, "o-", color=color, label="after the step")
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.fill_between(lrs[ok], 10 ** lo[ok], 10 ** hi[ok], color=color, alpha=0.2)
    before = 10 ** float(np.mean(np.log10(results.arrays["kill_loss_before"])))
    ax.axhline(before, color="#555555", ls="--", lw=1.2, label="before the step")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate η of the one SGD step")
    ax.set_ylabel("training MSE (geometric mean)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("what the step does to the loss", fontsize=9)
    return ax


def _kill_figure(results: Results) -> Figure:
    fig = new_figure(figsize=(13, 3.9))
    a, b, c = fig.subplots(1, 3)
    plot_one_step_kill(results, ax=a)
    plot_kill_by_layer(results, ax=b)
    plot_kill_loss(results, ax=c)
    s = results.summary
    fig.suptitle(
        f"ReLU units killed by one full-batch SGD step ({s['kill_seeds']} seeds, "
        f"depth {s['depth']}, width {s['width']})"
    )
    return fig


def figures(results: Results) -> dict[str, Any]:
    """Every figure of the experiment, by file name."""
    with style():
        out: dict[str, Any] = {
            "unit_states_regression": _unit_states_figure(results, "regression"),
            "unit_states_classification": _unit_states_figure(results, "classification"),
            "over_training": _over_training_figure(results),
            "layer_by_step": _layer_by_step_figure(results),
            "born_dead": _born_dead_figure(results),
            "one_step_kill": _kill_figure(results),
        }
        sat = _saturation_figure(results)
        if sat is not None:
            out["saturation_init"] = sat
    return out
