"""PQN: parallelised Q-learning with LayerNorm, Q(lambda) returns, no replay, no target network.

Gallici et al. 2024 ("Simplifying Deep Temporal Difference Learning", arXiv 2407.04811), in the
shape of CleanRL's ``pqn.py`` (CartPole settings are the defaults of :class:`Config`; purejaxql's
MinAtar settings are :meth:`Config.minatar`). One iteration of an agent:

1. **Rollout.** K environment copies play ``num_steps`` steps epsilon-greedily on the current
   network (epsilon annealed linearly, each copy drawing its own exploration from the agent's
   generator).
2. **Q(lambda) targets**, from the Q-values of the rollout's parameters (no update happens during
   a rollout, so these are the acting-time Q-values; :func:`q_lambda_returns`).
3. **Updates.** ``update_epochs`` passes over the ``K * num_steps`` transitions in
   ``num_minibatches`` shuffled minibatches, each one RAdam step on the squared error
   ``(Q(s_t, a_t) - G_t)^2`` with the gradient clipped to norm ``max_grad_norm``.

The E = ``len(seeds)`` agents of a run train together (:mod:`actlab.rl.ensemble`): one forward
per step for all, one backward of the sum of their losses, per-agent clipping, per-agent
environments, exploration and minibatch order, so that an agent's numbers do not depend on the
agents beside it (``tests/test_rl_pqn.py`` checks it).

Truncations. CleanRL's target treats a truncated episode (CartPole's 500-step limit) like a
terminated one and bootstraps nothing. Here a truncated step bootstraps from its true successor,
the episode's last observation (``final_obs`` of :class:`actlab.rl.envs.Step`), and the lambda
chain is cut there: ``G_{t+1}`` belongs to the next episode, which is not a continuation of
this one. The same holds at the end of a rollout, where the chain is cut and ``max_a Q(s_T, a)``
is the bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

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
from actlab.rl.envs import AgentEnvs
from actlab.seeding import derive_seed

__all__ = [
    "Config",
    "orthogonal_init_",
    "q_lambda_returns",
    "epsilon_greedy",
    "q_loss",
    "main",
]


@dataclass(frozen=True)
class Config:
    """A PQN run: E agents (one per seed) on one environment, with one network spec."""

    env_id: str = "CartPole-v1"
    """Gymnasium id, one of :data:`actlab.rl.envs.ENVIRONMENTS`."""
    seeds: tuple[int, ...] = (0,)
    """One seed per agent (distinct): its initial weights, environments, exploration and
    minibatch order."""
    network: NetworkSpec = field(default_factory=lambda: NetworkSpec("relu", layer_norm=True))
    """The agents' network. PQN's is layer-normalised (LayerNorm before each activation);
    ``layer_norm=False`` is allowed as an ablation. The paper's Hadamard placement for PQN is
    ``hadamard="all"`` (each branch with its own LayerNorm); MinAtar takes ``"last"`` only."""
    hidden: tuple[int, ...] = (120, 84)
    """Hidden widths of the classic-control MLP (ignored on MinAtar)."""
    orthogonal_init: bool = True
    """Re-initialise every affine layer as CleanRL's ``pqn.py`` does (:func:`orthogonal_init_`:
    orthogonal weights of gain sqrt(2), zero biases); False keeps PyTorch's default
    initialisation of :func:`actlab.rl.common.build_networks`. Measured on CartPole (relu, LN,
    500k steps, seeds 0-5, ``end_e=0.05``), mean of the last 20 episodes: 500, 49, 500, 500,
    500, 500 with it
    (seed 1 held 500 from 350k to 450k steps, then fell in the last 50k) and 500, 321, 409, 374,
    263, 500 without; with it the returns also climb faster (episodes ending in 150k-200k:
    mean 285 vs 178)."""
    total_steps: int = 500_000
    """Environment steps per agent, over all its copies; rounded down to whole iterations of
    ``copies * num_steps``."""
    copies: int = 4
    """K, environment copies per agent (CleanRL CartPole: 4; purejaxql MinAtar: 128)."""
    num_steps: int = 128
    """T, steps of each copy per rollout (CleanRL CartPole: 128; purejaxql MinAtar: 32)."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide ``copies * num_steps``."""
    update_epochs: int = 4
    """Passes over each rollout's transitions."""
    learning_rate: float = 2.5e-4
    """RAdam's learning rate at the start."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the iterations (CleanRL's
    ``lr (1 - (i - 1) / n_iterations)`` at iteration i = 1..n)."""
    gamma: float = 0.99
    """Discount factor, in [0, 1]."""
    q_lambda: float = 0.65
    """lambda of the Q(lambda) returns, in [0, 1] (0: one-step Q-learning targets, 1: Monte
    Carlo returns within the rollout)."""
    start_e: float = 1.0
    """Exploration epsilon at step 0."""
    end_e: float = 0.2
    """Exploration epsilon after ``exploration_fraction * total_steps`` steps, then held.
    0.2 is purejaxql's CartPole value (CleanRL's ``pqn.py`` uses 0.05; MinAtar's settings,
    :meth:`minatar`, 0.05). Measured on CartPole (relu, LN, orthogonal init, 500k steps, seeds
    0-9), mean of the last 20 episodes: with 0.05, nine seeds end at 500 and seed 1, at 500 from
    350k to 485k steps, collapses to 49 in the last 15k (mean 455); with 0.2 every seed ends
    between 351 and 478 (mean 432): no late collapse, at the price of the return the extra random
    actions cost. A policy trained on its own near-perfect episodes only (no replay) stops seeing
    the states near failure; the random actions keep them in its data."""
    exploration_fraction: float = 0.5
    """Fraction of ``total_steps`` over which epsilon is annealed (CleanRL CartPole: 0.5;
    purejaxql MinAtar: 0.1)."""
    max_grad_norm: float = 10.0
    """Each agent's gradient is clipped to this norm before every step."""
    diag_every: int = 10_000
    """Environment steps (per agent) between representation diagnostics; 0 = none."""
    probe_size: int = 256
    """States in the diagnostics' probe batch."""
    device: str = "cpu"
    """Where the networks, rollout buffers and updates live (environments stay on the CPU)."""

    def __post_init__(self) -> None:
        check_agent_config(self)
        for name in ("copies", "num_steps", "num_minibatches", "update_epochs"):
            _check_int(name, getattr(self, name), 1)
        batch = self.copies * self.num_steps
        if self.total_steps < batch:
            raise ValueError(
                f"total_steps must be at least one rollout, copies * num_steps = {batch}, "
                f"got {self.total_steps}"
            )
        if batch % self.num_minibatches:
            raise ValueError(
                f"num_minibatches must divide copies * num_steps = {batch}, "
                f"got {self.num_minibatches}"
            )
        for name in ("gamma", "q_lambda", "start_e", "end_e", "exploration_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("learning_rate", "max_grad_norm"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        try:
            torch.device(self.device)
        except RuntimeError as err:
            raise ValueError(f"device must name a torch device, got {self.device!r}") from err

    @classmethod
    def minatar(cls, env_id: str = "MinAtar/Breakout-v1", **overrides) -> Config:
        """purejaxql's ``pqn_minatar.yaml`` settings at a CPU-sized budget: 128 copies x 32
        steps, 2 epochs x 32 minibatches, RAdam 5e-4 decayed, epsilon 1 -> 0.05 over the first
        10% of steps; ``overrides`` replace any field (e.g. ``total_steps``, ``seeds``)."""
        base = cls(
            env_id=env_id,
            total_steps=1_000_000,
            copies=128,
            num_steps=32,
            num_minibatches=32,
            update_epochs=2,
            learning_rate=5e-4,
            end_e=0.05,
            exploration_fraction=0.1,
        )
        return replace(base, **overrides)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Pure helpers


@torch.no_grad()
def orthogonal_init_(net: nn.Module, seed: int) -> nn.Module:
    """CleanRL's ``layer_init`` on every affine layer of ``net``, in place.

    Each ``nn.Linear`` and ``nn.Conv2d`` weight ``W`` (flattened to ``(out, in)``) becomes a
    random orthogonal matrix times ``sqrt(2)`` (``W W^T = 2 I`` when ``out <= in``, else
    ``W^T W = 2 I``), drawn in module order from one generator seeded
    ``derive_seed(seed, "pqn-init")``; every bias becomes 0. LayerNorm gains and biases stay 1
    and 0. Returns ``net``.
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, "pqn-init"))
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            weight = torch.empty(module.weight.shape)
            nn.init.orthogonal_(weight, gain=2**0.5, generator=gen)
            module.weight.copy_(weight)
            nn.init.zeros_(module.bias)
    return net


def q_lambda_returns(
    rewards: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    q_lambda: float,
) -> Tensor:
    """Peng's Q(lambda) returns of a rollout, computed backwards in time.

    ``G_t = r_t + gamma (1 - term_t) (v_t + lambda c_t (G_{t+1} - v_t))``, that is

    * ``r_t + gamma (lambda G_{t+1} + (1 - lambda) v_t)`` while the episode continues into step
      t + 1 of the rollout (``c_t = 1``);
    * ``r_t + gamma v_t`` where the chain is cut (``c_t = 0``): on a truncation (``v_t`` is then
      the value of the episode's last observation) and at the last step of the rollout;
    * ``r_t`` on a termination.

    ``v_t = max_a Q(s'_t, a)`` is the value of step t's successor ``s'_t`` (for a step that does
    not end its episode, the next state acted in, ``s_{t+1}``), and
    ``c_t = (not term_t) and (not trunc_t) and t < T - 1``.

    Args:
        rewards: ``(T, ...)`` r_t, time first; any trailing shape (e.g. ``(E, K)``).
        next_values: ``(T, ...)`` v_t.
        terminated: ``(T, ...)`` bool, the episode ended at step t in a terminal state.
        truncated: ``(T, ...)`` bool, the episode was cut at step t (time limit).
        gamma: Discount in [0, 1].
        q_lambda: lambda in [0, 1].

    Returns:
        ``(T, ...)`` G_t, the dtype of ``rewards``.
    """
    if not rewards.shape == next_values.shape == terminated.shape == truncated.shape:
        raise ValueError(
            "rewards, next_values, terminated and truncated must share one shape (T, ...), got "
            f"{tuple(rewards.shape)}, {tuple(next_values.shape)}, {tuple(terminated.shape)}, "
            f"{tuple(truncated.shape)}"
        )
    T = rewards.shape[0]
    alive = (~terminated).to(rewards.dtype)
    chained = (~(terminated | truncated)).to(rewards.dtype)
    returns = torch.empty_like(rewards)
    following = torch.zeros_like(rewards[0])  # G_{t+1}; multiplied by c_{T-1} = 0 at t = T - 1
    for t in reversed(range(T)):
        cont = chained[t] if t < T - 1 else torch.zeros_like(chained[t])
        v = next_values[t]
        following = rewards[t] + gamma * alive[t] * (v + q_lambda * cont * (following - v))
        returns[t] = following
    return returns


def epsilon_greedy(
    q: Tensor, epsilon: float, generators: Sequence[torch.Generator]
) -> tuple[Tensor, Tensor]:
    """Epsilon-greedy actions, agent m's exploration drawn from ``generators[m]`` only.

    For agent m and each of its K copies: explore with probability epsilon
    (``u < epsilon``, ``u ~ U[0, 1)``), then act uniformly at random, else
    ``argmax_a q[m, k, a]``. Agent m draws K uniforms then K random actions from its own
    generator, every call, whether or not they are used, so that its stream does not depend on
    the others (or on epsilon).

    Args:
        q: ``(E, K, n_actions)`` Q-values (any device).
        epsilon: Exploration probability in [0, 1].
        generators: E CPU generators.

    Returns:
        ``(actions, explored)``: ``(E, K)`` int64 actions and bool exploration flags, on the CPU.
    """
    E, K, n_actions = q.shape
    if len(generators) != E:
        raise ValueError(
            f"generators must hold one generator per agent ({E}), got {len(generators)}"
        )
    greedy = q.argmax(dim=-1).cpu()
    explored = torch.stack([torch.rand(K, generator=g) < epsilon for g in generators])
    random = torch.stack([torch.randint(n_actions, (K,), generator=g) for g in generators])
    return torch.where(explored, random, greedy), explored


def q_loss(q: Tensor, actions: Tensor, returns: Tensor) -> Tensor:
    """Each agent's mean squared error ``mean_b (Q(s_b, a_b) - G_b)^2``.

    Args:
        q: ``(E, B, n_actions)`` Q-values.
        actions: ``(E, B)`` int64 actions taken.
        returns: ``(E, B)`` targets G (no gradient flows into them).

    Returns:
        ``(E,)`` losses; their sum's gradient in agent m's parameters is agent m's own.
    """
    taken = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (E, B)
    return ((taken - returns.detach()) ** 2).mean(dim=1)


# --------------------------------------------------------------------------------------------
# The agent


@flushing_denormals
def main(cfg: Config) -> AgentRun:
    """Train ``len(cfg.seeds)`` PQN agents together; no I/O.

    Returns:
        :class:`~actlab.rl.common.AgentRun`: every finished episode, the diagnostics taken every
        ``cfg.diag_every`` steps, the speed (env steps over all agents and copies; updates =
        optimizer steps) and the final stacked parameters.
    """
    device = torch.device(cfg.device)
    seeds = list(cfg.seeds)
    E, K, T = len(seeds), cfg.copies, cfg.num_steps
    batch = K * T
    minibatch = batch // cfg.num_minibatches
    n_iterations = cfg.total_steps // batch
    members = torch.arange(E, device=device).unsqueeze(1)  # (E, 1), to index per-agent rows

    # environments, networks, optimiser, per-agent randomness
    envs = AgentEnvs(cfg.env_id, seeds, K)
    next_obs = envs.reset()  # (E, K, *obs)
    obs_shape = obs_shape_of(cfg.env_id, next_obs)
    n_actions = envs.n_actions
    nets = build_networks(cfg.network, seeds, obs_shape, n_actions, cfg.hidden, tag="pqn")
    if cfg.orthogonal_init:
        nets = [orthogonal_init_(net, seed) for net, seed in zip(nets, seeds, strict=True)]
    base, params = stack([net.to(device) for net in nets])
    optimizer = torch.optim.RAdam(list(params.values()), lr=cfg.learning_rate)
    explore_rngs = agent_generators(seeds, "pqn-explore")
    minibatch_rngs = agent_generators(seeds, "pqn-minibatch")

    labels = [
        {"agent": "pqn", "env": cfg.env_id, "network": cfg.network.label, "seed": s} for s in seeds
    ]
    diag = Diagnostics(cfg.env_id, cfg.network.activation, labels, cfg.diag_every, cfg.probe_size)
    clock = Clock()
    grads = None  # mean |gradient| per layer of the last update, for the diagnostics
    episodes = []

    # rollout storage, time first: (T, E, K, ...)
    obs = torch.zeros((T, E, K, *obs_shape), device=device)
    final_obs = torch.zeros((T, E, K, *obs_shape), device=device)
    actions = torch.zeros((T, E, K), dtype=torch.long, device=device)
    rewards = torch.zeros((T, E, K), device=device)
    terminated = torch.zeros((T, E, K), dtype=torch.bool, device=device)
    truncated = torch.zeros((T, E, K), dtype=torch.bool, device=device)

    step = 0  # environment steps per agent, over its K copies
    try:
        for iteration in range(n_iterations):
            if cfg.anneal_lr:
                lr = cfg.learning_rate * (1.0 - iteration / n_iterations)
                for group in optimizer.param_groups:
                    group["lr"] = lr

            # 1. rollout with the current parameters
            for t in range(T):
                if diag.due(step):
                    diag.record(step, base, params, grads)
                epsilon = linear_schedule(
                    cfg.start_e, cfg.end_e, cfg.exploration_fraction * cfg.total_steps, step
                )
                obs[t] = next_obs.to(device)
                with torch.no_grad():
                    q = ensemble_call(base, params, obs[t])  # (E, K, n_actions)
                action, _ = epsilon_greedy(q, epsilon, explore_rngs)
                result = envs.step(action)
                actions[t] = action.to(device)
                rewards[t] = result.reward.to(device)
                terminated[t] = result.terminated.to(device)
                truncated[t] = result.truncated.to(device)
                final_obs[t] = result.final_obs.to(device)
                next_obs = result.obs
                episodes.extend(envs.pop_episodes())
                step += K
                clock.env_steps += E * K
                progress.advance(K)  # env steps per agent

            # 2. Q(lambda) targets from the rollout's parameters (the acting-time Q-values):
            # v_t = max_a Q(s'_t, a) of every step's successor, in one forward
            with torch.no_grad():
                successors = final_obs.movedim(1, 0).reshape(E, batch, *obs_shape)
                v = ensemble_call(base, params, successors).max(dim=-1).values  # (E, T*K)
                next_values = v.reshape(E, T, K).movedim(0, 1)  # (T, E, K)
                returns = q_lambda_returns(
                    rewards, next_values, terminated, truncated, cfg.gamma, cfg.q_lambda
                )

            # 3. update_epochs passes of shuffled minibatches, each agent its own order
            b_obs = obs.movedim(1, 0).reshape(E, batch, *obs_shape)
            b_actions = actions.movedim(1, 0).reshape(E, batch)
            b_returns = returns.movedim(1, 0).reshape(E, batch)
            for epoch in range(cfg.update_epochs):
                order = torch.stack([torch.randperm(batch, generator=g) for g in minibatch_rngs])
                order = order.to(device)  # (E, batch)
                for start in range(0, batch, minibatch):
                    idx = order[:, start : start + minibatch]  # (E, M)
                    q = ensemble_call(base, params, b_obs[members, idx])  # (E, M, n_actions)
                    loss = q_loss(q, b_actions[members, idx], b_returns[members, idx])
                    optimizer.zero_grad()
                    loss.sum().backward()
                    if epoch == cfg.update_epochs - 1 and start + minibatch == batch:
                        grads = layer_gradients(params)  # before clipping: the raw gradient
                    clip_grad_norm_per_member(params, cfg.max_grad_norm)
                    optimizer.step()
                    clock.updates += 1

        if diag.due(step):
            diag.record(step, base, params, grads)
    finally:
        envs.close()

    return AgentRun(
        returns=returns_frame(episodes, seeds),
        diagnostics=diag.frame(),
        speed=clock.speed(),
        params={k: v.detach().cpu() for k, v in params.items()},
    )
