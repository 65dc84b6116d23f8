"""Figures of the tiny-classifier lesson, drawn from its :class:`Results` alone.

Every band is a 95% Student-t interval of the mean over seeds; quantities spread over decades
(losses, gradients) are averaged on a log10 scale, so their curves are geometric means. The
members (depth, activation, task, lr, seed) are listed in ``summary["members"]``, in the order of
the arrays' member axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator

from actlab.experiments.base import Results
from actlab.plotting.style import color_of, new_figure, style
from actlab.stats import ci_band

__all__ = [
    "plot_loss_curves",
    "plot_accuracy",
    "plot_boundary",
    "plot_grad_trace",
    "plot_grad_layers",
    "plot_units",
    "figures",
]

_CLASS = ("#4575b4", "#d73027")  # class 0, class 1
_UNIT_LABEL = {
    "act/off_fraction": "dead (ReLU) / inactive (LeakyReLU)",
    "act/saturated_fraction": "saturated (sigmoid, tanh)",
    "act/saturated_pair_fraction": "saturated (unit, input) pairs\n(sigmoid, tanh)",
    "act/dormant_fraction": "dormant (ReDo, tau = 0.025)",
}


def _members(results: Results) -> pd.DataFrame:
    return pd.DataFrame(results.summary["members"])


def _select(results: Results, depth: int, task: str, act: str, lr: float | None = None):
    """Member indices of one (depth, task, activation, rate), in seed order."""
    m = _members(results)
    lr = results.summary["lr"] if lr is None else lr
    sel = (m.depth == depth) & (m.task == task) & (m.activation == act) & np.isclose(m.lr, lr)
    return np.flatnonzero(sel.to_numpy())


def _percent(ci: dict) -> tuple[float, float, float]:
    """Mean and CI of a proportion in percent, the interval clipped to [0, 100] (a t-interval
    over few seeds can leave the range a proportion lives in); None (JSON) is NaN."""
    mean, lo, hi = (np.nan if ci[k] is None else 100 * ci[k] for k in ("mean", "lo", "hi"))
    return mean, min(max(lo, 0.0), 100.0), min(max(hi, 0.0), 100.0)


def _legend(fig: Figure, names: list[str], **kwargs: Any) -> None:
    handles = [Line2D([], [], color=color_of(a), lw=2.2, label=a) for a in names]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(names), **kwargs)


def _ax(ax: Axes | None) -> Axes:
    return new_figure(figsize=(4.2, 3.2)).subplots() if ax is None else ax


def plot_loss_curves(
    results: Results, task: str, split: str = "train", depth: int = 1, ax: Axes | None = None
) -> Axes:
    """Cross-entropy per epoch (``train``) or at the evaluation epochs (``test``) of every
    activation on ``task`` at the shared rate: geometric mean over seeds and its 95% band."""
    ax = _ax(ax)
    for act in results.summary["activations"]:
        idx = _select(results, depth, task, act)
        if split == "train":
            values = results.arrays["train_loss"][idx]
            epochs = np.arange(values.shape[1])
        else:
            values = results.arrays["test_loss"][idx]
            epochs = np.asarray(results.coords["test_loss/eval"])
        mean, lo, hi = ci_band(values, log=True)
        ax.plot(epochs, mean, color=color_of(act), label=act)
        ax.fill_between(epochs, lo, hi, color=color_of(act), alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{'training' if split == 'train' else 'held-out'} cross-entropy")
    return ax


def plot_accuracy(
    results: Results, depth: int = 1, protocol: str = "shared", ax: Axes | None = None
) -> Axes:
    """Held-out accuracy at the last epoch per task and activation, mean and 95% CI over seeds
    (from ``summary["table"]``); ``protocol`` ``shared`` (one rate) or ``tuned`` (depth 1)."""
    ax = _ax(ax)
    tasks, acts = results.summary["tasks"], results.summary["activations"]
    rows = {
        (r["task"], r["activation"]): r
        for r in results.summary["table"]
        if r["depth"] == depth and r["protocol"] == protocol
    }
    width = 0.7 / len(acts)
    for j, act in enumerate(acts):
        for i, task in enumerate(tasks):
            acc = rows[task, act]["test_acc"]
            x = i + (j - (len(acts) - 1) / 2) * width
            mean, lo, hi = _percent(acc)
            ax.errorbar(
                x,
                mean,
                yerr=[[mean - lo], [hi - mean]],
                fmt="o",
                ms=4.5,
                capsize=2.5,
                color=color_of(act),
                label=act if i == 0 else None,
            )
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(ax.get_ylim()[0], 100.5)  # the data's own lower limit; a proportion stops at 100
    ax.axhline(50, color="#999999", lw=0.8, ls=":")
    return ax


def plot_boundary(results: Results, task: str, activation: str, ax: Axes | None = None) -> Axes:
    """Decision boundary of the lesson's network (depth 1, shared rate): seed 0's class-1
    probability (shaded) and its 0.5 contour (thick), the 0.5 contours of the other seeds (thin),
    and seed 0's training points."""
    ax = _ax(ax)
    t = results.coords["boundary/task"].index(task)
    a = results.coords["boundary/activation"].index(activation)
    g1, g2 = results.arrays["grid_x1"][t], results.arrays["grid_x2"][t]
    prob = results.arrays["boundary"][t, a]  # (seed, x2, x1)
    ax.contourf(g1, g2, prob[0], levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
    for s in range(1, prob.shape[0]):
        if prob[s].min() < 0.5 < prob[s].max():
            ax.contour(g1, g2, prob[s], levels=[0.5], colors="#333333", linewidths=0.5, alpha=0.5)
    if prob[0].min() < 0.5 < prob[0].max():
        ax.contour(g1, g2, prob[0], levels=[0.5], colors="black", linewidths=1.6)
    pts, lab = results.arrays["train_points"][t], results.arrays["train_labels"][t]
    for k in (0, 1):
        p = pts[lab == k]
        ax.scatter(p[:, 0], p[:, 1], s=7, color=_CLASS[k], edgecolor="white", lw=0.3, zorder=3)
    ax.set_xlim(g1[0], g1[-1])
    ax.set_ylim(g2[0], g2[-1])
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_grad_trace(results: Results, task: str, depth: int = 1, ax: Axes | None = None) -> Axes:
    """First-layer mean ``|dL/dW_1|`` at every epoch per activation (the lesson's trace):
    geometric mean over seeds with its 95% band."""
    ax = _ax(ax)
    for act in results.summary["activations"]:
        values = results.arrays["grad_first"][_select(results, depth, task, act)]
        mean, lo, hi = ci_band(values, log=True)
        epochs = np.arange(values.shape[1])
        ax.plot(epochs, mean, color=color_of(act), label=act)
        ax.fill_between(epochs, lo, hi, color=color_of(act), alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"mean $|\partial L / \partial W_1|$")
    return ax


def plot_grad_layers(
    results: Results, task: str, depth: int | None = None, probe: int = 0, ax: Axes | None = None
) -> Axes:
    """Mean ``|dL/dW_l|`` per layer l (1 = input side, depth + 1 = output layer) at the probe
    epoch ``results.coords['grad_layers/probe'][probe]``, per activation (geometric mean, 95%
    band): the gradient flow through the deepest network by default."""
    ax = _ax(ax)
    depth = max(results.summary["depths"]) if depth is None else depth
    layers = np.arange(1, depth + 2)
    acts = results.summary["activations"]
    for j, act in enumerate(acts):
        values = results.arrays["grad_layers"][_select(results, depth, task, act), probe]
        mean, lo, hi = ci_band(values[:, : depth + 1], log=True)
        # Earlier lines thicker, so that one hidden under a later one (ReLU and LeakyReLU start
        # from the same weights and nearly coincide) still shows as a border.
        lw = 1.4 + 1.2 * (len(acts) - 1 - j) / max(len(acts) - 1, 1)
        # and every other activation dashed, so that a line on top never hides the one below
        ls = "--" if j % 2 else "-"
        ax.plot(layers, mean, marker="o", ls=ls, ms=2 + lw, lw=lw, color=color_of(act), label=act)
        ax.fill_between(layers, lo, hi, color=color_of(act), alpha=0.2, lw=0)
    ax.set_yscale("log")
    if depth >= 2:  # kappa: layer 1 over the last hidden layer (layer depth), not the output
        ax.axvline(depth, color="#888888", lw=0.8, ls=":")
        ax.text(depth, 0.02, r" $W_D$", transform=ax.get_xaxis_transform(), color="#555555")
    ax.set_xticks(layers)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel(r"mean $|\partial L / \partial W_l|$")
    return ax


def _units_top(results: Results, metric: str, depth: int) -> float:
    """The highest upper end (in %) that :func:`plot_units` draws for ``metric`` at ``depth``."""
    top = 0.0
    for r in results.summary["table"]:
        if r["depth"] == depth and r["protocol"] == "shared":
            for probe in (0, -1):
                mean, _, hi = _percent(r["units"][metric][probe])
                value = hi if np.isfinite(hi) else mean
                top = max(top, value) if np.isfinite(value) else top
    return top


def plot_units(
    results: Results,
    metric: str,
    depth: int = 1,
    ax: Axes | None = None,
    top: float | None = None,
) -> Axes:
    """Fraction of hidden units ``metric`` (mean over hidden layers) per task and activation at
    initialisation (hollow) and after training (filled), mean and 95% CI over seeds. Only the
    activations to which the probe applies are drawn. ``top`` (in %): the upper end of the
    y-axis (default: this panel's highest value), so that panels to compare share one."""
    ax = _ax(ax)
    tasks, acts = results.summary["tasks"], results.summary["activations"]
    rows = {
        (r["task"], r["activation"]): r["units"][metric]
        for r in results.summary["table"]
        if r["depth"] == depth and r["protocol"] == "shared"
    }
    shown = [
        a
        for a in acts
        if any(
            rows[t, a][-1]["mean"] is not None and np.isfinite(rows[t, a][-1]["mean"])
            for t in tasks
        )
    ]
    width = 0.7 / max(len(shown), 1)
    top = _units_top(results, metric, depth) if top is None else top
    for j, act in enumerate(shown):
        for i, task in enumerate(tasks):
            x = i + (j - (len(shown) - 1) / 2) * width
            for probe, filled in ((0, False), (-1, True)):
                mean, lo, hi = _percent(rows[task, act][probe])
                err = np.nan_to_num([[mean - lo], [hi - mean]])
                ax.errorbar(
                    x + (0.08 * width if filled else -0.08 * width),
                    mean,
                    yerr=err,
                    fmt="o",
                    ms=4.5,
                    capsize=2,
                    color=color_of(act),
                    mfc=color_of(act) if filled else "white",
                    label=act if (i == 0 and filled) else None,
                )
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel(f"{_UNIT_LABEL.get(metric, metric)} (%)")
    ax.set_ylim(-2, max(10.0, 1.08 * top))  # all-zero fractions stay readable as zeros
    if top == 0:
        ax.text(0.5, 0.6, "0% everywhere", transform=ax.transAxes, ha="center", color="#666666")
    return ax


def _plain_log_ticks(ax: Axes) -> None:
    """Ticks of a log axis at 1, 2 and 5 times a power of 10, labelled as plain numbers (0.02,
    0.05, 0.1) instead of the crowded ``6 x 10^-1`` that a span of about a decade shows."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_locator(LogLocator(base=10.0))
    ax.yaxis.set_minor_locator(LogLocator(base=10.0, subs=(2.0, 5.0)))  # labelled: 0.2, 0.5
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)


def _grid_figure(rows: int, cols: int, size: tuple[float, float], **kwargs: Any):
    fig = new_figure(figsize=(size[0] * cols, size[1] * rows))
    return fig, np.atleast_2d(fig.subplots(rows, cols, squeeze=False, **kwargs))


def figures(results: Results) -> dict[str, Figure]:
    """``loss_curves``, ``accuracy``, ``boundaries``, ``grad_trace`` (rows: task, columns: depth),
    ``grad_layers`` and ``units``."""
    s = results.summary
    tasks, acts, depths = s["tasks"], s["activations"], s["depths"]
    figs: dict[str, Figure] = {}
    with style():
        # One row per task (training and held-out side by side, on one y-scale), so that the
        # figure stays readable at the ~800 px the page shows it.
        fig, axs = _grid_figure(len(tasks), 2, (4.2, 2.0), sharex=True, sharey="row")
        for i, task in enumerate(tasks):
            for c, split in enumerate(("train", "test")):
                ax = axs[i, c]
                plot_loss_curves(results, task, split, ax=ax)
                _plain_log_ticks(ax)
                ax.set_ylabel(f"{task}\ncross-entropy" if c == 0 else "")
                if i < len(tasks) - 1:
                    ax.set_xlabel("")
                if i == 0:
                    ax.set_title("training" if split == "train" else "held-out")
        _legend(fig, acts)
        fig.suptitle(f"Cross-entropy, 2-{s['width']}-2 networks, {s['seeds']} seeds (95% bands)")
        figs["loss_curves"] = fig

        panels = [(1, "shared")] + ([(1, "tuned")] if len(s["learning_rates"]) > 1 else [])
        panels += [(d, "shared") for d in depths if d != 1]
        cols = min(2, len(panels))
        rows = -(-len(panels) // cols)
        fig, axs = _grid_figure(rows, cols, (4.2, 2.8), sharey=True)
        for k in range(len(panels), rows * cols):  # an odd number of panels: one cell empty
            axs.flat[k].set_visible(False)
        for ax, (depth, protocol) in zip(axs.flat, panels, strict=False):
            plot_accuracy(results, depth, protocol, ax=ax)
            rate = f"lr {s['lr']:g}" if protocol == "shared" else "lr tuned per activation"
            ax.set_title(f"{depth} hidden layer{'s' * (depth > 1)}, {rate}")
            if ax not in axs[:, 0]:
                ax.set_ylabel("")
        lows = [_percent(r["test_acc"])[1] for r in s["table"]]
        low = min([v for v in lows if np.isfinite(v)], default=50.0)
        axs[0, 0].set_ylim(min(low - 2.0, 48.0), 100.5)  # shared by every panel; 50% shown
        _legend(fig, acts)
        figs["accuracy"] = fig

        fig = new_figure(figsize=(2.3 * len(tasks), 2.1 * len(acts) + 0.4))
        table = {
            (r["task"], r["activation"]): r
            for r in s["table"]
            if r["depth"] == 1 and r["protocol"] == "shared"
        }
        columns = np.atleast_1d(fig.subfigures(1, len(tasks)))
        for i, (sub, task) in enumerate(zip(columns, tasks, strict=True)):
            sub.suptitle(task, fontsize=11, weight="bold")
            axs = np.atleast_1d(sub.subplots(len(acts), 1))
            for j, act in enumerate(acts):
                plot_boundary(results, task, act, ax=axs[j])
                acc = table[task, act]["test_acc"]
                axs[j].set_title(f"held-out {_percent(acc)[0]:.1f}%", fontsize=8)
                if i == 0:
                    axs[j].set_ylabel(act, color=color_of(act), fontsize=11, weight="bold")
        fig.suptitle(
            "Decision boundaries at 1 hidden layer: shading = seed 0's P(class 1), blue 0 to red 1;"
            " black = its boundary;\ngrey = other seeds' boundaries; dots = seed 0's training set;"
            f" titles = mean held-out accuracy over {s['seeds']} seeds",
            fontsize=9,
        )
        figs["boundaries"] = fig

        # rows: tasks, columns: depth (three or so columns stay readable at ~800 px)
        fig, axs = _grid_figure(len(tasks), len(depths), (3.0, 2.0), sharex=True, sharey=True)
        for r, task in enumerate(tasks):
            for c, depth in enumerate(depths):
                ax = axs[r, c]
                plot_grad_trace(results, task, depth, ax=ax)
                ax.set_ylabel(f"{task}\n" + ax.get_ylabel() if c == 0 else "")
                ax.set_title(f"{depth} hidden layer{'s' * (depth > 1)}" if r == 0 else "")
                if r < len(tasks) - 1:
                    ax.set_xlabel("")
        _legend(fig, acts)
        fig.suptitle("First-layer gradient per epoch, by depth\n(geometric mean, 95% bands)")
        figs["grad_trace"] = fig

        deep = max(depths)
        cols = min(2, len(tasks))
        rows = -(-len(tasks) // cols)
        fig, axs = _grid_figure(rows, cols, (4.2, 2.6), sharey=True)
        for k in range(len(tasks), rows * cols):
            axs.flat[k].set_visible(False)
        for k, task in enumerate(tasks):
            ax = axs.flat[k]
            plot_grad_layers(results, task, deep, ax=ax)
            ax.set_title(task)
            if k % cols:
                ax.set_ylabel("")
        _legend(fig, acts)
        fig.suptitle(
            f"Gradient per layer at initialisation, {deep} hidden layers of {s['width']};\n"
            r"$\kappa$ = layer 1 over layer " + f"{deep} (dotted)"
        )
        figs["grad_layers"] = fig

        metrics = ("act/off_fraction", "act/saturated_pair_fraction")
        cols = [1, deep] if deep != 1 else [1]
        fig, axs = _grid_figure(len(metrics), len(cols), (4.4, 2.7), sharey="row")
        for r, metric in enumerate(metrics):
            top = max(_units_top(results, metric, depth) for depth in cols)
            for c, depth in enumerate(cols):
                plot_units(results, metric, depth, ax=axs[r, c], top=top)
                if r == 0:
                    axs[r, c].set_title(f"{depth} hidden layer{'s' * (depth > 1)}")
                if c:
                    axs[r, c].set_ylabel("")
        fig.suptitle(
            "Hidden units on the held-out inputs: hollow at initialisation, filled after training;"
            "\nrows share their y-axis"
        )
        _legend(fig, [a for a in acts])
        figs["units"] = fig
    return figs
