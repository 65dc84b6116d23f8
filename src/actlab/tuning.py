"""Learning-rate grids that widen until the pick is inside them.

A rate "tuned" on a grid is only a fair pick when it is *interior*: a tried rate below it and
one above it both scored worse. A pick at the grid's edge says only that the best rate may lie
beyond it. :func:`grid_step` looks at the validation scores tried so far and says, per
activation (or any other arm), which rate it picks, whether that pick is interior, and, when it
is not, the one rate to try next.

The rule, for one arm with tried rates ``r_1 < ... < r_k`` and scores ``s_i`` (lower is better;
NaN or ±inf marks a diverged rate, which is never picked but still counts as a worse neighbour):

* pick ``r* = argmin_i s_i`` over the finite scores (the smaller rate on a tie);
* *interior* when some ``r_i < r*`` and some ``r_j > r*`` were tried;
* at the low edge (``r* = r_1``): the next rate is ``max(r_1 / factor, lr_min)``, one factor
  step down in log space, clipped to the allowed range; if ``r_1 <= lr_min`` already, the pick
  is *at lr_min* (a bound of the allowed range) and nothing more is tried;
* at the high edge (``r* = r_k``) likewise with ``min(r_k * factor, lr_max)`` and *at lr_max*;
* no finite score at all (every rate diverged): the next rate is one step below the smallest,
  ``max(r_1 / factor, lr_min)``, or *diverged* when that is no longer possible.

A caller loops: train the rates :func:`grid_step` asks for, add their scores, call it again,
until no arm asks for more or its extension budget is spent. After the last call an arm whose
status is still ``"edge"`` ran out of budget: its pick is at the edge of what was tried and must
be reported as such. The function is pure (scores in, decisions out); it trains nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["STATUSES", "GridDecision", "grid_step", "rates_to_try", "status_text"]

STATUSES = ("interior", "edge", "at lr_min", "at lr_max", "diverged")
"""What a decision can say about its pick: inside the tried grid; at an edge of the tried grid
(``next_rate`` says where to extend; after the last call: the budget ran out); at a bound of the
allowed range; no rate trained without diverging."""

_REL = 1e-9  # relative tolerance when comparing a rate with a bound


@dataclass(frozen=True)
class GridDecision:
    """The verdict on one arm's grid.

    Attributes:
        pick: the rate with the lowest finite score (``None`` when every rate diverged).
        status: one of :data:`STATUSES`.
        next_rate: the one rate to try next (``None`` when the pick is interior, at a bound,
            or nothing can be tried any more).
        side: ``"low"`` or ``"high"`` for a pick at an edge or bound, else ``None``.
    """

    pick: float | None
    status: str
    next_rate: float | None = None
    side: str | None = None


def _decide(scores: Mapping[float, float], factor: float, lr_min: float, lr_max: float):
    rates = sorted(float(r) for r in scores)
    finite = [r for r in rates if math.isfinite(float(scores[r]))]
    low, high = rates[0], rates[-1]
    down = max(low / factor, lr_min) if low > lr_min * (1 + _REL) else None
    up = min(high * factor, lr_max) if high < lr_max * (1 - _REL) else None
    if not finite:
        if down is None:
            return GridDecision(None, "diverged")
        return GridDecision(None, "edge", down, "low")
    pick = min(finite, key=lambda r: (float(scores[r]), r))
    if low < pick < high:
        return GridDecision(pick, "interior")
    if pick == low:
        if down is None:
            return GridDecision(pick, "at lr_min", None, "low")
        return GridDecision(pick, "edge", down, "low")
    if up is None:
        return GridDecision(pick, "at lr_max", None, "high")
    return GridDecision(pick, "edge", up, "high")


def grid_step(
    scores: Mapping[str, Mapping[float, float]],
    *,
    factor: float = 3.0,
    lr_min: float,
    lr_max: float,
) -> dict[str, GridDecision]:
    """Per arm, the pick, its status and the next rate to try (see the module's rule).

    Args:
        scores: arm -> {rate: validation score}; lower is better, NaN/inf for diverged.
        factor: the step in log space when the grid is extended (> 1).
        lr_min, lr_max: hard bounds of the allowed range; no rate beyond them is asked for.

    Returns:
        arm -> :class:`GridDecision`, in the order of ``scores``.
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    if not 0 < lr_min <= lr_max:
        raise ValueError(f"need 0 < lr_min <= lr_max, got {lr_min}, {lr_max}")
    out = {}
    for arm, table in scores.items():
        if not table:
            raise ValueError(f"arm {arm!r} has no scores")
        out[arm] = _decide(table, factor, lr_min, lr_max)
    return out


def status_text(decision: GridDecision) -> str:
    """A short phrase for a report: where the pick lies in its grid."""
    if decision.status == "interior":
        return "interior"
    if decision.status == "at lr_min":
        return "at the lower bound of the allowed range"
    if decision.status == "at lr_max":
        return "at the upper bound of the allowed range"
    if decision.status == "diverged":
        return "every rate diverged"
    edge = "smallest" if decision.side == "low" else "largest"
    return f"the {edge} rate tried (extension budget spent): may not be the best"


def rates_to_try(decisions: Mapping[Any, GridDecision]) -> dict[float, list[Any]]:
    """The next round of a widening grid: each rate some arm wants next (``next_rate``), with
    the arms that want it, in the order of ``decisions``; empty when every grid is settled."""
    wanted: dict[float, list[Any]] = {}
    for arm, decision in decisions.items():
        if decision.next_rate is not None:
            wanted.setdefault(decision.next_rate, []).append(arm)
    return wanted
