"""The unit-states chapter: every number and verdict read from the run's summary.

The verdict sentences are small functions of summary pieces (``*_sentence``), so that tests can
feed them hand-set summaries and check each verdict both ways.
"""

from __future__ import annotations

import math
from typing import Any

from actlab.experiments.base import Results
from actlab.report.format import ci, num, pct

__all__ = [
    "report",
    "construction_table",
    "fixed_input_sentence",
    "rai_fixed_sentence",
    "rai_domain_sentence",
    "change_verdict",
    "training_table",
    "off_story",
    "domain_sentence",
    "rai_sentence",
    "kill_sentence",
    "saturation_sentence",
    "init_theory_sentence",
    "underflow_sentence",
    "untrained_sentence",
    "resolution_sentence",
    "kill_loss_sentence",
]

NAMES = {
    "sparsity": "sparsity",
    "dead": "[dead](#term-dead)",
    "inactive": "[inactive](#term-inactive)",
    "saturated": "[saturated](#term-saturated) on every input",
    "saturated_share": "saturated share",
}


def _pct_ci(stat: dict[str, Any]) -> str:
    """A fraction's mean and interval as percentages."""
    mean, lo, hi = stat.get("mean"), stat.get("lo"), stat.get("hi")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return pct(mean)
    return f"{pct(mean)} [{pct(lo)}, {pct(hi)}]"


def construction_table(
    applicable: dict[str, dict[str, bool]], underflow: dict[str, float | None] | None = None
) -> str:
    """Markdown table: for each activation, which fractions can be non-zero ("measured") and
    which are zero by construction, with the reason. An activation whose float32 output rounds
    to exactly 0 below some ``z`` (``underflow``) has dead units and sparsity only through that
    rounding: "0 in exact arithmetic", and measured."""
    underflow = underflow or {}
    why = {
        "dead": "no exact zero region",
        "sparsity": "output exactly 0 only at z = 0",
        "saturated": "unbounded: cannot saturate",
        "inactive": "bounded: z < 0 is not an off state",
    }
    head = (
        "| activation | dead | sparsity | inactive | saturated (every input, share) | τ-dormant |"
    )
    rows = [head, "|---|---|---|---|---|---|"]
    for act, app in applicable.items():
        cells = []
        for key in ("dead", "sparsity", "inactive", "saturated"):
            cells.append("measured" if app[key] else f"0 by construction ({why[key]})")
        if act == "sigmoid" and not app["sparsity"]:
            cells[1] = "0 by construction (never 0)"
        z = underflow.get(act)
        if not app["dead"] and z is not None:
            note = (
                f"0 in exact arithmetic; float32 rounds the output to 0 for z < {num(z)}: measured"
            )
            cells[0] = cells[1] = note
        if not app["inactive"]:
            cells[2] = "not applicable (bounded: z < 0 is not off)"
        dormant = "measured (τ = 0: only where dead is)"
        rows.append(f"| {act} | " + " | ".join(cells) + f" | {dormant} |")
    return "\n".join(rows)


def change_verdict(entry: dict[str, Any]) -> str:
    """Whether the layer-mean of one fraction moved from initialisation to the end of training
    (paired test over seeds): ``up``, ``down`` or ``within noise``."""
    if not entry["changed"]:
        return "within noise"
    return "up" if entry["end"]["mean"] > entry["start"]["mean"] else "down"


def training_table(
    acts: list[str],
    applicable: dict[str, dict[str, bool]],
    rows: dict[str, dict],
    steps: int,
    underflow: dict[str, float | None] | None = None,
) -> str:
    """Markdown table: per activation and applicable fraction, the layer mean at initialisation
    and after training (95% intervals over seeds), the verdict, and the layer with the largest
    fraction at the end. Dead and sparsity rows also appear for an activation whose float32
    output rounds to 0 (``underflow``) where they were non-zero at some measured step."""
    underflow = underflow or {}
    out = [
        f"| activation | fraction (mean over layers) | at initialisation | after {steps} steps "
        "| change | largest at the end |",
        "|---|---|---|---|---|---|",
    ]
    for act in acts:
        app, r = applicable[act], rows[act]
        keys = []
        if app["dead"]:
            keys += ["dead", "sparsity"]
        elif app["inactive"]:
            keys += ["inactive"]
        if not app["dead"] and underflow.get(act) is not None:
            keys += [k for k in ("dead", "sparsity") if r[k].get("max", 0) > 0]
        if app["saturated"]:
            keys += ["saturated", "saturated_share"]
        keys += [k for k in r if k.startswith("dormant_") and (app["dead"] or k != "dormant_0")]
        for key in keys:
            e = r[key]
            name = NAMES[key] if key in NAMES else f"τ-dormant, τ = {key.split('_')[1]}"
            w = e.get("worst_end")
            where = f"layer {w['layer']} ({pct(w['fraction'])})" if w and w["fraction"] else "none"
            out.append(
                f"| {act} | {name} | {_pct_ci(e['start'])} | {_pct_ci(e['end'])} | "
                f"{change_verdict(e)} | {where} |"
            )
    return "\n".join(out)


def init_theory_sentence(activation: str, gap: float, theory_max: float, row: dict | None = None,
                         n_inputs: int = 1) -> str:  # fmt: skip
    """Mean-field saturated share at init against the measurement for the trained networks; with
    ``row`` holding ``first_theory`` (exact for uniform weights), ``first_gauss`` (the Gaussian
    formula) and ``first_measured``, also the first layer, where they differ."""
    text = (
        f"{activation}: theory predicts a saturated share of at most {pct(theory_max)} per layer "
        f"at initialisation; the measured layer means differ from it by at most "
        f"{num(100 * gap, 2)} percentage points"
    )
    if row and theory_max < 1e-6 and row.get("measured_init_max", 1.0) == 0:
        text = (
            f"{activation}: theory predicts fewer than one saturated (input, unit) pair in a "
            "million at initialisation, and not one was measured"
        )
    if row and abs(row.get("first_gauss", 0.0) - row.get("first_theory", 0.0)) > 1e-12:
        text += (
            f". At layer 1 a unit's $z$ on one input is a sum of {n_inputs + 1} uniform numbers "
            f"(weights times the input's entries, and the bias), not Gaussian: the exact share "
            f"there is {pct(row['first_theory'])} (the "
            f"cross), the Gaussian formula would say {pct(row['first_gauss'])}, measured "
            f"{_pct_ci(row['first_measured'])}"
        )
    return text


def underflow_sentence(activation: str, z: float, sparsity: dict, dead: dict) -> str:
    """Where an activation's float32 output rounds to exactly 0: the largest sparsity and dead
    fraction of one layer at any measured step (entries with ``max``)."""
    text = (
        f"In float32, {activation}'s output is exactly 0 for z below about {num(z)} (exact "
        f"arithmetic gives 0 only at z = 0): up to {pct(sparsity['max'])} of one layer's (input, "
        "unit) pairs are exactly 0 at some measured step"
    )
    if dead.get("max", 0) > 0:
        return text + f", and up to {pct(dead['max'])} of one layer's units are [dead](#term-dead)"
    return text + ", though no unit is [dead](#term-dead)"


def untrained_sentence(rows: dict[str, dict], steps: int) -> str:
    """The activations whose mean training loss fell by less than half: their unit states after
    training say little about training. Empty if there are none."""
    slow = [a for a, r in rows.items() if r["loss_end"]["mean"] > 0.5 * r["loss_start"]["mean"]]
    if not slow:
        return ""
    which = ", ".join(
        f"{a} ({num(rows[a]['loss_start']['mean'])} → {num(rows[a]['loss_end']['mean'])})"
        for a in slow
    )
    return (
        f"The training loss fell by less than half in {steps} steps for {which}: "
        + (
            "this network barely trained, so its"
            if len(slow) == 1
            else "these barely trained, so their"
        )
        + " unit states after training say little about what training does to units"
    )


def saturation_sentence(row: dict[str, Any]) -> str:
    """One (activation, sigma_w^2) cell of the saturation sweep: the largest gap and the layers
    where theory falls outside the measured 95% interval."""
    outside, zero = row["layers_outside"], row.get("layers_zero", [])

    def layers(values: list[int]) -> str:
        return ("layers " if len(values) > 1 else "layer ") + ", ".join(map(str, values))

    other = " other" if zero else ""
    where = (
        f"theory lies inside the measured 95% interval at every{other} layer"
        if not outside
        else f"theory lies outside the measured 95% interval at {layers(outside)}"
    )
    if zero:
        where = (
            f"every network measured 0 at {layers(zero)} (an interval of zero width), where "
            f"theory expects at most {num(row['zero_expected_pairs'], 2)} saturated pairs per "
            f"network; {where}"
        )
    return (
        f"{row['activation']} at $\\sigma_w^2 = {row['sigma_w2']:g}$: largest gap "
        f"{num(100 * row['max_gap'], 2)} percentage points (layer {row['gap_layer']}: measured "
        f"{pct(row['measured_at'])}, theory {pct(row['theory_at'])}); {where}"
    )


def sweep_verdict(rows: list[dict], width: int, networks: int) -> str:
    """How often the theory misses the measured interval over the whole sweep, counting only
    layers whose interval has non-zero width."""
    checked = sum(r["depth"] - len(r["layers_zero"]) for r in rows)
    outside = sum(len(r["layers_outside"]) for r in rows)
    return (
        f"The theory is the limit of infinite width; at $N = {width}$ the pre-activations of one "
        "input are not exactly Gaussian and $q^l$ fluctuates from network to network. With "
        f"{networks} networks per value, the theory lies outside the measured 95% interval at "
        f"{outside} of the {checked} (activation, $\\sigma_w^2$, layer) points whose interval has "
        "non-zero width (about 5% would by chance alone)."
    )


def _cells(cells: list[dict], variant: str) -> list[dict]:
    return [c for c in cells if c["variant"] == variant]


def fixed_input_sentence(cells: list[dict], variant: str) -> str:
    """Whether the fixed-input frequency agrees with the formula (inside its Wilson interval)
    in every cell; otherwise which cells disagree and by how much."""
    mine = _cells(cells, variant)
    bad = [c for c in mine if not c["fixed"]["lo"] <= c["formula"] <= c["fixed"]["hi"]]
    if not bad:
        return (
            f"the formula lies inside the Wilson interval of the fixed-input frequency in all "
            f"{len(mine)} cells"
        )
    worst = max(bad, key=lambda c: abs(c["fixed"]["mean"] - c["formula"]))
    return (
        f"the formula lies outside the Wilson interval of the fixed-input frequency in "
        f"{len(bad)} of {len(mine)} cells (each cell alone misses with probability about "
        f"{pct(0.05)}); "
        f"the largest gap is at N = {worst['width']}, D = {worst['depth']}: measured "
        f"{pct(worst['fixed']['mean'])}, formula {pct(worst['formula'])}"
    )


def rai_fixed_sentence(cells: list[dict]) -> str:
    """RAI's fixed-input frequency against the symmetric formula (which does not apply to it):
    in how many cells its Wilson interval lies wholly below."""
    mine = _cells(cells, "relu_rai")
    below = [c for c in mine if c["fixed"]["hi"] < c["formula"]]
    return (
        f"the frequency lies wholly below the symmetric formula in {len(below)} of {len(mine)} "
        "cells (the formula does not apply to RAI's asymmetric weights)"
    )


def rai_domain_sentence(cells: list[dict]) -> str:
    """The range of RAI's whole-domain frequency over the cells (no bound applies to it)."""
    mine = _cells(cells, "relu_rai")
    lo = min(mine, key=lambda c: c["constant"]["mean"])
    hi = max(mine, key=lambda c: c["constant"]["mean"])
    return (
        f"constant networks from {pct(lo['constant']['mean'])} (N = {lo['width']}, "
        f"D = {lo['depth']}) to {pct(hi['constant']['mean'])} (N = {hi['width']}, "
        f"D = {hi['depth']}) of the initialisations"
    )


def domain_sentence(cells: list[dict], variant: str) -> str:
    """Where the whole-domain frequency lies against the fixed-input bound."""
    mine = _cells(cells, variant)
    above = [c for c in mine if c["constant"]["lo"] > c["formula"]]
    never = all(c["constant"]["k"] == 0 for c in mine)
    n = mine[0]["constant"]["n"] if mine else 0
    if never:
        return (
            f"not one network was constant on the probe inputs (0 of {n} in every cell): a layer "
            "can have $z \\le 0$ on every unit at one input, but the next layer still sees a "
            "signal that varies with the input"
        )
    if above:
        c = above[0]
        return (
            f"the whole-domain frequency lies above the bound in {len(above)} cells (e.g. N = "
            f"{c['width']}, D = {c['depth']}: {pct(c['constant']['mean'])} against "
            f"{pct(c['formula'])}), which should not happen"
        )
    gaps = [c["formula"] - c["constant"]["mean"] for c in mine]
    worst = mine[max(range(len(mine)), key=lambda i: gaps[i])]
    return (
        "the whole-domain frequency is at or below the bound up to noise in every cell (no "
        "Wilson interval lies wholly above it); the bound is "
        f"loosest at N = {worst['width']}, D = {worst['depth']} (constant in "
        f"{pct(worst['constant']['mean'])} of networks, bound {pct(worst['formula'])})"
    )


def resolution_sentence(cells: list[dict], ring: int) -> str:
    """How much the probes' density matters: networks constant on the grid but not on the
    directions, and how many counts halving the directions would change."""
    grid_extra = [c["constant_grid"] - c["constant"]["k"] for c in cells]
    half_extra = [c["constant_half"] - c["constant"]["k"] for c in cells]
    text = (
        f"the grid alone would have counted {sum(grid_extra)} more networks constant, in "
        f"{sum(e > 0 for e in grid_extra)} of {len(cells)} cells"
    )
    if not any(half_extra):
        return text + (
            f"; with half the directions ({ring // 2}) not one count changes, so the probes are "
            "dense enough for these counts"
        )
    i = max(range(len(cells)), key=lambda j: half_extra[j])
    c = cells[i]
    half_width = (c["constant"]["hi"] - c["constant"]["lo"]) / 2
    return text + (
        f"; with half the directions ({ring // 2}) {sum(half_extra)} more, in "
        f"{sum(e > 0 for e in half_extra)} cells (at most {half_extra[i]} of {c['constant']['n']} "
        f"networks, at N = {c['width']}, D = {c['depth']}, against a Wilson half-width of "
        f"{pct(half_width)} there), so a denser set could lower the counts a little further"
    )


def rai_sentence(comparisons: list[dict]) -> str:
    """RAI against symmetric He initialisation, cell by cell (Welch's test on the 0/1
    outcomes)."""
    lower = [c for c in comparisons if c["differs"] and c["rai"]["mean"] < c["relu"]["mean"]]
    higher = [c for c in comparisons if c["differs"] and c["rai"]["mean"] > c["relu"]["mean"]]
    if not lower and not higher:
        return (
            "RAI's whole-domain frequency is within noise of symmetric He initialisation in "
            f"every one of the {len(comparisons)} cells"
        )
    parts = []
    if lower:
        best = max(lower, key=lambda c: c["relu"]["mean"] - c["rai"]["mean"])
        parts.append(
            f"By [Welch's test](#term-welch) on the 0/1 outcomes of the two independent sets "
            f"of networks, RAI lowers the frequency of constant networks in {len(lower)} of "
            f"{len(comparisons)} cells (most at N = {best['width']}, D = {best['depth']}: "
            f"{pct(best['rai']['mean'])} against {pct(best['relu']['mean'])})"
        )
    if higher:
        c = higher[0]
        parts.append(
            f"raises it in {len(higher)} (e.g. N = {c['width']}, D = {c['depth']}: "
            f"{pct(c['rai']['mean'])} against {pct(c['relu']['mean'])})"
        )
    rest = len(comparisons) - len(lower) - len(higher)
    return "; ".join(parts) + f"; the other {rest} cells are within noise"


def kill_sentence(kill: list[dict]) -> str:
    """The killed fraction across the learning-rate grid, and the smallest rate at which it
    exceeds the smallest rate's (paired test, seed by seed)."""
    first, last = kill[0], kill[-1]
    up = [
        k
        for k in kill
        if k["differs_from_smallest"] and k["killed"]["mean"] > first["killed"]["mean"]
    ]
    text = (
        f"at η = {first['lr']:g} one step kills {_pct_ci(first['killed'])} of the hidden units, "
        f"at η = {last['lr']:g} {_pct_ci(last['killed'])}"
    )
    if up:
        larger = kill[kill.index(up[0]) + 1 :]
        n_up = sum(k in up for k in larger)
        if n_up == len(larger):
            return text + (
                f"; from η = {up[0]['lr']:g} on (the smallest rate where a paired test, seed by "
                f"seed, separates it from η = {first['lr']:g}) more units die than at the "
                "smallest rate"
            )
        return text + (
            f"; more units die than at the smallest rate at η = {up[0]['lr']:g} (the smallest "
            f"rate where a paired test, seed by seed, separates it from η = {first['lr']:g}) "
            f"and at {n_up} of "
            f"the {len(larger)} larger rates"
        )
    return text + f"; every rate is within noise of η = {first['lr']:g}"


def kill_loss_sentence(kill: list[dict], before: dict[str, float]) -> str:
    """What the one step does to the training loss at each rate (geometric means; paired test
    on log losses), and how many units the largest loss-lowering step kills."""

    def rates(entries: list[dict]) -> str:
        return ", ".join(f"{k['lr']:g}" for k in entries)

    lower = [k for k in kill if k["loss_change"] == "lower"]
    higher = [k for k in kill if k["loss_change"] == "higher"]
    same = [k for k in kill if k["loss_change"] == "within noise"]
    parts = [f"Before the step the training MSE is {ci(before)} ([geometric mean over seeds]"
             "(#term-geometric-mean))"]  # fmt: skip
    verdicts = []
    if lower:
        verdicts.append(f"lowers it at η = {rates(lower)}")
    if same:
        verdicts.append(f"leaves it within noise at η = {rates(same)}")
    if higher:
        verdicts.append(f"raises it at η = {rates(higher)}")
    parts.append(
        "by a [paired test](#term-paired) on the log losses, seed by seed, one step "
        + "; ".join(verdicts)
    )
    text = "; ".join(parts) + "."
    if lower:
        best = lower[-1]
        text += (
            f" The largest rate that still lowers the loss, η = {best['lr']:g}, kills "
            f"{_pct_ci(best['killed'])} of the units"
        )
        text += "." if not higher else ""
    if higher:
        worst = higher[-1]
        text += (" The" if not lower else "; the") + (
            f" large kills come with steps that raise the loss (η = {worst['lr']:g}: MSE "
            f"{ci(worst['loss_after'])} after the step): the units die in steps that overshoot."
        )
    return text


def off_story(task: str, rows: dict[str, dict], applicable: dict, init: str, sw2: float,
              depth: int) -> str:  # fmt: skip
    """What the off fractions say for one task: where units start off, and which way training
    moves them (ReLU's dead fraction against the others' inactive fraction)."""
    parts = []
    relu = [a for a in rows if applicable[a]["dead"]]
    soft = [a for a in rows if applicable[a]["inactive"] and not applicable[a]["dead"]]
    for act in relu[:1]:
        r = rows[act]
        start = (
            f"At initialisation {pct(r['off_init_first'])} of {act}'s units in layer 1 are dead "
            f"on the {task} probes and {pct(r['off_init_last'])} in layer {depth}"
        )
        if init == "torch" and r["off_init_last"] > r["off_init_first"]:
            start += (
                f": the default weights have $\\sigma_w^2 = {num(sw2)}$, far below the 2 that "
                "keeps a ReLU signal's size (ReLU's $\\chi_1 = \\sigma_w^2/2$ is "
                f"{num(sw2 / 2)} per layer), so the part of $z$ that varies with the input "
                "shrinks layer after layer while the part that is the same for every input (the "
                "bias, and the weighted mean of the layer below) does not: deep units end up "
                "switched on or off for all inputs at once"
            )
        parts.append(start + ".")
        v = change_verdict(r["dead"])
        if v == "down":
            parts.append(
                f"Training lowers {act}'s dead fraction from {_pct_ci(r['dead']['start'])} to "
                f"{_pct_ci(r['dead']['end'])}: a dead unit's own weights get no gradient, but "
                "the layers below it keep changing, and that can lift its input above 0 again (so "
                "can a training input between the probes on which the unit is not off)."
            )
        elif v == "up":
            parts.append(
                f"Training raises {act}'s dead fraction from {_pct_ci(r['dead']['start'])} to "
                f"{_pct_ci(r['dead']['end'])}."
            )
        else:
            parts.append(f"Training leaves {act}'s dead fraction within noise.")
    if soft:
        ends = ", ".join(f"{a} {_pct_ci(rows[a]['inactive']['end'])}" for a in soft)
        parts.append(
            "The activations with a non-zero slope below 0 end with these inactive fractions "
            f"({ends}); their inactive units still pass a gradient, so they can come back."
        )
    return " ".join(parts)


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def kill_layer_sentence(worst: dict[str, Any]) -> str:
    """Where the largest rate kills most."""
    return (
        f"At η = {worst['lr']:g} the most units die in layer {worst['layer']} "
        f"({pct(worst['fraction'])} of its units, mean over seeds)."
    )


def _nan(obj: Any) -> Any:
    """JSON nulls (NaN written by the store) back to NaN."""
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {k: _nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan(v) for v in obj]
    return obj


def report(results: Results) -> str:
    """The chapter's Markdown, ending with its exercises."""
    from actlab.experiments.unit_states.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = results.summary
    s = {**s, "tasks": _nan(s["tasks"]), "saturation": _nan(s["saturation"])}
    acts = list(s["activations"])
    depth, width, steps, seeds = s["depth"], s["width"], s["steps"], s["seeds"]
    init_link = {
        "torch": "[default initialisation](#term-default-init)",
        "he": "[He initialisation](#term-he-init)",
        "xavier": "[Xavier initialisation](#term-xavier-init)",
    }[s["init"]]
    out = ["# How units turn on and off", ""]
    out += [
        "A unit that outputs the same thing for every input carries no information, and if its "
        "slope there is zero it also passes no gradient back. This chapter asks how easily that "
        "happens: at initialisation, during training, and in one careless step. A ReLU unit is "
        "[off](#term-off) on an input where $z \\le 0$ (its output is exactly 0), and "
        "[dead](#term-dead) when it is off on every probe input; a leaky ReLU, GELU or SiLU unit "
        "with $z < 0$ on every input is [inactive](#term-inactive) but still passes a small "
        "gradient; a tanh or sigmoid unit on its flat tails is [saturated](#term-saturated); and "
        "any unit can be much quieter than its neighbours.",
        "",
        f"Networks of depth $D = {depth}$ and width $N = {width}$ with each of "
        f"{', '.join(acts)} are trained on two tasks, a regression (noisy $\\sin x$ on "
        f"$[-\\pi, \\pi]$, {s['n_train']} points, noise standard deviation {num(s['noise'])}) "
        f"and a classification (two moons, {s['n_train']} points), with full-batch Adam at "
        f"$\\eta = {num(s['lr'])}$ for {steps} steps, {seeds} [seeds](#term-seed) per "
        f"activation, all side by side in one [ensemble](#term-ensemble) per task. Weights "
        f"start from {init_link}; within a seed every activation starts from the same weights. "
        f"The fractions are measured on {s['n_probe']} probe inputs per task (regression: an "
        "even grid on $[-\\pi, \\pi]$; classification: a fresh draw of the moons), per hidden "
        "layer, and averaged over seeds with a [95% interval](#term-t-interval).",
        "",
        "## What is measured, and what is zero by construction",
        "",
        "Per hidden layer: the *sparsity* (share of (input, unit) pairs whose output is exactly "
        "0), the share of [dead](#term-dead) units, of [inactive](#term-inactive) units, of "
        "units [saturated](#term-saturated) on every input, the *saturated share* of (input, "
        "unit) pairs (saturation input by input, which the every-input count misses), and of "
        f"[τ-dormant](#term-dormant) units for τ = {', '.join(f'{t:g}' for t in s['taus'])}. "
        "The threshold τ is ReDo's (Sokar et al., 2023): a unit's score is its mean $|h|$ over "
        "the probe inputs divided by the average of that over its layer, and the unit is "
        "τ-dormant when the score is at most τ; τ = 0 counts exactly the units whose output is 0 "
        "on every input, τ = 0.025 is ReDo's setting, τ = 0.1 a looser one. Each τ is named "
        "wherever a τ-dormant fraction appears. Not every fraction can be non-zero for every "
        "activation; the figures leave out a fraction where it is zero by construction:",
        "",
        construction_table(s["applicable"], s.get("underflow")),
        "",
    ]
    # ---------------------------------------------------------------- theory
    out += [
        "## Theory",
        "",
        "**Born dead.** Take a ReLU network with zero biases and weights from any symmetric "
        "continuous distribution, and one fixed input $x \\ne 0$. Given a non-zero input to a "
        "layer, each unit's $z = w \\cdot h$ is symmetric and continuous, so it is off "
        "($z \\le 0$) with probability 1/2, independently of the other units (their weights are "
        "independent): the whole layer is off with probability $2^{-N}$. An all-zero layer "
        "stays zero without biases. So the network survives its $D$ layers with probability "
        "$(1 - 2^{-N})^D$:",
        "",
        "$$P(\\text{some layer all off at } x) = 1 - (1 - 2^{-N})^D.$$",
        "",
        "Without biases a ReLU network is positively homogeneous: scaling the input by a factor "
        "$\\lambda > 0$ scales every layer's output by $\\lambda$. So a network that is constant "
        "over a domain holding $x$ and $3x$ is zero there, and its last hidden layer is all off "
        "at $x$: being constant is a sub-event of the formula's event, and the formula is an "
        "upper bound on the probability of being constant (Lu, Shin, Su and Karniadakis 2019 "
        "study that event).",
        "",
        "**Saturation at initialisation.** In a wide network with weights of variance "
        "$\\sigma_w^2/\\text{fan-in}$ and biases of variance $\\sigma_b^2$, each pre-activation "
        "of layer $l$ is close to $\\mathcal{N}(0, q^l)$, with the length map",
        "",
        "$$q^{l+1} = \\sigma_w^2 E[\\varphi(z)^2] + \\sigma_b^2, \\quad z \\sim "
        "\\mathcal{N}(0, q^l),$$",
        "",
        "started from $q^1 = \\sigma_w^2 \\cdot (\\text{mean square of the input's entries}) + "
        "\\sigma_b^2$ for each probe input. A tanh unit is saturated where "
        "$|z| > \\operatorname{artanh}(0.99) \\approx 2.65$, which happens with probability "
        "$2(1 - \\Phi(2.65/\\sqrt{q^l}))$; sigmoid likewise with its band. This predicts the "
        "saturated share input by input; it says nothing directly about units saturated on "
        f"every input. {init_link.capitalize() if s['init'] != 'torch' else 'The ' + init_link} "
        "has small $\\sigma_w^2$, so its prediction is near zero; a sweep over $\\sigma_w^2$ "
        "below puts the theory to a real test.",
        "",
    ]
    # ---------------------------------------------------------------- training
    out += [
        "## Unit states over training",
        "",
        "In the tables, *change* is *up* or *down* where a [paired test](#term-paired) over the "
        "seeds (the same networks at initialisation and after training) separates the layer "
        "mean after training from the one at initialisation, and "
        "*within noise* where it does not; fractions that are zero by construction are left "
        "out.",
        "",
    ]
    for task in ("regression", "classification"):
        rows = {r["activation"]: r for r in s["tasks"][task]}
        out += [
            f"### The {task} task",
            "",
            f"![Unit states per layer, {task}](figures/unit_states_{task}.png)",
            "",
            "*Each panel: one fraction per hidden layer, input left, output right; dashed at "
            f"initialisation, solid after {steps} steps with its 95% band over seeds; an "
            "activation is left out of a panel where that fraction is zero by construction. "
            "Black crosses: the predicted saturated share at initialisation (layer 1 exact for "
            "the initialisation's weights, deeper layers the mean field). The ReLU-like "
            "activations start from the same weights, so their dashed lines nearly coincide.*",
            "",
        ]
        underflow = s.get("underflow", {})
        out += [training_table(acts, s["applicable"], rows, steps, underflow), ""]
        story = off_story(task, rows, s["applicable"], s["init"], s["init_variances"][0], depth)
        floats = [
            underflow_sentence(a, underflow[a], rows[a]["sparsity"], rows[a]["dead"]) + "."
            for a in acts
            if not s["applicable"][a]["dead"]
            and underflow.get(a) is not None
            and rows[a]["sparsity"].get("max", 0) > 0
        ]
        story = " ".join([story, *floats]).strip()
        if story:
            out += [story, ""]
        n_inputs = 1 if task == "regression" else 2
        theory_lines = [
            init_theory_sentence(
                act, rows[act]["theory_gap"], rows[act]["theory_max"], rows[act], n_inputs
            )
            for act in acts
            if "theory_gap" in rows[act]
        ]
        if theory_lines:
            out += [f"- {line}." for line in theory_lines] + [""]
        losses = ", ".join(
            f"{act} {ci(rows[act]['loss_start'])} → {ci(rows[act]['loss_end'])}" for act in acts
        )
        div = sum(rows[a]["diverged"] for a in acts)
        out += [
            f"Training loss ({'MSE' if task == 'regression' else 'cross-entropy'}), start → "
            f"end, mean and 95% interval over seeds: {losses}."
            + (f" {div} members diverged." if div else " No member diverged."),
            "",
        ]
        slow = untrained_sentence(rows, steps)
        if slow:
            out += [slow + ".", ""]
    out += [
        "![Unit states over training](figures/over_training.png)",
        "",
        "*The same fractions averaged over the hidden layers, at every measured step (a "
        "symmetric-log axis: linear near 0, logarithmic beyond).*",
        "",
        "![Where and when units go quiet](figures/layer_by_step.png)",
        "",
        "*Each activation's own way of going quiet (dead for ReLU, inactive for the other "
        "ReLU-like ones, the saturated share for tanh and sigmoid), per layer (input left) and "
        "measured step (initialisation at the top), mean over seeds; one grey scale for every "
        "panel, on a square-root scale so that small fractions still show, the largest cell of "
        "each panel in its title.*",
        "",
    ]
    # ---------------------------------------------------------------- saturation sweep
    if s["saturation"]:
        out += [
            "## Saturation at initialisation: theory against measurement",
            "",
            f"Networks of the same shape at initialisation, weights "
            f"$\\mathcal{{N}}(0, \\sigma_w^2/\\text{{fan-in}})$ and zero biases, for "
            f"$\\sigma_w^2$ in {', '.join(f'{v:g}' for v in s['sat_sigma_w2'])} "
            f"({s.get('sat_seeds', seeds)} networks per value, each the same standard draw "
            "rescaled), on the classification task's probe inputs. A saturated share far in the "
            "tail varies a lot from network to network, so it takes many networks to pin down.",
            "",
            "![Saturation at initialisation](figures/saturation_init.png)",
            "",
            "*Dots: measured saturated share per layer with its 95% interval over networks; "
            "lines: the mean-field prediction (wide-network limit); a symmetric-log axis, linear "
            "below 0.1%, so that the small shares of small $\\sigma_w^2$ stay visible.*",
            "",
        ]
        worst = max(s["saturation"], key=lambda r: r["max_gap"])
        out += [
            "Over every activation, $\\sigma_w^2$ and layer the largest gap between theory and "
            f"the seed mean is {num(100 * worst['max_gap'], 2)} percentage points "
            f"({worst['activation']}, $\\sigma_w^2 = {worst['sigma_w2']:g}$, layer "
            f"{worst['gap_layer']}). Cell by cell:",
            "",
        ]
        out += [f"- {saturation_sentence(r)}." for r in s["saturation"]] + [""]
        out += [
            sweep_verdict(s["saturation"], width, s.get("sat_seeds", seeds)),
            "",
        ]
    # ---------------------------------------------------------------- born dead
    cells = s["born_dead"]
    out += [
        "## Born dead",
        "",
        f"For each width $N$ in {', '.join(map(str, s['bd_widths']))} and depth $D$ in "
        f"{', '.join(map(str, s['bd_depths']))}: {s['bd_trials']} initialisations with zero "
        "biases and weights $\\mathcal{N}(0, 2/\\text{fan-in})$ "
        "([He initialisation](#term-he-init); symmetric: the setting of the formula), two "
        "inputs, computed in one batch (the depth-$D$ network is the first $D$ "
        "layers of the deepest one, so cells of one width share networks, and the cells of one "
        "curve are not independent). Two frequencies, "
        f"each with its [Wilson interval](#term-wilson-interval): (1) some hidden layer has "
        f"$z \\le 0$ on every unit at the fixed input ({s['bd_fixed_input'][0]:g}, "
        f"{s['bd_fixed_input'][1]:g}), the event of the formula (for ReLU: that layer is all "
        "[off](#term-off) there); (2) the network is constant on the probe inputs: its last "
        "hidden layer gives the same output on all of them (then so does the network; with "
        "random output weights the converse holds with probability 1). The probes are a "
        f"{s['bd_grid']} × {s['bd_grid']} grid covering $[-1, 1]^2$ plus the fixed input and, "
        f"for every network constant on those, {s.get('bd_ring', 0)} directions evenly spaced "
        "on the unit circle: by the homogeneity above, a zero-bias ReLU network is constant on "
        "the square exactly when it is zero in every direction, so directions are the only "
        "thing the probes must cover densely. Two checks of that density: "
        + (
            resolution_sentence(_cells(cells, "relu"), s["bd_ring"])
            if s.get("bd_ring")
            else "none (no directions in this run)"
        )
        + " (ReLU cells). Because the fixed input is among the probes, a ReLU network counted "
        "constant is also counted in (1), network by network. ReLU, leaky ReLU and GELU share "
        "the same weights; RAI is Lu et al.'s "
        "randomized asymmetric initialisation.",
        "",
        "![Born dead](figures/born_dead.png)",
        "",
        "*Per width (colour): the formula (line; for symmetric weights also an upper bound on "
        "the whole-domain frequency), the fixed-input frequency (filled circles) "
        "and the whole-domain frequency (open squares), with Wilson intervals; markers are "
        "shifted sideways a little so that both stay visible.*",
        "",
    ]
    for var in s["bd_variants"]:
        label = "ReLU with RAI" if var == "relu_rai" else var
        rai = var == "relu_rai"
        fixed = rai_fixed_sentence(cells) if rai else fixed_input_sentence(cells, var)
        domain = rai_domain_sentence(cells) if rai else domain_sentence(cells, var)
        out += [f"- {label}: fixed input: {fixed}; whole domain: {domain}."]
    out += [""]
    out += [
        "For leaky ReLU and GELU the fixed-input event (all pre-activations of a layer at most 0) "
        "has the same probability as for ReLU: the formula's argument never used the "
        "shape of the negative side. What differs is what follows: a leaky ReLU or GELU layer "
        "that is entirely on its negative side still passes a small signal that varies with "
        "the input, so the network does not become constant.",
        "",
        "**RAI (the details are ours).** We could not check the paper's exact "
        "distributions, only its description: one incoming "
        "weight per unit from a positive asymmetric distribution, the rest symmetric with a "
        "rescaled variance. Our choices: the positive weight sits at a position drawn uniformly "
        "among the unit's inputs and is drawn from Beta(2, 1) (mean 2/3, mean square 1/2); the "
        "others are normal with the variance that makes a unit's incoming weights' total mean "
        "square 2, as under He initialisation; biases stay zero. "
        + rai_sentence(s["rai_vs_relu"])
        + ". The formula does not apply to RAI (its weights are not symmetric); it is drawn "
        "as the symmetric reference.",
        "",
    ]
    # ---------------------------------------------------------------- one step
    kill = _nan(s["kill"])
    out += [
        "## Killed by one big step",
        "",
        f"A ReLU network of the trained shape ({init_link}, the regression task) takes one "
        f"full-batch SGD step at each learning rate of a log grid, {s['kill_seeds']} seeds "
        "each, every rate starting from the same weights per seed. A unit is *killed* if it is "
        "dead on the probe inputs after the step and was not before; before the step "
        f"{_pct_ci(_nan(s['dead_before']))} of the hidden units are already dead.",
        "",
        "![One-step kill](figures/one_step_kill.png)",
        "",
        "*Left: killed fraction of all hidden units, mean and 95% band over seeds; middle: per "
        "layer, one line per rate; right: the training loss after the step (geometric mean and "
        "95% band over seeds) against the loss before it.*",
        "",
        _upper_first(kill_sentence(kill)) + ". " + kill_layer_sentence(s["kill_worst_layer"]) + " "
        "A large step moves a unit's bias and incoming weights by a lot at once; if the move "
        "pushes $z$ below 0 on every input, the unit's own weights get no gradient from then "
        "on; only changes in the layers below it can bring it back.",
        "",
        "Rates per step: "
        + ", ".join(f"η = {k['lr']:g}: {_pct_ci(k['killed'])}" for k in kill)
        + ".",
        "",
        kill_loss_sentence(kill, _nan(s["kill_loss_before"])),
        "",
    ]
    out += [exercises_markdown(EXERCISES)]
    return "\n".join(out)
