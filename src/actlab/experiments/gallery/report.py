"""The gallery's Markdown section, built from the results alone (every number comes from the
run's ``summary``)."""

from __future__ import annotations

import math
import re

import numpy as np

from actlab.experiments.base import Results
from actlab.experiments.gallery.experiment import identical_on_window
from actlab.report.format import num, pct

__all__ = ["report"]

_CLASSIC = ("sigmoid", "tanh", "relu", "leaky_relu")
_SPOTLIGHT = ("tanh", "sigmoid", "relu", "leaky_relu", "gelu", "silu", "elu")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _sigma_label(sigma: float) -> str:
    return rf"$z \sim \mathcal{{N}}(0, {sigma:g}^2)$ ($s_z = {sigma:g}$)"


def _in_z(latex: str) -> str:
    """The registry's LaTeX (written in ``x``) in the tutorial's notation: the pre-activation is
    ``z``, and ``\\varphi`` means the activation only, so a Gaussian density written
    ``\\varphi`` (GELU's derivative) becomes ``\\Phi'``, the derivative of the normal CDF."""
    latex = re.sub(r"(?<![A-Za-z\\])x(?![A-Za-z])", "z", latex)
    return latex.replace(r"\varphi", r"\Phi'")


def report(results: Results) -> str:
    """The gallery's Markdown section (numbers from ``results`` only)."""
    from actlab.experiments.gallery.solutions import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = results.summary
    props = {p["name"]: p for p in s["properties"]}
    names = list(s["activations"])
    sigmas = [float(x) for x in s["sigmas"]]
    thr = float(s["flat_threshold"])
    lo, hi = num(s["z_min"]), num(s["z_max"])
    twins = identical_on_window(np.asarray(results.arrays["curves"]), names)
    classic = [n for n in _CLASSIC if n in props]
    out: list[str] = ["# Activation gallery", ""]
    out += [
        "This last chapter is a reference, to look an activation up when a chapter or a paper "
        "uses it; it is not meant to be read front to back. A unit computes its "
        r"*pre-activation* $z$ (a weighted sum of its inputs plus a bias) and outputs "
        r"$\varphi(z)$; in training, the gradient that reaches the unit is multiplied by "
        r"$\varphi'(z)$, so the shape of $\varphi'$ decides where learning signal flows and "
        f"where it stops. For {len(names)} activation functions it holds: "
        + ("the classic four overlaid, " if classic else "")
        + "every function and its derivative at a glance, their formulas, their properties "
        "measured on a grid (range, bounded, monotonic, zero-centred, smooth, kinks, slopes), "
        "and the share of Gaussian pre-activations on which each passes almost no gradient; "
        "exercises close it.",
        "",
        r"**How to read the figures.** $\varphi(z)$ is drawn solid and $\varphi'(z)$ dashed, "
        "in the activation's colour, which is the same in every figure of this tutorial. The "
        "small panels share their axes; a curve that leaves the y-range is clipped and the "
        "panel says *clipped* (the tables give each function's true range). Grey shading marks "
        rf"the *flat* inputs, where $|\varphi'(z)| < {thr:g}$."
        + (
            f" A red note in a panel says that it is identical, on $[{lo}, {hi}]$, to an "
            "earlier one."
            if twins
            else ""
        )
        + f" Every number was computed by this run ({s['methods']['grid']}), not copied from "
        "a table.",
        "",
    ]
    if classic:
        out += [
            "## The classic four",
            "",
            "![The classic activations and their derivatives overlaid](figures/classic.png)",
            "",
        ]
        overlay = "*Left: $\\varphi$; right: $\\varphi'$. A curve that runs on top of an "
        overlay += "earlier one is dashed (its legend says so)"
        if "relu" in props and "leaky_relu" in props:
            lr = props["leaky_relu"]
            overlay += (
                f"; leaky_relu's negative side (slope {num(lr['min_abs_deriv'])}, reaching "
                f"{num(lr['phi_min'])} at $z = {lo}$) is barely distinguishable from relu's 0 "
                "at this scale"
            )
        out += [overlay + ".*", ""]
        for n in classic:
            p = props[n]
            out += [f"**{n}**: $\\varphi(z) = {_in_z(p['latex'])}$, "
                    f"$\\varphi'(z) = {_in_z(p['latex_deriv'])}$.", ""]  # fmt: skip
        bits = [f"{n}'s at most {num(props[n]['max_abs_deriv'])}" for n in classic]
        out += [
            "The largest slope on the interval is the most a unit can multiply a gradient by "
            f"on its way back: {', '.join(bits)}.",
        ]
        if "sigmoid" in props:
            m = props["sigmoid"]["max_abs_deriv"]
            out += [
                f"A chain of ten sigmoid layers therefore shrinks a gradient by a factor of at "
                f"least {num(1 / m**10)} (before the weights are counted): the vanishing "
                "gradient in one line.",
            ]
        out += [""]

    out += [
        "## All activations at a glance",
        "",
        "![Every activation (solid) and its derivative (dashed), one panel each]"
        "(figures/activations.png)",
        "",
    ]
    if twins:
        items = []
        for a, b in twins:
            same_p = props[a]["p_flat"] == props[b]["p_flat"]
            items.append(
                f"{b} = {a}"
                + (
                    " (equal in every row of the flat-input table too)"
                    if same_p
                    else " (they part outside the window, as the flat-input table shows)"
                )
            )
        out += [
            f"*Identical on $[{lo}, {hi}]$, both in $\\varphi$ and $\\varphi'$: "
            + "; ".join(items)
            + ". Their panels look the same because they are the same there.*",
            "",
        ]

    out += ["## Formulas", ""]
    out += [
        r"$\sigma$ is the sigmoid and $\Phi$ the standard normal CDF ($\Phi'$ its density).",
        "",
    ]
    for n in names:
        p = props[n]
        out += [
            f"**{n}**: {p['reference']}",
            "",
            rf"$$\varphi(z) = {_in_z(p['latex'])}$$",
            "",
            rf"$$\varphi'(z) = {_in_z(p['latex_deriv'])}$$",
            "",
        ]

    out += ["## Properties, measured", ""]
    out += [
        f"Computed on $[{lo}, {hi}]$: the range of $\\varphi$; *bounded* when $|\\varphi|$ "
        "stops growing between $|z| \\le 10^4$ and $|z| \\le 10^8$; *monotonic* when "
        r"$\varphi$ never decreases on the grid; *zero-centred* when $\varphi$ is odd, "
        r"$\varphi(-z) = -\varphi(z)$ (its mean is then 0 for any symmetric input); *smooth* "
        r"when neither $\varphi$ nor $\varphi'$ jumps; the kinks are the points where one of "
        "them does, located by bisection.",
        "",
        "| activation | range | bounded | monotonic | zero-centred | smooth | kinks found |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in names:
        p = props[n]
        bounded = _yes(p["bounded"])
        if not p["bounded_agrees"]:
            bounded += f" (registry says {_yes(p['bounded_flag'])})"
        kinks = ", ".join(num(k) for k in p["kinks"]) or "none"
        out.append(
            f"| {n} | [{num(p['phi_min'])}, {num(p['phi_max'])}] | {bounded} | "
            f"{_yes(p['monotonic'])} | {_yes(p['zero_centred'])} | {_yes(p['smooth'])} | "
            f"{kinks} |"
        )
    out.append("")
    disagree = {n: props[n]["disagreements"] for n in names if props[n]["disagreements"]}
    if disagree:
        items = "; ".join(f"{n}: {', '.join(v)}" for n, v in disagree.items())
        out += [
            f"Where the measurement on $[{lo}, {hi}]$ and the registry's flags (which describe "
            f"the whole real line) disagree: {items}. A property such as a kink outside the "
            "interval cannot be seen on it.",
            "",
        ]
    else:
        out += ["Every measured property agrees with the flag the registry declares.", ""]
    out += [
        r"The slope: $\varphi(0)$, $\varphi'(0)$ (at a kink, the one-sided value that "
        r"autograd uses), the largest and smallest $|\varphi'|$ on the grid, and the *flat* "
        rf"fraction of the interval, where $|\varphi'| < {thr:g}$.",
        "",
        # \lvert, not "|", which a Markdown viewer would read as a column separator.
        r"| activation | $\varphi(0)$ | $\varphi'(0)$ | max $\lvert\varphi'\rvert$ | "
        r"min $\lvert\varphi'\rvert$ | flat fraction |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        p = props[n]
        out.append(
            f"| {n} | {num(p['phi_at_0'])} | {num(p['deriv_at_0'])} | "
            f"{num(p['max_abs_deriv'])} | {num(p['min_abs_deriv'])} | "
            f"{pct(p['flat_fraction'])} |"
        )
    out.append("")
    bad = [n for n in names if props[n]["non_finite"]]
    if bad:
        counts = ", ".join(f"{n} ({props[n]['non_finite']} points)" for n in bad)
        out += [
            f"Non-finite values on the grid (NaN or inf), left out of the numbers above: {counts}.",
            "",
        ]

    method = (
        rf"the Gaussian mass of $\{{z : |\varphi'(z)| < {thr:g}\}}$, whose end points are "
        rf"found on a grid of spacing {s['resolution']:g} over $[-8 s_z, 8 s_z]$ and refined "
        "by bisection, summed exactly with the normal CDF (a 0 in the table means below "
        r"$10^{-15}$, the mass beyond $8 s_z$)."
    )
    out += _saturation_section(names, props, sigmas, thr, method)
    out += [exercises_markdown(EXERCISES), ""]
    return "\n".join(out).rstrip() + "\n"


def _init_scales() -> str:
    """Which sd a pre-activation has after the common initialisations: arithmetic from their
    definitions (weight variance times fan-in times the inputs' mean square, bias left out)."""
    he, default, xavier = math.sqrt(2.0), math.sqrt(1.0 / 3.0), 1.0
    return (
        "Which $s_z$ does a unit see? For inputs of mean square 1, a weight variance of "
        "$\\sigma_w^2/\\text{fan-in}$ gives pre-activations of variance $\\sigma_w^2$ (the "
        f"bias aside), so $s_z = \\sigma_w$: [He initialisation](#term-he-init) "
        f"($\\sigma_w^2 = {num(he**2)}$) gives $s_z = {num(he)}$, "
        f"[Xavier initialisation](#term-xavier-init) $s_z = {num(xavier)}$ (when fan-in and "
        f"fan-out are equal) and PyTorch's [default initialisation](#term-default-init) "
        f"($\\sigma_w^2 = 1/3$) $s_z = {num(default)}$. The columns well above 1 are what "
        "larger weights, "
        "unscaled inputs or a spread that grows from layer to layer produce."
    )


def _saturation_section(
    names: list[str], props: dict[str, dict], sigmas: list[float], thr: float, method: str
) -> list[str]:
    out = ["## Where the gradient vanishes: flat inputs", ""]
    tanh_edge = math.sqrt(1.0 - thr) if thr < 1 else None
    sig_edge = (1.0 - math.sqrt(1.0 - 4.0 * thr)) / 2.0 if thr < 0.25 else None
    relation = ""
    if tanh_edge is not None and sig_edge is not None:
        relation = (
            rf" For tanh, flat means $|\tanh z| > {tanh_edge:.4g}$; for the sigmoid, "
            rf"$\sigma(z)$ outside $[{sig_edge:.4g}, {1 - sig_edge:.4g}]$. These are per-input "
            "thresholds on the slope. The tutorial's [saturated](#term-saturated) is a "
            r"different, output-based notion with its own band ($|\tanh z| > 0.99$, or a "
            "sigmoid output outside $[0.01, 0.99]$; a unit is saturated when it is in the band "
            "on every input it is probed with). Likewise a ReLU unit whose pre-activation is "
            "negative on every probe input is [inactive](#term-inactive): it outputs exactly 0 "
            "on all of them, which makes it [dead](#term-dead)."
        )
    out += [
        rf"Call an input *flat* for an activation when $|\varphi'(z)| < {thr:g}$: the unit "
        "passes (almost) no gradient back for it. Flat inputs lie on the plateaus of tanh and "
        "the sigmoid, and on the whole negative side of ReLU." + relation + " Which inputs are "
        "flat depends on the scale of the pre-activation: for "
        r"$z \sim \mathcal{N}(0, s_z^2)$, with $s_z$ its standard deviation (sd), the table "
        rf"gives $P(|\varphi'(z)| < {thr:g})$, the share of inputs on which a unit learns "
        f"(almost) nothing. Method: {method}",
        "",
        _init_scales(),
        "",
        "![Derivatives with their flat regions shaded](figures/derivatives.png)",
        "",
        "![Probability that the derivative is flat, per activation and sd of the "
        "pre-activation](figures/saturation.png)",
        "",
        "| activation | " + " | ".join(rf"$s_z = {x:g}$" for x in sigmas) + " |",
        "|---|" + "---|" * len(sigmas),
    ]
    for n in names:
        out.append(f"| {n} | " + " | ".join(num(x) for x in props[n]["p_flat"]) + " |")
    out.append("")

    # The sigma closest to 3 (a wide pre-activation, as after a poor initialisation).
    j = min(range(len(sigmas)), key=lambda i: abs(math.log(sigmas[i] / 3.0)))
    spot = [n for n in _SPOTLIGHT if n in props] or names[:4]
    parts = [f"{n}'s on {pct(props[n]['p_flat'][j])}" for n in spot]
    out += [
        f"For {_sigma_label(sigmas[j])}, the derivative is below {thr:g} on this share of "
        f"inputs: {', '.join(parts)}.",
        "",
    ]

    if len(sigmas) > 1:
        first = {n: props[n]["p_flat"][0] for n in names}
        last = {n: props[n]["p_flat"][-1] for n in names}
        lo_s, hi_s = sigmas[0], sigmas[-1]
        zero = [n for n in names if max(props[n]["p_flat"]) == 0.0]
        # Never flat: |phi'| >= threshold on the whole grid, not merely no mass within 8 sd.
        never = [
            n
            for n in zero
            if props[n]["min_abs_deriv"] is not None and props[n]["min_abs_deriv"] >= thr
        ]
        far = [n for n in zero if n not in never]
        steady = [
            n
            for n in names
            if n not in zero and max(props[n]["p_flat"]) - min(props[n]["p_flat"]) < 1e-9
        ]

        def monotone(n: str, sign: int) -> bool:
            values = props[n]["p_flat"]
            return all(sign * (b - a) >= 0 for a, b in zip(values, values[1:], strict=False))

        grows = [n for n in names if n not in zero + steady and monotone(n, 1)]
        shrinks = [n for n in names if n not in zero + steady and monotone(n, -1)]
        mixed = [n for n in names if n not in zero + steady + grows + shrinks]
        if steady:
            out += [
                "**The same at every scale** ("
                + ", ".join(f"{n}: {pct(first[n])}" for n in steady)
                + "). "
                "A flat set that is a half-line from 0 (or the whole line) holds the same share "
                "of a centred Gaussian whatever its width, so rescaling the inputs changes "
                "nothing."
                + (
                    " For ReLU it is the negative side: a unit is flat on half of its inputs at "
                    "any scale, and a unit whose pre-activation is negative for *every* input is "
                    "dead: those inputs send no gradient to its incoming weights, so they alone "
                    "cannot revive it."
                    if "relu" in steady
                    else ""
                ),
                "",
            ]
        if grows:
            out += [
                f"**The flat share grows with the scale** (from $s_z = {lo_s:g}$ to "
                f"$s_z = {hi_s:g}$): "
                + ", ".join(f"{n} {pct(first[n])} → {pct(last[n])}" for n in grows)
                + ". "
                "Their flat sets reach into the tails, so the wider the pre-activation, the more "
                "inputs fall on a plateau: large weights or inputs drive tanh and sigmoid units "
                "towards saturation, and units that pass almost no gradient are not only a ReLU "
                "problem."
                + (
                    " (sine is the exception in kind: its flat set is a row of narrow bands "
                    "around the peaks of sin, repeated along the line, so its share levels off "
                    "instead of growing without end.)"
                    if "sine" in grows
                    else ""
                ),
                "",
            ]
        if mixed:
            out += [
                "**Neither steadily up nor down with the scale** (the share at each $s_z$ in "
                "turn): "
                + "; ".join(f"{n} " + " → ".join(pct(v) for v in props[n]["p_flat"]) for n in mixed)
                + ". Their flat sets lie partly near a turning point of the curve and partly "
                "in a tail: a wider pre-activation first moves mass off the first, then onto "
                "the second.",
                "",
            ]
        if shrinks:
            out += [
                "**Flat near zero, so the share shrinks with the scale**: "
                + ", ".join(f"{n} {pct(first[n])} → {pct(last[n])}" for n in shrinks)
                + ".",
                "",
            ]
        if far:
            out += [
                f"**Flat only far in the tails** ({', '.join(far)}): below $10^{{-15}}$ at "
                "every scale of the table, though their smallest slope on the grid is below "
                f"{thr:g}.",
                "",
            ]
        if never:
            out += [f"**Never flat** anywhere on the grid: {', '.join(never)}."]
            close = [n for n in never if props[n]["min_abs_deriv"] <= 2 * thr]
            if close:
                out[-1] += (
                    " Of these, "
                    + ", ".join(
                        f"{n} (smallest $|\\varphi'|$ = {num(props[n]['min_abs_deriv'])})"
                        for n in close
                    )
                    + (" stays" if len(close) == 1 else " stay")
                    + f" just at or above the threshold {thr:g}: "
                    "a small but non-zero gradient, which is what keeps a leaky unit alive."
                )
            out.append("")
    return out
