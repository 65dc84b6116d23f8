"""The NumPy references: softmax family against SciPy and PyTorch, the overflow lesson, and the
numerical stability the docstrings promise. (Each activation reference is compared with PyTorch
in test_activations.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import special
from scipy.stats import entropy as scipy_entropy

from actlab import numpy_ref


def _logits(shape: tuple[int, ...], scale: float = 5.0) -> np.ndarray:
    return np.random.default_rng(1).normal(0.0, scale, shape)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax_match_scipy_and_torch(axis):
    x = _logits((4, 5, 6))
    p, logp = numpy_ref.softmax(x, axis=axis), numpy_ref.log_softmax(x, axis=axis)
    assert p.shape == logp.shape == x.shape
    np.testing.assert_allclose(p, special.softmax(x, axis=axis), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(logp, special.log_softmax(x, axis=axis), rtol=1e-12, atol=1e-13)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(p, torch.softmax(t, dim=axis).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(logp, torch.log_softmax(t, dim=axis).numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-14)


def test_log_softmax_stays_finite_where_probabilities_underflow():
    x = np.array([0.0, -800.0])  # e^-800 underflows to 0 in float64
    assert numpy_ref.softmax(x)[1] == 0.0
    np.testing.assert_allclose(numpy_ref.log_softmax(x), [0.0, -800.0], rtol=1e-15)


def test_stable_softmax_survives_large_logits_where_the_naive_one_overflows():
    x = np.array([1000.0, 1001.0, 1002.0])
    p = numpy_ref.softmax(x)
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0, abs=1e-15)
    # shift invariance: the same as the logits [0, 1, 2]
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(p, e / e.sum(), rtol=1e-14)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        naive = numpy_ref.softmax_naive(x)
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert any("overflow" in m for m in messages) and any("invalid" in m for m in messages)
    assert np.isnan(naive).all()  # e^1000 = inf, and inf / inf = nan
    # on small logits the naive formula is right: it is only the overflow that is wrong
    small = _logits((3, 7), scale=1.0)
    np.testing.assert_allclose(numpy_ref.softmax_naive(small), numpy_ref.softmax(small), rtol=1e-14)


def test_temperature_flattens_towards_uniform_and_sharpens_towards_one_hot():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        numpy_ref.softmax(x, temperature=1.0), special.softmax(x), rtol=1e-14
    )
    np.testing.assert_allclose(
        numpy_ref.softmax(x, temperature=2.0), special.softmax(x / 2.0), rtol=1e-14
    )
    spread = [np.ptp(numpy_ref.softmax(x, temperature=t)) for t in (0.5, 1.0, 10.0, 1e3, 1e6)]
    assert (np.diff(spread) < 0).all()  # flatter as T grows
    np.testing.assert_allclose(numpy_ref.softmax(x, temperature=1e6), [1 / 3] * 3, rtol=1e-5)
    for t in (1e-2, 1e-3, 1e-6):
        np.testing.assert_allclose(numpy_ref.softmax(x, temperature=t), [0.0, 0.0, 1.0], atol=1e-40)
    np.testing.assert_allclose(
        numpy_ref.log_softmax(x, temperature=3.0), special.log_softmax(x / 3.0), rtol=1e-14
    )


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive_and_finite(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        numpy_ref.softmax([1.0, 2.0], temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        numpy_ref.log_softmax([1.0, 2.0], temperature=temperature)


@pytest.mark.parametrize(
    "name",
    "sigmoid logsigmoid softplus tanh elu selu celu mish silu gelu gelu_tanh gaussian "
    "softsign tanhshrink".split(),
)
def test_references_emit_no_floating_point_warning_at_large_inputs(name):
    x = np.array([-1e4, -800.0, -30.0, 30.0, 800.0, 1e4])
    # Underflow is allowed: e^-1e4 rounding to 0 is the correctly rounded result (and NumPy
    # ignores underflow by default). Overflow, invalid and divide-by-zero are not.
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = numpy_ref.REFERENCES[name](x)
    assert np.isfinite(y).all()


def test_sigmoid_and_logsigmoid_are_accurate_in_both_tails():
    # (not below -708, where sigma(x) is subnormal: there SciPy's 1 / (1 + e^-x) gives 0 while
    # e^x / (1 + e^x) gives the correctly rounded subnormal, so the two rightly differ)
    x = np.array([-1e4, -700.0, -40.0, 0.0, 40.0, 1e4])
    with np.errstate(all="raise", under="ignore"):  # no overflow warning at +-1e4
        s, logs = numpy_ref.sigmoid(x), numpy_ref.logsigmoid(x)
    # To a few ulp, relative: NumPy's exp and log1p are SIMD code chosen for the CPU, SciPy's
    # come from the C library (measured: up to 3 ulp apart, with NumPy's AVX-512 code or not).
    rtol = 8 * np.finfo(np.float64).eps
    np.testing.assert_allclose(s, special.expit(x), rtol=rtol, atol=0.0)
    np.testing.assert_allclose(logs, special.log_expit(x), rtol=rtol, atol=0.0)
    assert s[2] == pytest.approx(np.exp(-40.0), rel=1e-14)  # not rounded to 0 as 1 - s(40) would be


def test_gelu_uses_erfc_and_stays_accurate_in_the_left_tail():
    x = np.array([-10.0, -20.0])
    expected = x * 0.5 * special.erfc(-x / np.sqrt(2.0))  # x Phi(x), computed without 1 + erf
    np.testing.assert_allclose(numpy_ref.gelu(x), expected, rtol=1e-13)
    assert (numpy_ref.gelu(x) < 0).all()  # the 1 + erf form rounds these to -0


def test_references_keep_float32_and_shape():
    x = np.linspace(-5, 5, 24, dtype=np.float32).reshape(2, 3, 4)
    for name, ref in numpy_ref.REFERENCES.items():
        y = ref(x)
        assert y.dtype == np.float32 and y.shape == x.shape, name
    assert numpy_ref.relu([1, -2]).dtype == np.float64  # integers become float64


def test_prelu_reference_takes_the_current_slope():
    x = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(numpy_ref.prelu(x, slope=0.5), [-1.0, 3.0])


# --------------------------------------------------------------------------------------------
# Entropy of a softmax, the textbook (naive) formulas and the ReLU derivatives


@pytest.mark.parametrize("temperature", [0.3, 1.0, 7.0])
def test_softmax_entropy_matches_scipy(temperature):
    x = _logits((5, 4))
    h = numpy_ref.softmax_entropy(x, axis=1, temperature=temperature)
    p = special.softmax(x / temperature, axis=1)
    expected = np.array([sum(-q * np.log(q) for q in row if q > 0) for row in p])
    assert h.shape == (5,)
    np.testing.assert_allclose(h, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h, scipy_entropy(p, axis=1), rtol=1e-12, atol=1e-15)


def test_softmax_entropy_limits_without_nan():
    x = np.array([1.0, 2.0, 3.0, 0.5])
    assert numpy_ref.softmax_entropy(np.zeros(4)) == pytest.approx(np.log(4), rel=1e-15)
    assert numpy_ref.softmax_entropy(x, temperature=1e8) == pytest.approx(np.log(4), rel=1e-7)
    with np.errstate(all="raise", under="ignore"):  # p = 0 exactly: no 0 * log 0 = NaN
        h = numpy_ref.softmax_entropy(x, temperature=1e-4)
    assert h == 0.0
    assert numpy_ref.softmax_entropy([0.0, -1000.0]) == 0.0


def test_textbook_sigmoid_is_right_but_warns_where_exp_overflows():
    x = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(numpy_ref.sigmoid_naive(x), special.expit(x), rtol=1e-14)
    with pytest.warns(RuntimeWarning, match="overflow"):
        y = numpy_ref.sigmoid_naive(np.array([-1000.0, 0.0]))
    np.testing.assert_array_equal(y, [0.0, 0.5])  # 1 / (1 + inf) = 0: the right limit


def test_textbook_tanh_breaks_into_nan_past_the_overflow_threshold():
    x = np.linspace(-20, 20, 81)
    np.testing.assert_allclose(numpy_ref.tanh_naive(x), np.tanh(x), rtol=1e-13, atol=1e-15)
    big = np.array([-1000.0, -710.0, 709.0, 710.0, 1000.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = numpy_ref.tanh_naive(big)
    messages = " ".join(str(w.message) for w in caught)
    assert "overflow" in messages and "invalid" in messages
    assert np.isnan(y[[0, 1, 3, 4]]).all() and y[2] == 1.0  # e^709 is still finite
    np.testing.assert_array_equal(numpy_ref.tanh(big), np.tanh(big))  # the stable one: +-1


def test_relu_and_leaky_relu_gradients_match_autograd():
    x = np.array([-5.0, -3.0, -1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0, 3.0])
    for slope in (0.01, 0.2):
        t = torch.tensor(x, requires_grad=True)
        torch.nn.functional.leaky_relu(t, slope).sum().backward()
        np.testing.assert_array_equal(numpy_ref.leaky_relu_grad(x, slope), t.grad.numpy())
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).sum().backward()
    np.testing.assert_array_equal(numpy_ref.relu_grad(x), t.grad.numpy())
    assert (numpy_ref.relu_grad([-5.0, -3.0, -2.0, -1.0]) == 0.0).all()  # the dead unit
    assert np.isnan(numpy_ref.relu_grad([np.nan])).all()
    assert np.isnan(numpy_ref.leaky_relu_grad([np.nan])).all()
    assert numpy_ref.relu_grad(np.float32([1.0])).dtype == np.float32
