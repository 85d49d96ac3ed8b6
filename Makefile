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

.PHONY: setup test lint synth credentials bootstrap deploy destroy demo local bench vendor clean

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

# The chat page's Markdown renderer (marked) and HTML sanitizer (DOMPurify), copied unchanged with
# their licences from the npm packages package.json pins into the page's static files; nothing
# is loaded from elsewhere. To update: change the versions in package.json, `npm install`,
# `make vendor`, commit all four; tests/streamer/test_chat_page_files.py checks the copies.
CHAT_VENDOR := lambda/streamer/streamer/static/vendor
vendor: node_modules/.installed
	mkdir -p $(CHAT_VENDOR)
	cp node_modules/marked/lib/marked.umd.js $(CHAT_VENDOR)/marked.umd.js
	cp node_modules/marked/LICENSE $(CHAT_VENDOR)/marked.LICENSE
	cp node_modules/dompurify/dist/purify.min.js $(CHAT_VENDOR)/purify.min.js
	cp node_modules/dompurify/LICENSE $(CHAT_VENDOR)/dompurify.LICENSE

clean:
	rm -rf cdk.out .pytest_cache .ruff_cache .hypothesis
