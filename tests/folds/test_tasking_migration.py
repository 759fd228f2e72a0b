"""A ``relabel_subset`` migration published from the example files: tasking re-tasks exactly
the old labels the selector names, under the new version, without Kafka."""

from __future__ import annotations

from pathlib import Path

from labeltrail.events import LabelSchemaPublished, TaskAssigned, TaskCreated
from labeltrail.folds.tasking import TaskingConfig, TaskingFold
from labeltrail.ontology.files import parse_schema_file
from tests.folds.test_tasking import POS, _label, populated

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _published(name: str) -> LabelSchemaPublished:
    return parse_schema_file((EXAMPLES / name).read_text()).event


def test_relabel_subset_from_the_example_file_retasks_the_selected_old_labels() -> None:
    v1, v2 = _published("ontology.yaml"), _published("ontology-v2.yaml")
    assert (v2.supersedes, v2.old_label_policy) == ("v1", "relabel_subset")
    assert set(v2.relabel_classes) == {"harassment", "mild"}
    fold = populated(TaskingFold(TaskingConfig(honeypot_rate=0.0)))
    fold.apply(v1, POS)
    fold.apply(_label("c1", "harassment", version="v1"), POS)
    fold.apply(_label("c2", "non-toxic", version="v1"), POS)

    out = fold.apply(v2, POS)

    tasks = [o for o in out if isinstance(o, TaskCreated)]
    assert [(t.comment_id, t.schema_version, t.reason) for t in tasks] == [("c1", "v2", "relabel")]
    (task,) = tasks
    assigned = [o for o in out if isinstance(o, TaskAssigned)]
    assert sorted(a.annotator_id for a in assigned) == sorted(task.annotators)
    assert len(set(task.annotators)) == TaskingConfig().redundancy
    assert {(a.comment_id, a.schema_version) for a in assigned} == {("c1", "v2")}
    # The same version read again (a restart, a second publish) re-tasks nothing.
    assert [o for o in fold.apply(v2, POS) if isinstance(o, TaskCreated)] == []
    # A v2 label of c1 is not re-tasked again; an old label outside the selector never is.
    assert fold.apply(_label("c1", "harassment", version="v2"), POS) == []
    assert fold.apply(_label("c2", "non-toxic", version="v1"), POS) == []
