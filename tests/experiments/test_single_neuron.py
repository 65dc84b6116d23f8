"""The single-neuron playground against independent references: a plain nn.Sequential trained
alone with torch.optim.Adam, NumPy's polyfit (identity = least-squares line), lstsq and a
brute-force grid (the ReLU landscape), SciPy (the sigmoid's minimum, Welch's test), and a run
with the cases listed in another order."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import optimize
from scipy import stats as st
from torch import nn

from actlab.experiments.single_neuron import SPEC
from actlab.experiments.single_neuron import config as sn_config
from actlab.experiments.single_neuron import experiment as sn
from actlab.experiments.single_neuron import landscape as nl
from actlab.experiments.single_neuron import report as snr
from actlab.models import EnsembleMLP
from actlab.plotting.animation import render_frame
from actlab.store import RunStore

SMOKE = sn_config.SMOKE


@pytest.fixture(scope="module")
def results():
    return sn.run(SMOKE)


def _ti(cfg, target, activation):
    return cfg.targets.index(target), cfg.activations.index(activation)


# ------------------------------------------------------------------------- engine vs reference


@pytest.mark.parametrize(
    ("activation", "target", "seed", "restart"),
    [("tanh", "quadratic", 1, 2), ("relu", "linear", 2, 1), ("sine", "quartic", 0, 3)],
)
def test_one_member_equals_a_plain_sequential_trained_alone(
    results, activation, target, seed, restart
):
    """Same initial weights, torch.optim.Adam for exactly the member's number of updates (it
    was stopped before update ``stop_step``): the same parameters and losses."""
    cfg, data = SMOKE, sn.make_data(SMOKE)
    table = sn.members(cfg)
    row = table[
        (table.activation == activation)
        & (table.target == target)
        & (table.seed == seed)
        & (table.restart == restart)
    ].iloc[0]
    one = EnsembleMLP(1, [1], 1, [activation], [int(row.init_seed)], dtype=torch.float64)
    seq = one.member(0)
    t, a = _ti(cfg, target, activation)
    x = torch.as_tensor(data["x_train"][seed])[:, None]
    y = torch.as_tensor(data["y_train"][t, seed])[:, None]
    steps = int(results.arrays["stop_step"][t, a, seed, restart])
    opt = torch.optim.Adam(seq.parameters(), lr=cfg.lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(seq(x), y).backward()
        opt.step()
    lin0, lin1 = seq[0], seq[2]
    expected = [lin0.weight.item(), lin0.bias.item(), lin1.weight.item(), lin1.bias.item()]
    got = results.arrays["params"][t, a, seed, restart]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    with torch.no_grad():
        train = nn.functional.mse_loss(seq(x), y).item()
        xt = torch.as_tensor(data["x_test"][seed])[:, None]
        test = nn.functional.mse_loss(seq(xt), torch.as_tensor(data["y_test"][t, seed])[:, None])
    assert results.arrays["train_mse"][t, a, seed, restart] == pytest.approx(train, rel=1e-9)
    assert results.arrays["test_mse"][t, a, seed, restart] == pytest.approx(test.item(), rel=1e-9)


def test_stop_steps_follow_the_schedule(results):
    """Members stop only at a convergence check; a capped member ran every update."""
    reasons, steps = results.arrays["stop_reason"], results.arrays["stop_step"]
    codes = list(sn.STOP_REASONS)
    assert set(np.unique(reasons)) <= set(range(len(codes)))
    assert (steps[reasons == codes.index("cap")] == SMOKE.epochs).all()
    stopped = reasons == codes.index("gradient")
    assert stopped.any()
    assert (steps[stopped] % SMOKE.check_every == 0).all()
    assert (steps[stopped] < SMOKE.epochs).all()


def test_results_do_not_depend_on_the_order_of_the_cases(results):
    """Activations and targets listed in reverse: every case's numbers are bit-identical."""
    cfg = dataclasses.replace(
        SMOKE,
        activations=tuple(reversed(SMOKE.activations)),
        targets=tuple(reversed(SMOKE.targets)),
    )
    other = sn.run(cfg)
    it = [cfg.targets.index(t) for t in SMOKE.targets]
    ia = [cfg.activations.index(a) for a in SMOKE.activations]
    for key in ("params", "train_mse", "test_mse", "stop_step", "best_restart", "snapshots"):
        np.testing.assert_array_equal(results.arrays[key], other.arrays[key][it][:, ia], key)
    assert other.arrays["params"][it][:, ia].shape == results.arrays["params"].shape


def test_every_activation_and_target_starts_from_the_same_weights(results):
    init = results.arrays["params_init"]  # (T, A, S, R, 4)
    assert np.array_equal(init, np.broadcast_to(init[:1, :1], init.shape))
    assert not np.array_equal(init[0, 0, 0, 0], init[0, 0, 0, 1])  # restarts differ
    assert not np.array_equal(init[0, 0, 0], init[0, 0, 1])  # seeds differ


# ------------------------------------------------------------------------- closed forms


def test_identity_best_fit_is_the_least_squares_line(results):
    """v (w x + b) + c of identity's best restart = np.polyfit's line, on every target and draw."""
    cfg = SMOKE
    a = cfg.activations.index("identity")
    codes = list(sn.STOP_REASONS)
    for t in range(len(cfg.targets)):
        for s in range(cfg.seeds):
            x, y = results.arrays["x_train"][s], results.arrays["y_train"][t, s]
            slope, intercept = np.polyfit(x, y, 1)
            line_mse = np.mean((slope * x + intercept - y) ** 2)
            r = results.arrays["best_restart"][t, a, s]
            assert results.arrays["stop_reason"][t, a, s, r] != codes.index("cap")
            w, b, v, c = results.arrays["params"][t, a, s, r]
            assert v * w == pytest.approx(slope, abs=5e-5)
            assert v * b + c == pytest.approx(intercept, abs=5e-5)
            assert results.arrays["train_mse"][t, a, s, r] == pytest.approx(line_mse, rel=1e-7)
            assert results.arrays["train_mse"][t, a, s, r] >= line_mse * (1 - 1e-12)


def test_least_squares_line_matches_polyfit():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 20)), rng.normal(size=(4, 20))
    got = nl.least_squares_line(x, y)
    for i in range(4):
        slope, intercept = np.polyfit(x[i], y[i], 1)
        assert got["slope"][i] == pytest.approx(slope, rel=1e-12)
        assert got["intercept"][i] == pytest.approx(intercept, rel=1e-10, abs=1e-14)


def _brute_force(x, y, w, b):
    """(v, c, mse) by lstsq on [h, 1], then confirmed on a fine grid around it."""
    h = np.maximum(w * x + b, 0.0)
    design = np.stack([h, np.ones_like(h)], axis=1)
    (v, c), *_ = np.linalg.lstsq(design, y, rcond=None)
    dv = np.linspace(-0.05, 0.05, 41)
    grid = ((v + dv)[:, None, None] * h + (c + dv)[None, :, None] - y) ** 2
    return v, c, float(np.mean((v * h + c - y) ** 2)), float(grid.mean(-1).min())


def test_relu_landscape_least_squares_equals_brute_force(results):
    """At grid points of the run's landscape: (v, c) and the MSE equal lstsq, and no (v, c)
    on a fine grid around them does better."""
    cfg = SMOKE
    t = cfg.targets.index(cfg.relu_target)
    x, y = results.arrays["x_train"][0], results.arrays["y_train"][t, 0]
    w = np.asarray(results.coords["relu_landscape_mse/w"])
    b = np.asarray(results.coords["relu_landscape_mse/b"])
    n = len(w)
    checked = 0
    for i, j in [(n - 3, n // 2 - 4), (n // 3, 2), (n // 2 + 5, n // 2 + 1), (n - 1, n - 1)]:
        mse = results.arrays["relu_landscape_mse"][i, j]
        if results.arrays["relu_landscape_dead"][i, j]:
            continue
        v, c, ref, best_on_grid = _brute_force(x, y, w[i], b[j])
        assert results.arrays["relu_landscape_v"][i, j] == pytest.approx(v, rel=1e-9, abs=1e-12)
        assert results.arrays["relu_landscape_c"][i, j] == pytest.approx(c, rel=1e-9, abs=1e-12)
        assert mse == pytest.approx(ref, rel=1e-9)
        assert best_on_grid >= mse - 1e-12
        checked += 1
    assert checked >= 3


def test_relu_landscape_regions():
    """Dead everywhere: MSE = var(y); active everywhere: the least-squares line's MSE."""
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-2, 2, 25))
    y = x**2 + 0.1 * rng.normal(size=25)
    land = nl.relu_landscape(x, y, np.array([1.0, 0.5]), np.array([-5.0, 3.0]))
    assert land["dead"][0, 0] and not land["linear"][0, 0]  # w=1, b=-5: off on [-2, 2]
    assert land["mse"][0, 0] == pytest.approx(np.var(y), rel=1e-12)
    assert land["linear"][1, 1]  # w=0.5, b=3: on everywhere
    slope, intercept = np.polyfit(x, y, 1)
    line = np.mean((slope * x + intercept - y) ** 2)
    assert land["mse"][1, 1] == pytest.approx(line, rel=1e-9)
    assert land["mse"][0, 1] <= land["mse"][1, 1] + 1e-12  # a kink inside can only help


def test_sigmoid_without_bias_descends_to_the_minimum(results):
    """Gradient descent's end point = SciPy's minimiser of L(w); L' = autograd's derivative."""
    x = results.arrays["x_train"][0]
    y = results.arrays["sigmoid_y"]
    ref = optimize.minimize_scalar(lambda w: nl.sigmoid_loss(np.array([w]), x, y)[0][0])
    g = results.summary["sigmoid"]
    assert g["w_end"] == pytest.approx(ref.x, abs=1e-3)
    ws = torch.tensor([-3.0, 0.2, 2.5], dtype=torch.float64, requires_grad=True)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    loss = (torch.sigmoid(ws[:, None] * xt) - yt).square().mean(1)
    (grad,) = torch.autograd.grad(loss.sum(), ws)
    value, deriv = nl.sigmoid_loss(ws.detach().numpy(), x, y)
    np.testing.assert_allclose(value, loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(deriv, grad.numpy(), rtol=1e-10)


# ------------------------------------------------------------------------- summary and report


def test_summary_and_report_numbers_equal_the_results(results):
    """Best restart per draw recomputed from the raw arrays; ranking, CI and Welch verdict from
    SciPy; the report prints exactly those numbers."""
    s, text = results.summary, SPEC.report(results)
    cfg = SMOKE
    test, train = results.arrays["test_mse"], results.arrays["train_mse"]
    for t, target in enumerate(cfg.targets):
        means = {}
        for a, act in enumerate(cfg.activations):
            best = np.array([test[t, a, k, np.argmin(train[t, a, k])] for k in range(cfg.seeds)])
            case = next(c for c in s["cases"] if c["target"] == target and c["activation"] == act)
            half = st.t.ppf(0.975, cfg.seeds - 1) * best.std(ddof=1) / math.sqrt(cfg.seeds)
            assert case["heldout"]["mean"] == pytest.approx(best.mean(), rel=1e-12)
            assert case["heldout"]["hi"] == pytest.approx(best.mean() + half, rel=1e-10)
            means[act] = (best.mean(), best)
            assert f"| {act} | {snr._ci(case['heldout'])} |" in text
        order = sorted(means, key=lambda k: means[k][0])
        r = s["ranking"][target]
        assert r["best"] == order[0] and r["runner_up"] == order[1]
        p = st.ttest_ind(means[order[0]][1], means[order[1]][1], equal_var=False).pvalue
        assert r["differs"] == (p < 0.05)
        verdict = "significantly better than the runner-up" if p < 0.05 else "a **tie**"
        assert f"**Best: {order[0]}**, held-out MSE {snr._ci(case_of(s, target, order[0]))}" in text
        section = text.split(f"$y = {sn.TARGETS[target].latex}$\n")[1]
        assert verdict in section.split("\n\n| activation")[0]


def case_of(s, target, act):
    return next(
        c["heldout"] for c in s["cases"] if c["target"] == target and c["activation"] == act
    )


def test_figures_and_report_rebuild_from_a_saved_run(results, tmp_path):
    """Through the store (JSON summary, npz arrays) the report is identical and every figure
    builds; a GIF frame renders."""
    store = RunStore(tmp_path / "run")
    store.save_results(results)
    loaded = store.load_results()
    assert SPEC.report(loaded) == SPEC.report(results)
    figs = SPEC.figures(loaded)
    expected = {"heldout", "relu_function", "relu_trajectories", "relu_landscape"}
    expected |= {"sigmoid_fit", "sigmoid_descent"}
    expected |= {f"{k}_{t}" for t in SMOKE.targets for k in ("fit", "convergence")}
    assert set(figs) == expected
    anim = figs["convergence_quartic"]
    assert anim.n_frames == SMOKE.gif_frames
    first, last = (render_frame(anim.draw(i), anim.dpi) for i in (0, anim.n_frames - 1))
    assert first.shape == last.shape and not np.array_equal(first, last)
    for fig in figs.values():
        if hasattr(fig, "clear"):
            fig.clear()


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="targets"):
        sn.Config(targets=("linear", "nope"))
    with pytest.raises(ValueError, match="relu_target"):
        sn.Config(targets=("linear",), relu_target="quadratic")
    with pytest.raises(ValueError, match="restarts"):
        sn.Config(restarts=0)
    with pytest.raises(ValueError, match="activations"):
        sn.Config(activations=("tanh", "tanh"))
    with pytest.raises(ValueError, match="x_min"):
        sn.Config(x_min=1.0, x_max=0.0)


def _hand_summary(best, line, floor, line_beaten, target_monotone, tied=("a",)):
    ci = lambda m: {"mean": m, "lo": m * 0.9, "hi": m * 1.1, "sd": 0.0, "n": 5}  # noqa: E731
    cases = [
        {"target": "t", "activation": "a", "heldout": ci(best), "r2": ci(0.9)},
        {"target": "t", "activation": "b", "heldout": ci(2 * best), "r2": ci(0.5)},
    ]
    ranking = {
        "best": "a",
        "runner_up": "b",
        "tied": list(tied),
        "line": ci(line),
        "best_beats_line": line_beaten,
        "target_monotone": target_monotone,
        "best_monotone": "b",
    }
    return {
        "noise_floor": floor,
        "activations": ["a", "b"],
        "activation_monotone": {"a": False, "b": True},
        "cases": cases,
        "ranking": {"t": ranking},
    }


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((0.0026, 0.0027, 0.0025, False, True, ("a", "b")), "this target is a straight line"),
        ((0.05, 0.06, 0.0025, False, False), "varies too much from draw to draw"),
        ((0.07, 0.06, 0.0025, False, False), "does not follow this shape better"),
        ((0.01, 0.12, 0.0025, True, False), "cannot follow the turns"),
        ((0.01, 0.12, 0.0025, True, True), "bends where a line cannot"),
    ],
)
def test_why_sentence_follows_the_numbers(args, phrase):
    """Each branch of the computed explanation is reached by the numbers that justify it."""
    sentence = snr.why(_hand_summary(*args), "t")
    assert phrase in sentence
    if phrase == "cannot follow the turns":
        assert "0.01" in sentence and "0.02" in sentence  # best and best monotone, as computed
