"""Worked solutions of the NumPy-from-scratch exercises, and the lesson's exercise list.

The coding solutions are tested against independent references (PyTorch, SciPy, a loop) in
``tests/test_numpy_basics.py``; the tutorial prints their source, so what it shows is what was
tested. The numbers in the warm-up answers come from :data:`SOFTMAX_123` and
:data:`DERIVATIVES_AT`, which the tests check against SciPy and autograd.
"""

from __future__ import annotations

import inspect
import math
import textwrap

import numpy as np

from actlab.experiments.numpy_basics import exercises as _stubs
from actlab.report.exercises import Exercise

__all__ = [
    "EXERCISES",
    "SOFTMAX_123",
    "DERIVATIVES_AT",
    "leaky_relu_and_grad",
    "log_softmax",
    "compose_affine",
    "dead_units",
    "softmax_rows",
    "temperature_for_entropy",
]


def leaky_relu_and_grad(x: np.ndarray, slope: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """LeakyReLU and its derivative (see the exercise)."""
    x = np.asarray(x, dtype=np.float64)
    positive = x > 0
    y = np.where(positive, x, slope * x)
    dy = np.where(positive, 1.0, slope)  # x = 0 takes the negative side, as PyTorch does
    return y, dy


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable log-softmax (see the exercise)."""
    x = np.asarray(x, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)  # every exponent <= 0: no overflow
    # log sum_j e^{x_j - m}: the sum is >= 1 (one term is e^0), so its log is finite
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def compose_affine(
    weights: list[np.ndarray], biases: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """One affine map equal to a stack of linear layers (see the exercise)."""
    d_in = weights[0].shape[1]
    W, b = np.eye(d_in), np.zeros(d_in)  # the empty stack: x -> x
    for W_l, b_l in zip(weights, biases, strict=True):
        # layer l applied to W x + b: W_l (W x + b) + b_l = (W_l W) x + (W_l b + b_l)
        W, b = W_l @ W, W_l @ b + b_l
    return W, b


def dead_units(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Units of a ReLU layer that are off on every example (see the exercise)."""
    z = x @ weight.T + bias  # (n, d_out) pre-activations
    return np.all(z <= 0, axis=0)


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise stable softmax: the fixed debug exercise."""
    # Bug 1: np.max(x) took the maximum of the whole array. Still a valid shift for every row,
    # but a row far below the global maximum then underflows to all zeros (and, once the sum
    # is taken per row, 0 / 0 = NaN).
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    # Bug 2: np.sum(e) summed over the whole array, so the rows did not sum to 1.
    return e / np.sum(e, axis=1, keepdims=True)


def temperature_for_entropy(logits: np.ndarray, target: float) -> float:
    """Bisection on log T for the entropy of softmax(logits / T) (see the exercise)."""
    logits = np.asarray(logits, dtype=np.float64)
    if np.ptp(logits) == 0.0 or not 0.0 < target < math.log(logits.size):
        # Equal logits: the entropy is log K at every T. Outside (0, log K): no T reaches it.
        raise ValueError(
            f"need distinct logits and a target in (0, log K) = (0, {math.log(logits.size):.6g})"
        )

    def entropy(t: float) -> float:
        logp = log_softmax(logits / t)
        return float(-np.sum(np.exp(logp) * logp))

    # Bracket in log T: the entropy is ~0 far below the logits' spread, ~log K far above it.
    spread = float(np.ptp(logits))
    lo, hi = math.log(spread * 1e-3), math.log(spread * 1e3)
    # Each widening is bounded: exp(lo) and exp(hi) stay finite and non-zero (|log T| < 700),
    # so a target too close to 0 or log K to be reached in float64 ends the loop, not the run.
    while entropy(math.exp(lo)) > target and lo > -700.0:
        lo -= 5.0
    while entropy(math.exp(hi)) < target and hi < 700.0:
        hi += 5.0
    for _ in range(200):  # halving a width < 1400 down to 1e-12 takes < 51 steps
        mid = 0.5 * (lo + hi)
        if hi - lo <= 1e-12 or mid in (lo, hi):  # relative precision of T ~ 1e-12
            break
        if entropy(math.exp(mid)) < target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


# --------------------------------------------------------------------------------------------
# The exercise list

SOFTMAX_123 = {
    "[1, 2, 3]": (0.090, 0.245, 0.665),
    "[10, 20, 30]": (2.1e-9, 4.5e-5, 0.99995),
}
"""softmax of the lesson's vectors, as the warm-up answer states them (rounded)."""

DERIVATIVES_AT = {
    r"\mathrm{ReLU}'(-3)": 0.0,
    r"\mathrm{ReLU}'(2)": 1.0,
    r"\mathrm{LeakyReLU}'(-3)": 0.01,
    r"\sigma'(0)": 0.25,
    r"\tanh'(0)": 1.0,
    r"\sigma'(10)": 4.54e-5,
}
"""The warm-up's derivatives (LaTeX -> value, rounded; LeakyReLU with slope 0.01)."""


def _tex(x: float) -> str:
    """``2.1 \\times 10^{-9}`` for tiny numbers, plain otherwise."""
    if x == 0 or abs(x) >= 1e-3:
        return f"{x:g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def _vector(values: tuple[float, ...]) -> str:
    """A probability vector as the warm-up writes it: three decimals where that is exact."""
    return "[" + ", ".join(f"{v:.3f}" if round(v, 3) == v else _tex(v) for v in values) + "]"


def _debug_prompt() -> str:
    code = textwrap.dedent(inspect.getsource(_stubs.softmax_rows)).rstrip()
    return (
        "This function is meant to return the softmax of every row of a matrix. It runs without "
        "an error, and on a single row it even looks right. Find the two bugs (try "
        "`softmax_rows(np.array([[1.0, 2.0], [1000.0, 1001.0]]))`).\n\n"
        f"```python\n{code}\n```"
    )


EXERCISES: list[Exercise] = [
    Exercise(
        "warm-up",
        "Softmax by hand",
        "Compute $\\mathrm{softmax}([1, 2, 3])$ to three decimals with a calculator, then guess "
        "$\\mathrm{softmax}([10, 20, 30])$ before computing it.",
        "$e^1, e^2, e^3 = 2.718, 7.389, 20.09$, sum $30.19$, so "
        f"$\\mathrm{{softmax}}([1, 2, 3]) = {_vector(SOFTMAX_123['[1, 2, 3]'])}$. Multiplying "
        "the logits by 10 multiplies their differences by 10: the gaps become $e^{-10}$ and "
        f"$e^{{-20}}$, giving ${_vector(SOFTMAX_123['[10, 20, 30]'])}$: almost one-hot. (The "
        "same as $[1, 2, 3]$ at temperature $T = 0.1$.)",
    ),
    Exercise(
        "warm-up",
        "Derivatives at a glance",
        "Without a computer: "
        + ", ".join(f"${k}$" for k in DERIVATIVES_AT)
        + " (LeakyReLU with slope 0.01; at a kink, PyTorch's convention: the left side).",
        ", ".join(f"${k} = {_tex(v)}$" for k, v in DERIVATIVES_AT.items())
        + ". ReLU passes a gradient only where its input is positive; "
        r"$\sigma' = \sigma(1 - \sigma)$ is at most $1/4$ (at 0) and tiny in the tails, "
        r"$\tanh' = 1 - \tanh^2$ is 1 at 0.",
    ),
    Exercise(
        "coding",
        "LeakyReLU and its gradient",
        "Write LeakyReLU and its derivative in NumPy, returning both.",
        "`np.where` picks per element; the derivative at exactly 0 takes the negative side, as "
        "PyTorch's autograd does.",
        function="numpy_basics:leaky_relu_and_grad",
    ),
    Exercise(
        "coding",
        "Stable log-softmax",
        "Write `log_softmax` so that it stays finite for any finite logits, e.g. "
        "$[1000, 1001, 1002]$ and $[0, -1000]$.",
        "Subtract the maximum $m$, then use "
        r"$\log \mathrm{softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m}$: the exponents "
        "are $\\le 0$ and the sum is at least 1, so neither the exponential nor the logarithm "
        "can blow up.",
        function="numpy_basics:log_softmax",
    ),
    Exercise(
        "coding",
        "Collapse a linear stack",
        "Given the weights and biases of a stack of linear layers, return the one $(W, b)$ that "
        "computes the same function.",
        "Feed the affine map through the layers one at a time: "
        r"$W_l(Wx + b) + b_l = (W_l W)x + (W_l b + b_l)$.",
        function="numpy_basics:compose_affine",
    ),
    Exercise(
        "coding",
        "Find the dead units",
        "Given a batch and a ReLU layer's weights, return which units are dead on the batch.",
        "A unit is dead when its pre-activation is $\\le 0$ on every example: then its output "
        "and its gradient are 0 for the whole batch.",
        function="numpy_basics:dead_units",
    ),
    Exercise(
        "debug",
        "A softmax that is almost right",
        _debug_prompt(),
        "Both reductions must run along the row (`axis=1, keepdims=True`): the maximum, so that "
        "every row keeps its own largest term at $e^0 = 1$, and the sum, so that every row sums "
        "to 1.",
        function="numpy_basics:softmax_rows",
    ),
    Exercise(
        "conceptual",
        "The maximum, not the mean",
        "Softmax is unchanged by subtracting any constant from all logits. Why subtract the "
        "maximum rather than, say, the mean?",
        "After subtracting the maximum every exponent is $\\le 0$ (no overflow) and one of them "
        "is exactly 0, so the sum is at least 1 (no division by 0). The mean guarantees "
        "neither: for $[0, 2000]$ the mean is 1000 and $e^{1000}$ still overflows.",
    ),
    Exercise(
        "conceptual",
        "Heads of an RL network",
        "A DQN predicts Q-values that can reach 50. Someone puts tanh on the output 'to keep "
        "things stable'. What happens, and which outputs of an RL network may be bounded?",
        "tanh outputs lie in $(-1, 1)$, so no Q-value above 1 can be predicted: the error "
        "cannot fall below the mean squared distance of the targets to $[-1, 1]$, and the "
        "output saturates where the gradient of tanh is almost 0. Q-values and state values "
        "are real numbers of any size, so the usual head is linear; a bounded head needs the "
        "targets transformed into its range first (rescaled or squashed, then mapped back), "
        "and a distributional head (softmax over a fixed grid of returns) is another option. "
        "A policy over discrete actions is a distribution: softmax over logits that are "
        "trained for the policy, not Q-values. A bounded output fits a bounded quantity, such "
        "as a continuous action in $[-1, 1]$.",
    ),
    Exercise(
        "challenge",
        "Temperature for a target entropy",
        "Find the temperature at which $\\mathrm{softmax}(x / T)$ has a given entropy (for "
        "example, an exploration schedule that asks for 0.5 nats).",
        "The entropy increases monotonically with $T$, so bisection works; it is best done on "
        "$\\log T$, since the interesting temperatures span orders of magnitude. Bracket first, "
        "widening until the target lies between the two ends.",
        function="numpy_basics:temperature_for_entropy",
    ),
]
"""The lesson's exercises, in the order the report lists them."""
