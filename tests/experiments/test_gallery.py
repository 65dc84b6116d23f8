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
from scipy import stats

import actlab
from actlab.experiments import get_experiment, list_experiments
from actlab.experiments.gallery import SPEC
from actlab.experiments.gallery import exercises as stubs
from actlab.experiments.gallery import experiment as g
from actlab.experiments.gallery import solutions as sol
from actlab.experiments.gallery.report import _in_z
from actlab.plotting.style import COLORS, PALETTE, color_of
from actlab.report.exercises import KINDS, exercises_markdown
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
    assert spec.title == "Activation gallery"
    # A reference at the end of the tutorial, after every lesson.
    assert list_experiments()[-1] == "gallery"
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


def test_derivatives_figure_shows_every_flat_band(smoke):
    """Each flat interval is shaded and marked by a dark bar along the panel's bottom that is
    at least 2.5% of the window wide, so a band too narrow to see still shows; each panel
    states its flat fraction."""
    from matplotlib.colors import to_hex

    from actlab.experiments.gallery import figures as gf

    results = g.run(dataclasses.replace(NOTATION, activations=("sine", "tanh", "identity")))
    fig = SPEC.figures(results)["derivatives"]
    window = NOTATION.z_max - NOTATION.z_min
    for ax in (a for a in fig.axes if a.get_visible()):
        p = _props(results, ax.get_title())
        bars = [
            patch for patch in ax.patches
            if to_hex(patch.get_facecolor()) == gf._FLAT_BAR.lower()
        ]  # fmt: skip
        assert len(bars) == len(p["flat_intervals"]), ax.get_title()
        for bar in bars:
            assert bar.get_width() >= 0.025 * window - 1e-9
        assert any(t.get_text() == f"flat: {100 * p['flat_fraction']:.3g}%" for t in ax.texts)
    sine = _props(results, "sine")
    assert len(sine["flat_intervals"]) >= 2 and sine["flat_fraction"] < 0.02  # narrow bands


def test_saturation_heat_map_is_readable(smoke):
    """At about 800 pixels: numbers at 10 points or more, black or white against the cell's grey
    (a luminance difference of at least 0.45), and names in black, not in pale colours."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    fig = SPEC.figures(smoke)["saturation"]
    ax = fig.axes[0]
    p = np.asarray(smoke.arrays["p_flat"], dtype=float)

    def lum(rgb):
        r, gr, b = rgb[:3]
        return 0.2126 * r + 0.7152 * gr + 0.0722 * b

    cells = [t for t in ax.texts]
    assert len(cells) == p.size
    for t in cells:
        i, j = round(t.get_position()[1]), round(t.get_position()[0])
        cell = colormaps["Greys"](p[i, j])
        assert t.get_fontsize() >= 10
        assert abs(lum(to_rgb(t.get_color())) - lum(cell)) >= 0.45, (i, j, p[i, j])
    for label in ax.get_yticklabels():
        assert to_rgb(label.get_color()) == (0.0, 0.0, 0.0) and label.get_fontsize() >= 10
    width_px = fig.get_figwidth() * 110  # the store saves at 110 dpi
    assert width_px <= 1000  # shown near its own size, not shrunk


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
        assert _in_z(_props(smoke, name)["latex"]) in text
    assert text.count("$$") >= 4 * len(SMOKE.activations)
    j = SMOKE.sigmas.index(3.0)
    tanh = _props(smoke, "tanh")["p_flat"][j]
    assert r"$z \sim \mathcal{N}(0, 3^2)$ ($s_z = 3$)" in text
    assert f"tanh's on {100 * tanh:.3g}%" in text and "relu's on 50%" in text
    # Change a number in the results: the report follows.
    changed = json.loads(json.dumps(smoke.summary))
    next(p for p in changed["properties"] if p["name"] == "tanh")["p_flat"][j] = 0.123456
    other = SPEC.report(dataclasses.replace(smoke, summary=changed))
    assert "tanh's on 12.3%" in other


TWINS = g.Config(
    activations=("celu", "elu", "relu", "relu6", "tanh"),
    n_points=101,
    resolution=0.01,
    sigmas=(1.0, 5.0),
)


@pytest.fixture(scope="module")
def twins():
    return g.run(TWINS)


def test_identical_panels_are_found_and_told(twins):
    names = list(TWINS.activations)
    pairs = g.identical_on_window(np.asarray(twins.arrays["curves"]), names)
    assert pairs == [("celu", "elu"), ("relu", "relu6")]
    # Independent check: torch's own functions agree on the window, and relu6 differs past 6.
    z = torch.linspace(-5, 5, 101, dtype=torch.float64)
    assert torch.equal(torch.nn.functional.celu(z), torch.nn.functional.elu(z))
    assert torch.equal(torch.relu(z), torch.nn.functional.relu6(z))
    assert torch.nn.functional.relu6(torch.tensor(7.0)) != torch.relu(torch.tensor(7.0))
    text = SPEC.report(twins)
    assert "elu = celu (equal in every row of the flat-input table too)" in text
    assert "relu6 = relu (they part outside the window, as the flat-input table shows)" in text
    grid = SPEC.figures(twins)["activations"]
    notes = {
        ax.get_title(): [t.get_text() for t in ax.texts] for ax in grid.axes if ax.get_visible()
    }
    assert any(t.startswith("= celu on") for t in notes["elu"])
    assert any(t.startswith("= relu on") for t in notes["relu6"])
    assert not any(t.startswith("=") for t in notes["celu"] + notes["tanh"])
    # relu6's extra flat mass above its cap, 1 - Phi(6 / 5) at s_z = 5, from SciPy.
    relu6 = _props(twins, "relu6")["p_flat"]
    assert relu6[1] == pytest.approx(0.5 + stats.norm.sf(6 / 5), rel=1e-9)


def test_no_twin_note_without_twins(smoke):
    assert g.identical_on_window(np.asarray(smoke.arrays["curves"]), list(SMOKE.activations)) == []
    text = SPEC.report(smoke)
    assert "Identical on" not in text and "red note" not in text


def test_classic_figure_dashes_the_curve_on_top(smoke):
    fig = SPEC.figures(smoke)["classic"]
    for ax in fig.axes:
        style = {ln.get_label(): ln.get_linestyle() for ln in ax.lines}
        assert style["leaky_relu (dashed: on top of relu)"] == "--"
        assert style["relu"] == style["tanh"] == style["sigmoid"] == "-"


def test_reference_structure_and_notation(smoke):
    text = SPEC.report(smoke)
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads[0] == "## The classic four" and heads[-1] == "## Exercises"
    assert heads.index("## All activations at a glance") < heads.index("## Formulas")
    opening = text.split("## ")[0]
    assert "reference" in opening and "How to read the figures" in opening
    # z, not x; phi is the activation only (GELU's Gaussian density is Phi'); the sd is s_z.
    assert r"\varphi(x)" not in text and r"\varphi'(x)" not in text
    gelu = _props(smoke, "gelu")["latex_deriv"]
    assert _in_z(gelu) in text and r"\Phi'(z)" in _in_z(gelu)
    assert r"$\sigma = " not in text and r"8\sigma" not in text
    assert r"$s_z = 1$" in text
    # flat is per input; saturated and dead keep the tutorial's definitions.
    assert r"$|\tanh z| > 0.995$" in text and "$|\\tanh z| > 0.99$" in text
    assert "dead (saturated)" not in text


NOTATION = g.Config(
    activations=("prelu", "gelu_tanh", "tanh", "relu"), n_points=101, resolution=0.01,
    sigmas=(1.0, 3.0),
)  # fmt: skip


def test_report_uses_the_tutorials_notation():
    """No symbol with a second meaning: PReLU's slope is alpha (a is an action), the tanh term
    of GELU's derivative is psi (t is an optimiser step), and the flat-set edge and threshold of
    the exercise are numbers or words."""
    from actlab.report.notation import misplaced_symbols, symbols_in

    results = g.run(NOTATION)
    text = SPEC.report(results)
    assert misplaced_symbols(text, "gallery") == []
    assert "a" not in symbols_in(text) and "t" not in symbols_in(text)
    prelu, gelu_tanh = actlab.get_activation("prelu"), actlab.get_activation("gelu_tanh")
    assert r"\alpha\,x" in prelu.latex and r"\alpha" in prelu.latex_deriv
    assert r"\psi = \tanh" in gelu_tanh.latex_deriv and "(1 + t)" not in gelu_tanh.latex_deriv
    assert _in_z(prelu.latex) in text and _in_z(gelu_tanh.latex_deriv) in text
    # the exercise's edge, artanh(sqrt(0.99)), from NumPy
    assert sol.FLAT_EDGE == pytest.approx(np.arctanh(np.sqrt(0.99)), rel=1e-12)
    assert r"\operatorname{artanh}\sqrt{0.99} \approx 2.99$" in text


def test_report_links_the_glossary_terms(smoke):
    text = SPEC.report(smoke)
    for key in ("saturated", "inactive", "dead", "default-init", "he-init", "xavier-init"):
        assert f"](#term-{key})" in text, key
    # "off" is never a name for dead, and a dead unit is not promised to stay dead forever
    assert "will ever move it" not in text


def test_init_scales_agree_with_torch_initialisers():
    """The s_z the report gives for He, Xavier and PyTorch's default initialisation, against
    the weights torch itself draws (inputs of mean square 1: s_z^2 = fan-in * Var(w))."""
    import re

    text = SPEC.report(g.run(NOTATION))
    found = dict(re.findall(r"\[(He|Xavier|default) initialisation\]\(#term-[a-z-]+\)"
                            r"(?: \(\$\\sigma_w\^2 = [0-9./]+\$\))?(?: gives)? "
                            r"\$s_z = ([0-9.]+)\$", text))  # fmt: skip
    assert set(found) == {"He", "Xavier", "default"}, found
    # The weight variance times fan-in is the notation's sigma_w^2 (lambda is a scale factor).
    para = next(line for line in text.splitlines() if line.startswith("Which $s_z$"))
    assert "\\lambda" not in para and "$\\sigma_w^2/\\text{fan-in}$" in para
    gen = torch.Generator().manual_seed(0)
    fan = 1000
    he, xavier = torch.empty(fan, fan), torch.empty(fan, fan)
    torch.nn.init.kaiming_normal_(he, nonlinearity="relu", generator=gen)
    torch.nn.init.xavier_uniform_(xavier, generator=gen)
    torch.manual_seed(0)
    default = torch.nn.Linear(fan, fan).weight.detach()
    for name, w in (("He", he), ("Xavier", xavier), ("default", default)):
        measured = math.sqrt(fan * float(w.double().var()))
        assert float(found[name]) == pytest.approx(measured, rel=0.01), name


def test_never_flat_needs_the_slope_above_the_threshold(smoke):
    changed = json.loads(json.dumps(smoke.summary))
    tanh = next(p for p in changed["properties"] if p["name"] == "tanh")
    tanh["p_flat"] = [0.0] * len(SMOKE.sigmas)  # no mass within 8 sd, but min |phi'| < 0.01
    text = SPEC.report(dataclasses.replace(smoke, summary=changed))
    assert "**Flat only far in the tails** (tanh)" in text
    never = next(line for line in text.splitlines() if line.startswith("**Never flat**"))
    assert "tanh" not in never and "leaky_relu" in never and "identity" in never


# --------------------------------------------------------------------------------------------
# Exercises


def test_exercise_list_and_report(smoke):
    kinds = [e.kind for e in sol.EXERCISES]
    assert 2 <= len(kinds) <= 3 and "coding" in kinds
    assert kinds == sorted(kinds, key=KINDS.index)
    for e in sol.EXERCISES:
        if e.function:
            lesson, name = e.function.split(":")
            assert lesson == "gallery"
            assert callable(getattr(stubs, name)) and callable(getattr(sol, name))
    assert SPEC.report(smoke).rstrip().endswith(exercises_markdown(sol.EXERCISES).rstrip())


def test_stub_is_unsolved():
    with pytest.raises(NotImplementedError):
        stubs.tanh_flat_probability(1.0)


def test_tanh_flat_probability_against_quadrature_and_the_table(smoke):
    from scipy import integrate, optimize

    for s_z in (0.25, 0.5, 1.0, 3.0, 10.0):
        for t in (1e-4, 0.01, 0.3, 0.99):
            # Independent: the edge of the flat set by root finding on tanh' itself, then the
            # density integrated over both tails by adaptive quadrature.
            edge = optimize.brentq(lambda z, t=t: 1 - np.tanh(z) ** 2 - t, 0.0, 50.0, xtol=1e-15)
            tail, _ = integrate.quad(lambda z, s=s_z: stats.norm.pdf(z, scale=s), edge, np.inf,
                                     epsabs=1e-300, epsrel=1e-12)  # fmt: skip
            got = sol.tanh_flat_probability(s_z, t)
            assert got == pytest.approx(2 * tail, rel=1e-8, abs=1e-300)
    assert sol.tanh_flat_probability(1.0, 1.0) == 1.0
    assert sol.tanh_flat_probability(2.0, 5.0) == 1.0
    for bad in ((0.0, 0.01), (1.0, 0.0), (-1.0, 0.01)):
        with pytest.raises(ValueError):
            sol.tanh_flat_probability(*bad)
    # The gallery's own table for tanh, to its bisection precision.
    for s_z, p in zip(SMOKE.sigmas, _props(smoke, "tanh")["p_flat"], strict=True):
        assert sol.tanh_flat_probability(s_z, SMOKE.flat_threshold) == pytest.approx(p, rel=1e-9)


def test_warm_up_tanh_is_a_scaled_sigmoid():
    z = torch.linspace(-6, 6, 241, dtype=torch.float64, requires_grad=True)
    np.testing.assert_allclose(torch.tanh(z).detach(), (2 * torch.sigmoid(2 * z) - 1).detach(),
                               atol=1e-15)  # fmt: skip
    (g_tanh,) = torch.autograd.grad(torch.tanh(z).sum(), z)
    s2 = torch.sigmoid(2 * z).detach()
    np.testing.assert_allclose(g_tanh, 4 * s2 * (1 - s2), atol=1e-15)
    assert "4 \\cdot \\tfrac14 = 1" in sol.EXERCISES[0].solution


def test_relu6_answer_matches_the_gallery(twins):
    measured = dict(zip(TWINS.sigmas, _props(twins, "relu6")["p_flat"], strict=True))
    for s_z, p in measured.items():
        assert sol.RELU6_FLAT[s_z] == pytest.approx(p, rel=1e-9)
    assert sol.RELU6_FLAT[5.0] == pytest.approx(0.5 + stats.norm.sf(1.2), rel=1e-12)
    answer = next(e for e in sol.EXERCISES if e.kind == "conceptual").solution
    assert f"{sol.RELU6_FLAT[5.0]:.3f}" in answer and "0.615" in answer
    assert "%$" not in answer  # no % inside math, where LaTeX reads it as a comment


def test_flat_share_verdicts_need_a_monotone_share():
    # A share that falls and then rises is neither "grows" nor "shrinks" (silu and mish do so
    # between s_z = 1 and 2 in the default run).
    import dataclasses

    results = g.run(dataclasses.replace(SMOKE, sigmas=(0.5, 1.0, 2.0)))
    props = {p["name"]: p for p in results.summary["properties"]}
    name = "tanh"
    props[name]["p_flat"] = [0.02, 0.01, 0.05]
    text = SPEC.report(results)
    grows = [line for line in text.splitlines() if "grows with the scale" in line]
    mixed = [line for line in text.splitlines() if "Neither steadily" in line]
    assert not any(f"{name} 2%" in line for line in grows)  # its entry would read "tanh 2% →"
    assert len(mixed) == 1 and f"{name} 2%" in mixed[0]
