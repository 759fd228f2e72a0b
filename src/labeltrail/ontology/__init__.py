"""Label ontology versions and the decomposition of a comment into atomic questions."""

from labeltrail.ontology.schema import (
    MODERATION_CLASSES,
    V3_QUESTIONS,
    guideline_hash,
    moderation_schema_v3,
)

__all__ = ["MODERATION_CLASSES", "V3_QUESTIONS", "guideline_hash", "moderation_schema_v3"]
