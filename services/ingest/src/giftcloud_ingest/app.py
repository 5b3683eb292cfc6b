from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.events import Event, InstancesArchived
from giftcloud_core.settings import Settings

from giftcloud_ingest.dicom_node import DicomNode
from giftcloud_ingest.forwarding import Forwarder
from giftcloud_ingest.models import SCHEMA
from giftcloud_ingest.retrieval import Retrievals
from giftcloud_ingest.routes import (
    build_forwarding_router,
    build_retrieval_router,
    build_router,
)
from giftcloud_ingest.service import IngestService

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime) -> ServicePart:
    service = IngestService(runtime.settings, runtime.db, runtime.bus, runtime.store)
    retrievals = Retrievals(service)
    forwarder = Forwarder(service)
    node = DicomNode(service, on_stored=retrievals.attribute)
    dicom = runtime.settings.ingest.dicom_port != 0
    background: list[asyncio.Task[None]] = []

    async def start_background() -> None:
        background.append(asyncio.create_task(service.keep_sweeping()))
        background.append(asyncio.create_task(forwarder.keep_forwarding()))
        if dicom:  # moves come in through the node
            background.append(asyncio.create_task(retrievals.keep_working()))

    async def stop_background() -> None:
        await retrievals.stop()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def on_outcome(event: Event) -> None:
        if isinstance(event, InstancesArchived):  # into the outbox before it is acknowledged
            await forwarder.enqueue(event)
        else:
            await service.on_outcome(event)

    return ServicePart(
        name="ingest",
        prefix="/ingest",
        routers=[
            build_router(service, node.routes, runtime.authenticated(), runtime.audit),
            build_retrieval_router(service, retrievals, runtime.authenticated(), runtime.audit),
            build_forwarding_router(service, forwarder, runtime.authenticated(), runtime.audit),
        ],
        subscriptions=[
            Subscription("ingest.projects", service.on_project_event),
            Subscription("ingest.outcomes", on_outcome),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[*([node.start] if dicom else []), start_background],
        on_drain=[node.stop] if dicom else [],
        on_stop=[stop_background],
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="ingest")
