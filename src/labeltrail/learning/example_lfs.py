"""The project's example labeling functions: the ones the day-30 scenario uses.

Keyword and regex heuristics over the five moderation classes. Each is registered as an entry
point of the group ``labeltrail.lfs`` in ``pyproject.toml``, so the live ``lf`` stage runs them
(:mod:`labeltrail.learning.lf_registry`); :data:`SCENARIO_LFS` is the same LFs for the
simulation's label matrix. A change to one LF's behaviour gets a new ``version``, so the votes
of the two versions stay apart in the log and in ``labeltrail lf analyze``.
"""

from __future__ import annotations

from labeltrail.learning.lf import LabelingFunction, keyword_lf, regex_lf
from labeltrail.learning.lf_registry import VersionedLF
from labeltrail.ontology.schema import MODERATION_CLASSES

__all__ = [
    "SCENARIO_LFS",
    "benign_words",
    "context_dependent",
    "insults",
    "mild_words",
    "slurs",
    "threat_phrases",
]

SCENARIO_LFS: tuple[LabelingFunction, ...] = (
    regex_lf("context_dependent", r"your (kind|people)|you people|\b(14)?88\b|\(\(\(|we said", 2),
    keyword_lf("insults", ["loser", "clown", "idiot", "moron", "nobody likes you"], 2),
    keyword_lf("mild_words", ["dumb", "boring", "cringe", "waste of my time"], 1),
    regex_lf("slurs", r"\[slur\]|subhuman", 3),
    regex_lf("threat_phrases", r"where you live|watch your back|hurt you|coming for you", 4),
    keyword_lf("benign_words", ["thanks", "subscribed", "useful", "helped"], 0),
)
"""Indices into :data:`~labeltrail.ontology.schema.MODERATION_CLASSES`."""

(context_dependent, insults, mild_words, slurs, threat_phrases, benign_words) = (
    VersionedLF(lf, "1", MODERATION_CLASSES) for lf in SCENARIO_LFS
)
