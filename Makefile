# The two commands of README.md: `make demo` runs the platform, `make test` runs every check CI runs.
# Each creates its own virtualenv (.venv) and installs what it needs, Debian packages included.

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DB ?= sqlite:///./demo.db

.PHONY: demo test lint typecheck pytest bench services

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trialstack demo --fresh --subjects 40 --seed 7 --db $(DEMO_DB)
	$(BIN)/trialstack serve --db $(DEMO_DB) --host 127.0.0.1 --port 8000

services:
	scripts/ensure-system-packages
	scripts/ensure-services

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) services
	$(BIN)/python -m pytest --durations=25

test: $(STAMP) services lint typecheck pytest

bench: $(STAMP) services
	$(BIN)/trialstack bench ledger
