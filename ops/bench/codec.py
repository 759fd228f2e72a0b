"""Benchmark: the event codec's hot path, native (``labeltrail_native``) against pure Python.

    python ops/bench/codec.py [--scale small|article]

Per hot event type, the CPU of one ``serde.encode`` and one ``serde.decode`` (what every stage
pays per input and output) on the native compiled codec, against the pure-Python compiled codec
(the fallback) and against the general path (fastavro + pydantic ``model_validate`` /
``model_dump``); and ``columnar.decode_rows`` per record (a batch of VoteCast and TaskCreated, as
the replay reads them), native against the fastavro rows path. All in one process, thread CPU
time, best of N repeats, the implementations interleaved per repeat. Needs the native module
built (``bash ops/setup.sh``); LABELTRAIL_NATIVE is ignored here.

Ends with one JSON object per figure per line: figure, value, unit, peer, peer_value, ratio
(> 1: ours, the native codec, is better).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.events.samples import sample_event

from labeltrail.events import codec, columnar, serde
from labeltrail.events import native as native_codec
from labeltrail.events.avro import committed_schemas, writer_schemas

HOT = ["VoteCast", "TaskCreated", "TaskAssigned", "ConsensusUpdated", "LabelCommitted"]
SCALES = {"small": (2_000, 5), "article": (20_000, 9)}
"""calls per repeat, repeats"""


def _per_call_us(fn: Callable[[], Any], calls: int) -> float:
    start = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - start) / calls * 1e6


def _best(fns: dict[str, Callable[[], Any]], calls: int, repeats: int) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = min(best[name], _per_call_us(fn, calls))
    return best


def _row(figure: str, value: float, peer: str, peer_value: float) -> dict[str, Any]:
    return {
        "figure": figure,
        "value": round(value, 3),
        "unit": "us",
        "peer": peer,
        "peer_value": round(peer_value, 3),
        "ratio": round(peer_value / value, 2),
    }


def _use(impl: Callable[[str], Any]) -> None:
    """Point serde's encode/decode at one implementation of the compiled codec."""
    vars(serde)["_compiled"] = impl


def _with(impl: Callable[[str], Any], fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        _use(impl)
        return fn()

    return run


def codec_rows(calls: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    python = codec.compiled_python

    def native(name: str) -> Any:
        return native_codec.compiled_native(name) or codec.compiled_python(name)

    for name in HOT:
        event = sample_event(name)
        data = serde.encode(event)
        schema = committed_schemas()[name]
        fp = next(f for f, w in writer_schemas().items() if w.schema is schema)

        def general_encode(event: Any = event, schema: Any = schema, fp: bytes = fp) -> bytes:
            return serde.encode_with(schema, fp, event.model_dump())

        def general_decode(data: bytes = data, name: str = name) -> Any:
            return serde._decode_general(data, name)

        assert native(name).native, f"{name}: no native codec"
        _use(native)
        assert serde.encode(event) == data == general_encode()
        assert serde.decode(data) == general_decode() == event
        _use(python)
        assert serde.encode(event) == data and serde.decode(data) == event

        for what, call, general in (
            ("encode", partial(serde.encode, event), general_encode),
            ("decode", partial(serde.decode, data), general_decode),
        ):
            got = _best(
                {"native": _with(native, call), "python": _with(python, call), "general": general},
                calls,
                repeats,
            )
            rows.append(_row(f"{what}_{name}_us", got["native"], "python_compiled", got["python"]))
            rows.append(
                _row(f"{what}_{name}_us", got["native"], "fastavro_pydantic", got["general"])
            )
    _use(codec.compiled)
    return rows


def decode_rows_rows(calls: int, repeats: int) -> list[dict[str, Any]]:
    vote, task = sample_event("VoteCast"), sample_event("TaskCreated")
    batch = [
        serde.encode(
            vote.model_copy(update={"vote_id": f"vote-{i}"})
            if i % 4
            else task.model_copy(update={"task_id": f"task-{i}", "annotators": ["a1", "a2"]})
        )
        for i in range(max(calls // 2, 500))
    ]
    native_rows = columnar._native_rows
    assert native_rows() is not None, "no native rows reader"

    def run(rows: Callable[[], Any]) -> Callable[[], Any]:
        def go() -> Any:
            columnar._native_rows = rows  # type: ignore[assignment]
            return columnar.decode_rows(batch)

        return go

    native, python = run(native_rows), run(lambda: None)
    assert native().rows == python().rows and native().fast == python().fast == len(batch)
    got = _best({"native": native, "python": python}, 1, repeats)
    columnar._native_rows = native_rows
    per = {k: v / len(batch) for k, v in got.items()}
    return [_row("decode_rows_per_record_us", per["native"], "python_fastavro_rows", per["python"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    args = parser.parse_args()
    if native_codec.native is None:
        sys.exit("codec bench: labeltrail_native is not built (bash ops/setup.sh)")
    calls, repeats = SCALES[args.scale]
    load = os.getloadavg()
    print(f"codec bench, scale {args.scale}: {calls} calls x best of {repeats}; load {load}")
    rows = codec_rows(calls, repeats) + decode_rows_rows(calls, repeats)
    print(f"load after: {os.getloadavg()}")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
