"""The activation-swap report: Markdown whose every number and verdict comes from the run's
summary (:func:`actlab.experiments.activation_swap.run`).

Intervals are the summary's (:func:`actlab.stats.mean_ci` over seeds); comparisons are the
summary's paired tests by seed (:func:`actlab.stats.paired_differs`: every arm is trained from
the same seeds), and a difference they do not support is called "within noise". The summary may
come from a saved run (NaN read back as None).
"""

from __future__ import annotations

import math

from actlab.experiments.activation_swap.exercises import EXERCISES
from actlab.experiments.base import Results
from actlab.report.exercises import exercises_markdown
from actlab.report.format import ci, num, pct, ratio
from actlab.stats import proportion_ci

__all__ = ["report", "build_report", "verdict", "convergence_verdict"]


def _pct(d: dict) -> str:
    """A fraction's mean and CI as percentages, ``mean [lo, hi]`` like :func:`ci`."""
    if d["lo"] is None or not math.isfinite(d["lo"]):
        return pct(d["mean"])
    return f"{pct(d['mean'])} [{pct(d['lo'])}, {pct(d['hi'])}]"


def share(k: int, n: int) -> str:
    """A count of independent trials (seeds) as ``k of n (p [lo, hi])``, with the Wilson
    interval of :func:`actlab.stats.proportion_ci`."""
    p = proportion_ci(k, n)
    return f"{k} of {n} ({pct(p['mean'])} [{pct(p['lo'])}, {pct(p['hi'])}])"


def unit_word(s: dict) -> str:
    """The glossary's word for a unit of the ``after`` activation that a swap turns off on
    every input: *dead* (output exactly 0, ReLU) or *inactive* (pre-activation negative,
    e.g. leaky ReLU, which still outputs something there)."""
    return "dead" if s["off_kind"] == "dead" else "inactive"


def _epochs(n: int) -> str:
    return "epoch" if n == 1 else f"{n} epochs"


def overlap(x: dict, y: dict) -> bool:
    """Whether two :func:`actlab.stats.mean_ci` intervals overlap (False if either is
    undefined)."""
    lo_x, hi_x, lo_y, hi_y = (d.get(k) for d in (x, y) for k in ("lo", "hi"))
    if any(v is None or not math.isfinite(v) for v in (lo_x, hi_x, lo_y, hi_y)):
        return False
    return lo_x <= hi_y and lo_y <= hi_x


OVERLAP_NOTE = "significant by the paired test, though the two 95% intervals overlap"
OVERLAP_WHY = (
    "Two 95% intervals may overlap while the paired test separates the arms: each arm's "
    "interval holds the spread from seed to seed, which cancels in the per-seed differences "
    "the test reads."
)


def _significant(x: dict | None, y: dict | None) -> str:
    """ "significant", with the overlap note where the two arms' intervals overlap."""
    return OVERLAP_NOTE if x is not None and y is not None and overlap(x, y) else "significant"


def verdict(c: dict, labels: dict[str, str], final: dict | None = None) -> str:
    """One comparison of final held-out MSE in words; with ``final`` (the summary's per-arm
    ``final`` dict) the two means are named and overlapping intervals of a significant
    difference are pointed out."""
    a, b = labels[c["a"]], labels[c["b"]]
    x = final[c["a"]]["test"] if final else None
    y = final[c["b"]]["test"] if final else None
    if not c["differs"]:
        if x is not None:
            return f"*{a}* vs *{b}*: within noise ({num(x['mean'])} against {num(y['mean'])})"
        return f"*{a}* vs *{b}*: within noise (difference {num(c['diff'], 2)})"
    low, high = (a, b) if c["lower"] == 0 else (b, a)
    return f"*{low}* lower than *{high}* by {num(abs(c['diff']), 2)} ({_significant(x, y)})"


NOT_SETTLED = "not settled by the seeds"


def convergence_verdict(change: dict, threshold: float) -> str:
    """An arm's end of training in words, from the relative change of its held-out MSE over
    the last epochs (``change``: a :func:`actlab.stats.mean_ci` dict over seeds): "still
    improving" when the mean fell by more than ``threshold`` and the whole interval lies below
    0, "rising" the other way round, "flat at the end" when the whole interval lies within
    ``threshold`` of 0, and :data:`NOT_SETTLED` otherwise (the interval holds both a flat end
    and a larger change)."""
    mean, lo, hi = (change.get(k) for k in ("mean", "lo", "hi"))
    if mean is None or not math.isfinite(mean):
        return "unknown (no finite change)"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return NOT_SETTLED
    if mean < -threshold and hi < 0:
        return "still improving"
    if mean > threshold and lo > 0:
        return "rising"
    if -threshold <= lo and hi <= threshold:
        return "flat at the end"
    return NOT_SETTLED


def _find(s: dict, a: str, b: str) -> dict:
    return next(c for c in s["comparisons"] if c["a"] == a and c["b"] == b)


def _standing(c: dict, other: str) -> str:
    """Where the first arm of comparison ``c`` ended relative to ``other``."""
    if not c["differs"]:
        return f"within noise of {other}"
    return f"{'better' if c['lower'] == 0 else 'worse'} than {other}"


def report(results: Results) -> str:
    """The Markdown section, from ``results.summary`` alone."""
    return build_report(results.summary)


def build_report(s: dict) -> str:
    """The Markdown section from the experiment's summary (a saved run's too)."""
    L, S = s["labels"], s["seeds"]
    b, a, k = s["before"], s["after"], s["swap_epoch"]
    jt, jr = s["jump"]["test"], s["jump"]["train"]
    n2 = _epochs(s["epochs"] - k)
    out = [
        "# Swapping activations mid-training",
        "",
        f"What happens if a network that has learned with {b} for a while suddenly computes with "
        f"{a}, its weights untouched? Here a {s['depth']}-hidden-layer MLP ({s['width']} units "
        f"per layer) fits a noisy 1-D function, $y = \\sin 3x + x/2 + \\xi$ with Gaussian "
        f"noise $\\xi$ of sd $s = {num(math.sqrt(s['noise_floor']))}$, on "
        f"$[-2, 2]$ ({s['n_train']} training and {s['n_test']} [held-out](#term-held-out) "
        f"points; the [noise floor](#term-noise-floor) $s^2 = {num(s['noise_floor'])}$ is the "
        "expected held-out MSE of the true function itself, and on this finite draw of "
        f"held-out points it scores {num(s['noise_floor_draw'])}), with Adam "
        f"(learning rate {num(s['lr'])}, minibatches of {s['batch_size']}, "
        f"{s['steps_per_epoch']} updates per epoch) for {s['epochs']} epochs. Five arms:",
        "",
        f"* **{L['before']}** and **{L['after']}**: no swap, {s['epochs']} epochs;",
        f"* **{L['swap_kept']}**: {b} for {k} epochs, then {a} for {n2}; Adam's moments and "
        "step count carry on;",
        f"* **{L['swap_reset']}**: the same swap, then Adam starts afresh (moments zero, step "
        "count 0; the tests check this on the optimiser's state);",
        f"* **{L['fresh_after']}**: the control for training time. The swapped networks get "
        f"{n2} of {a} training, {L['after']} gets {s['epochs']}; so a swapped network "
        f"that ends behind {L['after']} may only have had less time. This arm is a new {a} "
        f"network, from the same initial weights as the others, trained only for the last "
        f"{n2} (epochs {k} to {s['epochs']}, on the same minibatches those epochs draw, "
        f"with a fresh Adam). It has the swapped arms' {a} training time; what they have in "
        f"addition is the warm start: the weights the {b} network learned in {k} epochs.",
        "",
        f"Each arm is trained with {S} [seeds](#term-seed), and a seed gives every arm the "
        "same initial weights (PyTorch's [default initialisation](#term-default-init) of "
        "`nn.Linear`) and the same minibatches, so that a "
        "difference between arms comes from the activations, the swap and the training time "
        "alone. A number with an interval reads *mean [95% interval]* over seeds (a "
        "[Student-t interval](#term-t-interval)); two arms are said to differ only when "
        "the [paired test](#term-paired) says so at the 5% level: every comparison here is "
        "between arms (or moments) of the same seeds, so it tests the per-seed differences, "
        "in which what a seed gives both arms cancels. A count of seeds comes with "
        "its [Wilson interval](#term-wilson-interval).",
        "",
        "![Training and held-out loss of the five arms, and a zoom on the swap]"
        "(figures/loss_curves.png)",
        "",
        "## The jump",
        "",
        f"At the swap the weights are the same, but the function is not: the held-out MSE goes "
        f"from {ci(jt['pre'])} right before the swap to {ci(jt['post'])} right after it, "
        f"{ratio(jt['log10_ratio']['mean'])} times higher (the "
        "[geometric mean](#term-geometric-mean) over seeds of each seed's ratio after/before; "
        "95% interval "
        f"{ratio(jt['log10_ratio']['lo'])} to {ratio(jt['log10_ratio']['hi'])}; "
        + ("a significant jump)" if jt["differs"] else "within noise)")
        + f"; the training MSE from {ci(jr['pre'])} to {ci(jr['post'])}. "
        "Both swap arms share this jump (same weights, same activation). "
        + _start_sentence(s)
        + " "
        + (
            "Tanh and ReLU nearly agree only for small positive pre-activations: a negative "
            "one, which gave a negative output, now gives 0, and a large positive one is no "
            "longer squashed below 1, so every layer above receives inputs of another size "
            "and sign than it was trained on."
            if (b, a) == ("tanh", "relu")
            else f"{b} and {a} differ on the pre-activations the network had grown, so every "
            "layer above receives inputs unlike those it was trained on."
        )
        + _saturation_sentence(s),
        "",
    ]
    out += _recovery(s)
    out += _final(s)
    out += _convergence_section(s)
    out += _units_section(s)
    out += _adam_section(s)
    out += [
        "## How it was measured",
        "",
        f"Both losses are the mean squared error on the whole training and held-out sets, "
        f"measured every {s['eval_every']} updates, at every epoch's end"
        + (
            f", and after every update during the {_epochs(s['dense_epochs'])} after the swap"
            if s["dense_epochs"]
            else ""
        )
        + "; the swap itself is measured twice, before and after it, on the same weights. "
        "The engine trains the first four arms as one ensemble and, at the swap, forgets the "
        "optimiser state of the reset arm's members only; the fresh arm is a second ensemble "
        "that starts training at the swap. The tests check each arm against "
        "a plain `nn.Sequential` trained alone with `torch.optim.Adam` (kept: the same "
        "optimiser goes on after the activation modules are replaced; reset: a fresh one; "
        "fresh: the initial network trained with a new optimiser on the last epochs' "
        "minibatches only). Every arm sees the same minibatches as an uninterrupted run with "
        "the same seed would in the same epochs.",
        "",
    ]
    return "\n".join(out) + "\n" + exercises_markdown(EXERCISES)


def _saturation_sentence(s: dict) -> str:
    """How much of the tanh network sat in tanh's flat tails just before the swap."""
    sat = s.get("saturation")
    if not sat:
        return ""
    thr = sat[0]["threshold"]

    def amount(d: dict, what: str, none: str) -> str:
        if d["mean"] == 0 and (d["hi"] or 0) == 0:
            return f"{none} in any seed"
        return f"{_pct(d)} of {what}"

    layers = "; ".join(
        f"layer {row['layer']}: "
        + amount(row["pairs"], "the (unit, input) pairs", "no (unit, input) pair")
        + " and "
        + amount(row["every_input"], "the units on every input", "no unit on every input")
        for row in sat
    )
    text = (
        f" Just before the swap, counted on the training inputs, this much of the "
        f"{s['before']} network was [saturated](#term-saturated) ($|\\tanh z| > {num(thr)}$, i.e. "
        f"$|z| > {num(math.atanh(thr))}$, the flat tails): {layers}."
    )
    if any((row["pairs"]["mean"] or 0) > 0 for row in sat):
        text += (
            f" On those pairs the output was pinned near ±1 whatever $z$; {s['after']} passes "
            "a positive $z$ through unchanged and turns a negative one into 0."
        )
    return text


def _start_sentence(s: dict) -> str:
    """The swapped network right after the swap against an untrained one (the fresh arm at
    its start, the same initial weights)."""
    st, L, a = s["start"], s["labels"], s["after"]
    if not st["differs"]:
        where = "within noise of that"
    else:
        where = (
            "lower than that"
            if st["lower"] == 0
            else "higher than that: worse than not having trained at all"
        )
    return (
        f"For scale: an untrained {a} network from the same initial weights "
        f"(*{L['fresh_after']}*, at its start) has held-out MSE {ci(st['fresh'])}; the swapped "
        f"network right after the swap is {where}."
    )


def _recovery(s: dict) -> list[str]:
    L, S, r = s["labels"], s["seeds"], s["recovery"]
    parts = []
    for arm in ("swap_kept", "swap_reset"):
        d = r[arm]
        never = S - d["recovered"]
        if never == S:
            parts.append(f"*{L[arm]}*: no seed got back within the run")
            continue
        tail = f"; {never} of {S} seeds never got back within the run" if never else ""
        parts.append(f"*{L[arm]}* {ci(d['epochs'])} epochs{tail}")
    both = r.get("both_recovered", min(r["swap_kept"]["recovered"], r["swap_reset"]["recovered"]))
    if both < 2:
        verdict = "too few seeds got back in both arms to compare the two"
    else:
        verdict = ("a significant difference" if r["differs"] else "within noise of each other") + (
            f", paired over the {both} seeds that got back in both" if both < S else ""
        )
    one = r["one_epoch_later"]
    if one["differs"]:
        lower = "kept" if one["lower"] == 0 else "reset"
        note = _significant(r["swap_kept"]["one_epoch_later"], r["swap_reset"]["one_epoch_later"])
        early = f"lower with the state {lower} ({note})"
    else:
        early = "within noise of each other"
    return [
        "## The recovery",
        "",
        "How long until the held-out loss is back at the value it had right before the swap: "
        + "; ".join(parts)
        + f" ({verdict}). One epoch after the swap the held-out MSE is "
        f"{ci(r['swap_kept']['one_epoch_later'])} with Adam's state kept and "
        f"{ci(r['swap_reset']['one_epoch_later'])} with it reset: {early}."
        + (f" {OVERLAP_WHY}" if OVERLAP_NOTE in early else ""),
        "",
    ]


def _final(s: dict) -> list[str]:
    L, f = s["labels"], s["final"]
    out = [
        "## Where each arm ended",
        "",
        "![Final held-out loss per seed and arm, and the recovery time per seed]"
        "(figures/final.png)",
        "",
        f"| arm | held-out MSE at epoch {s['swap_epoch']} (before any swap) | final held-out MSE "
        "| final training MSE | final MSE to the true function | seeds diverged (Wilson "
        "interval) |",
        "|---|---|---|---|---|---|",
    ]
    truth = s.get("truth") or {}
    for arm in s["arms"]:
        d = f[arm]
        at_swap = "not trained yet" if arm == "fresh_after" else ci(d["at_swap"])
        to_truth = ci(truth[arm]) if arm in truth else "n/a"
        out.append(
            f"| {L[arm]} | {at_swap} | {ci(d['test'])} | {ci(d['train'])} | {to_truth} | "
            f"{share(d['diverged'], s['seeds'])} |"
        )
    if truth:
        out += [
            "",
            "The MSE to the true function is the final fit's squared distance from "
            "$\\sin 3x + x/2$ on the plotting grid (evenly spread over $[-2, 2]$, like the "
            "inputs); on new points the expected MSE is this plus the noise variance, and the "
            "held-out draw's own floor is "
            f"{num(s['noise_floor_draw'])}." + _truth_sentence(s),
        ]
    out += ["", "Final held-out MSE, arm against arm:", ""]
    out += [f"* {verdict(c, L, f)};" for c in s["comparisons"]]
    out[-1] = out[-1][:-1] + "."
    if any(OVERLAP_NOTE in line for line in out):
        out += ["", OVERLAP_WHY]
    kept_b, kept_a = _find(s, "swap_kept", "before"), _find(s, "swap_kept", "after")
    reset_b, reset_a = _find(s, "swap_reset", "before"), _find(s, "swap_reset", "after")
    kr = _find(s, "swap_kept", "swap_reset")
    out += [
        "",
        f"In short: with Adam's state kept the swapped network ended "
        f"{_standing(kept_b, L['before'])} and {_standing(kept_a, L['after'])}; with it "
        f"reset, {_standing(reset_b, L['before'])} and {_standing(reset_a, L['after'])}. "
        + (
            "The paired test does not separate keeping from resetting the state at the end."
            if not kr["differs"]
            else f"Resetting the state ended {'worse' if kr['lower'] == 0 else 'better'} than "
            "keeping it."
        )
        + _paired_sentence(s, kr)
        + (
            f" Ending behind *{L['after']}* is not yet a verdict on the swap: that arm had "
            f"{_epochs(s['epochs'])} of {s['after']} training against the swapped arms' "
            f"{_epochs(s['epochs'] - s['swap_epoch'])}; the control below separates the two."
            if any(c["differs"] and c["lower"] == 1 for c in (kept_a, reset_a))
            else ""
        ),
        "",
    ]
    return out + _control(s)


def _truth_sentence(s: dict) -> str:
    """Each arm's error to the truth against the noise variance: above or below it where the
    whole interval is, within noise of it otherwise."""
    truth, L, floor = s["truth"], s["labels"], s["noise_floor"]
    shown = [arm for arm in s["arms"] if arm in truth]

    def side(d: dict) -> str:
        lo, hi = d.get("lo"), d.get("hi")
        if lo is not None and math.isfinite(lo) and lo > floor:
            return "above"
        if hi is not None and math.isfinite(hi) and hi < floor:
            return "below"
        return "level"

    where = {arm: side(truth[arm]) for arm in shown}
    words = {
        "above": "above the noise variance (the whole interval)",
        "level": "within noise of it (the interval holds it)",
        "below": "below it (the whole interval)",
    }
    if len(set(where.values())) == 1:
        (only,) = set(where.values())
        return (
            f" Against the noise variance $s^2 = {num(floor)}$, every arm's error to the truth is "
            + words[only].replace("the noise variance", "it")
            + "."
        )
    parts = [
        words[k] + " for " + _and([f"*{L[arm]}*" for arm in shown if where[arm] == k])
        for k in ("above", "level", "below")
        if k in where.values()
    ]
    return (
        f" Against the noise variance $s^2 = {num(floor)}$, the error to the truth is "
        + "; ".join(parts)
        + "."
    )


def _paired_sentence(s: dict, kr: dict) -> str:
    """Kept against reset, paired by seed: the interval of the per-seed differences, which
    the paired test's verdict reads (it excludes 0 exactly when the test separates them)."""
    d = s.get("kept_minus_reset")
    if not d or d.get("lo") is None or not math.isfinite(d["lo"]):
        return ""
    holds = "excludes" if kr["differs"] else "holds"
    return (
        " Per seed (a seed gives both arms the same weights and minibatches up to the "
        f"swap and the same minibatches after it), kept minus reset is {ci(d)}: the interval "
        f"the paired test reads, which {holds} 0."
    )


def _warm_start(c: dict) -> str:
    """What the warm start did, from a comparison of a swap arm (a) with the fresh arm (b)."""
    if not c["differs"]:
        return "made no difference beyond the noise"
    return "helped" if c["lower"] == 0 else "hurt"


def _control(s: dict) -> list[str]:
    """The swap arms against the fresh control, and ReLU throughout against it."""
    L, a, b, k = s["labels"], s["after"], s["before"], s["swap_epoch"]
    n2, n = _epochs(s["epochs"] - k), s["epochs"]
    kf, rf = _find(s, "swap_kept", "fresh_after"), _find(s, "swap_reset", "fresh_after")
    af = _find(s, "after", "fresh_after")
    if not af["differs"]:
        extra = (
            f"the extra {_epochs(k)} made no difference beyond the noise: {n2} of {a} training "
            f"from the initial weights already reach what {n} reach, so comparing the swapped "
            f"arms with {L['after']} is not unfair to them"
        )
    elif af["lower"] == 0:
        extra = (
            f"the extra {_epochs(k)} lowered the held-out MSE, so a swapped arm that ends "
            f"behind {L['after']} may owe it to the shorter {a} training; the fair comparison "
            "is the one with the fresh network"
        )
    else:
        extra = (
            f"the fresh network ended lower: {a} trained for {n} got worse on held-out data "
            "than after the first "
            f"{n2} (over-fitting)"
        )
    wk, wr = _warm_start(kf), _warm_start(rf)
    effect = (
        f"{wk} with Adam kept or reset" if wk == wr else f"{wk} (Adam kept) and {wr} (Adam reset)"
    )
    return [
        f"**Against the control.** *{L['fresh_after']}* had the swapped arms' {n2} of {a} "
        f"training, from the initial weights instead of the {b} network's. Its final held-out "
        f"MSE is {ci(s['final']['fresh_after']['test'])}"
        + _control_check(s)
        + ". Against it, the swapped network ended "
        f"{_standing(kf, 'it')} with Adam's state kept and {_standing(rf, 'it')} with it reset: "
        f"compared with no {b} phase at all, the {_epochs(k)} of {b} before the swap "
        f"{effect}. *{L['after']}* against the control ({n} against {n2} of the same "
        f"training): {extra}." + _unconverged_caveat(s, ("swap_kept", "swap_reset", "fresh_after")),
        "",
    ]


def _control_check(s: dict) -> str:
    """The fresh control against relu throughout after as many epochs: the same training from
    the same initial weights on other minibatches, which should end within noise."""
    c = s.get("control_check")
    if not c:
        return ""
    L, n2 = s["labels"], _epochs(c["epochs"])
    if not c["differs"]:
        how = (
            "within noise of it, as it should be: the control is the same training, only on "
            "other minibatches"
        )
    else:
        how = (
            f"{'lower' if c['lower'] == 0 else 'higher'} than that "
            f"({_significant(c['fresh_end'], c['after_same_epochs'])}): "
            "the same training on other minibatches ended elsewhere, so the minibatch order "
            "alone moves this MSE beyond the noise of the seeds"
        )
    return f"; *{L['after']}* after its first {n2} had {ci(c['after_same_epochs'])}, {how}"


def _unconverged_caveat(s: dict, arms: tuple[str, ...]) -> str:
    """A caveat where some of ``arms`` were still improving (or not settled) at the end."""
    c, L = s["convergence"], s["labels"]
    state = {arm: convergence_verdict(c[arm]["test"], c["threshold"]) for arm in arms}
    groups = [
        (k, [f"*{L[arm]}*" for arm in arms if state[arm] == k])
        for k in ("still improving", NOT_SETTLED)
    ]
    groups = [(k, names) for k, names in groups if names]
    if not groups:
        return ""
    n = sum(len(names) for _, names in groups)
    said = "; ".join(
        f"{_and(names)} {'was' if len(names) == 1 else 'were'} "
        + ("still improving" if k == "still improving" else "not settled by the seeds")
        for k, names in groups
    )
    return (
        f" {said} at the end (next section): this compares {'it' if n == 1 else 'them'} where "
        f"the budget of {_epochs(s['epochs'])} ran out, not where {'it' if n == 1 else 'they'} "
        "would settle."
    )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _convergence_section(s: dict) -> list[str]:
    """Whether each arm had converged at the end or the budget ran out."""
    c, L = s["convergence"], s["labels"]
    w, thr, start = c["tail_epochs"], c["threshold"], c["from_epoch"]
    out = [
        "## Converged, or out of budget?",
        "",
        f"The comparisons above are taken at epoch {s['epochs']}. Whether the runs had "
        f"settled by then: per seed, the relative change of the MSE over the last "
        f"{_epochs(w)} (the last 10% of the run), $L_{{{s['epochs']}}} / L_{{{start}}} - 1$ "
        "(negative: still falling), with its mean and 95% interval over seeds. An arm is called "
        f"*still improving* when its held-out MSE fell by more than {pct(thr)} over that span "
        f"(mean over seeds) and the whole 95% interval lies below 0, *rising* when it grew by "
        f"more than {pct(thr)} and the interval lies above 0, *flat at the end* when the whole "
        f"interval lies within ±{pct(thr)}, and *{NOT_SETTLED}* otherwise.",
        "",
        f"| arm | held-out MSE change, epochs {start}→{s['epochs']} | training MSE change | "
        "verdict |",
        "|---|---|---|---|",
    ]
    verdicts = {}
    for arm in s["arms"]:
        d = c[arm]
        verdicts[arm] = convergence_verdict(d["test"], thr)
        out.append(f"| {L[arm]} | {_pct(d['test'])} | {_pct(d['train'])} | {verdicts[arm]} |")
    improving = [f"*{L[arm]}*" for arm in s["arms"] if verdicts[arm] == "still improving"]
    rising = [f"*{L[arm]}*" for arm in s["arms"] if verdicts[arm] == "rising"]
    unsettled = [arm for arm in s["arms"] if verdicts[arm] == NOT_SETTLED]
    flat = [f"*{L[arm]}*" for arm in s["arms"] if verdicts[arm] == "flat at the end"]
    if not improving and not rising and not unsettled:
        text = (
            f"Every arm is flat at the end (held-out MSE within ±{pct(thr)} over the last "
            f"{_epochs(w)}): by this check the final comparisons are between runs that had "
            "stopped improving, not cut short by the budget."
        )
    else:
        text = ""
        if improving:
            text += (
                f"Still improving at the end: {', '.join(improving)}. The budget ran out "
                "before these converged, so a final comparison involving them ranks runs still "
                "in progress, and a longer run could change it. "
            )
        if rising:
            text += (
                f"Rising at the end: {', '.join(rising)} (the held-out MSE went up over the "
                "last epochs: over-fitting or instability). "
            )
        if unsettled:
            text += (
                f"Not settled by the {s['seeds']} seeds: "
                + ", ".join(
                    f"*{L[arm]}* ({_pct(c[arm]['test'])}: the interval holds both a flat end "
                    f"and a change beyond ±{pct(thr)})"
                    for arm in unsettled
                )
                + ". "
            )
        if flat:
            text += f"Flat at the end: {', '.join(flat)}. "
        text = text.rstrip()
    return out + ["", text, ""]


def _units_section(s: dict) -> list[str]:
    L, a, b, k = s["labels"], s["after"], s["before"], s["swap_epoch"]
    word = unit_word(s)
    if word == "dead":
        kind = (
            f"A {a} unit is [dead](#term-dead) when its output is exactly 0 on every training "
            "input: it then passes no gradient to its incoming weights. A unit of any "
            "activation is [inactive](#term-inactive) when its pre-activation $z$ is negative "
            f"on every training input; for {a} inactive and dead are the same units"
        )
    else:
        kind = (
            "A unit of any activation is [inactive](#term-inactive) when its pre-activation "
            f"$z$ is negative on every training input; a {a} unit still outputs something "
            "there, so it is not [dead](#term-dead)"
        )
    out = [
        "## The hidden units",
        "",
        kind + f", and the {b} network's inactive units are the ones a swap would make {word} "
        "(exactly so in layer 1). Counting them over training:",
        "",
        f"![Fraction of {word} units per layer over training](figures/dead_units.png)",
        "",
        f"| layer | {b}: inactive just before the swap | {word} right "
        f"after the swap | end, Adam kept | end, Adam reset | {L['after']}, epoch {k} | "
        f"{L['after']}, end |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in s["dead"]:
        out.append(
            f"| {row['layer']} | {_pct(row['predicted'])} | {_pct(row['after_swap'])} | "
            f"{_pct(row['swap_kept']['end'])} | {_pct(row['swap_reset']['end'])} | "
            f"{_pct(row['after_at_swap_epoch'])} | {_pct(row['after']['end'])} |"
        )
    first = s["dead"][0]
    out += [
        "",
        (
            f"In layer 1 the swap makes {word} "
            + ("exactly" if first["predicted_exact"] else "not exactly")
            + f" the units whose {b} pre-activation was already negative on every input "
            f"(predicted: {_pct(first['predicted'])}; measured: {_pct(first['after_swap'])}); "
            "the first layer's pre-activations depend on the weights and the data, not on the "
            "activation."
        ),
    ]
    for row in s["dead"][1:]:
        out[-1] += (
            f" In layer {row['layer']} the {b} network predicts {_pct(row['predicted'])} but "
            f"{_pct(row['after_swap'])} are {word} right after the swap: its inputs changed too "
            "(every negative output of the layer below became 0)."
        )
    out += [
        "",
        f"The fresh {a} network starts from the same initial weights as *{L['after']}*, so its "
        "units die the way that network's did in its first epochs; where the two lines of the "
        "figure lie on each other (the figure says where), that is why.",
        "",
        "After the swap:",
        "",
    ]
    for row in s["dead"]:
        bits = []
        for arm in ("swap_kept", "swap_reset"):
            d = row[arm]
            bits.append(
                f"with Adam {'kept' if arm == 'swap_kept' else 'reset'}, "
                f"{d['revived_units']} of the {d['off_after_swap_units']} units {word} right "
                f"after the swap (all seeds together) came back, and " + _later(d, word)
            )
        end_kr = "differ" if row["end_differs_kept_reset"] else "are within noise"

        end_ka = _against_kept(row, "after", row["end_differs_kept_after"])
        end_kf = _against_kept(row, "fresh_after", row["end_differs_kept_fresh"])
        out.append(
            f"* layer {row['layer']}: {'; '.join(bits)}. At the end the two swap arms {end_kr}; "
            f"*{L['after']}* has {_pct(row['after']['end'])} {word}, {end_ka}; "
            f"*{L['fresh_after']}* has {_pct(row['fresh_after']['end'])} {word}, {end_kf}."
        )
    out += [
        "",
        "![Seed 0 through the swap: the fit and every hidden unit](figures/hidden_units.png)",
        "",
    ]
    return out


def _later(d: dict, word: str) -> str:
    """Units that became dead (inactive) after the swap: a count over all seeds, like the
    revived ones (a saved run without the count gives the mean fraction over seeds)."""
    if "alive_after_swap_units" in d:
        return (
            f"{d['newly_off_units']} of the {d['alive_after_swap_units']} units not {word} right "
            f"after the swap became {word} later"
        )
    if "newly_off_units" in d:
        return (
            f"{d['newly_off_units']} of the {d['units']} units (all seeds together) became "
            f"{word} later"
        )
    return f"{_pct(d['newly_off'])} of the units became {word} later"


def _against_kept(row: dict, arm: str, differs: bool) -> str:
    """``arm``'s final off fraction against the kept swap arm's, in one layer's row."""
    if not differs:
        return "within noise of the swapped one (kept)"
    more = row[arm]["end"]["mean"] > row["swap_kept"]["end"]["mean"]
    return f"{'more' if more else 'fewer'} than the swapped one (kept)"


def _adam_section(s: dict) -> list[str]:
    ad = s["adam"]
    kept, reset = ad["swap_kept"], ad["swap_reset"]

    def norm(d: dict) -> str:
        return "0 on every seed" if d["mean"] == 0 and d["sd"] == 0 else ci(d)

    def state(d: dict) -> str:
        return (
            f"step count $t$ = {num(d['step_count']['mean'])}, $\\lVert m_0\\rVert$ = "
            f"{norm(d['m_norm'])}, $\\lVert v_0\\rVert$ = {norm(d['v_norm'])}"
        )

    return [
        "## Adam's state at the swap",
        "",
        "Adam keeps, per parameter, a first moment $m_t$ (a running mean of the gradients $g$) "
        "and a second moment $v_t$ (a running mean of $g^2$), and divides the bias-corrected "
        "$\\hat m_t$ by $\\sqrt{\\hat v_t}$; $m_0$ and $v_0$ are the moments the second phase "
        "starts from. Read from the optimiser right after the swap (norms over each network's "
        f"parameters): kept, {state(kept['start_of_phase_2'])}; reset, "
        f"{state(reset['start_of_phase_2'])} (before the reset it was "
        f"{state(reset['end_of_phase_1']).replace('_0', '_t')}). With the state kept, $v_0$ "
        f"still measures the size of the gradients of the {s['before']} network, and $m_0$ "
        "still points where that network was going; with it reset, Adam's first steps have "
        "size about the learning rate per parameter, whatever the gradient's scale.",
        "",
    ]
