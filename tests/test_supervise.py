"""What ``labeltrail up`` hands supervisord, and how restarts are counted (no processes here;
tests/cli/test_up.py runs them on the real broker)."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest

from labeltrail.exceptions import LabeltrailError
from labeltrail.stages import STAGES
from labeltrail.supervise import RunDir, programs, render_config, restarts


def test_every_stage_the_projector_and_the_frontend_are_programs() -> None:
    names = {p.name for p in programs()}
    assert names == {*STAGES, "projector", "annotate"}
    assert {p.name for p in programs(["trainer", "annotate"])} == names - {"trainer", "annotate"}
    with pytest.raises(LabeltrailError, match="unknown service"):
        programs(["tasknig"])


def test_the_config_is_what_supervisord_reads(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "50%" / "run")  # supervisord expands %(name)s: a % is doubled
    text = render_config(
        run,
        programs(frontend_args=["--tokens-file", "/x/tokens.txt"]),
        python="/venv/bin/python",
        cwd=tmp_path,
        environment={"LABELTRAIL_METRICS_PORT": "9400"},
    )
    # supervisord's own reader: interpolation turns %% back into %
    parser = configparser.ConfigParser(defaults={"here": str(tmp_path)})
    parser.read_string(text)
    tasking = parser["program:tasking"]
    assert tasking["command"] == "/venv/bin/python -m labeltrail.cli serve tasking"
    assert tasking["autorestart"] == "true"
    assert tasking["stopasgroup"] == tasking["killasgroup"] == "true"
    assert tasking["stdout_logfile"] == str(run.log_of("tasking"))
    assert parser["program:annotate"]["command"].endswith("serve --tokens-file /x/tokens.txt")
    assert parser["program:projector"]["command"].endswith("projections run --follow")
    assert parser["unix_http_server"]["file"] == str(run.socket)
    assert parser["supervisord"]["environment"] == 'LABELTRAIL_METRICS_PORT="9400"'
    assert parser["eventlistener:restarts"]["events"] == "PROCESS_STATE"


def test_restarts_are_starts_after_an_exit_or_a_failed_start(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    events = [
        ("PROCESS_STATE_STARTING", "tasking", "STOPPED"),  # the first start
        ("PROCESS_STATE_RUNNING", "tasking", "STARTING"),
        ("PROCESS_STATE_EXITED", "tasking", "RUNNING"),  # kill -9
        ("PROCESS_STATE_STARTING", "tasking", "EXITED"),  # restarted: 1
        ("PROCESS_STATE_STARTING", "annotate", "STOPPED"),
        ("PROCESS_STATE_BACKOFF", "annotate", "STARTING"),  # died within startsecs
        ("PROCESS_STATE_STARTING", "annotate", "BACKOFF"),  # restarted: 1
        ("PROCESS_STATE_STOPPING", "labels", "RUNNING"),  # a stop and a start: none
        ("PROCESS_STATE_STARTING", "labels", "STOPPED"),
    ]
    lines = [json.dumps({"event": e, "name": n, "from_state": f}) for e, n, f in events]
    run.events.write_text("\n".join([*lines, "not json"]) + "\n")
    assert restarts(run) == {"tasking": 1, "annotate": 1}
    assert restarts(RunDir(tmp_path / "none")) == {}
