"""A small experiment for the store and CLI tests: real training, split into slow chunks, so that
a test can kill a run mid-way and resume it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from actlab.experiments.base import ExperimentSpec, Results, register_experiment, run_inline
from actlab.models import EnsembleMLP
from actlab.train import TrainConfig, train


@dataclass(frozen=True)
class Config:
    chunks: int = 6
    """Number of chunks (one seed each)."""
    epochs: int = 30
    """Adam steps per chunk."""
    pause: float = 0.0
    """Seconds each chunk sleeps after training (to give a test time to kill the run)."""

    def __post_init__(self) -> None:
        if self.chunks < 1:
            raise ValueError(f"chunks must be >= 1, got {self.chunks}")


def _chunk(seed: int, cfg: Config) -> dict:
    x = torch.linspace(-2, 2, 32)[:, None]
    model = EnsembleMLP(1, [8, 8], 1, ["tanh", "relu"], [seed, seed])
    result = train(model, x, torch.sin(2 * x), TrainConfig(epochs=cfg.epochs, lr=1e-2))
    time.sleep(cfg.pause)
    return {"loss": result.loss.numpy(), "seed": seed}


def run(cfg: Config, chunks=run_inline) -> Results:
    rows, finals = [], []
    for i in range(cfg.chunks):
        part = chunks(f"seed-{i}", lambda i=i: _chunk(i, cfg))
        for m, act in enumerate(("tanh", "relu")):
            member = 2 * i + m
            for step, value in enumerate(part["loss"][:, m]):
                rows.append((member, step, "train/loss", float(value), act, part["seed"]))
            finals.append(part["loss"][-1, m])
    metrics = pd.DataFrame(
        rows, columns=["member", "step", "metric", "value", "activation", "seed"]
    )
    arrays = {"final_loss": np.asarray(finals)}
    return Results(metrics, arrays, {"final_loss": ("member",)}, {}, {"n": len(finals)})


def figures(results: Results) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(results.arrays["final_loss"], "o")
    ax.set_xlabel("member")
    ax.set_ylabel("final loss")
    return {"final_loss": fig}


def report(results: Results) -> str:
    return f"# Slow\n\n{results.summary['n']} members.\n\n![](figures/final_loss.png)\n"


SPEC = register_experiment(
    ExperimentSpec(
        name="slow-test",
        title="Test experiment (chunks that take time)",
        Config=Config,
        presets={"smoke": Config(chunks=2, epochs=5), "default": Config(), "full": Config()},
        run=run,
        figures=figures,
        report=report,
        order=999,
    )
)
