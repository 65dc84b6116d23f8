"""The stability chapter's Markdown, every number read from the run's summary.

The verdict helpers (:func:`settle_verdict`, :func:`depth_verdict`, :func:`theory_verdict`,
:func:`compare_sentence`) take small dicts, so the tests check each sentence both ways with
hand-set summaries.
"""

from __future__ import annotations

import math
from typing import Any

from actlab.experiments.base import Results
from actlab.report.format import ci, num, pct, ratio_ci
from actlab.stats import as_float, mean_ci, paired_differs, proportion_ci, welch_differs

__all__ = [
    "report",
    "settle_verdict",
    "depth_verdict",
    "theory_verdict",
    "depth_item",
    "compare_sentence",
    "overall_sentence",
    "start_end_verdict",
    "edge_note",
    "overall_verdict",
    "sharpening_verdict",
    "rate_interval",
    "NEAR",
]

NAMES = {"gd": "GD", "momentum": "heavy-ball momentum", "adam": "Adam"}
INIT_TEXT = {
    "xavier": "[Xavier initialisation](#term-xavier-init)",
    "he": "[He initialisation](#term-he-init)",
    "torch": "[default initialisation](#term-default-init)",
}
NEAR = 0.2
"""A late sharpness whose whole 95% interval lies within +-NEAR of its threshold (as a ratio)
'hovers at' the threshold."""


def settle_verdict(stat: dict[str, float]) -> str:
    """Where the late sharpness / threshold (a :func:`mean_ci` dict over seeds) lies: "at"
    (whole interval within +-NEAR of 1), "below" (whole interval below 1 - NEAR), "above"
    (whole interval above 1 + NEAR), "unresolved" otherwise or without an interval."""
    lo, hi = as_float(stat.get("lo")), as_float(stat.get("hi"))
    if math.isnan(lo) or math.isnan(hi):
        return "unresolved"
    if lo >= 1 - NEAR and hi <= 1 + NEAR:
        return "at"
    if hi < 1 - NEAR:
        return "below"
    if lo > 1 + NEAR:
        return "above"
    return "unresolved"


_SETTLE_TEXT = {
    "at": "hovers at the threshold (within {near})",
    "below": "stays below the threshold (by more than {near})",
    "above": "sits above the threshold (by more than {near})",
    "unresolved": "is not resolved by the seeds (its interval straddles the ±{near} band)",
}


def depth_verdict(shallow: list[float], deep: list[float]) -> str:
    """How the largest stable rate moves from the shallowest to the deepest stack, by Welch's
    test on log2 of the per-seed rates: "shrinks", "grows" or "within noise"."""
    a = [math.log2(v) for v in shallow if v is not None and math.isfinite(v) and v > 0]
    b = [math.log2(v) for v in deep if v is not None and math.isfinite(v) and v > 0]
    if len(a) < 2 or len(b) < 2:
        return "unknown"
    if not welch_differs(a, b):
        return "within noise"
    return "shrinks" if sum(b) / len(b) < sum(a) / len(a) else "grows"


def depth_item(act: str, e0: dict[str, Any], e1: dict[str, Any]) -> str:
    """``act (r0 → r1)``, flagged where most seeds at either depth are flat fits at their
    largest stable rate (the rate then says what the network survives, not where it learns)
    or sit at the top of the grid (the rate is then only a lower bound)."""
    factor = f"{num(e0['mean'])} → {num(e1['mean'])}" if e0.get("n") and e1.get("n") else "n/a"
    flat = any(e.get("n") and e.get("flat", 0) > e["n"] / 2 for e in (e0, e1))
    top = any(e.get("n") and e.get("at_top", 0) > e["n"] / 2 for e in (e0, e1))
    notes = (", mostly flat fits" if flat else "") + (
        ", mostly at the top of the grid (a lower bound)" if top else ""
    )
    return f"{act} ({factor}{notes})"


def theory_verdict(entry: dict[str, Any]) -> str:
    """How the quadratic bound compares with the measured largest stable rate, over seeds:
    "agrees" when it falls in the measured grid interval [rate, next rate) for most seeds,
    "cautious" when it lies below the measured rate for most seeds (the network trained at
    rates the bound calls unstable), "optimistic" when above the interval for most, else
    "mixed"."""
    n = int(entry.get("n", 0))
    if n == 0:
        return "unknown"
    for key, word in (("inside", "agrees"), ("below", "cautious"), ("above", "optimistic")):
        if int(entry.get(key, 0)) > n / 2:
            return word
    return "mixed"


def sharpening_verdict(stat: dict[str, float]) -> str:
    """Late over early sharpness (a :func:`mean_ci` dict of log10 factors): "rises" (whole
    interval above 1: progressive sharpening), "falls" (whole interval below 1), "within
    noise"."""
    lo, hi = as_float(stat.get("lo")), as_float(stat.get("hi"))
    if math.isnan(lo) or math.isnan(hi):
        return "within noise"
    if lo > 0:
        return "rises"
    if hi < 0:
        return "falls"
    return "within noise"


def overall_verdict(stat: dict[str, float]) -> str:
    """Measured largest stable rate over the bound, pooled over cases (a :func:`mean_ci` dict
    of log10 factors): "above" (whole interval above 1: the network survives rates the bound
    forbids), "below" (whole interval below 1/2: it fails at rates the bound allows, beyond
    the grid's step), "agrees" (whole interval in [1/2, 1], what a bound inside the measured
    grid interval gives), else "mixed"."""
    lo, hi = as_float(stat.get("lo")), as_float(stat.get("hi"))
    if math.isnan(lo) or math.isnan(hi):
        return "mixed"
    if lo > 0:
        return "above"
    if hi < math.log10(0.5):
        return "below"
    if lo >= math.log10(0.5) and hi <= 0:
        return "agrees"
    return "mixed"


OVERALL_TEXT = {
    "above": (
        "the network survives rates above the bound. The quadratic model assumes the "
        "curvature stays put; the GD sharpness figure below shows it falling in the first "
        "steps at the large rates, consistent with the catapult phase of Lewkowycz et al. "
        "(2020), where a rate above $2/\\lambda_{\\max}$ throws the network out of its sharp "
        "valley into a "
        "flatter one and training goes on there."
    ),
    "below": "the network fails at rates the bound allows, by more than the grid's step.",
    "agrees": "the bound and the measurement agree to within the grid's factor of 2.",
    "mixed": "neither a consistent excess nor a consistent shortfall beyond the grid's step.",
}


def start_end_verdict(start: list[float | None], end: list[float | None]) -> str:
    """Start against late sharpness / threshold of the same seeds (entry by entry): "rose",
    "fell" or "within noise" by the paired test on log10 (pairs with a value that is not a
    finite positive number are dropped)."""

    def lg(v: float | None) -> float:
        return math.log10(v) if v is not None and math.isfinite(v) and v > 0 else math.nan

    a = [lg(v) for v in start]
    b = [lg(v) for v in end]
    if len(a) != len(b):
        raise ValueError("start and end need one value per seed each")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 2 or not paired_differs(a, b):
        return "within noise"
    return "rose" if sum(y - x for x, y in pairs) > 0 else "fell"


_START_END_TEXT = {
    "rose": "; it rose during training (progressive sharpening)",
    "fell": "; it fell during training",
    "within noise": "; start and end within noise",
}


def overall_sentence(allr: dict[str, float], learned: dict[str, float] | None) -> str:
    """The pooled measured / predicted factor, its verdict, and the same without the flat
    fits (``learned``, a :func:`mean_ci` dict of log10 factors, or None)."""
    text = (
        f"Over all cases, measured / predicted = {ratio_ci(allr)} (geometric mean, 95% "
        "interval over cases, which treats them as independent although the same activation "
        "recurs: it is too narrow): " + OVERALL_TEXT[overall_verdict(allr)]
    )
    if learned is None:
        return text
    n_all, n_learned = int(allr.get("n", 0)), int(learned.get("n", 0))
    if n_learned == n_all:
        return text + " No case is a flat fit."
    if n_learned < 2:
        return text + (
            f" Only {n_learned} of the {n_all} cases learned at their largest stable rate, so "
            "the flat fits cannot be set apart."
        )
    v = overall_verdict(learned)
    word = {
        "above": "still above the bound",
        "below": "below the bound by more than the grid's step",
        "agrees": "within the grid's factor of 2 of the bound",
        "mixed": "neither consistently above nor below the bound",
    }[v]
    return text + (
        f" Without the {n_all - n_learned} flat fits (cases whose member at its largest "
        f"stable rate has not learned), measured / predicted = {ratio_ci(learned)} over "
        f"{n_learned} cases: {word}."
    )


def edge_note(settle: str, moved: str) -> str:
    """What a late sharpness "at" the threshold shows: the edge of stability reached by
    progressive sharpening when it rose, reached from above (a catapult) when it fell, and
    no sharpening shown when start and end are within noise."""
    if settle != "at":
        return ""
    return {
        "rose": ": it sharpened up to the threshold and stayed there (the edge of stability)",
        "fell": ": it came down to the threshold from above and stayed there",
        "within noise": (
            ": no rise from the start is resolved, so this shows no progressive "
            "sharpening into the edge, only that training ended there"
        ),
    }[moved]


def compare_sentence(comp: dict[str, Any] | None, threshold: str) -> str:
    """Smooth against piecewise-linear activations' late sharpness / threshold, at the common
    rate of :func:`actlab.experiments.stability.experiment.family_comparison`."""
    if comp is None:
        return (
            "No rate was stable and learned for every seed of both a smooth and a "
            "piecewise-linear activation, so the two families are not compared."
        )
    s, p = comp["smooth"], comp["piecewise-linear"]
    left = ""
    if comp.get("left_out"):
        left = (
            f" ({', '.join(comp['left_out'])}: no rate stable and learned for every seed, left out)"
        )
    head = (
        f"**Smooth against piecewise-linear, at one rate.** At $\\eta$ = {num(comp['rate'])}, the "
        "largest rate at which every seed of each compared activation was stable and learned "
        f"(so the threshold {threshold} is the same for all), the smooth ones "
        f"({', '.join(comp['smooth_acts'])}) settle at {ci(s)} of {threshold} and the "
        f"piecewise-linear ones ({', '.join(comp['pl_acts'])}) at {ci(p)}{left}; each is the "
        "mean over seeds of the family's mean, and the difference per seed is "
        f"{ci(comp['difference'])}"
    )
    if not comp["differs"]:
        return head + ": within noise ([paired test](#term-paired) over seeds)."
    word = "closer to" if abs(s["mean"] - 1) < abs(p["mean"] - 1) else "farther from"
    return head + (
        f": they differ ([paired test](#term-paired) over seeds); the smooth ones settle {word} "
        "the threshold."
    )


def rate_interval(value: float | None, rates: list[float]) -> str:
    """A per-seed largest stable rate as the grid interval it pins down: ``[r, next)``,
    ``>= top`` at the top of the grid, ``< lowest`` when none was stable."""
    if value is None or not math.isfinite(value):
        return f"< {num(rates[0])}"
    i = min(range(len(rates)), key=lambda k: abs(rates[k] - value))
    if i == len(rates) - 1:
        return f"≥ {num(rates[-1])}"
    return f"[{num(rates[i])}, {num(rates[i + 1])})"


def _log10(values: list[float | None]) -> list[float]:
    """log10 of the finite positive values."""
    return [math.log10(v) for v in values if v is not None and math.isfinite(v) and v > 0]


def _rate_ci(entry: dict[str, Any]) -> str:
    """The geometric mean over seeds with its interval (the mean alone when all seeds agree or
    fewer than two are defined)."""
    if entry.get("n", 0) == 0:
        return "< grid"
    if entry.get("at_top", 0) == entry["n"] and not entry.get("none_stable"):
        return f"≥ {num(entry['mean'])} (top of grid)"
    lo, hi = as_float(entry.get("lo")), as_float(entry.get("hi"))
    if math.isnan(lo) or abs(hi - lo) < 1e-12 * max(abs(hi), 1):
        return num(entry["mean"])
    return f"{num(entry['mean'], 2)} [{num(lo, 2)}, {num(hi, 2)}]"


def report(results: Results) -> str:
    """The chapter, ending with its exercises."""
    from actlab.experiments.stability.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = results.summary
    out = _intro(s) + _theory(s) + _maps(s) + _depth(s) + _sharpness(s) + _confounds(s)
    return "\n".join(out).rstrip() + "\n\n" + exercises_markdown(EXERCISES).rstrip() + "\n"


def _intro(s: dict[str, Any]) -> list[str]:
    c = s["config"]
    opts = ", ".join(NAMES[o] for o in c["optimizers"])
    depths = ", ".join(map(str, c["depths"]))
    members = ", ".join(f"{c['members'][o]} members for {NAMES[o]}" for o in c["optimizers"])
    grids = "; ".join(
        f"{NAMES[o]}: {num(c['rates'][o][0])} to {num(c['rates'][o][-1])} "
        f"({len(c['rates'][o])} rates)"
        for o in c["optimizers"]
    )
    return [
        "# Stability: big learning rates and deep stacks",
        "",
        "How large a learning rate $\\eta$ can a network take before training blows up, and "
        "how does that change with the activation and with depth? This chapter trains the "
        f"same small regression networks with {opts} at every rate of a grid and reads off "
        "where each one diverges, then looks at *why* through the sharpness: the largest "
        "eigenvalue of the Hessian $\\nabla^2 L$ of the loss $L$, written $\\lambda_{\\max}$ "
        "below.",
        "",
        f"**Setup.** The task is the noisy sine of the deep-MLP chapter: {c['n_train']} "
        f"training points on [−π, π], label noise of standard deviation {num(c['noise'])}, "
        "held-out points on the midpoints. Training is full batch, so GD is exact gradient "
        f"descent, for {c['steps']} steps. Networks have D ∈ {{{depths}}} hidden layers of "
        f"N = {c['width']} units, {INIT_TEXT.get(c['init'], c['init'])}, and {c['seeds']} "
        f"[seeds](#term-seed) per activation, depth and rate; at each depth a seed gives every "
        "activation and every rate the same initial weights. The data are one draw, shared by "
        "every seed: intervals over seeds are over initial weights, not over data draws. "
        "Each (optimiser, depth) is one "
        f"[ensemble](#term-ensemble) pass with one rate per member ({members}). "
        f"Rate grids, spaced by a factor of 2: {grids}.",
        "",
        "A member counts as **diverged** at the first step at which its training MSE is not "
        f"finite or exceeds {num(c['max_loss'])}: the engine freezes it there, and the figures "
        "draw it as *diverged*, never as a loss. Its **largest stable rate** (per seed) is the "
        "largest rate on the grid at which it did not diverge *and* ended with a training MSE "
        "below its initial one. The grid limits it: a seed with largest stable rate r is "
        "known to lie in [r, 2r), so intervals below are in units of grid steps, and means "
        "over seeds are [geometric means](#term-geometric-mean) with a [95% interval]"
        "(#term-t-interval) on log2 of the rate.",
        "",
    ]


def _theory(s: dict[str, Any]) -> list[str]:
    c = s["config"]
    mu = num(c["momentum"])
    return [
        "## The theory: a quadratic",
        "",
        "Near a minimum the loss is close to a quadratic. Along an eigenvector of the Hessian "
        "$\\nabla^2 L$ with eigenvalue $\\lambda_i$, one GD step multiplies the distance from "
        "the minimum by $1 - \\eta\\lambda_i$, so:",
        "",
        "* **GD** diverges iff $\\eta > 2/\\lambda_i$ for some $i$, i.e. iff "
        "$\\lambda_{\\max} > 2/\\eta$.",
        f"* **Heavy-ball momentum** $\\mu = {mu}$ (torch.optim.SGD's form) is stable iff "
        "$\\lambda_{\\max} < (2 + 2\\mu)/\\eta$: along each eigenvector the distance follows "
        "a two-step recursion whose factors per step are the roots of a quadratic with sum "
        "$1 + \\mu - \\eta\\lambda_i$ and product $\\mu$, and a root leaves the unit circle "
        "(through −1) at $\\eta\\lambda_i = 2 + 2\\mu$.",
        "* **Adam** with $\\beta_1 = 0.9$ holds a diagonal preconditioner "
        "$P_t = (1 - \\beta_1^t)(\\sqrt{v_t/(1 - \\beta_2^t)} + \\epsilon)$ at step $t$, the "
        "divisor of its update. With $P_t$ frozen, Adam is heavy-ball momentum with "
        "$\\mu = \\beta_1$ and rate $\\eta(1 - \\beta_1)$ on the preconditioned Hessian "
        "$P_t^{-1/2} \\nabla^2 L \\, P_t^{-1/2}$, so it is stable iff the *preconditioned "
        "sharpness*, that matrix's $\\lambda_{\\max}$, stays below "
        "$(2 + 2\\beta_1)/((1 - \\beta_1)\\eta) = 38/\\eta$.",
        "",
        "Two consequences are tested here. First, the quadratic model at initialisation "
        "predicts the largest stable GD rate: $2/\\lambda_{\\max}$ measured at the initial weights "
        "(and $(2 + 2\\mu)/\\lambda_{\\max}$ for momentum). Second, a network is not a fixed "
        "quadratic: Cohen et al. (2021) found that under GD the sharpness rises during training "
        "(*progressive sharpening*) until it reaches $2/\\eta$ and then hovers there while the "
        "loss keeps falling, non-monotonically (the *edge of stability*); Cohen et al. (2022) "
        "found the same for Adam's preconditioned sharpness and $38/\\eta$. Sharpness is "
        "measured by power iteration "
        f"on Hessian-vector products every {c['sharp_every']} steps at depth "
        f"D = {c['sharp_depth']}.",
        "",
    ]


def _maps(s: dict[str, Any]) -> list[str]:
    c = s["config"]
    out = ["## Where training diverges", ""]
    for opt in c["optimizers"]:
        out += [
            f"![{NAMES[opt]}: held-out MSE and divergence over activation and rate]"
            f"(figures/divergence_{opt}.png)",
            "",
        ]
    out += [
        "Each cell is one activation at one rate and depth; its colour is the held-out MSE "
        "(median over the seeds that did not diverge), grey cells diverged for every seed, "
        "with the median step at which they did. Shares of diverged members:",
        "",
    ]
    header = "| optimiser | " + " | ".join(f"D = {d}" for d in c["depths"]) + " |"
    out += [header, "|---" * (len(c["depths"]) + 1) + "|"]
    for opt in c["optimizers"]:
        cells = []
        for d in c["depths"]:
            k = sum(sum(s["stable"][opt][f"{d}/{a}"]["diverged"]) for a in c["activations"])
            n = len(c["activations"]) * len(c["rates"][opt]) * c["seeds"]
            p = proportion_ci(k, n)
            cells.append(f"{k}/{n} = {pct(p['mean'])} [{pct(p['lo'])}, {pct(p['hi'])}]")
        out.append(f"| {NAMES[opt]} | " + " | ".join(cells) + " |")
    out += [
        "",
        "(Shares of the grid with [Wilson intervals](#term-wilson-interval); they depend on "
        "where the grid was put, so compare them across depths, not across optimisers. The "
        "members are not independent trials: one seed at neighbouring rates, or one "
        "activation's seeds at one rate, mostly share their fate, so the intervals are too "
        "narrow and only a rough guide.)",
        "",
    ]
    return out


def _depth(s: dict[str, Any]) -> list[str]:
    c = s["config"]
    depths, acts = c["depths"], c["activations"]
    out = ["## The largest stable rate, and depth", ""]
    out += [
        "Geometric mean over seeds of the largest stable rate, with its 95% interval (a single "
        "number when every seed agrees; ≥ the top of the grid or < its bottom where seeds ran "
        "off it; *k flat*: at its largest stable rate the member of k seeds fits no better "
        "than a constant, ending at 90% or more of the targets' variance: stable, but it has "
        "not learned):",
        "",
    ]
    header = "| activation | " + " | ".join(
        f"{NAMES[o]}, D = {d}" for o in c["optimizers"] for d in depths
    )
    out += [header + " |", "|---" * (1 + len(c["optimizers"]) * len(depths)) + "|"]
    for a in acts:
        cells = []
        for o in c["optimizers"]:
            for d in depths:
                e = s["stable"][o][f"{d}/{a}"]
                text = _rate_ci(e)
                if e["at_top"] and e["at_top"] < e["n"]:
                    text += f" ({e['at_top']} at top: a lower bound)"
                if e.get("flat"):
                    text += f" ({e['flat']} flat)"
                if e["none_stable"]:
                    text += f" ({e['none_stable']} none stable)"
                cells.append(text)
        out.append(f"| {a} | " + " | ".join(cells) + " |")
    out.append("")
    # How it moves with depth.
    if len(depths) >= 2:
        d0, d1 = depths[0], depths[-1]
        for o in c["optimizers"]:
            groups: dict[str, list[str]] = {}
            for a in acts:
                v = depth_verdict(
                    s["stable"][o][f"{d0}/{a}"]["per_seed"], s["stable"][o][f"{d1}/{a}"]["per_seed"]
                )
                e0, e1 = s["stable"][o][f"{d0}/{a}"], s["stable"][o][f"{d1}/{a}"]
                groups.setdefault(v, []).append(depth_item(a, e0, e1))
            parts = []
            for v, text in (
                ("shrinks", "shrinks"),
                ("grows", "grows"),
                ("within noise", "does not move beyond noise"),
                ("unknown", "cannot be compared (fewer than two stable seeds)"),
            ):
                if v in groups:
                    parts.append(f"{text} for {', '.join(groups[v])}")
            out += [
                f"**{NAMES[o]}, from D = {d0} to D = {d1}** ([Welch's test](#term-welch) on "
                "log2 of the per-seed rates; a seed draws new weights at each depth, so the "
                "two depths are independent samples): the largest stable rate "
                f"{'; it '.join(parts)}.",
                "",
            ]
    # Theory against measurement.
    for o in ("gd", "momentum"):
        if o not in c["optimizers"]:
            continue
        bound = "$2/\\lambda_{\\max}$" if o == "gd" else "$(2 + 2\\mu)/\\lambda_{\\max}$"
        out += [
            f"![{NAMES[o]}: largest stable rate against depth, with the quadratic bound at "
            f"initialisation](figures/depth_{o}.png)",
            "",
        ]
        counts = {"inside": 0, "below": 0, "above": 0, "n": 0}
        rows = []
        for d in depths:
            for a in acts:
                e = s["theory"][f"{o}/{d}/{a}"]
                for k in counts:
                    counts[k] += int(e[k])
                verdict = theory_verdict(e)
                rows.append((d, a, e, verdict))
        n = counts["n"]
        if n == 0:
            out += [f"No seed had a stable {NAMES[o]} rate, so the bound is not tested.", ""]
            continue
        pin = proportion_ci(counts["inside"], n)
        out += [
            f"**The quadratic bound at initialisation, {NAMES[o]}.** Over all {n} "
            f"(depth, activation, seed) cases with a stable rate, {bound} measured at the "
            f"initial weights fell inside the measured grid interval [r, 2r) in "
            f"{counts['inside']} ({pct(pin['mean'])} [{pct(pin['lo'])}, {pct(pin['hi'])}], "
            f"Wilson), below it in {counts['below']} (the network trained stably at a rate "
            f"the bound calls unstable) and above it in {counts['above']} (it diverged, or "
            "failed to go below its initial loss, at a rate the bound allows).",
            "",
        ]
        allr = s["theory_overall"][o]
        out += [overall_sentence(allr, s.get("theory_overall_learned", {}).get(o)), ""]
        disagree = [r for r in rows if r[3] in ("cautious", "optimistic", "mixed")]
        if disagree:
            items = []
            for d, a, e, verdict in disagree:
                items.append(
                    f"{a} at D = {d} ({verdict}: measured / predicted = "
                    f"{ratio_ci(e['log10_ratio'])})"
                )
            out += [
                "Where they disagree for most seeds (the factor is the geometric mean of "
                "measured largest stable rate over predicted bound, with its 95% interval; the "
                "grid alone allows a factor in (1/2, 1]): " + "; ".join(items) + ".",
                "",
            ]
        else:
            out += ["The bound and the measurement agree for most seeds in every cell.", ""]
    if "adam" in c["optimizers"]:
        out += [
            "![Adam: largest stable rate against depth](figures/depth_adam.png)",
            "",
            "For Adam there is no bound at initialisation: its preconditioner does not exist "
            "before the first step, and after it Adam's first steps have size about $\\eta$ per "
            "parameter whatever the curvature.",
            "",
        ]
    return out


def _sharpness(s: dict[str, Any]) -> list[str]:
    c = s["config"]
    out = ["## Sharpness during training: the edge of stability", ""]
    near = pct(NEAR)
    for opt, thr in (("gd", "$2/\\eta$"), ("adam", "$38/\\eta$")):
        if opt not in s["sharp"]:
            continue
        sh = s["sharp"][opt]
        what = (
            "the sharpness $\\lambda_{\\max}$"
            if opt == "gd"
            else "the preconditioned sharpness ($\\lambda_{\\max}$ of "
            "$P_t^{-1/2} \\nabla^2 L \\, P_t^{-1/2}$)"
        )
        out += [
            f"![{NAMES[opt]}: sharpness over training against its threshold]"
            f"(figures/sharpness_{opt}.png)",
            "",
            f"**{NAMES[opt]}.** For each activation, at the largest rate at which every seed "
            "was stable *and learned* (ended below 90% of the targets' variance, the MSE of the "
            "best constant: a flat network's sharpness is only the curvature of its output "
            f"bias), {what} over {thr}: at the start"
            + (
                " (after the first step, where Adam's preconditioner first exists)"
                if opt == "adam"
                else ""
            )
            + f" ([geometric mean](#term-geometric-mean) over seeds: it spans decades) and its "
            f"median over the last {pct(c['tail'])} of training (geometric mean over seeds); "
            "both with "
            "95% intervals, start and end of the same seeds compared by the "
            "[paired test](#term-paired) on log10 of the ratio:"
            + (
                " At step 1, $P_1 = (1 - \\beta_1)(|g| + \\epsilon)$ entry by entry ($g$ the "
                "gradient), tiny "
                "where a gradient entry is near 0, so the preconditioned sharpness starts huge "
                "while each of Adam's first steps is still about $\\eta$ per entry."
                if opt == "adam"
                else ""
            ),
            "",
        ]
        for a in c["activations"]:
            e = sh["per_act"][a]
            if e.get("rate") is None:
                out.append(f"* {a}: no rate was stable, and learned, for every seed.")
                continue
            v = settle_verdict(e["ratio"])
            end = e["ratio"]
            log_start = _log10(e["start_per_seed"])
            moved = start_end_verdict(e["start_per_seed"], e["per_seed"])
            grew = _START_END_TEXT[moved] + edge_note(v, moved)
            flat = ""
            if e.get("skipped"):
                flat = (
                    " (Stable but flat at $\\eta$ = "
                    f"{', '.join(num(r) for r in e['skipped'])}: some "
                    "seed fit no better than a constant there, so those rates are not shown.)"
                )
            out.append(
                f"* {a} at $\\eta$ = {num(e['rate'])}: from {ratio_ci(mean_ci(log_start))} to "
                f"{ci(end)}: it " + _SETTLE_TEXT[v].format(near=near) + grew + "." + flat
            )
        grow = sh.get("sharpening", {})
        if grow:
            items = []
            for a in c["activations"]:
                g = grow[a]
                if not g.get("n"):
                    items.append(f"{a} n/a (a seed diverged)")
                    continue
                word = sharpening_verdict(g)
                items.append(f"{a} {ratio_ci(g)} ({word})")
            out += [
                "",
                f"At the smallest rate, $\\eta$ = {num(sh['smallest_rate'])}, far below the edge: "
                f"{what} late in training over its value at the start"
                + (" (step 1, where it is inflated by the tiny $P_1$)" if opt == "adam" else "")
                + " (geometric mean over seeds, 95% interval; *rises* or *falls* where the "
                "interval excludes 1): " + "; ".join(items) + ".",
            ]
        conv = proportion_ci(sh["converged"], sh["measured"])
        out += [
            "",
            compare_sentence(sh["compare"], thr),
            "",
            f"(The power iteration met its tolerance in {sh['converged']} of {sh['measured']} "
            f"measurements, {pct(conv['mean'])} [{pct(conv['lo'])}, {pct(conv['hi'])}]; an "
            "unconverged one is a lower estimate of the sharpness.)",
            "",
        ]
    if s["sharp"]:
        out += [
            "![Late sharpness over its threshold per activation](figures/settle.png)",
            "",
            "Caveat on the per-activation numbers (and this figure): each activation is shown "
            "at its own largest rate that was stable and learned for every seed, so "
            "activations differ in $\\eta$ as well as in shape, which is why the families are "
            "compared at one common rate above; and a run that starts above the threshold "
            "(a start ratio above 1) is not "
            "at a quadratic's minimum: the first steps move it to flatter ground (a "
            "*catapult*) instead of diverging, which the quadratic model does not describe.",
            "",
        ]
    return out


def _confounds(s: dict[str, Any]) -> list[str]:
    c = s["config"]
    return [
        "## What this run does not show",
        "",
        "* **The grid.** Rates are a factor of 2 apart: a largest stable rate is known to that "
        "factor only, and an agreement with a bound is an agreement to within the grid step.",
        f"* **Finite training.** {c['steps']} steps: a member that would diverge later, or "
        "reach the edge of stability later, is counted as stable here.",
        '* **The stability rule.** "Ended below its initial loss" counts a member that '
        "oscillates without blowing up, or one that collapsed to a constant output, as "
        "stable (the table marks the latter *flat*: a largest stable rate that is flat for "
        "most seeds says the network survives that rate, not that it learns at it); the "
        "divergence cut-off is arbitrary too.",
        f"* **One initialisation and one task.** `{c['init']}` initialisation and a 1-D "
        "regression; sharpness at initialisation (and so the bound) depends on both, and a "
        "deeper stack under another initialisation may be sharper or flatter.",
        f"* **Sharpness at one depth only** (D = {c['sharp_depth']}), estimated by power "
        "iteration to a relative tolerance of 10⁻³ with a capped number of iterations, in "
        "float32.",
        "* **Momentum is full batch**: heavy-ball on exact gradients, not stochastic SGD.",
        "",
    ]
