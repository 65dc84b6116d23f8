"""Figures of the NumPy-from-scratch lesson, drawn from its :class:`Results` alone.

Single panels are ``plot_*(results, ax=None) -> Axes``; :func:`figures` lays them
out. Activations keep their colour from :func:`~actlab.plotting.style.color_of`; the numerical
variants (naive / stable, float64 / float32) have colours of their own, listed in
:data:`SERIES`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from actlab.experiments.base import Results
from actlab.experiments.numpy_basics.config import TINY_EPS
from actlab.plotting.style import color_of, new_figure, style

__all__ = [
    "SERIES",
    "plot_formula",
    "plot_check_errors",
    "plot_collapse_line",
    "plot_singular_values",
    "plot_overflow",
    "plot_underflow",
    "plot_peaky",
    "plot_temperature_sweep",
    "plot_entropy",
    "plot_dead_curves",
    "plot_dead_descent",
    "plot_head_fit",
    "plot_head_errors",
    "coinciding_fits",
    "figures",
]

SERIES = {
    "stable": "#222222",
    "naive float64": "#d62728",
    "naive float32": "#e6550d",
    "log_softmax": "#222222",
    "log of softmax float64": "#d62728",
    "log of softmax float32": "#e6550d",
}
"""Colours of the numerical variants (not activations)."""

_TITLES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
_NAN_MARK = dict(marker="x", color="#d62728", ms=5, ls="none")


def _ax(ax: Axes | None, **fig_kwargs: Any) -> Axes:
    return ax if ax is not None else new_figure(**fig_kwargs).add_subplot()


def _coord(results: Results, key: str) -> list:
    return list(results.coords[key])


# --------------------------------------------------------------------------------------------
# Formulas


def plot_formula(results: Results, name: str, ax: Axes | None = None) -> Axes:
    """phi (solid) and phi' (dashed) from the NumPy formulas, PyTorch's values as dots."""
    ax = _ax(ax)
    names = _coord(results, "formula_curves/function")
    curves = results.arrays["formula_curves"][names.index(name)]  # (quantity, source, z)
    z = np.asarray(results.coords["formula_curves/z"])
    c = color_of(name)
    ax.plot(z, curves[0, 0], color=c, label=r"$\varphi$ (NumPy)")
    ax.plot(z, curves[1, 0], color=c, ls=(0, (4, 2)), lw=1.4, label=r"$\varphi'$ (NumPy)")
    step = max(1, len(z) // 20)
    for q in (0, 1):
        ax.plot(
            z[::step],
            curves[q, 1, ::step],
            "o",
            ms=3.2,
            mfc="white",
            mec="#333333",
            mew=0.8,
            label="PyTorch" if q == 0 else None,
        )
    ax.set_title(_TITLES.get(name, name))
    ax.set_xlabel("$x$")
    ax.axhline(0, color="#999999", lw=0.6, zorder=0)
    return ax


def plot_check_errors(results: Results, ax: Axes | None = None) -> Axes:
    """Largest difference per comparison and input set, in units of the dtype's epsilon relative
    to ``max(|reference|, 1)``; exact agreement marked by an open circle, non-finite disagreements
    counted in red above the bar."""
    ax = _ax(ax, figsize=(11, 3.5))
    groups: dict[tuple, dict[tuple, dict]] = {}
    for c in results.summary["checks"]:
        key = (c["function"], c["implementation"], c["reference"])
        groups.setdefault(key, {})[(c["inputs"], c["dtype"])] = c
    sets = [("random", "float64"), ("edge", "float64"), ("random", "float32"), ("edge", "float32")]
    colours = ["#08519c", "#6baed6", "#a63603", "#fd8d3c"]
    width = 0.2
    top = max(c["max_err_eps"] for by in groups.values() for c in by.values())
    for i, by in enumerate(groups.values()):
        for j, s in enumerate(sets):
            c, x = by[s], i + (j - 1.5) * width
            if c["max_err_eps"] >= TINY_EPS:
                ax.bar(x, c["max_err_eps"], width, color=colours[j], edgecolor="none")
            elif c["max_err_eps"] > 0:  # not the same number, but no bar would show it
                ax.plot(x, 0, marker="^", ms=5, color=colours[j], clip_on=False)
            else:
                ax.plot(x, 0, marker="o", ms=4, mfc="white", mec=colours[j], clip_on=False)
            if c["nonfinite_mismatches"]:
                ax.text(
                    x,
                    c["max_err_eps"] + 0.04 * top,
                    str(c["nonfinite_mismatches"]),
                    ha="center",
                    va="bottom",
                    fontsize=8.5,
                    color="#d62728",
                    fontweight="bold",
                )
    ax.set_ylim(0, top * 1.55)  # room for the legend above the bars
    labels = [
        f"{_TITLES.get(f, f.replace('_', '-'))}\n{'textbook' if impl == 'textbook' else 'NumPy'}"
        f"\nvs {'SciPy' if r == 'scipy' else 'torch'}"
        for f, impl, r in groups
    ]
    ax.set_xticks(range(len(groups)), labels, fontsize=8)
    ax.set_ylabel(r"max error / $\varepsilon_{\mathrm{mach}}$")
    handles = [Line2D([], [], color=c, lw=6) for c in colours]
    handles.append(Line2D([], [], marker="o", mfc="white", mec="#555555", ls="none"))
    handles.append(Line2D([], [], marker="^", color="#555555", ls="none"))
    handles.append(Line2D([], [], marker="$3$", color="#d62728", ls="none"))
    names = [f"{a} {b}" for a, b in sets] + [
        "finite entries exactly equal",
        f"not equal, but < {TINY_EPS:g} (at tiny values)",
        "entries whose inf/NaN disagree",
    ]
    ax.legend(handles, names, loc="upper left", ncols=3, fontsize=8.5)
    ax.set_title(
        r"Largest error against the library, in units of the dtype's machine epsilon "
        r"$\varepsilon_{\mathrm{mach}}$"
        "\n(relative to max(|reference|, 1), as in the table); "
        "red: count of disagreeing inf/NaN entries"
    )
    ax.grid(axis="x", visible=False)
    return ax


# --------------------------------------------------------------------------------------------
# Linear collapse


def plot_collapse_line(results: Results, stack: str, ax: Axes | None = None) -> Axes:
    """One output of the stack along a line through input space, with the best affine fit."""
    ax = _ax(ax)
    stacks = _coord(results, "collapse_line/stack")
    t = np.asarray(results.coords["collapse_line/t"])
    net, fit = results.arrays["collapse_line"][stacks.index(stack)]
    row = next(r for r in results.summary["collapse"]["rows"] if r["activation"] == stack)
    ax.plot(t, net, color=color_of(stack), lw=3.0, alpha=0.85, label="stack")
    ax.plot(t, fit, color="#000000", ls=(0, (4, 2)), lw=1.1, label="best affine fit")
    title = "no activation" if stack == "identity" else f"{stack} between layers"
    ax.set_title(f"{title}\nresidual {row['affine_fit_residual']:.2g}")
    ax.set_xlabel("position along the line")
    return ax


def plot_singular_values(results: Results, ax: Axes | None = None) -> Axes:
    """Singular values of the composed matrix W (log scale), rank tolerance dashed."""
    ax = _ax(ax)
    c = results.summary["collapse"]
    sv = np.asarray(results.arrays["collapse_singular_values"])
    k = np.arange(1, sv.size + 1)
    kept = sv > c["rank_tolerance"]
    ax.semilogy(k[kept], sv[kept], "o", color="#222222", label="above tolerance")
    ax.semilogy(
        k[~kept],
        np.maximum(sv[~kept], 1e-300),
        "o",
        mfc="white",
        mec="#888888",
        label="rounding noise",
    )
    ax.axhline(c["rank_tolerance"], color="#d62728", lw=1, ls=(0, (3, 2)), label="tolerance")
    ax.set_xticks(k)
    ax.set_xlabel("index")
    ax.set_title(f"singular values of $W$ ({c['shape'][0]}×{c['shape'][1]}): rank {c['rank']}")
    ax.legend(loc="upper right")
    return ax


# --------------------------------------------------------------------------------------------
# Softmax stability


def _nan_tail(ax: Axes, x: np.ndarray, y: np.ndarray, colour: str, label: str, ls: Any) -> None:
    """A curve whose non-finite points are marked at the panel's bottom edge. It is drawn thin
    and on top: where it agrees with the exact curve (wide and pale, underneath) both show."""
    ok = np.isfinite(y)
    ax.plot(np.where(ok, x, np.nan), np.where(ok, y, np.nan), color=colour, ls=ls, label=label,
            lw=1.3, zorder=4)  # fmt: skip
    if (~ok).any():
        first = x[np.argmax(~ok)]
        ax.axvline(first, color=colour, lw=0.8, ls=":")


def plot_overflow(results: Results, ax: Axes | None = None) -> Axes:
    """Largest probability of the softmax of the shifted logits against the shift: naive
    (wrong past the overflow point, shaded: zeros once the sum overflows, NaN once a term does)
    vs stable."""
    ax = _ax(ax)
    variants = _coord(results, "overflow/variant")
    c = np.asarray(results.coords["overflow/offset"])
    y = results.arrays["overflow"]
    sm = results.summary["softmax"]
    wrong, nan = sm["first_wrong_offset"], sm["first_nan_offset"]
    # The stable curves wide and pale underneath, the naive ones thin on top: before the
    # overflow all four coincide, and each must still be seen.
    for dtype, lw in (("float64", 6.0), ("float32", 3.0)):
        ax.plot(
            c,
            y[variants.index(f"stable {dtype}")],
            color=SERIES["stable"],
            lw=lw,
            alpha=0.3 if dtype == "float64" else 0.6,
            ls="-" if dtype == "float64" else (0, (1, 1.5)),
            label=f"stable, {dtype}",
            zorder=2,
        )
    for dtype, height in (("float64", 0.05), ("float32", 0.3)):
        key = f"naive {dtype}"
        ls = "-" if dtype == "float64" else (0, (4, 2))
        _nan_tail(ax, c, y[variants.index(key)], SERIES[key], f"naive, {dtype}", ls)
        if wrong[dtype] is None:
            continue
        ax.axvspan(wrong[dtype], c[-1], color=SERIES[key], alpha=0.08, lw=0)
        text = f" {dtype}: wrong from shift {wrong[dtype]:g}"
        if nan[dtype] is not None and nan[dtype] != wrong[dtype]:
            text += f"\n (zeros), NaN from {nan[dtype]:g}"
        elif nan[dtype] is not None:
            text += " (NaN)"
        ax.text(wrong[dtype], height, text, color=SERIES[key], fontsize=8.5, va="bottom")
    ax.set_ylim(0, 1)
    base = [v - min(sm["big_logits"]) for v in sm["big_logits"]]
    ax.set_xlabel("shift added to every logit of [" + ", ".join(f"{v:g}" for v in base) + "]")
    ax.set_ylabel("largest probability")
    ax.set_title("softmax of shifted logits: overflow of the naive formula")
    ax.legend(loc="upper right")
    return ax


def plot_underflow(results: Results, ax: Axes | None = None) -> Axes:
    """log p of the smaller entry of the logits [0, -gap]: log of softmax (-inf once p
    underflows) vs log_softmax (exactly -gap)."""
    ax = _ax(ax)
    variants = _coord(results, "underflow/variant")
    g = np.asarray(results.coords["underflow/gap"])
    y = results.arrays["underflow"]
    ax.plot(
        g,
        y[variants.index("log_softmax float64")],
        color=SERIES["log_softmax"],
        lw=6.0,
        alpha=0.3,
        label="log_softmax",
    )
    for key in ("log of softmax float64", "log of softmax float32"):
        v = y[variants.index(key)]
        ls = "-" if key.endswith("float64") else (0, (4, 2))
        _nan_tail(ax, g, v, SERIES[key], key.replace("log of softmax", "log(softmax),"), ls)
        bad = ~np.isfinite(v)
        if bad.any():
            ax.text(
                g[np.argmax(bad)],
                -0.06 * g[-1],
                f" −∞ from Δ = {g[np.argmax(bad)]:g}",
                color=SERIES[key],
                fontsize=8.5,
                va="top",
            )
    ax.set_xlabel(r"gap $\Delta$ (logits $[0, -\Delta]$)")
    ax.set_ylabel(r"$\log p$ of the smaller entry")
    ax.set_title("log of softmax vs log-softmax: underflow")
    ax.legend(loc="lower left")
    return ax


# --------------------------------------------------------------------------------------------
# Temperature


def _cmap(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["viridis"](v) for v in np.linspace(0.1, 0.85, n)]


def plot_peaky(results: Results, ax: Axes | None = None) -> Axes:
    """softmax of the lesson's three vectors as grouped bars."""
    ax = _ax(ax)
    vectors = _coord(results, "peaky_probs/vector")
    p = results.arrays["peaky_probs"]
    k = p.shape[1]
    width = 0.8 / len(vectors)
    for i, (name, colour) in enumerate(zip(vectors, _cmap(len(vectors)), strict=True)):
        x = np.arange(k) + (i - (len(vectors) - 1) / 2) * width
        ax.bar(x, p[i], width, color=colour, label=name)
    ax.set_xticks(range(k), [f"entry {j + 1}" for j in range(k)])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("probability")
    ax.set_title("softmax of the lesson's logits")
    ax.legend(title="logits", loc="upper left")
    return ax


def plot_temperature_sweep(results: Results, ax: Axes | None = None) -> Axes:
    """Probability of each entry of the swept logit vector against temperature (log x), with the
    temperature that matches epsilon-greedy marked."""
    ax = _ax(ax)
    t = np.asarray(results.coords["temperature_probs/temperature"])
    p = results.arrays["temperature_probs"]
    s = results.summary["temperature"]
    q = results.summary["config"]["sweep_logits"]
    for a, colour in zip(range(p.shape[1]), _cmap(p.shape[1])[::-1], strict=True):
        ax.semilogx(t, p[:, a], color=colour, label=f"$Q = {q[a]:g}$")
    ax.axhline(1 / p.shape[1], color="#999999", lw=0.8, ls=":")
    ax.axvline(s["t_star"], color="#d62728", lw=1, ls=(0, (3, 2)))
    eps = results.summary["config"]["epsilon"]
    ax.text(
        s["t_star"],
        0.55,
        rf" matches ε-greedy, $\varepsilon_{{\mathrm{{greedy}}}}$ = {eps:g}",
        color="#d62728",
        fontsize=8.5,
        rotation=90,
        va="center",
        ha="right",
    )
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("temperature $T$")
    ax.set_ylabel(r"$p(a)$ = softmax$(Q/T)_a$")
    ax.set_title("Boltzmann policy against temperature")
    ax.legend(loc="center right")
    return ax


def plot_entropy(results: Results, ax: Axes | None = None) -> Axes:
    """Entropy of softmax(x / T) against T for each vector; T = 1 marked; log K dotted."""
    ax = _ax(ax)
    vectors = _coord(results, "temperature_entropy/vector")
    t = np.asarray(results.coords["temperature_entropy/temperature"])
    h = results.arrays["temperature_entropy"]
    s = results.summary["temperature"]
    colours = [*_cmap(len(vectors) - 1), "#222222"]
    for i, (name, colour) in enumerate(zip(vectors, colours, strict=True)):
        label = f"Q = {_q_label(results)}" if name == "sweep" else name
        ls = (0, (4, 2)) if name == "sweep" else "-"
        ax.semilogx(t, h[i], color=colour, ls=ls, label=label)
        if name != "sweep":
            ax.plot(1.0, s["entropy_at_1"][i], "o", color=colour, ms=5, zorder=3)
    k3 = len(s["probs"][0])
    for k in sorted({k3, len(results.summary["config"]["sweep_logits"])}):
        ax.axhline(np.log(k), color="#999999", lw=0.8, ls=":")
        ax.text(t[0], np.log(k), f"ln {k}", fontsize=8.5, va="bottom", color="#666666")
    ax.axvline(1.0, color="#bbbbbb", lw=0.8)
    ax.set_xlabel("temperature $T$")
    ax.set_ylabel("entropy (nats)")
    ax.set_title("entropy against temperature (dots: $T$ = 1)")
    ax.legend(loc="lower right")
    return ax


def _q_label(results: Results) -> str:
    return "[" + ", ".join(f"{v:g}" for v in results.summary["config"]["sweep_logits"]) + "]"


# --------------------------------------------------------------------------------------------
# Dead ReLU


def plot_dead_curves(results: Results, ax: Axes | None = None) -> Axes:
    """ReLU and LeakyReLU with their derivatives; the lesson's (negative) inputs marked."""
    ax = _ax(ax)
    names = _coord(results, "dead_curves/activation")
    z = np.asarray(results.coords["dead_curves/z"])
    y = results.arrays["dead_curves"]
    for i, name in enumerate(names):
        c = color_of(name)
        # The two coincide for x > 0: the first is drawn wide and pale underneath, the second
        # thin on top, so that neither hides the other.
        wide = i < len(names) - 1
        ax.plot(z, y[i, 0], color=c, lw=4.5 if wide else 1.6, alpha=0.45 if wide else 1.0,
                label=_TITLES[name])  # fmt: skip
        ax.plot(z, y[i, 1], color=c, ls=(0, (4, 2)), lw=3.2 if wide else 1.3,
                alpha=0.45 if wide else 1.0, label=f"{_TITLES[name]}'")  # fmt: skip
    d = results.summary["dead"]["dead"]
    ax.plot(
        d["x"],
        d["relu"],
        "o",
        color=color_of("relu"),
        ms=6,
        mfc="white",
        mew=1.5,
        label=f"the {len(d['x'])} inputs: output",
    )
    ax.plot(
        d["x"],
        d["relu_grad_autograd"],
        "s",
        color=color_of("relu"),
        ms=4,
        label=f"the {len(d['x'])} inputs: gradient",
    )
    ax.annotate(
        "ReLU: output 0 and gradient 0\non every input: a dead unit",
        xy=(d["x"][-1], 0.0),
        xytext=(-4.8, 0.75),
        fontsize=8.5,
        color=color_of("relu"),
        arrowprops={"arrowstyle": "->", "color": color_of("relu"), "lw": 0.8},
    )
    ax.set_ylim(-0.6, 2.2)
    ax.set_xlabel("$x$")
    ax.set_title("ReLU is flat (gradient 0) for $x \\leq 0$")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def plot_dead_descent(results: Results, ax: Axes | None = None) -> Axes:
    """Loss of gradient descent on the dead unit, ReLU vs LeakyReLU (log y)."""
    ax = _ax(ax)
    names = _coord(results, "dead_training/activation")
    q = _coord(results, "dead_training/quantity")
    traj = results.arrays["dead_training"]
    steps = np.arange(traj.shape[1])
    for i, name in enumerate(names):
        ax.semilogy(steps, traj[i, :, q.index("loss")], color=color_of(name), label=_TITLES[name])
    alive = results.summary["dead"]["leaky_alive_step"]
    if alive is not None:
        ax.axvline(alive, color=color_of("leaky_relu"), lw=0.8, ls=":")
        ax.annotate(
            f"LeakyReLU unit on\nfrom step {alive}",
            xy=(alive, traj[1, alive, q.index("loss")]),
            xytext=(alive + 0.08 * steps[-1], traj[1, 0, 0] * 1e-2),
            fontsize=8.5,
            color=color_of("leaky_relu"),
            arrowprops={"arrowstyle": "->", "color": color_of("leaky_relu"), "lw": 0.8},
        )
    if not results.summary["dead"]["relu_moved"]:
        ax.text(steps[-1], traj[0, -1, 0] * 0.6, "ReLU: gradient exactly 0, never moves",
                ha="right", va="top", fontsize=8.5, color=color_of("relu"))  # fmt: skip
    ax.set_xlabel("gradient-descent step")
    ax.set_ylabel("MSE")
    ax.set_title("one unit, all inputs negative")
    ax.legend(loc="lower left")
    return ax


# --------------------------------------------------------------------------------------------
# RL heads

_ACTION_STYLE = {"continue": "-", "wait": (0, (4, 2)), "stop": (0, (1, 1.5))}
_ACTION_MARK = {"continue": "o", "wait": "s", "stop": "^"}
_DODGE = {"continue": -0.2, "wait": 0.2, "stop": 0.0}
"""Horizontal offset of each action's fit from its state: a bounded head pins continue and wait
to the same edge of its range, and the offset keeps both sets of markers in view."""


def coinciding_fits(results: Results, head: str, tol: float = 0.02) -> list[tuple[str, str]]:
    """Pairs of actions whose mean fits (over seeds) differ by less than ``tol`` times the
    targets' spread at every state: drawn on top of each other, they need saying."""
    heads = _coord(results, "q_pred/head")
    actions = _coord(results, "q_targets/action")
    mean = results.arrays["q_pred"][heads.index(head)].mean(axis=0)  # (state, action)
    q = results.arrays["q_targets"]
    span = max(float(np.ptp(q)), 1e-12)
    return [
        (actions[a], actions[b])
        for a in range(len(actions))
        for b in range(a + 1, len(actions))
        if np.max(np.abs(mean[:, a] - mean[:, b])) < tol * span
    ]


def plot_head_fit(results: Results, head: str, ax: Axes | None = None) -> Axes:
    """Exact Q-values (black markers) and the head's fit (coloured open markers, mean over
    seeds, band = min to max, offset sideways per action), with the head's range shaded."""
    ax = _ax(ax)
    heads = _coord(results, "q_pred/head")
    actions = _coord(results, "q_targets/action")
    k = np.asarray(results.coords["q_targets/state"], dtype=float)
    pred = results.arrays["q_pred"][heads.index(head)]  # (seed, state, action)
    q = results.arrays["q_targets"]
    fit = next(f for f in results.summary["heads"]["fits"] if f["head"] == head)
    c = color_of(head)
    if fit["bounded"]:
        lo, hi = fit["range"]
        ax.axhspan(lo, hi, color=c, alpha=0.12, lw=0)
    for a, action in enumerate(actions):
        ax.plot(k, q[:, a], _ACTION_MARK[action], color="#222222", ms=5, zorder=3)
        x = k + _DODGE.get(action, 0.0)
        ax.fill_between(
            x, pred[:, :, a].min(axis=0), pred[:, :, a].max(axis=0), color=c, alpha=0.25, lw=0
        )
        ax.plot(x, pred[:, :, a].mean(axis=0), color=c, ls=_ACTION_STYLE[action], lw=1.3,
                marker=_ACTION_MARK[action], ms=5.5, mfc="white", mec=c, mew=1.4,
                zorder=4)  # fmt: skip
    pairs = coinciding_fits(results, head)
    if pairs:
        ax.text(
            0.03,
            0.97,
            "\n".join(f"{a} and {b} fits coincide" for a, b in pairs)
            + "\n(drawn left and right of each state)",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=8.5,
            color="#222222",
        )
    ax.set_xticks(k)
    ax.set_xlabel("state $k$ (rewards left)")
    name = "linear" if head == "identity" else head
    ax.set_title(f"{name} output: MSE {fit['final_mse']['mean']:.3g}")
    return ax


def plot_head_errors(results: Results, ax: Axes | None = None) -> Axes:
    """Final MSE per head (mean, 95% CI, seeds as dots) and each head's floor (log y)."""
    ax = _ax(ax)
    fits = results.summary["heads"]["fits"]
    for i, f in enumerate(fits):
        c = color_of(f["head"])
        m = f["final_mse"]
        values = np.asarray(f["final_mse_values"])
        jitter = np.linspace(-0.15, 0.15, values.size)
        ax.plot(i + jitter, values, ".", color=c, alpha=0.5, ms=4)
        lo = m["lo"] if m["lo"] is not None and m["lo"] > 0 else m["mean"]
        hi = m["hi"] if m["hi"] is not None else m["mean"]
        ax.errorbar(
            i + 0.3,
            m["mean"],
            yerr=[[m["mean"] - lo], [hi - m["mean"]]],
            fmt="o",
            color=c,
            capsize=3,
        )
        if f["floor"] <= 0:
            ax.annotate("floor 0\n(off the log axis)", (i, hi), xytext=(0, 8), ha="center",
                        textcoords="offset points", va="bottom", fontsize=8.5)  # fmt: skip
        else:
            ax.plot(
                [i - 0.35, i + 0.4], [f["floor"]] * 2, color="#222222", lw=1.2, ls=(0, (3, 1.5))
            )
    ax.set_yscale("log")
    ax.set_xticks(
        range(len(fits)), ["linear" if f["head"] == "identity" else f["head"] for f in fits]
    )
    ax.set_xlim(-0.6, len(fits) - 0.4)
    ax.set_ylabel("final MSE")
    ax.set_title("final MSE per output (dashed: floor)")
    return ax


# --------------------------------------------------------------------------------------------
# Figures


def _formulas_figure(results: Results) -> Figure:
    fig = new_figure(figsize=(9.0, 7.4))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
    axes = top.subplots(1, 4, sharey=True)
    for ax, name in zip(axes, _coord(results, "formula_curves/function"), strict=True):
        plot_formula(results, name, ax)
    axes[0].set_ylim(-1.2, 2.2)
    axes[0].legend(loc="upper left", fontsize=8)
    plot_check_errors(results, bottom.subplots())
    return fig


def _collapse_figure(results: Results) -> Figure:
    stacks = _coord(results, "collapse_line/stack")
    ncols = 2 if len(stacks) + 1 > 3 else len(stacks) + 1
    nrows = math.ceil((len(stacks) + 1) / ncols)
    fig = new_figure(figsize=(8.0 if ncols == 2 else 9.0, 3.2 * nrows))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[len(stacks) + 1 :]:
        ax.set_visible(False)
    axes = axes[: len(stacks) + 1]
    for ax, stack in zip(axes, stacks, strict=False):
        plot_collapse_line(results, stack, ax)
    axes[0].set_ylabel("output 1 of the stack")
    axes[0].legend(loc="best")
    plot_singular_values(results, axes[-1])
    return fig


def _heads_figure(results: Results) -> Figure:
    heads = _coord(results, "q_pred/head")
    ncols = 2
    nrows = math.ceil((len(heads) + 1) / ncols)
    fig = new_figure(figsize=(9.0, 3.4 * nrows + 0.5))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for i, head in enumerate(heads):
        plot_head_fit(results, head, axes[i])
        if i:
            axes[i].sharey(axes[0])
        if i % ncols == 0:
            axes[i].set_ylabel("Q(k, a)")
    for ax in axes[len(heads) + 1 :]:
        ax.set_visible(False)
    actions = _coord(results, "q_targets/action")
    handles = [
        Line2D([], [], color="#222222", marker=_ACTION_MARK[a], ls="none", ms=5) for a in actions
    ]
    labels = [f"{a}: exact Q" for a in actions]
    handles += [
        Line2D([], [], color="#777777", marker=_ACTION_MARK[a], mfc="white", ls=_ACTION_STYLE[a])
        for a in actions
    ]
    labels += [f"{a}: fit (mean over seeds)" for a in actions]
    handles += [Patch(color="#777777", alpha=0.3), Patch(color="#777777", alpha=0.12)]
    labels += ["lowest to highest seed", "range of the output activation"]
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=9)
    plot_head_errors(results, axes[len(heads)])
    return fig


def figures(results: Results) -> dict[str, Figure]:
    """Every figure of the lesson, by name."""
    with style():
        figs: dict[str, Figure] = {"formulas": _formulas_figure(results)}
        figs["linear_collapse"] = _collapse_figure(results)
        fig = new_figure(figsize=(9.0, 3.8))
        a, b = fig.subplots(1, 2)
        plot_overflow(results, a)
        plot_underflow(results, b)
        figs["softmax_overflow"] = fig
        fig = new_figure(figsize=(10.0, 3.7))
        a, b, c = fig.subplots(1, 3)
        plot_peaky(results, a)
        plot_temperature_sweep(results, b)
        plot_entropy(results, c)
        figs["temperature"] = fig
        fig = new_figure(figsize=(9.0, 3.7))
        a, b = fig.subplots(1, 2)
        plot_dead_curves(results, a)
        plot_dead_descent(results, b)
        figs["dead_relu"] = fig
        figs["rl_heads"] = _heads_figure(results)
    return figs
