"""LfFold: one WeakVoteCast per LF and comment; a failing LF is dead-lettered by name and
version while the others' votes on that comment are still emitted."""

from __future__ import annotations

import datetime as dt

from labeltrail.events import LogPosition
from labeltrail.events.models import CommentPosted, WeakVoteCast
from labeltrail.folds.base import Rejected
from labeltrail.folds.lf import LfFold
from labeltrail.learning import example_lfs
from labeltrail.learning.lf_registry import discover
from labeltrail.ontology import moderation_schema_v3
from tests.learning.test_lf_registry import ALIEN, BROKEN

POS = LogPosition(topic="x", partition=0, offset=0)
T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)


def comment(cid: str, text: str, at: dt.datetime = T0) -> CommentPosted:
    return CommentPosted.create(
        producer="t",
        id_parts=("c", cid),
        occurred_at=at,
        comment_id=cid,
        video_id="v",
        author_hash="h",
        text=text,
        posted_at=at,
        source="product_log",
    )


def test_each_lf_votes_on_each_comment_once_the_schema_is_known() -> None:
    fold = LfFold(lfs=discover())
    assert fold.apply(comment("c1", "you clown, I know where you live"), POS) == []
    assert fold.held_reason() == "1 comment(s) wait for schema v3"
    out = fold.apply(moderation_schema_v3(), POS)
    assert all(isinstance(o, WeakVoteCast) for o in out)
    votes = {(o.source_name, o.source_version): o.label for o in out if isinstance(o, WeakVoteCast)}
    assert votes == {
        ("benign_words", "1"): None,
        ("context_dependent", "1"): None,
        ("insults", "1"): "harassment",
        ("mild_words", "1"): None,
        ("slurs", "1"): None,
        ("threat_phrases", "1"): "threats",
    }
    again = fold.votes(comment("c1", "you clown, I know where you live"))
    assert [o.event_id for o in again if isinstance(o, WeakVoteCast)] == [o.event_id for o in out]


def test_a_raising_or_unknown_class_lf_is_rejected_and_the_others_still_vote() -> None:
    fold = LfFold(lfs=(example_lfs.insults, BROKEN, ALIEN))
    fold.apply(moderation_schema_v3(), POS)
    out = fold.apply(comment("c2", "loser"), POS)
    votes = [o for o in out if isinstance(o, WeakVoteCast)]
    assert [(v.source_name, v.label) for v in votes] == [("insults", "harassment")]
    (rejected,) = [o for o in out if isinstance(o, Rejected)]
    assert "lf broken@2 raised ZeroDivisionError" in rejected.reason
    assert "lf alien@3 returned unknown class 'spam'" in rejected.reason
    assert rejected.reason.startswith("comment c2: ")
    assert fold.errors == {"broken@2": 1, "alien@3": 1}


def test_comments_still_held_at_drain_are_rejected() -> None:
    fold = LfFold(lfs=(example_lfs.insults,), schema_version="v9")
    fold.apply(moderation_schema_v3(), POS)
    fold.apply(comment("c3", "hi"), POS)
    assert fold.drain() == [Rejected("comment c3: schema v9 not published, no LF ran on it")]
    assert fold.held == {}
