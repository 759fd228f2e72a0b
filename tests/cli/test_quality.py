from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from labeltrail.cli import quality as quality_cli

app = typer.Typer()
quality_cli.register(app)
runner = CliRunner()


@pytest.fixture
def votes_csv(tmp_path: Path) -> Path:
    path = tmp_path / "votes.csv"
    rows = ["item,annotator,label"]
    for i in range(30):
        for a in range(3):
            rows.append(f"c{i},w{a},{'toxic' if (i + (a == 2 and i % 4 == 0)) % 3 == 0 else 'ok'}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("method", ["mv", "wmv", "ds", "ods", "mace", "glad"])
def test_aggregate_writes_posteriors(method: str, votes_csv: Path) -> None:
    res = runner.invoke(app, ["aggregate", "--method", method, str(votes_csv)])
    assert res.exit_code == 0, res.output
    out = pd.read_csv(io.StringIO(res.stdout))
    assert list(out.columns) == ["item", "label", "confidence", "p_ok", "p_toxic"]
    assert len(out) == 30
    assert ((out.p_ok + out.p_toxic - 1).abs() < 1e-5).all()


@pytest.mark.parametrize("method", ["ds", "glad"])
def test_aggregate_with_gold_and_out(method: str, votes_csv: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("item,label\nc1,toxic\n")
    out = tmp_path / "out.csv"
    res = runner.invoke(
        app,
        ["aggregate", "--method", method, "--gold", str(gold), "--out", str(out), str(votes_csv)],
    )
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out).set_index("item")
    assert frame.loc["c1", "label"] == "toxic" and frame.loc["c1", "confidence"] == 1.0


@pytest.mark.parametrize("metric", ["alpha", "fleiss"])
def test_agreement_prints_value_and_ci(metric: str, votes_csv: Path) -> None:
    res = runner.invoke(
        app, ["agreement", "--metric", metric, "--ci", "--n-boot", "50", str(votes_csv)]
    )
    assert res.exit_code == 0, res.output
    assert "[" in res.stdout and "bootstrap" in res.stdout


def test_cohen_needs_two_annotators(votes_csv: Path) -> None:
    res = runner.invoke(app, ["agreement", "--metric", "cohen", str(votes_csv)])
    assert res.exit_code == 2 and "exactly 2 annotators" in res.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("item,who,label\na,b,c\n", "missing column"),
        ("item,annotator,label\na,,c\n", "empty value on line 2"),
        ("item,annotator,label\n", "no rows"),
        ("", "not a readable CSV"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    res = runner.invoke(app, ["aggregate", str(path)])
    assert res.exit_code == 2 and message in res.output


def test_missing_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["agreement", str(tmp_path / "nope.csv")])
    assert res.exit_code == 2 and "no such file" in res.output
