"""The topic registry: names, keys, partitions and retention of every topic.

Pure data: creating the topics is :mod:`labeltrail.kafka.admin`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "PICKED_BY",
    "TOPICS",
    "WEAK_ROUTE",
    "WEAK_RUN",
    "TopicSpec",
    "events_on",
    "foreign",
    "topic_for",
    "topic_name",
]


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its suffix after the prefix, what it is keyed by and how it is kept."""

    suffix: str
    key: str
    events: tuple[str, ...]
    compacted: bool = False
    single_partition: bool = False
    mirror: bool = False
    """Its records are copies of events whose own topic is another one (their type's first
    topic in the registry); sinks that read every topic (the projector) skip it."""
    doc: str = ""
    config: dict[str, str] = field(default_factory=dict)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("comments", "comment_id", ("CommentPosted",), doc="Comments posted or pooled."),
    TopicSpec(
        "schemas",
        "version",
        ("LabelSchemaPublished",),
        compacted=True,
        single_partition=True,
        doc="Label ontology versions.",
    ),
    TopicSpec("scores", "comment_id", ("CommentScored",), doc="Model scores and routes."),
    TopicSpec("tasks", "comment_id", ("TaskCreated",), doc="Internal task records."),
    TopicSpec(
        "tasks.crowd",
        "annotator_id",
        ("TaskAssigned",),
        doc="Crowd task topic: frontends read their annotator's key.",
    ),
    TopicSpec(
        "tasks.expert",
        "annotator_id",
        ("TaskAssigned",),
        doc="Expert (adjudication) task topic.",
    ),
    TopicSpec(
        "requests",
        "comment_id",
        ("TaskRequested",),
        doc="Task requests: comments active learning sampled for labelling, and why.",
    ),
    TopicSpec("votes", "comment_id", ("VoteCast",), doc="Votes from annotation frontends."),
    TopicSpec(
        "consensus",
        "comment_id",
        ("ConsensusUpdated", "AdjudicationRequested"),
        doc="Rolling consensus and adjudication requests.",
    ),
    TopicSpec("adjudications", "comment_id", ("AdjudicationRecorded",), doc="Expert verdicts."),
    TopicSpec("labels", "comment_id", ("LabelCommitted",), doc="Labels that passed QC."),
    TopicSpec(
        "relabels",
        "comment_id",
        ("LabelCommitted",),
        doc="Labels of labeling runs (labeltrail relabel), each naming its run; not live labels.",
    ),
    TopicSpec(
        "questions",
        "comment_id",
        ("QuestionLabelCommitted",),
        doc="Per-question consensus of each complete item (targets a group? a threat? ...).",
    ),
    TopicSpec(
        "weak.votes",
        "comment_id",
        ("WeakVoteCast",),
        doc="Labeling functions' votes (the lf stage), each naming its LF and version.",
    ),
    TopicSpec(
        "weak.labels",
        "comment_id",
        ("LabelCommitted",),
        doc="Weak labels: the joint label model's, route weak, machine-made; not human labels.",
    ),
    TopicSpec(
        "quality",
        "annotator_id",
        ("HoneypotScored", "AnnotatorReliabilityUpdated", "CalibrationFitted"),
        doc="Honeypot results, annotator reliability and the consensus confidence's calibration.",
    ),
    TopicSpec(
        "annotators.status",
        "annotator_id",
        ("AnnotatorSuspended", "AnnotatorReinstated"),
        doc=(
            "Suspensions and reinstatements (kept whole: a status must not compact away the "
            "registration, and tasking reads these without the quality topic's bulk)."
        ),
    ),
    TopicSpec("iaa", "slice", ("IaaWindowClosed",), doc="Agreement windows and alerts."),
    TopicSpec("feedback", "comment_id", ("FeedbackReceived",), doc="Production signals."),
    TopicSpec(
        "models",
        "model_version",
        ("ModelPublished",),
        compacted=True,
        single_partition=True,
        doc="Published models.",
    ),
    TopicSpec(
        "models.refused",
        "model_version",
        ("ModelRefused",),
        single_partition=True,
        doc="Models the publish gate refused, with the per-slice figures (kept whole).",
    ),
    TopicSpec("exports", "export_id", ("ExportCreated",), single_partition=True, doc="Exports."),
    TopicSpec(
        "annotators",
        "annotator_id",
        ("AnnotatorRegistered",),
        compacted=True,
        doc="Annotator registry.",
    ),
    TopicSpec("deadletter", "source_topic", ("DeadLettered",), doc="Every rejected input."),
    TopicSpec(
        "erasures",
        "erasure_id",
        ("CommentsErased",),
        single_partition=True,
        doc="Erasures (labeltrail erase): which comments' keys were destroyed, by whom (whole).",
    ),
    TopicSpec(
        "gold",
        "comment_id",
        ("CommentPosted", "AdjudicationRecorded"),
        mirror=True,
        doc=(
            "The gold set whole: each gold item's comment and verdict, copied from comments "
            "and adjudications, so that every tasking worker can pair its honeypots with "
            "any gold item."
        ),
    ),
)

_BY_EVENT: dict[str, TopicSpec] = {}
for _spec in TOPICS:
    for _event in _spec.events:
        _BY_EVENT.setdefault(_event, _spec)


def topic_name(prefix: str, suffix: str) -> str:
    """The full topic name, e.g. ``labeltrail.votes``."""
    return f"{prefix}.{suffix}"


WEAK_ROUTE = "weak"
"""A ``LabelCommitted`` on this route is the joint label model's (machine-made): it goes to
``weak.labels``, never to the human labels' topic."""

WEAK_RUN = "weak"
"""The run id weak labels carry: like a labeling run's labels they are not live, so every
read of the live labels leaves them out (``run_id = ''``), and a read names them to get them
(``labeltrail audit label-as-of --run weak``, ``labeltrail export create --run weak``)."""


PICKED_BY: dict[str, str] = {"TaskAssigned": "pool", "LabelCommitted": "route"}
"""The event types whose topic one of their fields picks (:func:`topic_for`'s keyword of the
same name); every other type has one topic."""


def topic_for(
    event_type: str, prefix: str, *, pool: str | None = None, route: str | None = None
) -> str:
    """The topic an event type is written to (task assignments go to their pool's topic, weak
    labels to ``weak.labels``)."""
    if event_type == "TaskAssigned":
        return topic_name(prefix, f"tasks.{pool or 'crowd'}")
    if event_type == "LabelCommitted" and route == WEAK_ROUTE:
        return topic_name(prefix, "weak.labels")
    spec = _BY_EVENT.get(event_type)
    if spec is None:
        raise KeyError(f"no topic for event type {event_type!r}")
    return topic_name(prefix, spec.suffix)


def events_on(prefix: str) -> dict[str, frozenset[str]]:
    """The event types that belong on each topic, by full topic name.

    A record of another type on a topic (a valid ``CommentPosted`` produced to the votes topic)
    is foreign to it: a stage dead-letters it instead of taking it.
    """
    return {topic_name(prefix, spec.suffix): frozenset(spec.events) for spec in TOPICS}


def foreign(on_topic: dict[str, frozenset[str]], topic: str, kind: str) -> str | None:
    """Why a ``kind`` record does not belong on ``topic`` (per :func:`events_on`), or None."""
    allowed = on_topic.get(topic)
    if allowed is None or kind in allowed:
        return None
    return f"a {kind} does not belong on {topic} (it carries {', '.join(sorted(allowed))})"
