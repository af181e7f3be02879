# The two quick-start commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test demo bench chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## Start web + worker + embedded Redis with development keys (Ctrl-C stops everything).
run: $(VENV)/.runtime
	APP_ENV=$${APP_ENV:-development} $(BIN)/python -m cli.dev

## Run the test suite against real Redis, real RQ workers and real gunicorn.
test: $(VENV)/.dev
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Play the member_check demo flow against `make run` (valid ID, then see the confirmation).
demo: $(VENV)/.runtime
	APP_ENV=development $(BIN)/flask --app app flows simulate member_check --field member_id=MEM123

## Benchmarks: figures as ratios against bounds measured in the same run.
bench: $(VENV)/.bench
	$(BIN)/python -m bench

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

## Fault injection and 10,000-case hostile-input runs (longer than `make test`).
chaos: $(VENV)/.dev
	HYPOTHESIS_PROFILE=chaos $(BIN)/python -m pytest -q tests/test_hostile.py tests/test_hostile_webhooks.py tests/test_api_input.py $(PYTEST_ARGS)
	CHAOS_SCALE=long $(BIN)/python -m pytest -q -s -p no:logging tests/test_chaos.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
