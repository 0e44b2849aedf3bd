# Two commands for a newcomer: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test services lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	@# Debian's python3 has no venv (ensurepip) until python3-venv is installed.
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  if [ "$$(id -u)" -eq 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  else echo "Python's venv module is missing: run sudo apt-get install -y python3-venv" >&2; exit 1; fi; }
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
	$(BIN)/lint-imports
	$(BIN)/mypy
	@# Listing queries live in cloud/views/: the API blueprints parse, call and map errors.
	@! grep -rn "select(" cloud/entrypoints/api || { echo "select( in an API blueprint: move the query to cloud/views/" >&2; exit 1; }

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
