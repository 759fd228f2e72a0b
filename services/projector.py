"""Projector: every topic in; ClickHouse tables out (the process that owns a chdb directory)."""

import logging
import signal
import threading

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.config import settings
from labeltrail.exceptions import LabeltrailError
from labeltrail.kafka.admin import ensure_topics


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    config = settings()
    ensure_topics(config)
    client = client_from(config)
    apply_ddl(client)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        Projector(client, config).run(stop)
    except LabeltrailError as exc:  # a taken metrics port and the like: one line, the cause
        logging.getLogger("projector").error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
