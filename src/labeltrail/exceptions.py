"""Every error labeltrail raises on purpose, in one tree.

::

    LabeltrailError
    ├── ConfigurationError          a setting is missing or invalid
    ├── InvalidLinesError           an input file's lines or fields are invalid (all listed)
    ├── NotFittedError              an estimator (quality or learning) used before ``fit``
    ├── ContractError               the Avro contracts are unreadable or inconsistent
    ├── SerializationError          an event could not be encoded or decoded
    │   ├── UndecodableError
    │   ├── UnknownEventTypeError
    │   ├── SchemaInvalidError
    │   └── WrongTopicError
    ├── QualityError                the quality core refused its input
    │   └── VoteFormatError
    └── LearningError               the learning package refused its input
        └── ArtifactError

The adapters' own errors (Kafka, ClickHouse, the annotation frontend, ingest, export) derive
from :class:`LabeltrailError` in their modules. The subpackages re-export the names their
callers use (``labeltrail.quality.VoteFormatError`` is this module's class, not a copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "ArtifactError",
    "ConfigurationError",
    "ContractError",
    "InvalidLinesError",
    "LabeltrailError",
    "LearningError",
    "LineError",
    "NotFittedError",
    "QualityError",
    "SchemaInvalidError",
    "SerializationError",
    "UndecodableError",
    "UnknownEventTypeError",
    "VoteFormatError",
    "WrongTopicError",
]


class LabeltrailError(Exception):
    """Base class for all labeltrail errors."""


class ConfigurationError(LabeltrailError):
    """A setting is missing or invalid."""


@dataclass(frozen=True)
class LineError:
    """One problem in an input file, at its line (1-based)."""

    line: int
    message: str


class InvalidLinesError(LabeltrailError):
    """One or more input lines (or fields) are not valid; nothing was produced.

    Input is checked all or nothing (comments, gold sets, label schemas, annotator pools):
    every problem is listed, each with its line.
    """

    what: ClassVar[str] = "line"

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        shown = "\n".join(f"  line {e.line}: {e.message}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} invalid {self.what}(s), nothing produced:\n{shown}{more}")


class NotFittedError(LabeltrailError, AttributeError):
    """An estimator (a consensus model, a calibrator, a label model) was used before ``fit``."""


# the event layer: contracts, encoding and decoding ---------------------------------------


class ContractError(LabeltrailError):
    """The Avro contracts are missing, unreadable or inconsistent with the models."""


class SerializationError(LabeltrailError):
    """An event could not be encoded or decoded. ``reason_code`` names the dead-letter reason."""

    reason_code = "undecodable"


class UndecodableError(SerializationError):
    """The bytes are not an Avro single-object message we can read."""

    reason_code = "undecodable"


class UnknownEventTypeError(SerializationError):
    """The message's schema fingerprint names no contract we know."""

    reason_code = "unknown_event_type"


class SchemaInvalidError(SerializationError):
    """The message decoded, but its content breaks the contract's rules."""

    reason_code = "schema_invalid"


class WrongTopicError(SerializationError):
    """The message is a valid event of a type that does not belong on its topic."""

    reason_code = "wrong_topic"


class RegistryUnavailableError(SerializationError):
    """A Confluent-framed message whose schema the schema registry could not be asked for
    (down, unreachable, or none configured)."""

    reason_code = "registry_unavailable"


# the quality core -------------------------------------------------------------------------


class QualityError(LabeltrailError):
    """Base class for errors of the quality core."""


class VoteFormatError(QualityError, ValueError):
    """Votes, gold labels or ratings are malformed (shape, dtype, range or missing values)."""


# the learning package ---------------------------------------------------------------------


class LearningError(LabeltrailError):
    """Base class for errors of the learning package."""


class ArtifactError(LearningError):
    """A model artifact is missing, unreadable or does not match its published hash."""
