"""Experiment ``tiny-classifier``: 2-8-2 classifiers per activation on four toy tasks.

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``figures``
and ``report``, which renders ``exercises`` and their tested ``solutions``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.tiny_classifier.experiment import Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="tiny-classifier",
        title="Tiny classifiers: one 2-8-2 network per activation, on four toy tasks",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=30,
    )
)
