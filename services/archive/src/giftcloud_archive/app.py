from __future__ import annotations

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.settings import Settings

from giftcloud_archive.service import ArchiveService


def build(runtime: Runtime) -> ServicePart:
    """Archive keeps no tables: the bucket layout is its state."""
    service = ArchiveService(runtime.settings, runtime.bus, runtime.store)
    return ServicePart(
        name="archive",
        subscriptions=[Subscription("archive.instances", service.on_deidentified)],
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="archive")
