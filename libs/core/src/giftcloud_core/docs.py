"""The API documentation pages, with nothing loaded from the internet: Swagger UI at
``/docs`` and ReDoc at ``/redoc``, their scripts and styles served by the app itself from
the ``fastapi-offline`` package (Swagger UI: Apache-2.0; ReDoc: MIT; the package: MIT).

A process documents its own operations (``/openapi.json``). Behind the gateway each
service also answers at its own prefix (``/auth/openapi.json``...), and the api service,
which the gateway sends ``/docs`` to, offers them all in one page.
"""

import html
import importlib.resources
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, Response

ASSETS = "/docs/assets"
Spec = Annotated[str | None, Query(description="which API document", max_length=40)]
_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_FILES = importlib.resources.files("fastapi_offline").joinpath("static")
#: the assets, read once: a few MB shared by every request
_cache: dict[str, bytes] = {}
#: what the assets would fetch from elsewhere, and what they get instead: ReDoc's sidebar
#: shows Redocly's logo from their CDN (a request that tells them who reads our docs)
_OUTSIDE = {
    "redoc.standalone.js": [
        (b"https://cdn.redoc.ly/redoc/logo-mini.svg", f"{ASSETS}/favicon.png".encode())
    ]
}


def _asset(name: str) -> bytes | None:
    if name not in _cache:
        if not any(name.endswith(ext) for ext in _TYPES) or "/" in name:
            return None
        found = _FILES.joinpath(name)
        if not found.is_file():
            return None
        data = found.read_bytes()
        for outside, here in _OUTSIDE.get(name, []):
            data = data.replace(outside, here)
        _cache[name] = data
    return _cache[name]


def docs_router(
    app: FastAPI,
    title: str,
    specs: Sequence[tuple[str, str]],
    aliases: Sequence[str] = (),
) -> APIRouter:
    """``/docs``, ``/redoc`` and their assets. ``specs`` are (name, URL) of the OpenAPI
    documents offered, this process's own first; ``aliases`` are more paths at which this
    process's own document is served (its prefix behind the gateway)."""
    router = APIRouter(include_in_schema=False)
    by_name = dict(specs)

    @router.get(f"{ASSETS}/{{name}}")
    async def asset(name: str) -> Response:
        data = _asset(name)
        if data is None:
            raise HTTPException(404, f"no documentation asset {name[:80]!r}")
        media_type = next(t for ext, t in _TYPES.items() if name.endswith(ext))
        return Response(data, media_type=media_type, headers={"Cache-Control": "max-age=86400"})

    def chosen(spec: str | None) -> str:
        name = spec or specs[0][0]
        if name not in by_name:
            raise HTTPException(404, f"no API document {name!r}: one of {', '.join(by_name)}")
        return name

    def with_choice(page: HTMLResponse, page_path: str, name: str, anchor: str) -> HTMLResponse:
        """The page, with links to the other documents above it (plain links: no script)."""
        if len(specs) < 2:
            return page
        links = " · ".join(
            f"<b>{html.escape(n)}</b>"
            if n == name
            else f'<a href="{page_path}?spec={quote(n)}">{html.escape(n)}</a>'
            for n, _ in specs
        )
        nav = (
            '<nav class="giftcloud-documents" style="font: 14px sans-serif; padding: 8px 20px;'
            f' border-bottom: 1px solid #ddd">API documents: {links}</nav>'
        )
        body = bytes(page.body).decode().replace(anchor, nav + anchor, 1)
        return HTMLResponse(body)

    @router.get("/docs")
    async def swagger(spec: Spec = None) -> HTMLResponse:
        name = chosen(spec)
        page = get_swagger_ui_html(
            openapi_url=by_name[name],
            title=f"{title}: {name} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None, "deepLinking": True},
        )
        return with_choice(page, "/docs", name, '<div id="swagger-ui">')

    @router.get("/docs/oauth2-redirect")
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc(spec: Spec = None) -> HTMLResponse:
        name = chosen(spec)
        page = get_redoc_html(
            openapi_url=by_name[name],
            title=f"{title}: {name} API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return with_choice(page, "/redoc", name, "<redoc ")

    for alias in aliases:

        @router.get(alias)
        async def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

    return router
