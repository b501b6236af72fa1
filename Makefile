# The two commands are `make run` and `make test`; everything else is what they are made of.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK := bash stack/stack.sh
CODE := app agents tables schemas db

.PHONY: install run run-workers test lint typecheck pytest stack-up stack-down stack-status bench bench-quick faults clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the packaging changes; the project itself is installed editable.
$(STAMP): setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The HTML page is tested in Debian's Chromium, driven by Playwright (no browser download).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

install: $(STAMP) $(CHROMIUM)

run: install stack-up
	$(BIN)/faust -A app worker -l info

# N workers of one APP_ID (default 2), splitting the generation shards and the agents' partitions; logs prefixed.
N ?= 2
run-workers: install stack-up
	bash stack/workers.sh $(N)

# Leaves the stack as it found it: stopped afterwards only if this run started it.
test: install
	@if $(STACK) is-up; then was_up=1; else was_up=0; fi; \
	$(STACK) up && $(MAKE) --no-print-directory lint typecheck pytest; status=$$?; \
	if [ $$was_up = 0 ]; then $(STACK) down; fi; \
	exit $$status

lint: install
	$(BIN)/ruff check $(CODE) tests faults

typecheck: install
	$(BIN)/mypy $(CODE)

pytest: install
	$(BIN)/pytest

# Benchmarks (figures never live in tests): issue 6's figures (a)-(f) in one table, also bench/results/*.json.
bench: install stack-up
	$(BIN)/python -m bench.run

bench-quick: install stack-up
	$(BIN)/python -m bench.run --quick

# Fault injection (issue 13): every scenario under load in both modes, one table, also faults/results/*.json.
# It stops, kills and wipes the local stack's services (Kafka's data included) and leaves them up.
faults: install stack-up
	$(BIN)/python -m faults.run

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

clean:
	rm -rf $(VENV) .faust-data .mypy_cache .ruff_cache .pytest_cache
