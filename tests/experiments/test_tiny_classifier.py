"""The tiny-classifier lesson against independent references: plain nn.Sequential models trained
alone with torch.optim.Adam, autograd gradients, SciPy's Welch test, the metrics table, a run
folder round trip; and the exercises' solutions."""

from __future__ import annotations

import dataclasses
import inspect
import math
import re

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from scipy import stats as st
from torch import nn

from actlab.experiments.tiny_classifier import SPEC
from actlab.experiments.tiny_classifier import exercises as stubs
from actlab.experiments.tiny_classifier import experiment as tc
from actlab.experiments.tiny_classifier import solutions as solutions
from actlab.models import EnsembleMLP
from actlab.probes import dead_fraction as probe_dead_fraction
from actlab.report.exercises import KINDS, exercises_markdown
from actlab.store import RunStore

SMOKE = tc.SMOKE


@pytest.fixture(scope="module")
def results():
    return tc.run(SMOKE)


def _initial_ensemble(cfg, depth):
    """The ensemble of one depth exactly as the experiment builds it, before training."""
    table = tc.members(cfg)
    table = table[table.depth == depth].reset_index(drop=True)
    model = EnsembleMLP(
        2, [cfg.width] * depth, 2, list(table.activation), list(table.seed), init=cfg.init
    )
    return model, table


def _initial_member(cfg, depth, task, act, seed):
    """The initial copy (``model.member(m)``) of one member and its data split."""
    model, table = _initial_ensemble(cfg, depth)
    row = table[
        (table.task == task)
        & (table.activation == act)
        & (table.seed == seed)
        & (table.lr == cfg.lr)
    ].index[0]
    return model.member(int(row)), tc.task_data(cfg, task, seed)


def _train_alone(cfg, depth, task, act, seed):
    """One member as a plain nn.Sequential, from the ensemble's initial copy
    (``model.member(m)``), trained alone with torch.optim.Adam on its data, full batch."""
    seq, split = _initial_member(cfg, depth, task, act, seed)
    opt = torch.optim.Adam(seq.parameters(), lr=cfg.lr)
    losses, first_grads = [], []
    for _ in range(cfg.epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(seq(split.x_train), split.y_train)
        loss.backward()
        losses.append(loss.item())
        first_grads.append(seq[0].weight.grad.abs().mean().item())
        opt.step()
    with torch.no_grad():
        losses.append(nn.functional.cross_entropy(seq(split.x_train), split.y_train).item())
        acc = (seq(split.x_test).argmax(1) == split.y_test).double().mean().item()
    return seq, np.array(losses), np.array(first_grads), acc, split


def _global_member(cfg, depth, task, act, seed, lr=None):
    t = tc.members(cfg)
    lr = cfg.lr if lr is None else lr
    sel = (t.depth == depth) & (t.task == task) & (t.activation == act) & (t.seed == seed)
    return int(t.member[sel & np.isclose(t.lr, lr)].iloc[0])


@pytest.mark.parametrize(
    ("depth", "task", "act", "seed"),
    [
        (1, "moons", "tanh", 1),
        (1, "xor", "relu", 2),
        (1, "circles", "sigmoid", 0),
        (3, "linear", "leaky_relu", 1),
    ],
)
def test_member_equals_a_plain_sequential_trained_alone(results, depth, task, act, seed):
    cfg = SMOKE
    seq, losses, grads, acc, split = _train_alone(cfg, depth, task, act, seed)
    m = _global_member(cfg, depth, task, act, seed)
    np.testing.assert_allclose(results.arrays["train_loss"][m], losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results.arrays["grad_first"][m], grads, rtol=1e-3, atol=1e-9)
    # Held-out accuracy recomputed independently equals the reported one (array, table).
    assert results.arrays["test_acc"][m, -1] == pytest.approx(acc, abs=1e-12)
    metrics = results.metrics
    row = metrics[(metrics.member == m) & (metrics.metric == "test/accuracy")]
    assert row[row.step == cfg.epochs].value.item() == pytest.approx(acc, abs=1e-12)
    if depth == 1:  # and the decision boundary is this network's class-1 probability
        t = cfg.tasks.index(task)
        g1, g2 = results.arrays["grid_x1"][t], results.arrays["grid_x2"][t]
        mesh = torch.tensor(np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2), dtype=torch.float32)
        with torch.no_grad():
            prob = torch.softmax(seq(mesh), 1)[:, 1].reshape(cfg.grid, cfg.grid).numpy()
        a = cfg.activations.index(act)
        np.testing.assert_allclose(results.arrays["boundary"][t, a, seed], prob, atol=1e-5)


def test_same_initial_weights_across_activations_and_tasks():
    model, table = _initial_ensemble(SMOKE, 3)
    for seed in range(SMOKE.seeds):
        idx = table.index[(table.seed == seed)].to_numpy()
        ref = [p.detach().clone() for p in model.member(int(idx[0])).parameters()]
        for m in idx[1:]:
            for p, q in zip(model.member(int(m)).parameters(), ref, strict=True):
                assert torch.equal(p, q)
    a, b = model.member(0), model.member(int(table.index[table.seed == 1][0]))
    assert not torch.equal(a[0].weight, b[0].weight)  # other seeds, other weights


def test_gradient_layers_and_output_layer_against_autograd(results):
    """grad_layers at epoch 0 numbers layers input side first; grad_output is the last layer."""
    cfg, depth, task, act, seed = SMOKE, 3, "xor", "sigmoid", 2
    seq, split = _initial_member(cfg, depth, task, act, seed)
    nn.functional.cross_entropy(seq(split.x_train), split.y_train).backward()
    expected = np.array(
        [m.weight.grad.abs().mean().item() for m in seq if isinstance(m, nn.Linear)]
    )
    m = _global_member(cfg, depth, task, act, seed)
    assert results.coords["grad_layers/probe"][0] == 0
    got = results.arrays["grad_layers"][m, 0, : depth + 1]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert np.isnan(results.arrays["grad_layers"][m, 0, depth + 1 :]).all()
    assert results.arrays["grad_output"][m, 0] == pytest.approx(expected[-1], rel=1e-4)
    assert expected[0] < expected[-1] / 10  # sigmoid: the gradient shrinks towards the input


def test_unit_probes_equal_a_direct_count(results):
    """Dead ReLU units at epoch 0, counted by hand on the held-out inputs."""
    cfg, depth, task, seed = SMOKE, 3, "circles", 0
    model, table = _initial_ensemble(cfg, depth)
    row = table[
        (table.task == task)
        & (table.activation == "relu")
        & (table.seed == seed)
        & (table.lr == cfg.lr)
    ].index[0]
    seq = model.member(int(row))
    x = tc.task_data(cfg, task, seed).x_test
    dead, h = [], x
    with torch.no_grad():
        for module in seq[:-1]:
            h = module(h)
            if not isinstance(module, nn.Linear):  # the activation module after a layer
                dead.append((h == 0).all(0).double().mean().item())
    m = _global_member(cfg, depth, task, "relu", seed)
    k = tc.UNIT_METRICS.index("act/off_fraction")
    assert len(dead) == depth
    np.testing.assert_allclose(results.arrays["units"][m, 0, :depth, k], dead)
    s = tc.UNIT_METRICS.index("act/saturated_fraction")
    assert np.isnan(results.arrays["units"][m, 0, :, s]).all()  # not a bounded activation


def _shared_rows(results, depth=1, protocol="shared"):
    return [
        r for r in results.summary["table"] if r["depth"] == depth and r["protocol"] == protocol
    ]


def test_summary_numbers_equal_the_metrics_table(results):
    cfg, m = SMOKE, results.metrics
    for depth in cfg.depths:
        for row in _shared_rows(results, depth):
            sel = (
                (m.depth == depth)
                & (m.task == row["task"])
                & (m.activation == row["activation"])
                & np.isclose(m.lr, row["lr"])
                & (m.step == cfg.epochs)
            )
            acc = m[sel & (m.metric == "test/accuracy")].value
            assert len(acc) == cfg.seeds == row["test_acc"]["n"]
            assert row["test_acc"]["mean"] == pytest.approx(acc.mean(), rel=1e-12)
            half = st.t.ppf(0.975, cfg.seeds - 1) * acc.std(ddof=1) / math.sqrt(cfg.seeds)
            assert row["test_acc"]["hi"] == pytest.approx(acc.mean() + half, rel=1e-9, abs=1e-12)
            loss = m[sel & (m.metric == "train/loss")].value
            assert row["train_loss"]["mean"] == pytest.approx(loss.mean(), rel=1e-12)


def test_verdicts_follow_scipys_welch_test(results):
    cfg, m = SMOKE, results.metrics
    final = m[(m.metric == "test/accuracy") & (m.step == cfg.epochs) & (m.depth == 1)]
    final = final[np.isclose(final.lr, cfg.lr)]
    for v in (
        v for v in results.summary["verdicts"] if v["depth"] == 1 and v["protocol"] == "shared"
    ):
        acc = {
            a: final[(final.task == v["task"]) & (final.activation == a)].value
            for a in cfg.activations
        }
        means = {a: acc[a].mean() for a in cfg.activations}
        assert v["best"] == max(means, key=means.get)
        for a in v["ranking"][1:]:
            if acc[a].std() == 0 and acc[v["best"]].std() == 0:
                continue  # SciPy's t statistic is undefined for two constant samples
            p = st.ttest_ind(acc[v["best"]], acc[a], equal_var=False).pvalue
            assert (a in v["differs_from_best"]) == bool(p < 0.05)


def test_tuned_rate_is_the_best_on_validation(results):
    cfg, m = SMOKE, results.metrics
    val = m[(m.metric == "val/accuracy") & (m.depth == 1)]
    for pick in results.summary["tuned_lr"]:
        sub = val[(val.task == pick["task"]) & (val.activation == pick["activation"])]
        means = sub.groupby("lr").value.mean()
        assert means[pick["lr"]] == pytest.approx(means.max())
    assert set(results.summary["learning_rates"]) == set(cfg.learning_rates)


def _report_table(report: str, header: str) -> dict[str, list[str]]:
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_report_numbers_equal_the_summary(results):
    text = SPEC.report(results)
    rows = {(r["task"], r["activation"]): r for r in _shared_rows(results)}
    table = _report_table(text, "| task | " + " | ".join(SMOKE.activations))
    assert set(table) == set(SMOKE.tasks)
    for task, cells in table.items():
        for act, cell in zip(SMOKE.activations, cells, strict=True):
            mean, lo, hi = map(float, re.match(r"([\d.]+)% \[([\d.]+), ([\d.]+)\]", cell).groups())
            ci = rows[task, act]["test_acc"]
            assert mean == pytest.approx(100 * ci["mean"], abs=0.05)
            assert lo == pytest.approx(max(100 * ci["lo"], 0.0), abs=0.05)
            assert hi == pytest.approx(min(100 * ci["hi"], 100.0), abs=0.05)
    for v in (
        v for v in results.summary["verdicts"] if v["depth"] == 1 and v["protocol"] == "shared"
    ):
        tie = f"On **{v['task']}** the activations tie"
        assert (tie in text) == (not v["differs_from_best"])
        if v["differs_from_best"]:
            assert f"On **{v['task']}**, {v['best']} is best" in text
    assert "figures/loss_curves.png" in text and "figures/grad_trace.png" in text
    assert text.rstrip().endswith(exercises_markdown(stubs.EXERCISES).rstrip())


def test_report_and_figures_rebuild_from_a_run_folder(results, tmp_path):
    """The CLI rebuilds reports from the saved folder (NaN becomes null in JSON)."""
    store = RunStore(tmp_path / "run")
    store.begin("tiny-classifier", "smoke", SMOKE)
    store.save_results(results)
    loaded = store.load_results()
    assert SPEC.report(loaded) == SPEC.report(results)
    figs = SPEC.figures(loaded)
    assert set(figs) == {
        "loss_curves",
        "accuracy",
        "boundaries",
        "grad_trace",
        "grad_layers",
        "units",
    }
    for fig in figs.values():
        assert isinstance(fig, Figure) and fig.axes


def test_figures_draw_one_curve_per_activation(results):
    figs = SPEC.figures(results)
    loss_axes = figs["loss_curves"].axes
    assert len(loss_axes) == 2 * len(SMOKE.tasks)
    assert len(loss_axes[0].get_lines()) == len(SMOKE.activations)
    ydata = np.concatenate([line.get_ydata() for line in loss_axes[0].get_lines()])
    assert np.isfinite(ydata).all()
    assert len(figs["grad_trace"].axes) == len(SMOKE.depths) * len(SMOKE.tasks)


def test_metrics_are_tidy(results):
    m = results.metrics
    assert {
        "member",
        "step",
        "metric",
        "value",
        "depth",
        "task",
        "activation",
        "lr",
        "seed",
        "layer",
    } <= set(m.columns)
    units = m[m.metric.str.startswith("act/")]
    assert (units.layer <= units.depth).all()
    assert not m.duplicated(["member", "step", "metric", "layer"]).any()
    assert results.arrays["train_loss"].shape == (len(tc.members(SMOKE)), SMOKE.epochs + 1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seeds": 0}, "seeds"),
        ({"activations": ("tanhh",)}, "Did you mean 'tanh'"),
        ({"tasks": ("spiral",)}, "tasks"),
        ({"depths": (2, 3)}, "include 1"),
        ({"probe_epochs": (0, 999)}, "probe_epochs"),
        ({"lr": float("nan")}, "lr"),
        ({"n_val": 0}, "n_val"),
        ({"grid": 2}, "grid"),
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SMOKE, **change)


def test_registered_with_presets():
    spec = SPEC
    assert spec.name == "tiny-classifier" and spec.order == 30
    default = spec.preset("default")
    assert default.seeds >= 10 and default.width == 8 and default.n_train == 100
    assert default.depths == (1, 4, 8)
    assert set(default.activations) == {"sigmoid", "tanh", "relu", "leaky_relu"}


# ------------------------------------------------------------------------------ exercises


def test_exercises_cover_every_kind():
    assert [e.kind for e in stubs.EXERCISES] == list(KINDS)


def test_first_layer_grad_solution_against_the_engine():
    model = EnsembleMLP(2, [8], 2, ["tanh", "relu"], [3, 4])
    x, y = tc.task_data(SMOKE, "moons", 0).x_train, tc.task_data(SMOKE, "moons", 0).y_train
    grad = torch.zeros_like(model.flat)
    model.loss_and_grad(x, y, "cross_entropy", grad)  # the engine's manual backward
    expected = model.weight(0, grad).abs().mean(dim=(1, 2))
    for m in range(2):
        seq = model.member(m)
        assert solutions.first_layer_grad(seq, x, y) == pytest.approx(expected[m].item(), rel=1e-5)
        assert all(p.grad is None for p in seq.parameters())  # .grad left as it was
    with pytest.raises(NotImplementedError):
        stubs.first_layer_grad(model.member(0), x, y)


def test_dead_fraction_solution_and_the_bug():
    gen = torch.Generator().manual_seed(0)
    h = torch.relu(torch.randn(50, 10, generator=gen))
    h[:, [2, 7]] = 0.0  # two dead units; the others are off on some inputs only
    assert solutions.dead_fraction(h).item() == pytest.approx(probe_dead_fraction(h).item())
    assert solutions.dead_fraction(h).item() == pytest.approx(0.2)
    assert stubs.dead_fraction(h).item() == pytest.approx(1.0)  # the bug the learner fixes
    buggy = "return (h == 0).any(dim=0).float().mean()"
    assert buggy in inspect.getsource(stubs.dead_fraction)
    assert buggy in next(e for e in stubs.EXERCISES if e.kind == "debug").prompt


def _logistic_accuracy(features, x_train, y_train, x_test, y_test):
    model = nn.Linear(features(x_train).shape[1], 2)
    with torch.no_grad():  # logistic regression is convex: start from zero, no RNG needed
        model.weight.zero_()
        model.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        nn.functional.cross_entropy(model(features(x_train)), y_train).backward()
        opt.step()
    with torch.no_grad():
        return (model(features(x_test)).argmax(1) == y_test).double().mean().item()


def test_radial_features_solution():
    x = torch.tensor([[3.0, 4.0], [0.0, -1.0]])
    np.testing.assert_allclose(solutions.radial_features(x).numpy(), [[3, 4, 25], [0, -1, 1]])
    split = tc.task_data(dataclasses.replace(SMOKE, n_train=200, n_test=500), "circles", 0)
    args = (split.x_train, split.y_train, split.x_test, split.y_test)
    assert _logistic_accuracy(solutions.radial_features, *args) > 0.95
    assert _logistic_accuracy(lambda v: v, *args) < 0.75  # no hidden layer, raw inputs: fails
    with pytest.raises(NotImplementedError):
        stubs.radial_features(x)


def test_report_verdicts_follow_the_summary_when_set_by_hand(results):
    """Each verdict branch of the report is driven by the summary, not by fixed text."""
    s = dataclasses.replace(results).summary
    s = {**s, "verdicts": [dict(v) for v in s["verdicts"]]}
    s["depth_trace"] = [{**r, "differs": False} for r in s["depth_trace"]]
    s["depth_changes"] = [{**c, "differs": False} for c in s["depth_changes"]]
    for v in s["verdicts"]:
        if v["depth"] == 1:
            v["tied_with_best"], v["differs_from_best"] = v["ranking"][1:], []
    text = SPEC.report(dataclasses.replace(results, summary=s))
    for task in SMOKE.tasks:
        assert f"On **{task}** the activations tie" in text
    assert "they tie on " + ", ".join(SMOKE.tasks[:-1]) + " and " + SMOKE.tasks[-1] in text
    assert "does not fall significantly" in text
    assert "changes beyond noise for no activation and task" in text
    assert "So the lesson's claim" not in text
