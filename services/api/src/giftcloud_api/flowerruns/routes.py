"""Flower runs' routes at a hub: its admin registers the runner's credential; people who may
read a project ask for a run of an app the runner offers, follow it and cancel it; the
runner takes the runs and reports on them (the pooled, released result is kept and
audited; nothing else comes from the sites)."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.tokens import Principal

from giftcloud_api.access import Gates
from giftcloud_api.flower.schemas import MachineIn
from giftcloud_api.flowerruns.nodes import FlowerNodes
from giftcloud_api.flowerruns.schemas import (
    NODE,
    ClaimAnswer,
    ClaimIn,
    FlowerRunIn,
    FlowerRunOut,
    NodeIn,
    NodeOut,
    NodeReport,
    ReportAnswer,
    RunnerOut,
    RunReport,
)
from giftcloud_api.flowerruns.service import FlowerRuns, detail


def build_router(runs: FlowerRuns, nodes: FlowerNodes, gates: Gates, audit: Auditor) -> APIRouter:
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
    Node = Annotated[str, Path(pattern=NODE, description="the SuperNode's name at the hub")]

    @router.put("/api/federation/flower/runner")
    async def register(body: MachineIn, caller: Admin, request: Request) -> RunnerOut:
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
        """The runner: the apps it offers now; a run to start or follow, if any, and the
        SuperNodes to let in or out."""
        return ClaimAnswer(run=await runs.claim(body.apps, caller), nodes=await nodes.tasks())

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

    @router.get("/api/federation/flower/nodes")
    async def listed_nodes(caller: Admin) -> list[NodeOut]:
        """The sites' SuperNodes asked for at this hub, and what the SuperLink said."""
        return await nodes.nodes()

    @router.put("/api/federation/flower/nodes/{name}")
    async def let_in(name: Node, body: NodeIn, caller: Admin, request: Request) -> NodeOut:
        """Let a site's SuperNode in by its public key (the runner registers it at the
        SuperLink when it next calls: SuperNode authentication lets in no other)."""
        found = await nodes.ask(name, body.public_key, caller.name)
        await audit.record(request, "api.federation.flower.node.add", target=name)
        return found

    @router.delete("/api/federation/flower/nodes/{name}")
    async def let_out(name: Node, caller: Admin, request: Request) -> NodeOut:
        """Take a site's SuperNode out (the runner unregisters it at the SuperLink)."""
        found = await nodes.remove(name, caller.name)
        await audit.record(request, "api.federation.flower.node.remove", target=name)
        return found

    @router.put("/api/federation/flower/runner/nodes/{name}", status_code=204)
    async def node_done(name: Node, body: NodeReport, caller: Runner, request: Request) -> Response:
        """The runner: what the SuperLink said to a registration or its removal."""
        row = await nodes.report(name, body)
        await audit.record(
            request,
            f"api.federation.flower.node.{body.state}",
            target=name,
            outcome="failure" if body.state == "failed" else "success",
            detail=f"node {row.node_id or '-'} {body.reason}"[:2000],
        )
        return Response(status_code=204)

    return router
