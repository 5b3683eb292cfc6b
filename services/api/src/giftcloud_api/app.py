from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.settings import Settings

from giftcloud_api import dicomweb, routes, web
from giftcloud_api.models import SCHEMA
from giftcloud_api.service import CatalogueService

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime, services: list[str] | None = None) -> ServicePart:
    service = CatalogueService(runtime.settings, runtime.db, runtime.store, runtime.bus)
    # api keeps the audit trail: records of this process go straight into it
    runtime.audit.sink = service.keep_audit
    current = runtime.authenticated()
    moving: list[asyncio.Task[None]] = []

    async def start_moving() -> None:
        moving.append(asyncio.create_task(service.keep_moving_metadata()))

    async def stop_moving() -> None:
        for task in moving:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ServicePart(
        name="api",
        routers=[
            web.build_router(service, runtime, services or ["api"]),
            routes.build_router(service, current, runtime.audit, runtime.bus),
            dicomweb.build_router(service, current, runtime.audit),
        ],
        subscriptions=[
            Subscription("api.catalogue", service.on_event),
            Subscription("api.audit", service.on_audit),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[start_moving],
        on_stop=[stop_moving],
        # alone behind the gateway, its /docs offers the other services' documents too
        peer_docs=[]
        if services
        else [(name, f"/{name}/openapi.json") for name in ("auth", "ingest", "anonymise")],
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="api")
