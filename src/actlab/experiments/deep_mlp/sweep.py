"""The deep-MLP experiment as a sweep (``actlab sweep deep-mlp``): one member is one MLP
``1 -> depth x width -> 1`` trained full batch on the experiment's noisy sine
(:func:`~actlab.experiments.deep_mlp.experiment.make_data`: the same draws, so a sweep point
measures what the experiment measures for that activation, rate and seed).

Member fields (may differ within one ensemble pass): ``activation``, ``lr``, ``seed``. The
engine takes one initialisation scheme and one optimiser per ensemble, so ``init`` and
``optimizer`` are shape fields, like ``depth``, ``width``, ``epochs`` and the data fields.

Metrics per member, after the last step (NaN for a member that diverged):

* ``train/mse``: MSE on the training points;
* ``test/mse``: MSE on the held-out test draw;
* ``test/floor``: the empirical noise floor of this test draw, ``mean((y_test - sin x_test)^2)``:
  the test MSE of the true function itself (its expectation is ``noise**2``, but one draw of
  ``n_train - 1`` points scatters around it: 1.147 ``noise**2`` for ``data_seed=0``,
  ``n_train=200``); the same for every member of a data draw, kept for diverged members too;
* ``test/mse_over_floor``: ``test/mse / test/floor`` (1 = as good as the true function on this
  draw; below 1 = the model fits this draw's noise; NaN when ``noise = 0``);
* ``truth/mse``: MSE to the noiseless ``sin`` on ``n_grid`` points.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pandas as pd
import torch

from actlab.experiments.base import check_activations, check_choice, check_config, check_ints
from actlab.experiments.deep_mlp.experiment import Config, make_data
from actlab.models import PLAIN_INITS, EnsembleMLP
from actlab.optim import OPTIMIZERS, OptimizerConfig
from actlab.sweep import SweepAdapter
from actlab.train import TrainConfig, train

__all__ = ["Point", "ADAPTER", "run_pass", "empirical_floor"]

METRICS = ("train/mse", "test/mse", "test/floor", "test/mse_over_floor", "truth/mse")


@dataclass(frozen=True)
class Point:
    """One member of a deep-MLP sweep (the fields ``--grid``, ``--random`` and ``--set`` take)."""

    activation: str = "tanh"
    """Activation of every hidden layer (any registry name)."""
    lr: float = 1e-3
    """Learning rate."""
    seed: int = 0
    """Seed of the initial weights (set by --seeds)."""
    depth: int = 10
    """Number of hidden layers."""
    width: int = 64
    """Units per hidden layer."""
    epochs: int = 500
    """Full-batch optimiser steps."""
    optimizer: str = "adam"
    """Optimiser (sgd, momentum, adam, rmsprop), PyTorch's default hyper-parameters."""
    init: str = "torch"
    """Weight initialisation scheme (torch, xavier, he)."""
    n_train: int = 200
    """Training points on [-pi, pi]."""
    noise: float = 0.1
    """Standard deviation of the label noise (the noise floor is its square)."""
    n_grid: int = 200
    """Points of the dense grid on which the error to the true function is measured."""
    data_seed: int = 0
    """Seed of the data (noise draws)."""
    device: str = "cpu"
    """Where a pass's ensemble and data live (cpu, cuda, cuda:N); the numbers are the same to
    float rounding."""

    def __post_init__(self) -> None:
        check_config(self)
        check_activations(self, "activation")
        check_choice(self, "optimizer", OPTIMIZERS)
        check_choice(self, "init", PLAIN_INITS)
        check_ints(self, {"seed": 0, "data_seed": 0, "depth": 1, "width": 1, "epochs": 1})
        check_ints(self, {"n_train": 4, "n_grid": 1})
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.noise >= 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")


def base(cfg: Config) -> Point:
    """The point the preset ``cfg`` describes (its first activation, its fixed rate)."""
    return Point(
        activation=cfg.activations[0],
        lr=cfg.lr,
        depth=cfg.depth,
        width=cfg.width,
        epochs=cfg.epochs,
        init=cfg.init,
        n_train=cfg.n_train,
        noise=cfg.noise,
        n_grid=cfg.n_grid,
        data_seed=cfg.data_seed,
        device=cfg.device,
    )


def _mse(model: EnsembleMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-member MSE ``(E,)`` of the model's output on ``x`` ``(n, 1)`` against ``y``."""
    with torch.no_grad():
        return (model(x) - y).square().mean(dim=(1, 2))


def empirical_floor(data: dict[str, torch.Tensor]) -> float:
    """The test MSE of the true function on this draw: ``mean((y_test - sin x_test)^2)`` over
    the ``(n, 1)`` test points (the noise this draw's test labels carry; 0 without noise)."""
    x, y = data["x_test"].double().cpu(), data["y_test"].double().cpu()
    return float((y - torch.sin(x)).square().mean())


def run_pass(point: Point, members: pd.DataFrame) -> pd.DataFrame:
    """Train ``members`` (columns ``activation, lr, seed``) as one ensemble with ``point``'s
    shape; one row per member (:data:`METRICS` and ``diverged``). Member ``m`` starts from the
    weights of its seed alone (:class:`~actlab.models.EnsembleMLP`), and the trainer keeps
    members independent, so its numbers do not depend on the other members (to float rounding:
    batched products may sum in another order for another ensemble size)."""
    data = make_data(
        Config(
            n_train=point.n_train, noise=point.noise, n_grid=point.n_grid, data_seed=point.data_seed
        )
    )
    data = {k: v.to(point.device) for k, v in data.items()}
    model = EnsembleMLP(
        1,
        [point.width] * point.depth,
        1,
        list(members.activation),
        [int(s) for s in members.seed],
        init=point.init,
        device=point.device,
    )
    result = train(
        model,
        data["x_train"],
        data["y_train"],
        TrainConfig(epochs=point.epochs, optimizer=OptimizerConfig(name=point.optimizer)),
        lr=[float(v) for v in members.lr],
    )
    diverged = (result.diverged_step >= 0).numpy()
    out = {
        "train/mse": _mse(model, data["x_train"], data["y_train"]),
        "test/mse": _mse(model, data["x_test"], data["y_test"]),
        "truth/mse": _mse(model, data["x_grid"], data["y_grid"]),
    }
    frame = pd.DataFrame({k: v.double().cpu().numpy() for k, v in out.items()})
    floor = empirical_floor(data)
    frame["test/mse_over_floor"] = frame["test/mse"] / floor if floor > 0 else math.nan
    frame.loc[diverged, [m for m in METRICS if m != "test/floor"]] = math.nan
    frame["test/floor"] = floor
    frame["diverged"] = diverged
    return frame[[*METRICS, "diverged"]]


def _cost(point: Point) -> float:
    """FLOPs of one member's full-batch step: ``6 n sum(fan_in fan_out)`` (forward and the two
    products of the backward pass)."""
    sizes = [1, *[point.width] * point.depth, 1]
    return 6.0 * point.n_train * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


ADAPTER = SweepAdapter(
    Point=Point,
    member_fields=("activation", "lr", "seed"),
    metrics=METRICS,
    plotted=("test/mse_over_floor", "train/mse"),
    bounds={m: (0.0, math.inf) for m in METRICS},
    references={"test/mse_over_floor": 1.0},
    base=base,
    default_grid=lambda cfg: {"activation": tuple(cfg.activations)},
    default_seeds=lambda cfg: cfg.seeds,
    run_pass=run_pass,
    steps=lambda point: point.epochs,
    cost=_cost,
    shorten=lambda point, steps: dataclasses.replace(point, epochs=steps),
)
