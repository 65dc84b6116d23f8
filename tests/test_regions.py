"""Exact linear regions along a segment, against independent references.

References: plain ``nn.Sequential`` members (``EnsembleMLP.member``) sampled on a fine grid of
``t`` (activation patterns read by forward hooks, the output's slope by forward-mode autograd),
hand-built networks with known kinks, the tent map in NumPy, the arccos formula, and Monte Carlo
over random initialisations.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from actlab.activations import ActivationModule, get_activation
from actlab.models import EnsembleMLP
from actlab.regions import (
    bias_averaged_breakpoints,
    count_pieces,
    ensemble_from_layers,
    expected_first_layer_breakpoints,
    piecewise_linear_activations,
    sawtooth_network,
)

F64 = torch.float64


def t64(*rows):
    return torch.tensor(rows, dtype=F64)


def close(a, b, atol=1e-12):
    """Same breakpoints up to rounding (bmm on other batch shapes may round differently)."""
    return a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=0)


def grid(n):
    """``n`` points in (0, 1), offset so that none is a dyadic rational (where the sawtooth's and
    hand-built networks' kinks sit)."""
    return (torch.arange(n, dtype=F64) + 0.3711) / n


def line(x0, x1, t):
    x0, x1 = torch.as_tensor(x0, dtype=F64), torch.as_tensor(x1, dtype=F64)
    return x0 + t[:, None] * (x1 - x0)


def brute_patterns(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Activation pattern of every hidden unit at every row of ``x``: which linear piece of its
    activation the unit is on (the number of kinks below its pre-activation), ``(N, units)``."""
    captured = []
    hooks = [
        mod.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach()))
        for mod in seq
        if isinstance(mod, ActivationModule)
    ]
    with torch.no_grad():
        seq(x)
    for h in hooks:
        h.remove()
    acts = [mod.activation for mod in seq if isinstance(mod, ActivationModule)]
    cols = []
    for z, act in zip(captured, acts, strict=True):
        piece = torch.zeros_like(z, dtype=torch.int64)
        for k in act.kinks:
            piece += (z > k).to(torch.int64)
        cols.append(piece)
    return torch.cat(cols, dim=1)


def changes(rows: torch.Tensor) -> torch.Tensor:
    """Indices ``i`` where row ``i + 1`` differs from row ``i``."""
    return torch.nonzero((rows[1:] != rows[:-1]).any(dim=1)).flatten()


def brute_affine(seq: nn.Sequential, x0, x1, t: torch.Tensor) -> torch.Tensor:
    """The output's affine map in ``t`` at every grid point, ``(N, 2 * out)``: slope ``df/dt`` by
    forward-mode autograd and intercept ``f - t df/dt``."""
    x = line(x0, x1, t)
    direction = (torch.as_tensor(x1, dtype=F64) - torch.as_tensor(x0, dtype=F64)).expand_as(x)
    with torch.no_grad():
        f, slope = torch.func.jvp(seq, (x,), (direction.contiguous(),))
    return torch.cat([slope, f - t[:, None] * slope], dim=1)


def affine_changes(affine: torch.Tensor, rtol=1e-7) -> int:
    scale = affine.abs().max()
    return int(((affine[1:] - affine[:-1]).abs() > rtol * scale).any(dim=1).sum())


def random_ensemble(acts, sizes=(2, 4, 4, 4, 1), seed=0, sigma_w2=3.0, sigma_b2=0.5):
    model = EnsembleMLP(
        sizes[0],
        list(sizes[1:-1]),
        sizes[-1],
        acts,
        [seed + i for i in range(len(acts))],
        init="mean_field",
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
        dtype=F64,
    )
    return model


# ------------------------------------------------------------------------ hand-built networks
def test_single_relu_neuron_kink_where_expected():
    # z = 2x - 1 on x(t) = -1 + 2t: the kink at x = 1/2 is t = 3/4.
    layers = [(t64([2.0]), t64(-1.0)), (t64([3.0]), t64(0.5))]
    p = count_pieces(ensemble_from_layers([layers], "relu"), [-1.0], [1.0])
    assert p.breakpoints[0].tolist() == [0.75]
    assert p.regions.tolist() == [2] and p.pieces.tolist() == [2]
    assert p.piece_breakpoints[0].tolist() == [0.75]
    # The kink outside the segment: one region.
    p = count_pieces(ensemble_from_layers([layers], "relu"), [0.6], [2.0])
    assert p.regions.tolist() == [1] and p.breakpoints[0].numel() == 0


def test_pattern_regions_and_linear_pieces_differ_where_the_output_ignores_a_unit():
    # Two units with kinks at x = 1/4 and x = 3/4; the second feeds the output with weight 0.
    layers = [(t64([1.0], [1.0]), t64(-0.25, -0.75)), (t64([2.0, 0.0]), t64(0.0))]
    p = count_pieces(ensemble_from_layers([layers], "relu"), [0.0], [1.0])
    assert p.breakpoints[0].tolist() == [0.25, 0.75]
    assert p.regions.tolist() == [3]
    assert p.piece_breakpoints[0].tolist() == [0.25]
    assert p.pieces.tolist() == [2]


def test_a_jump_with_equal_slopes_is_a_new_piece():
    # binary_step: slope 0 on both sides of its kink, but the value jumps from 0 to 1.
    layers = [(t64([1.0]), t64(-0.5)), (t64([1.0]), t64(0.0))]
    p = count_pieces(ensemble_from_layers([layers], "binary_step"), [0.0], [1.0])
    assert p.regions.tolist() == [2] and p.pieces.tolist() == [2]


def test_units_crossing_at_the_same_point_make_one_breakpoint():
    # Both units have their kink at x = 1/2 (exactly, and within TOL): one pattern change.
    for w2, b2 in [(2.0, -1.0), (1.0, -0.5 - 1e-14)]:
        layers = [(t64([1.0], [w2]), t64(-0.5, b2)), (t64([1.0, 1.0]), t64(0.0))]
        p = count_pieces(ensemble_from_layers([layers], "relu"), [0.0], [1.0])
        assert p.regions.tolist() == [2] and p.pieces.tolist() == [2]
        assert torch.allclose(p.breakpoints[0], t64(0.5), atol=1e-13)


def test_a_deeper_kink_at_an_existing_breakpoint_up_to_rounding_counts_once():
    # Layer 1: relu(x - 1/7) and relu(x) (= x on [0, 1]); layer 2: relu(0.3 x - 0.3/7) has its
    # kink at x = 1/7 too, which float64 puts 1 ulp off layer 1's breakpoint.
    layers = [
        (t64([1.0], [1.0]), t64(-1 / 7, 0.0)),
        (t64([0.0, 0.3]), t64(-0.3 / 7)),
        (t64([1.0]), t64(0.0)),
    ]
    model = ensemble_from_layers([layers], "relu")
    assert count_pieces(model, [0.0], [1.0], tol=0.0).regions.item() == 3  # the rounding
    p = count_pieces(model, [0.0], [1.0])
    assert p.regions.tolist() == [2] and p.regions_by_layer.tolist() == [[2, 2]]


def test_a_kink_at_the_end_of_the_segment_is_no_breakpoint():
    # Member 0's unit z = 1 - x reaches its kink exactly at t = 1 (x1 = 1); member 1 has more
    # regions, so member 0's partition is padded: the padding must not add a piece.
    member0 = [(t64([-1.0]), t64(1.0)), (t64([1.0]), t64(0.0))]
    member1 = [(t64([1.0]), t64(-0.5)), (t64([1.0]), t64(0.0))]
    p = count_pieces(ensemble_from_layers([member0, member1], "relu"), [0.0], [1.0])
    assert p.regions.tolist() == [1, 2] and p.pieces.tolist() == [1, 2]
    assert p.piece_breakpoints[0].numel() == 0


def test_identity_network_is_one_piece():
    model = random_ensemble(["identity"] * 3, sizes=(3, 8, 8, 2))
    p = count_pieces(model, [-5.0, 1.0, 2.0], [4.0, -3.0, 0.5])
    assert p.regions.tolist() == [1, 1, 1] and p.pieces.tolist() == [1, 1, 1]
    assert p.regions_by_layer.tolist() == [[1, 1]] * 3


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 6, 8])
def test_sawtooth_has_two_to_the_depth_pieces_and_is_the_tent_map(depth):
    model = ensemble_from_layers([sawtooth_network(depth)], "relu")
    assert model.sizes == (1, *([2] * depth), 1)
    p = count_pieces(model, [0.0], [1.0])
    assert p.regions.tolist() == [2**depth] and p.pieces.tolist() == [2**depth]
    expected = torch.arange(1, 2**depth, dtype=F64) / 2**depth
    assert torch.allclose(p.breakpoints[0], expected, atol=1e-12, rtol=0)
    assert torch.allclose(p.piece_breakpoints[0], expected, atol=1e-12, rtol=0)
    assert p.regions_by_layer.tolist() == [[2 ** (k + 1) for k in range(depth)]]
    x = np.linspace(0.0, 1.0, 4097)
    tent = x.copy()
    for _ in range(depth):
        tent = np.minimum(2 * tent, 2 - 2 * tent)
    with torch.no_grad():
        out = model.member(0)(torch.from_numpy(x)[:, None]).squeeze(1).numpy()
    np.testing.assert_allclose(out, tent, atol=1e-12, rtol=0)


def test_sawtooth_rejects_bad_depth():
    for bad in [0, -1, 2.0, True]:
        with pytest.raises(ValueError, match="depth"):
            sawtooth_network(bad)


# ------------------------------------------------------------------------ brute force
PWL_MIX = [
    "relu",
    "relu",
    "leaky_relu(slope=0.2)",
    "hardtanh",
    "relu6",
    "prelu",
    "hardsigmoid",
    "softshrink",
    "identity",
]


@pytest.mark.parametrize(
    "acts, seed",
    [
        (["relu"] * 6, 0),
        (["leaky_relu"] * 4 + ["leaky_relu(slope=-0.5)"] * 2, 1),
        (["hardtanh"] * 3 + ["relu6"] * 3, 2),
        (PWL_MIX, 3),
        (PWL_MIX[::-1], 4),
    ],
)
def test_exact_count_against_dense_sampling(acts, seed):
    model = random_ensemble(acts, sizes=(2, 5, 4, 3, 1), seed=10 * seed, sigma_w2=6.0)
    if "prelu" in acts:  # a learned slope, not the initial one: read from the model
        with torch.no_grad():
            for layer in range(model.n_hidden):
                model.act_params(layer)[acts.index("prelu")] = -0.7 + 0.3 * layer
    x0, x1 = [-4.0, -3.0], [3.5, 4.0]
    p = count_pieces(model, x0, x1)
    n = 200_000
    t = grid(n)
    resolved = 0
    for m in range(model.E):
        seq = model.member(m)
        seen = changes(brute_patterns(seq, line(x0, x1, t)))
        exact = p.breakpoints[m]
        # Every change the grid sees lies between two grid points that bracket a breakpoint.
        assert len(seen) <= len(exact)
        gaps = torch.diff(torch.cat([t64(0.0), exact, t64(1.0)]))
        if gaps.min() > 2.0 / n:  # every region holds a grid point: the counts must agree
            resolved += 1
            assert len(seen) == len(exact)
            assert torch.all(t[seen] < exact) and torch.all(exact < t[seen + 1])
            if model.activations[m].name != "softshrink":  # continuous: autograd on the grid
                assert affine_changes(brute_affine(seq, x0, x1, t)) == int(p.pieces[m]) - 1
    assert resolved >= model.E - 1
    assert p.regions.sum() > 3 * model.E  # the networks are not trivially linear on the segment


def test_discontinuous_activations_against_dense_sampling():
    model = random_ensemble(["binary_step"] * 2 + ["hardshrink"] * 2, sizes=(1, 6, 1), seed=5)
    p = count_pieces(model, [-3.0], [3.0])
    t = grid(100_000)
    for m in range(model.E):
        seen = changes(brute_patterns(model.member(m), line([-3.0], [3.0], t)))
        assert len(seen) == len(p.breakpoints[m]) == int(p.regions[m]) - 1 > 0


def test_each_member_counts_as_if_alone():
    # Very different counts in one ensemble: the padding of short members must not leak.
    acts = ["identity", "relu", "relu", "hardtanh"]
    model = random_ensemble(acts, sizes=(2, 16, 16, 16, 2), seed=7, sigma_w2=4.0)
    x0, x1 = [-2.0, 1.0], [3.0, -2.0]
    p = count_pieces(model, x0, x1)
    for m in range(model.E):
        alone = random_ensemble([acts[m]], sizes=(2, 16, 16, 16, 2), seed=7 + m, sigma_w2=4.0)
        q = count_pieces(alone, x0, x1)
        assert close(q.breakpoints[0], p.breakpoints[m])
        assert close(q.piece_breakpoints[0], p.piece_breakpoints[m])
        assert torch.equal(q.regions_by_layer[0], p.regions_by_layer[m])
    assert p.regions[0] == 1 and p.regions[1:].min() > 10


def test_per_member_segments_and_layer_counts():
    model = random_ensemble(["relu"] * 3, sizes=(2, 8, 8, 1), seed=3)
    x0 = t64([-1.0, 0.0], [0.0, -2.0], [1.0, 1.0])
    x1 = t64([2.0, 1.0], [0.5, 3.0], [-3.0, 2.0])
    p = count_pieces(model, x0, x1)
    for m in range(3):
        q = count_pieces(model, x0[m], x1[m])
        assert close(q.breakpoints[m], p.breakpoints[m])
    by_layer = p.regions_by_layer
    assert torch.equal(by_layer[:, -1], p.regions)
    assert torch.all(by_layer[:, 1:] >= by_layer[:, :-1])
    assert torch.all(p.pieces <= p.regions)
    # The first column: one breakpoint per first-layer unit whose pre-activation changes sign.
    w, b = model.weight(0), model.bias(0)
    z0 = torch.einsum("eoi,ei->eo", w, x0) + b
    z1 = torch.einsum("eoi,ei->eo", w, x1) + b
    assert torch.equal(by_layer[:, 0] - 1, ((z0 > 0) != (z1 > 0)).sum(dim=1))


def test_float32_model_counts_its_own_weights():
    model = random_ensemble(["relu"] * 2, sizes=(2, 6, 6, 1), seed=11)
    single = EnsembleMLP(2, [6, 6], 1, "relu", [11, 12], init="mean_field", sigma_w2=3.0,
                         sigma_b2=0.5, dtype=torch.float32)  # fmt: skip
    p64 = count_pieces(model, [-2.0, -2.0], [2.0, 2.0])
    p32 = count_pieces(single, [-2.0, -2.0], [2.0, 2.0])
    for m in range(2):  # the same weights up to float32 rounding: the same count
        assert len(p32.breakpoints[m]) == len(p64.breakpoints[m]) > 0
        assert p32.breakpoints[m].dtype == F64
        assert torch.allclose(p32.breakpoints[m], p64.breakpoints[m], atol=1e-5)


# ------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("act", ["tanh", "gelu", "hardswish", "elu(alpha=2.0)", "penalized_tanh"])
def test_smooth_or_curved_activations_are_refused(act):
    model = random_ensemble(["relu", act], sizes=(1, 3, 1))
    with pytest.raises(ValueError, match=r"piecewise-linear.*" + act.split("(")[0]):
        count_pieces(model, [0.0], [1.0])


def test_bad_segment_shapes_are_refused():
    model = random_ensemble(["relu"] * 2, sizes=(3, 4, 1))
    with pytest.raises(ValueError, match="x0 must have shape"):
        count_pieces(model, [0.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="x1 must have shape"):
        count_pieces(model, [0.0, 1.0, 2.0], torch.zeros(3, 3))


def test_registry_piecewise_linear_names():
    names = piecewise_linear_activations()
    for name in ["relu", "leaky_relu", "prelu", "hardtanh", "relu6", "identity"]:
        assert name in names
    assert "tanh" not in names and "hardswish" not in names


# ------------------------------------------------------------------------ theory
def test_first_layer_expectation_relu_closed_form():
    x0, x1 = [1.0, -2.0, 0.5], [-0.5, 1.0, 2.0]
    for sw, sb in [(2.0, 0.0), (1.0, 0.3), (4.0, 2.0)]:
        n = 3
        v0 = sw * (1 + 4 + 0.25) / n + sb
        v1 = sw * (0.25 + 1 + 4) / n + sb
        c = sw * (-0.5 - 2 + 1) / n + sb
        rho = c / math.sqrt(v0 * v1)
        got = expected_first_layer_breakpoints(x0, x1, 10, "relu", sw, sb)
        assert got == pytest.approx(10 * math.acos(rho) / math.pi, rel=1e-9)


def test_first_layer_expectation_degenerate_cases():
    # x0 = 0 and no bias: every unit starts on its kink; it never crosses 0 inside the segment.
    assert expected_first_layer_breakpoints([0.0], [1.0], 5, "relu", 2.0, 0.0) == 0.0
    # ... but crosses relu6's kink at 6 when z(1) = w > 6: P(|N(0, 2)| > 6, w > 0).
    got = expected_first_layer_breakpoints([0.0], [1.0], 5, "relu6", 2.0, 0.0)
    assert got == pytest.approx(5 * 0.5 * math.erfc(6 / math.sqrt(2 * 2)), rel=1e-8)
    # Parallel inputs without bias (rho = 1): no sign change at a kink at 0.
    assert expected_first_layer_breakpoints([1.0, 1.0], [2.0, 2.0], 4, "relu", 2.0, 0.0) == 0.0


@pytest.mark.parametrize(
    "act, sw, sb, x0, x1",
    [
        ("relu", 2.0, 0.0, [1.0, -1.0], [-0.5, 2.0]),
        ("relu6", 4.0, 1.0, [3.0, -4.0], [-2.0, 5.0]),
        ("hardtanh", 1.5, 0.2, [1.5, 0.0], [-1.0, 1.0]),
        ("leaky_relu(slope=0.1)", 2.0, 0.5, [0.0, 0.0], [2.0, 1.0]),
    ],
)
def test_first_layer_expectation_against_monte_carlo(act, sw, sb, x0, x1):
    E, width = 4000, 6
    init = {"init": "mean_field", "sigma_w2": sw, "sigma_b2": sb}
    model = EnsembleMLP(2, [width], 1, act, E, dtype=F64, **init)
    counts = (count_pieces(model, x0, x1).regions_by_layer[:, 0] - 1).to(F64)
    predicted = expected_first_layer_breakpoints(x0, x1, width, act, sw, sb)
    se = counts.std().item() / math.sqrt(E)
    assert abs(counts.mean().item() - predicted) < 4 * se + 1e-9
    assert predicted > 0.3


def test_bias_averaged_breakpoints_single_unit_closed_form():
    # u(t) = w x(t) with x from -1 to 2 and w = 1.5: E_b[#crossings of 0] = P(-b in (-1.5, 3)).
    layers = [(t64([1.5]), t64(0.7)), (t64([1.0]), t64(0.0))]
    model = ensemble_from_layers([layers], "relu")
    got = bias_averaged_breakpoints(model, [-1.0], [2.0], sigma_b2=0.49)
    expected = 0.5 * (math.erf(3 / 0.7 / math.sqrt(2)) + math.erf(1.5 / 0.7 / math.sqrt(2)))
    assert got.shape == (1, 1)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_bias_averaged_breakpoints_is_unbiased_by_layer():
    E, sb = 1500, 0.3
    model = EnsembleMLP(2, [6, 6, 6], 1, "relu", E, init="mean_field", sigma_w2=2.0,
                        sigma_b2=sb, dtype=F64)  # fmt: skip
    x0, x1 = [-1.5, 1.0], [2.0, -1.0]
    by_layer = count_pieces(model, x0, x1).regions_by_layer.to(F64)
    exact = torch.diff(torch.cat([torch.ones(E, 1, dtype=F64), by_layer], dim=1), dim=1)
    averaged = bias_averaged_breakpoints(model, x0, x1, sigma_b2=sb)
    assert averaged.shape == (E, 3)
    for layer in range(3):
        diff = exact[:, layer] - averaged[:, layer]  # paired: the same networks
        se = diff.std().item() / math.sqrt(E)
        assert abs(diff.mean().item()) < 4 * se
        assert averaged[:, layer].var() < exact[:, layer].var()  # it is the less noisy one
    first = expected_first_layer_breakpoints(x0, x1, 6, "relu", 2.0, sb)
    se = averaged[:, 0].std().item() / math.sqrt(E)
    assert abs(averaged[:, 0].mean().item() - first) < 4 * se


def test_bias_averaged_needs_a_bias_density():
    model = random_ensemble(["relu"], sizes=(1, 2, 1))
    with pytest.raises(ValueError, match="sigma_b2"):
        bias_averaged_breakpoints(model, [0.0], [1.0], sigma_b2=0.0)


def test_get_activation_kinks_are_what_count_pieces_uses():
    # A guard on the assumption that kinks are where phi bends (checked by the registry tests).
    assert get_activation("hardtanh").kinks == (-1.0, 1.0)
    assert get_activation("relu6").kinks == (0.0, 6.0)
