"""The deployed scoring path loads onnxruntime, never torch (the ``score`` extra alone)."""

from __future__ import annotations

import subprocess
import sys

from tests.learning.fixtures import require


def test_scoring_path_never_loads_torch() -> None:
    require("onnxruntime")
    code = (
        "import sys, labeltrail.learning, labeltrail.folds.scorer, labeltrail.ml.scoring; "
        "sys.exit(int('torch' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
