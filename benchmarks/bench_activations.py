"""What would it cost the engine if an activation returned its limit at +-inf by construction?

For GELU, SiLU, Mish, Hardswish and tanh-GELU, PyTorch's kernel returns the limit at +-inf *or
NaN*, depending on the CPU (``Activation.at_inf_or_nan``). Their limits are ``(0, +inf)``, which
``relu(x)`` also takes at +-inf, so each could be made to return them by a guard around the
kernel. This times the deep-MLP workload (1 -> 10 x 64 -> 1, 200 points, full batch, Adam, MSE,
``EnsembleMLP`` + ``train`` with the exact manual backward, which calls ``act.fn`` on every
hidden layer) with the registry's activation and with each guard:

* ``kernel``   the registry's ``fn`` (PyTorch's kernel alone);
* ``where``    ``torch.where(x.isinf(), torch.relu(x), fn(x))``;
* ``fmin``     ``torch.fmin(fn(x), torch.relu(x))`` (these functions lie below ReLU, and fmin
               ignores the kernel's NaN where ReLU's limit is a number);
* ``checked``  ``fn(x)``, then the ``where`` only if ``fn(x).sum()`` is not finite (one
               reduction; a data-dependent branch, which ``torch.func.vmap`` cannot trace).

Variants run interleaved in one process, round after round, so that the load of a shared machine
falls on all of them; the table gives each variant's median time per training step and its median
paired ratio to ``kernel`` with the quartiles, then the activation's forward alone on one
``(E, 200, 64)`` tensor. Compare ratios, not absolute times.

    python benchmarks/bench_activations.py --activations gelu silu --rounds 15
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Callable

import torch

from actlab import Activation, get_activation
from actlab.models import EnsembleMLP
from actlab.train import TrainConfig, train

HIDDEN = [64] * 10
N_POINTS = 200
LR = 1e-3


def guards(fn: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Callable]:
    """The registry's ``fn`` and the guarded versions that return ``(0, inf)`` at ``+-inf``."""

    def where(x):
        return torch.where(x.isinf(), torch.relu(x), fn(x))

    def fmin(x):
        return torch.fmin(fn(x), torch.relu(x))

    def checked(x):
        y = fn(x)
        if not bool(torch.isfinite(y.sum())):
            y = torch.where(x.isinf(), torch.relu(x), y)
        return y

    return {"kernel": fn, "where": where, "fmin": fmin, "checked": checked}


def _check_variant(base: Activation, act: Activation, name: str) -> None:
    """Each guard gives the kernel's values on finite inputs (to float rounding: fmin may pick
    relu(x) where the kernel rounds a hair above it) and the limits at +-inf."""
    x = torch.tensor([-math.inf, -30.0, -1.0, 0.0, 0.5, 30.0, math.inf, math.nan])
    y, kernel = act.fn(x), base.fn(x)
    finite = x.isfinite()
    torch.testing.assert_close(y[finite], kernel[finite], rtol=1e-6, atol=1e-7)
    if name != "kernel":
        assert y[0] == 0.0 and y[-2] == math.inf and y[-1].isnan(), (act.name, y.tolist())


def bench(activation: str, E: int, epochs: int, rounds: int) -> list[dict]:
    base = get_activation(activation)
    if tuple(base.at_inf) != (0.0, math.inf):
        raise SystemExit(f"{activation}: the guards here return (0, inf); at_inf is {base.at_inf}")
    acts = {
        name: dataclasses.replace(base, name=f"{base.name}[{name}]", fn=fn)
        for name, fn in guards(base.fn).items()
    }
    for name, act in acts.items():
        _check_variant(base, act, name)
    x = torch.linspace(-math.pi, math.pi, N_POINTS)[:, None]
    y = torch.sin(x)
    models = {name: EnsembleMLP(1, HIDDEN, 1, act, seeds=E) for name, act in acts.items()}
    for model in models.values():
        train(model, x, y, TrainConfig(epochs=3, lr=LR, backward="manual"))  # warm-up
    times: dict[str, list[float]] = {name: [] for name in acts}
    for r in range(rounds):
        order = list(acts) if r % 2 == 0 else list(acts)[::-1]
        for name in order:
            start = time.perf_counter()
            train(models[name], x, y, TrainConfig(epochs=epochs, lr=LR, backward="manual"))
            times[name].append((time.perf_counter() - start) / epochs)
    z = torch.randn(E, N_POINTS, HIDDEN[0], generator=torch.Generator().manual_seed(0))
    rows = []
    for name, act in acts.items():
        alone = []
        for _ in range(max(50, 10 * rounds)):
            start = time.perf_counter()
            act.fn(z)
            alone.append(time.perf_counter() - start)
        paired = [t / k for t, k in zip(times[name], times["kernel"], strict=True)]
        q1, _, q3 = statistics.quantiles(paired, n=4)
        rows.append(
            {
                "activation": activation,
                "variant": name,
                "ms_per_step": 1e3 * statistics.median(times[name]),
                "ratio": statistics.median(paired),
                "q1": q1,
                "q3": q3,
                "fn_us": 1e6 * statistics.median(alone),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activations", nargs="+", default=["gelu"])
    parser.add_argument("--E", type=int, default=30, help="ensemble size (deep-mlp: 6 x 5 seeds)")
    parser.add_argument("--epochs", type=int, default=10, help="training steps per timing")
    parser.add_argument("--rounds", type=int, default=11, help="timings per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (quartiles of the paired ratios)")
    torch.set_num_threads(args.threads)
    print(
        f"deep-MLP step: 1-10x64-1, {N_POINTS} points, E={args.E}, {args.epochs} steps per "
        f"timing, {args.rounds} rounds, {args.threads} thread(s), torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    header = (
        f"{'activation':10s} {'variant':8s} {'ms/step':>8s} {'ratio':>6s} {'(q1-q3)':>13s} "
        f"{'fn alone us':>11s}"
    )
    print(header)
    print("-" * len(header))
    for activation in args.activations:
        for r in bench(activation, args.E, args.epochs, args.rounds):
            print(
                f"{r['activation']:10s} {r['variant']:8s} {r['ms_per_step']:8.2f} "
                f"{r['ratio']:6.3f} ({r['q1']:.3f}-{r['q3']:.3f}) {r['fn_us']:11.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
