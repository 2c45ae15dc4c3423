# One entry per task. Every target creates/updates the virtual environment first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-reliability lint lint-docker typecheck bench serve clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: a CUDA build that also runs on the CPU.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	# Packages that ship the embedded pretrained weights; their own pins are not needed.
	$(PY) -m pip install --quiet --no-deps gan-face-generate==1.1.1 facenet-pytorch==2.6.0
	touch $(STAMP)

demo: $(STAMP)  ## in-silico closed-loop evolution against a real server; writes out/demo/
	$(PY) -m evostim demo --out out/demo

test: $(STAMP)  ## the whole test suite (slow benchmarks excluded)
	$(PY) -m pytest

test-reliability: $(STAMP)  ## the long runs: schemathesis over every endpoint, 20 kill -9's under load (SQLite, Postgres)
	$(PY) -m pytest -m reliability

lint: $(STAMP)  ## ruff, and no function above cyclomatic complexity 10 as radon counts it (grade B or better)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/xenon --max-absolute B evostim server optimizers generators clients

lint-docker: $(STAMP)  ## no Docker engine needed: hadolint on the Dockerfile, the compose file against its schema
	$(VENV)/bin/hadolint docker/Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)  ## performance figures, each side by side with its reference
	$(PY) benchmarks/server_overhead.py
	$(PY) benchmarks/optimizer_step.py
	$(PY) benchmarks/render.py
	$(PY) benchmarks/search_quality.py $(BENCH_ARGS)
	$(PY) benchmarks/subspace.py $(BENCH_ARGS)
	$(PY) benchmarks/sample_efficiency.py $(BENCH_ARGS)
	$(PY) benchmarks/sweep_throughput.py

serve: $(STAMP)
	$(PY) -m evostim serve

clean:
	rm -rf $(VENV) data out
