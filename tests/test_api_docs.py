"""The examples of docs/api.md run, and check what they claim.

Every fenced ``python`` block is executed. The blocks under one ``##`` heading run in order in
one namespace (a fresh module per heading), from the repository root, each compiled with the
Markdown file's own line numbers so that a traceback points into docs/api.md. Every block holds
at least one ``assert`` on a value it computed. The registries of activations and experiments
are restored after each heading, so nothing a section registers leaks into other tests.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import pytest

from actlab import activations as A
from actlab.cli import main
from actlab.experiments import base

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
SECTIONS = (
    "Your own activation",
    "Probes on your own CNN",
    "Probes on your own transformer",
    "Your own study with EnsembleMLP",
    "Adding an experiment",
)


def _sections() -> dict[str, list[tuple[int, str]]]:
    """``{heading: [(first line of the block's code, code), ...]}`` for each ``##`` heading."""
    found: dict[str, list[tuple[int, str]]] = {}
    heading, block, start = None, None, 0
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        if block is not None:
            if line.strip() == "```":
                found[heading].append((start, "\n".join(block) + "\n"))
                block = None
            else:
                block.append(line)
        elif line.startswith("## "):
            heading = line[3:].strip()
            found[heading] = []
        elif re.fullmatch(r"```python\s*", line):
            assert heading is not None, f"docs/api.md:{number}: a python block before any heading"
            block, start = [], number + 1
    assert block is None, "docs/api.md: a python block is not closed"
    return found


@pytest.fixture
def isolated(monkeypatch):
    """Run from the repository root; restore both registries afterwards."""
    monkeypatch.chdir(ROOT)
    saved = [dict(d) for d in (A._FACTORIES, A._ALIASES, A._ORIGIN, A._USER_FILES)]
    experiments = dict(base._EXPERIMENTS)
    modules = set(sys.modules)
    yield
    for live, old in zip((A._FACTORIES, A._ALIASES, A._ORIGIN, A._USER_FILES), saved, strict=True):
        live.clear()
        live.update(old)
    base._EXPERIMENTS.clear()
    base._EXPERIMENTS.update(experiments)
    for name in set(sys.modules) - modules:
        if name.startswith(("_actlab_user_", "api_doc_")):
            del sys.modules[name]


def _run_section(heading: str) -> dict:
    """Execute the section's blocks in order in one fresh module; returns its namespace."""
    module = types.ModuleType(f"api_doc_{len(sys.modules)}")
    sys.modules[module.__name__] = module  # dataclasses and pickle look a class's module up
    for start, code in _sections()[heading]:
        # Padded with blank lines so that line numbers in a traceback are docs/api.md's.
        exec(compile("\n" * (start - 1) + code, str(DOC), "exec"), module.__dict__)
    return module.__dict__


def test_the_document_has_the_sections_and_every_block_asserts():
    sections = _sections()
    assert list(sections) == list(SECTIONS)
    for heading, blocks in sections.items():
        assert blocks, f"section {heading!r} has no python block"
        for start, code in blocks:
            tree = ast.parse(code)
            assert any(isinstance(n, ast.Assert) for n in ast.walk(tree)), (
                f"docs/api.md:{start}: the block checks nothing"
            )


@pytest.mark.parametrize("heading", SECTIONS[:4])
def test_section_runs(heading, isolated, capsys):
    _run_section(heading)
    assert capsys.readouterr().out  # each section prints what it shows the reader


def test_the_activation_section_leaves_the_users_names_registered(isolated):
    assert "squareplus" not in A.list_activations()
    _run_section("Your own activation")
    assert {"squareplus", "isru"} <= set(A.list_activations())


def test_the_example_experiment_runs_and_then_runs_through_the_cli(isolated, tmp_path, capsys):
    assert "my-study" not in base.list_experiments()
    namespace = _run_section("Adding an experiment")
    assert "my-study" in base.list_experiments()
    assert namespace["SPEC"].report(namespace["results"]).startswith("## My study")
    out = tmp_path / "run"
    code = main(["run", "my-study", "--preset", "smoke", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (out / "report.md").read_text().startswith("## My study")
    assert (out / "figures" / "loss.png").stat().st_size > 0
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0 and (out / "report.md").exists()
