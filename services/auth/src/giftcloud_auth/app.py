from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, authenticated, create_app
from giftcloud_core.credentials import KeyExchange
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import SignerJwks, TokenVerifier

from giftcloud_auth import access
from giftcloud_auth.accounts import pages
from giftcloud_auth.accounts import routes as accounts
from giftcloud_auth.keys import routes as keys
from giftcloud_auth.models import SCHEMA
from giftcloud_auth.projects import routes as projects
from giftcloud_auth.service import Auth
from giftcloud_auth.signin import browser
from giftcloud_auth.signin import routes as signin
from giftcloud_auth.signing import routes as signing

MIGRATIONS = Path(__file__).parent / "migrations"
#: auth's requests are small: a form, a JSON body
BODY_LIMIT = 64 * 1024


def in_process(auth: Auth, settings: Settings) -> tuple[TokenVerifier, KeyExchange]:
    """Token checks and API-key exchange against this process's auth (auth itself, and every
    service in ``giftcloud up``)."""
    verifier = TokenVerifier(
        SignerJwks(lambda: auth.signing.ring),
        settings.auth.issuer,
        settings.auth.audience,
        auth.revocations.listed,
    )

    async def exchange(client_id: str, secret: str) -> tuple[str, int]:
        response = await auth.keys.exchange(client_id, secret, address="")
        return response.access_token, response.expires_in

    return verifier, KeyExchange(exchange)


def build(runtime: Runtime) -> tuple[ServicePart, Auth]:
    """The auth part; its domains are returned too, so ``giftcloud up`` verifies tokens and
    exchanges API keys in process."""
    auth = Auth(runtime.settings, runtime.db, runtime.bus)
    verifier, key_exchange = in_process(auth, runtime.settings)
    gates = access.gates(authenticated(lambda: verifier, lambda: key_exchange), auth.projects)
    part = ServicePart(
        name="auth",
        prefix="/auth",
        routers=[
            signin.build_router(auth.sign_in, auth.tokens, auth.keys),
            signing.build_router(auth.signing, auth.revocations),
            accounts.build_router(auth.accounts, auth.links, gates),
            projects.build_router(auth.projects, gates),
            keys.build_router(auth.keys, gates),
            pages.build_router(auth.links),
            browser.build_router(auth.sign_in, auth.tokens, auth.sso),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[auth.start],
        on_stop=[auth.stop],
        body_limits={"/auth/": BODY_LIMIT},
        rate_limits={"/auth/": runtime.settings.auth.rate_per_second},
    )
    return part, auth


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    part, _ = build(runtime)
    return create_app(runtime, [part], title="auth")
