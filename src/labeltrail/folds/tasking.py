"""Tasking: scored comments become crowd tasks, disagreements expert tasks, gold honeypots.

The fold decides what is tasked, when (input waits for its comment, the schema and the crowd
pool) and who gets it: ``redundancy`` distinct crowd annotators by rendezvous hashing, so the
choice replays exactly. A suspended annotator (``AnnotatorSuspended``, on ``annotators.status``) is
out of the draw until reinstated, and the tasks they left open go to the next annotator of the
same draw (``docs/pipeline.md``, "Suspension and reassignment"). It builds the events with
:mod:`~labeltrail.folds.task_events` and pairs honeypots with
:class:`~labeltrail.folds.honeypots.HoneypotPairing`; why the pairing is a join and how the
gold set reaches every worker is in ``docs/pipeline.md`` ("Honeypots").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import (
    GOLD_REQUEST_PREFIX,
    AdjudicationRecorded,
    AdjudicationRequested,
    AnnotatorRegistered,
    AnnotatorReinstated,
    AnnotatorSuspended,
    CommentPosted,
    CommentScored,
    LabelCommitted,
    LabelSchemaPublished,
    PriorVote,
    TaskAssigned,
    TaskCreated,
    TaskReason,
    TaskRequested,
    VoteCast,
)
from labeltrail.folds.base import Output, Rejected, stable_id
from labeltrail.folds.draws import rank
from labeltrail.folds.feedback import FEEDBACK_REQUEST_PREFIX
from labeltrail.folds.honeypots import HoneypotPairing
from labeltrail.folds.task_events import (
    assignment,
    crowd_task,
    draft,
    expert_task,
    honeypot_task,
    reassigned_task,
)

__all__ = ["TaskingConfig", "TaskingFold"]


@dataclass(frozen=True)
class TaskingConfig:
    """Tasking's policy: votes per crowd task, honeypot share, the low-margin route, costs,
    the crowd pool to wait for, model drafts and the gold set's size (``stages.tasking_config``
    builds it from the settings)."""

    redundancy: int = 3
    honeypot_rate: float = 0.05
    low_margin_threshold: float = 0.1
    crowd_cost_usd: float = 0.04
    expert_cost_usd: float = 5.00
    min_crowd_pool: int = 0
    """Hold crowd tasks until this many crowd annotators are registered (with the redundancy,
    whichever is larger). Assignment ranks the pool as registered when the task is made, and
    the choice is recorded on the task; a deployment whose registry is loaded before work
    arrives sets this to the registry's size so that a rebuild makes the same choices."""
    min_expert_pool: int = 1
    """Hold expert tasks until this many experts are registered, for the same reason: an
    adjudication request read before the expert registry is held, never rejected."""
    prelabels: bool = False
    """Copy the model's top class and probability into crowd tasks as a draft."""
    gold_set_size: int = 150
    """The gold set's expected size (the article's 150): a chosen task and a gold item make a
    honeypot with probability ``1 / gold_set_size``, so a chosen task gets one honeypot on
    average when the set has this size. Set it to the deployment's gold set size."""


_EXPERTS = ("experts", "registered")
"""The awaiting key of requests that wait for the expert pool."""


@dataclass(frozen=True)
class _Open:
    """An assignment not answered yet: the task, what its annotator was shown, and the task
    it descends from (itself, or the one a reassignment took its share of)."""

    task: TaskCreated
    assigned: TaskAssigned
    root: str


@dataclass
class TaskingFold:
    """State: schemas, annotator pools, comments, gold answers, votes, pending requests."""

    accepts: ClassVar[frozenset[str]] = frozenset(
        {
            "LabelSchemaPublished",
            "LabelCommitted",
            "AnnotatorRegistered",
            "CommentPosted",
            "AdjudicationRecorded",
            "VoteCast",
            "CommentScored",
            "AdjudicationRequested",
            "AnnotatorSuspended",
            "AnnotatorReinstated",
            "TaskRequested",
        }
    )
    """The event types ``apply`` handles; the runner skips the others' bodies undecoded
    (ConsensusUpdated, the bulk of the consensus topic, is read only for AdjudicationRequested)."""

    config: TaskingConfig = field(default_factory=TaskingConfig)
    name: str = "tasking"
    inputs: tuple[str, ...] = (
        "schemas",
        "annotators",
        "gold",
        "adjudications",
        "comments",
        "scores",
        "consensus",
        "votes",
        "labels",
        "annotators.status",
        "requests",
    )
    schemas: dict[str, LabelSchemaPublished] = field(default_factory=dict)
    pools: dict[str, set[str]] = field(default_factory=lambda: {"crowd": set(), "expert": set()})
    comments: dict[str, CommentPosted] = field(default_factory=dict)
    gold: dict[str, str] = field(default_factory=dict)
    votes: dict[str, VoteCast] = field(default_factory=dict)
    tasked: set[str] = field(default_factory=set)
    pending: dict[str, AdjudicationRequested] = field(default_factory=dict)
    held: dict[str, CommentScored | TaskRequested] = field(default_factory=dict)
    """Scores and task requests waiting for their comment, the schema or the crowd pool."""
    awaiting: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    """Pending request ids by what they wait for: ("comment" | "vote" | "request", id)."""
    current: str | None = None
    labels: dict[str, LabelCommitted] = field(default_factory=dict)
    scores: dict[str, CommentScored] = field(default_factory=dict)
    honeypots: HoneypotPairing = field(init=False)
    suspended: set[str] = field(default_factory=set)
    """Annotators suspended and not reinstated since: out of every draw."""
    open: dict[str, dict[str, _Open]] = field(default_factory=dict)
    """Unanswered crowd and expert assignments, by annotator, then task id."""
    crew: dict[str, set[str]] = field(default_factory=dict)
    """Everyone a task (by its root task id) was ever given to, while a share of it is open: a
    reassignment goes to someone else, so no annotator answers one item twice."""
    answered: set[tuple[str, str]] = field(default_factory=set)
    """(task id, annotator) of every vote and verdict read, so that a task read after its
    answer (a rebuild reads votes beside scores) is not taken for open."""
    live: dict[str, int] = field(default_factory=dict)
    """Open (or orphaned) shares per root task id: a root's crew is dropped with its last, so
    the state grows with the open work, not with every task ever made."""
    orphans: dict[tuple[str, str], tuple[_Open, AnnotatorSuspended]] = field(default_factory=dict)
    """Open shares of suspended annotators that no eligible annotator could take yet, by (task
    id, suspended annotator); retried when an annotator registers or is reinstated."""

    def __post_init__(self) -> None:
        self.honeypots = HoneypotPairing(self.config.honeypot_rate, self.config.gold_set_size)

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case LabelSchemaPublished():
                self.schemas[event.version] = event
                self.current = event.version
                return self._migrate(event) + self._release(list(self.held))
            case LabelCommitted():
                self.labels[event.comment_id] = event
                return self._maybe_relabel(event)
            case AnnotatorRegistered():
                self.pools[event.pool].add(event.annotator_id)
                out = self._retry_orphans()
                if event.pool == "expert":
                    return out + self._retry_pending(_EXPERTS)
                return out + self._release(list(self.held))
            case AnnotatorSuspended():
                return self._suspend(event)
            case AnnotatorReinstated():
                if event.annotator_id not in self.suspended:
                    return []
                self.suspended.discard(event.annotator_id)
                out = self._retry_orphans() + self._release(list(self.held))
                return out + self._retry_pending(_EXPERTS)
            case CommentPosted():
                known = self.comments.get(event.comment_id)
                if known is not None:
                    return self._reposted(known, event)
                self.comments[event.comment_id] = event
                out = self._release([event.comment_id])
                out += self._retry_pending(("comment", event.comment_id))
                if event.comment_id in self.gold:
                    out += self._honeypots_for_item(event.comment_id)
                return out
            case AdjudicationRecorded():
                self._answered(event.reviewer_id, event.task_id)
                gold = event.request_id.startswith(GOLD_REQUEST_PREFIX)
                if gold and event.comment_id not in self.gold:
                    self.gold[event.comment_id] = event.label
                    self.honeypots.add_gold(event.comment_id)
                    return self._honeypots_for_item(event.comment_id)
            case VoteCast():
                self.votes[event.vote_id] = event
                self._answered(event.annotator_id, event.task_id)
                return self._retry_pending(("vote", event.vote_id))
            case CommentScored():
                return self._on_scored(event)
            case TaskRequested():
                return self._on_requested(event)
            case AdjudicationRequested():
                self.pending[event.request_id] = event
                self._await(event)
                return self._retry_pending(("request", event.request_id))
        return []

    def _reposted(self, known: CommentPosted, event: CommentPosted) -> list[Output]:
        """A comment id seen before: the same event again (a copy on the gold topic, a
        redelivery) changes nothing; other content is refused, since a posted comment is never
        edited in place and tasks, votes and labels already refer to the first posting."""
        if known.event_id == event.event_id:
            return []
        return [
            Rejected(
                f"comment {event.comment_id} posted again with other content (event "
                f"{event.event_id}); the first posting ({known.event_id}) stands"
            )
        ]

    def drain(self) -> list[Output]:
        """Once every input is read, what is still held cannot be served: reject it."""
        out: list[Output] = []
        for comment_id in sorted(self.held):
            self.held.pop(comment_id)
            out.append(Rejected(self._unready(comment_id) or "held score not served"))
        for request_id in sorted(self.pending):
            request = self.pending.pop(request_id)
            lacking = "votes or comment unknown" if self._lacks_input(request) else ""
            out.append(
                Rejected(f"adjudication request {request_id}: {lacking or self._no_experts()}")
            )
        return out

    def held_reason(self) -> str | None:
        """Why input is held, as a sentence for a progress log; None when nothing is held.

        E.g. "holding 40 comments: no label schema published yet, 2 of 3 crowd annotators
        registered". Scores wait for their comment, the schema and the crowd pool (``_unready``);
        adjudication requests wait for their votes and comment.
        """
        parts: list[str] = []
        if self.held:
            why: list[str] = []
            if self.current is None:
                why.append("no label schema published yet")
            short = self._crowd_short()
            if short is not None:
                why.append(short)
            unknown = sum(1 for c in self.held if c not in self.comments)
            if unknown:
                why.append(f"{unknown} of them scored but not yet posted")
            because = ", ".join(why) or "about to be released"
            parts.append(f"holding {_count(len(self.held), 'comment')}: {because}")
        if self.pending:
            lacking = sum(1 for r in self.pending.values() if self._lacks_input(r))
            why = [f"{lacking} wait for their votes or comment"] if lacking else []
            if len(self._eligible("expert")) < self.config.min_expert_pool:
                why.append(self._no_experts())
            parts.append(
                f"holding {_count(len(self.pending), 'adjudication request')}: {', '.join(why)}"
            )
        return "; ".join(parts) or None

    def _unready(self, comment_id: str) -> str | None:
        if comment_id not in self.comments:
            return f"score for unknown comment {comment_id}"
        if self.current is None:
            return "no label schema published"
        return self._crowd_short()

    def _eligible(self, pool: str) -> set[str]:
        """The pool's annotators who may be given work: registered and not suspended."""
        return self.pools[pool] - self.suspended if self.suspended else self.pools[pool]

    def _crowd_short(self) -> str | None:
        """Why the crowd cannot take work yet: too few registered (``min_crowd_pool``, for
        rebuilds that choose alike) or too few of them not suspended; None when it can."""
        cfg = self.config
        registered, eligible = len(self.pools["crowd"]), len(self._eligible("crowd"))
        needed = max(cfg.redundancy, cfg.min_crowd_pool)
        if registered < needed:
            return f"{registered} of {needed} crowd annotators registered"
        if eligible < cfg.redundancy:
            out = registered - eligible
            return f"{eligible} of {cfg.redundancy} crowd annotators not suspended ({out} are)"
        return None

    def _release(self, comment_ids: list[str]) -> list[Output]:
        """Serve the held scores and requests of ``comment_ids`` that are ready now.

        Whether the schema and the crowd are there is the same for every comment, so it is
        asked once: while either is missing nothing is released, and an annotator's
        registration costs no scan of everything held (a fresh rebuild reads the pool beside
        thousands of held scores).
        """
        if not self.held or self.current is None or self._crowd_short() is not None:
            return []
        out: list[Output] = []
        for comment_id in comment_ids:
            scored = self.held.get(comment_id)
            if scored is not None and comment_id in self.comments:
                del self.held[comment_id]
                if isinstance(scored, TaskRequested):
                    out += self._on_requested(scored)
                else:
                    out += self._on_scored(scored)
        return out

    # crowd tasks -------------------------------------------------------------------------

    def _on_scored(self, scored: CommentScored) -> list[Output]:
        self.scores[scored.comment_id] = scored
        if scored.route != "annotate":
            return []
        if self._unready(scored.comment_id) is not None:
            # Topics are read concurrently: the comment or the schema may come later.
            self.held[scored.comment_id] = scored
            return []
        comment = self.comments[scored.comment_id]
        low = scored.margin < self.config.low_margin_threshold
        reason: TaskReason
        if low and comment.source == "product_log":
            reason = "low_confidence"
        else:
            reason = "active_learning" if comment.source == "pool" else "random_audit"
        return self._crowd_task(comment, reason, scored)

    def _on_requested(self, request: TaskRequested) -> list[Output]:
        """A stage's request for a crowd task (active learning's picks): a task with the
        request's reason and id, once its comment, the schema and the crowd are there."""
        if self._unready(request.comment_id) is not None:
            self.held[request.comment_id] = request
            return []
        comment = self.comments[request.comment_id]
        return self._crowd_task(comment, request.reason, request, request.request_id)

    def _crowd_task(
        self,
        comment: CommentPosted,
        reason: TaskReason,
        cause: Event,
        request_id: str | None = None,
    ) -> list[Output]:
        """Decompose under the current schema and assign to k distinct crowd annotators."""
        cfg = self.config
        if self.current is None:
            return []
        schema = self.schemas[self.current]
        task_id = stable_id("task", comment.comment_id, schema.version, "crowd")
        if task_id in self.tasked:
            return []
        self.tasked.add(task_id)
        chosen = rank(self._eligible("crowd"), task_id, first=cfg.redundancy)
        prelabel = (
            draft(self.scores.get(comment.comment_id), schema) if cfg.prelabels else (None, None)
        )
        task = crowd_task(
            task_id,
            comment,
            schema,
            reason,
            cause,
            chosen,
            redundancy=cfg.redundancy,
            cost_per_vote_usd=cfg.crowd_cost_usd,
            prelabel=prelabel,
            request_id=request_id,
        )
        out: list[Output] = [task]
        out += [self._assign(task, comment, a, "crowd") for a in chosen]
        out += self._maybe_honeypot(task)
        return out

    # schema versions ---------------------------------------------------------------------

    def _migrate(self, schema: LabelSchemaPublished) -> list[Output]:
        """Carry out a new version's policy for labels made under the one it supersedes."""
        if schema.old_label_policy != "relabel_subset" or schema.supersedes is None:
            return []
        out: list[Output] = []
        for comment_id in sorted(self.labels):
            out += self._maybe_relabel(self.labels[comment_id])
        return out

    def _maybe_relabel(self, label: LabelCommitted) -> list[Output]:
        if self.current is None or label.schema_version == self.current:
            return []
        schema = self.schemas[self.current]
        affected = (
            schema.old_label_policy == "relabel_subset"
            and schema.supersedes == label.schema_version
            and label.label in schema.relabel_classes
        )
        comment = self.comments.get(label.comment_id)
        eligible = len(self._eligible("crowd"))
        if not affected or comment is None or eligible < self.config.redundancy:
            return []
        return self._crowd_task(comment, "relabel", label)

    def _maybe_honeypot(self, task: TaskCreated) -> list[Output]:
        out: list[Output] = []
        for item in self.honeypots.choose(task):
            out += self._honeypot(task, item)
        return out

    def _honeypots_for_item(self, item: str) -> list[Output]:
        out: list[Output] = []
        for task in self.honeypots.tasks_for(item):
            out += self._honeypot(task, item)
        return out

    def _honeypot(self, task: TaskCreated, item: str) -> list[Output]:
        """The honeypot of (chosen task, gold item of its bucket), once both the verdict and the
        item's comment are known; at most once."""
        if item not in self.comments or item == task.comment_id:
            return []
        hp_id = self.honeypots.claim(task, item)
        if hp_id is None:
            return []
        annotator = rank(task.annotators, "honeypot-annotator", task.task_id, first=1)[0]
        cost = self.config.crowd_cost_usd
        honeypot = honeypot_task(task, item, hp_id, annotator, self.gold[item], cost)
        return [honeypot, self._assign(honeypot, self.comments[item], annotator, "crowd")]

    def _assign(
        self,
        task: TaskCreated,
        comment: CommentPosted,
        annotator: str,
        pool: str,
        *,
        context: list[str] | None = None,
        prior_votes: list[PriorVote] | None = None,
    ) -> TaskAssigned:
        cfg = self.config
        cost = cfg.expert_cost_usd if pool == "expert" else cfg.crowd_cost_usd
        assigned = assignment(
            task, comment, annotator, pool, cost, context=context, prior_votes=prior_votes
        )
        if task.kind != "honeypot":
            # A honeypot tests its one annotator: it is not passed on when they are suspended.
            self._opened(_Open(task, assigned, task.task_id))
        return assigned

    # suspension and reassignment ---------------------------------------------------------

    def _opened(self, share: _Open) -> None:
        annotator, root = share.assigned.annotator_id, share.root
        if (share.task.task_id, annotator) in self.answered:
            return  # the answer was read first (topics are read side by side)
        self.open.setdefault(annotator, {})[share.task.task_id] = share
        self.crew.setdefault(root, set()).update(share.task.annotators)
        self.live[root] = self.live.get(root, 0) + 1

    def _closed(self, root: str) -> None:
        left = self.live.pop(root) - 1
        if left:
            self.live[root] = left
        else:
            del self.crew[root]

    def _answered(self, annotator: str, task_id: str) -> None:
        self.answered.add((task_id, annotator))
        shares = self.open.get(annotator)
        share = shares.pop(task_id, None) if shares is not None else None
        if share is None:
            return
        if not shares:
            del self.open[annotator]
        self._closed(share.root)

    def _suspend(self, event: AnnotatorSuspended) -> list[Output]:
        """Out of every draw from now on; each task they left open is given to the next
        annotator of that task's draw (the one it would have had without them)."""
        annotator = event.annotator_id
        self.suspended.add(annotator)
        out: list[Output] = []
        shares = self.open.pop(annotator, {})
        for task_id in sorted(shares):
            out += self._reassign(shares[task_id], event)
        return out

    def _reassign(self, share: _Open, cause: AnnotatorSuspended) -> list[Output]:
        task = share.task
        label = self.labels.get(task.comment_id)
        if label is not None and label.schema_version == task.schema_version:
            self._closed(share.root)
            return []  # the item is labeled: its open share is no longer needed
        pool = share.assigned.pool
        free = self._eligible(pool) - self.crew.get(share.root, set())
        if not free:
            self.orphans[(task.task_id, cause.annotator_id)] = (share, cause)
            return []
        successor = rank(free, share.root, first=1)[0]
        cfg = self.config
        cost = cfg.expert_cost_usd if pool == "expert" else cfg.crowd_cost_usd
        task_id = stable_id("task", task.task_id, "reassigned", cause.annotator_id)
        new = reassigned_task(task, task_id, successor, cause, cost)
        assigned = assignment(
            new,
            self.comments[task.comment_id],
            successor,
            pool,
            cost,
            context=share.assigned.context,
            prior_votes=share.assigned.prior_votes,
        )
        self._opened(_Open(new, assigned, share.root))
        self._closed(share.root)
        return [new, assigned]

    def _retry_orphans(self) -> list[Output]:
        out: list[Output] = []
        for key in sorted(self.orphans):
            share, cause = self.orphans.pop(key)
            out += self._reassign(share, cause)
        return out

    # expert tasks ------------------------------------------------------------------------

    def _await(self, request: AdjudicationRequested) -> None:
        """Index a pending request under the request itself and every input it lacks, so an
        arriving vote or comment re-checks only the requests that wait for it."""
        keys = [("request", request.request_id)]
        if request.comment_id not in self.comments:
            keys.append(("comment", request.comment_id))
        keys += [("vote", v) for v in request.vote_ids if v not in self.votes]
        for key in keys:
            self.awaiting.setdefault(key, set()).add(request.request_id)

    def _retry_pending(self, key: tuple[str, str]) -> list[Output]:
        out: list[Output] = []
        for request_id in sorted(self.awaiting.pop(key, ())):
            request = self.pending.get(request_id)
            if request is None or self._lacks_input(request):
                continue
            if len(self._eligible("expert")) < self.config.min_expert_pool:
                self.awaiting.setdefault(_EXPERTS, set()).add(request_id)
                continue
            del self.pending[request_id]
            out += self._expert_task(request)
        return out

    def _lacks_input(self, request: AdjudicationRequested) -> bool:
        return request.comment_id not in self.comments or any(
            v not in self.votes for v in request.vote_ids
        )

    def _no_experts(self) -> str:
        have, needed = len(self._eligible("expert")), self.config.min_expert_pool
        out = len(self.pools["expert"]) - have
        suspended = f" ({out} suspended)" if out else ""
        return f"{have} of {needed} experts registered{suspended}"

    def _expert_task(self, request: AdjudicationRequested) -> list[Output]:
        comment = self.comments[request.comment_id]
        experts = self._eligible("expert")
        # One adjudication per item; a review production feedback asks for is one per feedback
        # (the item may have been adjudicated before).
        review = request.request_id.startswith(FEEDBACK_REQUEST_PREFIX)
        parts = (request.request_id,) if review else ()
        task_id = stable_id("task", request.comment_id, request.schema_version, "expert", *parts)
        if task_id in self.tasked:
            return []
        self.tasked.add(task_id)
        expert = rank(experts, task_id, first=1)[0]
        schema = self.schemas.get(request.schema_version)
        reason: TaskReason = "production_feedback" if review else "adjudication"
        task = expert_task(
            request, schema, task_id, expert, self.config.expert_cost_usd, reason=reason
        )
        # Experts need what the crowd lacked: the thread the comment answers, and the votes.
        context = [self.comments[p].text for p in comment.parent_ids if p in self.comments]
        prior = [
            PriorVote(
                annotator_id=self.votes[v].annotator_id,
                label=self.votes[v].label,
                confidence=self.votes[v].confidence,
            )
            for v in request.vote_ids
        ]
        assigned = self._assign(task, comment, expert, "expert", context=context, prior_votes=prior)
        return [task, assigned]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
