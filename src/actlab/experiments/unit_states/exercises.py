"""Exercises of the unit-states lesson: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.unit_states.solutions` (tested in
``tests/experiments/test_unit_states.py``).
"""

from __future__ import annotations

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "born_dead", "tanh_saturated_share"]


def born_dead(width: int, depth: int) -> float:
    """The probability that a ReLU network with zero biases and symmetric continuous weights has
    some hidden layer entirely off at one fixed non-zero input.

    Args:
        width: Units per hidden layer (N).
        depth: Hidden layers (D).

    Returns:
        ``1 - (1 - 2^-N)^D`` as a float (about 0.725 for N = 4, D = 20).
    """
    raise NotImplementedError("exercise: one layer is all off with probability 2^-N")


def tanh_saturated_share(q: float) -> float:
    """The share of tanh units saturated (``|tanh z| > 0.99``) when ``z ~ N(0, q)``.

    Args:
        q: The variance of the pre-activations (``q^l`` of the mean-field theory), > 0.

    Returns:
        ``2 (1 - Phi(artanh(0.99) / sqrt(q)))`` with ``Phi`` the standard normal CDF.
    """
    raise NotImplementedError("exercise: |tanh z| > 0.99 is |z| > artanh(0.99)")


EXERCISES: list[Exercise] = [
    Exercise(
        "warm-up",
        "Born dead by hand",
        "Compute the probability that a ReLU network of width $N = 4$ and depth $D = 20$ "
        "(zero biases, symmetric weights) is entirely off at some layer for one fixed input. "
        "Then write `born_dead(width, depth)`. How wide must a network of depth 50 be for "
        "this probability to drop below 1%?",
        "One layer is all off with probability $2^{-4} = 1/16$; the network survives 20 layers "
        "with probability $(15/16)^{20} \\approx 0.275$, so $P \\approx 0.725$: almost three "
        "networks in four are dead at that input. For $D = 50$ we need "
        "$1 - (1 - 2^{-N})^{50} < 0.01$, i.e. about $50 \\cdot 2^{-N} < 0.01$, "
        "$2^N > 5000$: $N \\ge 13$. The tests compare the solution with a Monte Carlo estimate "
        "over plain NumPy networks.",
        function="unit_states:born_dead",
    ),
    Exercise(
        "coding",
        "The saturated share of a tanh layer",
        "A tanh layer's pre-activations are $\\mathcal{N}(0, q)$ with $q = 4$. What share of "
        "(input, unit) pairs is [saturated](#term-saturated), $|\\tanh z| > 0.99$? Write "
        "`tanh_saturated_share(q)`. In the chapter's sweep (zero biases), deep layers settle "
        "at $q^*$, the fixed point of the length map: which $\\sigma_w^2$ gives $q^* = 4$, "
        "and which two curves of the sweep should bracket your share deep in the network?",
        "$|\\tanh z| > 0.99$ exactly when $|z| > \\operatorname{artanh}(0.99) = "
        "\\tfrac12 \\ln 199 \\approx 2.647$. With $z = \\sqrt q$ times a standard normal, "
        "the share is $2(1 - \\Phi(2.647/\\sqrt q))$; at $q = 4$: $2(1 - \\Phi(1.323)) "
        "\\approx 0.186$, almost one pair in five. Solving $q^* = 4$ with "
        "`actlab.theory.fixed_point('tanh', sigma_w2, 0.0)` gives $\\sigma_w^2 \\approx 6.3$ "
        "($q^* \\approx 2.1$ at $\\sigma_w^2 = 4$ and $5.4$ at $\\sigma_w^2 = 8$), so the "
        "deep layers of the $\\sigma_w^2 = 4$ and $\\sigma_w^2 = 8$ curves bracket 18.6%. "
        "The tests compare the solution with a NumPy Monte Carlo of tanh on normal draws, and "
        "these fixed points with the theory.",
        function="unit_states:tanh_saturated_share",
    ),
    Exercise(
        "conceptual",
        "Why the whole domain is safer than one input",
        "In the chapter's born-dead figure, the frequency of networks constant on the probe "
        "inputs stays below the fixed-input formula, and with $D = 1$ it is 0. Explain why a "
        "zero-bias ReLU network can never be constant on $[-1, 1]^2$ with one hidden layer, "
        "and why leaky ReLU networks are never constant although a whole layer has $z \\le 0$ "
        "at the fixed input exactly as often as for ReLU.",
        "Without biases a ReLU network is positively homogeneous, so a constant one is zero "
        "everywhere (its value at $2x$ is twice its value at $x$). The first layer computes "
        "$z = W x$, and $z(-x) = -z(x)$: a unit that "
        "is off at $x$ is on at $-x$ unless $z(x) = 0$, which has probability 0 for continuous "
        "weights. So on a domain symmetric about 0 no first-layer unit is off everywhere, let "
        "alone the whole layer, and the layer is not zero everywhere. The formula counts a "
        "layer being off at *one* input, which "
        "happens with probability $2^{-N}$ at every layer. For leaky ReLU a layer with $z < 0$ "
        "on every unit outputs $0.01\\,z$, still a non-zero function of the input, so the next "
        "layer starts "
        "afresh: being off is not absorbing, and nothing becomes constant. For ReLU the "
        "all-zero layer is absorbing, which is what makes depth dangerous.",
    ),
]
"""The lesson's exercises, in the order the tutorial shows them."""
