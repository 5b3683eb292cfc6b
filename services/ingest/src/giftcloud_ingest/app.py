from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.settings import Settings

from giftcloud_ingest.models import SCHEMA
from giftcloud_ingest.routes import build_router
from giftcloud_ingest.service import IngestService

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime) -> ServicePart:
    service = IngestService(runtime.settings, runtime.db, runtime.bus, runtime.store)
    return ServicePart(
        name="ingest",
        prefix="/ingest",
        routers=[build_router(service, runtime.authenticated(), runtime.audit)],
        subscriptions=[
            Subscription("ingest.projects", service.on_project_event),
            Subscription("ingest.outcomes", service.on_outcome),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="ingest")
