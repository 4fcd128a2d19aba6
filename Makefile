# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: help install install-cuda demo test test-all test-numerics lint format bench datasets table-offline table-hopper reproduce-riql reproduce-ro2o reproduce-h2o reproduce-l2m reproduce-hamster clean

# `make` alone: every target with what it does (the `## ` text on its line).
help:
	@grep -E '^[a-z0-9-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | sed -E 's/^([a-z0-9-]+):.*## (.*)/\1\t\2/' | expand -t 20

install: $(STAMP)  ## create .venv and install jaxrl with its test tools (every other target does this first)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# For an NVIDIA GPU: JAX's CUDA wheels (not constrained: they must match the machine's driver).
install-cuda: install  ## add JAX's CUDA 12 wheels (NVIDIA GPU)
	$(BIN)/python -m pip install -q -e ".[cuda]"

# IQL, 5 seeds in one vmapped program, on the generated Pendulum medium-replay dataset.
demo: install  ## the main job: IQL, 5 seeds in one program, on the generated Pendulum dataset (table, plot, checkpoint)
	$(BIN)/python -m jaxrl.train --config experiments/demo.yaml --overwrite

# Tests run in parallel processes (pytest-xdist), a test file per process at a time, so the tests that share a
# module fixture share one computation of it. (xdist_group marks do not group under pytest 9.2 + xdist 3.8.)
PYTEST := $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# Two tiers, one definition: the `slow` mark (tests/conftest.py checks that each says why, and that a learning
# test names its fast companion). `make test` is the fast tier; `make test-all` runs everything (CI does).
# List them: `pytest --collect-only -q` (fast tier) and `pytest --collect-only -q -m slow` (full tier only).
# The fast tier compiles with LLVM at optimisation level 1: XLA compiles about 30% faster and, measured
# (2026-12-06: whole training states of IQL offline, IQL offline-to-online, CQL and online SAC runs, and the
# fast companions' critics), the programs compute bit for bit what the default level 3 computes (XLA:CPU
# allows LLVM no reassociation of float arithmetic). make test-all and make test-numerics keep the default.
FAST_XLA := --xla_backend_optimization_level=1
test: install  ## the fast test tier (< 5 min on 2 cores)
	XLA_FLAGS="$$XLA_FLAGS $(FAST_XLA)" $(PYTEST)

test-all: install  ## every test, the full tier included (what CI runs)
	$(PYTEST) -m ""

# The tests that compare two programs' numbers, once more under other CPU kernels: AVX2 (a CPU without
# AVX-512) and SSE4.2 (a different summation order from either). They must hold on any machine.
test-numerics: install  ## the tests comparing two programs, again under AVX2 and SSE4.2 CPU kernels
	for isa in AVX2 SSE4_2; do XLA_FLAGS="$$XLA_FLAGS --xla_cpu_max_isa=$$isa" $(PYTEST) -m numerics || exit 1; done

lint: install  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# d3rlpy 2.8.1 pins gymnasium==1.0.0, which our gymnax 1.0.1 (>=1.1,<1.4) excludes, so no resolver can install
# both: d3rlpy goes in without its dependencies (the bench extra lists the others; the benchmark uses no
# gymnasium environment of d3rlpy's). The bench extra's torch==2.13.0 is the CPU build available here.
D3RLPY := d3rlpy==2.8.1
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m pip install -q --no-deps $(D3RLPY)
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## benchmarks against d3rlpy and earlier commits, into BENCHMARKS.md
	$(BIN)/python scripts/bench.py --output BENCHMARKS.md

# Every offline algorithm x Pendulum dataset level, 5 seeds each: runs/tables/offline-pendulum/.
# Pass SUITE=<dir of <level>.hdf5 files> ENV=<env> for a brax suite or D4RL files (GPU scale).
table-offline: install  ## every offline algorithm x the Pendulum dataset levels (SUITE=, ENV= for others)
	$(BIN)/python scripts/table.py experiments/tables/offline_pendulum.yaml $(if $(SUITE),--suite $(SUITE)) $(if $(ENV),--env $(ENV))

# BC, IQL, CQL and TD3+BC on the MuJoCo-physics hopper `small` suite's medium-replay level (generated first if
# missing: ~45 min on 2 cores), 3 seeds x 50k updates (~40 min), with the do-nothing and random baselines.
table-hopper: install  ## BC, IQL, CQL, TD3+BC on the MuJoCo hopper small suite
	$(BIN)/python scripts/table.py experiments/tables/offline_hopper_small.yaml

# RIQL Tables 1 and 2 (random / adversarial corruption) on the Pendulum suite, with the paper's claims checked.
# ARGS=--hopper: the same tables on the brax hopper small suite (CPU); ARGS=--full: paper scale on the brax
# full medium-replay suites (for a GPU).
reproduce-riql: install  ## RIQL's Tables 1 and 2 (ARGS=--hopper, ARGS=--full)
	$(BIN)/python scripts/reproduce_riql.py $(ARGS)

# RO2O's offline-to-online comparison (experiments/tables/ro2o_*.yaml); ARGS=--full for the GPU-scale spec.
reproduce-ro2o: install  ## RO2O's offline-to-online comparison (ARGS=--full)
	$(BIN)/python scripts/reproduce_ro2o.py $(ARGS)

reproduce-h2o: install  ## H2O's sim-to-real comparison and the scarce-data table (ARGS=--full)
	$(BIN)/python scripts/reproduce_h2o.py $(ARGS)

# L2M's continual fine-tuning comparison on PathWorld (pretrain a multi-task DT, then 7 methods through a
# 4-task sequence without push): experiments/results/l2m/. ARGS=--full: the 10-task sequence and the reference's model size (GPU).
reproduce-l2m: install  ## L2M's continual fine-tuning comparison on PathWorld (ARGS=--full)
	$(BIN)/python scripts/reproduce_l2m.py $(ARGS)

# HAMSTER's hierarchical-vs-flat comparison on PathWorld (in-domain demos, off-domain paths, 9 methods x 6 splits,
# 3 seeds): experiments/results/hamster/. ARGS=--full: 64 px, more data and steps (GPU).
reproduce-hamster: install  ## HAMSTER's hierarchical-vs-flat comparison on PathWorld (ARGS=--full)
	$(BIN)/python scripts/reproduce_hamster.py $(ARGS)

datasets: install  ## generate the default Pendulum suite ahead of time
	$(BIN)/python scripts/make_datasets.py --env gymnax/Pendulum-v1

clean:  ## remove runs/ and pytest's cache
	rm -rf runs .pytest_cache
