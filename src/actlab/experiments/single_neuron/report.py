"""The Markdown report of the single-neuron playground: it formats ``results.summary`` (built by
:mod:`actlab.experiments.single_neuron.summary`) and nothing else: every number and every
conclusion of the text comes from there.
"""

from __future__ import annotations

import re

import numpy as np

from actlab.activations import get_activation
from actlab.experiments.base import Results
from actlab.experiments.single_neuron.exercises import EXERCISES
from actlab.report.exercises import exercises_markdown
from actlab.report.format import ci, num, pct
from actlab.stats import mean_ci, proportion_ci

__all__ = ["report"]

_num, _ci, _pct = num, ci, pct  # the project's one number format (actlab.report.format)


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _cases(s: dict) -> dict[tuple[str, str], dict]:
    return {(c["target"], c["activation"]): c for c in s["cases"]}


def wilson(k: int, n: int) -> str:
    """The share ``k/n`` of independent trials with its Wilson interval
    (:func:`actlab.stats.proportion_ci`), as ``p [lo, hi]``."""
    p = proportion_ci(k, n)
    return f"{_pct(p['mean'])} [{_pct(p['lo'])}, {_pct(p['hi'])}]"


def share(k: int, n: int) -> str:
    """A count of independent trials (restarts, scored fits) as ``k of n (p [lo, hi])``, with
    the Wilson interval of :func:`actlab.stats.proportion_ci`."""
    return f"{k} of {n} ({wilson(k, n)})"


def draw_share(per_draw: list[int], n: int) -> str:
    """The share of ``sum(per_draw)`` in ``n * len(per_draw)`` as ``p [lo, hi]``, where
    ``[lo, hi]`` is the 95% t-interval of the per-draw shares ``per_draw[i] / n``
    (:func:`actlab.stats.mean_ci`, clipped to [0, 1]); ``p, in every draw`` when the per-draw
    shares are all equal (the t-interval would have zero width), ``p`` alone for one draw.

    The draws are the independent repeats of the whole protocol. The members within a draw
    share its inputs, noise and initial points, so a Wilson interval over all of them would
    treat dependent trials as independent."""
    shares = np.asarray(per_draw, float) / n
    stat = mean_ci(shares, bounds=(0.0, 1.0))
    if shares.size >= 2 and np.all(shares == shares[0]):
        return f"{_pct(stat['mean'])}, in every draw"
    if not np.isfinite(stat["lo"]):
        return _pct(stat["mean"])
    return f"{_pct(stat['mean'])} [{_pct(stat['lo'])}, {_pct(stat['hi'])}]"


def over_draws(per_draw: list[int], n: int) -> str:
    """A count summed over draws with :func:`draw_share`: ``k of N (p [lo, hi])``."""
    return f"{int(sum(per_draw))} of {n * len(per_draw)} ({draw_share(per_draw, n)})"


def count_share(k: int, n: int, per_draw: list[int] | None, n_draw: int | None) -> str:
    """``k of n (share ...)``: with :func:`over_draws` when the per-draw counts are known (a
    summary from an older run has none: then the share alone, without an interval)."""
    if per_draw is not None and n_draw:
        return over_draws(per_draw, n_draw)
    return f"{k} of {n} ({_pct(k / n)})" if n else f"{k} of {n}"


def _sum_draws(per_draw: list[list[int]]) -> list[int]:
    """Per-draw counts of several activations added draw by draw."""
    return [int(v) for v in np.sum(np.asarray(per_draw, int), axis=0)]


def floor(s: dict) -> float:
    """The noise floor this chapter compares scores with: the finite draws' floor, i.e. the
    held-out MSE of the noiseless target itself on the run's held-out points (mean over
    draws), not its expectation $s^2$."""
    return s["truth_heldout"]["mean"]


def report(results: Results) -> str:
    """The Markdown report; numbers from ``results.summary`` only."""
    s = results.summary
    out: list[str] = ["# Single-neuron playground", ""]
    out += _intro(s)
    out += _overview(s)
    for target in s["targets"]:
        out += _target_section(s, target)
    out += _identity_section(s)
    out += _convergence_section(s)
    if "relu" in s:
        out += _relu_section(s)
    out += _sigmoid_section(s)
    return "\n".join(out).rstrip() + "\n\n" + exercises_markdown(EXERCISES)


def stop_sentence(s: dict) -> str:
    """How the restarts stopped, counted from ``s["stopped"]``: the protocol says "converged"
    only of restarts that stopped on a test, never of all when some ran to the cap."""
    st = s["stopped"]
    total = sum(v["members"] for v in st.values())
    early = {a: v["gradient"] + v["plateau"] for a, v in st.items()}
    n_early = sum(early.values())
    grad = sum(v["gradient"] for v in st.values())
    plateau = sum(v["plateau"] for v in st.values())
    diverged = sum(v["diverged"] for v in st.values())
    cap = total - n_early - diverged
    if n_early == total:
        return (
            f"All {total} restarts stopped before the cap, {grad} on the gradient test and "
            f"{plateau} on the plateau test."
        )
    frac = {a: early[a] / st[a]["members"] for a in st}
    lo = min(frac, key=lambda a: (frac[a], a))
    hi = max(frac, key=lambda a: (frac[a], a))
    div = f", {diverged} diverged" if diverged else ""
    per_draw = "early_per_draw" in next(iter(st.values()))
    if per_draw:
        n_draw = sum(v["members_per_draw"] for v in st.values())
        early_draw = _sum_draws([v["early_per_draw"] for v in st.values()])
        stopped_early = over_draws(early_draw, n_draw)
        # Capped: neither stopped early nor diverged; per draw from the totals (no divergence
        # per draw is kept, so the cap share is given without an interval when any diverged).
        capped = (
            over_draws([n_draw - k for k in early_draw], n_draw)
            if not diverged
            else f"{cap} of {total} ({_pct(cap / total)})"
        )
        how = (
            "the restarts are not independent trials: the targets and activations share each "
            "draw's inputs, noise and initial points, so a share of restarts comes with the "
            f"95% t-interval of its {len(early_draw)} per-draw values, the draws being the "
            "independent repeats"
        )

        def early_of(a: str) -> str:
            return draw_share(st[a]["early_per_draw"], st[a]["members_per_draw"])

    else:  # an older summary without per-draw counts: the shares alone
        stopped_early = f"{n_early} of {total} ({_pct(n_early / total)})"
        capped = f"{cap} of {total} ({_pct(cap / total)})"
        how = "shares of all restarts"

        def early_of(a: str) -> str:
            return _pct(frac[a])

    line = (
        f"Not every restart stopped on a test: {stopped_early} stopped before the cap "
        f"({grad} on the gradient test, {plateau} on the plateau test){div}, "
        f"and {capped} ran to the cap with neither test fired ({how})"
    )
    if lo != hi:
        line += f"; the share that stopped early ranges from {early_of(lo)} ({lo}) to "
        line += f"{early_of(hi)} ({hi})"
    return line + ". A capped restart is scored at the fit it reached at the cap."


def init_words(init: str) -> str:
    """The initial weights in words, linked to the glossary; the bound is stated only for the
    scheme whose bound for one input is known here (PyTorch's default: $B = 1/\\sqrt{1}$)."""
    if init == "torch":
        return (
            "PyTorch's [default initialisation](#term-default-init), which for one input and "
            "one hidden unit draws $w, b, v, c$ each from $U(-1, 1)$"
        )
    key = {"xavier": "xavier-init", "he": "he-init"}.get(init)
    return f"[{init} initialisation](#term-{key})" if key else f"{init} initialisation"


FIRST_CHAPTER = ("relu", "leaky_relu", "sigmoid", "tanh")
"""The activations the tutorial's first chapter (NumPy from scratch) defines and plots."""


def activation_words(activations: list[str]) -> str:
    """One sentence that defines the run's activations which the first chapter does not (the
    gallery, where every one is drawn, closes the tutorial: a learner reads this chapter
    before it); empty when there are none."""
    new = [a for a in activations if get_activation(a).name not in FIRST_CHAPTER]
    if not new:
        return ""
    parts = []
    for a in new:
        latex = re.sub(r"(?<![A-Za-z\\])x(?![A-Za-z])", "z", get_activation(a).latex)
        parts.append(f"{a} is $\\varphi(z) = {latex}$")
    known = [a for a in activations if a not in new]
    tail = f"; {_join(known)} are defined in the first chapter" if known else ""
    return f" Here {_join(parts)}{tail}."


def _intro(s: dict) -> list[str]:
    n_members = len(s["cases"]) * s["seeds"] * s["restarts"]
    lo, hi = _num(s["x_min"]), _num(s["x_max"])
    out = [
        "One hidden unit computes $\\hat y = v\\,\\varphi(wx + b) + c$: four numbers and an "
        "activation $\\varphi$. Which shapes can it draw? This section fits it to "
        f"{len(s['targets'])} polynomial targets with {len(s['activations'])} activations "
        f"({_join(s['activations'])}) and ranks them: every case (a target with an activation) "
        f"is trained from {s['restarts']} random restarts (fresh initial weights) on each of "
        f"{s['seeds']} independent data draws (one [seed](#term-seed) each), for at most "
        f"{s['epochs']} steps, and scored on [held-out](#term-held-out) points."
        + activation_words(s["activations"]),
        "",
        f"**Protocol.** Inputs on $[{lo}, {hi}]$: {s['n_train']} training points per draw "
        f"(one uniform point in each of {s['n_train']} equal cells) and {s['n_test']} separate "
        f"held-out points (uniform), both with Gaussian label noise $\\xi$ of sd $s = "
        f"{_num(s['noise'])}$. The [noise floor](#term-noise-floor), the held-out MSE of the "
        f"noiseless target itself, is $s^2 = {_num(s['noise_floor'])}$ in expectation; on "
        f"these finite held-out draws it is {_ci(s['truth_heldout'])}, and this finite-draw "
        "floor is the one every comparison with the noise floor below uses. All "
        f"{n_members} fits (target x activation x draw x restart) are members of one "
        "vectorised [ensemble](#term-ensemble) (each member has its own weights, optimiser "
        "state and stopping), trained "
        f"full batch with Adam (learning rate {_num(s['lr'])}); initial weights "
        f"({init_words(s['init'])}) depend only on the draw and the "
        "restart, so every activation starts from the "
        f"same {s['seeds'] * s['restarts']} initial points. Every {s['check_every']} steps a "
        f"member stops when the norm of its gradient over $(w, b, v, c)$ is below "
        f"{_num(s['grad_tol'])} (the *gradient test*) or its loss moved by less than a fraction "
        f"{_num(s['plateau_tol'])} since the last check (the *plateau test*: the loss is "
        f"creeping, not necessarily at a minimum); {s['epochs']} steps is the *cap*. "
        + stop_sentence(s),
        "",
        "**Scoring.** The fit of a case on a draw is its best restart *on the training set*; its "
        "held-out MSE is the score. Means and [95% intervals](#term-t-interval) are over the "
        f"{s['seeds']} draws; [$R^2$](#term-r-squared) is 1 minus the held-out MSE over the "
        "held-out variance of $y$ (1: a perfect fit; 0: no better than predicting the mean). "
        "On a draw every activation starts from the same initial points and fits the same "
        "data, so two scores are compared draw by draw: an activation is called better than "
        "another only when the [paired test](#term-paired) separates their per-draw scores at "
        "the 5% level (not [Welch's test](#term-welch), which would count what a draw gives "
        "both, an easy or a hard draw, as noise); otherwise it is a *tie* (within noise).",
        "",
        "| target | name in the config | formula | held-out variance of $y$ |",
        "|---|---|---|---|",
    ]
    for t in s["targets"]:
        info = s["target_info"][t]
        out.append(
            f"| {info['label']} | `{t}` | $y = {info['latex']}$ | {_num(s['ranking'][t]['var'])} |"
        )
    out += [
        "",
        "*Held-out variance of $y$: the variance of the held-out labels, mean over draws; the "
        "MSE of always predicting their mean." + _shapes(s) + "*",
        "",
    ]
    return out


_SHAPES = {
    "quadratic": "the U-quadratic has one minimum",
    "cubic": "the S-cubic rises steeply at both ends and flattens in the middle (the "
    "opposite of tanh's S, which is steepest in the middle)",
    "quartic": "the W-quartic has two minima ($-1$ at $x = \\pm\\sqrt 2$) and a local maximum "
    "0 at $x = 0$",
}


def _shapes(s: dict) -> str:
    """What the names of the run's targets say about their shapes (only targets in the run)."""
    parts = [_SHAPES[t] for t in s["targets"] if t in _SHAPES]
    if not parts:
        return ""
    return " The names give the shape: " + _join(parts) + "."


def _overview(s: dict) -> list[str]:
    cases = _cases(s)
    out = [
        "## Results at a glance",
        "",
        "![Held-out MSE of the best restart per draw, by target and activation]"
        "(figures/heldout.png)",
        "",
        "*Dots: the held-out MSE of each draw's best restart; circle and bar: their mean and 95% "
        "CI (the winner's circle is outlined in black); thin bar beside: 10th to 90th percentile "
        "over all restarts of all draws, i.e. what a single random restart gets. Dashed: the "
        "noise floor of these draws; dotted: the least-squares line. Log scale.*",
        "",
        "| target | best activation: held-out MSE [95% CI] | runner-up | verdict |",
        "|---|---|---|---|",
    ]
    for t in s["targets"]:
        r = s["ranking"][t]
        best = cases[(t, r["best"])]["heldout"]
        if r["runner_up"] is None:
            out.append(f"| {s['target_info'][t]['label']} | {r['best']}: {_ci(best)} | - | - |")
            continue
        second = cases[(t, r["runner_up"])]["heldout"]
        verdict = "better (paired, p < 0.05)" if r["differs"] else "tie"
        out.append(
            f"| {s['target_info'][t]['label']} | **{r['best']}**: {_ci(best)} | "
            f"{r['runner_up']}: {_ci(second)} | {verdict} |"
        )
    out.append("")
    caveat = capped_overview(s)
    if caveat:
        out += [caveat, ""]
    return out


def capped_overview(s: dict) -> str:
    """Every scored fit (a case's best restart on one draw) that ran to the cap, counted per
    activation over all targets and draws, with Wilson intervals; empty when none did."""
    st = s["stopped"]
    counts = {a: (st[a]["best"]["cap"], st[a]["best_members"]) for a in s["activations"]}
    k = sum(c for c, _ in counts.values())
    n = sum(m for _, m in counts.values())
    if k == 0:
        return ""

    def counted(a: str) -> str:
        v = st[a]
        return count_share(
            v["best"]["cap"],
            v["best_members"],
            v.get("best_cap_per_draw"),
            v.get("best_members_per_draw"),
        )

    per = _join([f"{a} {counted(a)}" for a, (c, _) in counts.items() if c])
    none = [a for a, (c, _) in counts.items() if not c]
    if none:
        per += f"; none for {_join(none)}"
    if all("best_cap_per_draw" in st[a] for a in counts):
        draws = _sum_draws([st[a]["best_cap_per_draw"] for a in counts])
        n_draw = sum(st[a]["best_members_per_draw"] for a in counts)
        total = (
            f"{k} of the {n} scored fits ({draw_share(draws, n_draw)}; shares here come with "
            f"the 95% t-interval of their {len(draws)} per-draw values, since the targets "
            "share each draw's data and initial points)"
        )
    else:
        total = f"{k} of the {n} scored fits ({_pct(k / n)})"
    line = (
        "Not every score is that of a converged fit. The scored restart (a case's best on one "
        f"draw) ran to the {s['epochs']}-step cap, neither test fired, in {total}: "
        f"{per}. A capped score is that of the fit reached at "
        "the cap, and a longer run could lower it: the ranking is that of "
        f"{s['epochs']}-step training. The "
        "last column of each target's table counts the capped scored fits of every activation"
    )
    flagged = capped_pairs(s)
    if flagged:
        line += "; a winner or runner-up above was capped in most draws for " + _join(
            [f"{a} on the {s['target_info'][t]['label']}" for t, a in flagged]
        )
    return line + "."


def capped_pairs(s: dict) -> list[tuple[str, str]]:
    """(target, activation) of the overview's best and runner-up whose scored restarts ran to
    the cap in most draws."""
    cases = _cases(s)
    out = []
    for t in s["targets"]:
        r = s["ranking"][t]
        for a in (r["best"], r["runner_up"]):
            if a is not None and 2 * cases[(t, a)]["best_stopped"]["cap"] > s["seeds"]:
                out.append((t, a))
    return out


def why(s: dict, target: str) -> str:
    """One sentence on why the winner wins, chosen and filled from the numbers."""
    r = s["ranking"][target]
    cases = _cases(s)
    fl = floor(s)
    best = r["best"]
    b = cases[(target, best)]["heldout"]["mean"]
    line = r["line"]["mean"]
    mono = s["activation_monotone"]
    if line <= 1.5 * fl:
        tied = r["tied"]
        tail = "; identity, which is exactly a line, reaches it" if "identity" in tied else ""
        return (
            f"The least-squares line already scores {_num(line)} against a noise floor of "
            f"{_num(fl)} (these draws): this target is a straight line, and {len(tied)} of "
            f"{len(s['activations'])} activations tie for first ({_join(tied)}){tail}."
        )
    if not r["best_beats_line"]:
        ci = cases[(target, best)]["heldout"]
        if b < line:
            return (
                f"No activation beats the least-squares line ({_num(line)}) significantly: the "
                f"best, {best}, scores lower on average ({_ci(ci)}) but its draw-by-draw "
                "difference from the line varies too much to be told apart from it."
            )
        return (
            f"No activation beats the least-squares line ({_num(line)}): the best, {best}, "
            f"scores {_ci(ci)}; one unit's bend does not follow this shape better than a "
            "straight line does."
        )
    r2 = cases[(target, best)]["r2"]["mean"]
    if not r["target_monotone"] and not mono.get(best, True) and r["best_monotone"] is not None:
        m = r["best_monotone"]
        mm = cases[(target, m)]["heldout"]["mean"]
        return (
            f"{best} is not monotone and scores {_num(b)} ({_num(b / fl, 2)} times the noise "
            f"floor of these draws, $R^2 = {_num(r2)}$); a monotone $\\varphi$ makes "
            "$v\\,\\varphi(wx + b) + c$ monotone in $x$, so it cannot follow the turns of this "
            f"target: the best monotone activation, {m}, stays at {_num(mm)} (the "
            f"least-squares line: {_num(line)})."
        )
    return (
        f"{best} bends where a line cannot: {_num(b)} against the least-squares line's "
        f"{_num(line)} ({_pct(1 - b / line)} lower, $R^2 = {_num(r2)}$)."
    )


def cap_caveat(s: dict, target: str) -> str:
    """A caveat on every activation of ``target`` whose scored (best) restart ran to the cap
    in some draws (those scores are of unconverged fits), and on what that does to the
    ranking; empty when no scored restart of the target did."""
    r = s["ranking"][target]
    cases = _cases(s)
    n = s["seeds"]
    capped = {a: cases[(target, a)]["best_stopped"]["cap"] for a in r["order"]}
    capped = {a: k for a, k in capped.items() if k}
    if not capped:
        return ""
    parts = [f"{a} in {k} of {n}" for a, k in capped.items()]
    line = (
        f"The scored (best) restart ran to the {s['epochs']}-step cap (neither test fired) for "
        f"{_join(parts)} draws: those scores are of fits stopped by the cap, not of converged "
        "ones, and a longer run could lower them"
    )
    top = [a for a in (r["best"], r["runner_up"]) if a is not None]
    if any(2 * capped.get(a, 0) > n for a in top):
        return line + f"; the ranking is that of {s['epochs']}-step training."
    return line + (
        f"; {_join(top)} stopped on a test in most draws, but a longer run could still move a "
        "capped activation up the table."
    )


def _reach(s: dict, c: dict) -> str:
    """The restarts reaching their draw's best as a share with its Wilson interval."""
    n = c["members"]
    return wilson(round(c["reach_best"] * n), n)


def _target_section(s: dict, target: str) -> list[str]:
    info = s["target_info"][target]
    r = s["ranking"][target]
    cases = _cases(s)
    first = target == s["targets"][0]
    dead = "[dead](#term-dead)" if first else "dead"
    wil = "[Wilson interval](#term-wilson-interval)" if first else "Wilson interval"
    out = [
        f"## {info['label'][0].upper() + info['label'][1:]} target: $y = {info['latex']}$",
        "",
        f"![Best fit per activation on the {info['label']} target](figures/fit_{target}.png)",
        "",
        f"![Training of those fits, snapshot by snapshot](figures/convergence_{target}.gif)",
        "",
        f"*Draw 0's training points (grey), the noiseless target (dashed) and each activation's "
        f"best of {s['restarts']} restarts (colour). Beside each panel: the x-range, the fitted "
        "w, b, v, c and the range of the prediction. The animation replays the same fits over "
        "training (log-spaced steps).*",
        "",
    ]
    best = cases[(target, r["best"])]["heldout"]
    line = f"**Best: {r['best']}**, held-out MSE {_ci(best)}"
    if r["runner_up"] is not None:
        second = cases[(target, r["runner_up"])]["heldout"]
        verdict = (
            "significantly better than the runner-up"
            if r["differs"]
            else "a **tie** with the runner-up (the paired test does not separate them)"
        )
        line += f": {verdict}, {r['runner_up']} at {_ci(second)}."
    caveat = cap_caveat(s, target)
    out += [line + " " + why(s, target) + (" " + caveat if caveat else ""), ""]
    out += [
        "| activation | held-out MSE [95% CI] | train MSE | $R^2$ held-out | one restart "
        "(10-90%) | restarts reaching the best | stopped: gradient / plateau / cap | dead | "
        "scored fits at the cap |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in r["order"]:
        c = cases[(target, a)]
        st = c["stopped"]
        div = f" / {st['diverged']} diverged" if st["diverged"] else ""
        out.append(
            f"| {a} | {_ci(c['heldout'])} | {_num(c['train']['mean'])} | {_num(c['r2']['mean'])} "
            f"| {_num(c['spread']['p10'])} - {_num(c['spread']['p90'])} | "
            f"{_reach(s, c)} | {st['gradient']} / {st['plateau']} / {st['cap']}{div} "
            f"| {c['dead']} | {c['best_stopped']['cap']} of {s['seeds']} |"
        )
    out += [
        "",
        f"*Held-out and train MSE of each draw's best restart, mean over {s['seeds']} draws; "
        "one restart: the 10th-90th percentile of the held-out MSE over all "
        f"{s['seeds'] * s['restarts']} restarts; reaching the best: restarts whose train MSE "
        f"is within {_pct(s['reach_tol'])} of their draw's best, with the {wil} of the "
        f"{s['seeds'] * s['restarts']} restarts (independent initial points, on these "
        f"{s['seeds']} draws); "
        f"{dead}: restarts whose unit outputs exactly 0 on every training input at "
        "the end; scored fits at the cap: draws whose best restart ran to the "
        f"{s['epochs']}-step cap.*",
        "",
    ]
    m = s.get("mirror")
    if target == "neg_cubic" and m is not None:
        verdict = (
            "they differ (paired test over the shared draws, p < 0.05)"
            if m["differs"]
            else "the same within noise (the paired test over the shared draws does not "
            "separate them)"
        )
        out += [
            "The negative cubic is the S-cubic mirrored ($y \\to -y$; only the noise is not "
            "mirrored): a unit follows it by flipping the signs of $v$ and $c$, so the two "
            f"should score alike. {m['activation']} scores {_ci(m['cubic'])} on the S-cubic and "
            f"{_ci(m['neg_cubic'])} here: {verdict}.",
            "",
        ]
    return out


def _identity_section(s: dict) -> list[str]:
    if "identity" not in s["activations"]:
        return []
    ls = s["least_squares"]
    out = [
        "## Identity is the least-squares line",
        "",
        "With $\\varphi(z) = z$ the model is $v(wx + b) + c = (vw)\\,x + (vb + c)$, a "
        "straight line, whose optimum has a closed form: the least-squares line, with "
        "the slope $\\mathrm{cov}(x, y)/\\mathrm{var}(x)$ and the intercept "
        "$d = \\bar y - \\text{slope} \\cdot \\bar x$. The best "
        "identity restart of every draw is compared with it:",
        "",
        "| target | slope $vw$ vs least squares (draw 0) | max abs. slope diff. | max abs. "
        "intercept diff. "
        "| max abs. train-MSE diff. |",
        "|---|---|---|---|---|",
    ]
    worst = 0.0
    for t in s["targets"]:
        e = ls[t]
        worst = max(worst, e["max_mse_diff"])
        out.append(
            f"| {s['target_info'][t]['label']} | {_num(e['identity_slope'][0], 5)} vs "
            f"{_num(e['slope'][0], 5)} | {_num(e['max_slope_diff'])} | "
            f"{_num(e['max_intercept_diff'])} | {_num(e['max_mse_diff'])} |"
        )
    out += [
        "",
        f"Over all targets and draws the trained identity unit's train MSE is within "
        f"{_num(worst)} of the least-squares optimum"
        + (
            ": the training loop finds the closed-form answer."
            if worst <= 1e-6 * floor(s)
            else f", {_num(worst / floor(s), 2)} times the noise floor of these draws."
        ),
        "",
    ]
    return out


def _convergence_section(s: dict) -> list[str]:
    out = [
        "## Did the restarts converge?",
        "",
        f"Per activation, over all targets, draws and restarts: stopped on the gradient test, "
        f"stopped on the plateau test, or ran to the cap of {s['epochs']} steps. The "
        "last column counts only the restarts that are scored (each draw's best on the "
        "training set). A share comes with the 95% t-interval of its per-draw values (the "
        "targets share a draw's data and initial points, so the draws, not the restarts, are "
        "the independent repeats).",
        "",
        "| activation | gradient | plateau | cap | diverged | stopped before the cap | scored "
        "restarts at the cap |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in s["activations"]:
        st = s["stopped"][a]
        n = st["members"]
        early = st["gradient"] + st["plateau"]
        bc, bn = st["best"]["cap"], st["best_members"]
        early_txt = count_share(early, n, st.get("early_per_draw"), st.get("members_per_draw"))
        capped_txt = count_share(
            bc, bn, st.get("best_cap_per_draw"), st.get("best_members_per_draw")
        )
        out.append(
            f"| {a} | {st['gradient']} | {st['plateau']} | {st['cap']} | {st['diverged']} | "
            f"{early_txt} | {capped_txt} |"
        )
    capped = sorted(
        (c for c in s["cases"] if c["stopped"]["cap"] > c["members"] / 2),
        key=lambda c: -c["stopped"]["cap"],
    )
    out.append("")
    if capped:
        names = [
            f"{c['activation']} on the {s['target_info'][c['target']]['label']} "
            f"({c['capped']['n']} of {c['members']}: median $|w| = "
            f"{_num(c['capped']['median_abs_w'])}$, $|v| = {_num(c['capped']['median_abs_v'])}$)"
            for c in capped
        ]
        shares = [
            c["capped"]["stretching"] for c in capped if c["capped"]["stretching"] is not None
        ]
        out += [
            f"Cases where most restarts ran to the cap, with the size of their weights at the "
            f"end: {_join(names)}. Their loss was still changing by more than a fraction "
            f"{_num(s['plateau_tol'])} per check and their gradient was above "
            f"{_num(s['grad_tol'])} at the last check.",
            "",
        ]
        if shares:
            stretch = float(np.mean(shares))
            line = (
                f"Over the second half of training, in draw 0, {_pct(stretch)} of these capped "
                "restarts shrank $|w|$ while $|v|$ grew (mean over the cases)."
            )
            if stretch > 0.5:
                line += (
                    " That is a unit stretching towards a limit at infinity: with $w \\to 0$ "
                    "and $v \\to \\infty$ a smooth unit becomes the Taylor expansion of "
                    "$\\varphi$ around $b$ (a line, or for sine near a crest a parabola), which "
                    "it approaches but never reaches: the loss keeps falling ever more "
                    "slowly, and neither "
                    "test need fire before the cap."
                )
            out += [line + " Their scores are those of the fits reached at the cap.", ""]
    return out


def dead_sentence(r: dict) -> str:
    """How many ReLU restarts started and ended dead. The initial points are shared by every
    target (they depend on the draw and the restart only, and so do the inputs), so the start
    is counted once per initial point, with the Wilson interval of those independent draws; the
    end differs by target and is counted over all restarts with the interval over draws."""
    if "dead_start_points" not in r:  # an older summary: the counts alone
        return (
            f"Over all targets and draws, {r['all_dead_at_start']} of {r['all_members']} ReLU "
            f"restarts started dead and {r['all_dead_at_end']} ended dead."
        )
    k, n = r["dead_start_points"], r["start_points"]
    n_targets = r["all_members"] // n if n else 0
    start = (
        f"Of the {n} initial points (independent draws of $w, b, v, c$), {k} "
        f"({wilson(k, n)}, Wilson interval) {'starts' if k == 1 else 'start'} dead"
    )
    if r.get("dead_start_same_for_all_targets", False) and n_targets > 1:
        start += (
            f", the same ones on each of the {n_targets} targets (the targets share the inputs "
            f"and the initial points), so {r['all_dead_at_start']} of the {r['all_members']} "
            "ReLU restarts started dead"
        )
    else:
        start += f"; {r['all_dead_at_start']} of the {r['all_members']} ReLU restarts did"
    end_k = int(sum(r["dead_end_per_draw"]))
    end = over_draws(r["dead_end_per_draw"], r["members_per_draw"])
    more = end_k - r["all_dead_at_start"]
    tail = (
        f": {more} more than started dead, so the training steps themselves pushed $wx + b$ "
        "below 0 on every input."
        if more > 0
        else ": training killed none."
    )
    return (
        f"{start}. At the end {end} were dead (95% t-interval over the draws, since the targets "
        f"share a draw's data){tail}"
    )


def _relu_section(s: dict) -> list[str]:
    r = s["relu"]
    info = s["target_info"][r["target"]]
    out = [
        "## ReLU in depth",
        "",
        "![ReLU and its derivative](figures/relu_function.png)",
        "",
        "$\\mathrm{ReLU}(z) = \\max(0, z)$ passes its input on where $z > 0$ and outputs 0, "
        "with derivative 0, where $z < 0$. A unit whose pre-activation $wx + b$ is negative on "
        "*every* training input outputs 0 on all of them; then the gradients of $w$, $b$ "
        "and $v$ are exactly "
        "zero and only $c$ still learns: the unit is *dead* (its output is exactly 0 on every "
        "training input), and no gradient will revive it. "
        + dead_sentence(r)
        + f" On the {info['label']} target, draw 0: {r['dead_at_start']} of "
        f"{r['restarts']} restarts started dead and {r['dead_at_end']} ended dead.",
        "",
        f"![w, b, v, c over training for every ReLU restart on the {info['label']} target]"
        "(figures/relu_trajectories.png)",
        "",
        "![The MSE over (w, b) with (v, c) solved by least squares, and the training paths]"
        "(figures/relu_landscape.png)",
        "",
        "The landscape shows, for every $(w, b)$, the lowest MSE that any $(v, c)$ can reach "
        "there; $(v, c)$ has a closed form at each point (a least-squares regression of $y$ on "
        "$\\mathrm{ReLU}(wx + b)$). Three regions: in the hatched wedge the unit is dead on "
        f"every training input and the MSE is the variance of $y$, {_num(r['var_y'])} "
        f"({_pct(r['dead_share_of_grid'])} of the window); above the dashed lines it is active "
        f"on every input, a straight line, and the best it can do is the least-squares line's "
        f"{_num(r['line_mse'])}; in between the kink lies inside the data, and only there can "
        f"the unit bend. The lowest point of the grid is {_num(r['landscape_min'])}; the best "
        f"restart (the magenta path; magenta marks the best restart in both ReLU figures) "
        f"reached a train MSE of {_num(r['best_train_mse'])}.",
        "",
    ]
    if "ray_invariance_max_diff" in r:
        out += [
            "The landscape is constant along rays from the origin: "
            "$\\mathrm{ReLU}(\\lambda z) = \\lambda\\,\\mathrm{ReLU}(z)$ for "
            "$\\lambda > 0$, and $v$ absorbs $\\lambda$, so only the direction of $(w, b)$ "
            "matters, i.e. where the kink $x = -b/w$ falls and which side is on. Measured: the "
            "MSE at $(w, b)$ and at "
            f"$(2w, 2b)$ differ by at most {_num(r['ray_invariance_max_diff'])} on the grid.",
            "",
        ]
    return out


def descent_sentence(g: dict) -> str:
    """How the step size of the sigmoid's descent changed, from the path: "crawls, then
    accelerates" only when the largest step is at least twice the first."""
    line = (
        f"Half of the way from $w_0$ to the end was covered after {g['steps_to_half']} steps. "
        f"The first step moved $w$ by {_num(g['first_step'])}, the largest (step "
        f"{g['max_step_at']}) by {_num(g['max_step'])}"
    )
    if g["max_step"] >= 2 * g["first_step"]:
        sat = g.get("saturated_start")
        where = (
            f"at $w_0$, $\\sigma(wx)$ is [saturated](#term-saturated) (outside [0.01, 0.99]) "
            f"on {_pct(sat)} of the training inputs, so"
            if sat
            else "near $w_0$"
        )
        return line + (
            f", {_num(g['max_step'] / g['first_step'], 2)} times as far: {where} the loss "
            "curve is flat and the gradient small, and descent crawls before it "
            "accelerates down the slope."
        )
    return line + ": the steps did not grow along the way; no slow start on a flat stretch."


def _sigmoid_section(s: dict) -> list[str]:
    g = s["sigmoid"]
    info = s["target_info"][g["target"]]
    return [
        "## Sigmoid without bias",
        "",
        "Remove $b$, $v$ and $c$: $\\hat y = \\sigma(wx)$, with $\\sigma(z) = 1/(1 + e^{-z})$ "
        "the sigmoid, has one parameter, and its loss is a "
        "curve over $w$ that we can draw whole. The fitted curve always passes through "
        "$\\sigma(0) = 1/2$ at $x = 0$; $w$ only sets its steepness and direction. Target: the "
        f"{info['label']} target rescaled to $[0.1, 0.9]$, with the same noise, on draw 0's "
        f"inputs. Plain gradient descent on the train MSE $L(w)$, "
        f"$w \\leftarrow w - {_num(g['lr'])}\\,L'(w)$, from "
        f"$w = {_num(g['w0'])}$.",
        "",
        "![The fit of sigma(wx) and the loss as a function of w](figures/sigmoid_fit.png)",
        "",
        "![Gradient descent on w: the fit and the position on the loss curve]"
        "(figures/sigmoid_descent.gif)",
        "",
        f"After {g['steps']} steps $w = {_num(g['w_end'], 4)}$ with train MSE "
        f"{_num(g['loss_end'])} (from {_num(g['loss_start'])}) and gradient "
        f"{_num(g['grad_end'])}; the minimum of the loss on a grid of spacing "
        f"{_num(g['grid_spacing'])} is at $w = {_num(g['w_grid_min'], 4)}$ "
        f"({_num(g['loss_grid_min'])}). " + descent_sentence(g),
        "",
    ]
