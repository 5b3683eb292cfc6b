"""The shared reference data and images (``../shared``, beside the checkout): a test that
needs them skips saying what is missing, but under CI (``.ci/run`` sets
``GIFTCLOUD_REQUIRE_SHARED=1``) a missing one fails: CI never passes by skipping them."""

import os
from pathlib import Path
from typing import NoReturn

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared"
REQUIRED = "GIFTCLOUD_REQUIRE_SHARED"


def absent(what: str, where: Path) -> NoReturn:
    """Skip (or, under CI, fail) a test whose ``what`` is not at ``where``."""
    reason = f"{what} is absent (looked in {where})"
    if os.environ.get(REQUIRED) == "1":
        pytest.fail(f"{reason}; CI requires it ({REQUIRED}=1)")
    pytest.skip(reason)
