"""NumPy from scratch: activations from their formulas, checked, and the numerical lessons
around them (linear collapse, stable softmax, temperature, dead ReLU, output heads in RL).

Everything but the last part is exact arithmetic in NumPy; every number the report quotes is
measured by :func:`run`:

* **Formulas vs libraries.** ReLU, LeakyReLU, sigmoid, tanh, softmax and log-softmax written
  from their formulas (:mod:`actlab.numpy_ref`) against PyTorch and SciPy
  (``scipy.special.expit``, ``softmax``, ``log_softmax``) on a random array and on edge values
  (``+-inf``, NaN, ``+-1000``, ``+-710``, ``+-0``, ``+-1e-300``) in float64 and float32: the max
  absolute difference over entries finite in both, and the count of entries whose non-finite
  values disagree. The textbook forms (``1 / (1 + e^{-x})``, ``(e^x - e^{-x}) / (e^x + e^{-x})``,
  ``e^x / sum e^x``) are checked the same way, to show where they break.
* **Linear collapse.** Layers ``h_l = W_l h_{l-1} + b_l`` compose into one affine map
  ``W = W_L ... W_1``, ``b = W_L(... W_2 b_1 + b_2 ...) + b_L``, of rank at most the narrowest
  layer; with ReLU or tanh between the layers no affine map fits (least-squares residual).
* **Stable softmax.** ``e^x / sum e^x`` overflows (``inf / inf = NaN``) once ``max x >
  log(float max)``; subtracting the maximum fixes it. ``log(softmax)`` gives ``-inf`` where a
  probability underflows; ``log_softmax`` stays finite.
* **Temperature.** ``softmax(x / T)`` for the lesson's ``[1, 2, 3]`` scaled by 1, 10 and 0.1 (a
  scale ``s`` is the temperature ``1 / s``), and one logit vector over a range of ``T``, with the
  entropy; the temperature at which Boltzmann exploration explores as much as epsilon-greedy.
* **Dead ReLU.** Outputs and gradients on negative inputs, ReLU vs LeakyReLU, and gradient descent
  on one unit whose inputs are all negative: ReLU never moves, LeakyReLU recovers.
* **Output heads in RL.** On a small chain MDP with exact Q-values: what a DQN head (linear
  Q-values), a policy head (softmax over actions) and a critic head (linear value) output, and a
  fit of the Q-values with a linear vs a bounded (tanh, sigmoid) output over seeds: a bounded head
  cannot go past its range, so its error has a floor that is computed exactly.

The fit uses :class:`~actlab.models.EnsembleMLP` (every head and seed in one pass; members with the
same seed start from the same weights whatever their head) with autograd and ``torch.optim.Adam``
on its flat buffer, not :func:`actlab.train.train`: the trainer's output layer is always affine,
and the point here is an activation *on the output*. Adam is element-wise and the loss a sum of
per-member losses, so members stay independent (tested against a plain ``nn.Sequential``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from actlab import numpy_ref as ref
from actlab import progress
from actlab.experiments.base import (
    ChunkRunner,
    Results,
    run_inline,
)
from actlab.experiments.numpy_basics import parts
from actlab.experiments.numpy_basics.config import Config, presets

__all__ = ["Config", "presets", "run"]


BIG_VARIANTS = ("naive", "stable", "scipy", "torch", "log_naive", "log_stable", "log_scipy")
"""Rows of the array ``softmax_big``: softmax and log-softmax of ``big_logits``."""
GAP_VARIANTS = ("softmax", "log_of_softmax", "log_softmax", "torch")
"""Rows of the array ``softmax_gap`` (``torch``: PyTorch's log-softmax)."""


def _metrics(checks, collapse, dead, heads_fit, cfg: Config) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(checks):
        keys = ("function", "implementation", "reference", "inputs", "dtype")
        for metric in ("max_abs_diff", "nonfinite_mismatches"):
            rows.append(
                {
                    "member": i,
                    "step": 0,
                    "metric": f"check/{metric}",
                    "value": float(c[metric]),
                    "part": "check",
                    **{k: c[k] for k in keys},
                }
            )
    for i, r in enumerate(collapse["rows"]):
        for metric in ("max_abs_diff_composed", "affine_fit_residual"):
            rows.append(
                {
                    "member": i,
                    "step": 0,
                    "metric": f"collapse/{metric}",
                    "value": r[metric],
                    "part": "collapse",
                    "activation": r["activation"],
                }
            )
    for i, name in enumerate(("relu", "leaky_relu")):
        for step, (loss, _, _, alive, _) in enumerate(dead["trajectory"][i]):
            for metric, value in (("dead/loss", loss), ("dead/alive_fraction", alive)):
                rows.append(
                    {
                        "member": i,
                        "step": step,
                        "metric": metric,
                        "value": value,
                        "part": "dead",
                        "activation": name,
                    }
                )
    loss = heads_fit["loss"]  # (head, seed, step)
    for h, head in enumerate(cfg.q_heads):
        for s in range(cfg.seeds):
            for step in range(loss.shape[2]):
                rows.append(
                    {
                        "member": h * cfg.seeds + s,
                        "step": step,
                        "metric": "heads/mse",
                        "value": loss[h, s, step],
                        "part": "heads",
                        "head": head,
                        "seed": s,
                    }
                )
    columns = [
        "member",
        "step",
        "metric",
        "value",
        "part",
        "activation",
        "function",
        "implementation",
        "reference",
        "inputs",
        "dtype",
        "head",
        "seed",
    ]
    m = pd.DataFrame(rows, columns=columns)
    return m.astype({"member": "int64", "step": "int64", "value": "float64", "seed": "Int64"})


def run(cfg: Config, chunks: ChunkRunner = run_inline) -> Results:
    """Compute every part of the lesson (see the module docstring); no file I/O.

    Only the Q-value fit is a chunk (``"q-fit"``); the rest is exact NumPy and takes
    milliseconds.
    """
    progress.expect(5 + cfg.fit_steps)  # one step per exact part, one per step of the fit
    checks, textbook_warnings = parts.check_formulas(cfg)
    for c in checks:
        c["mismatch_at"] = parts.mismatches(cfg, c) if c["nonfinite_mismatches"] else []
    formula = parts.formula_curves(cfg)
    progress.advance()
    collapse = parts.linear_collapse(cfg)
    progress.advance()
    soft = parts.softmax_stability(cfg)
    progress.advance()
    temp = parts.temperature_study(cfg)
    progress.advance()
    dead = parts.dead_relu(cfg)
    progress.advance()
    rl = parts.rl_heads(cfg, chunks)
    fit = rl["fit"]
    peaky = [f"[{', '.join(f'{v:g}' for v in row)}]" for row in temp["vectors"]]
    big, gap = soft["big"], soft["gap"]
    arrays = {
        "formula_curves": formula["curves"],
        "collapse_line": collapse["curves"],
        "collapse_singular_values": collapse["singular_values"],
        "softmax_big": np.stack([big[k] for k in BIG_VARIANTS]),
        "softmax_gap": np.stack([gap[k] for k in GAP_VARIANTS]),
        "overflow": soft["sweep"],
        "underflow": soft["underflow"],
        "peaky_probs": temp["probs"],
        "temperature_probs": temp["sweep"],
        "temperature_entropy": temp["entropy"],
        "dead_curves": dead["curves"],
        "dead_training": dead["trajectory"],
        "q_targets": fit["targets"],
        "q_pred": fit["pred"],
        "q_loss": fit["loss"],
    }
    axes = {
        "formula_curves": ("function", "quantity", "source", "z"),
        "collapse_line": ("stack", "series", "t"),
        "collapse_singular_values": ("index",),
        "softmax_big": ("variant", "logit"),
        "softmax_gap": ("variant", "logit"),
        "overflow": ("variant", "offset"),
        "underflow": ("variant", "gap"),
        "peaky_probs": ("vector", "action"),
        "temperature_probs": ("temperature", "action"),
        "temperature_entropy": ("vector", "temperature"),
        "dead_curves": ("activation", "quantity", "z"),
        "dead_training": ("activation", "step", "quantity"),
        "q_targets": ("state", "action"),
        "q_pred": ("head", "seed", "state", "action"),
        "q_loss": ("head", "seed", "step"),
    }
    states = list(range(1, cfg.n_states + 1))
    coords = {
        "formula_curves/function": list(parts.CHECK_FUNCTIONS[:4]),
        "formula_curves/quantity": ["phi", "dphi"],
        "formula_curves/source": ["numpy", "torch"],
        "formula_curves/z": formula["z"].tolist(),
        "collapse_line/stack": collapse["names"],
        "collapse_line/series": ["network", "affine fit"],
        "collapse_line/t": collapse["t"].tolist(),
        "softmax_big/variant": list(BIG_VARIANTS),
        "softmax_gap/variant": list(GAP_VARIANTS),
        "overflow/variant": ["naive float64", "stable float64", "naive float32", "stable float32"],
        "overflow/offset": soft["offsets"].tolist(),
        "underflow/variant": [
            "log of softmax float64",
            "log of softmax float32",
            "log_softmax float64",
        ],
        "underflow/gap": soft["gaps"].tolist(),
        "peaky_probs/vector": peaky,
        "temperature_probs/temperature": temp["temperatures"].tolist(),
        "temperature_entropy/vector": [*peaky, "sweep"],
        "temperature_entropy/temperature": temp["temperatures"].tolist(),
        "dead_curves/activation": ["relu", "leaky_relu"],
        "dead_curves/quantity": ["phi", "dphi"],
        "dead_curves/z": dead["z"].tolist(),
        "dead_training/activation": ["relu", "leaky_relu"],
        "dead_training/quantity": ["loss", "w", "b", "alive_fraction", "grad_norm"],
        "q_targets/state": states,
        "q_targets/action": list(parts.ACTIONS),
        "q_pred/head": list(cfg.q_heads),
        "q_pred/state": states,
        "q_pred/action": list(parts.ACTIONS),
        "q_loss/head": list(cfg.q_heads),
    }
    traj = dead["trajectory"]
    alive = np.flatnonzero(traj[1, :, 3] > 0)
    demo = sorted({1, (cfg.n_states + 1) // 2, cfg.n_states})
    summary = {
        "config": {
            "leaky_slope": cfg.leaky_slope,
            "n_random": cfg.n_random,
            "random_scale": cfg.random_scale,
            "epsilon": cfg.epsilon,
            "gamma": cfg.gamma,
            "stop_reward": cfg.stop_reward,
            "n_states": cfg.n_states,
            "policy_temperature": cfg.policy_temperature,
            "torso": cfg.torso,
            "hidden": cfg.hidden,
            "seeds": cfg.seeds,
            "fit_steps": cfg.fit_steps,
            "fit_lr": cfg.fit_lr,
            "dead_steps": cfg.dead_steps,
            "dead_lr": cfg.dead_lr,
            "t_min": cfg.t_min,
            "t_max": cfg.t_max,
            "sweep_logits": list(cfg.sweep_logits),
        },
        "edge_values": [parts.label(v) for v in parts.EDGE_VALUES],
        "softmax_edge_rows": [[parts.label(v) for v in row] for row in parts.SOFTMAX_EDGE_ROWS],
        "checks": checks,
        "textbook_warnings": textbook_warnings,
        "eps": {
            "float64": float(np.finfo(np.float64).eps),
            "float32": float(np.finfo(np.float32).eps),
        },
        "collapse": {
            "widths": list(cfg.collapse_widths),
            "rows": collapse["rows"],
            "rank": collapse["rank"],
            "layer_ranks": collapse["layer_ranks"],
            "shape": collapse["shape"],
            "singular_values": collapse["singular_values"].tolist(),
            "rank_tolerance": collapse["rank_tolerance"],
        },
        "softmax": {
            "big_logits": list(cfg.big_logits),
            "gap_logits": list(cfg.gap_logits),
            "stable": big["stable"].tolist(),
            "log_stable": big["log_stable"].tolist(),
            "naive_all_nan": bool(np.isnan(big["naive"]).all()),
            "log_naive_all_nan": bool(np.isnan(big["log_naive"]).all()),
            "exp_max_is_inf": bool(np.isinf(big["exp_max"])),
            "shift_invariance": float(
                np.max(
                    np.abs(
                        big["stable"] - ref.softmax(np.array(cfg.big_logits) - min(cfg.big_logits))
                    )
                )
            ),
            "vs_scipy": parts.compare(big["stable"], big["scipy"])[0],
            "vs_torch": parts.compare(big["stable"], big["torch"])[0],
            "log_vs_scipy": parts.compare(big["log_stable"], big["log_scipy"])[0],
            "gap_softmax": gap["softmax"].tolist(),
            "gap_log_softmax": gap["log_softmax"].tolist(),
            "gap_log_of_softmax_inf": [bool(v) for v in np.isinf(gap["log_of_softmax"])],
            "gap_vs_torch": parts.compare(gap["log_softmax"], gap["torch"])[0],
            "warnings": soft["warnings"],
            "exp_limit": {
                "float64": soft["exp_limit_float64"],
                "float32": soft["exp_limit_float32"],
            },
            "first_wrong_offset": soft["first_wrong_offset"],
            "first_nan_offset": soft["first_nan_offset"],
            "predicted_offset": soft["predicted_offset"],
            "first_inf_gap": soft["first_inf_gap"],
            "predicted_inf_gap": soft["predicted_inf"],
            "base_max": soft["base_max"],
            "base_logsumexp": soft["base_logsumexp"],
            "offset_step": float(soft["offsets"][1] - soft["offsets"][0]),
        },
        "temperature": {
            "vectors": peaky,
            "probs": temp["probs"].tolist(),
            "entropy_at_1": temp["entropy_at_1"].tolist(),
            "scale_is_temperature": temp["scale_is_temperature"],
            "scales": list(cfg.peaky_scales),
            "sweep_first": temp["sweep"][0].tolist(),
            "sweep_last": temp["sweep"][-1].tolist(),
            "entropy_first": float(temp["entropy"][-1, 0]),
            "entropy_last": float(temp["entropy"][-1, -1]),
            "log_k": math.log(len(cfg.sweep_logits)),
            "t_star": temp["t_star"],
            "boltzmann": temp["boltzmann"].tolist(),
            "eps_greedy": temp["eps_greedy"].tolist(),
            "boltzmann_entropy": temp["boltzmann_entropy"],
            "eps_entropy": temp["eps_entropy"],
        },
        "dead": {
            "dead": dead["dead"],
            "compare": dead["compare"],
            "initial_loss": [float(traj[i, 0, 0]) for i in range(2)],
            "final_loss": [float(traj[i, -1, 0]) for i in range(2)],
            "max_grad": [float(traj[i, :, 4].max()) for i in range(2)],
            "relu_moved": bool(np.ptp(traj[0, :, 1]) > 0 or np.ptp(traj[0, :, 2]) > 0),
            "leaky_alive_step": int(alive[0]) if alive.size else None,
            "final_w": [float(traj[i, -1, 1]) for i in range(2)],
            "final_b": [float(traj[i, -1, 2]) for i in range(2)],
        },
        "heads": {
            "actions": list(parts.ACTIONS),
            "demo_states": demo,
            "q": rl["q"][[k - 1 for k in demo]].tolist(),
            "policy": rl["policy"][[k - 1 for k in demo]].tolist(),
            "v_pi": rl["v_pi"][[k - 1 for k in demo]].tolist(),
            "v_star": rl["q"].max(axis=1)[[k - 1 for k in demo]].tolist(),
            "policy_sum_error": float(np.max(np.abs(rl["policy"].sum(axis=1) - 1.0))),
            "policy_min": float(rl["policy"].min()),
            "q_min": float(rl["q"].min()),
            "q_max": float(rl["q"].max()),
            "v_pi_range": [float(rl["v_pi"].min()), float(rl["v_pi"].max())],
            "fits": rl["heads"],
        },
    }
    metrics = _metrics(checks, collapse, dead, fit, cfg)
    return Results(metrics=metrics, arrays=arrays, axes=axes, coords=coords, summary=summary)
