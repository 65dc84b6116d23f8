"""Tests of actlab.rl.diagnostics against NumPy written from the formulas in REFERENCES.md.

The features are small hand-made tensors of a 2-member ensemble in which each member has a
different planted defect (a dead unit, a unit saturated on every input, a nearly silent unit),
so that every fraction is non-trivial and differs between members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from actlab.rl.diagnostics import (
    TAUS,
    gradient_diagnostics,
    probe_batch,
    representation_diagnostics,
    tidy,
)

# ---------------------------------------------------------------------------------------------
# NumPy references, one member's (B, H) features at a time


def np_dead(h):
    return np.mean(np.all(h == 0, axis=0))


def np_saturated(h, low, high):
    return np.mean(np.all((h < low) | (h > high), axis=0))


def np_saturated_share(h, low, high):
    return np.mean((h < low) | (h > high))


def np_dormant(h, tau):
    """ReDo: s_i = mean_x |h_i| / (mean_k mean_x |h_k| + 1e-9), dormant if s_i <= tau."""
    per_unit = np.abs(h).mean(axis=0)
    score = per_unit / (per_unit.mean() + 1e-9)
    return np.mean(score <= tau)


def np_srank(h, delta):
    sigma = np.linalg.svd(h, compute_uv=False)
    mass = np.cumsum(sigma) / sigma.sum()
    return int(np.argmax(mass >= 1 - delta)) + 1


def np_effective_rank(h):
    sigma = np.linalg.svd(h, compute_uv=False)
    p = sigma / sigma.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


# ---------------------------------------------------------------------------------------------
# Hand-made ensembles


def preactivations(width: int, seed: int) -> np.ndarray:
    """``(2, 12, width)`` float64 with planted units: member 0's unit 0 is negative on every
    input, member 0's unit 3 is small (ReDo score between 0.025 and 0.1), member 1's unit 1 is
    large (z > 3) on every input, member 1's unit 2 is tiny (score below 0.025)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2, 12, width))
    z[0, :, 0] = -np.abs(z[0, :, 0]) - 0.5
    z[0, :, 3] = 0.025 * np.abs(z[0, :, 3])
    z[1, :, 1] = 3.0 + np.abs(z[1, :, 1])
    z[1, :, 2] = 0.001 * np.abs(z[1, :, 2])
    return z


def relu_layers():
    return [np.maximum(preactivations(6, 0), 0.0), np.maximum(preactivations(5, 1), 0.0)]


def tanh_layers():
    return [np.tanh(preactivations(6, 2)), np.tanh(preactivations(4, 3))]


def as_torch(layers):
    return [torch.tensor(h, dtype=torch.float64) for h in layers]


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "tanh"])
def test_representation_diagnostics_match_numpy(name):
    layers = relu_layers() if name == "relu" else tanh_layers()
    got = representation_diagnostics(as_torch(layers), name, taus=TAUS, delta=0.01)
    stats = {"dormant_0", "dormant_0.025", "dormant_0.1", "srank", "effective_rank"}
    stats |= {"dead"} if name == "relu" else {"saturated", "saturated_share"}
    assert set(got) == {f"layer{l}/{s}" for l in range(2) for s in stats}
    for l, h in enumerate(layers):
        for m in range(2):
            ref = {
                "dormant_0": np_dormant(h[m], 0.0),
                "dormant_0.025": np_dormant(h[m], 0.025),
                "dormant_0.1": np_dormant(h[m], 0.1),
                "srank": np_srank(h[m], 0.01),
                "effective_rank": np_effective_rank(h[m]),
            }
            if name == "relu":
                ref["dead"] = np_dead(h[m])
            else:
                ref["saturated"] = np_saturated(h[m], -0.99, 0.99)
                ref["saturated_share"] = np_saturated_share(h[m], -0.99, 0.99)
            for stat, value in ref.items():
                key = f"layer{l}/{stat}"
                assert got[key].dtype == torch.float64 and got[key].shape == (2,)
                assert got[key][m].item() == pytest.approx(value, rel=1e-9), (key, m)


def test_planted_units_are_seen():
    """The planted defects show, in the member they were planted in (the data is not trivial)."""
    relu = representation_diagnostics(as_torch(relu_layers()), "relu")
    assert relu["layer0/dead"][0] > 0 and relu["layer0/dormant_0.1"][1] > 0
    tanh = representation_diagnostics(as_torch(tanh_layers()), "tanh")
    assert tanh["layer0/saturated"].tolist() == [0.0, 1 / 6]
    assert tanh["layer0/dormant_0.025"][1] > tanh["layer0/dormant_0"][1]
    for diags in (relu, tanh):
        assert diags["layer0/dormant_0.1"][0] > diags["layer0/dormant_0.025"][0]


def test_srank_with_other_delta_and_low_rank_features():
    rng = np.random.default_rng(5)
    # member 0 has rank 2, member 1 rank 4 (full)
    low = rng.normal(size=(10, 2)) @ rng.normal(size=(2, 4))
    full = rng.normal(size=(10, 4))
    h = np.stack([low, full])
    got = representation_diagnostics([torch.tensor(h)], "identity", taus=(), delta=0.2)
    assert set(got) == {"layer0/srank", "layer0/effective_rank"}
    assert got["layer0/srank"].tolist() == [np_srank(low, 0.2), np_srank(full, 0.2)]
    assert got["layer0/srank"][0] <= 2


def test_inactive_from_preactivations_for_leaky_relu():
    z = preactivations(6, 7)
    h = np.where(z > 0, z, 0.1 * z)
    args = ([torch.tensor(h)], "leaky_relu(0.1)")
    assert "layer0/inactive" not in representation_diagnostics(*args)
    got = representation_diagnostics(*args, preactivations=[torch.tensor(z)])
    expected = [np.mean(np.all(z[m] < 0, axis=0)) for m in range(2)]
    assert got["layer0/inactive"].tolist() == expected and expected[0] > 0
    assert "layer0/dead" not in got


def test_activation_per_layer():
    relu, tanh = relu_layers()[0], tanh_layers()[0]
    got = representation_diagnostics(as_torch([relu, tanh]), ["relu", "tanh"])
    assert "layer0/dead" in got and "layer1/saturated" in got
    assert "layer0/saturated" not in got and "layer1/dead" not in got


def test_representation_bad_input():
    h = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="hidden must hold"):
        representation_diagnostics([], "relu")
    with pytest.raises(ValueError, match=r"hidden\[0\] must be \(E, B, H\)"):
        representation_diagnostics([torch.zeros(3, 4)], "relu")
    with pytest.raises(ValueError, match="share the ensemble axis"):
        representation_diagnostics([h, torch.zeros(3, 3, 4)], "relu")
    with pytest.raises(ValueError, match="one per layer"):
        representation_diagnostics([h, h], ["relu"])
    with pytest.raises(ValueError, match="unknown activation"):
        representation_diagnostics([h], "rleu")


def test_gradient_diagnostics_match_numpy():
    rng = np.random.default_rng(8)
    grads = {"conv": rng.normal(size=(2, 16, 4, 3, 3)), "fc": rng.normal(size=(2, 128, 10))}
    got = gradient_diagnostics({k: torch.tensor(v) for k, v in grads.items()})
    assert set(got) == {"conv/grad_mean_abs", "fc/grad_mean_abs"}
    for name, g in grads.items():
        for m in range(2):
            expected = np.abs(g[m]).mean()
            assert got[f"{name}/grad_mean_abs"][m].item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="leading ensemble axis"):
        gradient_diagnostics({"a": torch.zeros(2, 3), "b": torch.zeros(3, 3)})


def test_tidy_long_table():
    diags = {"layer0/dead": torch.tensor([0.25, 0.5]), "fc/grad_mean_abs": torch.tensor([1.0, 2.0])}
    labels = [{"agent": "dqn", "seed": 0}, {"agent": "dqn", "seed": 1}]
    frame = tidy(diags, step=1000, agent_labels=labels)
    assert list(frame.columns) == ["member", "step", "agent", "seed", "metric", "value"]
    assert len(frame) == 4
    expected = pd.DataFrame(
        {
            "member": [0, 1, 0, 1],
            "step": [1000] * 4,
            "agent": ["dqn"] * 4,
            "seed": [0, 1, 0, 1],
            "metric": ["layer0/dead"] * 2 + ["fc/grad_mean_abs"] * 2,
            "value": [0.25, 0.5, 1.0, 2.0],
        }
    )
    pd.testing.assert_frame_equal(frame, expected)
    bare = tidy(diags, step=3)
    assert list(bare.columns) == ["member", "step", "metric", "value"]
    with pytest.raises(ValueError, match="one dict per member"):
        tidy(diags, step=0, agent_labels=labels[:1])
    with pytest.raises(ValueError, match="table's own columns"):
        tidy(diags, step=0, agent_labels=[{"value": 1}, {"value": 2}])
    with pytest.raises(ValueError, match="same E"):
        tidy({"a": torch.zeros(2), "b": torch.zeros(3)}, step=0)


@pytest.mark.parametrize(
    ("env_id", "shape"), [("CartPole-v1", (4,)), ("MinAtar/Breakout-v1", (4, 10, 10))]
)
def test_probe_batch(env_id, shape):
    batch = probe_batch(env_id, 64, seed=0)
    assert batch.shape == (64, *shape) and batch.dtype == torch.float32
    torch.testing.assert_close(batch, probe_batch(env_id, 64, seed=0), rtol=0, atol=0)
    assert not torch.equal(batch, probe_batch(env_id, 64, seed=1))
    assert len(torch.unique(batch, dim=0)) > 10  # a random walk, not one state repeated
    if env_id.startswith("MinAtar"):
        assert set(batch.unique().tolist()) == {0.0, 1.0}
    # a shorter batch is the start of a longer one with the same seed
    torch.testing.assert_close(probe_batch(env_id, 16, seed=0), batch[:16], rtol=0, atol=0)
    with pytest.raises(ValueError, match="n must be"):
        probe_batch(env_id, 0, seed=0)
