"""The RL chapter's Markdown, every number read from the run's summary; the claims table from
:mod:`~actlab.experiments.rl_hadamard.claims`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.experiments.base import Results
from actlab.experiments.rl_hadamard.claims import (
    CLAIMS,
    claims_table,
    collapsed_seeds,
    mostly_collapsed,
    paired_verdict,
    seed_starts,
)
from actlab.experiments.rl_hadamard.figures import curve_starts
from actlab.report.format import num, pct, pct_ci, ratio
from actlab.stats import as_float

__all__ = [
    "report",
    "defined_terms",
    "estimate_text",
    "claims_markdown",
    "scale_sentence",
    "verdict_counts",
    "heads_sentence",
    "learning_rows",
    "learning_sentence",
    "confounds_sentence",
    "saturation_sentence",
    "paired_sentence",
    "iqm_sentence",
    "extreme_bounds",
    "extreme_bounds_sentence",
    "architecture_sentence",
    "collapse_rows",
    "collapse_sentence",
    "random_range",
    "measured_list",
    "exploration_rows",
    "end_steps_text",
    "rollouts_text",
    "record_spacing_text",
    "end_window_text",
    "diagnostic_records",
    "collapsed_claims_sentence",
    "exploration_sentence",
    "EFFECTIVE_RANK",
]

AGENT_NAMES = {"dqn": "DQN", "ppo": "PPO", "pqn": "PQN"}
METRIC_NAMES = {
    "auc": "AUC",
    "saturated": "saturated units",
    "saturated_share": "saturated share",
    "dead": "dead share",
    "effective_rank": "effective rank",
}


def estimate_text(est: dict[str, Any], digits: int = 3) -> str:
    """``IQM [lo, hi]`` of a bootstrap estimate (the IQM alone with one seed)."""
    mean, lo, hi = as_float(est.get("mean")), as_float(est.get("lo")), as_float(est.get("hi"))
    if math.isnan(mean):
        return "n/a"
    if est.get("n", 0) < 2 or math.isnan(lo):
        return num(mean, digits)
    return f"{num(mean, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def _ci_text(stat: dict[str, Any] | None, share: bool) -> str:
    if stat is None:
        return "—"
    if share:
        return pct_ci(stat)
    mean, lo, hi = as_float(stat.get("mean")), as_float(stat.get("lo")), as_float(stat.get("hi"))
    if math.isnan(lo) or lo == hi:
        return num(mean, 3)
    return f"{num(mean, 3)} [{num(lo, 3)}, {num(hi, 3)}]"


def scale_sentence(cells: list[dict[str, Any]]) -> str:
    """The run's scale: steps per agent per environment (agents that step in whole rollouts may
    take a few steps fewer than the budget: each count is the one that agent took) and seeds."""
    parts = []
    for env in dict.fromkeys(c["env"] for c in cells):
        by_steps: dict[int, list[str]] = {}
        for c in cells:
            if c["env"] == env and AGENT_NAMES[c["agent"]] not in by_steps.get(c["steps"], []):
                by_steps.setdefault(c["steps"], []).append(AGENT_NAMES[c["agent"]])
        counts = ", ".join(f"{steps:,} ({' and '.join(a)})" for steps, a in by_steps.items())
        parts.append(f"{counts} steps per agent on {env}")
    seeds = sorted({c["seeds"] for c in cells})
    return f"{'; '.join(parts)}; {' or '.join(str(s) for s in seeds)} seeds per cell"


def _first_finite(row: list[float | None]) -> float:
    return next((float(v) for v in row if v is not None and math.isfinite(v)), math.nan)


def learning_rows(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell, whether its agents measurably learned: each seed's final return minus its first
    point of the return curve (the first window of training, played near-randomly: ε close to
    1, an untrained policy), with the paired t-interval over seeds."""
    rows = []
    for c in cells:
        first = [_first_finite(row) for row in c["curves"]]
        v = paired_verdict(c["per_seed_final"], first, 1)
        rows.append({"agent": c["agent"], "env": c["env"], "network": c["network"], **v})
    return rows


def learning_sentence(
    cells: list[dict[str, Any]], end_eps: dict[tuple[str, str], float] | None = None
) -> str:
    """Names the cells whose final return is not above their start (paired interval holds 0 or
    lies below), then what their seeds did one by one (:func:`collapse_sentence`): an IQM near
    the start can hide seeds that collapsed below it beside seeds that learned."""
    rows = learning_rows(cells)
    flat = [r for r in rows if r["verdict"] != "reproduced"]
    if not flat:
        text = (
            f"Every cell ended measurably above its start (all {len(rows)}: each seed's final "
            "return minus its first point of the curve, paired 95% t-interval above 0)."
        )
    else:
        names = "; ".join(
            f"{AGENT_NAMES[r['agent']]} on {r['env']} with `{r['network']}` "
            f"({_signed(r['diff'])} [{_signed(r['lo'])}, {_signed(r['hi'])}])"
            for r in flat
        )
        text = (
            f"{len(flat)} of {len(rows)} cells did **not** end measurably above their start "
            "(each seed's final return minus its first point of the curve, played "
            f"near-randomly; paired 95% t-interval holds 0 or lies below): {names}."
        )
    more = collapse_sentence(cells, end_eps)
    return f"{text} {more}" if more else text


def random_range(cells: list[dict[str, Any]], agent: str, env: str) -> tuple[float, float]:
    """The random-play level of an (agent, environment): the smallest and largest first point of
    the return curve (the first window of training, ε close to 1) over all seeds of all its
    cells."""
    starts = [
        s
        for c in cells
        if (c["agent"], c["env"]) == (agent, env)
        for s in seed_starts(c)
        if math.isfinite(s)
    ]
    return (min(starts), max(starts)) if starts else (math.nan, math.nan)


def _level(final: float, lo: float, hi: float) -> str:
    return "below" if final < lo else "above" if final > hi else "at"


def collapse_rows(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell with at least one collapsed seed (final return below the seed's own
    near-random start, :func:`~actlab.experiments.rl_hadamard.claims.collapsed_seeds`): the
    collapsed seeds' finals and starts, the other seeds' finals, whether most collapsed, and
    each seed's final against the random-play range of its agent and environment
    (:func:`random_range`): ``below``, ``at`` (within it) or ``above``."""
    out = []
    for c in cells:
        flags = collapsed_seeds(c)
        if not any(flags):
            continue
        starts = seed_starts(c)
        down = [i for i, f in enumerate(flags) if f]
        up = [i for i, f in enumerate(flags) if f is False]
        lo, hi = random_range(cells, c["agent"], c["env"])
        finals = [float(v) for v in c["per_seed_final"]]
        out.append(
            {
                "agent": c["agent"],
                "env": c["env"],
                "network": c["network"],
                "seeds": len(flags),
                "collapsed": down,
                "collapsed_final": [finals[i] for i in down],
                "collapsed_start": [starts[i] for i in down],
                "rose": up,
                "rose_final": [finals[i] for i in up],
                "iqm": as_float(c.get("final", {}).get("mean")),
                "most": mostly_collapsed(c),
                "random": (lo, hi),
                "level": [_level(f, lo, hi) if math.isfinite(f) else None for f in finals],
            }
        )
    return out


def _list(values: list[float]) -> str:
    parts = [num(v, 3) for v in values]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


LEVEL_TEXT = {
    "below": "below the random-play range",
    "at": "at random level",
    "above": "above it",
}


def collapse_sentence(
    cells: list[dict[str, Any]], end_eps: dict[tuple[str, str], float] | None = None
) -> str:
    """Seed by seed, in the cells where some seed ended *below* its near-random start: each
    seed's final return against the random-play range of its agent and environment (the first
    curve points of all its seeds, :func:`random_range`): below it, at random level (within
    it) or above it; what the IQM does with the split. ``end_eps``: the ε each (agent,
    environment) ends at, named where the returns below random play are described."""
    rows = collapse_rows(cells)
    if not rows:
        return ""
    parts, ranges = [], {}
    for r in rows:
        ranges.setdefault((r["agent"], r["env"]), r["random"])
        finals = [float(v) for v in r["collapsed_final"] + r["rose_final"]]
        seeds = r["collapsed"] + r["rose"]
        groups = []
        for level in ("below", "at", "above"):
            got = [f for s, f in sorted(zip(seeds, finals, strict=True)) if r["level"][s] == level]
            if got:
                groups.append(f"{len(got)} {LEVEL_TEXT[level]}, at {_list(got)}")
        parts.append(
            f"{AGENT_NAMES[r['agent']]} on {r['env']} with `{r['network']}`: "
            f"{len(r['collapsed'])} of {r['seeds']} seeds ended below their own first-window "
            f"return; of the {r['seeds']} final returns, "
            + "; ".join(groups)
            + f" (IQM {num(r['iqm'], 3)})"
        )
    range_text = "; ".join(
        f"{num(lo, 3)} to {num(hi, 3)} for {AGENT_NAMES[a]} on {e}"
        for (a, e), (lo, hi) in ranges.items()
    )
    below = sorted(
        float(v)
        for r in rows
        for s, v in zip(r["collapsed"], r["collapsed_final"], strict=True)
        if r["level"][s] == "below"
    )
    text = (
        "The first point of each seed's curve is its near-random play (the first window of "
        "training, ε close to 1); over all seeds of an agent and environment these span "
        f"{range_text}: a final return in that range is *at random level*. Seed by seed, the "
        "final returns split: " + "; ".join(parts) + "."
    )
    if below:
        eps = sorted(
            {
                (end_eps or {}).get((r["agent"], r["env"]))
                for r in rows
                if any(lv == "below" for lv in r["level"])
            }
            - {None}
        )
        at_eps = (
            f" (played with ε = {' or '.join(num(e, 3) for e in eps)} at the end)" if eps else ""
        )
        text += (
            f" The {len(below)} seeds below random level end between {num(below[0], 3)} and "
            f"{num(below[-1], 3)} (median {num(float(np.median(below)), 3)}): their training "
            f"episodes{at_eps} returned less than the near-random ones they started with"
            + (
                " (on CartPole an episode that always pushes the cart the same way lasts about "
                "10 steps)"
                if any(r["env"].startswith("CartPole") for r in rows)
                else ""
            )
            + "."
        )
    text += (
        " The interquartile mean averages the middle seeds, so it mixes seeds at or below "
        "random level with those that learned and describes neither; the return figure draws "
        "each seed of these panels as a thin line."
    )
    most = [r for r in rows if r["most"]]
    if most:
        text += (
            f" In {len(most)} of these cells most seeds ended below their own first-window "
            "return; the claims that rest on them are marked in the claims table."
        )
    return text


def _signed(v: Any) -> str:
    return "n/a" if math.isnan(as_float(v)) else f"{as_float(v):+.3g}"


EFFECTIVE_RANK = (
    "The *effective rank* (Roy & Vetterli 2007) of a layer is read from the singular values "
    "`σ_1 ≥ σ_2 ≥ …` of its `(probe states × units)` output matrix: with `p_k = σ_k / Σ_j σ_j`, "
    "`erank = exp(−Σ_k p_k log p_k)`, the exponential of the entropy of the normalised "
    "singular values (computed in float64; an all-zero matrix counts 0). It lies between 1 "
    "(every state maps onto one direction) and the number of units or of states, whichever is "
    "smaller (all directions used equally): a higher value is a representation that spreads "
    "the states over more directions."
)


def _agent_config(summary: dict[str, Any], agent: str, env: str, net: str) -> Any | None:
    """The agent's own settings for a cell, rebuilt from the run's saved config (the keys this
    code's Config knows; ``None`` when they no longer make a valid config)."""
    from actlab.experiments.rl_hadamard import experiment as ex

    known = {f.name for f in ex.dataclasses.fields(ex.Config)}
    try:
        cfg = ex.Config(**{k: v for k, v in summary["config"].items() if k in known})
        return ex.agent_config(agent, env, net, cfg)
    except (KeyError, TypeError, ValueError):
        return None


def exploration_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """How each (agent, environment) of the run chose its actions while training, read from the
    agents' configs rebuilt from the run's config: epsilon's start, end and the steps it anneals
    over for DQN and PQN; PPO samples its policy."""
    rows = []
    for c in summary["cells"]:
        key = (c["agent"], c["env"])
        if any((r["agent"], r["env"]) == key for r in rows):
            continue
        acfg = _agent_config(summary, c["agent"], c["env"], c["network"])
        row: dict[str, Any] = {"agent": c["agent"], "env": c["env"]}
        if acfg is not None and hasattr(acfg, "end_e"):
            row.update(
                start_e=float(acfg.start_e),
                end_e=float(acfg.end_e),
                anneal_steps=int(acfg.exploration_fraction * acfg.total_steps),
                total_steps=int(acfg.total_steps),
            )
        if acfg is not None:
            row["configured"] = int(acfg.total_steps)
            row["steps"] = int(c["steps"])
            if hasattr(acfg, "copies") and hasattr(acfg, "num_steps"):
                row.update(copies=int(acfg.copies), num_steps=int(acfg.num_steps))
        rows.append(row)
    return rows


def _exploration_text(r: dict[str, Any]) -> str:
    who = f"{AGENT_NAMES[r['agent']]} on {r['env']}"
    if "end_e" in r:
        last = r.get("steps", r["total_steps"])
        return (
            f"{who}: ε-greedy, ε from {num(r['start_e'], 3)} down to {num(r['end_e'], 3)} over "
            f"the first {r['anneal_steps']:,} steps ({pct(r['anneal_steps'] / r['total_steps'])}"
            f" of the configured {r['total_steps']:,}), then {num(r['end_e'], 3)} to the last "
            f"step, {last:,}"
        )
    if r["agent"] == "ppo":
        return f"{who}: actions sampled from the actor's softmax policy (no ε)"
    return f"{who}: (settings not readable from this run's config)"


def rollouts_text(summary: dict[str, Any]) -> str:
    """For the agents that step in whole rollouts (PPO, PQN): copies x steps per rollout, the
    number of rollouts, and the steps taken against the configured budget (the run stops at the
    last whole rollout)."""
    parts = []
    for r in exploration_rows(summary):
        if "copies" not in r:
            continue
        batch = r["copies"] * r["num_steps"]
        text = (
            f"{AGENT_NAMES[r['agent']]} on {r['env']} steps {r['copies']} environment copies × "
            f"{r['num_steps']} steps = {batch:,} steps per rollout, {r['steps'] // batch:,} "
            "rollouts"
        )
        if r["steps"] != r["configured"]:
            text += (
                f": {r['steps']:,} of the configured {r['configured']:,} steps (it stops at the "
                "last whole rollout)"
            )
        parts.append(text)
    return "; ".join(parts)


def record_spacing_text(records: dict[tuple[str, str], list[int]]) -> str:
    """The spacing of the diagnostic records per (agent, environment), from their steps."""
    groups: dict[str, list[str]] = {}
    for (agent, env), steps in records.items():
        gaps = np.diff(sorted(set(steps)))
        if not len(gaps):
            continue
        lo, hi = int(gaps.min()), int(gaps.max())
        key = f"{lo:,} steps apart" if lo == hi else f"{lo:,} to {hi:,} steps apart"
        groups.setdefault(key, []).append(f"{AGENT_NAMES[agent]} on {env}")
    return "; ".join(f"{k} for {', '.join(v)}" for k, v in groups.items())


def end_window_text(cells: list[dict[str, Any]], window: float) -> str:
    """Where the last diagnostic record lies against the final-return window (the episodes
    finished in the last ``window`` share of the steps taken), per group of cells."""
    groups: dict[str, list[str]] = {}
    for c in cells:
        d = next(iter(c["diagnostics"].values()), None)
        if d is None:
            continue
        last, steps = int(d["steps"][-1]), int(c["steps"])
        start = steps - window * steps
        where = "before" if last < start else "at the start of" if last == start else "inside"
        text = (
            f"the last record, step {last:,}, lies {where} the final-return window (steps "
            f"{start:,.0f} to {steps:,}), {steps - last:,} steps before the last step"
        )
        who = f"{AGENT_NAMES[c['agent']]} on {c['env']}"
        if who not in groups.setdefault(text, []):
            groups[text].append(who)
    return "; ".join(f"{t} ({', '.join(w)})" for t, w in groups.items())


def end_steps_text(cells: list[dict[str, Any]]) -> str:
    """Which step "the end" of the diagnostics is, per group of cells sharing it: the last
    diagnostic record, which can be before the last step of training."""
    groups: dict[tuple[int, int], list[str]] = {}
    for c in cells:
        d = next(iter(c["diagnostics"].values()), None)
        if d is None:
            continue
        who = f"{AGENT_NAMES[c['agent']]} on {c['env']}"
        names = groups.setdefault((int(d["steps"][-1]), int(c["steps"])), [])
        if who not in names:
            names.append(who)
    return "; ".join(
        f"step {last:,} of {steps:,} ({', '.join(who)})" for (last, steps), who in groups.items()
    )


def _networks_text(cells: list[dict[str, Any]], hidden: str) -> str:
    """Hidden sizes, where each agent's Hadamard layer sits, LayerNorm and when DQN starts
    learning, from the cells' recorded settings."""
    minatar = any(c["env"].startswith("MinAtar") for c in cells)
    text = f"hidden layers {hidden}" + (
        " on classic control (MinAtar: one convolution, then one dense layer)" if minatar else ""
    )
    places = {}
    for c in cells:
        where = (c.get("settings") or {}).get("hadamard", "none")
        if where != "none":
            places.setdefault(PLACES.get(where, where), []).append(
                f"{AGENT_NAMES[c['agent']]} on {c['env']}"
            )
    if places:
        text += "; the Hadamard layer replaces " + " or ".join(
            f"{where} ({', '.join(dict.fromkeys(who))})" for where, who in places.items()
        )
        if any(c["agent"] == "ppo" for c in cells):
            text += (
                "; PPO's actor and critic are separate networks of the same kind, so the "
                "Hadamard layer is in both, and PPO's diagnostics are read from the actor"
            )
    ln = [
        a
        for a in dict.fromkeys(
            c["agent"] for c in cells if (c.get("settings") or {}).get("layer_norm")
        )
    ]
    if ln:
        verb = "puts" if len(ln) == 1 else "put"
        text += (
            f"; {' and '.join(AGENT_NAMES[a] for a in ln)} {verb} LayerNorm before each activation"
        )
    starts = {
        f"{AGENT_NAMES[c['agent']]} on {c['env']}": c["settings"]["learning_starts"]
        for c in cells
        if c["agent"] == "dqn" and (c.get("settings") or {}).get("learning_starts")
    }
    if starts:
        text += "; " + "; ".join(f"{k} learns from step {v:,}" for k, v in starts.items())
    return text + "."


def measured_list(
    summary: dict[str, Any], records: dict[tuple[str, str], list[int]] | None = None
) -> list[str]:
    """The hyper-parameters that matter for reading the results, as a Markdown list read from
    the run's config: agents, steps, seeds, exploration, networks, what a return is and when
    the diagnostics are taken."""
    cfg = summary["config"]
    cells = summary["cells"]
    agents = list(dict.fromkeys(c["agent"] for c in cells))
    envs = list(dict.fromkeys(c["env"] for c in cells))
    where = "; ".join(
        f"{AGENT_NAMES[a]} on "
        + ", ".join(dict.fromkeys(c["env"] for c in cells if c["agent"] == a))
        for a in agents
    )
    acfg = _agent_config(summary, cells[0]["agent"], cells[0]["env"], cells[0]["network"])
    hidden = " → ".join(str(h) for h in acfg.hidden) if acfg is not None else "?"
    window = float(cfg["window"])
    rollouts = rollouts_text(summary)
    spacing = record_spacing_text(records or {})
    out = [
        f"- **Agents and environments:** {where}.",
        f"- **Budget:** {scale_sentence(cells)} (each seed one agent of the ensemble, with its "
        "own initial weights, environment and exploration draws)"
        + (f". {rollouts}." if rollouts else "."),
        "- **Exploration while training:** "
        + "; ".join(_exploration_text(r) for r in exploration_rows(summary))
        + " (ε-greedy: a uniformly random action with probability ε, else the greedy one).",
        f"- **Networks:** {', '.join(f'`{n}`' for n in cfg['networks'])}; "
        + _networks_text(cells, hidden),
        "- **Return:** the undiscounted sum of rewards of one *training* episode, played with "
        "the exploration above (no separate greedy evaluation); a return curve averages the "
        f"episodes each seed finished in a sliding window of {pct(window)} of its budget, read "
        f"at {cfg['curve_points']} points; the *final return* is its last point (the episodes "
        f"of the last {pct(window)} of training).",
        f"- **Diagnostics:** about every {int(cfg['diag_every']):,} steps"
        + (f" ({spacing})" if spacing else "")
        + ", the first time at "
        f"initialisation, on a fixed batch of {int(cfg['probe_size'])} probe states; *the end* "
        f"is the last record: {end_steps_text(cells)}. So the diagnostics do not see the last "
        f"steps the final return covers: {end_window_text(cells, window)}.",
    ]
    if len(envs) == 1:
        out[0] = out[0].replace("Agents and environments", "Agents and environment")
    return out


def diagnostic_records(results: Results) -> dict[tuple[str, str], list[int]]:
    """The steps of the diagnostic records per (agent, environment), read from the metrics
    (the representation layer's effective rank, the actor's for PPO)."""
    m = results.metrics
    if m is None or not len(m) or "metric" not in m:
        return {}
    rows = m[m.metric.str.endswith("effective_rank") & ~m.metric.str.startswith("critic/")]
    return {
        (a, e): sorted(int(s) for s in set(g.step))
        for (a, e), g in rows.groupby(["agent", "env"], sort=False)
    }


def exploration_sentence(summary: dict[str, Any]) -> str:
    """The exploration each agent ends with, in one clause per (agent, environment)."""
    parts = []
    for r in exploration_rows(summary):
        who = f"{AGENT_NAMES[r['agent']]} on {r['env']}"
        if "end_e" in r:
            parts.append(f"{who} ends at ε = {num(r['end_e'], 3)}")
        elif r["agent"] == "ppo":
            parts.append(f"{who} samples actions from its policy")
    return "; ".join(parts)


def collapsed_claims_sentence(rows: list[dict[str, Any]]) -> str:
    """How many reproduced claims rest on cells where most seeds collapsed."""
    rep = [r for r in rows if r["verdict"] == "reproduced"]
    marked = [r for r in rep if r.get("collapsed")]
    if not marked:
        return ""
    return (
        f"{len(marked)} of the {len(rep)} reproduced claims rest on cells where most seeds "
        "ended below their own near-random start (marked in the table): "
        "they compare a few learning seeds with several at or below random level, not two "
        "trained networks."
    )


PLACES = {"all": "every hidden layer", "last": "the representation layer"}


def confounds_sentence(cells: list[dict[str, Any]]) -> str:
    """What differs besides the activation, read from the cells' settings: parameters per
    agent (plain against Hadamard), where the Hadamard layer sits, LayerNorm and orthogonal
    initialisation per agent, whether a parameter-matched network ran."""
    out = []
    for agent in dict.fromkeys(c["agent"] for c in cells):
        for env in dict.fromkeys(c["env"] for c in cells if c["agent"] == agent):
            by = {
                c["network"]: c.get("settings") or {}
                for c in cells
                if c["agent"] == agent and c["env"] == env
            }
            plain, had = by.get("tanh", {}), by.get("tanh-hadamard", {})
            if "parameters" in plain and "parameters" in had:
                out.append(
                    f"{AGENT_NAMES[agent]} on {env}: {had['parameters']:,} parameters per agent "
                    f"with the Hadamard layer ({PLACES.get(had.get('hadamard'), '?')})"
                    f" against {plain['parameters']:,} with plain tanh "
                    f"({ratio_text(had['parameters'], plain['parameters'])})"
                )
    extras = []
    for key, what in (
        ("layer_norm", "LayerNorm before each activation"),
        ("orthogonal_init", "orthogonal initialisation"),
    ):
        agents = [
            AGENT_NAMES[a]
            for a in dict.fromkeys(c["agent"] for c in cells)
            if any((c.get("settings") or {}).get(key) for c in cells if c["agent"] == a)
        ]
        others = [
            AGENT_NAMES[a]
            for a in dict.fromkeys(c["agent"] for c in cells)
            if AGENT_NAMES[a] not in agents
        ]
        if agents and others:
            extras.append(f"{what} in {' and '.join(agents)} only")
    networks = {c["network"] for c in cells}
    text = ""
    if out:
        text += "Parameters: " + "; ".join(out) + ". "
    if "tanh-wide" not in networks:
        text += (
            "This run has no tanh network widened to the Hadamard network's parameter count "
            "(`tanh-wide`, in the `full` preset): a gain of `tanh-hadamard` over `tanh` here "
            "may come from its extra parameters, not from the product. "
        )
    if extras:
        text += (
            "Between agents the networks differ too (" + "; ".join(extras) + "), so a "
            "difference between agents is not one of the activation. "
        )
    return text.strip()


def ratio_text(a: float, b: float) -> str:
    return f"{ratio(math.log10(a / b))}×"


def verdict_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"reproduced": 0, "not reproduced": 0, "inconclusive": 0}
    for r in rows:
        counts[r["verdict"]] += 1
    return counts


def _clean(v: float) -> float:
    """Float rounding of a difference of equal sums (about 1e-16) written as 0."""
    return 0.0 if abs(v) < 1e-12 else v


def _diff_text(r: dict[str, Any] | None, metric: str) -> str:
    """``+d [lo, hi]`` of a verdict dict (points for shares), or why there is no interval."""
    if r is None:
        return "—"
    share = metric in ("saturated", "saturated_share", "dead")
    fmt = (lambda v: f"{_clean(100 * v):+.3g} points") if share else (lambda v: f"{_clean(v):+.3g}")
    if math.isnan(as_float(r["diff"])):
        return "n/a"
    if r["lo"] == r["hi"] == 0:
        return "0 in every seed of both"
    text = fmt(r["diff"])
    if not math.isnan(as_float(r["lo"])):
        text += f" [{fmt(r['lo'])}, {fmt(r['hi'])}]"
    return text


GAP = {"reproduced": "widened", "not reproduced": "narrowed", "inconclusive": "within noise"}
AT_INIT = {
    "reproduced": "already there",
    "not reproduced": "reversed",
    "inconclusive": "within noise",
}


def claims_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The claims table: claim, agent, environment, the difference of means with Welch's
    interval at the end and its verdict; for a diagnostic, the same difference at
    initialisation and what training did to the gap (each seed's change, Welch)."""
    if not rows:
        return ["No claim could be tested: the run lacks the networks the claims compare."]
    out = [
        "| claim | agent | environment | network − baseline at the end (diagnostics: last "
        "record; AUC: all of training) [95% CI] "
        "| verdict | at initialisation [95% CI] | the gap over training |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        metric = METRIC_NAMES.get(r["metric"], r["metric"])
        start = r.get("start")
        change = r.get("change")
        gap = (
            "—"
            if change is None
            else f"{GAP[change['verdict']]} ({_diff_text(change, r['metric'])})"
        )
        out.append(
            f"| `{r['network']}` {r['text']} | {AGENT_NAMES[r['agent']]} | {r['env']} | "
            f"{metric}: {_diff_text(r, r['metric'])} (seeds {r['n'][0]} vs {r['n'][1]}) | "
            f"**{r['verdict']}**"
            + (
                " (*rests on cells where most seeds ended below their start*: "
                + ", ".join(f"`{n}`" for n in r["collapsed"])
                + ")"
                if r.get("collapsed")
                else ""
            )
            + " | "
            + (
                "—"
                if start is None
                else f"{_diff_text(start, r['metric'])}: {AT_INIT[start['verdict']]}"
            )
            + f" | {gap} |"
        )
    return out


def paired_sentence(rows: list[dict[str, Any]]) -> str:
    """Whether the paired test over same-seed pairs agrees with Welch's verdicts."""
    differ = [r for r in rows if "paired" in r and r["paired"]["verdict"] != r["verdict"]]
    n = sum("paired" in r for r in rows)
    if not n:
        return ""
    text = (
        "Seed i of two networks shares its environment and exploration seeds, so the samples "
        "are not strictly independent; a [paired t-test](#term-paired) over the same-seed "
        "pairs gives the same "
        f"verdict in {n - len(differ)} of {n} rows"
    )
    if not differ:
        return text + "."
    return (
        text
        + "; it differs in "
        + "; ".join(
            f"{r['claim']} for {AGENT_NAMES[r['agent']]} on {r['env']} "
            f"(paired: {r['paired']['verdict']})"
            for r in differ
        )
        + ". Welch's interval is the one the verdicts use: with a positive correlation between "
        "the pairs it is the wider, more cautious one."
    )


def saturation_sentence(cells: list[dict[str, Any]]) -> str:
    """The paper counts dead (saturated) *units*: say in how many tanh cells no unit was
    saturated on every probe state in any seed, so that that count had nothing to reduce."""
    tanh = [c for c in cells if "saturated" in c["diagnostics"]]
    if not tanh:
        return ""
    none = [c for c in tanh if not any(c["diagnostics"]["saturated"]["per_seed_end"])]
    if len(none) == len(tanh):
        return (
            f"In all {len(tanh)} tanh and tanh-Hadamard cells, no unit of the representation "
            "layer was saturated on every probe state at the end, in any seed: the paper's "
            "count of dead (saturated) units has nothing to reduce at this scale, so the claim "
            "is tested on the saturated share of (state, unit) pairs instead, a weaker notion."
        )
    return (
        f"In {len(none)} of {len(tanh)} tanh and tanh-Hadamard cells no unit was saturated on "
        "every probe state at the end, in any seed; the claim is tested on the saturated "
        "share of (state, unit) pairs, which every cell has."
    )


def architecture_sentence(rows: list[dict[str, Any]]) -> str:
    """Of the diagnostic claims reproduced at the end, how many held already at initialisation
    and in how many training widened the gap (each seed's change, Welch)."""
    diag = [r for r in rows if r["verdict"] == "reproduced" and "start" in r]
    if not diag:
        return ""
    before = sum(r["start"]["verdict"] == "reproduced" for r in diag)
    widened = sum(r["change"]["verdict"] == "reproduced" for r in diag)
    narrowed = sum(r["change"]["verdict"] == "not reproduced" for r in diag)
    text = (
        f"Of the {len(diag)} diagnostic claims reproduced at the end, {before} already held at "
        f"initialisation, and training widened the gap in {widened} of them"
        + (f" (it narrowed it in {narrowed})" if narrowed else "")
        + "."
    )
    if before == len(diag) and widened == 0:
        text += (
            " At this scale the Hadamard layer's lower saturation and higher effective rank "
            "come with the architecture, not from what training did to it."
        )
    return text


def extreme_bounds(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The returns table's bootstrap intervals (final return, AUC) with a bound equal to the
    smallest or largest seed's value to the 3 significant digits the table shows: with so few
    seeds resamples made mostly of the extreme seed are likely enough to set the interval's
    end."""
    out = []
    for c in cells:
        for key, name in (("final", "final return"), ("auc", "AUC")):
            est, seeds = c.get(key) or {}, c.get(f"per_seed_{key}") or []
            vals = [float(v) for v in seeds if v is not None and math.isfinite(v)]
            lo, hi = as_float(est.get("lo")), as_float(est.get("hi"))
            if len(vals) < 2 or math.isnan(lo):
                continue
            which = [
                side
                for side, bound, seed in (("lower", lo, min(vals)), ("upper", hi, max(vals)))
                if num(bound, 3) == num(seed, 3)
            ]
            if which:
                out.append(
                    {
                        "agent": c["agent"],
                        "env": c["env"],
                        "network": c["network"],
                        "metric": name,
                        "sides": which,
                        "seeds": len(vals),
                    }
                )
    return out


def extreme_bounds_sentence(cells: list[dict[str, Any]]) -> str:
    """Says once how many of the returns table's intervals end at the extreme seed."""
    rows = extreme_bounds(cells)
    if not rows:
        return ""
    total = sum(
        1
        for c in cells
        for key in ("final", "auc")
        if not math.isnan(as_float((c.get(key) or {}).get("lo")))
    )
    seeds = " or ".join(str(n) for n in sorted({r["seeds"] for r in rows}))
    which = "; ".join(
        f"{' and '.join(r['sides'])} bound of the {r['metric']} of {AGENT_NAMES[r['agent']]} "
        f"on {r['env']} with `{r['network']}`"
        for r in rows
    )
    return (
        f"In {len(rows)} of the table's {total} intervals a bound equals, to the digits shown, "
        f"the smallest or largest seed's value ({which}): with {seeds} seeds, resamples made "
        "mostly of the extreme seed are common enough to set the interval's end, so that bound "
        "says where the most extreme seed lies, not how far the IQM could go."
    )


def iqm_sentence(cells: list[dict[str, Any]]) -> str:
    """What the interquartile mean is with this run's seeds (SciPy's 25% trimmed mean)."""
    seeds = sorted({c["seeds"] for c in cells})
    parts = []
    for n in seeds:
        cut = int(0.25 * n)
        kept = n - 2 * cut
        parts.append(
            f"with {n} seeds it is the mean of all {n}"
            if cut == 0
            else f"with {n} seeds it drops the {cut} lowest and the {cut} highest and averages "
            f"the middle {kept}"
        )
    return (
        "The interquartile mean (IQM) is the 25% trimmed mean: "
        + "; ".join(parts)
        + ". The bootstrap interval of so few seeds is rough (it can only resample the seeds "
        "there are)."
    )


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
        " Values beyond ±1 are outside what a tanh output could give: a tanh on a value head "
        "could not fit them without rescaling the rewards to a range known in advance "
        "(exercise 3), which is why the heads stay linear and the bounded activation sits in "
        "the hidden layers."
        if any(beyond)
        else " At this budget the values have not yet grown beyond ±1; they would as the "
        "returns grow (a return of hundreds is a value of hundreds)."
    )
    return (
        "On the probe states, after training (each agent's first network; smallest and largest "
        "over seeds): " + "; ".join(parts) + "." + tail
    )


def untested_sentence(rows: list[dict[str, Any]]) -> str:
    """The paper's claims this run could not test (the networks they compare did not run)."""
    tested = {r["claim"] for r in rows}
    missing = [c for c in CLAIMS if c.key not in tested]
    if not missing:
        return ""
    return (
        "Not tested in this run, for want of the networks they compare: "
        + "; ".join(f"*{c.key}* (`{c.network}` against `{c.baseline}`)" for c in missing)
        + "."
    )


def defined_terms(cells: list[dict[str, Any]]) -> str:
    """One-clause definitions of the chapter's own words, before their first use: cell (with
    the run's seed count), representation layer, probe states, MinAtar where it ran."""
    seeds = " or ".join(str(n) for n in sorted({c["seeds"] for c in cells}))
    minatar = [e for e in dict.fromkeys(c["env"] for c in cells) if e.startswith("MinAtar")]
    text = (
        f"A *cell* is one agent × environment × network, trained with {seeds} seeds. The "
        "*representation layer* is the last hidden layer, the one the head reads; the "
        "diagnostics below measure it. The *probe states* are one fixed batch of states "
        "gathered by a random policy, the same for every agent and network, on which the "
        "trained networks are read."
    )
    if minatar:
        text += (
            f" *MinAtar* ({', '.join(minatar)}) is a set of miniature Atari games on a 10 × 10 "
            "grid, one input channel per kind of object."
        )
    return text


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
        "Three agents, each trained as an ensemble of seeds in one process: DQN (a *replay "
        "buffer*, a store of past transitions that each update samples from, and a *target "
        "network*, a lagged copy of the Q-network that computes the targets), PPO (an actor and "
        "a critic, clipped updates) and PQN (*parallelised Q-learning*: many environment copies "
        "step together and each batch of their transitions updates the Q-network directly, with "
        "*Q(λ)* targets, which mix the one-step bootstrap with the rewards of the following "
        "steps, weighted by λ; *LayerNorm*, which normalises each layer's pre-activations to "
        "zero mean and unit variance over its units, then scales and shifts them; no replay "
        "buffer, no target network). Their heads differ by what they output: "
        "DQN's and PQN's Q-values and PPO's critic are linear (a value can be any real number), "
        "PPO's actor ends in a softmax over actions (a probability). The hidden activation is "
        "what this chapter varies: ReLU, tanh, and tanh in a *Hadamard layer* "
        "$h = \\tanh(W_1 x + b_1) \\odot \\tanh(W_2 x + b_2)$, two branches multiplied unit by "
        "unit (Kooi, Hoogendoorn & François-Lavet, arXiv 2406.09079).",
        "",
        "Why a product? A tanh unit whose input sits far from 0 outputs ±1 whatever the state: "
        "its outgoing weight then acts as a fixed bias, and its gradient, $1 - \\tanh^2$, is "
        "near 0, so it barely learns its way back (a *saturated* unit, tanh's way of dying). "
        "A Hadamard unit is the product of two tanh units with their own weights. Its output is "
        "beyond ±0.99 only where *both* branches are, and while one branch is saturated the "
        "other still passes a gradient and still varies with the state (exercise 4). The "
        "product also lets a unit express a pairwise interaction of two features (a degree-2 "
        "term), so its layer's features can differ from a plain layer's before any training; "
        "the claims table below tests the difference at initialisation as well, to separate "
        "what comes with the architecture from what training does. The price: "
        "twice the weights in the layers it replaces.",
        "",
        defined_terms(cells),
        "",
        f"Scale of this run: {scale}. The paper trains for millions of frames on Atari; this is "
        "a classroom budget, and the verdicts below hold at this budget only.",
        "",
        heads_sentence(cells),
        "",
        "## How it was measured",
        "",
        *measured_list(results.summary, diagnostic_records(results)),
        "",
        "## Returns",
        "",
        "Every return in this chapter is that of a *training* episode, played with exploration "
        f"on ({exploration_sentence(results.summary)}): not a greedy evaluation of the learned "
        "policy, and not measured under the same exploration for every agent.",
        "",
        "![Return curves: interquartile mean over seeds with a 95% stratified-bootstrap band"
        + (
            "; each seed drawn alone where the seeds split ("
            + ", ".join(
                dict.fromkeys(
                    f"{AGENT_NAMES[r['agent']]} on {r['env']}" for r in collapse_rows(cells)
                )
            )
            + ")"
            if collapse_rows(cells)
            else ""
        )
        + "; each panel has its own y-range"
        + "".join(
            f"; {AGENT_NAMES[a]} on {e}'s curve starts at step {t:,.0f}, when its first "
            "episodes have ended"
            for (a, e), t in curve_starts(cells).items()
        )
        + "; x in thousands of environment steps per agent](figures/returns.png)",
        "",
        "| agent | environment | network | final return | AUC (mean return over training) | "
        "episodes (all seeds) | env steps/s |",
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
        "training; AUC: the mean of the return curve over training, the mean return over "
        "training (it says how high the returns were over the whole run, not how fast they "
        "rose). Both are interquartile means over seeds with "
        "95% stratified-bootstrap intervals. "
        + iqm_sentence(cells)
        + (" " + extreme_bounds_sentence(cells) if extreme_bounds_sentence(cells) else "")
        + " Env steps/s count every agent of the ensemble.",
        "",
        learning_sentence(
            cells,
            {
                (r["agent"], r["env"]): r["end_e"]
                for r in exploration_rows(results.summary)
                if "end_e" in r
            },
        ),
        "",
        "## The representation layer",
        "",
        EFFECTIVE_RANK,
        "",
        f"*At the end* means at the last diagnostic record, {end_steps_text(cells)}; "
        "*at initialisation* (start), before the first update.",
        "",
        "![The representation layer per cell: filled marker and bar, the mean over seeds and its "
        "95% t-interval at the last diagnostic record; open marker, set a little below the row, "
        "the mean at initialisation (no interval drawn)](figures/diagnostics.png)",
        "",
        "A unit is [*τ-dormant*](#term-dormant) when its mean absolute output over the probe "
        "states is at most τ times the layer's average (Sokar et al. 2023); τ = 0 counts the "
        "dead units only.",
        "",
        "| agent | environment | network | [dead](#term-dead) or [saturated](#term-saturated) "
        "units (end) | saturated share (start → end) | [τ-dormant](#term-dormant), τ = 0.1 "
        "(end) | effective rank "
        "(start → end) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        d = c["diagnostics"]
        off = d.get("saturated") or d.get("dead")
        kind = "saturated" if "saturated" in d else "dead" if "dead" in d else ""
        rank = d.get("effective_rank")
        share = d.get("saturated_share")
        rank_text = (
            f"{_ci_text(rank['start'], False)} → {_ci_text(rank['end'], False)}" if rank else "—"
        )
        share_text = (
            f"{_ci_text(share['start'], True)} → {_ci_text(share['end'], True)}" if share else "—"
        )
        out.append(
            f"| {AGENT_NAMES[c['agent']]} | {c['env']} | `{c['network']}` | "
            f"{(kind + ' ' + _ci_text(off['end'], True)) if off else '—'} | {share_text} | "
            f"{_ci_text(d.get('dormant_0.1', {}).get('end'), True)} | {rank_text} |"
        )
    out += [
        "",
        "Measured every few thousand steps, the first time at initialisation (start), on one "
        "fixed batch of states gathered by a random policy, the same for every agent and "
        "network; for PPO, in the actor (its critic has the same network, Hadamard layer "
        "included, and is not shown). Means over seeds with 95% t-intervals. A "
        "dead ReLU unit outputs 0 on every probe state; a saturated tanh unit has |h| > 0.99 "
        "on *every* probe state (its output is then a constant: the head reads it as a bias); "
        "the saturated share counts the (state, unit) pairs with |h| > 0.99, saturation state "
        "by state. The two columns are different quantities: a unit count against a share of "
        "pairs. The Hadamard layer is measured at its product (the representation the head "
        "reads), which is beyond 0.99 only where both its branches are. "
        + saturation_sentence(cells),
        "",
        "## The paper's claims at this scale",
        "",
        *claims_markdown(rows),
        "",
        f"Of {len(rows)} tests, {counts['reproduced']} reproduced the claimed direction, "
        f"{counts['not reproduced']} contradicted it and {counts['inconclusive']} were "
        f"inconclusive, at this run's scale ({scale}). "
        + (collapsed_claims_sentence(rows) + " " if collapsed_claims_sentence(rows) else "")
        + "A verdict compares two networks' seeds "
        "with [Welch's](#term-welch) 95% interval of the difference of *means* (not of the IQMs"
        " in the returns table): *reproduced* when the interval lies on the claimed side of 0, "
        "*not reproduced* when it lies on the other side, *inconclusive* when it holds 0. For a"
        " diagnostic, the same test at initialisation says whether the difference was already "
        "there before training (then it comes with the architecture), and the last column "
        "compares each seed's change from start to end: whether training *widened* the gap in "
        "the claimed direction, *narrowed* it, or left it within noise. "
        + architecture_sentence(rows)
        + " "
        + paired_sentence(rows),
        "",
        " ".join(
            t
            for t in (
                "**Confounds.** " + confounds_sentence(cells),
                "Returns are those of training episodes with exploration on, and the agents "
                f"explore differently ({exploration_sentence(results.summary)}): a return "
                "compared across agents carries their exploration too: a training episode at ε "
                "takes a share ε of random actions whatever the agent learned.",
                untested_sentence(rows),
                "An inconclusive cell here says the run was too short or had too few seeds to "
                "tell, not that the effect is absent.",
            )
            if t
        ),
        "",
        exercises_markdown(EXERCISES),
    ]
    return "\n".join(out)
