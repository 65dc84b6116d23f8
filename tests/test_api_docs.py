"""The examples of docs/api.md run, and check what they claim.

Every fenced ``python`` (or ``py``, any case) block is executed. The blocks under one ``##``
heading run in order in one namespace (a fresh module per heading), from the repository root,
each compiled with the Markdown file's own line numbers so that a traceback points into
docs/api.md. The last block of a section asserts on values it computed, and every block asserts
or defines something. A block headed ``python file=NAME`` is a file the reader saves: it is not
run in the section's namespace but saved and run in a process of its own. The count of blocks
run or saved is checked against a count of the fences made independently, so that no block is
skipped. The registries of activations and experiments are restored after each heading, so
nothing a section registers leaks into other tests.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from actlab import activations as A
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


FENCE = re.compile(r"\s*```\s*(?P<lang>[A-Za-z]+)?\s*(?P<info>.*?)\s*")
PYTHON = re.compile(r"^\s*```\s*(?:python|py)\b", re.IGNORECASE | re.MULTILINE)


def _sections() -> dict[str, list[tuple[int, str, str]]]:
    """``{heading: [(first line of the block's code, code, info), ...]}`` for each ``##``
    heading, over the python blocks; ``info`` is what follows the language (``file=NAME``)."""
    found: dict[str, list[tuple[int, str, str]]] = {}
    heading, block, start, info, fenced = None, None, 0, "", False
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        match = FENCE.fullmatch(line)
        if fenced:  # inside a block: a bare fence closes it
            if match and not match["lang"] and not match["info"]:
                if block is not None:
                    code = textwrap.dedent("\n".join(block)) + "\n"
                    found[heading].append((start, code, info))
                block, fenced = None, False
            elif block is not None:
                block.append(line)
        elif line.startswith("## "):
            heading = line[3:].strip()
            found[heading] = []
        elif match:
            fenced = True
            if (match["lang"] or "").lower() in ("python", "py"):
                assert heading is not None, f"docs/api.md:{number}: a python block before a heading"
                block, start, info = [], number + 1, match["info"]
    assert not fenced, "docs/api.md: a block is not closed"
    return found


def _code(heading: str) -> list[tuple[int, str]]:
    """The blocks of a section that run in its namespace."""
    return [(start, code) for start, code, info in _sections()[heading] if not info]


def _files(heading: str) -> dict[str, str]:
    """The ``python file=NAME`` blocks of a section: ``{NAME: code}``."""
    files = {}
    for _, code, info in _sections()[heading]:
        if info:
            key, _, name = info.partition("=")
            assert key == "file" and name, f"docs/api.md: unknown block header {info!r}"
            files[name] = code
    return files


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


def _run_section(heading: str) -> tuple[dict, int]:
    """Execute the section's blocks in order in one fresh module; returns its namespace and the
    number of blocks executed."""
    module = types.ModuleType(f"api_doc_{len(sys.modules)}")
    sys.modules[module.__name__] = module  # dataclasses and pickle look a class's module up
    executed = 0
    for start, code in _code(heading):
        # Padded with blank lines so that line numbers in a traceback are docs/api.md's.
        exec(compile("\n" * (start - 1) + code, str(DOC), "exec"), module.__dict__)
        executed += 1
    return module.__dict__, executed


def _fences(heading: str) -> int:
    """Python fences in the section's own text, counted without the parser above."""
    text = DOC.read_text()
    body = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return len(PYTHON.findall(body))


def _asserts(code: str) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(code)))


def test_the_document_has_the_sections_and_every_block_checks_or_defines():
    sections = _sections()
    assert list(sections) == list(SECTIONS)
    assert sum(len(blocks) for blocks in sections.values()) == len(PYTHON.findall(DOC.read_text()))
    for heading in sections:
        blocks = _code(heading)
        assert blocks, f"section {heading!r} has no python block"
        assert _asserts(blocks[-1][1]), (
            f"docs/api.md:{blocks[-1][0]}: the last block checks nothing"
        )
        for start, code in blocks:
            defines = any(
                isinstance(n, ast.Assign | ast.FunctionDef | ast.ClassDef | ast.Import)
                for n in ast.parse(code).body
            )
            assert _asserts(code) or defines, f"docs/api.md:{start}: the block does nothing"


@pytest.mark.parametrize("heading", SECTIONS)
def test_section_runs_every_block(heading, isolated, capsys):
    _, executed = _run_section(heading)
    assert executed + len(_files(heading)) == _fences(heading) > 0
    assert capsys.readouterr().out  # each section prints what it shows the reader


def test_the_activation_section_leaves_the_users_names_registered(isolated):
    assert "squareplus" not in A.list_activations()
    _run_section("Your own activation")
    assert {"squareplus", "isru"} <= set(A.list_activations())


def test_the_example_experiment_runs_through_the_command_line_with_the_launcher(tmp_path):
    """As the reader does: ``my_study.py`` (the section's first block) and the launcher beside
    it, run in a fresh interpreter; plain ``python -m actlab.cli`` does not know the experiment."""
    first = _code("Adding an experiment")[0][1]
    assert "register_experiment(" in first and "assert" not in first  # the file, not the checks
    (tmp_path / "my_study.py").write_text(first)
    launcher = _files("Adding an experiment")["my_actlab.py"]
    (tmp_path / "my_actlab.py").write_text(launcher)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    out = tmp_path / "runs" / "my-study-smoke"
    done = run("my_actlab.py", "run", "my-study", "--preset", "smoke", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert (out / "report.md").read_text().startswith("## My study")
    assert (out / "figures" / "loss.png").stat().st_size > 0
    (out / "report.md").unlink()
    done = run("my_actlab.py", "report", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "report.md").read_text().startswith("## My study")
    done = run("-m", "actlab.cli", "report", str(out))
    assert done.returncode == 2 and "unknown experiment 'my-study'" in done.stderr
