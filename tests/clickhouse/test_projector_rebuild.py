"""The projector on the real broker: a crash between data and positions, a restart, and a
rebuild from the log into a fresh database with the same table contents."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import compare_checksums, rebuild, run_until_caught_up
from labeltrail.clickhouse.writer import BatchWriter, table_checksums
from labeltrail.config import Settings
from labeltrail.events.topics import topic_name
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from tests.audit.history import blind_spot_scenario, iaa_window, reliability_updates, simulated
from tests.probes import read_topic

pytestmark = pytest.mark.integration


class Crash(RuntimeError):
    """Stands for the process dying after a batch's data and before its positions."""


def _produce_history(settings: Settings) -> int:
    ensure_topics(settings)
    events = simulated(60, seed=11)
    events += [*reliability_updates(events), *blind_spot_scenario(), iaa_window()]
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
    producer.send_raw(topic_name(settings.topic_prefix, "votes"), b"k", b"not an event")
    producer.flush()
    return len(events)


def test_crash_restart_and_rebuild_give_the_same_tables(
    pipeline_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    produced = _produce_history(pipeline_settings)
    live = client_from(pipeline_settings)
    apply_ddl(live)

    calls = {"n": 0}
    original = BatchWriter.record_positions

    def crash_on_third(self: BatchWriter, positions: dict[tuple[str, int], int]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("killed between the data and the positions")
        original(self, positions)

    monkeypatch.setattr(BatchWriter, "record_positions", crash_on_third)
    with pytest.raises(Crash):
        run_until_caught_up(Projector(live, pipeline_settings, batch_size=200), timeout=120)
    monkeypatch.setattr(BatchWriter, "record_positions", original)

    deadletter = topic_name(pipeline_settings.topic_prefix, "deadletter")
    stored = BatchWriter(live, f"{pipeline_settings.topic_prefix}.projector").stored_positions()
    covered = sum(o for (t, _), o in stored.items() if t != deadletter)
    written = live.query("SELECT count() FROM events FINAL").result_rows[0][0]
    assert written > covered  # the crashed batch's rows are in, its positions are not

    restarted = Projector(live, pipeline_settings, batch_size=200)
    run_until_caught_up(restarted, timeout=120)
    resumed = restarted.stats.consumed - restarted.stats.by_type.get("DeadLettered", 0)
    assert resumed == produced + 1 - covered  # resumed exactly at the recorded positions
    # The dead letter for the junk record is produced, then projected on a later pass.
    run_until_caught_up(Projector(live, pipeline_settings, batch_size=200), timeout=120)

    final, unique = live.query("SELECT count(), uniqExact(event_id) FROM events FINAL").result_rows[
        0
    ]
    assert final == unique == produced + 1  # every event once, plus one DeadLettered
    for table in ("votes", "labels", "consensus", "tasks"):
        n, u = live.query(
            "SELECT count(), uniqExact(event_id) FROM {t:Identifier} FINAL", parameters={"t": table}
        ).result_rows[0]
        assert n == u > 0, table
    dead = live.query("SELECT reason_code, stage FROM v_dead_letters").result_rows
    assert dead == [("undecodable", "projector")]
    live_sums = table_checksums(live)
    live.close()  # chdb serves one directory per process at a time

    # The junk record's dead letter is on the topic once, or twice with one id when the crashed
    # projector wrote it in the batch whose positions it did not record (at least once): the
    # rebuild projects every record, and the tables keep the event once (checksums below).
    letters = read_topic(pipeline_settings, "deadletter")
    assert len(letters) in (1, 2) and len({e.event_id for e in letters}) == 1
    result = rebuild(pipeline_settings, f"chdb://{tmp_path / 'rebuilt'}", timeout=120)
    assert result.stats.projected == produced + len(letters)
    rebuilt = client_from(pipeline_settings, dsn=result.dsn)
    rebuilt_sums = table_checksums(rebuilt)
    rebuilt.close()
    assert compare_checksums(live_sums, rebuilt_sums) == []
