# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# axe-core (npm) for the accessibility test: injected by Playwright into Chromium.
AXE_VERSION := 4.14.1
AXE := build/axe/.axe-core-$(AXE_VERSION)

.PHONY: demo test lint install clean consistency package fuzz tutorials spark

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(AXE):
	rm -rf build/axe && mkdir -p build/axe
	npm install --prefix build/axe --no-audit --no-fund --no-package-lock --silent axe-core@$(AXE_VERSION)
	touch $(AXE)

install: $(STAMP) $(AXE)

demo: $(STAMP)
	$(BIN)/policetrial demo --out out/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# Both cores: the suite's long tests (the tutorials, the demos) run side by side. The Spark
# tests (marker `spark`) run on their own, below: Spark's start and its per-query stages
# would take the suite past its ten minutes.
test: lint $(AXE)
	$(BIN)/python -m pytest -n 2 -m "not spark"

# The outcomes on Spark in local mode: DuckDB, PostgreSQL and Spark on 200 generated forces,
# the emitted Spark script and the CLI (several minutes; CI runs it after the suite).
spark: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m spark

# The report's numbers reconcile for 20 synthetic forces of each of two protocols (a few
# minutes; CI runs it after the suite).
consistency: $(STAMP)
	POLICETRIAL_CONSISTENCY_SEEDS=20 $(BIN)/python -m pytest -n 2 tests/test_report_consistency.py

# Every tutorial page's commands, run in order (the suite runs the main tutorial's).
tutorials: $(STAMP)
	POLICETRIAL_TUTORIALS=all $(BIN)/python -m pytest -n 2 tests/test_tutorial.py

# 10,000 generated extracts, every kind and every damage (several minutes; CI runs it after
# the suite, which runs 240).
fuzz: $(STAMP)
	POLICETRIAL_FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest -n 2 tests/test_import_fuzz.py -k fuzzed

# The wheel, installed in a fresh virtual environment, runs the demo.
package: $(STAMP)
	rm -rf build/package && mkdir -p build/package
	$(BIN)/python -m build --outdir build/package .
	$(PYTHON) -m venv build/package/venv
	build/package/venv/bin/python -m pip install --quiet build/package/policetrial-*.whl
	cd build/package && venv/bin/policetrial demo --out demo

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
