"""Flower runs' routes at a hub: its admin registers the runner's credential; people who may
read a project ask for a run of an app the runner offers, follow it and cancel it; the
runner takes the runs and reports on them (the pooled, released result is kept and
audited; nothing else comes from the sites)."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from giftcloud_core.access import Auditor
from giftcloud_core.tokens import Principal

from giftcloud_api.access import Gates
from giftcloud_api.flowerruns.schemas import (
    ClaimAnswer,
    ClaimIn,
    FlowerRunIn,
    FlowerRunOut,
    ReportAnswer,
    RunnerIn,
    RunnerOut,
    RunReport,
)
from giftcloud_api.flowerruns.service import FlowerRuns, detail


def build_router(runs: FlowerRuns, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(tags=["federation"])
    Admin = Annotated[
        Principal, Depends(gates.admin("the hub's Flower runner is registered by its admins"))
    ]
    Caller = Annotated[Principal, Depends(gates.caller)]
    Readable = Annotated[str, Depends(gates.project())]

    async def the_runner(caller: Caller) -> Principal:
        await runs.check_runner(caller)
        return caller

    Runner = Annotated[Principal, Depends(the_runner)]

    @router.put("/api/federation/flower/runner")
    async def register(body: RunnerIn, caller: Admin, request: Request) -> RunnerOut:
        """Register the machine credential the hub's Flower runner calls with (an OAuth2
        client or API key this hub issued); it replaces the one before."""
        row = await runs.register(body.client_id, caller.name)
        await audit.record(request, "api.federation.flower.runner", target=body.client_id)
        return RunnerOut.model_validate(row, from_attributes=True)

    @router.get("/api/federation/flower/runner")
    async def runner(caller: Caller) -> RunnerOut:
        """The hub's runner: when it last called, and the apps it offers (with the run
        configuration each takes)."""
        return RunnerOut.model_validate(await runs.runner(), from_attributes=True)

    @router.post("/api/projects/{project}/federation/flower/runs", status_code=201)
    async def ask(
        project: Readable, body: FlowerRunIn, caller: Caller, request: Request
    ) -> FlowerRunOut:
        """Run a Flower app of the hub's catalogue across the sites connected to the hub's
        SuperLink; each site runs only an app its admin approved, under its own rules, and
        its audit trail records who asked (you)."""
        found = await runs.ask(project, body, caller.name)
        await audit.record(
            request,
            "api.federation.flower.ask",
            project=project,
            target=f"flower run {found.id}",
            detail=body.model_dump_json(),
        )
        return found

    @router.get("/api/projects/{project}/federation/flower/runs")
    async def listed(project: Readable) -> list[FlowerRunOut]:
        """The project's Flower runs, newest first."""
        return await runs.runs(project)

    @router.get("/api/projects/{project}/federation/flower/runs/{run}")
    async def one(project: Readable, run: str) -> FlowerRunOut:
        return await runs.run(project, run)

    @router.post("/api/projects/{project}/federation/flower/runs/{run}/cancel")
    async def cancel(project: Readable, run: str, request: Request) -> FlowerRunOut:
        """Cancel the run: a queued one at once, a running one is stopped at the SuperLink."""
        found = await runs.cancel(project, run)
        await audit.record(
            request, "api.federation.flower.cancel", project=project, target=f"flower run {run}"
        )
        return found

    @router.post("/api/federation/flower/runner/claim")
    async def claim(body: ClaimIn, caller: Runner) -> ClaimAnswer:
        """The runner: the apps it offers now, and the oldest queued run of a project its
        credential has a role on, if any."""
        return ClaimAnswer(run=await runs.claim(body.apps, caller))

    @router.put("/api/federation/flower/runner/runs/{run}")
    async def report(run: str, body: RunReport, caller: Runner, request: Request) -> ReportAnswer:
        """The runner: a run's state (running reports renew its lease), and when it ends,
        its pooled result. The answer says whether its researcher asked to stop it."""
        row = await runs.report(run, body)
        if body.state != "running":
            await audit.record(
                request,
                f"api.federation.flower.{body.state}",
                project=row.project,
                target=f"flower run {run}",
                outcome="success" if body.state == "done" else "failure",
                detail=json.dumps(detail(row), separators=(",", ":"))[:8000],
            )
        return ReportAnswer(cancel=row.cancel)

    return router
