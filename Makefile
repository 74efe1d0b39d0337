# One-command entry points. Both set everything up on a fresh machine first.
#   make run   - start the local stack (moto server + chalice local on 127.0.0.1:8000,
#                the dashboard on 127.0.0.1:8001)
#   make test  - lint, type-check, check the import layers and run the test suite
#                (without the soaks marked slow)
#   make test-slow - run only the soaks marked slow (the 200-phone SIP edge minute)
#   make synth - synthesise the CDK app (every stage) offline into infra/cdk.out/

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint setup system-deps dashboard bench synth clean

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
	$(VENV)/bin/lint-imports --no-cache

# synth packages the Lambda once (chalice downloads its wheels into .chalice/deployments/
# here, at set-up time), so the infra tests synthesise from that cache without the network.
test: lint dashboard synth
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

run: setup dashboard
	$(PY) -m tools.devstack --demo-traffic

dashboard: setup
	$(PY) dashboard/build.py

bench: setup
	$(PY) -m bench.webhook

# No AWS credentials needed: env-agnostic stacks, a dummy region for `chalice package`.
synth: setup
	rm -rf infra/cdk.out
	@for stage in dev prod; do \
	  CDK_DEFAULT_REGION=$${CDK_DEFAULT_REGION:-us-east-1} AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 \
	  $(PY) -m infra.app -c stage=$$stage || exit 1; \
	done
	@ls infra/cdk.out/*.template.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
