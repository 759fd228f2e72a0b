"""Pure learning modules import no torch, onnxruntime, broker or database client; the scoring
path imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.learning.conftest import require

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "labeltrail" / "learning"
EDGES = {
    "torch_model.py",
    "training.py",
    "scoring.py",
    "scorer_fold.py",
    "scenario.py",
    "scenario_weak.py",
    "train_job.py",
}
FORBIDDEN = {
    "torch",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "confluent_kafka",
    "aiokafka",
    "faust",
    "clickhouse_connect",
    "chdb",
    "pandas",
}
PURE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in EDGES)


def _roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
            if node.module.startswith("labeltrail.learning."):
                roots.add(node.module.rsplit(".", 1)[1] + ".py")
    return roots


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    roots = _roots(path)
    assert roots & FORBIDDEN == set()
    assert roots & EDGES == set(), "a pure module must not import an edge module"


def test_scoring_path_never_loads_torch() -> None:
    require("onnxruntime")
    code = (
        "import sys, labeltrail.learning, labeltrail.learning.scorer_fold; "
        "sys.exit(int('torch' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
