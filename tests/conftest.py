"""Shared pytest configuration and fixtures."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeltrail.config import Settings
from tests.unavailable import unavailable

pytest_plugins = ["tests.kafka_fixture", "tests.audit.fixtures", "tests.learning.fixtures"]

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def pipeline_settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: the real broker, a unique topic prefix, its own chdb directory.

    The test's topics are deleted after it: a suite run creates some 20,000 partitions
    otherwise, and the local broker, holding files open for each, dies of "Too many open
    files" at the machine's limit of 20,000 descriptors."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",
    )
    yield settings
    _delete_topics(kafka_bootstrap, settings.topic_prefix)


def _delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete the topics whose names start with the test's random prefix (its own and those it
    derived from it; best effort: a broker that went away with the test has nothing to keep)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    with contextlib.suppress(Exception):
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    future.result(timeout=30)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """../shared/datasets; missing is a failure under CI=true, a skip elsewhere."""
    if not DATASETS.is_dir():
        message = f"datasets not found at {DATASETS}"
        unavailable(message)
    return DATASETS
