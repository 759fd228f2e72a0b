"""Every labeltrail service as one supervised set of processes (``labeltrail up``, ``down``,
``status``).

supervisord (the ``supervisor`` package) does the supervising: it starts each stage service,
the projector and the annotation frontend, restarts one that dies, rotates their logs and
stops them (the whole process group) on ``down``. This package only writes its configuration
under the run directory (default ``var/labeltrail/run``), starts it daemonized and talks to it
over its XML-RPC interface on a unix socket there. The one thing supervisord does not keep is
a restart count: a small event listener (:func:`listen`, ``python -m labeltrail.supervise``)
appends every process state change to ``events.jsonl`` and :func:`restarts` counts them.

What the processes are doing comes from Kafka, not from them: each stage's consumer lag per
partition (its group's committed offsets against the log's ends) and the dead letters each
stage wrote (:func:`stage_status`).
"""

from __future__ import annotations

from labeltrail.supervise.events import frontend_url, listen, orphans, restarts
from labeltrail.supervise.files import RUN_DIR, RunDir, SupervisorError
from labeltrail.supervise.processes import (
    ProcessStatus,
    Program,
    Supervisor,
    down,
    process_status,
    programs,
    render_config,
    up,
)
from labeltrail.supervise.status import (
    StageStatus,
    free_metrics_port,
    projector_status,
    stage_status,
)

__all__ = [
    "RUN_DIR",
    "ProcessStatus",
    "Program",
    "RunDir",
    "StageStatus",
    "Supervisor",
    "SupervisorError",
    "down",
    "free_metrics_port",
    "frontend_url",
    "listen",
    "orphans",
    "process_status",
    "programs",
    "projector_status",
    "render_config",
    "restarts",
    "stage_status",
    "up",
]
