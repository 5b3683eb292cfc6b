"""The guide: the repository's ``docs/`` pages (Markdown, one per topic) as web pages at
``/guide``, so a deployment documents itself beside its web interface, with no internet.

The pages are the files the README links to; links between them become links between the
served pages. Markdown's raw HTML is off: a page shows only what Markdown makes."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from markdown_it import MarkdownIt
from starlette.exceptions import HTTPException

from giftcloud_api.web.views import PAGE_POLICY, render

#: the pages in the order the index lists them (the README's "Where to next")
ORDER = (
    "refusals",
    "deidentification",
    "dicom-node",
    "dicomweb",
    "results",
    "sites-and-hubs",
    "federation",
    "access-control",
    "deployment",
    "architecture",
    "status",
    "testing",
)
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_LINK = re.compile(r'(href|src)="(?!https?:|/|#|mailto:)([a-z0-9-]+)(\.md)?(#[^"]*)?"')


def docs_folder() -> Path | None:
    """Where the pages are: installed with the package, or the checkout's ``docs/``."""
    installed = resources.files("giftcloud_api") / "docs"
    if installed.is_dir():
        return Path(str(installed))
    checkout = Path(__file__).resolve().parents[5] / "docs"
    return checkout if checkout.is_dir() else None


def _served(match: re.Match[str]) -> str:
    attribute, name, _, anchor = match.groups()
    return f'{attribute}="/guide/{name}{anchor or ""}"'


@lru_cache(maxsize=32)
def page(folder: Path, name: str) -> tuple[str, str]:
    """A page's title and its HTML body."""
    text = (folder / f"{name}.md").read_text()
    title = text.splitlines()[0].lstrip("# ").strip()
    html = _MARKDOWN.render(text)
    html = re.sub(r'(src)="([a-z0-9-]+\.png)"', r'\1="/guide/\2"', html)
    return title, _LINK.sub(_served, html)


def _html(body: str) -> HTMLResponse:
    response = HTMLResponse(body)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def folder() -> Path:
        found = docs_folder()
        if found is None:
            raise HTTPException(404, "the guide is not installed with this server: see docs/")
        return found

    @router.get("/guide")
    async def index() -> HTMLResponse:
        """Every page of the guide, by its title."""
        where = folder()
        entries = [
            (name, page(where, name)[0]) for name in ORDER if (where / f"{name}.md").is_file()
        ]
        return _html(render("guide.html", title="Guide", entries=entries, body=""))

    @router.get("/guide/")
    async def index_slash() -> RedirectResponse:
        return RedirectResponse("/guide", status_code=308)

    @router.get("/guide/{name}")
    async def one(name: str) -> Response:
        where = folder()
        if re.fullmatch(r"[a-z0-9-]+\.png", name) and (where / name).is_file():
            return FileResponse(where / name, media_type="image/png")
        if name not in ORDER or not (where / f"{name}.md").is_file():
            raise HTTPException(404, f"no page {name!r} in the guide: see /guide")
        title, body = page(where, name)
        return _html(render("guide.html", title=title, entries=[], body=body))

    return router
