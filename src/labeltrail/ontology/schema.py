"""The content-moderation ontology the article uses (schema v3)."""

from __future__ import annotations

import datetime as dt
import hashlib

from labeltrail.events.models import LabelSchemaPublished, Question

__all__ = ["MODERATION_CLASSES", "V3_QUESTIONS", "guideline_hash", "moderation_schema_v3"]

MODERATION_CLASSES: tuple[str, ...] = ("non-toxic", "mild", "harassment", "hate", "threats")
"""The five classes, in the order every distribution uses."""

V3_QUESTIONS: tuple[Question, ...] = (
    Question(question_id="q1_slur", text="Contains a slur?", answers=["yes", "no"]),
    Question(question_id="q2_targets_group", text="Targets a group?", answers=["yes", "no"]),
    Question(question_id="q3_threat", text="Implies a threat?", answers=["yes", "no"]),
    Question(
        question_id="q4_needs_context",
        text="Requires context to interpret?",
        answers=["yes", "no"],
    ),
)

_V3_GUIDELINE = """Schema v3, revised 2024-08-15 after legal review.
Label the comment with one of: non-toxic, mild, harassment, hate, threats.
Answer the atomic questions first; read the thread context when a task grants it.
Coded language aimed at a person or group counts as harassment or hate even when every
word is innocuous on its own."""


def guideline_hash(text: str) -> str:
    """The content hash that names a guideline document."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def moderation_schema_v3(
    *, producer: str = "ontology", occurred_at: dt.datetime | None = None
) -> LabelSchemaPublished:
    """The v3 schema event (deterministic id, so publishing it twice is harmless)."""
    return LabelSchemaPublished.create(
        producer=producer,
        occurred_at=occurred_at or dt.datetime(2024, 8, 15, tzinfo=dt.UTC),
        id_parts=("v3", guideline_hash(_V3_GUIDELINE)),
        version="v3",
        classes=list(MODERATION_CLASSES),
        questions=list(V3_QUESTIONS),
        guideline_hash=guideline_hash(_V3_GUIDELINE),
        supersedes="v2",
        old_label_policy="relabel_subset",
        relabel_classes=["harassment"],
    )
