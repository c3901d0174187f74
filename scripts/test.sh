#!/usr/bin/env bash
# The test command (README, .ci/run): lint, then every test on the real engines, which it starts
# (embedded PostgreSQL, moto's S3 endpoint, and for tests/stack the native production stack) and
# leaves running for the next run (`make services-stop`, `make stack-stop`).
# With arguments, pytest runs just those. Without, the native-stack tests run after the rest, so the
# stack's Airflow processes do not compete with the other tests for the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python scripts/devservices.py start >/dev/null
mkdir -p artifacts
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -ra --durations=15 "$@"
fi
.venv/bin/python -m pytest -ra --durations=15 --ignore=tests/stack
exec .venv/bin/python -m pytest -ra --durations=15 tests/stack
