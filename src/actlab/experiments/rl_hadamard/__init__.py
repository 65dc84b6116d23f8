"""Experiment ``rl-hadamard``: DQN, PPO and PQN agents with plain, Hadamard and widened networks,
trained as ensembles over seeds, with representation diagnostics and the paper's claims tested.

Modules, imported in one direction: ``experiment`` (config, presets and ``run``) -> ``claims``
(the verdicts) -> ``figures`` and ``report``, which renders ``exercises`` and their tested
``solutions``.
"""

from actlab.experiments.base import ExperimentSpec, deferred, register_experiment
from actlab.experiments.rl_hadamard.experiment import Config, presets, run

__all__ = ["Config", "presets", "run", "SPEC"]

SPEC = register_experiment(
    ExperimentSpec(
        name="rl-hadamard",
        title="Activations in reinforcement learning: the Hadamard representation",
        Config=Config,
        presets=presets,
        run=run,
        figures=deferred(f"{__name__}.figures", "figures"),
        report=deferred(f"{__name__}.report", "report"),
        order=88,
    )
)
