"""Experiment ``gallery``: 27 activations and their derivatives, their properties measured.

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``figures``
and ``report``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.gallery.experiment import Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="gallery",
        title="Activation gallery",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=90,
    )
)
