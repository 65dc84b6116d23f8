"""The measurements of the NumPy-from-scratch lesson, one function per part.

Each is a pure function of the lesson's :class:`~actlab.experiments.numpy_basics.Config` (only the
Q-value fit goes through the chunk runner); :func:`actlab.experiments.numpy_basics.run` assembles
their outputs into :class:`~actlab.experiments.base.Results`. What each part measures is
described in :mod:`actlab.experiments.numpy_basics`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import optimize, special

from actlab import numpy_ref as ref
from actlab import progress
from actlab.activations import get_activation
from actlab.experiments.base import ChunkRunner
from actlab.experiments.numpy_basics.config import Config
from actlab.models import EnsembleMLP
from actlab.seeding import derive_seed
from actlab.stats import mean_ci, paired_differs

__all__ = [
    "EDGE_VALUES",
    "SOFTMAX_EDGE_ROWS",
    "ACTIONS",
    "CHECK_FUNCTIONS",
    "check_formulas",
    "formula_curves",
    "compose_affine",
    "forward_stack",
    "linear_collapse",
    "softmax_stability",
    "boltzmann_matching_temperature",
    "temperature_study",
    "dead_unit_descent",
    "dead_relu",
    "chain_q_values",
    "policy_values",
    "head_range",
    "fit_heads",
    "rl_heads",
    "compare",
    "mismatches",
    "label",
    "vec",
]

EDGE_VALUES = (-math.inf, -1000.0, -710.0, -100.0, -1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0,
               100.0, 710.0, 1000.0, math.inf, math.nan)  # fmt: skip
"""Element-wise edge inputs: infinities, NaN, the float64 overflow point of ``exp`` (709.78)
on both sides, signed zeros and a number that is 0 in float32."""

SOFTMAX_EDGE_ROWS = (
    (1000.0, 1001.0, 1002.0),
    (-1000.0, 0.0, 1000.0),
    (-math.inf, 0.0, 1.0),
    (0.0, 0.0, 0.0),
    (-1e30, 0.0, 1e30),
    (math.inf, 0.0, 1.0),
    (-math.inf, -math.inf, -math.inf),
    (math.nan, 0.0, 1.0),
)
"""Edge rows for softmax and log-softmax (each row is one distribution)."""

ACTIONS = ("continue", "wait", "stop")
"""Actions of the chain MDP (see :func:`chain_q_values`)."""

CHECK_FUNCTIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax")
TEXTBOOK = ("sigmoid", "tanh", "softmax")


# --------------------------------------------------------------------------------------------
# 1. Formulas against libraries


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """``(max |a - b|`` over entries finite in both, number of entries where the non-finite
    values disagree)``: NaN matches NaN and an infinity matches the same infinity."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(b)
    same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    diff = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
    return diff, int(np.sum(~finite & ~same))


def _err_in_eps(a: np.ndarray, b: np.ndarray, eps: float) -> float:
    """``max |a - b| / (eps max(|b|, 1))`` over entries finite in both: the error in units of
    the dtype's epsilon, relative for values above 1 and absolute below."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(b)
    err = np.abs(a[finite] - b[finite]) / (eps * np.maximum(np.abs(b[finite]), 1.0))
    return float(np.max(err, initial=0.0))


def _rel_err(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[float, str]:
    """Largest ``|a - b| / |b|`` over entries finite in both with ``b != 0``, and the input
    (element or row, as text) where it occurs."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
    if not ok.any():
        return 0.0, ""
    rel = np.zeros_like(b)
    rel[ok] = np.abs(a[ok] - b[ok]) / np.abs(b[ok])
    i = np.unravel_index(np.argmax(rel), rel.shape)
    return float(rel[i]), vec(x[i[0]] if x.ndim == 2 else x[i])


def _quiet(fn: Callable[..., np.ndarray], *args: Any) -> tuple[np.ndarray, list[str]]:
    """``fn(*args)`` and the floating-point warnings it raised (messages, deduplicated)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, sorted({str(w.message) for w in caught if w.category is RuntimeWarning})


def _implementations(slope: float) -> dict[str, dict[str, Callable | None]]:
    """Per function: the NumPy formula, the textbook formula, PyTorch and SciPy (None: none)."""
    t = torch.from_numpy
    return {
        "relu": {"numpy": ref.relu, "torch": lambda x: torch.relu(t(x)).numpy()},
        "leaky_relu": {
            "numpy": lambda x: ref.leaky_relu(x, slope),
            "torch": lambda x: F.leaky_relu(t(x), slope).numpy(),
        },
        "sigmoid": {
            "numpy": ref.sigmoid,
            "textbook": ref.sigmoid_naive,
            "torch": lambda x: torch.sigmoid(t(x)).numpy(),
            "scipy": special.expit,
        },
        "tanh": {
            "numpy": ref.tanh,
            "textbook": ref.tanh_naive,
            "torch": lambda x: torch.tanh(t(x)).numpy(),
        },
        "softmax": {
            "numpy": ref.softmax,
            "textbook": ref.softmax_naive,
            "torch": lambda x: torch.softmax(t(x), dim=-1).numpy(),
            "scipy": lambda x: special.softmax(x, axis=-1),
        },
        "log_softmax": {
            "numpy": ref.log_softmax,
            "torch": lambda x: torch.log_softmax(t(x), dim=-1).numpy(),
            "scipy": lambda x: special.log_softmax(x, axis=-1),
        },
    }


def check_formulas(cfg: Config) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Every (function, implementation, reference, inputs, dtype) comparison, and the warnings
    each textbook formula raised on the edge values."""
    rng = np.random.default_rng(derive_seed(cfg.seed, "numpy-basics", "random"))
    x = rng.normal(0.0, cfg.random_scale, cfg.n_random)
    rows = x[: cfg.n_random // 10 * 10].reshape(-1, 10)  # softmax rows of 10 logits
    inputs = {
        "random": (x, rows),
        "edge": (np.array(EDGE_VALUES), np.array(SOFTMAX_EDGE_ROWS)),
    }
    pairs = (("numpy", "torch"), ("textbook", "torch"), ("numpy", "scipy"))
    checks, textbook_warnings = [], {}
    for name, impl in _implementations(cfg.leaky_slope).items():
        for kind, (elementwise, matrix) in inputs.items():
            for dtype in ("float64", "float32"):
                data = (matrix if "softmax" in name else elementwise).astype(dtype)
                eps = float(np.finfo(dtype).eps)
                for ours, reference in pairs:
                    if ours not in impl or reference not in impl:
                        continue
                    expected = _quiet(impl[reference], data)[0]
                    got, caught = _quiet(impl[ours], data)
                    if ours == "textbook" and kind == "edge":
                        textbook_warnings[f"{name}/{dtype}"] = caught
                    diff, mismatches = compare(got, expected)
                    rel, rel_at = _rel_err(got, expected, data)
                    checks.append(
                        {
                            "function": name,
                            "implementation": ours,
                            "reference": reference,
                            "inputs": kind,
                            "dtype": dtype,
                            "max_abs_diff": diff,
                            "max_err_eps": _err_in_eps(got, expected, eps),
                            "nonfinite_mismatches": mismatches,
                            "max_rel_diff": rel,
                            "max_rel_at": rel_at,
                            "n": int(data.size),
                            "dtype_kept": bool(got.dtype == data.dtype),
                        }
                    )
    return checks, textbook_warnings


def formula_curves(cfg: Config) -> dict[str, np.ndarray]:
    """phi and phi' of the four element-wise functions on a grid, NumPy and PyTorch."""
    z = np.linspace(-5.0, 5.0, cfg.n_grid)
    names = CHECK_FUNCTIONS[:4]
    impl = _implementations(cfg.leaky_slope)
    curves = np.empty((len(names), 2, 2, z.size))  # (function, quantity, source, z)
    grads = {
        "relu": ref.relu_grad(z),
        "leaky_relu": ref.leaky_relu_grad(z, cfg.leaky_slope),
        "sigmoid": ref.sigmoid(z) * (1 - ref.sigmoid(z)),
        "tanh": 1 - ref.tanh(z) ** 2,
    }
    for i, name in enumerate(names):
        curves[i, 0, 0] = impl[name]["numpy"](z)
        curves[i, 0, 1] = impl[name]["torch"](z)
        curves[i, 1, 0] = grads[name]
        t = torch.tensor(z, requires_grad=True)
        fn = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}.get(
            name, lambda v: F.leaky_relu(v, cfg.leaky_slope)
        )
        fn(t).sum().backward()
        curves[i, 1, 1] = t.grad.numpy()
    return {"z": z, "curves": curves}


# --------------------------------------------------------------------------------------------
# 2. Linear collapse


def compose_affine(
    weights: list[np.ndarray], biases: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The one affine map ``x -> W x + b`` equal to the stack ``h_l = W_l h_{l-1} + b_l``.

    Args:
        weights: ``W_l`` of shape ``(d_l, d_{l-1})``, input side first.
        biases: ``b_l`` of shape ``(d_l,)``.

    Returns:
        ``W = W_L ... W_1`` ``(d_L, d_0)`` and ``b`` ``(d_L,)``, built by feeding the bias
        through the layers: ``b <- W_l b + b_l``.
    """
    W, b = np.eye(weights[0].shape[1]), np.zeros(weights[0].shape[1])
    for Wl, bl in zip(weights, biases, strict=True):
        W, b = Wl @ W, Wl @ b + bl
    return W, b


def forward_stack(
    x: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray], act: Callable
) -> np.ndarray:
    """The stack on inputs ``x`` ``(n, d_0)``: ``act`` after every layer but the last."""
    h = x
    for i, (W, b) in enumerate(zip(weights, biases, strict=True)):
        h = h @ W.T + b
        if i < len(weights) - 1:
            h = act(h)
    return h


def linear_collapse(cfg: Config) -> dict[str, Any]:
    """The stack with identity and with each activation between the layers, against the
    composed affine map and against the best affine fit."""
    rng = np.random.default_rng(derive_seed(cfg.seed, "numpy-basics", "collapse"))
    widths = cfg.collapse_widths
    weights = [
        rng.normal(0.0, math.sqrt(2.0 / a), (b, a))
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    biases = [rng.normal(0.0, 0.5, b) for b in widths[1:]]
    W, b = compose_affine(weights, biases)
    x = rng.normal(0.0, 1.0, (cfg.collapse_points, widths[0]))
    direction = rng.normal(0.0, 1.0, widths[0])
    t = np.linspace(-3.0, 3.0, cfg.n_grid)
    line = t[:, None] * (direction / np.linalg.norm(direction))
    design = np.hstack([x, np.ones((len(x), 1))])
    names = ["identity", *cfg.collapse_activations]
    rows, curves = [], np.empty((len(names), 2, t.size))  # (stack, [network, affine fit], t)
    for i, name in enumerate(names):
        fn = get_activation(name).fn

        def act(h, fn=fn):
            return fn(torch.from_numpy(h)).numpy()

        y = forward_stack(x, weights, biases, act)
        beta, *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = np.linalg.norm(y - design @ beta) / np.linalg.norm(y - y.mean(axis=0))
        rows.append(
            {
                "activation": name,
                "max_abs_diff_composed": float(np.max(np.abs(y - (x @ W.T + b)))),
                "affine_fit_residual": float(resid),
                "output_scale": float(np.std(y)),
            }
        )
        curves[i, 0] = forward_stack(line, weights, biases, act)[:, 0]
        curves[i, 1] = (np.hstack([line, np.ones((t.size, 1))]) @ beta)[:, 0]
    sv = np.linalg.svd(W, compute_uv=False)
    return {
        "rows": rows,
        "rank": int(np.linalg.matrix_rank(W)),
        "layer_ranks": [int(np.linalg.matrix_rank(w)) for w in weights],
        "shape": list(W.shape),
        "singular_values": sv,
        "rank_tolerance": float(sv.max() * max(W.shape) * np.finfo(np.float64).eps),
        "t": t,
        "curves": curves,
        "names": names,
    }


# --------------------------------------------------------------------------------------------
# 3. Stable softmax


def softmax_stability(cfg: Config) -> dict[str, Any]:
    """Naive vs stable softmax and log-softmax on the lesson's logits, and the offsets at which
    the naive one overflows in float64 and float32."""
    big = np.array(cfg.big_logits)
    naive, naive_warn = _quiet(lambda: ref.softmax_naive(big))
    log_naive, log_naive_warn = _quiet(lambda: np.log(ref.softmax_naive(big)))
    gap = np.array(cfg.gap_logits)
    gap_log, gap_warn = _quiet(lambda: np.log(ref.softmax(gap)))
    out: dict[str, Any] = {
        "big": {
            "naive": naive,
            "stable": ref.softmax(big),
            "scipy": special.softmax(big),
            "torch": torch.softmax(torch.from_numpy(big), 0).numpy(),
            "log_naive": log_naive,
            "log_stable": ref.log_softmax(big),
            "log_scipy": special.log_softmax(big),
            "exp_max": _quiet(lambda: np.exp(big.max()))[0],
        },
        "gap": {
            "softmax": ref.softmax(gap),
            "log_of_softmax": gap_log,
            "log_softmax": ref.log_softmax(gap),
            "torch": torch.log_softmax(torch.from_numpy(gap), 0).numpy(),
        },
        "warnings": {"naive": naive_warn, "log_naive": log_naive_warn, "gap": gap_warn},
    }
    # Sweep: logits (big - min big) + c; the largest probability, naive and stable, in both
    # precisions. The naive one goes wrong *before* a single e^x overflows: the sum overflows
    # first (probabilities finite / inf = 0), then e^{max x} itself (inf / inf = NaN).
    base = big - big.min()
    offsets = np.linspace(0.0, cfg.offset_max, cfg.n_grid)
    sweep = np.empty((4, offsets.size))  # (naive64, stable64, naive32, stable32)
    first_wrong, first_nan, predicted = {}, {}, {}
    for j, dtype in enumerate((np.float64, np.float32)):
        name = np.dtype(dtype).name
        x = (base[None, :] + offsets[:, None]).astype(dtype)
        p_naive, p_stable = _quiet(ref.softmax_naive, x, 1)[0], ref.softmax(x, axis=1)
        sweep[2 * j] = p_naive[:, np.argmax(base)]
        sweep[2 * j + 1] = p_stable[:, np.argmax(base)]
        close = np.isclose(p_naive, p_stable, rtol=1e-4, atol=0.0)
        first_wrong[name] = _first(offsets, ~close.all(axis=1))
        first_nan[name] = _first(offsets, np.isnan(p_naive).any(axis=1))
        limit = math.log(float(np.finfo(dtype).max))
        out[f"exp_limit_{name}"] = limit
        predicted[name] = {
            "sum": limit - float(special.logsumexp(base)),
            "max": limit - float(base.max()),
        }
    out.update(offsets=offsets, sweep=sweep, first_wrong_offset=first_wrong)
    out.update(first_nan_offset=first_nan, predicted_offset=predicted)
    out["base_max"], out["base_logsumexp"] = float(base.max()), float(special.logsumexp(base))
    # Underflow sweep: log p of the smaller entry of [0, -g]: log(softmax) vs log_softmax; once
    # p rounds to 0, log p = -inf.
    gaps = np.linspace(0.0, cfg.offset_max, cfg.n_grid)
    under = np.empty((3, gaps.size))  # (log of softmax f64, f32, log_softmax f64)
    first_inf, predicted_inf = {}, {}
    for j, dtype in enumerate((np.float64, np.float32)):
        name = np.dtype(dtype).name
        x = np.stack([np.zeros_like(gaps), -gaps], axis=1).astype(dtype)
        under[j] = _quiet(lambda x=x: np.log(ref.softmax(x, axis=1))[:, 1])[0]
        first_inf[name] = _first(gaps, np.isinf(under[j]))
        # p ~ e^{-g} rounds to 0 below half the smallest subnormal number
        predicted_inf[name] = -float(np.log(np.finfo(dtype).smallest_subnormal)) + math.log(2)
    under[2] = ref.log_softmax(np.stack([np.zeros_like(gaps), -gaps], axis=1), axis=1)[:, 1]
    out.update(gaps=gaps, underflow=under, first_inf_gap=first_inf, predicted_inf=predicted_inf)
    return out


# --------------------------------------------------------------------------------------------
# 4. Temperature and Boltzmann exploration


def _first(grid: np.ndarray, mask: np.ndarray) -> float | None:
    """The first grid value where ``mask`` holds (None if nowhere)."""
    return float(grid[np.argmax(mask)]) if mask.any() else None


def boltzmann_matching_temperature(q: np.ndarray, epsilon: float) -> float:
    """The temperature ``T`` at which the Boltzmann policy ``softmax(q / T)`` picks the greedy
    action as often as epsilon-greedy does, ``1 - epsilon + epsilon / K`` (root of a monotone
    function of ``log T``, found by Brent's method)."""
    q = np.asarray(q, dtype=np.float64)
    target, greedy = 1.0 - epsilon + epsilon / q.size, int(np.argmax(q))
    spread = float(np.ptp(q))

    def excess(log_t: float) -> float:
        return float(ref.softmax(q, temperature=math.exp(log_t))[greedy]) - target

    lo, hi = math.log(spread * 1e-6), math.log(spread * 1e6)
    return math.exp(optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14))


def temperature_study(cfg: Config) -> dict[str, Any]:
    """The lesson's three vectors at T = 1, and one logit vector over the temperature range."""
    base = np.array(cfg.peaky_base)
    vectors = np.array([s * base for s in cfg.peaky_scales])  # (vector, action)
    probs = ref.softmax(vectors, axis=1)
    as_temperature = np.array([ref.softmax(base, temperature=1.0 / s) for s in cfg.peaky_scales])
    temps = np.logspace(math.log10(cfg.t_min), math.log10(cfg.t_max), cfg.n_temperatures)
    q = np.array(cfg.sweep_logits)
    sweep = np.stack([ref.softmax(q, temperature=t) for t in temps])  # (temperature, action)
    entropy = np.array(
        [[ref.softmax_entropy(v, temperature=t) for t in temps] for v in [*vectors, q]]
    )  # (vector, temperature)
    t_star = boltzmann_matching_temperature(q, cfg.epsilon)
    boltzmann = ref.softmax(q, temperature=t_star)
    eps_greedy = np.full(q.size, cfg.epsilon / q.size)
    eps_greedy[np.argmax(q)] += 1.0 - cfg.epsilon
    with np.errstate(divide="ignore"):
        eps_entropy = float(-np.sum(eps_greedy * np.log(eps_greedy)))
    return {
        "vectors": vectors,
        "probs": probs,
        "entropy_at_1": ref.softmax_entropy(vectors, axis=1),
        "scale_is_temperature": float(np.max(np.abs(probs - as_temperature))),
        "temperatures": temps,
        "sweep": sweep,
        "entropy": entropy,
        "t_star": t_star,
        "boltzmann": boltzmann,
        "eps_greedy": eps_greedy,
        "boltzmann_entropy": float(ref.softmax_entropy(q, temperature=t_star)),
        "eps_entropy": eps_entropy,
    }


# --------------------------------------------------------------------------------------------
# 5. Dead ReLU


def _autograd(fn: Callable, x: np.ndarray) -> np.ndarray:
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    fn(t).sum().backward()
    return t.grad.numpy()


def dead_unit_descent(x: np.ndarray, slope: float | None, steps: int, lr: float) -> np.ndarray:
    """Gradient descent on one unit ``y = phi(w x + b)`` from ``w = 1, b = 0``, targets ``-x``
    (reachable with ``w = -1``), MSE; ``phi`` is ReLU (``slope=None``) or LeakyReLU.

    Returns ``(steps + 1, 5)``: loss, w, b, fraction of inputs with ``z > 0`` and ``|grad|``
    before each step (the gradient by hand: ``dL/dz_i = 2 (y_i - t_i) phi'(z_i) / n``).
    """
    w, b, target = 1.0, 0.0, -x
    out = np.empty((steps + 1, 5))
    for step in range(steps + 1):
        z = w * x + b
        if slope is None:
            y, dphi = ref.relu(z), ref.relu_grad(z)
        else:
            y, dphi = ref.leaky_relu(z, slope), ref.leaky_relu_grad(z, slope)
        dz = 2.0 * (y - target) * dphi / x.size
        gw, gb = float(dz @ x), float(dz.sum())
        out[step] = (np.mean((y - target) ** 2), w, b, np.mean(z > 0), math.hypot(gw, gb))
        w, b = w - lr * gw, b - lr * gb
    return out


def dead_relu(cfg: Config) -> dict[str, Any]:
    """ReLU and LeakyReLU outputs and gradients (NumPy formulas and autograd) on the lesson's
    inputs, curves for the figure, and gradient descent on a unit that is dead on every input."""
    s = cfg.leaky_slope

    def table(x: np.ndarray) -> dict[str, list[float]]:
        return {
            "x": x.tolist(),
            "relu": ref.relu(x).tolist(),
            "relu_grad": ref.relu_grad(x).tolist(),
            "relu_grad_autograd": _autograd(torch.relu, x).tolist(),
            "leaky": ref.leaky_relu(x, s).tolist(),
            "leaky_grad": ref.leaky_relu_grad(x, s).tolist(),
            "leaky_grad_autograd": _autograd(lambda t: F.leaky_relu(t, s), x).tolist(),
        }

    z = np.linspace(-5.0, 5.0, cfg.n_grid)
    curves = np.stack(
        [
            [ref.relu(z), ref.relu_grad(z)],
            [ref.leaky_relu(z, s), ref.leaky_relu_grad(z, s)],
        ]
    )  # (activation, quantity, z)
    x = np.array(cfg.dead_inputs)
    traj = np.stack(
        [dead_unit_descent(x, slope, cfg.dead_steps, cfg.dead_lr) for slope in (None, s)]
    )  # (activation, step, quantity)
    return {
        "dead": table(x),
        "compare": table(np.array(cfg.compare_inputs)),
        "z": z,
        "curves": curves,
        "trajectory": traj,
    }


# --------------------------------------------------------------------------------------------
# 6. Output heads in RL


def chain_q_values(n_states: int, gamma: float, stop_reward: float) -> np.ndarray:
    """Optimal Q-values ``(n_states, 3)`` of the chain MDP, actions as in :data:`ACTIONS`.

    In state ``k`` (``k = 1..n_states`` rewards of 1 left) the agent may *continue* (reward 1,
    to ``k - 1``; ``k = 0`` ends the episode), *wait* (reward 0, stays) or *stop* (reward
    ``stop_reward``, ends). Bellman: ``Q(k, continue) = 1 + gamma V(k - 1)``,
    ``Q(k, wait) = gamma V(k)``, ``Q(k, stop) = stop_reward``, ``V(k) = max_a Q(k, a)``, which is
    ``max(Q(k, continue), stop_reward)`` since ``Q(k, continue) >= 1 > 0 = `` the value of waiting
    forever, with ``V(0) = 0``.
    """
    q = np.empty((n_states, 3))
    v_prev = 0.0
    for k in range(n_states):
        cont = 1.0 + gamma * v_prev
        v = max(cont, stop_reward)
        q[k] = (cont, gamma * v, stop_reward)
        v_prev = v
    return q


def policy_values(policy: np.ndarray, gamma: float, stop_reward: float) -> np.ndarray:
    """State values ``V^pi(k)`` ``(n_states,)`` of a stochastic policy ``(n_states, 3)`` on the
    chain: ``V(k) = pi_c (1 + gamma V(k - 1)) + pi_w gamma V(k) + pi_s stop_reward``, solved for
    ``V(k)`` state by state from ``V(0) = 0``."""
    v, v_prev = np.empty(len(policy)), 0.0
    for k, (pc, pw, ps) in enumerate(policy):
        v[k] = (pc * (1.0 + gamma * v_prev) + ps * stop_reward) / (1.0 - gamma * pw)
        v_prev = v[k]
    return v


def head_range(name: str) -> tuple[float, float]:
    """The range of an output activation: ``(-inf, inf)`` when the registry says unbounded,
    else its min and max over ``[-1000, 1000]`` (float64, where tanh and sigmoid reach their
    limits to the last bit)."""
    act = get_activation(name)
    if not act.bounded:
        return -math.inf, math.inf
    y = act.fn(torch.linspace(-1000.0, 1000.0, 400_001, dtype=torch.float64))
    return float(y.min()), float(y.max())


def fit_heads(cfg: Config) -> dict[str, np.ndarray]:
    """Fit the chain's Q-values with every head of ``cfg.q_heads`` and every seed, full batch.

    The network is ``1 -> hidden -> 3`` (input ``k / n_states``), hidden activation
    ``cfg.torso``; the head's activation is applied to the 3 outputs. Members are ordered
    (head, seed); seed s has the same initial weights for every head.

    Returns:
        ``loss`` ``(head, seed, step)`` (MSE before each step and after the last),
        ``pred`` ``(head, seed, state, action)`` after training, ``targets`` ``(state, action)``.
    """
    q = chain_q_values(cfg.n_states, cfg.gamma, cfg.stop_reward)
    x = (torch.arange(1, cfg.n_states + 1, dtype=torch.float32) / cfg.n_states)[:, None]
    y = torch.tensor(q, dtype=torch.float32)
    n_heads, S = len(cfg.q_heads), cfg.seeds
    seeds = [derive_seed(cfg.seed, "numpy-basics", "q-fit", s) for s in range(S)] * n_heads
    model = EnsembleMLP(1, [cfg.hidden], 3, cfg.torso, seeds)
    heads = [get_activation(h).fn for h in cfg.q_heads]

    def predict() -> torch.Tensor:  # (E, n_states, 3)
        out = model(x)
        return torch.cat([fn(out[i * S : (i + 1) * S]) for i, fn in enumerate(heads)])

    opt = torch.optim.Adam([model.flat], lr=cfg.fit_lr)
    loss = torch.empty(cfg.fit_steps + 1, model.E)
    for step in range(cfg.fit_steps + 1):
        per_member = (predict() - y).square().mean(dim=(1, 2))
        loss[step] = per_member.detach()
        if step == cfg.fit_steps:
            break
        opt.zero_grad()
        per_member.sum().backward()  # each member's gradient is that of its own loss
        opt.step()
        progress.advance()
    with torch.no_grad():
        pred = predict()
        pre = model(x)  # the head's input (its pre-activation), for its slope at the end
    return {
        "loss": loss.T.reshape(n_heads, S, -1).numpy().astype(np.float64),
        "pred": pred.reshape(n_heads, S, cfg.n_states, 3).numpy().astype(np.float64),
        "pre": pre.reshape(n_heads, S, cfg.n_states, 3).numpy().astype(np.float64),
        "targets": q,
    }


def inside_targets(
    name: str, q: np.ndarray, pred: np.ndarray, pre: np.ndarray | None
) -> dict[str, Any]:
    """What a head does with the targets strictly inside its range, the only ones it could fit.

    ``q`` ``(state, action)``; ``pred`` and ``pre`` ``(seed, state, action)``: the head's output
    and its input. Returns ``inside`` (how many targets lie inside), ``n_targets``, and for the
    one the head misses most (its prediction averaged over seeds): ``inside_target``,
    ``inside_pred``, ``inside_miss`` (absolute), ``inside_slope`` (the head's derivative there,
    mean over seeds: how much gradient still reaches it), ``inside_state`` (1-based) and
    ``inside_action``; and ``inside_excess``, the part of the mean MSE above the floor that the
    inside targets make (mean over seeds of their squared errors summed, over ``q.size``).
    """
    lo, hi = head_range(name)
    mask = (q > lo) & (q < hi)
    out: dict[str, Any] = {"inside": int(mask.sum()), "n_targets": int(q.size)}
    if not mask.any() or not (math.isfinite(lo) or math.isfinite(hi)):
        return out
    mean_pred = pred.mean(axis=0)
    miss = np.where(mask, np.abs(mean_pred - q), -1.0)
    k, a = np.unravel_index(int(np.argmax(miss)), q.shape)
    sq = np.where(mask, (pred - q) ** 2, 0.0).sum(axis=(1, 2)) / q.size  # (seed,)
    out.update(
        {
            "inside_target": float(q[k, a]),
            "inside_pred": float(mean_pred[k, a]),
            "inside_miss": float(miss[k, a]),
            "inside_state": int(k) + 1,
            "inside_action": ACTIONS[a],
            "inside_excess": float(sq.mean()),
        }
    )
    if pre is not None:
        z = torch.as_tensor(pre[:, k, a], dtype=torch.float64)
        out["inside_slope"] = float(get_activation(name).deriv(z).mean())
    # In the tutorial's saturated band there (glossary: |tanh| > 0.99, sigmoid outside
    # [0.01, 0.99]); None for a head the glossary gives no band.
    y = float(mean_pred[k, a])
    band = {"tanh": abs(y) > 0.99, "sigmoid": not 0.01 <= y <= 0.99}
    out["inside_saturated"] = band.get(get_activation(name).name)
    return out


def rl_heads(cfg: Config, chunks: ChunkRunner) -> dict[str, Any]:
    """The three heads on the chain (exact) and the Q-value fit per output activation."""
    q = chain_q_values(cfg.n_states, cfg.gamma, cfg.stop_reward)
    policy = ref.softmax(q, axis=1, temperature=cfg.policy_temperature)
    v_pi = policy_values(policy, cfg.gamma, cfg.stop_reward)
    fit = chunks("q-fit", lambda: fit_heads(cfg), work=cfg.fit_steps)
    heads = []
    for i, name in enumerate(cfg.q_heads):
        lo, hi = head_range(name)
        floor = float(np.mean(np.maximum(np.maximum(lo - q, q - hi), 0.0) ** 2))
        final = fit["loss"][i, :, -1]
        pre = fit["pre"][i] if "pre" in fit else None  # absent from chunks of older runs
        inside = inside_targets(name, q, fit["pred"][i], pre)
        heads.append(
            {
                "head": name,
                "range": [lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None],
                "bounded": bool(math.isfinite(lo) or math.isfinite(hi)),
                "floor": floor,
                "final_mse": mean_ci(final, bounds=(0.0, math.inf)),  # an MSE is >= 0
                "final_mse_values": final.tolist(),
                "initial_mse": mean_ci(fit["loss"][i, :, 0]),
                "max_output": float(fit["pred"][i].max()),
                "min_output": float(fit["pred"][i].min()),
                # paired over seeds: a seed starts every head from the same weights
                "differs_from_linear": paired_differs(final, fit["loss"][0, :, -1]) if i else False,
                "above_floor": bool(np.all(final >= floor)),
                **inside,
            }
        )
    return {"q": q, "policy": policy, "v_pi": v_pi, "fit": fit, "heads": heads}


# --------------------------------------------------------------------------------------------
# Text for values JSON cannot hold


def label(v: float) -> str:
    """An edge value as text (JSON has no inf or NaN): ``-inf``, ``nan``, ``-0``, ``1e-300``."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0.0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    return f"{v:g}"


def vec(values: Any) -> str:
    """Numbers as text, ``inf`` and ``nan`` included: ``[0.09, nan, -inf]``."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    text = [label(float(v)) if not np.isfinite(v) or v == 0 else f"{v:.4g}" for v in values]
    return "[" + ", ".join(text) + "]" if values.size > 1 else text[0]


def mismatches(cfg: Config, check: dict[str, Any]) -> list[dict[str, str]]:
    """Where a check's non-finite values disagree (edge inputs only): the input, our output and
    the reference's, as text."""
    impl = _implementations(cfg.leaky_slope)[check["function"]]
    vector = "softmax" in check["function"]
    data = np.array(SOFTMAX_EDGE_ROWS if vector else EDGE_VALUES).astype(check["dtype"])
    got = _quiet(lambda: impl[check["implementation"]](data))[0]
    expected = _quiet(lambda: impl[check["reference"]](data))[0]
    return [
        {"at": vec(data[i]), "ours": vec(got[i]), "reference": vec(expected[i])}
        for i in range(len(data))
        if compare(got[i], expected[i])[1]
    ]
