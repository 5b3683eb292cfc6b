"""The web interface in a real browser (``support.browser``), against the five services
behind nginx (the ``deployment`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.browser import launched


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as chromium:
        yield chromium
