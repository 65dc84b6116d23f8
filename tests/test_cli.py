"""The command line: listings, and bad input answered by one line and exit status 2."""

import subprocess
import sys

import pytest

from actlab.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_activations_experiments_probes(capsys):
    code, out, _ = _run(capsys, "list", "activations")
    assert code == 0 and "tanh" in out and len(out.splitlines()) >= 25
    code, out, _ = _run(capsys, "list", "experiments")
    assert code == 0 and "gallery" in out
    code, out, _ = _run(capsys, "list", "probes")
    assert code == 0 and "act/dead_fraction" in out


def test_run_help_lists_the_fields_with_their_docs(capsys):
    code, out, _ = _run(capsys, "run", "gallery", "--help")
    assert code == 0 and "n_points" in out and "--set" in out


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["run", "gallry"], "Did you mean 'gallery'"),
        (["run"], "run needs an experiment name"),
        (["run", "gallery", "--preset", "huge"], "unknown preset 'huge'"),
        (["run", "gallery", "--set", "n_pointz=50"], "Did you mean 'n_points'"),
        (["run", "gallery", "--set", "n_points=many"], "expected an integer"),
        (["run", "gallery", "--set", "n_points=3"], "n_points"),
        (["run", "gallery", "--set", "z_min=abc"], "expected a number"),
        (["run", "gallery", "--set", "activations=tanhh"], "Did you mean 'tanh'"),
        (["run", "gallery", "--set", "n_points"], "KEY=VALUE"),
        (
            ["run", "gallery", "--preset", "smoke", "--out", "/proc/actlab-cannot-write"],
            "cannot write",
        ),
        (["report", "/nonexistent/run"], "not a run folder"),
        (["list", "things"], "invalid choice"),
        ([], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, expected):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("actlab: error: ") and expected in lines[0]
    assert "Traceback" not in err


def test_folder_with_another_run_is_refused(capsys, tmp_path):
    out = tmp_path / "run"
    assert _run(capsys, "run", "gallery", "--preset", "smoke", "--out", str(out))[0] == 0
    code, _, err = _run(
        capsys, "run", "gallery", "--preset", "smoke", "--out", str(out), "--set", "n_points=41"
    )
    assert code == 2 and "holds a different run" in err


def test_console_script_exit_status():
    proc = subprocess.run(
        [sys.executable, "-m", "actlab.cli", "run", "nope"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("actlab: error: unknown experiment 'nope'")
