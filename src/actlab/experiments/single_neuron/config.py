"""Settings of the single-neuron playground: the targets, the config and its presets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from actlab.activations import get_activation
from actlab.experiments.base import check_activations, check_choice, check_config, check_ints
from actlab.models import PLAIN_INITS

__all__ = ["PARAMS", "STOP_REASONS", "Target", "TARGETS", "Config", "snapshot_steps", "presets"]

PARAMS = ("w", "b", "v", "c")
"""The four parameters of ``y = v phi(w x + b) + c``, in the order of every array."""
STOP_REASONS = ("cap", "gradient", "plateau", "diverged")
"""Codes of the array ``stop_reason``: why a member stopped training."""


@dataclass(frozen=True)
class Target:
    """A target function: its name, a label for prose, its LaTeX and ``fn(x) -> y`` (NumPy)."""

    name: str
    label: str
    latex: str
    fn: Callable[[np.ndarray], np.ndarray]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("linear", "linear", r"x/2", lambda x: x / 2),
        Target("quadratic", "U-quadratic", r"x^2/2 - 1", lambda x: x**2 / 2 - 1),
        Target("cubic", "S-cubic", r"x^3/8", lambda x: x**3 / 8),
        Target("neg_cubic", "negative cubic", r"-x^3/8", lambda x: -(x**3) / 8),
        Target("quartic", "W-quartic", r"(x^4 - 4x^2)/4", lambda x: (x**4 - 4 * x**2) / 4),
    )
}
"""The targets (amplitude about 1 on [-2, 2]). The quartic is a true W: minima -1 at
``x = +-sqrt(2)``, a local maximum 0 at ``x = 0``."""


@dataclass(frozen=True)
class Config:
    """Settings of the single-neuron playground."""

    targets: tuple[str, ...] = ("linear", "quadratic", "cubic", "neg_cubic", "quartic")
    """Target functions (names in ``TARGETS``)."""
    activations: tuple[str, ...] = ("tanh", "relu", "sigmoid", "leaky_relu", "sine", "identity")
    """Activations of the hidden unit (any registry name)."""
    x_min: float = -2.0
    """Left end of the input range."""
    x_max: float = 2.0
    """Right end of the input range (> x_min)."""
    n_train: int = 32
    """Training points per data seed (>= 4)."""
    n_test: int = 512
    """Held-out points per data seed (>= 2)."""
    noise: float = 0.05
    """Standard deviation of the label noise on train and held-out points (>= 0); the held-out
    MSE of the true function is about noise^2 (the noise floor)."""
    seeds: int = 5
    """Data seeds (>= 2 for a CI): each has its own train/held-out draw and its own restarts."""
    restarts: int = 20
    """Random restarts (initial weights) per (target, activation, seed) (>= 1)."""
    epochs: int = 4000
    """Cap on full-batch Adam steps (a member usually stops earlier, see grad_tol)."""
    lr: float = 0.02
    """Adam learning rate."""
    check_every: int = 50
    """Steps between convergence checks."""
    grad_tol: float = 1e-5
    """Stop a member whose gradient norm over (w, b, v, c) is below this (> 0)."""
    plateau_tol: float = 1e-6
    """Stop a member whose loss changed by less than this fraction since the last check (>= 0)."""
    init: str = "torch"
    """Initialisation of the restarts (``torch``: w, b, v, c ~ U(-1, 1) for one input)."""
    n_grid: int = 161
    """Points on [x_min, x_max] at which fits are drawn."""
    n_snapshots: int = 40
    """Log-spaced training steps at which seed 0's parameters are recorded (figures, GIFs)."""
    gif_frames: int = 16
    """Most frames of a convergence GIF (the sigmoid GIF gets 2.5 times as many); >= 2."""
    relu_target: str = "quadratic"
    """Target of the ReLU in-depth section (one of ``targets``; needs relu among activations)."""
    landscape_points: int = 201
    """Grid points per axis of the ReLU landscape over (w, b)."""
    landscape_extent: float = 3.0
    """Half-width of the landscape's (w, b) window (widened to hold the best path)."""
    sigmoid_target: str = "linear"
    """Target of the sigmoid-without-bias section, rescaled to [0.1, 0.9] (any name in
    ``TARGETS``)."""
    sigmoid_w0: float = -4.0
    """Initial w of y = sigma(w x)."""
    sigmoid_lr: float = 2.0
    """Step size of plain gradient descent on w."""
    sigmoid_steps: int = 120
    """Gradient-descent steps on w."""
    seed: int = 0
    """Root seed of data and initial weights."""
    device: str = "cpu"
    """Where the trained ensemble and its data live (cpu, cuda, cuda:N); the results are the
    same to float rounding. The landscape and the sigmoid section run on the CPU."""

    def __post_init__(self) -> None:
        for key in ("targets", "activations"):
            value = getattr(self, key)
            object.__setattr__(self, key, (value,) if isinstance(value, str) else tuple(value))
        check_config(self)
        ints = {
            "n_train": 4,
            "n_test": 2,
            "seeds": 1,
            "restarts": 1,
            "epochs": 1,
            "check_every": 1,
            "n_grid": 11,
            "n_snapshots": 2,
            "gif_frames": 2,
            "landscape_points": 11,
            "sigmoid_steps": 1,
        }
        check_ints(self, ints)
        check_ints(self, {"seed": 0})
        if not self.targets:
            raise ValueError("targets must name at least one target")
        if not self.activations:
            raise ValueError("activations must name at least one activation")
        for key, names in (("targets", self.targets), ("sigmoid_target", [self.sigmoid_target])):
            for name in names:
                if name not in TARGETS:
                    raise ValueError(f"{key}: unknown target {name!r}; valid: {', '.join(TARGETS)}")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets must not repeat, got {self.targets}")
        check_activations(self, "activations")
        resolved = [get_activation(a).name for a in self.activations]
        if len(set(resolved)) != len(resolved):
            raise ValueError(f"activations must not repeat, got {self.activations}")
        if self.relu_target not in self.targets:
            raise ValueError(f"relu_target must be one of targets, got {self.relu_target!r}")
        if self.restarts < 2 and self.seeds < 2:
            raise ValueError("seeds or restarts must be >= 2")
        if not self.x_min < self.x_max:
            raise ValueError(f"x_min must be < x_max, got {self.x_min}, {self.x_max}")
        positive = ("lr", "grad_tol", "landscape_extent", "sigmoid_lr")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        for key in ("noise", "plateau_tol"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        check_choice(self, "init", PLAIN_INITS)


def snapshot_steps(cfg: Config) -> list[int]:
    """Steps (updates done) at which seed 0's parameters are recorded: 0, log-spaced steps
    up to ``epochs - 1``, and ``epochs`` (the end)."""
    inner = np.unique(np.round(np.geomspace(1, max(cfg.epochs - 1, 1), cfg.n_snapshots - 1)))
    return sorted({0, *(int(v) for v in inner if v < cfg.epochs), cfg.epochs})


SMOKE = Config(
    targets=("linear", "quadratic", "quartic"),
    activations=("identity", "relu", "tanh", "sine"),
    seeds=3,
    restarts=4,
    epochs=600,
    n_test=128,
    n_snapshots=12,
    gif_frames=4,
    landscape_points=41,
)
presets: dict[str, Config] = {
    "smoke": SMOKE,
    "default": Config(),
    # 9000 members x 8000 steps: the trainer keeps every step's loss, about 0.6 GB in float64.
    "full": Config(seeds=10, restarts=30, epochs=8000, n_train=64, landscape_points=401),
}
