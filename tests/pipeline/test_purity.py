"""The pipeline's folds (and the columnar decoder they read) import no broker, stream
framework, database or model-runtime client: the same code runs live, in faust and in a
batch replay."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "labeltrail"
MODULES = [*sorted((SRC / "pipeline").glob("*.py")), SRC / "events" / "columnar.py"]
FORBIDDEN = {
    "confluent_kafka",
    "aiokafka",
    "faust",
    "clickhouse_connect",
    "chdb",
    "onnxruntime",
    "torch",
}


def _roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
            if node.module.startswith("labeltrail.kafka") or node.module.startswith(
                "labeltrail.clickhouse"
            ):
                roots.add(node.module)
    return roots


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_fold_module_imports_no_client(path: Path) -> None:
    roots = _roots(path)
    assert roots & FORBIDDEN == set()
    assert not any(r.startswith(("labeltrail.kafka", "labeltrail.clickhouse")) for r in roots)


def test_the_check_sees_imports() -> None:
    assert "labeltrail" in _roots(SRC / "pipeline" / "consensus.py")
