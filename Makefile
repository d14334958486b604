# One-word entry points. Each creates .venv on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Two workers on the 2-core machine; `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= auto

.PHONY: venv lint test test-fast bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check service tests bench alembic
	$(BIN)/ruff format --check service tests bench alembic
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# pytest exits 5 when it collects nothing: make treats that as the failure it is.
test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

test-fast: $(STAMP)
	$(BIN)/pytest -x -q -m "not install"

bench: $(STAMP)
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.analytics
	$(BIN)/python -m bench.forecast
	$(BIN)/python -m bench.walk
	$(BIN)/python -m bench.alerts
	$(BIN)/python -m bench.delivery
	$(BIN)/python -m bench.steady
	$(BIN)/python -m bench.startup
	$(BIN)/python -m bench.soak
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.summary

demo: $(STAMP)
	$(BIN)/creditwatch demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
