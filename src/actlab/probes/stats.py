"""Stateful accumulators: ``update`` over batches, ``compute`` the metrics, ``reset``.

They hold sufficient statistics, never the tensors they were given, so their memory does not grow
with the number of updates, and accumulating over any split of the data into batches gives the
metrics of :mod:`actlab.probes.functional` on all of it at once (to rounding):

* per-unit "zero on every input so far" (and "z < 0", "outside the band") as running ANDs;
* per-unit sums of ``|h|`` and the input count (dormancy), the count of ``|h| <= eps`` (sparsity);
* count, mean and sum of squared deviations of ``z`` in float64, merged with Chan's formula;
* the Gram matrix ``F^T F`` in float64 (ranks: ``sigma = sqrt(eig(F^T F))``);
* sums of ``|g|``, element counts and sums of squared norms of gradients.

The formulas live in :mod:`actlab.probes.functional`; these classes only add things up.
Results are dictionaries keyed by the metric keys of :data:`actlab.probes.METRICS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from actlab.activations import Activation
from actlab.probes import functional as Fm

__all__ = ["ActivationStats", "FeatureRank", "GradientStats"]


class ActivationStats:
    """Unit-level statistics of one layer, accumulated over batches of probe inputs.

    ``compute()`` returns, each ``(E,)`` float64:

    * ``act/dead_fraction``, ``act/dormant_fraction``, ``act/sparsity`` once ``h`` was given;
    * ``act/saturated_fraction`` and ``act/saturated_pair_fraction`` if a band was set
      (``low`` and/or ``high``);
    * ``act/inactive_fraction``, ``act/preact_mean``, ``act/preact_std`` once ``z`` was given
      (over the updates that gave ``z``);
    * ``act/off_fraction`` if ``kind`` was set: the dead fraction for ``kind="dead"``, the
      inactive fraction for ``kind="inactive"`` (see :func:`~actlab.probes.functional.dead_kind`).

    Args:
        low: Lower edge of the non-saturated band; None for ``-inf``.
        high: Upper edge of the non-saturated band; None for ``+inf``. With both None, no
            saturation is measured.
        tau: ReDo dormancy threshold.
        eps: Sparsity tolerance: ``|h| <= eps`` counts as zero.
        kind: ``"dead"``, ``"inactive"`` or None: which fraction ``act/off_fraction`` reports.
    """

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        tau: float = 0.025,
        eps: float = 0.0,
        kind: str | None = None,
    ):
        if kind not in (None, "dead", "inactive"):
            raise ValueError(f"kind must be 'dead', 'inactive' or None, got {kind!r}")
        if not (tau >= 0 and eps >= 0):
            raise ValueError(f"tau and eps must be >= 0, got tau={tau}, eps={eps}")
        self.band = (
            None
            if low is None and high is None
            else (-math.inf if low is None else low, math.inf if high is None else high)
        )
        if self.band is not None and not self.band[0] <= self.band[1]:
            raise ValueError(f"saturation band needs low <= high, got {self.band}")
        self.tau, self.eps, self.kind = tau, eps, kind
        self.reset()

    @classmethod
    def for_activation(
        cls, activation: Activation, tau: float = 0.025, eps: float = 0.0
    ) -> ActivationStats:
        """Band from :func:`~actlab.probes.functional.saturation_band` and kind from
        :func:`~actlab.probes.functional.dead_kind` of ``activation``."""
        low, high = Fm.saturation_band(activation) or (None, None)
        return cls(low, high, tau=tau, eps=eps, kind=Fm.dead_kind(activation))

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.n = 0  # inputs seen with h
        self.all_zero: Tensor | None = None  # (E, D) bool
        self.all_outside: Tensor | None = None  # (E, D) bool
        self.abs_sum: Tensor | None = None  # (E, D) float64
        self.zero_count: Tensor | None = None  # (E,) int64
        self.outside_count: Tensor | None = None  # (E,) int64: (input, unit) pairs outside
        self.all_negative: Tensor | None = None  # (E, Dz) bool
        self.z_moments: tuple[int, Tensor, Tensor] | None = None  # count, mean (E,), M2 (E,)

    @torch.no_grad()
    def update(self, h: Tensor | None = None, z: Tensor | None = None) -> None:
        """Add a batch: post-activations ``h`` and/or pre-activations ``z``, each ``(E, B, D)``
        or ``(B, D)``. ``h`` and ``z`` may come in separate calls (hooks see ``z`` before the
        module runs); their counts are kept apart."""
        if h is not None:
            h = Fm.as_members(h).detach()
            if h.shape[1] > 0:
                self._update_h(h)
        if z is not None:
            z = Fm.as_members(z, "pre-activations").detach()
            if z.shape[1] > 0:
                self._update_z(z)

    def _update_h(self, h: Tensor) -> None:
        if self.all_zero is None:
            E, _, D = h.shape
            self.all_zero = torch.ones(E, D, dtype=torch.bool, device=h.device)
            self.all_outside = torch.ones_like(self.all_zero)
            self.abs_sum = torch.zeros(E, D, dtype=torch.float64, device=h.device)
            self.zero_count = torch.zeros(E, dtype=torch.int64, device=h.device)
            self.outside_count = torch.zeros(E, dtype=torch.int64, device=h.device)
        _check_shape(h, self.all_zero.shape, "h")
        self.n += h.shape[1]
        habs = h.abs()
        self.all_zero &= (h == 0).all(dim=1)
        if self.band is not None:
            outside = (h < self.band[0]) | (h > self.band[1])
            self.all_outside &= outside.all(dim=1)
            self.outside_count += outside.sum(dim=(1, 2))
        self.abs_sum += habs.sum(dim=1, dtype=torch.float64)
        self.zero_count += (habs <= self.eps).sum(dim=(1, 2))

    def _update_z(self, z: Tensor) -> None:
        if self.all_negative is None:
            self.all_negative = torch.ones(
                z.shape[0], z.shape[2], dtype=torch.bool, device=z.device
            )
        _check_shape(z, self.all_negative.shape, "z")
        self.all_negative &= (z < 0).all(dim=1)
        batch = Fm.moments(z)
        self.z_moments = (
            batch if self.z_moments is None else Fm.merge_moments(self.z_moments, batch)
        )

    def compute(self) -> dict[str, Tensor]:
        """The metrics accumulated so far (see the class docstring for the keys)."""
        out: dict[str, Tensor] = {}
        if self.all_zero is not None:
            D = self.all_zero.shape[1]
            out["act/dead_fraction"] = Fm.unit_fraction(self.all_zero)
            if self.band is not None:
                out["act/saturated_fraction"] = Fm.unit_fraction(self.all_outside)
                out["act/saturated_pair_fraction"] = self.outside_count.to(torch.float64) / (
                    self.n * D
                )
            out["act/dormant_fraction"] = Fm.dormant_from_mean_abs(self.abs_sum / self.n, self.tau)
            out["act/sparsity"] = self.zero_count.to(torch.float64) / (self.n * D)
        if self.all_negative is not None:
            out["act/inactive_fraction"] = Fm.unit_fraction(self.all_negative)
            n, mean, m2 = self.z_moments
            out["act/preact_mean"] = mean.clone()
            out["act/preact_std"] = (m2 / n).sqrt()
        if self.kind == "dead" and "act/dead_fraction" in out:
            out["act/off_fraction"] = out["act/dead_fraction"]
        elif self.kind == "inactive" and "act/inactive_fraction" in out:
            out["act/off_fraction"] = out["act/inactive_fraction"]
        return out


class FeatureRank:
    """``srank_delta`` and effective rank of features accumulated over batches.

    Keeps ``G = F^T F`` ``(E, H, H)`` in float64: ``G`` of the concatenated rows is the sum of
    the batches' ``G``, and the singular values of F are the square roots of the eigenvalues of
    G (:func:`~actlab.probes.functional.singular_values_from_gram`, which drops singular values
    below about ``1.5e-8 sqrt(max(N, H)) sigma_max``, the precision of this route). Memory is
    ``E H^2`` float64 whatever the number of rows.

    ``compute()`` returns ``rank/srank`` and ``rank/effective_rank``, each ``(E,)`` float64.

    Args:
        delta: srank's threshold, in [0, 1).
    """

    def __init__(self, delta: float = 0.01):
        if not 0 <= delta < 1:
            raise ValueError(f"delta must be in [0, 1), got {delta}")
        self.delta = delta
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.n = 0
        self.gram: Tensor | None = None  # (E, H, H) float64

    @torch.no_grad()
    def update(self, features: Tensor) -> None:
        """Add rows: features ``(E, N, H)`` or ``(N, H)``."""
        f = Fm.as_members(features, "features").detach().to(torch.float64)
        if self.gram is None:
            E, _, H = f.shape
            self.gram = torch.zeros(E, H, H, dtype=torch.float64, device=f.device)
        _check_shape(f, self.gram.shape[:2], "features")
        self.n += f.shape[1]
        self.gram.baddbmm_(f.transpose(1, 2), f)

    def compute(self) -> dict[str, Tensor]:
        """``rank/srank`` and ``rank/effective_rank`` of all rows added so far."""
        if self.gram is None:
            return {}
        sigma = Fm.singular_values_from_gram(self.gram, self.n)
        return {
            "rank/srank": Fm.srank_from_singular_values(sigma, self.delta),
            "rank/effective_rank": Fm.effective_rank_from_singular_values(sigma),
        }


class GradientStats:
    """Gradient magnitudes of several layers, accumulated over updates (training steps).

    For each layer, over the updates so far:

    * ``grad/{kind}_mean_abs``: mean ``|g|`` over every element of every update (the
      :func:`~actlab.probes.functional.mean_abs` of all updates concatenated);
    * ``grad/{kind}_norm``: root mean square over updates of the per-update L2 norm,
      ``sqrt((1/T) sum_t ||g_t||^2)`` (the :func:`~actlab.probes.functional.grad_norm` itself
      after a single update).

    ``compute()`` stacks layers in the order first seen: each value is ``(L, E)`` float64 and
    ``self.layers`` names the rows.

    Args:
        kind: ``"weight"`` (weight gradients ``(E, out, in)``), ``"act"`` (gradients of
            post-activations ``(E, B, D)``) or ``"preact"`` (of pre-activations).
    """

    KINDS = ("weight", "act", "preact")

    def __init__(self, kind: str = "weight"):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.layers: list[str] = []
        self._sums: dict[str, list] = {}  # layer -> [updates, elements, sum |g|, sum ||g||^2]

    @torch.no_grad()
    def update(self, grads: Mapping[str, Tensor] | Sequence[Tensor]) -> None:
        """Add one update: ``{layer: gradient (E, ...)}``, or a sequence named "0", "1", ..."""
        items = grads.items() if isinstance(grads, Mapping) else enumerate(grads)
        for layer, g in items:
            layer = str(layer)
            g = g.detach()
            if g.dim() < 1:
                raise ValueError(f"gradient of {layer!r} needs a leading ensemble axis")
            if layer not in self._sums:
                self.layers.append(layer)
                zeros = torch.zeros(g.shape[0], dtype=torch.float64, device=g.device)
                self._sums[layer] = [0, 0, zeros, zeros.clone()]
            acc = self._sums[layer]
            if acc[2].shape[0] != g.shape[0]:
                raise ValueError(f"gradient of {layer!r}: ensemble size changed to {g.shape[0]}")
            n = g[0].numel()
            acc[0] += 1
            acc[1] += n
            acc[2] += Fm.mean_abs(g) * n
            acc[3] += Fm.grad_norm(g).square()

    def compute(self) -> dict[str, Tensor]:
        """``grad/{kind}_norm`` and ``grad/{kind}_mean_abs``, each ``(L, E)``."""
        if not self.layers:
            return {}
        sums = [self._sums[layer] for layer in self.layers]
        return {
            f"grad/{self.kind}_norm": torch.stack([(s[3] / s[0]).sqrt() for s in sums]),
            f"grad/{self.kind}_mean_abs": torch.stack([s[2] / s[1] for s in sums]),
        }


def _check_shape(x: Tensor, expected: torch.Size | tuple[int, ...], what: str) -> None:
    E, D = expected
    if x.shape[0] != E or x.shape[2] != D:
        raise ValueError(
            f"{what} of shape {tuple(x.shape)} does not match the accumulated (E={E}, B, D={D})"
        )
