"""A study's results (read role; audited as every catalogue read)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from giftcloud_core.access import Auditor
from giftcloud_core.db import Database

from giftcloud_api.access import Gates
from giftcloud_api.results import service
from giftcloud_api.results.schemas import ResultOut


def build_router(db: Database, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["results"])
    Readable = Annotated[str, Depends(gates.project())]

    @router.get("/projects/{project}/studies/{study}/results")
    async def study_results(project: Readable, study: str, request: Request) -> list[ResultOut]:
        """What was derived from the study's images (segmentations, structured reports, RT
        structure sets, parametric maps), each with the series it derives from."""
        await audit.record(request, "api.results", project=project, target=f"study {study}")
        return await service.of_study(db, project, study)

    return router
