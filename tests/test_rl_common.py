"""What the RL agents share: network specs, schedules, per-agent generators, diagnostics timing."""

from __future__ import annotations

import pytest
import torch

from actlab.rl.common import (
    Diagnostics,
    NetworkSpec,
    agent_generators,
    build_network,
    build_networks,
    linear_schedule,
)
from actlab.rl.ensemble import stack


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_labels_and_bad_specs():
    assert NetworkSpec("tanh").label == "tanh"
    assert NetworkSpec("tanh", "last").label == "tanh-hadamard"
    assert NetworkSpec("tanh", "last", widened=True).label == "tanh-wide"
    with pytest.raises(ValueError, match="hadamard"):
        NetworkSpec("tanh", "first")
    with pytest.raises(ValueError, match="widened"):
        NetworkSpec("tanh", widened=True)


@pytest.mark.parametrize("obs_shape", [(4,), (4, 10, 10)])
def test_the_widened_network_has_about_the_hadamard_networks_parameters(obs_shape):
    had = count(build_network(NetworkSpec("tanh", "last"), obs_shape, 3))
    wide = count(build_network(NetworkSpec("tanh", "last", widened=True), obs_shape, 3))
    plain = count(build_network(NetworkSpec("tanh"), obs_shape, 3))
    assert plain < had
    assert abs(wide - had) / had < 0.01  # nearest width: one unit is well under 1%


def test_minatar_takes_no_hadamard_everywhere():
    with pytest.raises(ValueError, match="MinAtar"):
        build_network(NetworkSpec("tanh", "all"), (4, 10, 10), 3)


def test_each_agents_weights_depend_on_its_own_seed_only():
    alone = build_networks(NetworkSpec("relu"), [7], (4,), 2)[0]
    among = build_networks(NetworkSpec("relu"), [3, 7, 9], (4,), 2)[1]
    for a, b in zip(alone.parameters(), among.parameters(), strict=True):
        assert torch.equal(a, b)
    other = build_networks(NetworkSpec("relu"), [3], (4,), 2)[0]
    assert not torch.equal(next(alone.parameters()), next(other.parameters()))
    g_alone = agent_generators([7], "explore")[0]
    g_among = agent_generators([3, 7], "explore")[1]
    assert torch.equal(torch.rand(5, generator=g_alone), torch.rand(5, generator=g_among))


def test_linear_schedule():
    assert linear_schedule(1.0, 0.05, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.05, 100, 50) == pytest.approx(0.525)
    assert linear_schedule(1.0, 0.05, 100, 100) == pytest.approx(0.05)
    assert linear_schedule(1.0, 0.05, 100, 1000) == pytest.approx(0.05)
    assert linear_schedule(1.0, 0.05, 0, 3) == 0.05


def test_diagnostics_every_k_steps_on_one_probe_batch():
    spec = NetworkSpec("tanh")
    base, params = stack(build_networks(spec, [0, 1], (4,), 2))
    diag = Diagnostics("CartPole-v1", "tanh", [{"seed": 0}, {"seed": 1}], every=100, probe_size=32)
    steps = [s for s in range(0, 350, 10) if diag.due(s) and (diag.record(s, base, params) or 1)]
    assert steps == [0, 100, 200, 300]
    frame = diag.frame()
    assert sorted(frame.step.unique()) == steps
    assert set(frame.seed) == {0, 1}
    assert (frame[frame.metric == "layer0/srank"].value >= 1).all()


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(env_id="CartPole-v2"), "Did you mean 'CartPole-v1'"),
        (dict(seeds=()), "seeds"),
        (dict(seeds=(1, 1)), "distinct"),
        (dict(network="tanh"), "network must be a NetworkSpec"),
        (dict(network=NetworkSpec("tahn")), "network: .*tanh"),
        (dict(env_id="MinAtar/Breakout-v1", network=NetworkSpec("tanh", "all")), "MinAtar"),
        (dict(hidden=(64, 0)), "hidden"),
        (dict(total_steps=0), "total_steps"),
        (dict(diag_every=-1), "diag_every"),
    ],
)
@pytest.mark.parametrize("agent", ["dqn", "ppo", "pqn"])
def test_every_agent_refuses_the_same_bad_shared_fields(agent, change, match):
    import dataclasses
    import importlib

    config = importlib.import_module(f"actlab.rl.{agent}").Config
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(config(), **change)


def test_flushing_denormals_flushes_inside_main_only():
    from actlab.rl.common import flushing_denormals

    tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal in float32 (< 1.18e-38)

    @flushing_denormals
    def main(x):
        return x * 0.5

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    assert (tiny * 0.5).item() > 0  # subnormal arithmetic outside
    assert main(tiny).item() == 0.0  # flushed inside
    assert (tiny * 0.5).item() > 0  # and switched off again on return
    with pytest.raises(ZeroDivisionError):
        flushing_denormals(lambda: 1 / 0)()
    assert (tiny * 0.5).item() > 0  # also after an exception
