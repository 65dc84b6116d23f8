"""Settings of the NumPy lesson: the config and its presets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from actlab.activations import get_activation
from actlab.experiments.base import check_activations, check_config, check_ints

__all__ = ["Config", "presets", "TINY_EPS"]

TINY_EPS = 0.01
"""An error below this many machine epsilons (relative to max(|reference|, 1)) but not 0 is
shown as ``< 0.01``: it sits at a value far below 1, where floats are much finer than
epsilon, and its size in epsilons (e.g. 2e-44) means nothing to a reader; the report gives it
relative to the value itself instead."""


@dataclass(frozen=True)
class Config:
    """Settings of the NumPy-from-scratch lesson."""

    seed: int = 0
    """Seed of the random arrays, the random layers and the fits."""
    n_random: int = 100_000
    """Entries of the random array on which the formulas are checked (>= 10)."""
    random_scale: float = 10.0
    """Standard deviation of the random array's entries (> 0)."""
    leaky_slope: float = 0.01
    """Negative-side slope of LeakyReLU (in (0, 1))."""
    n_grid: int = 401
    """Points of the grids the figures draw on (>= 11)."""
    collapse_widths: tuple[int, ...] = (8, 32, 3, 32, 8)
    """Layer widths of the stack, input first (>= 3 entries: at least two layers)."""
    collapse_activations: tuple[str, ...] = ("relu", "tanh")
    """Activations put between the layers to show that the collapse then fails."""
    collapse_points: int = 2000
    """Random inputs on which the stacks are compared with affine maps (> input width + 1)."""
    big_logits: tuple[float, ...] = (1000.0, 1001.0, 1002.0)
    """Logits that overflow the textbook softmax."""
    gap_logits: tuple[float, ...] = (0.0, -1000.0)
    """Logits whose softmax underflows to 0 somewhere (log-softmax vs log of softmax)."""
    offset_max: float = 1000.0
    """The overflow figure shifts the logits by offsets in [0, offset_max] (> 0)."""
    peaky_base: tuple[float, ...] = (1.0, 2.0, 3.0)
    """The lesson's logit vector."""
    peaky_scales: tuple[float, ...] = (1.0, 10.0, 0.1)
    """Its scalings: [1, 2, 3], [10, 20, 30], [0.1, 0.2, 0.3] (each > 0)."""
    sweep_logits: tuple[float, ...] = (2.0, 1.0, 0.5, -1.0)
    """The logit vector (Q-values of four actions) whose softmax is swept over temperatures; its
    maximum must be unique."""
    t_min: float = 0.01
    """Smallest temperature of the sweep (> 0)."""
    t_max: float = 100.0
    """Largest temperature of the sweep (> t_min)."""
    n_temperatures: int = 161
    """Temperatures of the sweep, log-spaced (>= 3)."""
    epsilon: float = 0.1
    """Exploration rate of the epsilon-greedy policy that Boltzmann exploration is matched to
    (in (0, 1))."""
    dead_inputs: tuple[float, ...] = (-5.0, -3.0, -2.0, -1.0)
    """Inputs of the dead ReLU (all negative)."""
    compare_inputs: tuple[float, ...] = (-3.0, -1.0, 0.0, 1.0, 3.0)
    """Inputs on which ReLU and LeakyReLU are compared."""
    dead_steps: int = 300
    """Gradient-descent steps on the one dead unit."""
    dead_lr: float = 0.05
    """Learning rate of those steps (> 0)."""
    n_states: int = 10
    """States of the chain MDP: k = 1..n_states rewards of 1 left (>= 2)."""
    gamma: float = 0.9
    """Discount factor of the chain (in (0, 1))."""
    stop_reward: float = -2.0
    """Reward of the action 'stop', which ends the episode."""
    policy_temperature: float = 1.0
    """Temperature of the Boltzmann policy head on the chain (> 0)."""
    q_heads: tuple[str, ...] = ("identity", "tanh", "sigmoid")
    """Output activations of the Q-head that are compared (registry names; identity first)."""
    torso: str = "relu"
    """Hidden activation of the Q-network."""
    hidden: int = 32
    """Width of the Q-network's hidden layer."""
    seeds: int = 10
    """Seeds per Q-head; seed s gives every head the same initial weights (>= 2)."""
    fit_steps: int = 1000
    """Full-batch Adam steps of the Q-value fit."""
    fit_lr: float = 0.02
    """Adam learning rate of the fit (> 0)."""

    def __post_init__(self) -> None:
        for key in (
            "collapse_widths",
            "collapse_activations",
            "big_logits",
            "gap_logits",
            "peaky_base",
            "peaky_scales",
            "sweep_logits",
            "dead_inputs",
            "compare_inputs",
            "q_heads",
        ):
            value = getattr(self, key)
            value = (value,) if isinstance(value, (str, int, float)) else tuple(value)
            object.__setattr__(self, key, value)
        check_config(self)
        for key in (
            "big_logits",
            "gap_logits",
            "peaky_base",
            "peaky_scales",
            "sweep_logits",
            "dead_inputs",
            "compare_inputs",
        ):
            values = getattr(self, key)
            if not values or not all(math.isfinite(v) for v in values):
                raise ValueError(f"{key} must be finite numbers, got {values}")
        ints = {
            "seed": 0,
            "n_random": 10,
            "n_grid": 11,
            "n_temperatures": 3,
            "dead_steps": 1,
            "n_states": 2,
            "hidden": 1,
            "seeds": 2,
            "fit_steps": 1,
        }
        check_ints(self, ints)
        if len(self.collapse_widths) < 3 or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.collapse_widths
        ):
            raise ValueError(
                f"collapse_widths must be >= 3 integers >= 1 (two layers), got "
                f"{self.collapse_widths}"
            )
        if self.collapse_points <= self.collapse_widths[0] + 1:
            raise ValueError(
                f"collapse_points must exceed the input width + 1 = {self.collapse_widths[0] + 1}"
                f" (to fit an affine map), got {self.collapse_points}"
            )
        positive = (
            "random_scale",
            "offset_max",
            "t_min",
            "dead_lr",
            "policy_temperature",
            "fit_lr",
        )
        for key in positive:
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if not self.t_max > self.t_min:
            raise ValueError(f"t_max must be > t_min, got {self.t_max} <= {self.t_min}")
        for key in ("leaky_slope", "epsilon", "gamma"):
            if not 0 < getattr(self, key) < 1:
                raise ValueError(f"{key} must lie in (0, 1), got {getattr(self, key)}")
        if len(self.gap_logits) < 2 or len(self.big_logits) < 2 or len(self.peaky_base) < 2:
            raise ValueError("big_logits, gap_logits and peaky_base need >= 2 entries")
        if any(s <= 0 for s in self.peaky_scales):
            raise ValueError(f"peaky_scales must be > 0, got {self.peaky_scales}")
        top = max(self.sweep_logits)
        if len(self.sweep_logits) < 2 or self.sweep_logits.count(top) != 1:
            raise ValueError(
                f"sweep_logits needs >= 2 entries and a unique maximum, got {self.sweep_logits}"
            )
        if any(v >= 0 for v in self.dead_inputs):
            raise ValueError(f"dead_inputs must all be < 0, got {self.dead_inputs}")
        check_activations(self, "collapse_activations", "q_heads", "torso")
        for name in (*self.collapse_activations, *self.q_heads, self.torso):
            if get_activation(name).params:
                raise ValueError(
                    f"{name!r} has learnable parameters; collapse_activations, q_heads and "
                    "torso take activations without them"
                )
        if not self.q_heads or get_activation(self.q_heads[0]).name != "identity":
            raise ValueError(
                f"q_heads must start with identity (the linear head), got {self.q_heads}"
            )
        if len({get_activation(h).name for h in self.q_heads}) != len(self.q_heads):
            raise ValueError(f"q_heads must not repeat, got {self.q_heads}")


presets: dict[str, Config] = {
    "smoke": Config(
        n_random=1000,
        n_grid=101,
        collapse_points=200,
        n_temperatures=41,
        dead_steps=100,
        n_states=6,
        seeds=3,
        hidden=16,
        fit_steps=150,
    ),
    "default": Config(),
    "full": Config(n_random=1_000_000, n_grid=1001, n_temperatures=401, seeds=30, fit_steps=3000),
}
