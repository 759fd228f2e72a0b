"""An export directory's manifest, and the check of a directory's files against it.

``manifest.json`` holds the fields the export's ``ExportCreated`` records, the ``sha256`` of
every other file and its own ``manifest_hash``, in one canonical layout, so the same export
built twice gives the same bytes and a changed byte anywhere shows. :func:`check_directory`
never reads outside the directory it is given. Pure: no Kafka, no ClickHouse. Format and
checks: ``docs/audit.md`` ("Versioned exports").
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from labeltrail.events.base import LogPosition, Millis
from labeltrail.events.models import ExportCreated
from labeltrail.exceptions import LabeltrailError

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "RECORDED_FIELDS",
    "DirectoryCheck",
    "Manifest",
    "OlderManifestError",
    "check_directory",
    "file_sha256",
    "render_manifest",
]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "labeltrail-export-manifest/2"

RECORDED_FIELDS = (
    "export_id",
    "schema_version",
    "as_of",
    "log_positions",
    "aggregator",
    "aggregator_params",
    "content_hash",
    "row_count",
)
"""The fields a manifest shares with its export's ``ExportCreated`` on the log."""


class OlderManifestError(LabeltrailError):
    """The manifest is the first format (the ``ExportCreated`` record, no hash per file)."""


class Manifest(BaseModel):
    """Format 2 of ``manifest.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["labeltrail-export-manifest/2"]
    export_id: str
    schema_version: str
    as_of: Millis
    log_positions: list[LogPosition]
    aggregator: str
    aggregator_params: dict[str, str]
    content_hash: str
    row_count: int
    files: dict[str, str]
    manifest_hash: str

    def recorded(self) -> dict[str, Any]:
        """The fields that must equal the export's ``ExportCreated`` (as JSON values)."""
        return self.model_dump(mode="json", include=set(RECORDED_FIELDS))


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    with path.open("rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()


def _hash_body(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _layout(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def render_manifest(export: ExportCreated, files: Mapping[str, str]) -> bytes:
    """The bytes of ``manifest.json`` for an export and its files' hashes."""
    body = {
        "format": MANIFEST_FORMAT,
        **export.model_dump(mode="json", include=set(RECORDED_FIELDS)),
        "files": dict(sorted(files.items())),
    }
    return _layout({**body, "manifest_hash": _hash_body(body)})


def _safe_relative(name: str) -> bool:
    path = PurePosixPath(name)
    return (
        bool(name)
        and not path.is_absolute()
        and str(path) == name
        and all(part not in ("", ".", "..") for part in path.parts)
        and "\\" not in name
        and name != MANIFEST
    )


def _present(directory: Path) -> tuple[set[str], list[str]]:
    """Regular files under ``directory`` by relative path, and what else is there."""
    found: set[str] = set()
    problems: list[str] = []
    for root, dirs, names in os.walk(directory, followlinks=False):
        base = Path(root)
        for name in sorted([*dirs, *names]):
            path = base / name
            rel = path.relative_to(directory).as_posix()
            if path.is_symlink():
                problems.append(f"{rel} is a symbolic link (not followed, not allowed)")
            elif name in names and not path.is_file():
                problems.append(f"{rel} is not a regular file")
            elif name in names:
                found.add(rel)
    found.discard(MANIFEST)
    return found, problems


def _load(directory: Path) -> tuple[bytes, dict[str, Any]]:
    path = directory / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise LabeltrailError(f"{directory} has no {MANIFEST}: not an export directory")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabeltrailError(f"{path} is not JSON ({exc}): the manifest is damaged") from exc
    if not isinstance(data, dict):
        raise LabeltrailError(f"{path} is not a JSON object: the manifest is damaged")
    if "format" not in data and "envelope" in data and "export_id" in data:
        raise OlderManifestError(
            f"{path} is an older manifest format (format 1: the ExportCreated record, with no "
            "hash per file), so its files cannot be checked. `labeltrail export verify "
            f"{data['export_id']}` still rebuilds its rows from the log and checks their hash; "
            f"an export created now writes format 2 ({MANIFEST_FORMAT})"
        )
    if data.get("format") != MANIFEST_FORMAT:
        raise LabeltrailError(
            f"{path} has format {data.get('format')!r}; this labeltrail reads {MANIFEST_FORMAT}"
        )
    return raw, data


@dataclass(frozen=True)
class DirectoryCheck:
    """What the manifest says, which files were checked, and every problem found."""

    manifest: Manifest
    checked: tuple[str, ...]
    problems: tuple[str, ...]


def check_directory(directory: Path) -> DirectoryCheck:
    """Check ``directory``'s files against its ``manifest.json``.

    A problem is: a manifest that does not match its recorded hash or is not in its canonical
    layout, a path in the manifest that would leave the directory, a listed file that is
    missing or whose bytes hash differently, a file that is not listed, a symbolic link or
    other non-regular file. Raises :class:`OlderManifestError` for a format-1 manifest and
    :class:`LabeltrailError` when there is no readable manifest at all.
    """
    raw, data = _load(directory)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise LabeltrailError(f"{directory / MANIFEST} is not a valid manifest: {exc}") from exc
    problems: list[str] = []
    body = {k: v for k, v in data.items() if k != "manifest_hash"}
    computed = _hash_body(body)
    if computed != manifest.manifest_hash:
        problems.append(
            f"{MANIFEST} does not match its recorded hash (recorded {manifest.manifest_hash}, "
            f"computed {computed}): the manifest was changed"
        )
    elif raw != _layout(data):
        problems.append(f"{MANIFEST} is not in its canonical layout: its bytes were changed")
    present, odd = _present(directory)
    problems.extend(odd)
    checked: list[str] = []
    for name, recorded in sorted(manifest.files.items()):
        if not _safe_relative(name):
            problems.append(f"{MANIFEST} lists {name!r}, which is not a path inside the directory")
        elif name not in present:
            problems.append(f"{name} is missing")
        else:
            actual = file_sha256(directory / name)
            checked.append(name)
            if actual != recorded:
                problems.append(f"{name} changed (manifest {recorded}, file {actual})")
    problems.extend(
        f"{name} is not in the manifest" for name in sorted(present - manifest.files.keys())
    )
    return DirectoryCheck(manifest, tuple(checked), tuple(problems))
