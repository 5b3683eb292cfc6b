"""The guide (issue: the second hour — a README that mixed everything): the README keeps
what a newcomer needs and links a page per topic in docs/, which every server also serves
at /guide. Every page is linked, every link leads somewhere, the pages render."""

import re
from pathlib import Path

import httpx
from fastapi import FastAPI
from giftcloud_api.web.guide import ORDER, build_router, docs_folder
from support.infra import ROOT
from support.readme import README, section

DOCS = ROOT / "docs"


def client() -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(build_router())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://guide")


def test_every_page_is_listed_in_the_readme_and_the_guide() -> None:
    pages = sorted(p.stem for p in DOCS.glob("*.md"))
    assert sorted(ORDER) == pages
    listed = re.findall(r"\(docs/([a-z0-9-]+)\.md\)", section("Where to next"))
    assert listed == list(ORDER), listed  # the same order
    assert len(README.splitlines()) < 250, "the README is for a newcomer: topics go to docs/"


def test_every_link_of_the_readme_and_the_pages_leads_somewhere() -> None:
    for path in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)#\s]+)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name}: {target}"


async def test_the_pages_are_served_with_their_links_between_them() -> None:
    assert docs_folder() == DOCS
    async with client() as web:
        await served(web)


async def served(web: httpx.AsyncClient) -> None:
    index = await web.get("/guide")
    assert index.status_code == 200
    for name in ORDER:
        assert f'href="/guide/{name}"' in index.text
    refusals = await web.get("/guide/refusals")
    assert refusals.status_code == 200
    assert "<h1>Refused, rejected, sent again</h1>" in refusals.text
    assert "<h2>The quarantine</h2>" in refusals.text
    status = (await web.get("/guide/status")).text
    assert 'href="/guide/deidentification"' in status and ".md" not in status
    assert "script-src 'self'" in refusals.headers["content-security-policy"]
    picture = await web.get("/guide/project-page.png")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert (await web.get("/guide/nowhere")).status_code == 404
    assert (await web.get("/guide/..%2Fpyproject.toml")).status_code == 404


def test_markdown_cannot_put_html_into_a_page(tmp_path: Path) -> None:
    from giftcloud_api.web.guide import page

    (tmp_path / "x.md").write_text("# X\n\n<script>alert(1)</script>\n\n[a](refusals.md#why)\n")
    title, body = page(tmp_path, "x")
    assert title == "X"
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert 'href="/guide/refusals#why"' in body
