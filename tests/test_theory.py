"""Mean-field theory against closed forms, independent quadrature and Monte Carlo networks."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from actlab import theory as T


def quad_gauss(g, q):
    """E[g(sqrt(q) u)] by SciPy's adaptive quadrature, split at 0 (an independent reference)."""
    f = lambda u: g(math.sqrt(q) * u) * stats.norm.pdf(u)  # noqa: E731
    return sum(
        integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
        for a, b in [(-14, 0), (0, 14)]
    )


SW = np.array([0.5, 1.0, 1.5, 1.9])
SB = np.array([0.0, 0.05, 0.3])


def test_relu_closed_forms_and_the_kink_trap():
    sw, sb = np.meshgrid(SW, SB)
    assert np.allclose(T.chi1("relu", sw, sb), sw / 2, rtol=1e-10)
    pos = sb > 0
    assert np.allclose(T.fixed_point("relu", sw, sb)[pos], (sb / (1 - sw / 2))[pos], rtol=1e-9)
    # Gauss-Hermite puts a node on the kink at 0 and gets E[relu'(u)^2] wrong; ours does not.
    x, w = np.polynomial.hermite_e.hermegauss(101)
    naive = float((w * (x > 0)).sum() / w.sum())
    assert abs(naive - 0.5) > 0.05
    assert T.chi1("relu", 1.0, 0.0, q=1.0) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_and_identity_closed_forms(slope):
    name = f"leaky_relu(slope={slope})"
    for q in [0.3, 1.0, 7.0]:
        assert T.length_map(name, q, 1.0, 0.0) == pytest.approx(q * (1 + slope**2) / 2, rel=1e-11)
        assert T.chi1(name, 1.3, 0.0, q=q) == pytest.approx(1.3 * (1 + slope**2) / 2, rel=1e-11)
    assert T.length_map("identity", 2.0, 1.5, 0.1) == pytest.approx(3.1, rel=1e-12)
    assert T.chi1("identity", 0.7, 0.2) == pytest.approx(0.7, rel=1e-12)


@pytest.mark.parametrize(
    "name", ["tanh", "gelu", "selu", "silu", "sigmoid", "elu(alpha=0.5)", "relu6", "hardtanh"]
)
def test_gaussian_integrals_agree_with_adaptive_quadrature(name):
    act = T.Phi.of(name)
    for q in [0.2, 1.0, 9.0]:

        def f(z, act=act):
            return float(act.f(np.array(z)))

        def df(z, act=act):
            return float(act.df(np.array(z)))

        assert T.length_map(name, q, 1.0, 0.0) == pytest.approx(
            quad_gauss(lambda z: f(z) ** 2, q), rel=1e-8, abs=1e-12
        )
        assert T.chi1(name, 1.0, 0.0, q=q) == pytest.approx(
            quad_gauss(lambda z: df(z) ** 2, q), rel=1e-8, abs=1e-12
        )


def test_the_correlation_maps_slope_at_one_is_chi1():
    for name, sw, sb in [
        ("tanh", 1.5, 0.05),
        ("tanh", 3.0, 0.2),
        ("relu", 1.5, 0.1),
        ("gelu", 2.0, 0.1),
    ]:
        qs = T.fixed_point(name, sw, sb)
        h = 1e-7  # ReLU's map has a (1 - c)^(3/2) term: the one-sided slope errs by ~sqrt(h)
        c_lo = T.correlation_map(name, 1 - h, qs, qs, sw, sb)
        assert T.correlation_map(name, 1.0, qs, qs, sw, sb) == pytest.approx(1.0, abs=1e-10)
        slope = (1.0 - c_lo) / h  # one-sided: the map is not defined beyond c = 1
        assert slope == pytest.approx(T.chi1(name, sw, sb), rel=1e-3), name


def test_the_length_map_approaches_its_fixed_point_at_the_rate_of_xi_q():
    name, sw, sb = "tanh", 1.5, 0.05
    qs = T.fixed_point(name, sw, sb)
    xi_q, _ = T.depth_scales(name, sw, sb)
    q, errors = 3.0, []
    for _ in range(12):
        q = float(T.length_map(name, q, sw, sb))
        errors.append(abs(q - qs))
    ratio = errors[-1] / errors[-2]
    assert ratio == pytest.approx(math.exp(-1 / xi_q), rel=1e-3)


def test_fixed_points_on_the_edge_where_the_approach_is_algebraic():
    # tanh at (1, 0): Q(q) = q - 2q^2 + ..., so q_l ~ 1/(2l) after l layers and q* = 0 is reached
    # only by the root search from below (it once ran out of Brent iterations here)
    assert T.fixed_point("tanh", 1.0, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert T.chi1("tanh", 1.0, 0.0) == pytest.approx(1.0, abs=1e-9)  # tanh'(0)^2 = 1
    q = 1.0
    for _ in range(2000):
        q = float(T.length_map("tanh", q, 1.0, 0.0))
    assert q == pytest.approx(1 / (2 * 2000), rel=0.05)  # the slow approach the search skips


def test_edge_of_chaos_of_tanh_and_relu():
    # sigma_b = 0: q* = (1 - 1/sw)/2 + ..., chi1 = 1 + O((sw - 1)^2): the root is ill-conditioned,
    # a 1e-14 error in chi1 moves it by ~1e-7.
    assert T.edge_of_chaos("tanh", 0.0) == pytest.approx(1.0, abs=1e-5)
    assert T.edge_of_chaos("relu", 0.3) == pytest.approx(2.0, abs=1e-8)
    sw = T.edge_of_chaos("tanh", np.array([0.05, 0.2]))
    assert np.all(sw > 1.0) and sw[1] > sw[0]  # the curve bends to larger sigma_w^2
    assert np.allclose(T.chi1("tanh", sw, np.array([0.05, 0.2])), 1.0, atol=1e-8)
    assert T.depth_scales("tanh", sw[0], 0.05)[1] > 1e6  # xi_c diverges on the edge


def _wide_net(name, sw, sb, width, depth, inputs, seed=0):
    """Pre-activations of a random Gaussian network (plain torch), layer by layer."""
    g = torch.Generator().manual_seed(seed)
    act = {"tanh": torch.tanh, "relu": torch.relu}[name]
    h = torch.as_tensor(inputs, dtype=torch.float64)
    zs = []
    for _ in range(depth):
        fan = h.shape[1]
        W = torch.randn(fan, width, generator=g, dtype=torch.float64) * math.sqrt(sw / fan)
        b = torch.randn(width, generator=g, dtype=torch.float64) * math.sqrt(sb)
        z = h @ W + b
        zs.append(z)
        h = act(z)
    return zs


def test_a_wide_random_network_follows_the_length_and_correlation_maps():
    name, sw, sb, width = "tanh", 2.0, 0.1, 3000
    x = np.array([[1.0, 0.0], [0.6, 0.8]]) * 1.2  # two inputs, |x|^2 = 1.44, cos = 0.6
    zs = _wide_net(name, sw, sb, width, 6, np.pad(x, ((0, 0), (0, 0))), seed=1)
    q = sw * 1.44 / 2 + sb  # first layer: q^1 = sw * mean(x^2) + sb with fan-in 2
    c = (sw * 0.6 * 1.44 / 2 + sb) / q
    for z in zs:
        zz = z.numpy()
        q_meas = (zz**2).mean(axis=1)
        c_meas = (zz[0] * zz[1]).mean() / math.sqrt(q_meas[0] * q_meas[1])
        assert q_meas.mean() == pytest.approx(q, rel=0.08)
        assert c_meas == pytest.approx(c, abs=0.04)
        c = float(T.correlation_map(name, c, q, q, sw, sb))
        q = float(T.length_map(name, q, sw, sb))


def test_saturation_fraction_of_tanh_is_its_closed_form_and_a_sample():
    q = np.array([0.5, 4.0])
    closed = 2 * (1 - stats.norm.cdf(np.arctanh(0.99) / np.sqrt(q)))
    assert np.allclose(T.saturation_fraction("tanh", q, (-0.99, 0.99)), closed, rtol=1e-9)
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2.0, 400_000)
    sample = np.mean((1 / (1 + np.exp(-z)) < 0.01) | (1 / (1 + np.exp(-z)) > 0.99))
    assert float(T.saturation_fraction("sigmoid", 4.0, (0.01, 0.99))) == pytest.approx(
        sample, abs=0.003
    )


@pytest.mark.parametrize(("width", "depth"), [(2, 6), (3, 10)])
def test_born_dead_probability_matches_explicit_relu_networks(width, depth):
    rng = np.random.default_rng(width * 100 + depth)
    nets = 40_000
    h = np.tile(np.array([0.3, -1.1, 0.7])[:width] if width <= 3 else None, (nets, 1))
    h = np.ones((nets, width)) if h is None else h
    dead = np.zeros(nets, bool)
    for _ in range(depth):
        W = rng.standard_t(3, size=(nets, width, width))  # symmetric, continuous, not normal
        h = np.maximum(np.einsum("nij,nj->ni", W, h), 0.0)
        dead |= ~(h > 0).any(axis=1)
    p = T.born_dead_probability(width, depth)
    assert p == pytest.approx(1 - (1 - 2.0**-width) ** depth, rel=1e-12)
    lo, hi = stats.binomtest(int(dead.sum()), nets).proportion_ci(0.999, method="wilson")
    assert lo <= p <= hi


def test_init_variances_are_those_of_the_layers_torch_draws():
    fan = 400
    layer = torch.nn.Linear(fan, fan)
    sw, sb = T.init_variances("torch", fan)
    assert layer.weight.detach().var().item() * fan == pytest.approx(sw, rel=0.02)
    assert layer.bias.detach().var().item() == pytest.approx(sb, rel=0.25)
    assert T.init_variances("he", fan) == (2.0, 0.0)
    assert T.init_variances("xavier", fan) == (1.0, 0.0)
    with pytest.raises(ValueError, match="init must be"):
        T.init_variances("lecun", fan)
