"""From-scratch NumPy activations: the formulas, written out, for teaching and as references.

Every function here is built from NumPy primitives (``exp``, ``expm1``, ``log1p``, ``maximum``,
...) and :func:`math.erfc`, never from torch or SciPy, so the tests can compare PyTorch against an
independent implementation. Each takes an array ``x`` of any shape (float32 stays float32,
anything else becomes float64) and returns an array of the same shape. NaN in gives NaN out.
At ``+-inf`` a function returns what its formula gives in IEEE arithmetic (NumPy's ``exp``,
``tanh``, ... follow C99 there: ``exp(-inf) = 0``, ``tanh(inf) = 1``), the same on every CPU: the
limit, or NaN where the formula is indeterminate (``-inf * 0`` of GELU/SiLU/Mish/Hardswish at
``-inf``, ``inf / inf`` of softsign), without a warning for those cases. Each is a value that
``Activation.at_inf`` allows (where PyTorch's kernel may return the limit or NaN, the reference
returns one of the two).

``REFERENCES`` maps a registry family to its function; hyper-parameters are keyword arguments
named like ``Activation.hyper``, so ``REFERENCES[act.family](x, **act.hyper)`` reproduces
``act.fn``. The one exception is PReLU, whose slope is learned: pass the current value of the
learnable parameter, ``prelu(x, slope=act.params["slope"])`` (``act.hyper["init"]`` is only the
value it starts from).

The softmax functions show the classic numerical lesson: subtract the maximum before ``exp``.
The ``*_naive`` functions are the textbook formulas typed in as written, kept to show where they
break (overflow to ``inf``, then ``inf / inf = NaN``); the ``*_grad`` functions are the
derivatives a from-scratch backward pass needs, with PyTorch's convention at the kink.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "REFERENCES",
    "softmax",
    "softmax_naive",
    "log_softmax",
    "softmax_entropy",
    "sigmoid_naive",
    "tanh_naive",
    "relu_grad",
    "leaky_relu_grad",
]

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erfc = np.frompyfunc(math.erfc, 1, 1)  # math.erfc, element by element (returns objects)


def _float(x: ArrayLike) -> NDArray[np.floating]:
    """``x`` as a float array: float32 is kept, everything else becomes float64."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(np.float64)


def identity(x: ArrayLike) -> NDArray[np.floating]:
    """``phi(x) = x``."""
    return _float(x).copy()


def sigmoid(x: ArrayLike) -> NDArray[np.floating]:
    """Logistic function ``1 / (1 + e^{-x})``, stable for any ``x``.

    ``e^{-x}`` overflows for ``x < -709`` (float64), so with ``e = e^{-|x|} <= 1`` we use
    ``1 / (1 + e)`` for ``x >= 0`` and the equal ``e / (1 + e)`` for ``x < 0``: no overflow, no
    warning, and full relative precision in both tails.
    """
    x = _float(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def tanh(x: ArrayLike) -> NDArray[np.floating]:
    """``tanh(x) = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|})``.

    ``1 - e^{-2|x|}`` is computed as ``-expm1(-2|x|)``, which keeps full relative precision for
    small ``|x|``, where the subtraction would cancel.
    """
    x = _float(x)
    e = np.exp(-2.0 * np.abs(x))
    return (np.sign(x) * (-np.expm1(-2.0 * np.abs(x))) / (1.0 + e)).astype(x.dtype)


def softplus(x: ArrayLike, beta: float = 1.0) -> NDArray[np.floating]:
    """``log(1 + e^{beta x}) / beta``, returning ``x`` itself once ``beta x > 20`` (as PyTorch).

    Below the threshold ``exp`` is only evaluated at ``min(beta x, 20)``, so it never overflows.
    """
    x = _float(x)
    z = beta * x
    return np.where(z > 20.0, x, np.log1p(np.exp(np.minimum(z, 20.0))) / beta).astype(x.dtype)


def _softplus_exact(x: NDArray[np.floating]) -> NDArray[np.floating]:
    """``log(1 + e^x) = max(x, 0) + log(1 + e^{-|x|})``: stable, no threshold."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def logsigmoid(x: ArrayLike) -> NDArray[np.floating]:
    """``log sigma(x) = -log(1 + e^{-x}) = min(x, 0) - log(1 + e^{-|x|})``, stable."""
    x = _float(x)
    return (np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


def relu(x: ArrayLike) -> NDArray[np.floating]:
    """``max(0, x)`` (``np.maximum`` propagates NaN)."""
    x = _float(x)
    return np.maximum(x, 0.0).astype(x.dtype)


def leaky_relu(x: ArrayLike, slope: float = 0.01) -> NDArray[np.floating]:
    """``x`` for ``x > 0``, ``slope * x`` otherwise."""
    x = _float(x)
    with np.errstate(invalid="ignore"):  # slope = 0 at x = -inf: 0 * inf, NaN as in PyTorch
        return np.where(x > 0, x, slope * x).astype(x.dtype)


def prelu(x: ArrayLike, slope: float = 0.25) -> NDArray[np.floating]:
    """Parametric ReLU with its current learned ``slope``: ``x`` for ``x > 0``, else ``slope x``."""
    return leaky_relu(x, slope)


def elu(x: ArrayLike, alpha: float = 1.0) -> NDArray[np.floating]:
    """``x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise (``expm1`` for precision near 0)."""
    x = _float(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))).astype(x.dtype)


def selu(x: ArrayLike) -> NDArray[np.floating]:
    """``lambda * elu(x, alpha)`` with the self-normalising constants of Klambauer et al."""
    x = _float(x)
    return (SELU_LAMBDA * elu(x, SELU_ALPHA)).astype(x.dtype)


def celu(x: ArrayLike, alpha: float = 1.0) -> NDArray[np.floating]:
    """``max(0, x) + min(0, alpha (e^{x / alpha} - 1))``."""
    x = _float(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0) / alpha)).astype(x.dtype)


def gelu(x: ArrayLike) -> NDArray[np.floating]:
    """Exact GELU ``x Phi(x) = x/2 (1 + erf(x / sqrt 2)) = x/2 erfc(-x / sqrt 2)``.

    ``erfc`` avoids the cancellation in ``1 + erf`` for negative ``x``, so this is accurate in the
    left tail where the ``1 + erf`` form (PyTorch's) loses relative precision.
    """
    x = _float(x)
    cdf2 = _erfc(-x / math.sqrt(2.0)).astype(x.dtype)  # 2 Phi(x)
    with np.errstate(invalid="ignore"):  # x = -inf: -inf * 0 = NaN, as documented
        return (0.5 * x * cdf2).astype(x.dtype)


def gelu_tanh(x: ArrayLike) -> NDArray[np.floating]:
    """Tanh approximation ``x/2 (1 + tanh(u))``, ``u = sqrt(2/pi) (x + 0.044715 x^3)``.

    ``1 + tanh(u) = 2 sigma(2u)``, which has no cancellation for ``u << 0``.
    """
    x = _float(x)
    with np.errstate(invalid="ignore", over="ignore"):  # x^3 -> inf, then -inf * 0 at -inf
        u = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        return (x * sigmoid(2.0 * u)).astype(x.dtype)


def silu(x: ArrayLike) -> NDArray[np.floating]:
    """SiLU / Swish ``x sigma(x)``."""
    x = _float(x)
    with np.errstate(invalid="ignore"):  # -inf * 0
        return (x * sigmoid(x)).astype(x.dtype)


def mish(x: ArrayLike) -> NDArray[np.floating]:
    """``x tanh(softplus(x))`` (softplus without PyTorch's threshold, as in ``F.mish``)."""
    x = _float(x)
    with np.errstate(invalid="ignore"):  # -inf * 0
        return (x * tanh(_softplus_exact(x))).astype(x.dtype)


def softsign(x: ArrayLike) -> NDArray[np.floating]:
    """``x / (1 + |x|)``; NaN at ``+-inf`` (``inf / inf``), as in PyTorch."""
    x = _float(x)
    with np.errstate(invalid="ignore"):
        return (x / (1.0 + np.abs(x))).astype(x.dtype)


def hardtanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> NDArray[np.floating]:
    """``min(max_val, max(min_val, x))``."""
    x = _float(x)
    return np.minimum(np.maximum(x, min_val), max_val).astype(x.dtype)


def relu6(x: ArrayLike) -> NDArray[np.floating]:
    """``min(6, max(0, x))``."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: ArrayLike) -> NDArray[np.floating]:
    """``relu6(x + 3) / 6``."""
    x = _float(x)
    return (relu6(x + 3.0) / 6.0).astype(x.dtype)


def hardswish(x: ArrayLike) -> NDArray[np.floating]:
    """``x relu6(x + 3) / 6``; NaN at ``-inf`` (``-inf * 0``), as in PyTorch."""
    x = _float(x)
    with np.errstate(invalid="ignore"):
        return (x * relu6(x + 3.0) / 6.0).astype(x.dtype)


def tanhshrink(x: ArrayLike) -> NDArray[np.floating]:
    """``x - tanh(x)``."""
    x = _float(x)
    return (x - tanh(x)).astype(x.dtype)


def softshrink(x: ArrayLike, lambd: float = 0.5) -> NDArray[np.floating]:
    """``sign(x) max(0, |x| - lambd)``: ``x -+ lambd`` outside ``[-lambd, lambd]``, 0 inside."""
    x = _float(x)
    return (np.sign(x) * np.maximum(np.abs(x) - lambd, 0.0)).astype(x.dtype)


def hardshrink(x: ArrayLike, lambd: float = 0.5) -> NDArray[np.floating]:
    """``x 1[|x| > lambd]`` (written so that NaN, which fails every comparison, stays NaN)."""
    x = _float(x)
    return np.where(np.abs(x) <= lambd, 0.0, x).astype(x.dtype)


def sine(x: ArrayLike, w0: float = 1.0) -> NDArray[np.floating]:
    """``sin(w0 x)`` (SIREN); NaN at ``+-inf``."""
    x = _float(x)
    with np.errstate(invalid="ignore"):
        return np.sin(w0 * x).astype(x.dtype)


def gaussian(x: ArrayLike) -> NDArray[np.floating]:
    """``e^{-x^2}``."""
    x = _float(x)
    with np.errstate(over="ignore"):  # x^2 -> inf for |x| > 1e154 gives the right 0
        return np.exp(-(x * x)).astype(x.dtype)


def binary_step(x: ArrayLike) -> NDArray[np.floating]:
    """Heaviside step ``1[x > 0]`` (0 at 0), NaN for NaN."""
    x = _float(x)
    return np.where(np.isnan(x), x, (x > 0).astype(x.dtype)).astype(x.dtype)


def penalized_tanh(x: ArrayLike, a: float = 0.25) -> NDArray[np.floating]:
    """``tanh(x)`` for ``x > 0``, ``a tanh(x)`` otherwise."""
    x = _float(x)
    t = tanh(x)
    return np.where(x > 0, t, a * t).astype(x.dtype)


REFERENCES: dict[str, Callable[..., NDArray[np.floating]]] = {
    f.__name__: f
    for f in (
        identity, sigmoid, tanh, relu, leaky_relu, prelu, elu, selu, celu, gelu, gelu_tanh,
        silu, mish, softplus, softsign, hardtanh, hardsigmoid, hardswish, relu6, logsigmoid,
        tanhshrink, softshrink, hardshrink, sine, gaussian, binary_step, penalized_tanh,
    )
}  # fmt: skip
"""Registry family -> NumPy reference; see the module docstring for the PReLU exception."""


# --------------------------------------------------------------------------------------------
# Softmax


def _scaled(x: ArrayLike, temperature: float) -> NDArray[np.floating]:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    return _float(x) / temperature


def softmax(x: ArrayLike, axis: int = -1, temperature: float = 1.0) -> NDArray[np.floating]:
    """Numerically stable softmax along ``axis``.

    ``softmax(x)_i = e^{z_i - m} / sum_j e^{z_j - m}`` with ``z = x / temperature`` and
    ``m = max_j z_j``. Subtracting ``m`` changes nothing mathematically but makes every exponent
    ``<= 0``, so ``exp`` cannot overflow and the largest term is exactly 1 (the sum is >= 1).
    A high temperature flattens the distribution towards uniform; ``temperature -> 0`` tends to
    one-hot at the arg-max.

    Args:
        x: Logits, any shape.
        axis: The axis that sums to 1.
        temperature: A finite number > 0.

    Returns:
        Probabilities, same shape as ``x``.

    Raises:
        ValueError: if ``temperature`` is not a finite number > 0.
    """
    z = _scaled(x, temperature)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: ArrayLike, axis: int = -1, temperature: float = 1.0) -> NDArray[np.floating]:
    """Stable ``log softmax(x)_i = z_i - m - log sum_j e^{z_j - m}``, ``z = x / temperature``.

    Computing ``log(softmax(x))`` instead would give ``-inf`` wherever a probability underflows
    to 0; this form stays finite for finite logits. Shapes and arguments as :func:`softmax`.
    """
    z = _scaled(x, temperature)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax_naive(x: ArrayLike, axis: int = -1) -> NDArray[np.floating]:
    """Textbook ``e^{x_i} / sum_j e^{x_j}`` *without* subtracting the maximum -- do not use.

    Kept to show why :func:`softmax` subtracts the maximum: ``e^{1000}`` overflows to ``inf`` in
    float64 (anything above ~709 does), and ``inf / inf`` is NaN. The warnings are deliberately
    *not* suppressed: NumPy emits ``RuntimeWarning`` ("overflow encountered in exp", then
    "invalid value encountered in divide") and the result contains NaN.
    """
    e = np.exp(_float(x))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_entropy(x: ArrayLike, axis: int = -1, temperature: float = 1.0) -> NDArray[np.floating]:
    """Entropy ``H = -sum_i p_i log p_i`` (nats) of ``p = softmax(x / temperature)`` along ``axis``.

    Computed as ``-sum_i p_i log_softmax(x)_i``: a probability that underflows to 0 multiplies a
    finite log-probability and contributes exactly 0 (``0 * log 0`` would be NaN). ``H`` lies in
    ``[0, log K]`` for ``K`` entries: ``log K`` for equal logits (or ``temperature -> inf``),
    0 for a one-hot distribution (``temperature -> 0`` with a unique maximum).

    Args:
        x: Logits, any shape.
        axis: The axis of the distribution.
        temperature: A finite number > 0.

    Returns:
        The entropies, ``x``'s shape without ``axis``.
    """
    logp = log_softmax(x, axis=axis, temperature=temperature)
    return -np.sum(np.exp(logp) * logp, axis=axis)


# --------------------------------------------------------------------------------------------
# Textbook formulas, typed in as written (do not use), and derivatives


def sigmoid_naive(x: ArrayLike) -> NDArray[np.floating]:
    """Textbook ``1 / (1 + e^{-x})`` -- right everywhere, but ``e^{-x}`` overflows for
    ``x < -709`` (float64; ``x < -88.7`` in float32) and NumPy warns ("overflow encountered in
    exp"); ``1 / inf`` then happens to give the right limit 0. Use :func:`sigmoid`."""
    return 1.0 / (1.0 + np.exp(-_float(x)))


def tanh_naive(x: ArrayLike) -> NDArray[np.floating]:
    """Textbook ``(e^x - e^{-x}) / (e^x + e^{-x})`` -- do not use.

    For ``|x| > 709.78`` (float64) one exponential is ``inf`` and the quotient is
    ``inf / inf = NaN`` (with NumPy's overflow and invalid-value warnings), although
    ``tanh(x) = +-1`` there. Near 0 the subtraction also cancels. Use :func:`tanh` (or
    ``np.tanh``).
    """
    x = _float(x)
    a, b = np.exp(x), np.exp(-x)
    return (a - b) / (a + b)


def relu_grad(x: ArrayLike) -> NDArray[np.floating]:
    """``d relu / dx = 1[x > 0]``: 0 for every ``x <= 0`` (PyTorch's convention at the kink
    ``x = 0``), NaN for NaN. A unit whose input is negative on every example gets no gradient."""
    x = _float(x)
    return np.where(np.isnan(x), x, (x > 0).astype(x.dtype)).astype(x.dtype)


def leaky_relu_grad(x: ArrayLike, slope: float = 0.01) -> NDArray[np.floating]:
    """``d leaky_relu / dx``: 1 for ``x > 0``, ``slope`` for ``x <= 0`` (PyTorch's convention
    at 0), NaN for NaN. Never 0 (for ``slope != 0``), so a leaky unit cannot die."""
    x = _float(x)
    return np.where(np.isnan(x), x, np.where(x > 0, 1.0, slope)).astype(x.dtype)
