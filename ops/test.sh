#!/usr/bin/env bash
# The README's second command: lint, type-check, check the import layers and run every test
# (two processes, one session-scoped Kafka broker shared by both; started if not running).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash ops/setup.sh
.venv/bin/ruff check src tests services ops
.venv/bin/ruff format --check src tests services ops
.venv/bin/mypy
.venv/bin/lint-imports  # the layers and the client boundary (pyproject [tool.importlinter])
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
