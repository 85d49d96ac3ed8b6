# jumpstream: every command a developer or CI needs. `make test` sets itself up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
ENV ?= dev
# Extra CDK context for synth/bootstrap/deploy/destroy, e.g. CONTEXT="-c model_id=... -c region=eu-west-1".
CONTEXT ?=
CDK_FLAGS := -c env=$(ENV) $(CONTEXT) --no-notices

# The project's venv first on PATH, for every tool the targets run.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Node 20 is what these machines have; jsii warns about it on every call otherwise.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: setup test lint synth credentials bootstrap deploy destroy demo local bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt lambda/streamer/requirements.txt lambda/streamer/requirements-tokenizer.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest

synth: setup
	$(CDK) synth $(CDK_FLAGS) --quiet

# What talks to AWS needs credentials: say how to give them before CDK fails to find an account.
credentials: setup
	@$(PY) -m jumpstream.signing

bootstrap: credentials
	$(CDK) bootstrap $(CDK_FLAGS)

deploy: credentials
	$(CDK) deploy $(CDK_FLAGS) 'jumpstream-$(ENV)-*'

# cdk destroy asks before it deletes; without a terminal nobody can answer, so say so at once.
# FORCE=1 deletes without asking (scripts, CI).
destroy: credentials
	@test -n "$(FORCE)" || test -t 0 || { echo "make destroy: no terminal to confirm the deletion on; FORCE=1 deletes without asking" >&2; exit 2; }
	$(CDK) destroy $(CDK_FLAGS) $(if $(FORCE),--force) 'jumpstream-$(ENV)-*'

demo: setup
	$(PY) -m jumpstream demo

local: setup
	$(PY) -m jumpstream local

bench: setup
	$(PY) -m jumpstream bench

clean:
	rm -rf cdk.out .pytest_cache .ruff_cache .hypothesis
