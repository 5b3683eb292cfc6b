from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, authenticated, create_app
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import SignerJwks, TokenVerifier

from giftcloud_auth.models import SCHEMA
from giftcloud_auth.routes import build_router
from giftcloud_auth.service import AuthService

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime) -> tuple[ServicePart, AuthService]:
    """The auth part; its service is returned too, so ``giftcloud up`` verifies tokens in process."""
    service = AuthService(runtime.settings, runtime.db, runtime.bus)

    verifier = TokenVerifier(
        SignerJwks(lambda: service.signer),
        runtime.settings.auth.issuer,
        runtime.settings.auth.audience,
    )
    part = ServicePart(
        name="auth",
        routers=[build_router(service, authenticated(verifier))],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[service.start],
        on_stop=[service.stop],
    )
    return part, service


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    part, _ = build(runtime)
    return create_app(runtime, [part], title="auth")
