"""Every registered experiment, through its smoke preset, the way the CLI runs it: results,
figures, a report whose figure links resolve, and one tutorial built from all of them."""

import json
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actlab.cli import _execute
from actlab.experiments import get_experiment, list_experiments
from actlab.report.tutorial import build_tutorial

FIGURE = re.compile(r"\]\((figures/[^)\s]+)\)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("smoke-runs")
    out = {}
    for name in list_experiments():
        spec = get_experiment(name)
        # the side-by-side chapter reads the runs made before it (it comes after them)
        out[name] = _execute(spec, "smoke", spec.preset("smoke"), root / name, inputs=out)
    return out


@pytest.mark.parametrize("name", list_experiments())
def test_smoke_run_is_complete(runs, name):
    folder = runs[name]
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    report = (folder / "report.md").read_text()
    cited = FIGURE.findall(report)
    assert cited, f"{name}'s report shows no figure"
    for link in cited:
        assert (folder / link).is_file(), f"{name}'s report cites a missing {link}"
    # A number that came out NaN prints as "nan" (prose says "NaN"; code may show nan).
    prose = re.sub(r"```.*?```|`[^`]*`", "", report, flags=re.DOTALL)
    assert not re.search(r"\bnan\b", prose), name


def test_one_tutorial_holds_every_experiment(runs, tmp_path):
    specs = sorted((get_experiment(n) for n in runs), key=lambda s: s.order)
    index = build_tutorial([(s, runs[s.name]) for s in specs], tmp_path / "tutorial")
    text = index.read_text(encoding="utf-8")
    positions = [text.index(f">{s.title}</h2>") for s in specs]
    assert positions == sorted(positions)  # sections in the order of the specs
    assert "math-error" not in text.split("<main>")[1]
    ids = set(re.findall(r'\bid="([^"]+)"', text))  # every in-page link lands (#term-... too)
    assert set(re.findall(r'href="#([^"]+)"', text)) <= ids


@pytest.mark.parametrize("name", list_experiments())
def test_every_symbol_keeps_its_one_meaning(runs, name):
    """Each symbol in the report's math is in the tutorial's notation table and, where the table
    limits it to some chapters, used in one of them (a bare $v$ in an Adam formula is flagged:
    $v$ is the single neuron's output weight)."""
    from actlab.report.notation import misplaced_symbols

    report = (runs[name] / "report.md").read_text(encoding="utf-8")
    assert misplaced_symbols(report, name) == []


@pytest.mark.parametrize("name", list_experiments())
def test_report_rebuilt_from_the_run_folder_is_the_same(runs, name):
    """What `actlab report` does: results read back from disk (NaN stored as null) give the
    report written at the end of the run."""
    from actlab.store import RunStore

    folder = runs[name]
    results = RunStore(folder).load_results()
    assert get_experiment(name).report(results) == (folder / "report.md").read_text()


@pytest.mark.parametrize("name", list_experiments())
def test_a_rerun_gives_the_same_numbers_whatever_ran_before(runs, name):
    """No global random state: after every experiment has run, and with Python's, NumPy's and
    torch's global generators moved, a second in-process run of the smoke preset gives the
    saved run's metrics and arrays bit for bit (same computation, same machine)."""
    from actlab.store import RunStore

    random.seed(12345)
    np.random.seed(12345)  # noqa: NPY002 -- the legacy global state is what code must not read
    torch.manual_seed(12345)
    torch.rand(7)  # and move it past the seed
    spec = get_experiment(name)
    again = spec.run(spec.preset("smoke"))
    saved = RunStore(runs[name]).load_results()
    pd.testing.assert_frame_equal(
        again.metrics.reset_index(drop=True), saved.metrics, check_dtype=False
    )
    assert set(again.arrays) == set(saved.arrays)
    for key, value in again.arrays.items():
        np.testing.assert_array_equal(value, saved.arrays[key], err_msg=key)


def test_the_tutorial_follows_a_learners_order():
    # Easy to hard: the NumPy lesson first, the full gallery as a reference at the end.
    builtin = [n for n in list_experiments() if n != "slow-test"]
    assert builtin == [
        "numpy-basics",
        "single-neuron",
        "tiny-classifier",
        "deep-mlp",
        "activation-swap",
        "gradient-flow",
        "unit-states",
        "stability",
        "capacity",
        "four-answers",
        "rl-hadamard",
        "gallery",
    ]
