"""Reinforcement learning: agents' networks (plain or Hadamard layers, any registry activation),
agent ensembles trained in one batched pass, environments and representation diagnostics.

* :mod:`~actlab.rl.models` -- :class:`HadamardLayer`, :func:`mlp_qnet`, :func:`minatar_net`,
  parameter counts and parameter-matched widths.
* :mod:`~actlab.rl.ensemble` -- :func:`stack`, :func:`ensemble_call`,
  :func:`clip_grad_norm_per_member`, :func:`member_params`.
* :mod:`~actlab.rl.envs`, :mod:`~actlab.rl.diagnostics` -- import from the modules themselves.
"""

from actlab.rl.ensemble import clip_grad_norm_per_member, ensemble_call, member_params, stack
from actlab.rl.models import (
    DenseBlock,
    HadamardLayer,
    Network,
    matched_hidden,
    matched_minatar_width,
    minatar_net,
    minatar_parameter_count,
    mlp_parameter_count,
    mlp_qnet,
)

__all__ = [
    "HadamardLayer",
    "DenseBlock",
    "Network",
    "mlp_qnet",
    "minatar_net",
    "mlp_parameter_count",
    "minatar_parameter_count",
    "matched_hidden",
    "matched_minatar_width",
    "stack",
    "ensemble_call",
    "clip_grad_norm_per_member",
    "member_params",
]
