"""Experiment ``single-neuron``: y = v phi(w x + b) + c against polynomial targets.

Modules, imported in one direction: ``config`` (settings, targets, presets) -> ``landscape`` and
``summary`` -> ``experiment`` (``run``) -> ``figures`` and ``report``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.single_neuron.config import Config, presets
from actlab.experiments.single_neuron.experiment import run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="single-neuron",
        title="Single-neuron playground: one hidden unit against polynomial targets",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=20,
    )
)
