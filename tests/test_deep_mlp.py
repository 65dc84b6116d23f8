"""The deep-MLP experiment against independent references: a plain nn.Sequential trained alone,
gradients by autograd layer by layer, and the metrics table."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from actlab.experiments import deep_mlp as d
from actlab.models import EnsembleMLP

SMOKE = d.SMOKE


@pytest.fixture(scope="module")
def results():
    return d.run(SMOKE)


def _initial_sequential(cfg, activation, seed):
    model = EnsembleMLP(1, [cfg.width] * cfg.depth, 1, [activation], [seed], init=cfg.init)
    return model.member(0)


def test_one_member_equals_a_plain_sequential_trained_alone(results):
    cfg, data = SMOKE, d.make_data(SMOKE)
    table = d.members(cfg)
    row = table[(table.activation == "tanh") & (table.seed == 1) & (table.lr == cfg.lr)].iloc[0]
    seq = _initial_sequential(cfg, "tanh", 1)
    opt = torch.optim.Adam(seq.parameters(), lr=cfg.lr)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        nn.functional.mse_loss(seq(data["x_train"]), data["y_train"]).backward()
        opt.step()
    with torch.no_grad():
        train_mse = nn.functional.mse_loss(seq(data["x_train"]), data["y_train"]).item()
        test_mse = nn.functional.mse_loss(seq(data["x_test"]), data["y_test"]).item()
        fit = seq(data["x_grid"])[:, 0].numpy()
    m = results.metrics
    final = m[(m.member == row.member) & (m.step == cfg.epochs)]
    assert final[final.metric == "train/mse"].value.item() == pytest.approx(train_mse, abs=1e-6)
    assert final[final.metric == "test/mse"].value.item() == pytest.approx(test_mse, abs=1e-6)
    a = cfg.activations.index("tanh")
    member = a * cfg.seeds + 1  # fixed-rate arrays are ordered (activation, seed)
    np.testing.assert_allclose(results.arrays["fits"][member, -1], fit, atol=1e-5)


def test_gradient_layers_are_numbered_input_to_output(results):
    """Layer 1 of the gradient arrays is the Linear nearest the input (a reversal fails)."""
    cfg, data = SMOKE, d.make_data(SMOKE)
    seq = _initial_sequential(cfg, "relu", 0)
    nn.functional.mse_loss(seq(data["x_train"]), data["y_train"]).backward()
    linears = [layer for layer in seq if isinstance(layer, nn.Linear)]
    expected = np.array([lin.weight.grad.abs().mean().item() for lin in linears])
    assert results.coords["grad_snapshots/layer"] == list(range(1, cfg.depth + 2))
    member = cfg.activations.index("relu") * cfg.seeds
    got = results.arrays["grad_snapshots"][member, 0]  # epoch 0, layers 1..depth+1
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert not np.allclose(got, expected[::-1], rtol=1e-3)


def test_summary_numbers_equal_the_metrics_table(results):
    cfg = SMOKE
    m = results.metrics
    for row in results.summary["table"]:
        final = m[
            (m.activation == row["activation"])
            & (m.lr == cfg.lr)
            & (m.step == cfg.epochs)
            & (m.metric == "test/mse")
        ]
        assert row["fixed_test"]["mean"] == pytest.approx(final.value.mean(), rel=1e-6)
        assert row["fixed_test"]["n"] == cfg.seeds
        lo, hi = row["fixed_test"]["lo"], row["fixed_test"]["hi"]
        assert lo <= row["fixed_test"]["mean"] <= hi
    assert results.summary["noise_floor"] == pytest.approx(cfg.noise**2)


def test_same_initial_weights_across_activations():
    """Within a seed every activation starts from the same weights."""
    a = _initial_sequential(SMOKE, "identity", 0)
    b = _initial_sequential(SMOKE, "relu", 0)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_arrays_have_named_axes_and_finite_values(results):
    assert results.axes["hidden"] == ("member", "epoch", "layer", "input", "unit")
    n_fixed = len(SMOKE.activations) * SMOKE.seeds
    assert results.arrays["hidden"].shape == (
        n_fixed,
        len(SMOKE.snapshot_epochs),
        len(SMOKE.hidden_layers),
        SMOKE.n_grid,
        SMOKE.width,
    )
    assert np.isfinite(results.arrays["hidden"]).all()
    assert results.coords["units/metric"] == list(d.SNAPSHOT_METRICS)


def test_data_noise_floor_and_grids():
    data = d.make_data(SMOKE)
    x = data["x_train"][:, 0]
    assert x[0].item() == pytest.approx(-math.pi) and x[-1].item() == pytest.approx(math.pi)
    mid = data["x_test"][:, 0]
    assert torch.all((mid > x[:-1]) & (mid < x[1:]))  # interleaved
    assert not torch.equal(data["y_val"], data["y_test"])  # independent draws


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seeds": 0}, "seeds"),
        ({"activations": ("tanhh",)}, "Did you mean 'tanh'"),
        ({"hidden_layers": (0,)}, "hidden_layers"),
        ({"snapshot_epochs": (0, 999)}, "snapshot_epochs"),
        ({"lr": float("nan")}, "lr"),
        ({"noise": -1.0}, "noise"),
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SMOKE, **change)
