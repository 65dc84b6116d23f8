"""The NumPy-from-scratch report: Markdown whose every number and verdict comes from the run's
results (summary and arrays); nothing is recomputed but formatting."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.experiments.base import Results
from actlab.experiments.numpy_basics.config import TINY_EPS
from actlab.experiments.numpy_basics.experiment import BIG_VARIANTS, GAP_VARIANTS
from actlab.experiments.numpy_basics.parts import vec
from actlab.report.format import ci, num

__all__ = ["report", "AFFINE_TOL"]

AFFINE_TOL = 1e-9
"""A stack whose best affine fit leaves a relative residual at most this is called affine."""

# --------------------------------------------------------------------------------------------
# Report: Markdown from the results alone


def _by_function(keys: list[str]) -> str:
    """``["sigmoid/float64", "sigmoid/float32"]`` -> ``sigmoid (float64, float32)``."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        fn, dtype = key.split("/")
        groups.setdefault(fn, []).append(dtype)
    return "; ".join(f"{_NAMES.get(fn, fn)} ({', '.join(d)})" for fn, d in groups.items())


def _tex(x: float) -> str:
    """A number inside ``$...$``: ``\\infty`` for infinity, else :func:`num` without its $."""
    if math.isinf(x):
        return r"\infty" if x > 0 else r"-\infty"
    return num(x).strip("$")


def _agree(diff: float) -> str:
    """``exactly`` for a zero difference, else ``to within DIFF``."""
    return "exactly" if diff == 0.0 else f"to within {num(diff, 2)}"


def _nums(values: Any, digits: int = 3) -> str:
    return "[" + ", ".join(num(v, digits) for v in values) + "]"


_NAMES = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "log_softmax": "log-softmax",
}
_WHO = {"numpy": "NumPy", "textbook": "textbook formula", "torch": "PyTorch", "scipy": "SciPy"}


def report(results: Results) -> str:
    """The lesson as Markdown; every number comes from ``results``."""
    from actlab.experiments.numpy_basics.solutions import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = results.summary
    out = ["# NumPy from scratch", ""]
    out += [
        "A unit of a neural network computes a weighted sum of its inputs plus a bias, the "
        "*pre-activation*, and passes it through an *activation function*, a fixed "
        "element-wise formula of a few characters such as $\\max(0, x)$. This first chapter "
        "types the common ones into NumPy, checks them against PyTorch and SciPy, and then uses "
        "the same from-scratch code to see five things that matter when you build networks: why "
        "a stack of linear layers needs an activation at all, why softmax subtracts the maximum, "
        "what the temperature of a softmax does (and how that is exploration in reinforcement "
        "learning), why a ReLU unit can die, and which activation belongs on which output of an "
        "RL network. In this chapter $x$ is the input of the function; in a network it is the "
        "pre-activation, which later chapters write $z$. Every number below was computed by this "
        "run.",
        "",
    ]
    out += _report_checks(s)
    out += _report_collapse(s)
    out += _report_softmax(s, results.arrays)
    out += _report_temperature(s)
    out += _report_dead(s)
    out += _report_heads(s)
    out += [exercises_markdown(EXERCISES), ""]
    return "\n".join(out).rstrip() + "\n"


def err_cell(err: float) -> str:
    """A table cell of the error in epsilons: ``< 0.01`` for a non-zero error below
    :data:`TINY_EPS` (a difference at a tiny value, explained under the table), else the
    number."""
    return f"< {TINY_EPS:g}" if 0.0 < err < TINY_EPS else num(err, 2)


def exact_count(checks: list[dict[str, Any]]) -> int:
    """Comparisons that agree exactly: no finite difference and no disagreeing inf/NaN."""
    return sum(c["max_err_eps"] == 0.0 and not c["nonfinite_mismatches"] for c in checks)


def tiny_sentence(s: dict[str, Any]) -> str:
    """What the table's ``< 0.01`` cells are: each one's difference relative to the value
    itself, in epsilons, and where; empty when the table has none."""
    tiny = [c for c in s["checks"] if 0.0 < c["max_err_eps"] < TINY_EPS]
    if not tiny:
        return ""
    parts = [
        f"{_NAMES[c['function']]}, {_WHO[c['implementation']]} vs {_WHO[c['reference']]} "
        f"({c['inputs']}, {c['dtype']}): {num(c['max_rel_diff'] / s['eps'][c['dtype']], 2)} "
        f"$\\varepsilon_{{\\mathrm{{mach}}}}$ of the value, at `{c['max_rel_at']}`"
        for c in tiny
    ]
    small = all(c["max_rel_diff"] <= 4 * s["eps"][c["dtype"]] for c in tiny)
    return (
        f"A cell *< {TINY_EPS:g}* is not the same number, but a difference far below one "
        "rounding step near 1: it sits at an output far below 1, where floats are much finer "
        "than $\\varepsilon_{\\mathrm{mach}}$, so the table's measure, absolute below 1, "
        "makes it look like nothing. Measured relative to the value itself instead, at the "
        "input where that is largest: "
        + "; ".join(parts)
        + (
            ". Up to a few $\\varepsilon_{\\mathrm{mach}}$ of the value is a rounding step or two "
            "of that value."
            if small
            else ". Up to a few $\\varepsilon_{\\mathrm{mach}}$ of the value is rounding; "
            "more is a real loss of precision (see the textbook formulas below)."
        )
    )


def _report_checks(s: dict[str, Any]) -> list[str]:
    cfg = s["config"]
    out = [
        "## The formulas, checked",
        "",
        r"$$\mathrm{ReLU}(x) = \max(0, x), \qquad \mathrm{LeakyReLU}(x) = "
        rf"\begin{{cases}} x & x > 0 \\ {cfg['leaky_slope']:g}\,x & x \le 0 \end{{cases}}$$",
        "",
        r"$$\sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \tanh(x) = \frac{e^x - e^{-x}}{e^x + e^{-x}},"
        r" \qquad \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}$$",
        "",
        "The NumPy versions in `actlab/numpy_ref.py` compute these formulas in a form that cannot "
        r"overflow (for example $\sigma(x) = e^{x} / (1 + e^{x})$ for $x < 0$, and softmax "
        "after subtracting the maximum). The *textbook* rows type the formulas in exactly as "
        "written above. The table gives the largest error against PyTorch and SciPy "
        "(`scipy.special.expit`, `softmax`, `log_softmax`) in *units of machine epsilon* "
        r"$\varepsilon_{\mathrm{mach}}$, the gap between 1 and the next larger number of the "
        "dtype (the size of one rounding step near 1): the difference from the reference "
        "value, divided by the larger of 1 and the reference value's size (relative above 1, "
        r"absolute below), divided by $\varepsilon_{\mathrm{mach}}$. So 1 means one rounding "
        "step, and 0 means the very same number. It is taken over the entries finite in both, on "
        f"{cfg['n_random']:,} random inputs $x \\sim \\mathcal{{N}}(0, {cfg['random_scale']:g}^2)$ "
        "(softmax: rows of 10) and on edge values: "
        + ", ".join(f"`{v}`" for v in s["edge_values"])
        + " (softmax: the rows "
        + ", ".join("`[" + ", ".join(r) + "]`" for r in s["softmax_edge_rows"])
        + "). Where infinities or NaNs disagree, the count of such entries is added.",
        "",
        "| function | implementation vs reference | random float64 | edge float64 "
        "| random float32 | edge float32 |",
        "|---|---|---|---|---|---|",
    ]
    cells: dict[tuple, dict[tuple, dict]] = {}
    for c in s["checks"]:
        row = (c["function"], c["implementation"], c["reference"])
        cells.setdefault(row, {})[(c["inputs"], c["dtype"])] = c
    for (fn, impl, refname), by in cells.items():
        texts = []
        for key in (
            ("random", "float64"),
            ("edge", "float64"),
            ("random", "float32"),
            ("edge", "float32"),
        ):
            c = by[key]
            t = err_cell(c["max_err_eps"])
            if c["nonfinite_mismatches"]:
                t += f" (+{c['nonfinite_mismatches']} non-finite)"
            texts.append(t)
        out.append(
            f"| {_NAMES[fn]} | {_WHO[impl]} vs {_WHO[refname]} | " + " | ".join(texts) + " |"
        )
    out.append("")
    tiny = tiny_sentence(s)
    if tiny:
        out += [tiny, ""]
    for dtype in ("float64", "float32"):
        ours = [c for c in s["checks"] if c["implementation"] == "numpy" and c["dtype"] == dtype]
        worst = max(ours, key=lambda c: c["max_err_eps"])
        exact = exact_count(ours)
        out.append(
            f"In {dtype} ($\\varepsilon_{{\\mathrm{{mach}}}} = "
            f"{num(s['eps'][dtype], 3).strip('$')}$) the largest error of the NumPy formulas "
            f"in the table is {num(worst['max_err_eps'], 2)} "
            r"$\varepsilon_{\mathrm{mach}}$ ("
            f"{_NAMES[worst['function']]} vs {_WHO[worst['reference']]}, {worst['inputs']} "
            f"inputs), and they agree exactly, infinities and NaNs included, in {exact} of "
            f"{len(ours)} comparisons"
            + (
                ": the same numbers up to a few units of rounding."
                if worst["max_err_eps"] <= 4
                else ": more than rounding separates them somewhere."
            )
            + (" The output keeps the input's dtype." if all(c["dtype_kept"] for c in ours) else "")
        )
        out.append("")
    bad = [c for c in s["checks"] if c["mismatch_at"]]
    ours_bad = [c for c in bad if c["implementation"] == "numpy"]
    text_bad = [c for c in bad if c["implementation"] == "textbook"]
    if not ours_bad:
        out.append(
            "On the edge values the NumPy formulas give the same infinities and NaNs as PyTorch "
            "and SciPy" + (", except:" if ours_bad else ".")
        )
    else:
        out.append("Where the NumPy formulas and a library disagree on a non-finite value:")
    out.append("")
    for c in ours_bad:
        for m in c["mismatch_at"]:
            out.append(
                f"- {_NAMES[c['function']]} ({c['dtype']}) of `{m['at']}`: NumPy `{m['ours']}`, "
                f"{_WHO[c['reference']]} `{m['reference']}`."
            )
    undefined = all(
        c["function"] in ("softmax", "log_softmax")
        and all("inf" in m["at"] for m in c["mismatch_at"])
        for c in ours_bad
    )
    if ours_bad and undefined:
        out += [
            "",
            "Each of these rows holds an infinite logit, where softmax is undefined "
            "($\\infty - \\infty$): the libraries make different choices there, and neither "
            "is wrong.",
        ]
    out.append("")
    if text_bad:
        out.append("**The textbook formulas break** where an exponential overflows:")
        out.append("")
        for c in text_bad:
            where = ", ".join(f"`{m['at']}` → `{m['ours']}`" for m in c["mismatch_at"])
            warn = s["textbook_warnings"].get(f"{c['function']}/{c['dtype']}", [])
            out.append(
                f"- {_NAMES[c['function']]} ({c['dtype']}): {where}"
                + (f" (NumPy warns: {'; '.join(warn)})." if warn else ".")
            )
        cancel = [
            c for c in s["checks"] if c["implementation"] == "textbook" and c["max_rel_diff"] > 1e-3
        ]
        for c in cancel:
            out.append(
                f"- {_NAMES[c['function']]} ({c['dtype']}, {c['inputs']} inputs) also loses "
                f"relative precision: at `{c['max_rel_at']}` it is off by "
                f"{num(100 * c['max_rel_diff'], 3)}% of the value itself (the difference of two "
                "nearly equal exponentials cancels). The table's error, absolute below 1, "
                "cannot show this: the value there is tiny, and so is the error."
            )
        broken = {f"{c['function']}/{c['dtype']}" for c in text_bad}
        quiet = [k for k, v in s["textbook_warnings"].items() if v and k not in broken]
        if quiet:
            out.append(
                "- " + _by_function(quiet) + ": the right answer, by luck "
                r"($1 / (1 + \infty) = 0$), but with a warning: "
                + "; ".join(sorted({w for k in quiet for w in s["textbook_warnings"][k]}))
                + "."
            )
        out.append("")
    out += [
        "![The four element-wise functions and their derivatives, NumPy (lines) and PyTorch "
        "(dots), and the largest difference per comparison](figures/formulas.png)",
        "",
    ]
    return out


def _report_collapse(s: dict[str, Any]) -> list[str]:
    c = s["collapse"]
    rows = {r["activation"]: r for r in c["rows"]}
    ident = rows["identity"]
    acts = [a for a in rows if a != "identity"]
    widths = " → ".join(str(w) for w in c["widths"])
    out = [
        "## Stacked linear layers collapse",
        "",
        "Without an activation, layer after layer of $h_l = W_l h_{l-1} + b_l$ is still one "
        "affine map:",
        "",
        r"$$W = W_{D+1} \cdots W_2 W_1, \qquad b = W_{D+1}(\cdots(W_2 b_1 + b_2)\cdots)"
        r" + b_{D+1},$$",
        "",
        "for a stack of $D$ hidden layers, that is $D + 1$ linear layers.",
        "",
        f"A random stack of widths {widths} ($D = {len(c['widths']) - 2}$ hidden layers, "
        f"{len(c['widths']) - 1} linear layers) and the single map "
        f"$(W, b)$ give outputs that differ by at most {num(ident['max_abs_diff_composed'], 2)} "
        "on random inputs"
        + (
            ": rounding, nothing else. Depth bought nothing"
            if ident["max_abs_diff_composed"] < 1e-9
            else ""
        )
        + f". The composed ${c['shape'][0]} \\times {c['shape'][1]}$ matrix $W$ has rank "
        f"{c['rank']} (its singular values: " + _nums(c["singular_values"], 2) + "; numerical "
        f"rank with the tolerance {num(c['rank_tolerance'], 2)}): a product of matrices has at "
        f"most the rank of its narrowest factor (layer ranks {c['layer_ranks']})"
        + (
            ", so this stack is *less* expressive than a single full-rank layer."
            if c["rank"] < min(c["shape"])
            else "."
        ),
        "",
        "Now the same weights with "
        + " or ".join(acts)
        + " after every hidden layer. Is the stack still *some* affine map? The best "
        "least-squares affine fit answers it: its residual (norm of the misfit over the "
        "outputs' spread; 0 means affine) is "
        + ", ".join(f"{num(rows[a]['affine_fit_residual'], 2)} with {a}" for a in acts)
        + (
            ": the collapse is gone, and depth can now build functions one layer cannot."
            if acts and all(rows[a]["affine_fit_residual"] > AFFINE_TOL for a in acts)
            else "."
        ),
        "",
        "| between the layers | max diff. from the composed $(W, b)$ | residual of the best "
        "affine fit | affine? |",
        "|---|---|---|---|",
    ]
    for name, r in rows.items():
        affine = r["affine_fit_residual"] <= AFFINE_TOL
        shown = "nothing (identity)" if name == "identity" else name
        out.append(
            f"| {shown} | {num(r['max_abs_diff_composed'], 2)} | "
            f"{num(r['affine_fit_residual'], 2)} | {'yes' if affine else 'no'} |"
        )
    out += [
        "",
        "![Left: each stack's output along a line through input space (solid) and the best "
        "affine fit (dashed). Right: singular values of the composed map]"
        "(figures/linear_collapse.png)",
        "",
    ]
    return out


def coarse_grid_note(
    wrong: float | None, nan: float | None, pred: dict[str, float], step: float
) -> str:
    """Why 'wrong' and 'NaN' start at the same shift: the grid's step is wider than the gap
    between the two predicted thresholds (empty when they start apart, or the grid resolves
    them)."""
    gap = pred["max"] - pred["sum"]
    if wrong is None or nan is None or wrong != nan or not step > gap:
        return ""
    return (
        f": the same grid point, since the step {num(step)} is wider than the "
        f"{num(gap, 2)} between the two thresholds"
    )


def _report_softmax(s: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[str]:
    sm = s["softmax"]
    big = arrays["softmax_big"]
    v = {k: big[i] for i, k in enumerate(BIG_VARIANTS)}
    logits = _nums(sm["big_logits"], 6)
    lim64, lim32 = sm["exp_limit"]["float64"], sm["exp_limit"]["float32"]
    out = [
        "## Softmax without overflow",
        "",
        f"Type the textbook formula in and feed it the logits {logits}: "
        f"$e^{{{num(max(sm['big_logits']), 6)}}}$ is "
        + ("`inf` in float64" if sm["exp_max_is_inf"] else "finite")
        + f", and the result is `{vec(v['naive'])}`"
        + (
            f" (NumPy warns: {'; '.join(sm['warnings']['naive'])})"
            if sm["warnings"]["naive"]
            else ""
        )
        + r". Every $e^{x}$ with $x > \ln(\text{largest float})$ overflows: "
        f"$x > {num(lim64, 6)}$ in float64, $x > {num(lim32, 5)}$ in float32.",
        "",
        "The fix changes nothing mathematically: softmax does not change when the same number "
        "is subtracted from every logit,",
        "",
        r"$$\mathrm{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},"
        r" \qquad m = \max_j x_j,$$",
        "",
        "so every exponent is $\\le 0$, the largest term is exactly 1 and nothing can overflow. "
        f"The stable softmax of {logits} is {_nums(sm['stable'], 4)}, "
        + (
            "exactly equal to"
            if sm["shift_invariance"] == 0.0
            else f"equal, to within {num(sm['shift_invariance'], 2)}, to"
        )
        + " the softmax of the shifted logits "
        f"{_nums([x - min(sm['big_logits']) for x in sm['big_logits']])}, and it matches SciPy "
        f"{_agree(sm['vs_scipy'])} and PyTorch {_agree(sm['vs_torch'])}.",
        "",
    ]
    wrong, nan, pred = sm["first_wrong_offset"], sm["first_nan_offset"], sm["predicted_offset"]

    def when(d: dict[str, float | None], dtype: str) -> str:
        return f"a shift of {num(d[dtype], 5)}" if d[dtype] is not None else "no shift on the grid"

    out += [
        "![Left: the largest probability of the softmax of [0, 1, 2] plus a shift, as the shift "
        "grows; the naive formula goes wrong past the overflow point. Right: log of the smaller "
        "probability of the logits [0, −Δ]: log(softmax) is −∞ once the probability "
        "underflows, log-softmax stays exact](figures/softmax_overflow.png)",
        "",
        "Adding the same shift to every logit (left panel: "
        f"{_nums([x - min(sm['big_logits']) for x in sm['big_logits']])} plus a "
        f"shift, in steps of {num(sm['offset_step'])}), the naive "
        f"formula first goes wrong at {when(wrong, 'float64')} in float64 and returns NaN from "
        f"{when(nan, 'float64')}. "
        + (
            "In between it returns zeros without a NaN in sight. "
            if wrong["float64"] is not None
            and nan["float64"] is not None
            and wrong["float64"] < nan["float64"]
            else ""
        )
        + "The sum $\\sum_j e^{x_j}$ overflows before any single term does, and a finite "
        "number divided by `inf` is a silent 0. The thresholds predict it: with $x$ the "
        "unshifted logits, the sum overflows once the shift exceeds "
        r"$\ln(\text{largest float}) - \ln \sum_j e^{x_j} = "
        f"{num(pred['float64']['sum'], 5)}$, the largest term once it exceeds "
        f"${num(pred['float64']['max'], 5)}$. In float32: wrong from "
        f"{when(wrong, 'float32')}, NaN from {when(nan, 'float32')} (predicted "
        f"${num(pred['float32']['sum'], 4)}$ and ${num(pred['float32']['max'], 4)}$)"
        + coarse_grid_note(wrong["float32"], nan["float32"], pred["float32"], sm["offset_step"])
        + ". The stable formula gives the same probabilities at every shift.",
        "",
    ]
    gap = arrays["softmax_gap"]
    g = {k: gap[i] for i, k in enumerate(GAP_VARIANTS)}
    gl = _nums(sm["gap_logits"], 6)
    small = int(np.argmin(sm["gap_logits"]))
    spread = min(sm["gap_logits"]) - max(sm["gap_logits"])
    out += [
        "**Log-softmax.** The opposite problem sits at the other end: for logits "
        f"{gl} the smaller probability $e^{{{num(spread, 6)}}}$ "
        f"underflows, softmax is {_nums(sm['gap_softmax'])}, and $\\log(\\mathrm{{softmax}})$ "
        f"is `{vec(g['log_of_softmax'])}`"
        + (f" (NumPy: {'; '.join(sm['warnings']['gap'])})" if sm["warnings"]["gap"] else "")
        + ". Computed directly,",
        "",
        r"$$\log \mathrm{softmax}(x)_i = x_i - m - \log \sum_j e^{x_j - m},$$",
        "",
        f"it is {_nums(sm['gap_log_softmax'], 6)} (PyTorch's `log_softmax` agrees "
        f"{_agree(sm['gap_vs_torch'])}). A cross-entropy loss computed from probabilities "
        f"would be $-\\log p = {_tex(-float(g['log_of_softmax'][small]))}$ for the unlikely "
        f"class; from log-softmax it is {num(-sm['gap_log_softmax'][small], 6)}, a finite loss "
        "with a finite gradient. This is why PyTorch's `cross_entropy` takes logits, not "
        "probabilities. On the lesson's logits, log-softmax is "
        f"{_nums(sm['log_stable'], 4)} (SciPy agrees {_agree(sm['log_vs_scipy'])}) where "
        f"$\\log$ of the naive softmax is `{vec(v['log_naive'])}`. In the right panel, "
        f"$\\log(\\mathrm{{softmax}})$ of the logits $[0, -\\Delta]$, a gap $\\Delta$ "
        "apart, is $-\\infty$ from "
        f"$\\Delta = {num(sm['first_inf_gap']['float64'], 5)}$ in float64 (predicted: once "
        f"$\\Delta > {num(sm['predicted_inf_gap']['float64'], 5)}$, $e^{{-\\Delta}}$ is below "
        "half the smallest [subnormal number](#term-subnormal) and rounds to 0; subnormal "
        "numbers reach below the smallest normal float, "
        f"{num(float(np.finfo(np.float64).tiny), 2)} in float64, down to "
        f"{num(float(np.finfo(np.float64).smallest_subnormal), 2)}) and from "
        f"$\\Delta = {num(sm['first_inf_gap']['float32'], 5)}$ in float32 (predicted "
        f"${num(sm['predicted_inf_gap']['float32'], 5)}$); log-softmax is exact throughout.",
        "",
    ]
    return out


def _report_temperature(s: dict[str, Any]) -> list[str]:
    t, cfg = s["temperature"], s["config"]
    out = [
        "## Temperature: how peaked a softmax is",
        "",
        r"A temperature $T > 0$ divides the logits: $p = \mathrm{softmax}(x / T)$. The same "
        "happens when the logits themselves grow or shrink, which is what the lesson's three "
        "vectors do (at $T = 1$):",
        "",
        "| logits | probabilities | largest | entropy (nats) |",
        "|---|---|---|---|",
    ]
    for vec_, p, h in zip(t["vectors"], t["probs"], t["entropy_at_1"], strict=True):
        out.append(f"| {vec_} | {_nums(p)} | {num(max(p))} | {num(h)} |")
    k = len(t["probs"][0])
    sharp = int(np.argmin(t["entropy_at_1"]))
    flat = int(np.argmax(t["entropy_at_1"]))
    out += [
        "",
        r"The entropy $\mathcal{H}(p) = -\sum_i p_i \ln p_i$ measures the spread: $\ln "
        f"{k} = {num(np.log(k))}$ for a uniform distribution over {k} entries, 0 for a one-hot "
        f"one. {t['vectors'][sharp]} is nearly one-hot (entropy {num(t['entropy_at_1'][sharp])}), "
        f"{t['vectors'][flat]} nearly uniform ({num(t['entropy_at_1'][flat])}). Multiplying the "
        r"logits by $\beta$ is the same as the temperature $T = 1/\beta$ ($\beta$ is called the "
        "*inverse temperature*): the largest difference between "
        r"$\mathrm{softmax}(\beta x)$ and $\mathrm{softmax}(x / (1/\beta))$ over the scales "
        f"{', '.join(f'{v:g}' for v in t['scales'])} is {num(t['scale_is_temperature'], 2)}.",
        "",
        "Sweeping the temperature of one logit vector, "
        f"$Q = {_nums(cfg['sweep_logits'])}$, from $T = {num(cfg['t_min'])}$ to "
        f"$T = {num(cfg['t_max'])}$: the probabilities go from {_nums(t['sweep_first'], 2)} "
        f"(entropy {num(t['entropy_first'], 2)}) to {_nums(t['sweep_last'], 3)} (entropy "
        f"{num(t['entropy_last'], 4)}, against $\\ln {len(cfg['sweep_logits'])} = "
        f"{num(t['log_k'], 4)}$). Low temperature: always the top entry. High temperature: "
        "uniform.",
        "",
        "![Left: the three vectors' softmax. Middle: probability of each entry of Q against "
        "the temperature. Right: entropy against temperature](figures/temperature.png)",
        "",
        "**Boltzmann exploration.** A value-based agent (one that learns action values "
        "$Q(a)$, the expected return of taking action $a$ in the current state) can explore by "
        "using its action values as logits: it picks action $a$ with probability "
        r"$p(a) = e^{Q(a)/T} / \sum_{a'} e^{Q(a')/T}$, and the temperature sets how much it "
        "explores. The common alternative, *ε-greedy* with exploration rate "
        rf"$\varepsilon_{{\mathrm{{greedy}}}} = {cfg['epsilon']:g}$ (a random action with "
        r"probability $\varepsilon_{\mathrm{greedy}}$, else the best one), takes the best action "
        r"with probability $1 - \varepsilon_{\mathrm{greedy}} + \varepsilon_{\mathrm{greedy}} / "
        f"{len(cfg['sweep_logits'])} = "
        f"{num(max(t['eps_greedy']), 4)}$. Boltzmann exploration takes it as often at "
        f"$T = {num(t['t_star'], 4)}$ (root of a monotone equation, found numerically), but "
        "spreads the rest differently:",
        "",
        "| action | $Q$ | Boltzmann, $T = " + num(t["t_star"], 3) + "$ | "
        rf"ε-greedy, $\varepsilon_{{\mathrm{{greedy}}}} = {cfg['epsilon']:g}$ |",
        "|---|---|---|---|",
    ]
    for a, (q, pb, pe) in enumerate(
        zip(cfg["sweep_logits"], t["boltzmann"], t["eps_greedy"], strict=True)
    ):
        out.append(f"| {a} | {num(q)} | {num(pb)} | {num(pe)} |")
    order = np.argsort(cfg["sweep_logits"])[::-1]
    second, last = int(order[1]), int(order[-1])
    out += [
        "",
        f"Boltzmann gives the second-best action {num(t['boltzmann'][second])} and the worst "
        f"{num(t['boltzmann'][last])}; ε-greedy gives each "
        f"{num(t['eps_greedy'][last])}: it explores a bad action as often as a nearly-as-good "
        "one, Boltzmann explores in proportion to how promising an action looks (entropies "
        f"{num(t['boltzmann_entropy'])} and {num(t['eps_entropy'])}). Annealing $T$ towards 0 "
        "during training turns exploration into exploitation.",
        "",
    ]
    return out


def _report_dead(s: dict[str, Any]) -> list[str]:
    d, cfg = s["dead"], s["config"]
    slope = cfg["leaky_slope"]

    def rows(tab: dict[str, list[float]]) -> list[str]:
        lines = [
            "| $x$ | ReLU | ReLU' (formula) | ReLU' (autograd) | LeakyReLU | LeakyReLU' "
            "(formula) | LeakyReLU' (autograd) |",
            "|---|---|---|---|---|---|---|",
        ]
        keys = (
            "relu",
            "relu_grad",
            "relu_grad_autograd",
            "leaky",
            "leaky_grad",
            "leaky_grad_autograd",
        )
        for i, x in enumerate(tab["x"]):
            lines.append(f"| {num(x)} | " + " | ".join(num(tab[k][i]) for k in keys) + " |")
        return lines

    dead = d["dead"]
    all_zero = not any(dead["relu"]) and not any(dead["relu_grad"])
    agree = all(
        tab[a] == tab[b]
        for tab in (dead, d["compare"])
        for a, b in (("relu_grad", "relu_grad_autograd"), ("leaky_grad", "leaky_grad_autograd"))
    )
    out = [
        "## Dead ReLU",
        "",
        r"ReLU's derivative is $1$ for $x > 0$ and $0$ for $x \le 0$ (at the kink PyTorch "
        "uses 0). On the inputs " + _nums(dead["x"]) + ":",
        "",
        *rows(dead),
        "",
        (
            "Output **and** gradient are zero on every input. "
            if all_zero
            else "Not all outputs and gradients are zero here. "
        )
        + "In the tutorial's terms, a ReLU unit is [off](#term-off) on an input where its "
        "output is exactly 0. A unit "
        "whose pre-activation is negative on every input it is probed with is "
        "[inactive](#term-inactive); a ReLU unit that is inactive is off on all of them, "
        "[dead](#term-dead), and receives no gradient from any of them, so gradient descent on "
        "these inputs never changes its weights and it stays dead. "
        f"LeakyReLU keeps a slope of {slope:g} on the negative side, a small but non-zero "
        "gradient. "
        + (
            "The formula's derivatives equal autograd's on every input."
            if agree
            else "The formula's derivatives and autograd's differ somewhere (see the table)."
        ),
        "",
        "ReLU and LeakyReLU side by side:",
        "",
        *rows(d["compare"]),
        "",
    ]
    relu_loss, leaky_loss = d["initial_loss"], d["final_loss"]
    stuck = not d["relu_moved"] and d["max_grad"][0] == 0.0
    out += [
        f"**Gradient descent on a dead unit.** One unit $h = \\varphi(w x + b)$ starts at "
        f"$w = 1, b = 0$ on the inputs {_nums(dead['x'])} (all negative, so the ReLU unit is "
        f"off on every one of them: dead) with the targets $y = -x$, which $w = -1$ fits "
        "exactly; "
        f"{cfg['dead_steps']} steps of gradient descent on the MSE with learning rate "
        f"{cfg['dead_lr']:g}. "
        + (
            f"ReLU: the gradient is exactly 0 at every step, $w$ and $b$ never move, and the "
            f"loss stays at {num(relu_loss[0])}. "
            if stuck
            else f"ReLU: the largest gradient norm was {num(d['max_grad'][0])}, the final loss "
            f"{num(leaky_loss[0])}. "
        )
        + (
            f"LeakyReLU: the small gradient turns $w$ negative; from step "
            f"{d['leaky_alive_step']} the unit is on for some inputs, and it ends at "
            f"$w = {num(d['final_w'][1], 4)}$, $b = {num(d['final_b'][1], 2)}$ with loss "
            f"{num(leaky_loss[1], 2)}."
            if d["leaky_alive_step"] is not None
            else f"LeakyReLU did not come back within {cfg['dead_steps']} steps (final loss "
            f"{num(leaky_loss[1])})."
        ),
        "",
        "![Left: ReLU and LeakyReLU with their derivatives; the lesson's inputs marked. Right: "
        "gradient descent on the dead unit](figures/dead_relu.png)",
        "",
    ]
    return out


FIT_TOL = 0.01
"""A bounded head *fits* a target inside its range when its prediction (mean over seeds) is
within this of the target (the Q-values are of order 1 to 10)."""


def inside_sentence(f: dict[str, Any], gap: float, link: bool = True) -> str:
    """What a bounded head did with the targets strictly inside its range, from the fit's
    summary (``inside``, ``n_targets`` and the worst inside target's numbers): it fits them,
    or misses them (with the head's slope there and the share of the gap above the floor that
    the miss makes), or there are none. ``gap``: the mean final MSE minus the floor; ``link``:
    link the glossary's *saturated* (its first use in the chapter)."""
    k, n = f.get("inside"), f.get("n_targets")
    edge = "where no amount of training can take it"
    if k is None:  # a summary saved before these numbers existed
        return f"the targets outside its range are out of its reach, {edge}."
    if k == 0:
        return f"none of the {n} targets lies inside its range; it stays at the edge, {edge}."
    lie = "lies" if k == 1 else "lie"
    if f["inside_miss"] <= FIT_TOL:
        return (
            f"it fits the {k} of the {n} targets that {lie} inside its range (largest miss "
            f"{num(f['inside_miss'], 2)}) and stays at the edge for the rest, {edge}."
        )
    which = "that one" if k == 1 else "the one it misses most"
    line = (
        f"only {k} of the {n} targets {lie} inside its range, and it does not fit "
        f"{'it' if k == 1 else 'them'}: for {which}, *{f['inside_action']}* in state "
        f"{f['inside_state']} (target {num(f['inside_target'])}), it outputs "
        f"{num(f['inside_pred'], 5)} (mean over seeds)"
    )
    if "inside_slope" in f:
        line += f", where its slope is only {num(f['inside_slope'], 2)}"
        if f.get("inside_saturated"):
            word = "[saturated](#term-saturated)" if link else "saturated"
            line += f": the output is {word}"
        line += ", and almost no gradient reaches the weights that would pull it back"
    if gap > 0:
        line += (
            f". The targets inside the range make {num(f['inside_excess'], 2)} of the "
            f"{num(gap, 2)} by which the mean sits above the floor"
        )
    return line + f"; for every other target it stays at the edge, {edge}."


def _report_heads(s: dict[str, Any]) -> list[str]:
    h, cfg = s["heads"], s["config"]
    fits = h["fits"]
    linear = fits[0]
    acts = h["actions"]
    out = [
        "## Which activation where in RL networks",
        "",
        "Hidden layers need a non-linearity (the collapse above); what goes on the *output* "
        "depends on what the output means. The usual choices in a reinforcement-learning "
        "network:",
        "",
        "- **Q-values** (a DQN's output: the expected return of each action) and **state "
        "values** (a critic's output): real numbers of either sign, so the usual head is "
        "linear, which can produce any of them. It is not the only design that works (see the "
        "optional part below); what fails is a bounded output on the raw targets.",
        "- **A policy over discrete actions**: probabilities, $\\ge 0$ and summing to 1, so "
        "softmax. A policy network's logits are *not* Q-values: they are free numbers trained "
        "to make good actions likely, and they need not estimate any return.",
        "- **A bounded output** (tanh, sigmoid) only for a quantity that really is bounded, "
        "such as a continuous action in $[-1, 1]$, or for targets transformed into its range "
        "first.",
        "",
    ]
    bounded = [f for f in fits[1:] if f["bounded"]]
    out += [
        "**A bounded output cannot hold the raw Q-values.** A small chain task makes it "
        f"concrete: in state $k = 1, \\dots, {cfg['n_states']}$ there are $k$ rewards of 1 "
        f"left; the agent may *continue* (reward 1, to $k - 1$), *wait* (reward 0) or *stop* "
        f"(reward {num(cfg['stop_reward'])}, episode over), with discount "
        f"$\\gamma = {cfg['gamma']:g}$. Its exact Q-values (computed from the Bellman "
        f"equation, see the optional part) range from {num(h['q_min'])} to "
        f"{num(h['q_max'])}. The same network (input: the state; {cfg['hidden']} "
        f"{cfg['torso']} units; 3 outputs, one Q-value per action) is "
        f"fitted to them with Adam (learning rate {cfg['fit_lr']:g}, {cfg['fit_steps']} "
        f"full-batch steps, {cfg['seeds']} [seeds](#term-seed), each seed giving every head the "
        "same initial weights), once with a linear output and once per bounded output "
        "activation. The error on the training targets is the point here: the question is what "
        "a head can represent at all, not how it generalises. A head whose outputs lie in an "
        "interval cannot have an MSE below its *floor*, the mean squared distance of the "
        "targets to that interval, computed exactly from the targets. The table gives the mean "
        "over seeds with its [95% interval](#term-t-interval); each bounded head is compared "
        "with the linear head by a [paired test](#term-paired) over the seeds (a seed starts "
        "every head from the same weights).",
        "",
        "| output | range | final MSE, mean [95% interval] | floor | largest output |",
        "|---|---|---|---|---|",
    ]
    for f in fits:
        lo, hi = f["range"]
        rng = "unbounded" if not f["bounded"] else f"[{num(lo)}, {num(hi)}]"
        shown = "linear" if f["head"] == "identity" else f["head"]
        out.append(
            f"| {shown} | {rng} | {ci(f['final_mse'])} | {num(f['floor'])} | "
            f"{num(f['max_output'], 4)} |"
        )
    out.append("")
    first_saturated = next((f for f in bounded if f.get("inside_saturated")), None)
    for f in bounded:
        verdict = (
            f"higher than the linear head's ({ci(linear['final_mse'])}; paired test, p < 0.05)"
            if f["differs_from_linear"] and f["final_mse"]["mean"] > linear["final_mse"]["mean"]
            else "not distinguishable from the linear head's (within noise, Welch's test)"
        )
        gap = f["final_mse"]["mean"] - f["floor"]
        out.append(
            f"The {f['head']} head's final MSE, {ci(f['final_mse'])}, is {verdict}; its mean "
            f"sits {num(gap, 2)} above its floor"
            + (" (and no seed ends below the floor)" if f["above_floor"] else "")
            + f", and its largest output is {num(f['max_output'], 8)} against the largest "
            f"target {num(h['q_max'])}: " + inside_sentence(f, gap, link=f is first_saturated)
        )
        out.append("")
    out += [
        "![Exact Q-values (black markers) and each head's fit (coloured, mean over seeds; "
        "fits are drawn slightly left and right of each state so that coinciding ones stay "
        "visible); the shaded band is the head's range. Right: final MSE per head with its "
        "95% interval, and the floor](figures/rl_heads.png)",
        "",
        '<details markdown="1">',
        "<summary>Optional, for readers who know some RL: the chain task's values and "
        "policy, and other designs of a Q head</summary>",
        "",
        "The exact action values follow from the Bellman equation "
        r"$Q(k, \text{continue}) = 1 + \gamma V(k - 1)$, "
        r"$Q(k, \text{wait}) = \gamma V(k)$, $V(k) = \max_a Q(k, a)$. The table adds the "
        "Boltzmann policy of the temperature section built on these exact Q-values, for "
        "illustration, and its value $V^p$, the expected return of following it (solved "
        r"exactly from $V^p(k) = \sum_a p(a \mid k)\,[r(a) + \gamma V^p(k')]$, with $k'$ the "
        "next state); $V^*(k) = \\max_a Q(k, a)$ is the greedy policy's value.",
        "",
        f"| state $k$ | $Q(k, \\cdot)$: {', '.join(acts)} | policy "
        rf"$\mathrm{{softmax}}(Q / {cfg['policy_temperature']:g})$ | "
        r"$V^p(k)$ | $V^*(k)$ |",
        "|---|---|---|---|---|",
    ]
    for i, k in enumerate(h["demo_states"]):
        out.append(
            f"| {k} | {_nums(h['q'][i])} | {_nums(h['policy'][i])} | {num(h['v_pi'][i])} | "
            f"{num(h['v_star'][i])} |"
        )
    out += [
        "",
        "- The policy rows are valid distributions whatever the logits (here: smallest "
        f"probability {num(h['policy_min'])}, largest deviation of a row sum from 1: "
        f"{num(h['policy_sum_error'], 2)}); adding a constant to all logits changes nothing, "
        "which is one reason a policy's logits are not Q-values.",
        f"- $V^p$ ranges over [{num(h['v_pi_range'][0])}, {num(h['v_pi_range'][1])}]: a value, "
        "not a probability, and a critic head for it is linear for the same reason as a Q head.",
        "- Other Q heads: a *distributional* head (C51) puts a softmax over a fixed grid of "
        "returns and reads the Q-value off as the mean; a bounded head can work when the "
        "targets are first transformed into its range (scaled, or squashed by an invertible "
        "transform, then mapped back).",
        "",
        "</details>",
        "",
    ]
    return out
