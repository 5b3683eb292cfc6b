from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, authenticated, create_app
from giftcloud_core.credentials import KeyExchange
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import SignerJwks, TokenVerifier

from giftcloud_auth import pages, sessions
from giftcloud_auth.models import SCHEMA
from giftcloud_auth.routes import build_router
from giftcloud_auth.service import AuthService

MIGRATIONS = Path(__file__).parent / "migrations"
#: auth's requests are small: a form, a JSON body
BODY_LIMIT = 64 * 1024


def in_process(service: AuthService, settings: Settings) -> tuple[TokenVerifier, KeyExchange]:
    """Token checks and API-key exchange against this process's auth (auth itself, and every
    service in ``giftcloud up``)."""
    verifier = TokenVerifier(
        SignerJwks(lambda: service.ring),
        settings.auth.issuer,
        settings.auth.audience,
        service.revocations,
    )

    async def exchange(client_id: str, secret: str) -> tuple[str, int]:
        response = await service.client_grant(client_id, secret, address="")
        return response.access_token, response.expires_in

    return verifier, KeyExchange(exchange)


def build(runtime: Runtime) -> tuple[ServicePart, AuthService]:
    """The auth part; its service is returned too, so ``giftcloud up`` verifies tokens and
    exchanges API keys in process."""
    service = AuthService(runtime.settings, runtime.db, runtime.bus)
    verifier, keys = in_process(service, runtime.settings)
    current = authenticated(lambda: verifier, lambda: keys)
    part = ServicePart(
        name="auth",
        prefix="/auth",
        routers=[
            build_router(service, current),
            pages.build_router(service),
            sessions.build_router(service),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[service.start],
        on_stop=[service.stop],
        body_limits={"/auth/": BODY_LIMIT},
        rate_limits={"/auth/": runtime.settings.auth.rate_per_second},
    )
    return part, service


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    part, _ = build(runtime)
    return create_app(runtime, [part], title="auth")
