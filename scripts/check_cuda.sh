#!/usr/bin/env bash
# The GPU check of --device cuda (issue 17, "Scale-out"): on a machine with an NVIDIA GPU, the
# device tests (engine, experiments, RL agents and a sweep on CUDA against the CPU), the engine's
# own tests, and the speed of the ensemble engine and of the RL agents on the GPU against the CPU.
# Estimated at 5 minutes on the lent H200 (not yet run on a GPU: no session so far had one).
# Everything it writes goes to $OUT (default bench-results/cuda-check):
#   env.txt           GPU, driver, Python and PyTorch versions
#   pytest.log        pytest -ra of tests/test_device.py and tests/test_engine.py
#   ensemble_cuda.json, ensemble_cpu.json   benchmarks/bench_ensemble.py on each device
#   rl_speed.json     scripts/check_cuda.py: each agent's env steps/s on the GPU and the CPU
#   summary.txt       the ratios to quote (also printed last)
#
# The lent machine (this project's device tool) has no internet and its own Python: python3 with
# a CUDA build of PyTorch 2.11 (the CPU wheel pinned in pyproject.toml is 2.13; nothing in the
# device path depends on the difference), numpy, scipy, pandas, pyarrow, matplotlib, markdown
# and pytest, but not gymnasium, MinAtar or latex2mathml. So, here, once, fetch those four as
# pure-Python wheels into .whl/ (git-ignored through .git/info/exclude):
#     scripts/check_cuda.sh --fetch-wheels
# then run it there with the wheels carried: command "bash scripts/check_cuda.sh", carry
# [".whl"], timeout_s 540. actlab itself is imported from src/ (no pip install: pip would want
# torch==2.13 from an index it cannot reach).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux2014_x86_64 -d .whl \
        gymnasium==1.4.0 MinAtar==1.0.15 farama-notifications==0.0.6 latex2mathml==3.81.1
    exit $?
fi

OUT="${OUT:-$PWD/bench-results/cuda-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/actlab-site .whl/*.whl || exit 1
    export PYTHONPATH="$PWD/src:/tmp/actlab-site${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg

{
    nvidia-smi -L 2>&1
    "$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
} 2>&1 | tee "$OUT/env.txt"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || { echo "no CUDA here: nothing to check" | tee -a "$OUT/env.txt"; exit 1; }

status=0
echo "== tests (device and engine)"
"$PY" -m pytest -q -ra -p no:cacheprovider tests/test_device.py tests/test_engine.py 2>&1 \
    | tee "$OUT/pytest.log" || status=1

echo "== engine benchmark"
"$PY" benchmarks/bench_ensemble.py --device cuda --E 100 1000 --epochs 200 \
    --json "$OUT/ensemble_cuda.json" 2>&1 | tee "$OUT/bench_cuda.log" || status=1
OMP_NUM_THREADS=8 "$PY" benchmarks/bench_ensemble.py --device cpu --E 100 --epochs 50 \
    --methods loop torch.func actlab --json "$OUT/ensemble_cpu.json" 2>&1 \
    | tee "$OUT/bench_cpu.log" || status=1

echo "== RL agents and summary"
"$PY" scripts/check_cuda.py --out "$OUT" 2>&1 | tee "$OUT/summary.txt" || status=1
exit $status
