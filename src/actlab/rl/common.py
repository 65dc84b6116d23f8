"""What the three agents (:mod:`~actlab.rl.dqn`, :mod:`~actlab.rl.ppo`, :mod:`~actlab.rl.pqn`)
share: the network a run trains, how it is built for an environment, the schedule of a linearly
annealed quantity, the diagnostics taken every K environment steps, and the result of a run.

One run of an agent is an *ensemble*: E agents (one per seed) with the same network spec, trained
together in one process (:mod:`actlab.rl.ensemble`); agent m uses seed ``seeds[m]`` for its
initial weights, its environments, its exploration and its minibatches, so that its numbers do
not depend on the other agents of the run.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor, nn

from actlab.rl.diagnostics import probe_batch, representation_diagnostics, tidy
from actlab.rl.ensemble import ensemble_call
from actlab.rl.envs import is_minatar
from actlab.rl.models import matched_hidden, matched_minatar_width, minatar_net, mlp_qnet
from actlab.seeding import derive_seed

__all__ = [
    "check_agent_config",
    "NetworkSpec",
    "build_network",
    "build_networks",
    "linear_schedule",
    "agent_generators",
    "Diagnostics",
    "AgentRun",
    "Clock",
    "flushing_denormals",
]

PLACEMENTS = ("none", "last", "all")


@dataclass(frozen=True)
class NetworkSpec:
    """The network of a run's agents.

    Attributes:
        activation: Registry name of every hidden activation.
        hadamard: ``"none"``, ``"last"`` (the representation layer is a Hadamard layer: DQN,
            PPO) or ``"all"`` (every hidden layer: PQN). MinAtar networks allow ``"last"`` only.
        layer_norm: LayerNorm before every hidden activation (PQN).
        widened: A plain network widened to the parameter count of the Hadamard network with
            placement ``hadamard`` (then ``hadamard`` names the network it matches, and no
            Hadamard layer is built).
    """

    activation: str = "tanh"
    hadamard: str = "none"
    layer_norm: bool = False
    widened: bool = False

    def __post_init__(self) -> None:
        if self.hadamard not in PLACEMENTS:
            raise ValueError(
                f"hadamard must be one of {', '.join(PLACEMENTS)}, got {self.hadamard!r}"
            )
        if self.widened and self.hadamard == "none":
            raise ValueError(
                "widened=True needs the placement it matches: hadamard='last' or 'all'"
            )

    @property
    def label(self) -> str:
        """``tanh``, ``tanh-hadamard``, ``tanh-wide``: the name in tables and figures."""
        if self.widened:
            return f"{self.activation}-wide"
        return self.activation if self.hadamard == "none" else f"{self.activation}-hadamard"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_agent_config(cfg: object) -> None:
    """The checks every agent's Config shares (called from its ``__post_init__``): ``env_id``
    supported (the error names the closest id), ``seeds`` a non-empty tuple of distinct
    integers, ``network`` a :class:`NetworkSpec` of a registered activation (MinAtar networks
    take no Hadamard layer everywhere), ``hidden`` positive widths, ``total_steps`` >= 1,
    ``diag_every`` >= 0, ``probe_size`` >= 1. ``seeds`` and ``hidden`` become tuples.

    Raises:
        ValueError: naming the first field that is wrong.
    """
    import difflib

    from actlab.activations import get_activation
    from actlab.rl.envs import ENVIRONMENTS

    if cfg.env_id not in ENVIRONMENTS:
        close = difflib.get_close_matches(str(cfg.env_id), ENVIRONMENTS, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"env_id must be one of {', '.join(ENVIRONMENTS)}, got {cfg.env_id!r}.{hint}"
        )
    seeds = tuple(cfg.seeds)
    if not seeds or not all(_is_int(s) for s in seeds):
        raise ValueError(f"seeds must be a non-empty tuple of integers, got {cfg.seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (one agent each), got {cfg.seeds!r}")
    object.__setattr__(cfg, "seeds", seeds)
    if not isinstance(cfg.network, NetworkSpec):
        raise ValueError(f"network must be a NetworkSpec, got {type(cfg.network).__name__}")
    try:
        get_activation(cfg.network.activation)
    except ValueError as err:
        raise ValueError(f"network: {err}") from None
    if is_minatar(cfg.env_id) and cfg.network.hadamard == "all" and not cfg.network.widened:
        raise ValueError(
            "network.hadamard='all' is for the MLP; MinAtar networks take 'none' or 'last'"
        )
    hidden = tuple(cfg.hidden)
    if not hidden or not all(_is_int(h) and h >= 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty tuple of integers >= 1, got {cfg.hidden!r}")
    object.__setattr__(cfg, "hidden", hidden)
    for name, minimum in (("total_steps", 1), ("diag_every", 0), ("probe_size", 1)):
        value = getattr(cfg, name)
        if not _is_int(value) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def build_network(
    spec: NetworkSpec, obs_shape: Sequence[int], n_outputs: int, hidden: Sequence[int] = (120, 84)
) -> nn.Module:
    """The network of ``spec`` for an observation of shape ``obs_shape``: the MLP torso
    ``hidden`` for a vector (classic control), MinAtar's network for ``(C, 10, 10)``."""
    if len(obs_shape) == 3:
        placement = "none" if spec.widened else spec.hadamard
        if placement == "all":
            raise ValueError("MinAtar networks take hadamard='none' or 'last', got 'all'")
        width = 128
        if spec.widened:
            width = matched_minatar_width(obs_shape[0], n_outputs, spec.layer_norm, 128)
        return minatar_net(
            obs_shape[0], n_outputs, spec.activation, placement, spec.layer_norm, hidden=width
        )
    if len(obs_shape) != 1:
        raise ValueError(f"observations must be (D,) or (C, 10, 10), got {tuple(obs_shape)}")
    widths = tuple(hidden)
    if spec.widened:
        widths = matched_hidden(obs_shape[0], n_outputs, widths, spec.hadamard, spec.layer_norm)
    placement = "none" if spec.widened else spec.hadamard
    return mlp_qnet(obs_shape[0], n_outputs, widths, spec.activation, placement, spec.layer_norm)


def build_networks(
    spec: NetworkSpec,
    seeds: Sequence[int],
    obs_shape: Sequence[int],
    n_outputs: int,
    hidden: Sequence[int] = (120, 84),
    tag: str = "net",
) -> list[nn.Module]:
    """One network per seed, agent m's initialised under ``derive_seed(seeds[m], tag)``."""
    nets = []
    for seed in seeds:
        torch.manual_seed(derive_seed(seed, tag))
        nets.append(build_network(spec, obs_shape, n_outputs, hidden))
    return nets


def agent_generators(seeds: Sequence[int], tag: str) -> list[torch.Generator]:
    """One torch Generator per agent, seeded ``derive_seed(seed, tag)`` (exploration,
    minibatch order, replay sampling: each agent draws from its own)."""
    return [torch.Generator().manual_seed(derive_seed(s, tag)) for s in seeds]


def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    """``start`` moved linearly to ``end`` over ``duration`` steps, then held:
    ``start + (end - start) * min(t / duration, 1)``."""
    if duration <= 0:
        return end
    return start + (end - start) * min(max(t, 0.0) / duration, 1.0)


class Diagnostics:
    """Representation diagnostics every ``every`` environment steps, on a fixed probe batch.

    The probe batch is ``probe_size`` states of ``env_id`` under a uniformly random policy
    (seeded ``probe_seed``), the same for every agent and every network, so that runs compare.
    :meth:`record` adds one tidy block per call (:func:`actlab.rl.diagnostics.tidy`), with the
    agents' labels as columns.
    """

    def __init__(
        self,
        env_id: str,
        activation: str,
        labels: Sequence[dict],
        every: int,
        probe_size: int = 256,
        probe_seed: int = 0,
    ):
        self.activation = activation
        self.labels = [dict(label) for label in labels]
        self.every = int(every)
        self.probe = probe_batch(env_id, probe_size, probe_seed)
        self.next_step = 0
        self.frames: list[pd.DataFrame] = []

    def due(self, env_step: int) -> bool:
        """Whether a record is due at ``env_step`` (the first at step 0, then every K)."""
        return self.every > 0 and env_step >= self.next_step

    @torch.no_grad()
    def record(
        self,
        env_step: int,
        base: nn.Module,
        params: dict[str, Tensor],
        grads: dict[str, Tensor] | None = None,
    ) -> None:
        """Diagnose every member's hidden layers on the probe batch; ``grads`` (layer name ->
        ``(E,)`` mean |gradient|, from the last update) are logged beside them."""
        E = len(self.labels)
        probe = self.probe.to(next(iter(params.values())).device)  # the networks' device
        x = probe.unsqueeze(0).expand(E, *probe.shape)
        _, hidden = ensemble_call(base, params, x, with_hidden=True)
        diags = representation_diagnostics(hidden, self.activation)
        for name, value in (grads or {}).items():
            diags[f"{name}/grad_mean_abs"] = value.detach().to(torch.float64)
        self.frames.append(tidy(diags, env_step, self.labels))
        self.next_step = (env_step // self.every + 1) * self.every

    def frame(self) -> pd.DataFrame:
        """Every record so far, one table."""
        return pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()


def layer_gradients(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """Mean |gradient| per parameter tensor and member, ``name -> (E,)`` (after backward)."""
    return {
        name: p.grad.abs().flatten(1).mean(dim=1)
        for name, p in params.items()
        if p.grad is not None and name.endswith("weight")
    }


class Clock:
    """Wall time of a run, split into acting (environment steps) and learning (updates)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.env_steps = 0
        self.updates = 0

    def speed(self) -> dict[str, float]:
        seconds = max(time.perf_counter() - self.start, 1e-9)
        return {
            "seconds": seconds,
            "env_steps": float(self.env_steps),
            "updates": float(self.updates),
            "env_steps_per_s": self.env_steps / seconds,
            "updates_per_s": self.updates / seconds,
        }


@dataclass
class AgentRun:
    """What one run of an agent (an ensemble of E agents) produced.

    Attributes:
        returns: One row per finished episode: ``member, seed, env_step, episode_return,
            length`` (``env_step``: the agent's environment steps when it ended, over all its
            environment copies).
        diagnostics: Tidy ``member, step, <labels>, metric, value`` (see :class:`Diagnostics`).
        speed: ``seconds, env_steps, updates, env_steps_per_s, updates_per_s`` of the whole
            ensemble (env steps counted over all agents and copies).
        params: The final stacked parameters (``name -> (E, ...)``, detached, on the CPU).
    """

    returns: pd.DataFrame
    diagnostics: pd.DataFrame
    speed: dict[str, float]
    params: dict[str, Tensor] = field(default_factory=dict)


def returns_frame(episodes: Sequence, seeds: Sequence[int]) -> pd.DataFrame:
    """Episodes (:class:`actlab.rl.envs.Episode`) as :attr:`AgentRun.returns`."""
    rows = [
        {
            "member": e.agent,
            "seed": seeds[e.agent],
            "env_step": e.env_step,
            "episode_return": float(e.episode_return),
            "length": int(e.length),
        }
        for e in episodes
    ]
    cols = ["member", "seed", "env_step", "episode_return", "length"]
    return pd.DataFrame(rows, columns=cols)


def obs_shape_of(env_id: str, sample: Tensor) -> tuple[int, ...]:
    """The per-agent observation shape from a reset batch ``(A, K, *obs)``."""
    shape = tuple(sample.shape[2:])
    if is_minatar(env_id) and len(shape) != 3:
        raise ValueError(f"{env_id}: expected (C, 10, 10) observations, got {shape}")
    return shape


def flushing_denormals(main: Callable) -> Callable:
    """Run an agent's ``main`` with subnormal floats flushed to zero on the CPU.

    Optimiser states of rarely-updated weights (RMSprop's and Adam's running squares of
    gradients near 0) drift into the subnormal range below ~1.2e-38, where x86 arithmetic is
    tens of times slower: measured on MinAtar DQN (centred RMSprop), 254 against 412 env steps/s
    for 3 agents, the optimiser's ``sqrt_`` alone 5x slower. Flushing changes only values below
    1.2e-38, which are 0 to any return, loss or diagnostic here.

    ``torch.set_flush_denormal`` is process-wide and PyTorch offers no getter, so the setting is
    switched off again when ``main`` returns (PyTorch's default), whatever it was before. It acts
    on the calling thread (intra-op threads keep theirs; the agents run single-threaded).
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        supported = torch.set_flush_denormal(True)
        try:
            return main(*args, **kwargs)
        finally:
            if supported:
                torch.set_flush_denormal(False)

    return wrapper
