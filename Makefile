# The two commands of the quick start are `make tutorial` and `make test`; both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The CPU build of PyTorch. On this project's machines pip finds the CPU wheel on local disk
# (PIP_FIND_LINKS). Elsewhere, point pip at a CPU-only index, e.g.
#   make test TORCH_PIP_ARGS="--index-url <your CPU wheel index>"
TORCH_SPEC     ?= torch==2.13.0
TORCH_PIP_ARGS ?=

.PHONY: install test bench lint tutorial clean check-rl bench-rl

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python scripts/check_torch.py
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ensemble.py --json bench-results/ensemble.json

# RL learning checks (issue 15), not in the fast suite: ~30 min for CartPole + MinAtar PQN on one
# core, hours with MinAtar DQN. A part: make check-rl CHECK_RL_ARGS="--agents pqn --envs cartpole"
CHECK_RL_ARGS ?=
check-rl: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python scripts/check_rl.py $(CHECK_RL_ARGS)

# RL speed against stable-baselines3 (the optional extra "bench"), returns side by side, profile.
BENCH_RL_ARGS ?= --learning --profile
bench-rl: $(STAMP)
	$(BIN)/python -c "import stable_baselines3" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet -e ".[bench]"
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_rl.py --json bench-results/rl.json \
		$(BENCH_RL_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

tutorial: $(STAMP)
	$(BIN)/actlab tutorial

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
