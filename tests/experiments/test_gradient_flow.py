"""The gradient-flow experiment against independent references: per-example backward signals and
weight gradients by autograd on plain nn.Sequential networks with the same weights, slopes by
numpy.polyfit, closed forms of the mean field for ReLU, hand-set summaries for every verdict."""

import math

import numpy as np
import pytest
import torch
from reference import plain_sequential
from torch import nn

from actlab import theory
from actlab.experiments.gradient_flow import SPEC, solutions
from actlab.experiments.gradient_flow import exercises as stubs
from actlab.experiments.gradient_flow import experiment as X
from actlab.experiments.gradient_flow import measure as M
from actlab.experiments.gradient_flow import report as R
from actlab.models import EnsembleMLP
from actlab.report.exercises import exercises_markdown

TORCH_ACT = {
    "identity": nn.Identity,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "selu": nn.SELU,
    "silu": nn.SiLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
}


@pytest.fixture(scope="module")
def results():
    return X.run(X.SMOKE)


# ---------------------------------------------------------------------- the measurement
def _autograd_profile(net: nn.Sequential, x: torch.Tensor, r: torch.Tensor):
    """The three quantities and q per layer of a plain network, by autograd, example by example
    (natural logs; q plain)."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    n = x.shape[0]
    deltas, per_example = [], []
    for b in range(n):
        zs, h = [], x[b : b + 1]
        for module in net:
            h = module(h)
            if isinstance(module, nn.Linear) and module is not linears[-1]:
                h.retain_grad()
                zs.append(h)
        net.zero_grad()
        (h @ r).sum().backward()  # one example's loss r . f(x_b)
        deltas.append(torch.stack([z.grad[0] for z in zs]))  # (D, N)
        per_example.append(torch.stack([lin.weight.grad.norm() for lin in linears]))
    delta = torch.stack(deltas)  # (n, D, N)
    s = delta.square().mean(dim=(0, 2)).sqrt()
    pe = torch.stack(per_example).square().mean(0).sqrt()
    net.zero_grad()
    (net(x) @ r).mean().backward()  # the full batch: the mean over examples
    fb = torch.stack([lin.weight.grad.norm() for lin in linears])
    qs, h = [], x
    with torch.no_grad():
        for module in net[:-1]:
            h = module(h)
            if isinstance(module, nn.Linear):
                qs.append(h.square().mean())
    return s.log(), pe.log(), fb.log(), torch.stack(qs)


@pytest.mark.parametrize("acts", [("tanh",), ("relu", "tanh", "leaky_relu", "gelu", "sigmoid")])
def test_backward_profile_equals_autograd_on_plain_networks(acts):
    n_in, width, depth, n_out, seeds = 5, 7, 4, 3, [11, 12]
    sizes = [n_in] + [width] * depth + [n_out]
    model = EnsembleMLP(
        n_in, [width] * depth, n_out, [a for a in acts for _ in seeds], seeds * len(acts)
    )
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, n_in, generator=gen)
    r = torch.randn(len(seeds), n_out, generator=gen)
    readout = r.repeat(len(acts), 1)
    prof = M.backward_profile(model, x, readout)
    m = 0
    for act in acts:
        for k, seed in enumerate(seeds):
            net = plain_sequential(sizes, seed, TORCH_ACT[act])
            s, pe, fb, q = _autograd_profile(net, x, r[k])
            np.testing.assert_allclose(prof["delta"][m], s.numpy(), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(prof["weight_per_example"][m], pe.numpy(), atol=1e-5)
            np.testing.assert_allclose(prof["weight_full_batch"][m], fb.numpy(), atol=1e-5)
            np.testing.assert_allclose(prof["q"][m], q.numpy(), rtol=1e-5)
            m += 1


def test_backward_profile_does_not_underflow_where_float32_would():
    # sigmoid with the default init loses ~1.95 per layer: after 60 layers the signal is e^-117,
    # far below float32's range; the renormalised pass still gets the slope (the analytic
    # backward of a float64 network is the reference).
    kw = dict(activations="sigmoid", seeds=[5])
    m32 = EnsembleMLP(4, [16] * 60, 2, **kw)
    m64 = EnsembleMLP(4, [16] * 60, 2, dtype=torch.float64, **kw)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    r = torch.ones(1, 2)
    p32 = M.backward_profile(m32, x, r)["delta"]
    p64 = M.backward_profile(m64, x.double(), r.double())["delta"]
    assert np.isfinite(p32).all() and p32[0, 0] < -100
    np.testing.assert_allclose(p32, p64, atol=1e-3)


def test_slopes_against_numpy_polyfit():
    rng = np.random.default_rng(0)
    layers = np.arange(1, 13)
    logs = rng.normal(size=(5, 12)) + 0.3 * layers
    want = np.array([np.polyfit(layers, row, 1)[0] for row in logs])
    np.testing.assert_allclose(M.slopes(logs, layers), want, rtol=1e-12)
    np.testing.assert_allclose(M.backward_slopes(logs, layers), -want, rtol=1e-12)
    logs[2, 3] = -np.inf  # a layer that is exactly 0: no slope
    assert np.isnan(M.slopes(logs, layers)[2]) and np.isfinite(M.slopes(logs, layers)[[0, 1]]).all()


@pytest.mark.parametrize("sigma_w2", [1.0, 2.0, 3.0])
def test_relu_prediction_against_closed_forms(sigma_w2):
    # ReLU without biases: q^{l+1} = sigma_w^2/2 q^l, E[phi'^2] = 1/2, so the backward mean
    # square gains sigma_w^2/2 per layer and the per-example weight gradient is level.
    D, N, n_in, n_out = 6, 50, 10, 4
    sizes = (n_in, *[N] * D, n_out)
    variances = [(sigma_w2, 0.0)] * (D + 1)
    p = M.predicted_profile("relu", variances, sizes, x_ms=0.7)
    q1 = sigma_w2 * 0.7
    np.testing.assert_allclose(p["q"], q1 * (sigma_w2 / 2) ** np.arange(D), rtol=1e-9)
    np.testing.assert_allclose(np.diff(p["delta"]), -0.5 * math.log(sigma_w2 / 2), atol=1e-9)
    # last hidden layer: sigma_w^2 * out/N * 1/2, times the readout's unit mean square
    assert p["delta"][-1] == pytest.approx(0.5 * math.log(sigma_w2 * n_out / N / 2), abs=1e-9)
    steps = np.diff(p["weight_per_example"][:D])
    # layer 1's input x has n_in entries, not N: ||h_0||^2 = n_in * mean(x^2)
    assert steps[0] == pytest.approx(0.5 * math.log(N / n_in), abs=1e-9)
    np.testing.assert_allclose(steps[1:], 0.0, atol=1e-9)


def test_identity_prediction_with_different_variances_per_layer():
    # identity: E[phi'^2] = 1 and E[phi^2] = q, so q^{l+1} = sw(l+1) q^l + sb(l+1) and the
    # backward mean square gains sw of the layer above; written out layer by layer.
    variances = [(0.5, 0.1), (2.0, 0.2), (3.0, 0.0), (1.5, 0.3), (0.7, 0.05)]
    sizes = (6, 20, 20, 20, 20, 3)
    p = M.predicted_profile("identity", variances, sizes, x_ms=0.8)
    q = [0.5 * 0.8 + 0.1]
    for sw, sb in variances[1:4]:
        q.append(sw * q[-1] + sb)
    np.testing.assert_allclose(p["q"], q, rtol=1e-10)
    ms = [0.7 * 3 / 20]  # last hidden layer: sw(out) * out / N
    for sw, _ in reversed(variances[1:4]):
        ms.insert(0, ms[0] * sw)
    np.testing.assert_allclose(p["delta"], 0.5 * np.log(ms), rtol=1e-10)
    h2 = [6 * 0.8] + [20 * v for v in q]  # ||h_{l-1}||^2: the input, then N q^l
    d2 = [20 * v for v in ms] + [3.0]  # ||delta_l||^2, the output's readout last
    np.testing.assert_allclose(p["weight_per_example"], 0.5 * np.log(np.multiply(h2, d2)))


def test_layer_variances_follow_each_layers_fans():
    v = M.layer_variances("xavier", (3, 10, 10, 2))
    assert v[0] == pytest.approx((2 * 3 / 13, 0.0))
    assert v[1] == pytest.approx((1.0, 0.0))
    assert v[2] == pytest.approx((2 * 10 / 12, 0.0))
    assert M.layer_variances("torch", (3, 10, 1))[0] == pytest.approx((1 / 3, 1 / 9))


# ---------------------------------------------------------------------- verdicts
@pytest.mark.parametrize(
    "lo,hi,verdict",
    [
        (-0.9, -0.5, "vanishing"),
        (0.5, 0.9, "exploding"),
        (-0.05, 0.05, "stable"),
        (-0.2, 0.0, "undecided"),  # straddles -tol
        (0.05, 0.3, "undecided"),
        (math.nan, 0.1, "undecided"),
    ],
)
def test_phase_verdict_from_the_whole_interval(lo, hi, verdict):
    assert M.phase_verdict({"lo": lo, "hi": hi}, tol=0.1) == verdict


def test_tolerance_is_a_factor_over_the_depth():
    assert M.tolerance(21, 10.0) == pytest.approx(math.log(10) / 20)
    assert M.theory_verdict(-0.2, 0.1) == "vanishing"
    assert M.theory_verdict(0.0, 0.1) == "stable"


@pytest.mark.parametrize(
    "stat,pred,verdict",
    [
        ({"mean": -0.55, "lo": -0.56, "hi": -0.54}, -0.55, "agrees"),
        ({"mean": -0.55, "lo": -0.60, "hi": -0.50}, -0.55, "agrees"),
        ({"mean": -0.55, "lo": -0.62, "hi": -0.50}, -0.55, "unresolved"),
        ({"mean": -0.30, "lo": -0.32, "hi": -0.28}, -0.55, "differs"),
        ({"mean": 0.30, "lo": 0.28, "hi": 0.32}, 0.20, "differs"),
        ({"mean": 0.01, "lo": -0.1, "hi": 0.1}, 0.0, "unresolved"),
        ({"mean": 0.0, "lo": -0.005, "hi": 0.005}, 0.0, "agrees"),  # the floor near 0
        ({"mean": 0.06, "lo": 0.05, "hi": 0.07}, 0.0, "differs"),
    ],
)
def test_agreement_of_a_measured_with_a_predicted_slope(stat, pred, verdict):
    got = M.agreement(stat, pred, tol=0.1, floor=0.01)
    assert got["verdict"] == verdict
    assert got["off"] == pytest.approx(stat["mean"] - pred)
    if pred:
        assert got["ratio"] == pytest.approx(stat["mean"] / pred)
        assert got["ratio_lo"] <= got["ratio"] <= got["ratio_hi"]
    else:
        assert math.isnan(got["ratio"])


# ---------------------------------------------------------------------- report sentences
def _ci(mean, lo, hi):
    return {"mean": mean, "lo": lo, "hi": hi, "n": 10, "sd": 0.1}


def test_agreement_sentence_both_ways():
    def say(stat, pred):
        return R.agreement_sentence("x", pred, M.agreement(stat, pred, 0.1, 0.01), 0.1, 0.01)

    yes = say(_ci(-0.55, -0.56, -0.54), -0.55)
    assert "agrees to within 10% (plus 0.01 per layer)" in yes and "ratio is 1 [" in yes
    no = say(_ci(-0.3, -0.32, -0.28), -0.55)
    assert "differs, by 45%" in no and "agrees" not in no
    maybe = say(_ci(-0.55, -0.7, -0.4), -0.55)
    assert "neither confirms nor rules out" in maybe
    near_zero = say(_ci(0.06, 0.05, 0.07), 0.0)
    assert (
        "the difference is 0.06 per layer" in near_zero
        and "differs, by 0.06 per layer" in near_zero
    )


def _row(diff, **kw):
    row = {
        "activation": "relu",
        "init": "he",
        "sigma_w2": 2.0,
        "sigma_b2": 0.0,
        "half_log_chi1": 0.0,
        "slope_delta": _ci(0.0, -0.01, 0.01),
        "slope_weight_per_example": _ci(0.0, -0.01, 0.01),
        "slope_weight_full_batch": _ci(-0.1, -0.12, -0.08),
        "full_minus_per_example": diff,
    }
    row.update(kw)
    return row


def test_full_batch_sentence_three_ways():
    faster = R.full_batch_sentence(_row(_ci(-0.1, -0.12, -0.08)))
    assert "loses 0.1 [0.08, 0.12] more per layer" in faster
    slower = R.full_batch_sentence(_row(_ci(0.1, 0.08, 0.12)))
    assert "less per layer" in slower
    same = R.full_batch_sentence(_row(_ci(0.0, -0.02, 0.02)))
    assert "within noise" in same and "more" not in same
    short = R.full_batch_sentence(_row(_ci(-0.1, -0.12, -0.08)), short=True)
    assert short.startswith("the full-batch weight gradient by -0.1 [-0.12, -0.08]: the full")
    assert "per-example one" not in short


def test_level_sentences_both_ways():
    level = R.level_sentences([_row(_ci(0, 0, 0))], tol=0.05)
    assert len(level) == 2 and "stays level" in level[0]
    said = R.level_sentences([_row(_ci(0, 0, 0))], tol=0.047, factor=10.0, steps=49)[0]
    assert "within ±0.047 per layer, less than a factor of 10 over the 49 steps" in said
    tilted = _row(_ci(0, 0, 0), slope_weight_per_example=_ci(-0.3, -0.35, -0.25))
    assert "does not stay level" in R.level_sentences([tilted], tol=0.05)[0]
    # rows with biases or other activations say nothing
    assert R.level_sentences([_row(_ci(0, 0, 0), sigma_b2=0.1)], tol=0.05) == []


def _cell(verdict, pred, slope=0.0):
    return {
        "sigma_w2": 4.0,
        "sigma_b2": 0.0,
        "slope": _ci(slope, slope - 0.01, slope + 0.01),
        "pred_slope": 0.0,
        "verdict": verdict,
        "pred_verdict": pred,
    }


def test_phase_sentence_names_exploding_cells_and_mismatches():
    cells = [_cell("exploding", "exploding", 0.15), _cell("stable", "stable")]
    phase = {
        "cells": cells,
        "counts": {"vanishing": 0, "stable": 1, "exploding": 1, "undecided": 0},
        "n_decided": 2,
        "n_same": 2,
    }
    text = R.phase_sentence(phase)
    assert "1 exploding" in text and "explodes (grows towards the input) at" in text
    assert "2 carry the verdict" in text and "listed below" not in text
    phase.update(cells=[_cell("stable", "vanishing")], n_decided=1, n_same=0)
    phase["counts"] = {"vanishing": 0, "stable": 1, "exploding": 0, "undecided": 0}
    text = R.phase_sentence(phase)
    assert "No cell of this grid explodes" in text and "listed below" in text


def test_training_sentence_both_ways():
    row = {
        "activation": "tanh",
        "slope_start": _ci(-0.5, -0.55, -0.45),
        "slope_end": _ci(0.1, 0.05, 0.15),
        "differs": True,
    }
    assert "flatter after training" in R.training_sentence(row)
    row["slope_end"] = _ci(-0.9, -0.95, -0.85)
    assert "steeper after training" in R.training_sentence(row)
    row["differs"] = False
    assert R.training_sentence(row).endswith("(within noise).")


def _fw(where64, where256, differs, depth=50):
    def item(w, where, slope):
        return {
            "width": w,
            "slope": _ci(slope, slope - 0.005, slope + 0.005),
            "times_width": _ci(slope * w, (slope - 0.005) * w, (slope + 0.005) * w),
            "bound": -5 / (4 * w),
            "where": where,
        }

    return {
        "depth": depth,
        "widths": [item(64, where64, -0.02), item(256, where256, -0.004)],
        "welch_differs": differs,
    }


def test_finite_width_sentence_both_ways():
    text = R.finite_width_sentences(_fw("inside", "overlaps", False))[0]
    assert "N = 64: -0.02 [-0.025, -0.015] against [-0.0195, 0], the whole interval lies in" in text
    assert "N = 256: -0.004 [-0.009, 0.001] against [-0.00488, 0], the interval overlaps" in text
    assert "-1.28 [-1.6, -0.96] at N = 64" in text and "-1.02 [-2.3, 0.256] at N = 256" in text
    assert "within noise of each other (Welch's test)" in text and "separates" not in text
    text = R.finite_width_sentences(_fw("outside", "inside", True))[0]
    assert "lies outside it: finite width does not explain this slope" in text
    assert "Welch's test separates them" in text and "within noise" not in text
    assert R.finite_width_sentences({"widths": []}) == []  # no ReLU under He: nothing to say


@pytest.mark.parametrize(
    "lo,hi,where",
    [
        (-0.01, -0.005, "inside"),
        (-0.03, -0.01, "overlaps"),
        (-0.05, -0.03, "outside"),
        (0.001, 0.01, "outside"),
        (-0.03, 0.01, "overlaps"),
        (math.nan, 0.0, "unresolved"),
    ],
)
def test_within_range_three_ways(lo, hi, where):
    assert M.within_range({"lo": lo, "hi": hi}, -0.0195, 0.0) == where


def _relu_he_backward_slopes(width, depth, n_examples, members, seed=0):
    """Per member the slope towards the input of log RMS of the backward signal of plain
    ReLU networks under He initialisation (float64, zero biases), by explicit matrix products."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_examples, 16, dtype=torch.float64, generator=gen)
    h, fan, ws, masks = x.expand(members, -1, -1), 16, [], []
    for _ in range(depth):
        w = torch.randn(members, width, fan, dtype=torch.float64, generator=gen)
        w *= math.sqrt(2.0 / fan)
        z = h @ w.transpose(1, 2)
        ws.append(w)
        masks.append((z > 0).double())
        h, fan = torch.relu(z), width
    r = torch.randn(members, 1, width, dtype=torch.float64, generator=gen)
    d = r.expand(-1, n_examples, -1) * masks[-1]
    logs = [d.square().mean(dim=(1, 2)).sqrt().log()]
    for layer in range(depth - 1, 0, -1):
        d = (d @ ws[layer]) * masks[layer - 1]
        logs.append(d.square().mean(dim=(1, 2)).sqrt().log())
    logs = torch.stack(logs[::-1], dim=1).numpy()  # layer 1..D
    layers = np.arange(1, depth + 1)
    return np.array([-np.polyfit(layers, row, 1)[0] for row in logs])


def test_relu_he_finite_width_drift_against_plain_networks():
    # the factor's variance: 2^2 E[relu(g)^4] - 1 = 4 * 3/2 - 1 (E[g^4] = 3, half of it)
    assert X.RELU_FACTOR_VARIANCE == pytest.approx(4 * 3 / 2 - 1)
    width = 48
    bound = M.finite_width_bound(width, X.RELU_FACTOR_VARIANCE)
    assert bound == pytest.approx(-5 / (4 * width))
    one = _relu_he_backward_slopes(width, 30, 1, 400)
    se = one.std(ddof=1) / math.sqrt(one.size)
    assert abs(one.mean() - bound) < 4 * se + 0.1 * abs(bound)  # one example: the bound
    many = _relu_he_backward_slopes(width, 30, 16, 400, seed=1)
    se = many.std(ddof=1) / math.sqrt(many.size)
    assert bound - 4 * se < many.mean() < -4 * se  # averaged over examples: between it and 0


def test_finite_width_summary_from_the_arrays(results):
    cfg = X.SMOKE
    fw = results.summary["finite_width"]
    d = max(cfg.depths)
    i, a = cfg.inits.index("he"), cfg.activations.index("relu")
    assert fw["depth"] == d and [it["width"] for it in fw["widths"]] == sorted(cfg.widths)
    for it in fw["widths"]:
        w = it["width"]
        logs = results.arrays[f"delta_D{d}_N{w}"][i, a]
        per_seed = [-np.polyfit(np.arange(1, d + 1), row, 1)[0] for row in logs]
        assert it["times_width"]["mean"] == pytest.approx(w * np.mean(per_seed), rel=1e-9)
        assert it["slope"]["mean"] == pytest.approx(np.mean(per_seed), rel=1e-9)
        assert it["bound"] == pytest.approx(-5 / (4 * w))
        assert it["where"] == M.within_range(it["slope"], it["bound"], 0.0)


@pytest.mark.parametrize(
    "act,sw,sb,q,want",
    [("relu", 2.0, 0.0, 0.7, 1.0), ("relu", 1.0, 0.3, 2.0, 0.5), ("identity", 1.5, 0.1, 0.4, 1.5)],
)
def test_length_map_slope_against_closed_forms(act, sw, sb, q, want):
    # ReLU: q' = sigma_w^2 q / 2 + sigma_b^2; identity: q' = sigma_w^2 q + sigma_b^2
    assert M.length_map_slope(act, q, sw, sb) == pytest.approx(want, rel=1e-6)


def _q_row(gap, slope):
    return {
        "activation": "gelu",
        "init": "he",
        "q_max_rel_gap": gap,
        "q_gap_layer": 48,
        "q_seed_spread": 7.2,
        "q_map_slope_first": slope,
    }


def test_q_gap_sentence_both_ways():
    text = R.q_gap_sentence([_q_row(158.55, 1.0), _q_row(0.02, 0.5)])
    assert "2% in the best case and a factor of 160 in the worst (gelu, He" in text
    assert "its slope at the first layer's $q^l$ is 1" in text and "random walk" in text
    text = R.q_gap_sentence([_q_row(0.02, 1.0), _q_row(0.5, 0.6)])
    assert "50% in the worst" in text and "random walk" not in text  # the worst one decides
    assert "each layer of finite width adds its own random factor" in text


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_constant_sentence_every_some_none():
    def share(k, n):
        lo, hi = _wilson(k, n)
        return {"mean": k / n, "lo": lo, "hi": hi, "k": k, "n": n}

    rows = [
        {"activation": "gelu", "at_constant": 3, "at_constant_ci": share(3, 3)},
        {"activation": "relu", "at_constant": 1, "at_constant_ci": share(1, 3)},
    ]
    tr = {"rows": rows, "seeds": 3, "steps": 200, "constant_loss": 0.5, "constant_tol": 0.01}
    text = R.constant_sentence(tr)
    assert "Every initialisation of gelu (3 of 3 each; [Wilson interval]" in text
    assert "44% to 100%) ends within 1%" in text
    assert "relu (1 of 3; 33% [6%, 79%])" in text
    tr["rows"] = [{"activation": "relu", "at_constant": 0}]
    text = R.constant_sentence(tr)
    assert "No initialisation ends within 1%" in text and "Every" not in text


# ---------------------------------------------------------------------- the run
def test_smoke_run_is_complete(results):
    cfg = X.SMOKE
    s = results.summary
    n_cases = len(cfg.depths) * len(cfg.widths) * len(cfg.inits) * len(cfg.activations)
    assert len(s["table"]) == n_cases
    for d in cfg.depths:
        for w in cfg.widths:
            shape = (len(cfg.inits), len(cfg.activations), cfg.seeds, d)
            assert results.arrays[f"delta_D{d}_N{w}"].shape == shape
            assert results.arrays[f"weight_full_batch_D{d}_N{w}"].shape[-1] == d + 1
            assert np.isfinite(results.arrays[f"delta_D{d}_N{w}"]).all()
    assert [r["activation"] for r in s["headline"]["rows"]] == ["tanh", "relu"]
    assert len(s["phase"]["cells"]) == len(cfg.phase_sigma_w2) * len(cfg.phase_sigma_b2)
    assert sum(s["phase"]["counts"].values()) == len(s["phase"]["cells"])
    figs = SPEC.figures(results)
    text = SPEC.report(results)
    for name in figs:
        assert f"figures/{name}.png" in text
    assert "nan" not in text.lower().replace("nan(", "")


def test_summary_slopes_are_polyfits_of_the_arrays(results):
    row = results.summary["headline"]["rows"][1]  # relu
    d, w = row["depth"], row["width"]
    i = X.SMOKE.inits.index(row["init"])
    a = X.SMOKE.activations.index("relu")
    logs = results.arrays[f"delta_D{d}_N{w}"][i, a]
    per_seed = [-np.polyfit(np.arange(1, d + 1), seed_logs, 1)[0] for seed_logs in logs]
    assert row["slope_delta"]["mean"] == pytest.approx(np.mean(per_seed), rel=1e-10)
    assert row["half_log_chi1"] == pytest.approx(0.5 * math.log(1 / 6), rel=1e-9)


def test_phase_members_are_mean_field_networks_of_their_cell(results):
    cfg = X.SMOKE
    data = X.make_inputs(cfg)
    i, j = 2, 1  # sigma_w^2 = 4, sigma_b^2 = 0.1
    sw, sb = cfg.phase_sigma_w2[i], cfg.phase_sigma_b2[j]
    for s in range(cfg.phase_seeds):
        model = EnsembleMLP(
            cfg.n_in,
            [cfg.phase_width] * cfg.phase_depth,
            cfg.n_out,
            "tanh",
            [X.init_seed(cfg, s)],
            init="mean_field",
            sigma_w2=sw,
            sigma_b2=sb,
        )
        want = M.backward_profile(model, data["x"], data["readout"][s : s + 1])["delta"][0]
        np.testing.assert_allclose(results.arrays["phase_delta"][i, j, s], want, atol=1e-4)


def test_splitting_into_smaller_ensembles_changes_nothing(results, monkeypatch):
    cfg = X.SMOKE
    monkeypatch.setattr(X, "MAX_FLOATS", 1)  # one cell / one activation per ensemble
    assert len(X.phase_groups(cfg)) == len(X.phase_cells(cfg))
    assert X.activation_groups(cfg, 8, 16) == [(a,) for a in cfg.activations]
    split = X.run(cfg)
    for name in ("phase_delta", "delta_D8_N16", "weight_full_batch_D4_N16"):
        np.testing.assert_allclose(split.arrays[name], results.arrays[name], rtol=1e-5, atol=1e-5)


def test_training_records_the_autograd_gradient_at_the_first_step(results):
    cfg = X.SMOKE
    data = X.make_inputs(cfg)
    sizes = [cfg.n_in] + [cfg.train_width] * cfg.train_depth + [1]
    for a, act in enumerate(cfg.activations):
        for s in range(cfg.train_seeds):
            net = plain_sequential(sizes, X.init_seed(cfg, s), TORCH_ACT[act])
            loss = (net(data["x_train"]) - data["y_train"]).square().mean()
            loss.backward()
            norms = [m.weight.grad.norm().log().item() for m in net if isinstance(m, nn.Linear)]
            got = results.arrays["train_grad"][a, s, 0]
            np.testing.assert_allclose(got, norms, atol=1e-4)


def test_training_counts_members_at_the_constant_prediction(results):
    cfg = X.SMOKE
    var = float(X.make_inputs(cfg)["y_train"].double().var(unbiased=False))
    tr = results.summary["training"]
    assert tr["constant_loss"] == pytest.approx(var, rel=1e-9)
    for a, row in enumerate(tr["rows"]):
        final = results.arrays["train_loss"][a, :, -1]
        assert row["at_constant"] == int((np.abs(final / var - 1) <= tr["constant_tol"]).sum())
        lo, hi = _wilson(row["at_constant"], cfg.train_seeds)
        assert row["at_constant_ci"]["lo"] == pytest.approx(lo, abs=1e-12)
        assert row["at_constant_ci"]["hi"] == pytest.approx(hi, abs=1e-12)
    # hand-set: one member at the constant, one not
    assert abs(0.5 / 0.5 - 1) <= X.CONSTANT < abs(0.3 / 0.5 - 1)


def test_training_counts_and_wilson_intervals_from_hand_set_losses():
    import dataclasses

    cfg = dataclasses.replace(
        X.SMOKE, activations=("tanh", "relu", "gelu"), train_seeds=2, train_depth=4
    )
    y = np.array([-1.0, 1.0, -1.0, 1.0])  # variance 1: the constant prediction's loss
    final = np.array([[1.0, 1.005], [1.0, 0.1], [0.1, 0.2]])  # 2, 1 and 0 of 2 at the constant
    steps, n_layers = 3, cfg.train_depth + 1
    trained = {
        "grad": np.zeros((3, 2, steps, n_layers)) + np.arange(n_layers),
        "loss": np.concatenate([np.ones((3, 2, steps - 1)), final[..., None]], axis=-1),
        "diverged": -np.ones((3, 2), dtype=int),
        "y": y,
    }
    tr = X._training(cfg, trained, {}, {}, {})
    for row, k in zip(tr["rows"], (2, 1, 0), strict=True):
        assert row["at_constant"] == k
        lo, hi = _wilson(k, 2)
        assert row["at_constant_ci"]["lo"] == pytest.approx(lo, abs=1e-12)
        assert row["at_constant_ci"]["hi"] == pytest.approx(hi, abs=1e-12)


def test_same_seed_same_weights_across_activations():
    cfg = X.SMOKE
    data = X.make_inputs(cfg)
    part = X._shape_chunk(cfg, data, 4, 16, "torch", ("tanh", "identity"))
    # identity's backward signal is the product of weights alone; tanh near 0 is close to it,
    # and at the output layer (no activation) the two are identical when the weights are.
    np.testing.assert_allclose(
        part["weight_full_batch"][0, :, -1] - part["weight_full_batch"][1, :, -1],
        0.0,
        atol=0.5,
    )
    np.testing.assert_allclose(
        part["q"][0, :, 0], part["q"][1, :, 0], rtol=1e-6
    )  # layer 1 sees the same z


# ---------------------------------------------------------------------- exercises
def test_report_ends_with_the_exercises(results):
    text = SPEC.report(results)
    assert text.rstrip().endswith(exercises_markdown(stubs.EXERCISES).rstrip())
    for ex in stubs.EXERCISES:
        if ex.kind == "coding":
            name = ex.function.split(":")[1]
            with pytest.raises(NotImplementedError):
                getattr(stubs, name)(0.5)
            assert callable(getattr(solutions, name))


@pytest.mark.parametrize(
    "chi1,factor", [(1 / 6, 1e-6), (1 / 3, 1e-3), (0.9, 0.5), (0.02, 1e-6), (0.25, 0.25)]
)
def test_layers_to_fall_against_a_loop(chi1, factor):
    k, norm = 0, 1.0
    while norm >= factor:
        norm *= math.sqrt(chi1)
        k += 1
    assert solutions.layers_to_fall(chi1, factor) == k
    assert solutions.layers_to_fall(1 / 6, 1e-6) == 16


@pytest.mark.parametrize("sigma_b2", [0.05, 0.2, 0.4])
def test_tanh_edge_of_chaos_against_theory(sigma_b2):
    got = solutions.tanh_edge_of_chaos(sigma_b2)
    assert got == pytest.approx(float(theory.edge_of_chaos("tanh", sigma_b2)), rel=1e-7)
    assert float(theory.chi1("tanh", got, sigma_b2)) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("chi1,factor", [(1.0, 1e-6), (2.0, 1e-6), (0.0, 1e-6), (0.5, 1.0)])
def test_layers_to_fall_refuses_a_signal_that_never_falls(chi1, factor):
    with pytest.raises(ValueError):
        solutions.layers_to_fall(chi1, factor)


def test_tanh_edge_of_chaos_without_biases():
    # sigma_b^2 = 0: q* = 0 at sigma_w^2 = 1, where tanh'(0)^2 = 1 gives chi_1 = sigma_w^2 = 1
    assert solutions.tanh_edge_of_chaos(0.0) == 1.0
    assert float(theory.chi1("tanh", 1.0, 0.0)) == pytest.approx(1.0, abs=1e-6)


def test_the_exercises_numbers_are_the_solutions():
    text = exercises_markdown(stubs.EXERCISES)
    edge = solutions.tanh_edge_of_chaos(0.05)
    assert rf"$\sigma_w^2 \approx {edge:.2f}$" in text
    bound = 2 * math.log(1e6) / math.log(6)
    assert f"= {bound:.1f}$: {solutions.layers_to_fall(1 / 6, 1e-6)} layers" in text
    assert f"2 \\cdot {math.log(1e6):.1f} / {math.log(6):.2f}" in text


def test_near_zero_predictions_are_written_as_zero():
    assert R.num0(-7.1e-15) == R.num0(0.0) == "0"
    assert R.num0(-0.0123) == "-0.0123"


def test_slopes_figure_plots_measured_minus_predicted(results):
    from actlab.experiments.gradient_flow import figures as F

    res = F.slope_residuals(results)
    s = results.summary
    h = s["headline"]
    rows = [r for r in s["table"] if r["depth"] == h["depth"] and r["width"] == h["width"]]
    for q, pred_key in F.SLOPE_PANELS:
        pts = res[q]
        assert len(pts) == len(rows) and len({p["x"] for p in pts}) == len(pts)
        for p in pts:
            r = next(
                r for r in rows if r["init"] == p["init"] and r["activation"] == p["activation"]
            )
            assert p["y"] == pytest.approx(r[f"slope_{q}"]["mean"] - r[pred_key], abs=1e-12)
            assert p["band"] == pytest.approx(0.1 * abs(r[pred_key]) + 0.01)


def test_profile_lines_are_not_the_colour_of_the_prediction(results):
    import matplotlib.colors as mc

    from actlab.experiments.gradient_flow import figures as F

    ax = F.plot_profile(results, "relu", "delta")
    measured = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() != "-"]
    assert measured and dashed
    for m in measured:
        for d in dashed:  # a measured line hidden under its black prediction is invisible
            assert (
                np.abs(np.subtract(mc.to_rgb(m.get_color()), mc.to_rgb(d.get_color()))).max() > 0.3
            )


def test_phase_grid_positions_are_linear_between_grid_values():
    from actlab.experiments.gradient_flow import figures as F

    grid = [0.0, 0.05, 0.1, 0.2, 0.4]
    got = F.grid_position(np.array([0.0, 0.025, 0.3, 0.4, 0.5, -0.1]), grid)
    np.testing.assert_allclose(got[:4], [0.0, 0.5, 3.5, 4.0])
    assert np.isnan(got[4:]).all()  # outside the grid: not drawn


def test_edge_of_chaos_curve_starts_at_one_and_reaches_every_column(results):
    sb, sw = results.arrays["edge_sigma_b2"], results.arrays["edge_sigma_w2"]
    assert sb[0] == 0.0 and sw[0] == pytest.approx(
        1.0, abs=1e-6
    )  # tanh: chi_1 = sigma_w^2 at q* = 0
    for b in X.SMOKE.phase_sigma_b2:
        k = int(np.flatnonzero(sb == b)[0])
        assert np.isfinite(sw[k])
        assert float(theory.chi1("tanh", sw[k], b)) == pytest.approx(1.0, abs=1e-6)
