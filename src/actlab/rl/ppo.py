"""PPO (clipped surrogate, GAE, value clipping, entropy bonus, annealed rate) for an ensemble.

The algorithm and its defaults are CleanRL's ``ppo.py`` for classic control (4 environment copies
per agent, 128 steps per rollout, GAE with gamma 0.99 and lambda 0.95, 4 epochs of 4 minibatches,
clip 0.2 on the ratio and on the value, entropy 0.01, value coefficient 0.5, gradient norm 0.5,
Adam 2.5e-4 with eps 1e-5 annealed linearly to 0, advantages normalised per minibatch). E agents,
one per seed, train together: every forward is one :func:`~actlab.rl.ensemble.ensemble_call` on
``(E, B, ...)`` inputs and one backward of the sum of the E agents' losses gives each agent its
own gradient (agent m's loss only touches its own parameter slice).

Actor and critic: two separate networks, each :func:`~actlab.rl.common.build_network` of the run's
:class:`~actlab.rl.common.NetworkSpec` (actor head: one logit per action, ``softmax`` gives the
categorical policy; critic head: one linear value). Separate rather than a shared torso because
that is CleanRL's classic-control design (its shared torso is for Atari only), it needs no
weighting of two losses on one representation, and with a Hadamard placement (``"last"``) each
network's representation layer is Hadamard, so the actor's representation -- the one that chooses
actions -- is measured exactly as DQN's and PQN's are. Both are initialised with PyTorch's default
initialisation (the networks of :mod:`actlab.rl.models`), not CleanRL's orthogonal one with a
0.01-scaled policy head; the policy starts a little further from uniform.

Truncation. An episode cut by a time limit (``truncated``) is not a terminal state: its last
step bootstraps from the critic's value of the observation that ended it (``final_obs`` of
:class:`~actlab.rl.envs.AgentEnvs`), and the GAE trace stops there because the next observation
belongs to a new episode. CleanRL treats truncation like termination (no bootstrap), which
biases the value of states near CartPole's 500-step limit downwards; doing it right costs one
critic forward over the successor states of the rollout.

Randomness: agent m's initial weights come from ``derive_seed(seeds[m], "actor" / "critic")``,
its environments from its seed (:class:`~actlab.rl.envs.AgentEnvs`), its actions and minibatch
permutations from its own generators (:func:`~actlab.rl.common.agent_generators`, tags
``"ppo-action"`` and ``"ppo-minibatch"``). Generators live on the CPU: actions are drawn from the
policy's probabilities moved to the CPU (they go to the environments anyway) and permutations
are drawn there, so that a run on another device draws the same numbers.

Diagnostics (:class:`~actlab.rl.common.Diagnostics`) read both networks on one probe batch: the
actor's under the usual keys (``layer{l}/...``, ``hidden.0.linear.weight/grad_mean_abs``, ...,
the keys DQN and PQN report), the critic's under the same keys prefixed ``critic/``.

Not included: CleanRL's optional early stop on a target KL (off by default there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from actlab.progress import advance
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

__all__ = ["Config", "main", "gae", "categorical_logprob_entropy", "ppo_losses", "sample_actions"]

ADV_EPS = 1e-8
"""Added to the advantages' standard deviation when they are normalised (CleanRL's value)."""


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name: str, value: object, low: float, high: float = math.inf, *, open_low=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        side = "(" if open_low else "["
        upper = "inf)" if high == math.inf else f"{high:g}]"
        raise ValueError(f"{name} must be a number in {side}{low:g}, {upper}, got {value!r}")


@dataclass(frozen=True)
class Config:
    """An ensemble PPO run: one agent per seed, all with the same network and settings."""

    env_id: str = "CartPole-v1"
    """One of :data:`actlab.rl.envs.ENVIRONMENTS`."""
    seeds: tuple[int, ...] = (0,)
    """One agent per seed (distinct); E = len(seeds) agents train together."""
    network: NetworkSpec = NetworkSpec()
    """Activation and Hadamard placement of both the actor and the critic (tanh, as CleanRL)."""
    hidden: tuple[int, ...] = (120, 84)
    """Hidden widths of the classic-control MLPs (MinAtar uses its reference network)."""
    total_steps: int = 500_000
    """Environment steps per agent, over all its copies; a whole number of rollouts is run
    (``total_steps // (num_steps * copies)``), at least one."""
    copies: int = 4
    """Environment copies per agent (CleanRL's ``num_envs``)."""
    num_steps: int = 128
    """Steps per copy in one rollout; a rollout holds ``num_steps * copies`` transitions."""
    learning_rate: float = 2.5e-4
    """Adam's step size at the start."""
    anneal_lr: bool = True
    """Anneal the step size linearly to 0 over the rollouts (one schedule for every agent)."""
    adam_eps: float = 1e-5
    """Adam's epsilon (CleanRL's, not PyTorch's 1e-8)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide ``num_steps * copies``."""
    update_epochs: int = 4
    """Passes over each rollout."""
    norm_adv: bool = True
    """Normalise the advantages within each minibatch (per agent)."""
    clip_coef: float = 0.2
    """Clip range of the probability ratio, and of the value change with ``clip_vloss``."""
    clip_vloss: bool = True
    """Clip the value loss as CleanRL does (max of clipped and unclipped squared errors)."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Each agent's gradient (actor and critic together) is clipped to this norm."""
    diag_every: int = 10_000
    """Environment steps per agent between diagnostics (the first at step 0); 0 = none."""
    probe_size: int = 256
    """States in the diagnostics' probe batch."""
    device: str = "cpu"
    """Device of the networks, rollout buffers and updates (environments stay on the CPU)."""

    def __post_init__(self) -> None:
        check_agent_config(self)
        for name in ("copies", "num_steps", "num_minibatches", "update_epochs"):
            _check_int(name, getattr(self, name), 1)
        rollout = self.num_steps * self.copies
        _check_int("total_steps", self.total_steps, rollout)  # at least one rollout
        if rollout % self.num_minibatches:
            raise ValueError(
                f"num_minibatches ({self.num_minibatches}) must divide num_steps * copies "
                f"({rollout})"
            )
        if self.norm_adv and rollout // self.num_minibatches < 2:
            raise ValueError(
                "minibatches of one transition cannot be normalised: num_steps * copies / "
                "num_minibatches must be >= 2 with norm_adv=True"
            )
        _check_float("learning_rate", self.learning_rate, 0.0, open_low=True)
        _check_float("adam_eps", self.adam_eps, 0.0, open_low=True)
        _check_float("gamma", self.gamma, 0.0, 1.0)
        _check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        _check_float("clip_coef", self.clip_coef, 0.0, open_low=True)
        _check_float("ent_coef", self.ent_coef, 0.0)
        _check_float("vf_coef", self.vf_coef, 0.0)
        _check_float("max_grad_norm", self.max_grad_norm, 0.0, open_low=True)
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must name a torch device, got {self.device!r}") from err


# --------------------------------------------------------------------------------------------
# Pure helpers


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates (Schulman et al. 2016) with terminations and truncations.

    With ``s'_{t+1}`` the state that followed step t (the last state of its episode if the
    episode ended there), ``term_t`` and ``done_t = term_t or trunc_t``:

    ``delta_t = r_t + gamma (1 - term_t) V(s'_{t+1}) - V(s_t)``
    ``A_t = delta_t + gamma lam (1 - done_t) A_{t+1}``, ``A_T = 0``
    ``G_t = A_t + V(s_t)`` (the critic's target)

    so ``A_t = sum_{l=0}^{n-1} (gamma lam)^l delta_{t+l}``, n the steps from t to the end of the
    episode or of the rollout. A truncated step bootstraps from ``V(s'_{t+1})``; a terminated
    one does not; both stop the trace.

    Args:
        rewards, values, next_values: ``(T, ...)``: ``r_t``, ``V(s_t)``, ``V(s'_{t+1})``.
        terminated, truncated: ``(T, ...)`` bool.
        gamma, lam: Discount and GAE lambda.

    Returns:
        ``(advantages, returns)``, both ``(T, ...)``.
    """
    not_terminal = 1.0 - terminated.to(rewards.dtype)
    not_done = 1.0 - (terminated | truncated).to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * not_terminal[t] * next_values[t] - values[t]
        last = delta + gamma * lam * not_done[t] * last
        advantages[t] = last
    return advantages, advantages + values


def categorical_logprob_entropy(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """``log pi(a | s)`` and ``H(pi(. | s)) = -sum_a pi(a) log pi(a)`` of ``pi = softmax(logits)``.

    Args:
        logits: ``(..., n_actions)``.
        actions: ``(...)`` integer actions.

    Returns:
        ``(logprob, entropy)``, both ``(...)``.
    """
    logp = F.log_softmax(logits, dim=-1)
    logprob = logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return logprob, entropy


def sample_actions(logits: Tensor, uniforms: Tensor) -> Tensor:
    """One action per state from ``softmax(logits)`` by the inverse CDF of a uniform draw.

    ``a = #{i < n_actions - 1 : c_i <= u}`` with ``c_i = p_0 + ... + p_i`` the cumulative
    probabilities: action ``i`` exactly when ``c_{i-1} <= u < c_i``, so with ``u ~ U[0, 1)`` it
    has probability ``p_i``. The last action takes what rounding leaves above ``c_{n-2}``.

    Args:
        logits: ``(E, K, n_actions)`` on any device.
        uniforms: ``(E, K)`` draws from ``U[0, 1)`` on the CPU, row m from agent m's generator.

    Returns:
        ``(E, K)`` int64 actions on the CPU.
    """
    cdf = torch.softmax(logits.detach(), dim=-1).cpu().cumsum(-1)[..., :-1]  # (E, K, n - 1)
    return (cdf <= uniforms.unsqueeze(-1)).sum(-1)


def ppo_losses(
    new_logprob: Tensor,
    old_logprob: Tensor,
    advantages: Tensor,
    new_value: Tensor,
    old_value: Tensor,
    returns: Tensor,
    clip_coef: float,
    clip_vloss: bool = True,
    norm_adv: bool = True,
) -> tuple[Tensor, Tensor]:
    """Per-agent clipped policy loss and value loss on one minibatch, averaged over it.

    With ``rho = exp(log pi_new(a|s) - log pi_old(a|s))`` and the advantages ``A`` (normalised
    per agent, ``(A - mean) / (std + 1e-8)`` with the unbiased std, when ``norm_adv``):

    ``L_pi = mean_b max(-A rho, -A clip(rho, 1 - c, 1 + c))``
    ``L_V = 1/2 mean_b max((V - G)^2, (V_old + clip(V - V_old, -c, c) - G)^2)`` with
    ``clip_vloss``, else ``1/2 mean_b (V - G)^2``.

    Args:
        new_logprob, old_logprob, advantages, new_value, old_value, returns: ``(E, B)``.
        clip_coef: c.
        clip_vloss, norm_adv: As in :class:`Config`.

    Returns:
        ``(L_pi, L_V)``, each ``(E,)``.
    """
    if norm_adv:
        mean = advantages.mean(dim=1, keepdim=True)
        advantages = (advantages - mean) / (advantages.std(dim=1, keepdim=True) + ADV_EPS)
    ratio = (new_logprob - old_logprob).exp()
    clipped_ratio = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
    pg_loss = torch.max(-advantages * ratio, -advantages * clipped_ratio).mean(dim=1)
    v_loss = (new_value - returns) ** 2
    if clip_vloss:
        v_clipped = old_value + (new_value - old_value).clamp(-clip_coef, clip_coef)
        v_loss = torch.max(v_loss, (v_clipped - returns) ** 2)
    return pg_loss, 0.5 * v_loss.mean(dim=1)


# --------------------------------------------------------------------------------------------
# The agent


@flushing_denormals
def main(cfg: Config) -> AgentRun:
    """Train ``len(cfg.seeds)`` PPO agents together; their returns, diagnostics and weights."""
    E, K, T = len(cfg.seeds), cfg.copies, cfg.num_steps
    batch = T * K  # transitions per agent and rollout
    minibatch = batch // cfg.num_minibatches
    num_iterations = cfg.total_steps // batch
    device = torch.device(cfg.device)

    envs = AgentEnvs(cfg.env_id, cfg.seeds, K)
    next_obs = envs.reset()  # (E, K, *obs)
    obs_shape = obs_shape_of(cfg.env_id, next_obs)

    def stacked(n_outputs: int, tag: str):
        nets = build_networks(cfg.network, cfg.seeds, obs_shape, n_outputs, cfg.hidden, tag)
        base, params = stack(nets)
        return base, {k: v.detach().to(device).requires_grad_() for k, v in params.items()}

    actor_base, actor = stacked(envs.n_actions, "actor")  # logits (E, B, n_actions)
    critic_base, critic = stacked(1, "critic")  # values (E, B, 1)
    # One dict over both networks: one optimizer, and each agent's clipping norm covers its actor
    # and its critic together, as CleanRL clips agent.parameters().
    params = {f"actor.{k}": v for k, v in actor.items()}
    params.update({f"critic.{k}": v for k, v in critic.items()})
    optimizer = torch.optim.Adam(list(params.values()), lr=cfg.learning_rate, eps=cfg.adam_eps)
    action_gens = agent_generators(cfg.seeds, "ppo-action")
    batch_gens = agent_generators(cfg.seeds, "ppo-minibatch")

    labels = [
        {"agent": "ppo", "env": cfg.env_id, "network": cfg.network.label, "seed": s}
        for s in cfg.seeds
    ]
    activation = cfg.network.activation
    diag_actor = Diagnostics(cfg.env_id, activation, labels, cfg.diag_every, cfg.probe_size)
    diag_critic = Diagnostics(cfg.env_id, activation, labels, cfg.diag_every, cfg.probe_size)
    diag_actor.probe = diag_actor.probe.to(device)
    diag_critic.probe = diag_critic.probe.to(device)

    clock = Clock()

    def diagnose(step: int) -> None:
        updated = clock.updates > 0  # gradients of the last update, none before the first
        for diag, base, net in (
            (diag_actor, actor_base, actor),
            (diag_critic, critic_base, critic),
        ):
            diag.record(step, base, net, layer_gradients(net) if updated else None)

    members = torch.arange(E, device=device).unsqueeze(1)  # (E, 1): picks each agent's rows
    episodes = []
    step = 0  # environment steps per agent
    for iteration in range(num_iterations):
        lr = cfg.learning_rate
        if cfg.anneal_lr:
            lr = linear_schedule(cfg.learning_rate, 0.0, num_iterations, iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # Rollout: T steps of every copy; buffers time first, (T, E, K, ...).
        obs_buf, act_buf, logp_buf, rew_buf, term_buf, trunc_buf, final_buf = (
            [],
            [],
            [],
            [],
            [],
            [],
            [],
        )
        # Each agent's uniforms for the whole rollout, (E, T, K), from its own generator: one
        # draw per agent per rollout rather than one sampling call per agent per step.
        uniforms = torch.stack([torch.rand(T, K, generator=g) for g in action_gens])
        for t in range(T):
            if diag_actor.due(step):
                diagnose(step)
            obs = next_obs.to(device)
            with torch.no_grad():
                logits = ensemble_call(actor_base, actor, obs)  # (E, K, n_actions)
            action = sample_actions(logits, uniforms[:, t])  # (E, K), CPU
            logprob, _ = categorical_logprob_entropy(logits, action.to(device))
            out = envs.step(action)
            obs_buf.append(obs)
            act_buf.append(action)
            logp_buf.append(logprob)
            rew_buf.append(out.reward)
            term_buf.append(out.terminated)
            trunc_buf.append(out.truncated)
            final_buf.append(out.final_obs)  # the state that followed: s'_{t+1}
            next_obs = out.obs
            step += K
            clock.env_steps += E * K
            advance(K)  # env steps per agent
        episodes += envs.pop_episodes()

        def flat(buf: list[Tensor]) -> Tensor:
            """``T x (E, K, ...)`` -> ``(E, T K, ...)`` on the device, row ``t K + k``."""
            x = torch.stack(buf).to(device).movedim(0, 1)
            return x.reshape(E, batch, *x.shape[3:])

        b_obs, b_actions, b_logprobs = flat(obs_buf), flat(act_buf), flat(logp_buf)
        with torch.no_grad():
            # V(s_t) and V(s'_{t+1}) in one forward; s'_{t+1} = s_{t+1} except where an episode
            # ended, where it is the episode's last state (bootstrapped if truncated).
            both = torch.cat([b_obs, flat(final_buf)], dim=1)  # (E, 2 T K, *obs)
            v = ensemble_call(critic_base, critic, both).squeeze(-1)
            b_values = v[:, :batch]  # (E, T K)

            def time_first(x: Tensor) -> Tensor:  # (E, T K) -> (T, E, K)
                return x.reshape(E, T, K).movedim(1, 0)

            advantages, returns = gae(
                time_first(flat(rew_buf)),
                time_first(b_values),
                time_first(v[:, batch:]),
                time_first(flat(term_buf)),
                time_first(flat(trunc_buf)),
                cfg.gamma,
                cfg.gae_lambda,
            )
            b_advantages = advantages.movedim(0, 1).reshape(E, batch)
            b_returns = returns.movedim(0, 1).reshape(E, batch)

        # Update: epochs of minibatches; agent m's minibatch j holds its own permutation's
        # j-th slice, and the ensemble's minibatch j stacks every agent's.
        for _ in range(cfg.update_epochs):
            perm = torch.stack([torch.randperm(batch, generator=g) for g in batch_gens])
            perm = perm.to(device)  # (E, T K)
            for start in range(0, batch, minibatch):
                idx = perm[:, start : start + minibatch]  # (E, M)
                mb_obs = b_obs[members, idx]  # (E, M, *obs)
                logits = ensemble_call(actor_base, actor, mb_obs)
                new_value = ensemble_call(critic_base, critic, mb_obs).squeeze(-1)  # (E, M)
                new_logprob, entropy = categorical_logprob_entropy(logits, b_actions[members, idx])
                pg_loss, v_loss = ppo_losses(
                    new_logprob,
                    b_logprobs[members, idx],
                    b_advantages[members, idx],
                    new_value,
                    b_values[members, idx],
                    b_returns[members, idx],
                    cfg.clip_coef,
                    cfg.clip_vloss,
                    cfg.norm_adv,
                )
                loss = pg_loss - cfg.ent_coef * entropy.mean(dim=1) + cfg.vf_coef * v_loss
                optimizer.zero_grad()
                loss.sum().backward()  # (E,) summed: each agent gets its own loss's gradient
                clip_grad_norm_per_member(params, cfg.max_grad_norm)
                optimizer.step()
                clock.updates += 1

    if diag_actor.due(step):
        diagnose(step)
    envs.close()
    critic_frame = diag_critic.frame()
    if not critic_frame.empty:
        critic_frame["metric"] = "critic/" + critic_frame["metric"]
    return AgentRun(
        returns=returns_frame(episodes, cfg.seeds),
        diagnostics=pd.concat([diag_actor.frame(), critic_frame], ignore_index=True),
        speed=clock.speed(),
        params={k: v.detach().cpu() for k, v in params.items()},
    )
