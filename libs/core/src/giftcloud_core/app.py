"""App boilerplate every service shares: runtime, lifespan, health, metrics, errors, logs.

A service contributes a :class:`ServicePart` (routers, bus subscriptions, its schema's
migrations, start hooks). ``create_app`` serves one part (``giftcloud serve NAME``) or
all of them in one process (``giftcloud up``).
"""

import gc
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import asyncpg.exceptions
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError

from giftcloud_core.access import Auditor, over_tls, request_address
from giftcloud_core.bus import Bus, Subscription, create_bus
from giftcloud_core.credentials import KeyExchange, http_exchange
from giftcloud_core.db import Database
from giftcloud_core.docs import docs_router
from giftcloud_core.errors import Forbidden, GiftcloudError, Unauthorized
from giftcloud_core.middleware import (
    BodyLimit,
    RateLimit,
    RefuseNulBytes,
    RequestContext,
    SecurityHeaders,
)
from giftcloud_core.network import address_in
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore, create_store
from giftcloud_core.tokens import (
    API_KEY_PREFIX,
    HttpJwks,
    HttpRevocations,
    Principal,
    TokenVerifier,
)

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


@dataclass
class ServicePart:
    """What one service adds to an app."""

    name: str
    routers: list[APIRouter] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    schema: str | None = None
    migrations: Path | None = None
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    #: run first at stop, while the bus and the database still work: stop taking work in
    #: (a DICOM node finishes its associations' stores before the bus closes)
    on_drain: list[Hook] = field(default_factory=list)
    #: largest request body under a path prefix (413 beyond)
    body_limits: dict[str, int] = field(default_factory=dict)
    #: requests a second one address may make under a path prefix (429 beyond)
    rate_limits: dict[str, float] = field(default_factory=dict)
    #: the prefix the gateway routes to this service, where its OpenAPI document is too
    #: (``/auth`` → ``/auth/openapi.json``)
    prefix: str = ""
    #: other services' OpenAPI documents (name, URL) its /docs page offers besides its own
    peer_docs: list[tuple[str, str]] = field(default_factory=list)


class Runtime:
    """The infrastructure a process shares between its parts: database, bus, store, token
    check, API-key exchange, audit."""

    def __init__(
        self,
        settings: Settings,
        *,
        bus: Bus | None = None,
        store: ObjectStore | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.db = Database(settings.db)
        self.bus: Bus = bus or create_bus(settings.bus, settings.db)
        self.store: ObjectStore = store or create_store(settings.storage)
        self.verifier = verifier or TokenVerifier(
            HttpJwks(settings.auth.jwks_url),
            settings.auth.issuer,
            settings.auth.audience,
            HttpRevocations(settings.auth.revocations_url, settings.auth.revocation_poll_seconds),
        )
        self.keys = KeyExchange(http_exchange(settings.auth.token_url))
        self.audit = Auditor(self.bus)

    def authenticated(self) -> Callable[..., Awaitable[Principal]]:
        """A FastAPI dependency: the caller's :class:`Principal` (a bearer token or an API
        key), or 401. Looked up at call time, so ``giftcloud up`` can rewire the runtime."""
        return authenticated(lambda: self.verifier, lambda: self.keys)


_bearer = HTTPBearer(auto_error=False)
#: the web pages' access token (auth sets it at sign-in: HttpOnly, SameSite=Strict); taken
#: for GET and HEAD only, so a page's images and downloads work while no cookie can make
#: a change (unsafe requests need the bearer header a script sends)
ACCESS_COOKIE = "giftcloud_access"
#: the web pages' CSRF token, double-submitted by their forms (api sets it, auth checks it)
CSRF_COOKIE = "giftcloud_csrf"


def csrf_cookie(request: Request) -> str:
    """The CSRF cookie's name for a request: over TLS ``__Host-giftcloud_csrf`` (Secure,
    Path=/, no Domain: a sibling origin cannot plant one to pair with a form it writes),
    the plain name only over plain HTTP (``giftcloud up`` on loopback, no sibling origin)."""
    return f"__Host-{CSRF_COOKIE}" if over_tls(request) else CSRF_COOKIE


_SAFE_METHODS = frozenset({"GET", "HEAD"})


def authenticated(
    verifier: Callable[[], TokenVerifier], keys: Callable[[], KeyExchange]
) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller's :class:`Principal`, or 401. An API key
    (``Bearer gck_...``) is exchanged at auth for an access token first."""

    async def principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is not None and credentials.scheme.lower() == "bearer":
            token = credentials.credentials
        elif request.method in _SAFE_METHODS and request.cookies.get(ACCESS_COOKIE):
            token = request.cookies[ACCESS_COOKIE]
        else:
            raise Unauthorized()
        if token.startswith(API_KEY_PREFIX):
            caller = await key_principal(token, verifier(), keys())
        else:
            caller = await verifier().verify(token)
        request.state.principal = caller
        if caller.networks and not address_in(request_address(request), caller.networks):
            raise Forbidden(  # a credential bound to networks is of no use anywhere else
                f"{caller.name} may be used only from {', '.join(caller.networks)}"
            )
        return caller

    return principal


async def key_principal(key: str, verifier: TokenVerifier, keys: KeyExchange) -> Principal:
    """The caller an API key stands for. A token cached for the key and revoked since (its
    maker's role or password changed) is forgotten and the key exchanged again at once, so
    the key answers with what its maker holds now rather than 401 until the cache expires."""
    try:
        return await verifier.verify(await keys.token_for(key))
    except Unauthorized:
        if not keys.forget(key):
            raise
    return await verifier.verify(await keys.token_for(key))


async def audit_refusal(audit: Auditor, request: Request, exc: GiftcloudError) -> None:
    """A refusal (403) is an access attempt: it goes in the audit too, named by its route."""
    if exc.status != 403:
        return
    route = request.scope.get("route")
    await audit.record(
        request,
        f"{request.method} {getattr(route, 'path', request.url.path)}",
        project=str(request.path_params.get("project", ""))[:64],
        target=request.url.path,
        outcome="denied",
        detail=exc.message,
        required=False,
    )


def validation_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    """What was wrong with a request, without echoing what was sent (a password, say); a
    validator's own words without pydantic's "Value error, " before them."""
    return [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")).removeprefix("Value error, "),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]


_FORWARDING = ("x-forwarded-for", "forwarded", "x-real-ip")


def _may_read_metrics(request: Request, settings: Settings) -> bool:
    """Metrics are for the cluster's Prometheus: with a token configured, whoever shows it;
    without, whoever reaches the service directly (a gateway adds forwarding headers)."""
    token = settings.metrics.token
    if token is not None:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode())
    return not any(name in request.headers for name in _FORWARDING)


def _is_bad_value(exc: DBAPIError) -> bool:
    """True for a value out of range or not text: asyncpg refuses it before sending
    (``_base.DataError``) or PostgreSQL after (SQLSTATE class 22, ``DataError``)."""
    cause: BaseException | None = exc.orig
    while cause is not None:
        if isinstance(cause, asyncpg.exceptions.DataError | asyncpg.exceptions._base.DataError):
            return True
        cause = cause.__cause__
    return False


def create_app(runtime: Runtime, parts: list[ServicePart], *, title: str) -> FastAPI:
    """An app serving ``parts`` on ``runtime``, with /healthz, /readyz and /metrics."""
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = runtime.settings
        if settings.db.create_database:
            await runtime.db.create_database_if_missing()
        for part in parts:
            if part.schema and part.migrations:
                await runtime.db.migrate(part.schema, part.migrations)
        await runtime.store.ensure_buckets(settings.storage.buckets.all())
        await runtime.bus.start()
        for part in parts:
            for hook in part.on_start:
                await hook()
        for part in parts:
            for subscription in part.subscriptions:
                await runtime.bus.subscribe(subscription)
        state["ready"] = True
        # what start-up made lives as long as the process: out of the collector's sight, so
        # a full collection walks what requests make, not every module (~100 ms pauses in
        # QIDO answers before, bench/qido.py)
        gc.freeze()
        log.info("%s ready", title)
        try:
            yield
        finally:
            state["ready"] = False
            for part in reversed(parts):
                for hook in part.on_drain:
                    await hook()
            await runtime.bus.close()
            for part in reversed(parts):
                for hook in part.on_stop:
                    await hook()
            await runtime.db.close()
            log.info("%s stopped", title)

    docs = runtime.settings.http.docs
    app = FastAPI(
        title=title,
        lifespan=lifespan,
        docs_url=None,  # served by giftcloud_core.docs, without a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.runtime = runtime

    @app.exception_handler(GiftcloudError)
    async def giftcloud_error(request: Request, exc: GiftcloudError) -> JSONResponse:
        await audit_refusal(runtime.audit, request, exc)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # PS3.18 answers a bad DICOMweb parameter with 400; the REST API keeps FastAPI's 422
        status = 400 if request.url.path.startswith("/dicomweb/") else 422
        return JSONResponse({"detail": validation_errors(exc)}, status_code=status)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if _is_bad_value(exc):  # a value the database cannot take: the request's fault
            log.info("refused a value the database cannot take (%s)", type(exc.orig).__name__)
            return JSONResponse(
                {"detail": "a value in the request is out of range or not valid text"},
                status_code=400,
            )
        log.error("database error (%s) on %s", type(exc.orig).__name__, request.url.path)
        return JSONResponse({"detail": "internal error; it is logged"}, status_code=500)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {
            "started": state["ready"],
            "database": await runtime.db.ping(),
            "bus": await runtime.bus.ping(),
            "storage": await runtime.store.ping(),
        }
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not _may_read_metrics(request, runtime.settings):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for part in parts:
        for router in part.routers:
            app.include_router(router)
    if docs:
        specs = [(title, "/openapi.json"), *(p for part in parts for p in part.peer_docs)]
        aliases = [f"{part.prefix}/openapi.json" for part in parts if part.prefix]
        app.include_router(docs_router(app, title, specs, aliases if len(parts) == 1 else []))
    trusted = runtime.settings.network.trusted_proxies
    body_limits = {k: v for part in parts for k, v in part.body_limits.items()}
    rate_limits = {k: v for part in parts for k, v in part.rate_limits.items()}
    if body_limits:
        app.add_middleware(BodyLimit, limits=body_limits)
    if rate_limits:
        app.add_middleware(RateLimit, rates=rate_limits, trusted_proxies=trusted)
    app.add_middleware(RefuseNulBytes)
    if runtime.settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=runtime.settings.http.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Correlation-Id"],
            expose_headers=["X-Giftcloud-Upload", "X-Correlation-Id", "Warning"],
        )
    app.add_middleware(SecurityHeaders, trusted_proxies=trusted)
    app.add_middleware(RequestContext, service=title)
    return app
