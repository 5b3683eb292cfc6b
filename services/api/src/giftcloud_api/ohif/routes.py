"""OHIF served at ``/ohif/`` on api's own origin: its files as built, its configuration
per viewer (``app-config.js``: the projects they may read), and its page for any of its
routes (``/ohif/viewer/{project}?StudyInstanceUIDs=…``), shown only to a signed-in viewer.
Where it is not installed, ``/ohif/`` says so and the study pages offer no link to it."""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from giftcloud_core.errors import NotFound

from giftcloud_api.ohif.config import app_config, page_policy
from giftcloud_api.ohif.install import BASE, MARKER, Installed
from giftcloud_api.web.kit import Pages
from giftcloud_api.web.views import GoTo, Viewer

mimetypes.add_type("application/wasm", ".wasm")
#: a built file whose name carries its content's hash never changes
HASHED = re.compile(r"\.[0-9a-f]{16,}\.|^[0-9a-f]{16,}\.")
NOT_INSTALLED = (
    "OHIF is not installed on this server: its admin installs it with"
    " `python -m giftcloud_api.ohif.install FOLDER` and sets GIFTCLOUD_API__OHIF_DIR"
)


def study_link(project: str, study_uid: str) -> str:
    """Where a study opens in OHIF."""
    return f"{BASE}viewer/{quote(project)}?StudyInstanceUIDs={quote(study_uid)}"


def build_router(kit: Pages, app: Installed | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    policy = page_policy(app.script_hashes) if app else ""

    def built_file(path: str) -> Path | None:
        """A file of the build (not its marker), never a path out of its folder."""
        if app is None or not path or path == MARKER:
            return None
        root = app.folder.resolve()
        candidate = (root / path).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate

    @router.get("/ohif")
    async def to_viewer() -> Response:
        return RedirectResponse(BASE, status_code=308)

    @router.get("/ohif/app-config.js")
    async def configuration(request: Request) -> Response:
        """``window.config`` for the viewer signed in; a lapsed session goes to sign in."""
        if app is None:
            raise NotFound(NOT_INSTALLED)
        try:
            viewer = await kit.signed_in(request)
        except GoTo:
            script = (
                "window.location.replace('/auth/session/renew?next=' +"
                " encodeURIComponent(window.location.pathname + window.location.search));"
            )
            return Response(script, media_type="text/javascript", headers=_NO_STORE)
        projects = await kit.readable(request, viewer)
        return Response(app_config(projects), media_type="text/javascript", headers=_NO_STORE)

    @router.get("/ohif/{path:path}")
    async def served(request: Request, path: str) -> Response:
        """A file of the build, or the viewer's page for any of OHIF's own routes."""
        found = built_file(path)
        if found is not None and found.name != "index.html":
            cache = (
                "public, max-age=31536000, immutable" if HASHED.search(found.name) else "no-cache"
            )
            # a worker started from one of these files runs under the policy it came with
            return FileResponse(
                found, headers={"Cache-Control": cache, "Content-Security-Policy": policy}
            )

        async def build(viewer: Viewer) -> Response:
            if app is None:
                raise NotFound(NOT_INSTALLED)
            await kit.audit.record(request, "web.page", target=request.url.path)
            html = (app.folder / "index.html").read_text(encoding="utf-8")
            headers = {**_NO_STORE, "Content-Security-Policy": policy}
            return HTMLResponse(html, headers=headers)

        return await kit.shown(request, build)

    return router


_NO_STORE = {"Cache-Control": "no-store"}
