# fedgate: one command to serve the demo, one to run every test.
#   make serve   installs fedgate alone into .venv (first time; no test extras) and runs the gateway
#                on config/demo.yaml
#   make test    installs (first time), then lint, type-check and the whole test suite
#   make install the Python venv with the test extras, and the JS SDK the tests drive (npm ci)
#   make bench   runs the benchmarks in bench/ (prints ratios against peers)

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= config/demo.yaml

JS      = tests/js

.PHONY: install serve test lint typecheck pytest bench clean

install: $(VENV)/.installed $(JS)/node_modules/.installed

# The JavaScript SDK the tests drive; reinstalled whenever the lock file changes.
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	@command -v npm >/dev/null || { echo "make: npm is needed for the JS SDK tests (apt-get install nodejs npm)" >&2; exit 1; }
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# What running needs, and nothing more: fedgate and its dependencies, without the test extras.
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

serve: $(VENV)/.runtime
	$(BIN)/fedgate serve --config $(CONFIG)

lint: install
	$(BIN)/ruff check gateway plugins tests bench
	$(BIN)/ruff format --check gateway plugins tests bench

typecheck: install
	$(BIN)/mypy

# The suite over one pytest-xdist worker per CPU, four at most (PYTEST_WORKERS=0: all in one process):
# every test takes its own free ports, temporary directories, Redis key prefix and databases. Each
# test file runs whole on one worker (--dist loadfile), in order, so a module's shared servers start
# once and its tests see them exactly as in a single process.
PYTEST_WORKERS ?= auto
pytest: install
	$(BIN)/pytest -n $(PYTEST_WORKERS) --maxprocesses=4 --dist loadfile

test: lint typecheck pytest

bench: install
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(JS)/node_modules
