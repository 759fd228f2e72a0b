"""The files of one supervised set of processes under the run directory."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labeltrail.exceptions import LabeltrailError

__all__ = ["RUN_DIR", "START_SECONDS", "STOP_WAIT_SECONDS", "RunDir", "SupervisorError"]


RUN_DIR = Path("var/labeltrail/run")
"""Where ``labeltrail up`` keeps supervisord's configuration, socket, PID file and the logs
(relative to the directory it is run from, like the embedded ClickHouse directory)."""

START_SECONDS = 3
"""A process counts as started once it has run this long (supervisord's ``startsecs``)."""

_UNIX_PATH_MAX = 100
"""The longest socket path used as is (the kernel's limit is 107 bytes; a margin below it)."""

STOP_WAIT_SECONDS = 30
"""SIGTERM, then SIGKILL after this long: a stage finishes its batch and commits first."""


class SupervisorError(LabeltrailError):
    """supervisord could not be started, reached or stopped."""


@dataclass(frozen=True)
class RunDir:
    """The files of one supervised set of processes."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def socket(self) -> Path:
        """``supervisor.sock`` in the run directory, or, where that path is too long for a unix
        socket (108 bytes with its terminator; a deep working directory, e.g. a test's), one in
        the temporary directory named by a hash of the run directory."""
        here = self.root.resolve() / "supervisor.sock"
        if len(os.fsencode(here)) <= _UNIX_PATH_MAX:
            return here
        digest = hashlib.sha256(os.fsencode(self.root.resolve())).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"labeltrail-supervisor-{digest}.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One ``up`` or ``down`` at a time on this directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
