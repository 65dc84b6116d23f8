"""Experiment ``deep-mlp``: 10 hidden layers on a noisy sine, one model per activation.

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``figures``
and ``report``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.deep_mlp.experiment import Config, presets, run
from actlab.experiments.deep_mlp.sweep import ADAPTER

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="deep-mlp",
        title="A 10-layer MLP on a noisy sine, one model per activation",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=40,
        sweep=ADAPTER,
    )
)
