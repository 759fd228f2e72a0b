"""``labeltrail relabel`` on the real broker and the embedded ClickHouse.

A simulated history committed by majority vote (agreement threshold 0.3, so that 2-to-1
splits pass the gate and carry a crowd label) is on the log. Relabeling it with majority vote
changes nothing; Dawid-Skene changes some crowd labels, each the one Dawid-Skene fitted on the
same votes gives; bad input commits nothing; a committed run is on the relabels topic, in
``audit trace``, ``audit label-as-of --run`` and an export that ``export verify`` reproduces.
The demo's own history (labels committed ``reliability-weighted`` by the live stages)
relabeled with its method changes nothing; under majority vote, exactly the labels the
weights decided.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.clickhouse.relabel import read_projected
from labeltrail.config import Settings
from labeltrail.events import AnnotatorReliabilityUpdated, Event, LabelCommitted, VoteCast
from labeltrail.events.columnar import LabelCommittedRow
from labeltrail.events.models import LabelSchemaPublished
from labeltrail.folds.consensus_weights import PRIOR, parse_estimates
from labeltrail.folds.relabel import labels_of_record
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from labeltrail.quality import DawidSkene, Votes
from labeltrail.sim import Platform, PlatformConfig
from labeltrail.sim.demo import DEMO_DAYS, run_demo
from tests.folds.helpers import run_in_memory
from tests.probes import read_topic

pytestmark = pytest.mark.integration

N, SEED, THRESHOLD = 80, 5, 0.3


@dataclass(frozen=True)
class History:
    settings: Settings
    events: list[Event]
    root: Path

    @property
    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "LABELTRAIL_KAFKA_BOOTSTRAP": s.kafka_bootstrap_servers,
            "LABELTRAIL_TOPIC_PREFIX": s.topic_prefix,
            "LABELTRAIL_TOPIC_PARTITIONS": str(s.topic_partitions),
            "LABELTRAIL_CLICKHOUSE_DSN": s.clickhouse_dsn,
        }

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env=self.env)
        return result.exit_code, result.output

    def json(self, *args: str) -> dict[str, Any]:
        code, out = self.cli(*args, "--json")
        assert code == 0, out
        body: dict[str, Any] = json.loads(out)
        return body

    def labels(self) -> list[LabelCommitted]:
        return [e for e in self.events if isinstance(e, LabelCommitted)]


def _settings(kafka_bootstrap: str, root: Path) -> Settings:
    """The real broker under a topic prefix of its own, an embedded ClickHouse under root."""
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
    )


@pytest.fixture(scope="module")
def history(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """The platform run through the real folds in memory (majority vote, threshold 0.3), its
    log produced to the broker as the live stages would have written it."""
    root = tmp_path_factory.mktemp("relabel")
    settings = _settings(kafka_bootstrap, root)
    ensure_topics(settings)
    replay = run_in_memory(
        Platform(PlatformConfig.sized(N, seed=SEED)), consensus="mv", threshold=THRESHOLD
    )
    events = [event for events in replay.log.values() for event in events]
    producer = EventProducer(settings)
    for event in events:
        producer.send(event)
    producer.flush()
    yield History(settings, events, root)


def _ds_labels(events: list[Event]) -> dict[str, str]:
    """Dawid-Skene fitted directly on the votes the crowd labels and verdicts name."""
    classes = next(e.classes for e in events if isinstance(e, LabelSchemaPublished))
    votes = {e.vote_id: e for e in events if isinstance(e, VoteCast)}
    items, annotators, answers = [], [], []
    for label in (e for e in events if isinstance(e, LabelCommitted)):
        for vote_id in label.vote_ids:
            items.append(label.comment_id)
            annotators.append(votes[vote_id].annotator_id)
            answers.append(votes[vote_id].label)
    coded = Votes.from_long(
        np.asarray(items, dtype=object),
        np.asarray(annotators, dtype=object),
        np.asarray(answers, dtype=object),
        classes=classes,
    )
    model = DawidSkene().fit(coded)
    return dict(zip(coded.item_ids.tolist(), coded.decode(model.labels_).tolist(), strict=True))


def test_the_method_the_history_was_committed_with_changes_nothing(history: History) -> None:
    body = history.json("relabel", "--method", "mv", "--dry-run")
    labels = history.labels()
    assert body["items"] == len({(e.comment_id, e.schema_version) for e in labels})
    assert body["changed"] == 0 and body["samples"] == []
    assert body["by_class"] == {} and body["by_slice"] == {}
    assert body["committed_methods"]["mv"] == sum(1 for e in labels if e.route == "consensus")
    assert body["votes"] == sum(len(e.vote_ids) for e in labels)
    assert body["run_id"] is None
    code, text = history.cli("relabel", "--method", "mv", "--dry-run")
    assert code == 0 and "changed 0 of" in text, text


def test_dawid_skene_changes_split_crowd_labels_to_its_own_fit(history: History) -> None:
    """Dawid-Skene learns one 5x5 confusion matrix per annotator from about a dozen votes
    each: on 2-to-1 splits it can side with the one (the sparse-data weakness issue 18
    names). Every change is such an item, and is the label Dawid-Skene fitted on the same
    votes gives; verdicts and unanimous items are never changed."""
    body = history.json("relabel", "--method", "ds", "--dry-run", "--samples", "1000")
    expected = _ds_labels(history.events)
    committed = {e.comment_id: e for e in history.labels()}
    assert body["changed"] > 0
    assert len(body["samples"]) == body["changed"]
    assert sum(body["by_class"].values()) == body["changed"]
    assert sum(body["by_slice"].values()) == body["changed"]
    assert body["by_schema_version"] == {"v3": body["changed"]}
    assert body["by_route"]["adjudication"]["changed"] == 0
    assert body["by_route"]["consensus"]["changed"] == body["changed"]
    for sample in body["samples"]:
        comment = sample["comment_id"]
        old, new = sample["committed"], sample["relabeled"]
        assert old["label"] == committed[comment].label != new["label"]
        assert new["label"] == expected[comment]
        assert new["label"] == sample["classes"][int(np.argmax(new["posterior"]))]
        answers = Counter(v["label"] for v in sample["votes"])
        assert len(answers) > 1, sample  # never a unanimous item
        assert answers[old["label"]] > answers[new["label"]]  # majority vote's label was old
    changed = {s["comment_id"] for s in body["samples"]}
    unchanged = [c for c, e in committed.items() if e.route == "consensus" and c not in changed]
    assert all(expected[c] == committed[c].label for c in unchanged)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--method", "ds", "--param", "colour=red"], "takes no parameter 'colour'"),
        (["--method", "ds", "--param", "max_iter=many"], "max_iter='many' is not a int"),
        (["--method", "mv", "--param", "tol"], "is not key=value"),
        (["--method", "ds", "--schema-version", "v9"], "schema version 'v9' has no votes"),
        (["--method", "ds", "--param", "precision=float16"], "precision must be"),
    ],
)
def test_bad_input_is_one_clear_error_and_nothing_committed(
    history: History, args: list[str], message: str
) -> None:
    before = len(read_topic(history.settings, "relabels"))
    code, text = history.cli("relabel", *args)
    assert code == 2, text
    assert message in " ".join(text.split())
    assert len(read_topic(history.settings, "relabels")) == before


def test_a_committed_run_is_traceable_queryable_and_exported_reproducibly(
    history: History,
) -> None:
    before = len(read_topic(history.settings, "relabels"))
    body = history.json("relabel", "--method", "ds", "--param", "max_iter=50")
    run_id = body["run_id"]
    assert run_id and body["params"]["max_iter"] == "50"
    run = [e for e in read_topic(history.settings, "relabels") if e.run_id == run_id]
    assert len(run) == body["items"] and len(run) == before + body["items"]
    assert {e.label_id for e in run}.isdisjoint({e.label_id for e in history.labels()})
    crowd = [e for e in run if e.route == "consensus"]
    assert {e.method for e in crowd} == {"ds"}
    assert all(e.method_params["max_iter"] == "50" for e in crowd)
    assert all(e.method == "expert-adjudication" for e in run if e.route == "adjudication")
    # The live labels topic is untouched: replay still reproduces it.
    assert read_topic(history.settings, "labels") == [
        e for e in read_topic(history.settings, "labels") if e.run_id is None
    ]

    client = client_from(history.settings)
    apply_ddl(client)
    run_until_caught_up(Projector(client, history.settings))
    client.close()

    changed = body["samples"][0]
    comment = changed["comment_id"]
    code, text = history.cli("audit", "trace", comment)
    assert code == 0, text
    assert f"labeling run {run_id}" in " ".join(text.split())

    as_of = history.json("audit", "label-as-of", comment, "--run", run_id)
    live = history.json("audit", "label-as-of", comment)
    assert [r["label"] for r in as_of] == [changed["relabeled"]["label"]]
    assert [r["method"] for r in as_of] == ["ds"]
    assert [r["label"] for r in live] == [changed["committed"]["label"]]

    out = history.root / "exports"
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
    code, text = history.cli(
        "export", "create", "--schema-version", "v3", "--run", run_id, "--out", str(out),
        "--at", at,
    )  # fmt: skip
    assert code == 0, text
    (directory,) = [p for p in out.iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (directory / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == body["items"]
    by_comment = {r["comment_id"]: r for r in rows}
    assert by_comment[comment]["label"] == changed["relabeled"]["label"]
    assert by_comment[comment]["method"] == "ds"
    code, text = history.cli("export", "verify", str(directory))
    assert code == 0, text
    assert "verifies against the log" in text

    code, text = history.cli("relabel", "--method", "nope", "--dry-run")
    assert code == 2


def _projected(history: History) -> None:
    """The history's ClickHouse projection brought up to the log's ends (the projector
    resumes from the positions it recorded)."""
    client = client_from(history.settings)
    apply_ddl(client)
    run_until_caught_up(Projector(client, history.settings))
    client.close()


def _reads_label_votes(history: History) -> bool:
    """Whether a run reads the projection's label_votes (the votes resolved as projected)."""
    client = client_from(history.settings)
    try:
        return read_projected(client, history.settings, slices=False).resolved
    finally:
        client.close()


@pytest.mark.parametrize("method", ["mv", "ds", "pds"])
def test_the_clickhouse_projection_gives_the_log_sources_run(history: History, method: str) -> None:
    """Read from the projection (columnar, up to the positions its projector recorded), a
    run reports what the log gives: every count, every changed item with both posteriors and
    its votes, and the positions it covers (the projector's, which are the log's ends once it
    has caught up; partitions with nothing read are left out of both run ids)."""
    _projected(history)
    assert _reads_label_votes(history)
    args = ("relabel", "--method", method, "--dry-run", "--samples", "1000")
    from_log = history.json(*args)
    from_ch = history.json(*args, "--source", "clickhouse")
    assert (from_log.pop("source"), from_ch.pop("source")) == ("log", "clickhouse")
    log_positions = [p for p in from_log.pop("positions") if p["offset"]]
    assert sorted(log_positions, key=str) == sorted(from_ch.pop("positions"), key=str)
    assert from_ch == from_log
    assert from_ch["items"] > 0
    assert from_ch["changed"] == 0 if method == "mv" else True
    assert from_ch["changed"] > 0 if method == "ds" else True


def test_without_label_votes_the_projection_joins_labels_and_votes(history: History) -> None:
    """label_votes missing a live label row (a database made before it, here emptied): the
    run chooses among the labels and joins the votes instead, and gives the same report."""
    _projected(history)
    args = ("relabel", "--method", "ds", "--dry-run", "--samples", "1000")
    from_ch = history.json(*args, "--source", "clickhouse")
    client = client_from(history.settings)
    client.command("TRUNCATE TABLE label_votes")
    client.close()
    assert not _reads_label_votes(history)
    assert history.json(*args, "--source", "clickhouse") == from_ch
    _projected(history)  # its DDL fills label_votes again (the migration)
    assert _reads_label_votes(history)


def test_a_run_committed_from_the_projection_is_the_log_sources_run(history: History) -> None:
    from labeltrail.cli.relabel import _from_log
    from labeltrail.folds.relabel import run_id_for, run_labels
    from labeltrail.kafka.log import end_positions

    _projected(history)
    body = history.json("relabel", "--method", "pds", "--source", "clickhouse")
    positions, run = _from_log(history.settings, "pds", {}, "")
    assert body["run_id"] == run_id_for("pds", run.params, "", positions)
    assert body["positions"] == [
        p.model_dump()
        for p in end_positions(history.settings, sorted({p.topic for p in positions}))
        if p.offset
    ]
    committed = [e for e in read_topic(history.settings, "relabels") if e.run_id == body["run_id"]]
    expected = run_labels(run, body["run_id"])
    assert len(committed) == len(expected) == body["items"]

    def contents(events: list[LabelCommitted]) -> list[dict[str, Any]]:
        return sorted((e.model_dump(exclude={"envelope"}) for e in events), key=str)

    assert contents(committed) == contents(expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--method", "ds", "--param", "colour=red"], "takes no parameter 'colour'"),
        (["--method", "ds", "--schema-version", "v9"], "schema version 'v9' has no votes"),
        (["--method", "reliability-weighted"], "use --source log"),
    ],
)
def test_bad_input_from_the_projection_is_one_clear_error_and_nothing_committed(
    history: History, args: list[str], message: str
) -> None:
    _projected(history)
    before = len(read_topic(history.settings, "relabels"))
    code, text = history.cli("relabel", *args, "--source", "clickhouse")
    assert code == 2, text
    assert message in " ".join(text.split())
    assert len(read_topic(history.settings, "relabels")) == before


def test_without_a_projection_the_clickhouse_source_says_so(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    empty = History(_settings(kafka_bootstrap, tmp_path), [], tmp_path)
    code, text = empty.cli("relabel", "--method", "mv", "--dry-run", "--source", "clickhouse")
    assert code == 1, text
    assert "holds no labels of" in " ".join(text.split())


@pytest.fixture(scope="module")
def demo(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> History:
    """The demo (``run_demo``: every stage live on the broker, labels committed
    ``reliability-weighted``) at 500 comments, enough for its votes to meet honeypot and
    Dawid-Skene estimates (about a quarter of the weights are named estimates, not the prior)."""
    root = tmp_path_factory.mktemp("relabel-demo")
    settings = _settings(kafka_bootstrap, root)
    run_demo(settings, config=PlatformConfig.sized(500, seed=5, days=DEMO_DAYS), timeout=400)
    return History(settings, read_topic(settings, "labels"), root)


def _estimates_named(label: LabelCommitted | LabelCommittedRow) -> list[str]:
    return [e for _, e in parse_estimates(label.method_params.get("estimates", ""))]


def test_the_demo_relabeled_with_its_own_method_changes_nothing(demo: History) -> None:
    """Each crowd label is made again from its votes and the estimates it records (read
    from the quality topic by id): the same label and the same posterior, to the digit."""
    labels = demo.labels()
    crowd = [e for e in labels if e.route == "consensus"]
    assert crowd and {e.method for e in crowd} == {"reliability-weighted"}
    named = {e for label in crowd for e in _estimates_named(label)} - {PRIOR}
    assert named, "the demo's weights must include estimates read from the log"
    body = demo.json("relabel", "--method", "reliability-weighted", "--dry-run")
    assert body["items"] == len({(e.comment_id, e.schema_version) for e in labels})
    assert body["changed"] == 0 and body["posterior_changed"] == 0
    assert body["committed_methods"]["reliability-weighted"] == len(crowd)
    code, text = demo.cli("relabel", "--method", "reliability-weighted", "--param", "k=1")
    assert code == 2 and "takes no parameter 'k'" in text
    # Committed, the run's crowd labels are those of record again, each naming its estimates.
    run_id = demo.json("relabel", "--method", "reliability-weighted")["run_id"]
    run = [e for e in read_topic(demo.settings, "relabels") if e.run_id == run_id]
    assert len(run) == body["items"]
    of_record = {e.label_id: e for e in labels}
    for label in (e for e in run if e.route == "consensus"):
        source = of_record[label.method_params["relabels"]]
        assert (label.label, label.distribution) == (source.label, source.distribution)
        assert label.method_params["estimates"] == source.method_params["estimates"]


def test_the_demo_under_majority_vote_differs_where_the_weights_decided(demo: History) -> None:
    """Majority vote gives every crowd label its votes' most frequent class (first in schema
    order on a tie) with vote shares as the posterior. The demo's weights are the reliability
    estimates, some of them Dawid-Skene confusion matrices that read an annotator's answer as
    evidence for another class (an annotator who answers 'threats' for harassment), so a label
    changes exactly where the weighted posterior's top class is not the majority's, and those
    labels name a Dawid-Skene estimate (whether any vote met such an estimate depends on how
    the live consensus stage interleaved the quality topic with the votes: on a fresh broker
    none did, on the shared one 12 labels changed). A posterior changes wherever the weighted
    one is not the vote shares: on unanimous items 1.0 against the weighted value below it."""
    votes = {e.vote_id: e for e in read_topic(demo.settings, "votes") if isinstance(e, VoteCast)}
    estimates = {
        e.envelope.event_id: e
        for e in read_topic(demo.settings, "quality")
        if isinstance(e, AnnotatorReliabilityUpdated)
    }
    record = labels_of_record((e, ("", 0, 0)) for e in demo.labels())
    crowd = [label for label, _ in record.values() if label.route == "consensus"]
    expected, shifted = {}, 0
    for label in crowd:
        counts = Counter(votes[v].label for v in label.vote_ids)
        top = max(counts.values())
        majority = next(c for c in label.classes if counts.get(c) == top)
        if majority != label.label:
            expected[label.comment_id] = majority
        shares = [round(counts.get(c, 0) / len(label.vote_ids), 6) for c in label.classes]
        shifted += shares != label.distribution
    body = demo.json("relabel", "--method", "mv", "--dry-run", "--samples", "10000")
    assert body["changed"] == len(expected)
    assert {s["comment_id"]: s["relabeled"]["label"] for s in body["samples"]} == expected
    assert body["posterior_changed"] == shifted > 0
    assert body["by_route"]["adjudication"]["changed"] == 0
    by_comment = {e.comment_id: e for e in crowd}
    for comment in expected:
        methods = {estimates[e].method for e in _estimates_named(by_comment[comment]) if e != PRIOR}
        assert "dawid_skene" in methods, comment


def test_the_projection_chooses_the_log_sources_labels_of_record_among_several(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """An item with several live labels (one superseded by a later label of record, one
    label whose event is on the log twice): the projection, which groups only such items to
    choose one, gives the log source's run, its samples' fields fetched by position."""
    settings = _settings(kafka_bootstrap, tmp_path)
    ensure_topics(settings)
    replay = run_in_memory(
        Platform(PlatformConfig.sized(20, seed=SEED)), consensus="mv", threshold=THRESHOLD
    )
    events = [event for events in replay.log.values() for event in events]
    crowd = [e for e in events if isinstance(e, LabelCommitted) and e.route == "consensus"]
    first, second = crowd[0], crowd[1]
    other = next(c for c in first.classes if c != first.label)
    fields = dict(first.model_dump(exclude={"envelope"}))
    later = LabelCommitted.create(
        producer="test",
        id_parts=(first.label_id, "later"),
        **(fields | {"label_id": f"{first.label_id}-later", "label": other}),
    )
    producer = EventProducer(settings)
    for event in [*events, second, later]:  # the second label's event on the log twice
        producer.send(event)
    producer.flush()
    history = History(settings, [*events, later], tmp_path)
    _projected(history)
    assert _reads_label_votes(history)
    args = ("relabel", "--method", "mv", "--dry-run", "--samples", "1000")
    from_log = history.json(*args)
    from_ch = history.json(*args, "--source", "clickhouse")
    for body in (from_log, from_ch):
        body.pop("source"), body.pop("positions")
    assert from_ch == from_log
    assert from_ch["items"] == len({(e.comment_id, e.schema_version) for e in history.labels()})
    (sample,) = [s for s in from_ch["samples"] if s["comment_id"] == first.comment_id]
    assert sample["committed"]["label"] == other  # the later label is the label of record
