"""Only the frontend's edge modules touch the broker client; the rest is testable without it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "labeltrail" / "annotate"
EDGES = {"feed.py", "publish.py", "server.py", "__init__.py"}
BROKER = {"confluent_kafka", "aiokafka", "faust"}
PURE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in EDGES)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_module_imports_no_broker_client(path: Path) -> None:
    imports = _imports(path)
    assert {name.split(".")[0] for name in imports} & BROKER == set()
    assert not any(name.startswith("labeltrail.kafka") for name in imports)
    assert not any(
        name.startswith(("labeltrail.annotate.feed", "labeltrail.annotate.publish."))
        for name in imports
    )
