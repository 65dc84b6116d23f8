"""The report of the tiny-classifier lesson: Markdown built from its :class:`Results` alone.

Every number and every verdict below is read from ``results.summary`` (computed by
:func:`actlab.experiments.tiny_classifier.run`); nothing is recomputed from the arrays. Numbers
stored as NaN come back as None from a run folder's JSON: :func:`_f` reads both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.activations import get_activation
from actlab.experiments.base import Results
from actlab.probes import dead_kind
from actlab.report.format import num, ratio

__all__ = ["report"]


def report(results: Results) -> str:
    """The lesson's Markdown section, ending with its exercises."""
    from actlab.experiments.tiny_classifier.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = results.summary
    out = _intro(s) + _accuracy_section(s) + _gradient_section(s) + _units_section(s)
    return "\n".join(out) + "\n" + exercises_markdown(EXERCISES)


_TASK_TEXT = {
    "linear": "the lesson's task, $x \\sim \\mathcal{N}(0, I_2)$, class $[x_1 + x_2 > 0]$ "
    "(linearly separable)",
    "xor": "XOR-like quadrants, $x \\sim U[-1, 1]^2$, class $[x_1 x_2 > 0]$",
    "moons": "two interleaved half circles with Gaussian noise (sd 0.1)",
    "circles": "two concentric circles of radii 1 and 0.5 with Gaussian noise (sd 0.08)",
}


def _f(x: Any) -> float:
    """A stored number (None after a JSON round trip means NaN)."""
    return math.nan if x is None else float(x)


def _num(x: Any) -> str:
    return num(x, 2)


def _pct(ci: dict, bounds: bool = True) -> str:
    """A proportion's mean and 95% CI in percent, the interval clipped to [0, 100]."""
    mean, lo, hi = (100 * _f(ci[k]) for k in ("mean", "lo", "hi"))
    if math.isnan(mean):
        return "n/a"
    if not bounds or math.isnan(lo):
        return f"{mean:.1f}%"
    return f"{mean:.1f}% [{max(lo, 0.0):.1f}, {min(hi, 100.0):.1f}]"


def _pow(ci: dict) -> str:
    """A factor ``10^mean [10^lo, 10^hi]`` from a log10 mean and CI (``1/250``, ``$10^{-7}$``)."""
    mean, lo, hi = (_f(ci[k]) for k in ("mean", "lo", "hi"))
    if math.isnan(lo):
        return ratio(mean)
    return f"{ratio(mean)} [{ratio(lo)}, {ratio(hi)}]"


def _factor(x: float) -> str:
    """A ratio such as 0.004 as ``1/250``."""
    return ratio(math.log10(x)) if x > 0 else num(x)


def _and(items: list[str]) -> str:
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _layers(depth: int) -> str:
    return f"{depth} hidden layer{'s' * (depth != 1)}"


def _by_task(s: dict, depth: int = 1, protocol: str = "shared") -> dict[tuple[str, str], dict]:
    return {
        (r["task"], r["activation"]): r
        for r in s["table"]
        if r["depth"] == depth and r["protocol"] == protocol
    }


def _intro(s: dict) -> list[str]:
    rates = [r for r in s["learning_rates"] if r != s["lr"]]
    tuning = (
        f" At one hidden layer every member is also trained at learning rate "
        f"{_and([f'{r:g}' for r in rates])}; each activation's rate on a task is then picked by "
        f"its mean accuracy on {s['n_val']} validation points."
        if rates
        else ""
    )
    draw = "a fresh draw per seed" if s["resample_data"] else "one draw shared by every seed"
    hard = [t for t in s["tasks"] if t != "linear"]
    harder = f", on {_and(hard)} (which no straight line separates)" if hard else ""
    out = [
        "# Tiny classifiers: one small network per activation",
        "",
        "The classic lesson trains one 2 → 8 → 2 classifier per activation on 100 points "
        "labelled $x_1 + x_2 > 0$, once, and reads differences off the loss curves. Here every "
        f"comparison is repeated over {s['seeds']} seeds (within a seed every activation "
        f"starts from the same initial weights), measured on held-out points{harder}, and "
        f"with {_and([str(d) for d in s['depths']])} hidden layers of {s['width']} units.",
        "",
        "**Set-up.** The tasks:",
        "",
    ]
    out += [f"- **{t}**: {_TASK_TEXT.get(t, t)};" for t in s["tasks"]]
    out += [
        "",
        f"{s['n_train']} training and {s['n_test']} held-out points per task and seed ({draw}). "
        f"Cross-entropy, full-batch Adam at learning rate {s['lr']:g} for {s['epochs']} epochs, "
        f"initialisation `{s['init']}`.{tuning} Intervals are 95% Student-t intervals over "
        "seeds; two activations are said to *differ* only when Welch's t-test rejects equal "
        "means at the 5% level, and are otherwise *within noise*.",
        "",
        f"![Training and held-out loss per activation and task, {s['seeds']} seeds]"
        "(figures/loss_curves.png)",
        "",
    ]
    rows = _by_task(s)
    parts = []
    for t in s["tasks"]:
        final = {a: _f(rows[t, a]["train_loss"]["mean"]) for a in s["activations"]}
        lo, hi = min(final, key=final.get), max(final, key=final.get)
        parts.append(f"on {t} from {_num(final[lo])} ({lo}) to {_num(final[hi])} ({hi})")
    out += [
        f"After {s['epochs']} epochs the mean training loss goes {'; '.join(parts)}. "
        "A lower training loss is not yet a better classifier: the held-out accuracy decides.",
        "",
    ]
    return out


def _verdict_sentence(v: dict, rows: dict) -> str:
    task, best = v["task"], v["best"]
    acc = {a: _pct(rows[task, a]["test_acc"]) for a in v["ranking"]}
    if not v["differs_from_best"]:
        lo, hi = min(v["means"].values()), max(v["means"].values())
        return (
            f"On **{task}** the activations tie: every difference is within noise (means from "
            f"{100 * lo:.1f}% to {100 * hi:.1f}%)."
        )
    text = f"On **{task}**, {best} is best ({acc[best]})"
    if v["tied_with_best"]:
        verb = "is" if len(v["tied_with_best"]) == 1 else "are"
        text += f"; {_and(v['tied_with_best'])} {verb} within noise of it"
    worse = [f"{a} ({acc[a]})" for a in v["differs_from_best"]]
    return text + f"; {_and(worse)} {'is' if len(worse) == 1 else 'are'} lower."


def _accuracy_section(s: dict) -> list[str]:
    rows, acts, tasks = _by_task(s), s["activations"], s["tasks"]
    out = [
        "## Held-out accuracy",
        "",
        "![Held-out accuracy per task and activation, mean and 95% CI](figures/accuracy.png)",
        "",
        f"Held-out accuracy after {s['epochs']} epochs, {_layers(1)}, learning rate "
        f"{s['lr']:g} (mean [95% CI] over {s['seeds']} seeds):",
        "",
        "| task | " + " | ".join(acts) + " |",
        "|---|" + "---|" * len(acts),
    ]
    for t in tasks:
        out.append(f"| {t} | " + " | ".join(_pct(rows[t, a]["test_acc"]) for a in acts) + " |")
    shared = [v for v in s["verdicts"] if v["depth"] == 1 and v["protocol"] == "shared"]
    out += ["", *[f"- {_verdict_sentence(v, rows)}" for v in shared], ""]
    differ = [v["task"] for v in shared if v["differs_from_best"]]
    tie = [v["task"] for v in shared if not v["differs_from_best"]]
    summary = [f"the activations differ on {_and(differ)}"] if differ else []
    summary += [f"they tie on {_and(tie)}"] if tie else []
    out += [f"In short, with one shared learning rate {' and '.join(summary)}.", ""]

    tuned = [v for v in s["verdicts"] if v["depth"] == 1 and v["protocol"] == "tuned"]
    if tuned:
        trows = _by_task(s, 1, "tuned")
        out += [
            "**Is it the learning rate?** A ranking at one shared rate may only say which "
            "activation suits that rate. The rate each activation gets when tuned on the "
            "validation draw, and the held-out accuracy it then reaches:",
            "",
            "| task | " + " | ".join(acts) + " |",
            "|---|" + "---|" * len(acts),
        ]
        for t in tasks:
            cells = [f"{trows[t, a]['lr']:g}: {_pct(trows[t, a]['test_acc'], False)}" for a in acts]
            out.append(f"| {t} | " + " | ".join(cells) + " |")
        by_task = {v["task"]: v for v in shared}
        same, changed = [], []
        for v in tuned:
            old = by_task[v["task"]]
            keep = set(old["differs_from_best"]) == set(v["differs_from_best"]) and (
                old["best"] == v["best"] or not v["differs_from_best"]
            )
            (same if keep else changed).append(v)
        text = []
        if same:
            text.append(
                f"With tuned rates the verdict is unchanged on {_and([v['task'] for v in same])}."
            )
        if changed:
            text.append(f"It changes on {_and([v['task'] for v in changed])}:")
        out += ["", " ".join(text), ""]
        if changed:
            out += [f"- {_verdict_sentence(v, trows)}" for v in changed] + [""]
    smooth = [a for a in acts if not get_activation(a).piecewise_linear]
    linear = [a for a in acts if get_activation(a).piecewise_linear]
    shapes = []
    if linear:
        shapes.append(
            f"with a piecewise-linear activation ({_and(linear)}) the boundary is made of "
            "straight pieces"
        )
    if smooth:
        shapes.append(f"with a smooth one ({_and(smooth)}) it is curved")
    out += [
        "![Decision boundaries: one row per activation, one column per task]"
        "(figures/boundaries.png)",
        "",
        "The decision boundaries show *how* each network splits the plane. The shading is "
        "seed 0's probability of class 1 with its boundary in black; the grey lines are the "
        f"boundaries of the other {s['seeds'] - 1} seeds (where they spread, the boundary "
        "depends on the initial weights and the draw); the dots are seed 0's training points. "
        + "; ".join(shapes).capitalize()
        + ".",
        "",
    ]
    return out


def _gradient_section(s: dict) -> list[str]:
    depths, acts = s["depths"], s["activations"]
    out = [
        "## The gradient trace, and what depth does to it",
        "",
        "The lesson plots the mean absolute gradient of the first layer's weights, "
        r"$\overline{|\partial L / \partial W_1|}$, at every epoch. Here is that trace per "
        "activation (geometric mean over seeds, 95% band), at each depth:",
        "",
        "![First-layer gradient per epoch, rows: depth, columns: task](figures/grad_trace.png)",
        "",
        "Averaged over training (the mean of $\\log_{10}$ per seed), the smallest and the "
        "largest first-layer gradient, and their ratio:",
        "",
    ]
    for depth in depths:
        parts = []
        for v in (g for g in s["grad_verdicts"] if g["depth"] == depth):
            low, high = v["best"], v["ranking"][-1]
            factor = 10 ** (v["means"][high] - v["means"][low])
            sig = "" if high in v["differs_from_best"] else " (within noise)"
            parts.append(f"on {v['task']} {low}'s, {_num(factor)}× below {high}'s{sig}")
        out.append(f"- {_layers(depth)}: " + "; ".join(parts) + ".")
    out += ["", "![Gradient per layer at initialisation](figures/grad_layers.png)", ""]
    out += [
        "A trace of one layer cannot tell a gradient that *vanishes on its way back* from one "
        "that is small everywhere. The ratio of the first layer's gradient to the output "
        "layer's at initialisation can (geometric mean over tasks and seeds, 95% CI):",
        "",
        "| activation | " + " | ".join(_layers(d) for d in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    trace = {r["activation"]: r for r in s["depth_trace"]}
    for a in acts:
        out.append(f"| {a} | " + " | ".join(_pow(c) for c in trace[a]["ratio_init"]) + " |")
    logs = {a: np.array([_f(c["mean"]) for c in trace[a]["ratio_init"]]) for a in acts}
    twins = [
        f"{a} and {b}"
        for i, a in enumerate(acts)
        for b in acts[i + 1 :]
        if np.all(np.abs(logs[a] - logs[b]) < 0.01)  # within 2% at every depth
    ]
    if twins:
        out += [
            "",
            f"The curves of {_and(twins)} overlap in the figure: same initial weights, and "
            "their ratios agree within 2% at every depth.",
        ]
    shallow = {a: 10 ** _f(trace[a]["ratio_init"][0]["mean"]) for a in acts}
    deep = {a: 10 ** _f(trace[a]["ratio_init"][-1]["mean"]) for a in acts}
    falls = [a for a in acts if trace[a]["differs"] and deep[a] < shallow[a]]
    text = (
        f"With {_layers(depths[0])} the first layer receives between "
        f"{_factor(min(shallow.values()))} and {_factor(max(shallow.values()))} of the output "
        "layer's gradient, depending on the activation."
    )
    if len(depths) > 1:
        worst = min(acts, key=deep.get)
        if falls:
            text += (
                f" From {depths[0]} to {_layers(depths[-1])} the ratio falls significantly for "
                + _and([f"{a} (by a factor {_num(shallow[a] / deep[a])})" for a in falls])
                + f"; at {_layers(depths[-1])} the smallest is {worst}'s, {_factor(deep[worst])}."
            )
        else:
            text += f" It does not fall significantly up to {_layers(depths[-1])}."
        out += ["", text, ""]
        changes = [c for c in s["depth_changes"] if c["differs"]]
        down = [c for c in changes if _f(c["deep"]["mean"]) < _f(c["shallow"]["mean"])]
        up = [c for c in changes if c not in down]

        def listing(cs: list[dict]) -> str:
            return _and(
                [
                    f"{c['activation']} on {c['task']} ({_pct(c['shallow'], False)} → "
                    f"{_pct(c['deep'], False)})"
                    for c in cs
                ]
            )

        text = f"From {depths[0]} to {_layers(depths[-1])}, held-out accuracy "
        if not changes:
            text += "changes beyond noise for no activation and task."
        else:
            bits = [f"falls significantly for {listing(down)}"] if down else []
            bits += [f"rises significantly for {listing(up)}"] if up else []
            text += "; it ".join(bits) + "; every other change is within noise."
        out += [text, ""]
        lost = sorted({c["activation"] for c in down} & set(falls))
        if falls:
            out += [
                f"So the lesson's claim, tested where it applies: at {_layers(depths[0])} the "
                "activations differ in the *scale* of the first layer's gradient, and the first "
                "layer still gets at least "
                f"{_factor(min(shallow.values()))} of the output layer's; "
                f"at {_layers(depths[-1])} {worst}'s first layer gets {_factor(deep[worst])} of it"
                + (
                    f", and this comes with a loss of held-out accuracy for {_and(lost)}."
                    if lost
                    else ", without a significant loss of held-out accuracy in this budget."
                ),
                "",
            ]
        saturated = [
            _f(_by_task(s, depths[-1])[t, worst]["units"]["act/saturated_fraction"][0]["mean"])
            for t in s["tasks"]
        ]
        slope = _f(s["max_abs_deriv"][worst])
        if falls and worst in falls and slope < 1 and all(v < 0.01 for v in saturated):
            out += [
                f"Is {worst}'s vanishing gradient a saturation effect? Not here: at "
                "initialisation "
                + (
                    f"at most {100 * max(saturated):.1f}% of its hidden units are"
                    if max(saturated) > 0
                    else "none of its hidden units is"
                )
                + " saturated on any task. Each layer multiplies the gradient by "
                f"$\\varphi'(z) \\le {_num(slope)}$ (times the weights), "
                "and the product of such factors shrinks geometrically with depth.",
                "",
            ]
    else:
        out += ["", text, ""]
    return out


def _units_section(s: dict) -> list[str]:
    depths, acts, tasks = s["depths"], s["activations"], s["tasks"]
    probes = s["probe_epochs"]
    out = [
        "## Dead and saturated units",
        "",
        "The lesson names dead ReLU units but never counts them. Measured on the held-out "
        "inputs: a ReLU unit is *dead* when its output is 0 on every input, a LeakyReLU unit "
        "*inactive* when its pre-activation is negative on every input, a tanh (sigmoid) unit "
        "*saturated* when $|h| > 0.99$ ($h$ outside $[0.01, 0.99]$) on every input. Fractions "
        f"are averaged over hidden layers, then over seeds: at epoch {probes[0]} → epoch "
        f"{probes[-1]}.",
        "",
        "![Dead, inactive and saturated hidden units](figures/units.png)",
        "",
    ]
    keys = ("act/off_fraction", "act/saturated_fraction")
    shown = sorted({depths[0], depths[-1]})
    never, sentences = [], []
    for d in shown:
        rows = _by_task(s, d)
        out += [
            f"| {_layers(d)} | units | " + " | ".join(tasks) + " |",
            "|---|---|" + "---|" * len(tasks),
        ]
        for a in acts:
            for key in keys:
                kind = dead_kind(get_activation(a))
                name = "saturated" if key != keys[0] else (kind or "dead")
                cells = [rows[t, a]["units"][key] for t in tasks]
                if all(math.isnan(_f(c[-1]["mean"])) for c in cells):
                    continue  # the probe does not apply to this activation
                out.append(
                    f"| {a} | {name} | "
                    + " | ".join(f"{_pct(c[0], False)} → {_pct(c[-1], False)}" for c in cells)
                    + " |"
                )
                final = {t: _f(c[-1]["mean"]) for t, c in zip(tasks, cells, strict=True)}
                top = max(tasks, key=final.get)
                if final[top] == 0:
                    never.append(f"{a} ({_layers(d)})")
                else:
                    sentences.append(
                        f"{a} with {_layers(d)}: up to {100 * final[top]:.1f}% {name} units "
                        f"(on {top})"
                    )
        out.append("")
    if sentences:
        out += ["After training: " + "; ".join(sentences) + ".", ""]
    if never:
        out += [f"No unit is dead, inactive or saturated after training for {_and(never)}.", ""]
    return out
