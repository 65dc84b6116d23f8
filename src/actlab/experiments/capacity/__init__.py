"""Experiment ``capacity``: how well each activation represents functions at moderate depth and
width, with a fair learning-rate protocol, matched parameter counts and exact ReLU linear regions.

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``figures``
and ``report``, which renders ``exercises`` and their tested ``solutions``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.capacity.experiment import Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="capacity",
        title="Capacity: which functions each activation can fit at a given depth and width",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=80,
    )
)
