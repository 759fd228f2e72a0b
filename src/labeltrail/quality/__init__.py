"""The quality core: consensus, agreement and reliability, pure numpy/scipy.

Start from :class:`Votes` (long format -> integer codes), then a consensus estimator
(:class:`MajorityVote`, :class:`WeightedMajorityVote`, :class:`DawidSkene`,
:class:`OneCoinDawidSkene`, :class:`PooledDawidSkene` (the default), :class:`MACE`,
:class:`GLAD`), the agreement functions and the
reliability helpers.
No Kafka, faust, ClickHouse or pandas import anywhere in this package (the import-linter
contracts in ``pyproject.toml`` enforce it).
"""

from __future__ import annotations

from labeltrail.exceptions import NotFittedError, QualityError, VoteFormatError
from labeltrail.quality._encoding import NO_GOLD, TIE_RULE, Votes, argmax_lowest
from labeltrail.quality.consensus import MajorityVote, WeightedMajorityVote
from labeltrail.quality.dawid_skene import DawidSkene, OneCoinDawidSkene
from labeltrail.quality.glad import GLAD
from labeltrail.quality.mace import MACE
from labeltrail.quality.pooled import PooledDawidSkene

__all__ = [
    "GLAD",
    "MACE",
    "NO_GOLD",
    "TIE_RULE",
    "DawidSkene",
    "MajorityVote",
    "NotFittedError",
    "OneCoinDawidSkene",
    "PooledDawidSkene",
    "QualityError",
    "VoteFormatError",
    "Votes",
    "WeightedMajorityVote",
    "argmax_lowest",
]
