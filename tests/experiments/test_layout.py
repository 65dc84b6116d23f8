"""One package per experiment, imports in one direction inside it.

Every import is read from the source (module level and inside functions alike), so a deferred
import that closes a circle is caught too.
"""

import ast
import importlib
from pathlib import Path

import pytest

import actlab.experiments
from actlab.experiments import get_experiment, list_experiments

ROOT = Path(actlab.experiments.__file__).parent
PACKAGES = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())
LATE = {"figures", "report", "exercises", "solutions"}
"""Modules that only draw or write: the computation never imports them."""


def _imports(pkg: str, path: Path) -> set[str]:
    """Sibling modules of ``pkg`` that ``path`` imports (anywhere in the file)."""
    prefix = f"actlab.experiments.{pkg}"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == prefix:
                found |= {a.name for a in node.names}
            elif node.module.startswith(prefix + "."):
                found.add(node.module[len(prefix) + 1 :].split(".")[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(prefix + "."):
                    found.add(a.name[len(prefix) + 1 :].split(".")[0])
    return found


def _graph(pkg: str) -> dict[str, set[str]]:
    modules = {p.stem for p in (ROOT / pkg).glob("*.py") if p.stem != "__init__"}
    return {m: _imports(pkg, ROOT / pkg / f"{m}.py") & modules for m in modules}


def test_every_registered_experiment_is_one_package():
    assert PACKAGES, "no experiment packages found"
    by_module = {get_experiment(n).run.__module__.split(".")[2] for n in list_experiments()}
    assert by_module == set(PACKAGES)
    assert not [p.name for p in ROOT.glob("*.py") if p.stem not in ("__init__", "base")]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_package_holds_its_run_figures_and_report(pkg):
    files = {p.stem for p in (ROOT / pkg).glob("*.py")}
    assert {"__init__", "experiment", "figures", "report"} <= files
    spec = importlib.import_module(f"actlab.experiments.{pkg}").SPEC
    assert spec is get_experiment(spec.name)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_imports_inside_a_package_have_no_circle(pkg):
    graph = _graph(pkg)
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 1:
            raise AssertionError(f"{pkg}: import circle {' -> '.join(path + [m])}")
        if state.get(m) == 2:
            return
        state[m] = 1
        for n in sorted(graph[m]):
            visit(n, path + [m])
        state[m] = 2

    for m in sorted(graph):
        visit(m, [])


@pytest.mark.parametrize("pkg", PACKAGES)
def test_computation_never_imports_figures_or_report(pkg):
    graph = _graph(pkg)
    for m, deps in graph.items():
        if m not in LATE:
            assert not deps & LATE, f"{pkg}.{m} imports {sorted(deps & LATE)}"


def test_the_checker_sees_a_circle(tmp_path, monkeypatch):
    # The detector itself: two modules that import each other inside functions.
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "experiment.py").write_text(
        "def f():\n    from actlab.experiments.demo.report import g\n"
    )
    (pkg / "report.py").write_text("from actlab.experiments.demo import experiment\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _graph("demo") == {"experiment": {"report"}, "report": {"experiment"}}
    with pytest.raises(AssertionError, match="import circle"):
        test_imports_inside_a_package_have_no_circle("demo")
