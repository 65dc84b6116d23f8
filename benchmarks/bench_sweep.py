"""Does a sweep train at the engine's rate? A deep-MLP sweep of >= 500 members against the bare
engine, in one process, one after the other.

The sweep (default 5 activations x 10 learning rates x 10 seeds = 500 members, depth 10,
width 64, 200 full-batch Adam epochs on the deep-MLP experiment's data) is planned with
:func:`actlab.sweep.make_plan` (one pass of 500 members: they share a shape), its time
estimated as ``actlab sweep --dry-run`` does, then run with :func:`actlab.sweep.run` (no run
folder: the store adds one chunk file per pass). Its rate, members x epochs per second, is
compared with the engine's on the same machine in the same run:

* ``engine (tanh)``: ``EnsembleMLP`` + ``train`` on E = members, one activation (tanh), one
  rate: the workload of ``make bench`` (``benchmarks/bench_ensemble.py``), re-measured here;
* ``engine (same members)``: the same activations, rates and seeds as the sweep, trained with
  ``train`` directly: what is left of the ratio is the sweep's own overhead (plan, data,
  metrics).

The three are timed in turns (``--repeats`` turns; the fastest of each kept), so that load from
a neighbour on a shared machine falls on all three alike. The rate in
``bench-results/ensemble.json`` (from ``make bench``, if present) is printed too,
but timings on a shared machine drift: compare within one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py --json bench-results/sweep.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _engine(acts: list[str], lrs: list[float], seeds: list[int], point, epochs: int) -> float:
    """Seconds of ``train`` on an ensemble of these members (after a 3-step warm-up)."""
    from actlab.experiments.deep_mlp.experiment import Config, make_data
    from actlab.models import EnsembleMLP
    from actlab.train import TrainConfig, train

    data = make_data(Config(n_train=point.n_train, noise=point.noise, data_seed=point.data_seed))
    x, y = data["x_train"], data["y_train"]
    model = EnsembleMLP(1, [point.width] * point.depth, 1, acts, seeds)
    train(model, x, y, TrainConfig(epochs=3), lr=lrs)
    start = time.perf_counter()
    train(model, x, y, TrainConfig(epochs=epochs), lr=lrs)
    return time.perf_counter() - start


def _timed_sweep(plan) -> float:
    """Seconds of :func:`actlab.sweep.run` on the whole plan (data, passes, metrics)."""
    from actlab import sweep

    start = time.perf_counter()
    sweep.run(plan)
    return time.perf_counter() - start


def _benchmarked_rate(path: Path, members: int) -> dict | None:
    """The engine's members x epochs / s in ``make bench``'s JSON, at the E nearest ``members``."""
    if not path.exists():
        return None
    rows = [r for r in json.loads(path.read_text()) if r.get("method") == "actlab"]
    if not rows:
        return None
    row = min(rows, key=lambda r: abs(math.log(r["E"] / members)))
    return {"E": row["E"], "rate": row["epochs"] / row["seconds_per_model"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--activations", nargs="+", default=["tanh", "relu", "gelu", "sigmoid", "identity"]
    )
    parser.add_argument("--lrs", type=int, default=10, help="rates, log-spaced in [1e-4, 3e-2]")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="turns of the three timings")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)

    import torch

    from actlab import sweep
    from actlab.experiments import get_experiment

    spec = get_experiment("deep-mlp")
    rates = [float(f"{v:.3g}") for v in np.geomspace(1e-4, 3e-2, args.lrs)]
    grid = {"activation": list(args.activations), "lr": rates}
    fixed = {"depth": args.depth, "width": args.width, "epochs": args.epochs}
    plan = sweep.make_plan(spec, "default", fixed, grid, {}, 0, args.seeds, 1000)
    members = plan.members()
    n = len(members)
    print(sweep.describe(plan), flush=True)
    print(f"torch threads: {torch.get_num_threads()}", flush=True)

    t0 = time.perf_counter()
    est = sweep.estimate(plan)
    calibration = time.perf_counter() - t0
    print(sweep.describe(plan, est).splitlines()[-1], f"(calibration took {calibration:.1f} s)")

    point = spec.sweep.Point(**plan.base)
    rows = [m for t in plan.tasks() for m in t.members]  # the sweep's members, in pass order
    runs = {
        "engine_tanh": lambda: _engine(
            ["tanh"] * n, [point.lr] * n, list(members.seed), point, args.epochs
        ),
        "sweep": lambda: _timed_sweep(plan),
        "engine_same": lambda: _engine(
            [r["activation"] for r in rows],
            [r["lr"] for r in rows],
            [r["seed"] for r in rows],
            point,
            args.epochs,
        ),
    }
    # in turns, so that a neighbour's load falls on all three alike; the fastest of each kept
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.repeats):
        for key, fn in runs.items():
            times[key].append(fn())
            print(f"  [{r + 1}/{args.repeats}] {key}: {times[key][-1]:.1f} s", flush=True)
    best = {k: min(v) for k, v in times.items()}
    rate = {k: n * args.epochs / s for k, s in best.items()}
    bench = _benchmarked_rate(ROOT / "bench-results" / "ensemble.json", n)
    out = {
        "members": n,
        "passes": len(plan.passes),
        "epochs": args.epochs,
        "depth": args.depth,
        "width": args.width,
        "threads": torch.get_num_threads(),
        "seconds": times,
        "rate_member_epochs_per_s": rate,
        "ratio_sweep_to_engine_tanh": rate["sweep"] / rate["engine_tanh"],
        "ratio_sweep_to_engine_same": rate["sweep"] / rate["engine_same"],
        "estimate_seconds": est.seconds,
        "estimate_over_actual": est.seconds / best["sweep"],
        "estimate_over_actual_each": [est.seconds / t for t in times["sweep"]],
        "calibration_seconds": calibration,
        "make_bench": bench,
    }
    print(f"{'fastest of ' + str(args.repeats):24s} {'seconds':>8s} {'members x epochs / s':>21s}")
    for key, label in (
        ("sweep", "sweep"),
        ("engine_tanh", "engine (tanh)"),
        ("engine_same", "engine (same members)"),
    ):
        print(f"{label:24s} {best[key]:8.1f} {rate[key]:21.0f}")
    print(
        f"sweep / engine (tanh): {out['ratio_sweep_to_engine_tanh']:.2f}; sweep / engine (same "
        f"members): {out['ratio_sweep_to_engine_same']:.2f}; estimate / actual: "
        f"{out['estimate_over_actual']:.2f} ({est.seconds:.0f} s vs {best['sweep']:.0f} s)"
    )
    if bench:
        print(
            f"make bench (bench-results/ensemble.json, E={bench['E']}): {bench['rate']:.0f} "
            f"members x epochs / s; sweep / that: {rate['sweep'] / bench['rate']:.2f}"
        )
    else:
        print("no bench-results/ensemble.json (run make bench for the stored figure)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
