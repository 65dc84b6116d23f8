"""The activation-swap experiment against independent references: each arm equals a plain
nn.Sequential trained alone with torch.optim.Adam (the swap = replacing its activation modules;
kept = the same optimiser goes on; reset = a fresh one), the reset checked on the optimiser's
state, the unit counts against the probes, the report against the results, and the exercises'
worked solutions against the engine and torch.optim.Adam."""

import math

import numpy as np
import pytest
import torch
from scipy import stats as st
from torch import nn

from actlab.experiments.activation_swap import SPEC
from actlab.experiments.activation_swap import exercises as stubs
from actlab.experiments.activation_swap import experiment as sw
from actlab.experiments.activation_swap import solutions as sol
from actlab.experiments.activation_swap.report import verdict
from actlab.models import EnsembleMLP
from actlab.probes import ensemble_activation_metrics
from actlab.report.exercises import exercises_markdown
from actlab.report.format import num, ratio
from actlab.train import TrainConfig, batch_order, train

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
    """Seed ``seed``'s initial network as Linear layers and torch.nn activation modules."""
    member = EnsembleMLP(1, [CFG.width] * CFG.depth, 1, [activation], [seed], init=CFG.init)
    linears = [m for m in member.member(0) if isinstance(m, nn.Linear)]
    layers = []
    for i, lin in enumerate(linears):
        layers.append(lin)
        if i < len(linears) - 1:
            layers.append(ACT[activation]())
    return nn.Sequential(*layers)


def _reference(arm: str, seed: int):
    """Train one arm alone: per epoch end (the swap twice) the training and held-out MSE, and
    Adam's state right after the swap."""
    data = sw.make_data(CFG)
    x, y = data["x_train"], data["y_train"]
    first = "relu" if arm == "after" else "tanh"
    model = _plain(seed, first)
    opt = torch.optim.Adam(model.parameters(), lr=CFG.lr)
    curve, state = [], None

    def measure():
        with torch.no_grad():
            curve.append(
                [
                    nn.functional.mse_loss(model(data[f"x_{s}"]), data[f"y_{s}"]).item()
                    for s in ("train", "test")
                ]
            )

    n = CFG.n_train
    for epoch in range(CFG.epochs):
        if epoch == CFG.swap_epoch:
            measure()  # before the swap
            if arm.startswith("swap"):
                for i, module in enumerate(model):
                    if isinstance(module, nn.Tanh):
                        model[i] = nn.ReLU()
                if arm == "swap_reset":
                    opt = torch.optim.Adam(model.parameters(), lr=CFG.lr)
            state = {p: {k: v.clone() for k, v in opt.state[p].items()} for p in opt.state}
        measure()
        order = batch_order(seed, n, epoch)  # phase 2 goes on with the uninterrupted order
        for start in range(0, n, CFG.batch_size):
            idx = order[start : start + CFG.batch_size]
            opt.zero_grad()
            nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
            opt.step()
    measure()
    return np.array(curve), model, state


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
    expected, _, _ = _reference(arm, seed)
    got = _epoch_curve(results, arm, seed)
    assert got.shape == expected.shape == (CFG.epochs + 2, 2)
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
        _, ref_model, ref_state = _reference("swap_kept", seed)
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
        assert _reference("swap_reset", seed)[2] == {}


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
    text = SPEC.report(results)
    for value in (pre.mean(), post.mean(), s["final"]["after"]["test"]["mean"]):
        assert num(value) in text
    assert f"{ratio(log_ratio)} times higher" in text
    # Each comparison's verdict is Welch's test, recomputed here.
    for c in s["comparisons"]:
        a = last[last.arm == c["a"]].value.to_numpy()
        b = last[last.arm == c["b"]].value.to_numpy()
        differs = st.ttest_ind(a, b, equal_var=False).pvalue < 0.05
        assert c["differs"] == differs
        words = verdict(c, s["labels"])
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
