"""The activation gallery: numbers against independent references, config errors, chunks,
figures and report."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

import actlab
from actlab.experiments import get_experiment
from actlab.experiments.gallery import SPEC
from actlab.experiments.gallery import experiment as g
from actlab.plotting.style import COLORS, PALETTE, color_of
from actlab.store import RunStore

SMOKE = g.presets["smoke"]


@pytest.fixture(scope="module")
def smoke():
    return g.run(SMOKE)


def _props(results, name):
    return next(p for p in results.summary["properties"] if p["name"] == name)


def _phi_normal(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_registered_with_presets():
    spec = get_experiment("gallery")
    assert spec.order == 10 and spec.title == "Activation gallery"
    assert {"smoke", "default", "full"} <= set(spec.presets)
    assert spec.presets["default"].activations == ()  # every registered activation


def test_smoke_results_shape(smoke):
    names = list(SMOKE.activations)
    assert smoke.coords["curves/activation"] == names
    assert smoke.arrays["curves"].shape == (len(names), 2, SMOKE.n_points)
    assert smoke.axes["curves"] == ("activation", "quantity", "z")
    assert smoke.arrays["p_flat"].shape == (len(names), len(SMOKE.sigmas))
    z = np.asarray(smoke.coords["curves/z"])
    tanh = smoke.arrays["curves"][names.index("tanh")]
    np.testing.assert_allclose(tanh[0], np.tanh(z), atol=1e-12)
    np.testing.assert_allclose(tanh[1], 1 - np.tanh(z) ** 2, atol=1e-12)
    json.dumps(smoke.summary, allow_nan=False)  # storable as JSON, no NaN


def test_metrics_are_tidy(smoke):
    m = smoke.metrics
    assert {"member", "step", "metric", "value", "activation", "sigma"} <= set(m.columns)
    assert (m["step"] == 0).all() and m["metric"].str.startswith("gallery/").all()
    assert set(m["metric"]) <= set(g.METRICS)
    for member, name in enumerate(SMOKE.activations):
        assert set(m.loc[m["member"] == member, "activation"]) == {name}
    p = m[m["metric"] == "gallery/p_flat"]
    assert len(p) == len(SMOKE.activations) * len(SMOKE.sigmas)
    assert set(p["sigma"]) == set(SMOKE.sigmas)
    assert m.loc[m["metric"] != "gallery/p_flat", "sigma"].isna().all()


def test_relu_references(smoke):
    relu = _props(smoke, "relu")
    registry_d0 = float(actlab.get_activation("relu").derivative(torch.tensor(0.0)))
    assert relu["deriv_at_0"] == registry_d0 == 0.0
    assert relu["p_flat"] == [0.5] * len(SMOKE.sigmas)  # the negative half-line, at any scale
    assert relu["flat_fraction"] == pytest.approx(0.5, abs=1e-9)
    assert relu["kinks"] == [0.0]
    assert (relu["phi_min"], relu["phi_max"]) == (0.0, 5.0)
    assert not relu["bounded"] and relu["monotonic"] and not relu["smooth"]


def test_tanh_references(smoke):
    tanh = _props(smoke, "tanh")
    assert tanh["max_abs_deriv"] == pytest.approx(1.0, abs=1e-12)
    assert tanh["deriv_at_0"] == 1.0
    assert tanh["bounded"] and tanh["zero_centred"] and tanh["smooth"] and tanh["monotonic"]
    # |tanh'(z)| < 0.01 iff |z| > atanh(sqrt(0.99)): P = 2 (1 - Phi(c / sigma)).
    c = math.atanh(math.sqrt(0.99))
    for sigma, p in zip(SMOKE.sigmas, tanh["p_flat"], strict=True):
        assert p == pytest.approx(2 * (1 - _phi_normal(c / sigma)), rel=1e-8, abs=1e-14)
    assert tanh["flat_fraction"] == pytest.approx((5 - c) / 5, abs=1e-9)
    # P grows with sigma (saturation).
    assert tanh["p_flat"] == sorted(tanh["p_flat"])


def test_sigmoid_against_closed_form(smoke):
    # s (1 - s) < 0.01 iff s > (1 + sqrt(0.96)) / 2, i.e. |z| > logit of that.
    s = (1 + math.sqrt(0.96)) / 2
    c = math.log(s / (1 - s))
    for sigma, p in zip(SMOKE.sigmas, _props(smoke, "sigmoid")["p_flat"], strict=True):
        assert p == pytest.approx(2 * (1 - _phi_normal(c / sigma)), rel=1e-8, abs=1e-14)
    assert _props(smoke, "sigmoid")["max_abs_deriv"] == pytest.approx(0.25, abs=1e-12)


def test_leaky_and_identity(smoke):
    leaky = _props(smoke, "leaky_relu")
    assert leaky["deriv_at_0"] == pytest.approx(0.01)  # the registry's convention at the kink
    assert leaky["min_abs_deriv"] == pytest.approx(0.01)
    assert leaky["p_flat"] == [0.0] * len(SMOKE.sigmas)  # |phi'| = 0.01 is not < 0.01
    ident = _props(smoke, "identity")
    assert ident["kinks"] == [] and ident["p_flat"] == [0.0] * len(SMOKE.sigmas)
    assert ident["zero_centred"] and not ident["bounded"]


def test_kinks_match_registry(smoke):
    for p in smoke.summary["properties"]:
        inside = [k for k in p["kinks_registry"] if SMOKE.z_min < k < SMOKE.z_max]
        assert p["kinks"] == pytest.approx(inside, abs=1e-6), p["name"]
        assert p["disagreements"] == [], p["name"]


def test_gelu_not_monotonic(smoke):
    gelu = _props(smoke, "gelu")
    assert not gelu["monotonic"] and gelu["phi_min"] == pytest.approx(-0.17, abs=0.001)


def test_flag_disagreement_is_reported():
    liar = actlab.Activation(
        name="liar",
        fn=lambda x: x,
        deriv=torch.ones_like,
        latex="x",
        latex_deriv="1",
        bounded=True,
        monotonic=True,
        zero_centred=True,
        smooth=True,
        piecewise_linear=True,
        self_gated=False,
        reference="an identity that claims to be bounded",
    )
    props = g.activation_properties(liar, SMOKE)
    assert not props["bounded"] and props["bounded_flag"] and not props["bounded_agrees"]
    assert props["disagreements"] == ["bounded"]


def test_binary_step_jump_in_phi_only():
    props = g.activation_properties(actlab.get_activation("binary_step"), SMOKE)
    assert props["kinks"] == [0.0] and not props["smooth"]  # phi jumps, phi' is 0 everywhere
    assert props["p_flat"] == [1.0] * len(SMOKE.sigmas) and props["flat_fraction"] == 1.0


def test_parameterised_name_and_chunk_key():
    cfg = dataclasses.replace(SMOKE, activations=("hardtanh(min_val=-2, max_val=2)",))
    keys = []
    results = g.run(cfg, lambda key, fn, work=0: keys.append(key) or fn())
    assert keys == ["act-hardtanh(min_val=-2, max_val=2)"]  # the store maps it to a file name
    assert results.summary["properties"][0]["kinks"] == [-2.0, 2.0]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_points": 10}, "n_points"),
        ({"n_points": 12.5}, "n_points"),
        ({"z_min": 1.0, "z_max": 1.0}, "z_min must be < z_max"),
        ({"z_min": 2.0, "z_max": -2.0}, "z_min must be < z_max"),
        ({"z_min": math.nan}, "z_min"),
        ({"z_max": math.inf}, "z_max"),
        ({"resolution": 0.0}, "resolution"),
        ({"resolution": 5.0}, "resolution"),
        ({"flat_threshold": 0.0}, "flat_threshold"),
        ({"sigmas": ()}, "sigmas"),
        ({"sigmas": (1.0, -1.0)}, "sigmas"),
        ({"sigmas": (1.0, 1.0)}, "sigmas"),
        ({"activations": ("relu", "relu")}, "activations"),
        ({"activations": ("tanhh",)}, "tanh"),
    ],
)
def test_config_errors(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(SMOKE, **change)


def test_unknown_activation_is_the_registrys_error():
    with pytest.raises(actlab.UnknownActivationError, match="Did you mean 'relu'"):
        g.Config(activations=("reluu",))


def test_config_accepts_lists():
    cfg = g.Config(activations=["tanh"], sigmas=[1, 2])
    assert cfg.activations == ("tanh",) and cfg.sigmas == (1.0, 2.0)
    hash(cfg)


def test_one_chunk_per_activation_and_restore(smoke):
    keys, saved = [], {}

    def record(key, fn, work=0):
        keys.append(key)
        saved[key] = fn()
        return saved[key]

    recorded = g.run(SMOKE, record)
    assert keys == [f"act-{n}" for n in SMOKE.activations]

    def restore(key, fn, work=0):
        return saved[key]  # never calls fn: every chunk restored

    restored = g.run(SMOKE, restore)
    _assert_same(recorded, restored)
    _assert_same(recorded, smoke)


def test_store_round_trip(tmp_path):
    """Chunks written by RunStore (torch.save) and restored give the same results."""
    store = RunStore(tmp_path / "run")
    store.begin("gallery", "smoke", SMOKE)
    first = g.run(SMOKE, store.chunk_runner())
    events = []
    second = g.run(SMOKE, store.chunk_runner(lambda key, restored: events.append(restored)))
    assert events == [True] * len(SMOKE.activations)
    _assert_same(first, second)
    store.save_results(second)
    loaded = store.load_results()
    assert SPEC.report(loaded) == SPEC.report(second)


def _assert_same(a, b):
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert a.arrays.keys() == b.arrays.keys()
    for key in a.arrays:
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    assert a.axes == b.axes and a.coords == b.coords
    assert json.dumps(a.summary) == json.dumps(b.summary)


def test_figures(smoke):
    figures = SPEC.figures(smoke)
    assert {"activations", "derivatives", "classic", "saturation"} <= set(figures)
    for name, fig in figures.items():
        assert isinstance(fig, Figure) and name.isidentifier()
        assert all(
            ax.has_data() for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"
        )
    grid = figures["activations"]
    titles = [ax.get_title() for ax in grid.axes if ax.get_visible()]
    assert titles == list(SMOKE.activations)
    # The activation's colour, from the one table every figure uses.
    relu_ax = grid.axes[list(SMOKE.activations).index("relu")]
    assert relu_ax.lines[0].get_color() == color_of("relu")


def test_colors_fixed_and_deterministic():
    assert color_of("relu") == COLORS["relu"] and color_of("tanh") != color_of("relu")
    assert len(set(COLORS.values())) == len(COLORS)
    assert color_of("leaky_relu(slope=0.2)") == color_of("leaky_relu(slope=0.2)")
    assert color_of("my_act") in PALETTE
    for name in actlab.list_activations():
        assert color_of(name).startswith("#")


def test_report_numbers_come_from_results(smoke):
    text = SPEC.report(smoke)
    assert text.startswith("# Activation gallery")
    for fig in ("activations", "derivatives", "classic", "saturation"):
        assert f"(figures/{fig}.png)" in text
    for name in SMOKE.activations:
        assert _props(smoke, name)["latex"] in text
    assert text.count("$$") >= 4 * len(SMOKE.activations)
    j = SMOKE.sigmas.index(3.0)
    tanh = _props(smoke, "tanh")["p_flat"][j]
    assert r"$z \sim \mathcal{N}(0, 3^2)$" in text
    assert f"tanh's on {100 * tanh:.3g}%" in text and "relu's on 50%" in text
    # Change a number in the results: the report follows.
    changed = json.loads(json.dumps(smoke.summary))
    next(p for p in changed["properties"] if p["name"] == "tanh")["p_flat"][j] = 0.123456
    other = SPEC.report(dataclasses.replace(smoke, summary=changed))
    assert "tanh's on 12.3%" in other
