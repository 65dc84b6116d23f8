"""The rl-hadamard experiment: its summary recomputed from the episodes with NumPy, the claims'
verdicts against Welch's interval written out, the network names and agent configs, resuming
cell by cell, and the exercises' solutions against independent forms."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import stats

from actlab.experiments.rl_hadamard import exercises as stubs
from actlab.experiments.rl_hadamard import experiment as ex
from actlab.experiments.rl_hadamard import solutions
from actlab.experiments.rl_hadamard.claims import claim_verdict, claims_table
from actlab.experiments.rl_hadamard.report import claims_markdown, verdict_counts

TINY = dataclasses.replace(
    ex.presets["smoke"], agents=("ppo", "pqn"), classic_steps=600, diag_every=300
)


@pytest.fixture(scope="module")
def results():
    return ex.run(TINY)


# ------------------------------------------------------------------------ the summary
def test_every_cell_ran_with_its_own_network(results):
    cells = results.summary["cells"]
    assert [(c["agent"], c["network"]) for c in cells] == [
        (a, n) for a in TINY.agents for n in TINY.networks
    ]
    m = results.metrics
    for c in cells:
        rows = m[(m.agent == c["agent"]) & (m.network == c["network"])]
        assert set(rows.seed) == set(range(TINY.seeds))
        assert c["episodes"] == int((rows.metric == "return/episode").sum()) > 0


def test_final_return_and_auc_from_the_episodes(results):
    """The curves by a direct loop over grid points, the final return as the last point, the
    AUC as the trapezoid mean; the IQM of 2 seeds is their mean."""
    m = results.metrics
    for c in results.summary["cells"]:
        eps = m[(m.agent == c["agent"]) & (m.network == c["network"])]
        eps = eps[eps.metric == "return/episode"]
        grid = np.asarray(c["grid"])
        window = TINY.window * c["steps"]
        finals, areas = [], []
        for seed in range(TINY.seeds):
            mine = eps[eps.seed == seed]
            curve, last = [], math.nan
            for t in grid:
                inside = mine[(mine.step > t - window) & (mine.step <= t)].value
                last = inside.mean() if len(inside) else last
                curve.append(last)
            curve = np.array(curve)
            first = np.flatnonzero(~np.isnan(curve))[0]
            curve[:first] = curve[first]
            finals.append(curve[-1])
            areas.append(np.mean((curve[1:] + curve[:-1]) / 2))
        assert c["per_seed_final"] == pytest.approx(finals)
        assert c["per_seed_auc"] == pytest.approx(areas)
        assert c["final"]["mean"] == pytest.approx(np.mean(finals))  # IQM of two = mean
        assert c["final"]["lo"] <= c["final"]["mean"] <= c["final"]["hi"]


def test_diagnostics_are_the_representation_layers_and_fractions_stay_in_0_1(results):
    for c in results.summary["cells"]:
        assert c["representation"] == "layer1"  # 120 -> 84: two hidden layers
        for key, d in c["diagnostics"].items():
            if key not in ("srank", "effective_rank"):
                assert 0 <= d["end"]["lo"] <= d["end"]["mean"] <= d["end"]["hi"] <= 1, key


# ------------------------------------------------------------------------ claims
def welch(a, b):
    """Welch's 95% interval of mean(a) - mean(b), written out."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    d = a.mean() - b.mean()
    return d - half, d + half


@pytest.mark.parametrize(
    "a,b,sign,verdict",
    [
        ([10, 11, 12, 11], [5, 6, 5, 6], 1, "reproduced"),
        ([10, 11, 12, 11], [5, 6, 5, 6], -1, "not reproduced"),
        ([10, 14, 6, 11], [9, 12, 7, 10], 1, "inconclusive"),
        ([3.0], [1.0, 2.0], 1, "inconclusive"),
    ],
)
def test_claim_verdicts_follow_welchs_interval(a, b, sign, verdict):
    out = claim_verdict(a, b, sign)
    assert out["verdict"] == verdict
    assert out["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    if len(a) > 1:
        assert (out["lo"], out["hi"]) == pytest.approx(welch(a, b))


def test_the_claims_table_compares_the_claimed_networks():
    def cell(net, aucs, sat):
        return {
            "agent": "ppo",
            "env": "CartPole-v1",
            "network": net,
            "per_seed_auc": aucs,
            "diagnostics": {"saturated_share": {"per_seed_end": sat}},
        }

    cells = [cell("tanh", [1, 2, 3], [0.5, 0.6, 0.7]), cell("tanh-hadamard", [7, 8, 9], [0, 0, 0])]
    rows = {r["claim"]: r for r in claims_table(cells)}
    assert set(rows) == {"faster", "fewer-saturated"}  # no rank, no wide, no relu cells
    assert rows["faster"]["verdict"] == "reproduced" and rows["faster"]["diff"] == 6
    assert rows["fewer-saturated"]["verdict"] == "reproduced"
    assert verdict_counts(list(rows.values()))["reproduced"] == 2
    table = "\n".join(claims_markdown(list(rows.values())))
    assert "**reproduced**" in table and "-60 points" in table


# ------------------------------------------------------------------------ config
def test_network_names_become_the_papers_placements():
    assert ex.network_spec("tanh-hadamard", "dqn").hadamard == "last"
    assert ex.network_spec("tanh-hadamard", "pqn").hadamard == "all"
    assert ex.network_spec("tanh", "pqn").layer_norm
    wide = ex.network_spec("tanh-wide", "ppo")
    assert wide.widened and wide.hadamard == "last"
    with pytest.raises(ValueError, match="networks"):
        ex.network_spec("tanh-hadmard", "dqn")
    with pytest.raises(ValueError, match="networks"):
        ex.network_spec("tahn", "dqn")


def test_agent_configs_take_the_cells_budget():
    cfg = dataclasses.replace(TINY, classic_steps=20_000, minatar_steps=30_000)
    dqn = ex.agent_config("dqn", "CartPole-v1", "tanh", cfg)
    assert dqn.total_steps == 20_000 and dqn.learning_starts == 2_000
    assert dqn.seeds == (0, 1)
    pqn = ex.agent_config("pqn", "MinAtar/Breakout-v1", "tanh-hadamard", cfg)
    assert pqn.network.hadamard == "last" and pqn.total_steps == 30_000


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(agents=("a2c",)), "agents"),
        (dict(envs=("Pong-v5",)), "envs"),
        (dict(networks=("tanh-hadmard",)), "networks"),
        (dict(classic_steps=-5), "classic_steps"),
        (dict(window=0.0), "window"),
    ],
)
def test_bad_configs_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **change)


def test_a_killed_run_resumes_cell_by_cell():
    """An interrupted run keeps its finished cells; the resumed run recomputes only the rest
    and ends with the same numbers as an uninterrupted one."""
    cfg = dataclasses.replace(TINY, agents=("ppo",), classic_steps=600, diag_every=0)
    saved, calls = {}, []

    def chunks(key, fn, work=0):
        if key not in saved:
            if len(calls) == 1 and not saved.get("_resumed"):
                raise KeyboardInterrupt  # killed during the second cell
            calls.append(key)
            saved[key] = fn()
        return saved[key]

    with pytest.raises(KeyboardInterrupt):
        ex.run(cfg, chunks)
    assert calls == ["ppo/CartPole-v1/tanh"]
    saved["_resumed"] = True
    resumed = ex.run(cfg, chunks)
    assert calls == ["ppo/CartPole-v1/tanh", "ppo/CartPole-v1/tanh-hadamard"]
    whole = ex.run(cfg)

    def numbers(res):  # everything but the wall-clock speed
        return [{k: v for k, v in c.items() if k != "speed"} for c in res.summary["cells"]]

    assert numbers(resumed) == numbers(whole)


# ------------------------------------------------------------------------ exercises
def forward_lambda_return(r, boot_last, next_max_q, gamma, lam, t):
    """The λ-return as a weighted sum of n-step returns (no terminal), the forward view."""
    T = len(r)
    total = 0.0
    for n in range(1, T - t + 1):
        nstep = sum(gamma**k * r[t + k] for k in range(n)) + gamma**n * next_max_q[t + n - 1]
        weight = (1 - lam) * lam ** (n - 1) if n < T - t else lam ** (n - 1)
        total += weight * nstep
    return total


def test_lambda_returns_match_the_forward_view_and_stop_at_terminals():
    rng = np.random.default_rng(0)
    r, q = rng.normal(size=6), rng.normal(size=6)
    none = np.zeros(6)
    got = solutions.lambda_returns(r, none, q, 0.9, 0.7)
    want = [forward_lambda_return(r, q[-1], q, 0.9, 0.7, t) for t in range(6)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(solutions.lambda_returns(r, none, q, 0.9, 0.0), r + 0.9 * q)
    term = none.copy()
    term[2] = 1
    cut = solutions.lambda_returns(r, term, q, 0.9, 0.7)
    assert cut[2] == r[2]
    np.testing.assert_allclose(cut[3:], got[3:])  # after the terminal: a new episode
    with pytest.raises(NotImplementedError):
        stubs.lambda_returns(r, none, q, 0.9, 0.7)


def test_matched_plain_width_by_counting_parameters():
    def count(*mods):
        return sum(p.numel() for m in mods for p in m.parameters())

    for n_in, n_out in ((120, 84), (4, 16), (1024, 128)):
        hadamard = count(torch.nn.Linear(n_in, n_out), torch.nn.Linear(n_in, n_out))
        hadamard += n_out  # the output unit's weights
        m = solutions.matched_plain_width(n_in, n_out)
        assert count(torch.nn.Linear(n_in, m)) + m >= hadamard
        assert count(torch.nn.Linear(n_in, m - 1)) + m - 1 < hadamard
    with pytest.raises(NotImplementedError):
        stubs.matched_plain_width(120, 84)


def test_a_budget_an_agent_cannot_use_is_refused_before_the_run():
    with pytest.raises(ValueError, match=r"ppo on CartPole-v1 \(classic_steps=300\)"):
        dataclasses.replace(TINY, classic_steps=300)


def test_head_outputs_are_the_trained_networks_outputs_on_the_probe_states():
    """Each seed's network rebuilt alone from its parameters (member_params into a plain module)
    gives the Q range and the actor's top probability that the cell reports."""
    from actlab.rl import ppo, pqn
    from actlab.rl.common import build_network
    from actlab.rl.diagnostics import probe_batch
    from actlab.rl.ensemble import member_params

    probe = probe_batch("CartPole-v1", 32, 0)
    acfg = pqn.Config(seeds=(0, 1), total_steps=512, diag_every=0)
    out = pqn.main(acfg)
    heads = ex.head_outputs("pqn", acfg, out.params, 32)
    for m in range(2):
        net = build_network(acfg.network, (4,), 2)
        net.load_state_dict(member_params(out.params, m))
        q = net(probe).detach()
        assert heads["q_max"][m] == pytest.approx(float(q.max()), rel=1e-5)
        assert heads["q_min"][m] == pytest.approx(float(q.min()), rel=1e-5)
    acfg = ppo.Config(seeds=(0,), total_steps=512, diag_every=0)
    out = ppo.main(acfg)
    heads = ex.head_outputs("ppo", acfg, out.params, 32)
    actor = build_network(acfg.network, (4,), 2)
    actor.load_state_dict({k[6:]: v[0] for k, v in out.params.items() if k.startswith("actor.")})
    probs = torch.softmax(actor(probe).detach(), dim=-1)
    assert heads["top_probability"][0] == pytest.approx(float(probs.max(-1).values.mean()))
    assert 0.5 <= heads["top_probability"][0] <= 1


def test_the_heads_sentence_says_whether_values_leave_tanhs_range():
    from actlab.experiments.rl_hadamard.report import heads_sentence

    cell = {"agent": "dqn", "env": "CartPole-v1", "network": "tanh"}
    big = heads_sentence([{**cell, "heads": {"q_min": [0.5, 1.0], "q_max": [30.0, 42.0]}}])
    assert "span 0.5 to 42" in big and "outside what a tanh output could give" in big
    small = heads_sentence([{**cell, "heads": {"q_min": [0.1], "q_max": [0.9]}}])
    assert "have not yet grown beyond ±1" in small


def test_a_diagnostic_claim_is_also_tested_at_initialisation():
    def cell(net, start, end):
        d = {"effective_rank": {"per_seed_start": start, "per_seed_end": end}}
        return {
            "agent": "dqn",
            "env": "CartPole-v1",
            "network": net,
            "per_seed_auc": [1, 2],
            "diagnostics": d,
        }

    rows = claims_table(
        [
            cell("tanh", [3, 3.1, 2.9], [3, 3.2, 3.1]),
            cell("tanh-hadamard", [6, 6.2, 5.9], [6, 6.1, 6.3]),
        ]
    )
    rank = next(r for r in rows if r["claim"] == "higher-rank")
    assert rank["verdict"] == "reproduced" and rank["at_start"] == "reproduced"
    assert "(at init: reproduced)" in "\n".join(claims_markdown([rank]))
    faster = next(r for r in rows if r["claim"] == "faster")
    assert "at_start" not in faster
