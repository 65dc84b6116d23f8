"""Tests of actlab.rl.dqn: the TD target and loss against naive loops, exploration and replay
streams per agent, an agent alone vs inside an ensemble of six, MinAtar smoke, bad configs.

The naive references are plain Python loops over agents and batch entries written from the
textbook formulas, on random tensors with terminations (and truncations, which must bootstrap)
placed by hand.
"""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch

from actlab import progress
from actlab.rl import dqn
from actlab.rl.common import NetworkSpec, agent_generators, build_networks
from actlab.rl.dqn import Config, ReplayBuffer, explore, main, minatar_config, td_loss, td_target
from actlab.rl.envs import AgentEnvs

# --------------------------------------------------------------------------------------------
# Pure pieces


def test_td_target_against_a_naive_loop():
    gen = torch.Generator().manual_seed(0)
    E, B, A, gamma = 3, 5, 4, 0.9
    rewards = torch.randn(E, B, generator=gen)
    next_q = torch.randn(E, B, A, generator=gen)
    terminated = torch.zeros(E, B, dtype=torch.bool)
    terminated[0, 1] = terminated[2, 4] = terminated[1, 0] = True
    # (1, 3) is a truncation: the agent passes terminated=False there, so it bootstraps.
    y = td_target(rewards, next_q, terminated, gamma)
    assert y.shape == (E, B)
    for m in range(E):
        for b in range(B):
            want = rewards[m, b].item()
            if not terminated[m, b]:
                want += gamma * max(next_q[m, b, a].item() for a in range(A))
            assert y[m, b].item() == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert y[1, 3].item() != pytest.approx(rewards[1, 3].item())  # the truncation bootstraps
    assert torch.equal(y, td_target(rewards, next_q, terminated.float(), gamma))  # 0/1 works


@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_td_loss_against_a_naive_loop(kind):
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(2, 7, generator=gen) * 3  # differences on both sides of Huber's |d| = 1
    y = torch.randn(2, 7, generator=gen) * 3
    got = td_loss(q, y, kind)
    assert got.shape == (2,)
    for m in range(2):
        terms = []
        for b in range(7):
            d = q[m, b].item() - y[m, b].item()
            if kind == "mse":
                terms.append(d * d)
            else:
                terms.append(0.5 * d * d if abs(d) < 1 else abs(d) - 0.5)
        assert got[m].item() == pytest.approx(sum(terms) / len(terms), rel=1e-6)
    with pytest.raises(ValueError, match="kind"):
        td_loss(q, y, "l1")


def test_explore_draws_each_agents_coin_and_action_from_its_own_stream():
    never, _ = explore(agent_generators([0, 1, 2], "x"), 0.0, 3)
    always, _ = explore(agent_generators([0, 1, 2], "x"), 1.0, 3)
    assert not never.any() and always.all()
    alone = agent_generators([7], "x")
    among = agent_generators([1, 7, 9, 4], "x")
    for eps in [1.0, 0.5, 0.2, 0.0, 0.7]:
        e1, a1 = explore(alone, eps, 5)
        e4, a4 = explore(among, eps, 5)
        assert e1[0] == e4[1] and a1[0] == a4[1]
        assert ((a4 >= 0) & (a4 < 5)).all()


def test_replay_ring_and_sampling_against_a_python_list():
    E, N, steps = 2, 4, 7  # wraps: slots 0..2 are overwritten by steps 4..6
    rb = ReplayBuffer(E, N, (3,))
    ring = [[None] * N for _ in range(E)]
    for t in range(steps):
        obs = torch.full((E, 3), float(t)) + torch.arange(E).view(E, 1) * 100
        rb.add(
            obs,
            obs + 0.5,
            torch.tensor([t % 2, 1]),
            torch.tensor([t, -t]) * 1.0,
            torch.tensor([t == 2, t == 5]),
        )
        for m in range(E):
            ring[m][t % N] = (
                obs[m],
                obs[m] + 0.5,
                [t % 2, 1][m],
                [t, -t][m] * 1.0,
                [t == 2, t == 5][m],
            )
    assert rb.size == N and rb.pos == steps % N
    gens = agent_generators([3, 8], "replay")
    obs, act, rew, nxt, term = rb.sample(gens, 6)
    again = agent_generators([3, 8], "replay")
    for m in range(E):
        idx = torch.randint(N, (6,), generator=again[m])
        for b, i in enumerate(idx.tolist()):
            o, n, a, r, d = ring[m][i]
            assert torch.equal(obs[m, b], o) and torch.equal(nxt[m, b], n)
            assert (act[m, b].item(), rew[m, b].item(), bool(term[m, b])) == (a, r, d)
    partial = ReplayBuffer(1, 10, (2,))
    partial.add(
        torch.ones(1, 2),
        torch.ones(1, 2),
        torch.tensor([0]),
        torch.tensor([1.0]),
        torch.tensor([False]),
    )
    assert (partial.sample(agent_generators([0], "r"), 5)[2] == 1.0).all()  # only filled slots
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(1, 3, (2,)).sample(agent_generators([0], "r"), 2)


def test_minatar_buffer_stores_observations_as_exact_uint8():
    rb = ReplayBuffer(1, 2, (4, 10, 10), obs_dtype=torch.uint8)
    x = (torch.rand(1, 4, 10, 10) < 0.3).float()
    rb.add(x, 1 - x, torch.tensor([2]), torch.tensor([0.0]), torch.tensor([False]))
    obs, _, _, nxt, _ = rb.sample(agent_generators([0], "r"), 3)
    assert obs.dtype == torch.float32 and torch.equal(obs[0, 0], x[0])
    assert torch.equal(nxt[0, 2], 1 - x[0])


# --------------------------------------------------------------------------------------------
# An agent alone and inside an ensemble


def tiny(**overrides) -> Config:
    """A few hundred steps with updates from step 101 on, a buffer that wraps, target updates,
    a non-trivial epsilon at the end, diagnostics every 100 steps."""
    settings = dict(
        total_steps=400,
        learning_starts=100,
        train_frequency=2,
        target_network_frequency=50,
        batch_size=32,
        buffer_size=150,
        exploration_fraction=0.5,
        diag_every=100,
        probe_size=64,
    )
    settings.update(overrides)
    return Config(**settings)


SIX = (0, 1, 3, 4, 5, 6)  # agent 3 sits at index 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"network": NetworkSpec("relu")},
        # the paper's DQN network, with per-agent clipping that acts at every update (norms
        # measured 0.37 to 5.7 here; its effect is checked below)
        {"network": NetworkSpec("tanh", "last"), "max_grad_norm": 0.1, "loss": "huber"},
    ],
    ids=["relu", "tanh-hadamard"],
)
def test_an_agent_alone_and_in_an_ensemble_of_six_is_bit_identical(overrides):
    # Bit-identical, not rounding: every nn.Linear runs as one batched matmul whose slice
    # for one member is the same matrix product whatever E is (tests/test_rl_models.py), the
    # losses are summed per member, Adam (foreach) and the clipping are element-wise or per
    # member, and every random draw of agent 3 (weights, env, coins, actions, minibatches) comes
    # from its own seed. Equal Q-values give equal greedy actions, so the trajectories match.
    alone = main(tiny(seeds=(3,), **overrides))
    six = main(tiny(seeds=SIX, **overrides))
    assert alone.speed["updates"] == six.speed["updates"] == 149  # t = 102, 104, ..., 398
    for name, p in alone.params.items():
        assert torch.equal(p[0], six.params[name][2]), name
    mine = six.returns[six.returns.seed == 3].drop(columns="member").reset_index(drop=True)
    assert len(mine) > 5
    pd.testing.assert_frame_equal(alone.returns.drop(columns="member"), mine)
    d_alone = alone.diagnostics.drop(columns="member")
    d_six = six.diagnostics[six.diagnostics.seed == 3].drop(columns="member")
    assert sorted(d_alone.step.unique()) == [0, 100, 200, 300]
    assert d_alone.metric.str.endswith("grad_mean_abs").any()
    pd.testing.assert_frame_equal(d_alone.reset_index(drop=True), d_six.reset_index(drop=True))
    # the other agents are other agents, and the clipping acts
    if "max_grad_norm" in overrides:
        unclipped = main(tiny(seeds=(3,), **{**overrides, "max_grad_norm": None}))
        assert not torch.equal(unclipped.params["head.weight"], alone.params["head.weight"])
    assert not torch.equal(six.params["head.weight"][0], six.params["head.weight"][2])


def naive_dqn(cfg: Config) -> tuple[dict[str, torch.Tensor], list[float]]:
    """One agent, CleanRL's loop written out: a plain nn.Module, a deep-copied target network,
    a Python list as the replay ring, the target and loss from their formulas. Draws come from
    the seeding contract of :mod:`actlab.rl.dqn` (network tag ``"q"``, generators
    ``"dqn-explore"`` and ``"dqn-replay"``); the environment is AgentEnvs (tested against plain
    gymnasium in test_rl_envs.py)."""
    (seed,) = cfg.seeds
    envs = AgentEnvs(cfg.env_id, [seed])
    obs = envs.reset()[0, 0]
    net = build_networks(cfg.network, [seed], obs.shape, envs.n_actions, cfg.hidden, "q")[0]
    target_net = copy.deepcopy(net)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    explore_gen = agent_generators([seed], "dqn-explore")[0]
    replay_gen = agent_generators([seed], "dqn-replay")[0]
    replay = []
    for t in range(cfg.total_steps):
        duration = cfg.exploration_fraction * cfg.total_steps
        epsilon = cfg.start_e + (cfg.end_e - cfg.start_e) * min(t / duration, 1.0)
        coin = torch.rand(1, generator=explore_gen).item()
        action = torch.randint(envs.n_actions, (1,), generator=explore_gen).item()
        if coin >= epsilon:
            with torch.no_grad():
                action = net(obs.unsqueeze(0))[0].argmax().item()
        out = envs.step(torch.tensor([[action]]))
        transition = (
            obs,
            action,
            out.reward[0, 0].item(),
            out.final_obs[0, 0],
            bool(out.terminated[0, 0]),
        )
        if len(replay) < cfg.buffer_size:
            replay.append(transition)
        else:
            replay[t % cfg.buffer_size] = transition
        obs = out.obs[0, 0]
        if t > cfg.learning_starts and t % cfg.train_frequency == 0:
            idx = torch.randint(len(replay), (cfg.batch_size,), generator=replay_gen).tolist()
            batch = [replay[i] for i in idx]
            with torch.no_grad():
                next_q = target_net(torch.stack([b[3] for b in batch]))
            ys = [
                r + cfg.gamma * (0.0 if d else next_q[j].max().item())
                for j, (_, _, r, _, d) in enumerate(batch)
            ]
            q = net(torch.stack([b[0] for b in batch]))
            q_taken = q[torch.arange(len(batch)), torch.tensor([b[1] for b in batch])]
            loss = ((q_taken - torch.tensor(ys)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if t > cfg.learning_starts and t % cfg.target_network_frequency == 0:
            target_net.load_state_dict(net.state_dict())
    returns = [e.episode_return for e in envs.pop_episodes()]
    return dict(net.named_parameters()), returns


def test_main_matches_a_naive_single_agent_loop():
    # Not bit for bit: the plain module runs addmm where main runs baddbmm, and the target is
    # built from Python floats (float64 arithmetic) where main stays in float32; the weights
    # agree to float32 rounding carried through 149 Adam steps (measured max difference 6e-8;
    # one Adam step moves a weight by up to lr = 2.5e-4, so a wrong target or a missed update
    # is far outside 1e-6), and the episodes are the same ones (no greedy action flips).
    cfg = tiny(seeds=(3,), total_steps=400, diag_every=0)
    want, want_returns = naive_dqn(cfg)
    run = main(cfg)
    assert run.returns.episode_return.tolist() == want_returns
    for name, p in want.items():
        torch.testing.assert_close(run.params[name][0], p.detach(), rtol=0, atol=1e-6, msg=name)


def test_learning_changes_the_weights_and_the_speed_is_counted():
    before = main(tiny(seeds=(0, 1), total_steps=100))  # t > 100 never comes: no update
    after = main(tiny(seeds=(0, 1), total_steps=110))
    assert before.speed["updates"] == 0 and after.speed["updates"] == 4  # t = 102, ..., 108
    assert after.speed["env_steps"] == 220
    assert torch.equal(
        before.params["head.weight"], main(tiny(seeds=(0, 1), total_steps=5)).params["head.weight"]
    )
    assert not torch.equal(before.params["head.weight"], after.params["head.weight"])
    assert set(after.returns.columns) == {"member", "seed", "env_step", "episode_return", "length"}


def test_truncations_are_stored_as_not_terminal_with_their_last_observation(monkeypatch):
    # CartPole's 500-step limit is out of reach of a short test: mark every 7th step of the
    # real environment as truncated (its episode really goes on, which does not matter to what
    # the replay stores) and record what the agent writes.
    real_step = dqn.AgentEnvs.step
    calls = {"n": 0}

    def step(self, actions):
        out = real_step(self, actions)
        calls["n"] += 1
        if calls["n"] % 7 == 0:
            trunc = torch.ones_like(out.truncated)
            out = out._replace(truncated=trunc, obs=torch.zeros_like(out.obs))
        seen.append(out)
        return out

    added = []
    real_add = dqn.ReplayBuffer.add

    def add(self, obs, next_obs, actions, rewards, terminated):
        added.append((next_obs.clone(), terminated.clone()))
        real_add(self, obs, next_obs, actions, rewards, terminated)

    seen = []
    monkeypatch.setattr(dqn.AgentEnvs, "step", step)
    monkeypatch.setattr(dqn.ReplayBuffer, "add", add)
    main(tiny(seeds=(0, 1), total_steps=60, diag_every=0))
    assert len(added) == len(seen) == 60
    assert any(out.terminated.any() for out in seen)
    for out, (next_obs, terminated) in zip(seen, added, strict=True):
        assert torch.equal(terminated, out.terminated[:, 0])  # never the truncation flag
        assert torch.equal(next_obs, out.final_obs[:, 0])  # not the reset observation


def test_progress_counts_env_steps_per_agent():
    reporter = progress.Reporter("dqn")
    with progress.reporting(reporter):
        main(tiny(seeds=(0, 1), total_steps=60, diag_every=0))
    assert reporter.done == 60


# --------------------------------------------------------------------------------------------
# MinAtar, presets, bad configs


def test_minatar_breakout_smoke():
    cfg = minatar_config(
        "MinAtar/Breakout-v1",
        seeds=(0, 1),
        total_steps=300,
        learning_starts=100,
        buffer_size=200,
        batch_size=8,
        target_network_frequency=50,
        diag_every=150,
        probe_size=32,
        network=NetworkSpec("tanh", "last"),
    )
    assert cfg.optimizer == "rmsprop" and cfg.loss == "huber"
    run = main(cfg)
    assert run.speed["updates"] == 199
    assert run.params["hidden.0.conv.weight"].shape == (2, 16, 4, 3, 3)
    assert all(torch.isfinite(p).all() for p in run.params.values())
    assert {"layer0/saturated", "layer1/effective_rank"} <= set(run.diagnostics.metric)
    assert set(run.returns.seed) <= {0, 1}


def test_minatar_config_keeps_the_reference_exploration_ramp():
    full = minatar_config()
    assert (full.total_steps, full.batch_size, full.buffer_size) == (5_000_000, 32, 100_000)
    assert full.exploration_fraction * full.total_steps == pytest.approx(105_000)
    short = minatar_config(total_steps=1_000_000)
    assert short.exploration_fraction * short.total_steps == pytest.approx(105_000)
    assert minatar_config(total_steps=50_000).exploration_fraction == 1.0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"env_id": "CartPole-v0"}, "env_id"),
        ({"seeds": ()}, "seeds"),
        ({"seeds": (1, 1)}, "distinct"),
        ({"seeds": (1.5,)}, "seeds"),
        ({"network": "relu"}, "NetworkSpec"),
        ({"network": NetworkSpec("tanh", "all")}, "hadamard"),
        ({"hidden": ()}, "hidden"),
        ({"total_steps": -5}, "total_steps"),
        ({"total_steps": 10.0}, "total_steps"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_starts": -1}, "learning_starts"),
        ({"train_frequency": 0}, "train_frequency"),
        ({"target_network_frequency": 0}, "target_network_frequency"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"gamma": 1.5}, "gamma"),
        ({"tau": 0.0}, "tau"),
        ({"start_e": -0.1}, "start_e"),
        ({"end_e": 2.0}, "end_e"),
        ({"exploration_fraction": 1.1}, "exploration_fraction"),
        ({"loss": "l1"}, "loss"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"diag_every": -1}, "diag_every"),
        ({"probe_size": 0}, "probe_size"),
        ({"device": ""}, "device"),
    ],
)
def test_bad_configs_raise(overrides, match):
    with pytest.raises(ValueError, match=match):
        Config(**overrides)


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="relu"):
        main(Config(network=NetworkSpec("rleu"), total_steps=5))
