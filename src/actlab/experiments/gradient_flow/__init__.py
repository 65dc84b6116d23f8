"""Experiment ``gradient-flow``: do gradients vanish or explode? Per-layer gradients at
initialisation against mean-field theory, tanh's phase diagram, and the picture during training.

Modules, imported in one direction: ``measure`` (what is measured and predicted) ->
``experiment`` (config, presets and ``run``) -> ``figures`` and ``report``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.gradient_flow.experiment import Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="gradient-flow",
        title="How gradients flow",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=60,
    )
)
