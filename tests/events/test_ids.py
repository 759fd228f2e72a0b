"""``derive_id`` is uuid5 of the labeltrail namespace, computed without ``uuid.UUID``."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from labeltrail.events.ids import LABELTRAIL_NAMESPACE, derive_id


def _uuid5(kind: str, *parts: object) -> str:
    rendered = [kind]
    for part in parts:
        if isinstance(part, list | tuple | set | frozenset):
            rendered.append(",".join(sorted(str(p) for p in part)))
        else:
            rendered.append(str(part))
    return str(uuid.uuid5(LABELTRAIL_NAMESPACE, "\x1f".join(rendered)))


_PART = st.text(max_size=8) | st.integers() | st.frozensets(st.text(max_size=4), max_size=3)


@settings(max_examples=300, deadline=None)
@given(kind=st.text(min_size=1, max_size=20), parts=st.lists(_PART | st.lists(_PART), max_size=4))
def test_derive_id_is_the_uuid5_of_its_joined_parts(kind: str, parts: list[object]) -> None:
    assert derive_id(kind, *parts) == _uuid5(kind, *parts)


def test_a_known_id_never_changes() -> None:
    assert derive_id("task", "c-00001", "v3", "crowd") == _uuid5("task", "c-00001", "v3", "crowd")
    assert derive_id("x") == str(uuid.uuid5(LABELTRAIL_NAMESPACE, "x"))


def test_every_version_and_variant_digit_is_set_as_uuid5_sets_it() -> None:
    ids = [derive_id("TaskAssigned", f"a-{i}", ["v2", f"v{i}"]) for i in range(4096)]
    assert ids == [_uuid5("TaskAssigned", f"a-{i}", ["v2", f"v{i}"]) for i in range(4096)]
    assert {i[19] for i in ids} == set("89ab")  # the variant digit takes all four values
