"""Exercises of the activation gallery: the stub a learner fills in, and its docstring.

Worked solutions and the exercise list: :mod:`actlab.experiments.gallery.solutions` (tested in
``tests/experiments/test_gallery.py`` against SciPy's quadrature and the gallery's own table).
"""

from __future__ import annotations

__all__ = ["tanh_flat_probability"]


def tanh_flat_probability(s_z: float, threshold: float = 0.01) -> float:
    """The share of flat inputs of a tanh unit: ``P(|tanh'(z)| < threshold)`` for
    ``z ~ N(0, s_z^2)``, where ``tanh'(z) = 1 - tanh(z)^2``.

    Args:
        s_z: Standard deviation of the pre-activation (> 0).
        threshold: The slope below which an input counts as flat (> 0).

    Returns:
        The probability, a float in [0, 1], accurate to ~1e-12.
    """
    raise NotImplementedError("exercise: compute the Gaussian mass where tanh' is below threshold")
