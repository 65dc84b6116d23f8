"""The deep-MLP report: Markdown whose every number and verdict comes from the run's results.

Confidence intervals are the summary's (:func:`actlab.stats.mean_ci` over seeds). Every
comparison here is between members trained from the same seeds (seed s gives every activation at
every rate the same initial weights, and every seed trains on the same data draw), so it uses the
per-seed values of the metrics table lined up by seed (:func:`seed_values`,
:func:`paired_values`) and the paired t-test (:func:`actlab.stats.paired_differs`); a difference
it does not support is called a tie.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from actlab.experiments.base import Results
from actlab.experiments.deep_mlp.experiment import ANIMATION_FRAMES
from actlab.report.format import ci, num, pct, ratio, ratio_ci
from actlab.stats import paired_by_seed, paired_differs, proportion_ci

__all__ = [
    "report",
    "final_values",
    "seed_values",
    "paired_values",
    "fit_verdict",
    "gradient_verdict",
    "convergence_verdict",
    "diverged_text",
    "CLOSE",
]

INITS = {
    "torch": ("PyTorch's default initialisation", "default-init"),
    "xavier": ("Xavier initialisation", "xavier-init"),
    "he": ("He initialisation", "he-init"),
}
"""The run's ``init`` in words, with its glossary entry."""

VANISH = 10.0
"""A layer-1 gradient more than this many times smaller than the layer-10 one is 'vanishing'."""


def final_values(results: Results, metric: str, activation: str, lr: float) -> np.ndarray:
    """Per-seed values of ``metric`` at the last epoch for ``activation`` at rate ``lr``."""
    m = results.metrics
    last = m[(m.metric == metric) & (m.step == results.summary["epochs"])]
    rows = last[(last.activation == activation) & np.isclose(last.lr, lr)].sort_values("seed")
    return rows.value.to_numpy()


def seed_values(results: Results, metric: str, activation: str, lr: float) -> pd.Series:
    """Per-seed values of ``metric`` at the last epoch for ``activation`` at rate ``lr``,
    indexed by seed (ascending)."""
    m = results.metrics
    last = m[(m.metric == metric) & (m.step == results.summary["epochs"])]
    rows = last[(last.activation == activation) & np.isclose(last.lr, lr)]
    return rows.set_index("seed").value.sort_index()


def paired_values(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Two :func:`seed_values` series lined up seed by seed (:func:`actlab.stats.paired_by_seed`:
    the seeds where both are finite)."""
    return paired_by_seed(a, b)


def _paired_differs(a: pd.Series, b: pd.Series) -> bool:
    """The paired t-test at 5% on two :func:`seed_values` series, pairs matched by seed."""
    return paired_differs(*paired_values(a, b))


CLOSE = 0.1
"""A held-out MSE within this fraction of ``s^2`` of the test draw's floor is 'at the floor'."""


def fit_verdict(truth: dict[str, float], excess: dict[str, float], noise_var: float) -> str:
    """What the error to the true function and the held-out excess say about a fit.

    ``truth``: the MSE between the fit and ``sin`` on a dense grid; ``excess``: the held-out MSE
    minus the test draw's own floor (the MSE of ``sin`` itself on those labels); both mean and
    95% interval over seeds. ``noise_var`` is ``s^2``. In this order:

    * *diverged* when either mean is not finite;
    * *underfits* when the error to the truth is above ``s^2`` (lower bound > ``s^2``): the fit
      misses the function by more than the noise it was asked to ignore;
    * *at the floor* when the excess is below ``CLOSE * s^2`` (upper bound);
    * *above the floor* when the excess is above ``CLOSE * s^2`` (lower bound);
    * otherwise *undecided* (the interval straddles ``CLOSE * s^2``).

    A training MSE below ``s^2`` plays no part: every fitted model is expected to score below
    ``s^2`` on its own training points.
    """
    if not (math.isfinite(truth["mean"]) and math.isfinite(excess["mean"])):
        return "diverged"
    limit = CLOSE * noise_var
    if _lo(truth) > noise_var:
        return f"underfits: error to the truth {num(truth['mean'] / noise_var, 2)}× $s^2$"
    if _hi(excess) < limit:
        return "at the floor"
    if _lo(excess) > limit:
        return f"above the floor by {num(excess['mean'] / noise_var, 2)}× $s^2$"
    return "undecided (interval straddles the limit)"


CUT = "†"
"""Marks a lower bound cut at 0."""
CUT_NOTE = (
    f"{CUT} The Student-t interval over the seeds reaches below 0 here, a value no MSE can "
    "take (with few seeds and a wide spread the formula allows it); the lower bound shown is "
    "0."
)


def mse_ci(stat: dict[str, float]) -> str:
    """:func:`~actlab.report.format.ci` of a quantity that cannot be negative (an MSE): a
    lower bound below 0 is shown as 0 with the mark :data:`CUT` (explained by
    :data:`CUT_NOTE` wherever it appears)."""
    lo, hi = stat.get("lo"), stat.get("hi")
    if lo is not None and math.isfinite(lo) and lo < 0:
        return f"{num(stat['mean'])} [0{CUT}, {num(hi)}]"
    return ci(stat)


def _cut_note(lines: list[str]) -> list[str]:
    """:data:`CUT_NOTE` (and a blank line) if any of ``lines`` shows a cut bound."""
    return [CUT_NOTE, ""] if any(CUT in line for line in lines) else []


def draw_sd(truth: float, noise: float, n: int) -> float:
    """The standard deviation, over new test draws, of a fixed fit's excess over the draw's
    floor: with ``e = fit - f`` and labels ``f + xi``, the excess is
    ``mean(e^2) - 2 mean(e xi)``, whose sd over the noise is ``2 s sqrt(mean(e^2) / n)``
    (``mean(e^2)`` taken as the error to the truth)."""
    if not (math.isfinite(truth) and truth >= 0 and n > 0):
        return math.nan
    return 2.0 * noise * math.sqrt(truth / n)


def draw_sentence(rows: dict, names: list[str], s: dict[str, Any]) -> str:
    """How far a new test draw could move each 'at the floor' or 'above the floor' verdict:
    whether the excess lies more than two :func:`draw_sd` from the limit ``CLOSE * s^2``."""
    noise_var, n = s["noise_floor"], int(s["n_train"]) - 1
    limit = CLOSE * noise_var
    firm, loose = [], []
    for a in names:
        r = rows[a]
        verdict = fit_verdict(r["fixed_truth"], r["fixed_excess"], noise_var)
        if not verdict.startswith(("at the floor", "above the floor")):
            continue
        sd = draw_sd(r["fixed_truth"]["mean"], s["noise"], n)
        gap = abs(r["fixed_excess"]["mean"] - limit)
        (firm if gap > 2 * sd else loose).append(f"{a} ({num(sd, 2)})")
    if not firm and not loose:
        return ""
    text = (
        "The intervals above do not include the test draw. For a fixed fit the excess is the "
        "error to the truth at the test inputs minus twice the mean of (fit − truth) × noise, "
        "and that term's standard deviation over new draws is "
        r"$2s\sqrt{\text{error to the truth}/n}$ with $n$ = "
        f"{n} test points (exercise 4): "
    )
    if firm:
        text += (
            f"for {_names(firm)} the seed-mean excess lies more than two such deviations from "
            f"the limit {num(limit)}, so another draw would most likely give the same verdict"
        )
    if loose:
        text += ("; for " if firm else "for ") + (
            f"{_names(loose)} it lies within two, so another draw could change the verdict"
        )
    return text + "."


def diverged_text(k: int, n: int) -> str:
    """``k`` of ``n`` seeds diverged, with the Wilson 95% interval of the proportion."""
    p = proportion_ci(int(k), int(n))
    return (
        f"{k} of {n} seeds diverged, [Wilson interval](#term-wilson-interval) "
        f"{pct(p['lo'])} to {pct(p['hi'])}"
    )


def convergence_verdict(change: dict[str, float], flat: float) -> str:
    """An activation's end of training in words, from the relative change of its held-out MSE
    over the last epochs (``change``: a :func:`actlab.stats.mean_ci` dict over seeds; negative
    means still falling), against ``flat`` with the whole 95% interval:

    * *still improving* when the interval lies below ``-flat``;
    * *rising* when it lies above ``flat``;
    * *converged* when it lies within ``[-flat, flat]``;
    * *undecided* otherwise (the seeds disagree); with one seed the mean decides.
    """
    mean = change.get("mean", math.nan)
    if mean is None or not math.isfinite(mean):
        return "unknown (no finite change)"
    lo, hi = _lo(change), _hi(change)
    if hi < -flat:
        return "still improving"
    if lo > flat:
        return "rising"
    if -flat <= lo and hi <= flat:
        return "converged"
    return "undecided"


def _lo(stat: dict[str, float]) -> float:
    """The lower bound, or the mean with one seed (no interval)."""
    return stat["lo"] if math.isfinite(stat["lo"]) else stat["mean"]


def _hi(stat: dict[str, float]) -> float:
    return stat["hi"] if math.isfinite(stat["hi"]) else stat["mean"]


def gradient_verdict(log10_ratio: dict[str, float]) -> str:
    """``vanishes``, ``does not vanish`` or ``undecided`` for the log10 ratio of layer-1 to
    layer-10 gradient magnitude, against the factor :data:`VANISH` (using the 95% CI)."""
    limit = -math.log10(VANISH)
    hi, lo = log10_ratio["hi"], log10_ratio["lo"]
    if not (math.isfinite(hi) and math.isfinite(lo)):
        mean = log10_ratio["mean"]
        if not math.isfinite(mean):
            return "undecided"
        return "vanishes" if mean < limit else "does not vanish"
    if hi < limit:
        return "vanishes"
    if lo > limit:
        return "does not vanish"
    return "undecided"


def _ranking(results: Results, metric: str, lrs: dict[str, float]) -> tuple[str, list[str]]:
    """The activation with the lowest seed-mean ``metric`` (each at its rate in ``lrs``) and
    those whose per-seed values are not significantly different from it (ties): a paired test,
    seed by seed, since seed s starts every activation at every rate from the same weights."""
    values = {a: seed_values(results, metric, a, lr) for a, lr in lrs.items()}
    means = {
        a: float(np.nanmean(v)) if np.isfinite(v).any() else math.inf for a, v in values.items()
    }
    best = min(means, key=means.get)
    ties = [a for a in values if a != best and not _paired_differs(values[best], values[a])]
    return best, ties


def _names(items: list[str]) -> str:
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _nan_for_none(value: Any) -> Any:
    """The summary as the run made it: a run folder stores NaN as JSON null."""
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: _nan_for_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_for_none(v) for v in value]
    return value


def report(results: Results) -> str:
    """The chapter's Markdown, ending with its exercises."""
    from actlab.experiments.deep_mlp.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = _nan_for_none(results.summary)
    rows = {r["activation"]: r for r in s["table"]}
    names = list(s["activations"])
    lr, depth = s["lr"], s["depth"]
    out = ["# A deep MLP on a noisy sine", ""]
    noise_var = s["noise_floor"]
    init_text, init_key = INITS.get(s["init"], (f"the {s['init']} initialisation", ""))
    init_link = f"[{init_text}](#term-{init_key})" if init_key else init_text
    out += [
        f"A multilayer perceptron with {depth} hidden layers of {s['width']} units learns "
        rf"$y = \sin x + \xi$, where the noise $\xi \sim \mathcal{{N}}(0, s^2)$ has standard "
        rf"deviation $s = {num(s['noise'])}$, from {s['n_train']} points on $[-\pi, \pi]$: one "
        f"model per activation, {s['seeds']} [seeds](#term-seed) each, all trained side by "
        f"side as one [ensemble](#term-ensemble) with Adam for {s['epochs']} epochs of one "
        f"full-batch step each. The weights start from {init_link}. Within a seed every "
        "activation starts from the same weights, sees the same data, trains for the same "
        f"number of steps and {_same_params(s)}, so none of these differs between activations. "
        "What is shared can still "
        "favour some of them: one learning rate (the fair-comparison section tunes it per "
        "activation) and one initialisation, which multiplies the spread of the signal by "
        rf"$\rho = {num(s.get('init_spread_factor', math.nan), 3)}$ per layer in a network of "
        "identity units (*Inside the hidden layers*) and may suit some activations better than "
        "others. Two more noisy draws on the midpoints of the training grid serve as "
        "validation (to pick a learning rate) and as the [held-out](#term-held-out) test set; "
        "a dense noiseless grid measures "
        "the *error to the true function* (the MSE between the fit and $\\sin x$).",
        "",
        "The noise sets a [noise floor](#term-noise-floor). On average no model can reach a "
        rf"held-out MSE below the noise variance $s^2 = {num(noise_var)}$, but one finite draw "
        rf"has its own floor: the true function $\sin x$ itself scores {num(s['test_floor'])} "
        f"on this run's test draw and {num(s['train_floor'])} on its training draw. A fitted "
        "model is expected to score *below* the floor on its own training points (a linear "
        r"model with $|\theta|$ parameters that contains the true function, fitted to $n$ "
        r"points, scores $s^2(1 - |\theta|/n)$ on average: exercise 3), so a training MSE "
        "under the floor is not by itself overfitting. "
        + _params_sentence(s)
        + "The verdicts below use the error to the true function and the held-out MSE minus the "
        "test draw's floor.",
        "",
        "![Truth, data and each activation's fit](figures/learned_functions.png)",
        "",
        f"*Dashed black: the truth; grey dots: the training data; solid: the mean fit over "
        f"seeds at the shared rate {num(lr)} with its 95% band; dotted: the mean fit at the "
        "activation's tuned rate, where it differs.*",
        "",
    ]

    # ------------------------------------------------------------------ fit quality
    out += ["## How well each activation fits", ""]
    out += [
        f"Final values after {s['epochs']} epochs at the shared rate {num(lr)}: mean "
        f"[[95% interval](#term-t-interval) over the {s['seeds']} seeds]. Every seed "
        "trains on the same data draw and only the initial weights change with the seed, so "
        "these intervals measure the spread due to initialisation, not the uncertainty due to "
        "the data: a new noise draw would move every number, and a near-zero width (as for a "
        "network that always reaches the same fit) does not mean the error is known that "
        "precisely. *Above the floor* is the held-out MSE minus the test draw's floor "
        f"({num(s['test_floor'])}): an estimate of the error to the truth at the test inputs, "
        "which can come out below 0 (a fit can by chance sit closer to this draw's labels "
        r"than $\sin x$ does).",
        "",
        "| activation | training MSE | held-out MSE | above the floor | error to the truth "
        "| verdict |",
        "|---|---|---|---|---|---|",
    ]
    for a in names:
        r = rows[a]
        verdict = fit_verdict(r["fixed_truth"], r["fixed_excess"], noise_var)
        if r["fixed_diverged"]:
            verdict += f" ({diverged_text(r['fixed_diverged'], s['seeds'])})"
        out.append(
            f"| {a} | {mse_ci(r['fixed_train'])} | {mse_ci(r['fixed_test'])} "
            f"| {ci(r['fixed_excess'])} | {mse_ci(r['fixed_truth'])} | {verdict} |"
        )
    out.append("")
    out += _cut_note(out[-len(names) - 1 :])
    out += [
        f"Verdicts, in this order: *underfits* when the whole interval of the error to the "
        f"truth lies above $s^2$; *at the floor* when the held-out MSE exceeds the draw's floor "
        f"by less than {num(CLOSE)} $s^2$ (whole interval below); *above the floor* when by more "
        "(whole interval above); *undecided* otherwise. Two activations are compared with a "
        "[paired test](#term-paired) on their per-seed values: seed by seed, since a seed "
        "starts every activation from the same weights on the same data, so what the seed "
        "contributes cancels; a difference it does not support is called within noise.",
        "",
    ]
    draw = draw_sentence(rows, names, s)
    out += [draw, ""] if draw else []
    best, ties = _ranking(results, "truth/mse", {a: lr for a in names})
    out += [_ranking_sentence("At the shared rate", best, ties, rows[best]["fixed_truth"])]
    under = [
        a
        for a in names
        if fit_verdict(rows[a]["fixed_truth"], rows[a]["fixed_excess"], noise_var).startswith(
            "underfits"
        )
    ]
    if under:
        out[-1] += (
            f" {_names(under)} {'misses' if len(under) == 1 else 'miss'} the true function by "
            f"more than the noise variance after {s['epochs']} epochs."
        )
    line = best_line_sentence(rows, s)
    if line:
        out[-1] += " " + line
    out += ["", "![Loss curves with the noise floor](figures/loss_curves.png)", ""]
    out += _convergence_section(rows, names, s)

    # ------------------------------------------------------------------ tuned rates
    out += _tuned_section(results, rows, names)

    # ------------------------------------------------------------------ gradients
    out += _gradient_section(rows, names, s)

    # ------------------------------------------------------------------ hidden units
    out += _hidden_section(rows, names, s)

    out += _animation_section(results, s)
    out += [
        "## What this run does not show",
        "",
        f"One task, one draw of its data, one width ({s['width']}), one initialisation "
        f"({s['init']}), {len(s['learning_rates'])} base learning rates and {s['seeds']} seeds "
        "(the intervals over seeds do not include the variability of the data); the "
        "per-example backward signal that theory predicts is measured at initialisation only, "
        "the full-batch gradient during training. An "
        "activation that "
        "suffers here may do well with an initialisation matched to it (He for ReLU, "
        "Xavier for tanh), or with normalisation or residual connections, none of which "
        "this run varies.",
        "",
    ]
    return "\n".join(out).rstrip() + "\n\n" + exercises_markdown(EXERCISES).rstrip() + "\n"


PAIRS = "of (unit, input) pairs in the saturated band"
"""The words for the share of (unit, input) pairs in the saturated band."""


def _animation_section(results: Results, s: dict[str, Any]) -> list[str]:
    """The training GIF and how to read it, every number from the run."""
    frames = [int(f) for f in results.coords["fits/frame"]]
    shown = min(len(frames), ANIMATION_FRAMES)
    n_units = int(results.arrays["last_hidden_frames"].shape[-1])
    depth = s["depth"]
    units = (
        f"all {n_units} units" if n_units == s["width"] else f"{n_units} of the {s['width']} units"
    )
    if shown == len(frames):
        pace = f"one frame every {s['frame_every']} epochs"
    else:
        pace = (
            f"{shown} frames spread evenly over epochs {frames[0]} to {frames[-1]} "
            f"(about one every {num((frames[-1] - frames[0]) / (shown - 1), 2)} epochs)"
        )
    return [
        "## Training, frame by frame",
        "",
        "![The fits and the last hidden layer during training](figures/training.gif)",
        "",
        f"*How to read it: {pace}; the title gives the epoch. One column per activation, all "
        f"seed 0 at the shared rate {num(s['lr'])}. Top row: the fit (coloured) over the truth "
        f"(dashed black) and the training data (grey), $x$ from $-\\pi$ to $\\pi$. Bottom row: "
        f"{units} of hidden layer {depth} (the last), each unit's "
        "output as a function of $x$, on a vertical scale of its own per activation. Watch "
        "the bottom row: flat lines mean the last hidden layer gives every input the same "
        "value (the collapsed forward signal above), and the fit above can then be no more "
        "than a constant; the fit bends once these units start to vary with $x$.*",
        "",
    ]


LINE_CLOSE = 0.05
"""An identity network whose error to the truth is within this fraction of the best straight
line's is 'at the best line'."""


def best_line_sentence(rows: dict, s: dict[str, Any]) -> str:
    """Identity's error to the truth at the shared rate against that of the best straight line
    (a stack of identity layers is one linear map); empty without identity or the number."""
    line = s.get("best_line_truth", math.nan)
    if "identity" not in rows or not math.isfinite(line) or line <= 0:
        return ""
    mine = rows["identity"]["fixed_truth"]["mean"]
    if not math.isfinite(mine):
        return ""
    head = (
        f"The error to the truth of identity, {num(mine, 4)}, "
        + (
            "is that of the best straight line"
            if abs(mine / line - 1) <= LINE_CLOSE
            else f"is {num(mine / line, 3)}× that of the best straight line"
        )
        + rf" through $\sin x$ ({num(line, 4)} on the dense grid): "
    )
    collapse = (
        "a stack of linear layers is one linear map ([stacked linear layers "
        "collapse](#stacked-linear-layers-collapse)), "
    )
    if abs(mine / line - 1) <= LINE_CLOSE:
        return head + collapse + "so this is the limit of the model, not a failure of training."
    return head + collapse + "and this one has not yet reached the best that such a map can do."


def _same_params(s: dict[str, Any]) -> str:
    """The parameter-count clause of the introduction: equal unless an activation has
    learnable parameters of its own (read from the summary)."""
    own = [r["activation"] for r in s["table"] if r.get("act_params", 0)]
    if not own:
        return (
            "has the same number of parameters (these activations have no learnable "
            "parameters of their own)"
        )
    return (
        f"has the same weights and biases ({_names(own)} also "
        f"{'learns parameters' if len(own) == 1 else 'learn parameters'} of the activation "
        "itself)"
    )


def _params_sentence(s: dict[str, Any]) -> str:
    """The networks' parameter count against the training points, and how far below the
    training draw's floor their training MSEs got (the linear formula does not carry over)."""
    n_params, floor = s.get("n_params"), s.get("train_floor", math.nan)
    if not isinstance(n_params, int | float) or not math.isfinite(floor) or floor <= 0:
        return ""
    means = [r["fixed_train"]["mean"] for r in s["table"]]
    means = [m for m in means if isinstance(m, float | int) and math.isfinite(m)]
    if not means:
        return ""
    lowest = min(means) / floor - 1
    where = f"{pct(-lowest)} below" if lowest < 0 else f"{pct(lowest)} above"
    return (
        rf"The networks here have $|\theta|$ = {int(n_params)} parameters, "
        f"{'more' if n_params > s['n_train'] else 'fewer'} than the {s['n_train']} training "
        "points, and the formula (for a linear model fitted to convergence, "
        r"$|\theta| < n$) does not carry over to them: the lowest training MSE of any "
        f"activation at the shared rate is {where} this draw's floor. "
    )


def _ranking_sentence(prefix: str, best: str, ties: list[str], stat: dict) -> str:
    text = f"{prefix}, the lowest error to the true function is {best}'s ({mse_ci(stat)})"
    if ties:
        return text + (
            f"; {_names(ties)} {'is' if len(ties) == 1 else 'are'} within noise of it "
            "(paired test, 5%), so this run does not separate them."
        )
    return text + ", significantly lower than every other activation (paired test, 5%)."


def _change(stat: dict[str, float]) -> str:
    """A relative change (mean [95% interval]) in percent, signed."""

    def one(v: float) -> str:
        if v is None or not math.isfinite(v):
            return "n/a"
        if abs(v) < 5e-5:  # below 0.005%: printed as 0, not as +3e-06%
            return "0%"
        return f"{100 * v:+.2g}%".replace("-", "−")

    mean, lo, hi = stat.get("mean"), stat.get("lo"), stat.get("hi")
    if lo is None or not math.isfinite(lo):
        return one(mean)
    return f"{one(mean)} [{one(lo)}, {one(hi)}]"


def _convergence_section(rows: dict, names: list[str], s: dict[str, Any]) -> list[str]:
    """Whether each activation had settled at the last epoch, at the shared and tuned rates."""
    w, start, end = s["tail_epochs"], s["converge_from"], s["epochs"]
    flat = s["flat"]
    out = [
        "## Converged, or out of epochs?",
        "",
        f"The comparisons are taken at epoch {end}. To see whether the runs had settled by "
        f"then: per seed, the relative change of the MSE over the last {w} epochs (the last "
        f"{pct(w / end)} of the run), MSE at epoch {end} / MSE at epoch {start} − 1 (negative: "
        "still falling), with its mean and 95% interval over seeds. An activation is "
        f"*converged* when the whole interval of its held-out change lies within ±{pct(flat)}, "
        f"*still improving* when it lies below −{pct(flat)}, *rising* when above "
        f"+{pct(flat)}, and *undecided* when it straddles one of these limits.",
        "",
        f"| activation | held-out change, shared rate {num(s['lr'])} | training change "
        "| verdict | held-out change, tuned rate | verdict |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = {}
    for a in names:
        r = rows[a]
        fixed, tuned = r["converge_fixed"], r["converge_tuned"]
        verdicts[a] = convergence_verdict(fixed["test"], flat)
        tuned_verdict = convergence_verdict(tuned["test"], flat)
        out.append(
            f"| {a} | {_change(fixed['test'])} | {_change(fixed['train'])} | {verdicts[a]} "
            f"| {_change(tuned['test'])} (rate {num(r['best_lr'])}) | {tuned_verdict} |"
        )
    out.append("")
    groups = {
        v: [a for a in names if verdicts[a] == v]
        for v in ("converged", "still improving", "rising", "undecided")
    }
    text = []
    if groups["converged"]:
        text.append(
            f"At the shared rate {_names(groups['converged'])} "
            f"{'has' if len(groups['converged']) == 1 else 'have'} converged in this sense: "
            f"{'its' if len(groups['converged']) == 1 else 'their'} final numbers are not a "
            "snapshot of a loss still falling at the end. Flat "
            f"over the last {w} epochs does not rule out a plateau that a longer run would "
            "leave: a loss can stay flat for many epochs and then drop."
        )
    text += plateau_sentences(rows, groups["converged"], s)
    if groups["still improving"]:
        one = len(groups["still improving"]) == 1
        text.append(
            f"{_names(groups['still improving'])} {'was' if one else 'were'} still improving at "
            "the end: the budget ran out first, so a ranking that involves "
            f"{'it' if one else 'them'} compares runs in progress and a longer run could "
            "change it."
        )
    if groups["rising"]:
        text.append(
            f"The held-out MSE of {_names(groups['rising'])} rose over the last {w} epochs "
            "(overfitting or instability)."
        )
    if groups["undecided"]:
        text.append(
            f"For {_names(groups['undecided'])} the interval straddles a limit: the seeds' "
            f"changes spread too widely to place the mean inside or outside ±{pct(flat)}, so "
            "this run cannot say whether training had settled."
        )
    out += [" ".join(text), ""]
    return out


def _at_best_line(rows: dict, s: dict[str, Any]) -> bool:
    """Whether identity's error to the truth is that of the best straight line."""
    line = s.get("best_line_truth", math.nan)
    if "identity" not in rows or not (math.isfinite(line) and line > 0):
        return False
    return abs(rows["identity"]["fixed_truth"]["mean"] / line - 1) <= LINE_CLOSE


def plateau_sentences(rows: dict, converged: list[str], s: dict[str, Any]) -> list[str]:
    """For each activation 'converged' at the shared rate whose fit still underfits (and that
    is not a linear network already at the best straight line): flat, but on a plateau, with
    the latest epoch at which its held-out MSE had last fallen by more than the flat band."""
    w, flat, noise_var = s["tail_epochs"], s["flat"], s["noise_floor"]
    out = []
    for a in converged:
        r = rows[a]
        if not fit_verdict(r["fixed_truth"], r["fixed_excess"], noise_var).startswith("underfits"):
            continue
        if a == "identity" and (_at_best_line(rows, s) or "best_line_truth" not in s):
            continue  # at the limit of a linear map (or, in an older run folder, unknown)
        drop = r["converge_fixed"].get("last_drop")
        text = (
            f"The held-out MSE of {a} is flat over the last {w} epochs, but its fit misses the "
            f"truth by {num(r['fixed_truth']['mean'] / noise_var, 2)}× $s^2$: it sits on a "
            "plateau, "
        )
        if isinstance(drop, int | float) and math.isfinite(drop):
            text += (
                f"and it last fell by more than {pct(flat)} within {w} epochs "
                f"as late as epoch {int(drop)} (latest over the seeds): it has left plateaus "
                "before, and a longer run may leave this one."
            )
        elif "last_drop" in r["converge_fixed"]:
            text += (
                f"and it never fell by more than {pct(flat)} within {w} epochs: "
                "this run cannot say whether more epochs would help."
            )
        else:  # a run folder from before the drop was recorded
            text = text.rstrip(", ") + ", which a longer run may leave."
        out.append(text)
    return out


def _tuned_section(results: Results, rows: dict, names: list[str]) -> list[str]:
    s = results.summary
    out = ["## A fair comparison: each activation at its own learning rate", ""]
    grid = ", ".join(num(v) for v in s["learning_rates"])
    factor, n_ext = num(s.get("lr_factor", 3.0)), s.get("lr_extend", 0)
    out += [
        f"One shared rate can favour some activations. Each activation was therefore also "
        f"trained at every rate of {{{grid}}}, and the rate with the lowest mean validation "
        "MSE over seeds (a draw separate from the test set; a rate where any seed diverged is "
        "never picked) was kept. A pick is fair only when it is *interior*: a smaller and a "
        "larger rate were both tried and scored worse. Where an activation's pick was the "
        f"smallest or the largest rate of its grid, one more rate {factor}× beyond that edge "
        f"was tried for that activation alone, up to {n_ext} times and never outside "
        f"[{num(s.get('lr_min', math.nan))}, {num(s.get('lr_max', math.nan))}]. Held-out "
        "numbers below are on the test draw.",
        "",
        "| activation | rates tried | tuned rate | where the pick lies | training MSE "
        "| held-out MSE | error to the truth |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in names:
        r = rows[a]
        tried = ", ".join(num(v) for v in r.get("lr_tried", s["learning_rates"]))
        where = r.get("lr_status_text", "")
        out.append(
            f"| {a} | {tried} | {num(r['best_lr'])} | {where} | {mse_ci(r['tuned_train'])} "
            f"| {mse_ci(r['tuned_test'])} | {mse_ci(r['tuned_truth'])} |"
        )
    flagged = [a for a in names if rows[a].get("lr_status", "interior") != "interior"]
    out.append("")
    out += _cut_note(out[-len(names) - 1 :])
    if flagged:
        out.append(
            f"The pick of {_names(flagged)} is not interior (see the table): "
            f"{'its' if len(flagged) == 1 else 'their'} best rate may lie beyond what was "
            "tried, so the comparison below is not fully fair to "
            f"{'it' if len(flagged) == 1 else 'them'}."
        )
    else:
        out.append("Every activation's pick is interior to its grid.")
    out.append("")
    best_fixed, _ = _ranking(results, "truth/mse", {a: s["lr"] for a in names})
    best, ties = _ranking(results, "truth/mse", {a: rows[a]["best_lr"] for a in names})
    out.append(_ranking_sentence("At the tuned rates", best, ties, rows[best]["tuned_truth"]))
    moved = [a for a in names if not math.isclose(rows[a]["best_lr"], s["lr"])]
    if moved:
        out[-1] += f" The tuned rate differs from the shared one for {_names(moved)}."
        out[-1] += " " + tuning_effect_sentence(results, moved)
    else:
        out[-1] += f" Every activation's tuned rate is the shared one ({num(s['lr'])})."
    if best != best_fixed:
        if best_fixed in ties:
            out[-1] += (
                f" The nominal leader changes from {best_fixed} (shared rate) to {best} "
                f"(tuned rates), but at the tuned rates {best_fixed} is within noise of {best}."
            )
        else:
            out[-1] += (
                f" The leader changes from {best_fixed} (shared rate) to {best} (tuned rates), "
                f"and at the tuned rates {best} is significantly better than {best_fixed}: a "
                "ranking from one shared rate would have been misleading."
            )
    out.append("")
    return out


def tuning_effect_sentence(results: Results, moved: list[str]) -> str:
    """Whether tuning changed the error to the truth of each activation in ``moved`` (its
    per-seed values at the tuned against the shared rate, lined up by seed: a paired test at
    5%, since a seed starts both rates from the same weights)."""
    s = results.summary
    rows = {r["activation"]: r for r in s["table"]}
    better, worse, same = [], [], []
    for a in moved:
        shared, tuned = paired_values(
            seed_values(results, "truth/mse", a, s["lr"]),
            seed_values(results, "truth/mse", a, rows[a]["best_lr"]),
        )
        if paired_differs(shared, tuned):
            lower = np.mean(tuned - shared) < 0
            (better if lower else worse).append(a)
        else:
            same.append(a)
    parts = [
        f"{verb} {{it}} {how} for {_names(acts)}"
        for verb, how, acts in (
            ("lowered", "significantly", better),
            ("raised", "significantly", worse),
            ("changed", "by no more than noise", same),
        )
        if acts
    ]
    text = "; ".join(parts).replace("{it}", "the error to the truth", 1).replace("{it}", "it")
    return (
        f"Against the shared rate, tuning {text} (paired test on the per-seed errors to the "
        "truth, 5%: a seed starts both rates from the same weights; a rate picked on the "
        "validation draw need not lower the error to the truth)."
    )


def _ratio_ci(st: dict[str, float]) -> str:
    """A log10 ratio's mean [95% interval] as factors."""
    if not math.isfinite(st.get("lo", math.nan)):
        return ratio(st["mean"])
    return ratio_ci(st)


def _input_sentence(rows: dict, names: list[str], depth: int) -> str:
    """The measured ratio of layer 1's input size to layer ``depth``'s, per activation, and
    which way it pushes κ (empty without the measurement)."""
    stats = {a: rows[a].get("log10_input_ratio") for a in names}
    if not all(
        isinstance(v, dict) and math.isfinite(v.get("mean", math.nan)) for v in stats.values()
    ):
        return ""
    up = [a for a in names if stats[a]["mean"] > 0]
    down = [a for a in names if stats[a]["mean"] <= 0]
    text = (
        f" At initialisation the size of layer 1's input over that of layer {depth}'s (root "
        "mean square over units and inputs, geometric mean over seeds) is "
        + "; ".join(f"{a} {ratio(stats[a]['mean'])}" for a in names)
        + ": "
    )
    parts = []
    if up:
        who = "every activation" if not down else _names(up)
        parts.append(f"for {who} this factor makes $\\kappa$ *larger* than the backward "
                     "signal's ratio")  # fmt: skip
    if down:
        parts.append(f"for {_names(down)} it makes $\\kappa$ smaller")
    return text + "; ".join(parts) + "."


def _gradient_section(rows: dict, names: list[str], s: dict[str, Any]) -> list[str]:
    depth, epochs = s["depth"], s["grad_epochs"]
    has_delta = all(isinstance(rows[a].get("log10_delta_ratio"), dict) for a in names)
    out = ["## Gradient flow through depth", ""]
    out += [
        "![Mean gradient magnitude per layer](figures/gradient_flow.png)",
        "",
        rf"For each layer $l$ the mean $|\partial L/\partial W_l|$ over its weights of the "
        "*full-batch* gradient, the one Adam receives at each step (layers numbered from the "
        f"input: 1 is the first, {depth + 1} the output layer), and the ratio $\\kappa$ of layer "
        f"1's to layer {depth}'s: its [geometric mean over seeds](#term-geometric-mean) "
        "[95% interval].",
        "",
        "$\\kappa$ is not the quantity that mean-field theory predicts. The theory (chapter "
        "[How gradients flow](#how-gradients-flow), later in this tutorial) predicts the "
        r"*per-example backward signal* $\delta_l$, the gradient at the pre-activations $z_l$ "
        "for one input, whose size at initialisation changes from layer to layer by a factor "
        "that the theory computes from the activation and the initialisation. One example's "
        "weight gradient multiplies it by the layer's input, "
        r"$\partial L/\partial W_l = \delta_l h_{l-1}^\top$, and the full batch averages these "
        "over the examples, whose signs can cancel. So $\\kappa$ mixes three things: the "
        f"backward signal's ratio, the ratio of the two layers' input sizes (layer 1's input is "
        f"$x$ itself, layer {depth}'s the output of layer {depth - 1}), and how much the "
        "examples cancel in each layer's average."
        + _input_sentence(rows, names, depth)
        + (
            f" The last column is the backward signal alone at initialisation, "
            f"$\\delta_1/\\delta_{{{depth}}}$: the root mean square over units and training "
            r"inputs of $\partial \hat y/\partial z_l$ (the per-example $\delta_l$ with the "
            "loss's own factor, the residual, set to 1), geometric mean over seeds [95% interval]."
            if has_delta
            else ""
        ),
        "",
        "Nor is $\\kappa$ the ratio of the learning steps: Adam divides each weight's step by "
        "the running root mean square of its own gradient, so a layer whose gradient is 100× "
        "smaller still moves by steps of about the learning rate, as long as its gradient is "
        "not drowned by Adam's $\\epsilon$ (exercise 2).",
        "",
        "| activation | "
        + " | ".join(r"$\kappa$, " + ("first step" if e == 0 else f"epoch {e}") for e in epochs)
        + (f" | $\\delta_1/\\delta_{{{depth}}}$, initialisation" if has_delta else "")
        + " |",
        "|---|" + "---|" * (len(epochs) + has_delta),
    ]
    for a in names:
        cells = [_ratio_ci(rows[a][f"log10_grad_ratio_{e}"]) for e in epochs]
        if has_delta:
            cells.append(_ratio_ci(rows[a]["log10_delta_ratio"]))
        out.append(f"| {a} | " + " | ".join(cells) + " |")
    out.append("")
    first = epochs[0]
    when = "At the first step" if first == 0 else f"At epoch {first}"
    subject = f"layer 1's full-batch weight gradient is {{}} than layer {depth}'s"
    text = vanishing_sentence(
        {a: rows[a][f"log10_grad_ratio_{first}"] for a in names},
        when,
        subject,
        "smaller",
        "$\\kappa$",
    )
    out.append(text)
    if len(epochs) > 1:
        changes = []
        for a in names:
            start = rows[a][f"log10_grad_ratio_{first}"]["mean"]
            steps = ", ".join(
                f"{ratio(rows[a][f'log10_grad_ratio_{e}']['mean'])} by epoch {e}"
                for e in epochs[1:]
            )
            changes.append(f"{a} {ratio(start)} → {steps}")
        out[-1] += " During training $\\kappa$ moves: " + "; ".join(changes) + "."
    out.append("")
    if has_delta:
        delta = vanishing_sentence(
            {a: rows[a]["log10_delta_ratio"] for a in names},
            "At initialisation",
            f"the per-example backward signal at layer 1 is {{}} than at layer {depth}",
            "weaker",
            f"$\\delta_1/\\delta_{{{depth}}}$",
        )
        out += [delta + " " + delta_sentence(rows, names, s, first), ""]
    return out


def vanishing_sentence(
    stats: dict[str, dict], when: str, subject: str, word: str, noun: str
) -> str:
    """The :func:`gradient_verdict` of each activation's log10 ratio ``stats``, grouped, in one
    or two sentences; ``subject`` holds ``{}`` where "more than 10× ``word``" goes, ``noun``
    names the ratio for the undecided ones."""
    verdicts = {a: gradient_verdict(st) for a, st in stats.items()}
    groups = {
        v: [a for a in stats if verdicts[a] == v]
        for v in ("vanishes", "does not vanish", "undecided")
    }
    limit = f"1/{num(VANISH)}"
    parts = []
    if groups["vanishes"]:
        parts.append(
            subject.format(f"more than {num(VANISH)}× {word}")
            + f" (the whole 95% interval below {limit}) for {_names(groups['vanishes'])}"
        )
    if groups["does not vanish"]:
        less = f"less than {num(VANISH)}× {word}"
        parts.append(
            (f"it is {less}" if parts else subject.format(less))
            + f" (the whole interval above {limit}) for {_names(groups['does not vanish'])}"
        )
    text = f"{when}, " + "; ".join(parts) + "." if parts else ""
    if groups["undecided"]:
        text += (
            f" For {_names(groups['undecided'])} the interval of {noun} straddles {limit}: "
            "this run cannot say whether it falls by that much."
        )
    return text.strip()


def delta_sentence(rows: dict, names: list[str], s: dict[str, Any], first: int) -> str:
    """How the backward signal alone compares with κ, and identity's backward signal against
    the initialisation's prediction ``rho ** (depth - 1)``."""
    depth = s["depth"]
    below = [
        a
        for a in names
        if rows[a]["log10_delta_ratio"]["mean"] < rows[a][f"log10_grad_ratio_{first}"]["mean"]
    ]
    text = ""
    if below:
        text = (
            "On the seed means, the backward signal alone falls by more than $\\kappa$ says "
            f"for {_names(below)}: the inputs' sizes and the batch average hide part of its "
            "fall."
        )
    factor = s.get("init_spread_factor", math.nan)
    if "identity" in names and math.isfinite(factor) and factor > 0 and depth > 1:
        st = rows["identity"]["log10_delta_ratio"]
        predicted = (depth - 1) * math.log10(factor)
        lo, hi = _lo(st), _hi(st)
        where = (
            "inside the measured interval"
            if lo <= predicted <= hi
            else ("below" if predicted < lo else "above") + " the measured interval"
        )
        text += (
            f" For identity units the backward pass multiplies $\\delta$ by $W^\\top$ at each "
            f"layer, which changes its size by the same $\\rho = {num(factor, 3)}$ as the "
            f"forward spread (*Inside the hidden layers*): predicted "
            f"$\\rho^{{{depth - 1}}}$ = {ratio(predicted)}, measured "
            f"{_ratio_ci(st)}, the prediction {where}; its $\\kappa$ at the first step is "
            f"{ratio(rows['identity'][f'log10_grad_ratio_{first}']['mean'])}. Both numbers "
            "belong to this initialisation: the gradient-flow chapter compares it with "
            "[Xavier's](#term-xavier-init) and [He's](#term-he-init)."
        )
    return text.strip()


def _hidden_section(rows: dict, names: list[str], s: dict[str, Any]) -> list[str]:
    layers = s["hidden_layers"]
    last_epoch = s["snapshot_epochs"][-1]
    out = ["## Inside the hidden layers", ""]
    out += [
        "![Hidden-layer outputs at initialisation](figures/hidden_activations_start.png)",
        "",
        f"![Hidden-layer outputs after {last_epoch} epochs](figures/hidden_activations.png)",
        "",
    ]
    out += [
        f"*Each heatmap row is one unit of a hidden layer ({_names([str(v) for v in layers])}; "
        "seed 0), its output coloured along the input $x$; rows are sorted by their mean. A "
        "row whose colour changes along $x$ is a unit that responds to the input; a row of one "
        "colour gives every input the same value. The histograms on the right pool every "
        "unit and input of a layer.*",
        "",
    ]
    deep, shallow = str(layers[-1]), str(layers[0])
    spread = [
        f"{a} {num(rows[a]['spread_start'][shallow]['mean'])} → "
        f"{num(rows[a]['spread_start'][deep]['mean'])}"
        for a in names
    ]
    gap = int(deep) - int(shallow)
    factor = s.get("init_spread_factor", math.nan)
    measured = {}
    for a in names:
        lo_, hi_ = rows[a]["spread_start"][shallow]["mean"], rows[a]["spread_start"][deep]["mean"]
        ok = gap > 0 and lo_ > 0 and hi_ >= 0 and math.isfinite(lo_) and math.isfinite(hi_)
        measured[a] = (hi_ / lo_) ** (1 / gap) if ok else math.nan
    out += [
        "How much a unit's output varies across the inputs (standard deviation over $x$, "
        f"averaged over units and seeds), at initialisation, from layer {shallow} to layer "
        f"{deep}: {'; '.join(spread)}. Where it shrinks towards 0, every input looks the "
        "same to the deep layers: the forward signal has collapsed.",
        "",
    ]
    if math.isfinite(factor) and gap > 0:
        per_layer = "; ".join(f"{a} {num(measured[a], 3)}" for a in names)
        text = (
            "Part of this collapse is the initialisation, not the activation. A linear layer "
            "maps units whose outputs vary over the inputs with some standard deviation to "
            r"units that vary $\rho \approx \sqrt{\text{width}\cdot\mathrm{Var}(w)}$ times as "
            "much (the bias is the same for every input and adds nothing). This run's "
            f"{s['init']} initialisation has "
            rf"$\mathrm{{Var}}(w) = {num(s['init_weight_var'], 3)}$ on the hidden-to-hidden "
            rf"layers of width {s['width']} (seed 0's weights"
            + (
                r"; in expectation $1/(3\cdot\text{width})$, so $\rho = \sqrt{1/3} = 0.577$"
                if s["init"] == "torch"
                else ""
            )
            + rf"), which predicts $\rho = {num(factor, 3)}$ per "
            f"layer for identity, {num(factor**gap, 2)} over the {gap} layers from "
            f"{shallow} to {deep}. Measured $\\rho$ per layer (geometric mean over the {gap} "
            f"layers, from the spreads above): {per_layer}."
        )
        if "relu" in names:
            text += (
                " For ReLU the same shrinking leaves each deep unit's pre-activation $z$ "
                "dominated by its bias, nearly constant over the inputs: a unit whose bias is "
                "negative outputs 0 on every input, i.e. it is [dead](#term-dead). With biases "
                "drawn symmetric about 0 that can be up to about half of the units of a deep "
                "layer"
            )
            worst = rows["relu"].get("off_fraction_start_worst_layer")
            if isinstance(worst, dict) and math.isfinite(worst.get("fraction", math.nan)):
                n = int(s["width"]) * int(s["seeds"])
                k = int(round(worst["fraction"] * n))
                p = proportion_ci(k, n)
                text += (
                    f" (measured: {pct(worst['fraction'])} of layer {worst['layer']}'s ReLU "
                    f"units at initialisation, {k} of {n} over the {s['seeds']} seeds, "
                    f"[Wilson interval](#term-wilson-interval) {pct(p['lo'])} to {pct(p['hi'])}; "
                    f"of the {s['depth']} hidden layers, the one with the most)"
                )
            text += (
                ": dead units at initialisation are in good part a property of this "
                "initialisation, not of ReLU alone. An initialisation matched to ReLU, "
                "[He's](#term-he-init), is designed to keep the spread constant; this run does "
                "not try it."
            )
        out += [text, ""]
    kinds = {a: rows[a].get("off_kind") for a in names}
    dead = [a for a in names if kinds[a] == "dead"]
    inactive = [a for a in names if kinds[a] == "inactive"]
    neither = [a for a in names if a not in dead and a not in inactive]
    which = []
    if dead:
        which.append(f"dead for {_names(dead)}")
    if inactive:
        which.append(f"inactive for {_names(inactive)}")
    panel = "The left panel shows each activation's own notion: " + "; ".join(which)
    if neither:
        panel += f"; {_names(neither)} {'has' if len(neither) == 1 else 'have'} neither"
    out += [
        "![Dead or inactive, saturated and dormant units per layer](figures/unit_health.png)",
        "",
        "One threshold each, as in the glossary: a unit is [dead](#term-dead) when its output "
        "is exactly 0 on every probe input (counted for activations with an exact zero "
        "region, such as ReLU), [inactive](#term-inactive) when its pre-activation $z$ is "
        "below 0 on every input (counted for the other ReLU-like ones, such as leaky ReLU and "
        "GELU, whose output is then small but not 0), [saturated](#term-saturated) when "
        r"$|\tanh z| > 0.99$, or a sigmoid output is outside $[0.01, 0.99]$, on every input "
        "(the middle panel shows the share of (unit, input) pairs in that band, which also "
        "counts a unit saturated on some inputs only), and [τ-dormant](#term-dormant) (ReDo, "
        "τ = 0.025) when its mean $|h|$ over the inputs is at most τ times the layer's "
        "average. The probe inputs are the "
        f"{s['n_grid']} points of the noiseless grid. " + (panel + "." if which else ""),
        "",
    ]
    facts, zero, applies = [], {}, {}
    for a in names:
        r = rows[a]
        kind = r.get("off_kind")
        mine = []
        for key, word in (
            ("off_fraction", kind if isinstance(kind, str) else "dead or inactive"),
            ("saturated_fraction", "saturated"),
            ("saturated_pair_fraction", PAIRS),
            ("dormant_fraction", "τ-dormant"),
        ):
            start, end = r[f"{key}_start"], r[f"{key}_end"]
            if not math.isfinite(end["mean"]):
                continue  # the notion does not apply to this activation
            applies.setdefault(word, []).append(a)
            if end["mean"] == 0 and start["mean"] == 0:
                zero.setdefault(word, []).append(a)
                continue
            worst = r[f"{key}_end_worst_layer"]
            where = ""
            if isinstance(worst, dict) and worst["fraction"] > 0:
                where = f" (most in layer {worst['layer']}: {pct(worst['fraction'])})"
            mine.append(
                f"{pct(start['mean'])} {word} at initialisation, {pct(end['mean'])} after "
                f"{last_epoch} epochs{where}"
            )
        if mine:
            facts.append(f"{a}: " + "; ".join(mine))
    if facts:
        out += [
            "Measured by the probes (share of each layer's units, or of its (unit, input) "
            "pairs, mean over layers and seeds): " + ". ".join(facts) + ".",
            "",
        ]
    for word, acts in zero.items():
        either = _names(acts).replace(" and ", " or ")
        if word == PAIRS:
            whole = acts == applies[word]
            text = (
                f"No (unit, input) pair of {either} was in the saturated band in any layer, at "
                f"initialisation or after {last_epoch} epochs"
                + (": the middle panel is zero." if whole else ".")
            )
        else:
            text = (
                f"No {either} unit was {word}"
                + (" on every input" if word == "saturated" else "")
                + f" in any layer, at initialisation or after {last_epoch} epochs."
            )
            if word == "saturated" and any(a not in zero.get(PAIRS, []) for a in acts):
                text += (
                    " Saturation here is partial: some units sit in the flat band on some "
                    "inputs and not on others, which the middle panel's share of (unit, input) "
                    "pairs shows."
                )
        out += [text, ""]
    return out
