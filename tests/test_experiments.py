"""Every registered experiment, through its smoke preset, the way the CLI runs it: results,
figures, a report whose figure links resolve, and one tutorial built from all of them."""

import json
import re
from pathlib import Path

import pytest

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
        out[name] = _execute(spec, "smoke", spec.preset("smoke"), root / name)
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


@pytest.mark.parametrize("name", list_experiments())
def test_report_rebuilt_from_the_run_folder_is_the_same(runs, name):
    """What `actlab report` does: results read back from disk (NaN stored as null) give the
    report written at the end of the run."""
    from actlab.store import RunStore

    folder = runs[name]
    results = RunStore(folder).load_results()
    assert get_experiment(name).report(results) == (folder / "report.md").read_text()
