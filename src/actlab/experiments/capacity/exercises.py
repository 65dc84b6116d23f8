"""Exercises of the capacity lesson: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.capacity.solutions` (tested in
``tests/experiments/test_capacity.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "pieces_by_sampling", "matched_width"]


def pieces_by_sampling(f: Callable, lo: float, hi: float, n: int = 100_001) -> int:
    """Count the linear pieces of a continuous piecewise-linear function of one variable on
    ``[lo, hi]`` by dense sampling.

    Sample ``f`` (a NumPy-vectorised function) on ``n`` evenly spaced points; on a linear piece
    the slope between neighbours is constant, so count the places where the slope changes by
    more than a tolerance (``1e-6`` times the largest slope, say), merging changes at
    neighbouring sample intervals (a breakpoint between two samples changes two slopes).

    Returns:
        The number of pieces (1 for an affine ``f``).
    """
    raise NotImplementedError("exercise: find where the slope between samples changes")


def matched_width(depth: int, width: int, in_dim: int = 1) -> int:
    """The width of a one-hidden-layer network ``in_dim -> M -> 1`` whose parameter count is
    closest to that of ``in_dim -> width x depth -> 1`` (weights and biases; the smaller ``M``
    on a tie).

    Returns:
        ``M``.
    """
    raise NotImplementedError("exercise: count the parameters of both networks")


EXERCISES: list[Exercise] = [
    Exercise(
        "coding",
        "Count the sawtooth's pieces without the exact algorithm",
        "Write `pieces_by_sampling(f, lo, hi)` and check it on the tent map composed $D$ times "
        "(`actlab.regions.sawtooth_network(D)` loaded with `ensemble_from_layers`, or "
        "three lines of NumPy) on $[0, 1]$: you should find $2^D$ pieces. From which $D$ does "
        "a grid of 100 001 points start to miss pieces, and why?",
        "Every piece of the $D$-fold tent map on $[0, 1]$ has length $2^{-D}$ and the grid "
        "steps by $10^{-5}$. "
        "Once a piece spans fewer than about two steps ($2^{-D} < 2 \\times 10^{-5}$, i.e. "
        "from $D = 16$) two breakpoints fall into neighbouring sample intervals, their slope "
        "changes merge and the count goes wrong. The exact algorithm needs no grid.",
        function="capacity:pieces_by_sampling",
    ),
    Exercise(
        "coding",
        "Match a deep network's parameter count with one hidden layer",
        "Write `matched_width(depth, width)`. How wide must a one-hidden-layer network be to "
        "have as many parameters as $D = 4$, $N = 32$? And how many pieces could that network "
        "have on a line, against the $2^D$ a sawtooth reaches?",
        "A network $1 \\to N \\times D \\to 1$ has $2N + (D - 1)(N^2 + N) + N + 1$ "
        "parameters; one hidden layer of $N_1$ units has $3 N_1 + 1$. For $D = 4$, $N = 32$: "
        "$|\\theta| = 3265$, so $N_1 = 1088$, with at most $1089$ pieces on a line: in raw "
        "piece count a wide shallow network of the same size beats the sawtooth of depth 4. "
        "Depth's advantage is per *unit* and grows with $D$ ($2^D$ pieces from $2D$ units), "
        "which is what the experiment's matched pairs probe.",
        function="capacity:matched_width",
    ),
    Exercise(
        "conceptual",
        "Why a separate validation draw?",
        "The rate of each activation is picked on validation data and its error reported on "
        "test data. What would go wrong if the rate were picked on the test error itself, "
        "and which activations would that favour?",
        "Picking the best of several rates on the same numbers that are then reported is a "
        "maximum over noisy estimates: it is biased low, and more so the more rates are "
        "tried and the noisier each estimate is. Activations whose error varies most from "
        "seed to seed and rate to rate would gain most from that selection, so a comparison "
        "would reward variance, not capacity. A separate validation draw makes the test "
        "error an unbiased estimate for the chosen rate.",
    ),
]
