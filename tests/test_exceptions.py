"""Single definitions: every error class is defined once, in ``labeltrail.exceptions``; the
per-item agreement rule is one function; the EM models share one kernel and one result."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import labeltrail
import labeltrail.events
import labeltrail.exceptions as tree
from labeltrail import folds, learning, quality
from labeltrail.folds import consensus, iaa
from labeltrail.learning.label_model import LabelModel
from labeltrail.learning.multisource import MultiSourceLabelModel, Observations
from labeltrail.quality import (
    MACE,
    DawidSkene,
    OneCoinDawidSkene,
    Votes,
    _em,
    agreement_items,
    item,
)


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


def test_the_em_result_is_one_class() -> None:
    root = Path(labeltrail.__file__).parent
    found = [
        (path.relative_to(root).as_posix(), node.name)
        for path in sorted(root.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith("EMResult")
    ]
    assert found == [("quality/_em.py", "EMResult")]


VOTES = Votes.from_long([0, 0, 0, 1, 1, 1, 2, 2], list("xyzxyzxy"), [1, 1, 0, 0, 0, 0, 1, 1])
LF_MATRIX = np.array([[1, 1, -1], [0, 0, 0], [1, -1, 1], [0, 1, 0]])
EM_MODELS: dict[str, Callable[[], object]] = {
    "DawidSkene": lambda: DawidSkene().fit(VOTES),
    "OneCoinDawidSkene": lambda: OneCoinDawidSkene().fit(VOTES),
    "MACE": lambda: MACE().fit(VOTES),
    "LabelModel": lambda: LabelModel(2).fit(LF_MATRIX),
    "MultiSourceLabelModel": lambda: MultiSourceLabelModel(2).fit(
        Observations.build(
            4, votes=([0, 1, 2, 3], ["a", "a", "b", "b"], [1, 0, 1, 0]), lf_matrix=LF_MATRIX
        )
    ),
}


@pytest.mark.parametrize("name", sorted(EM_MODELS))
def test_every_em_model_runs_the_one_em_loop(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each E-step of each model is taken by ``run_em``: no model keeps a loop of its own."""
    callers: list[str] = []
    real = _em.e_step

    def e_step(*args: Any, **kwargs: Any) -> Any:
        callers.append(sys._getframe(1).f_code.co_qualname)
        return real(*args, **kwargs)

    monkeypatch.setattr(_em, "e_step", e_step)
    EM_MODELS[name]()
    assert callers
    assert set(callers) == {"run_em"}
