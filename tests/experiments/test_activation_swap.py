"""The activation-swap experiment against independent references: each arm equals a plain
nn.Sequential trained alone with torch.optim.Adam (the swap = replacing its activation modules;
kept = the same optimiser goes on; reset = a fresh one; the fresh control = the initial ReLU
network trained with a new Adam on the last epochs' minibatches only), the reset checked on the
optimiser's state, the unit counts against the probes, the report against the results, and the
exercises' worked solutions against the engine and torch.optim.Adam."""

import copy
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from reference import plain_sequential
from scipy import stats as st
from torch import nn

from actlab.experiments.activation_swap import SPEC
from actlab.experiments.activation_swap import exercises as stubs
from actlab.experiments.activation_swap import experiment as sw
from actlab.experiments.activation_swap import solutions as sol
from actlab.experiments.activation_swap.report import build_report, convergence_verdict, verdict
from actlab.models import EnsembleMLP
from actlab.probes import ensemble_activation_metrics
from actlab.report.exercises import exercises_markdown
from actlab.report.format import num, ratio
from actlab.seeding import derive_seed
from actlab.train import TrainConfig, train

CFG = sw.SMOKE
ACT = {"tanh": nn.Tanh, "relu": nn.ReLU}


@pytest.fixture(scope="module")
def results():
    return sw.run(CFG)


@pytest.fixture(scope="module")
def at_swap():
    """The experiment's models and optimisers right after the swap (copies), and its arrays."""
    seen = {}

    def hook(ensembles):
        for name, (model, opt) in ensembles.items():
            seen[name] = {
                "flat": model.flat.detach().clone(),
                "m": opt.state["m"].clone(),
                "v": opt.state["v"].clone(),
                "steps": opt.steps.clone(),
                "member_of": opt.member_of.clone(),
                "probe": ensemble_activation_metrics(model, data["x_train"], ranks=False),
                "model": model,
            }

    data = sw.make_data(CFG)
    out = sw.train_arms(CFG, data, on_swap=hook)
    return seen, out


def _plain(seed: int, activation: str) -> nn.Sequential:
    """Seed ``seed``'s initial network written out with plain torch (:mod:`reference`)."""
    assert CFG.init == "torch"
    return plain_sequential([1] + [CFG.width] * CFG.depth + [1], seed, ACT[activation])


def _batch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The minibatch order of ``seed`` in ``epoch``, written out (not actlab's batch_order): a
    permutation from a generator seeded with ``derive_seed(seed, "batches", epoch)``."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "batches", epoch))
    return torch.randperm(n, generator=gen)


def _data():
    """The task written out from its description, not through ``sw.make_data``: x ~ U(-2, 2),
    y = sin(3x) + x/2 + noise * N(0, 1), train then held-out from one generator seeded with
    ``derive_seed(data_seed, "activation-swap", "data")``, drawn in float64, kept in float32."""
    gen = torch.Generator().manual_seed(derive_seed(CFG.data_seed, "activation-swap", "data"))
    data = {}
    for split, n in (("train", CFG.n_train), ("test", CFG.n_test)):
        x = -2.0 + 4.0 * torch.rand(n, 1, generator=gen, dtype=torch.float64)
        noise = torch.randn(n, 1, generator=gen, dtype=torch.float64)
        data[f"x_{split}"] = x.float()
        data[f"y_{split}"] = (torch.sin(3 * x) + x / 2 + CFG.noise * noise).float()
    return data


def _hidden(model: nn.Sequential, x: torch.Tensor) -> tuple[list, list]:
    """Per hidden layer: the pre-activations and the activation module's outputs on ``x``."""
    pre, post, h = [], [], x
    with torch.no_grad():
        for module in model[:-1]:
            h = module(h)
            (pre if isinstance(module, nn.Linear) else post).append(h)
    return pre, post


def _off_bounds(model: nn.Sequential, x: torch.Tensor, tol: float = 1e-5) -> np.ndarray:
    """``(2, layer)``: per hidden layer, the fraction of units with a negative pre-activation on
    every input, counted so that a unit within ``tol`` of 0 is left out (row 0) or counted (row
    1): another summation order may put it either side of 0. For ReLU this is also the fraction
    whose output is exactly 0 on every input."""
    tops = [z.max(0).values for z in _hidden(model, x)[0]]
    return np.array(
        [
            [(top < -tol).double().mean().item() for top in tops],
            [(top < tol).double().mean().item() for top in tops],
        ]
    )


def _reference(arm: str, seed: int) -> SimpleNamespace:
    """Train one arm alone. Per epoch end (the swap twice): the training and held-out MSE
    (``curve`` (point, split)) and bounds on the fractions of units off and inactive on the
    training inputs (``units`` (point, bound, metric, layer), NaN off for tanh); at the moments of
    :data:`sw.WHEN` the fit and the hidden units on the grid; Adam's state right after the swap;
    and the network at the end. The fresh control (``fresh_after``) is NaN until the swap, where
    its initial network is measured once, as it starts training."""
    data = _data()
    x, y = data["x_train"], data["y_train"]
    grid = torch.linspace(-2.0, 2.0, CFG.n_grid, dtype=torch.float64)[:, None].float()
    first = "relu" if arm in ("after", "fresh_after") else "tanh"
    model = _plain(seed, first)
    opt = torch.optim.Adam(model.parameters(), lr=CFG.lr)
    curve, units, fit, hidden, state = [], [], [], [], None
    fresh = arm == "fresh_after"

    def measure():
        with torch.no_grad():
            curve.append(
                [
                    nn.functional.mse_loss(model(data[f"x_{s}"]), data[f"y_{s}"]).item()
                    for s in ("train", "test")
                ]
            )
        inactive = _off_bounds(model, x)
        off = inactive if isinstance(model[1], nn.ReLU) else np.full_like(inactive, np.nan)
        units.append(np.stack([off, inactive], 1))  # (bound, metric, layer)

    def snapshot():
        with torch.no_grad():
            fit.append(model(grid)[:, 0].numpy())
        hidden.append(np.stack([h.numpy() for h in _hidden(model, grid)[1]]))

    n = CFG.n_train
    for epoch in range(CFG.epochs):
        if fresh and epoch < CFG.swap_epoch:  # it does not exist yet: one NaN point per epoch
            curve.append([math.nan, math.nan])
            units.append(np.full((2, 2, CFG.depth), math.nan))
            continue
        if fresh and epoch == CFG.swap_epoch:  # nothing before the swap; then its start
            curve.append([math.nan, math.nan])
            units.append(np.full((2, 2, CFG.depth), math.nan))
            fit.append(np.full(CFG.n_grid, math.nan))
            hidden.append(np.full((CFG.depth, CFG.n_grid, CFG.width), math.nan))
            snapshot()
            state = {}
        elif epoch == CFG.swap_epoch:
            measure()  # before the swap
            snapshot()
            if arm.startswith("swap"):
                for i, module in enumerate(model):
                    if isinstance(module, nn.Tanh):
                        model[i] = nn.ReLU()
                if arm == "swap_reset":
                    opt = torch.optim.Adam(model.parameters(), lr=CFG.lr)
            state = {p: {k: v.clone() for k, v in opt.state[p].items()} for p in opt.state}
            snapshot()
        measure()
        order = _batch_order(seed, epoch, n)  # phase 2 goes on with the uninterrupted order
        for start in range(0, n, CFG.batch_size):
            idx = order[start : start + CFG.batch_size]
            opt.zero_grad()
            nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
            opt.step()
    measure()
    snapshot()
    return SimpleNamespace(
        curve=np.array(curve),
        units=np.array(units),
        fit=np.array(fit),
        hidden=np.array(hidden),
        state=state,
        model=model,
    )


def _epoch_curve(results, arm: str, seed: int) -> np.ndarray:
    """The experiment's (epoch point, split) MSE of one member, from the metrics table."""
    m = results.metrics
    rows = m[(m.arm == arm) & (m.seed == seed)]
    out = []
    for split in ("train", "test"):
        part = rows[rows.metric == f"{split}/mse"].sort_values(["epoch", "phase"])
        out.append(part.value.to_numpy())
    return np.stack(out, 1)


@pytest.mark.parametrize("arm", sw.ARMS)
def test_each_arm_equals_a_plain_sequential_trained_alone(results, arm):
    seed = 1
    expected = _reference(arm, seed).curve
    got = _epoch_curve(results, arm, seed)
    assert expected.shape == (CFG.epochs + 2, 2)
    expected = expected[np.isfinite(expected).all(1)]  # the fresh arm: from the swap on
    n = CFG.epochs - CFG.swap_epoch + 1 if arm == "fresh_after" else CFG.epochs + 2
    assert got.shape == expected.shape == (n, 2)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-7)


def test_swap_arms_differ_from_each_other_and_from_no_swap(results):
    """The comparison above could not pass for every arm by accident: the arms' curves differ
    after the swap (and the kept and reset arms only after it)."""
    k = CFG.swap_epoch
    curves = {arm: _epoch_curve(results, arm, 1)[:, 1] for arm in sw.ARMS}
    np.testing.assert_array_equal(curves["swap_kept"][: k + 1], curves["before"][: k + 1])
    np.testing.assert_allclose(curves["swap_reset"][: k + 2], curves["swap_kept"][: k + 2])
    assert not np.allclose(curves["swap_kept"][k + 1], curves["before"][k + 1], rtol=1e-3)
    assert not np.allclose(curves["swap_kept"][k + 2 :], curves["swap_reset"][k + 2 :], rtol=1e-4)


def test_reset_really_resets_the_state_and_kept_keeps_it(at_swap):
    """Checked on the optimisers the experiment goes on with, right after the swap."""
    seen, _ = at_swap
    spe = sw.steps_per_epoch(CFG)
    main = seen["main"]
    lay = sw.layout(CFG)
    kept, reset = lay["arms"]["swap_kept"][1], lay["arms"]["swap_reset"][1]
    assert (main["steps"][reset] == 0).all()
    assert (main["steps"][kept] == CFG.swap_epoch * spe).all()
    in_reset = (main["member_of"] >= reset.start) & (main["member_of"] < reset.stop)
    assert torch.count_nonzero(main["m"][in_reset]) == 0
    assert torch.count_nonzero(main["v"][in_reset]) == 0
    assert torch.count_nonzero(main["m"][~in_reset]) > 0
    model = main["model"]
    # The kept arm's moments equal those of torch.optim.Adam after the same first phase.
    for seed in range(CFG.seeds):
        ref = _reference("swap_kept", seed)
        ref_model, ref_state = ref.model, ref.state
        linears = [mod for mod in ref_model if isinstance(mod, nn.Linear)]
        member = kept.start + seed
        for layer, lin in enumerate(linears):
            for name, ours in (("exp_avg", main["m"]), ("exp_avg_sq", main["v"])):
                for engine_view, p in (
                    (model.weight(layer, ours)[member], lin.weight),
                    (model.bias(layer, ours)[member], lin.bias),
                ):
                    theirs = ref_state[p][name]
                    assert torch.count_nonzero(theirs) > 0
                    torch.testing.assert_close(engine_view, theirs, rtol=2e-4, atol=1e-9)
            assert ref_state[lin.weight]["step"].item() == CFG.swap_epoch * spe
        # The reset arm's reference is a fresh Adam: no state at all at the swap.
        assert _reference("swap_reset", seed).state == {}


def test_recorded_adam_state_is_the_optimisers(at_swap, results):
    seen, _ = at_swap
    A = list(sw.ARMS)
    adam = results.arrays["adam"]  # (arm, seed, when, quantity)
    for arm in ("swap_kept", "swap_reset"):
        ens, members = sw.layout(CFG)["arms"][arm]
        s = seen[ens]
        for seed in range(CFG.seeds):
            mask = s["member_of"] == members.start + seed
            m_norm = s["m"][mask].double().norm().item()
            got = adam[A.index(arm), seed, 1]
            assert got[0] == s["steps"][members.start + seed]
            assert got[1] == pytest.approx(m_norm, rel=1e-9, abs=0.0)
    assert np.all(adam[A.index("swap_reset"), :, 1] == 0)
    assert np.all(adam[A.index("swap_reset"), :, 0, 1:] > 0)  # there was a state to reset


def test_off_fractions_equal_the_probes(at_swap, results):
    """The run's own unit counts right after the swap equal act/off_fraction and
    act/inactive_fraction of the probes on the same models."""
    seen, _ = at_swap
    lay = sw.layout(CFG)
    post = CFG.swap_epoch + 1  # the epoch point right after the swap
    units = results.arrays["units"]  # (arm, seed, metric, epoch point, layer)
    for a, arm in enumerate(sw.ARMS):
        ens, members = lay["arms"][arm]
        probe = seen[ens]["probe"]
        for q, key in enumerate(sw.UNIT_METRICS):
            expected = probe[key][members].numpy()  # (seed, layer)
            np.testing.assert_array_equal(units[a, :, q, post], expected)
        # The per-unit masks give the same fractions.
        masks = results.arrays["off_units"][a, :, 0]  # (seed, layer, unit)
        np.testing.assert_array_equal(masks.mean(-1), units[a, :, 0, post])
    # And at the end (the hook kept the models, which went on training).
    for a, arm in enumerate(sw.ARMS):
        ens, members = lay["arms"][arm]
        final = ensemble_activation_metrics(seen[ens]["model"], sw.make_data(CFG)["x_train"])
        for q, key in enumerate(sw.UNIT_METRICS):
            np.testing.assert_array_equal(units[a, :, q, -1], final[key][members].numpy())
        masks = results.arrays["off_units"][a, :, 1]
        np.testing.assert_array_equal(masks.mean(-1), units[a, :, 0, -1])
    relu = sw.ARMS.index("after")
    assert np.isfinite(units[relu, :, 0]).all() and np.isnan(units[0, :, 0]).all()


def test_same_initial_weights_across_arms(results):
    loss = results.arrays["loss"][:, :, :, 0]  # (arm, seed, split) at step 0
    A = list(sw.ARMS)
    np.testing.assert_array_equal(loss[A.index("before")], loss[A.index("swap_kept")])
    np.testing.assert_allclose(loss[A.index("before")], loss[A.index("swap_reset")], rtol=1e-6)
    assert not np.allclose(loss[A.index("before")], loss[A.index("after")])
    # The fresh control starts at the swap from the same initial weights as ReLU throughout.
    full = results.arrays["loss"]
    spe = sw.steps_per_epoch(CFG)
    steps = np.rint(np.asarray(results.coords["loss/point"]) * spe).astype(int)
    pre, post = sw.swap_points(steps, CFG)
    fresh = A.index("fresh_after")
    assert np.isnan(full[fresh, :, :, :post]).all() and np.isfinite(full[fresh, :, :, post:]).all()
    np.testing.assert_allclose(full[fresh, :, :, post], loss[A.index("after")], rtol=1e-6)


def test_fresh_control_arm_exists_and_starts_at_the_swap(results):
    """The fifth arm is the training-time control: ReLU from the swap on, rows in the table
    from the swap on only, compared with both swap arms and with ReLU throughout."""
    assert sw.ARMS[-1] == "fresh_after"
    lay = sw.layout(CFG)
    assert lay["start"]["fresh"] == CFG.swap_epoch and lay["phase1"]["fresh"] == ["relu"] * 3
    m = results.metrics
    rows = m[m.arm == "fresh_after"]
    assert rows.epoch.min() == CFG.swap_epoch and set(rows.phase) == {2}
    assert set(rows.activation) == {"relu"}
    pairs = {(c["a"], c["b"]) for c in results.summary["comparisons"]}
    assert {("swap_kept", "fresh_after"), ("swap_reset", "fresh_after")} <= pairs
    assert ("after", "fresh_after") in pairs
    text = SPEC.report(results)
    assert "**Against the control.**" in text and "not trained yet" in text
    labels = [line.get_label() for line in SPEC.figures(results)["loss_curves"].axes[1].get_lines()]
    assert results.summary["labels"]["fresh_after"] in labels


def test_convergence_summary_is_the_relative_change_over_the_last_epochs(results):
    """L(end) / L(end - w) - 1 per seed from the table, w = 10% of the epochs (at least 1)."""
    c = results.summary["convergence"]
    w = max(1, round(0.1 * CFG.epochs))
    assert c["tail_epochs"] == w and c["from_epoch"] == CFG.epochs - w
    for arm in sw.ARMS:
        for split in ("train", "test"):
            end = _table_values(results, arm, f"{split}/mse", CFG.epochs)
            then = _table_values(results, arm, f"{split}/mse", CFG.epochs - w, phase=2)
            change = end / then - 1
            assert c[arm][split]["mean"] == pytest.approx(change.mean(), rel=1e-9, abs=1e-15)
            half = st.t.ppf(0.975, CFG.seeds - 1) * change.std(ddof=1) / math.sqrt(CFG.seeds)
            assert c[arm][split]["hi"] == pytest.approx(change.mean() + half, rel=1e-9)


def _with_convergence(results, means: dict) -> str:
    """The report from the run's summary with hand-set mean held-out changes per arm."""
    s = copy.deepcopy(results.summary)
    for arm, mean in means.items():
        s["convergence"][arm]["test"] = {"mean": mean, "lo": mean - 0.01, "hi": mean + 0.01}
    return build_report(s)


def test_convergence_verdicts_follow_hand_set_values(results):
    thr = results.summary["convergence"]["threshold"]
    assert thr == 0.05
    assert convergence_verdict({"mean": -0.2, "lo": -0.3, "hi": -0.1}, thr) == "still improving"
    assert convergence_verdict({"mean": -0.04, "lo": -0.05, "hi": -0.03}, thr) == "flat at the end"
    assert convergence_verdict({"mean": 0.04, "lo": 0.03, "hi": 0.05}, thr) == "flat at the end"
    assert convergence_verdict({"mean": 0.3, "lo": 0.2, "hi": 0.4}, thr) == "rising"
    # The whole interval counts: a mean inside the band with an interval reaching beyond it
    # (relu throughout in the default run: -3.2% [-10%, 3.7%]) is not "flat", and a mean beyond
    # it with an interval reaching 0 is not "still improving".
    unsettled = "not settled by the seeds"
    assert convergence_verdict({"mean": -0.032, "lo": -0.10, "hi": 0.037}, thr) == unsettled
    assert convergence_verdict({"mean": -0.08, "lo": -0.17, "hi": 0.01}, thr) == unsettled
    assert convergence_verdict({"mean": 0.08, "lo": -0.01, "hi": 0.17}, thr) == unsettled
    assert convergence_verdict({"mean": -0.2, "lo": None, "hi": None}, thr) == unsettled
    flat = dict.fromkeys(sw.ARMS, -0.01)
    text = _with_convergence(results, flat)
    assert "Every arm is flat at the end" in text and "budget ran out" not in text
    L = results.summary["labels"]
    text = _with_convergence(results, {**flat, "fresh_after": -0.2, "after": 0.3})
    assert f"Still improving at the end: *{L['fresh_after']}*. The budget ran out" in text
    assert f"Rising at the end: *{L['after']}* " in text
    assert "Every arm is flat" not in text
    assert f"| {L['fresh_after']} | -20% [-21%, -19%] |" in text
    s = copy.deepcopy(results.summary)
    for arm in sw.ARMS:
        s["convergence"][arm]["test"] = {"mean": -0.01, "lo": -0.02, "hi": 0.0}
    s["convergence"]["after"]["test"] = {"mean": -0.032, "lo": -0.10, "hi": 0.037}
    text = build_report(s)
    assert "Every arm is flat" not in text
    assert f"Not settled by the {CFG.seeds} seeds: *{L['after']}* (-3.2% [-10%, 3.7%]" in text


def _with_comparisons(results, outcomes: dict) -> str:
    """The report with hand-set paired-test outcomes: ``{(a, b): (differs, lower)}``."""
    s = copy.deepcopy(results.summary)
    for c in s["comparisons"]:
        if (c["a"], c["b"]) in outcomes:
            c["differs"], c["lower"] = outcomes[c["a"], c["b"]]
    return build_report(s)


def test_start_sentence_follows_hand_set_values(results):
    """The swapped network right after the swap against the untrained fresh network."""
    s = copy.deepcopy(results.summary)
    s["start"].update(differs=True, lower=1)
    assert "is higher than that: worse than not having trained at all" in build_report(s)
    s["start"].update(differs=False, lower=None)
    assert "right after the swap is within noise of that." in build_report(s)
    st_ = results.summary["start"]
    kept, fresh = sw.ARMS.index("swap_kept"), sw.ARMS.index("fresh_after")
    spe = sw.steps_per_epoch(CFG)
    steps = np.rint(np.asarray(results.coords["loss/point"]) * spe).astype(int)
    post = sw.swap_points(steps, CFG)[1]
    a = results.arrays["loss"][kept, :, 1, post]
    b = results.arrays["loss"][fresh, :, 1, post]
    assert st_["fresh"]["mean"] == pytest.approx(b.mean(), rel=1e-12)
    assert st_["differs"] == _paired(a, b)


def test_control_verdicts_follow_hand_set_comparisons(results):
    """The warm-start verdicts come from the swap arms against the fresh control, the
    training-time verdict from ReLU throughout against it, each from its own pair."""
    kf, rf, af = (
        ("swap_kept", "fresh_after"),
        ("swap_reset", "fresh_after"),
        ("after", "fresh_after"),
    )
    noise = {kf: (False, None), rf: (False, None), af: (False, None)}
    text = _with_comparisons(results, noise)
    assert "made no difference beyond the noise with Adam kept or reset" in text
    assert "is not unfair to them" in text
    text = _with_comparisons(results, {**noise, kf: (True, 0), rf: (True, 1), af: (True, 0)})
    assert "helped (Adam kept) and hurt (Adam reset)" in text
    assert "may owe it to the shorter relu training" in text
    text = _with_comparisons(results, {**noise, af: (True, 1)})
    assert "(over-fitting)" in text
    # Ending behind ReLU throughout points to the training-time confound; level does not.
    ka, ra = ("swap_kept", "after"), ("swap_reset", "after")
    text = _with_comparisons(results, {ka: (True, 1), ra: (False, None)})
    assert "is not yet a verdict on the swap" in text
    text = _with_comparisons(results, {ka: (False, None), ra: (True, 0)})
    assert "is not yet a verdict on the swap" not in text


def test_summary_and_report_numbers_equal_the_results(results):
    s, m = results.summary, results.metrics
    last = m[(m.epoch == CFG.epochs) & (m.metric == "test/mse")]
    for arm in sw.ARMS:
        values = last[last.arm == arm].sort_values("seed").value.to_numpy()
        d = s["final"][arm]["test"]
        assert d["mean"] == pytest.approx(values.mean(), rel=1e-12)
        half = st.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
        assert d["hi"] == pytest.approx(values.mean() + half, rel=1e-9)
    at = m[(m.epoch == CFG.swap_epoch) & (m.metric == "test/mse") & (m.arm == "swap_kept")]
    pre = at[at.phase == 1].sort_values("seed").value.to_numpy()
    post = at[at.phase == 2].sort_values("seed").value.to_numpy()
    assert s["jump"]["test"]["pre"]["mean"] == pytest.approx(pre.mean(), rel=1e-12)
    log_ratio = np.log10(post / pre).mean()
    assert s["jump"]["test"]["log10_ratio"]["mean"] == pytest.approx(log_ratio, rel=1e-12)
    assert s["jump"]["test"]["differs"] == _paired(pre, post)  # the same seeds before and after
    text = SPEC.report(results)
    for value in (pre.mean(), post.mean(), s["final"]["after"]["test"]["mean"]):
        assert num(value) in text
    assert f"{ratio(log_ratio)} times higher" in text
    # Each comparison's verdict is the paired test by seed, recomputed here.
    for c in s["comparisons"]:
        a = last[last.arm == c["a"]].sort_values("seed").value.to_numpy()
        b = last[last.arm == c["b"]].sort_values("seed").value.to_numpy()
        differs = _paired(a, b)
        assert c["differs"] == differs
        words = verdict(c, s["labels"], s["final"])
        assert words in text and (("within noise" in words) == (not differs))
    # Recovery: the first point after the swap at or below the pre-swap held-out loss.
    loss, t = results.arrays["loss"], np.asarray(results.coords["loss/point"])
    pre_i, post_i = s["swap_points"]
    j = sw.SPLITS.index("test")
    for arm in ("swap_kept", "swap_reset"):
        curve = loss[sw.ARMS.index(arm), :, j]
        for seed, got in enumerate(s["recovery"][arm]["per_seed"]):
            later = [i for i in range(post_i, len(t)) if curve[seed, i] <= curve[seed, pre_i]]
            assert got == (t[later[0]] - CFG.swap_epoch if later else None)
    assert text.rstrip().endswith("</details>")
    assert text.count('<details markdown="1">') == len(stubs.EXERCISES) == 5


def test_report_from_a_saved_run_equals_the_in_memory_one(results, tmp_path):
    from actlab.store import RunStore

    store = RunStore(tmp_path / "run")
    store.begin(SPEC.name, "smoke", CFG)
    store.save_results(results)
    loaded = store.load_results()
    assert SPEC.report(loaded) == SPEC.report(results)
    figures = SPEC.figures(loaded)
    assert set(figures) == {"loss_curves", "dead_units", "hidden_units", "final"}
    labels = [line.get_label() for line in figures["loss_curves"].axes[1].get_lines()]
    assert all(results.summary["labels"][arm] in labels for arm in sw.ARMS)


@pytest.fixture(scope="module")
def references():
    """Every arm and seed trained alone (a few milliseconds each)."""
    return {(arm, seed): _reference(arm, seed) for arm in sw.ARMS for seed in range(CFG.seeds)}


def test_data_and_noise_floor(results):
    """The run's training points are the task's written-out draw; the noise floor is the
    label noise's variance, and the report says so."""
    data = _data()
    np.testing.assert_array_equal(results.arrays["x_train"], data["x_train"][:, 0].double())
    np.testing.assert_array_equal(results.arrays["y_train"], data["y_train"][:, 0].double())
    np.testing.assert_allclose(results.arrays["x_grid"], np.linspace(-2.0, 2.0, CFG.n_grid))
    assert results.summary["noise_floor"] == pytest.approx(CFG.noise**2, rel=1e-12)
    text = SPEC.report(results)
    assert f"[noise floor](#term-noise-floor) $s^2 = {num(CFG.noise**2)}$ is the" in text
    truth = torch.sin(3 * data["x_test"].double()) + data["x_test"].double() / 2
    draw = (data["y_test"].double() - truth).square().mean().item()
    assert results.summary["noise_floor_draw"] == pytest.approx(draw, rel=1e-9)
    assert f"held-out points it scores {num(draw)}" in text


def test_unit_fractions_at_every_epoch_equal_a_direct_count(results, references):
    """``units`` (arm, seed, metric, epoch point, layer) against the plain networks: units
    with a negative pre-activation on every training input, at every epoch end (the swap twice);
    ``act/off_fraction`` is NaN while an arm computes with tanh."""
    units = results.arrays["units"]
    assert results.coords["units/epoch"] == sw.point_epochs(CFG, 1).tolist()
    assert results.coords["units/layer"] == list(range(1, CFG.depth + 1))
    for a, arm in enumerate(sw.ARMS):
        for seed in range(CFG.seeds):
            ref = references[arm, seed].units  # (point, bound, metric, layer)
            got = units[a, seed].transpose(1, 0, 2)  # (point, metric, layer)
            assert got.shape == (CFG.epochs + 2, 2, CFG.depth)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref[:, 0]))
            ok = np.isnan(got) | ((ref[:, 0] <= got) & (got <= ref[:, 1]))
            assert ok.all(), (arm, seed, np.argwhere(~ok))


def test_fits_and_hidden_units_at_the_swap_and_the_end(results, references):
    """``fit`` (arm, seed, when, input) and seed 0's ``hidden`` (arm, when, layer, input, unit)
    equal the plain networks' outputs before the swap, right after it (same weights, new
    activation) and at the end, to float rounding (atol 1e-5)."""
    assert results.coords["fit/when"] == list(sw.WHEN)
    for a, arm in enumerate(sw.ARMS):
        for seed in range(CFG.seeds):
            np.testing.assert_allclose(
                results.arrays["fit"][a, seed], references[arm, seed].fit, atol=1e-5
            )
        np.testing.assert_allclose(
            results.arrays["hidden"][a], references[arm, 0].hidden, atol=1e-5
        )
    kept = sw.ARMS.index("swap_kept")
    fit = results.arrays["fit"][kept, 0]
    assert not np.allclose(fit[0], fit[1], atol=1e-3)  # the swap changes the function


def _table_values(results, arm, metric, epoch, phase=None, layer=None):
    """Per seed (in order) the table's value of ``metric`` for ``arm`` at ``epoch``."""
    m = results.metrics
    sel = (m.arm == arm) & (m.metric == metric) & (m.epoch == epoch)
    if phase is not None:
        sel &= m.phase == phase
    if layer is not None:
        sel &= m.layer == layer
    rows = m[sel].sort_values("seed")
    assert rows.seed.tolist() == list(range(CFG.seeds))
    return rows.value.to_numpy()


def _paired(a, b) -> bool:
    """SciPy's paired t-test over the seeds where both are finite (``a``, ``b`` in seed order);
    a constant difference (no spread, no p-value) differs exactly when it is not 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return False
    d = a - b
    if np.all(d == d[0]):
        return bool(d[0] != 0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(st.ttest_rel(a, b).pvalue < 0.05)


def _welch(a, b) -> bool:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(st.ttest_ind(a, b, equal_var=False).pvalue < 0.05)


def test_recovery_one_epoch_later_compares_kept_with_reset(results):
    """The held-out MSE one epoch after the swap, per arm, and kept vs reset paired by seed."""
    s, k = results.summary, CFG.swap_epoch
    kept = _table_values(results, "swap_kept", "test/mse", k + 1)
    reset = _table_values(results, "swap_reset", "test/mse", k + 1)
    assert s["recovery"]["swap_kept"]["one_epoch_later"]["mean"] == pytest.approx(kept.mean())
    assert s["recovery"]["swap_reset"]["one_epoch_later"]["mean"] == pytest.approx(reset.mean())
    later = s["recovery"]["one_epoch_later"]
    assert later["diff"] == pytest.approx(kept.mean() - reset.mean(), rel=1e-9)
    assert later["differs"] == _paired(kept, reset)


def test_comparisons_of_final_held_out_mse(results):
    """Every pair the report compares: the difference of means and which is lower, from the
    table's final held-out MSE (not the training MSE)."""
    s = results.summary
    assert [(c["a"], c["b"]) for c in s["comparisons"]] == list(sw.PAIRS)
    for c in s["comparisons"]:
        a = _table_values(results, c["a"], "test/mse", CFG.epochs)
        b = _table_values(results, c["b"], "test/mse", CFG.epochs)
        assert c["diff"] == pytest.approx(a.mean() - b.mean(), rel=1e-9, abs=1e-15)
        assert c["differs"] == _paired(a, b)
        assert c["lower"] == ((0 if a.mean() < b.mean() else 1) if c["differs"] else None)


def test_dead_unit_summary_follows_the_table_and_the_masks(results):
    """Per layer: the tanh network's inactive fraction at the swap (the prediction), ReLU's
    off fraction right after it and at the end, and units revived or newly off, recounted
    from the per-unit masks with plain loops."""
    k, masks = CFG.swap_epoch, results.arrays["off_units"]  # (arm, seed, when, layer, unit)
    assert results.coords["off_units/when"] == ["after_swap", "end"]
    for row in results.summary["dead"]:
        layer = row["layer"]
        predicted = _table_values(results, "swap_kept", "act/inactive_fraction", k, 1, layer)
        measured = _table_values(results, "swap_kept", "act/off_fraction", k, 2, layer)
        after = _table_values(results, "after", "act/off_fraction", k, 1, layer)
        assert row["predicted"]["mean"] == pytest.approx(predicted.mean(), rel=1e-12)
        assert row["after_swap"]["mean"] == pytest.approx(measured.mean(), rel=1e-12)
        assert row["after_at_swap_epoch"]["mean"] == pytest.approx(after.mean(), rel=1e-12)
        assert row["predicted_exact"] == bool(np.array_equal(predicted, measured))
        ends = {}
        for arm in ("swap_kept", "swap_reset", "after", "fresh_after"):
            a = sw.ARMS.index(arm)
            ends[arm] = _table_values(results, arm, "act/off_fraction", CFG.epochs, 2, layer)
            d = row[arm]
            assert d["end"]["mean"] == pytest.approx(ends[arm].mean(), rel=1e-12)
            assert d["end_values"] == pytest.approx(ends[arm].tolist(), rel=1e-12)
            revived, off_then, newly, per_seed = 0, 0, [], []
            for seed in range(CFG.seeds):
                then, end = masks[a, seed, 0, layer - 1], masks[a, seed, 1, layer - 1]
                back = sum(1 for u in range(CFG.width) if then[u] == 1 and end[u] == 0)
                new = sum(1 for u in range(CFG.width) if then[u] == 0 and end[u] == 1)
                n_then = sum(1 for u in range(CFG.width) if then[u] == 1)
                revived, off_then = revived + back, off_then + n_then
                newly.append(new / CFG.width)
                if n_then:
                    per_seed.append(back / n_then)
            assert d["revived_units"] == revived and d["off_after_swap_units"] == off_then
            assert d["newly_off"]["mean"] == pytest.approx(np.mean(newly), rel=1e-12, abs=1e-15)
            assert d["newly_off_units"] == round(sum(newly) * CFG.width)
            assert d["units"] == CFG.seeds * CFG.width
            # The report gives the pooled count, never a t-interval cut at 0 for it.
            word = "dead"
            # Those that became dead later, out of those not dead right after the swap.
            alive = sum(
                1
                for seed in range(CFG.seeds)
                for u in range(CFG.width)
                if masks[a, seed, 0, layer - 1][u] == 0
            )
            assert d["alive_after_swap_units"] == alive
            assert (
                f"{d['newly_off_units']} of the {alive} units not {word} right after the swap "
                f"became {word} later"
            ) in SPEC.report(results) or arm not in ("swap_kept", "swap_reset")
            if per_seed:
                assert d["revived"]["mean"] == pytest.approx(np.mean(per_seed), abs=1e-15)
        assert row["end_differs_kept_reset"] == _paired(ends["swap_kept"], ends["swap_reset"])
        assert row["end_differs_kept_after"] == _paired(ends["swap_kept"], ends["after"])
        assert row["end_differs_kept_fresh"] == _paired(ends["swap_kept"], ends["fresh_after"])


def test_bands_are_mean_and_t_interval_over_seeds(results):
    """``loss_band`` (arm, split, stat, point) and ``units_band`` (arm, metric, stat, epoch,
    layer) against the mean and SciPy's t-interval over the seed axis, point by point."""
    t = st.t.ppf(0.975, CFG.seeds - 1)
    for name, values in (("loss_band", "loss"), ("units_band", "units")):
        band, raw = results.arrays[name], np.moveaxis(results.arrays[values], 1, -1)
        assert results.coords[f"{name}/stat"] == ["mean", "lo", "hi"]
        assert band.shape[2] == 3 and np.delete(band.shape, 2).tolist() == list(raw.shape[:-1])
        for idx in np.ndindex(*raw.shape[:-1]):
            seeds = raw[idx]
            at = (*idx[:2], slice(None), *idx[2:])
            if np.isnan(seeds).all():  # off fraction of a tanh network
                assert np.isnan(band[at]).all()
                continue
            half = t * seeds.std(ddof=1) / math.sqrt(CFG.seeds)
            expected = [seeds.mean(), seeds.mean() - half, seeds.mean() + half]
            np.testing.assert_allclose(band[at], expected, rtol=1e-9, atol=1e-15)


def test_end_verdicts_compare_the_named_arms(results):
    """Hand-set final off fractions through the summary: the kept arm far from the reset arm
    and level with ReLU throughout, so each verdict can only come from its own pair."""
    units = results.arrays["units"].copy()  # (arm, seed, metric, epoch point, layer)
    off = sw.UNIT_METRICS.index("act/off_fraction")
    level = np.linspace(0.1, 0.12, CFG.seeds)
    for arm, value in (
        ("swap_kept", level),
        ("swap_reset", level + 0.5),
        ("after", level),
        ("fresh_after", level + 0.3),
    ):
        units[sw.ARMS.index(arm), :, off, -1, :] = value[:, None]
    rows = sw._dead_summary(CFG, {**results.arrays, "units": units})  # noqa: SLF001
    for row in rows:
        assert row["end_differs_kept_reset"] and not row["end_differs_kept_after"]
        assert row["end_differs_kept_fresh"]
    s = copy.deepcopy(results.summary)
    s["dead"] = rows
    L = s["labels"]
    text = build_report(s)
    assert f"*{L['fresh_after']}* has 41% [" in text
    assert "] dead, more than the swapped one (kept)." in text


def test_recovery_counts_the_swap_point_when_the_loss_does_not_rise(results):
    """Hand-set losses through the summary: a seed whose held-out MSE right after the swap is
    already at its pre-swap level recovered after 0 epochs; one that never gets back is NaN."""
    loss = results.arrays["loss"].copy()  # (arm, seed, split, point)
    spe = sw.steps_per_epoch(CFG)
    steps = np.rint(np.asarray(results.coords["loss/point"]) * spe).astype(int)
    pre, post = sw.swap_points(steps, CFG)
    kept, test = sw.ARMS.index("swap_kept"), sw.SPLITS.index("test")
    loss[kept, 0, test, post] = loss[kept, 0, test, pre]
    loss[kept, 1, test, post:] = loss[kept, 1, test, pre] + 1.0
    arrays = {**results.arrays, "loss": loss}
    summary = sw._summary(CFG, arrays, results.coords, steps, spe)  # noqa: SLF001
    per_seed = summary["recovery"]["swap_kept"]["per_seed"]
    assert per_seed[0] == 0.0 and per_seed[1] is None
    recovered = sum(e is not None for e in per_seed)
    assert summary["recovery"]["swap_kept"]["recovered"] == recovered < CFG.seeds


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"swap_epoch": 6}, "swap_epoch"),
        ({"swap_epoch": 0}, "swap_epoch"),
        ({"after": "tanh"}, "before and after"),
        ({"after": "sigmoid"}, "off regime"),
        ({"seeds": 1}, "seeds"),
        ({"batch_size": 65}, "batch_size"),
        ({"before": "prelu"}, "learnable"),
        ({"lr": math.nan}, "lr"),
    ],
)
def test_bad_configs_are_refused(kwargs, match):
    base = {k: getattr(CFG, k) for k in ("seeds", "epochs", "swap_epoch", "n_train")}
    with pytest.raises(ValueError, match=match):
        sw.Config(**{**base, **kwargs})


# --------------------------------------------------------------------------------------------
# Exercises


def _tanh_net(seed: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1))


def test_solution_swap_activations_keeps_the_parameters():
    model = _tanh_net()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    params = [p.data_ptr() for p in model.parameters()]
    out = sol.swap_activations(model, nn.ReLU)
    assert out is model
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [m for m in model if isinstance(m, nn.Linear)] == linears
    assert [p.data_ptr() for p in model.parameters()] == params
    x = torch.linspace(-2, 2, 7)[:, None]
    h = x
    for i, lin in enumerate(linears):
        h = h @ lin.weight.T + lin.bias
        if i < 2:
            h = torch.clamp(h, min=0)
    torch.testing.assert_close(model(x), h)


def _continue(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("fixed", [True, False])
def test_solution_reset_adam_equals_a_fresh_adam_and_the_stub_does_not(fixed):
    x = torch.linspace(-2, 2, 32)[:, None]
    y = torch.sin(3 * x)
    model = _tanh_net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    _continue(model, opt, x, y, 40)
    twin = _tanh_net()
    twin.load_state_dict(model.state_dict())
    (sol.reset_adam if fixed else stubs.reset_adam)(opt)
    ours = _continue(model, opt, x, y, 5)
    fresh = _continue(twin, torch.optim.Adam(twin.parameters(), lr=3e-3), x, y, 5)
    if fixed:
        torch.testing.assert_close(ours, fresh, rtol=0, atol=0)
    else:  # the debug exercise's bug is real
        assert (ours - fresh).abs().max() > 1e-3


@pytest.mark.parametrize("reset", [False, True])
def test_solution_train_with_swap_equals_the_engine(reset):
    x = torch.linspace(-2, 2, 40)[:, None]
    y = torch.sin(3 * x) + 0.5 * x
    epochs, swap, lr = 30, 12, 1e-2
    engine = EnsembleMLP(1, [8, 8], 1, ["tanh"], [5])
    linears = [m for m in engine.member(0) if isinstance(m, nn.Linear)]
    plain = nn.Sequential(linears[0], nn.Tanh(), linears[1], nn.Tanh(), linears[2])
    got = sol.train_with_swap(
        plain, x, y, epochs=epochs, swap_epoch=swap, new=nn.ReLU, reset=reset, lr=lr
    )
    first = train(engine, x, y, TrainConfig(epochs=swap, lr=lr))
    engine.set_activations("relu")
    if reset:
        first.optimizer.reset()
    second = train(engine, x, y, TrainConfig(epochs=epochs - swap), optimizer=first.optimizer)
    expected = torch.cat([first.loss, second.loss])[:, 0].tolist()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[swap] > got[swap - 1]  # the jump is there


def test_solution_train_with_swap_kept_and_reset_differ():
    x = torch.linspace(-2, 2, 40)[:, None]
    y = torch.sin(3 * x)
    runs = [
        sol.train_with_swap(
            _tanh_net(), x, y, epochs=20, swap_epoch=10, new=nn.ReLU, reset=r, lr=1e-2
        )
        for r in (False, True)
    ]
    assert runs[0][:11] == runs[1][:11] and runs[0][11:] != runs[1][11:]


def test_stubs_raise_and_exercises_render():
    with pytest.raises(NotImplementedError):
        stubs.swap_activations(_tanh_net(), nn.ReLU)
    with pytest.raises(NotImplementedError):
        stubs.train_with_swap(
            _tanh_net(),
            torch.zeros(2, 1),
            torch.zeros(2, 1),
            epochs=2,
            swap_epoch=1,
            new=nn.ReLU,
            reset=False,
        )
    md = exercises_markdown(stubs.EXERCISES)
    assert [e.kind for e in stubs.EXERCISES] == [
        "warm-up",
        "coding",
        "debug",
        "conceptual",
        "challenge",
    ]
    assert f"{math.tanh(-1.5):.3f}" in md and "optimizer.state.clear()" in md


def _saturation_bounds(model: nn.Sequential, x: torch.Tensor, tol: float = 1e-6) -> np.ndarray:
    """``(layer, kind, bound)``: per hidden tanh layer, the fraction of (unit, input) pairs and
    of units on every input with ``|tanh z| > 0.99``, counted with the band narrowed (bound 0)
    and widened (bound 1) by ``tol`` (another summation order may put a value either side)."""
    out = []
    for h in _hidden(model, x)[1]:
        rows = []
        for band in (h.abs() > 0.99 + tol, h.abs() > 0.99 - tol):
            rows.append([band.double().mean().item(), band.all(0).double().mean().item()])
        out.append(np.array(rows).T)
    return np.array(out)


def test_saturation_counts_pairs_and_units_against_plain_tanh_networks():
    """``_saturation`` on an ensemble whose weights were scaled up (so that tanh saturates)
    against the members exported as nn.Sequential and counted here; NaN for ReLU members."""
    model = EnsembleMLP(1, [8, 8], 1, ["tanh", "tanh", "relu"], [1, 2, 3])
    with torch.no_grad():
        model.flat.mul_(4.0)
    x = torch.linspace(-2, 2, 50)[:, None]
    got = sw._saturation(model, x).numpy()  # noqa: SLF001  (layer, kind, E)
    assert np.isnan(got[..., 2]).all()
    positive = 0
    for m in range(2):
        ref = _saturation_bounds(model.member(m), x)
        assert ((ref[..., 0] <= got[..., m]) & (got[..., m] <= ref[..., 1])).all()
        positive += (got[:, 0, m] > 0).sum() + (got[:, 1, m] > 0).sum()
    assert positive >= 3  # the check is not vacuous
    assert (got[:, 1, :2] <= got[:, 0, :2]).all()  # every-input units are a subset of pairs


def test_saturation_in_the_run_and_the_report(results):
    """The run's tanh network just before the swap against the plain networks; the report's
    sentence follows hand-set summary values."""
    sat = results.arrays["saturation"]  # (arm, seed, layer, kind)
    assert results.coords["saturation/kind"] == ["pairs", "every_input"]
    x = _data()["x_train"]
    for a, arm in enumerate(sw.ARMS):
        for seed in range(CFG.seeds):
            if arm in ("after", "fresh_after"):
                assert np.isnan(sat[a, seed]).all()
                continue
            model = _plain(seed, "tanh")
            opt = torch.optim.Adam(model.parameters(), lr=CFG.lr)
            for epoch in range(CFG.swap_epoch):
                order = _batch_order(seed, epoch, CFG.n_train)
                for start in range(0, CFG.n_train, CFG.batch_size):
                    idx = order[start : start + CFG.batch_size]
                    opt.zero_grad()
                    nn.functional.mse_loss(model(x[idx]), _data()["y_train"][idx]).backward()
                    opt.step()
            ref = _saturation_bounds(model, x)
            assert ((ref[..., 0] <= sat[a, seed]) & (sat[a, seed] <= ref[..., 1])).all()
    s = copy.deepcopy(results.summary)
    assert s["saturation"][0]["pairs"]["mean"] == pytest.approx(
        np.nanmean(sat[sw.ARMS.index("swap_kept"), :, 0, 0]), abs=1e-15
    )
    s["saturation"][0]["pairs"] = {"mean": 0.25, "lo": 0.2, "hi": 0.3}
    s["saturation"][0]["every_input"] = {"mean": 0.125, "lo": 0.1, "hi": 0.15}
    text = build_report(s)
    assert "layer 1: 25% [20%, 30%] of the (unit, input) pairs and 12.5% [10%, 15%]" in text
    assert "pinned near ±1" in text
    # No unit saturated on every input in any seed: said in words, not as "0% [0%, 0%]".
    s["saturation"][0]["every_input"] = {"mean": 0.0, "lo": 0.0, "hi": 0.0}
    text = build_report(s)
    assert "pairs and no unit on every input in any seed" in text
    assert "0% [0%, 0%]" not in text.split("## The recovery")[0]


# ------------------------------------------------------------------ notation, terms, figure


def test_report_uses_the_tutorial_notation_and_links_its_terms(results):
    """Every symbol means what the tutorial's notation table says (Adam's moments $m_t$, $v_t$,
    $m_0$, $v_0$; no bare $m$ or $v$; noise $\\xi$ of sd $s$, no "seed $s$"); each glossary term
    is linked once; the t-interval and the paired test are not defined again here; "off" never
    stands for dead."""
    from actlab.report.notation import misplaced_symbols

    text = SPEC.report(results)
    assert misplaced_symbols(text, "activation-swap") == []
    assert "seed $s$" not in text and "+ \\xi$" in text
    assert "$\\lVert m_0\\rVert$" in text and "$\\lVert v_0\\rVert$" in text
    for key in (
        "held-out", "noise-floor", "seed", "default-init", "t-interval", "paired",
        "wilson-interval", "geometric-mean", "saturated", "dead", "inactive",
    ):  # fmt: skip
        assert text.count(f"](#term-{key})") == 1, key
    assert "does not assume equal" not in text and "t_{0.975" not in text
    assert "10 to the mean of the log10" not in text
    prose = text.split("## Exercises")[0]
    assert " off " not in prose and " off," not in prose and "*off*" not in prose


def test_diverged_seeds_carry_a_wilson_interval(results):
    """Seeds diverged per arm, a count of independent seeds, with its Wilson interval (against
    scipy.stats.binomtest): never a t-interval cut at 0."""
    s = copy.deepcopy(results.summary)
    s["final"]["after"]["diverged"] = 1
    text = build_report(s)
    n = s["seeds"]
    for k in (0, 1):
        w = st.binomtest(k, n).proportion_ci(method="wilson")
        lo = "0%" if k == 0 else sw_pct(w.low)
        assert f"| {k} of {n} ({sw_pct(k / n)} [{lo}, {sw_pct(w.high)}]) |" in text


def sw_pct(p: float) -> str:
    from actlab.report.format import pct

    return pct(p)


def test_dead_units_figure_shows_every_arm_on_one_scale(results):
    """The layers' panels share one y-scale that holds every arm's band; every arm has its own
    marker, placed at epochs of its own or framing the other's (two coinciding lines both stay
    visible), and a panel
    where two arms' means coincide says so, recomputed here from the bands."""
    import matplotlib.pyplot as plt

    from actlab.experiments.activation_swap import figures as swf

    fig = SPEC.figures(results)["dead_units"]
    axes = [ax for ax in fig.axes if ax.get_title().startswith("Hidden layer")]
    assert len(axes) == CFG.depth
    ylims = {ax.get_ylim() for ax in axes}
    assert len(ylims) == 1
    band = results.arrays["units_band"]
    assert ylims.pop()[1] >= 100 * np.nanmax(band[:, :, 1:])
    labels = results.summary["labels"]
    for ax in axes:
        lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
        markers = [ln.get_marker() for ln in lines.values()]
        assert len(set(markers)) == len(markers) and "None" not in markers
        kept, reset = lines[labels["swap_kept"]], lines[labels["swap_reset"]]
        xk = set(np.asarray(kept.get_xdata())[kept.get_markevery()].tolist())
        xr = set(np.asarray(reset.get_xdata())[reset.get_markevery()].tolist())
        # Staggered where there are enough epochs; where the markers must share epochs, the
        # arm beneath has the larger, hollow marker, which frames the other's.
        assert xk and xr
        assert xk != xr or kept.get_markersize() > reset.get_markersize()
        assert kept.get_zorder() < reset.get_zorder()
    off = sw.UNIT_METRICS.index("act/off_fraction")
    for layer, ax in zip(results.coords["units/layer"], axes, strict=True):
        li = list(results.coords["units/layer"]).index(layer)
        a, b = (band[sw.ARMS.index(k), off, 0, :, li] for k in ("swap_kept", "swap_reset"))
        same_end = np.isfinite(a[-1]) and abs(a[-1] - b[-1]) <= 1e-9
        pairs = [(p, q) for p, q, _ in swf.coinciding(results, layer)]
        assert (("swap_kept", "swap_reset") in pairs) == bool(same_end)
        text = " ".join(t.get_text() for t in ax.texts)
        for p, q in pairs:
            assert f"{labels[p]} = {labels[q]}" in text
    plt.close(fig)


def test_coinciding_arms_found_from_hand_set_bands(results):
    """Hand-set means: kept = reset from the third epoch point on, relu throughout never equal
    to the fresh arm -> only the first pair is named, with its first epoch."""
    from actlab.experiments.activation_swap import figures as swf

    band = results.arrays["units_band"].copy()
    off = sw.UNIT_METRICS.index("act/off_fraction")
    n = band.shape[3]
    k, r = sw.ARMS.index("swap_kept"), sw.ARMS.index("swap_reset")
    band[k, off, 0, :, 0] = np.linspace(0.1, 0.2, n)
    band[r, off, 0, :, 0] = band[k, off, 0, :, 0]
    band[r, off, 0, :2, 0] += 0.05
    band[sw.ARMS.index("after"), off, 0, :, 0] = 0.3
    band[sw.ARMS.index("fresh_after"), off, 0, :, 0] = 0.31
    hand = copy.copy(results)
    hand.arrays = {**results.arrays, "units_band": band}
    epochs = np.asarray(results.coords["units/epoch"], float)
    got = swf.coinciding(hand, results.coords["units/layer"][0])
    assert got == [("swap_kept", "swap_reset", float(epochs[2]))]


def test_loss_panels_share_one_scale_with_the_noise_floor_in_view(results):
    """Training and held-out loss are compared with each other: one y-scale for both, which
    keeps the held-out panel's noise floor inside the axes."""
    import matplotlib.pyplot as plt

    fig = SPEC.figures(results)["loss_curves"]
    train, test = fig.axes[0], fig.axes[1]
    assert train.get_ylim() == test.get_ylim()
    lo, hi = test.get_ylim()
    assert lo < results.summary["noise_floor"] < hi
    plt.close(fig)


def test_significant_difference_with_overlapping_intervals_says_so(results):
    """A significant difference (paired test) whose two 95% intervals overlap is flagged (and why,
    once); one whose intervals are apart is plainly "significant"; a tie names both means."""
    s = copy.deepcopy(results.summary)
    L = s["labels"]
    c = next(c for c in s["comparisons"] if (c["a"], c["b"]) == ("before", "after"))
    c.update(differs=True, lower=1, diff=0.0042)
    s["final"]["after"]["test"] = {"mean": 0.0164, "lo": 0.0141, "hi": 0.0187}
    s["final"]["before"]["test"] = {"mean": 0.0206, "lo": 0.0185, "hi": 0.0224}
    text = build_report(s)
    assert (
        f"*{L['after']}* lower than *{L['before']}* by 0.0042 (significant by the paired test, "
        "though the two 95% intervals overlap)"
    ) in text
    assert "which cancels in the per-seed differences the test reads" in text
    s["final"]["before"]["test"] = {"mean": 0.0206, "lo": 0.0190, "hi": 0.0224}
    text = build_report(s)
    assert f"*{L['after']}* lower than *{L['before']}* by 0.0042 (significant);" in text
    c.update(differs=False, lower=None)
    text = build_report(s)
    assert f"*{L['before']}* vs *{L['after']}*: within noise (0.0206 against 0.0164)" in text
    # one epoch after the swap: the same rule
    r = s["recovery"]
    r["one_epoch_later"].update(differs=True, lower=0)
    r["swap_kept"]["one_epoch_later"] = {"mean": 0.273, "lo": 0.224, "hi": 0.322}
    r["swap_reset"]["one_epoch_later"] = {"mean": 0.346, "lo": 0.305, "hi": 0.388}
    text = build_report(s)
    assert "lower with the state kept (significant by the paired test, though the two" in text
    r["swap_reset"]["one_epoch_later"] = {"mean": 0.346, "lo": 0.33, "hi": 0.388}
    assert "lower with the state kept (significant)." in build_report(s)


def test_error_to_the_truth_from_the_final_fits(results):
    """Per arm, the mean over the grid of (final fit - (sin 3x + x/2))^2, per seed, with its
    t-interval over seeds; the sentence compares it with the noise variance both ways."""
    x = np.linspace(-2.0, 2.0, CFG.n_grid)
    truth = np.sin(3 * x) + 0.5 * x
    end = results.coords["fit/when"].index("end")
    for a, arm in enumerate(sw.ARMS):
        per_seed = ((results.arrays["fit"][a, :, end].astype(np.float64) - truth) ** 2).mean(-1)
        d = results.summary["truth"][arm]
        assert d["mean"] == pytest.approx(per_seed.mean(), rel=1e-5)
        half = st.t.ppf(0.975, CFG.seeds - 1) * per_seed.std(ddof=1) / math.sqrt(CFG.seeds)
        assert d["hi"] - d["mean"] == pytest.approx(half, rel=1e-4)
        assert num(d["mean"]) in SPEC.report(results)
    s = copy.deepcopy(results.summary)
    L = s["labels"]
    for arm in sw.ARMS:
        s["truth"][arm] = {"mean": 0.02, "lo": 0.015, "hi": 0.025}
    text = build_report(s)
    assert "every arm's error to the truth is above it (the whole interval)" in text
    for arm in sw.ARMS:
        s["truth"][arm] = {"mean": 0.005, "lo": 0.003, "hi": 0.007}
    assert "every arm's error to the truth is below it (the whole interval)" in build_report(s)
    # an interval that holds the noise variance is neither above nor below it
    s["truth"]["after"] = {"mean": 0.008, "lo": 0.005, "hi": 0.011}
    s["truth"]["before"] = {"mean": 0.0147, "lo": 0.0126, "hi": 0.0168}
    text = build_report(s)
    assert (
        f"the error to the truth is above the noise variance (the whole interval) for "
        f"*{L['before']}*; within noise of it (the interval holds it) for *{L['after']}*; "
        f"below it (the whole interval) for *{L['swap_kept']}*"
    ) in text


def test_control_check_against_relu_throughout_after_as_many_epochs(results):
    """The fresh control after its epochs - swap_epoch epochs against relu throughout after as
    many (the same training on other minibatches), from the table and paired by seed; the report's
    sentence both ways, and the caveat where the compared arms were still improving."""
    c, n2 = results.summary["control_check"], CFG.epochs - CFG.swap_epoch
    fresh = _table_values(results, "fresh_after", "test/mse", CFG.epochs)
    after = _table_values(results, "after", "test/mse", n2, phase=1)
    assert c["epochs"] == n2
    assert c["fresh_end"]["mean"] == pytest.approx(fresh.mean(), rel=1e-12)
    assert c["after_same_epochs"]["mean"] == pytest.approx(after.mean(), rel=1e-12)
    assert c["differs"] == _paired(fresh, after)
    s = copy.deepcopy(results.summary)
    L = s["labels"]
    s["control_check"].update(differs=False, lower=None)
    text = build_report(s)
    assert f"*{L['after']}* after its first {n2} epochs had " in text
    assert "as it should be: the control is the same training" in text
    s["control_check"].update(differs=True, lower=1)
    text = build_report(s)
    assert "the minibatch order alone moves this MSE beyond the noise" in text
    for arm in sw.ARMS:
        s["convergence"][arm]["test"] = {"mean": -0.01, "lo": -0.02, "hi": 0.0}
    assert "where the budget of" not in build_report(s)
    s["convergence"]["fresh_after"]["test"] = {"mean": -0.16, "lo": -0.2, "hi": -0.11}
    text = build_report(s)
    assert (
        f"*{L['fresh_after']}* was still improving at the end (next section): "
        f"this compares it where the budget of {CFG.epochs} epochs ran out"
    ) in text


def test_figures_fit_the_page_width(results):
    """The page shows a figure about 800 px wide: none is wider than 9.5 inches (the loss
    panels above the zoom, the hidden units one row per moment), so that text keeps ~80% of its
    size; the hidden-unit figure has a row per moment and a column for the fit and each layer."""
    import matplotlib.pyplot as plt

    figs = SPEC.figures(results)
    for name, fig in figs.items():
        assert fig.get_size_inches()[0] <= 9.5, name
    hidden = figs["hidden_units"].axes
    assert len(hidden) == 5 * (CFG.depth + 1)
    titles = [ax.get_title() for ax in hidden[: CFG.depth + 1]]
    assert titles[0].startswith("fit") and titles[1].startswith("layer 1")
    for fig in figs.values():
        plt.close(fig)


def test_kept_against_reset_paired_by_seed(results):
    """Kept minus reset per seed (from the table), as an interval over seeds; the sentence
    reads it as the paired test's interval, which excludes 0 exactly when the test separates
    the two arms."""
    kept = _table_values(results, "swap_kept", "test/mse", CFG.epochs)
    reset = _table_values(results, "swap_reset", "test/mse", CFG.epochs)
    d = results.summary["kept_minus_reset"]
    diff = kept - reset
    assert d["mean"] == pytest.approx(diff.mean(), rel=1e-9, abs=1e-15)
    half = st.t.ppf(0.975, CFG.seeds - 1) * diff.std(ddof=1) / math.sqrt(CFG.seeds)
    assert d["hi"] == pytest.approx(diff.mean() + half, rel=1e-9, abs=1e-15)
    kr = next(
        c for c in results.summary["comparisons"] if (c["a"], c["b"]) == ("swap_kept", "swap_reset")
    )
    assert kr["differs"] == (d["lo"] > 0 or d["hi"] < 0) == _paired(kept, reset)
    s = copy.deepcopy(results.summary)
    kr = next(c for c in s["comparisons"] if (c["a"], c["b"]) == ("swap_kept", "swap_reset"))
    kr.update(differs=True, lower=1)
    s["kept_minus_reset"] = {"mean": 0.014, "lo": 0.002, "hi": 0.026}
    text = build_report(s)
    assert (
        "kept minus reset is 0.014 [0.002, 0.026]: the interval the paired test reads, which "
        "excludes 0." in text
    )
    assert "Resetting the state ended better than keeping it." in text
    kr.update(differs=False, lower=None)
    s["kept_minus_reset"] = {"mean": 0.014, "lo": -0.002, "hi": 0.03}
    text = build_report(s)
    assert (
        "kept minus reset is 0.014 [-0.002, 0.03]: the interval the paired test reads, "
        "which holds 0." in text
    )
    assert "The paired test does not separate keeping from resetting" in text
    assert "Welch" not in text


# ------------------------------------------------------------------ pairing by seed


def _offset_case(n: int = 8, shift: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """Two arms of ``n`` seeds: a large shared per-seed offset (sd ~0.05, what one seed's weights
    and minibatches give both arms) plus, in ``a``, a small consistent shift (±10% noise)."""
    rng = np.random.default_rng(7)
    offset = 0.1 + 0.05 * rng.standard_normal(n)
    b = offset + 1e-4 * rng.standard_normal(n)
    a = offset + shift * (1 + 0.1 * rng.standard_normal(n))
    return a, b


def test_small_consistent_difference_over_a_shared_offset_is_a_difference():
    """The chapter's comparison calls a small per-seed difference on top of a large shared
    offset a difference, as SciPy's paired t-test does; Welch's unpaired test calls it noise."""
    a, b = _offset_case()
    assert st.ttest_rel(a, b).pvalue < 0.05
    assert st.ttest_ind(a, b, equal_var=False).pvalue > 0.5  # what Welch would have said
    c = sw._compare(a, b)  # noqa: SLF001
    assert c["differs"] and c["lower"] == 1 and c["pairs"] == a.size
    assert c["diff"] == pytest.approx(np.mean(a - b), rel=1e-12)
    labels = sw.arm_labels("tanh", "relu")
    words = verdict({"a": "swap_kept", "b": "swap_reset", **c}, labels)
    assert words.startswith(f"*{labels['swap_reset']}* lower than *{labels['swap_kept']}*")
    # and against the arrays of a run: the end values of the final held-out MSE
    ends = np.zeros((len(sw.ARMS), a.size))
    ends[sw.ARMS.index("swap_kept")], ends[sw.ARMS.index("swap_reset")] = a, b
    rows = [sw._compare(ends[sw.ARMS.index(x)], ends[sw.ARMS.index(y)]) for x, y in sw.PAIRS]
    assert rows[sw.PAIRS.index(("swap_kept", "swap_reset"))]["differs"]
    # a shift of 0 on the same offsets: no difference
    a0, b0 = _offset_case(shift=0.0)
    assert not sw._compare(a0, b0)["differs"] and not _paired(a0, b0)  # noqa: SLF001


def test_final_comparisons_of_a_run_are_paired(results):
    """Through the summary: the hand-made case written into the kept and reset arms' final
    held-out MSE is a difference in the report's words."""
    loss = results.arrays["loss"].copy()  # (arm, seed, split, point)
    spe = sw.steps_per_epoch(CFG)
    steps = np.rint(np.asarray(results.coords["loss/point"]) * spe).astype(int)
    a, b = _offset_case(CFG.seeds, shift=0.01)
    assert _paired(a, b) and not _welch(a, b)
    test = sw.SPLITS.index("test")
    loss[sw.ARMS.index("swap_kept"), :, test, -1] = a
    loss[sw.ARMS.index("swap_reset"), :, test, -1] = b
    summary = sw._summary(CFG, {**results.arrays, "loss": loss}, results.coords, steps, spe)  # noqa: SLF001
    kr = next(c for c in summary["comparisons"] if (c["a"], c["b"]) == ("swap_kept", "swap_reset"))
    assert kr["differs"] and kr["lower"] == 1
    assert "Resetting the state ended better than keeping it." in build_report(
        {**results.summary, **{k: summary[k] for k in ("comparisons", "final", "kept_minus_reset")}}
    )


def test_pairing_is_by_seed_not_by_position():
    """Per-seed values given in shuffled seed order are lined up by seed: the verdict equals
    the one in seed order, and differs from pairing by position; a seed on one side only (or
    non-finite on one side) is dropped from both."""
    a, b = _offset_case(10)
    seeds = np.arange(10)
    rng = np.random.default_rng(3)
    pa, pb = rng.permutation(10), rng.permutation(10)
    sa = pd.Series(a[pa], index=seeds[pa])
    sb = pd.Series(b[pb], index=seeds[pb])
    x, y = sw.paired_by_seed(sa, sb)
    np.testing.assert_array_equal(x, a)
    np.testing.assert_array_equal(y, b)
    assert sw._compare(sa, sb)["differs"] == _paired(a, b) is True  # noqa: SLF001
    assert not _paired(a[pa], b[pb])  # pairing by position would lose it
    # seed 4 only in a, seed 7 NaN in b: both dropped from both sides
    sa2 = sa.copy()
    sb2 = sb.drop(4)
    sb2.loc[7] = np.nan
    x, y = sw.paired_by_seed(sa2, sb2)
    keep = np.array([s not in (4, 7) for s in seeds])
    np.testing.assert_array_equal(x, a[keep])
    np.testing.assert_array_equal(y, b[keep])
    c = sw._compare(sa2, sb2)  # noqa: SLF001
    assert c["pairs"] == 8 and c["differs"] == _paired(a[keep], b[keep])
    with pytest.raises(ValueError, match="one value per seed"):
        sw.paired_by_seed(pd.Series([1.0, 2.0], index=[0, 0]), pd.Series([1.0, 2.0], index=[0, 1]))
