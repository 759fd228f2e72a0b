"""``labeltrail erase``: destroy the data keys of an author's comments, or of one comment.

A thin call into :func:`labeltrail.kafka.keys.erase` (``docs/erasure.md``).
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from labeltrail.cli.common import console, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError

__all__ = ["erase_command", "register"]


def erase_command(
    author: Annotated[
        str | None, typer.Option("--author", help="The author id (author_hash) to erase.")
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="One comment to erase.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who asks (recorded); default: the current user.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, e.g. the request's ticket (recorded).")] = "",
) -> None:
    """Erase comment text and authors: destroy their keys, record a CommentsErased.

    Votes, labels and their provenance stay; the text and author read as erased on every topic,
    and in ClickHouse once the projector has read the erasure.
    """
    from labeltrail.kafka.keys import NothingToEraseError, erase

    settings = Settings()
    require_kafka(settings)
    try:
        event = erase(
            settings,
            author=author,
            comment=comment,
            actor=actor or getpass.getuser(),
            reason=reason,
        )
    except NothingToEraseError as exc:
        raise fail(exc, 2) from exc
    except LabeltrailError as exc:
        raise fail(exc, 2 if author is None and comment is None else 1) from exc
    console.print(
        f"erased {len(event.comment_ids)} comment(s): {len(event.key_ids)} key(s) destroyed, "
        f"erasure {event.erasure_id} recorded",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("erase")(erase_command)
