# The two commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL_TIMEOUT ?= 600

# Unit tests, then every notebook re-executed by nbval in the smoke profile.
# The guard plugin fails a dead kernel within seconds instead of after the cell timeout.
NBVAL_ENV  := COURSE_PROFILE=smoke COURSE_LIVE_PLOT=0 COURSE_CHECK_FINDINGS=1
NBVAL_ARGS := --nbval-lax --nbval-current-env \
              --nbval-sanitize-with course_utils/sanitize.cfg \
              --nbval-cell-timeout=$(NBVAL_TIMEOUT) -p tests.nbval_guard

.PHONY: setup run test lint format unit nbval lab clean notebooks release verify bench

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@# An editable install skips pyproject's data-files: JupyterLab's widget-state setting.
	install -D -m 644 jupyter-config/course_utils.json \
	  $(VENV)/share/jupyter/lab/settings/overrides.d/course_utils.json
	touch $(STAMP)

# `course run` sets COURSE_CHECK_FINDINGS=1: a finding that does not hold fails the build.
run: setup
	$(BIN)/course run notebooks --out build

# Lint first: a style or type error fails in seconds, before minutes of tests. Then the
# fast unit tests and nbval side by side, one core each (nbval's output is printed after
# the unit tests'), then the slow tests, which keep two cores busy on their own
# (`course verify -j 2`, two kernels at a time).
test: setup lint
	@mkdir -p build; $(MAKE) --no-print-directory nbval > build/nbval.log 2>&1 & nbval=$$!; \
	  $(MAKE) --no-print-directory unit UNIT_MARKS="not slow"; fast=$$?; \
	  wait $$nbval; nbval=$$?; cat build/nbval.log; \
	  [ $$fast -eq 0 ] && [ $$nbval -eq 0 ] && $(MAKE) --no-print-directory unit UNIT_MARKS=slow

# ruff (lint and format check) and mypy over the package and the tests (pyproject.toml).
LINT_PATHS := course_utils tests benchmarks
lint: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# Apply ruff's fixes and formatting.
format: setup
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

# All unit tests, or those UNIT_MARKS selects (a pytest -m expression: "not slow", slow);
# the ten slowest are listed, so that a CI log shows where the time goes.
UNIT_MARKS ?=
unit: setup
	@COURSE_CHECK_FINDINGS=1 $(BIN)/python -m pytest --doctest-modules tests course_utils \
	  --durations=10 $(if $(UNIT_MARKS),-m "$(UNIT_MARKS)"); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "FAIL: pytest collected no unit tests"; fi; exit $$rc

nbval: setup
	@$(NBVAL_ENV) $(BIN)/python -m pytest $(NBVAL_ARGS) notebooks; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "FAIL: nbval collected no notebooks"; fi; exit $$rc

# Re-execute the notebooks in the smoke profile and keep outputs only on checked cells.
notebooks: setup
	$(NBVAL_ENV) $(BIN)/course refresh notebooks

# Student release: solutions replaced by a NotImplementedError stub, outputs cleared.
release: setup
	$(BIN)/course release notebooks --out build/student

# Re-execute submitted notebooks in a sandbox: make verify SUBMISSIONS=submissions JOBS=2
SUBMISSIONS ?= submissions
JOBS ?= 1
verify: setup
	$(BIN)/course verify $(SUBMISSIONS) --out build/gradebook.csv -j $(JOBS)

BENCH_ARGS ?=
# Data pipeline: classic vs fast loader, epoch vs pure compute, fit() vs a hand loop.
bench: setup
	$(BIN)/python benchmarks/data_pipeline.py $(BENCH_ARGS)

lab: setup
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf build .pytest_cache .course_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
