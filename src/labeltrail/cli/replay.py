"""``labeltrail replay labels``: can the labels on the log be reproduced from their inputs?

Reads every input of the label-making folds from the log in batches (``kafka.log.read_values``),
runs them through the consensus and labels folds as the live stages are configured
(``stages.make_consensus``, ``stages.make_labels``) on the batch path
(``folds.batch.BatchReplay``), and compares the labels it commits with the ``LabelCommitted``
events on the labels topic: same label ids, labels and routes (``docs/replay.md``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from labeltrail.cli.common import console, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError
from labeltrail.folds.batch import BatchReplay, Comparison, Difference, Label

__all__ = ["DISAGREE", "register", "replay_app", "replay_labels"]

DISAGREE = 4
"""Exit code when the recomputed labels and the log's differ (as ``export verify``'s)."""

replay_app = typer.Typer(
    help="Replay the log through the folds at batch speed.", no_args_is_help=True
)


def replay_labels(settings: Settings) -> tuple[BatchReplay, Comparison]:
    """The log's inputs through the label-making folds, against the log's labels.

    Every topic's end is taken first, so the replay and the labels it is compared with stand
    at the same point of the log.
    """
    from labeltrail.events.topics import topic_name
    from labeltrail.folds.batch import compare, labels_on_log, replay_topics
    from labeltrail.kafka.log import end_positions, read_values
    from labeltrail.stages import make_consensus, make_labels

    replay = BatchReplay(make_consensus(settings), make_labels(settings))
    suffixes = replay_topics(replay.labels)
    names = {s: topic_name(settings.topic_prefix, s) for s in (*suffixes, "labels")}
    ends = end_positions(settings, list(names.values()))
    for suffix in suffixes:
        for values in read_values(settings, [p for p in ends if p.topic == names[suffix]]):
            replay.feed(values, suffix)
    replay.finish()
    labels = [p for p in ends if p.topic == names["labels"]]
    return replay, compare(labels_on_log(read_values(settings, labels)), replay.commits)


def _label(label: Label | None) -> dict[str, str] | None:
    return None if label is None else label._asdict()


def _difference(d: Difference) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "label_id": d.label_id,
        "logged": [_label(v) for v in d.logged],
        "recomputed": _label(d.recomputed),
    }


def _shown(label: Label | None) -> str:
    return "-" if label is None else f"{label.comment_id} {label.label} ({label.route})"


@replay_app.command("labels")
def labels(
    limit: Annotated[int, typer.Option(help="Differences to print at most.", min=0)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recompute every label from the log's inputs and compare with the labels on the log.

    Prints the counts (labels read from the log, recomputed, equal, differing, missing from
    the replay, extra in the replay, unreadable records on the labels topic) and up to
    ``--limit`` differences. Exit 0 when they agree, 4 when not.
    """
    settings = Settings()
    require_kafka(settings)
    try:
        replay, result = replay_labels(settings)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    shown = result.differences[:limit]
    if as_json:
        body = {
            **result.summary(),
            "agree": result.agree,
            "records": replay.records,
            "votes": replay.votes,
            "rejected": dict(replay.rejected),
            "differences": [_difference(d) for d in shown],
        }
        typer.echo(json.dumps(body))
    else:
        console.print(
            f"replayed {replay.records} records ({replay.votes} votes) of "
            f"{settings.topic_prefix}.*; rejected {dict(replay.rejected)}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            " ".join(f"{k} {v}" for k, v in result.summary().items()),
            highlight=False,
            soft_wrap=True,
        )
        for d in shown:
            logged = "; ".join(_shown(v) for v in d.logged) or "-"
            console.print(
                escape(f"{d.kind:<9} {d.label_id} log: {logged} replay: {_shown(d.recomputed)}"),
                highlight=False,
                soft_wrap=True,
            )
        if len(result.differences) > len(shown):
            console.print(f"... and {len(result.differences) - len(shown)} more differences")
    if not result.agree:
        raise typer.Exit(DISAGREE)
    if not as_json:
        console.print("the labels on the log are reproduced by their inputs")


def register(app: typer.Typer) -> None:
    """Add ``labeltrail replay ...`` to the main app."""
    app.add_typer(replay_app, name="replay")
