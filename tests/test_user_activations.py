"""Activations from a user's file: ``--activations-from FILE`` and ``load_activations_file``.

End to end through ``actlab.cli.main``: the names appear in ``list``, in the gallery and in a
training experiment's results; ``report`` of such a run reloads the file it recorded (also in a
fresh interpreter); a bad file (syntax error, import error, wrong derivative, wrong property,
missing, a clashing name, nothing registered) is one line on stderr and exit status 2, and leaves
the registry as it was. Every test restores the registry, so nothing leaks into other test files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import subprocess
import sys
from decimal import Decimal, getcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import actlab
from actlab import activations as A
from actlab.cli import main
from actlab.testing import check_activation

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "my_activations.py"


@pytest.fixture(autouse=True)
def registry():
    """Restore the registry (and forget loaded files) after each test; yields the restorer."""
    live = (A._FACTORIES, A._ALIASES, A._ORIGIN, A._USER_FILES)
    saved = [dict(d) for d in live]
    modules = set(sys.modules)

    def restore():
        for live, old in zip(
            (A._FACTORIES, A._ALIASES, A._ORIGIN, A._USER_FILES), saved, strict=True
        ):
            live.clear()
            live.update(old)
        for name in set(sys.modules) - modules:
            if name.startswith("_actlab_user_"):
                del sys.modules[name]

    yield restore
    restore()


@pytest.fixture
def mine(tmp_path) -> Path:
    """A copy of the example file that a test may edit or delete."""
    path = tmp_path / "mine.py"
    shutil.copy(EXAMPLE, path)
    return path


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("actlab: error: ") and "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------ the loader
def test_example_file_registers_two_checked_activations_that_compute_their_formulas():
    assert "squareplus" not in actlab.list_activations()
    assert A.load_activations_file(EXAMPLE) == ["squareplus", "isru"]
    assert {"squareplus", "isru"} <= set(actlab.list_activations())
    # Independent references: the formulas in 50-digit decimal arithmetic.
    getcontext().prec = 50
    xs = [-1e6, -30.0, -2.5, -1e-3, 0.0, 0.7, 4.0, 1e6]
    x = torch.tensor(xs, dtype=torch.float64)
    squareplus = actlab.get_activation("squareplus")
    isru = actlab.get_activation("isru(alpha=0.5)")
    want_sp = [(Decimal(v) + (Decimal(v) ** 2 + 4).sqrt()) / 2 for v in xs]
    want_isru = [Decimal(v) / (1 + Decimal("0.5") * Decimal(v) ** 2).sqrt() for v in xs]
    want_dsp = [(1 + Decimal(v) / (Decimal(v) ** 2 + 4).sqrt()) / 2 for v in xs]
    np.testing.assert_allclose(squareplus(x).numpy(), [float(w) for w in want_sp], rtol=1e-13)
    np.testing.assert_allclose(
        squareplus.derivative(x).numpy(), [float(w) for w in want_dsp], rtol=1e-12
    )
    np.testing.assert_allclose(isru(x).numpy(), [float(w) for w in want_isru], rtol=1e-13)
    assert isru.name == "isru(alpha=0.5)" and isru.hyper["alpha"] == 0.5
    inf = torch.tensor([-np.inf, np.inf], dtype=torch.float64)
    assert squareplus(inf).tolist() == [0.0, np.inf]
    assert isru(inf).tolist() == pytest.approx([-(2**0.5), 2**0.5], rel=1e-15)


def test_loading_the_same_file_again_is_a_no_op_and_a_changed_file_replaces_its_version(mine):
    assert A.load_activations_file(mine) == ["squareplus", "isru"]
    first = actlab.get_activation("squareplus")
    assert A.load_activations_file(mine) == ["squareplus", "isru"]
    assert actlab.get_activation("squareplus") is first  # not imported twice
    mine.write_text(mine.read_text().replace("_B = 4.0", "_B = 1.0"))
    assert A.load_activations_file(mine) == ["squareplus", "isru"]
    assert actlab.get_activation("squareplus")(torch.zeros(1)).item() == 0.5  # sqrt(1) / 2


def test_check_activation_itself_catches_a_wrong_derivative():
    A.load_activations_file(EXAMPLE)
    good = actlab.get_activation("squareplus")
    check_activation(good)
    # The derivative of (x + sqrt(x^2 + 4)) / 2 with the 4 forgotten: right for large |x| only.
    bad = dataclasses.replace(
        good, deriv=lambda x: 0.5 * (1.0 + x / torch.sqrt(x * x + 1.0)), backward=None
    )
    with pytest.raises(AssertionError, match="deriv != autograd"):
        check_activation(bad)


# ------------------------------------------------------------------------------ the CLI
def test_list_shows_the_users_activations_with_their_references(capsys):
    code, out, _ = _cli(capsys, "list", "activations", "--activations-from", EXAMPLE)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "Barron (2021)" in rows["squareplus"] and "Carlile" in rows["isru"]
    assert "tanh" in rows  # the built-ins are still there


def test_gallery_run_holds_the_users_activations_and_report_reloads_the_file(
    capsys, tmp_path, mine, registry
):
    out = tmp_path / "gallery"
    code, _, err = _cli(
        capsys,
        *("run", "gallery", "--preset", "smoke", "--out", out),
        *("--set", "activations=relu,squareplus,isru(alpha=0.5)"),
        *("--activations-from", mine),
    )
    assert code == 0, err
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["activation"]) == {"relu", "squareplus", "isru(alpha=0.5)"}
    at = metrics.set_index(["activation", "metric"])["value"]
    # squareplus(0) = sqrt(4) / 2 = 1, squareplus'(0) = 1/2; isru is odd and bounded by sqrt 2.
    assert at["squareplus", "gallery/phi_at_0"] == pytest.approx(1.0, abs=1e-12)
    assert at["squareplus", "gallery/deriv_at_0"] == pytest.approx(0.5, abs=1e-12)
    assert at["isru(alpha=0.5)", "gallery/zero_centred"] == 1.0
    assert at["isru(alpha=0.5)", "gallery/bounded"] == 1.0
    record = json.loads((out / "activation_files.json").read_text())
    assert record["files"][0]["path"] == str(mine.resolve())
    assert record["files"][0]["activations"] == ["squareplus", "isru"]

    registry()  # a new session: nothing of the user's is registered
    assert "squareplus" not in actlab.list_activations()
    (out / "report.md").unlink()
    code, _, err = _cli(capsys, "report", out)
    assert code == 0, err
    assert "squareplus" in (out / "report.md").read_text()

    # The file changed since the run: report says so in one line (and so when it is gone).
    registry()
    mine.write_text(mine.read_text() + "\n# edited\n")
    line = _one_error_line(*_cli(capsys, "report", out)[::2])
    assert str(mine.resolve()) in line and "has changed since" in line
    mine.unlink()
    line = _one_error_line(*_cli(capsys, "report", out)[::2])
    assert str(mine.resolve()) in line and "cannot be read" in line
    # ... unless the user names the file to use instead.
    code, _, err = _cli(capsys, "report", out, "--activations-from", EXAMPLE)
    assert code == 0, err


def test_report_in_a_fresh_interpreter_reloads_the_recorded_file(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = _cli(
        capsys,
        *("run", "gallery", "--preset", "smoke", "--out", out),
        *("--set", "activations=squareplus", "--activations-from", EXAMPLE),
    )
    assert code == 0, err
    (out / "report.md").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "actlab.cli", "report", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "squareplus" in (out / "report.md").read_text()


def test_training_experiment_accepts_the_users_activation_in_its_config(capsys, tmp_path):
    out = tmp_path / "deep"
    code, _, err = _cli(
        capsys,
        *("run", "deep-mlp", "--preset", "smoke", "--out", out),
        *("--set", "activations=tanh,squareplus", "--activations-from", EXAMPLE),
    )
    assert code == 0, err
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert set(metrics["activation"]) == {"tanh", "squareplus"}
    rows = metrics[metrics["activation"] == "squareplus"]
    assert len(rows) > 0 and np.isfinite(rows["value"].dropna()).all()
    assert "squareplus" in (out / "report.md").read_text()


def test_a_run_folder_is_reused_only_with_the_same_activation_files(
    capsys, tmp_path, mine, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # default run folders go to ./runs
    argv = ("run", "gallery", "--preset", "smoke", "--set", "activations=squareplus")
    code, first, err = _cli(capsys, *argv, "--activations-from", mine)
    assert code == 0, err
    code, again, err = _cli(capsys, *argv, "--activations-from", mine)
    assert code == 0 and again == first  # reused
    mine.write_text(mine.read_text() + "\n# edited\n")
    code, edited, err = _cli(capsys, *argv, "--activations-from", mine)
    assert code == 0 and edited != first  # another version of the file: a folder of its own
    # Told to write into the first folder with the edited file: refused, in one line.
    line = _one_error_line(
        *_cli(capsys, *argv, "--activations-from", mine, "--out", first.strip())[::2]
    )
    assert "holds a run made with" in line and str(mine.resolve()) in line


BAD_FILES = {
    "syntax": ("import actlab\ndef f(:\n", "SyntaxError at line 2"),
    "import": ("import actlab_no_such_module\n", "No module named 'actlab_no_such_module'"),
    "raises": ("raise RuntimeError('boom')\n", "cannot import it: RuntimeError: boom"),
    "exits": ("raise SystemExit(3)\n", "cannot import it: SystemExit: 3"),
    "clash": (
        "import actlab\nactlab.register(actlab.get_activation('tanh'), name='relu')\n",
        "'relu' is already registered by a built-in activation",
    ),
    "alias": (
        "import actlab\nactlab.register(actlab.get_activation('tanh'), name='my_tanh', "
        "aliases=('swish',))\n",
        "'swish' is already registered by a built-in activation",
    ),
    "nothing": (
        "import actlab\nmine = actlab.get_activation('tanh')\n",
        "registers no activation: call actlab.register(...) for each one "
        "(see examples/my_activations.py); it defines mine but does not register them",
    ),
    "derivative": (
        EXAMPLE.read_text().replace("0.5 * (1.0 + x / s)", "0.4 * (1.0 + x / s)"),
        "activation 'squareplus' fails check_activation: deriv != autograd",
    ),
    # the first activation is right, the second is wrong: neither is kept
    "property": (
        EXAMPLE.read_text().replace("bounded=True", "bounded=False"),
        "activation 'isru' fails check_activation: ",
    ),
    "factory": (
        "import actlab\n@actlab.register\ndef broken(a: float = 1.0):\n    return 3\n",
        "activation 'broken' cannot be checked: TypeError: its factory returned int",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_exit_2_and_leaves_the_registry_alone(capsys, tmp_path, kind):
    text, expected = BAD_FILES[kind]
    path = tmp_path / f"bad_{kind}.py"
    path.write_text(text)
    before = (dict(A._FACTORIES), dict(A._ALIASES))
    line = _one_error_line(*_cli(capsys, "list", "activations", "--activations-from", path)[::2])
    assert line.startswith(f"actlab: error: activations file {path}: ") and expected in line
    assert (dict(A._FACTORIES), dict(A._ALIASES)) == before
    assert not [m for m in sys.modules if m.startswith("_actlab_user_bad")]


def test_missing_file_and_a_folder_are_one_line(capsys, tmp_path):
    missing = tmp_path / "nowhere.py"
    line = _one_error_line(*_cli(capsys, "list", "activations", "--activations-from", missing)[::2])
    assert line == f"actlab: error: activations file {missing}: no such file"
    line = _one_error_line(
        *_cli(capsys, "list", "activations", "--activations-from", tmp_path)[::2]
    )
    assert str(tmp_path) in line and "cannot read it" in line


def test_two_files_cannot_claim_the_same_name(capsys, tmp_path, mine):
    other = tmp_path / "other.py"
    other.write_text(EXAMPLE.read_text())
    argv = ("list", "activations", "--activations-from", mine, "--activations-from", other)
    line = _one_error_line(*_cli(capsys, *argv)[::2])
    assert f"activations file {other}: the name 'squareplus' is already registered by " in line
    assert str(mine.resolve()) in line


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "experiments"],
        ["run", "gallery", "--preset", "smoke"],
        ["report", "/nonexistent/run"],
        ["tutorial", "--preset", "smoke"],
        ["sweep", "deep-mlp", "--preset", "smoke", "--dry-run"],
    ],
)
def test_every_subcommand_loads_the_files_before_it_runs(capsys, tmp_path, argv):
    path = tmp_path / "bad.py"
    path.write_text("import actlab_no_such_module\n")
    line = _one_error_line(*_cli(capsys, *argv, "--activations-from", path)[::2])
    assert f"activations file {path}: cannot import it" in line


def test_a_sweep_over_the_users_activation_records_the_file_and_reports_without_it(
    capsys, tmp_path, registry
):
    out = tmp_path / "sweep"
    code, _, err = _cli(
        capsys,
        *("sweep", "deep-mlp", "--preset", "smoke", "--seeds", "2", "--out", out),
        *("--grid", "activation=relu,squareplus", "--activations-from", EXAMPLE),
    )
    assert code == 0, err
    table = pd.read_parquet(out / "table.parquet")
    assert set(table["activation"]) == {"relu", "squareplus"}
    record = json.loads((out / "activation_files.json").read_text())
    assert [f["path"] for f in record["files"]] == [str(EXAMPLE)]
    registry()
    (out / "figures" / "summary.png").unlink()
    code, _, err = _cli(capsys, "report", out)
    assert code == 0, err
    assert (out / "figures" / "summary.png").exists()


# ------------------------------------------------------------------------------ after the review
# A family whose non-default members are what a config names: bent(a) = (sqrt(x^2 + a) - sqrt(a))
# / 2 + x. DERIV is its derivative; BENT.format(deriv=...) writes the file.
BENT = """import math

import torch

import actlab


@actlab.register
def bent(a: float = 1.0) -> actlab.Activation:
    def fn(x):
        return (torch.sqrt(x * x + a) - math.sqrt(a)) / 2 + x

    def deriv(x):
        return {deriv}

    return actlab.Activation(
        name={name},
        family="bent",
        hyper={{"a": a}},
        fn=fn,
        deriv=deriv,
        latex=r"{latex}",
        latex_deriv=r"1 + x / (2 \\sqrt{{x^2 + a}})",
        bounded=False,
        monotonic=True,
        zero_centred=False,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="bent identity, parameterised",
        at_inf=(math.nan, math.inf),
    )
"""
RIGHT = "x / (2 * torch.sqrt(x * x + a)) + 1"
NAME = '"bent" if a == 1.0 else f"bent(a={a!r})"'
LATEX = r"(\sqrt{x^2 + a} - \sqrt{a}) / 2 + x"


def _bent(tmp_path, deriv=RIGHT, name=NAME, latex=LATEX) -> Path:
    path = tmp_path / "bent.py"
    path.write_text(BENT.format(deriv=deriv, name=name, latex=latex))
    return path


def test_a_family_member_a_config_names_is_checked_before_any_work(capsys, tmp_path):
    # The derivative has a = 1 written in: right for the default member, wrong for the others.
    path = _bent(tmp_path, deriv="x / (2 * torch.sqrt(x * x + 1.0)) + 1")
    assert A.load_activations_file(path) == ["bent"]  # the default member keeps its promises
    out = tmp_path / "run"
    argv = ("run", "deep-mlp", "--preset", "smoke", "--out", out, "--activations-from", path)
    line = _one_error_line(*_cli(capsys, *argv, "--set", "activations=tanh,bent(a=4)")[::2])
    assert "activations: activation 'bent(a=4.0)'" in line or "'bent(a=4)'" in line
    assert f"(from {path})" in line and "fails check_activation: deriv != autograd" in line
    assert not out.exists()  # refused before the run folder was made
    # A right derivative: the same member passes, trains, and its values are the formula's.
    A.load_activations_file(_bent(tmp_path))
    act = actlab.get_activation("bent(a=4)")
    x = torch.tensor([-3.0, 0.0, 2.0], dtype=torch.float64)
    want = [(np.sqrt(v * v + 4) - 2) / 2 + v for v in x.tolist()]
    np.testing.assert_allclose(act(x).numpy(), want, rtol=1e-14)
    # The file edited back to the wrong derivative: a member already checked is checked again.
    _bent(tmp_path, deriv="x / (2 * torch.sqrt(x * x + 1.0)) + 1")
    assert A.load_activations_file(path) == ["bent"]
    with pytest.raises(ValueError, match="fails check_activation"):
        actlab.get_activation("bent(a=4)")


def test_a_member_whose_function_raises_is_one_line_with_the_line_of_the_file(capsys, tmp_path):
    path = _bent(tmp_path)
    number = (
        path.read_text()
        .splitlines()
        .index("        return (torch.sqrt(x * x + a) - math.sqrt(a)) / 2 + x")
    )
    out = tmp_path / "run"
    argv = ("run", "gallery", "--preset", "smoke", "--out", out, "--activations-from", path)
    line = _one_error_line(*_cli(capsys, *argv, "--set", "activations=bent(a=-1)")[::2])
    assert "ValueError: math domain error" in line
    assert f"line {number + 1} of {path}" in line
    assert not out.exists()
    with pytest.raises(ValueError, match="math domain error"):
        actlab.get_activation("bent(a=-1)")  # from Python too


def test_a_factory_that_raises_for_a_member_is_one_line_exit_2(capsys, tmp_path):
    # Any exception (here ZeroDivisionError, not a ValueError) becomes one line.
    path = _bent(tmp_path)
    text = path.read_text().replace("    def fn(x):", "    scale = 1 / a\n\n    def fn(x):", 1)
    path.write_text(text)
    number = text.splitlines().index("    scale = 1 / a") + 1
    argv = ("run", "gallery", "--preset", "smoke", "--out", tmp_path / "g")
    line = _one_error_line(
        *_cli(capsys, *argv, "--set", "activations=bent(a=0)", "--activations-from", path)[::2]
    )
    assert "activation 'bent(a=0)'" in line and "ZeroDivisionError" in line
    assert f"(line {number} of {path})" in line
    assert not (tmp_path / "g").exists()


def test_a_family_that_names_every_member_alike_is_refused_when_a_member_is_named(tmp_path):
    A.load_activations_file(_bent(tmp_path, name='"bent"'))
    # bent(a=4) would be pickled as "bent" and come back as bent(a=1).
    with pytest.raises(ValueError, match=r"get_activation\('bent'\) gives 'bent' with a=1"):
        actlab.get_activation("bent(a=4)")


def test_members_pickle_back_to_the_same_hyper_parameters(tmp_path):
    A.load_activations_file(EXAMPLE)
    for spec in ("isru", "isru(alpha=0.123456789)", "isru(alpha=3.000001)", "squareplus"):
        act = actlab.get_activation(spec)
        back = pickle.loads(pickle.dumps(act))
        assert back.name == act.name and dict(back.hyper) == dict(act.hyper)
    assert actlab.get_activation("isru(alpha=0.123456789)").hyper["alpha"] == 0.123456789
    # The built-in families too; a name of 6 significant digits or fewer is as it was.
    leaky = actlab.get_activation("leaky_relu(slope=0.123456789)")
    assert pickle.loads(pickle.dumps(leaky)).hyper["slope"] == 0.123456789
    assert actlab.get_activation("leaky_relu(0.2)").name == "leaky_relu(slope=0.2)"
    assert actlab.get_activation("elu(alpha=1e-05)").name == "elu(alpha=1e-05)"


SOFTSIGN = """import torch

import actlab

actlab.register(
    actlab.Activation(
        name={name!r},
        fn=lambda x: torch.where(x.isinf(), torch.sign(x), x / (1 + x.abs())),
        deriv=lambda x: 1 / (1 + x.abs()) ** 2,
        latex={latex!r},
        latex_deriv=r"\\frac{{1}}{{(1 + |x|)^2}}",
        bounded=True,
        monotonic=True,
        zero_centred=True,
        smooth=True,
        piecewise_linear=False,
        self_gated=False,
        reference="Softsign; Elliott (1993).",
        at_inf=(-1.0, 1.0),
    ){key}
)
"""


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        ("my softsign", "", "activation 'my softsign' is named 'my softsign', which "),
        ("1softsign", "", "activation '1softsign' is named '1softsign', which "),
        ("my_softsign", ", name='mysoftsign'", "is named 'my_softsign', which get_activation"),
    ],
)
def test_a_name_that_get_activation_cannot_resolve_is_refused_at_load(
    capsys, tmp_path, name, key, expected
):
    path = tmp_path / "soft.py"
    path.write_text(SOFTSIGN.format(name=name, latex=r"\frac{x}{1 + |x|}", key=key))
    line = _one_error_line(*_cli(capsys, "list", "activations", "--activations-from", path)[::2])
    assert line.startswith(f"actlab: error: activations file {path}: ") and expected in line
    # a right name: the same file loads, lists and pickles
    path.write_text(SOFTSIGN.format(name="mysoftsign", latex=r"\frac{x}{1 + |x|}", key=""))
    code, out, err = _cli(capsys, "list", "activations", "--activations-from", path)
    assert code == 0 and "mysoftsign" in out, err
    act = actlab.get_activation("mysoftsign")
    assert pickle.loads(pickle.dumps(act)) is act


def test_an_empty_latex_is_refused(capsys, tmp_path):
    path = tmp_path / "soft.py"
    path.write_text(SOFTSIGN.format(name="mysoftsign", latex=" ", key=""))
    line = _one_error_line(*_cli(capsys, "list", "activations", "--activations-from", path)[::2])
    assert "activation 'mysoftsign'" in line and "latex is empty" in line


def test_a_name_registered_twice_in_one_file_says_so(capsys, tmp_path):
    path = tmp_path / "dup.py"
    path.write_text(
        "import actlab\n"
        "actlab.register(actlab.get_activation('tanh'), name='a1')\n"
        "actlab.register(actlab.get_activation('relu'), name='a1')\n"
    )
    line = _one_error_line(*_cli(capsys, "list", "activations", "--activations-from", path)[::2])
    assert "the name 'a1' is already registered earlier in the same file" in line
    assert "line 3" in line


def test_a_changed_file_that_fails_keeps_the_old_version(mine):
    A.load_activations_file(mine)
    old = actlab.get_activation("squareplus")
    mine.write_text(mine.read_text().replace("0.5 * (1.0 + x / s)", "0.4 * (1.0 + x / s)"))
    with pytest.raises(ValueError, match="fails check_activation"):
        A.load_activations_file(mine)
    assert actlab.get_activation("squareplus") is old
    assert actlab.get_activation("isru(alpha=0.5)").hyper["alpha"] == 0.5


def test_a_changed_file_with_an_alias_reloads_and_keeps_its_alias(tmp_path):
    first, other = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text(
        "import dataclasses\n\nimport actlab\n\n"
        "tanh = actlab.get_activation('tanh')\n"
        "mine = dataclasses.replace(tanh, name='mytanh', family='mytanh')\n"
        "actlab.register(mine, aliases=('th',))\n"
    )
    assert A.load_activations_file(first) == ["mytanh"]
    first.write_text(first.read_text() + "# edited\n")
    assert A.load_activations_file(first) == ["mytanh"]  # its own alias is no clash
    assert actlab.get_activation("th").name == "mytanh"
    other.write_text(first.read_text().replace("'mytanh'", "'othertanh'"))
    with pytest.raises(ValueError, match=f"the name 'th' is already registered by {first}"):
        A.load_activations_file(other)


def test_an_import_error_gives_the_line_and_says_the_folder_is_not_on_sys_path(capsys, tmp_path):
    (tmp_path / "helpers.py").write_text("K = 1\n")
    path = tmp_path / "uses_helpers.py"
    path.write_text("import actlab\n\nfrom helpers import K\n")
    line = _one_error_line(*_cli(capsys, "list", "activations", "--activations-from", path)[::2])
    assert "No module named 'helpers'" in line and "line 3" in line
    assert f"{tmp_path} is not on sys.path" in line


def test_an_error_names_the_line_of_the_file_that_raised_it(capsys, tmp_path):
    path = tmp_path / "raises.py"
    path.write_text(
        "import actlab\n\n\ndef helper():\n    raise RuntimeError('boom')\n\n\nhelper()\n"
    )
    line = _one_error_line(*_cli(capsys, "list", "activations", "--activations-from", path)[::2])
    assert line.endswith(f"cannot import it: RuntimeError: boom (line 5 of {path})")


def test_an_unknown_name_hints_at_activations_from(capsys, tmp_path):
    argv = ("run", "gallery", "--preset", "smoke", "--out", tmp_path / "g")
    line = _one_error_line(*_cli(capsys, *argv, "--set", "activations=squareplus")[::2])
    assert "unknown activation 'squareplus'" in line and "--activations-from" in line
    line = _one_error_line(
        *_cli(capsys, *argv, "--set", "activations=squarepluss", "--activations-from", EXAMPLE)[::2]
    )
    assert "Did you mean 'squareplus'?" in line and "--activations-from" not in line


def test_the_tutorial_puts_runs_with_activation_files_in_folders_of_their_own(
    capsys, tmp_path, monkeypatch, mine
):
    import actlab.experiments
    import actlab.report.tutorial

    monkeypatch.setattr(actlab.experiments, "list_experiments", lambda: ["gallery"])
    built = []
    monkeypatch.setattr(
        actlab.report.tutorial, "build_tutorial", lambda runs, out: built.append(runs) or out
    )
    runs = tmp_path / "runs"
    argv = ("tutorial", "--preset", "smoke", "--runs", runs, "--out", tmp_path / "t")
    code, _, err = _cli(capsys, *argv)
    assert code == 0, err
    assert built[-1][0][1] == (runs / "gallery-smoke").resolve()
    code, _, err = _cli(capsys, *argv, "--activations-from", mine)
    assert code == 0, err
    folder = built[-1][0][1]
    assert folder.parent == runs.resolve() and folder.name.startswith("gallery-smoke-")
    record = json.loads((folder / "activation_files.json").read_text())
    assert record["files"][0]["path"] == str(mine.resolve())
    mine.write_text(mine.read_text() + "\n# edited\n")
    code, _, err = _cli(capsys, *argv, "--activations-from", mine)
    assert code == 0, err
    assert built[-1][0][1] not in (folder, runs / "gallery-smoke")


def test_the_refusal_to_reuse_a_folder_names_the_options(capsys, tmp_path, mine):
    out = tmp_path / "g"
    argv = ("run", "gallery", "--preset", "smoke", "--out", out)
    assert _cli(capsys, *argv)[0] == 0
    line = _one_error_line(*_cli(capsys, *argv, "--activations-from", mine)[::2])
    assert "--out" in line and "--runs" in line
