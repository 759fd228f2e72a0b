"""Reading a team's ontology and annotator pool: every problem reported with its line, no
partial result, and the checks against what is already published."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from labeltrail.events import AnnotatorRegistered, AnnotatorReinstated, AnnotatorSuspended
from labeltrail.gold import parse_gold
from labeltrail.ingest import parse_comments
from labeltrail.ontology import moderation_schema_v3
from labeltrail.ontology.files import (
    AnnotatorStatus,
    AnnotatorStatusError,
    InvalidPoolError,
    InvalidSchemaFileError,
    parse_pool,
    parse_schema_file,
    plan_pool,
    plan_schema,
    status_change,
)
from labeltrail.ontology.schema import _V3_GUIDELINE, guideline_hash

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

V3 = """version: v3
supersedes: v2
published_at: "2024-08-15T00:00:00+00:00"
migration:
  policy: relabel_subset
  selector: {classes: [harassment]}
classes: [non-toxic, mild, harassment, hate, threats]
questions:
  - {id: q1_slur, text: "Contains a slur?", answers: [yes, no]}
  - {id: q2_targets_group, text: "Targets a group?", answers: [yes, no]}
  - {id: q3_threat, text: "Implies a threat?", answers: [yes, no]}
  - {id: q4_needs_context, text: "Requires context to interpret?", answers: [yes, no]}
guideline: |-
"""


def _v3_file() -> str:
    return V3 + "".join(f"  {line}\n" for line in _V3_GUIDELINE.splitlines())


def test_a_file_gives_the_simulators_event_for_the_same_schema() -> None:
    """Same model, same hashing, same id: the pipeline cannot tell a file from the simulator."""
    parsed = parse_schema_file(_v3_file())
    sim = moderation_schema_v3()
    assert parsed.guideline == _V3_GUIDELINE
    assert parsed.event.guideline_hash == guideline_hash(_V3_GUIDELINE) == sim.guideline_hash
    assert parsed.event.event_id == sim.event_id
    assert parsed.event.model_dump(exclude={"envelope"}) == sim.model_dump(exclude={"envelope"})
    assert parsed.event.envelope.occurred_at == sim.envelope.occurred_at
    assert [q.answers for q in parsed.event.questions] == [["yes", "no"]] * 4  # not booleans


def test_the_examples_parse() -> None:
    v1 = parse_schema_file((EXAMPLES / "ontology.yaml").read_text()).event
    v2 = parse_schema_file((EXAMPLES / "ontology-v2.yaml").read_text()).event
    assert (v1.version, v1.old_label_policy, v2.supersedes) == ("v1", "none", "v1")
    assert v2.relabel_classes == ["harassment", "mild"]
    pool = parse_pool((EXAMPLES / "annotators.csv").read_text())
    assert {e.pool for e in pool} == {"crowd", "expert"}
    assert all(e.demographics == {} for e in pool if not e.consented)


def test_the_example_comments_and_gold_set_are_what_the_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", EXAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("comments.jsonl", "gold.jsonl"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
    comments = parse_comments((EXAMPLES / "comments.jsonl").read_bytes().splitlines())
    ids = {c.comment_id for c in comments}
    assert len(comments) == 200 and sum(1 for c in comments if c.parent_ids) > 40
    assert all(set(c.parent_ids) <= ids for c in comments)  # every thread is in the file
    gold = parse_gold((EXAMPLES / "gold.jsonl").read_bytes().splitlines(), gold_set="first-day")
    classes = parse_schema_file((EXAMPLES / "ontology.yaml").read_text()).event.classes
    assert sorted({g.verdict.label for g in gold}) == sorted(classes)
    assert {g.verdict.schema_version for g in gold} == {"v1"}


def test_every_bad_field_is_named_with_its_line() -> None:
    text = """version: v2
classes: [non-toxic, mild, mild]
questions:
  - id: q1
    text: Contains a slur?
    answers: [yes, no]
  - id: q1
    text: Targets a group?
    answers: [yes]
supersedes: v1
migration:
  policy: relabel_everything
colour: blue
"""
    with pytest.raises(InvalidSchemaFileError) as caught:
        parse_schema_file(text)
    lines = {(e.line, e.message.split(":")[0]) for e in caught.value.errors}
    assert lines == {
        (1, "guideline"),  # missing: reported at the top
        (2, "classes[2]"),
        (7, "questions[1]"),
        (9, "questions[1].answers"),
        (12, "migration.policy"),
        (13, "colour"),
    }
    message = str(caught.value)
    assert "6 invalid schema field(s), nothing produced" in message
    assert "line 2: classes[2]: class 'mild' is listed twice (first at classes[1], line 2)" in (
        message
    )
    assert "unknown value 'relabel_everything'" in message


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("supersedes: v0\n", "migration: missing"),
        ("migration: {policy: discard}\n", "migration: given, but supersedes names no"),
        ("supersedes: v0\nmigration: {policy: relabel_subset}\n", "migration.selector: missing"),
        (
            "supersedes: v0\nmigration: {policy: discard, selector: {classes: [a]}}\n",
            "only relabel_subset takes a selector",
        ),
    ],
)
def test_migration_policies_are_checked(extra: str, problem: str) -> None:
    text = (EXAMPLES / "ontology.yaml").read_text() + extra
    with pytest.raises(InvalidSchemaFileError, match=problem):
        parse_schema_file(text)


def test_not_yaml_names_the_line() -> None:
    with pytest.raises(InvalidSchemaFileError, match=r"line 4: not YAML"):
        parse_schema_file("version: v1\nclasses: [a, b]\nquestions: [\n  - : x: y\n")


def test_plan_against_the_published_versions() -> None:
    v1 = parse_schema_file((EXAMPLES / "ontology.yaml").read_text())
    v2 = parse_schema_file((EXAMPLES / "ontology-v2.yaml").read_text())
    assert plan_schema(v1, []) == v1.event
    assert plan_schema(v1, [v1.event]) is None  # the same file twice adds nothing
    with pytest.raises(InvalidSchemaFileError, match="v1 is not published"):
        plan_schema(v2, [])
    assert plan_schema(v2, [v1.event]) == v2.event
    edited = parse_schema_file(
        (EXAMPLES / "ontology.yaml").read_text().replace("v1 (2024-09-01)", "v1 (edited)")
    )
    with pytest.raises(InvalidSchemaFileError, match="already published with other content"):
        plan_schema(edited, [v1.event])
    other = parse_schema_file(
        (EXAMPLES / "ontology.yaml").read_text().replace("version: v1", "version: v9")
    )
    with pytest.raises(InvalidSchemaFileError, match="the current version is v1"):
        plan_schema(other, [v1.event])
    wrong = parse_schema_file(
        (EXAMPLES / "ontology-v2.yaml").read_text().replace("[harassment, mild]", "[abuse]")
    )
    with pytest.raises(InvalidSchemaFileError, match=r"line 11: .*'abuse' is not a class of v1"):
        plan_schema(wrong, [v1.event])


POOL = "annotator_id,pool,locale,languages,consent,demographics.age_band\n"


def test_a_pool_row_with_demographics_but_no_consent_is_refused() -> None:
    text = POOL + "a1,crowd,en-US,en,yes,25-34\na2,crowd,en-US,en,no,18-24\n"
    with pytest.raises(InvalidPoolError) as caught:
        parse_pool(text)
    assert [e.line for e in caught.value.errors] == [3]
    assert "demographics.age_band: demographics given without consent" in str(caught.value)


def test_every_bad_pool_row_is_reported() -> None:
    text = POOL + (
        "a1,crowd,en-US,en,yes,25-34\n"
        "a2,robot,en-US,en,no,\n"
        "a3,crowd,en-US,en,perhaps,\n"
        "a1,crowd,en-US,en,no,\n"
        "a4,crowd,en-US,,no,\n"
        "a5,crowd,en-US,en,no,,extra\n"
    )
    with pytest.raises(InvalidPoolError) as caught:
        parse_pool(text)
    assert [e.line for e in caught.value.errors] == [3, 4, 5, 6, 7]
    message = str(caught.value)
    assert "line 3: pool: Input should be 'crowd' or 'expert'" in message
    assert "line 4: consent: 'perhaps' is not yes or no" in message
    assert "line 5: annotator_id: 'a1' is already on line 2" in message
    assert "line 6: languages: empty" in message
    with pytest.raises(InvalidPoolError, match="unknown column"):
        parse_pool("annotator_id,pool,locale,languages,consent,age\n")


def test_registration_is_idempotent_and_a_pool_move_is_refused() -> None:
    rows = parse_pool(POOL + "a1,crowd,en-US,en,yes,25-34\na2,expert,en-GB,en fr,no,\n")
    assert plan_pool(rows, []) == rows
    again = parse_pool(POOL + "a1,crowd,en-US,en,yes,25-34\na2,expert,en-GB,en fr,no,\n")
    assert [e.event_id for e in again] == [e.event_id for e in rows]
    assert plan_pool(again, rows) == []
    withdrawn = parse_pool(POOL + "a1,crowd,en-US,en,no,\n")
    assert plan_pool(withdrawn, rows) == withdrawn  # consent withdrawn: a new registration
    moved = parse_pool(POOL + "a1,expert,en-US,en,yes,25-34\n")
    with pytest.raises(InvalidPoolError, match="registered in the crowd pool"):
        plan_pool(moved, rows)


def _registered(annotator_id: str) -> AnnotatorRegistered:
    return AnnotatorRegistered.create(
        producer="t", annotator_id=annotator_id, pool="crowd", locale="en-US", languages=["en"]
    )


def test_suspension_and_reinstatement() -> None:
    status = AnnotatorStatus()
    status.apply(_registered("a1"))
    with pytest.raises(AnnotatorStatusError, match="'ghost' is not registered"):
        status_change(status, "ghost", suspend=True, reason="x", actor="lead")
    with pytest.raises(AnnotatorStatusError, match="--reason is empty"):
        status_change(status, "a1", suspend=True, reason=" ", actor="lead")
    assert status_change(status, "a1", suspend=False, reason="x", actor="lead") is None
    suspended = status_change(status, "a1", suspend=True, reason="spam", actor="lead")
    assert isinstance(suspended, AnnotatorSuspended)
    status.apply(suspended)
    assert status_change(status, "a1", suspend=True, reason="spam", actor="lead") is None
    back = status_change(status, "a1", suspend=False, reason="appeal", actor="lead")
    assert isinstance(back, AnnotatorReinstated)
    status.apply(back)
    assert "a1" not in status.suspended
    again = status_change(status, "a1", suspend=True, reason="spam", actor="lead")
    assert again is not None and again.event_id not in (suspended.event_id, back.event_id)
