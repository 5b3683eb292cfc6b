"""OHIF served by api (giftcloud_api.ohif.routes) on a miniature of its build: its files with
their types, caching and OHIF's own Content Security Policy; its page only for a signed-in
viewer; its configuration naming only the projects the viewer may read; nothing outside
its folder; without it installed, no link and a page that says how to install it."""

from __future__ import annotations

import re
from pathlib import Path

from giftcloud_api.ohif.install import MARKER, prepare
from giftcloud_core.app import ACCESS_COOKIE
from integration.test_access_control import make_project, make_user
from support.ohif import miniature
from support.site import site
from support.stack import Stack

CHUNK = "/ohif/app.bundle.0f6159c501addfe9.js"


def built(tmp_path: Path) -> Path:
    folder = miniature(tmp_path / "ohif")
    (folder / "0ddf166f7a343eda.wasm").write_bytes(b"\0asm")
    (folder / "sw.js").write_text("self.x = 1;")
    (tmp_path / "secret.txt").write_text("beside the build, never served")
    prepare(folder)
    return folder


async def test_ohif_served_to_signed_in_viewers_with_their_projects(
    stack: Stack, tmp_path: Path
) -> None:
    settings = stack.settings(api={"ohif_dir": built(tmp_path)})
    async with site(settings) as s, s.client() as browser:
        admin = await s.token()
        await make_user(s, admin, "rita")
        await make_project(s, admin, "heart", rita="collaborator")
        await make_project(s, admin, "lungs")
        rita = (await s.token("rita", "rita rides a blue bicycle"))["Authorization"].split()[1]

        # its files: as built, typed, kept long when their name carries a hash
        chunk = await browser.get(CHUNK)
        assert chunk.status_code == 200 and '__webpack_require__.p = "/ohif/"' in chunk.text
        assert chunk.headers["content-type"].startswith("text/javascript")
        assert chunk.headers["cache-control"] == "public, max-age=31536000, immutable"
        # a worker started from it runs under OHIF's policy, not the API's (default-src 'none')
        assert "'wasm-unsafe-eval'" in chunk.headers["content-security-policy"]
        wasm = await browser.get("/ohif/0ddf166f7a343eda.wasm")
        assert wasm.headers["content-type"] == "application/wasm"
        assert (await browser.get("/ohif/sw.js")).headers["cache-control"] == "no-cache"

        # its page: signed out, to sign in and back; nothing else of the folder or beyond
        for path in (
            "viewer/heart?StudyInstanceUIDs=1.2.3",
            MARKER,
            "%2e%2e/secret.txt",
            "..%2fsecret.txt",
        ):
            answer = await browser.get(f"/ohif/{path}")
            assert answer.status_code == 303, (path, answer.status_code)
            assert answer.headers["location"].startswith("/auth/session/renew?next=%2Fohif%2F")
        assert (await browser.get("/ohif")).headers["location"] == "/ohif/"
        page = await browser.get(
            "/ohif/viewer/heart?StudyInstanceUIDs=1.2.3", cookies={ACCESS_COOKIE: rita}
        )
        assert page.status_code == 200 and 'window.PUBLIC_URL="/ohif/"' in page.text
        assert page.headers["cache-control"] == "no-store"
        policy = page.headers["content-security-policy"]
        assert re.search(r"script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval' 'sha256-", policy)
        assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
        marker = await browser.get(f"/ohif/{MARKER}", cookies={ACCESS_COOKIE: rita})
        assert "script_hashes" not in marker.text  # the page, not the marker

        # its configuration: the projects rita may read, and only those
        config = await browser.get("/ohif/app-config.js", cookies={ACCESS_COOKIE: rita})
        assert config.headers["content-type"].startswith("text/javascript")
        assert re.findall(r'"sourceName": "([^"]+)"', config.text) == ["heart"]
        everything = await browser.get("/ohif/app-config.js", cookies={ACCESS_COOKIE: "x.y.z"})
        assert everything.status_code == 200 and "dataSources" not in everything.text
        assert "window.location.replace('/auth/session/renew?next='" in everything.text


async def test_without_ohif_no_link_and_a_page_that_says_so(stack: Stack) -> None:
    async with site(stack.settings()) as s, s.client() as browser:
        admin = await s.token()
        token = admin["Authorization"].split()[1]
        page = await browser.get("/ohif/viewer/heart", cookies={ACCESS_COOKIE: token})
        assert page.status_code == 404
        assert "OHIF is not installed on this server" in page.text
        assert "GIFTCLOUD_API__OHIF_DIR" in page.text
        config = await browser.get("/ohif/app-config.js", cookies={ACCESS_COOKIE: token})
        assert config.status_code == 404
