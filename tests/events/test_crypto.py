"""Sealing comment text (pure): what opens, what reads as erased, what keeps its id."""

from __future__ import annotations

import json

import pytest

from labeltrail.events.crypto import (
    ERASED,
    erased,
    is_sealed,
    key_id_for,
    new_data_key,
    reveal,
    reveal_event,
    seal,
    seal_comment,
)
from labeltrail.events.models import CommentPosted, TaskAssigned
from labeltrail.events.serde import decode, encode
from labeltrail.ingest import InvalidCommentError, parse_comments
from tests.events.samples import sample_event


class Ring:
    def __init__(self, **keys: bytes) -> None:
        self.keys = keys

    def key(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)


KEY = new_data_key()
KID = key_id_for("c-1f8a")


def test_a_sealed_text_opens_with_its_key_and_reads_erased_without_it() -> None:
    sealed = seal("you're really not what we said", KID, KEY, field="text")
    assert is_sealed(sealed) and "really" not in sealed
    assert reveal(sealed, Ring(**{KID: KEY})) == "you're really not what we said"
    assert reveal(sealed, Ring()) == ERASED
    assert reveal(sealed, Ring(**{KID: new_data_key()})) == ERASED  # a key made again later
    assert reveal("plain, posted before erasure", Ring()) == "plain, posted before erasure"


def test_sealing_is_deterministic_per_key_field_and_text() -> None:
    a = seal("same", KID, KEY, field="text")
    assert a == seal("same", KID, KEY, field="text")
    assert a != seal("same", KID, KEY, field="author_hash")
    assert a != seal("same", KID, new_data_key(), field="text")


def test_a_sealed_comment_keeps_its_id_round_trips_and_opens() -> None:
    comment = sample_event("CommentPosted")
    assert isinstance(comment, CommentPosted)
    sealed = seal_comment(comment, KID, KEY)
    assert sealed.event_id == comment.event_id
    assert is_sealed(sealed.text) and is_sealed(sealed.author_hash)
    back = decode(encode(sealed))
    assert back == sealed
    assert reveal_event(back, Ring(**{KID: KEY})) == comment
    gone = reveal_event(back, Ring())
    assert (gone.text, gone.author_hash) == (ERASED, ERASED)
    assert gone.parent_ids == comment.parent_ids


def test_the_longest_posted_text_still_fits_the_contract_sealed() -> None:
    comment = sample_event("CommentPosted").model_copy(update={"text": "\U0001f600" * 10_000})
    assert isinstance(comment, CommentPosted)
    sealed = seal_comment(comment, KID, KEY)
    assert decode(encode(sealed)) == sealed
    line = json.dumps(
        {"comment_id": "c", "video_id": "v", "author_hash": "a", "source": "pool"}
        | {"text": "x" * 10_001}
    )
    with pytest.raises(InvalidCommentError, match="text: String should have at most 10000"):
        parse_comments([line])


def test_task_copies_open_entry_by_entry_and_erasure_rewrites_only_the_erased() -> None:
    other = new_data_key()
    task = sample_event("TaskAssigned")
    assert isinstance(task, TaskAssigned)
    sealed = task.model_copy(
        update={
            "text": seal("child", KID, KEY, field="text"),
            "context": [seal("parent", "k-2", other, field="text"), "plain"],
        }
    )
    opened = reveal_event(sealed, Ring(**{KID: KEY}))
    assert (opened.text, opened.context) == ("child", [ERASED, "plain"])
    full = reveal_event(sealed, Ring(**{KID: KEY, "k-2": other}))
    assert erased(full, ["nobody"], ["parent"]).context == [ERASED, "plain"]
    assert erased(full, [task.comment_id], []).text == ERASED
    assert erased(full, ["nobody"], ["nothing"]) is full
