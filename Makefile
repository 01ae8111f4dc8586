# One command per job; each installs what it needs first (torch's CPU wheel before anything
# that depends on torch, so pip never pulls the CUDA build).
PY ?= python3
PIP = $(PY) -m pip install --quiet

.PHONY: install install-dev demo test lint bench eval weights

install:
	$(PIP) torch==2.13.0
	$(PIP) -e .

install-dev:
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

demo: install
	lam encode examples/texts -o demo-embeddings.npy
	$(PY) examples/demo.py

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: install-dev lint
	$(PY) -m pytest -q

bench: install-dev
	$(PY) benchmarks/bench_core.py

eval: install-dev
	lam eval --out results --name eval

weights: install-dev
	$(PY) -m lam.teacher lam/weights/default
