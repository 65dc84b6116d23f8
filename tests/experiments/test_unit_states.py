"""unit-states: the fractions against NumPy on explicit networks, the born-dead Monte Carlo
against the formula and against NumPy, the one-step kill against plain torch + torch.optim.SGD,
the saturation theory against a wide random network, every verdict sentence both ways, the
exercises' solutions, and a complete smoke run."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actlab.experiments.unit_states import experiment as ex
from actlab.experiments.unit_states import report as rp
from actlab.experiments.unit_states import solutions
from actlab.models import EnsembleMLP
from actlab.stats import proportion_ci

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import plain_sequential, torch_default_draw  # noqa: E402

TAUS = (0.0, 0.025, 0.1)


# ------------------------------------------------------------------ NumPy references
def np_act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    raise KeyError(name)


def np_fractions(name: str, layers: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, list]:
    """Per layer (z, h) ``(B, D)``: every fraction written out with loops."""
    band = {"tanh": (-0.99, 0.99), "sigmoid": (0.01, 0.99)}.get(name)
    out: dict[str, list] = {k: [] for k in ex.fraction_keys(TAUS)}
    for z, h in layers:
        B, D = h.shape
        out["sparsity"].append(sum(h[b, i] == 0 for b in range(B) for i in range(D)) / (B * D))
        out["dead"].append(sum(all(h[b, i] == 0 for b in range(B)) for i in range(D)) / D)
        out["inactive"].append(sum(all(z[b, i] < 0 for b in range(B)) for i in range(D)) / D)
        if band is None:
            out["saturated"].append(math.nan)
            out["saturated_share"].append(math.nan)
        else:
            lo, hi = band
            outside = (h < lo) | (h > hi)
            out["saturated"].append(outside.all(axis=0).mean())
            out["saturated_share"].append(outside.mean())
        mean_abs = np.abs(h).mean(axis=0)
        score = mean_abs / (mean_abs.mean() + 1e-9)
        for t in TAUS:
            out[f"dormant_{t:g}"].append((score <= t).mean())
    return out


# ------------------------------------------------------------------ the probes, used right
def test_unit_fractions_equal_numpy_on_explicit_networks():
    """Members with different activations; one unit of hidden layer 2 forced dead by a large
    negative bias (the right layer must show it); inputs large enough to saturate tanh."""
    acts = ["relu", "relu", "tanh", "sigmoid", "leaky_relu"]
    seeds = [3, 4, 3, 5, 3]
    sizes = (2, 6, 5, 4, 1)
    model = EnsembleMLP(2, list(sizes[1:-1]), 1, acts, seeds, dtype=torch.float64)
    draws = [torch_default_draw(sizes, s) for s in seeds]
    with torch.no_grad():
        model.bias(1)[:, 0] = -100.0
    x = 4.0 * torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = ex.unit_fractions(model, x, TAUS)
    assert set(got) == set(ex.fraction_keys(TAUS))
    for m, (name, draw) in enumerate(zip(acts, draws, strict=True)):
        h, layers = x.numpy(), []
        for layer, (w, b) in enumerate(draw[:-1]):
            b = b.numpy().copy()
            if layer == 1:
                b[0] = -100.0
            z = h @ w.numpy().T + b
            h = np_act(name, z)
            layers.append((z, h))
        want = np_fractions(name, layers)
        for key, values in want.items():
            np.testing.assert_allclose(got[key][m].numpy(), values, atol=1e-12, err_msg=key)
    # the forced-dead unit: in layer 2, not 1 or 3 (ReLU members)
    assert got["dead"][0, 1] >= 1 / 5
    # tanh did saturate on some pairs, so the share is tested on non-zero values
    assert got["saturated_share"][2].max() > 0


def test_applicable_says_what_is_zero_by_construction():
    relu, leaky, tanh = ex.applicable("relu"), ex.applicable("leaky_relu"), ex.applicable("tanh")
    assert relu["dead"] and not relu["saturated"]
    assert not leaky["dead"] and leaky["inactive"] and not leaky["sparsity"]
    assert tanh["saturated"] and not tanh["dead"] and not tanh["inactive"]
    from actlab.experiments.unit_states.figures import applies, primary_fraction

    summary = {"applicable": {a: ex.applicable(a) for a in ("relu", "leaky_relu", "tanh")},
               "taus": [0.0, 0.025, 0.1]}  # fmt: skip
    assert [primary_fraction(summary, a)[0] for a in ("relu", "leaky_relu", "tanh")] == [
        "dead",
        "inactive",
        "saturated_share",
    ]
    assert applies(summary, "relu", "dormant_0") and not applies(summary, "tanh", "dormant_0")
    assert not applies(summary, "relu", "saturated") and applies(summary, "tanh", "dormant_0.1")
    # a leaky ReLU network's outputs are never exactly zero on random inputs
    model = EnsembleMLP(2, [16, 16], 1, "leaky_relu", [0, 1])
    got = ex.unit_fractions(model, torch.randn(64, 2), TAUS)
    assert float(got["dead"].max()) == 0.0 and float(got["sparsity"].max()) == 0.0


def test_same_initial_weights_across_activations():
    """Layer 1's pre-activations do not depend on the activation, so with the same seed its
    inactive fraction at step 0 is the same for every activation."""
    cfg = dataclasses.replace(ex.presets["smoke"], steps=1, snapshot_steps=(0,))
    out = ex._train_task(cfg, "regression")
    fr = out["fractions"][ex.fraction_keys(cfg.taus).index("inactive"), 0]  # member, layer
    S = cfg.seeds
    first = fr[:S, 0]
    for a in range(1, len(cfg.activations)):
        np.testing.assert_array_equal(fr[a * S : (a + 1) * S, 0], first)


# ------------------------------------------------------------------ saturation theory
def test_saturation_theory_matches_a_wide_random_network():
    """Mean-field prediction of the saturated share against NumPy tanh networks of width 3000
    (weights N(0, sigma_w^2/fan_in), zero bias), per layer."""
    probe = torch.tensor([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.4]], dtype=torch.float64)
    sw = 4.0
    pred = ex.saturation_theory("tanh", probe, 3, (sw, 0.0), (sw, 0.0))
    rng = np.random.default_rng(0)
    width, h = 3000, probe.numpy()
    measured = []
    for _ in range(3):
        w = rng.normal(0.0, math.sqrt(sw / h.shape[1]), size=(width, h.shape[1]))
        h = np.tanh(h @ w.T)
        measured.append((np.abs(h) > 0.99).mean())
    np.testing.assert_allclose(pred, measured, atol=0.015)
    assert pred[-1] > 0.05  # a real test: far from zero


# ------------------------------------------------------------------ born dead
def test_born_dead_fixed_input_matches_the_formula():
    n = 6000
    counts = ex.born_dead_counts("relu", 3, (1, 4, 10), n, 6, 0)
    formula = 1 - (1 - 2.0**-3) ** np.array([1, 4, 10])  # written out, not theory.py
    for k, p in zip(counts["fixed"], formula, strict=True):
        ci = proportion_ci(int(k), n)
        assert ci["lo"] <= p <= ci["hi"], (k / n, p)
    # the whole-domain event is rarer than the bound, and never happens with one layer
    assert counts["constant"][0] == 0
    assert (counts["constant"] <= counts["fixed"]).all()  # the fixed input is a probe too
    assert counts["constant"][-1] > 0


def test_born_dead_events_equal_numpy():
    """bd_events on explicit weights against NumPy loops over members."""
    weights = ex.draw_bd_weights("relu", 2, 5, 300, seed=1)
    probes = ex.bd_probes(4)
    x0 = torch.tensor(ex.BD_FIXED_INPUT, dtype=torch.float64)
    for act in ("relu", "leaky_relu"):
        got = ex.bd_events(act, weights, probes, x0, (1, 3, 5))
        fixed = np.zeros(3, int)
        constant = np.zeros(3, int)
        for m in range(300):
            h, h0, off = probes.numpy(), x0.numpy(), False
            for layer, w in enumerate(weights, start=1):
                wm = w[m].numpy()
                z0 = wm @ h0
                off = off or bool((z0 <= 0).all())
                h0 = np_act(act, z0)
                h = np_act(act, h @ wm.T)
                if layer in (1, 3, 5):
                    i = (1, 3, 5).index(layer)
                    fixed[i] += off
                    constant[i] += bool((h == h[0]).all() and (h0 == h[0]).all())
        np.testing.assert_array_equal(got["fixed"], fixed)
        np.testing.assert_array_equal(got["constant"], constant)
    assert got["constant"].sum() == 0  # leaky ReLU is never constant


def test_same_weights_for_every_activation_and_rai_is_asymmetric():
    a = ex.draw_bd_weights("relu", 3, 2, 10, seed=0)
    b = ex.draw_bd_weights("gelu", 3, 2, 10, seed=0)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    gen = torch.Generator().manual_seed(0)
    w = ex.rai_weights(4000, 8, 8, gen)  # (E, out, in)
    # every row's second moment is He's 2 on average; exactly one Beta(2,1) weight per row:
    np.testing.assert_allclose(float(w.square().sum(-1).mean()), 2.0, rtol=0.03)
    one = ex.rai_weights(20000, 1, 1, gen)[..., 0]  # fan-in 1: only the positive weight
    assert float(one.min()) > 0 and float(one.max()) < 1
    np.testing.assert_allclose(float(one.mean()), 2 / 3, atol=0.01)
    np.testing.assert_allclose(float(one.square().mean()), 1 / 2, atol=0.01)


# ------------------------------------------------------------------ one step
def test_one_step_kill_equals_plain_torch_sgd():
    cfg = dataclasses.replace(
        ex.presets["smoke"], depth=3, width=6, kill_lrs=(0.5, 20.0), kill_seeds=3
    )
    got = ex.one_step_kill(cfg)
    data = ex.make_task(cfg, "regression")
    sizes = (1, 6, 6, 6, 1)

    def dead(net):
        h, out = data["probe"], []
        for module in net[:-1]:
            h = module(h)
            if isinstance(module, nn.ReLU):
                out.append((h == 0).all(dim=0))
        return torch.stack(out)  # (layer, unit)

    for i, lr in enumerate(cfg.kill_lrs):
        for seed in range(cfg.kill_seeds):
            net = plain_sequential(sizes, seed, nn.ReLU)
            with torch.no_grad():
                before = dead(net)
            opt = torch.optim.SGD(net.parameters(), lr=lr)
            loss = nn.functional.mse_loss(net(data["x"]), data["y"])
            loss.backward()
            opt.step()
            with torch.no_grad():
                after = dead(net)
            killed = (after & ~before).double()
            assert got["killed"][i, seed] == pytest.approx(float(killed.mean()), abs=1e-12)
            np.testing.assert_allclose(got["killed_layer"][i, seed], killed.mean(1).numpy())
            if i == 0:
                assert got["dead_before"][seed] == pytest.approx(float(before.double().mean()))
    assert got["killed"][1].mean() > got["killed"][0].mean()  # the large step kills more


# ------------------------------------------------------------------ verdicts both ways
def _p(k, n=100):
    return proportion_ci(k, n)


def _cell(variant, fixed, constant, formula, w=2, d=3):
    return {
        "variant": variant,
        "width": w,
        "depth": d,
        "formula": formula,
        "fixed": _p(fixed),
        "constant": _p(constant),
    }


def test_fixed_input_sentence_both_ways():
    ok = [_cell("relu", 50, 20, 0.5)]
    assert "inside the Wilson interval" in rp.fixed_input_sentence(ok, "relu")
    bad = [_cell("relu", 50, 20, 0.5), _cell("relu", 90, 20, 0.5, d=7)]
    text = rp.fixed_input_sentence(bad, "relu")
    assert "outside" in text and "1 of 2" in text and "D = 7" in text


def test_domain_sentence_three_ways():
    never = [_cell("gelu", 50, 0, 0.5)]
    assert "not one network" in rp.domain_sentence(never, "gelu")
    below = [_cell("relu", 50, 20, 0.5), _cell("relu", 50, 45, 0.5, d=5)]
    text = rp.domain_sentence(below, "relu")
    assert "at or below the bound up to noise" in text and "D = 3" in text  # loosest gap
    above = [_cell("relu", 50, 90, 0.5)]
    assert "above the bound" in rp.domain_sentence(above, "relu")


def test_rai_sentences_both_ways():
    same = [{"width": 2, "depth": 3, "relu": _p(40), "rai": _p(38), "differs": False}]
    assert "within noise" in rp.rai_sentence(same) and "lowers" not in rp.rai_sentence(same)
    lower = [
        {"width": 2, "depth": 3, "relu": _p(60), "rai": _p(10), "differs": True},
        {"width": 3, "depth": 3, "relu": _p(20), "rai": _p(19), "differs": False},
    ]
    text = rp.rai_sentence(lower)
    assert "lowers" in text and "1 of 2" in text and "other 1 cells are within noise" in text
    higher = [{"width": 2, "depth": 3, "relu": _p(10), "rai": _p(60), "differs": True}]
    assert "raises" in rp.rai_sentence(higher)
    cells = [_cell("relu_rai", 5, 2, 0.5), _cell("relu_rai", 49, 2, 0.5, d=4)]
    assert "1 of 2" in rp.rai_fixed_sentence(cells)
    text = rp.rai_domain_sentence([_cell("relu_rai", 5, 2, 0.5), _cell("relu_rai", 9, 7, 0.5, d=4)])
    assert text.startswith("constant networks from 2% (N = 2, D = 3) to 7% (N = 2, D = 4)")


def _k(lr, mean, differs):
    return {
        "lr": lr,
        "killed": {"mean": mean, "lo": mean, "hi": mean},
        "differs_from_smallest": differs,
    }


def test_kill_sentence_both_ways():
    flat = [_k(0.1, 0.0, False), _k(10, 0.01, False)]
    assert "within noise" in rp.kill_sentence(flat)
    rising = [_k(0.1, 0.0, False), _k(1, 0.0, False), _k(10, 0.2, True), _k(100, 0.5, True)]
    text = rp.kill_sentence(rising)
    assert "from η = 10 on" in text and "within noise" not in text
    assert "50%" in text


def test_change_verdict_three_ways():
    def entry(a, b, changed):
        return {"start": {"mean": a}, "end": {"mean": b}, "changed": changed}

    assert rp.change_verdict(entry(0.1, 0.3, True)) == "up"
    assert rp.change_verdict(entry(0.3, 0.1, True)) == "down"
    assert rp.change_verdict(entry(0.1, 0.3, False)) == "within noise"


def test_saturation_sentence_both_ways():
    row = {
        "activation": "tanh",
        "sigma_w2": 4.0,
        "max_gap": 0.02,
        "gap_layer": 3,
        "measured_at": 0.2,
        "theory_at": 0.22,
        "layers_outside": [],
    }
    assert "inside the measured 95% interval at every layer" in rp.saturation_sentence(row)
    text = rp.saturation_sentence({**row, "layers_outside": [2, 5]})
    assert "outside" in text and "layers 2, 5" in text and "2 percentage points" in text


# ------------------------------------------------------------------ exercises
def test_solutions_against_monte_carlo():
    assert solutions.born_dead(4, 20) == pytest.approx(1 - (15 / 16) ** 20)
    assert solutions.born_dead(4, 20) == pytest.approx(0.7249, abs=1e-4)
    rng = np.random.default_rng(0)
    n, trials, dead = 4, 4000, 0
    for _ in range(trials):  # explicit zero-bias ReLU networks at one input
        h = np.array([0.6, 0.8])
        for _ in range(20):
            h = np.maximum(rng.normal(size=(n, h.size)) @ h, 0)
        dead += not h.any()
    ci = proportion_ci(dead, trials)
    assert ci["lo"] <= solutions.born_dead(4, 20) <= ci["hi"]
    z = rng.normal(0.0, 2.0, size=2_000_000)  # q = 4
    mc = (np.abs(np.tanh(z)) > 0.99).mean()
    assert solutions.tanh_saturated_share(4.0) == pytest.approx(mc, abs=1e-3)
    assert solutions.tanh_saturated_share(4.0) == pytest.approx(0.186, abs=1e-3)


def test_the_fixed_points_quoted_in_exercise_2():
    from actlab import theory

    assert theory.fixed_point("tanh", 6.3, 0.0) == pytest.approx(4.0, abs=0.05)
    assert theory.fixed_point("tanh", 4.0, 0.0) == pytest.approx(2.1, abs=0.05)
    assert theory.fixed_point("tanh", 8.0, 0.0) == pytest.approx(5.4, abs=0.05)


def test_exercise_stubs_raise():
    from actlab.experiments.unit_states import exercises

    with pytest.raises(NotImplementedError):
        exercises.born_dead(4, 20)
    with pytest.raises(NotImplementedError):
        exercises.tanh_saturated_share(4.0)


# ------------------------------------------------------------------ the smoke run
@pytest.fixture(scope="module")
def smoke():
    return ex.run(ex.presets["smoke"])


def test_smoke_run_is_complete_and_the_report_reads_its_numbers(smoke):
    from actlab.experiments.unit_states.figures import figures
    from actlab.report.format import pct
    from actlab.report.notation import misplaced_symbols

    s = smoke.summary
    cfg = ex.presets["smoke"]
    fr = smoke.arrays["fractions_regression"]
    assert fr.shape == (len(ex.fraction_keys(cfg.taus)), len(cfg.snapshot_steps),
                        len(cfg.activations), cfg.seeds, cfg.depth)  # fmt: skip
    finite = fr[np.isfinite(fr)]
    assert ((finite >= 0) & (finite <= 1)).all()
    text = rp.report(smoke)
    assert "nan" not in text.lower().replace("nanmean", "")
    assert misplaced_symbols(text, "unit-states") == []
    for k in s["kill"]:
        assert f"η = {k['lr']:g}: " in text
    assert pct(s["kill"][-1]["killed"]["mean"]) in text
    worst = s["kill_worst_layer"]
    per_layer = smoke.arrays["kill_layer"][-1].mean(axis=0)
    assert worst["layer"] == int(np.argmax(per_layer)) + 1
    assert f"the most units die in layer {worst['layer']}" in text
    figs = figures(smoke)
    assert {"born_dead", "one_step_kill", "unit_states_regression", "saturation_init"} <= set(figs)
    # the formula array is the closed form
    w = np.asarray(cfg.bd_widths)[:, None]
    d = np.asarray(cfg.bd_depths)[None, :]
    np.testing.assert_allclose(smoke.arrays["bd_formula"], 1 - (1 - 2.0**-w) ** d)


def test_off_story_three_ways():
    app = {"relu": ex.applicable("relu"), "gelu": ex.applicable("gelu")}

    def rows(start, end, changed):
        e = {"start": {"mean": start, "lo": start, "hi": start},
             "end": {"mean": end, "lo": end, "hi": end}, "changed": changed}  # fmt: skip
        return {
            "relu": {"dead": e, "off_init_first": 0.05, "off_init_last": 0.4},
            "gelu": {"inactive": e},
        }

    down = rp.off_story("regression", rows(0.4, 0.2, True), app, "torch", 1 / 3, 10)
    assert "lowers" in down and "layer 10" in down and "for all inputs at once" in down
    assert "$\\chi_1 = \\sigma_w^2/2$ is 0.167" in down
    up = rp.off_story("regression", rows(0.2, 0.4, True), app, "he", 2.0, 10)
    assert "raises" in up and "for all inputs at once" not in up
    same = rp.off_story("regression", rows(0.2, 0.4, False), app, "torch", 1 / 3, 10)
    assert "within noise" in same and "gelu" in same


def test_constancy_counts_the_fixed_input_too():
    """Probes all on the off side of a unit that the fixed input turns on: not constant."""
    w = torch.tensor([[[1.0, 1.0]]], dtype=torch.float64)  # (E=1, N=1, in=2)
    probes = torch.tensor([[-1.0, -1.0], [-0.5, -0.5]], dtype=torch.float64)
    x0 = torch.tensor(ex.BD_FIXED_INPUT, dtype=torch.float64)
    got = ex.bd_events("relu", [w], probes, x0, (1,))
    assert got["constant"].tolist() == [0] and got["fixed"].tolist() == [0]
    got = ex.bd_events("relu", [-w], probes, x0, (1,))  # now x0 is off: not constant either
    assert got["constant"].tolist() == [0] and got["fixed"].tolist() == [1]
    got = ex.bd_events("relu", [-w], x0.expand(2, 2), x0, (1,))  # every input is x0, off
    assert got["constant"].tolist() == [1]


# ------------------------------------------------------------------ review of issue 13's chapter
def test_uniform_sum_cdf_against_closed_forms_and_monte_carlo():
    t = np.linspace(-2.5, 2.5, 41)
    # one uniform U(-1.5, 1.5): a straight line
    np.testing.assert_allclose(ex.uniform_sum_cdf(t, [1.5]), np.clip((t + 1.5) / 3, 0, 1))
    # two uniforms U(-a, a) + U(-b, b), a >= b: the trapezoid, written out
    a, b = 1.2, 0.5

    def trapezoid(v):
        v = abs(v)
        if v >= a + b:
            tail = 0.0
        elif v >= a - b:
            tail = (a + b - v) ** 2 / (8 * a * b)
        else:
            tail = (a - v) / (2 * a)
        return tail

    upper = np.array([trapezoid(v) for v in t])  # P(X > |t|)
    want = np.where(t >= 0, 1 - upper, upper)
    np.testing.assert_allclose(ex.uniform_sum_cdf(t, [a, b]), want, atol=1e-12)
    # three: Monte Carlo
    rng = np.random.default_rng(3)
    c = np.array([0.3, 1.0, 0.7])
    u = sum(rng.uniform(-ci, ci, 1_000_000) for ci in c)
    for v in (-1.5, -0.2, 0.4, 1.7):
        assert ex.uniform_sum_cdf(np.array(v), c) == pytest.approx((u <= v).mean(), abs=2e-3)


def test_first_layer_share_equals_plain_nn_linear_draws():
    """The exact first-layer share for PyTorch's default initialisation against many plain
    nn.Linear layers: tanh on the regression grid, sigmoid (whose band lies beyond pi + 1, so 0)
    and tanh on two inputs."""
    probe = torch.linspace(-math.pi, math.pi, 64)[:, None]
    torch.manual_seed(0)
    shares = {"tanh": [], "sigmoid": []}
    with torch.no_grad():
        for _ in range(400):
            z = nn.Linear(1, 64)(probe)
            shares["tanh"].append((torch.tanh(z).abs() > 0.99).double().mean())
            s = torch.sigmoid(z)
            shares["sigmoid"].append(((s < 0.01) | (s > 0.99)).double().mean())
    got = ex.first_layer_share("tanh", "torch", probe, 64)
    assert got == pytest.approx(float(torch.stack(shares["tanh"]).mean()), abs=1.5e-3)
    # the Gaussian formula would be far off: 2 (1 - Phi(artanh(.99) / sqrt(q1)))
    q1 = (probe.double().numpy()[:, 0] ** 2 + 1) / 3
    gauss = np.mean([math.erfc(math.atanh(0.99) / math.sqrt(v) / math.sqrt(2)) for v in q1])
    assert gauss - got > 0.005
    assert ex.first_layer_share("sigmoid", "torch", probe, 64) == 0.0
    assert float(torch.stack(shares["sigmoid"]).max()) == 0.0
    x2 = 3 * torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mc = np.mean([float((torch.tanh(nn.Linear(2, 64)(x2)).abs() > 0.99).double().mean())
                      for _ in range(400)])  # fmt: skip
    assert ex.first_layer_share("tanh", "torch", x2, 64) == pytest.approx(mc, abs=2e-3)
    assert ex.first_layer_share("tanh", "he", x2, 64) is None  # Gaussian: the formula is exact


def test_underflow_z_where_float32_outputs_round_to_zero():
    z = ex.underflow_z("gelu")
    assert -7 < z < -4
    assert float(nn.functional.gelu(torch.tensor(z))) == 0.0
    assert float(nn.functional.gelu(torch.tensor(0.9 * z))) != 0.0
    assert float(nn.functional.silu(torch.tensor(ex.underflow_z("silu")))) == 0.0
    assert ex.underflow_z("tanh") is None and ex.underflow_z("leaky_relu") is None


def _row(**values):
    def entry(mx, start=0.1, end=0.1):
        return {"start": {"mean": start, "lo": start, "hi": start},
                "end": {"mean": end, "lo": end, "hi": end}, "changed": False,
                "worst_end": None, "max": mx}  # fmt: skip

    keys = ("sparsity", "dead", "inactive", "saturated", "saturated_share")
    return {k: entry(values.get(k, 0.0)) for k in keys} | {"dormant_0.025": entry(0.0)}


def test_float32_zeros_are_reported_where_measured():
    app = {"gelu": ex.applicable("gelu"), "tanh": ex.applicable("tanh")}
    under = {"gelu": -5.5, "tanh": None}
    rows = {"gelu": _row(sparsity=0.3), "tanh": _row(sparsity=0.0)}
    text = rp.training_table(["gelu", "tanh"], app, rows, 200, under)
    assert "| gelu | sparsity |" in text and "| gelu | [dead]" not in text
    quiet = rp.training_table(["gelu"], app, {"gelu": _row()}, 200, under)
    assert "sparsity" not in quiet
    table = rp.construction_table(app, under)
    assert "float32 rounds the output to 0 for z < -5.5" in table
    assert "float32" not in rp.construction_table(app)
    s = rp.underflow_sentence("gelu", -5.5, {"max": 0.321}, {"max": 0.0})
    assert "32.1%" in s and "no unit is [dead]" in s
    s = rp.underflow_sentence("gelu", -5.5, {"max": 0.321}, {"max": 0.05})
    assert "5% of one layer's units are [dead]" in s


def test_untrained_sentence_both_ways():
    def r(start, end):
        return {"loss_start": {"mean": start}, "loss_end": {"mean": end}}

    rows = {"relu": r(0.5, 0.01), "sigmoid": r(0.593, 0.426)}
    text = rp.untrained_sentence(rows, 200)
    assert "sigmoid (0.593 → 0.426)" in text and "relu" not in text
    assert rp.untrained_sentence({"relu": r(0.5, 0.01)}, 200) == ""


def test_init_theory_sentence_names_the_exact_first_layer():
    row = {"first_theory": 0.033, "first_gauss": 0.0409,
           "first_measured": {"mean": 0.03, "lo": 0.022, "hi": 0.036}}  # fmt: skip
    text = rp.init_theory_sentence("tanh", 0.011, 0.033, row, 1)
    assert "exact share there is 3.3%" in text and "4.09%" in text and "sum of 2 uniform" in text
    same = {**row, "first_gauss": 0.033}
    assert "exact" not in rp.init_theory_sentence("tanh", 0.011, 0.033, same, 1)


def test_saturation_sentence_sets_apart_layers_where_every_network_measured_zero():
    row = {"activation": "tanh", "sigma_w2": 2.0, "max_gap": 0.001, "gap_layer": 5,
           "measured_at": 0.0, "theory_at": 0.001, "layers_outside": [],
           "layers_zero": [5, 6], "zero_expected_pairs": 12.5}  # fmt: skip
    text = rp.saturation_sentence(row)
    assert "every network measured 0 at layers 5, 6" in text and "at most 12 saturated" in text
    assert "inside the measured 95% interval at every other layer" in text
    assert "every network" not in rp.saturation_sentence({**row, "layers_zero": []})


def test_saturation_summary_keeps_zero_width_intervals_out_of_the_verdict(smoke):
    meas = smoke.arrays["sat_measured"]
    for row in smoke.summary["saturation"]:
        i = smoke.coords["sat_measured/activation"].index(row["activation"])
        j = smoke.coords["sat_measured/sigma_w2"].index(row["sigma_w2"])
        zero = [l + 1 for l in range(meas.shape[-1]) if (meas[i, j, :, l] == 0).all()]
        assert row["layers_zero"] == zero
        assert not set(zero) & set(row["layers_outside"])
    assert meas.shape[2] == ex.presets["smoke"].sat_seeds


def test_born_dead_ring_counts_equal_numpy():
    """Constancy on grid + fixed input + ring directions (and on half the ring) against NumPy
    loops over every member, without the code's shortcut of checking grid-constant ones only;
    a coarse grid misses live directions, so the ring must lower some count."""
    weights = ex.draw_bd_weights("relu", 2, 6, 400, seed=2)
    probes, ring = ex.bd_probes(3), ex.bd_ring(64)
    x0 = torch.tensor(ex.BD_FIXED_INPUT, dtype=torch.float64)
    depths = (1, 3, 6)
    got = ex.bd_events("relu", weights, probes, x0, depths, ring, chunk=37)
    pts = np.vstack([probes.numpy(), x0.numpy()[None], ring.numpy()])
    half = np.r_[np.arange(len(probes) + 1), len(probes) + 1 + np.arange(0, 64, 2)]
    want = {"constant": np.zeros(3, int), "constant_half": np.zeros(3, int),
            "constant_grid": np.zeros(3, int)}  # fmt: skip
    grid = np.arange(len(probes) + 1)
    for m in range(400):
        h = pts
        for layer, w in enumerate(weights, start=1):
            h = np.maximum(h @ w[m].numpy().T, 0)
            if layer in depths:
                i = depths.index(layer)
                for key, rows in (("constant", slice(None)), ("constant_half", half),
                                  ("constant_grid", grid)):  # fmt: skip
                    part = h[rows]
                    want[key][i] += bool((part == part[0]).all())
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert (got["constant_grid"] > got["constant"]).any()


def test_resolution_sentence_both_ways():
    def cell(k, grid, half, d=3):
        return {"width": 2, "depth": d, "constant": _p(k), "constant_grid": grid,
                "constant_half": half}  # fmt: skip

    dense = [cell(20, 25, 20), cell(40, 40, 40, d=5)]
    text = rp.resolution_sentence(dense, 2048)
    assert "5 more networks constant, in 1 of 2 cells" in text and "not one count changes" in text
    sparse = [cell(20, 25, 23), cell(40, 40, 41, d=5)]
    text = rp.resolution_sentence(sparse, 2048)
    assert "(1024) 4 more, in 2 cells" in text and "at most 3 of 100" in text
    assert "denser set could lower" in text


def test_kill_sentences_say_what_the_step_does_to_the_loss():
    def k(lr, killed, change, differs=True, loss=1.0):
        e = _k(lr, killed, differs)
        return e | {"loss_change": change, "loss_after": {"mean": loss, "lo": loss, "hi": loss}}

    before = {"mean": 0.5, "lo": 0.49, "hi": 0.51}
    kill = [k(0.01, 0.0, "within noise", False), k(0.3, 0.002, "lower"),
            k(3, 0.01, "higher"), k(100, 0.09, "higher", loss=198.0)]  # fmt: skip
    text = rp.kill_loss_sentence(kill, before)
    assert "lowers it at η = 0.3" in text and "raises it at η = 3, 100" in text
    assert "η = 0.3, kills 0.2%" in text and "η = 100: MSE 198" in text
    calm = rp.kill_loss_sentence([k(0.01, 0.0, "lower"), k(0.1, 0.0, "lower")], before)
    assert "raises" not in calm and "overshoot" not in calm
    # "from η on" only when every larger rate is separated too
    gappy = [_k(0.1, 0.0, False), _k(1, 0.01, True), _k(10, 0.0, False), _k(100, 0.5, True)]
    text = rp.kill_sentence(gappy)
    assert "from η = 1 on" not in text and "at η = 1 (the smallest" in text
    assert "1 of the 2 larger" in text


def test_one_step_kill_losses_equal_plain_torch():
    cfg = dataclasses.replace(
        ex.presets["smoke"], depth=3, width=6, kill_lrs=(0.5, 20.0), kill_seeds=2
    )
    got = ex.one_step_kill(cfg)
    data = ex.make_task(cfg, "regression")
    for i, lr in enumerate(cfg.kill_lrs):
        for seed in range(cfg.kill_seeds):
            net = plain_sequential((1, 6, 6, 6, 1), seed, nn.ReLU)
            loss = nn.functional.mse_loss(net(data["x"]), data["y"])
            assert got["loss_before"][seed] == pytest.approx(loss.item(), rel=1e-5)
            opt = torch.optim.SGD(net.parameters(), lr=lr)
            loss.backward()
            opt.step()
            with torch.no_grad():
                after = float(nn.functional.mse_loss(net(data["x"]), data["y"]))
            assert got["loss_after"][i, seed] == pytest.approx(after, rel=1e-4)


def test_exercise_1_width_for_depth_50():
    """The solution says N >= 13 brings depth 50 below 1%: the smallest such width."""
    n = next(w for w in range(1, 40) if solutions.born_dead(w, 50) < 0.01)
    assert n == 13 and 1 - (1 - 2.0**-12) ** 50 > 0.01


def test_sweep_verdict_counts_only_layers_with_an_interval():
    rows = [{"depth": 10, "layers_zero": [2, 3], "layers_outside": [5]},
            {"depth": 10, "layers_zero": [], "layers_outside": []}]  # fmt: skip
    text = rp.sweep_verdict(rows, 64, 50)
    assert "outside the measured 95% interval at 1 of the 18" in text and "50 networks" in text


def test_saturation_sweep_equals_numpy_networks_drawn_at_each_sigma_w2():
    """The sweep rescales one standard draw per seed; NumPy forward passes through networks drawn
    directly with N(0, sigma_w^2/fan_in) weights (same seeds) give the same shares."""
    cfg = dataclasses.replace(ex.presets["smoke"], sat_sigma_w2=(2.0, 9.0), sat_seeds=2)
    got = ex._saturation_sweep(cfg)["measured"]  # act, sw, seed, layer
    probe = ex.make_task(cfg, "classification")["probe"].double().numpy()
    acts = [a for a in cfg.activations if ex.applicable(a)["saturated"]]
    for i, act in enumerate(acts):
        for j, sw in enumerate(cfg.sat_sigma_w2):
            model = EnsembleMLP(2, [cfg.width] * cfg.depth, 2, act, list(range(cfg.sat_seeds)),
                                init="mean_field", sigma_w2=sw, sigma_b2=0.0)  # fmt: skip
            for seed in range(cfg.sat_seeds):
                h, want = probe, []
                for layer in range(cfg.depth):
                    h = np_act(act, h @ model.weight(layer)[seed].detach().double().numpy().T)
                    low, high = (-0.99, 0.99) if act == "tanh" else (0.01, 0.99)
                    want.append(((h < low) | (h > high)).mean())
                np.testing.assert_allclose(got[i, j, seed], want, atol=2 / (len(probe) * 8))
    assert got[:, 1].mean() > got[:, 0].mean()  # larger sigma_w^2 saturates more


def test_loss_change_both_ways():
    before = np.log10([0.5, 0.52, 0.51, 0.49])
    assert ex._loss_change(before, np.log10([5.0, 8.0, 6.0, 7.0])) == "higher"
    assert ex._loss_change(before, np.log10([0.3, 0.31, 0.29, 0.3])) == "lower"
    assert ex._loss_change(before, before[::-1]) == "within noise"


def test_smoke_theory_at_layer_1_is_the_exact_uniform_share(smoke):
    """Layer 1 of the drawn prediction is the exact share for PyTorch's uniform weights; the
    Gaussian formula kept beside it is 2 (1 - Phi(artanh(0.99) / sqrt(q1))), q1 = (x^2 + 1)/3."""
    cfg = ex.presets["smoke"]
    probe = ex.make_task(cfg, "regression")["probe"]
    a = cfg.activations.index("tanh")
    theory = smoke.arrays["theory_share_regression"][a]
    assert theory[0] == pytest.approx(ex.first_layer_share("tanh", "torch", probe, cfg.width))
    q1 = (probe.double().numpy()[:, 0] ** 2 + 1) / 3
    gauss = np.mean([math.erfc(math.atanh(0.99) / math.sqrt(v) / math.sqrt(2)) for v in q1])
    assert smoke.arrays["theory_first_gauss_regression"][a] == pytest.approx(gauss, rel=1e-6)
    assert theory[0] < gauss - 1e-3
    row = next(r for r in smoke.summary["tasks"]["regression"] if r["activation"] == "tanh")
    assert row["first_theory"] == pytest.approx(theory[0])


def test_init_theory_sentence_when_theory_and_measurement_are_both_nil():
    row = {"first_theory": 0.0, "first_gauss": 0.0, "measured_init_max": 0.0}
    text = rp.init_theory_sentence("sigmoid", 1e-41, 1e-41, row, 1)
    assert "fewer than one saturated (input, unit) pair in a million" in text
    assert "not one was measured" in text
    seen = rp.init_theory_sentence("sigmoid", 1e-3, 1e-41, {**row, "measured_init_max": 1e-3}, 1)
    assert "not one" not in seen and "differ from it by at most 0.1 percentage" in seen


def test_verdicts_on_the_same_seeds_use_the_paired_test(smoke):
    """Init vs end of training, each rate vs the smallest, loss before vs after: the same seeds'
    networks, so the verdicts are the paired t-test's (recomputed here with SciPy)."""
    from scipy import stats as st

    def paired(a, b):
        d = np.asarray(a, float) - np.asarray(b, float)
        if np.all(d == d[0]):
            return bool(d[0] != 0)
        return bool(st.ttest_1samp(d, 0.0).pvalue < 0.05)

    s, cfg = smoke.summary, ex.presets["smoke"]
    fr = smoke.arrays["fractions_regression"]
    keys = list(s["fractions"])
    for a, row in enumerate(s["tasks"]["regression"]):
        for key in ("inactive", "dormant_0.1"):
            k = keys.index(key)
            want = paired(fr[k, 0, a].mean(-1), fr[k, -1, a].mean(-1))
            assert row[key]["changed"] == want
    kill = smoke.arrays["kill"]
    for i, entry in enumerate(s["kill"][1:], start=1):
        assert entry["differs_from_smallest"] == paired(kill[i], kill[0])
    before = np.log10(smoke.arrays["kill_loss_before"])
    after = np.log10(smoke.arrays["kill_loss_after"])
    for i, entry in enumerate(s["kill"]):
        moved = paired(before, after[i])
        assert (entry["loss_change"] != "within noise") == moved
    assert len(s["kill"]) == len(cfg.kill_lrs)


def test_a_small_consistent_change_on_the_same_seeds_is_not_called_noise(smoke):
    """Hand-set arrays where every seed moves by the same small amount: Welch's test would call
    it noise, the paired test (what the chapter uses for same-seed comparisons) does not."""
    cfg = ex.presets["smoke"]
    arrays = {k: np.array(v, copy=True) for k, v in smoke.arrays.items()}
    E = len(cfg.activations) * cfg.seeds
    trained = {t: {"loss": np.ones((2, E)), "diverged": -np.ones(E)} for t in ex.TASKS}
    keys = list(smoke.summary["fractions"])
    spread = np.linspace(0.1, 0.3, cfg.seeds)[:, None]  # seed-to-seed spread, per layer
    fr = arrays["fractions_regression"]
    fr[keys.index("dormant_0.1"), 0, 0] = spread
    fr[keys.index("dormant_0.1"), -1, 0] = spread + 0.01
    kill = np.linspace(0.1, 0.3, cfg.kill_seeds)
    arrays["kill"][0], arrays["kill"][1] = kill, kill + 0.01
    s = ex.summarise(cfg, arrays, trained)
    entry = s["tasks"]["regression"][0]["dormant_0.1"]
    assert entry["changed"] and rp.change_verdict(entry) == "up"
    assert s["kill"][1]["differs_from_smallest"]
    from actlab.stats import welch_differs

    assert not welch_differs(kill, kill + 0.01)  # what Welch would have said
