"""The audit benchmark's synthetic history (ops/bench/audit.py), projected in batches and
cloned inside the engine, for tests of bulk reads at a size where memory shows."""

from __future__ import annotations

from types import ModuleType

from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.writer import BatchWriter
from tests.kafka_fixture import REPO_ROOT, load_ops_script


def audit_bench() -> ModuleType:
    """Import ops/bench/audit.py."""
    return load_ops_script(REPO_ROOT / "ops" / "bench" / "audit.py", "labeltrail_ops_bench_audit")


def project_bench_history(
    client: Client, comments: int, *, batches: int = 1, copies: int = 1, seed: int = 11
) -> None:
    """The bench's history of ``comments`` comments, projected in ``batches`` batches (a part
    of each table per batch), then its bulk tables cloned ``copies`` times with new ids."""
    bench = audit_bench()
    records = bench._records(comments, seed)
    writer = BatchWriter(client, "tests.bench")
    size = -(-len(records) // batches)
    for start in range(0, len(records), size):
        writer.project(records[start : start + size])
    if copies > 1:
        bench._clone(client, copies, bench.BULK_TABLES)
