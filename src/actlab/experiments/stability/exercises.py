"""Exercises of the stability lesson: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.stability.solutions` (tested in
``tests/experiments/test_stability.py``).
"""

from __future__ import annotations

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "gd_on_quadratic", "heavy_ball_on_quadratic", "largest_stable_rate"]


def gd_on_quadratic(curvature: float, lr: float, x0: float, steps: int) -> list[float]:
    """Gradient descent on the 1-D quadratic ``L(x) = curvature * x^2 / 2``.

    Args:
        curvature: The second derivative of L (the sharpness of this 1-D loss), > 0.
        lr: The learning rate.
        x0: The starting point.
        steps: Number of steps.

    Returns:
        ``[x_0, x_1, ..., x_steps]``.
    """
    raise NotImplementedError("exercise: run gradient descent on the quadratic")


def heavy_ball_on_quadratic(
    curvature: float, lr: float, momentum: float, x0: float, steps: int
) -> list[float]:
    """Heavy-ball momentum in torch.optim.SGD's form on ``L(x) = curvature * x^2 / 2``:
    ``b = momentum * b + grad``, ``x = x - lr * b``, with ``b`` starting at 0.

    Returns:
        ``[x_0, x_1, ..., x_steps]``.
    """
    raise NotImplementedError("exercise: run heavy-ball momentum on the quadratic")


def largest_stable_rate(
    rates: list[float], diverged: list[bool], final_loss: list[float], initial_loss: float
) -> float:
    """The chapter's rule for one seed: the largest of ``rates`` at which the run did not
    diverge and ended with a loss below ``initial_loss``; NaN when there is none.

    Args:
        rates: The grid (any order).
        diverged: Whether the run at each rate diverged.
        final_loss: Its final training loss (NaN for a diverged run).
        initial_loss: The loss at initialisation (the same weights at every rate).
    """
    # Debug exercise: this reports a rate even where training made things worse. Fix it.
    stable = [r for r, div in zip(rates, diverged, strict=True) if not div]
    return max(stable) if stable else float("nan")


EXERCISES: list[Exercise] = [
    Exercise(
        "coding",
        "Gradient descent on a parabola",
        "Write `gd_on_quadratic` and run it with curvature 10 (the sharpness of this 1-D loss, "
        "$\\lambda_{\\max} = 10$, so $2/\\lambda_{\\max} = 0.2$) from x = 1 for 50 steps at "
        "$\\eta = 0.19$ and at $\\eta = 0.21$. What happens to |x|, and what is the factor per "
        "step in each case?",
        "Each step multiplies x by $1 - \\eta\\lambda_{\\max}$: at $\\eta = 0.19$ by −0.9 "
        "(|x| shrinks by 10% a step, flipping sign each time: the period-2 oscillation seen "
        "just below $2/\\lambda_{\\max}$), at $\\eta = 0.21$ by −1.1 (|x| grows by 10% a step, "
        "117 after 50 steps). The threshold is sharp: $|1 - \\eta\\lambda_{\\max}| < 1$ iff "
        "$0 < \\eta < 2/\\lambda_{\\max}$.",
        function="stability:gd_on_quadratic",
    ),
    Exercise(
        "coding",
        "Momentum moves the threshold",
        "Write `heavy_ball_on_quadratic` and, with curvature 10 and momentum $\\mu = 0.9$, "
        "compare |x| after 200 steps from x = 1 at $\\eta = 0.375$ and at $\\eta = 0.385$. "
        "Plain GD diverges from $\\eta = 0.2$ on this curvature: where is momentum's threshold?",
        "At $\\eta = 0.375$ |x| falls to about 2 × 10⁻⁴; at $\\eta = 0.385$ it grows past "
        "10¹⁰. Each step sets the new x to $1 + \\mu - \\eta\\lambda_{\\max}$ times the current "
        "one minus $\\mu$ times the previous one, so x changes per step by a factor that is a "
        "root of a quadratic with sum of roots $1 + \\mu - \\eta\\lambda_{\\max}$ and product "
        "$\\mu$. A root crosses the unit circle at −1 when "
        "$1 + (1 + \\mu - \\eta\\lambda_{\\max}) + \\mu = 0$, i.e. "
        "$\\eta\\lambda_{\\max} = 2 + 2\\mu$: the threshold is "
        "$(2 + 2 \\cdot 0.9)/\\lambda_{\\max} = 0.38$, almost twice GD's $2/\\lambda_{\\max}$, "
        "although momentum's steps are up to $1/(1 - \\mu) = 10$ times larger once the buffer "
        "has built up.",
        function="stability:heavy_ball_on_quadratic",
    ),
    Exercise(
        "debug",
        "The stable-rate rule",
        "`largest_stable_rate` in the exercises module counts a run as stable whenever it did "
        "not diverge. Why is that not enough, and what does the chapter add?",
        "A run can oscillate at a loss far above where it started without ever crossing the "
        "divergence cut-off: the engine does not freeze it, but it has not trained. The "
        "chapter also requires the final loss to be below the initial one (a NaN loss never "
        "is).",
        function="stability:largest_stable_rate",
    ),
]
