"""Which Hessian-vector product is faster for an ensemble: double backward or forward-over-reverse?

Workload: the stability experiment's net, 1 -> 4 x 32 -> 1 (tanh), 200 points, MSE, float32,
at E = 1, 20, 100 members. For each E, in one process, interleaved repetitions of:

* one-off product (a new ``v`` at new parameters, as :func:`actlab.sharpness.hvp`):
  ``double_backward`` (``autograd.grad`` of ``grad . v``) against ``forward_over_reverse``
  (``torch.func.jvp(torch.func.grad(L), flat, v)``);
* the operator used by power iteration (:func:`actlab.sharpness.hessian_operator`): built
  once at given parameters, then applied to many vectors. ``double_backward`` keeps the
  gradient's graph (building it is a forward and a backward pass with ``create_graph``; each
  product is then one more backward pass); ``forward_over_reverse`` does a whole jvp of the
  gradient per product; ``torch.func.linearize`` (a traced, cached jvp) is timed as a third
  variant. Reported: one product after building, and the total of building plus 20 products
  (a typical power iteration).

Prints ratios of median times, ``forward_over_reverse / double_backward`` (and ``linearize /
double_backward``; > 1: double backward is faster), never an absolute time as a result: the
machine is shared and noisy, ratios measured in the same run are what to compare. Run with one
thread to match the tests' setting::

    OMP_NUM_THREADS=1 python benchmarks/bench_hvp.py
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import torch

from actlab.models import EnsembleMLP
from actlab.sharpness import ensemble_loss, hessian_operator, hvp

SIZES = (1, 32, 32, 32, 32, 1)
N_POINTS = 200
PRODUCTS = 20


def _setup(E: int):
    model = EnsembleMLP(SIZES[0], SIZES[1:-1], SIZES[-1], "tanh", seeds=E)
    x = torch.linspace(-math.pi, math.pi, N_POINTS)[:, None]
    gen = torch.Generator().manual_seed(0)
    y = torch.sin(x) + 0.1 * torch.randn(N_POINTS, 1, generator=gen)
    v = torch.randn(model.flat.numel(), generator=gen)
    return model, x, y, v


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(E: int, repeats: int) -> dict[str, float]:
    model, x, y, v = _setup(E)
    methods = ("double_backward", "forward_over_reverse")
    flat = model.flat.detach()
    ref = hvp(model, x, y, v, method="double_backward")
    err = (hvp(model, x, y, v, method="forward_over_reverse") - ref).abs().max()
    grad_fn = torch.func.grad(ensemble_loss(model, x, y, "mse"))

    def build_linearize():
        return torch.func.linearize(grad_fn, flat)[1]

    build_linearize()(v)  # warm-up
    builders = {m: (lambda m=m: hessian_operator(model, x, y, method=m)) for m in methods}
    builders["linearize"] = build_linearize
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        for m in methods:
            times.setdefault(f"oneoff/{m}", []).append(
                _time(lambda m=m: hvp(model, x, y, v, method=m))
            )
        for m, build in builders.items():
            box = {}
            times.setdefault(f"build/{m}", []).append(
                _time(lambda build=build, box=box: box.setdefault("op", build()))
            )
            op = box["op"]
            times.setdefault(f"apply/{m}", []).append(
                _time(lambda op=op: [op(v) for _ in range(PRODUCTS)]) / PRODUCTS
            )
    med = {k: statistics.median(t) for k, t in times.items()}
    total = {m: med[f"build/{m}"] + PRODUCTS * med[f"apply/{m}"] for m in builders}
    db = "double_backward"
    return {
        "rel_diff": float(err / ref.abs().max()),
        "oneoff": med["oneoff/forward_over_reverse"] / med[f"oneoff/{db}"],
        "apply": med["apply/forward_over_reverse"] / med[f"apply/{db}"],
        "total": total["forward_over_reverse"] / total[db],
        "lin_apply": med["apply/linearize"] / med[f"apply/{db}"],
        "lin_total": total["linearize"] / total[db],
        "db_build": med[f"build/{db}"] / med[f"apply/{db}"],
        "db_oneoff": med[f"oneoff/{db}"] / med[f"apply/{db}"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="torch.fx")  # linearize's const-folding chatter
    print(
        f"net {' -> '.join(map(str, SIZES))}, {N_POINTS} points, mse, float32, "
        f"threads {torch.get_num_threads()}"
    )
    print(
        "ratios of median times to double_backward's (> 1: double backward faster): "
        "forward_over_reverse one-off and as an operator (op), torch.func.linearize (lin)"
    )
    cols = ("one-off", "op product", "op build+20", "lin product", "lin build+20")
    print(f"{'E':>5}" + "".join(f"{c:>14}" for c in cols) + f"{'max rel diff':>14}")
    for E in args.sizes:
        r = measure(E, args.repeats)
        keys = ("oneoff", "apply", "total", "lin_apply", "lin_total")
        print(f"{E:>5}" + "".join(f"{r[k]:>14.2f}" for k in keys) + f"{r['rel_diff']:>14.1e}")
        print(
            f"{'':>5}  double backward alone: building its operator costs {r['db_build']:.2f} "
            f"products, a one-off product {r['db_oneoff']:.2f}"
        )


if __name__ == "__main__":
    main()
