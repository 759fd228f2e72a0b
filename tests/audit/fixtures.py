"""A ClickHouse (real chdb) loaded with a simulated history, shared by the audit query tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.config import Settings
from labeltrail.events import Event
from tests.audit.history import (
    blind_spot_scenario,
    iaa_blind_spot_windows,
    iaa_stream,
    iaa_window,
    project,
    reliability_updates,
    simulated,
)


@pytest.fixture(scope="session")
def history() -> list[Event]:
    events = simulated()
    return [
        *events,
        *reliability_updates(events),
        *blind_spot_scenario(),
        iaa_window(),
        *iaa_blind_spot_windows(),
        *iaa_stream(events),
    ]


@pytest.fixture(scope="module")
def loaded_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("audit-ch")
    return f"chdb://{path}"


@pytest.fixture(scope="module")
def loaded(loaded_dsn: str, history: list[Event]) -> Iterator[Client]:
    client = client_from(Settings(clickhouse_dsn=loaded_dsn))
    apply_ddl(client)
    project(client, history)
    yield client
    client.close()  # chdb serves one path per process at a time
