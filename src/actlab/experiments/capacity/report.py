"""The capacity report: Markdown whose every number and verdict comes from the run's results.

Errors are test MSE relative to the target's variance, as geometric means over seeds with 95%
intervals (the summary's :func:`actlab.stats.mean_ci` of ``log10``); "within noise" wherever
the paired t-test on the per-seed ``log10`` errors does not separate two results (the same seed
gives two activations, or two shapes, the same data draw).
"""

from __future__ import annotations

import math
from typing import Any

from actlab.experiments.base import Results
from actlab.report.format import num, pct, ratio, ratio_ci

__all__ = [
    "report",
    "err_text",
    "best_text",
    "pairs_text",
    "chance_text",
    "depth1_text",
    "per_neuron_text",
    "trained_text",
    "lr_text",
    "sawtooth_text",
    "deep_narrow_text",
    "identity_text",
    "pick_table",
    "transfer_text",
]

# A separated matched pair whose errors differ by less than this factor is named as a small
# difference: with the same seed's data both shapes can converge to nearly the same fit (the
# identity networks, both at the best affine fit), and the paired test then separates a tiny,
# consistent gap that says nothing about depth.
SMALL_FACTOR = 1.1

INITS = {
    "torch": "[default initialisation](#term-default-init)",
    "xavier": "[Xavier initialisation](#term-xavier-init)",
    "he": "[He initialisation](#term-he-init)",
}


OUTCOMES = {
    "deeper": "deeper better",
    "shallower": "shallower better",
    "within noise": "within noise",
}


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, float | int) and math.isfinite(x)


def err_text(stat: dict[str, float]) -> str:
    """A geometric-mean error from the mean and interval of its ``log10``: ``0.012 [0.008,
    0.02]``; ``n/a`` when no seed gave a finite error."""
    if not _finite(stat.get("mean")):
        return "n/a"
    mid = num(10 ** stat["mean"], 2)
    if not (_finite(stat.get("lo")) and _finite(stat.get("hi"))):
        return mid
    return f"{mid} [{num(10 ** stat['lo'], 2)}, {num(10 ** stat['hi'], 2)}]"


def _list(names: list[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def best_text(verdict: dict[str, Any], errors: dict[str, dict]) -> str:
    """The verdict of one (target, shape): the best activation and its error, those within noise
    of it, and those worse. ``errors``: activation -> its ``log10_error`` stat."""
    best = verdict["best"]
    tied, worse = verdict["tied_with_best"], verdict["differs_from_best"]
    if not _finite(verdict["means"][best]):
        return "no activation gave a finite error"
    out = f"**{best}** has the lowest measured error ({err_text(errors[best])})"
    if tied and not worse:
        return out + f", but every other activation is within noise of it ({_list(tied)})"
    if tied:
        out += f"; {_list(tied)} {'is' if len(tied) == 1 else 'are'} within noise of it"
    else:
        out += " and differs from every other activation"
    if worse and tied:
        out += f"; {_list(worse)} {'is' if len(worse) == 1 else 'are'} worse"
    if worse:
        out += (
            " (paired test at 5% for each comparison with the best, not corrected for their number)"
        )
    return out


def identity_text(s: dict) -> str:
    """The identity networks at the largest shape against the best affine fit (the error any
    stack of affine layers can reach at best), per target: inside the 95% interval or not, and
    by what factor they differ. '' when identity is not in the run."""
    if "identity" not in s["activations"]:
        return ""
    shape = (max(s["depths"]), max(s["widths"]))
    errs = _errors(s, "identity", shape, by="target")
    inside, outside = [], []
    for tgt in s["targets"]:
        e, floor = errs[tgt], s["affine_floor"][tgt]
        label = s["target_labels"][tgt]
        if not _finite(e["mean"]):
            outside.append(f"{label}: no finite error")
        elif _finite(e["lo"]) and 10 ** e["lo"] <= floor <= 10 ** e["hi"]:
            inside.append(label)
        else:
            outside.append(
                f"{label}: measured {err_text(e)} against {num(floor, 2)} "
                f"(ratio {num(10 ** e['mean'] / floor, 2)})"
            )
    head = (
        f"The identity networks ($D = {shape[0]}$, $N = {shape[1]}$) against the best affine "
        "fit, the least any stack of affine layers can reach: "
    )
    parts = []
    if inside:
        parts.append(f"the theory lies inside the measured interval for {_list(inside)}")
    if outside:
        parts.append(f"outside it for {'; '.join(outside)}")
    return head + "; ".join(parts)


def chance_text(deeper: int, shallower: int, n: int, alpha: float = 0.05) -> str:
    """How many "deeper better" and "shallower better" verdicts chance alone would give among
    ``n`` two-sided tests at ``alpha`` (``n alpha / 2`` each way if no pair truly differed), and
    the binomial upper tail of each observed count under that null. The tests share seeds, data
    draws and targets, so they are not independent: the tail is a guide, said so."""
    from scipy import stats as st

    each = alpha / 2
    expected = n * each
    tails = [float(st.binom.sf(k - 1, n, each)) if k else 1.0 for k in (deeper, shallower)]
    seen = [
        f"{k} {name} (binomial tail p = {num(p, 2)}: "
        + ("more than chance alone gives" if p < alpha else "within what chance alone gives")
        + ")"
        for k, name, p in zip((deeper, shallower), ("deeper", "shallower"), tails, strict=True)
    ]
    return (
        f"With {n} tests at {pct(alpha)} each and no correction for their number, chance alone "
        f"would call about {num(expected, 2)} 'deeper better' and as many 'shallower better' "
        f"even if no pair truly differed; observed: {seen[0]}, {seen[1]}. The tests share "
        "seeds, data draws and targets, so they are not independent and these tails are only "
        "a guide"
    )


def pairs_text(pair_verdicts: list[dict]) -> str:
    """How the deeper shape of each matched pair compares with the shallower, counted over
    every (target, activation, pair)."""
    n = len(pair_verdicts)
    if not n:
        return "no two shapes of the grid have matched parameter counts, so no pair is compared"
    deeper = sum(p["outcome"] == "deeper" for p in pair_verdicts)
    shallower = sum(p["outcome"] == "shallower" for p in pair_verdicts)
    tied = n - deeper - shallower
    parts = [f"the deeper network has the lower error in {deeper} of {n} comparisons"]
    parts.append(f"the shallower in {shallower}")
    parts.append(f"and {tied} are within noise")
    small = sum(
        p["outcome"] != "within noise"
        and _finite(p.get("log10_factor", {}).get("mean"))
        and abs(p["log10_factor"]["mean"]) < math.log10(SMALL_FACTOR)
        for p in pair_verdicts
    )
    if small:
        parts[-1] += (
            f" ({small} of the {deeper + shallower} separated pairs "
            f"{'differs' if small == 1 else 'differ'} by less than a "
            f"factor {num(SMALL_FACTOR)} in error: consistent over seeds, but too small to "
            "count for or against depth)"
        )
    chance = ". " + chance_text(deeper, shallower, n)
    if 2 * tied > n:
        return (
            ", ".join(parts)
            + ": at a matched parameter count most comparisons are within noise"
            + chance
        )
    verdict = (
        "depth helped more often than it hurt"
        if deeper > shallower
        else ("depth hurt more often than it helped" if shallower > deeper else "neither won more")
    )
    return ", ".join(parts) + f": at a matched parameter count {verdict}" + chance


def depth1_text(depth1: list[dict]) -> str:
    """Measured regions of one-hidden-layer nets against the exact expectation, per width:
    where the expectation lies inside the 95% interval, and the largest ratio."""
    if not depth1:
        return ""
    inside = [
        r["width"]
        for r in depth1
        if _finite(r["measured"]["lo"])
        and r["measured"]["lo"] <= r["expected"] <= r["measured"]["hi"]
    ]
    worst = max(depth1, key=lambda r: abs(math.log(r["measured"]["mean"] / r["expected"])))
    widths = [r["width"] for r in depth1]
    if len(inside) == len(depth1):
        head = (
            f"at every width ({_list([str(w) for w in widths])}) the exact expectation lies "
            "inside the measured 95% interval"
        )
    else:
        out = [str(w) for w in widths if w not in inside]
        head = f"the exact expectation lies outside the measured 95% interval at width {_list(out)}"
    return (
        f"{head}; the largest gap is at N = {worst['width']}: measured "
        f"{num(worst['measured']['mean'])} against {num(worst['expected'])} expected "
        f"(ratio {num(worst['measured']['mean'] / worst['expected'], 2)})"
    )


def per_neuron_text(reg: dict) -> str:
    """Breakpoints per hidden unit at the shallowest and the deepest depth of the sweep, and
    whether they differ (Welch)."""
    lo, hi = reg["rate_depths"]
    a, b = reg["rate"][str(lo)], reg["rate"][str(hi)]
    if lo == hi:
        return f"{num(a['mean'])} breakpoints per hidden unit at D = {lo}"
    body = (
        f"breakpoints per hidden unit: {num(a['mean'])} [{num(a['lo'])}, {num(a['hi'])}] at "
        f"D = {lo}, {num(b['mean'])} [{num(b['lo'])}, {num(b['hi'])}] at D = {hi}"
    )
    if not reg["rate_differs"]:
        return body + " (within noise)"
    direction = "fewer" if b["mean"] < a["mean"] else "more"
    return (
        body + f": the deeper nets have {direction} per unit, by a factor "
        f"{num(b['mean'] / a['mean'], 2)}"
    )


def deep_narrow_text(reg: dict) -> str:
    """The deepest, narrowest random network of the sweep against the sawtooth of its depth."""
    dn, saw = reg["deep_narrow"], reg["sawtooth"]
    depth, width = dn["depth"], dn["width"]
    pieces = dict(zip(saw["depth"], saw["pieces"], strict=True)).get(depth)
    head = (
        f"The deepest, narrowest random networks ($D = {depth}$, $N = {width}$: "
        f"{depth * width} units) cross {num(dn['regions']['mean'])} "
        f"[{num(dn['regions']['lo'])}, {num(dn['regions']['hi'])}] regions"
    )
    if pieces is None:
        return head
    return head + f"; the sawtooth of the same depth has {pieces} pieces from {2 * depth} units"


def trained_text(trained: list[dict]) -> str:
    """How training changed the ReLU nets' linear pieces, pooled over shapes and targets."""
    n = sum(r["n"] for r in trained)
    if not n:
        return "no ReLU network of a 1-D target finished training"
    more = sum(r["more"] for r in trained)
    ratios = [r["log10_ratio"]["mean"] for r in trained if _finite(r["log10_ratio"]["mean"])]
    lo, hi = (min(ratios), max(ratios)) if ratios else (math.nan, math.nan)
    from actlab.stats import proportion_ci

    share = proportion_ci(more, n)
    return (
        f"training added linear pieces in {more} of {n} trained ReLU networks "
        f"({pct(share['mean'])}, [Wilson interval](#term-wilson-interval) "
        f"[{pct(share['lo'])}, {pct(share['hi'])}]"
        + (
            "; the targets of one seed and shape start from the same weights, so these are "
            "not independent trials and the interval is narrower than it should be"
            if len({r.get("target") for r in trained if r["n"]}) > 1
            else ""
        )
        + f"); the mean factor per (shape, target) ranges from {ratio(lo)} to {ratio(hi)}"
    )


def sawtooth_text(s: dict) -> str:
    """What the trained ReLU networks reach on the sawtooth target, beside the exact
    construction: their error and pieces at the shape with the most units ('' when the run has
    no sawtooth target or no ReLU)."""
    if "sawtooth" not in s["targets"] or "relu" not in s["activations"]:
        return ""
    shape = (max(s["depths"]), max(s["widths"]))
    cell = next(
        c
        for c in s["cells"]
        if c["target"] == "sawtooth"
        and c["activation"] == "relu"
        and (c["depth"], c["width"]) == shape
    )
    row = next(
        (
            r
            for r in s["regions"]["trained"]
            if r["target"] == "sawtooth" and (r["depth"], r["width"]) == shape
        ),
        None,
    )
    pieces = f" and {num(row['pieces_end']['mean'])} linear pieces" if row else ""
    return (
        f"; trained ReLU networks of $D = {shape[0]}$, $N = {shape[1]}$ "
        f"({shape[0] * shape[1]} units) end at error {err_text(cell['log10_error'])}{pieces}"
    )


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a bare | would end the cell)."""
    return text.replace("|", "\\|")


def lr_text(summary: dict) -> str:
    """Where the tuned rates sit in their (possibly widened) grid."""
    edges, total = summary["lr_edges"], summary["lr_cells"]
    tried = ", ".join(f"{v:.3g}" for v in summary["lr_tried"])
    arms = "(activation, target" + (", shape)" if summary["tune_all_shapes"] else ")")
    if edges == 0:
        return f"every {arms} pick is interior to the rates tried ({tried})"
    worst = [d for d in summary["lr_decisions"] if d["status"] != "interior"]
    named = "; ".join(
        f"{d['activation']} on {summary['target_labels'][d['target']]}"
        + (f" at D={d['depth']}, N={d['width']}" if summary["tune_all_shapes"] else "")
        + f": {d['status_text']}"
        for d in worst[:6]
    )
    more = f"; and {len(worst) - 6} more" if len(worst) > 6 else ""
    return (
        f"{total - edges} of {total} {arms} picks are interior to the rates tried ({tried}); "
        f"the others ({named}{more}) may understate what that activation can reach"
    )


def transfer_text(s: dict) -> str:
    """Where the rate tuned at one shape does worse at the largest shape than at the tuning
    shape (paired test over seeds), although the larger network can represent (ReLU-like units
    exactly, smooth ones approximately) what the smaller one computes. The cause is not
    identified by the run: rate, step budget and the deeper net's initialisation all change."""
    if s["tune_all_shapes"]:
        return "Every shape has its own rate."
    tune, big = tuple(s["tune_shape"]), (max(s["depths"]), max(s["widths"]))
    if tune == big:
        return "The rates are tuned at the largest shape."
    worse = s["worse_at_largest"]
    head = (
        f"A rate tuned at $D = {tune[0]}$, $N = {tune[1]}$ need not suit $D = {big[0]}$, "
        f"$N = {big[1]}$"
    )
    if not worse:
        return head + ": no (activation, target) has a higher error there than at the tuning shape."

    def factor(act: str, tgt: str) -> str:
        """`` (×f)``: the geometric-mean error at the largest shape over the tuning shape."""
        if "cells" not in s:
            return ""
        at = {
            (c["depth"], c["width"]): c["log10_error"]["mean"]
            for c in s["cells"]
            if c["activation"] == act and c["target"] == tgt
        }
        if not (_finite(at.get(big)) and _finite(at.get(tune))):
            return ""
        return f" (×{ratio(at[big] - at[tune])})"

    named = _list([f"{a} on {s['target_labels'][t]}{factor(a, t)}" for a, t in worse])
    return (
        head + f": {len(worse)} (activation, target) pairs have a higher error there than at "
        f"the tuning shape, separated by the paired test over seeds at 5% ({named}). The larger "
        "network can represent what the smaller one computes (exactly with ReLU-like units, "
        "whose extra layers can pass values through; approximately with smooth ones), so "
        "these errors at the largest shape overstate what that shape can represent: the "
        "optimiser did not find a fit that exists. Why is not measured here: the rate was "
        "tuned for another shape, and the step budget and the deeper network's "
        "initialisation changed as well; the `full` preset tunes every shape."
    )


def pick_table(s: dict) -> list[str]:
    """The tuned rate per activation (rows) and target (columns) at the tuning shape, folded;
    an asterisk marks a pick that is not interior."""
    if s["tune_all_shapes"]:
        return []
    tune = tuple(s["tune_shape"])
    picks = {
        (d["activation"], d["target"]): d
        for d in s["lr_decisions"]
        if (d["depth"], d["width"]) == tune
    }
    rows = [
        "| activation | " + " | ".join(_cell(s["target_labels"][t]) for t in s["targets"]) + " |"
    ]
    rows.append("|---|" + "---|" * len(s["targets"]))
    for act in s["activations"]:
        cells = []
        for tgt in s["targets"]:
            d = picks[act, tgt]
            mark = "" if d["status"] == "interior" else "*"
            cells.append("n/a" if d["pick"] is None else f"{d['pick']:.3g}{mark}")
        rows.append(f"| {act} | " + " | ".join(cells) + " |")
    return [
        "<details><summary>The rate picked for each activation and target</summary>",
        "",
        *rows,
        "",
        "(*: not interior to the rates tried.)",
        "",
        "</details>",
    ]


def _errors(s: dict, key: str, shape: tuple[int, int], by: str = "activation") -> dict:
    """``log10_error`` stats at ``shape``: per activation for target ``key`` (``by`` =
    "activation"), or per target for activation ``key`` (``by`` = "target")."""
    other = "target" if by == "activation" else "activation"
    return {
        c[by]: c["log10_error"]
        for c in s["cells"]
        if c[other] == key and (c["depth"], c["width"]) == shape
    }


def _verdict(s: dict, target: str, shape: tuple[int, int]) -> dict:
    return next(
        v for v in s["verdicts"] if v["target"] == target and (v["depth"], v["width"]) == shape
    )


def report(results: Results) -> str:
    """The chapter's Markdown, ending with its exercises."""
    from actlab.experiments.capacity.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = results.summary
    acts, targets, labels = s["activations"], s["targets"], s["target_labels"]
    shapes = [(d, w) for d in s["depths"] for w in s["widths"]]
    big = (max(s["depths"]), max(s["widths"]))
    tune = tuple(s["tune_shape"])
    reg = s["regions"]
    con = reg["construction"]
    out = ["# Capacity: which functions can each activation represent?", ""]
    out += [
        "Every earlier chapter asked whether a network *trains*. This one asks what it can "
        "*represent*: given a depth $D$ and a width $N$, how closely can a network with each "
        "activation $\\varphi$ fit a function? The answer mixes two things that are hard to "
        "separate: what the architecture can express at all, and what the optimiser finds in "
        "a fixed budget. A hand-built network shows the first; trained networks show the "
        "second.",
        "",
        f"Targets, each on inputs drawn uniformly from $[-1, 1]$ (the checkerboard from "
        f"$[-1, 1]^2$), without noise: {', '.join(labels[t] for t in targets)}. Networks of "
        f"depth $D \\in \\{{{', '.join(map(str, s['depths']))}\\}}$ and width "
        f"$N \\in \\{{{', '.join(map(str, s['widths']))}\\}}$ with each of {', '.join(acts)}, "
        f"trained with full-batch Adam for {s['steps']} steps on {s['n_train']} points "
        f"({s['n_train_2d']} for the 2-D target), {s['seeds']} [seeds](#term-seed) each "
        f"(every seed draws its own data). Within a seed and a shape every activation, "
        f"target and rate starts from the same weights ({INITS[s['init']]}); all "
        f"{s['members']} networks train side by side, one [ensemble](#term-ensemble) per "
        "shape and input dimension.",
        "",
        "**The error.** Test MSE divided by the target's variance $\\mathrm{Var}(f)$ (1 is "
        "what the best constant achieves, 0.01 means 99% of the variance is fitted), on "
        f"{s['n_test']} [held-out](#term-held-out) points per seed, summarised as a "
        "[geometric mean](#term-geometric-mean) over seeds with its "
        "[95% interval](#term-t-interval). Two activations are *within noise* of each other "
        "when the [paired test](#term-paired) on the per-seed $\\log_{10}$ errors does not "
        "separate them at 5% (within a seed every activation and every shape sees the same "
        "data draw, and at one shape every activation starts from the same weights).",
        "",
        "**A fair learning rate.** A shared $\\eta$ would favour whichever activation it "
        "happens to suit, so each (activation, target) gets its own: every rate of the grid "
        f"({', '.join(f'{v:g}' for v in s['lr_grid'])}) is trained, and where the best sits at "
        f"an edge of the grid, one more rate a factor {num(s['lr_factor'])} beyond that edge "
        f"is tried (at most {s['lr_extend']} times); the rate with the lowest "
        f"mean $\\log_{{10}}$ validation MSE over seeds ({s['n_val']} validation points, "
        "drawn apart from the test points) is kept, and only then is the test error read. "
        + (
            "Rates are tuned at every shape."
            if s["tune_all_shapes"]
            else f"Rates are tuned at $D = {tune[0]}$, $N = {tune[1]}$ and used at every shape "
            "(the `full` [preset](#term-preset) tunes each shape)."
        )
        + f" Where the picks sit: {lr_text(s)}.",
        "",
        *pick_table(s),
        "",
        "## What theory says",
        "",
        "* **Width suffices, in principle.** A network with one hidden layer and any "
        "non-polynomial $\\varphi$ can approximate any continuous function on a bounded set as "
        "closely as wished, given enough units (the universal approximation theorem: Cybenko "
        "1989, Hornik 1991, Leshno et al. 1993). The identity is the exception: a stack of "
        "affine layers is one affine map, so its best fit is a straight line (a plane) whatever "
        "$D$ and $N$; its error is computed exactly (least squares on a fine grid) and drawn "
        "as a dashed line in the figure of errors against parameters.",
        "* **Depth buys efficiency for compositional functions.** Telgarsky (2016): composing "
        "the tent map $D$ times gives a sawtooth with $2^D$ linear pieces from a ReLU network "
        "of width 2 and depth $D$, while a one-hidden-layer ReLU network of $N$ units has at "
        "most $N + 1$ pieces on a line, so it needs about $2^D$ units for the same function. "
        "The sawtooth target here is that function for $D = 3$ (8 pieces).",
        "* **Random networks do not use that capacity.** Hanin & Rolnick "
        "(2019) show that at initialisation the average number of linear regions a line "
        "crosses grows about linearly in the total number of units $D N$, not exponentially "
        "in depth (only their abstract could be checked here, so none of their constants is "
        "used). The exact first-layer expectation (a closed form, "
        "`actlab.regions.expected_first_layer_breakpoints`) is drawn beside the measurement.",
        "",
    ]
    # ------------------------------------------------------------------ errors
    out += ["## Which activation fits which function", ""]
    out += [
        "Each heatmap is one target: rows are activations, columns shapes ($D$ hidden layers "
        "of $N$ units), the colour the geometric-mean error, each cell's number the mean and "
        "its interval. A black frame marks the lowest error of a column; grey frames mark the "
        "activations within noise of it. The lowest of several measured means is picked after "
        "the fact, so a narrow win is best read as a tie with those within noise. "
        + (
            ""
            if s["tune_all_shapes"]
            else f"Every shape uses the rates tuned at $D = {tune[0]}$, $N = {tune[1]}$ "
            "(the column marked 'tuned here'): at other shapes, and in the sentences below "
            f"about $D = {big[0]}$, $N = {big[1]}$, an activation's error also says how well "
            "that rate transfers (see *Tuning* at the end of the chapter)."
        ),
        "",
    ]
    for tgt in targets:
        v = _verdict(s, tgt, big)
        out += [
            f"![{labels[tgt]}](figures/errors_{tgt}.png)",
            "",
            f"**{labels[tgt]}** at $D = {big[0]}$, $N = {big[1]}$: "
            f"{best_text(v, _errors(s, tgt, big))}.",
            "",
        ]
    rows = ["| target | " + " | ".join(f"D={d}, N={w}" for d, w in shapes) + " |"]
    rows.append("|---|" + "---|" * len(shapes))
    for tgt in targets:
        cells = []
        for shape in shapes:
            v = _verdict(s, tgt, shape)
            mark = "" if v["differs_from_best"] else " (all within noise)"
            tie = (
                f" ≈ {', '.join(v['tied_with_best'])}"
                if v["tied_with_best"] and v["differs_from_best"]
                else ""
            )
            cells.append(f"{v['best']}{tie}{mark}")
        rows.append(f"| {_cell(labels[tgt])} | " + " | ".join(cells) + " |")
    out += [
        "The best activation per target and shape (≈: within noise of the best):",
        "",
        *rows,
        "",
        identity_text(s) + ".",
        "",
        "What the fits look like, at the largest shape:",
        "",
        "![fits](figures/fits.png)",
        "",
    ]
    # ------------------------------------------------------------------ matched params
    pairs = "; ".join(
        f"{'input dimension ' + k + ': ' if len(s['pairs']) > 1 else ''}"
        + ", ".join(f"D={a[0]}×N={a[1]} with D={b[0]}×N={b[1]}" for a, b in v)
        for k, v in s["pairs"].items()
        if v
    )
    out += [
        "## Depth or width at a matched parameter count",
        "",
        "A deeper network of the same width has more parameters $|\\theta|$, so the heatmaps "
        "confound depth with size. Two views correct for it. The figure plots the error "
        "against $|\\theta|$ (one colour per activation, one marker per depth): where a deeper "
        "curve lies below a shallower one at the same $|\\theta|$, depth bought something. "
        "And pairs of shapes whose $|\\theta|$ differ by at most a factor 1.5 are compared "
        f"directly ({pairs or 'none in this grid'}): {pairs_text(s['pair_verdicts'])}.",
        "",
        "![error against parameters](figures/params.png)",
        "",
    ]
    if s["pair_verdicts"]:
        rows = [
            "| target | activation | shallower: error | deeper: error | deeper / shallower "
            "(paired over seeds) | verdict |"
        ]
        rows.append("|---|---|---|---|---|---|")
        for p in s["pair_verdicts"]:
            a, b = p["shallow"], p["deep"]
            rows.append(
                f"| {_cell(labels[p['target']])} | {p['activation']} | D={a[0]}, N={a[1]} "
                f"({p['params'][0]} parameters): {err_text(p['shallow_error'])} | "
                f"D={b[0]}, N={b[1]} ({p['params'][1]} parameters): "
                f"{err_text(p['deep_error'])} | "
                f"{ratio_ci(p['log10_factor'], 3) if 'log10_factor' in p else 'n/a'} | "
                f"{OUTCOMES[p['outcome']]} |"
            )
        out += ["<details><summary>Every matched pair</summary>", "", *rows, "", "</details>", ""]
    # ------------------------------------------------------------------ regions
    saw = reg["sawtooth"]
    out += [
        "## Linear regions: what depth can buy, and what it gets",
        "",
        "A ReLU network computes a piecewise-linear function. Along a line through input "
        "space it is linear between the points where some unit's pre-activation $z$ crosses "
        "0, and those points can be found exactly: on each interval every layer's input is "
        "affine in the position, so each unit's $z$ is too, and its root splits the interval "
        "(`actlab.regions.count_pieces`). Here the line is the whole input range $[-1, 1]$.",
        "",
        f"Left: {reg['init'] and s['region_nets']} ReLU networks per shape at a Gaussian "
        f"initialisation ($\\sigma_w^2 = {num(s['region_sigma_w2'])}$, "
        f"$\\sigma_b^2 = {num(s['region_sigma_b2'])}$; with $\\sigma_b^2 = 0$ every first-layer "
        "unit would break at $x = 0$). One hidden layer: "
        f"{depth1_text(reg['depth1'])}. Deeper: {per_neuron_text(reg)}. The blue line "
        "gives every unit the first layer's expected rate (an extrapolation of this chapter, "
        "not Hanin & Rolnick's constant: their result is growth linear in $D N$, with a "
        "constant not computed here, so where the deeper nets fall below the line it is the "
        "extrapolation that fails, not their theorem); the red line is "
        "the sawtooth, whose count doubles with every layer: "
        f"{', '.join(map(str, saw['pieces']))} pieces at $D$ = "
        f"{', '.join(map(str, saw['depth']))}, from only $2D$ units each. "
        + deep_narrow_text(reg)
        + ".",
        "",
        f"Right: the trained ReLU networks of the 1-D targets (tuned rate, {s['seeds']} seeds "
        f"per shape), whose linear pieces were counted before and after training: "
        f"{trained_text(reg['trained'])}.",
        "",
        "![regions](figures/regions.png)",
        "",
    ]
    # ------------------------------------------------------------------ confounds
    out += [
        "## What this does and does not show",
        "",
        "* **Optimisation against representation.** A trained network's error mixes what the "
        "shape can represent with what Adam finds in "
        f"{s['steps']} steps from one initialisation. Telgarsky's network (its input mapped "
        f"to $[-1, 1]$) represents the sawtooth target with {con['units']} ReLU units and "
        f"{con['pieces']} linear pieces, to a largest error of {num(con['max_error'])} on a "
        "grid of 4001 points"
        + sawtooth_text(s)
        + ". A trained error is therefore an upper bound on what the shape can represent, "
        "not a measurement of it.",
        "* **Parameter count.** Shapes of one grid differ in $|\\theta|$; compare across depth "
        "only at matched $|\\theta|$ (the pairs above) or along the $|\\theta|$ axis.",
        "* **Tuning.** Each activation's rate is the best of a small grid, at one shape unless "
        "stated; a pick at the edge of the grid may understate what the activation can reach. "
        + transfer_text(s),
        "* **Data.** Few training points for a high-frequency target also limit what a "
        "network can learn from them: the test error includes interpolation between points.",
        "",
    ]
    out += [exercises_markdown(EXERCISES)]
    return "\n".join(out)
