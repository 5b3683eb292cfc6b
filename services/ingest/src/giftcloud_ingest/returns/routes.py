"""Results back to the clinic over HTTP: whether a project pulls them (owners), the inbox and
the decisions on it (a reidentifier who may write to the project; every decision audited)."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.errors import BadRequest, Conflict
from giftcloud_core.gates import OWNER, Gates
from giftcloud_core.tokens import Principal

from giftcloud_ingest.returns.schemas import (
    Approval,
    Decline,
    Destination,
    ReturnItemOut,
    ReturnsIn,
    ReturnsStatus,
)
from giftcloud_ingest.returns.service import STATES, Returns


def build_router(returns: Returns, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(prefix="/ingest/{project}/returns", tags=["results back"])
    Owner = Annotated[Principal, Depends(gates.project(OWNER))]
    Reidentifier = Annotated[Principal, Depends(gates.reviewer())]

    @router.get("")
    async def status(project: str, caller: Owner) -> ReturnsStatus:
        """Whether the project's results are pulled back from the hub, how many are in each
        state, the last error and the last success (owner)."""
        return ReturnsStatus.model_validate(await returns.status(project))

    @router.put("")
    async def set_enabled(
        project: str, data: ReturnsIn, request: Request, caller: Owner
    ) -> ReturnsStatus:
        """Pull the project's results back from the hub from now on, or stop (owner). 409
        when this deployment has no hub."""
        result = await returns.set_enabled(project, data.enabled, caller.name)
        await audit.record(
            request,
            "ingest.returns",
            project=project,
            target=f"results from {returns.hub.url}",
            detail="enabled" if data.enabled else "disabled",
        )
        return ReturnsStatus.model_validate(result)

    @router.get("/destinations")
    async def destinations(project: str, caller: Reidentifier) -> list[Destination]:
        """The hospital's nodes a result may be delivered to (reidentifier): the site's
        remote nodes, which an admin sets."""
        return [
            Destination.model_validate(n, from_attributes=True)
            for n in await returns.destinations()
        ]

    @router.get("/items")
    async def items(
        project: str,
        caller: Reidentifier,
        state: Annotated[str | None, Query(description="only results in this state")] = None,
    ) -> list[ReturnItemOut]:
        """The inbox, oldest first (reidentifier): each result with its state and why."""
        if state is not None and state not in STATES:
            raise BadRequest(f"no state {state!r}: one of {', '.join(STATES)}")
        return [
            ReturnItemOut.model_validate(i, from_attributes=True)
            for i in await returns.items(project, state)
        ]

    @router.post("/items/{key}/approve")
    async def approve(
        project: str, key: str, data: Approval, request: Request, caller: Reidentifier
    ) -> ReturnItemOut:
        """Approve a waiting result (reidentifier): an instance goes to ``destination`` by
        C-STORE, re-identified; a file may then be downloaded here."""
        item = await returns.one(project, key)
        if item.kind == "instance" and not data.destination:
            raise BadRequest(
                "name the hospital node to deliver it to: destination (--to NODE in"
                " giftcloud results approve)"
            )
        if item.kind == "file" and data.destination:
            raise BadRequest(
                "a file is not sent to a node: approve it without a destination (--to),"
                " then download it here"
            )
        decided = await returns.decide(project, key, caller.name, data.destination)
        await audit.record(
            request,
            "ingest.result.approve",
            project=project,
            target=f"result {key}",
            detail=f"subject {item.subject}"
            + (f", to {data.destination}" if data.destination else ""),
        )
        return ReturnItemOut.model_validate(decided, from_attributes=True)

    @router.post("/items/{key}/decline")
    async def decline(
        project: str, key: str, data: Decline, request: Request, caller: Reidentifier
    ) -> ReturnItemOut:
        """Decline a waiting result (reidentifier): it never leaves, and its copies here are
        deleted."""
        decided = await returns.decide(project, key, caller.name, None, data.reason)
        await audit.record(
            request,
            "ingest.result.decline",
            project=project,
            target=f"result {key}",
            detail=data.reason,
        )
        return ReturnItemOut.model_validate(decided, from_attributes=True)

    @router.post("/items/{key}/retry")
    async def retry(
        project: str, key: str, request: Request, caller: Reidentifier
    ) -> ReturnItemOut:
        """Try a failed delivery again (reidentifier)."""
        again = await returns.retry(project, key)
        await audit.record(request, "ingest.result.retry", project=project, target=f"result {key}")
        return ReturnItemOut.model_validate(again, from_attributes=True)

    @router.get("/items/{key}/content", response_class=Response)
    async def content(project: str, key: str, request: Request, caller: Reidentifier) -> Response:
        """The re-identified result (a file as it came), for review or hand-over
        (reidentifier; audited)."""
        item = await returns.one(project, key)
        if item.state not in ("waiting", "approved", "delivered", "failed"):
            raise Conflict(f"result {key!r} is {item.state}: nothing to show")
        data = await returns.content(item)
        await audit.record(request, "ingest.result.read", project=project, target=f"result {key}")
        name = item.name if item.kind == "file" else f"{key}.dcm"
        return Response(
            data,
            media_type="application/octet-stream" if item.kind == "file" else "application/dicom",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
            },
        )

    return router
