"""The stability chapter against independent references: members trained alone as plain
nn.Sequential networks with torch.optim (same divergence step), dense Hessians from
torch.autograd.functional.hessian (sharpness at initialisation), the sharpness schedule against
actlab.sharpness called directly at those steps, hand-made outcomes for the stable-rate rule,
hand-set summaries for every verdict, the figures, the report and the exercises."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from actlab.experiments.stability import SPEC, solutions
from actlab.experiments.stability import exercises as stubs
from actlab.experiments.stability import experiment as ex
from actlab.experiments.stability import report as rep
from actlab.sharpness import preconditioned_sharpness, top_eigenvalue
from actlab.train import train

SMOKE = ex.presets["smoke"]
TORCH_ACT = {"tanh": nn.Tanh, "relu": nn.ReLU}

# A tiny config whose GD rates straddle the edge: 4.0 and 16.0 diverge, 0.05 does not.
TINY = dataclasses.replace(
    SMOKE,
    activations=("tanh", "relu"),
    depths=(2,),
    width=6,
    seeds=2,
    steps=12,
    gd_rates=(0.05, 4.0, 16.0),
    momentum_rates=(0.02, 2.0),
    adam_rates=(0.01, 3.0),
    n_train=10,
    sharp_depth=2,
    sharp_every=4,
    sharp_iters=30,
)


@pytest.fixture(scope="module")
def results():
    return ex.run(SMOKE)


@pytest.fixture(scope="module")
def figures(results):
    from actlab.experiments.stability.figures import figures as draw

    return draw(results)


# ---------------------------------------------------------------------- members run alone
def _plain(model, m: int, act: str) -> nn.Sequential:
    """Member m of an EnsembleMLP as a plain torch network (nn.Linear + torch's activation),
    with copies of its current weights."""
    layers: list[nn.Module] = []
    for layer in range(model.n_layers):
        w, b = model.weight(layer)[m], model.bias(layer)[m]
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if layer < model.n_hidden:
            layers.append(TORCH_ACT[act]())
    return nn.Sequential(*layers)


def _alone(net: nn.Sequential, opt_name: str, lr: float, cfg, x, y):
    """Train one plain network with torch.optim; (diverged step or -1, final train MSE)."""
    if opt_name == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    else:
        mom = cfg.momentum if opt_name == "momentum" else 0.0
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=mom)
    for step in range(cfg.steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        if not math.isfinite(loss.item()) or loss.item() > ex.MAX_LOSS:
            return step, math.nan
        loss.backward()
        opt.step()
    with torch.no_grad():
        return -1, nn.functional.mse_loss(net(x), y).item()


@pytest.mark.parametrize("opt_name", ["gd", "momentum", "adam"])
def test_divergence_map_matches_members_trained_alone(opt_name):
    cfg = TINY
    data = ex.make_data(cfg)
    out = ex._train_pass(cfg, data, opt_name, 2)
    table = ex.members(cfg, opt_name)
    model = ex.build_model(cfg, 2, list(table.activation), list(table.seed))
    some_diverged = False
    for m, row in table.iterrows():
        net = _plain(model, m, row.activation)
        step, final = _alone(net, opt_name, float(row.lr), cfg, data["x_train"], data["y_train"])
        assert int(out["diverged_step"][m]) == step, (opt_name, m, row.to_dict())
        some_diverged |= step >= 0
        if step < 0 and row.lr == min(cfg.rates(opt_name)):
            # (at the large rates training is chaotic: float rounding grows; compared: the step)
            assert out["final_train"][m] == pytest.approx(final, rel=1e-3, abs=1e-6)
        elif step >= 0:
            assert math.isnan(out["final_train"][m]) and math.isnan(out["final_test"][m])
    assert some_diverged or opt_name == "adam"  # the tiny grid reaches divergence for GD


def test_a_member_over_the_cut_off_at_step_0_is_diverged_there(monkeypatch):
    """Every member's initial MSE is above a tiny cut-off: all diverge at step 0, and no
    loss is reported for them (NaN, drawn as diverged)."""
    monkeypatch.setattr(ex, "MAX_LOSS", 1e-6)
    out = ex._train_pass(TINY, ex.make_data(TINY), "gd", 2)
    assert (out["diverged_step"] == 0).all()
    assert np.isnan(out["final_train"]).all() and np.isnan(out["final_test"]).all()


def test_equal_seeds_start_from_equal_weights_whatever_the_activation_and_rate():
    table = ex.members(TINY, "gd")
    model = ex.build_model(TINY, 2, list(table.activation), list(table.seed))
    for layer in range(model.n_layers):
        w = model.weight(layer)
        for s in range(TINY.seeds):
            rows = np.flatnonzero(table.seed.values == s)
            assert all(torch.equal(w[rows[0]], w[r]) for r in rows)
        assert not torch.equal(w[0], w[1])  # seeds 0 and 1 differ


# ---------------------------------------------------------------------- sharpness
def _dense_top(net: nn.Sequential, x, y) -> float:
    params = list(net.parameters())
    shapes = [p.shape for p in params]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params]).double()

    def loss(flat):
        out, i = x.double(), 0
        pieces = []
        for shp in shapes:
            n = math.prod(shp)
            pieces.append(flat[i : i + n].reshape(shp))
            i += n
        k = 0
        for mod in net:
            if isinstance(mod, nn.Linear):
                out = out @ pieces[k].T + pieces[k + 1]
                k += 2
            else:
                out = mod(out)
        return ((out - y.double()) ** 2).mean()

    hess = torch.autograd.functional.hessian(loss, flat0)
    return float(torch.linalg.eigvalsh(hess)[-1])


def test_sharpness_at_init_matches_a_dense_hessian():
    cfg = TINY
    data = ex.make_data(cfg)
    lam = ex._init_sharpness(cfg, data, 2)  # (act, seed)
    acts = [a for a in cfg.activations for _ in range(cfg.seeds)]
    seeds = [s for _ in cfg.activations for s in range(cfg.seeds)]
    model = ex.build_model(cfg, 2, acts, seeds)
    for m, act in enumerate(acts):
        want = _dense_top(_plain(model, m, act), data["x_train"], data["y_train"])
        assert lam[m // cfg.seeds, m % cfg.seeds] == pytest.approx(want, rel=1e-3)


@pytest.mark.parametrize("opt_name", ["gd", "adam"])
def test_sharpness_schedule_matches_direct_calls_at_those_steps(opt_name):
    cfg = TINY
    data = ex.make_data(cfg)
    out = ex._train_pass(cfg, data, opt_name, 2)
    steps = [int(v) for v in out["sharp_steps"]]
    assert steps == ex.sharpness_schedule(cfg) == [0, 1, 4, 8, 11]
    table = ex.members(cfg, opt_name)
    x, y = data["x_train"], data["y_train"]
    for k, s in enumerate(steps):
        model = ex.build_model(cfg, 2, list(table.activation), list(table.seed))
        res = None
        if s:
            tcfg = dataclasses.replace(ex.train_config(cfg, opt_name), epochs=s)
            res = train(model, x, y, tcfg, lr=torch.tensor(table.lr.values))
            active = res.diverged_step < 0
        else:
            active = torch.ones(model.E, dtype=torch.bool)
        # The trainer freezes a member that diverges at step s before the callback runs.
        with torch.no_grad():
            loss = (model(x) - y).square().mean(dim=(1, 2))
        active &= torch.isfinite(loss) & (loss <= ex.MAX_LOSS)
        kw = dict(members=active, max_iter=cfg.sharp_iters, tol=ex.SHARP_TOL, seed=s)
        if opt_name == "gd":
            want = top_eigenvalue(model, x, y, "mse", **kw).value.numpy()
        elif res is None:
            want = np.full(model.E, np.nan)  # Adam's preconditioner needs one step
        else:
            want = preconditioned_sharpness(model, x, y, res.optimizer, "mse", **kw).value.numpy()
        got = out["sharpness"][k]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-4, equal_nan=True)


def test_settle_ratio_takes_the_median_of_the_tail():
    steps = np.array([0, 10, 20, 30, 39])
    ratio = np.array([[0.1, 1.0], [0.2, np.nan], [0.7, np.nan], [0.9, np.nan], [1.3, np.nan]])
    got = ex.settle_ratio(steps, ratio, total_steps=40, tail=0.3)  # steps >= 28: 30, 39
    assert got[0] == pytest.approx(1.1)
    assert math.isnan(got[1])
    got = ex.settle_ratio(steps, ratio, total_steps=40, tail=0.6)  # steps >= 16: 20, 30, 39
    assert got[0] == pytest.approx(0.9)


# ---------------------------------------------------------------------- stable-rate rule
def test_largest_stable_rate_rule_on_hand_made_outcomes():
    rates = np.array([0.1, 0.2, 0.4])
    # (rate, seed): seed 0 diverges at 0.4; seed 1 does not diverge at 0.4 but ends above its
    # initial loss there; seed 2 is never stable; seed 3 is stable at 0.1 and 0.4 only.
    div = np.array([[-1, -1, 3, -1], [-1, -1, 0, 5], [2, -1, 1, -1]])
    final = np.array([[0.1, 0.1, np.nan, 0.1], [0.1, 0.2, np.nan, np.nan], [np.nan, 9.0, 0.5, 0.3]])
    init = np.array([1.0, 1.0, 0.05, 1.0])
    got = ex.largest_stable(rates, div, final, init)
    np.testing.assert_array_equal(got, [0.2, 0.2, np.nan, 0.4])
    for s in range(4):  # the exercise's solution agrees
        want = solutions.largest_stable_rate(
            list(rates), list(div[:, s] >= 0), list(final[:, s]), float(init[s])
        )
        assert (math.isnan(want) and math.isnan(got[s])) or want == got[s]
    # Leading axes broadcast: (depth, act, rate, seed) with init (depth, act, seed).
    many = ex.largest_stable(rates, div[None, None], final[None, None], init[None, None])
    assert many.shape == (1, 1, 4)


def test_summary_counts_where_the_bound_falls():
    cfg = dataclasses.replace(
        TINY,
        activations=("tanh",),
        optimizers=("gd",),
        depths=(2,),
        seeds=3,
        gd_rates=(0.1, 0.2, 0.4),
    )
    R = 3
    div = np.full((1, 1, R, 3), -1)
    div[0, 0, 2, :] = 4  # 0.4 diverges for every seed: largest stable 0.2 for all
    train_ = np.full((1, 1, R, 3), 0.1)
    init = np.ones((1, 1, R, 3))
    # lambda at init: 2/lambda = 0.3 (inside [0.2, 0.4)), 0.1 (below), 0.5 (above).
    lam = np.array([[[2 / 0.3, 2 / 0.1, 2 / 0.5]]])
    arrays = {
        "lam_init": lam,
        "diverged_gd": div,
        "train_gd": train_,
        "init_gd": init,
        "target_var": np.array([0.5]),
    }
    s = ex.summarise(cfg, arrays)
    t = s["theory"]["gd/2/tanh"]
    assert (t["inside"], t["below"], t["above"], t["n"]) == (1, 1, 1, 3)
    e = s["stable"]["gd"]["2/tanh"]
    assert e["mean"] == pytest.approx(0.2) and e["diverged"] == [0, 0, 3]
    assert rep.theory_verdict(t) == "mixed"
    # Pooled factor: log10(0.2 / bound) over the seeds; without flat fits, seed 1 (ending at
    # the targets' variance at its largest stable rate) is left out.
    logs = np.log10(0.2 / np.array([0.3, 0.1, 0.5]))
    assert s["theory_overall"]["gd"]["mean"] == pytest.approx(logs.mean())
    arrays["train_gd"] = train_.copy()
    arrays["train_gd"][0, 0, 1, 1] = 0.5
    s = ex.summarise(cfg, arrays)
    assert s["stable"]["gd"]["2/tanh"]["flat"] == 1
    assert s["theory_overall"]["gd"]["mean"] == pytest.approx(logs.mean())
    assert s["theory_overall_learned"]["gd"]["mean"] == pytest.approx(logs[[0, 2]].mean())
    assert s["theory_overall_learned"]["gd"]["n"] == 2


def test_summary_of_sharpness_against_thresholds_on_hand_made_arrays():
    """GD's sharpness at exactly 2/eta and Adam's at 19/eta (half of 38/eta) in the tail; the
    momentum bound uses (2 + 2 mu)/lambda; the rate shown is the largest stable for every
    seed; a seed that ends at the targets' variance is a flat fit."""
    rates = (0.1, 0.2, 0.4)
    cfg = dataclasses.replace(
        TINY,
        activations=("tanh", "relu"),
        depths=(2,),
        seeds=2,
        steps=40,
        gd_rates=rates,
        momentum_rates=rates,
        adam_rates=rates,
        sharp_depth=2,
        sharp_every=10,
        tail=0.3,
    )
    A, R, S = 2, 3, 2
    eta = np.array(rates)[None, None, :, None]
    steps = np.array([0, 10, 20, 30, 39])
    ramp = np.linspace(0.5, 1.0, len(steps))[:, None, None, None]
    div = np.full((1, A, R, S), -1)
    div[0, :, 2, :] = 5  # 0.4 diverges everywhere: the rate shown is 0.2
    train_ = np.full((1, A, R, S), 0.1)
    train_[0, 1, 1, 0] = 0.5  # relu, 0.2, seed 0: ends at the targets' variance (flat)
    lam = np.full((1, A, S), 10.0)
    arrays = {
        "lam_init": lam,
        "target_var": np.array([0.5]),
        "sharp_steps_gd": steps,
        "sharp_steps_adam": steps,
        "sharp_gd": np.broadcast_to(ramp * 2 / eta, (5, A, R, S)).copy(),
        "sharp_adam": np.broadcast_to(ramp * 19 / eta, (5, A, R, S)).copy(),
        "sharp_conv_gd": np.ones((5, A, R, S)),
        "sharp_conv_adam": np.ones((5, A, R, S)),
    }
    for o in ("gd", "momentum", "adam"):
        arrays[f"diverged_{o}"] = div
        arrays[f"train_{o}"] = train_
        arrays[f"init_{o}"] = np.ones((1, A, R, S))
    s = ex.summarise(cfg, arrays)
    gd, adam = s["sharp"]["gd"]["per_act"], s["sharp"]["adam"]["per_act"]
    tail = np.median(np.linspace(0.5, 1.0, 5)[-2:])  # records at steps 30 and 39
    # relu at 0.2 is stable but flat for seed 0: the rate shown is 0.1, with 0.2 skipped.
    assert gd["tanh"]["rate"] == 0.2 and gd["relu"]["rate"] == 0.1
    assert gd["relu"]["skipped"] == [0.2] and gd["tanh"]["skipped"] == []
    assert s["stable"]["gd"]["2/relu"]["flat"] == 1 and s["stable"]["gd"]["2/tanh"]["flat"] == 0
    # The late ratio is a geometric mean over seeds, its interval positive.
    arrays2 = {k: np.array(v, copy=True) for k, v in arrays.items()}
    arrays2["sharp_adam"][:, 0, 1, 0] *= 0.1  # tanh at 0.2: seeds at 0.1x and 1x of 19/eta
    tanh2 = ex.summarise(cfg, arrays2)["sharp"]["adam"]["per_act"]["tanh"]["ratio"]
    late = np.array([tail / 20, tail / 2])
    assert tanh2["mean"] == pytest.approx(np.exp(np.log(late).mean()))
    half = 12.706 * np.std(np.log10(late), ddof=1) / np.sqrt(2)  # t_{0.975, 1}
    assert tanh2["lo"] == pytest.approx(10 ** (np.log10(late).mean() - half), rel=1e-3)
    assert tanh2["lo"] > 0
    for a in ("tanh", "relu"):
        assert gd[a]["ratio"]["mean"] == pytest.approx(tail)
        assert adam[a]["ratio"]["mean"] == pytest.approx(tail / 2)
        assert gd[a]["start_ratio"]["mean"] == pytest.approx(0.5)
        assert adam[a]["start_ratio"]["mean"] == pytest.approx(0.625 / 2)  # record 1: step 10
    mom = s["theory"]["momentum/2/tanh"]
    assert mom["pred"]["mean"] == pytest.approx((2 + 2 * cfg.momentum) / 10.0)
    assert s["theory"]["gd/2/tanh"]["pred"]["mean"] == pytest.approx(2 / 10.0)
    assert s["groups"] == {"tanh": "smooth", "relu": "piecewise-linear"}
    comp = s["sharp"]["gd"]["compare"]
    assert comp["differs"] is False  # identical ratios
    # tanh is stable and learned up to 0.2, relu only at 0.1: they are compared at 0.1.
    assert comp["rate"] == 0.1 and comp["smooth_acts"] == ["tanh"] and comp["pl_acts"] == ["relu"]
    # Sharpening at the smallest rate: late (median of 0.875, 1.0) over the first record.
    assert 10 ** s["sharp"]["gd"]["sharpening"]["tanh"]["mean"] == pytest.approx(tail / 0.5)
    assert 10 ** s["sharp"]["adam"]["sharpening"]["relu"]["mean"] == pytest.approx(tail / 0.625)


# ---------------------------------------------------------------------- verdicts
def _st(mean, lo, hi):
    return {"mean": mean, "lo": lo, "hi": hi, "n": 5}


def test_settle_verdict_both_ways():
    assert rep.settle_verdict(_st(1.0, 0.9, 1.1)) == "at"
    assert rep.settle_verdict(_st(1.0, 0.79, 1.1)) == "unresolved"
    assert rep.settle_verdict(_st(0.5, 0.4, 0.6)) == "below"
    assert rep.settle_verdict(_st(1.5, 1.3, 1.7)) == "above"
    assert rep.settle_verdict(_st(1.0, math.nan, math.nan)) == "unresolved"


def test_depth_verdict_both_ways():
    assert rep.depth_verdict([0.5] * 4 + [0.25], [0.125] * 4 + [0.0625]) == "shrinks"
    assert rep.depth_verdict([0.125] * 4 + [0.0625], [0.5] * 4 + [0.25]) == "grows"
    assert rep.depth_verdict([0.5, 0.25, 0.5, 0.25], [0.25, 0.5, 0.25, 0.5]) == "within noise"
    assert rep.depth_verdict([0.5, None], [0.25, 0.25]) == "unknown"


def test_depth_item_flags_mostly_flat_rates():
    e0 = {"n": 5, "mean": 0.5, "flat": 3}
    e1 = {"n": 5, "mean": 0.25, "flat": 0}
    assert rep.depth_item("sigmoid", e0, e1) == "sigmoid (0.5 → 0.25, mostly flat fits)"
    assert rep.depth_item("relu", {**e0, "flat": 2}, e1) == "relu (0.5 → 0.25)"
    assert rep.depth_item("gelu", e1, e0) == "gelu (0.25 → 0.5, mostly flat fits)"  # deep side
    assert rep.depth_item("relu", {**e0, "n": 0}, e1) == "relu (n/a)"
    text = rep.depth_item("tanh", {**e0, "flat": 0}, {**e1, "at_top": 3})
    assert text == "tanh (0.5 → 0.25, mostly at the top of the grid (a lower bound))"


def test_theory_verdict_both_ways():
    assert rep.theory_verdict({"n": 5, "inside": 3, "below": 1, "above": 1}) == "agrees"
    assert rep.theory_verdict({"n": 5, "inside": 1, "below": 4, "above": 0}) == "cautious"
    assert rep.theory_verdict({"n": 5, "inside": 0, "below": 2, "above": 3}) == "optimistic"
    assert rep.theory_verdict({"n": 4, "inside": 2, "below": 2, "above": 0}) == "mixed"
    assert rep.theory_verdict({"n": 0, "inside": 0, "below": 0, "above": 0}) == "unknown"


def test_overall_verdict_both_ways():
    lg = math.log10
    assert rep.overall_verdict(_st(lg(2), lg(1.5), lg(2.5))) == "above"
    assert rep.overall_verdict(_st(lg(0.3), lg(0.2), lg(0.4))) == "below"
    assert rep.overall_verdict(_st(lg(0.75), lg(0.6), lg(0.9))) == "agrees"
    assert rep.overall_verdict(_st(lg(0.9), lg(0.7), lg(1.2))) == "mixed"
    assert rep.overall_verdict(_st(lg(0.9), math.nan, math.nan)) == "mixed"


def test_overall_sentence_sets_the_flat_fits_apart_both_ways():
    lg = math.log10
    allr = {**_st(lg(2), lg(1.5), lg(2.5)), "n": 10}
    text = rep.overall_sentence(allr, {**_st(lg(1.5), lg(1.2), lg(1.9)), "n": 7})
    assert "survives rates above the bound" in text and "too narrow" in text
    assert "Without the 3 flat fits" in text and "over 7 cases: still above the bound" in text
    text = rep.overall_sentence(allr, {**_st(lg(0.75), lg(0.6), lg(0.9)), "n": 7})
    assert "within the grid's factor of 2 of the bound" in text
    assert "No case is a flat fit" in rep.overall_sentence(allr, {**allr})
    assert "cannot be set apart" in rep.overall_sentence(allr, {**_st(0, 0, 0), "n": 1})
    assert "Without" not in rep.overall_sentence(allr, None)


def test_sharpening_verdict_both_ways():
    lg = math.log10
    assert rep.sharpening_verdict(_st(lg(3), lg(2), lg(4))) == "rises"
    assert rep.sharpening_verdict(_st(lg(0.3), lg(0.2), lg(0.5))) == "falls"
    assert rep.sharpening_verdict(_st(lg(1.1), lg(0.8), lg(1.5))) == "within noise"
    assert rep.sharpening_verdict(_st(lg(3), math.nan, math.nan)) == "within noise"


def test_compare_sentence_both_ways():
    s, p = _st(0.95, 0.9, 1.0), _st(0.6, 0.5, 0.7)
    base = {"rate": 0.125, "smooth_acts": ["tanh"], "pl_acts": ["relu"], "left_out": []}
    base["difference"] = _st(0.35, 0.3, 0.4)
    text = rep.compare_sentence(
        {**base, "smooth": s, "piecewise-linear": p, "differs": True}, r"$2/\eta$"
    )
    assert "they differ" in text and "smooth ones settle closer to" in text
    assert r"At $\eta$ = 0.125" in text and "(tanh)" in text and "(relu)" in text
    assert "#term-paired" in text and "Welch" not in text
    text = rep.compare_sentence(
        {**base, "smooth": p, "piecewise-linear": s, "differs": True}, r"$2/\eta$"
    )
    assert "farther from" in text
    text = rep.compare_sentence(
        {**base, "smooth": s, "piecewise-linear": p, "differs": False, "left_out": ["sigmoid"]},
        r"$2/\eta$",
    )
    assert "within noise" in text and "differ (" not in text and "sigmoid: no rate" in text
    assert "not compared" in rep.compare_sentence(None, r"$2/\eta$")


def test_groups_keep_the_linear_network_out_of_the_piecewise_linear_family():
    """identity is piecewise linear without a kink (a linear network): its own group, not
    pooled with relu; SELU (a jump in the derivative at 0) is neither family."""
    g = ex._group(["identity", "relu", "leaky_relu", "tanh", "gelu", "selu", "sigmoid"])
    assert g == {
        "identity": "linear",
        "relu": "piecewise-linear",
        "leaky_relu": "piecewise-linear",
        "tanh": "smooth",
        "gelu": "smooth",
        "selu": "other",
        "sigmoid": "smooth",
    }


def test_family_comparison_is_at_one_common_rate_and_paired_over_seeds():
    """Rates 0..2; tanh learned at {0, 1, 2}, gelu at {0, 1}, relu at {0, 1}, sigmoid at none,
    identity at {0} (linear: never compared). The common rate is 1; per seed the smooth mean
    is relu's plus a consistent 0.05 while seeds spread by 0.5: the paired test separates it
    (a t-test of the differences by hand agrees), Welch's test on the two samples does not."""
    from scipy import stats as st

    acts = ["identity", "sigmoid", "tanh", "relu", "gelu"]
    groups = ex._group(acts)
    rates = np.array([0.1, 0.2, 0.4])
    spread = np.array([0.5, 1.0, 1.5, 0.7, 1.2])  # (seed,)
    noise = np.array([0.0, 0.01, -0.01, 0.005, -0.005])
    settled = np.full((5, 3, 5), np.nan)
    settled[3] = spread  # relu
    settled[2] = spread + 0.05 + noise  # tanh
    settled[4] = spread + 0.05 + noise[::-1] * 2  # gelu
    settled[2, 2] = 9.0  # tanh's own largest rate: not the common one
    settled[0] = 100.0  # identity, never pooled
    ok = {"identity": [0], "sigmoid": [], "tanh": [0, 1, 2], "relu": [0, 1], "gelu": [0, 1]}
    comp = ex.family_comparison(settled, ok, groups, rates)
    assert comp["rate"] == 0.2
    assert comp["smooth_acts"] == ["tanh", "gelu"] and comp["pl_acts"] == ["relu"]
    assert comp["left_out"] == ["sigmoid"]
    s = (settled[2, 1] + settled[4, 1]) / 2
    assert comp["smooth"]["mean"] == pytest.approx(np.mean(s))
    assert comp["piecewise-linear"]["mean"] == pytest.approx(np.mean(spread))
    assert st.ttest_1samp(s - spread, 0.0).pvalue < 0.05
    assert st.ttest_ind(s, spread, equal_var=False).pvalue > 0.05
    assert comp["differs"] is True
    # No rate in common, or an empty family: no comparison.
    assert ex.family_comparison(settled, {**ok, "relu": [2], "gelu": [0]}, groups, rates) is None
    assert ex.family_comparison(settled, {**ok, "relu": []}, groups, rates) is None


def test_edge_of_stability_is_named_only_where_the_sharpness_hovers_and_rose():
    assert "the edge of stability" in rep.edge_note("at", "rose")
    assert "from above" in rep.edge_note("at", "fell")
    assert "no progressive sharpening" in rep.edge_note("at", "within noise")
    for settle in ("below", "above", "unresolved"):
        assert rep.edge_note(settle, "rose") == ""


def test_start_end_verdict_is_paired_over_seeds():
    """The same seeds at the start and late in training: a consistent rise by a factor 1.2
    across seeds that spread by a factor 10 is a rise (Welch calls it noise); both ways."""
    from scipy import stats as st

    start = [0.1, 0.3, 1.0, 0.5, 0.05]
    end = [v * f for v, f in zip(start, [1.2, 1.25, 1.15, 1.2, 1.22], strict=True)]
    lg = np.log10
    assert st.ttest_ind(lg(start), lg(end), equal_var=False).pvalue > 0.05
    assert rep.start_end_verdict(start, end) == "rose"
    assert rep.start_end_verdict(end, start) == "fell"
    mixed = [v * f for v, f in zip(start, [1.2, 0.8, 1.1, 0.9, 1.0], strict=True)]
    assert rep.start_end_verdict(start, mixed) == "within noise"
    assert rep.start_end_verdict([0.1, None], [0.2, 0.3]) == "within noise"  # one pair left


def test_rate_interval():
    rates = [0.1, 0.2, 0.4]
    assert rep.rate_interval(0.2, rates) == "[0.2, 0.4)"
    assert rep.rate_interval(0.4, rates) == "≥ 0.4"
    assert rep.rate_interval(math.nan, rates) == "< 0.1"


# ---------------------------------------------------------------------- run, figures, report
def test_smoke_results_are_complete(results):
    c = results.summary["config"]
    for o in c["optimizers"]:
        shape = (len(c["depths"]), len(c["activations"]), len(c["rates"][o]), c["seeds"])
        assert results.arrays[f"diverged_{o}"].shape == shape
        test = results.arrays[f"test_{o}"]
        div = results.arrays[f"diverged_{o}"]
        assert np.array_equal(np.isnan(test), div >= 0)  # diverged: NaN, never a huge loss
    assert results.arrays["sharp_gd"].shape[0] == len(ex.sharpness_schedule(SMOKE))


def test_progress_counts_every_step():
    from actlab import progress

    class Rec(progress.Reporter):
        def refresh(self):
            pass

    with progress.reporting(Rec("x")) as r:
        ex.run(TINY)
    assert r.total == r.done == len(TINY.optimizers) * len(TINY.depths) * TINY.steps + 1


def test_figures_have_no_nan_and_no_empty_axes(figures, results):
    c = results.summary["config"]
    assert set(figures) == {
        *(f"divergence_{o}" for o in c["optimizers"]),
        *(f"depth_{o}" for o in c["optimizers"]),
        "sharpness_gd",
        "sharpness_adam",
        "settle",
    }
    for name, fig in figures.items():
        for ax in fig.axes:
            if not ax.get_visible() or ax.get_label() == "<colorbar>":
                continue
            assert ax.lines or ax.images or ax.collections, (name, ax.get_title())
            for text in [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()] + [
                t.get_text() for t in ax.texts
            ]:
                assert "nan" not in text.lower(), (name, text)
            for line in ax.lines:
                y = np.asarray(line.get_ydata(), dtype=float)
                assert np.isfinite(y).any(), (name, ax.get_title())
        fig.canvas.draw() if hasattr(fig.canvas, "draw") else None


def test_sharpness_figure_draws_flat_rates_dotted(results):
    """A rate at which some seed ends as a flat fit is dotted (its sharpness is a constant
    network's, not an edge of stability); learned rates stay solid."""
    from actlab.experiments.stability.figures import plot_sharpness

    c = results.summary["config"]
    di = c["depths"].index(c["sharp_depth"])
    arrays = {k: np.array(v, copy=True) for k, v in results.arrays.items()}
    var = float(arrays["target_var"][0])
    arrays["train_gd"][di] = 0.01 * var  # everything learned
    div = arrays["diverged_gd"][di]
    live = [ri for ri in range(div.shape[1]) if np.any(div[0, ri] < 0)]
    ri = live[-1]  # drawn for the first activation
    arrays["train_gd"][di, 0, ri, 0] = var  # one seed flat there
    ares = dataclasses.replace(results, arrays=arrays)
    ax = plot_sharpness(ares, "gd").axes[0]
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert len(dotted) == 1 and len(solid) == len(live[-4:]) - 1
    arrays["train_gd"][di, 0, ri, 0] = 0.01 * var
    ax = plot_sharpness(dataclasses.replace(results, arrays=arrays), "gd").axes[0]
    assert not [ln for ln in ax.lines if ln.get_linestyle() == ":"]


def test_adam_sharpness_axis_stops_two_decades_above_the_thresholds(figures):
    """Adam's step-1 sharpness (tiny P) would squash the thresholds: the shared axis ends 100x
    above the highest 38/eta drawn, and the title says when a line runs off it."""
    fig = figures["sharpness_adam"]
    axs = [ax for ax in fig.axes if ax.get_visible()]
    dashed = [ln.get_ydata()[0] for ax in axs for ln in ax.lines if ln.get_linestyle() == "--"]
    assert axs[0].get_ylim()[1] == pytest.approx(100 * max(dashed))
    highest = max(
        np.nanmax(np.asarray(ln.get_ydata(), dtype=float))
        for ax in axs
        for ln in ax.lines
        if ln.get_linestyle() != "--" and np.isfinite(np.asarray(ln.get_ydata(), float)).any()
    )
    assert ("run off the top" in fig._suptitle.get_text()) == (highest > 100 * max(dashed))


def test_depth_figure_draws_the_bound_from_the_sharpness_at_init(figures, results):
    lam = results.arrays["lam_init"]  # (depth, act, seed)
    ax = figures["depth_gd"].axes[0]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1
    want = 2 ** np.mean(np.log2(2 / lam[:, 0]), axis=1)
    np.testing.assert_allclose(dashed[0].get_ydata(), want, rtol=1e-9)


def test_report_reads_the_summary_and_uses_the_notation(results):
    from actlab.report.notation import misplaced_symbols

    text = rep.report(results)
    prose = re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.DOTALL)
    assert not re.search(r"\bnan\b", prose)
    assert misplaced_symbols(text, "stability") == []
    for fig in ("divergence_gd", "depth_gd", "sharpness_gd", "sharpness_adam", "settle"):
        assert f"figures/{fig}.png" in text
    e = results.summary["stable"]["gd"][f"{SMOKE.depths[0]}/tanh"]
    assert rep._rate_ci(e) in text


def test_run_folder_round_trip_gives_the_same_report(tmp_path):
    """What `actlab report` does: results read back from disk (NaN stored as null) give the
    report written at the end of the run; and the run is complete."""
    import json
    import re

    from actlab.cli import _execute
    from actlab.store import RunStore

    folder = _execute(SPEC, "smoke", SMOKE, tmp_path / "run")
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    text = (folder / "report.md").read_text()
    for link in re.findall(r"\]\((figures/[^)\s]+)\)", text):
        assert (folder / link).is_file(), link
    assert SPEC.report(RunStore(folder).load_results()) == text


def test_config_refuses_bad_values_naming_the_field():
    for kw, key in (
        ({"depths": (4, 2)}, "depths"),
        ({"gd_rates": (0.1, -1.0)}, "gd_rates"),
        ({"sharp_depth": 3}, "sharp_depth"),
        ({"optimizers": ("sgd",)}, "optimizers"),
        ({"tail": 0.0}, "tail"),
        ({"momentum": 1.0}, "momentum"),
        ({"activations": ("nosuch",)}, "activations"),
    ):
        with pytest.raises(ValueError, match=key):
            dataclasses.replace(SMOKE, **kw)
    assert SPEC.order == 75 and SPEC.name == "stability"


# ---------------------------------------------------------------------- exercises
def test_gd_on_a_quadratic_solution_is_the_closed_form():
    for lr in (0.19, 0.21):
        xs = solutions.gd_on_quadratic(10.0, lr, 1.0, 50)
        np.testing.assert_allclose(xs, [(1 - 10.0 * lr) ** k for k in range(51)], rtol=1e-12)
    assert abs(solutions.gd_on_quadratic(10.0, 0.19, 1.0, 50)[-1]) < 0.01
    assert abs(solutions.gd_on_quadratic(10.0, 0.21, 1.0, 50)[-1]) > 100


def test_heavy_ball_solution_matches_torch_sgd_and_the_threshold():
    for lr in (0.375, 0.385):
        x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([x], lr=lr, momentum=0.9)
        want = [1.0]
        for _ in range(200):
            opt.zero_grad()
            (5.0 * x.square()).sum().backward()
            opt.step()
            want.append(float(x.detach()))
        got = solutions.heavy_ball_on_quadratic(10.0, lr, 0.9, 1.0, 200)
        np.testing.assert_allclose(got, want, rtol=1e-9)
    assert abs(solutions.heavy_ball_on_quadratic(10.0, 0.375, 0.9, 1.0, 200)[-1]) < 1e-3
    assert abs(solutions.heavy_ball_on_quadratic(10.0, 0.385, 0.9, 1.0, 200)[-1]) > 1e10


def test_exercise_stubs_raise_and_the_debug_stub_has_its_bug():
    with pytest.raises(NotImplementedError):
        stubs.gd_on_quadratic(1.0, 0.1, 1.0, 3)
    with pytest.raises(NotImplementedError):
        stubs.heavy_ball_on_quadratic(1.0, 0.1, 0.9, 1.0, 3)
    args = ([0.1, 0.2], [False, False], [0.5, 3.0], 1.0)
    assert stubs.largest_stable_rate(*args) == 0.2  # the bug: counts a worse end as stable
    assert solutions.largest_stable_rate(*args) == 0.1
    from actlab.report.exercises import exercises_markdown

    text = exercises_markdown(stubs.EXERCISES)
    assert text.count("<details") == len(stubs.EXERCISES) >= 2
