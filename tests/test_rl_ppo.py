"""Tests of actlab.rl.ppo: GAE, log-probabilities and the PPO losses against plain Python loops
written from the textbook formulas; one agent alone and inside an ensemble of six gives the same
numbers; a MinAtar smoke run; bad configurations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from actlab.progress import Reporter, reporting
from actlab.rl import ppo
from actlab.rl.common import NetworkSpec
from actlab.rl.ppo import (
    Config,
    categorical_logprob_entropy,
    gae,
    main,
    ppo_losses,
    sample_actions,
)

# --------------------------------------------------------------------------------------------
# Pure helpers against naive loops


def naive_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """``A_t = sum_{l=0}^{n-1} (gamma lam)^l delta_{t+l}``, summed until the episode ends (the
    step that ends it included) or the rollout does; ``delta_t = r_t + gamma (1 - term_t)
    V(s'_{t+1}) - V(s_t)``. One column of Python floats at a time."""
    T = len(rewards)

    def delta(t):
        bootstrap = 0.0 if terminated[t] else gamma * next_values[t]
        return rewards[t] + bootstrap - values[t]

    advantages = []
    for t in range(T):
        total, l = 0.0, 0
        while t + l < T:
            total += (gamma * lam) ** l * delta(t + l)
            if terminated[t + l] or truncated[t + l]:
                break
            l += 1
        advantages.append(total)
    return advantages


def test_gae_matches_the_truncated_sum_of_deltas():
    gen = torch.Generator().manual_seed(0)
    T, E, K = 9, 2, 3
    rewards = torch.randn(T, E, K, generator=gen, dtype=torch.float64)
    values = torch.randn(T, E, K, generator=gen, dtype=torch.float64)
    next_values = torch.randn(T, E, K, generator=gen, dtype=torch.float64)
    terminated = torch.zeros(T, E, K, dtype=torch.bool)
    truncated = torch.zeros(T, E, K, dtype=torch.bool)
    terminated[2, 0, 0] = terminated[6, 0, 0] = True  # two episodes end in one column
    truncated[4, 0, 1] = True  # a time limit: bootstraps, but cuts the trace
    terminated[8, 1, 0] = True  # at the rollout's last step
    truncated[0, 1, 2] = terminated[5, 1, 2] = True  # both kinds in one column
    terminated[3, 1, 1] = truncated[3, 1, 1] = True  # both at once: terminal wins
    gamma, lam = 0.9, 0.7
    adv, ret = gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    for e in range(E):
        for k in range(K):
            col = [x[:, e, k].tolist() for x in (rewards, values, next_values)]
            want = naive_gae(*col, terminated[:, e, k], truncated[:, e, k], gamma, lam)
            torch.testing.assert_close(adv[:, e, k], torch.tensor(want, dtype=torch.float64))
    torch.testing.assert_close(ret, adv + values)
    # the two boundary kinds, one step each: a truncated step bootstraps, a terminal does not
    assert adv[4, 0, 1] == pytest.approx(
        rewards[4, 0, 1] + gamma * next_values[4, 0, 1] - values[4, 0, 1]
    )
    assert adv[2, 0, 0] == pytest.approx(rewards[2, 0, 0] - values[2, 0, 0])
    assert adv[3, 1, 1] == pytest.approx(rewards[3, 1, 1] - values[3, 1, 1])


def test_gae_lambda_one_is_the_discounted_return_minus_the_value():
    # lambda = 1, no episode end: G_t = sum_l gamma^l r_{t+l} + gamma^{T-t} V(s'_T)
    T, gamma = 6, 0.95
    gen = torch.Generator().manual_seed(1)
    r, v = torch.randn(T, 1, generator=gen), torch.randn(T, 1, generator=gen)
    v_next = torch.cat([v[1:], torch.randn(1, 1, generator=gen)])
    none = torch.zeros(T, 1, dtype=torch.bool)
    _, ret = gae(r, v, v_next, none, none, gamma, 1.0)
    for t in range(T):
        g = sum(gamma**l * r[t + l, 0].item() for l in range(T - t))
        g += gamma ** (T - t) * v_next[-1, 0].item()
        assert ret[t, 0].item() == pytest.approx(g, rel=1e-5)


def test_log_probability_and_entropy_by_hand():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64) * 3
    actions = torch.randint(3, (2, 5), generator=gen)
    logprob, entropy = categorical_logprob_entropy(logits, actions)
    for e in range(2):
        for b in range(5):
            z = logits[e, b].tolist()
            norm = sum(math.exp(x) for x in z)
            p = [math.exp(x) / norm for x in z]
            assert logprob[e, b].item() == pytest.approx(math.log(p[actions[e, b]]), rel=1e-12)
            assert entropy[e, b].item() == pytest.approx(-sum(q * math.log(q) for q in p))


def naive_losses(new_lp, old_lp, adv, new_v, old_v, ret, c, clip_vloss, norm_adv):
    """One member's losses from lists of floats."""
    n = len(adv)
    if norm_adv:
        mean = sum(adv) / n
        std = math.sqrt(sum((a - mean) ** 2 for a in adv) / (n - 1))
        adv = [(a - mean) / (std + 1e-8) for a in adv]
    pg, vl = 0.0, 0.0
    for i in range(n):
        rho = math.exp(new_lp[i] - old_lp[i])
        pg += max(-adv[i] * rho, -adv[i] * min(max(rho, 1 - c), 1 + c)) / n
        unclipped = (new_v[i] - ret[i]) ** 2
        if clip_vloss:
            v_clip = old_v[i] + min(max(new_v[i] - old_v[i], -c), c)
            vl += 0.5 * max(unclipped, (v_clip - ret[i]) ** 2) / n
        else:
            vl += 0.5 * unclipped / n
    return pg, vl


@pytest.mark.parametrize(("clip_vloss", "norm_adv"), [(True, True), (False, False)])
def test_ppo_losses_match_a_loop_per_member(clip_vloss, norm_adv):
    gen = torch.Generator().manual_seed(3)
    E, B, c = 3, 16, 0.2

    def rand(scale=1.0):
        return torch.randn(E, B, generator=gen, dtype=torch.float64) * scale

    old_lp = rand()
    new_lp = old_lp + rand(0.4)  # ratios on both sides of the clip range
    adv = rand(2.0) + torch.tensor([[0.0], [5.0], [-3.0]], dtype=torch.float64)
    old_v = rand()
    new_v = old_v + rand(0.5)  # value changes on both sides of +-c
    ret = rand(2.0)
    pg, vl = ppo_losses(new_lp, old_lp, adv, new_v, old_v, ret, c, clip_vloss, norm_adv)
    assert pg.shape == vl.shape == (E,)
    for e in range(E):
        args = [x[e].tolist() for x in (new_lp, old_lp, adv, new_v, old_v, ret)]
        want_pg, want_vl = naive_losses(*args, c, clip_vloss, norm_adv)
        assert pg[e].item() == pytest.approx(want_pg, rel=1e-12, abs=1e-12)
        assert vl[e].item() == pytest.approx(want_vl, rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------------------------
# The agent

TINY = dict(copies=2, num_steps=32, num_minibatches=4, total_steps=256, diag_every=64)
"""4 rollouts of 64 transitions, 16 updates each; random CartPole episodes last ~20 steps."""
PLAIN, HADAMARD = NetworkSpec("tanh"), NetworkSpec("tanh", "last")


def tiny(seeds, network, **kw):
    return main(Config(seeds=seeds, network=network, probe_size=32, **{**TINY, **kw}))


def agent_frames(run, seed):
    """The agent's episodes and diagnostics, without the member index (its place in the run)."""
    returns = run.returns[run.returns.seed == seed].drop(columns="member")
    diags = run.diagnostics[run.diagnostics.seed == seed].drop(columns="member")
    return returns.reset_index(drop=True), diags.reset_index(drop=True)


@pytest.mark.parametrize("network", [PLAIN, HADAMARD])
def test_an_agents_numbers_do_not_depend_on_its_companions(network):
    alone = tiny((3,), network)
    pair = tiny((0, 3), network)
    six = tiny((0, 1, 3, 4, 5, 6), network)
    assert alone.speed["updates"] == six.speed["updates"] == 4 * 4 * 4
    assert not torch.equal(six.params["actor.head.weight"][2], six.params["actor.head.weight"][3])
    returns_six, diags_six = agent_frames(six, 3)
    assert len(returns_six) > 10
    assert sorted(diags_six.step.unique()) == [0, 64, 128, 192, 256]
    assert diags_six.metric.str.startswith("critic/").any()
    assert diags_six.metric.str.endswith("grad_mean_abs").any()

    # In any ensemble of E >= 2 agents: bit-identical. Each nn.Linear runs as one
    # torch.baddbmm whose member slice is the same product whatever E is; the losses and the
    # advantage statistics reduce along each agent's own row; Adam and the clipping are
    # element-wise or per member; actions and minibatches come from the agent's generators.
    for name, p in pair.params.items():
        assert torch.equal(p[1], six.params[name][2]), name
    returns_pair, diags_pair = agent_frames(pair, 3)
    assert returns_pair.equals(returns_six) and diags_pair.equals(diags_six)

    # Alone (E = 1): equal to float32 rounding. The critic's head has one output, and torch.bmm
    # of a batch of one (16, 84) @ (84, 1) product takes another kernel than the same product
    # inside a batch of two or more (measured: 2.9e-6 apart on random data, while heads of two
    # or more outputs agree exactly). Measured after these 64 updates: weights at most 3.0e-8
    # apart, diagnostics 3.4e-7 relative, identical actions and episodes; the tolerances below
    # leave 30x. Over long runs the difference can grow until one sampled action flips.
    returns_alone, diags_alone = agent_frames(alone, 3)
    assert returns_alone.equals(returns_six)
    for name, p in alone.params.items():
        torch.testing.assert_close(p[0], six.params[name][2], rtol=0, atol=1e-6, msg=name)
    assert diags_alone.drop(columns="value").equals(diags_six.drop(columns="value"))
    torch.testing.assert_close(
        torch.tensor(diags_alone.value.to_numpy()),
        torch.tensor(diags_six.value.to_numpy()),
        rtol=1e-5,
        atol=1e-9,
    )


def test_rollout_wiring_successor_values_and_annealed_rate(monkeypatch):
    # What main hands to gae: V(s'_{t+1}) is V(s_{t+1}) within an episode and the value of the
    # episode's last state where it ended (not the next episode's first); and the rate that
    # Adam steps with falls linearly to 0 over the rollouts, one rate for every agent.
    seen, rates = [], []
    monkeypatch.setattr(ppo, "gae", lambda *args: seen.append(args) or gae(*args))

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            rates.append({g["lr"] for g in self.param_groups})
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    tiny((0, 1), PLAIN, diag_every=0)
    assert len(seen) == 4
    for _, values, next_values, terminated, truncated, *_ in seen:
        assert values.shape == (32, 2, 2)  # (T, E, K)
        done = terminated | truncated
        inside = ~done[:-1]
        assert inside.any() and done.any()
        torch.testing.assert_close(next_values[:-1][inside], values[1:][inside])
        assert (next_values[:-1][done[:-1]] != values[1:][done[:-1]]).all()
    assert [len(r) for r in rates] == [1] * 64
    assert [r.pop() for r in rates[::16]] == pytest.approx(
        [2.5e-4 * f for f in (1, 0.75, 0.5, 0.25)]
    )


def test_minatar_smoke_and_progress():
    reporter = Reporter("ppo")
    with reporting(reporter):
        run = main(
            Config(
                env_id="MinAtar/Breakout-v1",
                seeds=(0, 1),
                copies=2,
                num_steps=32,
                total_steps=200,  # three whole rollouts of 64 steps per agent
                diag_every=64,
                probe_size=32,
            )
        )
    assert reporter.done == 192
    assert run.speed["env_steps"] == 2 * 192 and run.speed["updates"] == 3 * 4 * 4
    assert run.params["actor.hidden.0.conv.weight"].shape == (2, 16, 4, 3, 3)
    assert run.params["actor.head.weight"].shape == (2, 3, 128)
    assert run.params["critic.head.weight"].shape == (2, 1, 128)
    assert all(torch.isfinite(p).all() for p in run.params.values())
    assert set(run.diagnostics.seed) == {0, 1}
    assert list(run.returns.columns) == ["member", "seed", "env_step", "episode_return", "length"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"env_id": "CartPole-v0"}, "CartPole-v1"),
        ({"seeds": ()}, "seeds"),
        ({"seeds": (1, 1)}, "distinct"),
        ({"network": NetworkSpec("tahn")}, "tanh"),
        ({"hidden": ()}, "hidden"),
        ({"total_steps": -5}, "total_steps"),
        ({"total_steps": 100, "copies": 4, "num_steps": 128}, "total_steps"),
        ({"num_minibatches": 3}, "num_minibatches"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": float("nan")}, "gae_lambda"),
        ({"clip_coef": -0.1}, "clip_coef"),
        ({"max_grad_norm": 0}, "max_grad_norm"),
        ({"diag_every": -1}, "diag_every"),
        ({"copies": True}, "copies"),
        ({"device": "gpu0"}, "device"),
    ],
)
def test_bad_configs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)


def test_sample_actions_is_the_inverse_cdf_of_the_uniform():
    # probabilities 0.2, 0.5, 0.3: cdf 0.2, 0.7 -> u in [0, 0.2) gives 0, [0.2, 0.7) 1, else 2
    logits = torch.log(torch.tensor([0.2, 0.5, 0.3])).expand(2, 4, 3)
    u = torch.tensor([[0.0, 0.19, 0.21, 0.69], [0.71, 0.999, 0.5, 0.1]])
    assert sample_actions(logits, u).tolist() == [[0, 0, 1, 1], [2, 2, 1, 0]]


def test_sample_actions_frequencies_match_the_softmax():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 4, generator=gen)  # three agents, four actions
    n = 20_000
    actions = sample_actions(logits.expand(3, n, 4), torch.rand(3, n, generator=gen))
    probs = torch.softmax(logits.double(), -1).squeeze(1).numpy()
    for m in range(3):
        counts = np.bincount(actions[m].numpy(), minlength=4)
        assert stats.chisquare(counts, probs[m] / probs[m].sum() * n).pvalue > 1e-4
