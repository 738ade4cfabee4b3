# ecodask: `make demo` and `make test` each do all their own set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
UV        := $(VENV)/bin/uv
PY        := $(VENV)/bin/python
UV_VERSION := 0.13.9
DEMO_OUT  ?= demo-output
BENCH_ARGS ?=
BENCH_SUITES ?= hubei30m texture texture_budget drivers figures transaction stage_commit remote_inputs remote_run driver_windows zone_burn terrain tables stage_tables zones uncertainty cell_tradeoffs flow_idle manifest_size scale_effect
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_LOGGING_LEVEL ?= WARNING
export UV_NO_PROGRESS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

# A Python 3.12 interpreter: PYTHON=... wins, else the first python3.12 that runs.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
            "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

.PHONY: help venv bytecode browser azurite demo test test-fast bench bench-national lint lint-imports clean
help:
	@echo "make demo   - set up, generate a synthetic region and run the whole flow on it (DEMO_OUT=$(DEMO_OUT))"
	@echo "make test   - set up and run the test suite"
	@echo "make test-fast - set up and run the quick tests (not marked slow: no servers, flows, process"
	@echo "              clusters, whole-run subprocesses, browsers, S3, kills or big regions); a few minutes"
	@echo "make bench  - set up (with the bench group: baselines) and run every benchmark suite in BENCH_SUITES"
	@echo "              ($(BENCH_SUITES): Hubei-30m, driver analysis, land-use overview + figures"
	@echo "              stage, output transaction, stage commits (Icechunk against manifests, disk and S3),"
	@echo "              input rasters read in place from S3, a whole run's requests to S3 by chunk size,"
	@echo "              the drivers read onto the analysis grid window by window,"
	@echo "              slope + aspect, the real texture: Wuhan's land cover tiled,"
	@echo "              tables through Arrow, the land pass for thousands of zones, the Monte Carlo of ESV,"
	@echo "              the scale effect of the Geographical Detector);"
	@echo "              BENCH_SUITES=drivers (or figures) for one;"
	@echo "              BENCH_ARGS go to every suite ('--repeats 1'), or '--suite foundation' runs that one only"
	@echo "make bench-national - set up (bench group) and run the whole flow on a synthetic country of 1.07e10 px"
	@echo "              a year, 2 years (30-60+ min, ~4 GB under bench-output/national); BENCH_ARGS='--scale 0.01' to try,"
	@echo "              '--scale 0.01 --years 39' for the archive's 39 years at 1 % extent (~4 min)"
	@echo "make azurite - install Azurite (npm, into .node/), the Azure Blob Storage emulator of the az:// tests"
	@echo "make lint   - ruff and the import contracts of the layers (make lint-imports)"

# The virtual environment, rebuilt when the lock changes.
$(VENV)/.installed: pyproject.toml uv.lock
	@test -n "$(PYTHON)" || { echo "error: Python 3.12 not found; install it or pass PYTHON=/path/to/python3.12" >&2; exit 1; }
	@test -x $(PY) || "$(PYTHON)" -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --compile-bytecode --python $(PY)
	@touch $@

venv: $(VENV)/.installed

# Bytecode compiled ahead: where PYTHONDONTWRITEBYTECODE is set, every process (workers, servers,
# each command) would otherwise compile every module it imports from source, seconds each.
bytecode: venv
	@$(PY) -m compileall -q ecodask flows

demo: venv bytecode
	$(VENV)/bin/ecodask demo --out "$(DEMO_OUT)"

# The browser test renders the Prefect UI in headless Chromium (Debian's package); installed when
# missing and this user may (root with apt), else that one test is skipped with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "note: chromium not installed; the Prefect UI browser test will be skipped"; }

# Azurite, Microsoft's Azure Blob Storage emulator (npm), for the tests of az:// outputs: installed
# into .node/ when missing and npm is there, else those tests are skipped (failed in CI) with the reason.
AZURITE_VERSION := 3.37.0
azurite:
	@test -x .node/node_modules/.bin/azurite-blob || { command -v npm >/dev/null 2>&1 && \
	  npm install --silent --no-audit --no-fund --prefix .node azurite@$(AZURITE_VERSION) >/dev/null || \
	  echo "note: npm not found; the Azure Blob Storage tests will be skipped"; }

# Two pytest workers, each taking whole files (module fixtures built once): the suite's long tests
# wait on subprocesses and servers much of the time.
test: venv bytecode browser azurite lint-imports
	$(PY) -m compileall -q tests
	$(PY) -m pytest -q -n 2 --dist loadfile

# The quick subset, for while you work: the tests not marked slow (pyproject.toml, pytest markers).
test-fast: venv bytecode lint-imports
	$(PY) -m compileall -q tests
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow"

# The benchmarks need the `bench` dependency group (baselines) on top of the locked environment.
bench: venv
	$(UV) sync --frozen --compile-bytecode --group bench --python $(PY)
	@set -e; if [[ " $(BENCH_ARGS)" == *" --suite"* ]]; then \
	  echo "$(PY) -m benchmarks.run $(BENCH_ARGS)"; $(PY) -m benchmarks.run $(BENCH_ARGS); \
	else for s in $(BENCH_SUITES); do \
	  echo "$(PY) -m benchmarks.run --suite $$s $(BENCH_ARGS)"; $(PY) -m benchmarks.run --suite $$s $(BENCH_ARGS); \
	done; fi

# The whole flow at national scale: data generated once (cached), stage times, peak memory, projection.
bench-national: venv
	$(UV) sync --frozen --compile-bytecode --group bench --python $(PY)
	$(PY) -m benchmarks.national $(BENCH_ARGS)

lint: venv lint-imports
	$(VENV)/bin/ruff check .

# The layers of the code (pyproject.toml, [tool.importlinter]): each folder imports only those below it.
lint-imports: venv
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) .node .prefect demo-output .pytest_cache
