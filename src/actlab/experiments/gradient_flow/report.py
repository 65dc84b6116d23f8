"""The gradient-flow chapter's Markdown, every number read from the run's summary."""

from __future__ import annotations

import math

from actlab.experiments.base import Results
from actlab.experiments.gradient_flow.experiment import FULL
from actlab.experiments.gradient_flow.measure import nan_for_none as _nan_for_none
from actlab.report.format import ci, num

__all__ = [
    "report",
    "agreement_sentence",
    "full_batch_sentence",
    "phase_sentence",
    "training_sentence",
    "disagreements",
    "constant_sentence",
]

INIT_TEXT = {
    "torch": "[default initialisation](#term-default-init)",
    "xavier": "[Xavier initialisation](#term-xavier-init)",
    "he": "[He initialisation](#term-he-init)",
}
INIT_SHORT = {"torch": "default", "xavier": "Xavier", "he": "He"}


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.0f}%"


def num0(x: float) -> str:
    """:func:`num`, with a value within 1e-9 of 0 written as 0: a slope of ``-7e-15`` is a
    prediction of exactly 0 up to rounding in the quadrature."""
    return num(0.0) if math.isfinite(x) and abs(x) < 1e-9 else num(x)


def _band_text(tol: float, floor: float) -> str:
    return f"{_pct(tol)} (plus {num(floor)} per layer)"


def agreement_sentence(label: str, predicted: float, agree: dict, tol: float, floor: float) -> str:
    """A measured slope's agreement with a predicted one (the dict of
    :func:`measure.agreement`) in words: the ratio with its 95% interval (or the difference,
    for a prediction near 0), and the verdict."""
    has_ratio = math.isfinite(agree["ratio"])
    if has_ratio:
        head = (
            f"against {label} {num0(predicted)} the ratio is {num(agree['ratio'])} "
            f"[{num(agree['ratio_lo'])}, {num(agree['ratio_hi'])}]"
        )
    else:
        head = f"against {label} {num0(predicted)} the difference is {num(agree['off'])} per layer"
    if agree["verdict"] == "agrees":
        return f"{head}: it agrees to within {_band_text(tol, floor)}, the whole interval"
    if agree["verdict"] == "differs":
        by = _pct(abs(agree["ratio"] - 1.0)) if has_ratio else f"{num(abs(agree['off']))} per layer"
        return f"{head}: it differs, by {by}"
    return (
        f"{head}: the interval neither confirms nor rules out agreement to within "
        f"{_band_text(tol, floor)}"
    )


def full_batch_sentence(row: dict, short: bool = False) -> str:
    """The full-batch weight gradient's slope against the per-example one (paired over the same
    initialisations); ``short``: only the full-batch slope and the verdict, for a sentence that
    has already given the per-example one."""
    diff = row["full_minus_per_example"]
    act, init = row["activation"], INIT_SHORT.get(row["init"], row["init"])
    base = (
        f"For {act} ({init} init) the full-batch weight gradient changes by "
        f"{ci(row['slope_weight_full_batch'])} per layer towards the input and the per-example "
        f"one by {ci(row['slope_weight_per_example'])}"
        if not short
        else f"the full-batch weight gradient by {ci(row['slope_weight_full_batch'])}"
    )
    if not (math.isfinite(diff["lo"]) and math.isfinite(diff["hi"])):
        return base + "."
    flipped = {"mean": -diff["mean"], "lo": -diff["hi"], "hi": -diff["lo"]}
    if diff["hi"] < 0:
        return (
            f"{base}: the full batch loses {ci(flipped)} more per layer (difference paired over "
            "initialisations)."
        )
    if diff["lo"] > 0:
        return f"{base}: the full batch loses {ci(diff)} less per layer (paired)."
    return f"{base}: the difference, {ci(diff)} per layer, is within noise."


def phase_sentence(phase: dict) -> str:
    """How many cells of the phase diagram got which measured verdict, and how many of the
    decided ones match the sign of log chi_1."""
    counts = phase["counts"]
    n = len(phase["cells"])
    parts = [f"{counts[v]} {v}" for v in ("vanishing", "stable", "exploding", "undecided")]
    text = f"Of the {n} cells, " + ", ".join(parts[:-1]) + f" and {parts[-1]}. "
    if phase["n_decided"]:
        text += (
            f"Of the {phase['n_decided']} decided cells, {phase['n_same']} carry the verdict "
            r"that the predicted slope $\frac{1}{2}\log\chi_1$ gives with the same tolerance"
        )
        text += "." if phase["n_same"] == phase["n_decided"] else "; the others are listed below."
    exploding = [c for c in phase["cells"] if c["verdict"] == "exploding"]
    if exploding:
        cells = ", ".join(
            rf"($\sigma_w^2$ = {num(c['sigma_w2'])}, $\sigma_b^2$ = {num(c['sigma_b2'])}: "
            f"{ci(c['slope'])})"
            for c in exploding
        )
        text += f" The gradient explodes (grows towards the input) at {cells}."
    else:
        text += " No cell of this grid explodes measurably."
    return text


def training_sentence(row: dict) -> str:
    """An activation's backward slope of the training gradient at the first and the last step."""
    start, end = row["slope_start"], row["slope_end"]
    base = f"{row['activation']}: {ci(start)} per layer at the first step, {ci(end)} at the last"
    if row["differs"]:
        flatter = abs(end["mean"]) < abs(start["mean"])
        return base + (
            " (flatter after training; the paired test separates them)."
            if flatter
            else " (steeper after training; the paired test separates them)."
        )
    return base + " (within noise)."


def hidden_variances(rows: list[dict]) -> str:
    """``sigma_w^2 = ..., sigma_b^2 = ...`` of the hidden layers of the headline rows."""
    if not rows:
        return "n/a"
    r = rows[0]
    return rf"$\sigma_w^2$ = {num(r['sigma_w2'])} and $\sigma_b^2$ = {num(r['sigma_b2'])}"


def level_sentences(
    rows: list[dict], tol: float, factor: float | None = None, steps: int | None = None
) -> list[str]:
    """For each row without biases (``sigma_b^2 = 0``) whose activation is ReLU: whether one
    example's weight gradient stays level (whole interval of its slope within ``+-tol``) while
    the backward signal follows ``chi_1``; with ``factor`` and ``steps``, what ``tol`` means (a
    change by less than ``factor`` over ``steps`` layers)."""
    out = []
    meaning = (
        f", less than a factor of {num(factor)} over the {steps} steps from layer D to layer 1"
        if factor is not None and steps is not None
        else ""
    )
    for r in rows:
        if r["activation"] != "relu" or r["sigma_b2"] != 0:
            continue
        w = r["slope_weight_per_example"]
        level = -tol <= w["lo"] and w["hi"] <= tol
        verdict = (
            f"stays level (its whole interval lies within ±{num(tol)} per layer{meaning})"
            if level
            else f"does not stay level to within ±{num(tol)} per layer"
        )
        out += [
            f"ReLU with {INIT_SHORT.get(r['init'], r['init'])} init "
            rf"($\sigma_w^2$ = {num(r['sigma_w2'])}, $\sigma_b^2 = 0$): the backward signal "
            f"changes by {ci(r['slope_delta'])} per layer "
            rf"($\frac{{1}}{{2}}\log\chi_1$ = {num0(r['half_log_chi1'])}), while one example's "
            f"weight gradient {verdict}: {ci(w)}.",
            "",
        ]
    return out


def constant_sentence(tr: dict) -> str:
    """Which trained activations end at the loss of the best constant prediction (every,
    some or none of their initialisations)."""
    stuck = [r for r in tr["rows"] if r["at_constant"] == tr["seeds"]]
    some = [r for r in tr["rows"] if 0 < r["at_constant"] < tr["seeds"]]

    def share(r: dict) -> str:
        p = r.get("at_constant_ci")
        if p is None:
            return ""
        return f"; {_pct(p['mean'])} [{_pct(p['lo'])}, {_pct(p['hi'])}]"

    p_all = stuck[0].get("at_constant_ci") if stuck else None
    wilson = (
        f"; [Wilson interval](#term-wilson-interval) {_pct(p_all['lo'])} to {_pct(p_all['hi'])}"
        if p_all
        else ""
    )

    text = f"The best constant prediction (the targets' mean) has loss {num(tr['constant_loss'])}. "
    if stuck:
        text += (
            f"Every initialisation of {', '.join(r['activation'] for r in stuck)} "
            f"({tr['seeds']} of {tr['seeds']} each{wilson}) ends within "
            f"{_pct(tr['constant_tol'])} of it"
            + f": after {tr['steps']} steps these networks predict little more than the mean. "
        )
    if some:
        text += (
            "Some initialisations end there: "
            + ", ".join(
                f"{r['activation']} ({r['at_constant']} of {tr['seeds']}{share(r)})" for r in some
            )
            + ". "
        )
    if not stuck and not some:
        text += "No initialisation ends within " + _pct(tr["constant_tol"]) + " of it. "
    if stuck or some:
        text += (
            "Adam divides each weight's step by the running size of that weight's own "
            "gradient, so a small gradient alone does not stop a layer from moving. A likely "
            "reason for the networks that stay at the mean, not measured here, is the forward "
            "pass: in the ordered phase the deep layers see nearly the same signal for every "
            "input (the deep-MLP chapter measures this collapse)."
        )
    return text.rstrip()


WHERE_TEXT = {
    "inside": "the whole interval lies in it",
    "overlaps": "the interval overlaps it",
    "outside": "the interval lies outside it: finite width does not explain this slope",
    "unresolved": "no interval",
}


def finite_width_sentences(fw: dict) -> list[str]:
    """At the edge of chaos (ReLU with He init) the mean-field slope is 0; at finite width one
    example's log-norm drifts by about ``-5/(4N)`` per layer and the chapter's signal (squares
    averaged over examples) by a slope between that and 0 (``summary["finite_width"]``):
    where each width's interval lies against that range, and whether slope times N is the same
    at every width (Welch)."""
    items = fw.get("widths", [])
    if not items:
        return []
    per_width = "; ".join(
        f"N = {it['width']}: {ci(it['slope'])} against [{num(it['bound'])}, 0], "
        f"{WHERE_TEXT[it['where']]}"
        for it in items
    )
    text = (
        "ReLU with He initialisation sits at the edge of chaos, where the mean-field slope is "
        "0. At finite width each layer multiplies one example's squared backward signal by a "
        "random factor with mean 1 and variance $5/N$ (about half the units pass, each "
        "carrying a squared Gaussian), and a mean of logs falls short of the log of the mean "
        "by about half the variance: one example's log-norm loses about $5/(4N)$ per layer "
        "towards the input. The chapter's signal averages the squares over the examples "
        "before the log, which can only shrink that variance, so its slope should lie between "
        f"$-5/(4N)$ and 0. At D = {fw['depth']}: {per_width}."
    )
    if len(items) > 1:
        scaled = " and ".join(
            f"{ci(it['times_width'])} at N = {it['width']}" for it in (items[0], items[-1])
        )
        text += f" Slope times N: {scaled}; " + (
            "Welch's test separates them, so the drift does not shrink like 1/N alone."
            if fw["welch_differs"]
            else "within noise of each other (Welch's test), as a drift proportional to "
            "1/N predicts."
        )
    return [text, ""]


def _gap_text(gap: float) -> str:
    """A relative gap ``|measured/predicted - 1|`` as a percentage, or as a factor beyond 100%."""
    if math.isfinite(gap) and gap > 1.0:
        return f"a factor of {num(1.0 + gap)}"
    return _pct(gap)


NEUTRAL = 0.9
"""A length map whose slope at the first layer's ``q`` is at least this is 'nearly neutral'."""


def q_gap_sentence(rows: list[dict]) -> str:
    """The smallest and the largest relative gap of the measured ``q^l`` (geometric mean) to the
    length map, over the cases ``rows``; for the worst one why it drifts: a nearly neutral length
    map (slope >= :data:`NEUTRAL` at the first layer) does not pull finite-width kicks back."""
    best = min(r["q_max_rel_gap"] for r in rows)
    w = max(rows, key=lambda r: r["q_max_rel_gap"])
    init = INIT_SHORT.get(w["init"], w["init"])
    text = (
        r"The largest relative gap between the measured $q^l$ (geometric mean over "
        "initialisations) and the length map, over the layers of one case, is "
        f"{_gap_text(best)} in the best case and {_gap_text(w['q_max_rel_gap'])} in the worst "
        f"({w['activation']}, {init} initialisation, layer {w['q_gap_layer']}, where the "
        "initialisations' own $q^l$ span a factor of "
        f"$10^{{{w['q_seed_spread']:.1f}}}$)."
    )
    slope = w.get("q_map_slope_first", math.nan)
    if math.isfinite(slope) and slope >= NEUTRAL:
        text += (
            f" There the length map starts nearly neutral: its slope at the first layer's $q^l$ "
            f"is {num(slope)}, so a random kick from a layer of finite width is hardly pulled "
            "back, and the initialisations' $q^l$ wander apart like a random walk (for as many "
            "layers as the map stays nearly neutral); the length map, a single path, follows "
            "none of them exactly."
        )
    else:
        text += (
            " Such gaps grow where $q^l$ drifts over many layers without settling: each layer "
            "of finite width adds its own random factor, and the factors accumulate."
        )
    return text


def disagreements(rows: list[dict]) -> list[dict]:
    """Rows whose per-example backward slope differs from the layer-by-layer prediction
    (verdict ``differs``)."""
    return [r for r in rows if r["agree_delta"]["verdict"] == "differs"]


def _table(rows: list[dict]) -> list[str]:
    out = [
        r"| activation | init | $\chi_1$ | $\frac{1}{2}\log\chi_1$ | $\delta$: predicted | "
        r"$\delta$: measured | weight, per example: predicted | measured | full batch: measured |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['activation']} | {INIT_SHORT.get(r['init'], r['init'])} | {num(r['chi1'])} | "
            f"{num0(r['half_log_chi1'])} | {num0(r['pred_slope_delta'])} | "
            f"{ci(r['slope_delta'])} | {num0(r['pred_slope_weight_per_example'])} | "
            f"{ci(r['slope_weight_per_example'])} | {ci(r['slope_weight_full_batch'])} |"
        )
    return out


def report(results: Results) -> str:
    """The chapter's Markdown, ending with its exercises."""
    from actlab.experiments.gradient_flow.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = _nan_for_none(results.summary)
    h = s["headline"]
    tol, floor = s["agree_tol"], s["agree_floor"]
    D, N = h["depth"], h["width"]
    out = ["# How gradients flow", ""]
    out += [
        "Does the gradient that reaches the first layers of a deep network vanish, explode, or "
        "keep its size? Mean-field theory answers with one number per activation and "
        r"initialisation, $\chi_1$, and this chapter measures whether it is right, for which "
        "quantity, and where it is not.",
        "",
        f"**Set-up.** Networks with D hidden layers of N units each ({s['n_in']} inputs, "
        f"{s['n_out']} linear outputs) at initialisation, for D in "
        f"{', '.join(map(str, s['depths']))} and N in {', '.join(map(str, s['widths']))}, with "
        + ", ".join(INIT_TEXT.get(i, i) for i in s["inits"])
        + f"; {s['seeds']} initialisations ([seeds](#term-seed)) per case, and every "
        "activation of a seed starts from the same weights. Each shape and initialisation is "
        "one [ensemble](#term-ensemble) pass (split by activation where one pass would hold "
        "more than $2^{27}$ parameters). The gradients are measured on "
        f"{s['n_examples']} random inputs $x \\sim \\mathcal{{N}}(0, I)$ under a fixed random "
        "readout: the loss is a fixed random linear function of the output, the same one for "
        "every example (so the backward signal at the output is the same random vector for "
        "every example, with unit mean square). Three quantities per layer:",
        "",
        r"1. the *per-example backward signal* $\delta_l = \partial L/\partial z_l$: for each "
        "example the root mean square over the layer's units, then the root mean square over "
        "the examples;",
        r"2. the *per-example weight gradient*: the norm of one example's "
        r"$\partial L/\partial W_l = \delta_l h_{l-1}^{\top}$, which is "
        r"$\|\delta_l\|\,\|h_{l-1}\|$, root mean square over the examples;",
        "3. the *full-batch weight gradient*: the norm of the mean of those matrices over the "
        "examples (what an optimiser sees; the deep-MLP chapter plots its mean absolute "
        "entry).",
        "",
        "Every curve is a [geometric mean](#term-geometric-mean) over initialisations with its "
        "[95% interval](#term-t-interval).",
        "",
        "## The theory",
        "",
        r"In a wide network a pre-activation of layer $l$ is Gaussian with mean square $q^l$, "
        r"and the *length map* gives the next one: "
        r"$q^{l+1} = \sigma_w^2\, E[\varphi(z)^2] + \sigma_b^2$ with $z \sim \mathcal{N}(0, q^l)$, "
        r"where $\sigma_w^2$ is the weights' variance times the fan-in and $\sigma_b^2$ the "
        r"biases' variance. Iterated, it settles at a fixed point $q^*$ over a depth $\xi_q$. "
        r"Backwards, $\delta_l = \varphi'(z_l) \odot W_{l+1}^{\top} \delta_{l+1}$, so each "
        r"layer multiplies the mean square of $\delta$ by",
        "",
        r"$$\chi_1 = \sigma_w^2\, E[\varphi'(z)^2], \qquad z \sim \mathcal{N}(0, q^*),$$",
        "",
        r"and $\|\delta_l\| \propto \chi_1^{(D-l)/2}$: on a log scale a straight line whose "
        r"slope per layer towards the input is $\frac{1}{2}\log\chi_1$ (natural log; note the "
        r"$\frac{1}{2}$: $\chi_1$ acts on the *squared* signal). $\chi_1 < 1$: the gradient "
        r"vanishes towards the input; $\chi_1 > 1$: it explodes; $\chi_1 = 1$ is the *edge of "
        r"chaos*. One example's weight gradient has norm $\|\delta_l\|\,\|h_{l-1}\|$ with "
        r"$\|h_{l-1}\|^2 = N\,E[\varphi(z)^2]$: once $q^l$ sits at $q^*$ the second factor is "
        r"constant and the weight gradient follows the same line. If $q^l$ keeps changing (ReLU "
        r"with $\sigma_b^2 = 0$: $q^{l+1} = \frac{\sigma_w^2}{2} q^l$ exactly), $\|h\|$ grows "
        r"forwards by the same factor $\sqrt{\chi_1}$ by which $\|\delta\|$ shrinks backwards, "
        "and the weight gradient's slope is 0 at any $\\sigma_w^2$. The mean over examples of "
        "the weight gradient adds examples whose signals are correlated, by the correlation "
        r"map, so it does not follow $\chi_1$ alone (exercise 4).",
        "",
        "The predictions drawn below use each layer's own $q^l$ (the length map started at "
        r"the first layer, whose fan-in is the input's: $q^1 = \sigma_w^2\,\mathrm{mean}(x^2) + "
        r"\sigma_b^2$ with that layer's variances) and multiply the backward signal by "
        r"$\chi_1$ evaluated at $q^l$; the *predicted slope* in the tables is the least-squares "
        r"slope of that prediction over the same layers as the measurement, and "
        r"$\frac{1}{2}\log\chi_1$ is the value at $q^*$. All slopes are fitted over the hidden "
        "layers 1 to D; the output layer (linear, layer D + 1) is left out of every fit.",
        "",
    ]

    # ------------------------------------------------------------------ headline
    out += ["## The headline: is the slope $\\frac{1}{2}\\log\\chi_1$?", ""]
    init_h = INIT_TEXT.get(h["init"], h["init"])
    out += [
        f"At D = {D}, N = {N} and the {init_h} (in mean-field terms "
        + hidden_variances(h["rows"])
        + r" for the hidden layers), the per-example backward signal per layer towards the "
        r"input, against $\frac{1}{2}\log\chi_1$ at $q^*$:",
        "",
    ]
    for r in h["rows"]:
        out += [
            f"* **{r['activation']}** ($\\chi_1$ = {num(r['chi1'])}): measured "
            f"{ci(r['slope_delta'])} per layer; "
            + agreement_sentence(
                r"$\frac{1}{2}\log\chi_1$ =",
                r["half_log_chi1"],
                r["agree_delta_chi1"],
                tol,
                floor,
            )
            + "; "
            + agreement_sentence(
                "the layer-by-layer prediction", r["pred_slope_delta"], r["agree_delta"], tol, floor
            )
            + "."
        ]
    out += [""]
    out += [
        "![Gradients per layer at initialisation](figures/profiles.png)",
        "",
        "*Each row one activation, each column one quantity, layers from the input (left) to "
        "the output (right; the shaded column is the linear output layer). Coloured: measured "
        "under each initialisation (geometric mean over initialisations with its 95% band); "
        "black dashed: the mean-field prediction of the same quantity; black dotted in the "
        "full-batch column: the per-example prediction, drawn for comparison — theory here has "
        "no prediction for the full batch.*",
        "",
    ]

    # ------------------------------------------------------------------ all cases
    rows = [r for r in s["table"] if r["depth"] == D and r["width"] == N]
    out += ["## Every activation and initialisation", ""]
    out += [
        f"Slopes per layer towards the input at D = {D}, N = {N}, mean [95% interval] over "
        f"{s['seeds']} initialisations; *predicted* is the slope of the layer-by-layer "
        "prediction over the same layers.",
        "",
        *_table(rows),
        "",
        "![Measured against predicted slopes](figures/slopes.png)",
        "",
        "*The measured slope minus the predicted one, with its 95% interval over "
        "initialisations: one point per activation (colour), grouped by initialisation; on "
        "the dashed line they are equal, and the grey bar behind each point is its band of "
        f"agreement, {_pct(tol)} of the prediction plus {num(floor)} per layer. The right "
        "panel sets the full-batch "
        "measurement against the per-example prediction, which it is not expected to follow. "
        "One scale for all three panels.*",
        "",
    ]
    all_rows = s["table"]
    agree = sum(r["agree_delta"]["verdict"] == "agrees" for r in all_rows)
    bad = disagreements(all_rows)
    out += [
        f"Over all {len(all_rows)} cases of the run (every shape, initialisation and "
        f"activation) the per-example backward slope agrees with the layer-by-layer "
        f"prediction to within {_band_text(tol, floor)} in {agree}, differs in {len(bad)}, and "
        "is unresolved (an interval that straddles the edge of the band) in the rest.",
    ]
    if bad:
        worst = sorted(bad, key=lambda r: -abs(r["agree_delta"]["off"]))[:6]
        items = "; ".join(
            f"{r['activation']}, {INIT_SHORT.get(r['init'], r['init'])}, D = {r['depth']}, "
            f"N = {r['width']}: measured {ci(r['slope_delta'])} against "
            f"{num0(r['pred_slope_delta'])}"
            for r in worst
        )
        by_width = "; ".join(
            f"N = {w}: {sum(r['width'] == w for r in bad)} of "
            f"{sum(r['width'] == w for r in all_rows)}"
            for w in sorted({r["width"] for r in all_rows})
        )
        out += [
            f" The largest disagreements: {items}. Disagreements by width ({by_width}): the "
            "mean-field theory is the limit of infinite width; at finite N, $q^l$ and "
            r"$\chi_1$ fluctuate from layer to layer and from one initialisation to the next.",
        ]
    out += [""]
    out += finite_width_sentences(s.get("finite_width", {}))
    hl = [r for r in all_rows if r["init"] == h["init"] and r["activation"] in h["activations"]]
    hl_ok = [r for r in hl if r["agree_delta_chi1"]["verdict"] == "agrees"]
    others = [r for r in hl if r["agree_delta_chi1"]["verdict"] != "agrees"]
    text = (
        f"Across every shape the run measured, {' and '.join(h['activations'])} with the "
        f"{INIT_SHORT.get(h['init'], h['init'])} initialisation agree with "
        rf"$\frac{{1}}{{2}}\log\chi_1$ in {len(hl_ok)} of {len(hl)} cases"
    )
    if others:
        text += "; not in " + "; ".join(
            f"{r['activation']} at D = {r['depth']}, N = {r['width']} "
            f"({r['agree_delta_chi1']['verdict']}: measured {ci(r['slope_delta'])} against "
            f"{num0(r['half_log_chi1'])}; the layer-by-layer prediction "
            f"{num0(r['pred_slope_delta'])}: {r['agree_delta']['verdict']})"
            for r in others
        )
    out += [text + ".", ""]
    # where q* and the layer-by-layer prediction part ways
    apart = [
        r
        for r in rows
        if math.isfinite(r["half_log_chi1"])
        and abs(r["pred_slope_delta"] - r["half_log_chi1"])
        > 0.1 * max(abs(r["half_log_chi1"]), 0.05)
    ]
    if apart:
        items = "; ".join(
            f"{r['activation']} ({INIT_SHORT.get(r['init'], r['init'])}): "
            f"{num0(r['half_log_chi1'])} at $q^*$ against {num0(r['pred_slope_delta'])} layer by "
            f"layer, measured {ci(r['slope_delta'])}"
            for r in apart
        )
        closer = sum(
            abs(r["slope_delta"]["mean"] - r["pred_slope_delta"])
            < abs(r["slope_delta"]["mean"] - r["half_log_chi1"])
            for r in apart
        )
        out += [
            r"Where $q^l$ has not settled at $q^*$ within the network, the value of "
            r"$\frac{1}{2}\log\chi_1$ at $q^*$ and the layer-by-layer prediction part ways: "
            f"{items}. The measured mean is closer to the layer-by-layer prediction in "
            f"{closer} of these {len(apart)} cases.",
            "",
        ]

    # the weight gradient and the full batch
    out += ["### Which quantity vanishes", ""]
    for act in h["activations"]:
        for r in rows:
            if r["activation"] == act:
                out += [
                    f"* {act}, {INIT_SHORT.get(r['init'], r['init'])} init: per layer towards "
                    f"the input the backward signal changes by {ci(r['slope_delta'])}, one "
                    f"example's weight gradient by {ci(r['slope_weight_per_example'])} "
                    f"(predicted {num0(r['pred_slope_weight_per_example'])}), "
                    + full_batch_sentence(r, short=True)
                ]
    out += [""]
    out += level_sentences(rows, s["stable_tol"], s["stable_factor"], D - 1)
    fb_off = sum(r["agree_full_batch"]["verdict"] == "differs" for r in rows)
    out += [
        "At this shape the full-batch slope lies outside the band of agreement with the "
        f"per-example prediction ({_pct(tol)} plus {num(floor)} per layer; whole interval) in "
        f"{fb_off} of {len(rows)} cases: examples' gradients add with the correlations between "
        "the examples, which the per-example theory does not see.",
        "",
    ]

    # ------------------------------------------------------------------ depth
    hw = [r for r in s["table"] if r["width"] == N and r["init"] == h["init"]]
    out += ["## Across depth", ""]
    out += [
        "![Backward signal ratio first to last hidden layer against depth](figures/depth.png)",
        "",
        r"*$\log_{10}$ of the backward signal at layer 1 over that at layer D, per activation "
        f"at N = {N} with the {INIT_SHORT.get(h['init'], h['init'])} initialisation: measured "
        "(dots, 95% intervals over initialisations) and predicted (dashed). The dotted line "
        "marks a factor of a million.*",
        "",
    ]
    for act in h["activations"]:
        mine = sorted((r for r in hw if r["activation"] == act), key=lambda r: r["depth"])
        if mine:
            items = ", ".join(
                f"D = {r['depth']}: {ci(r['log10_ratio_delta'])} "
                f"(predicted {num(r['pred_log10_ratio_delta'])})"
                for r in mine
            )
            out += [rf"* {act}, $\log_{{10}}$ of the ratio: {items}."]
    out += [""]

    # ------------------------------------------------------------------ forward q
    out += ["## The forward signal", ""]
    out += [
        "![Forward q per layer against the length map](figures/forward_q.png)",
        "",
        r"*$q^l$, the mean square of the pre-activations, per hidden layer: measured (coloured, "
        "geometric mean with its 95% band) and iterated by the length map from the first "
        f"layer (black dashed), D = {D}, N = {N}.*",
        "",
    ]
    worst_q = sorted(
        (r for r in rows if math.isfinite(r["q_max_rel_gap"])), key=lambda r: -r["q_max_rel_gap"]
    )
    if worst_q:
        out += [q_gap_sentence(worst_q), ""]

    # ------------------------------------------------------------------ phase
    ph = s["phase"]
    out += ["## The phase diagram of tanh", ""]
    out += [
        f"tanh networks with D = {ph['depth']} and N = {ph['width']}, weights and biases drawn "
        r"as $\mathcal{N}(0, \sigma_w^2/\text{fan-in})$ and $\mathcal{N}(0, \sigma_b^2)$ on a "
        r"grid of $(\sigma_w^2, \sigma_b^2)$, "
        f"{ph['seeds']} initialisations per cell (the same underlying draws in every cell). A "
        "cell is *vanishing* if the whole 95% interval of its fitted slope lies below "
        f"−{num(ph['tolerance'])} per layer (a factor of {num(s['stable_factor'])} lost over "
        f"the {ph['depth'] - 1} steps from layer D to layer 1), *exploding* if it lies above "
        f"+{num(ph['tolerance'])}, *stable* if it lies between, and *undecided* otherwise.",
        "",
        "![Phase diagram of tanh](figures/phase.png)",
        "",
        r"*Each cell coloured by its measured verdict, with its measured slope (mean over "
        r"initialisations) written in it; black: the edge of chaos, where theory puts "
        r"$\chi_1 = 1$ (`theory.edge_of_chaos`). Above the line the gradient grows towards the "
        "input, below it it vanishes. The axes space the grid's values evenly (the curve is "
        "drawn linearly between them).*",
        "",
        phase_sentence(ph),
        "",
    ]
    mismatched = [
        c for c in ph["cells"] if c["verdict"] != "undecided" and c["verdict"] != c["pred_verdict"]
    ]
    for c in mismatched:
        out += [
            rf"* $\sigma_w^2$ = {num(c['sigma_w2'])}, $\sigma_b^2$ = {num(c['sigma_b2'])}: "
            f"measured {c['verdict']} ({ci(c['slope'])}), predicted {c['pred_verdict']} "
            f"({num(c['pred_slope'])})."
        ]
    if mismatched:
        out += [""]

    # ------------------------------------------------------------------ training
    tr = s["training"]
    out += ["## During training", ""]
    out += [
        f"The same activations, D = {tr['depth']} and N = {tr['width']}, each trained from "
        f"the same {tr['seeds']} sets of initial weights "
        f"({INIT_TEXT.get(tr['init'], tr['init'])}) "
        f"with full-batch Adam ($\\eta$ = {num(tr['lr'])}) for {tr['steps']} steps on "
        f"{tr['n_train']} points of a single-index teacher, the target being the sine of "
        "twice the input's projection on a random unit vector (mean squared error). Shown: "
        "the norm of the full-batch weight gradient of the training loss, the quantity the "
        "optimiser receives.",
        "",
        "![Gradient per layer and step during training](figures/training.png)",
        "",
        "*Per activation, layer (input left, output right) against Adam step; colour: "
        r"$\log_{10}$ of the full-batch weight-gradient norm, geometric mean over "
        "initialisations, one scale for all panels.*",
        "",
        "Slope per layer towards the input of the log weight gradient (hidden layers), at the "
        "first and at the last step, compared initialisation by initialisation with a "
        "[paired test](#term-paired):",
        "",
    ]
    for r in tr["rows"]:
        loss = f" Training loss {ci(r['loss_start'])} → {ci(r['loss_end'])}."
        div = f" {r['diverged']} of {tr['seeds']} diverged." if r["diverged"] else ""
        out += [f"* {training_sentence(r)}{loss}{div}"]
    out += [""]
    out += [constant_sentence(tr), ""]

    # ------------------------------------------------------------------ preset
    n_w = len({c["sigma_w2"] for c in ph["cells"]})
    n_b = len({c["sigma_b2"] for c in ph["cells"]})
    out += [
        "## What this run covers",
        "",
        f"This [preset](#term-preset) measures depths {', '.join(map(str, s['depths']))}, "
        f"widths {', '.join(map(str, s['widths']))} and {s['seeds']} initialisations per case, "
        f"a {n_w} by {n_b} phase grid at width {ph['width']} with {ph['seeds']} "
        f"initialisations per cell, and {tr['steps']} training steps from {tr['seeds']} "
        "initialisations per activation; the `full` preset measures depths "
        f"{', '.join(map(str, FULL.depths))} with {FULL.seeds} initialisations per case, a "
        f"{len(FULL.phase_sigma_w2)} by {len(FULL.phase_sigma_b2)} phase grid at width "
        f"{FULL.phase_width} with {FULL.phase_seeds} per cell, and {FULL.train_steps} training "
        f"steps from {FULL.train_seeds} initialisations.",
        "",
    ]
    out.append(exercises_markdown(EXERCISES))
    return "\n".join(out)
