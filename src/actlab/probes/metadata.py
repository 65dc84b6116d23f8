"""What each metric key means: unit, bounds, direction and a one-line definition.

Plots read this to label axes and fix limits; ``actlab list probes`` prints it. Keys have the form
``probe/stat``; every key an accumulator or hook can return is listed here (a test checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MetricInfo", "METRICS"]


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of one metric.

    Attributes:
        key: ``probe/stat``, e.g. ``act/dead_fraction``.
        unit: What the number counts or measures.
        bounds: ``(lower, upper)``; ``math.inf`` where unbounded. The ranks are also bounded by
            ``min(N, H)``, which depends on the layer.
        higher_is_better: True, False, or None where neither direction is better.
        definition: One line, formula included.
    """

    key: str
    unit: str
    bounds: tuple[float, float]
    higher_is_better: bool | None
    definition: str


_FRACTION = (0.0, 1.0)
_INF = math.inf

_ALL = (
    MetricInfo(
        "act/dead_fraction",
        "fraction of units",
        _FRACTION,
        False,
        "units whose output is exactly 0 on every probe input",
    ),
    MetricInfo(
        "act/inactive_fraction",
        "fraction of units",
        _FRACTION,
        False,
        "units whose pre-activation is < 0 on every probe input (dead LeakyReLU/ELU-like units)",
    ),
    MetricInfo(
        "act/off_fraction",
        "fraction of units",
        _FRACTION,
        False,
        "dead_fraction or inactive_fraction, whichever dead_kind(activation) says applies",
    ),
    MetricInfo(
        "act/saturated_fraction",
        "fraction of units",
        _FRACTION,
        False,
        "units whose output is outside the band (tanh |h| > 0.99, sigmoid [0.01, 0.99]) "
        "on every probe input",
    ),
    MetricInfo(
        "act/saturated_pair_fraction",
        "fraction of (input, unit) pairs",
        _FRACTION,
        False,
        "(input, unit) pairs whose output is outside the saturation band: partial saturation",
    ),
    MetricInfo(
        "act/dormant_fraction",
        "fraction of units",
        _FRACTION,
        False,
        "ReDo tau-dormant units: E|h_i| / (mean_k E|h_k| + 1e-9) <= tau",
    ),
    MetricInfo(
        "act/sparsity",
        "fraction of (input, unit) pairs",
        _FRACTION,
        None,
        "(input, unit) pairs with |h| <= eps (exactly 0 by default)",
    ),
    MetricInfo(
        "act/preact_mean",
        "pre-activation units",
        (-_INF, _INF),
        None,
        "mean of the pre-activations z over probe inputs and units",
    ),
    MetricInfo(
        "act/preact_std",
        "pre-activation units",
        (0.0, _INF),
        None,
        "standard deviation (ddof=0) of z over probe inputs and units",
    ),
    MetricInfo(
        "rank/srank",
        "number of directions",
        (0.0, _INF),
        True,
        "min k with sum_{i<=k} sigma_i / sum_j sigma_j >= 1 - delta, sigma of the (N, H) "
        "features (Kumar et al. 2021)",
    ),
    MetricInfo(
        "rank/effective_rank",
        "number of directions",
        (0.0, _INF),
        True,
        "exp(-sum p_k log p_k), p_k = sigma_k / sum_j sigma_j (Roy & Vetterli 2007); 0 if all "
        "features are 0",
    ),
    MetricInfo(
        "grad/weight_norm",
        "gradient units",
        (0.0, _INF),
        None,
        "L2 norm of a layer's weight gradient (RMS over the updates accumulated)",
    ),
    MetricInfo(
        "grad/weight_mean_abs",
        "gradient units",
        (0.0, _INF),
        None,
        "mean |dL/dW| over a layer's weights",
    ),
    MetricInfo(
        "grad/act_norm",
        "gradient units",
        (0.0, _INF),
        None,
        "L2 norm of dL/dh over a batch's activations (RMS over updates)",
    ),
    MetricInfo(
        "grad/act_mean_abs",
        "gradient units",
        (0.0, _INF),
        None,
        "mean |dL/dh| over inputs and units of a layer's output",
    ),
    MetricInfo(
        "grad/preact_norm",
        "gradient units",
        (0.0, _INF),
        None,
        "L2 norm of dL/dz over a batch's pre-activations (RMS over updates)",
    ),
    MetricInfo(
        "grad/preact_mean_abs",
        "gradient units",
        (0.0, _INF),
        None,
        "mean |dL/dz| over inputs and units (modules probed through preactivations=)",
    ),
)

METRICS: dict[str, MetricInfo] = {m.key: m for m in _ALL}
"""Every metric key, in display order, mapped to its :class:`MetricInfo`."""
