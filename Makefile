# All set-up happens here so that a fresh machine needs nothing but python3.11.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lock run test bench bench-discovery bench-discovery-events bench-archive bench-write-ceiling lint services-start services-stop standalone clean stack-start stack-stop stack-status bench-stack

setup: $(STAMP)

# Development installs the dev lock (runtime lock + test/dev tools); the image installs only the
# runtime lock, requirements.txt (Dockerfile).
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv || true
	if test -x $(BIN)/uv; then \
	  $(BIN)/uv pip install --python $(BIN)/python -r requirements-dev.txt -e . ; \
	else \
	  $(BIN)/pip install -r requirements-dev.txt -e . ; \
	fi
	touch $(STAMP)

$(BIN)/uv:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv

# Recompile both locks from the .in files for Python 3.11 on Linux (the image's platform): the runtime
# lock first, then the dev lock, which resolves with the runtime lock as a constraint
# (requirements-dev.in) so that the pins they share agree. Existing pins are kept unless an .in file
# changes; `make lock LOCK_ARGS=--upgrade` moves unpinned transitive dependencies to their newest
# releases. Each lock's header repeats the exact command under a line that says what the lock is for.
LOCK := uv pip compile --python-version 3.11 --python-platform x86_64-unknown-linux-gnu
lock: $(BIN)/uv
	$(BIN)/$(LOCK) $(LOCK_ARGS) requirements.in -o requirements.txt >/dev/null
	$(BIN)/$(LOCK) $(LOCK_ARGS) requirements-dev.in -o requirements-dev.txt >/dev/null
	for f in requirements.txt requirements-dev.txt; do \
	  if [ $$f = requirements.txt ]; then what="Runtime lock: the production image installs only this (Dockerfile)"; \
	  else what="Dev lock: the runtime lock plus test/dev tools; make setup installs it into .venv"; fi; \
	  { echo "# $$what."; echo "# Regenerate both locks with make lock (Makefile); this one comes from:"; \
	    grep -v '^# \(Runtime lock:\|Dev lock:\|Regenerate both locks\)' $$f; } > $$f.tmp && mv $$f.tmp $$f; \
	done

services-start: setup
	$(BIN)/python scripts/devservices.py start

services-stop:
	test ! -x $(BIN)/python || $(BIN)/python scripts/devservices.py stop

# The main job end to end on the embedded defaults: sample letters -> S3 endpoint -> DAG -> warehouse.
run: services-start
	$(BIN)/python scripts/demo.py

test: setup
	bash scripts/test.sh

# ARGS for a quick check, e.g. ARGS="--rounds 1 --pipeline-letters 300 --skip-discovery" (IMR_BENCH_API_PORT
# moves the bench's api-server off 28080).
bench: services-start
	$(BIN)/python bench/run.py $(ARGS)

# discover over 20,000 and 200,000 objects, plan on 200,000 pending keys (also part of `make bench`)
bench-discovery: services-start
	$(BIN)/python bench/discovery_bench.py

# the nightly discovery from S3 notifications vs listing, for KEYS existing keys + 500 new, and the
# reconciliation listing's time per 100k keys (docs/discovery.md)
KEYS ?= 200000
bench-discovery-events: services-start
	$(BIN)/python bench/discovery_events_bench.py --keys $(KEYS) $(ARGS)

# a warehouse of SIZE letters (built once per size in database imr_archive_SIZE; ARGS=--rebuild to
# redo, ARGS="--only insights" for one part): nightly run on it vs empty, Insights, sweep, size
SIZE ?= 1700000
bench-archive: services-start
	$(BIN)/python bench/archive_bench.py $(SIZE) $(ARGS)

# letters/s the warehouse absorbs from 2/8/32/64 lanes loading pre-parsed records (ARGS: --letters N
# --batch-size B --lanes 2,8,32,64)
bench-write-ceiling: services-start
	$(BIN)/python bench/write_ceiling.py $(ARGS)

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
