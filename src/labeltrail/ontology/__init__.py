"""Label ontology versions, the decomposition of a comment into atomic questions, and (in
``files``) reading a team's own ontology YAML and annotator pool CSV into events."""

from labeltrail.ontology.schema import (
    MODERATION_CLASSES,
    V3_QUESTIONS,
    guideline_hash,
    moderation_schema_v3,
)

__all__ = ["MODERATION_CLASSES", "V3_QUESTIONS", "guideline_hash", "moderation_schema_v3"]
