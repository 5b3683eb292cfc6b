"""The AE titles people query and retrieve from (api's DICOM query/retrieve): each person
registers theirs, with the address it calls from, where a C-MOVE reaches it and the API key
it acts as; an admin sees and removes anyone's."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from giftcloud_core.access import Auditor
from giftcloud_core.errors import Forbidden
from giftcloud_core.tokens import Principal

from giftcloud_api.access import Gates
from giftcloud_api.dimse.callers import Callers
from giftcloud_api.dimse.schemas import CallerIn, CallerOut


def build_router(callers: Callers, gates: Gates, audit: Auditor) -> APIRouter:
    router = APIRouter(prefix="/api/dimse/callers", tags=["dicom query/retrieve"])

    async def person(caller: Annotated[Principal, Depends(gates.caller)]) -> Principal:
        if caller.kind == "client":
            raise Forbidden("a person registers their AE titles, not an API key or a site")
        return caller

    Person = Annotated[Principal, Depends(person)]
    Title = Annotated[str, Path(min_length=1, max_length=16, description="the AE title")]

    @router.put("/{ae_title}")
    async def register(
        ae_title: Title, body: CallerIn, caller: Person, request: Request
    ) -> CallerOut:
        """Register (or change) an AE title of yours: associations from it, from ``host``,
        query and retrieve as ``api_key`` (one of yours: its roles, its networks)."""
        row = await callers.register(
            caller, ae_title, body.host, body.port, body.api_key.get_secret_value()
        )
        await audit.record(
            request, "api.dimse.register", target=row.ae_title, detail=f"{row.host}:{row.port}"
        )
        return CallerOut.model_validate(row, from_attributes=True)

    @router.get("")
    async def listed(caller: Person) -> list[CallerOut]:
        """Your AE titles (an admin's: everyone's)."""
        return [
            CallerOut.model_validate(r, from_attributes=True) for r in await callers.listed(caller)
        ]

    @router.delete("/{ae_title}", status_code=204)
    async def removed(ae_title: Title, caller: Person, request: Request) -> Response:
        await callers.remove(caller, ae_title)
        await audit.record(request, "api.dimse.unregister", target=ae_title)
        return Response(status_code=204)

    return router
