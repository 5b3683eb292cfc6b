"""Federation's routes. At a hub: its admins register sites; people who may read a project
ask its sites a count and read the answers; a registered site's credential takes its
questions and answers them. At a site: its admin sets the disclosure policy and reads every
answer given (a hub's admin has no say here: the policy is the site's own)."""

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.tokens import Principal

from giftcloud_api.access import Gates
from giftcloud_api.federation.hub import HubFederation
from giftcloud_api.federation.models import FederatedSite
from giftcloud_api.federation.schemas import (
    AnswerLog,
    AskCount,
    Heartbeat,
    PolicyIn,
    PolicyOut,
    QuestionOut,
    SiteAnswer,
    SiteIn,
    SiteOut,
    Task,
)
from giftcloud_api.federation.site import SiteFederation


def build_router(
    hub: HubFederation, site: SiteFederation, gates: Gates, audit: Auditor
) -> APIRouter:
    router = APIRouter(tags=["federation"])
    Admin = Annotated[
        Principal, Depends(gates.admin("federation's sites and policy are for admins"))
    ]
    Caller = Annotated[Principal, Depends(gates.caller)]
    Readable = Annotated[str, Depends(gates.project())]

    async def calling_site(caller: Caller) -> FederatedSite:
        return await hub.site_of(caller)

    Site = Annotated[FederatedSite, Depends(calling_site)]

    @router.post("/api/federation/sites", status_code=201)
    async def register(body: SiteIn, caller: Admin, request: Request) -> SiteOut:
        """Register a site by the machine credential this hub issued it (an OAuth2 client
        or API key with a role on the projects it answers for)."""
        row = await hub.register(body, caller.name)
        await audit.record(
            request, "api.federation.site.register", target=body.name, detail=body.client_id
        )
        return SiteOut.model_validate(row, from_attributes=True)

    @router.get("/api/federation/sites")
    async def sites(caller: Caller) -> list[SiteOut]:
        """The sites this hub knows and when each last called (any signed-in person: a
        researcher chooses whom to ask)."""
        return [SiteOut.model_validate(row, from_attributes=True) for row in await hub.sites()]

    @router.delete("/api/federation/sites/{name}", status_code=204)
    async def forget(name: str, caller: Admin, request: Request) -> Response:
        await hub.forget(name)
        await audit.record(request, "api.federation.site.forget", target=name)
        return Response(status_code=204)

    @router.post("/api/federation/heartbeat", status_code=204)
    async def heartbeat(body: Heartbeat, calling: Site) -> Response:
        await hub.heartbeat(calling.name, body)
        return Response(status_code=204)

    @router.get("/api/federation/tasks")
    async def tasks(
        calling: Site,
        caller: Caller,
        request: Request,
        wait: Annotated[float, Query(ge=0, le=60)] = 0,
    ) -> list[Task]:
        """The questions waiting for the calling site, held open up to ``wait`` seconds."""
        held = min(wait, hub.settings.wait_seconds)
        return await hub.tasks(calling, caller.projects, held, request.is_disconnected)

    @router.put("/api/federation/tasks/{question}", status_code=204)
    async def answer(question: str, body: SiteAnswer, calling: Site, request: Request) -> Response:
        """A site's released answer (what it withheld never comes here)."""
        asked = await hub.answer(calling.name, question, body)
        await audit.record(
            request,
            "api.federation.answer",
            project=asked.project,
            target=f"question {question} from {calling.name}",
            outcome="success" if body.state == "answered" else "denied",
            detail=json.dumps(body.model_dump(mode="json"), separators=(",", ":")),
        )
        return Response(status_code=204)

    @router.post("/api/projects/{project}/federation/counts", status_code=201)
    async def ask(
        project: Readable, body: AskCount, caller: Caller, request: Request
    ) -> QuestionOut:
        """Ask the project's sites how many subjects (studies, series) match; each answers
        under its own disclosure policy when it next calls in."""
        question = await hub.ask(project, body, caller.name)
        await audit.record(
            request,
            "api.federation.ask",
            project=project,
            target=f"question {question}",
            detail=body.model_dump_json(exclude_none=True),
        )
        return await hub.question(project, question)

    @router.get("/api/projects/{project}/federation/counts")
    async def asked(project: Readable) -> list[QuestionOut]:
        """The project's questions, newest first, with each site's part and the pooled
        answer."""
        return await hub.questions(project)

    @router.get("/api/projects/{project}/federation/counts/{question}")
    async def one(project: Readable, question: str) -> QuestionOut:
        return await hub.question(project, question)

    @router.get("/api/federation/policy")
    async def policy(caller: Admin) -> PolicyOut:
        """This site's disclosure policy: federation on or off, k, noise, budget."""
        return PolicyOut.model_validate(await site.policy(), from_attributes=True)

    @router.put("/api/federation/policy")
    async def set_policy(body: PolicyIn, caller: Admin, request: Request) -> PolicyOut:
        row = await site.set_policy(body, caller.name)
        await audit.record(request, "api.federation.policy", detail=body.model_dump_json())
        return PolicyOut.model_validate(row, from_attributes=True)

    @router.get("/api/federation/answers")
    async def answers(
        caller: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[AnswerLog]:
        """Every question this site answered, newest first: the raw table beside the
        released one, who asked, the rule that decided."""
        return [
            AnswerLog.model_validate(row, from_attributes=True) for row in await site.answers(limit)
        ]

    return router
