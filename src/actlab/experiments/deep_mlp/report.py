"""The deep-MLP report: Markdown whose every number and verdict comes from the run's results.

Confidence intervals are the summary's (:func:`actlab.stats.mean_ci` over seeds); comparisons
between activations use the per-seed values of the metrics table and Welch's t-test
(:func:`actlab.stats.welch_differs`), and a difference it does not support is called a tie.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.experiments.base import Results
from actlab.report.format import ci, num, pct, ratio
from actlab.stats import welch_differs

__all__ = ["report", "final_values", "fit_verdict", "gradient_verdict"]

VANISH = 10.0
"""A layer-1 gradient more than this many times smaller than the layer-10 one is 'vanishing'."""


def final_values(results: Results, metric: str, activation: str, lr: float) -> np.ndarray:
    """Per-seed values of ``metric`` at the last epoch for ``activation`` at rate ``lr``."""
    m = results.metrics
    last = m[(m.metric == metric) & (m.step == results.summary["epochs"])]
    rows = last[(last.activation == activation) & np.isclose(last.lr, lr)].sort_values("seed")
    return rows.value.to_numpy()


def fit_verdict(train: dict[str, float], test: dict[str, float], floor: float) -> str:
    """What the final train and held-out MSE say against the noise floor ``floor``.

    Below the floor on the training set (upper CI bound < floor) is fitting the noise, and
    *overfitting* when the held-out MSE is at the same time above the floor (lower bound >
    floor); a train MSE more than twice the floor is underfitting; otherwise near the floor.
    """
    if not math.isfinite(train["mean"]):
        return "diverged"
    if math.isfinite(train["hi"]) and train["hi"] < floor:
        if math.isfinite(test["lo"]) and test["lo"] > floor:
            return "overfitting: below the floor on the training set, above it on held-out data"
        return "below the floor on the training set (fits part of the noise)"
    if train["mean"] > 2 * floor:
        return f"underfits: training MSE {num(train['mean'] / floor, 2)}× the floor"
    return "near the floor"


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
    those whose per-seed values are not significantly different from it (ties)."""
    values = {a: final_values(results, metric, a, lr) for a, lr in lrs.items()}
    means = {
        a: float(np.nanmean(v)) if np.isfinite(v).any() else math.inf for a, v in values.items()
    }
    best = min(means, key=means.get)
    ties = [a for a in values if a != best and not welch_differs(values[best], values[a])]
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
    s = _nan_for_none(results.summary)
    rows = {r["activation"]: r for r in s["table"]}
    names = list(s["activations"])
    floor, lr, depth = s["noise_floor"], s["lr"], s["depth"]
    out = ["# A deep MLP on a noisy sine", ""]
    out += [
        f"A multilayer perceptron with {depth} hidden layers of {s['width']} units learns "
        rf"$y = \sin x + \varepsilon$, $\varepsilon \sim \mathcal{{N}}(0, {num(s['noise'])}^2)$, "
        rf"from {s['n_train']} points on $[-\pi, \pi]$: one model per activation, "
        f"{s['seeds']} seeds each, Adam with full batches for {s['epochs']} epochs, PyTorch's "
        f"default initialisation ({s['init']}). Within a seed every activation starts from the "
        "same weights, so differences come from the activation alone. Two more noisy draws "
        "on the midpoints of the training grid serve as validation (to pick a learning rate) "
        "and as the held-out test set; a dense noiseless grid measures the error to the true "
        "function.",
        "",
        f"The noise sets a floor: no model can reach a held-out MSE below "
        rf"$\sigma^2 = {num(floor)}$ on average, and a *training* MSE below it means the model "
        "has started to memorise the noise of its own points.",
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
        f"Final values after {s['epochs']} epochs at the shared rate {num(lr)}, "
        f"mean [95% CI] over seeds; noise floor $\\sigma^2 = {num(floor)}$.",
        "",
        "| activation | training MSE | held-out MSE | error to the truth | verdict |",
        "|---|---|---|---|---|",
    ]
    for a in names:
        r = rows[a]
        verdict = fit_verdict(r["fixed_train"], r["fixed_test"], floor)
        if r["fixed_diverged"]:
            verdict += f" ({r['fixed_diverged']} of {s['seeds']} seeds diverged)"
        out.append(
            f"| {a} | {ci(r['fixed_train'])} | {ci(r['fixed_test'])} | "
            f"{ci(r['fixed_truth'])} | {verdict} |"
        )
    out.append("")
    best, ties = _ranking(results, "truth/mse", {a: lr for a in names})
    out += [_ranking_sentence("At the shared rate", best, ties, rows[best]["fixed_truth"])]
    overfit = [
        a
        for a in names
        if fit_verdict(rows[a]["fixed_train"], rows[a]["fixed_test"], floor).startswith(
            "overfitting"
        )
    ]
    under = [
        a
        for a in names
        if fit_verdict(rows[a]["fixed_train"], rows[a]["fixed_test"], floor).startswith("underfits")
    ]
    if overfit:
        out[-1] += (
            f" {_names(overfit)} {'goes' if len(overfit) == 1 else 'go'} below the floor on the "
            "training set while the held-out error stays above it: that is overfitting, not a "
            "better fit."
        )
    if under:
        out[-1] += (
            f" {_names(under)} {'has' if len(under) == 1 else 'have'} not come down to the "
            f"floor after {s['epochs']} epochs."
        )
    out += ["", "![Loss curves with the noise floor](figures/loss_curves.png)", ""]

    # ------------------------------------------------------------------ tuned rates
    out += _tuned_section(results, rows, names)

    # ------------------------------------------------------------------ gradients
    out += _gradient_section(rows, names, s)

    # ------------------------------------------------------------------ hidden units
    out += _hidden_section(rows, names, s)

    out += [
        "## Training, frame by frame",
        "",
        "![The fits and the last hidden layer during training](figures/training.gif)",
        "",
        f"*Top: seed 0's fit; bottom: a few units of hidden layer {depth} as functions of "
        f"$x$, every {s.get('frame_every', 10)} epochs.*",
        "",
        "## What this run does not show",
        "",
        f"One task, one width ({s['width']}), one initialisation ({s['init']}), "
        f"{len(s['learning_rates'])} learning rates and {s['seeds']} seeds. An activation that "
        "suffers here may do well with an initialisation matched to it (He for ReLU, "
        "Xavier for tanh), or with normalisation or residual connections, none of which "
        "this run varies.",
        "",
    ]
    return "\n".join(out).rstrip() + "\n"


def _ranking_sentence(prefix: str, best: str, ties: list[str], stat: dict) -> str:
    text = f"{prefix}, the lowest error to the true function is {best}'s ({ci(stat)})"
    if ties:
        return text + (
            f"; {_names(ties)} {'is' if len(ties) == 1 else 'are'} within noise of it "
            "(Welch's t-test, 5%), so this run does not separate them."
        )
    return text + ", significantly lower than every other activation (Welch's t-test, 5%)."


def _tuned_section(results: Results, rows: dict, names: list[str]) -> list[str]:
    s = results.summary
    out = ["## A fair comparison: each activation at its own learning rate", ""]
    grid = ", ".join(num(v) for v in s["learning_rates"])
    out += [
        f"One shared rate can favour some activations. Each activation was therefore also "
        f"trained at every rate of {{{grid}}}, and the rate with the lowest mean validation "
        "MSE (a draw separate from the test set) was kept. Held-out numbers below are on the "
        "test draw.",
        "",
        "| activation | tuned rate | training MSE | held-out MSE | error to the truth |",
        "|---|---|---|---|---|",
    ]
    for a in names:
        r = rows[a]
        out.append(
            f"| {a} | {num(r['best_lr'])} | {ci(r['tuned_train'])} | {ci(r['tuned_test'])} | "
            f"{ci(r['tuned_truth'])} |"
        )
    out.append("")
    best_fixed, _ = _ranking(results, "truth/mse", {a: s["lr"] for a in names})
    best, ties = _ranking(results, "truth/mse", {a: rows[a]["best_lr"] for a in names})
    out.append(_ranking_sentence("At the tuned rates", best, ties, rows[best]["tuned_truth"]))
    moved = [a for a in names if not math.isclose(rows[a]["best_lr"], s["lr"])]
    if moved:
        out[-1] += f" The tuned rate differs from the shared one for {_names(moved)}."
    else:
        out[-1] += f" Every activation's tuned rate is the shared one ({num(s['lr'])})."
    if best != best_fixed:
        out[-1] += (
            f" The leader changes from {best_fixed} (shared rate) to {best} (tuned rates): "
            "a ranking from one shared rate would have been misleading."
        )
    out.append("")
    return out


def _gradient_section(rows: dict, names: list[str], s: dict[str, Any]) -> list[str]:
    depth, epochs = s["depth"], s["grad_epochs"]
    out = ["## Gradient flow through depth", ""]
    out += [
        "![Mean gradient magnitude per layer](figures/gradient_flow.png)",
        "",
        rf"For each layer $l$ the mean $|\partial L/\partial W_l|$ over its weights (layers "
        f"numbered from the input: 1 is the first, {depth + 1} the output layer). The ratio "
        f"$r$ of layer 1's to layer {depth}'s is how much weaker the learning signal is at the "
        "input end; geometric mean over seeds [95% CI].",
        "",
        "| activation | "
        + " | ".join("first step" if e == 0 else f"epoch {e}" for e in epochs)
        + " |",
        "|---|" + "---|" * len(epochs),
    ]
    for a in names:
        cells = []
        for e in epochs:
            st = rows[a][f"log10_grad_ratio_{e}"]
            cells.append(f"{ratio(st['mean'])} [{ratio(st['lo'])}, {ratio(st['hi'])}]")
        out.append(f"| {a} | " + " | ".join(cells) + " |")
    out.append("")
    first = epochs[0]
    verdicts = {a: gradient_verdict(rows[a][f"log10_grad_ratio_{first}"]) for a in names}
    groups = {
        v: [a for a in names if verdicts[a] == v]
        for v in ("vanishes", "does not vanish", "undecided")
    }
    when = "At the first step" if first == 0 else f"At epoch {first}"
    parts = []
    if groups["vanishes"]:
        parts.append(
            f"the gradient reaching layer 1 is more than {num(VANISH)}× weaker than at layer "
            f"{depth} (the whole 95% interval below 1/{num(VANISH)}) for "
            f"{_names(groups['vanishes'])}"
        )
    if groups["does not vanish"]:
        parts.append(
            f"it is less than {num(VANISH)}× weaker "
            f"(the whole interval above 1/{num(VANISH)}) for {_names(groups['does not vanish'])}"
        )
    text = f"{when}, " + "; ".join(parts) + "." if parts else ""
    if groups["undecided"]:
        text += (
            f" For {_names(groups['undecided'])} the interval straddles 1/{num(VANISH)}: "
            "this run cannot say whether the gradient vanishes by that much."
        )
    out.append(text.strip())
    if len(epochs) > 1:
        changes = []
        for a in names:
            start = rows[a][f"log10_grad_ratio_{first}"]["mean"]
            steps = ", ".join(
                f"{ratio(rows[a][f'log10_grad_ratio_{e}']['mean'])} by epoch {e}"
                for e in epochs[1:]
            )
            changes.append(f"{a} {ratio(start)} → {steps}")
        out[-1] += " During training the ratio moves: " + "; ".join(changes) + "."
    out.append("")
    return out


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
    deep, shallow = str(layers[-1]), str(layers[0])
    spread = [
        f"{a} {num(rows[a]['spread_start'][shallow]['mean'])} → "
        f"{num(rows[a]['spread_start'][deep]['mean'])}"
        for a in names
    ]
    out += [
        "How much a unit's output varies across the inputs (standard deviation over $x$, "
        f"averaged over units and seeds), at initialisation, from layer {shallow} to layer "
        f"{deep}: {'; '.join(spread)}. Where it shrinks towards 0, every input looks the "
        "same to the deep layers: the forward signal has collapsed, which is the other face of "
        "the vanishing gradient.",
        "",
        "![Dead, saturated and dormant units per layer](figures/unit_health.png)",
        "",
    ]
    facts = []
    for a in names:
        r = rows[a]
        for key, word in (
            ("off_fraction", "dead or inactive"),
            ("saturated_fraction", "saturated"),
        ):
            start, end = r[f"{key}_start"], r[f"{key}_end"]
            if not math.isfinite(end["mean"]) or (end["mean"] == 0 and start["mean"] == 0):
                continue
            worst = r[f"{key}_end_worst_layer"]
            facts.append(
                f"{a}: {pct(start['mean'])} of units {word} at initialisation, "
                f"{pct(end['mean'])} after {last_epoch} epochs (mean over layers; worst "
                f"layer {worst['layer']} with {pct(worst['fraction'])})"
            )
    if facts:
        out += ["Measured by the probes: " + "; ".join(facts) + ".", ""]
    else:
        out += ["No activation had dead or saturated units in this run.", ""]
    return out
