"""Probes against independent references: NumPy loops over units, np.linalg.svd for ranks,
hand-computed edge cases, and activations captured from models without the probe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actlab
from actlab import get_activation
from actlab.models import EnsembleMLP
from actlab.probes import (
    METRICS,
    ActivationStats,
    FeatureRank,
    GradientStats,
    MetricInfo,
    dead_fraction,
    dead_kind,
    dormant_fraction,
    effective_rank,
    ensemble_activation_metrics,
    ensemble_gradient_metrics,
    grad_norm,
    inactive_fraction,
    mean_abs,
    preactivation_stats,
    probe,
    saturated_fraction,
    saturation_band,
    sparsity,
    srank,
)

# ------------------------------------------------------------------ NumPy references (per member)


def np_dead(h):
    return np.mean([np.all(h[:, i] == 0) for i in range(h.shape[1])])


def np_inactive(z):
    return np.mean([np.all(z[:, i] < 0) for i in range(z.shape[1])])


def np_saturated(h, low, high):
    return np.mean([np.all((h[:, i] < low) | (h[:, i] > high)) for i in range(h.shape[1])])


def np_dormant(h, tau):
    m = np.array([np.mean(np.abs(h[:, i].astype(np.float64))) for i in range(h.shape[1])])
    s = m / (np.mean(m) + 1e-9)
    return np.mean(s <= tau)


def np_sparsity(h, eps=0.0):
    return np.mean([[abs(v) <= eps for v in row] for row in h])


def np_srank(f, delta=0.01):
    s = np.linalg.svd(f.astype(np.float64), compute_uv=False)
    if s.sum() == 0:
        return 0
    ratio = np.cumsum(s) / s.sum()
    # Not a near tie: LAPACK builds (torch's, NumPy's, the Gram route) differ in the last bits
    # of the singular values, which must not decide the rank compared with.
    assert np.abs(ratio - (1 - delta)).min() > 1e-9
    return int(np.argmax(ratio >= 1 - delta)) + 1


def np_erank(f):
    s = np.linalg.svd(f.astype(np.float64), compute_uv=False)
    if s.sum() == 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def np_saturated_pairs(h, low, high):
    """Share of (input, unit) pairs outside [low, high], by a loop."""
    return np.mean([[v < low or v > high for v in row] for row in h])


def np_all_metrics(h, z=None, band=None, tau=0.025):
    """Every act/* and rank/* metric of one layer, from NumPy arrays (N, D)."""
    out = {
        "act/dead_fraction": np_dead(h),
        "act/dormant_fraction": np_dormant(h, tau),
        "act/sparsity": np_sparsity(h),
        "rank/srank": np_srank(h),
        "rank/effective_rank": np_erank(h),
    }
    if band is not None:
        out["act/saturated_fraction"] = np_saturated(h, *band)
        out["act/saturated_pair_fraction"] = np_saturated_pairs(h, *band)
    if z is not None:
        z64 = z.astype(np.float64)
        out["act/inactive_fraction"] = np_inactive(z)
        out["act/preact_mean"] = z64.mean()
        out["act/preact_std"] = z64.std()
    return out


def _layer_data(E=3, B=8, D=12, seed=0):
    """Pre-activations with per-unit offsets in [-5, 5], so some units are negative on every
    input, some positive, some mixed; and ReLU / tanh outputs of them."""
    gen = torch.Generator().manual_seed(seed)
    offset = torch.linspace(-5, 5, D)[torch.randperm(D, generator=gen)]
    z = torch.randn(E, B, D, generator=gen) + offset
    return z, torch.relu(z), torch.tanh(2 * z)


# ------------------------------------------------------------------ functional vs NumPy


def test_unit_fractions_match_numpy_loops():
    z, relu_h, tanh_h = _layer_data()
    checks = [
        (dead_fraction(relu_h), [np_dead(h) for h in relu_h.numpy()]),
        (inactive_fraction(z), [np_inactive(x) for x in z.numpy()]),
        (
            saturated_fraction(tanh_h, -0.99, 0.99),
            [np_saturated(h, -0.99, 0.99) for h in tanh_h.numpy()],
        ),
        (dormant_fraction(relu_h, 0.025), [np_dormant(h, 0.025) for h in relu_h.numpy()]),
        (dormant_fraction(tanh_h, 0.1), [np_dormant(h, 0.1) for h in tanh_h.numpy()]),
        (sparsity(relu_h), [np_sparsity(h) for h in relu_h.numpy()]),
        (sparsity(tanh_h, 0.05), [np_sparsity(h, 0.05) for h in tanh_h.numpy()]),
    ]
    for got, want in checks:
        assert got.shape == (3,) and got.dtype == torch.float64
        np.testing.assert_array_equal(got.numpy(), np.array(want))
    # the data are not degenerate: fractions strictly between 0 and 1 occur
    assert 0 < dead_fraction(relu_h)[0] < 1 and 0 < inactive_fraction(z)[0] < 1


def test_ranks_match_numpy_svd():
    gen = torch.Generator().manual_seed(1)
    low_rank = torch.randn(4, 30, 3, generator=gen) @ torch.randn(4, 3, 10, generator=gen)
    features = low_rank + 0.05 * torch.randn(4, 30, 10, generator=gen)
    for delta in (0.01, 0.1):
        want = [np_srank(f, delta) for f in features.numpy()]
        assert srank(features, delta).tolist() == want
    want = [np_erank(f) for f in features.numpy()]
    np.testing.assert_allclose(effective_rank(features).numpy(), want, rtol=1e-12)
    assert srank(features).dtype == torch.float64


def test_preactivation_stats_and_gradients_match_numpy():
    z, _, _ = _layer_data(E=2, B=5, D=7, seed=2)
    mean, std = preactivation_stats(z)
    np.testing.assert_allclose(mean.numpy(), [x.astype(np.float64).mean() for x in z.numpy()])
    np.testing.assert_allclose(std.numpy(), [x.astype(np.float64).std() for x in z.numpy()])
    g = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(3))
    gn = g.numpy().astype(np.float64)
    np.testing.assert_allclose(grad_norm(g).numpy(), [np.linalg.norm(x) for x in gn], rtol=1e-6)
    np.testing.assert_allclose(mean_abs(g).numpy(), [np.abs(x).mean() for x in gn], rtol=1e-6)


def test_two_dimensional_input_is_one_member():
    z, relu_h, _ = _layer_data(E=1)
    for fn, x in [(dead_fraction, relu_h), (inactive_fraction, z), (srank, relu_h)]:
        assert fn(x[0]).shape == (1,)
        assert torch.equal(fn(x[0]), fn(x))
    with pytest.raises(ValueError, match=r"\(E, B, D\) or \(B, D\)"):
        dead_fraction(relu_h[0, 0])


# ------------------------------------------------------------------ hand-computed edge cases


def test_all_dead_layer():
    h = torch.zeros(8, 5)
    assert dead_fraction(h).item() == 1.0
    assert dormant_fraction(h, 0.025).item() == 1.0
    assert dormant_fraction(h, 0.0).item() == 1.0
    assert sparsity(h).item() == 1.0
    # a zero feature matrix has rank 0; effective rank is defined as 0 there, not NaN
    assert srank(h).item() == 0.0 and effective_rank(h).item() == 0.0
    rank = FeatureRank()
    rank.update(h)
    assert rank.compute() == {"rank/srank": 0.0, "rank/effective_rank": 0.0}


def test_rank_one_features():
    u = torch.tensor([1.0, -2.0, 3.0, 0.5, 4.0, -1.0])
    v = torch.tensor([2.0, 1.0, -1.0, 0.25, 3.0])
    f = torch.outer(u, v)  # exactly representable: the matrix has rank exactly 1
    assert srank(f).item() == 1.0
    assert effective_rank(f).item() == pytest.approx(1.0, abs=1e-12)
    rank = FeatureRank()
    rank.update(f[:4])
    rank.update(f[4:])
    got = rank.compute()
    assert got["rank/srank"].item() == 1.0
    assert got["rank/effective_rank"].item() == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_ranks():
    f = torch.diag(torch.tensor([3.0, 1.0, 0.0]))  # sigma = 3, 1, 0
    assert srank(f, 0.01).item() == 2.0  # 3/4 < 0.99, 4/4 >= 0.99
    assert srank(f, 0.3).item() == 1.0  # 3/4 >= 0.7
    assert srank(f, 0.25).item() == 1.0  # 3/4 >= 0.75: reaching 1 - delta exactly is enough
    assert srank(f, 0.0).item() == 2.0  # all the mass: the non-zero singular values
    p = np.array([0.75, 0.25])
    assert effective_rank(f).item() == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert effective_rank(torch.eye(4)).item() == pytest.approx(4.0)


def test_constant_unit_is_not_dead_and_not_sparse():
    B = 4
    h = torch.stack(
        [
            torch.full((B,), 0.5),  # constant non-zero: not dead, no zeros
            torch.zeros(B),  # dead
            torch.tensor([0.0, 1.0, 0.0, 2.0]),  # zero on half the inputs: not dead
        ],
        dim=1,
    )
    assert dead_fraction(h).item() == pytest.approx(1 / 3)
    assert sparsity(h).item() == pytest.approx((0 + B + B / 2) / (3 * B))
    # outputs that are negative (leaky ReLU, tanh) or -0.0 on every input
    h = torch.tensor([[-0.01, -0.0, -1.0], [-0.02, 0.0, 0.0]])
    assert dead_fraction(h).item() == pytest.approx(1 / 3)  # only the exact zeros: unit 1
    assert sparsity(h).item() == pytest.approx(3 / 6)


def test_saturated_on_some_inputs_only_is_not_saturated():
    h = torch.tensor(
        [
            [0.995, -0.995, 0.99],
            [0.999, 0.999, 0.995],
            [0.5, -1.0, 0.999],
        ]
    )
    # unit 0 is unsaturated on input 2; unit 1 is outside the band on every input (either side);
    # unit 2 sits exactly on the band's edge once (|h| > 0.99 is strict)
    assert saturated_fraction(h, -0.99, 0.99).item() == pytest.approx(1 / 3)


def test_hand_computed_dormancy_inactivity_and_moments():
    h = torch.tensor([[1.0, -1.0, 2.0, 0.01], [1.0, 1.0, 0.0, -0.01]])
    # E|h_i| = 1, 1, 1, 0.01; mean 0.7525; s_3 = 0.0133 <= 0.025 but > 0.01
    assert dormant_fraction(h, 0.025).item() == 0.25
    assert dormant_fraction(h, 0.01).item() == 0.0
    z = torch.tensor([[-1.0, -1.0], [-2.0, 0.0]])
    assert inactive_fraction(z).item() == 0.5  # z = 0 is not < 0
    mean, std = preactivation_stats(torch.tensor([[1.0, 3.0], [5.0, 7.0]]))
    assert mean.item() == 4.0 and std.item() == pytest.approx(math.sqrt(5.0))


def test_nan_outputs_are_never_dead_or_saturated():
    h = torch.tensor([[math.nan, 0.0], [math.nan, 0.0]])
    assert dead_fraction(h).item() == 0.5
    assert saturated_fraction(h, -0.99, 0.99).item() == 0.0


def test_saturation_band_and_dead_kind():
    act = get_activation
    assert saturation_band(act("tanh")) == (-0.99, 0.99)
    assert saturation_band(act("sigmoid")) == (0.01, 0.99)
    assert saturation_band(act("hardtanh")) == pytest.approx((-0.98, 0.98))
    assert saturation_band(act("relu6")) == pytest.approx((0.06, 5.94))
    for name in ("relu", "sine", "gaussian", "identity", "softsign"):
        assert saturation_band(act(name)) is None, name
    for name in ("relu", "relu6", "hardsigmoid", "hardswish", "hardshrink(0.1)"):
        assert dead_kind(act(name)) == "dead", name
    for name in ("leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "softplus"):
        assert dead_kind(act(name)) == "inactive", name
    for name in ("tanh", "sigmoid", "sine", "identity", "gaussian", "leaky_relu(0.5)"):
        assert dead_kind(act(name)) is None, name
    # the rule: negative-side slope below a third of the positive side's
    assert dead_kind(act("leaky_relu(0.32)")) == "inactive"
    assert dead_kind(act("leaky_relu(0.34)")) is None


# ------------------------------------------------------------------ accumulators


def _random_splits(n, gen, max_parts=5):
    cuts = torch.randperm(n - 1, generator=gen)[: max_parts - 1] + 1
    bounds = [0, *sorted(cuts.tolist()), n]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_activation_stats_over_batches_equal_all_at_once(seed):
    gen = torch.Generator().manual_seed(seed)
    z, _, _ = _layer_data(E=2, B=40, D=9, seed=seed)
    z = z + 100.0  # a large mean: the moments must not cancel catastrophically
    h = torch.tanh(z - 100.0)
    stats = ActivationStats(-0.99, 0.99, tau=0.1, kind="inactive")
    for a, b in _random_splits(40, gen):
        stats.update(h[:, a:b], z=z[:, a:b])
    got = stats.compute()
    for m in range(2):
        want = np_all_metrics(h[m].numpy(), z[m].numpy(), band=(-0.99, 0.99), tau=0.1)
        want["act/off_fraction"] = want["act/inactive_fraction"]
        for key in ("rank/srank", "rank/effective_rank"):
            del want[key]
        assert set(got) == set(want)
        for key, value in want.items():
            assert got[key][m].item() == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_activation_stats_remember_every_batch():
    """Hand-made batches: unit 0 fires in the first batch only, unit 1 in the last only. Over
    all inputs neither is dead nor dormant; a statistic kept for the last batch alone would say
    unit 0 is both."""
    first = torch.tensor([[2.0, 0.0, 1.0], [4.0, 0.0, 1.0]])
    last = torch.tensor([[0.0, 3.0, 1.0], [0.0, 3.0, 1.0], [0.0, 3.0, 1.0]])
    stats = ActivationStats(tau=0.1)
    stats.update(first)
    stats.update(last)
    got = stats.compute()
    # E|h| = (6/5, 9/5, 1): mean 4/3, scores 0.9, 1.35, 0.75
    assert got["act/dead_fraction"].item() == 0.0
    assert got["act/dormant_fraction"].item() == 0.0
    assert got["act/sparsity"].item() == pytest.approx(5 / 15)
    assert dormant_fraction(torch.cat([first, last]), 0.1).item() == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_feature_rank_over_batches_equals_svd_of_all(seed):
    gen = torch.Generator().manual_seed(seed)
    f = torch.randn(3, 50, 4, generator=gen) @ torch.randn(3, 4, 12, generator=gen)
    f = torch.relu(f + 0.02 * torch.randn(3, 50, 12, generator=gen))
    rank = FeatureRank(delta=0.01)
    for a, b in _random_splits(50, gen):
        rank.update(f[:, a:b])
    got = rank.compute()
    assert got["rank/srank"].tolist() == [np_srank(x) for x in f.numpy()]
    np.testing.assert_allclose(
        got["rank/effective_rank"].numpy(), [np_erank(x) for x in f.numpy()], rtol=1e-9
    )


def test_gradient_stats_accumulate():
    gen = torch.Generator().manual_seed(4)
    gs = [torch.randn(2, 3, 4, generator=gen) for _ in range(5)]
    stats = GradientStats("weight")
    for g in gs:
        stats.update({"fc": g, "fc2": 2 * g[:, :1]})
    got = stats.compute()
    assert stats.layers == ["fc", "fc2"] and got["grad/weight_norm"].shape == (2, 2)
    arr = np.stack([g.numpy().astype(np.float64) for g in gs])  # (T, E, 3, 4)
    for m in range(2):
        norms = [np.linalg.norm(a[m]) for a in arr]
        want_norm = np.sqrt(np.mean(np.square(norms)))
        assert got["grad/weight_norm"][0, m].item() == pytest.approx(want_norm, rel=1e-9)
        want_abs = np.abs(arr[:, m]).mean()
        assert got["grad/weight_mean_abs"][0, m].item() == pytest.approx(want_abs, rel=1e-9)
        assert got["grad/weight_mean_abs"][1, m].item() == pytest.approx(
            2 * np.abs(arr[:, m, :1]).mean(), rel=1e-9
        )


def _state_sizes(*accumulators):
    """Shapes of every tensor an accumulator holds (recursing into tuples, lists and dicts)."""
    sizes = []

    def walk(x):
        if isinstance(x, torch.Tensor):
            sizes.append(tuple(x.shape))
        elif isinstance(x, (tuple, list)):
            for item in x:
                walk(item)
        elif isinstance(x, dict):
            for item in x.values():
                walk(item)

    for acc in accumulators:
        walk(vars(acc))
    return sizes


def test_accumulator_memory_does_not_grow():
    z, h, _ = _layer_data(E=2, B=6, D=5)
    stats, rank, grads = ActivationStats(-0.9, 0.9), FeatureRank(), GradientStats("act")
    sizes = []
    for step in range(50):
        stats.update(h, z=z)
        rank.update(h)
        grads.update({"layer": h})
        if step in (0, 49):
            sizes.append(_state_sizes(stats, rank, grads))
    assert sizes[0] == sizes[1] and sizes[0]


def test_reset_accumulators_equal_fresh_ones():
    """After reset, an accumulator fed new data gives what a fresh one gives: nothing of the
    earlier data (counts, sums, Gram matrix, layer list) is left."""
    z, h, _ = _layer_data(E=2, B=7, D=6, seed=5)
    z2, h2, _ = _layer_data(E=2, B=9, D=6, seed=6)
    makers = [
        (lambda: ActivationStats(-0.9, 0.9, kind="dead"), lambda a, x, y: a.update(x, z=y)),
        (FeatureRank, lambda a, x, y: a.update(x)),
        (lambda: GradientStats("act"), lambda a, x, y: a.update({"layer": x})),
    ]
    for make, feed in makers:
        used, fresh = make(), make()
        feed(used, 10.0 * h, z - 3.0)  # earlier data, unlike the later
        if isinstance(used, GradientStats):
            used.update({"other": h})
        used.reset()
        feed(used, h2, z2)
        feed(fresh, h2, z2)
        got, want = used.compute(), fresh.compute()
        assert set(got) == set(want) and want
        for key in want:
            assert torch.equal(got[key], want[key]), (type(used).__name__, key)
        if isinstance(used, GradientStats):
            assert used.layers == ["layer"]


def test_accumulator_shape_mismatch_and_reset():
    stats = ActivationStats()
    stats.update(torch.ones(3, 4))
    with pytest.raises(ValueError, match="does not match"):
        stats.update(torch.ones(3, 5))
    stats.reset()
    assert stats.compute() == {}
    stats.update(torch.zeros(2, 5))
    assert stats.compute()["act/dead_fraction"].item() == 1.0


# ------------------------------------------------------------------ metadata


def test_metric_metadata():
    assert "act/dead_fraction" in METRICS and "rank/srank" in METRICS
    for key, info in METRICS.items():
        assert isinstance(info, MetricInfo) and info.key == key
        probe_name, _, stat = key.partition("/")
        assert probe_name in ("act", "rank", "grad") and stat
        assert info.bounds[0] <= info.bounds[1] and info.definition
    with pytest.raises(AttributeError):
        METRICS["act/sparsity"].unit = "x"  # frozen


# ------------------------------------------------------------------ probe() on nn.Modules


def _mlp():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 2)
    )
    with torch.no_grad():
        model[0].bias[:4] = -20.0  # four dead ReLU units
        model[2].weight[:3] *= 30.0  # three tanh units driven far into saturation
        model[2].bias[:3] = 40.0
    return model


def _batches(shape, n=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(*shape, generator=gen), torch.randn(shape[0], generator=gen)) for _ in range(n)
    ]


def _hooks_removed(model):
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks and not module._backward_pre_hooks
    for param in model.parameters():
        assert not getattr(param, "_post_accumulate_grad_hooks", None)


def _check(got, want, keys=None):
    for key in keys or want:
        assert got[key].item() == pytest.approx(want[key], rel=1e-6, abs=1e-9), key


def _grad_refs(grads):
    """grad/*_norm (RMS over steps of the L2 norm) and grad/*_mean_abs of a list of arrays."""
    arr = [g.astype(np.float64) for g in grads]
    norm = np.sqrt(np.mean([np.sum(g * g) for g in arr]))
    return norm, np.concatenate([np.abs(g).ravel() for g in arr]).mean()


def test_probe_mlp_matches_manual_capture():
    model = _mlp()
    batches = _batches((10, 5))
    with probe(model) as p:
        for x, y in batches:
            loss = (model(x).sum(-1) - y).square().mean()
            loss.backward()
            model.zero_grad()
    got = p.compute()
    _hooks_removed(model)
    assert set(p.sites) == {"1", "3"} and set(got) == {"0", "1", "2", "3", "4"}

    # reference: the same batches through the submodules, with retained gradients
    cap = {k: [] for k in ("z1", "h1", "z3", "h3", "g1", "g3", "w0", "w2")}
    for x, y in batches:
        z1 = model[0](x)
        h1 = model[1](z1)
        z3 = model[2](h1)
        h3 = model[3](z3)
        h1.retain_grad()
        h3.retain_grad()
        (model[4](h3).sum(-1) - y).square().mean().backward()
        for key, t in [("z1", z1), ("h1", h1), ("z3", z3), ("h3", h3)]:
            cap[key].append(t.detach().numpy())
        cap["g1"].append(h1.grad.numpy())
        cap["g3"].append(h3.grad.numpy())
        cap["w0"].append(model[0].weight.grad.numpy().copy())
        cap["w2"].append(model[2].weight.grad.numpy().copy())
        model.zero_grad()
    cat = {k: np.concatenate(v) for k, v in cap.items() if k[0] in "zh"}
    want1 = np_all_metrics(cat["h1"], cat["z1"])
    want3 = np_all_metrics(cat["h3"], cat["z3"], band=(-0.99, 0.99))
    _check(got["1"], want1)
    _check(got["3"], want3)
    assert got["1"]["act/dead_fraction"].item() == 0.25  # the four units made dead
    assert got["3"]["act/saturated_fraction"].item() == 0.25  # the three saturated ones
    assert got["1"]["act/off_fraction"] == got["1"]["act/dead_fraction"]  # ReLU: "dead"
    assert "act/off_fraction" not in got["3"]  # tanh: no dead region
    for site, g in (("1", "g1"), ("3", "g3")):
        norm, mabs = _grad_refs(cap[g])
        _check(got[site], {"grad/act_norm": norm, "grad/act_mean_abs": mabs})
    for layer, w in (("0", "w0"), ("2", "w2")):
        norm, mabs = _grad_refs(cap[w])
        _check(got[layer], {"grad/weight_norm": norm, "grad/weight_mean_abs": mabs})
    assert set(p.to_frame().columns) == {"module", "metric", "value"}
    for metrics in got.values():
        assert set(metrics) <= set(METRICS)


def _outputs_and_grads(model, x, use_probe, seed=0, **kwargs):
    model.zero_grad()
    torch.manual_seed(seed)  # same dropout masks with and without the probe
    if use_probe:
        with probe(model, **kwargs):
            out = model(x)
            out.square().sum().backward()
    else:
        out = model(x)
        out.square().sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


class Block(nn.Module):
    """A custom block whose activation is a function call, invisible to module hooks."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(x))


def _cnn():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU()),
        Block(),
        nn.Sequential(nn.Flatten(), nn.Linear(6 * 5 * 5, 8), nn.Tanh()),
        nn.Linear(8, 3),
    )
    with torch.no_grad():
        model[0][0].bias[0] = -50.0  # a dead channel
        model[1].conv.bias[:2] = -50.0  # two dead channels behind the functional relu
    return model


def test_functional_activation_is_not_seen_by_module_hooks():
    model = _cnn()
    with probe(model) as p:
        model(torch.randn(2, 2, 5, 5))
    assert set(p.sites) == {"0.1", "2.2"}  # Block's F.relu is invisible
    _hooks_removed(model)


def test_probe_cnn_matches_manual_capture():
    model = _cnn()
    batches = _batches((3, 2, 5, 5), seed=1)
    with probe(model, preactivations={"1.conv": "relu"}) as p:
        for x, y in batches:
            (model(x).sum(-1) - y).square().mean().backward()
            model.zero_grad()
    got = p.compute()
    _hooks_removed(model)
    assert set(p.sites) == {"0.1", "1.conv", "2.2"}

    def channels_as_units(t):  # (B, C, H, W) -> (B*H*W, C)
        return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).detach().numpy()

    cap = {k: [] for k in ("z0", "h0", "z1", "h1", "z2", "h2", "gz1", "gh0")}
    for x, y in batches:
        z0 = model[0][0](x)
        h0 = torch.relu(z0)
        z1 = model[1].conv(h0)
        h1 = torch.relu(z1)
        z2 = model[2][1](model[2][0](h1))
        h2 = torch.tanh(z2)
        z1.retain_grad()
        h0.retain_grad()
        (model[3](h2).sum(-1) - y).square().mean().backward()
        model.zero_grad()
        for key, t in [("z0", z0), ("h0", h0), ("z1", z1), ("h1", h1)]:
            cap[key].append(channels_as_units(t))
        cap["z2"].append(z2.detach().numpy())
        cap["h2"].append(h2.detach().numpy())
        cap["gz1"].append(z1.grad.numpy())
        cap["gh0"].append(h0.grad.numpy())
    cat = {k: np.concatenate(v) for k, v in cap.items() if not k.startswith("g")}
    _check(got["0.1"], np_all_metrics(cat["h0"], cat["z0"]))
    _check(got["1.conv"], np_all_metrics(cat["h1"], cat["z1"]))
    _check(got["2.2"], np_all_metrics(cat["h2"], cat["z2"], band=(-0.99, 0.99)))
    assert got["0.1"]["act/dead_fraction"].item() == 0.25
    assert got["1.conv"]["act/dead_fraction"].item() == pytest.approx(2 / 6)
    norm, mabs = _grad_refs(cap["gz1"])  # dL/dz for a preactivation site
    _check(got["1.conv"], {"grad/preact_norm": norm, "grad/preact_mean_abs": mabs})
    norm, mabs = _grad_refs(cap["gh0"])
    _check(got["0.1"], {"grad/act_norm": norm, "grad/act_mean_abs": mabs})

    x = batches[0][0]
    out0, grads0 = _outputs_and_grads(model, x, False)
    out1, grads1 = _outputs_and_grads(model, x, True, preactivations={"1.conv": "relu"})
    assert torch.equal(out0, out1)
    assert all(torch.equal(a, b) for a, b in zip(grads0, grads1, strict=True))


def _transformer():
    torch.manual_seed(2)
    return nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)


def test_probe_transformer_function_activation_train_mode():
    layer = _transformer().train()
    assert not isinstance(layer.activation, nn.Module)  # F.relu, a plain function
    batches = _batches((4, 5, 16), seed=2)
    zs, gs = [], []

    def capture(module, args, out):  # the test's own hook, in the same (dropout) forward
        zs.append(out.detach().reshape(-1, 32).numpy().copy())
        out.register_hook(lambda g: gs.append(g.reshape(-1, 32).numpy().copy()))

    with probe(layer) as p:
        handle = layer.linear1.register_forward_hook(capture)
        for x, _ in batches:
            layer(x).square().sum().backward()
            layer.zero_grad()
        handle.remove()
    got = p.compute()
    _hooks_removed(layer)
    assert set(p.sites) == {"linear1"}
    z = np.concatenate(zs)
    _check(got["linear1"], np_all_metrics(np.maximum(z, 0), z))
    norm, mabs = _grad_refs(gs)
    _check(got["linear1"], {"grad/preact_norm": norm, "grad/preact_mean_abs": mabs})
    assert {"linear2", "self_attn.in_proj_weight", "norm1"} <= set(got)  # weight gradients

    x = batches[0][0]
    out0, grads0 = _outputs_and_grads(layer, x, False, seed=5)
    out1, grads1 = _outputs_and_grads(layer, x, True, seed=5)
    assert torch.equal(out0, out1)
    assert all(torch.equal(a, b) for a, b in zip(grads0, grads1, strict=True))


def test_probe_transformer_eval_mode_no_grad():
    """In eval mode without grad, the layer would take its fused fast path, bypassing linear1;
    torch 2.13 skips the fast path when submodules carry forward hooks, so the probe still sees
    linear1, and the outputs agree with the fused path."""
    layer = _transformer().eval()
    x = torch.randn(4, 5, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        fused = layer(x)
        with probe(layer) as p:
            probed = layer(x)
    torch.testing.assert_close(probed, fused)
    assert p.missing == []
    z = F.linear(
        layer.norm1(x + layer.self_attn(x, x, x)[0]), layer.linear1.weight, layer.linear1.bias
    )
    z = z.detach().reshape(-1, 32).numpy()
    _check(p.compute()["linear1"], np_all_metrics(np.maximum(z, 0), z))


def test_probe_selection_by_pattern_names_and_types():
    model = _mlp()
    x = torch.randn(6, 5)
    with probe(model, pattern=r"^[02]$", weight_grads=False) as p:
        model(x)
    assert set(p.sites) == {"0", "2"}  # Linear outputs, by name
    with probe(model, modules=["3"], rank=False) as p:
        model(x)
    assert set(p.compute()) == {"3"} and "rank/srank" not in p.compute()["3"]
    with probe(model, types=[nn.Tanh]) as p:
        model(x)
    assert set(p.sites) == {"3"}
    with pytest.raises(ValueError, match="no module named"):
        probe(model, modules=["9"])
    with pytest.raises(ValueError, match="not both"):
        probe(model, modules=["1"], pattern="1")
    _hooks_removed(model)


def test_probe_reset_forgets_everything_seen_before():
    """After Probe.reset, the statistics are those of a probe attached afterwards: activation
    sites and weight gradients alike, with the hooks still attached."""
    model = _mlp()
    early, late = _batches((10, 5), seed=3), _batches((10, 5), seed=4)

    def feed(batches):
        for x, y in batches:
            (model(x).sum(-1) - y).square().mean().backward()
            model.zero_grad()

    with probe(model) as used:
        feed(early)
        used.reset()
        assert used.missing == ["1", "3"]  # nothing seen since the reset
        feed(late)
    with probe(model) as fresh:
        feed(late)
    got, want = used.compute(), fresh.compute()
    assert got.keys() == want.keys() == {"0", "1", "2", "3", "4"}
    for name in want:
        assert got[name].keys() == want[name].keys()
        for key in want[name]:
            assert torch.equal(got[name][key], want[name][key]), (name, key)


def test_probe_close_without_context_and_shared_module():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 8), relu, nn.Linear(8, 4), relu)  # one module, 2 widths
    p = probe(model)
    model(torch.randn(5, 3))
    p.close()
    p.close()  # idempotent
    _hooks_removed(model)
    assert set(p.compute()) == {"1[8]", "1[4]"}  # no backward: no weight gradients


def test_probe_memory_does_not_grow_with_steps():
    model = _cnn()
    x = torch.randn(2, 2, 5, 5)
    sizes = []
    with probe(model, preactivations={"1.conv": "relu"}) as p:
        for step in range(50):
            model(x).square().sum().backward()
            model.zero_grad()
            if step in (0, 49):
                accs = [p.weight_stats]
                for site in p.sites.values():
                    for entry in site.entries.values():
                        accs += [entry.stats, entry.rank, entry.grad]
                sizes.append(_state_sizes(*accs))
    assert sizes[0] == sizes[1] and sizes[0]


# ------------------------------------------------------------------ the ensemble engine


def test_ensemble_activation_metrics_agree_with_each_member():
    acts = ["relu", "relu", "tanh", "leaky_relu", "sigmoid"]
    model = EnsembleMLP(
        3,
        [10, 7],
        2,
        acts,
        seeds=[0, 1, 2, 3, 4],
        init="mean_field",
        sigma_w2=4.0,
        sigma_b2=4.0,
        dtype=torch.float64,
    )
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = ensemble_activation_metrics(model, x, tau=0.1)
    assert set(got) <= set(METRICS)
    for value in got.values():
        assert value.shape == (5, 2)  # (E, n_hidden)
    plain = {  # each member's layers rebuilt from torch alone, not from actlab's export
        "relu": torch.relu,
        "tanh": torch.tanh,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "sigmoid": torch.sigmoid,
    }
    for m, name in enumerate(acts):
        h = x
        for layer in range(2):
            z = F.linear(h, model.weight(layer)[m], model.bias(layer)[m])
            h = plain[name](z)
            band = {"tanh": (-0.99, 0.99), "sigmoid": (0.01, 0.99)}.get(name)
            want = np_all_metrics(h.detach().numpy(), z.detach().numpy(), band=band, tau=0.1)
            kind = {"relu": "dead", "leaky_relu": "inactive"}.get(name)
            want["act/off_fraction"] = (
                math.nan
                if kind is None
                else want["act/dead_fraction" if kind == "dead" else "act/inactive_fraction"]
            )
            if band is None:
                want["act/saturated_fraction"] = math.nan
                want["act/saturated_pair_fraction"] = math.nan
            for key, value in want.items():
                assert got[key][m, layer].item() == pytest.approx(
                    value, rel=1e-9, abs=1e-12, nan_ok=True
                ), (name, layer, key)
    assert got["act/dead_fraction"][:2].sum() > 0  # the data exercise the dead case
    pairs = got["act/saturated_pair_fraction"][2:3]  # tanh: partly saturated, input by input
    assert (pairs > got["act/saturated_fraction"][2:3]).any()


def test_ensemble_gradient_metrics():
    model = EnsembleMLP(2, [4], 1, "tanh", seeds=3)
    grad = torch.randn(model.flat.numel(), generator=torch.Generator().manual_seed(0))
    got = ensemble_gradient_metrics(model, grad)
    assert got["grad/weight_norm"].shape == (3, 2)  # (E, n_layers)
    w1 = model.weight(1, grad)[2].numpy().astype(np.float64)  # (out, in) of member 2
    assert got["grad/weight_norm"][2, 1].item() == pytest.approx(np.linalg.norm(w1))
    assert got["grad/weight_mean_abs"][2, 1].item() == pytest.approx(np.abs(w1).mean())


def test_public_import():
    assert actlab.probes.METRICS is METRICS


def test_probe_inplace_activation_reads_preactivation_before_it_is_overwritten():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 1))
    x = torch.randn(9, 4)
    z = model[0](x).detach().numpy()
    with probe(model) as p:
        model(x).sum().backward()
    _check(p.compute()["1"], np_all_metrics(np.maximum(z, 0), z))
    assert z.mean() < 0  # so a mean read after the in-place relu (>= 0) would fail above
    out0, grads0 = _outputs_and_grads(model, x, False)
    out1, grads1 = _outputs_and_grads(model, x, True)
    assert torch.equal(out0, out1)
    assert all(torch.equal(a, b) for a, b in zip(grads0, grads1, strict=True))
