"""Registry-driven tests of the activations: every registered activation (the built-ins, a few
non-default members of the parameterised families, and the user activation that conftest.py
registers) is checked by ``check_activation`` and compared with independent implementations.

The reference tables below (``torch.nn`` modules, SciPy/NumPy formulas) are written here, from
the documented definitions, independently of the code under test.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import special, stats
from torch import nn

from actlab import (
    Activation,
    UnknownActivationError,
    get_activation,
    list_activations,
    register,
)
from actlab.activations import unregister
from actlab.numpy_ref import REFERENCES
from actlab.testing import allowed_at_inf, check_activation, registry_instances

INSTANCES = list(registry_instances())
IDS = [act.name for act in INSTANCES]

BUILTIN_FAMILIES = {
    "identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "celu",
    "gelu", "gelu_tanh", "silu", "mish", "softplus", "softsign", "hardtanh", "hardsigmoid",
    "hardswish", "relu6", "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "sine",
    "gaussian", "binary_step", "penalized_tanh",
}  # fmt: skip

# float64 tolerances for "the same formula": relative 1e-10 (a few ulp of error in exp/erf/tanh
# would be 1e-15); absolute 1e-14 because PyTorch's GELU and tanh-GELU compute 1 + erf(x) and
# 1 + tanh(u), which cancel for x << 0 and leave an absolute error of ~|x| * 1e-16 there. The
# absolute part also covers results below the normal range (gaussian's e^{-x^2} near |x| = 27),
# which a kernel may compute with less precision or flush to 0.
RTOL, ATOL = 1e-10, 1e-14


def _inputs(act: Activation) -> np.ndarray:
    """Random values, round values, both sides of every kink, +-1e4, +-inf and nan."""
    rng = np.random.default_rng(0)
    edge = [0.0, 1e-12, 1e-6, 0.5, 1.0, 2.0, 3.0, 6.0, 10.0, 20.0, 30.0, 100.0, 1e4, math.inf]
    kinks = [k + d for k in act.kinks for d in (-1e-9, 0.0, 1e-9)]
    randoms = [rng.normal(0.0, 3.0, 500), rng.uniform(-30.0, 30.0, 500)]
    return np.concatenate([*randoms, edge, np.negative(edge), kinks, [math.nan]])


def _torch(act: Activation, x: np.ndarray) -> np.ndarray:
    return act(torch.from_numpy(x)).numpy()


def _reference_kwargs(act: Activation) -> dict[str, float]:
    # PReLU's reference takes the learned slope (its current value), not the "init" hyper.
    return dict(act.params) if act.params else dict(act.hyper)


def _assert_same_function(act, x, got, expected, *, rtol, atol):
    """``got`` (PyTorch) and ``expected`` (an independent implementation) agree on the finite
    inputs and NaN to the tolerance; at +-inf, where two implementations may rightly differ (the
    limit or NaN, see ``Activation.at_inf``), each keeps the promise of ``at_inf``."""
    x, got, expected = (np.asarray(a) for a in (x, got, expected))
    inf = np.isinf(x)
    np.testing.assert_allclose(got[~inf], expected[~inf], rtol=rtol, atol=atol, equal_nan=True)
    dtype = torch.float32 if x.dtype == np.float32 else torch.float64
    for who, values in (("torch", got), ("reference", expected)):
        for xi, yi in zip(x[inf].tolist(), values[inf].tolist(), strict=True):
            assert allowed_at_inf(act, xi, yi, dtype), (
                f"{act.name}: {who} gives {yi} at {xi}; at_inf = {act.at_inf}, "
                f"at_inf_or_nan = {act.at_inf_or_nan}"
            )


# --------------------------------------------------------------------------------------------
# The checker on every registered activation


def test_the_parametrisation_covers_the_registry_and_the_user_activation():
    assert set(list_activations()) <= set(IDS)
    assert "bent_identity" in IDS  # registered by conftest.py, tested like a built-in
    assert "leaky_relu(slope=0.2)" in IDS and "prelu(init=0.1)" in IDS


@pytest.mark.parametrize("act", INSTANCES, ids=IDS)
def test_check_activation_float64(act):
    check_activation(act)


@pytest.mark.parametrize("act", INSTANCES, ids=IDS)
def test_check_activation_float32(act):
    check_activation(act, dtype=torch.float32)


def test_check_activation_rejects_other_dtypes():
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        check_activation(get_activation("tanh"), dtype=torch.float16)


# --------------------------------------------------------------------------------------------
# PyTorch vs the from-scratch NumPy references


def test_every_builtin_family_has_a_numpy_reference():
    assert BUILTIN_FAMILIES <= set(list_activations())
    assert BUILTIN_FAMILIES <= set(REFERENCES)


WITH_REFERENCE = [act for act in INSTANCES if act.family in REFERENCES]


@pytest.mark.parametrize("act", WITH_REFERENCE, ids=[a.name for a in WITH_REFERENCE])
def test_torch_matches_numpy_reference_float64(act):
    x = _inputs(act)
    expected = REFERENCES[act.family](x, **_reference_kwargs(act))
    assert expected.dtype == np.float64 and expected.shape == x.shape
    _assert_same_function(act, x, _torch(act, x), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("act", WITH_REFERENCE, ids=[a.name for a in WITH_REFERENCE])
def test_torch_matches_numpy_reference_float32(act):
    x = _inputs(act)
    # Not +-1e4 (x^3 in gelu_tanh overflows float32 there), but +-inf and nan.
    x = x[(np.abs(x) < 1e3) | ~np.isfinite(x)].astype(np.float32)
    expected = REFERENCES[act.family](x, **_reference_kwargs(act))
    assert expected.dtype == np.float32
    # ~100 float32 ulp: the two sides use different (each ~1 ulp) exp/tanh/erf implementations,
    # and PyTorch's differ between CPUs (and from one code path to another).
    _assert_same_function(act, x, _torch(act, x), expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# PyTorch's own modules and SciPy/NumPy, where one exists

TORCH_MODULES: dict[str, Callable[[Activation], nn.Module]] = {
    "identity": lambda a: nn.Identity(),
    "sigmoid": lambda a: nn.Sigmoid(),
    "tanh": lambda a: nn.Tanh(),
    "relu": lambda a: nn.ReLU(),
    "leaky_relu": lambda a: nn.LeakyReLU(negative_slope=a.hyper["slope"]),
    "prelu": lambda a: nn.PReLU(num_parameters=1, init=a.params["slope"]),
    "elu": lambda a: nn.ELU(alpha=a.hyper["alpha"]),
    "selu": lambda a: nn.SELU(),
    "celu": lambda a: nn.CELU(alpha=a.hyper["alpha"]),
    "gelu": lambda a: nn.GELU(),
    "gelu_tanh": lambda a: nn.GELU(approximate="tanh"),
    "silu": lambda a: nn.SiLU(),
    "mish": lambda a: nn.Mish(),
    "softplus": lambda a: nn.Softplus(beta=a.hyper["beta"]),
    "softsign": lambda a: nn.Softsign(),
    "hardtanh": lambda a: nn.Hardtanh(a.hyper["min_val"], a.hyper["max_val"]),
    "hardsigmoid": lambda a: nn.Hardsigmoid(),
    "hardswish": lambda a: nn.Hardswish(),
    "relu6": lambda a: nn.ReLU6(),
    "logsigmoid": lambda a: nn.LogSigmoid(),
    "tanhshrink": lambda a: nn.Tanhshrink(),
    "softshrink": lambda a: nn.Softshrink(lambd=a.hyper["lambd"]),
    "hardshrink": lambda a: nn.Hardshrink(lambd=a.hyper["lambd"]),
}

SCIPY_NUMPY: dict[str, Callable[[np.ndarray, Activation], np.ndarray]] = {
    "sigmoid": lambda x, a: special.expit(x),
    "logsigmoid": lambda x, a: special.log_expit(x),
    "tanh": lambda x, a: np.tanh(x),
    "gelu": lambda x, a: 0.5 * x * (1.0 + special.erf(x / np.sqrt(2.0))),
    "gelu_tanh": lambda x, a: 0.5 * x * (1.0 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x, a: x * special.expit(x),
    "mish": lambda x, a: x * np.tanh(np.logaddexp(0.0, x)),
    "softplus": lambda x, a: np.where(
        a.hyper["beta"] * x > 20.0, x, np.logaddexp(0.0, a.hyper["beta"] * x) / a.hyper["beta"]
    ),
    "elu": lambda x, a: np.where(x > 0, x, a.hyper["alpha"] * special.expm1(x)),
    "sine": lambda x, a: np.sin(a.hyper["w0"] * x),
    "gaussian": lambda x, a: np.sqrt(np.pi) * stats.norm.pdf(x, scale=1.0 / np.sqrt(2.0)),
    "binary_step": lambda x, a: np.heaviside(x, 0.0),
    "penalized_tanh": lambda x, a: np.where(x > 0, 1.0, a.hyper["a"]) * np.tanh(x),
}

WITH_MODULE = [act for act in INSTANCES if act.family in TORCH_MODULES]
WITH_SCIPY = [act for act in INSTANCES if act.family in SCIPY_NUMPY]


@pytest.mark.parametrize("act", WITH_MODULE, ids=[a.name for a in WITH_MODULE])
def test_torch_matches_torch_nn_module(act):
    x = torch.from_numpy(_inputs(act))
    module = TORCH_MODULES[act.family](act).double()
    with torch.no_grad():
        for p in module.parameters():  # PReLU stores its init in float32: 0.1 -> 0.10000000149
            p.fill_(act.params["slope"])
        expected = module(x)
    # Mostly the very kernel on both sides; where not (PReLU, softsign) the same IEEE operations.
    _assert_same_function(act, x, act(x), expected, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("act", WITH_SCIPY, ids=[a.name for a in WITH_SCIPY])
def test_torch_matches_scipy_or_numpy(act):
    x = _inputs(act)
    with np.errstate(invalid="ignore", over="ignore"):  # -inf * 0 and x^3 at +-inf
        expected = SCIPY_NUMPY[act.family](x, act)
    _assert_same_function(act, x, _torch(act, x), expected, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------------------------
# Registry behaviour


def test_registry_lists_at_least_25_activations():
    names = list_activations()
    assert len(names) >= 25 and names == sorted(names)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("swish", "silu"),
        ("Swish", "silu"),
        ("linear", "identity"),
        ("none", "identity"),
        ("step", "binary_step"),
        ("lrelu", "leaky_relu"),
        ("leaky-relu", "leaky_relu"),
        ("sin", "sine"),
    ],
)
def test_aliases_resolve_to_the_canonical_activation(alias, canonical):
    assert get_activation(alias) == get_activation(canonical)
    assert get_activation(alias).name == canonical


def test_positional_and_keyword_arguments_give_the_same_activation():
    act = get_activation("leaky_relu(0.2)")
    assert act == get_activation("leaky_relu(slope=0.2)")
    assert act == get_activation(" lrelu( slope = 0.2 ) ")
    assert act.name == "leaky_relu(slope=0.2)" and act.hyper == {"slope": 0.2}
    assert act(torch.tensor([-1.0, 2.0])).tolist() == pytest.approx([-0.2, 2.0])
    # default hyper-parameters are not spelled out in the name
    assert get_activation("leaky_relu(slope=0.01)").name == "leaky_relu"


def test_an_activation_object_resolves_to_itself():
    act = get_activation("tanh")
    assert get_activation(act) is act
    with pytest.raises(TypeError, match="name or an Activation"):
        get_activation(3)  # type: ignore[arg-type]


def test_unknown_name_suggests_the_closest_match_and_lists_valid_names():
    with pytest.raises(UnknownActivationError) as info:
        get_activation("tanhh")
    message = str(info.value)
    assert "Did you mean 'tanh'?" in message
    assert "Valid names:" in message and all(name in message for name in BUILTIN_FAMILIES)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("elu(alpha=-1)", "alpha must be a finite number > 0"),
        ("leaky_relu(foo=1)", "unexpected keyword argument 'foo'.*takes \\['slope'\\]"),
        ("relu(1)", "relu takes no arguments"),
        ("tanh((", "malformed activation spec"),
        ("leaky_relu(slope=abc)", "'slope=abc' is not a number"),
        ("elu(alpha=1, 2)", "positional argument after a keyword"),
        ("hardtanh(min_val=2, max_val=1)", "need min_val < max_val"),
    ],
)
def test_malformed_specs_and_bad_arguments_raise_value_error(spec, message):
    with pytest.raises(ValueError, match=message) as info:
        get_activation(spec)
    assert not isinstance(info.value, UnknownActivationError)


def test_register_rejects_duplicates_and_factories_without_defaults():
    with pytest.raises(ValueError, match="'tanh' is already registered"):
        register(dataclasses.replace(get_activation("tanh")))

    def needs_an_argument(k: float) -> Activation:  # no default: cannot be called by name
        return get_activation("tanh")

    with pytest.raises(ValueError, match=r"parameters \['k'\] need defaults"):
        register(needs_an_argument)
    assert "needs_an_argument" not in list_activations()


def test_register_and_unregister_a_new_factory_with_aliases():
    def scaled_tanh(scale: float = 2.0) -> Activation:
        return dataclasses.replace(
            get_activation("tanh"),
            name="scaled_tanh" if scale == 2.0 else f"scaled_tanh(scale={scale:g})",
            family="scaled_tanh",
            hyper={"scale": scale},
            fn=lambda x: scale * torch.tanh(x),
            deriv=lambda x: scale * (1.0 - torch.tanh(x) ** 2),
            at_inf=(-scale, scale),
            backward=None,
        )

    register(scaled_tanh, aliases=("stanh",))
    try:
        act = get_activation("stanh(3)")
        assert act.name == "scaled_tanh(scale=3)"
        check_activation(act)
        with pytest.raises(ValueError, match="already registered"):
            register(scaled_tanh)
    finally:
        unregister("scaled_tanh")
    assert "scaled_tanh" not in list_activations()
    with pytest.raises(UnknownActivationError):
        get_activation("stanh")


# --------------------------------------------------------------------------------------------
# Modules


def test_module_works_inside_sequential():
    torch.manual_seed(0)
    act = get_activation("tanh")
    model = nn.Sequential(nn.Linear(3, 4), act.module(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    hidden = torch.tanh(x @ model[0].weight.T + model[0].bias)
    expected = hidden @ model[2].weight.T + model[2].bias
    torch.testing.assert_close(model(x), expected)
    assert list(model[1].parameters()) == []
    assert "tanh" in repr(model)


def test_prelu_module_has_one_learnable_parameter_that_receives_a_gradient():
    module = get_activation("prelu").module()
    params = list(module.parameters())
    assert len(params) == 1 and params[0].shape == () and params[0].item() == pytest.approx(0.25)
    x = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    module(x).sum().backward()
    # d/da sum_i prelu(x_i) = sum of the non-positive x_i
    assert params[0].grad is not None and params[0].grad.item() == pytest.approx(-2.5)


# --------------------------------------------------------------------------------------------
# The checker itself can fail


def _broken(base: str, **changes) -> Activation:
    return dataclasses.replace(get_activation(base), name=f"broken_{base}", **changes)


def _relu_nan_at_inf(x: torch.Tensor) -> torch.Tensor:
    """ReLU everywhere, except NaN at +-inf (0 * inf): a kernel that does not reach its limits."""
    return torch.relu(x) + 0.0 * x


def _relu_nan_at_inf_in_long_runs(x: torch.Tensor) -> torch.Tensor:
    """NaN at +-inf only in tensors of more than two elements, like a vectorised kernel."""
    return _relu_nan_at_inf(x) if x.numel() > 2 else torch.relu(x)


BROKEN = {
    "deriv off by 1%": (
        _broken("tanh", deriv=lambda x: 1.01 * (1.0 - torch.tanh(x) ** 2)),
        "deriv != autograd",
    ),
    "deriv wrong only at the kink": (
        _broken("relu", deriv=lambda x: (x >= 0).to(x.dtype)),
        "deriv != autograd at a declared kink",
    ),
    "param_derivs off by a factor 2": (
        _broken("prelu", param_derivs=lambda x, a: (torch.where(x > 0, 0.0 * x, 2.0 * x),)),
        "param_derivs\\['slope'\\] != autograd",
    ),
    "fused backward wrong": (
        _broken("tanh", backward=lambda dh, x, h: dh * (1.0 - h)),
        r"backward\(dh, x, fn\(x\)\) != dh \* autograd",
    ),
    "silu claimed monotonic": (_broken("silu", monotonic=True), "monotonic=True"),
    "sigmoid claimed not monotonic": (_broken("sigmoid", monotonic=False), "monotonic=False"),
    "sigmoid claimed zero-centred": (_broken("sigmoid", zero_centred=True), "zero_centred=True"),
    "tanh claimed not zero-centred": (_broken("tanh", zero_centred=False), "zero_centred=False"),
    "softplus claimed bounded": (_broken("softplus", bounded=True), "bounded=True"),
    "sine claimed unbounded": (_broken("sine", bounded=False), "bounded=False"),
    "a kink that is not one": (
        _broken("tanh", smooth=False, kinks=(0.0,)),
        "declared kink at x = 0 is not one",
    ),
    "relu claimed smooth": (_broken("relu", smooth=True, kinks=()), "not a declared kink"),
    "relu with its kink undeclared": (_broken("relu", kinks=()), "not a declared kink"),
    "tanh claimed piecewise linear": (
        _broken("tanh", piecewise_linear=True),
        "piecewise_linear=True",
    ),
    "relu claimed curved": (_broken("relu", piecewise_linear=False), "piecewise_linear=False"),
    "wrong at_inf": (_broken("sigmoid", at_inf=(0.0, 2.0)), "at_inf documents 2.0"),
    "nan at +-inf, not declared": (
        _broken("relu", fn=_relu_nan_at_inf),
        r"phi\(-inf\) = nan in torch.float32 \(1 element\), but at_inf documents 0.0",
    ),
    "nan at +-inf in a long run only": (
        _broken("relu", fn=_relu_nan_at_inf_in_long_runs),
        r"phi\(-inf\) = nan in torch.float32 \(67 elements\)",
    ),
    "wrong infinite limit behind nan": (
        _broken("relu", fn=_relu_nan_at_inf, at_inf=(0.0, -math.inf), at_inf_or_nan=(True, True)),
        "does not grow towards its limit at_inf = -inf",
    ),
    "wrong finite limit behind nan": (
        _broken("relu", fn=_relu_nan_at_inf, at_inf=(1.0, math.inf), at_inf_or_nan=(True, True)),
        r"phi\(-1e4\) = 0.0 in torch.float32, far from its limit at_inf = 1.0",
    ),
    "nan swallowed": (
        _broken("relu", fn=lambda x: torch.where(x > 0, x, torch.zeros_like(x))),
        "phi\\(nan\\) = 0.0",
    ),
    "dtype not kept": (
        _broken("tanh", fn=lambda x: torch.tanh(x.double())),
        "fn maps a \\(3, 4, 5\\) torch.float32",
    ),
    "shape not kept": (
        _broken("tanh", deriv=lambda x: 1.0 - torch.tanh(x.flatten()) ** 2),
        "deriv maps a \\(3, 4, 5\\)",
    ),
}


@pytest.mark.parametrize(("act", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_check_activation_catches_a_broken_activation(act, message):
    with pytest.raises(AssertionError, match=f"check_activation\\('{act.name}'\\): .*{message}"):
        check_activation(act)


def test_at_inf_or_nan_lets_the_kernel_return_nan_or_the_limit():
    act = _broken("relu", fn=_relu_nan_at_inf, at_inf_or_nan=(True, True))
    check_activation(act)  # the "nan at +-inf, not declared" activation above, now declared
    check_activation(act, dtype=torch.float32)
    check_activation(_broken("relu", at_inf_or_nan=(True, True)))  # and the limit itself


@pytest.mark.parametrize(
    ("name", "x", "y", "allowed"),
    [
        ("gelu", -math.inf, math.nan, True),  # NaN or the limit, depending on the kernel
        ("gelu", -math.inf, 0.0, True),
        ("gelu", -math.inf, -0.0, True),
        ("gelu", -math.inf, 1e-30, False),  # the limit, not a number near it
        ("gelu", math.inf, math.inf, True),
        ("gelu", math.inf, math.nan, True),
        ("gelu", math.inf, -math.inf, False),
        ("sigmoid", math.inf, math.nan, False),  # the limit, on every CPU
        ("sigmoid", math.inf, 1.0, True),
        ("softsign", math.inf, math.nan, True),  # inf / inf, on every CPU
        ("softsign", math.inf, 1.0, False),
        ("sine", -math.inf, math.nan, True),  # no limit
    ],
)
def test_allowed_at_inf(name, x, y, allowed):
    assert allowed_at_inf(get_activation(name), x, y) is allowed


def test_allowed_at_inf_takes_a_limit_to_float_rounding_of_its_dtype():
    selu = get_activation("selu")
    f32 = float(torch.tensor(selu.at_inf[0], dtype=torch.float32))  # lambda * alpha, rounded
    assert f32 != selu.at_inf[0]
    assert allowed_at_inf(selu, -math.inf, f32, torch.float32)
    assert not allowed_at_inf(selu, -math.inf, f32, torch.float64)
    with pytest.raises(ValueError, match="must be -inf or \\+inf"):
        allowed_at_inf(selu, 1e308, 1.0)


def test_at_inf_or_nan_is_validated():
    with pytest.raises(ValueError, match="at_inf there must be the limit"):
        _broken("sine", at_inf_or_nan=(True, False))  # sine has no limit: NaN or NaN?
    with pytest.raises(ValueError, match="two bools"):
        _broken("relu", at_inf_or_nan=(1, 0))
    assert _broken("relu", at_inf_or_nan=[True, False]).at_inf_or_nan == (True, False)


def test_no_formula_gives_phi_another_meaning():
    # phi is the activation throughout the tutorial: a density inside a formula is Phi'.
    for act in registry_instances():
        assert r"\varphi" not in act.latex + act.latex_deriv, act.name
