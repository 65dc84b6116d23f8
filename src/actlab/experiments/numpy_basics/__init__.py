"""Experiment ``numpy-basics``: the formulas in NumPy, linear collapse, stable softmax,
temperature, dead ReLU, RL output heads.

Modules, imported in one direction: ``config`` (settings, presets) -> ``parts`` (each study) ->
``experiment`` (``run``) -> ``figures`` and ``report``, which renders ``exercises`` and their
tested ``solutions``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.numpy_basics.config import Config, presets
from actlab.experiments.numpy_basics.experiment import run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="numpy-basics",
        title="NumPy from scratch",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=10,
    )
)
