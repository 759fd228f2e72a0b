"""`labeltrail export verify DIR` checks every file in the directory it is given (issue 12).

One export is made from a simulated history on the real broker and the embedded ClickHouse;
each test verifies a copy of its directory (changed, moved, added to, cut) through the CLI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from labeltrail.cli.export import export_app
from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.config import Settings
from labeltrail.events.models import ExportCreated
from labeltrail.export.build import create_export, find_export
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.producer import EventProducer
from tests.audit.history import simulated

pytestmark = pytest.mark.integration

AS_OF = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Made:
    settings: Settings
    directory: Path
    export: ExportCreated
    work: Path

    def copy(self, name: str) -> Path:
        target = self.work / uuid.uuid4().hex[:8] / name
        shutil.copytree(self.directory, target)
        return target


@pytest.fixture(scope="module")
def made(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    root = tmp_path_factory.mktemp("export-verify")
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        topic_partitions=3,
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
    )
    ensure_topics(settings)
    producer = EventProducer(settings)
    for event in simulated(60, seed=13):
        producer.send(event)
    producer.flush()
    client = client_from(settings)
    apply_ddl(client)
    export = create_export(
        client, settings, schema_version="v3", out_dir=root / "exports", as_of=AS_OF
    )
    again = create_export(
        client, settings, schema_version="v3", out_dir=root / "again", as_of=AS_OF
    )
    client.close()
    assert again.export_id == export.export_id
    yield Made(settings, Path(export.uri.removeprefix("file://")), export, root / "work")


def verify(made: Made, reference: Path | str) -> tuple[int, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": made.settings.kafka_bootstrap_servers,
        "LABELTRAIL_KAFKA_BOOTSTRAP": made.settings.kafka_bootstrap_servers,
        "LABELTRAIL_TOPIC_PREFIX": made.settings.topic_prefix,
        "LABELTRAIL_TOPIC_PARTITIONS": "3",
    }
    result = CliRunner().invoke(export_app, ["verify", str(reference)], env=env)
    return result.exit_code, " ".join(result.output.split())


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def rehash(directory: Path, **changes: object) -> None:
    """Rewrite manifest.json with ``changes`` and every file's new hash, hash included: what a
    careful forger would do."""
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    for name in data["files"]:
        data["files"][name] = (
            "sha256:" + hashlib.sha256((directory / name).read_bytes()).hexdigest()
        )
    data.pop("manifest_hash")
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data["manifest_hash"] = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    path.write_text(json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def relabel_parquet(directory: Path) -> int:
    """Give every row labelled like the first another class, as a valid Parquet file."""
    table = pq.read_table(directory / "rows.parquet")
    labels = table.column("label")
    first = labels[0].as_py()
    other = next(c for c in table.column("classes")[0].as_py() if c != first)
    hit = pc.equal(labels, first)
    new = pc.if_else(hit, pa.scalar(other), labels)
    table = table.set_column(table.schema.get_field_index("label"), "label", new)
    pq.write_table(table, directory / "rows.parquet")
    return int(pc.sum(hit).as_py())


def test_same_export_built_twice_gives_the_same_bytes(made: Made) -> None:
    again = made.directory.parent.parent / "again" / made.export.export_id
    for name in ("manifest.json", "rows.jsonl", "rows.parquet"):
        assert (again / name).read_bytes() == (made.directory / name).read_bytes(), name
    manifest = json.loads((made.directory / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["rows.jsonl", "rows.parquet"]
    assert str(made.directory) not in (made.directory / "manifest.json").read_text()


def test_original_and_untouched_copy_elsewhere_verify(made: Made) -> None:
    code, out = verify(made, made.directory)
    assert code == 0, out
    assert "rows.jsonl, rows.parquet in" in out and "problem" not in out
    copy = made.copy("elsewhere")
    code, out = verify(made, copy / "manifest.json")
    assert code == 0, out
    assert str(copy) in out


def _flip_in_jsonl(d: Path) -> None:
    data = (d / "rows.jsonl").read_bytes()
    flip(d / "rows.jsonl", data.index(b'"label":"') + 10)


def _flip_in_parquet(d: Path) -> None:
    flip(d / "rows.parquet", (d / "rows.parquet").stat().st_size // 2)


def _flip_in_manifest(d: Path) -> None:
    data = (d / "manifest.json").read_bytes()
    flip(d / "manifest.json", data.index(b'"row_count": ') + 13)


def _space_in_manifest(d: Path) -> None:
    path = d / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"row_count": ', b'"row_count":  '))


def _extra_file(d: Path) -> None:
    (d / "notes.txt").write_text("hello\n")


def _extra_nested_file(d: Path) -> None:
    (d / "sub").mkdir()
    (d / "sub" / "rows.parquet").write_bytes((d / "rows.parquet").read_bytes())


def _missing_parquet(d: Path) -> None:
    (d / "rows.parquet").unlink()


def _missing_jsonl(d: Path) -> None:
    (d / "rows.jsonl").unlink()


def _relabelled_and_rehashed(d: Path) -> None:
    assert relabel_parquet(d) > 0
    rehash(d)


def _parquet_rewritten_and_rehashed(d: Path) -> None:
    """Other Parquet bytes (another compression, custom metadata) with the same rows: only the
    manifest hash recorded on the log can tell."""
    table = pq.read_table(d / "rows.parquet")
    table = table.replace_schema_metadata({b"note": b"rewritten"})
    pq.write_table(table, d / "rows.parquet", compression="gzip")
    rehash(d)


def _rows_and_hash_forged(d: Path) -> None:
    lines = (d / "rows.jsonl").read_bytes().splitlines(keepends=True)
    (d / "rows.jsonl").write_bytes(b"".join(lines[1:]))
    forged = "sha256:" + hashlib.sha256((d / "rows.jsonl").read_bytes()).hexdigest()
    rehash(d, content_hash=forged, row_count=len(lines) - 1)


def _symlink_out(d: Path) -> None:
    outside = d.parent / "outside.parquet"
    (d / "rows.parquet").rename(outside)
    (d / "rows.parquet").symlink_to(outside)


def _path_outside(d: Path) -> None:
    (d.parent / "rows.parquet").write_bytes((d / "rows.parquet").read_bytes())
    (d / "rows.parquet").unlink()
    path = d / "manifest.json"
    data = json.loads(path.read_text())
    data["files"]["../rows.parquet"] = data["files"].pop("rows.parquet")
    path.write_text(json.dumps(data))
    rehash(d)


TAMPERINGS: dict[str, tuple[Callable[[Path], None], str]] = {
    "byte in rows.jsonl": (_flip_in_jsonl, "rows.jsonl changed"),
    "byte in rows.parquet": (_flip_in_parquet, "rows.parquet changed"),
    "byte in manifest.json": (_flip_in_manifest, "manifest.json does not match its recorded hash"),
    "whitespace in manifest.json": (_space_in_manifest, "not in its canonical layout"),
    "extra file": (_extra_file, "notes.txt is not in the manifest"),
    "extra nested file": (_extra_nested_file, "sub/rows.parquet is not in the manifest"),
    "missing rows.parquet": (_missing_parquet, "rows.parquet is missing"),
    "missing rows.jsonl": (_missing_jsonl, "rows.jsonl is missing"),
    "parquet relabelled, manifest rehashed": (
        _relabelled_and_rehashed,
        "rows.parquet differs from the rows rebuilt from the log",
    ),
    "parquet rewritten with the same rows, manifest rehashed": (
        _parquet_rewritten_and_rehashed,
        "the ExportCreated on the log recorded",
    ),
    "row dropped, content hash forged": (
        _rows_and_hash_forged,
        "manifest.json says content_hash=",
    ),
    "symlink out of the directory": (_symlink_out, "rows.parquet is a symbolic link"),
    "manifest names a path outside": (_path_outside, "'../rows.parquet', which is not a path"),
}


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_tampered_copy_fails(made: Made, case: str) -> None:
    tamper, message = TAMPERINGS[case]
    copy = made.copy("tampered")
    tamper(copy)
    code, out = verify(made, copy)
    assert code == 4, out
    assert message in out
    assert "does NOT verify" in out


def test_tampered_copy_fails_with_the_original_moved_away(made: Made) -> None:
    copy = made.copy("tampered")
    flip(copy / "rows.parquet", (copy / "rows.parquet").stat().st_size // 3)
    moved = made.work / "moved"
    made.directory.rename(moved)
    try:
        code, out = verify(made, copy)
        assert code == 4, out
        assert "rows.parquet changed" in out
        code, out = verify(made, moved)
        assert code == 0, out
    finally:
        moved.rename(made.directory)


def test_older_manifest_gets_a_clear_error(made: Made) -> None:
    copy = made.copy("old")
    (copy / "manifest.json").write_text(made.export.model_dump_json(indent=2) + "\n")
    code, out = verify(made, copy)
    assert code == 1, out
    assert "older manifest format" in out and made.export.export_id in out


def test_verify_by_id_says_files_are_not_checked(made: Made) -> None:
    code, out = verify(made, made.export.export_id)
    assert code == 0, out
    assert "not checked" in out
    assert find_export(made.settings, made.export.export_id).content_hash == (
        made.export.content_hash
    )
