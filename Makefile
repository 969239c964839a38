# One verb per target. `make dev` serves the example graphs; `make test` runs the whole suite on
# SQLite, then the HTTP, state and run tests again on PostgreSQL (tests/services.py: a fresh
# database per test on AGENT_RUNTIME_TEST_POSTGRES, else 127.0.0.1:5432; they skip without one).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install dev serve test lint format typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: install
	$(BIN)/agent-runtime dev --no-browser

serve: install
	$(BIN)/agent-runtime serve

POSTGRES_TESTS ?= tests/server tests/state tests/runs

test: install
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest --backend postgres $(POSTGRES_TESTS)

lint: install
	$(BIN)/ruff check src tests graphs benchmarks
	$(BIN)/ruff format --check src tests graphs benchmarks

format: install
	$(BIN)/ruff format src tests graphs benchmarks
	$(BIN)/ruff check --fix src tests graphs benchmarks

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_runs.py
	$(BIN)/python benchmarks/bench_delta.py --server

clean:
	rm -rf $(VENV) .agent-runtime .pytest_cache .mypy_cache .ruff_cache
