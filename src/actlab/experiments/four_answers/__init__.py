"""Experiment ``four-answers``: the four questions' answers side by side, one row per activation,
each cell computed from the runs of gradient-flow, unit-states, stability and capacity.

Modules, imported in one direction: ``experiment`` (config, presets, the cells and ``run``) ->
``figures`` and ``report``, which renders ``exercises`` and their tested ``solutions``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.four_answers.experiment import NEEDS, Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="four-answers",
        title="The four answers, side by side",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=85,
        needs=NEEDS,
    )
)
