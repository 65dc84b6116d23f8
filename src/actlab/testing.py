"""Checks that an :class:`~actlab.activations.Activation` keeps the promises it declares.

:func:`check_activation` is what the registry-driven tests run on every registered activation,
built in or added by a user, and what a user can call on a new activation before registering it.
It raises ``AssertionError`` naming the activation and the first broken promise:

* derivative: ``deriv`` (and ``param_derivs``) against autograd of ``fn``, on a dense grid over
  ``[-8, 8]`` and a few large values, away from the declared kinks; and at each kink, where the
  documented value is autograd's one-sided one; the fused ``backward(dh, x, fn(x))`` against
  ``dh`` times autograd, where given;
* properties, against the function's values (float64 whatever ``dtype``: they are facts about the
  real function, and float32 rounding would only blur the thresholds): ``monotonic``,
  ``zero_centred``, ``bounded``, ``smooth``, ``piecewise_linear``, and that the declared kinks
  are the real ones (each declared kink jumps in value or slope; no jump lies elsewhere);
* extremes, in float32 and float64: ``fn(nan)`` is NaN; ``fn(+-inf)`` equals ``at_inf``, or is
  NaN at an end that ``at_inf_or_nan`` marks (:func:`allowed_at_inf`), in every code path a
  kernel may take (one element, a few, a long vectorised run, a strided view); ``fn(+-1e4)`` is
  not NaN and is close to a finite ``at_inf``; towards an infinite ``at_inf`` ``fn`` grows with its
  sign (at ``+-1e4``, ``+-1e8``, ``+-1e16``, which also checks a limit that the kernel may hide
  behind NaN); ``deriv(+-1e4)`` is finite;
* ``fn`` and ``deriv`` keep the shape and dtype of their input.

Nothing here asks two different kernels for the same bits: values are compared to float
rounding (tolerances below), and at +-inf to what ``at_inf`` documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from actlab.activations import Activation, get_activation, list_activations

__all__ = ["check_activation", "allowed_at_inf", "registry_instances", "NON_DEFAULT_SPECS"]

NON_DEFAULT_SPECS: tuple[str, ...] = (
    "leaky_relu(slope=0.2)",
    "elu(alpha=0.5)",
    "celu(alpha=2)",
    "softplus(beta=2)",
    "hardtanh(min_val=-2, max_val=3)",
    "softshrink(lambd=1)",
    "sine(w0=3)",
    "penalized_tanh(a=0.5)",
    "prelu(init=0.1)",
    "leaky_relu(slope=0)",  # at -inf PyTorch's kernel meets 0 * -inf: NaN or the limit 0
    "prelu(init=0)",  # at -inf actlab's own a * x is 0 * -inf: NaN
)
"""Non-default members of parameterised families that the tests check besides the defaults."""

# Derivative tolerances per dtype. Not exact equality even in float64: PyTorch's own backward
# formulas round differently (hardsigmoid's backward multiplies by a float32 1/6).
_DERIV_TOL = {torch.float64: (1e-7, 1e-6), torch.float32: (1e-5, 1e-4)}  # (atol, rtol)
_KINK_GAP = 1e-3  # grid points this close to a declared kink are left out of the grid checks
_JUMP_STEP = 1e-10  # half-width of the two-sided probe that looks for jumps
_JUMP_TOL = 1e-5  # a C1 function changes by ~2e-10 |phi''| across the probe: far below
_PWL_STEP = 1e-2  # step of the second differences; a curvature c shows as c * 1e-4
_F64 = torch.float64
_ULPS_AT_INF = 4  # a limit is met to 4 eps relative (float32 SELU's lambda * alpha is rounded)
_GROWTH = (1e4, 1e8, 1e16)  # |x| at which phi must grow towards an infinite limit (float32-safe)
_STRIDED_LENGTH = 67  # 4 * 16 + 3: a vectorised body and a scalar tail in every x86 kernel


def allowed_at_inf(act: Activation, x: float, y: float, dtype: torch.dtype = _F64) -> bool:
    """Whether ``y`` is a value ``act`` may return at ``x = -inf`` or ``+inf``.

    Allowed: ``at_inf`` of that end (NaN for NaN; a finite limit to 4 eps of ``dtype``), and NaN
    at an end that ``at_inf_or_nan`` marks (NaN or the limit, depending on the PyTorch kernel).

    Raises:
        ValueError: if ``x`` is not an infinity.
    """
    if not math.isinf(x):
        raise ValueError(f"x must be -inf or +inf, got {x}")
    end = int(x > 0)
    want = act.at_inf[end]
    if math.isnan(y):
        return math.isnan(want) or act.at_inf_or_nan[end]
    if y == want:
        return True
    eps = torch.finfo(dtype).eps
    return math.isfinite(want) and abs(y - want) <= _ULPS_AT_INF * eps * abs(want)


def registry_instances() -> Iterator[Activation]:
    """Every registered activation at its defaults, then the :data:`NON_DEFAULT_SPECS` whose
    family is registered; each once, in that order."""
    names = list_activations()
    specs = [*names, *(s for s in NON_DEFAULT_SPECS if s.split("(")[0] in names)]
    seen: set[str] = set()
    for spec in specs:
        act = get_activation(spec)
        if act.name not in seen:
            seen.add(act.name)
            yield act


def check_activation(act: Activation, *, dtype: torch.dtype = torch.float64) -> None:
    """Check ``act`` against its declared derivative, properties and extreme values.

    Args:
        act: The activation to check.
        dtype: Precision of the derivative-vs-autograd check (``torch.float64`` or
            ``torch.float32``, tolerances scaled to it). Properties are always checked in
            float64; extremes, shapes and dtypes in both float32 and float64.

    Raises:
        AssertionError: on the first broken promise, with a message naming ``act`` and the point.
        ValueError: for a ``dtype`` other than float32/float64.
    """
    if dtype not in _DERIV_TOL:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    _check_shapes_and_dtypes(act)
    _check_derivative(act, dtype)
    _check_kinks(act)
    _check_monotonic(act)
    _check_zero_centred(act)
    _check_bounded(act)
    _check_piecewise_linear(act)
    for extremes_dtype in (torch.float32, torch.float64):
        _check_extremes(act, extremes_dtype)


# --------------------------------------------------------------------------------------------
# helpers


def _fail(act: Activation, message: str) -> None:
    raise AssertionError(f"check_activation({act.name!r}): {message}")


def _fn(act: Activation, x: Tensor) -> Tensor:
    return act.fn(x, *act.default_params(x))


def _deriv(act: Activation, x: Tensor) -> Tensor:
    return act.deriv(x, *act.default_params(x))


def _dense(dtype: torch.dtype = _F64) -> Tensor:
    """[-8, 8] in steps of 1e-3, symmetric, containing 0 and every integer."""
    return torch.arange(-8000, 8001, dtype=dtype) / 1000


def _away_from_kinks(act: Activation, x: Tensor, gap: float = _KINK_GAP) -> Tensor:
    keep = torch.ones_like(x, dtype=torch.bool)
    for k in act.kinks:
        keep &= (x - k).abs() > gap
    return x[keep]


def _worst(x: Tensor, err: Tensor) -> str:
    i = int(torch.argmax(torch.nan_to_num(err, nan=math.inf)))
    return f"x = {x.flatten()[i].item():.6g} (error {err.flatten()[i].item():.3g})"


def _autograd(act: Activation, x: Tensor, params: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """d fn / d x and d fn / d param, element-wise (each param is given shaped like ``x``)."""
    x = x.detach().clone().requires_grad_(True)
    params = tuple(p.detach().clone().requires_grad_(True) for p in params)
    y = act.fn(x, *params)
    if not y.requires_grad:  # fn does not depend differentiably on its inputs (a step function)
        return (torch.zeros_like(x),) + tuple(torch.zeros_like(p) for p in params)
    grads = torch.autograd.grad(y.sum(), (x, *params), allow_unused=True)
    return tuple(
        torch.zeros_like(t) if g is None else g for g, t in zip(grads, (x, *params), strict=True)
    )


# --------------------------------------------------------------------------------------------
# (a) derivative


def _check_derivative(act: Activation, dtype: torch.dtype) -> None:
    atol, rtol = _DERIV_TOL[dtype]
    large = torch.tensor([10.0, 20.0, 30.0, 50.0, 100.0, 1e3, 1e4], dtype=dtype)
    x = _away_from_kinks(act, torch.cat([_dense(dtype), large, -large]))
    kinks = torch.tensor(act.kinks, dtype=dtype)
    for where, points in (("", x), (" at a declared kink", kinks)):
        if points.numel() == 0:
            continue
        auto = _autograd(act, points, act.default_params(points))[0]
        analytic = _deriv(act, points)
        err = (analytic - auto).abs()
        bad = ~(err <= atol + rtol * auto.abs())  # also catches NaN
        if bad.any():
            _fail(act, f"deriv != autograd{where} in {dtype}, worst at {_worst(points, err)}")
        if act.backward is not None:
            dh = torch.linspace(-2.0, 3.0, points.numel(), dtype=dtype)
            expected = dh * auto  # before the call: a fused backward may overwrite dh
            fused = act.backward(dh, points, _fn(act, points))
            err = (fused - expected).abs()
            if not (err <= atol + rtol * expected.abs()).all():
                _fail(
                    act,
                    f"backward(dh, x, fn(x)) != dh * autograd{where} in {dtype}, "
                    f"worst at {_worst(points, err)}",
                )
        if act.params:
            full = tuple(torch.full_like(points, v) for v in act.params.values())
            auto_params = _autograd(act, points, full)[1:]
            analytic_params = act.param_derivs(points, *full)
            for name, a, g in zip(act.params, analytic_params, auto_params, strict=True):
                err = (a - g).abs()
                if not (err <= atol + rtol * g.abs()).all():
                    _fail(
                        act,
                        f"param_derivs[{name!r}] != autograd{where} in {dtype}, "
                        f"worst at {_worst(points, err)}",
                    )


# --------------------------------------------------------------------------------------------
# (b) properties, in float64


def _jumps(act: Activation, centres: Tensor) -> Tensor:
    """How much ``phi`` or ``phi'`` changes across ``c +- 1e-10``, at each centre ``c``."""
    lo, hi = centres - _JUMP_STEP, centres + _JUMP_STEP
    value = (_fn(act, hi) - _fn(act, lo)).abs()
    slope = (_deriv(act, hi) - _deriv(act, lo)).abs()
    return torch.maximum(value, slope)


def _check_kinks(act: Activation) -> None:
    if act.smooth and act.kinks:
        _fail(act, f"smooth=True but kinks={act.kinks}")
    for k in act.kinks:
        jump = _jumps(act, torch.tensor([k], dtype=_F64)).item()
        if not jump > _JUMP_TOL:
            _fail(
                act,
                f"declared kink at x = {k:g} is not one: phi and phi' change by only "
                f"{jump:.3g} across it",
            )
    # Undeclared jumps: probe the multiples of 1/8 in [-8, 8] and +-20, the round numbers where
    # kinks live; every jump found there must be a declared kink.
    centres = torch.cat([torch.arange(-64, 65, dtype=_F64) / 8, torch.tensor([-20.0, 20.0])])
    centres = _away_from_kinks(act, centres)
    jumps = _jumps(act, centres)
    if (jumps > _JUMP_TOL).any() or jumps.isnan().any():
        i = int(torch.argmax(torch.nan_to_num(jumps, nan=math.inf)))
        _fail(
            act,
            f"phi or phi' jumps by {jumps[i].item():.3g} at x = {centres[i].item():g}, "
            "which is not a declared kink (add it to kinks, and set smooth=False)",
        )
    if not act.smooth and not act.kinks:
        _fail(act, "smooth=False but no kinks declared and none found")


def _check_monotonic(act: Activation) -> None:
    wide = torch.logspace(-6, 4, 401, dtype=_F64)
    x = torch.cat([-wide.flip(0), _dense(), wide]).sort().values
    y = _fn(act, x)
    step = y[1:] - y[:-1]
    # Relative to float rounding; plus the smallest normal number, below which a value carries
    # no relative precision (a kernel may compute subnormal results differently, or flush them).
    tol = 4 * torch.finfo(_F64).eps * torch.maximum(y[1:].abs(), y[:-1].abs())
    tol += torch.finfo(_F64).tiny
    falls = step < -tol
    if act.monotonic and falls.any():
        i = int(torch.nonzero(falls)[0])
        _fail(
            act,
            f"monotonic=True but phi({x[i + 1].item():.6g}) = {y[i + 1].item():.6g} < "
            f"phi({x[i].item():.6g}) = {y[i].item():.6g}",
        )
    if not act.monotonic and not falls.any():
        _fail(act, "monotonic=False but phi never decreases on [-1e4, 1e4]")


def _check_zero_centred(act: Activation) -> None:
    x = torch.cat([_dense(), torch.logspace(-6, 4, 401, dtype=_F64)])
    pos, neg = _fn(act, x), _fn(act, -x)
    err = (pos + neg).abs()
    odd = err <= 4 * torch.finfo(_F64).eps * torch.maximum(pos.abs(), neg.abs()) + 1e-300
    if act.zero_centred and not odd.all():
        _fail(act, f"zero_centred=True but phi(-x) != -phi(x), worst at {_worst(x, err)}")
    if not act.zero_centred and odd.all():
        _fail(act, "zero_centred=False but phi(-x) == -phi(x) on [-1e4, 1e4]")


def _check_bounded(act: Activation) -> None:
    # Bounded <=> sup |phi| is finite and already reached by |x| = 1e8: between 1e8 and 1e300
    # any unbounded phi (even log log |x|) still grows by far more than the 0.1 % allowed here,
    # and a bounded one (also sine, whose at_inf is NaN) does not grow at all.
    near = torch.cat([_dense(), torch.logspace(-6, 8, 561, dtype=_F64)])
    far = torch.logspace(8, 300, 585, dtype=_F64)
    sup_near = _fn(act, torch.cat([near, -near])).abs().max().item()
    sup_far = _fn(act, torch.cat([far, -far])).abs().max().item()
    observed = math.isfinite(sup_far) and sup_far <= sup_near * (1 + 1e-3) + 1e-12
    if act.bounded != observed:
        _fail(
            act,
            f"bounded={act.bounded} but sup |phi| is {sup_near:.6g} on |x| <= 1e8 and "
            f"{sup_far:.6g} on 1e8 <= |x| <= 1e300",
        )
    if act.bounded and any(math.isinf(v) for v in act.at_inf):
        _fail(act, f"bounded=True but at_inf={act.at_inf}")


def _check_piecewise_linear(act: Activation) -> None:
    h = _PWL_STEP
    x = _away_from_kinks(act, _dense(), gap=h + _KINK_GAP)
    y, y_lo, y_hi = _fn(act, x), _fn(act, x - h), _fn(act, x + h)
    second = (y_hi - 2 * y + y_lo).abs()
    tol = 1e-9 * max(1.0, y.abs().max().item())
    linear = bool((second <= tol).all())
    if act.piecewise_linear and not linear:
        _fail(
            act,
            f"piecewise_linear=True but phi curves between kinks (second difference "
            f"with step {h:g}), worst at {_worst(x, second)}",
        )
    if not act.piecewise_linear and linear:
        _fail(act, "piecewise_linear=False but phi is linear between its kinks on [-8, 8]")


# --------------------------------------------------------------------------------------------
# (c) extremes, (d) shapes and dtypes


def _code_paths(value: float, dtype: torch.dtype) -> dict[str, Tensor]:
    """Tensors full of ``value`` that send an element-wise kernel down each of its code paths:
    one element (scalar code), two (a vector kernel's tail; oneDNN's GELU), a long contiguous run
    (vectorised body and tail) and a strided view (PyTorch's strided loop, never oneDNN)."""
    full = torch.full((2 * _STRIDED_LENGTH,), value, dtype=dtype)
    return {
        "1 element": full[:1].clone(),
        "2 elements": full[:2].clone(),
        f"{_STRIDED_LENGTH} elements": full[:_STRIDED_LENGTH].clone(),
        "a strided view": full[::2],
    }


def _check_extremes(act: Activation, dtype: torch.dtype) -> None:
    for path, x in _code_paths(math.nan, dtype).items():
        for got in _fn(act, x).tolist():
            if not math.isnan(got):
                _fail(act, f"phi(nan) = {got} in {dtype} ({path}), expected nan")
    for side, inf in (("-inf", -math.inf), ("+inf", math.inf)):
        end = int(inf > 0)
        for path, x in _code_paths(inf, dtype).items():
            for got in _fn(act, x).tolist():
                if not allowed_at_inf(act, inf, got, dtype):
                    also = " (or nan)" if act.at_inf_or_nan[end] else ""
                    _fail(
                        act,
                        f"phi({side}) = {got} in {dtype} ({path}), but at_inf documents "
                        f"{act.at_inf[end]}{also}",
                    )
    big = torch.tensor([-1e4, 1e4], dtype=dtype)
    for side, got, want in zip(("-1e4", "+1e4"), _fn(act, big).tolist(), act.at_inf, strict=True):
        if math.isnan(got):
            _fail(act, f"phi({side}) is nan in {dtype}")
        if math.isfinite(want) and not abs(got - want) <= 1e-3 * (1 + abs(want)):
            _fail(act, f"phi({side}) = {got} in {dtype}, far from its limit at_inf = {want}")
    for sign, want in zip((-1.0, 1.0), act.at_inf, strict=True):
        if not math.isinf(want):
            continue
        # Towards an infinite limit phi must grow with the limit's sign: this checks the limit
        # even where the kernel returns NaN at the infinity itself.
        x = torch.tensor([sign * g for g in _GROWTH], dtype=dtype)
        y = _fn(act, x).tolist()
        grows = all(math.copysign(1.0, want) * v > 0 for v in y) and all(
            abs(a) < abs(b) for a, b in zip(y[:-1], y[1:], strict=False)
        )
        if not grows:
            _fail(
                act,
                f"phi at {x.tolist()} is {y} in {dtype}: it does not grow towards its "
                f"limit at_inf = {want}",
            )
    slope = _deriv(act, big)
    if not slope.isfinite().all():
        _fail(act, f"phi'(+-1e4) = {slope.tolist()} in {dtype}, expected finite values")


def _check_shapes_and_dtypes(act: Activation) -> None:
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(3, 4, 5, dtype=dtype, generator=torch.Generator().manual_seed(0))
        params = act.default_params(x)
        outputs = {"fn": act.fn(x, *params), "deriv": act.deriv(x, *params)}
        if act.param_derivs is not None:
            for name, d in zip(act.params, act.param_derivs(x, *params), strict=True):
                outputs[f"param_derivs[{name!r}]"] = d
        for what, out in outputs.items():
            if out.shape != x.shape or out.dtype != dtype:
                _fail(
                    act,
                    f"{what} maps a {tuple(x.shape)} {dtype} tensor to a "
                    f"{tuple(out.shape)} {out.dtype} one",
                )
