"""Experiment ``stability``: the largest stable learning rate per activation and depth, the
divergence map, and sharpness against the thresholds 2/eta (GD) and 38/eta (Adam).

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``figures``
and ``report``, which renders ``exercises`` and their tested ``solutions``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.stability.experiment import Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="stability",
        title="Stability: big learning rates, deep stacks and the edge of stability",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=75,
    )
)
