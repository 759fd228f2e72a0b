"""The default consensus method (PDS, pooled-prior Bayesian Dawid-Skene) against the issue-18 goals.

One row per reference set and method, two protocols (labeltrail.quality.reference):

* ``crowdkit``: duplicates kept, ties to the lowest label, gold items with >= 1 vote;
* ``bayes``: exact duplicate rows dropped, fractional ties (the IBCC/EBCC notebook protocol).

Goals held on every set: PDS >= MV and PDS >= max(MV, DS) - 0.005; where the datasets README
lists IBCC/EBCC notebook values, PDS >= each - 0.005 under ``bayes``. Beside them, the measured
figures as regression pins (4 dp). The table with every method tried: docs/quality.md.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from labeltrail.quality import DawidSkene, MajorityVote, PooledDawidSkene, Votes
from labeltrail.quality.methods import DEFAULT_METHOD, make_method
from labeltrail.quality.reference import (
    REFERENCE_SETS,
    Protocol,
    accuracy,
    drop_duplicate_votes,
    load_reference,
)
from tests.unavailable import unavailable

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
pytestmark = pytest.mark.conformance
SETS = {r.name: r for r in REFERENCE_SETS}

# set: {protocol: (MV, DS, PDS)} measured, 4 dp
MEASURED: dict[str, dict[Protocol, tuple[float, float, float]]] = {
    "D_Product": {"crowdkit": (0.8966, 0.9393, 0.9377), "bayes": (0.8966, 0.9393, 0.9377)},
    "D_PosSent": {"crowdkit": (0.9320, 0.9600, 0.9600), "bayes": (0.9335, 0.9600, 0.9600)},
    "S_Rel": {"crowdkit": (0.5357, 0.6182, 0.6146), "bayes": (0.5423, 0.6159, 0.6137)},
    "S_Adult": {"crowdkit": (0.7628, 0.7508, 0.7688), "bayes": (0.7583, 0.7508, 0.7748)},
    "Duck": {"crowdkit": (0.7593, 0.8981, 0.8981), "bayes": (0.7593, 0.8981, 0.8981)},
    "Dog": {"crowdkit": (0.8178, 0.8439, 0.8401), "bayes": (0.8222, 0.8439, 0.8401)},
    "Face": {"crowdkit": (0.6301, 0.6421, 0.6490), "bayes": (0.6367, 0.6421, 0.6490)},
    "RTE": {"crowdkit": (0.9187, 0.9275, 0.9263), "bayes": (0.8969, 0.9275, 0.9263)},
}

# notebook outputs (datasets README): set -> (IBCC, EBCC), protocol "bayes"
BAYESIAN = {
    "D_Product": (0.938, 0.935),
    "D_PosSent": (0.960, 0.961),
    "Face": (0.640, 0.635),
    "S_Adult": (0.745, 0.748),
    "Dog": (0.839, 0.840),
    "RTE": (0.928, 0.931),
}


@cache
def _data(name: str, protocol: Protocol) -> tuple[Votes, np.ndarray]:
    base = DATASETS / SETS[name].folder
    if not base.exists():
        unavailable(f"reference data missing: {base}")
    votes, gold = load_reference(base)
    return (drop_duplicate_votes(votes) if protocol == "bayes" else votes), gold


def _acc(model: object, name: str, protocol: Protocol) -> float:
    votes, gold = _data(name, protocol)
    post = model.fit_predict_proba(votes)  # type: ignore[attr-defined]
    return accuracy(post, gold, "fractional" if protocol == "bayes" else "lowest")


CASES = [(n, p) for n in MEASURED for p in ("crowdkit", "bayes")]


@pytest.mark.parametrize(("name", "protocol"), CASES)
def test_default_method_goals(name: str, protocol: Protocol) -> None:
    mv_pin, ds_pin, pds_pin = MEASURED[name][protocol]
    mv = _acc(MajorityVote(), name, protocol)
    ds = _acc(DawidSkene(), name, protocol)
    pds = _acc(make_method(DEFAULT_METHOD), name, protocol)
    assert (round(mv, 4), round(ds, 4), round(pds, 4)) == (mv_pin, ds_pin, pds_pin)
    assert pds >= mv
    assert pds >= max(mv, ds) - 0.005
    if protocol == "bayes" and name in BAYESIAN:
        for figure in BAYESIAN[name]:
            assert pds >= figure - 0.005, (name, figure)


def test_default_is_pooled_prior_ds() -> None:
    assert DEFAULT_METHOD == "pds"
    assert isinstance(make_method(DEFAULT_METHOD), PooledDawidSkene)


# MACE against the Crowd-Kit paper's row (protocol crowdkit). set: (published, ours EM, ours VB)
MACE_ROW = {
    "D_Product": (0.929, 0.8192, 0.8327),
    "D_PosSent": (0.950, 0.9590, 0.9580),
    "S_Rel": (0.501, 0.6038, 0.6090),
    "S_Adult": (0.763, 0.7928, 0.7808),
}


@pytest.mark.parametrize("name", sorted(MACE_ROW))
def test_mace_row(name: str) -> None:
    """Not within 0.005 on any of the four sets, either way: Crowd-Kit 1.4.2's MACE (VB, seeded
    random start, 10 restarts that all draw the same start, 50 rounds) gives 0.929 on D_Product
    (0.9296 / 0.9295 with seeds 1 / 2; its EM 0.7507), ours 0.8192 (EM) / 0.8327 (VB) from the
    majority-vote start. With worker and label ids renamed so that sorted order = order of
    appearance, Crowd-Kit gives 0.8162 on D_Product (ops/quality/crowdkit_mace_order.py): its
    published figure comes from reading sorted-order strategy counts by appearance order, not
    from the model. docs/quality.md, "MACE"."""
    from labeltrail.quality import MACE

    published, em_pin, vb_pin = MACE_ROW[name]
    em = _acc(MACE(), name, "crowdkit")
    vb = _acc(MACE(vb=True), name, "crowdkit")
    assert (round(em, 4), round(vb, 4)) == (em_pin, vb_pin)
    assert abs(em - published) > 0.005 and abs(vb - published) > 0.005
