# Two commands for a newcomer: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test services lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[edge,cloud,dashboard]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/coldchain-demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# PostgreSQL, Mosquitto and Chromium: installed and started when missing (see the script).
services:
	@tests/services.sh

test: services lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/e2e_ingest.py
	$(BIN)/python bench/store_write.py
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/rtu_bus.py
	$(BIN)/python bench/custody.py
	$(BIN)/python bench/alerting.py
	$(BIN)/python bench/rules.py
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
