"""The speed half of ``scripts/check_cuda.sh``: the RL agents on the GPU against the CPU, and
the ratios to quote from both benchmarks.

RL: each agent's default CartPole ``Config`` (diagnostics off; DQN learns from step 256 instead
of 10k, so that a short run includes its updates), an ensemble of ``--agents`` agents,
``--steps`` environment steps each, once with ``device="cpu"`` (one thread, as ``make
bench-rl``) and once with ``device="cuda"``; the rate is ``AgentRun.speed["env_steps_per_s"]``
(environment steps over all agents per second of the whole call). The environments and the
random draws stay on the CPU whatever the device, so a small network on a GPU mostly waits for
transfers: these numbers say how much, not that the GPU is the better place for CartPole.

Ensemble engine: from ``ensemble_cuda.json`` / ``ensemble_cpu.json`` (written by
``benchmarks/bench_ensemble.py``), per ensemble size E, actlab's seconds per model against the
loop of separate models and torch.func on the same device, and actlab on the GPU against actlab
on the CPU at the largest E both ran.

    python scripts/check_cuda.py --out bench-results/cuda-check
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def rl_speed(agents: int, steps: int) -> list[dict]:
    import importlib

    import torch

    rows = []
    for name in ("ppo", "dqn", "pqn"):
        module = importlib.import_module(f"actlab.rl.{name}")
        for device in ("cpu", "cuda"):
            threads = torch.get_num_threads()
            if device == "cpu":
                torch.set_num_threads(1)
            extra = {"learning_starts": 256} if name == "dqn" else {}
            cfg = module.Config(
                seeds=tuple(range(agents)), total_steps=steps, diag_every=0, device=device, **extra
            )
            run = module.main(cfg)
            torch.set_num_threads(threads)
            rows.append({"agent": name, "device": device, "agents": agents, **run.speed})
            print(f"  {name} on {device}: {run.speed['env_steps_per_s']:.0f} env steps/s")
    return rows


def _per_model(rows: list[dict]) -> dict[tuple[str, int], float]:
    return {(r["method"], r["E"]): r["seconds_per_model"] for r in rows if "E" in r}


def summary(out: Path, rl: list[dict]) -> list[str]:
    lines = []
    for device in ("cuda", "cpu"):
        path = out / f"ensemble_{device}.json"
        if not path.exists():
            lines.append(f"engine on {device}: no {path.name}")
            continue
        rows = json.loads(path.read_text())
        t = _per_model(rows)
        lines.append(
            f"engine on {device} (1-10x64-1, 200 points, Adam; fp32 matmul "
            f"{rows[0]['matmul_gflops']:.0f} GFLOP/s):"
        )
        for E in sorted({E for _, E in t}):
            mine = t.get(("actlab", E))
            if mine is None:
                continue
            parts = [f"E={E}: actlab {mine * 1e3:.2f} ms/model"]
            for other in ("loop", "torch.func", "actlab-autograd"):
                if (other, E) in t:
                    parts.append(f"{t[other, E] / mine:.2f}x the speed of {other}")
            lines.append("  " + ", ".join(parts))
    gpu_path, cpu_path = out / "ensemble_cuda.json", out / "ensemble_cpu.json"
    if gpu_path.exists() and cpu_path.exists():
        gpu = _per_model(json.loads(gpu_path.read_text()))
        cpu = _per_model(json.loads(cpu_path.read_text()))
        both = sorted(E for m, E in cpu if m == "actlab" and ("actlab", E) in gpu)
        for E in both:
            ratio = cpu["actlab", E] / gpu["actlab", E]
            lines.append(f"actlab at E={E}: the GPU is {ratio:.1f}x the CPU's speed per model")
    rates = {(r["agent"], r["device"]): r["env_steps_per_s"] for r in rl}
    for agent in ("ppo", "dqn", "pqn"):
        if (agent, "cpu") in rates and (agent, "cuda") in rates:
            cpu, gpu = rates[agent, "cpu"], rates[agent, "cuda"]
            lines.append(
                f"{agent}, {rl[0]['agents']} agents on CartPole: {gpu:.0f} env steps/s on the "
                f"GPU, {cpu:.0f} on one CPU thread (GPU/CPU {gpu / cpu:.2f})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/cuda-check"))
    parser.add_argument("--agents", type=int, default=10, help="agents per ensemble")
    parser.add_argument("--steps", type=int, default=2048, help="env steps per agent")
    parser.add_argument("--no-rl", action="store_true", help="only summarise the benchmarks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rl = [] if args.no_rl else rl_speed(args.agents, args.steps)
    (args.out / "rl_speed.json").write_text(json.dumps(rl, indent=2))
    print("\n".join(summary(args.out, rl)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
