"""Experiment ``activation-swap``: tanh swapped for ReLU halfway through training,
Adam's state kept or reset.

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``figures``
and ``report``, which renders ``exercises`` and their tested ``solutions``.
"""

from actlab.experiments.activation_swap.experiment import Config, presets, run
from actlab.experiments.base import ExperimentSpec, deferred, register_experiment

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="activation-swap",
        title="Swapping activations mid-training: tanh, then ReLU, with Adam's state kept or reset",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=50,
    )
)
