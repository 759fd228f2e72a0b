"""The event contracts, as frozen pydantic models.

Each class mirrors ``schemas/avro/<Name>.avsc``; ``tests/events/test_contracts.py`` fails when
the two drift. Enumerations are ``Literal`` types: Avro carries them as strings so that adding
a value never breaks an old reader, and validation on decode rejects unknown values (the event
then goes to the dead-letter topic as schema-invalid).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from labeltrail.events.base import Event, LogPosition, Millis, Record

__all__ = [
    "COMMENT_TEXT_MAX",
    "DEAD_LETTER_PAYLOAD_MAX",
    "DEAD_LETTER_PREFIX",
    "EVENT_TYPES",
    "GOLD_REQUEST_PREFIX",
    "SEALED_TEXT_MAX",
    "ActorKind",
    "AdjudicationRecorded",
    "AdjudicationRequested",
    "AnnotatorRegistered",
    "AnnotatorReinstated",
    "AnnotatorReliabilityUpdated",
    "AnnotatorSuspended",
    "CalibrationFitted",
    "CommentPosted",
    "CommentScored",
    "CommentsErased",
    "ConsensusUpdated",
    "DeadLettered",
    "ExportCreated",
    "FeedbackReceived",
    "HoneypotScored",
    "IaaWindowClosed",
    "LabelCommitted",
    "LabelSchemaPublished",
    "ModelPublished",
    "ModelRefused",
    "PriorVote",
    "Question",
    "QuestionLabelCommitted",
    "SamplingStrategy",
    "TaskAssigned",
    "TaskCreated",
    "TaskRequested",
    "VoteCast",
    "WeakVoteCast",
]

Probability = float
TaskKind = Literal["crowd", "expert", "honeypot"]
Pool = Literal["crowd", "expert"]
TaskReason = Literal[
    "low_confidence",
    "active_learning",
    "random_audit",
    "adjudication",
    "honeypot",
    "relabel",
    "reassigned",
    "production_feedback",
    "import",
]
"""Why a task was made; ``reassigned``: the open share of a suspended annotator's task, given to
another annotator (caused by the ``AnnotatorSuspended``); ``production_feedback``: an expert
review of a committed label an appeal or a moderator override contradicts (the feedback stage);
``import``: a task of a past campaign brought in by ``labeltrail import votes``."""


COMMENT_TEXT_MAX = 10_000
"""The longest comment text a producer may post, in characters."""

SEALED_TEXT_MAX = 60_000
"""The longest text field the contract carries: a posted text of ``COMMENT_TEXT_MAX``
characters sealed (``events.crypto``: up to 4 bytes a character, base64, the key id)."""


class CommentPosted(Event):
    """A comment entered the system, from the product log or the unlabeled pool."""

    key_field: ClassVar[str] = "comment_id"

    comment_id: str = Field(min_length=1)
    video_id: str = Field(min_length=1)
    author_hash: str = Field(
        description="Hashed author id; never the raw id (sealed with erasure on)."
    )
    text: str = Field(
        min_length=1,
        max_length=SEALED_TEXT_MAX,
        description=(
            "At most COMMENT_TEXT_MAX characters as posted (ingest checks); sealed "
            "(events.crypto) with erasure on."
        ),
    )
    posted_at: Millis
    source: Literal["product_log", "pool"]
    parent_ids: list[str] = Field(default=[], description="Thread context: parent comment ids.")
    attributes: dict[str, str] = Field(
        default={}, description="Slicing attributes, e.g. language, category."
    )


class Question(Record):
    """One atomic decision a task asks for."""

    question_id: str
    text: str
    answers: list[str]


class LabelSchemaPublished(Event):
    """A version of the label ontology, with its policy for labels made under older ones."""

    key_field: ClassVar[str] = "version"

    version: str = Field(min_length=1)
    classes: list[str] = Field(min_length=2)
    questions: list[Question]
    guideline_hash: str
    supersedes: str | None = None
    old_label_policy: Literal["none", "relabel_subset", "discard", "keep_as_feature"] = "none"
    relabel_classes: list[str] = Field(
        default=[], description="With relabel_subset: old labels of these classes are re-queued."
    )


class CommentScored(Event):
    """The deployed model's scores for a comment and the route they chose."""

    key_field: ClassVar[str] = "comment_id"

    comment_id: str
    model_version: str
    classes: list[str]
    probabilities: list[Probability]
    margin: float = Field(ge=0.0, le=1.0)
    route: Literal["annotate", "auto_accept", "none"]
    threshold: float
    temperature: float | None = Field(
        default=None,
        gt=0.0,
        description="The model's gold-fitted temperature applied before the auto-accept gate "
        "(v2; none: the model has no calibration map).",
    )
    confidence: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="The calibrated top probability that gated auto-accept (v2; none: no map, "
        "the top probability gated).",
    )


class TaskCreated(Event):
    """A unit of annotation work for one comment under one schema version."""

    key_field: ClassVar[str] = "comment_id"

    task_id: str
    comment_id: str
    schema_version: str
    kind: TaskKind
    reason: TaskReason
    questions: list[str]
    redundancy: int = Field(ge=1)
    annotators: list[str] = Field(
        default=[], description="Who the task is assigned to (validates votes, comment-keyed)."
    )
    cost_usd: float = Field(0.0, ge=0.0, description="Total cost of the task's assignments.")
    prelabel: str | None = None
    prelabel_confidence: float | None = Field(None, ge=0.0, le=1.0)
    expected_label: str | None = Field(None, description="Known answer (honeypots) - internal.")
    request_id: str | None = Field(None, description="The adjudication request it answers.")


SamplingStrategy = Literal["least_confidence", "margin", "entropy", "qbc"]
"""How active learning scores the worth of labelling a comment (``learning.active``)."""


class TaskRequested(Event):
    """A stage asks tasking for a crowd task on a comment, and says why.

    Written by the active learning stage (``folds.active``) for each comment of a batch it
    sampled from the scored, unlabeled pool: the strategy, its value for the comment (higher:
    more worth labelling), the rank in the batch, the batch and what triggered it. Tasking turns
    it into a crowd task with the request's reason (its ``request_id`` on the task).
    """

    key_field: ClassVar[str] = "comment_id"

    request_id: str = Field(min_length=1)
    comment_id: str = Field(min_length=1)
    reason: TaskReason
    strategy: SamplingStrategy
    score: float = Field(description="The strategy's value for the comment (higher: less sure).")
    rank: int = Field(ge=1, description="Its place in the batch (1: picked first).")
    batch_id: str
    batch_size: int = Field(ge=1, description="How many comments the batch requested.")
    trigger: Literal["labels", "time"] = Field(
        description="labels: N new labels since the last batch; time: T minutes of event time."
    )
    model_versions: list[str] = Field(
        description="The published models whose scores were used (several for qbc)."
    )
    diversity: float = Field(ge=0.0, le=1.0, description="The weight given to diversity.")
    cost_usd: float = Field(ge=0.0, description="What the task costs the day's budget.")


class PriorVote(Record):
    """A crowd vote as an adjudicating expert sees it."""

    annotator_id: str
    label: str
    confidence: float | None = None


class TaskAssigned(Event):
    """A task handed to one annotator, on the pool's task topic. Honeypots look the same."""

    key_field: ClassVar[str] = "annotator_id"

    task_id: str
    assignment_id: str
    comment_id: str
    annotator_id: str
    pool: Pool
    schema_version: str
    questions: list[str]
    text: str
    context: list[str] = Field(default=[], description="Thread context granted to the task.")
    prelabel: str | None = None
    prelabel_confidence: float | None = None
    prior_votes: list[PriorVote] = Field(default=[], description="Expert tasks only.")
    request_id: str | None = Field(None, description="The adjudication request it answers.")
    cost_usd: float = Field(ge=0.0)


class VoteCast(Event):
    """An annotator's answer to an assigned task."""

    key_field: ClassVar[str] = "comment_id"

    vote_id: str
    task_id: str
    comment_id: str
    annotator_id: str
    schema_version: str
    label: str
    answers: dict[str, str] = Field(default={}, description="question id -> answer")
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    time_spent_ms: int = Field(ge=0)
    prelabel_shown: bool = False


class ConsensusUpdated(Event):
    """The rolling consensus for a comment under a schema version."""

    key_field: ClassVar[str] = "comment_id"

    comment_id: str
    schema_version: str
    method: str
    method_params: dict[str, str] = {}
    classes: list[str]
    posterior: list[Probability]
    label: str
    agreement: float
    vote_ids: list[str]
    annotator_ids: list[str] = []
    votes_expected: int = Field(ge=1)
    status: Literal["collecting", "passed", "adjudication"] = Field(
        description="collecting: waiting for votes; passed: QC gate met; adjudication: sent on."
    )


class AdjudicationRequested(Event):
    """Disagreement (or a policy) sent the comment to the expert pool."""

    key_field: ClassVar[str] = "comment_id"

    request_id: str
    comment_id: str
    schema_version: str
    reason: str
    agreement: float
    threshold: float
    vote_ids: list[str]


class AdjudicationRecorded(Event):
    """An expert's verdict; it overrides the crowd."""

    key_field: ClassVar[str] = "comment_id"

    adjudication_id: str
    request_id: str
    task_id: str
    comment_id: str
    schema_version: str
    reviewer_id: str
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    note: str = ""
    context_seen: list[str] = []


GOLD_REQUEST_PREFIX = "gold:"
"""An ``AdjudicationRecorded`` whose request id starts with this is a gold-set verdict
(``labeltrail gold publish``), not the answer to a live adjudication request."""


class LabelCommitted(Event):
    """A label that passed quality control, with its full provenance."""

    key_field: ClassVar[str] = "comment_id"

    label_id: str
    comment_id: str
    schema_version: str
    label: str
    classes: list[str]
    distribution: list[Probability]
    confidence: float = Field(ge=0.0, le=1.0)
    route: Literal["consensus", "adjudication", "auto_accept", "weak"]
    method: str
    method_params: dict[str, str] = {}
    vote_ids: list[str]
    annotator_ids: list[str]
    adjudication_id: str | None = None
    machine_made: bool = False
    gold_label: str | None = None
    source_positions: list[LogPosition] = []
    run_id: str | None = Field(
        None,
        description=(
            "The labeling run that made it (labeltrail relabel), on the relabels topic; "
            "None for the live pipeline's labels (v2)."
        ),
    )


class QuestionLabelCommitted(Event):
    """One atomic question's consensus for a comment, committed with its own agreement.

    Made once an item's crowd consensus is complete (``ConsensusUpdated`` status ``passed`` or
    ``adjudication``), from the ``answers`` of exactly the votes that consensus counted: the
    majority answer (ties: the first answer in the schema's order), each answer's share of the
    votes and the share of agreeing vote pairs (the quality core's per-item rules). Committed
    whether or not the agreement is high: ``agreement`` says how far it can be trusted.
    """

    key_field: ClassVar[str] = "comment_id"

    label_id: str
    comment_id: str
    schema_version: str
    question_id: str
    answer: str
    answers: list[str] = Field(description="The question's answers, in the schema's order.")
    distribution: list[Probability] = Field(description="Each answer's share of the votes.")
    agreement: float = Field(ge=0.0, le=1.0, description="Share of agreeing vote pairs.")
    method: str
    vote_ids: list[str] = Field(description="The votes that answered the question.")
    annotator_ids: list[str]
    consensus_id: str = Field(description="The ConsensusUpdated whose votes it counts.")


class WeakVoteCast(Event):
    """A machine source's vote on a comment: a labeling function's, named and versioned.

    Made by the ``lf`` stage (``folds.lf``), one per LF and comment, ``label`` None when the LF
    abstains (an LF's silence is an observation for the joint label model). The id is fixed by
    the comment and the LF's name and version, so a replay writes the same votes.
    """

    key_field: ClassVar[str] = "comment_id"

    vote_id: str
    comment_id: str
    schema_version: str
    source: Literal["lf"] = Field(description="What kind of machine source voted.")
    source_name: str = Field(description="The LF's name (its entry point or settings path).")
    source_version: str
    label: str | None = Field(None, description="The class voted; None = abstain.")


class HoneypotScored(Event):
    """An annotator's answer on a honeypot or gold item, scored."""

    key_field: ClassVar[str] = "annotator_id"

    annotator_id: str
    task_id: str
    vote_id: str
    comment_id: str
    schema_version: str
    source: Literal["honeypot", "gold", "adjudication"]
    expected_label: str
    given_label: str
    correct: bool


class AnnotatorReliabilityUpdated(Event):
    """A new reliability estimate for an annotator, with the value it replaces."""

    key_field: ClassVar[str] = "annotator_id"

    annotator_id: str
    schema_version: str
    method: Literal["beta_gold", "dawid_skene", "adjudication"]
    accuracy: float = Field(ge=0.0, le=1.0)
    accuracy_lower: float = Field(ge=0.0, le=1.0)
    accuracy_upper: float = Field(ge=0.0, le=1.0)
    previous_accuracy: float | None = None
    n_observations: int = Field(ge=0)
    classes: list[str] = []
    confusion: list[list[float]] = Field(default=[], description="rows: truth, cols: answer")
    window_start: Millis | None = None
    window_end: Millis | None = None


class CalibrationFitted(Event):
    """A calibration map for the consensus confidence, fitted by the reliability stage on the
    complete crowd consensus of gold items against their gold class; the consensus stage
    applies the latest one per schema version to the confidence that gates commit and names it
    (by event id) in each update's method_params."""

    key_field: ClassVar[str] = "schema_version"

    schema_version: str
    method: Literal["temperature"]
    temperature: float = Field(gt=0.0, description="softmax(log p / temperature)")
    classes: list[str]
    n_gold: int = Field(ge=1, description="gold items fitted on")
    ece_before: float = Field(ge=0.0, le=1.0)
    ece_after: float = Field(ge=0.0, le=1.0)
    bin_count_before: list[int] = Field(description="equal-width confidence bins")
    bin_confidence_before: list[float]
    bin_accuracy_before: list[float]
    bin_count_after: list[int]
    bin_confidence_after: list[float]
    bin_accuracy_after: list[float]
    consensus_ids: list[str] = Field(description="the ConsensusUpdated fitted on")
    window_end: Millis = Field(description="consensus updates before it were fitted on")


class IaaWindowClosed(Event):
    """Agreement and gold accuracy for one event-time window and slice."""

    key_field: ClassVar[str] = "slice"

    window: Literal["day", "week"]
    window_start: Millis
    window_end: Millis
    schema_version: str
    question: str
    slice: str
    metric: str
    agreement: float | None
    gold_accuracy: float | None
    n_items: int
    n_gold_items: int
    blind_spot: bool = False


ActorKind = Literal["user", "author", "moderator", "trusted_flagger", "unknown"]
"""Who gave production feedback: a viewer, the comment's author, a moderator, a trusted
flagger; ``unknown`` for feedback recorded before v2."""


class FeedbackReceived(Event):
    """A production signal: a user flag, an appeal or a moderator override.

    Its event time (``occurred_at``) is when the feedback was given. ``label`` is the class the
    actor says is right (a flag's category, an appeal's or override's verdict). An appeal or an
    override that contradicts the committed label opens an expert review
    (``folds.feedback``); flags are recorded as a weak source.
    """

    key_field: ClassVar[str] = "comment_id"

    feedback_id: str
    comment_id: str
    kind: Literal["user_flag", "appeal", "moderator_override"]
    label: str | None = None
    actor_hash: str
    actor_kind: ActorKind = Field(default="unknown", description="Who gave it (v2).")
    note: str = Field(default="", description="The actor's reason, as given (v2).")


class ModelPublished(Event):
    """A trained model, the data it was trained on, and its metrics."""

    key_field: ClassVar[str] = "model_version"

    model_version: str
    artifact_uri: str
    artifact_sha256: str
    classes: list[str]
    export_id: str | None = None
    export_hash: str | None = None
    metrics: dict[str, float] = {}
    schema_version: str | None = Field(
        default=None, description="The label schema version the model predicts (v2)."
    )
    baseline_version: str | None = Field(
        default=None,
        description="The live model the publish gate compared it with on gold (v2; none: "
        "the first model).",
    )
    forced: bool = Field(
        default=False,
        description="Published with --force although worse on gold than the baseline (v2).",
    )
    force_reason: str = Field(default="", description="Why the gate was overridden (v2).")
    temperature: float | None = Field(
        default=None,
        gt=0.0,
        description="Temperature fitted on the model's gold scores at publish; the scorer "
        "applies softmax(log p / T) before the auto-accept gate (v3; none: no map). Its ECE "
        "and bins are in metrics under calibration.*.",
    )


class ModelRefused(Event):
    """The publish gate refused a model: worse on gold than the live one on some slice."""

    key_field: ClassVar[str] = "model_version"

    model_version: str
    artifact_sha256: str
    classes: list[str]
    schema_version: str | None = None
    export_id: str | None = None
    baseline_version: str | None = None
    tolerance: float
    worse_slices: list[str] = Field(
        default=[], description="Slices where its gold accuracy fell by more than tolerance."
    )
    reason: str
    metrics: dict[str, float] = Field(
        default={},
        description="Per slice, the candidate's (gold.*) and the baseline's (baseline.*) figures.",
    )


class ExportCreated(Event):
    """A versioned training export, reproducible from the log positions it names."""

    key_field: ClassVar[str] = "export_id"

    export_id: str
    schema_version: str
    as_of: Millis
    log_positions: list[LogPosition]
    aggregator: str
    aggregator_params: dict[str, str] = {}
    content_hash: str
    row_count: int
    uri: str
    manifest_hash: str = ""


class AnnotatorRegistered(Event):
    """An annotator joined a pool, with consented self-reported attributes only."""

    key_field: ClassVar[str] = "annotator_id"

    annotator_id: str
    pool: Pool
    locale: str
    languages: list[str]
    consented: bool = False
    demographics: dict[str, str] = Field(
        default={}, description="Self-reported; empty unless consented."
    )

    @model_validator(mode="after")
    def check_consent(self) -> AnnotatorRegistered:
        if self.demographics and not self.consented:
            raise ValueError("demographics may only be recorded with consent")
        return self


class AnnotatorSuspended(Event):
    """An annotator was suspended: tasking gives them no new task until reinstated.

    Written by a person (``labeltrail annotators suspend``) or by quality control (actor
    ``qc``) with the evidence it acted on. It travels on ``annotators.status``, which is kept
    whole: the compacted annotator registry keeps one record per id, and a status record there
    would compact the registration away.
    """

    key_field: ClassVar[str] = "annotator_id"

    annotator_id: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    actor: str = Field(min_length=1, description="Who acted: 'qc' or a person's id.")
    evidence: dict[str, str] = Field(
        default={}, description="What the decision rests on, e.g. accuracy posterior figures."
    )


class AnnotatorReinstated(Event):
    """A suspended annotator may receive tasks again."""

    key_field: ClassVar[str] = "annotator_id"

    annotator_id: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    actor: str = Field(min_length=1, description="Who acted: a person's id.")
    evidence: dict[str, str] = Field(default={}, description="What the decision rests on.")


class CommentsErased(Event):
    """Comments were erased: their data keys destroyed, so their text and author read as
    erased everywhere (``labeltrail erase``, ``docs/erasure.md``). Names no author."""

    key_field: ClassVar[str] = "erasure_id"

    erasure_id: str = Field(min_length=1)
    subject: Literal["author", "comment"] = Field(description="What the request named.")
    comment_ids: list[str] = Field(description="The comments whose keys were destroyed.")
    key_ids: list[str] = Field(description="The data keys destroyed (tombstoned).")
    actor: str = Field(min_length=1, description="Who asked: a person's id.")
    reason: str = Field(default="", description="E.g. the request's ticket.")


DEAD_LETTER_PAYLOAD_MAX = 64 * 1024
"""A rejected value up to this size travels whole in its dead letter; a larger one by
reference (size, SHA-256, the first ``DEAD_LETTER_PREFIX`` bytes), so that the dead letter
itself always fits the producer's record limit, whatever the input was."""

DEAD_LETTER_PREFIX = 1024
"""How much of an oversized value (and of an oversized key or reason) a dead letter keeps."""

DeadLetterReason = Literal[
    "undecodable",
    "unknown_event_type",
    "schema_invalid",
    "policy_rejected",
    "wrong_topic",
    "fold_error",
    "output_too_large",
    "registry_unavailable",
]


class DeadLettered(Event):
    """An input that was rejected, with where it came from and why.

    Build one with :meth:`rejecting`, which bounds what it carries.
    """

    key_field: ClassVar[str] = "source_topic"

    source_topic: str
    source_partition: int
    source_offset: int
    reason_code: DeadLetterReason
    reason: str
    stage: str
    source_key: bytes | None = None
    payload: bytes
    payload_size: int = -1
    payload_sha256: str = ""
    payload_truncated: bool = False

    @classmethod
    def rejecting(
        cls,
        *,
        stage: str,
        source: tuple[str, int, int],
        key: bytes | None,
        value: bytes,
        reason_code: str,
        reason: str,
        id_parts: tuple[object, ...] | None = None,
    ) -> DeadLettered:
        """The dead letter of one rejected record at ``source`` (topic, partition, offset).

        ``reason_code`` is one of :data:`DeadLetterReason` (validated). The id is fixed by the
        stage and the source position (or ``id_parts``), so a stage that rejects the same
        record again after a restart writes the same dead letter.
        """
        topic, partition, offset = source
        truncated = len(value) > DEAD_LETTER_PAYLOAD_MAX
        if len(reason) > DEAD_LETTER_PREFIX:
            reason = reason[:DEAD_LETTER_PREFIX] + " [...]"
        if key is not None and len(key) > DEAD_LETTER_PREFIX:
            key = key[:DEAD_LETTER_PREFIX]
        return cls.create(
            producer=stage,
            id_parts=id_parts or ("deadletter", stage, topic, partition, offset),
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            reason_code=reason_code,
            reason=reason,
            stage=stage,
            source_key=key,
            payload=value[:DEAD_LETTER_PREFIX] if truncated else value,
            payload_size=len(value),
            payload_sha256=hashlib.sha256(value).hexdigest(),
            payload_truncated=truncated,
        )


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        CommentPosted,
        LabelSchemaPublished,
        CommentScored,
        TaskCreated,
        TaskRequested,
        TaskAssigned,
        VoteCast,
        ConsensusUpdated,
        AdjudicationRequested,
        AdjudicationRecorded,
        LabelCommitted,
        QuestionLabelCommitted,
        WeakVoteCast,
        HoneypotScored,
        AnnotatorReliabilityUpdated,
        CalibrationFitted,
        IaaWindowClosed,
        FeedbackReceived,
        ModelPublished,
        ModelRefused,
        ExportCreated,
        AnnotatorRegistered,
        AnnotatorSuspended,
        AnnotatorReinstated,
        CommentsErased,
        DeadLettered,
    )
}
"""Every event type, by record name."""
