"""Tests of actlab.rl.envs: ids, seeding, per-agent independence, episode logs, observations.

References are plain gymnasium environments stepped in a naive Python loop, reset by hand when
an episode ends. Comparisons are exact: the environments are NumPy code with no BLAS reduction,
and float32 casts of the same float64/bool values are the same bits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actlab.rl.envs import (
    ENVIRONMENTS,
    AgentEnvs,
    env_seed,
    make_env,
)

# (channels, minimal actions) per game, from docs/REFERENCES.md ("Reference RL settings").
MINATAR_SPECS = {
    "MinAtar/Asterix-v1": (4, 5),
    "MinAtar/Breakout-v1": (4, 3),
    "MinAtar/Freeway-v1": (7, 3),
    "MinAtar/Seaquest-v1": (10, 6),
    "MinAtar/SpaceInvaders-v1": (6, 4),
}


def random_actions(n_steps: int, shape: tuple[int, ...], n_actions: int, seed: int) -> torch.Tensor:
    """A fixed action sequence ``(n_steps, *shape)``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(n_actions, (n_steps, *shape), generator=gen)


def rollout(envs: AgentEnvs, actions: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reset, step through ``actions`` ``(T, A, K)``, stack every field along a time axis."""
    first = envs.reset()
    steps = [envs.step(a) for a in actions]
    out = {name: torch.stack([getattr(s, name) for s in steps]) for name in steps[0]._fields}
    out["first"] = first
    return out


def test_unknown_id_names_closest_match():
    with pytest.raises(ValueError, match="'CartPole-v1'"):
        make_env("CartPole-v0")
    with pytest.raises(ValueError, match="MinAtar/Breakout-v1"):
        AgentEnvs("MinAtar/Breakout", [0])
    with pytest.raises(ValueError, match="Valid ids"):
        make_env("Pong")


def test_bad_arguments():
    with pytest.raises(ValueError, match="copies"):
        AgentEnvs("CartPole-v1", [0], copies=0)
    with pytest.raises(ValueError, match="agent_seeds"):
        AgentEnvs("CartPole-v1", [])
    envs = AgentEnvs("CartPole-v1", [0, 1], copies=2)
    envs.reset()
    with pytest.raises(ValueError, match=r"actions must have shape \(A, K\) = \(2, 2\)"):
        envs.step(torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="integers"):
        envs.step(torch.zeros(2, 2))


def test_every_id_makes_an_env():
    for env_id in ENVIRONMENTS:
        env = make_env(env_id, seed=0)
        env.step(env.action_space.sample())
        env.close()


def test_make_env_seed_reproduces():
    a, b = make_env("Acrobot-v1", seed=3), make_env("Acrobot-v1", seed=3)
    obs_a, _ = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert [a.action_space.sample() for _ in range(20)] == [
        b.action_space.sample() for _ in range(20)
    ]
    obs_c, _ = make_env("Acrobot-v1", seed=4).reset(seed=4)
    assert not np.array_equal(obs_a, obs_c)


def test_env_seed_distinct_and_independent_of_other_agents():
    seeds = {env_seed(s, k) for s in range(10) for k in range(8)}
    assert len(seeds) == 80  # seed + k would give 17 distinct values
    assert all(0 <= s < 2**32 for s in seeds)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MinAtar/Breakout-v1"])
def test_same_seed_same_trajectory(env_id):
    actions = random_actions(150, (2, 2), 2 if env_id == "CartPole-v1" else 3, seed=0)
    one = rollout(AgentEnvs(env_id, [11, 12], copies=2), actions)
    two = rollout(AgentEnvs(env_id, [11, 12], copies=2), actions)
    for name in one:
        torch.testing.assert_close(one[name], two[name], rtol=0, atol=0)
    # a second reset of the same object starts over too
    envs = AgentEnvs(env_id, [11, 12], copies=2)
    torch.testing.assert_close(envs.reset(), envs.reset(), rtol=0, atol=0)
    # other seeds, other trajectories
    other = rollout(AgentEnvs(env_id, [13, 14], copies=2), actions)
    assert not torch.equal(other["obs"], one["obs"])


def test_copy_independent_of_number_of_copies():
    actions = random_actions(100, (1, 3), 2, seed=4)
    three = rollout(AgentEnvs("CartPole-v1", [9], copies=3), actions)
    one = rollout(AgentEnvs("CartPole-v1", [9], copies=1), actions[:, :, :1])
    torch.testing.assert_close(three["obs"][:, :, :1], one["obs"], rtol=0, atol=0)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MinAtar/SpaceInvaders-v1"])
def test_agent_trajectory_independent_of_other_agents(env_id):
    n_actions = 2 if env_id == "CartPole-v1" else 4
    k, steps = 2, 200
    acts_many = random_actions(steps, (3, k), n_actions, seed=1)
    alone = AgentEnvs(env_id, [5], copies=k)
    many = AgentEnvs(env_id, [3, 5, 7], copies=k)
    ra = rollout(alone, acts_many[:, 1:2])
    rm = rollout(many, acts_many)
    for name in ra:  # "first" is (A, K, ...); the stepped fields are (T, A, K, ...)
        mine = ra[name][0] if name == "first" else ra[name][:, 0]
        in_many = rm[name][1] if name == "first" else rm[name][:, 1]
        torch.testing.assert_close(mine, in_many, rtol=0, atol=0)
    eps_alone = [(e.env_step, e.episode_return, e.length) for e in alone.pop_episodes()]
    eps_many = [
        (e.env_step, e.episode_return, e.length) for e in many.pop_episodes() if e.agent == 1
    ]
    assert eps_alone and eps_alone == eps_many


def reference_rollout(env_id, agent_seed, copies, actions):
    """Naive loop over K plain gymnasium envs: observations after every step (the terminal one
    where an episode ends) and the finished episodes (env_step, return, length)."""
    envs = [make_env(env_id) for _ in range(copies)]  # make_env(id) is gym.make(id)
    starts = [env.reset(seed=env_seed(agent_seed, k))[0] for k, env in enumerate(envs)]
    returns, lengths = [0.0] * copies, [0] * copies
    finals, rewards, episodes = [], [], []
    for t, acts in enumerate(actions, start=1):
        step_final, step_reward = [], []
        for k, env in enumerate(envs):
            obs, reward, terminated, truncated, _ = env.step(int(acts[k]))
            returns[k] += reward
            lengths[k] += 1
            step_final.append(obs)
            step_reward.append(reward)
            if terminated or truncated:
                episodes.append((t * copies, returns[k], lengths[k]))
                returns[k], lengths[k] = 0.0, 0
                env.reset()
        finals.append(step_final)
        rewards.append(step_reward)
    return np.array(starts), np.array(finals), np.array(rewards), episodes


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MinAtar/Breakout-v1"])
def test_returns_and_observations_match_plain_gymnasium(env_id):
    n_actions = 2 if env_id == "CartPole-v1" else 3
    k, steps = 3, 300
    actions = random_actions(steps, (2, k), n_actions, seed=2)
    envs = AgentEnvs(env_id, [21, 22], copies=k)
    got = rollout(envs, actions)
    episodes = envs.pop_episodes()
    assert envs.pop_episodes() == []
    for a, seed in enumerate([21, 22]):
        starts, finals, rewards, ref_eps = reference_rollout(env_id, seed, k, actions[:, a])
        if env_id.startswith("MinAtar"):
            starts, finals = np.moveaxis(starts, -1, -3), np.moveaxis(finals, -1, -3)
        np.testing.assert_array_equal(got["first"][a].numpy(), starts.astype(np.float32))
        np.testing.assert_array_equal(got["final_obs"][:, a].numpy(), finals.astype(np.float32))
        np.testing.assert_array_equal(got["reward"][:, a].numpy(), rewards.astype(np.float32))
        mine = [(e.env_step, e.episode_return, e.length) for e in episodes if e.agent == a]
        assert mine == ref_eps
        assert len(ref_eps) >= 5
    if env_id.startswith("MinAtar"):  # the comparison was not only of zero rewards
        assert any(e.episode_return > 0 for e in episodes)
    # where no episode ended, final_obs is the next observation; where one did, they differ
    done = got["terminated"] | got["truncated"]
    assert done.any()
    torch.testing.assert_close(got["final_obs"][~done], got["obs"][~done], rtol=0, atol=0)


@pytest.mark.parametrize("env_id", list(MINATAR_SPECS))
def test_minatar_observations_channels_first_zero_one(env_id):
    channels, n_actions = MINATAR_SPECS[env_id]
    envs = AgentEnvs(env_id, [0, 1], copies=2)
    assert envs.obs_shape == (channels, 10, 10)
    assert envs.n_actions == n_actions
    obs = envs.reset()
    assert obs.shape == (2, 2, channels, 10, 10) and obs.dtype == torch.float32
    step = envs.step(random_actions(1, (2, 2), n_actions, seed=0)[0])
    for x in (obs, step.obs, step.final_obs):
        assert set(x.unique().tolist()) <= {0.0, 1.0}
        assert x.sum() > 0  # something is on the board
    # channel c of the tensor is channel c of the raw (10, 10, C) bool observation
    raw, _ = make_env(env_id).reset(seed=env_seed(1, 0))
    np.testing.assert_array_equal(obs[1, 0].numpy(), np.moveaxis(raw, -1, 0).astype(np.float32))
