from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.settings import Settings

from giftcloud_ingest.dicom_node import DicomNode
from giftcloud_ingest.models import SCHEMA
from giftcloud_ingest.routes import build_router
from giftcloud_ingest.service import IngestService

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime) -> ServicePart:
    service = IngestService(runtime.settings, runtime.db, runtime.bus, runtime.store)
    node = DicomNode(service)
    dicom = runtime.settings.ingest.dicom_port != 0
    sweeping: list[asyncio.Task[None]] = []

    async def start_sweeping() -> None:
        sweeping.append(asyncio.create_task(service.keep_sweeping()))

    async def stop_sweeping() -> None:
        for task in sweeping:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ServicePart(
        name="ingest",
        prefix="/ingest",
        routers=[build_router(service, node.routes, runtime.authenticated(), runtime.audit)],
        subscriptions=[
            Subscription("ingest.projects", service.on_project_event),
            Subscription("ingest.outcomes", service.on_outcome),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[start_sweeping, *([node.start] if dicom else [])],
        on_drain=[node.stop] if dicom else [],
        on_stop=[stop_sweeping],
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="ingest")
