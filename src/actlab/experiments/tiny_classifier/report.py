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
from actlab.report.format import num, ratio, ratio_ci

__all__ = ["report", "end_state"]


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


def end_state(change: dict, threshold: float) -> str:
    """The end of training in words, from the relative change of the training loss over the
    last epochs (a :func:`actlab.stats.mean_ci` dict over seeds): "still falling" when the mean
    fell by more than ``threshold`` and the whole interval lies below 0; "rising" the other way
    round; "flat" when the whole interval lies within ``threshold`` of 0; otherwise "unsettled"
    (the seeds do not tell a flat end from a moving one)."""
    mean, lo, hi = (_f(change.get(k)) for k in ("mean", "lo", "hi"))
    if math.isnan(mean):
        return "unknown"
    if math.isnan(lo) or math.isnan(hi):
        return "unsettled"
    if mean < -threshold and hi < 0:
        return "still falling"
    if mean > threshold and lo > 0:
        return "rising"
    if -threshold <= lo and hi <= threshold:
        return "flat"
    return "unsettled"


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
    return ratio_ci({k: _f(ci[k]) for k in ("mean", "lo", "hi")})


def _ci(ci: dict) -> str:
    """A mean and its 95% interval, ``0.031 [0.024, 0.038]``."""
    mean, lo, hi = (_f(ci[k]) for k in ("mean", "lo", "hi"))
    if math.isnan(lo):
        return _num(mean)
    return f"{_num(mean)} [{_num(lo)}, {_num(hi)}]"


_POOLED = (
    "[geometric mean](#term-geometric-mean) [95% interval]: per seed the mean of "
    "$\\log_{10}$ over the tasks, then the interval over the seeds, since a seed's tasks share "
    "its initial weights and are not independent draws"
)


def _edge_sentence(s: dict) -> str:
    """Which tuned picks are not interior (at an edge of the rates tried, or at a bound)."""
    flagged = [r for r in s["tuned_lr"] if r["status"] != "interior"]
    if not flagged:
        return (
            "Every pick is interior: a smaller and a larger rate were tried and both scored "
            "worse on the validation draw."
        )
    names = _and([f"{r['activation']} on {r['task']} ({r['lr']:g})" for r in flagged])
    n, k = len(s["tuned_lr"]), len(flagged)
    rest = {0: "", 1: "; the other pick has a worse rate on each side"}.get(
        n - k, "; the other picks have a worse rate on each side"
    )
    return (
        f"{k} of {n} picks {'is' if k == 1 else 'are'} not interior: {names}. For "
        f"{'it' if k == 1 else 'them'} the best rate may lie beyond the rates tried, so the "
        f"tuned accuracy there may underestimate what a wider grid would reach{rest}."
    )


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
        f"its mean accuracy on {s['n_val']} validation points. Where the pick is the smallest "
        f"or the largest rate tried, one more rate a factor {_num(s['lr_factor'])} beyond it is "
        f"tried (at most {s['lr_extend']} times, within [{s['lr_min']:g}, {s['lr_max']:g}])."
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
        f"comparison is repeated over {s['seeds']} [seeds](#term-seed) (within a seed every "
        "activation starts from the same initial weights), measured on "
        f"[held-out](#term-held-out) points{harder}, and "
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
        f"initialisation `{s['init']}`"
        + (
            " (PyTorch's [default initialisation](#term-default-init))"
            if s["init"] == "torch"
            else ""
        )
        + f".{tuning} Intervals are "
        "[95% intervals](#term-t-interval) over seeds"
        + (
            " (a seed fixes both the initial weights and the data draw, so they cover both)"
            if s["resample_data"]
            else " (a seed fixes the initial weights; the data draw is the same for all)"
        )
        + "; two activations (or depths) are said to *differ* only when a "
        "[paired test](#term-paired) over the seeds separates them at the 5% level, and are "
        "otherwise *within noise*. The test is paired because both sides of every comparison "
        "were run from the same seeds"
        + (" (the same data draw, " if s["resample_data"] else " (")
        + "the same initial weights; across depths the same first layer), so it takes the "
        "per-seed differences, in which what a seed gives both sides cancels.",
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
    text = f"On **{task}**, {best} has the highest mean ({acc[best]})"
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
    out += _budget_sentence(s)

    tuned = [v for v in s["verdicts"] if v["depth"] == 1 and v["protocol"] == "tuned"]
    if tuned:
        trows = _by_task(s, 1, "tuned")
        out += [
            "**Is it the learning rate?** A ranking at one shared rate may only say which "
            "activation suits that rate. The rate each activation gets when tuned on the "
            "validation draw, where it sits among the rates tried, and the held-out accuracy and "
            f"cross-entropy it then reaches (mean [95% interval] over {s['seeds']} seeds):",
            "",
            "| task | activation | rate | rates tried | pick | held-out accuracy | "
            "held-out cross-entropy |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in tasks:
            for a in acts:
                r = trows[t, a]
                tried = ", ".join(f"{x:g}" for x in r["lr_tried"])
                out.append(
                    f"| {t} | {a} | {r['lr']:g} | {tried} | {r['lr_status_text']} | "
                    f"{_pct(r['test_acc'])} | {_ci(r['test_loss'])} |"
                )
        out += ["", _edge_sentence(s), ""]
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
        out += [" ".join(text), ""]
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


def _budget_sentence(s: dict) -> list[str]:
    """Whether the lesson's networks (1 hidden layer, shared rate) had stopped learning at the
    end: the training loss's relative change over the last epochs, per (activation, task)."""
    rows, thr, w = _by_task(s), s.get("flat_threshold"), s.get("tail_epochs")
    if thr is None or w is None:  # a run saved before the check existed
        return []
    pairs = [(t, a) for t in s["tasks"] for a in s["activations"]]
    state = {p: end_state(rows[p].get("train_loss_change", {}), thr) for p in pairs}
    change = {p: _f(rows[p].get("train_loss_change", {}).get("mean")) for p in pairs}

    def names(which: list) -> str:
        return _and([f"{a} on {t}" for t, a in which])

    falling = [p for p in pairs if state[p] == "still falling"]
    flat = [p for p in pairs if state[p] == "flat"]
    other = [p for p in pairs if p not in falling and p not in flat]
    start = s["epochs"] - w
    text = (
        f"**Converged, or out of budget?** The training loss at epoch {s['epochs']} against "
        f"epoch {start} (per seed, its relative change; the verdict needs the whole 95% interval "
        f"below 0 for *still falling* and within ±{100 * thr:.0f}% for *flat*): "
    )
    if falling:
        lo = min(change[p] for p in falling)
        hi = max(change[p] for p in falling)
        text += (
            f"still falling for {len(falling)} of {len(pairs)} (activation, task) pairs (by "
            f"{100 * -hi:.0f}% to {100 * -lo:.0f}% over the last {w} epochs)"
        )
        if len(falling) <= len(pairs) // 2:
            text += f": {names(falling)}"
    if flat:
        text += (
            ("; " if falling else "")
            + "flat for "
            + _and(
                [
                    f"{a} on {t} (training accuracy {_pct(rows[t, a]['train_acc'], False)})"
                    for t, a in flat
                ]
            )
        )
    if other:
        text += ("; " if falling or flat else "") + f"not settled by the seeds for {names(other)}"
    text += "."
    if falling:
        text += (
            f" The comparisons above are taken where the budget of {s['epochs']} epochs ran "
            "out, while those networks were still learning: they rank how far each activation "
            "got at this rate, and a longer run could change them."
        )
    if flat:
        text += (
            " A flat loss is not a solved task: a training accuracy well below 100% means the "
            "network sits on a plateau."
        )
    return [text, ""]


def _kappa_sentence(s: dict) -> str:
    """Whether the activations that lose held-out accuracy with depth are the ones whose first
    layer gets the weakest gradient (the smallest kappa at the deepest network)."""
    deep = s["depths"][-1]
    trace = {r["activation"]: r for r in s["depth_trace"]}
    kappa = {a: _f(trace[a]["kappa_init"][-1]["mean"]) for a in s["activations"]}
    falls = {
        c["activation"]
        for c in s["depth_changes"]
        if c["differs"] and _f(c["deep"]["mean"]) < _f(c["shallow"]["mean"])
    }
    lost = [a for a in s["activations"] if a in falls]
    kept = [a for a in s["activations"] if a not in falls]
    if not lost:
        return (
            f"No activation loses held-out accuracy significantly at {_layers(deep)}, whatever "
            "its $\\kappa$: in this budget a small $\\kappa$ does not cost accuracy."
        )
    counter = [
        (a, b) for a in lost for b in kept if kappa[b] < kappa[a]
    ]  # b keeps its accuracy with a weaker first-layer gradient than a, which loses it
    if counter:
        bits = []
        for a in lost:
            bs = [b for b in kept if kappa[b] < kappa[a]]
            if not bs:
                continue
            one = len(bs) == 1
            bits.append(
                f"{_and(bs)} {'keeps its' if one else 'keep their'} accuracy although "
                f"{'its' if one else 'their'} first layer gets a smaller share ($\\kappa$ = "
                + _and([ratio(kappa[b]) for b in bs])
                + f") than {a}'s ({ratio(kappa[a])})"
            )
        return (
            "Does the weaker first-layer gradient explain the loss of accuracy? Not alone: "
            f"{_and(lost)} {'loses' if len(lost) == 1 else 'lose'} accuracy, yet "
            + "; and ".join(bits)
            + ". What the numbers support is a smaller first-layer gradient at depth "
            "for every activation, and a loss of accuracy for some; they do not show that the "
            "one causes the other."
        )
    return (
        f"The activations that lose accuracy ({_and(lost)}) are also those whose first layer "
        f"gets the smallest share at {_layers(deep)} ("
        + "; ".join(f"{a} {ratio(kappa[a])}" for a in lost)
        + (f", against {'; '.join(f'{b} {ratio(kappa[b])}' for b in kept)}" if kept else "")
        + f"). With {len(s['activations'])} activations this is an association, not a proof "
        "that the weak gradient causes the loss."
    )


def _saturation_sentence(s: dict) -> list[str]:
    """At the deepest network at initialisation, per bounded activation: the share of units
    saturated on every input and the share of (unit, input) pairs in the saturated band."""
    deep, probes = s["depths"][-1], s["probe_epochs"]
    if probes[0] != 0:
        return []
    rows = _by_task(s, deep)
    parts, small = [], True
    for a in s["activations"]:
        every = {
            t: _f(rows[t, a]["units"]["act/saturated_fraction"][0]["mean"]) for t in s["tasks"]
        }
        pairs = {
            t: _f(rows[t, a]["units"]["act/saturated_pair_fraction"][0]["mean"]) for t in s["tasks"]
        }
        if all(math.isnan(v) for v in pairs.values()):
            continue
        top = max(s["tasks"], key=lambda t: pairs[t])
        small = small and pairs[top] < 0.01
        if pairs[top] == 0 and max(every.values()) == 0:
            parts.append(f"{a}: no unit on every input, and no (unit, input) pair on any task")
            continue
        top_every = max(every.values())
        units = (
            "no unit on every input"
            if top_every == 0
            else f"at most {_num(100 * top_every)}% of the units on every input"
        )
        parts.append(
            f"{a}: {units}, and {_num(100 * pairs[top])}% of the (unit, input) pairs (on {top})"
        )
    if not parts:
        return []
    verdict = (
        "so saturation does not explain the small gradients at initialisation."
        if small
        else "so part of the inputs already fall on the flat part at initialisation."
    )
    return [
        f"Are the small gradients of the bounded activations a saturation effect? At "
        f"initialisation, with {_layers(deep)}, the [saturated](#term-saturated) share is for "
        + "; ".join(parts)
        + f"; {verdict}",
        "",
    ]


def _init_section(s: dict) -> list[str]:
    """What the initialisation predicts for the spread per layer, beside the measured factor."""
    if not s["init_trace"]:
        return []
    deep, width = s["depths"][-1], s["width"]
    init = s["init"]
    named = {
        "torch": "PyTorch's [default initialisation](#term-default-init)",
        "xavier": "[Xavier initialisation](#term-xavier-init)",
        "he": "[He initialisation](#term-he-init)",
    }.get(init, f"the `{init}` initialisation")
    out = [
        "**The initialisation is part of the story.** This run uses "
        f"{named}: the weights of each {width} → {width} layer have "
        f"$\\mathrm{{Var}}(w) = {_num(s['init_weight_var'])}$ (fan-in {width}). When the "
        "pre-activations of a layer vary little over the inputs and the biases are ignored, one "
        "such layer multiplies their spread over the inputs, and the backward signal $\\delta$, "
        "by $\\rho = \\sqrt{\\text{fan-in} \\cdot \\mathrm{Var}(w) \\cdot "
        "E[\\varphi'(z)^2]}$ with $z$ near 0 ($E[\\varphi'(z)^2]$ is 1/2 for ReLU, "
        "$\\varphi'(0)^2$ for a smooth activation). Predicted beside measured, per layer at "
        f"{_layers(deep)}, from layer 1 to layer {deep}, at initialisation ({_POOLED}):",
        "",
        "| activation | predicted $\\rho$ | measured: spread of $z$ | measured: $\\delta$ | "
        "$\\kappa$ per layer |",
        "|---|---|---|---|---|",
    ]
    trace = {r["activation"]: r for r in s["depth_trace"]}
    for r in s["init_trace"]:
        a = r["activation"]
        out.append(
            f"| {a} | {_num(_f(r['predicted']))} | {_pow(r['spread_per_layer'])} | "
            f"{_pow(r['delta_per_layer'])} | {_pow(trace[a]['kappa_per_layer'][-1])} |"
        )
    out.append("")
    pred = {r["activation"]: _f(r["predicted"]) for r in s["init_trace"]}
    meas = {r["activation"]: 10 ** _f(r["spread_per_layer"]["mean"]) for r in s["init_trace"]}
    over = [meas[a] / pred[a] for a in pred if pred[a] > 0 and math.isfinite(meas[a])]
    names = list(pred)
    same_order = all(
        (pred[a] - pred[b]) * (meas[a] - meas[b]) >= 0 or abs(pred[a] - pred[b]) < 1e-3
        for a in names
        for b in names
    )
    text = (
        (
            f"The measured spread factors are {_num(min(over))} to {_num(max(over))} times the "
            "predicted ones, "
            + ("in the predicted order. " if same_order else "not in the predicted order. ")
            if over
            else ""
        )
        + "The weight gradient "
        "$\\partial L/\\partial W_l = \\delta_l h_{l-1}^\\top$ multiplies the backward "
        "signal by the layer's input, so $\\kappa$ per layer is not $\\rho$ itself."
    )
    relu = [r for r in s["init_trace"] if r["off_deepest_init"] is not None]
    if relu:
        text += (
            " Once the spread has shrunk, a deep unit's $z$ is nearly its bias, the same for "
            "every input: a unit with a negative bias is [dead](#term-dead) (ReLU) or "
            "[inactive](#term-inactive) (leaky ReLU) on every input, and the biases are "
            f"symmetric about 0. At initialisation, in layer {deep} (mean over the tasks per "
            "seed, interval over the seeds): "
            + "; ".join(f"{r['activation']} {_pct(r['off_deepest_init'])}" for r in relu)
            + "."
        )
    he = [r for r in s["init_trace"] if abs(_f(r["predicted_he"]) - _f(r["predicted"])) > 1e-9]
    trace = {r["activation"]: r for r in s["depth_trace"]}
    shrinks = [
        r["activation"]
        for r in relu
        if _f(trace[r["activation"]]["kappa_init"][-1]["hi"]) < 0  # kappa < 1, whole interval
    ]
    if he:
        text += (
            (
                f" So the shrinking of the {_and(shrinks)} gradients with depth, and the dead "
                "units at initialisation, are a property of this initialisation as much as of "
                "the activation: "
                if shrinks
                else " "
            )
            + "[He initialisation](#term-he-init) would predict $\\rho$ = "
            + "; ".join(f"{r['activation']} {_num(_f(r['predicted_he']))}" for r in he)
            + " (rerun with `--set init=he`). The next chapter, deep MLPs, measures this "
            "collapse layer by layer."
        )
    out += [text, ""]
    return out


def _depth_confounds(s: dict, down: list[dict]) -> str:
    """What else changes with the depth (parameters, a rate and budget chosen for one hidden
    layer, the initialisation), and, per significant fall, whether the deep network fitted its
    own training data (under-trained) or only does worse on held-out points."""
    depths, n_params = s["depths"], s.get("n_params")
    shallow, deep = depths[0], depths[-1]
    text = " This comparison changes more than the depth: "
    if n_params:
        text += (
            f"with {_layers(deep)} the network has {n_params[-1]} parameters against "
            f"{n_params[0]} (exercise 1), "
        )
    text += (
        f"it starts from the same `{s['init']}` initialisation, under which the spread of the "
        "signal changes by $\\rho$ per layer (above), and it trains for the same "
        f"{s['epochs']} epochs at the shared rate {s['lr']:g}, which was never tuned for it"
        + (f" (rates were tuned at {_layers(shallow)} only)" if s["tuned_lr"] else "")
        + "."
    )
    under, worse = [], []
    for c in down:
        if c.get("deep_train_acc") is None:
            continue
        fit = _f(c["deep_train_acc"]["mean"])
        name = f"{c['activation']} on {c['task']} (training accuracy {100 * fit:.1f}%)"
        (under if fit < _f(c["shallow"]["mean"]) else worse).append(name)
    if under:
        one = len(under) == 1
        text += (
            f" Where it falls, the deep network fits even its own training data worse than the "
            f"network with {_layers(shallow)} classifies held-out points: {_and(under)}. "
            f"{'It is' if one else 'They are'} under-trained in this budget, not over-fitted: "
            f"the fall measures this initialisation, rate and number of epochs, not what "
            f"{_layers(deep)} can reach."
        )
    if worse:
        text += (
            f" {_and(worse)} {'fits' if len(worse) == 1 else 'fit'} the training data at "
            f"least as well as the network with {_layers(shallow)} does held-out points: "
            "there the loss is on unseen points only."
        )
    return text


def _gradient_section(s: dict) -> list[str]:
    depths, acts = s["depths"], s["activations"]
    out = [
        "## The gradient trace, and what depth does to it",
        "",
        "The lesson plots the mean absolute gradient of the first layer's weights, "
        r"$\overline{|\partial L / \partial W_1|}$, at every epoch. Here is that trace per "
        "activation ([geometric mean over seeds](#term-geometric-mean), 95% band), at each "
        "depth:",
        "",
        "![First-layer gradient per epoch, rows: task, columns: depth](figures/grad_trace.png)",
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
    out.append("")
    deep_depths = [d for d in depths if d >= 2]
    if not deep_depths:
        return out
    deep = deep_depths[-1]
    out += [
        "![Gradient per layer at initialisation](figures/grad_layers.png)",
        "",
        "A trace of one layer cannot tell a gradient that *vanishes on its way back* from one "
        "that is small everywhere. A ratio between layers can: as in the deep-MLP chapter, "
        "$\\kappa$ is the first layer's mean $|\\partial L/\\partial W_1|$ divided by that of "
        "the last hidden layer's weights $W_D$ (with $D$ hidden layers; the output layer is "
        "not the reference), at initialisation. With one hidden layer $\\kappa = 1$ by "
        f"definition. In the table, the {_POOLED}:",
        "",
        "| activation | " + " | ".join(_layers(d) for d in deep_depths) + " |",
        "|---|" + "---|" * len(deep_depths),
    ]
    trace = {r["activation"]: r for r in s["depth_trace"]}
    for a in acts:
        out.append(f"| {a} | " + " | ".join(_pow(c) for c in trace[a]["kappa_init"]) + " |")
    logs = {a: np.array([_f(c["mean"]) for c in trace[a]["kappa_init"]]) for a in acts}
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
    kappa = {a: _f(trace[a]["kappa_init"][-1]["mean"]) for a in acts}
    order = sorted(acts, key=kappa.get)
    text = (
        f"At {_layers(deep)} the first layer gets from {ratio(kappa[order[0]])} ({order[0]}) "
        f"to {ratio(kappa[order[-1]])} ({order[-1]}) of the last hidden layer's gradient."
    )
    if len(deep_depths) > 1:
        first = deep_depths[0]
        falls = [a for a in acts if trace[a]["differs"] and logs[a][-1] < logs[a][0]]
        if falls:
            text += (
                f" From {first} to {_layers(deep)} $\\kappa$ falls significantly for "
                + _and(
                    [f"{a} (by a factor {_num(10 ** (logs[a][0] - logs[a][-1]))})" for a in falls]
                )
                + "."
            )
        else:
            text += f" From {first} to {_layers(deep)} it does not fall significantly."
    out += ["", text, ""]
    out += _init_section(s)
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

    text = f"From {depths[0]} to {_layers(deep)}, held-out accuracy "
    if not changes:
        text += "changes beyond noise for no activation and task."
    else:
        bits = [f"falls significantly for {listing(down)}"] if down else []
        bits += [f"rises significantly for {listing(up)}"] if up else []
        text += "; it ".join(bits) + "; every other change is within noise."
    out += [text + _depth_confounds(s, down), "", _kappa_sentence(s), ""]
    out += _saturation_sentence(s)
    return out


def _units_section(s: dict) -> list[str]:
    depths, acts, tasks = s["depths"], s["activations"], s["tasks"]
    probes = s["probe_epochs"]
    out = [
        "## Dead and saturated units",
        "",
        "The lesson names dead ReLU units but never counts them. Measured on the held-out "
        "inputs, with the tutorial's one threshold each: a ReLU unit is [dead](#term-dead), a "
        "leaky ReLU unit [inactive](#term-inactive), a tanh or sigmoid unit "
        "[saturated](#term-saturated) on every input. Because a unit counts as saturated only "
        "when it is in the band on *every* input, the table also gives the per-input share: "
        "the share of (unit, input) pairs in the saturated band. Fractions are averaged over "
        "hidden layers, then over seeds: at epoch "
        f"{probes[0]} → epoch {probes[-1]}.",
        "",
        "![Dead, inactive and saturated hidden units](figures/units.png)",
        "",
    ]
    keys = ("act/off_fraction", "act/saturated_fraction", "act/saturated_pair_fraction")
    shown = sorted({depths[0], depths[-1]})
    never, sentences = [], []
    for d in shown:
        rows = _by_task(s, d)
        out += [
            f"| {_layers(d)} | units | " + " | ".join(tasks) + " |",
            "|---|---|" + "---|" * len(tasks),
        ]
        for a in acts:
            zero = True
            for key in keys:
                kind = dead_kind(get_activation(a))
                name = {
                    "act/off_fraction": kind or "dead",
                    "act/saturated_fraction": "saturated (every input)",
                    "act/saturated_pair_fraction": "saturated (per input)",
                }[key]
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
                if final[top] > 0:
                    zero = False
                    what = (
                        "of the (unit, input) pairs saturated"
                        if key.endswith("pair_fraction")
                        else f"of the units {name.replace(' (every input)', ' on every input')}"
                    )
                    top_ci = cells[tasks.index(top)][-1]
                    sentences.append(
                        f"{a} with {_layers(d)}: up to {_pct(top_ci)} {what} (on {top})"
                    )
            if zero:
                never.append(f"{a} ({_layers(d)})")
        out.append("")
    if sentences:
        out += [
            "After training (mean [95% interval] over seeds): " + "; ".join(sentences) + ".",
            "",
        ]
    if never:
        out += [
            f"No unit is dead, inactive or saturated after training for {_and(never)} (for a "
            "bounded activation: not even one (unit, input) pair in the band).",
            "",
        ]
    return out
