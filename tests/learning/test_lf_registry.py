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


def test_live_votes_are_summarised_per_lf_and_version_on_the_comments_each_saw() -> None:
    from labeltrail.learning.lf_analysis import votes_summary

    votes = [
        ("c1", "insults@1", "harassment"),
        ("c1", "benign@1", None),
        ("c2", "insults@1", None),
        ("c2", "benign@1", "non-toxic"),
        ("c3", "insults@1", "harassment"),
        ("c3", "benign@1", "non-toxic"),
        ("c3", "insults@2", "harassment"),  # version 2 saw only c3
    ]
    s = votes_summary(votes, {"c1": "harassment", "c3": "non-toxic"})
    assert (s.classes, s.n_items, s.n_gold, s.coverage) == (("harassment", "non-toxic"), 3, 2, 1.0)
    by = {r.name: r for r in s.lfs}
    assert by["insults@1"].coverage == 2 / 3 and by["insults@1"].conflict == 1 / 3
    assert (by["insults@1"].n_gold_labelled, by["insults@1"].n_correct) == (2, 1)
    assert by["insults@2"].coverage == 1.0 and by["insults@2"].overlap == 1.0
    assert by["benign@1"].empirical_accuracy == 1.0
