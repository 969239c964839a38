# One verb per target. `make dev` serves the example graphs; `make test` runs the whole suite on
# SQLite and, at the same time, the HTTP, state and run tests on PostgreSQL (tests/services.py: a
# fresh database per test on AGENT_RUNTIME_TEST_POSTGRES, else 127.0.0.1:5432; skipped without one).
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
POSTGRES_LOG ?= .pytest-postgres.log

# The two passes run at once: most of the suite waits on sockets, subprocesses and sleeps, not
# on the CPU, so together they take little longer than the longer one. The Postgres pass writes
# to $(POSTGRES_LOG), printed after the SQLite pass; either failing fails the target. Bytecode
# is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE): else pytest
# rewrites the asserts of every plugin's modules, and each server process the tests start
# compiles the project, anew each time.
test: install
	@env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -p no:cacheprovider \
		--backend postgres -m "not sqlite_only" $(POSTGRES_TESTS) > $(POSTGRES_LOG) 2>&1 & \
	postgres=$$!; \
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest; sqlite=$$?; \
	wait $$postgres; pg=$$?; \
	echo; echo "== the same HTTP, state and run tests on PostgreSQL ($(POSTGRES_LOG)):"; \
	if [ $$pg -eq 0 ]; then tail -n 3 $(POSTGRES_LOG); else cat $(POSTGRES_LOG); fi; \
	[ $$sqlite -eq 0 ] && [ $$pg -eq 0 ]

lint: install
	$(BIN)/ruff check src tests graphs benchmarks
	$(BIN)/ruff format --check src tests graphs benchmarks

format: install
	$(BIN)/ruff format src tests graphs benchmarks
	$(BIN)/ruff check --fix src tests graphs benchmarks

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_targets.py

clean:
	rm -rf $(VENV) .agent-runtime .pytest_cache .mypy_cache .ruff_cache
