"""Exercises of the RL chapter: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.rl_hadamard.solutions` (tested in
``tests/experiments/test_rl_hadamard.py``).
"""

from __future__ import annotations

import numpy as np

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "lambda_returns", "matched_plain_width"]


def lambda_returns(
    rewards: np.ndarray,
    terminated: np.ndarray,
    next_max_q: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """PQN's Q(λ) targets of one rollout of T steps, by the backward recursion

    ``G_t = r_t + γ (1 − d_t) (λ G_{t+1} + (1 − λ) max_a Q(s_{t+1}, a))``, with
    ``G_T := max_a Q(s_T, a)`` after the last step (so the last target is the one-step one).

    Args:
        rewards, terminated: ``(T,)`` (``terminated`` 0/1: no bootstrap after a terminal).
        next_max_q: ``(T,)``, ``max_a Q(s_{t+1}, a)`` for each step.
    Returns:
        ``(T,)`` targets.
    """
    raise NotImplementedError("exercise: run the recursion backwards from the last step")


def matched_plain_width(in_features: int, out_features: int, n_actions: int) -> int:
    """The width ``M`` of a plain layer ``in_features -> M`` whose weights and biases, plus the
    weights of the linear head that reads it (``n_actions`` outputs), number at least as many as
    a Hadamard layer ``in_features -> out_features`` plus its own head's weights (the smallest
    such ``M``; the heads' biases are the same on both sides)."""
    raise NotImplementedError("exercise: count the parameters of both and solve for M")


EXERCISES: list[Exercise] = [
    Exercise(
        "coding",
        "Q(λ) returns by hand",
        "Write `lambda_returns` for one environment's rollout. Check two limits: with "
        "λ = 0 every target is the one-step target $r_t + \\gamma \\max_a Q$; with λ = 1 "
        "and no terminal it is the discounted sum of the rewards to the end of the rollout "
        "plus the discounted last bootstrap. Why does a terminal cut both terms?",
        "After a terminal there is no next state whose value could be added: the episode's "
        "return ends there, so the factor (1 − terminal) multiplies the whole bootstrap, the "
        "λ-weighted "
        "rest of the return included. (A time-limit truncation is different: the next state "
        "exists and its value should be bootstrapped; the agents here do so from the "
        "environment's final observation.)",
        function="rl_hadamard:lambda_returns",
    ),
    Exercise(
        "coding",
        "A fair plain baseline: how wide",
        "Write `matched_plain_width`. For the 84-unit representation layer of the CartPole "
        "networks (input 120, a head with two actions), how wide must a plain layer be to have "
        "as many parameters as the Hadamard layer? Why does the experiment also run this "
        "widened network (`tanh-wide`, in the `full` preset)?",
        "A Hadamard layer has two branches, $2(n_{in} + 1) n_{out}$ parameters, and the "
        "two-action head reads it with $2 n_{out}$ weights; a plain layer of $N'$ units has "
        "$(n_{in} + 1) N'$, and its head $2 N'$. Setting them equal gives "
        "$N' = \\lceil (2 n_{in} + 4) n_{out} / (n_{in} + 3) \\rceil$: for $n_{in} = 120$, "
        "$n_{out} = 84$, $N' = 167$, about twice as wide. A gain of the Hadamard network over "
        "plain tanh could come from its extra parameters alone; the widened network has them "
        "too, so only a gain over *it* is a gain of the product itself (the claim "
        "*not-parameters*, which the default run does not test).",
        function="rl_hadamard:matched_plain_width",
    ),
    Exercise(
        "conceptual",
        "No tanh on the Q-values",
        "DQN's and PQN's heads are linear. What would go wrong on CartPole if the Q-head ended "
        "in tanh, and why is PPO's actor allowed a softmax?",
        "A Q-value estimates a return: on CartPole up to about "
        "$\\sum_t \\gamma^t \\approx 1/(1-\\gamma) = 100$ for $\\gamma = 0.99$. A tanh head "
        "bounds it to $(-1, 1)$, so the targets could never be met, the error would push the "
        "head into saturation and its gradient to 0. Rewards could be rescaled, but only by "
        "knowing the returns' range in advance. The actor's softmax outputs probabilities, "
        "which is exactly the range the policy needs.",
    ),
    Exercise(
        "conceptual",
        "A saturated branch",
        "In a Hadamard unit $h = \\tanh(z_1) \\tanh(z_2)$ the first branch is saturated "
        "($|\\tanh z_1| > 0.99$) and the second is not. How large are "
        "$\\partial h / \\partial z_1$ and $\\partial h / \\partial z_2$ compared with a plain "
        "tanh unit that is saturated?",
        "$\\partial h/\\partial z_1 = (1 - \\tanh^2 z_1) \\tanh z_2$ is below "
        "$1 - 0.99^2 \\approx 0.02$ in size, as small as the plain saturated unit's; but "
        "$\\partial h/\\partial z_2 = \\tanh(z_1)(1 - \\tanh^2 z_2)$ is about "
        "$\\pm(1 - \\tanh^2 z_2)$, as large as an unsaturated unit's. The unit still learns "
        "through its second branch, and its output still varies with the state: a saturated "
        "branch only fixes its sign.",
    ),
]
