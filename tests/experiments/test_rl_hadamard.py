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
    assert "faster" not in claims_markdown(list(rows.values()))[2]
    assert "higher mean return over training (AUC)" in claims_markdown(list(rows.values()))[2]
    assert set(rows) == {"higher-auc", "fewer-saturated"}  # no rank, no wide, no relu cells
    assert rows["higher-auc"]["verdict"] == "reproduced" and rows["higher-auc"]["diff"] == 6
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

    for n_in, n_out, acts in ((120, 84, 2), (4, 16, 1), (1024, 128, 6)):
        branches = torch.nn.Linear(n_in, n_out), torch.nn.Linear(n_in, n_out)
        hadamard = count(*branches, torch.nn.Linear(n_out, acts))
        m = solutions.matched_plain_width(n_in, n_out, acts)
        assert count(torch.nn.Linear(n_in, m), torch.nn.Linear(m, acts)) >= hadamard
        assert count(torch.nn.Linear(n_in, m - 1), torch.nn.Linear(m - 1, acts)) < hadamard
    # the exercise's numbers: the CartPole representation layer, two actions
    assert solutions.matched_plain_width(120, 84, 2) == 167
    assert "N' = 167" in stubs.EXERCISES[1].solution
    with pytest.raises(NotImplementedError):
        stubs.matched_plain_width(120, 84, 2)


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
    assert "+3.03 [+2.72, +3.35]: already there" in "\n".join(claims_markdown([rank]))
    assert "within noise (+0 [" in "\n".join(claims_markdown([rank]))  # no -4.44e-16
    assert ": already there |" in "\n".join(claims_markdown([rank]))
    faster = next(r for r in rows if r["claim"] == "higher-auc")
    assert "at_start" not in faster


# ------------------------------------------------------------------------ review fixes (#16)
def paired_t(d):
    """The paired t-interval of mean(d), written out."""
    d = np.asarray(d, float)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean() - half, d.mean() + half


def _rank_cell(net, start, end, steps=(0, 1000)):
    d = {"effective_rank": {"per_seed_start": start, "per_seed_end": end, "steps": list(steps)}}
    return {
        "agent": "dqn",
        "env": "CartPole-v1",
        "network": net,
        "per_seed_auc": [1.0, 2.0, 3.0],
        "diagnostics": d,
    }


def test_a_gap_already_there_at_init_that_training_narrows_is_said_so():
    """The effective-rank gap of the default run's DQN: Hadamard far above at init, still above
    at the end, but training narrowed it; the change column is Welch's interval of each seed's
    end - start, written out."""
    tanh = _rank_cell("tanh", [3.4, 3.5, 3.3, 3.4], [3.6, 3.7, 3.6, 3.65])
    had = _rank_cell("tanh-hadamard", [5.2, 5.3, 5.1, 5.25], [3.9, 4.0, 3.85, 4.1])
    row = next(r for r in claims_table([tanh, had]) if r["claim"] == "higher-rank")
    assert row["verdict"] == "reproduced" and row["at_start"] == "reproduced"
    ch_t = np.subtract(tanh["diagnostics"]["effective_rank"]["per_seed_end"], [3.4, 3.5, 3.3, 3.4])
    ch_h = np.subtract(had["diagnostics"]["effective_rank"]["per_seed_end"], [5.2, 5.3, 5.1, 5.25])
    assert (row["change"]["lo"], row["change"]["hi"]) == pytest.approx(welch(ch_h, ch_t))
    assert row["change"]["verdict"] == "not reproduced"
    line = claims_markdown([row])[-1]
    assert "already there" in line and "| narrowed (" in line
    # the gap widening instead
    had2 = _rank_cell("tanh-hadamard", [3.4, 3.5, 3.3, 3.4], [5.9, 6.0, 5.85, 6.1])
    row2 = next(r for r in claims_table([tanh, had2]) if r["claim"] == "higher-rank")
    assert row2["at_start"] == "inconclusive" and "| widened (" in claims_markdown([row2])[-1]


def test_with_one_record_there_is_no_at_init_test():
    """A run with a single diagnostics record has no initialisation to compare with."""
    one = [_rank_cell(n, [3, 4, 5], [3, 4, 5], steps=(0, 0)) for n in ("tanh", "tanh-hadamard")]
    row = next(r for r in claims_table(one) if r["claim"] == "higher-rank")
    assert "start" not in row and "change" not in row
    assert claims_markdown([row])[-1].endswith("| — | — |")


def test_the_paired_check_is_the_t_interval_of_same_seed_differences():
    a, b = [5.0, 7.0, 6.5, 9.0], [4.0, 6.5, 5.0, 8.2]  # a consistent, small gain per seed
    row = claims_table(
        [
            {"agent": "ppo", "env": "E", "network": "tanh", "per_seed_auc": b, "diagnostics": {}},
            {
                "agent": "ppo",
                "env": "E",
                "network": "tanh-hadamard",
                "per_seed_auc": a,
                "diagnostics": {},
            },
        ]
    )[0]
    assert (row["paired"]["lo"], row["paired"]["hi"]) == pytest.approx(paired_t(np.subtract(a, b)))
    assert row["verdict"] == "inconclusive" and row["paired"]["verdict"] == "reproduced"
    from actlab.experiments.rl_hadamard.report import paired_sentence

    text = paired_sentence([row])
    assert "same verdict in 0 of 1 rows" in text and "(paired: reproduced)" in text
    row["paired"]["verdict"] = "inconclusive"
    assert paired_sentence([row]).endswith("in 1 of 1 rows.")


def _curve_cell(net, first, final, agent="pqn"):
    return {
        "agent": agent,
        "env": "CartPole-v1",
        "network": net,
        "curves": [[None, f, f + 100.0] for f in first],  # the first finite point counts
        "per_seed_final": final,
    }


def test_the_learning_sentence_names_cells_that_did_not_rise_above_their_start():
    from actlab.experiments.rl_hadamard.report import learning_rows, learning_sentence

    rose = _curve_cell("tanh", [20, 22, 19, 25], [200, 150, 260, 180])
    flat = _curve_cell("tanh-hadamard", [23, 27, 21, 25], [49, 9.6, 39, 13])
    rows = learning_rows([rose, flat])
    want = paired_t(np.subtract([49, 9.6, 39, 13], [23, 27, 21, 25]))
    assert (rows[1]["lo"], rows[1]["hi"]) == pytest.approx(want)  # first finite point used
    text = learning_sentence([rose, flat])
    assert text.startswith("1 of 2 cells did **not**") and "`tanh-hadamard`" in text
    assert "`tanh`" not in text
    assert learning_sentence([rose]).startswith("Every cell ended measurably above")


def test_the_saturation_sentence_says_when_no_unit_is_saturated_on_every_state():
    from actlab.experiments.rl_hadamard.report import saturation_sentence

    def cell(units):
        return {"diagnostics": {"saturated": {"per_seed_end": units}}}

    assert "In all 2 tanh and tanh-Hadamard cells, no unit" in saturation_sentence(
        [cell([0, 0]), cell([0.0])]
    )
    assert saturation_sentence([cell([0, 0]), cell([0, 0.01])]).startswith("In 1 of 2 tanh and")
    assert saturation_sentence([{"diagnostics": {"dead": {}}}]) == ""


def test_the_iqm_sentence_matches_scipys_trimmed_mean():
    from actlab.experiments.rl_hadamard.report import iqm_sentence

    x = np.array([1.0, 2.0, 4.0, 8.0, 100.0])
    assert stats.trim_mean(x, 0.25) == pytest.approx(np.mean(np.sort(x)[1:4]))
    assert "with 5 seeds it drops the 1 lowest and the 1 highest and averages the middle 3" in (
        iqm_sentence([{"seeds": 5}])
    )
    assert stats.trim_mean(x[:3], 0.25) == pytest.approx(x[:3].mean())
    assert "with 3 seeds it is the mean of all 3" in iqm_sentence([{"seeds": 3}])


def test_the_scale_sentence_gives_each_agents_own_step_count():
    from actlab.experiments.rl_hadamard.report import scale_sentence

    cells = [
        {"agent": "dqn", "env": "CartPole-v1", "steps": 20_000, "seeds": 5},
        {"agent": "ppo", "env": "CartPole-v1", "steps": 19_968, "seeds": 5},
        {"agent": "pqn", "env": "CartPole-v1", "steps": 19_968, "seeds": 5},
        {"agent": "pqn", "env": "MinAtar/Breakout-v1", "steps": 36_864, "seeds": 5},
    ]
    assert scale_sentence(cells) == (
        "20,000 (DQN), 19,968 (PPO and PQN) steps per agent on CartPole-v1; 36,864 (PQN) steps "
        "per agent on MinAtar/Breakout-v1; 5 seeds per cell"
    )


def test_the_confounds_name_parameters_missing_baselines_and_agent_only_settings():
    from actlab.experiments.rl_hadamard.report import confounds_sentence, untested_sentence

    def cell(agent, net, params, ln=False, ortho=False, place="none"):
        settings = dict(parameters=params, layer_norm=ln, orthogonal_init=ortho, hadamard=place)
        return {"agent": agent, "env": "CartPole-v1", "network": net, "settings": settings}

    cells = [
        cell("dqn", "tanh", 10_934),
        cell("dqn", "tanh-hadamard", 21_098, place="last"),
        cell("pqn", "tanh", 11_342, True, True),
        cell("pqn", "tanh-hadamard", 22_514, True, True, "all"),
    ]
    text = confounds_sentence(cells)
    assert "21,098 parameters per agent with the Hadamard layer (the representation layer)" in text
    assert "22,514 parameters per agent with the Hadamard layer (every hidden layer)" in text
    assert "no tanh network widened" in text
    assert "LayerNorm before each activation in PQN only" in text
    assert "orthogonal initialisation in PQN only" in text
    wide = confounds_sentence([*cells, cell("dqn", "tanh-wide", 21_000)])
    assert "no tanh network widened" not in wide
    assert "*not-parameters*" in untested_sentence([{"claim": "higher-auc"}])
    assert untested_sentence([{"claim": c.key} for c in ex_claims()]) == ""


def ex_claims():
    from actlab.experiments.rl_hadamard.claims import CLAIMS

    return CLAIMS


def test_cell_settings_count_the_agents_parameters(results):
    """PQN's plain tanh network on CartPole, 4 -> 120 -> 84 -> 2 with LayerNorm (weight and
    bias) before each activation, counted by hand; the Hadamard network has more; PPO counts
    actor and critic."""
    by = {(c["agent"], c["network"]): c["settings"] for c in results.summary["cells"]}
    ln = 2 * 120 + 2 * 84
    plain = (4 * 120 + 120) + (120 * 84 + 84) + (84 * 2 + 2) + ln
    assert by[("pqn", "tanh")]["parameters"] == plain
    assert by[("pqn", "tanh")]["layer_norm"] and by[("pqn", "tanh")]["orthogonal_init"]
    assert by[("pqn", "tanh-hadamard")]["hadamard"] == "all"
    assert by[("pqn", "tanh-hadamard")]["parameters"] > plain
    actor = (4 * 120 + 120) + (120 * 84 + 84) + (84 * 2 + 2)
    critic = (4 * 120 + 120) + (120 * 84 + 84) + (84 + 1)
    assert by[("ppo", "tanh")]["parameters"] == actor + critic
    assert not by[("ppo", "tanh")]["layer_norm"]


def test_figures_have_no_empty_panels(results):
    from actlab.experiments.rl_hadamard.figures import plot_diagnostics, plot_returns

    fig = plot_returns(results)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len({(c["env"], c["agent"]) for c in results.summary["cells"]})
    assert all(ax.lines for ax in visible)
    fig = plot_diagnostics(results)  # tanh networks only: no dead-ReLU panel
    assert all(ax.lines for ax in fig.axes)
    assert not any("dead" in ax.get_title() for ax in fig.axes)


def test_the_return_figure_packs_its_panels_for_the_page():
    """The default run's shape (three agents on CartPole, PQN alone on Breakout): four panels in
    two columns, none hidden, narrow enough to read at 800 px."""
    from actlab.experiments.base import Results
    from actlab.experiments.rl_hadamard.figures import plot_returns

    def cell(agent, env):
        return {
            "agent": agent,
            "env": env,
            "network": "tanh",
            "seeds": 3,
            "grid": [1.0, 2.0, 3.0],
            "curves": [[1.0, 2.0, 3.0], [1.5, 2.5, 3.5], [None, 2.0, 4.0]],
        }

    cells = [cell(a, "CartPole-v1") for a in ("dqn", "ppo", "pqn")]
    cells.append(cell("pqn", "MinAtar/Breakout-v1"))
    frame = _tiny_metrics()
    fig = plot_returns(
        Results(metrics=frame, summary={"cells": cells, "config": {"bootstrap_reps": 20}})
    )
    assert len(fig.axes) == 4 and all(ax.get_visible() for ax in fig.axes)
    assert fig.get_size_inches()[0] <= 8.5
    titles = {ax.get_title() for ax in fig.axes}
    assert "PQN on MinAtar/Breakout-v1" in titles and "DQN on CartPole-v1" in titles


def _tiny_metrics():
    import pandas as pd

    return pd.DataFrame({"member": [0], "step": [0], "metric": ["m"], "value": [0.0]})


def test_the_architecture_sentence_counts_gaps_there_at_init_and_widened_by_training():
    from actlab.experiments.rl_hadamard.report import architecture_sentence

    def row(end, start, change):
        return {
            "verdict": end,
            "start": {"verdict": start},
            "change": {"verdict": change},
        }

    rows = [
        row("reproduced", "reproduced", "not reproduced"),
        row("reproduced", "reproduced", "inconclusive"),
        row("inconclusive", "reproduced", "inconclusive"),  # not reproduced at the end: left out
        {"verdict": "reproduced"},  # AUC: no start
    ]
    text = architecture_sentence(rows)
    assert text.startswith("Of the 2 diagnostic claims reproduced at the end, 2 already held")
    assert "widened the gap in 0 of them (it narrowed it in 1)" in text
    assert "come with the architecture" in text
    rows[1]["change"]["verdict"] = "reproduced"
    text = architecture_sentence(rows)
    assert "widened the gap in 1 of them" in text and "come with the architecture" not in text
    rows[0]["start"]["verdict"] = "inconclusive"
    rows[1]["change"]["verdict"] = "inconclusive"
    assert "come with the architecture" not in architecture_sentence(rows)


# ------------------------------------------------------------------------ seeds that collapsed
def _first_and_final_by_hand(m, c, seed):
    """A seed's first finite curve point and its final return, straight from its episodes: the
    mean of the episodes finished in the window ending at each grid point (the last value
    carried over an empty window)."""
    eps = m[(m.agent == c["agent"]) & (m.network == c["network"]) & (m.seed == seed)]
    eps = eps[eps.metric == "return/episode"]
    window = TINY.window * c["steps"]
    points = []
    for t in c["grid"]:
        inside = eps[(eps.step > t - window) & (eps.step <= t)].value
        if len(inside):
            points.append(float(inside.mean()))
        elif points:
            points.append(points[-1])
    return points[0], points[-1]


def test_collapsed_seeds_are_counted_from_the_episodes(results):
    """Each seed whose final return is below its first window's (near-random) return, counted
    from the smoke run's episodes with a loop of its own; the smoke run has both kinds."""
    from actlab.experiments.rl_hadamard.claims import collapsed_seeds, mostly_collapsed
    from actlab.experiments.rl_hadamard.report import collapse_rows

    m = results.metrics
    cells = results.summary["cells"]
    kinds = set()
    for c in cells:
        want = []
        for seed in range(TINY.seeds):
            first, final = _first_and_final_by_hand(m, c, seed)
            want.append(final < first)
        assert collapsed_seeds(c) == want, (c["agent"], c["network"])
        assert mostly_collapsed(c) == (2 * sum(want) > len(want))
        kinds.update(want)
    assert kinds == {True, False}  # the check is not vacuous
    rows = collapse_rows(cells)
    by_hand = {
        (c["agent"], c["network"]): [
            s for s in range(TINY.seeds) if np.less(*_first_and_final_by_hand(m, c, s)[::-1])
        ]
        for c in cells
    }
    assert {(r["agent"], r["network"]): r["collapsed"] for r in rows} == {
        k: v for k, v in by_hand.items() if v
    }
    for r in rows:
        c = next(x for x in cells if (x["agent"], x["network"]) == (r["agent"], r["network"]))
        assert r["collapsed_final"] == [c["per_seed_final"][s] for s in r["collapsed"]]
        assert sorted(r["collapsed"] + r["rose"]) == list(range(TINY.seeds))


def _split_cell(net, starts, finals, agent="pqn", env="CartPole-v1"):
    return {
        "agent": agent,
        "env": env,
        "network": net,
        "steps": 1000,
        "seeds": len(finals),
        "grid": [500.0, 1000.0],
        "curves": [[None, s, f] for s, f in zip(starts, finals, strict=True)],
        "per_seed_final": finals,
        "per_seed_auc": [(s + f) / 2 for s, f in zip(starts, finals, strict=True)],
        "final": {"mean": float(np.mean(finals))},
        "diagnostics": {},
    }


def test_the_collapse_sentence_gives_each_seeds_fate_and_the_iqm():
    from actlab.experiments.rl_hadamard.report import (
        collapse_sentence,
        learning_sentence,
        random_range,
    )

    split = _split_cell("tanh", [22, 25, 20, 23, 24], [9.5, 10.1, 80.0, 21.0, 50.0])
    fine = _split_cell("tanh-hadamard", [22, 25, 20, 23, 24], [120, 90, 80, 60, 50])
    assert random_range([split, fine], "pqn", "CartPole-v1") == (20, 25)
    text = collapse_sentence([split, fine], {("pqn", "CartPole-v1"): 0.2})
    assert "span 20 to 25 for PQN on CartPole-v1" in text
    assert "with `tanh`: 3 of 5 seeds ended below their own first-window return" in text
    # 21 is below its own start (23) but within the range: at random level, not collapsed
    assert "2 below the random-play range, at 9.5 and 10.1; 1 at random level, at 21" in text
    assert "2 above it, at 80 and 50" in text
    assert "`tanh-hadamard`" not in text  # no seed of it fell below its start
    assert "The 2 seeds below random level end between 9.5 and 10.1 (median 9.8)" in text
    assert "(played with ε = 0.2 at the end)" in text
    assert "greedy" not in text and "collapsed" not in text
    assert "In 1 of these cells most seeds ended below their own first-window return" in text
    assert collapse_sentence([fine]) == ""
    assert "(played with" not in collapse_sentence([split, fine])
    assert text in learning_sentence([split, fine], {("pqn", "CartPole-v1"): 0.2})


def test_the_random_range_is_the_spread_of_first_points_in_the_smoke_run(results):
    """Each seed's level against the min..max of the first curve points of all seeds of its
    agent and environment, by hand from the smoke run's episodes."""
    from actlab.experiments.rl_hadamard.report import collapse_rows, random_range

    m = results.metrics
    cells = results.summary["cells"]
    for agent in TINY.agents:
        mine = [c for c in cells if c["agent"] == agent]
        firsts = [_first_and_final_by_hand(m, c, s)[0] for c in mine for s in range(TINY.seeds)]
        assert random_range(cells, agent, "CartPole-v1") == pytest.approx(
            (min(firsts), max(firsts))
        )
    for r in collapse_rows(cells):
        lo, hi = r["random"]
        c = next(x for x in cells if (x["agent"], x["network"]) == (r["agent"], r["network"]))
        for s, f in enumerate(c["per_seed_final"]):
            assert r["level"][s] == ("below" if f < lo else "above" if f > hi else "at")


def test_claims_resting_on_mostly_collapsed_cells_are_marked():
    """A claim row carries the compared networks where most seeds collapsed; the table marks
    only those rows and the text counts them among the reproduced claims."""
    from actlab.experiments.rl_hadamard.report import collapsed_claims_sentence

    starts = [22, 25, 20, 23, 24]
    cells = [
        _split_cell("tanh", starts, [9.5, 10.1, 80.0, 9.8, 50.0]),  # 3 of 5 collapsed
        _split_cell("tanh-hadamard", starts, [300, 310, 320, 330, 340]),
        _split_cell("tanh", starts, [100, 110, 9.0, 120, 130], agent="dqn"),  # 1 of 5
        _split_cell("tanh-hadamard", starts, [300, 310, 320, 330, 340], agent="dqn"),
    ]
    rows = claims_table(cells)
    assert [(r["agent"], r["collapsed"]) for r in rows] == [("pqn", ["tanh"]), ("dqn", [])]
    assert all(r["verdict"] == "reproduced" for r in rows)
    lines = claims_markdown(rows)[2:]
    assert "rests on cells where most seeds ended below their start*: `tanh`" in lines[0]
    assert "rests on" not in lines[1]
    assert collapsed_claims_sentence(rows).startswith("1 of the 2 reproduced claims rest on")
    assert collapsed_claims_sentence([r for r in rows if r["agent"] == "dqn"]) == ""
    more = [*rows, {**rows[0], "verdict": "inconclusive"}]  # counted among the reproduced only
    assert collapsed_claims_sentence(more).startswith("1 of the 2 reproduced claims rest on")


def test_the_measured_list_reads_the_runs_config(results):
    """Budget, ε schedule per agent (from the agents' configs rebuilt from the run's config),
    window, probe and the step the diagnostics end at; a changed config changes the list."""
    from actlab.experiments.rl_hadamard.report import exploration_sentence, measured_list

    text = "\n".join(measured_list(results.summary))
    pqn = ex.agent_config("pqn", "CartPole-v1", "tanh", TINY)
    assert pqn.end_e == 0.2
    assert (
        f"PQN on CartPole-v1: ε-greedy, ε from 1 down to 0.2 over the first "
        f"{int(pqn.exploration_fraction * 600):,} steps (50% of the configured 600), then 0.2 "
        "to the last step, 512" in text
    )
    # PQN and PPO step in whole rollouts: copies x steps, how many, where they stop
    batch = pqn.copies * pqn.num_steps
    assert (
        f"PQN on CartPole-v1 steps {pqn.copies} environment copies × {pqn.num_steps} steps = "
        f"{batch:,} steps per rollout, {512 // batch} rollouts: 512 of the configured 600 steps "
        "(it stops at the last whole rollout)" in text
    )
    assert "PPO on CartPole-v1: actions sampled from the actor's softmax policy" in text
    assert "`tanh`, `tanh-hadamard`" in text and "120 → 84" in text
    assert (
        "the Hadamard layer replaces the representation layer (PPO on CartPole-v1) or every "
        "hidden layer (PQN on CartPole-v1); PPO's actor and critic are separate networks of "
        "the same kind, so the Hadamard layer is in both, and PPO's diagnostics are read from "
        "the actor; PQN puts LayerNorm before each activation." in text
    )
    assert "MinAtar" not in text
    assert "sliding window of 50% of its budget" in text and "at 5 points" in text
    assert "about every 300 steps" in text and "batch of 32 probe states" in text
    assert "*the end* is the last record" in text
    last = results.summary["cells"][0]["diagnostics"]["effective_rank"]["steps"][1]
    assert f"*the end* is the last record: step {last:,} of 512 (PPO on CartPole-v1" in text
    assert "*training* episode" in text
    assert "PQN on CartPole-v1 ends at ε = 0.2" in exploration_sentence(results.summary)

    changed = {
        **results.summary,
        "config": {**results.summary["config"], "classic_steps": 1000, "window": 0.2},
    }
    text = "\n".join(measured_list(changed))
    assert (
        f"over the first {int(pqn.exploration_fraction * 1000):,} steps "
        "(50% of the configured 1,000)" in text
    )
    assert "sliding window of 20% of its budget" in text


def test_record_spacing_and_the_last_record_against_the_final_window(results):
    """The spacing read from the smoke run's diagnostic records; the last record placed against
    the window of the final return, computed by hand."""
    from actlab.experiments.rl_hadamard.report import (
        diagnostic_records,
        end_window_text,
        measured_list,
        record_spacing_text,
    )

    records = diagnostic_records(results)
    m = results.metrics
    for (agent, env), steps in records.items():
        mine = m[(m.agent == agent) & (m.env == env) & (m.metric == "layer1/effective_rank")]
        assert steps == sorted(set(mine.step.astype(int)))
    assert record_spacing_text({("pqn", "E"): [0, 2048, 4096, 6016]}) == (
        "1,920 to 2,048 steps apart for PQN on E"
    )
    assert record_spacing_text({("dqn", "E"): [0, 300, 600]}) == "300 steps apart for DQN on E"
    cells = results.summary["cells"]
    text = end_window_text(cells, TINY.window)
    for c in cells:
        last = c["diagnostics"]["effective_rank"]["steps"][-1]
        start = c["steps"] * (1 - TINY.window)
        where = "before" if last < start else "at the start of" if last == start else "inside"
        assert f"step {last:,}, lies {where} the final-return window" in text
        assert f"{c['steps'] - last:,} steps before the last step" in text
    listed = "\n".join(measured_list(results.summary, records))
    assert record_spacing_text(records) in listed and text in listed


def test_the_reports_terms_are_defined_at_first_use(results):
    """Each of the chapter's own words is defined in the first sentence that uses it."""
    from actlab.experiments.rl_hadamard.report import defined_terms, report

    text = report(results)
    for term, definition in (
        ("replay buffer", "*replay buffer*, a store of past transitions"),
        ("target network", "*target network*, a lagged copy of the Q-network"),
        ("pqn (", "PQN (*parallelised Q-learning*"),
        ("q(λ)", "*Q(λ)* targets, which mix the one-step bootstrap"),
        ("layernorm", "*LayerNorm*, which normalises"),
        ("cell", "A *cell* is one agent × environment × network, trained with 2 seeds"),
        ("representation layer", "*representation layer* is the last hidden layer"),
        ("probe state", "*probe states* are one fixed batch of states"),
        ("dormant", "*τ-dormant*](#term-dormant) when its mean absolute output"),
    ):
        assert definition in text, term
        first = text.lower().replace("*", "").index(term)
        sentence_start = text.replace("*", "").rfind(". ", 0, first)
        assert text.replace("*", "").index(definition.replace("*", "")) >= sentence_start, term
        assert text.replace("*", "").index(definition.replace("*", "")) <= first + 200, term
    assert "MinAtar" not in defined_terms(results.summary["cells"])
    minatar = [{**results.summary["cells"][0], "env": "MinAtar/Breakout-v1"}]
    assert "*MinAtar* (MinAtar/Breakout-v1) is a set of miniature Atari" in defined_terms(minatar)
    assert "Hadamard layer is in both, and PPO's diagnostics are read from the actor" in text
    assert "for PPO, in the actor (its critic has the same network, Hadamard layer" in text


def test_the_report_defines_effective_rank_before_using_it_and_names_the_end_step(results):
    from actlab.experiments.rl_hadamard.report import EFFECTIVE_RANK, report

    text = report(results)
    first = text.lower().index("effective rank")
    assert text.index(EFFECTIVE_RANK) <= first
    assert "`erank = exp(−Σ_k p_k log p_k)`" in EFFECTIVE_RANK
    assert "*At the end* means at the last diagnostic record, step 300 of 512" in text
    assert text.index("*training* episode") < text.index("figures/returns.png")


def test_effective_rank_definition_matches_actlabs_function():
    """The chapter's formula written out in NumPy equals the probe actlab measures with."""
    from actlab.probes.functional import effective_rank

    h = torch.randn(3, 40, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h[1, :, 6:] = 0  # fewer directions used
    for e in range(3):
        sigma = np.linalg.svd(h[e].numpy(), compute_uv=False)
        p = sigma / sigma.sum()
        p = p[p > 0]
        assert effective_rank(h)[e].item() == pytest.approx(np.exp(-(p * np.log(p)).sum()))


# ------------------------------------------------------------------------ figure details
def test_split_panels_draw_each_seed_and_networks_have_their_own_colour(results):
    from actlab.experiments.rl_hadamard.figures import network_style, plot_returns

    assert network_style("tanh")["color"] != network_style("tanh-hadamard")["color"]
    assert network_style("tanh")["marker"] != network_style("tanh-hadamard")["marker"]
    assert network_style("relu")["color"] != network_style("relu-hadamard")["color"]
    assert network_style("relu")["color"] != network_style("tanh-wide")["color"]
    fig = plot_returns(results)
    by_title = {ax.get_title().split("\n")[0]: ax for ax in fig.axes if ax.get_visible()}
    pqn, ppo = by_title["PQN on CartPole-v1"], by_title["PPO on CartPole-v1"]
    assert "each seed" in pqn.get_title() and "each seed" not in ppo.get_title()
    seed_lines = [ln for ln in pqn.lines if len(ln.get_xdata()) == TINY.curve_points]
    assert len(seed_lines) == TINY.seeds * 2  # one per seed of each network
    first_pqn = next(c for c in results.summary["cells"] if c["agent"] == "pqn")
    finals = sorted(
        float(ln.get_ydata()[0])
        for ln in pqn.lines
        if len(ln.get_xdata()) == 1 and ln.get_color() == network_style("tanh")["color"]
    )
    assert finals == pytest.approx(sorted(first_pqn["per_seed_final"]))
    assert ppo.collections  # the IQM band where the seeds did not split
    labels = fig.legends[0].get_texts()
    assert [t.get_text() for t in labels] == ["tanh", "tanh-hadamard"]


def test_the_diagnostics_figure_reads_low_ranks_and_keeps_end_markers_visible():
    from actlab.experiments.base import Results
    from actlab.experiments.rl_hadamard.figures import START_OFFSET, log_ticks, plot_diagnostics

    assert log_ticks([2.4, 60.0]) == [2, 3, 5, 10, 20, 30, 50, 100]
    assert log_ticks([3.1, 4.6]) == [3, 5]
    assert [t for t in log_ticks([2.6, 9.0]) if t < 5] == [2, 3]

    def cell(net, start, end):
        stat = {"mean": end, "lo": end - 0.2, "hi": end + 0.2}
        return {
            "agent": "dqn",
            "env": "CartPole-v1",
            "network": net,
            "diagnostics": {
                "effective_rank": {"start": {"mean": start}, "end": stat, "steps": [0, 9]}
            },
        }

    cells = [cell("tanh", 3.4, 3.6), cell("tanh-hadamard", 5.2, 3.9)]
    fig = plot_diagnostics(Results(metrics=_tiny_metrics(), summary={"cells": cells}))
    ax = fig.axes[0]
    assert [t for t in ax.get_xticks() if t < 5] == [3]
    points = [ln for ln in ax.lines if len(ln.get_xdata()) == 1]  # legend handles are empty
    end = [ln for ln in points if ln.get_markerfacecolor() != "white"]
    start = [ln for ln in points if ln.get_markerfacecolor() == "white"]
    assert len(end) == len(start) == 2
    assert min(ln.get_zorder() for ln in end) > max(ln.get_zorder() for ln in start)
    for s, e in zip(start, end, strict=True):
        assert s.get_ydata()[0] - e.get_ydata()[0] == pytest.approx(START_OFFSET)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "tanh" in labels and "tanh-hadamard" in labels


def test_each_network_has_its_own_line_style_and_the_x_axis_reads_thousands(results):
    from actlab.experiments.rl_hadamard.figures import network_style, plot_returns

    nets = ("relu", "tanh", "tanh-hadamard", "tanh-wide", "relu-hadamard")
    styles = [str(network_style(n)["linestyle"]) for n in nets]
    assert len(set(styles)) == len(nets)
    fig = plot_returns(results)
    pqn = next(ax for ax in fig.axes if ax.get_title().startswith("PQN on CartPole-v1"))
    assert "each seed" in pqn.get_title()
    seed_lines = [ln for ln in pqn.lines if len(ln.get_xdata()) == TINY.curve_points]
    by_color = {}
    for ln in seed_lines:
        by_color.setdefault(ln.get_color(), set()).add(str(ln.get_linestyle()))
    assert all(len(v) == 1 for v in by_color.values())  # one style per network
    assert len({next(iter(v)) for v in by_color.values()}) == len(by_color)  # and distinct
    assert pqn.get_xlabel() == "environment steps per agent (thousands)"
    assert pqn.xaxis.get_major_formatter()(2000, 0) == "2"
    assert not pqn.xaxis.get_offset_text().get_text()


def test_curve_starts_and_the_captions(results):
    from actlab.experiments.rl_hadamard.figures import curve_starts
    from actlab.experiments.rl_hadamard.report import report

    late = {
        **results.summary["cells"][0],
        "grid": [10.0, 20.0, 30.0],
        "curves": [[None, None, 3.0], [None, 2.0, 4.0]],
    }
    assert curve_starts([late]) == {(late["agent"], late["env"]): 20.0}
    assert curve_starts([{**late, "curves": [[1.0, 2.0, 3.0]]}]) == {}
    text = report(results)
    assert "each panel has its own y-range" in text
    assert "x in thousands of environment steps per agent](figures/returns.png)" in text
    assert "open marker, set a little below the row, the mean at initialisation (no interval " in (
        text
    )
    assert "95% interval at the last diagnostic record (filled) and at initialisation" not in text


def test_the_diagnostics_figure_shows_0_on_share_axes_and_thin_log_labels():
    from actlab.experiments.base import Results
    from actlab.experiments.rl_hadamard.figures import log_ticks, plot_diagnostics, thin_log_ticks

    assert thin_log_ticks(log_ticks([2.4, 60.0])) == [2, 3, 5, 10, 20, 50, 100]

    def cell(net, env, rank, share):
        return {
            "agent": "pqn",
            "env": env,
            "network": net,
            "diagnostics": {
                "effective_rank": {
                    "start": {"mean": rank},
                    "end": {"mean": rank, "lo": rank - 0.2, "hi": rank + 0.2},
                    "steps": [0, 9],
                },
                "saturated_share": {
                    "start": {"mean": share},
                    "end": {"mean": share, "lo": share / 2, "hi": share * 1.5},
                    "steps": [0, 9],
                },
            },
        }

    cells = [cell("tanh", "CartPole-v1", 2.5, 0.05), cell("tanh", "MinAtar/Breakout-v1", 60, 0.4)]
    fig = plot_diagnostics(Results(metrics=_tiny_metrics(), summary={"cells": cells}))
    share, rank = fig.axes[0], fig.axes[1]
    lo, hi = share.get_xlim()
    assert lo < 0 < 0.6 < hi and hi < 0.7  # 0 on the axis, a little padding each side
    assert 0 in list(share.get_xticks())
    assert list(rank.get_xticks()) == [2, 3, 5, 10, 20, 50, 100]
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in rank.get_xticklabels() if t.get_text()]
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:], strict=False))  # no two touch
    labels = [t.get_text() for t in share.get_yticklabels()]
    assert labels[1] == "PQN · MinAtar/Breakout-v1 · tanh"  # the environment's full name


def test_intervals_ending_at_the_extreme_seed_are_named_once(results):
    from actlab.experiments.rl_hadamard.report import (
        extreme_bounds,
        extreme_bounds_sentence,
        report,
    )
    from actlab.report.format import num

    cells = results.summary["cells"]
    want = []
    for c in cells:  # by hand: the bound and the extreme seed as the table shows them
        for key, name in (("final", "final return"), ("auc", "AUC")):
            seeds = c[f"per_seed_{key}"]
            sides = [
                side
                for side, bound, seed in (
                    ("lower", c[key]["lo"], min(seeds)),
                    ("upper", c[key]["hi"], max(seeds)),
                )
                if num(bound, 3) == num(seed, 3)
            ]
            if sides:
                want.append((c["agent"], c["network"], name, sides))
    got = [(r["agent"], r["network"], r["metric"], r["sides"]) for r in extreme_bounds(cells)]
    assert got == want
    made = {
        "agent": "pqn",
        "env": "E",
        "network": "tanh",
        "per_seed_final": [1.0, 2.0, 3.0, 4.0, 5.0],
        "final": {"mean": 3.0, "lo": 1.0, "hi": 4.5, "n": 5},
        "per_seed_auc": [1.0, 2.0, 3.0, 4.0, 5.0],
        "auc": {"mean": 3.0, "lo": 1.5, "hi": 4.5, "n": 5},
    }
    text = extreme_bounds_sentence([made])
    assert text.startswith("In 1 of the table's 2 intervals a bound equals")
    assert "(lower bound of the final return of PQN on E with `tanh`): with 5 seeds" in text
    assert extreme_bounds_sentence([{**made, "final": made["auc"]}]) == ""
    assert report(results).count("smallest or largest seed's value") == (1 if want else 0)
