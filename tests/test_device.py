"""``--device`` and the ``device`` field: the engine, the experiments, the RL agents and the sweep
on a GPU give the CPU's numbers.

Three layers:

* always: which experiments have the field, the CLI's ``--device`` (shorthand for ``--set
  device=DEV``), and the one-line refusals of ``cuda`` without CUDA and of garbage;
* always, ``[fake-cuda]``: every GPU test below under :class:`fake_cuda.FakeCuda`, a CPU stand-in
  that marks tensors made "on cuda" and raises where real CUDA would (a CPU tensor mixed in,
  ``.numpy()`` of a GPU tensor, a CPU generator for a GPU tensor, a GPU tensor in a chunk's
  result). Its arithmetic is the CPU's, so the results must be bit-identical to the CPU run;
* ``[cuda]``, skipped without CUDA (``scripts/check_cuda.sh`` runs them on a GPU machine): the
  same tests on the real device, equal to the CPU run to a float tolerance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fake_cuda import FakeCuda, FakeCudaError
from torch import nn

import actlab
from actlab import cli, sweep
from actlab.experiments import get_experiment, list_experiments
from actlab.experiments.base import ChunkRunner, check_device
from actlab.models import EnsembleMLP
from actlab.optim import OptimizerConfig
from actlab.rl.common import NetworkSpec
from actlab.train import Callback, TrainConfig, train

WITH_DEVICE = {
    "activation-swap",
    "capacity",
    "deep-mlp",
    "gradient-flow",
    "rl-hadamard",
    "single-neuron",
    "stability",
    "tiny-classifier",
    "unit-states",
}
"""The experiments that train (the engine or the RL agents); gallery, numpy-basics and
four-answers compute nothing heavy and always run on the CPU."""
ENGINE_EXPERIMENTS = sorted(WITH_DEVICE - {"rl-hadamard"})


# ============================================================================ always: CPU side
def test_the_experiments_that_train_have_a_device_field_defaulting_to_cpu():
    have = {
        name
        for name in list_experiments()
        if "device" in {f.name for f in dataclasses.fields(get_experiment(name).Config)}
    }
    assert have == WITH_DEVICE
    for name in have:
        for preset in get_experiment(name).presets.values():
            assert preset.device == "cpu"


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine without CUDA, also where there is a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _one_line_error(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("actlab: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("name", sorted(WITH_DEVICE))
def test_cuda_without_cuda_and_garbage_are_one_line_errors(name, no_cuda, capsys, tmp_path):
    spec = get_experiment(name)
    assert dataclasses.replace(spec.preset("smoke"), device="cpu").device == "cpu"
    out = tmp_path / "run"
    for flags, words in (
        (["--device", "cuda"], "device 'cuda' requested but CUDA is not available"),
        (["--set", "device=cuda:1"], "device 'cuda:1' requested but CUDA is not available"),
        (["--device", "gpu0"], "device 'gpu0' is not a PyTorch device"),
        (["--set", "device=mps"], "device 'mps': only cpu and cuda are supported"),
    ):
        err = _one_line_error(capsys, ["run", name, "--preset", "smoke", "--out", str(out), *flags])
        assert f"{name}: {words}" in err
    assert not out.exists()  # refused before any folder was made


def test_check_device_refuses_what_is_not_a_device_string(no_cuda):
    check_device("cpu")
    for bad in ("", "gpu", "cuda:x", 0, None):
        with pytest.raises(ValueError, match="is not a PyTorch device"):
            check_device(bad)


def test_device_flag_is_shorthand_for_set_device(tmp_path, monkeypatch, capsys):
    """Same config, same default folder (the second run reuses the first one's folder)."""
    monkeypatch.chdir(tmp_path)
    folders = []
    for flags in (["--device", "cpu"], ["--set", "device=cpu"], []):
        assert cli.main(["run", "deep-mlp", "--preset", "smoke", *flags]) == 0
        folders.append(Path(capsys.readouterr().out.strip().splitlines()[-1]))
    assert folders[0] == folders[1] != folders[2]  # no flag: the preset's own folder
    configs = [json.loads((f / "config.json").read_text())["config"] for f in folders]
    assert configs[0] == configs[1] == configs[2] and configs[0]["device"] == "cpu"
    err = _one_line_error(
        capsys, ["run", "deep-mlp", "--preset", "smoke", "--device", "cpu", "--set", "device=cpu"]
    )
    assert "give the device once" in err


def test_device_flag_leaves_experiments_without_the_field_alone():
    gallery = get_experiment("gallery").Config
    assert cli._with_device(gallery, ["n_grid=11"], "cuda") == ["n_grid=11"]
    deep = get_experiment("deep-mlp").Config
    assert cli._with_device(deep, ["epochs=3"], "cuda:1") == ["epochs=3", "device=cuda:1"]
    assert cli._with_device(deep, ["epochs=3"], None) == ["epochs=3"]


def test_tutorial_with_device_puts_those_runs_in_folders_of_their_own(tmp_path, monkeypatch):
    """Each experiment with the field gets device=DEV and a NAME-PRESET-DEV folder; the others
    their usual config and folder (the runs themselves are stubbed out here)."""
    calls = []

    def fake_execute(spec, preset, cfg, out, label=None, inputs=None):
        calls.append((spec.name, getattr(cfg, "device", None), out.name))
        return out

    monkeypatch.setattr(cli, "_execute", fake_execute)
    monkeypatch.setattr("actlab.report.tutorial.build_tutorial", lambda runs, out: out / "x")
    argv = ["tutorial", "--runs", str(tmp_path), "--out", str(tmp_path / "t"), "--device", "cpu"]
    assert cli.main([*argv, "--preset", "smoke"]) == 0
    assert {name for name, _, _ in calls} == set(list_experiments())
    for name, device, folder in calls:
        if name in WITH_DEVICE:
            assert (device, folder) == ("cpu", f"{name}-smoke-cpu")
        else:
            assert (device, folder) == (None, f"{name}-smoke")


def test_sweep_takes_the_device_too(no_cuda, capsys):
    err = _one_line_error(capsys, ["sweep", "deep-mlp", "--preset", "smoke", "--device", "cuda"])
    assert "device 'cuda' requested but CUDA is not available" in err
    spec = get_experiment("deep-mlp")
    plan = sweep.make_plan(spec, "smoke", {"device": "cpu"}, {}, {})
    assert {task.point["device"] for task in plan.tasks()} == {"cpu"}


# ============================================================================ on a GPU
@dataclasses.dataclass(frozen=True)
class Gpu:
    """Where the GPU tests run: ``name`` goes into configs, ``on()`` is the context to run in,
    ``exact`` whether the CPU's numbers must come out bit for bit."""

    name: str
    on: type
    exact: bool


GPUS = [
    pytest.param("fake", id="fake-cuda"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"),
    ),
]


@pytest.fixture(params=GPUS)
def gpu(request, monkeypatch):
    if request.param == "fake":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        return Gpu("cuda", FakeCuda, exact=True)
    return Gpu("cuda", contextlib.nullcontext, exact=False)


def _gpu_tensors(obj, path: str = "") -> list[str]:
    """Where in ``obj`` (nested dicts, lists, tuples) a tensor on a GPU sits."""
    if isinstance(obj, torch.Tensor):
        return [path] if obj.device.type == "cuda" else []
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _gpu_tensors(v, f"{path}[{k!r}]")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in _gpu_tensors(v, f"{path}[{i}]")]
    return []


class SavedChunks(ChunkRunner):
    """Runs each chunk and passes its result through ``torch.save`` / ``torch.load``, as the run
    store does; a tensor left on the GPU in a result is an error (the store would write a CUDA
    tensor that only a machine with a GPU can read back)."""

    def __call__(self, key, fn, work=0):
        out = fn()
        if where := _gpu_tensors(out):
            raise FakeCudaError(f"chunk {key!r}: a tensor on the GPU in its result at {where[0]}")
        buf = io.BytesIO()
        torch.save(out, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=False)


def _differences(got, ref, tol: tuple[float, float] | None, path: str = "") -> list[str]:
    """Leaves of two nested results that differ: numbers beyond ``tol = (rtol, atol)`` (NaN
    equals NaN), anything else unequal. ``tol=None`` compares the structure only (keys,
    lengths, array shapes and dtypes, the type of each leaf)."""
    if isinstance(ref, dict):
        if set(got) != set(ref):
            return [f"{path}: keys {sorted(set(got) ^ set(ref))}"]
        return [d for k in ref for d in _differences(got[k], ref[k], tol, f"{path}.{k}")]
    if isinstance(ref, (list, tuple)):
        if len(got) != len(ref):
            return [f"{path}: length {len(got)} != {len(ref)}"]
        pairs = enumerate(zip(got, ref, strict=True))
        return [d for i, (g, r) in pairs for d in _differences(g, r, tol, f"{path}[{i}]")]
    if isinstance(ref, np.ndarray):
        if not isinstance(got, np.ndarray) or (got.shape, got.dtype) != (ref.shape, ref.dtype):
            return [f"{path}: array {np.shape(got)} != {ref.shape} {ref.dtype}"]
        if tol is None or np.allclose(got, ref, *tol, equal_nan=True):
            return []
        return [f"{path}: arrays differ"]
    number = (int, float, np.number)
    if isinstance(ref, number) and not isinstance(ref, bool):
        if not isinstance(got, number) or isinstance(got, bool):
            return [f"{path}: {got!r} is not a number like {ref!r}"]
        if tol is None or (math.isnan(ref) and math.isnan(got)):
            return []
        close = math.isclose(got, ref, rel_tol=tol[0], abs_tol=tol[1])
        return [] if close else [f"{path}: {got} != {ref}"]
    if tol is None:
        return [] if type(got) is type(ref) else [f"{path}: {type(got)} != {type(ref)}"]
    return [] if got == ref else [f"{path}: {got!r} != {ref!r}"]


def test_the_comparison_of_results_sees_what_it_should():
    a = {"x": [1.0, float("nan"), "relu"], "arr": np.array([1.0, 2.0]), "n": 3}
    assert _differences(a, a, (0.0, 0.0)) == []
    near = {"x": [1.0 + 1e-9, float("nan"), "relu"], "arr": np.array([1.0, 2.0 + 1e-7]), "n": 3}
    assert len(_differences(near, a, (0.0, 0.0))) == 2
    assert _differences(near, a, (1e-3, 1e-6)) == []
    far = {"x": [1.1, 0.0, "tanh"], "arr": np.array([1.0, 3.0]), "n": 4}
    assert len(_differences(far, a, (1e-3, 1e-6))) == 5
    assert _differences(far, a, None) == []  # the same structure
    broken = {"x": [1.0, "nan", "relu"], "arr": np.array([1.0]), "n": 3}
    assert len(_differences(broken, a, None)) == 2
    assert _differences({"x": 1}, {"y": 1}, None) == [": keys ['x', 'y']"]


# ---------------------------------------------------------------------------- the engine
ACTS = ["tanh", "tanh", "relu", "prelu", "gelu"]
SEEDS = [0, 1, 0, 2, 3]


def _data(n=48, classes=None, dtype=torch.float32):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    if classes:
        return x.to(dtype), torch.randint(classes, (n,), generator=gen)
    return x.to(dtype), torch.sin(x[:, :2]).to(dtype)


def _tol(gpu: Gpu, dtype: torch.dtype, loose: float = 1.0) -> dict:
    if gpu.exact:
        return {"rtol": 0.0, "atol": 0.0}
    eps = 1e-12 if dtype == torch.float64 else 1e-5
    return {"rtol": eps * loose, "atol": eps * loose / 10}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_forward_and_manual_backward_equal_the_cpu(gpu, dtype, loss):
    x, y = _data(classes=3 if loss == "cross_entropy" else None, dtype=dtype)
    out_features = 3 if loss == "cross_entropy" else 2
    cpu = EnsembleMLP(3, [16, 8], out_features, ACTS, SEEDS, dtype=dtype)
    grad_cpu = torch.empty_like(cpu.flat)
    loss_cpu = cpu.loss_and_grad(x, y, loss, grad_cpu)
    with gpu.on():
        model = EnsembleMLP(3, [16, 8], out_features, ACTS, SEEDS, dtype=dtype, device=gpu.name)
        assert model.flat.device.type == "cuda"
        xd, yd = x.to(gpu.name), y.to(gpu.name)
        out = model(xd).cpu()
        per_member = model(xd.expand(model.E, *x.shape)).cpu()  # (E, B, in) inputs too
        grad = torch.empty_like(model.flat)
        value = model.loss_and_grad(xd, yd, loss, grad).cpu()
        grad, flat = grad.cpu(), model.flat.detach().cpu()
    assert torch.equal(flat, cpu.flat.detach())  # drawn on the CPU, the same bits
    torch.testing.assert_close(out, cpu(x).detach(), **_tol(gpu, dtype))
    torch.testing.assert_close(per_member, cpu(x).detach(), **_tol(gpu, dtype))
    torch.testing.assert_close(value, loss_cpu, **_tol(gpu, dtype))
    torch.testing.assert_close(grad, grad_cpu, **_tol(gpu, dtype, loose=10))


@pytest.mark.parametrize("backward", ["manual", "autograd"])
def test_adam_steps_with_minibatches_and_callbacks_equal_the_cpu(gpu, backward):
    """Minibatch order, per-member rates, callback records and a stop request, on the GPU."""
    x, y = _data(n=40)
    lrs = [1e-2, 3e-3, 1e-2, 5e-3, 2e-2]
    cfg = TrainConfig(epochs=4, batch_size=16, backward=backward)

    def run(device):
        model = EnsembleMLP(3, [16, 8], 2, ACTS, SEEDS, device=device)

        def probe(state):
            if state.step == 6:
                state.stop(torch.tensor([False, True, False, False, False], device=device))
            return {"w0": model.weight(0, state.grad).abs().mean((1, 2))}

        result = train(
            model, x.to(device), y.to(device), cfg, lr=lrs, callbacks=[Callback(probe, every=3)]
        )
        return result, model.flat.detach().cpu()

    ref, flat_cpu = run("cpu")
    with gpu.on():
        got, flat = run(gpu.name)
        tensors = [got.loss, got.diverged_step, got.stopped_step, got.records["w0"][1]]
        assert not any(t.device.type == "cuda" for t in tensors)  # results on the CPU
    assert got.stopped_step.tolist() == ref.stopped_step.tolist() == [-1, 6, -1, -1, -1]
    assert got.records["w0"][0] == ref.records["w0"][0]
    torch.testing.assert_close(
        got.records["w0"][1], ref.records["w0"][1], **_tol(gpu, torch.float32, 100)
    )
    torch.testing.assert_close(got.loss, ref.loss, **_tol(gpu, torch.float32, 100))
    torch.testing.assert_close(flat, flat_cpu, **_tol(gpu, torch.float32, 100))


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_divergence_is_isolated_on_the_gpu_as_on_the_cpu(gpu, opt_name):
    """Member 2's rate is far too large: it diverges at the same step as on the CPU with finite
    parameters (those before that update), and the others' numbers match the CPU's. On a real
    GPU member 2's own parameters are not compared: its one huge step (Adam's is ``lr *
    sign(g)``) turns a rounding difference in a near-zero gradient into a visible one."""
    x, y = _data()
    lrs = [1e-2, 1e-2, 1e4 if opt_name == "sgd" else 1e3, 1e-2, 1e-2]
    cfg = TrainConfig(epochs=30, max_loss=1e3, optimizer=OptimizerConfig(name=opt_name))

    def run(device):
        model = EnsembleMLP(3, [16, 8], 2, ACTS, SEEDS, device=device)
        result = train(model, x.to(device), y.to(device), cfg, lr=lrs)
        return result, model.cpu()

    def members(model, ms):
        layers = range(model.n_layers)
        return torch.cat(
            [model.weight(k)[ms].flatten(1) for k in layers] + [model.bias(k)[ms] for k in layers],
            1,
        )

    ref, cpu = run("cpu")
    with gpu.on():
        got, model = run(gpu.name)
    assert ref.diverged_step[2] > 0 and (ref.diverged_step[[0, 1, 3, 4]] == -1).all()
    assert got.diverged_step.tolist() == ref.diverged_step.tolist()
    assert torch.isfinite(model.flat).all()
    tol = _tol(gpu, torch.float32, 100)
    ms = list(range(5)) if gpu.exact else [0, 1, 3, 4]
    torch.testing.assert_close(members(model, ms), members(cpu, ms), **tol)
    torch.testing.assert_close(got.loss[:, ms], ref.loss[:, ms], equal_nan=True, **tol)
    assert got.loss[ref.diverged_step[2] + 1 :, 2].isnan().all()


# ---------------------------------------------------------------------------- the experiments
CHAOTIC = {"stability"}
"""Experiments that train at the edge of stability on purpose: there a rounding difference grows
until the runs part ways, so on a real GPU only their structure is compared to the CPU's."""


@pytest.mark.parametrize("name", ENGINE_EXPERIMENTS)
def test_an_experiment_on_the_gpu_gives_the_cpu_results(gpu, name):
    """The smoke preset with device=cuda, its chunks' results saved and loaded as the store
    does: the summary, every array and the metrics as on the CPU: bit for bit under the
    stand-in; on a real GPU to 1e-3 relative (rounding differs: its float32 sums run in another
    order), or the structure alone for :data:`CHAOTIC` experiments."""
    spec = get_experiment(name)
    cfg = spec.preset("smoke")
    ref = spec.run(cfg)
    with gpu.on():
        got = spec.run(dataclasses.replace(cfg, device=gpu.name), SavedChunks())
    tol = (0.0, 0.0) if gpu.exact else None if name in CHAOTIC else (1e-3, 1e-6)
    bad = _differences(got.summary, ref.summary, tol, "summary")
    bad += _differences(got.arrays, ref.arrays, tol, "arrays")
    assert not bad, f"{len(bad)} differences, e.g. {bad[:8]}"
    if tol is None:
        assert list(got.metrics.columns) == list(ref.metrics.columns)
        assert len(got.metrics) == len(ref.metrics)
    else:
        pd.testing.assert_frame_equal(
            got.metrics, ref.metrics, check_exact=gpu.exact, rtol=max(tol[0], 1e-12), atol=tol[1]
        )


def _agent_config(agent: str, env: str, device: str):
    net = NetworkSpec("tanh", "last")
    module = importlib.import_module(f"actlab.rl.{agent}")
    common = dict(env_id=env, seeds=(0, 3), network=net, probe_size=32, device=device)
    if agent == "dqn":
        tiny = dict(total_steps=300, learning_starts=100, train_frequency=2, batch_size=16)
        tiny |= dict(buffer_size=150, target_network_frequency=50, diag_every=100)
    else:
        tiny = dict(copies=2, num_steps=16, num_minibatches=4, total_steps=2 * 16 * 6)
        tiny |= dict(diag_every=64)
    if env.startswith("MinAtar"):
        common["network"] = NetworkSpec("relu")
        if agent == "dqn":
            return module, module.minatar_config(**common, **tiny)
        return module, module.Config.minatar(**common, **tiny, update_epochs=1)
    return module, module.Config(**common, **tiny)


@pytest.mark.parametrize(
    "agent,env",
    [
        ("dqn", "CartPole-v1"),
        ("ppo", "CartPole-v1"),
        ("pqn", "CartPole-v1"),
        ("dqn", "MinAtar/Breakout-v1"),
        ("pqn", "MinAtar/Breakout-v1"),
    ],
)
def test_an_rl_agent_runs_on_the_gpu(gpu, agent, env):
    """Networks and buffers on the GPU, environments and draws on the CPU: the run finishes,
    hands back its parameters on the CPU, finite, with episodes and diagnostics; under the
    stand-in (the CPU's arithmetic) its episodes are the CPU run's."""
    with gpu.on():
        module, cfg = _agent_config(agent, env, gpu.name)
        got = module.main(cfg)
        assert not _gpu_tensors(got.params)
    assert all(torch.isfinite(p).all() for p in got.params.values())
    assert len(got.returns) and len(got.diagnostics)
    if gpu.exact:
        _, cfg_cpu = _agent_config(agent, env, "cpu")
        ref = module.main(cfg_cpu)
        pd.testing.assert_frame_equal(got.returns, ref.returns)


def test_rl_hadamard_runs_on_the_gpu(gpu):
    spec = get_experiment("rl-hadamard")
    cfg = spec.preset("smoke")
    with gpu.on():
        got = spec.run(dataclasses.replace(cfg, device=gpu.name), SavedChunks())
    ref = spec.run(cfg)
    cells = lambda res: [(c["agent"], c["env"], c["network"]) for c in res.summary["cells"]]  # noqa: E731
    assert cells(got) == cells(ref)
    assert set(got.arrays) == set(ref.arrays)


def test_a_sweep_on_the_gpu_gives_the_cpu_table(gpu):
    spec = get_experiment("deep-mlp")
    grid = {"activation": ["tanh", "relu"], "lr": [1e-3, 1e-2]}

    def table(device):
        plan = sweep.make_plan(spec, "smoke", {"device": device}, grid, {}, seeds=2)
        return sweep.table(plan, sweep.run(plan)).drop(columns="device")

    ref = table("cpu")
    with gpu.on():
        got = table(gpu.name)
    rtol, atol = (0.0, 0.0) if gpu.exact else (1e-3, 1e-6)
    pd.testing.assert_frame_equal(got, ref, check_exact=gpu.exact, rtol=max(rtol, 1e-12), atol=atol)


def test_probes_of_a_users_model_on_the_gpu_give_the_cpu_numbers(gpu):
    """``actlab.probe`` on a CNN trained on the GPU by the user's own loop, and on a transformer
    layer (its activation a function, probed through ``linear1``)."""

    def measure(device):
        torch.manual_seed(0)
        cnn = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.GELU(), nn.Flatten()
        ).to(device)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0).to(device)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(32, 3, 8, 8, generator=gen).to(device)
        tokens = torch.randn(4, 5, 16, generator=gen).to(device)
        opt = torch.optim.SGD(cnn.parameters(), lr=0.1)
        with actlab.probe(cnn) as p:
            for _ in range(3):
                loss = cnn(x).square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with actlab.probe(layer) as q, torch.no_grad():
            layer(tokens)
        return pd.concat([p.to_frame(), q.to_frame()], ignore_index=True)

    ref = measure("cpu")
    with gpu.on():
        got = measure(gpu.name)
    assert len(ref) > 20
    pd.testing.assert_frame_equal(got, ref, check_exact=gpu.exact, rtol=1e-4, atol=1e-6)


def test_data_on_another_device_than_the_model_is_refused_by_name(gpu):
    x, y = _data()
    with gpu.on():
        model = EnsembleMLP(3, [8], 2, "tanh", 2, device=gpu.name)
        with pytest.raises(ValueError, match=r"must be on the model's device \(cuda"):
            train(model, x, y.to(gpu.name), TrainConfig(epochs=1))
