"""Environments for the RL agents: gymnasium ids, seeding and an (agent, copy) vector env.

Supported ids (:data:`ENVIRONMENTS`): ``CartPole-v1``, ``Acrobot-v1`` (gymnasium's classic
control) and MinAtar's five games ``MinAtar/{Asterix,Breakout,Freeway,Seaquest,SpaceInvaders}-v1``
(minimal action sets; sticky actions 0.1 and difficulty ramping on, MinAtar's defaults).

Observations are float32 tensors. MinAtar's gym wrapper returns ``(10, 10, C)`` bool arrays;
here they become channels-first ``(C, 10, 10)`` of exact 0/1 values (not divided by 255: the
games are already 0/1). Classic-control observations are cast to float32.

:class:`AgentEnvs` holds A agents with K copies of the environment each, ``A * K`` gymnasium envs
stepped by one ``gymnasium.vector.SyncVectorEnv`` in *same-step* autoreset mode: when an
episode ends, the observation returned for that copy is already the first one of the next
episode, and the observation that ended the episode comes back separately (``final_obs``).
Copy k of agent a is seeded with ``env_seed(agent_seed, k)``, a function of that agent's own
seed and k only, so an agent's environments do not depend on how many other agents run beside
it (or on K, for the copies it shares).

Importing MinAtar imports matplotlib and seaborn (its renderer), so it is imported on first
use of a MinAtar id, not when this module is imported.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from torch import Tensor

from actlab.seeding import derive_seed

__all__ = [
    "ENVIRONMENTS",
    "MINATAR_GAMES",
    "AgentEnvs",
    "Episode",
    "Step",
    "env_seed",
    "is_minatar",
    "make_env",
    "observation_tensor",
]

MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
ENVIRONMENTS = ("CartPole-v1", "Acrobot-v1") + tuple(f"MinAtar/{g}-v1" for g in MINATAR_GAMES)
"""The gymnasium ids the agents support."""


def is_minatar(env_id: str) -> bool:
    """Whether ``env_id`` is one of MinAtar's games (channels-last bool observations)."""
    return env_id.startswith("MinAtar/")


def _check_env_id(env_id: str) -> None:
    if env_id not in ENVIRONMENTS:
        close = difflib.get_close_matches(str(env_id), ENVIRONMENTS, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown env_id {env_id!r}.{hint} Valid ids: {', '.join(ENVIRONMENTS)}")


def _register_minatar() -> None:
    # gymnasium >= 1.0 no longer loads MinAtar's plugin entry point: register explicitly, once.
    if "MinAtar/Breakout-v1" not in gym.registry:
        import minatar.gym

        minatar.gym.register_envs()


def env_seed(agent_seed: int, copy: int) -> int:
    """Seed of environment copy ``copy`` of the agent seeded ``agent_seed``.

    ``derive_seed(agent_seed, "env", copy) mod 2**32`` (MinAtar seeds NumPy's ``RandomState``,
    which takes 32-bit seeds). Unlike ``agent_seed + copy`` it does not collide with another
    agent's copies when agent seeds are consecutive.
    """
    return derive_seed(agent_seed, "env", copy) % 2**32


def make_env(env_id: str, seed: int | None = None) -> gym.Env:
    """One gymnasium environment for a supported id.

    Args:
        env_id: One of :data:`ENVIRONMENTS`.
        seed: If given, the environment is reset with it (so it is ready to step from its seeded
            initial state; ``env.reset(seed=seed)`` returns that same state again) and its action
            space is seeded with it (for ``action_space.sample()``).

    Returns:
        The environment (gymnasium's usual wrappers; observations as gymnasium returns them:
        use :func:`observation_tensor` for the agents' layout).

    Raises:
        ValueError: for an unknown id, naming the closest supported one.
    """
    _check_env_id(env_id)
    if is_minatar(env_id):
        _register_minatar()
    env = gym.make(env_id)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def observation_tensor(obs: np.ndarray, env_id: str) -> Tensor:
    """Observations ``(..., *gym_shape)`` as the agents see them, float32.

    MinAtar: ``(..., 10, 10, C)`` bool -> ``(..., C, 10, 10)`` float32 of 0/1 (channels first,
    as ``nn.Conv2d`` expects). Classic control: ``(..., D)`` cast to float32.
    """
    x = torch.as_tensor(np.asarray(obs)).to(torch.float32)
    if is_minatar(env_id):
        x = x.movedim(-1, -3).contiguous()
    return x


class Step(NamedTuple):
    """What :meth:`AgentEnvs.step` returns; every field is ``(A, K, ...)``.

    ``final_obs`` is the observation that followed the action in every copy: where an episode
    ended (``terminated | truncated``) it is that episode's last observation, elsewhere it equals
    ``obs``. It is the successor state to store or bootstrap from; ``obs`` is the next state to
    act in.
    """

    obs: Tensor  # (A, K, *obs_shape) float32
    reward: Tensor  # (A, K) float32
    terminated: Tensor  # (A, K) bool
    truncated: Tensor  # (A, K) bool
    final_obs: Tensor  # (A, K, *obs_shape) float32


class Episode(NamedTuple):
    """A finished episode: its agent, the agent's env-step count when it ended, return, length.

    ``env_step`` counts the agent's steps over all its K copies (``K`` per call of
    :meth:`AgentEnvs.step`), including the step that ended the episode.
    """

    agent: int
    env_step: int
    episode_return: float
    length: int


class AgentEnvs:
    """A agents x K environment copies, stepped together, with per-agent seeds and episode logs.

    Args:
        env_id: One of :data:`ENVIRONMENTS`.
        agent_seeds: One seed per agent, length A; copy k of agent a uses
            ``env_seed(agent_seeds[a], k)``.
        copies: K, environment copies per agent (>= 1).

    Attributes:
        obs_shape: Shape of one observation as returned (MinAtar: ``(C, 10, 10)``).
        n_actions: Number of discrete actions.
    """

    def __init__(self, env_id: str, agent_seeds: Sequence[int], copies: int = 1) -> None:
        _check_env_id(env_id)
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise ValueError(f"copies must be an integer >= 1, got {copies!r}")
        seeds = [int(s) for s in agent_seeds]
        if not seeds:
            raise ValueError("agent_seeds must hold at least one seed")
        self.env_id = env_id
        self.n_agents = len(seeds)
        self.copies = copies
        self.seeds = [env_seed(s, k) for s in seeds for k in range(copies)]  # agent-major
        self.vec = SyncVectorEnv(
            [lambda: make_env(env_id) for _ in self.seeds],
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        space = self.vec.single_observation_space
        shape = tuple(space.shape)
        self.obs_shape = (shape[-1], *shape[:-1]) if is_minatar(env_id) else shape
        self.n_actions = int(self.vec.single_action_space.n)
        self._returns = np.zeros(len(self.seeds))
        self._lengths = np.zeros(len(self.seeds), dtype=np.int64)
        self._steps = 0  # calls of step() since reset(); the agent's env steps are this * K
        self._finished: list[Episode] = []

    def _shaped(self, obs: np.ndarray) -> Tensor:
        """``(A*K, *gym_shape)`` -> ``(A, K, *obs_shape)`` float32."""
        x = observation_tensor(obs, self.env_id)
        return x.reshape(self.n_agents, self.copies, *self.obs_shape)

    def reset(self) -> Tensor:
        """Reset every copy with its seed (so every call starts from the same states).

        Returns:
            Observations ``(A, K, *obs_shape)`` float32. Episode statistics restart and
            unpopped finished episodes are dropped.
        """
        obs, _ = self.vec.reset(seed=self.seeds)
        self._returns[:] = 0.0
        self._lengths[:] = 0
        self._steps = 0
        self._finished = []
        return self._shaped(obs)

    def step(self, actions: Tensor) -> Step:
        """Step every copy; episodes that end are reset in the same step (same-step autoreset).

        Args:
            actions: ``(A, K)`` integer tensor (or array) of actions in ``[0, n_actions)``.

        Returns:
            :class:`Step` of ``(A, K, ...)`` tensors.
        """
        acts = np.asarray(torch.as_tensor(actions).cpu())
        if acts.shape != (self.n_agents, self.copies):
            raise ValueError(
                f"actions must have shape (A, K) = ({self.n_agents}, {self.copies}), "
                f"got {acts.shape}"
            )
        if not np.issubdtype(acts.dtype, np.integer):
            raise ValueError(f"actions must be integers, got dtype {acts.dtype}")
        obs, reward, terminated, truncated, info = self.vec.step(acts.reshape(-1))
        done = terminated | truncated
        final = np.array(obs, copy=True)
        for i in np.flatnonzero(done):
            final[i] = info["final_obs"][i]
        self._steps += 1
        self._returns += reward
        self._lengths += 1
        for i in np.flatnonzero(done):
            self._finished.append(
                Episode(
                    agent=int(i) // self.copies,
                    env_step=self._steps * self.copies,
                    episode_return=float(self._returns[i]),
                    length=int(self._lengths[i]),
                )
            )
        self._returns[done] = 0.0
        self._lengths[done] = 0
        a, k = self.n_agents, self.copies
        return Step(
            obs=self._shaped(obs),
            reward=torch.as_tensor(reward, dtype=torch.float32).reshape(a, k),
            terminated=torch.as_tensor(terminated, dtype=torch.bool).reshape(a, k),
            truncated=torch.as_tensor(truncated, dtype=torch.bool).reshape(a, k),
            final_obs=self._shaped(final),
        )

    def pop_episodes(self) -> list[Episode]:
        """Episodes finished since the last call (in the order they ended; by agent, then copy,
        within one step), and forget them."""
        finished, self._finished = self._finished, []
        return finished

    def close(self) -> None:
        """Close every environment."""
        self.vec.close()
