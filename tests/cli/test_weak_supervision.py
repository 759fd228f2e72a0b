"""Weak supervision live, end to end on the real broker and the embedded ClickHouse.

A schema, comments (sealed when produced, as the pipeline writes them), crowd votes, gold
verdicts, a model score and user flags are on the log. The registered ``lf`` stage runs as its
service builds it: the project's entry-point LFs plus two from the settings' paths, one that
raises on some comments and one that answers a class the schema does not have. Each bad vote is
dead-lettered naming the LF and its version, counted, and the other LFs' votes on that comment
are still emitted. The registered ``weak`` stage fits the joint label model and commits weak
labels (route weak, machine-made, run ``weak``) on their own topic. ``labeltrail lf analyze``
then reads the votes from the log and from ClickHouse, with the same figures; the live labels
(``audit label-as-of``) hold no weak label unless asked for with ``--run weak``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings, WeakSettings
from labeltrail.events.base import Event
from labeltrail.events.crypto import is_sealed
from labeltrail.events.models import (
    CommentPosted,
    CommentScored,
    DeadLettered,
    FeedbackReceived,
    LabelCommitted,
    WeakVoteCast,
)
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.keys import seal_comments
from labeltrail.kafka.producer import EventProducer
from labeltrail.learning.lf import ABSTAIN, Example, LabelingFunction
from labeltrail.learning.lf_registry import VersionedLF
from labeltrail.ontology import moderation_schema_v3
from labeltrail.ontology.schema import MODERATION_CLASSES
from tests.cli.helpers import cli, cli_rows, run_registered_stage
from tests.folds.test_lf import comment
from tests.folds.test_reliability import verdict, vote
from tests.probes import read_topic

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
CROWD = ("a1", "a2", "a3")


def _picky(x: Example) -> int:
    if "boom" in x.text:
        raise RuntimeError("cannot read this one")
    return MODERATION_CLASSES.index("mild") if "meh" in x.text else ABSTAIN


PICKY = VersionedLF(LabelingFunction("picky", _picky), "7", MODERATION_CLASSES)
"""Votes mild on 'meh', raises on 'boom'."""
SPAMMY = VersionedLF(
    LabelingFunction("spammy", lambda x: 0 if "buy now" in x.text else ABSTAIN),
    "2",
    ("spam", "ham"),
)
"""Answers 'spam', a class the schema does not have, on 'buy now'."""

COMMENTS = {
    # comment: (text, the crowd's label, gold label or None)
    "c1": ("you absolute clown", "harassment", "harassment"),
    "c2": ("thanks, this helped a lot", "non-toxic", "non-toxic"),
    "c3": ("meh, what a loser", "harassment", "mild"),
    "c4": ("boom, I know where you live", "threats", None),
    "c5": ("buy now, thanks", "non-toxic", None),
    "c6": ("a [slur] said boom", "hate", "hate"),
    "c7": ("nice video", "non-toxic", None),
}


def _history() -> list[Event]:
    events: list[Event] = [moderation_schema_v3()]
    for cid, (text, crowd, gold) in COMMENTS.items():
        events.append(comment(cid, text, AT))
        events += [vote(cid, a, crowd, AT + dt.timedelta(minutes=j)) for j, a in enumerate(CROWD)]
        if gold is not None:
            events.append(verdict(cid, gold, AT, request=f"gold:{cid}"))
    k = len(MODERATION_CLASSES)
    events.append(
        CommentScored.create(
            producer="test",
            id_parts=("s", "c7"),
            occurred_at=AT,
            comment_id="c7",
            model_version="m1",
            classes=list(MODERATION_CLASSES),
            probabilities=[0.92] + [0.02] * (k - 1),
            margin=0.9,
            route="none",
            threshold=0.1,
        )
    )
    events += [
        FeedbackReceived.create(
            producer="test",
            id_parts=("flag", n),
            occurred_at=AT,
            feedback_id=f"f{n}",
            comment_id="c1",
            kind="user_flag",
            label="harassment",
            actor_hash=f"u{n}",
            actor_kind="user",
        )
        for n in range(2)
    ]
    return events


def test_lfs_vote_live_bad_ones_are_dead_lettered_and_weak_labels_stay_apart(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings.model_copy(
        update={
            "weak": WeakSettings(
                lf_paths=[f"{__name__}:PICKY", f"{__name__}:SPAMMY"], refit_on_drain=True
            )
        }
    )
    ensure_topics(settings)
    producer = EventProducer(settings)
    schema, *history = _history()
    # The schema is published first (day one) and the lf stage has read it: comments are then
    # voted on one at a time as they come. (Comments read before it are held and voted on
    # together when it arrives: their failures then share the schema record's dead letter.)
    producer.send(schema)
    producer.flush()
    assert run_registered_stage("lf", settings, tmp_path / "lf")["emitted"] == 0
    for event in seal_comments(settings, history):  # as ingest writes them
        producer.send(event)
    producer.flush()
    posted = [e for e in read_topic(settings, "comments") if isinstance(e, CommentPosted)]
    assert len(posted) == 7 and all(is_sealed(e.text) for e in posted)

    # The lf stage: 6 entry-point LFs + 2 from the settings' paths on 7 comments. picky@7 raises
    # on c4 and c6, spammy@2 answers 'spam' on c5: three comments dead-lettered, three votes
    # missing, every other vote emitted (53 + 3 = 7 x 8).
    stats = run_registered_stage("lf", settings, tmp_path / "lf")
    assert stats["rejected"] == 3 and stats["reasons"] == {"policy_rejected": 3}
    votes = [e for e in read_topic(settings, "weak.votes") if isinstance(e, WeakVoteCast)]
    assert len(votes) == stats["emitted"] == 7 * 8 - 3
    by = {(v.comment_id, f"{v.source_name}@{v.source_version}"): v.label for v in votes}
    assert by[("c1", "insults@1")] == "harassment"
    assert by[("c3", "picky@7")] == "mild" and by[("c7", "picky@7")] is None
    assert ("c4", "picky@7") not in by and ("c5", "spammy@2") not in by
    assert by[("c4", "threat_phrases@1")] == "threats"  # the others still voted on c4
    assert by[("c5", "benign_words@1")] == "non-toxic"
    letters = {
        e.reason
        for e in read_topic(settings, "deadletter")
        if isinstance(e, DeadLettered) and e.stage == "lf"
    }
    assert len(letters) == 3
    assert any(r.startswith("comment c4: lf picky@7 raised RuntimeError") for r in letters)
    assert "comment c5: lf spammy@2 returned unknown class 'spam'" in letters

    # The weak stage: one fit on drain, a weak label for each of the 7 comments, none of them on
    # the human labels' topic.
    stats = run_registered_stage("weak", settings, tmp_path / "weak")
    weak = [e for e in read_topic(settings, "weak.labels") if isinstance(e, LabelCommitted)]
    assert len(weak) == stats["emitted"] == 7
    assert {(w.route, w.machine_made, w.run_id, w.method) for w in weak} == {
        ("weak", True, "weak", "multisource-em")
    }
    labels = {w.comment_id: w for w in weak}
    assert labels["c1"].label == "harassment" and labels["c6"].label == "hate"
    assert labels["c3"].label == "mild" and labels["c3"].method_params["gold"] == "mild"
    assert labels["c1"].method_params["user_flags"] == "2"
    assert labels["c7"].method_params["model_version"] == "m1"
    assert read_topic(settings, "labels") == []

    with client_from(settings) as client:
        apply_ddl(client)
        run_until_caught_up(Projector(client, settings))
        dead = client.query(
            "SELECT count() FROM v_dead_letters WHERE stage = 'lf' AND reason LIKE '%picky@7%'"
        ).result_rows
        assert dead == [(2,)]
        projected = client.query(
            "SELECT count(), countIf(label IS NULL) FROM v_weak_votes"
        ).result_rows[0]
        assert projected == (53, sum(1 for v in votes if v.label is None))
        weak_rows = client.query(
            "SELECT count() FROM v_labels WHERE route = 'weak' AND machine_made AND run_id = 'weak'"
            " AND topic = %(topic)s",
            parameters={"topic": f"{settings.topic_prefix}.weak.labels"},
        ).result_rows
        assert weak_rows == [(7,)]

    # lf analyze: the same figures from the log and from ClickHouse, per LF and version.
    def analyze(source: str) -> dict[str, dict[str, object]]:
        code, out = cli(settings, "lf", "analyze", "--from", source, "--json")
        assert code == 0, out
        return {r["name"]: r for r in map(json.loads, out.splitlines())}

    from_log, from_clickhouse = analyze("log"), analyze("clickhouse")
    assert from_log == from_clickhouse
    assert sorted(from_log) == sorted({f"{v.source_name}@{v.source_version}" for v in votes})
    insults = from_log["insults@1"]
    assert insults["coverage"] == pytest.approx(2 / 7)  # c1, c3
    assert (insults["n_gold_labelled"], insults["n_correct"]) == (2, 1)  # c3's gold is mild
    picky = from_log["picky@7"]
    assert picky["coverage"] == pytest.approx(1 / 5)  # voted on 5 comments, mild on c3
    assert picky["empirical_accuracy"] == 1.0
    assert from_log["insults@1"]["conflict"] == pytest.approx(1 / 7)  # c3: insults vs picky
    code, out = cli(settings, "lf", "analyze", "--from", "clickhouse")
    assert code == 0 and "label coverage" in out and "picky@7" in out, out
    assert cli(settings, "lf", "analyze", "--from", "nowhere")[0] == 2

    # The live labels hold no weak label; named, they are there.
    assert cli_rows(settings, "audit", "label-as-of", "all", "--at", "now") == []
    named = cli_rows(settings, "audit", "label-as-of", "all", "--at", "now", "--run", "weak")
    assert sorted(r["comment_id"] for r in named) == sorted(COMMENTS)
    assert {r["route"] for r in named} == {"weak"}

    # The trace shows the LF votes and the weak label, which says what it is.
    code, text = cli(settings, "audit", "trace", "c1")
    assert code == 0, text
    text = " ".join(re.sub(r"\n\s+\|\s+", " ", text).split())  # wraps undone
    assert "lf insults@1 votes 'harassment'" in text and "lf picky@7 abstains" in text
    assert "route=weak confidence=1.00 . labeling run weak . machine-made" in text

    # Exports: the live one holds no weak label; `--run weak` exports them and verifies.
    code, out = cli(settings, "export", "create", "--schema-version", "v3", "--out", str(tmp_path))
    assert code == 0 and ": 0 rows" in out, out
    code, out = cli(
        settings, "export", "create", "--schema-version", "v3", "--out", str(tmp_path),
        "--run", "weak",
    )  # fmt: skip
    assert code == 0 and ": 7 rows" in out, out
    export_dir = "".join(out.split("file://", 1)[1].split())  # the path, wraps undone
    rows = [json.loads(r) for r in (Path(export_dir) / "rows.jsonl").read_text().splitlines()]
    assert sorted(r["comment_id"] for r in rows) == sorted(COMMENTS)
    assert {r["route"] for r in rows} == {"weak"}
    code, out = cli(settings, "export", "verify", export_dir)
    assert code == 0, out
