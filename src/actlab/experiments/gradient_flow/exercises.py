"""Exercises of the gradient-flow lesson: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.gradient_flow.solutions` (tested in
``tests/experiments/test_gradient_flow.py``).
"""

from __future__ import annotations

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "layers_to_fall", "tanh_edge_of_chaos"]


def layers_to_fall(chi1: float, factor: float = 1e-6) -> int:
    """The fewest layers over which the backward signal's norm falls below ``factor`` times
    its value at the top, if every layer multiplies its mean square by ``chi1`` (< 1).

    Args:
        chi1: The factor per layer of the mean squared backward signal, ``0 < chi1 < 1``.
        factor: The threshold, ``0 < factor < 1``.

    Returns:
        The smallest integer ``k`` with ``chi1 ** (k / 2) < factor``.

    Raises:
        ValueError: unless ``0 < chi1 < 1`` and ``0 < factor < 1`` (otherwise the signal never
            falls, or has already fallen).
    """
    raise NotImplementedError("exercise: solve chi1^(k/2) < factor for the smallest integer k")


def tanh_edge_of_chaos(sigma_b2: float) -> float:
    """The ``sigma_w^2`` at which tanh's ``chi_1`` equals 1 for bias variance ``sigma_b2``.

    Use ``actlab.theory.chi1("tanh", sigma_w2, sigma_b2)`` (which finds ``q*`` itself) and a
    bracketing root finder (bisection, or ``scipy.optimize.brentq``) on ``sigma_w^2`` in
    ``[1, 10]``, for ``sigma_b2 > 0``; at ``sigma_b2 = 0`` the edge is ``sigma_w^2 = 1`` (there
    ``q* = 0`` and ``chi_1 = sigma_w^2``), return that without a search.
    """
    raise NotImplementedError("exercise: bisect chi_1(sigma_w^2) - 1 on [1, 10]")


EXERCISES: list[Exercise] = [
    Exercise(
        "warm-up",
        r"$\chi_1$ for ReLU by hand",
        r"Compute $\chi_1 = \sigma_w^2 E[\varphi'(z)^2]$ for ReLU under "
        "[He initialisation](#term-he-init) and under PyTorch's "
        "[default initialisation](#term-default-init) (in the mean-field convention, "
        r"$\sigma_w^2 = \text{fan-in}\cdot\mathrm{Var}(w)$). Why does $q^*$ not enter?",
        r"ReLU's derivative is 1 for $z > 0$ and 0 for $z < 0$, so $\varphi'(z)^2$ is 1 with "
        r"probability $P(z > 0) = 1/2$ for any symmetric $z$, whatever its variance: "
        r"$E[\varphi'(z)^2] = 1/2$ and $q^*$ drops out. He: $\sigma_w^2 = 2$, so "
        r"$\chi_1 = 1$ (the edge of chaos: the backward signal keeps its size). Default: "
        r"$\mathrm{Var}(w) = B^2/3$ with $B = 1/\sqrt{\text{fan-in}}$, so $\sigma_w^2 = 1/3$ "
        r"and $\chi_1 = 1/6$: the backward signal's norm shrinks by $\sqrt{1/6} \approx 0.41$ "
        "per layer towards the input.",
    ),
    Exercise(
        "coding",
        "The depth at which the default-init ReLU gradient falls below a millionth",
        "Write `layers_to_fall(chi1, factor)`: the fewest layers over which the backward "
        r"signal's norm, multiplied by $\sqrt{\chi_1}$ per layer, falls below `factor` times its "
        r"starting value. How many layers does ReLU with $\chi_1 = 1/6$ need to lose a factor "
        r"$10^{6}$? Compare with the depth figure of this chapter.",
        r"Counting $l$ layers down from the top, the norm is $\chi_1^{l/2}$ times its start, "
        r"and we need $\chi_1^{l/2} < 10^{-6}$, i.e. $l > 2 \ln(10^{-6}) / \ln \chi_1 = "
        r"2 \cdot 13.8 / 1.79 = 15.4$: 16 layers. Between layer 1 and layer D there are "
        r"D − 1 steps, so a network with D = 17 hidden layers has a first layer whose "
        r"backward signal is a millionth of the last one's. The tests compare the solution "
        "with a loop that multiplies until it falls below the threshold.",
        function="gradient_flow:layers_to_fall",
    ),
    Exercise(
        "coding",
        "Find tanh's edge of chaos",
        r"Write `tanh_edge_of_chaos(sigma_b2)`: the $\sigma_w^2$ at which $\chi_1 = 1$ for "
        r"tanh, with `actlab.theory.chi1` and a root finder. What is it at "
        r"$\sigma_b^2 = 0.05$, and why does a larger $\sigma_b^2$ need a larger $\sigma_w^2$?",
        r"At $\sigma_b^2 = 0.05$ the edge is at $\sigma_w^2 \approx 1.76$. The bias keeps "
        r"$q^*$ away from 0, and tanh's slope $\varphi'(z) = 1 - \tanh^2 z$ is below 1 away "
        r"from 0: a larger $q^*$ means a smaller $E[\varphi'(z)^2]$, which a larger "
        r"$\sigma_w^2$ must make up for. The tests compare the solution with "
        "`theory.edge_of_chaos`.",
        function="gradient_flow:tanh_edge_of_chaos",
    ),
    Exercise(
        "conceptual",
        "Why the full-batch gradient does not follow the line",
        "In the profiles figure the full-batch weight gradient can fall faster towards the "
        "input than the per-example one (look at ReLU under Xavier and He initialisation), "
        "although each example's gradient follows its own mean-field prediction. Explain with "
        r"the squared norm of an average of examples' gradients $\delta_l h_{l-1}^{\top}$.",
        r"The full-batch gradient is the mean over the examples $i$ of $\delta_l^{(i)} "
        r"h_{l-1}^{(i)\top}$; its squared norm is the mean over pairs $(i, j)$ of "
        r"$(\delta_l^{(i)} \cdot \delta_l^{(j)})(h_{l-1}^{(i)} \cdot h_{l-1}^{(j)})$. The "
        "diagonal terms are the per-example gradients; the off-diagonal ones depend on how "
        "correlated two examples' signals are. Near the output the examples' forward signals "
        "are highly correlated (the correlation map drives them together in the ordered "
        "phase), so their backward signals add coherently; towards the input the inputs' "
        r"own correlations (near 0 for random inputs) take over, the cross terms shrink, and "
        r"the average loses more than $\sqrt{\chi_1}$ per layer. The per-layer factor of the "
        r"cross terms is $\sigma_w^2 E[\varphi'(z_i)\varphi'(z_j)]$ at the two examples' "
        r"correlation, which equals $\chi_1$ only at correlation 1.",
    ),
]
"""The lesson's exercises, in the order the tutorial shows them."""
