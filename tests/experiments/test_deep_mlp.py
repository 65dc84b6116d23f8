"""The deep-MLP experiment against independent references: a plain nn.Sequential trained alone,
gradients by autograd layer by layer, and the metrics table."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from actlab.experiments.deep_mlp import SPEC
from actlab.experiments.deep_mlp import experiment as d
from actlab.models import EnsembleMLP

SMOKE = d.SMOKE


@pytest.fixture(scope="module")
def results():
    return d.run(SMOKE)


def _initial_sequential(cfg, activation, seed):
    model = EnsembleMLP(1, [cfg.width] * cfg.depth, 1, [activation], [seed], init=cfg.init)
    return model.member(0)


def test_one_member_equals_a_plain_sequential_trained_alone(results):
    cfg, data = SMOKE, d.make_data(SMOKE)
    table = d.members(cfg)
    row = table[(table.activation == "tanh") & (table.seed == 1) & (table.lr == cfg.lr)].iloc[0]
    seq = _initial_sequential(cfg, "tanh", 1)
    opt = torch.optim.Adam(seq.parameters(), lr=cfg.lr)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        nn.functional.mse_loss(seq(data["x_train"]), data["y_train"]).backward()
        opt.step()
    with torch.no_grad():
        train_mse = nn.functional.mse_loss(seq(data["x_train"]), data["y_train"]).item()
        test_mse = nn.functional.mse_loss(seq(data["x_test"]), data["y_test"]).item()
        fit = seq(data["x_grid"])[:, 0].numpy()
    m = results.metrics
    final = m[(m.member == row.member) & (m.step == cfg.epochs)]
    assert final[final.metric == "train/mse"].value.item() == pytest.approx(train_mse, abs=1e-6)
    assert final[final.metric == "test/mse"].value.item() == pytest.approx(test_mse, abs=1e-6)
    a = cfg.activations.index("tanh")
    member = a * cfg.seeds + 1  # fixed-rate arrays are ordered (activation, seed)
    np.testing.assert_allclose(results.arrays["fits"][member, -1], fit, atol=1e-5)


def test_gradient_layers_are_numbered_input_to_output(results):
    """Layer 1 of the gradient arrays is the Linear nearest the input (a reversal fails)."""
    cfg, data = SMOKE, d.make_data(SMOKE)
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


def test_same_initial_weights_across_activations():
    """Within a seed every activation starts from the same weights."""
    a = _initial_sequential(SMOKE, "identity", 0)
    b = _initial_sequential(SMOKE, "relu", 0)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


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


def test_data_noise_floor_and_grids():
    data = d.make_data(SMOKE)
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
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SMOKE, **change)


# ---------------------------------------------------------------------------- report
from actlab.experiments.deep_mlp import report as rep  # noqa: E402
from actlab.report.format import ci, ratio  # noqa: E402
from actlab.stats import mean_ci  # noqa: E402


def _row(report: str, activation: str, after: str) -> str:
    """The table row of ``activation`` in the first table after the heading ``after``."""
    section = report[report.index(after) :]
    return next(line for line in section.splitlines() if line.startswith(f"| {activation} |"))


def test_report_numbers_equal_the_metrics_table(results):
    """Every table cell is recomputed here from the tidy metrics, not from the summary."""
    cfg, m = SMOKE, results.metrics
    report = SPEC.report(results)
    final = m[m.step == cfg.epochs]
    for act in cfg.activations:
        row = _row(report, act, "## How well each activation fits")
        for metric in ("train/mse", "test/mse", "truth/mse"):
            values = final[(final.activation == act) & (final.lr == cfg.lr)]
            values = values[values.metric == metric].sort_values("seed").value
            assert f" {ci(mean_ci(values))} " in row, (metric, row)
        # The gradient ratio at the first step: layer 1 over layer `depth`, geometric mean.
        g = m[(m.metric == "grad/weight_mean_abs") & (m.step == 0) & (m.activation == act)]
        g = g[g.lr == cfg.lr]
        first = g[g.layer == 1].sort_values("seed").value.to_numpy()
        last = g[g.layer == cfg.depth].sort_values("seed").value.to_numpy()
        stat = mean_ci(np.log10(first) - np.log10(last))
        cell = f"{ratio(stat['mean'])} [{ratio(stat['lo'])}, {ratio(stat['hi'])}]"
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


def test_fit_verdicts_against_the_noise_floor():
    def st(mean, half):
        return {"mean": mean, "lo": mean - half, "hi": mean + half}

    floor = 0.01
    assert rep.fit_verdict(st(0.005, 0.001), st(0.02, 0.002), floor).startswith("overfitting")
    assert rep.fit_verdict(st(0.005, 0.001), st(0.011, 0.005), floor).startswith("below")
    assert rep.fit_verdict(st(0.05, 0.01), st(0.06, 0.01), floor).startswith("underfits")
    assert rep.fit_verdict(st(0.0101, 0.002), st(0.0125, 0.002), floor) == "near the floor"
    assert rep.fit_verdict(st(math.nan, math.nan), st(0.0, 0.0), floor) == "diverged"


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
    assert "weaker than at layer 3 (the whole 95% interval below 1/10) for identity;" in text
    assert "it is less than 10× weaker (the whole interval above 1/10) for tanh." in text
    assert "For relu the interval straddles 1/10" in text


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
