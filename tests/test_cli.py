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


# ---------------------------------------------------------------------- every field, bad values
# Fields whose negative values are valid (coordinates, logits, rewards): their out-of-range value
# is NaN instead of -1. A new signed field must be added here, or -1 must be refused.
SIGNED = {
    ("gallery", "z_min"),
    ("gallery", "z_max"),
    ("numpy-basics", "big_logits"),
    ("numpy-basics", "gap_logits"),
    ("numpy-basics", "peaky_base"),
    ("numpy-basics", "sweep_logits"),
    ("numpy-basics", "dead_inputs"),
    ("numpy-basics", "compare_inputs"),
    ("numpy-basics", "stop_reward"),
    ("single-neuron", "x_min"),
    ("single-neuron", "x_max"),
    ("single-neuron", "sigmoid_w0"),
}


def _bad_values(experiment: str, name: str, tp) -> list[tuple[str, str]]:
    """(kind, text) pairs for a field of type ``tp``: a value of the wrong type (where the
    command line can express one) and a value out of range or unknown."""
    import types
    import typing

    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    inner = args[0] if origin in (tuple, list) else tp
    signed = (experiment, name) in SIGNED
    if inner is bool:
        return [("type", "maybe")]
    if inner is int:
        return [("type", "abc"), ("range", "-1")]
    if inner is float:
        return [("type", "abc"), ("range", "nan" if signed else "-1")]
    if inner is str:
        return [("unknown", "nosuch")]
    raise AssertionError(f"{experiment}.{name}: no bad value for type {tp}")


def _field_cases():
    import dataclasses
    import typing

    from actlab.experiments import get_experiment, list_experiments

    for exp in list_experiments():
        config = get_experiment(exp).Config
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            for kind, text in _bad_values(exp, f.name, hints[f.name]):
                yield pytest.param(exp, f.name, text, id=f"{exp}-{f.name}-{kind}")


@pytest.mark.parametrize("experiment,name,text", list(_field_cases()))
def test_every_field_refuses_a_bad_value_in_one_line(capsys, tmp_path, experiment, name, text):
    code, out, err = _run(
        capsys, "run", experiment, "--preset", "smoke", "--out", str(tmp_path / "run"),
        "--set", f"{name}={text}",
    )  # fmt: skip
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("actlab: error: "), err
    assert name in lines[0], lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists(), "the run folder is made only for a valid config"


# ---------------------------------------------------------------------- progress
class _Terminal(__import__("io").StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_and_silence_elsewhere(capsys, monkeypatch, tmp_path):
    out = tmp_path / "run"
    code, _, err = _run(capsys, "run", "gallery", "--preset", "smoke", "--out", str(out))
    assert code == 0 and err == ""  # not a terminal: quiet
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["run", "gallery", "--preset", "smoke", "--out", str(tmp_path / "b")]) == 0
    shown = term.getvalue()
    assert "gallery (smoke)" in shown and "/6" in shown and "activation/s" in shown
    assert main(["run", "gallery", "--preset", "smoke", "--out", str(out)]) == 0
    assert f"gallery (smoke): reused the finished run in {out}" in term.getvalue()


def test_a_reused_run_made_by_other_code_says_so(capsys, tmp_path):
    """A finished run is reused as it is; when its env.json names another actlab version or git
    revision, one line says so (its numbers are the old code's), also off a terminal."""
    import json

    out = tmp_path / "run"
    assert _run(capsys, "run", "gallery", "--preset", "smoke", "--out", str(out))[0] == 0
    code, _, err = _run(capsys, "run", "gallery", "--preset", "smoke", "--out", str(out))
    assert code == 0 and err == ""  # made by this code: nothing to say
    from actlab.store import _git_revision

    env = json.loads((out / "env.json").read_text())
    cases = [("actlab", "0.0.1", "actlab 0.0.1")]
    if _git_revision() is not None:  # outside a git checkout only the version can differ
        cases.append(("git_revision", "f" * 40, "(git ffffffffff)"))
    for key, value, shown in cases:
        changed = dict(env, **{key: value})
        (out / "env.json").write_text(json.dumps(changed))
        code, _, err = _run(capsys, "run", "gallery", "--preset", "smoke", "--out", str(out))
        assert code == 0 and shown in err and "delete the folder" in err, err
