"""Exercises of the side-by-side chapter: the stubs a learner fills in, and :data:`EXERCISES`.

Worked solutions: :mod:`actlab.experiments.four_answers.solutions` (tested in
``tests/experiments/test_four_answers.py``).
"""

from __future__ import annotations

from actlab.report.exercises import Exercise

__all__ = ["EXERCISES", "overlap_limits"]


def overlap_limits(n: int, level: float = 0.95) -> tuple[float, float]:
    """How lenient "the intervals overlap" is, for two samples of ``n`` values each with the
    same standard deviation sd.

    Returns:
        ``(overlap_gap, test_gap)``, both in units of sd: the largest difference of the two
        means at which their ``level`` t-intervals still overlap, and the smallest difference
        at which Welch's test of the two samples rejects at ``1 - level``.
    """
    raise NotImplementedError("exercise: write both gaps with Student's t quantiles")


EXERCISES: list[Exercise] = [
    Exercise(
        "coding",
        "How lenient overlapping intervals are",
        "Write `overlap_limits(n)`. For $n = 5$ seeds, between which two gaps (in standard "
        "deviations) does the table say *within noise* while a test of the difference says "
        "the two differ? Does the zone shrink as $n$ grows?",
        "Each interval is $\\bar x \\pm t_{n-1} \\mathrm{sd}/\\sqrt{n}$, so two of them "
        "overlap while the gap is at most $2 t_{n-1} \\mathrm{sd}/\\sqrt{n}$. With equal "
        "standard deviations sd and equal $n$, Welch's statistic is the gap over "
        "$\\mathrm{sd}\\sqrt{2/n}$ with $2(n - 1)$ degrees of freedom, so the test rejects "
        "from a gap of $t_{2n-2}\\, \\mathrm{sd} \\sqrt{2/n}$. For $n = 5$: overlap up to "
        "2.48 sd, rejection from 1.46 sd, so gaps between the two are *within noise* here and "
        "different by the test. The ratio of the two gaps tends to $\\sqrt 2$ for large $n$: "
        "the zone never closes. A paired test on the same seeds is sharper still when the "
        "seeds' values move together.",
        function="four_answers:overlap_limits",
    ),
    Exercise(
        "conceptual",
        "A rate with no interval",
        "A cell of a rate column reads a single number, with no interval. Is the largest "
        "stable rate of that activation known exactly? What would you change in the "
        "stability run to pin it down?",
        "No: every seed's largest rate fell on the same point $\\eta_k$ of the grid, which "
        "says only that $\\eta_k$ was stable (and learned) and the next point, a factor of the "
        "grid's step higher, was not, for every seed. The true edge lies somewhere in between. "
        "A finer grid around that edge (e.g. eight rates per factor 2) or a bisection per seed "
        "would give each seed its own value, and then an interval over seeds that means "
        "something.",
    ),
    Exercise(
        "conceptual",
        "One row, four networks",
        "An activation is at the top of the rate columns and at the bottom of the capacity "
        "column. Can you conclude that it trades capacity for stability in *one* network?",
        "No. The columns measure different networks (depth, width, task and training length "
        "differ; the last section lists them), and the capacity column tunes each activation's "
        "rate on held-out data while the stability column sweeps the rate. A trade-off in one "
        "network would need both measured on that network: the largest stable rate of the "
        "capacity network, and its error at rates up to that edge.",
    ),
]
