"""The REST catalogue: projects, subjects, studies, and zips of any of them."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.errors import Forbidden, NotFound
from giftcloud_core.tokens import Principal

from giftcloud_api.access import Gates
from giftcloud_api.catalogue.downloads import filename, zip_of, zip_response
from giftcloud_api.catalogue.pipeline import pipeline as pipeline_status
from giftcloud_api.catalogue.schemas import (
    PipelineStatus,
    ProjectOut,
    StudyOut,
    SubjectOut,
)
from giftcloud_api.catalogue.service import CatalogueService


def build_router(
    service: CatalogueService, gates: Gates, audit: Auditor, db: Database, bus: Bus
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["catalogue"])
    Caller = Annotated[Principal, Depends(gates.caller)]
    Readable = Annotated[str, Depends(gates.project())]

    async def reader(project: Readable, request: Request) -> str:
        await audit.record(request, "api.catalogue", project=project, target=request.url.path)
        return project

    Project = Annotated[str, Depends(reader)]

    @router.get("/projects")
    async def projects(caller: Caller) -> list[ProjectOut]:
        """The projects you have a role on."""
        return [
            ProjectOut(name=p.name, title=p.title, role=caller.role_on(p.name))
            for p in await service.projects(caller)
        ]

    @router.get("/projects/{project}/subjects")
    async def subjects(project: Project) -> list[SubjectOut]:
        """The project's subjects (pseudonyms) and how many studies each has."""
        return [SubjectOut(label=label, studies=n) for label, n in await service.subjects(project)]

    @router.get("/projects/{project}/subjects/{subject}/studies")
    async def subject_studies(project: Project, subject: str) -> list[StudyOut]:
        """One subject's studies."""
        return [
            StudyOut(
                study_uid=study.study_uid,
                study_date=study.study_date,
                modalities=study.modalities,
                series=study.series_count,
                instances=study.instance_count,
            )
            for study in await service.studies_of(project, subject)
        ]

    @dataclass
    class Selection:
        subject: Annotated[str | None, Query(max_length=200)] = None
        study: Annotated[str | None, Query(max_length=64)] = None
        series: Annotated[str | None, Query(max_length=64)] = None

    async def zipped(request: Request, project: str, chosen: Selection) -> Response:
        found = await service.zip_entries(project, chosen.subject, chosen.study, chosen.series)
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
        request: Request, project: Readable, chosen: Annotated[Selection, Depends()]
    ) -> Response:
        """A zip of the project's instances, or of one subject's, study's or series' (the
        filters combine): entries ``subject/study/series/sop.dcm``, stored, streamed, its
        length known in advance."""
        return await zipped(request, project, chosen)

    @router.head("/projects/{project}/download")
    async def download_size(
        request: Request, project: Readable, chosen: Annotated[Selection, Depends()]
    ) -> Response:
        """The length of that zip (Content-Length), without the data."""
        return await zipped(request, project, chosen)

    @router.get("/pipeline")
    async def pipeline(request: Request, caller: Caller) -> PipelineStatus:
        """The pipeline at a glance (admins): each queue's waiting and dead-lettered
        messages, instances archived in the last minute and hour, and the latest instances
        held in quarantine with the reason de-identification gave."""
        if not caller.is_admin:
            raise Forbidden("the pipeline's status is for admins")
        return PipelineStatus.model_validate(await pipeline_status(db, bus))

    return router
