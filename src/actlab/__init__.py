"""actlab: a laboratory for activation functions.

The public API: the activation registry, the ensemble engine, the trainer and the probes. Importing
actlab has no side effects beyond registering the built-in activations.
"""

from actlab.activations import (
    Activation,
    ActivationModule,
    UnknownActivationError,
    get_activation,
    list_activations,
    register,
)
from actlab.models import EnsembleMLP
from actlab.optim import OptimizerConfig
from actlab.probes import probe
from actlab.train import Callback, TrainConfig, TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ActivationModule",
    "Callback",
    "EnsembleMLP",
    "OptimizerConfig",
    "TrainConfig",
    "TrainResult",
    "UnknownActivationError",
    "get_activation",
    "list_activations",
    "probe",
    "register",
    "train",
    "__version__",
]
