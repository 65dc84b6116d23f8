"""The deep-MLP experiment against independent references: a plain nn.Sequential trained alone,
gradients by autograd layer by layer, and the metrics table."""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from reference import plain_sequential
from scipy import stats as st
from torch import nn

from actlab.experiments.deep_mlp import SPEC
from actlab.experiments.deep_mlp import experiment as d
from actlab.seeding import derive_seed

SMOKE = d.SMOKE


@pytest.fixture(scope="module")
def results():
    return d.run(SMOKE)


TORCH_ACT = {
    "identity": nn.Identity,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
}


def _initial_sequential(cfg, activation, seed):
    """Seed ``seed``'s initial network written out with plain torch (:mod:`reference`)."""
    assert cfg.init == "torch"
    return plain_sequential([1] + [cfg.width] * cfg.depth + [1], seed, TORCH_ACT[activation])


def _data(cfg):
    """The data written out from the module's description, not through ``d.make_data``:
    training inputs on a grid over [-pi, pi], validation and test on its midpoints, labels
    sin(x) + noise * N(0, 1) drawn in that order (train, validation, test) from one generator
    seeded with ``derive_seed(data_seed, "deep-mlp", "noise")``; a dense noiseless grid."""
    gen = torch.Generator().manual_seed(derive_seed(cfg.data_seed, "deep-mlp", "noise"))
    x = torch.linspace(-math.pi, math.pi, cfg.n_train, dtype=torch.float64)[:, None]
    mid = (x[1:] + x[:-1]) / 2
    out = {"x_train": x, "x_val": mid, "x_test": mid}
    for part, inputs in (("train", x), ("val", mid), ("test", mid)):
        noise = torch.randn(inputs.shape, generator=gen, dtype=torch.float64)
        out[f"y_{part}"] = torch.sin(inputs) + cfg.noise * noise
    out["x_grid"] = torch.linspace(-math.pi, math.pi, cfg.n_grid, dtype=torch.float64)[:, None]
    out["y_grid"] = torch.sin(out["x_grid"])
    return {k: v.float() for k, v in out.items()}


def _bounds(values: torch.Tensor, tol: float = 1e-5) -> tuple[float, float]:
    """The fraction of ``values`` ``(units,)`` that are < 0, as an interval: a value within
    ``tol`` of 0 may fall either side to float rounding."""
    return (values < -tol).double().mean().item(), (values < tol).double().mean().item()


def _train_alone(cfg, act, seed, lr):
    """One member as a plain nn.Sequential trained alone with torch.optim.Adam, full batch.
    Per epoch (0..epochs): the training, validation and held-out MSE and (before each update)
    every layer's mean |dL/dW|; at the snapshot epochs the hidden units on the grid and bounds
    on the off (ReLU: negative pre-activation everywhere) and saturated (tanh: |h| > 0.99
    everywhere) fractions per layer; the fit on the grid at every frame."""
    data = _data(cfg)
    seq = _initial_sequential(cfg, act, seed)
    lins = [m for m in seq if isinstance(m, nn.Linear)]
    opt = torch.optim.Adam(seq.parameters(), lr=lr)
    rec = SimpleNamespace(mse={"train": [], "val": [], "test": []}, grads=[], hidden=[], units=[])
    rec.fits, frames = [], list(range(0, cfg.epochs + 1, cfg.frame_every))
    for epoch in range(cfg.epochs + 1):
        with torch.no_grad():
            for part in rec.mse:
                out = seq(data[f"x_{part}"])
                rec.mse[part].append(nn.functional.mse_loss(out, data[f"y_{part}"]).item())
            h, pre, post = data["x_grid"], [], []
            for module in seq[:-1]:
                h = module(h)
                (pre if isinstance(module, nn.Linear) else post).append(h)
            if epoch in frames or epoch == cfg.epochs:
                rec.fits.append(seq(data["x_grid"])[:, 0].numpy())
        if epoch in cfg.snapshot_epochs:
            rec.hidden.append(np.stack([post[layer - 1].numpy() for layer in cfg.hidden_layers]))
            off = [_bounds(z.max(0).values) for z in pre]  # max z < 0: off on every input
            sat = [_bounds(0.99 - h.abs().min(0).values) for h in post]
            rec.units.append((off, sat))
        if epoch == cfg.epochs:
            break
        opt.zero_grad()
        nn.functional.mse_loss(seq(data["x_train"]), data["y_train"]).backward()
        rec.grads.append([lin.weight.grad.abs().mean().item() for lin in lins])
        opt.step()
    rec.grads, rec.fits = np.array(rec.grads), np.array(rec.fits)
    return rec


def _fixed_index(cfg, act, seed):
    """Index of (activation, seed) in the fixed-rate arrays (ordered activation, seed)."""
    return cfg.activations.index(act) * cfg.seeds + seed


@pytest.mark.parametrize(("act", "seed"), [("tanh", 1), ("relu", 0), ("identity", 1)])
def test_one_member_equals_a_plain_sequential_trained_alone(results, act, seed):
    """Every logged array of one member against the plain network, to float rounding (rtol
    1e-4 on losses and gradients after 20 Adam steps, atol 1e-5 on outputs)."""
    cfg, m = SMOKE, results.metrics
    ref = _train_alone(cfg, act, seed, cfg.lr)
    table = d.members(cfg)
    row = table[(table.activation == act) & (table.seed == seed) & (table.lr == cfg.lr)].iloc[0]
    mine = m[m.member == row.member]
    for part in ("train", "val", "test"):
        got = mine[mine.metric == f"{part}/mse"].sort_values("step")
        assert got.step.tolist() == list(range(cfg.epochs + 1))
        np.testing.assert_allclose(got.value, ref.mse[part], rtol=1e-4, atol=1e-7)
    i = _fixed_index(cfg, act, seed)
    arrays = results.arrays
    np.testing.assert_allclose(arrays["grad_trace"][i], ref.grads, rtol=1e-4, atol=1e-9)
    grad_epochs = list(cfg.grad_epochs)
    np.testing.assert_allclose(arrays["grad_snapshots"][i], ref.grads[grad_epochs], rtol=1e-4)
    for layer in range(1, cfg.depth + 2):  # the table's layer L is Linear L from the input
        g = mine[(mine.metric == "grad/weight_mean_abs") & (mine.layer == layer)]
        np.testing.assert_allclose(g.sort_values("step").value, ref.grads[:, layer - 1], rtol=1e-4)
    assert results.coords["hidden/epoch"] == list(cfg.snapshot_epochs)
    np.testing.assert_allclose(arrays["hidden"][i], np.stack(ref.hidden), atol=1e-5)
    assert results.coords["fits/frame"] == [*range(0, cfg.epochs + 1, cfg.frame_every)]
    np.testing.assert_allclose(arrays["fits"][i], ref.fits, atol=1e-5)
    if seed == 0:  # the animation's last hidden layer, a few units, at every frame
        a = cfg.activations.index(act)
        frames = arrays["last_hidden_frames"][a]  # (frame, input, unit)
        for f, epoch in enumerate(results.coords["fits/frame"]):
            if epoch in cfg.snapshot_epochs and cfg.depth in cfg.hidden_layers:
                snap = ref.hidden[cfg.snapshot_epochs.index(epoch)]
                last = snap[cfg.hidden_layers.index(cfg.depth)][:, : frames.shape[-1]]
                np.testing.assert_allclose(frames[f], last, atol=1e-5)
    # Unit probes on the grid, per layer (layer 1 nearest the input): off for ReLU, saturated
    # for tanh, NaN where a notion does not apply.
    units = arrays["units"][i]  # (epoch, layer, metric)
    off, sat = (d.SNAPSHOT_METRICS.index(k) for k in ("act/off_fraction", "act/saturated_fraction"))
    for e, (off_bounds, sat_bounds) in enumerate(ref.units):
        for k, bounds, applies in ((off, off_bounds, "relu"), (sat, sat_bounds, "tanh")):
            got = units[e, :, k]
            if act != applies:
                assert np.isnan(got).all()
                continue
            lo, hi = np.array(bounds).T
            assert np.all((lo <= got) & (got <= hi)), (e, k, got, lo, hi)


def test_gradient_layers_are_numbered_input_to_output(results):
    """Layer 1 of the gradient arrays is the Linear nearest the input (a reversal fails)."""
    cfg, data = SMOKE, _data(SMOKE)
    seq = _initial_sequential(cfg, "relu", 0)
    nn.functional.mse_loss(seq(data["x_train"]), data["y_train"]).backward()
    linears = [layer for layer in seq if isinstance(layer, nn.Linear)]
    expected = np.array([lin.weight.grad.abs().mean().item() for lin in linears])
    assert results.coords["grad_snapshots/layer"] == list(range(1, cfg.depth + 2))
    member = cfg.activations.index("relu") * cfg.seeds
    got = results.arrays["grad_snapshots"][member, 0]  # epoch 0, layers 1..depth+1
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert not np.allclose(got, expected[::-1], rtol=1e-3)


def test_summary_numbers_equal_the_metrics_table(results):
    cfg = SMOKE
    m = results.metrics
    for row in results.summary["table"]:
        final = m[
            (m.activation == row["activation"])
            & (m.lr == cfg.lr)
            & (m.step == cfg.epochs)
            & (m.metric == "test/mse")
        ]
        assert row["fixed_test"]["mean"] == pytest.approx(final.value.mean(), rel=1e-6)
        assert row["fixed_test"]["n"] == cfg.seeds
        lo, hi = row["fixed_test"]["lo"], row["fixed_test"]["hi"]
        assert lo <= row["fixed_test"]["mean"] <= hi
    assert results.summary["noise_floor"] == pytest.approx(cfg.noise**2)


def test_every_member_starts_from_its_seeds_weights(results):
    """At step 0 every member's validation MSE is that of its seed's independent initial draw
    with its activation, whatever its learning rate: within a seed every activation starts from
    the same weights (and the seeds differ)."""
    cfg, m = SMOKE, results.metrics
    data = _data(cfg)
    start = m[(m.metric == "val/mse") & (m.step == 0)]
    for act in cfg.activations:
        for seed in range(cfg.seeds):
            with torch.no_grad():
                out = _initial_sequential(cfg, act, seed)(data["x_val"])
                expected = nn.functional.mse_loss(out, data["y_val"]).item()
            got = start[(start.activation == act) & (start.seed == seed)]
            assert len(got) == len(_tried(results, act))  # extension members included
            np.testing.assert_allclose(got.value, expected, rtol=1e-5)
    relu = start[start.activation == "relu"]
    assert relu[relu.seed == 0].value.iloc[0] != relu[relu.seed == 1].value.iloc[0]


def test_arrays_have_named_axes_and_finite_values(results):
    assert results.axes["hidden"] == ("member", "epoch", "layer", "input", "unit")
    n_fixed = len(SMOKE.activations) * SMOKE.seeds
    assert results.arrays["hidden"].shape == (
        n_fixed,
        len(SMOKE.snapshot_epochs),
        len(SMOKE.hidden_layers),
        SMOKE.n_grid,
        SMOKE.width,
    )
    assert np.isfinite(results.arrays["hidden"]).all()
    assert results.coords["units/metric"] == list(d.SNAPSHOT_METRICS)


def test_data_noise_floor_and_grids(results):
    data = d.make_data(SMOKE)
    for key, value in _data(SMOKE).items():  # the documented draw
        assert torch.equal(data[key], value), key
    np.testing.assert_array_equal(results.arrays["x_train"], data["x_train"][:, 0].double())
    np.testing.assert_array_equal(results.arrays["y_train"], data["y_train"][:, 0].double())
    x = data["x_train"][:, 0]
    assert x[0].item() == pytest.approx(-math.pi) and x[-1].item() == pytest.approx(math.pi)
    mid = data["x_test"][:, 0]
    assert torch.all((mid > x[:-1]) & (mid < x[1:]))  # interleaved
    assert not torch.equal(data["y_val"], data["y_test"])  # independent draws


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seeds": 0}, "seeds"),
        ({"activations": ("tanhh",)}, "Did you mean 'tanh'"),
        ({"hidden_layers": (0,)}, "hidden_layers"),
        ({"snapshot_epochs": (0, 999)}, "snapshot_epochs"),
        ({"lr": float("nan")}, "lr"),
        ({"noise": -1.0}, "noise"),
        ({"lr_min": 0.0}, "lr_min"),
        ({"lr_max": 1e-6}, "lr_max"),
        ({"lr_grid": (1.0,)}, r"lr_grid must lie in \[lr_min, lr_max\]"),
        ({"lr_extend": -1}, "lr_extend"),
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SMOKE, **change)


def _final(results, metric, act, lr):
    """Per seed (in order) the table's ``metric`` at the last epoch for (activation, rate)."""
    m = results.metrics
    sel = (m.metric == metric) & (m.step == SMOKE.epochs) & (m.activation == act)
    rows = m[sel & np.isclose(m.lr, lr)].sort_values("seed")
    assert rows.seed.tolist() == list(range(SMOKE.seeds))
    return rows.value.to_numpy()


def _tried(results, act):
    """The rates the metrics table holds for ``act`` (the base grid and any extension)."""
    m = results.metrics
    return sorted(set(m[m.activation == act].lr.round(12)))


def test_tuned_rate_is_the_lowest_validation_mse_and_its_rows_use_it(results):
    """Per activation: the rate with the lowest mean final validation MSE over every rate it
    was trained at (never the held-out one); the tuned columns and ``fits_best_lr`` are that
    rate's members."""
    cfg, x = SMOKE, results.arrays["x_grid"]
    for a, row in enumerate(results.summary["table"]):
        act = row["activation"]
        tried = _tried(results, act)
        assert tried == pytest.approx(row["lr_tried"])
        val = {lr: _final(results, "val/mse", act, lr) for lr in tried}
        assert all(np.isfinite(v).all() for v in val.values())  # every rate eligible here
        best = min(val, key=lambda lr: val[lr].mean())
        assert row["best_lr"] == pytest.approx(best)
        for tag, lr in (("fixed", cfg.lr), ("tuned", best)):
            for split in ("train", "test", "truth"):
                values = _final(results, f"{split}/mse", act, lr)
                assert row[f"{tag}_{split}"]["mean"] == pytest.approx(values.mean(), rel=1e-12)
        truth = _final(results, "truth/mse", act, best)
        fits = results.arrays["fits_best_lr"][a]  # (seed, input)
        np.testing.assert_allclose(((fits - np.sin(x)) ** 2).mean(axis=1), truth, rtol=1e-5)


def test_grid_is_extended_until_the_pick_is_interior_or_the_budget_is_spent(results):
    """Recomputed from the table with an independent rule: per activation, starting from the
    base grid, while the best rate (lowest mean validation MSE) is the smallest or largest
    tried, the next tried rate is 3x beyond it; the status says interior or edge."""
    cfg = SMOKE
    for row in results.summary["table"]:
        act = row["activation"]
        tried = _tried(results, act)
        grid = sorted(cfg.learning_rates)
        val = {lr: _final(results, "val/mse", act, lr).mean() for lr in tried}
        for _ in range(cfg.lr_extend):
            best = min(grid, key=val.get)
            if grid[0] < best < grid[-1]:
                break
            nxt = best / 3 if best == grid[0] else best * 3
            assert any(math.isclose(nxt, t) for t in tried), (act, nxt, tried)
            grid = sorted([*grid, next(t for t in tried if math.isclose(nxt, t))])
        assert tried == pytest.approx(grid)  # nothing else was trained for this activation
        best = min(grid, key=val.get)
        interior = grid[0] < best < grid[-1]
        assert row["lr_status"] == ("interior" if interior else "edge")
    # The smoke grid {1e-3, 3e-3} has only edges: something was extended.
    assert any(len(r["lr_tried"]) > len(cfg.learning_rates) for r in results.summary["table"])


def test_an_extension_member_equals_a_plain_sequential_at_that_rate(results):
    """Members of an extension chunk start from their seed's weights like the others: the
    training curve of one extra-rate member against the plain network trained alone."""
    row = next(r for r in results.summary["table"] if len(r["lr_tried"]) > 2)
    rate = max(row["lr_tried"])
    ref = _train_alone(SMOKE, row["activation"], 1, rate)
    m = results.metrics
    mine = m[(m.activation == row["activation"]) & np.isclose(m.lr, rate) & (m.seed == 1)]
    got = mine[mine.metric == "train/mse"].sort_values("step").value
    np.testing.assert_allclose(got, ref.mse["train"], rtol=1e-4, atol=1e-7)


def test_no_extension_when_the_budget_is_zero_and_bounds_are_flagged():
    """lr_extend=0 trains only the base grid (edge picks say so); with lr_max at the grid's
    top a pick there is at the bound, not at an edge."""
    base = dataclasses.replace(SMOKE, activations=("tanh",), seeds=2, epochs=5,
                               snapshot_epochs=(0, 5), grad_epochs=(0,))  # fmt: skip
    res = d.run(dataclasses.replace(base, lr_extend=0))
    (row,) = res.summary["table"]
    assert row["lr_tried"] == pytest.approx(list(base.learning_rates))
    assert set(res.metrics.lr.round(12)) == set(base.learning_rates)
    assert row["lr_status"] in ("edge", "interior")
    if row["lr_status"] == "edge":
        assert "budget" in row["lr_status_text"]
    res = d.run(dataclasses.replace(base, lr_max=3e-3, lr_min=1e-3))
    (row,) = res.summary["table"]
    assert row["lr_tried"] == pytest.approx([1e-3, 3e-3])  # no room to extend
    assert row["lr_status"] in ("at lr_min", "at lr_max")
    assert "bound" in SPEC.report(res).split("## A fair")[1].split("## Gradient")[0]


def test_tuned_rate_never_looks_at_held_out_data_or_diverged_rates():
    """Hand-set final values: tanh's best rate on validation is the worst on held-out data;
    relu's best rate on validation diverged on one seed and is not eligible."""
    S = 2

    def final(val, test=1.0, diverged=(-1, -1)):
        return {"val": np.full(S, val), "test": np.full(S, test), "diverged": np.array(diverged)}

    finals = {
        "tanh": {3e-4: final(0.1), 1e-3: final(1.0), 3e-3: final(1.0, test=0.01)},
        "relu": {3e-4: final(1.0), 1e-3: final(0.05, diverged=(4, -1)), 3e-3: final(0.5)},
    }
    scores = d._scores(finals)  # noqa: SLF001
    assert math.isnan(scores["relu"][1e-3])
    cfg = dataclasses.replace(SMOKE, activations=("tanh", "relu"), lr_grid=(3e-4, 3e-3))
    decisions = d._decide(cfg, finals)  # noqa: SLF001
    assert decisions["tanh"].pick == 3e-4 and decisions["relu"].pick == 3e-3


def test_gradient_ratios_at_every_reported_epoch(results):
    """``log10_grad_ratio_E``: layer 1 over layer ``depth`` (the last hidden one), per seed at
    epoch E, from the table (to 1e-6 in log10: the summary takes log10 of the float32 trace,
    whose last bit depends on the CPU's log10 kernel)."""
    cfg, m = SMOKE, results.metrics
    g = m[(m.metric == "grad/weight_mean_abs") & np.isclose(m.lr, cfg.lr)]
    for row in results.summary["table"]:
        mine = g[g.activation == row["activation"]]
        for epoch in cfg.grad_epochs:
            at = mine[mine.step == epoch]
            first = at[at.layer == 1].sort_values("seed").value.to_numpy()
            last = at[at.layer == cfg.depth].sort_values("seed").value.to_numpy()
            ratio = np.log10(first) - np.log10(last)
            assert row[f"log10_grad_ratio_{epoch}"]["mean"] == pytest.approx(ratio.mean(), abs=1e-6)


def test_spread_and_unit_summaries_recomputed_from_the_arrays(results):
    """A unit's spread is its std over the grid inputs, averaged over units; the unit
    fractions are averaged over layers per seed; the worst layer (1-based) has the highest
    seed-mean fraction."""
    cfg = SMOKE
    hidden, units = results.arrays["hidden"], results.arrays["units"]
    for a, row in enumerate(results.summary["table"]):
        members = slice(a * cfg.seeds, (a + 1) * cfg.seeds)
        for tag, e in (("start", 0), ("end", -1)):
            for j, layer in enumerate(cfg.hidden_layers):
                h = hidden[members, e, j]  # (seed, input, unit)
                spread = [
                    np.mean([np.std(h[s, :, u]) for u in range(cfg.width)])
                    for s in range(cfg.seeds)
                ]
                assert row[f"spread_{tag}"][str(layer)]["mean"] == pytest.approx(np.mean(spread))
            for k, key in enumerate(d.SNAPSHOT_METRICS):
                name = key.split("/")[1]
                u = units[members, e, :, k]  # (seed, layer)
                worst = row[f"{name}_{tag}_worst_layer"]
                if np.isnan(u).all():
                    assert worst is None and math.isnan(row[f"{name}_{tag}"]["mean"])
                    continue
                per_seed = u.mean(axis=1)  # the interval is over seeds
                half = st.t.ppf(0.975, cfg.seeds - 1) * per_seed.std(ddof=1) / math.sqrt(cfg.seeds)
                ci = row[f"{name}_{tag}"]
                assert ci["n"] == cfg.seeds and ci["mean"] == pytest.approx(per_seed.mean())
                assert ci["hi"] == pytest.approx(per_seed.mean() + half, rel=1e-6)  # float32 data
                per_layer = u.mean(axis=0)
                assert worst["layer"] == int(np.argmax(per_layer)) + 1
                assert worst["fraction"] == pytest.approx(per_layer.max())


# ---------------------------------------------------------------------------- report
from actlab.experiments.deep_mlp import report as rep  # noqa: E402
from actlab.report.format import ci, num, ratio_ci  # noqa: E402
from actlab.stats import mean_ci  # noqa: E402


def _row(report: str, activation: str, after: str) -> str:
    """The table row of ``activation`` in the first table after the heading ``after``."""
    section = report[report.index(after) :]
    return next(line for line in section.splitlines() if line.startswith(f"| {activation} |"))


def _mse_cell(values) -> str:
    """mean [t-interval] of an MSE from SciPy's t quantile, the lower bound cut at 0 (0†)."""
    values = np.asarray(values, dtype=np.float64)
    mean, n = values.mean(), len(values)
    half = st.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
    if mean - half < 0:
        return f"{num(mean)} [0†, {num(mean + half)}]"
    return ci({"mean": mean, "lo": mean - half, "hi": mean + half})  # the one number format


def test_report_numbers_equal_the_metrics_table(results):
    """Every table cell is recomputed here from the tidy metrics, not from the summary; an
    MSE's interval that the t formula extends below 0 is shown cut at 0 and explained."""
    cfg, m = SMOKE, results.metrics
    report = SPEC.report(results)
    final = m[m.step == cfg.epochs]
    cut = False
    for act in cfg.activations:
        row = _row(report, act, "## How well each activation fits")
        for metric in ("train/mse", "test/mse", "truth/mse"):
            values = final[(final.activation == act) & (final.lr == cfg.lr)]
            values = values[values.metric == metric].sort_values("seed").value
            assert f" {_mse_cell(values)} " in row, (metric, row)
            cut = cut or "0†" in _mse_cell(values)
    fit = report[report.index("## How well") : report.index("## Converged")]
    assert (rep.CUT_NOTE in fit) == cut
    assert "[-" not in _row(report, "relu", "## How well").split("|")[2]
    for act in cfg.activations:
        # The gradient ratio at the first step: layer 1 over layer `depth`, geometric mean.
        g = m[(m.metric == "grad/weight_mean_abs") & (m.step == 0) & (m.activation == act)]
        g = g[g.lr == cfg.lr]
        first = g[g.layer == 1].sort_values("seed").value.to_numpy()
        last = g[g.layer == cfg.depth].sort_values("seed").value.to_numpy()
        stat = mean_ci(np.log10(first) - np.log10(last))
        cell = ratio_ci(stat)
        assert cell in _row(report, act, "## Gradient flow through depth")


def test_truth_error_is_the_mse_of_the_final_fit_against_sin(results):
    m = results.metrics
    x = results.arrays["x_grid"]
    for member in range(len(SMOKE.activations) * SMOKE.seeds):
        a, seed = divmod(member, SMOKE.seeds)
        row = m[
            (m.metric == "truth/mse")
            & (m.activation == SMOKE.activations[a])
            & (m.seed == seed)
            & (m.lr == SMOKE.lr)
        ]
        expected = np.mean((results.arrays["fits"][member, -1] - np.sin(x)) ** 2)
        assert row.value.item() == pytest.approx(expected, rel=1e-5)


def test_fit_verdicts_use_the_truth_and_the_draws_floor_not_the_training_mse():
    """fit_verdict(truth, excess, s^2): the training MSE is not an argument at all (every fit
    is expected below s^2 on its own points); underfits from the error to the truth, at / above
    the floor from the held-out excess against CLOSE * s^2, with the whole interval."""

    def st(mean, half):
        return {"mean": mean, "lo": mean - half, "hi": mean + half}

    s2 = 0.01
    assert rep.CLOSE == 0.1
    assert rep.fit_verdict(st(0.05, 0.01), st(0.05, 0.01), s2).startswith("underfits")
    assert rep.fit_verdict(st(0.0005, 0.0002), st(0.0004, 0.0003), s2) == "at the floor"
    assert rep.fit_verdict(st(0.004, 0.001), st(0.004, 0.001), s2).startswith("above the floor")
    # The excess interval straddles 0.1 s^2 = 0.001.
    assert rep.fit_verdict(st(0.001, 0.0005), st(0.001, 0.0005), s2).startswith("undecided")
    # One seed: no interval, the mean decides.
    assert rep.fit_verdict(st(0.0005, math.nan), st(0.0004, math.nan), s2) == "at the floor"
    assert rep.fit_verdict(st(math.nan, math.nan), st(0.0, 0.0), s2) == "diverged"


def test_floors_and_excess_are_the_draws_own(results):
    """The draw's floors are the MSE of sin on its labels (from the data written out here); each
    activation's 'above the floor' is its per-seed held-out MSE minus the test floor."""
    data = _data(SMOKE)
    s = results.summary
    for split in ("train", "test"):
        x, y = data[f"x_{split}"].double().numpy(), data[f"y_{split}"].double().numpy()
        assert s[f"{split}_floor"] == pytest.approx(np.mean((y - np.sin(x)) ** 2), rel=1e-12)
    assert s["test_floor"] != s["noise_floor"]  # one finite draw is not exactly s^2
    for row in s["table"]:
        for tag, lr in (("fixed", SMOKE.lr), ("tuned", row["best_lr"])):
            test = _final(results, "test/mse", row["activation"], lr)
            excess = mean_ci(test.astype(np.float64) - s["test_floor"])
            assert row[f"{tag}_excess"]["mean"] == pytest.approx(excess["mean"], abs=1e-12)
            assert row[f"{tag}_excess"]["hi"] == pytest.approx(excess["hi"], abs=1e-12)


def test_init_spread_factor_is_sqrt_width_var_w():
    """torch's default U(+-1/sqrt(fan_in)) has Var(w) = 1/(3 fan_in), hence sqrt(1/3) per layer
    on square hidden layers; xavier U(+-sqrt(6/(2 width))) has 1/width, hence 1."""
    cfg = dataclasses.replace(SMOKE, width=64, depth=6)
    out = d.init_spread_factor(cfg)
    assert out["init_weight_var"] == pytest.approx(1 / (3 * 64), rel=0.03)
    assert out["init_spread_factor"] == pytest.approx(1 / math.sqrt(3), rel=0.02)
    out = d.init_spread_factor(dataclasses.replace(cfg, init="xavier"))
    assert out["init_spread_factor"] == pytest.approx(1.0, rel=0.02)
    assert math.isnan(
        d.init_spread_factor(dataclasses.replace(cfg, depth=1, hidden_layers=(1,)))[
            "init_spread_factor"
        ]
    )


def test_identity_spread_shrinks_by_the_predicted_factor():
    """The prediction against a measurement made here: plain nn.Sequential identity networks
    with torch's default init, spread over x of a unit from layer 1 to layer 9, geometric per
    layer, averaged over 8 seeds, is within 15% of sqrt(1/3)."""
    cfg = dataclasses.replace(SMOKE, width=64, depth=9, activations=("identity",))
    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float64)[:, None]
    logs = []
    for seed in range(8):
        net = _initial_sequential(cfg, "identity", seed).double()
        h, spreads = x, []
        for m in net:
            h = m(h)
            if isinstance(m, nn.Identity):
                spreads.append(h.std(dim=0, unbiased=False).mean().item())
        logs.append(math.log(spreads[-1] / spreads[0]) / (cfg.depth - 1))
    assert math.exp(np.mean(logs)) == pytest.approx(1 / math.sqrt(3), rel=0.15)


def test_report_says_what_the_intervals_measure_and_the_draws_floor(results):
    text = SPEC.report(results)
    assert "Every seed trains on the same data draw" in text
    assert "spread due to initialisation, not the uncertainty due to the data" in text
    assert f"scores {rep.num(results.summary['test_floor'])} on this run's test draw" in text
    assert "how much weaker the learning signal is" not in text
    assert r"\delta_l h_{l-1}^\top" in text and "Adam divides each weight's step" in text
    factor = rep.num(results.summary["init_spread_factor"], 3)
    assert f"predicts $\\rho = {factor}$ per layer" in text


def test_fit_verdict_column_follows_hand_set_summaries(results):
    """Set the truth errors and excesses by hand: each row carries its own verdict, and the
    underfitting sentence names exactly the activation whose error to the truth is above s^2."""
    import copy

    summary = copy.deepcopy(results.summary)
    s2 = summary["noise_floor"]
    hand = {  # truth, excess (as fractions of s^2)
        "identity": (3.0, 3.0),
        "tanh": (0.01, 0.02),
        "relu": (0.5, 0.5),
    }
    for row in summary["table"]:
        t, e = hand[row["activation"]]
        row["fixed_truth"] = {"mean": t * s2, "lo": t * s2 * 0.9, "hi": t * s2 * 1.1, "n": 2}
        row["fixed_excess"] = {"mean": e * s2, "lo": e * s2 * 0.9, "hi": e * s2 * 1.1, "n": 2}
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    assert _row(text, "identity", "## How well").endswith(
        "| underfits: error to the truth 3× $s^2$ |"
    )
    assert _row(text, "tanh", "## How well").endswith("| at the floor |")
    assert _row(text, "relu", "## How well").endswith("| above the floor by 0.5× $s^2$ |")
    assert "identity misses the true function by more than the noise variance" in text


def test_gradient_verdicts_use_the_whole_interval():
    def st(mean, half):
        return {"mean": mean, "lo": mean - half, "hi": mean + half}

    assert rep.gradient_verdict(st(-3.0, 0.5)) == "vanishes"  # 1/1000, CI below 1/10
    assert rep.gradient_verdict(st(-0.5, 0.3)) == "does not vanish"
    assert rep.gradient_verdict(st(-1.1, 0.3)) == "undecided"  # straddles 1/10
    assert rep.gradient_verdict(st(-2.0, math.nan)) == "vanishes"  # one seed: the mean only


def test_report_follows_the_numbers(results):
    """Make relu's errors tiny in a copy of the results: the report must crown it."""
    m = results.metrics.copy()
    mask = (m.activation == "relu") & m.metric.isin(["truth/mse", "train/mse", "test/mse"])
    m.loc[mask, "value"] = m.loc[mask, "value"] * 1e-6
    fake = dataclasses.replace(results, metrics=m)
    text = SPEC.report(fake)
    assert "the lowest error to the true function is relu's" in text
    m.loc[mask, "value"] = m.loc[mask, "value"] * 1e12
    fake = dataclasses.replace(results, metrics=m)
    assert "the lowest error to the true function is relu's" not in SPEC.report(fake)


# ---------------------------------------------------------------------------- figures
@pytest.fixture(scope="module")
def figures(results):
    return SPEC.figures(results)


def test_figures_are_all_there(figures):
    assert set(figures) == {
        "learned_functions",
        "loss_curves",
        "gradient_flow",
        "hidden_activations",
        "hidden_activations_start",
        "unit_health",
        "training",
    }


def test_gradient_flow_axis_runs_input_to_output(results, figures):
    fig = figures["gradient_flow"]
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "1\ninput" and labels[-1] == f"{SMOKE.depth + 1}\noutput"
    # The relu line at the first step is the geometric mean over seeds, layer 1 first.
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "relu")
    a = SMOKE.activations.index("relu")
    g = results.arrays["grad_snapshots"][a * SMOKE.seeds : (a + 1) * SMOKE.seeds, 0]
    np.testing.assert_allclose(line.get_xdata(), np.arange(1, SMOKE.depth + 2))
    np.testing.assert_allclose(line.get_ydata(), 10 ** np.log10(g).mean(axis=0), rtol=1e-6)


def test_training_animation_has_one_frame_per_recorded_epoch(results, figures):
    anim = figures["training"]
    assert anim.n_frames == min(30, len(results.coords["fits/frame"]))
    frames = anim.frames()
    assert len({f.shape for f in frames}) == 1
    # Training moves the fits: the first and the last frame differ, two renders of one agree.
    assert not np.array_equal(frames[0], frames[-1])
    np.testing.assert_array_equal(anim.draw(anim.n_frames - 1), frames[-1])


def test_vanishing_sentence_follows_the_summary(results):
    """Set the ratios by hand: the verdict sentence must put each activation in its group."""
    import copy

    summary = copy.deepcopy(results.summary)
    verdicts = {"identity": -3.0, "tanh": -0.2, "relu": -1.0}  # vanishes, not, undecided
    for row in summary["table"]:
        mean = verdicts[row["activation"]]
        row["log10_grad_ratio_0"] = {"mean": mean, "lo": mean - 0.3, "hi": mean + 0.3}
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    assert (
        "At the first step, layer 1's full-batch weight gradient is more than 10× smaller than "
        "layer 3's (the whole 95% interval below 1/10) for identity;" in text
    )
    assert "it is less than 10× smaller (the whole interval above 1/10) for tanh." in text
    assert "For relu the interval of $\\kappa$ straddles 1/10" in text
    # The same for the per-example backward signal, set the other way round.
    for row in summary["table"]:
        mean = {"identity": -0.2, "tanh": -1.0, "relu": -3.0}[row["activation"]]
        row["log10_delta_ratio"] = {"mean": mean, "lo": mean - 0.3, "hi": mean + 0.3}
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    assert (
        "At initialisation, the per-example backward signal at layer 1 is more than 10× weaker "
        "than at layer 3 (the whole 95% interval below 1/10) for relu; it is less than 10× "
        "weaker (the whole interval above 1/10) for identity." in text
    )
    assert "For tanh the interval of $\\delta_1/\\delta_{3}$ straddles 1/10" in text


def test_figures_survive_nan_from_a_diverged_member(results):
    """A diverged member leaves NaN in the hidden array and the loss curves: the figures are
    still drawn, NaN shown grey and counted, never plotted as a number."""
    from actlab.experiments.deep_mlp import figures as plots

    hidden = results.arrays["hidden"].copy()
    hidden[0, -1, :, :5] = np.nan  # seed 0 of the first activation, last epoch, 5 inputs
    m = results.metrics.copy()
    m.loc[(m.member == 0) & (m.step > 3) & m.metric.str.endswith("mse"), "value"] = np.nan
    broken = dataclasses.replace(results, arrays={**results.arrays, "hidden": hidden}, metrics=m)
    fig = plots.plot_hidden_activations(broken)
    n_bad = 5 * SMOKE.width * len(SMOKE.hidden_layers)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert f"{n_bad} NaN/inf left out" in texts
    fig = plots.plot_loss_curves(broken)
    for ax in fig.axes:
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            assert np.isfinite(y).all()  # the other seed carries the mean


# ---------------------------------------------------------------------------- exercises
from actlab.experiments.deep_mlp import exercises as stubs  # noqa: E402
from actlab.experiments.deep_mlp import solutions  # noqa: E402
from actlab.report.exercises import exercises_markdown  # noqa: E402


def test_report_ends_with_the_exercises(results):
    text = SPEC.report(results)
    assert text.rstrip().endswith(exercises_markdown(stubs.EXERCISES).rstrip())
    coding = [e for e in stubs.EXERCISES if e.kind == "coding"]
    assert len(stubs.EXERCISES) >= 2 and coding
    for ex in coding:  # every coding exercise has a stub that raises and a solution
        name = ex.function.split(":")[1]
        assert callable(getattr(solutions, name))
        assert getattr(stubs, name).__doc__


def _numpy_spread_factor(net, x):
    """The spread factor written out in NumPy from the modules' weights (identity / tanh)."""
    h = x.double().numpy()
    spreads = []
    for module in list(net)[:-1]:
        if isinstance(module, nn.Linear):
            w = module.weight.detach().double().numpy()
            b = module.bias.detach().double().numpy()
            h = h @ w.T + b
        else:
            h = np.tanh(h) if isinstance(module, nn.Tanh) else h
            spreads.append(h.std(axis=0).mean())
    return (spreads[-1] / spreads[0]) ** (1 / (len(spreads) - 1))


@pytest.mark.parametrize("act", ["identity", "tanh"])
def test_spread_factor_solution_against_numpy(act):
    cfg = dataclasses.replace(SMOKE, width=64, depth=10, hidden_layers=(1,))
    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float64)[:, None]
    net = _initial_sequential(cfg, act, 3).double()
    got = solutions.spread_factor(net, x)
    assert got == pytest.approx(_numpy_spread_factor(net, x), rel=1e-9)
    if act == "identity":  # the prediction sqrt(width Var(w)) = sqrt(1/3), to init noise
        assert got == pytest.approx(1 / math.sqrt(3), rel=0.2)
    with pytest.raises(NotImplementedError):
        stubs.spread_factor(net, x)


def test_adam_first_step_solution_against_torch_optim():
    g = torch.tensor([1e-2, -1e-4, 3.0, 1e-9, 0.0], dtype=torch.float64)
    p = torch.zeros_like(g, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-3, eps=1e-8)
    p.grad = g.clone()
    opt.step()
    step = solutions.adam_first_step(g, 1e-3, 1e-8)
    torch.testing.assert_close(step, p.detach(), rtol=1e-12, atol=1e-15)
    # A 100x smaller gradient, the same step (the exercise's point).
    assert step[0].item() == pytest.approx(-1e-3, rel=1e-5)
    assert step[1].item() == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(NotImplementedError):
        stubs.adam_first_step(g, 1e-3)


def test_leader_change_is_called_misleading_only_when_the_paired_test_separates(results):
    """Hand-set errors to the truth: relu leads at the shared rate, tanh at the tuned rates;
    the shared-rate ranking is called misleading only when relu's tuned errors are
    significantly worse than tanh's seed by seed, else 'within noise'."""
    best = {r["activation"]: r["best_lr"] for r in results.summary["table"]}
    assert not math.isclose(best["relu"], SMOKE.lr) and not math.isclose(best["tanh"], SMOKE.lr)

    def with_truth(relu_tuned):
        m = results.metrics.copy()
        truth = m.metric == "truth/mse"
        m.loc[truth, "value"] = 1.0 + 0.01 * m.loc[truth, "seed"]
        for act, lr, values in (
            ("relu", SMOKE.lr, [1e-4, 1.1e-4]),
            ("tanh", best["tanh"], [1e-3, 1.1e-3]),
            ("relu", best["relu"], relu_tuned),
        ):
            sel = truth & (m.activation == act) & np.isclose(m.lr, lr)
            m.loc[sel, "value"] = np.array(values)[m.loc[sel, "seed"].to_numpy()]
        return SPEC.report(dataclasses.replace(results, metrics=m))

    text = with_truth([0.5, 0.51])
    assert "The leader changes from relu (shared rate) to tanh (tuned rates)" in text
    assert "significantly better than relu" in text
    text = with_truth([1e-3, 0.9])  # overlapping with tanh's at two seeds
    assert "The nominal leader changes from relu (shared rate) to tanh (tuned rates)" in text
    assert "relu is within noise of tanh" in text


def test_unit_health_names_lines_that_hide_one_another():
    """Hand-made lines: an all-zero panel says so; overlapping lines (within 1% of the axis)
    are named per epoch, distinct ones are not."""
    from actlab.experiments.deep_mlp import figures as plots

    zero = np.zeros(4)
    notes = plots._hidden_lines(
        {("tanh", 0): zero, ("sigmoid", 1): zero}, ["sigmoid", "tanh"], [0, 9]
    )  # noqa: SLF001
    assert notes[0] == "0 in every layer for sigmoid, tanh"
    lines = {
        ("relu", 0): np.array([0.1, 0.5, 0.5]),
        ("leaky_relu", 0): np.array([0.1, 0.505, 0.5]),
        ("gelu", 0): np.array([0.1, 0.3, 0.5]),
        ("relu", 1): np.array([0.2, 0.2, 0.2]),
        ("gelu", 1): np.array([0.0, 0.0, 0.0]),
    }
    notes = plots._hidden_lines(lines, ["relu", "leaky_relu", "gelu"], [0, 500])  # noqa: SLF001
    assert notes == ["relu ≈ leaky_relu at initialisation (lines overlap)"]


# ---------------------------------------------------------------------------- convergence
def test_convergence_change_is_recomputed_from_the_table(results):
    """Per activation and rate: per seed MSE(epochs) / MSE(epochs - w) - 1 with w = 10% of the
    epochs (at least 1), recomputed from the tidy table with a SciPy t-interval."""
    cfg, m = SMOKE, results.metrics
    w = max(1, round(0.1 * cfg.epochs))
    assert results.summary["tail_epochs"] == w
    assert results.summary["converge_from"] == cfg.epochs - w
    for row in results.summary["table"]:
        act = row["activation"]
        for tag, lr in (("fixed", cfg.lr), ("tuned", row["best_lr"])):
            for split in ("test", "train"):
                sel = (m.metric == f"{split}/mse") & (m.activation == act) & np.isclose(m.lr, lr)
                end = m[sel & (m.step == cfg.epochs)].sort_values("seed").value.to_numpy()
                then = m[sel & (m.step == cfg.epochs - w)].sort_values("seed").value.to_numpy()
                change = end / then - 1
                half = st.t.ppf(0.975, len(change) - 1) * change.std(ddof=1)
                half /= math.sqrt(len(change))
                got = row[f"converge_{tag}"][split]
                assert got["n"] == cfg.seeds
                assert got["mean"] == pytest.approx(change.mean(), rel=1e-9, abs=1e-12)
                assert got["hi"] == pytest.approx(change.mean() + half, rel=1e-9, abs=1e-12)


def test_convergence_verdict_uses_the_whole_interval():
    def ch(mean, half):
        return {"mean": mean, "lo": mean - half, "hi": mean + half}

    flat = 0.05
    assert rep.convergence_verdict(ch(-0.01, 0.02), flat) == "converged"
    assert rep.convergence_verdict(ch(-0.20, 0.05), flat) == "still improving"
    assert rep.convergence_verdict(ch(0.20, 0.05), flat) == "rising"
    assert rep.convergence_verdict(ch(-0.04, 0.03), flat) == "undecided"  # reaches -7%
    assert rep.convergence_verdict(ch(-0.10, math.nan), flat) == "still improving"  # one seed
    assert rep.convergence_verdict(ch(math.nan, math.nan), flat).startswith("unknown")


def test_convergence_section_follows_hand_set_summaries(results):
    """Hand-set changes: identity still improving, tanh converged, relu undecided; the table
    rows carry the verdicts and the sentences name exactly those activations."""
    import copy

    summary = copy.deepcopy(results.summary)

    def ch(mean, half):
        return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": 2}

    hand = {"identity": ch(-0.3, 0.05), "tanh": ch(0.001, 0.01), "relu": ch(-0.04, 0.05)}
    for row in summary["table"]:
        c = hand[row["activation"]]
        row["converge_fixed"] = {"test": c, "train": ch(-0.5, 0.1)}
        row["converge_tuned"] = {"test": ch(0.0, 0.01), "train": ch(0.0, 0.01)}
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    section = text.split("## Converged, or out of epochs?")[1].split("\n## ")[0]
    assert "| identity | −30% [−35%, −25%] | −50% [−60%, −40%] | still improving |" in section
    assert _row(section, "tanh", "| activation").split("|")[4].strip() == "converged"
    assert _row(section, "relu", "| activation").split("|")[4].strip() == "undecided"
    assert "identity was still improving at the end" in section
    assert "At the shared rate tanh has converged" in section
    assert "For relu the interval straddles a limit" in section
    # Every activation converged: no 'still improving' sentence at all.
    for row in summary["table"]:
        row["converge_fixed"]["test"] = ch(0.0, 0.01)
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    section = text.split("## Converged, or out of epochs?")[1].split("\n## ")[0]
    assert "still improving at the end" not in section
    assert "identity, tanh and relu have converged" in section


# ---------------------------------------------------------------------------- terms, notation
def test_diverged_seeds_get_a_wilson_interval(results):
    """A count of diverged seeds is a proportion: the Wilson interval (against SciPy's), never
    a t-interval."""
    import copy

    summary = copy.deepcopy(results.summary)
    summary["table"][0]["fixed_diverged"] = 1
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    ref = st.binomtest(1, SMOKE.seeds).proportion_ci(method="wilson")
    expected = (
        f"1 of {SMOKE.seeds} seeds diverged, [Wilson interval](#term-wilson-interval) "
        f"{rep.pct(ref.low)} to {rep.pct(ref.high)}"
    )
    assert expected in _row(text, SMOKE.activations[0], "## How well")


def test_report_uses_the_tutorials_notation_and_links_its_terms(results):
    """Every symbol has its one meaning (noise xi, not e; kappa, rho, |theta|, B, m_t, v_t),
    the glossary terms are linked, and the t-interval, the paired test and the geometric mean
    are not defined again here (no comparison here is unpaired, so Welch's test is not used)."""
    from actlab.report.notation import TERMS, misplaced_symbols

    text = SPEC.report(results)
    assert misplaced_symbols(text, "deep-mlp") == []
    assert r"$y = \sin x + \xi$" in text and r"\sin x + e$" not in text
    for symbol in (r"$\kappa$", r"$\rho", r"$|\theta|$", "U(-B, B)", r"$\hat m_1", "$m_0"):
        assert symbol in text, symbol
    for key in ("default-init", "xavier-init", "he-init", "noise-floor", "held-out",
                "t-interval", "paired", "geometric-mean", "dead", "inactive", "saturated",
                "dormant", "seed", "ensemble"):  # fmt: skip
        assert key in TERMS and f"](#term-{key})" in text, key
    for redefinition in ("does not assume equal variances", "t₀.₉₇₅", "raised back to a ratio"):
        assert redefinition not in text
    assert "Welch" not in text and "term-welch" not in text
    assert "Every seed trains on the same data draw" in text  # what the intervals measure


def test_unit_health_names_each_activations_notion():
    """relu is counted as dead (output exactly 0), leaky_relu and gelu as inactive (z < 0),
    sigmoid as neither; the figure's first panel says which, never 'z < 0' for dead; the
    report uses the same words per activation; an all-zero saturated panel says so in the
    panel (large) and in the report."""
    from actlab.experiments.deep_mlp import figures as plots

    cfg = dataclasses.replace(
        SMOKE, activations=("relu", "leaky_relu", "gelu", "sigmoid"), seeds=2, epochs=4,
        depth=3, snapshot_epochs=(0, 4), grad_epochs=(0,), lr_extend=0, frame_every=2,
    )  # fmt: skip
    res = d.run(cfg)
    kinds = {r["activation"]: r["off_kind"] for r in res.summary["table"]}
    assert kinds == {"relu": "dead", "leaky_relu": "inactive", "gelu": "inactive", "sigmoid": None}
    fig = plots.plot_unit_health(res)
    off = fig.axes[0]
    assert "$z < 0$" not in off.get_title() and "dead or inactive" in off.get_title()
    notes = "\n".join(t.get_text() for t in off.texts)
    assert "dead (output exactly 0): relu" in notes
    assert "inactive (pre-activation $z < 0$): leaky_relu, gelu" in notes
    text = SPEC.report(res)
    assert "dead for relu; inactive for leaky_relu and gelu; sigmoid has neither" in text
    facts = text.split("Measured by the probes")[1].split("\n\n")[0]
    assert "dead or inactive" not in facts
    for act in ("leaky_relu", "gelu"):
        assert f"{act}: " in facts and " dead " not in facts.split(f"{act}: ")[1].split(".")[0]
    sat = fig.axes[1]
    assert "(unit, input) pairs" in sat.get_title()
    pairs = d.SNAPSHOT_METRICS.index("act/saturated_pair_fraction")
    assert np.allclose(res.arrays["units"][-2:, :, :, pairs], 0)  # sigmoid's seeds: none
    (note,) = sat.texts
    assert note.get_text().startswith("0 in every layer for sigmoid")
    assert "units saturated on every input:\nnone for sigmoid" in note.get_text()
    assert note.get_fontsize() >= 9 and note.get_position() == (0.5, 0.5)
    assert "No sigmoid unit was saturated on every input in any layer" in text
    assert "No (unit, input) pair of sigmoid was in the saturated band" in text
    assert "the middle panel is zero" in text


def test_zero_sentence_only_when_every_line_is_zero(results):
    """Hand-set summaries: with no tanh unit saturated on every input and no (unit, input) pair
    in the band, the report says the middle panel is zero; with pairs in the band in layer 2 it
    does not, and it says the saturation is partial."""
    import copy

    summary = copy.deepcopy(results.summary)
    row = next(r for r in summary["table"] if r["activation"] == "tanh")
    zero = {"mean": 0.0, "lo": 0.0, "hi": 0.0, "n": 2}
    for key in ("saturated_fraction", "saturated_pair_fraction"):
        row[f"{key}_start"] = row[f"{key}_end"] = dict(zero)
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    assert "No tanh unit was saturated on every input in any layer" in text
    assert "the middle panel is zero" in text and "Saturation here is partial" not in text
    row["saturated_pair_fraction_end"] = {"mean": 0.2, "lo": 0.1, "hi": 0.3, "n": 2}
    row["saturated_pair_fraction_end_worst_layer"] = {"layer": 2, "fraction": 0.4}
    text = SPEC.report(dataclasses.replace(results, summary=summary))
    assert "middle panel is zero" not in text
    assert (
        "tanh: 0% of (unit, input) pairs in the saturated band at initialisation, 20% after 20 "
        "epochs (most in layer 2: 40%)" in text
    )
    assert "No tanh unit was saturated on every input" in text
    assert "Saturation here is partial" in text


def test_saturated_pair_share_is_recomputed_from_the_hidden_outputs(results):
    """The share of (unit, input) pairs with |tanh| > 0.99, per stored layer and epoch, from
    the hidden outputs (themselves checked against a plain nn.Sequential); NaN for relu."""
    cfg = SMOKE
    k = d.SNAPSHOT_METRICS.index("act/saturated_pair_fraction")
    hidden, units = results.arrays["hidden"], results.arrays["units"]
    for act in ("tanh", "relu"):
        for seed in range(cfg.seeds):
            i = _fixed_index(cfg, act, seed)
            for j, layer in enumerate(cfg.hidden_layers):
                got = units[i, :, layer - 1, k]
                if act == "relu":
                    assert np.isnan(got).all()
                    continue
                h = hidden[i, :, j]  # epoch, input, unit
                lo = (np.abs(h) > 0.99 + 1e-6).mean(axis=(1, 2))
                hi = (np.abs(h) > 0.99 - 1e-6).mean(axis=(1, 2))
                assert np.all((lo <= got) & (got <= hi)), (act, seed, layer, got, lo, hi)


def test_training_animation_has_a_reading_guide_with_computed_numbers(results):
    """The guide says how many frames, at what pace, which layer and how many units; with more
    recorded epochs than the GIF shows, it says they are spread (not 'every 10 epochs')."""
    text = SPEC.report(results)
    guide = text.split("figures/training.gif)")[1].split("\n## ")[0]
    assert f"one frame every {SMOKE.frame_every} epochs" in guide
    assert f"all {SMOKE.width} units of hidden layer {SMOKE.depth} (the last)" in guide
    assert "Top row" in guide and "Bottom row" in guide and "Watch" in guide
    coords = {**results.coords, "fits/frame": list(range(0, 501, 10))}
    guide = SPEC.report(dataclasses.replace(results, coords=coords)).split("training.gif)")[1]
    assert "30 frames spread evenly over epochs 0 to 500 (about one every 17 epochs)" in guide
    assert d.ANIMATION_FRAMES == 30


def test_a_tuned_fit_hidden_under_the_shared_one_says_so(results):
    """Where the tuned mean fit lies on the shared-rate one (within 0.02), its legend entry
    says it is under the solid line; a visibly different tuned fit does not."""
    from actlab.experiments.deep_mlp import figures as plots

    a = SMOKE.activations.index("relu")
    rows = slice(a * SMOKE.seeds, (a + 1) * SMOKE.seeds)
    tuned = results.arrays["fits_best_lr"].copy()
    tuned[a] = results.arrays["fits"][rows, -1]  # the shared-rate fits, seed by seed
    same = dataclasses.replace(results, arrays={**results.arrays, "fits_best_lr": tuned})
    labels = [t.get_text() for t in plots.plot_learned_functions(same).axes[a].get_legend().texts]
    assert any("under the solid line" in t for t in labels), labels
    tuned[a] += 0.5
    moved = dataclasses.replace(results, arrays={**results.arrays, "fits_best_lr": tuned})
    labels = [t.get_text() for t in plots.plot_learned_functions(moved).axes[a].get_legend().texts]
    assert not any("under the solid line" in t for t in labels), labels


# ---------------------------------------------------------------------------- review fixes
from reference import torch_default_draw  # noqa: E402


def _float64_net(cfg, act, seed) -> nn.Sequential:
    """Seed ``seed``'s initial network in float64, from the reference draw."""
    layers: list[nn.Module] = []
    draw = torch_default_draw([1] + [cfg.width] * cfg.depth + [1], seed)
    for i, (w, b) in enumerate(draw):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers += [lin, TORCH_ACT[act]()] if i < len(draw) - 1 else [lin]
    return nn.Sequential(*layers).double()


def test_backward_signal_at_init_against_autograd_on_plain_networks(results):
    """Per member and hidden layer: the root mean square over units and training inputs of
    d y_hat_i / d z_l, recomputed with autograd on plain float64 nn.Sequential networks (the
    pre-activations captured by forward hooks on the Linear layers); the summary's
    log10 ratio of layer 1 to layer ``depth`` is its mean over seeds."""
    cfg = SMOKE
    x = _data(cfg)["x_train"].double()
    got = results.arrays["backward_signal_init"]  # member, layer
    assert got.shape == (len(cfg.activations) * cfg.seeds, cfg.depth)
    rows = {r["activation"]: r for r in results.summary["table"]}
    for a, act in enumerate(cfg.activations):
        logs = []
        for seed in range(cfg.seeds):
            net = _float64_net(cfg, act, seed)
            zs = []
            hooks = [
                m.register_forward_hook(lambda _m, _i, out, zs=zs: zs.append(out))
                for m in list(net)[:-1]
                if isinstance(m, nn.Linear)
            ]
            out = net(x)
            for h in hooks:
                h.remove()
            grads = torch.autograd.grad(out.sum(), zs)
            rms = np.array([g.pow(2).mean().sqrt().item() for g in grads])
            np.testing.assert_allclose(got[a * cfg.seeds + seed], rms, rtol=1e-6)
            logs.append(math.log10(rms[0] / rms[-1]))
        assert rows[act]["log10_delta_ratio"]["mean"] == pytest.approx(np.mean(logs), rel=1e-6)


def test_best_line_error_against_least_squares_and_its_closed_form():
    """The best straight line through sin on a grid (NumPy's polyfit) and, on a fine grid,
    the continuum value 1/2 - 3/pi^2 (the slope is 3/pi^2, the intercept 0)."""
    x = np.linspace(-math.pi, math.pi, 200)
    fit = np.polyval(np.polyfit(x, np.sin(x), 1), x)
    assert d.best_line_error(x) == pytest.approx(np.mean((fit - np.sin(x)) ** 2), rel=1e-10)
    fine = np.linspace(-math.pi, math.pi, 200_001)
    assert d.best_line_error(fine) == pytest.approx(0.5 - 3 / math.pi**2, rel=1e-4)


def _with(results, **rows_by_act):
    """A copy of ``results`` whose summary rows get the given entries, per activation."""
    import copy

    summary = copy.deepcopy(results.summary)
    for row in summary["table"]:
        row.update(copy.deepcopy(rows_by_act.get(row["activation"], {})))
    return dataclasses.replace(results, summary=summary)


def _stat(mean, half=None):
    half = abs(mean) * 0.05 if half is None else half
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": 5}


def test_identity_is_compared_with_the_best_straight_line(results):
    """Identity's error to the truth near the best line's: 'the limit of the model'; twice it:
    the factor and 'not yet reached'."""
    line = results.summary["best_line_truth"]
    text = SPEC.report(_with(results, identity={"fixed_truth": _stat(1.02 * line)}))
    assert "is that of the best straight line" in text
    assert "this is the limit of the model, not a failure of training" in text
    assert "#stacked-linear-layers-collapse" in text
    text = SPEC.report(_with(results, identity={"fixed_truth": _stat(2.0 * line)}))
    assert "is 2× that of the best straight line" in text
    assert "has not yet reached the best" in text


def _last_drop_loop(metrics, act, lr, epochs, w, flat):
    """The latest epoch e, over the seeds, with MSE(e) / MSE(e - w) - 1 < -flat; plain loops."""
    best = None
    rows = metrics[(metrics.metric == "test/mse") & (metrics.activation == act)]
    rows = rows[np.isclose(rows.lr, lr)]
    for _seed, part in rows.groupby("seed"):
        value = dict(zip(part.step, part.value, strict=True))
        for e in range(w, epochs + 1):
            if value[e] / value[e - w] - 1 < -flat and (best is None or e > best):
                best = e
    return best


def test_last_drop_against_a_loop(results):
    cfg = SMOKE
    w = d.tail_epochs(cfg)
    for row in results.summary["table"]:
        act = row["activation"]
        expected = _last_drop_loop(results.metrics, act, cfg.lr, cfg.epochs, w, d.FLAT)
        assert row["converge_fixed"]["last_drop"] == expected
    # A hand-made series: one seed falls 10% between epochs 3 and 5, then stays flat.
    import pandas as pd

    vals = [1.0, 1.0, 1.0, 1.0, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    frame = pd.DataFrame(
        {"metric": "test/mse", "activation": "tanh", "lr": 1e-3, "seed": 0,
         "step": np.arange(11), "value": vals}
    )  # fmt: skip
    small = dataclasses.replace(SMOKE, epochs=10, snapshot_epochs=(0,), grad_epochs=(0,))
    assert d.last_drop(small, frame, "tanh", 1e-3) == 5  # w = 1: 0.95 -> 0.9 is -5.3%
    frame["value"] = 1.0
    assert d.last_drop(small, frame, "tanh", 1e-3) is None


def test_a_converged_but_underfitting_activation_is_called_a_plateau(results):
    """Converged (flat) and underfitting: the plateau sentence with the last drop's epoch;
    at the floor: none; identity at the best straight line: none (it is the model's limit)."""
    s2 = results.summary["noise_floor"]
    flat = {"test": _stat(0.0, 0.01), "train": _stat(0.0, 0.01), "last_drop": 17}
    under = {"fixed_truth": _stat(5 * s2), "fixed_excess": _stat(5 * s2), "converge_fixed": flat}
    text = SPEC.report(_with(results, tanh=under))
    assert (
        "The held-out MSE of tanh is flat over the last 2 epochs, but its fit misses the truth "
        "by 5× $s^2$" in text
    )
    assert "as late as epoch 17 (latest over the seeds)" in text
    never = dict(under, converge_fixed=dict(flat, last_drop=None))
    assert "never fell by more than 5%" in SPEC.report(_with(results, tanh=never))
    old = {k: v for k, v in flat.items() if k != "last_drop"}  # an older run folder
    text = SPEC.report(_with(results, tanh=dict(under, converge_fixed=old)))
    assert "sits on a plateau, which a longer run may leave." in text
    assert "never fell" not in text
    good = dict(under, fixed_truth=_stat(0.01 * s2), fixed_excess=_stat(0.01 * s2))
    assert "sits on a plateau" not in SPEC.report(_with(results, tanh=good))
    line = results.summary["best_line_truth"]
    ident = dict(under, fixed_truth=_stat(line, 0.01 * line))
    text = SPEC.report(_with(results, identity=ident))
    assert "The held-out MSE of identity is flat" not in text
    far = _with(results, identity=dict(under, fixed_truth=_stat(3 * line, 0.01 * line)))
    assert "The held-out MSE of identity is flat" in SPEC.report(far)
    del far.summary["best_line_truth"]  # an older run folder: identity's limit unknown
    assert "The held-out MSE of identity is flat" not in SPEC.report(far)


def test_tuning_effect_follows_the_paired_test_on_the_truth_errors(results):
    """Tuned-rate truth errors set far below the shared-rate ones: 'lowered ... significantly';
    set inconsistently around them: 'by no more than noise'; checked against SciPy's paired
    test."""
    cfg, m = SMOKE, results.metrics.copy()
    rows = {r["activation"]: r for r in results.summary["table"]}
    moved = [a for a in cfg.activations if not math.isclose(rows[a]["best_lr"], cfg.lr)]
    assert moved
    act = moved[0]
    truth = (m.metric == "truth/mse") & (m.activation == act)
    shared_mask = truth & np.isclose(m.lr, cfg.lr)
    tuned_mask = truth & np.isclose(m.lr, rows[act]["best_lr"])
    shared, tuned = np.array([0.5, 0.51]), np.array([0.001, 0.0011])
    m.loc[shared_mask, "value"] = shared[m.loc[shared_mask, "seed"].to_numpy()]
    m.loc[tuned_mask, "value"] = tuned[m.loc[tuned_mask, "seed"].to_numpy()]
    assert st.ttest_rel(shared, tuned).pvalue < 0.05
    text = SPEC.report(dataclasses.replace(results, metrics=m))
    assert f"tuning lowered the error to the truth significantly for {act}" in text
    # Every moved activation's tuned errors on either side of its shared ones.
    for a in moved:
        on = (m.metric == "truth/mse") & (m.activation == a)
        sh, tu = on & np.isclose(m.lr, cfg.lr), on & np.isclose(m.lr, rows[a]["best_lr"])
        m.loc[sh, "value"] = shared[m.loc[sh, "seed"].to_numpy()]
        m.loc[tu, "value"] = tuned[::-1][m.loc[tu, "seed"].to_numpy()] * 500
    assert st.ttest_rel(shared, tuned[::-1] * 500).pvalue > 0.05
    text = SPEC.report(dataclasses.replace(results, metrics=m))
    assert f"changed the error to the truth by no more than noise for {rep._names(moved)}" in text


def test_mse_interval_is_cut_at_zero_only_below_zero():
    assert rep.mse_ci({"mean": 0.5, "lo": -0.1, "hi": 1.1}) == "0.5 [0†, 1.1]"
    assert rep.mse_ci({"mean": 0.5, "lo": 0.1, "hi": 0.9}) == "0.5 [0.1, 0.9]"
    assert rep.mse_ci({"mean": 0.5, "lo": math.nan, "hi": math.nan}) == "0.5"
    assert rep._cut_note(["| a | 0.5 [0†, 1.1] |"]) == [rep.CUT_NOTE, ""]
    assert rep._cut_note(["| a | 0.5 [0.1, 0.9] |"]) == []


def test_dead_units_of_the_worst_layer_as_a_count_with_its_wilson_interval(results):
    """k of n units (n = width x seeds) with the Wilson interval written out here."""
    worst = {"layer": 2, "fraction": 0.5625}  # 9 of 16
    text = SPEC.report(_with(results, relu={"off_fraction_start_worst_layer": worst}))
    n = SMOKE.width * SMOKE.seeds
    k, z = 9, st.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    expected = f"{k} of {n} over the 2 seeds, [Wilson interval](#term-wilson-interval) "
    expected += f"{rep.pct(centre - half)} to {rep.pct(centre + half)}"
    assert expected in text


def test_gradient_section_says_what_kappa_is_and_links_the_gradient_flow_chapter(results):
    """The full batch named, the per-example backward signal beside it, the forward link to
    the gradient-flow chapter's anchor (its title's slug), and the identity prediction
    rho^(depth - 1) said inside or outside the measured interval."""
    from markdown.extensions.toc import slugify

    from actlab.experiments.gradient_flow import SPEC as FLOW

    text = SPEC.report(results)
    grad = text[text.index("## Gradient flow") : text.index("## Inside")]
    assert "*full-batch* gradient" in grad and "per-example backward signal" in grad
    assert f"(#{slugify(FLOW.title, '-')})" in grad
    assert "a collapsed forward one" not in grad  # the old, wrong-way explanation
    assert "this factor makes $\\kappa$ *larger*" in grad
    s = results.summary
    predicted = (s["depth"] - 1) * math.log10(s["init_spread_factor"])
    inside = _with(results, identity={"log10_delta_ratio": _stat(predicted, 0.1)})
    assert "the prediction inside the measured interval" in SPEC.report(inside)
    outside = _with(results, identity={"log10_delta_ratio": _stat(predicted + 1.0, 0.1)})
    assert "the prediction below the measured interval" in SPEC.report(outside)
    outside = _with(results, identity={"log10_delta_ratio": _stat(predicted - 1.0, 0.1)})
    assert "the prediction above the measured interval" in SPEC.report(outside)
    # The last column is the summary's delta ratio of each activation.
    for row in s["table"]:
        cell = rep._ratio_ci(row["log10_delta_ratio"])
        assert _row(text, row["activation"], "## Gradient flow").endswith(f"| {cell} |")


def test_intro_names_what_is_shared_instead_of_claiming_the_activation_alone(results):
    text = SPEC.report(results)
    assert "differences come from the activation alone" not in text
    assert "same number of parameters" in text
    factor = rep.num(results.summary["init_spread_factor"], 3)
    assert f"$\\rho = {factor}$ per layer in a network of identity units" in text


def test_draw_sd_against_monte_carlo():
    """A fixed fit's excess over new test draws (NumPy, 20000 draws): its sd is
    2 s sqrt(mean(e^2) / n) and its mean is mean(e^2)."""
    rng = np.random.default_rng(0)
    n, s = 199, 0.1
    x = np.linspace(-math.pi, math.pi, n)
    fit = np.sin(x) + 0.03 * np.cos(3 * x)
    err = np.mean((fit - np.sin(x)) ** 2)
    noise = s * rng.standard_normal((20000, n))
    y = np.sin(x) + noise
    excess = np.mean((fit - y) ** 2, axis=1) - np.mean((np.sin(x) - y) ** 2, axis=1)
    assert excess.mean() == pytest.approx(err, rel=0.02)
    assert rep.draw_sd(err, s, n) == pytest.approx(excess.std(), rel=0.03)


def test_draw_sentence_follows_the_gap_to_the_limit(results):
    """An 'at the floor' fit far below the limit: the verdict is firm; one just below it:
    another draw could change it; underfitting fits are not listed."""
    s2, n = results.summary["noise_floor"], SMOKE.n_train - 1
    truth = _stat(0.002 * s2, 0.0001 * s2)
    sd = 2 * SMOKE.noise * math.sqrt(truth["mean"] / n)
    far = {"fixed_truth": truth, "fixed_excess": _stat(0.01 * s2, 0.001 * s2)}
    near = {"fixed_truth": truth, "fixed_excess": _stat(0.1 * s2 - sd, 0.001 * s2)}
    under = {"fixed_truth": _stat(5 * s2), "fixed_excess": _stat(5 * s2)}
    text = SPEC.report(_with(results, tanh=far, relu=near, identity=under))
    assert f"for tanh ({rep.num(sd, 2)}) the seed-mean excess lies more than two" in text
    assert f"for relu ({rep.num(sd, 2)}) it lies within two, so another draw could" in text
    assert "identity (" not in text[text.index("do not include the test draw") :][:600]
    assert "test points (exercise 4)" in text  # the exercise that derives the formula
    assert stubs.EXERCISES[3].title == "How much one test draw can move a verdict"
    assert r"$2s\sqrt{\text{error to the truth}/n}$" in stubs.EXERCISES[3].prompt


def test_parameter_count_and_the_training_floor_sentence(results):
    """|theta| against a plain nn.Sequential's parameters; the lowest training MSE's distance
    to the training draw's floor recomputed from the metrics."""
    net = _initial_sequential(SMOKE, "tanh", 0)
    assert results.summary["n_params"] == sum(p.numel() for p in net.parameters())
    m = results.metrics
    final = m[(m.metric == "train/mse") & (m.step == SMOKE.epochs) & np.isclose(m.lr, SMOKE.lr)]
    lowest = final.groupby("activation").value.mean().min() / results.summary["train_floor"] - 1
    word = "below" if lowest < 0 else "above"
    text = SPEC.report(results)
    assert f"$|\\theta|$ = {results.summary['n_params']} parameters" in text
    assert f"is {rep.pct(abs(lowest))} {word} this draw's floor" in text


def test_intro_parameter_clause_follows_the_activations_own_parameters(results):
    """No activation with learnable parameters: 'the same number of parameters'; one with
    (set by hand, as PReLU's slope would): named, and the claim of equal counts dropped."""
    from actlab.activations import get_activation

    for row in results.summary["table"]:
        assert row["act_params"] == len(get_activation(row["activation"]).params) * SMOKE.depth
    text = SPEC.report(results)
    assert "has the same number of parameters" in text
    text = SPEC.report(_with(results, relu={"act_params": SMOKE.depth}))
    assert "has the same number of parameters" not in text
    assert "(relu also learns parameters of the activation itself)" in text


def test_input_size_at_init_against_plain_networks(results):
    """Layer 1's input is x, layer l's the output of layer l - 1: root mean square over units
    and inputs, from plain float64 nn.Sequential networks; the summary's log10 ratio of layer
    1's to the last hidden layer's is its mean over seeds, and the sentence follows its sign."""
    cfg = SMOKE
    x = _data(cfg)["x_train"].double()
    got = results.arrays["input_size_init"]  # member, layer
    rows = {r["activation"]: r for r in results.summary["table"]}
    for a, act in enumerate(cfg.activations):
        logs = []
        for seed in range(cfg.seeds):
            net, h, sizes = _float64_net(cfg, act, seed), x, [x.pow(2).mean().sqrt().item()]
            with torch.no_grad():
                for m in list(net)[:-1]:
                    h = m(h)
                    if not isinstance(m, nn.Linear):
                        sizes.append(h.pow(2).mean().sqrt().item())
            sizes = sizes[: cfg.depth]  # the inputs of hidden layers 1 .. depth
            np.testing.assert_allclose(got[a * cfg.seeds + seed], sizes, rtol=1e-6)
            logs.append(math.log10(sizes[0] / sizes[-1]))
        assert rows[act]["log10_input_ratio"]["mean"] == pytest.approx(np.mean(logs), rel=1e-6)
    text = SPEC.report(_with(results, relu={"log10_input_ratio": _stat(-0.5, 0.1)}))
    assert "for identity and tanh this factor makes $\\kappa$ *larger*" in text
    assert "for relu it makes $\\kappa$ smaller" in text


# Six seeds: a large offset per seed that every setting run from that seed shares (the initial
# weights), and a small jitter on top, so only a test that pairs by seed sees the difference.
_OFFSET = np.array([0.0, 0.5, 0.1, 0.8, 0.3, 0.6])
_JITTER = np.array([1.0, -1.0, 0.5, -0.5, 0.2, -0.2]) * 1e-3


def _with_truth(results, value, order=None):
    """``results`` whose final errors to the truth are hand-set for six seeds: ``value(act, lr)``
    gives the six per-seed values of every (activation, rate) the run trained; the rows are
    written in seed order ``order`` (default ascending), a permutation per (activation, rate)
    when ``order`` is a function of them."""
    import pandas as pd

    m, last = results.metrics, results.summary["epochs"]
    final = (m.metric == "truth/mse") & (m.step == last)
    pairs = m.loc[final, ["activation", "lr"]].drop_duplicates().itertuples(index=False)
    rows = []
    for act, lr in pairs:
        seeds = np.arange(6) if order is None else np.asarray(order(act, lr))
        values = np.asarray(value(act, lr), dtype=np.float64)
        rows += [
            {"member": -1, "step": last, "metric": "truth/mse", "value": values[k],
             "layer": np.nan, "lr": lr, "activation": act, "seed": int(k)}
            for k in seeds
        ]  # fmt: skip
    metrics = pd.concat([m[~final], pd.DataFrame(rows)], ignore_index=True)
    return dataclasses.replace(results, metrics=metrics)


def _small_consistent():
    """relu leads tanh by 0.01 at every seed on top of the shared offset; the rest far behind."""

    def value(act, lr):
        base = {"relu": 0.1, "tanh": 0.11}.get(act, 10.0)
        jitter = _JITTER if act == "tanh" else 0.0
        return base + _OFFSET + jitter

    return value


def test_ranking_pairs_by_seed_a_small_consistent_difference(results):
    """relu 0.01 below tanh at every seed, on top of a per-seed offset 50x larger: the paired
    test (SciPy's ``ttest_rel``, the reference) separates them where Welch's does not, and the
    chapter says relu is significantly lower; the same holds with the rows in a shuffled seed
    order."""
    value = _small_consistent()
    relu, tanh = value("relu", SMOKE.lr), value("tanh", SMOKE.lr)
    assert st.ttest_rel(relu, tanh).pvalue < 0.05
    assert st.ttest_ind(relu, tanh, equal_var=False).pvalue > 0.5  # Welch: noise
    want = "At the shared rate, the lowest error to the true function is relu's"
    for order in (
        None,
        lambda act, lr: [3, 0, 5, 1, 4, 2] if act == "tanh" else [5, 4, 3, 2, 1, 0],
    ):
        mod = _with_truth(results, value, order)
        assert rep._ranking(mod, "truth/mse", dict.fromkeys(SMOKE.activations, SMOKE.lr)) == (
            "relu",
            [],
        )
        text = SPEC.report(mod)
        line = next(x for x in text.splitlines() if x.startswith(want))
        assert "significantly lower than every other activation (paired test, 5%)" in line
    # The same values with the pairing broken (tanh's seeds relabelled): within noise.
    rolled = _with_truth(
        results, lambda a, lr: value(a, lr)[[1, 2, 3, 4, 5, 0]] if a == "tanh" else value(a, lr)
    )
    assert st.ttest_rel(relu, tanh[[1, 2, 3, 4, 5, 0]]).pvalue > 0.05
    assert rep._ranking(rolled, "truth/mse", dict.fromkeys(SMOKE.activations, SMOKE.lr)) == (
        "relu",
        ["tanh"],
    )


def test_tuning_effect_pairs_by_seed_whatever_the_row_order(results):
    """Tuning lowers relu's error to the truth by 0.02 at every seed on top of the per-seed
    offset (``ttest_rel`` significant, Welch not): 'lowered ... significantly for relu'; the
    others' tuned errors differ from their shared ones by a jitter of mean 0: 'no more than
    noise'. Rows in shuffled seed order, and a seed missing on one side (dropped from both),
    give the same verdicts."""
    rows = {r["activation"]: r for r in results.summary["table"]}
    moved = [a for a in SMOKE.activations if not math.isclose(rows[a]["best_lr"], SMOKE.lr)]
    assert "relu" in moved and len(moved) > 1

    def value(act, lr):
        tuned = math.isclose(lr, rows[act]["best_lr"]) and act in moved
        if not tuned:
            return 0.5 + _OFFSET
        return 0.5 + _OFFSET + (-0.02 + _JITTER if act == "relu" else _JITTER)

    shared, tuned = value("relu", SMOKE.lr), value("relu", rows["relu"]["best_lr"])
    assert st.ttest_rel(shared, tuned).pvalue < 0.05
    assert st.ttest_ind(shared, tuned, equal_var=False).pvalue > 0.5
    other = moved[0] if moved[0] != "relu" else moved[1]
    assert st.ttest_rel(value(other, SMOKE.lr), value(other, rows[other]["best_lr"])).pvalue > 0.5
    rest = [a for a in moved if a != "relu"]
    want = (
        "Against the shared rate, tuning lowered the error to the truth significantly for relu; "
        f"changed it by no more than noise for {rep._names(rest)} (paired test"
    )
    perm = [4, 1, 5, 0, 3, 2]
    orders = (
        None,
        lambda act, lr: perm if math.isclose(lr, SMOKE.lr) else perm[::-1],
        lambda act, lr: [0, 1, 2, 3, 4] if math.isclose(lr, SMOKE.lr) else [5, 3, 1, 0, 4, 2],
    )
    for order in orders:
        mod = _with_truth(results, value, order)
        assert want in rep.tuning_effect_sentence(mod, moved)
        assert want in SPEC.report(mod)


def test_paired_values_line_up_by_seed():
    """Two series in different seed orders, each with a seed the other lacks: the common seeds,
    ascending, on both sides."""
    import pandas as pd

    a = pd.Series([10.0, 30.0, 20.0, 40.0], index=[1, 3, 2, 4])
    b = pd.Series([2.0, 0.0, 1.0, 3.0], index=[2, 0, 1, 3])
    x, y = rep.paired_values(a, b)
    np.testing.assert_array_equal(x, [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0])
