"""Read a label schema (ontology YAML) and an annotator pool (CSV) from a team's own files.

Pure: text in, events out. Each reader checks the whole file and raises one
:class:`~labeltrail.exceptions.InvalidLinesError` listing every bad field or row with its line,
so nothing is published from a file with any problem. What is already on the log is checked
by :func:`plan_schema` and :func:`plan_pool` (the same file twice adds nothing; another content
under a published version is refused). The formats are in ``docs/first-day.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from labeltrail.events.base import utc_now
from labeltrail.events.models import (
    AnnotatorRegistered,
    AnnotatorReinstated,
    AnnotatorSuspended,
    LabelSchemaPublished,
    Question,
)
from labeltrail.exceptions import InvalidLinesError, LabeltrailError, LineError
from labeltrail.ontology.schema import guideline_hash

__all__ = [
    "POOL_COLUMNS",
    "AnnotatorStatus",
    "AnnotatorStatusError",
    "InvalidPoolError",
    "InvalidSchemaFileError",
    "SchemaFile",
    "parse_pool",
    "parse_schema_file",
    "plan_pool",
    "plan_schema",
    "schema_content",
    "status_change",
]

SCHEMA_PRODUCER = "schema-cli"
POOL_PRODUCER = "annotators-cli"
POLICIES = ("relabel_subset", "discard", "keep_as_feature")


class InvalidSchemaFileError(InvalidLinesError):
    """The ontology file has invalid fields, or conflicts with the published versions."""

    what = "schema field"


class InvalidPoolError(InvalidLinesError):
    """The annotator pool file has invalid rows, or conflicts with the registry."""

    what = "pool row"


# the ontology file ---------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no stubs
    """YAML with only ``true``/``false`` as booleans (``yes``/``no`` are answers here, not
    YAML 1.1 booleans) and dates left as text, for the model to parse with their zone."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _QuestionSpec(_Strict):
    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    answers: list[str] = Field(min_length=2)


class _Selector(_Strict):
    classes: list[str] = Field(min_length=1)


class _Migration(_Strict):
    policy: Literal["relabel_subset", "discard", "keep_as_feature"]
    selector: _Selector | None = None


class _OntologyFile(_Strict):
    version: str = Field(min_length=1)
    supersedes: str | None = None
    published_at: AwareDatetime | None = None
    classes: list[str] = Field(min_length=2)
    questions: list[_QuestionSpec] = Field(min_length=1)
    guideline: str = Field(min_length=1)
    migration: _Migration | None = None


Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SchemaFile:
    """A checked ontology file: the event to publish, the guideline text it names by hash, and
    the line of each field (for the checks against the log)."""

    event: LabelSchemaPublished
    guideline: str
    lines: dict[Path, int] = field(default_factory=dict, compare=False)

    def line(self, *path: str | int) -> int:
        return self.lines.get(path, self.lines.get(path[:1], 1))


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _node_lines(node: yaml.Node, path: Path, out: dict[Path, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, str(key.value))
            out[sub] = key.start_mark.line + 1
            _node_lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), out)


def _load_yaml(text: str) -> tuple[Any, dict[Path, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Path, int] = {}
        _node_lines(node, (), lines)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _duplicates(values: Any, path: Path, lines: dict[Path, int], what: str) -> list[LineError]:
    """An error for each value of the list at ``path`` that repeats an earlier one."""
    if not isinstance(values, list):
        return []
    first: dict[str, int] = {}
    out: list[LineError] = []
    for i, value in enumerate(values):
        key = value.get("id") if what == "question id" and isinstance(value, dict) else value
        if not isinstance(key, str):
            continue
        if key in first:
            line = lines.get((*path, first[key]), 0)
            out.append(
                LineError(
                    lines.get((*path, i), 0),
                    f"{_dotted((*path, i))}: {what} {key!r} is listed twice "
                    f"(first at {_dotted((*path, first[key]))}, line {line})",
                )
            )
        else:
            first[key] = i
    return out


def _structure_errors(data: dict[str, Any], lines: dict[Path, int]) -> list[LineError]:
    """What the field types cannot say: repeats, and the migration's fit to the version."""
    errors = _duplicates(data.get("classes"), ("classes",), lines, "class")
    errors += _duplicates(data.get("questions"), ("questions",), lines, "question id")
    questions = data.get("questions")
    for i, question in enumerate(questions if isinstance(questions, list) else []):
        if isinstance(question, dict):
            path: Path = ("questions", i, "answers")
            errors += _duplicates(question.get("answers"), path, lines, "answer")
    guideline = data.get("guideline")
    if isinstance(guideline, str) and guideline and not guideline.strip():
        errors.append(LineError(lines.get(("guideline",), 0), "guideline: is blank"))
    supersedes, migration = data.get("supersedes"), data.get("migration")
    if supersedes is not None and supersedes == data.get("version"):
        errors.append(
            LineError(
                lines.get(("supersedes",), 0), "supersedes: a version cannot supersede itself"
            )
        )
    if supersedes is not None and migration is None:
        errors.append(
            LineError(
                lines.get(("supersedes",), 0),
                "migration: missing: a version that supersedes another says what happens to "
                f"the labels made under it (policy: one of {', '.join(POLICIES)})",
            )
        )
    if migration is not None and supersedes is None:
        errors.append(
            LineError(
                lines.get(("migration",), 0),
                "migration: given, but supersedes names no earlier version",
            )
        )
    if isinstance(migration, dict):
        policy, selector = migration.get("policy"), migration.get("selector")
        at = lines.get(("migration", "policy"), lines.get(("migration",), 0))
        if policy == "relabel_subset" and selector is None:
            errors.append(
                LineError(
                    at,
                    "migration.selector: missing: relabel_subset needs the classes "
                    "to relabel (selector: {classes: [...]})",
                )
            )
        if policy in ("discard", "keep_as_feature") and selector is not None:
            errors.append(
                LineError(
                    lines.get(("migration", "selector"), at),
                    f"migration.selector: only relabel_subset takes a selector, not {policy}",
                )
            )
    return errors


def _message(error: Any) -> str:
    if error["type"] == "missing":
        return "missing"
    if error["type"] == "extra_forbidden":
        return "not a field of an ontology file"
    if error["type"] == "literal_error":
        return f"unknown value {error['input']!r} (one of {', '.join(POLICIES)})"
    return str(error["msg"])


def parse_schema_file(text: str) -> SchemaFile:
    """Check an ontology file (YAML) whole and build its ``LabelSchemaPublished``.

    Fields: ``version``, ``classes`` (ordered), ``questions`` (each ``id``, ``text``,
    ``answers``), ``guideline`` (the text; the event records its hash), optional
    ``published_at`` (ISO 8601 with a zone; event time) and, for a version that replaces one,
    ``supersedes`` with ``migration: {policy: relabel_subset|discard|keep_as_feature}`` and,
    for relabel_subset, ``selector: {classes: [...]}`` (old labels of these classes are
    relabeled). Raises :class:`InvalidSchemaFileError` listing every problem with its line.
    """
    try:
        data, lines = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidSchemaFileError([LineError(line, f"not YAML: {problem}")]) from exc
    if not isinstance(data, dict):
        raise InvalidSchemaFileError([LineError(1, "expected a mapping of fields (version: ...)")])
    errors: list[LineError] = []
    spec: _OntologyFile | None = None
    try:
        spec = _OntologyFile.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p[:1].isupper()))
            line = lines.get(loc) or lines.get(loc[:-1]) or lines.get(loc[:1]) or 1
            errors.append(LineError(line, f"{_dotted(loc)}: {_message(e)}"))
    errors += _structure_errors(data, lines)
    if errors or spec is None:
        raise InvalidSchemaFileError(sorted(errors, key=lambda e: e.line))
    return SchemaFile(_schema_event(spec), spec.guideline, lines)


def _schema_event(spec: _OntologyFile) -> LabelSchemaPublished:
    digest = guideline_hash(spec.guideline)
    migration = spec.migration
    return LabelSchemaPublished.create(
        producer=SCHEMA_PRODUCER,
        occurred_at=spec.published_at or utc_now(),
        # as ontology.schema.moderation_schema_v3: the version and its guideline's hash
        id_parts=(spec.version, digest),
        version=spec.version,
        classes=spec.classes,
        questions=[
            Question(question_id=q.id, text=q.text, answers=q.answers) for q in spec.questions
        ],
        guideline_hash=digest,
        supersedes=spec.supersedes,
        old_label_policy=migration.policy if migration else "none",
        relabel_classes=migration.selector.classes if migration and migration.selector else [],
    )


def schema_content(event: LabelSchemaPublished) -> dict[str, Any]:
    """What a schema version says (its envelope aside): two publications of one version must
    say the same."""
    return event.model_dump(mode="json", exclude={"envelope"})


def plan_schema(
    new: SchemaFile, published: Sequence[LabelSchemaPublished]
) -> LabelSchemaPublished | None:
    """The event to publish, or None when this very version is already on the log.

    Refused (:class:`InvalidSchemaFileError`): the version is published with another content;
    a new version that does not supersede the current one (the last published); a selector
    class the superseded version does not have.
    """
    event = new.event
    by_version = {s.version: s for s in published}
    known = by_version.get(event.version)
    if known is not None:
        if schema_content(known) == schema_content(event):
            return None
        ours, theirs = schema_content(event), schema_content(known)
        differs = [k for k in ours if ours[k] != theirs[k]]
        raise InvalidSchemaFileError(
            [
                LineError(
                    new.line("version"),
                    f"version: {event.version} is already published with other content "
                    f"({', '.join(differs)} differ); publish the change as a new version",
                )
            ]
        )
    current = published[-1].version if published else None
    if current is not None and event.supersedes != current:
        raise InvalidSchemaFileError(
            [
                LineError(
                    new.line("supersedes"),
                    f"supersedes: the current version is {current}; a new version supersedes "
                    f"it (supersedes: {current}, with its migration policy)",
                )
            ]
        )
    if current is None and event.supersedes is not None:
        raise InvalidSchemaFileError(
            [
                LineError(
                    new.line("supersedes"),
                    f"supersedes: {event.supersedes} is not published (no version is yet)",
                )
            ]
        )
    old = by_version.get(event.supersedes or "")
    if old is not None:
        errors = [
            LineError(
                new.line("migration", "selector", "classes", i),
                f"migration.selector.classes[{i}]: {name!r} is not a class of {old.version} "
                f"({', '.join(old.classes)})",
            )
            for i, name in enumerate(event.relabel_classes)
            if name not in old.classes
        ]
        if errors:
            raise InvalidSchemaFileError(errors)
    return event


# the annotator pool --------------------------------------------------------------------------

POOL_COLUMNS = ("annotator_id", "pool", "locale", "languages", "consent")
"""The columns a pool file must have; ``demographics.<name>`` columns are optional."""
DEMOGRAPHICS = "demographics."
_YES = {
    "yes": True,
    "true": True,
    "y": True,
    "1": True,
    "no": False,
    "false": False,
    "n": False,
    "0": False,
    "": False,
}


def _split(value: str) -> list[str]:
    return [v for v in re.split(r"[;,\s]+", value.strip()) if v]


def parse_pool(text: str, *, registered_at: dt.datetime | None = None) -> list[AnnotatorRegistered]:
    """Check a pool file (CSV with a header) whole and build an ``AnnotatorRegistered`` per row.

    Columns: ``annotator_id``, ``pool`` (crowd or expert), ``locale``, ``languages``
    (separated by ``;`` or spaces), ``consent`` (yes or no), and any number of
    ``demographics.<attribute>`` columns, recorded only for a row with consent: a value given
    without consent is an error, never silently dropped. Raises :class:`InvalidPoolError`
    listing every bad row by line.
    """
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in POOL_COLUMNS if c not in header]
    unknown = [c for c in header if c not in POOL_COLUMNS and not c.startswith(DEMOGRAPHICS)]
    if missing or unknown or not header:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(
                f"unknown column(s) {', '.join(unknown)} (demographic attributes are named "
                f"{DEMOGRAPHICS}<attribute>)"
            )
        raise InvalidPoolError([LineError(1, "header: " + "; ".join(parts or ["empty file"]))])
    reader.fieldnames = header
    events: list[AnnotatorRegistered] = []
    errors: list[LineError] = []
    first: dict[str, int] = {}
    at = registered_at or utc_now()
    line = 1
    for row in reader:
        line = reader.line_num
        if None in row:
            errors.append(LineError(line, f"more fields than the header's {len(header)}"))
            continue
        values = {k: (v or "").strip() for k, v in row.items()}
        if not any(values.values()):
            continue
        problem, event = _pool_row(values, at)
        if problem is None and event is not None:
            earlier = first.get(event.annotator_id)
            if earlier is not None:
                problem = f"annotator_id: {event.annotator_id!r} is already on line {earlier}"
            else:
                first[event.annotator_id] = line
                events.append(event)
        if problem is not None:
            errors.append(LineError(line, problem))
    if errors:
        raise InvalidPoolError(errors)
    return events


def _pool_row(
    values: dict[str, str], at: dt.datetime
) -> tuple[str | None, AnnotatorRegistered | None]:
    consent = _YES.get(values["consent"].lower())
    if consent is None:
        return f"consent: {values['consent']!r} is not yes or no", None
    demographics = {
        k[len(DEMOGRAPHICS) :]: v for k, v in values.items() if k.startswith(DEMOGRAPHICS) and v
    }
    if demographics and not consent:
        given = ", ".join(DEMOGRAPHICS + k for k in sorted(demographics))
        return (
            f"{given}: demographics given without consent (consent is "
            f"{values['consent'] or 'empty'}); they are recorded only with consent",
            None,
        )
    fields: dict[str, Any] = {
        "annotator_id": values["annotator_id"],
        "pool": values["pool"],
        "locale": values["locale"],
        "languages": _split(values["languages"]),
        "consented": consent,
        "demographics": demographics,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    try:
        event = AnnotatorRegistered.create(
            producer=POOL_PRODUCER,
            occurred_at=at,
            id_parts=("register", values["annotator_id"], canonical),
            **fields,
        )
    except ValidationError as exc:
        return "; ".join(f"{_dotted(e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()), None
    for name in ("annotator_id", "locale"):
        if not values[name]:
            return f"{name}: empty", None
    if not event.languages:
        return "languages: empty (at least one language)", None
    return None, event


def plan_pool(
    rows: Sequence[AnnotatorRegistered], registry: Iterable[AnnotatorRegistered]
) -> list[AnnotatorRegistered]:
    """The registrations to publish: rows whose annotator is new or whose attributes changed
    (an update: consent withdrawn, languages added). A pool change is refused
    (:class:`InvalidPoolError`, line = row number + 1): tasking keeps an id in the pool it
    joined, so a move is a new id."""
    latest = {e.annotator_id: e for e in registry}
    out: list[AnnotatorRegistered] = []
    errors: list[LineError] = []
    for i, row in enumerate(rows):
        known = latest.get(row.annotator_id)
        if known is None:
            out.append(row)
            continue
        if known.pool != row.pool:
            errors.append(
                LineError(
                    i + 2,
                    f"pool: {row.annotator_id} is registered in the {known.pool} pool; an "
                    "annotator does not change pools (register a new id)",
                )
            )
        elif _registration(known) != _registration(row):
            out.append(row)
    if errors:
        raise InvalidPoolError(errors)
    return out


def _registration(event: AnnotatorRegistered) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude={"envelope"})


# suspension ----------------------------------------------------------------------------------


class AnnotatorStatusError(LabeltrailError):
    """A suspension or reinstatement that cannot be recorded (unknown annotator, no reason)."""


@dataclass
class AnnotatorStatus:
    """The registry and each annotator's suspension, folded from the annotators and quality
    topics in log order."""

    registered: dict[str, AnnotatorRegistered] = field(default_factory=dict)
    suspended: dict[str, AnnotatorSuspended] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    """Suspensions and reinstatements so far, per annotator (names the next one's id)."""

    kinds: ClassVar[frozenset[str]] = frozenset(
        {"AnnotatorRegistered", "AnnotatorSuspended", "AnnotatorReinstated"}
    )

    def apply(self, event: object) -> None:
        match event:
            case AnnotatorRegistered():
                self.registered[event.annotator_id] = event
            case AnnotatorSuspended():
                self.suspended[event.annotator_id] = event
                self.changes[event.annotator_id] = self.changes.get(event.annotator_id, 0) + 1
            case AnnotatorReinstated():
                self.suspended.pop(event.annotator_id, None)
                self.changes[event.annotator_id] = self.changes.get(event.annotator_id, 0) + 1


def status_change(
    status: AnnotatorStatus,
    annotator_id: str,
    *,
    suspend: bool,
    reason: str,
    actor: str,
    evidence: dict[str, str] | None = None,
) -> AnnotatorSuspended | AnnotatorReinstated | None:
    """The suspension (or reinstatement) to publish, or None when the annotator is already in
    that state. An unknown annotator, or an empty reason or actor, is refused."""
    if annotator_id not in status.registered:
        known = sorted(status.registered)
        shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        raise AnnotatorStatusError(
            f"annotator {annotator_id!r} is not registered ({len(known)} are: "
            f"{shown or 'none'}); nothing published"
        )
    for name, value in (("--reason", reason), ("--actor", actor)):
        if not value.strip():
            raise AnnotatorStatusError(f"{name} is empty: the audit trail records who and why")
    if (annotator_id in status.suspended) == suspend:
        return None
    kind = AnnotatorSuspended if suspend else AnnotatorReinstated
    n = status.changes.get(annotator_id, 0)
    return kind.create(
        producer=POOL_PRODUCER,
        id_parts=("status", annotator_id, n),
        annotator_id=annotator_id,
        reason=reason.strip(),
        actor=actor.strip(),
        evidence=evidence or {},
    )
