"""Representation and gradient diagnostics of an ensemble of agents on a fixed probe batch.

This module only arranges the pure metrics of :mod:`actlab.probes.functional` (their formulas
are in ``docs/REFERENCES.md``, "Representation metrics") for the RL agents:

* :func:`probe_batch` gathers N states with a uniformly random policy (seeded): the fixed batch
  on which every agent's hidden layers are read, every time the diagnostics run.
* :func:`representation_diagnostics` takes the hidden activations per layer, ``(E, B, H)`` each
  (E agents, B probe states, H units), and returns per layer and per agent the fractions of dead,
  inactive or saturated units (whichever notion the activation has), of tau-dormant units, and
  the srank and effective rank of the layer's ``(B, H)`` features.
* :func:`gradient_diagnostics`: mean |gradient| per layer and agent.
* :func:`tidy` lays them out as a long table (member, step, metric, value) with the agents'
  descriptors, to be logged beside the episodic returns.

Metric keys are ``layer{l}/<stat>`` (l counts hidden layers from 0) and ``<name>/grad_mean_abs``;
each value is ``(E,)`` float64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from actlab.activations import Activation, get_activation
from actlab.probes import functional as F
from actlab.rl.envs import make_env, observation_tensor
from actlab.seeding import derive_seed

__all__ = [
    "TAUS",
    "gradient_diagnostics",
    "probe_batch",
    "representation_diagnostics",
    "tidy",
]

TAUS = (0.0, 0.025, 0.1)
"""The dormancy thresholds of ReDo (Sokar et al. 2023): 0 (dead), 0.025 and 0.1."""


def probe_batch(env_id: str, n: int, seed: int) -> Tensor:
    """N states visited by a uniformly random policy, as the agents see them.

    One environment, seeded with ``derive_seed(seed, "probe")``, plays uniformly random actions
    (its action space seeded the same way); every observation it shows, the first of each
    episode included, is kept until there are N. Episodes that end restart from a reset.

    Args:
        env_id: One of :data:`actlab.rl.envs.ENVIRONMENTS`.
        n: Number of states N (>= 1).
        seed: Seed of the batch; the same seed gives the same batch.

    Returns:
        ``(N, *obs_shape)`` float32 (MinAtar channels first, 0/1).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    probe_seed = derive_seed(seed, "probe") % 2**32
    env = make_env(env_id)
    env.action_space.seed(probe_seed)
    obs, _ = env.reset(seed=probe_seed)
    states = [obs]
    while len(states) < n:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
        states.append(obs)
    env.close()
    return observation_tensor(np.stack(states), env_id)


def _per_layer(
    activation: str | Activation | Sequence[str | Activation], n_layers: int
) -> list[Activation]:
    if isinstance(activation, (str, Activation)):
        return [get_activation(activation)] * n_layers
    acts = [get_activation(a) for a in activation]
    if len(acts) != n_layers:
        raise ValueError(
            f"activation must be one name or one per layer ({n_layers}), got {len(acts)}"
        )
    return acts


def representation_diagnostics(
    hidden: Sequence[Tensor],
    activation: str | Activation | Sequence[str | Activation],
    taus: Sequence[float] = TAUS,
    delta: float = 0.01,
    preactivations: Sequence[Tensor] | None = None,
) -> dict[str, Tensor]:
    """Unit-state fractions and ranks of every hidden layer, per ensemble member.

    For layer l with activations ``h`` ``(E, B, H)``:

    * ``layer{l}/dead``: fraction of units with ``h = 0`` on every probe input; only when the
      activation has a flat zero region (``dead_kind == "dead"``: relu, relu6, ...).
    * ``layer{l}/inactive``: fraction of units with pre-activation ``z < 0`` on every input; only
      for ReLU-like activations without an exact zero (``dead_kind == "inactive"``: leaky_relu,
      elu, gelu, ...) and only when ``preactivations`` are given.
    * ``layer{l}/saturated``: fraction of units outside the non-saturated band on every input
      (``saturation_band``: ``|tanh| > 0.99``, sigmoid outside [0.01, 0.99]); only for
      activations that saturate.
    * ``layer{l}/saturated_share``: fraction of (input, unit) pairs outside that band, input
      by input (partial saturation, which ``saturated`` leaves at 0).
    * ``layer{l}/dormant_{tau}`` for each tau (formatted with ``:g``: ``dormant_0``,
      ``dormant_0.025``, ``dormant_0.1``): ReDo's ``s_i = E_x|h_i| / ((1/H) sum_k E_x|h_k| + 1e-9)
      <= tau``.
    * ``layer{l}/srank``: ``min{k : sum_{i<=k} sigma_i / sum_j sigma_j >= 1 - delta}``.
    * ``layer{l}/effective_rank``: ``exp(-sum_k p_k log p_k)``, ``p_k = sigma_k / sum_j sigma_j``;
      sigma the singular values of the member's ``(B, H)`` features.

    For a Hadamard layer pass the product ``phi(z1) * phi(z2)`` and its phi: a product of two
    tanh is outside (-0.99, 0.99) only where both factors are, so it counts units saturated in
    both branches.

    Args:
        hidden: One tensor ``(E, B, H_l)`` per hidden layer (H may differ between layers).
        activation: A registry name or :class:`Activation`, or one per layer.
        taus: Dormancy thresholds (each >= 0).
        delta: srank's threshold, in [0, 1).
        preactivations: Optional ``(E, B, H_l)`` per layer, for ``layer{l}/inactive``.

    Returns:
        Metric key -> ``(E,)`` float64.
    """
    if len(hidden) == 0:
        raise ValueError("hidden must hold at least one layer")
    for l, h in enumerate(hidden):
        if h.dim() != 3:
            raise ValueError(f"hidden[{l}] must be (E, B, H), got shape {tuple(h.shape)}")
        if h.shape[0] != hidden[0].shape[0]:
            raise ValueError(
                f"hidden layers must share the ensemble axis: hidden[0] has E = "
                f"{hidden[0].shape[0]}, hidden[{l}] has E = {h.shape[0]}"
            )
    if preactivations is not None and len(preactivations) != len(hidden):
        raise ValueError(
            f"preactivations must have one tensor per layer ({len(hidden)}), "
            f"got {len(preactivations)}"
        )
    acts = _per_layer(activation, len(hidden))
    out: dict[str, Tensor] = {}
    for l, (h, act) in enumerate(zip(hidden, acts, strict=True)):
        kind = F.dead_kind(act)
        if kind == "dead":
            out[f"layer{l}/dead"] = F.dead_fraction(h)
        elif kind == "inactive" and preactivations is not None:
            out[f"layer{l}/inactive"] = F.inactive_fraction(preactivations[l])
        band = F.saturation_band(act)
        if band is not None:
            out[f"layer{l}/saturated"] = F.saturated_fraction(h, *band)
            out[f"layer{l}/saturated_share"] = F.saturated_pair_fraction(h, *band)
        for tau in taus:
            out[f"layer{l}/dormant_{tau:g}"] = F.dormant_fraction(h, tau)
        out[f"layer{l}/srank"] = F.srank(h, delta)
        out[f"layer{l}/effective_rank"] = F.effective_rank(h)
    return out


def gradient_diagnostics(grads_by_layer: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Mean absolute gradient per layer and member.

    ``grad_mean_abs_m = (1/n) sum_j |g_{m,j}|`` over every entry of the member's gradient (weights
    ``(E, out, in)``, biases ``(E, out)``, conv kernels ``(E, C_out, C_in, k, k)``, ...).

    Args:
        grads_by_layer: Layer name -> gradient with a leading ensemble axis E (the same E for
            every layer).

    Returns:
        ``"{name}/grad_mean_abs"`` -> ``(E,)`` float64.
    """
    out: dict[str, Tensor] = {}
    sizes = {name: g.shape[0] if g.dim() else None for name, g in grads_by_layer.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"grads_by_layer must share the leading ensemble axis, got {sizes}")
    for name, g in grads_by_layer.items():
        out[f"{name}/grad_mean_abs"] = F.mean_abs(g)
    return out


def tidy(
    diags: Mapping[str, Tensor],
    step: int,
    agent_labels: Sequence[Mapping[str, object]] | None = None,
) -> pd.DataFrame:
    """Diagnostics as a long table: one row per (member, metric).

    Args:
        diags: Metric key -> ``(E,)`` values (as returned by the functions above).
        step: The training step (environment steps) the diagnostics were taken at.
        agent_labels: Optional descriptors of the E members, one dict each (e.g.
            ``{"agent": "dqn", "activation": "tanh", "seed": 0}``), added as columns.

    Returns:
        Columns ``member, step, <descriptor columns>, metric, value`` (value float64), rows
        ordered by metric then member.
    """
    sizes = {key: tuple(v.shape) for key, v in diags.items()}
    if len({s for s in sizes.values()}) > 1 or any(len(s) != 1 for s in sizes.values()):
        raise ValueError(f"every diagnostic must be (E,) with the same E, got {sizes}")
    n_members = next(iter(sizes.values()))[0] if sizes else 0
    if agent_labels is not None and len(agent_labels) != n_members:
        raise ValueError(
            f"agent_labels must hold one dict per member ({n_members}), got {len(agent_labels)}"
        )
    reserved = {"member", "step", "metric", "value"}
    clash = sorted(reserved.intersection(k for d in agent_labels or () for k in d))
    if clash:
        raise ValueError(f"agent_labels may not use the table's own columns, got {clash}")
    rows = []
    for key, values in diags.items():
        for m, value in enumerate(values.tolist()):
            labels = dict(agent_labels[m]) if agent_labels is not None else {}
            rows.append({"member": m, "step": int(step), **labels, "metric": key, "value": value})
    columns = ["member", "step"]
    if agent_labels is not None:
        columns += list(dict.fromkeys(k for d in agent_labels for k in d))
    columns += ["metric", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"member": "int64", "step": "int64", "value": "float64"})
