"""The Ray backend (``--backend ray``): the same numbers as the local backend, a killed worker
retried with nothing lost or counted twice, an experiment's own error not retried, and a run
resumed from chunks the local backend saved. One local Ray with 2 CPUs for the module.

The chunk-runner tests at the top need no Ray; the rest skip when it is not installed (the extra
``pip install 'actlab[ray]'``, which ``.[dev]`` includes).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from actlab import progress
from actlab.cli import main
from actlab.experiments import base
from actlab.experiments.base import (
    ExperimentSpec,
    Results,
    register_experiment,
    run_chunks,
    run_inline,
)
from actlab.store import RunStore, StoreChunks

if importlib.util.find_spec("ray") is not None:
    import ray  # noqa: F401 - now, not inside a test: its log handler binds the stderr of then
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (extra 'ray')"
)
WORK = 10  # progress units per chunk


# ---------------------------------------------------------------------- a test experiment
@dataclass(frozen=True)
class Config:
    parts: int = 4
    """Chunks (one small regression each)."""
    steps: int = 40
    """Gradient steps per chunk."""
    marks: str = ""
    """Folder of the marker files that steer and count each chunk's attempts."""


def _part(i: int, cfg: Config) -> dict:
    """Chunk ``i``: full-batch gradient descent on a seeded least-squares problem, logging each
    attempt (``attempts-I``: one line per attempt, with its process id). A file ``kill-I`` makes
    the first attempt kill its own process half-way (after writing ``killed-I``); a file
    ``fail-I`` holding ``N`` makes it wait until ``N`` chunk files are saved in the folder named
    by ``wait-for``, then raise ``ValueError``; a file ``crash-I`` makes every attempt kill its
    process."""
    marks = Path(cfg.marks)
    with open(marks / f"attempts-{i}", "a") as fh:
        fh.write(f"{os.getpid()}\n")
    if (marks / f"crash-{i}").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    g = torch.Generator().manual_seed(1000 + i)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = x @ torch.randn(5, 1, generator=g, dtype=torch.float64) + 0.1 * torch.randn(
        64, 1, generator=g, dtype=torch.float64
    )
    w = torch.zeros(5, 1, dtype=torch.float64)
    losses = []
    for step in range(cfg.steps):
        r = x @ w - y
        losses.append(float((r**2).mean()))
        w = w - 0.05 * (2 / len(x)) * x.T @ r
        if step == cfg.steps // 2 and (marks / f"kill-{i}").exists():
            if not (marks / f"killed-{i}").exists():
                (marks / f"killed-{i}").write_text("")
                os.kill(os.getpid(), signal.SIGKILL)
    if (marks / f"fail-{i}").exists():
        wanted = int((marks / f"fail-{i}").read_text())
        folder = Path((marks / "wait-for").read_text())
        deadline = time.monotonic() + 30
        while len(list(folder.glob("*.pt"))) < wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        raise ValueError(f"part {i} is broken")
    return {"loss": np.asarray(losses), "w": w.numpy().ravel()}


def _run(cfg: Config, chunks=run_inline) -> Results:
    progress.expect(cfg.parts * WORK)
    items = [(f"part-{i}", lambda i=i: _part(i, cfg), WORK) for i in range(cfg.parts)]
    parts = run_chunks(chunks, items)
    for part in parts:
        part["w"] *= 1.0  # an experiment may work on its chunks' arrays in place
    rows = [
        (i, step, "train/loss", value)
        for i, part in enumerate(parts)
        for step, value in enumerate(part["loss"])
    ]
    metrics = pd.DataFrame(rows, columns=["member", "step", "metric", "value"])
    arrays = {"w": np.stack([p["w"] for p in parts])}
    return Results(metrics, arrays, {"w": ("member", "feature")}, {}, {"n": cfg.parts})


SPEC = ExperimentSpec(
    name="ray-test",
    title="Test experiment for the Ray backend",
    Config=Config,
    presets={"smoke": Config(), "default": Config(), "full": Config()},
    run=_run,
    figures=lambda results: {},
    report=lambda results: "# Ray test\n",
    order=999,
)


@pytest.fixture
def spec():
    register_experiment(SPEC)
    try:
        yield SPEC
    finally:
        base._EXPERIMENTS.pop(SPEC.name, None)


def _attempts(marks: Path, i: int) -> list[int]:
    path = marks / f"attempts-{i}"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


# ---------------------------------------------------------------------- runners without Ray
def test_many_is_each_chunk_in_turn_in_the_inline_and_store_runners(tmp_path):
    calls = []

    def fn(k):
        calls.append(k)
        return {"k": k, "x": np.arange(k)}

    items = [(f"c{k}", lambda k=k: fn(k), k) for k in range(4)]
    assert [r["k"] for r in run_inline.many(items)] == [0, 1, 2, 3]
    events = []
    store = RunStore(tmp_path)
    first = store.chunk_runner(lambda key, restored: events.append((key, restored)))
    assert [r["k"] for r in first.many(items[:2])] == [0, 1]
    again = store.chunk_runner(lambda key, restored: events.append((key, restored)))
    out = again.many(items)
    assert [r["k"] for r in out] == [0, 1, 2, 3] and np.array_equal(out[3]["x"], [0, 1, 2])
    assert calls == [0, 1, 2, 3, 0, 1, 2, 3]  # inline: all; store: 0, 1, then only 2, 3
    assert events == [("c0", False), ("c1", False)] + [("c0", True), ("c1", True)] + [
        ("c2", False),
        ("c3", False),
    ]
    assert sorted(p.name for p in (tmp_path / "chunks").iterdir()) == [
        "c0.pt",
        "c1.pt",
        "c2.pt",
        "c3.pt",
    ]
    # a plain function is a runner too: run_chunks calls it for each item in order
    seen = []
    plain = run_chunks(lambda key, f, work=0: seen.append((key, work)) or f(), items)
    assert seen == [("c0", 0), ("c1", 1), ("c2", 2), ("c3", 3)] and len(plain) == 4


def test_ray_options_need_the_ray_backend_and_sane_values(capsys):
    for argv, says in [
        (["--ray-address", "auto"], "--ray-address needs --backend ray"),
        (["--ray-cpus-per-task", "2"], "--ray-cpus-per-task needs --backend ray"),
        (["--backend", "ray", "--ray-cpus-per-task", "0"], "CPUs per task must be > 0"),
        (["--backend", "ray", "--ray-gpus-per-task", "-1"], "GPUs per task must be >= 0"),
        (["--backend", "dask"], "invalid choice: 'dask'"),
        (["--backend", "ray", "--ray-address", "auto", "--ray-cpus", "2"], "--ray-cpus is for a"),
        (["--backend", "ray", "--device", "cuda"], "needs --ray-gpus-per-task > 0"),
        (["--backend", "ray", "--set", "device=cuda"], "needs --ray-gpus-per-task > 0"),
        (["--backend", "ray", "--device", "cuda:1", "--ray-gpus-per-task", "1"], "not cuda:1"),
        (["--backend", "ray", "--ray-gpus-per-task", "1"], "needs --device cuda"),
        (["--backend", "ray", "--device", "cpu", "--ray-gpus-per-task", "1"], "needs --device"),
    ]:
        if "ray" in argv and importlib.util.find_spec("ray") is None:
            continue
        assert main(["run", "rl-hadamard", "--preset", "smoke", *argv]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and says in err, (argv, err)


def test_without_ray_installed_the_backend_says_how_to_install_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(
        ["run", "rl-hadamard", "--preset", "smoke", "--out", str(tmp_path / "r")]
        + [
            "--backend",
            "ray",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err == "actlab: error: install the extra: pip install 'actlab[ray]'\n"
    assert not (tmp_path / "r").exists()  # refused before any work


# ---------------------------------------------------------------------- on a local Ray
@pytest.fixture(scope="module")
def local_ray():
    import ray
    from ray import cloudpickle

    # the workers cannot import this test module: its functions travel by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # a Ray of its own, never one that `ray start` left running on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        from actlab.backends import _DRIVER, _scratch_root

        shutil.rmtree(_scratch_root() / _DRIVER, ignore_errors=True)


def _run_cli(*argv: str) -> Path:
    assert main(["run", *argv]) == 0
    return Path(argv[argv.index("--out") + 1])


def _same_results(a: Path, b: Path) -> None:
    """Metrics and arrays of two run folders are equal, bit for bit."""
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "metrics.parquet"),
        pd.read_parquet(b / "metrics.parquet"),
        check_exact=True,
    )
    with np.load(a / "arrays.npz") as x, np.load(b / "arrays.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for k in x.files:
            assert np.array_equal(x[k], y[k]), k


def _without_speed(obj):
    """A summary without its wall-clock speeds (the only numbers that differ between runs)."""
    if isinstance(obj, dict):
        return {k: _without_speed(v) for k, v in obj.items() if k != "speed"}
    if isinstance(obj, list):
        return [_without_speed(v) for v in obj]
    return obj


@pytest.fixture
def one_thread():
    """Torch on one thread here, as in each Ray task (``--ray-cpus-per-task 1``): with another
    thread count, PQN's effective rank (an eigen-decomposition) differs in the 8th digit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@needs_ray
def test_rl_cells_on_ray_give_the_local_backends_numbers(local_ray, tmp_path, one_thread):
    argv = ["rl-hadamard", "--preset", "smoke", "--set", "agents=ppo,pqn"]
    here = _run_cli(*argv, "--out", str(tmp_path / "local"))
    there = _run_cli(*argv, "--out", str(tmp_path / "ray"), "--backend", "ray")
    _same_results(here, there)
    summary = [json.loads((d / "summary.json").read_text()) for d in (here, there)]
    assert _without_speed(summary[0]) == _without_speed(summary[1])
    assert summary[1]["cells"][0]["speed"]  # the speed is there, just not compared

    def layout(d):
        return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.name != "env.json")

    assert layout(here) == layout(there)
    assert len(list((there / "chunks").iterdir())) == 4  # ppo, pqn x tanh, tanh-hadamard


@needs_ray
def test_a_worker_killed_mid_chunk_is_retried_and_nothing_is_lost_or_counted_twice(
    local_ray, spec, tmp_path, monkeypatch
):
    marks = tmp_path / "marks"
    marks.mkdir()
    (marks / "kill-1").write_text("")
    (tmp_path / "ref").mkdir()
    reference = _run_cli(
        "ray-test", "--out", str(tmp_path / "local"), "--set", "marks=" + str(tmp_path / "ref")
    )
    reporters = []

    def recording(label):
        reporters.append(progress.Reporter(label))
        return reporters[-1]

    monkeypatch.setattr("actlab.cli._reporter", recording)
    events = []  # ("write", key, file there before) and ("advance", work, progress before)
    write, advance = StoreChunks.write, progress.advance

    def counted_write(self, key, data):
        events.append(("write", key, self.path(key).exists()))
        write(self, key, data)

    def counted_advance(work):
        events.append(("advance", work, reporters[-1].done))
        advance(work)

    monkeypatch.setattr(StoreChunks, "write", counted_write)
    monkeypatch.setattr("actlab.backends.progress.advance", counted_advance)
    out = tmp_path / "ray"
    _run_cli("ray-test", "--out", str(out), "--set", f"marks={marks}", "--backend", "ray")
    writes = [e for e in events if e[0] == "write"]
    assert sorted(key for _, key, _ in writes) == [f"part-{i}" for i in range(4)]  # once each
    assert not any(there for _, _, there in writes)  # never over a saved chunk
    # each chunk: its file first, then its progress (a crash between them counts it never)
    assert [e[0] for e in events] == ["write", "advance"] * 4
    assert [e[1:] for e in events if e[0] == "advance"] == [(WORK, k * WORK) for k in range(4)]
    env = json.loads((out / "env.json").read_text())
    assert env["backend"] == "ray" and env["ray_task_threads"] == 1
    assert env["ray_cpus_per_task"] == 1 and env["ray_gpus_per_task"] == 0
    assert json.loads((reference / "env.json").read_text())["backend"] == "local"
    assert (marks / "killed-1").exists()
    tries = [_attempts(marks, i) for i in range(4)]
    assert [len(t) for t in tries] == [1, 2, 1, 1]  # chunk 1: killed once, then retried
    assert tries[1][0] != tries[1][1]  # in a new worker
    assert all(os.getpid() not in t for t in tries)
    assert sorted(p.name for p in (out / "chunks").iterdir()) == [
        f"part-{i}.pt" for i in range(4)
    ]  # one file per chunk, no temporary left
    _same_results(reference, out)
    (reporter,) = reporters
    assert reporter.total == 4 * WORK and reporter.done == 4 * WORK


@needs_ray
def test_an_error_in_a_chunk_is_not_retried_and_finished_chunks_are_kept(local_ray, spec, tmp_path):
    marks, out = tmp_path / "marks", tmp_path / "ray"
    marks.mkdir()
    (marks / "fail-2").write_text("2")  # chunk 2 raises once chunks 0 and 1 are saved
    (marks / "wait-for").write_text(str(out / "chunks"))
    argv = ["ray-test", "--out", str(out), "--set", "parts=3", "--set", f"marks={marks}"]
    with pytest.raises(ValueError, match="part 2 is broken"):
        main(["run", *argv, "--backend", "ray"])
    assert [len(_attempts(marks, i)) for i in range(3)] == [1, 1, 1]  # not retried
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["part-0.pt", "part-1.pt"]
    (marks / "fail-2").unlink()
    _run_cli(*argv, "--backend", "ray")
    assert [len(_attempts(marks, i)) for i in range(3)] == [1, 1, 2]  # 0 and 1 restored
    (tmp_path / "ref").mkdir()
    reference = _run_cli(
        "ray-test",
        "--out",
        str(tmp_path / "local"),
        "--set",
        "parts=3",
        "--set",
        f"marks={tmp_path / 'ref'}",
    )
    _same_results(reference, out)


@needs_ray
def test_a_run_started_locally_resumes_on_ray_from_the_saved_chunks(local_ray, spec, tmp_path):
    marks, out = tmp_path / "marks", tmp_path / "run"
    marks.mkdir()
    (marks / "fail-2").write_text("0")  # the local run stops at chunk 2
    (marks / "wait-for").write_text(str(out / "chunks"))
    argv = ["ray-test", "--out", str(out), "--set", f"marks={marks}"]
    with pytest.raises(ValueError, match="part 2 is broken"):
        main(["run", *argv])
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["part-0.pt", "part-1.pt"]
    (marks / "fail-2").unlink()
    _run_cli(*argv, "--backend", "ray")
    tries = [_attempts(marks, i) for i in range(4)]
    assert tries[0] == tries[1] == [os.getpid()]  # saved here, restored, never run again
    assert len(tries[2]) == 2 and tries[2][0] == os.getpid() != tries[2][1]
    assert len(tries[3]) == 1 and tries[3][0] != os.getpid()
    (tmp_path / "ref").mkdir()
    reference = _run_cli(
        "ray-test", "--out", str(tmp_path / "ref-run"), "--set", "marks=" + str(tmp_path / "ref")
    )
    _same_results(reference, out)


@needs_ray
def test_gallery_chunks_on_ray_give_the_local_backends_numbers(
    local_ray, tmp_path, one_thread, monkeypatch
):
    from actlab.backends import RayChunks

    handed, many = [], RayChunks.many
    monkeypatch.setattr(
        RayChunks, "many", lambda self, items: handed.append(len(items)) or many(self, items)
    )
    argv = ["gallery", "--preset", "smoke"]
    here = _run_cli(*argv, "--out", str(tmp_path / "local"))
    there = _run_cli(*argv, "--out", str(tmp_path / "ray"), "--backend", "ray")
    _same_results(here, there)
    names = sorted(p.name for p in (there / "chunks").iterdir())
    assert names == sorted(p.name for p in (here / "chunks").iterdir()) and len(names) > 1
    assert handed == [len(names)]  # every activation handed over at once: in parallel on Ray


@needs_ray
def test_a_sweep_on_ray_gives_the_local_backends_table(local_ray, tmp_path, capsys, one_thread):
    argv = ["deep-mlp", "--preset", "smoke", "--grid", "lr=1e-3,3e-2", "--seeds", "2"]
    argv += ["--max-members", "3"]  # several passes, several chunks
    assert main(["sweep", *argv, "--out", str(tmp_path / "local")]) == 0
    assert main(["sweep", *argv, "--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    here, there = (pd.read_parquet(tmp_path / d / "table.parquet") for d in ("local", "ray"))
    pd.testing.assert_frame_equal(here, there, check_exact=True)
    chunks = sorted(p.name for p in (tmp_path / "ray" / "chunks").iterdir())
    assert chunks == sorted(p.name for p in (tmp_path / "local" / "chunks").iterdir())
    assert len(chunks) > 1


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_activations.py"


@pytest.fixture
def registry():
    """The activation registry as it was, after the test (a file's activations registered)."""
    import actlab.activations as A

    live = (A._FACTORIES, A._ALIASES, A._ORIGIN, A._USER_FILES)
    saved = [dict(d) for d in live]
    try:
        yield
    finally:
        for d, old in zip(live, saved, strict=True):
            d.clear()
            d.update(old)


@needs_ray
def test_activations_from_a_users_file_reach_the_tasks(local_ray, tmp_path, registry, one_thread):
    from actlab.activations import get_activation, load_activations_file
    from actlab.backends import RayChunks, RayOptions

    mine = tmp_path / "my_activations.py"  # a copy: the test edits it
    mine.write_text(EXAMPLE.read_text())
    # an Activation pickles by name: a task must register the file before it unpickles fn
    load_activations_file(mine)
    act = get_activation("isru(alpha=0.5)")
    x = torch.linspace(-4, 4, 9, dtype=torch.float64)
    bare = RayChunks(RunStore(tmp_path / "bare").chunk_runner(), RayOptions())
    with pytest.raises(ValueError, match="isru"):  # no worker of this Ray has seen the file yet
        bare.many([("isru", lambda: act(x), 0)])
    chunks = RayChunks(RunStore(tmp_path / "direct").chunk_runner(), RayOptions(), [mine])
    (y,) = chunks.many([("isru", lambda: act(x), 0)])
    assert torch.equal(y, act(x))  # the file's own function, computed here
    assert torch.allclose(y, x / torch.sqrt(1 + 0.5 * x * x), rtol=1e-15, atol=0)
    # through the CLI: rl-hadamard's networks of the file's activations, same numbers
    argv = ["rl-hadamard", "--preset", "smoke", "--set", "agents=ppo", "--set"]
    argv += ["networks=squareplus,isru-hadamard", "--activations-from", str(mine)]
    here = _run_cli(*argv, "--out", str(tmp_path / "local"))
    there = _run_cli(*argv, "--out", str(tmp_path / "ray"), "--backend", "ray")
    _same_results(here, there)
    # the file edited between two runs in the same Ray: the tasks use its new version
    text = mine.read_text()
    assert text.count("_B = 4.0") == 1
    mine.write_text(text.replace("_B = 4.0", "_B = 9.0"))  # squareplus(0) = sqrt(b) / 2
    zero = torch.zeros(1, dtype=torch.float64)
    again = RayChunks(RunStore(tmp_path / "again").chunk_runner(), RayOptions(), [mine])
    items = [(f"sq{i}", lambda: get_activation("squareplus")(zero), 0) for i in range(4)]
    assert [float(v) for v in again.many(items)] == [1.5] * 4


@needs_ray
def test_a_task_no_node_can_hold_is_refused_in_one_line(local_ray, spec, tmp_path, capsys):
    # (ray-test has no device field: --device cuda passes the flag check and changes nothing)
    for flags in (["--ray-gpus-per-task", "1", "--device", "cuda"], ["--ray-cpus-per-task", "3"]):
        out = tmp_path / flags[0]
        argv = ["run", "ray-test", "--out", str(out), "--set", f"marks={tmp_path}"]
        assert main([*argv, "--backend", "ray", *flags]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert "no node of the Ray cluster has them (the largest: 2 CPUs, 0 GPUs)" in err
        assert not list(tmp_path.glob("attempts-*"))  # nothing ran
        assert not out.exists()  # refused before the run folder was made


@needs_ray
def test_a_worker_lost_after_every_retry_is_one_line_and_the_run_resumes(
    local_ray, spec, tmp_path, capsys
):
    marks, out = tmp_path / "marks", tmp_path / "ray"
    marks.mkdir()
    (marks / "crash-2").write_text("")  # every attempt of chunk 2 kills its worker
    argv = ["run", "ray-test", "--out", str(out), "--set", "parts=3", "--set", f"marks={marks}"]
    assert main([*argv, "--backend", "ray"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Ray: WorkerCrashedError" in err and "run the same command again to resume" in err
    assert len(_attempts(marks, 2)) == 4  # the first and 3 retries
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["part-0.pt", "part-1.pt"]
    (marks / "crash-2").unlink()
    assert main([*argv, "--backend", "ray"]) == 0
    assert [len(_attempts(marks, i)) for i in range(3)] == [1, 1, 5]  # 0, 1 restored


@needs_ray
def test_a_worker_with_another_actlab_saves_nothing(local_ray, spec, tmp_path, capsys, monkeypatch):
    # the driver believes it is another version: every worker then differs from it
    monkeypatch.setattr("actlab.backends._actlab_version", lambda: "0.0.0-other")
    marks, out = tmp_path / "marks", tmp_path / "ray"
    marks.mkdir()
    argv = ["run", "ray-test", "--out", str(out), "--set", "parts=2", "--set", f"marks={marks}"]
    assert main([*argv, "--backend", "ray"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "a Ray worker has actlab" in err and "this run 0.0.0-other" in err
    assert not list(out.rglob("*.pt"))  # neither chunk saved


@needs_ray
def test_torch_threads_in_a_task_are_its_cpus(local_ray, tmp_path):
    from actlab.backends import RayChunks, RayOptions

    items = [(f"t{i}", torch.get_num_threads, 0) for i in range(2)]
    for cpus in (1, 2):
        chunks = RayChunks(
            RunStore(tmp_path / str(cpus)).chunk_runner(), RayOptions(cpus_per_task=cpus)
        )
        assert chunks.many(items) == [cpus, cpus]


def _after(marker: Path, then, deadline: float = 30.0):
    """Wait for ``marker`` to exist (at most ``deadline`` s), then ``then()``."""
    end = time.monotonic() + deadline
    while not marker.exists() and time.monotonic() < end:
        time.sleep(0.02)
    return then()


def _mark_and_return(marker: Path, value):
    marker.write_text("")
    return value


def _broken():
    raise ValueError("chunk a is broken")


@needs_ray
def test_an_error_and_a_result_in_the_same_wait_keep_the_result_and_cancel_the_rest(
    local_ray, tmp_path, monkeypatch
):
    from actlab.backends import RayChunks, RayOptions

    ray = local_ray
    never = tmp_path / "never"  # chunk c waits for it until it is cancelled
    real_wait, cancelled = ray.wait, []

    def wait(refs, num_returns=1, timeout=None, **kw):
        # the driver's first look comes once chunks a (an error) and b (a result) have both
        # finished, and sees a first (Ray does not promise an order among finished tasks)
        if len(refs) == 3 and num_returns == 1:
            assert len(real_wait(refs[:2], num_returns=2, timeout=60)[0]) == 2
            return [refs[0]], refs[1:]
        return real_wait(refs, num_returns=num_returns, timeout=timeout, **kw)

    def cancel(ref, **kw):
        cancelled.append(ref)
        return ray_cancel(ref, **kw)

    ray_cancel = ray.cancel
    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "cancel", cancel)
    store = RunStore(tmp_path / "run")
    items = [
        ("a", _broken, 1),
        ("b", lambda: {"x": np.arange(3)}, 1),
        ("c", lambda: _after(never, lambda: "late", deadline=5.0), 1),
    ]
    with pytest.raises(ValueError, match="chunk a is broken"):
        RayChunks(store.chunk_runner(), RayOptions()).many(items)
    assert sorted(p.name for p in (tmp_path / "run" / "chunks").iterdir()) == ["b.pt"]
    assert len(cancelled) == 1  # c, still running: the driver cancelled it
    # Whether Ray interrupts a task that is already running is Ray's affair (seen both ways on
    # this machine, by load and thread count); what is ours: c's result is never saved.
    try:
        ray.get(cancelled[0], timeout=60)
    except (ray.exceptions.TaskCancelledError, ray.exceptions.GetTimeoutError):
        pass
    assert sorted(p.name for p in (tmp_path / "run" / "chunks").iterdir()) == ["b.pt"]
    found, saved = store.chunk_runner().restore("b")
    assert found and np.array_equal(saved["x"], [0, 1, 2])


def test_ray_is_imported_only_by_the_ray_backend(tmp_path):
    script = (
        "import sys, actlab\n"
        "assert 'ray' not in sys.modules, 'import actlab'\n"
        "from actlab.cli import main\n"
        f"assert main(['run', 'gallery', '--preset', 'smoke', '--out', {str(tmp_path / 'g')!r}])"
        " == 0\n"
        "assert 'ray' not in sys.modules, 'a local run'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "g" / "status.json").exists()


_OWN_RAY = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import ray
from ray import cloudpickle
import test_ray_backend as T
from actlab import backends
from actlab.cli import main
from actlab.experiments.base import register_experiment
from actlab.store import StoreChunks

register_experiment(T.SPEC)
cloudpickle.register_pickle_by_value(T)
tmp, seen = Path({tmp!r}), {{}}
argv = ["run", "ray-test", "--set", "parts=2", "--set", "marks=" + str(tmp), "--backend", "ray"]
argv += ["--activations-from", {mine!r}]
# a bad address (Ray gives up on an unreachable host:port only after 2 minutes; a ray:// one
# without Ray's client package fails at once), and no run folder
seen["bad"] = main([*argv, "--out", str(tmp / "bad"), "--ray-address", "ray://127.0.0.1:1"])
seen["bad_folder"] = (tmp / "bad").exists()
# a local Ray must not look for a cluster, not even at RAY_ADDRESS
os.environ["RAY_ADDRESS"] = "auto"
check_fits, write = backends.check_fits, StoreChunks.write

def spy_fits(options):
    seen["cpus"] = ray.cluster_resources().get("CPU")
    return check_fits(options)

def spy_write(self, key, data):
    seen["scratch"] = (backends._scratch_root() / backends._DRIVER).is_dir()
    return write(self, key, data)

backends.check_fits, StoreChunks.write = spy_fits, spy_write
seen["code"] = main([*argv, "--out", str(tmp / "run"), "--ray-cpus", "1"])
seen["left_running"] = ray.is_initialized()
seen["scratch_left"] = (backends._scratch_root() / backends._DRIVER).exists()
print(json.dumps(seen))
"""


@needs_ray
def test_the_cli_starts_a_local_ray_of_its_own_and_shuts_it_down(tmp_path):
    """Through the CLI's own Ray start (a fresh process: no Ray connected beforehand)."""
    mine = tmp_path / "my_activations.py"
    mine.write_text(EXAMPLE.read_text())
    raytmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths have a limit
    try:
        script = _OWN_RAY.format(
            tests=str(Path(__file__).parent), tmp=str(tmp_path), mine=str(mine)
        )
        # not this module's Ray (ray.init set RAY_ADDRESS for its children), nor anyone else's
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["RAY_TMPDIR"] = raytmp
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env
        )
    finally:
        shutil.rmtree(raytmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["bad"] == 2 and not seen["bad_folder"]
    assert "actlab: error: cannot connect to Ray at ray://127.0.0.1:1: Ray Client" in done.stderr
    assert seen["code"] == 0 and (tmp_path / "run" / "status.json").exists()
    assert seen["cpus"] == 1  # --ray-cpus 1
    assert not seen["left_running"]  # the CLI's Ray is shut down at the end
    assert seen["scratch"] and not seen["scratch_left"]  # the workers' copies, then removed
