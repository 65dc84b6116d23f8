"""actlab sweep: the plan against a naive product, packed members against members trained alone
and against the experiment itself, the table's intervals against SciPy, resume after kill -9,
a dry run that writes nothing, and bad input answered by one line and exit status 2."""

import dataclasses
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from actlab import sweep
from actlab.cli import main
from actlab.experiments import get_experiment

DEEP = get_experiment("deep-mlp")
ADAPTER = DEEP.sweep
SHAPE = dict(depth=3, width=8, epochs=20, n_train=32, n_grid=24)  # the smoke preset's shape


def _plan(grid, seeds=2, max_members=1000, ranges=None, n=0, overrides=None):
    return sweep.make_plan(
        DEEP, "smoke", overrides or {}, grid, ranges or {}, n, seeds, max_members
    )


# ---------------------------------------------------------------------- plan
def test_members_and_passes_against_a_naive_product():
    grid = {"lr": [1e-3, 1e-2], "depth": [2, 3, 4], "activation": ["tanh", "relu"]}
    plan = _plan(grid, seeds=3, max_members=5)
    members = plan.members()
    naive = [
        (lr, depth, act, seed)
        for lr in grid["lr"]
        for depth in grid["depth"]
        for act in grid["activation"]
        for seed in range(3)
    ]
    got = list(members[["lr", "depth", "activation", "seed"]].itertuples(index=False, name=None))
    assert got == naive
    assert (members.width == 8).all() and (members.epochs == 20).all()  # the preset's fields
    # a shape per depth (12 members each), each split into ceil(12 / 5) = 3 passes of 4
    assert sorted(len(p) for p in plan.passes) == [4] * 9
    assert sorted(m for p in plan.passes for m in p) == list(range(len(naive)))
    for ids in plan.passes:
        shapes = members.loc[ids, ADAPTER.shape_fields].drop_duplicates()
        assert len(shapes) == 1
        acts = list(members.loc[ids, "activation"])
        assert acts == sorted(acts)  # runs of one activation (one slice each in the engine)
    # one pass when the members fit
    assert len(_plan(grid, seeds=3).passes) == 3


def test_default_grid_is_the_presets_activations_and_set_fixes_a_field():
    plan = _plan({"lr": [1e-3]}, overrides={"width": 5})
    assert plan.grid["activation"] == list(DEEP.preset("smoke").activations)
    assert set(plan.members().width) == {5}
    plan = _plan({}, overrides={"activation": "gelu"})
    assert "activation" not in plan.grid and set(plan.members().activation) == {"gelu"}
    # the user's keys come before the adapter's in the figure's choice of x axis
    plan = _plan({}, ranges={"lr": (1e-3, 1e-2)}, n=2)
    assert plan.swept == ["lr", "activation"] and sweep._x_key(plan) == "lr"
    plan = _plan({"width": [4], "depth": [2, 3]}, ranges={"lr": (1e-3, 1e-2)}, n=2)
    assert sweep._x_key(plan) == "depth"  # width takes one value only


def test_random_points_ranges_scales_and_repeatability():
    ranges = {"lr": (1e-4, 1e-1), "width": (4, 9), "noise": (0.05, 0.2)}
    plan = _plan({"activation": ["tanh", "relu"]}, seeds=2, ranges=ranges, n=7)
    members = plan.members()
    assert len(members) == 2 * 7 * 2
    assert plan.random == _plan({"activation": ["tanh"]}, ranges=ranges, n=7).random  # seeded
    lr, width = np.array(plan.random["lr"]), plan.random["width"]
    assert ((lr >= 1e-4) & (lr <= 1e-1)).all()
    assert all(isinstance(w, int) and 4 <= w <= 9 for w in width)
    # each distinct width is its own shape: passes = distinct (width, noise) pairs
    shapes = {(w, s) for w, s in zip(width, plan.random["noise"], strict=True)}
    assert len(plan.passes) == len(shapes)

    # the scales, on many draws: log-uniform lr (half below the geometric mean), uniform
    # noise (half below the midpoint), integers covering lo..hi inclusive
    many = sweep._draw("deep-mlp", ranges, 4000, {"lr": float, "width": int, "noise": float})
    log_lr = np.log10(many["lr"])
    assert abs(np.mean(log_lr < -2.5) - 0.5) < 0.04 and abs(np.mean(log_lr < -3.25) - 0.25) < 0.04
    assert abs(np.mean(np.array(many["noise"]) < 0.125) - 0.5) < 0.04
    assert set(many["width"]) == set(range(4, 10))
    wide = sweep._draw("deep-mlp", {"width": (1, 1000)}, 4000, {"width": int})["width"]
    assert all(isinstance(w, int) for w in wide) and abs(np.mean(np.array(wide) < 32) - 0.5) < 0.04


def test_integer_log_uniform_draws_reach_both_ends():
    # log-uniform over [1, 101), floored: 100 has probability log(101/100)/log(101) = 0.2%,
    # about 9 of 4000 draws; 1 has log(2)/log(101) = 15%
    wide = np.array(sweep._draw("deep-mlp", {"width": (1, 100)}, 4000, {"width": int})["width"])
    assert wide.min() == 1 and wide.max() == 100
    assert abs(np.mean(wide == 100) - math.log(101 / 100) / math.log(101)) < 0.003
    assert abs(np.mean(wide == 1) - math.log(2) / math.log(101)) < 0.03


# ---------------------------------------------------------------------- packing independence
@pytest.fixture(scope="module")
def packed():
    """One pass of 18 members (3 activations x 3 rates x 2 seeds) at the smoke shape."""
    plan = _plan({"activation": ["tanh", "relu", "identity"], "lr": [1e-3, 3e-3, 3e-2]})
    assert len(plan.passes) == 1
    return plan, sweep.run(plan)


def test_a_packed_member_equals_the_member_trained_alone(packed):
    plan, results = packed
    for _, row in results.sample(4, random_state=0).iterrows():
        point = ADAPTER.Point(**{f: row[f] for f in ADAPTER.fields})
        alone = ADAPTER.run_pass(point, pd.DataFrame([row[list(ADAPTER.member_fields)]]))
        for metric in ADAPTER.metrics:
            # float32: an ensemble of another size may sum its batched products in another
            # order (~1e-7 relative each), which training carries forward. At this shape the
            # numbers came out bit-identical; at width 64, 100 steps they differ by up to 1e-3
            # (and by 4e-13 in float64: rounding, not leakage between members). A member mixed
            # up with another is off by far more than 1e-4.
            assert alone[metric].iloc[0] == pytest.approx(row[metric], rel=1e-4), metric


def test_shape_fields_split_passes_and_each_member_trains_on_its_own_data():
    # data_seed, init and optimizer are shape fields: a member packed with another data seed
    # would silently train on the first member's data
    grid = {
        "data_seed": [0, 1],
        "init": ["torch", "xavier"],
        "optimizer": ["adam", "sgd"],
        "activation": ["tanh", "relu"],
    }
    plan = _plan(grid, seeds=1)
    members = plan.members()
    assert len(members) == 16 and len(plan.passes) == 8
    for ids in plan.passes:
        assert len(members.loc[ids, ["data_seed", "init", "optimizer"]].drop_duplicates()) == 1
    results = sweep.run(plan)
    for _, row in results.iterrows():
        point = ADAPTER.Point(**{f: row[f] for f in ADAPTER.fields})
        alone = ADAPTER.run_pass(point, pd.DataFrame([row[list(ADAPTER.member_fields)]]))
        for metric in ADAPTER.metrics:
            assert alone[metric].iloc[0] == pytest.approx(row[metric], rel=1e-4), (
                dict(row[list(grid)]),
                metric,
            )
    # and the data seed matters: the same member on the two draws differs
    a, b = (
        results[(results.data_seed == d) & (results.init == "torch")]
        .sort_values(["optimizer", "activation"])["test/floor"]
        .to_numpy()
        for d in (0, 1)
    )
    assert np.all(np.abs(a - b) > 1e-5)


def test_a_sweep_point_measures_what_the_experiment_measures(packed):
    plan, results = packed
    cfg = dataclasses.replace(
        DEEP.preset("smoke"), activations=("relu", "tanh"), lr=3e-2, lr_grid=(3e-3,), lr_extend=0
    )
    metrics = DEEP.run(cfg).metrics
    final = metrics[(metrics.step == cfg.epochs)]
    for act, lr, seed in itertools.product(("relu", "tanh"), (3e-2, 3e-3), (0, 1)):
        mine = results[(results.activation == act) & (results.lr == lr) & (results.seed == seed)]
        theirs = final[(final.activation == act) & np.isclose(final.lr, lr) & (final.seed == seed)]
        for metric in ("train/mse", "test/mse", "truth/mse"):
            want = theirs[theirs.metric == metric].value.to_numpy()
            assert len(want) == 1 and len(mine) == 1
            assert mine[metric].iloc[0] == pytest.approx(want[0], rel=1e-4), (act, lr, metric)
        assert mine["test/mse_over_floor"].iloc[0] == pytest.approx(
            mine["test/mse"].iloc[0] / mine["test/floor"].iloc[0]
        )


def _numpy_floor(n_train, noise, data_seed):
    """The test MSE of sin itself on the experiment's test draw, in NumPy float64."""
    from actlab.experiments.deep_mlp.experiment import Config, make_data

    d = make_data(Config(n_train=n_train, noise=noise, n_grid=8, data_seed=data_seed))
    x, y = d["x_test"].numpy().astype(np.float64), d["y_test"].numpy().astype(np.float64)
    return float(np.mean((y - np.sin(x)) ** 2))


def test_floor_ratio_divides_by_the_draws_own_noise_not_sigma_squared():
    # the review's case: at n_train=200, data_seed=0 the draw's noise is 1.147 sigma^2, so
    # sin itself scores 1.147 against sigma^2 and exactly 1 against the draw's floor
    point = ADAPTER.Point(**{**SHAPE, "n_train": 200, "epochs": 2})
    out = ADAPTER.run_pass(point, pd.DataFrame({"activation": ["tanh"], "lr": [1e-3], "seed": [0]}))
    floor = _numpy_floor(200, point.noise, 0)
    assert floor / point.noise**2 == pytest.approx(1.147, abs=5e-3)
    assert out["test/floor"].iloc[0] == pytest.approx(floor, rel=1e-5)
    assert out["test/mse_over_floor"].iloc[0] == pytest.approx(
        out["test/mse"].iloc[0] / floor, rel=1e-5
    )
    # another data draw has another floor, and the ratio follows it
    other = ADAPTER.run_pass(
        dataclasses.replace(point, data_seed=3),
        pd.DataFrame({"activation": ["tanh"], "lr": [1e-3], "seed": [0]}),
    )
    assert other["test/floor"].iloc[0] == pytest.approx(_numpy_floor(200, 0.1, 3), rel=1e-5)
    assert abs(other["test/floor"].iloc[0] - floor) > 1e-4


# ---------------------------------------------------------------------- table
def test_table_means_and_intervals_against_scipy(packed):
    plan, results = packed
    results = results.copy()
    # one member marked diverged (its metrics left finite, as an adapter might): left out of
    # the intervals, counted in `diverged`
    bad = results.index[(results.activation == "relu") & (results.lr == 3e-2)][0]
    results.loc[bad, "diverged"] = True
    tab = sweep.table(plan, results)
    assert len(tab) == 9 and set(tab.n) == {2}
    assert (tab.n_finite == tab.n - tab.diverged).all()
    for _, row in tab.iterrows():
        mine = results[(results.activation == row.activation) & (results.lr == row.lr)]
        ok = mine[~mine.diverged.astype(bool)]
        assert row.diverged == len(mine) - len(ok)
        for metric in ADAPTER.metrics:
            v = ok[metric].to_numpy()
            assert row[f"{metric}/mean"] == pytest.approx(v.mean())
            if len(v) < 2:
                assert math.isnan(row[f"{metric}/lo"]) and math.isnan(row[f"{metric}/hi"])
                continue
            if np.ptp(v) == 0:  # test/floor: one data draw, the same for every seed
                assert row[f"{metric}/lo"] == row[f"{metric}/hi"] == pytest.approx(v[0])
                continue
            lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
            # every deep-mlp metric is >= 0: the interval is clipped at 0 (not moved)
            assert (row[f"{metric}/lo"], row[f"{metric}/hi"]) == pytest.approx((max(lo, 0), hi))
    assert tab.diverged.sum() == 1


def _fake_results(plan, values, diverged=None):
    """plan's members with every metric set to ``values`` (one per member)."""
    results = plan.members()
    for metric in ADAPTER.metrics:
        results[metric] = np.asarray(values, dtype=float)
    results["diverged"] = np.zeros(len(results), bool) if diverged is None else diverged
    return results


def test_mse_intervals_are_clipped_at_zero_and_count_the_finite_seeds():
    plan = _plan({"activation": ["tanh", "relu"]}, seeds=3)
    # tanh: 0.01, 0.02, 3.0 -> mean - half < 0; relu: seed 2 diverged (NaN), two survive
    values = [0.01, 0.02, 3.0, 1.0, 1.2, np.nan]
    diverged = np.array([False] * 5 + [True])
    tab = sweep.table(plan, _fake_results(plan, values, diverged)).set_index("activation")
    v = np.array(values[:3])
    lo, hi = stats.t.interval(0.95, 2, loc=v.mean(), scale=stats.sem(v))
    assert lo < 0
    assert tab.loc["tanh", "test/mse/lo"] == 0.0
    assert tab.loc["tanh", "test/mse/hi"] == pytest.approx(hi)
    assert tab.loc["tanh", "test/mse/mean"] == pytest.approx(v.mean())
    assert list(tab.loc["relu", ["n", "diverged", "n_finite"]]) == [3, 1, 2]
    assert tab.loc["relu", "test/mse/mean"] == pytest.approx(1.1)


def test_figure_y_scale_integer_ticks_legend_and_many_lines():
    plan = _plan({"depth": [1, 2, 4], "activation": ["tanh"]}, seeds=2)
    n = len(plan.members())  # 6: depth-major, two seeds each

    def axes_for(values):
        tab = sweep.table(plan, _fake_results(plan, values))
        return sweep.plot_metric(plan, tab, "test/mse")

    ax = axes_for([1.0, 1.0, 2.0, 2.0, 10.0, 10.0])  # means span exactly 10x: log
    assert ax.get_yscale() == "log"
    assert ax.get_xscale() == "linear"  # depths 1..4 span < 100x
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    assert ax.get_legend() is not None  # a single series has a legend too
    assert axes_for([1.0, 1.0, 2.0, 2.0, 9.0, 9.0]).get_yscale() == "linear"  # 9x
    assert axes_for([0.0, 0.0, 2.0, 2.0, 10.0, 10.0]).get_yscale() == "linear"  # a zero
    assert n == 6
    # more than MAX_LINES series: the best MAX_LINES (lowest means) are drawn, the title says so
    lrs = [float(v) for v in np.geomspace(1e-4, 1e-1, 14)]
    # rates given largest first: the first 12 series drawn are not the best 12
    many = _plan({"depth": [1, 2], "lr": lrs[::-1], "activation": ["tanh"]}, seeds=2)
    members = many.members()
    values = members.lr.to_numpy()  # the metric grows with the rate: the 12 smallest are best
    tab = sweep.table(many, _fake_results(many, values))
    ax = sweep.plot_metric(many, tab, "test/mse")
    assert f"best {sweep.MAX_LINES} of 14 settings" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert sorted(labels) == sorted(f"lr={v:.3g}" for v in lrs[: sweep.MAX_LINES])


def test_figure_marks_diverged_settings_and_says_what_the_band_is_over():
    plan = _plan({"activation": ["tanh", "relu", "identity"]}, seeds=2)
    # relu: both seeds diverged (no mean at all); identity: one of two
    values = [0.1, 0.2, np.nan, np.nan, 0.3, np.nan]
    diverged = np.array([False, False, True, True, False, True])
    tab = sweep.table(plan, _fake_results(plan, values, diverged))
    fig = sweep.figure(plan, tab)
    title = fig._suptitle.get_text()
    assert "initialisation seeds" in title and "data_seed=0" in title and "same weights" in title
    ax = fig.get_axes()[0]
    labels = ax.get_legend_handles_labels()[1]
    assert any(lab.startswith("diverged: all") for lab in labels)
    assert any(lab.startswith("diverged: some") for lab in labels)
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["1/2", "2/2"]
    marks = [
        line
        for line in ax.get_lines()
        if line.get_transform() != ax.transData and len(line.get_xdata()) == 1
    ]
    # at the x of relu (1) and identity (2)
    assert sorted(float(line.get_xdata()[0]) for line in marks) == [1.0, 2.0]


def test_a_diverged_member_gets_nan_metrics_and_leaves_the_others_alone():
    point = ADAPTER.Point(**SHAPE, optimizer="sgd")
    both = pd.DataFrame({"activation": ["tanh", "tanh"], "lr": [1e-3, 1e4], "seed": [0, 0]})
    out = ADAPTER.run_pass(point, both)
    assert list(out.diverged) == [False, True]
    # every metric NaN but the data draw's floor (a property of the data, not of the member)
    assert out.loc[1, [m for m in ADAPTER.metrics if m != "test/floor"]].isna().all()
    assert out.loc[1, "test/floor"] == out.loc[0, "test/floor"] > 0
    alone = ADAPTER.run_pass(point, both.iloc[:1])
    pd.testing.assert_frame_equal(out.iloc[:1], alone)


def test_summary_figure_axes(packed):
    plan, results = packed
    tab = sweep.table(plan, results)
    fig = sweep.figure(plan, tab)
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == list(ADAPTER.plotted)
    ax = axes[0]
    assert ax.get_xlabel() == "activation"  # the first grid key; categories, not a log axis
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tanh", "relu", "identity"]
    # categories: one series of points with error bars per rate, side by side, not connected
    assert len(ax.containers) == 3
    data_lines = [line for line in ax.get_lines() if line.get_transform() == ax.transData]
    assert all(line.get_linestyle() == "None" for line in data_lines if len(line.get_xdata()) > 1)
    xs = sorted(float(x) for c in ax.containers for x in c.lines[0].get_xdata())
    assert len(set(xs)) == 9 and all(-0.5 < x < 2.5 for x in xs)
    # the floor ratio's reference: a dashed line at y = 1
    ref = [line for line in ax.get_lines() if list(line.get_ydata()) == [1, 1]]
    assert len(ref) == 1 and ref[0].get_linestyle() == "--"
    assert ax.get_legend() is not None
    by_lr = _plan({"lr": [1e-3, 3e-3, 3e-2, 0.1], "activation": ["tanh", "relu"]})
    tab = sweep.table(by_lr, sweep.run(by_lr))
    ax = sweep.plot_metric(by_lr, tab, "test/mse")
    assert ax.get_xscale() == "log"  # rates span 100x
    # each band runs from lo to hi of its activation's rows
    assert len(ax.collections) == 2
    for coll, act in zip(ax.collections, ("tanh", "relu"), strict=True):
        rows = tab[tab.activation == act]
        ys = np.unique(np.round(coll.get_paths()[0].vertices[:, 1], 12))
        want = np.unique(np.round(np.r_[rows["test/mse/lo"], rows["test/mse/hi"]], 12))
        np.testing.assert_allclose(ys, want)
    from actlab.plotting.style import color_of

    assert {line.get_color() for line in ax.get_lines()} == {color_of("tanh"), color_of("relu")}


# ---------------------------------------------------------------------- CLI
def _sweep_cli(capsys, *argv):
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_folder_and_reuses_a_finished_sweep(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["deep-mlp", "--preset", "smoke", "--grid", "lr=1e-3,3e-2", "--seeds", "3"]
    code, out, err = _sweep_cli(capsys, *argv)
    assert code == 0, err
    folder = Path(out.strip().splitlines()[-1])
    assert folder.parent == (tmp_path / "runs").resolve() and folder.name.startswith(
        "sweep-deep-mlp-"
    )
    for name in ("config.json", "table.csv", "table.parquet", "members.parquet"):
        assert (folder / name).is_file(), name
    assert (folder / "figures" / "summary.png").stat().st_size > 10_000
    config = json.loads((folder / "config.json").read_text())
    assert config["experiment"] == "sweep:deep-mlp" and config["config"]["seeds"] == 3
    members = pd.read_parquet(folder / "members.parquet")
    assert len(members) == 2 * 3 * 3
    csv = pd.read_csv(folder / "table.csv")
    assert len(csv) == 6 and "test/mse_over_floor/mean" in csv
    assert "relu" in out and "test/mse" in out  # the printed table
    stamp = (folder / "table.parquet").stat().st_mtime_ns
    code, again, _ = _sweep_cli(capsys, *argv)
    assert code == 0 and again == out
    assert (folder / "table.parquet").stat().st_mtime_ns == stamp  # reused, not recomputed
    # actlab report rebuilds the figure from the folder and prints the same table
    (folder / "figures" / "summary.png").unlink()
    assert main(["report", str(folder)]) == 0
    report, _ = capsys.readouterr()
    assert report.splitlines()[:-1] == out.splitlines()[:-1]
    assert (folder / "figures" / "summary.png").is_file()


def test_estimate_scales_each_pass_by_its_steps_and_work():
    # passes of different sizes (max_members) and shapes (depth, epochs)
    plan = _plan(
        {"depth": [1, 3], "epochs": [4, 7], "activation": ["tanh", "relu", "identity"]},
        seeds=3,
        max_members=5,
    )
    tasks = plan.tasks()
    points = [ADAPTER.Point(**t.point) for t in tasks]
    assert len({len(t.members) for t in tasks}) > 1 and len({p.depth for p in points}) > 1
    est = sweep.estimate(plan, budget=0.0)
    # work per step = members x (6 n sum fan_in fan_out), written out here
    work = []
    for t, p in zip(tasks, points, strict=True):
        sizes = [1, *[p.width] * p.depth, 1]
        flops = 6 * p.n_train * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
        work.append(len(t.members) * flops)
    cal = int(np.argmax(work))
    assert est.calibrated_pass == cal
    want = [
        est.overhead_seconds + p.epochs * est.step_seconds * w / work[cal]
        for p, w in zip(points, work, strict=True)
    ]
    assert est.per_pass == pytest.approx(want, rel=1e-9)
    assert est.seconds == pytest.approx(sum(want), rel=1e-9)


def test_a_reordered_command_is_the_same_sweep_and_resumes_its_passes(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    first = ["--grid", "lr=1e-3,3e-2", "depth=2,3", "activation=tanh,relu"]
    again = ["--grid", "activation=relu,tanh", "depth=3,2", "lr=3e-2,1e-3"]
    common = ["deep-mlp", "--preset", "smoke", "--seeds", "2"]
    code, out, err = _sweep_cli(capsys, *common, *first)
    assert code == 0, err
    folder = Path(out.strip().splitlines()[-1])
    chunks = sorted((folder / "chunks").glob("*.pt"))
    assert len(chunks) == 2  # a pass per depth
    reference = pd.read_parquet(folder / "members.parquet")
    # the default folder is the same for the reordered command: reused as it is
    code, out2, err = _sweep_cli(capsys, *common, *again)
    assert code == 0 and Path(out2.strip().splitlines()[-1]) == folder, err
    # interrupted after one pass: the reordered command resumes it, in the stored order
    chunks[1].unlink()
    (folder / "status.json").unlink()
    kept = _identity(chunks[0])
    code, out3, err = _sweep_cli(capsys, *common, *again)
    assert code == 0, err
    assert "restored 1/2 passes" in err
    assert _identity(chunks[0]) == kept and chunks[1].is_file()
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "members.parquet"), reference)
    # --random keys in another order draw the same points
    a = _plan({}, ranges={"lr": (1e-4, 1e-1), "width": (4, 9)}, n=5)
    b = _plan({}, ranges={"width": (4, 9), "lr": (1e-4, 1e-1)}, n=5)
    assert a.random == b.random
    assert sweep.canonical(sweep.dataclasses.asdict(a)) == sweep.canonical(
        sweep.dataclasses.asdict(b)
    )


def test_dry_run_prints_the_plan_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _sweep_cli(
        capsys,
        *("deep-mlp", "--preset", "smoke", "--grid", "depth=2,3", "--seeds", "4"),
        *("--max-members", "5", "--dry-run", "--out", str(tmp_path / "out")),
    )
    assert code == 0, err
    assert "24 members" in out and "6 passes" in out and "estimated time" in out
    assert "depth=2" in out and "depth=3" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["deep-mlp", "--grid", "widht=3,4"], "Did you mean 'width'"),
        (["deep-mlp", "--set", "dept=3"], "Did you mean 'depth'"),
        (["deep-mlp", "--random", "3", "lrr=1e-3:1e-2"], "Did you mean 'lr'"),
        (["deep-mlp", "--grid", "lr=1e-3,abc"], "expected a number"),
        (["deep-mlp", "--grid", "width=8,0"], "width must be an integer >= 1"),
        (["deep-mlp", "--grid", "lr=-1"], "lr must be > 0"),
        (["deep-mlp", "--grid", "activation=tanh,tahn"], "Did you mean 'tanh'"),
        (["deep-mlp", "--grid", "lr"], "KEY=V1,V2"),
        (["deep-mlp", "--grid", "seed=1,2"], "--seeds"),
        (["deep-mlp", "--grid", "lr=1e-3", "--set", "lr=1e-2"], "lr is given twice"),
        (["deep-mlp", "--random", "0", "lr=1e-3:1e-2"], "N >= 1"),
        (["deep-mlp", "--random", "-2", "lr=1e-3:1e-2"], "N >= 1"),
        (["deep-mlp", "--random", "x", "lr=1e-3:1e-2"], "N must be an integer"),
        (["deep-mlp", "--random", "3"], "KEY=LO:HI"),
        (["deep-mlp", "--random", "3", "lr=1e-3"], "KEY=LO:HI"),
        (["deep-mlp", "--random", "3", "lr=1e-2:1e-3"], "lo <= hi"),
        (["deep-mlp", "--random", "3", "init=a:b"], "only number fields"),
        (["deep-mlp", "--seeds", "0"], "--seeds must be an integer >= 1"),
        (["deep-mlp", "--max-members", "0"], "--max-members must be"),
        (["deep-mlp", "--preset", "huge"], "unknown preset 'huge'"),
        (["gallery", "--grid", "n_points=3"], "gallery cannot be swept; experiments that can: "),
        (["nope"], "unknown experiment 'nope'"),
        ([], "sweep needs an experiment name: deep-mlp"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    code, _, err = _sweep_cli(capsys, *argv, "--dry-run")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("actlab: error: ") and expected in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_sweepable_fields(capsys):
    code, out, _ = _sweep_cli(capsys, "deep-mlp", "--help")
    assert code == 0 and "log-uniform" in out and "optimizer" in out and "activation, lr" in out


# ---------------------------------------------------------------------- resume after kill -9
def _slow_cli(out: Path, pause: float) -> subprocess.Popen:
    """The sweep command in a fresh process, each pass followed by a pause (time to kill it)."""
    code = (
        "import dataclasses, sys, time\n"
        "from actlab.experiments import base, get_experiment\n"
        "spec = get_experiment('deep-mlp')\n"
        "fast = spec.sweep.run_pass\n"
        f"def slow(point, members):\n    out = fast(point, members)\n    time.sleep({pause})\n"
        "    return out\n"
        "adapter = dataclasses.replace(spec.sweep, run_pass=slow)\n"
        "base._EXPERIMENTS['deep-mlp'] = dataclasses.replace(spec, sweep=adapter)\n"
        "from actlab.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["sweep", "deep-mlp", "--preset", "smoke", "--grid", "depth=1,2,3,4,5", "--seeds", "2"]
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _identity(path: Path) -> tuple[int, int, bytes]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


def test_kill_and_resume_recomputes_only_unfinished_passes(tmp_path):
    reference = _slow_cli(tmp_path / "reference", pause=0.0)
    run = tmp_path / "interrupted"
    proc = _slow_cli(run, pause=0.8)
    deadline = time.time() + 60
    while len(list((run / "chunks").glob("*.pt"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: _identity(p) for p in (run / "chunks").glob("*.pt")}
    assert 2 <= len(done_before) < 5, "the sweep should have been killed mid-way"
    assert not (run / "table.csv").exists()

    resumed = _slow_cli(run, pause=0.0)
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    assert reference.wait(timeout=120) == 0, reference.stderr.read()
    # the passes finished before the kill are the very same files (inode, mtime, bytes): an
    # atomic rewrite, even with equal numbers, would be a new file
    for name, before in done_before.items():
        assert _identity(run / "chunks" / name) == before, name
    assert len(list((run / "chunks").glob("*.pt"))) == 5
    a = pd.read_parquet(tmp_path / "reference" / "members.parquet")
    b = pd.read_parquet(run / "members.parquet")
    pd.testing.assert_frame_equal(a, b)
