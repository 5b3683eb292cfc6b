"""Jobs' routes. At a hub: people who may read a project submit a job to its sites, follow
each site's part, cancel and retry; a registered site's credential reports its part. At a
site: its admin approves algorithms by digest; its data steward releases or withholds an
output held for review (a hub has no say in either)."""

import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.tokens import Principal

from giftcloud_api.access import Gates
from giftcloud_api.federation.hub import HubFederation
from giftcloud_api.federation.models import FederatedSite
from giftcloud_api.jobs.hub import HubJobs
from giftcloud_api.jobs.schemas import (
    AlgorithmOut,
    ApproveIn,
    DecisionIn,
    JobIn,
    JobOut,
    JobReport,
    SiteJobOut,
)
from giftcloud_api.jobs.site import SiteJobs

log = logging.getLogger(__name__)


def build_router(
    federation: HubFederation, hub: HubJobs, site: SiteJobs, gates: Gates, audit: Auditor
) -> APIRouter:
    router = APIRouter(tags=["federation"])
    Admin = Annotated[
        Principal, Depends(gates.admin("a site's algorithms are approved by its admins"))
    ]
    Steward = Annotated[Principal, Depends(gates.steward())]
    Caller = Annotated[Principal, Depends(gates.caller)]
    Readable = Annotated[str, Depends(gates.project())]

    async def calling_site(caller: Caller) -> FederatedSite:
        return await federation.site_of(caller)

    Site = Annotated[FederatedSite, Depends(calling_site)]

    @router.post("/api/projects/{project}/federation/jobs", status_code=201)
    async def submit(project: Readable, body: JobIn, caller: Caller, request: Request) -> JobOut:
        """Run an algorithm at the project's sites over the series its criteria choose at
        each; a site runs only an algorithm its admin approved, and releases its output
        under its own rules."""
        job = await hub.submit(project, body, caller.name)
        await audit.record(
            request,
            "api.federation.job.submit",
            project=project,
            target=f"job {job}",
            detail=body.model_dump_json(exclude_none=True),
        )
        return await hub.job(project, job)

    @router.get("/api/projects/{project}/federation/jobs")
    async def jobs(project: Readable) -> list[JobOut]:
        """The project's jobs, newest first, with each site's part."""
        return await hub.jobs(project)

    @router.get("/api/projects/{project}/federation/jobs/{job}")
    async def job(project: Readable, job: str) -> JobOut:
        return await hub.job(project, job)

    @router.post("/api/projects/{project}/federation/jobs/{job}/cancel")
    async def cancel(
        project: Readable, job: str, request: Request, site: str | None = None
    ) -> JobOut:
        """Cancel the job (at ``site`` only, when given): a running algorithm is stopped."""
        found = await hub.cancel(project, job, site)
        await audit.record(
            request,
            "api.federation.job.cancel",
            project=project,
            target=f"job {job}",
            detail=site or "",
        )
        return found

    @router.post("/api/projects/{project}/federation/jobs/{job}/retry")
    async def retry(
        project: Readable, job: str, request: Request, site: str | None = None
    ) -> JobOut:
        """Run again the parts that ended refused, withheld, failed or cancelled."""
        found = await hub.retry(project, job, site)
        await audit.record(
            request,
            "api.federation.job.retry",
            project=project,
            target=f"job {job}",
            detail=site or "",
        )
        return found

    @router.put("/api/federation/jobs/{job}/report", status_code=204)
    async def report(job: str, body: JobReport, calling: Site, request: Request) -> Response:
        """A site's state of its part, with the output it released (nothing else comes)."""
        found = await hub.report(calling.name, job, body)
        await audit.record(
            request,
            "api.federation.job.report",
            project=found.project,
            target=f"job {job} from {calling.name}",
            outcome="failure"
            if body.state == "failed"
            else "denied"
            if body.state in ("refused", "withheld")
            else "success",
            detail=json.dumps(body.model_dump(mode="json"), separators=(",", ":"))[:8000],
        )
        return Response(status_code=204)

    @router.get("/api/federation/algorithms")
    async def algorithms(caller: Admin) -> list[AlgorithmOut]:
        """The algorithms installed at this site, each with the digest of its code now and
        the digest its admin approved."""
        return await site.algorithms()

    @router.put("/api/federation/algorithms/{name}")
    async def approve(name: str, body: ApproveIn, caller: Admin, request: Request) -> AlgorithmOut:
        """Approve an algorithm: the digest of the code you reviewed, which must be the code
        installed now. A changed algorithm runs nowhere until approved again."""
        approved = await site.approve(name, body.digest, caller.name)
        await audit.record(
            request, "api.federation.algorithm.approve", target=name, detail=body.digest
        )
        return approved

    @router.delete("/api/federation/algorithms/{name}", status_code=204)
    async def revoke(name: str, caller: Admin, request: Request) -> Response:
        await site.revoke(name)
        await audit.record(request, "api.federation.algorithm.revoke", target=name)
        return Response(status_code=204)

    @router.get("/api/federation/jobs")
    async def site_jobs(
        caller: Steward,
        state: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[SiteJobOut]:
        """The jobs this site took, newest first (``state=awaiting_release``: what waits for
        you), each with its raw output."""
        return [
            SiteJobOut.model_validate(row, from_attributes=True)
            for row in await site.jobs(state, limit)
        ]

    @router.get("/api/federation/jobs/{job}")
    async def site_job(job: str, caller: Steward) -> SiteJobOut:
        return SiteJobOut.model_validate(await site.job(job), from_attributes=True)

    @router.post("/api/federation/jobs/{job}/decision")
    async def decide(job: str, body: DecisionIn, caller: Steward, request: Request) -> SiteJobOut:
        """Release the output to the hub, or withhold it (with your reason)."""
        row = await site.decide(job, body, caller.name)
        await audit.record(
            request,
            "api.federation.job.release" if body.release else "api.federation.job.withhold",
            project=row.project,
            target=f"job {job}",
            detail=body.reason,
        )
        try:
            await site.send_pending()
        except Exception as exc:  # told on the next round
            log.warning("the hub will hear of job %s later: %s", job, exc)
        return SiteJobOut.model_validate(row, from_attributes=True)

    return router
