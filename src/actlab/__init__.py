"""actlab: a laboratory for activation functions."""

from actlab.activations import (
    Activation,
    ActivationModule,
    UnknownActivationError,
    get_activation,
    list_activations,
    register,
)

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ActivationModule",
    "UnknownActivationError",
    "get_activation",
    "list_activations",
    "register",
    "__version__",
]
