"""Experiment ``unit-states``: how easily units turn on and off (dead, saturated and dormant
units over training, born-dead ReLU networks, units killed by one large step).

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``figures``
and ``report``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.unit_states.experiment import Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="unit-states",
        title="How units turn on and off",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=70,
    )
)
