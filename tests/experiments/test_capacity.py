"""The capacity experiment against independent references: plain nn.Sequential models trained
alone with torch.optim.Adam, NumPy target formulas and quadrature, a brute-force piece count on
dense samples, parameter counts of nn.Linear stacks; verdict sentences from hand-set summaries;
the exercises' solutions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from reference import plain_sequential
from torch import nn

from actlab.experiments.capacity import SPEC, solutions
from actlab.experiments.capacity import exercises as stubs
from actlab.experiments.capacity import experiment as cap
from actlab.experiments.capacity import report as rep
from actlab.report.format import num
from actlab.seeding import derive_seed
from actlab.stats import mean_ci

TINY = cap.Config(
    activations=("identity", "tanh", "relu"),
    targets=("sin1", "abs", "checkerboard"),
    depths=(1, 2),
    widths=(3, 5),
    seeds=2,
    steps=15,
    lr_grid=(0.01, 0.05),
    tune_depth=1,
    tune_width=3,
    n_train=12,
    n_train_2d=16,
    n_val=20,
    n_test=20,
    curve_points=11,
    region_depths=(1, 2),
    region_widths=(3, 6),
    region_nets=3,
)

TORCH_ACT = {"identity": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU}


@pytest.fixture(scope="module")
def tiny():
    return cap.run(TINY)


# ------------------------------------------------------------------------- independent refs
def _inputs(cfg, dim, seed, part):
    """The inputs drawn again with plain torch from the documented stream."""
    n = {"train": cfg.n_train if dim == 1 else cfg.n_train_2d, "val": cfg.n_val, "test": cfg.n_test}
    gen = torch.Generator().manual_seed(derive_seed(cfg.data_seed, "capacity", dim, seed, part))
    return torch.rand(n[part], dim, generator=gen, dtype=torch.float64) * 2 - 1


def _truth(name, x):
    """The targets from their formulas, in NumPy."""
    x = np.asarray(x, dtype=np.float64)
    if name.startswith("sin"):
        return np.sin(int(name[3:]) * np.pi * x[:, 0])
    if name == "abs":
        return np.abs(x[:, 0])
    if name == "step":
        return (x[:, 0] > 0).astype(float)
    if (
        name == "sawtooth"
    ):  # 4 teeth of height 1 on [-1, 1]: distance to the nearest multiple of 1/4
        u = (x[:, 0] + 1) * 4  # period 2 in u
        return 1 - np.abs((u % 2) - 1)
    if name == "checkerboard":
        i = np.clip(np.floor((x[:, 0] + 1) * 2), 0, 3)
        j = np.clip(np.floor((x[:, 1] + 1) * 2), 0, 3)
        return ((i + j) % 2 == 0).astype(float)
    raise KeyError(name)


def _members(results):
    m = results.metrics
    cols = ["member", "depth", "width", "activation", "target", "lr", "seed"]
    return m[m.metric == "train/mse"][cols].set_index("member").sort_index()


def _train_alone(cfg, row):
    """One member trained alone: plain nn.Sequential from the same seed, torch.optim.Adam."""
    dim = cap.TARGETS[row.target].dim
    sizes = [dim] + [row.width] * row.depth + [1]
    net = plain_sequential(sizes, int(row.seed), TORCH_ACT[row.activation])
    data = {}
    for part in ("train", "val", "test"):
        x = _inputs(cfg, dim, int(row.seed), part)
        y = torch.tensor(_truth(row.target, x.numpy()))[:, None]
        data[part] = (x.float(), y.float())
    opt = torch.optim.Adam(net.parameters(), lr=float(row.lr))
    for _ in range(cfg.steps):
        opt.zero_grad()
        loss = (net(data["train"][0]) - data["train"][1]).square().mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return {p: float((net(x) - y).double().square().mean()) for p, (x, y) in data.items()}


# ------------------------------------------------------------------------- targets
@pytest.mark.parametrize("name", list(cap.TARGETS))
def test_targets_match_their_formulas_and_variances(name):
    t = cap.TARGETS[name]
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(500, t.dim, generator=gen, dtype=torch.float64) * 2 - 1
    np.testing.assert_allclose(
        cap.target_values(name, x)[:, 0].numpy(), _truth(name, x), atol=1e-12
    )
    # variance by midpoint quadrature on a fine grid
    n = 200_000 if t.dim == 1 else 1000
    g = (np.arange(n) + 0.5) / n * 2 - 1
    pts = g[:, None] if t.dim == 1 else np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    assert abs(_truth(name, pts).var() - t.variance) < 1e-3


def test_affine_floor_against_closed_forms():
    """Best affine fit to sin(k pi x) on U[-1, 1]: slope E[x f]/E[x^2] with
    E[x sin(k pi x)] = (-1)^(k+1)/(k pi), so the unexplained share is 1 - 6/(k pi)^2; the step:
    1/4; |x|, the sawtooth and the checkerboard are even: nothing affine explains them."""
    for k in (1, 2, 4, 8):
        assert cap.affine_floor(f"sin{k}") == pytest.approx(1 - 6 / (k * math.pi) ** 2, abs=1e-6)
    assert cap.affine_floor("step") == pytest.approx(0.25, abs=1e-6)
    for name in ("abs", "sawtooth", "checkerboard"):
        assert cap.affine_floor(name) == pytest.approx(1.0, abs=1e-4)


def test_identity_text_both_ways():
    s = {
        "activations": ["identity"],
        "depths": [1, 4],
        "widths": [8],
        "targets": ["sin1", "abs"],
        "target_labels": {"sin1": "sin(πx)", "abs": "|x|"},
        "affine_floor": {"sin1": 0.392, "abs": 1.0},
        "cells": [
            {
                "activation": "identity",
                "target": "sin1",
                "depth": 4,
                "width": 8,
                "log10_error": _stat(math.log10(0.4), math.log10(0.35), math.log10(0.45)),
            },
            {
                "activation": "identity",
                "target": "abs",
                "depth": 4,
                "width": 8,
                "log10_error": _stat(math.log10(2.0), math.log10(1.8), math.log10(2.2)),
            },
        ],  # fmt: skip
    }
    t = rep.identity_text(s)
    assert "inside the measured interval for sin(πx)" in t
    assert "outside it for |x|: measured 2 [1.8, 2.2] against 1 (ratio 2)" in t
    s["affine_floor"]["sin1"] = 0.5
    assert "outside it for sin(πx): measured 0.4" in rep.identity_text(s)
    assert rep.identity_text({**s, "activations": ["relu"]}) == ""


def test_sawtooth_target_has_its_stated_pieces():
    f = lambda x: _truth("sawtooth", x[:, None])  # noqa: E731
    assert solutions.pieces_by_sampling(f, -1, 1) == cap.TARGETS["sawtooth"].pieces == 8
    assert solutions.pieces_by_sampling(lambda x: np.abs(x), -1, 1) == cap.TARGETS["abs"].pieces


# ------------------------------------------------------------------------- protocol
def test_every_member_equals_a_plain_model_trained_alone(tiny):
    table = _members(tiny)
    a = tiny.arrays
    for m, row in table.iterrows():
        ref = _train_alone(TINY, row)
        for part in ("train", "val", "test"):
            assert a[f"{part}_mse"][m] == pytest.approx(ref[part], rel=2e-4, abs=1e-7), (m, part)
        var = cap.TARGETS[row.target].variance
        assert a["rel_error"][m] == pytest.approx(a["test_mse"][m] / var, rel=1e-12)


def test_identical_initial_weights_across_activations_targets_and_rates(tiny):
    """Members of one shape and seed start from one draw: their ReLU counts at init agree."""
    table = _members(tiny)
    a = tiny.arrays
    relu = table[(table.activation == "relu") & table.target.isin(["sin1", "abs"])]
    for (_d, _w, _s), grp in relu.groupby(["depth", "width", "seed"]):
        vals = a["pieces_init"][grp.index.to_numpy()]
        assert np.all(vals == vals[0])


def test_rates_are_picked_on_validation_and_scored_on_test(tiny):
    table = _members(tiny)
    a, s = tiny.arrays, tiny.summary
    tune = table[(table.depth == TINY.tune_depth) & (table.width == TINY.tune_width)]
    for (act, tgt), grp in tune.groupby(["activation", "target"]):
        scores = {
            lr: np.log10(a["val_mse"][g.index.to_numpy()]).mean() for lr, g in grp.groupby("lr")
        }
        best = min(scores, key=lambda r: (scores[r], r))
        assert s["tuned_lr"][f"{act}|{tgt}"] == pytest.approx(best)
        for shape in TINY.shapes:
            sel = table[
                (table.depth == shape[0])
                & (table.width == shape[1])
                & (table.activation == act)
                & (table.target == tgt)
                & np.isclose(table.lr, best)
            ]
            cell = next(
                c
                for c in s["cells"]
                if (c["activation"], c["target"], c["depth"], c["width"]) == (act, tgt, *shape)
            )
            expect = mean_ci(np.log10(a["rel_error"][sel.index.to_numpy()]))
            assert cell["log10_error"]["mean"] == pytest.approx(expect["mean"], rel=1e-12)
            assert cell["lr"] == pytest.approx(best)
    # rates other than the pick exist only at the tuning shape
    other = table[(table.depth != TINY.tune_depth)]
    assert other.groupby(["activation", "target"]).lr.nunique().max() == 1


def test_pick_rates_hand_made_validation_against_test():
    """Validation favours 0.01 and test favours 0.1: the pick is 0.01, whatever test says."""
    table = pd.DataFrame(
        {
            "activation": ["tanh"] * 6,
            "target": ["abs"] * 6,
            "lr": [0.01, 0.01, 0.03, 0.03, 0.1, 0.1],
            "seed": [0, 1] * 3,
        }
    )
    val = np.array([0.01, 0.02, 0.05, 0.04, 0.2, 0.3])
    d = cap.pick_rates(table, val)[("tanh", "abs")]
    assert d.pick == 0.01 and d.status == "edge" and d.side == "low"
    val2 = np.array([0.05, 0.04, 0.01, 0.02, 0.2, 0.3])
    assert cap.pick_rates(table, val2)[("tanh", "abs")].status == "interior"
    # a rate where one seed diverged (NaN) is never picked, even with a better mean
    val3 = np.array([0.05, 0.04, 0.001, np.nan, 0.2, 0.3])
    assert cap.pick_rates(table, val3)[("tanh", "abs")].pick == 0.01


def test_n_params_and_matched_pairs():
    for dim, depth, width in [(1, 1, 8), (2, 3, 5), (1, 4, 32)]:
        sizes = [dim] + [width] * depth + [1]
        net = plain_sequential(sizes, 0, nn.ReLU)
        assert cap.n_params(dim, depth, width) == sum(p.numel() for p in net.parameters())
    shapes = [(1, 8), (1, 16), (1, 32), (2, 8), (2, 16), (4, 8)]
    # |theta|: 25, 49, 97, 97, 321, 241 -> (1,32)~(2,8) exact; (2,16)~(4,8) ratio 1.33
    assert cap.matched_pairs(shapes, 1) == [((1, 32), (2, 8)), ((2, 16), (4, 8))]
    assert cap.matched_pairs(shapes, 1, tol=1.2) == [((1, 32), (2, 8))]
    # same depth is never a pair; each shape at most once, closest first
    assert cap.matched_pairs([(1, 8), (1, 9)], 1) == []
    assert cap.matched_pairs([(1, 32), (2, 8), (1, 33)], 1) == [((1, 32), (2, 8))]


def test_verdict_within_noise_and_differs():
    rng = np.random.default_rng(0)
    v = cap.verdict(
        {
            "a": -2 + 0.01 * rng.standard_normal(6),
            "b": -2.005 + 0.01 * rng.standard_normal(6),
            "c": -1 + 0.01 * rng.standard_normal(6),
        }
    )
    assert v["best"] in ("a", "b") and v["tied_with_best"] == [x for x in "ab" if x != v["best"]]
    assert v["differs_from_best"] == ["c"]
    v = cap.verdict({"a": np.array([np.nan, np.nan]), "b": np.array([-1.0, -1.1])})
    assert v["best"] == "b" and v["differs_from_best"] == ["a"]


def test_pair_outcome_both_ways():
    low, high = np.array([-3.0, -3.1, -2.9, -3.05]), np.array([-1.0, -1.1, -0.9, -1.05])
    assert cap.pair_outcome(high, low) == "deeper"
    assert cap.pair_outcome(low, high) == "shallower"
    assert cap.pair_outcome(low, low + 0.01 * np.array([1, -1, 1, -1])) == "within noise"


def _pair_log_errors(table, arrays, summary, p) -> list[np.ndarray]:
    """log10 relative test errors of a matched pair's shallow and deep shape at the tuned rate,
    each in seed order (recomputed from the member table, not from the summary's verdicts)."""
    lr = summary["tuned_lr"][f"{p['activation']}|{p['target']}"]
    errs = []
    for shape in (p["shallow"], p["deep"]):
        sel = table[
            (table.depth == shape[0])
            & (table.width == shape[1])
            & (table.activation == p["activation"])
            & (table.target == p["target"])
            & np.isclose(table.lr, lr)
        ].sort_values("seed")
        errs.append(np.log10(arrays["rel_error"][sel.index.to_numpy()]))
    return errs


def test_pair_outcomes_follow_the_arrays(tiny):
    table = _members(tiny)
    a, s = tiny.arrays, tiny.summary
    assert s["pair_verdicts"], "the tiny grid has matched pairs"
    for p in s["pair_verdicts"]:
        errs = _pair_log_errors(table, a, s, p)
        from scipy import stats as st

        # both shapes of a seed saw that seed's data: SciPy's paired t-test is the reference
        differs = st.ttest_rel(errs[0], errs[1]).pvalue < 0.05
        want = (
            "within noise"
            if not differs
            else ("deeper" if errs[1].mean() < errs[0].mean() else "shallower")
        )
        assert p["outcome"] == want


# ------------------------------------------------------------------------- regions
def _pieces_dense(net: nn.Sequential, n=400_001) -> int:
    """Linear pieces on [-1, 1] by dense sampling (float64): slope changes, runs merged."""
    net = net.double()
    x = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        y = net(x)[:, 0].numpy()
    slope = np.diff(y) / np.diff(x[:, 0].numpy())
    change = np.abs(np.diff(slope)) > 1e-7 * max(np.abs(slope).max(), 1e-12)
    return int((change & ~np.concatenate([[False], change[:-1]])).sum()) + 1


def test_relu_pieces_at_init_against_dense_sampling(tiny):
    table = _members(tiny)
    a = tiny.arrays
    relu = table[(table.activation == "relu") & (table.target == "sin1")]
    assert len(relu)
    for m, row in relu.iterrows():
        net = plain_sequential([1] + [row.width] * row.depth + [1], int(row.seed), nn.ReLU)
        assert a["pieces_init"][m] == _pieces_dense(net), m
    # only ReLU members of 1-D targets are counted
    others = table[(table.activation != "relu") | (table.target == "checkerboard")].index
    assert np.isnan(a["pieces_init"][others]).all() and np.isnan(a["pieces_end"][others]).all()


def test_deep_narrow_text():
    reg = {
        "deep_narrow": {"depth": 8, "width": 8, "regions": _stat(40.0, 35.0, 45.0)},
        "sawtooth": {"depth": [1, 2, 8], "pieces": [2, 4, 256]},
    }
    t = rep.deep_narrow_text(reg)
    assert "($D = 8$, $N = 8$: 64 units) cross 40 [35, 45] regions" in t
    assert t.endswith("the sawtooth of the same depth has 256 pieces from 16 units")
    reg["sawtooth"] = {"depth": [1], "pieces": [2]}
    assert "sawtooth" not in rep.deep_narrow_text(reg)


def test_sawtooth_construction_fits_the_target_exactly(tiny):
    con = tiny.summary["regions"]["construction"]
    assert con["pieces"] == 8 and con["units"] == 6 and con["max_error"] < 1e-12
    dn = tiny.summary["regions"]["deep_narrow"]
    assert (dn["depth"], dn["width"]) == (max(TINY.region_depths), min(TINY.region_widths))
    assert dn["regions"]["mean"] == pytest.approx(tiny.arrays["region_counts"][-1, 0].mean())


def test_region_sweep_and_sawtooth(tiny):
    a, s = tiny.arrays, tiny.summary
    np.testing.assert_array_equal(a["sawtooth_pieces"], 2.0 ** a["sawtooth_depth"])
    counts = a["region_counts"]
    for i, depth in enumerate(TINY.region_depths):
        for j, width in enumerate(TINY.region_widths):
            for k in range(TINY.region_nets):
                seed = derive_seed(TINY.data_seed, "capacity-regions", depth, width, k)
                gen = torch.Generator().manual_seed(seed)
                layers, sizes = [], [1] + [width] * depth + [1]
                for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
                    lin = nn.Linear(fan_in, fan_out, dtype=torch.float64)
                    with torch.no_grad():
                        lin.weight.normal_(0, math.sqrt(2.0 / fan_in), generator=gen)
                        lin.bias.normal_(0, math.sqrt(TINY.region_sigma_b2), generator=gen)
                    layers += [lin, nn.ReLU()]
                net = nn.Sequential(*layers[:-1])
                # regions >= pieces; both from the exact count; pieces by dense sampling
                assert a["region_pieces"][i, j, k] == _pieces_dense(net)
                assert counts[i, j, k] >= a["region_pieces"][i, j, k]
    row = s["regions"]["init"][0]
    assert row["regions"]["mean"] == pytest.approx(counts[0, 0].mean())
    assert row["per_neuron"]["mean"] == pytest.approx(((counts[0, 0] - 1) / 3).mean())


# ------------------------------------------------------------------------- report sentences
def _stat(mean, lo=None, hi=None):
    lo = mean - 0.1 if lo is None else lo
    hi = mean + 0.1 if hi is None else hi
    return {"mean": mean, "lo": lo, "hi": hi, "sd": 0.1, "n": 5}


def test_best_text_both_ways():
    errors = {"relu": _stat(-2.0), "tanh": _stat(-1.9), "identity": _stat(-0.1)}
    v = {"best": "relu", "tied_with_best": ["tanh"], "differs_from_best": ["identity"],
         "means": {"relu": -2.0, "tanh": -1.9, "identity": -0.1}}  # fmt: skip
    t = rep.best_text(v, errors)
    assert t.startswith("**relu** has the lowest measured error (0.01 [")
    assert "tanh is within noise of it" in t and "identity is worse (paired test at 5%" in t
    assert "not corrected for their number" in t
    v2 = {**v, "tied_with_best": ["tanh", "identity"], "differs_from_best": []}
    assert "every other activation is within noise of it (tanh and identity)" in rep.best_text(
        v2, errors
    )
    v3 = {**v, "tied_with_best": [], "differs_from_best": ["tanh", "identity"]}
    t3 = rep.best_text(v3, errors)
    assert "differs from every other activation" in t3 and "within noise" not in t3
    assert "not corrected" not in rep.best_text(v2, errors)
    v4 = {**v, "means": {"relu": math.inf}}
    assert rep.best_text(v4, errors) == "no activation gave a finite error"


def test_pairs_text_both_ways():
    mk = lambda o: {"outcome": o}  # noqa: E731
    t = rep.pairs_text([mk("deeper"), mk("deeper"), mk("within noise"), mk("shallower")])
    assert "lower error in 2 of 4" in t and "shallower in 1" in t and "1 are within noise" in t
    assert "depth helped more often than it hurt. With 4 tests" in t
    t = rep.pairs_text([mk("shallower"), mk("within noise")])
    assert "depth hurt more often than it helped. " in t
    assert "most comparisons are within noise. " in rep.pairs_text([mk("within noise")])
    assert "neither won more. " in rep.pairs_text([mk("deeper"), mk("shallower")])
    t = rep.pairs_text([mk("deeper"), mk("within noise"), mk("within noise")])
    assert "most comparisons are within noise. " in t and "helped" not in t
    assert rep.pairs_text([]).startswith("no two shapes")


def test_pairs_text_names_separated_pairs_that_differ_by_little():
    """A consistent but tiny gap (identity nets both at the affine floor) is separated by the
    paired test; the sentence says how many such pairs there are, both ways."""

    def mk(o, f):
        return {"outcome": o, "log10_factor": {"mean": math.log10(f), "lo": 0.0, "hi": 0.0}}

    t = rep.pairs_text([mk("shallower", 1.003), mk("deeper", 0.5), mk("within noise", 1.0)])
    assert "(1 of the 2 separated pairs differs by less than a factor 1.1 in error" in t
    t = rep.pairs_text([mk("shallower", 1.2), mk("deeper", 0.5), mk("within noise", 1.05)])
    assert "separated pairs" not in t
    t = rep.pairs_text([mk("shallower", 1.05), mk("deeper", 1 / 1.05)])
    assert "(2 of the 2 separated pairs differ by less than" in t


def test_pair_factor_is_the_paired_mean_of_log_differences(tiny):
    table = _members(tiny)
    a, s = tiny.arrays, tiny.summary
    for p in s["pair_verdicts"]:
        errs = _pair_log_errors(table, a, s, p)
        d = errs[1] - errs[0]
        assert p["log10_factor"]["mean"] == pytest.approx(d.mean(), abs=1e-12)


def test_chance_text_against_the_binomial_tail():
    """Multiple comparisons: with 126 tests at 5%, about 3.15 per direction come from chance;
    the tail of each observed count is SciPy's binomial survival function (independent
    reference: the sum of the pmf), and the verdict follows it both ways."""
    from scipy import stats as st

    t = rep.chance_text(11, 3, 126)
    assert "about 3.2 'deeper better'" in t  # 126 x 0.025 = 3.15
    p11 = sum(st.binom.pmf(k, 126, 0.025) for k in range(11, 127))
    assert f"11 deeper (binomial tail p = {num(p11, 2)}: more than chance alone gives)" in t
    p3 = sum(st.binom.pmf(k, 126, 0.025) for k in range(3, 127))
    assert p3 > 0.05
    assert f"3 shallower (binomial tail p = {num(p3, 2)}: within what chance alone gives)" in t
    assert "not independent" in t
    t0 = rep.chance_text(0, 0, 10)
    assert "0 deeper (binomial tail p = 1: within what chance" in t0


def test_paired_verdicts_see_a_consistent_per_seed_gap():
    """Same-seed samples with a small consistent gap under a large seed-to-seed spread: the
    paired test (SciPy's ttest_rel, independent reference) separates them where Welch's test
    does not, and the capacity verdicts follow the paired one."""
    from scipy import stats as st

    base = np.array([-3.0, -2.0, -1.0, -2.5, -1.5])
    gap = np.array([0.10, 0.12, 0.09, 0.11, 0.10])
    worse = base + gap
    assert st.ttest_rel(base, worse).pvalue < 0.05
    assert st.ttest_ind(base, worse, equal_var=False).pvalue > 0.05
    assert cap.pair_outcome(worse, base) == "deeper"
    assert cap.pair_outcome(base, worse) == "shallower"
    v = cap.verdict({"a": base, "b": worse})
    assert v["best"] == "a" and v["differs_from_best"] == ["b"]
    # pairing order matters: shuffled seeds break the pairing and the gap is noise again
    assert cap.pair_outcome(base, worse[::-1]) == "within noise"


def test_region_sentences_both_ways():
    d1 = [
        {"width": 8, "measured": _stat(5.0, 4.0, 6.0), "expected": 5.5},
        {"width": 16, "measured": _stat(10.0, 9.0, 11.0), "expected": 10.2},
    ]
    t = rep.depth1_text(d1)
    assert t.startswith("at every width (8 and 16) the exact expectation lies inside")
    assert "N = 8: measured 5 against 5.5 expected (ratio 0.91)" in t
    d1[1]["expected"] = 12.0
    t = rep.depth1_text(d1)
    assert "outside the measured 95% interval at width 16" in t and "N = 16" in t
    reg = {
        "rate_depths": [1, 8],
        "rate": {"1": _stat(0.6, 0.5, 0.7), "8": _stat(0.3, 0.25, 0.35)},
        "rate_differs": True,
    }
    t = rep.per_neuron_text(reg)
    assert "the deeper nets have fewer per unit, by a factor 0.5" in t
    reg["rate_differs"] = False
    assert rep.per_neuron_text(reg).endswith("(within noise)")
    trained = [
        {"n": 5, "more": 1, "log10_ratio": _stat(-0.3)},
        {"n": 5, "more": 4, "log10_ratio": _stat(0.3)},
    ]
    t = rep.trained_text(trained)
    assert t.startswith("training added linear pieces in 5 of 10 trained ReLU networks (50%")
    assert "from 0.5 to 2" in t
    assert "not independent trials" not in t  # one target (unnamed): no shared weights
    two = [{**trained[0], "target": "abs"}, {**trained[1], "target": "step"}]
    assert "not independent trials and the interval is narrower" in rep.trained_text(two)
    same = [{**trained[0], "target": "abs"}, {**trained[1], "target": "abs"}]
    assert "not independent trials" not in rep.trained_text(same)
    assert rep.trained_text([]).startswith("no ReLU network")


def test_lr_text_both_ways():
    d = {"activation": "tanh", "target": "abs", "depth": 2, "width": 16, "status": "interior",
         "status_text": "interior"}  # fmt: skip
    s = {
        "lr_edges": 0,
        "lr_cells": 2,
        "lr_tried": [0.01, 0.03, 0.1],
        "tune_all_shapes": False,
        "lr_decisions": [d, {**d, "activation": "relu"}],
        "target_labels": {"abs": "|x|"},
    }
    assert rep.lr_text(s) == (
        "every (activation, target) pick is interior to the rates tried (0.01, 0.03, 0.1)"
    )
    edge = {**d, "activation": "relu", "status": "edge", "status_text": "the largest rate tried"}
    s |= {"lr_edges": 1, "lr_decisions": [d, edge]}
    t = rep.lr_text(s)
    assert t.startswith("1 of 2 (activation, target) picks are interior")
    assert "(relu on |x|: the largest rate tried)" in t and "tanh" not in t
    s["tune_all_shapes"] = True
    assert "relu on |x| at D=2, N=16" in rep.lr_text(s)


def test_grid_is_widened_where_the_pick_is_at_an_edge(tiny):
    """Every pick of the tiny run is interior, at a bound, or at an edge with the extension
    budget spent; the rates tried beyond the grid are a factor LR_FACTOR apart."""
    s = tiny.summary
    table = _members(tiny)
    tune = table[(table.depth == TINY.tune_depth) & (table.width == TINY.tune_width)]
    for d in s["lr_decisions"]:
        tried = sorted(
            set(tune.lr[(tune.activation == d["activation"]) & (tune.target == d["target"])])
        )
        assert tried == pytest.approx(d["tried"])
        assert set(TINY.lr_grid) <= set(tried) and len(tried) <= len(TINY.lr_grid) + TINY.lr_extend
        extra = [r for r in tried if r not in TINY.lr_grid]
        for r in extra:
            assert any(
                math.isclose(r, q * f, rel_tol=1e-9)
                for q in tried
                for f in (cap.LR_FACTOR, 1 / cap.LR_FACTOR)
            )
        if d["status"] == "edge":
            assert len(tried) == len(TINY.lr_grid) + TINY.lr_extend
        if d["status"] == "interior":
            assert min(tried) < d["pick"] < max(tried)
    assert s["lr_edges"] == sum(d["status"] != "interior" for d in s["lr_decisions"])


def test_extension_changes_the_pick_only_through_validation():
    """A hand-made arm whose best validation rate is the grid's largest: one round later the
    extended rate is scored and picked only if its validation error is lower."""
    table = pd.DataFrame(
        {
            "activation": ["relu"] * 4,
            "target": ["abs"] * 4,
            "lr": [0.01, 0.01, 0.03, 0.03],
            "seed": [0, 1, 0, 1],
        }  # fmt: skip
    )
    d = cap.pick_rates(table, np.array([0.5, 0.4, 0.1, 0.2]))[("relu", "abs")]
    assert d.pick == 0.03 and d.status == "edge" and d.next_rate == pytest.approx(0.09)
    more = pd.concat([table, table.iloc[:2].assign(lr=d.next_rate)], ignore_index=True)
    worse = cap.pick_rates(more, np.array([0.5, 0.4, 0.1, 0.2, 0.3, 0.3]))[("relu", "abs")]
    assert worse.pick == 0.03 and worse.status == "interior"
    better = cap.pick_rates(more, np.array([0.5, 0.4, 0.1, 0.2, 0.01, 0.02]))[("relu", "abs")]
    assert better.pick == pytest.approx(0.09) and better.status == "edge"


def test_sawtooth_text_reads_the_largest_shape():
    s = {
        "targets": ["sawtooth"],
        "activations": ["relu"],
        "depths": [1, 4],
        "widths": [8, 32],
        "cells": [
            {
                "target": "sawtooth",
                "activation": "relu",
                "depth": 4,
                "width": 32,
                "log10_error": _stat(-1.0),
            },
            {
                "target": "sawtooth",
                "activation": "relu",
                "depth": 1,
                "width": 8,
                "log10_error": _stat(-3.0),
            },
        ],  # fmt: skip
        "regions": {
            "trained": [{"target": "sawtooth", "depth": 4, "width": 32, "pieces_end": _stat(23.0)}]
        },  # fmt: skip
    }
    t = rep.sawtooth_text(s)
    assert "$D = 4$, $N = 32$ (128 units) end at error 0.1 [" in t and "23 linear pieces" in t
    assert rep.sawtooth_text({**s, "activations": ["tanh"]}) == ""


# ------------------------------------------------------------------------- run, figures, report
def test_smoke_figures_and_report(tiny):
    figs = SPEC.figures(tiny)
    want = {f"errors_{t}" for t in TINY.targets} | {"params", "fits", "regions"}
    assert set(figs) == want and all(isinstance(f, Figure) for f in figs.values())
    text = SPEC.report(tiny)
    assert "nan" not in text.lower().replace("nan ", "")
    for name in want:
        assert f"figures/{name}.png" in text
    from actlab.report.notation import misplaced_symbols

    assert misplaced_symbols(text, "capacity") == []


def test_metrics_table_holds_the_arrays(tiny):
    m = tiny.metrics
    rel = m[m.metric == "test/rel_error"].sort_values("member")
    np.testing.assert_array_equal(rel.value.to_numpy(), tiny.arrays["rel_error"])
    assert set(m[m.metric == "regions/pieces"].activation) == {"relu"}


def test_config_refuses_bad_values_naming_the_field():
    for field, value in [
        ("targets", ("nosuch",)),
        ("depths", (0,)),
        ("widths", (2, 2)),
        ("lr_grid", (-1.0,)),
        ("tune_depth", 3),
        ("tune_width", 7),
        ("seeds", 1),
        ("lr_extend", -1),
        ("region_sigma_b2", 0.0),
        ("init", "nosuch"),
    ]:
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(TINY, **{field: value})


# ------------------------------------------------------------------------- exercises
def test_solutions_against_references():
    def tent(depth):
        def f(x):
            t = x.copy()
            for _ in range(depth):
                t = 2 * np.minimum(t, 1 - t)
            return t

        return f

    for depth in range(1, 11):
        assert solutions.pieces_by_sampling(tent(depth), 0.0, 1.0) == 2**depth
    # the answer's threshold: right up to D = 15, wrong from D = 16 (2^-16 < 2 grid steps)
    assert solutions.pieces_by_sampling(tent(15), 0.0, 1.0) == 2**15
    assert solutions.pieces_by_sampling(tent(16), 0.0, 1.0) != 2**16
    assert solutions.pieces_by_sampling(lambda x: 3 * x + 1, -1, 1) == 1
    for depth, width, dim in [(4, 32, 1), (2, 8, 1), (3, 5, 2), (1, 7, 1)]:
        target = cap.n_params(dim, depth, width)
        best = min(range(1, 5000), key=lambda m: (abs(cap.n_params(dim, 1, m) - target), m))
        assert solutions.matched_width(depth, width, dim) == best
    assert solutions.matched_width(4, 32) == 1088  # the number the exercise's answer quotes


def test_stubs_raise_until_filled_in():
    with pytest.raises(NotImplementedError):
        stubs.pieces_by_sampling(np.abs, -1, 1)
    with pytest.raises(NotImplementedError):
        stubs.matched_width(2, 8)


def test_pick_table_marks_picks_not_interior():
    d = {"activation": "relu", "target": "abs", "depth": 2, "width": 16, "pick": 0.09,
         "status": "interior"}  # fmt: skip
    s = {
        "tune_all_shapes": False,
        "tune_shape": [2, 16],
        "targets": ["abs", "step"],
        "activations": ["relu"],
        "target_labels": {"abs": "|x|", "step": "step"},
        "lr_decisions": [d, {**d, "target": "step", "pick": 0.27, "status": "edge"}],
    }
    rows = rep.pick_table(s)
    assert "| activation | \\|x\\| | step |" in rows
    assert "| relu | 0.09 | 0.27* |" in rows
    assert rep.pick_table({**s, "tune_all_shapes": True}) == []


def test_transfer_text_both_ways():
    s = {
        "tune_all_shapes": False,
        "tune_shape": [2, 16],
        "depths": [1, 2, 4],
        "widths": [8, 16, 32],
        "worse_at_largest": [["tanh", "abs"], ["gelu", "step"]],
        "target_labels": {"abs": "|x|", "step": "step"},
    }
    t = rep.transfer_text(s)
    assert "2 (activation, target) pairs have a higher error there" in t
    assert "paired test over seeds" in t and "most likely" not in t
    assert "Why is not measured here" in t
    assert "(tanh on |x| and gelu on step)" in t
    cells = [
        {"activation": "tanh", "target": "abs", "depth": d, "width": w, "log10_error": {"mean": m}}
        for d, w, m in [(2, 16, -3.0), (4, 32, -1.0)]
    ]
    t = rep.transfer_text({**s, "cells": cells})
    assert "(tanh on |x| (×100) and gelu on step)" in t  # 10^(-1 - -3), gelu has no cells
    assert "no (activation, target)" in rep.transfer_text({**s, "worse_at_largest": []})
    assert rep.transfer_text({**s, "tune_shape": [4, 32]}).startswith("The rates are tuned at the")
    assert rep.transfer_text({**s, "tune_all_shapes": True}) == "Every shape has its own rate."


def test_worse_at_largest_follows_the_arrays(tiny):
    table = _members(tiny)
    a, s = tiny.arrays, tiny.summary
    big = (max(TINY.depths), max(TINY.widths))
    want = []
    for tgt in TINY.targets:
        for act in TINY.activations:
            errs = []
            for shape in (TINY.tune_shape, big):
                sel = table[
                    (table.depth == shape[0])
                    & (table.width == shape[1])
                    & (table.activation == act)
                    & (table.target == tgt)
                    & np.isclose(table.lr, s["tuned_lr"][f"{act}|{tgt}"])
                ].sort_values("seed")
                errs.append(np.log10(a["rel_error"][sel.index.to_numpy()]))
            if cap.pair_outcome(errs[0], errs[1]) == "shallower":
                want.append([act, tgt])
    assert s["worse_at_largest"] == want
