"""What the services need to check tokens on their own: the public keys, and whose tokens
are revoked."""

from fastapi import APIRouter, Request
from giftcloud_core.errors import NotFound
from pydantic import BaseModel

from giftcloud_auth.signing.revocation import Revocations
from giftcloud_auth.signing.service import SigningKeys


class RevocationList(BaseModel):
    #: a subject's SHA-256 → the moment (ms since the epoch) before which its tokens fail
    revoked: dict[str, int]


def build_router(signing: SigningKeys, revocations: Revocations) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["signing keys"])

    @router.get("/internal/revocations", include_in_schema=False)
    async def revoked(request: Request) -> RevocationList:
        """For the services, directly (never through a proxy): whose tokens are revoked."""
        if any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip")):
            raise NotFound("Not Found")
        return RevocationList(revoked=await revocations.listed())

    @router.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, object]:
        """The public keys that verify access tokens (every service checks tokens locally)."""
        return signing.jwks()

    return router
