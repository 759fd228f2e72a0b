"""Write the example comments and gold set (deterministic: run it again, get the same bytes).

    python examples/generate.py

``comments.jsonl``: 200 comments on 20 videos over three days, in the format
``labeltrail ingest`` reads; about a third are replies, whose ``parent_ids`` name the thread
above them (root first), and coded harassment always replies to someone.

``gold.jsonl``: 40 expert-labeled comments, 8 per class, in the format
``labeltrail gold publish`` reads (schema v1).

The texts come from the simulator's seeded phrase generator (``labeltrail.sim.text``); slurs
and group names are redacted as ``[slur]`` and ``[group]``. The files are committed: a team
reads them, then replaces them with its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np

from labeltrail.ontology import MODERATION_CLASSES
from labeltrail.sim.text import RichTextGenerator

HERE = Path(__file__).resolve().parent
SEED = 14
PRIORS = (0.64, 0.15, 0.13, 0.05, 0.03)
CATEGORIES = ("gaming", "cooking", "news", "music", "education")
LANGUAGES = ("en", "en", "en", "en", "en-hi", "en-es")
START = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
EXPERTS = ("expert-01", "expert-02", "expert-03")


def _author(i: int) -> str:
    return hashlib.sha256(f"example-author-{i}".encode()).hexdigest()[:12]


def _comments(
    rng: np.random.Generator,
    texts: RichTextGenerator,
    truths: list[tuple[str, bool]],
    prefix: str,
    offset: int,
) -> list[tuple[dict[str, object], str]]:
    """A comment per (truth, coded) as (fields, truth): threads grow per video, coded ones
    always reply."""
    out: list[tuple[dict[str, object], str]] = []
    threads: dict[str, list[tuple[str, list[str]]]] = {}
    at = START
    for i, (truth, coded) in enumerate(truths):
        video = f"v-ex{int(rng.integers(20)):02d}"
        earlier = threads.setdefault(video, [])
        parents: list[str] = []
        if earlier and (coded or rng.random() < 0.3):
            parent_id, above = earlier[int(rng.integers(len(earlier)))]
            parents = [*above, parent_id][-3:]
        cid = f"{prefix}-{i + 1:04d}"
        earlier.append((cid, parents))
        at += dt.timedelta(seconds=int(rng.integers(60, 2_400)))
        fields: dict[str, object] = {
            "comment_id": cid,
            "video_id": video,
            "author_hash": _author(int(rng.integers(120))),
            "text": texts.text(truth, coded, offset + i),
            "source": "product_log" if rng.random() < 0.8 else "pool",
            "posted_at": at.isoformat(),
            "parent_ids": parents,
            "attributes": {
                "language": LANGUAGES[int(rng.integers(len(LANGUAGES)))],
                "category": CATEGORIES[int(rng.integers(len(CATEGORIES)))],
            },
        }
        out.append((fields, truth))
    return out


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main(out: Path = HERE) -> None:
    rng = np.random.default_rng(SEED)
    texts = RichTextGenerator(SEED)
    drawn = [MODERATION_CLASSES[int(rng.choice(len(PRIORS), p=PRIORS))] for _ in range(200)]
    truths = [(t, t == "harassment" and rng.random() < 0.5) for t in drawn]
    comments = _comments(rng, texts, truths, "c-ex", 0)
    _write(out / "comments.jsonl", [fields for fields, _ in comments])
    gold_rows: list[dict[str, object]] = []
    # stratified: 8 per class (half of harassment coded), so every class has honeypots
    stratified = [
        (c, c == "harassment" and k % 2 == 1) for c in MODERATION_CLASSES for k in range(8)
    ]
    stratified = [stratified[int(k)] for k in rng.permutation(len(stratified))]
    for i, (fields, truth) in enumerate(_comments(rng, texts, stratified, "g-ex", 10_000)):
        fields["parent_ids"] = []  # a gold item stands alone: its thread is not posted
        gold_rows.append(
            {
                **fields,
                "source": "pool",
                "label": truth,
                "reviewer_id": EXPERTS[i % len(EXPERTS)],
                "schema_version": "v1",
                "confidence": 1.0,
                "note": "reviewed for the gold set",
            }
        )
    _write(out / "gold.jsonl", gold_rows)


if __name__ == "__main__":
    main()
