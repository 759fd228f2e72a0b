"""Shared pytest configuration and fixtures."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from labeltrail.config import Settings
from tests.unavailable import unavailable

pytest_plugins = ["tests.kafka_fixture", "tests.audit.fixtures", "tests.learning.fixtures"]

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def pipeline_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings for one test: the real broker, a unique topic prefix, its own chdb directory."""
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",
    )


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """../shared/datasets; missing is a failure under CI=true, a skip elsewhere."""
    if not DATASETS.is_dir():
        message = f"datasets not found at {DATASETS}"
        unavailable(message)
    return DATASETS
