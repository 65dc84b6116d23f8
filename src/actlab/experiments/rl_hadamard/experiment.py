"""Experiment ``rl-hadamard``: DQN, PPO and PQN agents with plain, Hadamard and widened networks on
classic control and MinAtar, trained as ensembles over seeds, with representation diagnostics.

Grid: agent x environment x network x seed. A *cell* is one (agent, environment, network): its
seeds train together as one ensemble (:mod:`actlab.rl.ensemble`) and it is one chunk of the run
store, so a killed run loses at most the cell in progress. Networks are named ``ACT`` (plain),
``ACT-hadamard`` (the Hadamard layer at the paper's placement for the agent: the representation
layer for DQN and PPO, every hidden layer for PQN) and ``ACT-wide`` (plain, widened to the
Hadamard network's parameter count). PQN's networks carry LayerNorm before each activation.

Outputs (the summary): per cell, the return curve per seed on a common grid of environment steps
(:func:`actlab.rl.stats.return_curves`), the final return (the curve's last point) and the AUC
(its mean height) as an interquartile mean over seeds with a stratified-bootstrap 95% interval,
the diagnostics of the representation layer at the first and last record (mean over seeds with a
t-interval), and the speed of the cell.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress
from actlab.activations import get_activation
from actlab.experiments.base import (
    ChunkRunner,
    Results,
    check_config,
    check_ints,
    run_chunks,
    run_inline,
)
from actlab.rl.common import NetworkSpec, build_network
from actlab.rl.diagnostics import probe_batch
from actlab.rl.ensemble import ensemble_call, stack
from actlab.rl.envs import ENVIRONMENTS, is_minatar, make_env
from actlab.rl.stats import auc, interval_estimate, return_curves
from actlab.stats import mean_ci

__all__ = ["Config", "presets", "run", "AGENTS", "network_spec", "cells_of"]

AGENTS = ("dqn", "ppo", "pqn")
PLACEMENT = {"dqn": "last", "ppo": "last", "pqn": "all"}
"""The Hadamard layer's place per agent (the paper's for DQN and PQN; this project's for PPO,
see :mod:`actlab.rl.models`)."""
KINDS = ("", "hadamard", "wide")
DIAG_KEYS = (
    "saturated",
    "saturated_share",
    "dead",
    "dormant_0",
    "dormant_0.025",
    "dormant_0.1",
    "srank",
    "effective_rank",
)


@dataclass(frozen=True)
class Config:
    agents: tuple[str, ...] = ("dqn", "ppo", "pqn")
    """Agents (dqn, ppo, pqn)."""
    envs: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1", "MinAtar/Breakout-v1")
    """Environments (CartPole-v1, Acrobot-v1, MinAtar/{Asterix,Breakout,Freeway,Seaquest,
    SpaceInvaders}-v1)."""
    networks: tuple[str, ...] = ("relu", "tanh", "tanh-hadamard")
    """Networks: ACT, ACT-hadamard or ACT-wide for a registry activation ACT."""
    minatar_agents: tuple[str, ...] = ("pqn",)
    """Agents that also run the MinAtar environments of ``envs`` (the others skip them)."""
    seeds: int = 3
    """Seeds per cell (agents of one ensemble)."""
    classic_steps: int = 50_000
    """Environment steps per agent on classic control."""
    minatar_steps: int = 100_000
    """Environment steps (frames) per agent on MinAtar."""
    diag_every: int = 5_000
    """Environment steps between diagnostics (on a fixed probe batch)."""
    probe_size: int = 256
    """States in the probe batch."""
    curve_points: int = 50
    """Points of the common grid of environment steps the return curves are read at."""
    window: float = 0.1
    """Width of a return curve's window, as a share of the budget (episodes finished in it are
    averaged)."""
    bootstrap_reps: int = 2000
    """Replicates of the stratified bootstrap."""
    device: str = "cpu"
    """Where the agents' networks and buffers live (cpu, cuda, cuda:N; the environments and
    the random draws stay on the CPU); the results are the same to float rounding."""

    def __post_init__(self) -> None:
        check_config(self)
        check_ints(
            self,
            {
                "seeds": 1,
                "classic_steps": 1,
                "minatar_steps": 1,
                "diag_every": 0,
                "probe_size": 2,
                "curve_points": 2,
                "bootstrap_reps": 10,
            },
        )
        for key, valid in (("agents", AGENTS), ("minatar_agents", AGENTS), ("envs", ENVIRONMENTS)):
            bad = [v for v in getattr(self, key) if v not in valid]
            if bad or (key != "minatar_agents" and not getattr(self, key)):
                raise ValueError(f"{key} must be some of {', '.join(valid)}, got {bad or '()'}")
        for name in self.networks:
            network_spec(name, "dqn")  # raises on a bad name
        if not self.networks:
            raise ValueError("networks must name at least one network")
        if not 0 < self.window <= 1:
            raise ValueError(f"window must be in (0, 1], got {self.window}")
        for agent, env, net in cells_of(self):  # each agent checks its own settings now
            try:
                agent_config(agent, env, net, self)
            except ValueError as err:
                steps = "minatar_steps" if is_minatar(env) else "classic_steps"
                raise ValueError(f"{agent} on {env} ({steps}={budget(self, env)}): {err}") from None


def network_spec(name: str, agent: str) -> NetworkSpec:
    """``ACT``, ``ACT-hadamard`` or ``ACT-wide`` as the agent's :class:`NetworkSpec`."""
    act, _, kind = name.partition("-")
    if kind not in KINDS:
        raise ValueError(f"networks: {name!r} must be ACT, ACT-hadamard or ACT-wide")
    try:
        get_activation(act)
    except ValueError as err:
        raise ValueError(f"networks: {err}") from None
    placement = PLACEMENT[agent]
    return NetworkSpec(
        activation=act,
        hadamard="none" if not kind else placement,
        layer_norm=agent == "pqn",
        widened=kind == "wide",
    )


def cells_of(cfg: Config) -> list[tuple[str, str, str]]:
    """The (agent, env, network) cells of the grid, in run order."""
    out = []
    for env in cfg.envs:
        agents = [a for a in cfg.agents if not is_minatar(env) or a in cfg.minatar_agents]
        out += [(agent, env, net) for agent in agents for net in cfg.networks]
    return out


def budget(cfg: Config, env: str) -> int:
    return cfg.minatar_steps if is_minatar(env) else cfg.classic_steps


# ------------------------------------------------------------------------------ one cell
def agent_config(agent: str, env: str, net: str, cfg: Config) -> Any:
    """The agent's own Config for one cell: its reference settings (CleanRL's on classic control;
    MinAtar's DQN and purejaxql's PQN on MinAtar), the cell's environment, network, seeds and
    budget. DQN's learning starts after at most a tenth of the budget (CleanRL's 10k steps are a
    fiftieth of its 500k); the other schedules are already shares of the budget."""
    module = importlib.import_module(f"actlab.rl.{agent}")
    spec = network_spec(net, agent)
    if is_minatar(env) and spec.hadamard == "all":
        spec = dataclasses.replace(spec, hadamard="last")  # MinAtar's network: one dense layer
    steps = budget(cfg, env)
    common = dict(
        env_id=env,
        seeds=tuple(range(cfg.seeds)),
        network=spec,
        total_steps=steps,
        diag_every=cfg.diag_every,
        probe_size=cfg.probe_size,
        device=cfg.device,
    )
    if agent == "dqn":
        base = module.minatar_config(**common) if is_minatar(env) else module.Config(**common)
        return dataclasses.replace(base, learning_starts=min(base.learning_starts, steps // 10))
    if agent == "pqn" and is_minatar(env):
        return module.Config.minatar(**common)
    return module.Config(**common)


def steps_run(agent: str, env: str, net: str, cfg: Config) -> int:
    """Environment steps per agent that the cell's agent actually takes: PPO and PQN step in
    whole rollouts of ``copies x num_steps``, so a budget that is not a multiple is cut."""
    acfg = agent_config(agent, env, net, cfg)
    if agent == "dqn":
        return acfg.total_steps
    batch = acfg.copies * acfg.num_steps
    return acfg.total_steps // batch * batch


def run_cell(agent: str, env: str, net: str, cfg: Config) -> dict[str, Any]:
    """Train one cell's ensemble; its episodes, diagnostics, speed and what its heads output on
    the probe states at the end."""
    module = importlib.import_module(f"actlab.rl.{agent}")
    acfg = agent_config(agent, env, net, cfg)
    out = module.main(acfg)
    return {
        "returns": out.returns,
        "diagnostics": out.diagnostics,
        "speed": out.speed,
        "heads": head_outputs(agent, acfg, out.params, cfg.probe_size),
        "settings": cell_settings(acfg, out.params),
    }


def cell_settings(acfg: Any, params: dict) -> dict[str, Any]:
    """What differs between cells besides the activation, for the chapter's confounds: the
    parameters of one agent (all its networks: PPO's actor and critic), the Hadamard layer's
    place, LayerNorm, orthogonal initialisation (PQN's CleanRL init) and when learning starts."""
    return {
        "parameters": int(sum(v[0].numel() for v in params.values())),
        "hadamard": "none" if acfg.network.widened else acfg.network.hadamard,
        "layer_norm": bool(acfg.network.layer_norm),
        "orthogonal_init": bool(getattr(acfg, "orthogonal_init", False)),
        "learning_starts": int(getattr(acfg, "learning_starts", 0)),
    }


@torch.no_grad()
def head_outputs(agent: str, acfg: Any, params: dict, probe_size: int) -> dict[str, list]:
    """What the trained heads output on the probe states, per seed: for a Q-network (DQN, PQN)
    the smallest and largest Q-value; for PPO the critic's smallest and largest value and the
    actor's mean probability of its most likely action (a softmax: between 1/|A| and 1)."""
    probe = probe_batch(acfg.env_id, probe_size, 0)
    n_actions = int(make_env(acfg.env_id).action_space.n)
    E = len(acfg.seeds)
    x = probe.unsqueeze(0).expand(E, *probe.shape)

    def call(prefix: str, n_out: int) -> torch.Tensor:
        mine = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
        base, _ = stack([build_network(acfg.network, probe.shape[1:], n_out, acfg.hidden)])
        return ensemble_call(base, mine, x)

    if agent == "ppo":
        values = call("critic.", 1)
        probs = torch.softmax(call("actor.", n_actions), dim=-1)
        return {
            "value_min": values.amin(dim=(1, 2)).tolist(),
            "value_max": values.amax(dim=(1, 2)).tolist(),
            "top_probability": probs.amax(dim=-1).mean(dim=1).tolist(),
            "n_actions": n_actions,
        }
    q = call("", n_actions)
    return {"q_min": q.amin(dim=(1, 2)).tolist(), "q_max": q.amax(dim=(1, 2)).tolist()}


# ------------------------------------------------------------------------------ run
def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    cells = cells_of(cfg)
    work = {cell: steps_run(*cell, cfg) for cell in cells}
    progress.expect(sum(work.values()), unit="env step")
    # the cells are independent: a parallel runner (--backend ray) trains them side by side
    items = [
        (f"{a}/{e}/{n}", lambda a=a, e=e, n=n: run_cell(a, e, n, cfg), work[(a, e, n)])
        for a, e, n in cells
    ]
    parts = dict(zip(cells, run_chunks(chunks, items), strict=True))
    frames = []
    for (agent, env, net), part in parts.items():
        ret = part["returns"]
        frames.append(
            pd.DataFrame(
                {
                    "member": ret["member"],
                    "step": ret["env_step"],
                    "metric": "return/episode",
                    "value": ret["episode_return"],
                    "agent": agent,
                    "env": env,
                    "network": net,
                    "seed": ret["seed"],
                }
            )
        )
        diag = part["diagnostics"]
        if len(diag):
            frames.append(
                pd.DataFrame(
                    {
                        "member": diag["member"],
                        "step": diag["step"],
                        "metric": diag["metric"],
                        "value": diag["value"],
                        "agent": agent,
                        "env": env,
                        "network": net,
                        "seed": diag["seed"],
                    }
                )
            )
    metrics = pd.concat(frames, ignore_index=True)
    summary = {
        "config": dataclasses.asdict(cfg),
        "cells": [
            _cell_summary(cfg, agent, env, net, part) for (agent, env, net), part in parts.items()
        ],
    }
    return Results(metrics=metrics, summary=summary)


def _cell_summary(cfg: Config, agent: str, env: str, net: str, part: dict) -> dict[str, Any]:
    steps = steps_run(agent, env, net, cfg)
    grid = np.linspace(steps / cfg.curve_points, steps, cfg.curve_points)
    curves = return_curves(part["returns"], grid, cfg.window * steps)
    curves = curves.reindex(range(cfg.seeds))  # a seed with no finished episode: NaN row
    final = curves.iloc[:, -1].to_numpy()
    areas = np.array([auc(row) for row in curves.to_numpy()])
    diag = part["diagnostics"]
    rep = _representation_layer(diag)
    diags = {}
    for key in DIAG_KEYS:
        metric = f"{rep}/{key}"
        rows = diag[diag.metric == metric] if len(diag) else diag
        if not len(rows):
            continue
        first, last = rows.step.min(), rows.step.max()
        bounds = None if key in ("srank", "effective_rank") else (0.0, 1.0)
        diags[key] = {
            "start": mean_ci(rows[rows.step == first].sort_values("seed").value, bounds=bounds),
            "end": mean_ci(rows[rows.step == last].sort_values("seed").value, bounds=bounds),
            "per_seed_end": rows[rows.step == last].sort_values("seed").value.tolist(),
            "per_seed_start": rows[rows.step == first].sort_values("seed").value.tolist(),
            "steps": [int(first), int(last)],
        }
    finite = np.isfinite(final) & np.isfinite(areas)
    return {
        "agent": agent,
        "env": env,
        "network": net,
        "steps": steps,
        "seeds": cfg.seeds,
        "grid": grid.tolist(),
        "curves": [
            [None if not math.isfinite(v) else float(v) for v in row] for row in curves.to_numpy()
        ],
        "final": _estimate(final[finite], cfg),
        "auc": _estimate(areas[finite], cfg),
        "per_seed_final": [None if not math.isfinite(v) else float(v) for v in final],
        "per_seed_auc": [None if not math.isfinite(v) else float(v) for v in areas],
        "episodes": int(len(part["returns"])),
        "representation": rep,
        "diagnostics": diags,
        "speed": {k: float(v) for k, v in part["speed"].items()},
        "heads": part["heads"],
        "settings": part.get("settings", {}),
    }


def _estimate(values: np.ndarray, cfg: Config) -> dict[str, float]:
    if values.size == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    return interval_estimate(values, reps=cfg.bootstrap_reps, seed=0)


def _representation_layer(diag: pd.DataFrame) -> str:
    """The last hidden layer's prefix (``layerL``) among the diagnostics' metrics."""
    if not len(diag):
        return ""
    layers = {m.split("/")[0] for m in diag.metric.unique() if m.startswith("layer")}
    return max(layers, key=lambda s: int(s[len("layer") :])) if layers else ""


SMOKE = Config(
    agents=("dqn", "ppo", "pqn"),
    envs=("CartPole-v1",),
    networks=("tanh", "tanh-hadamard"),
    seeds=2,
    classic_steps=1_000,
    minatar_steps=1_000,
    diag_every=500,
    probe_size=32,
    curve_points=5,
    window=0.5,
    bootstrap_reps=200,
)
DEFAULT = Config(
    envs=("CartPole-v1", "MinAtar/Breakout-v1"),
    seeds=5,
    classic_steps=20_000,
    minatar_steps=40_000,
    diag_every=2_000,
)
FULL = Config(
    envs=(
        "CartPole-v1",
        "Acrobot-v1",
        "MinAtar/Asterix-v1",
        "MinAtar/Breakout-v1",
        "MinAtar/Freeway-v1",
        "MinAtar/Seaquest-v1",
        "MinAtar/SpaceInvaders-v1",
    ),
    networks=("relu", "tanh", "tanh-hadamard", "relu-hadamard", "tanh-wide"),
    minatar_agents=("dqn", "ppo", "pqn"),
    seeds=5,
    classic_steps=500_000,
    minatar_steps=5_000_000,
    diag_every=50_000,
    curve_points=100,
)
presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
