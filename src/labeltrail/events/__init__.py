"""Event contracts: models, Avro serialization, deterministic ids and topics."""

from labeltrail.events.base import Envelope, Event, LogPosition, utc_now
from labeltrail.events.ids import derive_id, new_id
from labeltrail.events.models import *  # noqa: F403
from labeltrail.events.models import __all__ as _model_names
from labeltrail.events.serde import decode, encode

__all__ = [
    "Envelope",
    "Event",
    "LogPosition",
    "decode",
    "derive_id",
    "encode",
    "new_id",
    "utc_now",
    *_model_names,
]
