"""The NumPy-from-scratch lesson: the formulas against PyTorch and SciPy (independently of the
experiment), every part of the smoke run against closed forms and independent re-computations,
the report's numbers, the figures, and the exercises' worked solutions."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from reference import plain_sequential
from scipy import optimize, special, stats
from scipy.stats import entropy as scipy_entropy

from actlab import numpy_ref as ref
from actlab.experiments import list_experiments
from actlab.experiments.numpy_basics import SPEC, parts
from actlab.experiments.numpy_basics import exercises as stubs
from actlab.experiments.numpy_basics import experiment as nb
from actlab.experiments.numpy_basics import solutions as sol
from actlab.report.exercises import KINDS, exercises_markdown
from actlab.report.format import num
from actlab.seeding import derive_seed
from actlab.store import RunStore

SMOKE = nb.presets["smoke"]


@pytest.fixture(scope="module")
def smoke():
    return nb.run(SMOKE)


def _rng():
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------------------------
# NumPy vs PyTorch vs SciPy, independent of the experiment

EDGES = np.array([-np.inf, -1e4, -710.0, -40.0, -1.0, -0.0, 0.0, 1e-300, 1.0, 40.0, 710.0, 1e4,
                  np.inf, np.nan])  # fmt: skip


def _same(a, b, rtol, atol=0.0):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 4e-16), (np.float32, 4e-7)])
def test_elementwise_formulas_agree_with_torch_and_scipy(dtype, rtol):
    x = np.concatenate([_rng().normal(0, 10, 5000), EDGES]).astype(dtype)
    t = torch.from_numpy(x)
    with np.errstate(all="raise", under="ignore"):  # the NumPy formulas never warn
        ours = {
            "relu": ref.relu(x),
            "leaky": ref.leaky_relu(x, 0.01),
            "sigmoid": ref.sigmoid(x),
            "tanh": ref.tanh(x),
        }
    _same(ours["relu"], torch.relu(t).numpy(), 0)
    _same(ours["leaky"], F.leaky_relu(t, 0.01).numpy(), 0)
    _same(ours["sigmoid"], torch.sigmoid(t).numpy(), 2 * rtol, atol=1e-300)
    _same(ours["sigmoid"], special.expit(x), 2 * rtol, atol=1e-300)
    _same(ours["tanh"], torch.tanh(t).numpy(), 2 * rtol, atol=1e-300)
    for y in ours.values():
        assert y.dtype == dtype
    # the documented edge values
    np.testing.assert_array_equal(ref.sigmoid([-np.inf, np.inf]), [0.0, 1.0])
    np.testing.assert_array_equal(ref.tanh([-np.inf, -1e4, 1e4, np.inf]), [-1, -1, 1, 1])
    assert np.isnan(ref.relu([np.nan])).all() and np.isnan(ref.sigmoid([np.nan])).all()


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-15), (np.float32, 1e-6)])
def test_softmax_and_log_softmax_agree_with_torch_and_scipy(dtype, rtol):
    x = _rng().normal(0, 10, (500, 7)).astype(dtype)
    x[0] += 1000.0  # a row that overflows the textbook formula
    t = torch.from_numpy(x)
    p, logp = ref.softmax(x), ref.log_softmax(x)
    _same(p, torch.softmax(t, -1).numpy(), rtol, atol=1e-30)
    _same(p, special.softmax(x, axis=-1), rtol, atol=1e-30)
    # log p = (x - m) - log sum: an absolute error of a few eps where log p is near 0
    eps = float(np.finfo(dtype).eps)
    _same(logp, torch.log_softmax(t, -1).numpy(), rtol * 4, atol=4 * eps)
    _same(logp, special.log_softmax(x, axis=-1), rtol * 4, atol=4 * eps)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=10 * rtol)


def test_textbook_formulas_fail_where_the_experiment_says():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(ref.tanh_naive(np.array([710.0, -710.0]))).all()
        assert np.isnan(ref.softmax_naive(np.array([1000.0, 1001.0, 1002.0]))).all()
        assert ref.tanh_naive(np.array([1e-300]))[0] == 0.0  # cancellation: tanh(1e-300) = 1e-300


# --------------------------------------------------------------------------------------------
# The smoke run, part by part


def test_registered():
    spec = SPEC
    assert spec.name == "numpy-basics"
    # The first chapter: its opening assumes no other chapter.
    assert list_experiments()[0] == "numpy-basics"
    assert {"smoke", "default", "full"} <= set(spec.presets)
    assert spec.preset("default") == nb.Config()


def test_checks_cover_every_comparison(smoke):
    checks = smoke.summary["checks"]
    keys = {(c["function"], c["implementation"], c["reference"]) for c in checks}
    for fn in ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"):
        assert (fn, "numpy", "torch") in keys
    for fn in ("sigmoid", "softmax", "log_softmax"):
        assert (fn, "numpy", "scipy") in keys
    for fn in ("sigmoid", "tanh", "softmax"):
        assert (fn, "textbook", "torch") in keys
    for c in checks:
        if c["implementation"] == "numpy":
            assert c["max_err_eps"] <= 4.0, c
            assert c["dtype_kept"]
            # a disagreement on non-finite values only where a logit is infinite
            assert all("inf" in m["at"] for m in c["mismatch_at"]), c
        assert len(c["mismatch_at"]) <= c["nonfinite_mismatches"]
    tanh64 = next(
        c for c in checks
        if c["function"] == "tanh" and c["implementation"] == "textbook"
        and c["inputs"] == "edge" and c["dtype"] == "float64"
    )  # fmt: skip
    assert {m["at"] for m in tanh64["mismatch_at"]} == {"-inf", "-1000", "-710", "710", "1000",
                                                        "inf"}  # fmt: skip
    assert tanh64["max_rel_diff"] == 1.0 and tanh64["max_rel_at"] in ("1e-300", "-1e-300")


def test_check_numbers_recomputed_independently(smoke):
    """The random-input check of sigmoid vs SciPy, recomputed from the same draw."""
    rng = np.random.default_rng(derive_seed(SMOKE.seed, "numpy-basics", "random"))
    x = rng.normal(0.0, SMOKE.random_scale, SMOKE.n_random)
    c = next(
        c for c in smoke.summary["checks"]
        if (c["function"], c["implementation"], c["reference"], c["inputs"], c["dtype"])
        == ("sigmoid", "numpy", "scipy", "random", "float64")
    )  # fmt: skip
    assert c["max_abs_diff"] == np.max(np.abs(ref.sigmoid(x) - special.expit(x)))
    # the table's error: relative to max(|reference|, 1), in units of machine epsilon
    expected = special.expit(x)
    err = np.abs(ref.sigmoid(x) - expected) / np.maximum(np.abs(expected), 1.0)
    assert c["max_err_eps"] == pytest.approx(np.max(err) / np.finfo(np.float64).eps, rel=1e-12)
    assert c["n"] == SMOKE.n_random


def test_check_table_and_sentence_use_the_same_error(smoke):
    """The table and the sentence under it both give the error in units of machine epsilon
    relative to max(|reference|, 1), not an absolute difference beside a relative one: with
    the two set apart by hand, every cell and the sentence's worst case follow max_err_eps."""
    changed = json.loads(json.dumps(smoke.summary))
    for i, c in enumerate(changed["checks"]):
        c["max_abs_diff"] = 1e-3 if c["max_abs_diff"] else 0.0  # would show as 0.001
        c["max_err_eps"] = (0.5 + i % 3) if c["max_err_eps"] else 0.0
    worst = next(
        c for c in changed["checks"]
        if (c["function"], c["implementation"], c["reference"], c["inputs"], c["dtype"])
        == ("log_softmax", "numpy", "torch", "random", "float64")
    )  # fmt: skip
    worst["max_abs_diff"], worst["max_err_eps"] = 1e-3, 3.5
    text = SPEC.report(dataclasses.replace(smoke, summary=changed))
    table = text.split("| function | implementation vs reference |")[1].split("\n\n")[0]
    assert "0.001" not in table and "10^{-3}" not in table
    row = next(
        line for line in table.splitlines() if line.startswith("| log-softmax | NumPy vs PyTorch")
    )
    assert row.split(" | ")[2] == "3.5"
    assert "*units of machine epsilon*" in text
    assert (
        "In float64 ($\\varepsilon_{\\mathrm{mach}} = 2.2 \\times 10^{-16}$) the largest error of "
        "the NumPy formulas in the table is 3.5 $\\varepsilon_{\\mathrm{mach}}$ (log-softmax vs "
        "PyTorch, random inputs)"
    ) in text


def test_compose_affine_equals_a_torch_stack():
    rng = _rng()
    widths = (5, 7, 2, 6)
    weights = [rng.normal(size=(b, a)) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    biases = [rng.normal(size=b) for b in widths[1:]]
    seq = torch.nn.Sequential(*[torch.nn.Linear(a, b, dtype=torch.float64)
                                for a, b in zip(widths[:-1], widths[1:], strict=True)])  # fmt: skip
    with torch.no_grad():
        for lin, w, b in zip(seq, weights, biases, strict=True):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    x = rng.normal(size=(50, widths[0]))
    W, b = parts.compose_affine(weights, biases)
    expected = seq(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(x @ W.T + b, expected, rtol=1e-12, atol=1e-12)
    assert np.linalg.matrix_rank(W) == 2  # the narrowest layer
    for fn in (parts.compose_affine, sol.compose_affine):
        W2, b2 = fn(weights, biases)
        np.testing.assert_allclose(x @ W2.T + b2, expected, rtol=1e-12, atol=1e-12)


def test_linear_collapse(smoke):
    c = smoke.summary["collapse"]
    rows = {r["activation"]: r for r in c["rows"]}
    assert rows["identity"]["max_abs_diff_composed"] < 1e-12
    assert rows["identity"]["affine_fit_residual"] < 1e-12
    assert c["rank"] == min(SMOKE.collapse_widths) == 3 and c["shape"] == [8, 8]
    assert np.sum(np.asarray(c["singular_values"]) > c["rank_tolerance"]) == c["rank"]
    for act in SMOKE.collapse_activations:
        assert rows[act]["affine_fit_residual"] > 0.05 and rows[act]["max_abs_diff_composed"] > 0.1
    line = smoke.arrays["collapse_line"][0]  # identity: the fit lies on the network
    np.testing.assert_allclose(line[0], line[1], atol=1e-12)


def test_softmax_overflow_points_match_the_thresholds(smoke):
    sm = smoke.summary["softmax"]
    assert sm["naive_all_nan"] and sm["log_naive_all_nan"] and sm["exp_max_is_inf"]
    np.testing.assert_allclose(sm["stable"], special.softmax([0.0, 1.0, 2.0]), rtol=1e-15)
    np.testing.assert_allclose(sm["log_stable"], special.log_softmax([0.0, 1.0, 2.0]), rtol=1e-15)
    assert sm["gap_log_softmax"] == [0.0, -1000.0] and sm["gap_log_of_softmax_inf"] == [False, True]
    step = sm["offset_step"]
    for dtype in ("float64", "float32"):
        limit = math.log(np.finfo(dtype).max)
        assert sm["exp_limit"][dtype] == pytest.approx(limit, rel=1e-12)
        pred = sm["predicted_offset"][dtype]
        assert pred["sum"] == pytest.approx(limit - special.logsumexp([0.0, 1.0, 2.0]))
        assert pred["sum"] < sm["first_wrong_offset"][dtype] <= pred["sum"] + step
        assert pred["max"] < sm["first_nan_offset"][dtype] <= pred["max"] + step
        p_inf = sm["predicted_inf_gap"][dtype]
        assert p_inf < sm["first_inf_gap"][dtype] <= p_inf + step
    assert sm["predicted_inf_gap"]["float64"] == pytest.approx(745.13, abs=0.01)
    stable = smoke.arrays["overflow"][[1, 3]]
    np.testing.assert_allclose(stable, special.softmax([0.0, 1.0, 2.0])[2], rtol=1e-6)
    # The naive rows: the largest logit's e^x / sum e^x, computed here in each precision.
    offsets = np.asarray(smoke.coords["overflow/offset"])
    base = np.array(SMOKE.big_logits) - min(SMOKE.big_logits)
    for row, dtype in ((0, np.float64), (2, np.float32)):
        x = (base[None, :] + offsets[:, None]).astype(dtype)
        with np.errstate(all="ignore"):
            naive = np.exp(x[:, -1]) / np.exp(x).sum(axis=1)
        np.testing.assert_allclose(smoke.arrays["overflow"][row], naive, rtol=1e-6, equal_nan=True)


def test_temperature(smoke):
    t = smoke.summary["temperature"]
    base = np.array(SMOKE.peaky_base)
    for scale, p, h in zip(SMOKE.peaky_scales, t["probs"], t["entropy_at_1"], strict=True):
        np.testing.assert_allclose(p, special.softmax(scale * base), rtol=1e-13)
        assert h == pytest.approx(scipy_entropy(special.softmax(scale * base)), rel=1e-12)
    q = np.array(SMOKE.sweep_logits)
    temps = np.asarray(smoke.coords["temperature_probs/temperature"])
    assert temps[0] == pytest.approx(SMOKE.t_min) and temps[-1] == pytest.approx(SMOKE.t_max)
    np.testing.assert_allclose(
        smoke.arrays["temperature_probs"], special.softmax(q / temps[:, None], axis=1),
        rtol=1e-12, atol=1e-300,
    )  # fmt: skip
    target = 1 - SMOKE.epsilon + SMOKE.epsilon / q.size
    assert special.softmax(q / t["t_star"])[0] == pytest.approx(target, rel=1e-12)
    root = optimize.brentq(lambda T: special.softmax(q / T)[0] - target, 1e-3, 1e3, xtol=1e-15)
    assert t["t_star"] == pytest.approx(root, rel=1e-9)
    assert t["entropy_last"] < t["log_k"] and t["entropy_first"] < 1e-10
    # epsilon-greedy puts 1 - epsilon + epsilon / K on the greedy action, epsilon / K on each
    # other one; at T* Boltzmann matches it on the greedy action.
    greedy = np.full(q.size, SMOKE.epsilon / q.size)
    greedy[np.argmax(q)] += 1 - SMOKE.epsilon
    np.testing.assert_allclose(t["eps_greedy"], greedy, rtol=1e-15)
    np.testing.assert_allclose(t["boltzmann"], special.softmax(q / t["t_star"]), rtol=1e-12)
    assert t["eps_entropy"] == pytest.approx(scipy_entropy(greedy), rel=1e-12)
    assert t["boltzmann_entropy"] == pytest.approx(scipy_entropy(t["boltzmann"]), rel=1e-12)


def test_dead_relu_tables_and_descent(smoke):
    d = smoke.summary["dead"]
    x = np.array(SMOKE.dead_inputs)
    assert d["dead"]["relu"] == [0.0] * 4 and d["dead"]["relu_grad_autograd"] == [0.0] * 4
    assert d["dead"]["leaky_grad_autograd"] == [SMOKE.leaky_slope] * 4
    assert d["compare"]["relu_grad_autograd"] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert d["compare"]["leaky_grad"] == d["compare"]["leaky_grad_autograd"]
    assert not d["relu_moved"] and d["max_grad"][0] == 0.0
    assert d["final_loss"][0] == d["initial_loss"][0] == np.mean(x**2)
    alive = d["leaky_alive_step"]
    assert alive is not None and d["final_loss"][1] < d["initial_loss"][1]
    # the same descent with autograd, step by step
    traj = smoke.arrays["dead_training"][1]
    w = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    xt = torch.from_numpy(x)
    for step in range(SMOKE.dead_steps + 1):
        loss = (F.leaky_relu(w * xt + b, SMOKE.leaky_slope) + xt).square().mean()
        assert traj[step, 0] == pytest.approx(loss.item(), rel=1e-12, abs=1e-15)
        assert traj[step, 1] == pytest.approx(w.item(), rel=1e-12, abs=1e-15)
        assert (traj[step, 3] > 0) == bool(((w * xt + b) > 0).any())
        loss.backward()
        with torch.no_grad():
            w -= SMOKE.dead_lr * w.grad
            b -= SMOKE.dead_lr * b.grad
        w.grad = b.grad = None


def test_chain_values_against_value_iteration():
    n, gamma, r_stop = 7, 0.8, -1.5
    q = parts.chain_q_values(n, gamma, r_stop)
    v = np.zeros(n + 1)  # v[0] terminal
    for _ in range(2000):  # Bellman optimality iteration on the whole chain
        cont = 1 + gamma * v[:-1]
        wait = gamma * v[1:]
        v = np.concatenate([[0.0], np.maximum.reduce([cont, wait, np.full(n, r_stop)])])
    np.testing.assert_allclose(q[:, 0], 1 + gamma * v[:-1], rtol=1e-12)
    np.testing.assert_allclose(q[:, 1], gamma * v[1:], rtol=1e-12)
    np.testing.assert_allclose(q[:, 2], r_stop)
    pi = special.softmax(q, axis=1)
    v_pi = np.zeros(n + 1)
    for _ in range(5000):  # iterative policy evaluation
        v_pi[1:] = (
            pi[:, 0] * (1 + gamma * v_pi[:-1]) + pi[:, 1] * gamma * v_pi[1:] + pi[:, 2] * r_stop
        )
    np.testing.assert_allclose(parts.policy_values(pi, gamma, r_stop), v_pi[1:], rtol=1e-10)


def test_linear_collapse_residuals_recomputed_with_torch_and_lstsq(smoke):
    """The stacks rebuilt from the lesson's draw as nn.Linear layers with torch.nn activations:
    the residual of the best affine fit, relative to the outputs' spread about their mean
    (sqrt(1 - R^2)), and the distance to the composed map."""
    cfg = SMOKE
    rng = np.random.default_rng(derive_seed(cfg.seed, "numpy-basics", "collapse"))
    widths = cfg.collapse_widths
    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    weights = [rng.normal(0.0, math.sqrt(2.0 / a), (b, a)) for a, b in pairs]
    biases = [rng.normal(0.0, 0.5, b) for _, b in pairs]
    x = rng.normal(0.0, 1.0, (cfg.collapse_points, widths[0]))
    W, b = parts.compose_affine(weights, biases)
    rows = {r["activation"]: r for r in smoke.summary["collapse"]["rows"]}
    modules = {"identity": torch.nn.Identity, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    for name in ("identity", *cfg.collapse_activations):
        layers = []
        for i, (wl, bl) in enumerate(zip(weights, biases, strict=True)):
            lin = torch.nn.Linear(wl.shape[1], wl.shape[0], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(wl))
                lin.bias.copy_(torch.from_numpy(bl))
            layers += [lin, modules[name]()] if i < len(weights) - 1 else [lin]
        with torch.no_grad():
            y = torch.nn.Sequential(*layers)(torch.from_numpy(x)).numpy()
        design = np.hstack([x, np.ones((len(x), 1))])
        fitted = design @ np.linalg.lstsq(design, y, rcond=None)[0]
        r2 = 1 - ((y - fitted) ** 2).sum() / ((y - y.mean(axis=0)) ** 2).sum()
        resid = math.sqrt(max(1 - r2, 0.0))
        assert rows[name]["affine_fit_residual"] == pytest.approx(resid, rel=1e-6, abs=1e-12)
        composed = np.max(np.abs(y - (x @ W.T + b)))
        assert rows[name]["max_abs_diff_composed"] == pytest.approx(composed, rel=1e-6, abs=1e-12)


def test_head_verdicts_compare_with_the_linear_head_when_set_by_hand():
    """A hand-made fit through ``rl_heads``: tanh ends level with the linear head (though far
    from its own start), sigmoid far above it; each verdict is a paired test against the
    linear head."""
    cfg = SMOKE
    S, steps = cfg.seeds, cfg.fit_steps + 1
    q = parts.chain_q_values(cfg.n_states, cfg.gamma, cfg.stop_reward)
    end = 0.5 + 0.01 * np.arange(S)
    loss = np.empty((len(cfg.q_heads), S, steps))
    loss[:, :, 0] = 50.0 + np.arange(S)
    loss[:, :, 1:] = end[None, :, None]
    loss[cfg.q_heads.index("sigmoid"), :, -1] = end + 5.0
    fake = {"loss": loss, "pred": np.zeros((len(cfg.q_heads), S, cfg.n_states, 3)), "targets": q}
    fits = parts.rl_heads(cfg, lambda key, fn, work=0: fake)["heads"]
    verdict = {f["head"]: f["differs_from_linear"] for f in fits}
    assert verdict == {"identity": False, "tanh": False, "sigmoid": True}


def test_head_ranges():
    assert parts.head_range("identity") == (-math.inf, math.inf)
    assert parts.head_range("tanh") == (-1.0, 1.0)
    assert parts.head_range("sigmoid") == (0.0, 1.0)


HEADS = {"identity": lambda z: z, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
"""The smoke run's output heads, written with torch functions (not actlab's registry)."""


def _initial_torso(cfg, s):
    """Seed s's initial Q-network ``1 -> hidden -> 3`` with nn.ReLU, written out: torch's
    default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) in float64 from a generator seeded with
    ``derive_seed(seed, "numpy-basics", "q-fit", s)``, W then b layer after layer (the draw
    order ``EnsembleMLP`` documents)."""
    assert cfg.torso == "relu"
    seed = derive_seed(cfg.seed, "numpy-basics", "q-fit", s)
    return plain_sequential([1, cfg.hidden, 3], seed, torch.nn.ReLU)


@pytest.mark.parametrize("head", ["identity", "tanh", "sigmoid"])
def test_fit_member_equals_a_plain_sequential_trained_alone(smoke, head):
    """Each head's member, seed 1, against its network trained alone with torch.optim.Adam,
    to float rounding (rtol 1e-5 on the loss, atol 1e-5 on the outputs after 150 steps)."""
    cfg = SMOKE
    q = parts.chain_q_values(cfg.n_states, cfg.gamma, cfg.stop_reward)
    x = (torch.arange(1, cfg.n_states + 1, dtype=torch.float32) / cfg.n_states)[:, None]
    y = torch.tensor(q, dtype=torch.float32)
    h, s = cfg.q_heads.index(head), 1
    seq, fn = _initial_torso(cfg, s), HEADS[head]
    opt = torch.optim.Adam(seq.parameters(), lr=cfg.fit_lr)
    losses = []
    for _ in range(cfg.fit_steps):
        opt.zero_grad()
        loss = (fn(seq(x)) - y).square().mean()
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = fn(seq(x)).numpy()
        losses.append((fn(seq(x)) - y).square().mean().item())
    np.testing.assert_allclose(smoke.arrays["q_loss"][h, s], losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(smoke.arrays["q_pred"][h, s], pred, atol=1e-5)
    fit = smoke.summary["heads"]["fits"][h]
    assert fit["head"] == head
    assert fit["max_output"] == pytest.approx(smoke.arrays["q_pred"][h].max())
    assert fit["min_output"] == pytest.approx(smoke.arrays["q_pred"][h].min())
    assert fit["initial_mse"]["mean"] == pytest.approx(smoke.arrays["q_loss"][h, :, 0].mean())


def test_heads_are_compared_with_the_linear_head_by_a_paired_test(smoke):
    """``differs_from_linear``: the paired t-test (SciPy's ttest_rel) between a head's final MSE
    and the identity head's, seed by seed (a seed starts every head from the same weights)."""
    loss = smoke.arrays["q_loss"]  # (head, seed, step)
    linear = loss[0, :, -1]
    for i, fit in enumerate(smoke.summary["heads"]["fits"]):
        if i == 0:
            assert fit["head"] == "identity" and not fit["differs_from_linear"]
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = stats.ttest_rel(loss[i, :, -1], linear).pvalue
        assert fit["differs_from_linear"] == bool(p < 0.05)


def test_bounded_heads_cannot_pass_their_range(smoke):
    h = smoke.summary["heads"]
    q = smoke.arrays["q_targets"]
    for i, f in enumerate(h["fits"]):
        pred = smoke.arrays["q_pred"][i]
        final = smoke.arrays["q_loss"][i, :, -1]
        assert f["final_mse_values"] == final.tolist()
        np.testing.assert_allclose(final, ((pred - q) ** 2).mean(axis=(1, 2)), rtol=1e-5)
        if f["head"] == "tanh":
            floor = np.mean((np.clip(q, -1, 1) - q) ** 2)
            assert f["floor"] == pytest.approx(floor, rel=1e-12) and floor > 1.0
            assert pred.max() <= 1.0 and np.all(final >= floor) and f["above_floor"]
            assert f["differs_from_linear"]
    assert h["fits"][0]["floor"] == 0.0 and not h["fits"][0]["bounded"]
    assert h["policy_sum_error"] < 1e-15 and h["policy_min"] > 0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_random": 5}, "n_random"),
        ({"random_scale": 0.0}, "random_scale"),
        ({"leaky_slope": 1.5}, "leaky_slope"),
        ({"collapse_widths": (4, 4)}, "collapse_widths"),
        ({"collapse_points": 5}, "collapse_points"),
        ({"big_logits": (1.0, math.nan)}, "big_logits"),
        ({"peaky_scales": (1.0, -1.0)}, "peaky_scales"),
        ({"sweep_logits": (1.0, 1.0)}, "unique maximum"),
        ({"t_min": 2.0, "t_max": 1.0}, "t_max"),
        ({"epsilon": 1.0}, "epsilon"),
        ({"dead_inputs": (-1.0, 0.5)}, "dead_inputs"),
        ({"gamma": 1.0}, "gamma"),
        ({"seeds": 1}, "seeds"),
        ({"q_heads": ("tanh", "identity")}, "identity"),
        ({"q_heads": ("identity", "tanh", "tanh")}, "repeat"),
        ({"q_heads": ("identity", "prelu")}, "learnable"),
        ({"torso": "reluu"}, "relu"),
        ({"fit_steps": 0}, "fit_steps"),
    ],
)
def test_config_errors(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SMOKE, **change)


def test_metrics_are_tidy(smoke):
    m = smoke.metrics
    assert list(m.columns[:4]) == ["member", "step", "metric", "value"]
    assert set(m["part"]) == {"check", "collapse", "dead", "heads"}
    checks = m[m.metric == "check/max_abs_diff"]
    assert checks.value.tolist() == [c["max_abs_diff"] for c in smoke.summary["checks"]]
    heads = m[m.metric == "heads/mse"]
    assert len(heads) == len(SMOKE.q_heads) * SMOKE.seeds * (SMOKE.fit_steps + 1)
    last = heads[heads.step == SMOKE.fit_steps].sort_values("member")
    assert last.value.tolist() == smoke.arrays["q_loss"][:, :, -1].reshape(-1).tolist()
    json.dumps(smoke.summary, allow_nan=False)


def test_one_chunk_and_store_round_trip(smoke, tmp_path):
    keys = []
    nb.run(SMOKE, lambda key, fn, work=0: keys.append(key) or fn())
    assert keys == ["q-fit"]
    store = RunStore(tmp_path / "run")
    store.begin("numpy-basics", "smoke", SMOKE)
    first = nb.run(SMOKE, store.chunk_runner())
    restored = []
    second = nb.run(SMOKE, store.chunk_runner(lambda key, r: restored.append(r)))
    assert restored == [True]
    np.testing.assert_array_equal(first.arrays["q_loss"], second.arrays["q_loss"])
    store.save_results(second)
    loaded = store.load_results()
    pd.testing.assert_frame_equal(loaded.metrics, second.metrics, check_dtype=False)
    assert SPEC.report(loaded) == SPEC.report(second)  # the report reads JSON-round-tripped values


def test_figures(smoke):
    figs = SPEC.figures(smoke)
    assert set(figs) == {"formulas", "linear_collapse", "softmax_overflow", "temperature",
                         "dead_relu", "rl_heads"}  # fmt: skip
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        assert all(ax.has_data() for ax in fig.axes), name


# --------------------------------------------------------------------------------------------
# The report


def test_report_numbers_come_from_results(smoke):
    text = SPEC.report(smoke)
    assert text.startswith("# NumPy from scratch")
    for fig in SPEC.figures(smoke):
        assert f"(figures/{fig}.png)" in text
    sm, t, d = smoke.summary["softmax"], smoke.summary["temperature"], smoke.summary["dead"]
    assert "`[nan, nan, nan]`" in text
    assert "[0.09003, 0.2447, 0.6652]" in text  # the stable softmax of [1000, 1001, 1002]
    assert f"at a shift of {sm['first_wrong_offset']['float64']:g} in float64" in text
    assert f"$T = {t['t_star']:.4g}$" in text
    assert f"from step {d['leaky_alive_step']} the unit" in text
    tanh = next(f for f in smoke.summary["heads"]["fits"] if f["head"] == "tanh")
    assert f"The tanh head's final MSE, {tanh['final_mse']['mean']:.3g} [" in text
    assert "higher than the linear head's" in text
    rank = smoke.summary["collapse"]["rank"]
    assert f"matrix $W$ has rank {rank}" in text
    assert text.rstrip().endswith(exercises_markdown(sol.EXERCISES).rstrip())
    # change numbers in the results: the report follows
    changed = json.loads(json.dumps(smoke.summary))
    changed["temperature"]["t_star"] = 0.123456
    changed["dead"]["leaky_alive_step"] = 42
    changed["collapse"]["rank"] = 7
    for f in changed["heads"]["fits"]:
        if f["head"] == "tanh":
            f["differs_from_linear"] = False
    other = SPEC.report(dataclasses.replace(smoke, summary=changed))
    assert "$T = 0.1235$" in other and "from step 42 the unit" in other
    assert "matrix $W$ has rank 7" in other
    assert "The tanh head's final MSE" in other and "within noise" in other


def test_report_has_no_missing_values(smoke):
    text = SPEC.report(smoke)
    assert "n/a" not in text and "None" not in text


# --------------------------------------------------------------------------------------------
# Exercises: every worked solution against an independent reference


def test_exercise_list():
    kinds = [e.kind for e in sol.EXERCISES]
    assert set(kinds) == set(KINDS)
    assert kinds == sorted(kinds, key=KINDS.index)  # listed in the order of KINDS
    for e in sol.EXERCISES:
        if e.function:
            lesson, name = e.function.split(":")
            assert lesson == "numpy_basics"
            assert callable(getattr(stubs, name)) and callable(getattr(sol, name))


def test_stubs_are_unsolved():
    x = np.array([1.0, 2.0])
    for call in (
        lambda: stubs.leaky_relu_and_grad(x),
        lambda: stubs.log_softmax(x),
        lambda: stubs.compose_affine([np.eye(2)], [np.zeros(2)]),
        lambda: stubs.dead_units(x[None], np.eye(2), np.zeros(2)),
        lambda: stubs.temperature_for_entropy(x, 0.5),
    ):
        with pytest.raises(NotImplementedError):
            call()


def test_warm_up_answers():
    for key, expected in sol.SOFTMAX_123.items():
        logits = np.array(json.loads(key), dtype=float)
        np.testing.assert_allclose(special.softmax(logits), expected, rtol=0.02)
    grads = {}
    for fn, x in (
        (torch.relu, -3.0), (torch.relu, 2.0), (lambda v: F.leaky_relu(v, 0.01), -3.0),
        (torch.sigmoid, 0.0), (torch.tanh, 0.0), (torch.sigmoid, 10.0),
    ):  # fmt: skip
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        fn(t).backward()
        grads[len(grads)] = t.grad.item()
    np.testing.assert_allclose(list(grads.values()), list(sol.DERIVATIVES_AT.values()), rtol=2e-3)


def test_leaky_relu_and_grad_solution():
    x = np.concatenate([_rng().normal(0, 3, 200), [0.0, -0.0, 1e-300, -1e-300]])
    for slope in (0.01, 0.2):
        y, dy = sol.leaky_relu_and_grad(x, slope)
        t = torch.tensor(x, requires_grad=True)
        out = F.leaky_relu(t, slope)
        out.sum().backward()
        np.testing.assert_array_equal(y, out.detach().numpy())
        np.testing.assert_array_equal(dy, t.grad.numpy())


def test_log_softmax_solution():
    x = _rng().normal(0, 20, (30, 6))
    np.testing.assert_allclose(sol.log_softmax(x), special.log_softmax(x, axis=-1), rtol=1e-14)
    np.testing.assert_allclose(sol.log_softmax(x, axis=0), special.log_softmax(x, axis=0),
                               rtol=1e-14)  # fmt: skip
    with np.errstate(all="raise", under="ignore"):
        big = sol.log_softmax(np.array([1000.0, 1001.0, 1002.0]))
        gap = sol.log_softmax(np.array([0.0, -1000.0]))
    np.testing.assert_allclose(big, special.log_softmax([0.0, 1.0, 2.0]), rtol=1e-14)
    np.testing.assert_array_equal(gap, [0.0, -1000.0])


def test_dead_units_solution():
    rng = _rng()
    x = rng.normal(size=(64, 5))
    w = rng.normal(size=(40, 5))
    b = rng.normal(size=40) - 2.0  # some units dead
    b[:3] = -100.0  # certainly dead
    got = sol.dead_units(x, w, b)
    expected = np.array([all(x[i] @ w[j] + b[j] <= 0 for i in range(64)) for j in range(40)])
    np.testing.assert_array_equal(got, expected)
    assert got[:3].all() and not got.all()
    # dead = no gradient reaches the unit's weights
    lin = torch.nn.Linear(5, 40, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.copy_(torch.from_numpy(b))
    torch.relu(lin(torch.from_numpy(x))).sum().backward()
    no_grad = (lin.weight.grad.abs().sum(dim=1) == 0).numpy()
    np.testing.assert_array_equal(got, no_grad)


def test_softmax_rows_debug_exercise():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]])
    np.testing.assert_allclose(sol.softmax_rows(x), special.softmax(x, axis=1), rtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buggy = stubs.softmax_rows(x)
    assert not np.allclose(buggy, special.softmax(x, axis=1), equal_nan=False)  # still buggy
    assert "np.max(x)" in sol.EXERCISES[[e.kind for e in sol.EXERCISES].index("debug")].prompt


def test_temperature_for_entropy_solution():
    logits = np.array([2.0, 1.0, 0.5, -1.0])
    for target in (0.01, 0.5, 1.0, 1.38):
        t = sol.temperature_for_entropy(logits, target)
        assert scipy_entropy(special.softmax(logits / t)) == pytest.approx(target, rel=1e-9)
        root = optimize.brentq(
            lambda lt, h=target: scipy_entropy(special.softmax(logits / math.exp(lt))) - h,
            -10, 10, xtol=1e-14,
        )  # fmt: skip
        assert t == pytest.approx(math.exp(root), rel=1e-8)


def test_mean_subtraction_overflows_as_the_conceptual_answer_says():
    x = np.array([0.0, 2000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isinf(np.exp(x - x.mean())).any()
    assert np.isfinite(np.exp(x - x.max())).all()


def test_temperature_for_entropy_terminates_at_the_edges_and_rejects_the_impossible():
    logits = np.array([2.0, 1.0, 0.5, -1.0])
    # A target within rounding of log K or of 0: the bracket stops at |log T| ~ 700 and the
    # bisection after a bounded number of halvings (the old loops could spin forever).
    for target in (math.log(4) - 1e-15, 1e-300):
        t = sol.temperature_for_entropy(logits, target)
        assert math.isfinite(t) and t > 0
    for bad in (0.0, -1.0, math.log(4), 2.0):
        with pytest.raises(ValueError, match="target"):
            sol.temperature_for_entropy(logits, bad)
    with pytest.raises(ValueError, match="distinct logits"):
        sol.temperature_for_entropy(np.ones(3), 0.5)


def test_report_opening_and_notation(smoke):
    text = SPEC.report(smoke)
    opening = text.split("## ")[0]
    # The first chapter: nothing in its opening points at a chapter the reader has not seen.
    for word in ("gallery", "as shown", "showed"):
        assert word not in opening.lower()
    assert "five things" in opening and "*pre-activation*" in opening
    # Machine epsilon and the exploration rate are told apart; no bare epsilon is left.
    assert r"\varepsilon_{\mathrm{mach}}" in text and r"\varepsilon_{\mathrm{greedy}}" in text
    assert r"$\varepsilon$" not in text and r"\varepsilon =" not in text
    assert "[subnormal number](#term-subnormal)" in text
    # Inverse temperature is beta, not s (s is the noise sd elsewhere in the tutorial).
    assert r"\mathrm{softmax}(\beta x)" in text and "by $s$" not in text
    # The paired test and the t-interval link to the glossary and are not defined again here.
    assert text.index("[paired test](#term-paired)") < text.index("paired test, p < 0.05")
    assert "[95% interval](#term-t-interval)" in text
    assert "two-sample" not in text and "t-quantile" not in text


def test_report_uses_the_tutorials_notation(smoke):
    """One symbol, one meaning (actlab.report.notation): entropy is calligraphic H (H is the
    hat matrix), the policy is p (pi is 3.14...), depth is D (L is the loss), the logit gap is
    Delta and the shift is a word (c is the neuron's output bias, g a gradient)."""
    from actlab.report.notation import misplaced_symbols

    text = SPEC.report(smoke)
    assert misplaced_symbols(text, "numpy-basics") == []
    assert r"$\mathcal{H}(p) = -\sum_i p_i \ln p_i$" in text
    assert r"p(a \mid k)" in text and r"V^p" in text
    for old in (r"\pi(a", r"V^\pi", "W_L", "b_L", "$H(", "$c", "$g", "-g]", r"\sum_b"):
        assert old not in text, old
    assert r"W_{D+1} \cdots W_2 W_1" in text and r"$[0, -\Delta]$" in text
    for name, fig in SPEC.figures(smoke).items():
        labels = [
            t.get_text() for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)
        ]
        labels += [t.get_text() for ax in fig.axes for t in ax.texts]
        labels += [
            t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
        ]
        for label in labels:
            for old in ("$c$", "$g$", "g =", r"\pi", "$t$", "dead input"):
                assert old not in label, (name, label)


def test_report_links_terms_and_keeps_off_distinct_from_dead(smoke):
    text = SPEC.report(smoke)
    for key in ("off", "inactive", "dead", "seed", "paired", "t-interval", "subnormal"):
        assert f"](#term-{key})" in text, key
    # "off" is one input; dead is every input, and a dead unit "stays dead", never "stays off"
    assert "stays off" not in text and "off everywhere" not in text


def test_report_rl_heads_claims_are_hedged(smoke):
    text = SPEC.report(smoke)
    assert "Only a linear output can produce all of them" not in text
    assert "distributional" in text and "target" in text
    assert "logits are *not* Q-values" in text
    assert "cannot hold the raw Q-values" in text and "cannot hold a Q-value." not in text


def test_report_rl_heads_detail_is_an_optional_part(smoke):
    """The RL section keeps the choices and the bounded-head experiment in the main text; the
    Bellman equation, the policy table and the other Q-head designs sit in a marked optional
    part at its end."""
    text = SPEC.report(smoke)
    section = text.split("## Which activation where in RL networks")[1].split("## Exercises")[0]
    main, optional = section.split('<details markdown="1">')
    assert "<summary>Optional" in optional and optional.rstrip().endswith("</details>")
    bellman = r"$Q(k, \text{continue}) = 1 + \gamma V(k - 1)$"
    assert bellman not in main and bellman in optional
    assert "C51" in optional and "$V^p(k)$" in optional
    assert "cannot hold the raw Q-values" in main and "logits are *not* Q-values" in main
    assert len(main) < 4500, len(main)


def test_figures_keep_coinciding_curves_visible(smoke):
    figs = SPEC.figures(smoke)
    dead = figs["dead_relu"].axes[0]
    width = {ln.get_label(): ln.get_linewidth() for ln in dead.lines}
    # ReLU and LeakyReLU coincide for x > 0: ReLU is drawn wider, underneath.
    assert width["ReLU"] > width["LeakyReLU"] and width["ReLU'"] > width["LeakyReLU'"]
    overflow, underflow = figs["softmax_overflow"].axes[:2]
    for ax, exact in ((overflow, "stable, float64"), (underflow, "log_softmax")):
        lines = {ln.get_label(): ln for ln in ax.lines}
        naive = [ln for label, ln in lines.items() if "naive" in label or "log(softmax)" in label]
        assert len(naive) == 2
        for ln in naive:
            assert ln.get_zorder() > lines[exact].get_zorder()
            assert ln.get_linewidth() < lines[exact].get_linewidth()


def test_rl_heads_figure_keeps_coinciding_fits_visible(smoke):
    """A bounded head pins continue and wait to the top of its range: the figure offsets their
    markers sideways and says in the panel that they coincide (the fits recomputed here from
    the stored predictions)."""
    figs = SPEC.figures(smoke)
    heads = list(smoke.coords["q_pred/head"])
    actions = list(smoke.coords["q_targets/action"])
    mean = smoke.arrays["q_pred"].mean(axis=1)  # (head, state, action)
    i, j = actions.index("continue"), actions.index("wait")
    tanh = mean[heads.index("tanh")]
    assert np.max(np.abs(tanh[:, i] - tanh[:, j])) < 0.05  # they do coincide
    ax = figs["rl_heads"].axes[heads.index("tanh")]
    fits = [ln for ln in ax.lines if ln.get_marker() in ("o", "s") and ln.get_mfc() == "white"]
    assert len(fits) == 2
    xs = [np.asarray(ln.get_xdata(), dtype=float) for ln in fits]
    assert np.min(np.abs(xs[0] - xs[1])) >= 0.3  # side by side, not on top of each other
    for ln in fits:
        assert np.allclose(ln.get_ydata(), tanh[:, i], atol=0.05)
    assert any("continue and wait fits coincide" in t.get_text() for t in ax.texts)
    linear = figs["rl_heads"].axes[heads.index("identity")]
    assert not any("coincide" in t.get_text() for t in linear.texts)


# --------------------------------------------------------------------------------------------
# Review of issue #12: the bounded heads' in-range targets, tiny errors, exact agreement


def test_inside_targets_recounted_from_the_predictions(smoke):
    """Per bounded head: the targets strictly inside its range, the one missed most (mean
    prediction over seeds), the part of the MSE they make, and the head's slope there against
    the closed forms tanh' = 1 - tanh^2 and sigmoid' = sigmoid (1 - sigmoid) of its output."""
    q = smoke.arrays["q_targets"]
    for i, f in enumerate(smoke.summary["heads"]["fits"]):
        if not f["bounded"]:
            assert f["inside"] == q.size and "inside_miss" not in f
            continue
        lo, hi = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}[f["head"]]
        pred = smoke.arrays["q_pred"][i]  # (seed, state, action)
        inside = (q > lo) & (q < hi)
        assert (f["inside"], f["n_targets"]) == (int(inside.sum()), q.size)
        miss = np.abs(pred.mean(0) - q)[inside]
        assert f["inside_miss"] == pytest.approx(miss.max(), rel=1e-12)
        assert f["inside_target"] == q[inside][np.argmax(miss)]
        excess = np.mean([((p - q)[inside] ** 2).sum() / q.size for p in pred])
        assert f["inside_excess"] == pytest.approx(excess, rel=1e-9)
        k, a = f["inside_state"] - 1, parts.ACTIONS.index(f["inside_action"])
        y = pred[:, k, a]
        slope = (1 - y**2) if f["head"] == "tanh" else y * (1 - y)
        assert f["inside_slope"] == pytest.approx(slope.mean(), rel=0.02, abs=1e-7)
        band = abs(y.mean()) > 0.99 if f["head"] == "tanh" else not 0.01 <= y.mean() <= 0.99
        assert f["inside_saturated"] == band


def _head(**kw):
    base = {
        "inside": 1, "n_targets": 30, "inside_miss": 0.1, "inside_action": "wait",
        "inside_state": 1, "inside_target": 0.9, "inside_pred": 0.99995,
        "inside_slope": 9e-5, "inside_saturated": True, "inside_excess": 3.3e-4,
    }  # fmt: skip
    return {**base, **kw}


def test_inside_sentence_says_fitted_only_when_the_head_fits_them():
    """The old text said every bounded head "fits the targets inside its range"; the default
    run's tanh head outputs 0.99995 for the one target inside (0.9). The sentence follows the
    numbers both ways, and says saturated (linked once) only when the output is in the band."""
    from actlab.experiments.numpy_basics import report as nbr

    missed = nbr.inside_sentence(_head(), 3.6e-4)
    assert "only 1 of the 30 targets lies inside its range, and it does not fit it" in missed
    assert "*wait* in state 1 (target 0.9), it outputs 0.99995" in missed
    assert "[saturated](#term-saturated)" in missed and "3.3 \\times 10^{-4}$ of the" in missed
    assert "it fits the" not in missed
    unlinked = nbr.inside_sentence(_head(), 3.6e-4, link=False)
    assert "is saturated" in unlinked and "#term-saturated" not in unlinked
    not_band = nbr.inside_sentence(_head(inside_saturated=False), 3.6e-4)
    assert "saturated" not in not_band and "slope is only" in not_band
    fitted = nbr.inside_sentence(_head(inside=2, inside_miss=0.004), 3.6e-4)
    assert fitted.startswith("it fits the 2 of the 30 targets that lie inside its range")
    assert "does not fit" not in fitted
    assert nbr.inside_sentence(_head(inside_miss=nbr.FIT_TOL), 1e-4).startswith("it fits")
    none = nbr.inside_sentence(_head(inside=0), 1e-4)
    assert none.startswith("none of the 30 targets lies inside its range")
    several = nbr.inside_sentence(_head(inside=3), 1e-4)
    assert "3 of the 30 targets lie inside" in several and "the one it misses most" in several


def test_report_heads_sentence_is_the_runs(smoke):
    """The report's sentence for each bounded head is the one its numbers give; *saturated* is
    linked at most once."""
    from actlab.experiments.numpy_basics import report as nbr

    text = SPEC.report(smoke)
    for f in smoke.summary["heads"]["fits"][1:]:
        gap = f["final_mse"]["mean"] - f["floor"]
        assert nbr.inside_sentence(f, gap, link=False).split("saturated")[-1] in text
        assert ("does not fit" in nbr.inside_sentence(f, gap)) == (f["inside_miss"] > 0.01)
    assert text.count("](#term-saturated)") <= 1
    assert "it fits the targets inside its range and stays" not in text
    linear = smoke.summary["heads"]["fits"][0]["final_mse"]
    assert linear["lo"] >= 0.0  # an MSE's interval stays at or above 0


def test_tiny_errors_are_shown_below_a_threshold_and_explained(smoke):
    """A non-zero error far below one epsilon (2.2e-44 in the default run: a one-ulp difference
    at sigmoid(-100)) is shown as '< 0.01' and explained relative to the value (max_rel_diff
    over epsilon); a comparison with disagreeing inf/NaN is not counted as exact."""
    from actlab.experiments.numpy_basics import report as nbr

    assert nbr.err_cell(2.2e-44) == "< 0.01" and nbr.err_cell(0.0) == "0"
    assert nbr.err_cell(0.25) == "0.25" and nbr.err_cell(0.01) == "0.01"
    checks = [
        {"max_err_eps": 0.0, "nonfinite_mismatches": 0},
        {"max_err_eps": 0.0, "nonfinite_mismatches": 2},
        {"max_err_eps": 1e-40, "nonfinite_mismatches": 0},
    ]
    assert nbr.exact_count(checks) == 1
    s = smoke.summary
    text = SPEC.report(smoke)
    table = text.split("| function | implementation vs reference |")[1].split("\n\n")[0]
    assert "10^{-4" not in table and "10^{-2" not in table  # no subnormal-looking cells
    tiny = [c for c in s["checks"] if 0 < c["max_err_eps"] < 0.01]
    assert tiny, "the smoke run has tiny differences (sigmoid at -100)"
    sentence = nbr.tiny_sentence(s)
    assert sentence in text
    for c in tiny:
        rel = c["max_rel_diff"] / np.finfo(c["dtype"]).eps
        assert f"{num(rel, 2)} $\\varepsilon_{{\\mathrm{{mach}}}}$ of the value" in sentence
    for dtype in ("float64", "float32"):
        ours = [c for c in s["checks"] if c["implementation"] == "numpy" and c["dtype"] == dtype]
        exact = sum(c["max_err_eps"] == 0 and c["nonfinite_mismatches"] == 0 for c in ours)
        assert f"infinities and NaNs included, in {exact} of {len(ours)} comparisons" in text
    assert nbr.tiny_sentence({"checks": [c for c in s["checks"] if c not in tiny]}) == ""


def test_check_figure_marks_tiny_differences(smoke):
    """The error figure marks a non-zero error too small for a bar (a triangle), apart from
    exact agreement (an open circle)."""
    fig = SPEC.figures(smoke)["formulas"]
    markers = [line.get_marker() for ax in fig.axes for line in ax.get_lines()]
    n_tiny = sum(0 < c["max_err_eps"] < 0.01 for c in smoke.summary["checks"])
    assert markers.count("^") == n_tiny
    fig.clear()


def test_coarse_grid_note_explains_equal_first_points(smoke):
    """float32's 'wrong from 87.5, NaN from 87.5' looked like a contradiction of float64's
    wrong-then-NaN: the note says the grid's step is wider than the thresholds' gap, and only
    then (hand-set values both ways; the gap is log of the sum over the largest term, NumPy)."""
    from actlab.experiments.numpy_basics import report as nbr

    x = np.array([0.0, 1.0, 2.0])
    big = np.log(np.finfo(np.float32).max)
    pred = {"sum": big - np.log(np.exp(x).sum()), "max": big - x.max()}
    note = nbr.coarse_grid_note(87.5, 87.5, pred, 2.5)
    gap = np.log(np.exp(x).sum()) - x.max()
    assert (
        note == f": the same grid point, since the step 2.5 is wider than the {num(gap, 2)} "
        "between the two thresholds"
    )
    assert nbr.coarse_grid_note(85.0, 87.5, pred, 2.5) == ""  # the grid told them apart
    assert nbr.coarse_grid_note(87.5, 87.5, pred, 0.1) == ""  # a fine grid: no excuse
    assert nbr.coarse_grid_note(None, 87.5, pred, 2.5) == ""
    sm = smoke.summary["softmax"]
    text = SPEC.report(smoke)
    expected = nbr.coarse_grid_note(
        sm["first_wrong_offset"]["float32"], sm["first_nan_offset"]["float32"],
        sm["predicted_offset"]["float32"], sm["offset_step"],
    )  # fmt: skip
    assert expected + ". The stable formula" in text
