"""Metrics of every hidden layer of every member of an :class:`~actlab.models.EnsembleMLP`.

For training callbacks::

    from actlab.probes import ensemble_activation_metrics
    Callback(lambda s: ensemble_activation_metrics(s.model, s.x), every=100)

Values are ``(E, n_hidden)``: the ensemble axis first, as the trainer's records expect, then the
layers from the input side.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from actlab.models import EnsembleMLP
from actlab.probes import functional as Fm

__all__ = ["ensemble_activation_metrics", "ensemble_gradient_metrics"]


@torch.no_grad()
def ensemble_activation_metrics(
    model: EnsembleMLP,
    x: Tensor,
    tau: float = 0.025,
    delta: float = 0.01,
    eps: float = 0.0,
    ranks: bool = True,
) -> dict[str, Tensor]:
    """Representation metrics of each hidden layer and member on the probe batch ``x``.

    One forward pass (``model(x, return_hidden=True)``); each member is measured with its own
    activation, run by run (``model.runs``), so members with different activations can share the
    ensemble. Metrics that do not apply to a member's activation are NaN:
    ``act/saturated_fraction`` and ``act/saturated_pair_fraction`` where
    :func:`~actlab.probes.functional.saturation_band` is None,
    ``act/off_fraction`` where :func:`~actlab.probes.functional.dead_kind` is None.

    Args:
        model: The ensemble.
        x: Probe inputs ``(B, in)`` shared by all members, or ``(E, B, in)``.
        tau: ReDo dormancy threshold.
        delta: srank threshold.
        eps: Sparsity tolerance.
        ranks: Also compute the two ranks (one SVD per member and layer: the costly part).

    Returns:
        ``{key: (E, n_hidden) float64}`` for the keys ``act/dead_fraction``,
        ``act/inactive_fraction``, ``act/off_fraction``, ``act/saturated_fraction``,
        ``act/saturated_pair_fraction``,
        ``act/dormant_fraction``, ``act/sparsity``, ``act/preact_mean``, ``act/preact_std``
        (z over the layer's B x width values), ``rank/srank`` and ``rank/effective_rank`` (of
        the ``(B, width)`` post-activations).
    """
    with torch.no_grad():
        _, hidden = model(x, return_hidden=True)
    rows: dict[str, list[Tensor]] = {}
    for z, h in hidden:  # (E, B, width) each
        mean, std = Fm.preactivation_stats(z)
        dead, inactive = Fm.dead_fraction(h), Fm.inactive_fraction(z)
        saturated = torch.full_like(dead, math.nan)
        pairs = torch.full_like(dead, math.nan)
        off = torch.full_like(dead, math.nan)
        for run in model.runs:
            part = slice(run.start, run.stop)
            band = Fm.saturation_band(run.activation)
            if band is not None:
                saturated[part] = Fm.saturated_fraction(h[part], *band)
                pairs[part] = Fm.saturated_pair_fraction(h[part], *band)
            kind = Fm.dead_kind(run.activation)
            if kind is not None:
                off[part] = (dead if kind == "dead" else inactive)[part]
        values = {
            "act/dead_fraction": dead,
            "act/inactive_fraction": inactive,
            "act/off_fraction": off,
            "act/saturated_fraction": saturated,
            "act/saturated_pair_fraction": pairs,
            "act/dormant_fraction": Fm.dormant_fraction(h, tau),
            "act/sparsity": Fm.sparsity(h, eps),
            "act/preact_mean": mean,
            "act/preact_std": std,
        }
        if ranks:
            values["rank/srank"] = Fm.srank(h, delta)
            values["rank/effective_rank"] = Fm.effective_rank(h)
        for key, value in values.items():
            rows.setdefault(key, []).append(value)
    return {key: torch.stack(values, dim=1) for key, values in rows.items()}


@torch.no_grad()
def ensemble_gradient_metrics(model: EnsembleMLP, grad: Tensor) -> dict[str, Tensor]:
    """Weight-gradient magnitudes of every affine layer and member.

    Args:
        model: The ensemble.
        grad: A flat gradient shaped like ``model.flat`` (``StepState.grad``).

    Returns:
        ``grad/weight_norm`` and ``grad/weight_mean_abs``, each ``(E, n_layers)`` float64, layer
        0 nearest the input (output layer included).
    """
    weights = [model.weight(layer, grad) for layer in range(model.n_layers)]  # (E, out, in)
    return {
        "grad/weight_norm": torch.stack([Fm.grad_norm(w) for w in weights], dim=1),
        "grad/weight_mean_abs": torch.stack([Fm.mean_abs(w) for w in weights], dim=1),
    }
