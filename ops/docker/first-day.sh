#!/bin/sh
# The first day's bootstrap, as docker-compose.yml's `init` service runs it: create the
# topics, publish the label schema, register the annotator pool and load the gold set from
# the files in $LABELTRAIL_FIRST_DAY_DIR (compose mounts ./examples there; point the mount at
# a team's own files). Every command is idempotent, so it runs again on each `docker compose
# up` and adds nothing the log already holds. docs/first-day.md walks through the same steps.
set -eu
DIR="${LABELTRAIL_FIRST_DAY_DIR:-/first-day}"
labeltrail topics create
labeltrail schema publish "$DIR/ontology.yaml"
labeltrail annotators register "$DIR/annotators.csv"
if [ -f "$DIR/gold.jsonl" ]; then
    labeltrail gold publish "$DIR/gold.jsonl"
fi
