"""The side-by-side chapter: every cell recomputed from the four runs' raw arrays and metrics with
SciPy's t-interval (not from the summaries the cells are read from), the marks against hand-set
columns, the sentences both ways, the section links, the CLI's input runs, and the exercise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from actlab.experiments import get_experiment
from actlab.experiments.four_answers import exercises as stubs
from actlab.experiments.four_answers import experiment as fa
from actlab.experiments.four_answers import report as rep
from actlab.experiments.four_answers import solutions

SMOKE = fa.presets["smoke"]


@pytest.fixture(scope="module")
def inputs():
    out = {}
    for name in fa.NEEDS:
        spec = get_experiment(name)
        out[name] = spec.run(spec.preset("smoke"))
    return out


@pytest.fixture(scope="module")
def answers(inputs):
    return fa.run(SMOKE, inputs=inputs)


def t_interval(values, bounds=None):
    """Mean and 95% Student-t interval, by SciPy (the mean twice when all values agree)."""
    v = np.asarray(values, dtype=float)
    if np.std(v) == 0:
        return v.mean(), v.mean(), v.mean()
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return v.mean(), lo, hi


def assert_cell(cell, mean, lo, hi):
    assert cell["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
    assert cell["lo"] == pytest.approx(lo, rel=1e-9, abs=1e-12)
    assert cell["hi"] == pytest.approx(hi, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------ cells from raw data
def test_gradient_cells_from_the_backward_signal_arrays(inputs, answers):
    res = inputs["gradient-flow"]
    cfg = get_experiment("gradient-flow").preset("smoke")
    d, w = max(cfg.depths), max(cfg.widths)
    key = f"delta_D{d}_N{w}"
    inits = res.coords[f"{key}/init"]
    acts = res.coords[f"{key}/activation"]
    column = answers.summary["columns"]["gradient"]
    assert column["setting"]["depth"] == d and column["setting"]["width"] == w
    i = inits.index(column["setting"]["init"])
    assert set(column["cells"]) == set(acts)
    for a, act in enumerate(acts):
        logs = res.arrays[key][i, a]  # (seed, layer), natural logs of the signal
        per_seed = (logs[:, 0] - logs[:, d - 1]) / math.log(10)
        assert_cell(column["cells"][act], *t_interval(per_seed))
        direction = "vanishes" if t_interval(per_seed)[2] < 0 else None
        if direction:
            assert column["cells"][act]["direction"] == direction


def test_unit_cells_from_the_fraction_arrays(inputs, answers):
    res = inputs["unit-states"]
    fr = res.arrays["fractions_regression"]  # (fraction, step, activation, seed, layer)
    names = res.coords["fractions_regression/fraction"]
    acts = res.coords["fractions_regression/activation"]
    off = answers.summary["columns"]["off"]["cells"]
    dormant = answers.summary["columns"]["dormant"]["cells"]
    kinds = {"relu": "dead", "tanh": "saturated", "sigmoid": "saturated"}
    assert {a: c["kind"] for a, c in off.items()} == {a: kinds[a] for a in acts if a in kinds}
    units = fr.shape[-1] * res.summary["width"]  # hidden units of one network
    for a, act in enumerate(acts):
        last = fr[:, -1, a].mean(axis=-1)  # (fraction, seed): all layers have the same width
        names_cells = [("dormant_0.1", dormant[act])]
        if act in kinds:
            names_cells.append((kinds[act], off[act]))
        for name, cell in names_cells:
            values = last[names.index(name)]
            if np.all(values == 0):  # zero in every seed: Wilson of 0 of the pooled units
                n = units * len(values)
                assert cell["pooled"] == n
                assert_cell(cell, 0.0, 0.0, wilson_hi_at_zero(n))
            else:
                assert_cell(cell, *t_interval(values, (0, 1)))


def wilson_hi_at_zero(n):
    """The upper end of the 95% Wilson interval of 0 successes in n: z^2 / (n + z^2)."""
    z = stats.norm.ppf(0.975)
    return z * z / (n + z * z)


def _units_summary(loss_end):
    row = {
        "activation": "tanh",
        "saturated": {"end": {"mean": 0.0, "lo": 0.0, "hi": 0.0, "n": 5}},
        "dormant_0.1": {"end": {"mean": 0.01, "lo": 0.005, "hi": 0.015, "n": 5}},
        "loss_start": {"mean": 1.0},
        "loss_end": {"mean": loss_end},
    }
    return {
        "tasks": {"regression": [row]},
        "fractions": ["saturated", "dormant_0.1"],
        "applicable": {"tanh": {"saturated": True}},
        "depth": 2,
        "width": 10,
        "steps": 7,
        "seeds": 5,
    }


def test_a_network_that_barely_trained_is_not_ranked():
    """unit-states' rule: a loss that fell by less than half leaves the unit cells unranked
    (both ways of the rule), and the sentence says why."""
    _, off, dormant = fa.unit_cells(_units_summary(0.6), "regression", 0.1)
    assert dormant["tanh"]["unranked"] == "barely trained" == off["tanh"]["unranked"]
    assert fa.mark_column(dormant, "lower") == {"tanh": ""}
    text = rep.column_sentence("dormant", {"setting": {"tau": 0.1}, "cells": dormant})
    assert "No activation could be ranked" in text and "fell by less than half" in text
    _, off, dormant = fa.unit_cells(_units_summary(0.4), "regression", 0.1)
    assert "unranked" not in dormant["tanh"]
    assert fa.mark_column(dormant, "lower") == {"tanh": "best"}
    # zero in every seed: 0 of 2 * 10 * 5 units, the Wilson interval, not a zero width
    assert off["tanh"]["pooled"] == 100
    assert off["tanh"]["hi"] == pytest.approx(wilson_hi_at_zero(100), rel=1e-12)
    assert "(0 of 100) [0%, 3.7%]" in rep.cell_text("off", off["tanh"])


def test_rate_cells_from_the_divergence_arrays(inputs, answers):
    """The largest rate per seed at which the member was stable (neither diverged nor ended
    above its initial loss) *and* learned (ended below 90% of the targets' variance), from the
    raw arrays; geometric mean and interval; the chapter's stable rate and flat count beside."""
    res = inputs["stability"]
    cfg = get_experiment("stability").preset("smoke")
    d = len(cfg.depths) - 1
    var = float(res.arrays["target_var"][0])
    for opt in SMOKE.optimizers:
        rates = np.asarray(cfg.rates(opt))
        column = answers.summary["columns"][f"rate/{opt}"]
        assert column["setting"]["depth"] == max(cfg.depths)
        for a, act in enumerate(cfg.activations):
            per_seed = []
            for k in range(cfg.seeds):
                ok = [
                    r
                    for r in range(len(rates))
                    if res.arrays[f"diverged_{opt}"][d, a, r, k] < 0
                    and res.arrays[f"train_{opt}"][d, a, r, k]
                    < res.arrays[f"init_{opt}"][d, a, r, k]
                    and res.arrays[f"train_{opt}"][d, a, r, k] < 0.9 * var
                ]
                per_seed.append(rates[max(ok)] if ok else math.nan)
            cell = column["cells"][act]
            assert cell["per_seed"] == [None if math.isnan(v) else v for v in per_seed]
            entry = res.summary["stable"][opt][f"{max(cfg.depths)}/{act}"]
            assert cell["stable"]["flat"] == entry["flat"]
            if all(math.isfinite(v) for v in per_seed):
                mean, lo, hi = (2.0**v for v in t_interval(np.log2(per_seed)))
                assert cell["mean"] == pytest.approx(mean, rel=1e-9)
                at_top = any(v == rates[-1] for v in per_seed)
                assert cell["censored"] == ("above" if at_top else "")
                if not at_top:
                    assert (cell["lo"], cell["hi"]) == pytest.approx((lo, hi), rel=1e-9)
                    step = rates[1] / rates[0]  # the grid's factor
                    assert cell["edge_hi"] == pytest.approx(step * hi, rel=1e-9)
            else:
                assert cell["censored"] == "below" and cell["lo"] == 0.0


def test_a_flat_network_is_not_the_most_stable():
    """A network stable at every rate but fitting like a constant there gets no rate; one that
    learns at 0.25 (and diverges above) is the best: the stable-only rate would have ranked
    them the other way."""
    rates = np.array([0.125, 0.25, 0.5, 1.0])
    var = 1.0
    init = np.full((4, 2), 1.2)
    flat = {"div": np.full((4, 2), -1), "train": np.full((4, 2), 0.99)}  # stable, never learns
    good = {
        "div": np.array([[-1, -1], [-1, -1], [5, 7], [2, 3]]),
        "train": np.array([[0.2, 0.3], [0.1, 0.2], [np.nan, np.nan], [np.nan, np.nan]]),
    }
    arrays = {"target_var": np.array([var])}
    for opt in ("gd",):
        arrays[f"diverged_{opt}"] = np.stack([np.stack([flat["div"], good["div"]])])
        arrays[f"train_{opt}"] = np.stack([np.stack([flat["train"], good["train"]])])
        arrays[f"init_{opt}"] = np.stack([np.stack([init, init])])
    summary = {
        "config": {
            "depths": [8],
            "activations": ["sigmoid", "relu"],
            "rates": {"gd": rates.tolist()},
            "width": 4,
            "steps": 10,
            "seeds": 2,
        },
        "stable": {
            "gd": {
                "8/sigmoid": {"mean": 1.0, "flat": 2, "at_top": 2, "n": 2},
                "8/relu": {"mean": 0.25, "flat": 0, "at_top": 0, "n": 2},
            }
        },
    }
    setting, cells = fa.rate_cells(summary, arrays, "gd")
    assert math.isnan(cells["sigmoid"]["mean"]) and cells["sigmoid"]["censored"] == "below"
    assert cells["relu"]["mean"] == 0.25 and cells["relu"]["edge_hi"] == 0.5
    marks = fa.mark_column(cells, "higher")
    assert marks == {"sigmoid": "worse", "relu": "best"}
    text = rep.cell_text("rate/gd", {**cells["sigmoid"], "mark": marks["sigmoid"]})
    assert text.startswith("none (< 0.12)") and "(stable to ≥ 1, 2 of 2 flat)" in text
    sentence = rep.column_sentence(
        "rate/gd",
        {
            "setting": setting,
            "cells": {a: {**c, "mark": marks[a]} for a, c in cells.items()},
        },
    )
    assert "highest for `relu` (0.25)" in sentence
    assert "Learned at no rate tried (every rate ended flat or unstable): `sigmoid`" in sentence


def test_capacity_cells_from_the_metrics(inputs, answers):
    res = inputs["capacity"]
    cfg = get_experiment("capacity").preset("smoke")
    column = answers.summary["columns"]["capacity"]
    # the shape the rates were tuned at (the largest when every shape was tuned)
    d, w = (max(cfg.depths), max(cfg.widths)) if cfg.tune_all_shapes else cfg.tune_shape
    assert (column["setting"]["depth"], column["setting"]["width"]) == (d, w)
    verdict = next(
        (
            v
            for v in res.summary["verdicts"]
            if (v["target"], v["depth"], v["width"]) == ("sin1", d, w)
        ),
        None,
    )
    if verdict is not None:  # the marks are the chapter's paired verdicts, not overlap
        marks = {a: c["mark"] for a, c in column["cells"].items()}
        assert marks[verdict["best"]] == "best"
        for a in verdict["differs_from_best"]:
            assert marks[a] == "worse"
        for a in verdict["tied_with_best"]:
            assert marks[a] == "within noise"
    m = res.metrics
    for act in cfg.activations:
        lr = next(
            c["lr"]
            for c in res.summary["cells"]
            if (c["target"], c["activation"], c["depth"], c["width"]) == ("sin1", act, d, w)
        )
        rows = m[
            (m.metric == "test/rel_error")
            & (m.target == "sin1")
            & (m.activation == act)
            & (m.depth == d)
            & (m.width == w)
            & np.isclose(m.lr, lr)
        ]
        assert len(rows) == cfg.seeds
        assert_cell(column["cells"][act], *t_interval(np.log10(rows.sort_values("seed").value)))


def _capacity_summary(tune_all):
    cells = []
    for shape in ((2, 16), (4, 32)):
        for act, mean in (("tanh", -1.0), ("relu", -0.5), ("gelu", -1.2)):
            if shape == (4, 32) and act == "tanh":
                mean = 0.0  # failed at the largest shape with the rate tuned at (2, 16)
            stat = {"mean": mean, "lo": mean - 0.6, "hi": mean + 0.6, "n": 5}
            cells.append(
                {
                    "target": "sin4",
                    "activation": act,
                    "depth": shape[0],
                    "width": shape[1],
                    "log10_error": stat,
                    "diverged": 0,
                }
            )
    verdicts = [
        {
            "target": "sin4",
            "depth": 2,
            "width": 16,
            "best": "gelu",
            "tied_with_best": ["tanh"],
            "differs_from_best": ["relu"],
        }
    ]
    return {
        "cells": cells,
        "verdicts": verdicts,
        "tune_shape": [2, 16],
        "tune_all_shapes": tune_all,
        "worse_at_largest": [["tanh", "sin4"]],
        "target_labels": {"sin4": "sin(4πx)"},
        "affine_floor": {"sin4": 0.96},
        "steps": 10,
        "seeds": 5,
    }


def test_capacity_is_read_where_the_rates_were_tuned():
    """Rates tuned at (2, 16) only: the column sits there and takes the chapter's paired
    verdict (relu's interval overlaps gelu's, yet the paired test separates them); with every
    shape tuned, the largest shape."""
    setting, cells = fa.capacity_cells(_capacity_summary(False), "sin4")
    assert (setting["depth"], setting["width"]) == (2, 16)
    assert setting["worse_at_largest"] == ["tanh"]
    assert fa.overlaps(cells["relu"], cells["gelu"])
    assert fa.verdict_marks(cells, setting["verdict"]) == {
        "tanh": "within noise",
        "relu": "worse",
        "gelu": "best",
    }
    setting, cells = fa.capacity_cells(_capacity_summary(True), "sin4")
    assert (setting["depth"], setting["width"]) == (4, 32) and setting["verdict"] is None
    assert setting["worse_at_largest"] == []


# ------------------------------------------------------------------------ marks
def test_marks_name_the_best_and_the_overlapping():
    cells = {
        "a": {"mean": 1.0, "lo": 0.8, "hi": 1.2},
        "b": {"mean": 2.0, "lo": 1.9, "hi": 2.1},  # best when higher is better
        "c": {"mean": 1.85, "lo": 1.5, "hi": 1.9},  # touches b's interval: within noise
        "d": {"mean": math.nan, "lo": math.nan, "hi": math.nan},
    }
    assert fa.mark_column(cells, "higher") == {
        "a": "worse",
        "b": "best",
        "c": "within noise",
        "d": "",
    }
    assert fa.mark_column(cells, "lower") == {
        "a": "best",
        "b": "worse",
        "c": "worse",
        "d": "",
    }
    # a lower bound (interval open above) overlaps anything above its lower end
    bound = {"x": {"mean": 1.0, "lo": 1.0, "hi": math.inf}, "y": {"mean": 4.0, "lo": 4, "hi": 4}}
    assert fa.mark_column(bound, "higher") == {"x": "within noise", "y": "best"}
    # a tie is shared: both are best (neither is shown higher)
    tie = {"p": {"mean": 0.5, "lo": 0.5, "hi": 0.5}, "q": {"mean": 0.5, "lo": 0.5, "hi": 0.5}}
    assert fa.mark_column(tie, "higher") == {"p": "best", "q": "best"}
    # an unranked cell gets no mark and cannot be the best, whatever its value
    cells["c"]["unranked"] = "barely trained"
    assert fa.mark_column(cells, "lower") == {"a": "best", "b": "worse", "c": "", "d": ""}


def test_rate_intervals_are_half_open_on_the_grid():
    """Every seed at 0.25 on a x2 grid: the edge lies in [0.25, 0.5), which does not reach a
    cell whose seeds all sit at 0.5; a cell [0.3, 0.45] widened to [0.3, 0.9) does."""
    low = {"mean": 0.25, "lo": 0.25, "hi": 0.25, "edge_hi": 0.5}
    top = {"mean": 0.5, "lo": 0.5, "hi": 0.5, "edge_hi": 1.0}
    spread = {"mean": 0.37, "lo": 0.3, "hi": 0.45, "edge_hi": 0.9}
    assert not fa.overlaps(low, top) and not fa.overlaps(top, low)
    assert fa.overlaps(spread, top)
    cells = {"low": low, "top": top, "spread": spread}
    assert fa.mark_column(cells, "higher") == {
        "low": "worse",
        "top": "best",
        "spread": "within noise",
    }
    # some seed without a value (censored below) is never the best, even with the top mean
    cells["low"] = {"mean": 0.9, "lo": 0.0, "hi": 0.9, "edge_hi": 1.8, "censored": "below"}
    assert fa.mark_column(cells, "higher")["low"] == "within noise"
    assert fa.mark_column(cells, "higher")["top"] == "best"
    with pytest.raises(ValueError, match="better"):
        fa.mark_column(cells, "bigger")


def test_a_ratio_column_ranks_by_the_distance_from_one():
    cells = {
        "vanish": {"mean": -3.0, "lo": -3.5, "hi": -2.5},
        "explode": {"mean": 1.0, "lo": 0.6, "hi": 1.4},  # closest to 0: best
        "kept": {"mean": -0.2, "lo": -1.7, "hi": 1.3},  # |x| in [0, 1.7]: overlaps [0.6, 1.4]
    }
    assert fa.mark_column(cells, "one") == {
        "vanish": "worse",
        "explode": "within noise",
        "kept": "best",
    }
    assert [fa.direction(c) for c in cells.values()] == ["vanishes", "explodes", "kept"]
    assert fa.distance_from_zero(cells["vanish"]) == {"mean": 3.0, "lo": 2.5, "hi": 3.5}


def test_tally_counts_best_and_within_noise_only(answers):
    columns = answers.summary["columns"]
    for act, t in answers.summary["tally"].items():
        marks = [c["cells"][act].get("mark", "") for c in columns.values() if act in c["cells"]]
        assert t["of"] == sum(1 for m in marks if m)
        assert t["top"] == sum(1 for m in marks if m in ("best", "within noise"))


# ------------------------------------------------------------------------ sentences
def _column(kind, cells, **setting):
    return {"setting": setting, "cells": cells}


def test_sentences_follow_the_marks():
    cells = {
        "tanh": {
            "mean": 0.5,
            "lo": 0.5,
            "hi": 0.5,
            "n": 3,
            "censored": "",
            "stable": {"mean": 0.5, "flat": 0, "at_top": 0, "n": 3},
            "mark": "best",
        },
        "relu": {
            "mean": 0.25,
            "lo": 0.2,
            "hi": 0.3,
            "n": 3,
            "censored": "",
            "stable": {"mean": 1.0, "flat": 2, "at_top": 0, "n": 3},
            "mark": "worse",
        },
    }
    setting = dict(optimizer="gd", depth=4, width=8, steps=10, seeds=3, rates=[0.25, 0.5])
    text = rep.column_sentence("rate/gd", {"setting": setting, "cells": cells})
    assert "highest for `tanh` (0.5); no other within noise; lowest for `relu`" in text
    assert "`relu` (2 of 3)" in text and "lower bound" not in text
    assert "(stable to 1, 2 of 3 flat)" in rep.cell_text("rate/gd", cells["relu"])
    cells["relu"]["mark"] = "within noise"
    cells["tanh"]["censored"] = "above"
    text = rep.column_sentence("rate/gd", {"setting": setting, "cells": cells})
    assert "within noise of it: `relu`" in text and "(≥ 0.5)" in text
    assert "For `tanh` some seed learned at the largest rate tried" in text


def test_gradient_sentence_says_all_or_lists(answers):
    g = {
        "a": {
            "mean": -2.0,
            "lo": -2.2,
            "hi": -1.8,
            "pred": -2.1,
            "direction": "vanishes",
            "mark": "worse",
        },
        "b": {"mean": 0.1, "lo": -0.2, "hi": 0.4, "pred": 0.0, "direction": "kept", "mark": "best"},
    }
    setting = dict(depth=10, width=8, init="he", seeds=4)
    text = rep.column_sentence("gradient", {"setting": setting, "cells": g})
    assert "vanishes for `a`; it is kept for `b`" in text
    assert "within 0.1 decades" in text and "(#term-he-init)" in text
    g["b"].update(direction="vanishes", mean=-1.0, lo=-1.1, hi=-0.9)
    text = rep.column_sentence("gradient", {"setting": setting, "cells": g})
    assert "vanishes for all 2 activations" in text


def test_tally_sentence_names_an_activation_at_the_top_everywhere():
    columns = {
        "dormant": {"cells": {"x": {"mark": "best"}, "y": {"mark": "worse"}}},
        "capacity": {"cells": {"x": {"mark": "within noise"}, "y": {"mark": "best"}}},
    }
    tally = fa.tally(columns, ["x", "y"])
    assert tally == {"x": {"top": 2, "of": 2}, "y": {"top": 1, "of": 2}}
    text = rep.tally_sentence(tally, columns)
    assert text.startswith("`x` is at the top (best or within noise) of every ranked column")
    columns["capacity"]["cells"]["x"]["mark"] = "worse"
    text = rep.tally_sentence(fa.tally(columns, ["x", "y"]), columns)
    assert text.startswith("No activation is at the top")


def test_every_cell_of_the_table_is_the_summary_s(answers):
    """The report's table: one row per activation, each cell the formatted summary cell."""
    text = rep.report(answers)
    columns = answers.summary["columns"]
    for act in answers.summary["activations"]:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{act}` |"))
        parts = [p.strip() for p in row.strip("|").split("|")]
        assert parts[1:-1] == [rep.cell_text(k, columns[k]["cells"].get(act)) for k in columns]


def test_the_report_uses_no_symbol_in_a_second_meaning(answers):
    """The notation table's $s$ is the noise's standard deviation: the exercise writes the
    seeds' standard deviation as sd, never $s$."""
    from actlab.report.notation import misplaced_symbols, symbols_in

    text = rep.report(answers)
    assert misplaced_symbols(text, "four-answers") == []
    assert "s" not in symbols_in(text)
    for term in ("dead", "saturated", "dormant", "geometric-mean", "paired", "t-interval"):
        assert f"(#term-{term})" in text


def test_each_section_a_column_links_to_is_a_heading_of_its_chapter(inputs):
    """The anchors of the headers are headings the four chapters' reports write."""
    for kind, (name, heading) in rep.SECTIONS.items():
        text = get_experiment(name).report(inputs[name])
        assert f"\n## {heading}\n" in text, (kind, name)


# ------------------------------------------------------------------------ config, CLI
def test_bad_choices_are_refused(inputs):
    with pytest.raises(ValueError, match="optimizers"):
        fa.Config(optimizers=("sgd",))
    with pytest.raises(ValueError, match="inputs_preset"):
        fa.Config(inputs_preset="tiny")
    with pytest.raises(ValueError, match="capacity run.s targets"):
        fa.run(fa.Config(inputs_preset="smoke", capacity_target="sin4"), inputs=inputs)
    with pytest.raises(ValueError, match="dormant_tau"):
        fa.run(
            fa.Config(inputs_preset="smoke", capacity_target="sin1", dormant_tau=0.05),
            inputs=inputs,
        )


def test_the_cli_runs_missing_inputs_beside_it_and_reads_them(tmp_path, monkeypatch):
    """`actlab run four-answers --preset smoke --out DIR/x` makes DIR/NAME-smoke for each
    input, and a second call reuses them (their folders are untouched)."""
    from actlab.cli import main

    assert main(["run", "four-answers", "--preset", "smoke", "--out", str(tmp_path / "x")]) == 0
    made = {p.name for p in tmp_path.iterdir()}
    assert made == {"x"} | {f"{n}-smoke" for n in fa.NEEDS}
    stamps = {n: (tmp_path / f"{n}-smoke" / "summary.json").stat().st_mtime_ns for n in fa.NEEDS}
    assert main(["run", "four-answers", "--preset", "smoke", "--out", str(tmp_path / "x")]) == 0
    again = {n: (tmp_path / f"{n}-smoke" / "summary.json").stat().st_mtime_ns for n in fa.NEEDS}
    assert again == stamps
    assert "| `tanh` |" in (tmp_path / "x" / "report.md").read_text()


# ------------------------------------------------------------------------ exercise
def test_overlap_limits_against_scipy():
    """At a gap just below the overlap limit the two t-intervals overlap and just above they do
    not; Welch's test (SciPy) rejects just above its gap and not just below."""
    n = 5
    overlap_gap, test_gap = solutions.overlap_limits(n)
    base = np.array([-1.2, -0.6, 0.0, 0.6, 1.2])
    base = base / base.std(ddof=1)  # sd exactly 1
    for gap, overlap in ((overlap_gap * 0.99, True), (overlap_gap * 1.01, False)):
        a, b = base, base + gap
        _, _, a_hi = t_interval(a)
        _, b_lo, _ = t_interval(b)
        assert (a_hi >= b_lo) == overlap
    for gap, rejects in ((test_gap * 0.99, False), (test_gap * 1.01, True)):
        p = stats.ttest_ind(base, base + gap, equal_var=False).pvalue
        assert (p < 0.05) == rejects
    assert test_gap < overlap_gap  # the zone where the table is lenient
    with pytest.raises(NotImplementedError):
        stubs.overlap_limits(5)
