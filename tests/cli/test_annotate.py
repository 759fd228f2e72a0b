"""``labeltrail annotate token``: the token is shown once, only its hash is kept."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from labeltrail.annotate.auth import TokenStore
from labeltrail.cli import app


def test_token_command_prints_a_token_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    result = CliRunner().invoke(app, ["annotate", "token", "a47", "--tokens-file", str(path)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    stored = path.read_text()
    assert token not in stored and stored.startswith("a47 sha256:")
    assert TokenStore.load(str(path)).check("a47", token)


def test_token_command_refuses_a_bad_annotator_id() -> None:
    result = CliRunner().invoke(app, ["annotate", "token", "<script>"])
    assert result.exit_code == 2
