"""A real browser for tests: Debian's chromium driven by Playwright (no browser is
downloaded), a :class:`Tab` per person, each page checked with axe-core (vendored, injected
into the page) and photographed into the artifacts folder (``GIFTCLOUD_TEST_ARTIFACTS``,
or ``test-artifacts/browser`` in the checkout)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE_SOURCE = (Path(__file__).parents[1] / "browser" / "vendor" / "axe.min.js").read_text()
ARTIFACTS = (
    Path(
        os.environ.get("GIFTCLOUD_TEST_ARTIFACTS")
        or Path(__file__).resolve().parents[2] / "test-artifacts"
    )
    / "browser"
)


@contextmanager
def launched() -> Iterator[Any]:
    """Chromium, for a module's tests (skipped where it is not installed)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/test installs Debian's)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage"],  # no sandbox as root
        )
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """A browser context of its own (its own cookies: one person), one page, the page's
    script errors kept, every failed response kept."""

    def __init__(self, browser: Any, base: str, width: int = 1280, height: int = 800) -> None:
        self.context = browser.new_context(
            viewport={"width": width, "height": height}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.base = base
        #: script errors and console errors (a Content Security Policy violation is one)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # a refused answer (a 403 page the test asked for) is the test's business, not an error
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def sign_in(self, username: str, password: str) -> None:
        self.go("/")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.click("form.stacked button[type=submit]")

    def check(self, name: str) -> list[dict[str, Any]]:
        """axe-core on the page as it is now: its serious and critical violations (none
        expected); a screenshot of it either way."""
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        # evaluated by the browser's debugging protocol, which the pages' CSP does not govern
        # (an injected <script> would be refused, as it should be)
        self.page.evaluate(AXE_SOURCE)
        result = self.page.evaluate("async () => await axe.run(document)")
        bad = [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        (ARTIFACTS / f"{name}.axe.json").write_text(json.dumps(result["violations"], indent=1))
        return bad

    def close(self) -> None:
        self.context.close()
