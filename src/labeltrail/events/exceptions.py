"""Errors of the event layer: contracts, encoding and decoding."""

from __future__ import annotations

from labeltrail.exceptions import LabeltrailError

__all__ = [
    "ContractError",
    "SchemaInvalidError",
    "SerializationError",
    "UndecodableError",
    "UnknownEventTypeError",
    "WrongTopicError",
]


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
