"""PQN: Q(lambda) targets, exploration and loss against naive loops; an agent alone equals the
same agent in an ensemble of six; MinAtar smoke; bad configs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

import actlab.rl.pqn as pqn
from actlab.rl.common import NetworkSpec, agent_generators, build_networks
from actlab.rl.ensemble import clip_grad_norm_per_member as clip_grad_norm
from actlab.rl.ensemble import stack
from actlab.rl.envs import AgentEnvs
from actlab.rl.pqn import (
    Config,
    epsilon_greedy,
    main,
    orthogonal_init_,
    q_lambda_returns,
    q_loss,
)

# --------------------------------------------------------------------------------------------
# Pure helpers against naive loops


def naive_q_lambda(rewards, next_values, terminated, truncated, gamma, lam):
    """The textbook recursion, one column and one step at a time, with explicit branches."""
    T, E, K = rewards.shape
    out = torch.zeros(T, E, K, dtype=torch.float64)
    for e in range(E):
        for k in range(K):
            following = None
            for t in reversed(range(T)):
                r, v = float(rewards[t, e, k]), float(next_values[t, e, k])
                if terminated[t, e, k]:
                    g = r  # nothing after a terminal state
                elif truncated[t, e, k] or t == T - 1:
                    g = r + gamma * v  # successor's value only: the chain stops here
                else:
                    g = r + gamma * (lam * following + (1 - lam) * v)
                out[t, e, k] = g
                following = g
    return out


def planted_rollout(T=9, E=2, K=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, E, K, generator=gen)
    next_values = torch.randn(T, E, K, generator=gen) * 3
    terminated = torch.zeros(T, E, K, dtype=torch.bool)
    truncated = torch.zeros(T, E, K, dtype=torch.bool)
    terminated[2, 0, 0] = terminated[5, 1, 2] = terminated[8, 0, 1] = True  # 8: the last step
    truncated[4, 0, 0] = truncated[6, 1, 1] = truncated[0, 0, 2] = True
    terminated[3, 1, 0] = truncated[3, 1, 0] = True  # both flags: terminated wins
    return rewards, next_values, terminated, truncated


@pytest.mark.parametrize("lam", [0.0, 0.65, 1.0])
def test_q_lambda_returns_match_the_naive_recursion(lam):
    rollout = planted_rollout()
    got = q_lambda_returns(*rollout, gamma=0.9, q_lambda=lam)
    want = naive_q_lambda(*rollout, gamma=0.9, lam=lam)
    assert got.shape == rollout[0].shape and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-6)


def test_q_lambda_returns_special_cases_by_hand():
    # one column, no episode end: lambda = 1 gives the discounted rewards of the rollout plus
    # gamma^(T - t) times the last successor's value; lambda = 0 gives one-step targets
    r = torch.tensor([1.0, 2.0, 3.0]).view(3, 1)
    v = torch.tensor([10.0, 20.0, 30.0]).view(3, 1)
    no = torch.zeros(3, 1, dtype=torch.bool)
    g = 0.5
    full = q_lambda_returns(r, v, no, no, g, 1.0).flatten()
    assert full.tolist() == pytest.approx(
        [1 + g * 2 + g**2 * 3 + g**3 * 30, 2 + g * 3 + g**2 * 30, 3 + g * 30]
    )
    one = q_lambda_returns(r, v, no, no, g, 0.0).flatten()
    assert one.tolist() == pytest.approx([1 + g * 10, 2 + g * 20, 3 + g * 30])
    # a truncation at t = 1 bootstraps from v_1 (the final observation's value), cutting the
    # chain; a termination at t = 1 keeps the reward only
    cut = torch.tensor([False, True, False]).view(3, 1)
    trunc = q_lambda_returns(r, v, no, cut, g, 1.0).flatten()
    assert trunc.tolist() == pytest.approx([1 + g * (2 + g * 20), 2 + g * 20, 3 + g * 30])
    term = q_lambda_returns(r, v, cut, no, g, 1.0).flatten()
    assert term.tolist() == pytest.approx([1 + g * 2, 2, 3 + g * 30])


def test_q_lambda_returns_shapes_must_agree():
    r = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="one shape"):
        q_lambda_returns(r, torch.zeros(4, 3), r.bool(), r.bool(), 0.9, 0.5)


def test_q_loss_matches_a_loop():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(3, 5, 4, generator=gen, requires_grad=True)
    actions = torch.randint(4, (3, 5), generator=gen)
    returns = torch.randn(3, 5, generator=gen)
    got = q_loss(q, actions, returns)
    for e in range(3):
        want = sum(
            (float(q.detach()[e, b, actions[e, b]]) - float(returns[e, b])) ** 2 for b in range(5)
        )
        assert float(got.detach()[e]) == pytest.approx(want / 5, rel=1e-6)
    # member e's loss reaches member e's Q-values only
    got[1].backward()
    assert q.grad[0].abs().sum() == 0 and q.grad[2].abs().sum() == 0 and q.grad[1].abs().sum() > 0


def test_epsilon_greedy_per_agent_streams():
    q = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(2))
    greedy, explored = epsilon_greedy(q, 0.0, agent_generators([3, 4], "x"))
    assert torch.equal(greedy, q.argmax(-1)) and not explored.any()
    acts, explored = epsilon_greedy(q, 1.0, agent_generators([3, 4], "x"))
    assert explored.all() and set(acts.flatten().tolist()) == {0, 1, 2}
    # each copy draws its own: with epsilon 0.5 some copies explore and some do not
    _, explored = epsilon_greedy(q, 0.5, agent_generators([3, 4], "x"))
    assert 0 < explored[0].sum() < 50
    # agent 4's actions depend on its own generator only, not on the agent beside it
    for eps in (0.3, 1.0):
        alone, _ = epsilon_greedy(q[1:], eps, agent_generators([4], "x"))
        pair, _ = epsilon_greedy(q, eps, agent_generators([3, 4], "x"))
        other, _ = epsilon_greedy(q, eps, agent_generators([9, 4], "x"))
        assert torch.equal(alone[0], pair[1]) and torch.equal(alone[0], other[1])
    with pytest.raises(ValueError, match="one generator per agent"):
        epsilon_greedy(q, 0.1, agent_generators([3], "x"))


def test_clip_grad_norm_is_torchs_per_member_and_independent_of_the_others():
    # seed 7: on these tables a reduction of the stacked (K, E) norms along E's strided axis
    # gave member 2 of six another norm (last bit) than member 2 alone
    gen = torch.Generator().manual_seed(7)
    shapes = [(7, 5), (7,), (3, 7), (3,), (11, 2, 2), (1,)] * 3
    grads = [torch.randn(6, *s, generator=gen) * 2 for s in shapes]

    def params_with(gs):
        params = {}
        for i, g in enumerate(gs):
            params[f"p{i}"] = torch.zeros_like(g, requires_grad=True)
            params[f"p{i}"].grad = g.clone()
        return params

    six = params_with(grads)
    norms6 = clip_grad_norm(six, 3.0)
    alone = params_with([g[2:3] for g in grads])
    norms1 = clip_grad_norm(alone, 3.0)
    assert torch.equal(norms6[2:3], norms1)
    for name, p in alone.items():
        assert torch.equal(p.grad[0], six[name].grad[2]), name
    for m in range(6):  # each member as torch clips a model of its own
        module = [torch.zeros_like(g[m], requires_grad=True) for g in grads]
        for w, g in zip(module, grads, strict=True):
            w.grad = g[m].clone()
        total = nn.utils.clip_grad_norm_(module, 3.0)
        assert float(norms6[m]) == pytest.approx(float(total), rel=1e-6)
        for i, w in enumerate(module):
            torch.testing.assert_close(six[f"p{i}"].grad[m], w.grad, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------
# An agent alone and in an ensemble of six

MAX_NORM = 1.0  # below most of the tiny runs' gradient norms: the clipping acts
TINY = dict(
    copies=2,
    num_steps=16,
    num_minibatches=4,
    update_epochs=2,
    total_steps=2 * 16 * 12,  # 12 iterations x 8 updates
    learning_rate=1e-3,
    exploration_fraction=0.3,
    max_grad_norm=MAX_NORM,
    diag_every=96,
    probe_size=32,
)
SIX = (0, 1, 3, 4, 5, 6)  # agent 3 sits at index 2


def agent_rows(frame: pd.DataFrame, seed: int, drop=("member",)) -> pd.DataFrame:
    rows = frame[frame.seed == seed].drop(columns=list(drop))
    return rows.reset_index(drop=True)


@pytest.mark.parametrize(
    "network",
    [NetworkSpec("relu", layer_norm=True), NetworkSpec("tanh", "all", layer_norm=True)],
    ids=["relu-ln", "tanh-hadamard-all-ln"],
)
def test_agent_alone_and_in_an_ensemble_of_six_are_bit_identical(network, monkeypatch):
    # Bit-identical, not just close: every forward is batched over E (matmuls and
    # LayerNorms whose per-member slice has the same shape whatever E is, measured exact on
    # this CPU as in test_rl_models), the losses are per-member means summed, the clipping is
    # per member and RAdam is element-wise (its foreach kernels included); the environments,
    # exploration and minibatch order come from the agent's own seed.
    norms = []

    def recording_clip(params, max_norm):
        norms.append(clip_grad_norm(params, max_norm))
        return norms[-1]

    monkeypatch.setattr(pqn, "clip_grad_norm_per_member", recording_clip)
    alone = main(Config(seeds=(3,), network=network, **TINY))
    assert (torch.stack(norms) > MAX_NORM).float().mean() > 0.5  # the clipping acts, mostly
    six = main(Config(seeds=SIX, network=network, **TINY))
    assert alone.speed["updates"] == six.speed["updates"] == 12 * 8
    for name, p in alone.params.items():
        assert torch.equal(p[0], six.params[name][2]), name
    # the agent learned something: its weights moved from their initial values
    initial = build_networks(network, [3], (4,), 2, tag="pqn")[0]
    initial = dict(orthogonal_init_(initial, 3).named_parameters())
    assert not torch.equal(initial["head.weight"], alone.params["head.weight"][0])
    mine = agent_rows(alone.returns, 3)
    assert len(mine) > 5
    pd.testing.assert_frame_equal(mine, agent_rows(six.returns, 3))
    diag = agent_rows(alone.diagnostics, 3)
    assert sorted(diag.step.unique()) == [0, 96, 192, 288, 384]
    assert diag.metric.str.endswith("grad_mean_abs").any()
    pd.testing.assert_frame_equal(diag, agent_rows(six.diagnostics, 3), check_exact=True)
    # the other agents are not copies of agent 3
    assert not torch.equal(six.params["head.weight"][0], six.params["head.weight"][2])


class FakeTruncations(AgentEnvs):
    """AgentEnvs that also cuts copy 1 of every agent at every 5th step, as a time limit would:
    ``truncated`` set, ``final_obs`` the state reached, ``obs`` a fresh state. Records steps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.record = []

    def step(self, actions):
        out = super().step(actions)
        self.calls += 1
        if self.calls % 5 == 0:
            cut = ~(out.terminated[:, 1] | out.truncated[:, 1])
            out.truncated[:, 1] |= cut
            out.obs[cut, 1] = torch.rand_like(out.obs[cut, 1]) * 0.1  # a 'reset' state
        self.record.append((actions.clone(), out))
        return out


def test_the_rollout_reaches_the_targets_with_final_observations(monkeypatch):
    # main's wiring: what q_lambda_returns receives is what the environments returned, and
    # v_t = max_a Q(final_obs_t, a) under the rollout's parameters, also where a truncation
    # made the next state acted in (obs) another episode's first state
    envs, seen, params_now = [], [], {}

    def make_envs(*args, **kwargs):
        envs.append(FakeTruncations(*args, **kwargs))
        return envs[-1]

    real_call, real_returns = pqn.ensemble_call, pqn.q_lambda_returns

    def spying_call(base, params, x, **kwargs):
        params_now.update(base=base, params=params)
        return real_call(base, params, x, **kwargs)

    def spying_returns(*args):
        snapshot = {k: v.detach().clone() for k, v in params_now["params"].items()}
        tensors = [a.clone() for a in args[:4]]  # main reuses its rollout buffers
        seen.append(((*tensors, *args[4:]), snapshot))
        return real_returns(*args)

    monkeypatch.setattr(pqn, "AgentEnvs", make_envs)
    monkeypatch.setattr(pqn, "ensemble_call", spying_call)
    monkeypatch.setattr(pqn, "q_lambda_returns", spying_returns)
    cfg = Config(seeds=(3, 5), **{**TINY, "total_steps": 2 * 16 * 3, "diag_every": 0})
    main(cfg)
    T = cfg.num_steps
    base = params_now["base"]
    assert len(seen) == 3
    for i, ((rewards, next_values, terminated, truncated, gamma, lam), snap) in enumerate(seen):
        steps = envs[0].record[i * T : (i + 1) * T]
        assert (gamma, lam) == (cfg.gamma, cfg.q_lambda)
        assert torch.equal(rewards, torch.stack([s.reward for _, s in steps]))
        assert torch.equal(terminated, torch.stack([s.terminated for _, s in steps]))
        assert torch.equal(truncated, torch.stack([s.truncated for _, s in steps]))
        assert truncated[:, :, 1].any()
        final = torch.stack([s.final_obs for _, s in steps])  # (T, E, K, 4)
        q = real_call(base, snap, final.movedim(1, 0).reshape(2, -1, 4))
        want = q.max(-1).values.reshape(2, T, -1).movedim(0, 1)
        torch.testing.assert_close(next_values, want)


@pytest.mark.parametrize("obs_shape", [(4,), (4, 10, 10)])
def test_orthogonal_init_is_cleanrls_layer_init_per_agent(obs_shape):
    spec = NetworkSpec("tanh", "last", layer_norm=True)
    net = orthogonal_init_(build_networks(spec, [3], obs_shape, 3)[0], 3)
    affine = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(affine) == 4  # first layer (or convolution), two Hadamard branches, head
    for m in affine:
        w = m.weight.detach().flatten(1).double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(
            gram, 2 * torch.eye(len(gram), dtype=torch.float64), atol=1e-5, rtol=0
        )
        assert (m.bias == 0).all()
    norms = [m for m in net.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all((m.weight == 1).all() and (m.bias == 0).all() for m in norms)
    # the draw depends on the agent's seed only
    again = orthogonal_init_(build_networks(spec, [0, 3], obs_shape, 3)[1], 3)
    other = orthogonal_init_(build_networks(spec, [3], obs_shape, 3)[0], 4)
    assert torch.equal(net.head.weight, again.head.weight)
    assert not torch.equal(net.head.weight, other.head.weight)


def test_hadamard_all_has_a_layer_norm_in_each_branch():
    spec = NetworkSpec("tanh", "all", layer_norm=True)
    net = build_networks(spec, [0], (4,), 2, tag="pqn")[0]
    base, _ = stack([net])
    for layer in base.hidden:
        for branch in (layer.branch1, layer.branch2):
            assert isinstance(branch.norm, nn.LayerNorm)


# --------------------------------------------------------------------------------------------
# MinAtar and configs


def test_minatar_smoke():
    cfg = Config(
        env_id="MinAtar/Breakout-v1",
        seeds=(0, 1),
        copies=8,
        num_steps=16,
        num_minibatches=4,
        update_epochs=1,
        total_steps=8 * 16 * 3,
        diag_every=128,
        probe_size=32,
    )
    run = main(cfg)
    assert run.params["hidden.0.conv.weight"].shape == (2, 16, 4, 3, 3)
    assert all(torch.isfinite(p).all() for p in run.params.values())
    assert run.speed["updates"] == 3 * 4 and run.speed["env_steps"] == 2 * 8 * 16 * 3
    assert set(run.diagnostics.seed) == {0, 1}
    assert (run.returns.episode_return >= 0).all()


def test_minatar_preset_is_purejaxqls():
    cfg = Config.minatar("MinAtar/Asterix-v1", total_steps=50_000, seeds=(1, 2))
    assert (cfg.copies, cfg.num_steps, cfg.num_minibatches, cfg.update_epochs) == (128, 32, 32, 2)
    assert cfg.learning_rate == 5e-4 and cfg.exploration_fraction == 0.1
    assert cfg.network.layer_norm and cfg.seeds == (1, 2)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(env_id="CartPole-v0"), "env_id"),
        (dict(seeds=()), "seeds"),
        (dict(seeds=(1, 1)), "distinct"),
        (dict(total_steps=-5), "total_steps"),
        (dict(total_steps=100), "at least one rollout"),
        (dict(num_minibatches=3), "num_minibatches must divide"),
        (dict(copies=0), "copies"),
        (dict(gamma=1.5), "gamma"),
        (dict(q_lambda=-0.1), "q_lambda"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(max_grad_norm=-1.0), "max_grad_norm"),
        (dict(diag_every=-1), "diag_every"),
        (dict(hidden=()), "hidden"),
        (dict(device="gpu7"), "device"),
        (dict(env_id="MinAtar/Breakout-v1", network=NetworkSpec("tanh", "all")), "MinAtar"),
    ],
)
def test_bad_configs_raise(overrides, match):
    with pytest.raises(ValueError, match=match):
        Config(**overrides)
