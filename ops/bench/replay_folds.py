"""The batch replay's folds alone, in process: this tree's against another revision's.

    .venv/bin/python ops/bench/replay_folds.py [--comments 40000] [--baseline HEAD] [--rounds 3]

Builds ``streaming_parts.synthetic_history`` (seed 5: a crowd task and 3 votes per comment),
turns it once into the rows ``events.columnar.decode_rows`` gives (``VoteRow.of``,
``TaskRow.of``: the same rows, without depending on the decoder), in batches of 20,000
records (schemas, then tasks, then votes, the order ``ops/bench/replay.py`` reads), and runs
``ConsensusFold.apply_batch`` and ``LabelsFold.apply_batch`` over those rows exactly as
``replay.py``'s batch path does (labels read at consecutive offsets of ``labels-in``, each
label's id, comment and class read). No Kafka.

The baseline's ``consensus.py`` and ``labels.py`` are taken from ``git show REV:...`` into a
temporary package and fed the very same rows. The two alternate for ``--rounds`` rounds, gc
off, each timed in thread CPU seconds (``time.thread_time``). Every output of both, every
label included, is materialised and compared on the first ``--check`` votes' outputs, and the
label sets must be equal on the whole run; otherwise the run fails.

Prints one JSON line per figure (as ``replay.py`` does); load average and sizes go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay import LABELS_IN, fold_rows
from streaming_parts import emit, note, synthetic_history

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.columnar import TaskRow, VoteRow
from labeltrail.events.models import TaskCreated, VoteCast
from labeltrail.folds import consensus as new_consensus
from labeltrail.folds import labels as new_labels
from labeltrail.folds.base import Rejected
from labeltrail.ontology import moderation_schema_v3

ROOT = Path(__file__).resolve().parents[2]


def baseline_modules(rev: str, into: Path) -> tuple[ModuleType, ModuleType]:
    """``consensus`` and ``labels`` as of ``rev``, the labels module importing that consensus."""

    def source(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    modules = []
    for name in ("consensus", "labels"):
        text = source(f"src/labeltrail/folds/{name}.py").replace(
            "from labeltrail.folds.consensus import", "from baseline_consensus import"
        )
        path = into / f"baseline_{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"baseline_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules[0], modules[1]


def history_rows(comments: int, sample: int = 0) -> tuple[list[list[Any]], int, list[Event]]:
    """The decoded batches, in replay order, the number of votes, and the events of the
    first ``sample`` comments in replay order (for the per-event path)."""
    tasks: list[Event] = []
    votes: list[Event] = []
    for chunk in synthetic_history(comments, seed=5):
        for event in chunk:
            (votes if type(event).__name__ == "VoteCast" else tasks).append(event)
    events: list[Event] = [moderation_schema_v3(), *tasks[:sample], *votes[: 3 * sample]]
    rows: list[Any] = [
        moderation_schema_v3(),
        *(TaskRow.of(t) for t in tasks if isinstance(t, TaskCreated)),
        *(VoteRow.of(v) for v in votes if isinstance(v, VoteCast)),
    ]
    batches = [rows[lo : lo + 20_000] for lo in range(0, len(rows), 20_000)]
    return batches, len(votes), events


def per_event(consensus_mod: ModuleType, labels_mod: ModuleType, events: list[Event]) -> float:
    """``apply`` per event, consensus outputs to labels, as ``replay.py``'s per-event path
    (thread CPU s)."""
    consensus = consensus_mod.ConsensusFold(consensus_mod.ConsensusConfig())
    labels = labels_mod.LabelsFold()
    position = LogPosition(topic="replay", partition=0, offset=0)
    offset = 0
    t0 = time.thread_time()
    for event in events:
        for out in consensus.apply(event, position):
            if not isinstance(out, Rejected):
                labels.apply(out, LogPosition(topic=LABELS_IN, partition=0, offset=offset))
                offset += 1
    return time.thread_time() - t0


def folds(
    consensus_mod: ModuleType, labels_mod: ModuleType, batches: list[list[Any]], keep: bool
) -> tuple[float, dict[str, tuple[str, str]], list[Any]]:
    """``replay.py``'s batch path minus the decode: (thread CPU s, labels, kept outputs)."""
    consensus = consensus_mod.ConsensusFold(consensus_mod.ConsensusConfig())
    labels = labels_mod.LabelsFold()
    label_type = labels_mod.LabelRow
    found: dict[str, tuple[str, str]] = {}
    kept: list[Any] = []
    offset = 0
    cpu = 0.0
    for rows in batches:
        t0 = time.thread_time()
        outs, labelled, offset = fold_rows(rows, consensus, labels, offset)
        for label in labelled:
            if isinstance(label, label_type):
                found[label.label_id] = (label.comment_id, label.label)
        cpu += time.thread_time() - t0
        if keep:
            kept += outs
            kept += labelled
    return cpu, found, kept


def comparable(out: object) -> object:
    to_event = getattr(out, "to_event", None)
    if to_event is not None:
        out = to_event()
    if isinstance(out, Event):
        data = out.model_dump()
        del data["envelope"]["recorded_at"]
        return (type(out).__name__, data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=40_000)
    parser.add_argument("--baseline", default="HEAD")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", type=int, default=6_000, help="votes compared output by output")
    parser.add_argument(
        "--apply-comments", type=int, default=5_000, help="comments timed through apply"
    )
    args = parser.parse_args()
    gc.disable()
    note(f"load average={os.getloadavg()} cpus={os.cpu_count()}")
    batches, n_votes, events = history_rows(args.comments, args.apply_comments)
    note(f"{n_votes} votes, {sum(map(len, batches))} rows in {len(batches)} batches")

    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_modules(args.baseline, Path(tmp))
        new = (new_consensus, new_labels)
        # identity first: the first --check votes' outputs, materialised, and all labels
        cut = _rows_until_votes(batches, args.check)
        _, _, old_out = folds(*old, cut, keep=True)
        _, _, new_out = folds(*new, cut, keep=True)
        if [comparable(o) for o in new_out] != [comparable(o) for o in old_out]:
            raise SystemExit("outputs differ from the baseline's")
        note(f"first {args.check} votes: {len(new_out)} outputs identical to {args.baseline}'s")
        times: dict[str, list[float]] = {"old": [], "new": []}
        labels: dict[str, dict[str, tuple[str, str]]] = {}
        for _ in range(args.rounds):
            for name, mods in (("old", old), ("new", new)):
                cpu, found, _ = folds(*mods, batches, keep=False)
                times[name].append(cpu)
                labels[name] = found
                note(f"{name}: {cpu:.2f} CPU-s, {len(found)} labels; load {os.getloadavg()}")
        if labels["old"] != labels["new"]:
            raise SystemExit("label sets differ from the baseline's")
        applied: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for name, mods in (("old", old), ("new", new)):
                applied[name].append(per_event(*mods, events))
    best = {name: min(t) for name, t in times.items()}
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    emit(
        f"folds votes per CPU-second, consensus+labels apply_batch, {n_votes} votes (best round)",
        n_votes / best["new"],
        "votes/CPU-s",
        f"{args.baseline} (same rows, same process, alternating)",
        n_votes / best["old"],
    )
    emit(
        f"folds votes per CPU-second, {n_votes} votes (median round)",
        n_votes / median["new"],
        "votes/CPU-s",
        f"{args.baseline}",
        n_votes / median["old"],
    )
    n_applied = 3 * args.apply_comments
    emit(
        f"folds votes per CPU-second, consensus+labels apply per event, {n_applied} votes "
        "(best round)",
        n_applied / min(applied["new"]),
        "votes/CPU-s",
        f"{args.baseline} (same events, same process, alternating)",
        n_applied / min(applied["old"]),
    )
    note(
        f"us per vote: new {1e6 * best['new'] / n_votes:.1f}, "
        f"{args.baseline} {1e6 * best['old'] / n_votes:.1f}; load average={os.getloadavg()}"
    )


def _rows_until_votes(batches: list[list[Any]], votes: int) -> list[list[Any]]:
    """The batches cut after their first ``votes`` votes."""
    out: list[list[Any]] = []
    seen = 0
    for rows in batches:
        kept = []
        for row in rows:
            if type(row).__name__ == "VoteRow":
                if seen >= votes:
                    break
                seen += 1
            kept.append(row)
        out.append(kept)
        if seen >= votes:
            break
    return out


if __name__ == "__main__":
    main()
