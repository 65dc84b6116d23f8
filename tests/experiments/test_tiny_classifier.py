"""The tiny-classifier lesson against independent references: plain nn.Sequential models trained
alone with torch.optim.Adam, autograd gradients, SciPy's paired t-test (``ttest_rel``), the
metrics table, a run folder round trip; and the exercises' solutions."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from reference import plain_sequential, torch_default_draw
from scipy import stats as st
from torch import nn

from actlab.data import make_split
from actlab.experiments.tiny_classifier import SPEC
from actlab.experiments.tiny_classifier import exercises as stubs
from actlab.experiments.tiny_classifier import experiment as tc
from actlab.experiments.tiny_classifier import solutions as solutions
from actlab.models import EnsembleMLP
from actlab.probes import dead_fraction as probe_dead_fraction
from actlab.report.exercises import KINDS, exercises_markdown
from actlab.seeding import derive_seed
from actlab.stats import paired_differs
from actlab.store import RunStore

SMOKE = tc.SMOKE


@pytest.fixture(scope="module")
def results():
    return tc.run(SMOKE)


TORCH_ACT = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),  # actlab's default slope
}


def _initial_ensemble(cfg, depth):
    """The ensemble of one depth exactly as the experiment builds it, before training."""
    table = tc.members(cfg)
    table = table[table.depth == depth].reset_index(drop=True)
    model = EnsembleMLP(
        2, [cfg.width] * depth, 2, list(table.activation), list(table.seed), init=cfg.init
    )
    return model, table


def _initial_weights(cfg, depth, seed):
    """Seed ``seed``'s initial weights written out with plain torch (:mod:`reference`), float32."""
    assert cfg.init == "torch"
    draw = torch_default_draw([2] + [cfg.width] * depth + [2], seed)
    return [(w.float(), b.float()) for w, b in draw]


def _initial_sequential(cfg, depth, act, seed):
    """Seed ``seed``'s initial network as nn.Linear layers and torch.nn activation modules."""
    assert cfg.init == "torch"
    return plain_sequential([2] + [cfg.width] * depth + [2], seed, TORCH_ACT[act])


def _split(cfg, task, seed):
    """The documented draw of (task, seed), not through ``tc.task_data``: ``make_split`` seeded
    with ``derive_seed(data_seed, "tiny-classifier", seed)`` (seed 0's draw for every seed when
    ``resample_data`` is off)."""
    draw = seed if cfg.resample_data else 0
    seed = derive_seed(cfg.data_seed, "tiny-classifier", draw)
    return make_split(task, seed, cfg.n_train, cfg.n_test, cfg.n_val)


def _initial_member(cfg, depth, task, act, seed):
    """The initial network of one member (independent of the engine) and its data split."""
    return _initial_sequential(cfg, depth, act, seed), _split(cfg, task, seed)


def _train_alone(cfg, depth, task, act, seed):
    """One member as a plain nn.Sequential with torch.nn activations, from the same initial
    weights, trained alone with torch.optim.Adam on its data, full batch: the network after
    training, its split, and per epoch (0..epochs) the training and held-out loss, and (before
    each update) the first layer's mean |dL/dW|."""
    seq, split = _initial_member(cfg, depth, task, act, seed)
    opt = torch.optim.Adam(seq.parameters(), lr=cfg.lr)
    losses, test_losses, first_grads = [], [], []
    for epoch in range(cfg.epochs + 1):
        with torch.no_grad():
            test_losses.append(nn.functional.cross_entropy(seq(split.x_test), split.y_test).item())
        loss = nn.functional.cross_entropy(seq(split.x_train), split.y_train)
        losses.append(loss.item())
        if epoch == cfg.epochs:
            break
        opt.zero_grad()
        loss.backward()
        first_grads.append(seq[0].weight.grad.abs().mean().item())
        opt.step()
    return seq, split, np.array(losses), np.array(test_losses), np.array(first_grads)


def _accuracy_bounds(seq, x, y, tol=1e-4):
    """Held-out accuracy of ``seq`` as an interval: a point whose two logits lie within
    ``tol`` of each other may be classified either way by another summation order (the
    ensemble's batched matmul vs nn.Linear), so it counts as right at most and wrong at least."""
    with torch.no_grad():
        out = seq(x)
    right = out.argmax(1) == y
    near = (out[:, 1] - out[:, 0]).abs() < tol
    n = len(y)
    return (right & ~near).sum().item() / n, (right | near).sum().item() / n


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
    """Equal to float rounding (rtol 1e-4 on the loss after 40 Adam steps, 1e-3 on a mean
    |gradient|): the ensemble's batched matmul and nn.Linear sum in different orders."""
    cfg = SMOKE
    seq, split, losses, test_losses, grads = _train_alone(cfg, depth, task, act, seed)
    m = _global_member(cfg, depth, task, act, seed)
    np.testing.assert_allclose(results.arrays["train_loss"][m], losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results.arrays["grad_first"][m], grads, rtol=1e-3, atol=1e-9)
    evals = list(cfg.eval_epochs)
    assert results.coords["test_loss/eval"] == evals
    np.testing.assert_allclose(results.arrays["test_loss"][m], test_losses[evals], rtol=1e-4)
    # Held-out accuracy and validation loss after training recomputed independently equal the
    # reported ones (array, table); a point on the boundary to float rounding may go either way.
    lo, hi = _accuracy_bounds(seq, split.x_test, split.y_test)
    assert lo <= results.arrays["test_acc"][m, -1] <= hi
    with torch.no_grad():
        val_loss = nn.functional.cross_entropy(seq(split.x_val), split.y_val).item()
    assert results.arrays["val_loss"][m] == pytest.approx(val_loss, rel=1e-4)
    metrics = results.metrics
    row = metrics[(metrics.member == m) & (metrics.step == cfg.epochs)]
    assert lo <= row[row.metric == "test/accuracy"].value.item() <= hi
    assert row[row.metric == "test/loss"].value.item() == pytest.approx(test_losses[-1], rel=1e-4)
    if act in ("relu", "leaky_relu"):  # units off at the last probe epoch, on held-out inputs
        assert results.coords["units/probe"][-1] == cfg.epochs
        lo, hi = _off_bounds(seq, split.x_test)
        got = results.arrays["units"][m, -1, :depth, tc.UNIT_METRICS.index("act/off_fraction")]
        assert np.all((lo <= got) & (got <= hi)), (got, lo, hi)
    # The per-layer gradient at the last probe epoch is the gradient at the final weights (no
    # update follows it; it used to be left NaN), by autograd on the network trained alone.
    assert results.coords["grad_layers/probe"][-1] == cfg.epochs
    seq.zero_grad()
    nn.functional.cross_entropy(seq(split.x_train), split.y_train).backward()
    final = [mod.weight.grad.abs().mean().item() for mod in seq if isinstance(mod, nn.Linear)]
    got = results.arrays["grad_layers"][m, -1, : depth + 1]
    np.testing.assert_allclose(got, final, rtol=1e-2, atol=1e-7)
    if depth == 1:  # and the decision boundary is this network's class-1 probability
        t = cfg.tasks.index(task)
        g1, g2 = results.arrays["grid_x1"][t], results.arrays["grid_x2"][t]
        mesh = torch.tensor(np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2), dtype=torch.float32)
        with torch.no_grad():
            prob = torch.softmax(seq(mesh), 1)[:, 1].reshape(cfg.grid, cfg.grid).numpy()
        a = cfg.activations.index(act)
        np.testing.assert_allclose(results.arrays["boundary"][t, a, seed], prob, atol=1e-5)


def test_same_initial_weights_across_activations_and_tasks():
    """Every member's initial weights are its seed's independent draw, whatever its activation
    and task (and other seeds give other weights)."""
    for depth in SMOKE.depths:
        model, table = _initial_ensemble(SMOKE, depth)
        for seed in range(SMOKE.seeds):
            expected = _initial_weights(SMOKE, depth, seed)
            for m in table.index[table.seed == seed]:
                for layer, (w, b) in enumerate(expected):
                    assert torch.equal(model.weight(layer)[m], w)
                    assert torch.equal(model.bias(layer)[m], b)
    first, second = _initial_weights(SMOKE, 1, 0), _initial_weights(SMOKE, 1, 1)
    assert not torch.equal(first[0][0], second[0][0])


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


def _off_bounds(seq, x, tol=1e-5):
    """Per hidden layer, the fraction of units off on every input of ``x`` (max pre-activation
    <= 0: ReLU's output is exactly 0, LeakyReLU's pre-activation negative) as an interval: a
    unit whose max pre-activation is within ``tol`` of 0 may count either way to float
    rounding."""
    lo, hi, h = [], [], x
    with torch.no_grad():
        for module in seq[:-1]:
            if isinstance(module, nn.Linear):
                top = module(h).max(0).values
            h = module(h)
            if not isinstance(module, nn.Linear):
                lo.append(((top <= 0) & (top.abs() >= tol)).double().mean().item())
                hi.append(((top <= 0) | (top.abs() < tol)).double().mean().item())
    return np.array(lo), np.array(hi)


def test_unit_probes_equal_a_direct_count(results):
    """Units off at epoch 0 on the held-out inputs (not the training inputs, which give other
    counts for some members), counted by hand per layer, layer 1 nearest the input, in the array
    and in the table."""
    cfg, depth, m_tab = SMOKE, 3, results.metrics
    k = tc.UNIT_METRICS.index("act/off_fraction")
    differs_from_train = asymmetric = 0
    for act in ("relu", "leaky_relu"):
        for task in cfg.tasks:
            for seed in range(cfg.seeds):
                seq, split = _initial_member(cfg, depth, task, act, seed)
                lo, hi = _off_bounds(seq, split.x_test)
                m = _global_member(cfg, depth, task, act, seed)
                got = results.arrays["units"][m, 0, :depth, k]
                assert np.all((lo <= got) & (got <= hi)), (task, act, seed, got, lo, hi)
                rows = m_tab[(m_tab.member == m) & (m_tab.metric == "act/off_fraction")]
                rows = rows[rows.step == 0].sort_values("layer")
                assert rows.layer.tolist() == [1.0, 2.0, 3.0]
                np.testing.assert_array_equal(rows.value.to_numpy(), got)
                differs_from_train += not np.allclose(_off_bounds(seq, split.x_train)[0], lo)
                asymmetric += not np.array_equal(lo, lo[::-1])
    assert differs_from_train and asymmetric  # a swapped input set or layer order would show
    m = _global_member(cfg, depth, "circles", "relu", 0)
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
            hi = min(acc.mean() + half, 1.0)  # a proportion's interval stops at 1
            assert row["test_acc"]["hi"] == pytest.approx(hi, rel=1e-9, abs=1e-12)
            loss = m[sel & (m.metric == "train/loss")].value
            assert row["train_loss"]["mean"] == pytest.approx(loss.mean(), rel=1e-12)
            loss = m[sel & (m.metric == "test/loss")].value
            assert row["test_loss"]["mean"] == pytest.approx(loss.mean(), rel=1e-12)
            idx = _members_of(depth, row["task"], row["activation"], row["lr"], results)
            # Gradients: at step 0 from the table; over training (per seed, the mean of log10
            # over every step) from the array; kappa at step 0 from grad_layers (first layer
            # over the last hidden layer, index depth - 1), which the autograd test checks.
            at0 = (m.depth == depth) & (m.task == row["task"]) & (m.activation == row["activation"])
            at0 &= np.isclose(m.lr, row["lr"]) & (m.step == 0)
            g0 = m[at0 & (m.metric == "grad/weight_mean_abs")].sort_values("seed").value
            assert row["grad_first_init"]["mean"] == pytest.approx(np.log10(g0).mean(), rel=1e-9)
            per_seed = np.log10(results.arrays["grad_first"][idx]).mean(axis=1)
            assert row["grad_first_mean"]["n"] == cfg.seeds
            assert row["grad_first_mean"]["mean"] == pytest.approx(per_seed.mean(), rel=1e-9)
            layers = results.arrays["grad_layers"][idx, 0]
            ratio = np.log10(layers[:, 0]) - np.log10(layers[:, depth - 1])
            assert row["log10_kappa_init"]["mean"] == pytest.approx(ratio.mean(), abs=1e-9)
            # Unit probes: per seed the mean over the network's layers, then over seeds.
            for key, per_probe in row["units"].items():
                for p, epoch in enumerate(cfg.probe_epochs):
                    u = m[(m.metric == key) & (m.step == epoch) & m.member.isin(idx)]
                    per_member = u.groupby("member").value.mean()
                    assert len(per_member) == cfg.seeds and (u.layer <= depth).all()
                    if per_member.isna().all():
                        assert math.isnan(per_probe[p]["mean"])
                    else:
                        assert per_probe[p]["mean"] == pytest.approx(per_member.mean(), rel=1e-12)


def _members_of(depth, task, act, lr, results=None):
    """Global member indices of one (depth, task, activation, rate), in seed order (with
    ``results``: among all its members, the grid's extensions included)."""
    t = tc.members(SMOKE)
    if results is not None:
        t = pd.DataFrame(results.summary["members"]).reset_index(names="member")
    sel = (t.depth == depth) & (t.task == task) & (t.activation == act) & np.isclose(t.lr, lr)
    return t[sel].sort_values("seed").member.to_numpy()


def _welch(a, b) -> bool:
    """SciPy's Welch test at 5% (NaN p, two constant samples, is no difference)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(st.ttest_ind(a, b, equal_var=False).pvalue < 0.05)


def _paired(a, b) -> bool:
    """SciPy's paired t-test (``ttest_rel``) at 5% of ``a`` and ``b`` given in the same seed
    order, over the pairs where both are finite; a constant difference (NaN p) differs exactly
    when it is not 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return False
    d = a - b
    if np.all(d == d[0]):
        return bool(d[0] != 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(st.ttest_rel(a, b).pvalue < 0.05)


def _final_accuracy(results, depth, task, act):
    """Held-out accuracy at the last epoch per seed at the shared rate, from the table."""
    m = results.metrics
    sel = (m.metric == "test/accuracy") & (m.step == SMOKE.epochs) & (m.depth == depth)
    sel &= (m.task == task) & (m.activation == act) & np.isclose(m.lr, SMOKE.lr)
    return m[sel].sort_values("seed").value.to_numpy()


def test_gradient_verdicts_rank_the_smallest_gradient_first(results):
    """Per depth and task: the activation with the lowest mean over training of log10 mean
    |dL/dW_1| comes first (the verdict is about vanishing), the others split by the paired
    test (same seeds: same data and initial weights)."""
    cfg = SMOKE
    for v in results.summary["grad_verdicts"]:
        logs = {
            a: np.log10(results.arrays["grad_first"][_members_of(v["depth"], v["task"], a, cfg.lr)])
            for a in cfg.activations
        }
        per_seed = {a: g.mean(axis=1) for a, g in logs.items()}
        means = {a: x.mean() for a, x in per_seed.items()}
        assert v["ranking"] == sorted(means, key=means.get)
        assert v["best"] == min(means, key=means.get)
        for a in v["ranking"][1:]:
            assert (a in v["differs_from_best"]) == _paired(per_seed[v["best"]], per_seed[a])


def _initial_log_ratio(cfg, depth, task, act, seed) -> float:
    """log10 kappa: layer 1's mean |dL/dW| over the last hidden layer's (the weights into
    hidden layer ``depth``, as in deep-mlp; not the output layer's) before any update, by
    autograd on the plain network."""
    seq, split = _initial_member(cfg, depth, task, act, seed)
    nn.functional.cross_entropy(seq(split.x_train), split.y_train).backward()
    lins = [m for m in seq if isinstance(m, nn.Linear)]
    assert len(lins) == depth + 1
    first, last = (lin.weight.grad.abs().mean().item() for lin in (lins[0], lins[depth - 1]))
    return math.log10(first) - math.log10(last)


def test_depth_trace_is_the_initial_gradient_ratio_by_autograd(results):
    """The lesson's claim across depth, per activation: the ratio at initialisation recomputed
    by autograd on plain networks (equal to float rounding: 1e-4 in log10), per seed the mean
    over tasks (a seed's tasks share its initial weights, so they are not independent), the
    interval over the seeds, and the shallowest vs the deepest network compared by the paired
    test on those per-seed values (a seed gives both depths its data and first layer)."""
    cfg = SMOKE
    assert [t["activation"] for t in results.summary["depth_trace"]] == list(cfg.activations)
    for trace in results.summary["depth_trace"]:
        act = trace["activation"]
        deep = [d for d in cfg.depths if d >= 2]  # at one hidden layer kappa is 1
        assert trace["depths"] == deep
        ratios = {  # (seeds,): per seed, the mean over tasks
            d: np.array(
                [
                    np.mean([_initial_log_ratio(cfg, d, t, act, s) for t in cfg.tasks])
                    for s in range(cfg.seeds)
                ]
            )
            for d in deep
        }
        for d, ci in zip(deep, trace["kappa_init"], strict=True):
            assert ci["n"] == cfg.seeds  # not tasks * seeds
            assert ci["mean"] == pytest.approx(ratios[d].mean(), abs=1e-4)
            assert ci["sd"] == pytest.approx(ratios[d].std(ddof=1), abs=1e-3)
            half = st.t.ppf(0.975, cfg.seeds - 1) * ratios[d].std(ddof=1) / math.sqrt(cfg.seeds)
            assert ci["hi"] - ci["mean"] == pytest.approx(half, abs=1e-3)
        for d, ci in zip(deep, trace["kappa_per_layer"], strict=True):
            assert ci["mean"] == pytest.approx(ratios[d].mean() / (d - 1), abs=1e-4)
        if len(deep) > 1:
            assert trace["differs"] == _paired(ratios[deep[0]], ratios[deep[-1]])
        else:
            assert trace["differs"] is None
    assert _initial_log_ratio(cfg, 1, "xor", "tanh", 0) == 0.0  # kappa = 1 by definition


def test_depth_changes_compare_the_shallowest_and_the_deepest_network(results):
    cfg = SMOKE
    shallow, deep = cfg.depths[0], cfg.depths[-1]
    assert len(results.summary["depth_changes"]) == len(cfg.activations) * len(cfg.tasks)
    for c in results.summary["depth_changes"]:
        a1 = _final_accuracy(results, shallow, c["task"], c["activation"])
        a2 = _final_accuracy(results, deep, c["task"], c["activation"])
        assert c["shallow"]["mean"] == pytest.approx(a1.mean(), rel=1e-12)
        assert c["deep"]["mean"] == pytest.approx(a2.mean(), rel=1e-12)
        assert c["differs"] == _paired(a1, a2)


def test_verdicts_follow_scipys_paired_test(results):
    cfg, m = SMOKE, results.metrics
    final = m[(m.metric == "test/accuracy") & (m.step == cfg.epochs) & (m.depth == 1)]
    final = final[np.isclose(final.lr, cfg.lr)]
    for v in (
        v for v in results.summary["verdicts"] if v["depth"] == 1 and v["protocol"] == "shared"
    ):
        acc = {  # seed order
            a: final[(final.task == v["task"]) & (final.activation == a)]
            .sort_values("seed")
            .value.to_numpy()
            for a in cfg.activations
        }
        means = {a: acc[a].mean() for a in cfg.activations}
        assert v["best"] == max(means, key=means.get)
        for a in v["ranking"][1:]:
            assert (a in v["differs_from_best"]) == _paired(acc[v["best"]], acc[a])


def test_tuned_rate_is_the_best_on_validation(results):
    """Recomputed from the table over every rate tried (extensions included): the highest mean
    validation accuracy, ties to the lower mean validation loss, among the rates where no seed
    diverged."""
    cfg, m = SMOKE, results.metrics
    members = pd.DataFrame(results.summary["members"]).reset_index(names="member")
    val = m[(m.depth == 1) & (m.step == cfg.epochs)]
    for pick in results.summary["tuned_lr"]:
        arm = (val.task == pick["task"]) & (val.activation == pick["activation"])
        tried = sorted(set(val[arm].lr))
        row = next(
            r
            for r in results.summary["table"]
            if r["protocol"] == "tuned"
            and (r["task"], r["activation"]) == (pick["task"], pick["activation"])
        )
        assert row["lr_tried"] == pytest.approx(tried)
        assert set(cfg.learning_rates) <= set(tried)
        scores = {}
        for lr in tried:
            sel = arm & np.isclose(val.lr, lr)
            acc = val[sel & (val.metric == "val/accuracy")].value
            loss = val[sel & (val.metric == "val/loss")].value
            assert len(acc) == len(loss) == cfg.seeds
            idx = members.member[
                (members.depth == 1)
                & (members.task == pick["task"])
                & (members.activation == pick["activation"])
                & np.isclose(members.lr, lr)
            ]
            if (results.arrays["diverged_step"][idx] < 0).all():
                scores[lr] = (-acc.mean(), loss.mean())
        assert pick["lr"] == min(scores, key=scores.get)
        best = pick["lr"]
        interior = min(tried) < best < max(tried)
        assert (pick["status"] == "interior") == interior
    assert set(results.summary["learning_rates"]) == set(cfg.learning_rates)


def test_tuned_rate_never_looks_at_held_out_data_or_diverged_rates():
    """Hand-set arrays: tanh's best rate on validation is the worst on held-out data; relu's
    two best rates tie on validation accuracy and the lower validation loss wins; sigmoid's best
    rate diverged on one seed and is not eligible."""
    cfg = dataclasses.replace(
        SMOKE, tasks=("xor",), activations=("tanh", "relu", "sigmoid"), lr_grid=(0.005, 0.05)
    )
    table = tc.members(cfg)
    E = len(table)
    arrays = {
        "val_acc": np.full(E, 0.5),
        "val_loss": np.full(E, 1.0),
        "test_acc": np.full((E, 2), 0.5),
        "test_loss": np.full((E, 2), 1.0),
        "diverged_step": np.full(E, -1),
    }

    def put(act, lr, key, value, seeds=slice(None)):
        idx = tc._group(table, 1, "xor", act, lr)[seeds]  # noqa: SLF001
        arrays[key][idx] = value

    put("tanh", 0.005, "val_acc", 0.9)
    put("tanh", 0.02, "val_loss", 0.2)  # a lower loss does not beat a higher accuracy
    put("tanh", 0.05, "test_acc", 1.0)
    put("tanh", 0.05, "test_loss", 0.0)
    put("relu", 0.02, "val_acc", 0.8)
    put("relu", 0.05, "val_acc", 0.8)
    put("relu", 0.05, "val_loss", 0.5)
    put("sigmoid", 0.05, "val_acc", 0.95)
    put("sigmoid", 0.05, "diverged_step", 7, seeds=slice(0, 1))
    put("sigmoid", 0.005, "val_acc", 0.7)
    decisions = tc._decide(cfg, table, [arrays])  # noqa: SLF001
    picks = {arm: d.pick for arm, d in decisions.items()}
    assert picks == {("xor", "tanh"): 0.005, ("xor", "relu"): 0.05, ("xor", "sigmoid"): 0.005}
    # tanh and sigmoid at the low edge, relu at the high edge: each asks for one more rate
    assert decisions["xor", "tanh"].next_rate == pytest.approx(0.005 / tc.LR_FACTOR)
    assert decisions["xor", "relu"].next_rate == pytest.approx(0.05 * tc.LR_FACTOR)
    assert decisions["xor", "sigmoid"].status == "edge"


# A config whose picks reach the edge of the grid: a short run, so larger rates do better.
EDGE = dataclasses.replace(
    SMOKE,
    activations=("tanh", "relu"),
    tasks=("linear", "moons"),
    seeds=2,
    depths=(1,),
    epochs=8,
    lr=0.01,
    lr_grid=(0.003,),
    lr_max=0.05,
    lr_extend=2,
    probe_epochs=(0, 8),
    eval_every=4,
)


def test_every_tuned_pick_is_interior_or_flagged_in_the_report():
    """The grid widens (chunks extend{round}-lr{rate}, only the arms that need it) until a pick
    is interior or a bound is hit; the report names every pick that is not interior."""
    keys = []

    def chunks(key, fn, work):
        keys.append(key)
        return fn()

    res = tc.run(EDGE, chunks)
    assert keys[0] == "depth-1" and any(k.startswith("extend1-lr") for k in keys)
    rows = [r for r in res.summary["table"] if r["protocol"] == "tuned"]
    assert len(rows) == len(EDGE.tasks) * len(EDGE.activations)
    text = SPEC.report(res)
    flagged = 0
    for r in rows:
        tried = r["lr_tried"]
        assert min(tried) >= EDGE.lr_min and max(tried) <= EDGE.lr_max
        if min(tried) < r["lr"] < max(tried):
            assert r["lr_status"] == "interior"
        else:
            flagged += 1
            assert r["lr_status"] in ("edge", "at lr_min", "at lr_max")
            assert f"{r['activation']} on {r['task']} ({r['lr']:g})" in text
            assert r["lr_status_text"] in text
    assert flagged > 0  # the config reaches the edge, or the test tests nothing
    assert f"{flagged} of {len(rows)} picks" in text
    # every extension rate is a factor LR_FACTOR beyond a rate tried, or a bound
    rates = set(pd.DataFrame(res.summary["members"]).lr)
    for r in rates - set(EDGE.learning_rates):
        steps = [q * f for q in rates for f in (tc.LR_FACTOR, 1 / tc.LR_FACTOR)]
        assert np.isclose(steps, r).any() or r in (EDGE.lr_min, EDGE.lr_max)


def test_every_pick_interior_gives_the_interior_sentence(results):
    s = {
        **results.summary,
        "tuned_lr": [dict(r, status="interior") for r in results.summary["tuned_lr"]],
    }
    text = SPEC.report(dataclasses.replace(results, summary=s))
    assert "Every pick is interior" in text and "picks is not interior" not in text


def test_tuned_table_gives_accuracy_and_loss_with_intervals(results):
    text = SPEC.report(results)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    for r in (r for r in results.summary["table"] if r["protocol"] == "tuned"):
        acc = r["test_acc"]
        row = next(
            line for line in lines if line.startswith(f"| {r['task']} | {r['activation']} | ")
        )
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == f"{r['lr']:g}"
        assert cells[5].startswith(f"{100 * acc['mean']:.1f}% [")
        lo, hi = max(100 * acc["lo"], 0.0), min(100 * acc["hi"], 100.0)
        assert cells[5] == f"{100 * acc['mean']:.1f}% [{lo:.1f}, {hi:.1f}]"
        assert cells[6].count("[") == 1 and cells[6].endswith("]")
        assert r["test_loss"]["lo"] >= 0 and 0 <= acc["lo"] <= acc["hi"] <= 1  # kept in range
        assert "-" not in cells[6]


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
    # the shared-rate verdicts, before the tuned section (which repeats a changed verdict)
    shared_text = text.split("**Is it the learning rate?**")[0]
    for v in (
        v for v in results.summary["verdicts"] if v["depth"] == 1 and v["protocol"] == "shared"
    ):
        tie = f"On **{v['task']}** the activations tie"
        assert (tie in shared_text) == (not v["differs_from_best"])
        if v["differs_from_best"]:
            assert f"On **{v['task']}**, {v['best']} has the highest mean" in text
            assert " is best" not in text  # a mean within noise of others is not "best"
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
    n = len(results.summary["members"]["seed"])  # the grid's extensions come after members()
    assert n > len(tc.members(SMOKE))
    assert results.arrays["train_loss"].shape == (n, SMOKE.epochs + 1)


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
        ({"lr_extend": -1}, "lr_extend"),
        ({"lr_min": 0.0}, "lr_min"),
        ({"lr_max": 1e-5}, "lr_max"),
        ({"lr_max": 0.01}, "lr_max"),
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
    assert "changes beyond noise for no activation and task" in text
    assert "No activation loses held-out accuracy significantly" in text


def _plain_hidden(cfg, depth, act, seed, x):
    """Pre- and post-activations of every hidden layer of the plain initial network on ``x``."""
    seq = _initial_sequential(cfg, depth, act, seed)
    out, h = [], x
    for module in seq[:-1]:
        z, h = h, module(h)
        if not isinstance(module, nn.Linear):
            out.append((z, h))
    return seq, out


def test_saturated_pair_share_equals_a_direct_count(results):
    """The per-input share: (unit, input) pairs with |tanh| > 0.99 (sigmoid outside
    [0.01, 0.99]) on the held-out inputs, per layer then averaged, at initialisation and after
    training; the every-input fraction is never above it."""
    cfg, depth, task, seed = SMOKE, 3, "circles", 1
    split = _split(cfg, task, seed)
    k = tc.UNIT_METRICS.index("act/saturated_pair_fraction")
    every = tc.UNIT_METRICS.index("act/saturated_fraction")
    for act, band in (
        ("tanh", lambda h: h.abs() > 0.99),
        ("sigmoid", lambda h: (h < 0.01) | (h > 0.99)),
    ):
        m = _global_member(cfg, depth, task, act, seed)
        with torch.no_grad():
            _, hidden = _plain_hidden(cfg, depth, act, seed, split.x_test)
        expected = [band(h).double().mean().item() for _, h in hidden]
        np.testing.assert_allclose(results.arrays["units"][m, 0, :depth, k], expected, atol=1e-3)
        assert np.all(
            results.arrays["units"][m, :, :depth, every] <= results.arrays["units"][m, :, :depth, k]
        )
    relu = _global_member(cfg, depth, task, "relu", seed)
    assert np.isnan(results.arrays["units"][relu, :, :depth, k]).all()
    # after training, where the share is far from 0 (tanh on linear): the network trained alone
    seq, split, *_ = _train_alone(cfg, depth, "linear", "tanh", 0)
    h, shares = split.x_test, []
    with torch.no_grad():
        for module in seq[:-1]:
            h = module(h)
            if not isinstance(module, nn.Linear):
                shares.append((h.abs() > 0.99).double().mean().item())
    m = _global_member(cfg, depth, "linear", "tanh", 0)
    got = results.arrays["units"][m, -1, :depth, k]
    assert max(shares) > 0.2  # a share the every-input fraction (0 here) cannot stand in for
    np.testing.assert_allclose(got, shares, atol=0.01)
    # the report gives both numbers per bounded activation
    text = SPEC.report(results)
    assert "saturated (every input)" in text and "saturated (per input)" in text


def test_init_weight_var_and_predicted_factor_against_nn_linear():
    """Var(w) of torch's default init from nn.Linear's own draws (not actlab's), and the
    predicted factor per layer: sqrt(fan_in Var(w) E[phi'^2]) = sqrt(1/6) for ReLU."""
    torch.manual_seed(0)
    w = torch.cat([nn.Linear(8, 8).weight.detach().reshape(-1) for _ in range(3000)])
    assert tc.init_weight_var("torch", 8, 8) == pytest.approx(w.double().var().item(), rel=0.02)
    w = torch.empty(8, 8 * 3000)
    nn.init.xavier_uniform_(w.view(8, 3000, 8)[:, 0, :])  # one 8 -> 8 layer: bound sqrt(6/16)
    assert tc.init_weight_var("xavier", 8, 8) == pytest.approx(6 / 16 / 3)
    assert tc.predicted_spread_factor("torch", 8, "relu") == pytest.approx(
        math.sqrt(1 / 6), rel=1e-3
    )
    assert tc.predicted_spread_factor("torch", 8, "tanh") == pytest.approx(
        math.sqrt(1 / 3), rel=1e-3
    )
    assert tc.predicted_spread_factor("torch", 8, "sigmoid") == pytest.approx(
        math.sqrt(1 / 3) / 4, rel=1e-3
    )
    assert tc.predicted_spread_factor("he", 8, "relu") == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="init"):
        tc.init_weight_var("orthogonal", 8, 8)


def test_measured_spread_and_backward_signal_by_autograd(results):
    """spread_init and delta_init of a member equal the plain network's: std over the training
    inputs of each pre-activation, mean over units; mean |dL/dz| by autograd."""
    cfg, depth, task, act, seed = SMOKE, 3, "moons", "relu", 2
    split = _split(cfg, task, seed)
    seq = _initial_sequential(cfg, depth, act, seed)
    zs, h = [], split.x_train
    for module in seq:
        h = module(h)
        if isinstance(module, nn.Linear) and len(zs) < depth:
            h.retain_grad()
            zs.append(h)
    nn.functional.cross_entropy(h, split.y_train).backward()
    m = _global_member(cfg, depth, task, act, seed)
    spread = [z.detach().std(0).mean().item() for z in zs]
    delta = [z.grad.abs().mean().item() for z in zs]
    np.testing.assert_allclose(results.arrays["spread_init"][m, :depth], spread, rtol=1e-4)
    np.testing.assert_allclose(results.arrays["delta_init"][m, :depth], delta, rtol=1e-3)
    entry = next(e for e in results.summary["init_trace"] if e["activation"] == act)
    assert entry["predicted"] == pytest.approx(math.sqrt(1 / 6), rel=1e-3)
    text = SPEC.report(results)
    row = next(line for line in text.splitlines() if line.startswith(f"| {act} | 0.41 |"))
    assert row.count("[") == 3  # measured spread, backward signal and kappa, with intervals


def _kappa_summary(results, kappa: dict[str, float], lost: set[str]):
    s = dict(results.summary)
    s["depth_trace"] = [
        {
            **r,
            "kappa_init": [dict(c) for c in r["kappa_init"][:-1]]
            + [{**r["kappa_init"][-1], "mean": kappa[r["activation"]]}],
        }
        for r in s["depth_trace"]
    ]
    s["depth_changes"] = [
        {
            **c,
            "differs": c["activation"] in lost,
            "shallow": {**c["shallow"], "mean": 0.9},
            "deep": {**c["deep"], "mean": 0.6 if c["activation"] in lost else 0.9},
        }
        for c in s["depth_changes"]
    ]
    return SPEC.report(dataclasses.replace(results, summary=s))


def test_accuracy_loss_is_not_pinned_on_the_gradient_when_the_numbers_disagree(results):
    """tanh loses accuracy, relu keeps it with a smaller kappa: the report must say so (the
    old text blamed vanishing gradients); when the loser has the smallest kappa, it says only
    that the two go together."""
    kappa = {"sigmoid": -1.0, "tanh": -1.3, "relu": -1.7, "leaky_relu": -1.0}
    text = _kappa_summary(results, kappa, {"tanh"})
    assert "Not alone" in text
    assert "relu keeps its accuracy although its first layer gets a smaller share" in text
    assert "than tanh's (1/20)" in text
    text = _kappa_summary(results, {**kappa, "tanh": -2.0}, {"tanh"})
    assert "Not alone" not in text
    assert "The activations that lose accuracy (tanh) are also those" in text
    assert "association, not a proof" in text


def test_smoke_report_uses_the_tutorial_notation(results):
    from actlab.report.notation import misplaced_symbols

    text = SPEC.report(results)
    assert misplaced_symbols(text, "tiny-classifier") == []
    assert "$L$-hidden" not in text and "(c/4)" not in text
    for term in (
        "paired",
        "t-interval",
        "seed",
        "held-out",
        "dead",
        "inactive",
        "saturated",
        "default-init",
    ):
        assert f"(#term-{term})" in text


def test_units_figure_rows_share_the_y_axis(results):
    figs = SPEC.figures(results)
    axes = figs["units"].axes
    rows = [a for a in axes if a.get_ylabel()]  # the first panel of each row carries the label
    for first in rows:
        same_row = [
            a for a in axes if a.get_position().y0 == pytest.approx(first.get_position().y0)
        ]
        assert len(same_row) == 2
        assert len({tuple(np.round(a.get_ylim(), 6)) for a in same_row}) == 1
    acc = figs["accuracy"].axes
    assert len({tuple(np.round(a.get_ylim(), 6)) for a in acc}) == 1


def test_prediction_sentence_follows_the_measured_factors(results):
    """Measured over predicted and the order come from the summary; the ReLU init sentence only
    where ReLU's kappa is below 1 over its whole interval."""
    s = dict(results.summary)
    s["init_trace"] = [
        {**r, "spread_per_layer": {**r["spread_per_layer"], "mean": math.log10(2 * r["predicted"])}}
        for r in s["init_trace"]
    ]
    text = SPEC.report(dataclasses.replace(results, summary=s))
    assert "are 2 to 2 times the predicted ones, in the predicted order" in text
    order = {"sigmoid": 0.9, "tanh": 0.1, "relu": 0.5, "leaky_relu": 0.5}
    s["init_trace"] = [
        {
            **r,
            "spread_per_layer": {
                **r["spread_per_layer"],
                "mean": math.log10(order[r["activation"]]),
            },
        }
        for r in s["init_trace"]
    ]
    assert "not in the predicted order" in SPEC.report(dataclasses.replace(results, summary=s))
    s["depth_trace"] = [
        {**r, "kappa_init": [{**c, "mean": -2.0, "hi": -1.0} for c in r["kappa_init"]]}
        for r in s["depth_trace"]
    ]
    text = SPEC.report(dataclasses.replace(results, summary=s))
    assert "So the shrinking of the relu and leaky_relu gradients with depth" in text
    s["depth_trace"] = [
        {**r, "kappa_init": [{**c, "mean": 0.1, "hi": 0.2} for c in r["kappa_init"]]}
        for r in s["depth_trace"]
    ]
    assert "So the shrinking" not in SPEC.report(dataclasses.replace(results, summary=s))


def test_parameter_counts_against_nn_sequential(results):
    """The counts the depth comparison names: 42 for 2 -> 8 -> 2, 546 with 8 hidden layers of 8
    (exercise 1), from plain nn.Linear layers."""
    for depth, expected in ((1, 42), (8, 546), (3, None)):
        layers, sizes = [], [2] + [8] * depth + [2]
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers.append(nn.Linear(a, b))
        count = sum(p.numel() for p in nn.Sequential(*layers).parameters())
        assert tc.n_parameters(8, depth) == count
        if expected is not None:
            assert count == expected
    sizes = [[2] + [SMOKE.width] * d + [2] for d in SMOKE.depths]
    counts = [sum(a * b + b for a, b in zip(z[:-1], z[1:], strict=True)) for z in sizes]
    assert results.summary["n_params"] == counts


def test_depth_comparison_names_its_confounds_and_whether_the_deep_net_fitted(results):
    """The depth sentence names the parameter counts, the shared rate and budget, and per
    significant fall whether the deep network fits its own training data worse than the
    shallow one classifies held-out points (under-trained) or not (unseen points only)."""
    s = dict(results.summary)
    s["n_params"] = [42, 546]

    def with_falls(train_acc: float):
        s["depth_changes"] = [
            {
                **c,
                "differs": (c["activation"], c["task"]) == ("sigmoid", "xor"),
                "shallow": {**c["shallow"], "mean": 0.93},
                "deep": {**c["deep"], "mean": 0.63},
                "deep_train_acc": {"mean": train_acc, "lo": None, "hi": None},
            }
            for c in s["depth_changes"]
        ]
        return SPEC.report(dataclasses.replace(results, summary=s))

    text = with_falls(0.68)
    assert "has 546 parameters against 42 (exercise 1)" in text
    assert f"the same {SMOKE.epochs} epochs at the shared rate {SMOKE.lr:g}" in text
    assert "sigmoid on xor (training accuracy 68.0%)" in text
    assert "under-trained in this budget, not over-fitted" in text
    assert "unseen points only" not in text
    text = with_falls(1.0)
    assert "under-trained" not in text
    assert "sigmoid on xor (training accuracy 100.0%) fits the training data" in text
    assert "unseen points only" in text
    # the summary's training accuracy of the deep network is the arrays' mean over seeds
    deep = SMOKE.depths[-1]
    for c in results.summary["depth_changes"]:
        idx = _members_of(deep, c["task"], c["activation"], SMOKE.lr)
        assert c["deep_train_acc"]["n"] == SMOKE.seeds
        assert c["deep_train_acc"]["mean"] == pytest.approx(
            results.arrays["train_acc"][idx].mean(), rel=1e-12
        )


def test_end_state_needs_the_whole_interval():
    """A change whose interval holds both a flat end and a fall is neither flat nor falling."""
    from actlab.experiments.tiny_classifier.report import end_state

    thr = 0.05
    assert end_state({"mean": -0.2, "lo": -0.3, "hi": -0.1}, thr) == "still falling"
    assert end_state({"mean": -0.06, "lo": -0.15, "hi": 0.03}, thr) == "unsettled"
    assert end_state({"mean": -0.01, "lo": -0.03, "hi": 0.01}, thr) == "flat"
    assert end_state({"mean": -0.03, "lo": -0.10, "hi": 0.04}, thr) == "unsettled"
    assert end_state({"mean": 0.2, "lo": 0.1, "hi": 0.3}, thr) == "rising"
    assert end_state({"mean": 0.2, "lo": None, "hi": None}, thr) == "unsettled"
    assert end_state({"mean": None, "lo": None, "hi": None}, thr) == "unknown"


def test_training_loss_change_and_budget_sentence(results):
    """The summary's end-of-training change is L(end) / L(end - w) - 1 of the training loss per
    seed (w: 10% of the epochs); the report's budget sentence follows hand-set values."""
    cfg = SMOKE
    w = max(1, round(0.1 * cfg.epochs))
    assert results.summary["tail_epochs"] == w
    for row in _shared_rows(results, 1):
        idx = _members_of(1, row["task"], row["activation"], row["lr"])
        loss = results.arrays["train_loss"][idx]
        change = loss[:, cfg.epochs] / loss[:, cfg.epochs - w] - 1
        assert row["train_loss_change"]["mean"] == pytest.approx(change.mean(), rel=1e-9)
        acc = results.arrays["train_acc"][idx]
        assert row["train_acc"]["mean"] == pytest.approx(acc.mean(), rel=1e-12)
    s = dict(results.summary)

    def report_with(change: dict, acc: float = 0.88) -> str:
        s["table"] = [
            {**r, "train_loss_change": dict(change), "train_acc": {**r["train_acc"], "mean": acc}}
            for r in results.summary["table"]
        ]
        return SPEC.report(dataclasses.replace(results, summary=s))

    n = len(cfg.tasks) * len(cfg.activations)
    text = report_with({"mean": -0.12, "lo": -0.15, "hi": -0.09})
    assert f"still falling for {n} of {n} (activation, task) pairs (by 12% to 12%" in text
    assert "a longer run could change them" in text and "plateau" not in text
    text = report_with({"mean": -0.01, "lo": -0.02, "hi": 0.0})
    assert "still falling for" not in text
    assert "flat for sigmoid on linear (training accuracy 88.0%)" in text
    assert "sits on a plateau" in text and "a longer run could change them" not in text
    text = report_with({"mean": -0.03, "lo": -0.10, "hi": 0.04})
    assert "not settled by the seeds for sigmoid on linear" in text


def test_saturation_sentence_says_no_unit_when_none(results):
    """'no unit on every input' where no unit is saturated on every input (it said 'at most 0%
    of the units'); 'at most X%' where some are."""
    import copy

    s = copy.deepcopy(results.summary)
    deep = SMOKE.depths[-1]
    for r in s["table"]:
        if r["depth"] == deep and r["activation"] == "tanh" and r["protocol"] == "shared":
            r["units"]["act/saturated_fraction"][0]["mean"] = 0.0
            r["units"]["act/saturated_pair_fraction"][0]["mean"] = 0.002
    text = SPEC.report(dataclasses.replace(results, summary=s))
    assert "tanh: no unit on every input, and 0.2% of the (unit, input) pairs" in text
    assert "at most 0%" not in text
    for r in s["table"]:
        if r["depth"] == deep and r["activation"] == "tanh" and r["task"] == "xor":
            r["units"]["act/saturated_fraction"][0]["mean"] = 0.25
    text = SPEC.report(dataclasses.replace(results, summary=s))
    assert "tanh: at most 25% of the units on every input" in text


def test_pooled_initial_quantities_are_per_seed_means_over_tasks(results):
    """The spread, backward signal and dead share at initialisation in the deepest network:
    per seed the mean over tasks, the interval over the seeds (n = seeds)."""
    cfg, deep = SMOKE, SMOKE.depths[-1]
    for entry in results.summary["init_trace"]:
        act = entry["activation"]
        spread = np.array(
            [
                [
                    results.arrays["spread_init"][_global_member(cfg, deep, t, act, seed)]
                    for t in cfg.tasks
                ]
                for seed in range(cfg.seeds)
            ]
        )  # (seed, task, layer)
        per_layer = (np.log10(spread[..., deep - 1]) - np.log10(spread[..., 0])) / (deep - 1)
        assert entry["spread_per_layer"]["n"] == cfg.seeds
        assert entry["spread_per_layer"]["mean"] == pytest.approx(per_layer.mean(), rel=1e-9)
        assert entry["spread_per_layer"]["sd"] == pytest.approx(
            per_layer.mean(axis=1).std(ddof=1), rel=1e-6
        )
        assert entry["delta_per_layer"]["n"] == cfg.seeds
        if entry["off_deepest_init"] is not None:
            assert entry["off_deepest_init"]["n"] == cfg.seeds


def test_figures_fit_the_page_width(results):
    """The page shows a figure about 800 px wide: no figure is wider than 9.5 inches (the
    accuracy and per-layer panels in two columns, the curves one row per task), so that its
    text keeps at least ~80% of its size; the training and held-out loss of a task share one
    y-scale."""
    figs = SPEC.figures(results)
    for name, fig in figs.items():
        assert fig.get_size_inches()[0] <= 9.5, name
    loss = figs["loss_curves"].axes
    assert len(loss) == 2 * len(SMOKE.tasks)
    for row in range(len(SMOKE.tasks)):
        train, test = loss[2 * row], loss[2 * row + 1]
        assert train.get_ylim() == pytest.approx(test.get_ylim())
    labels = [t.get_text() for t in loss[0].yaxis.get_ticklabels(which="both") if t.get_text()]
    assert labels and not any("times" in t or "^" in t for t in labels)


def _offset_case(seeds: int = 10, step: float = 0.02):
    """A hand-made pair of samples from the same seeds: a large per-seed offset (sd 0.1, what a
    seed's data draw and initial weights give both sides) plus, on side ``a``, a small
    consistent difference ``step`` (sd 0.002 over the seeds). As series indexed by seed."""
    rng = np.random.default_rng(7)
    offset = 0.7 + 0.1 * rng.standard_normal(seeds)
    b = offset
    a = offset + step + 0.002 * rng.standard_normal(seeds)
    index = pd.Index(np.arange(seeds), name="seed")
    return pd.Series(a, index=index), pd.Series(b, index=index)


def test_a_small_consistent_per_seed_difference_differs():
    """The chapter's verdict separates what the paired test separates (SciPy's ttest_rel as
    the reference) where Welch's test, blind to the pairing, calls it noise; the pairing is by
    seed, whatever order the seeds come in, and a seed missing on one side is dropped from
    both."""
    a, b = _offset_case()
    assert st.ttest_rel(a.to_numpy(), b.to_numpy()).pvalue < 0.05
    assert not _welch(a, b)  # the case is one where the unpaired test calls it noise
    assert tc._differs(a, b)
    v = tc._verdict({"same": b, "plus": a}, higher=True)
    assert v["best"] == "plus" and v["differs_from_best"] == ["same"]
    v = tc._verdict({"same": b, "plus": a}, higher=False)  # smaller is better: same first
    assert v["best"] == "same" and v["differs_from_best"] == ["plus"]
    # shuffled seed order on one side: still paired by seed (by position it would be noise)
    perm = np.random.default_rng(3).permutation(len(b))
    b_shuffled = b.iloc[perm]
    assert not paired_differs(a.to_numpy(), b_shuffled.to_numpy())  # positional pairing
    assert tc._differs(a, b_shuffled) and tc._differs(a.iloc[perm[::-1]], b_shuffled)
    x, y = tc.paired_by_seed(a.iloc[perm[::-1]], b_shuffled)
    np.testing.assert_array_equal(x, a.to_numpy())
    np.testing.assert_array_equal(y, b.to_numpy())
    v = tc._verdict({"same": b_shuffled, "plus": a}, higher=True)
    assert v["differs_from_best"] == ["same"]
    # a seed missing on one side: the other seeds stay paired
    x, y = tc.paired_by_seed(a.drop(index=4), b_shuffled)
    keep = np.arange(len(a)) != 4
    np.testing.assert_array_equal(x, a.to_numpy()[keep])
    np.testing.assert_array_equal(y, b.to_numpy()[keep])
    assert tc._differs(a.drop(index=4), b_shuffled) == bool(
        st.ttest_rel(a.to_numpy()[keep], b.to_numpy()[keep]).pvalue < 0.05
    )
    # no consistent difference: within noise either way
    noise = pd.Series(np.random.default_rng(5).permutation(b.to_numpy()), index=b.index)
    assert not tc._differs(b, noise) and st.ttest_rel(b, noise).pvalue >= 0.05


def _summary_of(results, table: pd.DataFrame, arrays: dict) -> dict:
    """The summary recomputed from ``arrays`` with the members ``table`` (any row order) and
    the grid decisions the run ended with."""
    keys = ("val_acc", "val_loss", "diverged_step")
    decisions = tc._decide(SMOKE, table, [{k: results.arrays[k] for k in keys}])
    return tc._summary(SMOKE, table, arrays, decisions)


def test_summary_verdicts_pair_by_seed_whatever_the_table_order(results):
    """Planted in the run's arrays, the offset case on the held-out accuracy: relu a little
    above the other activations at every seed on moons (one network), and tanh on xor a little
    higher with the deeper network; the summary calls both a difference, with the members table
    in its order and shuffled, and the verdicts agree with ttest_rel on the per-seed values."""
    cfg = SMOKE
    table = pd.DataFrame(results.summary["members"]).reset_index(names="member")
    arrays = {k: np.array(v, copy=True) for k, v in results.arrays.items()}
    rng = np.random.default_rng(11)
    offset = 0.7 + 0.1 * rng.standard_normal(cfg.seeds)
    step = {"sigmoid": 0.0, "tanh": 0.0, "relu": 0.02, "leaky_relu": 0.0}
    for act in cfg.activations:
        idx = _members_of(1, "moons", act, cfg.lr, results)
        jitter = 0.002 * rng.standard_normal(cfg.seeds)
        arrays["test_acc"][idx, -1] = offset + step[act] + jitter
    shallow, deep = cfg.depths[0], cfg.depths[-1]
    lo = _members_of(shallow, "xor", "tanh", cfg.lr, results)
    hi = _members_of(deep, "xor", "tanh", cfg.lr, results)
    arrays["test_acc"][lo, -1] = offset
    arrays["test_acc"][hi, -1] = offset + 0.02 + 0.002 * rng.standard_normal(cfg.seeds)
    acc_lo, acc_hi = arrays["test_acc"][lo, -1], arrays["test_acc"][hi, -1]
    assert st.ttest_rel(acc_hi, acc_lo).pvalue < 0.05 and not _welch(acc_hi, acc_lo)
    relu = arrays["test_acc"][_members_of(1, "moons", "relu", cfg.lr, results), -1]
    tanh = arrays["test_acc"][_members_of(1, "moons", "tanh", cfg.lr, results), -1]
    assert st.ttest_rel(relu, tanh).pvalue < 0.05 and not _welch(relu, tanh)

    shuffled = table.sample(frac=1.0, random_state=0)
    assert not shuffled.seed.is_monotonic_increasing
    summaries = [_summary_of(results, t, arrays) for t in (table, shuffled)]
    for s in summaries:
        v = next(
            v
            for v in s["verdicts"]
            if (v["depth"], v["protocol"], v["task"]) == (1, "shared", "moons")
        )
        assert v["best"] == "relu"
        assert sorted(v["differs_from_best"]) == sorted(a for a in cfg.activations if a != "relu")
        c = next(c for c in s["depth_changes"] if (c["activation"], c["task"]) == ("tanh", "xor"))
        assert c["differs"] and c["deep"]["mean"] > c["shallow"]["mean"]
    keys = ("table", "verdicts", "grad_verdicts", "depth_trace", "depth_changes", "init_trace")
    assert [json.dumps({k: s[k] for k in keys}, default=float) for s in summaries][0] == (
        json.dumps({k: summaries[1][k] for k in keys}, default=float)
    )
