"""Run folders: atomic files, resume after kill -9 with identical numbers, reports rebuilt from
the folder alone."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actlab.experiments import base
from actlab.store import RunStore, RunStoreError

TESTS = Path(__file__).parent


@pytest.fixture
def slow_spec():
    sys.path.insert(0, str(TESTS))
    try:
        import slow_experiment

        base._EXPERIMENTS[slow_experiment.SPEC.name] = slow_experiment.SPEC
        yield slow_experiment.SPEC
    finally:
        base._EXPERIMENTS.pop("slow-test", None)
        sys.path.remove(str(TESTS))


def _cli(out: Path, *extra: str, pause: float = 0.0) -> subprocess.Popen:
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import slow_experiment; "
        "from actlab.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    cmd = [
        sys.executable,
        "-c",
        code,
        "run",
        "slow-test",
        "--out",
        str(out),
        *extra,
        "--set",
        f"pause={pause}",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _identity(path: Path) -> tuple[int, int, bytes]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


def test_kill_and_resume_gives_identical_metrics(tmp_path):
    reference = _cli(tmp_path / "reference")
    assert reference.wait(timeout=120) == 0, reference.stderr.read()

    run = tmp_path / "interrupted"
    proc = _cli(run, pause=0.4)
    deadline = time.time() + 60
    while len(list((run / "chunks").glob("*.pt"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: _identity(p) for p in (run / "chunks").glob("*.pt")}
    assert 2 <= len(done_before) < 6, "the run should have been killed mid-way"
    assert not RunStore(run).is_done()

    resumed = _cli(run, pause=0.4)  # the same command again
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    assert RunStore(run).is_done()
    # the chunks finished before the kill were reused, not recomputed: the very same files
    # (inode, modification time to the nanosecond, bytes); a chunk written again, even with
    # the same numbers, would be a new file (atomic writes rename a fresh one over it)
    for name, before in done_before.items():
        assert _identity(run / "chunks" / name) == before, name
    assert len(list((run / "chunks").glob("*.pt"))) == 6
    a = pd.read_parquet(tmp_path / "reference" / "metrics.parquet")
    b = pd.read_parquet(run / "metrics.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_same_seed_same_numbers_and_finished_run_not_recomputed(tmp_path, slow_spec):
    from actlab.cli import main

    out = tmp_path / "run"
    assert main(["run", "slow-test", "--preset", "smoke", "--out", str(out)]) == 0
    first = pd.read_parquet(out / "metrics.parquet")
    stamp = (out / "metrics.parquet").stat().st_mtime_ns
    assert main(["run", "slow-test", "--preset", "smoke", "--out", str(out)]) == 0
    assert (out / "metrics.parquet").stat().st_mtime_ns == stamp  # not recomputed
    other = tmp_path / "again"
    assert main(["run", "slow-test", "--preset", "smoke", "--out", str(other)]) == 0
    pd.testing.assert_frame_equal(first, pd.read_parquet(other / "metrics.parquet"))


def test_run_folder_contents_and_report_rebuild(tmp_path, slow_spec):
    from actlab.cli import main

    out = tmp_path / "run"
    assert main(["run", "slow-test", "--preset", "smoke", "--out", str(out)]) == 0
    for name in (
        "config.json",
        "env.json",
        "status.json",
        "metrics.parquet",
        "arrays.npz",
        "arrays.json",
        "summary.json",
        "report.md",
        "figures/final_loss.png",
    ):
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert config["experiment"] == "slow-test" and config["config"]["chunks"] == 2
    env = json.loads((out / "env.json").read_text())
    assert env["torch"].startswith("2.13") and "torch_threads" in env
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert {"member", "step", "metric", "value", "activation", "seed"} <= set(metrics.columns)
    assert len(metrics) == 2 * 2 * 5  # chunks x members x steps

    (out / "report.md").unlink()
    (out / "figures" / "final_loss.png").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text().startswith("# Slow")
    assert (out / "figures" / "final_loss.png").stat().st_size > 1000


def test_folder_holding_another_run_is_refused(tmp_path, slow_spec):
    store = RunStore(tmp_path)
    store.begin("slow-test", "smoke", slow_spec.presets["smoke"])
    with pytest.raises(RunStoreError, match="chunks=2 there, 6 here"):
        RunStore(tmp_path).begin("slow-test", "default", slow_spec.presets["default"])


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path):
    from actlab.store import atomic_write_bytes

    target = tmp_path / "a.json"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_chunk_keys_become_distinct_plain_file_names(tmp_path):
    from actlab.store import chunk_filename

    assert chunk_filename("seed-3") == "seed-3.pt"
    names = {chunk_filename(k) for k in ("act-a(x=1, y=2)", "act-a(x=1,_y=2)", "a/b", "a b")}
    assert len(names) == 4 and all("/" not in n and " " not in n for n in names)
    # distinct also where the file system ignores case (macOS, Windows)
    keys = ("D5_N64", "d5_n64", "Seed-3", "seed-3", "a/b", "A/B")
    assert len({chunk_filename(k).lower() for k in keys}) == len(keys)
    chunks = RunStore(tmp_path).chunk_runner()
    assert chunks("act-a(x=1, y=2)", lambda: {"v": 1}) == {"v": 1}
    assert chunks("act-a(x=1, y=2)", lambda: {"v": 2}) == {"v": 1}  # restored, not recomputed


def test_a_continued_run_reuses_its_chunks(tmp_path, slow_spec):
    """begin() on a folder holding the same run keeps its finished chunks: the chunk runner
    restores them without calling the chunk's function."""
    cfg = slow_spec.presets["smoke"]
    store = RunStore(tmp_path)
    store.begin("slow-test", "smoke", cfg)
    events = []
    chunks = store.chunk_runner(lambda key, restored: events.append((key, restored)))
    assert chunks("seed-0", lambda: {"v": 1}) == {"v": 1}
    again = RunStore(tmp_path)
    again.begin("slow-test", "smoke", cfg)  # the same command run again after a crash
    calls = []
    chunks = again.chunk_runner(lambda key, restored: events.append((key, restored)))
    assert chunks("seed-0", lambda: calls.append(1) or {"v": 2}) == {"v": 1}
    assert chunks("seed-1", lambda: calls.append(1) or {"v": 3}) == {"v": 3}
    assert calls == [1]
    assert events == [("seed-0", False), ("seed-0", True), ("seed-1", False)]


def test_results_round_trip(tmp_path):
    """save_results then load_results gives back every part: metrics (dtypes included), arrays,
    axes (as tuples), coords, and the summary, with NaN and infinities as null in strict JSON."""
    from actlab.experiments.base import Results

    metrics = pd.DataFrame(
        {
            "member": [0, 0, 1],
            "step": [0, 5, 0],
            "metric": ["train/loss", "train/loss", "act/dead_fraction"],
            "value": [0.5, float("nan"), 0.25],
            "activation": ["relu", "relu", "tanh"],
            "seed": [3, 3, 4],
        }
    )
    arrays = {"hidden": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "lr": np.array([1e-3])}
    axes = {"hidden": ("member", "epoch", "unit"), "lr": ("member",)}
    coords = {"hidden/epoch": [0, 10, 20], "hidden/member": ["relu", "tanh"]}
    summary = {"ratio": 1.5, "missing": float("nan"), "big": float("inf"), "rows": [[1, 2]]}
    store = RunStore(tmp_path)
    store.save_results(Results(metrics, arrays, axes, coords, summary))

    def strict(name):  # Python's json accepts NaN unless told not to
        return json.loads((tmp_path / name).read_text(), parse_constant=_refuse)

    assert strict("summary.json") == {"ratio": 1.5, "missing": None, "big": None, "rows": [[1, 2]]}
    strict("arrays.json")
    back = store.load_results()
    pd.testing.assert_frame_equal(back.metrics, metrics)
    assert back.arrays.keys() == arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(back.arrays[name], array)
        assert back.arrays[name].dtype == array.dtype
    assert back.axes == axes
    assert back.coords == coords
    assert back.summary == {"ratio": 1.5, "missing": None, "big": None, "rows": [[1, 2]]}
    (tmp_path / "arrays.npz").unlink()
    with pytest.raises(RunStoreError, match="arrays.npz missing"):
        store.load_results()


def _refuse(constant):
    raise ValueError(f"non-standard JSON constant {constant}")


def test_a_field_added_since_the_run_counts_as_its_default():
    import dataclasses

    from actlab.store import config_to_dict, same_config

    @dataclasses.dataclass(frozen=True)
    class Inner:
        width: int = 8

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        steps: int = 10
        seeds: tuple[int, ...] = (0, 1)
        device: str = "cpu"
        inner: Inner = dataclasses.field(default_factory=Inner)

    cfg = Cfg()
    saved = config_to_dict(cfg)
    assert same_config(saved, cfg)
    old = {k: v for k, v in saved.items() if k not in ("device", "inner")}  # made before both
    assert same_config(old, cfg)
    assert not same_config(old, Cfg(device="cuda"))  # the old run ran on the default
    assert not same_config(old, Cfg(inner=Inner(16)))
    assert not same_config({**saved, "steps": 11}, cfg)
    assert not same_config({**saved, "gone": 1}, cfg)  # a field the Config no longer has
    assert not same_config(None, cfg)
