#!/usr/bin/env bash
# The README's second command: lint, type-check and run every test (two processes, one
# session-scoped Kafka broker shared by both; it is started if it is not running).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash ops/setup.sh
.venv/bin/ruff check src tests services ops
.venv/bin/ruff format --check src tests services ops
.venv/bin/mypy
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
