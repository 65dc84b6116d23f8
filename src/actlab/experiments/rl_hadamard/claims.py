"""The paper's claims, tested cell by cell against a run's summary.

Claims (Kooi, Hoogendoorn & François-Lavet, arXiv 2406.09079; ``docs/REFERENCES.md``), each a
comparison of two networks of the same agent on the same environment:

* ``higher-auc``: tanh-Hadamard has a higher mean return over training than tanh (area under
  the return curve, AUC; a claim about the returns' level over training, not about speed);
* ``fewer-saturated``: less saturation in the representation layer at the end, measured as the
  share of (probe state, unit) pairs in tanh's flat tails (|h| > 0.99; a unit saturated on
  *every* state, the stricter count, is also reported but is rare at these scales);
* ``higher-rank``: a higher effective rank of the representation at the end;
* ``not-parameters``: the same against tanh widened to its parameter count;
* ``relu-dies``: with ReLU the Hadamard layer leaves more dead units than the plain layer.

A verdict compares the seeds of the two cells (different networks, so different initial weights):
the difference of means with Welch's 95% interval. ``reproduced``: the interval lies on the
claimed side of 0; ``not reproduced``: it lies on the other side (the run contradicts the claim);
``inconclusive``: it holds 0, or a side has fewer than two seeds. Seed ``i`` of both cells shares
its environment and exploration seeds, so the two samples are not strictly independent; the
paired test over same-seed pairs (``paired``) is computed beside it as a check (a positive
correlation makes Welch's interval the wider, more cautious one).

For the diagnostics the same test is also run on the first record (``start``, at
initialisation: a difference already present there comes with the architecture, not from
training), and on each seed's change from the first to the last record (``change``: did training
widen the gap in the claimed direction, narrow it, or leave it within noise?).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "CLAIMS",
    "Claim",
    "claim_verdict",
    "claims_table",
    "paired_verdict",
    "seed_starts",
    "collapsed_seeds",
    "mostly_collapsed",
]


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    network: str  # the network the claim is about
    baseline: str  # the network it is compared with
    metric: str  # "auc" or a diagnostic key read at the end of training
    sign: int  # +1: the claim says network > baseline; -1: network < baseline


CLAIMS = (
    Claim(
        "higher-auc",
        "higher mean return over training (AUC) than tanh",
        "tanh-hadamard",
        "tanh",
        "auc",
        1,
    ),
    Claim(
        "fewer-saturated",
        "less saturation than tanh",
        "tanh-hadamard",
        "tanh",
        "saturated_share",
        -1,
    ),
    Claim(
        "higher-rank",
        "higher effective rank than tanh",
        "tanh-hadamard",
        "tanh",
        "effective_rank",
        1,
    ),
    Claim(
        "not-parameters",
        "higher mean return over training (AUC) than tanh with as many parameters",
        "tanh-hadamard",
        "tanh-wide",
        "auc",
        1,
    ),
    Claim(
        "relu-dies",
        "with ReLU: more dead units than plain ReLU",
        "relu-hadamard",
        "relu",
        "dead",
        1,
    ),
)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def paired_verdict(a: Sequence[float], b: Sequence[float], sign: int) -> dict[str, Any]:
    """The paired version of :func:`claim_verdict`: ``a[i] - b[i]`` over the seeds where both
    are finite, the t-interval of their mean and the verdict."""
    d = [x - y for x, y in zip(a, b, strict=False) if _finite(x) and _finite(y)]
    return claim_verdict(d, [0.0] * len(d), sign, paired=True)


def claim_verdict(
    a: Sequence[float], b: Sequence[float], sign: int, paired: bool = False
) -> dict[str, Any]:
    """Difference of means ``mean(a) - mean(b)``, Welch's 95% interval and the verdict for a
    claim that the difference has sign ``sign``; non-finite values are left out."""
    x = np.asarray([v for v in a if _finite(v)], dtype=float)
    y = np.asarray([v for v in b if _finite(v)], dtype=float)
    out: dict[str, Any] = {
        "n": [int(x.size), int(y.size)],
        "diff": math.nan,
        "lo": math.nan,
        "hi": math.nan,
        "verdict": "inconclusive",
    }
    if x.size == 0 or y.size == 0:
        return out
    out["diff"] = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return out
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no spread at all: the difference is exact
        lo = hi = out["diff"]
    elif paired:  # ``b`` is all zeros: the one-sample interval of ``a``
        ci = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
        lo, hi = float(ci.low), float(ci.high)
    else:
        ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
        lo, hi = float(ci.low), float(ci.high)
    out["lo"], out["hi"] = lo, hi
    if sign * lo > 0 and sign * hi > 0:
        out["verdict"] = "reproduced"
    elif sign * lo < 0 and sign * hi < 0:
        out["verdict"] = "not reproduced"
    return out


def seed_starts(cell: dict[str, Any]) -> list[float]:
    """Each seed's first finite point of its return curve (the first window of training, played
    near-randomly: epsilon close to 1, an untrained policy); NaN for a seed with no episode."""
    return [next((float(v) for v in row if _finite(v)), math.nan) for row in cell.get("curves", [])]


def collapsed_seeds(cell: dict[str, Any]) -> list[bool | None]:
    """Per seed, whether its final return fell *below* its own near-random start (the first
    point of its curve): the agent ended worse than the random play it began with. ``None``
    where either is missing."""
    out: list[bool | None] = []
    if "curves" not in cell or "per_seed_final" not in cell:
        return out
    for start, final in zip(seed_starts(cell), cell["per_seed_final"], strict=True):
        out.append(final < start if _finite(start) and _finite(final) else None)
    return out


def mostly_collapsed(cell: dict[str, Any]) -> bool:
    """More than half of the cell's seeds (of those with both numbers) collapsed."""
    known = [v for v in collapsed_seeds(cell) if v is not None]
    return bool(known) and 2 * sum(known) > len(known)


def _values(cell: dict[str, Any], metric: str, when: str = "end") -> list[float | None] | None:
    if metric == "auc":
        return cell["per_seed_auc"]
    d = cell["diagnostics"].get(metric)
    if d is None or (when == "start" and len(set(d.get("steps", ()))) == 1):
        return None  # one record only: it is both the start and the end
    return d.get(f"per_seed_{when}")


def claims_table(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per claim, agent and environment where both networks of the claim ran."""
    by = {(c["agent"], c["env"], c["network"]): c for c in cells}
    rows = []
    for claim in CLAIMS:
        for agent, env in dict.fromkeys((c["agent"], c["env"]) for c in cells):
            a, b = by.get((agent, env, claim.network)), by.get((agent, env, claim.baseline))
            if a is None or b is None:
                continue
            va, vb = _values(a, claim.metric), _values(b, claim.metric)
            if va is None or vb is None:
                continue
            rows.append(
                {
                    "claim": claim.key,
                    "text": claim.text,
                    "agent": agent,
                    "env": env,
                    "metric": claim.metric,
                    "network": claim.network,
                    "baseline": claim.baseline,
                    # the compared cells where most seeds ended below their near-random start
                    "collapsed": [c["network"] for c in (a, b) if mostly_collapsed(c)],
                    **claim_verdict(va, vb, claim.sign),
                }
            )
            rows[-1]["paired"] = paired_verdict(va, vb, claim.sign)
            sa, sb = _values(a, claim.metric, "start"), _values(b, claim.metric, "start")
            if claim.metric != "auc" and sa is not None and sb is not None:
                # the same test at the first record (initialisation): a difference already
                # there is the architecture's, not what training did
                start = claim_verdict(sa, sb, claim.sign)
                rows[-1]["start"] = start
                rows[-1]["at_start"] = start["verdict"]
                # each seed's change over training: did training widen the gap?
                rows[-1]["change"] = claim_verdict(_changes(sa, va), _changes(sb, vb), claim.sign)
    return rows


def _changes(start: Sequence[float | None], end: Sequence[float | None]) -> list[float]:
    return [e - s for s, e in zip(start, end, strict=True) if _finite(s) and _finite(e)]
