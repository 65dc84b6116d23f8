"""The gallery's Markdown section, built from the results alone (every number comes from the
run's ``summary``)."""

from __future__ import annotations

import math

from actlab.experiments.base import Results
from actlab.report.format import num, pct

__all__ = ["report"]

_CLASSIC = ("sigmoid", "tanh", "relu", "leaky_relu")
_SPOTLIGHT = ("tanh", "sigmoid", "relu", "leaky_relu", "gelu", "silu", "elu")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _sigma_label(sigma: float) -> str:
    return rf"$z \sim \mathcal{{N}}(0, {sigma:g}^2)$"


def report(results: Results) -> str:
    """The gallery's Markdown section (numbers from ``results`` only)."""
    s = results.summary
    props = {p["name"]: p for p in s["properties"]}
    names = list(s["activations"])
    sigmas = [float(x) for x in s["sigmas"]]
    thr = float(s["flat_threshold"])
    lo, hi = num(s["z_min"]), num(s["z_max"])
    out: list[str] = ["# Activation gallery", ""]
    out += [
        "A neuron computes a weighted sum of its inputs, the *pre-activation* $z$, and passes it "
        r"through an element-wise function $\varphi$. Without $\varphi$ a stack of layers would "
        "collapse into one affine map; with it, the network can bend. During training the "
        r"gradient that reaches a unit is multiplied by $\varphi'(z)$, so the shape of "
        r"$\varphi'$ decides where learning signal flows and where it stops.",
        "",
        f"This section draws {len(names)} activation functions and their derivatives on "
        f"$[{lo}, {hi}]$ and measures their properties numerically: every number below was "
        f"computed by this run ({s['methods']['grid']}), not copied from a table.",
        "",
        "![Every activation (solid) and its derivative (dashed), one panel each]"
        "(figures/activations.png)",
        "",
        r"*Each panel shows $\varphi(z)$ (solid) and $\varphi'(z)$ (dashed) in the activation's "
        "colour, which is the same in every figure of this tutorial. The panels share their "
        "axes; curves that leave the y-range are clipped and marked, and the tables below give "
        "each function's true range.*",
        "",
    ]
    classic = [n for n in _CLASSIC if n in props]
    if classic:
        out += [
            "## The classic four",
            "",
            "![The classic activations and their derivatives overlaid](figures/classic.png)",
            "",
        ]
        bits = [f"{n}'s at most {num(props[n]['max_abs_deriv'])}" for n in classic]
        out += [
            r"The largest slope on the interval is the most a unit can multiply a gradient by "
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

    out += ["## Formulas", ""]
    for n in names:
        p = props[n]
        out += [
            f"**{n}**: {p['reference']}",
            "",
            rf"$$\varphi(x) = {p['latex']}$$",
            "",
            rf"$$\varphi'(x) = {p['latex_deriv']}$$",
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
        rf"found on a grid of spacing {s['resolution']:g} over $[-8\sigma, 8\sigma]$ and refined "
        "by bisection, summed exactly with the normal CDF."
    )
    out += _saturation_section(names, props, sigmas, thr, method)
    return "\n".join(out).rstrip() + "\n"


def _saturation_section(
    names: list[str], props: dict[str, dict], sigmas: list[float], thr: float, method: str
) -> list[str]:
    out = ["## Saturation and dying units", ""]
    out += [
        r"Where $|\varphi'(z)|$ is tiny, a unit passes (almost) no gradient back: a *saturated* "
        "tanh or sigmoid unit sits on a plateau, a ReLU unit with a negative input is *off*. "
        r"Which inputs land there depends on the scale of the pre-activation. For "
        r"$z \sim \mathcal{N}(0, \sigma^2)$ the table gives "
        rf"$P(|\varphi'(z)| < {thr:g})$, the share of inputs on which a unit learns nothing. "
        f"Method: {method}",
        "",
        "![Derivatives with their flat regions shaded](figures/derivatives.png)",
        "",
        "![Probability that the derivative is flat, per activation and sigma]"
        "(figures/saturation.png)",
        "",
        "| activation | " + " | ".join(rf"$\sigma = {x:g}$" for x in sigmas) + " |",
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
        never = [n for n in names if max(props[n]["p_flat"]) == 0.0]
        steady = [
            n
            for n in names
            if n not in never and max(props[n]["p_flat"]) - min(props[n]["p_flat"]) < 1e-9
        ]
        grows = [n for n in names if n not in never + steady and last[n] > first[n]]
        shrinks = [n for n in names if n not in never + steady and last[n] < first[n]]
        if steady:
            out += [
                "**The same at every scale** ("
                + ", ".join(f"{n}: {pct(first[n])}" for n in steady)
                + "). "
                "A flat set that is a half-line from 0 (or the whole line) holds the same share "
                "of a centred Gaussian whatever its width, so rescaling the inputs changes "
                "nothing."
                + (
                    " For ReLU it is the negative side: a unit is off on half of its inputs at "
                    "any scale, and a unit whose input is negative for *every* example is dead: "
                    "no gradient will ever move it again."
                    if "relu" in steady
                    else ""
                ),
                "",
            ]
        if grows:
            out += [
                f"**Saturation grows with the scale** (from $\\sigma = {lo_s:g}$ to "
                f"$\\sigma = {hi_s:g}$): "
                + ", ".join(f"{n} {pct(first[n])} → {pct(last[n])}" for n in grows)
                + ". "
                "Their flat sets lie in the tails, so the wider the pre-activation, the more "
                "inputs fall on a plateau: large weights or inputs saturate tanh and sigmoid, "
                "and dead (saturated) units are not only a ReLU problem.",
                "",
            ]
        if shrinks:
            out += [
                "**Flat near zero, so the share shrinks with the scale**: "
                + ", ".join(f"{n} {pct(first[n])} → {pct(last[n])}" for n in shrinks)
                + ".",
                "",
            ]
        if never:
            out += [f"**Never flat** at any of these scales: {', '.join(never)}."]
            close = [
                n
                for n in never
                if props[n]["min_abs_deriv"] is not None and props[n]["min_abs_deriv"] <= 2 * thr
            ]
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
