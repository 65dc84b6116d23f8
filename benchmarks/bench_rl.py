"""Speed of the RL agents on CartPole-v1: ensemble vs alone vs stable-baselines3, as ratios.

Issue 15 ("Learning checks and speed"). Everything is measured in one run, and every result is
a ratio of two rates measured here (an absolute time depends on the machine; a ratio much less).
The unit is *agent-env-steps per second*: environment steps summed over the agents trained,
divided by the wall time of the calls that trained them (construction, environments and all).

For PPO, DQN and PQN (actlab's default CartPole ``Config``, diagnostics off, ``--steps`` per agent):

* **ensemble**: one ``main`` call with ``seeds=(0, ..., E-1)`` (E = 10 by default);
* **alone**: the same E agents, one ``main`` call each with ``seeds=(s,)``, one after another;
* **sb3**: stable-baselines3's PPO / DQN with the same hyper-parameters, one agent at a time,
  ``--sb3-seeds`` seeds (rate per agent-step, so fewer seeds extrapolate to E). PQN has no SB3
  counterpart.

Hyper-parameters mapped to SB3 (CleanRL's CartPole settings, which actlab's defaults are):
PPO ``n_envs=4, n_steps=128, batch_size=128`` (4 minibatches of 512), ``n_epochs=4,
gamma=0.99, gae_lambda=0.95, clip_range=0.2, clip_range_vf=0.2, ent_coef=0.01, vf_coef=0.5,
max_grad_norm=0.5``, lr ``2.5e-4`` linearly to 0, Adam eps 1e-5, ``ortho_init=False`` (actlab
uses PyTorch's default init), separate actor and critic MLPs ``(120, 84)`` with actlab's
activation (tanh). DQN: ``buffer_size=10_000, batch_size=128, learning_starts=10_000,
train_freq=10, gradient_steps=1, target_update_interval=500, tau=1, gamma=0.99, lr=2.5e-4,
exploration 1 -> 0.05 over half the run``, no gradient clipping, MLP ``(120, 84)`` relu, and
MSE TD loss (SB3's is Huber with no option: see :func:`_sb3_dqn_loss`). Both bootstrap from
truncated (time-limit) episodes.

``--learning``: the returns side by side (issue: actlab's must not be worse than SB3's, with
CIs): SB3 PPO and DQN and actlab's PPO and DQN, ``--learning-steps`` (100k) x 3 seeds each
(actlab as one ensemble of 3), mean of each seed's last 20 episodes, 95% t-interval over seeds.

``--profile``: cProfile of the E-agent PPO and DQN ensemble runs (``--profile-steps``), the
top functions by own time, to say what limits them.

Run with ``OMP_NUM_THREADS=1`` (``make bench-rl`` does); the thread count is recorded. The
issue's target: ensemble >= 3x SB3's agent-steps/s at E = 10 for PPO and DQN.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from actlab.rl import dqn, ppo, pqn

ENV_ID = "CartPole-v1"
AGENTS = ("ppo", "dqn", "pqn")
MAINS = {"ppo": ppo.main, "dqn": dqn.main, "pqn": pqn.main}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def actlab_config(agent: str, seeds: tuple[int, ...], steps: int):
    """actlab's default CartPole Config (CleanRL's settings), diagnostics off."""
    cls = {"ppo": ppo.Config, "dqn": dqn.Config, "pqn": pqn.Config}[agent]
    return cls(env_id=ENV_ID, seeds=seeds, total_steps=steps, diag_every=0)


def run_actlab(agent: str, seeds: tuple[int, ...], steps: int) -> dict:
    """One main call; its wall time, agent-env-steps and the per-seed last-20 returns."""
    t0 = time.perf_counter()
    run = MAINS[agent](actlab_config(agent, seeds, steps))
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "agent_steps": float(run.speed["env_steps"]),
        "updates": float(run.speed["updates"]),
        "last20": {int(s): last20(run.returns[run.returns.seed == s]) for s in seeds},
    }


def last20(df) -> float:
    r = df.sort_values("env_step", kind="stable").episode_return.to_numpy()[-20:]
    return float(r.mean()) if len(r) else float("nan")


def sb3_model(agent: str, seed: int, steps: int):
    """SB3's PPO or DQN with actlab's (CleanRL's) CartPole hyper-parameters (module docstring)."""
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env

    if agent == "ppo":
        cfg = ppo.Config()
        env = make_vec_env(ENV_ID, n_envs=cfg.copies, seed=seed)
        lr = cfg.learning_rate
        return PPO(
            "MlpPolicy",
            env,
            learning_rate=(lambda frac: lr * frac) if cfg.anneal_lr else lr,
            n_steps=cfg.num_steps,
            batch_size=cfg.num_steps * cfg.copies // cfg.num_minibatches,
            n_epochs=cfg.update_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_coef,
            clip_range_vf=cfg.clip_coef if cfg.clip_vloss else None,
            normalize_advantage=cfg.norm_adv,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            policy_kwargs=dict(
                net_arch=dict(pi=list(cfg.hidden), vf=list(cfg.hidden)),
                activation_fn=_activation(cfg.network.activation),
                ortho_init=False,
                optimizer_kwargs=dict(eps=cfg.adam_eps),
            ),
            seed=seed,
            device="cpu",
            verbose=0,
        )
    cfg = dqn.Config()
    _sb3_dqn_loss(cfg.loss)
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    return DQN(
        "MlpPolicy",
        env,
        learning_rate=cfg.learning_rate,
        buffer_size=cfg.buffer_size,
        learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size,
        tau=cfg.tau,
        gamma=cfg.gamma,
        train_freq=cfg.train_frequency,
        gradient_steps=1,
        target_update_interval=cfg.target_network_frequency,
        exploration_fraction=cfg.exploration_fraction,
        exploration_initial_eps=cfg.start_e,
        exploration_final_eps=cfg.end_e,
        max_grad_norm=math.inf,  # CleanRL's DQN clips nothing (actlab: max_grad_norm=None)
        policy_kwargs=dict(
            net_arch=list(cfg.hidden), activation_fn=_activation(cfg.network.activation)
        ),
        seed=seed,
        device="cpu",
        verbose=0,
    )


class _MSEFunctional:
    """``torch.nn.functional`` with ``smooth_l1_loss`` replaced by ``mse_loss``."""

    smooth_l1_loss = staticmethod(torch.nn.functional.mse_loss)

    def __getattr__(self, name: str):
        return getattr(torch.nn.functional, name)


def _sb3_dqn_loss(kind: str) -> None:
    """Give SB3's DQN actlab's TD loss. SB3 hard-codes Huber (``F.smooth_l1_loss`` in
    ``DQN.train``); with it, at CleanRL's settings, SB3's DQN stayed at a return of ~10 after
    100k steps on 3 seeds, with MSE (CleanRL's and actlab's default) it learns. SB3 has no
    option for the loss, so its module's ``F`` is swapped (checked against the source)."""
    import inspect

    import stable_baselines3.dqn.dqn as sb3_dqn

    if "F.smooth_l1_loss(" not in inspect.getsource(sb3_dqn.DQN.train):
        raise RuntimeError("SB3's DQN.train no longer calls F.smooth_l1_loss: update the patch")
    if kind == "mse":
        sb3_dqn.F = _MSEFunctional()
    elif kind == "huber":
        sb3_dqn.F = torch.nn.functional
    else:
        raise ValueError(f"no SB3 DQN loss for {kind!r}")


def _activation(name: str):
    table = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    if name not in table:
        raise ValueError(f"no SB3 activation for {name!r}; known: {', '.join(table)}")
    return table[name]


def run_sb3(agent: str, seed: int, steps: int) -> dict:
    """One SB3 agent trained for ``steps``; wall time (construction included) and last-20."""
    t0 = time.perf_counter()
    model = sb3_model(agent, seed, steps)
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - t0
    returns = [ep["r"] for ep in model.ep_info_buffer][-20:]
    model.get_env().close()
    return {
        "seconds": seconds,
        "agent_steps": float(model.num_timesteps),
        "last20": float(np.mean(returns)) if returns else float("nan"),
    }


def rate(runs: list[dict]) -> float:
    return sum(r["agent_steps"] for r in runs) / sum(r["seconds"] for r in runs)


def speed(agent: str, E: int, steps: int, sb3_seeds: int) -> dict:
    """Ensemble, alone and (PPO, DQN) SB3 rates for one agent, and their ratios."""
    seeds = tuple(range(E))
    # Warm-up, untimed: imports and first-call costs (vmap, kernels) fall on no measured run.
    run_actlab(agent, (0,), 1024)
    if agent in ("ppo", "dqn") and sb3_seeds > 0:
        run_sb3(agent, 0, 1024)
    log(f"[bench-rl] {agent}: ensemble of {E} x {steps:,} steps")
    ens = run_actlab(agent, seeds, steps)
    alone = []
    for s in seeds:
        log(f"[bench-rl] {agent}: alone, seed {s}")
        alone.append(run_actlab(agent, (s,), steps))
    out = {
        "ensemble_agent_steps_per_s": rate([ens]),
        "ensemble_updates_per_s": ens["updates"] / ens["seconds"],
        "alone_agent_steps_per_s": rate(alone),
        "ensemble_seconds": ens["seconds"],
        "alone_seconds": sum(r["seconds"] for r in alone),
    }
    out["ensemble_over_alone"] = out["ensemble_agent_steps_per_s"] / out["alone_agent_steps_per_s"]
    if agent in ("ppo", "dqn") and sb3_seeds > 0:
        sb3 = []
        for s in range(sb3_seeds):
            log(f"[bench-rl] {agent}: stable-baselines3, seed {s}")
            sb3.append(run_sb3(agent, s, steps))
        out["sb3_agent_steps_per_s"] = rate(sb3)
        out["sb3_seeds"] = sb3_seeds
        out["ensemble_over_sb3"] = out["ensemble_agent_steps_per_s"] / out["sb3_agent_steps_per_s"]
        out["alone_over_sb3"] = out["alone_agent_steps_per_s"] / out["sb3_agent_steps_per_s"]
    return out


def t_interval(x, level: float = 0.95) -> dict:
    x = np.asarray(x, dtype=float)
    mean = float(x.mean())
    half = (
        float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
        if len(x) > 1
        else float("nan")
    )
    return {"mean": mean, "low": mean - half, "high": mean + half, "per_seed": x.tolist()}


def welch_interval(x, y, level: float = 0.95) -> dict:
    """Mean difference ``x - y`` with its Welch t-interval (unequal variances)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    d = float(x.mean() - y.mean())
    se = math.sqrt(vx + vy)
    if se == 0:
        return {"mean": d, "low": d, "high": d}
    dof = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return {"mean": d, "low": d - half, "high": d + half}


def learning(steps: int, n_seeds: int) -> dict:
    """Mean last-20 returns of actlab and SB3 PPO / DQN, ``n_seeds`` seeds, t-intervals."""
    seeds = tuple(range(n_seeds))
    out = {}
    for agent in ("ppo", "dqn"):
        log(f"[bench-rl] learning: actlab {agent}, {n_seeds} seeds x {steps:,}")
        ours = run_actlab(agent, seeds, steps)["last20"]
        theirs = []
        for s in seeds:
            log(f"[bench-rl] learning: sb3 {agent}, seed {s}")
            theirs.append(run_sb3(agent, s, steps)["last20"])
        a, b = t_interval(list(ours.values())), t_interval(theirs)
        diff = welch_interval(a["per_seed"], b["per_seed"])
        # "Not worse": the 95% Welch interval of actlab - SB3 reaches 0 or above.
        out[agent] = {"actlab": a, "sb3": b, "difference": diff, "not_worse": diff["high"] >= 0}
    return out


# Where the time of a run goes: (label, file suffix, function name); cumulative times, so a
# part's share includes everything it calls (the parts do not call one another).
PROFILE_PARTS = (
    ("environment stepping (AgentEnvs.step)", "actlab/rl/envs.py", "step"),
    ("forward passes (ensemble_call)", "actlab/rl/ensemble.py", "ensemble_call"),
    ("backward (autograd)", "", "run_backward"),
    ("optimizer step", "torch/optim/optimizer.py", "wrapper"),
    ("replay buffer add / sample", "actlab/rl/dqn.py", "add"),
    ("replay buffer add / sample", "actlab/rl/dqn.py", "sample"),
)


def profile(agent: str, E: int, steps: int, top: int = 14) -> dict:
    """cProfile of one E-agent ensemble run: the share of the run's time in each part of
    :data:`PROFILE_PARTS` and the top functions by own (tottime) time."""
    MAINS[agent](actlab_config(agent, (0,), 1024))  # warm-up outside the profile
    prof = cProfile.Profile()
    prof.enable()
    MAINS[agent](actlab_config(agent, tuple(range(E)), steps))
    prof.disable()
    st = pstats.Stats(prof)
    total = max(st.total_tt, 1e-9)
    shares: dict[str, float] = {}
    calls: dict[str, int] = {}
    for (path, _, func), (_, ncalls, _, cumtime, _) in st.stats.items():
        for label, suffix, name in PROFILE_PARTS:
            # builtins such as {method 'run_backward' of ...} have no file: path "~"
            builtin = not suffix and path == "~" and f"'{name}'" in func
            if builtin or (func == name and path.replace(os.sep, "/").endswith(suffix)):
                shares[label] = shares.get(label, 0.0) + cumtime / total
                calls[label] = calls.get(label, 0) + ncalls
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return {"seconds": total, "shares": shares, "calls": calls, "top": buf.getvalue()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="ppo,dqn,pqn", help="subset of ppo,dqn,pqn")
    parser.add_argument("--ensemble", type=int, default=10, help="E, agents per ensemble")
    parser.add_argument("--steps", type=int, default=30_000, help="env steps per agent")
    parser.add_argument(
        "--sb3-seeds", type=int, default=3, help="SB3 agents per algorithm (0: skip SB3)"
    )
    parser.add_argument(
        "--learning", action="store_true", help="also the returns side by side with SB3"
    )
    parser.add_argument("--learning-steps", type=int, default=100_000)
    parser.add_argument("--learning-seeds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also cProfile PPO and DQN")
    parser.add_argument("--profile-steps", type=int, default=10_000)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    parser.add_argument("--json", type=Path, default=Path("bench-results/rl.json"))
    args = parser.parse_args(argv)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    bad = [a for a in agents if a not in AGENTS]
    if bad or not agents:
        parser.error(f"unknown agents {bad or '(none)'}; valid: {', '.join(AGENTS)}")
    for name in ("ensemble", "steps", "learning_steps", "profile_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.sb3_seeds < 0 or args.learning_seeds < 2:
        parser.error("--sb3-seeds must be >= 0 and --learning-seeds >= 2 (an interval)")
    if (args.sb3_seeds or args.learning) and any(a in agents for a in ("ppo", "dqn")):
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            parser.error('stable-baselines3 is missing: pip install -e ".[bench]"')

    result = {
        "env_id": ENV_ID,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "ensemble": args.ensemble,
        "steps_per_agent": args.steps,
    }
    log(f"[bench-rl] torch threads {result['torch_threads']}, E = {args.ensemble}")
    if not args.no_speed:
        result["speed"] = {a: speed(a, args.ensemble, args.steps, args.sb3_seeds) for a in agents}
        print(
            f"\nCartPole-v1 speed, agent-env-steps/s ratios, E = {args.ensemble}, "
            f"{args.steps:,} steps per agent, {result['torch_threads']} thread(s)"
        )
        print(
            f"{'agent':<5} {'ens/alone':>10} {'ens/sb3':>8} {'alone/sb3':>10} "
            f"{'updates/s (ens)':>16}"
        )
        for a, r in result["speed"].items():
            print(
                f"{a:<5} {r['ensemble_over_alone']:>10.2f} "
                f"{r.get('ensemble_over_sb3', float('nan')):>8.2f} "
                f"{r.get('alone_over_sb3', float('nan')):>10.2f} "
                f"{r['ensemble_updates_per_s']:>16.1f}"
            )
    if args.learning:
        result["learning"] = learning(args.learning_steps, args.learning_seeds)
        result["learning_steps"] = args.learning_steps
        print(
            f"\nCartPole-v1 mean last-20 return, {args.learning_steps:,} steps, "
            f"{args.learning_seeds} seeds, 95% t-interval over seeds"
        )
        for a, r in result["learning"].items():
            row = "  ".join(
                f"{who} {r[who]['mean']:6.1f} [{r[who]['low']:6.1f}, {r[who]['high']:6.1f}]"
                for who in ("actlab", "sb3")
            )
            d = r["difference"]
            verdict = "not worse" if r["not_worse"] else "WORSE"
            print(
                f"{a:<4} {row}  diff {d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}] {verdict}"
            )
    if args.profile:
        result["profile"] = {}
        for a in [a for a in agents if a in ("ppo", "dqn")]:
            prof = profile(a, args.ensemble, args.profile_steps)
            result["profile"][a] = prof
            print(
                f"\ncProfile, {a}, E = {args.ensemble}, {args.profile_steps:,} steps per agent, "
                f"{prof['seconds']:.1f} s under the profiler"
            )
            for label, share in sorted(prof["shares"].items(), key=lambda kv: -kv[1]):
                per_call = prof["seconds"] * share / max(prof["calls"][label], 1) * 1e6
                print(
                    f"  {share:6.1%}  {label}  ({prof['calls'][label]:,} calls, "
                    f"{per_call:,.0f} us each)"
                )
            print(prof["top"])
    # Parts run separately (--no-speed --learning) update the file instead of replacing it.
    previous = json.loads(args.json.read_text()) if args.json.exists() else {}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**previous, **result}, indent=2))
    log(f"[bench-rl] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
