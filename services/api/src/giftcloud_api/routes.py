"""The REST catalogue and the access audit."""

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from giftcloud_core.access import Auditor, request_address
from giftcloud_core.bus import Bus
from giftcloud_core.errors import Forbidden, NotFound
from giftcloud_core.tokens import Principal
from pydantic import BaseModel

from giftcloud_api.downloads import filename, zip_of, zip_response
from giftcloud_api.repository import AuditFilters
from giftcloud_api.service import CatalogueService

AUDIT_FIELDS = (
    "occurred_at",
    "project",
    "actor",
    "action",
    "outcome",
    "target",
    "address",
    "detail",
    "correlation_id",
)


class AuditEntry(BaseModel):
    occurred_at: datetime
    project: str
    actor: str
    action: str
    outcome: str
    target: str
    address: str
    detail: str
    correlation_id: str


@dataclass
class AuditQuery:
    """Filters and paging of an audit trail."""

    actor: Annotated[str | None, Query(max_length=200)] = None
    action: Annotated[str | None, Query(max_length=100, description="a prefix")] = None
    outcome: Literal["success", "denied", "failure"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0
    format: Literal["json", "csv"] = "json"


def build_router(service: CatalogueService, current: Any, audit: Auditor, bus: Bus) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["catalogue"])
    Caller = Annotated[Principal, Depends(current)]

    async def reader(project: str, request: Request, caller: Caller) -> str:
        await service.check(project, caller, request_address(request))
        await audit.record(request, "api.catalogue", project=project, target=request.url.path)
        return project

    Project = Annotated[str, Depends(reader)]

    @router.get("/projects")
    async def projects(caller: Caller) -> list[dict[str, Any]]:
        """The projects you have a role on."""
        return [
            {"name": p.name, "title": p.title, "role": caller.role_on(p.name)}
            for p in await service.projects(caller)
        ]

    @router.get("/projects/{project}/subjects")
    async def subjects(project: Project) -> list[dict[str, Any]]:
        """The project's subjects (pseudonyms) and how many studies each has."""
        return [{"label": label, "studies": n} for label, n in await service.subjects(project)]

    @router.get("/projects/{project}/subjects/{subject}/studies")
    async def subject_studies(project: Project, subject: str) -> list[dict[str, Any]]:
        """One subject's studies."""
        return [
            {
                "study_uid": study.study_uid,
                "study_date": study.study_date,
                "modalities": study.modalities,
                "series": study.series_count,
                "instances": study.instance_count,
            }
            for study in await service.studies_of(project, subject)
        ]

    @dataclass
    class Selection:
        subject: Annotated[str | None, Query(max_length=200)] = None
        study: Annotated[str | None, Query(max_length=64)] = None
        series: Annotated[str | None, Query(max_length=64)] = None

    async def zipped(
        request: Request, project: str, caller: Principal, chosen: Selection
    ) -> Response:
        await service.check(project, caller, request_address(request))
        found = await service.entries(project, chosen.subject, chosen.study, chosen.series)
        if not found:
            raise NotFound(f"nothing in project {project!r} matches: check subject, study, series")
        stream = zip_of(service.store, service.archive, found)
        head = request.method == "HEAD"
        await audit.record(
            request,
            "api.download-size" if head else "api.download",
            project=project,
            target=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            detail=f"{len(found)} instance(s), {len(stream)} bytes",
        )
        name = filename(project, chosen.subject, chosen.study, chosen.series)
        return zip_response(stream, name, head=head)

    @router.get("/projects/{project}/download")
    async def download(
        request: Request, project: str, caller: Caller, chosen: Annotated[Selection, Depends()]
    ) -> Response:
        """A zip of the project's instances, or of one subject's, study's or series' (the
        filters combine): entries ``subject/study/series/sop.dcm``, stored, streamed, its
        length known in advance."""
        return await zipped(request, project, caller, chosen)

    @router.head("/projects/{project}/download")
    async def download_size(
        request: Request, project: str, caller: Caller, chosen: Annotated[Selection, Depends()]
    ) -> Response:
        """The length of that zip (Content-Length), without the data."""
        return await zipped(request, project, caller, chosen)

    async def trail(request: Request, project: str | None, query: AuditQuery) -> Any:
        filters = AuditFilters(query.actor, query.action, query.outcome, query.since, query.until)
        rows = await service.audit_records(project, filters, query.limit, query.offset)
        await audit.record(
            request,
            "api.audit-read",
            project=project or "",
            detail=f"{len(rows)} record(s), {query.format}",
        )
        if query.format == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(AUDIT_FIELDS)
            for row in rows:
                writer.writerow(_cell(getattr(row, f)) for f in AUDIT_FIELDS)
            name = project if project and re.fullmatch(r"[a-z0-9-]{1,64}", project) else "site"
            return Response(
                out.getvalue(),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}-audit.csv"'},
            )
        return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]

    @router.get("/pipeline")
    async def pipeline(request: Request, caller: Caller) -> dict[str, Any]:
        """The pipeline at a glance (admins): each queue's waiting and dead-lettered
        messages, instances archived in the last minute and hour, and the latest instances
        held in quarantine with the reason de-identification gave."""
        if not caller.is_admin:
            raise Forbidden("the pipeline's status is for admins")
        return await service.pipeline(bus)

    @router.get("/projects/{project}/audit", response_model=list[AuditEntry])
    async def project_audit(
        project: str, request: Request, caller: Caller, query: Annotated[AuditQuery, Depends()]
    ) -> Any:
        """Who read, searched, downloaded, uploaded, re-identified or changed what in the
        project, newest first (owners and admins); ``format=csv`` for a spreadsheet."""
        await service.check(project, caller, request_address(request), frozenset({"owner"}))
        return await trail(request, project, query)

    @router.get("/audit", response_model=list[AuditEntry])
    async def site_audit(
        request: Request,
        caller: Caller,
        query: Annotated[AuditQuery, Depends()],
        project: Annotated[str | None, Query(max_length=64, description="'' for site-wide")] = None,
    ) -> Any:
        """The whole site's trail (admins): sign-ins and account changes (project ''), and
        every project's records."""
        if not caller.is_admin:
            raise Forbidden("the site's audit trail is for admins")
        return await trail(request, project, query)

    return router


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


#: the first steps, as the README's Quick start says them (a test keeps the two in step)
FIRST_STEPS = """scripts/giftcloud login --username admin                # asks for the password; kept per server
scripts/giftcloud project create demo
scripts/giftcloud send --project demo path/to/dicom/    # files, folders, zip files, DICOMDIR media
scripts/giftcloud ls demo                               # subjects; ls demo SUBJECT: their studies
scripts/giftcloud download demo fetched/                # fetched/subject/study/series/sop.dcm"""
DICOMWEB_STEPS = """TOKEN=$(scripts/giftcloud token)
curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/dicomweb/demo/studies"""
