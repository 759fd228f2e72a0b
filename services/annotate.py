"""The annotation frontend service: task topics in, VoteCast / AdjudicationRecorded out.

Wiring only; see :mod:`labeltrail.annotate`. Configure with ``KAFKA_BOOTSTRAP_SERVERS``,
``LABELTRAIL_TOPIC_PREFIX`` and ``LABELTRAIL_ANNOTATE_*`` (tokens file, host, port, limits).
"""

from __future__ import annotations

from labeltrail.annotate import serve
from labeltrail.config import Settings

__all__ = ["main"]


def main() -> None:
    """Serve until SIGTERM."""
    serve(Settings())


if __name__ == "__main__":
    main()
