"""The API documentation in a real browser (Debian's chromium, headless), behind the
gateway, with every request that would leave the machine blocked: /docs and /redoc must
render the operations from what the services serve themselves."""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.deployment import Deployment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/test installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-dev-shm-usage"],  # no sandbox as root
        )
        yield launched
        launched.close()


class Page:
    """A page whose requests beyond 127.0.0.1 are blocked and counted, and whose console
    errors (CSP violations among them) are kept."""

    def __init__(self, browser: object) -> None:
        self.context = browser.new_context()  # type: ignore[attr-defined]
        self.outside: list[str] = []
        self.errors: list[str] = []

        def route(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            if re.match(r"^(https?|wss?)://127\.0\.0\.1[:/]", url) or url.startswith("data:"):
                route.continue_()  # type: ignore[attr-defined]
            else:
                self.outside.append(url)
                route.abort()  # type: ignore[attr-defined]

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def close(self) -> None:
        self.context.close()


def test_docs_render_every_service_without_the_internet(
    deployment: Deployment, browser: object
) -> None:
    page = Page(browser)
    try:
        page.page.goto(f"{deployment.url}/docs")
        page.page.wait_for_selector(".opblock", timeout=60_000)
        api_paths = page.page.locator(".opblock-summary-path").all_inner_texts()
        assert any(p.startswith("/api/projects") for p in api_paths), api_paths
        assert any(p.startswith("/dicomweb/") for p in api_paths), api_paths
        # the other services' documents, linked from the page
        links = page.page.locator("nav.giftcloud-documents a").all_inner_texts()
        assert links == ["auth", "ingest", "anonymise"], links
        page.page.click("nav.giftcloud-documents a:text-is('auth')")
        page.page.wait_for_selector(".opblock-summary-path[data-path='/auth/token']")
        page.page.click("nav.giftcloud-documents a:text-is('ingest')")
        page.page.wait_for_selector(".opblock-summary-path[data-path^='/ingest/']")
        stow = page.page.locator(".opblock-summary-path[data-path^='/dicomweb/']").count()
        assert stow > 0  # STOW-RS is ingest's
        assert page.outside == [], page.outside
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_redoc_renders_without_the_internet(deployment: Deployment, browser: object) -> None:
    page = Page(browser)
    try:
        for spec, operation in [(None, "/api/projects"), ("auth", "/auth/token")]:
            query = f"?spec={spec}" if spec else ""
            page.page.goto(f"{deployment.url}/redoc{query}")
            page.page.wait_for_selector("[data-section-id^='operation/']", timeout=60_000)
            assert page.page.locator("[data-section-id^='operation/']").count() > 3
            assert operation in page.page.content()
        assert page.outside == [], page.outside
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_docs_pages_name_nothing_outside(deployment: Deployment) -> None:
    for path in ("/docs", "/redoc", "/redoc?spec=ingest"):
        html = httpx.get(f"{deployment.url}{path}").text
        assert not re.search(r"(src|href)=[\"']https?://", html), html
    asset = httpx.get(f"{deployment.url}/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
    for name in ("../app.py", "nothing.js", "%2e%2e%2fcore.py"):
        assert httpx.get(f"{deployment.url}/docs/assets/{name}").status_code == 404
    assert httpx.get(f"{deployment.url}/redoc?spec=nope").status_code == 404


def test_the_all_in_one_process_documents_everything(tmp_path: Path) -> None:
    """``giftcloud up`` is one app: one document with every service's operations."""
    import base64
    import os

    from giftcloud.services import all_in_one
    from giftcloud_core.settings import Settings, StorageSettings

    settings = Settings(
        service="giftcloud",
        data_dir=tmp_path,
        storage=StorageSettings(kind="fs", path=tmp_path / "objects"),
        anonymise={"secret": base64.b64encode(os.urandom(32)).decode()},
    )
    app = all_in_one(settings)
    paths = set(app.openapi()["paths"])
    for expected in ("/auth/token", "/api/projects", "/ingest/{project}/uploads"):
        assert expected in paths, sorted(paths)[:20]
