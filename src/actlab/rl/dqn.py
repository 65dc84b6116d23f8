"""DQN (Mnih et al. 2015) as an ensemble of E agents trained together, one env copy per agent.

The loop follows CleanRL's ``dqn.py`` (its CartPole settings are the defaults here, ``docs/
REFERENCES.md``, "Reference RL settings at CPU scale"): at every environment step t (0-based)

* each agent acts epsilon-greedily with ``epsilon_t = linear_schedule(start_e, end_e,
  exploration_fraction * total_steps, t)``, its coin and its random action drawn from its own
  generator;
* the transition ``(s, a, r, s', terminated)`` goes into the agent's own replay buffer, with
  ``s'`` the observation that followed the action (the episode's last one when it ended);
* when ``t > learning_starts`` and ``t % train_frequency == 0``, each agent samples a minibatch
  from its own buffer (with replacement, from its own generator) and takes one step on
  ``L_m = mean_b loss(Q_m(s_b, a_b), y_b)`` with the TD target (:func:`td_target`)
  ``y_b = r_b + gamma (1 - terminated_b) max_a Qbar_m(s'_b, a)`` from its target network Qbar_m;
* when ``t > learning_starts`` and ``t % target_network_frequency == 0`` the target networks
  move to ``tau theta + (1 - tau) theta_bar`` (``tau = 1``: a hard copy).

Only termination stops bootstrapping: a truncated episode (CartPole's 500-step limit) still
bootstraps from its last observation. MinAtar reports its time limits as terminations, so there
they do stop bootstrapping (as in MinAtar's own DQN).

Ensemble. The E agents' networks are stacked (:func:`actlab.rl.ensemble.stack`); every forward
is one batched call on ``(E, B, ...)``, the backward is that of ``sum_m L_m`` (agent m's loss
touches only its slice, so its gradient is its own), the optimizer is element-wise over the
stacked tensors and gradient clipping (off by default) is per agent. Agent m's initial weights,
environment, exploration and minibatches come from ``seeds[m]`` alone, so its numbers do not
depend on which other agents share the run (``tests/test_rl_dqn.py`` checks this bit for bit).

MinAtar. :func:`minatar_config` gives MinAtar's reference DQN settings (``examples/dqn.py``):
Huber loss, centred RMSprop, batch 32, replay 100k, train every step, target copy every 1000.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from actlab import progress
from actlab.rl.common import (
    AgentRun,
    Clock,
    Diagnostics,
    NetworkSpec,
    agent_generators,
    build_networks,
    check_agent_config,
    flushing_denormals,
    layer_gradients,
    linear_schedule,
    obs_shape_of,
    returns_frame,
)
from actlab.rl.ensemble import clip_grad_norm_per_member, ensemble_call, stack
from actlab.rl.envs import AgentEnvs, is_minatar

__all__ = [
    "Config",
    "ReplayBuffer",
    "explore",
    "main",
    "minatar_config",
    "td_loss",
    "td_target",
]

LOSSES = ("mse", "huber")
OPTIMIZERS = ("adam", "rmsprop")
RMSPROP = {"alpha": 0.95, "eps": 0.01, "momentum": 0.95, "centered": True}
"""MinAtar's DQN optimizer, besides its learning rate (``examples/dqn.py``)."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Config:
    """One DQN run: E agents (one per seed) with the same network and settings."""

    env_id: str = "CartPole-v1"
    """One of :data:`actlab.rl.envs.ENVIRONMENTS`."""
    seeds: tuple[int, ...] = (0,)
    """One seed per agent (distinct): its weights, environment, exploration and replay."""
    network: NetworkSpec = field(default_factory=lambda: NetworkSpec("relu"))
    """Activation and Hadamard placement: ``"none"`` or ``"last"`` (the paper's DQN placement,
    the representation layer). ReLU by default, as CleanRL's network."""
    hidden: tuple[int, ...] = (120, 84)
    """Hidden widths of the MLP torso (classic control); MinAtar's network ignores it."""
    total_steps: int = 500_000
    """Environment steps per agent."""
    learning_rate: float = 2.5e-4
    """Step size of the optimizer."""
    anneal_lr: bool = False
    """Anneal the learning rate linearly to 0 over ``total_steps`` (CleanRL's DQN does not)."""
    optimizer: str = "adam"
    """``"adam"`` (CleanRL) or ``"rmsprop"`` (MinAtar's centred RMSprop: alpha 0.95, eps 0.01,
    momentum 0.95)."""
    buffer_size: int = 10_000
    """Transitions each agent's replay buffer holds (a ring: the oldest is overwritten)."""
    batch_size: int = 128
    """Transitions per agent per update, sampled uniformly with replacement."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 1.0
    """Target update ``theta_bar <- tau theta + (1 - tau) theta_bar``; 1 is a hard copy."""
    target_network_frequency: int = 500
    """Environment steps between target updates (after ``learning_starts``)."""
    start_e: float = 1.0
    """Exploration rate epsilon at step 0."""
    end_e: float = 0.05
    """Exploration rate once annealed."""
    exploration_fraction: float = 0.5
    """Fraction of ``total_steps`` over which epsilon falls linearly from start_e to end_e."""
    learning_starts: int = 10_000
    """Updates happen at steps t > learning_starts only (the buffer fills with t + 1 first)."""
    train_frequency: int = 10
    """Environment steps between updates."""
    loss: str = "mse"
    """``"mse"`` (CleanRL) or ``"huber"`` (MinAtar; smooth L1 with beta 1)."""
    max_grad_norm: float | None = None
    """Per-agent gradient-norm clipping; None (the default) clips nothing, as CleanRL's and
    MinAtar's DQN, whose settings the defaults reproduce."""
    diag_every: int = 0
    """Environment steps between representation diagnostics; 0 takes none."""
    probe_size: int = 256
    """States in the diagnostics' probe batch."""
    device: str = "cpu"
    """Device of the networks, replay buffers and updates (environments stay on the CPU)."""

    def __post_init__(self) -> None:
        check_agent_config(self)
        if self.network.hadamard == "all":
            raise ValueError(
                "network.hadamard must be 'none' or 'last' for DQN (the paper's placement is the "
                "representation layer), got 'all'"
            )
        for name, minimum in [
            ("buffer_size", 1),
            ("batch_size", 1),
            ("target_network_frequency", 1),
            ("learning_starts", 0),
            ("train_frequency", 1),
        ]:
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        for name, low_open in [
            ("gamma", False),
            ("tau", True),
            ("start_e", False),
            ("end_e", False),
            ("exploration_fraction", False),
        ]:
            value = getattr(self, name)
            low_ok = value > 0 if low_open else value >= 0
            if not (low_ok and value <= 1):
                interval = "(0, 1]" if low_open else "[0, 1]"
                raise ValueError(f"{name} must be in {interval}, got {value!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be None or > 0, got {self.max_grad_norm!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a device name such as 'cpu', got {self.device!r}")


def minatar_config(env_id: str = "MinAtar/Breakout-v1", **overrides) -> Config:
    """MinAtar's reference DQN (``examples/dqn.py``), as far as this loop expresses it.

    Batch 32, replay 100k, learning from step 5000, one update per step, target copy every 1000
    steps, gamma 0.99, Huber loss, centred RMSprop (lr 2.5e-4, alpha 0.95, eps 0.01, momentum
    0.95), no clipping, 5M frames, epsilon 1 -> 0.1. One difference: MinAtar acts uniformly at
    random for its first 5000 frames and then anneals epsilon over the next 100k; here epsilon
    anneals from step 0 over ``105k / total_steps`` of the run, so it is 0.957 instead of 1 at
    step 5000 and meets 0.1 at the same step. ``overrides`` replace any field; a new
    ``total_steps`` rescales the exploration fraction to keep that 105k-step ramp.
    """
    total = overrides.get("total_steps", 5_000_000)
    settings = dict(
        env_id=env_id,
        total_steps=total,
        learning_rate=2.5e-4,
        optimizer="rmsprop",
        buffer_size=100_000,
        batch_size=32,
        gamma=0.99,
        target_network_frequency=1000,
        start_e=1.0,
        end_e=0.1,
        exploration_fraction=min(105_000 / total, 1.0) if _is_int(total) and total > 0 else 1.0,
        learning_starts=5000,
        train_frequency=1,
        loss="huber",
    )
    settings.update(overrides)
    return Config(**settings)


# --------------------------------------------------------------------------------------------
# Pure pieces


def td_target(rewards: Tensor, next_q: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """One-step Q-learning target ``y = r + gamma (1 - terminated) max_a Qbar(s', a)``.

    Args:
        rewards: ``(E, B)``.
        next_q: Target-network values of the successor states, ``(E, B, n_actions)``.
        terminated: ``(E, B)`` bool or 0/1: the transition ended the episode by termination
            (a truncation is not a terminal: it is passed as False and bootstraps).
        gamma: Discount factor.

    Returns:
        ``(E, B)``, the dtype of ``rewards``.
    """
    not_done = 1.0 - terminated.to(rewards.dtype)
    return rewards + gamma * not_done * next_q.max(dim=-1).values


def td_loss(q_taken: Tensor, target: Tensor, kind: str = "mse") -> Tensor:
    """Each agent's loss, the mean over its batch: ``L_m = (1/B) sum_b l(q_mb - y_mb)`` with
    ``l(d) = d^2`` (``"mse"``) or Huber ``l(d) = d^2 / 2 if |d| < 1 else |d| - 1/2``
    (``"huber"``, PyTorch's smooth L1 with beta 1).

    Args:
        q_taken: ``Q_m(s_b, a_b)``, ``(E, B)``.
        target: ``y_b``, ``(E, B)`` (not differentiated through).
        kind: ``"mse"`` or ``"huber"``.

    Returns:
        ``(E,)``.
    """
    if kind == "mse":
        per = F.mse_loss(q_taken, target, reduction="none")
    elif kind == "huber":
        per = F.smooth_l1_loss(q_taken, target, reduction="none", beta=1.0)
    else:
        raise ValueError(f"kind must be one of {LOSSES}, got {kind!r}")
    return per.mean(dim=-1)


def explore(
    generators: Sequence[torch.Generator], epsilon: float, n_actions: int
) -> tuple[Tensor, Tensor]:
    """Each agent's epsilon coin and random action, from its own generator.

    Agent m draws ``u_m ~ U[0, 1)`` then ``r_m ~ U{0, ..., n_actions - 1}`` from
    ``generators[m]``, both at every step whether or not it explores, so that its stream
    advances the same way in any ensemble.

    Returns:
        ``(explores, random_actions)``: ``(E,)`` bool ``u_m < epsilon`` and ``(E,)`` int64.
    """
    coins = torch.cat([torch.rand(1, generator=g) for g in generators])
    actions = torch.cat([torch.randint(n_actions, (1,), generator=g) for g in generators])
    return coins < epsilon, actions


class ReplayBuffer:
    """E agents' replay buffers, one ring of N transitions each, held as tensors.

    Storage: ``obs``, ``next_obs`` ``(E, N, *obs_shape)`` (``obs_dtype``: uint8 holds MinAtar's
    0/1 observations exactly in a quarter of the memory), ``actions`` ``(E, N)`` int64,
    ``rewards`` ``(E, N)`` float32, ``terminated`` ``(E, N)`` bool. Every agent adds one
    transition per step, so one write position ``pos`` and one ``size`` serve all of them.
    """

    def __init__(
        self,
        n_agents: int,
        capacity: int,
        obs_shape: Sequence[int],
        device: str | torch.device = "cpu",
        obs_dtype: torch.dtype = torch.float32,
    ):
        E, N = n_agents, capacity
        self.capacity = N
        self.obs = torch.zeros(E, N, *obs_shape, dtype=obs_dtype, device=device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros(E, N, dtype=torch.int64, device=device)
        self.rewards = torch.zeros(E, N, dtype=torch.float32, device=device)
        self.terminated = torch.zeros(E, N, dtype=torch.bool, device=device)
        self.pos = 0
        self.size = 0

    def add(
        self, obs: Tensor, next_obs: Tensor, actions: Tensor, rewards: Tensor, terminated: Tensor
    ) -> None:
        """Write one transition per agent (``(E, *obs_shape)``, ``(E,)``...) at ``pos``."""
        i = self.pos
        self.obs[:, i] = obs
        self.next_obs[:, i] = next_obs
        self.actions[:, i] = actions
        self.rewards[:, i] = rewards
        self.terminated[:, i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(
        self, generators: Sequence[torch.Generator], batch_size: int
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Agent m's batch: ``batch_size`` slots uniform over its ``size`` filled ones (with
        replacement), drawn from ``generators[m]``.

        Returns:
            ``obs (E, B, *obs_shape)`` float32, ``actions (E, B)``, ``rewards (E, B)``,
            ``next_obs (E, B, *obs_shape)`` float32, ``terminated (E, B)``.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        draws = [torch.randint(self.size, (batch_size,), generator=g) for g in generators]
        idx = torch.stack(draws).to(self.actions.device)  # (E, B)
        rows = torch.arange(idx.shape[0], device=idx.device).unsqueeze(1)  # (E, 1)
        return (
            self.obs[rows, idx].float(),
            self.actions[rows, idx],
            self.rewards[rows, idx],
            self.next_obs[rows, idx].float(),
            self.terminated[rows, idx],
        )


# --------------------------------------------------------------------------------------------
# The agent


@flushing_denormals
def main(cfg: Config) -> AgentRun:
    """Train ``len(cfg.seeds)`` DQN agents together; see the module docstring for the loop."""
    device = torch.device(cfg.device)
    E = len(cfg.seeds)
    envs = AgentEnvs(cfg.env_id, cfg.seeds, copies=1)
    try:
        obs = envs.reset()[:, 0]  # (E, *obs_shape): one copy per agent
        obs_shape = obs_shape_of(cfg.env_id, obs.unsqueeze(1))
        n_actions = envs.n_actions

        # Q-networks (stacked, trained) and target networks (a detached copy).
        nets = build_networks(cfg.network, cfg.seeds, obs_shape, n_actions, cfg.hidden, "q")
        base, params = stack(nets)
        params = {k: v.detach().to(device).requires_grad_() for k, v in params.items()}
        target = {k: v.detach().clone() for k, v in params.items()}
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(list(params.values()), lr=cfg.learning_rate)
        else:
            opt = torch.optim.RMSprop(list(params.values()), lr=cfg.learning_rate, **RMSPROP)

        obs_dtype = torch.uint8 if is_minatar(cfg.env_id) else torch.float32
        rb = ReplayBuffer(E, cfg.buffer_size, obs_shape, device, obs_dtype)
        explore_gens = agent_generators(cfg.seeds, "dqn-explore")
        replay_gens = agent_generators(cfg.seeds, "dqn-replay")

        labels = [
            {"agent": "dqn", "env": cfg.env_id, "network": cfg.network.label, "seed": s}
            for s in cfg.seeds
        ]
        diag = Diagnostics(
            cfg.env_id, cfg.network.activation, labels, cfg.diag_every, cfg.probe_size
        )
        clock = Clock()
        explore_steps = cfg.exploration_fraction * cfg.total_steps

        for step in range(cfg.total_steps):
            if diag.due(step):
                grads = layer_gradients(params) if clock.updates else None
                diag.record(step, base, params, grads)

            # Act: epsilon-greedy, each agent with its own coin and random action.
            epsilon = linear_schedule(cfg.start_e, cfg.end_e, explore_steps, step)
            explores, actions = explore(explore_gens, epsilon, n_actions)  # (E,), (E,)
            if not explores.all():
                with torch.no_grad():
                    q = ensemble_call(base, params, obs.to(device).unsqueeze(1))  # (E, 1, A)
                greedy = q[:, 0].argmax(dim=-1).cpu()
                actions = torch.where(explores, actions, greedy)
            out = envs.step(actions.unsqueeze(1))
            clock.env_steps += E

            # Store (s, a, r, s', terminated): s' is the episode's last observation where it
            # ended; a truncation is stored as not terminal, so its target bootstraps.
            rb.add(
                obs.to(device),
                out.final_obs[:, 0].to(device),
                actions.to(device),
                out.reward[:, 0].to(device),
                out.terminated[:, 0].to(device),
            )
            obs = out.obs[:, 0]

            if step > cfg.learning_starts and step % cfg.train_frequency == 0:
                if cfg.anneal_lr:
                    lr = linear_schedule(cfg.learning_rate, 0.0, cfg.total_steps, step)
                    for group in opt.param_groups:
                        group["lr"] = lr
                s, a, r, s_next, term = rb.sample(replay_gens, cfg.batch_size)
                with torch.no_grad():
                    y = td_target(r, ensemble_call(base, target, s_next), term, cfg.gamma)
                q_taken = ensemble_call(base, params, s).gather(-1, a.unsqueeze(-1)).squeeze(-1)
                loss = td_loss(q_taken, y, cfg.loss)  # (E,)
                opt.zero_grad()
                loss.sum().backward()  # each agent's gradient is that of its own loss
                if cfg.max_grad_norm is not None:
                    clip_grad_norm_per_member(params, cfg.max_grad_norm)
                opt.step()
                clock.updates += 1

            if step > cfg.learning_starts and step % cfg.target_network_frequency == 0:
                with torch.no_grad():
                    for name, p in params.items():
                        if cfg.tau == 1.0:
                            target[name].copy_(p)
                        else:
                            target[name].lerp_(p, cfg.tau)
            progress.advance(1)

        episodes = envs.pop_episodes()
    finally:
        envs.close()
    return AgentRun(
        returns=returns_frame(episodes, cfg.seeds),
        diagnostics=diag.frame(),
        speed=clock.speed(),
        params={k: v.detach().cpu() for k, v in params.items()},
    )
