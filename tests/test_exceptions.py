"""One error tree: every error class is defined once, in ``labeltrail.exceptions``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import labeltrail
import labeltrail.events
import labeltrail.exceptions as tree
from labeltrail import folds, learning, quality
from labeltrail.folds import consensus, iaa
from labeltrail.quality import agreement_items, item


@pytest.mark.parametrize("package", ["events", "quality", "learning"])
def test_no_subpackage_exceptions_module(package: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"labeltrail.{package}.exceptions")


def test_the_subpackages_reexport_the_trees_classes() -> None:
    assert quality.NotFittedError is learning.NotFittedError is tree.NotFittedError
    assert quality.VoteFormatError is tree.VoteFormatError
    assert learning.ArtifactError is tree.ArtifactError
    assert issubclass(tree.NotFittedError, tree.LabeltrailError)


def test_no_class_of_the_tree_is_defined_twice() -> None:
    names = {n for n, c in vars(tree).items() if inspect.isclass(c)}
    for package in (labeltrail.events, quality, learning, folds):
        infos = pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        for info in infos:
            check(importlib.import_module(info.name), names)


def check(module: object, names: set[str]) -> None:
    """No class of ``module`` named like one of the tree's is another class."""
    for name, cls in vars(module).items():
        if name in names and inspect.isclass(cls):
            assert cls is getattr(tree, name), f"{module}.{name} is a second definition"


def test_the_per_item_agreement_rule_is_one_function() -> None:
    assert consensus.pairwise_agreement is item.pairwise_agreement
    assert iaa.pairwise_agreement is item.pairwise_agreement
    assert agreement_items.pairwise_agreement is item.pairwise_agreement
    assert folds.base.stable_id is labeltrail.events.ids.derive_id
