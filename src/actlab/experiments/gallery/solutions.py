"""Worked solutions of the gallery's exercises, and the exercise list :data:`EXERCISES`.

The coding solution is tested against SciPy's adaptive quadrature and against the gallery's
own table in ``tests/experiments/test_gallery.py``; the tutorial prints its source, so what it
shows is what was tested. The numbers of the relu6 answer come from :data:`RELU6_FLAT`, which the
tests compare with the gallery's measurement.
"""

from __future__ import annotations

import math

from scipy.special import ndtr

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "FLAT_EDGE", "RELU6_FLAT", "tanh_flat_probability"]


def tanh_flat_probability(s_z: float, threshold: float = 0.01) -> float:
    """P(|tanh'(z)| < threshold) for z ~ N(0, s_z^2) (see the exercise)."""
    if not (s_z > 0 and threshold > 0):
        raise ValueError("s_z and threshold must be > 0")
    if threshold >= 1.0:
        return 1.0  # tanh' = 1 - tanh^2 < 1 for every z but 0, a set of mass 0
    # 1 - tanh(z)^2 < threshold  <=>  |tanh z| > sqrt(1 - threshold)
    #                            <=>  |z| > edge = artanh(sqrt(1 - threshold))
    edge = math.atanh(math.sqrt(1.0 - threshold))
    # Both tails: P(|z| > edge) = erfc(edge / (s_z sqrt 2)), exact in the tails.
    return math.erfc(edge / (s_z * math.sqrt(2.0)))


FLAT_EDGE = math.atanh(math.sqrt(1.0 - 0.01))
"""Where tanh' falls below 0.01: ``|z| > artanh(sqrt(0.99))``, about 2.99 (the coding
answer's number)."""


RELU6_FLAT = {s: 0.5 + float(ndtr(-6.0 / s)) for s in (1.0, 3.0, 5.0)}
"""relu6's flat share 1/2 + P(z > 6) at a few sds of the pre-activation (the conceptual
answer's numbers)."""


def _p(p: float) -> str:
    return f"{p:.3f}"  # a decimal, not a percentage: % starts a comment inside LaTeX math


EXERCISES: list[Exercise] = [
    Exercise(
        "warm-up",
        "tanh is a sigmoid in disguise",
        "Show that $\\tanh(z) = 2\\sigma(2z) - 1$. What does that give for $\\tanh'(z)$ in "
        "terms of $\\sigma'$, and why is the largest slope of tanh in the table 4 times the "
        "sigmoid's?",
        "$2\\sigma(2z) - 1 = \\frac{2 - (1 + e^{-2z})}{1 + e^{-2z}} = "
        "\\frac{1 - e^{-2z}}{1 + e^{-2z}}$; multiplying top and bottom by $e^{z}$ gives "
        "$\\frac{e^{z} - e^{-z}}{e^{z} + e^{-z}} = \\tanh z$. By the chain rule "
        "$\\tanh'(z) = 2 \\cdot 2\\,\\sigma'(2z) = 4\\sigma'(2z)$, largest at $z = 0$: "
        "$4 \\cdot \\tfrac14 = 1$ against $\\sigma'(0) = \\tfrac14$. tanh is the sigmoid "
        "stretched to $(-1, 1)$ and squeezed in $z$: zero-centred, and with 4 times the slope.",
    ),
    Exercise(
        "coding",
        "The flat share of tanh, exactly",
        "Write `tanh_flat_probability(s_z, threshold)`: the share of inputs "
        "$z \\sim \\mathcal{N}(0, s_z^2)$ on which $|\\tanh'(z)| < $ `threshold`, the number "
        "the table of this chapter gives for tanh. Hint: for the threshold 0.01, solve "
        "$1 - \\tanh^2 z < 0.01$ for $|z|$ first; any other threshold goes the same way.",
        "$1 - \\tanh^2 z < 0.01$ means $|\\tanh z| > \\sqrt{0.99}$, so the flat set is two "
        f"tails, $|z| > \\operatorname{{artanh}}\\sqrt{{0.99}} \\approx {FLAT_EDGE:.3g}$ (for "
        "another threshold, $\\sqrt{1 - \\text{threshold}}$ in place of $\\sqrt{0.99}$). Its "
        "mass is twice one tail, "
        "$\\operatorname{erfc}(\\operatorname{artanh}\\sqrt{0.99} / (s_z\\sqrt 2))$: "
        "no grid needed. Computing "
        "the tail with `erfc`, not as `1 - erf`, keeps its digits when it is tiny. The tests "
        "compare it with SciPy's adaptive quadrature of the normal density over the flat set "
        "and with the gallery's own table.",
        function="gallery:tanh_flat_probability",
    ),
    Exercise(
        "conceptual",
        "relu and relu6 look the same, but",
        "On the window $[-5, 5]$ the panels of relu and relu6 are identical, and relu's flat "
        "share is 50% at every scale. Why does relu6's grow with $s_z$? Compute it for "
        "$s_z = 5$ with a normal table.",
        "relu6 is also flat above its cap: its flat set is $z \\le 0$ and $z \\ge 6$, so its "
        "share is $\\tfrac12 + P(z > 6) = \\tfrac12 + 1 - \\Phi(6 / s_z)$. At $s_z = 5$: "
        f"$\\tfrac12 + 1 - \\Phi(1.2) = {_p(RELU6_FLAT[5.0])}$; at $s_z = 3$: "
        f"{_p(RELU6_FLAT[3.0])}; at $s_z = 1$ the cap is 6 sd away and the share is "
        f"{_p(RELU6_FLAT[1.0])}, relu's 0.5 to the digits shown. The cap matters only for "
        "wide pre-activations, the same regime in which tanh saturates.",
    ),
]
"""The gallery's exercises, in the order the report lists them."""
