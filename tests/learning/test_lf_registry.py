"""LF discovery: entry points of labeltrail.lfs and settings paths, each named and versioned."""

from __future__ import annotations

import pytest

from labeltrail.learning import example_lfs
from labeltrail.learning.lf import ABSTAIN, Example, LabelingFunction
from labeltrail.learning.lf_registry import LFError, VersionedLF, discover, load_path, vote
from labeltrail.ontology.schema import MODERATION_CLASSES

CLASSES = MODERATION_CLASSES
BROKEN = VersionedLF(LabelingFunction("broken", lambda x: 1 // 0), "2", CLASSES)
OUT_OF_RANGE = VersionedLF(LabelingFunction("wild", lambda x: 9), "1", CLASSES)
ALIEN = VersionedLF(LabelingFunction("alien", lambda x: 0), "3", ("spam", "ham"))
TWICE = (example_lfs.insults, example_lfs.insults)


def test_the_project_example_lfs_are_entry_points_with_names_and_versions() -> None:
    found = discover()
    assert [lf.key for lf in found] == [
        "benign_words@1",
        "context_dependent@1",
        "insults@1",
        "mild_words@1",
        "slurs@1",
        "threat_phrases@1",
    ]
    assert [lf.lf for lf in sorted(found, key=lambda f: example_lfs.SCENARIO_LFS.index(f.lf))] == (
        list(example_lfs.SCENARIO_LFS)
    )


def test_settings_paths_add_lfs_and_a_bad_path_is_an_error() -> None:
    found = discover([f"{__name__}:BROKEN", f"{__name__}:ALIEN"], group=None)
    assert [lf.key for lf in found] == ["broken@2", "alien@3"]
    with pytest.raises(LFError, match="not module:attr"):
        load_path("no_colon")
    with pytest.raises(LFError, match="not loaded"):
        load_path(f"{__name__}:MISSING")
    with pytest.raises(LFError, match="not a VersionedLF"):
        load_path(f"{__name__}:CLASSES")
    with pytest.raises(LFError, match="two LFs named insults@1"):
        discover([f"{__name__}:TWICE"], group=None)


def test_a_vote_is_a_class_name_and_a_bad_lf_is_named_with_its_version() -> None:
    x = Example("c1", "you absolute clown")
    assert vote(example_lfs.insults, x, CLASSES) == "harassment"
    assert vote(example_lfs.slurs, x, CLASSES) is None
    assert example_lfs.slurs.lf(x) == ABSTAIN
    with pytest.raises(LFError, match=r"lf broken@2 raised ZeroDivisionError"):
        vote(BROKEN, x, CLASSES)
    with pytest.raises(LFError, match=r"lf wild@1 returned 9, not a class index"):
        vote(OUT_OF_RANGE, x, CLASSES)
    with pytest.raises(LFError, match=r"lf alien@3 returned unknown class 'spam'"):
        vote(ALIEN, x, CLASSES)
