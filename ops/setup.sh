#!/usr/bin/env bash
# Set up this machine for labeltrail: a Python virtualenv with the package and its extras,
# Chromium for the browser tests (Debian's package), and the local Apache Kafka broker
# (fetched from Maven Central, started on 127.0.0.1:9092). Idempotent: rerun freely.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
EXTRAS=${LABELTRAIL_EXTRAS:-dev,score,train,bench}

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: $1 is required ($2)" >&2; exit 1; }; }
need "$PYTHON" "Python 3.11+"
need java "Java 17+, for the local Kafka broker (or set KAFKA_BOOTSTRAP_SERVERS)"
need mvn "Maven 3.8+, to fetch the Kafka broker jars"

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "setup: installing labeltrail[$EXTRAS] (the train extra brings torch: large on first run)"
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"

# The native event codec (native/, Rust + pyo3, built by maturin): optional. Without it the
# codec runs its pure-Python path, with the same results (docs/streaming.md).
CARGO_BIN=$(command -v cargo || { [ -x "$HOME/.cargo/bin/cargo" ] && echo "$HOME/.cargo/bin/cargo"; } || true)
if [ -n "$CARGO_BIN" ]; then
  echo "setup: building the native event codec (native/) with $("$CARGO_BIN" --version)"
  PATH="$(dirname "$CARGO_BIN"):$PATH" .venv/bin/python -m pip install -q ./native \
    || echo "setup: the native codec did not build; the event codec stays pure Python" >&2
else
  echo "setup: cargo not found; the event codec stays pure Python (no labeltrail_native)"
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium not found; browser tests will be skipped (they fail under CI=true)" >&2
  fi
fi

# The reference Java clients of the interop tests (tests/interop, docs/producers.md): Apache
# Avro and kafka-clients from Maven Central (ops/interop/pom.xml), and a harness javac compiles.
if ! command -v javac >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian's JDK (javac) for the Java interop tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
fi
if command -v javac >/dev/null 2>&1; then
  .venv/bin/python ops/interop/interop.py build >/dev/null
  .venv/bin/python ops/interop/interop.py fetch-registry >/dev/null  # Apicurio, for the registry tests
else
  echo "setup: javac not found; the Java interop tests will be skipped (they fail under CI=true)" >&2
fi

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  .venv/bin/python ops/kafka/local_kafka.py start
else
  echo "setup: using the Kafka cluster at $KAFKA_BOOTSTRAP_SERVERS"
fi
