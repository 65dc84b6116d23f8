"""Exercises of the single-neuron chapter: the stub a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.single_neuron.solutions` (tested in
``tests/experiments/test_single_neuron.py``).
"""

from __future__ import annotations

import numpy as np

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "relu_fit_at"]


def relu_fit_at(x: np.ndarray, y: np.ndarray, w: float, b: float) -> tuple[float, float, float]:
    """The best ``(v, c)`` of ``y_hat = v relu(w x + b) + c`` with ``(w, b)`` held fixed.

    With ``h = relu(w x + b)`` fixed, the model is a straight line in ``h``: fit it by least
    squares. Where ``h`` takes one value on every input (the unit is dead, or ``w = 0``), ``v``
    is not determined: return ``v = 0`` and ``c = mean(y)``.

    Args:
        x: Training inputs ``(n,)``.
        y: Training targets ``(n,)``.
        w: The input weight.
        b: The bias.

    Returns:
        ``(v, c, mse)``: the optimal output weight and offset and the training MSE they reach.
    """
    raise NotImplementedError("exercise: solve the least-squares fit of y on relu(w x + b)")


EXERCISES: list[Exercise] = [
    Exercise(
        "warm-up",
        "What a line scores on the U-quadratic",
        "With $\\varphi(z) = z$ the unit is a straight line. Take $x$ uniform on $[-2, 2]$ and "
        "$y = x^2/2 - 1 + \\xi$ with noise $\\xi$ of sd $s = 0.05$. Which line fits best, and what "
        "mean squared error does it reach on new points? (Use $E[x^2] = 4/3$, $E[x^3] = 0$, "
        "$E[x^4] = 16/5$.)",
        "The least-squares slope is $\\mathrm{cov}(x, y)/\\mathrm{var}(x)$ and "
        "$\\mathrm{cov}(x, x^2/2) = E[x^3]/2 = 0$: the best line is flat, at the mean "
        "$E[y] = (4/3)/2 - 1 = -1/3$. Its MSE is the variance of $y$: "
        "$\\mathrm{var}(x^2/2) + s^2 = E[x^4]/4 - (E[x^2]/2)^2 + s^2 = 4/5 - 4/9 + 0.0025 "
        "\\approx 0.358$. The run's least-squares line is fitted on a few noisy points, so its "
        "held-out score scatters around this value. The tests check it against a NumPy "
        "least-squares fit on a million points.",
    ),
    Exercise(
        "coding",
        "One point of the ReLU landscape",
        "The ReLU landscape of this chapter shows, at every $(w, b)$, the lowest MSE any "
        "$(v, c)$ reaches there. Write `relu_fit_at(x, y, w, b)`: the optimal $(v, c)$ and the "
        "MSE at one point. What does it return where the unit is dead on every input?",
        "With $h_i = \\mathrm{ReLU}(wx_i + b)$ fixed the model $vh + c$ is a line in $h$: "
        "$v = \\mathrm{cov}(h, y)/\\mathrm{var}(h)$, $c = \\bar y - v\\bar h$. Where the unit is "
        "dead, $h = 0$ on every input, $v$ has no effect, $c = \\bar y$ and the MSE is "
        "$\\mathrm{var}(y)$: the flat, hatched region of the landscape, where no gradient "
        "reaches $w$ or $b$. The tests compare the solution with `numpy.linalg.lstsq`.",
        function="single_neuron:relu_fit_at",
    ),
    Exercise(
        "conceptual",
        "Why a smooth unit runs to the cap",
        "On the linear target $y = x/2$ a tanh restart can run to the step cap while $|w|$ "
        "shrinks and $|v|$ grows (see *Did the restarts converge?*). Expand "
        "$v\\tanh(wx)$ for small $w$ with the slope $vw$ held fixed. "
        "Is there a finite $(w, v)$ at which the fit is exact? By what factor does the squared "
        "error to the line $(vw)\\,x$ shrink when $w$ is halved?",
        "$\\tanh(z) = z - z^3/3 + O(z^5)$, so "
        "$v\\tanh(wx) = (vw)\\,x - (vw)\\,w^2 x^3/3 + O(w^4)$: the unit is a "
        "line only in the limit $w \\to 0$, $v = (vw)/w \\to \\infty$, which no finite "
        "step reaches. The error is about $(vw)\\,w^2 x^3/3$, so the squared error scales "
        "as $w^4$: "
        "halving $w$ divides it by about 16. The loss keeps falling ever more slowly while "
        "the weights stretch, so neither the gradient test nor the plateau test need fire "
        "before the cap. The tests compute the ratio "
        "numerically for $w = 0.1$ and $0.05$.",
    ),
]
"""The chapter's exercises, in the order the report shows them."""
