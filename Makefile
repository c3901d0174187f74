# All set-up happens here so that a fresh machine needs nothing but python3.11.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test bench lint services-start services-stop standalone clean stack-start stack-stop stack-status bench-stack

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv || true
	if test -x $(BIN)/uv; then \
	  $(BIN)/uv pip install --python $(BIN)/python -r requirements.txt -e . ; \
	else \
	  $(BIN)/pip install -r requirements.txt -e . ; \
	fi
	touch $(STAMP)

services-start: setup
	$(BIN)/python scripts/devservices.py start

services-stop:
	test ! -x $(BIN)/python || $(BIN)/python scripts/devservices.py stop

# The main job end to end on the embedded defaults: sample letters -> S3 endpoint -> DAG -> warehouse.
run: services-start
	$(BIN)/python scripts/demo.py

test: setup
	bash scripts/test.sh

bench: services-start
	$(BIN)/python bench/run.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

standalone: services-start
	bash scripts/standalone.sh

clean: services-stop
	rm -rf .run

# The production topology natively (docker-compose.yaml's services as processes): see README.
stack-start: setup
	$(BIN)/python scripts/stack.py start

stack-stop:
	test ! -x $(BIN)/python || $(BIN)/python scripts/stack.py stop

stack-status:
	$(BIN)/python scripts/stack.py status

# letters/s through imr_backfill on the native stack vs `imr parse --jobs 2` (make stack-start first)
bench-stack: setup
	$(BIN)/python bench/stack_bench.py
