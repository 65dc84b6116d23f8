"""Learning checks of the RL agents (issue 15, "Learning checks and speed"); not in the fast suite.

Checks (each one ``main(cfg)`` call: the agent's default ``Config`` with ``seeds=(0, 1, 2)``,
E = 3 agents trained as one ensemble):

* CartPole-v1, relu network, 500k environment steps per agent: DQN, PPO and PQN each reach a
  mean return >= 400, where the mean is over the 3 seeds of each seed's last 20 episodes.
  (DQN's and PQN's defaults are relu already, PQN's with orthogonal init and LayerNorm; PPO's
  default is tanh, so its network is set to ``NetworkSpec("relu")``.)
* MinAtar Breakout, 1M frames per agent: PQN (``pqn.Config.minatar``) and DQN
  (``dqn.minatar_config``) rise *clearly* above a uniformly random policy measured in the same
  run with the same seeds (:class:`actlab.rl.envs.AgentEnvs`, the agents' own environment
  seeding). "Clearly", for every seed: the lower end of the 95% t-interval of the mean of the
  seed's last 100 episodes lies above the upper end of the 95% t-interval of the random policy's
  mean return on that seed's environments (non-overlapping intervals).

Representation diagnostics are switched off (``diag_every=0``): they do not change learning
(their probe batch comes from its own environment and seed) and only cost time.

Prints a table to stdout, progress to stderr; exits 1 if a check fails. Run with
``OMP_NUM_THREADS=1`` (``make check-rl`` does). Time on one core: CartPole ~3-5 min per agent,
MinAtar PQN ~10 min, MinAtar DQN (one update per frame, as MinAtar's reference) hours.

Usage::

    python scripts/check_rl.py                              # everything
    python scripts/check_rl.py --agents ppo,pqn --envs cartpole
    python scripts/check_rl.py --agents dqn --envs breakout --steps 10000   # a rate only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from actlab import progress
from actlab.rl import dqn, ppo, pqn
from actlab.rl.common import NetworkSpec
from actlab.rl.envs import AgentEnvs

AGENTS = ("dqn", "ppo", "pqn")
ENVS = {"cartpole": "CartPole-v1", "breakout": "MinAtar/Breakout-v1"}
DEFAULT_STEPS = {"cartpole": 500_000, "breakout": 1_000_000}
CARTPOLE_THRESHOLD = 400.0
CARTPOLE_LAST = 20
MINATAR_LAST = 100
RANDOM_STEPS = 20_000  # per seed: ~2,000 random Breakout episodes, a tight interval


class StderrReporter(progress.Reporter):
    """Prints ``label: done/total (rate, ETA)`` to stderr at most every ``every`` seconds."""

    def __init__(self, label: str, every: float = 30.0):
        super().__init__(label)
        self.every = every
        self.t0 = time.perf_counter()
        self.last = self.t0

    def refresh(self) -> None:
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 and self.total else float("nan")
        print(
            f"  {self.label}: {self.done:,.0f}/{self.total:,.0f} {self.unit}s per agent "
            f"({rate:,.0f}/s, ~{eta / 60:.1f} min left)",
            file=sys.stderr,
            flush=True,
        )


def config(agent: str, env: str, seeds: tuple[int, ...], steps: int):
    """The agent's default Config for ``env`` (see the module docstring)."""
    if env == "cartpole":
        common = dict(seeds=seeds, total_steps=steps, diag_every=0)
        if agent == "dqn":
            return dqn.Config(**common)
        if agent == "ppo":
            return ppo.Config(network=NetworkSpec("relu"), **common)
        return pqn.Config(**common)
    if agent == "dqn":
        return dqn.minatar_config(ENVS[env], seeds=seeds, total_steps=steps, diag_every=0)
    if agent == "pqn":
        return pqn.Config.minatar(ENVS[env], seeds=seeds, total_steps=steps, diag_every=0)
    raise ValueError(f"no {env} check for {agent!r} (MinAtar checks: dqn, pqn)")


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of the mean of ``x`` (a single value: a zero-width one)."""
    x = np.asarray(x, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def random_policy(env_id: str, seeds: tuple[int, ...], steps: int) -> dict[int, np.ndarray]:
    """Episode returns of a uniformly random policy, per seed, ``steps`` steps per seed."""
    envs = AgentEnvs(env_id, seeds)
    gen = torch.Generator().manual_seed(12345)
    returns: dict[int, list[float]] = {s: [] for s in seeds}
    try:
        envs.reset()
        for _ in range(steps):
            envs.step(torch.randint(envs.n_actions, (len(seeds), 1), generator=gen))
            for ep in envs.pop_episodes():
                returns[seeds[ep.agent]].append(ep.episode_return)
    finally:
        envs.close()
    return {s: np.array(r) for s, r in returns.items()}


def last_returns(run, seed: int, n: int) -> np.ndarray:
    """The last ``n`` episode returns of ``seed``'s agent (in the order they ended)."""
    df = run.returns[run.returns.seed == seed].sort_values("env_step", kind="stable")
    return df.episode_return.to_numpy()[-n:]


def peak(run, seed: int, n: int) -> tuple[float, int]:
    """The highest mean of ``n`` consecutive episodes of ``seed`` and the env step where that
    window ended (the curve's best point, to tell a collapse from never learning)."""
    df = run.returns[run.returns.seed == seed].sort_values("env_step", kind="stable")
    r = df.episode_return.to_numpy()
    if len(r) < n:
        return float(r.mean()) if len(r) else float("nan"), int(df.env_step.max() or 0)
    window = np.convolve(r, np.ones(n) / n, mode="valid")
    i = int(window.argmax())
    return float(window[i]), int(df.env_step.to_numpy()[i + n - 1])


def curve(run, seeds: tuple[int, ...], steps: int, points: int = 10) -> dict:
    """The learning curve in ``points`` equal slices of the run: per seed, the mean return of
    the episodes that ended in each slice (NaN where none did), keyed by the slice's end step."""
    edges = np.linspace(0, steps, points + 1)
    out = {}
    for s in seeds:
        df = run.returns[run.returns.seed == s]
        slot = np.clip(
            np.searchsorted(edges, df.env_step.to_numpy(), side="left") - 1, 0, points - 1
        )
        means = [df.episode_return.to_numpy()[slot == i] for i in range(points)]
        out[int(s)] = {
            int(edges[i + 1]): float(m.mean()) if len(m) else math.nan for i, m in enumerate(means)
        }
    return out


def run_check(agent: str, env: str, seeds: tuple[int, ...], steps: int) -> dict:
    """Train one ensemble and judge it; returns one result row."""
    cfg = config(agent, env, seeds, steps)
    label = f"{agent} {ENVS[env]}"
    print(f"[check-rl] {label}: {len(seeds)} agents x {steps:,} steps", file=sys.stderr)
    reporter = StderrReporter(label)
    reporter.expect(steps, unit="env step")
    with progress.reporting(reporter):
        run = {"dqn": dqn.main, "ppo": ppo.main, "pqn": pqn.main}[agent](cfg)
    row = {
        "agent": agent,
        "env": ENVS[env],
        "steps_per_agent": steps,
        "seeds": list(seeds),
        "seconds": run.speed["seconds"],
        "env_steps_per_s": run.speed["env_steps_per_s"],
        "updates_per_s": run.speed["updates_per_s"],
        "episodes": {int(s): int((run.returns.seed == s).sum()) for s in seeds},
        "curve": curve(run, seeds, steps),
    }
    if env == "cartpole":
        per_seed = {int(s): float(last_returns(run, s, CARTPOLE_LAST).mean()) for s in seeds}
        mean = float(np.mean(list(per_seed.values())))
        row["peak_last20"] = {int(s): peak(run, s, CARTPOLE_LAST) for s in seeds}
        row.update(
            criterion=f"mean over seeds of last-{CARTPOLE_LAST} mean >= {CARTPOLE_THRESHOLD:g}",
            per_seed=per_seed,
            value=mean,
            passed=bool(mean >= CARTPOLE_THRESHOLD),
        )
        return row
    rand = random_policy(ENVS[env], seeds, RANDOM_STEPS)
    per_seed, passed = {}, True
    for s in seeds:
        mean, low, _ = t_interval(last_returns(run, s, MINATAR_LAST))
        r_mean, _, r_high = t_interval(rand[s])
        ok = bool(low > r_high)
        passed &= ok
        per_seed[int(s)] = {
            "last100_mean": mean,
            "last100_low95": low,
            "random_mean": r_mean,
            "random_high95": r_high,
            "random_episodes": len(rand[s]),
            "passed": ok,
        }
    row.update(
        criterion=f"every seed: last-{MINATAR_LAST} 95% lower bound > random 95% upper bound",
        per_seed=per_seed,
        value=float(np.mean([v["last100_mean"] for v in per_seed.values()])),
        passed=passed,
    )
    return row


def format_row(row: dict) -> str:
    head = (
        f"{row['agent']:<4} {row['env']:<20} {row['steps_per_agent']:>9,} "
        f"{row['seconds'] / 60:>6.1f} {row['env_steps_per_s']:>8,.0f}  "
    )
    if row["env"] == ENVS["cartpole"]:
        seeds = " ".join(f"{v:6.1f}" for v in row["per_seed"].values())
        peaks = " ".join(f"{v:.0f}@{step // 1000}k" for v, step in row["peak_last20"].values())
        detail = f"last-20 per seed {seeds} | mean {row['value']:.1f} (>= 400) | peak {peaks}"
    else:
        detail = " | ".join(
            f"s{s}: {v['last100_mean']:.2f} [>{v['last100_low95']:.2f}] vs rnd "
            f"{v['random_mean']:.2f} [<{v['random_high95']:.2f}]"
            for s, v in row["per_seed"].items()
        )
    return head + detail + f"  {'PASS' if row['passed'] else 'FAIL'}"


def parse_list(text: str, valid, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in valid]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(bad) or '(none given)'}; valid: {', '.join(valid)}"
        )
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--agents",
        type=lambda t: parse_list(t, AGENTS, "agent"),
        default=list(AGENTS),
        help="comma-separated subset of dqn,ppo,pqn (default: all)",
    )
    parser.add_argument(
        "--envs",
        type=lambda t: parse_list(t, tuple(ENVS), "env"),
        default=list(ENVS),
        help="comma-separated subset of cartpole,breakout (default: both)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="environment steps per agent for every check run (default: 500k CartPole, 1M "
        "Breakout); a shorter run measures speed but is not the issue's check",
    )
    parser.add_argument(
        "--seeds", default="0,1,2", help="comma-separated agent seeds (default: 0,1,2)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds must be distinct, got {args.seeds!r}")

    plan = [
        (agent, env)
        for env in args.envs
        for agent in args.agents
        if env == "cartpole" or agent in ("dqn", "pqn")
    ]
    if not plan:
        parser.error("nothing to run: MinAtar checks exist for dqn and pqn only")
    print(f"[check-rl] torch threads: {torch.get_num_threads()}", file=sys.stderr)
    rows = []
    for agent, env in plan:
        steps = args.steps if args.steps is not None else DEFAULT_STEPS[env]
        rows.append(run_check(agent, env, seeds, steps))
        print(format_row(rows[-1]), file=sys.stderr, flush=True)

    print(f"{'agent':<4} {'env':<20} {'steps':>9} {'min':>6} {'steps/s':>8}  result")
    for row in rows:
        print(format_row(row))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    failed = [f"{r['agent']} {r['env']}" for r in rows if not r["passed"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
