# tickarchive — common tasks. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TA := $(BIN)/tickarchive
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test check lint typecheck run demo bench loadtest up down status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml store/pglite/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	cd store/pglite && npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# the native fast path (Rust, built by maturin through pip): cargo from PATH, else ~/.cargo/bin
NATIVE_STAMP := $(VENV)/.native-installed
$(NATIVE_STAMP): $(STAMP) native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs) native/tickarchive_native.pyi
	PATH="$$PATH:$$HOME/.cargo/bin" $(BIN)/pip install --quiet ./native
	touch $(NATIVE_STAMP)

install: $(STAMP) $(NATIVE_STAMP)  ## create .venv with tickarchive (+ its native extension) installed, test TimescaleDB (npm ci)

test: install  ## lint, type-check and run the whole test suite against real servers
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

check: install  ## lint and type-check only
	$(BIN)/ruff check .
	$(BIN)/mypy

up: install  ## start the local stack (QuestDB + PostgreSQL) and migrate
	$(TA) up

down: install  ## stop the local stack
	$(TA) down

status: install  ## show the local stack
	$(TA) status

run: install  ## collect live Deribit into the local stack (needs internet)
	$(TA) up
	$(TA) collect

demo: install  ## the same pipeline offline: stack + simulator + collector (+ API)
	$(TA) demo

bench: install  ## print the benchmark figures
	$(TA) bench normalize --generate 200000 --runs 3
	$(TA) bench sim
	$(TA) bench archive

loadtest: install  ## the floor: 5,000 ticks/s for 10 minutes, zero loss
	$(TA) loadtest --rate 5000 --duration 600

clean:  ## remove the local stack's data (.local) — irreversible
	rm -rf .local
