"""How fast does the ensemble engine train many small MLPs, against the obvious alternatives?

The workload is the deep-MLP experiment's: 1 -> 10 x 64 -> 1, 200 points, full batch, Adam, MSE.
For each ensemble size E it times, each in a fresh subprocess (so that peak memory is its own):

* ``actlab``          EnsembleMLP + train() (exact manual backward, fused flat-buffer Adam);
* ``actlab-autograd`` the same ensemble with PyTorch autograd for the backward pass;
* ``actlab-bf16``     opt-in reduced precision, PyTorch's own: the autograd path under
                      ``torch.autocast("cpu", torch.bfloat16)`` (matmuls, bias adds and
                      activations in bf16; fp32 master weights and Adam state). Compare its speed
                      with ``actlab-autograd``, the same path in fp32. Its rows add how far each
                      member's final loss lies from the fp32 ``actlab`` row's (same members, same
                      initial weights; both losses evaluated in fp32 after training);
* ``torch.func``      PyTorch's model-ensembling recipe: stack_module_state + functional_call
                      + vmap(grad(...)), torch.optim.Adam on the stacked parameters (its default
                      CPU implementation, as the recipe is written; actlab's Adam is one fused
                      pass);
* ``loop``            E separate nn.Sequential models, each with its own torch.optim.Adam,
                      trained one after the other (timed on at most --loop-models models; the
                      time per model does not depend on E);
* ``matmul``          the machine's fp32 rate on a large torch.mm, the ceiling for the above.

Work per model and step: 6 * B * sum(fan_in * fan_out) FLOPs (forward, and the two products of
the backward pass). Prints seconds per model, GFLOP/s, the fraction of the matmul rate, ratios
to the loop and to torch.func, and peak RSS; ``--json`` writes the rows for later comparison.
Timings on a shared machine are noisy: compare ratios within one run, not absolute times.

``--device cuda`` runs every method (models, data, optimiser state, the matmul) on the GPU; the
clock stops after ``torch.cuda.synchronize()``, and rows add the peak GPU memory.

    python benchmarks/bench_ensemble.py --json bench-results/ensemble.json
    python benchmarks/bench_ensemble.py --device cuda --E 1 100 1000 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("loop", "torch.func", "actlab-autograd", "actlab", "actlab-bf16")
SIZES = (1, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 1)
N_POINTS = 200
LR = 1e-3


def _flops_per_model_step() -> float:
    return 6.0 * N_POINTS * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:], strict=True))


DEVICE = "cpu"
"""Where the worker runs (``--device``)."""


def _sync() -> None:
    """Wait for the GPU's queued work (a no-op on the CPU), so that a clock reads true time."""
    import torch

    if DEVICE != "cpu":
        torch.cuda.synchronize(DEVICE)


def _data():
    import torch

    x = torch.linspace(-math.pi, math.pi, N_POINTS)[:, None]
    gen = torch.Generator().manual_seed(0)
    y = torch.sin(x) + 0.1 * torch.randn(N_POINTS, 1, generator=gen)
    return x.to(DEVICE), y.to(DEVICE)


def _sequential(activation: str, seed: int):
    import torch
    from torch import nn

    from actlab import get_activation

    # PyTorch's own modules where they exist, so that the baselines are plain PyTorch.
    native = {
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "elu": nn.ELU,
        "identity": nn.Identity,
    }
    make = native.get(activation, lambda: get_activation(activation).module())
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(make())
    return nn.Sequential(*layers).to(DEVICE)


def _time_loop(E: int, epochs: int, activation: str, loop_models: int) -> tuple[float, int]:
    import torch

    x, y = _data()
    n = min(E, loop_models)
    models = [_sequential(activation, s) for s in range(n)]
    loss_fn = torch.nn.MSELoss()

    def run(model, steps):
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

    run(_sequential(activation, 10_000), 5)  # warm-up
    _sync()
    start = time.perf_counter()
    for model in models:
        run(model, epochs)
    _sync()
    return time.perf_counter() - start, n


def _time_torch_func(E: int, epochs: int, activation: str) -> tuple[float, int]:
    import copy

    import torch
    from torch.func import functional_call, grad, stack_module_state, vmap

    x, y = _data()
    models = [_sequential(activation, s) for s in range(E)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p, b, xx, yy):
        return ((functional_call(base, (p, b), (xx,)) - yy) ** 2).mean()

    grads_of = vmap(grad(loss), in_dims=(0, 0, None, None))
    opt = torch.optim.Adam(list(params.values()), lr=LR)

    def run(steps):
        for _ in range(steps):
            grads = grads_of(params, buffers, x, y)
            for key, g in grads.items():
                params[key].grad = g
            opt.step()

    run(3)  # warm-up (vmap tracing)
    _sync()
    start = time.perf_counter()
    run(epochs)
    _sync()
    return time.perf_counter() - start, E


def _time_actlab(E: int, epochs: int, activation: str, method: str) -> tuple[float, int, dict]:
    """Time ``epochs`` steps of ``train`` after a 3-step warm-up on a copy; returns the time,
    E and extra fields: every member's final training loss (of the timed run, from the initial
    weights) and the warm-up's seconds."""
    import contextlib
    import copy
    import dataclasses

    import torch

    from actlab.models import EnsembleMLP
    from actlab.train import TrainConfig, train

    x, y = _data()
    model = EnsembleMLP(1, list(SIZES[1:-1]), 1, activation, seeds=E, device=DEVICE)
    backward = "autograd" if method in ("actlab-autograd", "actlab-bf16") else "manual"
    precision = (
        torch.autocast(DEVICE.split(":")[0], dtype=torch.bfloat16)
        if method == "actlab-bf16"
        else contextlib.nullcontext()
    )
    config = TrainConfig(epochs=epochs, lr=LR, backward=backward)
    with precision:
        start = time.perf_counter()
        train(copy.deepcopy(model), x, y, dataclasses.replace(config, epochs=3))
        _sync()
        warm_up = time.perf_counter() - start
        start = time.perf_counter()
        result = train(model, x, y, config)
        _sync()
        seconds = time.perf_counter() - start
    with torch.no_grad():  # the trained members' loss, in fp32 whatever the training precision
        final = (model(x).float() - y).square().mean(dim=(1, 2))
    final[result.diverged_step >= 0] = math.nan
    return seconds, E, {"final_loss": final.double().tolist(), "warm_up_s": warm_up}


def _matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    import torch

    if DEVICE != "cpu":
        n, repeats = 8192, 20  # a GPU needs a larger product to reach its rate
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        torch.mm(a, b)
        _sync()
        rates.append(2.0 * n**3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def worker(method: str, E: int, epochs: int, activation: str, loop_models: int) -> dict:
    """Time one method in this process; return its row (without the ratios)."""
    import torch

    if method == "matmul":
        return {"method": "matmul", "gflops": _matmul_gflops(), "threads": torch.get_num_threads()}
    if method == "loop":
        seconds, timed = _time_loop(E, epochs, activation, loop_models)
    elif method == "torch.func":
        seconds, timed = _time_torch_func(E, epochs, activation)
    else:
        seconds, timed, extra = _time_actlab(E, epochs, activation, method)
    per_model = seconds / timed
    row = {
        "method": method,
        "E": E,
        "models_timed": timed,
        "seconds_per_model": per_model,
        "gflops": _flops_per_model_step() * epochs / per_model / 1e9,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if DEVICE != "cpu":
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated(DEVICE) / 2**20
    if method.startswith("actlab"):
        row.update(extra)
    return row


def _loss_difference(row: dict, reference: dict) -> dict:
    """Per member ``|L - L_fp32| / L_fp32`` of the final training loss against the fp32
    ``actlab`` row of the same E: median, 90th percentile and maximum."""
    import numpy as np

    mine, ref = np.array(row["final_loss"]), np.array(reference["final_loss"])
    rel = np.abs(mine - ref) / ref
    both = np.isfinite(rel)
    rel = rel[both] if both.any() else np.array([math.nan])
    return {
        "loss_rel_diff_median": float(np.median(rel)),
        "loss_rel_diff_p90": float(np.quantile(rel, 0.9)),
        "loss_rel_diff_max": float(rel.max()),
        "final_loss_median": float(np.nanmedian(mine)),
        "members_compared": int(both.sum()),
    }


def _run_worker(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--E", type=int, nargs="+", default=[1, 10, 100, 400], help="ensemble sizes"
    )
    parser.add_argument("--epochs", type=int, default=200, help="full-batch Adam steps")
    parser.add_argument("--activation", default="tanh", help="activation of every hidden layer")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--loop-models", type=int, default=10, help="models timed for 'loop'")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "E"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device

    if args.worker:
        row = worker(
            args.worker[0], int(args.worker[1]), args.epochs, args.activation, args.loop_models
        )
        print(json.dumps(row))
        return 0

    common = [
        "--epochs",
        str(args.epochs),
        "--activation",
        args.activation,
        "--loop-models",
        str(args.loop_models),
        "--device",
        args.device,
    ]
    peak = _run_worker("matmul", "0", *common)["gflops"]
    print(
        f"fp32 matmul (torch.mm) on {args.device}: {peak:.1f} GFLOP/s; workload 1-10x64-1, "
        f"{N_POINTS} points, Adam, {args.epochs} epochs, activation {args.activation}"
    )
    rows = []
    for E in args.E:
        for method in args.methods:
            row = _run_worker(method, str(E), *common)
            row["fraction_of_peak"] = row["gflops"] / peak
            rows.append(row)
            print(f"  done: {method:16s} E={E}", file=sys.stderr, flush=True)
    by = {(r["method"], r["E"]): r for r in rows}
    for r in rows:
        for base, key in (("loop", "speedup_vs_loop"), ("torch.func", "speedup_vs_torch_func")):
            if (base, r["E"]) in by:
                r[key] = by[(base, r["E"])]["seconds_per_model"] / r["seconds_per_model"]
        if r["method"].startswith("actlab-") and ("actlab", r["E"]) in by:
            r.update(_loss_difference(r, by[("actlab", r["E"])]))

    header = (
        f"{'method':16s} {'E':>4s} {'s/model':>9s} {'GFLOP/s':>8s} {'of peak':>8s} "
        f"{'vs loop':>8s} {'vs func':>8s} {'RSS MB':>7s}"
    )
    print(header)
    print("-" * len(header))

    def ratio(r, key):
        return f"{r[key]:7.2f}x" if key in r else f"{'-':>8s}"

    for r in rows:
        print(
            f"{r['method']:16s} {r['E']:4d} {r['seconds_per_model']:9.4f} {r['gflops']:8.1f} "
            f"{r['fraction_of_peak']:8.1%} {ratio(r, 'speedup_vs_loop')} "
            f"{ratio(r, 'speedup_vs_torch_func')} {r['peak_rss_mb']:7.0f}"
        )
    compared = [r for r in rows if "loss_rel_diff_median" in r]
    if compared:
        print(
            "\nfinal training loss per member against the fp32 actlab row "
            "(same members and initial weights; losses in fp32 after training; members that "
            "diverged in either run left out): |L - L_fp32| / L_fp32"
        )
        print(
            f"{'method':16s} {'E':>4s} {'median':>9s} {'90th pct':>9s} {'max':>9s} "
            f"{'L median':>9s} {'members':>8s}"
        )
        for r in compared:
            print(
                f"{r['method']:16s} {r['E']:4d} {r['loss_rel_diff_median']:9.2e} "
                f"{r['loss_rel_diff_p90']:9.2e} {r['loss_rel_diff_max']:9.2e} "
                f"{r['final_loss_median']:9.4f} {r['members_compared']:8d}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "matmul_gflops": peak,
            "epochs": args.epochs,
            "activation": args.activation,
            "device": args.device,
        }
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps([{**r, **meta} for r in rows], indent=2))
        tmp.replace(args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
