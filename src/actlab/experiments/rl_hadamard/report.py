"""The RL chapter's Markdown, every number read from the run's summary; the claims table from
:mod:`~actlab.experiments.rl_hadamard.claims`."""

from __future__ import annotations

import math
from typing import Any

from actlab.experiments.base import Results
from actlab.experiments.rl_hadamard.claims import claims_table
from actlab.report.format import num, pct

__all__ = [
    "report",
    "estimate_text",
    "claims_markdown",
    "scale_sentence",
    "verdict_counts",
    "heads_sentence",
]

AGENT_NAMES = {"dqn": "DQN", "ppo": "PPO", "pqn": "PQN"}
METRIC_NAMES = {
    "auc": "AUC",
    "saturated": "saturated units",
    "saturated_share": "saturated share",
    "dead": "dead share",
    "effective_rank": "effective rank",
}


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def estimate_text(est: dict[str, Any], digits: int = 3) -> str:
    """``IQM [lo, hi]`` of a bootstrap estimate (the IQM alone with one seed)."""
    mean, lo, hi = _f(est.get("mean")), _f(est.get("lo")), _f(est.get("hi"))
    if math.isnan(mean):
        return "n/a"
    if est.get("n", 0) < 2 or math.isnan(lo):
        return num(mean, digits)
    return f"{num(mean, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def _ci_text(stat: dict[str, Any] | None, share: bool) -> str:
    if stat is None:
        return "—"
    mean, lo, hi = _f(stat.get("mean")), _f(stat.get("lo")), _f(stat.get("hi"))
    fmt = pct if share else (lambda v: num(v, 3))
    if math.isnan(lo) or lo == hi:
        return fmt(mean)
    return f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]"


def scale_sentence(cells: list[dict[str, Any]]) -> str:
    """The run's scale: steps per agent per environment family and seeds, in one sentence."""
    parts = []
    for env in dict.fromkeys(c["env"] for c in cells):
        mine = [c for c in cells if c["env"] == env]
        parts.append(f"{mine[0]['steps']:,} steps per agent on {env}")
    seeds = sorted({c["seeds"] for c in cells})
    return f"{'; '.join(parts)}; {' or '.join(str(s) for s in seeds)} seeds per cell"


def verdict_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"reproduced": 0, "not reproduced": 0, "inconclusive": 0}
    for r in rows:
        counts[r["verdict"]] += 1
    return counts


def claims_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The claims table: claim, agent, environment, the difference with Welch's interval, the
    verdict."""
    if not rows:
        return ["No claim could be tested: the run lacks the networks the claims compare."]
    out = [
        "| claim | agent | environment | difference (network − baseline) [95% CI] | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        metric = METRIC_NAMES.get(r["metric"], r["metric"])
        share = r["metric"] in ("saturated", "saturated_share", "dead")
        fmt = (lambda v: f"{100 * v:+.3g} points") if share else (lambda v: f"{v:+.3g}")
        diff = "n/a" if math.isnan(_f(r["diff"])) else fmt(r["diff"])
        if r["lo"] == r["hi"] == 0:
            diff = "0 in every seed of both"
        elif not math.isnan(_f(r["lo"])):
            diff += f" [{fmt(r['lo'])}, {fmt(r['hi'])}]"
        out.append(
            f"| `{r['network']}` {r['text']} | {AGENT_NAMES[r['agent']]} | {r['env']} | "
            f"{metric}: {diff} (seeds {r['n'][0]} vs {r['n'][1]}) | **{r['verdict']}**"
            + (f" (at init: {r['at_start']})" if "at_start" in r else "")
            + " |"
        )
    return out


def heads_sentence(cells: list[dict[str, Any]]) -> str:
    """What the trained heads output on the probe states, per agent (its first cell): Q-values
    and the critic's values against tanh's range (-1, 1), the actor's top probability."""
    parts, beyond = [], []
    for agent in dict.fromkeys(c["agent"] for c in cells):
        c = next(x for x in cells if x["agent"] == agent)
        h = c.get("heads") or {}
        where = f"({c['env']}, `{c['network']}`)"
        if "q_max" in h:
            lo, hi = min(h["q_min"]), max(h["q_max"])
            parts.append(
                f"{AGENT_NAMES[agent]}'s Q-values span {num(lo, 3)} to {num(hi, 3)} {where}"
            )
            beyond.append(max(abs(lo), abs(hi)) > 1)
        elif "value_max" in h:
            lo, hi = min(h["value_min"]), max(h["value_max"])
            top = sum(h["top_probability"]) / len(h["top_probability"])
            parts.append(
                f"PPO's critic values span {num(lo, 3)} to {num(hi, 3)} and its actor puts on "
                f"average {pct(top)} of the probability on its favourite action "
                f"(uniform: {pct(1 / h['n_actions'])}) {where}"
            )
            beyond.append(max(abs(lo), abs(hi)) > 1)
    if not parts:
        return ""
    tail = (
        " Values beyond ±1 are outside what a tanh output could give: a bounded activation "
        "belongs in the hidden layers, not on a value head."
        if any(beyond)
        else " At this budget the values have not yet grown beyond ±1; they would as the "
        "returns grow (a return of hundreds is a value of hundreds)."
    )
    return (
        "On the probe states, after training (smallest and largest over seeds): "
        + "; ".join(parts)
        + "."
        + tail
    )


def report(results: Results) -> str:
    from actlab.experiments.rl_hadamard.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    cells = results.summary["cells"]
    rows = claims_table(cells)
    counts = verdict_counts(rows)
    scale = scale_sentence(cells)
    out = [
        "# Activations in reinforcement learning: the Hadamard representation",
        "",
        "Three agents, each trained as an ensemble of seeds in one process: DQN (replay and a "
        "target network), PPO (an actor and a critic, clipped updates) and PQN (Q(λ) returns "
        "with LayerNorm, no replay, no target network). Their heads differ by what they output: "
        "DQN's and PQN's Q-values and PPO's critic are linear (a value can be any real number), "
        "PPO's actor ends in a softmax over actions (a probability). The hidden activation is "
        "what this chapter varies: ReLU, tanh, and tanh in a *Hadamard layer* "
        "$h = \\tanh(W_1 x + b_1) \\odot \\tanh(W_2 x + b_2)$, two branches multiplied unit by "
        "unit (Kooi, Hoogendoorn & François-Lavet, arXiv 2406.09079). A tanh unit whose input "
        "sits far from 0 outputs ±1 whatever the state: its outgoing weight acts as a fixed "
        "bias and its gradient is near 0. The product of two such units is saturated only when "
        "both branches are.",
        "",
        f"Scale of this run: {scale}.",
        "",
        heads_sentence(cells),
        "",
        "## Returns",
        "",
        "![Return curves: interquartile mean over seeds with a 95% stratified-bootstrap band]"
        "(figures/returns.png)",
        "",
        "| agent | environment | network | final return | AUC (mean return over training) | "
        "episodes | env steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        out.append(
            f"| {AGENT_NAMES[c['agent']]} | {c['env']} | `{c['network']}` | "
            f"{estimate_text(c['final'])} | {estimate_text(c['auc'])} | {c['episodes']} | "
            f"{num(c['speed']['env_steps_per_s'], 3)} |"
        )
    out += [
        "",
        "Final return: the mean return of the episodes finished in the last window of "
        "training; AUC: the mean of the return curve over training (a faster learner has the "
        "larger AUC at an equal final return). Both are interquartile means over seeds with "
        "95% stratified-bootstrap intervals (with few seeds the interval is wide and the IQM "
        "is close to the plain mean). Env steps/s count every agent of the ensemble.",
        "",
        "## The representation layer",
        "",
        "![The representation layer at the end of training, per cell: mean over seeds with a "
        "95% interval](figures/diagnostics.png)",
        "",
        "| agent | environment | network | dead or saturated units (end) | saturated share (end) "
        "| τ-dormant, τ = 0.1 (end) | effective rank (start → end) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        d = c["diagnostics"]
        off = d.get("saturated") or d.get("dead")
        kind = "saturated" if "saturated" in d else "dead" if "dead" in d else ""
        rank = d.get("effective_rank")
        rank_text = (
            f"{_ci_text(rank['start'], False)} → {_ci_text(rank['end'], False)}" if rank else "—"
        )
        out.append(
            f"| {AGENT_NAMES[c['agent']]} | {c['env']} | `{c['network']}` | "
            f"{(kind + ' ' + _ci_text(off['end'], True)) if off else '—'} | "
            f"{_ci_text(d['saturated_share']['end'], True) if 'saturated_share' in d else '—'} | "
            f"{_ci_text(d.get('dormant_0.1', {}).get('end'), True)} | {rank_text} |"
        )
    out += [
        "",
        "Measured every few thousand steps on one fixed batch of states gathered by a random "
        "policy, the same for every agent and network. A saturated unit has |h| > 0.99 on "
        "*every* probe state (its output is then a constant: the head reads it as a bias); the "
        "saturated share counts the (state, unit) pairs with |h| > 0.99, saturation state by "
        "state. The Hadamard layer is measured at its product (the representation the head "
        "reads), which is beyond 0.99 only where both its branches are.",
        "",
        "## The paper's claims at this scale",
        "",
        *claims_markdown(rows),
        "",
        f"Of {len(rows)} tests, {counts['reproduced']} reproduced the claimed direction, "
        f"{counts['not reproduced']} contradicted it and {counts['inconclusive']} were "
        f"inconclusive, at this run's scale ({scale}). A verdict compares two networks' seeds "
        "with Welch's 95% interval of the difference of means: *reproduced* when the interval "
        "lies on the claimed side of 0, *not reproduced* when it lies on the other side, "
        '*inconclusive* when it holds 0. "At init" is the same test on the first record, '
        "before training: where it already holds there, the difference comes with the "
        "architecture rather than from what training did to it. The paper's own budgets are "
        "millions of frames on Atari; an inconclusive cell here says the run was too short "
        "or had too few seeds to tell, not that the effect is absent.",
        "",
        exercises_markdown(EXERCISES),
    ]
    return "\n".join(out)
