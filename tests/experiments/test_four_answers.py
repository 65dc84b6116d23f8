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
    for a, act in enumerate(acts):
        last = fr[:, -1, a].mean(axis=-1)  # (fraction, seed): all layers have the same width
        assert_cell(dormant[act], *t_interval(last[names.index("dormant_0.1")], (0, 1)))
        if act in kinds:
            assert_cell(off[act], *t_interval(last[names.index(kinds[act])], (0, 1)))


def test_rate_cells_from_the_divergence_arrays(inputs, answers):
    """The largest stable rate per seed from the raw arrays: the largest rate at which the
    member neither diverged nor ended above its initial loss; geometric mean and interval."""
    res = inputs["stability"]
    cfg = get_experiment("stability").preset("smoke")
    d = len(cfg.depths) - 1
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
                ]
                per_seed.append(rates[max(ok)] if ok else math.nan)
            cell = column["cells"][act]
            if all(math.isfinite(v) for v in per_seed):
                mean, lo, hi = (2.0**v for v in t_interval(np.log2(per_seed)))
                assert cell["mean"] == pytest.approx(mean, rel=1e-9)
                at_top = any(v == rates[-1] for v in per_seed)
                assert cell["censored"] == ("above" if at_top else "")
                if not at_top:
                    assert (cell["lo"], cell["hi"]) == pytest.approx((lo, hi), rel=1e-9)
            else:
                assert cell["censored"] in ("below", "above")


def test_capacity_cells_from_the_metrics(inputs, answers):
    res = inputs["capacity"]
    cfg = get_experiment("capacity").preset("smoke")
    column = answers.summary["columns"]["capacity"]
    d, w = max(cfg.depths), max(cfg.widths)
    assert (column["setting"]["depth"], column["setting"]["width"]) == (d, w)
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
    # ties go to the first in order
    tie = {"p": {"mean": 0.5, "lo": 0.5, "hi": 0.5}, "q": {"mean": 0.5, "lo": 0.5, "hi": 0.5}}
    assert fa.mark_column(tie, "higher") == {"p": "best", "q": "within noise"}
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
            "flat": 0,
            "mark": "best",
        },
        "relu": {
            "mean": 0.25,
            "lo": 0.2,
            "hi": 0.3,
            "n": 3,
            "censored": "",
            "flat": 2,
            "mark": "worse",
        },
    }
    setting = dict(optimizer="gd", depth=4, width=8, steps=10, seeds=3, rates=[0.25, 0.5])
    text = rep.column_sentence("rate/gd", {"setting": setting, "cells": cells})
    assert "highest for `tanh` (0.5); no other within noise; lowest for `relu`" in text
    assert "`relu` (2 of 3)" in text and "lower bound" not in text
    cells["relu"]["mark"] = "within noise"
    cells["tanh"]["censored"] = "above"
    text = rep.column_sentence("rate/gd", {"setting": setting, "cells": cells})
    assert "within noise of it: `relu`" in text and "(≥ 0.5)" in text
    assert "For `tanh` some seed was stable at the largest rate tried" in text


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
