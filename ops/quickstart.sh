#!/usr/bin/env bash
# The README's first command: set everything up, then run the demo on the embedded defaults
# (the local Kafka broker and the in-process ClickHouse engine in var/labeltrail/clickhouse).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
export LABELTRAIL_CLICKHOUSE_DSN=${LABELTRAIL_CLICKHOUSE_DSN:-chdb://$PWD/var/labeltrail/clickhouse}
exec .venv/bin/labeltrail demo "$@"
