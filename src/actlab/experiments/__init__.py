"""Experiments: one module each, registered on import (see :mod:`actlab.experiments.base`)."""

from actlab.experiments.base import (
    ExperimentSpec,
    Results,
    UnknownExperimentError,
    get_experiment,
    list_experiments,
    register_experiment,
    run_inline,
)

# Each import registers one experiment; the order of the tutorial is each spec's `order`.
from actlab.experiments import gallery  # noqa: E402, F401  isort: skip
from actlab.experiments import numpy_basics  # noqa: E402, F401  isort: skip
from actlab.experiments import tiny_classifier  # noqa: E402, F401  isort: skip
from actlab.experiments import activation_swap  # noqa: E402, F401  isort: skip
from actlab.experiments import deep_mlp  # noqa: E402, F401  isort: skip
from actlab.experiments import single_neuron  # noqa: E402, F401  isort: skip
from actlab.experiments import gradient_flow  # noqa: E402, F401  isort: skip
from actlab.experiments import unit_states  # noqa: E402, F401  isort: skip
from actlab.experiments import stability  # noqa: E402, F401  isort: skip
from actlab.experiments import capacity  # noqa: E402, F401  isort: skip
from actlab.experiments import four_answers  # noqa: E402, F401  isort: skip
from actlab.experiments import rl_hadamard  # noqa: E402, F401  isort: skip

__all__ = [
    "ExperimentSpec",
    "Results",
    "UnknownExperimentError",
    "get_experiment",
    "list_experiments",
    "register_experiment",
    "run_inline",
]
