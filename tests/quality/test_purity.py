"""The quality core stays pure: no broker, database, model-runtime or pandas imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FORBIDDEN = {
    "confluent_kafka",
    "aiokafka",
    "faust",
    "clickhouse_connect",
    "chdb",
    "onnxruntime",
    "torch",
    "pandas",
}
PACKAGE = Path(__file__).resolve().parents[2] / "src" / "labeltrail" / "quality"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_package_has_modules() -> None:
    assert len(MODULES) >= 10


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_nothing_impure(path: Path) -> None:
    assert _imported_roots(path) & FORBIDDEN == set()
