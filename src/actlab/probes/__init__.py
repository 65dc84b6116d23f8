"""Probes: representation and gradient metrics, in the torchmetrics split.

* :mod:`~actlab.probes.functional` -- pure functions on tensors, ensemble axis first:
  ``(E, B, D)`` activations (or ``(B, D)``, taken as E = 1) give ``(E,)`` float64.
* :mod:`~actlab.probes.stats` -- :class:`ActivationStats`, :class:`FeatureRank`,
  :class:`GradientStats`: ``update`` / ``compute`` / ``reset``, holding statistics, not tensors;
  accumulating over batches equals computing on all the data.
* :mod:`~actlab.probes.metadata` -- :data:`METRICS`, a :class:`MetricInfo` per key.
* :mod:`~actlab.probes.hooks` -- :func:`probe`: the same metrics for any ``nn.Module`` via hooks.
* :mod:`~actlab.probes.ensemble` -- :func:`ensemble_activation_metrics` for an ``EnsembleMLP``.

Metric keys (definitions from ``docs/REFERENCES.md``; N probe inputs, H or D units per layer):

=============================  ===============================================================
key                            definition
=============================  ===============================================================
act/dead_fraction              units whose output is exactly 0 on every probe input
act/inactive_fraction          units whose pre-activation is < 0 on every input (LeakyReLU, ELU)
act/off_fraction               dead or inactive fraction, whichever ``dead_kind(activation)`` names
act/saturated_fraction         units outside the band on every input (tanh: |h| > 0.99; sigmoid:
                               outside [0.01, 0.99]; bounded monotonic: the outer 1% of the range)
act/saturated_pair_fraction    (input, unit) pairs outside the band: saturation input by input
act/dormant_fraction           ReDo: s_i = E|h_i| / (mean_k E|h_k| + 1e-9) <= tau (0.025 default)
act/sparsity                   (input, unit) pairs with |h| <= eps (eps = 0: exactly zero)
act/preact_mean                mean of z over inputs and units
act/preact_std                 standard deviation (ddof = 0) of z over inputs and units
rank/srank                     min k: sum_{i<=k} sigma_i / sum sigma >= 1 - delta (delta = 0.01)
rank/effective_rank            exp(-sum p log p), p = sigma / sum sigma; 0 for all-zero features
grad/weight_norm               L2 norm of a layer's weight gradient (RMS over updates)
grad/weight_mean_abs           mean |dL/dW|
grad/act_norm                  L2 norm of dL/dh over a batch (RMS over updates)
grad/act_mean_abs              mean |dL/dh| over inputs and units
grad/preact_norm               L2 norm of dL/dz (modules probed through ``preactivations=``)
grad/preact_mean_abs           mean |dL/dz| (modules probed through ``preactivations=``)
=============================  ===============================================================
"""

from actlab.probes.ensemble import ensemble_activation_metrics, ensemble_gradient_metrics
from actlab.probes.functional import (
    dead_fraction,
    dead_kind,
    dormant_fraction,
    effective_rank,
    grad_norm,
    inactive_fraction,
    mean_abs,
    preactivation_stats,
    saturated_fraction,
    saturated_pair_fraction,
    saturation_band,
    sparsity,
    srank,
)
from actlab.probes.hooks import Probe, activation_of, default_activation_types, probe
from actlab.probes.metadata import METRICS, MetricInfo
from actlab.probes.stats import ActivationStats, FeatureRank, GradientStats

__all__ = [
    "METRICS",
    "MetricInfo",
    "ActivationStats",
    "FeatureRank",
    "GradientStats",
    "Probe",
    "probe",
    "activation_of",
    "default_activation_types",
    "ensemble_activation_metrics",
    "ensemble_gradient_metrics",
    "dead_fraction",
    "inactive_fraction",
    "saturated_fraction",
    "saturated_pair_fraction",
    "dormant_fraction",
    "sparsity",
    "srank",
    "effective_rank",
    "preactivation_stats",
    "grad_norm",
    "mean_abs",
    "saturation_band",
    "dead_kind",
]
