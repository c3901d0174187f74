#!/usr/bin/env bash
# The test command (README, .ci/run): lint, then every test on the real engines, which it starts
# (embedded PostgreSQL, moto's S3 endpoint) and leaves running for the next run (`make services-stop`).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python scripts/devservices.py start >/dev/null
mkdir -p artifacts
exec .venv/bin/python -m pytest -ra --durations=15 "$@"
