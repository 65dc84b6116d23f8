"""The single-neuron playground against independent references: a plain nn.Sequential trained
alone with torch.optim.Adam, NumPy's polyfit (identity = least-squares line), lstsq and a
brute-force grid (the ReLU landscape), SciPy (the sigmoid's minimum, the paired t-test), and a
run with the cases listed in another order."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import optimize
from scipy import stats as st

from actlab.experiments.single_neuron import SPEC
from actlab.experiments.single_neuron import config as sn_config
from actlab.experiments.single_neuron import experiment as sn
from actlab.experiments.single_neuron import landscape as nl
from actlab.experiments.single_neuron import report as snr
from actlab.experiments.single_neuron.summary import differs_by_seed, summarise
from actlab.plotting.animation import render_frame
from actlab.seeding import derive_seed
from actlab.store import RunStore

SMOKE = sn_config.SMOKE


@pytest.fixture(scope="module")
def results():
    return sn.run(SMOKE)


def _ti(cfg, target, activation):
    return cfg.targets.index(target), cfg.activations.index(activation)


# ------------------------------------------------------------------------- engine vs reference


PHI = {"identity": lambda z: z, "tanh": torch.tanh, "relu": torch.relu, "sine": torch.sin}
"""The smoke run's activations, written with torch functions (not actlab's registry)."""
NP_PHI = {"identity": lambda z: z, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}
NP_PHI["sine"] = np.sin
TARGET_FNS = {
    "linear": lambda x: x / 2,
    "quadratic": lambda x: x**2 / 2 - 1,
    "cubic": lambda x: x**3 / 8,
    "neg_cubic": lambda x: -(x**3) / 8,
    "quartic": lambda x: (x**4 - 4 * x**2) / 4,
}
"""The targets, written out from the module docstring."""


def _data(cfg):
    """The documented draw, written out (not ``sn.make_data``): per data seed s, a NumPy
    generator seeded with ``derive_seed(seed, "single-neuron", "data", s)`` draws one uniform
    training point per equal cell of [x_min, x_max], the uniform held-out points, the training
    noise and the held-out noise, in that order; every target shares the inputs and the noise."""
    out = {k: [] for k in ("x_train", "x_test", "e_train", "e_test")}
    edges = np.linspace(cfg.x_min, cfg.x_max, cfg.n_train + 1)
    for s in range(cfg.seeds):
        rng = np.random.default_rng(derive_seed(cfg.seed, "single-neuron", "data", s))
        u = rng.uniform(size=cfg.n_train)
        out["x_train"].append(
            np.array(
                [lo + (hi - lo) * f for lo, hi, f in zip(edges[:-1], edges[1:], u, strict=True)]
            )
        )
        out["x_test"].append(rng.uniform(cfg.x_min, cfg.x_max, cfg.n_test))
        out["e_train"].append(cfg.noise * rng.standard_normal(cfg.n_train))
        out["e_test"].append(cfg.noise * rng.standard_normal(cfg.n_test))
    out = {k: np.array(v) for k, v in out.items()}
    for part in ("train", "test"):
        out[f"y_{part}"] = np.stack(
            [TARGET_FNS[t](out[f"x_{part}"]) + out[f"e_{part}"] for t in cfg.targets]
        )
    return out


def _initial_params(cfg, seed, restart):
    """(w, b, v, c) of (seed, restart), written out: U(-1, 1) each (torch's default for one
    input), drawn in that order in float64 from a generator seeded with
    ``derive_seed(seed, "single-neuron", "init", seed, restart)``."""
    assert cfg.init == "torch"
    gen = torch.Generator().manual_seed(
        derive_seed(cfg.seed, "single-neuron", "init", seed, restart)
    )
    return [
        torch.empty(1, dtype=torch.float64).uniform_(-1.0, 1.0, generator=gen) for _ in range(4)
    ]


def _train_alone(cfg, activation, target, seed, restart, steps):
    """``y = v phi(w x + b) + c`` written by hand, trained alone with torch.optim.Adam for
    ``steps`` full-batch updates: the parameters and training loss before each update
    (``(steps + 1, 4)``, ``(steps + 1,)``, the last after the last update), and the held-out
    MSE at the end."""
    data = _data(cfg)
    t = cfg.targets.index(target)
    x, y = torch.as_tensor(data["x_train"][seed]), torch.as_tensor(data["y_train"][t, seed])
    xt, yt = torch.as_tensor(data["x_test"][seed]), torch.as_tensor(data["y_test"][t, seed])
    params = [p.requires_grad_() for p in _initial_params(cfg, seed, restart)]
    w, b, v, c = params
    phi = PHI[activation]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    history, losses = [], []
    for step in range(steps + 1):
        loss = (v * phi(w * x + b) + c - y).square().mean()
        history.append([p.item() for p in params])
        losses.append(loss.item())
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        test = (v * phi(w * xt + b) + c - yt).square().mean().item()
    return np.array(history), np.array(losses), test


@pytest.mark.parametrize(
    ("activation", "target", "seed", "restart"),
    [("tanh", "quadratic", 1, 2), ("relu", "linear", 2, 1), ("sine", "quartic", 0, 3)],
)
def test_one_member_equals_a_network_written_by_hand(results, activation, target, seed, restart):
    """Same initial weights, torch.optim.Adam for exactly the member's number of updates (it
    was stopped before update ``stop_step``): the same parameters and losses, to float64
    rounding (rtol 1e-9: another summation order, a few hundred steps). A member of seed 0
    also has its parameters and loss recorded at the snapshot steps (frozen once stopped)."""
    cfg = SMOKE
    t, a = _ti(cfg, target, activation)
    steps = int(results.arrays["stop_step"][t, a, seed, restart])
    history, losses, test = _train_alone(cfg, activation, target, seed, restart, steps)
    np.testing.assert_allclose(results.arrays["params_init"][t, a, seed, restart], history[0])
    got = results.arrays["params"][t, a, seed, restart]
    np.testing.assert_allclose(got, history[-1], rtol=1e-9, atol=1e-12)
    assert results.arrays["train_mse"][t, a, seed, restart] == pytest.approx(losses[-1], rel=1e-9)
    assert results.arrays["test_mse"][t, a, seed, restart] == pytest.approx(test, rel=1e-9)
    if seed == 0:
        frames = sn_config.snapshot_steps(cfg)
        assert results.coords["snapshots/frame"] == frames
        at = [min(f, steps) for f in frames]
        np.testing.assert_allclose(
            results.arrays["snapshots"][t, a, restart], history[at], rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(
            results.arrays["snapshot_loss"][t, a, restart], losses[at], rtol=1e-9, atol=1e-15
        )


def test_data_is_the_documented_draw(results):
    """Inputs, labels and the grid equal the written-out draw: each seed its own inputs and
    noise, shared by every target."""
    data = _data(SMOKE)
    for key in ("x_train", "x_test", "y_train", "y_test"):
        np.testing.assert_allclose(results.arrays[key], data[key], rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(results.arrays["x_grid"], np.linspace(-2, 2, SMOKE.n_grid))
    grid = results.arrays["x_grid"]
    truth = np.stack([TARGET_FNS[t](grid) for t in SMOKE.targets])
    np.testing.assert_allclose(results.arrays["truth"], truth, rtol=1e-15, atol=1e-15)
    assert not np.allclose(data["x_train"][0], data["x_train"][1])


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


def test_best_restart_is_chosen_on_train_and_its_arrays_follow(results):
    """Per (target, activation, seed): the restart with the lowest training MSE (a diverged
    one never), its parameters, its curve v phi(w x + b) + c on the grid (NumPy), and for seed
    0 its curve at every snapshot."""
    cfg, arr = SMOKE, results.arrays
    grid = arr["x_grid"]
    for t in range(len(cfg.targets)):
        for a, act in enumerate(cfg.activations):
            for s in range(cfg.seeds):
                train = [arr["train_mse"][t, a, s, r] for r in range(cfg.restarts)]
                best = min(
                    (r for r in range(cfg.restarts) if math.isfinite(train[r])),
                    key=lambda r: train[r],
                )
                assert arr["best_restart"][t, a, s] == best
                w, b, v, c = arr["params"][t, a, s, best]
                np.testing.assert_array_equal(arr["best_params"][t, a, s], [w, b, v, c])
                curve = v * NP_PHI[act](w * grid + b) + c
                np.testing.assert_allclose(
                    arr["best_curves"][t, a, s], curve, rtol=1e-12, atol=1e-12
                )
            best0 = arr["best_restart"][t, a, 0]
            for f, (w, b, v, c) in enumerate(arr["snapshots"][t, a, best0]):
                curve = v * NP_PHI[act](w * grid + b) + c
                np.testing.assert_allclose(
                    arr["frame_curves"][t, a, f], curve, rtol=1e-12, atol=1e-12
                )


def test_dead_relu_units_recounted_from_the_parameters(results):
    """A ReLU unit is dead when w x + b <= 0 on every training input of its draw (a unit
    within 1e-9 of 0 may count either way); the summary counts them per case."""
    cfg, arr = SMOKE, results.arrays
    a = cfg.activations.index("relu")
    for t, target in enumerate(cfg.targets):
        for s in range(cfg.seeds):
            for r in range(cfg.restarts):
                w, b, _, _ = arr["params"][t, a, s, r]
                top = np.max(w * arr["x_train"][s] + b)
                if abs(top) > 1e-9:
                    assert arr["dead"][t, a, s, r] == (top < 0), (target, s, r)
        case = next(
            c
            for c in results.summary["cases"]
            if c["target"] == target and c["activation"] == "relu"
        )
        assert case["dead"] == int(arr["dead"][t, a].sum())
    others = [i for i, name in enumerate(cfg.activations) if name != "relu"]
    assert not arr["dead"][:, others].any()  # no other unit is exactly 0 on every input


def test_summary_case_numbers_recomputed_from_the_arrays(results):
    """R^2 on held-out labels, the least-squares line (np.polyfit on train, scored on held-out),
    the noise floor, restarts reaching their draw's best, stop counts and draw 0's best fit."""
    cfg, arr, s = SMOKE, results.arrays, results.summary
    assert s["noise_floor"] == pytest.approx(cfg.noise**2, rel=1e-12)
    for t, target in enumerate(cfg.targets):
        line = []
        for k in range(cfg.seeds):
            slope, intercept = np.polyfit(arr["x_train"][k], arr["y_train"][t, k], 1)
            pred = slope * arr["x_test"][k] + intercept
            line.append(np.mean((pred - arr["y_test"][t, k]) ** 2))
        assert s["ranking"][target]["line"]["mean"] == pytest.approx(np.mean(line), rel=1e-9)
        assert s["least_squares"][target]["heldout"]["mean"] == pytest.approx(
            np.mean(line), rel=1e-9
        )
        for a, act in enumerate(cfg.activations):
            case = next(c for c in s["cases"] if c["target"] == target and c["activation"] == act)
            best = arr["best_restart"][t, a]
            held = np.array([arr["test_mse"][t, a, k, best[k]] for k in range(cfg.seeds)])
            train = np.array([arr["train_mse"][t, a, k, best[k]] for k in range(cfg.seeds)])
            assert case["train"]["n"] == cfg.seeds  # over draws, each its best restart
            assert case["train"]["mean"] == pytest.approx(train.mean(), rel=1e-12)
            assert case["heldout_values"] == pytest.approx(held.tolist(), rel=1e-12)
            r2 = [1 - held[k] / np.var(arr["y_test"][t, k]) for k in range(cfg.seeds)]
            assert case["r2"]["mean"] == pytest.approx(np.mean(r2), rel=1e-9)
            reach = 0
            for k in range(cfg.seeds):
                train = arr["train_mse"][t, a, k]
                top = np.nanmin(train)
                reach += sum(1 for v in train if v <= top * 1.05 + 1e-12)
            assert case["reach_best"] == pytest.approx(reach / (cfg.seeds * cfg.restarts))
            codes = arr["stop_reason"][t, a].ravel()
            for i, reason in enumerate(sn.STOP_REASONS):
                assert case["stopped"][reason] == int(np.sum(codes == i))
            b0 = case["best_seed0"]
            assert b0["restart"] == best[0]
            assert b0["stop_step"] == arr["stop_step"][t, a, 0, best[0]]
            assert b0["heldout"] == pytest.approx(arr["test_mse"][t, a, 0, best[0]])
            assert [b0[k] for k in "wbvc"] == pytest.approx(arr["params"][t, a, 0, best[0]])


def test_ranking_verdict_compares_the_best_with_the_runner_up(results):
    """Hand-set held-out errors through the summary: the runner-up level with the best, the
    last far behind, so 'differs' can only come from the best vs the runner-up."""
    cfg = SMOKE
    test = results.arrays["test_mse"].copy()  # (T, A, S, R)
    rng = np.random.default_rng(0)
    base = 0.01 + 0.001 * rng.standard_normal((cfg.seeds, 1))  # per draw, every restart alike
    wobble = np.arange(cfg.seeds) - (cfg.seeds - 1) / 2  # mean 0: keeps the order of the means
    for a in range(len(cfg.activations)):
        # In the listed order; neighbours within noise draw by draw (a per-draw difference that
        # changes sign), which the paired test must not separate.
        test[:, a] = base + 0.0001 * a + 0.001 * np.roll(wobble, a)[:, None]
    test[:, -1] = base + 10.0  # the last activation far behind
    arrays = {**results.arrays, "test_mse": test}
    summary = summarise(cfg, results.arrays, arrays, {})
    for target in cfg.targets:
        r = summary["ranking"][target]
        assert r["order"] == list(cfg.activations)
        assert not r["differs"] and r["runner_up"] == cfg.activations[1]
        assert cfg.activations[1] in r["tied"] and cfg.activations[-1] not in r["tied"]


def _per_seed_case(seeds=8, shift=0.05, seed=1):
    """Two per-seed scores with a large offset that a seed gives both (sd 1) and a small,
    consistent difference on top (``shift``, give or take 5%): Welch's test calls it noise, the
    paired test does not."""
    rng = np.random.default_rng(seed)
    offset = 5.0 + rng.standard_normal(seeds)
    a = offset
    b = offset + shift * (1 + 0.05 * rng.standard_normal(seeds))
    assert st.ttest_ind(a, b, equal_var=False).pvalue > 0.5  # Welch: noise
    assert st.ttest_rel(a, b).pvalue < 0.01  # paired: a difference
    return a, b


def test_paired_by_seed_matches_ttest_rel_and_lines_up_by_seed():
    """The verdict is scipy.stats.ttest_rel's on the pairs lined up by seed, whatever order the
    seeds come in; a seed missing (or non-finite) on one side is dropped from both."""
    a, b = _per_seed_case()
    seeds = np.arange(len(a)) + 100
    sa, sb = pd.Series(a, index=seeds), pd.Series(b, index=seeds)
    assert differs_by_seed(sa, sb) is bool(st.ttest_rel(a, b).pvalue < 0.05) is True
    rng = np.random.default_rng(2)
    shuffled = sb.iloc[rng.permutation(len(sb))]
    # Paired by position, the shuffled side would be noise: the pairing has to be by seed.
    assert st.ttest_rel(a, shuffled.to_numpy()).pvalue > 0.05
    assert differs_by_seed(sa, shuffled) and differs_by_seed(shuffled, sa)
    assert differs_by_seed(sa.iloc[::-1], shuffled)
    # A seed on one side only, and a non-finite score: both left out of both sides.
    extra = pd.concat([sa, pd.Series([-50.0], index=[7])])
    holed = sb.copy()
    holed.iloc[3] = np.nan
    keep = np.arange(len(a)) != 3
    ref = bool(st.ttest_rel(a[keep], b[keep]).pvalue < 0.05)
    assert differs_by_seed(extra, holed.iloc[rng.permutation(len(holed))]) is ref is True
    # A difference that changes sign from seed to seed stays a tie.
    flip = a + 0.05 * np.where(np.arange(len(a)) % 2, 1.0, -1.0)
    assert not differs_by_seed(sa, pd.Series(flip, index=seeds))
    assert st.ttest_rel(a, flip).pvalue > 0.05
    with pytest.raises(ValueError, match="one value per seed"):
        differs_by_seed(pd.Series([1.0, 2.0], index=[0, 0]), pd.Series([1.0, 2.0], index=[0, 1]))


def test_chapter_calls_a_consistent_per_draw_difference_a_difference(results):
    """Hand-set held-out errors with a large per-draw offset every activation shares and a
    small, consistent gap between the best and the runner-up: the ranking calls them different
    (as scipy.stats.ttest_rel does; Welch's test would call it a tie), and the best beats the
    least-squares line (recomputed with np.polyfit) by a small, consistent margin per draw; the
    mirror check (S-cubic vs negative cubic) is paired the same way."""
    cfg = SMOKE
    best0, second = _per_seed_case(seeds=cfg.seeds, shift=0.05, seed=4)
    best0, second = best0 / 100, second / 100  # held-out MSEs of about 0.05
    test = results.arrays["test_mse"].copy()  # (T, A, S, R); every restart of a draw alike
    test[:, 0] = best0[:, None]
    test[:, 1] = second[:, None]
    test[:, 2:] = best0[:, None] + 10.0
    summary = summarise(cfg, results.arrays, {**results.arrays, "test_mse": test}, {})
    p = st.ttest_rel(best0, second).pvalue
    assert p < 0.05 and st.ttest_ind(best0, second, equal_var=False).pvalue > 0.05
    for target in cfg.targets:
        r = summary["ranking"][target]
        assert r["best"] == cfg.activations[0] and r["runner_up"] == cfg.activations[1]
        assert r["differs"] and r["tied"] == [cfg.activations[0]]
    text = snr._overview(summary)
    assert "better (paired, p < 0.05)" in "\n".join(text)

    # The best against the least-squares line, fitted to each draw's own training points.
    arr = results.arrays
    t = cfg.targets.index("quadratic")
    fits = [np.polyfit(arr["x_train"][k], arr["y_train"][t, k], 1) for k in range(cfg.seeds)]
    line = np.array(
        [
            np.mean((np.polyval(fits[k], arr["x_test"][k]) - arr["y_test"][t, k]) ** 2)
            for k in range(cfg.seeds)
        ]
    )
    gap = 0.002 * line.mean() * (1 + 0.01 * np.arange(cfg.seeds))
    beat = line - gap
    assert st.ttest_rel(beat, line).pvalue < 0.05
    assert st.ttest_ind(beat, line, equal_var=False).pvalue > 0.05
    test[t, 0] = beat[:, None]
    test[t, 1:] = beat[:, None] + 10.0
    summary = summarise(cfg, arr, {**arr, "test_mse": test}, {})
    assert summary["ranking"]["quadratic"]["best_beats_line"]
    test[t, 0] = (line + gap * np.where(np.arange(cfg.seeds) % 2, 3.0, -3.0))[:, None]
    summary = summarise(cfg, arr, {**arr, "test_mse": test}, {})
    assert not summary["ranking"]["quadratic"]["best_beats_line"]  # per draw: either way

    # The mirror check: the S-cubic's winner on both cubics, which share every draw. The run's
    # arrays relabelled (only the names of the targets matter to this verdict).
    mcfg = dataclasses.replace(cfg, targets=("linear", "cubic", "neg_cubic"), relu_target="cubic")
    test[:] = best0[:, None] + 10.0
    test[1, 0], test[2, 0] = best0[:, None], second[:, None]
    m = summarise(mcfg, arr, {**arr, "test_mse": test}, {})["mirror"]
    assert m["activation"] == cfg.activations[0] and m["differs"]
    test[2, 0] = (best0 + 0.0005 * np.where(np.arange(cfg.seeds) % 2, 3.0, -3.0))[:, None]
    assert not summarise(mcfg, arr, {**arr, "test_mse": test}, {})["mirror"]["differs"]


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
    """Best restart per draw recomputed from the raw arrays; ranking, CI and the paired verdict
    from SciPy (ttest_rel: the activations share the draws); the report prints exactly those
    numbers."""
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
        p = st.ttest_rel(means[order[0]][1], means[order[1]][1]).pvalue  # same draws: paired
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
        # The expectation s^2 is set apart from the finite draws' floor, which the text uses.
        "noise_floor": floor / 2,
        "truth_heldout": {"mean": floor, "lo": floor, "hi": floor, "sd": 0.0, "n": 5},
        "activations": ["a", "b"],
        "activation_monotone": {"a": False, "b": True},
        "cases": cases,
        "ranking": {"t": ranking},
    }


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((0.0026, 0.0027, 0.0025, False, True, ("a", "b")), "this target is a straight line"),
        ((0.05, 0.06, 0.0025, False, False), "difference from the line varies too much"),
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


def test_times_the_noise_floor_uses_the_finite_draws_floor():
    """ "Times the noise floor" divides by the finite draws' floor (the noiseless target's
    held-out MSE), not by s^2: with s^2 = 0.00125 and a finite floor of 0.0025, a score of 0.01
    is 4 times the floor (8 times s^2); the identity check uses the same floor."""
    s = _hand_summary(0.01, 0.12, 0.0025, True, False)
    assert snr.floor(s) == 0.0025
    sentence = snr.why(s, "t")
    assert "(4 times the noise floor of these draws" in sentence and "8 times" not in sentence
    line = snr.why(_hand_summary(0.0026, 0.0027, 0.0025, False, True, ("a", "b")), "t")
    assert "against a noise floor of 0.0025 (these draws)" in line


def test_report_compares_with_one_floor(results):
    """The report states the finite draws' floor as the one it uses, and the held-out figure
    draws that floor (not s^2)."""
    s, text = results.summary, SPEC.report(results)
    assert "this finite-draw floor is the one every comparison" in text
    assert snr._ci(s["truth_heldout"]) in text.split("## Results at a glance")[0]
    fig = SPEC.figures(results)["heldout"]
    ys = {
        round(float(line.get_ydata()[0]), 12)
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_linestyle() == "--"
    }
    assert round(s["truth_heldout"]["mean"], 12) in ys
    assert round(s["noise_floor"], 12) not in ys
    fig.clear()


# ------------------------------------------------------------------------- stopping, honestly


def test_stop_counts_recounted_from_the_arrays(results):
    """Per activation: the stop reasons of all restarts and of the scored (best) restarts,
    counted from ``stop_reason`` and the train MSE (best restart = lowest train MSE)."""
    s, cfg = results.summary, SMOKE
    reason, train = results.arrays["stop_reason"], results.arrays["train_mse"]
    for a, act in enumerate(cfg.activations):
        got = s["stopped"][act]
        assert got["members"] == len(cfg.targets) * cfg.seeds * cfg.restarts
        scored = [
            reason[
                t,
                a,
                k,
                int(np.argmin(np.where(np.isfinite(train[t, a, k]), train[t, a, k], 1e300))),
            ]
            for t in range(len(cfg.targets))
            for k in range(cfg.seeds)
        ]
        for i, name in enumerate(sn_config.STOP_REASONS):
            assert got[name] == int((reason[:, a] == i).sum())
            assert got["best"][name] == scored.count(i)
        for t, target in enumerate(cfg.targets):
            case = next(c for c in s["cases"] if c["target"] == target and c["activation"] == act)
            assert sum(case["best_stopped"].values()) == cfg.seeds
            assert case["best_stopped"]["cap"] == sum(
                reason[t, a, k, np.argmin(train[t, a, k])] == 0 for k in range(cfg.seeds)
            )


def _stop_summary(counts, per_draw=None):
    """A summary with hand-set stop counts: ``{activation: (gradient, plateau, cap)}``, and
    optionally ``{activation: ([early count per draw], members per draw)}``."""
    out = {
        "stopped": {
            a: {"gradient": g, "plateau": p, "cap": c, "diverged": 0, "members": g + p + c}
            for a, (g, p, c) in counts.items()
        }
    }
    for a, (early, n) in (per_draw or {}).items():
        out["stopped"][a].update({"early_per_draw": early, "members_per_draw": n})
    return out


def _t_share(per_draw, n):
    """The mean of the per-draw shares and their 95% Student-t interval, clipped to [0, 1]
    (SciPy's t quantile: the independent reference of ``draw_share``)."""
    x = np.asarray(per_draw, float) / n
    half = st.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return x.mean(), max(x.mean() - half, 0.0), min(x.mean() + half, 1.0)


def test_draw_share_is_the_t_interval_over_draws():
    """A count summed over draws gets the t-interval of its per-draw shares (the draws are the
    independent repeats), not a Wilson interval over the pooled, dependent members; equal
    shares in every draw say so instead of a zero-width interval."""
    p = snr._pct
    m, lo, hi = _t_share([3, 5, 4, 6, 2], 20)
    assert snr.draw_share([3, 5, 4, 6, 2], 20) == f"{p(m)} [{p(lo)}, {p(hi)}]"
    assert snr.over_draws([3, 5, 4, 6, 2], 20) == f"20 of 100 ({p(m)} [{p(lo)}, {p(hi)}])"
    wilson = st.binomtest(20, 100).proportion_ci(method="wilson")
    assert p(wilson.low) not in snr.draw_share([3, 5, 4, 6, 2], 20)
    m, lo, hi = _t_share([0, 1, 0], 5)  # clipped at 0
    assert lo == 0.0 and snr.draw_share([0, 1, 0], 5) == f"{p(m)} [0%, {p(hi)}]"
    assert snr.draw_share([4, 4, 4], 4) == "100%, in every draw"
    assert snr.over_draws([0, 0], 25) == "0 of 50 (0%, in every draw)"
    assert snr.draw_share([3], 4) == "75%"  # one draw: no interval


def test_protocol_sentence_follows_the_stop_counts(results):
    """ "Converged" is claimed of all restarts only when every one stopped on a test; otherwise
    the sentence gives the counts, with the interval over draws, and the range over
    activations."""
    all_early = snr.stop_sentence(_stop_summary({"a": (3, 1, 0), "b": (2, 2, 0)}))
    assert all_early.startswith("All 8 restarts stopped before the cap, 5 on the gradient")
    per_draw = {"a": ([2, 2], 2), "b": ([0, 1], 2)}
    some = snr.stop_sentence(_stop_summary({"a": (3, 1, 0), "b": (1, 0, 3)}, per_draw))
    p = snr._pct
    m, lo, hi = _t_share([2, 3], 4)  # a and b added draw by draw
    assert (
        f"Not every restart stopped on a test: 5 of 8 ({p(m)} [{p(lo)}, {p(hi)}]) stopped" in some
    )
    m, lo, hi = _t_share([2, 1], 4)
    assert f"3 of 8 ({p(m)} [{p(lo)}, {p(hi)}]) ran to the cap" in some
    assert "not independent trials" in some and "per-draw values" in some
    b = _t_share([0, 1], 2)
    assert f"from {p(b[0])} [{p(b[1])}, {p(b[2])}] (b) to 100%, in every draw (a)" in some
    # A summary saved before the per-draw counts existed: shares alone, no made-up interval.
    old = snr.stop_sentence(_stop_summary({"a": (3, 1, 0), "b": (1, 0, 3)}))
    assert "5 of 8 (62.5%) stopped" in old and "[" not in old
    # The real run: no "to convergence", and the sentence's numbers are the run's counts.
    text = SPEC.report(results)
    intro = text.split("## Results at a glance")[0]
    assert "to convergence" not in intro
    st_ = results.summary["stopped"]
    n = sum(v["members"] for v in st_.values())
    early = sum(v["gradient"] + v["plateau"] for v in st_.values())
    assert snr.stop_sentence(results.summary) in intro
    if early < n:
        assert f"{early} of {n}" in intro and "Not every restart stopped on a test" in intro
    # The convergence table's rows are those counts.
    for act, v in st_.items():
        assert f"| {act} | {v['gradient']} | {v['plateau']} | {v['cap']} |" in text


def test_per_draw_stop_counts_recounted_from_the_arrays(results):
    """The per-draw counts behind the intervals: restarts that stopped on a test and scored
    fits at the cap, per draw over targets (and restarts), recounted from ``stop_reason`` and
    the train MSE with plain loops."""
    s, cfg = results.summary, SMOKE
    reason, train = results.arrays["stop_reason"], results.arrays["train_mse"]
    T, R = len(cfg.targets), cfg.restarts
    for a, act in enumerate(cfg.activations):
        got = s["stopped"][act]
        assert got["members_per_draw"] == T * R and got["best_members_per_draw"] == T
        for k in range(cfg.seeds):
            early = sum(
                reason[t, a, k, r] in (1, 2) for t in range(T) for r in range(R)
            )  # STOP_REASONS: cap, gradient, plateau, diverged
            assert got["early_per_draw"][k] == early
            capped = sum(reason[t, a, k, int(np.argmin(train[t, a, k]))] == 0 for t in range(T))
            assert got["best_cap_per_draw"][k] == capped
        assert sum(got["early_per_draw"]) == got["gradient"] + got["plateau"]
        assert sum(got["best_cap_per_draw"]) == got["best"]["cap"]


def test_ranking_caveat_when_the_scored_restarts_ran_to_the_cap():
    """The caveat names the draws whose scored restart hit the cap, and doubts the ranking only
    when that is most draws."""

    def hand(best_cap, second_cap, third_cap=0):
        cases = [
            {"target": "t", "activation": a, "best_stopped": {"cap": k}}
            for a, k in (("a", best_cap), ("b", second_cap), ("c", third_cap))
        ]
        ranking = {"t": {"best": "a", "runner_up": "b", "order": ["a", "b", "c"]}}
        return {"cases": cases, "ranking": ranking, "seeds": 5, "epochs": 4000}

    assert snr.cap_caveat(hand(0, 0), "t") == ""
    assert snr.capped_pairs({**hand(1, 3), "targets": ["t"]}) == [("t", "b")]
    assert snr.capped_pairs({**hand(3, 2), "targets": ["t"]}) == [("t", "a")]
    few = snr.cap_caveat(hand(1, 0), "t")
    assert "a in 1 of 5 draws" in few and "a and b stopped on a test in most draws" in few
    many = snr.cap_caveat(hand(1, 3), "t")
    assert "a in 1 of 5 and b in 3 of 5 draws" in many and "could lower them" in many
    assert "the ranking is that of 4000-step training" in many
    # Every capped scored fit, not only the winner's and the runner-up's: c, third, is named.
    third = snr.cap_caveat(hand(0, 0, 4), "t")
    assert "c in 4 of 5 draws" in third and "could lower them" in third
    assert "a and b stopped on a test in most draws" in third


def test_overview_caveat_counts_every_capped_scored_fit():
    """The overview counts the capped scored fits of every activation (not only of a winner or
    runner-up), each with the t-interval of its per-draw shares (the targets share each draw's
    data and initial points, so the 25 fits are not 25 independent trials)."""
    per_draw = {"tanh": [4, 4, 3, 4, 4], "sigmoid": [4, 4, 4, 4, 4], "relu": [0, 0, 0, 0, 0]}
    stopped = {
        a: {
            "best": {"cap": sum(k)},
            "best_members": 25,
            "best_cap_per_draw": k,
            "best_members_per_draw": 5,
        }
        for a, k in per_draw.items()
    }
    hand = {
        "stopped": stopped,
        "activations": list(stopped),
        "epochs": 4000,
        "targets": ["t"],
        "target_info": {"t": {"label": "t"}},
        "seeds": 5,
        "cases": [
            {"target": "t", "activation": a, "best_stopped": {"cap": k}}
            for a, k in (("tanh", 1), ("sigmoid", 0), ("relu", 0))
        ],
        "ranking": {"t": {"best": "relu", "runner_up": "sigmoid"}},
    }
    text = snr.capped_overview(hand)
    p = snr._pct
    m, lo, hi = _t_share(per_draw["tanh"], 5)
    assert f"tanh 19 of 25 ({p(m)} [{p(lo)}, {p(hi)}])" in text
    assert "sigmoid 20 of 25 (80%, in every draw)" in text
    m, lo, hi = _t_share([8, 8, 7, 8, 8], 15)
    assert f"in 39 of the 75 scored fits ({p(m)} [{p(lo)}, {p(hi)}]; " in text
    wilson = st.binomtest(19, 25).proportion_ci(method="wilson")
    assert p(wilson.low) not in text
    assert "none for relu" in text and "a winner or runner-up" not in text
    none = {**hand, "stopped": {a: {**v, "best": {"cap": 0}} for a, v in stopped.items()}}
    assert snr.capped_overview(none) == ""


def test_report_caveats_cover_every_capped_scored_fit(results):
    """In the run's report, every activation with a capped scored fit on a target is named in
    that target's caveat and counted in the overview; the table's column gives the counts."""
    s, text = results.summary, SPEC.report(results)
    overview = text.split("## Results at a glance")[1].split("\n## ")[0]
    for a, v in s["stopped"].items():
        if v["best"]["cap"]:
            assert f"{a} {v['best']['cap']} of {v['best_members']} (" in overview
    for t in s["targets"]:
        label = s["target_info"][t]["label"]
        section = text.split(f"target: $y = {s['target_info'][t]['latex']}$")[1]
        section = section.split("\n## ")[0]
        for c in s["cases"]:
            if c["target"] != t:
                continue
            k = c["best_stopped"]["cap"]
            assert f"| {k} of {s['seeds']} |" in section.split(f"| {c['activation']} |")[1]
            if k:
                assert f"{c['activation']} in {k} of {s['seeds']}" in section, label


# ------------------------------------------------------------------------------ exercises


def test_report_ends_with_the_exercises(results):
    from actlab.experiments.single_neuron import exercises as stubs
    from actlab.report.exercises import exercises_markdown

    text = SPEC.report(results)
    assert text.rstrip().endswith(exercises_markdown(stubs.EXERCISES).rstrip())
    assert len(stubs.EXERCISES) >= 3
    with pytest.raises(NotImplementedError):
        stubs.relu_fit_at(np.zeros(3), np.zeros(3), 1.0, 0.0)


def test_relu_fit_at_solution_against_lstsq():
    """The worked solution against numpy.linalg.lstsq on [relu(w x + b), 1], at active, kinked,
    dead and w = 0 points; the dead point returns v = 0, c = mean(y), MSE = var(y)."""
    from actlab.experiments.single_neuron import solutions

    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(-2, 2, 40))
    y = x**2 / 2 - 1 + 0.05 * rng.standard_normal(40)
    for w, b in ((1.0, 3.0), (1.3, 0.2), (-0.7, 0.4), (1.0, -5.0), (0.0, 1.0)):
        v, c, mse = solutions.relu_fit_at(x, y, w, b)
        design = np.stack([np.maximum(w * x + b, 0.0), np.ones_like(x)], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        ref = float(((design @ coef - y) ** 2).mean())
        assert mse == pytest.approx(ref, rel=1e-10, abs=1e-14)
        assert mse == pytest.approx(float(((v * design[:, 0] + c - y) ** 2).mean()), rel=1e-12)
    v, c, mse = solutions.relu_fit_at(x, y, 1.0, -5.0)  # dead on every input
    assert v == 0.0 and c == pytest.approx(y.mean()) and mse == pytest.approx(y.var())


def test_line_on_the_quadratic_warm_up_arithmetic():
    """Exercise 1: the best line on y = x^2/2 - 1 + noise (x ~ U(-2, 2), sd 0.05) is flat at
    -1/3 with MSE 4/5 - 4/9 + 0.0025; checked with NumPy's polyfit on a million points."""
    closed = 4 / 5 - 4 / 9 + 0.05**2
    assert closed == pytest.approx(0.358, abs=5e-4)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 1_000_000)
    y = x**2 / 2 - 1 + 0.05 * rng.standard_normal(x.size)
    slope, intercept = np.polyfit(x, y, 1)
    assert abs(slope) < 2e-3 and intercept == pytest.approx(-1 / 3, abs=2e-3)
    assert float(((slope * x + intercept - y) ** 2).mean()) == pytest.approx(closed, rel=5e-3)


def test_stretched_tanh_error_falls_sixteenfold_when_w_halves():
    """Exercise 3: with v w = a fixed, the squared error of v tanh(w x) to a x scales as w^4."""
    x = torch.linspace(-2, 2, 401, dtype=torch.float64)
    a = 0.5
    err = [float(((a / w * torch.tanh(w * x) - a * x) ** 2).mean()) for w in (0.1, 0.05)]
    assert err[0] / err[1] == pytest.approx(16.0, rel=0.03)
    # The leading term a w^2 x^3 / 3: squared error a^2 w^4 E[x^6] / 9, E[x^6] = 64/7 on [-2, 2].
    assert err[1] == pytest.approx(a**2 * 0.05**4 * (64 / 7) / 9, rel=0.01)


def test_sigmoid_descent_sentence_follows_the_path(results):
    """The first and largest steps are those of the stored path; "crawls" only when the largest
    step is at least twice the first."""
    g, w = results.summary["sigmoid"], results.arrays["sigmoid_path"][:, 0]
    steps = np.abs(np.diff(w))
    assert g["first_step"] == pytest.approx(steps[0])
    assert g["max_step"] == pytest.approx(steps.max())
    assert g["max_step_at"] == int(np.argmax(steps)) + 1
    base = {"steps_to_half": 3, "max_step_at": 4}
    assert "crawls" in snr.descent_sentence({**base, "first_step": 0.1, "max_step": 0.5})
    assert "5 times as far" in snr.descent_sentence({**base, "first_step": 0.1, "max_step": 0.5})
    flat = snr.descent_sentence({**base, "first_step": 0.1, "max_step": 0.15})
    assert "crawls" not in flat and "did not grow" in flat
    sat = snr.descent_sentence({**base, "first_step": 0.1, "max_step": 0.5, "saturated_start": 0.5})
    assert "[saturated](#term-saturated) (outside [0.01, 0.99]) on 50% of the training" in sat
    # The run's share, recomputed with SciPy's logistic function on draw 0's inputs.
    from scipy.special import expit

    x0 = _data(SMOKE)["x_train"][0]
    h = expit(SMOKE.sigmoid_w0 * x0)
    assert g["saturated_start"] == pytest.approx(np.mean((h < 0.01) | (h > 0.99)))


def test_truth_heldout_floor_from_the_documented_draw(results):
    """The finite draws' floor: the noiseless target's held-out MSE is the mean squared
    held-out noise of each draw (the documented draw, written out), and the report prints it."""
    data = _data(SMOKE)
    per_draw = (data["e_test"] ** 2).mean(axis=1)
    got = results.summary["truth_heldout"]
    assert got["mean"] == pytest.approx(per_draw.mean(), rel=1e-10)
    assert got["n"] == SMOKE.seeds
    assert f"on these finite held-out draws it is {snr._ci(got)}" in SPEC.report(results)


def test_relu_fit_at_solution_is_the_landscape_of_the_chapter(results):
    """The exercise computes what the chapter draws: one point of the ReLU landscape."""
    from actlab.experiments.single_neuron import solutions

    x, y = (
        results.arrays["x_train"][0],
        results.arrays["y_train"][SMOKE.targets.index("quadratic"), 0],
    )
    for w, b in ((1.2, -0.5), (-0.4, 0.3), (0.5, -3.0)):
        expected = nl.relu_landscape(x, y, np.array([w]), np.array([b]))["mse"][0, 0]
        assert solutions.relu_fit_at(x, y, w, b)[2] == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_report_uses_the_tutorial_notation_and_links_its_terms(results):
    """Every symbol of the report means what the tutorial's notation table says (no slope $a$
    or $q$, no noise $e$, no scale $\\alpha$), and each glossary term is linked once, at its
    first use."""
    from actlab.report.notation import misplaced_symbols

    text = SPEC.report(results)
    assert misplaced_symbols(text, "single-neuron") == []
    assert "slope $\\mathrm{cov}(x, y)/\\mathrm{var}(x)$" in text
    assert "\\lambda\\,\\mathrm{ReLU}(z)" in text and "+ \\xi$" in text
    for key in (
        "seed", "held-out", "noise-floor", "ensemble", "t-interval", "r-squared", "welch",
        "paired", "wilson-interval", "dead", "saturated", "default-init",
    ):  # fmt: skip
        assert text.count(f"](#term-{key})") == 1, key
    assert "a two-sample t-test that does not assume" not in text  # defined in the glossary


def test_relu_dead_counts_carry_wilson_intervals(results):
    """Started dead is counted once per initial point (the targets share the initial points
    and the inputs, so the same points are dead on every target), recounted from the initial
    weights and each draw's input range, with the Wilson interval of those independent draws
    (scipy.stats.binomtest); ended dead is counted per draw."""
    r, text, cfg = results.summary["relu"], SPEC.report(results), SMOKE
    a = cfg.activations.index("relu")
    p0 = results.arrays["params_init"][:, a]  # (T, S, R, 4)
    x = results.arrays["x_train"]  # (S, n)
    z = p0[..., 0, None] * x[None, :, None, :] + p0[..., 1, None]  # (T, S, R, n)
    dead0 = (z <= 0).all(-1)
    assert (dead0 == dead0[:1]).all() and r["dead_start_same_for_all_targets"]
    k, n = int(dead0[0].sum()), cfg.seeds * cfg.restarts
    assert (r["dead_start_points"], r["start_points"]) == (k, n)
    assert r["all_dead_at_start"] == len(cfg.targets) * k
    w = st.binomtest(k, n).proportion_ci(method="wilson")
    lo = "0%" if k == 0 else snr._pct(w.low)
    assert f"Of the {n} initial points" in text
    assert f"{k} ({snr._pct(k / n)} [{lo}, {snr._pct(w.high)}], Wilson interval)" in text
    # Ended dead, per draw, from the hidden output: 0 on every training input at the end.
    ended = results.arrays["dead"][:, a].astype(bool)  # (T, S, R)
    assert r["dead_end_per_draw"] == ended.sum(axis=(0, 2)).tolist()
    assert snr.over_draws(r["dead_end_per_draw"], r["members_per_draw"]) in text


def test_dead_sentence_follows_the_counts():
    """Hand-set counts: the start is counted per initial point and multiplied out over the
    targets only when the same points are dead on every target; "more than started dead" only
    when training killed some."""
    r = {
        "dead_start_points": 3,
        "start_points": 20,
        "dead_start_same_for_all_targets": True,
        "all_dead_at_start": 15,
        "all_dead_at_end": 40,
        "all_members": 100,
        "dead_end_per_draw": [10, 6, 9, 8, 7],
        "members_per_draw": 20,
    }
    text = snr.dead_sentence(r)
    w = st.binomtest(3, 20).proportion_ci(method="wilson")
    assert "Of the 20 initial points" in text
    assert f"3 (15% [{snr._pct(w.low)}, {snr._pct(w.high)}], Wilson interval) start dead" in text
    assert "the same ones on each of the 5 targets" in text and "15 of the 100 ReLU" in text
    m, lo, hi = _t_share([10, 6, 9, 8, 7], 20)
    assert f"At the end 40 of 100 ({snr._pct(m)} [{snr._pct(lo)}, {snr._pct(hi)}])" in text
    assert "25 more than started dead" in text
    none = snr.dead_sentence({**r, "dead_end_per_draw": [3, 3, 3, 3, 3]})
    assert "training killed none" in none and "more than started" not in none
    differ = snr.dead_sentence({**r, "dead_start_same_for_all_targets": False})
    assert "the same ones" not in differ and "15 of the 100 ReLU restarts did" in differ
    one = snr.dead_sentence({**r, "dead_start_points": 1})
    assert "Wilson interval) starts dead" in one


def test_activations_beyond_the_first_chapter_are_defined(results):
    """The gallery closes the tutorial, so this chapter defines the activations the first
    chapter does not (sine, identity) in its own words, and only those."""
    text = snr.activation_words(["tanh", "relu", "sine", "identity"])
    assert "sine is $\\varphi(z) = \\sin(z)$" in text
    assert "identity is $\\varphi(z) = z$" in text
    assert "tanh and relu are defined in the first chapter" in text
    assert snr.activation_words(["tanh", "relu", "sigmoid", "leaky_relu"]) == ""
    report = SPEC.report(results)
    assert snr.activation_words(list(SMOKE.activations)) in report
    assert "gallery" not in report.lower()  # read before the gallery: it does not rely on it


def test_heldout_figure_is_readable_at_page_width(results):
    """At most 3 target panels a row (five in a row were unreadable at ~800 px); an empty
    slot holds the legend, and every target has its panel. Five targets (the default's
    number) are made from the smoke run's by copying two of them under new names."""
    from actlab.experiments.single_neuron import figures as snf

    s = dataclasses.replace(results, summary=dict(results.summary)).summary
    extra = [f"{t}_copy" for t in results.summary["targets"][:2]]
    s["targets"] = list(results.summary["targets"]) + extra
    s["target_info"] = {**s["target_info"], **{e: s["target_info"][e[:-5]] for e in extra}}
    s["ranking"] = {**s["ranking"], **{e: s["ranking"][e[:-5]] for e in extra}}
    s["cases"] = s["cases"] + [
        {**c, "target": f"{c['target']}_copy"}
        for c in results.summary["cases"]
        if f"{c['target']}_copy" in extra
    ]
    five = dataclasses.replace(results, summary=s)
    fig = snf.heldout_figure(five)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 5
    rows = [round(ax.get_position().y0, 3) for ax in panels]
    assert max(rows.count(y) for y in rows) <= 3
    assert fig.get_size_inches()[0] <= 9.0
    assert any(ax.get_legend() is not None for ax in fig.axes if not ax.get_title())
    fig.clear()


def test_initialisation_and_target_shapes_follow_the_config(results):
    """The $U(-1, 1)$ bound is stated only for PyTorch's default scheme; other schemes are
    named and linked, not given that bound. Only the run's targets get a shape sentence."""
    assert "$U(-1, 1)$" in snr.init_words("torch")
    assert snr.init_words("xavier") == "[xavier initialisation](#term-xavier-init)"
    assert "U(-1, 1)" not in snr.init_words("he")
    text = SPEC.report(results)
    assert snr.init_words(SMOKE.init) in text
    assert ("the S-cubic rises" in text) == ("cubic" in SMOKE.targets)
    assert ("the W-quartic has two minima" in text) == ("quartic" in SMOKE.targets)
    assert snr._shapes({"targets": ["linear"]}) == ""  # noqa: SLF001


def test_fit_figure_has_two_panels_a_row(results):
    """The fit figure (and the GIF built on the same grid) puts at most two activations in a
    row, so that the w, b, v, c boxes stay readable at ~800 px; every activation has a panel."""
    from actlab.experiments.single_neuron import figures as snf

    fig = snf.fit_figure(results, SMOKE.targets[0])
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == len(SMOKE.activations)
    rows = [round(ax.get_position().y0, 3) for ax in panels]
    assert max(rows.count(y) for y in rows) <= 2
    assert fig.get_size_inches()[0] <= 9.0
    fig.clear()
