"""The REST catalogue and the start page."""

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from giftcloud_core.tokens import Principal

from giftcloud_api.service import CatalogueService


def build_router(service: CatalogueService, current: Any) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["catalogue"])
    Caller = Annotated[Principal, Depends(current)]

    @router.get("/projects")
    async def projects(caller: Caller) -> list[dict[str, Any]]:
        return [
            {"name": p.name, "title": p.title, "role": caller.role_on(p.name)}
            for p in await service.projects(caller)
        ]

    @router.get("/projects/{project}/subjects")
    async def subjects(project: str, caller: Caller) -> list[dict[str, Any]]:
        await service.check(project, caller)
        return [{"label": label, "studies": n} for label, n in await service.subjects(project)]

    @router.get("/projects/{project}/subjects/{subject}/studies")
    async def subject_studies(project: str, subject: str, caller: Caller) -> list[dict[str, Any]]:
        await service.check(project, caller)
        return [
            {
                "study_uid": r.study.study_uid,
                "study_date": r.study.study_date,
                "modalities": r.modalities,
                "series": r.series_count,
                "instances": r.instance_count,
            }
            for r in await service.studies(project, subject=subject, limit=1000)
        ]

    return router


def start_page(services: list[str], base_url: str) -> HTMLResponse:
    rows = "".join(f"<li>{escape(s)}: running</li>" for s in services)
    url = escape(base_url)
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>giftcloud</title>
<style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;line-height:1.5}}
pre{{background:#f4f4f4;padding:1rem;overflow:auto}}</style></head>
<body><h1>giftcloud</h1>
<p>Share medical images without patient identifiers: everything sent here is de-identified
before it is archived.</p>
<h2>Running</h2><ul>{rows}</ul>
<h2>Send data</h2>
<pre>TOKEN=$(curl -s -d username=admin -d password=$PASSWORD {url}/auth/token | jq -r .access_token)
curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
     -d '{{"name": "demo"}}' {url}/auth/projects
giftcloud send --url {url} --project demo FILE.dcm ...</pre>
<h2>Find it</h2>
<pre>curl -H "Authorization: Bearer $TOKEN" {url}/dicomweb/demo/studies</pre>
<p>API documentation: <a href="/docs">/docs</a> · health: <a href="/readyz">/readyz</a> ·
metrics: <a href="/metrics">/metrics</a></p>
</body></html>""")
