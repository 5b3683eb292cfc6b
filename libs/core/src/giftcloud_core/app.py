"""App boilerplate every service shares: runtime, lifespan, health, metrics, errors, logs.

A service contributes a :class:`ServicePart` (routers, bus subscriptions, its schema's
migrations, start hooks). ``create_app`` serves one part (``giftcloud serve NAME``) or
all of them in one process (``giftcloud up``).
"""

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from giftcloud_core.bus import Bus, Subscription, create_bus
from giftcloud_core.db import Database
from giftcloud_core.errors import GiftcloudError, Unauthorized
from giftcloud_core.logs import correlation_id
from giftcloud_core.metrics import HTTP_REQUESTS, HTTP_SECONDS
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore, create_store
from giftcloud_core.tokens import HttpJwks, Principal, TokenVerifier

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


class Runtime:
    """The infrastructure a process shares between its parts: database, bus, store, token check."""

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
        self.bus: Bus = bus or create_bus(settings.bus)
        self.store: ObjectStore = store or create_store(settings.storage)
        self.verifier = verifier or TokenVerifier(
            HttpJwks(settings.auth.jwks_url), settings.auth.issuer, settings.auth.audience
        )


_bearer = HTTPBearer(auto_error=False)


def authenticated(verifier: TokenVerifier) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller's :class:`Principal`, or 401."""

    async def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized()
        return await verifier.verify(credentials.credentials)

    return principal


class RequestContext:
    """ASGI middleware: correlation id in and out, request metrics (pure ASGI: streams pass)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cid = headers.get(b"x-correlation-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = correlation_id.set(cid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-correlation-id", cid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            HTTP_SECONDS.labels(self.service, scope["method"], path).observe(
                time.perf_counter() - started
            )
            correlation_id.reset(token)


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
        log.info("%s ready", title)
        try:
            yield
        finally:
            state["ready"] = False
            await runtime.bus.close()
            for part in reversed(parts):
                for hook in part.on_stop:
                    await hook()
            await runtime.db.close()
            log.info("%s stopped", title)

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.runtime = runtime

    @app.exception_handler(GiftcloudError)
    async def giftcloud_error(request: Request, exc: GiftcloudError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

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
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for part in parts:
        for router in part.routers:
            app.include_router(router)
    app.add_middleware(RequestContext, service=title)
    return app
