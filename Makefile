# One-command entry points. Both set everything up on a fresh machine first.
#   make run   - start the local stack (moto server + chalice local on 127.0.0.1:8000,
#                the dashboard on 127.0.0.1:8001)
#   make test  - lint, type-check and run the whole test suite

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint setup system-deps dashboard bench clean

setup: system-deps $(STAMP)

system-deps:
	@bash tools/system_deps.sh

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.2.1
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint dashboard
	$(PY) -m pytest

run: setup dashboard
	$(PY) -m tools.devstack --demo-traffic

dashboard: setup
	$(PY) dashboard/build.py

bench: setup
	$(PY) -m bench.webhook

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
