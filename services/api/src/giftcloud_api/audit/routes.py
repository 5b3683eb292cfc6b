"""The audit trail over HTTP: a project's (owners), the site's (admins); JSON or CSV."""

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.errors import Forbidden
from giftcloud_core.names import is_project_name
from giftcloud_core.tokens import Principal
from pydantic import BaseModel

from giftcloud_api.access import Gates
from giftcloud_api.audit.service import AuditTrail
from giftcloud_api.audit.store import AuditFilters

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


def build_router(trail_of: AuditTrail, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["audit"])
    Caller = Annotated[Principal, Depends(gates.caller)]
    Owner = Annotated[str, Depends(gates.project(frozenset({"owner"})))]

    async def trail(request: Request, project: str | None, query: AuditQuery) -> Any:
        filters = AuditFilters(query.actor, query.action, query.outcome, query.since, query.until)
        rows = await trail_of.records(project, filters, query.limit, query.offset)
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
            name = project if project and is_project_name(project) else "site"
            return Response(
                out.getvalue(),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}-audit.csv"'},
            )
        return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]

    @router.get("/projects/{project}/audit", response_model=list[AuditEntry])
    async def project_audit(
        project: Owner, request: Request, query: Annotated[AuditQuery, Depends()]
    ) -> Any:
        """Who read, searched, downloaded, uploaded, re-identified or changed what in the
        project, newest first (owners and admins); ``format=csv`` for a spreadsheet."""
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
