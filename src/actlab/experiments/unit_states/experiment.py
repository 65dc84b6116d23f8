"""How easily units turn on and off: unit states over training, born-dead ReLU networks, and
units killed by one large SGD step.

Three parts, each a pure function of the config:

* **Unit states over training.** A ``depth x width`` MLP per activation and seed (one
  :class:`~actlab.models.EnsembleMLP`; members with the same seed start from the same weights
  whatever their activation) is trained with full-batch Adam on a regression task (noisy sine on
  ``[-pi, pi]``, one input) and a classification task (two moons, two inputs). At the snapshot
  steps every hidden layer is probed on a fixed set of probe inputs: sparsity, dead, inactive,
  saturated (on every input), the saturated share of (input, unit) pairs and the tau-dormant
  fractions. At initialisation the mean-field prediction of the saturated share is computed from
  :func:`actlab.theory.forward_q` and :func:`actlab.theory.saturation_fraction`, per probe input.
* **Saturation at initialisation against theory.** The same architecture with weights
  ``N(0, sigma_w^2 / fan_in)`` and zero biases over a grid of ``sigma_w^2`` (one ensemble: a
  standard draw per seed, rescaled per member), measured and predicted layer by layer.
* **Born dead.** ReLU (and leaky ReLU, GELU, and ReLU with randomized asymmetric
  initialisation) networks of width ``N`` in ``bd_widths`` and depth ``D`` in ``bd_depths`` with
  zero biases and Gaussian He weights, ``bd_trials`` initialisations per width in one batched
  computation (the depth-``D`` network is the first ``D`` layers of the deepest one). Measured:
  the frequency that some hidden layer is entirely off (``z <= 0`` on every unit) at one fixed
  input (the event of :func:`actlab.theory.born_dead_probability`), and the frequency that the
  network is constant on a grid of probe inputs covering ``[-1, 1]^2``.
* **Killed by one big step.** A ReLU network (the training part's architecture, task and
  initialisation) takes one full-batch SGD step at each learning rate of a log grid; a unit is
  killed if it is dead on the probe inputs after the step and was not before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress, theory
from actlab.activations import Activation, get_activation
from actlab.data import make_split
from actlab.experiments.base import (
    ChunkRunner,
    Results,
    check_activations,
    check_choice,
    check_config,
    check_ints,
    run_inline,
)
from actlab.models import PLAIN_INITS, EnsembleMLP
from actlab.optim import OptimizerConfig
from actlab.probes import functional as Fm
from actlab.seeding import derive_seed
from actlab.stats import mean_ci, paired_differs, proportion_ci, welch_differs
from actlab.train import Callback, StepState, TrainConfig, train

__all__ = [
    "Config",
    "presets",
    "run",
    "TASKS",
    "unit_fractions",
    "applicable",
    "rai_weights",
    "born_dead_counts",
    "bd_events",
    "draw_bd_weights",
    "one_step_kill",
    "saturation_theory",
    "first_layer_share",
    "uniform_sum_cdf",
    "band_in_z",
    "underflow_z",
    "bd_ring",
    "FRACTIONS",
]

TASKS = ("regression", "classification")
BD_VARIANTS_EXTRA = ("relu_rai",)
"""The born-dead variant with Lu et al.'s randomized asymmetric initialisation (ReLU)."""
RAI_SPECIAL = (2.0, 1.0)
"""Beta(a, b) of the one positive incoming weight per unit under RAI (our choice)."""
RAI_SECOND_MOMENT = 2.0
"""Sum over a unit's incoming weights of E[w^2] under RAI, as for He (``2``)."""
NOISE = 0.1
"""Standard deviation of the regression task's label noise."""


def fraction_keys(taus: tuple[float, ...]) -> tuple[str, ...]:
    """The per-layer fractions measured, in order: sparsity, dead, inactive, saturated (every
    input), saturated share of pairs, then one tau-dormant fraction per tau."""
    return ("sparsity", "dead", "inactive", "saturated", "saturated_share") + tuple(
        f"dormant_{t:g}" for t in taus
    )


FRACTIONS = fraction_keys((0.0, 0.025, 0.1))


@dataclass(frozen=True)
class Config:
    """Settings of the unit-states experiment."""

    activations: tuple[str, ...] = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu")
    """Activations whose unit states are followed over training (any registry name)."""
    seeds: int = 5
    """Seeds per activation (training and saturation parts); seed s gives every activation the
    same initial weights."""
    depth: int = 10
    """Hidden layers of the trained networks."""
    width: int = 64
    """Units per hidden layer of the trained networks."""
    steps: int = 200
    """Full-batch Adam steps per task."""
    lr: float = 1e-3
    """Adam's learning rate."""
    snapshot_steps: tuple[int, ...] = (0, 10, 30, 100, 200)
    """Steps at which the unit fractions are measured (the first must be 0, initialisation)."""
    n_train: int = 256
    """Training points per task."""
    n_probe: int = 256
    """Probe inputs per task on which the fractions are measured (regression: an even grid on
    [-pi, pi]; classification: an independent draw of the task)."""
    init: str = "torch"
    """Initialisation of the trained networks (torch, xavier, he)."""
    taus: tuple[float, ...] = (0.0, 0.025, 0.1)
    """Thresholds of the tau-dormant fraction (each >= 0)."""
    sat_sigma_w2: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    """Values of sigma_w^2 (zero biases) at which saturation at initialisation is compared
    with theory (each > 0)."""
    sat_seeds: int = 50
    """Networks per (activation, sigma_w^2) of the saturation sweep (>= 2); the share of a
    tail is skewed over networks, so more than the training's seeds are needed to pin it."""
    bd_widths: tuple[int, ...] = (2, 3, 4, 6, 8)
    """Widths N of the born-dead networks."""
    bd_depths: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
    """Depths D (hidden layers) of the born-dead networks."""
    bd_trials: int = 2000
    """Initialisations per (width, depth) cell of the born-dead part."""
    bd_activations: tuple[str, ...] = ("relu", "leaky_relu", "gelu")
    """Activations of the born-dead part (the same weights for each); ReLU with randomized
    asymmetric initialisation is added."""
    bd_grid: int = 12
    """Probe inputs of the born-dead part: a bd_grid x bd_grid grid on [-1, 1]^2."""
    bd_ring: int = 1024
    """Directions on the unit circle added to the born-dead probes of every network that the
    grid finds constant (>= 4): without biases a ReLU network is positively homogeneous, so
    constancy on the square is constancy on every direction."""
    kill_lrs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    """Learning rates of the one SGD step (each > 0)."""
    kill_seeds: int = 20
    """Initialisations per learning rate of the one-step part."""
    data_seed: int = 0
    """Seed of the data (training sets, probe draws) and of the born-dead weights."""
    device: str = "cpu"
    """Where the trained ensembles and their data live (cpu, cuda, cuda:N); the results are the
    same to float rounding. The parts at initialisation run on the CPU."""

    def __post_init__(self) -> None:
        check_config(self)
        for key in (
            "activations",
            "snapshot_steps",
            "taus",
            "sat_sigma_w2",
            "bd_widths",
            "bd_depths",
            "bd_activations",
            "kill_lrs",
        ):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        check_activations(self, "activations", "bd_activations")
        check_choice(self, "init", PLAIN_INITS)
        check_ints(self, {"data_seed": 0})
        positive = ("seeds", "depth", "width", "steps", "n_train", "n_probe", "bd_trials")
        check_ints(self, dict.fromkeys(positive, 1))
        check_ints(self, {"bd_grid": 2, "kill_seeds": 2, "sat_seeds": 2, "bd_ring": 4})
        for key in ("activations", "bd_activations"):
            if not getattr(self, key):
                raise ValueError(f"{key} must name at least one activation")
        if not (isinstance(self.lr, float | int) and 0 < self.lr < math.inf):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        steps = self.snapshot_steps
        if (
            not steps
            or steps[0] != 0
            or any(isinstance(s, bool) or not isinstance(s, int) for s in steps)
            or list(steps) != sorted(set(steps))
            or steps[-1] > self.steps
        ):
            raise ValueError(
                f"snapshot_steps must be increasing integers from 0 to at most steps = "
                f"{self.steps}, got {steps}"
            )
        for key, low in (("taus", 0.0), ("sat_sigma_w2", None), ("kill_lrs", None)):
            values = getattr(self, key)
            ok = values and all(
                isinstance(v, float | int)
                and math.isfinite(v)
                and (v >= low if low is not None else v > 0)
                for v in values
            )
            if not ok:
                bound = ">= 0" if low is not None else "> 0"
                raise ValueError(f"{key} must be finite numbers {bound}, got {values}")
        for key in ("bd_widths", "bd_depths"):
            values = getattr(self, key)
            if not values or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values
            ):
                raise ValueError(f"{key} must be integers >= 1, got {values}")
            if list(values) != sorted(set(values)):
                raise ValueError(f"{key} must be increasing without repeats, got {values}")


# ------------------------------------------------------------------------------ data


def make_task(cfg: Config, task: str) -> dict[str, torch.Tensor]:
    """Training set and probe inputs of ``task``: ``x`` ``(n, in)``, regression targets
    ``(n, 1)``, classification labels ``(n,)``."""
    if task == "regression":
        gen = torch.Generator().manual_seed(derive_seed(cfg.data_seed, "unit-states", task))
        x = (2 * torch.rand(cfg.n_train, 1, generator=gen, dtype=torch.float64) - 1) * math.pi
        y = torch.sin(x) + NOISE * torch.randn(x.shape, generator=gen, dtype=torch.float64)
        probe = torch.linspace(-math.pi, math.pi, cfg.n_probe, dtype=torch.float64)[:, None]
        return {"x": x.float(), "y": y.float(), "probe": probe.float()}
    split = make_split("moons", cfg.data_seed, n_train=cfg.n_train, n_test=cfg.n_probe)
    return {"x": split.x_train, "y": split.y_train, "probe": split.x_test}


# ------------------------------------------------------------------------------ probing


@torch.no_grad()
def unit_fractions(
    model: EnsembleMLP, x: torch.Tensor, taus: tuple[float, ...]
) -> dict[str, torch.Tensor]:
    """Every fraction of :func:`fraction_keys` for every member and hidden layer on the probe
    inputs ``x``: ``{key: (E, depth) float64}``, layer 1 (nearest the input) first.

    ``saturated`` and ``saturated_share`` are NaN for members whose activation has no
    saturation band (:func:`~actlab.probes.functional.saturation_band`); the others are computed
    for every member (whether they can be non-zero is :func:`applicable`'s business).
    """
    _, hidden = model(x, return_hidden=True)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in fraction_keys(taus)}
    for z, h in hidden:  # (E, B, width)
        sat = torch.full((model.E,), math.nan, dtype=torch.float64, device=h.device)
        share = sat.clone()
        for run in model.runs:
            band = Fm.saturation_band(run.activation)
            if band is not None:
                sat[run.start : run.stop] = Fm.saturated_fraction(h[run.start : run.stop], *band)
                share[run.start : run.stop] = Fm.saturated_pair_fraction(
                    h[run.start : run.stop], *band
                )
        out["sparsity"].append(Fm.sparsity(h))
        out["dead"].append(Fm.dead_fraction(h))
        out["inactive"].append(Fm.inactive_fraction(z))
        out["saturated"].append(sat)
        out["saturated_share"].append(share)
        for t in taus:
            out[f"dormant_{t:g}"].append(Fm.dormant_fraction(h, t))
    return {k: torch.stack(v, dim=1) for k, v in out.items()}


def applicable(activation: str | Activation) -> dict[str, bool]:
    """Which fractions can be non-zero for ``activation`` (the others are 0 by construction,
    or, for ``inactive`` of a bounded activation, not a notion of being off).

    * ``dead`` and ``sparsity`` (output exactly 0): only where phi has an exact zero region
      (:func:`~actlab.probes.functional.dead_kind` is ``"dead"``, e.g. ReLU); leaky ReLU, GELU
      and SiLU are 0 only at ``z = 0`` exactly, tanh likewise, sigmoid never.
    * ``inactive`` (``z < 0`` on every input): for ReLU-like activations (``dead_kind`` not None).
    * ``saturated`` and ``saturated_share``: only for bounded monotone activations
      (:func:`~actlab.probes.functional.saturation_band` not None: tanh, sigmoid); ReLU cannot
      saturate.
    * ``dormant_*``: every activation.
    """
    act = get_activation(activation)
    kind = Fm.dead_kind(act)
    band = Fm.saturation_band(act) is not None
    return {
        "sparsity": kind == "dead",
        "dead": kind == "dead",
        "inactive": kind is not None,
        "saturated": band,
        "saturated_share": band,
        "dormant": True,
    }


def underflow_z(activation: str | Activation) -> float | None:
    """The largest ``z < 0`` at which the activation's float32 output is exactly 0 (its output
    rounds to 0 at and below it), searched on ``-10^k`` for ``k`` in ``[-3, 3]`` (6001 points);
    None if there is none there. ReLU-like zero regions give the grid's largest point; PyTorch's
    GELU gives about -5.6 (``1 + erf(z/sqrt 2)`` rounds to 0); SiLU and sigmoid about -89; tanh
    and leaky ReLU None."""
    act = get_activation(activation)
    params = [torch.tensor(float(v)) for v in act.params.values()]
    z = -torch.logspace(-3, 3, 6001, dtype=torch.float32)
    with torch.no_grad():
        zero = z[act.fn(z, *params) == 0]
    return float(zero.max()) if len(zero) else None


def saturation_theory(
    activation: str, probe: torch.Tensor, depth: int, first: tuple, hidden: tuple
) -> np.ndarray:
    """Predicted saturated share of every hidden layer ``(depth,)``: the mean over the probe
    inputs of :func:`actlab.theory.saturation_fraction` at ``q^l(x)`` from
    :func:`actlab.theory.forward_q`, started from ``q^1(x) = sigma_w^2 mean_i x_i^2 +
    sigma_b^2`` with the first layer's variances ``first`` and continued with ``hidden``
    (``(sigma_w^2, sigma_b^2)`` pairs). NaN where the activation has no saturation band."""
    band = Fm.saturation_band(get_activation(activation))
    if band is None:
        return np.full(depth, np.nan)
    x = probe.double().numpy()
    q1 = first[0] * (x**2).mean(axis=1) + first[1]  # (B,)
    q = theory.forward_q(activation, q1, depth, *hidden)  # (depth, B)
    return theory.saturation_fraction(activation, q, band).mean(axis=1)


def first_and_hidden_variances(init: str, in_features: int, width: int):
    """``(sigma_w^2, sigma_b^2)`` of the first layer and of the hidden-to-hidden layers."""
    return theory.init_variances(init, in_features, width), theory.init_variances(init, width)


def uniform_sum_cdf(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """CDF at ``t`` of ``U_1 + ... + U_n`` with independent ``U_i ~ U(-c_i, c_i)``, ``c_i > 0``:
    ``(1 / (n! prod 2 c_i)) sum_S (-1)^|S| (t + sum_i c_i - 2 sum_{i in S} c_i)_+^n`` over the
    subsets ``S`` (the piecewise polynomial of a box spline; n = 1 is a uniform, n = 2 a
    trapezoid). Exact up to float rounding for the few terms of a first layer."""
    c = np.asarray(c, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    n, total = len(c), float(c.sum())
    acc = np.zeros_like(t)
    for mask in range(2**n):
        chosen = [(mask >> i) & 1 for i in range(n)]
        shift = total - 2.0 * sum(ci for ci, on in zip(c, chosen, strict=True) if on)
        acc += (-1.0) ** sum(chosen) * np.clip(t + shift, 0.0, None) ** n
    cdf = acc / (math.factorial(n) * float(np.prod(2.0 * c)))
    return np.where(t >= total, 1.0, np.where(t <= -total, 0.0, np.clip(cdf, 0.0, 1.0)))


def band_in_z(activation: str | Activation) -> tuple[float, float] | None:
    """The pre-activations ``(z_lo, z_hi)`` at which a bounded monotone activation leaves its
    non-saturated band (``phi(z_lo) = low``, ``phi(z_hi) = high``), or None without a band."""
    from scipy.optimize import brentq

    act = get_activation(activation)
    band = Fm.saturation_band(act)
    if band is None:
        return None

    def phi(v: float) -> float:
        return float(act.fn(torch.tensor(v, dtype=torch.float64)))

    lo, hi = (brentq(lambda v, b=b: phi(v) - b, -60.0, 60.0, xtol=1e-13) for b in band)
    return lo, hi


def first_layer_share(activation: str, init: str, probe: torch.Tensor, width: int) -> float | None:
    """The exact expected saturated share of the first hidden layer over the probe inputs for an
    initialisation with *uniform* weights (``torch``: weights and bias ``U(-B, B)``,
    ``B = 1/sqrt(fan_in)``; ``xavier``: ``U(-B, B)``, ``B = sqrt(6/(fan_in + width))``, no bias):
    ``z = w . x + b`` of one input is a sum of a few uniform numbers, not Gaussian, so the
    mean-field formula is only an approximation there. None for Gaussian initialisations
    (the formula is exact at layer 1) or an activation without a saturation band."""
    zb = band_in_z(activation)
    if zb is None or init not in ("torch", "xavier"):
        return None
    x = probe.double().numpy()
    fan_in = x.shape[1]
    bound = 1 / math.sqrt(fan_in) if init == "torch" else math.sqrt(6 / (fan_in + width))
    shares = []
    for row in x:
        c = [bound * abs(v) for v in row if v != 0] + ([bound] if init == "torch" else [])
        if not c:  # z = 0 exactly
            shares.append(float(not zb[0] < 0.0 < zb[1]))
            continue
        lo, hi = uniform_sum_cdf(np.array([zb[0], zb[1]]), np.array(c))
        shares.append(float(lo + 1.0 - hi))
    return float(np.mean(shares))


# ------------------------------------------------------------------------------ training


def members(cfg: Config) -> pd.DataFrame:
    """One row per member of a training ensemble: ``member, activation, seed`` (activation
    outermost, so members sharing one are adjacent)."""
    rows = [(a, s) for a in cfg.activations for s in range(cfg.seeds)]
    table = pd.DataFrame(rows, columns=["activation", "seed"])
    table.insert(0, "member", np.arange(len(table)))
    return table


def _train_task(cfg: Config, task: str) -> dict[str, np.ndarray]:
    data = {k: v.to(cfg.device) for k, v in make_task(cfg, task).items()}
    table = members(cfg)
    in_features = data["x"].shape[1]
    out_features = 1 if task == "regression" else 2
    model = EnsembleMLP(
        in_features,
        [cfg.width] * cfg.depth,
        out_features,
        list(table.activation),
        list(table.seed),
        init=cfg.init,
        device=cfg.device,
    )
    keys = fraction_keys(cfg.taus)
    snaps = {k: np.empty((len(cfg.snapshot_steps), model.E, cfg.depth)) for k in keys}

    def observe(step: int) -> None:
        i = cfg.snapshot_steps.index(step)
        for k, v in unit_fractions(model, data["probe"], cfg.taus).items():
            snaps[k][i] = v.cpu().numpy()

    def callback(state: StepState) -> None:
        observe(state.step)

    early = [s for s in cfg.snapshot_steps if s < cfg.steps]
    loss = "mse" if task == "regression" else "cross_entropy"
    result = train(
        model,
        data["x"],
        data["y"],
        TrainConfig(epochs=cfg.steps, lr=cfg.lr, loss=loss),
        callbacks=[Callback(callback, at=early)],
    )
    if cfg.steps in cfg.snapshot_steps:
        observe(cfg.steps)
    return {
        "fractions": np.stack([snaps[k] for k in keys]),  # key, snapshot, member, layer
        "loss": result.loss.numpy().astype(np.float64),  # step, member
        "diverged": result.diverged_step.numpy(),
    }


# ------------------------------------------------------------------------------ saturation at init


def _saturation_sweep(cfg: Config) -> dict[str, np.ndarray]:
    """Saturated share per layer at initialisation with ``N(0, sigma_w^2/fan_in)`` weights and
    zero biases, for each bounded activation of the config, sigma_w^2 and each of ``sat_seeds``
    networks (one ensemble per activation and sigma_w^2, so memory stays small; seed s draws the
    same standard weights for every activation and sigma_w^2, rescaled)."""
    acts = [a for a in cfg.activations if applicable(a)["saturated"]]
    data = make_task(cfg, "classification")
    out = np.zeros((len(acts), len(cfg.sat_sigma_w2), cfg.sat_seeds, cfg.depth))
    for i, act in enumerate(acts):
        for j, sw in enumerate(cfg.sat_sigma_w2):
            model = EnsembleMLP(
                2,
                [cfg.width] * cfg.depth,
                2,
                act,
                list(range(cfg.sat_seeds)),
                init="mean_field",
                sigma_w2=1.0,
                sigma_b2=0.0,
            )
            with torch.no_grad():
                for layer in range(model.n_layers):
                    model.weight(layer).mul_(math.sqrt(sw))
            out[i, j] = unit_fractions(model, data["probe"], ())["saturated_share"].numpy()
    return {"measured": out}


# ------------------------------------------------------------------------------ born dead


def bd_probes(grid: int) -> torch.Tensor:
    """The born-dead probe inputs: a ``grid x grid`` grid on ``[-1, 1]^2`` ``(grid^2, 2)``."""
    t = torch.linspace(-1.0, 1.0, grid, dtype=torch.float64)
    return torch.cartesian_prod(t, t)


BD_FIXED_INPUT = (0.6, 0.8)
"""The fixed input of the born-dead formula (any non-zero input would do)."""


def rai_weights(E: int, fan_out: int, fan_in: int, gen: torch.Generator) -> torch.Tensor:
    """Randomized asymmetric initialisation (our reading of Lu et al. 2019), ``(E, out, in)``:
    per unit one incoming weight, at a position drawn uniformly, from ``Beta(2, 1)`` (positive,
    asymmetric; ``E[w^2] = 1/2``), the other ``fan_in - 1`` from ``N(0, s^2)`` with
    ``s^2 = (2 - 1/2)/(fan_in - 1)``, so that the row's total second moment is He's ``2``.
    With ``fan_in = 1`` the single weight is the positive one."""
    a, b = RAI_SPECIAL
    special_m2 = a * (a + 1) / ((a + b) * (a + b + 1))  # E[w^2] of Beta(a, b)
    rest = max(fan_in - 1, 1)
    sd = math.sqrt((RAI_SECOND_MOMENT - special_m2) / rest)
    w = torch.randn(E, fan_out, fan_in, generator=gen, dtype=torch.float64) * sd
    pos = torch.randint(fan_in, (E, fan_out), generator=gen)
    # Beta(a, b) = G_a / (G_a + G_b) with G_k ~ Gamma(k): for integer k a sum of k standard
    # exponentials, drawn from the generator (torch.distributions has no generator argument).
    g_a = -torch.log1p(-torch.rand(int(a), E, fan_out, generator=gen, dtype=torch.float64)).sum(0)
    g_b = -torch.log1p(-torch.rand(int(b), E, fan_out, generator=gen, dtype=torch.float64)).sum(0)
    special = g_a / (g_a + g_b)
    w.scatter_(2, pos[..., None], special[..., None])
    return w


def draw_bd_weights(
    variant: str, width: int, depth: int, trials: int, seed: int
) -> list[torch.Tensor]:
    """The born-dead weights, ``depth`` tensors ``(trials, width, fan_in)`` (2 inputs): He
    ``N(0, 2/fan_in)`` for an activation name (the same draw for every activation: it depends
    on ``seed`` and ``width`` only), :func:`rai_weights` for ``"relu_rai"``. Biases are zero."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "born-dead", width))
    weights, fan_in = [], 2
    for _ in range(depth):
        if variant == "relu_rai":
            w = rai_weights(trials, width, fan_in, gen)
        else:
            w = torch.randn(trials, width, fan_in, generator=gen, dtype=torch.float64)
            w *= math.sqrt(2.0 / fan_in)
        weights.append(w)
        fan_in = width
    return weights


def bd_ring(n: int) -> torch.Tensor:
    """``n`` directions evenly spaced on the unit circle, ``(n, 2)`` float64."""
    angle = 2.0 * math.pi * torch.arange(n, dtype=torch.float64) / n
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def _first_constant(act: Activation, params: list, weights: list[torch.Tensor], x: torch.Tensor,
                    subsets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # fmt: skip
    """Per member, the first hidden layer (1-based; ``len(weights) + 1`` if none) whose output
    is the same on every row of ``x`` restricted to each index set of ``subsets``. Zero-bias
    layers keep a constant input constant, so a member constant on every row of ``x`` is done
    and dropped (it stays constant deeper)."""
    E, depth = weights[0].shape[0], len(weights)
    first = {k: torch.full((E,), depth + 1, dtype=torch.long) for k in subsets}
    alive = torch.arange(E)
    h = x.expand(E, *x.shape)
    for layer, w in enumerate(weights, start=1):
        h = act.fn(torch.bmm(h, w[alive].transpose(1, 2)), *params)  # (alive, P, N)
        equal = (h == h[:, :1]).all(dim=2)  # (alive, P): row p equals row 0
        for key, idx in subsets.items():
            same = equal[:, idx].all(dim=1)
            new = same & (first[key][alive] > depth)
            first[key][alive[new]] = layer
        done = equal.all(dim=1)
        alive, h = alive[~done], h[~done]
        if not len(alive):
            break
    return first


def bd_events(
    activation: str,
    weights: list[torch.Tensor],
    probes: torch.Tensor,
    fixed_input: torch.Tensor,
    depths: tuple[int, ...],
    ring: torch.Tensor | None = None,
    chunk: int = 256,
) -> dict[str, np.ndarray]:
    """Counts over the members of zero-bias networks with ``weights`` (``(E, out, in)`` each)
    at each depth ``D`` of ``depths``.

    * ``fixed``: some hidden layer ``<= D`` has ``z <= 0`` on every unit at ``fixed_input``
      ``(in,)``.
    * ``constant_grid``: hidden layer ``D``'s output is the same on every row of ``probes``
      ``(P, in)`` and at the fixed input (then the network's output is constant; with random
      output weights the converse holds with probability 1).
    * ``constant``: the same on the probes, the fixed input and every row of ``ring`` ``(R, in)``
      (``constant_grid`` when ``ring`` is None); ``constant_half``: with every second row of
      ``ring`` only, a check of the probes' resolution. The ring is evaluated only for members
      constant on the grid at the deepest depth (a member that is not, is not constant at any
      depth: constancy at one layer persists deeper without biases), ``chunk`` members at a time.

    For ReLU a network constant on a grid that holds two inputs ``x`` and ``3x`` is zero there
    (it is positively homogeneous without biases), so ``constant`` implies ``fixed`` member by
    member."""
    act = get_activation(activation)
    params = [torch.tensor(float(v), dtype=torch.float64) for v in act.params.values()]
    x = torch.cat([probes.double(), fixed_input.double()[None]])
    E = weights[0].shape[0]
    h = x.expand(E, *x.shape)  # (E, P+1, in); the last row is the fixed input
    fixed_off = torch.zeros(E, dtype=torch.bool)
    fixed, constant = [], []
    for layer, w in enumerate(weights, start=1):
        z = torch.bmm(h, w.transpose(1, 2))  # (E, P+1, N)
        h = act.fn(z, *params)
        fixed_off |= (z[:, -1, :] <= 0).all(dim=-1)
        if layer in depths:
            fixed.append(int(fixed_off.sum()))
            constant.append(int((h == h[:, :1, :]).all(dim=(1, 2)).sum()))
    out = {"fixed": np.asarray(fixed), "constant_grid": np.asarray(constant)}
    if ring is None:
        out["constant"] = out["constant_half"] = out["constant_grid"].copy()
        return out
    candidates = torch.nonzero((h == h[:, :1, :]).all(dim=(1, 2))).flatten()
    x_all = torch.cat([x, ring.double()])
    P, R = len(x), len(ring)
    subsets = {
        "constant": torch.arange(P + R),
        "constant_half": torch.cat([torch.arange(P), P + torch.arange(0, R, 2)]),
    }
    first: dict[str, list[torch.Tensor]] = {k: [] for k in subsets}
    for start in range(0, len(candidates), chunk):
        idx = candidates[start : start + chunk]
        got = _first_constant(act, params, [w[idx] for w in weights], x_all, subsets)
        for key in subsets:
            first[key].append(got[key])
    for key, parts in first.items():
        f = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
        out[key] = np.asarray([int((f <= d).sum()) for d in depths])
    return out


def born_dead_counts(
    variant: str,
    width: int,
    depths: tuple[int, ...],
    trials: int,
    grid: int,
    seed: int,
    ring: int = 0,
) -> dict[str, np.ndarray]:
    """:func:`bd_events` of ``variant`` (an activation name with He weights, or
    ``"relu_rai"``) on :func:`draw_bd_weights`, probes :func:`bd_probes`, the fixed input
    :data:`BD_FIXED_INPUT` and, if ``ring`` > 0, ``ring`` directions :func:`bd_ring`."""
    act = "relu" if variant == "relu_rai" else variant
    weights = draw_bd_weights(variant, width, max(depths), trials, seed)
    x0 = torch.tensor(BD_FIXED_INPUT, dtype=torch.float64)
    return bd_events(act, weights, bd_probes(grid), x0, depths, bd_ring(ring) if ring else None)


def bd_variants(cfg: Config) -> tuple[str, ...]:
    return tuple(cfg.bd_activations) + BD_VARIANTS_EXTRA


# ------------------------------------------------------------------------------ one step


@torch.no_grad()
def _dead_units(model: EnsembleMLP, x: torch.Tensor) -> torch.Tensor:
    """``(E, depth, width)`` bool: hidden units whose output is 0 on every probe input."""
    _, hidden = model(x, return_hidden=True)
    return torch.stack([(h == 0).all(dim=1) for _, h in hidden], dim=1)


@torch.no_grad()
def _mse(model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Training MSE per member ``(E,)`` float64."""
    return (model(x) - y).double().square().mean(dim=(1, 2)).numpy()


def one_step_kill(cfg: Config) -> dict[str, np.ndarray]:
    """One full-batch SGD step of a ReLU network per (learning rate, seed) from the same
    initial weights per seed; returns per member the fraction of hidden units dead on the probe
    inputs after the step that were not before, overall ``killed`` ``(lr, seed)`` and per
    layer ``killed_layer`` ``(lr, seed, depth)``, and the dead fraction before ``dead_before``
    ``(seed,)``; the training MSE before the step ``loss_before`` ``(seed,)`` and after it
    ``loss_after`` ``(lr, seed)``."""
    data = make_task(cfg, "regression")
    rows = [(lr, s) for lr in cfg.kill_lrs for s in range(cfg.kill_seeds)]
    model = EnsembleMLP(1, [cfg.width] * cfg.depth, 1, "relu", [r[1] for r in rows], init=cfg.init)
    before = _dead_units(model, data["probe"])
    loss_before = _mse(model, data["x"], data["y"])
    train(
        model,
        data["x"],
        data["y"],
        TrainConfig(epochs=1, optimizer=OptimizerConfig(name="sgd")),
        lr=[r[0] for r in rows],
    )
    after = _dead_units(model, data["probe"])
    loss_after = _mse(model, data["x"], data["y"])
    killed = (after & ~before).double()  # (E, depth, width)
    L, S = len(cfg.kill_lrs), cfg.kill_seeds
    return {
        "killed": killed.mean(dim=(1, 2)).numpy().reshape(L, S),
        "loss_before": loss_before.reshape(L, S)[0],
        "loss_after": loss_after.reshape(L, S),
        "killed_layer": killed.mean(dim=2).numpy().reshape(L, S, cfg.depth),
        "dead_before": before.double().mean(dim=(1, 2)).numpy().reshape(L, S)[0],
    }


# ------------------------------------------------------------------------------ run


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Every part, one chunk each (born dead: one chunk per variant and width)."""
    variants = bd_variants(cfg)
    progress.expect(len(TASKS) * cfg.steps + 2 + len(variants) * len(cfg.bd_widths))
    trained = {
        task: chunks(f"train-{task}", lambda task=task: _train_task(cfg, task), work=cfg.steps)
        for task in TASKS
    }
    sweep = chunks("saturation", lambda: _saturation_sweep(cfg), work=1)
    bd = {
        (v, n): chunks(
            f"born-dead-{v}-N{n}",
            lambda v=v, n=n: born_dead_counts(
                v, n, cfg.bd_depths, cfg.bd_trials, cfg.bd_grid, cfg.data_seed, cfg.bd_ring
            ),
            work=1,
        )
        for v in variants
        for n in cfg.bd_widths
    }
    kill = chunks("one-step", lambda: one_step_kill(cfg), work=1)

    keys = fraction_keys(cfg.taus)
    table = members(cfg)
    arrays: dict[str, np.ndarray] = {}
    axes: dict[str, tuple[str, ...]] = {}
    coords: dict[str, list] = {}
    frames = []
    for task in TASKS:
        fr = trained[task]["fractions"]  # key, snapshot, member, layer
        S = cfg.seeds
        A = len(cfg.activations)
        arrays[f"fractions_{task}"] = fr.reshape(len(keys), len(cfg.snapshot_steps), A, S, -1)
        axes[f"fractions_{task}"] = ("fraction", "step", "activation", "seed", "layer")
        coords[f"fractions_{task}/fraction"] = list(keys)
        coords[f"fractions_{task}/step"] = list(cfg.snapshot_steps)
        coords[f"fractions_{task}/activation"] = list(cfg.activations)
        coords[f"fractions_{task}/layer"] = list(range(1, cfg.depth + 1))
        loss = trained[task]["loss"]
        frame = pd.DataFrame(
            {
                "member": np.tile(table.member.to_numpy(), loss.shape[0]),
                "step": np.repeat(np.arange(loss.shape[0]), loss.shape[1]),
                "metric": f"{task}/train_loss",
                "value": loss.reshape(-1),
            }
        )
        frames.append(frame.merge(table, on="member"))
    metrics = pd.concat(frames, ignore_index=True)

    theory_init = {}
    for task in TASKS:
        data = make_task(cfg, task)
        first, hidden = first_and_hidden_variances(cfg.init, data["x"].shape[1], cfg.width)
        theory_init[task] = np.stack(
            [saturation_theory(a, data["probe"], cfg.depth, first, hidden) for a in cfg.activations]
        )
        gauss_first = theory_init[task][:, 0].copy()
        for a, act in enumerate(cfg.activations):
            exact = first_layer_share(act, cfg.init, data["probe"], cfg.width)
            if exact is not None:
                theory_init[task][a, 0] = exact
        arrays[f"theory_share_{task}"] = theory_init[task]
        axes[f"theory_share_{task}"] = ("activation", "layer")
        arrays[f"theory_first_gauss_{task}"] = gauss_first
        axes[f"theory_first_gauss_{task}"] = ("activation",)

    sat_acts = [a for a in cfg.activations if applicable(a)["saturated"]]
    probe = make_task(cfg, "classification")["probe"]
    arrays["sat_measured"] = sweep["measured"]
    axes["sat_measured"] = ("activation", "sigma_w2", "seed", "layer")
    arrays["sat_theory"] = np.asarray(
        [
            [
                saturation_theory(a, probe, cfg.depth, (sw, 0.0), (sw, 0.0))
                for sw in cfg.sat_sigma_w2
            ]
            for a in sat_acts
        ]
    ).reshape(len(sat_acts), len(cfg.sat_sigma_w2), cfg.depth)
    axes["sat_theory"] = ("activation", "sigma_w2", "layer")
    for name in ("sat_measured", "sat_theory"):
        coords[f"{name}/activation"] = sat_acts
        coords[f"{name}/sigma_w2"] = list(cfg.sat_sigma_w2)

    for what in ("fixed", "constant", "constant_grid", "constant_half"):
        arrays[f"bd_{what}"] = np.asarray(
            [[bd[(v, n)][what] for n in cfg.bd_widths] for v in variants]
        )
        axes[f"bd_{what}"] = ("variant", "width", "depth")
        coords[f"bd_{what}/variant"] = list(variants)
        coords[f"bd_{what}/width"] = list(cfg.bd_widths)
        coords[f"bd_{what}/depth"] = list(cfg.bd_depths)
    arrays["bd_formula"] = theory.born_dead_probability(
        np.asarray(cfg.bd_widths)[:, None], np.asarray(cfg.bd_depths)[None, :]
    )
    axes["bd_formula"] = ("width", "depth")

    arrays["kill"] = kill["killed"]
    axes["kill"] = ("lr", "seed")
    arrays["kill_layer"] = kill["killed_layer"]
    axes["kill_layer"] = ("lr", "seed", "layer")
    coords["kill/lr"] = coords["kill_layer/lr"] = list(cfg.kill_lrs)
    arrays["dead_before"] = kill["dead_before"]
    axes["dead_before"] = ("seed",)
    arrays["kill_loss_before"] = kill["loss_before"]
    axes["kill_loss_before"] = ("seed",)
    arrays["kill_loss_after"] = kill["loss_after"]
    axes["kill_loss_after"] = ("lr", "seed")
    coords["kill_loss_after/lr"] = list(cfg.kill_lrs)

    summary = summarise(cfg, arrays, trained)
    return Results(metrics, arrays, axes, coords, summary)


# ------------------------------------------------------------------------------ summary


def _paired(a: np.ndarray, b: np.ndarray) -> bool:
    """The paired t-test, seed by seed: ``a`` and ``b`` come from the same seeds' networks."""
    return paired_differs(np.asarray(a, float), np.asarray(b, float))


def _welch(a: np.ndarray, b: np.ndarray) -> bool:
    return welch_differs(np.asarray(a, float), np.asarray(b, float))


def _bernoulli(k: int, n: int) -> np.ndarray:
    return np.r_[np.ones(k), np.zeros(n - k)]


def summarise(cfg: Config, arrays: dict[str, np.ndarray], trained: dict) -> dict[str, Any]:
    """Everything the report states, computed from the arrays."""
    keys = fraction_keys(cfg.taus)
    out: dict[str, Any] = {
        "activations": list(cfg.activations),
        "seeds": cfg.seeds,
        "depth": cfg.depth,
        "width": cfg.width,
        "steps": cfg.steps,
        "lr": cfg.lr,
        "init": cfg.init,
        "taus": list(cfg.taus),
        "fractions": list(keys),
        "snapshot_steps": list(cfg.snapshot_steps),
        "n_train": cfg.n_train,
        "n_probe": cfg.n_probe,
        "noise": NOISE,
        "applicable": {a: applicable(a) for a in cfg.activations},
        "underflow": {a: underflow_z(a) for a in cfg.activations},
        "init_variances": list(theory.init_variances(cfg.init, cfg.width)),
    }
    # --- training: layer-mean of each fraction at init and at the last snapshot, per activation
    tasks = {}
    for task in TASKS:
        fr = arrays[f"fractions_{task}"]  # key, step, act, seed, layer
        theo = arrays[f"theory_share_{task}"]  # act, layer
        rows = []
        for a, act in enumerate(cfg.activations):
            row: dict[str, Any] = {"activation": act}
            for k, key in enumerate(keys):
                start = fr[k, 0, a].mean(axis=-1)  # per seed
                end = fr[k, -1, a].mean(axis=-1)
                values = fr[k, :, a]
                finite = values[np.isfinite(values)]
                row[key] = {
                    "start": mean_ci(start, bounds=(0, 1)),
                    "end": mean_ci(end, bounds=(0, 1)),
                    "changed": _paired(start, end),
                    "worst_end": _worst(fr[k, -1, a]),
                    "max": float(finite.max()) if finite.size else math.nan,
                }
            off = "dead" if applicable(act)["dead"] else "inactive"
            per_layer = fr[keys.index(off), 0, a].mean(axis=0)  # mean over seeds, per layer
            row["off_init_first"] = float(per_layer[0])
            row["off_init_last"] = float(per_layer[-1])
            share0 = fr[keys.index("saturated_share"), 0, a]  # seed, layer
            if np.isfinite(theo[a]).all():
                mean_layer = share0.mean(axis=0)
                row["theory_gap"] = float(np.max(np.abs(mean_layer - theo[a])))
                row["theory_max"] = float(np.max(theo[a]))
                row["measured_init_max"] = float(np.max(mean_layer))
                row["first_theory"] = float(theo[a][0])
                row["first_gauss"] = float(arrays[f"theory_first_gauss_{task}"][a])
                row["first_measured"] = mean_ci(share0[:, 0], bounds=(0, 1))
            loss = trained[task]["loss"]
            sl = slice(a * cfg.seeds, (a + 1) * cfg.seeds)
            row["loss_start"] = mean_ci(loss[0, sl], bounds=(0, math.inf))
            row["loss_end"] = mean_ci(loss[-1, sl], bounds=(0, math.inf))
            row["diverged"] = int((trained[task]["diverged"][sl] >= 0).sum())
            rows.append(row)
        tasks[task] = rows
    out["tasks"] = tasks
    # --- saturation at initialisation against theory
    sat = []
    meas, theo = arrays["sat_measured"], arrays["sat_theory"]
    sat_acts = [a for a in cfg.activations if applicable(a)["saturated"]]
    for i, act in enumerate(sat_acts):
        for j, sw in enumerate(cfg.sat_sigma_w2):
            m = meas[i, j]  # seed, layer
            mean, lo, hi = (np.asarray(v) for v in _band(m))
            t = theo[i, j]
            gap = np.abs(mean - t)
            k = int(np.argmax(gap))
            zero = [int(l + 1) for l in range(cfg.depth) if (m[:, l] == 0).all()]
            outside = [
                int(l + 1)
                for l in range(cfg.depth)
                if l + 1 not in zero and not lo[l] - 1e-12 <= t[l] <= hi[l] + 1e-12
            ]
            pairs = cfg.n_probe * cfg.width  # (input, unit) pairs of one layer of one network
            sat.append(
                {
                    "activation": act,
                    "sigma_w2": sw,
                    "max_gap": float(gap[k]),
                    "gap_layer": k + 1,
                    "measured_at": float(mean[k]),
                    "theory_at": float(t[k]),
                    "theory_last": float(t[-1]),
                    "measured_last": float(mean[-1]),
                    "layers_outside": outside,
                    "layers_zero": zero,
                    "depth": cfg.depth,
                    "zero_expected_pairs": float(max((t[l - 1] * pairs for l in zero), default=0)),
                }
            )
    out["saturation"] = sat
    out["sat_sigma_w2"] = list(cfg.sat_sigma_w2)
    out["sat_seeds"] = cfg.sat_seeds
    # --- born dead
    variants = bd_variants(cfg)
    formula = arrays["bd_formula"]
    cells = []
    for v, var in enumerate(variants):
        for i, n in enumerate(cfg.bd_widths):
            for j, d in enumerate(cfg.bd_depths):
                kf = int(arrays["bd_fixed"][v, i, j])
                kc = int(arrays["bd_constant"][v, i, j])
                extra = {
                    what: int(arrays[f"bd_{what}"][v, i, j])
                    for what in ("constant_grid", "constant_half")
                }
                cells.append(
                    {
                        "variant": var,
                        "width": n,
                        "depth": d,
                        "formula": float(formula[i, j]),
                        "fixed": proportion_ci(kf, cfg.bd_trials),
                        "constant": proportion_ci(kc, cfg.bd_trials),
                        **extra,
                    }
                )
    out["born_dead"] = cells
    out["bd_trials"] = cfg.bd_trials
    out["bd_grid"] = cfg.bd_grid
    out["bd_ring"] = cfg.bd_ring
    out["bd_fixed_input"] = list(BD_FIXED_INPUT)
    out["bd_widths"] = list(cfg.bd_widths)
    out["bd_depths"] = list(cfg.bd_depths)
    out["bd_variants"] = list(variants)
    out["rai_vs_relu"] = rai_comparison(cells, cfg.bd_trials)
    # --- one step
    kill = arrays["kill"]
    log_before = np.log10(arrays["kill_loss_before"])
    log_after = np.log10(arrays["kill_loss_after"])
    out["kill"] = [
        {
            "lr": lr,
            "killed": mean_ci(kill[i], bounds=(0, 1)),
            "differs_from_smallest": bool(i > 0 and _paired(kill[i], kill[0])),
            "loss_after": _geometric(log_after[i]),
            "loss_change": _loss_change(log_before, log_after[i]),
        }
        for i, lr in enumerate(cfg.kill_lrs)
    ]
    out["kill_loss_before"] = _geometric(log_before)
    out["kill_seeds"] = cfg.kill_seeds
    per_layer = arrays["kill_layer"][-1].mean(axis=0)  # the largest rate, mean over seeds
    out["kill_worst_layer"] = {
        "layer": int(np.argmax(per_layer)) + 1,
        "fraction": float(per_layer.max()),
        "lr": cfg.kill_lrs[-1],
    }
    out["dead_before"] = mean_ci(arrays["dead_before"], bounds=(0, 1))
    return out


def rai_comparison(cells: list[dict], trials: int) -> list[dict]:
    """Per (width, depth): whole-domain frequency of ReLU with RAI against symmetric He ReLU,
    Welch's test on the 0/1 outcomes."""
    by = {(c["variant"], c["width"], c["depth"]): c for c in cells}
    out = []
    for (var, n, d), c in by.items():
        if var != "relu_rai" or ("relu", n, d) not in by:
            continue
        base = by[("relu", n, d)]["constant"]
        mine = c["constant"]
        out.append(
            {
                "width": n,
                "depth": d,
                "relu": base,
                "rai": mine,
                "differs": _welch(_bernoulli(base["k"], trials), _bernoulli(mine["k"], trials)),
            }
        )
    return out


def _geometric(log10_values: np.ndarray) -> dict[str, float]:
    """Geometric mean and its 95% interval (taken on the log10 scale) of positive values given
    as their log10."""
    stat = mean_ci(log10_values)
    return {k: 10.0 ** stat[k] for k in ("mean", "lo", "hi")} | {"n": stat["n"]}


def _loss_change(log_before: np.ndarray, log_after: np.ndarray) -> str:
    """``lower`` or ``higher`` where the paired test on log10 losses (seed by seed) separates the
    loss after the step from the one before it, else ``within noise``."""
    if not _paired(log_before, log_after):
        return "within noise"
    return "lower" if log_after.mean() < log_before.mean() else "higher"


def _band(values: np.ndarray):
    """Mean and 95% interval over axis 0 (seeds), per column."""
    stats = [mean_ci(values[:, j], bounds=(0, 1)) for j in range(values.shape[1])]
    return (
        [s["mean"] for s in stats],
        [s["lo"] if np.isfinite(s["lo"]) else s["mean"] for s in stats],
        [s["hi"] if np.isfinite(s["hi"]) else s["mean"] for s in stats],
    )


def _worst(per_seed_layer: np.ndarray) -> dict[str, float] | None:
    """The layer (1-based) with the highest seed-mean fraction, or None where NaN."""
    means = per_seed_layer.mean(axis=0)
    if np.isnan(means).all():
        return None
    j = int(np.nanargmax(means))
    return {"layer": j + 1, "fraction": float(means[j])}


SMOKE = Config(
    activations=("relu", "leaky_relu", "tanh", "sigmoid"),
    seeds=2,
    depth=3,
    width=8,
    steps=6,
    snapshot_steps=(0, 3, 6),
    n_train=32,
    n_probe=24,
    sat_sigma_w2=(1.0, 8.0),
    sat_seeds=3,
    bd_widths=(2, 3),
    bd_depths=(1, 3, 6),
    bd_trials=200,
    bd_activations=("relu", "gelu"),
    bd_grid=5,
    bd_ring=16,
    kill_lrs=(0.1, 10.0),
    kill_seeds=3,
)
DEFAULT = Config()
FULL = Config(
    seeds=10,
    steps=1000,
    snapshot_steps=(0, 10, 30, 100, 300, 1000),
    sat_sigma_w2=(0.5, 1.0, 2.0, 3.0, 4.0, 8.0, 16.0, 32.0),
    sat_seeds=100,
    bd_widths=(2, 3, 4, 5, 6, 8, 10),
    bd_depths=(1, 2, 5, 10, 20, 50, 100),
    bd_trials=10000,
    bd_grid=20,
    bd_ring=4096,
    kill_lrs=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0),
    kill_seeds=50,
)

presets: dict[str, Config] = {"smoke": SMOKE, "default": DEFAULT, "full": FULL}
