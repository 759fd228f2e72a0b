"""The one rule for a missing service, tool or data set: fail under CI=true, skip elsewhere."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(message: str) -> NoReturn:
    """Fail the test under ``CI=true`` (CI must have everything); skip it on a dev machine."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
